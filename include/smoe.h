/*
 * smoe.h - the public C API of smoe, a runtime for the Mixtral 8x7B sparse mixture-of-experts model.
 *
 * This is the only installed header. Everything behind it is private.
 *
 * Conventions
 * - Every function that can fail returns an `smoe_status` (0 = success, negative = error). On failure the detailed,
 *   human-readable reason is kept per thread: `smoe_last_error()` returns it until the next failing call on the same
 *   thread. It is thread-local (not per object) so that failed constructors, which have no object, can report too.
 * - Objects are opaque handles. Each `*_open`/`*_load`/`*_init` has a matching `*_free`/`*_close`; passing NULL to a
 *   free function is a no-op.
 * - Params structs are obtained with `*_default_params()` and passed by pointer; NULL means defaults.
 * - The library never writes to stdout, never calls abort() or exit() on bad input. Diagnostics go to a log callback
 *   passed in params (never a mutable global).
 */
#ifndef SMOE_H
#define SMOE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SMOE_SHARED) && defined(SMOE_BUILD)
#define SMOE_API __attribute__((visibility("default")))
#else
#define SMOE_API
#endif

/* ---- version ---------------------------------------------------------------------------------------------------- */

#define SMOE_VERSION_MAJOR 0
#define SMOE_VERSION_MINOR 1
#define SMOE_VERSION_PATCH 0
#define SMOE_VERSION_NUMBER (SMOE_VERSION_MAJOR * 10000 + SMOE_VERSION_MINOR * 100 + SMOE_VERSION_PATCH)

/* The version of the library linked at run time (may differ from the header's macros). */
SMOE_API unsigned    smoe_version_number(void);
/* "MAJOR.MINOR.PATCH", static storage. */
SMOE_API const char *smoe_version(void);

/* ---- status ----------------------------------------------------------------------------------------------------- */

/* Values are pinned: they never change once released. */
typedef enum smoe_status {
    SMOE_OK                   = 0,
    SMOE_ERR_INVALID_ARGUMENT = -1, /* a caller error: NULL pointer, parameter out of range, malformed request  */
    SMOE_ERR_IO               = -2, /* open/read/write/mmap/rename failed                                        */
    SMOE_ERR_CORRUPT_FILE     = -3, /* a file is malformed, truncated or inconsistent                            */
    SMOE_ERR_UNSUPPORTED      = -4, /* well-formed but not something smoe implements (type, architecture, ...)   */
    SMOE_ERR_OUT_OF_MEMORY    = -5, /* host or device allocation failed                                          */
    SMOE_ERR_DEVICE           = -6, /* a GPU API reported an error                                               */
    SMOE_ERR_CONTEXT_FULL     = -7, /* the KV cache has no room for the request                                  */
    SMOE_ERR_CANCELLED        = -8, /* a callback asked to stop                                                  */
    SMOE_ERR_INVALID_TEXT     = -9, /* text is not valid UTF-8                                                   */
    SMOE_ERR_BUFFER_TOO_SMALL = -10, /* an output buffer is too short; the needed size was reported             */
} smoe_status;

/* A short static description of a status code, e.g. "corrupt file". Never NULL. */
SMOE_API const char *smoe_status_string(smoe_status status);

/* The detailed message of the last failure on the calling thread, e.g.
 * "model.gguf: tensor 'blk.3.ffn_up_exps.weight': data [1024, 9000) past end of file (8192 bytes)".
 * Thread-local; valid until the next failing smoe call on this thread. "" if none. Never NULL. */
SMOE_API const char *smoe_last_error(void);

/* ---- logging ---------------------------------------------------------------------------------------------------- */

typedef enum smoe_log_level {
    SMOE_LOG_ERROR = 0,
    SMOE_LOG_WARN  = 1,
    SMOE_LOG_INFO  = 2,
    SMOE_LOG_DEBUG = 3,
} smoe_log_level;

/* A log sink. `msg` is one line without the trailing newline. May be called from library worker threads; the
 * callback must be thread-safe. A NULL callback discards every message. */
typedef void (*smoe_log_fn)(smoe_log_level level, const char *msg, void *user_data);

/* Progress of a long operation (load, convert): `done` of `total` units (bytes unless stated). Return false to
 * cancel; the operation then fails with SMOE_ERR_CANCELLED and leaves nothing behind. */
typedef bool (*smoe_progress_fn)(uint64_t done, uint64_t total, void *user_data);

/* ---- GGUF files: read-only inspection (what `smoe info` prints) ------------------------------------------------- */

typedef struct smoe_gguf_file smoe_gguf_file;

/* Value types of GGUF metadata, numbered as in the GGUF specification. */
typedef enum smoe_gguf_value_type {
    SMOE_GGUF_UINT8   = 0,
    SMOE_GGUF_INT8    = 1,
    SMOE_GGUF_UINT16  = 2,
    SMOE_GGUF_INT16   = 3,
    SMOE_GGUF_UINT32  = 4,
    SMOE_GGUF_INT32   = 5,
    SMOE_GGUF_FLOAT32 = 6,
    SMOE_GGUF_BOOL    = 7,
    SMOE_GGUF_STRING  = 8,
    SMOE_GGUF_ARRAY   = 9,
    SMOE_GGUF_UINT64  = 10,
    SMOE_GGUF_INT64   = 11,
    SMOE_GGUF_FLOAT64 = 12,
} smoe_gguf_value_type;

/* Opens and fully validates a GGUF v2/v3 file (memory-mapped, read-only).
 * Returns SMOE_ERR_IO if it cannot be opened or mapped, SMOE_ERR_CORRUPT_FILE if it is malformed (the message names
 * what and where), SMOE_ERR_UNSUPPORTED for an unknown version. On failure *out is NULL. */
SMOE_API smoe_status smoe_gguf_file_open(const char *path, smoe_gguf_file **out);
SMOE_API void        smoe_gguf_file_close(smoe_gguf_file *file);

SMOE_API uint32_t smoe_gguf_file_version(const smoe_gguf_file *file);
SMOE_API uint64_t smoe_gguf_file_alignment(const smoe_gguf_file *file);
SMOE_API uint64_t smoe_gguf_file_data_offset(const smoe_gguf_file *file);

SMOE_API int64_t              smoe_gguf_file_n_kv(const smoe_gguf_file *file);
SMOE_API const char          *smoe_gguf_file_kv_key(const smoe_gguf_file *file, int64_t i);
SMOE_API smoe_gguf_value_type smoe_gguf_file_kv_type(const smoe_gguf_file *file, int64_t i);
/* Renders value i as text into buf (JSON-like; arrays longer than max_items are elided with "..."). Returns the
 * length the full rendering needs (excluding the NUL), like snprintf. */
SMOE_API size_t smoe_gguf_file_kv_format(const smoe_gguf_file *file, int64_t i, char *buf, size_t size,
                                         size_t max_items);
/* For an array value: its element type and element count (-1 and 0 if value i is not an array). */
SMOE_API smoe_gguf_value_type smoe_gguf_file_kv_array_type(const smoe_gguf_file *file, int64_t i);
SMOE_API uint64_t             smoe_gguf_file_kv_array_n(const smoe_gguf_file *file, int64_t i);

SMOE_API int64_t     smoe_gguf_file_n_tensors(const smoe_gguf_file *file);
SMOE_API const char *smoe_gguf_file_tensor_name(const smoe_gguf_file *file, int64_t i);
/* The tensor's type name ("q4_0", "f16", ...), its dimension count (1..4) and sizes (ne[0] is the row length),
 * its byte size and its offset relative to the data section. */
SMOE_API const char *smoe_gguf_file_tensor_type_name(const smoe_gguf_file *file, int64_t i);
SMOE_API uint32_t    smoe_gguf_file_tensor_n_dims(const smoe_gguf_file *file, int64_t i);
SMOE_API int64_t     smoe_gguf_file_tensor_ne(const smoe_gguf_file *file, int64_t i, uint32_t dim);
SMOE_API uint64_t    smoe_gguf_file_tensor_size(const smoe_gguf_file *file, int64_t i);
SMOE_API uint64_t    smoe_gguf_file_tensor_offset(const smoe_gguf_file *file, int64_t i);

#ifdef __cplusplus
}
#endif

#endif /* SMOE_H */
