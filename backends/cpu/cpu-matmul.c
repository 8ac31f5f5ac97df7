/*
 * cpu-matmul.c - MUL_MAT and MUL_MAT_ID with the SIMD kernel table (cpu-simd.h); ops-matmul.c keeps the plain-C
 * reference, used for SMOE_CPU_ISA_SCALAR and for whatever this file declines (types without a SIMD dot product).
 *
 * Plan of one call:
 *  1. the activation rows are quantized to the weight type's vec_dot_type once (threads split the rows);
 *  2. batched ("gemm") when a weight matrix meets at least MM_GEMM_MIN activation rows: those rows are packed into
 *     groups of `lanes` tokens (cpu-simd.h), and every weight row is read once per block of MM_GROUP_BLOCK groups;
 *     otherwise ("gemv") each weight row is dotted with each activation row while it sits in L1;
 *  3. work items (expert, block of token groups, chunk of MM_CHUNK rows) are handed out from an atomic counter, so a
 *     thread that was descheduled does not hold the others up; which thread computes an element never changes its
 *     value (the per-element operations are fixed), so results do not depend on the thread count.
 * MUL_MAT_ID first groups the (slot, token) pairs by expert (counting sort, stable), so each expert's weights are
 * read once per batch for all the tokens routed to it; unused experts are never touched.
 */
#include "cpu-impl.h"
#include "cpu-simd.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MM_GEMM_MIN    4   /* activation rows from which a weight matrix is multiplied batched */
#define MM_GROUP_BLOCK 8   /* token groups per pass over a weight row (keeps the packed activations in L2) */
#define MM_CHUNK       32  /* weight rows per work item (a multiple of SMOE_GEMM_MAX_ROWS and MM_OUT_ROWS) */
/* ... when every product of the call is row-by-row (decode): longer runs of rows keep the weight stream going */
#define MM_CHUNK_GEMV  128
#define MM_GEMV_TOKENS 16  /* row-by-row path: activation rows per work item (small matrices still split) */
/* Row-by-row path: software prefetch distance along the weights. Weights are usually mmap'd file pages (4 KiB), and
 * the hardware prefetchers stop at page boundaries; this keeps the stream going across them. */
#define MM_GEMV_PF     4096
#define MM_ALIGN(x)    (((x) + 63) & ~(size_t)63)
#define MM_OUT_ROWS    16  /* rows whose results are gathered before they are stored (a multiple of 4) */
/* floats of one thread's result tiles: MM_OUT_ROWS rows x lanes x MM_GROUP_BLOCK groups */
#define MM_RES_FLOATS(lanes) ((size_t)MM_OUT_ROWS * (size_t)(lanes) * MM_GROUP_BLOCK)

typedef struct mm_expert {
    int64_t p0, n;        /* its pairs: [p0, p0 + n) of the pair list */
    int64_t group0;       /* gemm: index of its first packed group */
    int32_t n_groups;     /* gemm: packed groups (0: gemv) */
    int32_t n_blocks;     /* gemm: ceil(n_groups / MM_GROUP_BLOCK); gemv: ceil(n / MM_GEMV_TOKENS) */
    int64_t item0;        /* its first work item */
} mm_expert;

typedef struct mm_job {
    const smoe_cpu_kernels *kern;
    const smoe_tensor      *w, *x, *out;
    smoe_type               vt;        /* vec_dot_type */
    smoe_vec_dot_fn         dot;
    smoe_from_f32_fn        quant;     /* NULL: activations used as they are (f32) */
    smoe_gemm_fn            gemm;
    smoe_gemv_fn            gemv;      /* row-block GEMV for the row-by-row path (NULL: vec_dot per row) */
    const uint8_t          *gemv_act;  /* Q8_0 types: the activation rows in the gemv layout, gemv_row bytes apart */
    size_t                  gemv_row;
    const smoe_gemm_act_desc *act_desc;
    size_t                  xq_row;    /* bytes of one quantized activation row */
    uint8_t                *xq;        /* quantized activation rows (NULL when quant is NULL) */
    uint8_t                *act;       /* packed groups */
    size_t                  group_bytes;
    float                  *res;       /* per thread: MM_RES_FLOATS(lanes) floats */
    size_t                  res_stride; /* floats per thread */
    /* pairs: activation row and output row (in units of m floats) of each use, grouped by expert */
    const int64_t          *pair_x, *pair_out;
    mm_expert              *experts;
    int64_t                 n_experts; /* 1 for MUL_MAT */
    int64_t                 n_items, n_chunks, chunk; /* chunk: rows per work item */
    int64_t                 n_groups_total;
    atomic_llong            next_group, next_item;
} mm_job;

static const void *act_row(const mm_job *j, int64_t r) {
    if (j->quant) return j->xq + (size_t)r * j->xq_row;
    const smoe_tensor *x = j->x;
    const int64_t i1 = r % x->ne[1], i2 = (r / x->ne[1]) % x->ne[2], i3 = r / (x->ne[1] * x->ne[2]);
    return smoe_cpu_row(x, i1, i2, i3);
}

/* ---- phase 1: quantize activation rows; phase 2: pack groups ---- */

static void quant_task(void *p, int ith, int nth) {
    mm_job *j = p;
    const smoe_tensor *x = j->x;
    int64_t r0, r1;
    smoe_split_range(smoe_tensor_nrows(x), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const int64_t i1 = r % x->ne[1], i2 = (r / x->ne[1]) % x->ne[2], i3 = r / (x->ne[1] * x->ne[2]);
        j->quant(smoe_cpu_row(x, i1, i2, i3), j->xq + (size_t)r * j->xq_row, x->ne[0]);
    }
}

static void pack_task(void *p, int ith, int nth) {
    mm_job *j = p;
    (void)ith, (void)nth;
    const int lanes = j->kern->lanes;
    const void *rows[SMOE_GEMM_MAX_LANES];
    for (;;) {
        const int64_t g = atomic_fetch_add_explicit(&j->next_group, 1, memory_order_relaxed);
        if (g >= j->n_groups_total) break;
        /* find the expert owning packed group g (experts are few; a linear scan is fine) */
        int64_t e = 0;
        while (!(j->experts[e].n_groups && g < j->experts[e].group0 + j->experts[e].n_groups)) e++;
        const mm_expert *ex = &j->experts[e];
        const int64_t q0 = ex->p0 + (g - ex->group0) * lanes;
        int n = (int)(ex->p0 + ex->n - q0 < lanes ? ex->p0 + ex->n - q0 : lanes);
        for (int l = 0; l < n; l++) rows[l] = act_row(j, j->pair_x[q0 + l]);
        j->kern->gemm_pack(j->act_desc, j->w->ne[0], rows, n, j->act + (size_t)g * j->group_bytes);
    }
}

static void gemv_prep_task(void *p, int ith, int nth) {
    mm_job *j = p;
    int64_t r0, r1;
    smoe_split_range(smoe_tensor_nrows(j->x), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++)
        j->kern->gemv_prep_q8_0(j->xq + (size_t)r * j->xq_row, j->x->ne[0], (uint8_t *)j->gemv_act + (size_t)r * j->gemv_row);
}

/* ---- phase 3: the products ---- */

/* Rows [i0, i1) of one expert against its tokens of block `block` (MM_GEMV_TOKENS each). */
static void gemv_rows(const mm_job *j, const mm_expert *ex, int64_t block, const uint8_t *wbase, int64_t i0,
                      int64_t i1) {
    const smoe_tensor *w = j->w;
    const int64_t k = w->ne[0], m = w->ne[1];
    const int64_t q0 = ex->p0 + block * MM_GEMV_TOKENS;
    const int64_t q1 = q0 + MM_GEMV_TOKENS < ex->p0 + ex->n ? q0 + MM_GEMV_TOKENS : ex->p0 + ex->n;
    float *out = j->out->data;
    const size_t row = w->nb[1];
    if (j->gemv) { /* rows in blocks of SMOE_GEMV_ROWS per token (the kernel prefetches the weights itself) */
        for (int64_t i = i0; i < i1; i += SMOE_GEMV_ROWS) {
            const int nr = (int)(i1 - i < SMOE_GEMV_ROWS ? i1 - i : SMOE_GEMV_ROWS);
            for (int64_t q = q0; q < q1; q++) {
                const void *y = j->gemv_act ? (const void *)(j->gemv_act + (size_t)j->pair_x[q] * j->gemv_row)
                                            : act_row(j, j->pair_x[q]);
                float r[SMOE_GEMV_ROWS];
                j->gemv(k, wbase + (size_t)i * row, row, nr, y, r);
                memcpy(out + (size_t)j->pair_out[q] * (size_t)m + (size_t)i, r, (size_t)nr * sizeof(float));
            }
        }
        return;
    }
    const uint8_t *wend = wbase + (size_t)m * row; /* rows are contiguous: one stream, prefetched MM_GEMV_PF ahead */
    for (int64_t i = i0; i < i1; i++) {
        const uint8_t *wrow = wbase + (size_t)i * row;
        for (const uint8_t *p = wrow + MM_GEMV_PF; p < wrow + row + MM_GEMV_PF && p < wend; p += 64) __builtin_prefetch(p);
        for (int64_t q = q0; q < q1; q++) {
            float r;
            j->dot(k, &r, wrow, act_row(j, j->pair_x[q]));
            out[(size_t)j->pair_out[q] * (size_t)m + (size_t)i] = r;
        }
    }
}

/* Rows [i0, i1) of one expert against one block of its token groups. Results of MM_OUT_ROWS rows are gathered per
 * token before they are stored, so each token's output gets whole cache lines (outputs are m floats apart). */

static void gemm_rows(const mm_job *j, const mm_expert *ex, int64_t block, const uint8_t *wbase, int64_t i0,
                      int64_t i1, float *res) {
    const smoe_tensor *w = j->w;
    const int64_t k = w->ne[0], m = w->ne[1];
    const int lanes = j->kern->lanes;
    const int64_t g0 = (int64_t)block * MM_GROUP_BLOCK;
    const int ng = (int)(ex->n_groups - g0 < MM_GROUP_BLOCK ? ex->n_groups - g0 : MM_GROUP_BLOCK);
    const uint8_t *act = j->act + (size_t)(ex->group0 + g0) * j->group_bytes;
    /* tokens in the last group of this block */
    const int tail = (int)(ex->p0 + ex->n - (ex->p0 + (g0 + ng - 1) * lanes) < lanes
                               ? ex->p0 + ex->n - (ex->p0 + (g0 + ng - 1) * lanes)
                               : lanes);
    const size_t quad = (size_t)SMOE_GEMM_MAX_ROWS * (size_t)lanes; /* floats of one row quad of one group */
    float *out = j->out->data;
    for (int64_t ib = i0; ib < i1; ib += MM_OUT_ROWS) {
        const int64_t ie = ib + MM_OUT_ROWS < i1 ? ib + MM_OUT_ROWS : i1;
        /* the output lines this block will write: fetched now, written after the products (which hide the wait) */
        for (int g = 0; g < ng; g++) {
            const int64_t q0 = ex->p0 + (g0 + g) * lanes;
            const int nl = (int)(ex->p0 + ex->n - q0 < lanes ? ex->p0 + ex->n - q0 : lanes);
            for (int l = 0; l < nl; l++) __builtin_prefetch(out + (size_t)j->pair_out[q0 + l] * (size_t)m + (size_t)ib, 1);
        }
        /* res: [quad][group][row][lane] */
        int nq = 0;
        for (int64_t i = ib; i < ie; i += SMOE_GEMM_MAX_ROWS, nq++) {
            const int nr = (int)(ie - i < SMOE_GEMM_MAX_ROWS ? ie - i : SMOE_GEMM_MAX_ROWS);
            j->gemm(k, wbase + (size_t)i * w->nb[1], w->nb[1], nr, act, ng, tail, res + (size_t)nq * (size_t)ng * quad);
        }
        const int nrows = (int)(ie - ib);
        for (int g = 0; g < ng; g++) {
            const int64_t q0 = ex->p0 + (g0 + g) * lanes;
            const int nl = (int)(ex->p0 + ex->n - q0 < lanes ? ex->p0 + ex->n - q0 : lanes);
            for (int l = 0; l < nl; l++) {
                /* gathered in L1 first, then one block copy: the (missing) output line is written at once */
                float tmp[MM_OUT_ROWS];
                for (int r = 0; r < MM_OUT_ROWS; r++) {
                    const int q = r / SMOE_GEMM_MAX_ROWS, rr = r % SMOE_GEMM_MAX_ROWS;
                    tmp[r] = res[((size_t)q * (size_t)ng + (size_t)g) * quad + (size_t)rr * (size_t)lanes + (size_t)l];
                }
                memcpy(out + (size_t)j->pair_out[q0 + l] * (size_t)m + (size_t)ib, tmp, (size_t)nrows * sizeof(float));
            }
        }
    }
}

static void mul_task(void *p, int ith, int nth) {
    mm_job *j = p;
    (void)nth;
    float *res = j->res + (size_t)ith * j->res_stride;
    const smoe_tensor *w = j->w;
    const int64_t m = w->ne[1];
    int64_t e = 0;
    for (;;) {
        const int64_t it = atomic_fetch_add_explicit(&j->next_item, 1, memory_order_relaxed);
        if (it >= j->n_items) break;
        while (it >= j->experts[e].item0 + (int64_t)j->experts[e].n_blocks * j->n_chunks) e++;
        const mm_expert *ex = &j->experts[e];
        const int64_t local = it - ex->item0, block = local / j->n_chunks, chunk = local % j->n_chunks;
        const int64_t i0 = chunk * j->chunk, i1 = i0 + j->chunk < m ? i0 + j->chunk : m;
        const uint8_t *wbase = (const uint8_t *)w->data + (size_t)e * w->nb[2];
        if (ex->n_groups) gemm_rows(j, ex, block, wbase, i0, i1, res);
        else gemv_rows(j, ex, block, wbase, i0, i1);
    }
}

/* ---- setup shared by both ops ---- */

/* Fills the job's kernel choice; false if this file does not handle the weight type. */
static bool mm_choose(smoe_cpu_ctx *ctx, mm_job *j, const smoe_tensor *w, const smoe_tensor *x) {
    const smoe_cpu_kernels *kern = ctx->kern;
    if (!kern || kern->isa == SMOE_CPU_ISA_SCALAR) return false;
    const smoe_type_traits *wt = smoe_type_get_traits(w->type);
    if (!wt || !wt->vec_dot) return false;
    const smoe_type_traits *vt = smoe_type_get_traits(wt->vec_dot_type);
    const int64_t k = w->ne[0];
    if (!vt || !vt->from_f32 || k % vt->block_size != 0 || k % wt->block_size != 0) return false;
    j->kern = kern;
    j->w = w;
    j->x = x;
    j->vt = wt->vec_dot_type;
    j->dot = kern->vec_dot[w->type] ? kern->vec_dot[w->type] : wt->vec_dot;
    if (j->vt == SMOE_TYPE_F32) {
        j->quant = NULL;
    } else {
        j->quant = j->vt == SMOE_TYPE_Q8_0 && kern->quant_q8_0   ? kern->quant_q8_0
                   : j->vt == SMOE_TYPE_Q8_K && kern->quant_q8_k ? kern->quant_q8_k
                                                                 : vt->from_f32;
        j->xq_row = smoe_row_size(j->vt, k);
    }
    j->gemv = NULL;
    if (kern->gemv[w->type] && (j->vt == SMOE_TYPE_Q8_K || (j->vt == SMOE_TYPE_Q8_0 && kern->gemv_prep_q8_0)))
        j->gemv = kern->gemv[w->type];
    /* the packed layout is per 32 elements; the activation type must be the one the kernel was written for */
    j->gemm = NULL;
    if (kern->gemm[w->type] && kern->gemm_pack && kern->lanes > 0 && k % 32 == 0 &&
        kern->gemm_act[w->type].act_type == j->vt) {
        j->gemm = kern->gemm[w->type];
        j->act_desc = &kern->gemm_act[w->type];
        j->group_bytes = (size_t)(k / 32) * smoe_gemm_sb_bytes(kern->lanes); /* as the kernel strides */
    }
    return true;
}

/* Scratch bytes for a job: `fixed` bytes of the caller's arrays and the per-thread result tiles. Reserve it before
 * laying anything out: reserving may move the area. */
static size_t mm_need(const smoe_cpu_ctx *ctx, const mm_job *j, size_t fixed) {
    const int lanes = j->kern->lanes > 0 ? j->kern->lanes : 1;
    return MM_ALIGN(fixed) + MM_ALIGN((size_t)ctx->n_threads * MM_RES_FLOATS(lanes) * sizeof(float));
}

/* Whether the cache holds this key from this compute() call; if not, (re)makes it for the key with `size` bytes
 * and returns false (the caller fills it). */
static bool cache_lookup(smoe_cpu_ctx *ctx, smoe_cpu_act_cache *c, const void *k0, const void *k1, int64_t i0,
                         int64_t i1, int64_t i2, size_t size, smoe_status *st) {
    if (c->epoch == ctx->epoch && c->key[0] == k0 && c->key[1] == k1 && c->key_i[0] == i0 && c->key_i[1] == i1 &&
        c->key_i[2] == i2 && c->size >= size)
        return true;
    c->epoch = 0;
    if (c->size < size) {
        const size_t sz = MM_ALIGN(size);
        void *p = aligned_alloc(64, sz);
        if (!p) {
            *st = smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "cpu: activation scratch of %zu bytes", sz);
            return false;
        }
        free(c->buf);
        c->buf = p;
        c->size = sz;
    }
    c->key[0] = k0, c->key[1] = k1;
    c->key_i[0] = i0, c->key_i[1] = i1, c->key_i[2] = i2;
    return false;
}

/* Lays out the experts' groups and work items, finds or makes the quantized and packed activations (`ids`: the
 * routing tensor, NULL for MUL_MAT) and runs the phases. The caller reserved mm_need() bytes. */
static smoe_status mm_run(smoe_cpu_ctx *ctx, mm_job *j, size_t fixed, const smoe_tensor *ids) {
    const int64_t m = j->w->ne[1], n_x = smoe_tensor_nrows(j->x);
    const int lanes = j->kern->lanes;
    bool any_gemm = false;
    int64_t row_sets = 0; /* (expert, token block) pairs of the call, each running over all m rows */
    for (int64_t e = 0; e < j->n_experts; e++) {
        const mm_expert *ex = &j->experts[e];
        const bool gemm = j->gemm && ex->n >= MM_GEMM_MIN;
        any_gemm |= gemm;
        row_sets += ex->n == 0 ? 0
                    : gemm     ? ((ex->n + lanes - 1) / lanes + MM_GROUP_BLOCK - 1) / MM_GROUP_BLOCK
                               : (ex->n + MM_GEMV_TOKENS - 1) / MM_GEMV_TOKENS;
    }
    /* shorter chunks when there would be too few items for the threads (which rows a thread computes never
     * changes a result, so this may depend on the thread count) */
    j->chunk = any_gemm ? MM_CHUNK : MM_CHUNK_GEMV;
    while (j->chunk > 16 && row_sets * ((m + j->chunk - 1) / j->chunk) < 4 * (int64_t)ctx->n_threads) j->chunk /= 2;
    j->n_chunks = (m + j->chunk - 1) / j->chunk;
    j->n_groups_total = 0;
    j->n_items = 0;
    for (int64_t e = 0; e < j->n_experts; e++) {
        mm_expert *ex = &j->experts[e];
        ex->group0 = j->n_groups_total;
        ex->n_groups = j->gemm && ex->n >= MM_GEMM_MIN ? (int32_t)((ex->n + lanes - 1) / lanes) : 0;
        ex->n_blocks = ex->n == 0      ? 0
                       : ex->n_groups ? (ex->n_groups + MM_GROUP_BLOCK - 1) / MM_GROUP_BLOCK
                                      : (int32_t)((ex->n + MM_GEMV_TOKENS - 1) / MM_GEMV_TOKENS);
        ex->item0 = j->n_items;
        j->n_groups_total += ex->n_groups;
        j->n_items += (int64_t)ex->n_blocks * j->n_chunks;
    }
    j->res_stride = MM_RES_FLOATS(lanes > 0 ? lanes : 1);
    j->res = (float *)(ctx->work + MM_ALIGN(fixed));
    smoe_status st = SMOE_OK;
    if (j->quant) {
        const bool hit = cache_lookup(ctx, &ctx->xq, j->x, NULL, j->vt, n_x, j->x->ne[0], (size_t)n_x * j->xq_row, &st);
        if (st != SMOE_OK) return st;
        j->xq = ctx->xq.buf;
        if (!hit) {
            smoe_threadpool_run_sized(ctx->pool, quant_task, j, smoe_tensor_nelements(j->x));
            ctx->xq.epoch = ctx->epoch;
        }
    }
    if (j->n_groups_total) {
        /* the packing depends on the input, its quantization, the weight type's correction and the routing */
        const int64_t mode = (int64_t)j->act_desc->mode * 65536 + j->act_desc->off;
        const bool hit = cache_lookup(ctx, &ctx->packed, j->x, ids, j->vt * 16 + lanes, mode, n_x,
                                      (size_t)j->n_groups_total * j->group_bytes, &st);
        if (st != SMOE_OK) return st;
        j->act = ctx->packed.buf;
        if (!hit) {
            atomic_store(&j->next_group, 0);
            smoe_threadpool_run(ctx->pool, pack_task, j);
            ctx->packed.epoch = ctx->epoch;
        }
    }
    bool any_gemv = false;
    for (int64_t e = 0; e < j->n_experts; e++) any_gemv |= j->experts[e].n > 0 && j->experts[e].n_groups == 0;
    if (j->gemv && any_gemv && j->vt == SMOE_TYPE_Q8_0) {
        j->gemv_row = (smoe_gemv_q8_0_bytes(j->x->ne[0]) + 63) & ~(size_t)63;
        const bool hit = cache_lookup(ctx, &ctx->gemv, j->x, NULL, j->vt, n_x, j->x->ne[0], (size_t)n_x * j->gemv_row, &st);
        if (st != SMOE_OK) return st;
        j->gemv_act = ctx->gemv.buf;
        if (!hit) {
            smoe_threadpool_run_sized(ctx->pool, gemv_prep_task, j, smoe_tensor_nelements(j->x));
            ctx->gemv.epoch = ctx->epoch;
        }
    }
    atomic_store(&j->next_item, 0);
    smoe_threadpool_run(ctx->pool, mul_task, j);
    return SMOE_OK;
}

bool smoe_cpu_mul_mat_fast(smoe_cpu_ctx *ctx, const smoe_tensor *node, smoe_status *st) {
    const smoe_tensor *w = node->src[0], *x = node->src[1];
    mm_job j = {0};
    if (!mm_choose(ctx, &j, w, x)) return false;
    j.out = node;
    const int64_t n_x = smoe_tensor_nrows(x);
    const size_t pairs_bytes = MM_ALIGN((size_t)n_x * sizeof(int64_t));
    const size_t fixed = 2 * pairs_bytes + MM_ALIGN(sizeof(mm_expert));
    *st = smoe_cpu_work_reserve(ctx, mm_need(ctx, &j, fixed));
    if (*st != SMOE_OK) return true;
    int64_t *px = (int64_t *)ctx->work, *po = (int64_t *)(ctx->work + pairs_bytes);
    mm_expert *ex = (mm_expert *)(ctx->work + 2 * pairs_bytes);
    for (int64_t r = 0; r < n_x; r++) px[r] = po[r] = r;
    *ex = (mm_expert){.p0 = 0, .n = n_x};
    j.pair_x = px;
    j.pair_out = po;
    j.experts = ex;
    j.n_experts = 1;
    *st = mm_run(ctx, &j, fixed, NULL);
    return true;
}

bool smoe_cpu_mul_mat_id_fast(smoe_cpu_ctx *ctx, const smoe_tensor *node, smoe_status *st) {
    const smoe_tensor *w = node->src[0], *x = node->src[1], *ids = node->src[2];
    mm_job j = {0};
    if (!mm_choose(ctx, &j, w, x)) return false;
    j.out = node;
    const int64_t n_expert = w->ne[2], n_used = ids->ne[0], n_tokens = ids->ne[1], n_xs = x->ne[1];
    for (int64_t t = 0; t < n_tokens; t++) {
        const int32_t *row = smoe_cpu_row(ids, t, 0, 0);
        for (int64_t s = 0; s < n_used; s++) {
            if (row[s] < 0 || row[s] >= n_expert) {
                *st = smoe_set_error(SMOE_ERR_INVALID_ARGUMENT,
                                     "expert id %d at [%" PRId64 ", %" PRId64 "] not in [0, %" PRId64 ")", row[s], s,
                                     t, n_expert);
                return true;
            }
        }
    }
    const int64_t n_pairs = n_used * n_tokens;
    const size_t pairs_bytes = MM_ALIGN((size_t)n_pairs * sizeof(int64_t));
    const size_t experts_bytes = MM_ALIGN((size_t)n_expert * sizeof(mm_expert));
    const size_t fixed = 2 * pairs_bytes + experts_bytes;
    *st = smoe_cpu_work_reserve(ctx, mm_need(ctx, &j, fixed));
    if (*st != SMOE_OK) return true;
    int64_t *px = (int64_t *)ctx->work, *po = (int64_t *)(ctx->work + pairs_bytes);
    mm_expert *ex = (mm_expert *)(ctx->work + 2 * pairs_bytes);
    memset(ex, 0, (size_t)n_expert * sizeof(mm_expert));
    for (int64_t t = 0; t < n_tokens; t++) {
        const int32_t *row = smoe_cpu_row(ids, t, 0, 0);
        for (int64_t s = 0; s < n_used; s++) ex[row[s]].n++;
    }
    for (int64_t e = 1; e < n_expert; e++) ex[e].p0 = ex[e - 1].p0 + ex[e - 1].n;
    /* stable fill in token order; use the group0 field as a cursor, reset by mm_run */
    for (int64_t e = 0; e < n_expert; e++) ex[e].group0 = ex[e].p0;
    for (int64_t t = 0; t < n_tokens; t++) {
        const int32_t *row = smoe_cpu_row(ids, t, 0, 0);
        for (int64_t s = 0; s < n_used; s++) {
            const int64_t q = ex[row[s]].group0++;
            px[q] = (n_xs == 1 ? 0 : s) + t * n_xs; /* activation row */
            po[q] = t * n_used + s;                 /* output row */
        }
    }
    j.pair_x = px;
    j.pair_out = po;
    j.experts = ex;
    j.n_experts = n_expert;
    *st = mm_run(ctx, &j, fixed, ids);
    return true;
}
