/*
 * ops.h - the op enum, the typed op parameters and the tables generated from core/ops.def.
 */
#ifndef SMOE_OPS_H
#define SMOE_OPS_H

#include "types.h"

#include <stdint.h>

/* ---- parameter structs (one per op that has parameters; see ops.def) ---- */

typedef struct smoe_op_no_params {
    int32_t unused_;
} smoe_op_no_params;

typedef struct smoe_op_rms_norm_params {
    float eps; /* added to mean(x^2) before the square root; Mixtral: 1e-5 (llama.attention.layer_norm_rms_epsilon) */
} smoe_op_rms_norm_params;

typedef struct smoe_op_rope_params {
    int32_t n_rot;      /* rotated dims per head: even, <= head_dim; dims >= n_rot pass through (Mixtral: head_dim) */
    float   theta_base; /* Mixtral: 1e6 (llama.rope.freq_base) */
    float   freq_scale; /* positions are multiplied by this (1 = none; linear RoPE scaling) */
} smoe_op_rope_params;

typedef struct smoe_op_attention_params {
    float scale; /* applied to q.k before the softmax; usually 1/sqrt(head_dim) */
} smoe_op_attention_params;

typedef struct smoe_op_moe_route_params {
    int32_t n_used; /* experts per token (Mixtral: 2, llama.expert_used_count) */
} smoe_op_moe_route_params;

typedef struct smoe_op_scale_params {
    float s;
} smoe_op_scale_params;

typedef struct smoe_op_cpy_params {
    smoe_type type; /* the result's type (any type with from_f32) */
} smoe_op_cpy_params;

/* ---- the enum and the union, generated from ops.def ---- */

typedef enum smoe_op {
#define SMOE_OP(ENUM, member, n_src, params_type) SMOE_OP_##ENUM,
#include "ops.def"
#undef SMOE_OP
    SMOE_OP_COUNT
} smoe_op;

/* Bump when adding an op, after adding its CPU kernel, its supports_op entries and its tests/test-ops.c cases. */
_Static_assert(SMOE_OP_COUNT == 16, "ops.def changed: update the CPU backend, the scheduler and tests/test-ops.c");

typedef union smoe_op_params {
#define SMOE_OP(ENUM, member, n_src, params_type) params_type member;
#include "ops.def"
#undef SMOE_OP
} smoe_op_params;

/* The most sources any op has (ATTENTION). */
#define SMOE_MAX_SRC 6

/* "MUL_MAT_ID"; "UNKNOWN" for an out-of-range value. */
const char *smoe_op_name(smoe_op op);
/* Number of sources the op reads; -1 for an out-of-range value. */
int smoe_op_n_src(smoe_op op);
/* SMOE_OP_<name> for "MUL_MAT_ID" (case-insensitive), or -1. */
int smoe_op_from_name(const char *name);

#endif /* SMOE_OPS_H */
