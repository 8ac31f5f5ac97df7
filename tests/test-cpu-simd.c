/*
 * test-cpu-simd.c - the CPU backend's SIMD kernel tables (backends/cpu/cpu-simd.h) against the plain-C reference,
 * for every table this CPU runs (AVX2, AVX-VNNI, AVX-512, AVX512-VNNI; tables the CPU lacks are skipped, and say so).
 *
 * - Activation quantizers (f32 -> Q8_0, Q8_K) are integer outputs: the same bytes as the reference, on random rows
 *   and on the edge cases of rounding (exact .5 ties, blocks of zeros, a negative maximum, repeated maxima).
 * - Dot products on "exact" data: weight blocks with random quants and power-of-two scales, activations whose
 *   scales are powers of two, sizes that keep every partial sum below 2^24. Every float operation is then exact,
 *   so the SIMD sum must equal the reference bit for bit whatever order it adds in: this checks the integer work
 *   (unpacking, offsets, sub-block scales, mins) exactly.
 * - Dot products on random data: |simd - ref| <= 1e-5 * sum |x_i y_i| (float rounding only).
 * - MUL_MAT / MUL_MAT_ID through the backend (batched and row-by-row paths) on exact data: bit-identical to the
 *   SCALAR backend; and the same SIMD table with 1 and 3 threads: bit-identical.
 * - ATTENTION (one pass per query, and the segmented long-cache path) with 1 and 3 threads: bit-identical. Its
 *   agreement with the reference is checked by tests/test-ops.c.
 * The reference values come from the reference kernels (quant/), which tests/test-quant.c checks against the gguf
 * Python package and double-precision math.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu-simd.h"
#include "graph-test-util.h"
#include "quant/quant.h"

static const smoe_type dot_types[] = {SMOE_TYPE_Q8_0, SMOE_TYPE_Q4_0, SMOE_TYPE_Q4_1, SMOE_TYPE_Q5_0,
                                      SMOE_TYPE_Q5_1, SMOE_TYPE_Q4_K, SMOE_TYPE_Q5_K, SMOE_TYPE_Q6_K,
                                      SMOE_TYPE_F16,  SMOE_TYPE_BF16, SMOE_TYPE_F32};
#define N_DOT_TYPES (sizeof(dot_types) / sizeof(dot_types[0]))

/* the SIMD tables this CPU runs; prints the ones it skips */
static int simd_tables(const smoe_cpu_kernels **out) {
    int n = 0;
    for (int isa = SMOE_CPU_ISA_SCALAR + 1; isa < SMOE_CPU_ISA_COUNT; isa++) {
        const smoe_cpu_kernels *k = smoe_cpu_kernels_get((smoe_cpu_isa)isa);
        if (k) out[n++] = k;
        else print_message("  %s: skipped (not on this CPU or build)\n", smoe_cpu_isa_name((smoe_cpu_isa)isa));
    }
    return n;
}

static uint8_t rbyte(gt_rng *r) { return (uint8_t)gt_rng_next(r); }

/* ---- quantizers ---- */

static void check_quant(const smoe_cpu_kernels *k, smoe_type t, const float *x, int64_t n, const char *what) {
    const smoe_type_traits *tr = smoe_type_get_traits(t);
    smoe_from_f32_fn simd = t == SMOE_TYPE_Q8_0 ? k->quant_q8_0 : k->quant_q8_k;
    if (!simd) return;
    const size_t bytes = smoe_row_size(t, n);
    uint8_t *a = malloc(bytes), *b = malloc(bytes);
    memset(a, 0x5a, bytes);
    memset(b, 0xa5, bytes);
    tr->from_f32(x, a, n);
    simd(x, b, n);
    if (memcmp(a, b, bytes) != 0) fail_msg("%s %s (%s): SIMD quantizer bytes differ from the reference", k->name, tr->name, what);
    free(a);
    free(b);
}

static void test_quantizers(void **state) {
    (void)state;
    const smoe_cpu_kernels *tabs[8];
    const int nt = simd_tables(tabs);
    gt_rng rng = {.s = 42};
    const int64_t n = 4 * 256;
    float *x = malloc((size_t)n * sizeof(float));
    for (int ti = 0; ti < nt; ti++) {
        for (int rep = 0; rep < 20; rep++) {
            gt_fill(&rng, x, n, -3.0, 3.0);
            check_quant(tabs[ti], SMOE_TYPE_Q8_0, x, n, "random");
            check_quant(tabs[ti], SMOE_TYPE_Q8_K, x, n, "random");
        }
        /* ties: values k/2 scaled so the block maximum maps to exactly 127 (Q8_0) or -127 / max (Q8_K) */
        for (int64_t i = 0; i < n; i++) x[i] = (float)((int)(gt_rng_next(&rng) % 255) - 127) * 0.5f;
        for (int64_t b = 0; b < n; b += 32) x[b + 5] = 63.5f; /* the block maximum: d = 0.5, so x / d are halves */
        check_quant(tabs[ti], SMOE_TYPE_Q8_0, x, n, "ties");
        check_quant(tabs[ti], SMOE_TYPE_Q8_K, x, n, "ties");
        /* zero blocks, a negative maximum, repeated maxima of both signs */
        memset(x, 0, (size_t)n * sizeof(float));
        check_quant(tabs[ti], SMOE_TYPE_Q8_0, x, n, "zeros");
        check_quant(tabs[ti], SMOE_TYPE_Q8_K, x, n, "zeros");
        gt_fill(&rng, x, n, -1.0, 1.0);
        x[3] = -7.0f, x[300] = 7.0f, x[301] = -7.0f, x[600] = -2.0f, x[601] = 2.0f, x[900] = 1e-30f;
        for (int64_t i = 768; i < 1024; i++) x[i] = i % 2 ? 1e-20f : -1e-20f;
        check_quant(tabs[ti], SMOE_TYPE_Q8_0, x, n, "edges");
        check_quant(tabs[ti], SMOE_TYPE_Q8_K, x, n, "edges");
    }
    free(x);
}

/* ---- exact data ---- */

/* fp16 of 2^e */
static smoe_fp16 pow2_h(int e) { return smoe_f32_to_fp16(ldexpf(1.0f, e)); }

/* A row of n elements of type t with random quants and power-of-two scales small enough for exact sums. */
static void exact_weights(gt_rng *r, smoe_type t, uint8_t *row, int64_t n) {
    const smoe_type_traits *tr = smoe_type_get_traits(t);
    const int64_t nb = n / tr->block_size;
    for (size_t i = 0; i < (size_t)nb * tr->type_size; i++) row[i] = rbyte(r);
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = row + (size_t)b * tr->type_size;
        smoe_fp16 d = pow2_h(-(int)(gt_rng_next(r) % 2)), m = pow2_h(-(int)(gt_rng_next(r) % 2));
        switch (t) {
        case SMOE_TYPE_Q8_0:
            for (int i = 0; i < 32; i++)
                if ((int8_t)blk[2 + i] == -128) blk[2 + i] = 0x81;
            /* fall through */
        case SMOE_TYPE_Q4_0:
        case SMOE_TYPE_Q5_0: memcpy(blk, &d, 2); break;
        case SMOE_TYPE_Q4_1:
        case SMOE_TYPE_Q5_1:
            memcpy(blk, &d, 2);
            memcpy(blk + 2, &m, 2);
            break;
        case SMOE_TYPE_Q4_K:
        case SMOE_TYPE_Q5_K: {
            smoe_block_q4_k *q = (smoe_block_q4_k *)blk; /* same header layout for Q5_K */
            q->d = d, q->dmin = m;
            for (int j = 0; j < 8; j++) q->scales[j] &= 0x07; /* 6-bit scales and mins <= 7 */
            for (int j = 8; j < 12; j++) q->scales[j] &= 0x77;
            break;
        }
        case SMOE_TYPE_Q6_K: {
            smoe_block_q6_k *q = (smoe_block_q6_k *)blk;
            q->d = d;
            for (int j = 0; j < 16; j++) q->scales[j] = (int8_t)((int)(gt_rng_next(r) % 15) - 7);
            break;
        }
        case SMOE_TYPE_F16: {
            smoe_fp16 *h = (smoe_fp16 *)blk;
            *h = smoe_f32_to_fp16((float)((int)(gt_rng_next(r) % 31) - 15) * 0.25f);
            break;
        }
        case SMOE_TYPE_BF16: {
            smoe_bf16 *h = (smoe_bf16 *)blk;
            *h = smoe_f32_to_bf16((float)((int)(gt_rng_next(r) % 31) - 15) * 0.25f);
            break;
        }
        case SMOE_TYPE_F32: {
            float f = (float)((int)(gt_rng_next(r) % 31) - 15) * 0.25f;
            memcpy(blk, &f, 4);
            break;
        }
        default: break;
        }
    }
}

/* f32 activations whose Q8_0 / Q8_K quantization is exact with power-of-two scales: integers in [-8, 8] times
 * 2^-e (e = 0 or 1), each block holding +-127 * 2^-e as its largest element. With weight scales 1 or 1/2 every
 * product is a multiple of 1/4 and every sum stays below 2^22 in these tests, so float arithmetic is exact. */
static void exact_acts(gt_rng *r, float *x, int64_t n, int64_t block) {
    for (int64_t b = 0; b < n; b += block) {
        const float s = ldexpf(1.0f, -(int)(gt_rng_next(r) % 2));
        for (int64_t i = 0; i < block; i++) x[b + i] = (float)((int)(gt_rng_next(r) % 17) - 8) * s;
        x[b + (int64_t)(gt_rng_next(r) % (uint64_t)block)] = (gt_rng_next(r) & 1 ? 127.0f : -127.0f) * s;
    }
}

static void test_dot_exact(void **state) {
    (void)state;
    const smoe_cpu_kernels *tabs[8];
    const int nt = simd_tables(tabs);
    gt_rng rng = {.s = 7};
    const int64_t n = 512;
    float *x = malloc((size_t)n * sizeof(float));
    uint8_t *w = malloc(4 * (size_t)n + 64), *y = malloc(4 * (size_t)n + 64);
    for (int ti = 0; ti < nt; ti++) {
        for (size_t di = 0; di < N_DOT_TYPES; di++) {
            const smoe_type t = dot_types[di];
            const smoe_type_traits *tr = smoe_type_get_traits(t), *vt = smoe_type_get_traits(tr->vec_dot_type);
            const smoe_vec_dot_fn simd = tabs[ti]->vec_dot[t];
            if (!simd) continue;
            for (int rep = 0; rep < 50; rep++) {
                exact_weights(&rng, t, w, n);
                exact_acts(&rng, x, n, vt->block_size > 1 ? vt->block_size : 32);
                const void *yy = x;
                if (tr->vec_dot_type != SMOE_TYPE_F32) {
                    vt->from_f32(x, y, n);
                    yy = y;
                }
                float a = 0, b = 0;
                tr->vec_dot(n, &a, w, yy);
                simd(n, &b, w, yy);
                if (memcmp(&a, &b, sizeof(float)) != 0)
                    fail_msg("%s vec_dot %s on exact data: %.9g vs reference %.9g", tabs[ti]->name, tr->name, (double)b,
                             (double)a);
            }
        }
    }
    free(x);
    free(w);
    free(y);
}

static void test_dot_random(void **state) {
    (void)state;
    const smoe_cpu_kernels *tabs[8];
    const int nt = simd_tables(tabs);
    gt_rng rng = {.s = 11};
    const int64_t n = 2048;
    float *x = malloc((size_t)n * sizeof(float)), *wf = malloc((size_t)n * sizeof(float));
    float *xd = malloc((size_t)n * sizeof(float));
    uint8_t *w = malloc(4 * (size_t)n + 64), *y = malloc(4 * (size_t)n + 64);
    for (int ti = 0; ti < nt; ti++) {
        for (size_t di = 0; di < N_DOT_TYPES; di++) {
            const smoe_type t = dot_types[di];
            const smoe_type_traits *tr = smoe_type_get_traits(t), *vt = smoe_type_get_traits(tr->vec_dot_type);
            if (!tabs[ti]->vec_dot[t]) continue;
            for (int rep = 0; rep < 10; rep++) {
                gt_fill(&rng, wf, n, -1.0, 1.0);
                gt_fill(&rng, x, n, -2.0, 2.0);
                tr->from_f32(wf, w, n);
                const void *yy = x;
                if (tr->vec_dot_type != SMOE_TYPE_F32) {
                    vt->from_f32(x, y, n);
                    yy = y;
                }
                /* magnitude of the terms: sum |w_i y_i| over the dequantized operands */
                tr->to_f32(w, wf, n);
                if (tr->vec_dot_type != SMOE_TYPE_F32) vt->to_f32(y, xd, n);
                else memcpy(xd, x, (size_t)n * sizeof(float));
                double mag = 0;
                for (int64_t i = 0; i < n; i++) mag += fabs((double)wf[i] * xd[i]);
                float a = 0, b = 0;
                tr->vec_dot(n, &a, w, yy);
                tabs[ti]->vec_dot[t](n, &b, w, yy);
                if (!(fabs((double)a - b) <= 1e-5 * mag))
                    fail_msg("%s vec_dot %s: %.9g vs reference %.9g (terms %.3g)", tabs[ti]->name, tr->name, (double)b,
                             (double)a, mag);
            }
        }
    }
    free(x);
    free(wf);
    free(xd);
    free(w);
    free(y);
}

/* ---- MUL_MAT / MUL_MAT_ID through the backend ---- */

typedef struct mm_case {
    bool    id;
    int64_t k, m, n; /* id: m rows per expert, n tokens */
} mm_case;

/* Builds the graph; fills inputs with exact data. Returns the output, or NULL. */
static smoe_tensor *build_mm(smoe_graph *g, const mm_case *c, smoe_type t, gt_rng *r, gt_input *in, int *n_in,
                             void **owned) {
    const smoe_type_traits *tr = smoe_type_get_traits(t), *vt = smoe_type_get_traits(tr->vec_dot_type);
    const int64_t n_expert = 6, n_used = 2;
    const int64_t rows = c->id ? c->m * n_expert : c->m;
    smoe_tensor *w = NULL, *x = NULL, *ids = NULL, *o = NULL;
    if (c->id) {
        if (smoe_graph_new_tensor(g, t, 3, (int64_t[]){c->k, c->m, n_expert}, &w) != SMOE_OK) return NULL;
        if (smoe_graph_new_tensor(g, SMOE_TYPE_F32, 3, (int64_t[]){c->k, 1, c->n}, &x) != SMOE_OK) return NULL;
        if (smoe_graph_new_tensor(g, SMOE_TYPE_I32, 2, (int64_t[]){n_used, c->n}, &ids) != SMOE_OK) return NULL;
    } else {
        if (smoe_graph_new_tensor(g, t, 2, (int64_t[]){c->k, c->m}, &w) != SMOE_OK) return NULL;
        if (smoe_graph_new_tensor(g, SMOE_TYPE_F32, 2, (int64_t[]){c->k, c->n}, &x) != SMOE_OK) return NULL;
    }
    const size_t row = smoe_row_size(t, c->k);
    uint8_t *wd = malloc(row * (size_t)rows);
    for (int64_t i = 0; i < rows; i++) exact_weights(r, t, wd + (size_t)i * row, c->k);
    float *xd = malloc((size_t)(c->k * c->n) * sizeof(float));
    exact_acts(r, xd, c->k * c->n, vt->block_size > 1 ? vt->block_size : 32);
    in[0] = (gt_input){w, wd};
    in[1] = (gt_input){x, xd};
    owned[0] = wd, owned[1] = xd;
    *n_in = 2;
    if (c->id) {
        int32_t *idd = malloc((size_t)(n_used * c->n) * sizeof(int32_t));
        /* skewed routing: expert 0 gets many tokens (batched path), others few (row path), expert 5 none */
        for (int64_t tk = 0; tk < c->n; tk++) {
            idd[2 * tk] = tk % 3 == 2 ? (int32_t)(1 + gt_rng_next(r) % 3) : 0;
            idd[2 * tk + 1] = 4;
            if (tk % 7 == 3) idd[2 * tk + 1] = 1 + (int32_t)(gt_rng_next(r) % 2) * 2;
            if (idd[2 * tk + 1] == idd[2 * tk]) idd[2 * tk + 1] = 4;
        }
        in[2] = (gt_input){ids, idd};
        owned[2] = idd;
        *n_in = 3;
        if (smoe_mul_mat_id(g, w, x, ids, &o) != SMOE_OK) return NULL;
    } else {
        if (smoe_mul_mat(g, w, x, &o) != SMOE_OK) return NULL;
    }
    smoe_graph_set_output(o);
    return o;
}

static smoe_backend *cpu(int isa, int threads) {
    smoe_cpu_params p = smoe_cpu_default_params();
    p.isa = isa;
    p.n_threads = threads;
    smoe_backend *b = NULL;
    assert_int_equal(smoe_cpu_backend_init(&p, &b), SMOE_OK);
    return b;
}

static void test_matmul_exact(void **state) {
    (void)state;
    const smoe_cpu_kernels *tabs[8];
    const int nt = simd_tables(tabs);
    static const mm_case cases[] = {
        {false, 512, 37, 1}, {false, 512, 37, 5}, {false, 512, 21, 40}, {true, 512, 19, 1}, {true, 512, 23, 45},
    };
    smoe_backend *ref = cpu(SMOE_CPU_ISA_SCALAR, 2);
    for (int ti = 0; ti < nt; ti++) {
        smoe_backend *b1 = cpu(tabs[ti]->isa, 1), *b3 = cpu(tabs[ti]->isa, 3);
        for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
            for (size_t di = 0; di < N_DOT_TYPES; di++) {
                const smoe_type t = dot_types[di];
                gt_rng rng = {.s = 100 + ci * 16 + di};
                smoe_graph *g = NULL;
                assert_int_equal(smoe_graph_init(&g), SMOE_OK);
                gt_input in[3];
                void *owned[3] = {0};
                int n_in = 0;
                smoe_tensor *o = build_mm(g, &cases[ci], t, &rng, in, &n_in, owned);
                assert_non_null(o);
                const size_t nb = smoe_tensor_nbytes(o);
                uint8_t *want = malloc(nb), *got1 = malloc(nb), *got3 = malloc(nb);
                gt_output out_ref = {o, want}, out1 = {o, got1}, out3 = {o, got3};
                assert_int_equal(gt_run(&ref, 1, g, in, n_in, &out_ref, 1, 1, NULL), SMOE_OK);
                assert_int_equal(gt_run(&b1, 1, g, in, n_in, &out1, 1, 1, NULL), SMOE_OK);
                assert_int_equal(gt_run(&b3, 1, g, in, n_in, &out3, 1, 2, NULL), SMOE_OK);
                if (memcmp(want, got1, nb) != 0)
                    fail_msg("%s %s k=%ld m=%ld n=%ld %s: not bit-identical to the reference on exact data",
                             tabs[ti]->name, cases[ci].id ? "MUL_MAT_ID" : "MUL_MAT", (long)cases[ci].k,
                             (long)cases[ci].m, (long)cases[ci].n, smoe_type_name(t));
                if (memcmp(got1, got3, nb) != 0)
                    fail_msg("%s %s %s: 1 and 3 threads differ", tabs[ti]->name,
                             cases[ci].id ? "MUL_MAT_ID" : "MUL_MAT", smoe_type_name(t));
                free(want);
                free(got1);
                free(got3);
                for (int i = 0; i < 3; i++) free(owned[i]);
                smoe_graph_free(g);
            }
        }
        smoe_backend_free(b1);
        smoe_backend_free(b3);
    }
    smoe_backend_free(ref);
}

/* Fused attention (segmented for a long cache and few queries): the same SIMD table with 1 and 3 threads gives the
 * same bits, with F16 and Q8_0 caches. */
static void test_attention_threads(void **state) {
    (void)state;
    const smoe_cpu_kernels *tabs[8];
    const int nt = simd_tables(tabs);
    const smoe_type kv_types[] = {SMOE_TYPE_F16, SMOE_TYPE_Q8_0};
    for (int ti = 0; ti < nt; ti++) {
        smoe_backend *b1 = cpu(tabs[ti]->isa, 1), *b3 = cpu(tabs[ti]->isa, 3);
        for (size_t kt = 0; kt < 2; kt++) {
            for (int64_t n_tok = 1; n_tok <= 9; n_tok += 8) { /* 1: segmented cache; 9: one pass per query */
                const int64_t hd = 64, nh = 8, nkv = 2, nc = 2600;
                gt_rng rng = {.s = 500 + kt * 10 + (uint64_t)n_tok};
                smoe_graph *g = NULL;
                assert_int_equal(smoe_graph_init(&g), SMOE_OK);
                smoe_tensor *q, *k, *v, *qi, *ci, *ns, *o;
                assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 3, (int64_t[]){hd, nh, n_tok}, &q), SMOE_OK);
                assert_int_equal(smoe_graph_new_tensor(g, kv_types[kt], 3, (int64_t[]){hd, nkv, nc}, &k), SMOE_OK);
                assert_int_equal(smoe_graph_new_tensor(g, kv_types[kt], 3, (int64_t[]){hd, nkv, nc}, &v), SMOE_OK);
                assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 2, (int64_t[]){2, n_tok}, &qi), SMOE_OK);
                assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 2, (int64_t[]){2, nc}, &ci), SMOE_OK);
                assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 1, (int64_t[]){1}, &ns), SMOE_OK);
                assert_int_equal(smoe_attention(g, q, k, v, qi, ci, ns, 0.125f, &o), SMOE_OK);
                smoe_graph_set_output(o);
                float *qd = malloc((size_t)(hd * nh * n_tok) * sizeof(float)), *kf = malloc((size_t)(hd * nkv * nc) * 4);
                gt_fill(&rng, qd, hd * nh * n_tok, -1, 1);
                gt_fill(&rng, kf, hd * nkv * nc, -1, 1);
                void *kd = gt_encode(kv_types[kt], kf, hd, nkv * nc);
                gt_fill(&rng, kf, hd * nkv * nc, -1, 1);
                void *vd = gt_encode(kv_types[kt], kf, hd, nkv * nc);
                int32_t *qid = malloc((size_t)(2 * n_tok) * sizeof(int32_t)), *cid = malloc((size_t)(2 * nc) * 4);
                for (int64_t j = 0; j < nc; j++) cid[2 * j] = (int32_t)j, cid[2 * j + 1] = j % 7 == 6 ? -1 : 0;
                for (int64_t t = 0; t < n_tok; t++) qid[2 * t] = (int32_t)(nc - 1 - t), qid[2 * t + 1] = 0;
                int32_t nsd = (int32_t)nc;
                gt_input in[] = {{q, qd}, {k, kd}, {v, vd}, {qi, qid}, {ci, cid}, {ns, &nsd}};
                const size_t nb = smoe_tensor_nbytes(o);
                uint8_t *r1 = malloc(nb), *r3 = malloc(nb);
                gt_output o1 = {o, r1}, o3 = {o, r3};
                assert_int_equal(gt_run(&b1, 1, g, in, 6, &o1, 1, 1, NULL), SMOE_OK);
                assert_int_equal(gt_run(&b3, 1, g, in, 6, &o3, 1, 1, NULL), SMOE_OK);
                if (memcmp(r1, r3, nb) != 0)
                    fail_msg("%s attention %s n_tokens %ld: 1 and 3 threads differ", tabs[ti]->name,
                             smoe_type_name(kv_types[kt]), (long)n_tok);
                free(qd), free(kf), free(kd), free(vd), free(qid), free(cid), free(r1), free(r3);
                smoe_graph_free(g);
            }
        }
        smoe_backend_free(b1);
        smoe_backend_free(b3);
    }
}

/* the dispatcher: names round-trip, AUTO resolves to an available table, SCALAR always exists */
static void test_dispatch(void **state) {
    (void)state;
    assert_non_null(smoe_cpu_kernels_get(SMOE_CPU_ISA_SCALAR));
    const smoe_cpu_kernels *a = smoe_cpu_kernels_get(SMOE_CPU_ISA_AUTO);
    assert_non_null(a);
    assert_int_equal(a->isa, smoe_cpu_isa_best());
    assert_non_null(smoe_cpu_kernels_get(smoe_cpu_isa_best()));
    for (int i = 0; i < SMOE_CPU_ISA_COUNT; i++) assert_int_equal(smoe_cpu_isa_from_name(smoe_cpu_isa_name((smoe_cpu_isa)i)), i);
    assert_int_equal(smoe_cpu_isa_from_name("nonsense"), -1);
    assert_null(smoe_cpu_kernels_get((smoe_cpu_isa)99));
    print_message("  best: %s\n", smoe_cpu_isa_name(smoe_cpu_isa_best()));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch),     cmocka_unit_test(test_quantizers),  cmocka_unit_test(test_dot_exact),
        cmocka_unit_test(test_dot_random),   cmocka_unit_test(test_matmul_exact), cmocka_unit_test(test_attention_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
