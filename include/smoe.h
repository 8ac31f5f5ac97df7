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

/* ---- file types: what `smoe convert` and `smoe quantize` produce -------------------------------------------------
 * One element type for the weight matrices, or a per-tensor mix. Values are llama.cpp's LlamaFileType numbers (they
 * are written as general.file_type), except SMOE_FTYPE_AUTO, smoe's MoE-aware mix: experts at 4 bits (Q4_K, Q4_0
 * where rows are not multiples of 256), attention at Q8_0, router and norms at F32, token embeddings Q4_K and the
 * output matrix Q6_K as llama.cpp's K-mixes do. Its file records general.file_type 15 (Q4_K_M). */
typedef enum smoe_ftype {
    SMOE_FTYPE_F32    = 0,
    SMOE_FTYPE_F16    = 1,
    SMOE_FTYPE_Q4_0   = 2,
    SMOE_FTYPE_Q4_1   = 3,
    SMOE_FTYPE_Q8_0   = 7,
    SMOE_FTYPE_Q5_0   = 8,
    SMOE_FTYPE_Q5_1   = 9,
    SMOE_FTYPE_Q4_K   = 14, /* every matrix Q4_K (llama-quantize --pure); llama.cpp's number for Q4_K_S */
    SMOE_FTYPE_Q4_K_M = 15,
    SMOE_FTYPE_Q5_K   = 16, /* every matrix Q5_K (llama-quantize --pure); llama.cpp's number for Q5_K_S */
    SMOE_FTYPE_Q5_K_M = 17,
    SMOE_FTYPE_Q6_K   = 18, /* every matrix Q6_K (llama-quantize --pure)                                 */
    SMOE_FTYPE_BF16   = 32,
    SMOE_FTYPE_AUTO   = 1024,
} smoe_ftype;

/* The names of the values above, lower case: "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m", "q5_k_m", "auto",
 * "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k" (case-insensitive). SMOE_ERR_INVALID_ARGUMENT for another name. */
SMOE_API smoe_status smoe_ftype_from_name(const char *name, smoe_ftype *out);
/* The lower-case name; "unknown" for a value not listed above. Static storage. */
SMOE_API const char *smoe_ftype_name(smoe_ftype ftype);

/* ---- converting Hugging Face checkpoints ------------------------------------------------------------------------- */

typedef struct smoe_convert_params {
    uint32_t         size;               /* sizeof(smoe_convert_params), set by smoe_convert_default_params */
    smoe_ftype       ftype;              /* SMOE_FTYPE_AUTO                                                  */
    int32_t          n_threads;          /* worker threads; 0 = online CPUs, at most 8                      */
    smoe_progress_fn progress;           /* NULL = none; called on the calling thread, units: input bytes   */
    void            *progress_user_data;
    smoe_log_fn      log;                /* NULL = silent                                                    */
    void            *log_user_data;
} smoe_convert_params;

SMOE_API smoe_convert_params smoe_convert_default_params(void);

/* Converts the Hugging Face Mixtral checkpoint in folder `hf_dir` (config.json with MixtralForCausalLM, one or
 * sharded *.safetensors with model.safetensors.index.json in F32/F16/BF16, tokenizer.model, and optionally
 * tokenizer_config.json, generation_config.json) into the GGUF v3 file `out_path`, in the layout llama.cpp's
 * convert_hf_to_gguf.py writes (architecture "llama", experts merged into 3-D tensors, Q/K rows permuted for
 * RoPE, tokenizer.ggml.* keys). Tensors are read through mmap and converted by worker threads in bounded memory
 * (a few buffers of 16 MiB, plus the pages of the source tensor being read); the output is written to a temporary
 * file in the same folder and renamed into place on success, so a failed or cancelled run leaves no file.
 * params: NULL = defaults. Returns SMOE_ERR_IO (a file cannot be read, the output cannot be written),
 * SMOE_ERR_CORRUPT_FILE (malformed or truncated safetensors or JSON, missing tensors, shapes that do not match
 * config.json), SMOE_ERR_UNSUPPORTED (not a Mixtral, a dtype other than F32/F16/BF16), SMOE_ERR_CANCELLED (the
 * progress callback returned false), SMOE_ERR_INVALID_ARGUMENT, SMOE_ERR_OUT_OF_MEMORY; smoe_last_error() says
 * what and where. Thread-safe (no shared state); the callbacks are called from the calling thread. */
SMOE_API smoe_status smoe_convert(const char *hf_dir, const char *out_path, const smoe_convert_params *params);

/* ---- re-quantizing GGUF files (`smoe quantize`) ------------------------------------------------------------------ */

/* What happened to one tensor; passed to smoe_quantize_params.stats after the tensor is written. The strings are
 * valid during the call only. Errors are measured against the source values (dequantized if the source is
 * quantized): rmse = sqrt(mean((x - q)^2)), nmse = sum (x - q)^2 / sum x^2, max_abs_err = max |x - q|. */
typedef struct smoe_quantize_tensor_stats {
    const char *name;
    const char *src_type;    /* "f16", "bf16", ...                                                        */
    const char *dst_type;    /* "q4_k", ...                                                               */
    uint32_t    n_dims;
    int64_t     ne[4];       /* ne[0]: row length; unused dims 1                                          */
    uint64_t    n_elements;
    uint64_t    src_bytes, dst_bytes;
    bool        copied;      /* same type in and out: bytes copied unchanged, errors 0                    */
    double      rmse, nmse, max_abs_err;
} smoe_quantize_tensor_stats;

typedef void (*smoe_quantize_stats_fn)(const smoe_quantize_tensor_stats *stats, void *user_data);

typedef struct smoe_quantize_params {
    uint32_t               size;        /* sizeof(smoe_quantize_params), set by smoe_quantize_default_params    */
    smoe_ftype             ftype;       /* SMOE_FTYPE_Q4_K_M                                                    */
    int32_t                n_threads;   /* worker threads; 0 = online CPUs                                      */
    smoe_progress_fn       progress;    /* NULL = none; called on the calling thread, units: input bytes         */
    void                  *progress_user_data;
    smoe_log_fn            log;         /* NULL = silent                                                        */
    void                  *log_user_data;
    smoe_quantize_stats_fn stats;       /* NULL = errors not measured (measuring costs a dequantization)       */
    void                  *stats_user_data;
    bool                   allow_requantize; /* false: a quantized source tensor that needs another type fails */
} smoe_quantize_params;

SMOE_API smoe_quantize_params smoe_quantize_default_params(void);

/* Re-quantizes the GGUF file `in_path` (F32/F16/BF16 weights, smoe's or llama.cpp's) into `out_path` with the file
 * type params->ftype: the per-tensor types mirror llama-quantize's mixes (norms and the expert router stay F32;
 * see quant/quant-policy.c); every metadata key is carried over, general.file_type and
 * general.quantization_version (2) are set. Tensors are streamed one batch of rows at a time through worker
 * threads (resident memory: under 64 MiB for a batch of source rows and its output, plus 1 MiB per thread,
 * whatever the model size: read pages are released after use); the output is written to
 * a temporary file and renamed into place on success, so a failed or cancelled run leaves no output file.
 * params: NULL = defaults. Returns SMOE_ERR_IO (input unreadable, output not writable), SMOE_ERR_CORRUPT_FILE (a
 * malformed input, or a tensor holding NaN/Inf where it must be quantized), SMOE_ERR_UNSUPPORTED (a source type
 * that cannot be converted, a quantized source without allow_requantize), SMOE_ERR_CANCELLED (progress returned
 * false), SMOE_ERR_INVALID_ARGUMENT (NULL paths, an unknown ftype), SMOE_ERR_OUT_OF_MEMORY; smoe_last_error() names
 * the tensor. Thread-safe; the callbacks run on the calling thread. */
SMOE_API smoe_status smoe_model_quantize(const char *in_path, const char *out_path, const smoe_quantize_params *params);

/* ---- model ----------------------------------------------------------------------------------------------------
 * A model is the weights of a Mixtral GGUF file (ours or llama.cpp's: merged `ffn_*_exps` expert tensors or the
 * older one-tensor-per-expert layout) plus its tokenizer. It is immutable after load and may be shared by several
 * contexts used from different threads. */

typedef struct smoe_model     smoe_model;
typedef struct smoe_context   smoe_context;
typedef struct smoe_tokenizer smoe_tokenizer;

typedef struct smoe_model_params {
    uint32_t         size;          /* sizeof(smoe_model_params), set by smoe_model_default_params           */
    smoe_log_fn      log_fn;        /* NULL: silent                                                           */
    void            *log_user_data;
    smoe_progress_fn progress_fn;   /* load progress in bytes; returning false cancels (SMOE_ERR_CANCELLED)   */
    void            *progress_user_data;
    int32_t          n_threads;     /* default CPU threads of its contexts; 0 = number of online CPUs         */
    const char      *backend;       /* where the weights live and the graphs run: "cpu", "vulkan" (= its
                                       device 0), "vulkan:N" (see smoe_device_get_info); NULL = $SMOE_BACKEND
                                       if set, else "cpu". A device holds every weight and the KV caches; ops
                                       it lacks run on the CPU                                                  */
    bool             use_mmap;      /* true: weights stay in the mapped file; false: read into memory         */
    uint64_t         gpu_mem;       /* with a GPU backend: bytes of device memory the weights may take. When
                                       they do not all fit, a placement plan (smoe_placement) puts norms,
                                       routers, attention and the output layer on the device first, then the
                                       experts of as many layers as fit; the rest stay in host memory and run
                                       on the CPU. 0 = automatic: the device's free memory (its total when it
                                       does not report free memory) less max(1 GiB, 1/16 of the total) for KV
                                       caches and work buffers, which come on top of this budget.
                                       SMOE_GPU_MEM_ALL = every weight on the device (fails if it cannot hold
                                       them). Ignored for the CPU backend.                                     */
} smoe_model_params;

#define SMOE_GPU_MEM_ALL UINT64_MAX

SMOE_API smoe_model_params smoe_model_default_params(void);

/* Loads a model. Every tensor's presence, shape and type is checked before use; errors name the tensor
 * (SMOE_ERR_CORRUPT_FILE for a missing/misshapen tensor or key, SMOE_ERR_UNSUPPORTED for an architecture or tensor
 * type smoe cannot run, SMOE_ERR_IO, SMOE_ERR_OUT_OF_MEMORY, SMOE_ERR_CANCELLED). params NULL = defaults. */
SMOE_API smoe_status smoe_model_load(const char *path, const smoe_model_params *params, smoe_model **out);
SMOE_API void        smoe_model_free(smoe_model *model); /* after every context using it is freed */

/* A model with random weights and no file, for benchmarks: the shapes of a preset, the tensor types that
 * `smoe convert --type` gives for `ftype`, weights from a seeded generator (valid blocks of each type, values of the
 * scale of trained weights: norms 1, the rest small), no tokenizer. Placement, backends and gpu_mem work as for a
 * file (smoe_model_params); use_mmap is ignored. Presets:
 *   "mixtral-8x7b": Mixtral 8x7B (32 layers, n_embd 4096, 32 heads / 8 KV heads, 8 experts of n_ff 14336, top-2,
 *                   vocab 32000, rope theta 1e6): ~26 GB at Q4_0, ~49.6 GB at Q8_0;
 *   "bench":        tests/gen/gen_tiny_mixtral.py's bench preset (n_embd 1024, 8 heads / 2 KV, 8 experts of 3584);
 *   "tiny":         n_embd 64, 2 layers, 4 heads / 2 KV, 4 experts of 128, top-2, vocab 512 (for tests). */
typedef struct smoe_synthetic_params {
    uint32_t    size;    /* sizeof(smoe_synthetic_params), set by smoe_synthetic_default_params      */
    const char *preset;  /* "mixtral-8x7b" (default), "bench", "tiny"                                 */
    int32_t     n_layer; /* 0 = the preset's                                                          */
    smoe_ftype  ftype;   /* SMOE_FTYPE_Q4_0 by default; any type smoe convert accepts                 */
    uint64_t    seed;
} smoe_synthetic_params;

SMOE_API smoe_synthetic_params smoe_synthetic_default_params(void);
/* SMOE_ERR_INVALID_ARGUMENT for an unknown preset, a layer count outside [1, 4096] or a bad ftype; then as
 * smoe_model_load. */
SMOE_API smoe_status smoe_model_init_synthetic(const smoe_synthetic_params *sp, const smoe_model_params *params,
                                               smoe_model **out);

typedef struct smoe_model_info {
    int32_t     n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    int32_t     n_expert, n_expert_used;
    float       rope_theta, rms_eps;
    uint64_t    n_params;     /* total parameters                                          */
    uint64_t    size_bytes;   /* bytes of tensor data                                      */
    const char *name;         /* general.name or "" (owned by the model)                   */
    const char *type_name;    /* the dominant weight type, e.g. "q4_0", or "mixed" (static) */
} smoe_model_info;

SMOE_API void smoe_model_get_info(const smoe_model *model, smoe_model_info *info);
/* Bytes of weights one generated token reads: every weight once, the experts of a layer n_expert_used / n_expert
 * of theirs, token_embd one row (the memory traffic that bounds generation speed). */
SMOE_API uint64_t smoe_model_active_bytes(const smoe_model *model);
/* The model's tokenizer, owned by the model (valid until smoe_model_free); NULL if the file has none (no
 * tokenizer.ggml.model key). */
SMOE_API const smoe_tokenizer *smoe_model_tokenizer(const smoe_model *model);

/* ---- placement: which weights a GPU holds when it cannot hold them all ------------------------------------------
 * Units are placed whole, first fit, in this order: norms, routers, each layer's attention, the output layer, then
 * each layer's experts (ascending layers), then anything else. token_embd stays in host memory (a step reads only
 * the rows of its tokens). Every tensor takes its size rounded up to the device's buffer alignment. */

typedef struct smoe_placement {
    uint32_t size;              /* sizeof(smoe_placement): set it before calling                                */
    bool     split;             /* false: every weight on one device (no plan was needed)                       */
    uint64_t budget;            /* bytes the plan was made for (UINT64_MAX: unlimited)                          */
    uint64_t gpu_bytes;         /* weights on the GPU (aligned)                                                 */
    uint64_t host_bytes;        /* weights in host memory                                                       */
    int32_t  n_gpu_tensors, n_host_tensors;
    int32_t  n_layer;           /* layers of the model                                                          */
    int32_t  n_ffn_layers_gpu;  /* layers whose experts are on the GPU (the first ones)                         */
    bool     dense_complete;    /* every norm, router, attention and output weight is on the GPU                */
} smoe_placement;

/* The plan for the tensors of a Mixtral GGUF file and a budget in bytes, without loading anything. on_gpu: NULL,
 * or an array of smoe_gguf_file_n_tensors(file) flags receiving each tensor's place. alignment: a power of two
 * (0 = 256). Per-expert tensors (blk.N.ffn_gate.E.weight) go with their layer's experts. */
SMOE_API smoe_status smoe_gguf_file_plan_placement(const smoe_gguf_file *file, uint64_t budget, uint64_t alignment,
                                                   bool *on_gpu, smoe_placement *out);
/* Where a loaded model's weights are. For a model on the CPU, or wholly on one device: split = false. */
SMOE_API smoe_status smoe_model_get_placement(const smoe_model *model, smoe_placement *out);
/* Whether weight `name` (a GGUF name; per-expert files: the merged name blk.N.ffn_gate_exps.weight) is in host
 * memory: 1 yes, 0 no (on a device), -1 no such weight. */
SMOE_API int32_t smoe_model_weight_on_host(const smoe_model *model, const char *name);

/* ---- devices: where weights live and graphs run ---------------------------------------------------------------
 * The CPU, then every device of the GPU backends compiled in (CUDA, Vulkan) that is present at run time. */

typedef struct smoe_device_info {
    char     name[32];         /* "cpu", "vulkan0", "vulkan1": what smoe_model_params.backend accepts         */
    char     kind[16];         /* "cpu", "vulkan"                                                             */
    int32_t  index;            /* device index within its kind                                                */
    char     description[256]; /* "CPU, 16 threads", "NVIDIA GeForce RTX 4090 (discrete GPU, Vulkan 1.3.277)"  */
    uint64_t memory_total;     /* bytes of device memory (the largest device-local heap; RAM for the CPU)     */
    uint64_t memory_free;      /* bytes free now, 0 if the driver does not say                                */
} smoe_device_info;

/* Number of devices (>= 1: the CPU). Enumerating GPUs loads their drivers (tens of milliseconds): keep the result.
 * Thread-safe. */
SMOE_API int32_t     smoe_device_count(void);
/* Device i in [0, smoe_device_count()): the CPU first, then by kind, the best device of a kind first (discrete,
 * integrated, virtual, CPU-emulated). SMOE_ERR_INVALID_ARGUMENT for i out of range, SMOE_ERR_DEVICE when a driver
 * fails. Thread-safe. */
SMOE_API smoe_status smoe_device_get_info(int32_t i, smoe_device_info *info);
/* The automatic weight budget of smoe_model_params.gpu_mem = 0 for a device with these figures: free memory (the
 * total when free is 0) less max(1 GiB, total / 16); SMOE_GPU_MEM_ALL when both are 0 (unknown). */
SMOE_API uint64_t smoe_device_auto_gpu_mem(uint64_t memory_total, uint64_t memory_free);

/* ---- context: a KV cache and the compute state for one thread at a time ------------------------------------- */

typedef enum smoe_kv_type {
    SMOE_KV_F16  = 0,
    SMOE_KV_Q8_0 = 1,
    SMOE_KV_F32  = 2,
} smoe_kv_type;

typedef struct smoe_context_params {
    uint32_t     size;      /* sizeof(smoe_context_params), set by smoe_context_default_params            */
    uint32_t     n_ctx;     /* KV cells (tokens over all sequences); 0 = from model (capped at 32768);
                               at most max(32768, the model's training context)                          */
    uint32_t     n_batch;   /* most tokens per graph run: smoe_decode splits a larger batch into chunks of
                               n_batch; 0 = 512; capped at n_ctx                                          */
    uint32_t     n_seq_max; /* distinct sequence ids allowed, [0, n_seq_max); 0 = 1                      */
    int32_t      n_threads; /* 0 = the model's                                                             */
    smoe_kv_type kv_type;   /* SMOE_KV_F16 by default                                                      */
} smoe_context_params;

SMOE_API smoe_context_params smoe_context_default_params(void);
/* The context borrows the model, which must outlive it. params NULL = defaults. */
SMOE_API smoe_status smoe_context_init(smoe_model *model, const smoe_context_params *params, smoe_context **out);
SMOE_API void        smoe_context_free(smoe_context *ctx);
SMOE_API uint32_t    smoe_context_n_ctx(const smoe_context *ctx);
SMOE_API const smoe_model *smoe_context_model(const smoe_context *ctx);

/* A batch: parallel arrays of n_tokens entries. `logits[i]` != 0 asks for the logits of entry i. */
typedef struct smoe_batch {
    int32_t  n_tokens;
    int32_t  capacity;
    int32_t *token;
    int32_t *pos;     /* position of the token in its sequence */
    int32_t *seq_id;  /* sequence, in [0, n_seq_max) */
    int8_t  *logits;
} smoe_batch;

/* Allocates arrays for `capacity` tokens (n_tokens = 0). Free with smoe_batch_free. */
SMOE_API smoe_status smoe_batch_init(int32_t capacity, smoe_batch *batch);
SMOE_API void        smoe_batch_free(smoe_batch *batch);
/* Appends one entry; SMOE_ERR_INVALID_ARGUMENT when full. */
SMOE_API smoe_status smoe_batch_add(smoe_batch *batch, int32_t token, int32_t pos, int32_t seq_id, bool logits);

/* Runs the model on a batch (split internally into chunks of n_batch), storing its tokens in the KV cache.
 * The tokens of one sequence must appear in the batch in position order, the first one at
 * smoe_kv_seq_pos_next(seq), each next one at the following position; sequences may interleave.
 * Errors: SMOE_ERR_INVALID_ARGUMENT (token outside the vocabulary, bad sequence id, position not following the
 * sequence's cells, empty batch; the message names the batch entry), SMOE_ERR_CONTEXT_FULL (fewer free cells than
 * tokens: nothing is stored, the cache is as before), SMOE_ERR_CANCELLED (abort callback). Both leave the cache as it
 * was, except that chunks finished before a cancellation stay. */
SMOE_API smoe_status smoe_decode(smoe_context *ctx, const smoe_batch *batch);
/* The logits [n_vocab] of batch entry i of the last smoe_decode (which must have asked for them), owned by the
 * context until the next decode; NULL if not available (also after a failed decode). i < 0 counts from the end of
 * the batch (-1: the last entry). */
SMOE_API const float *smoe_get_logits(smoe_context *ctx, int32_t i);

/* The KV cache: removes the cells of sequence seq_id (-1: any) with positions in [p0, p1) (p1 < 0: to the end). */
SMOE_API smoe_status smoe_kv_seq_rm(smoe_context *ctx, int32_t seq_id, int32_t p0, int32_t p1);
SMOE_API void        smoe_kv_clear(smoe_context *ctx);
/* Next position of a sequence (1 + the largest position stored), 0 when empty, -1 for an invalid seq_id. */
SMOE_API int32_t     smoe_kv_seq_pos_next(const smoe_context *ctx, int32_t seq_id);
/* Cells in use over all sequences. */
SMOE_API uint32_t    smoe_kv_used(const smoe_context *ctx);

/* An abort check called by smoe_decode before each chunk of n_batch tokens; returning true cancels the decode with
 * SMOE_ERR_CANCELLED (the KV cache keeps the tokens of the batch chunks already finished). NULL: none. */
typedef bool (*smoe_abort_fn)(void *user_data);
SMOE_API void smoe_context_set_abort(smoe_context *ctx, smoe_abort_fn fn, void *user_data);

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

/* ---- tokenizer ---------------------------------------------------------------------------------------------------
 * SentencePiece BPE (Mixtral's tokenizer), built from a GGUF file's tokenizer.ggml.* keys. Ids and text equal the
 * `sentencepiece` library's for the same vocabulary: a dummy leading space, ' ' -> U+2581, merges by piece score,
 * byte fallback to <0xNN> tokens. A tokenizer is immutable after load: every function below that takes a
 * `const smoe_tokenizer *` may be called from several threads at once. Text is UTF-8, passed with its byte length
 * (it may contain NUL bytes); invalid UTF-8 is rejected with SMOE_ERR_INVALID_TEXT (sentencepiece would silently
 * turn each bad byte into U+FFFD). */

typedef struct smoe_tokenizer smoe_tokenizer;

/* Token types, numbered as SentencePiece and GGUF's tokenizer.ggml.token_type number them. */
typedef enum smoe_token_type {
    SMOE_TOKEN_TYPE_INVALID      = 0, /* returned for an id out of range */
    SMOE_TOKEN_TYPE_NORMAL       = 1,
    SMOE_TOKEN_TYPE_UNKNOWN      = 2, /* <unk> */
    SMOE_TOKEN_TYPE_CONTROL      = 3, /* <s>, </s>: never produced from plain text, invisible when decoded */
    SMOE_TOKEN_TYPE_USER_DEFINED = 4,
    SMOE_TOKEN_TYPE_UNUSED       = 5,
    SMOE_TOKEN_TYPE_BYTE         = 6, /* <0x00>..<0xFF> */
} smoe_token_type;

/* Flags of smoe_tokenize. */
#define SMOE_TOKENIZE_ADD_BOS       (1u << 0) /* prepend the BOS token (if the vocabulary has one) */
#define SMOE_TOKENIZE_ADD_EOS       (1u << 1) /* append the EOS token (if the vocabulary has one) */
#define SMOE_TOKENIZE_PARSE_SPECIAL (1u << 2) /* control pieces written in the text ("<s>", "</s>", "<unk>") become
                                                 their ids; the text between them is tokenized piece by piece, each
                                                 with its own leading space. Default: plain text (for user input) */

/* Loads the tokenizer of a GGUF file (the tokenizer.ggml.* keys; tokenizer.ggml.model must be "llama").
 * SMOE_ERR_IO if the file cannot be read, SMOE_ERR_CORRUPT_FILE for missing keys or arrays of different lengths,
 * SMOE_ERR_UNSUPPORTED for another tokenizer model. On failure *out is NULL. */
SMOE_API smoe_status smoe_tokenizer_load_gguf(const char *path, smoe_tokenizer **out);
SMOE_API void        smoe_tokenizer_free(smoe_tokenizer *tok);

SMOE_API int32_t smoe_tokenizer_n_vocab(const smoe_tokenizer *tok);
SMOE_API int32_t smoe_tokenizer_bos(const smoe_tokenizer *tok); /* -1 if none */
SMOE_API int32_t smoe_tokenizer_eos(const smoe_tokenizer *tok); /* -1 if none */
SMOE_API int32_t smoe_tokenizer_unk(const smoe_tokenizer *tok);
/* The flags the model asks for by default: SMOE_TOKENIZE_ADD_BOS / _ADD_EOS as tokenizer.ggml.add_bos_token /
 * add_eos_token say (BOS yes, EOS no when absent). */
SMOE_API uint32_t smoe_tokenizer_default_flags(const smoe_tokenizer *tok);
/* The GGUF's tokenizer.chat_template (a Jinja template, not interpreted by smoe; see smoe_chat_format), or NULL. */
SMOE_API const char *smoe_tokenizer_chat_template(const smoe_tokenizer *tok);

/* Tokenizes text[0..len). Writes at most `cap` ids and sets *n_out to the number of ids of the full result; if that
 * is more than cap, returns SMOE_ERR_BUFFER_TOO_SMALL (call again with a buffer of *n_out ids). `ids` may be NULL
 * when cap is 0. Returns SMOE_ERR_INVALID_TEXT for invalid UTF-8 (the message gives the byte offset). */
SMOE_API smoe_status smoe_tokenize(const smoe_tokenizer *tok, const char *text, size_t len, int32_t *ids, size_t cap,
                                   size_t *n_out, uint32_t flags);

/* The vocabulary piece of a token as stored (U+2581 for spaces, "<0x0A>" for a byte token), NUL-terminated,
 * valid while tok lives; NULL if id is out of range. */
SMOE_API const char     *smoe_token_to_piece(const smoe_tokenizer *tok, int32_t id);
SMOE_API smoe_token_type smoe_token_get_type(const smoe_tokenizer *tok, int32_t id);

/* ---- detokenizer: token ids to text, streamed --------------------------------------------------------------------
 * Feed ids one at a time; each call returns the text that became complete. The concatenation of all returned text
 * equals sentencepiece's decode of the whole sequence: control tokens are invisible, <unk> is " \u2047 ", U+2581
 * becomes ' ', the leading space of the first piece is dropped, and byte tokens are gathered into UTF-8 characters
 * (a character split over several byte tokens is returned once its last byte arrives; each byte of an invalid or
 * truncated sequence becomes U+FFFD). A detokenizer is used by one thread at a time; it borrows the tokenizer,
 * which must outlive it. */

typedef struct smoe_detokenizer smoe_detokenizer;

/* Flags of smoe_detokenizer_init and smoe_detokenize. */
#define SMOE_DETOKENIZE_KEEP_LEADING_SPACE (1u << 0) /* keep the first piece's space: for text that continues a
                                                        prompt (the ids of a reply after the prompt's ids) */
#define SMOE_DETOKENIZE_RENDER_SPECIAL     (1u << 1) /* control tokens appear as their piece ("</s>") */

SMOE_API smoe_status smoe_detokenizer_init(const smoe_tokenizer *tok, uint32_t flags, smoe_detokenizer **out);
/* Adds one token. *text (NUL-terminated) and *len get the text completed by it, possibly empty; *text is valid
 * until the next call on det. SMOE_ERR_INVALID_ARGUMENT for an id out of range (the state is unchanged). */
SMOE_API smoe_status smoe_detokenizer_feed(smoe_detokenizer *det, int32_t id, const char **text, size_t *len);
/* Ends the text: returns what is still pending (U+FFFD for each byte of an incomplete character) and resets det
 * to its initial state, ready for a new text. */
SMOE_API smoe_status smoe_detokenizer_flush(smoe_detokenizer *det, const char **text, size_t *len);
SMOE_API void        smoe_detokenizer_free(smoe_detokenizer *det);

/* Decodes a whole sequence (what a detokenizer fed ids[0..n) and flushed returns). Writes the text and a NUL to buf;
 * *n_out gets the text's length without the NUL. If cap < *n_out + 1, returns SMOE_ERR_BUFFER_TOO_SMALL. */
SMOE_API smoe_status smoe_detokenize(const smoe_tokenizer *tok, const int32_t *ids, size_t n, char *buf, size_t cap,
                                     size_t *n_out, uint32_t flags);

/* ---- chat --------------------------------------------------------------------------------------------------------
 * Conversations to prompt tokens exactly as mistral-common's `encode_chat_completion` with the v1 tokenizer (the
 * one Mixtral 8x7B Instruct was trained with): BOS, then for each user turn the ids of "[INST] {content} [/INST]"
 * and for each assistant turn the ids of "{content}" followed by EOS, each segment tokenized on its own (so "[INST]"
 * is plain text, never a special token). System messages have no turn of their own: all non-empty ones, joined by
 * "\n\n", are prepended to the first user message as "{system}\n\n{user}". A conversation of only system messages
 * is encoded as one user turn with empty content.
 * Rules, checked (SMOE_ERR_INVALID_ARGUMENT with a message naming the message index): roles are "system", "user",
 * "assistant"; after removing system messages the turns alternate user, assistant, user, ... starting with a user
 * turn (mistral-common silently merges repeated roles and inserts an empty user turn before a leading assistant
 * turn; smoe rejects both); assistant content is not empty. A conversation normally ends with a user turn; if it ends
 * with an assistant turn, that turn is a prefix the model should continue: it gets no EOS (mistral-common's
 * `prefix=True`). Content must be valid UTF-8 (SMOE_ERR_INVALID_TEXT). */

typedef struct smoe_chat_message {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content; /* UTF-8, NUL-terminated */
} smoe_chat_message;

/* Same buffer convention as smoe_tokenize. */
SMOE_API smoe_status smoe_chat_tokenize(const smoe_tokenizer *tok, const smoe_chat_message *msgs, size_t n_msgs,
                                        int32_t *ids, size_t cap, size_t *n_out);

/* The text form of a conversation as Hugging Face renders Mixtral-8x7B-Instruct-v0.1's chat template:
 * "<s>[INST] {user} [/INST]{assistant}</s>[INST] {user} [/INST]" (BOS/EOS written as their pieces). smoe does not
 * interpret Jinja: this is that one template, whatever tokenizer.chat_template holds. The template accepts only
 * alternating user/assistant messages starting with user (else SMOE_ERR_INVALID_ARGUMENT, as the template raises).
 * Same buffer convention as smoe_detokenize (NUL-terminated). Note the ids of this text are not the ids of
 * smoe_chat_tokenize (segments tokenized on their own differ at their boundaries): prompt with the latter. */
SMOE_API smoe_status smoe_chat_format(const smoe_tokenizer *tok, const smoe_chat_message *msgs, size_t n_msgs,
                                      char *buf, size_t cap, size_t *n_out);

/* ---- generation: prompt in, streamed text out -----------------------------------------------------------------
 * smoe_generate decodes a prompt, then samples up to max_tokens tokens, streaming their text through on_text as it
 * completes (a UTF-8 character split over byte tokens is delivered whole). It stops at EOS (unless ignore_eos), at a
 * stop string (the text up to it is delivered; the stop string itself is not), at max_tokens, or when on_text
 * returns false (SMOE_ERR_CANCELLED is not returned for that: it is a normal stop, see stop_reason). */

typedef enum smoe_stop_reason {
    SMOE_STOP_NONE       = 0,
    SMOE_STOP_EOS        = 1,
    SMOE_STOP_STRING     = 2,
    SMOE_STOP_MAX_TOKENS = 3,
    SMOE_STOP_CALLBACK   = 4,
} smoe_stop_reason;

/* Receives each completed piece of text (not NUL-terminated, len >= 1). Return false to stop. */
typedef bool (*smoe_text_fn)(const char *text, size_t len, void *user_data);

typedef struct smoe_generate_params {
    uint32_t            size;       /* sizeof(smoe_generate_params), set by smoe_generate_default_params   */
    int32_t             max_tokens; /* tokens to generate, >= 1; default 256                               */
    int32_t             seq_id;     /* the sequence to continue; default 0                                 */
    smoe_sampler_params sampling;   /* used when `sampler` is NULL                                        */
    smoe_sampler       *sampler;    /* borrowed; NULL: built from `sampling`                              */
    const char *const  *stop;       /* n_stop stop strings (borrowed), or NULL                            */
    size_t              n_stop;
    smoe_text_fn        on_text;    /* NULL: text is not delivered (tokens are still in the result)       */
    void               *user_data;
    int32_t            *out_tokens; /* NULL, or room for max_tokens ids: receives the sampled tokens      */
    uint32_t            detokenize_flags; /* SMOE_DETOKENIZE_*; default KEEP_LEADING_SPACE (a completion
                                             continues its prompt); a chat reply passes 0                    */
    bool                ignore_eos; /* keep going past EOS (benchmarks)                                     */
} smoe_generate_params;

typedef struct smoe_generate_result {
    int32_t          n_prompt;     /* prompt tokens decoded                                   */
    int32_t          n_generated;  /* tokens sampled                                          */
    double           prompt_ms;    /* wall time of the prompt decode                         */
    double           generate_ms;  /* wall time of sampling + decoding the generated tokens  */
    smoe_stop_reason stop_reason;
} smoe_generate_result;

SMOE_API smoe_generate_params smoe_generate_default_params(void);

/* Generates a continuation of prompt[0..n_prompt) in sequence params->seq_id, which continues from the cache's
 * current position of that sequence (so a chat can append turns). The prompt plus max_tokens must fit in the free
 * cells: SMOE_ERR_CONTEXT_FULL otherwise, checked before anything is decoded. result may be NULL. Errors of
 * smoe_decode and of the sampler are passed on. */
SMOE_API smoe_status smoe_generate(smoe_context *ctx, const int32_t *prompt, size_t n_prompt,
                                   const smoe_generate_params *params, smoe_generate_result *result);

#ifdef __cplusplus
}
#endif

#endif /* SMOE_H */
