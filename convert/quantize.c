/*
 * quantize.c - smoe_model_quantize: a GGUF file (F32/F16/BF16 weights) re-quantized into another GGUF file.
 *
 * Pipeline, one tensor at a time, in file order:
 *   source rows (mmap) -> f32 scratch (per worker, ~1 MiB) -> search quantizer -> batch buffer (<= 32 MiB) -> writer
 * A batch of rows is split between the worker threads (contiguous row ranges); the calling thread writes the batch
 * when all are done, releases the source pages it read (madvise), reports progress, and starts the next. Tensors
 * whose type does not change are copied straight from the mapping. Resident memory stays bounded by one batch of
 * source rows, the batch buffer and the scratch, whatever the model size (measured: 52 MiB peak RSS for a
 * 555 MB F16 file to Q4_0).
 *
 * Every metadata key is copied; general.file_type and general.quantization_version are then set. The writer writes
 * to a temporary file that is renamed into place only when complete (core/gguf-writer.c), so a failure or a
 * cancellation leaves no output.
 */
#include "core/gguf.h"
#include "core/status.h"
#include "quant/quant-policy.h"
#include "quant/quant.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define QZ_BATCH_BYTES   ((size_t)32 << 20) /* source or output bytes per batch (>= 1 row) */
#define QZ_SCRATCH_BYTES ((size_t)1 << 20)  /* f32 scratch per worker (at least one row)   */
#define QZ_COPY_BYTES    ((size_t)32 << 20) /* bytes per write when copying a tensor as is */
#define QZ_MAX_THREADS   256

smoe_quantize_params smoe_quantize_default_params(void) {
    smoe_quantize_params p;
    memset(&p, 0, sizeof(p));
    p.size  = sizeof(p);
    p.ftype = SMOE_FTYPE_Q4_K_M;
    return p;
}

/* Every file type smoe_ftype_name knows (convert/convert.c holds the one name table). */
static bool ftype_known(smoe_ftype f) { return strcmp(smoe_ftype_name(f), "unknown") != 0; }

/* ---- model facts the type policy needs ---- */

static smoe_status model_info(const smoe_gguf *g, smoe_quant_model_info *info) {
    memset(info, 0, sizeof(*info));
    const char *arch = "llama";
    if (smoe_gguf_find_key(g, "general.architecture") >= 0) SMOE_TRY(smoe_gguf_get_str(g, "general.architecture", &arch));
    char     key[160];
    uint32_t v = 0;
    snprintf(key, sizeof(key), "%s.block_count", arch);
    if (smoe_gguf_find_key(g, key) >= 0) {
        SMOE_TRY(smoe_gguf_get_u32(g, key, &v));
        info->n_layer = v > 1000000 ? 1000000 : (int32_t)v;
    } else { /* derive it from the tensor names */
        for (int64_t i = 0; i < smoe_gguf_n_tensors(g); i++) {
            const int l = smoe_quant_layer_of(smoe_gguf_tensor(g, i)->name);
            if (l + 1 > info->n_layer) info->n_layer = l + 1;
        }
    }
    snprintf(key, sizeof(key), "%s.expert_count", arch);
    v = 0;
    if (smoe_gguf_find_key(g, key) >= 0) SMOE_TRY(smoe_gguf_get_u32(g, key, &v));
    info->n_expert   = v > 1000000 ? 1000000 : (int32_t)v;
    info->has_output = smoe_gguf_find_tensor(g, "output.weight") >= 0;
    return SMOE_OK;
}

/* Drops the pages of [p, p + n) that lie wholly inside it from this process's resident set once they have been
 * read, so resident memory does not grow with the model (the file stays in the page cache). Valid because
 * smoe_gguf_open maps the file read-only and MAP_PRIVATE: such clean pages are simply read again if touched. */
static void release_pages(const void *p, size_t n) {
    const long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || n == 0) return;
    const uintptr_t a = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    const uintptr_t b = ((uintptr_t)p + n) & ~((uintptr_t)page - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* ---- workers ---- */

typedef struct qz_tensor {
    const smoe_gguf_tensor_info *info;
    const uint8_t               *src;     /* mapped source bytes                     */
    const smoe_type_traits      *src_tr;
    smoe_type                    dst;
    size_t                       src_row, dst_row;
    int64_t                      ne0;
    bool                         quantized; /* dst is a block type: check NaN/Inf      */
    bool                         measure;
} qz_tensor;

typedef struct qz_job {
    const qz_tensor *t;
    int64_t          r0, r1;  /* rows of the tensor */
    uint8_t         *out;     /* where row r0 goes  */
    float           *scratch;
    int64_t          scratch_rows;
    smoe_quant_error err;
    int64_t          bad_row; /* first row with NaN/Inf, or -1 */
    bool             failed;  /* the quantizer refused (cannot happen for a type the policy chose) */
} qz_job;

static void *qz_run(void *arg) {
    qz_job          *j = arg;
    const qz_tensor *t = j->t;
    for (int64_t r = j->r0; r < j->r1 && j->bad_row < 0 && !j->failed;) {
        const int64_t n = j->r1 - r < j->scratch_rows ? j->r1 - r : j->scratch_rows;
        t->src_tr->to_f32(t->src + (size_t)r * t->src_row, j->scratch, n * t->ne0);
        if (t->quantized) {
            for (int64_t k = 0; k < n; k++) {
                if (!smoe_quant_all_finite(j->scratch + k * t->ne0, t->ne0)) {
                    j->bad_row = r + k;
                    return NULL;
                }
            }
        }
        uint8_t *out = j->out + (size_t)(r - j->r0) * t->dst_row;
        if (smoe_quantize_rows(t->dst, j->scratch, out, n, t->ne0) != (size_t)n * t->dst_row) {
            j->failed = true;
            return NULL;
        }
        if (t->measure) smoe_quant_error_add(&j->err, t->dst, j->scratch, out, n * t->ne0);
        r += n;
    }
    return NULL;
}

typedef struct qz_ctx {
    const smoe_quantize_params *p;
    smoe_logger                 log;
    int                         n_threads;
    qz_job                     *jobs;
    float                     **scratch;
    size_t                      scratch_cap; /* floats per worker scratch */
    uint8_t                    *batch;
    size_t                      batch_cap;
    uint64_t                    done, total;
} qz_ctx;

static smoe_status report_progress(qz_ctx *c) {
    if (c->p->progress && !c->p->progress(c->done, c->total, c->p->progress_user_data)) {
        return smoe_set_error(SMOE_ERR_CANCELLED, "quantize: cancelled by the progress callback");
    }
    return SMOE_OK;
}

/* Converts / quantizes one tensor and writes it. */
static smoe_status convert_tensor(qz_ctx *c, smoe_gguf_writer *w, qz_tensor *t, smoe_quant_error *err) {
    const int64_t n_rows = (int64_t)(t->info->size / t->src_row);
    /* scratch: at least one row, else ~1 MiB */
    int64_t sr = (int64_t)(QZ_SCRATCH_BYTES / ((size_t)t->ne0 * sizeof(float)));
    if (sr < 1) sr = 1;
    const size_t need_scratch = (size_t)sr * (size_t)t->ne0;
    if (need_scratch > c->scratch_cap) {
        for (int i = 0; i < c->n_threads; i++) {
            float *s = realloc(c->scratch[i], need_scratch * sizeof(float));
            SMOE_RETURN_IF(!s, SMOE_ERR_OUT_OF_MEMORY, "quantize: %s: no memory for a %zu-byte scratch", t->info->name,
                           need_scratch * sizeof(float));
            c->scratch[i] = s;
        }
        c->scratch_cap = need_scratch;
    }
    /* batch: ~32 MiB of source or output, whichever is larger (both are resident while it is in flight), but at
     * least one row per worker */
    int64_t br = (int64_t)(QZ_BATCH_BYTES / (t->src_row > t->dst_row ? t->src_row : t->dst_row));
    if (br < c->n_threads) br = c->n_threads;
    if (br > n_rows) br = n_rows;
    const size_t need_batch = (size_t)br * t->dst_row;
    if (need_batch > c->batch_cap) {
        uint8_t *b = realloc(c->batch, need_batch);
        SMOE_RETURN_IF(!b, SMOE_ERR_OUT_OF_MEMORY, "quantize: %s: no memory for a %zu-byte batch", t->info->name,
                       need_batch);
        c->batch     = b;
        c->batch_cap = need_batch;
    }
    for (int64_t r0 = 0; r0 < n_rows; r0 += br) {
        const int64_t rows = n_rows - r0 < br ? n_rows - r0 : br;
        int           nj   = c->n_threads < rows ? c->n_threads : (int)rows;
        pthread_t     th[QZ_MAX_THREADS];
        bool          started[QZ_MAX_THREADS] = {false};
        for (int k = 0; k < nj; k++) {
            qz_job *j = &c->jobs[k];
            memset(j, 0, sizeof(*j));
            j->t            = t;
            j->r0           = r0 + rows * k / nj;
            j->r1           = r0 + rows * (k + 1) / nj;
            j->out          = c->batch + (size_t)(j->r0 - r0) * t->dst_row;
            j->scratch      = c->scratch[k];
            j->scratch_rows = sr;
            j->bad_row      = -1;
            if (k > 0) started[k] = pthread_create(&th[k], NULL, qz_run, j) == 0;
        }
        qz_run(&c->jobs[0]);
        for (int k = 1; k < nj; k++) {
            if (started[k]) pthread_join(th[k], NULL);
            else qz_run(&c->jobs[k]); /* thread creation failed: do its share here */
        }
        for (int k = 0; k < nj; k++) {
            const qz_job *j = &c->jobs[k];
            SMOE_RETURN_IF(j->bad_row >= 0, SMOE_ERR_CORRUPT_FILE,
                           "tensor '%s': row %" PRId64 " holds NaN or Inf; cannot quantize to %s", t->info->name,
                           j->bad_row, smoe_type_name(t->dst));
            SMOE_RETURN_IF(j->failed, SMOE_ERR_UNSUPPORTED, "tensor '%s': cannot quantize rows of %" PRId64 " to %s",
                           t->info->name, t->ne0, smoe_type_name(t->dst));
            smoe_quant_error_merge(err, &j->err);
        }
        SMOE_TRY(smoe_gguf_writer_write_data(w, c->batch, (size_t)rows * t->dst_row));
        release_pages(t->src + (size_t)r0 * t->src_row, (size_t)rows * t->src_row);
        c->done += (uint64_t)rows * t->src_row;
        SMOE_TRY(report_progress(c));
    }
    return SMOE_OK;
}

static smoe_status copy_tensor(qz_ctx *c, smoe_gguf_writer *w, const uint8_t *src, uint64_t size) {
    for (uint64_t off = 0; off < size;) {
        const size_t n = size - off < QZ_COPY_BYTES ? (size_t)(size - off) : QZ_COPY_BYTES;
        SMOE_TRY(smoe_gguf_writer_write_data(w, src + off, n));
        release_pages(src + off, n);
        off += n;
        c->done += n;
        SMOE_TRY(report_progress(c));
    }
    return SMOE_OK;
}

/* The output type of tensor i, checked against what can be converted. */
static smoe_status plan_type(const qz_ctx *c, const smoe_gguf *g, const smoe_gguf_tensor_info *ti,
                             const smoe_quant_model_info *mi, smoe_type *out) {
    const smoe_type_traits *src = smoe_type_get_traits(ti->type);
    smoe_type               dst = smoe_quant_choose_type(ti->name, ti->ne, ti->n_dims, c->p->ftype, mi);
    (void)g;
    if (dst == ti->type) {
        *out = dst;
        return SMOE_OK;
    }
    if (!src->to_f32) {
        /* integer tensors and types smoe cannot read: kept as they are when they are not weight matrices */
        SMOE_RETURN_IF(smoe_quant_tensor_is_matrix(ti->name, ti->n_dims), SMOE_ERR_UNSUPPORTED,
                       "tensor '%s': cannot convert %s to %s", ti->name, src->name, smoe_type_name(dst));
        *out = ti->type;
        return SMOE_OK;
    }
    SMOE_RETURN_IF(src->is_quantized && !c->p->allow_requantize, SMOE_ERR_UNSUPPORTED,
                   "tensor '%s' is already quantized (%s); re-quantizing it to %s compounds the error (set "
                   "allow_requantize / --allow-requantize to do it anyway)",
                   ti->name, src->name, smoe_type_name(dst));
    *out = dst;
    return SMOE_OK;
}

static int online_cpus(void) {
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > QZ_MAX_THREADS ? QZ_MAX_THREADS : (int)n;
}

smoe_status smoe_model_quantize(const char *in_path, const char *out_path, const smoe_quantize_params *params) {
    SMOE_RETURN_IF(!in_path || !out_path, SMOE_ERR_INVALID_ARGUMENT, "smoe_model_quantize: NULL path");
    smoe_quantize_params p = smoe_quantize_default_params();
    if (params) {
        SMOE_RETURN_IF(params->size != sizeof(p), SMOE_ERR_INVALID_ARGUMENT,
                       "smoe_model_quantize: params.size is %u, expected %zu (use smoe_quantize_default_params)",
                       params->size, sizeof(p));
        p = *params;
    }
    SMOE_RETURN_IF(!ftype_known(p.ftype), SMOE_ERR_INVALID_ARGUMENT, "smoe_model_quantize: unknown file type %d",
                   (int)p.ftype);
    SMOE_RETURN_IF(p.n_threads < 0, SMOE_ERR_INVALID_ARGUMENT, "smoe_model_quantize: n_threads %d < 0", p.n_threads);

    qz_ctx c;
    memset(&c, 0, sizeof(c));
    c.p         = &p;
    c.log       = (smoe_logger){p.log, p.log_user_data};
    c.n_threads = p.n_threads > 0 ? (p.n_threads > QZ_MAX_THREADS ? QZ_MAX_THREADS : p.n_threads) : online_cpus();

    smoe_gguf        *g  = NULL;
    smoe_gguf_writer *w  = NULL;
    smoe_type        *ty = NULL;
    smoe_status       st = smoe_gguf_open(in_path, &g);
    if (st != SMOE_OK) return st;

    smoe_quant_model_info mi;
    const int64_t         n_t = smoe_gguf_n_tensors(g);
    SMOE_GOTO_TRY(st, done, model_info(g, &mi));
    ty      = calloc((size_t)(n_t > 0 ? n_t : 1), sizeof(*ty));
    c.jobs  = calloc((size_t)c.n_threads, sizeof(*c.jobs));
    c.scratch = calloc((size_t)c.n_threads, sizeof(*c.scratch));
    SMOE_GOTO_IF(!ty || !c.jobs || !c.scratch, st, done, SMOE_ERR_OUT_OF_MEMORY, "quantize: out of memory");
    for (int64_t i = 0; i < n_t; i++) {
        const smoe_gguf_tensor_info *ti = smoe_gguf_tensor(g, i);
        SMOE_GOTO_TRY(st, done, plan_type(&c, g, ti, &mi, &ty[i]));
        c.total += ti->size;
    }
    smoe_log(&c.log, SMOE_LOG_INFO, "quantize: %s -> %s, %s, %" PRId64 " tensors, %d layers, %d experts, %d threads",
             in_path, out_path, smoe_ftype_name(p.ftype), n_t, mi.n_layer, mi.n_expert, c.n_threads);

    /* header: every key of the source, then the file type (AUTO records Q4_K_M, as the converter does) */
    SMOE_GOTO_TRY(st, done, smoe_gguf_writer_open(out_path, &w));
    for (int64_t i = 0; i < smoe_gguf_n_kv(g); i++) SMOE_GOTO_TRY(st, done, smoe_gguf_writer_copy_kv(w, g, i));
    SMOE_GOTO_TRY(st, done, smoe_gguf_writer_set_u32(w, "general.quantization_version", 2));
    SMOE_GOTO_TRY(st, done, smoe_gguf_writer_set_u32(w, "general.file_type",
                                                     p.ftype == SMOE_FTYPE_AUTO ? (uint32_t)SMOE_FTYPE_Q4_K_M
                                                                                : (uint32_t)p.ftype));
    for (int64_t i = 0; i < n_t; i++) {
        const smoe_gguf_tensor_info *ti = smoe_gguf_tensor(g, i);
        SMOE_GOTO_TRY(st, done, smoe_gguf_writer_add_tensor(w, ti->name, ty[i], ti->n_dims, ti->ne));
    }
    SMOE_GOTO_TRY(st, done, smoe_gguf_writer_begin_data(w));
    SMOE_GOTO_TRY(st, done, report_progress(&c));

    for (int64_t i = 0; i < n_t; i++) {
        const smoe_gguf_tensor_info *ti  = smoe_gguf_tensor(g, i);
        const uint8_t               *src = smoe_gguf_tensor_data(g, i);
        smoe_quant_error             err = {0};
        const bool                   copy = ty[i] == ti->type;
        uint64_t                     n_el = 1;
        for (uint32_t d = 0; d < ti->n_dims; d++) n_el *= (uint64_t)ti->ne[d];
        if (copy) {
            SMOE_GOTO_TRY(st, done, copy_tensor(&c, w, src, ti->size));
        } else {
            qz_tensor t = {
                .info      = ti,
                .src       = src,
                .src_tr    = smoe_type_get_traits(ti->type),
                .dst       = ty[i],
                .src_row   = smoe_row_size(ti->type, ti->ne[0]),
                .dst_row   = smoe_row_size(ty[i], ti->ne[0]),
                .ne0       = ti->ne[0],
                .quantized = smoe_type_get_traits(ty[i])->is_quantized,
                .measure   = p.stats != NULL,
            };
            SMOE_GOTO_IF(t.src_row == 0 || t.dst_row == 0, st, done, SMOE_ERR_CORRUPT_FILE,
                         "tensor '%s': empty or ragged rows (%" PRId64 ")", ti->name, ti->ne[0]);
            SMOE_GOTO_TRY(st, done, convert_tensor(&c, w, &t, &err));
        }
        smoe_log(&c.log, SMOE_LOG_DEBUG, "quantize: %s %s -> %s", ti->name, smoe_type_name(ti->type),
                 smoe_type_name(ty[i]));
        if (p.stats) {
            smoe_quantize_tensor_stats s;
            memset(&s, 0, sizeof(s));
            s.name       = ti->name;
            s.src_type   = smoe_type_name(ti->type);
            s.dst_type   = smoe_type_name(ty[i]);
            s.n_dims     = ti->n_dims;
            for (int d = 0; d < 4; d++) s.ne[d] = d < SMOE_GGUF_MAX_DIMS ? ti->ne[d] : 1;
            s.n_elements  = n_el;
            s.src_bytes   = ti->size;
            s.dst_bytes   = copy ? ti->size
                                 : (uint64_t)smoe_row_size(ty[i], ti->ne[0]) * (ti->ne[0] > 0 ? n_el / (uint64_t)ti->ne[0] : 0);
            s.copied      = copy;
            s.rmse        = smoe_quant_error_rmse(&err);
            s.nmse        = smoe_quant_error_nmse(&err);
            s.max_abs_err = err.max_abs_err;
            p.stats(&s, p.stats_user_data);
        }
    }
    st = smoe_gguf_writer_finish(w);
    w  = NULL;
    if (st == SMOE_OK) smoe_log(&c.log, SMOE_LOG_INFO, "quantize: wrote %s", out_path);

done:
    if (w) smoe_gguf_writer_abort(w);
    if (c.scratch) {
        for (int i = 0; i < c.n_threads; i++) free(c.scratch[i]);
    }
    free(c.scratch);
    free(c.jobs);
    free(c.batch);
    free(ty);
    smoe_gguf_close(g);
    return st;
}
