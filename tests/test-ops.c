/*
 * test-ops.c - every op on every backend against the CPU reference (in the spirit of llama.cpp's test-backend-ops,
 * but a plain-C case table).
 *
 * Each case {op, type, shape, params, max_nmse} builds a one-op graph (plus the leaves it reads) with inputs from a
 * RNG seeded by the case, runs it on the CPU reference, then on every other backend:
 *   - a second CPU instance with a different thread count ("cpu-2"): must match bit for bit;
 *   - every device of every other registered backend kind (CUDA, Vulkan, when built): NaN/Inf positions must match,
 *     then NMSE = sum((a-b)^2)/sum(a^2) must stay under the case's limit (default per type: f32 1e-7,
 *     f16/bf16 1e-5, q8 1e-4, 4/5/6-bit and K-quants 5e-4).
 * A backend kind that is not built or has no device, or that does not support a node of the case, is SKIPPED,
 * never passed. Cases whose type is TYPE_ALL expand to every type whose traits have to_f32 (and a quantizer to
 * make inputs), so types appear as the quant table gains them. Every op in ops.def (except the NONE leaf) must have
 * a case, else the run fails.
 *
 * Output: one line per case and backend, e.g. `MUL_MAT_ID(type=q4_0,m=19,n_expert=6,n_used=2,n_x=1,n=7,k=160)
 * cpu-2 OK`, ending with `N passed, N failed, N skipped`. Flags: -o OP, -b BACKEND, -p REGEX (on the case text),
 * -v (print the NMSE of each comparison), -s (self-test: every cpu-2 result is also compared, as if from a device,
 * after planting a NaN, and after planting an error of 0.1 * max|x| * sqrt(n) in one element; both must be caught).
 */
#include <math.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/cpu/cpu-simd.h"
#include "core/backend-impl.h"
#include "graph-test-util.h"

#define TYPE_ALL ((smoe_type)-1)

typedef struct op_case {
    smoe_op   op;
    smoe_type type;     /* weight / table / cache / source type; TYPE_ALL: every type with to_f32 */
    smoe_type type2;    /* CPY: destination type */
    int64_t   p[7];     /* shape parameters, meaning per op (see the builders) */
    float     f;        /* a float parameter (eps, scale, theta) where the op has one; 0 = default */
    double    max_nmse; /* 0 = the type's default */
} op_case;

/* p[] meanings:
 *   GET_ROWS    n_rows, n            (n_embd from the type: 67 / 160 / 512 by block size)
 *   MUL_MAT     m, n, k              (k = 0: from the type, as GET_ROWS)
 *   MUL_MAT_ID  m, n_expert, n_used, n_x, n_tokens, skew (1: slot 0 of every token on expert 0), k (as MUL_MAT)
 *   RMS_NORM    n, rows
 *   ROPE        head_dim, n_head, n_tokens, n_rot
 *   KV_WRITE    head_dim, n_head_kv, n_cells, n_tokens
 *   ATTENTION   head_dim, n_head, n_head_kv, n_cells, n_tokens, n_seq
 *   MOE_ROUTE   n_expert, n_used, n_tokens, ties (1: whole-number logits, NaNs)
 *   MOE_COMBINE n_embd, n_expert, n_used, n_tokens
 *   SWIGLU, SCALE, CPY, VIEW   ne0, ne1
 *   ADD, MUL    ne0, ne1, broadcast (0: b same shape, 1: b one row, 2: b one column)
 */
static const op_case cases[] = {
    {SMOE_OP_GET_ROWS, TYPE_ALL, 0, {11, 7}, 0, 0},
    {SMOE_OP_GET_ROWS, SMOE_TYPE_F32, 0, {3, 1}, 0, 0},
    {SMOE_OP_MUL_MAT, TYPE_ALL, 0, {35, 1}, 0, 0},
    {SMOE_OP_MUL_MAT, TYPE_ALL, 0, {35, 7}, 0, 0},
    {SMOE_OP_MUL_MAT, TYPE_ALL, 0, {35, 2}, 0, 0}, /* the CUDA GEMV's column counts 2, 3, 4 (1, 7 and 37 above) */
    {SMOE_OP_MUL_MAT, TYPE_ALL, 0, {35, 3}, 0, 0},
    {SMOE_OP_MUL_MAT, TYPE_ALL, 0, {35, 4}, 0, 0},
    {SMOE_OP_MUL_MAT, SMOE_TYPE_F32, 0, {16, 33}, 0, 0},
    {SMOE_OP_MUL_MAT, TYPE_ALL, 0, {35, 37}, 0, 0}, /* batched (SIMD gemm): ragged rows and token groups */
    /* decode at Mixtral's k (ffn_down: 14336) and past what a block stages as floats (CUDA: 16384) */
    {SMOE_OP_MUL_MAT, TYPE_ALL, 0, {37, 1, 14336}, 0, 0},
    {SMOE_OP_MUL_MAT, TYPE_ALL, 0, {19, 1, 20480}, 0, 0},
    /* prefill-sized: Vulkan's tiled products (mul_mm.comp), ragged in rows, columns and (plain types) k */
    {SMOE_OP_MUL_MAT, TYPE_ALL, 0, {131, 100}, 0, 0},
    {SMOE_OP_MUL_MAT, TYPE_ALL, 0, {70, 72, 2048}, 0, 0}, /* many k steps of a tile (CUDA: 16 of 128) */
    {SMOE_OP_MUL_MAT_ID, TYPE_ALL, 0, {19, 6, 2, 1, 7}, 0, 0},
    {SMOE_OP_MUL_MAT_ID, TYPE_ALL, 0, {19, 6, 2, 2, 1}, 0, 0},
    {SMOE_OP_MUL_MAT_ID, SMOE_TYPE_F32, 0, {8, 8, 2, 2, 7}, 0, 0},
    {SMOE_OP_MUL_MAT_ID, TYPE_ALL, 0, {37, 6, 2, 1, 40}, 0, 0}, /* experts batched and not (SIMD gemm/gemv) */
    {SMOE_OP_MUL_MAT_ID, TYPE_ALL, 0, {9, 4, 2, 2, 33}, 0, 0},
    {SMOE_OP_MUL_MAT_ID, TYPE_ALL, 0, {33, 8, 2, 1, 1, 0, 4096}, 0, 0}, /* Mixtral's decode: one token, k = 4096 */
    /* prefill-sized, unbalanced: slot 0 of every token on expert 0 (150 pairs), one expert unused (tiled on Vulkan) */
    {SMOE_OP_MUL_MAT_ID, TYPE_ALL, 0, {37, 4, 2, 1, 150, 1}, 0, 0},
    {SMOE_OP_MUL_MAT_ID, TYPE_ALL, 0, {70, 5, 2, 2, 130, 1}, 0, 0},
    {SMOE_OP_RMS_NORM, SMOE_TYPE_F32, 0, {67, 7}, 1e-5f, 0},
    {SMOE_OP_RMS_NORM, SMOE_TYPE_F32, 0, {4096, 1}, 1e-5f, 0},
    {SMOE_OP_RMS_NORM, SMOE_TYPE_F32, 0, {1024, 40}, 1e-5f, 0}, /* large enough to be split over threads */
    {SMOE_OP_ROPE, SMOE_TYPE_F32, 0, {16, 4, 7, 16}, 1e6f, 0},
    {SMOE_OP_ROPE, SMOE_TYPE_F32, 0, {128, 2, 1, 128}, 1e6f, 0},
    {SMOE_OP_ROPE, SMOE_TYPE_F32, 0, {24, 3, 5, 8}, 1e4f, 0},
    {SMOE_OP_ROPE, SMOE_TYPE_F32, 0, {128, 8, 40, 128}, 1e6f, 0},
    {SMOE_OP_KV_WRITE, SMOE_TYPE_F16, 0, {16, 2, 20, 7}, 0, 0},
    {SMOE_OP_KV_WRITE, SMOE_TYPE_F32, 0, {128, 2, 9, 1}, 0, 0},
    {SMOE_OP_KV_WRITE, SMOE_TYPE_Q8_0, 0, {64, 2, 9, 3}, 0, 0},
    {SMOE_OP_ATTENTION, SMOE_TYPE_F16, 0, {16, 4, 2, 20, 7, 2}, 0.25f, 1e-6},
    {SMOE_OP_ATTENTION, SMOE_TYPE_F32, 0, {128, 8, 2, 33, 1, 1}, 0.088388f, 0},
    {SMOE_OP_ATTENTION, SMOE_TYPE_F16, 0, {64, 4, 4, 40, 9, 3}, 0.125f, 1e-6},
    {SMOE_OP_ATTENTION, SMOE_TYPE_Q8_0, 0, {32, 4, 2, 20, 5, 2}, 0.17f, 1e-6},
    /* a long cache and few queries: the SIMD path cuts the cells into segments and merges them */
    {SMOE_OP_ATTENTION, SMOE_TYPE_F16, 0, {64, 4, 2, 1500, 3, 2}, 0.125f, 1e-6},
    {SMOE_OP_ATTENTION, SMOE_TYPE_F16, 0, {128, 8, 2, 700, 1, 1}, 0.088388f, 1e-6}, /* decode: split over cells */
    {SMOE_OP_MOE_ROUTE, SMOE_TYPE_F32, 0, {8, 2, 7}, 0, 0},
    {SMOE_OP_MOE_ROUTE, SMOE_TYPE_F32, 0, {8, 1, 1}, 0, 0},
    {SMOE_OP_MOE_ROUTE, SMOE_TYPE_F32, 0, {8, 8, 9, 1}, 0, 0},   /* ties and NaNs: the whole order */
    {SMOE_OP_MOE_ROUTE, SMOE_TYPE_F32, 0, {45, 6, 5, 1}, 0, 0},  /* two experts on some lanes */
    {SMOE_OP_MOE_ROUTE, SMOE_TYPE_F32, 0, {128, 3, 3, 1}, 0, 0}, /* four on every lane */
    {SMOE_OP_MOE_ROUTE, SMOE_TYPE_F32, 0, {150, 4, 3, 1}, 0, 0}, /* past the warp kernel: one thread per token */
    {SMOE_OP_MOE_COMBINE, SMOE_TYPE_F32, 0, {37, 8, 2, 7}, 0, 0},
    {SMOE_OP_MOE_COMBINE, SMOE_TYPE_F32, 0, {1024, 8, 2, 20}, 0, 0},
    {SMOE_OP_SWIGLU, SMOE_TYPE_F32, 0, {33, 7}, 0, 0},
    {SMOE_OP_SWIGLU, SMOE_TYPE_F32, 0, {1001, 40}, 0, 0},
    {SMOE_OP_ADD, SMOE_TYPE_F32, 0, {33, 7, 0}, 0, 0},
    {SMOE_OP_ADD, SMOE_TYPE_F32, 0, {33, 7, 1}, 0, 0},
    {SMOE_OP_MUL, SMOE_TYPE_F32, 0, {33, 7, 1}, 0, 0},
    {SMOE_OP_MUL, SMOE_TYPE_F32, 0, {33, 7, 2}, 0, 0},
    {SMOE_OP_SCALE, SMOE_TYPE_F32, 0, {33, 7}, 0.37f, 0},
    {SMOE_OP_CPY, SMOE_TYPE_F32, SMOE_TYPE_F16, {33, 7}, 0, 0},
    {SMOE_OP_CPY, SMOE_TYPE_F16, SMOE_TYPE_F32, {33, 7}, 0, 0},
    {SMOE_OP_CPY, SMOE_TYPE_F32, SMOE_TYPE_BF16, {33, 7}, 0, 0},
    {SMOE_OP_VIEW, SMOE_TYPE_F32, 0, {33, 7}, 0, 0},
};

/* ---- building a case ---- */

typedef struct hctx {
    smoe_graph *g;
    gt_rng      rng;
    gt_input    in[8];
    void       *owned[8];
    int         n_in;
    char        desc[256];
} hctx;

static int64_t k_for(smoe_type type) {
    const int64_t bs = smoe_type_get_traits(type)->block_size;
    return bs == 1 ? 67 : bs <= 32 ? 160 : 512;
}

/* A leaf of `type`; values uniform in [lo, hi) (encoded to the type), or the given int32 values when ints != NULL. */
static smoe_tensor *leaf(hctx *h, smoe_type type, int n_dims, const int64_t *ne, double lo, double hi,
                         const int32_t *ints) {
    smoe_tensor *t = NULL;
    if (smoe_graph_new_tensor(h->g, type, n_dims, ne, &t) != SMOE_OK || h->n_in == 8) return NULL;
    const int64_t n = smoe_tensor_nelements(t);
    void *data;
    if (ints) {
        data = malloc((size_t)n * sizeof(int32_t));
        memcpy(data, ints, (size_t)n * sizeof(int32_t));
    } else {
        float *f = malloc((size_t)n * sizeof(float));
        gt_fill(&h->rng, f, n, lo, hi);
        data = gt_encode(type, f, t->ne[0], n / t->ne[0]);
        free(f);
    }
    h->owned[h->n_in] = data;
    h->in[h->n_in++] = (gt_input){t, data};
    return t;
}

#define NE(...) ((const int64_t[]){__VA_ARGS__})

static smoe_tensor *build(hctx *h, const op_case *c, smoe_type type) {
    const char *tn = smoe_type_name(type);
    const char *on = smoe_op_name(c->op);
    smoe_tensor *o = NULL;
    smoe_status st = SMOE_ERR_INVALID_ARGUMENT;
    const int64_t *p = c->p;
    int32_t ints[4096];
    switch (c->op) {
    case SMOE_OP_GET_ROWS: {
        const int64_t n_embd = k_for(type), n_rows = p[0], n = p[1];
        snprintf(h->desc, sizeof(h->desc), "%s(type=%s,n_embd=%ld,n_rows=%ld,n=%ld)", on, tn, (long)n_embd,
                 (long)n_rows, (long)n);
        for (int64_t i = 0; i < n; i++) ints[i] = gt_rng_int(&h->rng, (int)n_rows);
        smoe_tensor *t = leaf(h, type, 2, NE(n_embd, n_rows), -1, 1, NULL);
        smoe_tensor *ids = leaf(h, SMOE_TYPE_I32, 1, NE(n), 0, 0, ints);
        if (t && ids) st = smoe_get_rows(h->g, t, ids, &o);
        break;
    }
    case SMOE_OP_MUL_MAT: {
        const int64_t k = p[2] ? p[2] : k_for(type), m = p[0], n = p[1];
        snprintf(h->desc, sizeof(h->desc), "%s(type=%s,m=%ld,n=%ld,k=%ld)", on, tn, (long)m, (long)n, (long)k);
        smoe_tensor *w = leaf(h, type, 2, NE(k, m), -1, 1, NULL);
        smoe_tensor *x = leaf(h, SMOE_TYPE_F32, 2, NE(k, n), -1, 1, NULL);
        if (w && x) st = smoe_mul_mat(h->g, w, x, &o);
        break;
    }
    case SMOE_OP_MUL_MAT_ID: {
        const int64_t k = p[6] ? p[6] : k_for(type), m = p[0], n_expert = p[1], n_used = p[2], n_x = p[3], n = p[4],
                      skew = p[5];
        snprintf(h->desc, sizeof(h->desc), "%s(type=%s,m=%ld,n_expert=%ld,n_used=%ld,n_x=%ld,n=%ld,k=%ld%s)", on, tn,
                 (long)m, (long)n_expert, (long)n_used, (long)n_x, (long)n, (long)k, skew ? ",skew" : "");
        /* distinct experts per token, drawn from all but the last expert (which stays unused); with skew, slot 0
         * is always expert 0 */
        for (int64_t t = 0; t < n; t++)
            for (int64_t s = 0; s < n_used; s++) {
                int32_t e;
                bool dup;
                do {
                    e = skew && s == 0 ? 0 : gt_rng_int(&h->rng, (int)(n_expert - 1));
                    dup = false;
                    for (int64_t q = 0; q < s; q++) dup |= ints[t * n_used + q] == e;
                } while (dup);
                ints[t * n_used + s] = e;
            }
        smoe_tensor *w = leaf(h, type, 3, NE(k, m, n_expert), -1, 1, NULL);
        smoe_tensor *x = leaf(h, SMOE_TYPE_F32, 3, NE(k, n_x, n), -1, 1, NULL);
        smoe_tensor *ids = leaf(h, SMOE_TYPE_I32, 2, NE(n_used, n), 0, 0, ints);
        if (w && x && ids) st = smoe_mul_mat_id(h->g, w, x, ids, &o);
        break;
    }
    case SMOE_OP_RMS_NORM: {
        snprintf(h->desc, sizeof(h->desc), "%s(n=%ld,rows=%ld,eps=%g)", on, (long)p[0], (long)p[1], (double)c->f);
        smoe_tensor *x = leaf(h, SMOE_TYPE_F32, 2, NE(p[0], p[1]), -2, 2, NULL);
        smoe_tensor *w = leaf(h, SMOE_TYPE_F32, 1, NE(p[0]), 0.5, 1.5, NULL);
        if (x && w) st = smoe_rms_norm(h->g, x, w, c->f, &o);
        break;
    }
    case SMOE_OP_ROPE: {
        const int64_t hd = p[0], nh = p[1], nt = p[2];
        snprintf(h->desc, sizeof(h->desc), "%s(head_dim=%ld,n_head=%ld,n_tokens=%ld,n_rot=%ld,theta=%g)", on,
                 (long)hd, (long)nh, (long)nt, (long)p[3], (double)c->f);
        for (int64_t t = 0; t < nt; t++) ints[t] = gt_rng_int(&h->rng, 4096);
        smoe_tensor *x = leaf(h, SMOE_TYPE_F32, 3, NE(hd, nh, nt), -1, 1, NULL);
        smoe_tensor *pos = leaf(h, SMOE_TYPE_I32, 1, NE(nt), 0, 0, ints);
        smoe_op_rope_params rp = {.n_rot = (int32_t)p[3], .theta_base = c->f, .freq_scale = 1.0f};
        if (x && pos) st = smoe_rope(h->g, x, pos, &rp, &o);
        break;
    }
    case SMOE_OP_KV_WRITE: {
        const int64_t hd = p[0], nkv = p[1], nc = p[2], nt = p[3];
        snprintf(h->desc, sizeof(h->desc), "%s(type=%s,head_dim=%ld,n_head_kv=%ld,n_cells=%ld,n_tokens=%ld)", on, tn,
                 (long)hd, (long)nkv, (long)nc, (long)nt);
        for (int64_t t = 0; t < nt; t++) ints[t] = (int32_t)((t * 3 + 1) % nc); /* distinct cells */
        smoe_tensor *cache = leaf(h, type, 3, NE(hd, nkv, nc), -1, 1, NULL);
        smoe_tensor *rows = leaf(h, SMOE_TYPE_F32, 3, NE(hd, nkv, nt), -1, 1, NULL);
        smoe_tensor *cells = leaf(h, SMOE_TYPE_I32, 1, NE(nt), 0, 0, ints);
        if (cache && rows && cells) st = smoe_kv_write(h->g, cache, rows, cells, &o);
        break;
    }
    case SMOE_OP_ATTENTION: {
        const int64_t hd = p[0], nh = p[1], nkv = p[2], nc = p[3], nt = p[4], nseq = p[5];
        snprintf(h->desc, sizeof(h->desc),
                 "%s(type=%s,head_dim=%ld,n_head=%ld,n_head_kv=%ld,n_cells=%ld,n_tokens=%ld,n_seq=%ld)", on, tn,
                 (long)hd, (long)nh, (long)nkv, (long)nc, (long)nt, (long)nseq);
        /* cells: sequence s owns cells at positions 0.. in order; every 5th cell empty; the last 2 not scanned */
        int32_t next_pos[16] = {0};
        int32_t *cinfo = ints, *qinfo = ints + 2 * nc;
        for (int64_t j = 0; j < nc; j++) {
            int32_t s = (int32_t)(j % nseq);
            if (j % 5 == 4) cinfo[2 * j] = 0, cinfo[2 * j + 1] = -1;
            else cinfo[2 * j] = next_pos[s]++, cinfo[2 * j + 1] = s;
        }
        for (int64_t t = 0; t < nt; t++) {
            int32_t s = (int32_t)(t % nseq);
            qinfo[2 * t] = next_pos[s] > 0 ? gt_rng_int(&h->rng, next_pos[s] + 1) : 0;
            qinfo[2 * t + 1] = s;
        }
        int32_t n_scan = (int32_t)(nc > 2 ? nc - 2 : nc);
        smoe_tensor *q = leaf(h, SMOE_TYPE_F32, 3, NE(hd, nh, nt), -1, 1, NULL);
        smoe_tensor *k = leaf(h, type, 3, NE(hd, nkv, nc), -1, 1, NULL);
        smoe_tensor *v = leaf(h, type, 3, NE(hd, nkv, nc), -1, 1, NULL);
        smoe_tensor *qi = leaf(h, SMOE_TYPE_I32, 2, NE(2, nt), 0, 0, qinfo);
        smoe_tensor *ci = leaf(h, SMOE_TYPE_I32, 2, NE(2, nc), 0, 0, cinfo);
        smoe_tensor *ns = leaf(h, SMOE_TYPE_I32, 1, NE(1), 0, 0, &n_scan);
        if (q && k && v && qi && ci && ns) st = smoe_attention(h->g, q, k, v, qi, ci, ns, c->f, &o);
        break;
    }
    case SMOE_OP_MOE_ROUTE: {
        snprintf(h->desc, sizeof(h->desc), "%s(n_expert=%ld,n_used=%ld,n_tokens=%ld%s)", on, (long)p[0], (long)p[1],
                 (long)p[2], p[3] ? ",ties" : "");
        smoe_tensor *l = leaf(h, SMOE_TYPE_F32, 2, NE(p[0], p[2]), -3, 3, NULL);
        if (l && p[3]) { /* ties: whole numbers (many equal logits), every 7th NaN, one token all NaN */
            float *f = (float *)h->in[h->n_in - 1].data;
            for (int64_t i = 0; i < p[0] * p[2]; i++)
                f[i] = i % 7 == 3 || i / p[0] == p[2] - 1 ? NAN : (float)(int)f[i];
        }
        if (l) st = smoe_moe_route(h->g, l, (int)p[1], &o);
        break;
    }
    case SMOE_OP_MOE_COMBINE: {
        const int64_t ne = p[1], nu = p[2], nt = p[3];
        snprintf(h->desc, sizeof(h->desc), "%s(n_embd=%ld,n_expert=%ld,n_used=%ld,n_tokens=%ld)", on, (long)p[0],
                 (long)ne, (long)nu, (long)nt);
        for (int64_t t = 0; t < nt; t++)
            for (int64_t s = 0; s < nu; s++) ints[t * nu + s] = (int32_t)((t + 3 * s) % ne);
        smoe_tensor *y = leaf(h, SMOE_TYPE_F32, 3, NE(p[0], nu, nt), -1, 1, NULL);
        smoe_tensor *l = leaf(h, SMOE_TYPE_F32, 2, NE(ne, nt), -3, 3, NULL);
        smoe_tensor *ids = leaf(h, SMOE_TYPE_I32, 2, NE(nu, nt), 0, 0, ints);
        if (y && l && ids) st = smoe_moe_combine(h->g, y, l, ids, &o);
        break;
    }
    case SMOE_OP_SWIGLU:
    case SMOE_OP_SCALE:
    case SMOE_OP_CPY:
    case SMOE_OP_VIEW: {
        if (c->op == SMOE_OP_CPY)
            snprintf(h->desc, sizeof(h->desc), "%s(type=%s,dst=%s,ne=[%ld,%ld])", on, tn, smoe_type_name(c->type2),
                     (long)p[0], (long)p[1]);
        else
            snprintf(h->desc, sizeof(h->desc), "%s(ne=[%ld,%ld])", on, (long)p[0], (long)p[1]);
        smoe_tensor *a = leaf(h, type, 2, NE(p[0], p[1]), -4, 4, NULL);
        if (!a) break;
        if (c->op == SMOE_OP_SWIGLU) {
            smoe_tensor *b = leaf(h, SMOE_TYPE_F32, 2, NE(p[0], p[1]), -4, 4, NULL);
            if (b) st = smoe_swiglu(h->g, a, b, &o);
        } else if (c->op == SMOE_OP_SCALE) {
            st = smoe_scale(h->g, a, c->f, &o);
        } else if (c->op == SMOE_OP_CPY) {
            st = smoe_cpy(h->g, a, c->type2, &o);
        } else { /* a strided view: columns 2.. of rows 1.. */
            size_t nb[2] = {sizeof(float), a->nb[1]};
            st = smoe_view(h->g, a, 2, NE(p[0] - 2, p[1] - 1), nb, a->nb[1] + 2 * sizeof(float), &o);
        }
        break;
    }
    case SMOE_OP_ADD:
    case SMOE_OP_MUL: {
        const int64_t bc = p[2];
        snprintf(h->desc, sizeof(h->desc), "%s(ne=[%ld,%ld],b=%s)", on, (long)p[0], (long)p[1],
                 bc == 0 ? "full" : bc == 1 ? "row" : "column");
        smoe_tensor *a = leaf(h, SMOE_TYPE_F32, 2, NE(p[0], p[1]), -4, 4, NULL);
        smoe_tensor *b = leaf(h, SMOE_TYPE_F32, 2, NE(bc == 2 ? 1 : p[0], bc == 1 ? 1 : p[1]), -4, 4, NULL);
        if (a && b) st = c->op == SMOE_OP_ADD ? smoe_add(h->g, a, b, &o) : smoe_mul(h->g, a, b, &o);
        break;
    }
    default: snprintf(h->desc, sizeof(h->desc), "%s(no builder)", on);
    }
    if (st != SMOE_OK) {
        fprintf(stderr, "%s: build failed: %s\n", h->desc, smoe_last_error());
        return NULL;
    }
    smoe_graph_set_output(o);
    return o;
}

static void hctx_free(hctx *h) {
    for (int i = 0; i < h->n_in; i++) free(h->owned[i]);
    smoe_graph_free(h->g);
}

/* ---- comparing ---- */

static double type_nmse(smoe_type t) {
    switch (t) {
    case SMOE_TYPE_F32: return 1e-7;
    case SMOE_TYPE_F16:
    case SMOE_TYPE_BF16: return 1e-5;
    case SMOE_TYPE_Q8_0:
    case SMOE_TYPE_Q8_1:
    case SMOE_TYPE_Q8_K: return 1e-4;
    default: return 5e-4;
    }
}

/* Reads an output (any strides) as f32 values in element order. */
static float *read_values(const smoe_tensor *t, const uint8_t *raw) {
    const int64_t n = smoe_tensor_nelements(t);
    float *v = malloc((size_t)n * sizeof(float));
    const smoe_type_traits *tr = smoe_type_get_traits(t->type);
    int64_t o = 0;
    for (int64_t i3 = 0; i3 < t->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < t->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < t->ne[1]; i1++, o += t->ne[0]) {
                const uint8_t *row = raw + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3];
                if (t->type == SMOE_TYPE_I32)
                    for (int64_t i = 0; i < t->ne[0]; i++) v[o + i] = (float)((const int32_t *)row)[i];
                else tr->to_f32(row, v + o, t->ne[0]);
            }
    return v;
}

typedef enum verdict { V_OK, V_FAIL, V_SKIP } verdict;

static verdict compare(const smoe_tensor *out, const uint8_t *ref, const uint8_t *got, bool exact, double limit,
                       char *why, size_t why_size, double *nmse_out) {
    const size_t nbytes = smoe_tensor_nbytes(out);
    *nmse_out = 0;
    if (exact) {
        if (memcmp(ref, got, nbytes) == 0) return V_OK;
        snprintf(why, why_size, "not bit-identical");
        return V_FAIL;
    }
    const int64_t n = smoe_tensor_nelements(out);
    float *a = read_values(out, ref), *b = read_values(out, got);
    verdict v = V_OK;
    double num = 0, den = 0, worst = -1;
    int64_t at = 0, n_diff = 0; /* the largest difference (reported: where a device kernel goes wrong) */
    for (int64_t i = 0; i < n && v == V_OK; i++) {
        if (isnan(a[i]) != isnan(b[i]) || isinf(a[i]) != isinf(b[i])) {
            snprintf(why, why_size, "NaN/Inf mismatch at %ld: %g vs %g", (long)i, (double)a[i], (double)b[i]);
            v = V_FAIL;
        } else if (isfinite(a[i])) {
            const double e = ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
            num += e;
            den += (double)a[i] * a[i];
            n_diff += e > 0;
            if (e > worst) worst = e, at = i;
        }
    }
    if (v == V_OK) {
        if (out->type == SMOE_TYPE_I32) {
            if (num != 0) snprintf(why, why_size, "integer results differ"), v = V_FAIL;
        } else {
            *nmse_out = den > 0 ? num / den : num;
            if (!(*nmse_out <= limit))
                snprintf(why, why_size, "NMSE %.3g > %.3g; %ld of %ld elements differ, most at %ld: %g, want %g",
                         *nmse_out, limit, (long)n_diff, (long)n, (long)at, (double)b[at], (double)a[at]),
                    v = V_FAIL;
        }
    }
    free(a);
    free(b);
    return v;
}

static smoe_status run_on(smoe_backend *b, hctx *h, smoe_tensor *out, uint8_t *result) {
    gt_output o = {out, result};
    return gt_run(&b, 1, h->g, h->in, h->n_in, &o, 1, 1, NULL);
}

/* ---- backends under test ---- */

typedef struct target {
    char          name[32];
    smoe_backend *backend; /* NULL: absent (skipped) */
    bool          exact;   /* same kernels as the reference: bit-identical */
    double        nmse_cap; /* > 0: the NMSE limit is at most this (SIMD kernels of the CPU: float rounding only) */
    const char   *absent_why;
} target;

static const char *const known_kinds[] = {"cuda", "vulkan"};

static int make_targets(target *tg, int max) {
    int n = 0;
    smoe_cpu_params p = smoe_cpu_default_params();
    p.n_threads = 3;
    p.name = "cpu-2";
    p.isa = SMOE_CPU_ISA_SCALAR;
    tg[n] = (target){.exact = true};
    snprintf(tg[n].name, sizeof(tg[n].name), "cpu-2");
    if (smoe_cpu_backend_init(&p, &tg[n].backend) != SMOE_OK) tg[n].absent_why = "init failed";
    n++;
    /* the CPU's SIMD kernel tables (the reference is plain C): integer sums are the same, so only the order of
     * float additions differs from the reference */
    for (int isa = SMOE_CPU_ISA_SCALAR + 1; isa < SMOE_CPU_ISA_COUNT && n < max; isa++) {
        tg[n] = (target){.nmse_cap = 1e-10};
        snprintf(tg[n].name, sizeof(tg[n].name), "cpu-%s", smoe_cpu_isa_name((smoe_cpu_isa)isa));
        if (!smoe_cpu_kernels_get((smoe_cpu_isa)isa)) {
            tg[n].absent_why = "not on this CPU or build";
        } else {
            p.isa = isa;
            p.name = tg[n].name;
            if (smoe_cpu_backend_init(&p, &tg[n].backend) != SMOE_OK) tg[n].absent_why = "init failed";
        }
        n++;
    }
    for (int i = 0; i < smoe_backend_reg_count() && n < max; i++) {
        const smoe_backend_reg *r = smoe_backend_reg_get(i);
        if (strcmp(r->name, "cpu") == 0) continue;
        int nd = r->device_count();
        if (nd == 0) {
            tg[n] = (target){.absent_why = "no device"};
            snprintf(tg[n].name, sizeof(tg[n].name), "%s", r->name);
            n++;
        }
        for (int d = 0; d < nd && n < max; d++) {
            tg[n] = (target){0};
            snprintf(tg[n].name, sizeof(tg[n].name), "%s%d", r->name, d);
            if (r->init(d, &tg[n].backend) != SMOE_OK) tg[n].absent_why = "init failed";
            n++;
        }
    }
    /* kinds the project will have but this build lacks: reported as skipped */
    for (size_t k = 0; k < sizeof(known_kinds) / sizeof(known_kinds[0]) && n < max; k++) {
        if (smoe_backend_reg_find(known_kinds[k])) continue;
        tg[n] = (target){.absent_why = "not built"};
        snprintf(tg[n].name, sizeof(tg[n].name), "%s", known_kinds[k]);
        n++;
    }
    return n;
}

/* ---- main ---- */

static void usage(const char *argv0) {
    fprintf(stderr, "usage: %s [-o OP] [-b BACKEND] [-p REGEX] [-v] [-s]\n", argv0);
}

int main(int argc, char **argv) {
    const char *op_filter = NULL, *backend_filter = NULL, *pattern = NULL;
    bool verbose = false, self_test = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) op_filter = argv[++i];
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) backend_filter = argv[++i];
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) pattern = argv[++i];
        else if (!strcmp(argv[i], "-v")) verbose = true;
        else if (!strcmp(argv[i], "-s")) self_test = true;
        else {
            usage(argv[0]);
            return 2;
        }
    }
    int op_only = -1;
    if (op_filter) {
        op_only = smoe_op_from_name(op_filter);
        if (op_only < 0) {
            fprintf(stderr, "unknown op '%s'\n", op_filter);
            return 2;
        }
    }
    regex_t re;
    if (pattern && regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
        fprintf(stderr, "bad regex '%s'\n", pattern);
        return 2;
    }

    int passed = 0, failed = 0, skipped = 0;

    /* coverage: every op has a case */
    for (int op = 0; op < SMOE_OP_COUNT; op++) {
        if (op == SMOE_OP_NONE || (op_only >= 0 && op != op_only)) continue;
        bool has = false;
        for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) has |= cases[c].op == (smoe_op)op;
        if (!has) {
            printf("%s: no case in tests/test-ops.c FAILED\n", smoe_op_name((smoe_op)op));
            failed++;
        }
    }

    smoe_cpu_params rp = smoe_cpu_default_params();
    rp.n_threads = 2;
    rp.isa = SMOE_CPU_ISA_SCALAR;
    smoe_backend *ref = NULL;
    if (smoe_cpu_backend_init(&rp, &ref) != SMOE_OK) {
        fprintf(stderr, "cannot start the CPU reference: %s\n", smoe_last_error());
        return 1;
    }
    target tg[16];
    const int n_tg = make_targets(tg, 16);

    for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
        const op_case *c = &cases[ci];
        if (op_only >= 0 && c->op != (smoe_op)op_only) continue;
        for (int type = 0; type < SMOE_TYPE_COUNT; type++) {
            if (c->type != TYPE_ALL && type != (int)c->type) continue;
            const smoe_type_traits *tr = smoe_type_get_traits(type);
            if (!tr || !tr->to_f32) continue;
            hctx h = {.rng = {.s = 1000 + ci * 64 + (uint64_t)type}};
            if (smoe_graph_init(&h.g) != SMOE_OK) return 1;
            if (!tr->from_f32) { /* cannot make inputs of this type */
                snprintf(h.desc, sizeof(h.desc), "%s(type=%s)", smoe_op_name(c->op), tr->name);
                if (!pattern || regexec(&re, h.desc, 0, NULL, 0) == 0) {
                    printf("%s all SKIPPED (no quantizer to make inputs)\n", h.desc);
                    skipped++;
                }
                hctx_free(&h);
                continue;
            }
            smoe_tensor *out = build(&h, c, (smoe_type)type);
            if (pattern && regexec(&re, h.desc, 0, NULL, 0) != 0) {
                hctx_free(&h);
                continue;
            }
            if (!out) {
                printf("%s all FAILED (cannot build)\n", h.desc);
                failed++;
                hctx_free(&h);
                continue;
            }
            const size_t nbytes = smoe_tensor_nbytes(out);
            uint8_t *want = malloc(nbytes), *got = malloc(nbytes);
            smoe_status st = run_on(ref, &h, out, want);
            if (st != SMOE_OK) {
                printf("%s cpu FAILED (reference: %s)\n", h.desc, smoe_last_error());
                failed++;
            }
            for (int t = 0; st == SMOE_OK && t < n_tg; t++) {
                if (backend_filter && strcmp(backend_filter, tg[t].name) != 0) continue;
                if (!tg[t].backend) {
                    printf("%s %s SKIPPED (%s)\n", h.desc, tg[t].name, tg[t].absent_why);
                    skipped++;
                    continue;
                }
                bool sup = true;
                for (int i = 0; i < smoe_graph_n_nodes(h.g); i++)
                    sup &= smoe_backend_supports_op(tg[t].backend, smoe_graph_node(h.g, i));
                if (!sup) {
                    printf("%s %s SKIPPED (unsupported)\n", h.desc, tg[t].name);
                    skipped++;
                    continue;
                }
                memset(got, 0xA5, nbytes);
                smoe_status rs = run_on(tg[t].backend, &h, out, got);
                char why[256] = "";
                double e = 0;
                verdict v = V_FAIL;
                if (rs != SMOE_OK) snprintf(why, sizeof(why), "run: %s", smoe_last_error());
                else {
                    smoe_type lt = c->op == SMOE_OP_CPY ? c->type2 : (smoe_type)type;
                    double limit = c->max_nmse > 0 ? c->max_nmse : type_nmse(lt);
                    if (tg[t].nmse_cap > 0 && tg[t].nmse_cap < limit) limit = tg[t].nmse_cap;
                    v = compare(out, want, got, tg[t].exact, limit, why, sizeof(why), &e);
                }
                if (self_test && v == V_OK && tg[t].exact && out->type != SMOE_TYPE_I32) {
                    /* plant errors in a copy of the result; the device comparison must reject both */
                    uint8_t *bad = malloc(nbytes);
                    float *vals = read_values(out, got);
                    const int64_t at = smoe_tensor_nelements(out) / 2;
                    /* a quantized result (a Q8_0 KV cache) cannot hold a NaN element: plant only the error */
                    const int first_kind = smoe_type_get_traits(out->type)->is_quantized ? 1 : 0;
                    for (int kind = first_kind; kind < 2 && v == V_OK; kind++) {
                        memcpy(bad, got, nbytes);
                        /* find the byte offset of element `at` (row-major over dims 1..3) */
                        int64_t row = at / out->ne[0], col = at % out->ne[0];
                        int64_t i1 = row % out->ne[1], i2 = (row / out->ne[1]) % out->ne[2],
                                i3 = row / (out->ne[1] * out->ne[2]);
                        uint8_t *rowp = bad + i1 * out->nb[1] + i2 * out->nb[2] + i3 * out->nb[3];
                        const smoe_type_traits *ot = smoe_type_get_traits(out->type);
                        float *rowv = malloc((size_t)out->ne[0] * sizeof(float));
                        ot->to_f32(rowp, rowv, out->ne[0]);
                        float big = 0;
                        for (int64_t q = 0; q < smoe_tensor_nelements(out); q++) big = fmaxf(big, fabsf(vals[q]));
                        /* an error of 0.1 * max * sqrt(n): NMSE ~ 0.03, far above any limit, for any output size */
                        const float amp = 0.1f * sqrtf((float)smoe_tensor_nelements(out)) + 1.0f;
                        rowv[col] = kind == 0 ? NAN : rowv[col] + amp * (big + 0.1f);
                        ot->from_f32(rowv, rowp, out->ne[0]);
                        free(rowv);
                        char w2[160];
                        double e2;
                        if (compare(out, want, bad, false, 1e-4, w2, sizeof(w2), &e2) != V_FAIL) {
                            snprintf(why, sizeof(why), "self-test: planted %s not detected", kind ? "error" : "NaN");
                            v = V_FAIL;
                        }
                    }
                    free(vals);
                    free(bad);
                }
                if (v == V_OK) {
                    passed++;
                    if (verbose && !tg[t].exact) printf("%s %s OK (NMSE %.3g)\n", h.desc, tg[t].name, e);
                    else printf("%s %s OK\n", h.desc, tg[t].name);
                } else {
                    failed++;
                    printf("%s %s FAILED (%s)\n", h.desc, tg[t].name, why);
                }
            }
            free(want);
            free(got);
            hctx_free(&h);
        }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    for (int t = 0; t < n_tg; t++) smoe_backend_free(tg[t].backend);
    smoe_backend_free(ref);
    if (pattern) regfree(&re);
    return failed ? 1 : 0;
}
