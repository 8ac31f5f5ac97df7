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

/* ---- sampling ----------------------------------------------------------------------------------------------------
 * A sampler turns logits into a token. Samplers are composed in a chain (which owns its members); the standard chain
 * from smoe_sampler_params is: penalties -> top-k -> top-p -> min-p -> temperature -> seeded draw (greedy argmax when
 * temperature <= 0). Custom samplers implement smoe_sampler_i. A sampler is used by one thread at a time. */

typedef struct smoe_token_data {
    int32_t id;
    float   logit;
    float   p; /* probability, valid after a stage that computes it (top-p, draw) */
} smoe_token_data;

typedef struct smoe_token_data_array {
    smoe_token_data *data;
    size_t           size;     /* candidates still in play */
    int64_t          selected; /* index into data of the chosen token, -1 before a final stage */
    bool             sorted;   /* data sorted by logit, descending */
} smoe_token_data_array;

typedef struct smoe_sampler smoe_sampler;

typedef struct smoe_sampler_i {
    const char *(*name)(const smoe_sampler *s);
    /* (optional) sees every token accepted into the sequence (prompt and generated); default: nothing */
    void (*accept)(smoe_sampler *s, int32_t token);
    /* narrows/reweights candidates or selects one (sets `selected`) */
    smoe_status (*apply)(smoe_sampler *s, smoe_token_data_array *cur);
    /* (optional) forgets accepted history; default: nothing */
    void (*reset)(smoe_sampler *s);
    /* (optional) frees s->ctx; default: nothing */
    void (*free)(smoe_sampler *s);
} smoe_sampler_i;

/* Wraps a custom implementation. `iface` must outlive the sampler; `ctx` is owned by the sampler (freed via
 * iface->free). */
SMOE_API smoe_status smoe_sampler_init_custom(const smoe_sampler_i *iface, void *ctx, smoe_sampler **out);
SMOE_API void       *smoe_sampler_ctx(smoe_sampler *s);

SMOE_API smoe_status smoe_sampler_init_greedy(smoe_sampler **out);
SMOE_API smoe_status smoe_sampler_init_dist(uint64_t seed, smoe_sampler **out);
SMOE_API smoe_status smoe_sampler_init_temp(float temp, smoe_sampler **out);   /* temp > 0 */
SMOE_API smoe_status smoe_sampler_init_top_k(int32_t k, smoe_sampler **out);   /* k >= 1; 0 = no-op */
SMOE_API smoe_status smoe_sampler_init_top_p(float p, size_t min_keep, smoe_sampler **out); /* 0 < p <= 1 */
SMOE_API smoe_status smoe_sampler_init_min_p(float p, size_t min_keep, smoe_sampler **out); /* 0 <= p <= 1 */
/* Over the last `last_n` accepted tokens: repetition penalty (logit / r if positive, * r if negative; r > 0, 1 = off),
 * frequency penalty (- count * f) and presence penalty (- p if present). */
SMOE_API smoe_status smoe_sampler_init_penalties(int32_t last_n, float repeat, float frequency, float presence,
                                                 smoe_sampler **out);

SMOE_API smoe_status smoe_sampler_chain_init(smoe_sampler **out);
/* Appends s to the chain; the chain takes ownership (also on failure, when s is freed). */
SMOE_API smoe_status smoe_sampler_chain_add(smoe_sampler *chain, smoe_sampler *s);

typedef struct smoe_sampler_params {
    uint32_t size;              /* sizeof(smoe_sampler_params), set by smoe_sampler_default_params */
    float    temperature;       /* 0.8; <= 0 = greedy                                              */
    int32_t  top_k;             /* 40; 0 = off                                                     */
    float    top_p;             /* 0.95; 1 = off                                                   */
    float    min_p;             /* 0.05; 0 = off                                                   */
    float    repeat_penalty;    /* 1.0 = off                                                       */
    int32_t  repeat_last_n;     /* 64; window of the penalties, 0 = off, -1 = whole history        */
    float    frequency_penalty; /* 0 = off                                                         */
    float    presence_penalty;  /* 0 = off                                                         */
    uint64_t seed;              /* draws are a pure function of the seed and the logits           */
} smoe_sampler_params;

SMOE_API smoe_sampler_params smoe_sampler_default_params(void);
/* Builds the standard chain. SMOE_ERR_INVALID_ARGUMENT names the parameter out of range. */
SMOE_API smoe_status smoe_sampler_init(const smoe_sampler_params *params, smoe_sampler **out);

/* Applies s to logits[0..n_vocab) and returns the chosen token in *out (and accepts it into s). */
SMOE_API smoe_status smoe_sampler_sample(smoe_sampler *s, const float *logits, int32_t n_vocab, int32_t *out);
/* Runs s on a caller-provided candidate array (no accept). */
SMOE_API smoe_status smoe_sampler_apply(smoe_sampler *s, smoe_token_data_array *cur);
SMOE_API void        smoe_sampler_accept(smoe_sampler *s, int32_t token);
SMOE_API void        smoe_sampler_reset(smoe_sampler *s);
SMOE_API const char *smoe_sampler_name(const smoe_sampler *s);
SMOE_API void        smoe_sampler_free(smoe_sampler *s);

#ifdef __cplusplus
}
#endif

#endif /* SMOE_H */
