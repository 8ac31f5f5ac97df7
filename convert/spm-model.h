/*
 * spm-model.h - reader of SentencePiece model files (`tokenizer.model`, a serialized protobuf ModelProto).
 *
 * Produces the vocabulary as SentencePiece itself sees it: pieces, scores and types in id order (types numbered as
 * GGUF's tokenizer.ggml.token_type), the special ids as SentencePieceProcessor reports them (bos_id() is the id of
 * trainer_spec.bos_piece if that piece is a CONTROL piece, else -1; likewise eos/pad; unk is the UNKNOWN piece), and
 * the normalizer settings that change behaviour. The model is validated as SentencePiece validates it on load
 * (non-empty unique pieces, exactly one UNKNOWN piece, byte pieces only with byte_fallback and then all 256), and
 * what smoe's tokenizer does not implement is rejected with SMOE_ERR_UNSUPPORTED: model types other than BPE, a
 * normalizer or denormalizer with a precompiled charsmap (e.g. nmt_nfkc), escape_whitespaces = false,
 * treat_whitespace_as_suffix = true.
 */
#ifndef SMOE_SPM_MODEL_H
#define SMOE_SPM_MODEL_H

#include "core/status.h"
#include "core/tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct smoe_spm_vocab {
    int32_t   n_vocab;
    char    **pieces;     /* NUL-terminated UTF-8 */
    uint64_t *piece_lens; /* byte lengths */
    float    *scores;
    int32_t  *types; /* SMOE_TOK_*: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte */
    int32_t   bos_id, eos_id, pad_id; /* -1 if none */
    int32_t   unk_id;
    /* normalizer_spec / trainer_spec settings */
    bool add_dummy_prefix;         /* -> GGUF tokenizer.ggml.add_space_prefix */
    bool remove_extra_whitespaces; /* -> GGUF tokenizer.ggml.remove_extra_whitespaces */
    bool byte_fallback;
} smoe_spm_vocab;

/* Reads and validates a model file. SMOE_ERR_IO if it cannot be read, SMOE_ERR_CORRUPT_FILE if the protobuf is
 * malformed or the model inconsistent, SMOE_ERR_UNSUPPORTED as above. Messages start with the path. */
smoe_status smoe_spm_load(const char *path, smoe_spm_vocab **out);
/* The same from memory (tests, fuzzing). */
smoe_status smoe_spm_parse(const void *data, size_t size, smoe_spm_vocab **out);
void        smoe_spm_free(smoe_spm_vocab *v);

/* A tokenizer for the vocabulary (add_bos on, add_eos off, as SentencePiece-based Mistral models use it). */
smoe_status smoe_spm_to_tokenizer(const smoe_spm_vocab *v, smoe_tokenizer **out);

#endif /* SMOE_SPM_MODEL_H */
