/*
 * status.c - status strings, the thread-local last-error message, logging, version.
 */
#include "status.h"

#include <stdio.h>
#include <string.h>

#define SMOE_ERROR_MAX 1024

static _Thread_local char tl_error[SMOE_ERROR_MAX];

unsigned smoe_version_number(void) { return SMOE_VERSION_NUMBER; }

#define SMOE_STR2(x) #x
#define SMOE_STR(x) SMOE_STR2(x)
const char *smoe_version(void) {
    return SMOE_STR(SMOE_VERSION_MAJOR) "." SMOE_STR(SMOE_VERSION_MINOR) "." SMOE_STR(SMOE_VERSION_PATCH);
}

const char *smoe_status_string(smoe_status status) {
    switch (status) {
    case SMOE_OK: return "ok";
    case SMOE_ERR_INVALID_ARGUMENT: return "invalid argument";
    case SMOE_ERR_IO: return "i/o error";
    case SMOE_ERR_CORRUPT_FILE: return "corrupt file";
    case SMOE_ERR_UNSUPPORTED: return "unsupported";
    case SMOE_ERR_OUT_OF_MEMORY: return "out of memory";
    case SMOE_ERR_DEVICE: return "device error";
    case SMOE_ERR_CONTEXT_FULL: return "context full";
    case SMOE_ERR_CANCELLED: return "cancelled";
    case SMOE_ERR_INVALID_TEXT: return "invalid text";
    case SMOE_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    }
    return "unknown status";
}

const char *smoe_last_error(void) { return tl_error; }

void smoe_clear_error(void) { tl_error[0] = '\0'; }

smoe_status smoe_set_errorv(smoe_status status, const char *fmt, va_list ap) {
    vsnprintf(tl_error, sizeof(tl_error), fmt, ap);
    return status;
}

smoe_status smoe_set_error(smoe_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    smoe_set_errorv(status, fmt, ap);
    va_end(ap);
    return status;
}

void smoe_error_prefix(const char *fmt, ...) {
    char prefix[SMOE_ERROR_MAX];
    char old[SMOE_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, tl_error, sizeof(old));
    size_t n = strlen(prefix);
    if (n > sizeof(tl_error) - 3) n = sizeof(tl_error) - 3;
    memcpy(tl_error, prefix, n);
    memcpy(tl_error + n, ": ", 2);
    size_t m = strlen(old);
    if (m > sizeof(tl_error) - n - 3) m = sizeof(tl_error) - n - 3;
    memcpy(tl_error + n + 2, old, m);
    tl_error[n + 2 + m] = '\0';
}

void smoe_log(const smoe_logger *logger, smoe_log_level level, const char *fmt, ...) {
    if (!logger || !logger->fn) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    logger->fn(level, msg, logger->user_data);
}
