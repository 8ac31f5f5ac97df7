#version 450
/*
 * rope.comp - ROPE (llama.cpp "normal" mode): for i < n_rot / 2 the pair (x[2i], x[2i+1]) of each head is rotated
 * by p theta_base^(-2i/n_rot) with p = pos[t] freq_scale; dims >= n_rot are copied. One invocation per pair.
 * With F64 = 1 (device has shaderFloat64) the angle is formed and reduced modulo 2 pi in double precision, as the
 * CPU reference does (angles reach 3e4 rad at 32k positions, where a float angle is off by ~1e-3 rad); only the
 * final cos/sin of an angle in [-pi, pi] are float. Without it everything is float (documented precision loss
 * at large positions).
 */
#include "types.glsl"

layout(binding = 0) readonly buffer X { float xs[]; };
layout(binding = 1) readonly buffer Pos { int pos[]; };
layout(binding = 2) writeonly buffer Out { float dst[]; };

layout(push_constant) uniform Push {
    uint head_dim, n_head, n_tokens, n_rot;
    uint x_off, x_nb1, x_nb2; /* elements */
    uint pos_off;
    uint o_off, o_nb1, o_nb2;
    float freq_scale;
    float log2_theta;          /* float path */
    uint base_lo, base_hi;     /* F64 path: bits of the double theta_base^(-2 / n_rot) */
} p;

void main() {
    const uint half_dim = (p.head_dim + 1u) / 2u;
    const uint g = gl_GlobalInvocationID.x;
    const uint t = gl_WorkGroupID.y;
    if (g >= half_dim * p.n_head) return;
    const uint h = g / half_dim, i = g % half_dim;
    const uint xo = p.x_off + h * p.x_nb1 + t * p.x_nb2;
    const uint oo = p.o_off + h * p.o_nb1 + t * p.o_nb2;
    if (2u * i >= p.n_rot) {
        dst[oo + 2u * i] = xs[xo + 2u * i];
        if (2u * i + 1u < p.head_dim) dst[oo + 2u * i + 1u] = xs[xo + 2u * i + 1u];
        return;
    }
#if F64
    const double base = packDouble2x32(uvec2(p.base_lo, p.base_hi));
    double inv = 1.0LF, b = base;
    for (uint e = i; e != 0u; e >>= 1) {
        if ((e & 1u) != 0u) inv *= b;
        b *= b;
    }
    const double ang = (double(pos[p.pos_off + t]) * double(p.freq_scale)) * inv;
    const double two_pi = 6.283185307179586LF;
    const float a = float(ang - two_pi * floor(ang / two_pi + 0.5LF)); /* in [-pi, pi] */
#else
    const float inv = exp2(-2.0 * float(i) / float(p.n_rot) * p.log2_theta);
    const float a = float(pos[p.pos_off + t]) * p.freq_scale * inv;
#endif
    const float c = cos(a), s = sin(a);
    const float x0 = xs[xo + 2u * i], x1 = xs[xo + 2u * i + 1u];
    dst[oo + 2u * i] = x0 * c - x1 * s;
    dst[oo + 2u * i + 1u] = x0 * s + x1 * c;
}
