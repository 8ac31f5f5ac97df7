/*
 * backend-impl.h - the interface a backend implements (modeled on ggml-backend-impl.h).
 *
 * A backend fills a struct smoe_backend_i and returns a struct smoe_backend from its init function, which is listed
 * in the registry (core/backend.c). The generic wrappers in core/backend.c check arguments and bounds before calling
 * the vtable, so implementations may assume: tensors are bound to a buffer of this backend, ranges are in bounds,
 * nodes passed to compute() were accepted by supports_op().
 *
 * Every function returns errors as smoe_status with the message set (SMOE_ERR_DEVICE with the API's error name,
 * SMOE_ERR_OUT_OF_MEMORY for allocations); none may abort, exit or print.
 */
#ifndef SMOE_BACKEND_IMPL_H
#define SMOE_BACKEND_IMPL_H

#include "backend.h"

#define SMOE_BACKEND_API_VERSION 1

/* A run of consecutive graph nodes that one backend executes (made by the scheduler, core/sched.c).
 * Before compute() is called the scheduler has copied every input that lives on another backend into a tensor of
 * this backend, and the nodes' src pointers already point at those copies; the nodes' outputs are bound.
 * Nodes appear in execution order. VIEW nodes are left out (they need no work; their data is set). */
typedef struct smoe_split {
    int            backend_id; /* index in the scheduler's backend list */
    smoe_backend  *backend;
    smoe_tensor  **nodes;
    int            n_nodes;
    smoe_tensor  **inputs;     /* tensors living on other backends that this split reads ... */
    smoe_tensor  **copies;     /* ... and their copies on this backend (same shape and type, contiguous) */
    int            n_inputs;
    uint64_t       stamp;      /* new (process-wide) each time the scheduler binds the graph's tensors to memory,
                                  0 never: a backend may keep what it derived from the split while it is unchanged */
} smoe_split;

struct smoe_backend_i {
    /* Short id, stable for the backend's lifetime ("cpu", "cuda0"). */
    const char *(*name)(smoe_backend *b);
    void (*get_props)(smoe_backend *b, smoe_backend_props *props);

    /* Whether compute() handles this node (op, source types, shapes, strides). Must not fail or allocate. */
    bool (*supports_op)(smoe_backend *b, const smoe_tensor *node);

    /* Allocates device memory for buf (size, alignment already set by the caller): sets buf->base and buf->ctx. */
    smoe_status (*buffer_alloc)(smoe_backend *b, smoe_buffer *buf);
    /* (optional) wraps host memory [ptr, ptr + buf->size): sets base/ctx. default: SMOE_ERR_UNSUPPORTED */
    smoe_status (*buffer_from_host_ptr)(smoe_backend *b, smoe_buffer *buf, void *ptr);
    /* Releases what buffer_alloc / buffer_from_host_ptr acquired (not the struct itself). */
    void (*buffer_free)(smoe_backend *b, smoe_buffer *buf);
    /* (optional) fills the buffer with a byte. default: tensor_set of a host block, chunk by chunk */
    smoe_status (*buffer_clear)(smoe_backend *b, smoe_buffer *buf, uint8_t value);

    /* Copies between host memory and bytes [offset, offset + size) of t's memory (from t->data). May return before
     * the copy is done (the host memory must then stay valid until synchronize). */
    smoe_status (*tensor_set_async)(smoe_backend *b, smoe_tensor *t, const void *data, size_t offset, size_t size);
    smoe_status (*tensor_get_async)(smoe_backend *b, const smoe_tensor *t, void *data, size_t offset, size_t size);

    /* Executes the split's nodes in order. May return before they finish (then synchronize waits). */
    smoe_status (*compute)(smoe_backend *b, const smoe_split *split);
    /* (optional) waits for queued work. default: nothing to wait for */
    smoe_status (*synchronize)(smoe_backend *b);

    /* Releases the backend and its ctx, and the struct smoe_backend itself. */
    void (*free)(smoe_backend *b);
};

struct smoe_backend {
    uint32_t              api_version; /* SMOE_BACKEND_API_VERSION */
    struct smoe_backend_i iface;
    void                 *ctx;
};

#endif /* SMOE_BACKEND_IMPL_H */
