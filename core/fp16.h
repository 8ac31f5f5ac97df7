/*
 * fp16.h - IEEE half and bfloat16 conversions (bit-exact, round to nearest even), portable C.
 */
#ifndef SMOE_FP16_H
#define SMOE_FP16_H

#include <stdint.h>
#include <string.h>

typedef uint16_t smoe_fp16;
typedef uint16_t smoe_bf16;

static inline uint32_t smoe_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float    smoe_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float smoe_fp16_to_f32(smoe_fp16 h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return smoe_bits_f32(sign | 0x7f800000u | (man << 13)); /* inf / nan */
    if (exp == 0) {
        if (man == 0) return smoe_bits_f32(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-08f;
        return sign ? -v : v;
    }
    return smoe_bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

static inline smoe_fp16 smoe_f32_to_fp16(float f) {
    const uint32_t x = smoe_f32_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (smoe_fp16)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0));
    if (ax >= 0x477ff000u) return (smoe_fp16)(sign | 0x7c00u); /* rounds to >= 65520: inf */
    if (ax < 0x38800000u) {                                    /* below 2^-14: subnormal half or zero */
        if (ax < 0x33000000u) return (smoe_fp16)sign;          /* < 2^-25 rounds to 0 */
        const uint32_t e = ax >> 23;
        const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        /* value = m * 2^(e-150); in units of 2^-24: m * 2^(e-126) */
        const uint32_t s = 126u - e; /* right shift amount, 1..24 */
        uint32_t q = m >> s;
        const uint32_t rem = m & ((1u << s) - 1u);
        const uint32_t half = 1u << (s - 1u);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (smoe_fp16)(sign | q);
    }
    uint32_t r = ax - 0x38000000u; /* rebias exponent 127 -> 15 */
    const uint32_t rem = r & 0x1fffu;
    r >>= 13;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;
    return (smoe_fp16)(sign | r);
}

static inline float smoe_bf16_to_f32(smoe_bf16 h) { return smoe_bits_f32((uint32_t)h << 16); }

static inline smoe_bf16 smoe_f32_to_bf16(float f) {
    uint32_t u = smoe_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (smoe_bf16)((u >> 16) | 0x40u); /* quiet nan */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (smoe_bf16)(u >> 16);
}

#endif /* SMOE_FP16_H */
