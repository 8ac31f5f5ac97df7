/*
 * quant.h - block formats bit-compatible with GGUF, and their reference (plain C) conversions.
 * Each block struct carries a _Static_assert of its GGUF size.
 *
 * Two quantizers per type:
 * - traits->from_f32 ("reference"): fast and deterministic. For Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 and Q8_K it produces the
 *   same bytes as ggml's reference quantizers (and the PyPI gguf package); the activation rows of vec_dot use it.
 *   For Q4_K/Q5_K/Q6_K, which have no simple reference, it is the search quantizer below without weights.
 * - smoe_quantize_row / smoe_quantize_rows ("search"): for weights. It searches scales (and mins) per block by
 *   iterated weighted least squares over candidate scales, always including the reference quantizer's scale, and
 *   measures each candidate with the stored (fp16/6-bit) parameters, so per block its error is never above the
 *   reference's. Optional importance weights (an "imatrix": one weight per column, e.g. the mean squared activation
 *   of that input feature) make it minimize sum_i w_i (x_i - q_i)^2 instead of the plain squared error.
 *
 * Dot products (traits->vec_dot): a row of the weight type against a row of traits->vec_dot_type:
 * - Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 against Q8_0 (the per-block offset of Q4_1/Q5_1 uses the Q8_0 block's sum);
 * - Q4_K, Q5_K, Q6_K against Q8_K (its bsums give the min terms);
 * - F32, F16 and BF16 against F32: activations stay F32, so these rows lose no precision to an activation rounding.
 * Every function here is thread-safe (no globals; all state is in arguments).
 */
#ifndef SMOE_QUANT_H
#define SMOE_QUANT_H

#include "../core/fp16.h"
#include "../core/types.h"

#include <stddef.h>
#include <stdint.h>

#define SMOE_QK4_0 32
#define SMOE_QK4_1 32
#define SMOE_QK5_0 32
#define SMOE_QK5_1 32
#define SMOE_QK8_0 32
#define SMOE_QK_K 256
#define SMOE_K_SCALE_SIZE 12

/* ---- legacy 32-element blocks ---- */

/* x = d * (q - 8), q in [0, 15]; qs[j] holds element j (low nibble) and j + 16 (high nibble). */
typedef struct smoe_block_q4_0 {
    smoe_fp16 d;
    uint8_t   qs[SMOE_QK4_0 / 2];
} smoe_block_q4_0;
_Static_assert(sizeof(smoe_block_q4_0) == 18, "q4_0 block size");

/* x = d * q + m, q in [0, 15]; nibble layout as q4_0. */
typedef struct smoe_block_q4_1 {
    smoe_fp16 d;
    smoe_fp16 m;
    uint8_t   qs[SMOE_QK4_1 / 2];
} smoe_block_q4_1;
_Static_assert(sizeof(smoe_block_q4_1) == 20, "q4_1 block size");

/* x = d * (q - 16), q in [0, 31]; low 4 bits as q4_0, bit 4 of element j is bit j of qh (little-endian u32). */
typedef struct smoe_block_q5_0 {
    smoe_fp16 d;
    uint8_t   qh[4];
    uint8_t   qs[SMOE_QK5_0 / 2];
} smoe_block_q5_0;
_Static_assert(sizeof(smoe_block_q5_0) == 22, "q5_0 block size");

/* x = d * q + m, q in [0, 31]; bits as q5_0. */
typedef struct smoe_block_q5_1 {
    smoe_fp16 d;
    smoe_fp16 m;
    uint8_t   qh[4];
    uint8_t   qs[SMOE_QK5_1 / 2];
} smoe_block_q5_1;
_Static_assert(sizeof(smoe_block_q5_1) == 24, "q5_1 block size");

/* x = d * q, q in [-127, 127]. */
typedef struct smoe_block_q8_0 {
    smoe_fp16 d;
    int8_t    qs[SMOE_QK8_0];
} smoe_block_q8_0;
_Static_assert(sizeof(smoe_block_q8_0) == 34, "q8_0 block size");

/* ---- K-quants: 256-element super-blocks ---- */

/* 8 sub-blocks of 32: x = d * sc[j] * q - dmin * m[j], q in [0, 15], sc and m 6-bit, packed in scales[12]:
 * for j < 4: scales[j] = sc[j] | (sc[j+4] >> 4) << 6, scales[j+4] = m[j] | (m[j+4] >> 4) << 6,
 *            scales[j+8] = (sc[j+4] & 15) | (m[j+4] & 15) << 4.
 * qs: 4 chunks of 32 bytes; chunk c holds sub-block 2c in the low nibbles and 2c+1 in the high nibbles. */
typedef struct smoe_block_q4_k {
    smoe_fp16 d;
    smoe_fp16 dmin;
    uint8_t   scales[SMOE_K_SCALE_SIZE];
    uint8_t   qs[SMOE_QK_K / 2];
} smoe_block_q4_k;
_Static_assert(sizeof(smoe_block_q4_k) == 144, "q4_k block size");

/* As q4_k with q in [0, 31]: bit 4 of element l of sub-block j is bit j of qh[l]. */
typedef struct smoe_block_q5_k {
    smoe_fp16 d;
    smoe_fp16 dmin;
    uint8_t   scales[SMOE_K_SCALE_SIZE];
    uint8_t   qh[SMOE_QK_K / 8];
    uint8_t   qs[SMOE_QK_K / 2];
} smoe_block_q5_k;
_Static_assert(sizeof(smoe_block_q5_k) == 176, "q5_k block size");

/* 16 sub-blocks of 16: x = d * scales[j] * (q - 32), q in [0, 63]. Two halves of 128 elements; in half h, element
 * e (0..127) has low 4 bits in ql[64h + e % 64] (low nibble if e < 64, else high) and high 2 bits in
 * qh[32h + e % 32] at bit 2 * (e / 32). */
typedef struct smoe_block_q6_k {
    uint8_t   ql[SMOE_QK_K / 2];
    uint8_t   qh[SMOE_QK_K / 4];
    int8_t    scales[SMOE_QK_K / 16];
    smoe_fp16 d;
} smoe_block_q6_k;
_Static_assert(sizeof(smoe_block_q6_k) == 210, "q6_k block size");

/* Activations for K-quant dot products: x = d * q; bsums[j] = sum of q over elements 16j..16j+15. */
typedef struct smoe_block_q8_k {
    float   d;
    int8_t  qs[SMOE_QK_K];
    int16_t bsums[SMOE_QK_K / 16];
} smoe_block_q8_k;
_Static_assert(sizeof(smoe_block_q8_k) == 292, "q8_k block size");

/* ---- per-type functions (n is a multiple of the block size; callers check with smoe_row_size) ---- */

/* Reference quantizers: src[n] -> blocks. */
void smoe_quant_q4_0_ref(const float *src, void *dst, int64_t n);
void smoe_quant_q4_1_ref(const float *src, void *dst, int64_t n);
void smoe_quant_q5_0_ref(const float *src, void *dst, int64_t n);
void smoe_quant_q5_1_ref(const float *src, void *dst, int64_t n);
void smoe_quant_q8_0_ref(const float *src, void *dst, int64_t n);
void smoe_quant_q8_k_ref(const float *src, void *dst, int64_t n);
void smoe_quant_q4_k_ref(const float *src, void *dst, int64_t n);
void smoe_quant_q5_k_ref(const float *src, void *dst, int64_t n);
void smoe_quant_q6_k_ref(const float *src, void *dst, int64_t n);

/* Search quantizers; w (n weights, >= 0) may be NULL for uniform weights. */
void smoe_quant_q4_0_search(const float *src, void *dst, int64_t n, const float *w);
void smoe_quant_q4_1_search(const float *src, void *dst, int64_t n, const float *w);
void smoe_quant_q5_0_search(const float *src, void *dst, int64_t n, const float *w);
void smoe_quant_q5_1_search(const float *src, void *dst, int64_t n, const float *w);
void smoe_quant_q8_0_search(const float *src, void *dst, int64_t n, const float *w);
void smoe_quant_q4_k_search(const float *src, void *dst, int64_t n, const float *w);
void smoe_quant_q5_k_search(const float *src, void *dst, int64_t n, const float *w);
void smoe_quant_q6_k_search(const float *src, void *dst, int64_t n, const float *w);

/* Dequantizers: blocks -> dst[n]. Bit-exact with ggml / gguf.quants (same float operations in the same order). */
void smoe_dequant_q4_0(const void *src, float *dst, int64_t n);
void smoe_dequant_q4_1(const void *src, float *dst, int64_t n);
void smoe_dequant_q5_0(const void *src, float *dst, int64_t n);
void smoe_dequant_q5_1(const void *src, float *dst, int64_t n);
void smoe_dequant_q8_0(const void *src, float *dst, int64_t n);
void smoe_dequant_q4_k(const void *src, float *dst, int64_t n);
void smoe_dequant_q5_k(const void *src, float *dst, int64_t n);
void smoe_dequant_q6_k(const void *src, float *dst, int64_t n);
void smoe_dequant_q8_k(const void *src, float *dst, int64_t n);

/* Dot products: *out = sum over n elements of x (the weight type) times y (its vec_dot_type). */
void smoe_vec_dot_q4_0_q8_0(int64_t n, float *out, const void *x, const void *y);
void smoe_vec_dot_q4_1_q8_0(int64_t n, float *out, const void *x, const void *y);
void smoe_vec_dot_q5_0_q8_0(int64_t n, float *out, const void *x, const void *y);
void smoe_vec_dot_q5_1_q8_0(int64_t n, float *out, const void *x, const void *y);
void smoe_vec_dot_q8_0_q8_0(int64_t n, float *out, const void *x, const void *y);
void smoe_vec_dot_q4_k_q8_k(int64_t n, float *out, const void *x, const void *y);
void smoe_vec_dot_q5_k_q8_k(int64_t n, float *out, const void *x, const void *y);
void smoe_vec_dot_q6_k_q8_k(int64_t n, float *out, const void *x, const void *y);

/* The 6-bit scale/min pair j (0..7) of a Q4_K/Q5_K block. */
static inline void smoe_quant_k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m  = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m  = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* ---- rows and tensors (quant.c) ---- */

/* Quantizes one row of n elements (a multiple of the block size) into dst with the search quantizer; imatrix
 * (n weights) may be NULL. Also converts to F32/F16/BF16. Returns the bytes written, 0 if the type has no
 * quantizer or n is not a multiple of its block size. */
size_t smoe_quantize_row(smoe_type type, const float *src, void *dst, int64_t n, const float *imatrix);

/* Quantizes n_rows rows of n_per_row elements (row-major) into consecutive rows of smoe_row_size(type, n_per_row)
 * bytes. Thread-safe: callers split a tensor by rows across threads. Returns the bytes written or 0 (as above). */
size_t smoe_quantize_rows(smoe_type type, const float *src, void *dst, int64_t n_rows, int64_t n_per_row);
/* The same with an importance matrix: n_per_row weights shared by every row (NULL = uniform). */
size_t smoe_quantize_rows_imatrix(smoe_type type, const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                                  const float *imatrix);

/* Dequantizes n elements of `type`; returns false if the type has no to_f32 or n is ragged. */
bool smoe_dequantize_row(smoe_type type, const void *src, float *dst, int64_t n);

/* True if all n floats are finite. */
bool smoe_quant_all_finite(const float *x, int64_t n);

/* ---- error metrics ---- */

/* Accumulated error of quantized rows against their source. Zero-initialize, add rows, then read. */
typedef struct smoe_quant_error {
    double  sum_sq_err; /* sum (x - dequant(q))^2 */
    double  sum_sq_src; /* sum x^2                */
    double  max_abs_err;
    int64_t n;          /* elements added         */
    int64_t n_nonfinite; /* dequantized values that are NaN or Inf */
} smoe_quant_error;

/* Adds a row: src[n] and its quantized form q (n a multiple of the block size). Returns false if the type cannot
 * be dequantized or n is ragged. Uses a small stack buffer; no allocation. */
bool   smoe_quant_error_add(smoe_quant_error *e, smoe_type type, const float *src, const void *q, int64_t n);
void   smoe_quant_error_merge(smoe_quant_error *into, const smoe_quant_error *from);
double smoe_quant_error_rmse(const smoe_quant_error *e);
/* Normalized mean squared error: sum_sq_err / sum_sq_src (0 when the source is all zero and so is the error). */
double smoe_quant_error_nmse(const smoe_quant_error *e);

#endif /* SMOE_QUANT_H */
