// moe.cu - expert routing on the device: MOE_ROUTE (top-k of the router logits) and MOE_COMBINE (weighted sum of the
// chosen experts' outputs, weights = softmax over the chosen logits).
//
// MOE_ROUTE: one thread per token running the reference's selection loop (n_expert and n_used are small: 8 and 2
// for Mixtral), so ties and NaNs resolve exactly as on the CPU. MOE_COMBINE: one block per token; each thread
// recomputes the n_used weights (cheap) and owns a strided slice of n_embd.
// TODO(#7): fuse router softmax + top-k into the router GEMV; group tokens per expert on the device for prefill.
#include "cuda-common.cuh"

// kernels

static __global__ void moe_route_kernel(smoe_cuda_tensor logits, smoe_cuda_tensor dst, int n_used) {
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

static __global__ void moe_combine_kernel(smoe_cuda_tensor y, smoe_cuda_tensor logits, smoe_cuda_tensor ids,
                                          smoe_cuda_tensor dst, int *err, int node) {
    const int64_t t = blockIdx.x, n_used = ids.ne[0], n_embd = y.ne[0];
    const float *l = (const float *)((const uint8_t *)logits.data + t * logits.nb[1]);
    const int32_t *id = (const int32_t *)((const uint8_t *)ids.data + t * ids.nb[1]);
    for (int64_t s = 0; s < n_used; s++)
        if (id[s] < 0 || id[s] >= logits.ne[0]) {
            if (threadIdx.x == 0) report_error(err, node);
            return;
        }
    float mx = -INFINITY;
    for (int64_t s = 0; s < n_used; s++) mx = l[id[s]] > mx ? l[id[s]] : mx;
    float sum = 0.0f;
    for (int64_t s = 0; s < n_used; s++) sum += expf(l[id[s]] - mx);
    float *o = (float *)((uint8_t *)dst.data + t * dst.nb[1]);
    for (int64_t i = threadIdx.x; i < n_embd; i += blockDim.x) {
        float acc = 0.0f;
        for (int64_t s = 0; s < n_used; s++) {
            const float w = expf(l[id[s]] - mx) / sum;
            acc += w * ((const float *)((const uint8_t *)y.data + s * y.nb[1] + t * y.nb[2]))[i];
        }
        o[i] = acc;
    }
}

// launchers

extern "C" int smoe_cuda_moe_route(const smoe_cuda_node *n, void *stream, int *err) {
    (void)err;
    const int64_t n_tokens = n->src[0].ne[1];
    moe_route_kernel<<<ceil_div(n_tokens, 64), 64, 0, (cudaStream_t)stream>>>(n->src[0], n->dst, n->i[0]);
    return launch_result();
}

extern "C" int smoe_cuda_moe_combine(const smoe_cuda_node *n, void *stream, int *err) {
    moe_combine_kernel<<<(unsigned)n->src[2].ne[1], 256, 0, (cudaStream_t)stream>>>(n->src[0], n->src[1], n->src[2],
                                                                                     n->dst, err, n->node_index);
    return launch_result();
}
