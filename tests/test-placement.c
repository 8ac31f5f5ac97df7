/* test-placement.c - the GPU placement plan (core/placement.c): classification of GGUF names, budget 0, a budget for
 * everything, the ordering rules (dense tensors before experts, whole layers of experts in ascending order, first
 * fit, token_embd stays in host memory), alignment, and the full Mixtral 8x7B Q4_0 shapes with 16 GiB, whose
 * expected figures are computed here from the architecture (not from the plan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/placement.h"

#define MAX_T 400

typedef struct model {
    smoe_place_tensor t[MAX_T];
    char              names[MAX_T][64];
    bool              on_gpu[MAX_T];
    size_t            n;
} model;

__attribute__((format(printf, 3, 4))) static void add(model *m, uint64_t nbytes, const char *fmt, ...) {
    assert_true(m->n < MAX_T);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->names[m->n], sizeof(m->names[0]), fmt, ap);
    va_end(ap);
    m->t[m->n] = (smoe_place_tensor){.name = m->names[m->n], .nbytes = nbytes};
    m->n++;
}

static size_t find(const model *m, const char *name) {
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0) return i;
    fail_msg("no tensor %s", name);
    return 0;
}

/* Mixtral 8x7B (HF config: hidden 4096, intermediate 14336, 32 layers, 8 experts, 8 KV heads of 128, vocab 32000)
 * as llama.cpp's Q4_0 mix stores it: matrices Q4_0 (18 bytes per 32), output Q6_K (210 per 256), norms and the
 * router F32. Tensors are listed in GGUF order (token_embd first, blocks interleaved). */
#define Q4_0(n) ((uint64_t)(n) / 32 * 18)
#define Q6_K(n) ((uint64_t)(n) / 256 * 210)
static void mixtral(model *m) {
    const uint64_t e = 4096, ff = 14336, kv = 1024, vocab = 32000, nx = 8;
    m->n = 0;
    add(m, Q4_0(e * vocab), "token_embd.weight");
    for (int l = 0; l < 32; l++) {
        add(m, e * 4, "blk.%d.attn_norm.weight", l);
        add(m, Q4_0(e * e), "blk.%d.attn_q.weight", l);
        add(m, Q4_0(e * kv), "blk.%d.attn_k.weight", l);
        add(m, Q4_0(e * kv), "blk.%d.attn_v.weight", l);
        add(m, Q4_0(e * e), "blk.%d.attn_output.weight", l);
        add(m, e * 4, "blk.%d.ffn_norm.weight", l);
        add(m, e * nx * 4, "blk.%d.ffn_gate_inp.weight", l);
        add(m, Q4_0(e * ff * nx), "blk.%d.ffn_gate_exps.weight", l);
        add(m, Q4_0(e * ff * nx), "blk.%d.ffn_down_exps.weight", l);
        add(m, Q4_0(e * ff * nx), "blk.%d.ffn_up_exps.weight", l);
    }
    add(m, e * 4, "output_norm.weight");
    add(m, Q6_K(e * vocab), "output.weight");
}

static void test_classify(void **state) {
    (void)state;
    int l = 99;
    assert_int_equal(smoe_place_classify("blk.12.attn_norm.weight", &l), SMOE_PLACE_NORM);
    assert_int_equal(l, 12);
    assert_int_equal(smoe_place_classify("blk.0.attn_k.weight", &l), SMOE_PLACE_ATTENTION);
    assert_int_equal(l, 0);
    assert_int_equal(smoe_place_classify("blk.31.ffn_gate_inp.weight", &l), SMOE_PLACE_ROUTER);
    assert_int_equal(smoe_place_classify("blk.31.ffn_up_exps.weight", &l), SMOE_PLACE_FFN);
    assert_int_equal(l, 31);
    assert_int_equal(smoe_place_classify("blk.4.ffn_down.7.weight", &l), SMOE_PLACE_FFN);
    assert_int_equal(smoe_place_classify("output.weight", &l), SMOE_PLACE_OUTPUT);
    assert_int_equal(l, -1);
    assert_int_equal(smoe_place_classify("output_norm.weight", &l), SMOE_PLACE_NORM);
    assert_int_equal(smoe_place_classify("token_embd.weight", &l), SMOE_PLACE_EMBD);
    assert_int_equal(smoe_place_classify("rope_freqs.weight", &l), SMOE_PLACE_OTHER);
    assert_int_equal(smoe_place_classify("blk.x.attn_q.weight", &l), SMOE_PLACE_OTHER); /* not a block name */
    assert_int_equal(l, -1);
    assert_string_equal(smoe_place_class_name(SMOE_PLACE_FFN), "ffn");
}

static void test_budget_zero_and_all(void **state) {
    (void)state;
    static model m;
    mixtral(&m);
    smoe_place_stats st;
    assert_int_equal(smoe_place_plan(m.t, m.n, 0, 256, m.on_gpu, &st), SMOE_OK);
    uint64_t total = 0;
    for (size_t i = 0; i < m.n; i++) {
        assert_false(m.on_gpu[i]);
        total += m.t[i].nbytes;
    }
    assert_int_equal(st.n_gpu, 0);
    assert_int_equal(st.n_host, (int)m.n);
    assert_true(st.host_bytes == total);
    assert_false(st.dense_complete);
    assert_int_equal(st.n_layers, 32);

    assert_int_equal(smoe_place_plan(m.t, m.n, UINT64_MAX, 256, m.on_gpu, &st), SMOE_OK);
    for (size_t i = 0; i < m.n; i++) assert_int_equal(m.on_gpu[i], i != find(&m, "token_embd.weight"));
    assert_true(st.dense_complete);
    assert_int_equal(st.n_ffn_layers_gpu, 32);
    assert_true(st.host_bytes == Q4_0(4096ull * 32000));
    assert_true(st.gpu_bytes == total - Q4_0(4096ull * 32000)); /* every size here is a multiple of 256 */
}

static void test_mixtral_16g(void **state) {
    (void)state;
    static model m;
    mixtral(&m);
    const uint64_t budget = 16ull << 30;
    /* dense: 32 layers of attention (2 * 4096^2 + 2 * 4096 * 1024 weights at 18/32 bytes), norms, routers, output */
    const uint64_t attn = 32 * Q4_0(2 * 4096ull * 4096 + 2 * 4096ull * 1024);
    const uint64_t norms = 65 * 4096 * 4, routers = 32 * 4096 * 8 * 4, output = Q6_K(4096ull * 32000);
    const uint64_t dense = attn + norms + routers + output;
    const uint64_t layer_ffn = 3 * Q4_0(4096ull * 14336 * 8);
    const int expect_layers = (int)((budget - dense) / layer_ffn);
    assert_int_equal(expect_layers, 20); /* 16 GiB: 20 of 32 layers' experts */
    smoe_place_stats st;
    assert_int_equal(smoe_place_plan(m.t, m.n, budget, 256, m.on_gpu, &st), SMOE_OK);
    assert_true(st.dense_complete);
    assert_int_equal(st.n_ffn_layers_gpu, expect_layers);
    assert_true(st.gpu_bytes == dense + (uint64_t)expect_layers * layer_ffn);
    assert_true(st.gpu_bytes <= budget);
    char name[64];
    for (int l = 0; l < 32; l++) {
        snprintf(name, sizeof(name), "blk.%d.ffn_up_exps.weight", l);
        assert_int_equal(m.on_gpu[find(&m, name)], l < expect_layers);
        snprintf(name, sizeof(name), "blk.%d.ffn_gate_exps.weight", l);
        assert_int_equal(m.on_gpu[find(&m, name)], l < expect_layers);
        snprintf(name, sizeof(name), "blk.%d.attn_v.weight", l);
        assert_true(m.on_gpu[find(&m, name)]);
    }
    assert_false(m.on_gpu[find(&m, "token_embd.weight")]);
    assert_true(m.on_gpu[find(&m, "output.weight")]);
}

/* ordering: norms and routers before attention before output before experts; first fit skips what does not fit */
static void test_ordering(void **state) {
    (void)state;
    static model m;
    m.n = 0;
    add(&m, 1000, "blk.%d.ffn_up_exps.weight", 0);     /* 0 */
    add(&m, 1000, "blk.%d.ffn_down_exps.weight", 0);   /* 1: unit with 0 (2000) */
    add(&m, 300, "blk.%d.attn_q.weight", 0);           /* 2 */
    add(&m, 300, "blk.%d.attn_k.weight", 0);           /* 3: unit with 2 (600) */
    add(&m, 10, "blk.%d.attn_norm.weight", 0);         /* 4 */
    add(&m, 20, "blk.%d.ffn_gate_inp.weight", 0);      /* 5 */
    add(&m, 500, "output.weight");                  /* 6 */
    add(&m, 100, "blk.%d.ffn_up_exps.weight", 1);      /* 7: layer 1 experts (100) */
    add(&m, 5, "token_embd.weight");                /* 8: never */
    smoe_place_stats st;
    /* 30 (norm + router) + 600 (attention) = 630; output 500 does not fit in 700 - 630; layer 0's experts (2000)
     * neither; layer 1's (100) does not fit in the remaining 70 */
    assert_int_equal(smoe_place_plan(m.t, m.n, 700, 1, m.on_gpu, &st), SMOE_OK);
    const bool want700[] = {false, false, true, true, true, true, false, false, false};
    for (size_t i = 0; i < m.n; i++) assert_int_equal(m.on_gpu[i], want700[i]);
    assert_false(st.dense_complete);
    /* 1200: output fits (1130), layer 1's experts do not (70 left) */
    assert_int_equal(smoe_place_plan(m.t, m.n, 1200, 1, m.on_gpu, &st), SMOE_OK);
    const bool want1200[] = {false, false, true, true, true, true, true, false, false};
    for (size_t i = 0; i < m.n; i++) assert_int_equal(m.on_gpu[i], want1200[i]);
    assert_true(st.dense_complete);
    /* 1300: layer 0's experts (2000) are skipped but layer 1's (100) fit: first fit, whole layers only */
    assert_int_equal(smoe_place_plan(m.t, m.n, 1300, 1, m.on_gpu, &st), SMOE_OK);
    const bool want1300[] = {false, false, true, true, true, true, true, true, false};
    for (size_t i = 0; i < m.n; i++) assert_int_equal(m.on_gpu[i], want1300[i]);
    assert_int_equal(st.n_ffn_layers_gpu, 1);
    assert_int_equal(st.gpu_bytes, 1230);
    /* 20: the norm (10) fits, the router (20) no longer does: both are one-tensor units */
    assert_int_equal(smoe_place_plan(m.t, m.n, 20, 1, m.on_gpu, &st), SMOE_OK);
    for (size_t i = 0; i < m.n; i++) assert_int_equal(m.on_gpu[i], i == 4);
}

static void test_alignment_and_errors(void **state) {
    (void)state;
    smoe_place_tensor t[2] = {{"blk.0.attn_norm.weight", 1}, {"blk.0.ffn_norm.weight", 1}};
    bool g[2];
    smoe_place_stats st;
    /* each takes 256 with the alignment: 300 holds one */
    assert_int_equal(smoe_place_plan(t, 2, 300, 256, g, &st), SMOE_OK);
    assert_true(g[0]);
    assert_false(g[1]);
    assert_int_equal(st.gpu_bytes, 256);
    assert_int_equal(st.host_bytes, 1);
    assert_int_equal(smoe_place_plan(t, 2, 300, 3, g, &st), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_place_plan(t, 2, 300, 0, g, &st), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_place_plan(NULL, 2, 300, 1, g, &st), SMOE_ERR_INVALID_ARGUMENT);
    smoe_place_tensor bad[1] = {{NULL, 1}};
    assert_int_equal(smoe_place_plan(bad, 1, 300, 1, g, &st), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_place_plan(NULL, 0, 300, 1, NULL, NULL), SMOE_OK);
    /* sizes near UINT64_MAX saturate instead of wrapping */
    smoe_place_tensor big[2] = {{"blk.0.ffn_up_exps.weight", UINT64_MAX - 10}, {"blk.0.ffn_down_exps.weight", 100}};
    assert_int_equal(smoe_place_plan(big, 2, UINT64_MAX - 1, 256, g, &st), SMOE_OK);
    assert_false(g[0]);
    assert_false(g[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),    cmocka_unit_test(test_budget_zero_and_all),
        cmocka_unit_test(test_mixtral_16g), cmocka_unit_test(test_ordering),
        cmocka_unit_test(test_alignment_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
