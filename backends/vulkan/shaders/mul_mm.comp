#version 450
/*
 * mul_mm.comp - MUL_MAT, and MUL_MAT_ID with -DID=1, as a tiled matrix-matrix product for many activation columns
 * (prefill): weights of type A_TYPE against f32 activations, out[i, j] = sum_l to_f32(w[l, i]) x[l, j]. Operands,
 * push constants and the split over dispatches are mul_mv.comp's (vk-push.h: smoe_vk_push_mul_mv / _mul_mv_id).
 *
 * A workgroup computes a BM x BN tile of the output (weight rows x activation columns; spec constants 1, 2). It walks
 * k in steps of BK = 32: the WG invocations decode the tile's BM x BK weights (dequant.glsl) and load its BN x BK
 * activations into shared memory, then each invocation adds the products of its TM rows (spec constant 3) by its
 * TN columns into TM x TN f32 registers. The invocations form a WM x WN grid, WM = BM / TM, WN = WG / WM,
 * TN = BN / WN (the host keeps these exact); invocation (tm, tn) owns rows tm + i WM and columns tn + j WN, so
 * neighbouring invocations read neighbouring shared words. With WN = 1 every invocation reads the same
 * activation words, a uniform load. Both tiles are stored k-contiguous as vec4, rows padded by one vec4.
 * Shared bytes: (BM + BN) (BK / 4 + 1) 16 + 8 BN (vk-ops.c, mm_shared_bytes, checks them against the device limit).
 * Each weight is read once per BN columns instead of once per 8.
 *
 * Ragged tiles: rows past m_rows and columns past the chunk's count are computed on clamped operands and not
 * stored. k: quantized types have k % 32 == 0 (their blocks); plain types may end inside a tile, whose missing
 * elements are zeros on both sides.
 * MUL_MAT_ID: the columns of a workgroup are up to BN (slot, token) pairs of one expert, one chunk of the table
 * moe_sort.comp built on the device with nc = BN (binding 3); workgroup y = chunk index.
 */
#include "types.glsl"

#define RAW_BINDING 0
#define RAW wa
#include "raw.glsl"
#define DQ dq
#define DQ_RAW wa
#define DQ_TYPE A_TYPE
#include "dequant.glsl"

layout(binding = 1) readonly buffer X { float xs[]; };
layout(binding = 1) readonly buffer X4 { vec4 xs4[]; }; /* when p.x4: every activation row 16-byte aligned */
layout(binding = 2) writeonly buffer Out { float dst[]; };
#if ID
layout(binding = 3) readonly buffer Sorted { uint sorted[]; };
#endif

layout(push_constant) uniform Push {
#if ID
    uint w_off; /* byte offset of row row_lo of expert e_lo */
    uint w_nb1, w_nb2, k, m_rows, row_lo, e_lo, e_hi;
    uint x_off, x_nb1, x_nb2, n_x; /* elements; x [k, n_x, n_tokens] */
    uint n_used;
    uint out_off, out_nb1, out_nb2; /* elements; out [m, n_used, n_tokens] */
    uint sort_off, max_chunks;      /* the chunk table in binding 3 (moe_sort.comp) */
    uint x4;
#else
    uint w_off; /* byte offset of row row_lo */
    uint w_nb1, k, m_rows, row_lo;
    uint x_off, x_nb1, x_nb2, x_nb3, x_ne1, x_ne2, n_cols; /* elements */
    uint out_off, out_nb1;                                 /* elements; out [m, n_cols] */
    uint x4;                                               /* x offset and strides are multiples of 4 */
#endif
} p;

layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint TM = 1;
const uint WM = BM / TM;
const uint WN = WG / WM;
const uint TN = BN / WN;
#define BK 32u
#define K4 (BK / 4u)      /* vec4 per tile row */
#define SK (K4 + 1u)      /* padded stride of a tile row, in vec4 */

shared vec4 a_sh[BM * SK];
shared vec4 b_sh[BN * SK];
shared uint xcol[BN]; /* element offset of each column's activations */
shared uint ocol[BN]; /* element offset of each column's output (row row_lo) */

/* Weights i..i+3 of the row at byte ro; zeros past k (plain types only: quantized rows end on a tile). */
vec4 load_w(uint ro, uint i) {
#if IS_PLAIN(A_TYPE)
    if (i + 4u > p.k) {
        vec4 v = vec4(0.0);
        [[unroll]] for (uint q = 0u; q < 4u; q++)
            if (i + q < p.k) v[q] = dq_1(ro, i + q);
        return v;
    }
#endif
    return dq_4(ro, i);
}

/* Activations i..i+3 of the column at element xb; zeros past k. */
vec4 load_x(uint xb, uint i) {
    if (i + 4u <= p.k) {
        if (p.x4 != 0u) return xs4[(xb + i) >> 2];
        return vec4(xs[xb + i], xs[xb + i + 1u], xs[xb + i + 2u], xs[xb + i + 3u]);
    }
    vec4 v = vec4(0.0);
    [[unroll]] for (uint q = 0u; q < 4u; q++)
        if (i + q < p.k) v[q] = xs[xb + i + q];
    return v;
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint tm = tid % WM;
    const uint tn = WN == 1u ? 0u : tid / WM; /* a constant when WN = 1: the activation loads are uniform */
    const uint r0 = gl_WorkGroupID.x * BM;   /* first row of the tile in this dispatch's range */
    uint ncols, wb;
#if ID
    const uint q = gl_WorkGroupID.y;
    if (q >= sorted[p.sort_off]) return;
    const uint ch = p.sort_off + 1u + 3u * q;
    const uint e = sorted[ch], start = sorted[ch + 1u];
    ncols = sorted[ch + 2u];
    if (e < p.e_lo || e >= p.e_hi) return;
    const uint pairs = p.sort_off + 1u + 3u * p.max_chunks + start;
    for (uint c = tid; c < BN; c += WG) {
        const uint pp = sorted[pairs + min(c, ncols - 1u)];
        const uint s = pp % p.n_used, tok = pp / p.n_used;
        xcol[c] = p.x_off + (p.n_x == 1u ? 0u : s) * p.x_nb1 + tok * p.x_nb2;
        ocol[c] = p.out_off + s * p.out_nb1 + tok * p.out_nb2 + p.row_lo;
    }
    wb = p.w_off + (e - p.e_lo) * p.w_nb2;
#else
    const uint c0 = gl_WorkGroupID.y * BN;
    ncols = min(BN, p.n_cols - c0);
    for (uint c = tid; c < BN; c += WG) {
        const uint j = c0 + min(c, ncols - 1u);
        const uint i1 = j % p.x_ne1, r = j / p.x_ne1;
        xcol[c] = p.x_off + i1 * p.x_nb1 + (r % p.x_ne2) * p.x_nb2 + (r / p.x_ne2) * p.x_nb3;
        ocol[c] = p.out_off + j * p.out_nb1 + p.row_lo;
    }
    wb = p.w_off;
#endif
    const uint nrows = min(BM, p.m_rows - r0);

    float acc[TM * TN];
    [[unroll]] for (uint i = 0u; i < TM * TN; i++) acc[i] = 0.0;
    for (uint k0 = 0u; k0 < p.k; k0 += BK) {
        barrier(); /* the previous tile is consumed (first time: xcol / ocol are written) */
        for (uint u = tid; u < BM * K4; u += WG) {
            const uint r = u / K4, k4 = u % K4;
            a_sh[r * SK + k4] = load_w(wb + (r0 + min(r, nrows - 1u)) * p.w_nb1, k0 + 4u * k4);
        }
        for (uint u = tid; u < BN * K4; u += WG) {
            const uint c = u / K4, k4 = u % K4;
            b_sh[c * SK + k4] = load_x(xcol[c], k0 + 4u * k4);
        }
        barrier();
        [[unroll]] for (uint k4 = 0u; k4 < K4; k4++) {
            vec4 a[TM];
            [[unroll]] for (uint i = 0u; i < TM; i++) a[i] = a_sh[(tm + i * WM) * SK + k4];
            [[unroll]] for (uint j = 0u; j < TN; j++) {
                const vec4 b = b_sh[(tn + j * WN) * SK + k4];
                [[unroll]] for (uint i = 0u; i < TM; i++) acc[i * TN + j] += dot(a[i], b);
            }
        }
    }
    [[unroll]] for (uint j = 0u; j < TN; j++) {
        const uint c = tn + j * WN;
        if (c >= ncols) break;
        [[unroll]] for (uint i = 0u; i < TM; i++) {
            const uint r = tm + i * WM;
            if (r < nrows) dst[ocol[c] + r0 + r] = acc[i * TN + j];
        }
    }
}
