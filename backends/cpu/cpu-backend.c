/*
 * cpu-backend.c - the CPU backend's vtable: host buffers, synchronous copies, and op dispatch to the reference
 * kernels in ops-*.c. Every op in ops.def has an entry here (the _Static_assert in ops.h guards additions).
 */
#include "cpu-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CPU_ALIGNMENT 64

static const smoe_cpu_kernel cpu_kernels[SMOE_OP_COUNT] = {
    [SMOE_OP_NONE] = NULL,
    [SMOE_OP_VIEW] = NULL,
    [SMOE_OP_GET_ROWS] = smoe_cpu_get_rows,
    [SMOE_OP_RMS_NORM] = smoe_cpu_rms_norm,
    [SMOE_OP_MUL_MAT] = smoe_cpu_mul_mat,
    [SMOE_OP_MUL_MAT_ID] = smoe_cpu_mul_mat_id,
    [SMOE_OP_ROPE] = smoe_cpu_rope,
    [SMOE_OP_KV_WRITE] = smoe_cpu_kv_write,
    [SMOE_OP_ATTENTION] = smoe_cpu_attention,
    [SMOE_OP_MOE_ROUTE] = smoe_cpu_moe_route,
    [SMOE_OP_MOE_COMBINE] = smoe_cpu_moe_combine,
    [SMOE_OP_SWIGLU] = smoe_cpu_swiglu,
    [SMOE_OP_ADD] = smoe_cpu_add,
    [SMOE_OP_MUL] = smoe_cpu_mul,
    [SMOE_OP_SCALE] = smoe_cpu_scale,
    [SMOE_OP_CPY] = smoe_cpu_cpy,
};

smoe_status smoe_cpu_work_reserve(smoe_cpu_ctx *ctx, size_t size) {
    if (ctx->work_size >= size) return SMOE_OK;
    size = (size + CPU_ALIGNMENT - 1) & ~(size_t)(CPU_ALIGNMENT - 1);
    void *p = aligned_alloc(CPU_ALIGNMENT, size);
    SMOE_RETURN_IF(!p, SMOE_ERR_OUT_OF_MEMORY, "cpu: scratch of %zu bytes", size);
    free(ctx->work);
    ctx->work = p;
    ctx->work_size = size;
    return SMOE_OK;
}

static const char *cpu_name(smoe_backend *b) { return ((smoe_cpu_ctx *)b->ctx)->name; }

static void cpu_get_props(smoe_backend *b, smoe_backend_props *props) {
    smoe_cpu_ctx *ctx = b->ctx;
    props->name = ctx->name;
    props->description = ctx->description;
    props->host_memory = true;
    props->alignment = CPU_ALIGNMENT;
    long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    props->memory_total = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
    props->memory_free = avail > 0 && psz > 0 ? (uint64_t)avail * (uint64_t)psz : 0;
    props->n_threads = ctx->n_threads;
}

static bool readable(const smoe_tensor *t) {
    const smoe_type_traits *tr = smoe_type_get_traits(t->type);
    return tr && tr->to_f32 && smoe_tensor_rows_contiguous(t);
}

static bool cpu_supports_op(smoe_backend *b, const smoe_tensor *node) {
    (void)b;
    if ((int)node->op < 0 || node->op >= SMOE_OP_COUNT) return false;
    if (node->op == SMOE_OP_NONE || node->op == SMOE_OP_VIEW) return true;
    if (!cpu_kernels[node->op]) return false;
    switch (node->op) {
    case SMOE_OP_GET_ROWS:
    case SMOE_OP_MUL_MAT:
    case SMOE_OP_MUL_MAT_ID: return readable(node->src[0]);
    case SMOE_OP_ATTENTION: return readable(node->src[1]) && readable(node->src[2]);
    case SMOE_OP_KV_WRITE: {
        const smoe_type_traits *tr = smoe_type_get_traits(node->src[0]->type);
        return tr && tr->from_f32 && smoe_tensor_is_contiguous(node->src[0]);
    }
    case SMOE_OP_CPY: {
        const smoe_type_traits *tr = smoe_type_get_traits(node->type);
        return readable(node->src[0]) && tr && tr->from_f32;
    }
    default: return true;
    }
}

static smoe_status cpu_buffer_alloc(smoe_backend *b, smoe_buffer *buf) {
    (void)b;
    size_t size = buf->size ? buf->size : 1;
    SMOE_RETURN_IF(size > SIZE_MAX - CPU_ALIGNMENT, SMOE_ERR_OUT_OF_MEMORY, "cpu: buffer of %zu bytes", size);
    size = (size + CPU_ALIGNMENT - 1) & ~(size_t)(CPU_ALIGNMENT - 1);
    void *p = aligned_alloc(CPU_ALIGNMENT, size);
    SMOE_RETURN_IF(!p, SMOE_ERR_OUT_OF_MEMORY, "cpu: buffer of %zu bytes", buf->size);
    buf->base = p;
    buf->alignment = CPU_ALIGNMENT;
    return SMOE_OK;
}

static smoe_status cpu_buffer_from_host_ptr(smoe_backend *b, smoe_buffer *buf, void *ptr) {
    (void)b;
    buf->base = ptr;
    return SMOE_OK;
}

static void cpu_buffer_free(smoe_backend *b, smoe_buffer *buf) {
    (void)b;
    if (!buf->borrowed) free(buf->base);
    buf->base = NULL;
}

static smoe_status cpu_buffer_clear(smoe_backend *b, smoe_buffer *buf, uint8_t value) {
    (void)b;
    if (buf->size) memset(buf->base, value, buf->size);
    return SMOE_OK;
}

static smoe_status cpu_tensor_set(smoe_backend *b, smoe_tensor *t, const void *data, size_t offset, size_t size) {
    (void)b;
    memcpy((char *)t->data + offset, data, size);
    return SMOE_OK;
}

static smoe_status cpu_tensor_get(smoe_backend *b, const smoe_tensor *t, void *data, size_t offset, size_t size) {
    (void)b;
    memcpy(data, (const char *)t->data + offset, size);
    return SMOE_OK;
}

static smoe_status cpu_compute(smoe_backend *b, const smoe_split *split) {
    smoe_cpu_ctx *ctx = b->ctx;
    ctx->epoch++;
    for (int i = 0; i < split->n_nodes; i++) {
        const smoe_tensor *n = split->nodes[i];
        if (n->op == SMOE_OP_NONE || n->op == SMOE_OP_VIEW) continue;
        smoe_cpu_kernel k = ((int)n->op >= 0 && n->op < SMOE_OP_COUNT) ? cpu_kernels[n->op] : NULL;
        SMOE_RETURN_IF(!k, SMOE_ERR_UNSUPPORTED, "cpu: no kernel for %s (%s)", smoe_op_name(n->op), n->name);
        SMOE_RETURN_IF(!n->data, SMOE_ERR_INVALID_ARGUMENT, "cpu: %s has no memory", n->name);
        smoe_status st = k(ctx, n);
        if (st != SMOE_OK) {
            smoe_error_prefix("%s (%s)", n->name, smoe_op_name(n->op));
            return st;
        }
    }
    return SMOE_OK;
}

static void cpu_free(smoe_backend *b) {
    if (!b) return;
    smoe_cpu_ctx *ctx = b->ctx;
    if (ctx) {
        smoe_threadpool_free(ctx->pool);
        free(ctx->work);
        free(ctx->xq.buf);
        free(ctx->packed.buf);
        free(ctx->gemv.buf);
        free(ctx);
    }
    free(b);
}

static const struct smoe_backend_i cpu_iface = {
    .name = cpu_name,
    .get_props = cpu_get_props,
    .supports_op = cpu_supports_op,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_from_host_ptr = cpu_buffer_from_host_ptr,
    .buffer_free = cpu_buffer_free,
    .buffer_clear = cpu_buffer_clear,
    .tensor_set_async = cpu_tensor_set,
    .tensor_get_async = cpu_tensor_get,
    .compute = cpu_compute,
    .synchronize = NULL,
    .free = cpu_free,
};

smoe_cpu_params smoe_cpu_default_params(void) {
    smoe_cpu_params p = {.n_threads = 0, .name = NULL, .isa = SMOE_CPU_ISA_AUTO};
    return p;
}

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

smoe_status smoe_cpu_backend_set_n_threads(smoe_backend *b, int n_threads) {
    SMOE_RETURN_IF(!smoe_backend_is_cpu(b), SMOE_ERR_INVALID_ARGUMENT, "cpu: not a CPU backend");
    SMOE_RETURN_IF(n_threads < 1 || n_threads > 1024, SMOE_ERR_INVALID_ARGUMENT, "cpu: n_threads %d not in 1..1024",
                   n_threads);
    smoe_cpu_ctx *ctx = b->ctx;
    if (ctx->pool && ctx->n_threads == n_threads) return SMOE_OK;
    smoe_threadpool *pool = NULL;
    SMOE_TRY(smoe_threadpool_init(n_threads, &pool));
    smoe_threadpool_free(ctx->pool);
    ctx->pool = pool;
    ctx->n_threads = n_threads;
    snprintf(ctx->description, sizeof(ctx->description), "CPU, %d thread%s, %s", n_threads, n_threads == 1 ? "" : "s",
             ctx->kern ? ctx->kern->name : "scalar");
    return SMOE_OK;
}

smoe_status smoe_cpu_backend_init(const smoe_cpu_params *params, smoe_backend **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "cpu: out is NULL");
    *out = NULL;
    smoe_cpu_params p = params ? *params : smoe_cpu_default_params();
    SMOE_RETURN_IF(p.n_threads < 0 || p.n_threads > 1024, SMOE_ERR_INVALID_ARGUMENT,
                   "cpu: n_threads %d not in 0..1024", p.n_threads);
    smoe_backend *b = calloc(1, sizeof(*b));
    smoe_cpu_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!b || !ctx) {
        free(b);
        free(ctx);
        return smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "cpu: out of memory");
    }
    b->api_version = SMOE_BACKEND_API_VERSION;
    b->iface = cpu_iface;
    b->ctx = ctx;
    ctx->kern = smoe_cpu_kernels_get((smoe_cpu_isa)p.isa);
    if (!ctx->kern) {
        cpu_free(b);
        return smoe_set_error(SMOE_ERR_UNSUPPORTED, "cpu: instruction set %d (%s) not available on this CPU or build",
                              p.isa, smoe_cpu_isa_name((smoe_cpu_isa)p.isa));
    }
    snprintf(ctx->name, sizeof(ctx->name), "%s", p.name ? p.name : "cpu");
    smoe_status st = smoe_cpu_backend_set_n_threads(b, p.n_threads ? p.n_threads : online_cpus());
    if (st != SMOE_OK) {
        cpu_free(b);
        return st;
    }
    *out = b;
    return SMOE_OK;
}

bool smoe_backend_is_cpu(smoe_backend *b) { return b && b->iface.compute == cpu_compute; }
