#version 450
/*
 * attention.comp - ATTENTION: fused causal GQA attention over the KV cache with an online softmax (no score matrix).
 * One workgroup per (query head, token); K and V rows are of type KV_TYPE. Cells [0, n_scan) are visited in tiles
 * of WG: invocation j scores cell c0 + j (masked: same sequence, position <= the query's), the workgroup takes the
 * tile maximum, rescales its running sum and accumulator, then invocations owning 4-wide slices of head_dim add
 * p_j V_j for the tile. head_dim % 4 == 0 and head_dim <= min(MAXD, 16 WG) (checked by the host).
 * Split over the cells (flash-decoding, n_chunks > 1: decode on a GPU, where n_head x n_tokens workgroups would leave
 * most of it idle): workgroup z takes cells [z chunk, (z + 1) chunk) and binding 6 is then scratch memory that
 * receives, per (token, head, chunk), the running max, the sum and the unnormalized accumulator (head_dim + 2
 * floats); attention_combine.comp merges them into the output.
 */
#include "types.glsl"
#include "reduce.glsl"

#define RAW_BINDING 1
#define RAW kr
#include "raw.glsl"
#define DQ dqk
#define DQ_RAW kr
#define DQ_TYPE KV_TYPE
#include "dequant.glsl"
#define RAW_BINDING 2
#define RAW vr
#include "raw.glsl"
#define DQ dqv
#define DQ_RAW vr
#define DQ_TYPE KV_TYPE
#include "dequant.glsl"

layout(binding = 0) readonly buffer Q { float qs[]; };
layout(binding = 3) readonly buffer QInfo { int q_info[]; };
layout(binding = 4) readonly buffer CellInfo { int cell_info[]; };
layout(binding = 5) readonly buffer NScan { int n_scan_buf[]; };
layout(binding = 6) writeonly buffer Out { float dst[]; };

layout(push_constant) uniform Push {
    uint q_off, q_nb1, q_nb2;        /* elements */
    uint k_off, k_nb1, k_nb2;        /* bytes */
    uint v_off, v_nb1, v_nb2;        /* bytes */
    uint qi_off, qi_nb1, ci_off, ci_nb1, ns_off; /* elements */
    uint o_off, o_nb1, o_nb2;        /* elements */
    uint head_dim, n_head, n_head_kv, n_cells;
    float scale;
    uint n_chunks, chunk;            /* cells per workgroup z; n_chunks 1: the whole cache, output to dst */
} p;

#define MAXD 512u
#define MAX_SLICES 4u
shared vec4 q_sh[MAXD / 4u];
shared float p_sh[WG];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
    const uint hkv = h / (p.n_head / p.n_head_kv);
    const uint nd4 = p.head_dim / 4u;
    const uint qo = p.q_off + h * p.q_nb1 + t * p.q_nb2;
    for (uint d4 = tid; d4 < nd4; d4 += WG)
        q_sh[d4] = vec4(qs[qo + 4u * d4], qs[qo + 4u * d4 + 1u], qs[qo + 4u * d4 + 2u], qs[qo + 4u * d4 + 3u]);
    const int qpos = q_info[p.qi_off + t * p.qi_nb1], qseq = q_info[p.qi_off + t * p.qi_nb1 + 1u];
    const uint n_all = uint(clamp(n_scan_buf[p.ns_off], 0, int(p.n_cells)));
    const uint z = gl_WorkGroupID.z, c_begin = min(z * p.chunk, n_all);
    const uint n_scan = p.n_chunks > 1u ? min(c_begin + p.chunk, n_all) : n_all;
    const uint kb = p.k_off + hkv * p.k_nb1, vb = p.v_off + hkv * p.v_nb1;
    barrier();

    float m = NEG_INF, sum = 0.0;
    vec4 acc[MAX_SLICES];
    [[unroll]] for (uint c = 0u; c < MAX_SLICES; c++) acc[c] = vec4(0.0);

    for (uint c0 = p.n_chunks > 1u ? c_begin : 0u; c0 < n_scan; c0 += WG) {
        const uint j = c0 + tid;
        bool ok = false;
        float s = NEG_INF;
        if (j < n_scan) {
            const int cpos = cell_info[p.ci_off + j * p.ci_nb1], cseq = cell_info[p.ci_off + j * p.ci_nb1 + 1u];
            ok = cseq >= 0 && cseq == qseq && cpos <= qpos;
        }
        if (ok) {
            const uint ko = kb + j * p.k_nb2;
            float d = 0.0;
            for (uint d4 = 0u; d4 < nd4; d4++) d += dot(q_sh[d4], dqk_4(ko, 4u * d4));
            s = d * p.scale;
        }
        const float tmax = wg_max(s);
        if (tmax == NEG_INF) continue; /* no visible cell in this tile (uniform) */
        const float m_new = max(m, tmax);
        const float corr = m == NEG_INF ? 0.0 : exp(m - m_new);
        const float pj = ok ? exp(s - m_new) : 0.0;
        p_sh[tid] = pj;
        sum = sum * corr + wg_sum(pj); /* its barriers also publish p_sh */
        const uint n_tile = min(WG, n_scan - c0);
        [[unroll]] for (uint c = 0u; c < MAX_SLICES; c++) {
            const uint d4 = tid + c * WG;
            if (d4 >= nd4) break;
            vec4 a = acc[c] * corr;
            for (uint jj = 0u; jj < n_tile; jj++) {
                const float pv = p_sh[jj];
                if (pv != 0.0) a += pv * dqv_4(vb + (c0 + jj) * p.v_nb2, 4u * d4);
            }
            acc[c] = a;
        }
        m = m_new;
        barrier(); /* p_sh is rewritten by the next tile */
    }

    if (p.n_chunks > 1u) { /* this chunk's partial result */
        const uint po = p.o_off + ((t * p.n_head + h) * p.n_chunks + z) * (p.head_dim + 2u);
        if (tid == 0u) {
            dst[po] = m;
            dst[po + 1u] = sum;
        }
        [[unroll]] for (uint c = 0u; c < MAX_SLICES; c++) {
            const uint d4 = tid + c * WG;
            if (d4 >= nd4) break;
            dst[po + 2u + 4u * d4] = acc[c].x;
            dst[po + 3u + 4u * d4] = acc[c].y;
            dst[po + 4u + 4u * d4] = acc[c].z;
            dst[po + 5u + 4u * d4] = acc[c].w;
        }
        return;
    }
    const float inv = sum > 0.0 ? 1.0 / sum : 0.0;
    const uint oo = p.o_off + h * p.o_nb1 + t * p.o_nb2;
    [[unroll]] for (uint c = 0u; c < MAX_SLICES; c++) {
        const uint d4 = tid + c * WG;
        if (d4 >= nd4) break;
        const vec4 r = acc[c] * inv;
        dst[oo + 4u * d4] = r.x;
        dst[oo + 4u * d4 + 1u] = r.y;
        dst[oo + 4u * d4 + 2u] = r.z;
        dst[oo + 4u * d4 + 3u] = r.w;
    }
}
