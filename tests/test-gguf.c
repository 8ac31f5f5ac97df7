/*
 * test-gguf.c - the GGUF reader and writer: round trips of every value type and of tensors with odd sizes, copy_kv,
 * typed getters, the writer's temp-file discipline, and a battery of hostile files built byte by byte here (from the
 * GGUF spec, not with our writer) that must fail with the right status and a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/gguf.h"

static char tmp_dir[256];

static int setup_dir(void **state) {
    (void)state;
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/smoe-test-gguf-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown_dir(void **state) {
    (void)state;
    DIR *d = opendir(tmp_dir);
    if (d) {
        struct dirent *e;
        char           p[600];
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            snprintf(p, sizeof(p), "%s/%s", tmp_dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmp_dir);
    return 0;
}

static const char *tmp_path(const char *name) { /* rotating buffers: a few paths may be live at once */
    static char p[8][512];
    static int  k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof(p[k]), "%s/%s", tmp_dir, name);
    return p[k];
}

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Files in tmp_dir whose name starts with prefix. */
static int count_files(const char *prefix) {
    DIR *d = opendir(tmp_dir);
    int  n = 0;
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* ---- round trip ---- */

typedef struct test_tensor {
    const char *name;
    smoe_type   type;
    uint32_t    n_dims;
    int64_t     ne[4];
    size_t      size; /* expected bytes, computed here from the GGUF block sizes */
} test_tensor;

static const test_tensor tensors[] = {
    {"t.f32_odd", SMOE_TYPE_F32, 1, {3}, 12},
    {"t.f16", SMOE_TYPE_F16, 2, {5, 3}, 30},
    {"t.q8_0", SMOE_TYPE_Q8_0, 2, {64, 2}, 2 * 2 * 34},
    {"t.empty", SMOE_TYPE_F32, 2, {0, 4}, 0},
    {"t.q4_0", SMOE_TYPE_Q4_0, 3, {32, 3, 2}, 6 * 18},
    {"t.i8", SMOE_TYPE_I8, 4, {7, 1, 1, 1}, 7},
    {"blk.0.ffn_up_exps.weight", SMOE_TYPE_Q4_K, 3, {256, 2, 3}, 6 * 144},
};
#define N_TENSORS (sizeof(tensors) / sizeof(tensors[0]))

static uint8_t pattern(size_t t, size_t j) { return (uint8_t)(t * 37 + j * 11 + (j >> 8)); }

static const char *const strs[] = {"", "hello", "a\"b\\c\n", "\xe2\x96\x81token", "x"};
static const uint64_t    strs_len[] = {0, 5, 6, 8, 1};

static void write_test_file(const char *path, uint32_t alignment, size_t piece) {
    smoe_gguf_writer *w = NULL;
    assert_int_equal(smoe_gguf_writer_open(path, &w), SMOE_OK);
    if (alignment) assert_int_equal(smoe_gguf_writer_set_u32(w, "general.alignment", alignment), SMOE_OK);
    uint8_t u8 = 200;
    int8_t  i8 = -100;
    uint16_t u16 = 60000;
    int16_t  i16 = -30000;
    int64_t  i64 = INT64_MIN + 5;
    double   f64 = -1.0 / 3.0;
    assert_int_equal(smoe_gguf_writer_set_scalar(w, "v.u8", SMOE_GGUF_UINT8, &u8), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_scalar(w, "v.i8", SMOE_GGUF_INT8, &i8), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_scalar(w, "v.u16", SMOE_GGUF_UINT16, &u16), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_scalar(w, "v.i16", SMOE_GGUF_INT16, &i16), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_u32(w, "v.u32", 4000000000u), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_i32(w, "v.i32", -2000000000), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_f32(w, "v.f32", 0.1f), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_bool(w, "v.bool", true), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_str(w, "v.str", "replaced"), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_str(w, "v.str", "Mixtral \xe2\x96\x81 8x7B"), SMOE_OK); /* replaces */
    assert_int_equal(smoe_gguf_writer_set_str_n(w, "v.str_nul", "a\0b", 3), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_u64(w, "v.u64", UINT64_MAX - 1), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_scalar(w, "v.i64", SMOE_GGUF_INT64, &i64), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_scalar(w, "v.f64", SMOE_GGUF_FLOAT64, &f64), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_u8(w, "v.u8b", 7), SMOE_OK);

    uint8_t  a_u8[3]  = {1, 2, 255};
    int16_t  a_i16[2] = {-1, 32767};
    uint32_t a_u32[5] = {1, 2, 3, 4, 0xffffffffu};
    float    a_f32[3] = {1.5f, -0.0f, INFINITY};
    uint8_t  a_bool[4] = {1, 0, 0, 1};
    int64_t  a_i64[2] = {INT64_MIN, INT64_MAX};
    double   a_f64[1] = {3.141592653589793};
    assert_int_equal(smoe_gguf_writer_set_arr(w, "a.u8", SMOE_GGUF_UINT8, a_u8, 3), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_arr(w, "a.i16", SMOE_GGUF_INT16, a_i16, 2), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_arr(w, "a.u32", SMOE_GGUF_UINT32, a_u32, 5), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_arr(w, "a.f32", SMOE_GGUF_FLOAT32, a_f32, 3), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_arr(w, "a.bool", SMOE_GGUF_BOOL, a_bool, 4), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_arr(w, "a.i64", SMOE_GGUF_INT64, a_i64, 2), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_arr(w, "a.f64", SMOE_GGUF_FLOAT64, a_f64, 1), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_arr(w, "a.empty", SMOE_GGUF_INT32, NULL, 0), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_arr_str(w, "a.str", strs, 5), SMOE_OK);
    const char *with_nul[] = {"x\0y", "z"};
    uint64_t    nul_lens[] = {3, 1};
    assert_int_equal(smoe_gguf_writer_set_arr_str_n(w, "a.str_nul", with_nul, nul_lens, 2), SMOE_OK);

    for (size_t t = 0; t < N_TENSORS; t++) {
        assert_int_equal(smoe_gguf_writer_add_tensor(w, tensors[t].name, tensors[t].type, tensors[t].n_dims,
                                                     tensors[t].ne),
                         SMOE_OK);
    }
    assert_int_equal(smoe_gguf_writer_begin_data(w), SMOE_OK);
    /* the data of all tensors as one stream, in pieces that straddle tensor boundaries */
    size_t total = 0;
    for (size_t t = 0; t < N_TENSORS; t++) total += tensors[t].size;
    uint8_t *all = malloc(total);
    assert_non_null(all);
    for (size_t t = 0, at = 0; t < N_TENSORS; t++) {
        for (size_t j = 0; j < tensors[t].size; j++) all[at++] = pattern(t, j);
    }
    for (size_t at = 0; at < total; at += piece) {
        size_t n = total - at < piece ? total - at : piece;
        assert_int_equal(smoe_gguf_writer_write_data(w, all + at, n), SMOE_OK);
    }
    free(all);
    assert_false(exists(path)); /* nothing under the final name before finish */
    assert_int_equal(smoe_gguf_writer_finish(w), SMOE_OK);
}

static void check_test_file(const smoe_gguf *g, uint64_t alignment) {
    int64_t i;
    assert_int_equal(smoe_gguf_version(g), 3);
    assert_int_equal(smoe_gguf_alignment(g), alignment);
    assert_int_equal(smoe_gguf_data_offset(g) % alignment, 0);

#define SCALAR(key, T, type_id, expect)                                                                                \
    do {                                                                                                               \
        i = smoe_gguf_find_key(g, key);                                                                                \
        assert_true(i >= 0);                                                                                           \
        assert_int_equal(smoe_gguf_kv_type(g, i), type_id);                                                            \
        T v_;                                                                                                          \
        memcpy(&v_, smoe_gguf_val(g, i), sizeof(T));                                                                   \
        assert_true(v_ == (expect));                                                                                   \
    } while (0)
    SCALAR("v.u8", uint8_t, SMOE_GGUF_UINT8, 200);
    SCALAR("v.i8", int8_t, SMOE_GGUF_INT8, -100);
    SCALAR("v.u16", uint16_t, SMOE_GGUF_UINT16, 60000);
    SCALAR("v.i16", int16_t, SMOE_GGUF_INT16, -30000);
    SCALAR("v.u32", uint32_t, SMOE_GGUF_UINT32, 4000000000u);
    SCALAR("v.i32", int32_t, SMOE_GGUF_INT32, -2000000000);
    SCALAR("v.f32", float, SMOE_GGUF_FLOAT32, 0.1f);
    SCALAR("v.bool", uint8_t, SMOE_GGUF_BOOL, 1);
    SCALAR("v.u64", uint64_t, SMOE_GGUF_UINT64, UINT64_MAX - 1);
    SCALAR("v.i64", int64_t, SMOE_GGUF_INT64, INT64_MIN + 5);
    SCALAR("v.f64", double, SMOE_GGUF_FLOAT64, -1.0 / 3.0);
#undef SCALAR
    uint64_t    len;
    const char *s;
    i = smoe_gguf_find_key(g, "v.str");
    assert_string_equal(smoe_gguf_str(g, i, &len), "Mixtral \xe2\x96\x81 8x7B");
    assert_int_equal(len, 16);
    i = smoe_gguf_find_key(g, "v.str_nul");
    s = smoe_gguf_str(g, i, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "a\0b", 4); /* NUL-terminated too */

    i = smoe_gguf_find_key(g, "a.u32");
    assert_int_equal(smoe_gguf_kv_type(g, i), SMOE_GGUF_ARRAY);
    assert_int_equal(smoe_gguf_arr_type(g, i), SMOE_GGUF_UINT32);
    assert_int_equal(smoe_gguf_arr_n(g, i), 5);
    const uint32_t *u32 = smoe_gguf_arr_data(g, i);
    assert_int_equal((uintptr_t)u32 % 8, 0);
    assert_int_equal(u32[0], 1);
    assert_int_equal(u32[4], 0xffffffffu);
    i = smoe_gguf_find_key(g, "a.f32");
    const float *f32 = smoe_gguf_arr_data(g, i);
    assert_true(f32[0] == 1.5f && f32[1] == 0.0f && signbit(f32[1]) && isinf(f32[2]));
    i = smoe_gguf_find_key(g, "a.i64");
    const int64_t *i64 = smoe_gguf_arr_data(g, i);
    assert_true(i64[0] == INT64_MIN && i64[1] == INT64_MAX);
    i = smoe_gguf_find_key(g, "a.f64");
    assert_true(((const double *)smoe_gguf_arr_data(g, i))[0] == 3.141592653589793);
    i = smoe_gguf_find_key(g, "a.bool");
    assert_memory_equal(smoe_gguf_arr_data(g, i), "\1\0\0\1", 4);
    i = smoe_gguf_find_key(g, "a.i16");
    assert_int_equal(((const int16_t *)smoe_gguf_arr_data(g, i))[0], -1);
    i = smoe_gguf_find_key(g, "a.u8");
    assert_memory_equal(smoe_gguf_arr_data(g, i), "\1\2\377", 3);
    i = smoe_gguf_find_key(g, "a.empty");
    assert_int_equal(smoe_gguf_arr_n(g, i), 0);
    assert_int_equal(smoe_gguf_arr_type(g, i), SMOE_GGUF_INT32);
    i = smoe_gguf_find_key(g, "a.str");
    assert_int_equal(smoe_gguf_arr_type(g, i), SMOE_GGUF_STRING);
    assert_int_equal(smoe_gguf_arr_n(g, i), 5);
    for (uint64_t j = 0; j < 5; j++) {
        s = smoe_gguf_arr_str(g, i, j, &len);
        assert_int_equal(len, strs_len[j]);
        assert_string_equal(s, strs[j]);
    }
    assert_null(smoe_gguf_arr_str(g, i, 5, &len)); /* out of range */
    i = smoe_gguf_find_key(g, "a.str_nul");
    s = smoe_gguf_arr_str(g, i, 0, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "x\0y", 4);

    assert_int_equal(smoe_gguf_n_tensors(g), N_TENSORS);
    uint64_t prev_end = 0;
    for (size_t t = 0; t < N_TENSORS; t++) {
        int64_t ti = smoe_gguf_find_tensor(g, tensors[t].name);
        assert_int_equal(ti, (int64_t)t);
        const smoe_gguf_tensor_info *info = smoe_gguf_tensor(g, ti);
        assert_string_equal(info->name, tensors[t].name);
        assert_int_equal(info->type, tensors[t].type);
        assert_int_equal(info->n_dims, tensors[t].n_dims);
        for (uint32_t d = 0; d < 4; d++) {
            assert_int_equal(info->ne[d], d < tensors[t].n_dims ? tensors[t].ne[d] : 1);
        }
        assert_int_equal(info->size, tensors[t].size);
        assert_int_equal(info->offset % alignment, 0);
        assert_true(info->offset >= prev_end);
        prev_end = info->offset + info->size;
        const uint8_t *d = smoe_gguf_tensor_data(g, ti);
        for (size_t j = 0; j < tensors[t].size; j++) {
            if (d[j] != pattern(t, j)) fail_msg("tensor %s byte %zu", tensors[t].name, j);
        }
    }
    /* the file ends with the last tensor padded to the alignment */
    uint64_t last = (tensors[N_TENSORS - 1].size + alignment - 1) / alignment * alignment;
    assert_int_equal(smoe_gguf_file_size(g), smoe_gguf_data_offset(g) + smoe_gguf_tensor(g, N_TENSORS - 1)->offset + last);
    assert_int_equal(smoe_gguf_find_tensor(g, "nope"), -1);
    assert_int_equal(smoe_gguf_find_key(g, "nope"), -1);
    assert_null(smoe_gguf_tensor(g, -1));
    assert_null(smoe_gguf_tensor(g, (int64_t)N_TENSORS));
    assert_null(smoe_gguf_key(g, smoe_gguf_n_kv(g)));
}

static void test_roundtrip(void **state) {
    (void)state;
    const size_t pieces[] = {1, 7, 100, 1 << 20};
    for (size_t k = 0; k < 4; k++) {
        const char *path = tmp_path("rt.gguf");
        unlink(path);
        write_test_file(path, k == 2 ? 64 : (k == 3 ? 1 : 0), pieces[k]);
        smoe_gguf *g = NULL;
        assert_int_equal(smoe_gguf_open(path, &g), SMOE_OK);
        check_test_file(g, k == 2 ? 64 : (k == 3 ? 1 : 32));
        smoe_gguf_close(g);
        assert_int_equal(count_files("rt.gguf.tmp"), 0);
    }
}

static void test_copy_kv(void **state) {
    (void)state;
    const char *src = tmp_path("src.gguf"), *dst = tmp_path("dst.gguf");
    write_test_file(src, 0, 4096);
    smoe_gguf *g = NULL, *h = NULL;
    assert_int_equal(smoe_gguf_open(src, &g), SMOE_OK);
    smoe_gguf_writer *w = NULL;
    assert_int_equal(smoe_gguf_writer_open(dst, &w), SMOE_OK);
    for (int64_t i = 0; i < smoe_gguf_n_kv(g); i++) assert_int_equal(smoe_gguf_writer_copy_kv(w, g, i), SMOE_OK);
    for (int64_t t = 0; t < smoe_gguf_n_tensors(g); t++) {
        const smoe_gguf_tensor_info *ti = smoe_gguf_tensor(g, t);
        assert_int_equal(smoe_gguf_writer_add_tensor(w, ti->name, ti->type, ti->n_dims, ti->ne), SMOE_OK);
    }
    assert_int_equal(smoe_gguf_writer_begin_data(w), SMOE_OK);
    for (int64_t t = 0; t < smoe_gguf_n_tensors(g); t++) {
        assert_int_equal(smoe_gguf_writer_write_data(w, smoe_gguf_tensor_data(g, t), smoe_gguf_tensor(g, t)->size),
                         SMOE_OK);
    }
    assert_int_equal(smoe_gguf_writer_finish(w), SMOE_OK);
    assert_int_equal(smoe_gguf_open(dst, &h), SMOE_OK);
    check_test_file(h, 32);
    smoe_gguf_close(h);
    smoe_gguf_close(g);
    /* a faithful copy is byte-identical */
    size_t   n1, n2;
    uint8_t *a = read_all(src, &n1), *b = read_all(dst, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    free(a);
    free(b);
}

static void test_getters(void **state) {
    (void)state;
    const char *path = tmp_path("get.gguf");
    write_test_file(path, 0, 1000);
    smoe_gguf *g = NULL;
    assert_int_equal(smoe_gguf_open(path, &g), SMOE_OK);
    uint32_t    u32;
    uint64_t    u64;
    int32_t     i32;
    float       f;
    bool        b;
    const char *s;
    assert_int_equal(smoe_gguf_get_u32(g, "v.u8", &u32), SMOE_OK);
    assert_int_equal(u32, 200);
    assert_int_equal(smoe_gguf_get_u32(g, "v.u32", &u32), SMOE_OK);
    assert_int_equal(u32, 4000000000u);
    assert_int_equal(smoe_gguf_get_i32(g, "v.i16", &i32), SMOE_OK);
    assert_int_equal(i32, -30000);
    assert_int_equal(smoe_gguf_get_u64(g, "v.u64", &u64), SMOE_OK);
    assert_true(u64 == UINT64_MAX - 1);
    /* values that do not fit */
    assert_int_equal(smoe_gguf_get_u32(g, "v.i8", &u32), SMOE_ERR_CORRUPT_FILE);
    assert_non_null(strstr(smoe_last_error(), "v.i8"));
    assert_int_equal(smoe_gguf_get_i32(g, "v.u32", &i32), SMOE_ERR_CORRUPT_FILE);
    assert_int_equal(smoe_gguf_get_u32(g, "v.u64", &u32), SMOE_ERR_CORRUPT_FILE);
    assert_int_equal(smoe_gguf_get_i32(g, "v.i64", &i32), SMOE_ERR_CORRUPT_FILE);
    /* wrong types */
    assert_int_equal(smoe_gguf_get_u32(g, "v.f32", &u32), SMOE_ERR_CORRUPT_FILE);
    assert_int_equal(smoe_gguf_get_f32(g, "v.u32", &f), SMOE_ERR_CORRUPT_FILE);
    assert_int_equal(smoe_gguf_get_bool(g, "v.u8", &b), SMOE_ERR_CORRUPT_FILE);
    assert_int_equal(smoe_gguf_get_str(g, "a.str", &s), SMOE_ERR_CORRUPT_FILE);
    assert_non_null(strstr(smoe_last_error(), "a.str"));
    assert_int_equal(smoe_gguf_get_f32(g, "v.f32", &f), SMOE_OK);
    assert_true(f == 0.1f);
    assert_int_equal(smoe_gguf_get_f32(g, "v.f64", &f), SMOE_OK);
    assert_true(f == (float)(-1.0 / 3.0));
    assert_int_equal(smoe_gguf_get_bool(g, "v.bool", &b), SMOE_OK);
    assert_true(b);
    assert_int_equal(smoe_gguf_get_str(g, "v.str", &s), SMOE_OK);
    assert_string_equal(s, "Mixtral \xe2\x96\x81 8x7B");
    /* missing keys: error naming the key, or the default */
    assert_int_equal(smoe_gguf_get_u32(g, "llama.block_count", &u32), SMOE_ERR_CORRUPT_FILE);
    assert_non_null(strstr(smoe_last_error(), "llama.block_count"));
    assert_int_equal(smoe_gguf_get_u32_or(g, "llama.block_count", 32, &u32), SMOE_OK);
    assert_int_equal(u32, 32);
    assert_int_equal(smoe_gguf_get_f32_or(g, "x", 0.5f, &f), SMOE_OK);
    assert_true(f == 0.5f);
    assert_int_equal(smoe_gguf_get_bool_or(g, "x", true, &b), SMOE_OK);
    assert_true(b);
    assert_int_equal(smoe_gguf_get_u32_or(g, "v.str", 1, &u32), SMOE_ERR_CORRUPT_FILE); /* present, wrong type */
    assert_int_equal(smoe_gguf_get_bool_or(g, "v.bool", false, &b), SMOE_OK);
    assert_true(b);
    smoe_gguf_close(g);
}

static void test_public_api(void **state) {
    (void)state;
    const char *path = tmp_path("pub.gguf");
    write_test_file(path, 0, 333);
    smoe_gguf_file *f = NULL;
    assert_int_equal(smoe_gguf_file_open(path, &f), SMOE_OK);
    assert_int_equal(smoe_gguf_file_version(f), 3);
    assert_int_equal(smoe_gguf_file_alignment(f), 32);
    assert_int_equal(smoe_gguf_file_n_tensors(f), N_TENSORS);
    char    buf[256];
    int64_t n_kv = smoe_gguf_file_n_kv(f);
    for (int64_t i = 0; i < n_kv; i++) {
        const char *key  = smoe_gguf_file_kv_key(f, i);
        size_t      need = smoe_gguf_file_kv_format(f, i, buf, sizeof(buf), 2);
        assert_int_equal(need, strlen(buf));
        if (!strcmp(key, "a.str")) assert_string_equal(buf, "[5 strings: \"\", \"hello\", ...]");
        if (!strcmp(key, "a.u8")) assert_string_equal(buf, "[3 u8: 1, 2, ...]");
        if (!strcmp(key, "a.i64")) assert_string_equal(buf, "[-9223372036854775808, 9223372036854775807]");
        if (!strcmp(key, "a.empty")) assert_string_equal(buf, "[]");
        if (!strcmp(key, "a.f32")) assert_string_equal(buf, "[3 f32: 1.5, -0, ...]");
        if (!strcmp(key, "v.str_nul")) assert_string_equal(buf, "\"a\\u0000b\"");
        if (!strcmp(key, "v.bool")) assert_string_equal(buf, "true");
        if (!strcmp(key, "v.i8")) assert_string_equal(buf, "-100");
        if (!strcmp(key, "v.f64")) assert_string_equal(buf, "-0.33333333333333331");
        if (!strcmp(key, "a.bool")) assert_int_equal(smoe_gguf_file_kv_array_type(f, i), SMOE_GGUF_BOOL);
        if (!strcmp(key, "a.bool")) assert_int_equal(smoe_gguf_file_kv_array_n(f, i), 4);
    }
    int64_t s = -1;
    for (int64_t i = 0; i < n_kv; i++) s = strcmp(smoe_gguf_file_kv_key(f, i), "a.str") ? s : i;
    assert_true(s >= 0);
    /* snprintf semantics: the full length is returned, the output truncated and terminated */
    char small[8];
    size_t full = smoe_gguf_file_kv_format(f, s, small, sizeof(small), 100);
    assert_int_equal(full, strlen("[\"\", \"hello\", \"a\\\"b\\\\c\\n\", \"\xe2\x96\x81token\", \"x\"]"));
    assert_int_equal(strlen(small), 7);
    assert_int_equal(smoe_gguf_file_kv_format(f, s, NULL, 0, 100), full);
    assert_string_equal(smoe_gguf_file_tensor_name(f, 2), "t.q8_0");
    assert_string_equal(smoe_gguf_file_tensor_type_name(f, 2), "q8_0");
    assert_int_equal(smoe_gguf_file_tensor_n_dims(f, 2), 2);
    assert_int_equal(smoe_gguf_file_tensor_ne(f, 2, 0), 64);
    assert_int_equal(smoe_gguf_file_tensor_size(f, 2), 136);
    assert_null(smoe_gguf_file_tensor_name(f, 99));
    smoe_gguf_file_close(f);
    smoe_gguf_file_close(NULL);
    assert_int_equal(smoe_gguf_file_open(tmp_path("does-not-exist.gguf"), &f), SMOE_ERR_IO);
    assert_null(f);
    assert_non_null(strstr(smoe_last_error(), "does-not-exist.gguf"));
}

/* ---- writer discipline ---- */

static void test_writer_abort_and_errors(void **state) {
    (void)state;
    const char       *path = tmp_path("w.gguf");
    smoe_gguf_writer *w    = NULL;
    int64_t           ne[2] = {32, 2};

    /* abort: no file, no temp file */
    assert_int_equal(smoe_gguf_writer_open(path, &w), SMOE_OK);
    assert_int_equal(count_files("w.gguf.tmp."), 1); /* the temp file lives beside the target */
    assert_int_equal(smoe_gguf_writer_add_tensor(w, "a", SMOE_TYPE_F32, 2, ne), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_begin_data(w), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_write_data(w, "0123456789", 10), SMOE_OK);
    assert_false(exists(path));
    smoe_gguf_writer_abort(w);
    assert_false(exists(path));
    assert_int_equal(count_files("w.gguf"), 0);
    smoe_gguf_writer_abort(NULL);

    /* an existing file stays untouched by a failed write, and is replaced by a finished one */
    FILE *f = fopen(path, "wb");
    fputs("old", f);
    fclose(f);
    assert_int_equal(smoe_gguf_writer_open(path, &w), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_add_tensor(w, "a", SMOE_TYPE_F32, 2, ne), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_add_tensor(w, "a", SMOE_TYPE_F32, 2, ne), SMOE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(smoe_last_error(), "duplicate tensor name 'a'"));
    assert_int_equal(count_files("w.gguf.tmp."), 0); /* removed at the error */
    assert_int_equal(smoe_gguf_writer_set_u32(w, "k", 1), SMOE_ERR_INVALID_ARGUMENT); /* only abort after an error */
    smoe_gguf_writer_abort(w);
    size_t   n;
    uint8_t *old = read_all(path, &n);
    assert_int_equal(n, 3);
    free(old);

    /* finish with missing data fails and leaves the old file */
    assert_int_equal(smoe_gguf_writer_open(path, &w), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_add_tensor(w, "a", SMOE_TYPE_F32, 2, ne), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_begin_data(w), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_write_data(w, "0123", 4), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_finish(w), SMOE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(smoe_last_error(), "4 of 256 bytes"));
    assert_int_equal(count_files("w.gguf"), 1);

    /* too much data */
    assert_int_equal(smoe_gguf_writer_open(path, &w), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_add_tensor(w, "a", SMOE_TYPE_F32, 1, ne), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_begin_data(w), SMOE_OK);
    uint8_t big[200] = {0};
    assert_int_equal(smoe_gguf_writer_write_data(w, big, 200), SMOE_ERR_INVALID_ARGUMENT);
    smoe_gguf_writer_abort(w);
    assert_int_equal(count_files("w.gguf"), 1);

    /* bad tensors and keys */
    const int64_t bad_row[1] = {33}, neg[2] = {32, -1}, huge[4] = {INT64_MAX / 2 + 32, 4, 1, 1};
    struct {
        smoe_type      type;
        uint32_t       n_dims;
        const int64_t *ne;
    } bad[] = {{SMOE_TYPE_Q4_0, 1, bad_row}, {SMOE_TYPE_F32, 2, neg},  {SMOE_TYPE_F32, 0, ne},
               {SMOE_TYPE_F32, 5, ne},       {(smoe_type)4, 1, ne},    {SMOE_TYPE_F32, 2, huge}};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        assert_int_equal(smoe_gguf_writer_open(path, &w), SMOE_OK);
        assert_int_equal(smoe_gguf_writer_add_tensor(w, "t", bad[k].type, bad[k].n_dims, bad[k].ne),
                         SMOE_ERR_INVALID_ARGUMENT);
        assert_true(smoe_last_error()[0] != '\0');
        smoe_gguf_writer_abort(w);
    }
    assert_int_equal(smoe_gguf_writer_open(path, &w), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_u32(w, "general.alignment", 48), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_begin_data(w), SMOE_ERR_INVALID_ARGUMENT);
    smoe_gguf_writer_abort(w);
    assert_int_equal(smoe_gguf_writer_open(path, &w), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_u32(w, "", 1), SMOE_ERR_INVALID_ARGUMENT);
    smoe_gguf_writer_abort(w);
    assert_int_equal(smoe_gguf_writer_open(path, &w), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_str(w, NULL, "x"), SMOE_ERR_INVALID_ARGUMENT);
    smoe_gguf_writer_abort(w);
    assert_int_equal(smoe_gguf_writer_open(path, &w), SMOE_OK);
    uint8_t two = 2;
    assert_int_equal(smoe_gguf_writer_set_scalar(w, "b", SMOE_GGUF_BOOL, &two), SMOE_ERR_INVALID_ARGUMENT);
    smoe_gguf_writer_abort(w);
    assert_int_equal(smoe_gguf_writer_open(path, &w), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_arr(w, "s", SMOE_GGUF_STRING, "x", 1), SMOE_ERR_INVALID_ARGUMENT);
    smoe_gguf_writer_abort(w);
    assert_int_equal(count_files("w.gguf"), 1);
    /* a file in a missing directory cannot be opened */
    assert_int_equal(smoe_gguf_writer_open(tmp_path("no/such/dir.gguf"), &w), SMOE_ERR_IO);
    assert_null(w);

    /* metadata only, finish without begin_data */
    if (smoe_gguf_writer_open(path, &w) != SMOE_OK) fail_msg("%s", smoe_last_error());
    assert_int_equal(smoe_gguf_writer_set_str(w, "general.name", "x"), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_finish(w), SMOE_OK);
    smoe_gguf *g = NULL;
    assert_int_equal(smoe_gguf_open(path, &g), SMOE_OK);
    assert_int_equal(smoe_gguf_n_kv(g), 1);
    assert_int_equal(smoe_gguf_n_tensors(g), 0);
    smoe_gguf_close(g);
    assert_int_equal(count_files("w.gguf"), 1);
}

/* ---- hostile files, built from the spec ---- */

typedef struct gb {
    uint8_t *p;
    size_t   n, cap;
} gb;

static void gb_put(gb *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p   = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void gb_u32(gb *b, uint32_t v) { gb_put(b, &v, 4); }
static void gb_u64(gb *b, uint64_t v) { gb_put(b, &v, 8); }
static void gb_str(gb *b, const char *s) {
    gb_u64(b, strlen(s));
    gb_put(b, s, strlen(s));
}
static void gb_header(gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    gb_put(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}
static void gb_kv_u32(gb *b, const char *key, uint32_t v) {
    gb_str(b, key);
    gb_u32(b, SMOE_GGUF_UINT32);
    gb_u32(b, v);
}
static void gb_tensor(gb *b, const char *name, uint32_t n_dims, const int64_t *ne, uint32_t type, uint64_t off) {
    gb_str(b, name);
    gb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) gb_u64(b, (uint64_t)ne[d]);
    gb_u32(b, type);
    gb_u64(b, off);
}
static void gb_pad(gb *b, size_t align) {
    while (b->n % align) gb_put(b, "", 1);
}
static void gb_zeros(gb *b, size_t n) {
    for (size_t i = 0; i < n; i++) gb_put(b, "", 1);
}

/* Parses b; expects `want`; if `needle` is set the message must contain it. Frees b. */
#define EXPECT(b, want, needle) expect_parse(&(b), (want), (needle), __LINE__)
static void expect_parse(gb *b, smoe_status want, const char *needle, int line) {
    smoe_gguf  *g  = NULL;
    smoe_status st = smoe_gguf_open_memory(b->p, b->n, &g);
    if (st != want) fail_msg("line %d: status %d, want %d (%s)", line, st, want, smoe_last_error());
    if (want != SMOE_OK) {
        assert_null(g);
        if (smoe_last_error()[0] == '\0') fail_msg("line %d: empty message", line);
        if (needle && !strstr(smoe_last_error(), needle)) {
            fail_msg("line %d: message '%s' lacks '%s'", line, smoe_last_error(), needle);
        }
    }
    smoe_gguf_close(g);
    free(b->p);
    *b = (gb){0};
}

static void test_hostile_header(void **state) {
    (void)state;
    gb b = {0};
    gb_put(&b, "GGU", 3);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "only 3 bytes");
    gb_put(&b, "GGML", 4);
    gb_u32(&b, 3);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "magic");
    gb_header(&b, 1, 0, 0);
    EXPECT(b, SMOE_ERR_UNSUPPORTED, "version 1");
    gb_header(&b, 4, 0, 0);
    EXPECT(b, SMOE_ERR_UNSUPPORTED, "version 4");
    gb_header(&b, 0x03000000, 0, 0);
    EXPECT(b, SMOE_ERR_UNSUPPORTED, "big-endian");
    gb_header(&b, 2, 0, 0);
    EXPECT(b, SMOE_OK, NULL); /* v2: same layout */
    gb_header(&b, 3, 0, 0);
    EXPECT(b, SMOE_OK, NULL); /* empty file */
    gb_header(&b, 3, 0, UINT64_MAX);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "metadata entries cannot fit");
    gb_header(&b, 3, UINT64_MAX, 0);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "tensors");
    gb_header(&b, 3, 1ull << 60, 1);
    gb_kv_u32(&b, "a", 1);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "cannot fit");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "key");
    gb_u32(&b, SMOE_GGUF_UINT64);
    gb_zeros(&b, 7); /* a value that ends early */
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "truncated");
}

static void test_hostile_kv(void **state) {
    (void)state;
    gb b = {0};
    /* huge key length */
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, UINT64_MAX - 3);
    gb_zeros(&b, 16);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "string length");
    /* empty key, key with NUL */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "");
    gb_u32(&b, SMOE_GGUF_UINT8);
    gb_zeros(&b, 4);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "empty key");
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, 3);
    gb_put(&b, "a\0b", 3);
    gb_u32(&b, SMOE_GGUF_UINT8);
    gb_zeros(&b, 4);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "NUL");
    /* bad value type, bad element type */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k");
    gb_u32(&b, 13);
    gb_zeros(&b, 8);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "unknown value type id 13");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k");
    gb_u32(&b, SMOE_GGUF_ARRAY);
    gb_u32(&b, 99);
    gb_u64(&b, 0);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "unknown value type id 99");
    /* huge string value, huge arrays of each kind */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k");
    gb_u32(&b, SMOE_GGUF_STRING);
    gb_u64(&b, 1ull << 62);
    gb_zeros(&b, 8);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "'k'");
    const uint32_t elem[] = {SMOE_GGUF_UINT64, SMOE_GGUF_UINT8, SMOE_GGUF_STRING, SMOE_GGUF_ARRAY};
    for (size_t k = 0; k < 4; k++) {
        gb_header(&b, 3, 0, 1);
        gb_str(&b, "k");
        gb_u32(&b, SMOE_GGUF_ARRAY);
        gb_u32(&b, elem[k]);
        gb_u64(&b, UINT64_MAX / 4);
        gb_zeros(&b, 64);
        EXPECT(b, SMOE_ERR_CORRUPT_FILE, "exceeds");
    }
    /* string array whose last string runs off the end */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k");
    gb_u32(&b, SMOE_GGUF_ARRAY);
    gb_u32(&b, SMOE_GGUF_STRING);
    gb_u64(&b, 2);
    gb_str(&b, "ok");
    gb_u64(&b, 100);
    gb_zeros(&b, 10);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "string length 100");
    /* bools must be 0 or 1 */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k");
    gb_u32(&b, SMOE_GGUF_BOOL);
    gb_put(&b, "\2", 1);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "bool value 2");
    /* duplicate keys */
    gb_header(&b, 3, 0, 2);
    gb_kv_u32(&b, "llama.block_count", 1);
    gb_kv_u32(&b, "llama.block_count", 2);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "duplicate key 'llama.block_count'");
    /* nested arrays: accepted (kept opaque) up to the depth limit */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "nested");
    gb_u32(&b, SMOE_GGUF_ARRAY);
    gb_u32(&b, SMOE_GGUF_ARRAY);
    gb_u64(&b, 2);
    for (int k = 0; k < 2; k++) {
        gb_u32(&b, SMOE_GGUF_STRING);
        gb_u64(&b, 1);
        gb_str(&b, "s");
    }
    {
        smoe_gguf *g = NULL;
        assert_int_equal(smoe_gguf_open_memory(b.p, b.n, &g), SMOE_OK);
        assert_int_equal(smoe_gguf_arr_type(g, 0), SMOE_GGUF_ARRAY);
        assert_int_equal(smoe_gguf_arr_n(g, 0), 2);
        assert_null(smoe_gguf_arr_data(g, 0));
        uint64_t raw_size;
        assert_non_null(smoe_gguf_arr_raw(g, 0, &raw_size));
        assert_int_equal(raw_size, 2 * (4 + 8 + 8 + 1));
        smoe_gguf_close(g);
        free(b.p);
        b = (gb){0};
    }
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "deep");
    gb_u32(&b, SMOE_GGUF_ARRAY);
    for (int k = 0; k < 40; k++) {
        gb_u32(&b, SMOE_GGUF_ARRAY);
        gb_u64(&b, 1);
    }
    gb_u32(&b, SMOE_GGUF_UINT8);
    gb_u64(&b, 0);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "nested deeper");
    /* general.alignment: u32, non-zero power of two */
    const uint32_t bad_align[] = {0, 3, 48};
    for (size_t k = 0; k < 3; k++) {
        gb_header(&b, 3, 0, 1);
        gb_kv_u32(&b, "general.alignment", bad_align[k]);
        EXPECT(b, SMOE_ERR_CORRUPT_FILE, "general.alignment");
    }
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "general.alignment");
    gb_u32(&b, SMOE_GGUF_UINT64);
    gb_u64(&b, 32);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "must be u32");
}

/* One tensor [ne] of `type` at `off`, with `data` bytes of data; returns the builder. */
static gb one_tensor(uint32_t n_dims, const int64_t *ne, uint32_t type, uint64_t off, size_t data) {
    gb b = {0};
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "blk.0.attn_q.weight", n_dims, ne, type, off);
    gb_pad(&b, 32);
    gb_zeros(&b, data);
    return b;
}

static void test_hostile_tensors(void **state) {
    (void)state;
    const int64_t ne2[2] = {64, 2}, neg[2] = {64, -2}, big[4] = {1ll << 40, 1ll << 40, 1, 1};
    const int64_t bytes_ovf[4] = {1ll << 32, 1ll << 20, 1ll << 12, 1}; /* 2^64 f32 bytes, 2^62 elements */
    const int64_t row33[1] = {33}, zero[2] = {0, 7};
    gb            b;
    b = one_tensor(2, ne2, SMOE_TYPE_F32, 0, 512);
    EXPECT(b, SMOE_OK, NULL);
    b = one_tensor(2, zero, SMOE_TYPE_F32, 0, 0); /* 0 elements: allowed, no data needed */
    EXPECT(b, SMOE_OK, NULL);
    b = one_tensor(2, ne2, SMOE_TYPE_F32, 0, 511);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "'blk.0.attn_q.weight' (#0): data [");
    b = one_tensor(2, ne2, SMOE_TYPE_F32, 0, 511);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "past end of file");
    b = one_tensor(0, ne2, SMOE_TYPE_F32, 0, 512);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "0 dimensions");
    const int64_t five[5] = {8, 1, 1, 1, 1};
    b = one_tensor(5, five, SMOE_TYPE_F32, 0, 512);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "5 dimensions");
    b = one_tensor(2, neg, SMOE_TYPE_F32, 0, 512);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "negative");
    b = one_tensor(4, big, SMOE_TYPE_F32, 0, 512);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "overflow");
    b = one_tensor(3, bytes_ovf, SMOE_TYPE_F32, 0, 512);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "overflow");
    b = one_tensor(1, row33, SMOE_TYPE_Q4_0, 0, 512);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "block size 32");
    b = one_tensor(2, ne2, 4, 0, 512); /* removed Q4_2 */
    EXPECT(b, SMOE_ERR_UNSUPPORTED, "type id 4");
    b = one_tensor(2, ne2, 1000, 0, 512);
    EXPECT(b, SMOE_ERR_UNSUPPORTED, "type id 1000");
    b = one_tensor(2, ne2, SMOE_TYPE_F32, 8, 1024);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "not a multiple of the alignment 32");
    b = one_tensor(2, ne2, SMOE_TYPE_F32, UINT64_MAX - 31, 1024);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "overflow");
    b = one_tensor(2, ne2, SMOE_TYPE_F32, 1ull << 40, 1024);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "past end of file");

    /* two tensors: overlap, duplicate names, NUL in a name */
    const int64_t n128[1] = {128}, n8[1] = {8};
    b = (gb){0};
    gb_header(&b, 3, 3, 0);
    gb_tensor(&b, "a", 1, n128, SMOE_TYPE_F32, 0);   /* [0, 512) */
    gb_tensor(&b, "b", 1, n8, SMOE_TYPE_F32, 512);   /* [512, 544): touching is fine */
    gb_tensor(&b, "c", 1, n8, SMOE_TYPE_F32, 480);   /* [480, 512) inside a */
    gb_pad(&b, 32);
    gb_zeros(&b, 1024);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "overlaps tensor 'a'");
    gb_header(&b, 3, 2, 0);
    gb_tensor(&b, "a", 1, n8, SMOE_TYPE_F32, 0);
    gb_tensor(&b, "b", 1, n8, SMOE_TYPE_F32, 32);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    EXPECT(b, SMOE_OK, NULL);
    gb_header(&b, 3, 2, 0);
    gb_tensor(&b, "a", 1, n8, SMOE_TYPE_F32, 0);
    gb_tensor(&b, "a", 1, n8, SMOE_TYPE_F32, 32);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "duplicate tensor name 'a'");
    gb_header(&b, 3, 1, 0);
    gb_u64(&b, 3);
    gb_put(&b, "a\0b", 3);
    gb_u32(&b, 1);
    gb_u64(&b, 8);
    gb_u32(&b, SMOE_TYPE_F32);
    gb_u64(&b, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "NUL");
    /* custom alignment: offsets must follow it */
    gb_header(&b, 3, 1, 1);
    gb_kv_u32(&b, "general.alignment", 64);
    gb_tensor(&b, "a", 1, n8, SMOE_TYPE_F32, 32);
    gb_pad(&b, 64);
    gb_zeros(&b, 128);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "alignment 64");
    /* data section past the end (tensor infos end right at EOF) */
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "a", 1, n8, SMOE_TYPE_F32, 0);
    EXPECT(b, SMOE_ERR_CORRUPT_FILE, "data section");
}

/* Every prefix of a valid file fails cleanly, until the last tensor's bytes are complete. */
static void test_truncation(void **state) {
    (void)state;
    const char *path = tmp_path("trunc.gguf");
    write_test_file(path, 0, 64);
    size_t   n;
    uint8_t *full = read_all(path, &n);
    smoe_gguf *g  = NULL;
    assert_int_equal(smoe_gguf_open_memory(full, n, &g), SMOE_OK);
    const smoe_gguf_tensor_info *last = smoe_gguf_tensor(g, smoe_gguf_n_tensors(g) - 1);
    size_t need = (size_t)(smoe_gguf_data_offset(g) + last->offset + last->size);
    smoe_gguf_close(g);
    for (size_t cut = 0; cut < n; cut++) {
        /* a fresh exact-size copy so ASan sees any read past the end */
        uint8_t *p = malloc(cut ? cut : 1);
        memcpy(p, full, cut);
        g              = NULL;
        smoe_status st = smoe_gguf_open_memory(p, cut, &g);
        if (cut < need) {
            if (st != SMOE_ERR_CORRUPT_FILE) fail_msg("cut at %zu of %zu: status %d", cut, n, st);
            if (!smoe_last_error()[0]) fail_msg("cut at %zu: empty message", cut);
            assert_null(g);
        } else {
            assert_int_equal(st, SMOE_OK);
        }
        smoe_gguf_close(g);
        free(p);
    }
    free(full);
}

/* Each byte of the header region flipped: no crash, either OK or a status with a message. */
static void test_bit_flips(void **state) {
    (void)state;
    const char *path = tmp_path("flip.gguf");
    write_test_file(path, 0, 64);
    size_t   n;
    uint8_t *full = read_all(path, &n);
    smoe_gguf *g  = NULL;
    assert_int_equal(smoe_gguf_open_memory(full, n, &g), SMOE_OK);
    size_t hdr = (size_t)smoe_gguf_data_offset(g);
    smoe_gguf_close(g);
    uint8_t *p = malloc(n);
    for (size_t i = 0; i < hdr; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(p, full, n);
            p[i] ^= (uint8_t)(1u << bit);
            g              = NULL;
            smoe_status st = smoe_gguf_open_memory(p, n, &g);
            if (st != SMOE_OK && !smoe_last_error()[0]) fail_msg("flip at %zu: empty message", i);
            if (st == SMOE_OK) {
                for (int64_t k = 0; k < smoe_gguf_n_kv(g); k++) (void)smoe_gguf_key(g, k);
            }
            smoe_gguf_close(g);
        }
    }
    free(p);
    free(full);
}

static void test_open_errors(void **state) {
    (void)state;
    smoe_gguf *g = NULL;
    assert_int_equal(smoe_gguf_open(tmp_path("missing.gguf"), &g), SMOE_ERR_IO);
    assert_null(g);
    assert_non_null(strstr(smoe_last_error(), "missing.gguf"));
    assert_int_equal(smoe_gguf_open(tmp_dir, &g), SMOE_ERR_IO);
    FILE *f = fopen(tmp_path("empty.gguf"), "wb");
    fclose(f);
    assert_int_equal(smoe_gguf_open(tmp_path("empty.gguf"), &g), SMOE_ERR_CORRUPT_FILE);
    /* the file name prefixes parse errors */
    f = fopen(tmp_path("v1.gguf"), "wb");
    fwrite("GGUF\1\0\0\0", 1, 8, f);
    fwrite("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 1, 16, f);
    fclose(f);
    assert_int_equal(smoe_gguf_open(tmp_path("v1.gguf"), &g), SMOE_ERR_UNSUPPORTED);
    assert_non_null(strstr(smoe_last_error(), "v1.gguf: GGUF version 1"));
    assert_int_equal(smoe_gguf_open(NULL, &g), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_gguf_open_memory(NULL, 0, &g), SMOE_ERR_CORRUPT_FILE);
    smoe_gguf_close(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),       cmocka_unit_test(test_copy_kv),
        cmocka_unit_test(test_getters),         cmocka_unit_test(test_public_api),
        cmocka_unit_test(test_writer_abort_and_errors), cmocka_unit_test(test_hostile_header),
        cmocka_unit_test(test_hostile_kv),      cmocka_unit_test(test_hostile_tensors),
        cmocka_unit_test(test_truncation),      cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
