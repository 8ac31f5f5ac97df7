#version 450
/*
 * mul_mvq.comp - MUL_MAT (and MUL_MAT_ID with -DID=1) with integer dot products: weights of type A_TYPE (Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) against activations quantized to 32-element int8 blocks by quantize_q8.comp.
 * Per 32-element block an invocation unpacks the weight quants into 8 words of 4 int8 and takes 8 packed 4-way
 * dot products with the activation block (OpSDot, SPV_KHR_integer_dot_product, with -DDOT=1; the host uses this
 * shader only on devices with shaderIntegerDotProduct, the float mul_mv.comp elsewhere). Offsets of asymmetric and
 * K-quant blocks use the activation block's sum s. Workgroup layout (NR rows of TPR invocations, NC columns) and
 * the split over dispatches are as in mul_mv.comp; here an invocation's unit of work is one 32-element block.
 */
#extension GL_EXT_spirv_intrinsics : require
#include "types.glsl"

#define RAW_BINDING 0
#define RAW wa
#include "raw.glsl"
#define U16 wa_u16
#define U32 wa_u32
#define U8 wa_u8

layout(binding = 1) readonly buffer XQ { uvec4 xq4[]; }; /* quantize_q8.comp blocks: 3 uvec4 each */
layout(binding = 2) writeonly buffer Out { float dst[]; };
#if ID
layout(binding = 3) readonly buffer Sorted { uint sorted[]; };
#endif

spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4_(uint a, uint b, spirv_literal int fmt);
#define DOT4(a, b) sdot4_((a), (b), 0)

layout(push_constant) uniform Push {
#if ID
    uint w_off, w_nb1, w_nb2, k, m_rows, row_lo, e_lo, e_hi;
    uint q_off, n_x, n_used;       /* quantized x: row (slot or 0) + token * n_x */
    uint out_off, out_nb1, out_nb2;
    uint sort_off, max_chunks;
#else
    uint w_off, w_nb1, k, m_rows, row_lo;
    uint q_off, n_cols;
    uint out_off, out_nb1;
#endif
} p;

#include "mv_reduce.glsl"

uint high_bits(uint h) { return ((h & 1u) << 4) | ((h & 2u) << 11) | ((h & 4u) << 18) | ((h & 8u) << 25); }

/* The contribution of weight block b (32 elements) of the row at byte ro against the activation block qb (in
 * uvec4: quants in xq4[qb], xq4[qb + 1], d and s in xq4[qb + 2]). */
float block_dot(uint ro, uint b, uint qb) {
    const uvec4 xa = xq4[qb], xb = xq4[qb + 1u];
    const uint xw[8] = uint[8](xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w);
    const uvec2 ds = xq4[qb + 2u].xy;
    const float dx = uintBitsToFloat(ds.x), sx = uintBitsToFloat(ds.y);
    uint w[8];
#if A_TYPE == TYPE_Q4_0 || A_TYPE == TYPE_Q8_0
    /* The block (18 or 34 bytes, 2-aligned) from NW aligned words, realigned by sh (0 or 16 bits): U32 took half the
     * blocks' quant words in two 16-bit loads and the other half in one, so a subgroup ran both ways, 13 and 25
     * loads a block; an invocation's block spans several cache lines of the subgroup's load either way, and each
     * costs a cycle of the L1. The last word may hold 2 bytes past the block: inside the binding (bind_range ends
     * windows at a multiple of 4). */
#if A_TYPE == TYPE_Q4_0
    const uint NW = 5u, bo = ro + b * 18u;
#else
    const uint NW = 9u, bo = ro + b * 34u;
#endif
    const uint a = bo >> 2, sh = (bo & 2u) << 3;
    uint W[NW];
    [[unroll]] for (uint j = 0u; j < NW; j++) W[j] = wa_w32[a + j];
    const float dw = f16_to_f32(sh == 0u ? W[0] & 0xFFFFu : W[0] >> 16);
    [[unroll]] for (uint j = 0u; j + 1u < NW; j++) {
        const uint q = sh == 0u ? (W[j] >> 16) | (W[j + 1u] << 16) : W[j + 1u];
#if A_TYPE == TYPE_Q4_0
        w[j] = q & 0x0F0F0F0Fu;
        w[j + 4u] = (q >> 4) & 0x0F0F0F0Fu;
#else
        w[j] = q;
#endif
    }
#if A_TYPE == TYPE_Q4_0
    const float mw = -8.0 * dw;
#else
    const float mw = 0.0;
#endif
#elif A_TYPE == TYPE_Q4_1
    const uint bo = ro + b * 20u, qs = bo + 4u;
    const vec2 dm = unpackHalf2x16(U32(bo));
    const float dw = dm.x, mw = dm.y;
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        const uint q = U32(qs + 4u * j);
        w[j] = q & 0x0F0F0F0Fu;
        w[j + 4u] = (q >> 4) & 0x0F0F0F0Fu;
    }
#elif A_TYPE == TYPE_Q5_0 || A_TYPE == TYPE_Q5_1
#if A_TYPE == TYPE_Q5_0
    const uint bo = ro + b * 22u, qh_o = bo + 2u;
    const float dw = f16_to_f32(U16(bo)), mw = -16.0 * dw;
#else
    const uint bo = ro + b * 24u, qh_o = bo + 4u;
    const vec2 dm = unpackHalf2x16(U32(bo));
    const float dw = dm.x, mw = dm.y;
#endif
    const uint qh = U32(qh_o);
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        const uint q = U32(qh_o + 4u + 4u * j);
        w[j] = (q & 0x0F0F0F0Fu) | high_bits(qh >> (4u * j));
        w[j + 4u] = ((q >> 4) & 0x0F0F0F0Fu) | high_bits(qh >> (16u + 4u * j));
    }
#elif A_TYPE == TYPE_Q4_K || A_TYPE == TYPE_Q5_K
#if A_TYPE == TYPE_Q4_K
    const uint bo = ro + (b >> 3) * 144u, qs = bo + 16u;
#else
    const uint bo = ro + (b >> 3) * 176u, qs = bo + 48u;
#endif
    const uint sb = b & 7u;
    uint sc, m;
    if (sb < 4u) {
        sc = U8(bo + 4u + sb) & 63u;
        m = U8(bo + 8u + sb) & 63u;
    } else {
        const uint b8 = U8(bo + 8u + sb);
        sc = (b8 & 0xFu) | ((U8(bo + sb) >> 6) << 4);
        m = (b8 >> 4) | ((U8(bo + 4u + sb) >> 6) << 4);
    }
    const vec2 dd = unpackHalf2x16(U32(bo));
    const float dw = dd.x * float(sc), mw = -dd.y * float(m);
    [[unroll]] for (uint j = 0u; j < 8u; j++) {
        w[j] = (U32(qs + 32u * (sb >> 1) + 4u * j) >> ((sb & 1u) << 2)) & 0x0F0F0F0Fu;
#if A_TYPE == TYPE_Q5_K
        w[j] |= ((U32(bo + 16u + 4u * j) >> sb) & 0x01010101u) << 4;
#endif
    }
#elif A_TYPE == TYPE_Q6_K
    const uint bo = ro + (b >> 3) * 210u, sb = b & 7u;
    const uint h = sb >> 2, e0 = 32u * (sb & 3u);
    [[unroll]] for (uint j = 0u; j < 8u; j++) {
        const uint e = e0 + 4u * j;
        w[j] = ((U32(bo + 64u * h + (e & 63u)) >> (e >= 64u ? 4u : 0u)) & 0x0F0F0F0Fu) |
               (((U32(bo + 128u + 32u * h + (e & 31u)) >> (2u * (e >> 5))) & 0x03030303u) << 4);
    }
    const int sc0 = bitfieldExtract(int(U8(bo + 192u + 8u * h + (e0 >> 4))), 0, 8);
    const int sc1 = bitfieldExtract(int(U8(bo + 193u + 8u * h + (e0 >> 4))), 0, 8);
    int s0 = 0, s1 = 0, x0 = 0, x1 = 0;
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        s0 += DOT4(w[j], xw[j]);
        s1 += DOT4(w[j + 4u], xw[j + 4u]);
        x0 += DOT4(0x01010101u, xw[j]);
        x1 += DOT4(0x01010101u, xw[j + 4u]);
    }
    /* (q - 32) per element; scales per 16 elements */
    return dx * f16_to_f32(U16(bo + 208u)) * float(sc0 * (s0 - 32 * x0) + sc1 * (s1 - 32 * x1));
#else
#error "mul_mvq.comp: unsupported A_TYPE"
#endif
#if A_TYPE != TYPE_Q6_K
    int sumi = 0;
    [[unroll]] for (uint j = 0u; j < 8u; j++) sumi += DOT4(w[j], xw[j]);
    return dw * dx * float(sumi) + mw * sx;
#endif
}

void main() {
    const uint tid = gl_LocalInvocationID.x, t = tid % TPR;
    const uint row = gl_WorkGroupID.x * NR + tid / TPR;
    const uint nb = p.k / 32u;
    uint qb[NC], ob[NC];
    uint ncols, wb;
#if ID
    const uint q = gl_WorkGroupID.y;
    if (q >= sorted[p.sort_off]) return;
    const uint ch = p.sort_off + 1u + 3u * q;
    const uint e = sorted[ch], start = sorted[ch + 1u];
    ncols = sorted[ch + 2u];
    if (e < p.e_lo || e >= p.e_hi) return;
    const uint pairs = p.sort_off + 1u + 3u * p.max_chunks + start;
    [[unroll]] for (uint c = 0u; c < NC; c++) {
        const uint pp = sorted[pairs + min(c, ncols - 1u)];
        const uint s = pp % p.n_used, tok = pp / p.n_used;
        qb[c] = p.q_off / 4u + ((p.n_x == 1u ? 0u : s) + tok * p.n_x) * nb * 3u;
        ob[c] = p.out_off + s * p.out_nb1 + tok * p.out_nb2 + p.row_lo;
    }
    wb = p.w_off + (e - p.e_lo) * p.w_nb2;
#else
    const uint c0 = gl_WorkGroupID.y * NC;
    ncols = min(NC, p.n_cols - c0);
    [[unroll]] for (uint c = 0u; c < NC; c++) {
        const uint j = c0 + min(c, ncols - 1u);
        qb[c] = p.q_off / 4u + j * nb * 3u;
        ob[c] = p.out_off + j * p.out_nb1 + p.row_lo;
    }
    wb = p.w_off;
#endif
    const uint ro = wb + min(row, p.m_rows - 1u) * p.w_nb1;

    float acc[NC];
    [[unroll]] for (uint c = 0u; c < NC; c++) acc[c] = 0.0;
    for (uint b = t; b < nb; b += TPR)
        [[unroll]] for (uint c = 0u; c < NC; c++) acc[c] += block_dot(ro, b, qb[c] + 3u * b);
    mv_store(acc, row < p.m_rows, ob, ncols, row);
}
