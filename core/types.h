/*
 * types.h - element types of tensors. Ids equal GGUF's (ggml_type) so a GGUF type id is a smoe_type; removed ids stay
 * reserved. The traits table (quant/quant-traits.c) is the one place that knows each type's block size and byte size,
 * and which conversions exist for it.
 */
#ifndef SMOE_TYPES_H
#define SMOE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum smoe_type {
    SMOE_TYPE_F32     = 0,
    SMOE_TYPE_F16     = 1,
    SMOE_TYPE_Q4_0    = 2,
    SMOE_TYPE_Q4_1    = 3,
    /* 4, 5: removed (Q4_2, Q4_3) */
    SMOE_TYPE_Q5_0    = 6,
    SMOE_TYPE_Q5_1    = 7,
    SMOE_TYPE_Q8_0    = 8,
    SMOE_TYPE_Q8_1    = 9,
    SMOE_TYPE_Q2_K    = 10,
    SMOE_TYPE_Q3_K    = 11,
    SMOE_TYPE_Q4_K    = 12,
    SMOE_TYPE_Q5_K    = 13,
    SMOE_TYPE_Q6_K    = 14,
    SMOE_TYPE_Q8_K    = 15,
    SMOE_TYPE_IQ2_XXS = 16,
    SMOE_TYPE_IQ2_XS  = 17,
    SMOE_TYPE_IQ3_XXS = 18,
    SMOE_TYPE_IQ1_S   = 19,
    SMOE_TYPE_IQ4_NL  = 20,
    SMOE_TYPE_IQ3_S   = 21,
    SMOE_TYPE_IQ2_S   = 22,
    SMOE_TYPE_IQ4_XS  = 23,
    SMOE_TYPE_I8      = 24,
    SMOE_TYPE_I16     = 25,
    SMOE_TYPE_I32     = 26,
    SMOE_TYPE_I64     = 27,
    SMOE_TYPE_F64     = 28,
    SMOE_TYPE_IQ1_M   = 29,
    SMOE_TYPE_BF16    = 30,
    /* 31-33: removed (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8) */
    SMOE_TYPE_TQ1_0   = 34,
    SMOE_TYPE_TQ2_0   = 35,
    /* 36-38: removed (IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8) */
    SMOE_TYPE_MXFP4   = 39,
    SMOE_TYPE_COUNT   = 40,
} smoe_type;

/* Converts n elements (n a multiple of block_size) between the type and f32. */
typedef void (*smoe_to_f32_fn)(const void *src, float *dst, int64_t n);
typedef void (*smoe_from_f32_fn)(const float *src, void *dst, int64_t n);
/* Dot product of n elements (a multiple of block_size) of a row of this type with a row of `vec_dot_type`. */
typedef void (*smoe_vec_dot_fn)(int64_t n, float *out, const void *x, const void *y);

typedef struct smoe_type_traits {
    const char      *name;        /* lower case, as GGUF tools print it: "q4_0", "f16" */
    int64_t          block_size;  /* elements per block (1 for plain types)           */
    size_t           type_size;   /* bytes per block                                    */
    bool             is_quantized;
    smoe_to_f32_fn   to_f32;      /* NULL: smoe cannot compute with this type           */
    smoe_from_f32_fn from_f32;    /* reference quantizer; NULL where not implemented    */
    smoe_vec_dot_fn  vec_dot;     /* reference dot product against vec_dot_type        */
    smoe_type        vec_dot_type;
} smoe_type_traits;

/* NULL for an id that is not a known type (including removed ids). */
const smoe_type_traits *smoe_type_get_traits(int type);
static inline bool smoe_type_is_valid(int type) { return smoe_type_get_traits(type) != NULL; }
const char *smoe_type_name(int type); /* "unknown" for an invalid id */
/* Looks a type up by its name (case-insensitive); returns -1 if unknown. */
int smoe_type_from_name(const char *name);

/* Bytes of a row of n elements; 0 if n is not a multiple of the block size or the type is invalid. */
size_t smoe_row_size(int type, int64_t n);

#endif /* SMOE_TYPES_H */
