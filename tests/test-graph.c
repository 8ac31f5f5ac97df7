/* test-graph.c - graph ops on the CPU backend against double-precision math written here; the liveness planner;
 * the scheduler split over two CPU backends; re-running a graph; bad op construction.
 * Shapes have ragged edges: k not a multiple of 32, n = 1 and 7, GQA 4:2, several sequences, masked cells, unused
 * experts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fp16.h"
#include "core/plan.h"
#include "graph-test-util.h"

static smoe_backend *cpu3; /* 3 threads */

static int setup(void **state) {
    (void)state;
    smoe_cpu_params p = smoe_cpu_default_params();
    p.n_threads = 3;
    return smoe_cpu_backend_init(&p, &cpu3) == SMOE_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    smoe_backend_free(cpu3);
    return 0;
}

/* max |a - b| / max(1, max |b|) */
static double rel_err(const float *a, const double *b, int64_t n) {
    double m = 0.0, d = 0.0;
    for (int64_t i = 0; i < n; i++) {
        m = fmax(m, fabs(b[i]));
        d = fmax(d, fabs((double)a[i] - b[i]));
    }
    return d / fmax(1.0, m);
}

static double nmse(const float *a, const double *b, int64_t n) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

static smoe_tensor *input(smoe_graph *g, smoe_type type, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2) {
    int64_t ne[3] = {ne0, ne1, ne2};
    smoe_tensor *t = NULL;
    assert_int_equal(smoe_graph_new_tensor(g, type, n_dims, ne, &t), SMOE_OK);
    return t;
}

static smoe_status run1(smoe_graph *g, const gt_input *in, int n_in, smoe_tensor *out, void *out_data) {
    smoe_graph_set_output(out);
    gt_output o = {out, out_data};
    return gt_run(&cpu3, 1, g, in, n_in, &o, 1, 1, NULL);
}

/* ---- GET_ROWS ---- */

static void test_get_rows(void **state) {
    (void)state;
    const smoe_type types[] = {SMOE_TYPE_F32, SMOE_TYPE_F16, SMOE_TYPE_Q8_0, SMOE_TYPE_Q4_0};
    gt_rng r = {1};
    for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
        const smoe_type type = types[ti];
        const smoe_type_traits *tr = smoe_type_get_traits(type);
        if (!tr->to_f32 || !tr->from_f32) continue;
        const int64_t n_embd = tr->block_size == 1 ? 37 : 96, n_rows = 11, n = 7;
        float *table = malloc(sizeof(float) * (size_t)(n_embd * n_rows));
        gt_fill(&r, table, n_embd * n_rows, -2, 2);
        void *enc = gt_encode(type, table, n_embd, n_rows);
        float *dec = malloc(sizeof(float) * (size_t)(n_embd * n_rows));
        gt_decode(type, enc, dec, n_embd, n_rows); /* what the table holds */
        int32_t ids[7] = {3, 0, 10, 3, 7, 1, 10};
        smoe_graph *g = NULL;
        assert_int_equal(smoe_graph_init(&g), SMOE_OK);
        smoe_tensor *tt = input(g, type, 2, n_embd, n_rows, 1), *it = input(g, SMOE_TYPE_I32, 1, n, 1, 1), *o = NULL;
        assert_int_equal(smoe_get_rows(g, tt, it, &o), SMOE_OK);
        float out[96 * 7];
        gt_input in[] = {{tt, enc}, {it, ids}};
        assert_int_equal(run1(g, in, 2, o, out), SMOE_OK);
        for (int64_t i = 0; i < n; i++)
            for (int64_t e = 0; e < n_embd; e++) assert_true(out[i * n_embd + e] == dec[ids[i] * n_embd + e]);
        /* an id out of range fails the compute instead of reading past the table */
        int32_t bad[7] = {0, 1, 2, 11, 0, 0, 0};
        gt_input in_bad[] = {{tt, enc}, {it, bad}};
        assert_int_equal(run1(g, in_bad, 2, o, out), SMOE_ERR_INVALID_ARGUMENT);
        smoe_graph_free(g);
        free(table);
        free(enc);
        free(dec);
    }
}

/* ---- RMS_NORM ---- */

static void test_rms_norm(void **state) {
    (void)state;
    gt_rng r = {2};
    const int64_t n = 67, rows = 7;
    float x[67 * 7], w[67], out[67 * 7];
    double ref[67 * 7];
    gt_fill(&r, x, n * rows, -3, 3);
    gt_fill(&r, w, n, 0.5, 1.5);
    const float eps = 1e-5f;
    for (int64_t j = 0; j < rows; j++) {
        double ss = 0;
        for (int64_t i = 0; i < n; i++) ss += (double)x[j * n + i] * x[j * n + i];
        double scale = 1.0 / sqrt(ss / n + eps);
        for (int64_t i = 0; i < n; i++) ref[j * n + i] = x[j * n + i] * scale * w[i];
    }
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *xt = input(g, SMOE_TYPE_F32, 2, n, rows, 1), *wt = input(g, SMOE_TYPE_F32, 1, n, 1, 1), *o = NULL;
    assert_int_equal(smoe_rms_norm(g, xt, wt, eps, &o), SMOE_OK);
    gt_input in[] = {{xt, x}, {wt, w}};
    assert_int_equal(run1(g, in, 2, o, out), SMOE_OK);
    assert_true(rel_err(out, ref, n * rows) < 1e-6);
    smoe_graph_free(g);
}

/* ---- MUL_MAT ---- */

static void ref_mul_mat(const float *w, const float *x, double *out, int64_t k, int64_t m, int64_t n) {
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < m; i++) {
            double s = 0;
            for (int64_t l = 0; l < k; l++) s += (double)w[i * k + l] * x[j * k + l];
            out[j * m + i] = s;
        }
}

static void check_mul_mat(smoe_type type, int64_t k, int64_t m, int64_t n, double max_nmse) {
    gt_rng r = {(uint64_t)(3 + type * 100 + k + n)};
    float *w = malloc(sizeof(float) * (size_t)(k * m)), *x = malloc(sizeof(float) * (size_t)(k * n));
    float *wd = malloc(sizeof(float) * (size_t)(k * m)), *out = malloc(sizeof(float) * (size_t)(m * n));
    double *ref = malloc(sizeof(double) * (size_t)(m * n));
    gt_fill(&r, w, k * m, -1, 1);
    gt_fill(&r, x, k * n, -1, 1);
    void *enc = gt_encode(type, w, k, m);
    gt_decode(type, enc, wd, k, m); /* the reference uses the weights the tensor holds */
    ref_mul_mat(wd, x, ref, k, m, n);
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *wt = input(g, type, 2, k, m, 1), *xt = input(g, SMOE_TYPE_F32, 2, k, n, 1), *o = NULL;
    assert_int_equal(smoe_mul_mat(g, wt, xt, &o), SMOE_OK);
    assert_int_equal(o->ne[0], m);
    assert_int_equal(o->ne[1], n);
    gt_input in[] = {{wt, enc}, {xt, x}};
    assert_int_equal(run1(g, in, 2, o, out), SMOE_OK);
    double e = nmse(out, ref, m * n);
    if (!(e < max_nmse)) fprintf(stderr, "MUL_MAT %s k=%ld m=%ld n=%ld nmse %g\n", smoe_type_name(type), (long)k,
                                 (long)m, (long)n, e);
    assert_true(e < max_nmse);
    smoe_graph_free(g);
    free(w), free(x), free(wd), free(out), free(ref), free(enc);
}

static void test_mul_mat(void **state) {
    (void)state;
    check_mul_mat(SMOE_TYPE_F32, 67, 13, 1, 1e-12);
    check_mul_mat(SMOE_TYPE_F32, 67, 13, 7, 1e-12);
    check_mul_mat(SMOE_TYPE_F32, 300, 5, 40, 1e-12); /* n > m: split over activation rows */
    check_mul_mat(SMOE_TYPE_F16, 67, 13, 7, 1e-12);
    check_mul_mat(SMOE_TYPE_BF16, 45, 9, 7, 1e-12);
    /* quantized weights: activations are rounded to q8_0 / q8_k too, hence the looser bounds */
    if (smoe_type_get_traits(SMOE_TYPE_Q8_0)->to_f32) {
        check_mul_mat(SMOE_TYPE_Q8_0, 96, 13, 1, 1e-4);
        check_mul_mat(SMOE_TYPE_Q8_0, 96, 13, 7, 1e-4);
    }
    if (smoe_type_get_traits(SMOE_TYPE_Q4_0)->to_f32) check_mul_mat(SMOE_TYPE_Q4_0, 160, 11, 7, 1e-4);
    if (smoe_type_get_traits(SMOE_TYPE_Q4_K)->to_f32) check_mul_mat(SMOE_TYPE_Q4_K, 512, 9, 7, 1e-4);
}

/* ---- MUL_MAT_ID ---- */

static void check_mul_mat_id(int64_t n_x) {
    gt_rng r = {40 + (uint64_t)n_x};
    const int64_t k = 67, m = 13, n_expert = 6, n_used = 2, n_tokens = 7;
    float *w = malloc(sizeof(float) * (size_t)(k * m * n_expert));
    float x[67 * 2 * 7], out[13 * 2 * 7];
    double ref[13 * 2 * 7];
    gt_fill(&r, w, k * m * n_expert, -1, 1);
    gt_fill(&r, x, k * n_x * n_tokens, -1, 1);
    /* experts 2 and 5 are never chosen: fill them with NaN to prove their rows are never read */
    for (int64_t i = 0; i < k * m; i++) w[2 * k * m + i] = w[5 * k * m + i] = NAN;
    int32_t ids[2 * 7] = {0, 1, 1, 0, 3, 4, 4, 3, 0, 0 + 3, 1, 4, 3, 1};
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t s = 0; s < n_used; s++) {
            const int e = ids[t * n_used + s];
            const float *xs = x + (n_x == 1 ? t : t * n_used + s) * k;
            for (int64_t i = 0; i < m; i++) {
                double acc = 0;
                for (int64_t l = 0; l < k; l++) acc += (double)w[(e * m + i) * k + l] * xs[l];
                ref[(t * n_used + s) * m + i] = acc;
            }
        }
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *wt = input(g, SMOE_TYPE_F32, 3, k, m, n_expert), *xt = input(g, SMOE_TYPE_F32, 3, k, n_x, n_tokens);
    smoe_tensor *it = input(g, SMOE_TYPE_I32, 2, n_used, n_tokens, 1), *o = NULL;
    assert_int_equal(smoe_mul_mat_id(g, wt, xt, it, &o), SMOE_OK);
    gt_input in[] = {{wt, w}, {xt, x}, {it, ids}};
    assert_int_equal(run1(g, in, 3, o, out), SMOE_OK);
    assert_true(rel_err(out, ref, m * n_used * n_tokens) < 1e-6);
    ids[3] = 6; /* out of range */
    assert_int_equal(run1(g, in, 3, o, out), SMOE_ERR_INVALID_ARGUMENT);
    smoe_graph_free(g);
    free(w);
}

static void test_mul_mat_id(void **state) {
    (void)state;
    check_mul_mat_id(1);
    check_mul_mat_id(2);
}

/* ---- ROPE ---- */

static void check_rope(int n_rot) {
    gt_rng r = {50};
    const int64_t hd = 16, nh = 3, nt = 7;
    float x[16 * 3 * 7], out[16 * 3 * 7];
    double ref[16 * 3 * 7];
    gt_fill(&r, x, hd * nh * nt, -1, 1);
    int32_t pos[7] = {0, 1, 2, 17, 100, 4095, 32767};
    const double base = 1e6;
    for (int64_t t = 0; t < nt; t++)
        for (int64_t h = 0; h < nh; h++) {
            const float *v = x + (t * nh + h) * hd;
            double *o = ref + (t * nh + h) * hd;
            for (int64_t i = 0; i < hd; i++) o[i] = v[i];
            for (int i = 0; i < n_rot / 2; i++) {
                double th = pos[t] * pow(base, -2.0 * i / n_rot);
                o[2 * i] = v[2 * i] * cos(th) - v[2 * i + 1] * sin(th);
                o[2 * i + 1] = v[2 * i] * sin(th) + v[2 * i + 1] * cos(th);
            }
        }
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *xt = input(g, SMOE_TYPE_F32, 3, hd, nh, nt), *pt = input(g, SMOE_TYPE_I32, 1, nt, 1, 1), *o = NULL;
    smoe_op_rope_params p = {.n_rot = n_rot, .theta_base = (float)base, .freq_scale = 1.0f};
    assert_int_equal(smoe_rope(g, xt, pt, &p, &o), SMOE_OK);
    gt_input in[] = {{xt, x}, {pt, pos}};
    assert_int_equal(run1(g, in, 2, o, out), SMOE_OK);
    assert_true(rel_err(out, ref, hd * nh * nt) < 1e-6);
    smoe_graph_free(g);
}

static void test_rope(void **state) {
    (void)state;
    check_rope(16);
    check_rope(10); /* partial rotation: dims 10..15 pass through */
}

/* ---- KV_WRITE + ATTENTION: two sequences, GQA 4:2, empty cells, a persistent cache written over two runs ---- */

static float to_cache(smoe_type type, float v) {
    return type == SMOE_TYPE_F16 ? smoe_fp16_to_f32(smoe_f32_to_fp16(v)) : v;
}

static void check_attention(smoe_type cache_type) {
    gt_rng r = {60};
    enum { HD = 16, NH = 4, NKV = 2, NC = 20, NT = 7 };
    const float scale = 0.25f;
    /* the persistent cache, bound by us like a KV cache would be */
    smoe_arena *arena = NULL;
    assert_int_equal(smoe_arena_init(0, &arena), SMOE_OK);
    int64_t cne[3] = {HD, NKV, NC};
    smoe_tensor *kc = NULL, *vc = NULL;
    assert_int_equal(smoe_tensor_new(arena, cache_type, 3, cne, &kc), SMOE_OK);
    assert_int_equal(smoe_tensor_new(arena, cache_type, 3, cne, &vc), SMOE_OK);
    smoe_tensor_set_flags(kc, SMOE_TENSOR_PERSISTENT);
    smoe_tensor_set_flags(vc, SMOE_TENSOR_PERSISTENT);
    const size_t cbytes = smoe_tensor_nbytes(kc);
    smoe_buffer *buf = NULL;
    assert_int_equal(smoe_backend_buffer_alloc(cpu3, 2 * cbytes + 64, &buf), SMOE_OK);
    assert_int_equal(smoe_buffer_clear(buf, 0), SMOE_OK);
    assert_int_equal(smoe_tensor_bind(kc, buf, 0), SMOE_OK);
    assert_int_equal(smoe_tensor_bind(vc, buf, (cbytes + 63) / 64 * 64), SMOE_OK);

    /* host mirror of the cache contents and cell metadata */
    static float kh[NC][NKV][HD], vh[NC][NKV][HD];
    int32_t cell_info[2 * NC];
    for (int j = 0; j < NC; j++) cell_info[2 * j] = 0, cell_info[2 * j + 1] = -1;

    /* run 1: prompt of 4 tokens for seq 0 (cells 0..3) and 3 tokens for seq 1 (cells 4..6)
     * run 2: one more token each (cells 8 and 7), cell 9 stays empty, n_scan = 12 */
    for (int run = 0; run < 2; run++) {
        const int nt = run == 0 ? NT : 2;
        int32_t cells[NT], q_info[2 * NT];
        if (run == 0) {
            for (int t = 0; t < 4; t++) cells[t] = t, q_info[2 * t] = t, q_info[2 * t + 1] = 0;
            for (int t = 4; t < 7; t++) cells[t] = t, q_info[2 * t] = t - 4, q_info[2 * t + 1] = 1;
        } else {
            cells[0] = 8, q_info[0] = 4, q_info[1] = 0;
            cells[1] = 7, q_info[2] = 3, q_info[3] = 1;
        }
        int32_t n_scan = run == 0 ? 7 : 12;
        static float q[NT][NH][HD], kr[NT][NKV][HD], vr[NT][NKV][HD], out[NT][NH][HD];
        gt_fill(&r, &q[0][0][0], nt * NH * HD, -1, 1);
        gt_fill(&r, &kr[0][0][0], nt * NKV * HD, -1, 1);
        gt_fill(&r, &vr[0][0][0], nt * NKV * HD, -1, 1);
        for (int t = 0; t < nt; t++) {
            cell_info[2 * cells[t]] = q_info[2 * t];
            cell_info[2 * cells[t] + 1] = q_info[2 * t + 1];
            for (int h = 0; h < NKV; h++)
                for (int d = 0; d < HD; d++) {
                    kh[cells[t]][h][d] = to_cache(cache_type, kr[t][h][d]);
                    vh[cells[t]][h][d] = to_cache(cache_type, vr[t][h][d]);
                }
        }
        smoe_graph *g = NULL;
        assert_int_equal(smoe_graph_init(&g), SMOE_OK);
        smoe_tensor *qt = input(g, SMOE_TYPE_F32, 3, HD, NH, nt), *krt = input(g, SMOE_TYPE_F32, 3, HD, NKV, nt);
        smoe_tensor *vrt = input(g, SMOE_TYPE_F32, 3, HD, NKV, nt), *ct = input(g, SMOE_TYPE_I32, 1, nt, 1, 1);
        smoe_tensor *qi = input(g, SMOE_TYPE_I32, 2, 2, nt, 1), *ci = input(g, SMOE_TYPE_I32, 2, 2, NC, 1);
        smoe_tensor *ns = input(g, SMOE_TYPE_I32, 1, 1, 1, 1);
        smoe_tensor *kw = NULL, *vw = NULL, *o = NULL;
        assert_int_equal(smoe_kv_write(g, kc, krt, ct, &kw), SMOE_OK);
        assert_int_equal(smoe_kv_write(g, vc, vrt, ct, &vw), SMOE_OK);
        assert_ptr_equal(kw->view_src, kc);
        assert_int_equal(smoe_attention(g, qt, kw, vw, qi, ci, ns, scale, &o), SMOE_OK);
        gt_input in[] = {{qt, q}, {krt, kr}, {vrt, vr}, {ct, cells}, {qi, q_info}, {ci, cell_info}, {ns, &n_scan}};
        assert_int_equal(run1(g, in, 7, o, out), SMOE_OK);

        /* reference: full softmax in double over the visible cells */
        double max_err = 0;
        for (int t = 0; t < nt; t++)
            for (int h = 0; h < NH; h++) {
                const int hk = h / (NH / NKV);
                double sc[NC], mx = -INFINITY, sum = 0, ref[HD] = {0};
                int any = 0;
                for (int j = 0; j < n_scan; j++) {
                    sc[j] = -INFINITY;
                    if (cell_info[2 * j + 1] != q_info[2 * t + 1] || cell_info[2 * j] > q_info[2 * t]) continue;
                    double s = 0;
                    for (int d = 0; d < HD; d++) s += (double)q[t][h][d] * kh[j][hk][d];
                    sc[j] = s * scale;
                    mx = fmax(mx, sc[j]);
                    any = 1;
                }
                if (any) {
                    for (int j = 0; j < n_scan; j++) sum += sc[j] == -INFINITY ? 0 : exp(sc[j] - mx);
                    for (int j = 0; j < n_scan; j++) {
                        if (sc[j] == -INFINITY) continue;
                        double p = exp(sc[j] - mx) / sum;
                        for (int d = 0; d < HD; d++) ref[d] += p * vh[j][hk][d];
                    }
                }
                for (int d = 0; d < HD; d++) max_err = fmax(max_err, fabs(out[t][h][d] - ref[d]));
            }
        assert_true(max_err < 1e-5);
        /* the cache holds the written rows (in place) */
        static float kback[NC * NKV * HD];
        uint8_t *raw = malloc(cbytes);
        assert_int_equal(smoe_tensor_get(kc, raw, 0, cbytes), SMOE_OK);
        gt_decode(cache_type, raw, kback, HD, NC * NKV);
        for (int t = 0; t < nt; t++)
            for (int d = 0; d < HD; d++) assert_true(kback[(cells[t] * NKV + 1) * HD + d] == kh[cells[t]][1][d]);
        free(raw);
        smoe_graph_free(g);
    }
    smoe_buffer_free(buf);
    smoe_arena_free(arena);
}

static void test_attention(void **state) {
    (void)state;
    check_attention(SMOE_TYPE_F32);
    check_attention(SMOE_TYPE_F16);
}

/* a query that sees no cell (other sequence only) gets zeros; n_scan is clamped */
static void test_attention_empty(void **state) {
    (void)state;
    enum { HD = 8, NC = 4 };
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *q = input(g, SMOE_TYPE_F32, 3, HD, 2, 1), *k = input(g, SMOE_TYPE_F32, 3, HD, 1, NC);
    smoe_tensor *v = input(g, SMOE_TYPE_F32, 3, HD, 1, NC), *qi = input(g, SMOE_TYPE_I32, 2, 2, 1, 1);
    smoe_tensor *ci = input(g, SMOE_TYPE_I32, 2, 2, NC, 1), *ns = input(g, SMOE_TYPE_I32, 1, 1, 1, 1), *o = NULL;
    assert_int_equal(smoe_attention(g, q, k, v, qi, ci, ns, 1.0f, &o), SMOE_OK);
    float qd[2 * HD], kd[HD * NC], vd[HD * NC], out[2 * HD];
    for (int i = 0; i < 2 * HD; i++) qd[i] = 1.0f;
    for (int i = 0; i < HD * NC; i++) kd[i] = vd[i] = 1.0f;
    int32_t qinfo[2] = {5, 3}, cinfo[2 * NC] = {0, 1, 1, 1, 2, -1, 3, 2}, n_scan = 1000;
    gt_input in[] = {{q, qd}, {k, kd}, {v, vd}, {qi, qinfo}, {ci, cinfo}, {ns, &n_scan}};
    assert_int_equal(run1(g, in, 6, o, out), SMOE_OK);
    for (int i = 0; i < 2 * HD; i++) assert_true(out[i] == 0.0f);
    smoe_graph_free(g);
}

/* ---- MOE_ROUTE + MOE_COMBINE ---- */

static void test_moe(void **state) {
    (void)state;
    gt_rng r = {70};
    enum { NE = 8, NU = 2, NT = 7, NEMBD = 37 };
    float logits[NT][NE], y[NT][NU][NEMBD], out[NT][NEMBD];
    int32_t ids[NT][NU];
    gt_fill(&r, &logits[0][0], NT * NE, -3, 3);
    gt_fill(&r, &y[0][0][0], NT * NU * NEMBD, -1, 1);
    /* ties: token 1 has three equal maxima at 2, 5, 7 -> 2 then 5; token 2 all equal -> 0, 1 */
    logits[1][2] = logits[1][5] = logits[1][7] = 10.0f;
    for (int e = 0; e < NE; e++) logits[2][e] = 0.5f;
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *lt = input(g, SMOE_TYPE_F32, 2, NE, NT, 1), *yt = input(g, SMOE_TYPE_F32, 3, NEMBD, NU, NT);
    smoe_tensor *route = NULL, *comb = NULL;
    assert_int_equal(smoe_moe_route(g, lt, NU, &route), SMOE_OK);
    assert_int_equal(route->type, SMOE_TYPE_I32);
    assert_int_equal(smoe_moe_combine(g, yt, lt, route, &comb), SMOE_OK);
    smoe_graph_set_output(route);
    smoe_graph_set_output(comb);
    gt_input in[] = {{lt, logits}, {yt, y}};
    gt_output o[] = {{route, ids}, {comb, out}};
    assert_int_equal(gt_run(&cpu3, 1, g, in, 2, o, 2, 1, NULL), SMOE_OK);
    for (int t = 0; t < NT; t++) {
        /* reference top-2 (lower index on ties) and Mixtral's routing: softmax over all, top-2, renormalize */
        int b0 = 0;
        for (int e = 1; e < NE; e++)
            if (logits[t][e] > logits[t][b0]) b0 = e;
        int b1 = b0 == 0 ? 1 : 0;
        for (int e = 0; e < NE; e++)
            if (e != b0 && logits[t][e] > logits[t][b1]) b1 = e;
        assert_int_equal(ids[t][0], b0);
        assert_int_equal(ids[t][1], b1);
        double mx = -INFINITY, z = 0, p[NE];
        for (int e = 0; e < NE; e++) mx = fmax(mx, logits[t][e]);
        for (int e = 0; e < NE; e++) z += (p[e] = exp(logits[t][e] - mx));
        for (int e = 0; e < NE; e++) p[e] /= z;
        double w0 = p[b0] / (p[b0] + p[b1]), w1 = p[b1] / (p[b0] + p[b1]);
        for (int i = 0; i < NEMBD; i++) assert_true(fabs(out[t][i] - (w0 * y[t][0][i] + w1 * y[t][1][i])) < 1e-6);
    }
    assert_int_equal(ids[1][0], 2);
    assert_int_equal(ids[1][1], 5);
    assert_int_equal(ids[2][0], 0);
    assert_int_equal(ids[2][1], 1);
    smoe_graph_free(g);
}

/* ---- elementwise: SWIGLU, ADD/MUL with broadcast, SCALE, CPY f32 <-> f16, views ---- */

static void test_eltwise(void **state) {
    (void)state;
    gt_rng r = {80};
    enum { N0 = 33, N1 = 7 };
    float a[N1][N0], b[N1][N0], row[N0], o_sw[N1][N0], o_add[N1][N0], o_mul[N1][N0], o_sc[N1][N0], o_rt[N1][N0];
    gt_fill(&r, &a[0][0], N0 * N1, -4, 4);
    gt_fill(&r, &b[0][0], N0 * N1, -4, 4);
    gt_fill(&r, row, N0, -2, 2);
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *at = input(g, SMOE_TYPE_F32, 2, N0, N1, 1), *bt = input(g, SMOE_TYPE_F32, 2, N0, N1, 1);
    smoe_tensor *rt = input(g, SMOE_TYPE_F32, 1, N0, 1, 1);
    smoe_tensor *sw, *add, *mul, *sc, *h, *back;
    assert_int_equal(smoe_swiglu(g, at, bt, &sw), SMOE_OK);
    assert_int_equal(smoe_add(g, at, rt, &add), SMOE_OK);
    assert_int_equal(smoe_mul(g, at, rt, &mul), SMOE_OK);
    assert_int_equal(smoe_scale(g, at, -0.75f, &sc), SMOE_OK);
    assert_int_equal(smoe_cpy(g, at, SMOE_TYPE_F16, &h), SMOE_OK);
    assert_int_equal(smoe_cpy(g, h, SMOE_TYPE_F32, &back), SMOE_OK);
    smoe_tensor *outs[] = {sw, add, mul, sc, back};
    for (int i = 0; i < 5; i++) smoe_graph_set_output(outs[i]);
    gt_input in[] = {{at, a}, {bt, b}, {rt, row}};
    gt_output o[] = {{sw, o_sw}, {add, o_add}, {mul, o_mul}, {sc, o_sc}, {back, o_rt}};
    assert_int_equal(gt_run(&cpu3, 1, g, in, 3, o, 5, 1, NULL), SMOE_OK);
    for (int j = 0; j < N1; j++)
        for (int i = 0; i < N0; i++) {
            double x = a[j][i], y = b[j][i];
            assert_true(fabs(o_sw[j][i] - x / (1 + exp(-x)) * y) < 1e-5);
            assert_true(o_add[j][i] == (float)(a[j][i] + row[i]));
            assert_true(o_mul[j][i] == (float)(a[j][i] * row[i]));
            assert_true(o_sc[j][i] == a[j][i] * -0.75f);
            /* f16 has 11 significant bits: relative error <= 2^-11 */
            assert_true(fabs(o_rt[j][i] - x) <= fabs(x) * (1.0 / 2048) + 1e-7);
        }
    smoe_graph_free(g);
}

static void test_views(void **state) {
    (void)state;
    enum { N0 = 12, N1 = 5 };
    float a[N1][N0], out[3][4];
    for (int j = 0; j < N1; j++)
        for (int i = 0; i < N0; i++) a[j][i] = (float)(j * 100 + i);
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *at = input(g, SMOE_TYPE_F32, 2, N0, N1, 1), *rs = NULL, *v = NULL, *c = NULL;
    /* reshape [12, 5] -> [4, 3, 5]; then view rows 1..3 of column block 2 (elements 8..11) of the original */
    int64_t ne3[3] = {4, 3, 5};
    assert_int_equal(smoe_reshape(g, at, 3, ne3, &rs), SMOE_OK);
    int64_t vne[2] = {4, 3};
    size_t vnb[2] = {sizeof(float), N0 * sizeof(float)};
    assert_int_equal(smoe_view(g, at, 2, vne, vnb, (1 * N0 + 8) * sizeof(float), &v), SMOE_OK);
    assert_false(smoe_tensor_is_contiguous(v));
    assert_int_equal(smoe_scale(g, v, 2.0f, &c), SMOE_OK); /* reads the strided view */
    gt_input in[] = {{at, a}};
    assert_int_equal(run1(g, in, 1, c, out), SMOE_OK);
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < 4; i++) assert_true(out[j][i] == 2.0f * a[1 + j][8 + i]);
    /* a view past the end is refused */
    smoe_tensor *bad = NULL;
    assert_int_equal(smoe_view(g, at, 2, vne, vnb, (3 * N0 + 9) * sizeof(float), &bad), SMOE_ERR_INVALID_ARGUMENT);
    assert_null(bad);
    int64_t wrong[2] = {7, 7};
    assert_int_equal(smoe_reshape(g, at, 2, wrong, &bad), SMOE_ERR_INVALID_ARGUMENT);
    smoe_graph_free(g);
}

/* ---- planner ---- */

static void test_planner_direct(void **state) {
    (void)state;
    gt_rng r = {90};
    enum { N = 200 };
    smoe_plan_req reqs[N];
    for (int i = 0; i < N; i++) {
        int first = gt_rng_int(&r, 100) - 5;
        int len = gt_rng_int(&r, 10);
        reqs[i] = (smoe_plan_req){.size = 1 + (size_t)gt_rng_int(&r, 5000), .arena = gt_rng_int(&r, 2),
                                  .first_step = first < 0 ? -1 : first,
                                  .last_step = gt_rng_int(&r, 10) == 0 ? -1 : (first < 0 ? 0 : first) + len};
    }
    size_t align[2] = {64, 256}, size[2];
    assert_int_equal(smoe_plan_assign(reqs, N, 2, align, size), SMOE_OK);
    size_t sum = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(reqs[i].offset % align[reqs[i].arena], 0);
        assert_true(reqs[i].offset + reqs[i].size <= size[reqs[i].arena]);
        sum += reqs[i].size;
        for (int j = 0; j < i; j++) {
            if (reqs[i].arena != reqs[j].arena) continue;
            /* live ranges [first, last] (never released = to infinity; -1 first = from the start) */
            long fi = reqs[i].first_step, li = reqs[i].last_step < 0 ? 1L << 30 : reqs[i].last_step;
            long fj = reqs[j].first_step, lj = reqs[j].last_step < 0 ? 1L << 30 : reqs[j].last_step;
            bool overlap_time = fi <= lj && fj <= li;
            bool overlap_mem = reqs[i].offset < reqs[j].offset + reqs[j].size &&
                               reqs[j].offset < reqs[i].offset + reqs[i].size;
            assert_false(overlap_time && overlap_mem);
        }
    }
    assert_true(size[0] + size[1] < sum);
    /* bad requests */
    smoe_plan_req bad = {.size = 8, .arena = 3, .first_step = 0, .last_step = 1};
    assert_int_equal(smoe_plan_assign(&bad, 1, 2, align, size), SMOE_ERR_INVALID_ARGUMENT);
    bad = (smoe_plan_req){.size = 8, .arena = 0, .first_step = 5, .last_step = 1};
    assert_int_equal(smoe_plan_assign(&bad, 1, 2, align, size), SMOE_ERR_INVALID_ARGUMENT);
}

/* A chain of 20 ops: each intermediate dies after the next op, so the arena needs ~3 buffers, not 20. Checks that
 * no two tensors alive at once overlap, by address. */
static void test_planner_graph(void **state) {
    (void)state;
    enum { N = 1000, L = 20 };
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *x = input(g, SMOE_TYPE_F32, 1, N, 1, 1), *cur = x, *nodes[L];
    for (int i = 0; i < L; i++) {
        assert_int_equal(i % 2 ? smoe_add(g, cur, x, &cur) : smoe_scale(g, cur, 0.5f, &cur), SMOE_OK);
        nodes[i] = cur;
    }
    smoe_graph_set_output(cur);
    smoe_sched *s = NULL;
    assert_int_equal(smoe_sched_init(&cpu3, 1, &s), SMOE_OK);
    assert_int_equal(smoe_sched_alloc_graph(s, g), SMOE_OK);
    smoe_sched_stats st;
    assert_int_equal(smoe_sched_get_stats(s, g, &st), SMOE_OK);
    printf("planner: %d intermediates + input of %zu bytes each: arena %zu bytes, sum %zu bytes\n", L,
           N * sizeof(float), st.total_arena_size, st.total_tensor_size);
    assert_true(st.total_arena_size < st.total_tensor_size);
    assert_true(st.total_arena_size <= 4 * N * sizeof(float) + 4 * 64);
    /* node i is live from its step to step i+1 (read by node i+1); x and the output live throughout */
    for (int i = 0; i < L; i++)
        for (int j = 0; j < L; j++) {
            if (i == j || abs(i - j) > 1) continue;
            const char *a = nodes[i]->data, *b = nodes[j]->data;
            assert_true(a + N * sizeof(float) <= b || b + N * sizeof(float) <= a);
        }
    for (int i = 0; i < L; i++) {
        const char *a = nodes[i]->data, *b = x->data;
        assert_true(a + N * sizeof(float) <= b || b + N * sizeof(float) <= a);
    }
    /* compute twice: same result, and binding again changes nothing */
    float xin[N], r1[N], r2[N];
    for (int i = 0; i < N; i++) xin[i] = (float)i;
    void *before = cur->data;
    assert_int_equal(smoe_tensor_set(x, xin, 0, sizeof(xin)), SMOE_OK);
    assert_int_equal(smoe_sched_compute(s, g), SMOE_OK);
    assert_int_equal(smoe_tensor_get(cur, r1, 0, sizeof(r1)), SMOE_OK);
    assert_int_equal(smoe_sched_alloc_graph(s, g), SMOE_OK);
    assert_ptr_equal(cur->data, before);
    assert_int_equal(smoe_sched_compute(s, g), SMOE_OK);
    assert_int_equal(smoe_tensor_get(cur, r2, 0, sizeof(r2)), SMOE_OK);
    assert_memory_equal(r1, r2, sizeof(r1));
    /* reference: alternate x*0.5 and +x */
    for (int i = 0; i < N; i++) {
        double v = xin[i];
        for (int l = 0; l < L; l++) v = l % 2 ? v + xin[i] : v * 0.5;
        assert_true(fabs(r1[i] - v) <= 1e-6 * fabs(v) + 1e-6);
    }
    smoe_sched_free(s);
    smoe_graph_free(g);
}

/* ---- scheduler: two CPU backends ---- */

typedef struct mini_model {
    smoe_arena  *arena;
    smoe_buffer *buf[2];
    smoe_tensor *norm_w, *w1, *w2, *experts;
} mini_model;

enum { MM_K = 67, MM_M = 40, MM_NE = 4, MM_NT = 7 };

/* Weights in backend[0] (norm, w1) and backend[1] (w2, experts) buffers (both the same backend for the baseline). */
static void mini_model_init(mini_model *mm, smoe_backend *b0, smoe_backend *b1, const float *wdata) {
    memset(mm, 0, sizeof(*mm));
    assert_int_equal(smoe_arena_init(0, &mm->arena), SMOE_OK);
    int64_t ne_n[1] = {MM_K}, ne_1[2] = {MM_K, MM_M}, ne_2[2] = {MM_M, MM_K}, ne_e[3] = {MM_K, MM_K, MM_NE};
    assert_int_equal(smoe_tensor_new(mm->arena, SMOE_TYPE_F32, 1, ne_n, &mm->norm_w), SMOE_OK);
    assert_int_equal(smoe_tensor_new(mm->arena, SMOE_TYPE_F16, 2, ne_1, &mm->w1), SMOE_OK);
    assert_int_equal(smoe_tensor_new(mm->arena, SMOE_TYPE_F32, 2, ne_2, &mm->w2), SMOE_OK);
    assert_int_equal(smoe_tensor_new(mm->arena, SMOE_TYPE_F32, 3, ne_e, &mm->experts), SMOE_OK);
    smoe_tensor *ws[4] = {mm->norm_w, mm->w1, mm->w2, mm->experts};
    size_t off[2] = {0, 0};
    for (int i = 0; i < 4; i++) {
        smoe_tensor_set_flags(ws[i], SMOE_TENSOR_WEIGHT);
        off[i / 2] += (smoe_tensor_nbytes(ws[i]) + 63) / 64 * 64;
    }
    assert_int_equal(smoe_backend_buffer_alloc(b0, off[0], &mm->buf[0]), SMOE_OK);
    assert_int_equal(smoe_backend_buffer_alloc(b1, off[1], &mm->buf[1]), SMOE_OK);
    off[0] = off[1] = 0;
    const float *src = wdata;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(smoe_tensor_bind(ws[i], mm->buf[i / 2], off[i / 2]), SMOE_OK);
        off[i / 2] += (smoe_tensor_nbytes(ws[i]) + 63) / 64 * 64;
        const int64_t n = smoe_tensor_nelements(ws[i]);
        void *enc = gt_encode(ws[i]->type, src, ws[i]->ne[0], n / ws[i]->ne[0]);
        assert_int_equal(smoe_tensor_set(ws[i], enc, 0, smoe_tensor_nbytes(ws[i])), SMOE_OK);
        free(enc);
        src += n;
    }
}

static void mini_model_free(mini_model *mm) {
    smoe_buffer_free(mm->buf[0]);
    smoe_buffer_free(mm->buf[1]);
    smoe_arena_free(mm->arena);
}

/* x -> rms_norm -> w1 (f16) -> scale -> w2 -> add x -> route over the first MM_NE dims -> experts -> combine */
static void mini_model_run(mini_model *mm, smoe_backend *const *backends, int n_backends, const float *x,
                           float *out, smoe_sched_stats *stats) {
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *xt = input(g, SMOE_TYPE_F32, 2, MM_K, MM_NT, 1), *t = NULL, *h = NULL, *ids = NULL, *y = NULL;
    smoe_tensor *logits = NULL, *o = NULL;
    assert_int_equal(smoe_rms_norm(g, xt, mm->norm_w, 1e-5f, &t), SMOE_OK);
    assert_int_equal(smoe_mul_mat(g, mm->w1, t, &h), SMOE_OK);
    assert_int_equal(smoe_scale(g, h, 0.5f, &h), SMOE_OK);
    assert_int_equal(smoe_mul_mat(g, mm->w2, h, &h), SMOE_OK);
    assert_int_equal(smoe_add(g, h, xt, &h), SMOE_OK);
    int64_t lne[2] = {MM_NE, MM_NT};
    size_t lnb[2] = {sizeof(float), MM_K * sizeof(float)};
    assert_int_equal(smoe_view(g, h, 2, lne, lnb, 0, &logits), SMOE_OK);
    assert_int_equal(smoe_moe_route(g, logits, 2, &ids), SMOE_OK);
    int64_t hne[3] = {MM_K, 1, MM_NT};
    smoe_tensor *h3 = NULL;
    assert_int_equal(smoe_reshape(g, h, 3, hne, &h3), SMOE_OK);
    assert_int_equal(smoe_mul_mat_id(g, mm->experts, h3, ids, &y), SMOE_OK);
    assert_int_equal(smoe_moe_combine(g, y, logits, ids, &o), SMOE_OK);
    smoe_graph_set_output(o);
    gt_input in[] = {{xt, x}};
    gt_output ou[] = {{o, out}};
    assert_int_equal(gt_run(backends, n_backends, g, in, 1, ou, 1, 2, stats), SMOE_OK);
    smoe_graph_free(g);
}

static void test_sched_two_backends(void **state) {
    (void)state;
    gt_rng r = {100};
    const size_t n_w = MM_K + MM_K * MM_M + MM_M * MM_K + MM_K * MM_K * MM_NE;
    float *w = malloc(n_w * sizeof(float)), x[MM_K * MM_NT], out1[MM_K * MM_NT], out2[MM_K * MM_NT];
    gt_fill(&r, w, (int64_t)n_w, -0.3, 0.3);
    gt_fill(&r, x, MM_K * MM_NT, -1, 1);
    smoe_cpu_params p = smoe_cpu_default_params();
    p.n_threads = 2;
    p.name = "cpu-2";
    smoe_backend *cpu2 = NULL;
    assert_int_equal(smoe_cpu_backend_init(&p, &cpu2), SMOE_OK);

    /* baseline: one backend holds everything */
    mini_model one;
    mini_model_init(&one, cpu3, cpu3, w);
    smoe_sched_stats st1;
    mini_model_run(&one, &cpu3, 1, x, out1, &st1);
    assert_int_equal(st1.n_splits, 1);
    assert_int_equal(st1.n_copies, 0);

    /* split: norm and w1 on cpu3, w2 and the experts on cpu-2 */
    mini_model two;
    mini_model_init(&two, cpu3, cpu2, w);
    smoe_backend *both[2] = {cpu3, cpu2};
    smoe_sched_stats st2;
    mini_model_run(&two, both, 2, x, out2, &st2);
    printf("two backends: %d splits, %d copies, arenas %zu + %zu bytes\n", st2.n_splits, st2.n_copies,
           st2.arena_size[0], st2.arena_size[1]);
    assert_true(st2.n_splits >= 2);
    assert_true(st2.n_copies >= 1);
    assert_true(st2.arena_size[1] > 0);
    /* same kernels, deterministic over thread counts: bit-identical */
    assert_memory_equal(out1, out2, sizeof(out1));

    mini_model_free(&one);
    mini_model_free(&two);
    smoe_backend_free(cpu2);
    free(w);
}

/* ---- a fake device: host memory it claims is not host-addressable, and only some ops ---- */

#include "core/backend-impl.h"

typedef struct fakedev {
    smoe_backend *inner; /* a CPU backend that runs the kernels */
    int           n_computed;
} fakedev;

static const char *fd_name(smoe_backend *b) { (void)b; return "fakedev"; }
static void fd_props(smoe_backend *b, smoe_backend_props *p) {
    (void)b;
    p->name = "fakedev";
    p->description = "test device";
    p->host_memory = false; /* the scheduler must stage copies through tensor_get/set */
    p->alignment = 256;
}
static bool fd_supports(smoe_backend *b, const smoe_tensor *n) {
    (void)b;
    return n->op == SMOE_OP_MUL_MAT || n->op == SMOE_OP_ADD || n->op == SMOE_OP_VIEW || n->op == SMOE_OP_NONE;
}
static smoe_status fd_alloc(smoe_backend *b, smoe_buffer *buf) {
    (void)b;
    buf->base = aligned_alloc(256, (buf->size + 255) / 256 * 256 + 256);
    buf->alignment = 256;
    return buf->base ? SMOE_OK : SMOE_ERR_OUT_OF_MEMORY;
}
static void fd_free_buf(smoe_backend *b, smoe_buffer *buf) { (void)b; free(buf->base); }
static smoe_status fd_tset(smoe_backend *b, smoe_tensor *t, const void *d, size_t off, size_t n) {
    (void)b;
    memcpy((char *)t->data + off, d, n);
    return SMOE_OK;
}
static smoe_status fd_tget(smoe_backend *b, const smoe_tensor *t, void *d, size_t off, size_t n) {
    (void)b;
    memcpy(d, (const char *)t->data + off, n);
    return SMOE_OK;
}
static smoe_status fd_compute(smoe_backend *b, const smoe_split *sp) {
    fakedev *f = b->ctx;
    f->n_computed += sp->n_nodes;
    return f->inner->iface.compute(f->inner, sp);
}
static void fd_free(smoe_backend *b) { free(b); }

static smoe_backend *fakedev_new(fakedev *f) {
    smoe_backend *b = calloc(1, sizeof(*b));
    b->api_version = SMOE_BACKEND_API_VERSION;
    b->iface = (struct smoe_backend_i){.name = fd_name, .get_props = fd_props, .supports_op = fd_supports,
                                       .buffer_alloc = fd_alloc, .buffer_free = fd_free_buf,
                                       .tensor_set_async = fd_tset, .tensor_get_async = fd_tget,
                                       .compute = fd_compute, .free = fd_free};
    b->ctx = f;
    return b;
}

/* Weights of w2 and the experts on the device: MUL_MAT runs there, MUL_MAT_ID falls back to the CPU (its expert
 * weights are staged back), activations move both ways; results equal the CPU's bit for bit. */
static void test_sched_device_fallback(void **state) {
    (void)state;
    gt_rng r = {100};
    const size_t n_w = MM_K + MM_K * MM_M + MM_M * MM_K + MM_K * MM_K * MM_NE;
    float *w = malloc(n_w * sizeof(float)), x[MM_K * MM_NT], out1[MM_K * MM_NT], out2[MM_K * MM_NT];
    gt_fill(&r, w, (int64_t)n_w, -0.3, 0.3);
    gt_fill(&r, x, MM_K * MM_NT, -1, 1);
    fakedev fd = {.inner = cpu3};
    smoe_backend *dev = fakedev_new(&fd);

    mini_model one;
    mini_model_init(&one, cpu3, cpu3, w);
    mini_model_run(&one, &cpu3, 1, x, out1, NULL);

    mini_model two;
    mini_model_init(&two, cpu3, dev, w);
    smoe_backend *both[2] = {dev, cpu3};
    smoe_sched_stats st;
    mini_model_run(&two, both, 2, x, out2, &st);
    printf("device + cpu: %d splits, %d copies, arenas %zu + %zu bytes, %d nodes on the device\n", st.n_splits,
           st.n_copies, st.arena_size[0], st.arena_size[1], fd.n_computed);
    assert_true(fd.n_computed > 0);
    assert_true(st.n_splits >= 3);
    assert_memory_equal(out1, out2, sizeof(out1));

    /* a weight on a device the scheduler does not have is an error, not a crash */
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *ht = input(g, SMOE_TYPE_F32, 2, MM_M, MM_NT, 1), *o = NULL;
    assert_int_equal(smoe_mul_mat(g, two.w2, ht, &o), SMOE_OK); /* w2 lives on the device */
    smoe_sched *s = NULL;
    assert_int_equal(smoe_sched_init(&cpu3, 1, &s), SMOE_OK);
    assert_int_equal(smoe_sched_alloc_graph(s, g), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_sched_compute(s, g), SMOE_ERR_INVALID_ARGUMENT); /* not bound */
    smoe_sched_free(s);
    smoe_graph_free(g);

    mini_model_free(&one);
    mini_model_free(&two);
    smoe_backend_free(dev);
    free(w);
}


/* ---- thread counts give identical results ---- */

static void test_thread_counts(void **state) {
    (void)state;
    gt_rng r = {110};
    const size_t n_w = MM_K + MM_K * MM_M + MM_M * MM_K + MM_K * MM_K * MM_NE;
    float *w = malloc(n_w * sizeof(float)), x[MM_K * MM_NT], ref[MM_K * MM_NT], out[MM_K * MM_NT];
    gt_fill(&r, w, (int64_t)n_w, -0.3, 0.3);
    gt_fill(&r, x, MM_K * MM_NT, -1, 1);
    for (int nt = 1; nt <= 5; nt++) {
        smoe_cpu_params p = smoe_cpu_default_params();
        p.n_threads = nt;
        smoe_backend *b = NULL;
        assert_int_equal(smoe_cpu_backend_init(&p, &b), SMOE_OK);
        mini_model mm;
        mini_model_init(&mm, b, b, w);
        mini_model_run(&mm, &b, 1, x, nt == 1 ? ref : out, NULL);
        if (nt > 1) assert_memory_equal(ref, out, sizeof(out));
        mini_model_free(&mm);
        smoe_backend_free(b);
    }
    free(w);
}

/* ---- bad construction ---- */

static void test_bad_construction(void **state) {
    (void)state;
    smoe_graph *g = NULL, *g2 = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    assert_int_equal(smoe_graph_init(&g2), SMOE_OK);
    smoe_tensor *a = input(g, SMOE_TYPE_F32, 2, 64, 4, 1), *b = input(g, SMOE_TYPE_F32, 2, 32, 4, 1);
    smoe_tensor *ids = input(g, SMOE_TYPE_I32, 1, 4, 1, 1), *h = input(g, SMOE_TYPE_F16, 2, 64, 4, 1);
    smoe_tensor *q = input(g, SMOE_TYPE_F32, 3, 16, 4, 2), *kc = input(g, SMOE_TYPE_F32, 3, 16, 3, 8);
    smoe_tensor *qi = input(g, SMOE_TYPE_I32, 2, 2, 2, 1), *ci = input(g, SMOE_TYPE_I32, 2, 2, 8, 1);
    smoe_tensor *ns = input(g, SMOE_TYPE_I32, 1, 1, 1, 1), *other = input(g2, SMOE_TYPE_F32, 2, 64, 4, 1);
    smoe_tensor *o = (smoe_tensor *)&o;
    const int n_before = smoe_graph_n_nodes(g);
    smoe_op_rope_params rp = {.n_rot = 16, .theta_base = 1e4f, .freq_scale = 1};
#define BAD(call)                                                                                                      \
    do {                                                                                                               \
        o = (smoe_tensor *)&o;                                                                                         \
        smoe_clear_error();                                                                                            \
        assert_int_equal((call), SMOE_ERR_INVALID_ARGUMENT);                                                           \
        assert_null(o);                                                                                                \
        assert_true(smoe_last_error()[0] != '\0');                                                                     \
    } while (0)
    BAD(smoe_mul_mat(g, a, b, &o));            /* k mismatch */
    BAD(smoe_mul_mat(g, a, h, &o));            /* activations not f32 */
    BAD(smoe_mul_mat(g, NULL, a, &o));         /* NULL */
    BAD(smoe_mul_mat(g, a, other, &o));        /* another graph's tensor */
    BAD(smoe_add(g, a, b, &o));                /* no broadcast from 32 to 64 */
    BAD(smoe_add(g, a, h, &o));                /* f16 */
    BAD(smoe_swiglu(g, a, b, &o));             /* shapes */
    BAD(smoe_rms_norm(g, a, b, 1e-5f, &o));    /* weight length */
    BAD(smoe_rms_norm(g, a, a, NAN, &o));      /* weight 2-D, eps NaN */
    BAD(smoe_get_rows(g, a, a, &o));           /* ids not I32 */
    BAD(smoe_get_rows(g, a, NULL, &o));
    BAD(smoe_rope(g, q, ids, &rp, &o));        /* 4 positions for 2 tokens */
    rp.n_rot = 15;
    BAD(smoe_rope(g, q, ids, &rp, &o));        /* odd n_rot */
    BAD(smoe_attention(g, q, kc, kc, qi, ci, ns, 1.0f, &o)); /* 4 heads over 3 kv heads */
    BAD(smoe_attention(g, q, a, a, qi, ci, ns, 1.0f, &o));   /* head_dim */
    BAD(smoe_kv_write(g, kc, q, ids, &o));     /* rows [16,4] vs cache [16,3] */
    BAD(smoe_moe_route(g, a, 0, &o));          /* n_used 0 */
    BAD(smoe_moe_route(g, a, 65, &o));         /* n_used > n_expert */
    BAD(smoe_moe_combine(g, q, a, ids, &o));   /* ids 1-D [4] vs y [16, 4, 2] */
    BAD(smoe_mul_mat_id(g, kc, q, ids, &o));   /* ids shape */
    BAD(smoe_cpy(g, a, SMOE_TYPE_Q8_1, &o));   /* no from_f32 */
    BAD(smoe_cpy(g, a, (smoe_type)4, &o));     /* removed type id */
    BAD(smoe_scale(g, a, INFINITY, &o));
    assert_int_equal(smoe_graph_n_nodes(g), n_before);
    /* bad tensor shapes */
    smoe_tensor *t = NULL;
    int64_t ne_bad[2] = {33, 2};
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_Q4_0, 2, ne_bad, &t), SMOE_ERR_INVALID_ARGUMENT);
    int64_t ne_neg[2] = {-1, 2};
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 2, ne_neg, &t), SMOE_ERR_INVALID_ARGUMENT);
    int64_t ne_huge[4] = {1LL << 40, 1LL << 40, 1LL << 40, 1};
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 4, ne_huge, &t), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 5, ne_huge, &t), SMOE_ERR_INVALID_ARGUMENT);
    smoe_graph_free(g);
    smoe_graph_free(g2);
}

/* ---- ops table ---- */

static void test_op_table(void **state) {
    (void)state;
    assert_string_equal(smoe_op_name(SMOE_OP_MUL_MAT_ID), "MUL_MAT_ID");
    assert_int_equal(smoe_op_n_src(SMOE_OP_ATTENTION), 6);
    assert_int_equal(smoe_op_from_name("rope"), SMOE_OP_ROPE);
    assert_int_equal(smoe_op_from_name("nope"), -1);
    assert_string_equal(smoe_op_name((smoe_op)999), "UNKNOWN");
    assert_non_null(smoe_backend_reg_find("cpu"));
    assert_null(smoe_backend_reg_find("abacus"));
    smoe_backend *b = NULL;
    assert_int_equal(smoe_backend_init_by_name("cpu", 1, &b), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_backend_init_by_name("abacus", 0, &b), SMOE_ERR_UNSUPPORTED);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_rows),        cmocka_unit_test(test_rms_norm),
        cmocka_unit_test(test_mul_mat),         cmocka_unit_test(test_mul_mat_id),
        cmocka_unit_test(test_rope),            cmocka_unit_test(test_attention),
        cmocka_unit_test(test_attention_empty), cmocka_unit_test(test_moe),
        cmocka_unit_test(test_eltwise),         cmocka_unit_test(test_views),
        cmocka_unit_test(test_planner_direct),  cmocka_unit_test(test_planner_graph),
        cmocka_unit_test(test_sched_two_backends), cmocka_unit_test(test_sched_device_fallback),
        cmocka_unit_test(test_thread_counts),
        cmocka_unit_test(test_bad_construction), cmocka_unit_test(test_op_table),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
