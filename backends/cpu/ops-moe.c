/*
 * ops-moe.c - reference kernels for the expert routing: MOE_ROUTE (top-k of router logits) and MOE_COMBINE
 * (weighted sum of the chosen experts' outputs, weights = softmax over the chosen logits).
 */
#include "cpu-impl.h"

#include <math.h>
#include <stdbool.h>

/* ---- MOE_ROUTE ---- */

static void route_task(void *p, int ith, int nth) {
    const smoe_tensor *node = p, *logits = node->src[0];
    const int64_t n_expert = logits->ne[0], n_tokens = logits->ne[1], n_used = node->ne[0];
    int64_t t0, t1;
    smoe_split_range(n_tokens, ith, nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) {
        const float *l = smoe_cpu_row(logits, t, 0, 0);
        int32_t *ids = smoe_cpu_row(node, t, 0, 0);
        for (int64_t s = 0; s < n_used; s++) {
            /* the largest logit not yet taken; scanning upward with a strict '>' keeps the lower index on ties.
             * NaN never wins a comparison, so it ranks last; if nothing compares (all NaN) take the first free. */
            int64_t best = -1;
            for (int64_t e = 0; e < n_expert; e++) {
                bool taken = false;
                for (int64_t q = 0; q < s; q++) taken |= ids[q] == e;
                if (taken) continue;
                if (best < 0 || l[e] > l[best] || (isnan(l[best]) && !isnan(l[e]))) best = e;
            }
            ids[s] = (int32_t)best;
        }
    }
}

smoe_status smoe_cpu_moe_route(smoe_cpu_ctx *ctx, const smoe_tensor *node) {
    smoe_threadpool_run_sized(ctx->pool, route_task, (void *)node, smoe_tensor_nelements(node->src[0]));
    return SMOE_OK;
}

/* ---- MOE_COMBINE ---- */

static void combine_task(void *p, int ith, int nth) {
    const smoe_tensor *node = p, *y = node->src[0], *logits = node->src[1], *ids = node->src[2];
    const int64_t n_embd = y->ne[0], n_used = ids->ne[0], n_tokens = ids->ne[1];
    int64_t t0, t1;
    smoe_split_range(n_tokens, ith, nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) {
        const float *l = smoe_cpu_row(logits, t, 0, 0);
        const int32_t *id = smoe_cpu_row(ids, t, 0, 0);
        float mx = -INFINITY;
        for (int64_t s = 0; s < n_used; s++) mx = l[id[s]] > mx ? l[id[s]] : mx;
        float sum = 0.0f;
        for (int64_t s = 0; s < n_used; s++) sum += expf(l[id[s]] - mx);
        float *o = smoe_cpu_row(node, t, 0, 0);
        for (int64_t i = 0; i < n_embd; i++) o[i] = 0.0f;
        for (int64_t s = 0; s < n_used; s++) {
            const float w = expf(l[id[s]] - mx) / sum;
            const float *ys = smoe_cpu_row(y, s, t, 0);
            for (int64_t i = 0; i < n_embd; i++) o[i] += w * ys[i];
        }
    }
}

smoe_status smoe_cpu_moe_combine(smoe_cpu_ctx *ctx, const smoe_tensor *node) {
    const smoe_tensor *logits = node->src[1], *ids = node->src[2];
    for (int64_t t = 0; t < ids->ne[1]; t++) {
        const int32_t *id = smoe_cpu_row(ids, t, 0, 0);
        for (int64_t s = 0; s < ids->ne[0]; s++)
            SMOE_RETURN_IF(id[s] < 0 || id[s] >= logits->ne[0], SMOE_ERR_INVALID_ARGUMENT,
                           "expert id %d at [%" PRId64 ", %" PRId64 "] not in [0, %" PRId64 ")", id[s], s, t,
                           logits->ne[0]);
    }
    smoe_threadpool_run_sized(ctx->pool, combine_task, (void *)node, smoe_tensor_nelements(node->src[0]));
    return SMOE_OK;
}
