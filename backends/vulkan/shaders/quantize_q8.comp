#version 450
/*
 * quantize_q8.comp - f32 activation rows -> blocks of 32 int8 for the integer-dot matrix products (mul_mvq.comp).
 * A block is 12 uints (48 bytes, so that blocks stay 16-byte aligned for vector loads): the 32 quants packed four per
 * uint, then d (f32 bits of the fp16-rounded scale), s = d * sum(q) (f32 bits) and two unused words. Quantization is quant/q-legacy.c's Q8_0 reference (d = amax / 127 stored as fp16, q =
 * round(x / d) with the unrounded d), so Q4_0..Q8_0 products see the activations the CPU reference sees.
 * One invocation per block; grid y = row (rows over dims 1..3 of x).
 */
#include "types.glsl"

layout(binding = 0) readonly buffer X { float xs[]; };
layout(binding = 1) writeonly buffer Q { uvec4 qs4[]; };

layout(push_constant) uniform Push {
    uint x_off, x_nb1, x_nb2, x_nb3, x_ne1, x_ne2; /* elements */
    uint k, q_off;                                 /* q_off in uints, a multiple of 4 */
} p;

float div_rn(float a, float b) {
    precise float q = a / b;
    precise float r = fma(-q, b, a);
    precise float qr = q + r / b;
    return qr;
}

float round_away(float v) {
    const float r = trunc(v);
    return abs(v - r) >= 0.5 ? r + sign(v) : r;
}

void main() {
    const uint b = gl_GlobalInvocationID.x, row = gl_WorkGroupID.y;
    const uint nb = p.k / 32u;
    if (b >= nb) return;
    const uint i1 = row % p.x_ne1, r = row / p.x_ne1;
    const uint xo = p.x_off + i1 * p.x_nb1 + (r % p.x_ne2) * p.x_nb2 + (r / p.x_ne2) * p.x_nb3 + 32u * b;
    float x[32];
    float amax = 0.0;
    [[unroll]] for (uint j = 0u; j < 32u; j++) {
        x[j] = xs[xo + j];
        amax = max(amax, abs(x[j]));
    }
    const float d = div_rn(amax, 127.0);
    const float id = d != 0.0 ? div_rn(1.0, d) : 0.0;
    const float d16 = f16_to_f32(f32_to_f16(d));
    const uint qo = p.q_off / 4u + (row * nb + b) * 3u; /* in uvec4 */
    int sum = 0;
    uint w[8];
    [[unroll]] for (uint j = 0u; j < 32u; j += 4u) {
        w[j / 4u] = 0u;
        [[unroll]] for (uint e = 0u; e < 4u; e++) {
            precise float v = x[j + e] * id;
            const int q = int(round_away(v));
            sum += q;
            w[j / 4u] |= uint(q & 0xFF) << (8u * e);
        }
    }
    qs4[qo] = uvec4(w[0], w[1], w[2], w[3]);
    qs4[qo + 1u] = uvec4(w[4], w[5], w[6], w[7]);
    qs4[qo + 2u] = uvec4(floatBitsToUint(d16), floatBitsToUint(d16 * float(sum)), 0u, 0u);
}
