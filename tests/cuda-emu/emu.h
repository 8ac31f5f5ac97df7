/*
 * emu.h - what a CUDA kernel source sees when tests/cuda-emu compiles it for the CPU (tests only): the built-in
 * variables, qualifiers, vector and half types, warp and block synchronization, atomics and the few runtime calls the
 * launchers make. The shim headers (shim/cuda_runtime.h, cuda_fp16.h, mma.h) include it in place of the toolkit's.
 *
 * Model: a kernel launch runs its blocks one after another; each thread of a block is a fiber (emu.cc) that runs
 * the kernel function until it waits at a barrier. __syncthreads() releases when every thread of the block waits
 * there; a warp-synchronous operation (__shfl*_sync, __syncwarp, the WMMA loads and stores) releases when the 32
 * lanes of the warp wait there. A barrier that can never release (divergent __syncthreads, a shuffle some lanes skip
 * or reach after others exited) fails the launch with a message naming the kernel, block and threads, instead of
 * hanging or reading garbage as hardware would. __shared__ variables are function statics (one block runs at a
 * time); dynamic shared memory is a per-launch buffer filled with 0xff bytes at every block.
 * Integer and float arithmetic is the host's (no FMA contraction, so sums may differ from a GPU's in the last bits).
 */
#ifndef SMOE_CUDA_EMU_H
#define SMOE_CUDA_EMU_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmath>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define __restrict__ __restrict

using std::isinf;
using std::isnan;

/* ---- built-in variables ---- */

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
    dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};
extern thread_local uint3 threadIdx, blockIdx;
extern thread_local dim3  blockDim, gridDim;
static const int warpSize = 32;

/* ---- vector types ---- */

#define SMOE_EMU_VEC2(T, N, A) \
    struct alignas(A) N {      \
        T x, y;                \
    };                         \
    static inline N make_##N(T x, T y) { return N{x, y}; }
#define SMOE_EMU_VEC4(T, N, A) \
    struct alignas(A) N {      \
        T x, y, z, w;          \
    };                         \
    static inline N make_##N(T x, T y, T z, T w) { return N{x, y, z, w}; }
SMOE_EMU_VEC2(float, float2, 8)
SMOE_EMU_VEC4(float, float4, 16)
SMOE_EMU_VEC2(int, int2, 8)
SMOE_EMU_VEC4(int, int4, 16)
SMOE_EMU_VEC2(unsigned int, uint2, 8)
SMOE_EMU_VEC4(unsigned int, uint4, 16)
SMOE_EMU_VEC4(signed char, char4, 4)
SMOE_EMU_VEC4(unsigned char, uchar4, 4)
SMOE_EMU_VEC2(unsigned short, ushort2, 4)

/* ---- half precision (IEEE binary16, round to nearest even) ---- */

struct alignas(2) __half {
    unsigned short x;
};
struct alignas(4) __half2 {
    __half x, y;
};

static inline unsigned short smoe_emu_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const unsigned short sign = (unsigned short)((u >> 16) & 0x8000u);
    u &= 0x7fffffffu;
    if (u > 0x7f800000u) return (unsigned short)(sign | 0x7fffu); /* NaN: CUDA's canonical quiet NaN */
    if (u >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u); /* >= 65520: rounds to infinity */
    if (u < 0x38800000u) {                                          /* below 2^-14: subnormal (or zero) */
        float a;
        memcpy(&a, &u, 4);
        return (unsigned short)(sign | (unsigned short)rintf(a * 16777216.0f)); /* units of 2^-24, exact scaling */
    }
    uint32_t h = ((u >> 23) - 112u) << 10 | ((u >> 13) & 0x3ffu);
    const uint32_t rem = u & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++; /* a carry into the exponent is still right */
    return (unsigned short)(sign | h);
}

static inline float smoe_emu_f16_to_f32(unsigned short h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 31u, m = h & 0x3ffu;
    if (e == 0) {
        const float v = (float)m * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    const uint32_t u = sign | (e == 31 ? 0x7f800000u | (m << 13) : ((e + 112u) << 23) | (m << 13));
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline __half         __float2half_rn(float f) { return __half{smoe_emu_f32_to_f16(f)}; }
static inline __half         __float2half(float f) { return __float2half_rn(f); }
static inline float          __half2float(__half h) { return smoe_emu_f16_to_f32(h.x); }
static inline __half         __ushort_as_half(unsigned short u) { return __half{u}; }
static inline unsigned short __half_as_ushort(__half h) { return h.x; }
static inline float2         __half22float2(__half2 h) { return float2{__half2float(h.x), __half2float(h.y)}; }
static inline __half2        __floats2half2_rn(float a, float b) { return __half2{__float2half_rn(a), __float2half_rn(b)}; }
static inline __half2        __float22half2_rn(float2 f) { return __floats2half2_rn(f.x, f.y); }
static inline __half2        __halves2half2(__half a, __half b) { return __half2{a, b}; }
static inline float          __low2float(__half2 h) { return __half2float(h.x); }
static inline float          __high2float(__half2 h) { return __half2float(h.y); }
static inline __half         __low2half(__half2 h) { return h.x; }
static inline __half         __high2half(__half2 h) { return h.y; }
/* half arithmetic as IEEE (the exact result rounded once): a product of two halves is exact in float; a difference
 * is when the operands' exponents are within 13 of each other (the kernels subtract integers below 2048), otherwise
 * rounding to float first could round twice */
static inline __half2 __hsub2(__half2 a, __half2 b) {
    return __floats2half2_rn(__half2float(a.x) - __half2float(b.x), __half2float(a.y) - __half2float(b.y));
}
static inline __half2 __hmul2(__half2 a, __half2 b) {
    return __floats2half2_rn(__half2float(a.x) * __half2float(b.x), __half2float(a.y) * __half2float(b.y));
}

/* ---- intrinsics ---- */

static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
/* __expf and __logf: glibc has them (the exact functions) */
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline int   __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, 4); return i; }
static inline float __uint_as_float(unsigned i) { float f; memcpy(&f, &i, 4); return f; }
template <typename T> static inline T __ldg(const T *p) { return *p; }
/* four signed (dp4a) or unsigned byte products added to c */
static inline int __dp4a(int a, int b, int c) {
    for (int i = 0; i < 4; i++) c += (int)(int8_t)(a >> (8 * i)) * (int)(int8_t)(b >> (8 * i));
    return c;
}
static inline unsigned __dp4a(unsigned a, unsigned b, unsigned c) {
    for (int i = 0; i < 4; i++) c += ((a >> (8 * i)) & 255u) * ((b >> (8 * i)) & 255u);
    return c;
}
/* the 64-bit hi:lo shifted right by min(shift, 32), low 32 bits */
static inline unsigned __funnelshift_rc(unsigned lo, unsigned hi, unsigned shift) {
    const unsigned s = shift < 32u ? shift : 32u;
    return (unsigned)((((unsigned long long)hi << 32) | lo) >> s);
}
/* per-byte subtraction modulo 256 */
static inline unsigned __vsub4(unsigned a, unsigned b) {
    unsigned r = 0;
    for (int i = 0; i < 32; i += 8) r |= ((((a >> i) & 255u) - ((b >> i) & 255u)) & 255u) << i;
    return r;
}
static inline int       max(int a, int b) { return a > b ? a : b; }
static inline int       min(int a, int b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long      max(long a, long b) { return a > b ? a : b; }
static inline long      min(long a, long b) { return a < b ? a : b; }
static inline unsigned  max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline unsigned  min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline float     max(float a, float b) { return fmaxf(a, b); }
static inline float     min(float a, float b) { return fminf(a, b); }

/* ---- synchronization (emu.cc) ---- */

void  smoe_emu_syncthreads(void);
void  smoe_emu_warp_sync(unsigned mask, const char *what); /* every lane of the warp, mask 0xffffffff */
void *smoe_emu_warp_slots(void); /* this shuffle's exchange area of the warp: 32 slots of 16 bytes */
int   smoe_emu_lane(void);                                 /* linear thread index % 32 */
void *smoe_emu_dyn_smem(void);                             /* this launch's dynamic shared memory */

static inline void __syncthreads(void) { smoe_emu_syncthreads(); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) { smoe_emu_warp_sync(mask, "__syncwarp"); }

template <typename T> static inline T smoe_emu_exchange(unsigned mask, T v, int src, const char *what) {
    static_assert(sizeof(T) <= 16, "shuffle of a type wider than 16 bytes");
    unsigned char(*slots)[16] = (unsigned char(*)[16])smoe_emu_warp_slots();
    memcpy(slots[smoe_emu_lane()], &v, sizeof(T));
    smoe_emu_warp_sync(mask, what); /* every lane has written (emu.cc: why one barrier is enough) */
    T r;
    memcpy(&r, slots[src & 31], sizeof(T));
    return r;
}
template <typename T> static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    const int lane = smoe_emu_lane();
    return smoe_emu_exchange(mask, v, (lane & ~(width - 1)) + (src & (width - 1)), "__shfl_sync");
}
template <typename T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    const int lane = smoe_emu_lane(), src = lane ^ lane_mask;
    return smoe_emu_exchange(mask, v, src >= ((lane & ~(width - 1)) + width) ? lane : src, "__shfl_xor_sync");
}
template <typename T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    const int lane = smoe_emu_lane();
    return smoe_emu_exchange(mask, v, (lane & (width - 1)) + (int)delta < width ? lane + (int)delta : lane,
                             "__shfl_down_sync");
}
template <typename T> static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    const int lane = smoe_emu_lane();
    return smoe_emu_exchange(mask, v, (lane & (width - 1)) >= (int)delta ? lane - (int)delta : lane,
                             "__shfl_up_sync");
}

/* atomics: the fibers of a block run one at a time and never switch inside these */
template <typename T> static inline T atomicAdd(T *p, T v) { const T o = *p; *p = o + v; return o; }
template <typename T> static inline T atomicSub(T *p, T v) { const T o = *p; *p = o - v; return o; }
template <typename T> static inline T atomicMax(T *p, T v) { const T o = *p; *p = o > v ? o : v; return o; }
template <typename T> static inline T atomicMin(T *p, T v) { const T o = *p; *p = o < v ? o : v; return o; }
template <typename T> static inline T atomicExch(T *p, T v) { const T o = *p; *p = v; return o; }
template <typename T> static inline T atomicCAS(T *p, T cmp, T v) { const T o = *p; if (o == cmp) *p = v; return o; }

/* ---- the runtime calls a launcher makes ---- */

typedef struct CUstream_st *cudaStream_t;
/* the runtime's values (driver_types.h), so the host side reads them as it reads the real ones */
typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDeviceFunction = 98,
    cudaErrorLaunchOutOfResources = 701,
    cudaErrorLaunchFailure = 719,
} cudaError_t;
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

cudaError_t smoe_emu_get_last_error(void);
cudaError_t smoe_emu_set_attribute(const void *kernel, int attr, int value);
#define cudaGetLastError smoe_emu_get_last_error
static inline cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
template <typename K> static inline cudaError_t cudaFuncSetAttribute(K *kernel, cudaFuncAttribute attr, int value) {
    return smoe_emu_set_attribute((const void *)kernel, (int)attr, value);
}
/* a launcher's memsets and copies run at once: the launch itself runs when its stream reaches it (tests/cuda-fake) */
static inline cudaError_t smoe_emu_memset_async(void *p, int v, size_t n, cudaStream_t) {
    memset(p, v, n);
    return cudaSuccess;
}
#define cudaMemsetAsync smoe_emu_memset_async

/* a launch: cu2cc.py turns `kernel<<<grid, block, smem, stream>>>(args)` into
 * smoe_emu_launch([&]() { kernel(args); }, (const void *)&kernel, "kernel", grid, block, smem, stream) */
typedef void (*smoe_emu_fn)(void *);
cudaError_t smoe_emu_run(smoe_emu_fn fn, void *ctx, const void *kernel, const char *name, dim3 grid, dim3 block,
                         size_t smem);
template <typename F>
static inline cudaError_t smoe_emu_launch(F &&body, const void *kernel, const char *name, dim3 grid, dim3 block,
                                          size_t smem = 0, cudaStream_t stream = nullptr) {
    (void)stream;
    using B = typename std::remove_reference<F>::type;
    return smoe_emu_run([](void *c) { (*(B *)c)(); }, (void *)&body, kernel, name, grid, block, smem);
}

#endif
