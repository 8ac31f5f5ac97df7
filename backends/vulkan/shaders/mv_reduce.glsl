/*
 * mv_reduce.glsl - the end of the matrix-vector shaders (mul_mv.comp, mul_mvq.comp): a workgroup of WG invocations
 * holds NR row groups of TPR = WG / NR invocations (spec constants 0 and 1; the host picks NR so that TPR matches
 * the work in a row); each invocation has NC partial sums (spec constant 2) for its group's row. mv_store adds up
 * each group's sums and the group's invocation 0 writes them. Subgroup arithmetic is used when one group is the
 * whole workgroup (NR = 1), so no assumption is made about how invocations map to subgroups; else a shared tree.
 */
layout(constant_id = 1) const uint NR = 1;
layout(constant_id = 2) const uint NC = 1;
#define TPR (WG / NR)

shared float red_mv[NC * WG];

/* acc: this invocation's NC sums for row `row` (valid: row < m_rows); outs: NC output offsets; n: valid columns */
void mv_store(float acc[NC], bool valid, uint outs[NC], uint n, uint row) {
    const uint tid = gl_LocalInvocationID.x, rl = tid / TPR, t = tid % TPR;
    if (TPR == 1u) { /* one invocation per row (CPU devices): nothing to add up, no barrier */
        if (valid)
            [[unroll]] for (uint c = 0u; c < NC; c++) {
                if (c >= n) break;
                dst[outs[c] + row] = acc[c];
            }
        return;
    }
#if SG
    if (NR == 1u) {
        [[unroll]] for (uint c = 0u; c < NC; c++) {
            const float v = subgroupAdd(acc[c]);
            if (subgroupElect()) red_mv[c * gl_NumSubgroups + gl_SubgroupID] = v;
        }
        barrier();
        if (tid == 0u && valid)
            [[unroll]] for (uint c = 0u; c < NC; c++) {
                if (c >= n) break;
                float s = 0.0;
                for (uint g = 0u; g < gl_NumSubgroups; g++) s += red_mv[c * gl_NumSubgroups + g];
                dst[outs[c] + row] = s;
            }
        return;
    }
#endif
    [[unroll]] for (uint c = 0u; c < NC; c++) red_mv[(rl * NC + c) * TPR + t] = acc[c];
    barrier();
    for (uint s = TPR / 2u; s > 0u; s >>= 1) {
        if (t < s)
            [[unroll]] for (uint c = 0u; c < NC; c++) red_mv[(rl * NC + c) * TPR + t] += red_mv[(rl * NC + c) * TPR + t + s];
        barrier();
    }
    if (t == 0u && valid)
        [[unroll]] for (uint c = 0u; c < NC; c++) {
            if (c >= n) break;
            dst[outs[c] + row] = red_mv[(rl * NC + c) * TPR];
        }
}
