/*
 * gguf-writer.c - the streaming GGUF v3 writer.
 *
 * Metadata and tensor infos are collected in memory (each value already serialized), then begin_data writes the
 * header, the kv pairs and the tensor infos and pads to the alignment; tensor bytes are streamed through a buffer
 * and each tensor is padded to the alignment once its byte count is complete (as llama.cpp and gguf-py do, so the
 * file ends padded too). Everything goes to PATH.tmp.XXXXXX in the same directory, which finish fsyncs and renames
 * over PATH; any failure (or abort) unlinks it, so PATH only ever holds a complete file.
 */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WRITER_BUF ((size_t)1 << 20)

typedef struct wkv {
    char                *key;
    smoe_gguf_value_type type;
    uint8_t             *val; /* the serialized value (without the type id) */
    size_t               val_size;
} wkv;

typedef struct wtensor {
    char     *name;
    smoe_type type;
    uint32_t  n_dims;
    int64_t   ne[SMOE_GGUF_MAX_DIMS];
    uint64_t  size, offset;
} wtensor;

enum { PHASE_META, PHASE_DATA, PHASE_FAILED };

struct smoe_gguf_writer {
    char    *path, *tmp_path;
    int      fd;
    int      phase;
    wkv     *kv;
    size_t   n_kv, cap_kv;
    wtensor *t;
    size_t   n_t, cap_t;
    uint64_t alignment;
    size_t   cur;        /* tensor receiving data */
    uint64_t cur_done;   /* its bytes written so far */
    uint64_t written;    /* bytes written to the file (including the buffer) */
    uint8_t *buf;
    size_t   buf_used;
};

/* Any error: remove the temporary file; after this only abort is valid. */
static void w_fail(smoe_gguf_writer *w) {
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    if (w->tmp_path) unlink(w->tmp_path);
    w->phase = PHASE_FAILED;
}

static smoe_status w_error(smoe_gguf_writer *w, smoe_status st, const char *fmt, ...) SMOE_PRINTF(3, 4);
static smoe_status w_error(smoe_gguf_writer *w, smoe_status st, const char *fmt, ...) {
    char    msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    w_fail(w);
    return smoe_set_error(st, "%s: %s", w->path, msg);
}

static smoe_status w_check(smoe_gguf_writer *w, int phase, const char *fn) {
    SMOE_RETURN_IF(!w, SMOE_ERR_INVALID_ARGUMENT, "%s: writer is NULL", fn);
    if (w->phase == PHASE_FAILED) {
        return smoe_set_error(SMOE_ERR_INVALID_ARGUMENT, "%s: %s: the writer failed earlier (only abort is valid)",
                              w->path, fn);
    }
    if (w->phase != phase) {
        return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "%s: called %s begin_data", fn,
                       phase == PHASE_META ? "after" : "before");
    }
    return SMOE_OK;
}

static smoe_status w_check_key(smoe_gguf_writer *w, const char *key, const char *fn) {
    SMOE_TRY(w_check(w, PHASE_META, fn));
    if (!key || !key[0]) return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "%s: metadata key is empty", fn);
    return SMOE_OK;
}

static smoe_status w_flush(smoe_gguf_writer *w) {
    size_t off = 0;
    while (off < w->buf_used) {
        ssize_t r = write(w->fd, w->buf + off, w->buf_used - off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return w_error(w, SMOE_ERR_IO, "write to %s failed: %s", w->tmp_path, strerror(errno));
        off += (size_t)r;
    }
    w->buf_used = 0;
    return SMOE_OK;
}

static smoe_status w_write(smoe_gguf_writer *w, const void *data, size_t n) {
    const uint8_t *p = data;
    w->written += n;
    while (n) {
        if (w->buf_used == WRITER_BUF) SMOE_TRY(w_flush(w));
        size_t take = WRITER_BUF - w->buf_used;
        if (take > n) take = n;
        memcpy(w->buf + w->buf_used, p, take);
        w->buf_used += take;
        p += take;
        n -= take;
    }
    return SMOE_OK;
}

static smoe_status w_pad(smoe_gguf_writer *w) {
    static const uint8_t zeros[256];
    uint64_t             pad = (w->alignment - w->written % w->alignment) % w->alignment;
    while (pad) {
        size_t take = pad < sizeof(zeros) ? (size_t)pad : sizeof(zeros);
        SMOE_TRY(w_write(w, zeros, take));
        pad -= take;
    }
    return SMOE_OK;
}

smoe_status smoe_gguf_writer_open(const char *path, smoe_gguf_writer **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "smoe_gguf_writer_open: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!path || !path[0], SMOE_ERR_INVALID_ARGUMENT, "smoe_gguf_writer_open: empty path");
    smoe_gguf_writer *w = calloc(1, sizeof(*w));
    if (!w) return smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "%s: out of memory (writer)", path);
    w->fd        = -1;
    w->alignment = SMOE_GGUF_DEFAULT_ALIGNMENT;
    size_t n     = strlen(path);
    w->path      = strdup(path);
    w->tmp_path  = malloc(n + sizeof(".tmp.XXXXXX"));
    w->buf       = malloc(WRITER_BUF);
    if (!w->path || !w->tmp_path || !w->buf) {
        free(w->path);
        free(w->tmp_path);
        free(w->buf);
        free(w);
        return smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "%s: out of memory (writer)", path);
    }
    memcpy(w->tmp_path, path, n);
    memcpy(w->tmp_path + n, ".tmp.XXXXXX", sizeof(".tmp.XXXXXX"));
    w->fd = mkstemp(w->tmp_path);
    if (w->fd < 0) {
        smoe_status st = smoe_set_error(SMOE_ERR_IO, "%s: cannot create temporary file %s: %s", path, w->tmp_path,
                                        strerror(errno));
        free(w->tmp_path);
        w->tmp_path = NULL;
        smoe_gguf_writer_abort(w);
        return st;
    }
    fchmod(w->fd, 0644); /* mkstemp creates 0600; the result is an ordinary data file */
    *out = w;
    return SMOE_OK;
}

/* ---- metadata ---- */

/* Stores key -> (type, serialized value), taking ownership of val (freed on failure). */
static smoe_status w_set(smoe_gguf_writer *w, const char *key, smoe_gguf_value_type type, uint8_t *val,
                         size_t val_size) {
    smoe_status st = w_check(w, PHASE_META, "set metadata");
    if (st == SMOE_OK && (!key || !key[0])) st = w_error(w, SMOE_ERR_INVALID_ARGUMENT, "metadata key is empty");
    if (st != SMOE_OK) {
        free(val);
        return st;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].val);
            w->kv[i].type     = type;
            w->kv[i].val      = val;
            w->kv[i].val_size = val_size;
            return SMOE_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv   *kv  = realloc(w->kv, cap * sizeof(*kv));
        if (!kv) {
            free(val);
            return w_error(w, SMOE_ERR_OUT_OF_MEMORY, "out of memory (metadata)");
        }
        w->kv     = kv;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(val);
        return w_error(w, SMOE_ERR_OUT_OF_MEMORY, "out of memory (metadata)");
    }
    w->kv[w->n_kv++] = (wkv){k, type, val, val_size};
    return SMOE_OK;
}

static uint8_t *w_alloc(smoe_gguf_writer *w, uint64_t size, smoe_status *st) {
    uint8_t *p = size <= SIZE_MAX ? malloc(size ? (size_t)size : 1) : NULL;
    if (!p) *st = w_error(w, SMOE_ERR_OUT_OF_MEMORY, "out of memory (metadata value of %" PRIu64 " bytes)", size);
    return p;
}

smoe_status smoe_gguf_writer_set_scalar(smoe_gguf_writer *w, const char *key, smoe_gguf_value_type type,
                                        const void *v) {
    size_t es = smoe_gguf_value_type_size(type);
    SMOE_TRY(w_check_key(w, key, "set_scalar"));
    if (!es || !v) return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "key '%s': not a scalar type (%d)", key, (int)type);
    if (type == SMOE_GGUF_BOOL && *(const uint8_t *)v > 1) {
        return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "key '%s': bool value %u", key, *(const uint8_t *)v);
    }
    smoe_status st  = SMOE_OK;
    uint8_t    *val = w_alloc(w, es, &st);
    if (!val) return st;
    memcpy(val, v, es);
    return w_set(w, key, type, val, es);
}

smoe_status smoe_gguf_writer_set_u8(smoe_gguf_writer *w, const char *key, uint8_t v) {
    return smoe_gguf_writer_set_scalar(w, key, SMOE_GGUF_UINT8, &v);
}
smoe_status smoe_gguf_writer_set_u32(smoe_gguf_writer *w, const char *key, uint32_t v) {
    return smoe_gguf_writer_set_scalar(w, key, SMOE_GGUF_UINT32, &v);
}
smoe_status smoe_gguf_writer_set_i32(smoe_gguf_writer *w, const char *key, int32_t v) {
    return smoe_gguf_writer_set_scalar(w, key, SMOE_GGUF_INT32, &v);
}
smoe_status smoe_gguf_writer_set_u64(smoe_gguf_writer *w, const char *key, uint64_t v) {
    return smoe_gguf_writer_set_scalar(w, key, SMOE_GGUF_UINT64, &v);
}
smoe_status smoe_gguf_writer_set_f32(smoe_gguf_writer *w, const char *key, float v) {
    return smoe_gguf_writer_set_scalar(w, key, SMOE_GGUF_FLOAT32, &v);
}
smoe_status smoe_gguf_writer_set_bool(smoe_gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return smoe_gguf_writer_set_scalar(w, key, SMOE_GGUF_BOOL, &b);
}

smoe_status smoe_gguf_writer_set_str_n(smoe_gguf_writer *w, const char *key, const char *v, uint64_t n) {
    SMOE_TRY(w_check_key(w, key, "set_str"));
    if (!v && n) return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "key '%s': string is NULL", key);
    smoe_status st = SMOE_OK;
    if (n > UINT64_MAX - 8) return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "key '%s': string too long", key);
    uint8_t *val = w_alloc(w, 8 + n, &st);
    if (!val) return st;
    memcpy(val, &n, 8);
    if (n) memcpy(val + 8, v, (size_t)n);
    return w_set(w, key, SMOE_GGUF_STRING, val, (size_t)(8 + n));
}

smoe_status smoe_gguf_writer_set_str(smoe_gguf_writer *w, const char *key, const char *v) {
    return smoe_gguf_writer_set_str_n(w, key, v, v ? strlen(v) : 0);
}

/* Serializes an array value: u32 element type, u64 count, then `elems` (elems_size bytes, already serialized). */
static smoe_status w_set_array(smoe_gguf_writer *w, const char *key, smoe_gguf_value_type type, uint64_t n,
                               const void *elems, uint64_t elems_size) {
    smoe_status st = SMOE_OK;
    if (elems_size > UINT64_MAX - 12) return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "key '%s': array too large", key);
    uint8_t *val = w_alloc(w, 12 + elems_size, &st);
    if (!val) return st;
    uint32_t t = (uint32_t)type;
    memcpy(val, &t, 4);
    memcpy(val + 4, &n, 8);
    if (elems_size) memcpy(val + 12, elems, (size_t)elems_size);
    return w_set(w, key, SMOE_GGUF_ARRAY, val, (size_t)(12 + elems_size));
}

smoe_status smoe_gguf_writer_set_arr(smoe_gguf_writer *w, const char *key, smoe_gguf_value_type type,
                                     const void *data, uint64_t n) {
    SMOE_TRY(w_check_key(w, key, "set_arr"));
    size_t   es = smoe_gguf_value_type_size(type);
    uint64_t bytes;
    if (!es) return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "key '%s': array element type %d is not numeric", key, (int)type);
    if (smoe_mul_overflow_u64(n, es, &bytes) || (n && !data)) {
        return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "key '%s': bad array (%" PRIu64 " elements)", key, n);
    }
    if (type == SMOE_GGUF_BOOL) {
        for (uint64_t i = 0; i < n; i++) {
            if (((const uint8_t *)data)[i] > 1) {
                return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "key '%s': element %" PRIu64 " is bool value %u", key,
                               i, ((const uint8_t *)data)[i]);
            }
        }
    }
    return w_set_array(w, key, type, n, data, bytes);
}

smoe_status smoe_gguf_writer_set_arr_str_n(smoe_gguf_writer *w, const char *key, const char *const *strs,
                                           const uint64_t *lens, uint64_t n) {
    SMOE_TRY(w_check_key(w, key, "set_arr_str"));
    if (n && !strs) return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "key '%s': strings are NULL", key);
    uint64_t total = 12;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = lens ? lens[i] : (strs[i] ? strlen(strs[i]) : 0);
        if ((!strs[i] && len) || smoe_add_overflow_u64(total, 8, &total) || smoe_add_overflow_u64(total, len, &total))
            return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "key '%s': bad string #%" PRIu64, key, i);
    }
    smoe_status st  = SMOE_OK;
    uint8_t    *val = w_alloc(w, total, &st);
    if (!val) return st;
    uint32_t t = SMOE_GGUF_STRING;
    memcpy(val, &t, 4);
    memcpy(val + 4, &n, 8);
    size_t at = 12;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = lens ? lens[i] : (strs[i] ? strlen(strs[i]) : 0);
        memcpy(val + at, &len, 8);
        if (len) memcpy(val + at + 8, strs[i], (size_t)len);
        at += 8 + (size_t)len;
    }
    return w_set(w, key, SMOE_GGUF_ARRAY, val, (size_t)total);
}

smoe_status smoe_gguf_writer_set_arr_str(smoe_gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    return smoe_gguf_writer_set_arr_str_n(w, key, strs, NULL, n);
}

smoe_status smoe_gguf_writer_copy_kv(smoe_gguf_writer *w, const smoe_gguf *g, int64_t i) {
    SMOE_TRY(w_check(w, PHASE_META, "copy_kv"));
    const char *key = smoe_gguf_key(g, i);
    if (!key) return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "copy_kv: no kv #%" PRId64 " in the source", i);
    smoe_gguf_value_type type = smoe_gguf_kv_type(g, i);
    if (type == SMOE_GGUF_STRING) {
        uint64_t    len;
        const char *s = smoe_gguf_str(g, i, &len);
        return smoe_gguf_writer_set_str_n(w, key, s, len);
    }
    if (type == SMOE_GGUF_ARRAY) {
        /* the file's bytes are already the serialized elements (validated by the reader) */
        uint64_t    raw_size;
        const void *raw = smoe_gguf_arr_raw(g, i, &raw_size);
        return w_set_array(w, key, smoe_gguf_arr_type(g, i), smoe_gguf_arr_n(g, i), raw, raw_size);
    }
    return smoe_gguf_writer_set_scalar(w, key, type, smoe_gguf_val(g, i));
}

/* ---- tensors ---- */

smoe_status smoe_gguf_writer_add_tensor(smoe_gguf_writer *w, const char *name, smoe_type type, uint32_t n_dims,
                                        const int64_t *ne) {
    SMOE_TRY(w_check(w, PHASE_META, "add_tensor"));
    if (!name) return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "add_tensor: name is NULL");
    const smoe_type_traits *tr = smoe_type_get_traits(type);
    if (!tr) return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "tensor '%s': unknown type id %d", name, (int)type);
    if (n_dims < 1 || n_dims > SMOE_GGUF_MAX_DIMS || !ne) {
        return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "tensor '%s': %u dimensions (must be 1..%d)", name, n_dims,
                       SMOE_GGUF_MAX_DIMS);
    }
    wtensor t = {.type = type, .n_dims = n_dims};
    for (uint32_t d = 0; d < SMOE_GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 0) {
            return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "tensor '%s': dimension %u is negative (%" PRId64 ")", name,
                           d, t.ne[d]);
        }
    }
    if (t.ne[0] % tr->block_size != 0) {
        return w_error(w, SMOE_ERR_INVALID_ARGUMENT,
                       "tensor '%s': row length %" PRId64 " is not a multiple of %s's block size %" PRId64, name,
                       t.ne[0], tr->name, tr->block_size);
    }
    uint64_t size = (uint64_t)(t.ne[0] / tr->block_size), nel = 1;
    int      ovf  = smoe_mul_overflow_u64(size, tr->type_size, &size);
    for (uint32_t d = 0; d < SMOE_GGUF_MAX_DIMS; d++) {
        ovf |= smoe_mul_overflow_u64(nel, (uint64_t)t.ne[d], &nel);
        if (d) ovf |= smoe_mul_overflow_u64(size, (uint64_t)t.ne[d], &size);
    }
    if (ovf || nel > (uint64_t)INT64_MAX || size > UINT64_MAX / 2) {
        return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "tensor '%s': size overflows", name);
    }
    t.size = size;
    for (size_t i = 0; i < w->n_t; i++) {
        if (strcmp(w->t[i].name, name) == 0) {
            return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "duplicate tensor name '%s' (tensors #%zu and #%zu)", name,
                           i, w->n_t);
        }
    }
    if (w->n_t == w->cap_t) {
        size_t   cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *nt  = realloc(w->t, cap * sizeof(*nt));
        if (!nt) return w_error(w, SMOE_ERR_OUT_OF_MEMORY, "out of memory (tensor infos)");
        w->t     = nt;
        w->cap_t = cap;
    }
    t.name = strdup(name);
    if (!t.name) return w_error(w, SMOE_ERR_OUT_OF_MEMORY, "out of memory (tensor infos)");
    w->t[w->n_t++] = t;
    return SMOE_OK;
}

/* Skips the tensors already complete (0-byte ones), padding after each. */
static smoe_status advance(smoe_gguf_writer *w) {
    while (w->cur < w->n_t && w->cur_done == w->t[w->cur].size) {
        SMOE_TRY(w_pad(w));
        w->cur++;
        w->cur_done = 0;
    }
    return SMOE_OK;
}

static smoe_status w_write_str(smoe_gguf_writer *w, const char *s) {
    uint64_t n = strlen(s);
    SMOE_TRY(w_write(w, &n, 8));
    return w_write(w, s, (size_t)n);
}

smoe_status smoe_gguf_writer_begin_data(smoe_gguf_writer *w) {
    SMOE_TRY(w_check(w, PHASE_META, "begin_data"));
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        uint32_t a = 0;
        if (w->kv[i].type == SMOE_GGUF_UINT32) memcpy(&a, w->kv[i].val, 4);
        if (a == 0 || (a & (a - 1)) != 0) {
            return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "general.alignment must be a u32 power of two");
        }
        w->alignment = a;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        uint64_t padded = (w->t[i].size + w->alignment - 1) / w->alignment * w->alignment;
        if (smoe_add_overflow_u64(off, padded, &off)) return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "data too large");
    }

    const uint32_t version = 3;
    uint64_t       n_t = w->n_t, n_kv = w->n_kv;
    SMOE_TRY(w_write(w, "GGUF", 4));
    SMOE_TRY(w_write(w, &version, 4));
    SMOE_TRY(w_write(w, &n_t, 8));
    SMOE_TRY(w_write(w, &n_kv, 8));
    for (size_t i = 0; i < w->n_kv; i++) {
        uint32_t type = (uint32_t)w->kv[i].type;
        SMOE_TRY(w_write_str(w, w->kv[i].key));
        SMOE_TRY(w_write(w, &type, 4));
        SMOE_TRY(w_write(w, w->kv[i].val, w->kv[i].val_size));
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t    = &w->t[i];
        uint32_t       type = (uint32_t)t->type;
        SMOE_TRY(w_write_str(w, t->name));
        SMOE_TRY(w_write(w, &t->n_dims, 4));
        SMOE_TRY(w_write(w, t->ne, 8 * (size_t)t->n_dims));
        SMOE_TRY(w_write(w, &type, 4));
        SMOE_TRY(w_write(w, &t->offset, 8));
    }
    SMOE_TRY(w_pad(w));
    w->phase    = PHASE_DATA;
    w->cur      = 0;
    w->cur_done = 0;
    return advance(w);
}

smoe_status smoe_gguf_writer_write_data(smoe_gguf_writer *w, const void *data, size_t n) {
    SMOE_TRY(w_check(w, PHASE_DATA, "write_data"));
    if (n && !data) return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "write_data: data is NULL");
    const uint8_t *p = data;
    while (n) {
        if (w->cur >= w->n_t) {
            return w_error(w, SMOE_ERR_INVALID_ARGUMENT, "write_data: %zu bytes more than the tensors hold", n);
        }
        uint64_t room = w->t[w->cur].size - w->cur_done;
        size_t   take = room < n ? (size_t)room : n;
        SMOE_TRY(w_write(w, p, take));
        w->cur_done += take;
        p += take;
        n -= take;
        SMOE_TRY(advance(w));
    }
    return SMOE_OK;
}

static void w_free(smoe_gguf_writer *w) {
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w->buf);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

/* fsyncs the directory holding path so the rename is durable (best effort) */
static void sync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char       *dir   = slash ? strndup(path, (size_t)(slash - path + 1)) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

smoe_status smoe_gguf_writer_finish(smoe_gguf_writer *w) {
    SMOE_RETURN_IF(!w, SMOE_ERR_INVALID_ARGUMENT, "smoe_gguf_writer_finish: writer is NULL");
    smoe_status st = SMOE_OK;
    if (w->phase == PHASE_META) st = smoe_gguf_writer_begin_data(w);
    if (st == SMOE_OK) st = w_check(w, PHASE_DATA, "finish");
    if (st == SMOE_OK && w->cur < w->n_t) {
        st = w_error(w, SMOE_ERR_INVALID_ARGUMENT,
                     "finish: tensor '%s' (#%zu) has %" PRIu64 " of %" PRIu64 " bytes (%zu tensors not complete)",
                     w->t[w->cur].name, w->cur, w->cur_done, w->t[w->cur].size, w->n_t - w->cur);
    }
    if (st == SMOE_OK) st = w_flush(w);
    if (st == SMOE_OK && fsync(w->fd) != 0) {
        st = w_error(w, SMOE_ERR_IO, "fsync of %s failed: %s", w->tmp_path, strerror(errno));
    }
    if (st == SMOE_OK) {
        int r = close(w->fd);
        w->fd = -1;
        if (r != 0) st = w_error(w, SMOE_ERR_IO, "close of %s failed: %s", w->tmp_path, strerror(errno));
    }
    if (st == SMOE_OK && rename(w->tmp_path, w->path) != 0) {
        st = w_error(w, SMOE_ERR_IO, "rename %s -> %s failed: %s", w->tmp_path, w->path, strerror(errno));
    }
    if (st == SMOE_OK) {
        sync_dir(w->path);
    } else if (w->phase != PHASE_FAILED) {
        w_fail(w);
    }
    w_free(w);
    return st;
}

void smoe_gguf_writer_abort(smoe_gguf_writer *w) {
    if (!w) return;
    if (w->phase != PHASE_FAILED) w_fail(w);
    w_free(w);
}
