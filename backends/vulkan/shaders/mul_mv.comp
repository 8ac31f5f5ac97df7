#version 450
/*
 * mul_mv.comp - MUL_MAT, and MUL_MAT_ID with -DID=1, for weights of type A_TYPE against f32 activations:
 *     out[i, j] = sum_l to_f32(w[l, i]) x[l, j].
 * A workgroup computes NR weight rows for up to NC activation columns (spec constants 1, 2): each row is handled
 * by TPR = WG / NR invocations that stride over k four elements at a time, keeping NC partial sums in registers,
 * reduced at the end (mv_reduce.glsl); a weight row is read once per NC columns (decode uses NC = 1, batches 8).
 * The host sizes TPR to the row (k / 4 units), so short rows do not leave most invocations idle.
 * MUL_MAT_ID: the columns of a workgroup are up to NC (slot, token) pairs routed to one expert, taken from the chunk
 * table that moe_sort.comp built on the device (binding 3); workgroup y = chunk index.
 * One dispatch covers weight rows [row_lo, row_lo + m_rows) and (ID) experts [e_lo, e_hi): a weight larger than
 * one binding is split over several dispatches by the host (vk-ops.c).
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

#include "mv_reduce.glsl"

void main() {
    const uint tid = gl_LocalInvocationID.x, t = tid % TPR;
    const uint row = gl_WorkGroupID.x * NR + tid / TPR;
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
        const uint s = pp % p.n_used, tok = pp / p.n_used;
        xb[c] = p.x_off + (p.n_x == 1u ? 0u : s) * p.x_nb1 + tok * p.x_nb2;
        ob[c] = p.out_off + s * p.out_nb1 + tok * p.out_nb2 + p.row_lo;
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
    const uint ro = wb + min(row, p.m_rows - 1u) * p.w_nb1;

    float acc[NC];
    [[unroll]] for (uint c = 0u; c < NC; c++) acc[c] = 0.0;
    for (uint i = 4u * t; i + 4u <= p.k; i += 4u * TPR) {
        const vec4 wv = dq_4(ro, i);
        if (p.x4 != 0u) {
            [[unroll]] for (uint c = 0u; c < NC; c++) acc[c] += dot(wv, xs4[(xb[c] + i) >> 2]);
        } else {
            [[unroll]] for (uint c = 0u; c < NC; c++)
                acc[c] += dot(wv, vec4(xs[xb[c] + i], xs[xb[c] + i + 1u], xs[xb[c] + i + 2u], xs[xb[c] + i + 3u]));
        }
    }
#if IS_PLAIN(A_TYPE)
    for (uint i = (p.k & ~3u) + t; i < p.k; i += TPR) {
        const float w = dq_1(ro, i);
        [[unroll]] for (uint c = 0u; c < NC; c++) acc[c] += w * xs[xb[c] + i];
    }
#endif
    mv_store(acc, row < p.m_rows, ob, ncols, row);
}
