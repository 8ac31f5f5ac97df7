/*
 * gguf.c - the GGUF v2/v3 reader: maps the file read-only, validates every field before anything is used, copies the
 * metadata into an arena and indexes keys and tensor names in hash tables.
 *
 * Invariants after a successful open:
 * - every count was checked against the bytes left in the file before anything was allocated for it, so the memory
 *   used is proportional to the file's header size, never to a number read from the file;
 * - keys and tensor names are unique, contain no NUL byte, and are NUL-terminated copies in the arena;
 * - numeric values and arrays are aligned copies (8 bytes) in the arena; string arrays are {ptr, len} tables;
 *   arrays of arrays are validated (lengths, types, depth <= GGUF_MAX_NEST) and kept as a raw span of the file;
 * - each tensor has a known type, 1..4 dims with ne >= 0, ne[0] a multiple of the block size, a byte size without
 *   overflow, an offset aligned to `general.alignment`, its bytes inside the file, and no overlap with another.
 *
 * GGUF is little-endian; this code assumes a little-endian host (checked at compile time).
 */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "smoe's GGUF reader assumes a little-endian host"
#endif

#define GGUF_MAX_NEST       8  /* arrays of arrays deeper than this are rejected (bounds recursion) */
#define GGUF_MIN_KV_BYTES   13 /* key length (8) + type (4) + smallest value (1) */
#define GGUF_MIN_TI_BYTES   32 /* name length (8) + n_dims (4) + one ne (8) + type (4) + offset (8) */
#define GGUF_NAME_IN_MSG    80 /* longest key/name quoted in an error message */

/* ---- arena: bump allocation in chunks, freed all at once ---- */

typedef struct arena_block {
    struct arena_block *next;
    size_t              used, cap;
} arena_block;

#define ARENA_HDR   ((sizeof(arena_block) + 15) & ~(size_t)15)
#define ARENA_CHUNK ((size_t)64 << 10)

static void *arena_alloc(arena_block **head, size_t n, size_t align) {
    arena_block *b = *head;
    if (b) {
        size_t at = (b->used + align - 1) & ~(align - 1);
        if (at <= b->cap && n <= b->cap - at) {
            b->used = at + n;
            return (unsigned char *)b + ARENA_HDR + at;
        }
    }
    size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
    if (cap > SIZE_MAX - ARENA_HDR) return NULL;
    arena_block *nb = malloc(ARENA_HDR + cap);
    if (!nb) return NULL;
    nb->cap  = cap;
    nb->used = n;
    /* a large dedicated block goes behind the current one so the current keeps its free space */
    if (b && n > ARENA_CHUNK) {
        nb->next = b->next;
        b->next  = nb;
    } else {
        nb->next = b;
        *head    = nb;
    }
    return (unsigned char *)nb + ARENA_HDR;
}

static void arena_free(arena_block *b) {
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
}

/* ---- the reader ---- */

typedef struct gguf_strref {
    const char *s;
    uint64_t    len;
} gguf_strref;

typedef struct gguf_kv {
    const char          *key;
    smoe_gguf_value_type type;
    smoe_gguf_value_type arr_type; /* arrays only */
    uint64_t             n;        /* arrays: element count; STRING: byte length */
    union {
        uint64_t u64;
        double   f64;
        uint8_t  bytes[8];
    } val;                         /* numeric/bool scalars */
    const void    *data;           /* STRING: char[]; numeric array: elements; string array: gguf_strref[] */
    const uint8_t *raw;            /* arrays: the elements as stored in the file */
    uint64_t       raw_size;
} gguf_kv;

struct smoe_gguf {
    char          *name; /* path or "<memory>", for messages */
    const uint8_t *base;
    uint64_t       size;
    void          *map; /* owned mapping, or NULL */
    size_t         map_size;
    uint32_t       version;
    uint64_t       alignment;
    uint64_t       data_offset;

    int64_t                n_kv;
    gguf_kv               *kv;
    int64_t                n_tensors;
    smoe_gguf_tensor_info *tensors;

    int64_t *kv_index; /* open-addressing hash tables: slot = index + 1, 0 = empty */
    uint64_t kv_mask;
    int64_t *ti_index;
    uint64_t ti_mask;

    arena_block *arena;
};

static const struct {
    const char *name;
    size_t      size;
} value_types[] = {
    [SMOE_GGUF_UINT8] = {"u8", 1},    [SMOE_GGUF_INT8] = {"i8", 1},       [SMOE_GGUF_UINT16] = {"u16", 2},
    [SMOE_GGUF_INT16] = {"i16", 2},   [SMOE_GGUF_UINT32] = {"u32", 4},    [SMOE_GGUF_INT32] = {"i32", 4},
    [SMOE_GGUF_FLOAT32] = {"f32", 4}, [SMOE_GGUF_BOOL] = {"bool", 1},     [SMOE_GGUF_STRING] = {"string", 0},
    [SMOE_GGUF_ARRAY] = {"array", 0}, [SMOE_GGUF_UINT64] = {"u64", 8},    [SMOE_GGUF_INT64] = {"i64", 8},
    [SMOE_GGUF_FLOAT64] = {"f64", 8},
};
#define N_VALUE_TYPES (sizeof(value_types) / sizeof(value_types[0]))

size_t smoe_gguf_value_type_size(smoe_gguf_value_type type) {
    return (unsigned)type < N_VALUE_TYPES ? value_types[type].size : 0;
}

const char *smoe_gguf_value_type_name(smoe_gguf_value_type type) {
    return (unsigned)type < N_VALUE_TYPES ? value_types[type].name : "?";
}

static uint64_t hash_bytes(const char *s, size_t n) { /* FNV-1a, 64-bit */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

/* A printable, bounded copy of a key/name for messages. */
static const char *msg_name(const char *s, uint64_t len, char buf[GGUF_NAME_IN_MSG + 4]) {
    uint64_t n = len < GGUF_NAME_IN_MSG ? len : GGUF_NAME_IN_MSG;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i]          = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (len > n) {
        memcpy(buf + n, "...", 4);
    } else {
        buf[n] = '\0';
    }
    return buf;
}

/* ---- cursor over the file's bytes ---- */

typedef struct cursor {
    const uint8_t *p;
    uint64_t       size, pos;
} cursor;

static uint64_t left(const cursor *c) { return c->size - c->pos; }

static smoe_status need(const cursor *c, uint64_t n, const char *what) {
    SMOE_RETURN_IF(n > left(c), SMOE_ERR_CORRUPT_FILE,
                   "truncated: %s at offset %" PRIu64 " needs %" PRIu64 " bytes, %" PRIu64 " left in the file", what,
                   c->pos, n, left(c));
    return SMOE_OK;
}

static smoe_status rd_u32(cursor *c, uint32_t *v, const char *what) {
    SMOE_TRY(need(c, 4, what));
    memcpy(v, c->p + c->pos, 4);
    c->pos += 4;
    return SMOE_OK;
}

static smoe_status rd_u64(cursor *c, uint64_t *v, const char *what) {
    SMOE_TRY(need(c, 8, what));
    memcpy(v, c->p + c->pos, 8);
    c->pos += 8;
    return SMOE_OK;
}

/* A GGUF string: u64 length + bytes. *s points into the file. */
static smoe_status rd_str(cursor *c, const uint8_t **s, uint64_t *len, const char *what) {
    uint64_t at = c->pos;
    SMOE_TRY(rd_u64(c, len, what));
    SMOE_RETURN_IF(*len > left(c), SMOE_ERR_CORRUPT_FILE,
                   "%s at offset %" PRIu64 ": string length %" PRIu64 " exceeds the %" PRIu64
                   " bytes left in the file",
                   what, at, *len, left(c));
    *s = c->p + c->pos;
    c->pos += *len;
    return SMOE_OK;
}

static char *arena_str(smoe_gguf *g, const uint8_t *s, uint64_t len) {
    char *d = arena_alloc(&g->arena, (size_t)len + 1, 1); /* len <= file size, so it fits size_t */
    if (!d) return NULL;
    memcpy(d, s, (size_t)len);
    d[len] = '\0';
    return d;
}

static smoe_status check_value_type(uint32_t t, const char *what, uint64_t at) {
    SMOE_RETURN_IF(t >= N_VALUE_TYPES, SMOE_ERR_CORRUPT_FILE, "%s at offset %" PRIu64 ": unknown value type id %u",
                   what, at, t);
    return SMOE_OK;
}

static smoe_status check_bools(const uint8_t *p, uint64_t n, const char *what, uint64_t at) {
    for (uint64_t i = 0; i < n; i++) {
        SMOE_RETURN_IF(p[i] > 1, SMOE_ERR_CORRUPT_FILE,
                       "%s at offset %" PRIu64 ": bool value %u (must be 0 or 1)", what, at + i, p[i]);
    }
    return SMOE_OK;
}

/* Validates and skips the elements of an array (used for arrays nested in arrays). */
static smoe_status skip_array(cursor *c, int depth, const char *what) {
    uint64_t at = c->pos;
    uint32_t t;
    uint64_t n;
    SMOE_RETURN_IF(depth > GGUF_MAX_NEST, SMOE_ERR_CORRUPT_FILE,
                   "%s at offset %" PRIu64 ": arrays nested deeper than %d", what, at, GGUF_MAX_NEST);
    SMOE_TRY(rd_u32(c, &t, what));
    SMOE_TRY(check_value_type(t, what, at));
    SMOE_TRY(rd_u64(c, &n, what));
    size_t es = smoe_gguf_value_type_size((smoe_gguf_value_type)t);
    if (es) {
        SMOE_RETURN_IF(n > left(c) / es, SMOE_ERR_CORRUPT_FILE,
                       "%s at offset %" PRIu64 ": array of %" PRIu64 " %s exceeds the %" PRIu64 " bytes left", what,
                       at, n, value_types[t].name, left(c));
        if (t == SMOE_GGUF_BOOL) SMOE_TRY(check_bools(c->p + c->pos, n, what, c->pos));
        c->pos += n * es;
    } else if (t == SMOE_GGUF_STRING) {
        SMOE_RETURN_IF(n > left(c) / 8, SMOE_ERR_CORRUPT_FILE,
                       "%s at offset %" PRIu64 ": array of %" PRIu64 " strings exceeds the %" PRIu64 " bytes left",
                       what, at, n, left(c));
        for (uint64_t j = 0; j < n; j++) {
            const uint8_t *s;
            uint64_t       len;
            SMOE_TRY(rd_str(c, &s, &len, what));
        }
    } else {
        SMOE_RETURN_IF(n > left(c) / 12, SMOE_ERR_CORRUPT_FILE,
                       "%s at offset %" PRIu64 ": array of %" PRIu64 " arrays exceeds the %" PRIu64 " bytes left",
                       what, at, n, left(c));
        for (uint64_t j = 0; j < n; j++) SMOE_TRY(skip_array(c, depth + 1, what));
    }
    return SMOE_OK;
}

static smoe_status oom(const char *what) { return smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "out of memory (%s)", what); }

static smoe_status parse_array(smoe_gguf *g, cursor *c, gguf_kv *kv, const char *what) {
    uint64_t at = c->pos;
    uint32_t t;
    uint64_t n;
    SMOE_TRY(rd_u32(c, &t, what));
    SMOE_TRY(check_value_type(t, what, at));
    SMOE_TRY(rd_u64(c, &n, what));
    kv->arr_type = (smoe_gguf_value_type)t;
    kv->n        = n;
    kv->raw      = c->p + c->pos;
    size_t es    = smoe_gguf_value_type_size(kv->arr_type);
    if (es) {
        SMOE_RETURN_IF(n > left(c) / es, SMOE_ERR_CORRUPT_FILE,
                       "%s at offset %" PRIu64 ": array of %" PRIu64 " %s (%zu bytes each) exceeds the %" PRIu64
                       " bytes left in the file",
                       what, at, n, value_types[t].name, es, left(c));
        if (t == SMOE_GGUF_BOOL) SMOE_TRY(check_bools(c->p + c->pos, n, what, c->pos));
        size_t bytes = (size_t)(n * es);
        void  *d     = arena_alloc(&g->arena, bytes ? bytes : 1, 8);
        if (!d) return oom(what);
        memcpy(d, c->p + c->pos, bytes);
        kv->data = d;
        c->pos += bytes;
    } else if (t == SMOE_GGUF_STRING) {
        SMOE_RETURN_IF(n > left(c) / 8, SMOE_ERR_CORRUPT_FILE,
                       "%s at offset %" PRIu64 ": array of %" PRIu64 " strings exceeds the %" PRIu64
                       " bytes left in the file",
                       what, at, n, left(c));
        gguf_strref *refs = arena_alloc(&g->arena, n ? (size_t)n * sizeof(*refs) : 1, 8);
        if (!refs) return oom(what);
        for (uint64_t j = 0; j < n; j++) {
            const uint8_t *s;
            uint64_t       len;
            SMOE_TRY(rd_str(c, &s, &len, what));
            refs[j].s   = arena_str(g, s, len);
            refs[j].len = len;
            if (!refs[j].s) return oom(what);
        }
        kv->data = refs;
    } else { /* arrays of arrays: validated, kept opaque */
        SMOE_RETURN_IF(n > left(c) / 12, SMOE_ERR_CORRUPT_FILE,
                       "%s at offset %" PRIu64 ": array of %" PRIu64 " arrays exceeds the %" PRIu64
                       " bytes left in the file",
                       what, at, n, left(c));
        for (uint64_t j = 0; j < n; j++) SMOE_TRY(skip_array(c, 2, what));
        kv->data = NULL;
    }
    kv->raw_size = (uint64_t)(c->p + c->pos - kv->raw);
    return SMOE_OK;
}

/* Inserts name `s` (index i) into a hash table; returns the index of an equal name already there, or -1. */
static int64_t hash_insert(int64_t *table, uint64_t mask, const char *s, uint64_t len, int64_t i,
                           const char *(*name_of)(const smoe_gguf *, int64_t), const smoe_gguf *g) {
    for (uint64_t h = hash_bytes(s, (size_t)len) & mask;; h = (h + 1) & mask) {
        if (table[h] == 0) {
            table[h] = i + 1;
            return -1;
        }
        const char *o = name_of(g, table[h] - 1);
        if (strlen(o) == len && memcmp(o, s, (size_t)len) == 0) return table[h] - 1;
    }
}

static int64_t hash_find(const int64_t *table, uint64_t mask, const char *s,
                         const char *(*name_of)(const smoe_gguf *, int64_t), const smoe_gguf *g) {
    if (!table || !s) return -1;
    size_t len = strlen(s);
    for (uint64_t h = hash_bytes(s, len) & mask;; h = (h + 1) & mask) {
        if (table[h] == 0) return -1;
        if (strcmp(name_of(g, table[h] - 1), s) == 0) return table[h] - 1;
    }
}

static const char *kv_name(const smoe_gguf *g, int64_t i) { return g->kv[i].key; }
static const char *ti_name(const smoe_gguf *g, int64_t i) { return g->tensors[i].name; }

static smoe_status alloc_table(int64_t n, int64_t **table, uint64_t *mask) {
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2) cap *= 2;
    *table = calloc((size_t)cap, sizeof(**table));
    *mask  = cap - 1;
    if (!*table) return oom("hash table");
    return SMOE_OK;
}

static smoe_status parse_kv(smoe_gguf *g, cursor *c, int64_t i) {
    gguf_kv       *kv = &g->kv[i];
    char           what[GGUF_NAME_IN_MSG + 64], nb[GGUF_NAME_IN_MSG + 4];
    const uint8_t *key;
    uint64_t       key_len, at = c->pos;

    snprintf(what, sizeof(what), "kv #%" PRId64 " key", i);
    SMOE_TRY(rd_str(c, &key, &key_len, what));
    SMOE_RETURN_IF(key_len == 0, SMOE_ERR_CORRUPT_FILE, "kv #%" PRId64 " at offset %" PRIu64 ": empty key", i, at);
    SMOE_RETURN_IF(memchr(key, 0, (size_t)key_len) != NULL, SMOE_ERR_CORRUPT_FILE,
                   "kv #%" PRId64 " at offset %" PRIu64 ": key '%s' contains a NUL byte", i, at,
                   msg_name((const char *)key, key_len, nb));
    kv->key = arena_str(g, key, key_len);
    if (!kv->key) return oom("metadata key");
    int64_t dup = hash_insert(g->kv_index, g->kv_mask, kv->key, key_len, i, kv_name, g);
    SMOE_RETURN_IF(dup >= 0, SMOE_ERR_CORRUPT_FILE, "kv #%" PRId64 " at offset %" PRIu64 ": duplicate key '%s' (also kv #%" PRId64 ")",
                   i, at, msg_name(kv->key, key_len, nb), dup);

    snprintf(what, sizeof(what), "kv #%" PRId64 " '%s'", i, msg_name(kv->key, key_len, nb));
    uint32_t t;
    at = c->pos;
    SMOE_TRY(rd_u32(c, &t, what));
    SMOE_TRY(check_value_type(t, what, at));
    kv->type  = (smoe_gguf_value_type)t;
    size_t es = smoe_gguf_value_type_size(kv->type);
    if (es) {
        at = c->pos;
        SMOE_TRY(need(c, es, what));
        if (t == SMOE_GGUF_BOOL) SMOE_TRY(check_bools(c->p + c->pos, 1, what, at));
        memcpy(kv->val.bytes, c->p + c->pos, es);
        c->pos += es;
    } else if (t == SMOE_GGUF_STRING) {
        const uint8_t *s;
        SMOE_TRY(rd_str(c, &s, &kv->n, what));
        kv->data = arena_str(g, s, kv->n);
        if (!kv->data) return oom(what);
    } else {
        SMOE_TRY(parse_array(g, c, kv, what));
    }
    return SMOE_OK;
}

static smoe_status parse_tensor_info(smoe_gguf *g, cursor *c, int64_t i) {
    smoe_gguf_tensor_info *ti = &g->tensors[i];
    char                   what[GGUF_NAME_IN_MSG + 64], nb[GGUF_NAME_IN_MSG + 4];
    const uint8_t         *name;
    uint64_t               name_len, at = c->pos;

    snprintf(what, sizeof(what), "tensor #%" PRId64 " name", i);
    SMOE_TRY(rd_str(c, &name, &name_len, what));
    SMOE_RETURN_IF(memchr(name, 0, (size_t)name_len) != NULL, SMOE_ERR_CORRUPT_FILE,
                   "tensor #%" PRId64 " at offset %" PRIu64 ": name '%s' contains a NUL byte", i, at,
                   msg_name((const char *)name, name_len, nb));
    ti->name = arena_str(g, name, name_len);
    if (!ti->name) return oom("tensor name");
    int64_t dup = hash_insert(g->ti_index, g->ti_mask, ti->name, name_len, i, ti_name, g);
    SMOE_RETURN_IF(dup >= 0, SMOE_ERR_CORRUPT_FILE,
                   "tensor #%" PRId64 " at offset %" PRIu64 ": duplicate tensor name '%s' (also tensor #%" PRId64 ")", i,
                   at, msg_name(ti->name, name_len, nb), dup);

    snprintf(what, sizeof(what), "tensor '%s' (#%" PRId64 ")", msg_name(ti->name, name_len, nb), i);
    at = c->pos;
    SMOE_TRY(rd_u32(c, &ti->n_dims, what));
    SMOE_RETURN_IF(ti->n_dims < 1 || ti->n_dims > SMOE_GGUF_MAX_DIMS, SMOE_ERR_CORRUPT_FILE,
                   "%s at offset %" PRIu64 ": %u dimensions (must be 1..%d)", what, at, ti->n_dims,
                   SMOE_GGUF_MAX_DIMS);
    for (uint32_t d = 0; d < SMOE_GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        at          = c->pos;
        if (d < ti->n_dims) SMOE_TRY(rd_u64(c, &ne, what));
        SMOE_RETURN_IF(ne > (uint64_t)INT64_MAX, SMOE_ERR_CORRUPT_FILE,
                       "%s at offset %" PRIu64 ": dimension %u is negative (%" PRId64 ")", what, at, d, (int64_t)ne);
        ti->ne[d] = (int64_t)ne;
    }
    uint32_t type;
    at = c->pos;
    SMOE_TRY(rd_u32(c, &type, what));
    const smoe_type_traits *tr = smoe_type_get_traits((int)type);
    SMOE_RETURN_IF(!tr, SMOE_ERR_UNSUPPORTED, "%s at offset %" PRIu64 ": unknown tensor type id %u", what, at, type);
    ti->type = (smoe_type)type;
    SMOE_TRY(rd_u64(c, &ti->offset, what));
    return SMOE_OK;
}

/* Byte size of a tensor: checks the element count and the byte count for overflow, the row against the block. */
static smoe_status tensor_size(smoe_gguf_tensor_info *ti, int64_t i) {
    const smoe_type_traits *tr = smoe_type_get_traits(ti->type);
    char                    nb[GGUF_NAME_IN_MSG + 4];
    const char             *nm = msg_name(ti->name, strlen(ti->name), nb);
    uint64_t                n  = 1;
    for (uint32_t d = 0; d < SMOE_GGUF_MAX_DIMS; d++) {
        SMOE_RETURN_IF(smoe_mul_overflow_u64(n, (uint64_t)ti->ne[d], &n) || n > (uint64_t)INT64_MAX,
                       SMOE_ERR_CORRUPT_FILE,
                       "tensor '%s' (#%" PRId64 "): shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                       "] overflows the element count",
                       nm, i, ti->ne[0], ti->ne[1], ti->ne[2], ti->ne[3]);
    }
    SMOE_RETURN_IF(ti->ne[0] % tr->block_size != 0, SMOE_ERR_CORRUPT_FILE,
                   "tensor '%s' (#%" PRId64 "): row length %" PRId64 " is not a multiple of %s's block size %" PRId64,
                   nm, i, ti->ne[0], tr->name, tr->block_size);
    uint64_t bytes = (uint64_t)(ti->ne[0] / tr->block_size);
    int      ovf   = smoe_mul_overflow_u64(bytes, tr->type_size, &bytes);
    for (uint32_t d = 1; d < SMOE_GGUF_MAX_DIMS; d++) ovf |= smoe_mul_overflow_u64(bytes, (uint64_t)ti->ne[d], &bytes);
    SMOE_RETURN_IF(ovf, SMOE_ERR_CORRUPT_FILE, "tensor '%s' (#%" PRId64 "): byte size overflows", nm, i);
    ti->size = bytes;
    return SMOE_OK;
}

typedef struct span {
    uint64_t begin, end;
    int64_t  i;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static smoe_status check_tensors(smoe_gguf *g) {
    uint64_t data_size = g->size >= g->data_offset ? g->size - g->data_offset : 0;
    char     nb[GGUF_NAME_IN_MSG + 4], nb2[GGUF_NAME_IN_MSG + 4];
    span    *spans = g->n_tensors ? malloc((size_t)g->n_tensors * sizeof(*spans)) : NULL;
    if (g->n_tensors && !spans) return oom("tensor table");
    int64_t n_spans = 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        smoe_gguf_tensor_info *ti = &g->tensors[i];
        smoe_status            st = tensor_size(ti, i);
        if (st != SMOE_OK) {
            free(spans);
            return st;
        }
        const char *nm = msg_name(ti->name, strlen(ti->name), nb);
        if (ti->offset % g->alignment != 0) {
            free(spans);
            return smoe_set_error(SMOE_ERR_CORRUPT_FILE,
                                  "tensor '%s' (#%" PRId64 "): data offset %" PRIu64
                                  " is not a multiple of the alignment %" PRIu64,
                                  nm, i, ti->offset, g->alignment);
        }
        uint64_t end, abs_begin, abs_end;
        if (smoe_add_overflow_u64(ti->offset, ti->size, &end) || end > data_size) {
            free(spans);
            if (smoe_add_overflow_u64(g->data_offset, ti->offset, &abs_begin) ||
                smoe_add_overflow_u64(abs_begin, ti->size, &abs_end)) {
                return smoe_set_error(SMOE_ERR_CORRUPT_FILE,
                                      "tensor '%s' (#%" PRId64 "): data offset %" PRIu64 " + size %" PRIu64
                                      " overflows",
                                      nm, i, ti->offset, ti->size);
            }
            return smoe_set_error(SMOE_ERR_CORRUPT_FILE,
                                  "tensor '%s' (#%" PRId64 "): data [%" PRIu64 ", %" PRIu64
                                  ") past end of file (%" PRIu64 " bytes)",
                                  nm, i, abs_begin, abs_end, g->size);
        }
        if (ti->size) spans[n_spans++] = (span){ti->offset, end, i};
    }
    if (n_spans > 1) qsort(spans, (size_t)n_spans, sizeof(*spans), span_cmp);
    for (int64_t k = 1; k < n_spans; k++) {
        if (spans[k].begin < spans[k - 1].end) {
            const smoe_gguf_tensor_info *a = &g->tensors[spans[k - 1].i], *b = &g->tensors[spans[k].i];
            smoe_status st = smoe_set_error(SMOE_ERR_CORRUPT_FILE,
                                            "tensor '%s' (#%" PRId64 ") data [%" PRIu64 ", %" PRIu64
                                            ") overlaps tensor '%s' (#%" PRId64 ") data [%" PRIu64 ", %" PRIu64 ")",
                                            msg_name(b->name, strlen(b->name), nb), spans[k].i, b->offset,
                                            b->offset + b->size, msg_name(a->name, strlen(a->name), nb2),
                                            spans[k - 1].i, a->offset, a->offset + a->size);
            free(spans);
            return st;
        }
        /* spans are sorted by begin; keep the widest end seen so far in the predecessor slot */
        if (spans[k].end < spans[k - 1].end) spans[k] = spans[k - 1];
    }
    free(spans);
    return SMOE_OK;
}

static smoe_status parse(smoe_gguf *g) {
    cursor c = {g->base, g->size, 0};
    SMOE_RETURN_IF(g->size < 4, SMOE_ERR_CORRUPT_FILE, "not a GGUF file: only %" PRIu64 " bytes", g->size);
    SMOE_RETURN_IF(memcmp(g->base, "GGUF", 4) != 0, SMOE_ERR_CORRUPT_FILE,
                   "not a GGUF file: magic %02x %02x %02x %02x (expected \"GGUF\")", g->base[0], g->base[1],
                   g->base[2], g->base[3]);
    c.pos = 4;
    SMOE_TRY(rd_u32(&c, &g->version, "header version"));
    SMOE_RETURN_IF(g->version == 1, SMOE_ERR_UNSUPPORTED, "GGUF version 1 is not supported (only 2 and 3)");
    SMOE_RETURN_IF((g->version & 0xffff) == 0 && g->version != 0, SMOE_ERR_UNSUPPORTED,
                   "big-endian GGUF (version field 0x%08x) is not supported", g->version);
    SMOE_RETURN_IF(g->version != 2 && g->version != 3, SMOE_ERR_UNSUPPORTED,
                   "unknown GGUF version %u (only 2 and 3 are supported)", g->version);

    uint64_t n_tensors, n_kv;
    SMOE_TRY(rd_u64(&c, &n_tensors, "header tensor count"));
    SMOE_TRY(rd_u64(&c, &n_kv, "header metadata count"));
    SMOE_RETURN_IF(n_kv > left(&c) / GGUF_MIN_KV_BYTES, SMOE_ERR_CORRUPT_FILE,
                   "header: %" PRIu64 " metadata entries cannot fit in the %" PRIu64 " bytes left in the file", n_kv,
                   left(&c));
    SMOE_RETURN_IF(n_tensors > (left(&c) - n_kv * GGUF_MIN_KV_BYTES) / GGUF_MIN_TI_BYTES, SMOE_ERR_CORRUPT_FILE,
                   "header: %" PRIu64 " tensors and %" PRIu64 " metadata entries cannot fit in the %" PRIu64
                   " bytes left in the file",
                   n_tensors, n_kv, left(&c));

    g->n_kv = (int64_t)n_kv;
    g->kv   = calloc(n_kv ? (size_t)n_kv : 1, sizeof(*g->kv));
    if (!g->kv) return oom("metadata table");
    SMOE_TRY(alloc_table(g->n_kv, &g->kv_index, &g->kv_mask));
    for (int64_t i = 0; i < g->n_kv; i++) SMOE_TRY(parse_kv(g, &c, i));

    g->alignment = SMOE_GGUF_DEFAULT_ALIGNMENT;
    int64_t ai   = smoe_gguf_find_key(g, "general.alignment");
    if (ai >= 0) {
        const gguf_kv *kv = &g->kv[ai];
        SMOE_RETURN_IF(kv->type != SMOE_GGUF_UINT32, SMOE_ERR_CORRUPT_FILE,
                       "general.alignment has type %s (must be u32)", smoe_gguf_value_type_name(kv->type));
        uint32_t a;
        memcpy(&a, kv->val.bytes, 4);
        SMOE_RETURN_IF(a == 0 || (a & (a - 1)) != 0, SMOE_ERR_CORRUPT_FILE,
                       "general.alignment = %u is not a power of two", a);
        g->alignment = a;
    }

    SMOE_RETURN_IF(n_tensors > left(&c) / GGUF_MIN_TI_BYTES, SMOE_ERR_CORRUPT_FILE,
                   "header: %" PRIu64 " tensors cannot fit in the %" PRIu64 " bytes left after the metadata",
                   n_tensors, left(&c));
    g->n_tensors = (int64_t)n_tensors;
    g->tensors   = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof(*g->tensors));
    if (!g->tensors) return oom("tensor table");
    SMOE_TRY(alloc_table(g->n_tensors, &g->ti_index, &g->ti_mask));
    for (int64_t i = 0; i < g->n_tensors; i++) SMOE_TRY(parse_tensor_info(g, &c, i));

    /* the data section starts at the next multiple of the alignment (c.pos <= size, so this cannot overflow) */
    g->data_offset = (c.pos + g->alignment - 1) / g->alignment * g->alignment;
    SMOE_RETURN_IF(g->n_tensors > 0 && g->data_offset > g->size, SMOE_ERR_CORRUPT_FILE,
                   "truncated: the data section starts at %" PRIu64 ", past the end of the file (%" PRIu64 " bytes)",
                   g->data_offset, g->size);
    return check_tensors(g);
}

static smoe_status open_common(smoe_gguf *g, smoe_gguf **out) {
    smoe_status st = parse(g);
    if (st != SMOE_OK) {
        smoe_error_prefix("%s", g->name);
        smoe_gguf_close(g);
        return st;
    }
    *out = g;
    return SMOE_OK;
}

static smoe_gguf *new_reader(const char *name) {
    smoe_gguf *g = calloc(1, sizeof(*g));
    if (!g) return NULL;
    g->name = strdup(name);
    if (!g->name) {
        free(g);
        return NULL;
    }
    return g;
}

smoe_status smoe_gguf_open(const char *path, smoe_gguf **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "smoe_gguf_open: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!path, SMOE_ERR_INVALID_ARGUMENT, "smoe_gguf_open: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    SMOE_RETURN_IF(fd < 0, SMOE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return smoe_set_error(SMOE_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return smoe_set_error(SMOE_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size < 4) {
        close(fd);
        return smoe_set_error(SMOE_ERR_CORRUPT_FILE, "%s: not a GGUF file: only %lld bytes", path,
                              (long long)sb.st_size);
    }
    SMOE_RETURN_IF((uint64_t)sb.st_size > SIZE_MAX, SMOE_ERR_IO, "%s: too large to map", path);
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int   e   = errno;
    close(fd);
    SMOE_RETURN_IF(map == MAP_FAILED, SMOE_ERR_IO, "%s: mmap of %lld bytes failed: %s", path, (long long)sb.st_size,
                   strerror(e));
    smoe_gguf *g = new_reader(path);
    if (!g) {
        munmap(map, (size_t)sb.st_size);
        return oom("reader");
    }
    g->map      = map;
    g->map_size = (size_t)sb.st_size;
    g->base     = map;
    g->size     = (uint64_t)sb.st_size;
    return open_common(g, out);
}

smoe_status smoe_gguf_open_memory(const void *data, size_t size, smoe_gguf **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "smoe_gguf_open_memory: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!data && size, SMOE_ERR_INVALID_ARGUMENT, "smoe_gguf_open_memory: data is NULL");
    smoe_gguf *g = new_reader("<memory>");
    if (!g) return oom("reader");
    static const uint8_t empty[1];
    g->base = data ? data : empty;
    g->size = size;
    return open_common(g, out);
}

void smoe_gguf_close(smoe_gguf *g) {
    if (!g) return;
    if (g->map) munmap(g->map, g->map_size);
    arena_free(g->arena);
    free(g->kv);
    free(g->tensors);
    free(g->kv_index);
    free(g->ti_index);
    free(g->name);
    free(g);
}

/* ---- accessors ---- */

uint32_t    smoe_gguf_version(const smoe_gguf *g) { return g ? g->version : 0; }
uint64_t    smoe_gguf_alignment(const smoe_gguf *g) { return g ? g->alignment : 0; }
uint64_t    smoe_gguf_data_offset(const smoe_gguf *g) { return g ? g->data_offset : 0; }
const void *smoe_gguf_base(const smoe_gguf *g) { return g ? g->base : NULL; }
uint64_t    smoe_gguf_file_size(const smoe_gguf *g) { return g ? g->size : 0; }
int64_t     smoe_gguf_n_kv(const smoe_gguf *g) { return g ? g->n_kv : 0; }

int64_t smoe_gguf_find_key(const smoe_gguf *g, const char *key) {
    return g ? hash_find(g->kv_index, g->kv_mask, key, kv_name, g) : -1;
}

static const gguf_kv *kv_at(const smoe_gguf *g, int64_t i) {
    return (g && i >= 0 && i < g->n_kv) ? &g->kv[i] : NULL;
}

const char *smoe_gguf_key(const smoe_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->key : NULL;
}

smoe_gguf_value_type smoe_gguf_kv_type(const smoe_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->type : (smoe_gguf_value_type)-1;
}

smoe_gguf_value_type smoe_gguf_arr_type(const smoe_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv && kv->type == SMOE_GGUF_ARRAY ? kv->arr_type : (smoe_gguf_value_type)-1;
}

uint64_t smoe_gguf_arr_n(const smoe_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv && kv->type == SMOE_GGUF_ARRAY ? kv->n : 0;
}

const void *smoe_gguf_arr_data(const smoe_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || kv->type != SMOE_GGUF_ARRAY || !smoe_gguf_value_type_size(kv->arr_type)) return NULL;
    return kv->data;
}

const void *smoe_gguf_arr_raw(const smoe_gguf *g, int64_t i, uint64_t *size) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || kv->type != SMOE_GGUF_ARRAY) {
        if (size) *size = 0;
        return NULL;
    }
    if (size) *size = kv->raw_size;
    return kv->raw;
}

const char *smoe_gguf_arr_str(const smoe_gguf *g, int64_t i, uint64_t j, uint64_t *len) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || kv->type != SMOE_GGUF_ARRAY || kv->arr_type != SMOE_GGUF_STRING || j >= kv->n) {
        if (len) *len = 0;
        return NULL;
    }
    const gguf_strref *r = (const gguf_strref *)kv->data + j;
    if (len) *len = r->len;
    return r->s;
}

const char *smoe_gguf_str(const smoe_gguf *g, int64_t i, uint64_t *len) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || kv->type != SMOE_GGUF_STRING) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = kv->n;
    return kv->data;
}

const void *smoe_gguf_val(const smoe_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv && smoe_gguf_value_type_size(kv->type) ? kv->val.bytes : NULL;
}

/* ---- typed look-ups ---- */

static smoe_status lookup(const smoe_gguf *g, const char *key, int64_t *i) {
    SMOE_RETURN_IF(!g || !key, SMOE_ERR_INVALID_ARGUMENT, "gguf look-up: NULL argument");
    *i = smoe_gguf_find_key(g, key);
    SMOE_RETURN_IF(*i < 0, SMOE_ERR_CORRUPT_FILE, "%s: missing metadata key '%s'", g->name, key);
    return SMOE_OK;
}

/* An integer value as (negative?, magnitude). */
static bool int_value(const gguf_kv *kv, bool *neg, uint64_t *mag) {
    int64_t s;
    *neg = false;
    switch (kv->type) {
    case SMOE_GGUF_UINT8: *mag = kv->val.bytes[0]; return true;
    case SMOE_GGUF_UINT16: { uint16_t v; memcpy(&v, kv->val.bytes, 2); *mag = v; return true; }
    case SMOE_GGUF_UINT32: { uint32_t v; memcpy(&v, kv->val.bytes, 4); *mag = v; return true; }
    case SMOE_GGUF_UINT64: *mag = kv->val.u64; return true;
    case SMOE_GGUF_INT8: { int8_t v; memcpy(&v, kv->val.bytes, 1); s = v; break; }
    case SMOE_GGUF_INT16: { int16_t v; memcpy(&v, kv->val.bytes, 2); s = v; break; }
    case SMOE_GGUF_INT32: { int32_t v; memcpy(&v, kv->val.bytes, 4); s = v; break; }
    case SMOE_GGUF_INT64: memcpy(&s, kv->val.bytes, 8); break;
    default: return false;
    }
    *neg = s < 0;
    *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    return true;
}

static smoe_status get_int(const smoe_gguf *g, const char *key, bool is_signed, uint64_t max, int64_t *sv,
                           uint64_t *uv, const char *want) {
    int64_t i = -1;
    SMOE_TRY(lookup(g, key, &i));
    const gguf_kv *kv = &g->kv[i];
    bool           neg;
    uint64_t       mag;
    SMOE_RETURN_IF(!int_value(kv, &neg, &mag), SMOE_ERR_CORRUPT_FILE, "%s: metadata key '%s' has type %s (expected %s)",
                   g->name, key, smoe_gguf_value_type_name(kv->type), want);
    bool fits = is_signed ? (neg ? mag <= max + 1 : mag <= max) : (!neg && mag <= max);
    SMOE_RETURN_IF(!fits, SMOE_ERR_CORRUPT_FILE, "%s: metadata key '%s' = %s%" PRIu64 " (%s) does not fit %s", g->name,
                   key, neg ? "-" : "", mag, smoe_gguf_value_type_name(kv->type), want);
    if (sv) *sv = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    if (uv) *uv = mag;
    return SMOE_OK;
}

smoe_status smoe_gguf_get_u32(const smoe_gguf *g, const char *key, uint32_t *out) {
    uint64_t v;
    SMOE_TRY(get_int(g, key, false, UINT32_MAX, NULL, &v, "u32"));
    *out = (uint32_t)v;
    return SMOE_OK;
}

smoe_status smoe_gguf_get_u64(const smoe_gguf *g, const char *key, uint64_t *out) {
    return get_int(g, key, false, UINT64_MAX, NULL, out, "u64");
}

smoe_status smoe_gguf_get_i32(const smoe_gguf *g, const char *key, int32_t *out) {
    int64_t v;
    SMOE_TRY(get_int(g, key, true, INT32_MAX, &v, NULL, "i32"));
    *out = (int32_t)v;
    return SMOE_OK;
}

smoe_status smoe_gguf_get_f32(const smoe_gguf *g, const char *key, float *out) {
    int64_t i = -1;
    SMOE_TRY(lookup(g, key, &i));
    const gguf_kv *kv = &g->kv[i];
    if (kv->type == SMOE_GGUF_FLOAT32) {
        memcpy(out, kv->val.bytes, 4);
    } else if (kv->type == SMOE_GGUF_FLOAT64) {
        *out = (float)kv->val.f64;
    } else {
        return smoe_set_error(SMOE_ERR_CORRUPT_FILE, "%s: metadata key '%s' has type %s (expected f32 or f64)",
                              g->name, key, smoe_gguf_value_type_name(kv->type));
    }
    return SMOE_OK;
}

smoe_status smoe_gguf_get_bool(const smoe_gguf *g, const char *key, bool *out) {
    int64_t i = -1;
    SMOE_TRY(lookup(g, key, &i));
    const gguf_kv *kv = &g->kv[i];
    SMOE_RETURN_IF(kv->type != SMOE_GGUF_BOOL, SMOE_ERR_CORRUPT_FILE,
                   "%s: metadata key '%s' has type %s (expected bool)", g->name, key,
                   smoe_gguf_value_type_name(kv->type));
    *out = kv->val.bytes[0] != 0;
    return SMOE_OK;
}

smoe_status smoe_gguf_get_str(const smoe_gguf *g, const char *key, const char **out) {
    int64_t i = -1;
    SMOE_TRY(lookup(g, key, &i));
    const gguf_kv *kv = &g->kv[i];
    SMOE_RETURN_IF(kv->type != SMOE_GGUF_STRING, SMOE_ERR_CORRUPT_FILE,
                   "%s: metadata key '%s' has type %s (expected string)", g->name, key,
                   smoe_gguf_value_type_name(kv->type));
    *out = kv->data;
    return SMOE_OK;
}

smoe_status smoe_gguf_get_u32_or(const smoe_gguf *g, const char *key, uint32_t def, uint32_t *out) {
    if (g && key && smoe_gguf_find_key(g, key) < 0) {
        *out = def;
        return SMOE_OK;
    }
    return smoe_gguf_get_u32(g, key, out);
}

smoe_status smoe_gguf_get_f32_or(const smoe_gguf *g, const char *key, float def, float *out) {
    if (g && key && smoe_gguf_find_key(g, key) < 0) {
        *out = def;
        return SMOE_OK;
    }
    return smoe_gguf_get_f32(g, key, out);
}

smoe_status smoe_gguf_get_bool_or(const smoe_gguf *g, const char *key, bool def, bool *out) {
    if (g && key && smoe_gguf_find_key(g, key) < 0) {
        *out = def;
        return SMOE_OK;
    }
    return smoe_gguf_get_bool(g, key, out);
}

/* ---- tensors ---- */

int64_t smoe_gguf_n_tensors(const smoe_gguf *g) { return g ? g->n_tensors : 0; }

const smoe_gguf_tensor_info *smoe_gguf_tensor(const smoe_gguf *g, int64_t i) {
    return (g && i >= 0 && i < g->n_tensors) ? &g->tensors[i] : NULL;
}

int64_t smoe_gguf_find_tensor(const smoe_gguf *g, const char *name) {
    return g ? hash_find(g->ti_index, g->ti_mask, name, ti_name, g) : -1;
}

const void *smoe_gguf_tensor_data(const smoe_gguf *g, int64_t i) {
    const smoe_gguf_tensor_info *ti = smoe_gguf_tensor(g, i);
    if (!ti) return NULL;
    /* validated: data_offset + offset + size <= file size (a 0-byte tensor may sit exactly at the end) */
    return g->base + g->data_offset + ti->offset;
}
