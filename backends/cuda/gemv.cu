// gemv.cu - weight-reading ops: MUL_MAT, MUL_MAT_ID (expert ids read from device memory), GET_ROWS, CPY (to
// F32/F16/BF16/Q8_0).
//
// Layout: weights are rows of ne[0] elements (blocks of the type), row stride nb[1], expert stride nb[2].
//
// One activation column of Q4_0, Q8_0, Q4_K, Q5_K or Q6_K weights (the decode hot path): the int8 kernels
// (gemvq_kernel / gemvq_id_kernel, below): activations quantized once per column, dp4a. Other quantized types, one
// column: gemv1_kernel / gemv1_id_kernel (the column staged as floats in shared memory per block).
// Quantized weights, 2-8 columns: gemv_kernel / gemv_id_kernel. One warp per weight row; the lanes take the
// row's sub-blocks of 32 elements in turn (lane l: sub-blocks l, l + 32, ...: consecutive lanes read consecutive
// bytes, so each warp-wide step is one coalesced sweep), decode each sub-block once into registers (deq_sub) and
// multiply it with up to NC = 8 activation columns (float4 loads), so a batch of <= 8 tokens reads every weight byte
// once; larger batches take the columns 8 at a time. MUL_MAT_ID reads only the experts chosen, one (slot, token)
// column per warp, the expert id from device memory.
// F32/F16/BF16 weights (16-byte aligned rows, k a multiple of 32) take the same GEMV kernels. Everything else
// (activations that are not 16-byte aligned, SMOE_CUDA_SIMPLE=1 in the environment) takes the reference kernels:
// one warp per output element, lanes striding over elements (deq).
// Many columns (prefill: SMOE_CUDA_MMQ_MIN_COLS and more) go to the tensor-core GEMM of mmq.cu instead, MUL_MAT_ID
// with the pairs grouped per expert.
// TODO(#7): int8 activations for 2-8 columns too; SwiGLU fused into the down projection's quantization; the norm's
// kernel writing the quantized column for all its consumers.
#include "cuda-common.cuh"

#include <stdlib.h>
#include <string.h>

// kernels

// The expert chosen for (slot sl, token t), read from device memory; -1 when it is out of range, reported in the
// error word by the thread `reporter` says. The same for the whole warp (or block) that asks: it returns at once.
static __device__ __forceinline__ int32_t expert_of(const uint8_t *ids, int64_t id_nb0, int64_t id_nb1, int64_t sl,
                                                    int64_t t, int64_t n_expert, bool reporter, int *err, int node) {
    const int32_t e = *(const int32_t *)(ids + sl * id_nb0 + t * id_nb1);
    if (e >= 0 && e < n_expert) return e;
    if (reporter) report_error(err, node);
    return -1;
}

template <int T>
static __global__ void mul_mat_kernel(const uint8_t *w, int64_t w_nb1, const uint8_t *x, int64_t x_nb1,
                                      int64_t x_nb2, int64_t x_nb3, float *dst, int64_t d_nb1, int64_t d_nb2,
                                      int64_t d_nb3, int64_t k, int64_t m, int64_t n2) {
    SMOE_PDL_ENTER();
    const int lane = threadIdx.x % SMOE_WARP;
    const int64_t i = (int64_t)blockIdx.x * (blockDim.x / SMOE_WARP) + threadIdx.x / SMOE_WARP;
    if (i >= m) return;
    const int64_t j = blockIdx.y, i2 = blockIdx.z % n2, i3 = blockIdx.z / n2;
    const uint8_t *wr = w + i * w_nb1;
    const float *xr = (const float *)(x + j * x_nb1 + i2 * x_nb2 + i3 * x_nb3);
    float acc = 0.0f;
    for (int64_t e = lane; e < k; e += SMOE_WARP) acc += deq<T>(wr, e) * xr[e];
    acc = warp_sum(acc);
    if (lane == 0) *(float *)((uint8_t *)dst + i * 4 + j * d_nb1 + i2 * d_nb2 + i3 * d_nb3) = acc;
}

template <int T>
static __global__ void mul_mat_id_kernel(const uint8_t *w, int64_t w_nb1, int64_t w_nb2, int64_t n_expert,
                                         const uint8_t *x, int64_t x_ne1, int64_t x_nb1, int64_t x_nb2,
                                         const uint8_t *ids, int64_t id_nb0, int64_t id_nb1, float *dst,
                                         int64_t d_nb1, int64_t d_nb2, int64_t k, int64_t m, int *err, int node) {
    SMOE_PDL_ENTER();
    const int lane = threadIdx.x % SMOE_WARP;
    const int64_t i = (int64_t)blockIdx.x * (blockDim.x / SMOE_WARP) + threadIdx.x / SMOE_WARP;
    if (i >= m) return;
    const int64_t s = blockIdx.y, t = blockIdx.z;
    const int32_t e = expert_of(ids, id_nb0, id_nb1, s, t, n_expert, lane == 0, err, node);
    if (e < 0) return;
    const uint8_t *wr = w + e * w_nb2 + i * w_nb1;
    const float *xr = (const float *)(x + (x_ne1 == 1 ? 0 : s) * x_nb1 + t * x_nb2);
    float acc = 0.0f;
    for (int64_t q = lane; q < k; q += SMOE_WARP) acc += deq<T>(wr, q) * xr[q];
    acc = warp_sum(acc);
    if (lane == 0) *(float *)((uint8_t *)dst + i * 4 + s * d_nb1 + t * d_nb2) = acc;
}

// Fast path for quantized T: up to NC columns per warp (j0 = blockIdx.y * NC), weights decoded once per sub-block.
template <int T, int NC>
static __global__ void gemv_kernel(const uint8_t *w, int64_t w_nb1, const uint8_t *x, int64_t x_nb1, int64_t x_nb2,
                                   int64_t x_nb3, float *dst, int64_t d_nb1, int64_t d_nb2, int64_t d_nb3, int64_t k,
                                   int64_t m, int64_t n1, int64_t n2) {
    SMOE_PDL_ENTER();
    const int lane = threadIdx.x % SMOE_WARP;
    const int64_t i = (int64_t)blockIdx.x * (blockDim.x / SMOE_WARP) + threadIdx.x / SMOE_WARP;
    if (i >= m) return;
    const int64_t j0 = (int64_t)blockIdx.y * NC, i2 = blockIdx.z % n2, i3 = blockIdx.z / n2;
    const int nc = n1 - j0 < NC ? (int)(n1 - j0) : NC;
    const uint8_t *wr = w + i * w_nb1;
    const uint8_t *xb = x + j0 * x_nb1 + i2 * x_nb2 + i3 * x_nb3;
    float acc[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) acc[c] = 0.0f;
    const int64_t n_sub = k / 32;
    for (int64_t s = lane; s < n_sub; s += SMOE_WARP) {
        float wv[32];
        deq_sub<T>(wr, s, wv);
#pragma unroll
        for (int c = 0; c < NC; c++) {
            if (c >= nc) continue; // predicated: acc stays in registers (no dynamic index)
            const float4 *xv = (const float4 *)(xb + c * x_nb1) + 8 * s;
            float a = 0.0f;
#pragma unroll
            for (int q = 0; q < 8; q++) {
                const float4 v = xv[q];
                a += wv[4 * q] * v.x + wv[4 * q + 1] * v.y + wv[4 * q + 2] * v.z + wv[4 * q + 3] * v.w;
            }
            acc[c] += a;
        }
    }
#pragma unroll
    for (int c = 0; c < NC; c++) acc[c] = warp_sum(acc[c]);
    if (lane == 0) {
#pragma unroll
        for (int c = 0; c < NC; c++)
            if (c < nc) *(float *)((uint8_t *)dst + i * 4 + (j0 + c) * d_nb1 + i2 * d_nb2 + i3 * d_nb3) = acc[c];
    }
}

template <int T>
static __global__ void gemv_id_kernel(const uint8_t *w, int64_t w_nb1, int64_t w_nb2, int64_t n_expert,
                                      const uint8_t *x, int64_t x_ne1, int64_t x_nb1, int64_t x_nb2,
                                      const uint8_t *ids, int64_t id_nb0, int64_t id_nb1, float *dst, int64_t d_nb1,
                                      int64_t d_nb2, int64_t k, int64_t m, int *err, int node) {
    SMOE_PDL_ENTER();
    const int lane = threadIdx.x % SMOE_WARP;
    const int64_t i = (int64_t)blockIdx.x * (blockDim.x / SMOE_WARP) + threadIdx.x / SMOE_WARP;
    if (i >= m) return;
    const int64_t sl = blockIdx.y, t = blockIdx.z;
    const int32_t e = expert_of(ids, id_nb0, id_nb1, sl, t, n_expert, lane == 0, err, node);
    if (e < 0) return;
    const uint8_t *wr = w + e * w_nb2 + i * w_nb1;
    const float4 *xv = (const float4 *)(x + (x_ne1 == 1 ? 0 : sl) * x_nb1 + t * x_nb2);
    float acc = 0.0f;
    const int64_t n_sub = k / 32;
    for (int64_t s = lane; s < n_sub; s += SMOE_WARP) {
        float wv[32];
        deq_sub<T>(wr, s, wv);
#pragma unroll
        for (int q = 0; q < 8; q++) {
            const float4 v = xv[8 * s + q];
            acc += wv[4 * q] * v.x + wv[4 * q + 1] * v.y + wv[4 * q + 2] * v.z + wv[4 * q + 3] * v.w;
        }
    }
    acc = warp_sum(acc);
    if (lane == 0) *(float *)((uint8_t *)dst + i * 4 + sl * d_nb1 + t * d_nb2) = acc;
}

// Decode (one activation column, K <= SMOE_GEMV1_MAX_K): the column is staged in shared memory once per block,
// read with coalesced float4 loads and stored swizzled (float4 q of sub-block s at 8 s + (q ^ (s & 7))), so that the
// lanes of a warp, which read consecutive sub-blocks, hit distinct banks. Reading it from global memory lane by lane
// (a 128-byte stride between lanes: 32 transactions per float4 load) held the kernels at ~8% of DRAM bandwidth on an
// H200 (ncu). A block has kWarps1 warps of kRowsPerWarp rows each.
constexpr int kWarps1 = 8;
constexpr int kRowsPerWarp = 2;
#define SMOE_GEMV1_MAX_K 16384 /* 64 KiB of floats: what every supported GPU gives one block (Turing's maximum) */

static __device__ __forceinline__ void stage_x(float4 *xs, const float4 *x, int64_t n4) {
    for (int64_t f = threadIdx.x; f < n4; f += blockDim.x) {
        const int64_t sb = f >> 3;
        xs[(sb << 3) + ((int)(f & 7) ^ (int)(sb & 7))] = x[f];
    }
    __syncthreads();
}

static __device__ __forceinline__ float dot_sub(const float *wv, const float4 *xs, int64_t s) {
    const int sw = (int)(s & 7);
    float a = 0.0f;
#pragma unroll
    for (int q = 0; q < 8; q++) {
        const float4 v = xs[(s << 3) + (q ^ sw)];
        a += wv[4 * q] * v.x + wv[4 * q + 1] * v.y + wv[4 * q + 2] * v.z + wv[4 * q + 3] * v.w;
    }
    return a;
}

// the rows of this warp times the staged column: dst_row(i) receives row i's sum
template <int T>
static __device__ __forceinline__ void gemv1_rows(const uint8_t *w0, int64_t w_nb1, const float4 *xs, int64_t k,
                                                  int64_t m, float *dst0) {
    const int lane = threadIdx.x % SMOE_WARP, wi = threadIdx.x / SMOE_WARP;
    const int64_t n_sub = k / 32;
    for (int r = 0; r < kRowsPerWarp; r++) {
        const int64_t i = ((int64_t)blockIdx.x * kWarps1 + wi) * kRowsPerWarp + r;
        if (i >= m) return; // uniform in the warp
        const uint8_t *wr = w0 + i * w_nb1;
        float acc = 0.0f;
        for (int64_t s = lane; s < n_sub; s += SMOE_WARP) {
            float wv[32];
            deq_sub<T>(wr, s, wv);
            acc += dot_sub(wv, xs, s);
        }
        acc = warp_sum(acc);
        if (lane == 0) dst0[i] = acc;
    }
}

template <int T>
static __global__ void gemv1_kernel(const uint8_t *w, int64_t w_nb1, const uint8_t *x, int64_t x_nb2, int64_t x_nb3,
                                    float *dst, int64_t d_nb2, int64_t d_nb3, int64_t k, int64_t m, int64_t n2) {
    SMOE_PDL_ENTER();
    extern __shared__ float4 xs[];
    const int64_t i2 = blockIdx.z % n2, i3 = blockIdx.z / n2;
    stage_x(xs, (const float4 *)(x + i2 * x_nb2 + i3 * x_nb3), k / 4);
    gemv1_rows<T>(w, w_nb1, xs, k, m, (float *)((uint8_t *)dst + i2 * d_nb2 + i3 * d_nb3));
}

template <int T>
static __global__ void gemv1_id_kernel(const uint8_t *w, int64_t w_nb1, int64_t w_nb2, int64_t n_expert,
                                       const uint8_t *x, int64_t x_ne1, int64_t x_nb1, int64_t x_nb2,
                                       const uint8_t *ids, int64_t id_nb0, int64_t id_nb1, float *dst, int64_t d_nb1,
                                       int64_t d_nb2, int64_t k, int64_t m, int *err, int node) {
    SMOE_PDL_ENTER();
    extern __shared__ float4 xs[];
    const int64_t sl = blockIdx.y, t = blockIdx.z;
    const int32_t e = expert_of(ids, id_nb0, id_nb1, sl, t, n_expert, threadIdx.x == 0, err, node);
    if (e < 0) return; // the same id for the whole block: before any barrier
    stage_x(xs, (const float4 *)(x + (x_ne1 == 1 ? 0 : sl) * x_nb1 + t * x_nb2), k / 4);
    gemv1_rows<T>(w + e * w_nb2, w_nb1, xs, k, m, (float *)((uint8_t *)dst + sl * d_nb1 + t * d_nb2));
}

// Decode on int8 activations (dp4a): Q4_0, Q8_0, Q4_K, Q5_K and Q6_K weights, one activation column,
// K <= SMOE_CUDA_GEMVQ_MAX_K (cuda-kernels.h: smoe_cuda_gemvq_ok). The float kernels above spend ~4 instructions per
// weight (unpack, convert, FMA, shared loads) and so top out near 28% of an H200's DRAM bandwidth on compute, not
// memory. Here quantize_q8_kernel first turns each activation column into Q8_0-like groups of 32 in scratch memory
// (d = amax / 127, kept at f16 precision as the CPU's Q8_0 activations, q = round(x / d), and the group's sum of q),
// once per column rather than once per block; each GEMV block copies its column into shared memory (1.25 bytes per
// element where staging floats took 4), and the lanes multiply 4 weights at a time with __dp4a: ~1 instruction per
// weight. A lane's unit is a Q4_0 or Q8_0 block (32 weights), a Q4_K or Q5_K sub-block pair (64 weights: one
// 32-byte run of nibbles, two 16-byte loads, Q5_K's fifth bits two more) or a Q6_K sub-block (32 weights, two int8
// scales); Q4_0's offset 8 and the K-quants' minimum come out of the group sums, Q6_K's offset 32 is taken off each
// byte (__vsub4). Each warp takes kRowsQ rows at once (independent loads in flight).
// Column layout (smoe_cuda_q8_column_bytes): the k int8 values, a group's two 16-byte halves swapped in every other
// run of 4 groups (so the lanes' 16-byte reads of consecutive groups hit distinct banks), then a float2 (d, sum of
// q) per group.
constexpr int kRowsQ = 2;

// the types of smoe_cuda_gemvq_ok, at compile time (which kernels to instantiate)
static constexpr __host__ __device__ bool gemvq_type(int t) {
    return t == SMOE_CUDA_Q4_0 || t == SMOE_CUDA_Q8_0 || t == SMOE_CUDA_Q4_K || t == SMOE_CUDA_Q5_K ||
           t == SMOE_CUDA_Q6_K;
}

// Column c (c % n_in at stride st_in, c / n_in at st_out) of x into q8 + c * col_bytes, with the arithmetic and layout
// of q8_store_warp (cuda-common.cuh, which RMS_NORM, SWIGLU and ATTENTION use to write the same columns): a thread
// per element, k a multiple of 32 (whole groups: every lane of a warp takes part); grid (k / 256 rounded up, columns)
static __global__ void quantize_q8_kernel(const uint8_t *x, int64_t n_in, int64_t st_in, int64_t st_out, int64_t k,
                                          uint8_t *q8, int64_t col_bytes) {
    SMOE_PDL_ENTER();
    const int64_t c = blockIdx.y, e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= k) return; // whole warps
    const float *xc = (const float *)(x + (c % n_in) * st_in + (c / n_in) * st_out);
    q8_store_warp(q8 + c * col_bytes, k, e, xc[e]);
}

// a quantized column into shared memory (16-byte copies), then every thread may read it
static __device__ __forceinline__ void stage_q8(int4 *dst, const uint8_t *col, int64_t col_bytes) {
    const int4 *src = (const int4 *)col;
    for (int64_t i = threadIdx.x; i < col_bytes / 16; i += blockDim.x) dst[i] = src[i];
    __syncthreads();
}

// N words of bytes from p (2-byte aligned: Q6_K's 210-byte blocks) out of N + 1 aligned 32-bit loads (2N 16-bit
// loads before; cuda-common.cuh's ld_block_a4 says why), which read up to 4 bytes past the N words (Q6_K: still
// within the block)
template <int N> static __device__ __forceinline__ void ld_words_a2(const uint8_t *p, unsigned *out) {
    const unsigned  o = (unsigned)((uintptr_t)p & 2u) * 8u; // 0 or 16 bits
    const unsigned *a = (const unsigned *)(p - o / 8u);
    unsigned        w[N + 1];
#pragma unroll
    for (int i = 0; i <= N; i++) w[i] = a[i];
#pragma unroll
    for (int i = 0; i < N; i++) out[i] = funnel_r(w[i], w[i + 1], o);
}

// the two 16-byte halves of activation group g (elements 0-15, 16-31)
static __device__ __forceinline__ void q8_group(const int *qi, int64_t g, int4 *lo, int4 *hi) {
    const int4 *q = (const int4 *)qi;
    const int   sw = (int)((g >> 2) & 1);
    *lo = q[2 * g + sw];
    *hi = q[2 * g + (1 ^ sw)];
}

// s plus 4 dp4a: ints v[0..3] against one 16-byte half of a group
static __device__ __forceinline__ int dot4(const int *v, int4 x, int s) {
    return __dp4a(v[3], x.w, __dp4a(v[2], x.z, __dp4a(v[1], x.y, __dp4a(v[0], x.x, s))));
}

// ints v[0..7] against the group's halves
static __device__ __forceinline__ int dot8(const int *v, int4 lo, int4 hi) { return dot4(v + 4, hi, dot4(v, lo, 0)); }

// units per row: a block of 32 (Q4_0, Q8_0), a sub-block pair of 64 (Q4_K, Q5_K), a sub-block of 32 (Q6_K)
template <int T> static __device__ __forceinline__ int64_t gemvq_units(int64_t k) {
    return T == SMOE_CUDA_Q4_K || T == SMOE_CUDA_Q5_K ? k / 64 : k / 32;
}

// row wr's unit u times the staged column
template <int T>
static __device__ __forceinline__ float gemvq_unit(const uint8_t *wr, int64_t u, const int *qi, const float2 *ds) {
    constexpr unsigned M = 0x0f0f0f0fu;
    int v[8];
    if constexpr (T == SMOE_CUDA_Q4_0) { // byte j: element j (low nibble) and j + 16 (high)
        uint32_t    q[4]; // rows 4-byte aligned: smoe_cuda_gemvq_ok
        const float dw = __half2float(__ushort_as_half((unsigned short)ld_block_a4<4>(wr + 18 * u, q)));
#pragma unroll
        for (int i = 0; i < 4; i++) {
            v[i] = (int)(q[i] & M);
            v[i + 4] = (int)((q[i] >> 4) & M);
        }
        int4 lo, hi;
        q8_group(qi, u, &lo, &hi);
        const float2 dx = ds[u];
        return dw * dx.x * (float)(dot8(v, lo, hi) - 8 * (int)dx.y);
    } else if constexpr (T == SMOE_CUDA_Q8_0) {
        const float dw = __half2float(__ushort_as_half((unsigned short)ld_block_a4<8>(wr + 34 * u, (uint32_t *)v)));
        int4 lo, hi;
        q8_group(qi, u, &lo, &hi);
        return dw * ds[u].x * (float)dot8(v, lo, hi);
    } else if constexpr (T == SMOE_CUDA_Q6_K) { // sub-block u % 8 of block u / 8: 16 weights per int8 scale
        const int64_t  bi = u >> 3;
        const int      sb = (int)(u & 7), h = sb / 4, e0 = 32 * (sb % 4);
        const uint8_t *b = wr + 210 * bi;
        const uint8_t *ql = b + 64 * h + (e0 % 64), *qh = b + 128 + 32 * h;
        const int      shift_lo = e0 < 64 ? 0 : 4, shift_hi = 2 * (e0 / 32);
        unsigned       lw[8], hw[8];
        ld_words_a2<8>(ql, lw);
        ld_words_a2<8>(qh, hw);
#pragma unroll
        for (int i = 0; i < 8; i++) { // 6-bit q - 32 per byte (-32..31: no borrow between bytes)
            const unsigned lo = (lw[i] >> shift_lo) & M;
            const unsigned hi = ((hw[i] >> shift_hi) & 0x03030303u) << 4;
            v[i] = (int)__vsub4(lo | hi, 0x20202020u);
        }
        int4 lo, hi;
        q8_group(qi, u, &lo, &hi);
        const int s0 = dot4(v, lo, 0), s1 = dot4(v + 4, hi, 0); // a scale per half
        const int sc0 = (int8_t)b[192 + 2 * sb], sc1 = (int8_t)b[193 + 2 * sb];
        return f16_at(b + 208) * ds[u].x * (float)(sc0 * s0 + sc1 * s1);
    } else { // Q4_K, Q5_K: pair p of block u / 4: 32 bytes, low nibbles sub-block 2p, high nibbles 2p + 1
        constexpr int  QB = type_info<T>::bytes, QS = T == SMOE_CUDA_Q5_K ? 48 : 16;
        const int64_t  bi = u >> 2;
        const int      p = (int)(u & 3);
        const uint8_t *b = wr + QB * bi;
        const uint4    w0 = *(const uint4 *)(b + QS + 32 * p), w1 = *(const uint4 *)(b + QS + 16 + 32 * p);
        const unsigned wq[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
        int vh[8];
#pragma unroll
        for (int i = 0; i < 8; i++) {
            v[i] = (int)(wq[i] & M);
            vh[i] = (int)((wq[i] >> 4) & M);
        }
        if constexpr (T == SMOE_CUDA_Q5_K) { // the fifth bit of element l of sub-block j: bit j of qh[l]
            const uint4    h0 = *(const uint4 *)(b + 16), h1 = *(const uint4 *)(b + 32);
            const unsigned hq[8] = {h0.x, h0.y, h0.z, h0.w, h1.x, h1.y, h1.z, h1.w};
#pragma unroll
            for (int i = 0; i < 8; i++) {
                v[i] |= (int)(((hq[i] >> (2 * p)) & 0x01010101u) << 4);
                vh[i] |= (int)(((hq[i] >> (2 * p + 1)) & 0x01010101u) << 4);
            }
        }
        const int64_t g0 = 8 * bi + 2 * p;
        int4 lo0, hi0, lo1, hi1;
        q8_group(qi, g0, &lo0, &hi0);
        q8_group(qi, g0 + 1, &lo1, &hi1);
        const float2 dx0 = ds[g0], dx1 = ds[g0 + 1];
        const uint4 hd = *(const uint4 *)b; // d, dmin, the scales: one 16-byte load, not ~10 byte loads
        int         sc0, m0, sc1, m1;
        kq_pair_scale_min(hd, p, &sc0, &m0, &sc1, &m1);
        const float d = kq_d(hd), dmin = kq_dmin(hd);
        return d * (dx0.x * (float)(sc0 * dot8(v, lo0, hi0)) + dx1.x * (float)(sc1 * dot8(vh, lo1, hi1))) -
               dmin * (dx0.x * dx0.y * (float)m0 + dx1.x * dx1.y * (float)m1);
    }
}

// the warp's kRowsQ rows times the staged column, the rows interleaved; out0 (not null): out0[i] = r0[i] + dst0[i]
// too (the residual ADD)
template <int T>
static __device__ __forceinline__ void gemvq_rows(const uint8_t *w0, int64_t w_nb1, const int *qi, const float2 *ds,
                                                  int64_t k, int64_t m, float *dst0, int64_t bx,
                                                  const float *r0 = nullptr, float *out0 = nullptr) {
    const int     lane = threadIdx.x % SMOE_WARP, wi = threadIdx.x / SMOE_WARP;
    const int64_t i0 = (bx * (blockDim.x / SMOE_WARP) + wi) * kRowsQ;
    if (i0 >= m) return; // uniform in the warp
    const int     nr = m - i0 < kRowsQ ? (int)(m - i0) : kRowsQ;
    const int64_t n_units = gemvq_units<T>(k);
    float acc[kRowsQ];
#pragma unroll
    for (int r = 0; r < kRowsQ; r++) acc[r] = 0.0f;
    for (int64_t u = lane; u < n_units; u += SMOE_WARP) {
#pragma unroll
        for (int r = 0; r < kRowsQ; r++)
            if (r < nr) acc[r] += gemvq_unit<T>(w0 + (i0 + r) * w_nb1, u, qi, ds);
    }
#pragma unroll
    for (int r = 0; r < kRowsQ; r++) acc[r] = warp_sum(acc[r]);
    if (lane == 0) {
#pragma unroll
        for (int r = 0; r < kRowsQ; r++)
            if (r < nr) {
                dst0[i0 + r] = acc[r];
                if (out0) out0[i0 + r] = r0[i0 + r] + acc[r];
            }
    }
}

// One launch, up to 3 products of the same activation columns (K, V and Q; expert gate and up: smoe_cuda_node.n_more):
// part p takes blocks [first, first + blocks) of gridDim.x; one product alone is part 0.
struct gemvq_part {
    const uint8_t *w;
    int64_t        w_nb1, w_nb2, m; // row and expert strides, rows
    float         *dst;
    int64_t        d_nb1, d_nb2, d_nb3;
    int64_t        blocks;
    const float   *r;   // the residual ADD (dense, part 0 alone): out = r + dst; null: none
    float         *out;
    int64_t        r_nb2, r_nb3, o_nb2, o_nb3;
};
struct gemvq_parts {
    gemvq_part p[3];
    int32_t    n, zero;
};

// the part blockIdx.x falls in (a copy, selected by constant indices: a reference or a variable index into the
// parameter space would copy all three parts to local memory), and the block's index within it
static __device__ __forceinline__ gemvq_part gemvq_part_of(const gemvq_parts &P, int64_t *bx) {
    const int64_t b = blockIdx.x, b1 = b - P.p[0].blocks, b2 = b1 - P.p[1].blocks;
    const int     p = P.n > 1 && b1 >= 0 ? (P.n > 2 && b2 >= 0 ? 2 : 1) : 0;
    *bx = p == 0 ? b : (p == 1 ? b1 : b2);
    return p == 0 ? P.p[0] : (p == 1 ? P.p[1] : P.p[2]);
}

// The first bytes each row of block bx reads (its warp's first 32 units, at most 1152 bytes), asked of L2 before
// the block stages its column (prefetch.global.L2: no registers, nothing waits on it): the weights' first DRAM
// round trip then overlaps the column's copy and barrier instead of following them.
template <int T>
static __device__ __forceinline__ void prefetch_rows(const uint8_t *w, int64_t w_nb1, int64_t m, int64_t k,
                                                     int64_t bx) {
#if defined(__CUDA_ARCH__)
    const int64_t rows = (int64_t)(blockDim.x / SMOE_WARP) * kRowsQ, row0 = bx * rows;
    const int64_t rb = k / type_info<T>::qk * type_info<T>::bytes, n = rb < 1152 ? rb : 1152;
    const int64_t lines = (n + 127) / 128, r = threadIdx.x / lines, l = threadIdx.x % lines;
    if (r < rows && row0 + r < m) asm volatile("prefetch.global.L2 [%0];" ::"l"(w + (row0 + r) * w_nb1 + 128 * l));
#else
    (void)w, (void)w_nb1, (void)m, (void)k, (void)bx;
#endif
}

template <int T>
static __global__ void gemvq_kernel(gemvq_parts P, const uint8_t *q8, int64_t col_bytes, int64_t k, int64_t n2) {
    SMOE_PDL_ENTER();
    extern __shared__ int4 qsm[];
    const int64_t c = blockIdx.z, i2 = c % n2, i3 = c / n2;
    int64_t bx;
    const gemvq_part pt = gemvq_part_of(P, &bx);
    prefetch_rows<T>(pt.w, pt.w_nb1, pt.m, k, bx);
    stage_q8(qsm, q8 + c * col_bytes, col_bytes);
    const float *r = pt.r ? (const float *)((const uint8_t *)pt.r + i2 * pt.r_nb2 + i3 * pt.r_nb3) : nullptr;
    float       *out = pt.out ? (float *)((uint8_t *)pt.out + i2 * pt.o_nb2 + i3 * pt.o_nb3) : nullptr;
    gemvq_rows<T>(pt.w, pt.w_nb1, (const int *)qsm, (const float2 *)((const uint8_t *)qsm + k), k, pt.m,
                  (float *)((uint8_t *)pt.dst + i2 * pt.d_nb2 + i3 * pt.d_nb3), bx, r, out);
}

// the quantized columns are (slot, token) in order, one per slot of x (x_ne1 of them: 1 when the slots share it)
template <int T>
static __global__ void gemvq_id_kernel(gemvq_parts P, int64_t n_expert, const uint8_t *q8, int64_t col_bytes,
                                       int64_t x_ne1, const uint8_t *ids, int64_t id_nb0, int64_t id_nb1, int64_t k,
                                       int *err, int node) {
    SMOE_PDL_ENTER();
    extern __shared__ int4 qsm[];
    const int64_t sl = blockIdx.y, t = blockIdx.z;
    int64_t bx;
    const gemvq_part pt = gemvq_part_of(P, &bx);
    const int32_t e = expert_of(ids, id_nb0, id_nb1, sl, t, n_expert, threadIdx.x == 0, err, node);
    if (e < 0) return; // the same id for the whole block: before any barrier
    prefetch_rows<T>(pt.w + e * pt.w_nb2, pt.w_nb1, pt.m, k, bx);
    stage_q8(qsm, q8 + ((x_ne1 == 1 ? 0 : sl) + t * x_ne1) * col_bytes, col_bytes);
    gemvq_rows<T>(pt.w + e * pt.w_nb2, pt.w_nb1, (const int *)qsm, (const float2 *)((const uint8_t *)qsm + k), k,
                  pt.m, (float *)((uint8_t *)pt.dst + sl * pt.d_nb1 + t * pt.d_nb2), bx);
}

template <int T>
static __global__ void get_rows_kernel(const uint8_t *table, int64_t t_nb1, int64_t n_rows, const uint8_t *ids,
                                       int64_t id_nb0, float *dst, int64_t d_nb1, int64_t n_embd, int *err,
                                       int node) {
    SMOE_PDL_ENTER();
    const int64_t r = blockIdx.x;
    const int32_t id = *(const int32_t *)(ids + r * id_nb0);
    if (id < 0 || id >= n_rows) {
        if (threadIdx.x == 0) report_error(err, node);
        return;
    }
    const uint8_t *src = table + id * t_nb1;
    float *d = (float *)((uint8_t *)dst + r * d_nb1);
    for (int64_t e = threadIdx.x; e < n_embd; e += blockDim.x) d[e] = deq<T>(src, e);
}

template <int T>
static __global__ void cpy_kernel(smoe_cuda_tensor src, smoe_cuda_tensor dst) {
    SMOE_PDL_ENTER();
    const int64_t r = blockIdx.x, i1 = r % src.ne[1], i2 = (r / src.ne[1]) % src.ne[2], i3 = r / (src.ne[1] * src.ne[2]);
    const uint8_t *s = (const uint8_t *)src.data + i1 * src.nb[1] + i2 * src.nb[2] + i3 * src.nb[3];
    uint8_t *d = (uint8_t *)dst.data + i1 * dst.nb[1] + i2 * dst.nb[2] + i3 * dst.nb[3];
    if (dst.type == T) { // same type: the row's bytes, as the CPU's memcpy (no requantizing, NaN payloads kept)
        const int64_t n_bytes = src.ne[0] / type_info<T>::qk * type_info<T>::bytes;
        for (int64_t e = threadIdx.x; e < n_bytes; e += blockDim.x) d[e] = s[e];
        return;
    }
    if (dst.type == SMOE_CUDA_Q8_0) { // one thread per block of 32
        for (int64_t b = threadIdx.x; b < src.ne[0] / 32; b += blockDim.x) {
            float x[32];
            for (int j = 0; j < 32; j++) x[j] = deq<T>(s, 32 * b + j);
            quant_q8_0_block(x, d + 34 * b);
        }
        return;
    }
    for (int64_t e = threadIdx.x; e < src.ne[0]; e += blockDim.x) {
        const float v = deq<T>(s, e);
        if (dst.type == SMOE_CUDA_F32) ((float *)d)[e] = v;
        else if (dst.type == SMOE_CUDA_F16) ((__half *)d)[e] = __float2half_rn(v);
        else ((unsigned short *)d)[e] = f32_to_bf16(v);
    }
}

// launchers

namespace {

constexpr int kWarps = 4; // rows per block in the GEMV kernels

constexpr int kCols = 8; // activation columns per warp in the fast GEMV

// dynamic shared memory of the one-column kernels: k floats; above 48 KiB a kernel must opt in, once per device
// (the attribute belongs to the current device: a second GPU needs its own call)
template <typename K> static int gemv1_smem(K kernel, int64_t k, size_t *bytes) {
    *bytes = (size_t)k * sizeof(float);
    if (*bytes <= 48 * 1024) return 0;
    int dev = 0;
    const cudaError_t ed = cudaGetDevice(&dev);
    if (ed != cudaSuccess) return (int)ed;
    static thread_local struct {
        const void *kernel;
        int         device;
    } done[64];
    static thread_local int n_done;
    for (int i = 0; i < n_done; i++)
        if (done[i].kernel == (const void *)kernel && done[i].device == dev) return 0;
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               SMOE_GEMV1_MAX_K * (int)sizeof(float));
    if (e != cudaSuccess) return (int)e;
    if (n_done < 64) {
        done[n_done].kernel = (const void *)kernel;
        done[n_done++].device = dev;
    }
    return 0;
}

template <int T> static int launch_gemv1(const smoe_cuda_node *n, cudaStream_t st) {
    const smoe_cuda_tensor &w = n->src[0], &x = n->src[1], &d = n->dst;
    size_t smem = 0;
    const int e = gemv1_smem(gemv1_kernel<T>, w.ne[0], &smem);
    if (e != 0) return e;
    const dim3 grid(ceil_div(w.ne[1], kWarps1 * kRowsPerWarp), 1, (unsigned)(x.ne[2] * x.ne[3]));
    smoe_launch(n->pdl, gemv1_kernel<T>, "gemv1_kernel", grid, kWarps1 * SMOE_WARP, smem, st, (const uint8_t *)w.data,
        w.nb[1], (const uint8_t *)x.data, x.nb[2], x.nb[3], (float *)d.data, d.nb[2], d.nb[3], w.ne[0], w.ne[1],
        x.ne[2]);
    return launch_result();
}

// whether the int8 kernels take this node: smoe_cuda_gemvq_ok, and the host gave the scratch for the quantized
// columns; SMOE_CUDA_GEMVQ=0 in the environment keeps the float kernels (to compare)
static bool use_gemvq(const smoe_cuda_node *n, int is_id) {
    static const int off = [] {
        const char *v = getenv("SMOE_CUDA_GEMVQ");
        return v && v[0] == '0';
    }();
    return !off && n->scratch && smoe_cuda_gemvq_scratch(n, is_id) > 0;
}

// the node's activation columns into scratch: column c at c * col_bytes (dense: c = i2 + i3 ne2; id: c = slot +
// token x_ne1)
static int quantize_columns(const smoe_cuda_node *n, int is_id, cudaStream_t st) {
    const smoe_cuda_tensor &x = n->src[1];
    const int64_t k = x.ne[0], cols = is_id ? x.ne[1] * x.ne[2] : x.ne[2] * x.ne[3];
    const int64_t n_in = is_id ? x.ne[1] : x.ne[2], st_in = is_id ? x.nb[1] : x.nb[2];
    const int64_t st_out = is_id ? x.nb[2] : x.nb[3];
    smoe_launch(n->pdl, quantize_q8_kernel, "quantize_q8_kernel", dim3(ceil_div(k, 256), (unsigned)cols), 256, 0, st,
        (const uint8_t *)x.data, n_in, st_in, st_out, k, (uint8_t *)n->scratch, (int64_t)smoe_cuda_q8_column_bytes(k));
    return launch_result();
}

// the node's product and those of the launches it also does (n_more), kWarps1 * kRowsQ rows per block
static gemvq_parts gemvq_parts_of(const smoe_cuda_node *n) {
    gemvq_parts P;
    memset(&P, 0, sizeof(P));
    P.n = 1 + (n->n_more > 0 ? (n->n_more < 2 ? n->n_more : 2) : 0);
    for (int i = 0; i < P.n; i++) {
        const smoe_cuda_tensor &w = i == 0 ? n->src[0] : n->more_w[i - 1], &d = i == 0 ? n->dst : n->more_dst[i - 1];
        P.p[i] = gemvq_part{(const uint8_t *)w.data, w.nb[1], w.nb[2], w.ne[1], (float *)d.data, d.nb[1], d.nb[2],
                            d.nb[3], (int64_t)ceil_div(w.ne[1], kWarps1 * kRowsQ), nullptr, nullptr, 0, 0, 0, 0};
    }
    if (n->add && P.n == 1) {
        gemvq_part &p = P.p[0];
        p.r = (const float *)n->add_r.data;
        p.out = (float *)n->add_out.data;
        p.r_nb2 = n->add_r.nb[2];
        p.r_nb3 = n->add_r.nb[3];
        p.o_nb2 = n->add_out.nb[2];
        p.o_nb3 = n->add_out.nb[3];
    }
    return P;
}

static unsigned gemvq_blocks(const gemvq_parts &P) {
    int64_t b = 0;
    for (int i = 0; i < P.n; i++) b += P.p[i].blocks;
    return (unsigned)b;
}

template <int T> static int launch_gemvq(const smoe_cuda_node *n, cudaStream_t st) {
    const smoe_cuda_tensor &w = n->src[0], &x = n->src[1];
    const int e = n->q8_ready ? 0 : quantize_columns(n, 0, st);
    if (e != 0) return e;
    const size_t      cb = smoe_cuda_q8_column_bytes(w.ne[0]);
    const gemvq_parts P = gemvq_parts_of(n);
    const dim3        grid(gemvq_blocks(P), 1, (unsigned)(x.ne[2] * x.ne[3]));
    smoe_launch(n->pdl, gemvq_kernel<T>, "gemvq_kernel", grid, kWarps1 * SMOE_WARP, cb, st, P,
        (const uint8_t *)n->scratch, (int64_t)cb, w.ne[0], x.ne[2]);
    return launch_result();
}

// the ADD a node also does (add) as a launch of its own: add_out = add_r + dst
static int launch_residual_add(const smoe_cuda_node *n, cudaStream_t st) {
    smoe_cuda_node a;
    memset(&a, 0, sizeof(a));
    a.op = n->op;
    a.node_index = n->node_index;
    a.src[0] = n->add_r;
    a.src[1] = n->dst;
    a.dst = n->add_out;
    a.i[1] = 0; // ADD
    return smoe_cuda_binary(&a, st, nullptr);
}

// a node doing more launches' products (n_more) whose kernel is not the int8 GEMV: those as launches of their own
template <typename Op> static int launch_more(const smoe_cuda_node *n, Op &op) {
    for (int i = 0; i < n->n_more && i < 2; i++) {
        smoe_cuda_node m = *n;
        m.src[0] = n->more_w[i];
        m.dst = n->more_dst[i];
        m.n_more = 0;
        m.q8_ready = 0;
        Op o = op;
        o.n = &m;
        const int e = dispatch_type(m.src[0].type, o);
        if (e != 0) return e;
    }
    return 0;
}

template <int T, int NC> static int launch_gemv(const smoe_cuda_node *n, cudaStream_t st) {
    const smoe_cuda_tensor &w = n->src[0], &x = n->src[1], &d = n->dst;
    const dim3 grid(ceil_div(w.ne[1], kWarps), ceil_div(x.ne[1], NC), (unsigned)(x.ne[2] * x.ne[3]));
    smoe_launch(n->pdl, gemv_kernel<T, NC>, "gemv_kernel", grid, kWarps * SMOE_WARP, 0, st, (const uint8_t *)w.data,
        w.nb[1], (const uint8_t *)x.data, x.nb[1], x.nb[2], x.nb[3], (float *)d.data, d.nb[1], d.nb[2], d.nb[3],
        w.ne[0], w.ne[1], x.ne[1], x.ne[2]);
    return launch_result();
}

struct mul_mat_op {
    const smoe_cuda_node *n;
    cudaStream_t st;
    template <int T> int run() {
        if (n->route_n_used > 0) return smoe_cuda_router_route(n, st, nullptr); // with the MOE_ROUTE after it
        if constexpr (gemvq_type(T)) // (its scratch rule implies one column on the GEMV path)
            if (use_gemvq(n, 0)) return launch_gemvq<T>(n, st); // with the products of n_more
        if (n->n_more > 0 || n->add) { // another kernel: one launch per product, then the ADD's
            smoe_cuda_node one = *n;
            one.n_more = 0;
            one.add = 0;
            mul_mat_op o{&one, st};
            int e = dispatch_type(one.src[0].type, o);
            if (e == 0) e = launch_more(n, o);
            if (e == 0 && n->add) e = launch_residual_add(n, st);
            return e;
        }
        const smoe_cuda_tensor &w = n->src[0], &x = n->src[1], &d = n->dst;
        const smoe_cuda_mm_path path = smoe_cuda_mm_path_of(n, 0); // cuda-kernels.h
        if (path == SMOE_CUDA_MM_MMQ) return smoe_cuda_mmq(n, st, nullptr);
        if (path == SMOE_CUDA_MM_GEMV) {
            switch (x.ne[1]) { // the batch's columns: exactly, up to 4; else 8 per warp
            case 1: // (the int8 GEMV is taken above)
                // float weights are few rows here (the router's 8): a warp per row spreads them over more blocks
                if (type_info<T>::qk == 1 && w.ne[1] < 64) return launch_gemv<T, 1>(n, st);
                return w.ne[0] <= SMOE_GEMV1_MAX_K ? launch_gemv1<T>(n, st) : launch_gemv<T, 1>(n, st);
            case 2: return launch_gemv<T, 2>(n, st);
            case 3: return launch_gemv<T, 3>(n, st);
            case 4: return launch_gemv<T, 4>(n, st);
            default: return launch_gemv<T, kCols>(n, st);
            }
        }
        const dim3 grid(ceil_div(w.ne[1], kWarps), (unsigned)x.ne[1], (unsigned)(x.ne[2] * x.ne[3]));
        smoe_launch(n->pdl, mul_mat_kernel<T>, "mul_mat_kernel", grid, kWarps * SMOE_WARP, 0, st,
            (const uint8_t *)w.data, w.nb[1], (const uint8_t *)x.data, x.nb[1], x.nb[2], x.nb[3], (float *)d.data,
            d.nb[1], d.nb[2], d.nb[3], w.ne[0], w.ne[1], x.ne[2]);
        return launch_result();
    }
};

struct mul_mat_id_op {
    const smoe_cuda_node *n;
    cudaStream_t st;
    int *err;
    template <int T> int run() {
        const smoe_cuda_tensor &w = n->src[0], &x = n->src[1], &ids = n->src[2], &d = n->dst;
        const dim3 grid(ceil_div(w.ne[1], kWarps), (unsigned)ids.ne[0], (unsigned)ids.ne[1]);
        const smoe_cuda_mm_path path = smoe_cuda_mm_path_of(n, 1);
        if constexpr (gemvq_type(T))
            if (use_gemvq(n, 1)) { // with the products of n_more (the scratch rule implies the GEMV path)
                const int qe = n->q8_ready ? 0 : quantize_columns(n, 1, st);
                if (qe != 0) return qe;
                const size_t      cb = smoe_cuda_q8_column_bytes(w.ne[0]);
                const gemvq_parts P = gemvq_parts_of(n);
                const dim3        grid1(gemvq_blocks(P), (unsigned)ids.ne[0], (unsigned)ids.ne[1]);
                smoe_launch(n->pdl, gemvq_id_kernel<T>, "gemvq_id_kernel", grid1, kWarps1 * SMOE_WARP, cb, st, P,
                    w.ne[2], (const uint8_t *)n->scratch, (int64_t)cb, x.ne[1], (const uint8_t *)ids.data, ids.nb[0],
                    ids.nb[1], w.ne[0], err, n->node_index);
                return launch_result();
            }
        if (n->n_more > 0) { // another kernel: one launch per product
            smoe_cuda_node one = *n;
            one.n_more = 0;
            mul_mat_id_op o{&one, st, err};
            const int e = dispatch_type(one.src[0].type, o);
            return e != 0 ? e : launch_more(n, o);
        }
        if (path == SMOE_CUDA_MM_MMQ) return smoe_cuda_mmq_id(n, st, err);
        if (path == SMOE_CUDA_MM_GEMV && w.ne[0] <= SMOE_GEMV1_MAX_K) {
            size_t smem = 0;
            const int e = gemv1_smem(gemv1_id_kernel<T>, w.ne[0], &smem);
            if (e != 0) return e;
            const dim3 grid1(ceil_div(w.ne[1], kWarps1 * kRowsPerWarp), (unsigned)ids.ne[0], (unsigned)ids.ne[1]);
            smoe_launch(n->pdl, gemv1_id_kernel<T>, "gemv1_id_kernel", grid1, kWarps1 * SMOE_WARP, smem, st,
                (const uint8_t *)w.data, w.nb[1], w.nb[2], w.ne[2], (const uint8_t *)x.data, x.ne[1], x.nb[1], x.nb[2],
                (const uint8_t *)ids.data, ids.nb[0], ids.nb[1], (float *)d.data, d.nb[1], d.nb[2], w.ne[0], w.ne[1],
                err, n->node_index);
            return launch_result();
        }
        if (path == SMOE_CUDA_MM_GEMV) {
            smoe_launch(n->pdl, gemv_id_kernel<T>, "gemv_id_kernel", grid, kWarps * SMOE_WARP, 0, st,
                (const uint8_t *)w.data, w.nb[1], w.nb[2], w.ne[2], (const uint8_t *)x.data, x.ne[1], x.nb[1], x.nb[2],
                (const uint8_t *)ids.data, ids.nb[0], ids.nb[1], (float *)d.data, d.nb[1], d.nb[2], w.ne[0], w.ne[1],
                err, n->node_index);
            return launch_result();
        }
        smoe_launch(n->pdl, mul_mat_id_kernel<T>, "mul_mat_id_kernel", grid, kWarps * SMOE_WARP, 0, st,
            (const uint8_t *)w.data, w.nb[1], w.nb[2], w.ne[2], (const uint8_t *)x.data, x.ne[1], x.nb[1], x.nb[2],
            (const uint8_t *)ids.data, ids.nb[0], ids.nb[1], (float *)d.data, d.nb[1], d.nb[2], w.ne[0], w.ne[1], err,
            n->node_index);
        return launch_result();
    }
};

struct get_rows_op {
    const smoe_cuda_node *n;
    cudaStream_t st;
    int *err;
    template <int T> int run() {
        const smoe_cuda_tensor &t = n->src[0], &ids = n->src[1], &d = n->dst;
        smoe_launch(n->pdl, get_rows_kernel<T>, "get_rows_kernel", (unsigned)ids.ne[0], 256, 0, st,
            (const uint8_t *)t.data, t.nb[1], t.ne[1], (const uint8_t *)ids.data, ids.nb[0], (float *)d.data, d.nb[1],
            t.ne[0], err, n->node_index);
        return launch_result();
    }
};

struct cpy_op {
    const smoe_cuda_node *n;
    cudaStream_t st;
    template <int T> int run() {
        const smoe_cuda_tensor &s = n->src[0];
        smoe_launch(n->pdl, cpy_kernel<T>, "cpy_kernel", (unsigned)(s.ne[1] * s.ne[2] * s.ne[3]), 256, 0, st, s,
            n->dst);
        return launch_result();
    }
};

} // namespace

extern "C" int smoe_cuda_mul_mat(const smoe_cuda_node *n, void *stream, int *err) {
    (void)err;
    mul_mat_op f{n, (cudaStream_t)stream};
    return dispatch_type(n->src[0].type, f);
}

extern "C" int smoe_cuda_mul_mat_id(const smoe_cuda_node *n, void *stream, int *err) {
    mul_mat_id_op f{n, (cudaStream_t)stream, err};
    return dispatch_type(n->src[0].type, f);
}

extern "C" int smoe_cuda_get_rows(const smoe_cuda_node *n, void *stream, int *err) {
    get_rows_op f{n, (cudaStream_t)stream, err};
    return dispatch_type(n->src[0].type, f);
}

extern "C" int smoe_cuda_cpy(const smoe_cuda_node *n, void *stream, int *err) {
    (void)err;
    cpy_op f{n, (cudaStream_t)stream};
    return dispatch_type(n->src[0].type, f);
}
