/*
 * ops-eltwise.c - reference kernels for row-wise and elementwise ops: RMS_NORM, SWIGLU, ADD, MUL, SCALE, CPY.
 * All split the rows (dims 1..3) of the output over the threads; sources may have any row strides.
 */
#include "cpu-impl.h"

#include <math.h>
#include <string.h>

typedef struct rows_args {
    const smoe_tensor *out;
    const smoe_cpu_kernels *kern; /* SIMD helpers; NULL members: the loops below */
    float             *scratch; /* CPY: n_threads * ne[0] floats */
    void (*row_fn)(const struct rows_args *a, int64_t i1, int64_t i2, int64_t i3, int ith);
} rows_args;

static void rows_task(void *p, int ith, int nth) {
    const rows_args *a = p;
    const smoe_tensor *o = a->out;
    int64_t r0, r1;
    smoe_split_range(smoe_tensor_nrows(o), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const int64_t i1 = r % o->ne[1], i2 = (r / o->ne[1]) % o->ne[2], i3 = r / (o->ne[1] * o->ne[2]);
        a->row_fn(a, i1, i2, i3, ith);
    }
}

static smoe_status run_rows(smoe_cpu_ctx *ctx, const smoe_tensor *node,
                            void (*fn)(const rows_args *, int64_t, int64_t, int64_t, int), float *scratch) {
    rows_args a = {.out = node, .kern = ctx->kern, .scratch = scratch, .row_fn = fn};
    smoe_threadpool_run_sized(ctx->pool, rows_task, &a, smoe_tensor_nelements(node));
    return SMOE_OK;
}

/* ---- RMS_NORM ---- */

static void rms_norm_row(const rows_args *a, int64_t i1, int64_t i2, int64_t i3, int ith) {
    (void)ith;
    const smoe_tensor *x = a->out->src[0], *w = a->out->src[1];
    const int64_t n = x->ne[0];
    const float *xr = smoe_cpu_row(x, i1, i2, i3);
    const float *wr = w->data;
    float *y = smoe_cpu_row(a->out, i1, i2, i3);
    if (a->kern->sumsq_f32 && a->kern->mul_scaled_f32) { /* float sums (SIMD): within rounding of the double sum */
        const float ms = a->kern->sumsq_f32(xr, n) / (float)n;
        a->kern->mul_scaled_f32(n, xr, (float)(1.0 / sqrt((double)ms + (double)a->out->params.rms_norm.eps)), wr, y);
        return;
    }
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)xr[i] * (double)xr[i];
    const float r = (float)(1.0 / sqrt(ss / (double)n + (double)a->out->params.rms_norm.eps));
    for (int64_t i = 0; i < n; i++) y[i] = xr[i] * r * wr[i];
}

smoe_status smoe_cpu_rms_norm(smoe_cpu_ctx *ctx, const smoe_tensor *node) {
    return run_rows(ctx, node, rms_norm_row, NULL);
}

/* ---- SWIGLU ---- */

static void swiglu_row(const rows_args *a, int64_t i1, int64_t i2, int64_t i3, int ith) {
    (void)ith;
    const float *g = smoe_cpu_row(a->out->src[0], i1, i2, i3);
    const float *u = smoe_cpu_row(a->out->src[1], i1, i2, i3);
    float *y = smoe_cpu_row(a->out, i1, i2, i3);
    if (a->kern->swiglu_f32) {
        a->kern->swiglu_f32(a->out->ne[0], g, u, y);
        return;
    }
    for (int64_t i = 0; i < a->out->ne[0]; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

smoe_status smoe_cpu_swiglu(smoe_cpu_ctx *ctx, const smoe_tensor *node) {
    return run_rows(ctx, node, swiglu_row, NULL);
}

/* ---- ADD, MUL (b broadcast where its ne is 1) ---- */

static const float *bcast_row(const smoe_tensor *b, int64_t i1, int64_t i2, int64_t i3) {
    return smoe_cpu_row(b, b->ne[1] == 1 ? 0 : i1, b->ne[2] == 1 ? 0 : i2, b->ne[3] == 1 ? 0 : i3);
}

static void add_row(const rows_args *a, int64_t i1, int64_t i2, int64_t i3, int ith) {
    (void)ith;
    const smoe_tensor *b = a->out->src[1];
    const float *x = smoe_cpu_row(a->out->src[0], i1, i2, i3), *y = bcast_row(b, i1, i2, i3);
    float *o = smoe_cpu_row(a->out, i1, i2, i3);
    if (b->ne[0] == 1)
        for (int64_t i = 0; i < a->out->ne[0]; i++) o[i] = x[i] + y[0];
    else
        for (int64_t i = 0; i < a->out->ne[0]; i++) o[i] = x[i] + y[i];
}

static void mul_row(const rows_args *a, int64_t i1, int64_t i2, int64_t i3, int ith) {
    (void)ith;
    const smoe_tensor *b = a->out->src[1];
    const float *x = smoe_cpu_row(a->out->src[0], i1, i2, i3), *y = bcast_row(b, i1, i2, i3);
    float *o = smoe_cpu_row(a->out, i1, i2, i3);
    if (b->ne[0] == 1)
        for (int64_t i = 0; i < a->out->ne[0]; i++) o[i] = x[i] * y[0];
    else
        for (int64_t i = 0; i < a->out->ne[0]; i++) o[i] = x[i] * y[i];
}

smoe_status smoe_cpu_add(smoe_cpu_ctx *ctx, const smoe_tensor *node) { return run_rows(ctx, node, add_row, NULL); }
smoe_status smoe_cpu_mul(smoe_cpu_ctx *ctx, const smoe_tensor *node) { return run_rows(ctx, node, mul_row, NULL); }

/* ---- SCALE ---- */

static void scale_row(const rows_args *a, int64_t i1, int64_t i2, int64_t i3, int ith) {
    (void)ith;
    const float *x = smoe_cpu_row(a->out->src[0], i1, i2, i3);
    float *o = smoe_cpu_row(a->out, i1, i2, i3);
    const float s = a->out->params.scale.s;
    for (int64_t i = 0; i < a->out->ne[0]; i++) o[i] = x[i] * s;
}

smoe_status smoe_cpu_scale(smoe_cpu_ctx *ctx, const smoe_tensor *node) {
    return run_rows(ctx, node, scale_row, NULL);
}

/* ---- CPY (convert through f32) ---- */

static void cpy_row(const rows_args *a, int64_t i1, int64_t i2, int64_t i3, int ith) {
    const smoe_tensor *src = a->out->src[0];
    const void *s = smoe_cpu_row(src, i1, i2, i3);
    void *d = smoe_cpu_row(a->out, i1, i2, i3);
    if (src->type == a->out->type) {
        memcpy(d, s, smoe_tensor_row_size(src));
        return;
    }
    const smoe_type_traits *st = smoe_type_get_traits(src->type), *dt = smoe_type_get_traits(a->out->type);
    const int64_t n = src->ne[0];
    if (src->type == SMOE_TYPE_F32) {
        dt->from_f32(s, d, n);
    } else if (a->out->type == SMOE_TYPE_F32) {
        st->to_f32(s, d, n);
    } else {
        float *tmp = a->scratch + (size_t)ith * (size_t)n;
        st->to_f32(s, tmp, n);
        dt->from_f32(tmp, d, n);
    }
}

smoe_status smoe_cpu_cpy(smoe_cpu_ctx *ctx, const smoe_tensor *node) {
    SMOE_TRY(smoe_cpu_work_reserve(ctx, (size_t)ctx->n_threads * (size_t)node->ne[0] * sizeof(float)));
    return run_rows(ctx, node, cpy_row, (float *)ctx->work);
}
