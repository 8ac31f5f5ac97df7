#version 450
/*
 * mul_mv.comp - MUL_MAT, and MUL_MAT_ID with -DID=1, for weights of type A_TYPE against f32 activations:
 *     out[i, j] = sum_l to_f32(w[l, i]) x[l, j].
 * A workgroup computes NR weight rows (spec constant 1) for up to NC activation columns (spec constant 2): its WG
 * invocations stride over k four elements at a time, keep NR*NC partial sums in registers and reduce them at the
 * end, so a weight row is read once per NC columns (decode uses NC = 1, batches NC = 8).
 * MUL_MAT_ID: the columns of a workgroup are up to NC (slot, token) pairs routed to one expert, taken from the chunk
 * table that moe_sort.comp built on the device (binding 3); workgroup y = chunk index.
 * One dispatch covers weight rows [row_lo, row_lo + m_rows) and (ID) experts [e_lo, e_hi): a weight larger than
 * one binding is split over several dispatches by the host (vk-ops.c).
 */
#include "types.glsl"

layout(constant_id = 1) const uint NR = 2;
layout(constant_id = 2) const uint NC = 1;

#define RAW_BINDING 0
#define RAW wa
#include "raw.glsl"
#define DQ dq
#define DQ_RAW wa
#define DQ_TYPE A_TYPE
#include "dequant.glsl"

layout(binding = 1) readonly buffer X { float xs[]; };
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
#else
    uint w_off; /* byte offset of row row_lo */
    uint w_nb1, k, m_rows, row_lo;
    uint x_off, x_nb1, x_nb2, x_nb3, x_ne1, x_ne2, n_cols; /* elements */
    uint out_off, out_nb1;                                 /* elements; out [m, n_cols] */
#endif
} p;

#if SG
shared float red_mv[NR * NC * 64];
#else
shared float red_mv[NR * NC * WG];
#endif

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint rb = gl_WorkGroupID.x * NR;
    uint xb[NC], ob[NC];
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
        const uint s = pp % p.n_used, t = pp / p.n_used;
        xb[c] = p.x_off + (p.n_x == 1u ? 0u : s) * p.x_nb1 + t * p.x_nb2;
        ob[c] = p.out_off + s * p.out_nb1 + t * p.out_nb2 + p.row_lo;
    }
    wb = p.w_off + (e - p.e_lo) * p.w_nb2;
#else
    const uint c0 = gl_WorkGroupID.y * NC;
    ncols = min(NC, p.n_cols - c0);
    [[unroll]] for (uint c = 0u; c < NC; c++) {
        const uint j = c0 + min(c, ncols - 1u);
        const uint i1 = j % p.x_ne1, r = j / p.x_ne1;
        xb[c] = p.x_off + i1 * p.x_nb1 + (r % p.x_ne2) * p.x_nb2 + (r / p.x_ne2) * p.x_nb3;
        ob[c] = p.out_off + j * p.out_nb1 + p.row_lo;
    }
    wb = p.w_off;
#endif
    uint ro[NR];
    [[unroll]] for (uint r = 0u; r < NR; r++) ro[r] = wb + min(rb + r, p.m_rows - 1u) * p.w_nb1;

    float acc[NR * NC];
    [[unroll]] for (uint a = 0u; a < NR * NC; a++) acc[a] = 0.0;

    for (uint i = 4u * tid; i + 4u <= p.k; i += 4u * WG) {
        vec4 xv[NC];
        [[unroll]] for (uint c = 0u; c < NC; c++)
            xv[c] = vec4(xs[xb[c] + i], xs[xb[c] + i + 1u], xs[xb[c] + i + 2u], xs[xb[c] + i + 3u]);
        [[unroll]] for (uint r = 0u; r < NR; r++) {
            const vec4 wv = dq_4(ro[r], i);
            [[unroll]] for (uint c = 0u; c < NC; c++) acc[r * NC + c] += dot(wv, xv[c]);
        }
    }
#if IS_PLAIN(A_TYPE)
    for (uint i = (p.k & ~3u) + tid; i < p.k; i += WG) {
        [[unroll]] for (uint r = 0u; r < NR; r++) {
            const float w = dq_1(ro[r], i);
            [[unroll]] for (uint c = 0u; c < NC; c++) acc[r * NC + c] += w * xs[xb[c] + i];
        }
    }
#endif

#if SG
    [[unroll]] for (uint a = 0u; a < NR * NC; a++) {
        const float v = subgroupAdd(acc[a]);
        if (subgroupElect()) red_mv[a * gl_NumSubgroups + gl_SubgroupID] = v;
    }
    barrier();
    if (tid < NR * NC) {
        float s = 0.0;
        for (uint g = 0u; g < gl_NumSubgroups; g++) s += red_mv[tid * gl_NumSubgroups + g];
        acc[0] = s;
    }
#else
    [[unroll]] for (uint a = 0u; a < NR * NC; a++) red_mv[a * WG + tid] = acc[a];
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s)
            [[unroll]] for (uint a = 0u; a < NR * NC; a++) red_mv[a * WG + tid] += red_mv[a * WG + tid + s];
        barrier();
    }
    if (tid < NR * NC) acc[0] = red_mv[tid * WG];
#endif
    if (tid < NR * NC) {
        const uint r = tid / NC, c = tid % NC;
        if (rb + r < p.m_rows && c < ncols) dst[ob[c] + rb + r] = acc[0];
    }
}
