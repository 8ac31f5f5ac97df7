#version 450
/*
 * get_rows.comp - GET_ROWS: out[:, r] = to_f32(table[:, ids[r]]) for the table type A_TYPE.
 * Grid: x = ceil(ne0 / (4 WG)) column groups, y = ids. One dispatch covers table rows [row_lo, row_hi) (a table
 * larger than one binding is split by rows); ids outside [0, n_rows) are reported once (status word) and skipped.
 */
#include "types.glsl"

#define RAW_BINDING 0
#define RAW ta
#include "raw.glsl"
#define DQ dq
#define DQ_RAW ta
#define DQ_TYPE A_TYPE
#include "dequant.glsl"

layout(binding = 1) readonly buffer Ids { int ids[]; };
layout(binding = 2) writeonly buffer Out { float dst[]; };

layout(push_constant) uniform Push {
    uint a_off;   /* byte offset (in binding 0) of table row row_lo */
    uint a_nb1;   /* bytes per table row */
    uint ne0;
    uint n_rows;  /* table rows */
    uint row_lo, row_hi;
    uint ids_off; /* elements */
    uint n_ids;
    uint out_off; /* elements */
    uint out_nb1; /* elements */
    uint err_code;
} p;

void main() {
    const uint r = gl_WorkGroupID.y;
    const int id = ids[p.ids_off + r];
    if (id < 0 || uint(id) >= p.n_rows) {
        if (gl_LocalInvocationID.x == 0u && gl_WorkGroupID.x == 0u) report_error(p.err_code);
        return;
    }
    if (uint(id) < p.row_lo || uint(id) >= p.row_hi) return;
    const uint ro = p.a_off + (uint(id) - p.row_lo) * p.a_nb1;
    const uint i = 4u * (gl_WorkGroupID.x * WG + gl_LocalInvocationID.x);
    const uint o = p.out_off + r * p.out_nb1;
    if (i + 4u <= p.ne0) {
        const vec4 v = dq_4(ro, i);
        dst[o + i] = v.x;
        dst[o + i + 1u] = v.y;
        dst[o + i + 2u] = v.z;
        dst[o + i + 3u] = v.w;
    }
#if IS_PLAIN(A_TYPE)
    else {
        for (uint e = i; e < p.ne0; e++) dst[o + e] = dq_1(ro, e);
    }
#endif
}
