/*
 * safetensors.c - see safetensors.h. The header is parsed with jansson; every number that comes from the file goes
 * through overflow-checked arithmetic before it is used as a size or an offset.
 */
#include "safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct smoe_st_file {
    char           *path;
    const uint8_t  *data;
    uint64_t        size;
    bool            mapped; /* data is our mmap (unmapped on close) */
    int64_t         n_tensors;
    smoe_st_tensor *tensors; /* sorted by name */
    char           *names;   /* all names, NUL-terminated, back to back */
};

struct smoe_st_set {
    uint32_t               n_files;
    smoe_st_file         **files;
    int64_t                n_tensors;
    const smoe_st_tensor **tensors; /* sorted by name */
    uint64_t               data_bytes;
};

static const struct {
    const char *name;
    size_t      size;
} dtypes[SMOE_ST_DTYPE_COUNT] = {
    [SMOE_ST_BOOL] = {"BOOL", 1},       [SMOE_ST_U8] = {"U8", 1},   [SMOE_ST_I8] = {"I8", 1},
    [SMOE_ST_F8_E5M2] = {"F8_E5M2", 1}, [SMOE_ST_F8_E4M3] = {"F8_E4M3", 1},
    [SMOE_ST_I16] = {"I16", 2},         [SMOE_ST_U16] = {"U16", 2}, [SMOE_ST_F16] = {"F16", 2},
    [SMOE_ST_BF16] = {"BF16", 2},       [SMOE_ST_I32] = {"I32", 4}, [SMOE_ST_U32] = {"U32", 4},
    [SMOE_ST_F32] = {"F32", 4},         [SMOE_ST_F64] = {"F64", 8}, [SMOE_ST_I64] = {"I64", 8},
    [SMOE_ST_U64] = {"U64", 8},
};

const char *smoe_st_dtype_name(smoe_st_dtype dtype) {
    return (unsigned)dtype < SMOE_ST_DTYPE_COUNT ? dtypes[dtype].name : "?";
}

size_t smoe_st_dtype_size(smoe_st_dtype dtype) { return (unsigned)dtype < SMOE_ST_DTYPE_COUNT ? dtypes[dtype].size : 0; }

static int dtype_from_name(const char *s) {
    for (int i = 0; i < SMOE_ST_DTYPE_COUNT; i++)
        if (!strcmp(s, dtypes[i].name)) return i;
    return -1;
}

static uint64_t read_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const smoe_st_tensor *)a)->name, ((const smoe_st_tensor *)b)->name);
}

static int cmp_tensor_ptr_name(const void *a, const void *b) {
    return strcmp((*(const smoe_st_tensor *const *)a)->name, (*(const smoe_st_tensor *const *)b)->name);
}

static int cmp_ptr_offset(const void *a, const void *b) {
    const smoe_st_tensor *x = *(const smoe_st_tensor *const *)a, *y = *(const smoe_st_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset ? 1 : 0;
}

/* Formats a shape as "[a, b, c]" into buf (for messages). */
static const char *shape_str(const smoe_st_tensor *t, char *buf, size_t size) {
    size_t n = (size_t)snprintf(buf, size, "[");
    for (uint32_t d = 0; d < t->n_dims && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, "%s%" PRId64, d ? ", " : "", t->shape[d]);
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}

/* A non-negative JSON integer, or false. */
static bool json_u64(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v)) return false;
    json_int_t i = json_integer_value(v);
    if (i < 0) return false;
    *out = (uint64_t)i;
    return true;
}

/* Parses one header entry into t (name already set). */
static smoe_status parse_entry(const char *label, const json_t *v, uint64_t data_start, uint64_t file_size,
                               smoe_st_tensor *t) {
    const char *name = t->name;
    SMOE_RETURN_IF(!json_is_object(v), SMOE_ERR_CORRUPT_FILE, "%s: tensor '%s': header entry is not an object",
                   label, name);
    const json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
                 *jo = json_object_get(v, "data_offsets");
    SMOE_RETURN_IF(!json_is_string(jd), SMOE_ERR_CORRUPT_FILE, "%s: tensor '%s': missing or non-string \"dtype\"",
                   label, name);
    int dt = dtype_from_name(json_string_value(jd));
    SMOE_RETURN_IF(dt < 0, SMOE_ERR_CORRUPT_FILE, "%s: tensor '%s': unknown dtype \"%s\"", label, name,
                   json_string_value(jd));
    t->dtype = (smoe_st_dtype)dt;

    SMOE_RETURN_IF(!json_is_array(js), SMOE_ERR_CORRUPT_FILE, "%s: tensor '%s': missing or non-array \"shape\"",
                   label, name);
    size_t nd = json_array_size(js);
    SMOE_RETURN_IF(nd > SMOE_ST_MAX_DIMS, SMOE_ERR_CORRUPT_FILE, "%s: tensor '%s': %zu dimensions (at most %d)",
                   label, name, nd, SMOE_ST_MAX_DIMS);
    t->n_dims = (uint32_t)nd;
    uint64_t n_el = 1;
    for (size_t d = 0; d < nd; d++) {
        uint64_t dim;
        SMOE_RETURN_IF(!json_u64(json_array_get(js, d), &dim) || dim > (uint64_t)INT64_MAX, SMOE_ERR_CORRUPT_FILE,
                       "%s: tensor '%s': shape[%zu] is not a non-negative integer", label, name, d);
        t->shape[d] = (int64_t)dim;
        SMOE_RETURN_IF(smoe_mul_overflow_u64(n_el, dim, &n_el), SMOE_ERR_CORRUPT_FILE,
                       "%s: tensor '%s': element count overflows", label, name);
    }
    t->n_elements = n_el;
    uint64_t nbytes;
    SMOE_RETURN_IF(smoe_mul_overflow_u64(n_el, dtypes[dt].size, &nbytes), SMOE_ERR_CORRUPT_FILE,
                   "%s: tensor '%s': byte size overflows", label, name);

    uint64_t begin, end;
    SMOE_RETURN_IF(!json_is_array(jo) || json_array_size(jo) != 2 || !json_u64(json_array_get(jo, 0), &begin) ||
                       !json_u64(json_array_get(jo, 1), &end),
                   SMOE_ERR_CORRUPT_FILE, "%s: tensor '%s': \"data_offsets\" is not [begin, end] (two integers >= 0)",
                   label, name);
    SMOE_RETURN_IF(end < begin, SMOE_ERR_CORRUPT_FILE, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                   ") end before begin", label, name, begin, end);
    char sbuf[160];
    SMOE_RETURN_IF(end - begin != nbytes, SMOE_ERR_CORRUPT_FILE,
                   "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 ") hold %" PRIu64
                   " bytes but dtype %s and shape %s need %" PRIu64,
                   label, name, begin, end, end - begin, dtypes[dt].name, shape_str(t, sbuf, sizeof(sbuf)), nbytes);
    uint64_t abs_end;
    SMOE_RETURN_IF(smoe_add_overflow_u64(data_start, end, &abs_end) || abs_end > file_size, SMOE_ERR_CORRUPT_FILE,
                   "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 ") out of range: the data section holds %" PRIu64
                   " bytes (file truncated?)",
                   label, name, begin, end, file_size - data_start);
    t->offset = data_start + begin;
    t->size = nbytes;
    return SMOE_OK;
}

static smoe_status parse(smoe_st_file *f) {
    const char *label = f->path;
    SMOE_RETURN_IF(f->size < 8, SMOE_ERR_CORRUPT_FILE,
                   "%s: file is %" PRIu64 " bytes, too short for the 8-byte header length", label, f->size);
    const uint64_t hlen = read_le64(f->data);
    SMOE_RETURN_IF(hlen > f->size - 8, SMOE_ERR_CORRUPT_FILE,
                   "%s: header length %" PRIu64 " goes beyond the end of the file (%" PRIu64 " bytes)", label, hlen,
                   f->size);
    SMOE_RETURN_IF(hlen > SMOE_ST_MAX_HEADER, SMOE_ERR_CORRUPT_FILE,
                   "%s: header length %" PRIu64 " exceeds the format's limit of %u bytes", label, hlen,
                   SMOE_ST_MAX_HEADER);
    SMOE_RETURN_IF(hlen < 2 || f->data[8] != '{', SMOE_ERR_CORRUPT_FILE,
                   "%s: header is not a JSON object (length %" PRIu64 ")", label, hlen);
    const uint64_t data_start = 8 + hlen;

    json_error_t jerr;
    json_t *root = json_loadb((const char *)f->data + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    SMOE_RETURN_IF(!root, SMOE_ERR_CORRUPT_FILE, "%s: header JSON: %s (line %d, column %d)", label, jerr.text,
                   jerr.line, jerr.column);
    smoe_status st = SMOE_OK;
    const smoe_st_tensor **by_off = NULL;
    SMOE_GOTO_IF(!json_is_object(root), st, done, SMOE_ERR_CORRUPT_FILE, "%s: header is not a JSON object", label);

    size_t n = 0, name_bytes = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) continue;
        n++;
        name_bytes += strlen(key) + 1;
    }
    f->n_tensors = (int64_t)n;
    f->tensors = calloc(n ? n : 1, sizeof(*f->tensors));
    f->names = malloc(name_bytes ? name_bytes : 1);
    by_off = malloc((n ? n : 1) * sizeof(*by_off));
    SMOE_GOTO_IF(!f->tensors || !f->names || !by_off, st, done, SMOE_ERR_OUT_OF_MEMORY,
                 "%s: out of memory for %zu tensor entries", label, n);
    size_t i = 0, pos = 0;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            SMOE_GOTO_IF(!json_is_object(val), st, done, SMOE_ERR_CORRUPT_FILE,
                         "%s: \"__metadata__\" is not an object", label);
            continue;
        }
        smoe_st_tensor *t = &f->tensors[i];
        size_t len = strlen(key) + 1;
        memcpy(f->names + pos, key, len);
        t->name = f->names + pos;
        pos += len;
        SMOE_GOTO_TRY(st, done, parse_entry(label, val, data_start, f->size, t));
        t->data = f->data + t->offset;
        t->mapped = f->mapped;
        by_off[i] = t;
        i++;
    }

    /* No two tensors may share bytes (empty tensors occupy none). */
    qsort(by_off, n, sizeof(*by_off), cmp_ptr_offset);
    const smoe_st_tensor *prev = NULL;
    for (size_t k = 0; k < n; k++) {
        const smoe_st_tensor *t = by_off[k];
        if (t->size == 0) continue;
        SMOE_GOTO_IF(prev && t->offset < prev->offset + prev->size, st, done, SMOE_ERR_CORRUPT_FILE,
                     "%s: tensors '%s' [%" PRIu64 ", %" PRIu64 ") and '%s' [%" PRIu64 ", %" PRIu64 ") overlap", label,
                     prev->name, prev->offset - data_start, prev->offset - data_start + prev->size, t->name,
                     t->offset - data_start, t->offset - data_start + t->size);
        prev = t;
    }
    qsort(f->tensors, n, sizeof(*f->tensors), cmp_tensor_name);
    /* The names of a file are unique (JSON_REJECT_DUPLICATES); the data pointers moved with the structs. */
done:
    free(by_off);
    json_decref(root);
    return st;
}

static smoe_status file_new(const char *label, smoe_st_file **out) {
    smoe_st_file *f = calloc(1, sizeof(*f));
    SMOE_RETURN_IF(!f, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    f->path = strdup(label ? label : "<memory>");
    if (!f->path) {
        free(f);
        return smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    }
    *out = f;
    return SMOE_OK;
}

smoe_status smoe_st_open_memory(const void *data, size_t size, const char *label, smoe_st_file **out) {
    SMOE_RETURN_IF(!out || (!data && size), SMOE_ERR_INVALID_ARGUMENT, "smoe_st_open_memory: NULL argument");
    *out = NULL;
    smoe_st_file *f;
    SMOE_TRY(file_new(label, &f));
    f->data = data;
    f->size = size;
    smoe_status st = parse(f);
    if (st != SMOE_OK) {
        smoe_st_close(f);
        return st;
    }
    *out = f;
    return SMOE_OK;
}

smoe_status smoe_st_open(const char *path, smoe_st_file **out) {
    SMOE_RETURN_IF(!path || !out, SMOE_ERR_INVALID_ARGUMENT, "smoe_st_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    SMOE_RETURN_IF(fd < 0, SMOE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        int e = errno;
        close(fd);
        return smoe_set_error(SMOE_ERR_IO, "%s: not a regular file%s%s", path, e ? ": " : "", e ? strerror(e) : "");
    }
    smoe_st_file *f;
    smoe_status st = file_new(path, &f);
    if (st != SMOE_OK) {
        close(fd);
        return st;
    }
    f->size = (uint64_t)sb.st_size;
    if (f->size > 0) {
        if ((uint64_t)(size_t)f->size != f->size) {
            close(fd);
            smoe_st_close(f);
            return smoe_set_error(SMOE_ERR_IO, "%s: too large to map", path);
        }
        void *p = mmap(NULL, (size_t)f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            smoe_st_close(f);
            return smoe_set_error(SMOE_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
        }
        f->data = p;
        f->mapped = true;
    }
    close(fd);
    st = parse(f);
    if (st != SMOE_OK) {
        smoe_st_close(f);
        return st;
    }
    *out = f;
    return SMOE_OK;
}

void smoe_st_close(smoe_st_file *f) {
    if (!f) return;
    if (f->mapped && f->data) munmap((void *)(uintptr_t)f->data, (size_t)f->size);
    free(f->tensors);
    free(f->names);
    free(f->path);
    free(f);
}

int64_t smoe_st_n_tensors(const smoe_st_file *f) { return f->n_tensors; }

const smoe_st_tensor *smoe_st_tensor_at(const smoe_st_file *f, int64_t i) {
    return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const smoe_st_tensor *smoe_st_find(const smoe_st_file *f, const char *name) {
    smoe_st_tensor key = {.name = name};
    return bsearch(&key, f->tensors, (size_t)f->n_tensors, sizeof(*f->tensors), cmp_tensor_name);
}

const char *smoe_st_path(const smoe_st_file *f) { return f->path; }
uint64_t    smoe_st_file_size(const smoe_st_file *f) { return f->size; }

/* ---- hints ---- */

/* The pages that hold any byte of the tensor. */
static void page_range(const smoe_st_tensor *t, uintptr_t *lo, uintptr_t *hi) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t b = (uintptr_t)t->data, e = b + (uintptr_t)t->size;
    *lo = b & ~(page - 1);
    *hi = (e + page - 1) & ~(page - 1);
}

void smoe_st_prefetch(const smoe_st_tensor *t) {
    if (!t || !t->mapped || !t->size) return;
    uintptr_t lo, hi;
    page_range(t, &lo, &hi);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_WILLNEED);
}

void smoe_st_release(const smoe_st_tensor *t) {
    if (!t || !t->mapped || !t->size) return;
    uintptr_t lo, hi;
    /* The mapping is private and read-only: dropping pages only means they are read again if touched. Whole pages
     * are released, including those shared with neighbours, which costs at most a re-read of one page. */
    page_range(t, &lo, &hi);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* ---- sets ---- */

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* A file name from the index must name a file in the folder: no separators, not "." or "..". */
static bool plain_file_name(const char *s) {
    return s[0] && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static void free_strs(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* The shard names from the index (sorted, unique), and the parsed index (kept for the weight_map check). */
static smoe_status index_shards(const char *index_path, json_t **index_out, char ***names_out, size_t *n_out) {
    json_error_t jerr;
    json_t *index = json_load_file(index_path, JSON_REJECT_DUPLICATES, &jerr);
    SMOE_RETURN_IF(!index, SMOE_ERR_CORRUPT_FILE, "%s: %s (line %d, column %d)", index_path, jerr.text, jerr.line,
                   jerr.column);
    const json_t *wm = json_object_get(index, "weight_map");
    if (!json_is_object(wm)) {
        json_decref(index);
        return smoe_set_error(SMOE_ERR_CORRUPT_FILE, "%s: no \"weight_map\" object", index_path);
    }
    size_t cap = json_object_size(wm), n = 0;
    char **names = calloc(cap ? cap : 1, sizeof(*names));
    if (!names) {
        json_decref(index);
        return smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    }
    const char *key;
    json_t *val;
    smoe_status st = SMOE_OK;
    json_object_foreach((json_t *)wm, key, val) {
        if (!json_is_string(val) || !plain_file_name(json_string_value(val))) {
            st = smoe_set_error(SMOE_ERR_CORRUPT_FILE, "%s: weight_map[\"%s\"] is not a file name in the folder",
                                index_path, key);
            break;
        }
        if (!(names[n] = strdup(json_string_value(val)))) {
            st = smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        n++;
    }
    if (st == SMOE_OK && n == 0) st = smoe_set_error(SMOE_ERR_CORRUPT_FILE, "%s: empty weight_map", index_path);
    if (st != SMOE_OK) {
        free_strs(names, n);
        json_decref(index);
        return st;
    }
    /* sorted, each shard once */
    qsort(names, n, sizeof(*names), cmp_str);
    size_t u = 1;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(names[i], names[u - 1])) names[u++] = names[i];
        else free(names[i]);
    }
    n = u;
    *index_out = index;
    *names_out = names;
    *n_out = n;
    return SMOE_OK;
}

static smoe_status dir_shards(const char *dir, char ***names_out, size_t *n_out) {
    DIR *d = opendir(dir);
    SMOE_RETURN_IF(!d, SMOE_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    size_t n = 0, cap = 8;
    char **names = malloc(cap * sizeof(*names));
    smoe_status st = names ? SMOE_OK : smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    struct dirent *e;
    while (st == SMOE_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !ends_with(e->d_name, ".safetensors")) continue;
        if (n == cap) {
            char **nn = realloc(names, 2 * cap * sizeof(*names));
            if (!nn) {
                st = smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "out of memory");
                break;
            }
            names = nn;
            cap *= 2;
        }
        if (!(names[n] = strdup(e->d_name))) st = smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "out of memory");
        else n++;
    }
    closedir(d);
    if (st == SMOE_OK && n == 0) st = smoe_set_error(SMOE_ERR_IO, "%s: no *.safetensors files", dir);
    if (st != SMOE_OK) {
        free_strs(names, n);
        return st;
    }
    qsort(names, n, sizeof(*names), cmp_str);
    *names_out = names;
    *n_out = n;
    return SMOE_OK;
}

smoe_status smoe_st_set_open(const char *dir, smoe_st_set **out) {
    SMOE_RETURN_IF(!dir || !out, SMOE_ERR_INVALID_ARGUMENT, "smoe_st_set_open: NULL argument");
    *out = NULL;
    smoe_status st = SMOE_OK;
    json_t *index = NULL;
    char **names = NULL;
    size_t n_names = 0;
    smoe_st_set *s = calloc(1, sizeof(*s));
    char *index_path = path_join(dir, "model.safetensors.index.json");
    SMOE_GOTO_IF(!s || !index_path, st, fail, SMOE_ERR_OUT_OF_MEMORY, "out of memory");

    if (access(index_path, F_OK) == 0) {
        SMOE_GOTO_TRY(st, fail, index_shards(index_path, &index, &names, &n_names));
    } else {
        SMOE_GOTO_TRY(st, fail, dir_shards(dir, &names, &n_names));
    }
    s->files = calloc(n_names, sizeof(*s->files));
    SMOE_GOTO_IF(!s->files, st, fail, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < n_names; i++) {
        char *p = path_join(dir, names[i]);
        SMOE_GOTO_IF(!p, st, fail, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
        st = smoe_st_open(p, &s->files[i]);
        free(p);
        if (st != SMOE_OK) {
            if (index) smoe_error_prefix("shard %zu of %zu listed in model.safetensors.index.json", i + 1, n_names);
            goto fail;
        }
        s->n_files++;
        s->n_tensors += s->files[i]->n_tensors;
        for (int64_t k = 0; k < s->files[i]->n_tensors; k++) s->files[i]->tensors[k].shard = (uint32_t)i;
    }

    s->tensors = malloc((size_t)(s->n_tensors ? s->n_tensors : 1) * sizeof(*s->tensors));
    SMOE_GOTO_IF(!s->tensors, st, fail, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    int64_t k = 0;
    for (uint32_t i = 0; i < s->n_files; i++)
        for (int64_t j = 0; j < s->files[i]->n_tensors; j++) {
            s->tensors[k++] = &s->files[i]->tensors[j];
            s->data_bytes += s->files[i]->tensors[j].size;
        }
    qsort(s->tensors, (size_t)s->n_tensors, sizeof(*s->tensors), cmp_tensor_ptr_name);
    for (int64_t j = 1; j < s->n_tensors; j++) {
        SMOE_GOTO_IF(!strcmp(s->tensors[j - 1]->name, s->tensors[j]->name), st, fail, SMOE_ERR_CORRUPT_FILE,
                     "%s: tensor '%s' is in two shards: %s and %s", dir, s->tensors[j]->name,
                     names[s->tensors[j - 1]->shard], names[s->tensors[j]->shard]);
    }

    if (index) { /* every tensor the index names must be in the shard it names */
        const char *key;
        json_t *val;
        json_object_foreach(json_object_get(index, "weight_map"), key, val) {
            const smoe_st_tensor *t = smoe_st_set_find(s, key);
            const char *want = json_string_value(val);
            SMOE_GOTO_IF(!t, st, fail, SMOE_ERR_CORRUPT_FILE,
                         "%s: tensor '%s' is missing: model.safetensors.index.json places it in %s, which does not "
                         "hold it (incomplete shard?)",
                         dir, key, want);
            SMOE_GOTO_IF(strcmp(names[t->shard], want), st, fail, SMOE_ERR_CORRUPT_FILE,
                         "%s: tensor '%s' is in %s, but model.safetensors.index.json places it in %s", dir, key,
                         names[t->shard], want);
        }
    }
    free_strs(names, n_names);
    json_decref(index);
    free(index_path);
    *out = s;
    return SMOE_OK;
fail:
    free_strs(names, n_names);
    json_decref(index);
    free(index_path);
    smoe_st_set_close(s);
    return st;
}

void smoe_st_set_close(smoe_st_set *s) {
    if (!s) return;
    for (uint32_t i = 0; i < s->n_files; i++) smoe_st_close(s->files[i]);
    free(s->files);
    free(s->tensors);
    free(s);
}

int64_t smoe_st_set_n_tensors(const smoe_st_set *s) { return s->n_tensors; }

const smoe_st_tensor *smoe_st_set_tensor_at(const smoe_st_set *s, int64_t i) {
    return i >= 0 && i < s->n_tensors ? s->tensors[i] : NULL;
}

const smoe_st_tensor *smoe_st_set_find(const smoe_st_set *s, const char *name) {
    smoe_st_tensor key = {.name = name};
    const smoe_st_tensor *kp = &key;
    const smoe_st_tensor *const *r =
        bsearch(&kp, s->tensors, (size_t)s->n_tensors, sizeof(*s->tensors), cmp_tensor_ptr_name);
    return r ? *r : NULL;
}

uint32_t            smoe_st_set_n_files(const smoe_st_set *s) { return s->n_files; }
const smoe_st_file *smoe_st_set_file(const smoe_st_set *s, uint32_t i) { return i < s->n_files ? s->files[i] : NULL; }
uint64_t            smoe_st_set_data_bytes(const smoe_st_set *s) { return s->data_bytes; }
