/* test-quant.c - quantization formats: round-trip error bounds, dot products against a double-precision reference,
 * ragged rows, degenerate rows (zero, constant, tiny, huge), importance weights, thread safety, error metrics.
 * Bit-exactness against the gguf Python package lives in tests/python/test_quant_reference.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"

/* ---- deterministic random numbers (splitmix64 + Box-Muller) ---- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z          = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z          = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_uniform(rng *r) { return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }
static double rng_normal(rng *r) {
    double u = rng_uniform(r), v = rng_uniform(r);
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static void fill_normal(rng *r, float *x, int64_t n, double sigma) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(sigma * rng_normal(r));
}

/* The types with a quantizer, and the largest RMSE / sigma they may reach on N(0, sigma^2) rows of 4096.
 * Measured values (search quantizer): q8_0 0.0048, q4_0 0.081, q4_1 0.069, q5_0 0.040, q5_1 0.033, q4_k 0.070,
 * q5_k 0.034, q6_k 0.0167; the ideal uniform quantizers of these bit widths are near these numbers. */
static const struct {
    smoe_type type;
    double    max_rel_rmse;
} quant_types[] = {
    {SMOE_TYPE_Q8_0, 0.0055}, {SMOE_TYPE_Q4_0, 0.090}, {SMOE_TYPE_Q4_1, 0.077}, {SMOE_TYPE_Q5_0, 0.045},
    {SMOE_TYPE_Q5_1, 0.037},  {SMOE_TYPE_Q4_K, 0.078}, {SMOE_TYPE_Q5_K, 0.038}, {SMOE_TYPE_Q6_K, 0.019},
};
#define N_QUANT_TYPES (sizeof(quant_types) / sizeof(quant_types[0]))

static double rmse(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s / (double)n);
}

static double wsse(const float *a, const float *b, const float *w, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += w[i] * ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return s;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

/* ---- round trip ---- */

static void test_roundtrip_rmse(void **state) {
    (void)state;
    enum { N = 4096, ROWS = 16 };
    rng    r   = {42};
    float *x   = xmalloc(sizeof(float) * N * ROWS);
    float *y   = xmalloc(sizeof(float) * N * ROWS);
    void  *q   = xmalloc(smoe_row_size(SMOE_TYPE_Q8_0, N) * ROWS * 2);
    fill_normal(&r, x, (int64_t)N * ROWS, 0.02);
    for (size_t t = 0; t < N_QUANT_TYPES; t++) {
        const smoe_type type = quant_types[t].type;
        const size_t    row  = smoe_row_size(type, N);
        assert_true(row > 0);
        assert_int_equal(smoe_quantize_rows(type, x, q, ROWS, N), row * ROWS);
        assert_true(smoe_dequantize_row(type, q, y, (int64_t)N * ROWS));
        const double e = rmse(x, y, (int64_t)N * ROWS) / 0.02;
        print_message("  %-5s search rmse/sigma %.5f (bound %.4f)\n", smoe_type_name(type), e, quant_types[t].max_rel_rmse);
        assert_true(e < quant_types[t].max_rel_rmse);
        assert_true(e > quant_types[t].max_rel_rmse / 4); /* not suspiciously exact either */

        /* the reference quantizer of the same type: search must not be worse, row by row */
        const smoe_type_traits *tr = smoe_type_get_traits(type);
        float                  *yr = xmalloc(sizeof(float) * N);
        for (int i = 0; i < ROWS; i++) {
            tr->from_f32(x + (int64_t)i * N, q, N);
            tr->to_f32(q, yr, N);
            smoe_quantize_row(type, x + (int64_t)i * N, q, N, NULL);
            tr->to_f32(q, y, N);
            assert_true(rmse(x + (int64_t)i * N, y, N) <= rmse(x + (int64_t)i * N, yr, N) * (1 + 1e-9));
        }
        free(yr);
    }
    free(x);
    free(y);
    free(q);
}

/* heavy tails and outliers must not break anything: errors stay finite and bounded by the block range */
static void test_heavy_tails(void **state) {
    (void)state;
    enum { N = 1024 };
    rng    r = {7};
    float  x[N], y[N];
    void  *q = xmalloc(smoe_row_size(SMOE_TYPE_Q8_0, N));
    for (int i = 0; i < N; i++) {
        const double t = rng_normal(&r) / sqrt(fabs(rng_normal(&r)) + 1e-3); /* very heavy tailed */
        x[i]           = (float)(0.01 * t);
    }
    x[5]   = 30.0f;
    x[600] = -45.0f;
    for (size_t t = 0; t < N_QUANT_TYPES; t++) {
        const smoe_type type = quant_types[t].type;
        assert_int_equal(smoe_quantize_row(type, x, q, N, NULL), smoe_row_size(type, N));
        assert_true(smoe_dequantize_row(type, q, y, N));
        smoe_quant_error e = {0};
        assert_true(smoe_quant_error_add(&e, type, x, q, N));
        assert_int_equal(e.n_nonfinite, 0);
        assert_true(e.max_abs_err < 45.0 * 0.1); /* within a tenth of the largest magnitude */
    }
    free(q);
}

/* ---- dot products ---- */

static void test_vec_dot(void **state) {
    (void)state;
    const smoe_type types[] = {SMOE_TYPE_Q8_0, SMOE_TYPE_Q4_0, SMOE_TYPE_Q4_1, SMOE_TYPE_Q5_0, SMOE_TYPE_Q5_1,
                               SMOE_TYPE_Q4_K, SMOE_TYPE_Q5_K, SMOE_TYPE_Q6_K, SMOE_TYPE_F32,  SMOE_TYPE_F16,
                               SMOE_TYPE_BF16};
    enum { N = 4096 };
    rng    r = {1234};
    float *x = xmalloc(sizeof(float) * N), *a = xmalloc(sizeof(float) * N);
    float *xd = xmalloc(sizeof(float) * N), *ad = xmalloc(sizeof(float) * N);
    void  *qx = xmalloc(smoe_row_size(SMOE_TYPE_F32, N)), *qa = xmalloc(smoe_row_size(SMOE_TYPE_F32, N));
    for (int trial = 0; trial < 4; trial++) {
        fill_normal(&r, x, N, 0.02);
        fill_normal(&r, a, N, 1.0);
        if (trial == 1) a[17] = 40.0f; /* an activation outlier */
        if (trial == 2) {
            for (int i = 0; i < N; i++) a[i] = fabsf(a[i]) + 0.5f; /* all positive: the min terms matter */
        }
        double exact = 0, mag = 0;
        for (int i = 0; i < N; i++) {
            exact += (double)x[i] * a[i];
            mag += fabs((double)x[i] * a[i]);
        }
        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
            const smoe_type_traits *tx = smoe_type_get_traits(types[t]);
            const smoe_type_traits *ty = smoe_type_get_traits(tx->vec_dot_type);
            assert_non_null(tx->vec_dot);
            assert_int_equal(smoe_quantize_row(types[t], x, qx, N, NULL), smoe_row_size(types[t], N));
            ty->from_f32(a, qa, N);
            tx->to_f32(qx, xd, N);
            ty->to_f32(qa, ad, N);
            double ref = 0, refmag = 0;
            for (int i = 0; i < N; i++) {
                ref += (double)xd[i] * ad[i];
                refmag += fabs((double)xd[i] * ad[i]);
            }
            float got = NAN;
            tx->vec_dot(N, &got, qx, qa);
            /* against the same quantized operands in double: only float accumulation error */
            assert_true(fabs(got - ref) <= 2e-6 * refmag + 1e-30);
            /* against the unquantized operands: the quantization error, normalized as in ggml's tests */
            const double bound = tx->is_quantized ? 0.02 : 1e-3;
            assert_true(fabs(got - exact) <= bound * mag);
        }
    }
    free(x);
    free(a);
    free(xd);
    free(ad);
    free(qx);
    free(qa);
}

/* the F16 row dot converts with a branch-free routine: every half value, one at a time and in a vector-sized run,
 * must convert exactly as core/fp16.h does (NaN only needs to stay NaN) */
static void test_f16_dot_conversion(void **state) {
    (void)state;
    const smoe_type_traits *t = smoe_type_get_traits(SMOE_TYPE_F16);
    smoe_fp16               h[64];
    float                   ones[64], basis[64];
    for (int k = 0; k < 64; k++) ones[k] = 1.0f;
    for (uint32_t v = 0; v < 65536; v++) {
        const float want = smoe_fp16_to_f32((smoe_fp16)v);
        float       got  = 0.0f;
        h[0]             = (smoe_fp16)v;
        t->vec_dot(1, &got, h, ones);
        if (isnan(want)) {
            assert_true(isnan(got));
            continue;
        }
        /* (a sum starts at +0, so -0 comes out as +0) */
        if (smoe_f32_bits(got) != smoe_f32_bits(want) && !(want == 0.0f && got == 0.0f)) {
            fail_msg("fp16 0x%04x: %a, expected %a", v, got, want);
        }
        /* the same value inside a 64-element run (the vectorized path): pick it out with a one-hot activation */
        for (int k = 0; k < 64; k++) {
            h[k]     = (smoe_fp16)(v ^ (uint32_t)(k * 977));
            basis[k] = 0.0f;
        }
        h[37]     = (smoe_fp16)v;
        basis[37] = 1.0f;
        for (int k = 0; k < 64; k++) {
            if (k != 37 && isnan(smoe_fp16_to_f32(h[k]))) h[k] = 0; /* NaN * 0 would poison the sum */
            if (k != 37 && isinf(smoe_fp16_to_f32(h[k]))) h[k] = 0;
        }
        t->vec_dot(64, &got, h, basis);
        if (smoe_f32_bits(got) != smoe_f32_bits(want) && !(want == 0.0f && got == 0.0f)) {
            fail_msg("fp16 0x%04x in a run: %a, expected %a", v, got, want);
        }
    }
}

static void test_q8_k_bsums(void **state) {
    (void)state;
    rng   r = {99};
    float x[512], y[512];
    fill_normal(&r, x, 512, 3.0);
    smoe_block_q8_k b[2];
    smoe_quant_q8_k_ref(x, b, 512);
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += b[i].qs[16 * j + l];
            assert_int_equal(s, b[i].bsums[j]);
        }
    }
    smoe_dequant_q8_k(b, y, 512);
    assert_true(rmse(x, y, 512) < 3.0 * 0.012);
}

/* ---- ragged and degenerate rows ---- */

static void test_ragged_rejected(void **state) {
    (void)state;
    float x[300] = {0};
    char  out[1024];
    const struct {
        smoe_type t;
        int64_t   n;
    } cases[] = {{SMOE_TYPE_Q4_0, 33}, {SMOE_TYPE_Q8_0, 31}, {SMOE_TYPE_Q5_1, 48}, {SMOE_TYPE_Q4_K, 255},
                 {SMOE_TYPE_Q5_K, 288}, {SMOE_TYPE_Q6_K, 64}, {SMOE_TYPE_Q8_K, 32}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(smoe_row_size(cases[i].t, cases[i].n), 0);
        assert_int_equal(smoe_quantize_row(cases[i].t, x, out, cases[i].n, NULL), 0);
        assert_int_equal(smoe_quantize_rows(cases[i].t, x, out, 1, cases[i].n), 0);
        assert_false(smoe_dequantize_row(cases[i].t, out, x, cases[i].n));
        smoe_quant_error e = {0};
        assert_false(smoe_quant_error_add(&e, cases[i].t, x, out, cases[i].n));
    }
    assert_int_equal(smoe_row_size(SMOE_TYPE_Q4_0, 64), 36);
    assert_int_equal(smoe_row_size(SMOE_TYPE_Q6_K, 512), 420);
    /* types without a quantizer are refused, not crashed on */
    assert_int_equal(smoe_quantize_row(SMOE_TYPE_Q2_K, x, out, 256, NULL), 0);
    assert_int_equal(smoe_quantize_row((smoe_type)4, x, out, 32, NULL), 0);
}

static void check_degenerate(const float *x, int64_t n, double tol_rel, double tol_abs) {
    float *y = xmalloc(sizeof(float) * (size_t)n);
    void  *q = xmalloc(smoe_row_size(SMOE_TYPE_F32, n));
    for (size_t t = 0; t < N_QUANT_TYPES; t++) {
        const smoe_type type = quant_types[t].type;
        for (int mode = 0; mode < 2; mode++) {
            if (mode == 0) assert_int_equal(smoe_quantize_row(type, x, q, n, NULL), smoe_row_size(type, n));
            else smoe_type_get_traits(type)->from_f32(x, q, n);
            assert_true(smoe_dequantize_row(type, q, y, n));
            for (int64_t i = 0; i < n; i++) {
                assert_true(isfinite(y[i]));
                /* the reference quantizers are ggml's: they clip the positive extreme of symmetric types (a
                 * block of +-1000 becomes +875/-1000 in q4_0), so only their zero rows are held to the bound */
                if (mode == 1 && x[i] != 0.0f) continue;
                if (fabs((double)y[i] - x[i]) > tol_rel * fabs((double)x[i]) + tol_abs) {
                    fail_msg("%s (%s) element %lld: %g -> %g", smoe_type_name(type), mode ? "ref" : "search",
                             (long long)i, (double)x[i], (double)y[i]);
                }
            }
        }
    }
    free(y);
    free(q);
}

static void test_degenerate_rows(void **state) {
    (void)state;
    enum { N = 512 };
    float x[N];
    memset(x, 0, sizeof(x));
    check_degenerate(x, N, 0, 0); /* zeros stay exactly zero */
    for (int i = 0; i < N; i++) x[i] = 0.75f;
    check_degenerate(x, N, 2e-3, 0); /* a constant: within fp16 / 6-bit-scale resolution */
    for (int i = 0; i < N; i++) x[i] = -0.3f;
    check_degenerate(x, N, 2e-3, 0);
    for (int i = 0; i < N; i++) x[i] = (i % 7 == 0) ? 1e-30f : 0.0f; /* below fp16 range: flushes, no NaN */
    check_degenerate(x, N, 0, 1e-29);
    for (int i = 0; i < N; i++) x[i] = (i & 1) ? 1000.0f : -1000.0f; /* large values */
    check_degenerate(x, N, 0.01, 0);
    for (int i = 0; i < N; i++) x[i] = (i == 3) ? 5.0f : 0.0f; /* one spike */
    check_degenerate(x, N, 0.01, 0);
}

/* ---- importance weights ---- */

static void test_imatrix(void **state) {
    (void)state;
    enum { N = 2048, ROWS = 8 };
    rng    r = {5};
    float *x = xmalloc(sizeof(float) * N * ROWS), *w = xmalloc(sizeof(float) * N), *y = xmalloc(sizeof(float) * N);
    void  *q = xmalloc(smoe_row_size(SMOE_TYPE_Q8_0, N));
    fill_normal(&r, x, (int64_t)N * ROWS, 1.0);
    for (int i = 0; i < N; i++) w[i] = (float)(rng_uniform(&r) < 0.1 ? 50.0 : 0.2 + rng_uniform(&r)); /* few hot columns */
    for (size_t t = 0; t < N_QUANT_TYPES; t++) {
        const smoe_type type = quant_types[t].type;
        double          e_w = 0, e_u = 0;
        for (int i = 0; i < ROWS; i++) {
            const float *xi = x + (int64_t)i * N;
            smoe_quantize_row(type, xi, q, N, w);
            smoe_dequantize_row(type, q, y, N);
            e_w += wsse(xi, y, w, N);
            smoe_quantize_row(type, xi, q, N, NULL);
            smoe_dequantize_row(type, q, y, N);
            e_u += wsse(xi, y, w, N);
        }
        print_message("  %-5s weighted error with imatrix / without: %.3f\n", smoe_type_name(type), e_w / e_u);
        assert_true(e_w < e_u);
    }
    /* an all-zero imatrix must not produce NaN */
    memset(w, 0, sizeof(float) * N);
    for (size_t t = 0; t < N_QUANT_TYPES; t++) {
        smoe_quantize_row(quant_types[t].type, x, q, N, w);
        smoe_dequantize_row(quant_types[t].type, q, y, N);
        for (int i = 0; i < N; i++) assert_true(isfinite(y[i]));
    }
    free(x);
    free(w);
    free(y);
    free(q);
}

/* ---- thread safety: halves quantized on two threads equal one call ---- */

typedef struct job {
    smoe_type    type;
    const float *src;
    void        *dst;
    int64_t      rows, n;
    size_t       ret;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    j->ret = smoe_quantize_rows(j->type, j->src, j->dst, j->rows, j->n);
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    enum { N = 512, ROWS = 16 };
    rng    r = {77};
    float *x = xmalloc(sizeof(float) * N * ROWS);
    fill_normal(&r, x, (int64_t)N * ROWS, 0.05);
    for (size_t t = 0; t < N_QUANT_TYPES; t++) {
        const smoe_type type = quant_types[t].type;
        const size_t    row  = smoe_row_size(type, N);
        char           *a = xmalloc(row * ROWS), *b = xmalloc(row * ROWS);
        assert_int_equal(smoe_quantize_rows(type, x, a, ROWS, N), row * ROWS);
        job       j[2] = {{type, x, b, ROWS / 2, N, 0}, {type, x + (ROWS / 2) * N, b + row * (ROWS / 2), ROWS / 2, N, 0}};
        pthread_t th[2];
        for (int k = 0; k < 2; k++) assert_int_equal(pthread_create(&th[k], NULL, run_job, &j[k]), 0);
        for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
        assert_int_equal(j[0].ret + j[1].ret, row * ROWS);
        assert_memory_equal(a, b, row * ROWS);
        free(a);
        free(b);
    }
    free(x);
}

/* ---- metrics ---- */

static void test_error_metrics(void **state) {
    (void)state;
    /* F32 "quantization" is exact; F16 of 1 + 2^-11 rounds to 1 (ties to even): error 2^-11 */
    float x[4] = {1.0f, -2.0f, 1.0f + 1.0f / 2048.0f, 0.0f};
    smoe_fp16         h[4];
    smoe_quant_error  e = {0};
    assert_int_equal(smoe_quantize_row(SMOE_TYPE_F16, x, h, 4, NULL), 8);
    assert_true(smoe_quant_error_add(&e, SMOE_TYPE_F16, x, h, 4));
    assert_int_equal(e.n, 4);
    assert_true(fabs(e.max_abs_err - 1.0 / 2048.0) < 1e-12);
    assert_true(fabs(smoe_quant_error_rmse(&e) - sqrt(1.0 / (2048.0 * 2048.0) / 4.0)) < 1e-12);
    const double src2 = 1.0 + 4.0 + (1.0 + 1.0 / 2048.0) * (1.0 + 1.0 / 2048.0);
    assert_true(fabs(e.sum_sq_src - src2) < 1e-9);
    smoe_quant_error f = {0};
    assert_true(smoe_quant_error_add(&f, SMOE_TYPE_F32, x, x, 4));
    assert_true(smoe_quant_error_rmse(&f) == 0.0);
    smoe_quant_error_merge(&f, &e);
    assert_int_equal(f.n, 8);
    assert_true(fabs(f.max_abs_err - 1.0 / 2048.0) < 1e-12);
    smoe_quant_error z = {0};
    assert_true(smoe_quant_error_nmse(&z) == 0.0);

    /* a long row crosses the internal chunking: compare with a direct computation */
    enum { N = 3 * 1024 + 256 };
    rng    r  = {3};
    float *xs = xmalloc(sizeof(float) * N), *ys = xmalloc(sizeof(float) * N);
    void  *q  = xmalloc(smoe_row_size(SMOE_TYPE_Q8_0, N));
    fill_normal(&r, xs, N, 1.0);
    smoe_quantize_row(SMOE_TYPE_Q4_K, xs, q, N, NULL);
    smoe_dequantize_row(SMOE_TYPE_Q4_K, q, ys, N);
    smoe_quant_error g = {0};
    assert_true(smoe_quant_error_add(&g, SMOE_TYPE_Q4_K, xs, q, N));
    assert_true(fabs(smoe_quant_error_rmse(&g) - rmse(xs, ys, N)) < 1e-9);
    assert_false(smoe_quant_all_finite((const float[]){1.0f, INFINITY}, 2));
    assert_false(smoe_quant_all_finite((const float[]){NAN}, 1));
    assert_true(smoe_quant_all_finite(xs, N));
    free(xs);
    free(ys);
    free(q);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_rmse), cmocka_unit_test(test_heavy_tails),   cmocka_unit_test(test_vec_dot),
        cmocka_unit_test(test_f16_dot_conversion), cmocka_unit_test(test_q8_k_bsums),     cmocka_unit_test(test_ragged_rejected), cmocka_unit_test(test_degenerate_rows),
        cmocka_unit_test(test_imatrix),        cmocka_unit_test(test_threads),       cmocka_unit_test(test_error_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
