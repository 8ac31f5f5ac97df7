/*
 * test-convert.c - the converter's parts: the safetensors reader against hostile headers built byte by byte here
 * (from the format's description, not with our code), sharded folders (index, missing shard, tensor in the wrong
 * shard or in two), config.json checks, the HF -> GGUF name map and the Q/K row permutation (against the
 * reshape/swapaxes definition written out as loops), and the size label.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/hf-config.h"
#include "convert/name-map.h"
#include "convert/safetensors.h"

static char tmp_dir[256];

static void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[800];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) rm_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int setup_dir(void **state) {
    (void)state;
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/smoe-test-convert-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown_dir(void **state) {
    (void)state;
    rm_tree(tmp_dir);
    return 0;
}

/* A safetensors file: 8-byte little-endian length, the header text as given, then `data_len` bytes 0, 1, 2, ... */
static size_t make_st(uint8_t *buf, size_t cap, const char *header, size_t data_len) {
    const size_t h = strlen(header);
    assert_true(8 + h + data_len <= cap);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    for (size_t i = 0; i < data_len; i++) buf[8 + h + i] = (uint8_t)i;
    return 8 + h + data_len;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void write_text(const char *path, const char *text) { write_file(path, text, strlen(text)); }

/* dir/name in one of a few rotating buffers. */
static const char *path_in(const char *dir, const char *name) {
    static char p[4][1024];
    static int k;
    k = (k + 1) % 4;
    const size_t a = strlen(dir), b = strlen(name);
    assert_true(a + b + 2 <= sizeof(p[k]));
    memcpy(p[k], dir, a);
    p[k][a] = '/';
    memcpy(p[k] + a + 1, name, b + 1);
    return p[k];
}

/* Expects parsing to fail with `status` and a message containing `needle`. */
static void expect_bad(const char *header, size_t data_len, size_t trunc, smoe_status status, const char *needle) {
    static uint8_t buf[4096];
    size_t n = make_st(buf, sizeof(buf), header, data_len);
    if (trunc) n -= trunc;
    smoe_st_file *f = (smoe_st_file *)1;
    smoe_status st = smoe_st_open_memory(buf, n, "bad.safetensors", &f);
    if (st != status || !strstr(smoe_last_error(), needle))
        fail_msg("header %s: status %d, message '%s' (wanted %d, '%s')", header, st, smoe_last_error(), status, needle);
    assert_null(f);
}

static void test_st_valid(void **state) {
    (void)state;
    static uint8_t buf[4096];
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[16,28]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                    "\"s\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[28,30]},"
                    "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[30,30]}}   ";
    size_t n = make_st(buf, sizeof(buf), h, 30);
    smoe_st_file *f = NULL;
    assert_int_equal(smoe_st_open_memory(buf, n, "ok", &f), SMOE_OK);
    assert_int_equal(smoe_st_n_tensors(f), 4);
    /* sorted by name */
    assert_string_equal(smoe_st_tensor_at(f, 0)->name, "a");
    assert_string_equal(smoe_st_tensor_at(f, 3)->name, "s");
    const smoe_st_tensor *b = smoe_st_find(f, "b");
    assert_non_null(b);
    assert_int_equal(b->dtype, SMOE_ST_BF16);
    assert_int_equal(b->n_dims, 2);
    assert_int_equal(b->shape[0], 2);
    assert_int_equal(b->shape[1], 3);
    assert_int_equal(b->n_elements, 6);
    assert_int_equal(b->size, 12);
    const size_t data_start = 8 + strlen(h);
    assert_int_equal(b->offset, data_start + 16);
    assert_ptr_equal(b->data, buf + data_start + 16);
    assert_int_equal(((const uint8_t *)b->data)[0], 16);
    const smoe_st_tensor *s = smoe_st_find(f, "s");
    assert_int_equal(s->n_dims, 0);
    assert_int_equal(s->n_elements, 1);
    assert_int_equal(smoe_st_find(f, "e")->size, 0);
    assert_null(smoe_st_find(f, "__metadata__"));
    assert_null(smoe_st_find(f, "zz"));
    smoe_st_close(f);
    smoe_st_close(NULL);
}

static void test_st_hostile(void **state) {
    (void)state;
    static uint8_t buf[64];
    smoe_st_file *f;
    /* shorter than the length field */
    assert_int_equal(smoe_st_open_memory(buf, 5, "tiny", &f), SMOE_ERR_CORRUPT_FILE);
    assert_non_null(strstr(smoe_last_error(), "too short"));
    /* header length beyond the file */
    size_t n = make_st(buf, sizeof(buf), "{}", 0);
    buf[0] = 200;
    assert_int_equal(smoe_st_open_memory(buf, n, "long", &f), SMOE_ERR_CORRUPT_FILE);
    assert_non_null(strstr(smoe_last_error(), "header length 200 goes beyond the end of the file"));
    /* huge length: no overflow */
    memset(buf, 0xff, 8);
    assert_int_equal(smoe_st_open_memory(buf, n, "huge", &f), SMOE_ERR_CORRUPT_FILE);

    const char *t1 = "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
    char h[512];
    expect_bad("[1,2]", 0, 0, SMOE_ERR_CORRUPT_FILE, "not a JSON object");
    expect_bad("{\"t\":", 0, 0, SMOE_ERR_CORRUPT_FILE, "header JSON");
    expect_bad("{\"t\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, SMOE_ERR_CORRUPT_FILE,
               "unknown dtype \"F33\"");
    expect_bad("{\"t\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, SMOE_ERR_CORRUPT_FILE, "\"dtype\"");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, 0, SMOE_ERR_CORRUPT_FILE,
               "shape[0]");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, 0,
               SMOE_ERR_CORRUPT_FILE, "9 dimensions");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0, SMOE_ERR_CORRUPT_FILE,
               "hold 8 bytes but dtype F32 and shape [3] need 12");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, 0, SMOE_ERR_CORRUPT_FILE,
               "end before begin");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, 0, SMOE_ERR_CORRUPT_FILE,
               "data_offsets");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, 0,
               SMOE_ERR_CORRUPT_FILE, "overflow");
    /* out of range: past the end of the file (truncated data) */
    snprintf(h, sizeof(h), "{%s}", t1);
    expect_bad(h, 8, 1, SMOE_ERR_CORRUPT_FILE, "out of range");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 8, 0, SMOE_ERR_CORRUPT_FILE,
               "out of range");
    /* overlapping tensors */
    snprintf(h, sizeof(h), "{%s,\"u\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[6,10]}}", t1);
    expect_bad(h, 10, 0, SMOE_ERR_CORRUPT_FILE, "overlap");
    /* duplicate names */
    snprintf(h, sizeof(h), "{%s,%s}", t1, t1);
    expect_bad(h, 8, 0, SMOE_ERR_CORRUPT_FILE, "duplicate");
    expect_bad("{\"__metadata__\":[1]}", 0, 0, SMOE_ERR_CORRUPT_FILE, "__metadata__");
}

static void test_st_files(void **state) {
    (void)state;
    smoe_st_file *f;
    assert_int_equal(smoe_st_open(path_in(tmp_dir, "absent.safetensors"), &f), SMOE_ERR_IO);
    assert_non_null(strstr(smoe_last_error(), "absent.safetensors"));
    write_file(path_in(tmp_dir, "empty.safetensors"), "", 0);
    assert_int_equal(smoe_st_open(path_in(tmp_dir, "empty.safetensors"), &f), SMOE_ERR_CORRUPT_FILE);
    assert_int_equal(smoe_st_open(tmp_dir, &f), SMOE_ERR_IO); /* a folder */
    unlink(path_in(tmp_dir, "empty.safetensors"));
}

/* A folder with shards; returns its path. */
static const char *make_dir(const char *name) {
    static char p[1024];
    strcpy(p, path_in(tmp_dir, name));
    mkdir(p, 0755);
    return p;
}

static void test_st_sets(void **state) {
    (void)state;
    uint8_t buf[512];
    size_t n;
    smoe_st_set *s;
    /* no index: every *.safetensors */
    const char *d = make_dir("plain");
    n = make_st(buf, sizeof(buf), "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    write_file(path_in(d, "b.safetensors"), buf, n);
    n = make_st(buf, sizeof(buf), "{\"y\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[0,3]}}", 3);
    write_file(path_in(d, "a.safetensors"), buf, n);
    write_text(path_in(d, "notes.txt"), "not a shard");
    assert_int_equal(smoe_st_set_open(d, &s), SMOE_OK);
    assert_int_equal(smoe_st_set_n_files(s), 2);
    assert_int_equal(smoe_st_set_n_tensors(s), 2);
    assert_int_equal(smoe_st_set_find(s, "y")->shard, 0); /* a.safetensors sorts first */
    assert_int_equal(smoe_st_set_find(s, "x")->shard, 1);
    assert_int_equal(smoe_st_set_data_bytes(s), 7);
    smoe_st_set_close(s);
    /* the same name in two files */
    n = make_st(buf, sizeof(buf), "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    write_file(path_in(d, "c.safetensors"), buf, n);
    assert_int_equal(smoe_st_set_open(d, &s), SMOE_ERR_CORRUPT_FILE);
    assert_non_null(strstr(smoe_last_error(), "tensor 'x' is in two shards"));
    /* no shards at all */
    const char *e = make_dir("empty");
    assert_int_equal(smoe_st_set_open(e, &s), SMOE_ERR_IO);
    assert_non_null(strstr(smoe_last_error(), "no *.safetensors"));
    assert_int_equal(smoe_st_set_open(path_in(tmp_dir, "nope"), &s), SMOE_ERR_IO);

    /* with an index */
    const char *ix = make_dir("indexed");
    n = make_st(buf, sizeof(buf), "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    write_file(path_in(ix, "m-1.safetensors"), buf, n);
    n = make_st(buf, sizeof(buf), "{\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    write_file(path_in(ix, "m-2.safetensors"), buf, n);
    write_file(path_in(ix, "stray.safetensors"), "garbage!", 8); /* not in the index: never opened */
    const char *index = path_in(ix, "model.safetensors.index.json");
    write_text(index, "{\"metadata\":{},\"weight_map\":{\"x\":\"m-1.safetensors\",\"y\":\"m-2.safetensors\"}}");
    assert_int_equal(smoe_st_set_open(ix, &s), SMOE_OK);
    assert_int_equal(smoe_st_set_n_files(s), 2);
    smoe_st_set_close(s);
    /* a tensor the index places in a shard that does not hold it */
    write_text(index, "{\"weight_map\":{\"x\":\"m-1.safetensors\",\"y\":\"m-2.safetensors\",\"z\":\"m-2.safetensors\"}}");
    assert_int_equal(smoe_st_set_open(ix, &s), SMOE_ERR_CORRUPT_FILE);
    assert_non_null(strstr(smoe_last_error(), "tensor 'z' is missing"));
    write_text(index, "{\"weight_map\":{\"x\":\"m-2.safetensors\",\"y\":\"m-1.safetensors\"}}");
    assert_int_equal(smoe_st_set_open(ix, &s), SMOE_ERR_CORRUPT_FILE);
    assert_non_null(strstr(smoe_last_error(), "tensor 'x' is in m-1.safetensors, but"));
    write_text(index, "{\"weight_map\":{\"x\":\"m-2.safetensors\",\"y\":\"m-2.safetensors\"}}");
    assert_int_equal(smoe_st_set_open(ix, &s), SMOE_ERR_CORRUPT_FILE);
    assert_non_null(strstr(smoe_last_error(), "tensor 'x' is missing"));
    /* a missing shard */
    write_text(index, "{\"weight_map\":{\"x\":\"m-1.safetensors\",\"y\":\"m-3.safetensors\"}}");
    assert_int_equal(smoe_st_set_open(ix, &s), SMOE_ERR_IO);
    assert_non_null(strstr(smoe_last_error(), "m-3.safetensors"));
    assert_non_null(strstr(smoe_last_error(), "No such file"));
    /* a truncated shard */
    write_text(index, "{\"weight_map\":{\"x\":\"m-1.safetensors\",\"y\":\"stray.safetensors\"}}");
    assert_int_equal(smoe_st_set_open(ix, &s), SMOE_ERR_CORRUPT_FILE);
    assert_non_null(strstr(smoe_last_error(), "stray.safetensors"));
    /* names that leave the folder */
    write_text(index, "{\"weight_map\":{\"x\":\"../m-1.safetensors\"}}");
    assert_int_equal(smoe_st_set_open(ix, &s), SMOE_ERR_CORRUPT_FILE);
    assert_non_null(strstr(smoe_last_error(), "not a file name in the folder"));
    write_text(index, "{\"weight_map\":[]}");
    assert_int_equal(smoe_st_set_open(ix, &s), SMOE_ERR_CORRUPT_FILE);
    write_text(index, "{\"weight_map\":{}, ");
    assert_int_equal(smoe_st_set_open(ix, &s), SMOE_ERR_CORRUPT_FILE);
}

#define MIXTRAL_CONFIG                                                                                         \
    "{\"architectures\":[\"MixtralForCausalLM\"],\"model_type\":\"mixtral\",\"hidden_size\":64,"                 \
    "\"intermediate_size\":128,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"     \
    "\"num_local_experts\":4,\"num_experts_per_tok\":2,\"vocab_size\":32000,\"rms_norm_eps\":1e-05,"             \
    "\"rope_theta\":1000000.0,\"max_position_embeddings\":32768,\"bos_token_id\":1,\"eos_token_id\":2%s}"

/* Loads the config above with `from` replaced by `to` (and `extra` appended). */
static smoe_status load_config(const char *dir_name, const char *from, const char *to, const char *extra,
                               smoe_hf_config **out) {
    const char *d = make_dir(dir_name);
    char text[2048], edited[2048];
    snprintf(text, sizeof(text), MIXTRAL_CONFIG, extra);
    const char *at = from ? strstr(text, from) : NULL;
    if (at) {
        snprintf(edited, sizeof(edited), "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
        write_text(path_in(d, "config.json"), edited);
    } else {
        write_text(path_in(d, "config.json"), text);
    }
    return smoe_hf_config_load(d, out);
}

static void test_hf_config(void **state) {
    (void)state;
    smoe_hf_config *c = NULL;
    const char *d = make_dir("tiny-seed7-f32");
    char text[2048];
    snprintf(text, sizeof(text), MIXTRAL_CONFIG, "");
    write_text(path_in(d, "config.json"), text);
    write_text(path_in(d, "tokenizer_config.json"),
               "{\"add_bos_token\":true,\"add_eos_token\":false,\"bos_token\":\"<s>\",\"unk_token\":{\"content\":"
               "\"<unk>\"},\"model_max_length\":1000000000000000019884624838656,\"chat_template\":\"{{ x }}\","
               "\"added_tokens_decoder\":{\"0\":{\"content\":\"<unk>\",\"special\":true},"
               "\"32000\":{\"content\":\"\xe2\x96\x81hi\",\"special\":false}}}");
    assert_int_equal(smoe_hf_config_load(d, &c), SMOE_OK);
    assert_string_equal(c->name, "Tiny Seed7 F32");
    assert_int_equal(c->n_embd, 64);
    assert_int_equal(c->head_dim, 16);
    assert_int_equal(c->n_head_kv, 2);
    assert_int_equal(c->n_expert, 4);
    assert_true(c->rope_theta == 1e6f);
    assert_string_equal(c->chat_template, "{{ x }}");
    assert_int_equal(c->add_special[SMOE_HF_BOS], 1);
    assert_int_equal(c->add_special[SMOE_HF_EOS], 0);
    assert_int_equal(c->add_special[SMOE_HF_PAD], -1);
    assert_string_equal(c->special_content[SMOE_HF_UNK], "<unk>");
    assert_int_equal(c->special_id[SMOE_HF_BOS], 1);
    assert_int_equal(c->special_id[SMOE_HF_EOS], 2);
    assert_int_equal(c->special_id[SMOE_HF_UNK], -1); /* no tokenizer.json, no unk_token_id */
    assert_int_equal(c->n_added_decoder, 2);
    assert_int_equal(c->added_decoder[1].id, 32000);
    assert_false(c->added_decoder[1].special);
    smoe_hf_config_free(c);
    /* tokenizer.json's added_tokens name the ids */
    write_text(path_in(d, "tokenizer.json"),
               "{\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\"},{\"id\":5,\"content\":\"<s>\"}]}");
    assert_int_equal(smoe_hf_config_load(d, &c), SMOE_OK);
    assert_int_equal(c->special_id[SMOE_HF_UNK], 0);
    assert_int_equal(c->special_id[SMOE_HF_BOS], 5); /* before config.json's bos_token_id, as llama.cpp */
    smoe_hf_config_free(c);

    assert_int_equal(load_config("defaults", "\"rope_theta\":1000000.0,", "", "", &c), SMOE_OK);
    assert_true(c->rope_theta == 1e6f); /* MixtralConfig's default */
    assert_null(c->chat_template);
    assert_int_equal(c->add_special[SMOE_HF_BOS], -1);
    smoe_hf_config_free(c);
}

static void test_hf_config_bad(void **state) {
    (void)state;
    smoe_hf_config *c = (smoe_hf_config *)1;
    const char *d = make_dir("llama");
    write_text(path_in(d, "config.json"), "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\"}");
    assert_int_equal(smoe_hf_config_load(d, &c), SMOE_ERR_UNSUPPORTED);
    assert_non_null(strstr(smoe_last_error(), "unknown architecture LlamaForCausalLM"));
    assert_null(c);
    assert_int_equal(smoe_hf_config_load(make_dir("noconfig"), &c), SMOE_ERR_IO);
    assert_non_null(strstr(smoe_last_error(), "config.json"));
    write_text(path_in(d, "config.json"), "{\"architectures\":[\"MixtralForCausalLM\"],");
    assert_int_equal(smoe_hf_config_load(d, &c), SMOE_ERR_CORRUPT_FILE);
    write_text(path_in(d, "config.json"), "{\"model_type\":\"mixtral\",\"hidden_size\":64}");
    assert_int_equal(smoe_hf_config_load(d, &c), SMOE_ERR_CORRUPT_FILE);
    assert_non_null(strstr(smoe_last_error(), "missing"));
    assert_int_equal(load_config("heads", "\"num_key_value_heads\":2", "\"num_key_value_heads\":3", "", &c),
                     SMOE_ERR_CORRUPT_FILE);
    assert_non_null(strstr(smoe_last_error(), "not a multiple of num_key_value_heads 3"));
    assert_int_equal(load_config("dup", NULL, NULL, ",\"vocab_size\":5", &c), SMOE_ERR_CORRUPT_FILE);
    assert_non_null(strstr(smoe_last_error(), "duplicate"));
    assert_int_equal(load_config("scaling", NULL, NULL, ",\"rope_scaling\":{\"type\":\"linear\"}", &c),
                     SMOE_ERR_UNSUPPORTED);
    assert_int_equal(load_config("headdim", NULL, NULL, ",\"head_dim\":32", &c), SMOE_ERR_UNSUPPORTED);
    assert_int_equal(load_config("headdim16", NULL, NULL, ",\"head_dim\":16", &c), SMOE_OK);
    smoe_hf_config_free(c);
    assert_int_equal(load_config("used", "\"num_experts_per_tok\":2", "\"num_experts_per_tok\":0", "", &c),
                     SMOE_ERR_CORRUPT_FILE);
    assert_non_null(strstr(smoe_last_error(), "num_experts_per_tok"));
    assert_int_equal(load_config("used5", "\"num_experts_per_tok\":2", "\"num_experts_per_tok\":5", "", &c),
                     SMOE_ERR_CORRUPT_FILE);
    assert_int_equal(load_config("float", "\"hidden_size\":64", "\"hidden_size\":64.5", "", &c),
                     SMOE_ERR_CORRUPT_FILE);
    assert_int_equal(load_config("mt", "\"architectures\":[\"MixtralForCausalLM\"],", "", "", &c), SMOE_OK);
    smoe_hf_config_free(c); /* model_type alone is enough */
}

static void test_id_to_title(void **state) {
    (void)state;
    char out[64];
    /* expectations from gguf-py's Metadata.id_to_title */
    smoe_hf_id_to_title("tiny-seed7-f32", out, sizeof(out));
    assert_string_equal(out, "Tiny Seed7 F32");
    smoe_hf_id_to_title("Mixtral-8x7B-v0.1", out, sizeof(out));
    assert_string_equal(out, "Mixtral 8x7B v0.1");
    smoe_hf_id_to_title("my-model-v2-8x7b", out, sizeof(out));
    assert_string_equal(out, "My Model v2 8x7b");
    smoe_hf_id_to_title("abc_def", out, sizeof(out));
    assert_string_equal(out, "Abc_Def");
}

static void test_name_map(void **state) {
    (void)state;
    char g[64];
    int e;
    static const char *const cases[][2] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"},
        {"model.layers.12.self_attn.q_proj.weight", "blk.12.attn_q.weight"},
        {"model.layers.3.self_attn.k_proj.weight", "blk.3.attn_k.weight"},
        {"model.layers.3.self_attn.v_proj.weight", "blk.3.attn_v.weight"},
        {"model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight"},
        {"model.layers.31.post_attention_layernorm.weight", "blk.31.ffn_norm.weight"},
        {"model.layers.7.block_sparse_moe.gate.weight", "blk.7.ffn_gate_inp.weight"},
        {"model.layers.7.block_sparse_moe.experts.5.w1.weight", "blk.7.ffn_gate_exps.weight"},
        {"model.layers.7.block_sparse_moe.experts.5.w2.weight", "blk.7.ffn_down_exps.weight"},
        {"model.layers.7.block_sparse_moe.experts.5.w3.weight", "blk.7.ffn_up_exps.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_true(smoe_name_map_hf_to_gguf(cases[i][0], g, sizeof(g), &e));
        assert_string_equal(g, cases[i][1]);
        assert_int_equal(e, strstr(cases[i][0], "experts.") ? 5 : -1);
    }
    static const char *const bad[] = {
        "model.layers.x.input_layernorm.weight", "model.layers.01.input_layernorm.weight",
        "model.layers.0.block_sparse_moe.experts.1.w4.weight", "model.layers.0.mlp.gate_proj.weight",
        "model.layers.0.self_attn.rotary_emb.inv_freq", "lm_head.bias", "model.layers.0.block_sparse_moe.experts.1.w1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) assert_false(smoe_name_map_hf_to_gguf(bad[i], g, sizeof(g), &e));
}

static void test_permutation(void **state) {
    (void)state;
    /* llama.cpp: w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).reshape(rows, cols). Element
     * [h, i, j] of the result (shape [n_head, hd / 2, 2]) is element [h, j, i] of the input viewed as
     * [n_head, 2, hd / 2]. */
    const int64_t heads[] = {1, 2, 4, 8, 32};
    const int64_t hds[] = {2, 4, 16, 128};
    for (size_t a = 0; a < 5; a++) {
        for (size_t b = 0; b < 4; b++) {
            const int64_t nh = heads[a], hd = hds[b], rows = nh * hd;
            int64_t seen[4096] = {0};
            for (int64_t h = 0; h < nh; h++)
                for (int64_t i = 0; i < hd / 2; i++)
                    for (int64_t j = 0; j < 2; j++) {
                        const int64_t out_row = (h * (hd / 2) + i) * 2 + j;
                        const int64_t in_row = (h * 2 + j) * (hd / 2) + i;
                        assert_int_equal(smoe_name_map_permuted_row(out_row, rows, nh), in_row);
                        seen[in_row]++;
                    }
            for (int64_t r = 0; r < rows; r++) assert_int_equal(seen[r], 1);
        }
    }
}

static void test_size_label(void **state) {
    (void)state;
    char out[32];
    /* tiny: 4 experts; shared 4121408 + one expert 49152 = 4.17M */
    smoe_conv_plan p = {.n_params = 4121408 + 4 * 49152, .n_expert_params = 4 * 49152};
    smoe_name_map_size_label(&p, 4, out, sizeof(out));
    assert_string_equal(out, "4x4.2M");
    /* Mixtral 8x7B: 46702792704 parameters, experts 45097156608 */
    p.n_params = 46702792704ull;
    p.n_expert_params = 45097156608ull;
    smoe_name_map_size_label(&p, 8, out, sizeof(out));
    assert_string_equal(out, "8x7.2B");
    p.n_params = 999;
    p.n_expert_params = 0;
    smoe_name_map_size_label(&p, 0, out, sizeof(out));
    assert_string_equal(out, "1.0K");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_st_valid),     cmocka_unit_test(test_st_hostile), cmocka_unit_test(test_st_files),
        cmocka_unit_test(test_st_sets),      cmocka_unit_test(test_hf_config),  cmocka_unit_test(test_hf_config_bad),
        cmocka_unit_test(test_id_to_title),  cmocka_unit_test(test_name_map),   cmocka_unit_test(test_permutation),
        cmocka_unit_test(test_size_label),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
