#version 450
/*
 * moe_combine.comp - MOE_COMBINE: out[:, t] = sum_s w[s, t] y[:, s, t], w = softmax over s of logits[ids[s, t], t].
 * Grid: x = ceil(n_embd / WG), y = tokens. Expert ids outside [0, n_expert) are reported (the compute fails).
 */
#include "types.glsl"

layout(binding = 0) readonly buffer Y { float ys[]; };
layout(binding = 1) readonly buffer Logits { float logits[]; };
layout(binding = 2) readonly buffer Ids { int ids[]; };
layout(binding = 3) writeonly buffer Out { float dst[]; };

layout(push_constant) uniform Push {
    uint y_off, y_nb1, y_nb2;  /* elements; y [n_embd, n_used, n_tokens] */
    uint l_off, l_nb1;
    uint i_off, i_nb1;
    uint o_off, o_nb1;
    uint n_embd, n_used, n_expert;
    uint err_code;
} p;

void main() {
    const uint i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    const uint lo = p.l_off + t * p.l_nb1, io = p.i_off + t * p.i_nb1;
    float mx = NEG_INF;
    for (uint s = 0u; s < p.n_used; s++) {
        const int id = ids[io + s];
        if (id < 0 || uint(id) >= p.n_expert) {
            if (i == 0u) report_error(p.err_code);
            return;
        }
        const float l = logits[lo + uint(id)];
        mx = l > mx ? l : mx;
    }
    if (i >= p.n_embd) return;
    float sum = 0.0;
    for (uint s = 0u; s < p.n_used; s++) sum += exp(logits[lo + uint(ids[io + s])] - mx);
    float acc = 0.0;
    for (uint s = 0u; s < p.n_used; s++) {
        const float w = exp(logits[lo + uint(ids[io + s])] - mx) / sum;
        acc += w * ys[p.y_off + s * p.y_nb1 + t * p.y_nb2 + i];
    }
    dst[p.o_off + t * p.o_nb1 + i] = acc;
}
