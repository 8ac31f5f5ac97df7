/*
 * test-vulkan.c - the Vulkan backend beyond the op harness (tests/test-ops.c runs every op against the CPU):
 * device listing, buffers and copies (mapped and through the staging buffer), weights larger than one binding
 * (forced small bindings with SMOE_VK_MAX_BINDING, and one real > 128 MiB weight), index errors reported from the
 * device, every KV cache type the shaders write, RoPE at large positions and attention over many cells against
 * double-precision references computed here, CPY between all types.
 *
 * Every graph test runs on two backend configurations: the device's capabilities, and SMOE_VK_DISABLE=all (no
 * 16-bit storage, no subgroups, no f64, no push descriptors, no integer dot products: the fallbacks). With
 * SMOE_VK_VALIDATION=1 (a meson test) every backend must end with zero validation-layer messages.
 * Without a Vulkan device the tests skip, unless SMOE_VK_REQUIRE=1 (CI, which installs lavapipe): then they fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "backends/vulkan/vk-backend.h"
#include "core/backend-impl.h"
#include "graph-test-util.h"
#include "device-test-util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NE(...) ((const int64_t[]){__VA_ARGS__})

/* ---- backends ---- */

static bool have_device(void) {
    if (smoe_vk_device_count() > 0) return true;
    const char *req = getenv("SMOE_VK_REQUIRE");
    if (req && strcmp(req, "1") == 0) fail_msg("SMOE_VK_REQUIRE=1 but no Vulkan device (is mesa-vulkan-drivers installed?)");
    return false;
}

/* A backend on device 0 with SMOE_VK_DISABLE = disable (NULL: the device's capabilities) and optional extra
 * environment (name=value) for its init only. A disable string may end in "/gpu" or "/cpu": SMOE_VK_TUNE. */
static smoe_backend *vk_open(const char *disable_tune, const char *extra) {
    char disable[64] = "";
    if (disable_tune) snprintf(disable, sizeof(disable), "%s", disable_tune);
    char *tune = strchr(disable, '/');
    if (tune) {
        *tune++ = '\0';
        setenv("SMOE_VK_TUNE", tune, 1);
    }
    if (disable[0]) setenv("SMOE_VK_DISABLE", disable, 1);
    else unsetenv("SMOE_VK_DISABLE");
    char name[64] = "", *value = NULL;
    if (extra) {
        snprintf(name, sizeof(name), "%s", extra);
        value = strchr(name, '=');
        assert_non_null(value);
        *value++ = '\0';
        setenv(name, value, 1);
    }
    smoe_backend *b = NULL;
    smoe_status st = smoe_vk_backend_init(0, &b);
    if (extra) unsetenv(name);
    unsetenv("SMOE_VK_DISABLE");
    unsetenv("SMOE_VK_TUNE");
    if (st != SMOE_OK) fail_msg("vulkan init: %s", smoe_last_error());
    return b;
}

static void vk_close(smoe_backend *b) {
    const char *first = NULL;
    const int n = smoe_vk_backend_validation_messages(b, &first);
    if (n) fail_msg("%d validation message(s); first: %s", n, first);
    smoe_backend_free(b);
}

/* the device's capabilities; no optional feature at all (float products, descriptor sets); integer dot products
 * without 16-bit storage/subgroups; float products with them. "/gpu" and "/cpu" pick the workgroup shapes for GPUs
 * or for CPU devices (SMOE_VK_TUNE), so both are exercised whatever the device. Under the validation layers (slow)
 * the first two. */
static const char *const configs[] = {"/cpu", "all/gpu", "f16,subgroup/gpu", "dot/cpu"};
static int n_configs(void) {
    const char *v = getenv("SMOE_VK_VALIDATION");
    return v && strcmp(v, "1") == 0 ? 2 : 4;
}
#define N_CONFIGS n_configs()

/* ---- references and comparison ---- */

static double nmse(const float *ref, const float *got, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(ref[i]) != isnan(got[i])) return INFINITY;
        const double d = (double)ref[i] - (double)got[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    return den > 0 ? num / den : num;
}

static void check_nmse(const char *what, const float *ref, const float *got, int64_t n, double limit) {
    const double e = nmse(ref, got, n);
    if (!(e <= limit)) fail_msg("%s: nmse %.3g > %.3g", what, e, limit);
}

/* Random values encoded to `type` (n_rows rows of ne0), and their decoded f32 values. */
static void *random_rows(gt_rng *rng, smoe_type type, int64_t ne0, int64_t n_rows, float **decoded) {
    float *f = malloc((size_t)(ne0 * n_rows) * sizeof(float));
    assert_non_null(f);
    gt_fill(rng, f, ne0 * n_rows, -1, 1);
    void *enc = gt_encode(type, f, ne0, n_rows);
    gt_decode(type, enc, f, ne0, n_rows);
    *decoded = f;
    return enc;
}

/* Runs g on `b` (alone: every node must be supported by it) with the inputs, reads outputs. */
static smoe_status run_on(smoe_backend *b, smoe_graph *g, const gt_input *in, int n_in, const gt_output *out,
                          int n_out) {
    for (int i = 0; i < smoe_graph_n_nodes(g); i++) {
        smoe_tensor *n = smoe_graph_node(g, i);
        if (!smoe_backend_supports_op(b, n)) fail_msg("%s does not support %s (%s)", smoe_backend_name(b), n->name,
                                                      smoe_op_name(n->op));
    }
    smoe_backend *bs[1] = {b};
    return gt_run(bs, 1, g, in, n_in, out, n_out, 1, NULL);
}

/* ---- devices ---- */

static void test_devices(void **state) {
    (void)state;
    if (!have_device()) skip();
    const int n = smoe_vk_device_count();
    char name[32], desc[256];
    uint64_t mem = 0;
    assert_int_equal(smoe_vk_device_describe(0, name, sizeof(name), desc, sizeof(desc), &mem), SMOE_OK);
    assert_string_equal(name, "vulkan0");
    assert_true(strlen(desc) > 0);
    assert_true(mem > 0);
    assert_int_equal(smoe_vk_device_describe(n, name, sizeof(name), NULL, 0, NULL), SMOE_ERR_INVALID_ARGUMENT);
    smoe_backend *b = NULL;
    assert_int_equal(smoe_vk_backend_init(n, &b), SMOE_ERR_INVALID_ARGUMENT);
    assert_null(b);
    const smoe_backend_reg *reg = smoe_backend_reg_find("vulkan");
    assert_non_null(reg);
    assert_int_equal(reg->device_count(), n);
    assert_int_equal(smoe_backend_init_by_name("vulkan", 0, &b), SMOE_OK);
    assert_true(smoe_backend_is_vulkan(b));
    smoe_backend_props p;
    smoe_backend_get_props(b, &p);
    assert_string_equal(p.name, "vulkan0");
    assert_false(p.host_memory);
    print_message("vulkan0: %s; binding %llu bytes, buffer %llu bytes; features: %s\n", p.description,
                  (unsigned long long)smoe_vk_backend_max_binding(b), (unsigned long long)smoe_vk_backend_max_buffer(b),
                  smoe_vk_backend_features(b));
    vk_close(b);
    b = vk_open("all", NULL);
    assert_string_equal(smoe_vk_backend_features(b), "");
    vk_close(b);
}

/* ---- buffers ---- */

static void check_buffer_io(smoe_backend *b) {
    const size_t size = 3000007;
    smoe_tensor t;
    smoe_buffer *buf = dt_bytes_buffer(b, size, &t);
    uint8_t *a = malloc(size), *r = malloc(size);
    gt_rng rng = {7};
    for (size_t i = 0; i < size; i++) a[i] = (uint8_t)gt_rng_next(&rng);
    assert_int_equal(smoe_tensor_set(&t, a, 0, size), SMOE_OK);
    memset(r, 0, size);
    assert_int_equal(smoe_tensor_get(&t, r, 0, size), SMOE_OK);
    assert_memory_equal(a, r, size);
    /* odd offsets and sizes */
    for (size_t i = 0; i < 1001; i++) a[i] = (uint8_t)(i * 7);
    assert_int_equal(smoe_tensor_set(&t, a, 12345, 1001), SMOE_OK);
    assert_int_equal(smoe_tensor_get(&t, r, 12344, 1003), SMOE_OK);
    assert_memory_equal(r + 1, a, 1001);
    /* clear */
    assert_int_equal(smoe_buffer_clear(buf, 0xAB), SMOE_OK);
    assert_int_equal(smoe_tensor_get(&t, r, size - 4097, 4097), SMOE_OK);
    for (size_t i = 0; i < 4097; i++) assert_int_equal(r[i], 0xAB);
    smoe_buffer_free(buf);
    free(a);
    free(r);
}

static void test_buffers(void **state) {
    (void)state;
    if (!have_device()) skip();
    smoe_backend *b = vk_open(NULL, NULL);
    check_buffer_io(b);
    /* larger than the device allows in one buffer: a clear error, nothing allocated */
    smoe_buffer *buf = NULL;
    const uint64_t too_big = smoe_vk_backend_max_buffer(b) + 4096;
    if (too_big < SIZE_MAX / 4) {
        assert_int_equal(smoe_backend_buffer_alloc(b, (size_t)too_big, &buf), SMOE_ERR_OUT_OF_MEMORY);
        assert_non_null(strstr(smoe_last_error(), "largest buffer"));
        assert_null(buf);
    }
    vk_close(b);
    b = vk_open(NULL, "SMOE_VK_STAGING=1");
    check_buffer_io(b);
    vk_close(b);
}

/* ---- weights larger than one binding ---- */

/* Whether products with `type` weights and `cols` columns (MUL_MAT_ID: pairs per expert on average) run on integer
 * dot products on b: their activations are then quantized to 32-element int8 blocks exactly as quant/q-legacy.c's
 * Q8_0 reference does (vk-ops.c, quantize_q8.comp). From smoe_vk_backend_mm_cols columns they run tiled in f32. */
static bool int8_path(smoe_backend *b, smoe_type type, int64_t cols) {
    if (!strstr(smoe_vk_backend_features(b), "dot") || cols >= (int64_t)smoe_vk_backend_mm_cols(b)) return false;
    switch (type) {
    case SMOE_TYPE_Q4_0:
    case SMOE_TYPE_Q4_1:
    case SMOE_TYPE_Q5_0:
    case SMOE_TYPE_Q5_1:
    case SMOE_TYPE_Q8_0:
    case SMOE_TYPE_Q4_K:
    case SMOE_TYPE_Q5_K:
    case SMOE_TYPE_Q6_K: return true;
    default: return false;
    }
}

/* The activations a product on b sees: x itself, or x through Q8_0 (the int8 path). */
static float *seen_x(smoe_backend *b, smoe_type type, int64_t cols, const float *x, int64_t k, int64_t rows) {
    float *v = malloc((size_t)(k * rows) * sizeof(float));
    assert_non_null(v);
    if (!int8_path(b, type, cols)) {
        memcpy(v, x, (size_t)(k * rows) * sizeof(float));
        return v;
    }
    void *q = gt_encode(SMOE_TYPE_Q8_0, x, k, rows);
    gt_decode(SMOE_TYPE_Q8_0, q, v, k, rows);
    free(q);
    return v;
}

/* out[i, j] = sum_l w[l, i] x[l, j] in double from decoded weights. */
static void ref_mul_mat(const float *w, const float *x, float *out, int64_t k, int64_t m, int64_t n) {
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < m; i++) {
            double s = 0;
            for (int64_t l = 0; l < k; l++) s += (double)w[i * k + l] * (double)x[j * k + l];
            out[j * m + i] = (float)s;
        }
}

static void check_mul_mat(smoe_backend *b, smoe_type type, int64_t k, int64_t m, int64_t n, bool get_rows) {
    gt_rng rng = {(uint64_t)(k * 131 + m * 7 + n)};
    float *wf = NULL, *xf = malloc((size_t)(k * n) * sizeof(float));
    void *w = random_rows(&rng, type, k, m, &wf);
    gt_fill(&rng, xf, k * n, -1, 1);
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *tw, *tx, *tids, *out, *rows = NULL;
    assert_int_equal(smoe_graph_new_tensor(g, type, 2, NE(k, m), &tw), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 2, NE(k, n), &tx), SMOE_OK);
    assert_int_equal(smoe_mul_mat(g, tw, tx, &out), SMOE_OK);
    smoe_graph_set_output(out);
    const int32_t ids[4] = {(int32_t)(m - 1), 0, (int32_t)(m / 2), (int32_t)(m - 2)};
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 1, NE(4), &tids), SMOE_OK);
    if (get_rows) {
        assert_int_equal(smoe_get_rows(g, tw, tids, &rows), SMOE_OK);
        smoe_graph_set_output(rows);
    }
    float *got = malloc((size_t)(m * n) * sizeof(float)), *ref = malloc((size_t)(m * n) * sizeof(float));
    float *got_rows = malloc((size_t)(4 * k) * sizeof(float));
    const gt_input in[3] = {{tw, w}, {tx, xf}, {tids, ids}};
    const gt_output outs[2] = {{out, got}, {rows, got_rows}};
    smoe_status st = run_on(b, g, in, 3, outs, get_rows ? 2 : 1);
    if (st != SMOE_OK) fail_msg("mul_mat %s: %s", smoe_type_name(type), smoe_last_error());
    float *xs = seen_x(b, type, n, xf, k, n);
    ref_mul_mat(wf, xs, ref, k, m, n);
    free(xs);
    char what[96];
    snprintf(what, sizeof(what), "MUL_MAT %s k=%ld m=%ld n=%ld", smoe_type_name(type), (long)k, (long)m, (long)n);
    check_nmse(what, ref, got, m * n, int8_path(b, type, n) ? 1e-7 : 1e-9); /* int8: a rounding tie may flip */
    if (get_rows)
        for (int r = 0; r < 4; r++)
            assert_memory_equal(got_rows + r * k, wf + (int64_t)ids[r] * k, (size_t)k * sizeof(float));
    smoe_graph_free(g);
    free(w);
    free(wf);
    free(xf);
    free(got);
    free(ref);
    free(got_rows);
}

static void check_mul_mat_id(smoe_backend *b, smoe_type type, int64_t k, int64_t m, int64_t n_expert, int64_t n_used,
                             int64_t n_x, int64_t n_tokens) {
    gt_rng rng = {(uint64_t)(k + m * 3 + n_expert * 5 + n_x)};
    float *wf = NULL, *xf = malloc((size_t)(k * n_x * n_tokens) * sizeof(float));
    void *w = random_rows(&rng, type, k, m * n_expert, &wf);
    gt_fill(&rng, xf, k * n_x * n_tokens, -1, 1);
    int32_t *ids = malloc((size_t)(n_used * n_tokens) * sizeof(int32_t));
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t s = 0; s < n_used; s++) ids[t * n_used + s] = (int32_t)((t * 5 + s * 3 + (t % 2)) % n_expert);
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *tw, *tx, *ti, *out;
    assert_int_equal(smoe_graph_new_tensor(g, type, 3, NE(k, m, n_expert), &tw), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 3, NE(k, n_x, n_tokens), &tx), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 2, NE(n_used, n_tokens), &ti), SMOE_OK);
    assert_int_equal(smoe_mul_mat_id(g, tw, tx, ti, &out), SMOE_OK);
    smoe_graph_set_output(out);
    const int64_t n_out = m * n_used * n_tokens;
    float *got = malloc((size_t)n_out * sizeof(float)), *ref = malloc((size_t)n_out * sizeof(float));
    const gt_input in[3] = {{tw, w}, {tx, xf}, {ti, ids}};
    const gt_output outs[1] = {{out, got}};
    smoe_status st = run_on(b, g, in, 3, outs, 1);
    if (st != SMOE_OK) fail_msg("mul_mat_id %s: %s", smoe_type_name(type), smoe_last_error());
    const int64_t per_expert = n_used * n_tokens / n_expert; /* what the backend picks its path by */
    float *xs = seen_x(b, type, per_expert, xf, k, n_x * n_tokens);
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t s = 0; s < n_used; s++)
            ref_mul_mat(wf + (int64_t)ids[t * n_used + s] * m * k, xs + (t * n_x + (n_x == 1 ? 0 : s)) * k,
                        ref + (t * n_used + s) * m, k, m, 1);
    free(xs);
    char what[128];
    snprintf(what, sizeof(what), "MUL_MAT_ID %s k=%ld m=%ld n_expert=%ld n_x=%ld", smoe_type_name(type), (long)k,
             (long)m, (long)n_expert, (long)n_x);
    check_nmse(what, ref, got, n_out, int8_path(b, type, per_expert) ? 1e-7 : 1e-9);
    smoe_graph_free(g);
    free(w);
    free(wf);
    free(xf);
    free(ids);
    free(got);
    free(ref);
}

static void test_split_forced(void **state) {
    (void)state;
    if (!have_device()) skip();
    for (int cfg = 0; cfg < N_CONFIGS; cfg++)
        /* matrix-vector products, then tiled ones (mul_mm.comp) over the same windows: SMOE_VK_MM_COLS=8 makes
         * batches small enough for 64 KiB bindings run tiled */
        for (int tiled = 0; tiled < 2; tiled++) {
            if (tiled) setenv("SMOE_VK_MM_COLS", "8", 1);
            smoe_backend *b = vk_open(configs[cfg], "SMOE_VK_MAX_BINDING=65536");
            unsetenv("SMOE_VK_MM_COLS");
            assert_int_equal(smoe_vk_backend_max_binding(b), 65536);
            if (tiled) assert_int_equal(smoe_vk_backend_mm_cols(b), 8);
            /* 144 KB of q4_0 rows: three windows */
            check_mul_mat(b, SMOE_TYPE_Q4_0, 256, 1000, 1, true);
            check_mul_mat(b, SMOE_TYPE_Q4_0, 256, 1000, 9, true);
            /* f32 rows of 4 KiB, a window holds 15 */
            check_mul_mat(b, SMOE_TYPE_F32, 1024, 40, tiled ? 12 : 3, true);
            /* an expert (81 KB of q8_0) larger than a window: rows split within each expert */
            check_mul_mat_id(b, SMOE_TYPE_Q8_0, 256, 300, 4, 2, 1, tiled ? 16 : 5);
            /* 27 KB experts: two per window */
            check_mul_mat_id(b, SMOE_TYPE_Q4_K, 256, 190, 5, 2, 2, tiled ? 20 : 9);
            /* q6_k rows of 420 bytes, 126 KB */
            check_mul_mat(b, SMOE_TYPE_Q6_K, 512, 300, tiled ? 10 : 5, true);
            vk_close(b);
        }
}

/* Every weight type through MUL_MAT and MUL_MAT_ID, on every configuration (float or integer-dot products). */
static void test_weight_types(void **state) {
    (void)state;
    if (!have_device()) skip();
    const smoe_type types[] = {SMOE_TYPE_F32,  SMOE_TYPE_F16,  SMOE_TYPE_BF16, SMOE_TYPE_Q4_0,
                               SMOE_TYPE_Q4_1, SMOE_TYPE_Q5_0, SMOE_TYPE_Q5_1, SMOE_TYPE_Q8_0,
                               SMOE_TYPE_Q4_K, SMOE_TYPE_Q5_K, SMOE_TYPE_Q6_K, SMOE_TYPE_Q8_K};
    for (int cfg = 0; cfg < N_CONFIGS; cfg++) {
        smoe_backend *b = vk_open(configs[cfg], NULL);
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            check_mul_mat(b, types[i], 512, 67, 13, true);
            check_mul_mat_id(b, types[i], 512, 40, 4, 2, 1, 6);
            check_mul_mat(b, types[i], 512, 67, 45, false); /* tiled */
            check_mul_mat_id(b, types[i], 512, 40, 4, 2, 1, 70);
        }
        vk_close(b);
    }
}

static void test_split_real(void **state) {
    (void)state;
    if (!have_device()) skip();
    smoe_backend *b = vk_open(NULL, NULL);
    /* 139 MB of f16 weights: larger than lavapipe's 128 MiB binding */
    const int64_t k = 4096, m = 17000;
    if ((uint64_t)(k * m * 2) <= smoe_vk_backend_max_binding(b))
        print_message("note: this device's binding (%llu bytes) holds the weight; no split exercised\n",
                      (unsigned long long)smoe_vk_backend_max_binding(b));
    check_mul_mat(b, SMOE_TYPE_F16, k, m, 2, true);
    vk_close(b);
}

/* ---- index errors reported by the device ---- */

static void test_index_errors(void **state) {
    (void)state;
    if (!have_device()) skip();
    smoe_backend *b = vk_open(NULL, NULL);
    dt_check_index_errors(b);
    vk_close(b);
}

/* ---- KV caches of every type the shaders write, read by ATTENTION; CPU as the reference ---- */

static void check_kv_attention(smoe_backend *vk, smoe_backend *cpu, smoe_type type) {
    const int64_t hd = 64, nkv = 2, nh = 4, nc = 40, nt = 5;
    gt_rng rng = {(uint64_t)type + 99};
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *ck, *cv, *rk, *rv, *cells, *q, *qi, *ci, *ns, *kw, *vw, *att;
    assert_int_equal(smoe_graph_new_tensor(g, type, 3, NE(hd, nkv, nc), &ck), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, type, 3, NE(hd, nkv, nc), &cv), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 3, NE(hd, nkv, nt), &rk), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 3, NE(hd, nkv, nt), &rv), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 1, NE(nt), &cells), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 3, NE(hd, nh, nt), &q), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 2, NE(2, nt), &qi), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 2, NE(2, nc), &ci), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 1, NE(1), &ns), SMOE_OK);
    assert_int_equal(smoe_kv_write(g, ck, rk, cells, &kw), SMOE_OK);
    assert_int_equal(smoe_kv_write(g, cv, rv, cells, &vw), SMOE_OK);
    assert_int_equal(smoe_attention(g, q, kw, vw, qi, ci, ns, 0.125f, &att), SMOE_OK);
    smoe_graph_set_output(att);
    smoe_graph_set_output(kw);

    float *dk = NULL, *dv = NULL;
    void *k0 = random_rows(&rng, type, hd, nkv * nc, &dk), *v0 = random_rows(&rng, type, hd, nkv * nc, &dv);
    float *frk = malloc((size_t)(hd * nkv * nt) * 4), *frv = malloc((size_t)(hd * nkv * nt) * 4);
    float *fq = malloc((size_t)(hd * nh * nt) * 4);
    gt_fill(&rng, frk, hd * nkv * nt, -1, 1);
    gt_fill(&rng, frv, hd * nkv * nt, -1, 1);
    gt_fill(&rng, fq, hd * nh * nt, -1, 1);
    int32_t icells[5] = {30, 31, 32, 33, 31}; /* cell 31 written twice: the last row wins */
    int32_t iqi[10], ici[80], n_scan = 36;
    for (int64_t j = 0; j < nc; j++) {
        ici[2 * j] = (int32_t)j;
        ici[2 * j + 1] = j % 7 == 3 ? -1 : 0;
    }
    for (int64_t t = 0; t < nt; t++) {
        iqi[2 * t] = (int32_t)(28 + t);
        iqi[2 * t + 1] = 0;
    }
    const gt_input in[9] = {{ck, k0}, {cv, v0}, {rk, frk}, {rv, frv}, {cells, icells}, {q, fq}, {qi, iqi},
                            {ci, ici}, {ns, &n_scan}};
    const int64_t n_att = hd * nh * nt, n_cache = hd * nkv * nc;
    const size_t cache_bytes = smoe_tensor_nbytes(ck);
    float *a_ref = malloc((size_t)n_att * 4), *a_got = malloc((size_t)n_att * 4);
    uint8_t *c_ref = malloc(cache_bytes), *c_got = malloc(cache_bytes);
    gt_output out_ref[2] = {{att, a_ref}, {kw, c_ref}}, out_got[2] = {{att, a_got}, {kw, c_got}};
    assert_int_equal(run_on(cpu, g, in, 9, out_ref, 2), SMOE_OK);
    smoe_status st = run_on(vk, g, in, 9, out_got, 2);
    if (st != SMOE_OK) fail_msg("kv %s: %s", smoe_type_name(type), smoe_last_error());
    float *fc_ref = malloc((size_t)n_cache * 4), *fc_got = malloc((size_t)n_cache * 4);
    gt_decode(type, c_ref, fc_ref, hd, nkv * nc);
    gt_decode(type, c_got, fc_got, hd, nkv * nc);
    char what[64];
    const bool plain = smoe_type_get_traits(type)->block_size == 1;
    snprintf(what, sizeof(what), "KV_WRITE %s", smoe_type_name(type));
    if (plain) assert_memory_equal(c_ref, c_got, cache_bytes); /* f32/f16/bf16 conversions are exact */
    else check_nmse(what, fc_ref, fc_got, n_cache, 1e-6);
    snprintf(what, sizeof(what), "ATTENTION %s", smoe_type_name(type));
    check_nmse(what, a_ref, a_got, n_att, plain ? 1e-10 : 1e-6);
    smoe_graph_free(g);
    free(dk), free(dv), free(k0), free(v0), free(frk), free(frv), free(fq);
    free(a_ref), free(a_got), free(c_ref), free(c_got), free(fc_ref), free(fc_got);
}

static void test_kv_types(void **state) {
    (void)state;
    if (!have_device()) skip();
    const smoe_type types[] = {SMOE_TYPE_F32,  SMOE_TYPE_F16,  SMOE_TYPE_BF16, SMOE_TYPE_Q8_0,
                               SMOE_TYPE_Q4_0, SMOE_TYPE_Q4_1, SMOE_TYPE_Q5_0, SMOE_TYPE_Q5_1};
    smoe_backend *cpu = NULL;
    assert_int_equal(smoe_cpu_backend_init(NULL, &cpu), SMOE_OK);
    for (int cfg = 0; cfg < N_CONFIGS; cfg++) {
        smoe_backend *vk = vk_open(configs[cfg], NULL);
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) check_kv_attention(vk, cpu, types[i]);
        vk_close(vk);
    }
    smoe_backend_free(cpu);
}

/* ---- RoPE at large positions, attention over many cells: double-precision references ---- */

static void check_rope(smoe_backend *b, double limit) {
    const int64_t hd = 128, nh = 3, nt = 6;
    gt_rng rng = {5};
    float *x = malloc((size_t)(hd * nh * nt) * 4), *got = malloc((size_t)(hd * nh * nt) * 4);
    float *ref = malloc((size_t)(hd * nh * nt) * 4);
    gt_fill(&rng, x, hd * nh * nt, -1, 1);
    const int32_t pos[6] = {0, 1, 4095, 17000, 32766, 32767};
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *tx, *tp, *out;
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 3, NE(hd, nh, nt), &tx), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 1, NE(nt), &tp), SMOE_OK);
    const smoe_op_rope_params rp = {.n_rot = 128, .theta_base = 1e6f, .freq_scale = 1.0f};
    assert_int_equal(smoe_rope(g, tx, tp, &rp, &out), SMOE_OK);
    smoe_graph_set_output(out);
    const gt_input in[2] = {{tx, x}, {tp, pos}};
    const gt_output outs[1] = {{out, got}};
    assert_int_equal(run_on(b, g, in, 2, outs, 1), SMOE_OK);
    for (int64_t t = 0; t < nt; t++)
        for (int64_t h = 0; h < nh; h++)
            for (int64_t i = 0; i < hd / 2; i++) {
                const double ang = (double)pos[t] * pow(1e6, -2.0 * (double)i / (double)hd);
                const float *xr = x + (t * nh + h) * hd;
                ref[(t * nh + h) * hd + 2 * i] = (float)(xr[2 * i] * cos(ang) - xr[2 * i + 1] * sin(ang));
                ref[(t * nh + h) * hd + 2 * i + 1] = (float)(xr[2 * i] * sin(ang) + xr[2 * i + 1] * cos(ang));
            }
    check_nmse("ROPE", ref, got, hd * nh * nt, limit);
    smoe_graph_free(g);
    free(x), free(got), free(ref);
}

static void test_rope_positions(void **state) {
    (void)state;
    if (!have_device()) skip();
    smoe_backend *b = vk_open(NULL, NULL);
    /* f64 angles where the device has them (lavapipe does), else float angles: ~1e-3 rad off at 32k */
    check_rope(b, strstr(smoe_vk_backend_features(b), "f64") ? 1e-10 : 1e-4);
    vk_close(b);
    b = vk_open("all", NULL);
    check_rope(b, 1e-4);
    vk_close(b);
}

static void check_attention_long(smoe_backend *b, smoe_type type) {
    const int64_t hd = 128, nh = 8, nkv = 2, nc = 300, nt = 3;
    gt_rng rng = {11};
    float *q = malloc((size_t)(hd * nh * nt) * 4), *kf = NULL, *vf = NULL;
    gt_fill(&rng, q, hd * nh * nt, -1, 1);
    void *k = random_rows(&rng, type, hd, nkv * nc, &kf), *v = random_rows(&rng, type, hd, nkv * nc, &vf);
    /* sequence 0 at cells 0..99 and 200..239, sequence 1 at 100..199, cells 240.. empty; queries see parts */
    int32_t ci[600], qi[6] = {120, 0, 60, 1, 3, 0}, n_scan = 290;
    for (int j = 0; j < nc; j++) {
        const bool s1 = j >= 100 && j < 200, empty = j >= 240;
        ci[2 * j] = s1 ? j - 100 : j < 100 ? j : j - 100;
        ci[2 * j + 1] = empty ? -1 : s1 ? 1 : 0;
    }
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *tq, *tk, *tv, *tqi, *tci, *tns, *out;
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 3, NE(hd, nh, nt), &tq), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, type, 3, NE(hd, nkv, nc), &tk), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, type, 3, NE(hd, nkv, nc), &tv), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 2, NE(2, nt), &tqi), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 2, NE(2, nc), &tci), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 1, NE(1), &tns), SMOE_OK);
    const float scale = 0.0883883f;
    assert_int_equal(smoe_attention(g, tq, tk, tv, tqi, tci, tns, scale, &out), SMOE_OK);
    smoe_graph_set_output(out);
    float *got = malloc((size_t)(hd * nh * nt) * 4), *ref = malloc((size_t)(hd * nh * nt) * 4);
    const gt_input in[6] = {{tq, q}, {tk, k}, {tv, v}, {tqi, qi}, {tci, ci}, {tns, &n_scan}};
    const gt_output outs[1] = {{out, got}};
    assert_int_equal(run_on(b, g, in, 6, outs, 1), SMOE_OK);
    double *sc = malloc((size_t)nc * sizeof(double));
    for (int64_t t = 0; t < nt; t++)
        for (int64_t h = 0; h < nh; h++) {
            const int64_t hk = h / (nh / nkv);
            double mx = -INFINITY;
            for (int64_t j = 0; j < nc; j++) {
                sc[j] = -INFINITY;
                if (j >= n_scan || ci[2 * j + 1] != qi[2 * t + 1] || ci[2 * j] > qi[2 * t]) continue;
                double d = 0;
                for (int64_t e = 0; e < hd; e++) d += (double)q[(t * nh + h) * hd + e] * kf[(j * nkv + hk) * hd + e];
                sc[j] = d * scale;
                if (sc[j] > mx) mx = sc[j];
            }
            double sum = 0;
            for (int64_t j = 0; j < nc; j++) sum += sc[j] == -INFINITY ? 0 : exp(sc[j] - mx);
            for (int64_t e = 0; e < hd; e++) {
                double a = 0;
                for (int64_t j = 0; j < nc; j++)
                    if (sc[j] != -INFINITY) a += exp(sc[j] - mx) * vf[(j * nkv + hk) * hd + e];
                ref[(t * nh + h) * hd + e] = (float)(sum > 0 ? a / sum : 0);
            }
        }
    char what[64];
    snprintf(what, sizeof(what), "ATTENTION %s, 300 cells", smoe_type_name(type));
    check_nmse(what, ref, got, hd * nh * nt, 1e-9);
    smoe_graph_free(g);
    free(q), free(kf), free(vf), free(k), free(v), free(got), free(ref), free(sc);
}

static void test_attention_long(void **state) {
    (void)state;
    if (!have_device()) skip();
    for (int cfg = 0; cfg < N_CONFIGS; cfg++) {
        smoe_backend *b = vk_open(configs[cfg], NULL);
        check_attention_long(b, SMOE_TYPE_F32);
        check_attention_long(b, SMOE_TYPE_F16);
        check_attention_long(b, SMOE_TYPE_Q8_0);
        vk_close(b);
    }
}

/* ---- CPY between types ---- */

static void check_cpy(smoe_backend *vk, smoe_backend *cpu, smoe_type src, smoe_type dst) {
    const int64_t ne0 = 256, ne1 = 5;
    gt_rng rng = {(uint64_t)(src * 64 + dst)};
    float *sf = NULL;
    void *s = random_rows(&rng, src, ne0, ne1, &sf);
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *a, *out;
    assert_int_equal(smoe_graph_new_tensor(g, src, 2, NE(ne0, ne1), &a), SMOE_OK);
    assert_int_equal(smoe_cpy(g, a, dst, &out), SMOE_OK);
    smoe_graph_set_output(out);
    const size_t bytes = smoe_tensor_nbytes(out);
    uint8_t *r = malloc(bytes), *o = malloc(bytes);
    const gt_input in[1] = {{a, s}};
    gt_output oref[1] = {{out, r}}, ogot[1] = {{out, o}};
    assert_int_equal(run_on(cpu, g, in, 1, oref, 1), SMOE_OK);
    smoe_status st = run_on(vk, g, in, 1, ogot, 1);
    if (st != SMOE_OK) fail_msg("cpy %s -> %s: %s", smoe_type_name(src), smoe_type_name(dst), smoe_last_error());
    if (smoe_type_get_traits(dst)->block_size == 1) {
        if (memcmp(r, o, bytes) != 0) fail_msg("CPY %s -> %s: not bit-exact", smoe_type_name(src), smoe_type_name(dst));
    } else {
        float *fr = malloc((size_t)(ne0 * ne1) * 4), *fo = malloc((size_t)(ne0 * ne1) * 4);
        gt_decode(dst, r, fr, ne0, ne1);
        gt_decode(dst, o, fo, ne0, ne1);
        char what[64];
        snprintf(what, sizeof(what), "CPY %s -> %s", smoe_type_name(src), smoe_type_name(dst));
        check_nmse(what, fr, fo, ne0 * ne1, 1e-6);
        free(fr), free(fo);
    }
    smoe_graph_free(g);
    free(sf), free(s), free(r), free(o);
}

static void test_cpy_types(void **state) {
    (void)state;
    if (!have_device()) skip();
    const smoe_type srcs[] = {SMOE_TYPE_F32,  SMOE_TYPE_F16,  SMOE_TYPE_BF16, SMOE_TYPE_Q4_0, SMOE_TYPE_Q4_1,
                              SMOE_TYPE_Q5_0, SMOE_TYPE_Q5_1, SMOE_TYPE_Q8_0, SMOE_TYPE_Q4_K, SMOE_TYPE_Q5_K,
                              SMOE_TYPE_Q6_K, SMOE_TYPE_Q8_K};
    const smoe_type dsts[] = {SMOE_TYPE_F32,  SMOE_TYPE_F16,  SMOE_TYPE_BF16, SMOE_TYPE_Q8_0,
                              SMOE_TYPE_Q4_0, SMOE_TYPE_Q4_1, SMOE_TYPE_Q5_0, SMOE_TYPE_Q5_1};
    smoe_backend *cpu = NULL;
    assert_int_equal(smoe_cpu_backend_init(NULL, &cpu), SMOE_OK);
    for (int cfg = 0; cfg < N_CONFIGS; cfg++) {
        smoe_backend *vk = vk_open(configs[cfg], NULL);
        for (size_t i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++)
            for (size_t j = 0; j < sizeof(dsts) / sizeof(dsts[0]); j++) {
                const bool plain = smoe_type_get_traits(srcs[i])->block_size == 1;
                if (plain || dsts[j] == SMOE_TYPE_F32) check_cpy(vk, cpu, srcs[i], dsts[j]);
            }
        vk_close(vk);
    }
    smoe_backend_free(cpu);
}

/* ---- recorded command buffers replayed ---- */

typedef struct small_graph {
    smoe_graph  *g;
    smoe_tensor *x, *w, *gamma, *bias, *y;
} small_graph;

/* y = rms_norm(w x) * gamma + bias, w q4_0 [256, 64], x [256, 3] */
static void small_graph_build(small_graph *sg) {
    assert_int_equal(smoe_graph_init(&sg->g), SMOE_OK);
    smoe_tensor *mm, *nrm;
    assert_int_equal(smoe_graph_new_tensor(sg->g, SMOE_TYPE_F32, 2, NE(256, 3), &sg->x), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(sg->g, SMOE_TYPE_Q4_0, 2, NE(256, 64), &sg->w), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(sg->g, SMOE_TYPE_F32, 1, NE(64), &sg->gamma), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(sg->g, SMOE_TYPE_F32, 1, NE(64), &sg->bias), SMOE_OK);
    assert_int_equal(smoe_mul_mat(sg->g, sg->w, sg->x, &mm), SMOE_OK);
    assert_int_equal(smoe_rms_norm(sg->g, mm, sg->gamma, 1e-5f, &nrm), SMOE_OK);
    assert_int_equal(smoe_add(sg->g, nrm, sg->bias, &sg->y), SMOE_OK);
    smoe_graph_set_output(sg->y);
}

static void test_replay(void **state) {
    (void)state;
    if (!have_device()) skip();
    smoe_backend *cpu = NULL;
    assert_int_equal(smoe_cpu_backend_init(NULL, &cpu), SMOE_OK);
    const char *cfgs[] = {"/cpu", "push/gpu"}; /* replayed command buffers; descriptor sets, recorded every time */
    for (int cfg = 0; cfg < 2; cfg++) {
        smoe_backend *vk = vk_open(cfgs[cfg], NULL);
        small_graph a, b;
        small_graph_build(&a);
        small_graph_build(&b);
        smoe_sched *sa = NULL, *sb = NULL;
        assert_int_equal(smoe_sched_init(&cpu, 1, &sa), SMOE_OK);
        assert_int_equal(smoe_sched_init(&vk, 1, &sb), SMOE_OK);
        assert_int_equal(smoe_sched_alloc_graph(sa, a.g), SMOE_OK);
        assert_int_equal(smoe_sched_alloc_graph(sb, b.g), SMOE_OK);
        gt_rng rng = {77};
        float wf[256 * 64], xf[256 * 3], gf[64], bf[64], ra[64 * 3], rb[64 * 3];
        gt_fill(&rng, wf, 256 * 64, -1, 1);
        void *wq = gt_encode(SMOE_TYPE_Q4_0, wf, 256, 64);
        gt_fill(&rng, gf, 64, 0.5, 1.5);
        assert_int_equal(smoe_tensor_set(a.w, wq, 0, smoe_tensor_nbytes(a.w)), SMOE_OK);
        assert_int_equal(smoe_tensor_set(b.w, wq, 0, smoe_tensor_nbytes(b.w)), SMOE_OK);
        assert_int_equal(smoe_tensor_set(a.gamma, gf, 0, sizeof(gf)), SMOE_OK);
        assert_int_equal(smoe_tensor_set(b.gamma, gf, 0, sizeof(gf)), SMOE_OK);
        uint64_t rec0 = 0, rep0 = 0, rec1 = 0, rep1 = 0;
        smoe_vk_backend_counters(vk, &rec0, &rep0, NULL, NULL);
        for (int run = 0; run < 4; run++) {
            gt_fill(&rng, xf, 256 * 3, -1, 1);
            gt_fill(&rng, bf, 64, -1, 1);
            assert_int_equal(smoe_tensor_set(a.x, xf, 0, sizeof(xf)), SMOE_OK);
            assert_int_equal(smoe_tensor_set(a.bias, bf, 0, sizeof(bf)), SMOE_OK);
            assert_int_equal(smoe_tensor_set(b.x, xf, 0, sizeof(xf)), SMOE_OK);
            assert_int_equal(smoe_tensor_set(b.bias, bf, 0, sizeof(bf)), SMOE_OK);
            assert_int_equal(smoe_sched_compute(sa, a.g), SMOE_OK);
            assert_int_equal(smoe_sched_compute(sb, b.g), SMOE_OK);
            assert_int_equal(smoe_tensor_get(a.y, ra, 0, sizeof(ra)), SMOE_OK);
            assert_int_equal(smoe_tensor_get(b.y, rb, 0, sizeof(rb)), SMOE_OK);
            check_nmse("replayed graph", ra, rb, 64 * 3, 1e-6);
        }
        smoe_vk_backend_counters(vk, &rec1, &rep1, NULL, NULL);
        if (cfg == 0) {
            assert_int_equal(rec1 - rec0, 1);
            assert_int_equal(rep1 - rep0, 3);
        } else {
            assert_int_equal(rec1 - rec0, 4);
            assert_int_equal(rep1 - rep0, 0);
        }
        smoe_sched_free(sa);
        smoe_sched_free(sb);
        smoe_graph_free(a.g);
        smoe_graph_free(b.g);
        free(wq);
        vk_close(vk);
    }
    smoe_backend_free(cpu);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_devices),     cmocka_unit_test(test_buffers),
        cmocka_unit_test(test_split_forced), cmocka_unit_test(test_split_real),
        cmocka_unit_test(test_weight_types),
        cmocka_unit_test(test_index_errors), cmocka_unit_test(test_kv_types),
        cmocka_unit_test(test_rope_positions), cmocka_unit_test(test_attention_long),
        cmocka_unit_test(test_cpy_types),   cmocka_unit_test(test_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
