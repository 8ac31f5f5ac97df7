// attention.cu - KV_WRITE (rows into the F32/F16/BF16/Q8_0 cache at device-given cells) and the fused causal GQA
// ATTENTION over the cache with an online softmax (no score matrix).
//
// ATTENTION (split_attention_kernel): one warp per (query token, kv head, chunk of cells), for the G query heads that
// share the kv head (GQA, G = 2, 4 or 8, smoe_cuda_attention_group; else G = 1): each K and V row is read once for
// all G. The warp walks its chunk in tiles of 32 cells: lane j scores cell j of the tile for the G heads (the full
// q.k, q broadcast from shared memory), each head's tile max and sum are warp reductions, and the V rows are
// accumulated with the lanes owning head_dim / 32 (<= 8) elements of each head (coalesced reads of each row) -
// flash-decoding. When the cells are split into several chunks (few queries: decode), each chunk writes each head's
// running max, sum and unnormalized accumulator to scratch memory and combine_kernel merges them per (token, head);
// with one chunk the output is written directly. The number of chunks is picked on the host from the cache size so
// that about 4096 warps run (n_chunks in the node, i[2]); the kernel cuts the cells in use (the device-side n_scan)
// into that many chunks of whole 32-cell tiles, so a short history in a long cache still keeps many warps busy;
// chunks past n_scan write an empty partial (max -inf, sum 0).
// The reference kernel (attention_kernel, SMOE_CUDA_SIMPLE=1): one warp per (token, head), cell by cell, the same
// order and rescaling rule as the CPU.
// KV_WRITE: one block per (kv head, token); a token whose cell a later token of the batch also writes skips, so the
// last row wins as on the CPU. When the host fuses a ROPE and the KV_WRITEs after it (smoe_cuda_plan_fusion), the
// same kernel applies the RoPE to K's rows (writing the ROPE's result too) and writes V's rows at the same cells
// (blockIdx.z = 1): one launch for three. ATTENTION also writes its output as the int8 GEMV's quantized columns of the
// output projection when the host asks (q8_out: store_out, from the one-chunk kernel or the combine), and applies the
// ROPE right before it to q as it loads it (rope_q: the pairs as the ROPE kernel computes them).
// TODO(#7): K/V tiles in shared memory for prefill (many query tokens), mma.
#include "cuda-common.cuh"

#include <string.h>

#define SMOE_ATTN_MAX_PER_LANE 8 // head_dim <= 256

// kernels

// the output row of (head h, token t): the lanes' accumulator elements (d = lane + 32 r) times inv; with q8 (the
// host's q8_out: head_dim % 32 == 0, the whole warp here) also token t's int8 GEMV column, its heads one row
static __device__ __forceinline__ void store_out(const smoe_cuda_tensor &dst, int64_t h, int64_t t, int lane,
                                                 const float *acc, float inv, uint8_t *q8 = nullptr,
                                                 int64_t col_bytes = 0) {
    float *o = (float *)((uint8_t *)dst.data + h * dst.nb[1] + t * dst.nb[2]);
#pragma unroll
    for (int r = 0; r < SMOE_ATTN_MAX_PER_LANE; r++) {
        const int64_t d = lane + (int64_t)r * SMOE_WARP;
        if (d < dst.ne[0]) {
            o[d] = acc[r] * inv;
            if (q8) q8_store_warp(q8 + t * col_bytes, dst.ne[0] * dst.ne[1], h * dst.ne[0] + d, acc[r] * inv);
        }
    }
}


template <int KT, int VT>
static __global__ void attention_kernel(smoe_cuda_tensor q, smoe_cuda_tensor k, smoe_cuda_tensor v,
                                        smoe_cuda_tensor q_info, smoe_cuda_tensor cell_info, const int32_t *n_scan_p,
                                        smoe_cuda_tensor dst, float scale) {
    SMOE_PDL_ENTER();
    const int lane = threadIdx.x % SMOE_WARP;
    const int64_t head_dim = q.ne[0], n_head = q.ne[1], n_tokens = q.ne[2], n_head_kv = k.ne[1];
    const int64_t w = (int64_t)blockIdx.x * (blockDim.x / SMOE_WARP) + threadIdx.x / SMOE_WARP;
    if (w >= n_head * n_tokens) return;
    const int64_t h = w % n_head, t = w / n_head, hkv = h / (n_head / n_head_kv);
    int64_t n_scan = *n_scan_p;
    n_scan = n_scan < 0 ? 0 : (n_scan > k.ne[2] ? k.ne[2] : n_scan);
    const int32_t *qi = (const int32_t *)((const uint8_t *)q_info.data + t * q_info.nb[1]);
    const int32_t qpos = qi[0], qseq = qi[1];
    const float *qr = (const float *)((const uint8_t *)q.data + h * q.nb[1] + t * q.nb[2]);
    float qreg[SMOE_ATTN_MAX_PER_LANE], acc[SMOE_ATTN_MAX_PER_LANE];
#pragma unroll
    for (int r = 0; r < SMOE_ATTN_MAX_PER_LANE; r++) {
        const int64_t d = lane + (int64_t)r * SMOE_WARP;
        qreg[r] = d < head_dim ? qr[d] : 0.0f;
        acc[r] = 0.0f;
    }
    float mx = -INFINITY, sum = 0.0f;
    for (int64_t j = 0; j < n_scan; j++) {
        const int32_t *ci = (const int32_t *)((const uint8_t *)cell_info.data + j * cell_info.nb[1]);
        const int32_t cpos = ci[0], cseq = ci[1];
        if (cseq < 0 || cseq != qseq || cpos > qpos) continue;
        const uint8_t *kr = (const uint8_t *)k.data + hkv * k.nb[1] + j * k.nb[2];
        const uint8_t *vr = (const uint8_t *)v.data + hkv * v.nb[1] + j * v.nb[2];
        float dot = 0.0f;
#pragma unroll
        for (int r = 0; r < SMOE_ATTN_MAX_PER_LANE; r++) {
            const int64_t d = lane + (int64_t)r * SMOE_WARP;
            if (d < head_dim) dot += qreg[r] * deq<KT>(kr, d);
        }
        const float s = scale * warp_sum(dot);
        if (s > mx) {
            const float c = mx == -INFINITY ? 0.0f : expf(mx - s);
#pragma unroll
            for (int r = 0; r < SMOE_ATTN_MAX_PER_LANE; r++) acc[r] *= c;
            sum *= c;
            mx = s;
        }
        const float e = expf(s - mx);
#pragma unroll
        for (int r = 0; r < SMOE_ATTN_MAX_PER_LANE; r++) {
            const int64_t d = lane + (int64_t)r * SMOE_WARP;
            if (d < head_dim) acc[r] += e * deq<VT>(vr, d);
        }
        sum += e;
    }
    store_out(dst, h, t, lane, acc, sum > 0.0f ? 1.0f / sum : 0.0f);
}

// q.k for one cell and the G query heads of its kv head: k row kr (type KT), read once; q[g] (head_dim floats each,
// shared memory); the same order of additions per head as one head alone
template <int KT, int G>
static __device__ __forceinline__ void kdot(const uint8_t *kr, const float (*q)[256], int64_t head_dim, float *dot) {
#pragma unroll
    for (int g = 0; g < G; g++) dot[g] = 0.0f;
    if constexpr (KT == SMOE_CUDA_F16) {
        if ((head_dim & 7) == 0 && ((uintptr_t)kr & 15) == 0) {
            for (int64_t d = 0; d < head_dim; d += 8) {
                const uint4   u = *(const uint4 *)(kr + 2 * d);
                const __half2 *h = (const __half2 *)&u;
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    const float2 f = __half22float2(h[r]);
#pragma unroll
                    for (int g = 0; g < G; g++) dot[g] += q[g][d + 2 * r] * f.x + q[g][d + 2 * r + 1] * f.y;
                }
            }
            return;
        }
    }
    for (int64_t d = 0; d < head_dim; d++) {
        const float kv = deq<KT>(kr, d);
#pragma unroll
        for (int g = 0; g < G; g++) dot[g] += q[g][d] * kv;
    }
}

// A ROPE fused into the launch after it (smoe_cuda_plan_fusion): its input, result, positions and parameters
// (src.data null: none). KV_WRITE applies it to K's rows as it writes them (kv_write), ATTENTION to q as it loads it
// (rope_q); both write the ROPE's result too.
struct rope_args {
    smoe_cuda_tensor src, dst;
    const int32_t   *pos;
    int32_t          n_rot;
    float            theta_base, freq_scale;
};

// elements e0 .. e0 + cnt - 1 (e0 and cnt even) of row x (n elements), with rp's RoPE at position pt when
// rp.src.data: the ROPE kernel's pairs
static __device__ __forceinline__ void rope_values(const float *x, int64_t e0, int cnt, int64_t n,
                                                   const rope_args &rp, double pt, float *out) {
    for (int j = 0; j < cnt; j += 2) {
        const int64_t e = e0 + j, i = e / 2;
        const float   x0 = e < n ? x[e] : 0.0f, x1 = e + 1 < n ? x[e + 1] : 0.0f;
        if (rp.src.data && i < rp.n_rot / 2) {
            rope_pair(x0, x1, i, pt, rp.n_rot, rp.theta_base, &out[j], &out[j + 1]);
        } else {
            out[j] = x0;
            out[j + 1] = x1;
        }
    }
}

// One warp per (query token, kv head, chunk of cells), for the G = n_head / n_head_kv query heads that share the kv
// head (GQA): each K and V row is read once for all G (one warp per query head read it G times).
template <int KT, int VT, int G>
static __global__ void split_attention_kernel(smoe_cuda_tensor q, smoe_cuda_tensor k, smoe_cuda_tensor v,
                                              smoe_cuda_tensor q_info, smoe_cuda_tensor cell_info,
                                              const int32_t *n_scan_p, smoe_cuda_tensor dst, float scale,
                                              float *partial, uint8_t *q8, int64_t col_bytes, rope_args rp) {
    SMOE_PDL_ENTER();
    __shared__ float qs[4][G][256];
    const int lane = threadIdx.x % SMOE_WARP, wi = threadIdx.x / SMOE_WARP;
    const int64_t head_dim = q.ne[0], n_head = q.ne[1], n_tokens = q.ne[2], n_head_kv = k.ne[1];
    const int64_t w = (int64_t)blockIdx.x * (blockDim.x / SMOE_WARP) + wi;
    if (w >= n_head_kv * n_tokens) return;
    const int64_t hkv = w % n_head_kv, t = w / n_head_kv;
    int64_t n_scan = *n_scan_p;
    n_scan = n_scan < 0 ? 0 : (n_scan > k.ne[2] ? k.ne[2] : n_scan);
    // the chunks share the cells in use (n_scan, from the device: a replayed graph sees the current value), in
    // whole tiles of 32; the chunk count is fixed by the cache size, so at a short history the last chunks are empty
    const int64_t per = (n_scan + gridDim.y - 1) / gridDim.y;
    const int64_t chunk = per < SMOE_WARP ? SMOE_WARP : (per + SMOE_WARP - 1) / SMOE_WARP * SMOE_WARP;
    const int64_t c0 = (int64_t)blockIdx.y * chunk, c1 = c0 + chunk < n_scan ? c0 + chunk : n_scan;
    const int32_t *qi = (const int32_t *)((const uint8_t *)q_info.data + t * q_info.nb[1]);
    const int32_t qpos = qi[0], qseq = qi[1];
#pragma unroll
    for (int g = 0; g < G; g++) {
        float *qr = (float *)((uint8_t *)q.data + (hkv * G + g) * q.nb[1] + t * q.nb[2]);
        if (!rp.src.data) {
            for (int64_t d = lane; d < head_dim; d += SMOE_WARP) qs[wi][g][d] = qr[d];
            continue;
        }
        // the ROPE's pairs (q is its result: chunk 0 writes it for other readers)
        const float *xr = (const float *)((const uint8_t *)rp.src.data + (hkv * G + g) * rp.src.nb[1] +
                                          t * rp.src.nb[2]);
        const double pt = (double)rp.pos[t] * (double)rp.freq_scale;
        for (int64_t i = lane; 2 * i < head_dim; i += SMOE_WARP) {
            float y[2];
            rope_values(xr, 2 * i, 2, head_dim, rp, pt, y);
            for (int j = 0; j < 2 && 2 * i + j < head_dim; j++) {
                qs[wi][g][2 * i + j] = y[j];
                if (blockIdx.y == 0) qr[2 * i + j] = y[j];
            }
        }
    }
    __syncwarp();
    float acc[G][SMOE_ATTN_MAX_PER_LANE], mx[G], sum[G];
#pragma unroll
    for (int g = 0; g < G; g++) {
        mx[g] = -INFINITY;
        sum[g] = 0.0f;
#pragma unroll
        for (int r = 0; r < SMOE_ATTN_MAX_PER_LANE; r++) acc[g][r] = 0.0f;
    }
    const uint8_t *kb = (const uint8_t *)k.data + hkv * k.nb[1], *vb = (const uint8_t *)v.data + hkv * v.nb[1];
    for (int64_t j0 = c0; j0 < c1; j0 += SMOE_WARP) {
        const int64_t j = j0 + lane;
        float s[G];
#pragma unroll
        for (int g = 0; g < G; g++) s[g] = -INFINITY;
        if (j < c1) {
            const int32_t *ci = (const int32_t *)((const uint8_t *)cell_info.data + j * cell_info.nb[1]);
            if (ci[1] >= 0 && ci[1] == qseq && ci[0] <= qpos) {
                kdot<KT, G>(kb + j * k.nb[2], qs[wi], head_dim, s);
#pragma unroll
                for (int g = 0; g < G; g++) s[g] *= scale;
            }
        }
        // a cell is visible to all G heads or to none (same token): the tile is empty for all when for head 0
        float tmax[G];
#pragma unroll
        for (int g = 0; g < G; g++) {
            tmax[g] = s[g];
            for (int o = SMOE_WARP / 2; o > 0; o >>= 1) tmax[g] = fmaxf(tmax[g], __shfl_xor_sync(0xffffffffu, tmax[g], o));
        }
        if (tmax[0] == -INFINITY) continue; // nothing visible in this tile
        float p[G];
#pragma unroll
        for (int g = 0; g < G; g++) {
            const float nm = fmaxf(mx[g], tmax[g]);
            const float c = mx[g] == -INFINITY ? 0.0f : expf(mx[g] - nm);
            p[g] = s[g] == -INFINITY ? 0.0f : expf(s[g] - nm);
            sum[g] = sum[g] * c + warp_sum(p[g]);
#pragma unroll
            for (int r = 0; r < SMOE_ATTN_MAX_PER_LANE; r++) acc[g][r] *= c;
            mx[g] = nm;
        }
        const int64_t n_in = c1 - j0 < SMOE_WARP ? c1 - j0 : SMOE_WARP;
        for (int jj = 0; jj < n_in; jj++) {
            float pj[G];
            bool  any = false;
#pragma unroll
            for (int g = 0; g < G; g++) {
                pj[g] = __shfl_sync(0xffffffffu, p[g], jj);
                any |= pj[g] != 0.0f;
            }
            if (!any) continue; // uniform across the warp
            const uint8_t *vr = vb + (j0 + jj) * v.nb[2];
#pragma unroll
            for (int r = 0; r < SMOE_ATTN_MAX_PER_LANE; r++) {
                const int64_t d = lane + (int64_t)r * SMOE_WARP;
                if (d < head_dim) {
                    const float vv = deq<VT>(vr, d);
#pragma unroll
                    for (int g = 0; g < G; g++) acc[g][r] += pj[g] * vv;
                }
            }
        }
    }
#pragma unroll
    for (int g = 0; g < G; g++) {
        const int64_t h = hkv * G + g;
        if (gridDim.y == 1) { // one chunk: the final output
            store_out(dst, h, t, lane, acc[g], sum[g] > 0.0f ? 1.0f / sum[g] : 0.0f, q8, col_bytes);
            continue;
        }
        float *pp = partial + ((t * n_head + h) * gridDim.y + blockIdx.y) * (head_dim + 2);
        if (lane == 0) {
            pp[0] = mx[g];
            pp[1] = sum[g];
        }
#pragma unroll
        for (int r = 0; r < SMOE_ATTN_MAX_PER_LANE; r++) {
            const int64_t d = lane + (int64_t)r * SMOE_WARP;
            if (d < head_dim) pp[2 + d] = acc[g][r];
        }
    }
}

// merges the chunks' (max, sum, accumulator) of each (token, head): one warp each
static __global__ void combine_kernel(const float *partial, int64_t n_chunks, smoe_cuda_tensor dst, int64_t n_work,
                                      uint8_t *q8, int64_t col_bytes) {
    SMOE_PDL_ENTER();
    const int lane = threadIdx.x % SMOE_WARP;
    const int64_t w = (int64_t)blockIdx.x * (blockDim.x / SMOE_WARP) + threadIdx.x / SMOE_WARP;
    if (w >= n_work) return;
    const int64_t head_dim = dst.ne[0], n_head = dst.ne[1], h = w % n_head, t = w / n_head;
    const float *pw = partial + w * n_chunks * (head_dim + 2);
    float M = -INFINITY;
    for (int64_t c = 0; c < n_chunks; c++) M = fmaxf(M, pw[c * (head_dim + 2)]);
    float acc[SMOE_ATTN_MAX_PER_LANE], S = 0.0f;
#pragma unroll
    for (int r = 0; r < SMOE_ATTN_MAX_PER_LANE; r++) acc[r] = 0.0f;
    if (M != -INFINITY) {
        for (int64_t c = 0; c < n_chunks; c++) {
            const float *pc = pw + c * (head_dim + 2);
            if (pc[0] == -INFINITY) continue;
            const float f = expf(pc[0] - M);
            S += f * pc[1];
#pragma unroll
            for (int r = 0; r < SMOE_ATTN_MAX_PER_LANE; r++) {
                const int64_t d = lane + (int64_t)r * SMOE_WARP;
                if (d < head_dim) acc[r] += f * pc[2 + d];
            }
        }
    }
    store_out(dst, h, t, lane, acc, S > 0.0f ? 1.0f / S : 0.0f, q8, col_bytes);
}

// blockIdx.z 0: rows (with rp's RoPE of rp.src) into cache; 1: rows2 into cache2 (V after K), at the same cells
static __global__ void kv_write_kernel(smoe_cuda_tensor cache, smoe_cuda_tensor rows, const int32_t *cells,
                                       int *err, int node, rope_args rp, smoe_cuda_tensor cache2,
                                       smoe_cuda_tensor rows2) {
    SMOE_PDL_ENTER();
    const bool              second = blockIdx.z == 1, rope = !second && rp.src.data;
    const smoe_cuda_tensor &C = second ? cache2 : cache, &R = second ? rows2 : rows;
    const int64_t           h = blockIdx.x, t = blockIdx.y, n_tokens = R.ne[2], n = R.ne[0];
    const int32_t           c = cells[t];
    bool                    write = true;
    if (c < 0 || c >= C.ne[2]) {
        if (threadIdx.x == 0 && !second) report_error(err, node);
        write = false;
    }
    for (int64_t u = t + 1; u < n_tokens && write; u++)
        if (cells[u] == c) write = false; // a later token writes this cell
    if (!write && !rope) return;
    const smoe_cuda_tensor &X = rope ? rp.src : R;
    const float   *src = (const float *)((const uint8_t *)X.data + h * X.nb[1] + t * X.nb[2]);
    float         *rd = rope ? (float *)((uint8_t *)rp.dst.data + h * rp.dst.nb[1] + t * rp.dst.nb[2]) : nullptr;
    uint8_t       *d = (uint8_t *)C.data + h * C.nb[1] + (int64_t)c * C.nb[2];
    const double   pt = rope ? (double)rp.pos[t] * (double)rp.freq_scale : 0.0;
    if (C.type == SMOE_CUDA_Q8_0) { // one thread per block of 32
        for (int64_t b = threadIdx.x; b < n / 32; b += blockDim.x) {
            float v[32];
            rope_values(src, 32 * b, 32, n, rp, pt, v);
            if (rd)
                for (int j = 0; j < 32; j++) rd[32 * b + j] = v[j];
            if (write) quant_q8_0_block(v, d + 34 * b);
        }
        return;
    }
    for (int64_t i = threadIdx.x; 2 * i < n; i += blockDim.x) { // a pair of elements per step
        float v[2];
        rope_values(src, 2 * i, 2, n, rp, pt, v);
        for (int j = 0; j < 2 && 2 * i + j < n; j++) {
            const int64_t e = 2 * i + j;
            if (rd) rd[e] = v[j];
            if (!write) continue;
            if (C.type == SMOE_CUDA_F32) ((float *)d)[e] = v[j];
            else if (C.type == SMOE_CUDA_F16) ((__half *)d)[e] = __float2half_rn(v[j]);
            else ((unsigned short *)d)[e] = f32_to_bf16(v[j]);
        }
    }
}

// launchers

// the bytes of one int8 GEMV column of the node's rows (a token's heads together)
static int64_t q8_col_bytes(const smoe_cuda_node *n) {
    return (int64_t)smoe_cuda_q8_column_bytes(n->dst.ne[0] * n->dst.ne[1]);
}

template <int KT, int VT, int G> static int launch_split(const smoe_cuda_node *n, int64_t n_chunks, cudaStream_t st) {
    const int64_t n_work = n->src[1].ne[1] * n->src[0].ne[2]; // (kv head, token)
    const dim3    grid(ceil_div(n_work, 4), (unsigned)n_chunks);
    rope_args     rp;
    memset(&rp, 0, sizeof(rp));
    if (n->rope_q) rp = rope_args{n->rope_src, n->src[0], (const int32_t *)n->rope_pos.data, n->i[0], n->f[1], n->f[2]};
    smoe_launch(n->pdl, split_attention_kernel<KT, VT, G>, "split_attention_kernel", grid, 4 * SMOE_WARP, 0, st,
        n->src[0], n->src[1], n->src[2], n->src[3], n->src[4], (const int32_t *)n->src[5].data, n->dst, n->f[0],
        (float *)n->scratch, (uint8_t *)n->q8_out, q8_col_bytes(n), rp);
    return launch_result();
}

template <int KT, int VT> static int launch_attention(const smoe_cuda_node *n, cudaStream_t st) {
    const int64_t n_work = n->src[0].ne[1] * n->src[0].ne[2];
    if (n->simple) {
        smoe_launch(n->pdl, attention_kernel<KT, VT>, "attention_kernel", ceil_div(n_work, 4), 4 * SMOE_WARP, 0, st,
            n->src[0], n->src[1], n->src[2], n->src[3], n->src[4], (const int32_t *)n->src[5].data, n->dst, n->f[0]);
        return launch_result();
    }
    const int64_t n_chunks = n->i[2] > 0 ? n->i[2] : 1;
    if (n_chunks > 1 && !n->scratch) return (int)cudaErrorInvalidValue;
    int e;
    switch (smoe_cuda_attention_group(n->src[0].ne[1], n->src[1].ne[1])) {
    case 8: e = launch_split<KT, VT, 8>(n, n_chunks, st); break;
    case 4: e = launch_split<KT, VT, 4>(n, n_chunks, st); break;
    case 2: e = launch_split<KT, VT, 2>(n, n_chunks, st); break;
    default: e = launch_split<KT, VT, 1>(n, n_chunks, st); break;
    }
    if (e != 0 || n_chunks == 1) return e;
    smoe_launch(n->pdl, combine_kernel, "combine_kernel", ceil_div(n_work, 4), 4 * SMOE_WARP, 0, st,
        (const float *)n->scratch, n_chunks, n->dst, n_work, (uint8_t *)n->q8_out, q8_col_bytes(n));
    return launch_result();
}

#define SMOE_ATTN_CASE(KT, VT) \
    if (kt == KT && vt == VT) return launch_attention<KT, VT>(n, (cudaStream_t)stream);

extern "C" int smoe_cuda_attention(const smoe_cuda_node *n, void *stream, int *err) {
    (void)err;
    const int32_t kt = n->src[1].type, vt = n->src[2].type;
    SMOE_ATTN_CASE(SMOE_CUDA_F16, SMOE_CUDA_F16)
    SMOE_ATTN_CASE(SMOE_CUDA_F32, SMOE_CUDA_F32)
    SMOE_ATTN_CASE(SMOE_CUDA_BF16, SMOE_CUDA_BF16)
    SMOE_ATTN_CASE(SMOE_CUDA_F16, SMOE_CUDA_F32)
    SMOE_ATTN_CASE(SMOE_CUDA_F32, SMOE_CUDA_F16)
    SMOE_ATTN_CASE(SMOE_CUDA_Q8_0, SMOE_CUDA_Q8_0)
    return (int)cudaErrorInvalidValue;
}

extern "C" int smoe_cuda_kv_write(const smoe_cuda_node *n, void *stream, int *err) {
    const smoe_cuda_tensor &rows = n->src[1];
    const dim3 grid((unsigned)rows.ne[1], (unsigned)rows.ne[2], 1);
    rope_args rp;
    memset(&rp, 0, sizeof(rp));
    smoe_launch(n->pdl, kv_write_kernel, "kv_write_kernel", grid, 128, 0, (cudaStream_t)stream, n->src[0], rows,
        (const int32_t *)n->src[2].data, err, n->node_index, rp, n->src[0], rows);
    return launch_result();
}

// a ROPE node with kv_write: its RoPE of src[0] (result dst) into kv_cache at kv_cells, and with kv_write == 2 the
// rows kv2_rows into kv2_cache at the same cells (cuda-kernels.h)
extern "C" int smoe_cuda_rope_kv_write(const smoe_cuda_node *n, void *stream, int *err) {
    const smoe_cuda_tensor &rows = n->dst;
    const dim3 grid((unsigned)rows.ne[1], (unsigned)rows.ne[2], n->kv_write > 1 ? 2 : 1);
    const rope_args rp{n->src[0], n->dst, (const int32_t *)n->src[1].data, n->i[0], n->f[0], n->f[1]};
    // a cell out of range is the KV_WRITE's error: the launch after this one (node indices count launches)
    smoe_launch(n->pdl, kv_write_kernel, "kv_write_kernel", grid, 128, 0, (cudaStream_t)stream, n->kv_cache, rows,
        (const int32_t *)n->kv_cells.data, err, n->node_index + 1, rp, n->kv2_cache, n->kv2_rows);
    return launch_result();
}
