/*
 * hf-config.h - the JSON files of a Hugging Face Mixtral checkpoint: config.json (hyper-parameters),
 * tokenizer_config.json (chat template, add_bos/add_eos, special tokens and added_tokens_decoder), tokenizer.json
 * (only its added_tokens), added_tokens.json and generation_config.json (all optional but config.json).
 *
 * Missing hyper-parameters with a MixtralConfig default in transformers take that default (rope_theta 1e6,
 * rms_norm_eps 1e-5, max_position_embeddings 131072, num_key_value_heads = num_attention_heads); the shape
 * parameters are required. Anything that is not a Mixtral (architectures / model_type) is SMOE_ERR_UNSUPPORTED.
 */
#ifndef SMOE_CONVERT_HF_CONFIG_H
#define SMOE_CONVERT_HF_CONFIG_H

#include "core/status.h"

#include <stdbool.h>
#include <stdint.h>

/* Special token kinds, in the order llama.cpp's converter looks them up (gguf-py SpecialVocab). */
typedef enum smoe_hf_special {
    SMOE_HF_BOS,
    SMOE_HF_EOS,
    SMOE_HF_UNK,
    SMOE_HF_SEP,
    SMOE_HF_PAD,
    SMOE_HF_CLS,
    SMOE_HF_MASK,
    SMOE_HF_SPECIAL_COUNT,
} smoe_hf_special;

const char *smoe_hf_special_name(smoe_hf_special s); /* "bos", "eos", "unk", ... */

typedef struct smoe_hf_added_token {
    int64_t id;
    char   *content;
    bool    special;
} smoe_hf_added_token;

typedef struct smoe_hf_config {
    char *architecture; /* "MixtralForCausalLM" */
    char *name;         /* general.name: the folder's name as a title ("tiny-seed7-f32" -> "Tiny Seed7 F32") */

    uint32_t n_vocab;
    uint32_t n_embd;
    uint32_t n_ff; /* per expert */
    uint32_t n_layer;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t n_expert;
    uint32_t n_expert_used;
    uint32_t n_ctx_train;
    uint32_t head_dim; /* n_embd / n_head */
    float    rope_theta;
    float    rms_eps;
    bool     tie_word_embeddings;

    /* tokenizer_config.json */
    char *chat_template;                            /* NULL if none */
    int   add_special[SMOE_HF_SPECIAL_COUNT];       /* add_<x>_token: 1/0, -1 if not given */
    char *special_content[SMOE_HF_SPECIAL_COUNT];   /* <x>_token content, NULL if not given */
    /* Special token ids as llama.cpp resolves them: the content above looked up in tokenizer.json's added_tokens,
     * else config.json's <x>_token_id (else generation_config.json's, for bos/eos). -1 if unknown. Ids are not
     * range-checked here (the vocabulary size is known later). */
    int64_t special_id[SMOE_HF_SPECIAL_COUNT];

    /* added_tokens_decoder of tokenizer_config.json, then added_tokens.json (special = false), in file order */
    smoe_hf_added_token *added_decoder;
    int64_t              n_added_decoder;
    smoe_hf_added_token *added_json;
    int64_t              n_added_json;
} smoe_hf_config;

/* Reads the JSON files in `dir`. SMOE_ERR_IO if config.json cannot be read, SMOE_ERR_CORRUPT_FILE for malformed
 * JSON or missing/invalid hyper-parameters (the message names the file and key), SMOE_ERR_UNSUPPORTED for another
 * architecture ("unknown architecture X") or features smoe does not convert (rope_scaling, head_dim != n_embd/n_head).
 * On success the caller frees *out with smoe_hf_config_free. */
smoe_status smoe_hf_config_load(const char *dir, smoe_hf_config **out);
void        smoe_hf_config_free(smoe_hf_config *c);

/* Python's str.title()-like name used by llama.cpp for a folder name: '-' becomes ' ', all-lowercase words that do
 * not start with a digit or look like a version (v1, v0.2) get their letter runs capitalized. Writes at most size
 * bytes (NUL-terminated). */
void smoe_hf_id_to_title(const char *id, char *out, size_t size);

#endif /* SMOE_CONVERT_HF_CONFIG_H */
