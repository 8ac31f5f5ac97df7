// mmq.cu - prefill matmuls on tensor cores: MUL_MAT and MUL_MAT_ID with quantized weights and many activation
// columns (see SMOE_CUDA_MMQ_MIN_COLS in cuda-kernels.h).
//
// The activations are first converted to f16 into the node's scratch (convert_f16_kernel, once per node: the first
// version converted them from f32 in every tile, 64 conversions per thread and step, as much ALU work as decoding the
// weights). One block of 4 warps then computes a 64 x 128 tile of the output (64 weight rows x 128 columns; a MoE
// expert's pairs in a 512-token prefill are ~128, so its weights are decoded about once), k in steps of 64. Per step
// each of the 128 threads decodes one sub-block of 32 weights (Q4_0 and Q8_0 straight to f16 with half2 arithmetic,
// decode_h2; other types with deq_sub, the GEMV's decoder, then converted; two threads per row) into shared memory
// with 16-byte stores, and the columns' 64 f16 activations are copied in 16-byte pieces
// (8 threads read a column's 128 consecutive bytes); each warp then multiplies its 32 x 64 part with WMMA 16 x 16 x 16
// f16 fragments (f32 accumulators, 32 mma per step between two barriers, 6 fragment loads per 8 mma), available from
// sm_70, so Turing runs it too. The weight bytes of step s + 1 (from DRAM: a tile's rows are read by one or two
// blocks) are loaded into registers before the mma of step s, so their latency hides behind the tensor cores' work
// (the version before loaded and used them between two barriers): Q4_0/Q8_0 blocks in aligned 32-bit words (load_h2,
// rows 4-byte aligned; else 16-bit loads),
// Q4_K/Q5_K sub-blocks as three to five 16-byte pieces (load_kq; it replaced ~40 byte loads at the step itself, and
// needs rows 16-byte aligned, else the step decodes with deq_sub); the other types decode at the step. The
// activations (in L2: every row tile of an expert reads the same columns) are not loaded ahead, as 32 more registers
// a thread would cost a third of the blocks per SM: the kernel is held to 168 registers, 3 blocks of 4 warps per SM
// (__launch_bounds__; without the prefetch it used 164-168 anyway).
// The tile goes through shared memory half at a time (column-major, in the bytes of the step's tiles) to be
// written column by column (coalesced along the rows of dst).
// TODO(#7): int8 mma (mma.sync s8) on q8-quantized activations, double-buffered cp.async loads, larger tiles on
// Hopper (wgmma), Q6_K's sub-block bytes loaded a step ahead too (2-byte aligned 210-byte blocks).
#include "cuda-common.cuh"

#include <mma.h>

namespace {

// tile rows, columns, k per step; tile strides (elements) padded by 16 bytes: a row of 144 bytes starts 4 banks on
// from the one before, so the 8 rows of 16 bytes a fragment load reads at once hit 8 different bank groups (a stride
// of 160, the version before, put rows r and r + 4 on the same banks); rows and fragments stay 32-byte aligned for WMMA
constexpr int TM = 64, TN = 128, KS = 64, LDS = KS + 8, LDC = TM + 4;

struct mmq_args {
    const uint8_t *w;
    int64_t        w_nb1, w_nb2, n_expert;
    const __half  *x;          // the activations in f16, dense: column (s, t) at (s + t x_ne1) k
    int64_t        x_ne1;
    float         *dst;
    int64_t        d_nb1, d_nb2;
    int64_t        k, m, n;    // n: columns (dense) or pairs (id)
    int64_t        n_slots;    // id: pairs are p = t * n_slots + s
    const int32_t *counts;     // id: per expert; NULL = dense
    const int32_t *lists;      // id: n_expert lists of n pairs
    bool           w4, w16;    // w, its row and expert strides are multiples of 4 (Q4_0/Q8_0: load_h2's aligned
                               // words) or 16 bytes (Q4_K/Q5_K: load_kq)
};

// the activation column and output column of column c of expert e's tile; false past the end
static __device__ __forceinline__ bool column(const mmq_args &a, int64_t e, int64_t c, const __half **xc,
                                              float **dc) {
    if (!a.counts) {
        if (c >= a.n) return false;
        *xc = a.x + c * a.k;
        *dc = (float *)((uint8_t *)a.dst + c * a.d_nb1);
        return true;
    }
    if (c >= a.counts[e]) return false;
    const int64_t p = a.lists[e * a.n + c], s = p % a.n_slots, t = p / a.n_slots;
    *xc = a.x + ((a.x_ne1 == 1 ? 0 : s) + t * a.x_ne1) * a.k;
    *dc = (float *)((uint8_t *)a.dst + s * a.d_nb1 + t * a.d_nb2);
    return true;
}

// two floats as a half2's bits (element a in the low half)
static __device__ __forceinline__ unsigned pack_h2(float a, float b) {
    return (unsigned)__half_as_ushort(__float2half_rn(a)) | (unsigned)__half_as_ushort(__float2half_rn(b)) << 16;
}

// x [k, ne1, ne2] (f32, rows at strides nb1, nb2, 16-byte aligned) into xh, dense f16; a thread per 4 elements,
// grid (k / 4 / 256 rounded up, ne1, ne2)
static __global__ void convert_f16_kernel(const uint8_t *x, int64_t nb1, int64_t nb2, int64_t k, __half *xh) {
    SMOE_PDL_ENTER();
    const int64_t f = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, i1 = blockIdx.y, i2 = blockIdx.z;
    if (f >= k / 4) return;
    const float4 v = ((const float4 *)(x + i1 * nb1 + i2 * nb2))[f];
    ((uint2 *)(xh + (i1 + i2 * (int64_t)gridDim.y) * k))[f] = make_uint2(pack_h2(v.x, v.y), pack_h2(v.z, v.w));
}

template <int T> static __global__ void __launch_bounds__(128, 3) mmq_kernel(mmq_args a) {
    SMOE_PDL_ENTER();
    using namespace nvcuda;
    // the step's weight and activation tiles (f16, row-major along k), and after the last step half the output tile
    // at a time (column-major: cs[column][row]) in the same bytes
    constexpr int WS = TM * LDS * 2, XS = TN * LDS * 2, CS = TN / 2 * LDC * 4;
    __shared__ __align__(32) unsigned char smem[WS + XS > CS ? WS + XS : CS];
    __shared__ const __half *xptr[TN]; // the tile's activation columns (nullptr past the end)
    __shared__ float        *dptr[TN]; // and output columns
    __half(*ws)[LDS] = (__half(*)[LDS])smem;
    __half(*xs)[LDS] = (__half(*)[LDS])(smem + WS);
    float(*cs)[LDC] = (float(*)[LDC])smem;
    const int     tid = threadIdx.x, wid = tid / SMOE_WARP;
    const int64_t e = blockIdx.z, row0 = (int64_t)blockIdx.x * TM, col0 = (int64_t)blockIdx.y * TN;
    if (a.counts && col0 >= a.counts[e]) return; // the whole block: no pair of this expert here
    for (int c = tid; c < TN; c += blockDim.x) {
        const __half *xc;
        float        *dc;
        const bool    in = column(a, e, col0 + c, &xc, &dc);
        xptr[c] = in ? xc : nullptr;
        dptr[c] = in ? dc : nullptr;
    }
    // this thread's weight unit: sub-block tid % 2 of the step in row tid / 2
    const int64_t  wr = row0 + tid / 2;
    const uint8_t *wrow = wr < a.m ? a.w + e * a.w_nb2 + wr * a.w_nb1 : nullptr;

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) wmma::fill_fragment(acc[i][j], 0.0f);
    const int     wr0 = 32 * (wid / 2), wc0 = 64 * (wid % 2);
    const int64_t n_sub = a.k / 32, n_steps = (n_sub + KS / 32 - 1) / (KS / 32);
    // the weight bytes of the next step, loaded before this step's mma: Q4_0/Q8_0 blocks' words, Q4_K/Q5_K
    // sub-blocks' 16-byte pieces (rows 16-byte aligned; otherwise, and for the other types, the step decodes its
    // sub-block itself)
    constexpr bool                  H2 = deq_h2_type(T), KQ = kq_type(T);
    raw_h2<H2 ? T : SMOE_CUDA_Q4_0> wraw{}; // (initialized: gcc, compiling the emulator, sees no load before a use)
    raw_kq<KQ ? T : SMOE_CUDA_Q4_K> kraw{};
    bool                            wok = false;
    const auto prefetch = [&](int64_t st) {
        const int64_t s = st * (KS / 32) + tid % 2;
        wok = wrow && s < n_sub;
        if constexpr (H2) {
            if (wok) load_h2<T>(wrow, s, &wraw, a.w4);
        } else if constexpr (KQ) {
            if (wok && a.w16) load_kq<T>(wrow, s, &kraw);
        }
    };
    prefetch(0);
    for (int64_t st = 0; st < n_steps; st++) {
        __syncthreads(); // the previous step's fragments are loaded
        {
            const int sb = tid % 2;
            uint4    *d = (uint4 *)&ws[tid / 2][32 * sb];
            if constexpr (H2) { // straight to f16 (decode_h2): ~1.5 instructions per weight, not ~5
                uint32_t h[16];
                if (wok) decode_h2<T>(wraw, h);
#pragma unroll
                for (int q = 0; q < 4; q++)
                    d[q] = wok ? make_uint4(h[4 * q], h[4 * q + 1], h[4 * q + 2], h[4 * q + 3]) : make_uint4(0u, 0u, 0u, 0u);
            } else {
                float wv[32];
                if (wok) {
                    if constexpr (KQ) {
                        if (a.w16) decode_kq<T>(kraw, wv);
                        else deq_sub<T>(wrow, st * (KS / 32) + sb, wv);
                    } else {
                        deq_sub<T>(wrow, st * (KS / 32) + sb, wv);
                    }
                }
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    const float *v = wv + 8 * q;
                    d[q] = wok ? make_uint4(pack_h2(v[0], v[1]), pack_h2(v[2], v[3]), pack_h2(v[4], v[5]),
                                            pack_h2(v[6], v[7]))
                               : make_uint4(0u, 0u, 0u, 0u);
                }
            }
        }
        // activations: 8 threads per column, each 8 halves (16 bytes) of the step's 64
#pragma unroll
        for (int j = 0; j < TN * KS / 8 / 128; j++) {
            const int     q = tid + 128 * j, c = q / (KS / 8), piece = q % (KS / 8);
            const __half *xc = xptr[c];
            const int64_t kq = st * KS + 8 * piece;
            *(uint4 *)&xs[c][8 * piece] = xc && kq < a.k ? *(const uint4 *)(xc + kq) : make_uint4(0u, 0u, 0u, 0u);
        }
        __syncthreads();
        if (st + 1 < n_steps) prefetch(st + 1);
        // not unrolled: unrolled, the compiler loads later k slices' fragments early, and with the next step's
        // weights held in registers the K-quant kernels spilled (Turing: ~200 bytes); 3 blocks per SM hide the wait
#pragma unroll 1
        for (int kk = 0; kk < KS; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb[4];
#pragma unroll
            for (int i = 0; i < 2; i++) wmma::load_matrix_sync(fa[i], &ws[wr0 + 16 * i][kk], LDS);
#pragma unroll
            for (int j = 0; j < 4; j++) wmma::load_matrix_sync(fb[j], &xs[wc0 + 16 * j][kk], LDS);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
    }
    // the output tile in two halves of 64 columns (the warps of columns 0-63, then those of 64-127), each through
    // shared memory to be written column by column (consecutive threads, consecutive rows of one output column):
    // half a tile fits in the step's tile bytes, so the block needs 29 KB of shared memory, not 36 (2 blocks per SM
    // on Turing's 64 KB, 3 on Ada's 100 KB)
#pragma unroll
    for (int part = 0; part < 2; part++) {
        __syncthreads(); // the step's tiles, then the first half's columns, are read by every warp
        if (wid % 2 == part)
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 4; j++)
                    wmma::store_matrix_sync(&cs[16 * j][wr0 + 16 * i], acc[i][j], LDC, wmma::mem_col_major);
        __syncthreads();
        for (int c = tid / TM; c < TN / 2; c += blockDim.x / TM) {
            float *dcol = dptr[TN / 2 * part + c];
            if (!dcol) break; // columns are filled in order: the rest are past the end
            const int r = tid % TM;
            if (row0 + r < a.m) dcol[row0 + r] = cs[c][r];
        }
    }
}

// lists the (slot, token) pairs of each expert: counts[e] pairs at lists[e * n_pairs ...]
static __global__ void list_kernel(const uint8_t *ids, int64_t id_nb0, int64_t id_nb1, int64_t n_slots,
                                   int64_t n_pairs, int64_t n_expert, int32_t *counts, int32_t *lists, int *err,
                                   int node) {
    SMOE_PDL_ENTER();
    const int64_t p = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= n_pairs) return;
    const int64_t s = p % n_slots, t = p / n_slots;
    const int32_t e = *(const int32_t *)(ids + s * id_nb0 + t * id_nb1);
    if (e < 0 || e >= n_expert) {
        report_error(err, node);
        return;
    }
    const int32_t pos = atomicAdd(&counts[e], 1);
    lists[(int64_t)e * n_pairs + pos] = (int32_t)p;
}

struct mmq_op {
    mmq_args     a;
    unsigned     gy, gz;
    cudaStream_t st;
    int32_t      pdl;
    template <int T> int run() {
        if constexpr (type_info<T>::qk >= 32) {
            const dim3 grid(ceil_div(a.m, TM), gy, gz);
            smoe_launch(pdl, mmq_kernel<T>, "mmq_kernel", grid, 128, 0, st, a);
            return launch_result();
        } else {
            return (int)cudaErrorInvalidValue;
        }
    }
};

// the arguments shared by both entry points (dense: n columns, one expert); the activations' f16 copy at xh
static mmq_args args_of(const smoe_cuda_node *n, const __half *xh) {
    const smoe_cuda_tensor &w = n->src[0], &x = n->src[1], &d = n->dst;
    mmq_args a{};
    a.w = (const uint8_t *)w.data;
    a.w_nb1 = w.nb[1];
    a.w_nb2 = w.nb[2];
    a.n_expert = 1;
    a.x = xh;
    a.x_ne1 = x.ne[1];
    a.dst = (float *)d.data;
    a.d_nb1 = d.nb[1];
    a.d_nb2 = d.nb[2];
    a.k = w.ne[0];
    a.m = w.ne[1];
    a.n = x.ne[1];
    const uintptr_t wa = (uintptr_t)w.data | (uintptr_t)w.nb[1] | (uintptr_t)w.nb[2];
    a.w4 = (wa & 3) == 0;
    a.w16 = (wa & 15) == 0;
    return a;
}

// the node's activations into f16 at scratch + off (cuda-kernels.h: smoe_cuda_mmq_scratch)
static int convert_activations(const smoe_cuda_node *n, size_t off, cudaStream_t st, __half **xh) {
    const smoe_cuda_tensor &x = n->src[1];
    *xh = (__half *)((uint8_t *)n->scratch + off);
    const dim3 grid(ceil_div(x.ne[0] / 4, 256), (unsigned)x.ne[1], (unsigned)x.ne[2]);
    smoe_launch(n->pdl, convert_f16_kernel, "convert_f16_kernel", grid, 256, 0, st, (const uint8_t *)x.data, x.nb[1],
        x.nb[2], x.ne[0], *xh);
    return launch_result();
}

} // namespace

extern "C" int smoe_cuda_mmq(const smoe_cuda_node *n, void *stream, int *err) {
    (void)err;
    if (!n->scratch) return (int)cudaErrorInvalidValue;
    cudaStream_t st = (cudaStream_t)stream;
    __half      *xh = nullptr;
    const int    ce = convert_activations(n, 0, st, &xh);
    if (ce != 0) return ce;
    mmq_op f{args_of(n, xh), ceil_div(n->src[1].ne[1], TN), 1, st, n->pdl};
    return dispatch_type(n->src[0].type, f);
}

extern "C" int smoe_cuda_mmq_id(const smoe_cuda_node *n, void *stream, int *err) {
    const smoe_cuda_tensor &w = n->src[0], &ids = n->src[2];
    const int64_t n_slots = ids.ne[0], n_pairs = ids.ne[0] * ids.ne[1], n_expert = w.ne[2];
    if (!n->scratch) return (int)cudaErrorInvalidValue;
    int32_t *counts = (int32_t *)n->scratch, *lists = counts + n_expert;
    cudaStream_t st = (cudaStream_t)stream;
    cudaError_t  e = cudaMemsetAsync(counts, 0, (size_t)n_expert * sizeof(int32_t), st);
    if (e != cudaSuccess) return (int)e;
    smoe_launch(n->pdl, list_kernel, "list_kernel", ceil_div(n_pairs, 256), 256, 0, st, (const uint8_t *)ids.data,
        ids.nb[0], ids.nb[1], n_slots, n_pairs, n_expert, counts, lists, err, n->node_index);
    const int le = launch_result();
    if (le != 0) return le;
    __half   *xh = nullptr;
    const int ce = convert_activations(n, smoe_cuda_mmq_lists_bytes(n, 1), st, &xh);
    if (ce != 0) return ce;
    mmq_args a = args_of(n, xh);
    a.n_expert = n_expert;
    a.n = n_pairs;
    a.n_slots = n_slots;
    a.counts = counts;
    a.lists = lists;
    mmq_op f{a, ceil_div(n_pairs, TN), (unsigned)n_expert, st, n->pdl};
    return dispatch_type(w.type, f);
}
