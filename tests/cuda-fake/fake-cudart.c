/*
 * fake-cudart.c - a stand-in for the part of the CUDA runtime API that backends/cuda/cuda-backend.c calls, running
 * on the CPU, so that the backend's host side (buffers, staging and the upload ring, synchronize and the device error
 * word, scratch memory, CUDA-graph capture and replay) runs in CI on machines without a GPU. Linked instead of
 * libcudart_static into test programs only (tests/meson.build); the kernels' launchers are fake-launch.c.
 *
 * It keeps CUDA's ordering rules rather than running everything at once, so host code that gets them wrong fails:
 * - a stream is a queue: copies, memsets, launches and event records run when the host waits (stream or event
 *   synchronize, a copy to pageable memory), in order;
 * - a copy from pinned memory (cudaMallocHost) reads the source when it runs, so refilling a staging buffer before
 *   its copy is done shows up as wrong data; a copy from pageable memory reads it at the call (as the runtime's own
 *   staging does) and a copy to pageable memory waits for the stream (as the runtime does);
 * - during capture nothing runs: copies from pinned memory, memsets and launches become graph nodes (copies from or
 *   to pageable memory are refused, as the runtime refuses them), and each launch keeps a copy of its arguments, as
 *   kernel parameters are copied at launch; a replayed graph runs those copies;
 * - device memory starts as 0xff bytes (NaN as floats), not zeros; freed device memory is filled with them and held
 *   back (up to 512 MiB), so a stale device pointer reads NaNs, not the next allocation's data;
 * - SMOE_FAKE_CUDA_MEM=BYTES (default 8 GiB) is the device's memory: allocations past it fail with
 *   cudaErrorMemoryAllocation; SMOE_FAKE_CUDA_DEVICES=N (default 1) devices; SMOE_FAKE_CUDA_CC=MAJOR.MINOR (default
 *   9.0) their compute capability.
 * Not modelled: several streams running concurrently (the backend uses one), pointer arithmetic checks.
 */
#include "fake-cuda.h"

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OP_COPY, OP_SET, OP_LAUNCH, OP_EVENT } op_kind;

typedef struct fake_op {
    op_kind     kind;
    void       *dst;
    const void *src;   /* OP_COPY: read when the op runs */
    void       *owned; /* OP_COPY from pageable memory: the bytes, taken at the call */
    size_t      size;
    int         value; /* OP_SET */
    struct CUevent_st *event;
    fake_cuda_launch   launch; /* OP_LAUNCH */
} fake_op;

typedef struct op_list {
    fake_op *ops;
    int      n, cap;
} op_list;

struct CUstream_st {
    op_list queue;
    bool    capturing;
    op_list captured;
};
struct CUevent_st {
    bool pending; /* recorded and not yet reached */
};
struct CUgraph_st {
    op_list ops;
};
struct CUgraphExec_st {
    op_list ops;
};

typedef struct block {
    uint8_t *p;
    size_t   size;
} block;

/* freed device blocks held back, so a later cudaMalloc gets another address and a stale pointer reads NaNs */
#define QUARANTINE       64
#define QUARANTINE_BYTES ((size_t)512 << 20)

static struct {
    int         n_devices;
    size_t      mem_total, mem_used;
    block      *dev, *pinned;
    int         n_dev, cap_dev, n_pinned, cap_pinned;
    cudaError_t last;
    int         launches_run, graph_launches;
    block       quarantine[QUARANTINE]; /* freed device memory, 0xff bytes, held back (see cudaFree) */
    int         n_quarantine;
    size_t      quarantine_bytes;
} g;

/* frees the quarantined blocks (at exit: leak checkers see none) */
static void quarantine_release(void) {
    for (int i = 0; i < g.n_quarantine; i++) free(g.quarantine[i].p);
    g.n_quarantine = 0;
    g.quarantine_bytes = 0;
}
__attribute__((destructor)) static void fake_fini(void) { quarantine_release(); }

/* the environment is read at every call, so a test can change the device's memory between models */
static void fake_init(void) {
    const char *n = getenv("SMOE_FAKE_CUDA_DEVICES"), *m = getenv("SMOE_FAKE_CUDA_MEM");
    g.n_devices = n ? atoi(n) : 1;
    g.mem_total = m ? (size_t)strtoull(m, NULL, 10) : (size_t)8 << 30;
    if (g.mem_total < g.mem_used) g.mem_total = g.mem_used;
}

static cudaError_t fail(cudaError_t e) {
    g.last = e;
    return e;
}

static bool add_block(block **list, int *n, int *cap, void *p, size_t size) {
    if (*n == *cap) {
        const int c = *cap ? 2 * *cap : 64;
        block    *b = realloc(*list, (size_t)c * sizeof(*b));
        if (!b) return false;
        *list = b;
        *cap = c;
    }
    (*list)[(*n)++] = (block){p, size};
    return true;
}

/* index of the block holding [p, p + size), or -1 */
static int find_block(const block *list, int n, const void *p, size_t size) {
    const uint8_t *q = p;
    for (int i = 0; i < n; i++)
        if (q >= list[i].p && q + size <= list[i].p + list[i].size) return i;
    return -1;
}

static bool is_pinned(const void *p, size_t size) { return find_block(g.pinned, g.n_pinned, p, size) >= 0; }
static bool is_device(const void *p, size_t size) { return find_block(g.dev, g.n_dev, p, size) >= 0; }

static cudaError_t push(op_list *l, fake_op op) {
    if (l->n == l->cap) {
        const int c = l->cap ? 2 * l->cap : 64;
        fake_op  *o = realloc(l->ops, (size_t)c * sizeof(*o));
        if (!o) return fail(cudaErrorMemoryAllocation);
        l->ops = o;
        l->cap = c;
    }
    l->ops[l->n++] = op;
    return cudaSuccess;
}

static void op_release(fake_op *op) {
    free(op->owned);
    op->owned = NULL;
}

static void list_free(op_list *l) {
    for (int i = 0; i < l->n; i++) op_release(&l->ops[i]);
    free(l->ops);
    memset(l, 0, sizeof(*l));
}

static cudaError_t run_op(const fake_op *op) {
    switch (op->kind) {
    case OP_COPY: memmove(op->dst, op->owned ? op->owned : op->src, op->size); break;
    case OP_SET: memset(op->dst, op->value, op->size); break;
    case OP_EVENT: op->event->pending = false; break;
    case OP_LAUNCH:
        g.launches_run++;
        if (fake_cuda_run_launch(&op->launch) != 0) return fail(cudaErrorLaunchFailure);
        break;
    }
    return cudaSuccess;
}

/* runs the queue up to and including op `upto` (all of it when upto < 0) */
static cudaError_t drain(struct CUstream_st *s, int upto) {
    const int  end = upto < 0 ? s->queue.n : upto + 1;
    cudaError_t e = cudaSuccess;
    for (int i = 0; i < end; i++) {
        if (e == cudaSuccess) e = run_op(&s->queue.ops[i]);
        op_release(&s->queue.ops[i]);
    }
    memmove(s->queue.ops, s->queue.ops + end, (size_t)(s->queue.n - end) * sizeof(fake_op));
    s->queue.n -= end;
    return e;
}

static struct CUstream_st *stream_list[16];
static int                 n_streams;

static cudaError_t enqueue(struct CUstream_st *s, fake_op op) {
    if (!s) {
        op_release(&op);
        return fail(cudaErrorInvalidResourceHandle); /* the backend never uses the legacy default stream */
    }
    return push(s->capturing ? &s->captured : &s->queue, op);
}

int fake_cuda_launches_run(void) { return g.launches_run; }
int fake_cuda_graph_launches(void) { return g.graph_launches; }

cudaError_t fake_cuda_enqueue_launch(void *stream, const fake_cuda_launch *l) {
    struct CUstream_st *s = stream;
    if (!s) return fail(cudaErrorInvalidResourceHandle);
    return enqueue(s, (fake_op){.kind = OP_LAUNCH, .launch = *l});
}

/* ---- the runtime API ---- */

cudaError_t cudaGetDeviceCount(int *count) {
    fake_init();
    *count = g.n_devices;
    return g.n_devices > 0 ? cudaSuccess : fail(cudaErrorNoDevice);
}

cudaError_t cudaSetDevice(int device) {
    fake_init();
    return device >= 0 && device < g.n_devices ? cudaSuccess : fail(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
    fake_init();
    if (device < 0 || device >= g.n_devices) return fail(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof(*prop));
    snprintf(prop->name, sizeof(prop->name), "smoe fake CUDA device %d (CPU)", device);
    const char *cc = getenv("SMOE_FAKE_CUDA_CC"); /* "MAJOR.MINOR", default 9.0 */
    int         major = 9, minor = 0;
    if (cc && sscanf(cc, "%d.%d", &major, &minor) != 2) major = 9, minor = 0;
    prop->major = major;
    prop->minor = minor;
    prop->totalGlobalMem = g.mem_total;
    prop->multiProcessorCount = 1;
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total) {
    fake_init();
    *free_b = g.mem_total - g.mem_used;
    *total = g.mem_total;
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
    const cudaError_t e = g.last;
    g.last = cudaSuccess;
    return e;
}

const char *cudaGetErrorName(cudaError_t error) {
    switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    default: return "cudaError (fake)";
    }
}

const char *cudaGetErrorString(cudaError_t error) {
    return error == cudaSuccess ? "no error" : "error in the fake CUDA runtime (tests/cuda-fake)";
}

cudaError_t cudaMalloc(void **p, size_t size) {
    fake_init();
    *p = NULL;
    if (size > g.mem_total - g.mem_used) return fail(cudaErrorMemoryAllocation);
    uint8_t *q = malloc(size);
    if (!q || !add_block(&g.dev, &g.n_dev, &g.cap_dev, q, size)) {
        free(q);
        return fail(cudaErrorMemoryAllocation);
    }
    memset(q, 0xff, size);
    g.mem_used += size;
    *p = q;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    for (int k = 0; k < n_streams; k++) /* cudaFree waits for the device's work, as the runtime's does */
        if (!stream_list[k]->capturing && drain(stream_list[k], -1) != cudaSuccess) return fail(cudaErrorLaunchFailure);
    for (int i = 0; i < g.n_dev; i++) {
        if (g.dev[i].p != p) continue;
        const size_t size = g.dev[i].size;
        g.mem_used -= size;
        g.dev[i] = g.dev[--g.n_dev];
        /* held back, as 0xff bytes (NaN as floats), while the quarantine has room: launches still holding the
         * address (a replayed graph's stale arguments) compute NaNs instead of reading whatever the next
         * allocation put there */
        if (size > QUARANTINE_BYTES) {
            free(p);
            return cudaSuccess;
        }
        if (g.n_quarantine == QUARANTINE || g.quarantine_bytes + size > QUARANTINE_BYTES) quarantine_release();
        memset(p, 0xff, size);
        g.quarantine[g.n_quarantine++] = (block){p, size};
        g.quarantine_bytes += size;
        return cudaSuccess;
    }
    return fail(cudaErrorInvalidValue);
}

cudaError_t cudaMallocHost(void **p, size_t size) {
    *p = NULL;
    uint8_t *q = malloc(size ? size : 1);
    if (!q || !add_block(&g.pinned, &g.n_pinned, &g.cap_pinned, q, size)) {
        free(q);
        return fail(cudaErrorMemoryAllocation);
    }
    *p = q;
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void *p) {
    for (int i = 0; i < g.n_pinned; i++) {
        if (g.pinned[i].p != p) continue;
        free(p);
        g.pinned[i] = g.pinned[--g.n_pinned];
        return cudaSuccess;
    }
    return fail(cudaErrorInvalidValue);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags) {
    (void)flags;
    if (n_streams == (int)(sizeof(stream_list) / sizeof(stream_list[0]))) return fail(cudaErrorMemoryAllocation);
    struct CUstream_st *s = calloc(1, sizeof(*s));
    if (!s) return fail(cudaErrorMemoryAllocation);
    stream_list[n_streams++] = s;
    *stream = s;
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    struct CUstream_st *s = stream;
    (void)drain(s, -1);
    list_free(&s->queue);
    list_free(&s->captured);
    for (int i = 0; i < n_streams; i++)
        if (stream_list[i] == s) stream_list[i] = stream_list[--n_streams];
    free(s);
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    struct CUstream_st *s = stream;
    if (!s) return fail(cudaErrorInvalidResourceHandle);
    if (s->capturing) return fail(cudaErrorStreamCaptureUnsupported);
    const cudaError_t e = drain(s, -1);
    return e == cudaSuccess ? cudaSuccess : fail(e);
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind, cudaStream_t stream) {
    struct CUstream_st *s = stream;
    if (count == 0) return cudaSuccess;
    if (!s) return fail(cudaErrorInvalidResourceHandle);
    fake_op op = {.kind = OP_COPY, .dst = dst, .src = src, .size = count};
    switch (kind) {
    case cudaMemcpyHostToDevice:
        if (!is_device(dst, count) || is_device(src, count)) return fail(cudaErrorInvalidValue);
        if (!is_pinned(src, count)) { /* pageable: read now, as the runtime's staging does; refused in capture */
            if (s->capturing) return fail(cudaErrorStreamCaptureUnsupported);
            op.owned = malloc(count);
            if (!op.owned) return fail(cudaErrorMemoryAllocation);
            memcpy(op.owned, src, count);
        }
        return enqueue(s, op);
    case cudaMemcpyDeviceToHost:
        if (!is_device(src, count) || is_device(dst, count)) return fail(cudaErrorInvalidValue);
        if (!is_pinned(dst, count)) { /* pageable: the call returns when the copy is done */
            if (s->capturing) return fail(cudaErrorStreamCaptureUnsupported);
            const cudaError_t e = drain(s, -1);
            if (e != cudaSuccess) return fail(e);
            memcpy(dst, src, count);
            return cudaSuccess;
        }
        return enqueue(s, op);
    case cudaMemcpyDeviceToDevice:
        if (!is_device(src, count) || !is_device(dst, count)) return fail(cudaErrorInvalidValue);
        return enqueue(s, op);
    default: return fail(cudaErrorInvalidMemcpyDirection);
    }
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t count, cudaStream_t stream) {
    if (count == 0) return cudaSuccess;
    if (!is_device(p, count)) return fail(cudaErrorInvalidValue);
    return enqueue(stream, (fake_op){.kind = OP_SET, .dst = p, .size = count, .value = value});
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags) {
    (void)flags;
    struct CUevent_st *e = calloc(1, sizeof(*e));
    if (!e) return fail(cudaErrorMemoryAllocation);
    *event = e;
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    free(event);
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    struct CUstream_st *s = stream;
    if (s && s->capturing) return fail(cudaErrorStreamCaptureUnsupported); /* not used in capture here */
    event->pending = true;
    return enqueue(s, (fake_op){.kind = OP_EVENT, .event = event});
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    if (!event->pending) return cudaSuccess;
    for (int k = 0; k < n_streams; k++) {
        struct CUstream_st *s = stream_list[k];
        for (int i = 0; i < s->queue.n; i++) {
            if (s->queue.ops[i].kind != OP_EVENT || s->queue.ops[i].event != event) continue;
            const cudaError_t e = drain(s, i);
            return e == cudaSuccess ? cudaSuccess : fail(e);
        }
    }
    return fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode) {
    (void)mode;
    struct CUstream_st *s = stream;
    if (!s || s->capturing) return fail(cudaErrorIllegalState);
    s->capturing = true;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph) {
    struct CUstream_st *s = stream;
    *graph = NULL;
    if (!s || !s->capturing) return fail(cudaErrorIllegalState);
    s->capturing = false;
    struct CUgraph_st *gr = calloc(1, sizeof(*gr));
    if (!gr) {
        list_free(&s->captured);
        return fail(cudaErrorMemoryAllocation);
    }
    gr->ops = s->captured;
    memset(&s->captured, 0, sizeof(s->captured));
    *graph = gr;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags) {
    (void)flags;
    *exec = NULL;
    struct CUgraphExec_st *x = calloc(1, sizeof(*x));
    if (!x) return fail(cudaErrorMemoryAllocation);
    for (int i = 0; i < graph->ops.n; i++) {
        if (push(&x->ops, graph->ops.ops[i]) != cudaSuccess) { /* push left the list as it was */
            free(x->ops.ops);
            free(x);
            return fail(cudaErrorMemoryAllocation);
        }
        x->ops.ops[x->ops.n - 1].owned = NULL; /* captured copies are from pinned memory: nothing owned */
    }
    *exec = x;
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    if (!graph) return cudaSuccess;
    list_free(&graph->ops);
    free(graph);
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    if (!exec) return cudaSuccess;
    free(exec->ops.ops);
    free(exec);
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    struct CUstream_st *s = stream;
    if (!s || !exec) return fail(cudaErrorInvalidResourceHandle);
    if (s->capturing) return fail(cudaErrorStreamCaptureUnsupported);
    g.graph_launches++;
    for (int i = 0; i < exec->ops.n; i++) {
        const cudaError_t e = push(&s->queue, exec->ops.ops[i]);
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

int fake_cuda_is_device(const void *p, size_t size) { return p && is_device(p, size ? size : 1); }
