#version 450
/*
 * eltwise.comp - ADD, MUL (b broadcast along every dimension where its ne is 1), SCALE and SWIGLU on f32 tensors of
 * any strides; op chosen by a push constant. One invocation per output element, flattened over a 2-D grid.
 */
#include "types.glsl"

layout(binding = 0) readonly buffer A { float as_[]; };
layout(binding = 1) readonly buffer B { float bs[]; };
layout(binding = 2) writeonly buffer Out { float dst[]; };

#define OP_ADD 0u
#define OP_MUL 1u
#define OP_SCALE 2u
#define OP_SWIGLU 3u

layout(push_constant) uniform Push {
    uint ne0, ne1, ne2, ne3;
    uint a_off, a_nb1, a_nb2, a_nb3;       /* elements (a_nb0 = 1) */
    uint b_off, b_nb1, b_nb2, b_nb3;
    uint b_ne0, b_ne1, b_ne2, b_ne3;
    uint o_off, o_nb1, o_nb2, o_nb3;
    uint op;
    float s;
} p;

void main() {
    const uint idx = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG + gl_LocalInvocationID.x;
    const uint n = p.ne0 * p.ne1 * p.ne2 * p.ne3;
    if (idx >= n) return;
    const uint i0 = idx % p.ne0;
    uint r = idx / p.ne0;
    const uint i1 = r % p.ne1;
    r /= p.ne1;
    const uint i2 = r % p.ne2, i3 = r / p.ne2;
    const float a = as_[p.a_off + i0 + i1 * p.a_nb1 + i2 * p.a_nb2 + i3 * p.a_nb3];
    float v;
    if (p.op == OP_SCALE) {
        v = a * p.s;
    } else {
        const float b = bs[p.b_off + i0 % p.b_ne0 + (i1 % p.b_ne1) * p.b_nb1 + (i2 % p.b_ne2) * p.b_nb2 +
                           (i3 % p.b_ne3) * p.b_nb3];
        if (p.op == OP_ADD) v = a + b;
        else if (p.op == OP_MUL) v = a * b;
        else v = a / (1.0 + exp(-a)) * b;
    }
    dst[p.o_off + i0 + i1 * p.o_nb1 + i2 * p.o_nb2 + i3 * p.o_nb3] = v;
}
