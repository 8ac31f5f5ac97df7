/*
 * cuda-backend.c - the CUDA backend's host side (C against the CUDA runtime API): device discovery, buffers
 * (cudaMalloc), asynchronous transfers through pinned staging memory, and compute(split), which launches one kernel
 * per node on the backend's stream (launchers in the .cu files, interface in cuda-kernels.h).
 *
 * Every runtime call is checked (SMOE_CUDA_TRY): cudaErrorMemoryAllocation becomes SMOE_ERR_OUT_OF_MEMORY, anything
 * else SMOE_ERR_DEVICE, with the CUDA error name and the call in the message. No static streams or handles: each
 * backend owns a ctx with its stream, staging memory and device error word.
 *
 * Ordering: everything goes through one stream, so uploads, kernels and downloads run in call order. Staging:
 * uploads up to STAGING_MAX bytes are copied into pinned memory and queued (the caller's memory is free at return);
 * downloads up to that size land in pinned memory and are copied out at synchronize; larger transfers go directly
 * through a ring of two pinned chunks (UPLOAD_CHUNK bytes each, allocated on the first large upload): the next chunk is
 * copied from the caller's memory (typically the model's mmap) while the previous one is on its way to the device,
 * an event per chunk saying when it may be refilled; the caller's memory is free at return here too. Downloads over
 * STAGING_MAX go directly (pageable memory: the runtime completes them before returning). The staging cursor resets
 * at each synchronize.
 *
 * Index errors found by kernels (see cuda-kernels.h) are read at synchronize and reported with the node's name.
 * CUDA graphs: a split whose launches (the smoe_cuda_node array) repeat unchanged is captured into a graph on its
 * second run and replayed from then on; any change to the array invalidates it (launch-cache.h has the policy, which
 * is tested without a GPU). A decode step repeats exactly: its data-dependent values live in device memory.
 * SMOE_CUDA_GRAPHS=0 launches everything directly. The int8 GEMV's quantized activations are shared between launches
 * (smoe_cuda_plan_fusion): RMS_NORM and SWIGLU write them for the GEMV that reads their result, and consecutive GEMVs
 * of those columns run as one launch (K, V, Q; gate, up), a projection's GEMV adds the residual after it, and the
 * RoPE of k writes the KV cache (with v's rows), the router's product picks the experts, the attention rotates q;
 * SMOE_CUDA_FUSE=0 launches each op on its own and leaves the quantization to the GEMV's own kernel.
 * Without a GPU this file is tested as it is against a CPU stand-in for the runtime that keeps CUDA's ordering rules
 * (tests/cuda-fake, tests/test-cuda-fake.c; the op harness and whole models run on its "cuda0").
 * Not done: registering the mmap'd file with cudaHostRegister (it would pin every page of a 26 GB file in RAM; the
 * chunk ring streams it instead), several streams to overlap host-resident expert work with the device.
 */
#include "cuda-backend.h"

#include "core/backend-impl.h"
#include "cuda-kernels.h"
#include "launch-cache.h"

#include <cuda_runtime_api.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAGING_MAX ((size_t)16 << 20)
#define UPLOAD_CHUNK ((size_t)8 << 20)

typedef struct pending_get {
    void  *dst;
    size_t staging_off;
    size_t size;
} pending_get;

typedef struct smoe_cuda_ctx {
    int          device;
    int          cc;
    int          simple;    /* $SMOE_CUDA_SIMPLE=1: the reference kernels only */
    int          graphs;    /* CUDA graphs on (default; $SMOE_CUDA_GRAPHS=0 turns them off) */
    int          fuse;      /* ops write the next int8 GEMV's columns (default; $SMOE_CUDA_FUSE=0 turns it off) */
    int          pdl;       /* programmatic dependent launch: $SMOE_CUDA_PDL=1 on Hopper and newer (off by default
                               until a GPU run shows it pays: bench/device-check.sh compares) */
    smoe_lc      lc;
    smoe_cuda_node *launches; /* the current split's launches */
    const smoe_split *built_split; /* the split c->launches describes (NULL: none), its stamp then, the position of its
                                      first node's name (n_names at the time) and its launch count */
    uint64_t     built_stamp;
    int          built_names0, built_n;
    int          cap_launches;
    void        *op_scratch; /* device scratch of ATTENTION (partial results per chunk of cells) and MUL_MAT_ID
                                  (pairs listed per expert), shared by the nodes of a split */
    size_t       op_scratch_size;
    char         name[16];
    char         description[256];
    cudaStream_t stream;
    int         *d_err;     /* device error word (cuda-kernels.h) */
    int         *h_err;     /* pinned copy */
    uint8_t     *staging;   /* pinned, STAGING_MAX bytes */
    size_t       staging_used;
    uint8_t     *ring[2];   /* pinned, UPLOAD_CHUNK bytes each: large uploads (NULL until the first) */
    cudaEvent_t  ring_ev[2];
    bool         ring_busy[2];
    pending_get *gets;
    int          n_gets, cap_gets;
    /* names of the nodes queued since the last synchronize, for index errors */
    char       (*names)[SMOE_MAX_NAME];
    int          n_names, cap_names;
} smoe_cuda_ctx;

static smoe_status cuda_error(cudaError_t e, const char *who, const char *call) {
    (void)cudaGetLastError(); /* clear a sticky non-fatal error so the next call starts clean */
    return smoe_set_error(e == cudaErrorMemoryAllocation ? SMOE_ERR_OUT_OF_MEMORY : SMOE_ERR_DEVICE, "%s: %s: %s (%s)",
                          who, call, cudaGetErrorName(e), cudaGetErrorString(e));
}

#define SMOE_CUDA_TRY(c, call)                                                                                         \
    do {                                                                                                               \
        cudaError_t e_ = (call);                                                                                       \
        if (e_ != cudaSuccess) return cuda_error(e_, (c)->name, #call);                                                \
    } while (0)

static smoe_cuda_ctx *ctx_of(smoe_backend *b) { return b->ctx; }

/* ---- device discovery ---- */

int smoe_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n > 0 ? n : 0;
}

/* ---- what the kernels handle ---- */

int smoe_cuda_type_supported(int32_t type) {
    switch (type) {
    case SMOE_CUDA_F32: case SMOE_CUDA_F16: case SMOE_CUDA_BF16: case SMOE_CUDA_Q4_0: case SMOE_CUDA_Q4_1:
    case SMOE_CUDA_Q5_0: case SMOE_CUDA_Q5_1: case SMOE_CUDA_Q8_0: case SMOE_CUDA_Q4_K: case SMOE_CUDA_Q5_K:
    case SMOE_CUDA_Q6_K:
        return 1;
    default:
        return 0;
    }
}

_Static_assert((int)SMOE_CUDA_F32 == (int)SMOE_TYPE_F32 && (int)SMOE_CUDA_F16 == (int)SMOE_TYPE_F16 && (int)SMOE_CUDA_BF16 == (int)SMOE_TYPE_BF16 &&
                   (int)SMOE_CUDA_Q4_0 == (int)SMOE_TYPE_Q4_0 && (int)SMOE_CUDA_Q4_1 == (int)SMOE_TYPE_Q4_1 &&
                   (int)SMOE_CUDA_Q5_0 == (int)SMOE_TYPE_Q5_0 && (int)SMOE_CUDA_Q5_1 == (int)SMOE_TYPE_Q5_1 &&
                   (int)SMOE_CUDA_Q8_0 == (int)SMOE_TYPE_Q8_0 && (int)SMOE_CUDA_Q4_K == (int)SMOE_TYPE_Q4_K &&
                   (int)SMOE_CUDA_Q5_K == (int)SMOE_TYPE_Q5_K && (int)SMOE_CUDA_Q6_K == (int)SMOE_TYPE_Q6_K &&
                   (int)SMOE_CUDA_I32 == (int)SMOE_TYPE_I32,
               "cuda-kernels.h type ids must equal core/types.h");

#define GRID_YZ_MAX 65535

static bool is_f32(const smoe_tensor *t) { return t->type == SMOE_TYPE_F32 && smoe_tensor_rows_contiguous(t); }
static bool is_i32(const smoe_tensor *t) { return t->type == SMOE_TYPE_I32 && smoe_tensor_rows_contiguous(t); }
static bool is_plain(smoe_type t) { return t == SMOE_TYPE_F32 || t == SMOE_TYPE_F16 || t == SMOE_TYPE_BF16; }
static bool is_weight(const smoe_tensor *t) {
    return smoe_cuda_type_supported((int32_t)t->type) && smoe_tensor_rows_contiguous(t);
}

bool smoe_cuda_supports_node(const smoe_tensor *n, int cc) {
    (void)cc; /* every kernel runs from Turing (SMOE_CC_TURING) on; BF16 is decoded with integer ops */
    if (!n || !smoe_tensor_rows_contiguous(n)) return false;
    const smoe_tensor *a = n->src[0], *b = n->src[1], *c = n->src[2];
    switch (n->op) {
    case SMOE_OP_GET_ROWS:
        return is_weight(a) && is_i32(b) && b->ne[1] == 1 && b->ne[2] == 1 && b->ne[3] == 1 && a->ne[2] == 1 &&
               a->ne[3] == 1 && b->ne[0] <= INT32_MAX && n->type == SMOE_TYPE_F32;
    case SMOE_OP_RMS_NORM:
        return is_f32(a) && is_f32(b) && smoe_tensor_is_contiguous(b) && smoe_tensor_nrows(a) <= INT32_MAX;
    case SMOE_OP_MUL_MAT:
        return is_weight(a) && a->ne[2] == 1 && a->ne[3] == 1 && is_f32(b) && b->ne[1] <= GRID_YZ_MAX &&
               b->ne[2] * b->ne[3] <= GRID_YZ_MAX && a->ne[1] / 4 < INT32_MAX;
    case SMOE_OP_MUL_MAT_ID:
        /* the tensor-core path puts the pairs' 64-column tiles in gridDim.y */
        return is_weight(a) && a->ne[3] == 1 && is_f32(b) && is_i32(c) && c->ne[0] <= GRID_YZ_MAX &&
               c->ne[1] <= GRID_YZ_MAX && c->ne[0] * c->ne[1] <= (int64_t)GRID_YZ_MAX * 64 && a->ne[1] / 4 < INT32_MAX;
    case SMOE_OP_ROPE:
        return is_f32(a) && is_i32(b) && smoe_tensor_is_contiguous(b) && a->ne[3] == 1 && a->ne[1] <= GRID_YZ_MAX &&
               a->ne[2] <= GRID_YZ_MAX;
    case SMOE_OP_KV_WRITE:
        return (is_plain(a->type) || (a->type == SMOE_TYPE_Q8_0 && a->ne[0] % 32 == 0)) &&
               smoe_tensor_is_contiguous(a) && is_f32(b) && is_i32(c) &&
               smoe_tensor_is_contiguous(c) && b->ne[1] <= GRID_YZ_MAX && b->ne[2] <= GRID_YZ_MAX;
    case SMOE_OP_ATTENTION: {
        const smoe_tensor *k = n->src[1], *v = n->src[2];
        const bool kv_ok = (k->type == v->type && (is_plain(k->type) || k->type == SMOE_TYPE_Q8_0)) ||
                           (k->type == SMOE_TYPE_F16 && v->type == SMOE_TYPE_F32) ||
                           (k->type == SMOE_TYPE_F32 && v->type == SMOE_TYPE_F16);
        return is_f32(a) && a->ne[0] <= 256 && kv_ok && smoe_tensor_rows_contiguous(k) &&
               smoe_tensor_rows_contiguous(v) && is_i32(n->src[3]) && is_i32(n->src[4]) && is_i32(n->src[5]) &&
               a->ne[1] * a->ne[2] / 4 < INT32_MAX;
    }
    case SMOE_OP_MOE_ROUTE:
        return is_f32(a) && n->type == SMOE_TYPE_I32;
    case SMOE_OP_MOE_COMBINE:
        return is_f32(a) && is_f32(b) && is_i32(c) && c->ne[1] <= GRID_YZ_MAX; /* a token per gridDim.y */
    case SMOE_OP_SWIGLU:
    case SMOE_OP_ADD:
    case SMOE_OP_MUL:
        return is_f32(a) && is_f32(b) && n->type == SMOE_TYPE_F32;
    case SMOE_OP_SCALE:
        return is_f32(a) && n->type == SMOE_TYPE_F32;
    case SMOE_OP_CPY:
        return is_weight(a) && (is_plain(n->type) || (n->type == SMOE_TYPE_Q8_0 && a->ne[0] % 32 == 0)) &&
               smoe_tensor_nrows(a) <= INT32_MAX;
    case SMOE_OP_VIEW:
    case SMOE_OP_NONE:
        return true;
    default:
        return false;
    }
}

/* ---- vtable ---- */

static const char *cuda_name(smoe_backend *b) { return ctx_of(b)->name; }

static void cuda_get_props(smoe_backend *b, smoe_backend_props *p) {
    smoe_cuda_ctx *c = ctx_of(b);
    p->name = c->name;
    p->description = c->description;
    p->host_memory = false;
    p->alignment = 256;
    size_t free_b = 0, total_b = 0;
    if (cudaSetDevice(c->device) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
        p->memory_free = free_b;
        p->memory_total = total_b;
    } else {
        (void)cudaGetLastError();
    }
    p->n_threads = 0;
    p->max_buffer_size = 0;
}

static bool cuda_supports_op(smoe_backend *b, const smoe_tensor *node) {
    return smoe_cuda_supports_node(node, ctx_of(b)->cc);
}

static smoe_status cuda_buffer_alloc(smoe_backend *b, smoe_buffer *buf) {
    smoe_cuda_ctx *c = ctx_of(b);
    SMOE_CUDA_TRY(c, cudaSetDevice(c->device));
    void *p = NULL;
    /* 16 bytes more: the int8 GEMV's aligned 32-bit loads of a Q4_0/Q8_0 block read up to 2 bytes past it
     * (gemv.cu: ld_block_a4), so a buffer's last block must not end the allocation */
    cudaError_t e = cudaMalloc(&p, buf->size + 16);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return smoe_set_error(e == cudaErrorMemoryAllocation ? SMOE_ERR_OUT_OF_MEMORY : SMOE_ERR_DEVICE,
                              "%s: cudaMalloc of %zu bytes: %s", c->name, buf->size, cudaGetErrorName(e));
    }
    buf->base = p;
    buf->alignment = 256;
    buf->ctx = p;
    return SMOE_OK;
}

static void cuda_buffer_free(smoe_backend *b, smoe_buffer *buf) {
    smoe_cuda_ctx *c = ctx_of(b);
    if (!buf->ctx) return;
    /* the memory may be in use by queued work */
    if (cudaSetDevice(c->device) != cudaSuccess || cudaStreamSynchronize(c->stream) != cudaSuccess ||
        cudaFree(buf->ctx) != cudaSuccess)
        (void)cudaGetLastError();
    buf->ctx = NULL;
    buf->base = NULL;
}

static smoe_status cuda_buffer_clear(smoe_backend *b, smoe_buffer *buf, uint8_t value) {
    smoe_cuda_ctx *c = ctx_of(b);
    SMOE_CUDA_TRY(c, cudaSetDevice(c->device));
    SMOE_CUDA_TRY(c, cudaMemsetAsync(buf->base, value, buf->size, c->stream));
    SMOE_CUDA_TRY(c, cudaStreamSynchronize(c->stream));
    return SMOE_OK;
}

/* room for `size` bytes in the staging memory: waits for queued transfers when it is full */
static smoe_status staging_take(smoe_cuda_ctx *c, size_t size, size_t *off);

static smoe_status flush_gets(smoe_cuda_ctx *c) {
    for (int i = 0; i < c->n_gets; i++) memcpy(c->gets[i].dst, c->staging + c->gets[i].staging_off, c->gets[i].size);
    c->n_gets = 0;
    c->staging_used = 0;
    return SMOE_OK;
}

static smoe_status staging_take(smoe_cuda_ctx *c, size_t size, size_t *off) {
    if (c->staging_used + size > STAGING_MAX) {
        SMOE_CUDA_TRY(c, cudaStreamSynchronize(c->stream));
        SMOE_TRY(flush_gets(c));
    }
    *off = c->staging_used;
    c->staging_used += (size + 255) & ~(size_t)255;
    return SMOE_OK;
}

static smoe_status ring_init(smoe_cuda_ctx *c) {
    for (int i = 0; i < 2; i++) {
        if (c->ring[i]) continue;
        SMOE_CUDA_TRY(c, cudaEventCreateWithFlags(&c->ring_ev[i], cudaEventDisableTiming));
        cudaError_t e = cudaMallocHost((void **)&c->ring[i], UPLOAD_CHUNK);
        if (e != cudaSuccess) {
            (void)cudaEventDestroy(c->ring_ev[i]);
            c->ring[i] = NULL;
            return cuda_error(e, c->name, "cudaMallocHost(upload chunk)");
        }
        c->ring_busy[i] = false;
    }
    return SMOE_OK;
}

/* A large upload: chunk k is copied into pinned slot k % 2 once that slot's previous transfer is done, then queued;
 * so reading the source (page faults of an mmap'd file included) overlaps the transfer of the chunk before. */
static smoe_status upload_chunked(smoe_cuda_ctx *c, uint8_t *dst, const uint8_t *src, size_t size) {
    SMOE_TRY(ring_init(c));
    int slot = 0;
    for (size_t off = 0; off < size; off += UPLOAD_CHUNK, slot ^= 1) {
        const size_t n = size - off < UPLOAD_CHUNK ? size - off : UPLOAD_CHUNK;
        if (c->ring_busy[slot]) {
            SMOE_CUDA_TRY(c, cudaEventSynchronize(c->ring_ev[slot]));
            c->ring_busy[slot] = false;
        }
        memcpy(c->ring[slot], src + off, n);
        SMOE_CUDA_TRY(c, cudaMemcpyAsync(dst + off, c->ring[slot], n, cudaMemcpyHostToDevice, c->stream));
        SMOE_CUDA_TRY(c, cudaEventRecord(c->ring_ev[slot], c->stream));
        c->ring_busy[slot] = true;
    }
    return SMOE_OK;
}

static smoe_status cuda_tensor_set(smoe_backend *b, smoe_tensor *t, const void *data, size_t offset, size_t size) {
    smoe_cuda_ctx *c = ctx_of(b);
    if (size == 0) return SMOE_OK;
    SMOE_CUDA_TRY(c, cudaSetDevice(c->device));
    uint8_t *dst = (uint8_t *)t->data + offset;
    if (size > STAGING_MAX) return upload_chunked(c, dst, data, size);
    size_t off = 0;
    SMOE_TRY(staging_take(c, size, &off));
    memcpy(c->staging + off, data, size);
    SMOE_CUDA_TRY(c, cudaMemcpyAsync(dst, c->staging + off, size, cudaMemcpyHostToDevice, c->stream));
    return SMOE_OK;
}

static smoe_status cuda_tensor_get(smoe_backend *b, const smoe_tensor *t, void *data, size_t offset, size_t size) {
    smoe_cuda_ctx *c = ctx_of(b);
    if (size == 0) return SMOE_OK;
    SMOE_CUDA_TRY(c, cudaSetDevice(c->device));
    const uint8_t *src = (const uint8_t *)t->data + offset;
    if (size > STAGING_MAX) {
        SMOE_CUDA_TRY(c, cudaMemcpyAsync(data, src, size, cudaMemcpyDeviceToHost, c->stream));
        SMOE_CUDA_TRY(c, cudaStreamSynchronize(c->stream));
        return SMOE_OK;
    }
    size_t off = 0;
    SMOE_TRY(staging_take(c, size, &off));
    if (c->n_gets == c->cap_gets) {
        const int cap = c->cap_gets ? 2 * c->cap_gets : 16;
        pending_get *g = realloc(c->gets, (size_t)cap * sizeof(*g));
        SMOE_RETURN_IF(!g, SMOE_ERR_OUT_OF_MEMORY, "%s: out of memory", c->name);
        c->gets = g;
        c->cap_gets = cap;
    }
    SMOE_CUDA_TRY(c, cudaMemcpyAsync(c->staging + off, src, size, cudaMemcpyDeviceToHost, c->stream));
    c->gets[c->n_gets++] = (pending_get){.dst = data, .staging_off = off, .size = size};
    return SMOE_OK;
}

/* launch arrays are compared with memcmp: every byte of these structs is a member (no padding) */
_Static_assert(sizeof(smoe_cuda_tensor) == 2 * sizeof(void *) + 8 * sizeof(int64_t) &&
                   sizeof(smoe_cuda_node) == 8 + 11 * sizeof(smoe_cuda_tensor) + 64 + 2 * sizeof(void *) + 8,
               "smoe_cuda_tensor / smoe_cuda_node must have no padding");

static smoe_cuda_tensor desc(const smoe_tensor *t) {
    smoe_cuda_tensor d;
    memset(&d, 0, sizeof(d));
    if (!t) return d;
    d.data = t->data;
    d.type = (int32_t)t->type;
    for (int i = 0; i < 4; i++) {
        d.ne[i] = t->ne[i];
        d.nb[i] = (int64_t)t->nb[i];
    }
    return d;
}

/* the launcher's node description; exposed to nothing else */
static void make_node(const smoe_tensor *n, int index, int cc, smoe_cuda_node *out) {
    memset(out, 0, sizeof(*out));
    out->op = (int32_t)n->op;
    out->node_index = index;
    out->cc = cc;
    out->dst = desc(n);
    for (int i = 0; i < smoe_op_n_src(n->op) && i < 6; i++) out->src[i] = desc(n->src[i]);
    switch (n->op) {
    case SMOE_OP_RMS_NORM: out->f[0] = n->params.rms_norm.eps; break;
    case SMOE_OP_ROPE:
        out->i[0] = n->params.rope.n_rot;
        out->f[0] = n->params.rope.theta_base;
        out->f[1] = n->params.rope.freq_scale;
        break;
    case SMOE_OP_ATTENTION:
        out->f[0] = n->params.attention.scale;
        out->i[2] = smoe_cuda_attention_chunks(n->src[0]->ne[1] * n->src[0]->ne[2] /
                                                   smoe_cuda_attention_group(n->src[0]->ne[1], n->src[1]->ne[1]),
                                               n->src[1]->ne[2]);
        break;
    case SMOE_OP_SCALE: out->f[0] = n->params.scale.s; break;
    case SMOE_OP_MOE_ROUTE: out->i[0] = n->params.moe_route.n_used; break;
    case SMOE_OP_ADD: out->i[1] = 0; break;
    case SMOE_OP_MUL: out->i[1] = 1; break;
    case SMOE_OP_SWIGLU: out->i[1] = 2; break;
    default: break;
    }
}

typedef int (*launcher)(const smoe_cuda_node *, void *, int *);

static launcher launcher_for(smoe_op op) {
    switch (op) {
    case SMOE_OP_GET_ROWS: return smoe_cuda_get_rows;
    case SMOE_OP_RMS_NORM: return smoe_cuda_rms_norm;
    case SMOE_OP_MUL_MAT: return smoe_cuda_mul_mat;
    case SMOE_OP_MUL_MAT_ID: return smoe_cuda_mul_mat_id;
    case SMOE_OP_ROPE: return smoe_cuda_rope;
    case SMOE_OP_KV_WRITE: return smoe_cuda_kv_write;
    case SMOE_OP_ATTENTION: return smoe_cuda_attention;
    case SMOE_OP_MOE_ROUTE: return smoe_cuda_moe_route;
    case SMOE_OP_MOE_COMBINE: return smoe_cuda_moe_combine;
    case SMOE_OP_SWIGLU:
    case SMOE_OP_ADD:
    case SMOE_OP_MUL: return smoe_cuda_binary;
    case SMOE_OP_SCALE: return smoe_cuda_scale;
    case SMOE_OP_CPY: return smoe_cuda_cpy;
    default: return NULL;
    }
}

static void destroy_exec(void *exec, void *user_data) {
    (void)user_data;
    (void)cudaGraphExecDestroy((cudaGraphExec_t)exec);
}

/* Launches the n nodes of c->launches on the stream. */
static smoe_status launch_all(smoe_cuda_ctx *c, const smoe_split *split, int n) {
    for (int k = 0, i = 0, skip = 0; i < split->n_nodes && k < n; i++) {
        const smoe_tensor *t = split->nodes[i];
        if (t->op == SMOE_OP_NONE || t->op == SMOE_OP_VIEW) continue;
        const smoe_cuda_node *nd = &c->launches[k++];
        if (skip > 0 || (nd->rope_q && nd->op == SMOE_OP_ROPE)) { /* done by an earlier launch, or the next */
            skip -= skip > 0;
            continue;
        }
        skip = nd->n_more + nd->add + nd->kv_write + (nd->route_n_used > 0);
        const int e = launcher_for(t->op)(nd, c->stream, c->d_err);
        if (e != 0) {
            char what[160];
            snprintf(what, sizeof(what), "%s (%s)", smoe_op_name(t->op), t->name);
            return cuda_error((cudaError_t)e, c->name, what);
        }
    }
    return SMOE_OK;
}

/* Captures the launches into a graph and instantiates it; NULL (and the error cleared) if anything fails. */
static cudaGraphExec_t capture(smoe_cuda_ctx *c, const smoe_split *split, int n) {
    if (cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    const smoe_status st = launch_all(c, split, n);
    cudaGraph_t       graph = NULL;
    const cudaError_t e = cudaStreamEndCapture(c->stream, &graph);
    cudaGraphExec_t   exec = NULL;
    if (st == SMOE_OK && e == cudaSuccess && graph && cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess)
        exec = NULL;
    if (graph) (void)cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    return exec;
}

/* Device scratch bytes a launch needs: split attention's partial results, the tensor-core path's pair lists and f16
 * activations, the int8 GEMV's quantized activations; none for the reference kernels. */
static size_t node_scratch_bytes(const smoe_cuda_node *nd) {
    if (nd->simple) return 0;
    if (nd->op == SMOE_OP_ATTENTION)
        return smoe_cuda_attention_scratch(nd->src[0].ne[1] * nd->src[0].ne[2], nd->src[0].ne[0], nd->i[2]);
    if (nd->op == SMOE_OP_MUL_MAT || nd->op == SMOE_OP_MUL_MAT_ID) {
        const int    is_id = nd->op == SMOE_OP_MUL_MAT_ID;
        const size_t mmq = smoe_cuda_mmq_scratch(nd, is_id), q8 = smoe_cuda_gemvq_scratch(nd, is_id);
        return mmq > q8 ? mmq : q8;
    }
    return 0;
}

/* an int8 GEMV with its scratch: it quantizes src[1] unless q8_ready */
static int is_q8_gemv(const smoe_cuda_node *nd) {
    const int is_id = nd->op == SMOE_OP_MUL_MAT_ID;
    return (nd->op == SMOE_OP_MUL_MAT || is_id) && nd->scratch && smoe_cuda_gemvq_scratch(nd, is_id) > 0;
}

/* the residual r of ADD a when a adds y and r (either order), all of y's shape in f32 rows; else NULL */
static const smoe_cuda_tensor *residual_of(const smoe_cuda_node *a, const smoe_cuda_tensor *y) {
    const int at = memcmp(&a->src[0], y, sizeof(*y)) == 0 ? 0 : memcmp(&a->src[1], y, sizeof(*y)) == 0 ? 1 : -1;
    if (a->op != SMOE_OP_ADD || at < 0) return NULL;
    const smoe_cuda_tensor *r = &a->src[1 - at], *o = &a->dst;
    bool ok = r->type == SMOE_CUDA_F32 && o->type == SMOE_CUDA_F32 && r->nb[0] == 4 && o->nb[0] == 4;
    for (int i = 0; i < 4 && ok; i++) ok = r->ne[i] == y->ne[i] && o->ne[i] == y->ne[i];
    return ok ? r : NULL;
}

size_t smoe_cuda_plan_fusion(smoe_cuda_node *nd, int n, int fuse, void *base) {
    size_t need = 0; /* bytes of scratch from base */
    for (int k = 0; k < n; k++) {
        const size_t bytes = node_scratch_bytes(&nd[k]);
        need = bytes > need ? bytes : need;
        nd[k].scratch = bytes > 0 ? base : NULL;
        nd[k].q8_ready = k > 0 && is_q8_gemv(&nd[k]) && is_q8_gemv(&nd[k - 1]) && nd[k - 1].op == nd[k].op &&
                         memcmp(&nd[k].src[1], &nd[k - 1].src[1], sizeof(nd[k].src[1])) == 0;
        nd[k].q8_out = NULL;
        nd[k].n_more = nd[k].add = nd[k].kv_write = nd[k].route_n_used = 0;
        if (nd[k].rope_q && nd[k].op == SMOE_OP_ATTENTION) nd[k].i[0] = 0, nd[k].f[1] = nd[k].f[2] = 0.0f;
        nd[k].rope_q = 0;
        memset(nd[k].more_w, 0, 4 * sizeof(nd[k].more_w[0])); /* the union's largest member: all of it */
    }
    if (!fuse) return need;
    for (int p = 0; p < n; p++) {
        const int attn = nd[p].op == SMOE_OP_ATTENTION;
        if (nd[p].simple || (nd[p].op != SMOE_OP_RMS_NORM && nd[p].op != SMOE_OP_SWIGLU && !attn)) continue;
        /* ATTENTION's rows are a token's heads together ([head_dim * n_head] per token, the output projection's
         * columns); its own scratch (the chunks' partial results) comes first, the columns after it */
        smoe_cuda_tensor rows = nd[p].dst;
        size_t           off = 0;
        if (attn) {
            const smoe_cuda_tensor *d = &nd[p].dst;
            if (d->ne[0] % 32 != 0 || d->nb[1] != d->ne[0] * 4 || d->nb[2] != d->nb[1] * d->ne[1] || d->ne[3] != 1)
                continue;
            rows.ne[0] = d->ne[0] * d->ne[1];
            rows.ne[1] = d->ne[2];
            rows.ne[2] = 1;
            rows.nb[1] = d->nb[2];
            rows.nb[2] = rows.nb[3] = d->nb[2] * d->ne[2];
            off = (node_scratch_bytes(&nd[p]) + 255) & ~(size_t)255;
        }
        /* the graph keeps a result's memory until its last reader ran, and no op between writes into an earlier
         * result (KV_WRITE writes the cache, never an RMS_NORM's, SWIGLU's or ATTENTION's result) */
        for (int j = p + 1; j < n && j <= p + 4; j++) {
            smoe_cuda_node *c = &nd[j];
            const int       is_id = c->op == SMOE_OP_MUL_MAT_ID;
            if (is_q8_gemv(c) && !c->q8_ready && (!attn || !is_id) && smoe_cuda_q8_rows_match(&rows, c, is_id)) {
                c->scratch = (uint8_t *)c->scratch + off; /* so do the GEMVs after it that reuse its columns */
                for (int f = j + 1; f < n && nd[f].q8_ready; f++) nd[f].scratch = c->scratch;
                nd[p].q8_out = c->scratch;
                c->q8_ready = 1;
                const size_t end = off + smoe_cuda_gemvq_scratch(c, is_id);
                need = end > need ? end : need;
                break;
            }
            if (node_scratch_bytes(c) > 0) break; /* it would overwrite the columns before c reads them */
        }
    }
    /* one launch for up to 3 int8 GEMVs of the same columns: the later ones reuse the first's (q8_ready) */
    for (int k = 0; k < n; k++) {
        if (!is_q8_gemv(&nd[k])) continue;
        int j = k + 1;
        for (; j < n && j - k <= 2; j++) {
            const smoe_cuda_node *f = &nd[j];
            if (!f->q8_ready || !is_q8_gemv(f) || f->op != nd[k].op || f->src[0].type != nd[k].src[0].type ||
                f->src[0].ne[0] != nd[k].src[0].ne[0] || memcmp(&f->src[1], &nd[k].src[1], sizeof(f->src[1])) != 0 ||
                (f->op == SMOE_OP_MUL_MAT_ID && memcmp(&f->src[2], &nd[k].src[2], sizeof(f->src[2])) != 0))
                break;
            bool apart = true; /* its result where no earlier product's result is (a dead one's memory reused) */
            for (int i = k; i < j; i++) apart = apart && !smoe_cuda_overlap4(&f->dst, &nd[i].dst);
            if (!apart) break;
            nd[k].more_w[j - k - 1] = f->src[0];
            nd[k].more_dst[j - k - 1] = f->dst;
        }
        nd[k].n_more = j - k - 1;
        k = j - 1;
    }
    /* a lone int8 MUL_MAT, then ADD(r, its result) or ADD(its result, r) of the same shape: one launch. The GEMV
     * kernel reads the weights, the quantized columns in scratch and r; the sum may take any memory but r's (in
     * place is fine: each element is read, then written, by one thread) */
    for (int k = 0; k + 1 < n; k++) {
        smoe_cuda_node *g = &nd[k], *a = &nd[k + 1];
        if (g->op != SMOE_OP_MUL_MAT || !is_q8_gemv(g) || g->n_more || a->op != SMOE_OP_ADD) continue;
        const smoe_cuda_tensor *r = residual_of(a, &g->dst), *o = &a->dst;
        if (!r || !(memcmp(o, r, sizeof(*o)) == 0 || !smoe_cuda_overlap4(o, r)) || smoe_cuda_overlap4(o, &g->dst))
            continue;
        g->add = 1;
        g->add_r = *r;
        g->add_out = *o;
        k++;
    }
    /* ROPE of k, KV_WRITE of its result, KV_WRITE of v at the same cells: one launch. Blocks (head, token) read
     * their row of the ROPE's input (or of v) and write the ROPE's result and the caches; the ROPE's result must not
     * lie over v, which other blocks read */
    for (int k = 0; k + 1 < n; k++) {
        smoe_cuda_node *r = &nd[k], *w = &nd[k + 1];
        if (r->op != SMOE_OP_ROPE || r->simple || w->op != SMOE_OP_KV_WRITE ||
            memcmp(&w->src[1], &r->dst, sizeof(r->dst)) != 0 || r->dst.ne[3] != 1)
            continue;
        r->kv_write = 1;
        r->kv_cache = w->src[0];
        r->kv_cells = w->src[2];
        const smoe_cuda_node *v = k + 2 < n ? &nd[k + 2] : NULL;
        if (v && v->op == SMOE_OP_KV_WRITE && memcmp(&v->src[2], &w->src[2], sizeof(v->src[2])) == 0 &&
            v->src[1].ne[1] == r->dst.ne[1] && v->src[1].ne[2] == r->dst.ne[2] &&
            !smoe_cuda_overlap4(&r->dst, &v->src[1])) {
            r->kv_write = 2;
            r->kv2_cache = v->src[0];
            r->kv2_rows = v->src[1];
        }
        k += r->kv_write;
    }
    /* the router (float weights, one block per token: its rows fit the route kernel's warp) and MOE_ROUTE of its
     * result: one launch. The ids may lie anywhere but under the logits, which the same block reads back */
    for (int k = 0; k + 1 < n; k++) {
        smoe_cuda_node *g = &nd[k], *r = &nd[k + 1];
        const int32_t   wt = g->src[0].type;
        if (g->op != SMOE_OP_MUL_MAT || r->op != SMOE_OP_MOE_ROUTE || r->simple || g->n_more || g->add ||
            (wt != SMOE_CUDA_F32 && wt != SMOE_CUDA_F16 && wt != SMOE_CUDA_BF16) ||
            smoe_cuda_mm_path_of(g, 0) != SMOE_CUDA_MM_GEMV || g->src[0].ne[1] > 128 ||
            g->src[1].ne[2] * g->src[1].ne[3] != 1 || memcmp(&r->src[0], &g->dst, sizeof(g->dst)) != 0 ||
            smoe_cuda_overlap4(&r->dst, &g->dst) || r->i[0] < 1)
            continue;
        g->route_n_used = r->i[0];
        g->route_ids = r->dst;
        k++;
    }
    /* a decode step's MOE_COMBINE (one token, <= 4 experts, <= 8192 elements) and the residual ADD after it: one
     * block that reads all its inputs before it writes (moe.cu), so the sum may lie over them; not over the
     * combine's own result, which the same block writes too */
    for (int k = 0; k + 1 < n; k++) {
        smoe_cuda_node *c = &nd[k], *a = &nd[k + 1];
        if (c->op != SMOE_OP_MOE_COMBINE || c->simple || a->op != SMOE_OP_ADD || c->src[2].ne[1] != 1 ||
            c->src[2].ne[0] > 4 || c->dst.ne[0] > 8192)
            continue;
        const smoe_cuda_tensor *r = residual_of(a, &c->dst), *o = &a->dst;
        if (!r || smoe_cuda_overlap4(o, &c->dst)) continue;
        c->add = 1;
        c->add_r = *r;
        c->add_out = *o;
        k++;
    }
    /* ROPE of q, then the ATTENTION reading its result: the attention rotates q as it loads it (and writes the
     * ROPE's result); its own result must not lie over the ROPE's input, which other blocks still read */
    for (int k = 0; k + 1 < n; k++) {
        smoe_cuda_node *r = &nd[k], *a = &nd[k + 1];
        if (r->op != SMOE_OP_ROPE || r->simple || r->kv_write || a->op != SMOE_OP_ATTENTION ||
            memcmp(&a->src[0], &r->dst, sizeof(r->dst)) != 0 || smoe_cuda_overlap4(&a->dst, &r->src[0]) ||
            smoe_cuda_overlap4(&a->dst, &r->dst) || r->dst.ne[0] > 256)
            continue;
        r->rope_q = 1;
        a->rope_q = 1;
        a->rope_src = r->src[0];
        a->rope_pos = r->src[1];
        a->i[0] = r->i[0];
        a->f[1] = r->f[0];
        a->f[2] = r->f[1];
        k++;
    }
    return need;
}

/* The split's launches, described (and its node names recorded for index errors), fused and given their scratch:
 * c->launches[0, *n_out). */
static smoe_status build_launches(smoe_cuda_ctx *c, const smoe_split *split, int *n_out) {
    int n = 0;
    for (int i = 0; i < split->n_nodes; i++) {
        const smoe_tensor *t = split->nodes[i];
        if (t->op == SMOE_OP_NONE || t->op == SMOE_OP_VIEW) continue;
        SMOE_RETURN_IF(!launcher_for(t->op), SMOE_ERR_UNSUPPORTED, "%s: %s: op %s has no kernel", c->name, t->name,
                       smoe_op_name(t->op));
        if (c->n_names == c->cap_names) {
            const int cap = c->cap_names ? 2 * c->cap_names : 64;
            char(*nm)[SMOE_MAX_NAME] = realloc(c->names, (size_t)cap * sizeof(*nm));
            SMOE_RETURN_IF(!nm, SMOE_ERR_OUT_OF_MEMORY, "%s: out of memory", c->name);
            c->names = nm;
            c->cap_names = cap;
        }
        if (n == c->cap_launches) {
            const int       cap = c->cap_launches ? 2 * c->cap_launches : 64;
            smoe_cuda_node *p = realloc(c->launches, (size_t)cap * sizeof(*p));
            SMOE_RETURN_IF(!p, SMOE_ERR_OUT_OF_MEMORY, "%s: out of memory", c->name);
            c->launches = p;
            c->cap_launches = cap;
        }
        memcpy(c->names[c->n_names], t->name, SMOE_MAX_NAME); /* NUL-terminated within (core/tensor.h) */
        /* node_index is the position since the last synchronize: equal runs of a split after a synchronize get
         * equal arrays, so a decode step (one split per run, synchronized in between) replays */
        make_node(t, c->n_names, c->cc, &c->launches[n]);
        c->launches[n].simple = c->simple;
        c->launches[n].pdl = c->pdl;
        c->n_names++;
        n++;
    }
    /* scratch memory, grown before any launch (and before a capture); one buffer serves every node of the split:
     * they run one after another on the stream */
    /* the plan places each launch's scratch at an offset from a stand-in address (never dereferenced), then the
     * addresses move into the buffer */
    uint8_t *const base = (uint8_t *)(uintptr_t)4096;
    const size_t   need = smoe_cuda_plan_fusion(c->launches, n, c->fuse, base);
    if (need > c->op_scratch_size) {
        SMOE_CUDA_TRY(c, cudaStreamSynchronize(c->stream)); /* the old scratch may still be read */
        if (c->op_scratch) SMOE_CUDA_TRY(c, cudaFree(c->op_scratch));
        c->op_scratch = NULL;
        c->op_scratch_size = 0;
        SMOE_CUDA_TRY(c, cudaMalloc(&c->op_scratch, need));
        c->op_scratch_size = need;
    }
    for (int k = 0; k < n; k++) {
        smoe_cuda_node *nd = &c->launches[k];
        if (nd->scratch) nd->scratch = (uint8_t *)c->op_scratch + ((uint8_t *)nd->scratch - base);
        if (nd->q8_out) nd->q8_out = (uint8_t *)c->op_scratch + ((uint8_t *)nd->q8_out - base);
    }
    *n_out = n;
    return SMOE_OK;
}

static smoe_status cuda_compute(smoe_backend *b, const smoe_split *split) {
    smoe_cuda_ctx *c = ctx_of(b);
    SMOE_CUDA_TRY(c, cudaSetDevice(c->device));
    /* A decode step runs the same bound graph again and again: when this split is the one described last, not
     * re-bound since (its stamp, core/sched.c) and numbered from the same position, c->launches already holds its
     * launches, and the launch cache need not compare them with what it recorded (together ~0.1 ms of host work
     * per token less on the fake runtime's 32-layer decode: ~850 nodes described, fused, given scratch, compared).
     * Anything else describes them anew. */
    int       n = 0;
    const int names0 = c->n_names;
    const bool unchanged = split == c->built_split && split->stamp != 0 && split->stamp == c->built_stamp &&
                           names0 == c->built_names0;
    if (unchanged) {
        n = c->built_n;
        c->n_names = names0 + n; /* their names are still there: nothing was described since */
    } else {
        c->built_split = NULL;
        SMOE_TRY(build_launches(c, split, &n));
        c->built_split = split;
        c->built_stamp = split->stamp;
        c->built_names0 = names0;
        c->built_n = n;
    }
    if (!c->graphs || n == 0) return launch_all(c, split, n);
    int            slot = -1;
    smoe_lc_action act = SMOE_LC_LAUNCH;
    if (!(unchanged && smoe_lc_lookup_unchanged(&c->lc, split, n, &slot, &act)) &&
        smoe_lc_lookup(&c->lc, split, c->launches, n, &slot, &act) != SMOE_OK)
        return launch_all(c, split, n);
    if (act == SMOE_LC_REPLAY) {
        SMOE_CUDA_TRY(c, cudaGraphLaunch((cudaGraphExec_t)c->lc.e[slot].exec, c->stream));
        return SMOE_OK;
    }
    if (act == SMOE_LC_CAPTURE) {
        cudaGraphExec_t exec = capture(c, split, n);
        smoe_lc_set_exec(&c->lc, slot, exec);
        if (exec) {
            SMOE_CUDA_TRY(c, cudaGraphLaunch(exec, c->stream));
            return SMOE_OK;
        }
    }
    return launch_all(c, split, n);
}

static smoe_status cuda_synchronize(smoe_backend *b) {
    smoe_cuda_ctx *c = ctx_of(b);
    SMOE_CUDA_TRY(c, cudaSetDevice(c->device));
    SMOE_CUDA_TRY(c, cudaMemcpyAsync(c->h_err, c->d_err, sizeof(int), cudaMemcpyDeviceToHost, c->stream));
    SMOE_CUDA_TRY(c, cudaStreamSynchronize(c->stream));
    SMOE_TRY(flush_gets(c));
    const int err = *c->h_err;
    const int n_names = c->n_names;
    c->n_names = 0;
    if (err != 0) {
        *c->h_err = 0;
        SMOE_CUDA_TRY(c, cudaMemsetAsync(c->d_err, 0, sizeof(int), c->stream));
        SMOE_CUDA_TRY(c, cudaStreamSynchronize(c->stream));
        return smoe_set_error(SMOE_ERR_INVALID_ARGUMENT, "%s: %s: an index (row id, expert id or cell) is out of range",
                              c->name, err - 1 < n_names ? c->names[err - 1] : "(unknown node)");
    }
    return SMOE_OK;
}

static void cuda_free(smoe_backend *b) {
    if (!b) return;
    smoe_cuda_ctx *c = ctx_of(b);
    if (c) {
        if (cudaSetDevice(c->device) == cudaSuccess) {
            if (c->stream) (void)cudaStreamSynchronize(c->stream);
            smoe_lc_clear(&c->lc); /* destroys the graphs */
            if (c->op_scratch) (void)cudaFree(c->op_scratch);
            if (c->d_err) (void)cudaFree(c->d_err);
            if (c->h_err) (void)cudaFreeHost(c->h_err);
            if (c->staging) (void)cudaFreeHost(c->staging);
            for (int i = 0; i < 2; i++) {
                if (!c->ring[i]) continue;
                (void)cudaFreeHost(c->ring[i]);
                (void)cudaEventDestroy(c->ring_ev[i]);
            }
            if (c->stream) (void)cudaStreamDestroy(c->stream);
        }
        (void)cudaGetLastError();
        free(c->gets);
        free(c->names);
        free(c->launches);
        free(c);
    }
    free(b);
}

static const struct smoe_backend_i cuda_iface = {
    .name = cuda_name,
    .get_props = cuda_get_props,
    .supports_op = cuda_supports_op,
    .buffer_alloc = cuda_buffer_alloc,
    .buffer_from_host_ptr = NULL,
    .buffer_free = cuda_buffer_free,
    .buffer_clear = cuda_buffer_clear,
    .tensor_set_async = cuda_tensor_set,
    .tensor_get_async = cuda_tensor_get,
    .compute = cuda_compute,
    .synchronize = cuda_synchronize,
    .free = cuda_free,
};

static smoe_status ctx_init(smoe_cuda_ctx *c, int device) {
    c->device = device;
    snprintf(c->name, sizeof(c->name), "cuda%d", device);
    SMOE_CUDA_TRY(c, cudaSetDevice(device));
    struct cudaDeviceProp prop;
    SMOE_CUDA_TRY(c, cudaGetDeviceProperties(&prop, device));
    c->cc = prop.major * 100 + prop.minor * 10;
    const char *simple = getenv("SMOE_CUDA_SIMPLE"), *graphs = getenv("SMOE_CUDA_GRAPHS");
    const char *fuse = getenv("SMOE_CUDA_FUSE"), *pdl = getenv("SMOE_CUDA_PDL");
    c->simple = simple && strcmp(simple, "1") == 0;
    c->graphs = !(graphs && strcmp(graphs, "0") == 0);
    c->fuse = !(fuse && strcmp(fuse, "0") == 0);
    c->pdl = pdl && strcmp(pdl, "1") == 0 && c->cc >= SMOE_CC_HOPPER;
    snprintf(c->description, sizeof(c->description), "%.200s (sm_%d%d, %.1f GiB)", prop.name, prop.major, prop.minor,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    SMOE_RETURN_IF(c->cc < SMOE_CC_TURING, SMOE_ERR_UNSUPPORTED, "%s: %s: compute capability %d.%d < 7.5 (Turing)",
                   c->name, prop.name, prop.major, prop.minor);
    SMOE_CUDA_TRY(c, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    SMOE_CUDA_TRY(c, cudaMalloc((void **)&c->d_err, sizeof(int)));
    SMOE_CUDA_TRY(c, cudaMemsetAsync(c->d_err, 0, sizeof(int), c->stream));
    SMOE_CUDA_TRY(c, cudaMallocHost((void **)&c->h_err, sizeof(int)));
    *c->h_err = 0;
    SMOE_CUDA_TRY(c, cudaMallocHost((void **)&c->staging, STAGING_MAX));
    SMOE_CUDA_TRY(c, cudaStreamSynchronize(c->stream));
    return SMOE_OK;
}

smoe_status smoe_cuda_backend_init(int device, smoe_backend **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "cuda: out is NULL");
    *out = NULL;
    const int n = smoe_cuda_device_count();
    SMOE_RETURN_IF(device < 0 || device >= n, SMOE_ERR_INVALID_ARGUMENT, "cuda: device %d not in [0, %d)", device, n);
    smoe_backend *b = calloc(1, sizeof(*b));
    smoe_cuda_ctx *c = calloc(1, sizeof(*c));
    if (c) smoe_lc_init(&c->lc, destroy_exec, NULL);
    if (!b || !c) {
        free(b);
        free(c);
        return smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "cuda: out of memory");
    }
    b->api_version = SMOE_BACKEND_API_VERSION;
    b->iface = cuda_iface;
    b->ctx = c;
    smoe_status st = ctx_init(c, device);
    if (st != SMOE_OK) {
        cuda_free(b);
        return st;
    }
    *out = b;
    return SMOE_OK;
}

bool smoe_backend_is_cuda(smoe_backend *b) { return b && b->iface.compute == cuda_compute; }
