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

#endif /* SMOE_QUANT_IMPL_H */
