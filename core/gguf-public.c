/*
 * gguf-public.c - the public, read-only GGUF inspection API (smoe_gguf_file_*): a thin wrapper over the internal
 * reader, plus the text rendering of metadata values that `smoe info` prints.
 */
#include "gguf.h"
#include "placement.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct smoe_gguf_file {
    smoe_gguf *g;
};

SMOE_API smoe_status smoe_gguf_file_open(const char *path, smoe_gguf_file **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "smoe_gguf_file_open: out is NULL");
    *out              = NULL;
    smoe_gguf_file *f = calloc(1, sizeof(*f));
    SMOE_RETURN_IF(!f, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    smoe_status st = smoe_gguf_open(path, &f->g);
    if (st != SMOE_OK) {
        free(f);
        return st;
    }
    *out = f;
    return SMOE_OK;
}

SMOE_API void smoe_gguf_file_close(smoe_gguf_file *file) {
    if (!file) return;
    smoe_gguf_close(file->g);
    free(file);
}

static const smoe_gguf *G(const smoe_gguf_file *f) { return f ? f->g : NULL; }

SMOE_API uint32_t smoe_gguf_file_version(const smoe_gguf_file *file) { return smoe_gguf_version(G(file)); }
SMOE_API uint64_t smoe_gguf_file_alignment(const smoe_gguf_file *file) { return smoe_gguf_alignment(G(file)); }
SMOE_API uint64_t smoe_gguf_file_data_offset(const smoe_gguf_file *file) { return smoe_gguf_data_offset(G(file)); }
SMOE_API int64_t  smoe_gguf_file_n_kv(const smoe_gguf_file *file) { return smoe_gguf_n_kv(G(file)); }
SMOE_API const char *smoe_gguf_file_kv_key(const smoe_gguf_file *file, int64_t i) { return smoe_gguf_key(G(file), i); }
SMOE_API smoe_gguf_value_type smoe_gguf_file_kv_type(const smoe_gguf_file *file, int64_t i) {
    return smoe_gguf_kv_type(G(file), i);
}
SMOE_API smoe_gguf_value_type smoe_gguf_file_kv_array_type(const smoe_gguf_file *file, int64_t i) {
    return smoe_gguf_arr_type(G(file), i);
}
SMOE_API uint64_t smoe_gguf_file_kv_array_n(const smoe_gguf_file *file, int64_t i) { return smoe_gguf_arr_n(G(file), i); }
SMOE_API int64_t smoe_gguf_file_n_tensors(const smoe_gguf_file *file) { return smoe_gguf_n_tensors(G(file)); }

SMOE_API const char *smoe_gguf_file_tensor_name(const smoe_gguf_file *file, int64_t i) {
    const smoe_gguf_tensor_info *t = smoe_gguf_tensor(G(file), i);
    return t ? t->name : NULL;
}
SMOE_API const char *smoe_gguf_file_tensor_type_name(const smoe_gguf_file *file, int64_t i) {
    const smoe_gguf_tensor_info *t = smoe_gguf_tensor(G(file), i);
    return t ? smoe_type_name(t->type) : NULL;
}
SMOE_API uint32_t smoe_gguf_file_tensor_n_dims(const smoe_gguf_file *file, int64_t i) {
    const smoe_gguf_tensor_info *t = smoe_gguf_tensor(G(file), i);
    return t ? t->n_dims : 0;
}
SMOE_API int64_t smoe_gguf_file_tensor_ne(const smoe_gguf_file *file, int64_t i, uint32_t dim) {
    const smoe_gguf_tensor_info *t = smoe_gguf_tensor(G(file), i);
    return t && dim < SMOE_GGUF_MAX_DIMS ? t->ne[dim] : 0;
}
SMOE_API uint64_t smoe_gguf_file_tensor_size(const smoe_gguf_file *file, int64_t i) {
    const smoe_gguf_tensor_info *t = smoe_gguf_tensor(G(file), i);
    return t ? t->size : 0;
}
SMOE_API uint64_t smoe_gguf_file_tensor_offset(const smoe_gguf_file *file, int64_t i) {
    const smoe_gguf_tensor_info *t = smoe_gguf_tensor(G(file), i);
    return t ? t->offset : 0;
}

/* ---- rendering values as text ---- */

typedef struct sbuf {
    char  *p;
    size_t size, len; /* len counts everything, also what did not fit */
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->len < b->size) {
        size_t room = b->size - b->len;
        memcpy(b->p + b->len, s, n < room ? n : room);
    }
    b->len += n;
}

static void putf(sbuf *b, const char *fmt, ...) SMOE_PRINTF(2, 3);
static void putf(sbuf *b, const char *fmt, ...) {
    char    tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0) put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A JSON string literal (bytes >= 0x80 are passed through: GGUF strings are UTF-8). */
static void put_str(sbuf *b, const char *s, uint64_t n) {
    put(b, "\"", 1);
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': put(b, "\\\"", 2); break;
        case '\\': put(b, "\\\\", 2); break;
        case '\n': put(b, "\\n", 2); break;
        case '\r': put(b, "\\r", 2); break;
        case '\t': put(b, "\\t", 2); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                putf(b, "\\u%04x", c);
            } else {
                put(b, (const char *)&s[i], 1);
            }
        }
    }
    put(b, "\"", 1);
}

static void put_double(sbuf *b, double v, int digits) {
    if (isnan(v)) {
        put(b, "nan", 3);
    } else if (isinf(v)) {
        putf(b, "%sinf", v < 0 ? "-" : "");
    } else {
        putf(b, "%.*g", digits, v);
    }
}

/* One numeric/bool element p of type t (p may be unaligned). */
static void put_scalar(sbuf *b, smoe_gguf_value_type t, const uint8_t *p) {
    switch (t) {
    case SMOE_GGUF_UINT8: putf(b, "%u", p[0]); break;
    case SMOE_GGUF_INT8: putf(b, "%d", (int8_t)p[0]); break;
    case SMOE_GGUF_BOOL: put(b, p[0] ? "true" : "false", p[0] ? 4 : 5); break;
    case SMOE_GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); putf(b, "%u", v); break; }
    case SMOE_GGUF_INT16: { int16_t v; memcpy(&v, p, 2); putf(b, "%d", v); break; }
    case SMOE_GGUF_UINT32: { uint32_t v; memcpy(&v, p, 4); putf(b, "%" PRIu32, v); break; }
    case SMOE_GGUF_INT32: { int32_t v; memcpy(&v, p, 4); putf(b, "%" PRId32, v); break; }
    case SMOE_GGUF_UINT64: { uint64_t v; memcpy(&v, p, 8); putf(b, "%" PRIu64, v); break; }
    case SMOE_GGUF_INT64: { int64_t v; memcpy(&v, p, 8); putf(b, "%" PRId64, v); break; }
    case SMOE_GGUF_FLOAT32: { float v; memcpy(&v, p, 4); put_double(b, v, 9); break; }
    case SMOE_GGUF_FLOAT64: { double v; memcpy(&v, p, 8); put_double(b, v, 17); break; }
    default: put(b, "?", 1);
    }
}

size_t smoe_gguf_kv_format(const smoe_gguf *g, int64_t i, char *buf, size_t size, size_t max_items) {
    sbuf b = {buf, buf ? size : 0, 0};
    if (!smoe_gguf_key(g, i)) {
        if (buf && size) buf[0] = '\0';
        return 0;
    }
    smoe_gguf_value_type t = smoe_gguf_kv_type(g, i);
    if (t == SMOE_GGUF_STRING) {
        uint64_t    n;
        const char *s = smoe_gguf_str(g, i, &n);
        put_str(&b, s, n);
    } else if (t == SMOE_GGUF_ARRAY) {
        smoe_gguf_value_type at = smoe_gguf_arr_type(g, i);
        uint64_t             n  = smoe_gguf_arr_n(g, i);
        uint64_t             shown = n < max_items ? n : max_items;
        if (n > shown) putf(&b, "[%" PRIu64 " %s%s: ", n, smoe_gguf_value_type_name(at), (at == SMOE_GGUF_ARRAY || at == SMOE_GGUF_STRING) ? "s" : "");
        else put(&b, "[", 1);
        if (at == SMOE_GGUF_ARRAY) {
            shown = 0; /* nested arrays are kept opaque */
            put(&b, "...", 3);
        }
        for (uint64_t j = 0; j < shown; j++) {
            if (j) put(&b, ", ", 2);
            if (at == SMOE_GGUF_STRING) {
                uint64_t    len;
                const char *s = smoe_gguf_arr_str(g, i, j, &len);
                put_str(&b, s, len);
            } else {
                const uint8_t *d = smoe_gguf_arr_data(g, i);
                put_scalar(&b, at, d + j * smoe_gguf_value_type_size(at));
            }
        }
        if (n > shown && shown) put(&b, ", ...", 5);
        else if (n > shown && !shown && at != SMOE_GGUF_ARRAY) put(&b, "...", 3);
        put(&b, "]", 1);
    } else {
        put_scalar(&b, t, smoe_gguf_val(g, i));
    }
    if (buf && size) buf[b.len < size ? b.len : size - 1] = '\0';
    return b.len;
}

SMOE_API size_t smoe_gguf_file_kv_format(const smoe_gguf_file *file, int64_t i, char *buf, size_t size,
                                         size_t max_items) {
    return smoe_gguf_kv_format(G(file), i, buf, size, max_items);
}

/* ---- placement plan (the same decision as the model loader's, see smoe_model_params.gpu_mem) ---- */

SMOE_API smoe_status smoe_gguf_file_plan_placement(const smoe_gguf_file *file, uint64_t budget, uint64_t alignment,
                                                   bool *on_gpu, smoe_placement *out) {
    SMOE_RETURN_IF(!file || !out, SMOE_ERR_INVALID_ARGUMENT, "smoe_gguf_file_plan_placement: NULL argument");
    SMOE_RETURN_IF(out->size != sizeof(*out), SMOE_ERR_INVALID_ARGUMENT,
                   "smoe_gguf_file_plan_placement: size %u, expected %zu (set out->size = sizeof(smoe_placement))",
                   out->size, sizeof(*out));
    if (alignment == 0) alignment = 256; /* smoe_place_plan rejects one that is not a power of two */
    const int64_t n = smoe_gguf_n_tensors(file->g);
    smoe_place_tensor *pt = malloc((size_t)(n > 0 ? n : 1) * sizeof(*pt));
    bool              *on = malloc((size_t)(n > 0 ? n : 1) * sizeof(*on));
    smoe_status        st = SMOE_OK;
    SMOE_GOTO_IF(!pt || !on, st, done, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        const smoe_gguf_tensor_info *ti = smoe_gguf_tensor(file->g, i);
        pt[i] = (smoe_place_tensor){ti->name, ti->size};
    }
    smoe_place_stats ps;
    SMOE_GOTO_TRY(st, done, smoe_place_plan(pt, (size_t)n, budget, alignment, on, &ps));
    smoe_place_summary(&ps, budget, ps.n_layers, out);
    if (!out->split)
        for (int64_t i = 0; i < n; i++) on[i] = true; /* as the loader: token_embd goes along when all fits */
    if (on_gpu) memcpy(on_gpu, on, (size_t)n * sizeof(*on));
done:
    free(pt);
    free(on);
    return st;
}
