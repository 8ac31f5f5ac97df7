/* test-sampler.c - samplers against expectations computed here in double precision. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "smoe.h"

static void fill(smoe_token_data *d, const float *logits, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = (smoe_token_data){(int32_t)i, logits[i], 0.0f};
}

static int has_id(const smoe_token_data_array *a, int32_t id) {
    for (size_t i = 0; i < a->size; i++)
        if (a->data[i].id == id) return 1;
    return 0;
}

static void test_greedy(void **state) {
    (void)state;
    smoe_sampler *s = NULL;
    assert_int_equal(smoe_sampler_init_greedy(&s), SMOE_OK);
    const float logits[6] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f, -INFINITY};
    int32_t tok = -1;
    assert_int_equal(smoe_sampler_sample(s, logits, 6, &tok), SMOE_OK);
    assert_int_equal(tok, 1); /* tie between 1 and 3: lower id */
    smoe_sampler_free(s);
}

static void test_top_k_top_p_min_p(void **state) {
    (void)state;
    const float logits[8] = {1.0f, 4.0f, 2.0f, 0.0f, 3.0f, -2.0f, 2.5f, 1.5f};
    smoe_token_data d[8];
    smoe_sampler *s = NULL;

    /* top-k 3 keeps ids 1 (4.0), 4 (3.0), 6 (2.5) */
    assert_int_equal(smoe_sampler_init_top_k(3, &s), SMOE_OK);
    fill(d, logits, 8);
    smoe_token_data_array a = {d, 8, -1, false};
    assert_int_equal(smoe_sampler_apply(s, &a), SMOE_OK);
    assert_int_equal(a.size, 3);
    assert_true(has_id(&a, 1) && has_id(&a, 4) && has_id(&a, 6));
    smoe_sampler_free(s);

    /* top-p: expected smallest prefix of the sorted softmax reaching p, computed in double here */
    const float p = 0.8f;
    double e[8], sum = 0;
    for (int i = 0; i < 8; i++) sum += e[i] = exp(logits[i] - 4.0);
    const int order[8] = {1, 4, 6, 2, 7, 0, 3, 5};
    double acc = 0;
    size_t expect = 0;
    while (expect < 8) {
        acc += e[order[expect]] / sum;
        expect++;
        if (acc >= p) break;
    }
    assert_int_equal(smoe_sampler_init_top_p(p, 1, &s), SMOE_OK);
    fill(d, logits, 8);
    a = (smoe_token_data_array){d, 8, -1, false};
    assert_int_equal(smoe_sampler_apply(s, &a), SMOE_OK);
    assert_int_equal(a.size, expect);
    for (size_t i = 0; i < expect; i++) assert_int_equal(a.data[i].id, order[i]);
    smoe_sampler_free(s);

    /* min-p 0.2: keep p_i >= 0.2 p_max <=> logit >= 4 + ln 0.2 = 2.39 -> ids 1, 4, 6 */
    assert_int_equal(smoe_sampler_init_min_p(0.2f, 1, &s), SMOE_OK);
    fill(d, logits, 8);
    a = (smoe_token_data_array){d, 8, -1, false};
    assert_int_equal(smoe_sampler_apply(s, &a), SMOE_OK);
    assert_int_equal(a.size, 3);
    assert_true(has_id(&a, 1) && has_id(&a, 4) && has_id(&a, 6));
    smoe_sampler_free(s);
}

static void test_penalties(void **state) {
    (void)state;
    smoe_sampler *s = NULL;
    assert_int_equal(smoe_sampler_init_penalties(3, 2.0f, 0.5f, 0.25f, &s), SMOE_OK);
    /* history 0 1 1 2: the window of 3 holds 1 1 2 */
    smoe_sampler_accept(s, 0);
    smoe_sampler_accept(s, 1);
    smoe_sampler_accept(s, 1);
    smoe_sampler_accept(s, 2);
    const float logits[4] = {1.0f, 4.0f, -2.0f, 3.0f};
    smoe_token_data d[4];
    fill(d, logits, 4);
    smoe_token_data_array a = {d, 4, -1, false};
    assert_int_equal(smoe_sampler_apply(s, &a), SMOE_OK);
    float got[4];
    for (int i = 0; i < 4; i++) got[a.data[i].id] = a.data[i].logit;
    assert_float_equal(got[0], 1.0f, 1e-6);                       /* fell out of the window */
    assert_float_equal(got[1], 4.0f / 2.0f - 2 * 0.5f - 0.25f, 1e-6); /* count 2 */
    assert_float_equal(got[2], -2.0f * 2.0f - 0.5f - 0.25f, 1e-6);     /* negative: multiplied */
    assert_float_equal(got[3], 3.0f, 1e-6);
    smoe_sampler_reset(s);
    fill(d, logits, 4);
    a = (smoe_token_data_array){d, 4, -1, false};
    assert_int_equal(smoe_sampler_apply(s, &a), SMOE_OK);
    for (int i = 0; i < 4; i++) assert_float_equal(a.data[i].logit, logits[a.data[i].id], 0);
    smoe_sampler_free(s);
}

static void test_dist_matches_softmax(void **state) {
    (void)state;
    const float logits[5] = {0.0f, 1.0f, 2.0f, -1.0f, 0.5f};
    const float temp = 0.7f;
    double expect[5], sum = 0;
    for (int i = 0; i < 5; i++) sum += expect[i] = exp(logits[i] / temp);
    for (int i = 0; i < 5; i++) expect[i] /= sum;

    smoe_sampler_params p = smoe_sampler_default_params();
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 1234;
    smoe_sampler *s = NULL;
    assert_int_equal(smoe_sampler_init(&p, &s), SMOE_OK);
    enum { N = 200000 };
    long counts[5] = {0};
    for (int i = 0; i < N; i++) {
        int32_t t = -1;
        assert_int_equal(smoe_sampler_sample(s, logits, 5, &t), SMOE_OK);
        assert_true(t >= 0 && t < 5);
        counts[t]++;
    }
    double chi2 = 0;
    for (int i = 0; i < 5; i++) chi2 += pow(counts[i] - N * expect[i], 2) / (N * expect[i]);
    assert_true(chi2 < 20.5); /* 4 degrees of freedom: p < 0.0004 to fail by chance */
    smoe_sampler_free(s);
}

static void test_seed_determinism(void **state) {
    (void)state;
    float logits[100];
    for (int i = 0; i < 100; i++) logits[i] = (float)sin(i * 1.7) * 3.0f;
    smoe_sampler_params p = smoe_sampler_default_params();
    p.seed = 42;
    p.repeat_penalty = 1.3f;
    int32_t a[64], b[64], c[64];
    smoe_sampler *s = NULL;
    for (int run = 0; run < 3; run++) {
        p.seed = run == 2 ? 43 : 42;
        assert_int_equal(smoe_sampler_init(&p, &s), SMOE_OK);
        int32_t *out = run == 0 ? a : run == 1 ? b : c;
        for (int i = 0; i < 64; i++) assert_int_equal(smoe_sampler_sample(s, logits, 100, &out[i]), SMOE_OK);
        smoe_sampler_free(s);
    }
    assert_memory_equal(a, b, sizeof(a));
    assert_true(memcmp(a, c, sizeof(a)) != 0);
}

static void test_invalid(void **state) {
    (void)state;
    smoe_sampler *s = (smoe_sampler *)0x1;
    assert_int_equal(smoe_sampler_init_temp(0.0f, &s), SMOE_ERR_INVALID_ARGUMENT);
    assert_null(s);
    assert_int_equal(smoe_sampler_init_top_p(0.0f, 1, &s), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_sampler_init_top_p(1.5f, 1, &s), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_sampler_init_min_p(-0.1f, 1, &s), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_sampler_init_top_k(-1, &s), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_sampler_init_penalties(-2, 1.1f, 0, 0, &s), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_sampler_init_penalties(8, 0.0f, 0, 0, &s), SMOE_ERR_INVALID_ARGUMENT);
    smoe_sampler_params p = smoe_sampler_default_params();
    p.top_p = 2.0f;
    assert_int_equal(smoe_sampler_init(&p, &s), SMOE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(smoe_last_error(), "top-p"));
    p = smoe_sampler_default_params();
    p.temperature = 0.0f;
    p.min_p = 3.0f;
    assert_int_equal(smoe_sampler_init(&p, &s), SMOE_ERR_INVALID_ARGUMENT);
    p = smoe_sampler_default_params();
    p.size = 3;
    assert_int_equal(smoe_sampler_init(&p, &s), SMOE_ERR_INVALID_ARGUMENT);

    /* a chain without a final stage selects nothing */
    smoe_sampler *chain = NULL, *k = NULL;
    assert_int_equal(smoe_sampler_chain_init(&chain), SMOE_OK);
    assert_int_equal(smoe_sampler_init_top_k(2, &k), SMOE_OK);
    assert_int_equal(smoe_sampler_chain_add(chain, k), SMOE_OK);
    const float logits[3] = {1, 2, 3};
    int32_t t;
    assert_int_equal(smoe_sampler_sample(chain, logits, 3, &t), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_sampler_sample(chain, logits, 0, &t), SMOE_ERR_INVALID_ARGUMENT);
    /* adding to a non-chain frees the sampler (no leak under ASan) */
    assert_int_equal(smoe_sampler_init_greedy(&k), SMOE_OK);
    assert_int_equal(smoe_sampler_chain_add(k, chain), SMOE_ERR_INVALID_ARGUMENT);
    smoe_sampler_free(k);
    smoe_sampler_free(NULL);
    /* all -inf logits: no finite candidate */
    const float bad[2] = {-INFINITY, -INFINITY};
    assert_int_equal(smoe_sampler_init(NULL, &s), SMOE_OK);
    assert_int_equal(smoe_sampler_sample(s, bad, 2, &t), SMOE_ERR_INVALID_ARGUMENT);
    smoe_sampler_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),          cmocka_unit_test(test_top_k_top_p_min_p),
        cmocka_unit_test(test_penalties),       cmocka_unit_test(test_dist_matches_softmax),
        cmocka_unit_test(test_seed_determinism), cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
