/*
 * quant-traits.c - the one table of element types: block size, bytes per block, conversions.
 * Sizes follow GGUF (ggml_type); the function pointers are set for the types smoe computes with.
 */
#include "quant-impl.h"

#include <ctype.h>
#include <string.h>

static void f32_to_f32(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }
static void f32_from_f32(const float *src, void *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }

static void f16_to_f32(const void *src, float *dst, int64_t n) {
    const smoe_fp16 *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = smoe_fp16_to_f32(s[i]);
}
static void f16_from_f32(const float *src, void *dst, int64_t n) {
    smoe_fp16 *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = smoe_f32_to_fp16(src[i]);
}
static void bf16_to_f32(const void *src, float *dst, int64_t n) {
    const smoe_bf16 *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = smoe_bf16_to_f32(s[i]);
}
static void bf16_from_f32(const float *src, void *dst, int64_t n) {
    smoe_bf16 *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = smoe_f32_to_bf16(src[i]);
}

/* Plain-type rows dot an F32 activation row. Eight partial sums (in the order a SIMD loop would use) keep the
 * rounding error low and let the compiler vectorize without reassociation flags. */
#define DOT_F32(name, type, conv)                                                                                      \
    static void name(int64_t n, float *out, const void *vx, const void *vy) {                                         \
        const type  *x      = vx;                                                                                      \
        const float *y      = vy;                                                                                      \
        float        acc[8] = {0};                                                                                     \
        int64_t      i      = 0;                                                                                       \
        for (; i + 8 <= n; i += 8) {                                                                                   \
            for (int k = 0; k < 8; k++) acc[k] += conv(x[i + k]) * y[i + k];                                           \
        }                                                                                                              \
        float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));                   \
        for (; i < n; i++) s += conv(x[i]) * y[i];                                                                     \
        *out = s;                                                                                                      \
    }
#define CONV_F32(v) (v)
DOT_F32(vec_dot_f32_f32, float, CONV_F32)
/* F16: converted 64 at a time into a buffer first (a plain loop the compiler vectorizes), then the same sums */
static void vec_dot_f16_f32(int64_t n, float *out, const void *vx, const void *vy) {
    const smoe_fp16 *x      = vx;
    const float     *y      = vy;
    float            acc[8] = {0}, buf[64];
    int64_t          i      = 0;
    for (; i + 64 <= n; i += 64) {
        for (int k = 0; k < 64; k++) buf[k] = smoe_q_fp16_to_f32_fast(x[i + k]);
        for (int k = 0; k < 64; k += 8) {
            for (int l = 0; l < 8; l++) acc[l] += buf[k + l] * y[i + k + l];
        }
    }
    for (; i + 8 <= n; i += 8) {
        for (int l = 0; l < 8; l++) acc[l] += smoe_q_fp16_to_f32_fast(x[i + l]) * y[i + l];
    }
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += smoe_q_fp16_to_f32_fast(x[i]) * y[i];
    *out = s;
}
DOT_F32(vec_dot_bf16_f32, smoe_bf16, smoe_bf16_to_f32)

#define PLAIN(id, nm, sz) [id] = {.name = nm, .block_size = 1, .type_size = sz, .is_quantized = false}
#define QUANT(id, nm, blk, sz) [id] = {.name = nm, .block_size = blk, .type_size = sz, .is_quantized = true}
/* A type smoe computes with: reference quantizer, dequantizer and dot product against `dot` (see quant.h). */
#define QUANT_FN(id, nm, blk, sz, sfx, dsfx, DOT)                                                                      \
    [id] = {.name = nm, .block_size = blk, .type_size = sz, .is_quantized = true, .to_f32 = smoe_dequant_##sfx,         \
            .from_f32 = smoe_quant_##sfx##_ref, .vec_dot = smoe_vec_dot_##sfx##_##dsfx, .vec_dot_type = SMOE_TYPE_##DOT}

static const smoe_type_traits type_traits[SMOE_TYPE_COUNT] = {
    /* F32/F16/BF16 rows dot F32 activations (see quant.h) */
    [SMOE_TYPE_F32]  = {.name = "f32", .block_size = 1, .type_size = 4, .to_f32 = f32_to_f32,
                        .from_f32 = f32_from_f32, .vec_dot = vec_dot_f32_f32, .vec_dot_type = SMOE_TYPE_F32},
    [SMOE_TYPE_F16]  = {.name = "f16", .block_size = 1, .type_size = 2, .to_f32 = f16_to_f32,
                        .from_f32 = f16_from_f32, .vec_dot = vec_dot_f16_f32, .vec_dot_type = SMOE_TYPE_F32},
    [SMOE_TYPE_BF16] = {.name = "bf16", .block_size = 1, .type_size = 2, .to_f32 = bf16_to_f32,
                        .from_f32 = bf16_from_f32, .vec_dot = vec_dot_bf16_f32, .vec_dot_type = SMOE_TYPE_F32},
    QUANT_FN(SMOE_TYPE_Q4_0, "q4_0", 32, 18, q4_0, q8_0, Q8_0),
    QUANT_FN(SMOE_TYPE_Q4_1, "q4_1", 32, 20, q4_1, q8_0, Q8_0),
    QUANT_FN(SMOE_TYPE_Q5_0, "q5_0", 32, 22, q5_0, q8_0, Q8_0),
    QUANT_FN(SMOE_TYPE_Q5_1, "q5_1", 32, 24, q5_1, q8_0, Q8_0),
    QUANT_FN(SMOE_TYPE_Q8_0, "q8_0", 32, 34, q8_0, q8_0, Q8_0),
    QUANT(SMOE_TYPE_Q8_1, "q8_1", 32, 36),
    QUANT(SMOE_TYPE_Q2_K, "q2_k", 256, 84),
    QUANT(SMOE_TYPE_Q3_K, "q3_k", 256, 110),
    QUANT_FN(SMOE_TYPE_Q4_K, "q4_k", 256, 144, q4_k, q8_k, Q8_K),
    QUANT_FN(SMOE_TYPE_Q5_K, "q5_k", 256, 176, q5_k, q8_k, Q8_K),
    QUANT_FN(SMOE_TYPE_Q6_K, "q6_k", 256, 210, q6_k, q8_k, Q8_K),
    /* activations only: no dot product of its own */
    [SMOE_TYPE_Q8_K] = {.name = "q8_k", .block_size = 256, .type_size = 292, .is_quantized = true,
                        .to_f32 = smoe_dequant_q8_k, .from_f32 = smoe_quant_q8_k_ref, .vec_dot_type = SMOE_TYPE_Q8_K},
    QUANT(SMOE_TYPE_IQ2_XXS, "iq2_xxs", 256, 66),
    QUANT(SMOE_TYPE_IQ2_XS, "iq2_xs", 256, 74),
    QUANT(SMOE_TYPE_IQ3_XXS, "iq3_xxs", 256, 98),
    QUANT(SMOE_TYPE_IQ1_S, "iq1_s", 256, 50),
    QUANT(SMOE_TYPE_IQ4_NL, "iq4_nl", 32, 18),
    QUANT(SMOE_TYPE_IQ3_S, "iq3_s", 256, 110),
    QUANT(SMOE_TYPE_IQ2_S, "iq2_s", 256, 82),
    QUANT(SMOE_TYPE_IQ4_XS, "iq4_xs", 256, 136),
    PLAIN(SMOE_TYPE_I8, "i8", 1),
    PLAIN(SMOE_TYPE_I16, "i16", 2),
    PLAIN(SMOE_TYPE_I32, "i32", 4),
    PLAIN(SMOE_TYPE_I64, "i64", 8),
    PLAIN(SMOE_TYPE_F64, "f64", 8),
    QUANT(SMOE_TYPE_IQ1_M, "iq1_m", 256, 56),
    QUANT(SMOE_TYPE_TQ1_0, "tq1_0", 256, 54),
    QUANT(SMOE_TYPE_TQ2_0, "tq2_0", 256, 66),
    QUANT(SMOE_TYPE_MXFP4, "mxfp4", 32, 17),
};

const smoe_type_traits *smoe_type_get_traits(int type) {
    if (type < 0 || type >= SMOE_TYPE_COUNT || type_traits[type].name == NULL) return NULL;
    return &type_traits[type];
}

const char *smoe_type_name(int type) {
    const smoe_type_traits *t = smoe_type_get_traits(type);
    return t ? t->name : "unknown";
}

int smoe_type_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < SMOE_TYPE_COUNT; i++) {
        if (!type_traits[i].name) continue;
        const char *a = type_traits[i].name, *b = name;
        while (*a && *b && tolower((unsigned char)*a) == tolower((unsigned char)*b)) a++, b++;
        if (!*a && !*b) return i;
    }
    return -1;
}

size_t smoe_row_size(int type, int64_t n) {
    const smoe_type_traits *t = smoe_type_get_traits(type);
    if (!t || n < 0 || n % t->block_size != 0) return 0;
    return (size_t)(n / t->block_size) * t->type_size;
}
