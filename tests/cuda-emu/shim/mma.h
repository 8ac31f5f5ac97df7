/*
 * tests/cuda-emu: nvcuda::wmma for the emulated kernels. The API leaves the mapping of fragment elements to lanes
 * unspecified, so this one is chosen for the CPU: a matrix_a or matrix_b fragment holds the whole 16x16 tile in every
 * lane (x[r * cols + c], row-major), an accumulator holds the elements lane + 32 i of its row-major tile. Loads and
 * stores are warp-synchronous (every lane must call them, as on hardware); mma_sync sums in float, k in order.
 */
#pragma once
#include "../emu.h"

#include <stdio.h>
#include <stdlib.h>

namespace nvcuda {
namespace wmma {

struct row_major {};
struct col_major {};
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
enum layout_t { mem_row_major, mem_col_major };

static inline float to_float(float v) { return v; }
static inline float to_float(__half v) { return __half2float(v); }
template <typename T> static inline T from_float(float v);
template <> inline float from_float<float>(float v) { return v; }
template <> inline __half from_float<__half>(float v) { return __float2half_rn(v); }

template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment;

template <int M, int N, int K, typename T, typename L> struct fragment<matrix_a, M, N, K, T, L> {
    enum { rows = M, cols = K, num_elements = M * K };
    T x[M * K];
};
template <int M, int N, int K, typename T, typename L> struct fragment<matrix_b, M, N, K, T, L> {
    enum { rows = K, cols = N, num_elements = K * N };
    T x[K * N];
};
template <int M, int N, int K, typename T> struct fragment<accumulator, M, N, K, T, void> {
    enum { rows = M, cols = N, num_elements = M * N / 32 };
    T x[M * N / 32];
};

template <typename Use, int M, int N, int K, typename T, typename L>
static inline void fill_fragment(fragment<Use, M, N, K, T, L> &f, float v) {
    for (int i = 0; i < (int)fragment<Use, M, N, K, T, L>::num_elements; i++) f.x[i] = from_float<T>(v);
}

/* what the API requires of a pointer and leading dimension: 256-bit alignment, ldm a multiple of 16 bytes */
template <typename T> static inline void check_ptr(const T *p, unsigned ldm, const char *what) {
    if (((uintptr_t)p & 31) != 0 || (ldm * sizeof(T)) % 16 != 0) {
        fprintf(stderr, "cuda-emu: %s: pointer %p or ldm %u breaks WMMA's alignment rules\n", what, (const void *)p,
                ldm);
        abort(); /* test harness only: the kernel is wrong on every GPU */
    }
}

template <typename Use, int M, int N, int K, typename T, typename L>
static inline void load_matrix_sync(fragment<Use, M, N, K, T, L> &f, const T *p, unsigned ldm) {
    typedef fragment<Use, M, N, K, T, L> F;
    check_ptr(p, ldm, "wmma::load_matrix_sync");
    smoe_emu_warp_sync(0xffffffffu, "wmma::load_matrix_sync");
    for (int r = 0; r < (int)F::rows; r++)
        for (int c = 0; c < (int)F::cols; c++)
            f.x[r * F::cols + c] = std::is_same<L, col_major>::value ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c];
}
/* accumulator element i of this lane (row-major index lane + 32 i of a tile N wide) in memory at p */
template <int N, typename T> static inline T &acc_elem(T *p, unsigned ldm, layout_t layout, int i) {
    const int e = smoe_emu_lane() + 32 * i, r = e / N, c = e % N;
    return layout == mem_col_major ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c];
}
template <int M, int N, int K, typename T>
static inline void load_matrix_sync(fragment<accumulator, M, N, K, T, void> &f, const T *p, unsigned ldm,
                                    layout_t layout) {
    check_ptr(p, ldm, "wmma::load_matrix_sync");
    smoe_emu_warp_sync(0xffffffffu, "wmma::load_matrix_sync");
    for (int i = 0; i < M * N / 32; i++) f.x[i] = acc_elem<N>(p, ldm, layout, i);
}
template <int M, int N, int K, typename T>
static inline void store_matrix_sync(T *p, const fragment<accumulator, M, N, K, T, void> &f, unsigned ldm,
                                     layout_t layout) {
    check_ptr(p, ldm, "wmma::store_matrix_sync");
    smoe_emu_warp_sync(0xffffffffu, "wmma::store_matrix_sync");
    for (int i = 0; i < M * N / 32; i++) acc_elem<N>(p, ldm, layout, i) = f.x[i];
    smoe_emu_warp_sync(0xffffffffu, "wmma::store_matrix_sync");
}
template <int M, int N, int K, typename TA, typename LA, typename LB, typename TC>
static inline void mma_sync(fragment<accumulator, M, N, K, TC, void> &d, const fragment<matrix_a, M, N, K, TA, LA> &a,
                            const fragment<matrix_b, M, N, K, TA, LB> &b,
                            const fragment<accumulator, M, N, K, TC, void> &c) {
    const int lane = smoe_emu_lane();
    for (int i = 0; i < M * N / 32; i++) {
        const int e = lane + 32 * i, r = e / N, col = e % N;
        float s = to_float(c.x[i]);
        for (int k = 0; k < K; k++) s += to_float(a.x[r * K + k]) * to_float(b.x[k * N + col]);
        d.x[i] = from_float<TC>(s);
    }
}

} // namespace wmma
} // namespace nvcuda
