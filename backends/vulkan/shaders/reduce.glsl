/*
 * reduce.glsl - workgroup-wide sum and max of one float per invocation; every invocation receives the result.
 * Call from uniform control flow. Subgroup arithmetic when SG, else a shared-memory tree (WG a power of two, which
 * the host guarantees for every pipeline).
 */
#if SG
shared float red_sh[64]; /* one slot per subgroup: WG <= 256 and subgroups have >= 4 invocations */

float wg_sum(float v) {
    v = subgroupAdd(v);
    if (subgroupElect()) red_sh[gl_SubgroupID] = v;
    barrier();
    float r = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++) r += red_sh[i];
    barrier();
    return r;
}

float wg_max(float v) {
    v = subgroupMax(v);
    if (subgroupElect()) red_sh[gl_SubgroupID] = v;
    barrier();
    float r = red_sh[0];
    for (uint i = 1u; i < gl_NumSubgroups; i++) r = max(r, red_sh[i]);
    barrier();
    return r;
}
#else
shared float red_sh[WG];

float wg_sum(float v) {
    const uint tid = gl_LocalInvocationID.x;
    red_sh[tid] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) red_sh[tid] += red_sh[tid + s];
        barrier();
    }
    const float r = red_sh[0];
    barrier();
    return r;
}

float wg_max(float v) {
    const uint tid = gl_LocalInvocationID.x;
    red_sh[tid] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) red_sh[tid] = max(red_sh[tid], red_sh[tid + s]);
        barrier();
    }
    const float r = red_sh[0];
    barrier();
    return r;
}
#endif
