#version 450
/*
 * moe_sort.comp - groups the (slot, token) pairs of a MUL_MAT_ID by expert, on the device (the expert ids never
 * travel to the host). One workgroup. Output at sort_off in binding 1:
 *     [0]                          n_chunks
 *     [1 + 3q .. 1 + 3q + 2]       chunk q: expert, first pair (index into the pair list), pairs in it (<= nc)
 *     [1 + 3 max_chunks + i]       pair list: pair index s + t n_used, grouped by expert, in pair order
 * max_chunks = n_pairs + n_expert bounds sum_e ceil(count_e / nc). Ids outside [0, n_expert) are reported and left
 * out (the compute then fails).
 */
#include "types.glsl"

layout(binding = 0) readonly buffer Ids { int ids[]; };
layout(binding = 1) writeonly buffer Sorted { uint sorted[]; };

layout(push_constant) uniform Push {
    uint ids_off, ids_nb1; /* elements; ids [n_used, n_tokens] */
    uint n_used, n_tokens, n_expert, nc;
    uint sort_off, max_chunks;
    uint err_code;
} p;

#define MAX_EXPERT 1024u
shared uint count_sh[MAX_EXPERT];
shared uint pair_base[MAX_EXPERT];
shared uint chunk_base[MAX_EXPERT];

int id_at(uint pi) { return ids[p.ids_off + (pi % p.n_used) + (pi / p.n_used) * p.ids_nb1]; }

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint n_pairs = p.n_used * p.n_tokens;
    for (uint pi = tid; pi < n_pairs; pi += WG) {
        const int id = id_at(pi);
        if (id < 0 || uint(id) >= p.n_expert) report_error(p.err_code);
    }
    for (uint e = tid; e < p.n_expert; e += WG) {
        uint n = 0u;
        for (uint pi = 0u; pi < n_pairs; pi++) n += id_at(pi) == int(e) ? 1u : 0u;
        count_sh[e] = n;
    }
    barrier();
    if (tid == 0u) {
        uint pb = 0u, cb = 0u;
        for (uint e = 0u; e < p.n_expert; e++) {
            pair_base[e] = pb;
            chunk_base[e] = cb;
            pb += count_sh[e];
            cb += (count_sh[e] + p.nc - 1u) / p.nc;
        }
        sorted[p.sort_off] = cb;
    }
    barrier();
    const uint list = p.sort_off + 1u + 3u * p.max_chunks;
    for (uint e = tid; e < p.n_expert; e += WG) {
        uint n = 0u;
        for (uint pi = 0u; pi < n_pairs; pi++) {
            if (id_at(pi) != int(e)) continue;
            sorted[list + pair_base[e] + n] = pi;
            n++;
        }
        for (uint c = 0u; c * p.nc < n; c++) {
            const uint q = p.sort_off + 1u + 3u * (chunk_base[e] + c);
            sorted[q] = e;
            sorted[q + 1u] = pair_base[e] + c * p.nc;
            sorted[q + 2u] = min(p.nc, n - c * p.nc);
        }
    }
}
