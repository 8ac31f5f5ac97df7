/*
 * tokenizer.h - internal interface of the SentencePiece BPE tokenizer (core/tokenizer.c), the streaming
 * detokenizer (core/detokenizer.c) and the chat encoder (core/chat.c).
 *
 * A tokenizer is immutable after construction and may be shared between threads; every encode call uses its own
 * scratch memory. It owns copies of all pieces, so the vocabulary source (GGUF reader, arrays) can be freed.
 *
 * The algorithm replicates sentencepiece (BPE model, identity normalizer) exactly:
 * - normalization: optional removal of leading/trailing/repeated spaces (remove_extra_whitespaces), a dummy U+2581
 *   prefix (add_dummy_prefix), each ' ' replaced by U+2581; nothing else (no NFKC: models whose normalizer has a
 *   precompiled charsmap are rejected by the loaders);
 * - the normalized text is split into characters (a user-defined piece, longest match, is one frozen symbol), then
 *   adjacent symbols are merged while a merge exists, always the pair whose merged piece has the highest score,
 *   ties to the leftmost pair; UNUSED pieces are split back into the pair they were merged from;
 * - a symbol that is not a piece is the unknown token, or with byte fallback one <0xNN> token per UTF-8 byte;
 *   without byte fallback a run of unknown symbols becomes one unknown token.
 * Known difference: sentencepiece's normalizer also matches user-defined pieces, so with remove_extra_whitespaces a
 * run of spaces inside a user-defined piece is kept there; here it is collapsed (no such piece in Mistral's models).
 */
#ifndef SMOE_TOKENIZER_H
#define SMOE_TOKENIZER_H

#include "gguf.h"
#include "status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Token types: SentencePiece's ModelProto.SentencePiece.Type numbering, which is also GGUF's
 * tokenizer.ggml.token_type numbering (and smoe_token_type in smoe.h). */
enum {
    SMOE_TOK_NORMAL       = 1,
    SMOE_TOK_UNKNOWN      = 2,
    SMOE_TOK_CONTROL      = 3,
    SMOE_TOK_USER_DEFINED = 4,
    SMOE_TOK_UNUSED       = 5,
    SMOE_TOK_BYTE         = 6,
};

/* Sanity limits on vocabularies read from files. */
#define SMOE_TOKENIZER_MAX_VOCAB     (1 << 24)
#define SMOE_TOKENIZER_MAX_PIECE_LEN 4096
/* Longest text one encode call accepts (the normalized text triples in the worst case). */
#define SMOE_TOKENIZER_MAX_TEXT ((size_t)1 << 29)

/* A vocabulary given as arrays (borrowed for the duration of smoe_tokenizer_create). */
typedef struct smoe_vocab_desc {
    int64_t             n_vocab;
    const char *const  *pieces;     /* UTF-8 strings */
    const uint64_t     *piece_lens; /* byte lengths; NULL: the pieces are NUL-terminated */
    const float        *scores;     /* NULL: all 0 */
    const int32_t      *types;      /* SMOE_TOK_*; 0 is taken as NORMAL */
    int32_t             bos_id, eos_id; /* -1: none */
    int32_t             unk_id;         /* an UNKNOWN piece (a CONTROL one is retyped UNKNOWN, as llama.cpp types <unk>) */
    bool                add_bos, add_eos;       /* the model's defaults (smoe_tokenizer_default_flags) */
    bool                add_dummy_prefix;       /* SentencePiece normalizer_spec; GGUF add_space_prefix */
    bool                remove_extra_whitespaces;
    bool                byte_fallback;          /* requires <0x00>..<0xFF> BYTE pieces */
    const char         *chat_template;          /* copied; NULL if none */
} smoe_vocab_desc;

/* One piece-table slot: a string and the ids it maps to in SentencePiece's two maps. */
typedef struct smoe_tok_entry {
    uint64_t hash;
    int32_t  normal_id;   /* NORMAL, USER_DEFINED or UNUSED piece with this string, -1 if none */
    int32_t  reserved_id; /* CONTROL, UNKNOWN or BYTE piece with this string, -1 if none */
    bool     user_defined; /* some USER_DEFINED piece has this string */
} smoe_tok_entry;

struct smoe_tokenizer {
    int32_t   n_vocab;
    char    **pieces; /* NUL-terminated copies (into `piece_data`) */
    uint32_t *piece_lens;
    float    *scores;
    uint8_t  *types;
    char     *piece_data;

    int32_t bos_id, eos_id, unk_id;
    bool    add_bos, add_eos, add_dummy_prefix, remove_extra_whitespaces, byte_fallback;
    int32_t byte_ids[256]; /* id of <0xNN> as SentencePiece's PieceToId finds it (unk if absent) */

    /* open-addressing hash table of distinct piece strings */
    smoe_tok_entry *table;
    uint64_t        table_mask;

    /* user-defined pieces: matched longest-first while splitting into symbols */
    uint32_t max_user_len;
    uint32_t max_normal_len; /* longest NORMAL/USER_DEFINED/UNUSED piece: no merge makes a longer one */
    uint8_t  user_first[32]; /* bitmap of first bytes */

    /* special tokens for SMOE_TOKENIZE_PARSE_SPECIAL: CONTROL and UNKNOWN pieces */
    uint8_t   special_first[32];
    uint32_t *special_lens; /* distinct lengths, longest first */
    uint32_t  n_special_lens;

    /* merges never cross the start of a U+2581 that follows another character: encode word by word */
    bool split_words;

    char *chat_template; /* tokenizer.chat_template, NULL if none */
};

/* A growable array of token ids. */
typedef struct smoe_token_vec {
    int32_t *data;
    size_t   n, cap;
} smoe_token_vec;

smoe_status smoe_token_vec_push(smoe_token_vec *v, int32_t id);
void        smoe_token_vec_free(smoe_token_vec *v);

/* Builds a tokenizer from arrays. SMOE_ERR_CORRUPT_FILE when the vocabulary is inconsistent (the message names
 * the token), SMOE_ERR_UNSUPPORTED for what is not implemented. */
smoe_status smoe_tokenizer_create(const smoe_vocab_desc *desc, smoe_tokenizer **out);
/* Builds a tokenizer from the tokenizer.ggml.* keys of a GGUF file (model "llama" = SentencePiece). */
smoe_status smoe_tokenizer_from_gguf(const smoe_gguf *g, smoe_tokenizer **out);

/* Appends the ids of `text` (any length, must be valid UTF-8: SMOE_ERR_INVALID_TEXT otherwise) to `out`.
 * flags: SMOE_TOKENIZE_*. */
smoe_status smoe_tokenizer_encode(const smoe_tokenizer *tok, const char *text, size_t len, uint32_t flags,
                                  smoe_token_vec *out);

/* Length of the longest valid UTF-8 prefix of s (strict: no overlongs, surrogates or code points > U+10FFFF). */
size_t smoe_utf8_valid_prefix(const char *s, size_t len);

#endif /* SMOE_TOKENIZER_H */
