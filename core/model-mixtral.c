/*
 * model-mixtral.c - loading a Mixtral GGUF (llama.cpp's layout) into a smoe_model.
 *
 * Accepted files: general.architecture "llama" (what llama.cpp writes for Mixtral) or "mixtral", with
 * {arch}.expert_count > 0. Keys are read under the architecture's prefix. Tensors (GGUF names; shapes in ggml order):
 *   token_embd.weight [n_embd, n_vocab]       output_norm.weight f32 [n_embd]
 *   output.weight [n_embd, n_vocab]           (absent: tied to token_embd, as llama.cpp does)
 *   blk.N.attn_norm / ffn_norm.weight f32 [n_embd]
 *   blk.N.attn_q.weight [n_embd, n_head*head_dim], attn_k / attn_v [n_embd, n_head_kv*head_dim],
 *   blk.N.attn_output.weight [n_head*head_dim, n_embd], blk.N.ffn_gate_inp.weight [n_embd, n_expert]
 *   blk.N.ffn_gate_exps / ffn_up_exps.weight [n_embd, n_ff, n_expert], ffn_down_exps.weight [n_ff, n_embd, n_expert]
 *   or the older layout with one tensor per expert E: blk.N.ffn_{gate,up,down}.E.weight (2-D, all of one type).
 * Everything is checked (presence, shape, type) before any weight byte is touched, so errors name the tensor.
 *
 * Placement of weight bytes:
 * - use_mmap: one buffer over the mapped GGUF data section, each tensor bound at its file offset (no copy). When the
 *   backend cannot wrap the mapping (alignment), the loader falls back to reading, with a log line.
 * - otherwise (or the fallback): one allocated buffer, each tensor at its own aligned offset, filled with pread();
 *   the file is then unmapped.
 * - per-expert layout: the experts of each (layer, gate/up/down) are copied next to each other into one allocated
 *   buffer, giving the merged 3-D tensor (a copy of the expert weights: the price of an old file).
 * - a device backend (params->backend, e.g. "vulkan"): every weight is copied from the mapping into device buffers,
 *   each at most the device's largest allocation; the file is then closed.
 * Progress is reported in bytes of weights bound, read or copied; returning false cancels (SMOE_ERR_CANCELLED).
 */
#include "model.h"

#include "devices.h"
#include "placement.h"
#include "quant/quant-policy.h"
#include "quant/quant.h"
#include "tokenizer.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK ((size_t)64 << 20) /* bytes per pread / progress report */

/* One weight to place: its tensor and where its bytes come from in the file. */
typedef struct weight_src {
    smoe_tensor *t;
    int64_t      gguf_index;  /* >= 0: one GGUF tensor */
    int64_t     *expert_idx;  /* else n_expert GGUF tensors (per-expert layout), concatenated */
    int32_t      n_expert;
    size_t       offset;      /* in its destination buffer */
    bool         in_experts;  /* destination: experts_buf (else data_buf) */
    bool         on_gpu;      /* goes to the device's weight_bufs (place_weights_device), else host memory */
} weight_src;

typedef struct loader {
    const char              *path;
    smoe_model              *m;
    const smoe_model_params *params;
    const char              *arch;
    weight_src              *w;
    int                      n_w, cap_w;
    uint64_t                 done, total; /* progress, bytes */
    int                      fd;          /* for pread, -1 until needed */
    /* a synthetic model (smoe_model_init_synthetic): no file; bytes come from synth_fill */
    const smoe_synthetic_params *synth;
    uint8_t                     *pool[SMOE_TYPE_COUNT]; /* valid random blocks of each type used */
    size_t                       pool_size[SMOE_TYPE_COUNT];
} loader;

/* ---- parameters ---- */

smoe_model_params smoe_model_default_params(void) {
    return (smoe_model_params){
        .size = sizeof(smoe_model_params),
        .n_threads = 0,
        .use_mmap = true,
    };
}

/* ---- metadata ---- */

static const char *arch_key(const loader *L, char *buf, size_t size, const char *suffix) {
    snprintf(buf, size, "%s.%s", L->arch, suffix);
    return buf;
}

/* A required integer key in [lo, hi]. */
static smoe_status get_int(const loader *L, const char *suffix, bool required, int32_t def, int32_t lo, int32_t hi,
                           int32_t *out) {
    char key[128];
    arch_key(L, key, sizeof(key), suffix);
    uint32_t v = 0;
    if (!required && smoe_gguf_find_key(L->m->gguf, key) < 0) {
        *out = def;
        return SMOE_OK;
    }
    SMOE_TRY(smoe_gguf_get_u32(L->m->gguf, key, &v));
    SMOE_RETURN_IF(v < (uint32_t)lo || v > (uint32_t)hi, SMOE_ERR_CORRUPT_FILE,
                   "%s: %s = %u is out of range [%d, %d]", L->path, key, v, lo, hi);
    *out = (int32_t)v;
    return SMOE_OK;
}

static smoe_status get_float(const loader *L, const char *suffix, bool required, float def, float lo, float hi,
                             float *out) {
    char key[128];
    arch_key(L, key, sizeof(key), suffix);
    if (required) SMOE_TRY(smoe_gguf_get_f32(L->m->gguf, key, out));
    else SMOE_TRY(smoe_gguf_get_f32_or(L->m->gguf, key, def, out));
    SMOE_RETURN_IF(!isfinite(*out) || *out < lo || *out > hi, SMOE_ERR_CORRUPT_FILE,
                   "%s: %s = %g is out of range [%g, %g]", L->path, key, (double)*out, (double)lo, (double)hi);
    return SMOE_OK;
}

static smoe_status read_hparams(loader *L) {
    smoe_hparams *hp = &L->m->hp;
    SMOE_TRY(get_int(L, "block_count", true, 0, 1, SMOE_MODEL_MAX_LAYERS, &hp->n_layer));
    SMOE_TRY(get_int(L, "context_length", true, 0, 1, SMOE_MODEL_MAX_CTX_TRAIN, &hp->n_ctx_train));
    SMOE_TRY(get_int(L, "embedding_length", true, 0, 1, SMOE_MODEL_MAX_EMBD, &hp->n_embd));
    SMOE_TRY(get_int(L, "feed_forward_length", true, 0, 1, SMOE_MODEL_MAX_FF, &hp->n_ff));
    SMOE_TRY(get_int(L, "attention.head_count", true, 0, 1, SMOE_MODEL_MAX_HEADS, &hp->n_head));
    SMOE_TRY(get_int(L, "attention.head_count_kv", false, hp->n_head, 1, SMOE_MODEL_MAX_HEADS, &hp->n_head_kv));
    SMOE_TRY(get_int(L, "expert_count", false, 0, 0, SMOE_MODEL_MAX_EXPERTS, &hp->n_expert));
    SMOE_RETURN_IF(hp->n_expert == 0, SMOE_ERR_UNSUPPORTED,
                   "%s: %s.expert_count is 0 or absent: a dense model, not a mixture of experts (unsupported)",
                   L->path, L->arch);
    SMOE_TRY(get_int(L, "expert_used_count", true, 0, 1, hp->n_expert, &hp->n_expert_used));

    char key[128];
    SMOE_RETURN_IF(hp->n_embd % hp->n_head != 0, SMOE_ERR_CORRUPT_FILE,
                   "%s: embedding_length %d is not a multiple of head_count %d", L->path, hp->n_embd, hp->n_head);
    SMOE_RETURN_IF(hp->n_head % hp->n_head_kv != 0, SMOE_ERR_CORRUPT_FILE,
                   "%s: head_count %d is not a multiple of head_count_kv %d", L->path, hp->n_head, hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;
    SMOE_RETURN_IF(hp->head_dim % 2 != 0 || hp->head_dim > SMOE_MODEL_MAX_HEAD_DIM, SMOE_ERR_UNSUPPORTED,
                   "%s: head dimension %d (embedding_length / head_count) must be even and <= %d", L->path,
                   hp->head_dim, SMOE_MODEL_MAX_HEAD_DIM);
    /* llama.cpp allows key/value lengths that differ from n_embd / n_head; Mixtral does not use that */
    static const char *const kv_len[] = {"attention.key_length", "attention.value_length"};
    for (int i = 0; i < 2; i++) {
        int32_t len = 0;
        SMOE_TRY(get_int(L, kv_len[i], false, hp->head_dim, 1, SMOE_MODEL_MAX_HEAD_DIM, &len));
        SMOE_RETURN_IF(len != hp->head_dim, SMOE_ERR_UNSUPPORTED, "%s: %s = %d differs from the head dimension %d",
                       L->path, arch_key(L, key, sizeof(key), kv_len[i]), len, hp->head_dim);
    }
    SMOE_TRY(get_int(L, "rope.dimension_count", false, hp->head_dim, 2, hp->head_dim, &hp->n_rot));
    SMOE_RETURN_IF(hp->n_rot % 2 != 0, SMOE_ERR_CORRUPT_FILE, "%s: %s = %d is odd", L->path,
                   arch_key(L, key, sizeof(key), "rope.dimension_count"), hp->n_rot);
    /* llama.cpp's default for the llama architecture when the key is absent */
    SMOE_TRY(get_float(L, "rope.freq_base", false, 10000.0f, 1e-3f, 1e12f, &hp->rope_theta));
    SMOE_TRY(get_float(L, "attention.layer_norm_rms_epsilon", true, 0.0f, 0.0f, 1.0f, &hp->rms_eps));

    /* RoPE scaling: none or linear (positions multiplied by 1 / factor) */
    hp->rope_freq_scale = 1.0f;
    const char *type = NULL;
    if (smoe_gguf_find_key(L->m->gguf, arch_key(L, key, sizeof(key), "rope.scaling.type")) >= 0) {
        SMOE_TRY(smoe_gguf_get_str(L->m->gguf, key, &type));
        SMOE_RETURN_IF(strcmp(type, "none") != 0 && strcmp(type, "linear") != 0, SMOE_ERR_UNSUPPORTED,
                       "%s: %s = \"%s\" is not supported (only none and linear)", L->path, key, type);
    }
    float factor = 1.0f;
    if (type && strcmp(type, "linear") == 0)
        SMOE_TRY(get_float(L, "rope.scaling.factor", false, 1.0f, 1e-3f, 1e6f, &factor));
    else if (!type)
        SMOE_TRY(get_float(L, "rope.scale_linear", false, 1.0f, 1e-3f, 1e6f, &factor));
    hp->rope_freq_scale = 1.0f / factor;
    return SMOE_OK;
}

/* ---- the weight table ---- */

static smoe_status push_weight(loader *L, weight_src w) {
    if (L->n_w == L->cap_w) {
        int          nc = L->cap_w ? 2 * L->cap_w : 64;
        weight_src *p  = realloc(L->w, (size_t)nc * sizeof(*p));
        SMOE_RETURN_IF(!p, SMOE_ERR_OUT_OF_MEMORY, "model: out of memory");
        L->w = p;
        L->cap_w = nc;
    }
    L->w[L->n_w++] = w;
    return SMOE_OK;
}

typedef enum weight_use {
    USE_NORM,     /* f32 vector (RMS_NORM weight) */
    USE_MATMUL,   /* MUL_MAT / MUL_MAT_ID weight: needs to_f32 and vec_dot */
    USE_ROWS,     /* GET_ROWS table: needs to_f32 */
} weight_use;

static const char *shape_str(char *buf, size_t size, int n, const int64_t *ne) {
    int k = snprintf(buf, size, "[");
    for (int i = 0; i < n && k > 0 && (size_t)k < size; i++)
        k += snprintf(buf + k, size - (size_t)k, "%s%" PRId64, i ? ", " : "", ne[i]);
    if (k > 0 && (size_t)k < size) snprintf(buf + k, size - (size_t)k, "]");
    return buf;
}

/* Checks GGUF tensor `name` against the expected shape and use. */
static smoe_status check_tensor(const loader *L, const char *name, int n_dims, const int64_t *ne, weight_use use,
                                int64_t *index) {
    const int64_t i = smoe_gguf_find_tensor(L->m->gguf, name);
    SMOE_RETURN_IF(i < 0, SMOE_ERR_CORRUPT_FILE, "%s: tensor '%s' is missing", L->path, name);
    const smoe_gguf_tensor_info *ti = smoe_gguf_tensor(L->m->gguf, i);
    bool ok = true;
    for (int d = 0; d < SMOE_GGUF_MAX_DIMS; d++) ok = ok && ti->ne[d] == (d < n_dims ? ne[d] : 1);
    if (!ok) {
        char a[128], b[128];
        return smoe_set_error(SMOE_ERR_CORRUPT_FILE, "%s: tensor '%s' has shape %s, expected %s", L->path, name,
                              shape_str(a, sizeof(a), (int)ti->n_dims, ti->ne), shape_str(b, sizeof(b), n_dims, ne));
    }
    const smoe_type_traits *tr = smoe_type_get_traits(ti->type);
    SMOE_RETURN_IF(!tr, SMOE_ERR_UNSUPPORTED, "%s: tensor '%s' has unknown type id %d", L->path, name, (int)ti->type);
    switch (use) {
    case USE_NORM:
        SMOE_RETURN_IF(ti->type != SMOE_TYPE_F32, SMOE_ERR_UNSUPPORTED,
                       "%s: tensor '%s' has type %s; norm weights must be f32", L->path, name, tr->name);
        break;
    case USE_MATMUL:
        SMOE_RETURN_IF(!tr->to_f32 || !tr->vec_dot, SMOE_ERR_UNSUPPORTED,
                       "%s: tensor '%s' has type %s, which smoe cannot multiply with (no dot product)", L->path, name,
                       tr->name);
        break;
    case USE_ROWS:
        SMOE_RETURN_IF(!tr->to_f32, SMOE_ERR_UNSUPPORTED,
                       "%s: tensor '%s' has type %s, which smoe cannot convert to f32", L->path, name, tr->name);
        break;
    }
    *index = i;
    return SMOE_OK;
}

static smoe_status new_weight(loader *L, const char *name, smoe_type type, int n_dims, const int64_t *ne,
                              smoe_tensor **out) {
    SMOE_TRY(smoe_tensor_new(L->m->arena, type, n_dims, ne, out));
    smoe_tensor_set_name(*out, name);
    smoe_tensor_set_flags(*out, SMOE_TENSOR_WEIGHT);
    return SMOE_OK;
}

/* A weight stored as one GGUF tensor. */
static smoe_status add_weight(loader *L, const char *name, int n_dims, const int64_t *ne, weight_use use,
                              smoe_tensor **out) {
    int64_t i = -1;
    SMOE_TRY(check_tensor(L, name, n_dims, ne, use, &i));
    SMOE_TRY(new_weight(L, name, smoe_gguf_tensor(L->m->gguf, i)->type, n_dims, ne, out));
    return push_weight(L, (weight_src){.t = *out, .gguf_index = i});
}

/* An expert tensor [k, m, n_expert]: merged "blk.N.<merged>.weight", or per expert "blk.N.<single>.E.weight". */
static smoe_status add_experts(loader *L, int il, const char *merged, const char *single, int64_t k, int64_t m,
                               smoe_tensor **out) {
    const int32_t n_expert = L->m->hp.n_expert;
    char          name[SMOE_MAX_NAME];
    snprintf(name, sizeof(name), "blk.%d.%s.weight", il, merged);
    if (smoe_gguf_find_tensor(L->m->gguf, name) >= 0) {
        const int64_t ne[3] = {k, m, n_expert};
        return add_weight(L, name, 3, ne, USE_MATMUL, out);
    }
    char first[SMOE_MAX_NAME];
    snprintf(first, sizeof(first), "blk.%d.%s.0.weight", il, single);
    SMOE_RETURN_IF(smoe_gguf_find_tensor(L->m->gguf, first) < 0, SMOE_ERR_CORRUPT_FILE,
                   "%s: tensor '%s' is missing (nor is there a per-expert '%s')", L->path, name, first);
    int64_t *idx = calloc((size_t)n_expert, sizeof(*idx));
    SMOE_RETURN_IF(!idx, SMOE_ERR_OUT_OF_MEMORY, "model: out of memory");
    smoe_status st = SMOE_OK;
    smoe_type   type = SMOE_TYPE_F32;
    for (int32_t e = 0; e < n_expert; e++) {
        char ename[SMOE_MAX_NAME];
        snprintf(ename, sizeof(ename), "blk.%d.%s.%d.weight", il, single, (int)e);
        const int64_t ne[2] = {k, m};
        SMOE_GOTO_TRY(st, fail, check_tensor(L, ename, 2, ne, USE_MATMUL, &idx[e]));
        const smoe_type te = smoe_gguf_tensor(L->m->gguf, idx[e])->type;
        if (e == 0) type = te;
        SMOE_GOTO_IF(te != type, st, fail, SMOE_ERR_UNSUPPORTED,
                     "%s: tensor '%s' has type %s but expert 0 has %s (experts of a layer must share a type)",
                     L->path, ename, smoe_type_name(te), smoe_type_name(type));
    }
    const int64_t ne[3] = {k, m, n_expert};
    SMOE_GOTO_TRY(st, fail, new_weight(L, name, type, 3, ne, out));
    SMOE_GOTO_TRY(st, fail,
                  push_weight(L, (weight_src){.t = *out, .gguf_index = -1, .expert_idx = idx, .n_expert = n_expert,
                                              .in_experts = true}));
    return SMOE_OK;
fail:
    free(idx);
    return st;
}

static smoe_status build_weight_table(loader *L) {
    smoe_model   *m = L->m;
    smoe_hparams *hp = &m->hp;
    const int64_t n_embd = hp->n_embd, n_q = (int64_t)hp->n_head * hp->head_dim,
                  n_kv = (int64_t)hp->n_head_kv * hp->head_dim;

    /* the vocabulary size comes from token_embd */
    const int64_t ti = smoe_gguf_find_tensor(m->gguf, "token_embd.weight");
    SMOE_RETURN_IF(ti < 0, SMOE_ERR_CORRUPT_FILE, "%s: tensor 'token_embd.weight' is missing", L->path);
    const int64_t n_vocab = smoe_gguf_tensor(m->gguf, ti)->ne[1];
    SMOE_RETURN_IF(n_vocab < 1 || n_vocab > SMOE_MODEL_MAX_VOCAB, SMOE_ERR_CORRUPT_FILE,
                   "%s: tensor 'token_embd.weight' has %" PRId64 " rows (vocabulary), out of range", L->path, n_vocab);
    hp->n_vocab = (int32_t)n_vocab;
    char key[128];
    int32_t vocab_key = 0;
    SMOE_TRY(get_int(L, "vocab_size", false, hp->n_vocab, 1, SMOE_MODEL_MAX_VOCAB, &vocab_key));
    SMOE_RETURN_IF(vocab_key != hp->n_vocab, SMOE_ERR_CORRUPT_FILE,
                   "%s: %s = %d but token_embd.weight has %d rows", L->path,
                   arch_key(L, key, sizeof(key), "vocab_size"), vocab_key, hp->n_vocab);

    const int64_t ne_embd[2] = {n_embd, n_vocab};
    const bool    tied = smoe_gguf_find_tensor(m->gguf, "output.weight") < 0;
    SMOE_TRY(add_weight(L, "token_embd.weight", 2, ne_embd, tied ? USE_MATMUL : USE_ROWS, &m->tok_embd));
    SMOE_TRY(add_weight(L, "output_norm.weight", 1, &n_embd, USE_NORM, &m->output_norm));
    if (tied) {
        m->output = m->tok_embd;
        smoe_log(&m->logger, SMOE_LOG_INFO, "%s: no output.weight: the output layer is tied to token_embd", L->path);
    } else {
        SMOE_TRY(add_weight(L, "output.weight", 2, ne_embd, USE_MATMUL, &m->output));
    }

    m->layers = calloc((size_t)hp->n_layer, sizeof(*m->layers));
    SMOE_RETURN_IF(!m->layers, SMOE_ERR_OUT_OF_MEMORY, "model: out of memory");
    for (int il = 0; il < hp->n_layer; il++) {
        smoe_layer *l = &m->layers[il];
        char        name[SMOE_MAX_NAME];
#define W(field, suffix, n, use, ...)                                                                                  \
    do {                                                                                                               \
        const int64_t ne_[] = {__VA_ARGS__};                                                                           \
        snprintf(name, sizeof(name), "blk.%d." suffix ".weight", il);                                                 \
        SMOE_TRY(add_weight(L, name, n, ne_, use, &l->field));                                                        \
    } while (0)
        W(attn_norm, "attn_norm", 1, USE_NORM, n_embd);
        W(wq, "attn_q", 2, USE_MATMUL, n_embd, n_q);
        W(wk, "attn_k", 2, USE_MATMUL, n_embd, n_kv);
        W(wv, "attn_v", 2, USE_MATMUL, n_embd, n_kv);
        W(wo, "attn_output", 2, USE_MATMUL, n_q, n_embd);
        W(ffn_norm, "ffn_norm", 1, USE_NORM, n_embd);
        W(ffn_gate_inp, "ffn_gate_inp", 2, USE_MATMUL, n_embd, hp->n_expert);
#undef W
        SMOE_TRY(add_experts(L, il, "ffn_gate_exps", "ffn_gate", n_embd, hp->n_ff, &l->ffn_gate_exps));
        SMOE_TRY(add_experts(L, il, "ffn_up_exps", "ffn_up", n_embd, hp->n_ff, &l->ffn_up_exps));
        SMOE_TRY(add_experts(L, il, "ffn_down_exps", "ffn_down", hp->n_ff, n_embd, &l->ffn_down_exps));
    }
    return SMOE_OK;
}

/* ---- placing the bytes ---- */

static smoe_status progress(loader *L, uint64_t bytes) {
    L->done += bytes;
    if (L->params->progress_fn && !L->params->progress_fn(L->done, L->total, L->params->progress_user_data))
        return smoe_set_error(SMOE_ERR_CANCELLED, "%s: loading cancelled by the progress callback", L->path);
    return SMOE_OK;
}

/* Copies file bytes [off, off + size) to dst: from the mapping (mmap mode) or with pread. Reports progress. */
static smoe_status copy_bytes(loader *L, bool use_pread, uint64_t off, uint8_t *dst, size_t size, const char *what) {
    const uint8_t *base = smoe_gguf_base(L->m->gguf);
    while (size > 0) {
        const size_t n = size < READ_CHUNK ? size : READ_CHUNK;
        if (use_pread) {
            size_t got = 0;
            while (got < n) {
                ssize_t r = pread(L->fd, dst + got, n - got, (off_t)(off + got));
                if (r < 0 && errno == EINTR) continue;
                SMOE_RETURN_IF(r < 0, SMOE_ERR_IO, "%s: reading tensor '%s': %s", L->path, what, strerror(errno));
                SMOE_RETURN_IF(r == 0, SMOE_ERR_IO, "%s: reading tensor '%s': unexpected end of file", L->path, what);
                got += (size_t)r;
            }
        } else {
            memcpy(dst, base + off, n);
        }
        dst += n;
        off += n;
        size -= n;
        SMOE_TRY(progress(L, n));
    }
    return SMOE_OK;
}

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

static smoe_status synth_fill(loader *L, int wi, size_t off, uint8_t *dst, size_t n);

/* A synthetic weight's bytes into its bound tensor, in chunks (progress): generated in place in host memory, or into
 * `staging` (READ_CHUNK bytes) and copied to the device. */
static smoe_status synth_upload(loader *L, int wi, uint8_t *staging) {
    smoe_tensor *t = L->w[wi].t;
    const size_t size = smoe_tensor_nbytes(t);
    for (size_t o = 0; o < size; o += READ_CHUNK) {
        const size_t n = size - o < READ_CHUNK ? size - o : READ_CHUNK;
        SMOE_TRY(synth_fill(L, wi, o, staging ? staging : (uint8_t *)t->data + o, n));
        if (staging) {
            const smoe_status st = smoe_tensor_set(t, staging, o, n);
            if (st != SMOE_OK) {
                smoe_error_prefix("%s: copying tensor '%s' to %s", L->path, t->name, smoe_backend_name(L->m->backend));
                return st;
            }
        }
        SMOE_TRY(progress(L, n));
    }
    return SMOE_OK;
}

/* Binds the weights of host memory (every weight not on_gpu) to buffers of `be`, a CPU backend: read into memory
 * (use_pread) or left in the mapping. */
static smoe_status place_weights(loader *L, smoe_backend *be, bool use_mmap) {
    smoe_model    *m = L->m;
    const uint64_t data_off = smoe_gguf_data_offset(m->gguf);
    smoe_backend_props props;
    smoe_backend_get_props(be, &props);
    const size_t align = props.alignment ? props.alignment : 64;

    /* layout of allocated bytes */
    size_t data_size = 0, experts_size = 0;
    for (int i = 0; i < L->n_w; i++) {
        weight_src *w = &L->w[i];
        if (w->on_gpu) continue;
        size_t *sz = w->in_experts ? &experts_size : &data_size;
        w->offset = align_up(*sz, align);
        *sz = w->offset + smoe_tensor_nbytes(w->t);
    }

    if (use_mmap) {
        /* bind at file offsets if the backend can wrap the mapping and every offset is aligned for it */
        const uint64_t fsize = smoe_gguf_file_size(m->gguf);
        void          *ptr = (void *)((const uint8_t *)smoe_gguf_base(m->gguf) + data_off);
        bool ok = smoe_backend_buffer_from_host_ptr(be, ptr, (size_t)(fsize - data_off), &m->data_buf) == SMOE_OK;
        for (int i = 0; i < L->n_w && ok; i++)
            if (!L->w[i].in_experts && !L->w[i].on_gpu)
                ok = smoe_gguf_tensor(m->gguf, L->w[i].gguf_index)->offset % m->data_buf->alignment == 0;
        if (ok) {
            for (int i = 0; i < L->n_w; i++) {
                weight_src *w = &L->w[i];
                if (w->in_experts || w->on_gpu) continue;
                SMOE_TRY(smoe_tensor_bind(w->t, m->data_buf,
                                          (size_t)smoe_gguf_tensor(m->gguf, w->gguf_index)->offset));
                SMOE_TRY(progress(L, smoe_tensor_nbytes(w->t)));
            }
        } else {
            smoe_log(&m->logger, SMOE_LOG_WARN,
                     "%s: backend %s cannot use the mapped tensors in place (alignment %" PRIu64
                     "): reading them into memory",
                     L->path, smoe_backend_name(be), smoe_gguf_alignment(m->gguf));
            smoe_buffer_free(m->data_buf);
            m->data_buf = NULL;
            use_mmap = false;
        }
    }
    const bool use_pread = !use_mmap;
    if (use_pread && !L->synth) {
        L->fd = open(L->path, O_RDONLY | O_CLOEXEC);
        SMOE_RETURN_IF(L->fd < 0, SMOE_ERR_IO, "%s: cannot open: %s", L->path, strerror(errno));
    }
    if (use_pread) {
        smoe_status st = smoe_backend_buffer_alloc(be, data_size, &m->data_buf);
        if (st != SMOE_OK) {
            smoe_error_prefix("%s: weights (%zu MiB)", L->path, data_size >> 20);
            return st;
        }
    }
    if (experts_size > 0) {
        smoe_status st = smoe_backend_buffer_alloc(be, experts_size, &m->experts_buf);
        if (st != SMOE_OK) {
            smoe_error_prefix("%s: merged per-expert weights (%zu MiB)", L->path, experts_size >> 20);
            return st;
        }
        smoe_log(&m->logger, SMOE_LOG_INFO, "%s: per-expert tensors merged into %zu MiB of memory", L->path,
                 experts_size >> 20);
    }
    /* copies */
    for (int i = 0; i < L->n_w; i++) {
        weight_src *w = &L->w[i];
        if (w->on_gpu) continue;
        if (L->synth) {
            SMOE_TRY(smoe_tensor_bind(w->t, m->data_buf, w->offset));
            SMOE_TRY(synth_upload(L, i, NULL));
        } else if (w->in_experts) {
            uint8_t *dst = (uint8_t *)m->experts_buf->base + w->offset;
            for (int32_t e = 0; e < w->n_expert; e++) {
                const smoe_gguf_tensor_info *ti = smoe_gguf_tensor(m->gguf, w->expert_idx[e]);
                SMOE_TRY(copy_bytes(L, use_pread, data_off + ti->offset, dst, (size_t)ti->size, ti->name));
                dst += ti->size;
            }
            SMOE_TRY(smoe_tensor_bind(w->t, m->experts_buf, w->offset));
        } else if (use_pread) {
            const smoe_gguf_tensor_info *ti = smoe_gguf_tensor(m->gguf, w->gguf_index);
            SMOE_TRY(copy_bytes(L, true, data_off + ti->offset, (uint8_t *)m->data_buf->base + w->offset,
                                (size_t)ti->size, ti->name));
            SMOE_TRY(smoe_tensor_bind(w->t, m->data_buf, w->offset));
        }
    }
    return SMOE_OK;
}

/* A device backend (not host memory): the weights on_gpu are copied from the mapping into device buffers of at most
 * props.max_buffer_size bytes each (consecutive weights share a buffer). */
static smoe_status place_weights_device(loader *L) {
    smoe_model    *m = L->m;
    const uint64_t data_off = smoe_gguf_data_offset(m->gguf);
    smoe_backend_props props;
    smoe_backend_get_props(m->backend, &props);
    const size_t   align = props.alignment ? props.alignment : 256;
    const uint64_t max = props.max_buffer_size ? props.max_buffer_size : UINT64_MAX;

    /* layout: w->offset in buffer buf_of[i] */
    uint8_t *staging = NULL;
    int32_t *buf_of = calloc((size_t)L->n_w + 1, sizeof(*buf_of));
    size_t  *sizes = calloc((size_t)L->n_w + 1, sizeof(*sizes));
    smoe_status st = SMOE_OK;
    SMOE_GOTO_IF(!buf_of || !sizes, st, done, SMOE_ERR_OUT_OF_MEMORY, "model: out of memory");
    int32_t n_bufs = 0;
    for (int i = 0; i < L->n_w; i++) {
        weight_src *w = &L->w[i];
        if (!w->on_gpu) continue;
        const size_t bytes = smoe_tensor_nbytes(w->t);
        SMOE_GOTO_IF(bytes > max, st, done, SMOE_ERR_UNSUPPORTED,
                     "%s: tensor '%s' (%zu MiB) is larger than the largest buffer of %s (%" PRIu64 " MiB)", L->path,
                     w->t->name, bytes >> 20, smoe_backend_name(m->backend), max >> 20);
        size_t off = n_bufs ? align_up(sizes[n_bufs - 1], align) : 0;
        if (n_bufs == 0 || off + bytes > max) {
            n_bufs++;
            off = 0;
        }
        w->offset = off;
        buf_of[i] = n_bufs - 1;
        sizes[n_bufs - 1] = off + bytes;
    }
    m->weight_bufs = calloc((size_t)n_bufs + 1, sizeof(*m->weight_bufs));
    SMOE_GOTO_IF(!m->weight_bufs, st, done, SMOE_ERR_OUT_OF_MEMORY, "model: out of memory");
    m->n_weight_bufs = n_bufs;
    for (int32_t b = 0; b < n_bufs; b++) {
        st = smoe_backend_buffer_alloc(m->backend, sizes[b], &m->weight_bufs[b]);
        if (st != SMOE_OK) {
            smoe_error_prefix("%s: weights on %s (buffer %d of %d, %zu MiB)", L->path, smoe_backend_name(m->backend),
                              (int)b + 1, (int)n_bufs, sizes[b] >> 20);
            goto done;
        }
    }
    /* copies, straight from the mapping (a synthetic model: from a staging buffer), in chunks (progress) */
    const uint8_t *base = L->synth ? NULL : smoe_gguf_base(m->gguf);
    if (L->synth) {
        staging = malloc(READ_CHUNK);
        SMOE_GOTO_IF(!staging, st, done, SMOE_ERR_OUT_OF_MEMORY, "model: out of memory (staging buffer)");
    }
    for (int i = 0; i < L->n_w && st == SMOE_OK; i++) {
        weight_src *w = &L->w[i];
        if (!w->on_gpu) continue;
        SMOE_GOTO_TRY(st, done, smoe_tensor_bind(w->t, m->weight_bufs[buf_of[i]], w->offset));
        if (L->synth) {
            SMOE_GOTO_TRY(st, done, synth_upload(L, i, staging));
            continue;
        }
        const int32_t n_src = w->gguf_index >= 0 ? 1 : w->n_expert;
        size_t dst = 0;
        for (int32_t e = 0; e < n_src; e++) {
            const smoe_gguf_tensor_info *ti = smoe_gguf_tensor(m->gguf, w->gguf_index >= 0 ? w->gguf_index
                                                                                           : w->expert_idx[e]);
            for (size_t o = 0; o < (size_t)ti->size; o += READ_CHUNK) {
                const size_t n = (size_t)ti->size - o < READ_CHUNK ? (size_t)ti->size - o : READ_CHUNK;
                st = smoe_tensor_set(w->t, base + data_off + ti->offset + o, dst + o, n);
                if (st != SMOE_OK) {
                    smoe_error_prefix("%s: copying tensor '%s' to %s", L->path, ti->name,
                                      smoe_backend_name(m->backend));
                    goto done;
                }
                SMOE_GOTO_TRY(st, done, progress(L, n));
            }
            dst += (size_t)ti->size;
        }
    }
done:
    free(staging);
    free(buf_of);
    free(sizes);
    return st;
}

/* ---- which weights the device holds ---- */

/* Sets w->on_gpu for every weight from the budget of params->gpu_mem and records the plan in m->placement. */
static smoe_status plan_device(loader *L, const smoe_backend_props *props) {
    smoe_model    *m = L->m;
    const uint64_t align = props->alignment ? props->alignment : 256;
    const uint64_t budget = L->params->gpu_mem ? L->params->gpu_mem
                                               : smoe_device_auto_gpu_mem(props->memory_total, props->memory_free);
    smoe_place_tensor *pt = malloc((size_t)L->n_w * sizeof(*pt));
    bool              *on = malloc((size_t)L->n_w * sizeof(*on));
    smoe_status        st = SMOE_OK;
    SMOE_GOTO_IF(!pt || !on, st, done, SMOE_ERR_OUT_OF_MEMORY, "model: out of memory");
    for (int i = 0; i < L->n_w; i++) pt[i] = (smoe_place_tensor){L->w[i].t->name, smoe_tensor_nbytes(L->w[i].t)};
    smoe_place_stats ps;
    SMOE_GOTO_TRY(st, done, smoe_place_plan(pt, (size_t)L->n_w, budget, align, on, &ps));
    smoe_place_summary(&ps, budget, m->hp.n_layer, &m->placement);
    for (int i = 0; i < L->n_w; i++) L->w[i].on_gpu = on[i] || !m->placement.split;
    if (!m->placement.split) goto done;
    smoe_log(&m->logger, SMOE_LOG_INFO,
             "%s: %.2f GiB of weights do not fit the budget of %.2f GiB on %s: %.2f GiB there (%s, the experts of "
             "%d of %d layers), %.2f GiB in host memory, run on the CPU",
             L->path, (double)ps.total_bytes / (1 << 30), (double)budget / (1 << 30), props->name,
             (double)ps.gpu_bytes / (1 << 30),
             ps.dense_complete ? "every norm, router, attention and output weight" : "not even every dense weight",
             ps.n_ffn_layers_gpu, m->hp.n_layer, (double)ps.host_bytes / (1 << 30));
    if (!ps.dense_complete)
        smoe_log(&m->logger, SMOE_LOG_WARN,
                 "%s: the budget of %.2f GiB does not hold the attention and routers: most of the work runs on the "
                 "CPU",
                 L->path, (double)budget / (1 << 30));
done:
    free(pt);
    free(on);
    return st;
}

/* ---- summary figures ---- */

static void summarize(smoe_model *m, const loader *L) {
    uint64_t by_type[SMOE_TYPE_COUNT] = {0}, matrix_bytes = 0;
    for (int i = 0; i < L->n_w; i++) {
        const smoe_tensor *t = L->w[i].t;
        const uint64_t     nb = smoe_tensor_nbytes(t);
        m->n_params += (uint64_t)smoe_tensor_nelements(t);
        m->size_bytes += nb;
        if (t->n_dims >= 2) {
            by_type[t->type] += nb;
            matrix_bytes += nb;
        }
    }
    int best = 0;
    for (int i = 1; i < SMOE_TYPE_COUNT; i++)
        if (by_type[i] > by_type[best]) best = i;
    m->type_name = 2 * by_type[best] >= matrix_bytes ? smoe_type_name(best) : "mixed";
}

/* ---- public ---- */

static smoe_status place_all(loader *L);

static smoe_status load(loader *L) {
    smoe_model *m = L->m;
    SMOE_TRY(smoe_gguf_open(L->path, &m->gguf));

    const char *arch = NULL;
    SMOE_TRY(smoe_gguf_get_str(m->gguf, "general.architecture", &arch));
    SMOE_RETURN_IF(strcmp(arch, "llama") != 0 && strcmp(arch, "mixtral") != 0, SMOE_ERR_UNSUPPORTED,
                   "%s: architecture '%s' is not supported (expected llama or mixtral)", L->path, arch);
    L->arch = arch;
    SMOE_TRY(read_hparams(L));

    const char *name = "";
    if (smoe_gguf_find_key(m->gguf, "general.name") >= 0) SMOE_TRY(smoe_gguf_get_str(m->gguf, "general.name", &name));
    m->name = strdup(name);
    SMOE_RETURN_IF(!m->name, SMOE_ERR_OUT_OF_MEMORY, "model: out of memory");

    SMOE_TRY(smoe_arena_init(0, &m->arena));
    SMOE_TRY(build_weight_table(L));

    if (smoe_gguf_find_key(m->gguf, "tokenizer.ggml.model") >= 0) {
        SMOE_TRY(smoe_tokenizer_from_gguf(m->gguf, &m->tokenizer));
        SMOE_RETURN_IF(m->tokenizer->n_vocab > m->hp.n_vocab, SMOE_ERR_CORRUPT_FILE,
                       "%s: the tokenizer has %d tokens but token_embd.weight only %d rows", L->path,
                       (int)m->tokenizer->n_vocab, m->hp.n_vocab);
    } else {
        smoe_log(&m->logger, SMOE_LOG_WARN, "%s: no tokenizer (tokenizer.ggml.model is absent)", L->path);
    }
    return place_all(L);
}

/* Places the weight table's bytes on the backend of params->backend (and host memory for what a device cannot
 * hold), then logs the summary. */
static smoe_status place_all(loader *L) {
    smoe_model              *m = L->m;
    const smoe_model_params *p = L->params;
    const bool               use_mmap = p->use_mmap && !L->synth;
    const char             *spec = p->backend && *p->backend ? p->backend : smoe_backend_default_spec();
    const smoe_backend_reg *reg = NULL;
    int                     device = 0;
    SMOE_TRY(smoe_backend_spec_parse(spec, &reg, &device));
    for (int i = 0; i < L->n_w; i++) L->total += smoe_tensor_nbytes(L->w[i].t);
    /* the weights' own backend holds their buffers; each context computes on a CPU backend of its own */
    smoe_cpu_params cp = smoe_cpu_default_params();
    cp.n_threads = 1;
    if (strcmp(reg->name, "cpu") == 0) {
        if (p->gpu_mem)
            smoe_log(&m->logger, SMOE_LOG_WARN, "%s: gpu_mem (--gpu-mem) is ignored: the CPU backend holds every weight",
                     L->path);
        SMOE_TRY(smoe_cpu_backend_init(&cp, &m->backend));
        SMOE_TRY(place_weights(L, m->backend, use_mmap));
    } else {
        /* a device: it holds the weights (those the plan gives it) and runs the contexts' graphs */
        SMOE_TRY(smoe_backend_init_by_name(reg->name, device, &m->backend));
        smoe_backend_props props;
        smoe_backend_get_props(m->backend, &props);
        m->on_device = !props.host_memory;
        if (m->on_device) {
            SMOE_TRY(plan_device(L, &props));
            SMOE_TRY(place_weights_device(L));
            if (m->placement.n_host_tensors > 0) {
                SMOE_TRY(smoe_cpu_backend_init(&cp, &m->host_backend));
                SMOE_TRY(place_weights(L, m->host_backend, use_mmap));
            }
        } else {
            SMOE_TRY(place_weights(L, m->backend, use_mmap));
        }
        smoe_log(&m->logger, SMOE_LOG_INFO, "%s: weights on %s (%s)", L->path, props.name, props.description);
    }
    if (m->gguf && (!m->data_buf || !m->data_buf->borrowed)) {
        /* nothing refers to the mapping any more */
        smoe_gguf_close(m->gguf);
        m->gguf = NULL;
    }
    summarize(m, L);
    if (!m->on_device) {
        m->placement = (smoe_placement){.size = sizeof(m->placement), .budget = 0, .host_bytes = m->size_bytes,
                                        .n_host_tensors = L->n_w, .n_layer = m->hp.n_layer};
    }
    const smoe_hparams *hp = &m->hp;
    smoe_log(&m->logger, SMOE_LOG_INFO,
             "%s: %d layers, n_embd %d, %d heads (%d kv) of %d, %d experts (%d used) of n_ff %d, vocab %d, "
             "%.1f M parameters, %s, %.1f MiB",
             L->path, hp->n_layer, hp->n_embd, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_expert,
             hp->n_expert_used, hp->n_ff, hp->n_vocab, (double)m->n_params / 1e6, m->type_name,
             (double)m->size_bytes / (1 << 20));
    return SMOE_OK;
}

static smoe_status run_loader(loader *L, smoe_status (*fn)(loader *), smoe_model **out);

smoe_status smoe_model_load(const char *path, const smoe_model_params *params, smoe_model **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "smoe_model_load: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!path, SMOE_ERR_INVALID_ARGUMENT, "smoe_model_load: path is NULL");
    const smoe_model_params defaults = smoe_model_default_params();
    const smoe_model_params *p = params ? params : &defaults;
    loader L = {.path = path, .params = p, .fd = -1};
    return run_loader(&L, load, out);
}

/* Checks the model params, makes the model, runs fn and cleans up the loader. */
static smoe_status run_loader(loader *L, smoe_status (*fn)(loader *), smoe_model **out) {
    const smoe_model_params *p = L->params;
    SMOE_RETURN_IF(p->size != sizeof(smoe_model_params), SMOE_ERR_INVALID_ARGUMENT,
                   "model params: size %u, expected %zu (use smoe_model_default_params)", p->size,
                   sizeof(smoe_model_params));
    SMOE_RETURN_IF(p->n_threads < 0 || p->n_threads > 1024, SMOE_ERR_INVALID_ARGUMENT,
                   "model params: n_threads %d not in [0, 1024]", (int)p->n_threads);
    smoe_model *m = calloc(1, sizeof(*m));
    SMOE_RETURN_IF(!m, SMOE_ERR_OUT_OF_MEMORY, "model: out of memory");
    pthread_mutex_init(&m->device_lock, NULL);
    m->logger = (smoe_logger){p->log_fn, p->log_user_data};
    m->n_threads = p->n_threads;
    if (m->n_threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        m->n_threads = n < 1 ? 1 : n > 1024 ? 1024 : (int32_t)n;
    }
    L->m = m;
    smoe_status st = fn(L);
    if (L->fd >= 0) close(L->fd);
    for (int i = 0; i < L->n_w; i++) free(L->w[i].expert_idx);
    free(L->w);
    for (int t = 0; t < SMOE_TYPE_COUNT; t++) free(L->pool[t]);
    if (st != SMOE_OK) {
        smoe_model_free(m);
        return st;
    }
    *out = m;
    return SMOE_OK;
}

void smoe_model_free(smoe_model *m) {
    if (!m) return;
    smoe_buffer_free(m->data_buf);
    smoe_buffer_free(m->experts_buf);
    for (int32_t b = 0; b < m->n_weight_bufs && m->weight_bufs; b++) smoe_buffer_free(m->weight_bufs[b]);
    free(m->weight_bufs);
    smoe_backend_free(m->host_backend);
    smoe_backend_free(m->backend);
    pthread_mutex_destroy(&m->device_lock);
    smoe_tokenizer_free(m->tokenizer);
    smoe_gguf_close(m->gguf);
    smoe_arena_free(m->arena);
    free(m->layers);
    free(m->name);
    free(m);
}

void smoe_model_get_info(const smoe_model *m, smoe_model_info *info) {
    if (!info) return;
    memset(info, 0, sizeof(*info));
    if (!m) {
        info->name = "";
        info->type_name = "";
        return;
    }
    const smoe_hparams *hp = &m->hp;
    info->n_vocab = hp->n_vocab;
    info->n_ctx_train = hp->n_ctx_train;
    info->n_embd = hp->n_embd;
    info->n_layer = hp->n_layer;
    info->n_head = hp->n_head;
    info->n_head_kv = hp->n_head_kv;
    info->head_dim = hp->head_dim;
    info->n_ff = hp->n_ff;
    info->n_expert = hp->n_expert;
    info->n_expert_used = hp->n_expert_used;
    info->rope_theta = hp->rope_theta;
    info->rms_eps = hp->rms_eps;
    info->n_params = m->n_params;
    info->size_bytes = m->size_bytes;
    info->name = m->name ? m->name : "";
    info->type_name = m->type_name ? m->type_name : "";
}

const smoe_tokenizer *smoe_model_tokenizer(const smoe_model *m) { return m ? m->tokenizer : NULL; }

smoe_status smoe_model_get_placement(const smoe_model *m, smoe_placement *out) {
    SMOE_RETURN_IF(!m || !out, SMOE_ERR_INVALID_ARGUMENT, "smoe_model_get_placement: NULL argument");
    SMOE_RETURN_IF(out->size != sizeof(*out), SMOE_ERR_INVALID_ARGUMENT,
                   "smoe_model_get_placement: size %u, expected %zu (set out->size = sizeof(smoe_placement))",
                   out->size, sizeof(*out));
    *out = m->placement;
    return SMOE_OK;
}

int32_t smoe_model_weight_on_host(const smoe_model *m, const char *name) {
    if (!m || !name) return -1;
    const smoe_tensor *found = NULL;
    const smoe_tensor *top[] = {m->tok_embd, m->output_norm, m->output};
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]) && !found; i++)
        if (top[i] && strcmp(top[i]->name, name) == 0) found = top[i];
    for (int32_t il = 0; il < m->hp.n_layer && !found; il++) {
        const smoe_layer  *l = &m->layers[il];
        const smoe_tensor *ws[] = {l->attn_norm, l->wq,           l->wk,          l->wv,           l->wo,
                                   l->ffn_norm,  l->ffn_gate_inp, l->ffn_gate_exps, l->ffn_up_exps, l->ffn_down_exps};
        for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]) && !found; i++)
            if (strcmp(ws[i]->name, name) == 0) found = ws[i];
    }
    if (!found || !found->buffer) return -1;
    return (!m->on_device || found->buffer->backend != m->backend) ? 1 : 0;
}

/* ---- synthetic models (benchmarks without a file) ---- */

smoe_synthetic_params smoe_synthetic_default_params(void) {
    return (smoe_synthetic_params){
        .size = sizeof(smoe_synthetic_params), .preset = "mixtral-8x7b", .ftype = SMOE_FTYPE_Q4_0, .seed = 1};
}

typedef struct synth_preset {
    const char  *name;
    smoe_hparams hp;
} synth_preset;

static const synth_preset k_presets[] = {
    {"mixtral-8x7b", {.n_vocab = 32000, .n_ctx_train = 32768, .n_embd = 4096, .n_layer = 32, .n_head = 32,
                      .n_head_kv = 8, .head_dim = 128, .n_ff = 14336, .n_expert = 8, .n_expert_used = 2,
                      .n_rot = 128, .rope_theta = 1e6f, .rope_freq_scale = 1.0f, .rms_eps = 1e-5f}},
    {"bench", {.n_vocab = 32000, .n_ctx_train = 32768, .n_embd = 1024, .n_layer = 8, .n_head = 8, .n_head_kv = 2,
               .head_dim = 128, .n_ff = 3584, .n_expert = 8, .n_expert_used = 2, .n_rot = 128, .rope_theta = 1e6f,
               .rope_freq_scale = 1.0f, .rms_eps = 1e-5f}},
    {"tiny", {.n_vocab = 512, .n_ctx_train = 4096, .n_embd = 64, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
              .head_dim = 16, .n_ff = 128, .n_expert = 4, .n_expert_used = 2, .n_rot = 16, .rope_theta = 1e4f,
              .rope_freq_scale = 1.0f, .rms_eps = 1e-5f}},
};

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#define SYNTH_POOL_BLOCKS 4099 /* prime: rows of whole blocks rarely line up with the pool's period */

/* The pool of `type`: SYNTH_POOL_BLOCKS blocks quantized from values ~ N(0, 0.02^2) (sum of 4 uniforms). */
static smoe_status synth_pool(loader *L, smoe_type type) {
    if (L->pool[type]) return SMOE_OK;
    const smoe_type_traits *tr = smoe_type_get_traits(type);
    const int64_t           n = SYNTH_POOL_BLOCKS * tr->block_size;
    float                  *x = malloc((size_t)n * sizeof(*x));
    uint8_t                *q = malloc((size_t)SYNTH_POOL_BLOCKS * tr->type_size);
    smoe_status             st = SMOE_OK;
    SMOE_GOTO_IF(!x || !q, st, fail, SMOE_ERR_OUT_OF_MEMORY, "model: out of memory (synthetic weights)");
    uint64_t state = L->synth->seed * 0x2545F4914F6CDD1Dull + (uint64_t)type;
    for (int64_t i = 0; i < n; i++) {
        const uint64_t r = splitmix64(&state);
        const double   u = (double)(r & 0xFFFF) + (double)((r >> 16) & 0xFFFF) + (double)((r >> 32) & 0xFFFF) +
                         (double)((r >> 48) & 0xFFFF);
        x[i] = (float)((u / 65535.0 - 2.0) * 1.7320508 * 0.02); /* 4 uniforms: variance 1/3 */
    }
    SMOE_GOTO_IF(smoe_quantize_rows(type, x, q, 1, n) != (size_t)SYNTH_POOL_BLOCKS * tr->type_size, st, fail,
                 SMOE_ERR_UNSUPPORTED, "synthetic model: cannot make %s blocks", tr->name);
    free(x);
    L->pool[type] = q;
    L->pool_size[type] = (size_t)SYNTH_POOL_BLOCKS * tr->type_size;
    return SMOE_OK;
fail:
    free(x);
    free(q);
    return st;
}

/* Bytes [off, off + n) of weight wi: norms are 1, everything else tiles its type's pool from a shift that depends
 * on the weight (whole blocks, so every block is valid). */
static smoe_status synth_fill(loader *L, int wi, size_t off, uint8_t *dst, size_t n) {
    const smoe_tensor *t = L->w[wi].t;
    if (t->n_dims == 1) { /* norms: f32 ones */
        const float one = 1.0f;
        for (size_t i = 0; i < n; i++) dst[i] = ((const uint8_t *)&one)[(off + i) % sizeof(float)];
        return SMOE_OK;
    }
    SMOE_TRY(synth_pool(L, t->type));
    const size_t   P = L->pool_size[t->type], bs = smoe_type_get_traits(t->type)->type_size;
    const uint8_t *pool = L->pool[t->type];
    size_t         pos = (off + (size_t)wi * 7919u * bs) % P;
    while (n > 0) {
        const size_t k = P - pos < n ? P - pos : n;
        memcpy(dst, pool + pos, k);
        dst += k;
        n -= k;
        pos = 0;
    }
    return SMOE_OK;
}

/* A weight of the synthetic table: the type `smoe convert` would give it. */
static smoe_status synth_weight(loader *L, const char *name, int n_dims, const int64_t *ne, smoe_quant_model_info *mi,
                                smoe_tensor **out) {
    const smoe_type type = n_dims == 1 ? SMOE_TYPE_F32
                                       : smoe_quant_choose_type(name, ne, (uint32_t)n_dims, L->synth->ftype, mi);
    SMOE_TRY(new_weight(L, name, type, n_dims, ne, out));
    return push_weight(L, (weight_src){.t = *out, .gguf_index = -1});
}

static smoe_status load_synthetic(loader *L) {
    smoe_model                  *m = L->m;
    const smoe_synthetic_params *sp = L->synth;
    const synth_preset          *pr = NULL;
    for (size_t i = 0; i < sizeof(k_presets) / sizeof(k_presets[0]); i++)
        if (strcmp(sp->preset, k_presets[i].name) == 0) pr = &k_presets[i];
    SMOE_RETURN_IF(!pr, SMOE_ERR_INVALID_ARGUMENT,
                   "synthetic model: unknown preset '%s' (mixtral-8x7b, bench or tiny)", sp->preset);
    m->hp = pr->hp;
    if (sp->n_layer) m->hp.n_layer = sp->n_layer;
    char name[SMOE_MAX_NAME];
    snprintf(name, sizeof(name), "synthetic %s, %d layers, %s", pr->name, (int)m->hp.n_layer,
             smoe_ftype_name(sp->ftype));
    m->name = strdup(name);
    SMOE_RETURN_IF(!m->name, SMOE_ERR_OUT_OF_MEMORY, "model: out of memory");
    SMOE_TRY(smoe_arena_init(0, &m->arena));

    const smoe_hparams   *hp = &m->hp;
    smoe_quant_model_info mi = {.n_layer = hp->n_layer, .n_expert = hp->n_expert, .has_output = true};
    const int64_t n_embd = hp->n_embd, n_q = (int64_t)hp->n_head * hp->head_dim,
                  n_kv = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t ne_embd[2] = {n_embd, hp->n_vocab};
    SMOE_TRY(synth_weight(L, "token_embd.weight", 2, ne_embd, &mi, &m->tok_embd));
    SMOE_TRY(synth_weight(L, "output_norm.weight", 1, &n_embd, &mi, &m->output_norm));
    SMOE_TRY(synth_weight(L, "output.weight", 2, ne_embd, &mi, &m->output));
    m->layers = calloc((size_t)hp->n_layer, sizeof(*m->layers));
    SMOE_RETURN_IF(!m->layers, SMOE_ERR_OUT_OF_MEMORY, "model: out of memory");
    for (int il = 0; il < hp->n_layer; il++) {
        smoe_layer *l = &m->layers[il];
#define W(field, suffix, n, ...)                                                                                       \
    do {                                                                                                               \
        const int64_t ne_[] = {__VA_ARGS__};                                                                           \
        snprintf(name, sizeof(name), "blk.%d." suffix ".weight", il);                                                 \
        SMOE_TRY(synth_weight(L, name, n, ne_, &mi, &l->field));                                                      \
    } while (0)
        W(attn_norm, "attn_norm", 1, n_embd);
        W(wq, "attn_q", 2, n_embd, n_q);
        W(wk, "attn_k", 2, n_embd, n_kv);
        W(wv, "attn_v", 2, n_embd, n_kv);
        W(wo, "attn_output", 2, n_q, n_embd);
        W(ffn_norm, "ffn_norm", 1, n_embd);
        W(ffn_gate_inp, "ffn_gate_inp", 2, n_embd, hp->n_expert);
        W(ffn_gate_exps, "ffn_gate_exps", 3, n_embd, hp->n_ff, hp->n_expert);
        W(ffn_up_exps, "ffn_up_exps", 3, n_embd, hp->n_ff, hp->n_expert);
        W(ffn_down_exps, "ffn_down_exps", 3, hp->n_ff, n_embd, hp->n_expert);
#undef W
    }
    return place_all(L);
}

smoe_status smoe_model_init_synthetic(const smoe_synthetic_params *sp, const smoe_model_params *params,
                                      smoe_model **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "smoe_model_init_synthetic: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!sp, SMOE_ERR_INVALID_ARGUMENT, "smoe_model_init_synthetic: params are NULL");
    SMOE_RETURN_IF(sp->size != sizeof(*sp), SMOE_ERR_INVALID_ARGUMENT,
                   "synthetic params: size %u, expected %zu (use smoe_synthetic_default_params)", sp->size,
                   sizeof(*sp));
    SMOE_RETURN_IF(!sp->preset, SMOE_ERR_INVALID_ARGUMENT, "synthetic params: preset is NULL");
    SMOE_RETURN_IF(sp->n_layer < 0 || sp->n_layer > SMOE_MODEL_MAX_LAYERS, SMOE_ERR_INVALID_ARGUMENT,
                   "synthetic params: n_layer %d not in [1, %d] (0 = the preset's)", (int)sp->n_layer,
                   SMOE_MODEL_MAX_LAYERS);
    SMOE_RETURN_IF(sp->ftype == SMOE_FTYPE_AUTO ? false : !strcmp(smoe_ftype_name(sp->ftype), "unknown"),
                   SMOE_ERR_INVALID_ARGUMENT, "synthetic params: unknown ftype %d", (int)sp->ftype);
    const smoe_model_params defaults = smoe_model_default_params();
    loader L = {.path = "synthetic model", .params = params ? params : &defaults, .fd = -1, .synth = sp};
    return run_loader(&L, load_synthetic, out);
}

uint64_t smoe_model_active_bytes(const smoe_model *m) {
    if (!m) return 0;
    const smoe_hparams *hp = &m->hp;
    /* the output matrix is read whole; token_embd one row, unless it is the output matrix (tied) */
    double active = (double)smoe_tensor_nbytes(m->output_norm) + (double)smoe_tensor_nbytes(m->output);
    if (m->output != m->tok_embd) active += (double)smoe_tensor_nbytes(m->tok_embd) / (double)hp->n_vocab;
    for (int32_t il = 0; il < hp->n_layer; il++) {
        const smoe_layer  *l = &m->layers[il];
        const smoe_tensor *dense[] = {l->attn_norm, l->wq, l->wk, l->wv, l->wo, l->ffn_norm, l->ffn_gate_inp};
        for (size_t i = 0; i < sizeof(dense) / sizeof(dense[0]); i++) active += (double)smoe_tensor_nbytes(dense[i]);
        const smoe_tensor *exps[] = {l->ffn_gate_exps, l->ffn_up_exps, l->ffn_down_exps};
        for (size_t i = 0; i < 3; i++)
            active += (double)smoe_tensor_nbytes(exps[i]) * hp->n_expert_used / hp->n_expert;
    }
    return (uint64_t)active;
}
