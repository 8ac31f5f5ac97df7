/*
 * decode.c - contexts, batches and smoe_decode: validating a batch, splitting it into chunks of n_batch tokens,
 * placing each chunk's tokens in KV cells, running the (cached) forward graph, copying the wanted logits out.
 *
 * A context owns its own CPU backend (a backend is driven by one thread; contexts of one model may run in different
 * threads) and scheduler; the model's weights are read in place. Graphs are cached per batch shape
 * (n_tokens, n_outputs), a few at a time (the prefill chunk, its last partial chunk, the one-token decode), so a
 * decode step builds nothing and allocates nothing: inputs are written into the planned input tensors, the logits
 * into a buffer that only grows.
 *
 * Atomicity: the whole batch is validated and its cell count checked against the free cells before the first chunk
 * runs, so SMOE_ERR_INVALID_ARGUMENT and SMOE_ERR_CONTEXT_FULL leave the cache as it was. A chunk whose compute fails
 * (or is cancelled) gives its cells back; chunks that finished before it stay in the cache.
 */
#include "model.h"
#include "sched.h"

#include <stdlib.h>
#include <string.h>

#define GRAPH_CACHE_SIZE 4
#define DEFAULT_N_BATCH  512
#define DEFAULT_N_CTX_CAP 32768u
#define MAX_BATCH_CAPACITY (1 << 24)

typedef struct cached_graph {
    smoe_fwd_graph fg;     /* fg.graph NULL: empty slot */
    uint64_t       last_used;
} cached_graph;

struct smoe_context {
    smoe_model         *model;
    smoe_context_params params; /* resolved: no zeros left */
    smoe_logger         logger;

    smoe_backend *backend;
    smoe_sched   *sched;
    smoe_kv_cache kv;

    cached_graph graphs[GRAPH_CACHE_SIZE];
    uint64_t     tick;

    /* logits of the last decode: rows in batch order of the entries that asked for them */
    float   *logits;
    size_t   logits_rows_cap;
    int32_t *logit_row; /* per batch entry: its row, or -1 */
    size_t   logit_row_cap;
    int32_t  n_last;    /* entries in the last decode (0 after a failed one) */

    /* scratch: n_batch entries each, seq_next n_seq_max */
    int32_t *cells, *q_info, *out_ids, *seq_next;

    smoe_abort_fn abort_fn;
    void         *abort_user_data;
};

/* ---- batches ---- */

smoe_status smoe_batch_init(int32_t capacity, smoe_batch *batch) {
    SMOE_RETURN_IF(!batch, SMOE_ERR_INVALID_ARGUMENT, "smoe_batch_init: batch is NULL");
    memset(batch, 0, sizeof(*batch));
    SMOE_RETURN_IF(capacity < 1 || capacity > MAX_BATCH_CAPACITY, SMOE_ERR_INVALID_ARGUMENT,
                   "smoe_batch_init: capacity %d not in [1, %d]", (int)capacity, MAX_BATCH_CAPACITY);
    batch->token = malloc((size_t)capacity * sizeof(int32_t));
    batch->pos = malloc((size_t)capacity * sizeof(int32_t));
    batch->seq_id = malloc((size_t)capacity * sizeof(int32_t));
    batch->logits = malloc((size_t)capacity);
    if (!batch->token || !batch->pos || !batch->seq_id || !batch->logits) {
        smoe_batch_free(batch);
        return smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "smoe_batch_init: out of memory (%d tokens)", (int)capacity);
    }
    batch->capacity = capacity;
    return SMOE_OK;
}

void smoe_batch_free(smoe_batch *batch) {
    if (!batch) return;
    free(batch->token);
    free(batch->pos);
    free(batch->seq_id);
    free(batch->logits);
    memset(batch, 0, sizeof(*batch));
}

smoe_status smoe_batch_add(smoe_batch *batch, int32_t token, int32_t pos, int32_t seq_id, bool logits) {
    SMOE_RETURN_IF(!batch, SMOE_ERR_INVALID_ARGUMENT, "smoe_batch_add: batch is NULL");
    SMOE_RETURN_IF(batch->n_tokens < 0 || batch->n_tokens >= batch->capacity, SMOE_ERR_INVALID_ARGUMENT,
                   "smoe_batch_add: the batch is full (capacity %d)", (int)batch->capacity);
    const int32_t i = batch->n_tokens++;
    batch->token[i] = token;
    batch->pos[i] = pos;
    batch->seq_id[i] = seq_id;
    batch->logits[i] = logits ? 1 : 0;
    return SMOE_OK;
}

/* ---- contexts ---- */

smoe_context_params smoe_context_default_params(void) {
    return (smoe_context_params){
        .size = sizeof(smoe_context_params),
        .n_ctx = 0,
        .n_batch = 0,
        .n_seq_max = 0,
        .n_threads = 0,
        .kv_type = SMOE_KV_F16,
    };
}

static smoe_status resolve_params(const smoe_model *m, const smoe_context_params *in, smoe_context_params *p) {
    SMOE_RETURN_IF(in->size != sizeof(smoe_context_params), SMOE_ERR_INVALID_ARGUMENT,
                   "context params: size %u, expected %zu (use smoe_context_default_params)", in->size,
                   sizeof(smoe_context_params));
    *p = *in;
    const uint32_t train = (uint32_t)m->hp.n_ctx_train;
    const uint32_t max_ctx = train > DEFAULT_N_CTX_CAP ? train : DEFAULT_N_CTX_CAP;
    if (p->n_ctx == 0) p->n_ctx = train < DEFAULT_N_CTX_CAP ? train : DEFAULT_N_CTX_CAP;
    SMOE_RETURN_IF(p->n_ctx > max_ctx, SMOE_ERR_INVALID_ARGUMENT,
                   "context params: n_ctx %u exceeds the limit %u (the model's training context %u, at least %u)",
                   p->n_ctx, max_ctx, train, DEFAULT_N_CTX_CAP);
    if (p->n_ctx > train)
        smoe_log(&m->logger, SMOE_LOG_WARN, "n_ctx %u exceeds the model's training context %u", p->n_ctx, train);
    if (p->n_batch == 0) p->n_batch = DEFAULT_N_BATCH;
    SMOE_RETURN_IF(p->n_batch > (1u << 20), SMOE_ERR_INVALID_ARGUMENT, "context params: n_batch %u is too large",
                   p->n_batch);
    if (p->n_batch > p->n_ctx) p->n_batch = p->n_ctx;
    if (p->n_seq_max == 0) p->n_seq_max = 1;
    SMOE_RETURN_IF(p->n_seq_max > p->n_ctx, SMOE_ERR_INVALID_ARGUMENT,
                   "context params: n_seq_max %u exceeds n_ctx %u", p->n_seq_max, p->n_ctx);
    SMOE_RETURN_IF(p->n_threads < 0 || p->n_threads > 1024, SMOE_ERR_INVALID_ARGUMENT,
                   "context params: n_threads %d not in [0, 1024]", (int)p->n_threads);
    if (p->n_threads == 0) p->n_threads = m->n_threads;
    SMOE_RETURN_IF(p->kv_type != SMOE_KV_F16 && p->kv_type != SMOE_KV_Q8_0 && p->kv_type != SMOE_KV_F32,
                   SMOE_ERR_INVALID_ARGUMENT, "context params: unknown kv_type %d", (int)p->kv_type);
    SMOE_RETURN_IF(p->kv_type == SMOE_KV_Q8_0 && m->hp.head_dim % 32 != 0, SMOE_ERR_INVALID_ARGUMENT,
                   "context params: a q8_0 KV cache needs a head dimension that is a multiple of 32 (it is %d)",
                   m->hp.head_dim);
    return SMOE_OK;
}

static smoe_type kv_smoe_type(smoe_kv_type t) {
    switch (t) {
    case SMOE_KV_Q8_0: return SMOE_TYPE_Q8_0;
    case SMOE_KV_F32: return SMOE_TYPE_F32;
    default: return SMOE_TYPE_F16;
    }
}

smoe_status smoe_context_init(smoe_model *model, const smoe_context_params *params, smoe_context **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "smoe_context_init: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!model, SMOE_ERR_INVALID_ARGUMENT, "smoe_context_init: model is NULL");
    const smoe_context_params defaults = smoe_context_default_params();
    smoe_context_params       p;
    SMOE_TRY(resolve_params(model, params ? params : &defaults, &p));

    smoe_context *ctx = calloc(1, sizeof(*ctx));
    SMOE_RETURN_IF(!ctx, SMOE_ERR_OUT_OF_MEMORY, "smoe_context_init: out of memory");
    ctx->model = model;
    ctx->params = p;
    ctx->logger = model->logger;
    smoe_status st = SMOE_OK;

    ctx->cells = malloc(p.n_batch * sizeof(int32_t));
    ctx->q_info = malloc(2 * (size_t)p.n_batch * sizeof(int32_t));
    ctx->out_ids = malloc(p.n_batch * sizeof(int32_t));
    ctx->seq_next = malloc(p.n_seq_max * sizeof(int32_t));
    SMOE_GOTO_IF(!ctx->cells || !ctx->q_info || !ctx->out_ids || !ctx->seq_next, st, fail, SMOE_ERR_OUT_OF_MEMORY,
                 "smoe_context_init: out of memory");

    smoe_cpu_params cp = smoe_cpu_default_params();
    cp.n_threads = p.n_threads;
    SMOE_GOTO_TRY(st, fail, smoe_cpu_backend_init(&cp, &ctx->backend));
    const smoe_hparams *hp = &model->hp;
    if (model->on_device) {
        /* graphs run on the model's device, the CPU takes the ops it lacks; the KV cache lives on the device */
        smoe_backend *list[2] = {model->backend, ctx->backend};
        pthread_mutex_lock(&model->device_lock);
        st = smoe_sched_init(list, 2, &ctx->sched);
        if (st == SMOE_OK)
            st = smoe_kv_cache_init(&ctx->kv, model->backend, kv_smoe_type(p.kv_type), hp->n_layer, hp->n_head_kv,
                                    hp->head_dim, p.n_ctx, p.n_seq_max);
        pthread_mutex_unlock(&model->device_lock);
        if (st != SMOE_OK) goto fail;
    } else {
        SMOE_GOTO_TRY(st, fail, smoe_sched_init(&ctx->backend, 1, &ctx->sched));
        SMOE_GOTO_TRY(st, fail, smoe_kv_cache_init(&ctx->kv, ctx->backend, kv_smoe_type(p.kv_type), hp->n_layer,
                                                   hp->n_head_kv, hp->head_dim, p.n_ctx, p.n_seq_max));
    }
    smoe_log(&ctx->logger, SMOE_LOG_INFO, "context: n_ctx %u, n_batch %u, %u sequences, %d threads, KV cache %s (%.1f MiB)",
             p.n_ctx, p.n_batch, p.n_seq_max, (int)p.n_threads, smoe_type_name(ctx->kv.type),
             (double)ctx->kv.bytes / (1 << 20));
    *out = ctx;
    return SMOE_OK;
fail:
    smoe_context_free(ctx);
    return st;
}

void smoe_context_free(smoe_context *ctx) {
    if (!ctx) return;
    for (int i = 0; i < GRAPH_CACHE_SIZE; i++) smoe_fwd_graph_free(&ctx->graphs[i].fg);
    const bool dev = ctx->model && ctx->model->on_device;
    if (dev) pthread_mutex_lock(&ctx->model->device_lock);
    smoe_sched_free(ctx->sched);
    smoe_kv_cache_free(&ctx->kv);
    if (dev) pthread_mutex_unlock(&ctx->model->device_lock);
    smoe_backend_free(ctx->backend);
    free(ctx->logits);
    free(ctx->logit_row);
    free(ctx->cells);
    free(ctx->q_info);
    free(ctx->out_ids);
    free(ctx->seq_next);
    free(ctx);
}

uint32_t smoe_context_n_ctx(const smoe_context *ctx) { return ctx ? ctx->params.n_ctx : 0; }

const smoe_model *smoe_context_model(const smoe_context *ctx) { return ctx ? ctx->model : NULL; }

void smoe_context_set_abort(smoe_context *ctx, smoe_abort_fn fn, void *user_data) {
    if (!ctx) return;
    ctx->abort_fn = fn;
    ctx->abort_user_data = user_data;
}

/* ---- decode ---- */

/* The cached graph for a shape, built (evicting the least recently used) if needed. */
static smoe_status get_graph(smoe_context *ctx, int32_t n_tokens, int32_t n_outputs, smoe_fwd_graph **out) {
    cached_graph *slot = NULL;
    for (int i = 0; i < GRAPH_CACHE_SIZE; i++) {
        cached_graph *c = &ctx->graphs[i];
        if (c->fg.graph && c->fg.n_tokens == n_tokens && c->fg.n_outputs == n_outputs) {
            c->last_used = ++ctx->tick;
            *out = &c->fg;
            return SMOE_OK;
        }
        if (!slot || (slot->fg.graph && (!c->fg.graph || c->last_used < slot->last_used))) slot = c;
    }
    smoe_fwd_graph_free(&slot->fg);
    SMOE_TRY(smoe_fwd_graph_build(ctx->model, &ctx->kv, n_tokens, n_outputs, &slot->fg));
    slot->last_used = ++ctx->tick;
    *out = &slot->fg;
    return SMOE_OK;
}

static smoe_status validate(smoe_context *ctx, const smoe_batch *b, int32_t *n_outputs) {
    SMOE_RETURN_IF(!b, SMOE_ERR_INVALID_ARGUMENT, "smoe_decode: batch is NULL");
    SMOE_RETURN_IF(b->n_tokens < 1, SMOE_ERR_INVALID_ARGUMENT, "smoe_decode: the batch is empty (n_tokens %d)",
                   (int)b->n_tokens);
    SMOE_RETURN_IF(b->capacity > 0 && b->n_tokens > b->capacity, SMOE_ERR_INVALID_ARGUMENT,
                   "smoe_decode: n_tokens %d exceeds the batch capacity %d", (int)b->n_tokens, (int)b->capacity);
    SMOE_RETURN_IF(!b->token || !b->pos || !b->seq_id || !b->logits, SMOE_ERR_INVALID_ARGUMENT,
                   "smoe_decode: a batch array is NULL");
    const int32_t  n_vocab = ctx->model->hp.n_vocab;
    const uint32_t n_seq = ctx->params.n_seq_max;
    memcpy(ctx->seq_next, ctx->kv.seq_next, n_seq * sizeof(int32_t));
    int32_t n_out = 0;
    for (int32_t i = 0; i < b->n_tokens; i++) {
        const int32_t t = b->token[i], p = b->pos[i], s = b->seq_id[i];
        SMOE_RETURN_IF(t < 0 || t >= n_vocab, SMOE_ERR_INVALID_ARGUMENT,
                       "smoe_decode: batch entry %d: token %d is outside the vocabulary [0, %d)", (int)i, (int)t,
                       (int)n_vocab);
        SMOE_RETURN_IF(s < 0 || (uint32_t)s >= n_seq, SMOE_ERR_INVALID_ARGUMENT,
                       "smoe_decode: batch entry %d: sequence id %d is not in [0, n_seq_max = %u)", (int)i, (int)s,
                       n_seq);
        SMOE_RETURN_IF(p != ctx->seq_next[s] || p == INT32_MAX, SMOE_ERR_INVALID_ARGUMENT,
                       "smoe_decode: batch entry %d: position %d does not continue sequence %d (expected %d)", (int)i,
                       (int)p, (int)s, (int)ctx->seq_next[s]);
        ctx->seq_next[s] = p + 1;
        n_out += b->logits[i] != 0;
    }
    const uint32_t n_free = smoe_kv_cache_n_free(&ctx->kv);
    SMOE_RETURN_IF((uint32_t)b->n_tokens > n_free, SMOE_ERR_CONTEXT_FULL,
                   "smoe_decode: the KV cache is full: %d tokens need cells, %u of n_ctx = %u are free",
                   (int)b->n_tokens, n_free, ctx->params.n_ctx);
    *n_outputs = n_out;
    return SMOE_OK;
}

/* Grows the logits buffers for a batch of n entries with n_out rows. */
static smoe_status reserve_logits(smoe_context *ctx, int32_t n, int32_t n_out) {
    if ((size_t)n > ctx->logit_row_cap) {
        int32_t *p = realloc(ctx->logit_row, (size_t)n * sizeof(int32_t));
        SMOE_RETURN_IF(!p, SMOE_ERR_OUT_OF_MEMORY, "smoe_decode: out of memory");
        ctx->logit_row = p;
        ctx->logit_row_cap = (size_t)n;
    }
    if ((size_t)n_out > ctx->logits_rows_cap) {
        const size_t n_vocab = (size_t)ctx->model->hp.n_vocab;
        SMOE_RETURN_IF((size_t)n_out > SIZE_MAX / sizeof(float) / n_vocab, SMOE_ERR_OUT_OF_MEMORY,
                       "smoe_decode: logits too large");
        float *p = realloc(ctx->logits, (size_t)n_out * n_vocab * sizeof(float));
        SMOE_RETURN_IF(!p, SMOE_ERR_OUT_OF_MEMORY, "smoe_decode: out of memory for %d rows of logits", (int)n_out);
        ctx->logits = p;
        ctx->logits_rows_cap = (size_t)n_out;
    }
    return SMOE_OK;
}

static smoe_status run_chunk_locked(smoe_context *ctx, const smoe_batch *b, int32_t i0, int32_t n, int32_t row0);

/* Runs entries [i0, i0 + n) of the batch; their logits rows start at row0. A device shared by the model's contexts
 * is used by one of them at a time. */
static smoe_status run_chunk(smoe_context *ctx, const smoe_batch *b, int32_t i0, int32_t n, int32_t row0) {
    if (!ctx->model->on_device) return run_chunk_locked(ctx, b, i0, n, row0);
    pthread_mutex_lock(&ctx->model->device_lock);
    const smoe_status st = run_chunk_locked(ctx, b, i0, n, row0);
    pthread_mutex_unlock(&ctx->model->device_lock);
    return st;
}

static smoe_status run_chunk_locked(smoe_context *ctx, const smoe_batch *b, int32_t i0, int32_t n, int32_t row0) {
    int32_t n_out = 0;
    for (int32_t i = 0; i < n; i++) {
        if (b->logits[i0 + i]) ctx->out_ids[n_out++] = i;
        ctx->q_info[2 * i] = b->pos[i0 + i];
        ctx->q_info[2 * i + 1] = b->seq_id[i0 + i];
    }
    smoe_fwd_graph *fg = NULL;
    SMOE_TRY(get_graph(ctx, n, n_out, &fg));
    SMOE_TRY(smoe_kv_cache_find(&ctx->kv, (uint32_t)n, ctx->cells));
    smoe_kv_cache_commit(&ctx->kv, (uint32_t)n, ctx->cells, b->pos + i0, b->seq_id + i0);

    smoe_status   st = SMOE_OK;
    const int32_t n_scan = (int32_t)ctx->kv.n_scan;
    const size_t  i4 = sizeof(int32_t);
    SMOE_GOTO_TRY(st, fail, smoe_sched_alloc_graph(ctx->sched, fg->graph));
    SMOE_GOTO_TRY(st, fail, smoe_tensor_set(fg->tokens, b->token + i0, 0, (size_t)n * i4));
    SMOE_GOTO_TRY(st, fail, smoe_tensor_set(fg->pos, b->pos + i0, 0, (size_t)n * i4));
    SMOE_GOTO_TRY(st, fail, smoe_tensor_set(fg->cells, ctx->cells, 0, (size_t)n * i4));
    SMOE_GOTO_TRY(st, fail, smoe_tensor_set(fg->q_info, ctx->q_info, 0, 2 * (size_t)n * i4));
    SMOE_GOTO_TRY(st, fail, smoe_tensor_set(fg->cell_info, ctx->kv.cell_info, 0, 2 * (size_t)ctx->kv.n_ctx * i4));
    SMOE_GOTO_TRY(st, fail, smoe_tensor_set(fg->n_scan, &n_scan, 0, i4));
    if (fg->out_ids) SMOE_GOTO_TRY(st, fail, smoe_tensor_set(fg->out_ids, ctx->out_ids, 0, (size_t)n_out * i4));
    SMOE_GOTO_TRY(st, fail, smoe_sched_compute(ctx->sched, fg->graph));
    if (n_out > 0) {
        const size_t n_vocab = (size_t)ctx->model->hp.n_vocab;
        SMOE_GOTO_TRY(st, fail, smoe_tensor_get(fg->logits, ctx->logits + (size_t)row0 * n_vocab, 0,
                                                (size_t)n_out * n_vocab * sizeof(float)));
    }
    return SMOE_OK;
fail:
    smoe_kv_cache_release(&ctx->kv, (uint32_t)n, ctx->cells);
    return st;
}

smoe_status smoe_decode(smoe_context *ctx, const smoe_batch *batch) {
    SMOE_RETURN_IF(!ctx, SMOE_ERR_INVALID_ARGUMENT, "smoe_decode: context is NULL");
    ctx->n_last = 0;
    int32_t n_out = 0;
    SMOE_TRY(validate(ctx, batch, &n_out));
    SMOE_TRY(reserve_logits(ctx, batch->n_tokens, n_out));
    int32_t row = 0;
    for (int32_t i = 0; i < batch->n_tokens; i++) ctx->logit_row[i] = batch->logits[i] ? row++ : -1;

    const int32_t n_batch = (int32_t)ctx->params.n_batch;
    row = 0;
    for (int32_t i0 = 0; i0 < batch->n_tokens; i0 += n_batch) {
        SMOE_RETURN_IF(ctx->abort_fn && ctx->abort_fn(ctx->abort_user_data), SMOE_ERR_CANCELLED,
                       "smoe_decode: cancelled by the abort callback after %d of %d tokens", (int)i0,
                       (int)batch->n_tokens);
        const int32_t n = batch->n_tokens - i0 < n_batch ? batch->n_tokens - i0 : n_batch;
        SMOE_TRY(run_chunk(ctx, batch, i0, n, row));
        for (int32_t i = i0; i < i0 + n; i++) row += batch->logits[i] != 0;
    }
    ctx->n_last = batch->n_tokens;
    return SMOE_OK;
}

const float *smoe_get_logits(smoe_context *ctx, int32_t i) {
    if (!ctx) return NULL;
    if (i < 0) i += ctx->n_last;
    if (i < 0 || i >= ctx->n_last || ctx->logit_row[i] < 0) return NULL;
    return ctx->logits + (size_t)ctx->logit_row[i] * (size_t)ctx->model->hp.n_vocab;
}

/* ---- KV cache ---- */

smoe_status smoe_kv_seq_rm(smoe_context *ctx, int32_t seq_id, int32_t p0, int32_t p1) {
    SMOE_RETURN_IF(!ctx, SMOE_ERR_INVALID_ARGUMENT, "smoe_kv_seq_rm: context is NULL");
    return smoe_kv_cache_seq_rm(&ctx->kv, seq_id, p0, p1);
}

void smoe_kv_clear(smoe_context *ctx) {
    if (ctx) smoe_kv_cache_clear(&ctx->kv);
}

int32_t smoe_kv_seq_pos_next(const smoe_context *ctx, int32_t seq_id) {
    return ctx ? smoe_kv_cache_seq_pos_next(&ctx->kv, seq_id) : -1;
}

uint32_t smoe_kv_used(const smoe_context *ctx) { return ctx ? ctx->kv.used : 0; }
