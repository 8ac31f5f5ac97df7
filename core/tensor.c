/*
 * tensor.c - tensor layout, naming, shape helpers, and the op tables generated from ops.def.
 */
#include "tensor.h"

#include "backend.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- op tables ---- */

static const char *const op_names[SMOE_OP_COUNT] = {
#define SMOE_OP(ENUM, member, n_src, params_type) [SMOE_OP_##ENUM] = #ENUM,
#include "ops.def"
#undef SMOE_OP
};

static const int op_n_src[SMOE_OP_COUNT] = {
#define SMOE_OP(ENUM, member, n_src, params_type) [SMOE_OP_##ENUM] = n_src,
#include "ops.def"
#undef SMOE_OP
};

#define SMOE_OP(ENUM, member, n_src, params_type)                                                                     \
    _Static_assert((n_src) >= 0 && (n_src) <= SMOE_MAX_SRC, #ENUM ": n_src out of range");                          \
    _Static_assert(sizeof(params_type) <= 32, #ENUM ": params too large");
#include "ops.def"
#undef SMOE_OP

const char *smoe_op_name(smoe_op op) {
    if ((int)op < 0 || op >= SMOE_OP_COUNT) return "UNKNOWN";
    return op_names[op];
}

int smoe_op_n_src(smoe_op op) {
    if ((int)op < 0 || op >= SMOE_OP_COUNT) return -1;
    return op_n_src[op];
}

int smoe_op_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < SMOE_OP_COUNT; i++)
        if (strcasecmp(op_names[i], name) == 0) return i;
    return -1;
}

/* ---- layout ---- */

smoe_status smoe_tensor_init_layout(smoe_tensor *t, smoe_type type, int n_dims, const int64_t *ne) {
    SMOE_RETURN_IF(!t || !ne, SMOE_ERR_INVALID_ARGUMENT, "tensor: NULL argument");
    const smoe_type_traits *tr = smoe_type_get_traits(type);
    SMOE_RETURN_IF(!tr || tr->type_size == 0, SMOE_ERR_INVALID_ARGUMENT, "tensor: invalid type %d", (int)type);
    SMOE_RETURN_IF(n_dims < 1 || n_dims > SMOE_MAX_DIMS, SMOE_ERR_INVALID_ARGUMENT, "tensor: n_dims %d not in 1..4",
                   n_dims);
    int64_t e[SMOE_MAX_DIMS] = {1, 1, 1, 1};
    for (int i = 0; i < n_dims; i++) {
        SMOE_RETURN_IF(ne[i] < 1 || ne[i] > SMOE_MAX_NE, SMOE_ERR_INVALID_ARGUMENT,
                       "tensor: ne[%d] = %" PRId64 " out of range", i, ne[i]);
        e[i] = ne[i];
    }
    SMOE_RETURN_IF(e[0] % tr->block_size != 0, SMOE_ERR_INVALID_ARGUMENT,
                   "tensor: ne[0] = %" PRId64 " is not a multiple of the %s block size %" PRId64, e[0], tr->name,
                   tr->block_size);
    uint64_t nb = tr->type_size;
    uint64_t strides[SMOE_MAX_DIMS];
    strides[0] = nb;
    uint64_t row = 0;
    SMOE_RETURN_IF(smoe_mul_overflow_u64((uint64_t)(e[0] / tr->block_size), nb, &row), SMOE_ERR_INVALID_ARGUMENT,
                   "tensor: size overflows");
    strides[1] = row;
    for (int i = 2; i < SMOE_MAX_DIMS; i++)
        SMOE_RETURN_IF(smoe_mul_overflow_u64(strides[i - 1], (uint64_t)e[i - 1], &strides[i]),
                       SMOE_ERR_INVALID_ARGUMENT, "tensor: size overflows");
    uint64_t total = 0;
    SMOE_RETURN_IF(smoe_mul_overflow_u64(strides[3], (uint64_t)e[3], &total) || total > SIZE_MAX / 2,
                   SMOE_ERR_INVALID_ARGUMENT, "tensor: size overflows");
    t->type = type;
    t->n_dims = n_dims;
    for (int i = 0; i < SMOE_MAX_DIMS; i++) {
        t->ne[i] = e[i];
        t->nb[i] = (size_t)strides[i];
    }
    return SMOE_OK;
}

smoe_status smoe_tensor_new(smoe_arena *arena, smoe_type type, int n_dims, const int64_t *ne, smoe_tensor **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "tensor: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!arena, SMOE_ERR_INVALID_ARGUMENT, "tensor: arena is NULL");
    smoe_tensor tmp;
    memset(&tmp, 0, sizeof(tmp));
    SMOE_TRY(smoe_tensor_init_layout(&tmp, type, n_dims, ne));
    smoe_tensor *t = smoe_arena_alloc(arena, sizeof(*t));
    SMOE_RETURN_IF(!t, SMOE_ERR_OUT_OF_MEMORY, "tensor: out of memory");
    *t = tmp;
    t->op = SMOE_OP_NONE;
    t->index = -1;
    t->backend_id = -1;
    *out = t;
    return SMOE_OK;
}

smoe_status smoe_tensor_bind(smoe_tensor *t, smoe_buffer *buffer, size_t offset) {
    SMOE_RETURN_IF(!t || !buffer, SMOE_ERR_INVALID_ARGUMENT, "tensor bind: NULL argument");
    SMOE_RETURN_IF(t->view_src, SMOE_ERR_INVALID_ARGUMENT, "tensor bind: %s is a view", t->name);
    size_t n = smoe_tensor_nbytes(t);
    SMOE_RETURN_IF(offset > buffer->size || n > buffer->size - offset, SMOE_ERR_INVALID_ARGUMENT,
                   "tensor bind: %s (%zu bytes at offset %zu) does not fit in a buffer of %zu bytes", t->name, n,
                   offset, buffer->size);
    SMOE_RETURN_IF(buffer->alignment > 1 && offset % buffer->alignment != 0, SMOE_ERR_INVALID_ARGUMENT,
                   "tensor bind: %s offset %zu not aligned to %zu", t->name, offset, buffer->alignment);
    t->buffer = buffer;
    t->data = (char *)buffer->base + offset;
    return SMOE_OK;
}

smoe_tensor *smoe_tensor_set_name(smoe_tensor *t, const char *name) {
    if (!t) return t;
    snprintf(t->name, sizeof(t->name), "%s", name ? name : "");
    return t;
}

smoe_tensor *smoe_tensor_format_name(smoe_tensor *t, const char *fmt, ...) {
    if (!t) return t;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof(t->name), fmt, ap);
    va_end(ap);
    return t;
}

/* ---- shape helpers ---- */

int64_t smoe_tensor_nelements(const smoe_tensor *t) { return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; }

int64_t smoe_tensor_nrows(const smoe_tensor *t) { return t->ne[1] * t->ne[2] * t->ne[3]; }

size_t smoe_tensor_row_size(const smoe_tensor *t) { return smoe_row_size(t->type, t->ne[0]); }

size_t smoe_tensor_nbytes(const smoe_tensor *t) {
    const smoe_type_traits *tr = smoe_type_get_traits(t->type);
    if (!tr) return 0;
    size_t n = smoe_tensor_row_size(t);
    for (int i = 1; i < SMOE_MAX_DIMS; i++) n += (size_t)(t->ne[i] - 1) * t->nb[i];
    return n;
}

bool smoe_tensor_rows_contiguous(const smoe_tensor *t) {
    const smoe_type_traits *tr = smoe_type_get_traits(t->type);
    return tr && t->nb[0] == tr->type_size;
}

bool smoe_tensor_is_contiguous(const smoe_tensor *t) {
    if (!smoe_tensor_rows_contiguous(t)) return false;
    size_t expect = smoe_tensor_row_size(t);
    for (int i = 1; i < SMOE_MAX_DIMS; i++) {
        if (t->ne[i] != 1 && t->nb[i] != expect) return false;
        expect *= (size_t)t->ne[i];
    }
    return true;
}

bool smoe_tensor_same_shape(const smoe_tensor *a, const smoe_tensor *b) {
    for (int i = 0; i < SMOE_MAX_DIMS; i++)
        if (a->ne[i] != b->ne[i]) return false;
    return true;
}

const char *smoe_tensor_describe(const smoe_tensor *t, char *buf, size_t size) {
    if (!buf || size == 0) return buf;
    if (!t) {
        snprintf(buf, size, "(null)");
        return buf;
    }
    snprintf(buf, size, "%s %s [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "]", t->name[0] ? t->name : "(unnamed)",
             smoe_type_name(t->type), t->ne[0], t->ne[1], t->ne[2], t->ne[3]);
    return buf;
}
