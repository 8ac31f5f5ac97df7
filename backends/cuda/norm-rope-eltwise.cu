// norm-rope-eltwise.cu - f32 row and element ops: RMS_NORM, ROPE, ADD, MUL, SWIGLU, SCALE.
//
// Every kernel indexes through the byte strides nb (rows contiguous, dims 1..3 any stride), as the CPU reference
// does. RMS_NORM: one block per row, float partial sums reduced per warp then across warps; up to 1024 threads, so
// that each takes ~4 elements (a decode step's norm is one row: with 256 threads, 16 loads one after another each
// way, ncu timed it at ~16 us on an H200, for 16 KiB). ROPE: one thread per (pair, head, token), angles in double
// like the reference (positions up to 32k with theta 1e6 lose digits in float). RMS_NORM and SWIGLU also write their
// rows as the int8 GEMV's quantized columns when the host asks (q8_out, smoe_cuda_plan_fusion): the GEMV that reads
// them then skips its quantize kernel. A ROPE followed by the KV_WRITE of its result runs as attention.cu's KV_WRITE
// kernel (kv_write). TODO(#7): float angles from a per-token table for consumer GPUs, whose double rate is low.
#include "cuda-common.cuh"

// kernels

static __device__ __forceinline__ const float *row_ptr(const smoe_cuda_tensor &t, int64_t i1, int64_t i2, int64_t i3) {
    return (const float *)((const uint8_t *)t.data + i1 * t.nb[1] + i2 * t.nb[2] + i3 * t.nb[3]);
}

// q8 (not null): each row also quantized as the int8 GEMV's column r at q8 + r * col_bytes (n % 32 == 0)
static __global__ void rms_norm_kernel(smoe_cuda_tensor x, smoe_cuda_tensor w, smoe_cuda_tensor dst, float eps,
                                       uint8_t *q8, int64_t col_bytes) {
    SMOE_PDL_ENTER();
    __shared__ float partial[32];
    const int64_t r = blockIdx.x, i1 = r % x.ne[1], i2 = (r / x.ne[1]) % x.ne[2], i3 = r / (x.ne[1] * x.ne[2]);
    const float *xr = row_ptr(x, i1, i2, i3);
    const float *wr = (const float *)w.data;
    float *y = (float *)row_ptr(dst, i1, i2, i3);
    const int n = (int)x.ne[0], nt = (int)blockDim.x;
    float ss = 0.0f;
#pragma unroll 4
    for (int i = threadIdx.x; i < n; i += nt) ss += xr[i] * xr[i]; // a thread's loads issued together
    ss = warp_sum(ss);
    const int warp = threadIdx.x / SMOE_WARP, lane = threadIdx.x % SMOE_WARP, n_warps = nt / SMOE_WARP;
    if (lane == 0) partial[warp] = ss;
    __syncthreads();
    ss = lane < n_warps ? partial[lane] : 0.0f;
    ss = warp_sum(ss);
    const float scale = (float)(1.0 / sqrt((double)ss / (double)n + (double)eps));
    uint8_t *col = q8 ? q8 + r * col_bytes : nullptr;
#pragma unroll 4
    for (int i = threadIdx.x; i < n; i += nt) { // n % 32 == 0 with q8: whole warps, one group each
        const float v = xr[i] * scale * wr[i];
        y[i] = v;
        if (col) q8_store_warp(col, n, i, v);
    }
}

static __global__ void rope_kernel(smoe_cuda_tensor x, const int32_t *pos, smoe_cuda_tensor dst, int n_rot,
                                   float theta_base, float freq_scale) {
    SMOE_PDL_ENTER();
    const int64_t h = blockIdx.y, t = blockIdx.z;
    const float *src = row_ptr(x, h, t, 0);
    float *d = (float *)row_ptr(dst, h, t, 0);
    const int64_t head_dim = x.ne[0], half = n_rot / 2;
    const double pt = (double)pos[t] * (double)freq_scale;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < head_dim / 2 + 1; i += (int64_t)gridDim.x * blockDim.x) {
        if (i < half) {
            rope_pair(src[2 * i], src[2 * i + 1], i, pt, n_rot, theta_base, &d[2 * i], &d[2 * i + 1]);
        } else {
            for (int64_t e = 2 * i; e < 2 * i + 2 && e < head_dim; e++)
                if (e >= 2 * half) d[e] = src[e];
        }
    }
}

// op 0 = ADD, 1 = MUL (b broadcast where its ne is 1), 2 = SWIGLU (same shapes)
// q8 (not null; SWIGLU): the result rows also quantized as the int8 GEMV's columns (dst dense, ne[0] % 32 == 0: a
// warp's 32 elements are one group of one row)
static __global__ void binary_kernel(smoe_cuda_tensor a, smoe_cuda_tensor b, smoe_cuda_tensor dst, int op,
                                     int64_t total, uint8_t *q8, int64_t col_bytes) {
    SMOE_PDL_ENTER();
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i0 = idx % a.ne[0], i1 = (idx / a.ne[0]) % a.ne[1], i2 = (idx / (a.ne[0] * a.ne[1])) % a.ne[2],
                      i3 = idx / (a.ne[0] * a.ne[1] * a.ne[2]);
        const float x = row_ptr(a, i1, i2, i3)[i0];
        const float y = row_ptr(b, b.ne[1] == 1 ? 0 : i1, b.ne[2] == 1 ? 0 : i2, b.ne[3] == 1 ? 0 : i3)[b.ne[0] == 1 ? 0 : i0];
        float r;
        if (op == 0) r = x + y;
        else if (op == 1) r = x * y;
        else r = x / (1.0f + expf(-x)) * y;
        ((float *)row_ptr(dst, i1, i2, i3))[i0] = r;
        if (q8) q8_store_warp(q8 + (idx / a.ne[0]) * col_bytes, a.ne[0], i0, r);
    }
}

static __global__ void scale_kernel(smoe_cuda_tensor a, smoe_cuda_tensor dst, float s, int64_t total) {
    SMOE_PDL_ENTER();
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i0 = idx % a.ne[0], i1 = (idx / a.ne[0]) % a.ne[1], i2 = (idx / (a.ne[0] * a.ne[1])) % a.ne[2],
                      i3 = idx / (a.ne[0] * a.ne[1] * a.ne[2]);
        ((float *)row_ptr(dst, i1, i2, i3))[i0] = row_ptr(a, i1, i2, i3)[i0] * s;
    }
}

// launchers

static unsigned int grid_for(int64_t total) {
    const int64_t g = (total + 255) / 256;
    return (unsigned int)(g < 65535 ? (g > 0 ? g : 1) : 65535);
}

extern "C" int smoe_cuda_rms_norm(const smoe_cuda_node *n, void *stream, int *err) {
    (void)err;
    const smoe_cuda_tensor &x = n->src[0];
    smoe_launch(n->pdl, rms_norm_kernel, "rms_norm_kernel", (unsigned)(x.ne[1] * x.ne[2] * x.ne[3]),
        smoe_cuda_norm_threads(x.ne[0]), 0, (cudaStream_t)stream, x, n->src[1], n->dst, n->f[0], (uint8_t *)n->q8_out,
        (int64_t)smoe_cuda_q8_column_bytes(x.ne[0]));
    return launch_result();
}

extern "C" int smoe_cuda_rope(const smoe_cuda_node *n, void *stream, int *err) {
    if (n->kv_write) return smoe_cuda_rope_kv_write(n, stream, err); // with the KV_WRITEs after it
    const smoe_cuda_tensor &x = n->src[0];
    const dim3 grid(ceil_div(x.ne[0] / 2 + 1, 64), (unsigned)x.ne[1], (unsigned)x.ne[2]);
    smoe_launch(n->pdl, rope_kernel, "rope_kernel", grid, 64, 0, (cudaStream_t)stream, x,
        (const int32_t *)n->src[1].data, n->dst, n->i[0], n->f[0], n->f[1]);
    return launch_result();
}

extern "C" int smoe_cuda_binary(const smoe_cuda_node *n, void *stream, int *err) {
    (void)err;
    const smoe_cuda_tensor &a = n->src[0];
    const int64_t total = a.ne[0] * a.ne[1] * a.ne[2] * a.ne[3];
    smoe_launch(n->pdl, binary_kernel, "binary_kernel", grid_for(total), 256, 0, (cudaStream_t)stream, a, n->src[1],
        n->dst, n->i[1], total, (uint8_t *)n->q8_out, (int64_t)smoe_cuda_q8_column_bytes(a.ne[0]));
    return launch_result();
}

extern "C" int smoe_cuda_scale(const smoe_cuda_node *n, void *stream, int *err) {
    (void)err;
    const smoe_cuda_tensor &a = n->src[0];
    const int64_t total = a.ne[0] * a.ne[1] * a.ne[2] * a.ne[3];
    smoe_launch(n->pdl, scale_kernel, "scale_kernel", grid_for(total), 256, 0, (cudaStream_t)stream, a, n->dst, n->f[0],
        total);
    return launch_result();
}
