#version 450
/*
 * rms_norm.comp - RMS_NORM: y = x / sqrt(mean(x^2) + eps) * w, one workgroup per row (rows = ne1 ne2 ne3,
 * workgroup id flattened from x and y so any row count fits the grid limits).
 */
#include "types.glsl"
#include "reduce.glsl"

layout(binding = 0) readonly buffer X { float xs[]; };
layout(binding = 1) readonly buffer W { float ws[]; };
layout(binding = 2) writeonly buffer Out { float dst[]; };

layout(push_constant) uniform Push {
    uint ne0, ne1, ne2, n_rows;
    uint x_off, x_nb1, x_nb2, x_nb3; /* elements */
    uint w_off;
    uint o_off, o_nb1, o_nb2, o_nb3;
    float eps;
} p;

void main() {
    const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= p.n_rows) return;
    const uint i1 = row % p.ne1, i2 = (row / p.ne1) % p.ne2, i3 = row / (p.ne1 * p.ne2);
    const uint xo = p.x_off + i1 * p.x_nb1 + i2 * p.x_nb2 + i3 * p.x_nb3;
    const uint oo = p.o_off + i1 * p.o_nb1 + i2 * p.o_nb2 + i3 * p.o_nb3;
    float ss = 0.0;
    for (uint i = gl_LocalInvocationID.x; i < p.ne0; i += WG) ss += xs[xo + i] * xs[xo + i];
    ss = wg_sum(ss);
    const float r = inversesqrt(ss / float(p.ne0) + p.eps);
    for (uint i = gl_LocalInvocationID.x; i < p.ne0; i += WG) dst[oo + i] = xs[xo + i] * r * ws[p.w_off + i];
}
