// cuda-common.cuh - what every kernel file shares: element decoding for each weight type, conversions, reductions,
// the error flag, and the type dispatcher.
//
// Decoding is per element (deq<T>(row, i) = element i of a row that starts at `row`), mirroring the block layouts in
// quant/quant.h exactly; kernels are correctness-first and read bytes, so no alignment beyond 1 is assumed.
// deq_sub<T> decodes a sub-block of 32 elements at once for the GEMV hot path (gemv.cu).
#pragma once

#include "cuda-kernels.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

#include <utility>

#define SMOE_WARP 32
// element decoding also compiles for the host: tests/test-cuda-deq.cu checks it against the CPU's to_f32
#define SMOE_HD __host__ __device__ __forceinline__

static SMOE_HD uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static SMOE_HD float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static SMOE_HD float f16_at(const uint8_t *p) {
    const unsigned short h = (unsigned short)(p[0] | (p[1] << 8));
    return __half2float(__ushort_as_half(h));
}

static SMOE_HD float bf16_to_f32(unsigned short h) { return f32_from_bits((uint32_t)h << 16); }

// round to nearest even; NaN stays a (quiet) NaN
static SMOE_HD unsigned short f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 64);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

template <int T> struct type_info;
template <> struct type_info<SMOE_CUDA_F32> { static constexpr int qk = 1, bytes = 4; };
template <> struct type_info<SMOE_CUDA_F16> { static constexpr int qk = 1, bytes = 2; };
template <> struct type_info<SMOE_CUDA_BF16> { static constexpr int qk = 1, bytes = 2; };
template <> struct type_info<SMOE_CUDA_Q4_0> { static constexpr int qk = 32, bytes = 18; };
template <> struct type_info<SMOE_CUDA_Q4_1> { static constexpr int qk = 32, bytes = 20; };
template <> struct type_info<SMOE_CUDA_Q5_0> { static constexpr int qk = 32, bytes = 22; };
template <> struct type_info<SMOE_CUDA_Q5_1> { static constexpr int qk = 32, bytes = 24; };
template <> struct type_info<SMOE_CUDA_Q8_0> { static constexpr int qk = 32, bytes = 34; };
template <> struct type_info<SMOE_CUDA_Q4_K> { static constexpr int qk = 256, bytes = 144; };
template <> struct type_info<SMOE_CUDA_Q5_K> { static constexpr int qk = 256, bytes = 176; };
template <> struct type_info<SMOE_CUDA_Q6_K> { static constexpr int qk = 256, bytes = 210; };

// K-quant 6-bit scale and min of sub-block j (0..7), packed as described in quant/quant.h
static SMOE_HD void kq_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// element i of a row of type T
template <int T> static SMOE_HD float deq(const uint8_t *row, int64_t i) {
    constexpr int QK = type_info<T>::qk;
    const uint8_t *b = row + (i / QK) * type_info<T>::bytes;
    const int j = (int)(i % QK);
    if constexpr (T == SMOE_CUDA_F32) {
        return ((const float *)row)[i];
    } else if constexpr (T == SMOE_CUDA_F16) {
        return f16_at(b);
    } else if constexpr (T == SMOE_CUDA_BF16) {
        return bf16_to_f32((unsigned short)(b[0] | (b[1] << 8)));
    } else if constexpr (T == SMOE_CUDA_Q4_0) {
        const int q = j < 16 ? (b[2 + j] & 15) : (b[2 + j - 16] >> 4);
        return f16_at(b) * (float)(q - 8);
    } else if constexpr (T == SMOE_CUDA_Q4_1) {
        const int q = j < 16 ? (b[4 + j] & 15) : (b[4 + j - 16] >> 4);
        return f16_at(b) * (float)q + f16_at(b + 2);
    } else if constexpr (T == SMOE_CUDA_Q5_0) {
        const uint32_t qh = (uint32_t)b[2] | ((uint32_t)b[3] << 8) | ((uint32_t)b[4] << 16) | ((uint32_t)b[5] << 24);
        const int lo = j < 16 ? (b[6 + j] & 15) : (b[6 + j - 16] >> 4);
        const int q = lo | (int)(((qh >> j) & 1u) << 4);
        return f16_at(b) * (float)(q - 16);
    } else if constexpr (T == SMOE_CUDA_Q5_1) {
        const uint32_t qh = (uint32_t)b[4] | ((uint32_t)b[5] << 8) | ((uint32_t)b[6] << 16) | ((uint32_t)b[7] << 24);
        const int lo = j < 16 ? (b[8 + j] & 15) : (b[8 + j - 16] >> 4);
        const int q = lo | (int)(((qh >> j) & 1u) << 4);
        return f16_at(b) * (float)q + f16_at(b + 2);
    } else if constexpr (T == SMOE_CUDA_Q8_0) {
        return f16_at(b) * (float)(int8_t)b[2 + j];
    } else if constexpr (T == SMOE_CUDA_Q4_K || T == SMOE_CUDA_Q5_K) {
        // d, dmin, scales[12], (q5_k: qh[32]), qs[128]
        const int sb = j / 32, l = j % 32;
        int sc, m;
        kq_scale_min(b + 4, sb, &sc, &m);
        const uint8_t *qs = b + 16 + (T == SMOE_CUDA_Q5_K ? 32 : 0);
        const uint8_t byte = qs[32 * (sb / 2) + l];
        int q = (sb & 1) ? (byte >> 4) : (byte & 15);
        if constexpr (T == SMOE_CUDA_Q5_K) q |= ((b[16 + l] >> sb) & 1) << 4;
        return f16_at(b) * (float)sc * (float)q - f16_at(b + 2) * (float)m;
    } else { // Q6_K: ql[128], qh[64], scales[16] (int8), d
        const int h = j / 128, e = j % 128;
        const uint8_t lb = b[64 * h + e % 64];
        const int lo = e < 64 ? (lb & 15) : (lb >> 4);
        const int hi = (b[128 + 32 * h + e % 32] >> (2 * (e / 32))) & 3;
        const int q = lo | (hi << 4);
        return f16_at(b + 208) * (float)(int8_t)b[192 + j / 16] * (float)(q - 32);
    }
}

// Sub-block decoding for the GEMV hot path: the 32 elements 32*s .. 32*s+31 of a row of type T (every quantized
// block is a whole number of sub-blocks of 32), read once, byte-wise from consecutive addresses, with the same
// arithmetic as deq<T> (so the values are bit-identical: tests/test-cuda-deq.cu checks it).
// F32, F16 and BF16 rows are read in 16-byte loads: their address and stride must be multiples of 16
// (smoe_cuda_mm_path_of).
template <int T> static SMOE_HD float half_word(uint32_t u, int hi) {
    const unsigned short h = (unsigned short)(hi ? u >> 16 : u & 0xffffu);
    if constexpr (T == SMOE_CUDA_F16) return __half2float(__ushort_as_half(h));
    else return bf16_to_f32(h);
}
template <int T> static SMOE_HD void deq_sub(const uint8_t *row, int64_t s, float *w) {
    constexpr int QK = type_info<T>::qk;
    static_assert(QK == 1 || QK % 32 == 0, "deq_sub: sub-blocks of 32");
    if constexpr (QK == 1) {
        const uint4 *p = (const uint4 *)(row + s * 32 * type_info<T>::bytes);
        if constexpr (T == SMOE_CUDA_F32) {
            for (int q = 0; q < 8; q++) {
                const uint4 v = p[q];
                w[4 * q] = f32_from_bits(v.x);
                w[4 * q + 1] = f32_from_bits(v.y);
                w[4 * q + 2] = f32_from_bits(v.z);
                w[4 * q + 3] = f32_from_bits(v.w);
            }
        } else {
            for (int q = 0; q < 4; q++) {
                const uint4 v = p[q];
                const uint32_t u[4] = {v.x, v.y, v.z, v.w};
                for (int j = 0; j < 4; j++) {
                    w[8 * q + 2 * j] = half_word<T>(u[j], 0);
                    w[8 * q + 2 * j + 1] = half_word<T>(u[j], 1);
                }
            }
        }
        return;
    }
    const uint8_t *b = row + (s / (QK / 32 > 0 ? QK / 32 : 1)) * type_info<T>::bytes;
    const int sb = (int)(s % (QK / 32 > 0 ? QK / 32 : 1)); // sub-block within the block
    if constexpr (T == SMOE_CUDA_Q4_0) { // 18-byte blocks: 2-byte aligned, read as 16-bit words
        const unsigned short *u = (const unsigned short *)b;
        const float d = __half2float(__ushort_as_half(u[0]));
        for (int j = 0; j < 8; j++) { // constant bounds: unrolled
            const unsigned v = u[1 + j];
            const unsigned q0 = v & 255u, q1 = v >> 8;
            w[2 * j] = d * (float)((int)(q0 & 15) - 8);
            w[2 * j + 1] = d * (float)((int)(q1 & 15) - 8);
            w[2 * j + 16] = d * (float)((int)(q0 >> 4) - 8);
            w[2 * j + 17] = d * (float)((int)(q1 >> 4) - 8);
        }
    } else if constexpr (T == SMOE_CUDA_Q4_1) {
        const float d = f16_at(b), m = f16_at(b + 2);
        for (int j = 0; j < 16; j++) {
            const uint8_t q = b[4 + j];
            w[j] = d * (float)(q & 15) + m;
            w[j + 16] = d * (float)(q >> 4) + m;
        }
    } else if constexpr (T == SMOE_CUDA_Q5_0 || T == SMOE_CUDA_Q5_1) {
        constexpr int o = T == SMOE_CUDA_Q5_0 ? 2 : 4;
        const float d = f16_at(b), m = T == SMOE_CUDA_Q5_1 ? f16_at(b + 2) : 0.0f;
        const uint32_t qh = (uint32_t)b[o] | ((uint32_t)b[o + 1] << 8) | ((uint32_t)b[o + 2] << 16) |
                            ((uint32_t)b[o + 3] << 24);
        for (int j = 0; j < 16; j++) {
            const uint8_t q = b[o + 4 + j];
            const int lo = (q & 15) | (int)(((qh >> j) & 1u) << 4);
            const int hi = (q >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            if constexpr (T == SMOE_CUDA_Q5_0) {
                w[j] = d * (float)(lo - 16);
                w[j + 16] = d * (float)(hi - 16);
            } else {
                w[j] = d * (float)lo + m;
                w[j + 16] = d * (float)hi + m;
            }
        }
    } else if constexpr (T == SMOE_CUDA_Q8_0) { // 34-byte blocks: 2-byte aligned, read as 16-bit words
        const unsigned short *u = (const unsigned short *)b;
        const float d = __half2float(__ushort_as_half(u[0]));
        for (int j = 0; j < 16; j++) { // constant bounds: unrolled
            const unsigned v = u[1 + j];
            w[2 * j] = d * (float)(int8_t)(v & 255u);
            w[2 * j + 1] = d * (float)(int8_t)(v >> 8);
        }
    } else if constexpr (T == SMOE_CUDA_Q4_K || T == SMOE_CUDA_Q5_K) {
        int sc, m;
        kq_scale_min(b + 4, sb, &sc, &m);
        const float    d = f16_at(b), dmin = f16_at(b + 2);
        const uint8_t *qs = b + 16 + (T == SMOE_CUDA_Q5_K ? 32 : 0) + 32 * (sb / 2);
        for (int l = 0; l < 32; l++) {
            int q = (sb & 1) ? (qs[l] >> 4) : (qs[l] & 15);
            if constexpr (T == SMOE_CUDA_Q5_K) q |= ((b[16 + l] >> sb) & 1) << 4;
            w[l] = d * (float)sc * (float)q - dmin * (float)m;
        }
    } else { // Q6_K
        const int      h = sb / 4, e0 = 32 * (sb % 4);
        const float    d = f16_at(b + 208);
        const uint8_t *ql = b + 64 * h + (e0 % 64), *qh = b + 128 + 32 * h;
        const int      shift_lo = e0 < 64 ? 0 : 4, shift_hi = 2 * (e0 / 32);
        for (int l = 0; l < 32; l++) {
            const int q = ((ql[l] >> shift_lo) & 15) | (((qh[l] >> shift_hi) & 3) << 4);
            w[l] = d * (float)(int8_t)b[192 + (32 * sb + l) / 16] * (float)(q - 32);
        }
    }
}

// Q4_0 and Q8_0 sub-blocks straight to f16 for the tensor-core prefill: the 32 elements as 16 half2 (element 2j in
// the low half of word j), each d * q rounded once to f16, so the values are __float2half_rn of deq_sub's (the
// product of an f16 scale and a small integer is exact in f32, and __hmul2 rounds the exact product:
// tests/test-cuda-deq.cu checks it). The integers become halves without conversions: 0x6400 | n is 1024 + n for
// n < 1024, so a nibble (or a byte xor 0x80) or-ed into the mantissa and the offset subtracted is q exactly.
static constexpr __host__ __device__ bool deq_h2_type(int t) { return t == SMOE_CUDA_Q4_0 || t == SMOE_CUDA_Q8_0; }

static SMOE_HD __half2 h2_bits(uint32_t v) {
    return __halves2half2(__ushort_as_half((unsigned short)(v & 0xffffu)), __ushort_as_half((unsigned short)(v >> 16)));
}
static SMOE_HD uint32_t h2_word(__half2 h) {
    return (uint32_t)__half_as_ushort(__low2half(h)) | (uint32_t)__half_as_ushort(__high2half(h)) << 16;
}

// hi:lo shifted right by s bits (0-32), the low 32 bits: a funnel shift on the GPU, also on the host (tests)
static SMOE_HD uint32_t funnel_r(uint32_t lo, uint32_t hi, unsigned s) {
    return (uint32_t)((((uint64_t)hi << 32) | lo) >> s);
}

// A Q4_0 (NQ = 4) or Q8_0 (NQ = 8) block at b (2-byte aligned: 18 or 34 bytes) from NQ + 1 aligned 32-bit loads
// (its row 4-byte aligned), the words realigned by funnel shifts: its f16 scale's bits, and in q its NQ words of
// quants (bytes 2 + 4i .. 5 + 4i). Where each thread reads its own block, a warp-wide load spans several cache lines
// whatever its width and each spanned line costs the L1 a cycle, so the load count is what matters: 16-bit loads
// took 9 and 17 a block (the decode GEMV's Q4_0 near 3 TB/s of weights on an H100's 132 SMs, below its 3.35).
// A block that starts 4-byte aligned reads 2 bytes past its end (the next block's, or cuda_buffer_alloc's padding).
template <int NQ> static SMOE_HD uint32_t ld_block_a4(const uint8_t *b, uint32_t *q) {
    const unsigned  o = (unsigned)((uintptr_t)b & 2u) * 8u; // 0 or 16 bits
    const uint32_t *p = (const uint32_t *)(b - o / 8u);
    uint32_t        w[NQ + 1];
    for (int i = 0; i <= NQ; i++) w[i] = p[i];
    for (int i = 0; i < NQ; i++) q[i] = funnel_r(w[i], w[i + 1], 16u + o);
    return funnel_r(w[0], w[1], o) & 0xffffu;
}

// A Q4_0 or Q8_0 block as the prefill loads it a step ahead (load_h2) and decodes it after (decode_h2), so the loads
// are in flight while the tensor cores work on the step before: the scale's bits and the quant bytes as words
template <int T> struct raw_h2 {
    static constexpr int nq = (type_info<T>::bytes - 2) / 4;
    uint32_t             scale, q[nq];
};

// block s of row; aligned4: the row is 4-byte aligned (ld_block_a4), else 16-bit loads
template <int T> static SMOE_HD void load_h2(const uint8_t *row, int64_t s, raw_h2<T> *r, bool aligned4) {
    static_assert(deq_h2_type(T), "load_h2: Q4_0 and Q8_0");
    const uint8_t *b = row + s * type_info<T>::bytes;
    if (aligned4) {
        r->scale = ld_block_a4<raw_h2<T>::nq>(b, r->q);
        return;
    }
    const unsigned short *u = (const unsigned short *)b; // 2-byte aligned blocks
    r->scale = u[0];
    for (int i = 0; i < raw_h2<T>::nq; i++) r->q[i] = (uint32_t)u[1 + 2 * i] | (uint32_t)u[2 + 2 * i] << 16;
}

template <int T> static SMOE_HD void decode_h2(const raw_h2<T> &r, uint32_t *w) {
    const __half  dh = __ushort_as_half((unsigned short)r.scale);
    const __half2 d2 = __halves2half2(dh, dh);
    if constexpr (T == SMOE_CUDA_Q4_0) {
        const __half2 off = h2_bits(0x64086408u); // 1032: 1024 + the offset 8
        for (int j = 0; j < 8; j++) { // bytes 2j, 2j + 1: low nibbles are elements 2j, 2j + 1, high ones + 16
            const uint32_t v = (r.q[j / 2] >> (16 * (j % 2))) & 0xffffu;
            const uint32_t lo = (v & 0xfu) | (v & 0xf00u) << 8, hi = (v >> 4 & 0xfu) | (v & 0xf000u) << 4;
            w[j] = h2_word(__hmul2(d2, __hsub2(h2_bits(lo | 0x64006400u), off)));
            w[8 + j] = h2_word(__hmul2(d2, __hsub2(h2_bits(hi | 0x64006400u), off)));
        }
    } else {
        const __half2 off = h2_bits(0x64806480u); // 1152: 1024 + 128 (the bytes xor 0x80 are q + 128)
        for (int j = 0; j < 16; j++) {
            const uint32_t v = ((r.q[j / 2] >> (16 * (j % 2))) & 0xffffu) ^ 0x8080u;
            w[j] = h2_word(__hmul2(d2, __hsub2(h2_bits((v & 0xffu) | (v & 0xff00u) << 8 | 0x64006400u), off)));
        }
    }
}

// The same for Q4_K and Q5_K sub-blocks (rows 16-byte aligned: 144- and 176-byte blocks), in 16-byte loads: the
// block's first 16 bytes (d, dmin, the 12 scale bytes), Q5_K's 32 bytes of fifth bits and the 32 bytes of nibbles the
// sub-block shares with its pair; decode_kq takes them apart with shifts (a byte picked by a run-time index out of a
// register would go through local memory) and computes deq_sub's values with deq_sub's arithmetic.
static constexpr __host__ __device__ bool kq_type(int t) { return t == SMOE_CUDA_Q4_K || t == SMOE_CUDA_Q5_K; }

template <int T> struct raw_kq {
    uint4 head, qh[T == SMOE_CUDA_Q5_K ? 2 : 1], qs[2];
    int   sb; // the sub-block within its block (0-7)
};

template <int T> static SMOE_HD void load_kq(const uint8_t *row, int64_t s, raw_kq<T> *r) {
    static_assert(kq_type(T), "load_kq: Q4_K and Q5_K");
    const uint8_t *b = row + (s / 8) * type_info<T>::bytes;
    r->sb = (int)(s % 8);
    r->head = *(const uint4 *)b;
    if constexpr (T == SMOE_CUDA_Q5_K) {
        r->qh[0] = *(const uint4 *)(b + 16);
        r->qh[1] = *(const uint4 *)(b + 32);
    }
    const uint4 *q = (const uint4 *)(b + (T == SMOE_CUDA_Q5_K ? 48 : 16) + 32 * (r->sb / 2));
    r->qs[0] = q[0];
    r->qs[1] = q[1];
}

// byte i (0-15) of v, i known only at run time
static SMOE_HD unsigned byte_of(uint4 v, int i) {
    const uint32_t w = i < 4 ? v.x : (i < 8 ? v.y : (i < 12 ? v.z : v.w));
    return (w >> (8 * (i & 3))) & 255u;
}

// kq_scale_min of sub-block j (0-7, known at run time) from a K-quant block's first 16 bytes in registers (head: d,
// dmin, the 12 scale bytes), one 16-byte load where kq_scale_min's byte loads were three or four
static SMOE_HD void kq_head_scale_min(uint4 head, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = (int)byte_of(head, 4 + j) & 63;
        *m = (int)byte_of(head, 8 + j) & 63;
    } else {
        *sc = (int)((byte_of(head, 8 + j) & 15) | ((byte_of(head, j) >> 6) << 4));
        *m = (int)((byte_of(head, 8 + j) >> 4) | ((byte_of(head, 4 + j) >> 6) << 4));
    }
}

// kq_scale_min of sub-blocks 2p and 2p + 1 (p 0-3, known at run time) from the head, as 16-bit halves of its words
// (the pair's two bytes sit side by side in each of the three scale words): fewer instructions and registers than
// two kq_head_scale_min, for the int8 GEMV's Q4_K/Q5_K units
static SMOE_HD void kq_pair_scale_min(uint4 head, int p, int *sc0, int *m0, int *sc1, int *m1) {
    const unsigned sh = 16u * (unsigned)(p & 1);
    const uint32_t y = (head.y >> sh) & 0xffffu, z = (head.z >> sh) & 0xffffu, w = (head.w >> sh) & 0xffffu;
    const uint32_t sc = p < 2 ? y & 0x3f3fu : (w & 0x0f0fu) | ((y >> 2) & 0x3030u);
    const uint32_t m = p < 2 ? z & 0x3f3fu : ((w >> 4) & 0x0f0fu) | ((z >> 2) & 0x3030u);
    *sc0 = (int)(sc & 255u);
    *sc1 = (int)(sc >> 8);
    *m0 = (int)(m & 255u);
    *m1 = (int)(m >> 8);
}

// the block's d (kq_d) and dmin (kq_dmin) from its head
static SMOE_HD float kq_d(uint4 head) { return __half2float(__ushort_as_half((unsigned short)(head.x & 0xffffu))); }
static SMOE_HD float kq_dmin(uint4 head) { return __half2float(__ushort_as_half((unsigned short)(head.x >> 16))); }

template <int T> static SMOE_HD void decode_kq(const raw_kq<T> &r, float *w) {
    const int sb = r.sb;
    int       sc, m;
    kq_head_scale_min(r.head, sb, &sc, &m);
    const float    d = kq_d(r.head), dmin = kq_dmin(r.head);
    const uint32_t qw[8] = {r.qs[0].x, r.qs[0].y, r.qs[0].z, r.qs[0].w, r.qs[1].x, r.qs[1].y, r.qs[1].z, r.qs[1].w};
    const int      shift = (sb & 1) ? 4 : 0;
    for (int l = 0; l < 32; l++) { // constant bounds: unrolled, every index below constant
        int q = (int)((qw[l / 4] >> (8 * (l % 4) + shift)) & 15u);
        if constexpr (T == SMOE_CUDA_Q5_K) {
            const uint4    h = r.qh[l / 16];
            const uint32_t hw = (l % 16) < 4 ? h.x : ((l % 16) < 8 ? h.y : ((l % 16) < 12 ? h.z : h.w));
            q |= (int)(((hw >> (8 * (l % 4))) >> sb) & 1u) << 4;
        }
        w[l] = d * (float)sc * (float)q - dmin * (float)m;
    }
}

// Q8_0 block from 32 floats, as quant/q-legacy.c's reference quantizer (same comparisons, division and rounding, so
// the bytes are identical; tests/test-cuda-deq.cu checks it): the KV_WRITE and CPY kernels' q8_0 destination.
static SMOE_HD void quant_q8_0_block(const float *x, uint8_t *y) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
        if (amax < fabsf(x[j])) amax = fabsf(x[j]);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const unsigned short h = __half_as_ushort(__float2half_rn(d));
    y[0] = (uint8_t)(h & 0xff);
    y[1] = (uint8_t)(h >> 8);
    for (int j = 0; j < 32; j++) y[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

static __device__ __forceinline__ float warp_sum(float v) {
    for (int o = SMOE_WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// The int8 GEMV's activation columns (cuda-kernels.h: smoe_cuda_q8_column_bytes; gemv.cu has the reasons): per group
// of 32 elements the int8 values q = round(x / d), d = amax / 127, the group's two 16-byte halves swapped in every
// other run of 4 groups; after the k bytes a float2 (d at f16 precision, sum of q) per group.
static __device__ __forceinline__ int64_t q8_byte_offset(int64_t e) {
    const int64_t g = e >> 5;
    const int     half = (int)((e >> 4) & 1), sw = (int)((g >> 2) & 1);
    return 32 * g + 16 * (half ^ sw) + (e & 15);
}

// Element e of a column of k elements, value v, into col: the whole warp calls it at once, lane l holding element
// 32 g + l of group g (the same arithmetic as gemv.cu's quantize_q8_kernel, so the bytes are the same)
static __device__ __forceinline__ void q8_store_warp(uint8_t *col, int64_t k, int64_t e, float v) {
    float amax = fabsf(v);
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    const int   q = (int)roundf(v * id);
    int         sum = q;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    col[q8_byte_offset(e)] = (uint8_t)(q & 255);
    if ((e & 31) == 0) ((float2 *)(col + k))[e >> 5] = make_float2(__half2float(__float2half_rn(d)), (float)sum);
}

// RoPE of the pair (x0, x1) at index i < n_rot / 2 of a row at position pt (= pos * freq_scale), angles in double as
// the CPU reference (positions up to 32k with theta 1e6 lose digits in float): ROPE's kernel and KV_WRITE's with it
static __device__ __forceinline__ void rope_pair(float x0, float x1, int64_t i, double pt, int n_rot, float theta_base,
                                                 float *y0, float *y1) {
    const double ang = pt * pow((double)theta_base, -2.0 * (double)i / (double)n_rot);
    const float  c = (float)cos(ang), s = (float)sin(ang);
    *y0 = x0 * c - x1 * s;
    *y1 = x0 * s + x1 * c;
}

static __device__ __forceinline__ void report_error(int *err, int node_index) { atomicCAS(err, 0, node_index + 1); }

static inline unsigned int ceil_div(int64_t a, int64_t b) { return (unsigned int)((a + b - 1) / b); }

// The one type dispatcher: calls F.template run<T>() for the node's type `type`; an unknown type returns
// cudaErrorInvalidValue (supports_op keeps that from happening).
#define SMOE_CUDA_TYPE_CASE(T) \
    case T: return f.template run<T>();
template <typename F> static inline int dispatch_type(int32_t type, F &f) {
    switch (type) {
        SMOE_CUDA_TYPE_CASE(SMOE_CUDA_F32)
        SMOE_CUDA_TYPE_CASE(SMOE_CUDA_F16)
        SMOE_CUDA_TYPE_CASE(SMOE_CUDA_BF16)
        SMOE_CUDA_TYPE_CASE(SMOE_CUDA_Q4_0)
        SMOE_CUDA_TYPE_CASE(SMOE_CUDA_Q4_1)
        SMOE_CUDA_TYPE_CASE(SMOE_CUDA_Q5_0)
        SMOE_CUDA_TYPE_CASE(SMOE_CUDA_Q5_1)
        SMOE_CUDA_TYPE_CASE(SMOE_CUDA_Q8_0)
        SMOE_CUDA_TYPE_CASE(SMOE_CUDA_Q4_K)
        SMOE_CUDA_TYPE_CASE(SMOE_CUDA_Q5_K)
        SMOE_CUDA_TYPE_CASE(SMOE_CUDA_Q6_K)
    default: return (int)cudaErrorInvalidValue;
    }
}

static inline int launch_result(void) { return (int)cudaGetLastError(); }

// Programmatic dependent launch (Hopper; smoe_cuda_node.pdl, SMOE_CUDA_PDL=1): a launch with the attribute may start
// while the kernel before it in the stream still runs, so every kernel begins with SMOE_PDL_ENTER: wait until the
// kernel before has finished and its writes are visible (griddepcontrol.wait: a no-op without a programmatic
// dependency), then let the next kernel launch now (launch_dependents; it too waits before it reads or writes
// anything). A kernel that waits first cannot race its predecessor, and since each one waits for the one before,
// nor any earlier kernel. What overlaps is the next grid's launch and block scheduling with this one's tail.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define SMOE_PDL_ENTER()                                            \
    do {                                                            \
        asm volatile("griddepcontrol.wait;" ::: "memory");          \
        asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); \
    } while (0)
#else
#define SMOE_PDL_ENTER() ((void)0)
#endif

// kernel<<<grid, block, smem, stream>>>(args...), with the programmatic-serialization attribute when pdl (name: the
// kernel's, for the emulator's messages)
template <typename... P, typename... A>
static inline void smoe_launch(int32_t pdl, void (*kernel)(P...), const char *name, dim3 grid, dim3 block,
                               size_t smem, cudaStream_t stream, A &&...args) {
#ifdef SMOE_CUDA_EMU_H // tests/cuda-emu: no attributes; the launch runs on the emulator
    (void)pdl;
    (void)smoe_emu_launch([&]() { kernel(std::forward<A>(args)...); }, (const void *)kernel, name, grid, block, smem,
                          stream);
#else
    (void)name; // the emulator's messages
    if (pdl) {
        cudaLaunchAttribute attr[1];
        attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[0].val.programmaticStreamSerializationAllowed = 1;
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = grid;
        cfg.blockDim = block;
        cfg.dynamicSmemBytes = smem;
        cfg.stream = stream;
        cfg.attrs = attr;
        cfg.numAttrs = 1;
        (void)cudaLaunchKernelEx(&cfg, kernel, std::forward<A>(args)...); // an error is launch_result()'s
        return;
    }
    kernel<<<grid, block, smem, stream>>>(std::forward<A>(args)...);
#endif
}
