/*
 * backend.h - what users of a backend see (the model loader, the scheduler, tests): backend handles, buffers,
 * tensor upload/download, the registry of backend kinds. Implementers also read core/backend-impl.h.
 *
 * A backend is one device (the CPU, one GPU) with its own memory. Memory comes in buffers; a tensor bound to a
 * buffer (smoe_tensor_bind, or the scheduler's planner) is read and written only through its backend.
 *
 * Threads: a backend is used by one thread at a time (the thread running the scheduler). Buffers are freed before
 * the backend that made them.
 */
#ifndef SMOE_BACKEND_H
#define SMOE_BACKEND_H

#include "tensor.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct smoe_backend smoe_backend;

/* A block of backend memory. Fields are read-only outside the backend. */
typedef struct smoe_buffer {
    smoe_backend *backend;
    void         *base;      /* address tensors add their offset to (host pointer when props.host_memory) */
    size_t        size;      /* bytes */
    size_t        alignment; /* every tensor offset in it is a multiple of this */
    bool          borrowed;  /* wraps caller memory (smoe_backend_buffer_from_host_ptr): not freed by us */
    void         *ctx;       /* backend-private */
} smoe_buffer;

typedef struct smoe_backend_props {
    const char *name;          /* short id used in test output and flags: "cpu", "cpu-2", "cuda0", "vulkan0" */
    const char *description;   /* human-readable: "CPU, 16 threads", "NVIDIA H100 80GB HBM3" */
    bool        host_memory;   /* tensor data pointers are host pointers the library may read and write */
    size_t      alignment;     /* buffer / tensor offset alignment in bytes */
    uint64_t    memory_total;  /* bytes; 0 if unknown */
    uint64_t    memory_free;   /* bytes; 0 if unknown */
    int         n_threads;     /* CPU worker threads; 0 for devices */
    uint64_t    max_buffer_size; /* largest size smoe_backend_buffer_alloc accepts (a device's largest
                                    allocation); 0 = no limit beyond memory. Loaders split larger data. */
} smoe_backend_props;

const char *smoe_backend_name(smoe_backend *b);
void        smoe_backend_get_props(smoe_backend *b, smoe_backend_props *props);
/* Whether the backend can compute `node` with its sources' types and shapes. */
bool        smoe_backend_supports_op(smoe_backend *b, const smoe_tensor *node);
/* Waits for all queued transfers and computation. */
smoe_status smoe_backend_synchronize(smoe_backend *b);
void        smoe_backend_free(smoe_backend *b); /* NULL is a no-op; free its buffers first */

/* A new buffer of `size` bytes (contents undefined). SMOE_ERR_OUT_OF_MEMORY when the device has no room. */
smoe_status smoe_backend_buffer_alloc(smoe_backend *b, size_t size, smoe_buffer **out);
/* A buffer over caller memory (e.g. an mmap'd GGUF data section) that must outlive it; host-memory backends only
 * (others: SMOE_ERR_UNSUPPORTED). Its alignment is min(props.alignment, SMOE_HOST_PTR_ALIGNMENT): `ptr` and the
 * offsets of tensors bound in it must be multiples of that (GGUF's default alignment, so mmap'd files bind as
 * they are). */
#define SMOE_HOST_PTR_ALIGNMENT 32
smoe_status smoe_backend_buffer_from_host_ptr(smoe_backend *b, void *ptr, size_t size, smoe_buffer **out);
void        smoe_buffer_free(smoe_buffer *buf); /* NULL is a no-op */
/* Fills the whole buffer with a byte value (e.g. zeroing a KV cache). */
smoe_status smoe_buffer_clear(smoe_buffer *buf, uint8_t value);

/* Blocking copies between host memory and a bound tensor: bytes [offset, offset + size) counted from t->data
 * (for a non-contiguous view: raw bytes of the spanned memory). Fails with SMOE_ERR_INVALID_ARGUMENT if t is not
 * bound or the range is outside smoe_tensor_nbytes(t). */
smoe_status smoe_tensor_set(smoe_tensor *t, const void *data, size_t offset, size_t size);
smoe_status smoe_tensor_get(const smoe_tensor *t, void *data, size_t offset, size_t size);
/* Asynchronous versions: `data` must stay valid until smoe_backend_synchronize on the tensor's backend. */
smoe_status smoe_tensor_set_async(smoe_tensor *t, const void *data, size_t offset, size_t size);
smoe_status smoe_tensor_get_async(const smoe_tensor *t, void *data, size_t offset, size_t size);

/* ---- registry of backend kinds (core/backend.c; entries under #if SMOE_HAVE_<KIND>) ---- */

typedef struct smoe_backend_reg {
    const char *name;                                  /* "cpu", "cuda", "vulkan" */
    int (*device_count)(void);                         /* 0 when the kind is compiled in but no device is present */
    smoe_status (*init)(int device, smoe_backend **out); /* device in [0, device_count()) */
} smoe_backend_reg;

int                     smoe_backend_reg_count(void);
const smoe_backend_reg *smoe_backend_reg_get(int i);           /* NULL if out of range */
const smoe_backend_reg *smoe_backend_reg_find(const char *name); /* NULL if not compiled in */
/* Convenience: smoe_backend_reg_find(name)->init(device, out), with errors for an unknown name or device. */
smoe_status smoe_backend_init_by_name(const char *name, int device, smoe_backend **out);

/* ---- the CPU backend (backends/cpu) ---- */

typedef struct smoe_cpu_params {
    int         n_threads; /* 0 = number of online CPUs */
    const char *name;      /* props.name; NULL = "cpu" (tests name a second instance "cpu-2") */
    int         isa;       /* kernels: smoe_cpu_isa (backends/cpu/cpu-simd.h); 0 = the best this CPU runs,
                              SMOE_CPU_ISA_SCALAR = the plain-C reference; one the CPU lacks: SMOE_ERR_UNSUPPORTED */
} smoe_cpu_params;

smoe_cpu_params smoe_cpu_default_params(void);
/* params NULL = defaults. */
smoe_status smoe_cpu_backend_init(const smoe_cpu_params *params, smoe_backend **out);
smoe_status smoe_cpu_backend_set_n_threads(smoe_backend *b, int n_threads); /* 1..1024 */
bool        smoe_backend_is_cpu(smoe_backend *b);

#endif /* SMOE_BACKEND_H */
