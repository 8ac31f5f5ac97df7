/*
 * dequant.glsl - decoding tensor rows of every type smoe computes with, from a raw binding (raw.glsl).
 * Include after defining DQ (a name prefix), DQ_RAW (the raw.glsl prefix to read from) and DQ_TYPE (a TYPE_* id);
 * undefines all three. Defines:
 *   vec4  DQ_4(uint ro, uint i)  elements i..i+3 of the row starting at byte ro; i % 4 == 0, i + 3 < row length
 *   float DQ_1(uint ro, uint i)  element i (plain types F32/F16/BF16 only: rows of any length)
 * and the constants DQ_BLOCK (elements per block) and DQ_BYTES (bytes per block).
 * Block layouts are quant/quant.h's; the float operations follow quant/q-legacy.c and q-kquants.c in order, so a
 * row decodes as on the CPU up to fused multiply-adds.
 */
#define U16 CAT(DQ_RAW, _u16)
#define U32 CAT(DQ_RAW, _u32)
#define U8  CAT(DQ_RAW, _u8)
#define F32 CAT(DQ_RAW, _f32)
#define U32X2 CAT(DQ_RAW, _u32x2)
#define U32X4 CAT(DQ_RAW, _u32x4)

#if DQ_TYPE == TYPE_F32
const uint CAT(DQ, _BLOCK) = 1u, CAT(DQ, _BYTES) = 4u;
float CAT(DQ, _1)(uint ro, uint i) { return F32(ro + 4u * i); }
vec4 CAT(DQ, _4)(uint ro, uint i) { return uintBitsToFloat(U32X4(ro + 4u * i)); }
#elif DQ_TYPE == TYPE_F16
const uint CAT(DQ, _BLOCK) = 1u, CAT(DQ, _BYTES) = 2u;
float CAT(DQ, _1)(uint ro, uint i) { return f16_to_f32(U16(ro + 2u * i)); }
vec4 CAT(DQ, _4)(uint ro, uint i) {
    const uvec2 w = U32X2(ro + 2u * i);
    return vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y));
}
#elif DQ_TYPE == TYPE_BF16
const uint CAT(DQ, _BLOCK) = 1u, CAT(DQ, _BYTES) = 2u;
float CAT(DQ, _1)(uint ro, uint i) { return bf16_to_f32(U16(ro + 2u * i)); }
vec4 CAT(DQ, _4)(uint ro, uint i) {
    const uvec2 w = U32X2(ro + 2u * i);
    return vec4(uintBitsToFloat(w.x << 16), uintBitsToFloat(w.x & 0xFFFF0000u), uintBitsToFloat(w.y << 16),
                uintBitsToFloat(w.y & 0xFFFF0000u));
}
#elif DQ_TYPE == TYPE_Q4_0
/* d, qs[16]: element j in the low nibble of qs[j] (j < 16) or the high nibble of qs[j - 16]; x = (q - 8) d */
const uint CAT(DQ, _BLOCK) = 32u, CAT(DQ, _BYTES) = 18u;
vec4 CAT(DQ, _4)(uint ro, uint i) {
    const uint bo = ro + (i >> 5) * 18u, j = i & 31u;
    const float d = f16_to_f32(U16(bo));
    const uint q = (U32(bo + 2u + (j & 15u)) >> ((j & 16u) >> 2)) & 0x0F0F0F0Fu;
    return (bytes_u(q) - 8.0) * d;
}
#elif DQ_TYPE == TYPE_Q4_1
/* d, m, qs[16]; x = q d + m */
const uint CAT(DQ, _BLOCK) = 32u, CAT(DQ, _BYTES) = 20u;
vec4 CAT(DQ, _4)(uint ro, uint i) {
    const uint bo = ro + (i >> 5) * 20u, j = i & 31u;
    const vec2 dm = unpackHalf2x16(U32(bo));
    const uint q = (U32(bo + 4u + (j & 15u)) >> ((j & 16u) >> 2)) & 0x0F0F0F0Fu;
    return bytes_u(q) * dm.x + dm.y;
}
#elif DQ_TYPE == TYPE_Q5_0 || DQ_TYPE == TYPE_Q5_1
/* q5_0: d, qh (u32: bit j = bit 4 of element j), qs[16]; x = (q - 16) d.  q5_1: d, m, qh, qs; x = q d + m */
#if DQ_TYPE == TYPE_Q5_0
const uint CAT(DQ, _BLOCK) = 32u, CAT(DQ, _BYTES) = 22u;
#define DQ_QH 2u
#else
const uint CAT(DQ, _BLOCK) = 32u, CAT(DQ, _BYTES) = 24u;
#define DQ_QH 4u
#endif
vec4 CAT(DQ, _4)(uint ro, uint i) {
    const uint bo = ro + (i >> 5) * CAT(DQ, _BYTES), j = i & 31u;
    const uint hb = (U32(bo + DQ_QH) >> j) & 0xFu;
    uint q = (U32(bo + DQ_QH + 4u + (j & 15u)) >> ((j & 16u) >> 2)) & 0x0F0F0F0Fu;
    q |= ((hb & 1u) << 4) | ((hb & 2u) << 11) | ((hb & 4u) << 18) | ((hb & 8u) << 25);
#if DQ_TYPE == TYPE_Q5_0
    return (bytes_u(q) - 16.0) * f16_to_f32(U16(bo));
#else
    const vec2 dm = unpackHalf2x16(U32(bo));
    return bytes_u(q) * dm.x + dm.y;
#endif
}
#undef DQ_QH
#elif DQ_TYPE == TYPE_Q8_0
/* d, qs[32] signed; x = q d */
const uint CAT(DQ, _BLOCK) = 32u, CAT(DQ, _BYTES) = 34u;
vec4 CAT(DQ, _4)(uint ro, uint i) {
    const uint bo = ro + (i >> 5) * 34u;
    return bytes_s(U32(bo + 2u + (i & 31u))) * f16_to_f32(U16(bo));
}
#elif DQ_TYPE == TYPE_Q4_K || DQ_TYPE == TYPE_Q5_K
/* d, dmin, scales[12] (6-bit sc/m pairs), [q5_k: qh[32]], qs[128]: 8 sub-blocks of 32; chunk c = 32 bytes holds
 * sub-block 2c (low nibbles) and 2c+1 (high); q5_k: bit 4 of element l of sub-block s is bit s of qh[l].
 * x = (d sc) q - (dmin m) */
#if DQ_TYPE == TYPE_Q4_K
const uint CAT(DQ, _BLOCK) = 256u, CAT(DQ, _BYTES) = 144u;
#define DQ_QS 16u
#else
const uint CAT(DQ, _BLOCK) = 256u, CAT(DQ, _BYTES) = 176u;
#define DQ_QS 48u
#endif
vec4 CAT(DQ, _4)(uint ro, uint i) {
    const uint bo = ro + (i >> 8) * CAT(DQ, _BYTES), j = i & 255u;
    const uint sb = j >> 5, l = j & 31u;
    const vec2 dd = unpackHalf2x16(U32(bo));
    uint sc, m;
    if (sb < 4u) {
        sc = U8(bo + 4u + sb) & 63u;
        m = U8(bo + 8u + sb) & 63u;
    } else {
        const uint b8 = U8(bo + 8u + sb);
        sc = (b8 & 0xFu) | ((U8(bo + sb) >> 6) << 4);
        m = (b8 >> 4) | ((U8(bo + 4u + sb) >> 6) << 4);
    }
    uint q = (U32(bo + DQ_QS + 32u * (sb >> 1) + l) >> ((sb & 1u) << 2)) & 0x0F0F0F0Fu;
#if DQ_TYPE == TYPE_Q5_K
    q |= ((U32(bo + 16u + l) >> sb) & 0x01010101u) << 4;
#endif
    const float d0 = dd.x * float(sc), m0 = dd.y * float(m);
    return d0 * bytes_u(q) - m0;
}
#undef DQ_QS
#elif DQ_TYPE == TYPE_Q6_K
/* ql[128], qh[64], scales[16] (int8), d: halves of 128; element e of half h: low 4 bits in ql[64h + e % 64]
 * (high nibble if e >= 64), high 2 bits in qh[32h + e % 32] at bit 2 (e / 32); x = (d sc[e / 16]) (q - 32) */
const uint CAT(DQ, _BLOCK) = 256u, CAT(DQ, _BYTES) = 210u;
vec4 CAT(DQ, _4)(uint ro, uint i) {
    const uint bo = ro + (i >> 8) * 210u, j = i & 255u;
    const uint h = j >> 7, e = j & 127u;
    uint q = (U32(bo + 64u * h + (e & 63u)) >> (e >= 64u ? 4u : 0u)) & 0x0F0F0F0Fu;
    q |= ((U32(bo + 128u + 32u * h + (e & 31u)) >> (2u * (e >> 5))) & 0x03030303u) << 4;
    const float d = f16_to_f32(U16(bo + 208u));
    const float sc = float(bitfieldExtract(int(U8(bo + 192u + 8u * h + (e >> 4))), 0, 8));
    return (d * sc) * (bytes_u(q) - 32.0);
}
#elif DQ_TYPE == TYPE_Q8_K
/* d (f32), qs[256] signed, bsums[16]; x = d q */
const uint CAT(DQ, _BLOCK) = 256u, CAT(DQ, _BYTES) = 292u;
vec4 CAT(DQ, _4)(uint ro, uint i) {
    const uint bo = ro + (i >> 8) * 292u;
    return uintBitsToFloat(U32(bo)) * bytes_s(U32(bo + 4u + (i & 255u)));
}
#else
#error "dequant.glsl: unknown DQ_TYPE"
#endif

#undef U16
#undef U32
#undef U8
#undef F32
#undef U32X2
#undef U32X4
#undef DQ
#undef DQ_RAW
#undef DQ_TYPE
