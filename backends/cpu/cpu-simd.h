/*
 * cpu-simd.h - the CPU backend's kernel table, chosen at run time by CPU features (cpu-dispatch.c).
 *
 * Instruction sets. The library itself is compiled for baseline x86-64; the SIMD kernels live in separate static
 * libraries compiled with their own -m flags (backends/cpu/meson.build): simd-x86.inc included by simd-avx2.c
 * (AVX2+FMA+F16C, and again with AVX-VNNI) and simd-avx512.c (AVX-512 F/BW/VL/DQ, and again with AVX512-VNNI).
 * Each variant fills a smoe_cpu_kernels table; members it leaves NULL fall back to the plain-C reference (the
 * traits table in quant/, and the reference loops in ops-*.c). SMOE_CPU_ISA_SCALAR is the reference itself.
 *
 * Numerics. The activation quantizers (f32 -> Q8_0, Q8_K) produce the same bytes as the reference. Dot products
 * compute the same integer sums per block as the reference and differ only in the order of the float additions,
 * so they agree with it within float rounding. Within one kernel table every output element is computed by the
 * same sequence of operations whatever the thread count and whatever tile it falls in, so results are
 * bit-identical for any n_threads.
 *
 * Batched matmul ("gemm"): tokens in SIMD lanes. Activations of up to L tokens (L = 8 for 256-bit vectors, 16 for
 * 512-bit) are quantized once per matmul and packed per 32-element sub-block as
 *     vals[8][L][4]  int8: chunk c (elements 4c..4c+3) of every token lane
 *     dy[L]          float: the activation scale of the sub-block
 *     c0[L], c1[L]   per-type correction (see smoe_gemm_act_mode)
 * (smoe_gemm_sb_bytes(L) bytes). A weight row's 32 elements are unpacked to unsigned bytes once per row and
 * broadcast 4 at a time (u8 x s8 dot products into int32 lanes), so weights are read straight from the GGUF layout,
 * once per row per group of tokens, and no weight repacking is needed.
 */
#ifndef SMOE_CPU_SIMD_H
#define SMOE_CPU_SIMD_H

#include "core/types.h"

#include <stddef.h>
#include <stdint.h>

typedef enum smoe_cpu_isa {
    SMOE_CPU_ISA_AUTO = 0,    /* the best this CPU runs */
    SMOE_CPU_ISA_SCALAR,      /* plain C: the reference */
    SMOE_CPU_ISA_AVX2,        /* AVX2 + FMA + F16C */
    SMOE_CPU_ISA_AVX2_VNNI,   /* + AVX-VNNI (VEX vpdpbusd) */
    SMOE_CPU_ISA_AVX512,      /* AVX-512 F/BW/VL/DQ + FMA + F16C */
    SMOE_CPU_ISA_AVX512_VNNI, /* + AVX512-VNNI */
    SMOE_CPU_ISA_COUNT
} smoe_cpu_isa;

/* How the packed activations' c0/c1 are filled for a weight type (Σy = sum of the int8 values of the range). */
typedef enum smoe_gemm_act_mode {
    SMOE_GEMM_ACT_OFFSET,  /* c0 = -off * Σy over the 32 elements (int32): weights stored as q + off        */
    SMOE_GEMM_ACT_ASYM,    /* c0 = dy * Σy (float): weights x = s * q + b, the kernel adds b * c0           */
    SMOE_GEMM_ACT_SPLIT16, /* c0, c1 = -off * Σy over elements 0..15 and 16..31 (int32): 16-element scales  */
} smoe_gemm_act_mode;

typedef struct smoe_gemm_act_desc {
    smoe_type          act_type; /* SMOE_TYPE_Q8_0 or SMOE_TYPE_Q8_K: the activation quantization */
    smoe_gemm_act_mode mode;
    int32_t            off;      /* the weight offset (OFFSET, SPLIT16) */
} smoe_gemm_act_desc;

#define SMOE_GEMM_MAX_LANES 16
#define SMOE_GEMM_MAX_ROWS  4 /* rows per gemm kernel call */

static inline size_t smoe_gemm_sb_bytes(int lanes) { return (size_t)44 * (size_t)lanes; }

/* Computes rows [0, nr) (nr <= SMOE_GEMM_MAX_ROWS) of weights w (row i at w + i * w_stride; k elements) against
 * n_groups packed token groups (act: n_groups consecutive groups of k/32 sub-blocks each), of which the last has
 * `tail` (1..lanes) tokens: res[(g * SMOE_GEMM_MAX_ROWS + i) * lanes + l] = row i . token l of group g (lanes of
 * the last group past `tail` may be left unwritten). */
typedef void (*smoe_gemm_fn)(int64_t k, const void *w, size_t w_stride, int nr, const uint8_t *act, int n_groups,
                             int tail, float *res);

/* Packs the quantized activation rows rows[0..n) (n <= lanes; missing lanes are zero) of k elements, in the
 * desc's act_type layout, into one group of k/32 sub-blocks at out. */
typedef void (*smoe_gemm_pack_fn)(const smoe_gemm_act_desc *desc, int64_t k, const void *const *rows, int n,
                                  uint8_t *out);

/* Row-block GEMV: rows [0, nr) (nr <= SMOE_GEMV_ROWS) of weights w (row i at w + i * w_stride; k elements) against
 * one token: out[i] = row i . token. The token comes in the gemv layout: for types whose vec_dot_type is Q8_0,
 * gemv_prep_q8_0's output (k int8 values, 32-byte aligned; k/32 float scales; k/32 int32 block sums); for Q8_K
 * types, the Q8_K row itself. */
#define SMOE_GEMV_ROWS 4
typedef void (*smoe_gemv_fn)(int64_t k, const void *w, size_t w_stride, int nr, const void *act, float *out);
/* bytes of the gemv layout of a Q8_0 row of k elements */
static inline size_t smoe_gemv_q8_0_bytes(int64_t k) { return (size_t)k + (size_t)(k / 32) * 8; }

typedef struct smoe_cpu_kernels {
    smoe_cpu_isa isa;
    const char  *name;
    /* Row dot products with the traits' signature and vec_dot_type (NULL: the reference). */
    smoe_vec_dot_fn vec_dot[SMOE_TYPE_COUNT];
    /* Activation quantizers, same bytes as the reference (NULL: the reference). */
    smoe_from_f32_fn quant_q8_0, quant_q8_k;
    /* Batched matmul (NULL: not for this type). */
    int                lanes;
    smoe_gemm_fn       gemm[SMOE_TYPE_COUNT];
    smoe_gemm_act_desc gemm_act[SMOE_TYPE_COUNT];
    smoe_gemm_pack_fn  gemm_pack;
    /* Row-block GEMV for one token (NULL: the row dot products above) */
    smoe_gemv_fn gemv[SMOE_TYPE_COUNT];
    void (*gemv_prep_q8_0)(const void *row, int64_t k, uint8_t *out);
    /* Element-wise helpers (NULL: the reference loops). */
    float (*dot_f32)(const float *a, const float *b, int64_t n);
    void (*f16_to_f32)(const void *src, float *dst, int64_t n);
    void (*f32_to_f16)(const float *src, void *dst, int64_t n);
    /* y[i] += a * x[i] */
    void (*axpy_f32)(int64_t n, float a, const float *x, float *y);
    /* y[i] *= a */
    void (*scale_f32)(int64_t n, float a, float *y);
    /* out[i] = silu(g[i]) * u[i] */
    void (*swiglu_f32)(int64_t n, const float *g, const float *u, float *out);
    /* sum of x[i]^2 (double accumulation is not required; result as float) */
    float (*sumsq_f32)(const float *x, int64_t n);
    /* y[i] = (x[i] * s) * w[i] (RMS_NORM's last step, in the reference's order) */
    void (*mul_scaled_f32)(int64_t n, const float *x, float s, const float *w, float *y);
    /* Fused attention of `group` (1..SMOE_ATTN_MAX_GROUP) query heads sharing one KV head, over the n cells listed in
     * cells[] (n >= 0): out[g] = sum_j softmax_j(scale * q[g] . K_j) V_j, or zeros when n == 0. K_j and V_j are rows
     * of hd elements (a multiple of 8; of 32 for Q8_0) of kv_type (F16, F32 or Q8_0) at k + cells[j] * k_stride and
     * v + cells[j] * v_stride. Online softmax over chunks of cells: no score matrix. scratch: smoe_attn_scratch().
     * With ml != NULL the sums are left unnormalized (out[g] = sum_j exp(s_j - m_g) V_j) and ml[2g], ml[2g+1] get the
     * running maximum m_g and the sum l_g of the exponentials (m = -inf, l = 0 when n == 0), for merging segments. */
    void (*attn)(int64_t hd, int group, const float *const *q, float scale, smoe_type kv_type, const void *k,
                 size_t k_stride, const void *v, size_t v_stride, const int32_t *cells, int64_t n, float *const *out,
                 float *ml, float *scratch);
} smoe_cpu_kernels;

#define SMOE_ATTN_MAX_GROUP 8
#define SMOE_ATTN_CHUNK     64 /* cells per online-softmax step */
/* floats of scratch one attn call needs */
static inline size_t smoe_attn_scratch(int64_t hd, int group) {
    return (size_t)group * ((size_t)hd + SMOE_ATTN_CHUNK) + 16;
}

/* The table for an ISA: NULL if this build or this CPU lacks it. AUTO gives the best available (never NULL). */
const smoe_cpu_kernels *smoe_cpu_kernels_get(smoe_cpu_isa isa);
/* The ISA that AUTO resolves to (the SMOE_CPU_ISA environment variable, e.g. "avx2" or "scalar", caps it). */
smoe_cpu_isa smoe_cpu_isa_best(void);
const char  *smoe_cpu_isa_name(smoe_cpu_isa isa);
/* "scalar", "avx2", "avx2-vnni", "avx512", "avx512-vnni" -> the ISA, or -1. */
int smoe_cpu_isa_from_name(const char *name);

/* Fill functions of the SIMD variants (simd-avx2.c, simd-avx512.c); each leaves what it lacks untouched. */
void smoe_cpu_simd_fill_avx2(smoe_cpu_kernels *k);
void smoe_cpu_simd_fill_avx2vnni(smoe_cpu_kernels *k);
void smoe_cpu_simd_fill_avx512(smoe_cpu_kernels *k);
void smoe_cpu_simd_fill_avx512vnni(smoe_cpu_kernels *k);

#endif /* SMOE_CPU_SIMD_H */
