/*
 * convert.c - the streaming Hugging Face -> GGUF pipeline (smoe_convert).
 *
 * Everything that can be checked is checked before the output file is created: config.json, every shard's header,
 * the tensor names and shapes against the config (name-map.c), the tokenizer. Then the GGUF header is written and
 * the tensors are streamed in file order:
 *
 *   source rows (mmap, any alignment) -> f32 scratch (per worker) -> quantized/converted rows -> batch buffer
 *                                                                                                 -> GGUF writer
 *
 * A tensor is cut into batches of rows (at most BATCH_BYTES of output); worker threads take chunks of a batch's rows
 * from a shared counter. The calling thread writes batch k-1 while the workers compute batch k, so memory holds two
 * batch buffers and one f32 chunk per worker, whatever the model size. An expert-merged tensor is assembled row by
 * row from its experts' tensors (row e * ne[1] + r comes from expert e, row r); each source tensor's pages are
 * dropped from the resident set (smoe_st_release) as soon as its rows are done, so the resident source data stays
 * within one source tensor.
 *
 * Workers never touch the thread-local last error: a failure in a worker is recorded in the batch and reported by
 * the calling thread.
 */
#include "convert/hf-config.h"
#include "convert/name-map.h"
#include "convert/safetensors.h"
#include "quant/quant-policy.h"
#include "quant/quant.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH_BYTES ((size_t)16 << 20) /* output bytes per batch */
#define CHUNK_F32   ((size_t)256 << 10) /* f32 scratch bytes per worker chunk */
#define MAX_THREADS 64

/* ---- file types ---- */

static const struct {
    smoe_ftype  ftype;
    const char *name;
} ftype_names[] = {
    {SMOE_FTYPE_F32, "f32"},       {SMOE_FTYPE_F16, "f16"},       {SMOE_FTYPE_BF16, "bf16"},
    {SMOE_FTYPE_Q8_0, "q8_0"},     {SMOE_FTYPE_Q4_0, "q4_0"},     {SMOE_FTYPE_Q4_K_M, "q4_k_m"},
    {SMOE_FTYPE_Q5_K_M, "q5_k_m"}, {SMOE_FTYPE_AUTO, "auto"},     {SMOE_FTYPE_Q4_1, "q4_1"},
    {SMOE_FTYPE_Q5_0, "q5_0"},     {SMOE_FTYPE_Q5_1, "q5_1"},     {SMOE_FTYPE_Q4_K, "q4_k"},
    {SMOE_FTYPE_Q5_K, "q5_k"},     {SMOE_FTYPE_Q6_K, "q6_k"},
};

smoe_status smoe_ftype_from_name(const char *name, smoe_ftype *out) {
    SMOE_RETURN_IF(!name || !out, SMOE_ERR_INVALID_ARGUMENT, "smoe_ftype_from_name: NULL argument");
    for (size_t i = 0; i < sizeof(ftype_names) / sizeof(ftype_names[0]); i++) {
        const char *a = ftype_names[i].name, *b = name;
        while (*a && tolower((unsigned char)*b) == *a) a++, b++;
        if (!*a && !*b) {
            *out = ftype_names[i].ftype;
            return SMOE_OK;
        }
    }
    return smoe_set_error(SMOE_ERR_INVALID_ARGUMENT,
                          "unknown type '%s' (expected f32, f16, bf16, q8_0, q4_0, q4_k_m, q5_k_m, auto; or q4_1, "
                          "q5_0, q5_1, q4_k, q5_k, q6_k)",
                          name);
}

const char *smoe_ftype_name(smoe_ftype ftype) {
    for (size_t i = 0; i < sizeof(ftype_names) / sizeof(ftype_names[0]); i++)
        if (ftype_names[i].ftype == ftype) return ftype_names[i].name;
    return "unknown";
}

/* ---- params ---- */

smoe_convert_params smoe_convert_default_params(void) {
    smoe_convert_params p;
    memset(&p, 0, sizeof(p));
    p.size = sizeof(p);
    p.ftype = SMOE_FTYPE_AUTO;
    p.n_threads = 0;
    return p;
}

/* ---- the worker pool ---- */

typedef struct conv_batch {
    const smoe_conv_tensor *t;
    size_t                  row_size; /* output bytes per row */
    bool                    copy;     /* the source bytes are the output bytes (same plain type) */
    int64_t                 row0, n_rows;
    int64_t                 chunk_rows;
    int64_t                 n_chunks;
    uint8_t                *out;
    /* results */
    atomic_int_fast64_t next_chunk;
    atomic_int          failed;     /* 1: a row holds NaN/Inf, 2: the quantizer refused */
    atomic_int_fast64_t failed_row; /* smallest failing row (tensor row index) */
} conv_batch;

typedef struct conv_pool {
    int              n;
    pthread_t       *threads;
    float          **scratch; /* per worker: chunk f32 rows */
    uint8_t        **raw;     /* per worker: one source row */
    size_t           scratch_floats, raw_bytes;
    pthread_mutex_t  mu;
    pthread_cond_t   cv_work, cv_done;
    conv_batch      *batch; /* current, or NULL */
    uint64_t         gen;   /* increments with each submitted batch */
    int              active; /* workers still on the current batch */
    bool             quit;
    bool             started;
} conv_pool;

typedef struct worker_arg {
    conv_pool *pool;
    int        id;
} worker_arg;

/* Source row `row` of the tensor (in output row order) as f32 into dst[ne0]; raw is scratch of ne0 * 4 bytes. */
static void load_row_f32(const smoe_conv_tensor *t, int64_t row, float *dst, uint8_t *raw) {
    const int64_t ne0 = t->ne[0], ne1 = t->ne[1];
    const int64_t e = row / ne1;
    int64_t r = row % ne1;
    if (t->permute_heads) r = smoe_name_map_permuted_row(r, ne1, t->permute_heads);
    const smoe_st_tensor *s = t->src[e];
    const size_t esz = smoe_st_dtype_size(s->dtype);
    const uint8_t *p = (const uint8_t *)s->data + (size_t)r * (size_t)ne0 * esz;
    if (s->dtype == SMOE_ST_F32) {
        memcpy(dst, p, (size_t)ne0 * 4);
        return;
    }
    memcpy(raw, p, (size_t)ne0 * 2);
    const uint16_t *h = (const uint16_t *)(void *)raw;
    if (s->dtype == SMOE_ST_F16) {
        for (int64_t i = 0; i < ne0; i++) dst[i] = smoe_fp16_to_f32(h[i]);
    } else {
        for (int64_t i = 0; i < ne0; i++) dst[i] = smoe_bf16_to_f32(h[i]);
    }
}

static void note_failure(conv_batch *b, int kind, int64_t row) {
    int expected = 0;
    atomic_compare_exchange_strong(&b->failed, &expected, kind);
    int_fast64_t cur = atomic_load(&b->failed_row);
    while ((cur < 0 || row < cur) && !atomic_compare_exchange_weak(&b->failed_row, &cur, row)) {
    }
}

static void run_chunk(conv_pool *pool, int id, conv_batch *b, int64_t chunk) {
    const smoe_conv_tensor *t = b->t;
    const int64_t a = b->row0 + chunk * b->chunk_rows;
    const int64_t end = a + b->chunk_rows < b->row0 + b->n_rows ? a + b->chunk_rows : b->row0 + b->n_rows;
    uint8_t *out = b->out + (size_t)(a - b->row0) * b->row_size;
    const int64_t ne0 = t->ne[0], ne1 = t->ne[1];
    if (b->copy) {
        for (int64_t row = a; row < end; row++) {
            int64_t r = row % ne1;
            if (t->permute_heads) r = smoe_name_map_permuted_row(r, ne1, t->permute_heads);
            const smoe_st_tensor *s = t->src[row / ne1];
            memcpy(out + (size_t)(row - a) * b->row_size, (const uint8_t *)s->data + (size_t)r * b->row_size,
                   b->row_size);
        }
        return;
    }
    float *f = pool->scratch[id];
    for (int64_t row = a; row < end; row++) load_row_f32(t, row, f + (size_t)(row - a) * (size_t)ne0, pool->raw[id]);
    if (smoe_type_get_traits(t->type)->is_quantized) {
        for (int64_t row = a; row < end; row++) {
            if (!smoe_quant_all_finite(f + (size_t)(row - a) * (size_t)ne0, ne0)) {
                note_failure(b, 1, row);
                return;
            }
        }
    }
    if (smoe_quantize_rows(t->type, f, out, end - a, ne0) != (size_t)(end - a) * b->row_size) note_failure(b, 2, a);
}

static void *worker_main(void *argp) {
    worker_arg *arg = argp;
    conv_pool *pool = arg->pool;
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&pool->mu);
        while (!pool->quit && pool->gen == seen) pthread_cond_wait(&pool->cv_work, &pool->mu);
        if (pool->quit) {
            pthread_mutex_unlock(&pool->mu);
            break;
        }
        seen = pool->gen;
        conv_batch *b = pool->batch;
        pthread_mutex_unlock(&pool->mu);
        for (;;) {
            int64_t c = atomic_fetch_add(&b->next_chunk, 1);
            if (c >= b->n_chunks || atomic_load(&b->failed)) break;
            run_chunk(pool, arg->id, b, c);
        }
        pthread_mutex_lock(&pool->mu);
        if (--pool->active == 0) pthread_cond_signal(&pool->cv_done);
        pthread_mutex_unlock(&pool->mu);
    }
    free(arg);
    return NULL;
}

static void pool_stop(conv_pool *pool) {
    if (pool->started) {
        pthread_mutex_lock(&pool->mu);
        pool->quit = true;
        pthread_cond_broadcast(&pool->cv_work);
        pthread_mutex_unlock(&pool->mu);
        for (int i = 0; i < pool->n; i++)
            if (pool->threads[i]) pthread_join(pool->threads[i], NULL);
        pthread_mutex_destroy(&pool->mu);
        pthread_cond_destroy(&pool->cv_work);
        pthread_cond_destroy(&pool->cv_done);
    }
    for (int i = 0; i < pool->n; i++) {
        if (pool->scratch) free(pool->scratch[i]);
        if (pool->raw) free(pool->raw[i]);
    }
    free(pool->scratch);
    free(pool->raw);
    free(pool->threads);
    memset(pool, 0, sizeof(*pool));
}

static smoe_status pool_start(conv_pool *pool, int n, int64_t max_ne0) {
    memset(pool, 0, sizeof(*pool));
    pool->n = n;
    pool->scratch_floats = CHUNK_F32 / 4 > (size_t)max_ne0 ? CHUNK_F32 / 4 : (size_t)max_ne0;
    pool->raw_bytes = (size_t)max_ne0 * 4;
    pool->threads = calloc((size_t)n, sizeof(*pool->threads));
    pool->scratch = calloc((size_t)n, sizeof(*pool->scratch));
    pool->raw = calloc((size_t)n, sizeof(*pool->raw));
    SMOE_RETURN_IF(!pool->threads || !pool->scratch || !pool->raw, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < n; i++) {
        pool->scratch[i] = malloc(pool->scratch_floats * sizeof(float));
        pool->raw[i] = malloc(pool->raw_bytes);
        SMOE_RETURN_IF(!pool->scratch[i] || !pool->raw[i], SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    }
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv_work, NULL);
    pthread_cond_init(&pool->cv_done, NULL);
    pool->started = true;
    for (int i = 0; i < n; i++) {
        worker_arg *a = malloc(sizeof(*a));
        SMOE_RETURN_IF(!a, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
        a->pool = pool;
        a->id = i;
        int rc = pthread_create(&pool->threads[i], NULL, worker_main, a);
        if (rc != 0) {
            free(a);
            pool->threads[i] = 0;
            return smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "cannot start worker thread %d: %s", i, strerror(rc));
        }
    }
    return SMOE_OK;
}

static void pool_submit(conv_pool *pool, conv_batch *b) {
    pthread_mutex_lock(&pool->mu);
    pool->batch = b;
    pool->active = pool->n;
    pool->gen++;
    pthread_cond_broadcast(&pool->cv_work);
    pthread_mutex_unlock(&pool->mu);
}

static void pool_wait(conv_pool *pool) {
    pthread_mutex_lock(&pool->mu);
    while (pool->active > 0) pthread_cond_wait(&pool->cv_done, &pool->mu);
    pool->batch = NULL;
    pthread_mutex_unlock(&pool->mu);
}

/* ---- the pipeline ---- */

typedef struct conv_state {
    const smoe_convert_params *params;
    smoe_logger                log;
    smoe_gguf_writer          *w;
    conv_pool                  pool;
    uint8_t                   *buf[2];
    conv_batch                 batch[2];
    uint64_t                   bytes_total, bytes_done;
} conv_state;

/* Input bytes a batch stands for (its share of the source tensors). */
static uint64_t batch_input_bytes(const conv_batch *b) {
    const smoe_conv_tensor *t = b->t;
    const uint64_t row_bytes = (uint64_t)t->ne[0] * smoe_st_dtype_size(t->src[0]->dtype);
    return row_bytes * (uint64_t)b->n_rows;
}

static smoe_status batch_check(const conv_batch *b) {
    int kind = atomic_load(&b->failed);
    if (!kind) return SMOE_OK;
    const smoe_conv_tensor *t = b->t;
    const int64_t row = atomic_load(&b->failed_row);
    const int64_t e = row / t->ne[1], r = row % t->ne[1];
    const int64_t sr = t->permute_heads ? smoe_name_map_permuted_row(r, t->ne[1], t->permute_heads) : r;
    if (kind == 1)
        return smoe_set_error(SMOE_ERR_CORRUPT_FILE, "tensor '%s': row %" PRId64 " holds NaN or Inf; cannot quantize",
                              t->src[e]->name, sr);
    return smoe_set_error(SMOE_ERR_UNSUPPORTED, "%s: cannot quantize rows of %" PRId64 " elements to %s", t->name,
                          t->ne[0], smoe_type_name(t->type));
}

static smoe_status write_batch(conv_state *s, conv_batch *b) {
    SMOE_TRY(smoe_gguf_writer_write_data(s->w, b->out, (size_t)b->n_rows * b->row_size));
    s->bytes_done += batch_input_bytes(b);
    if (s->params->progress && !s->params->progress(s->bytes_done, s->bytes_total, s->params->progress_user_data))
        return smoe_set_error(SMOE_ERR_CANCELLED, "conversion cancelled");
    return SMOE_OK;
}

/* Releases the source pages of the experts whose rows are all done once rows [0, done_rows) are written. */
static void release_done_sources(const smoe_conv_tensor *t, int64_t prev_rows, int64_t done_rows) {
    for (uint32_t e = 0; e < t->n_src; e++) {
        const int64_t last = ((int64_t)e + 1) * t->ne[1];
        if (last > prev_rows && last <= done_rows) smoe_st_release(t->src[e]);
    }
}

static smoe_status stream_tensors(conv_state *s, const smoe_conv_plan *plan) {
    int k = 0;
    conv_batch *prev = NULL;
    for (int64_t i = 0; i < plan->n; i++) {
        const smoe_conv_tensor *t = &plan->t[i];
        const size_t row_size = smoe_row_size(t->type, t->ne[0]);
        const int64_t n_rows = t->ne[1] * t->ne[2];
        int64_t batch_rows = (int64_t)(BATCH_BYTES / row_size);
        if (batch_rows < 1) batch_rows = 1;
        const smoe_st_dtype sd = t->src[0]->dtype;
        /* The same plain type: rows are copied byte for byte (exact, NaN payloads included). */
        bool same = (sd == SMOE_ST_F32 && t->type == SMOE_TYPE_F32) || (sd == SMOE_ST_F16 && t->type == SMOE_TYPE_F16) ||
                    (sd == SMOE_ST_BF16 && t->type == SMOE_TYPE_BF16);
        for (uint32_t e = 1; e < t->n_src; e++) same = same && t->src[e]->dtype == sd;
        int64_t chunk_rows = (int64_t)(s->pool.scratch_floats / (size_t)t->ne[0]);
        if (chunk_rows < 1) chunk_rows = 1;
        smoe_log(&s->log, SMOE_LOG_DEBUG, "%-28s %-5s <- %s %s%s", t->name, smoe_type_name(t->type),
                 smoe_st_dtype_name(sd), t->src[0]->name, t->n_src > 1 ? " (+ experts)" : "");
        for (uint32_t e = 0; e < t->n_src; e++) smoe_st_prefetch(t->src[e]);
        for (int64_t row0 = 0; row0 < n_rows; row0 += batch_rows) {
            conv_batch *b = &s->batch[k];
            b->t = t;
            b->row_size = row_size;
            b->copy = same;
            b->row0 = row0;
            b->n_rows = row0 + batch_rows <= n_rows ? batch_rows : n_rows - row0;
            /* enough chunks to keep every worker busy */
            int64_t cr = (b->n_rows + 4 * s->pool.n - 1) / (4 * s->pool.n);
            b->chunk_rows = cr < chunk_rows ? (cr > 0 ? cr : 1) : chunk_rows;
            b->n_chunks = (b->n_rows + b->chunk_rows - 1) / b->chunk_rows;
            b->out = s->buf[k];
            atomic_store(&b->next_chunk, 0);
            atomic_store(&b->failed, 0);
            atomic_store(&b->failed_row, -1);
            pool_submit(&s->pool, b);
            smoe_status st = prev ? write_batch(s, prev) : SMOE_OK;
            pool_wait(&s->pool);
            SMOE_TRY(st);
            SMOE_TRY(batch_check(b));
            release_done_sources(t, row0, row0 + b->n_rows);
            prev = b;
            k ^= 1;
        }
    }
    if (prev) SMOE_TRY(write_batch(s, prev));
    return SMOE_OK;
}

static int default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > 8) n = 8;
    return (int)n;
}

smoe_status smoe_convert(const char *hf_dir, const char *out_path, const smoe_convert_params *params) {
    SMOE_RETURN_IF(!hf_dir || !out_path, SMOE_ERR_INVALID_ARGUMENT, "smoe_convert: NULL path");
    smoe_convert_params p = smoe_convert_default_params();
    if (params) {
        SMOE_RETURN_IF(params->size < offsetof(smoe_convert_params, log_user_data) + sizeof(void *) &&
                           params->size != sizeof(p),
                       SMOE_ERR_INVALID_ARGUMENT, "smoe_convert: params->size %u (use smoe_convert_default_params)",
                       params->size);
        memcpy(&p, params, params->size < sizeof(p) ? params->size : sizeof(p));
        p.size = sizeof(p);
    }
    SMOE_RETURN_IF(!strcmp(smoe_ftype_name(p.ftype), "unknown"), SMOE_ERR_INVALID_ARGUMENT,
                   "smoe_convert: unknown ftype %d", (int)p.ftype);
    SMOE_RETURN_IF(p.n_threads < 0 || p.n_threads > MAX_THREADS, SMOE_ERR_INVALID_ARGUMENT,
                   "smoe_convert: n_threads %d out of range [0, %d]", p.n_threads, MAX_THREADS);

    conv_state s;
    memset(&s, 0, sizeof(s));
    s.params = &p;
    s.log.fn = p.log;
    s.log.user_data = p.log_user_data;

    smoe_hf_config *cfg = NULL;
    smoe_st_set *set = NULL;
    smoe_conv_plan *plan = NULL;
    smoe_status st;
    SMOE_GOTO_TRY(st, done, smoe_hf_config_load(hf_dir, &cfg));
    SMOE_GOTO_TRY(st, done, smoe_st_set_open(hf_dir, &set));
    st = smoe_name_map_plan(cfg, set, &s.log, &plan);
    if (st != SMOE_OK) {
        smoe_error_prefix("%s", hf_dir);
        goto done;
    }
    /* The per-tensor types of the file type: the same policy as `smoe quantize` (quant/quant-policy.c). */
    const smoe_quant_model_info mi = {.n_layer = (int32_t)cfg->n_layer, .n_expert = (int32_t)cfg->n_expert,
                                      .has_output = plan->n > 0 && plan->t[plan->n - 1].cls == SMOE_CONV_OUTPUT};
    for (int64_t i = 0; i < plan->n; i++) {
        smoe_conv_tensor *t = &plan->t[i];
        t->type = smoe_quant_choose_type(t->name, t->ne, t->n_dims, p.ftype, &mi);
    }

    int64_t max_ne0 = 1;
    uint64_t out_bytes = 0;
    for (int64_t i = 0; i < plan->n; i++) {
        const smoe_conv_tensor *t = &plan->t[i];
        if (t->ne[0] > max_ne0) max_ne0 = t->ne[0];
        for (uint32_t e = 0; e < t->n_src; e++) s.bytes_total += t->src[e]->size;
        out_bytes += smoe_row_size(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2]);
    }
    const int n_threads = p.n_threads ? p.n_threads : default_threads();
    smoe_log(&s.log, SMOE_LOG_INFO, "%s: %" PRId64 " tensors, %.1f MiB -> %s (%s, %.1f MiB), %d threads", hf_dir,
             plan->n, (double)s.bytes_total / 1048576.0, out_path, smoe_ftype_name(p.ftype),
             (double)out_bytes / 1048576.0, n_threads);

    SMOE_GOTO_TRY(st, done, smoe_gguf_writer_open(out_path, &s.w));
    const uint32_t file_type = p.ftype == SMOE_FTYPE_AUTO ? (uint32_t)SMOE_FTYPE_Q4_K_M : (uint32_t)p.ftype;
    SMOE_GOTO_TRY(st, done, smoe_name_map_write_metadata(s.w, cfg, plan, file_type, hf_dir, &s.log));
    for (int64_t i = 0; i < plan->n; i++) {
        const smoe_conv_tensor *t = &plan->t[i];
        SMOE_GOTO_TRY(st, done, smoe_gguf_writer_add_tensor(s.w, t->name, t->type, t->n_dims, t->ne));
    }
    SMOE_GOTO_TRY(st, done, smoe_gguf_writer_begin_data(s.w));

    size_t buf_size = BATCH_BYTES;
    for (int64_t i = 0; i < plan->n; i++) {
        const size_t row = smoe_row_size(plan->t[i].type, plan->t[i].ne[0]);
        if (row > buf_size) buf_size = row;
    }
    s.buf[0] = malloc(buf_size);
    s.buf[1] = malloc(buf_size);
    SMOE_GOTO_IF(!s.buf[0] || !s.buf[1], st, done, SMOE_ERR_OUT_OF_MEMORY, "out of memory for batch buffers");
    SMOE_GOTO_TRY(st, done, pool_start(&s.pool, n_threads, max_ne0));
    if (p.progress && !p.progress(0, s.bytes_total, p.progress_user_data)) {
        st = smoe_set_error(SMOE_ERR_CANCELLED, "conversion cancelled");
        goto done;
    }
    SMOE_GOTO_TRY(st, done, stream_tensors(&s, plan));
    st = smoe_gguf_writer_finish(s.w);
    s.w = NULL;
    if (st == SMOE_OK) smoe_log(&s.log, SMOE_LOG_INFO, "wrote %s", out_path);
done:
    pool_stop(&s.pool);
    smoe_gguf_writer_abort(s.w);
    free(s.buf[0]);
    free(s.buf[1]);
    smoe_name_map_plan_free(plan);
    smoe_st_set_close(set);
    smoe_hf_config_free(cfg);
    return st;
}
