/*
 * tensor.h - the tensor: up to 4 dimensions, byte strides, a type from core/types.h, and where its data lives.
 *
 * Layout (ggml's): ne[0] is the innermost dimension; nb[i] is the byte stride of dimension i. For a block type
 * (q4_0, ...) a row of ne[0] elements is ne[0]/block_size blocks: nb[0] = type_size (bytes per block),
 * nb[1] = row size, nb[i+1] = nb[i] * ne[i] when contiguous. Unused dimensions have ne = 1.
 *
 * Data: a tensor's bytes live in a backend buffer (smoe_buffer, see core/backend.h). `data` is the buffer's base
 * address plus the tensor's offset in it: a host pointer for host-memory backends (CPU), an opaque device address
 * otherwise; only the owning backend dereferences it. Graph intermediates get their `buffer`/`data` from the
 * scheduler's planner (core/sched.h); weights and KV caches are bound by their owner with smoe_tensor_bind.
 *
 * Views: a view (op VIEW or an in-place op such as KV_WRITE) has view_src = the tensor that owns the memory (never
 * itself a view: chains are collapsed) and view_offset = byte offset into it; it has no memory of its own.
 *
 * Ownership: tensor structs live in an arena (a graph's, or the model's for weights); never free one directly.
 */
#ifndef SMOE_TENSOR_H
#define SMOE_TENSOR_H

#include "arena.h"
#include "ops.h"
#include "status.h"
#include "types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMOE_MAX_DIMS     4
#define SMOE_MAX_NAME     64
/* Sanity bound on one dimension (rejects garbage shapes before any size math). */
#define SMOE_MAX_NE       ((int64_t)1 << 40)

typedef enum smoe_tensor_flag {
    SMOE_TENSOR_INPUT      = 1u << 0, /* set by the caller before compute; the planner never reuses its memory */
    SMOE_TENSOR_OUTPUT     = 1u << 1, /* read by the caller after compute; the planner never reuses its memory */
    SMOE_TENSOR_WEIGHT     = 1u << 2, /* a model weight: bound to a buffer by its owner; ops follow it (scheduler) */
    SMOE_TENSOR_PERSISTENT = 1u << 3, /* kept across graph runs (KV cache): bound by its owner, ops follow it */
} smoe_tensor_flag;

struct smoe_buffer; /* core/backend.h */
struct smoe_graph;  /* core/graph.h */

typedef struct smoe_tensor {
    smoe_type type;
    int32_t   n_dims;            /* 1..4, informational; ne[i] = 1 for i >= n_dims */
    int64_t   ne[SMOE_MAX_DIMS]; /* elements per dimension */
    size_t    nb[SMOE_MAX_DIMS]; /* byte strides */

    smoe_op            op;                /* SMOE_OP_NONE for a leaf */
    smoe_op_params     params;            /* params.<member of op> (ops.def) */
    struct smoe_tensor *src[SMOE_MAX_SRC]; /* sources; src[i] != NULL for i < smoe_op_n_src(op) */

    struct smoe_tensor *view_src;    /* the tensor owning the memory, or NULL */
    size_t              view_offset; /* bytes into view_src */

    uint32_t flags; /* smoe_tensor_flag bits */

    struct smoe_buffer *buffer; /* NULL until bound or planned */
    void               *data;   /* buffer base + offset (see above); NULL until bound or planned */

    struct smoe_graph *graph; /* the graph that created it (NULL for tensors from a plain arena) */
    int32_t            index; /* node index in its graph (-1 for leaves) */
    int32_t            backend_id; /* scheduler: index of the backend that runs this node (-1: unassigned) */

    char name[SMOE_MAX_NAME];
} smoe_tensor;

/* A new leaf tensor in `arena` (weights, KV caches: anything that outlives a graph). n_dims 1..4; every ne[i] >= 1
 * and <= SMOE_MAX_NE; ne[0] a multiple of the type's block size; the byte size must fit in size_t.
 * Returns SMOE_ERR_INVALID_ARGUMENT (message says why) or SMOE_ERR_OUT_OF_MEMORY. No buffer yet: see
 * smoe_tensor_bind. Graph inputs are made with smoe_graph_new_tensor (core/graph.h) instead. */
smoe_status smoe_tensor_new(smoe_arena *arena, smoe_type type, int n_dims, const int64_t *ne, smoe_tensor **out);

/* Fills a tensor struct (not allocated: the caller owns `t`) with a contiguous layout; same checks as above. */
smoe_status smoe_tensor_init_layout(smoe_tensor *t, smoe_type type, int n_dims, const int64_t *ne);

/* Binds a leaf to `buffer` at byte `offset` (e.g. a weight placed by the loader). The tensor must fit:
 * offset + smoe_tensor_nbytes(t) <= buffer size, and offset aligned to the buffer's alignment. */
smoe_status smoe_tensor_bind(smoe_tensor *t, struct smoe_buffer *buffer, size_t offset);

/* Copies the name (truncated to SMOE_MAX_NAME-1 bytes). Returns t. */
smoe_tensor *smoe_tensor_set_name(smoe_tensor *t, const char *name);
smoe_tensor *smoe_tensor_format_name(smoe_tensor *t, const char *fmt, ...) SMOE_PRINTF(2, 3);

static inline void smoe_tensor_set_flags(smoe_tensor *t, uint32_t flags) { t->flags |= flags; }
static inline bool smoe_tensor_has_flag(const smoe_tensor *t, smoe_tensor_flag f) { return (t->flags & f) != 0; }

/* ---- shape helpers ---- */
int64_t smoe_tensor_nelements(const smoe_tensor *t);
int64_t smoe_tensor_nrows(const smoe_tensor *t); /* ne[1]*ne[2]*ne[3] */
/* Bytes spanned by the tensor (from its first to one past its last byte, following the strides). */
size_t  smoe_tensor_nbytes(const smoe_tensor *t);
size_t  smoe_tensor_row_size(const smoe_tensor *t); /* bytes of one row of ne[0] elements */
/* True if the strides are the dense ones for ne (no gaps, no permutation). */
bool    smoe_tensor_is_contiguous(const smoe_tensor *t);
/* True if each row is dense (nb[0] is the element/block size); dims 1..3 may have any stride. */
bool    smoe_tensor_rows_contiguous(const smoe_tensor *t);
bool    smoe_tensor_same_shape(const smoe_tensor *a, const smoe_tensor *b);
/* The tensor owning the memory: t->view_src or t itself. */
static inline smoe_tensor *smoe_tensor_root(smoe_tensor *t) { return t->view_src ? t->view_src : t; }

/* "blk.0.attn_q.weight q4_0 [4096, 4096, 1, 1]" into buf (for messages). Returns buf. */
const char *smoe_tensor_describe(const smoe_tensor *t, char *buf, size_t size);

#endif /* SMOE_TENSOR_H */
