/*
 * gguf-dump.c - test helper for tests/python/test_gguf_roundtrip.py (internal API).
 *
 *   gguf-dump dump FILE.gguf        prints the file as JSON (below) on stdout; exit 1 + message if it fails to open
 *   gguf-dump write SPEC.json OUT   writes OUT with our writer from a spec in the same JSON shape
 *
 * JSON shape (exact, so Python can compare bit for bit):
 *   {"version": 3, "alignment": 32, "data_offset": N,
 *    "kv": [{"key": K, "type": "u32", "value": V}, {"key": K, "type": "array", "elem_type": "f32", "value": [V...]}],
 *    "tensors": [{"name": S, "type": id, "shape": [ne0, ...], "offset": N, "size": N, "data": "hex"}]}
 * Values: integers as decimal strings (u64 does not fit a JSON integer), f32/f64 as the decimal string of their IEEE
 * bit pattern, bools as JSON booleans, strings as the hex of their bytes (they may hold any bytes); nested arrays
 * as {"raw": "hex", "n": N}. A spec needs kv (key, type, value, elem_type) and tensors (name, type, shape, data);
 * "general.alignment" goes in kv like any key.
 */
#include "core/gguf.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *hex(const void *p, uint64_t n) {
    static const char digits[] = "0123456789abcdef";
    char             *s        = malloc((size_t)n * 2 + 1);
    const uint8_t    *b        = p;
    for (uint64_t i = 0; i < n; i++) {
        s[2 * i]     = digits[b[i] >> 4];
        s[2 * i + 1] = digits[b[i] & 15];
    }
    s[2 * n] = '\0';
    json_t *j = json_string(s);
    free(s);
    return j;
}

static int unhex(const char *s, uint8_t **out, size_t *n) {
    size_t len = strlen(s);
    if (len % 2) return -1;
    *n   = len / 2;
    *out = malloc(*n ? *n : 1);
    for (size_t i = 0; i < *n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
        (*out)[i] = (uint8_t)v;
    }
    return 0;
}

/* One numeric/bool element at p (unaligned) as JSON. */
static json_t *scalar_json(smoe_gguf_value_type t, const uint8_t *p) {
    char buf[32];
    switch (t) {
    case SMOE_GGUF_BOOL: return json_boolean(p[0]);
    case SMOE_GGUF_UINT8: snprintf(buf, sizeof(buf), "%u", p[0]); break;
    case SMOE_GGUF_INT8: snprintf(buf, sizeof(buf), "%d", (int8_t)p[0]); break;
    case SMOE_GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); snprintf(buf, sizeof(buf), "%u", v); break; }
    case SMOE_GGUF_INT16: { int16_t v; memcpy(&v, p, 2); snprintf(buf, sizeof(buf), "%d", v); break; }
    case SMOE_GGUF_UINT32:
    case SMOE_GGUF_FLOAT32: { uint32_t v; memcpy(&v, p, 4); snprintf(buf, sizeof(buf), "%" PRIu32, v); break; }
    case SMOE_GGUF_INT32: { int32_t v; memcpy(&v, p, 4); snprintf(buf, sizeof(buf), "%" PRId32, v); break; }
    case SMOE_GGUF_UINT64:
    case SMOE_GGUF_FLOAT64: { uint64_t v; memcpy(&v, p, 8); snprintf(buf, sizeof(buf), "%" PRIu64, v); break; }
    case SMOE_GGUF_INT64: { int64_t v; memcpy(&v, p, 8); snprintf(buf, sizeof(buf), "%" PRId64, v); break; }
    default: return json_null();
    }
    return json_string(buf);
}

static int dump(const char *path) {
    smoe_gguf *g = NULL;
    if (smoe_gguf_open(path, &g) != SMOE_OK) {
        fprintf(stderr, "%s\n", smoe_last_error());
        return 1;
    }
    json_t *root = json_object(), *kvs = json_array(), *ts = json_array();
    json_object_set_new(root, "version", json_integer(smoe_gguf_version(g)));
    json_object_set_new(root, "alignment", json_integer((json_int_t)smoe_gguf_alignment(g)));
    json_object_set_new(root, "data_offset", json_integer((json_int_t)smoe_gguf_data_offset(g)));
    for (int64_t i = 0; i < smoe_gguf_n_kv(g); i++) {
        json_t              *kv = json_object();
        smoe_gguf_value_type t  = smoe_gguf_kv_type(g, i);
        json_object_set_new(kv, "key", json_string(smoe_gguf_key(g, i)));
        json_object_set_new(kv, "type", json_string(smoe_gguf_value_type_name(t)));
        if (t == SMOE_GGUF_STRING) {
            uint64_t    n;
            const char *s = smoe_gguf_str(g, i, &n);
            json_object_set_new(kv, "value", hex(s, n));
        } else if (t == SMOE_GGUF_ARRAY) {
            smoe_gguf_value_type at = smoe_gguf_arr_type(g, i);
            uint64_t             n  = smoe_gguf_arr_n(g, i);
            json_object_set_new(kv, "elem_type", json_string(smoe_gguf_value_type_name(at)));
            if (at == SMOE_GGUF_ARRAY) {
                uint64_t    size;
                const void *raw = smoe_gguf_arr_raw(g, i, &size);
                json_t     *v   = json_object();
                json_object_set_new(v, "raw", hex(raw, size));
                json_object_set_new(v, "n", json_integer((json_int_t)n));
                json_object_set_new(kv, "value", v);
            } else {
                json_t *arr = json_array();
                for (uint64_t j = 0; j < n; j++) {
                    if (at == SMOE_GGUF_STRING) {
                        uint64_t    len;
                        const char *s = smoe_gguf_arr_str(g, i, j, &len);
                        json_array_append_new(arr, hex(s, len));
                    } else {
                        const uint8_t *d = smoe_gguf_arr_data(g, i);
                        json_array_append_new(arr, scalar_json(at, d + j * smoe_gguf_value_type_size(at)));
                    }
                }
                json_object_set_new(kv, "value", arr);
            }
        } else {
            json_object_set_new(kv, "value", scalar_json(t, smoe_gguf_val(g, i)));
        }
        json_array_append_new(kvs, kv);
    }
    for (int64_t i = 0; i < smoe_gguf_n_tensors(g); i++) {
        const smoe_gguf_tensor_info *ti = smoe_gguf_tensor(g, i);
        json_t                      *t = json_object(), *shape = json_array();
        json_object_set_new(t, "name", json_string(ti->name));
        json_object_set_new(t, "type", json_integer(ti->type));
        for (uint32_t d = 0; d < ti->n_dims; d++) json_array_append_new(shape, json_integer(ti->ne[d]));
        json_object_set_new(t, "shape", shape);
        json_object_set_new(t, "offset", json_integer((json_int_t)ti->offset));
        json_object_set_new(t, "size", json_integer((json_int_t)ti->size));
        json_object_set_new(t, "data", hex(smoe_gguf_tensor_data(g, i), ti->size));
        json_array_append_new(ts, t);
    }
    json_object_set_new(root, "kv", kvs);
    json_object_set_new(root, "tensors", ts);
    json_dumpf(root, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(root);
    smoe_gguf_close(g);
    return 0;
}

static int type_from_name(const char *s) {
    for (int t = 0; t <= SMOE_GGUF_FLOAT64; t++) {
        if (!strcmp(s, smoe_gguf_value_type_name((smoe_gguf_value_type)t))) return t;
    }
    return -1;
}

/* Parses a JSON scalar (see the header) of type t into out (8 bytes). */
static int scalar_from_json(smoe_gguf_value_type t, json_t *v, uint8_t out[8]) {
    if (t == SMOE_GGUF_BOOL) {
        if (!json_is_boolean(v)) return -1;
        out[0] = json_is_true(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s) return -1;
    bool     is_signed = t == SMOE_GGUF_INT8 || t == SMOE_GGUF_INT16 || t == SMOE_GGUF_INT32 || t == SMOE_GGUF_INT64;
    uint64_t u         = is_signed ? (uint64_t)strtoll(s, NULL, 10) : strtoull(s, NULL, 10);
    memcpy(out, &u, 8); /* little-endian: the low bytes are the narrower type's value */
    return 0;
}

static int write_spec(const char *spec_path, const char *out) {
    json_error_t err;
    json_t      *root = json_load_file(spec_path, 0, &err);
    if (!root) {
        fprintf(stderr, "%s:%d: %s\n", spec_path, err.line, err.text);
        return 1;
    }
    smoe_gguf_writer *w  = NULL;
    smoe_status       st = smoe_gguf_writer_open(out, &w);
    size_t            i;
    json_t           *item;
    json_array_foreach(json_object_get(root, "kv"), i, item) {
        if (st != SMOE_OK) break;
        const char *key  = json_string_value(json_object_get(item, "key"));
        int         t    = type_from_name(json_string_value(json_object_get(item, "type")));
        json_t     *v    = json_object_get(item, "value");
        if (t == SMOE_GGUF_STRING) {
            uint8_t *b;
            size_t   n;
            if (unhex(json_string_value(v), &b, &n)) return 2;
            st = smoe_gguf_writer_set_str_n(w, key, (const char *)b, n);
            free(b);
        } else if (t == SMOE_GGUF_ARRAY) {
            int    at = type_from_name(json_string_value(json_object_get(item, "elem_type")));
            size_t n  = json_array_size(v);
            if (at == SMOE_GGUF_STRING) {
                char    **s    = calloc(n + 1, sizeof(*s));
                uint64_t *lens = calloc(n + 1, sizeof(*lens));
                for (size_t j = 0; j < n; j++) {
                    size_t len;
                    if (unhex(json_string_value(json_array_get(v, j)), (uint8_t **)&s[j], &len)) return 2;
                    lens[j] = len;
                }
                st = smoe_gguf_writer_set_arr_str_n(w, key, (const char *const *)s, lens, n);
                for (size_t j = 0; j < n; j++) free(s[j]);
                free(s);
                free(lens);
            } else {
                size_t   es = smoe_gguf_value_type_size((smoe_gguf_value_type)at);
                uint8_t *d  = malloc(n * es + 1);
                for (size_t j = 0; j < n; j++) {
                    uint8_t tmp[8] = {0};
                    if (scalar_from_json((smoe_gguf_value_type)at, json_array_get(v, j), tmp)) return 2;
                    memcpy(d + j * es, tmp, es);
                }
                st = smoe_gguf_writer_set_arr(w, key, (smoe_gguf_value_type)at, d, n);
                free(d);
            }
        } else if (t >= 0) {
            uint8_t tmp[8] = {0};
            if (scalar_from_json((smoe_gguf_value_type)t, v, tmp)) return 2;
            st = smoe_gguf_writer_set_scalar(w, key, (smoe_gguf_value_type)t, tmp);
        } else {
            fprintf(stderr, "bad type for key %s\n", key);
            return 2;
        }
    }
    json_t *ts = json_object_get(root, "tensors");
    json_array_foreach(ts, i, item) {
        if (st != SMOE_OK) break;
        json_t *shape = json_object_get(item, "shape");
        int64_t ne[4] = {1, 1, 1, 1};
        for (size_t d = 0; d < json_array_size(shape) && d < 4; d++) ne[d] = json_integer_value(json_array_get(shape, d));
        st = smoe_gguf_writer_add_tensor(w, json_string_value(json_object_get(item, "name")),
                                         (smoe_type)json_integer_value(json_object_get(item, "type")),
                                         (uint32_t)json_array_size(shape), ne);
    }
    if (st == SMOE_OK) st = smoe_gguf_writer_begin_data(w);
    for (int64_t t = 0; st == SMOE_OK && t < (int64_t)json_array_size(ts); t++) {
        json_t  *d = json_object_get(json_array_get(ts, (size_t)t), "data");
        uint8_t *b;
        size_t   n;
        if (unhex(json_string_value(d), &b, &n)) return 2;
        /* in two pieces, to exercise the streaming */
        st = smoe_gguf_writer_write_data(w, b, n / 2);
        if (st == SMOE_OK) st = smoe_gguf_writer_write_data(w, b + n / 2, n - n / 2);
        free(b);
    }
    json_decref(root);
    if (st == SMOE_OK) {
        st = smoe_gguf_writer_finish(w);
    } else {
        smoe_gguf_writer_abort(w);
    }
    if (st != SMOE_OK) {
        fprintf(stderr, "%s: %s\n", smoe_status_string(st), smoe_last_error());
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "dump")) return dump(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "write")) return write_spec(argv[2], argv[3]);
    fprintf(stderr, "usage: gguf-dump dump FILE.gguf | gguf-dump write SPEC.json OUT.gguf\n");
    return 2;
}
