/*
 * model.h - the Mixtral model inside the library: hyper-parameters, the weight table, the forward graph builder.
 *
 * A model (core/model-mixtral.c) is immutable after smoe_model_load and may be shared by contexts in several threads.
 * Its weights are leaf tensors flagged SMOE_TENSOR_WEIGHT, bound to buffers of the model's own CPU backend: a
 * buffer over the mmap'd GGUF data section (no copy), or one the data section was read into (use_mmap = false), plus
 * one allocated buffer holding expert tensors assembled from the older one-tensor-per-expert layout. With a device
 * backend (smoe_model_params.backend) they are copied into device buffers instead (on_device, weight_bufs).
 *
 * The forward graph (core/model-graph.c) is built per batch shape (n_tokens, n_outputs) and reused: everything
 * data-dependent is in its input tensors (see smoe_fwd_graph).
 */
#ifndef SMOE_MODEL_H
#define SMOE_MODEL_H

#include "backend.h"
#include "gguf.h"
#include "graph.h"
#include "kv-cache.h"

#include "smoe.h"

#include <pthread.h>
#include <stdint.h>

/* Sanity limits on hyper-parameters read from files (no fixed-size arrays depend on them). */
#define SMOE_MODEL_MAX_LAYERS    4096
#define SMOE_MODEL_MAX_EMBD      (1 << 20)
#define SMOE_MODEL_MAX_HEADS     4096
#define SMOE_MODEL_MAX_HEAD_DIM  4096
#define SMOE_MODEL_MAX_FF        (1 << 22)
#define SMOE_MODEL_MAX_EXPERTS   1024
#define SMOE_MODEL_MAX_VOCAB     (1 << 24)
#define SMOE_MODEL_MAX_CTX_TRAIN (1 << 24)

typedef struct smoe_hparams {
    int32_t n_vocab;       /* rows of token_embd.weight */
    int32_t n_ctx_train;   /* {arch}.context_length */
    int32_t n_embd;        /* {arch}.embedding_length */
    int32_t n_layer;       /* {arch}.block_count */
    int32_t n_head;        /* {arch}.attention.head_count */
    int32_t n_head_kv;     /* {arch}.attention.head_count_kv (default n_head) */
    int32_t head_dim;      /* n_embd / n_head */
    int32_t n_ff;          /* {arch}.feed_forward_length: rows of one expert's gate/up */
    int32_t n_expert;      /* {arch}.expert_count */
    int32_t n_expert_used; /* {arch}.expert_used_count */
    int32_t n_rot;         /* {arch}.rope.dimension_count (default head_dim) */
    float   rope_theta;    /* {arch}.rope.freq_base (default 10000, as llama.cpp) */
    float   rope_freq_scale; /* 1 / {arch}.rope.scaling.factor for linear scaling, else 1 */
    float   rms_eps;       /* {arch}.attention.layer_norm_rms_epsilon */
} smoe_hparams;

typedef struct smoe_layer {
    smoe_tensor *attn_norm;     /* f32 [n_embd] */
    smoe_tensor *wq;            /* [n_embd, n_head * head_dim] (rows permuted for llama.cpp's RoPE) */
    smoe_tensor *wk;            /* [n_embd, n_head_kv * head_dim] (permuted likewise) */
    smoe_tensor *wv;            /* [n_embd, n_head_kv * head_dim] */
    smoe_tensor *wo;            /* [n_head * head_dim, n_embd] */
    smoe_tensor *ffn_norm;      /* f32 [n_embd] */
    smoe_tensor *ffn_gate_inp;  /* router [n_embd, n_expert] */
    smoe_tensor *ffn_gate_exps; /* w1 [n_embd, n_ff, n_expert] */
    smoe_tensor *ffn_up_exps;   /* w3 [n_embd, n_ff, n_expert] */
    smoe_tensor *ffn_down_exps; /* w2 [n_ff, n_embd, n_expert] */
} smoe_layer;

struct smoe_model {
    smoe_hparams hp;
    smoe_logger  logger;
    int32_t      n_threads; /* default threads of a context's CPU backend (resolved: >= 1) */

    smoe_gguf   *gguf;       /* kept open while weights live in its mapping (use_mmap); else NULL */
    smoe_arena  *arena;      /* weight tensor structs */
    smoe_backend *backend;   /* holds the weight buffers (CPU) */
    smoe_buffer *data_buf;   /* the GGUF data section: mapped (borrowed) or read into memory */
    smoe_buffer *experts_buf; /* experts merged from the per-expert layout; NULL if none */
    /* A device backend (smoe_model_params.backend, e.g. "vulkan"): `backend` is the device; every weight is copied
     * into weight_bufs (each at most the device's largest buffer) instead of data_buf/experts_buf. Contexts then run
     * their graphs and keep their KV caches there, taking turns on device_lock. */
    bool            on_device;
    smoe_buffer   **weight_bufs;
    int32_t         n_weight_bufs;
    pthread_mutex_t device_lock;
    /* A device that cannot hold every weight (smoe_model_params.gpu_mem): the weights the placement plan leaves in
     * host memory are bound to data_buf/experts_buf of host_backend (a CPU backend, as for a CPU model), and the
     * contexts' schedulers run the ops reading them on their CPU backend. NULL when every weight is on `backend`. */
    smoe_backend   *host_backend;
    smoe_placement  placement;

    smoe_tensor *tok_embd;    /* [n_embd, n_vocab] */
    smoe_tensor *output_norm; /* f32 [n_embd] */
    smoe_tensor *output;      /* [n_embd, n_vocab]; token_embd when the file has no output.weight (tied) */
    smoe_layer  *layers;      /* n_layer */

    struct smoe_tokenizer *tokenizer; /* NULL if the file has no tokenizer.ggml.model */

    char       *name;      /* general.name or "" */
    const char *type_name; /* dominant weight type (static) */
    uint64_t    n_params, size_bytes;
};

/* ---- the forward graph (core/model-graph.c) ---- */

typedef struct smoe_fwd_graph {
    int32_t     n_tokens;  /* tokens per run */
    int32_t     n_outputs; /* logits rows per run, 0..n_tokens */
    smoe_graph *graph;
    /* inputs, filled before every run */
    smoe_tensor *tokens;    /* I32 [n_tokens] */
    smoe_tensor *pos;       /* I32 [n_tokens] */
    smoe_tensor *cells;     /* I32 [n_tokens]: KV cell of each token */
    smoe_tensor *q_info;    /* I32 [2, n_tokens]: (pos, seq) */
    smoe_tensor *cell_info; /* I32 [2, n_ctx]: (pos, seq) per cell, seq -1 = empty */
    smoe_tensor *n_scan;    /* I32 [1] */
    smoe_tensor *out_ids;   /* I32 [n_outputs]: rows whose logits are wanted; NULL when n_outputs is 0 or n_tokens */
    /* output */
    smoe_tensor *logits;    /* f32 [n_vocab, n_outputs]; NULL when n_outputs is 0 */
} smoe_fwd_graph;

/* Builds the forward graph of `model` over the caches of `kv` for a batch shape. 1 <= n_tokens,
 * 0 <= n_outputs <= n_tokens. On failure *out is zeroed. Free with smoe_fwd_graph_free. */
smoe_status smoe_fwd_graph_build(const struct smoe_model *model, const smoe_kv_cache *kv, int32_t n_tokens,
                                 int32_t n_outputs, smoe_fwd_graph *out);
void        smoe_fwd_graph_free(smoe_fwd_graph *fg);

#endif /* SMOE_MODEL_H */
