#version 450
/*
 * cpy.comp - CPY (SRC_TYPE -> DST_TYPE through f32, any row strides) and, with scatter = 1, KV_WRITE: row (i1, t)
 * of the source goes to row (i1, idx[t]) of the destination (a KV cache), tokens in order so that a cell written
 * twice in one batch keeps the last row, as on the CPU. A cell index outside [0, n_cells) is reported and skipped.
 * An invocation writes one destination block (quantized types: 32 elements) or 4 elements (plain types).
 * Grid: x = units per row / WG, y = ne1, z = ne2 ne3 (copy) or ne3 (scatter: the invocation loops over ne2).
 */
#include "types.glsl"

#define RAW_BINDING 0
#define RAW sa
#include "raw.glsl"
#define DQ dq
#define DQ_RAW sa
#define DQ_TYPE SRC_TYPE
#include "dequant.glsl"

#define RAW_BINDING 1
#define RAW_WRITE 1
#define RAW da
#include "raw.glsl"

layout(binding = 2) readonly buffer Idx { int idx[]; };

#if !IS_PLAIN(DST_TYPE)
#define ST16 da_st16
#define QT DST_TYPE
#include "quantize.glsl"
const uint QBLOCK_BYTES = DST_TYPE == TYPE_Q4_0 ? 18u : DST_TYPE == TYPE_Q4_1 ? 20u : DST_TYPE == TYPE_Q5_0 ? 22u
                        : DST_TYPE == TYPE_Q5_1 ? 24u : 34u;
#endif

layout(push_constant) uniform Push {
    uint ne0, ne1, ne2, ne3;
    uint s_off, s_nb1, s_nb2, s_nb3; /* bytes */
    uint d_off, d_nb1, d_nb2, d_nb3; /* bytes */
    uint idx_off, scatter, n_cells, err_code;
} p;

void copy_unit(uint so, uint dof, uint u) {
#if IS_PLAIN(DST_TYPE)
    const uint i = 4u * u;
    if (i >= p.ne0) return;
    float v[4];
#if IS_PLAIN(SRC_TYPE)
    [[unroll]] for (uint e = 0u; e < 4u; e++) v[e] = i + e < p.ne0 ? dq_1(so, i + e) : 0.0;
#else
    const vec4 v4 = dq_4(so, i);
    v[0] = v4.x; v[1] = v4.y; v[2] = v4.z; v[3] = v4.w;
#endif
    [[unroll]] for (uint e = 0u; e < 4u; e++) {
        if (i + e >= p.ne0) break;
#if DST_TYPE == TYPE_F32
        da_st32(dof + 4u * (i + e), floatBitsToUint(v[e]));
#elif DST_TYPE == TYPE_F16
        da_st16(dof + 2u * (i + e), f32_to_f16(v[e]));
#else
        da_st16(dof + 2u * (i + e), f32_to_bf16(v[e]));
#endif
    }
#else
    if (32u * u >= p.ne0) return;
    float x[32];
    [[unroll]] for (uint e = 0u; e < 32u; e += 4u) {
        const vec4 v4 = dq_4(so, 32u * u + e);
        x[e] = v4.x; x[e + 1u] = v4.y; x[e + 2u] = v4.z; x[e + 3u] = v4.w;
    }
    quantize_block(x, dof + u * QBLOCK_BYTES);
#endif
}

void main() {
    const uint u = gl_GlobalInvocationID.x, i1 = gl_WorkGroupID.y;
    if (p.scatter != 0u) {
        const uint i3 = gl_WorkGroupID.z;
        for (uint t = 0u; t < p.ne2; t++) {
            const int cell = idx[p.idx_off + t];
            if (cell < 0 || uint(cell) >= p.n_cells) {
                if (u == 0u && i1 == 0u) report_error(p.err_code);
                continue;
            }
            copy_unit(p.s_off + i1 * p.s_nb1 + t * p.s_nb2 + i3 * p.s_nb3,
                      p.d_off + i1 * p.d_nb1 + uint(cell) * p.d_nb2 + i3 * p.d_nb3, u);
        }
    } else {
        const uint i2 = gl_WorkGroupID.z % p.ne2, i3 = gl_WorkGroupID.z / p.ne2;
        copy_unit(p.s_off + i1 * p.s_nb1 + i2 * p.s_nb2 + i3 * p.s_nb3,
                  p.d_off + i1 * p.d_nb1 + i2 * p.d_nb2 + i3 * p.d_nb3, u);
    }
}
