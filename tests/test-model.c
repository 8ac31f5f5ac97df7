/*
 * test-model.c - loading Mixtral GGUFs, the forward pass, the KV cache and smoe_decode.
 *
 * Numerics are checked against references that are not our code: llama.cpp's logits for its own conversions in
 * /work/shared/data/llamacpp-ref (skipped, with a message, when that folder is absent; tests/python/test_model.py
 * compares against a float64 numpy forward pass and always runs). The other tests use small random models written
 * here with the GGUF writer and check self-consistency (prefill vs token-by-token, batched sequences vs alone, mmap
 * vs read, merged vs per-expert layout) and error handling (status code + a message naming the problem).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/gguf.h"
#include "smoe.h"

#define REF_DIR "/work/shared/data/llamacpp-ref"

/* ---- a small random Mixtral-shaped model ---- */

typedef struct gen_opts {
    const char *arch;
    int         n_layer, n_embd, n_head, n_head_kv, n_ff, n_expert, n_used, n_vocab;
    smoe_type   wtype;         /* type of the matrices (norms stay f32) */
    bool        per_expert;    /* one tensor per expert */
    bool        tied;          /* no output.weight */
    bool        output_is_embd; /* output.weight present, equal to token_embd */
    const char *skip_tensor;   /* omitted */
    const char *bad_shape;     /* this tensor's ne[1] is one more than it should be */
    const char *retype;        /* this tensor gets type retype_to (zero bytes) */
    smoe_type   retype_to;
    const char *skip_key;      /* metadata key (without the arch prefix) omitted */
    uint32_t    alignment;     /* general.alignment; 0 = default (32) */
    uint32_t    seed;
} gen_opts;

static gen_opts default_opts(void) {
    return (gen_opts){.arch = "llama", .n_layer = 2, .n_embd = 128, .n_head = 4, .n_head_kv = 2, .n_ff = 96,
                      .n_expert = 4, .n_used = 2, .n_vocab = 101, .wtype = SMOE_TYPE_F32, .seed = 1};
}

typedef struct gen_tensor {
    char      name[64];
    smoe_type type;
    uint32_t  n_dims;
    int64_t   ne[3];
    float    *data; /* f32 values (converted to `type` when written) */
} gen_tensor;

static uint64_t hash_str(const char *s, uint32_t seed) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Deterministic values in [-scale, scale] (+ offset) from a name, so both expert layouts get the same weights. */
static float *rand_values(const char *name, uint32_t seed, int64_t n, float scale, float offset) {
    float   *v = malloc((size_t)n * sizeof(float));
    uint64_t s = hash_str(name, seed) | 1;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        v[i] = offset + scale * ((float)(s >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
    }
    return v;
}

static void add_t(gen_tensor *ts, int *n, const gen_opts *o, const char *name, uint32_t n_dims, int64_t ne0,
                  int64_t ne1, int64_t ne2, bool norm) {
    gen_tensor *t = &ts[(*n)++];
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->type = norm ? SMOE_TYPE_F32 : o->wtype;
    t->n_dims = n_dims;
    t->ne[0] = ne0, t->ne[1] = ne1, t->ne[2] = ne2;
    const int64_t cnt = ne0 * ne1 * ne2;
    t->data = norm ? rand_values(name, o->seed, cnt, 0.2f, 1.0f) : rand_values(name, o->seed, cnt, 1.0f / sqrtf((float)ne0), 0.0f);
}

/* Writes the model; returns 0 on success. */
static int write_model(const char *path, const gen_opts *o) {
    const int hd = o->n_embd / o->n_head;
    gen_tensor *ts = calloc(16 + (size_t)o->n_layer * (10 + 3 * (size_t)o->n_expert), sizeof(gen_tensor));
    int         n = 0;
    add_t(ts, &n, o, "token_embd.weight", 2, o->n_embd, o->n_vocab, 1, false);
    add_t(ts, &n, o, "output_norm.weight", 1, o->n_embd, 1, 1, true);
    if (!o->tied) {
        add_t(ts, &n, o, "output.weight", 2, o->n_embd, o->n_vocab, 1, false);
        if (o->output_is_embd) memcpy(ts[n - 1].data, ts[0].data, (size_t)o->n_embd * o->n_vocab * sizeof(float));
    }
    char name[64];
    for (int il = 0; il < o->n_layer; il++) {
#define T(suffix, nd, a, b, c, norm)                                                                                   \
    snprintf(name, sizeof(name), "blk.%d." suffix ".weight", il);                                                    \
    add_t(ts, &n, o, name, nd, a, b, c, norm)
        T("attn_norm", 1, o->n_embd, 1, 1, true);
        T("attn_q", 2, o->n_embd, o->n_head * hd, 1, false);
        T("attn_k", 2, o->n_embd, o->n_head_kv * hd, 1, false);
        T("attn_v", 2, o->n_embd, o->n_head_kv * hd, 1, false);
        T("attn_output", 2, o->n_head * hd, o->n_embd, 1, false);
        T("ffn_norm", 1, o->n_embd, 1, 1, true);
        T("ffn_gate_inp", 2, o->n_embd, o->n_expert, 1, false);
        T("ffn_gate_exps", 3, o->n_embd, o->n_ff, o->n_expert, false);
        T("ffn_down_exps", 3, o->n_ff, o->n_embd, o->n_expert, false);
        T("ffn_up_exps", 3, o->n_embd, o->n_ff, o->n_expert, false);
#undef T
    }
    if (o->per_expert) { /* split every *_exps tensor into per-expert tensors with the same values */
        int m = n;
        for (int i = 0; i < m; i++) {
            char *p = strstr(ts[i].name, "_exps.weight");
            if (!p || ts[i].n_dims != 3) continue;
            const int64_t per = ts[i].ne[0] * ts[i].ne[1];
            for (int e = 0; e < o->n_expert; e++) {
                gen_tensor *t = &ts[n++];
                *t = ts[i];
                char nm[sizeof(t->name)]; /* via a copy: gcc -O0 -Wrestrict cannot tell t from ts[i] */
                snprintf(nm, sizeof(nm), "%.*s.%d.weight", (int)(p - ts[i].name), ts[i].name, e);
                memcpy(t->name, nm, sizeof(nm));
                t->n_dims = 2;
                t->ne[2] = 1;
                t->data = malloc((size_t)per * sizeof(float));
                memcpy(t->data, ts[i].data + e * per, (size_t)per * sizeof(float));
            }
            ts[i].n_dims = 0; /* dropped */
        }
    }

    smoe_gguf_writer *w = NULL;
    if (smoe_gguf_writer_open(path, &w) != SMOE_OK) return -1;
    char key[128];
    smoe_gguf_writer_set_str(w, "general.architecture", o->arch);
    smoe_gguf_writer_set_str(w, "general.name", "test model");
    if (o->alignment) smoe_gguf_writer_set_u32(w, "general.alignment", o->alignment);
#define KEY_U32(suffix, v)                                                                                             \
    if (!o->skip_key || strcmp(o->skip_key, suffix) != 0) {                                                          \
        snprintf(key, sizeof(key), "%s." suffix, o->arch);                                                           \
        smoe_gguf_writer_set_u32(w, key, (uint32_t)(v));                                                             \
    }
    KEY_U32("block_count", o->n_layer);
    KEY_U32("context_length", 4096);
    KEY_U32("embedding_length", o->n_embd);
    KEY_U32("feed_forward_length", o->n_ff);
    KEY_U32("attention.head_count", o->n_head);
    KEY_U32("attention.head_count_kv", o->n_head_kv);
    KEY_U32("expert_count", o->n_expert);
    KEY_U32("expert_used_count", o->n_used);
#undef KEY_U32
    snprintf(key, sizeof(key), "%s.rope.freq_base", o->arch);
    smoe_gguf_writer_set_f32(w, key, 10000.0f);
    if (!o->skip_key || strcmp(o->skip_key, "attention.layer_norm_rms_epsilon") != 0) {
        snprintf(key, sizeof(key), "%s.attention.layer_norm_rms_epsilon", o->arch);
        smoe_gguf_writer_set_f32(w, key, 1e-5f);
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        gen_tensor *t = &ts[i];
        if (t->n_dims == 0 || (o->skip_tensor && strcmp(o->skip_tensor, t->name) == 0)) continue;
        int64_t ne[3] = {t->ne[0], t->ne[1], t->ne[2]};
        if (o->bad_shape && strcmp(o->bad_shape, t->name) == 0) {
            ne[1]++;
            if (t->n_dims == 1) t->n_dims = 2;
        }
        if (o->retype && strcmp(o->retype, t->name) == 0) t->type = o->retype_to;
        rc = smoe_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, ne) == SMOE_OK ? 0 : -1;
        t->ne[1] = ne[1];
    }
    rc = rc == 0 && smoe_gguf_writer_begin_data(w) == SMOE_OK ? 0 : -1;
    for (int i = 0; i < n && rc == 0; i++) {
        gen_tensor *t = &ts[i];
        if (t->n_dims == 0 || (o->skip_tensor && strcmp(o->skip_tensor, t->name) == 0)) continue;
        const int64_t cnt = t->ne[0] * t->ne[1] * t->ne[2];
        const size_t  bytes = smoe_row_size(t->type, t->ne[0]) * (size_t)(t->ne[1] * t->ne[2]);
        void         *buf = calloc(1, bytes);
        const smoe_type_traits *tr = smoe_type_get_traits(t->type);
        if (o->bad_shape && strcmp(o->bad_shape, t->name) == 0) {
            /* more rows than values: leave zeros */
        } else if (t->type == SMOE_TYPE_F32) {
            memcpy(buf, t->data, bytes);
        } else if (tr->from_f32 && !(o->retype && strcmp(o->retype, t->name) == 0)) {
            tr->from_f32(t->data, buf, cnt);
        }
        rc = smoe_gguf_writer_write_data(w, buf, bytes) == SMOE_OK ? 0 : -1;
        free(buf);
    }
    if (rc == 0) rc = smoe_gguf_writer_finish(w) == SMOE_OK ? 0 : -1;
    else smoe_gguf_writer_abort(w);
    for (int i = 0; i < n; i++) free(ts[i].data);
    free(ts);
    return rc;
}

/* ---- helpers ---- */

static char g_dir[64];

static const char *tmp_path(const char *name) {
    static char buf[8][256];
    static int  k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", g_dir, name);
    return buf[k];
}

static const char *model_file(const char *name, const gen_opts *o) {
    const char *p = tmp_path(name);
    const int   rc = write_model(p, o);
    if (rc != 0) print_error("writing %s: %s\n", name, smoe_last_error());
    assert_int_equal(rc, 0);
    return p;
}

static int g_n_warnings; /* warnings about reading weights into memory although mmap was asked for */

static void on_log(smoe_log_level level, const char *msg, void *ud) {
    (void)ud;
    if (level <= SMOE_LOG_WARN && strstr(msg, "reading")) g_n_warnings++;
}

static smoe_model *load(const char *path, bool mmap) {
    smoe_model_params mp = smoe_model_default_params();
    mp.n_threads = 2;
    mp.use_mmap = mmap;
    mp.log_fn = on_log;
    smoe_model *m = NULL;
    smoe_status st = smoe_model_load(path, &mp, &m);
    if (st != SMOE_OK) print_error("load %s: %s\n", path, smoe_last_error());
    assert_int_equal(st, SMOE_OK);
    return m;
}

static smoe_context *new_ctx(smoe_model *m, uint32_t n_ctx, uint32_t n_batch, uint32_t n_seq, smoe_kv_type kv) {
    smoe_context_params cp = smoe_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.n_seq_max = n_seq;
    cp.kv_type = kv;
    smoe_context *ctx = NULL;
    smoe_status   st = smoe_context_init(m, &cp, &ctx);
    if (st != SMOE_OK) print_error("context: %s\n", smoe_last_error());
    assert_int_equal(st, SMOE_OK);
    return ctx;
}

/* Decodes tokens[0..n) of sequence seq starting at pos0 in one batch, all logits requested; copies them out. */
static void decode_all(smoe_context *ctx, const int32_t *tokens, int n, int32_t pos0, int32_t seq, float *out) {
    smoe_model_info info;
    smoe_model_get_info(smoe_context_model(ctx), &info);
    smoe_batch b;
    assert_int_equal(smoe_batch_init(n, &b), SMOE_OK);
    for (int i = 0; i < n; i++) assert_int_equal(smoe_batch_add(&b, tokens[i], pos0 + i, seq, true), SMOE_OK);
    smoe_status st = smoe_decode(ctx, &b);
    if (st != SMOE_OK) print_error("decode: %s\n", smoe_last_error());
    assert_int_equal(st, SMOE_OK);
    for (int i = 0; out && i < n; i++) {
        const float *l = smoe_get_logits(ctx, i);
        assert_non_null(l);
        memcpy(out + (size_t)i * info.n_vocab, l, (size_t)info.n_vocab * sizeof(float));
    }
    smoe_batch_free(&b);
}

/* max |a - b| / max |b| */
static double rel_diff(const float *a, const float *b, size_t n) {
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= md)) md = d; /* NaN propagates */
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
    }
    return mb > 0 ? md / mb : md;
}

static double cosine(const float *a, const float *b, size_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / sqrt(aa * bb);
}

static const int32_t k_prompt[12] = {1, 17, 42, 5, 99, 63, 7, 7, 30, 81, 2, 55};

static int setup_dir(void **state) {
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/smoe-test-model-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

static int teardown_dir(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- loading ---- */

static void test_load_info(void **state) {
    (void)state;
    gen_opts    o = default_opts();
    smoe_model *m = load(model_file("info.gguf", &o), true);
    smoe_model_info info;
    smoe_model_get_info(m, &info);
    assert_int_equal(info.n_vocab, 101);
    assert_int_equal(info.n_layer, 2);
    assert_int_equal(info.n_embd, 128);
    assert_int_equal(info.n_head, 4);
    assert_int_equal(info.n_head_kv, 2);
    assert_int_equal(info.head_dim, 32);
    assert_int_equal(info.n_ff, 96);
    assert_int_equal(info.n_expert, 4);
    assert_int_equal(info.n_expert_used, 2);
    assert_int_equal(info.n_ctx_train, 4096);
    assert_true(info.rope_theta == 10000.0f);
    assert_true(info.rms_eps == 1e-5f);
    assert_string_equal(info.name, "test model");
    assert_string_equal(info.type_name, "f32");
    const uint64_t per_layer = 2 * 128 + 128 * 128 * 2 + 128 * 64 * 2 + 128 * 4 + 3 * 128 * 96 * 4;
    const uint64_t n_params = 2 * 128 * 101 + 128 + 2 * per_layer;
    assert_int_equal(info.n_params, n_params);
    assert_int_equal(info.size_bytes, 4 * n_params);
    assert_null(smoe_model_tokenizer(m)); /* no tokenizer keys in this file */
    smoe_model_free(m);
    smoe_model_free(NULL);
}

/* mmap vs read into memory, merged vs per-expert experts, tied output: identical logits. */
static void test_layouts_same_logits(void **state) {
    (void)state;
    gen_opts    o = default_opts();
    const char *merged = model_file("merged.gguf", &o);
    o.per_expert = true;
    const char *split = model_file("split.gguf", &o);
    o = default_opts();
    o.output_is_embd = true;
    const char *untied = model_file("untied.gguf", &o);
    o.output_is_embd = false;
    o.tied = true;
    const char *tied = model_file("tied.gguf", &o);

    const size_t nv = 101, n = 12;
    float       *ref = malloc(n * nv * sizeof(float)), *got = malloc(n * nv * sizeof(float));
    const char  *files[] = {merged, merged, split, split};
    const bool   mmaps[] = {true, false, true, false};
    for (int k = 0; k < 4; k++) {
        smoe_model   *m = load(files[k], mmaps[k]);
        smoe_context *ctx = new_ctx(m, 64, 0, 1, SMOE_KV_F32);
        decode_all(ctx, k_prompt, (int)n, 0, 0, k == 0 ? ref : got);
        if (k > 0) assert_memory_equal(ref, got, n * nv * sizeof(float));
        smoe_context_free(ctx);
        smoe_model_free(m);
    }
    /* Q8_0 rows of 136 bytes: with general.alignment 8 the mapped tensors are not 32-aligned, so the loader reads
     * them into memory (and says so); with the default alignment it uses the mapping as it is */
    o = default_opts();
    o.wtype = SMOE_TYPE_Q8_0;
    const char *q8 = model_file("q8-a32.gguf", &o);
    o.alignment = 8;
    const char *q8a8 = model_file("q8-a8.gguf", &o);
    for (int k = 0; k < 2; k++) {
        g_n_warnings = 0;
        smoe_model   *m = load(k ? q8a8 : q8, true);
        assert_int_equal(g_n_warnings, k);
        smoe_context *ctx = new_ctx(m, 64, 0, 1, SMOE_KV_F32);
        decode_all(ctx, k_prompt, (int)n, 0, 0, k == 0 ? ref : got);
        if (k > 0) assert_memory_equal(ref, got, n * nv * sizeof(float));
        smoe_context_free(ctx);
        smoe_model_free(m);
    }

    for (int k = 0; k < 2; k++) {
        smoe_model   *m = load(k ? tied : untied, true);
        smoe_context *ctx = new_ctx(m, 64, 0, 1, SMOE_KV_F32);
        decode_all(ctx, k_prompt, (int)n, 0, 0, k == 0 ? ref : got);
        if (k > 0) assert_memory_equal(ref, got, n * nv * sizeof(float));
        smoe_context_free(ctx);
        smoe_model_free(m);
    }
    free(ref);
    free(got);
}

typedef struct progress_state {
    uint64_t last_done, total;
    int      calls, cancel_at;
    bool     monotonic;
} progress_state;

static bool on_progress(uint64_t done, uint64_t total, void *ud) {
    progress_state *p = ud;
    p->calls++;
    p->monotonic = p->monotonic && done >= p->last_done && done <= total;
    p->last_done = done;
    p->total = total;
    return p->cancel_at == 0 || p->calls < p->cancel_at;
}

static void test_progress_and_cancel(void **state) {
    (void)state;
    gen_opts    o = default_opts();
    o.per_expert = true; /* the merged-copy path reports too */
    const char *path = model_file("progress.gguf", &o);
    for (int mm = 0; mm < 2; mm++) {
        progress_state    ps = {.monotonic = true};
        smoe_model_params mp = smoe_model_default_params();
        mp.use_mmap = mm;
        mp.progress_fn = on_progress;
        mp.progress_user_data = &ps;
        smoe_model *m = NULL;
        assert_int_equal(smoe_model_load(path, &mp, &m), SMOE_OK);
        smoe_model_info info;
        smoe_model_get_info(m, &info);
        assert_true(ps.calls > 1 && ps.monotonic);
        assert_int_equal(ps.last_done, ps.total);
        assert_int_equal(ps.total, info.size_bytes);
        smoe_model_free(m);

        ps = (progress_state){.monotonic = true, .cancel_at = 3};
        m = (smoe_model *)&ps;
        assert_int_equal(smoe_model_load(path, &mp, &m), SMOE_ERR_CANCELLED);
        assert_null(m);
        assert_non_null(strstr(smoe_last_error(), "cancel"));
        assert_int_equal(ps.calls, 3);
    }
}

static void expect_load_error(const char *name, const gen_opts *o, smoe_status want, const char *needle) {
    const char *path = model_file(name, o);
    smoe_model *m = NULL;
    smoe_status st = smoe_model_load(path, NULL, &m);
    if (st != want || !strstr(smoe_last_error(), needle))
        print_error("%s: status %d (%s), want %d and '%s'\n", name, st, smoe_last_error(), want, needle);
    assert_int_equal(st, want);
    assert_null(m);
    assert_non_null(strstr(smoe_last_error(), needle));
}

static void test_bad_model_files(void **state) {
    (void)state;
    gen_opts o = default_opts();
    o.skip_tensor = "blk.1.attn_k.weight";
    expect_load_error("missing.gguf", &o, SMOE_ERR_CORRUPT_FILE, "blk.1.attn_k.weight");
    o = default_opts();
    o.skip_tensor = "output_norm.weight";
    expect_load_error("missing2.gguf", &o, SMOE_ERR_CORRUPT_FILE, "output_norm.weight");
    o = default_opts();
    o.per_expert = true;
    o.skip_tensor = "blk.0.ffn_up.3.weight";
    expect_load_error("missing-expert.gguf", &o, SMOE_ERR_CORRUPT_FILE, "blk.0.ffn_up.3.weight");
    o = default_opts();
    o.bad_shape = "blk.0.ffn_down_exps.weight";
    expect_load_error("shape.gguf", &o, SMOE_ERR_CORRUPT_FILE, "blk.0.ffn_down_exps.weight");
    o = default_opts();
    o.bad_shape = "blk.1.attn_norm.weight"; /* a 2-D norm */
    expect_load_error("shape2.gguf", &o, SMOE_ERR_CORRUPT_FILE, "blk.1.attn_norm.weight");
    o = default_opts();
    o.retype = "blk.0.attn_q.weight";
    o.retype_to = SMOE_TYPE_I8; /* a valid GGUF type smoe cannot compute with */
    expect_load_error("type.gguf", &o, SMOE_ERR_UNSUPPORTED, "i8");
    o.retype = "blk.0.ffn_norm.weight";
    o.retype_to = SMOE_TYPE_F16; /* norms must be f32 */
    expect_load_error("type2.gguf", &o, SMOE_ERR_UNSUPPORTED, "blk.0.ffn_norm.weight");
    o = default_opts();
    o.skip_key = "expert_count"; /* a dense llama */
    expect_load_error("dense.gguf", &o, SMOE_ERR_UNSUPPORTED, "expert_count");
    o = default_opts();
    o.skip_key = "block_count";
    expect_load_error("nokey.gguf", &o, SMOE_ERR_CORRUPT_FILE, "llama.block_count");
    o = default_opts();
    o.skip_key = "attention.layer_norm_rms_epsilon";
    expect_load_error("noeps.gguf", &o, SMOE_ERR_CORRUPT_FILE, "layer_norm_rms_epsilon");
    o = default_opts();
    o.arch = "gpt2";
    expect_load_error("arch.gguf", &o, SMOE_ERR_UNSUPPORTED, "gpt2");
    o = default_opts();
    o.n_head = 3; /* 128 is not a multiple of 3; the tensors are shaped for it anyway */
    expect_load_error("heads.gguf", &o, SMOE_ERR_CORRUPT_FILE, "head_count");
    o = default_opts();
    o.n_used = 5; /* more experts used than exist */
    expect_load_error("used.gguf", &o, SMOE_ERR_CORRUPT_FILE, "expert_used_count");

    /* an unknown tensor type id: patch the type field of a tensor info in a valid file */
    o = default_opts();
    const char *path = model_file("unknown-type.gguf", &o);
    FILE       *f = fopen(path, "r+b");
    assert_non_null(f);
    static char buf[1 << 16];
    const size_t got = fread(buf, 1, sizeof(buf), f);
    const char  *needle = "blk.0.attn_v.weight";
    char        *p = memmem(buf, got, needle, strlen(needle));
    assert_non_null(p);
    const long type_at = (long)(p - buf) + (long)strlen(needle) + 4 + 2 * 8; /* n_dims u32, ne[2] u64 */
    const uint32_t bad = 4;                                                   /* the removed Q4_2 */
    fseek(f, type_at, SEEK_SET);
    fwrite(&bad, 4, 1, f);
    fclose(f);
    smoe_model *m = NULL;
    assert_int_equal(smoe_model_load(path, NULL, &m), SMOE_ERR_UNSUPPORTED);
    assert_non_null(strstr(smoe_last_error(), "type"));

    /* truncated */
    path = model_file("truncated.gguf", &o);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size - 1000), 0);
    assert_int_equal(smoe_model_load(path, NULL, &m), SMOE_ERR_CORRUPT_FILE);
    assert_null(m);

    /* absent file, bad params */
    assert_int_equal(smoe_model_load(tmp_path("absent.gguf"), NULL, &m), SMOE_ERR_IO);
    assert_int_equal(smoe_model_load(NULL, NULL, &m), SMOE_ERR_INVALID_ARGUMENT);
    smoe_model_params mp = smoe_model_default_params();
    mp.n_threads = -1;
    assert_int_equal(smoe_model_load(path, &mp, &m), SMOE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(smoe_last_error(), "n_threads"));
    mp = smoe_model_default_params();
    mp.size = 3;
    assert_int_equal(smoe_model_load(path, &mp, &m), SMOE_ERR_INVALID_ARGUMENT);
}

/* ---- contexts and decode ---- */

static void test_bad_context_params(void **state) {
    (void)state;
    gen_opts    o = default_opts();
    smoe_model *m = load(model_file("ctx.gguf", &o), true);
    smoe_context       *ctx = NULL;
    smoe_context_params cp = smoe_context_default_params();
    cp.n_threads = -2;
    assert_int_equal(smoe_context_init(m, &cp, &ctx), SMOE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(smoe_last_error(), "n_threads"));
    cp = smoe_context_default_params();
    cp.n_ctx = 1u << 30;
    assert_int_equal(smoe_context_init(m, &cp, &ctx), SMOE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(smoe_last_error(), "n_ctx"));
    cp = smoe_context_default_params();
    cp.kv_type = (smoe_kv_type)7;
    assert_int_equal(smoe_context_init(m, &cp, &ctx), SMOE_ERR_INVALID_ARGUMENT);
    cp = smoe_context_default_params();
    cp.n_ctx = 16;
    cp.n_seq_max = 17;
    assert_int_equal(smoe_context_init(m, &cp, &ctx), SMOE_ERR_INVALID_ARGUMENT);
    cp = smoe_context_default_params();
    cp.size = 0;
    assert_int_equal(smoe_context_init(m, &cp, &ctx), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_context_init(NULL, NULL, &ctx), SMOE_ERR_INVALID_ARGUMENT);
    assert_null(ctx);
    /* defaults: n_ctx from the model */
    assert_int_equal(smoe_context_init(m, NULL, &ctx), SMOE_OK);
    assert_int_equal(smoe_context_n_ctx(ctx), 4096);
    assert_ptr_equal(smoe_context_model(ctx), m);
    smoe_context_free(ctx);
    smoe_context_free(NULL);
    smoe_model_free(m);

    /* a q8_0 cache needs head_dim % 32 == 0 */
    o.n_head = 8; /* head_dim 16 */
    m = load(model_file("hd16.gguf", &o), true);
    cp = smoe_context_default_params();
    cp.kv_type = SMOE_KV_Q8_0;
    assert_int_equal(smoe_context_init(m, &cp, &ctx), SMOE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(smoe_last_error(), "q8_0"));
    smoe_model_free(m);
}

static void test_batch_api(void **state) {
    (void)state;
    smoe_batch b;
    assert_int_equal(smoe_batch_init(0, &b), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_batch_init(-5, &b), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_batch_init(2, &b), SMOE_OK);
    assert_int_equal(smoe_batch_add(&b, 1, 0, 0, false), SMOE_OK);
    assert_int_equal(smoe_batch_add(&b, 2, 1, 0, true), SMOE_OK);
    assert_int_equal(smoe_batch_add(&b, 3, 2, 0, true), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(b.n_tokens, 2);
    assert_int_equal(b.logits[1], 1);
    smoe_batch_free(&b);
    smoe_batch_free(&b);
    smoe_batch_free(NULL);
}

/* A prompt decoded in one batch, in chunks (n_batch 5) and token by token gives the same logits. */
static void test_prefill_vs_decode(void **state) {
    (void)state;
    gen_opts      o = default_opts();
    smoe_model   *m = load(model_file("pvd.gguf", &o), true);
    const size_t  nv = 101, n = 12;
    float        *a = malloc(n * nv * sizeof(float)), *b = malloc(n * nv * sizeof(float));
    smoe_context *ctx = new_ctx(m, 64, 0, 1, SMOE_KV_F32);
    decode_all(ctx, k_prompt, (int)n, 0, 0, a);
    assert_int_equal(smoe_kv_used(ctx), n);
    assert_int_equal(smoe_kv_seq_pos_next(ctx, 0), n);
    smoe_context_free(ctx);

    ctx = new_ctx(m, 64, 0, 1, SMOE_KV_F32);
    for (size_t i = 0; i < n; i++) decode_all(ctx, k_prompt + i, 1, (int32_t)i, 0, b + i * nv);
    for (size_t i = 0; i < n; i++) assert_true(rel_diff(b + i * nv, a + i * nv, nv) < 1e-5);
    smoe_context_free(ctx);

    ctx = new_ctx(m, 64, 5, 1, SMOE_KV_F32);
    decode_all(ctx, k_prompt, (int)n, 0, 0, b);
    for (size_t i = 0; i < n; i++) assert_true(rel_diff(b + i * nv, a + i * nv, nv) < 1e-5);

    /* only the last position's logits: a 1-row lm_head */
    smoe_kv_clear(ctx);
    assert_int_equal(smoe_kv_used(ctx), 0);
    smoe_batch bt;
    assert_int_equal(smoe_batch_init((int32_t)n, &bt), SMOE_OK);
    for (size_t i = 0; i < n; i++) smoe_batch_add(&bt, k_prompt[i], (int32_t)i, 0, i + 1 == n);
    assert_int_equal(smoe_decode(ctx, &bt), SMOE_OK);
    assert_null(smoe_get_logits(ctx, 0));
    assert_null(smoe_get_logits(ctx, (int32_t)n));
    assert_non_null(smoe_get_logits(ctx, -1));
    assert_true(rel_diff(smoe_get_logits(ctx, (int32_t)n - 1), a + (n - 1) * nv, nv) < 1e-5);
    assert_ptr_equal(smoe_get_logits(ctx, -1), smoe_get_logits(ctx, (int32_t)n - 1));
    /* no logits at all */
    smoe_kv_clear(ctx);
    for (size_t i = 0; i < n; i++) bt.logits[i] = 0;
    assert_int_equal(smoe_decode(ctx, &bt), SMOE_OK);
    assert_null(smoe_get_logits(ctx, (int32_t)n - 1));
    decode_all(ctx, k_prompt, 1, (int32_t)n, 0, b); /* continues after a logits-free prefill */
    smoe_batch_free(&bt);
    smoe_context_free(ctx);

    ctx = new_ctx(m, 64, 0, 1, SMOE_KV_F32);
    int32_t longer[13];
    memcpy(longer, k_prompt, sizeof(k_prompt));
    longer[12] = k_prompt[0];
    decode_all(ctx, longer, 13, 0, 0, NULL);
    assert_true(rel_diff(smoe_get_logits(ctx, 12), b, nv) < 1e-5);
    smoe_context_free(ctx);

    free(a);
    free(b);
    smoe_model_free(m);
}

/* Two sequences interleaved in one batch give the same logits as each alone; seq_rm frees one of them. */
static void test_two_sequences(void **state) {
    (void)state;
    gen_opts      o = default_opts();
    smoe_model   *m = load(model_file("seq.gguf", &o), true);
    const size_t  nv = 101;
    const int32_t s0[7] = {1, 5, 9, 13, 17, 21, 25}, s1[5] = {1, 60, 70, 80, 90};
    float         alone0[7 * 101], alone1[5 * 101];
    smoe_context *ctx = new_ctx(m, 64, 0, 1, SMOE_KV_F32);
    decode_all(ctx, s0, 7, 0, 0, alone0);
    smoe_kv_clear(ctx);
    decode_all(ctx, s1, 5, 0, 0, alone1);
    smoe_context_free(ctx);

    ctx = new_ctx(m, 64, 0, 2, SMOE_KV_F32);
    /* first 3 tokens of seq 1, then both interleaved */
    decode_all(ctx, s1, 3, 0, 1, NULL);
    smoe_batch b;
    assert_int_equal(smoe_batch_init(16, &b), SMOE_OK);
    int i0 = 0, i1 = 3, idx0[7], idx1[5];
    while (i0 < 7 || i1 < 5) {
        if (i0 < 7) idx0[i0] = b.n_tokens, smoe_batch_add(&b, s0[i0], i0, 0, true), i0++;
        if (i1 < 5) idx1[i1] = b.n_tokens, smoe_batch_add(&b, s1[i1], i1, 1, true), i1++;
    }
    assert_int_equal(smoe_decode(ctx, &b), SMOE_OK);
    for (int i = 0; i < 7; i++) assert_true(rel_diff(smoe_get_logits(ctx, idx0[i]), alone0 + i * nv, nv) < 1e-5);
    for (int i = 3; i < 5; i++) assert_true(rel_diff(smoe_get_logits(ctx, idx1[i]), alone1 + i * nv, nv) < 1e-5);
    assert_int_equal(smoe_kv_used(ctx), 12);
    assert_int_equal(smoe_kv_seq_pos_next(ctx, 0), 7);
    assert_int_equal(smoe_kv_seq_pos_next(ctx, 1), 5);
    assert_int_equal(smoe_kv_seq_pos_next(ctx, 2), -1);

    /* drop the last 3 positions of seq 0 and recompute them: same logits */
    assert_int_equal(smoe_kv_seq_rm(ctx, 0, 4, -1), SMOE_OK);
    assert_int_equal(smoe_kv_seq_pos_next(ctx, 0), 4);
    assert_int_equal(smoe_kv_used(ctx), 9);
    float again[3 * 101];
    decode_all(ctx, s0 + 4, 3, 4, 0, again);
    assert_true(rel_diff(again, alone0 + 4 * nv, 3 * nv) < 1e-5);
    /* drop seq 1 entirely */
    assert_int_equal(smoe_kv_seq_rm(ctx, 1, 0, -1), SMOE_OK);
    assert_int_equal(smoe_kv_seq_pos_next(ctx, 1), 0);
    assert_int_equal(smoe_kv_used(ctx), 7);
    assert_int_equal(smoe_kv_seq_rm(ctx, 9, 0, -1), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_kv_seq_rm(ctx, -1, 0, -1), SMOE_OK);
    assert_int_equal(smoe_kv_used(ctx), 0);
    smoe_batch_free(&b);
    smoe_context_free(ctx);
    smoe_model_free(m);
}

static void test_context_full(void **state) {
    (void)state;
    gen_opts      o = default_opts();
    smoe_model   *m = load(model_file("full.gguf", &o), true);
    const size_t  nv = 101;
    float         ref[101], got[101];
    smoe_context *ctx = new_ctx(m, 8, 0, 1, SMOE_KV_F16);
    decode_all(ctx, k_prompt, 8, 0, 0, NULL);
    memcpy(ref, smoe_get_logits(ctx, 7), sizeof(ref));
    smoe_kv_clear(ctx);

    decode_all(ctx, k_prompt, 6, 0, 0, NULL);
    smoe_batch b;
    assert_int_equal(smoe_batch_init(4, &b), SMOE_OK);
    for (int i = 0; i < 3; i++) smoe_batch_add(&b, k_prompt[6 + i], 6 + i, 0, true);
    assert_int_equal(smoe_decode(ctx, &b), SMOE_ERR_CONTEXT_FULL);
    assert_non_null(strstr(smoe_last_error(), "full"));
    assert_int_equal(smoe_kv_used(ctx), 6);
    assert_int_equal(smoe_kv_seq_pos_next(ctx, 0), 6);
    assert_null(smoe_get_logits(ctx, 0));
    b.n_tokens = 2; /* a smaller request still works, as if the failed one never happened */
    assert_int_equal(smoe_decode(ctx, &b), SMOE_OK);
    memcpy(got, smoe_get_logits(ctx, 1), sizeof(got));
    assert_true(rel_diff(got, ref, nv) < 1e-5);
    assert_int_equal(smoe_kv_used(ctx), 8);
    b.n_tokens = 1;
    b.pos[0] = 8;
    assert_int_equal(smoe_decode(ctx, &b), SMOE_ERR_CONTEXT_FULL);
    smoe_batch_free(&b);
    smoe_context_free(ctx);
    smoe_model_free(m);
}

static void expect_decode_error(smoe_context *ctx, const smoe_batch *b, smoe_status want, const char *needle) {
    const uint32_t used = smoe_kv_used(ctx);
    const int32_t  next = smoe_kv_seq_pos_next(ctx, 0);
    smoe_status    st = smoe_decode(ctx, b);
    if (st != want || !strstr(smoe_last_error(), needle))
        print_error("status %d (%s), want %d and '%s'\n", st, smoe_last_error(), want, needle);
    assert_int_equal(st, want);
    assert_non_null(strstr(smoe_last_error(), needle));
    assert_int_equal(smoe_kv_used(ctx), used);
    assert_int_equal(smoe_kv_seq_pos_next(ctx, 0), next);
}

static void test_bad_batches(void **state) {
    (void)state;
    gen_opts      o = default_opts();
    smoe_model   *m = load(model_file("badb.gguf", &o), true);
    smoe_context *ctx = new_ctx(m, 32, 0, 2, SMOE_KV_F16);
    decode_all(ctx, k_prompt, 2, 0, 0, NULL);
    smoe_batch b;
    assert_int_equal(smoe_batch_init(4, &b), SMOE_OK);
    smoe_batch_add(&b, 3, 2, 0, true);
    smoe_batch_add(&b, 4, 3, 0, true);

    b.token[1] = 101;
    expect_decode_error(ctx, &b, SMOE_ERR_INVALID_ARGUMENT, "token 101");
    b.token[1] = -1;
    expect_decode_error(ctx, &b, SMOE_ERR_INVALID_ARGUMENT, "token -1");
    b.token[1] = 4;
    b.seq_id[1] = 2;
    expect_decode_error(ctx, &b, SMOE_ERR_INVALID_ARGUMENT, "sequence id 2");
    b.seq_id[1] = -1;
    expect_decode_error(ctx, &b, SMOE_ERR_INVALID_ARGUMENT, "sequence id -1");
    b.seq_id[1] = 0;
    b.pos[1] = 5; /* skips a position */
    expect_decode_error(ctx, &b, SMOE_ERR_INVALID_ARGUMENT, "position 5");
    b.pos[1] = 2; /* repeats one */
    expect_decode_error(ctx, &b, SMOE_ERR_INVALID_ARGUMENT, "position 2");
    b.pos[0] = 1, b.pos[1] = 2; /* overlaps the cache */
    expect_decode_error(ctx, &b, SMOE_ERR_INVALID_ARGUMENT, "position 1");
    b.pos[0] = 2, b.pos[1] = 3;
    b.n_tokens = 0;
    expect_decode_error(ctx, &b, SMOE_ERR_INVALID_ARGUMENT, "empty");
    b.n_tokens = 5;
    expect_decode_error(ctx, &b, SMOE_ERR_INVALID_ARGUMENT, "capacity");
    expect_decode_error(ctx, NULL, SMOE_ERR_INVALID_ARGUMENT, "NULL");
    assert_int_equal(smoe_decode(NULL, &b), SMOE_ERR_INVALID_ARGUMENT);
    b.n_tokens = 2; /* and the valid batch works afterwards */
    assert_int_equal(smoe_decode(ctx, &b), SMOE_OK);
    assert_int_equal(smoe_kv_seq_pos_next(ctx, 0), 4);
    smoe_batch_free(&b);
    smoe_context_free(ctx);
    smoe_model_free(m);
}

typedef struct abort_state {
    int calls, abort_at;
} abort_state;

static bool on_abort(void *ud) {
    abort_state *a = ud;
    return ++a->calls >= a->abort_at;
}

static void test_abort(void **state) {
    (void)state;
    gen_opts      o = default_opts();
    smoe_model   *m = load(model_file("abort.gguf", &o), true);
    smoe_context *ctx = new_ctx(m, 32, 4, 1, SMOE_KV_F16);
    smoe_batch    b;
    assert_int_equal(smoe_batch_init(10, &b), SMOE_OK);
    for (int i = 0; i < 10; i++) smoe_batch_add(&b, k_prompt[i], i, 0, true);
    abort_state a = {.abort_at = 1};
    smoe_context_set_abort(ctx, on_abort, &a);
    assert_int_equal(smoe_decode(ctx, &b), SMOE_ERR_CANCELLED);
    assert_int_equal(smoe_kv_used(ctx), 0);
    a = (abort_state){.abort_at = 2}; /* after the first chunk of 4 */
    assert_int_equal(smoe_decode(ctx, &b), SMOE_ERR_CANCELLED);
    assert_int_equal(smoe_kv_used(ctx), 4);
    assert_int_equal(smoe_kv_seq_pos_next(ctx, 0), 4);
    smoe_context_set_abort(ctx, NULL, NULL);
    smoe_kv_clear(ctx);
    assert_int_equal(smoe_decode(ctx, &b), SMOE_OK);
    smoe_batch_free(&b);
    smoe_context_free(ctx);
    smoe_model_free(m);
}

/* F16 and Q8_0 caches stay close to an F32 cache; Q8_0 weights close to F32 weights. */
static void test_kv_and_weight_types(void **state) {
    (void)state;
    gen_opts      o = default_opts();
    smoe_model   *m = load(model_file("kvt.gguf", &o), true);
    const size_t  nv = 101, n = 12;
    float        *ref = malloc(n * nv * sizeof(float)), *got = malloc(n * nv * sizeof(float));
    smoe_context *ctx = new_ctx(m, 64, 0, 1, SMOE_KV_F32);
    decode_all(ctx, k_prompt, (int)n, 0, 0, ref);
    smoe_context_free(ctx);
    const smoe_kv_type kts[2] = {SMOE_KV_F16, SMOE_KV_Q8_0};
    const double       lim[2] = {1e-3, 2e-2};
    for (int k = 0; k < 2; k++) {
        ctx = new_ctx(m, 64, 0, 1, kts[k]);
        decode_all(ctx, k_prompt, (int)n, 0, 0, got);
        for (size_t i = 0; i < n; i++) {
            assert_true(rel_diff(got + i * nv, ref + i * nv, nv) < lim[k]);
            assert_true(cosine(got + i * nv, ref + i * nv, nv) > 0.999);
        }
        smoe_context_free(ctx);
    }
    smoe_model_free(m);

    o.wtype = SMOE_TYPE_Q8_0;
    m = load(model_file("q8.gguf", &o), true);
    smoe_model_info info;
    smoe_model_get_info(m, &info);
    assert_string_equal(info.type_name, "q8_0");
    ctx = new_ctx(m, 64, 0, 1, SMOE_KV_F32);
    decode_all(ctx, k_prompt, (int)n, 0, 0, got);
    for (size_t i = 0; i < n; i++) assert_true(cosine(got + i * nv, ref + i * nv, nv) > 0.99);
    smoe_context_free(ctx);
    smoe_model_free(m);
    free(ref);
    free(got);
}

/* One model, two contexts decoding at the same time in two threads: the same logits as alone. */
typedef struct thread_job {
    smoe_model *m;
    int32_t     first;
    float       out[12 * 101];
} thread_job;

static void *thread_main(void *p) {
    thread_job   *j = p;
    smoe_context *ctx = new_ctx(j->m, 64, 0, 1, SMOE_KV_F32);
    int32_t       toks[12];
    for (int i = 0; i < 12; i++) toks[i] = (k_prompt[i] + j->first) % 101;
    for (int rep = 0; rep < 3; rep++) {
        smoe_kv_clear(ctx);
        decode_all(ctx, toks, 12, 0, 0, j->out);
    }
    smoe_context_free(ctx);
    return NULL;
}

static void test_shared_model_threads(void **state) {
    (void)state;
    gen_opts    o = default_opts();
    smoe_model *m = load(model_file("threads.gguf", &o), true);
    thread_job  seq[2] = {{m, 0, {0}}, {m, 7, {0}}}, par[2] = {{m, 0, {0}}, {m, 7, {0}}};
    thread_main(&seq[0]);
    thread_main(&seq[1]);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, thread_main, &par[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) assert_memory_equal(seq[i].out, par[i].out, sizeof(seq[i].out));
    smoe_model_free(m);
}

/* ---- a decode step allocates nothing ----
 * The allocator is interposed (this executable defines malloc & co. over glibc's __libc_* entry points) and counts
 * calls while g_counting is set. Sanitizer builds interpose the allocator themselves: skipped there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COUNT_ALLOCS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) || __has_feature(thread_sanitizer)
#define COUNT_ALLOCS 0
#endif
#endif
#if !defined(COUNT_ALLOCS) && defined(__GLIBC__)
#define COUNT_ALLOCS 1
#endif

#if COUNT_ALLOCS
#include <stdatomic.h>
static atomic_int  g_counting;
static atomic_long g_n_allocs;
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static void count(void) {
    if (atomic_load(&g_counting)) atomic_fetch_add(&g_n_allocs, 1);
}
void *malloc(size_t n) {
    count();
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    count();
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    count();
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t a, size_t n) {
    count();
    return __libc_memalign(a, n);
}
int posix_memalign(void **p, size_t a, size_t n) {
    count();
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12 /* ENOMEM */;
}
#endif

static void test_decode_allocates_nothing(void **state) {
    (void)state;
#if COUNT_ALLOCS
    gen_opts      o = default_opts();
    smoe_model   *m = load(model_file("alloc.gguf", &o), true);
    smoe_context *ctx = new_ctx(m, 64, 0, 1, SMOE_KV_F16);
    decode_all(ctx, k_prompt, 8, 0, 0, NULL);
    smoe_batch b;
    assert_int_equal(smoe_batch_init(1, &b), SMOE_OK);
    for (int32_t pos = 8; pos < 20; pos++) {
        b.n_tokens = 0;
        smoe_batch_add(&b, k_prompt[pos % 12], pos, 0, true);
        if (pos >= 10) atomic_store(&g_counting, 1); /* the first steps build and plan the 1-token graph */
        assert_int_equal(smoe_decode(ctx, &b), SMOE_OK);
        atomic_store(&g_counting, 0);
        assert_non_null(smoe_get_logits(ctx, 0));
    }
    assert_int_equal(atomic_load(&g_n_allocs), 0);
    /* the allocation counter works */
    atomic_store(&g_counting, 1);
    void *volatile probe = malloc(16);
    atomic_store(&g_counting, 0);
    free(probe);
    assert_int_equal(atomic_load(&g_n_allocs), 1);
    smoe_batch_free(&b);
    smoe_context_free(ctx);
    smoe_model_free(m);
#else
    print_message("allocation counting is not available in this build (sanitizer): skipped\n");
    skip();
#endif
}

/* ---- llama.cpp's files and logits (development data; skipped when absent) ---- */

static float *read_f32(const char *path, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    float *v = malloc(n * sizeof(float));
    if (fread(v, sizeof(float), n, f) != n) {
        free(v);
        v = NULL;
    }
    fclose(f);
    return v;
}

static void test_llamacpp_refs(void **state) {
    (void)state;
    static const char *const models[] = {"tiny-seed7-F32",    "tiny-seed7-F16",   "tiny-seed7-Q8_0",
                                         "tiny-seed7-Q4_0",   "tiny-seed7-Q4_K_M", "small-seed7-Q8_0",
                                         "small-seed7-Q4_K_M"};
    static const char *const prompts[] = {"en", "fr", "code"};
    int n_checked = 0;
    for (size_t mi = 0; mi < sizeof(models) / sizeof(*models); mi++) {
        char path[512];
        snprintf(path, sizeof(path), REF_DIR "/gguf/%s.gguf", models[mi]);
        if (access(path, R_OK) != 0) continue;
        smoe_model   *m = load(path, true);
        smoe_model_info info;
        smoe_model_get_info(m, &info);
        const size_t  nv = (size_t)info.n_vocab;
        const bool    is_f32 = strstr(models[mi], "F32") != NULL;
        smoe_context *ctx = new_ctx(m, 256, 0, 1, SMOE_KV_F32);
        for (size_t pi = 0; pi < 3; pi++) {
            snprintf(path, sizeof(path), REF_DIR "/refs/%s/%s.json", models[mi], prompts[pi]);
            json_t *j = json_load_file(path, 0, NULL);
            if (!j) continue;
            json_t *jt = json_object_get(j, "prompt_tokens");
            const size_t n = json_array_size(jt);
            int32_t     *toks = malloc(n * sizeof(int32_t));
            for (size_t i = 0; i < n; i++) toks[i] = (int32_t)json_integer_value(json_array_get(jt, i));
            snprintf(path, sizeof(path), REF_DIR "/refs/%s/%s.logits.f32", models[mi], prompts[pi]);
            float *ref = read_f32(path, nv);
            assert_non_null(ref);

            smoe_kv_clear(ctx);
            smoe_batch b;
            assert_int_equal(smoe_batch_init((int32_t)n, &b), SMOE_OK);
            for (size_t i = 0; i < n; i++) smoe_batch_add(&b, toks[i], (int32_t)i, 0, i + 1 == n);
            assert_int_equal(smoe_decode(ctx, &b), SMOE_OK);
            const float *got = smoe_get_logits(ctx, (int32_t)n - 1);
            const double rel = rel_diff(got, ref, nv), cs = cosine(got, ref, nv);
            print_message("llama.cpp %-20s %-5s rel %.3g cosine %.7f\n", models[mi], prompts[pi], rel, cs);
            /* llama.cpp's SIMD sums in another order; on quantized files that moves activations across rounding
             * boundaries of their Q8 copies, so only F32 files are expected to agree to float precision */
            if (is_f32) assert_true(rel < 1e-5);
            else assert_true(cs > 0.99);

            if (is_f32) { /* the 16 greedy tokens, decoding one token at a time */
                json_t *jg = json_object_get(j, "greedy_tokens");
                int     pos = (int)n;
                for (size_t s = 0; s < json_array_size(jg); s++) {
                    const float *l = smoe_get_logits(ctx, -1);
                    int32_t      best = 0;
                    for (size_t v = 1; v < nv; v++)
                        if (l[v] > l[best]) best = (int32_t)v;
                    assert_int_equal(best, json_integer_value(json_array_get(jg, s)));
                    b.n_tokens = 0;
                    smoe_batch_add(&b, best, pos++, 0, true);
                    assert_int_equal(smoe_decode(ctx, &b), SMOE_OK);
                }
            }
            n_checked++;
            smoe_batch_free(&b);
            free(ref);
            free(toks);
            json_decref(j);
        }
        smoe_context_free(ctx);
        smoe_model_free(m);
    }
    if (n_checked == 0) {
        print_message("llama.cpp reference data not found in " REF_DIR ": skipped\n");
        skip();
    }
}

/* smoe_model_init_synthetic: the preset's shapes, smoe convert's types, seeded weights, finite logits; errors. */
static void test_synthetic(void **state) {
    (void)state;
    smoe_synthetic_params sp = smoe_synthetic_default_params();
    assert_string_equal(sp.preset, "mixtral-8x7b");
    sp.preset = "tiny";
    sp.ftype = SMOE_FTYPE_F32;
    smoe_model *m = NULL;
    assert_int_equal(smoe_model_init_synthetic(&sp, NULL, &m), SMOE_OK);
    smoe_model_info info;
    smoe_model_get_info(m, &info);
    assert_int_equal(info.n_layer, 2);
    assert_int_equal(info.n_embd, 64);
    assert_int_equal(info.n_expert, 4);
    assert_int_equal(info.n_vocab, 512);
    assert_string_equal(info.type_name, "f32");
    assert_null(smoe_model_tokenizer(m));
    /* F32, by hand: per layer norms 2 x 256, wq/wo 16384 each, wk/wv 8192 each, router 1024; experts 3 x 131072 */
    assert_int_equal(info.size_bytes, 2 * 131072 + 256 + 2 * (512 + 2 * 16384 + 2 * 8192 + 1024 + 3 * 131072));
    assert_int_equal(smoe_model_active_bytes(m), 256 + 131072 + 256 + 2 * (512 + 2 * 16384 + 2 * 8192 + 1024 +
                                                                          3 * 131072 / 2));
    smoe_model_free(m);

    /* quantized: deterministic for a seed, different for another; finite logits */
    const size_t nv = 512, n = 12;
    float       *logits[3];
    for (int k = 0; k < 3; k++) {
        sp.ftype = SMOE_FTYPE_Q4_K_M;
        sp.seed = k == 2 ? 99 : 7;
        sp.n_layer = 3;
        assert_int_equal(smoe_model_init_synthetic(&sp, NULL, &m), SMOE_OK);
        smoe_model_get_info(m, &info);
        assert_int_equal(info.n_layer, 3);
        assert_true(smoe_model_active_bytes(m) < info.size_bytes);
        logits[k] = malloc(n * nv * sizeof(float));
        smoe_context *ctx = new_ctx(m, 64, 0, 1, SMOE_KV_F32);
        decode_all(ctx, k_prompt, (int)n, 0, 0, logits[k]);
        for (size_t i = 0; i < n * nv; i++) assert_true(isfinite(logits[k][i]));
        smoe_context_free(ctx);
        smoe_model_free(m);
    }
    assert_memory_equal(logits[0], logits[1], n * nv * sizeof(float));
    assert_true(rel_diff(logits[0], logits[2], n * nv) > 1e-3);
    for (int k = 0; k < 3; k++) free(logits[k]);

    /* errors */
    smoe_synthetic_params bad = smoe_synthetic_default_params();
    bad.preset = "mixtral-7x8b";
    assert_int_equal(smoe_model_init_synthetic(&bad, NULL, &m), SMOE_ERR_INVALID_ARGUMENT);
    assert_null(m);
    assert_non_null(strstr(smoe_last_error(), "unknown preset 'mixtral-7x8b'"));
    bad = smoe_synthetic_default_params();
    bad.n_layer = -1;
    assert_int_equal(smoe_model_init_synthetic(&bad, NULL, &m), SMOE_ERR_INVALID_ARGUMENT);
    bad = smoe_synthetic_default_params();
    bad.ftype = (smoe_ftype)12345;
    assert_int_equal(smoe_model_init_synthetic(&bad, NULL, &m), SMOE_ERR_INVALID_ARGUMENT);
    bad = smoe_synthetic_default_params();
    bad.size = 3;
    assert_int_equal(smoe_model_init_synthetic(&bad, NULL, &m), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_model_init_synthetic(NULL, NULL, &m), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_model_init_synthetic(&sp, NULL, NULL), SMOE_ERR_INVALID_ARGUMENT);
    smoe_model_params mp = smoe_model_default_params();
    mp.backend = "no-such-backend";
    assert_int_equal(smoe_model_init_synthetic(&sp, &mp, &m), SMOE_ERR_UNSUPPORTED);
    assert_null(m);
    assert_int_equal(smoe_model_active_bytes(NULL), 0);
}

/* Placement through the public API: the plan of a file (per-expert layout too) and of a loaded CPU model; errors. */
static void test_placement_api(void **state) {
    (void)state;
    gen_opts    o = default_opts();
    const char *merged = model_file("plan.gguf", &o);
    o.per_expert = true;
    const char *single = model_file("plan-pe.gguf", &o);
    for (int f = 0; f < 2; f++) {
        smoe_gguf_file *gf = NULL;
        assert_int_equal(smoe_gguf_file_open(f ? single : merged, &gf), SMOE_OK);
        const int64_t n = smoe_gguf_file_n_tensors(gf);
        bool         *on = calloc((size_t)n, sizeof(*on));
        smoe_placement pl = {.size = sizeof(pl)};
        assert_int_equal(smoe_gguf_file_plan_placement(gf, SMOE_GPU_MEM_ALL, 0, on, &pl), SMOE_OK);
        assert_false(pl.split);
        assert_int_equal(pl.n_gpu_tensors, n);
        assert_int_equal(pl.n_layer, 2);
        for (int64_t i = 0; i < n; i++) assert_true(on[i]);
        /* room for the dense weights and the experts of layer 0 only */
        uint64_t dense = 0, l0 = 0;
        for (int64_t i = 0; i < n; i++) {
            const char    *name = smoe_gguf_file_tensor_name(gf, i);
            const uint64_t b = (smoe_gguf_file_tensor_size(gf, i) + 255) / 256 * 256;
            const bool     ffn = strstr(name, "ffn_gate.") || strstr(name, "ffn_up.") || strstr(name, "ffn_down.") ||
                             strstr(name, "_exps.");
            if (!strcmp(name, "token_embd.weight")) continue;
            if (!ffn) dense += b;
            else if (!strncmp(name, "blk.0.", 6)) l0 += b;
        }
        assert_int_equal(smoe_gguf_file_plan_placement(gf, dense + l0, 256, on, &pl), SMOE_OK);
        assert_true(pl.split);
        assert_true(pl.dense_complete);
        assert_int_equal(pl.n_ffn_layers_gpu, 1);
        assert_true(pl.gpu_bytes <= dense + l0);
        for (int64_t i = 0; i < n; i++) {
            const char *name = smoe_gguf_file_tensor_name(gf, i);
            const bool expert = strstr(name, "_exps.") || strstr(name, "ffn_gate.") || strstr(name, "ffn_up.") ||
                                strstr(name, "ffn_down.");
            if (!strcmp(name, "token_embd.weight") || (!strncmp(name, "blk.1.", 6) && expert))
                assert_false(on[i]);
            else
                assert_true(on[i]);
        }
        /* errors */
        assert_int_equal(smoe_gguf_file_plan_placement(gf, 1 << 20, 48, on, &pl), SMOE_ERR_INVALID_ARGUMENT);
        smoe_placement bad = {.size = 3};
        assert_int_equal(smoe_gguf_file_plan_placement(gf, 1 << 20, 0, NULL, &bad), SMOE_ERR_INVALID_ARGUMENT);
        assert_int_equal(smoe_gguf_file_plan_placement(NULL, 1 << 20, 0, NULL, &pl), SMOE_ERR_INVALID_ARGUMENT);
        assert_int_equal(smoe_gguf_file_plan_placement(gf, 0, 0, NULL, &pl), SMOE_OK); /* nothing fits: all host */
        assert_int_equal(pl.n_gpu_tensors, 0);
        free(on);
        smoe_gguf_file_close(gf);
    }
    /* a CPU model: no split, every byte in host memory */
    smoe_model    *m = load(merged, true);
    smoe_placement pl = {.size = sizeof(pl)};
    assert_int_equal(smoe_model_get_placement(m, &pl), SMOE_OK);
    smoe_model_info info;
    smoe_model_get_info(m, &info);
    assert_false(pl.split);
    assert_int_equal(pl.host_bytes, info.size_bytes);
    assert_int_equal(pl.gpu_bytes, 0);
    assert_int_equal(smoe_model_weight_on_host(m, "blk.1.ffn_up_exps.weight"), 1);
    assert_int_equal(smoe_model_weight_on_host(m, "blk.9.ffn_up_exps.weight"), -1);
    assert_int_equal(smoe_model_weight_on_host(m, NULL), -1);
    smoe_placement bad = {.size = 0};
    assert_int_equal(smoe_model_get_placement(m, &bad), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_model_get_placement(NULL, &pl), SMOE_ERR_INVALID_ARGUMENT);
    smoe_model_free(m);
    assert_int_equal(smoe_device_auto_gpu_mem(0, 0), SMOE_GPU_MEM_ALL);
    assert_int_equal(smoe_device_auto_gpu_mem(24ull << 30, 20ull << 30), (20ull << 30) - (3ull << 29));
    assert_int_equal(smoe_device_auto_gpu_mem(8ull << 30, 0), 7ull << 30);
    assert_int_equal(smoe_device_auto_gpu_mem(8ull << 30, 512ull << 20), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_info),
        cmocka_unit_test(test_layouts_same_logits),
        cmocka_unit_test(test_progress_and_cancel),
        cmocka_unit_test(test_bad_model_files),
        cmocka_unit_test(test_bad_context_params),
        cmocka_unit_test(test_batch_api),
        cmocka_unit_test(test_prefill_vs_decode),
        cmocka_unit_test(test_two_sequences),
        cmocka_unit_test(test_context_full),
        cmocka_unit_test(test_bad_batches),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_kv_and_weight_types),
        cmocka_unit_test(test_shared_model_threads),
        cmocka_unit_test(test_decode_allocates_nothing),
        cmocka_unit_test(test_llamacpp_refs),
        cmocka_unit_test(test_synthetic),
        cmocka_unit_test(test_placement_api),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
