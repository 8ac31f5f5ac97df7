/*
 * backend.c - argument-checking wrappers around the backend vtable, and the static registry of backend kinds.
 */
#include "backend-impl.h"
#if SMOE_HAVE_VULKAN
#include "backends/vulkan/vk-backend.h"
#endif
#if SMOE_HAVE_CUDA
#include "backends/cuda/cuda-backend.h"
#endif

#include <stdlib.h>
#include <string.h>

const char *smoe_backend_name(smoe_backend *b) { return b ? b->iface.name(b) : "(null)"; }

void smoe_backend_get_props(smoe_backend *b, smoe_backend_props *props) {
    if (!props) return;
    memset(props, 0, sizeof(*props));
    if (b) b->iface.get_props(b, props);
}

bool smoe_backend_supports_op(smoe_backend *b, const smoe_tensor *node) {
    if (!b || !node) return false;
    return b->iface.supports_op(b, node);
}

smoe_status smoe_backend_synchronize(smoe_backend *b) {
    SMOE_RETURN_IF(!b, SMOE_ERR_INVALID_ARGUMENT, "backend: NULL");
    return b->iface.synchronize ? b->iface.synchronize(b) : SMOE_OK;
}

void smoe_backend_free(smoe_backend *b) {
    if (b) b->iface.free(b);
}

static smoe_status buffer_new(smoe_backend *b, size_t size, smoe_buffer **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "buffer: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!b, SMOE_ERR_INVALID_ARGUMENT, "buffer: backend is NULL");
    SMOE_RETURN_IF(size > SIZE_MAX / 2, SMOE_ERR_OUT_OF_MEMORY, "buffer: %zu bytes is too large", size);
    smoe_buffer *buf = calloc(1, sizeof(*buf));
    SMOE_RETURN_IF(!buf, SMOE_ERR_OUT_OF_MEMORY, "buffer: out of memory");
    smoe_backend_props props;
    smoe_backend_get_props(b, &props);
    buf->backend = b;
    buf->size = size;
    buf->alignment = props.alignment ? props.alignment : 64;
    *out = buf;
    return SMOE_OK;
}

smoe_status smoe_backend_buffer_alloc(smoe_backend *b, size_t size, smoe_buffer **out) {
    smoe_buffer *buf = NULL;
    SMOE_TRY(buffer_new(b, size, &buf));
    smoe_status st = b->iface.buffer_alloc(b, buf);
    if (st != SMOE_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    return SMOE_OK;
}

smoe_status smoe_backend_buffer_from_host_ptr(smoe_backend *b, void *ptr, size_t size, smoe_buffer **out) {
    SMOE_RETURN_IF(!ptr, SMOE_ERR_INVALID_ARGUMENT, "buffer: host pointer is NULL");
    smoe_buffer *buf = NULL;
    SMOE_TRY(buffer_new(b, size, &buf));
    if (!b->iface.buffer_from_host_ptr) {
        free(buf);
        return smoe_set_error(SMOE_ERR_UNSUPPORTED, "buffer: backend %s cannot wrap host memory",
                              smoe_backend_name(b));
    }
    /* wrapped memory is laid out by its owner: GGUF aligns tensor data to 32 bytes (general.alignment), which is
     * enough for every kernel reading weights, so ask no more than that */
    if (buf->alignment > SMOE_HOST_PTR_ALIGNMENT) buf->alignment = SMOE_HOST_PTR_ALIGNMENT;
    if ((uintptr_t)ptr % buf->alignment != 0) {
        size_t al = buf->alignment;
        free(buf);
        return smoe_set_error(SMOE_ERR_INVALID_ARGUMENT, "buffer: host pointer not aligned to %zu", al);
    }
    buf->borrowed = true;
    smoe_status st = b->iface.buffer_from_host_ptr(b, buf, ptr);
    if (st != SMOE_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    return SMOE_OK;
}

void smoe_buffer_free(smoe_buffer *buf) {
    if (!buf) return;
    buf->backend->iface.buffer_free(buf->backend, buf);
    free(buf);
}

smoe_status smoe_buffer_clear(smoe_buffer *buf, uint8_t value) {
    SMOE_RETURN_IF(!buf, SMOE_ERR_INVALID_ARGUMENT, "buffer clear: NULL");
    smoe_backend *b = buf->backend;
    if (b->iface.buffer_clear) return b->iface.buffer_clear(b, buf, value);
    /* default: upload a block of the value chunk by chunk through a temporary tensor over the buffer */
    enum { CHUNK = 1 << 20 };
    uint8_t *blk = malloc(CHUNK);
    SMOE_RETURN_IF(!blk, SMOE_ERR_OUT_OF_MEMORY, "buffer clear: out of memory");
    memset(blk, value, CHUNK);
    smoe_tensor t;
    memset(&t, 0, sizeof(t));
    int64_t ne[1] = {(int64_t)buf->size};
    smoe_status st = smoe_tensor_init_layout(&t, SMOE_TYPE_I8, 1, ne);
    if (st == SMOE_OK) {
        t.buffer = buf;
        t.data = buf->base;
        for (size_t off = 0; off < buf->size && st == SMOE_OK; off += CHUNK) {
            size_t n = buf->size - off < CHUNK ? buf->size - off : CHUNK;
            st = b->iface.tensor_set_async(b, &t, blk, off, n);
            if (st == SMOE_OK) st = smoe_backend_synchronize(b);
        }
    }
    free(blk);
    return st;
}

static smoe_status check_range(const smoe_tensor *t, const void *data, size_t offset, size_t size, const char *what) {
    SMOE_RETURN_IF(!t, SMOE_ERR_INVALID_ARGUMENT, "%s: tensor is NULL", what);
    SMOE_RETURN_IF(!data && size, SMOE_ERR_INVALID_ARGUMENT, "%s: %s: data is NULL", what, t->name);
    SMOE_RETURN_IF(!t->buffer || !t->data, SMOE_ERR_INVALID_ARGUMENT, "%s: %s is not bound to a buffer", what,
                   t->name);
    size_t n = smoe_tensor_nbytes(t);
    SMOE_RETURN_IF(offset > n || size > n - offset, SMOE_ERR_INVALID_ARGUMENT,
                   "%s: %s: range [%zu, +%zu) outside its %zu bytes", what, t->name, offset, size, n);
    return SMOE_OK;
}

smoe_status smoe_tensor_set_async(smoe_tensor *t, const void *data, size_t offset, size_t size) {
    SMOE_TRY(check_range(t, data, offset, size, "tensor set"));
    if (size == 0) return SMOE_OK;
    smoe_backend *b = t->buffer->backend;
    return b->iface.tensor_set_async(b, t, data, offset, size);
}

smoe_status smoe_tensor_get_async(const smoe_tensor *t, void *data, size_t offset, size_t size) {
    SMOE_TRY(check_range(t, data, offset, size, "tensor get"));
    if (size == 0) return SMOE_OK;
    smoe_backend *b = t->buffer->backend;
    return b->iface.tensor_get_async(b, t, data, offset, size);
}

smoe_status smoe_tensor_set(smoe_tensor *t, const void *data, size_t offset, size_t size) {
    SMOE_TRY(smoe_tensor_set_async(t, data, offset, size));
    return smoe_backend_synchronize(t->buffer->backend);
}

smoe_status smoe_tensor_get(const smoe_tensor *t, void *data, size_t offset, size_t size) {
    SMOE_TRY(smoe_tensor_get_async(t, data, offset, size));
    return smoe_backend_synchronize(t->buffer->backend);
}

/* ---- registry ---- */

static int cpu_device_count(void) { return 1; }

static smoe_status cpu_init(int device, smoe_backend **out) {
    SMOE_RETURN_IF(device != 0, SMOE_ERR_INVALID_ARGUMENT, "cpu backend: device %d does not exist", device);
    return smoe_cpu_backend_init(NULL, out);
}

static const smoe_backend_reg registry[] = {
    {.name = "cpu", .device_count = cpu_device_count, .init = cpu_init},
#if SMOE_HAVE_CUDA
    {.name = "cuda", .device_count = smoe_cuda_device_count, .init = smoe_cuda_backend_init},
#endif
#if SMOE_HAVE_VULKAN
    {.name = "vulkan", .device_count = smoe_vk_device_count, .init = smoe_vk_backend_init},
#endif
};

int smoe_backend_reg_count(void) { return (int)(sizeof(registry) / sizeof(registry[0])); }

const smoe_backend_reg *smoe_backend_reg_get(int i) {
    return (i >= 0 && i < smoe_backend_reg_count()) ? &registry[i] : NULL;
}

const smoe_backend_reg *smoe_backend_reg_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < smoe_backend_reg_count(); i++)
        if (strcmp(registry[i].name, name) == 0) return &registry[i];
    return NULL;
}

smoe_status smoe_backend_init_by_name(const char *name, int device, smoe_backend **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "backend: out is NULL");
    *out = NULL;
    const smoe_backend_reg *r = smoe_backend_reg_find(name);
    SMOE_RETURN_IF(!r, SMOE_ERR_UNSUPPORTED, "backend '%s' is not compiled in", name ? name : "(null)");
    int n = r->device_count();
    SMOE_RETURN_IF(n == 0, SMOE_ERR_INVALID_ARGUMENT,
                   "backend %s: no %s device found (no driver, or no device visible to this process; `smoe info "
                   "--devices` lists what there is)",
                   r->name, r->name);
    SMOE_RETURN_IF(device < 0 || device >= n, SMOE_ERR_INVALID_ARGUMENT, "backend %s: device %d not in [0, %d)",
                   r->name, device, n);
    return r->init(device, out);
}
