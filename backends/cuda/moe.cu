// moe.cu - expert routing on the device: MOE_ROUTE (top-k of the router logits) and MOE_COMBINE (weighted sum of the
// chosen experts' outputs, weights = softmax over the chosen logits).
//
// MOE_ROUTE: one warp per token (n_expert <= 128: a lane holds experts lane, lane + 32, ...); each of the n_used
// picks is a warp-wide maximum under the reference scan's order (the larger logit; on ties the lower index; NaN
// below every number), so ties and NaNs resolve exactly as on the CPU. More experts: one thread per token running
// the reference's loop. MOE_COMBINE: a block per (256 elements of n_embd, token); each thread computes the n_used
// weights (cheap) and its element. One block per token with 256 threads looping over n_embd took ~21 us on an H200
// for a decode step (ncu), a chain of dependent loads; spread out it is a single round trip.
// TODO(#7): fuse router softmax + top-k into the router GEMV, and the residual add into MOE_COMBINE.
#include "cuda-common.cuh"

// kernels

static __global__ void moe_route_kernel(smoe_cuda_tensor logits, smoe_cuda_tensor dst, int n_used) {
    SMOE_PDL_ENTER();
    const int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= logits.ne[1]) return;
    const float *l = (const float *)((const uint8_t *)logits.data + t * logits.nb[1]);
    int32_t *ids = (int32_t *)((uint8_t *)dst.data + t * dst.nb[1]);
    const int64_t n_expert = logits.ne[0];
    for (int s = 0; s < n_used; s++) {
        // the largest logit not yet taken; strict '>' scanning upward keeps the lower index on ties; NaN ranks last
        int64_t best = -1;
        for (int64_t e = 0; e < n_expert; e++) {
            bool taken = false;
            for (int q = 0; q < s; q++) taken |= ids[q] == e;
            if (taken) continue;
            if (best < 0 || l[e] > l[best] || (isnan(l[best]) && !isnan(l[e]))) best = e;
        }
        ids[s] = (int32_t)best;
    }
}

// whether expert a (logit va) comes before b (vb) in the reference scan's order; b < 0: none yet
static __device__ __forceinline__ bool route_before(float va, int a, float vb, int b) {
    if (a < 0) return false;
    if (b < 0) return true;
    const bool na = isnan(va), nb = isnan(vb);
    if (na != nb) return nb;
    if (!na && va != vb) return va > vb;
    return a < b; // equal numbers, or both NaN
}

constexpr int kRoutePerLane = 4; // experts a lane holds: the warp kernel takes n_expert <= 128

// the n_used picks of one token's logits l (global or shared memory, n_expert <= 128) into ids, by the whole warp
static __device__ __forceinline__ void route_warp(const float *l, int n_expert, int n_used, int32_t *ids) {
    const int lane = threadIdx.x % SMOE_WARP;
    float     v[kRoutePerLane];
    int       id[kRoutePerLane]; // -1: no expert here, or taken
#pragma unroll
    for (int j = 0; j < kRoutePerLane; j++) {
        const int e = lane + SMOE_WARP * j;
        id[j] = e < n_expert ? e : -1;
        v[j] = e < n_expert ? l[e] : 0.0f;
    }
    for (int s = 0; s < n_used; s++) {
        float bv = 0.0f;
        int   b = -1;
#pragma unroll
        for (int j = 0; j < kRoutePerLane; j++)
            if (route_before(v[j], id[j], bv, b)) {
                bv = v[j];
                b = id[j];
            }
        for (int o = SMOE_WARP / 2; o > 0; o >>= 1) {
            const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            const int   ob = __shfl_xor_sync(0xffffffffu, b, o);
            if (route_before(ov, ob, bv, b)) {
                bv = ov;
                b = ob;
            }
        }
        if (lane == 0) ids[s] = b;
#pragma unroll
        for (int j = 0; j < kRoutePerLane; j++)
            if (id[j] == b) id[j] = -1;
    }
}

static __global__ void moe_route_warp_kernel(smoe_cuda_tensor logits, smoe_cuda_tensor dst, int n_used) {
    SMOE_PDL_ENTER();
    const int64_t t = (int64_t)blockIdx.x * (blockDim.x / SMOE_WARP) + threadIdx.x / SMOE_WARP;
    if (t >= logits.ne[1]) return; // uniform in the warp
    route_warp((const float *)((const uint8_t *)logits.data + t * logits.nb[1]), (int)logits.ne[0], n_used,
               (int32_t *)((uint8_t *)dst.data + t * dst.nb[1]));
}

// The router's product and MOE_ROUTE in one launch (smoe_cuda_node.route_n_used): a block per token, a warp per
// router row (float weights T, 16-byte aligned, k % 32 == 0: the GEMV's sub-blocks, in gemv_kernel<T, 1>'s order of
// additions, so the logits are the unfused launch's), the logits to dst and shared memory, then warp 0 picks.
template <int T>
static __global__ void router_route_kernel(const uint8_t *w, int64_t w_nb1, const uint8_t *x, int64_t x_nb1, int64_t k,
                                           int m, float *logits, int64_t l_nb1, int32_t *ids, int64_t id_nb1,
                                           int n_used) {
    SMOE_PDL_ENTER();
    __shared__ float ls[SMOE_WARP * kRoutePerLane];
    const int     lane = threadIdx.x % SMOE_WARP, wi = threadIdx.x / SMOE_WARP, nw = blockDim.x / SMOE_WARP;
    const int64_t t = blockIdx.x, n_sub = k / 32;
    const float4 *xv = (const float4 *)(x + t * x_nb1);
    for (int i = wi; i < m; i += nw) {
        const uint8_t *wr = w + i * w_nb1;
        float          acc = 0.0f;
        for (int64_t s = lane; s < n_sub; s += SMOE_WARP) {
            float wv[32];
            deq_sub<T>(wr, s, wv);
            float a = 0.0f;
#pragma unroll
            for (int q = 0; q < 8; q++) {
                const float4 v = xv[8 * s + q];
                a += wv[4 * q] * v.x + wv[4 * q + 1] * v.y + wv[4 * q + 2] * v.z + wv[4 * q + 3] * v.w;
            }
            acc += a;
        }
        acc = warp_sum(acc);
        if (lane == 0) {
            ls[i] = acc;
            *(float *)((uint8_t *)logits + t * l_nb1 + 4 * i) = acc;
        }
    }
    __syncthreads();
    if (wi == 0) route_warp(ls, m, n_used, (int32_t *)((uint8_t *)ids + t * id_nb1));
}

// the largest of the chosen experts' logits and the sum of their exp(logit - largest): the combine's softmax
static __device__ __forceinline__ float2 chosen_max_sum(const float *l, const int32_t *id, int64_t n_used) {
    float mx = -INFINITY, sum = 0.0f;
    for (int64_t s = 0; s < n_used; s++) mx = l[id[s]] > mx ? l[id[s]] : mx;
    for (int64_t s = 0; s < n_used; s++) sum += expf(l[id[s]] - mx);
    return make_float2(mx, sum);
}

static __global__ void moe_combine_kernel(smoe_cuda_tensor y, smoe_cuda_tensor logits, smoe_cuda_tensor ids,
                                          smoe_cuda_tensor dst, int *err, int node) {
    SMOE_PDL_ENTER();
    const int64_t t = blockIdx.y, n_used = ids.ne[0], n_embd = y.ne[0];
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const float *l = (const float *)((const uint8_t *)logits.data + t * logits.nb[1]);
    const int32_t *id = (const int32_t *)((const uint8_t *)ids.data + t * ids.nb[1]);
    for (int64_t s = 0; s < n_used; s++)
        if (id[s] < 0 || id[s] >= logits.ne[0]) {
            if (threadIdx.x == 0 && blockIdx.x == 0) report_error(err, node);
            return;
        }
    if (i >= n_embd) return;
    const float2 ms = chosen_max_sum(l, id, n_used);
    float        acc = 0.0f;
    for (int64_t s = 0; s < n_used; s++) {
        const float w = expf(l[id[s]] - ms.x) / ms.y;
        acc += w * ((const float *)((const uint8_t *)y.data + s * y.nb[1] + t * y.nb[2]))[i];
    }
    ((float *)((uint8_t *)dst.data + t * dst.nb[1]))[i] = acc;
}

// MOE_COMBINE of one token and the residual ADD after it (smoe_cuda_node.add): one block that reads everything it
// needs (ids, logits, each thread's elements of y and r) before it writes anything, so its results may lie over any
// of its inputs (the graph gives the sum the memory of the router logits, dead after the combine); a thread holds
// up to kCombineAddPer elements of n_embd
constexpr int kCombineAddPer = 8;

static __global__ void moe_combine_add_kernel(smoe_cuda_tensor y, smoe_cuda_tensor logits, smoe_cuda_tensor ids,
                                              smoe_cuda_tensor dst, smoe_cuda_tensor r, smoe_cuda_tensor out,
                                              int *err, int node) {
    SMOE_PDL_ENTER();
    __shared__ float w[32];
    __shared__ int   bad;
    const int64_t n_used = ids.ne[0], n_embd = y.ne[0];
    const float  *l = (const float *)logits.data;
    const int32_t *id = (const int32_t *)ids.data;
    if (threadIdx.x == 0) { // the weights: softmax over the chosen logits
        bad = 0;
        for (int64_t s = 0; s < n_used; s++) bad |= id[s] < 0 || id[s] >= logits.ne[0];
        if (!bad) {
            const float2 ms = chosen_max_sum(l, id, n_used);
            for (int64_t s = 0; s < n_used; s++) w[s] = expf(l[id[s]] - ms.x) / ms.y;
        }
    }
    float yv[kCombineAddPer][4], rv[kCombineAddPer]; // n_used <= 4
#pragma unroll
    for (int j = 0; j < kCombineAddPer; j++) {
        const int64_t i = threadIdx.x + (int64_t)j * blockDim.x;
        rv[j] = i < n_embd ? ((const float *)r.data)[i] : 0.0f;
#pragma unroll
        for (int s = 0; s < 4; s++)
            yv[j][s] = i < n_embd && s < n_used ? ((const float *)((const uint8_t *)y.data + s * y.nb[1]))[i] : 0.0f;
    }
    __syncthreads(); // everything read: from here on the block writes
    if (bad) {
        if (threadIdx.x == 0) report_error(err, node);
        return;
    }
#pragma unroll
    for (int j = 0; j < kCombineAddPer; j++) {
        const int64_t i = threadIdx.x + (int64_t)j * blockDim.x;
        if (i >= n_embd) continue;
        float acc = 0.0f;
        for (int s = 0; s < n_used; s++) acc += w[s] * yv[j][s]; // the combine kernel's order of additions
        ((float *)dst.data)[i] = acc;
        ((float *)out.data)[i] = rv[j] + acc;
    }
}

// launchers

extern "C" int smoe_cuda_moe_route(const smoe_cuda_node *n, void *stream, int *err) {
    (void)err;
    const int64_t n_tokens = n->src[0].ne[1];
    if (n->src[0].ne[0] <= SMOE_WARP * kRoutePerLane && !n->simple) { // 4 warps per block, one per token
        smoe_launch(n->pdl, moe_route_warp_kernel, "moe_route_warp_kernel", ceil_div(n_tokens, 4), 4 * SMOE_WARP, 0,
            (cudaStream_t)stream, n->src[0], n->dst, n->i[0]);
        return launch_result();
    }
    smoe_launch(n->pdl, moe_route_kernel, "moe_route_kernel", ceil_div(n_tokens, 64), 64, 0, (cudaStream_t)stream,
        n->src[0], n->dst, n->i[0]);
    return launch_result();
}

namespace {
struct router_route_op {
    const smoe_cuda_node *n;
    cudaStream_t          st;
    template <int T> int run() {
        if constexpr (type_info<T>::qk == 1) {
            const smoe_cuda_tensor &w = n->src[0], &x = n->src[1], &d = n->dst, &ids = n->route_ids;
            const int               m = (int)w.ne[1], warps = m < 16 ? m : 16;
            smoe_launch(n->pdl, router_route_kernel<T>, "router_route_kernel", (unsigned)x.ne[1], warps * SMOE_WARP, 0,
                st, (const uint8_t *)w.data, w.nb[1], (const uint8_t *)x.data, x.nb[1], w.ne[0], m, (float *)d.data,
                d.nb[1], (int32_t *)ids.data, ids.nb[1], n->route_n_used);
            return launch_result();
        } else {
            return (int)cudaErrorInvalidValue; // the host fuses float weights only
        }
    }
};
} // namespace

// a MUL_MAT (the router) with route_n_used: its product and the MOE_ROUTE after it (cuda-kernels.h)
extern "C" int smoe_cuda_router_route(const smoe_cuda_node *n, void *stream, int *err) {
    (void)err;
    router_route_op f{n, (cudaStream_t)stream};
    return dispatch_type(n->src[0].type, f);
}

extern "C" int smoe_cuda_moe_combine(const smoe_cuda_node *n, void *stream, int *err) {
    if (n->add) { // with the ADD after it: one token, one block (cuda-kernels.h: smoe_cuda_combine_add_ok)
        const unsigned threads = (unsigned)((n->src[0].ne[0] + kCombineAddPer - 1) / kCombineAddPer + 31) / 32 * 32;
        smoe_launch(n->pdl, moe_combine_add_kernel, "moe_combine_add_kernel", 1, threads < 1024 ? threads : 1024, 0,
            (cudaStream_t)stream, n->src[0], n->src[1], n->src[2], n->dst, n->add_r, n->add_out, err, n->node_index);
        return launch_result();
    }
    const dim3 grid(ceil_div(n->src[0].ne[0], 256), (unsigned)n->src[2].ne[1]);
    smoe_launch(n->pdl, moe_combine_kernel, "moe_combine_kernel", grid, 256, 0, (cudaStream_t)stream, n->src[0],
        n->src[1], n->src[2], n->dst, err, n->node_index);
    return launch_result();
}
