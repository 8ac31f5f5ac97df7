/*
 * quant-impl.h - small helpers shared by the quantizer files (q-legacy.c, q-kquants.c). Not part of any API.
 *
 * Floating-point contraction (a*b+c fused into one FMA) is off in these files: dequantization must round exactly
 * as ggml and numpy do (a product, then a sum). GCC keeps ISO C semantics under -std=c11 (no contraction); clang
 * needs the pragma.
 */
#ifndef SMOE_QUANT_IMPL_H
#define SMOE_QUANT_IMPL_H

#include "quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define SMOE_FP16_MAX 65504.0f

/* Uniform weights for the search quantizers when no importance matrix is given (their loops then need no branch). */
#define SMOE_Q_ONES4 1.0f, 1.0f, 1.0f, 1.0f
#define SMOE_Q_ONES16 SMOE_Q_ONES4, SMOE_Q_ONES4, SMOE_Q_ONES4, SMOE_Q_ONES4
#define SMOE_Q_ONES64 SMOE_Q_ONES16, SMOE_Q_ONES16, SMOE_Q_ONES16, SMOE_Q_ONES16
static const float smoe_q_ones[256] = {SMOE_Q_ONES64, SMOE_Q_ONES64, SMOE_Q_ONES64, SMOE_Q_ONES64};

/* Round to nearest, ties to even, for |x| < 2^22 (magic-number trick: exact and branch-free). Callers clamp first. */
static inline int smoe_q_nearest(float x) {
    float    v = x + 12582912.0f;
    uint32_t u;
    memcpy(&u, &v, 4);
    return (int)(u & 0x007fffffu) - 0x00400000;
}

/* Clamps to [lo, hi]; a NaN becomes lo. */
static inline float smoe_q_clampf(float x, float lo, float hi) {
    return x >= lo ? (x <= hi ? x : hi) : lo;
}

/* nearest integer of x clamped to [lo, hi]; robust for any float (NaN -> lo). */
static inline int smoe_q_round_clamp(float x, int lo, int hi) {
    return smoe_q_nearest(smoe_q_clampf(x, (float)lo, (float)hi));
}

/* The value an f32 becomes after a round trip through fp16, with overflow clamped to the largest finite half. */
static inline float smoe_q_fp16_round(float x) {
    x = smoe_q_clampf(x, -SMOE_FP16_MAX, SMOE_FP16_MAX);
    return smoe_fp16_to_f32(smoe_f32_to_fp16(x));
}

static inline smoe_fp16 smoe_q_to_fp16(float x) {
    return smoe_f32_to_fp16(smoe_q_clampf(x, -SMOE_FP16_MAX, SMOE_FP16_MAX));
}

/* fp16 -> f32 without branches (so loops over it vectorize); equal to smoe_fp16_to_f32 for every non-NaN input.
 * Normal numbers: exponent and mantissa shifted into place and the exponent rebiased by a multiply by 2^-112
 * (224 added to the exponent field first, so 15 - 127 = 224 - 112 - 127 + 15 - 15 works out); subnormals: the
 * mantissa placed under an exponent of 2^-1 and the implicit 0.5 subtracted, exactly. */
static inline float smoe_q_fp16_to_f32_fast(uint16_t h) {
    const uint32_t w      = (uint32_t)h << 16;
    const uint32_t sign   = w & 0x80000000u;
    const uint32_t two_w  = w + w;
    const float    normal = smoe_bits_f32((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    const float    sub    = smoe_bits_f32((two_w >> 17) | (126u << 23)) - 0.5f;
    const uint32_t is_sub = 0u - (uint32_t)(two_w < (1u << 27)); /* all ones for subnormals: a mask, not a branch */
    return smoe_bits_f32(sign | (smoe_f32_bits(sub) & is_sub) | (smoe_f32_bits(normal) & ~is_sub));
}

#endif /* SMOE_QUANT_IMPL_H */
