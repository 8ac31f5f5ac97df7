/*
 * quantize.glsl - the reference quantizers of quant/q-legacy.c (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) for one block of 32
 * floats, written through ST16 (a raw.glsl store function) at byte offset bo. Include after defining ST16 and
 * QT (the destination TYPE_* id); undefines both. Defines: void quantize_block(float x[32], uint bo).
 * Same operations as the C reference; device division is allowed 2.5 ulp, so a level can differ by one where a
 * value sits exactly between two levels.
 */

/* a / b correctly rounded in practice: device division may be off by 2.5 ulp, which moves values that sit on a
 * level boundary (frequent for inputs from f16/bf16) to the other level than the CPU picks */
float div_rn(float a, float b) {
    precise float q = a / b;
    precise float r = fma(-q, b, a);
    precise float qr = q + r / b;
    return qr;
}

/* roundf: nearest, halfway cases away from zero (exact for |v| < 2^23) */
float round_away(float v) {
    const float r = trunc(v);
    return abs(v - r) >= 0.5 ? r + sign(v) : r;
}

void quantize_block(float x[32], uint bo) {
#if QT == TYPE_Q8_0
    float amax = 0.0;
    [[unroll]] for (uint j = 0u; j < 32u; j++) amax = max(amax, abs(x[j]));
    const float d = div_rn(amax, 127.0);
    const float id = d != 0.0 ? div_rn(1.0, d) : 0.0;
    ST16(bo, f32_to_f16(d));
    [[unroll]] for (uint j = 0u; j < 32u; j += 2u) {
        precise float v0 = x[j] * id, v1 = x[j + 1u] * id;
        const int q0 = int(round_away(v0)), q1 = int(round_away(v1));
        ST16(bo + 2u + j, uint(q0 & 0xFF) | (uint(q1 & 0xFF) << 8));
    }
#elif QT == TYPE_Q4_0 || QT == TYPE_Q5_0
    /* the signed value of largest magnitude (first one on ties) maps to -8 (-16) */
    float amax = 0.0, mx = 0.0;
    [[unroll]] for (uint j = 0u; j < 32u; j++) {
        if (amax < abs(x[j])) {
            amax = abs(x[j]);
            mx = x[j];
        }
    }
#if QT == TYPE_Q4_0
    const float d = div_rn(mx, -8.0);
    const float off = 8.5;
    const int qmax = 15;
#else
    const float d = div_rn(mx, -16.0);
    const float off = 16.5;
    const int qmax = 31;
#endif
    const float id = d != 0.0 ? div_rn(1.0, d) : 0.0;
    ST16(bo, f32_to_f16(d));
    uint q[32];
    [[unroll]] for (uint j = 0u; j < 32u; j++) {
        precise float v = x[j] * id;
        precise float w = v + off; /* two roundings, as in C (no contraction into an fma) */
        q[j] = uint(min(qmax, int(w)));
    }
#elif QT == TYPE_Q4_1 || QT == TYPE_Q5_1
    float lo = x[0], hi = x[0];
    [[unroll]] for (uint j = 1u; j < 32u; j++) {
        lo = min(lo, x[j]);
        hi = max(hi, x[j]);
    }
#if QT == TYPE_Q4_1
    const float d = div_rn(hi - lo, 15.0);
    const int qmax = 15;
#else
    const float d = div_rn(hi - lo, 31.0);
    const int qmax = 31;
#endif
    const float id = d != 0.0 ? div_rn(1.0, d) : 0.0;
    ST16(bo, f32_to_f16(d));
    ST16(bo + 2u, f32_to_f16(lo));
    uint q[32];
    [[unroll]] for (uint j = 0u; j < 32u; j++) {
        precise float v = (x[j] - lo) * id;
        precise float w = v + 0.5;
        q[j] = uint(min(qmax, int(w)));
    }
#else
#error "quantize.glsl: unknown QT"
#endif

#if QT == TYPE_Q4_0 || QT == TYPE_Q4_1 || QT == TYPE_Q5_0 || QT == TYPE_Q5_1
#if QT == TYPE_Q4_0
    const uint qs = bo + 2u;
#elif QT == TYPE_Q4_1
    const uint qs = bo + 4u;
#elif QT == TYPE_Q5_0
    const uint qs = bo + 6u;
#else
    const uint qs = bo + 8u;
#endif
#if QT == TYPE_Q5_0 || QT == TYPE_Q5_1
    uint qh = 0u;
    [[unroll]] for (uint j = 0u; j < 32u; j++) qh |= ((q[j] >> 4) & 1u) << j;
    ST16(qs - 4u, qh & 0xFFFFu);
    ST16(qs - 2u, qh >> 16);
#endif
    [[unroll]] for (uint j = 0u; j < 16u; j += 2u) {
        const uint b0 = (q[j] & 0xFu) | ((q[j + 16u] & 0xFu) << 4);
        const uint b1 = (q[j + 1u] & 0xFu) | ((q[j + 17u] & 0xFu) << 4);
        ST16(qs + j, b0 | (b1 << 8));
    }
#endif
}

#undef ST16
#undef QT
