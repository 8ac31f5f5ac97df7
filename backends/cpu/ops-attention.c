/*
 * ops-attention.c - reference kernels for ROPE, KV_WRITE and the fused ATTENTION.
 *
 * ATTENTION is computed per (query token, kv head): the K and V rows of a cell are converted to f32 once and used by
 * every query head of the GQA group; softmax is online (running max and sum), so no score matrix is stored.
 */
#include "cpu-impl.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* ---- ROPE ---- */

typedef struct rope_args {
    const smoe_tensor *x, *pos, *out;
    float             *scratch; /* n_threads * n_rot floats: cos/sin per pair */
} rope_args;

static void rope_task(void *p, int ith, int nth) {
    const rope_args *a = p;
    const smoe_op_rope_params *rp = &a->out->params.rope;
    const int64_t head_dim = a->x->ne[0], n_head = a->x->ne[1], n_tokens = a->x->ne[2];
    const int64_t half = rp->n_rot / 2;
    float *cs = a->scratch + (size_t)ith * (size_t)rp->n_rot;
    const int32_t *pos = a->pos->data;
    int64_t t0, t1;
    smoe_split_range(n_tokens, ith, nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) {
        /* angles in double: positions reach 32k and theta_base 1e6, where float angles lose digits */
        const double pt = (double)pos[t] * (double)rp->freq_scale;
        for (int64_t i = 0; i < half; i++) {
            const double inv_freq = pow((double)rp->theta_base, -2.0 * (double)i / (double)rp->n_rot);
            const double ang = pt * inv_freq;
            cs[2 * i] = (float)cos(ang);
            cs[2 * i + 1] = (float)sin(ang);
        }
        for (int64_t h = 0; h < n_head; h++) {
            const float *src = smoe_cpu_row(a->x, h, t, 0);
            float *dst = smoe_cpu_row(a->out, h, t, 0);
            for (int64_t i = 0; i < half; i++) {
                const float c = cs[2 * i], s = cs[2 * i + 1];
                const float x0 = src[2 * i], x1 = src[2 * i + 1];
                dst[2 * i] = x0 * c - x1 * s;
                dst[2 * i + 1] = x0 * s + x1 * c;
            }
            if (dst != src)
                for (int64_t i = 2 * half; i < head_dim; i++) dst[i] = src[i];
        }
    }
}

smoe_status smoe_cpu_rope(smoe_cpu_ctx *ctx, const smoe_tensor *node) {
    SMOE_TRY(smoe_cpu_work_reserve(ctx, (size_t)ctx->n_threads * (size_t)node->params.rope.n_rot * sizeof(float)));
    rope_args a = {.x = node->src[0], .pos = node->src[1], .out = node, .scratch = (float *)ctx->work};
    smoe_threadpool_run_sized(ctx->pool, rope_task, &a, smoe_tensor_nelements(node));
    return SMOE_OK;
}

/* ---- KV_WRITE ---- */

typedef struct kvw_args {
    const smoe_tensor *cache, *rows, *cells;
} kvw_args;

static void kvw_task(void *p, int ith, int nth) {
    const kvw_args *a = p;
    const smoe_type_traits *tr = smoe_type_get_traits(a->cache->type);
    const int32_t *cells = a->cells->data;
    const int64_t n_head_kv = a->rows->ne[1], n_tokens = a->rows->ne[2];
    int64_t h0, h1;
    smoe_split_range(n_head_kv, ith, nth, &h0, &h1);
    /* tokens in order within each head, so a cell written twice in one batch keeps the last row */
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t h = h0; h < h1; h++)
            tr->from_f32(smoe_cpu_row(a->rows, h, t, 0), smoe_cpu_row(a->cache, h, cells[t], 0), a->rows->ne[0]);
}

smoe_status smoe_cpu_kv_write(smoe_cpu_ctx *ctx, const smoe_tensor *node) {
    const smoe_tensor *cache = node->src[0], *rows = node->src[1], *cells = node->src[2];
    const int32_t *c = cells->data;
    for (int64_t t = 0; t < cells->ne[0]; t++)
        SMOE_RETURN_IF(c[t] < 0 || c[t] >= cache->ne[2], SMOE_ERR_INVALID_ARGUMENT,
                       "cell index %d for token %" PRId64 " not in [0, %" PRId64 ")", c[t], t, cache->ne[2]);
    kvw_args a = {.cache = cache, .rows = rows, .cells = cells};
    smoe_threadpool_run_sized(ctx->pool, kvw_task, &a, smoe_tensor_nelements(rows));
    return SMOE_OK;
}

/* ---- ATTENTION ---- */

typedef struct attn_args {
    const smoe_tensor *q, *k, *v, *q_info, *cell_info, *out;
    int64_t            n_scan;
    float             *scratch; /* per thread: (2 + group) * head_dim + 2 * group floats */
    size_t             scratch_per_thread;
} attn_args;

static void attn_task(void *p, int ith, int nth) {
    const attn_args *a = p;
    const int64_t head_dim = a->q->ne[0], n_head = a->q->ne[1], n_tokens = a->q->ne[2];
    const int64_t n_head_kv = a->k->ne[1];
    const int64_t group = n_head / n_head_kv;
    const float scale = a->out->params.attention.scale;
    const smoe_type_traits *kt = smoe_type_get_traits(a->k->type), *vt = smoe_type_get_traits(a->v->type);
    const bool k_f32 = a->k->type == SMOE_TYPE_F32, v_f32 = a->v->type == SMOE_TYPE_F32;

    float *base = a->scratch + (size_t)ith * a->scratch_per_thread;
    float *kbuf = base, *vbuf = kbuf + head_dim, *acc = vbuf + head_dim;
    float *mx = acc + group * head_dim, *sum = mx + group;

    const int32_t *qi = a->q_info->data, *ci = a->cell_info->data;
    int64_t w0, w1;
    smoe_split_range(n_tokens * n_head_kv, ith, nth, &w0, &w1);
    for (int64_t w = w0; w < w1; w++) {
        const int64_t t = w / n_head_kv, hkv = w % n_head_kv;
        const int32_t qpos = qi[2 * t], qseq = qi[2 * t + 1];
        for (int64_t g = 0; g < group; g++) {
            mx[g] = -INFINITY;
            sum[g] = 0.0f;
        }
        memset(acc, 0, (size_t)(group * head_dim) * sizeof(float));
        for (int64_t j = 0; j < a->n_scan; j++) {
            const int32_t cpos = ci[2 * j], cseq = ci[2 * j + 1];
            if (cseq < 0 || cseq != qseq || cpos > qpos) continue;
            const void *kraw = smoe_cpu_row(a->k, hkv, j, 0);
            const void *vraw = smoe_cpu_row(a->v, hkv, j, 0);
            const float *kr = k_f32 ? kraw : (kt->to_f32(kraw, kbuf, head_dim), kbuf);
            const float *vr = NULL;
            for (int64_t g = 0; g < group; g++) {
                const float *qr = smoe_cpu_row(a->q, hkv * group + g, t, 0);
                const float s = scale * smoe_cpu_dot_f32(qr, kr, head_dim);
                if (!vr) vr = v_f32 ? vraw : (vt->to_f32(vraw, vbuf, head_dim), vbuf);
                float *ac = acc + g * head_dim;
                if (s > mx[g]) {
                    const float c = mx[g] == -INFINITY ? 0.0f : expf(mx[g] - s);
                    for (int64_t d = 0; d < head_dim; d++) ac[d] *= c;
                    sum[g] *= c;
                    mx[g] = s;
                }
                const float e = expf(s - mx[g]);
                for (int64_t d = 0; d < head_dim; d++) ac[d] += e * vr[d];
                sum[g] += e;
            }
        }
        for (int64_t g = 0; g < group; g++) {
            float *dst = smoe_cpu_row(a->out, hkv * group + g, t, 0);
            const float inv = sum[g] > 0.0f ? 1.0f / sum[g] : 0.0f;
            for (int64_t d = 0; d < head_dim; d++) dst[d] = acc[g * head_dim + d] * inv;
        }
    }
}

/* The SIMD path (kern->attn): work items (query token, KV head, segment of cells) handed out from an atomic counter,
 * since causal prefill gives later tokens more cells; each item lists its visible cells, then one kernel call does
 * the group. Few query tokens over a long cache (decode) would give too few items to keep threads busy, so their
 * cells are cut into segments of ATTN_SEG (flash-decoding): each segment's unnormalized sums, maximum and
 * normalizer are kept and merged in segment order afterwards. Whether and how the cells are cut depends only on the
 * shapes, never on the thread count, so results stay bit-identical for any n_threads. */
#define ATTN_SEG            1024 /* cells per segment */
#define ATTN_SEG_MAX_TOKENS 4    /* query tokens up to which long caches are segmented */

typedef struct attn_fast_args {
    const attn_args        *a;
    const smoe_cpu_kernels *kern;
    atomic_llong            next;
    int64_t                 n_seg;      /* segments per (token, KV head); 1 = whole range, normalized output */
    size_t                  per_thread; /* bytes of scratch per thread */
    uint8_t                *scratch;
    float                  *part;       /* n_seg > 1: per item, group * (head_dim + 2) floats: sums, then (m, l) */
} attn_fast_args;

static void attn_fast_task(void *p, int ith, int nth) {
    attn_fast_args *f = p;
    const attn_args *a = f->a;
    (void)nth;
    const int64_t head_dim = a->q->ne[0], n_head = a->q->ne[1], n_tokens = a->q->ne[2];
    const int64_t n_head_kv = a->k->ne[1], group = n_head / n_head_kv;
    const float scale = a->out->params.attention.scale;
    float *scratch = (float *)(f->scratch + (size_t)ith * f->per_thread);
    int32_t *cells = (int32_t *)(scratch + smoe_attn_scratch(head_dim, (int)group));
    const int32_t *qi = a->q_info->data, *ci = a->cell_info->data;
    const float *qp[SMOE_ATTN_MAX_GROUP];
    float *op[SMOE_ATTN_MAX_GROUP];
    const size_t part_floats = (size_t)group * (size_t)(head_dim + 2);
    for (;;) {
        const int64_t w = atomic_fetch_add_explicit(&f->next, 1, memory_order_relaxed);
        if (w >= n_tokens * n_head_kv * f->n_seg) break;
        const int64_t seg = w % f->n_seg, th = w / f->n_seg, t = th / n_head_kv, hkv = th % n_head_kv;
        const int64_t j0 = f->n_seg > 1 ? seg * ATTN_SEG : 0;
        const int64_t j1 = f->n_seg > 1 && j0 + ATTN_SEG < a->n_scan ? j0 + ATTN_SEG : a->n_scan;
        const int32_t qpos = qi[2 * t], qseq = qi[2 * t + 1];
        int64_t n = 0;
        for (int64_t j = j0; j < j1; j++)
            if (ci[2 * j + 1] >= 0 && ci[2 * j + 1] == qseq && ci[2 * j] <= qpos) cells[n++] = (int32_t)j;
        float *part = f->n_seg > 1 ? f->part + (size_t)w * part_floats : NULL;
        for (int64_t g = 0; g < group; g++) {
            qp[g] = smoe_cpu_row(a->q, hkv * group + g, t, 0);
            op[g] = part ? part + (size_t)g * (size_t)head_dim : (float *)smoe_cpu_row(a->out, hkv * group + g, t, 0);
        }
        f->kern->attn(head_dim, (int)group, qp, scale, a->k->type, smoe_cpu_row(a->k, hkv, 0, 0), a->k->nb[2],
                      smoe_cpu_row(a->v, hkv, 0, 0), a->v->nb[2], cells, n, op,
                      part ? part + (size_t)group * (size_t)head_dim : NULL, scratch);
    }
}

/* Merges the segments of each (token, KV head) in segment order: out = sum_s e_s acc_s / sum_s e_s l_s with
 * e_s = exp(m_s - max_s m_s); zeros when no segment saw a cell. */
static void attn_merge_task(void *p, int ith, int nth) {
    attn_fast_args *f = p;
    const attn_args *a = f->a;
    const int64_t head_dim = a->q->ne[0], n_head = a->q->ne[1], n_tokens = a->q->ne[2];
    const int64_t n_head_kv = a->k->ne[1], group = n_head / n_head_kv;
    const size_t part_floats = (size_t)group * (size_t)(head_dim + 2);
    int64_t w0, w1;
    smoe_split_range(n_tokens * n_head_kv, ith, nth, &w0, &w1);
    for (int64_t th = w0; th < w1; th++) {
        const int64_t t = th / n_head_kv, hkv = th % n_head_kv;
        const float *parts = f->part + (size_t)th * (size_t)f->n_seg * part_floats;
        for (int64_t g = 0; g < group; g++) {
            float mx = -INFINITY;
            for (int64_t s = 0; s < f->n_seg; s++) {
                const float *ml = parts + (size_t)s * part_floats + (size_t)group * (size_t)head_dim + 2 * g;
                if (ml[1] > 0.0f && ml[0] > mx) mx = ml[0];
            }
            float *dst = smoe_cpu_row(a->out, hkv * group + g, t, 0);
            memset(dst, 0, (size_t)head_dim * sizeof(float));
            float l = 0.0f;
            for (int64_t s = 0; s < f->n_seg; s++) {
                const float *seg = parts + (size_t)s * part_floats;
                const float *ml = seg + (size_t)group * (size_t)head_dim + 2 * g;
                if (!(ml[1] > 0.0f)) continue;
                const float e = expf(ml[0] - mx);
                l += e * ml[1];
                if (f->kern->axpy_f32) f->kern->axpy_f32(head_dim, e, seg + (size_t)g * (size_t)head_dim, dst);
                else
                    for (int64_t d = 0; d < head_dim; d++) dst[d] += e * seg[(size_t)g * (size_t)head_dim + (size_t)d];
            }
            const float inv = l > 0.0f ? 1.0f / l : 0.0f;
            for (int64_t d = 0; d < head_dim; d++) dst[d] *= inv;
        }
    }
}

smoe_status smoe_cpu_attention(smoe_cpu_ctx *ctx, const smoe_tensor *node) {
    const smoe_tensor *q = node->src[0], *k = node->src[1];
    const int64_t head_dim = q->ne[0], group = q->ne[1] / k->ne[1];
    const int32_t n_scan_raw = *(const int32_t *)node->src[5]->data;
    int64_t n_scan = n_scan_raw < 0 ? 0 : n_scan_raw;
    if (n_scan > k->ne[2]) n_scan = k->ne[2];
    const smoe_tensor *v = node->src[2];
    if (ctx->kern->attn && k->type == v->type && group <= SMOE_ATTN_MAX_GROUP &&
        ((k->type == SMOE_TYPE_F16 || k->type == SMOE_TYPE_F32) ? head_dim % 8 == 0
                                                                 : k->type == SMOE_TYPE_Q8_0 && head_dim % 32 == 0)) {
        const int64_t n_tokens = q->ne[2], n_head_kv = k->ne[1];
        const int64_t n_seg = n_tokens <= ATTN_SEG_MAX_TOKENS && n_scan > ATTN_SEG ? (n_scan + ATTN_SEG - 1) / ATTN_SEG : 1;
        const size_t per = ((smoe_attn_scratch(head_dim, (int)group) * sizeof(float) +
                             (size_t)(n_scan > 0 ? n_scan : 1) * sizeof(int32_t)) + 63) & ~(size_t)63;
        const size_t part_bytes =
            n_seg > 1 ? (size_t)(n_tokens * n_head_kv * n_seg) * (size_t)group * (size_t)(head_dim + 2) * sizeof(float)
                      : 0;
        SMOE_TRY(smoe_cpu_work_reserve(ctx, (size_t)ctx->n_threads * per + part_bytes));
        attn_args a = {.q = q, .k = k, .v = v, .q_info = node->src[3], .cell_info = node->src[4], .out = node,
                       .n_scan = n_scan};
        attn_fast_args f = {.a = &a, .kern = ctx->kern, .n_seg = n_seg, .per_thread = per, .scratch = ctx->work,
                            .part = (float *)(ctx->work + (size_t)ctx->n_threads * per)};
        atomic_store(&f.next, 0);
        smoe_threadpool_run(ctx->pool, attn_fast_task, &f);
        if (n_seg > 1) smoe_threadpool_run(ctx->pool, attn_merge_task, &f);
        return SMOE_OK;
    }
    const size_t per_thread = (size_t)((2 + group) * head_dim + 2 * group + 15) & ~(size_t)15;
    SMOE_TRY(smoe_cpu_work_reserve(ctx, (size_t)ctx->n_threads * per_thread * sizeof(float)));
    attn_args a = {.q = q,
                   .k = k,
                   .v = node->src[2],
                   .q_info = node->src[3],
                   .cell_info = node->src[4],
                   .out = node,
                   .n_scan = n_scan,
                   .scratch = (float *)ctx->work,
                   .scratch_per_thread = per_thread};
    smoe_threadpool_run(ctx->pool, attn_task, &a);
    return SMOE_OK;
}
