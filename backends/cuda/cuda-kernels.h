/*
 * cuda-kernels.h - the interface between the host side (cuda-backend.c, C) and the kernels (*.cu, C++).
 *
 * The host translates each graph node into a plain smoe_cuda_node (no core headers cross into nvcc) and calls the
 * op's launcher, which enqueues its kernels on `stream` and returns the cudaError_t of the launch as an int
 * (0 = cudaSuccess). Launchers never synchronize and never allocate.
 *
 * Index errors (a GET_ROWS id, MUL_MAT_ID / MOE_COMBINE expert id or KV_WRITE cell outside its range) are found on
 * the device: the kernel stores node_index + 1 into *err with atomicCAS(err, 0, ...) (first error wins) and skips
 * the row; the host reads *err at synchronize and fails with SMOE_ERR_INVALID_ARGUMENT naming the node.
 *
 * Types are GGUF type ids (core/types.h), repeated here as plain numbers.
 */
#ifndef SMOE_CUDA_KERNELS_H
#define SMOE_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    SMOE_CUDA_F32 = 0, SMOE_CUDA_F16 = 1, SMOE_CUDA_Q4_0 = 2, SMOE_CUDA_Q4_1 = 3, SMOE_CUDA_Q5_0 = 6,
    SMOE_CUDA_Q5_1 = 7, SMOE_CUDA_Q8_0 = 8, SMOE_CUDA_Q4_K = 12, SMOE_CUDA_Q5_K = 13, SMOE_CUDA_Q6_K = 14,
    SMOE_CUDA_I32 = 26, SMOE_CUDA_BF16 = 30,
};

/* compute capability constants (major * 100 + minor * 10) */
#define SMOE_CC_TURING 750
#define SMOE_CC_AMPERE 800
#define SMOE_CC_ADA    890
#define SMOE_CC_HOPPER 900

typedef struct smoe_cuda_tensor {
    void   *data;   /* device address */
    int32_t type;   /* GGUF type id */
    int32_t zero;   /* 0: the structs have no padding, so launch arrays compare with memcmp (CUDA graph reuse) */
    int64_t ne[4];
    int64_t nb[4];  /* byte strides */
} smoe_cuda_tensor;

typedef struct smoe_cuda_node {
    int32_t          op;         /* smoe_op value (core/ops.def), informational */
    int32_t          node_index; /* position in the split: what *err reports (+ 1) */
    smoe_cuda_tensor dst;
    smoe_cuda_tensor src[6];
    float            f[4];       /* op params: RMS_NORM f[0] = eps; ROPE f[0] = theta_base, f[1] = freq_scale;
                                    ATTENTION f[0] = scale; SCALE f[0] = s */
    int32_t          i[4];       /* ROPE i[0] = n_rot; MOE_ROUTE i[0] = n_used; ATTENTION i[2] = chunks of cells
                                    (smoe_cuda_attention_chunks) */
    int32_t          cc;         /* compute capability of the device (SMOE_CC_*) */
    int32_t          zero0;      /* 0 (no padding: see smoe_cuda_tensor.zero) */
    void            *scratch;    /* device memory: ATTENTION with i[2] > 1 (smoe_cuda_attention_scratch bytes),
                                    MUL_MAT / MUL_MAT_ID on tensor cores (smoe_cuda_mmq_scratch bytes), the int8 GEMV
                                    (smoe_cuda_gemvq_scratch bytes) */
    int32_t          simple;     /* 1: the reference kernels only (SMOE_CUDA_SIMPLE=1 in the environment), to tell
                                    a fast kernel's error from the rest */
    int32_t          q8_ready;   /* 1: src[1]'s columns are in the scratch already, quantized for the int8 GEMV by
                                    the launch before (the same tensor: K and V, gate and up) or by the op that
                                    computed them (q8_out): it skips that step */
    void            *q8_out;     /* RMS_NORM, SWIGLU, ATTENTION (a token's heads as one row): also write each
                                    result row, quantized as the int8 GEMV's column (smoe_cuda_q8_column_bytes
                                    apart), here: the consumer's scratch */
    int32_t          n_more;     /* MUL_MAT, MUL_MAT_ID on the int8 GEMV: the 0-2 launches right after this one
                                    whose products of src[1] (and MUL_MAT_ID's src[2]) its kernel also does
                                    (smoe_cuda_plan_fusion); they are skipped */
    int32_t          pdl;        /* 1: launch with programmatic stream serialization (cuda-common.cuh: smoe_launch;
                                    Hopper and newer, SMOE_CUDA_PDL=1) */
    int32_t          add;        /* MUL_MAT on the int8 GEMV, MOE_COMBINE of one token: 1 = it also does the ADD
                                    right after it (skipped), add_out = add_r + dst (the residual connection) */
    int32_t          kv_write;   /* ROPE: 1 = it also does the KV_WRITE of its result into kv_cache at kv_cells right
                                    after it, 2 = and the KV_WRITE after that one, of kv2_rows into kv2_cache at the
                                    same cells (K with RoPE, then V); they are skipped */
    int32_t          route_n_used; /* MUL_MAT (the router: F32/F16/BF16 weights, <= 128 rows, one batch matrix):
                                    > 0 = it also does the MOE_ROUTE of its result right after it (skipped),
                                    picking route_n_used experts into route_ids */
    int32_t          rope_q;     /* ATTENTION: 1 = it also does the ROPE right before it, whose result is its q
                                    (src[0]): rope_src at positions rope_pos, n_rot i[0], theta_base f[1], freq_scale
                                    f[2]; ROPE: 1 = the ATTENTION after it does it (this launch is skipped) */
    union { /* the fused launches' tensors: a node takes at most one of these (a decode step copies and compares the
               launch array: its bytes count) */
        struct {
            smoe_cuda_tensor more_w[2];   /* n_more: the products' weights */
            smoe_cuda_tensor more_dst[2]; /* and results */
        };
        struct {
            smoe_cuda_tensor add_r, add_out; /* add */
        };
        struct {
            smoe_cuda_tensor kv_cache, kv_cells, kv2_cache, kv2_rows; /* kv_write */
        };
        struct {
            smoe_cuda_tensor route_ids; /* route_n_used */
        };
        struct {
            smoe_cuda_tensor rope_src, rope_pos; /* ATTENTION's rope_q */
        };
    };
} smoe_cuda_node;

/* Whether the kernels decode `type` (to_f32 on the device): F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
 * Q5_K, Q6_K. Host-side copy of the same list (no CUDA calls): usable without a device. */
int smoe_cuda_type_supported(int32_t type);

/* RMS_NORM's threads per row: ~4 elements each (the loads of a thread are issued together, so a row costs about
 * one memory latency per pass), a multiple of the warp, 32 to 1024. Host-side, no CUDA calls. */
static inline unsigned smoe_cuda_norm_threads(int64_t n) {
    const int64_t t = ((n + 3) / 4 + 31) / 32 * 32;
    return t < 32 ? 32u : t > 1024 ? 1024u : (unsigned)t;
}

/* ATTENTION's split over the cells (flash-decoding): chunks so that about 4096 warps run, each of at least 64 cells,
 * and the bytes of scratch memory the chunks' partial results take (0 for one chunk). Host-side, no CUDA calls. */
static inline int32_t smoe_cuda_attention_chunks(int64_t n_work, int64_t n_cells) {
    int64_t c = (4096 + n_work - 1) / (n_work > 0 ? n_work : 1);
    const int64_t max_c = (n_cells + 63) / 64;
    if (c > max_c) c = max_c;
    if (c > 1024) c = 1024;
    return c < 1 ? 1 : (int32_t)c;
}
/* The query heads one warp of the split kernel takes: the G = n_head / n_head_kv heads sharing a kv head (GQA),
 * which then read each K and V row once, for G of 2, 4 or 8; else 1. The chunks are counted on the warps: n_work /
 * G. */
static inline int smoe_cuda_attention_group(int64_t n_head, int64_t n_head_kv) {
    const int64_t g = n_head_kv > 0 && n_head % n_head_kv == 0 ? n_head / n_head_kv : 1;
    return g == 2 || g == 4 || g == 8 ? (int)g : 1;
}
static inline size_t smoe_cuda_attention_scratch(int64_t n_work, int64_t head_dim, int32_t n_chunks) {
    return n_chunks > 1 ? (size_t)n_work * (size_t)n_chunks * (size_t)(head_dim + 2) * sizeof(float) : 0;
}

/* Prefill matmuls on tensor cores (mmq.cu): used for quantized weights when a MUL_MAT has at least
 * SMOE_CUDA_MMQ_MIN_COLS activation columns (and one batch matrix), or a MUL_MAT_ID at least that many
 * (slot, token) pairs; below that the GEMV reads the weights fewer times than tiles would help. MUL_MAT_ID first
 * lists, per expert, the pairs that chose it (on the device), then runs one tiled GEMM per expert over its pairs:
 * each expert's weights are read once per 128 pairs. */
#define SMOE_CUDA_MMQ_MIN_COLS 32

/* Which kernel a MUL_MAT (is_id = 0) or MUL_MAT_ID (is_id = 1) node runs; host policy, no CUDA calls (tested by
 * tests/test-cuda-host.c). The fast kernels read whole sub-blocks of 32 and the activations with float4 loads, so
 * x's address and row strides must be multiples of 16 bytes (a view at an odd offset is not); F32, F16 and BF16
 * weights take them too when k is a multiple of 32 and their rows are 16-byte aligned (read in 16-byte loads: the
 * router's 8 x 4096 F32 product took ~16 us on the reference kernel, a lane's 128 loads one after another), never
 * the tensor-core GEMM. Anything else, and SMOE_CUDA_SIMPLE=1, takes the reference kernels. Many columns of
 * quantized weights take the tensor-core GEMM (MUL_MAT with one batch matrix) when the node has its scratch
 * (smoe_cuda_mmq_scratch); smoe_cuda_mm_path_want is the choice before the scratch is known. */
typedef enum smoe_cuda_mm_path { SMOE_CUDA_MM_REF = 0, SMOE_CUDA_MM_GEMV, SMOE_CUDA_MM_MMQ } smoe_cuda_mm_path;
static inline smoe_cuda_mm_path smoe_cuda_mm_path_want(const smoe_cuda_node *n, int is_id) {
    const smoe_cuda_tensor *w = &n->src[0], *x = &n->src[1];
    const int quantized = w->type != SMOE_CUDA_F32 && w->type != SMOE_CUDA_F16 && w->type != SMOE_CUDA_BF16;
    const uintptr_t a = (uintptr_t)x->data | (uintptr_t)x->nb[1] | (uintptr_t)x->nb[2] | (uintptr_t)x->nb[3];
    if (n->simple || x->nb[0] != 4 || (a & 15) != 0) return SMOE_CUDA_MM_REF;
    if (!quantized) {
        const uintptr_t wa = (uintptr_t)w->data | (uintptr_t)w->nb[1] | (uintptr_t)(is_id ? w->nb[2] : 0);
        return w->ne[0] % 32 == 0 && (wa & 15) == 0 ? SMOE_CUDA_MM_GEMV : SMOE_CUDA_MM_REF;
    }
    if (is_id)
        return n->src[2].ne[0] * n->src[2].ne[1] >= SMOE_CUDA_MMQ_MIN_COLS ? SMOE_CUDA_MM_MMQ : SMOE_CUDA_MM_GEMV;
    return x->ne[1] >= SMOE_CUDA_MMQ_MIN_COLS && x->ne[2] * x->ne[3] == 1 ? SMOE_CUDA_MM_MMQ : SMOE_CUDA_MM_GEMV;
}
static inline smoe_cuda_mm_path smoe_cuda_mm_path_of(const smoe_cuda_node *n, int is_id) {
    const smoe_cuda_mm_path p = smoe_cuda_mm_path_want(n, is_id);
    return p == SMOE_CUDA_MM_MMQ && !n->scratch ? SMOE_CUDA_MM_GEMV : p;
}

/* The tensor-core path's scratch: MUL_MAT_ID's pair lists (n_expert counts, then n_expert lists of n_pairs ints),
 * 256-byte aligned (smoe_cuda_mmq_lists_bytes), then the activations as f16 ([k, ne1, ne2, ne3] dense: converted
 * once, not in every tile). 0 when the node takes another kernel. */
static inline size_t smoe_cuda_mmq_lists_bytes(const smoe_cuda_node *n, int is_id) {
    if (!is_id) return 0;
    const size_t ints = (size_t)n->src[0].ne[2] * (size_t)(n->src[2].ne[0] * n->src[2].ne[1] + 1);
    return (ints * sizeof(int32_t) + 255) & ~(size_t)255;
}
static inline size_t smoe_cuda_mmq_scratch(const smoe_cuda_node *n, int is_id) {
    if (smoe_cuda_mm_path_want(n, is_id) != SMOE_CUDA_MM_MMQ) return 0;
    const smoe_cuda_tensor *x = &n->src[1];
    const size_t xh = (size_t)(x->ne[0] * x->ne[1] * x->ne[2] * x->ne[3]) * 2;
    return smoe_cuda_mmq_lists_bytes(n, is_id) + ((xh + 15) & ~(size_t)15);
}

/* The int8 decode GEMV (gemv.cu): weights of these types (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K), k <= SMOE_CUDA_GEMVQ_MAX_K,
 * rows 2-byte aligned (Q6_K), 4-byte (Q4_0, Q8_0: read in aligned 32-bit words) or 16-byte (Q4_K, Q5_K: read in
 * 16-byte loads), one activation column per (token, slot). The
 * launcher first quantizes the columns into scratch memory, each as k int8 values then a float2 (d, sum of q) per
 * group of 32, padded to 16 bytes (smoe_cuda_q8_column_bytes); the GEMV blocks copy their column into shared memory.
 * smoe_cuda_gemvq_scratch: the bytes a node needs (0 when it takes another kernel). */
#define SMOE_CUDA_GEMVQ_MAX_K 32768
static inline int smoe_cuda_gemvq_ok(const smoe_cuda_tensor *w) {
    const int32_t t = w->type;
    const int kq = t == SMOE_CUDA_Q4_K || t == SMOE_CUDA_Q5_K;
    const uintptr_t a = (uintptr_t)w->data | (uintptr_t)w->nb[1] | (uintptr_t)w->nb[2];
    const int q0 = t == SMOE_CUDA_Q4_0 || t == SMOE_CUDA_Q8_0;
    return (q0 || kq || t == SMOE_CUDA_Q6_K) && w->ne[0] <= SMOE_CUDA_GEMVQ_MAX_K &&
           (a & (kq ? 15u : (q0 ? 3u : 1u))) == 0;
}
static inline size_t smoe_cuda_q8_column_bytes(int64_t k) { return ((size_t)k + (size_t)(k / 32) * 8 + 15) & ~(size_t)15; }
static inline size_t smoe_cuda_gemvq_scratch(const smoe_cuda_node *n, int is_id) {
    const smoe_cuda_tensor *x = &n->src[1];
    if (!smoe_cuda_gemvq_ok(&n->src[0])) return 0;
    if (is_id) { /* the GEMV takes fewer pairs than the tensor-core path */
        if (n->src[2].ne[0] * n->src[2].ne[1] >= SMOE_CUDA_MMQ_MIN_COLS) return 0;
    } else if (x->ne[1] != 1) {
        return 0;
    }
    if (smoe_cuda_mm_path_want(n, is_id) != SMOE_CUDA_MM_GEMV) return 0;
    const int64_t cols = is_id ? x->ne[1] * x->ne[2] : x->ne[2] * x->ne[3];
    return (size_t)cols * smoe_cuda_q8_column_bytes(x->ne[0]);
}

/* Whether the rows of r (an f32 result: RMS_NORM's, SWIGLU's) are, in order, the activation columns the int8 GEMV
 * of node c reads (c's src[1] is r or a reshape of it, both dense): then r's op may quantize them as it computes
 * them (q8_out) and c skip its quantize kernel. Host-side, no CUDA calls. */
static inline int smoe_cuda_q8_rows_match(const smoe_cuda_tensor *r, const smoe_cuda_node *c, int is_id) {
    const smoe_cuda_tensor *x = &c->src[1];
    const int64_t k = r->ne[0], row = k * 4, rows = r->ne[1] * r->ne[2] * r->ne[3];
    if (r->type != SMOE_CUDA_F32 || x->data != r->data || x->ne[0] != k || k % 32 != 0 || x->nb[0] != 4) return 0;
    if (r->nb[0] != 4 || r->nb[1] != row || r->nb[2] != row * r->ne[1] || r->nb[3] != r->nb[2] * r->ne[2]) return 0;
    if (is_id) return x->ne[3] == 1 && x->nb[1] == row && x->nb[2] == row * x->ne[1] && x->ne[1] * x->ne[2] == rows;
    return x->ne[1] == 1 && x->nb[2] == row && x->nb[3] == row * x->ne[2] && x->ne[2] * x->ne[3] == rows;
}

/* Whether two f32 / i32 tensors share a byte. The graph reuses a result's memory once its last reader ran, so a
 * kernel doing two launches' work must not write where the other launch's inputs were. Host-side, no CUDA calls. */
static inline int smoe_cuda_overlap4(const smoe_cuda_tensor *a, const smoe_cuda_tensor *b) {
    uintptr_t a0 = (uintptr_t)a->data, b0 = (uintptr_t)b->data, a1 = a0 + 3, b1 = b0 + 3;
    for (int i = 0; i < 4; i++) {
        a1 += (uintptr_t)((a->ne[i] > 0 ? a->ne[i] - 1 : 0) * a->nb[i]);
        b1 += (uintptr_t)((b->ne[i] > 0 ? b->ne[i] - 1 : 0) * b->nb[i]);
    }
    return a0 <= b1 && b0 <= a1;
}

/* What the launches of a split share (cuda-backend.c, tested by test-cuda-host.c): sets each node's q8_ready,
 * q8_out, scratch and the fused launches' fields, and returns the bytes of scratch the split needs from `base` (each
 * node that needs scratch gets base, or an offset from it: a consumer's columns may follow its producer's own
 * scratch). A GEMV whose src[1] equals the one of the int8 GEMV just before reuses its quantized columns. With fuse:
 * an RMS_NORM, SWIGLU or ATTENTION (its rows: a token's heads together) whose rows are the columns of an int8 GEMV
 * at most 4 launches later, with no launch between that uses scratch memory, writes them itself; up to 3 consecutive
 * int8 GEMVs of one op, weight type and k over the same activations (and expert ids) run as one launch: K, V and Q;
 * expert gate and up; never where one product's result overlaps another's (smoe_cuda_overlap4); a lone int8
 * MUL_MAT does the ADD of its result and a residual of the same shape right after it (add), unless the sum lies
 * over the residual's bytes other than exactly in place, and so does a one-token MOE_COMBINE (one block that reads
 * before it writes); a ROPE does the KV_WRITE of its result right after it and
 * the KV_WRITE after that one at the same cells (kv_write); the router's product (float weights on the GEMV, at most
 * 128 rows) does the MOE_ROUTE of its result right after it (route_n_used); an ATTENTION does the ROPE of its q
 * right before it (rope_q), unless its result lies over the ROPE's input or result. */
size_t smoe_cuda_plan_fusion(smoe_cuda_node *nodes, int n, int fuse, void *base);

/* launchers (one per op); `stream` is a cudaStream_t, `err` a device int */
int smoe_cuda_get_rows(const smoe_cuda_node *n, void *stream, int *err);
int smoe_cuda_mul_mat(const smoe_cuda_node *n, void *stream, int *err);
int smoe_cuda_mul_mat_id(const smoe_cuda_node *n, void *stream, int *err);
/* the tensor-core paths of the two above (mmq.cu); the GEMV launchers call them when they apply */
int smoe_cuda_mmq(const smoe_cuda_node *n, void *stream, int *err);
int smoe_cuda_mmq_id(const smoe_cuda_node *n, void *stream, int *err);
int smoe_cuda_cpy(const smoe_cuda_node *n, void *stream, int *err);
int smoe_cuda_rms_norm(const smoe_cuda_node *n, void *stream, int *err);
int smoe_cuda_rope(const smoe_cuda_node *n, void *stream, int *err);
int smoe_cuda_binary(const smoe_cuda_node *n, void *stream, int *err); /* ADD (op i[1] = 0), MUL (1), SWIGLU (2) */
int smoe_cuda_scale(const smoe_cuda_node *n, void *stream, int *err);
int smoe_cuda_moe_route(const smoe_cuda_node *n, void *stream, int *err);
int smoe_cuda_moe_combine(const smoe_cuda_node *n, void *stream, int *err);
int smoe_cuda_kv_write(const smoe_cuda_node *n, void *stream, int *err);
int smoe_cuda_attention(const smoe_cuda_node *n, void *stream, int *err);
/* a MUL_MAT with route_n_used (moe.cu; the MUL_MAT launcher calls it) */
int smoe_cuda_router_route(const smoe_cuda_node *n, void *stream, int *err);
/* a ROPE with kv_write (attention.cu; the ROPE launcher calls it) */
int smoe_cuda_rope_kv_write(const smoe_cuda_node *n, void *stream, int *err);

#ifdef __cplusplus
}
#endif

#endif /* SMOE_CUDA_KERNELS_H */
