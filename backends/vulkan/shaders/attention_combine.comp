#version 450
/*
 * attention_combine.comp - merges the chunks of a split ATTENTION (attention.comp with n_chunks > 1): for each
 * (head, token), the chunks' running maxima M_c, sums S_c and unnormalized accumulators A_c give
 * out = sum_c e^(M_c - M) A_c / sum_c e^(M_c - M) S_c with M = max_c M_c (0 when no cell was visible).
 * One workgroup per (head, token); invocations take elements of head_dim.
 */
#include "types.glsl"

layout(binding = 0) readonly buffer Part { float part[]; };
layout(binding = 1) writeonly buffer Out { float dst[]; };

layout(push_constant) uniform Push {
    uint p_off;                 /* elements */
    uint o_off, o_nb1, o_nb2;   /* elements */
    uint head_dim, n_head, n_chunks;
} p;

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
    const uint stride = p.head_dim + 2u, base = p.p_off + (t * p.n_head + h) * p.n_chunks * stride;
    float mx = NEG_INF;
    for (uint c = 0u; c < p.n_chunks; c++) mx = max(mx, part[base + c * stride]);
    float s = 0.0;
    if (mx != NEG_INF)
        for (uint c = 0u; c < p.n_chunks; c++) {
            const float mc = part[base + c * stride];
            if (mc != NEG_INF) s += exp(mc - mx) * part[base + c * stride + 1u];
        }
    const float inv = s > 0.0 ? 1.0 / s : 0.0;
    const uint oo = p.o_off + h * p.o_nb1 + t * p.o_nb2;
    for (uint d = gl_LocalInvocationID.x; d < p.head_dim; d += WG) {
        float a = 0.0;
        if (mx != NEG_INF)
            for (uint c = 0u; c < p.n_chunks; c++) {
                const float mc = part[base + c * stride];
                if (mc != NEG_INF) a += exp(mc - mx) * part[base + c * stride + 2u + d];
            }
        dst[oo + d] = a * inv;
    }
}
