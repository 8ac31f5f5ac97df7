#version 450
/*
 * moe_route.comp - MOE_ROUTE: ids[:, t] = the n_used largest router logits of token t in decreasing order; ties
 * keep the lower expert index, NaN ranks last (all-NaN: the first free expert), as the CPU reference.
 * One invocation per token (n_expert is small).
 */
#include "types.glsl"

layout(binding = 0) readonly buffer Logits { float logits[]; };
layout(binding = 1) writeonly buffer Ids { int ids[]; };

layout(push_constant) uniform Push {
    uint l_off, l_nb1;   /* elements */
    uint o_off, o_nb1;   /* elements */
    uint n_expert, n_used, n_tokens;
} p;

#define MAX_USED 64u

void main() {
    const uint t = gl_GlobalInvocationID.x;
    if (t >= p.n_tokens) return;
    const uint lo = p.l_off + t * p.l_nb1;
    int taken[MAX_USED];
    for (uint s = 0u; s < p.n_used; s++) {
        int best = -1;
        float bv = 0.0;
        for (uint e = 0u; e < p.n_expert; e++) {
            bool used = false;
            for (uint q = 0u; q < s; q++) used = used || taken[q] == int(e);
            if (used) continue;
            const float v = logits[lo + e];
            if (best < 0 || v > bv || (isnan(bv) && !isnan(v))) {
                best = int(e);
                bv = v;
            }
        }
        taken[s] = best;
        ids[p.o_off + t * p.o_nb1 + s] = best;
    }
}
