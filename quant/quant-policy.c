/*
 * quant-policy.c - the per-tensor type of each file type, on GGUF tensor names.
 *
 * Never quantized (F32 in every file type): 1-D tensors, norms ("*_norm.weight") and the expert router
 * ("ffn_gate_inp.weight": tiny, and its top-2 choice is discontinuous).
 *
 * F32 / F16 / BF16: every matrix in that type.
 *
 * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K_M, Q5_K_M mirror llama-quantize (llama_tensor_get_type) for a Mixtral, as its
 * files show (see /work/shared/data/llamacpp-ref): the output matrix (or token_embd when the model has none) gets
 * Q6_K, or Q8_0 when its rows are not a multiple of 256 or the type is Q8_0; with exactly 8 experts, attn_k and
 * attn_v get Q8_0 ("trades just ~128MB") and, in Q4_K_M, attn_output Q5_K; in the K-mixes, attn_v (other expert
 * counts) and ffn_down get Q6_K on the layers use_more_bits picks: the first and last eighth and every third layer
 * in between.
 *
 * Q4_K, Q5_K, Q6_K: every matrix in that type (llama-quantize --pure); recorded with llama.cpp's numbers for
 * MOSTLY_Q4_K_S / Q5_K_S / Q6_K.
 *
 * AUTO, smoe's MoE-aware mix (as the converter's convert-policy.c): experts (~96% of Mixtral's weights, 2 of 8 read
 * per token) Q4_K; attention q/k/v/output (read for every token) Q8_0; token_embd Q4_K, output Q6_K; the rest F32.
 *
 * Fallback when a type's block does not divide the row length (llama-quantize's): Q4_K -> Q5_0, Q5_K -> Q5_1,
 * Q6_K -> Q8_0; AUTO's experts Q4_K -> Q4_0; and F16 when the block still does not divide it.
 */
#include "quant/quant-policy.h"
#include "quant/quant.h"

#include <stdlib.h>
#include <string.h>

int smoe_quant_layer_of(const char *name) {
    if (!name || strncmp(name, "blk.", 4) != 0) return -1;
    const char *p = name + 4;
    long        v = 0;
    if (*p < '0' || *p > '9') return -1;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        if (v > 1000000) return -1;
    }
    return *p == '.' ? (int)v : -1;
}

static bool ends_with(const char *s, const char *suffix) {
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

bool smoe_quant_tensor_is_matrix(const char *name, uint32_t n_dims) {
    return name && n_dims >= 2 && !ends_with(name, "_norm.weight") && !strstr(name, "ffn_gate_inp.weight");
}

/* The part of "blk.N.<part>" (or the whole name when not per layer). */
static const char *tensor_part(const char *name) {
    if (smoe_quant_layer_of(name) < 0) return name;
    return strchr(name + 4, '.') + 1;
}

/* ffn_gate_exps / ffn_up_exps / ffn_down_exps, or the older one-tensor-per-expert "ffn_gate.E.weight". */
static bool is_expert(const char *part) {
    if (strstr(part, "_exps.")) return true;
    static const char *const ffn[] = {"ffn_gate.", "ffn_up.", "ffn_down."};
    for (size_t i = 0; i < sizeof(ffn) / sizeof(ffn[0]); i++) {
        const size_t n = strlen(ffn[i]);
        if (strncmp(part, ffn[i], n) != 0) continue;
        const char *p = part + n;
        if (*p < '0' || *p > '9') return false;
        while (*p >= '0' && *p <= '9') p++;
        return strcmp(p, ".weight") == 0;
    }
    return false;
}

static bool use_more_bits(int i_layer, int n_layer) {
    if (n_layer <= 0 || i_layer < 0) return false;
    return i_layer < n_layer / 8 || i_layer >= 7 * n_layer / 8 || (i_layer - n_layer / 8) % 3 == 2;
}

static bool divides(smoe_type type, int64_t ne0) {
    const smoe_type_traits *t = smoe_type_get_traits(type);
    return t && ne0 > 0 && ne0 % t->block_size == 0;
}

static smoe_type fallback(smoe_type type, int64_t ne0) {
    if (divides(type, ne0)) return type;
    switch (type) {
    case SMOE_TYPE_Q4_K: type = SMOE_TYPE_Q5_0; break;
    case SMOE_TYPE_Q5_K: type = SMOE_TYPE_Q5_1; break;
    case SMOE_TYPE_Q6_K: type = SMOE_TYPE_Q8_0; break;
    default: break;
    }
    return divides(type, ne0) ? type : SMOE_TYPE_F16;
}

/* The element type that names the file type; F32 for AUTO and unknown values. */
static smoe_type base_type(smoe_ftype ftype) {
    switch (ftype) {
    case SMOE_FTYPE_F16: return SMOE_TYPE_F16;
    case SMOE_FTYPE_BF16: return SMOE_TYPE_BF16;
    case SMOE_FTYPE_Q4_0: return SMOE_TYPE_Q4_0;
    case SMOE_FTYPE_Q4_1: return SMOE_TYPE_Q4_1;
    case SMOE_FTYPE_Q5_0: return SMOE_TYPE_Q5_0;
    case SMOE_FTYPE_Q5_1: return SMOE_TYPE_Q5_1;
    case SMOE_FTYPE_Q8_0: return SMOE_TYPE_Q8_0;
    case SMOE_FTYPE_Q4_K:
    case SMOE_FTYPE_Q4_K_M: return SMOE_TYPE_Q4_K;
    case SMOE_FTYPE_Q5_K:
    case SMOE_FTYPE_Q5_K_M: return SMOE_TYPE_Q5_K;
    case SMOE_FTYPE_Q6_K: return SMOE_TYPE_Q6_K;
    default: return SMOE_TYPE_F32;
    }
}

static smoe_type auto_type(const char *name, const char *part, int64_t ne0) {
    if (is_expert(part)) return divides(SMOE_TYPE_Q4_K, ne0) ? SMOE_TYPE_Q4_K : fallback(SMOE_TYPE_Q4_0, ne0);
    if (!strcmp(part, "attn_q.weight") || !strcmp(part, "attn_k.weight") || !strcmp(part, "attn_v.weight") ||
        !strcmp(part, "attn_output.weight")) {
        return fallback(SMOE_TYPE_Q8_0, ne0);
    }
    if (!strcmp(name, "token_embd.weight")) return fallback(SMOE_TYPE_Q4_K, ne0);
    if (!strcmp(name, "output.weight")) return fallback(SMOE_TYPE_Q6_K, ne0);
    return SMOE_TYPE_F32;
}

/* llama-quantize's choice in a quantized mix, before the fallback. */
static smoe_type mix_type(smoe_ftype ftype, smoe_type base, const char *name, const char *part, int64_t ne0,
                          const smoe_quant_model_info *info) {
    const bool k_mix    = ftype == SMOE_FTYPE_Q4_K_M || ftype == SMOE_FTYPE_Q5_K_M;
    const int  layer    = smoe_quant_layer_of(name);
    const int  n_layer  = info ? info->n_layer : 0;
    const int  n_expert = info ? info->n_expert : 0;
    const bool output   = !strcmp(name, "output.weight") ||
                        ((!info || !info->has_output) && !strcmp(name, "token_embd.weight"));
    if (output) {
        if (ne0 % SMOE_QK_K != 0 || base == SMOE_TYPE_Q8_0) return SMOE_TYPE_Q8_0;
        return SMOE_TYPE_Q6_K;
    }
    if (!strcmp(part, "attn_v.weight")) {
        smoe_type t = base;
        if (k_mix && use_more_bits(layer, n_layer)) t = SMOE_TYPE_Q6_K;
        if (n_expert == 8) t = SMOE_TYPE_Q8_0;
        return t;
    }
    if (!strcmp(part, "attn_k.weight")) return n_expert == 8 ? SMOE_TYPE_Q8_0 : base;
    if (strstr(part, "ffn_down")) return k_mix && use_more_bits(layer, n_layer) ? SMOE_TYPE_Q6_K : base;
    if (!strcmp(part, "attn_output.weight")) {
        return n_expert == 8 && ftype == SMOE_FTYPE_Q4_K_M ? SMOE_TYPE_Q5_K : base;
    }
    return base;
}

smoe_type smoe_quant_choose_type(const char *name, const int64_t *ne, uint32_t n_dims, smoe_ftype ftype,
                                 const smoe_quant_model_info *info) {
    if (!name || !ne || !smoe_quant_tensor_is_matrix(name, n_dims) || ftype == SMOE_FTYPE_F32) return SMOE_TYPE_F32;
    const int64_t   ne0  = ne[0];
    const char     *part = tensor_part(name);
    const smoe_type base = base_type(ftype);
    switch (ftype) {
    case SMOE_FTYPE_AUTO: return auto_type(name, part, ne0);
    case SMOE_FTYPE_F16:
    case SMOE_FTYPE_BF16: return divides(base, ne0) ? base : SMOE_TYPE_F32;
    case SMOE_FTYPE_Q4_K:
    case SMOE_FTYPE_Q5_K:
    case SMOE_FTYPE_Q6_K: return fallback(base, ne0);
    case SMOE_FTYPE_Q4_0:
    case SMOE_FTYPE_Q4_1:
    case SMOE_FTYPE_Q5_0:
    case SMOE_FTYPE_Q5_1:
    case SMOE_FTYPE_Q8_0:
    case SMOE_FTYPE_Q4_K_M:
    case SMOE_FTYPE_Q5_K_M: return fallback(mix_type(ftype, base, name, part, ne0, info), ne0);
    default: return SMOE_TYPE_F32;
    }
}
