/*
 * status.h - internal error reporting: the thread-local last-error message and zstd-style early-return macros.
 *
 * SMOE_RETURN_IF(cond, status, fmt, ...) sets the thread's last error to the formatted message and returns status.
 * SMOE_TRY(expr) forwards a failing status unchanged (the message was already set by the callee).
 * SMOE_ASSERT is for internal invariants only (debug builds); never for files, configs or user input.
 */
#ifndef SMOE_STATUS_H
#define SMOE_STATUS_H

#include "smoe.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>

#if defined(__GNUC__)
#define SMOE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SMOE_PRINTF(a, b)
#endif

/* Sets the calling thread's last error and returns `status` (so it can be used as `return smoe_set_error(...)`). */
smoe_status smoe_set_error(smoe_status status, const char *fmt, ...) SMOE_PRINTF(2, 3);
smoe_status smoe_set_errorv(smoe_status status, const char *fmt, va_list ap) SMOE_PRINTF(2, 0);
/* Prepends "prefix: " to the current last error (to add context such as a file name on the way up). */
void smoe_error_prefix(const char *fmt, ...) SMOE_PRINTF(1, 2);
void smoe_clear_error(void);

#define SMOE_RETURN_IF(cond, status, ...)                                                                              \
    do {                                                                                                               \
        if (cond) return smoe_set_error((status), __VA_ARGS__);                                                        \
    } while (0)

#define SMOE_TRY(expr)                                                                                                 \
    do {                                                                                                               \
        smoe_status smoe_try_st_ = (expr);                                                                             \
        if (smoe_try_st_ != SMOE_OK) return smoe_try_st_;                                                              \
    } while (0)

/* For constructors that clean up: sets `st` and jumps to `label` on failure. */
#define SMOE_GOTO_IF(cond, st, label, status, ...)                                                                     \
    do {                                                                                                               \
        if (cond) {                                                                                                    \
            (st) = smoe_set_error((status), __VA_ARGS__);                                                              \
            goto label;                                                                                                \
        }                                                                                                              \
    } while (0)

#define SMOE_GOTO_TRY(st, label, expr)                                                                                 \
    do {                                                                                                               \
        (st) = (expr);                                                                                                 \
        if ((st) != SMOE_OK) goto label;                                                                               \
    } while (0)

#define SMOE_ASSERT(x) assert(x)

/* ---- overflow-checked arithmetic (true on overflow) ---- */
static inline int smoe_add_overflow_u64(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_add_overflow(a, b, r); }
static inline int smoe_mul_overflow_u64(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_mul_overflow(a, b, r); }

/* ---- logging: a sink given in params, never a global ---- */
typedef struct smoe_logger {
    smoe_log_fn fn;
    void       *user_data;
} smoe_logger;

void smoe_log(const smoe_logger *logger, smoe_log_level level, const char *fmt, ...) SMOE_PRINTF(3, 4);

#endif /* SMOE_STATUS_H */
