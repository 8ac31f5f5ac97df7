/*
 * quant-policy.h - which element type each tensor of a Mixtral (llama-architecture) GGUF gets for a file type.
 * Shared by `smoe quantize` (convert/quantize.c) and usable by the converter: it works on GGUF tensor names
 * ("blk.3.ffn_down_exps.weight", "output.weight", ...).
 */
#ifndef SMOE_QUANT_POLICY_H
#define SMOE_QUANT_POLICY_H

#include "core/types.h"
#include "smoe.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct smoe_quant_model_info {
    int32_t n_layer;    /* blocks ({arch}.block_count); <= 0: layer-dependent rules treat every layer alike */
    int32_t n_expert;   /* experts per layer ({arch}.expert_count); 0 for a dense model                     */
    bool    has_output; /* false: no output.weight, token_embd doubles as the output matrix (tied)          */
} smoe_quant_model_info;

/* True for the tensors a quantized file type may quantize (as llama-quantize): 2-D and 3-D matrices other than
 * the norms ("*_norm.weight") and the expert router ("ffn_gate_inp.weight"). */
bool smoe_quant_tensor_is_matrix(const char *name, uint32_t n_dims);

/* The element type of tensor `name` (n_dims dimensions ne[0..n_dims-1], ne[0] the row length) in a file of type
 * `ftype`. Matrices follow the mix (see quant-policy.c); everything else is F32. The result always divides the
 * row length: a K-quant that would not falls back as llama-quantize does (Q4_K -> Q5_0, Q5_K -> Q5_1,
 * Q6_K -> Q8_0), and a type whose block still does not divide it falls back to F16. */
smoe_type smoe_quant_choose_type(const char *name, const int64_t *ne, uint32_t n_dims, smoe_ftype ftype,
                                 const smoe_quant_model_info *info);

/* The layer index in "blk.N.*", or -1. */
int smoe_quant_layer_of(const char *name);

#endif /* SMOE_QUANT_POLICY_H */
