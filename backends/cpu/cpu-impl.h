/*
 * cpu-impl.h - the CPU backend's context and its kernels: the plain-C reference (ops-*.c, one file per op family)
 * and the SIMD paths picked at run time (cpu-simd.h: kernel tables; cpu-matmul.c: MUL_MAT/MUL_MAT_ID with them).
 * A backend made with SMOE_CPU_ISA_SCALAR runs the reference only; otherwise an op uses its table's kernels where
 * the table has them and falls back to the reference elsewhere.
 *
 * Kernels get a node whose sources and output are bound to host memory. They parallelize over rows with the pool;
 * every output element is computed by exactly one thread with the same code whatever the thread count, so results
 * are bit-identical for any n_threads. Data-dependent indices (token ids, expert ids, cells) are checked before
 * any work and fail with SMOE_ERR_INVALID_ARGUMENT instead of reading or writing out of bounds.
 */
#ifndef SMOE_CPU_IMPL_H
#define SMOE_CPU_IMPL_H

#include "core/backend-impl.h"
#include "cpu-simd.h"
#include "threadpool.h"

/* A scratch buffer of cpu-matmul.c that keeps converted activations between nodes of one compute() call, so
 * consecutive products of the same input (Q/K/V, expert gate/up) quantize and pack it once. `key` names what it
 * holds; `epoch` is the compute() call it was made in (a later call never reuses it: the input's memory may have
 * been rewritten since). */
typedef struct smoe_cpu_act_cache {
    uint8_t    *buf;
    size_t      size;
    uint64_t    epoch;
    const void *key[2];
    int64_t     key_i[3];
} smoe_cpu_act_cache;

typedef struct smoe_cpu_ctx {
    smoe_threadpool *pool;
    int              n_threads;
    char             name[32];
    char             description[64];
    uint8_t         *work; /* scratch, grown on demand and kept (a re-run allocates nothing) */
    size_t           work_size;
    const smoe_cpu_kernels *kern; /* SIMD kernel table (cpu-simd.h); its isa SMOE_CPU_ISA_SCALAR = reference only */
    uint64_t           epoch;     /* compute() calls so far */
    smoe_cpu_act_cache xq, packed, gemv; /* cpu-matmul.c: quantized rows; packed token groups; gemv layout */
} smoe_cpu_ctx;

/* Ensures ctx->work has at least `size` bytes (64-byte aligned). */
smoe_status smoe_cpu_work_reserve(smoe_cpu_ctx *ctx, size_t size);

typedef smoe_status (*smoe_cpu_kernel)(smoe_cpu_ctx *ctx, const smoe_tensor *node);

/* ops-matmul.c */
smoe_status smoe_cpu_get_rows(smoe_cpu_ctx *ctx, const smoe_tensor *node);
smoe_status smoe_cpu_mul_mat(smoe_cpu_ctx *ctx, const smoe_tensor *node);
smoe_status smoe_cpu_mul_mat_id(smoe_cpu_ctx *ctx, const smoe_tensor *node);
/* cpu-matmul.c: the SIMD paths; false when the node is left to the reference (then *st is untouched) */
bool smoe_cpu_mul_mat_fast(smoe_cpu_ctx *ctx, const smoe_tensor *node, smoe_status *st);
bool smoe_cpu_mul_mat_id_fast(smoe_cpu_ctx *ctx, const smoe_tensor *node, smoe_status *st);
/* ops-attention.c */
smoe_status smoe_cpu_rope(smoe_cpu_ctx *ctx, const smoe_tensor *node);
smoe_status smoe_cpu_kv_write(smoe_cpu_ctx *ctx, const smoe_tensor *node);
smoe_status smoe_cpu_attention(smoe_cpu_ctx *ctx, const smoe_tensor *node);
/* ops-eltwise.c */
smoe_status smoe_cpu_rms_norm(smoe_cpu_ctx *ctx, const smoe_tensor *node);
smoe_status smoe_cpu_swiglu(smoe_cpu_ctx *ctx, const smoe_tensor *node);
smoe_status smoe_cpu_add(smoe_cpu_ctx *ctx, const smoe_tensor *node);
smoe_status smoe_cpu_mul(smoe_cpu_ctx *ctx, const smoe_tensor *node);
smoe_status smoe_cpu_scale(smoe_cpu_ctx *ctx, const smoe_tensor *node);
smoe_status smoe_cpu_cpy(smoe_cpu_ctx *ctx, const smoe_tensor *node);
/* ops-moe.c */
smoe_status smoe_cpu_moe_route(smoe_cpu_ctx *ctx, const smoe_tensor *node);
smoe_status smoe_cpu_moe_combine(smoe_cpu_ctx *ctx, const smoe_tensor *node);

/* f32 dot product (also used by the attention kernel). */
float smoe_cpu_dot_f32(const float *a, const float *b, int64_t n);

/* Address of row (i1, i2, i3) of a bound host tensor. */
static inline void *smoe_cpu_row(const smoe_tensor *t, int64_t i1, int64_t i2, int64_t i3) {
    return (char *)t->data + (size_t)i1 * t->nb[1] + (size_t)i2 * t->nb[2] + (size_t)i3 * t->nb[3];
}

#endif /* SMOE_CPU_IMPL_H */
