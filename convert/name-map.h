/*
 * name-map.h - Hugging Face Mixtral -> GGUF: tensor names, shapes and layout, and the metadata, exactly as
 * llama.cpp's convert_hf_to_gguf.py writes a Mixtral (architecture "llama", experts merged into 3-D tensors).
 *
 *   model.embed_tokens.weight                          [n_vocab, n_embd]  -> token_embd.weight
 *   model.layers.N.input_layernorm.weight              [n_embd]           -> blk.N.attn_norm.weight
 *   model.layers.N.self_attn.{q,k,v,o}_proj.weight                        -> blk.N.attn_{q,k,v,output}.weight
 *   model.layers.N.post_attention_layernorm.weight                        -> blk.N.ffn_norm.weight
 *   model.layers.N.block_sparse_moe.gate.weight        [n_expert, n_embd] -> blk.N.ffn_gate_inp.weight
 *   model.layers.N.block_sparse_moe.experts.E.w1.weight [n_ff, n_embd]    -> blk.N.ffn_gate_exps.weight [E]
 *                                             ... .w2.weight [n_embd, n_ff] -> blk.N.ffn_down_exps.weight [E]
 *                                             ... .w3.weight [n_ff, n_embd] -> blk.N.ffn_up_exps.weight [E]
 *   model.norm.weight                                                     -> output_norm.weight
 *   lm_head.weight                                     [n_vocab, n_embd]  -> output.weight
 *
 * GGUF lists dimensions fastest first: an HF [out, in] matrix is ne = {in, out}; a merged expert tensor is
 * ne = {in, out, n_expert}. The bytes of a row are unchanged; q_proj and k_proj rows are reordered for llama.cpp's
 * RoPE layout (see smoe_name_map_permuted_row).
 */
#ifndef SMOE_CONVERT_NAME_MAP_H
#define SMOE_CONVERT_NAME_MAP_H

#include "core/gguf.h"
#include "core/status.h"
#include "hf-config.h"
#include "safetensors.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum smoe_conv_class {
    SMOE_CONV_TOKEN_EMBD,
    SMOE_CONV_ATTN_NORM,
    SMOE_CONV_ATTN_Q,
    SMOE_CONV_ATTN_K,
    SMOE_CONV_ATTN_V,
    SMOE_CONV_ATTN_OUTPUT,
    SMOE_CONV_FFN_NORM,
    SMOE_CONV_FFN_GATE_INP,
    SMOE_CONV_FFN_GATE_EXPS,
    SMOE_CONV_FFN_DOWN_EXPS,
    SMOE_CONV_FFN_UP_EXPS,
    SMOE_CONV_OUTPUT_NORM,
    SMOE_CONV_OUTPUT,
    SMOE_CONV_CLASS_COUNT,
} smoe_conv_class;

/* A short name of the class for reports: "token_embd", "attn_q", "ffn_gate_exps", ... */
const char *smoe_conv_class_name(smoe_conv_class c);

#define SMOE_CONV_NAME_MAX 64

/* One tensor of the output file and where its rows come from. */
typedef struct smoe_conv_tensor {
    char                   name[SMOE_CONV_NAME_MAX]; /* GGUF name */
    smoe_conv_class        cls;
    int32_t                layer; /* -1 outside the blocks */
    uint32_t               n_dims;
    int64_t                ne[SMOE_GGUF_MAX_DIMS]; /* ne[0]: row length; unused dims 1 */
    const smoe_st_tensor **src;   /* n_src sources: 1, or one per expert (ne[2] == n_src) */
    uint32_t               n_src;
    uint32_t               permute_heads; /* 0, or the head count of the Q/K row permutation */
    smoe_type              type;          /* output type, chosen by the converter */
} smoe_conv_tensor;

typedef struct smoe_conv_plan {
    smoe_conv_tensor      *t;
    int64_t                n;
    const smoe_st_tensor **src_storage;
    uint64_t               n_params;        /* all elements */
    uint64_t               n_expert_params; /* elements of the merged expert tensors */
} smoe_conv_plan;

/* Builds the list of output tensors in file order (token_embd, blk.0.*, ..., output_norm, output) from the
 * checkpoint, checking that every tensor the config implies is there with the shape the config implies and a
 * dtype smoe converts (F32, F16, BF16): SMOE_ERR_CORRUPT_FILE "tensor X: shape [..] does not match config.json
 * (expected [..])" / "tensor X is missing", SMOE_ERR_UNSUPPORTED for another dtype. Tensors that map to nothing
 * are logged (warning) and skipped. Types are left at F32. */
smoe_status smoe_name_map_plan(const smoe_hf_config *c, const smoe_st_set *s, const smoe_logger *log,
                               smoe_conv_plan **out);
void        smoe_name_map_plan_free(smoe_conv_plan *p);

/* The GGUF name of an HF tensor name, as above; for an expert weight *expert gets its index (else -1).
 * Returns false for names that are not part of a Mixtral. */
bool smoe_name_map_hf_to_gguf(const char *hf_name, char *out, size_t size, int *expert);

/* The source row of output row r of a permuted Q/K matrix with n_rows rows in n_heads heads. llama.cpp's
 * convert_hf_to_gguf.py (LlamaModel.permute) reshapes the rows as [n_heads, 2, head_dim / 2] and swaps the last two
 * axes: the two halves of each head (HF's rotate_half layout) become interleaved pairs (GGML's RoPE layout). */
static inline int64_t smoe_name_map_permuted_row(int64_t r, int64_t n_rows, int64_t n_heads) {
    const int64_t hd = n_rows / n_heads, h = r / hd, i = (r % hd) / 2, j = r % 2;
    return h * hd + j * (hd / 2) + i;
}

/* llama.cpp's LlamaFileType number for general.file_type. */
enum {
    SMOE_FILE_TYPE_ALL_F32   = 0,
    SMOE_FILE_TYPE_F16       = 1,
    SMOE_FILE_TYPE_Q4_0      = 2,
    SMOE_FILE_TYPE_Q8_0      = 7,
    SMOE_FILE_TYPE_Q4_K_M    = 15,
    SMOE_FILE_TYPE_Q5_K_M    = 17,
    SMOE_FILE_TYPE_BF16      = 32,
};

/* The parameter-count label llama.cpp writes as general.size_label: "8x7.2B" (experts x (shared + one expert)). */
void smoe_name_map_size_label(const smoe_conv_plan *p, uint32_t n_expert, char *out, size_t size);

/* Writes general.*, llama.* and tokenizer.* metadata (tokenizer.model is read from hf_dir). */
smoe_status smoe_name_map_write_metadata(smoe_gguf_writer *w, const smoe_hf_config *c, const smoe_conv_plan *p,
                                         uint32_t file_type, const char *hf_dir, const smoe_logger *log);

#endif /* SMOE_CONVERT_NAME_MAP_H */
