/*
 * synthetic-run.h - the synthetic model run token by token on one backend, the same way for tests/backend-check.c
 * and tests/test-cuda-fake.c: a prompt of n_prompt tokens (logits of the last), then `steps` single-token decodes,
 * each fed the given token (teacher forcing) or the greedy one; the logits after the prompt and after each step.
 * Public API only.
 */
#ifndef SMOE_SYNTHETIC_RUN_H
#define SMOE_SYNTHETIC_RUN_H

#include "smoe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SR_MAX_STEPS 64

typedef struct sr_run {
    int            n_vocab;
    float         *logits; /* (1 + steps) x n_vocab, malloc'd: free it */
    int32_t        tokens[SR_MAX_STEPS + 1];
    smoe_placement placement;
} sr_run;

static inline int32_t sr_argmax(const float *l, int n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    return best;
}

/* max |a - b| / max |b|; NaN propagates */
static inline double sr_rel_diff(const float *a, const float *b, size_t n) {
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= md)) md = d;
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
    }
    return mb > 0 ? md / mb : md;
}

/* The "tiny" synthetic model of `ftype` (seed 5) on `backend` with a weight budget */
static inline smoe_status sr_model_init(const char *backend, uint64_t gpu_mem, smoe_ftype ftype, smoe_model **m) {
    smoe_synthetic_params sp = smoe_synthetic_default_params();
    sp.preset = "tiny";
    sp.ftype = ftype;
    sp.seed = 5;
    smoe_model_params mp = smoe_model_default_params();
    mp.backend = backend;
    mp.gpu_mem = gpu_mem;
    return smoe_model_init_synthetic(&sp, &mp, m);
}

/* sr_model_init's model in a 512-cell context; prompt token i is (37 i + 11) mod n_vocab. forced != NULL: the
 * tokens to feed, else greedy. */
static inline smoe_status sr_run_model(const char *backend, uint64_t gpu_mem, smoe_ftype ftype, int n_prompt,
                                       int steps, const int32_t *forced, sr_run *r) {
    memset(r, 0, sizeof(*r));
    if (n_prompt < 1 || steps < 0 || steps > SR_MAX_STEPS) return SMOE_ERR_INVALID_ARGUMENT;
    smoe_model   *m = NULL;
    smoe_context *ctx = NULL;
    smoe_batch    batch = {0};
    smoe_status   st = sr_model_init(backend, gpu_mem, ftype, &m);
    if (st != SMOE_OK) return st;
    smoe_model_info info;
    smoe_model_get_info(m, &info);
    r->n_vocab = info.n_vocab;
    r->placement.size = sizeof(r->placement);
    if ((st = smoe_model_get_placement(m, &r->placement)) != SMOE_OK) goto done;
    r->logits = malloc((size_t)(steps + 1) * (size_t)info.n_vocab * sizeof(float));
    if (!r->logits) {
        st = SMOE_ERR_OUT_OF_MEMORY;
        goto done;
    }
    smoe_context_params cp = smoe_context_default_params();
    cp.n_ctx = 512;
    if ((st = smoe_context_init(m, &cp, &ctx)) != SMOE_OK) goto done;
    if ((st = smoe_batch_init(n_prompt, &batch)) != SMOE_OK) goto done;
    for (int i = 0; i < n_prompt; i++)
        if ((st = smoe_batch_add(&batch, (int32_t)((i * 37 + 11) % info.n_vocab), i, 0, i == n_prompt - 1)) != SMOE_OK)
            goto done;
    for (int s = 0; s <= steps; s++) {
        if ((st = smoe_decode(ctx, &batch)) != SMOE_OK) goto done;
        const float *l = smoe_get_logits(ctx, -1);
        memcpy(r->logits + (size_t)s * (size_t)info.n_vocab, l, (size_t)info.n_vocab * sizeof(float));
        r->tokens[s] = forced ? forced[s] : sr_argmax(l, info.n_vocab);
        batch.n_tokens = 0;
        if ((st = smoe_batch_add(&batch, r->tokens[s], n_prompt + s, 0, true)) != SMOE_OK) goto done;
    }
done:
    smoe_batch_free(&batch);
    smoe_context_free(ctx);
    smoe_model_free(m);
    return st;
}

#endif
