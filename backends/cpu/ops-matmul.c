/*
 * ops-matmul.c - reference kernels for the weight-reading ops: GET_ROWS, MUL_MAT, MUL_MAT_ID.
 *
 * Matrix products follow ggml's scheme: activations (f32) are first converted to the weight type's vec_dot_type
 * (e.g. q8_0 for q4_0 weights), then each output element is the type's vec_dot of one weight row with one converted
 * activation row. Types without a vec_dot fall back to dequantizing the weight row (to_f32) and an f32 dot.
 * Work is split over weight rows (or activation rows when there are few weight rows); activation rows are visited
 * in blocks so a weight row is read once per block, i.e. once per batch for decode.
 */
#include "cpu-impl.h"

#include <string.h>

#define MM_COL_BLOCK 16 /* activation rows per block */

float smoe_cpu_dot_f32(const float *a, const float *b, int64_t n) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ---- activation conversion ---- */

typedef enum mm_mode {
    MM_VEC_DOT,  /* traits vec_dot on x converted to vec_dot_type */
    MM_F32,      /* f32 weights, f32 dot on x as is */
    MM_DEQUANT,  /* to_f32 of each weight row, f32 dot on x as is */
} mm_mode;

typedef struct mm_plan {
    const smoe_type_traits *wt;
    mm_mode         mode;
    smoe_vec_dot_fn dot;
    smoe_from_f32_fn conv; /* MM_VEC_DOT: f32 -> vec_dot_type */
    size_t          xq_row; /* bytes of one converted activation row */
} mm_plan;

static mm_plan mm_choose(const smoe_tensor *w) {
    mm_plan p = {.wt = smoe_type_get_traits(w->type)};
    const int64_t k = w->ne[0];
    const smoe_type_traits *vt = p.wt->vec_dot ? smoe_type_get_traits(p.wt->vec_dot_type) : NULL;
    if (vt && vt->from_f32 && k % vt->block_size == 0) {
        p.mode = MM_VEC_DOT;
        p.dot = p.wt->vec_dot;
        p.conv = p.wt->vec_dot_type == SMOE_TYPE_F32 ? NULL : vt->from_f32;
        p.xq_row = smoe_row_size(p.wt->vec_dot_type, k);
    } else {
        p.mode = w->type == SMOE_TYPE_F32 ? MM_F32 : MM_DEQUANT;
    }
    return p;
}

/* The j-th activation row of x (rows counted over dims 1..3). */
static const float *x_row(const smoe_tensor *x, int64_t j) {
    const int64_t i1 = j % x->ne[1], i2 = (j / x->ne[1]) % x->ne[2], i3 = j / (x->ne[1] * x->ne[2]);
    return smoe_cpu_row(x, i1, i2, i3);
}

typedef struct conv_args {
    const smoe_tensor *x;
    const mm_plan     *plan;
    uint8_t           *xq;
} conv_args;

static void conv_task(void *p, int ith, int nth) {
    const conv_args *a = p;
    int64_t j0, j1;
    smoe_split_range(smoe_tensor_nrows(a->x), ith, nth, &j0, &j1);
    for (int64_t j = j0; j < j1; j++) {
        const float *src = x_row(a->x, j);
        uint8_t *dst = a->xq + (size_t)j * a->plan->xq_row;
        if (a->plan->conv) a->plan->conv(src, dst, a->x->ne[0]);
        else memcpy(dst, src, a->plan->xq_row);
    }
}

/* Converts all rows of x into ctx->work (after `reserved` bytes); returns the pointer. */
static smoe_status convert_x(smoe_cpu_ctx *ctx, const smoe_tensor *x, const mm_plan *plan, size_t offset,
                             uint8_t **xq) {
    conv_args a = {.x = x, .plan = plan, .xq = ctx->work + offset};
    smoe_threadpool_run(ctx->pool, conv_task, &a);
    *xq = a.xq;
    return SMOE_OK;
}

/* One output element: weight row `wrow` (raw bytes, or dequantized into wf for MM_DEQUANT) times activation j. */
static inline float mm_dot(const mm_plan *p, int64_t k, const void *wrow, const float *wf, const uint8_t *xq,
                           const float *xf) {
    switch (p->mode) {
    case MM_VEC_DOT: {
        float r = 0.0f;
        p->dot(k, &r, wrow, xq);
        return r;
    }
    case MM_F32: return smoe_cpu_dot_f32(wrow, xf, k);
    case MM_DEQUANT: return smoe_cpu_dot_f32(wf, xf, k);
    }
    return 0.0f;
}

/* ---- MUL_MAT ---- */

typedef struct mm_args {
    const smoe_tensor *w, *x, *out;
    const mm_plan     *plan;
    const uint8_t     *xq;      /* converted activations (MM_VEC_DOT) */
    float             *scratch; /* n_threads * k floats (MM_DEQUANT) */
    int64_t            n_x;     /* activation rows */
    bool               split_rows;
} mm_args;

static void mm_task(void *p, int ith, int nth) {
    const mm_args *a = p;
    const int64_t k = a->w->ne[0], m = a->w->ne[1];
    int64_t i0 = 0, i1 = m, j0 = 0, j1 = a->n_x;
    if (a->split_rows) smoe_split_range(m, ith, nth, &i0, &i1);
    else smoe_split_range(a->n_x, ith, nth, &j0, &j1);
    float *wf = a->scratch ? a->scratch + (size_t)ith * (size_t)k : NULL;
    float *out = a->out->data;
    for (int64_t jb = j0; jb < j1; jb += MM_COL_BLOCK) {
        const int64_t je = jb + MM_COL_BLOCK < j1 ? jb + MM_COL_BLOCK : j1;
        for (int64_t i = i0; i < i1; i++) {
            const void *wrow = (const char *)a->w->data + (size_t)i * a->w->nb[1];
            if (a->plan->mode == MM_DEQUANT) a->plan->wt->to_f32(wrow, wf, k);
            for (int64_t j = jb; j < je; j++) {
                const uint8_t *xq = a->xq ? a->xq + (size_t)j * a->plan->xq_row : NULL;
                const float *xf = a->plan->mode == MM_VEC_DOT ? NULL : x_row(a->x, j);
                out[(size_t)j * (size_t)m + (size_t)i] = mm_dot(a->plan, k, wrow, wf, xq, xf);
            }
        }
    }
}

smoe_status smoe_cpu_mul_mat(smoe_cpu_ctx *ctx, const smoe_tensor *node) {
    smoe_status fast_st;
    if (smoe_cpu_mul_mat_fast(ctx, node, &fast_st)) return fast_st;
    const smoe_tensor *w = node->src[0], *x = node->src[1];
    const mm_plan plan = mm_choose(w);
    const int64_t n_x = smoe_tensor_nrows(x), k = w->ne[0], m = w->ne[1];
    const int nth = ctx->n_threads;
    size_t xq_bytes = plan.mode == MM_VEC_DOT ? (size_t)n_x * plan.xq_row : 0;
    size_t scratch_bytes = plan.mode == MM_DEQUANT ? (size_t)nth * (size_t)k * sizeof(float) : 0;
    xq_bytes = (xq_bytes + 63) & ~(size_t)63;
    SMOE_TRY(smoe_cpu_work_reserve(ctx, xq_bytes + scratch_bytes));
    mm_args a = {.w = w, .x = x, .out = node, .plan = &plan, .n_x = n_x};
    if (plan.mode == MM_VEC_DOT) {
        uint8_t *xq = NULL;
        SMOE_TRY(convert_x(ctx, x, &plan, 0, &xq));
        a.xq = xq;
    }
    if (scratch_bytes) a.scratch = (float *)(ctx->work + xq_bytes);
    a.split_rows = m >= 4 * (int64_t)nth || m >= n_x;
    smoe_threadpool_run(ctx->pool, mm_task, &a);
    return SMOE_OK;
}

/* ---- MUL_MAT_ID ---- */

typedef struct mmid_args {
    const smoe_tensor *w, *x, *out;
    const mm_plan     *plan;
    const uint8_t     *xq;
    float             *scratch;
    const int32_t     *ids;
    const int64_t     *expert_start; /* n_expert + 1 offsets into pairs */
    const int32_t     *pairs;        /* (slot, token) per use, grouped by expert */
} mmid_args;

static void mmid_task(void *p, int ith, int nth) {
    const mmid_args *a = p;
    const smoe_tensor *w = a->w, *x = a->x;
    const int64_t k = w->ne[0], m = w->ne[1], n_expert = w->ne[2], n_used = a->out->ne[1];
    const int64_t n_xs = x->ne[1]; /* 1 or n_used */
    int64_t i0, i1;
    smoe_split_range(m, ith, nth, &i0, &i1);
    float *wf = a->scratch ? a->scratch + (size_t)ith * (size_t)k : NULL;
    float *out = a->out->data;
    for (int64_t e = 0; e < n_expert; e++) {
        const int64_t p0 = a->expert_start[e], p1 = a->expert_start[e + 1];
        if (p0 == p1) continue; /* unused expert: its rows are never read */
        for (int64_t pb = p0; pb < p1; pb += MM_COL_BLOCK) {
            const int64_t pe = pb + MM_COL_BLOCK < p1 ? pb + MM_COL_BLOCK : p1;
            for (int64_t i = i0; i < i1; i++) {
                const void *wrow = (const char *)w->data + (size_t)e * w->nb[2] + (size_t)i * w->nb[1];
                if (a->plan->mode == MM_DEQUANT) a->plan->wt->to_f32(wrow, wf, k);
                for (int64_t q = pb; q < pe; q++) {
                    const int64_t s = a->pairs[2 * q], t = a->pairs[2 * q + 1];
                    const int64_t xs = n_xs == 1 ? 0 : s;
                    const int64_t j = xs + t * n_xs; /* activation row index */
                    const uint8_t *xq = a->xq ? a->xq + (size_t)j * a->plan->xq_row : NULL;
                    const float *xf = a->plan->mode == MM_VEC_DOT ? NULL : (const float *)smoe_cpu_row(x, xs, t, 0);
                    out[((size_t)t * (size_t)n_used + (size_t)s) * (size_t)m + (size_t)i] =
                        mm_dot(a->plan, k, wrow, wf, xq, xf);
                }
            }
        }
    }
}

smoe_status smoe_cpu_mul_mat_id(smoe_cpu_ctx *ctx, const smoe_tensor *node) {
    smoe_status fast_st;
    if (smoe_cpu_mul_mat_id_fast(ctx, node, &fast_st)) return fast_st;
    const smoe_tensor *w = node->src[0], *x = node->src[1], *ids = node->src[2];
    const mm_plan plan = mm_choose(w);
    const int64_t k = w->ne[0], n_expert = w->ne[2];
    const int64_t n_used = ids->ne[0], n_tokens = ids->ne[1], n_x = smoe_tensor_nrows(x);
    const int nth = ctx->n_threads;

    /* validate ids and group (slot, token) pairs by expert (counting sort, so order is deterministic) */
    for (int64_t t = 0; t < n_tokens; t++) {
        const int32_t *row = smoe_cpu_row(ids, t, 0, 0);
        for (int64_t s = 0; s < n_used; s++)
            SMOE_RETURN_IF(row[s] < 0 || row[s] >= n_expert, SMOE_ERR_INVALID_ARGUMENT,
                           "expert id %d at [%" PRId64 ", %" PRId64 "] not in [0, %" PRId64 ")", row[s], s, t,
                           n_expert);
    }
    const size_t n_pairs = (size_t)(n_used * n_tokens);
    const size_t off_start = 0;
    const size_t off_cursor = off_start + (((size_t)n_expert + 1) * sizeof(int64_t) + 63) / 64 * 64;
    const size_t off_pairs = off_cursor + ((size_t)n_expert * sizeof(int64_t) + 63) / 64 * 64;
    size_t off_xq = off_pairs + (2 * n_pairs * sizeof(int32_t) + 63) / 64 * 64;
    size_t off_scratch = off_xq + (plan.mode == MM_VEC_DOT ? ((size_t)n_x * plan.xq_row + 63) / 64 * 64 : 0);
    size_t total = off_scratch + (plan.mode == MM_DEQUANT ? (size_t)nth * (size_t)k * sizeof(float) : 0);
    SMOE_TRY(smoe_cpu_work_reserve(ctx, total));
    int64_t *start = (int64_t *)(ctx->work + off_start);
    int64_t *cursor = (int64_t *)(ctx->work + off_cursor);
    int32_t *pairs = (int32_t *)(ctx->work + off_pairs);
    memset(start, 0, ((size_t)n_expert + 1) * sizeof(int64_t));
    for (int64_t t = 0; t < n_tokens; t++) {
        const int32_t *row = smoe_cpu_row(ids, t, 0, 0);
        for (int64_t s = 0; s < n_used; s++) start[row[s] + 1]++;
    }
    for (int64_t e = 0; e < n_expert; e++) start[e + 1] += start[e];
    /* fill, walking tokens in order, so each expert's pairs are in token order */
    for (int64_t e = 0; e < n_expert; e++) cursor[e] = start[e];
    for (int64_t t = 0; t < n_tokens; t++) {
        const int32_t *row = smoe_cpu_row(ids, t, 0, 0);
        for (int64_t s = 0; s < n_used; s++) {
            int64_t q = cursor[row[s]]++;
            pairs[2 * q] = (int32_t)s;
            pairs[2 * q + 1] = (int32_t)t;
        }
    }

    mmid_args a = {.w = w, .x = x, .out = node, .plan = &plan, .expert_start = start, .pairs = pairs};
    if (plan.mode == MM_VEC_DOT) {
        uint8_t *xq = NULL;
        SMOE_TRY(convert_x(ctx, x, &plan, off_xq, &xq));
        a.xq = xq;
    }
    if (plan.mode == MM_DEQUANT) a.scratch = (float *)(ctx->work + off_scratch);
    smoe_threadpool_run(ctx->pool, mmid_task, &a);
    return SMOE_OK;
}

/* ---- GET_ROWS ---- */

typedef struct gr_args {
    const smoe_tensor *table, *ids, *out;
} gr_args;

static void gr_task(void *p, int ith, int nth) {
    const gr_args *a = p;
    const smoe_type_traits *tr = smoe_type_get_traits(a->table->type);
    const int32_t *ids = a->ids->data;
    int64_t r0, r1;
    smoe_split_range(a->out->ne[1], ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++)
        tr->to_f32(smoe_cpu_row(a->table, ids[r], 0, 0), smoe_cpu_row(a->out, r, 0, 0), a->table->ne[0]);
}

smoe_status smoe_cpu_get_rows(smoe_cpu_ctx *ctx, const smoe_tensor *node) {
    const smoe_tensor *table = node->src[0], *ids = node->src[1];
    const int32_t *id = ids->data;
    for (int64_t r = 0; r < ids->ne[0]; r++)
        SMOE_RETURN_IF(id[r] < 0 || id[r] >= table->ne[1], SMOE_ERR_INVALID_ARGUMENT,
                       "row id %d at %" PRId64 " not in [0, %" PRId64 ")", id[r], r, table->ne[1]);
    gr_args a = {.table = table, .ids = ids, .out = node};
    smoe_threadpool_run_sized(ctx->pool, gr_task, &a, smoe_tensor_nelements(node));
    return SMOE_OK;
}
