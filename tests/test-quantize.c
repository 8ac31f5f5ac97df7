/* test-quantize.c - the per-tensor type policy (llama-quantize's rules for a Mixtral, stated here as a table) and
 * smoe_model_quantize: parameters, cancellation (no output, no temporary file), thread-count independence of the
 * output bytes, the stats callback, carried-over metadata. The gguf-package checks are in
 * tests/python/test_quantize_cli.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/gguf.h"
#include "quant/quant-policy.h"
#include "quant/quant.h"

/* ---- policy ---- */

typedef struct policy_case {
    const char *name;
    int64_t     ne0, ne1, ne2;
    smoe_ftype  ftype;
    smoe_type   want;
} policy_case;

static void test_policy_mixtral(void **state) {
    (void)state;
    /* Mixtral 8x7B: 32 layers, 8 experts, n_embd 4096, n_ff 14336, vocab 32000, 8 KV heads of 128 */
    const smoe_quant_model_info mixtral = {.n_layer = 32, .n_expert = 8, .has_output = true};
    const policy_case           cases[] = {
        /* never quantized */
        {"blk.0.attn_norm.weight", 4096, 1, 1, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_F32},
        {"output_norm.weight", 4096, 1, 1, SMOE_FTYPE_Q8_0, SMOE_TYPE_F32},
        {"blk.7.ffn_gate_inp.weight", 4096, 8, 1, SMOE_FTYPE_Q4_0, SMOE_TYPE_F32},
        {"blk.7.ffn_gate_inp.weight", 4096, 8, 1, SMOE_FTYPE_F16, SMOE_TYPE_F32},
        {"blk.7.attn_q.weight", 4096, 4096, 1, SMOE_FTYPE_F32, SMOE_TYPE_F32},
        /* plain types */
        {"blk.7.attn_q.weight", 4096, 4096, 1, SMOE_FTYPE_F16, SMOE_TYPE_F16},
        {"blk.7.ffn_up_exps.weight", 4096, 14336, 8, SMOE_FTYPE_BF16, SMOE_TYPE_BF16},
        /* Q4_K_M */
        {"token_embd.weight", 4096, 32000, 1, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q4_K},
        {"output.weight", 4096, 32000, 1, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q6_K},
        {"blk.0.attn_q.weight", 4096, 4096, 1, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q4_K},
        {"blk.0.attn_k.weight", 4096, 1024, 1, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q8_0},
        {"blk.13.attn_v.weight", 4096, 1024, 1, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q8_0},
        {"blk.13.attn_output.weight", 4096, 4096, 1, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q5_K},
        {"blk.0.ffn_down_exps.weight", 14336, 4096, 8, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q6_K},  /* first eighth  */
        {"blk.3.ffn_down_exps.weight", 14336, 4096, 8, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q6_K},
        {"blk.4.ffn_down_exps.weight", 14336, 4096, 8, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q4_K},
        {"blk.5.ffn_down_exps.weight", 14336, 4096, 8, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q4_K},
        {"blk.6.ffn_down_exps.weight", 14336, 4096, 8, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q6_K},  /* (6-4)%3 == 2 */
        {"blk.26.ffn_down_exps.weight", 14336, 4096, 8, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q4_K},
        {"blk.27.ffn_down_exps.weight", 14336, 4096, 8, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q6_K},  /* (27-4)%3 == 2 */
        {"blk.28.ffn_down_exps.weight", 14336, 4096, 8, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q6_K}, /* last eighth */
        {"blk.6.ffn_gate_exps.weight", 4096, 14336, 8, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q4_K},
        {"blk.6.ffn_up_exps.weight", 4096, 14336, 8, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q4_K},
        /* Q5_K_M: attn_output keeps the base type */
        {"blk.13.attn_output.weight", 4096, 4096, 1, SMOE_FTYPE_Q5_K_M, SMOE_TYPE_Q5_K},
        {"blk.6.ffn_down_exps.weight", 14336, 4096, 8, SMOE_FTYPE_Q5_K_M, SMOE_TYPE_Q6_K},
        {"blk.7.ffn_down_exps.weight", 14336, 4096, 8, SMOE_FTYPE_Q5_K_M, SMOE_TYPE_Q5_K},
        {"blk.2.attn_v.weight", 4096, 1024, 1, SMOE_FTYPE_Q5_K_M, SMOE_TYPE_Q8_0},
        /* legacy types: output Q6_K (Q8_0 stays Q8_0), attention k/v Q8_0 with 8 experts */
        {"output.weight", 4096, 32000, 1, SMOE_FTYPE_Q4_0, SMOE_TYPE_Q6_K},
        {"output.weight", 4096, 32000, 1, SMOE_FTYPE_Q5_1, SMOE_TYPE_Q6_K},
        {"output.weight", 4096, 32000, 1, SMOE_FTYPE_Q8_0, SMOE_TYPE_Q8_0},
        {"token_embd.weight", 4096, 32000, 1, SMOE_FTYPE_Q4_0, SMOE_TYPE_Q4_0},
        {"blk.1.attn_k.weight", 4096, 1024, 1, SMOE_FTYPE_Q4_0, SMOE_TYPE_Q8_0},
        {"blk.1.attn_v.weight", 4096, 1024, 1, SMOE_FTYPE_Q4_1, SMOE_TYPE_Q8_0},
        {"blk.1.attn_q.weight", 4096, 4096, 1, SMOE_FTYPE_Q5_0, SMOE_TYPE_Q5_0},
        {"blk.0.ffn_down_exps.weight", 14336, 4096, 8, SMOE_FTYPE_Q4_0, SMOE_TYPE_Q4_0},
        {"blk.1.attn_output.weight", 4096, 4096, 1, SMOE_FTYPE_Q8_0, SMOE_TYPE_Q8_0},
        /* pure K types */
        {"output.weight", 4096, 32000, 1, SMOE_FTYPE_Q4_K, SMOE_TYPE_Q4_K},
        {"blk.1.attn_v.weight", 4096, 1024, 1, SMOE_FTYPE_Q5_K, SMOE_TYPE_Q5_K},
        {"blk.0.ffn_down_exps.weight", 14336, 4096, 8, SMOE_FTYPE_Q6_K, SMOE_TYPE_Q6_K},
        /* AUTO */
        {"blk.0.ffn_down_exps.weight", 14336, 4096, 8, SMOE_FTYPE_AUTO, SMOE_TYPE_Q4_K},
        {"blk.0.attn_q.weight", 4096, 4096, 1, SMOE_FTYPE_AUTO, SMOE_TYPE_Q8_0},
        {"token_embd.weight", 4096, 32000, 1, SMOE_FTYPE_AUTO, SMOE_TYPE_Q4_K},
        {"output.weight", 4096, 32000, 1, SMOE_FTYPE_AUTO, SMOE_TYPE_Q6_K},
        {"blk.0.ffn_gate_inp.weight", 4096, 8, 1, SMOE_FTYPE_AUTO, SMOE_TYPE_F32},
        /* the older one-tensor-per-expert layout counts as experts */
        {"blk.3.ffn_up.5.weight", 4096, 14336, 1, SMOE_FTYPE_AUTO, SMOE_TYPE_Q4_K},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const policy_case *c      = &cases[i];
        const int64_t      ne[3]  = {c->ne0, c->ne1, c->ne2};
        const uint32_t     n_dims = c->ne2 > 1 ? 3 : c->ne1 > 1 ? 2 : 1;
        const smoe_type    got    = smoe_quant_choose_type(c->name, ne, n_dims, c->ftype, &mixtral);
        if (got != c->want) {
            fail_msg("%s (ftype %d): %s, expected %s", c->name, (int)c->ftype, smoe_type_name(got),
                     smoe_type_name(c->want));
        }
    }
}

static void test_policy_fallbacks(void **state) {
    (void)state;
    const smoe_quant_model_info four = {.n_layer = 2, .n_expert = 4, .has_output = true};
    const policy_case           cases[] = {
        /* rows of 64 (the tiny llama.cpp model): K-quants fall back, as llama-quantize's files show */
        {"token_embd.weight", 64, 32000, 1, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q5_0},
        {"output.weight", 64, 32000, 1, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q8_0},
        {"output.weight", 64, 32000, 1, SMOE_FTYPE_Q4_0, SMOE_TYPE_Q8_0},
        {"blk.0.attn_v.weight", 64, 32, 1, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q5_0},
        {"blk.1.attn_v.weight", 64, 32, 1, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q8_0}, /* Q6_K on the last layer */
        {"blk.1.ffn_down_exps.weight", 128, 64, 4, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q8_0},
        {"blk.0.ffn_down_exps.weight", 128, 64, 4, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q5_0},
        {"blk.0.attn_k.weight", 64, 32, 1, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_Q5_0}, /* 4 experts: no Q8_0 bump */
        {"blk.0.attn_output.weight", 64, 64, 1, SMOE_FTYPE_Q5_K_M, SMOE_TYPE_Q5_1},
        {"blk.0.attn_q.weight", 64, 64, 1, SMOE_FTYPE_Q6_K, SMOE_TYPE_Q8_0},
        /* rows no block divides: F16 */
        {"blk.0.attn_q.weight", 80, 80, 1, SMOE_FTYPE_Q4_K_M, SMOE_TYPE_F16},
        {"blk.0.attn_q.weight", 80, 80, 1, SMOE_FTYPE_Q4_0, SMOE_TYPE_F16},
        {"blk.0.ffn_up_exps.weight", 80, 96, 4, SMOE_FTYPE_AUTO, SMOE_TYPE_F16},
        {"blk.0.ffn_down_exps.weight", 96, 80, 4, SMOE_FTYPE_AUTO, SMOE_TYPE_Q4_0},
        {"blk.0.attn_q.weight", 80, 80, 1, SMOE_FTYPE_F16, SMOE_TYPE_F16},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const policy_case *c      = &cases[i];
        const int64_t      ne[3]  = {c->ne0, c->ne1, c->ne2};
        const uint32_t     n_dims = c->ne2 > 1 ? 3 : 2;
        const smoe_type    got    = smoe_quant_choose_type(c->name, ne, n_dims, c->ftype, &four);
        if (got != c->want) {
            fail_msg("%s [%lld] (ftype %d): %s, expected %s", c->name, (long long)c->ne0, (int)c->ftype,
                     smoe_type_name(got), smoe_type_name(c->want));
        }
        assert_true(smoe_row_size(got, c->ne0) > 0);
    }
    /* a tied model (no output.weight): token_embd gets the output's treatment */
    const smoe_quant_model_info tied = {.n_layer = 32, .n_expert = 8, .has_output = false};
    const int64_t               ne[2] = {4096, 32000};
    assert_int_equal(smoe_quant_choose_type("token_embd.weight", ne, 2, SMOE_FTYPE_Q4_K_M, &tied), SMOE_TYPE_Q6_K);
    assert_int_equal(smoe_quant_choose_type("token_embd.weight", ne, 2, SMOE_FTYPE_Q4_K_M, &(smoe_quant_model_info){
                                                32, 8, true}),
                     SMOE_TYPE_Q4_K);
    /* names */
    assert_int_equal(smoe_quant_layer_of("blk.31.attn_q.weight"), 31);
    assert_int_equal(smoe_quant_layer_of("blk.x.attn_q.weight"), -1);
    assert_int_equal(smoe_quant_layer_of("blk.12"), -1);
    assert_int_equal(smoe_quant_layer_of("output.weight"), -1);
    assert_false(smoe_quant_tensor_is_matrix("blk.0.ffn_norm.weight", 2));
    assert_false(smoe_quant_tensor_is_matrix("blk.0.attn_q.weight", 1));
    assert_true(smoe_quant_tensor_is_matrix("blk.0.attn_q.weight", 2));
}

/* ---- smoe_model_quantize ---- */

static char tmp_dir[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/smoe-test-quantize-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    DIR *d = opendir(tmp_dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char p[600];
            snprintf(p, sizeof(p), "%s/%s", tmp_dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmp_dir);
    return 0;
}

static const char *path_in(const char *name) {
    static char p[4][600];
    static int  k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof(p[k]), "%s/%s", tmp_dir, name);
    return p[k];
}

static int count_files(void) {
    int  n = 0;
    DIR *d = opendir(tmp_dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* A small llama-architecture file: 2 layers of 4 experts, rows of 256, F32 weights. */
static void write_model(const char *path) {
    smoe_gguf_writer *w = NULL;
    assert_int_equal(smoe_gguf_writer_open(path, &w), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_str(w, "general.architecture", "llama"), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_u32(w, "llama.block_count", 2), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_u32(w, "llama.expert_count", 4), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_str(w, "test.marker", "kept"), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_u32(w, "general.file_type", 0), SMOE_OK);
    static const struct {
        const char *name;
        uint32_t    n_dims;
        int64_t     ne[3];
    } t[] = {
        {"token_embd.weight", 2, {256, 64, 1}},       {"blk.0.attn_norm.weight", 1, {256, 1, 1}},
        {"blk.0.attn_q.weight", 2, {256, 256, 1}},    {"blk.0.ffn_gate_inp.weight", 2, {256, 4, 1}},
        {"blk.0.ffn_down_exps.weight", 3, {256, 256, 4}}, {"blk.1.ffn_down_exps.weight", 3, {256, 256, 4}},
        {"output.weight", 2, {256, 64, 1}},
    };
    const size_t n_t = sizeof(t) / sizeof(t[0]);
    for (size_t i = 0; i < n_t; i++) {
        assert_int_equal(smoe_gguf_writer_add_tensor(w, t[i].name, SMOE_TYPE_F32, t[i].n_dims, t[i].ne), SMOE_OK);
    }
    assert_int_equal(smoe_gguf_writer_begin_data(w), SMOE_OK);
    uint64_t s = 12345;
    for (size_t i = 0; i < n_t; i++) {
        const int64_t n = t[i].ne[0] * t[i].ne[1] * t[i].ne[2];
        float        *x = malloc(sizeof(float) * (size_t)n);
        for (int64_t k = 0; k < n; k++) {
            s    = s * 6364136223846793005ull + 1442695040888963407ull;
            x[k] = (float)((double)(s >> 40) / (double)(1ull << 24) - 0.5) * 0.1f;
        }
        assert_int_equal(smoe_gguf_writer_write_data(w, x, sizeof(float) * (size_t)n), SMOE_OK);
        free(x);
    }
    assert_int_equal(smoe_gguf_writer_finish(w), SMOE_OK);
}

static bool cancel_at_second(uint64_t done, uint64_t total, void *user_data) {
    (void)done;
    (void)total;
    int *calls = user_data;
    return ++*calls < 2;
}

static void test_params_and_cancel(void **state) {
    (void)state;
    char in[600];
    snprintf(in, sizeof(in), "%s", path_in("in.gguf")); /* path_in rotates its buffers */
    write_model(in);
    const int n_before = count_files();

    assert_int_equal(smoe_model_quantize(NULL, "x", NULL), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_model_quantize(in, NULL, NULL), SMOE_ERR_INVALID_ARGUMENT);
    smoe_quantize_params p = smoe_quantize_default_params();
    assert_int_equal(p.ftype, SMOE_FTYPE_Q4_K_M);
    p.ftype = (smoe_ftype)5;
    assert_int_equal(smoe_model_quantize(in, path_in("out.gguf"), &p), SMOE_ERR_INVALID_ARGUMENT);
    p       = smoe_quantize_default_params();
    p.size  = 3;
    assert_int_equal(smoe_model_quantize(in, path_in("out.gguf"), &p), SMOE_ERR_INVALID_ARGUMENT);
    p           = smoe_quantize_default_params();
    p.n_threads = -1;
    assert_int_equal(smoe_model_quantize(in, path_in("out.gguf"), &p), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_model_quantize(path_in("absent.gguf"), path_in("out.gguf"), NULL), SMOE_ERR_IO);
    assert_non_null(strstr(smoe_last_error(), "absent.gguf"));

    int calls           = 0;
    p                   = smoe_quantize_default_params();
    p.progress          = cancel_at_second;
    p.progress_user_data = &calls;
    const smoe_status st = smoe_model_quantize(in, path_in("out.gguf"), &p);
    if (st != SMOE_ERR_CANCELLED) fail_msg("status %d: %s", (int)st, smoe_last_error());
    assert_int_equal(calls, 2);
    assert_int_equal(count_files(), n_before); /* neither the output nor a temporary file */
}

typedef struct stats_log {
    int  n, n_copied;
    char names[16][64];
} stats_log;

static void collect(const smoe_quantize_tensor_stats *s, void *user_data) {
    stats_log *l = user_data;
    if (l->n < 16) snprintf(l->names[l->n], sizeof(l->names[0]), "%s", s->name);
    l->n++;
    l->n_copied += s->copied;
    assert_true(s->copied ? s->rmse == 0.0 : s->rmse > 0.0);
    assert_true(isfinite(s->nmse) && s->max_abs_err >= s->rmse);
}

static void *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc(*size);
    assert_int_equal(fread(b, 1, *size, f), *size);
    fclose(f);
    return b;
}

static void test_quantize_file(void **state) {
    (void)state;
    char in[600];
    snprintf(in, sizeof(in), "%s", path_in("in2.gguf")); /* path_in rotates its buffers */
    write_model(in);
    stats_log            log = {0};
    smoe_quantize_params p   = smoe_quantize_default_params();
    p.ftype                  = SMOE_FTYPE_Q4_K_M;
    p.n_threads              = 1;
    p.stats                  = collect;
    p.stats_user_data        = &log;
    assert_int_equal(smoe_model_quantize(in, path_in("a.gguf"), &p), SMOE_OK);
    assert_int_equal(log.n, 7);
    assert_int_equal(log.n_copied, 2); /* the norm and the router */
    p.n_threads = 3;
    p.stats     = NULL;
    assert_int_equal(smoe_model_quantize(in, path_in("b.gguf"), &p), SMOE_OK);
    size_t a_size, b_size;
    void  *a = read_all(path_in("a.gguf"), &a_size), *b = read_all(path_in("b.gguf"), &b_size);
    assert_int_equal(a_size, b_size);
    assert_memory_equal(a, b, a_size); /* the thread count does not change a byte */
    free(a);
    free(b);

    smoe_gguf *g = NULL;
    assert_int_equal(smoe_gguf_open(path_in("a.gguf"), &g), SMOE_OK);
    uint32_t v = 0;
    assert_int_equal(smoe_gguf_get_u32(g, "general.file_type", &v), SMOE_OK);
    assert_int_equal(v, 15);
    assert_int_equal(smoe_gguf_get_u32(g, "general.quantization_version", &v), SMOE_OK);
    assert_int_equal(v, 2);
    const char *marker = NULL;
    assert_int_equal(smoe_gguf_get_str(g, "test.marker", &marker), SMOE_OK);
    assert_string_equal(marker, "kept");
    static const struct {
        const char *name;
        smoe_type   type;
    } want[] = {
        {"token_embd.weight", SMOE_TYPE_Q4_K},          {"blk.0.attn_norm.weight", SMOE_TYPE_F32},
        {"blk.0.attn_q.weight", SMOE_TYPE_Q4_K},        {"blk.0.ffn_gate_inp.weight", SMOE_TYPE_F32},
        {"blk.0.ffn_down_exps.weight", SMOE_TYPE_Q4_K}, {"blk.1.ffn_down_exps.weight", SMOE_TYPE_Q6_K},
        {"output.weight", SMOE_TYPE_Q6_K},
    };
    assert_int_equal(smoe_gguf_n_tensors(g), 7);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const int64_t k = smoe_gguf_find_tensor(g, want[i].name);
        assert_true(k >= 0);
        assert_string_equal(log.names[i], want[i].name); /* stats come in file order */
        if (smoe_gguf_tensor(g, k)->type != want[i].type) {
            fail_msg("%s: %s, expected %s", want[i].name, smoe_type_name(smoe_gguf_tensor(g, k)->type),
                     smoe_type_name(want[i].type));
        }
    }
    smoe_gguf_close(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_mixtral),
        cmocka_unit_test(test_policy_fallbacks),
        cmocka_unit_test(test_params_and_cancel),
        cmocka_unit_test(test_quantize_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
