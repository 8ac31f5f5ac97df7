/*
 * tokenizer.c - SentencePiece BPE encoding (see tokenizer.h for the algorithm and its invariants), construction from
 * arrays or GGUF keys, and the tokenize part of the public API.
 *
 * Complexity: O(n log n) in the text length. Merges run on a heap of adjacent symbol pairs with lazy
 * deletion (a popped pair whose two symbols changed since it was pushed is skipped), as sentencepiece does. When no
 * piece can span "<char>U+2581" (true for Mixtral's vocabulary, checked at load) the text is cut into words before
 * each such U+2581 and each word is merged on its own, which gives the same result with small heaps.
 */
#include "tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char k_space[] = "\xE2\x96\x81"; /* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's space */
#define K_SPACE_LEN 3

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 character at s (RFC 3629: no overlongs, no surrogates, <= U+10FFFF), 0 if invalid. */
static size_t utf8_char_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

size_t smoe_utf8_valid_prefix(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t               i = 0;
    while (i < len) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = utf8_char_len(u + i, len - i);
        if (l == 0) break;
        i += l;
    }
    return i;
}

/* Byte length of the character starting at s from its lead byte (as sentencepiece's OneCharLen), clamped to n.
 * Only used on validated text; robust (never 0, never past n) for pieces that are not. */
static size_t char_len(const char *s, size_t n) {
    unsigned c = (unsigned char)s[0];
    size_t   l = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    return l < n ? l : n;
}

/* ---- token vectors ---- */

smoe_status smoe_token_vec_push(smoe_token_vec *v, int32_t id) {
    if (v->n == v->cap) {
        size_t   cap  = v->cap ? v->cap * 2 : 64;
        int32_t *data = realloc(v->data, cap * sizeof(*data));
        SMOE_RETURN_IF(!data, SMOE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory for %zu token ids", cap);
        v->data = data;
        v->cap  = cap;
    }
    v->data[v->n++] = id;
    return SMOE_OK;
}

void smoe_token_vec_free(smoe_token_vec *v) {
    free(v->data);
    v->data = NULL;
    v->n = v->cap = 0;
}

/* ---- piece table ---- */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static bool entry_used(const smoe_tok_entry *e) { return e->normal_id >= 0 || e->reserved_id >= 0; }

static int32_t entry_any_id(const smoe_tok_entry *e) { return e->normal_id >= 0 ? e->normal_id : e->reserved_id; }

/* The slot holding s, or the empty slot where it would go. */
static smoe_tok_entry *table_slot(const smoe_tokenizer *t, const char *s, size_t n, uint64_t h) {
    for (uint64_t i = h & t->table_mask;; i = (i + 1) & t->table_mask) {
        smoe_tok_entry *e = &t->table[i];
        if (!entry_used(e)) return e;
        int32_t id = entry_any_id(e);
        if (e->hash == h && t->piece_lens[id] == n && memcmp(t->pieces[id], s, n) == 0) return e;
    }
}

static const smoe_tok_entry *table_find(const smoe_tokenizer *t, const char *s, size_t n) {
    const smoe_tok_entry *e = table_slot(t, s, n, hash_bytes(s, n));
    return entry_used(e) ? e : NULL;
}

/* SentencePiece's PieceToId: the reserved map first, then the normal one, else the unknown id. */
static int32_t piece_to_id(const smoe_tokenizer *t, const char *s, size_t n) {
    const smoe_tok_entry *e = table_find(t, s, n);
    if (!e) return t->unk_id;
    return e->reserved_id >= 0 ? e->reserved_id : e->normal_id;
}

static bool is_normal_class(int type) {
    return type == SMOE_TOK_NORMAL || type == SMOE_TOK_USER_DEFINED || type == SMOE_TOK_UNUSED;
}

static void bitmap_set(uint8_t *b, unsigned char c) { b[c >> 3] |= (uint8_t)(1u << (c & 7)); }
static bool bitmap_has(const uint8_t *b, unsigned char c) { return (b[c >> 3] >> (c & 7)) & 1; }

/* "<0xNN>" (uppercase hex, as SentencePiece writes byte pieces) -> NN, else -1. */
static int parse_byte_piece(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int  d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Does a piece contain U+2581 right after another character? Then merges can cross word starts. */
static bool has_inner_space(const char *p, size_t n) {
    for (size_t o = 1; o + K_SPACE_LEN <= n; o++) {
        if (memcmp(p + o, k_space, K_SPACE_LEN) != 0) continue;
        if (o < K_SPACE_LEN || memcmp(p + o - K_SPACE_LEN, k_space, K_SPACE_LEN) != 0) return true;
    }
    return false;
}

/* ---- construction ---- */

void smoe_tokenizer_free(smoe_tokenizer *tok) {
    if (!tok) return;
    free(tok->pieces);
    free(tok->piece_lens);
    free(tok->scores);
    free(tok->types);
    free(tok->piece_data);
    free(tok->table);
    free(tok->special_lens);
    free(tok->chat_template);
    free(tok);
}

static const char *piece_for_msg(const smoe_vocab_desc *d, int64_t i, uint64_t len, char *buf, size_t cap) {
    size_t n = len < cap - 1 ? (size_t)len : cap - 1;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)d->pieces[i][k];
        buf[k]          = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
    }
    buf[n] = '\0';
    return buf;
}

smoe_status smoe_tokenizer_create(const smoe_vocab_desc *d, smoe_tokenizer **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "smoe_tokenizer_create: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!d || !d->pieces, SMOE_ERR_INVALID_ARGUMENT, "smoe_tokenizer_create: no vocabulary");
    SMOE_RETURN_IF(d->n_vocab <= 0 || d->n_vocab > SMOE_TOKENIZER_MAX_VOCAB, SMOE_ERR_CORRUPT_FILE,
                   "tokenizer: vocabulary of %" PRId64 " tokens (expected 1..%d)", d->n_vocab,
                   SMOE_TOKENIZER_MAX_VOCAB);
    const int32_t n = (int32_t)d->n_vocab;
    char          msg[64];
    smoe_status   st = SMOE_OK;

    smoe_tokenizer *t = calloc(1, sizeof(*t));
    SMOE_RETURN_IF(!t, SMOE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    t->n_vocab                  = n;
    t->bos_id                   = d->bos_id;
    t->eos_id                   = d->eos_id;
    t->unk_id                   = d->unk_id;
    t->add_bos                  = d->add_bos;
    t->add_eos                  = d->add_eos;
    t->add_dummy_prefix         = d->add_dummy_prefix;
    t->remove_extra_whitespaces = d->remove_extra_whitespaces;
    t->byte_fallback            = d->byte_fallback;

    t->pieces     = calloc((size_t)n, sizeof(*t->pieces));
    t->piece_lens = calloc((size_t)n, sizeof(*t->piece_lens));
    t->scores     = calloc((size_t)n, sizeof(*t->scores));
    t->types      = calloc((size_t)n, sizeof(*t->types));
    SMOE_GOTO_IF(!t->pieces || !t->piece_lens || !t->scores || !t->types, st, fail, SMOE_ERR_OUT_OF_MEMORY,
                 "tokenizer: out of memory for %d tokens", n);

    /* copy the pieces (total size checked against overflow) */
    uint64_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        SMOE_GOTO_IF(!d->pieces[i], st, fail, SMOE_ERR_CORRUPT_FILE, "tokenizer: token %d has no piece", i);
        uint64_t len = d->piece_lens ? d->piece_lens[i] : strlen(d->pieces[i]);
        SMOE_GOTO_IF(len > SMOE_TOKENIZER_MAX_PIECE_LEN, st, fail, SMOE_ERR_CORRUPT_FILE,
                     "tokenizer: token %d: piece of %" PRIu64 " bytes (limit %d)", i, len,
                     SMOE_TOKENIZER_MAX_PIECE_LEN);
        t->piece_lens[i] = (uint32_t)len;
        total += len + 1; /* bounded: n * (limit + 1) fits easily in 64 bits */
    }
    SMOE_GOTO_IF(total > SIZE_MAX, st, fail, SMOE_ERR_OUT_OF_MEMORY, "tokenizer: pieces too large");
    t->piece_data = malloc((size_t)total);
    SMOE_GOTO_IF(!t->piece_data, st, fail, SMOE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory for pieces");
    char *p = t->piece_data;
    for (int32_t i = 0; i < n; i++) {
        memcpy(p, d->pieces[i], t->piece_lens[i]);
        p[t->piece_lens[i]] = '\0';
        t->pieces[i]        = p;
        p += t->piece_lens[i] + 1;
    }

    /* types and scores */
    bool has_unused = false;
    for (int32_t i = 0; i < n; i++) {
        int32_t ty = d->types ? d->types[i] : SMOE_TOK_NORMAL;
        if (ty == 0) ty = SMOE_TOK_NORMAL; /* llama.cpp's "undefined" */
        SMOE_GOTO_IF(ty < SMOE_TOK_NORMAL || ty > SMOE_TOK_BYTE, st, fail, SMOE_ERR_CORRUPT_FILE,
                     "tokenizer: token %d '%s': invalid token type %d", i,
                     piece_for_msg(d, i, t->piece_lens[i], msg, sizeof(msg)), ty);
        t->types[i] = (uint8_t)ty;
        float sc    = d->scores ? d->scores[i] : 0.0f;
        SMOE_GOTO_IF(isnan(sc), st, fail, SMOE_ERR_CORRUPT_FILE, "tokenizer: token %d '%s': score is NaN", i,
                     piece_for_msg(d, i, t->piece_lens[i], msg, sizeof(msg)));
        t->scores[i] = sc;
        if (ty == SMOE_TOK_UNUSED) has_unused = true;
        if (ty == SMOE_TOK_BYTE) {
            SMOE_GOTO_IF(parse_byte_piece(t->pieces[i], t->piece_lens[i]) < 0, st, fail, SMOE_ERR_CORRUPT_FILE,
                         "tokenizer: byte token %d has piece '%s' (expected <0xNN>)", i,
                         piece_for_msg(d, i, t->piece_lens[i], msg, sizeof(msg)));
        }
    }
    SMOE_GOTO_IF(t->unk_id < 0 || t->unk_id >= n, st, fail, SMOE_ERR_CORRUPT_FILE,
                 "tokenizer: unknown token id %d out of range [0, %d)", t->unk_id, n);
    /* llama.cpp's converter marks <unk> CONTROL (from tokenizer_config.json's special tokens); SentencePiece's view
     * of the same model, which decoding and byte fallback follow, has it UNKNOWN */
    if (t->types[t->unk_id] == SMOE_TOK_CONTROL) t->types[t->unk_id] = SMOE_TOK_UNKNOWN;
    SMOE_GOTO_IF(t->types[t->unk_id] != SMOE_TOK_UNKNOWN, st, fail, SMOE_ERR_CORRUPT_FILE,
                 "tokenizer: unknown token id %d ('%s') is not of type UNKNOWN (2) but %d", t->unk_id,
                 t->pieces[t->unk_id], t->types[t->unk_id]);
    SMOE_GOTO_IF(t->bos_id < -1 || t->bos_id >= n, st, fail, SMOE_ERR_CORRUPT_FILE,
                 "tokenizer: BOS id %d out of range [0, %d)", t->bos_id, n);
    SMOE_GOTO_IF(t->eos_id < -1 || t->eos_id >= n, st, fail, SMOE_ERR_CORRUPT_FILE,
                 "tokenizer: EOS id %d out of range [0, %d)", t->eos_id, n);

    /* hash table of distinct strings, at most half full */
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2) cap *= 2;
    t->table = malloc(cap * sizeof(*t->table));
    SMOE_GOTO_IF(!t->table, st, fail, SMOE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory for the piece table");
    for (uint64_t i = 0; i < cap; i++) t->table[i] = (smoe_tok_entry){0, -1, -1, false};
    t->table_mask = cap - 1;

    /* which lengths special pieces have (a piece is at most SMOE_TOKENIZER_MAX_PIECE_LEN bytes) */
    bool *special_len = calloc(SMOE_TOKENIZER_MAX_PIECE_LEN + 1, sizeof(*special_len));
    SMOE_GOTO_IF(!special_len, st, fail, SMOE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    uint32_t n_lens = 0;
    for (int32_t i = 0; i < n; i++) {
        const char *s   = t->pieces[i];
        uint32_t    len = t->piece_lens[i];
        if (len == 0) continue; /* can never match (sentencepiece refuses such models) */
        uint64_t        h = hash_bytes(s, len);
        smoe_tok_entry *e = table_slot(t, s, len, h);
        e->hash           = h;
        /* the first of duplicate pieces wins (sentencepiece refuses duplicates) */
        if (is_normal_class(t->types[i])) {
            if (e->normal_id < 0) e->normal_id = i;
            if (len > t->max_normal_len) t->max_normal_len = len;
        } else if (e->reserved_id < 0) {
            e->reserved_id = i;
        }
        if (t->types[i] == SMOE_TOK_USER_DEFINED) {
            e->user_defined = true;
            if (len > t->max_user_len) t->max_user_len = len;
            bitmap_set(t->user_first, (unsigned char)s[0]);
        }
        if ((t->types[i] == SMOE_TOK_CONTROL || t->types[i] == SMOE_TOK_UNKNOWN) &&
            smoe_utf8_valid_prefix(s, len) == len) {
            n_lens += !special_len[len];
            special_len[len] = true;
            bitmap_set(t->special_first, (unsigned char)s[0]);
        }
    }
    if (n_lens) {
        t->special_lens = malloc(n_lens * sizeof(*t->special_lens));
        if (!t->special_lens) free(special_len);
        SMOE_GOTO_IF(!t->special_lens, st, fail, SMOE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        /* longest first: the longest special piece at a position wins */
        for (uint32_t len = SMOE_TOKENIZER_MAX_PIECE_LEN; len > 0; len--)
            if (special_len[len]) t->special_lens[t->n_special_lens++] = len;
    }
    free(special_len);

    for (int b = 0; b < 256; b++) {
        char bp[8];
        bp[0] = '<', bp[1] = '0', bp[2] = 'x', bp[3] = "0123456789ABCDEF"[b >> 4];
        bp[4] = "0123456789ABCDEF"[b & 15], bp[5] = '>', bp[6] = '\0';
        t->byte_ids[b] = piece_to_id(t, bp, 6);
    }

    t->split_words = !has_unused;
    for (int32_t i = 0; i < n && t->split_words; i++) {
        if (is_normal_class(t->types[i]) && has_inner_space(t->pieces[i], t->piece_lens[i])) t->split_words = false;
    }

    if (d->chat_template) {
        t->chat_template = strdup(d->chat_template);
        SMOE_GOTO_IF(!t->chat_template, st, fail, SMOE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    }
    *out = t;
    return SMOE_OK;

fail:
    smoe_tokenizer_free(t);
    return st;
}

/* ---- GGUF ---- */

#define KEY_MODEL     "tokenizer.ggml.model"
#define KEY_TOKENS    "tokenizer.ggml.tokens"
#define KEY_SCORES    "tokenizer.ggml.scores"
#define KEY_TYPES     "tokenizer.ggml.token_type"
#define KEY_BOS       "tokenizer.ggml.bos_token_id"
#define KEY_EOS       "tokenizer.ggml.eos_token_id"
#define KEY_UNK       "tokenizer.ggml.unknown_token_id"
#define KEY_ADD_BOS   "tokenizer.ggml.add_bos_token"
#define KEY_ADD_EOS   "tokenizer.ggml.add_eos_token"
#define KEY_ADD_SPACE "tokenizer.ggml.add_space_prefix"
#define KEY_RM_WS     "tokenizer.ggml.remove_extra_whitespaces"
#define KEY_TEMPLATE  "tokenizer.chat_template"

/* An array key with n elements of one of the accepted element types. */
static smoe_status gguf_array(const smoe_gguf *g, const char *key, int64_t *idx, uint64_t *n) {
    int64_t i = smoe_gguf_find_key(g, key);
    SMOE_RETURN_IF(i < 0, SMOE_ERR_CORRUPT_FILE, "tokenizer: missing key %s", key);
    SMOE_RETURN_IF(smoe_gguf_kv_type(g, i) != SMOE_GGUF_ARRAY, SMOE_ERR_CORRUPT_FILE,
                   "tokenizer: key %s is a %s, expected an array", key,
                   smoe_gguf_value_type_name(smoe_gguf_kv_type(g, i)));
    *idx = i;
    *n   = smoe_gguf_arr_n(g, i);
    return SMOE_OK;
}

/* Optional id key: def if absent; -1 stays -1 ("none"); an error if it is not an integer. */
static smoe_status gguf_id(const smoe_gguf *g, const char *key, int32_t def, int32_t *out) {
    if (smoe_gguf_find_key(g, key) < 0) {
        *out = def;
        return SMOE_OK;
    }
    int32_t v;
    if (smoe_gguf_get_i32(g, key, &v) != SMOE_OK) {
        uint32_t u; /* some writers use u32 and 0xFFFFFFFF for "none" */
        SMOE_TRY(smoe_gguf_get_u32(g, key, &u));
        v = u == UINT32_MAX ? -1 : (int32_t)(u > INT32_MAX ? INT32_MAX : u);
    }
    *out = v;
    return SMOE_OK;
}

smoe_status smoe_tokenizer_from_gguf(const smoe_gguf *g, smoe_tokenizer **out) {
    SMOE_RETURN_IF(!g || !out, SMOE_ERR_INVALID_ARGUMENT, "smoe_tokenizer_from_gguf: NULL argument");
    *out = NULL;
    const char *model;
    SMOE_RETURN_IF(smoe_gguf_find_key(g, KEY_MODEL) < 0, SMOE_ERR_CORRUPT_FILE, "tokenizer: missing key %s",
                   KEY_MODEL);
    SMOE_TRY(smoe_gguf_get_str(g, KEY_MODEL, &model));
    SMOE_RETURN_IF(strcmp(model, "llama") != 0, SMOE_ERR_UNSUPPORTED,
                   "tokenizer: %s is '%s'; only 'llama' (SentencePiece BPE) is supported", KEY_MODEL, model);

    int64_t  i_tok, i_sc, i_ty;
    uint64_t n, n_sc, n_ty;
    SMOE_TRY(gguf_array(g, KEY_TOKENS, &i_tok, &n));
    SMOE_RETURN_IF(smoe_gguf_arr_type(g, i_tok) != SMOE_GGUF_STRING, SMOE_ERR_CORRUPT_FILE,
                   "tokenizer: %s is an array of %s, expected strings", KEY_TOKENS,
                   smoe_gguf_value_type_name(smoe_gguf_arr_type(g, i_tok)));
    SMOE_RETURN_IF(n == 0 || n > SMOE_TOKENIZER_MAX_VOCAB, SMOE_ERR_CORRUPT_FILE,
                   "tokenizer: %s has %" PRIu64 " tokens (expected 1..%d)", KEY_TOKENS, n, SMOE_TOKENIZER_MAX_VOCAB);
    SMOE_TRY(gguf_array(g, KEY_SCORES, &i_sc, &n_sc));
    SMOE_RETURN_IF(smoe_gguf_arr_type(g, i_sc) != SMOE_GGUF_FLOAT32, SMOE_ERR_CORRUPT_FILE,
                   "tokenizer: %s is an array of %s, expected f32", KEY_SCORES,
                   smoe_gguf_value_type_name(smoe_gguf_arr_type(g, i_sc)));
    SMOE_RETURN_IF(n_sc != n, SMOE_ERR_CORRUPT_FILE, "tokenizer: %s has %" PRIu64 " elements but %s has %" PRIu64,
                   KEY_SCORES, n_sc, KEY_TOKENS, n);
    SMOE_TRY(gguf_array(g, KEY_TYPES, &i_ty, &n_ty));
    smoe_gguf_value_type tty = smoe_gguf_arr_type(g, i_ty);
    SMOE_RETURN_IF(tty != SMOE_GGUF_INT32 && tty != SMOE_GGUF_UINT32, SMOE_ERR_CORRUPT_FILE,
                   "tokenizer: %s is an array of %s, expected i32", KEY_TYPES, smoe_gguf_value_type_name(tty));
    SMOE_RETURN_IF(n_ty != n, SMOE_ERR_CORRUPT_FILE, "tokenizer: %s has %" PRIu64 " elements but %s has %" PRIu64,
                   KEY_TYPES, n_ty, KEY_TOKENS, n);

    smoe_vocab_desc d = {0};
    d.n_vocab         = (int64_t)n;
    d.scores          = smoe_gguf_arr_data(g, i_sc);
    d.types           = smoe_gguf_arr_data(g, i_ty); /* u32 type ids 1..6 read the same as i32 */
    SMOE_RETURN_IF(!d.scores || !d.types, SMOE_ERR_CORRUPT_FILE, "tokenizer: unreadable score/type arrays");

    SMOE_TRY(gguf_id(g, KEY_BOS, 1, &d.bos_id));
    SMOE_TRY(gguf_id(g, KEY_EOS, 2, &d.eos_id));
    /* without the key: the UNKNOWN token, else id 0 (llama.cpp's default for SentencePiece vocabularies, whose
     * converter writes no unknown_token_id and types <unk> CONTROL) */
    int32_t unk_default = 0;
    for (uint64_t j = 0; j < n; j++)
        if (d.types[j] == SMOE_TOK_UNKNOWN) {
            unk_default = (int32_t)j;
            break;
        }
    SMOE_TRY(gguf_id(g, KEY_UNK, unk_default, &d.unk_id));
    if (d.bos_id >= (int64_t)n) d.bos_id = -1;
    if (d.eos_id >= (int64_t)n) d.eos_id = -1;
    SMOE_RETURN_IF(d.unk_id < 0, SMOE_ERR_CORRUPT_FILE, "tokenizer: the vocabulary has no unknown token");
    SMOE_TRY(smoe_gguf_get_bool_or(g, KEY_ADD_BOS, true, &d.add_bos));
    SMOE_TRY(smoe_gguf_get_bool_or(g, KEY_ADD_EOS, false, &d.add_eos));
    SMOE_TRY(smoe_gguf_get_bool_or(g, KEY_ADD_SPACE, true, &d.add_dummy_prefix));
    SMOE_TRY(smoe_gguf_get_bool_or(g, KEY_RM_WS, false, &d.remove_extra_whitespaces));
    if (smoe_gguf_find_key(g, KEY_TEMPLATE) >= 0) SMOE_TRY(smoe_gguf_get_str(g, KEY_TEMPLATE, &d.chat_template));
    /* GGUF has no byte_fallback flag: byte tokens in the vocabulary mean byte fallback (as llama.cpp does) */
    for (uint64_t j = 0; j < n; j++) d.byte_fallback |= d.types[j] == SMOE_TOK_BYTE;

    const char **pieces = malloc(n * sizeof(*pieces));
    uint64_t    *lens   = malloc(n * sizeof(*lens));
    smoe_status  st     = SMOE_OK;
    SMOE_GOTO_IF(!pieces || !lens, st, done, SMOE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    for (uint64_t j = 0; j < n; j++) {
        pieces[j] = smoe_gguf_arr_str(g, i_tok, j, &lens[j]);
        SMOE_GOTO_IF(!pieces[j], st, done, SMOE_ERR_CORRUPT_FILE, "tokenizer: %s[%" PRIu64 "] unreadable",
                     KEY_TOKENS, j);
    }
    d.pieces     = pieces;
    d.piece_lens = lens;
    st           = smoe_tokenizer_create(&d, out);
done:
    free(pieces);
    free(lens);
    return st;
}

smoe_status smoe_tokenizer_load_gguf(const char *path, smoe_tokenizer **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "smoe_tokenizer_load_gguf: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!path, SMOE_ERR_INVALID_ARGUMENT, "smoe_tokenizer_load_gguf: path is NULL");
    smoe_gguf *g;
    SMOE_TRY(smoe_gguf_open(path, &g));
    smoe_status st = smoe_tokenizer_from_gguf(g, out);
    smoe_gguf_close(g);
    if (st != SMOE_OK) smoe_error_prefix("%s", path);
    return st;
}

/* ---- encoding ---- */

typedef struct sym {
    uint32_t start, len; /* bytes of the normalized text; len 0 = merged away */
    int32_t  prev, next;
    bool     freeze; /* a user-defined piece: never merged */
} sym;

typedef struct pair {
    float    score;
    int32_t  left, right;
    uint32_t size;
} pair;

typedef struct scratch {
    char    *norm;
    size_t   norm_cap;
    sym     *syms;
    size_t   syms_cap;
    pair    *heap;
    size_t   heap_n, heap_cap;
    int32_t *rev_left; /* [n_vocab] for UNUSED pieces: byte length of the left half of the last pushed merge */
    uint32_t *stack;   /* resegmentation work list: (start, len) pairs */
    size_t    stack_cap;
    bool      prev_unk;
} scratch;

static void scratch_free(scratch *s) {
    free(s->norm);
    free(s->syms);
    free(s->heap);
    free(s->rev_left);
    free(s->stack);
}

/* a pops before b: higher score first, ties to the leftmost pair (sentencepiece's SymbolPairComparator) */
static bool pair_before(const pair *a, const pair *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

/* A 4-ary min-heap in pair_before order: half the depth of a binary heap, and the four children of a node share
 * one 64-byte cache line, which matters when a long run without word breaks puts ~10^6 pairs in it. */
#define HEAP_D 4

static void heap_sift_down(pair *h, size_t n, size_t i) {
    pair x = h[i];
    for (;;) {
        size_t c = HEAP_D * i + 1, best = c;
        if (c >= n) break;
        size_t end = c + HEAP_D < n ? c + HEAP_D : n;
        for (size_t k = c + 1; k < end; k++)
            if (pair_before(&h[k], &h[best])) best = k;
        if (!pair_before(&h[best], &x)) break;
        h[i] = h[best];
        i    = best;
    }
    h[i] = x;
}

/* Appends p; with `sift` restores the heap order, else the caller calls heap_build later. */
static smoe_status heap_push(scratch *s, pair p, bool sift) {
    if (s->heap_n == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 256;
        pair  *h   = realloc(s->heap, cap * sizeof(*h));
        SMOE_RETURN_IF(!h, SMOE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory (merge queue)");
        s->heap     = h;
        s->heap_cap = cap;
    }
    size_t i = s->heap_n++;
    while (sift && i > 0) {
        size_t up = (i - 1) / HEAP_D;
        if (!pair_before(&p, &s->heap[up])) break;
        s->heap[i] = s->heap[up];
        i          = up;
    }
    s->heap[i] = p;
    return SMOE_OK;
}

static void heap_build(scratch *s) {
    for (size_t i = s->heap_n / HEAP_D + 1; i-- > 0;)
        if (i < s->heap_n) heap_sift_down(s->heap, s->heap_n, i);
}

static pair heap_pop(scratch *s) {
    pair top = s->heap[0];
    s->heap_n--;
    if (s->heap_n) {
        s->heap[0] = s->heap[s->heap_n];
        heap_sift_down(s->heap, s->heap_n, 0);
    }
    return top;
}

/* sentencepiece's MaybeAddNewSymbolPair */
static smoe_status maybe_add_pair(const smoe_tokenizer *t, scratch *s, int32_t l, int32_t r, bool sift) {
    if (l < 0 || r < 0 || s->syms[l].freeze || s->syms[r].freeze) return SMOE_OK;
    uint32_t size = s->syms[l].len + s->syms[r].len;
    if (size > t->max_normal_len) return SMOE_OK;
    const smoe_tok_entry *e = table_find(t, s->norm + s->syms[l].start, size);
    if (!e || e->normal_id < 0) return SMOE_OK;
    int32_t id = e->normal_id;
    SMOE_TRY(heap_push(s, (pair){t->scores[id], l, r, size}, sift));
    if (t->types[id] == SMOE_TOK_UNUSED) {
        if (!s->rev_left) {
            s->rev_left = malloc((size_t)t->n_vocab * sizeof(*s->rev_left));
            SMOE_RETURN_IF(!s->rev_left, SMOE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
            for (int32_t i = 0; i < t->n_vocab; i++) s->rev_left[i] = -1;
        }
        s->rev_left[id] = (int32_t)s->syms[l].len;
    }
    return SMOE_OK;
}

/* Merges symbols [a, b) (already linked as a list with -1 at both ends). */
static smoe_status bpe_merge(const smoe_tokenizer *t, scratch *s, int32_t a, int32_t b) {
    s->heap_n = 0;
    for (int32_t i = a + 1; i < b; i++) SMOE_TRY(maybe_add_pair(t, s, i - 1, i, false));
    heap_build(s);
    while (s->heap_n) {
        pair p = heap_pop(s);
        sym *l = &s->syms[p.left], *r = &s->syms[p.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != p.size) continue; /* stale */
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0) s->syms[r->next].prev = p.left;
        r->len = 0;
        SMOE_TRY(maybe_add_pair(t, s, l->prev, p.left, true));
        SMOE_TRY(maybe_add_pair(t, s, p.left, l->next, true));
    }
    return SMOE_OK;
}

/* sentencepiece's PopulateSentencePieceText for one (piece, id) of the model's output */
static smoe_status emit_piece(const smoe_tokenizer *t, scratch *s, const char *w, uint32_t len, int32_t id,
                              smoe_token_vec *out) {
    int ty = t->types[id];
    if (ty == SMOE_TOK_CONTROL) {
        s->prev_unk = false;
        return smoe_token_vec_push(out, id);
    }
    if (ty == SMOE_TOK_UNKNOWN) {
        bool merge  = s->prev_unk;
        s->prev_unk = true;
        if (t->byte_fallback) {
            for (uint32_t i = 0; i < len; i++) SMOE_TRY(smoe_token_vec_push(out, t->byte_ids[(unsigned char)w[i]]));
            return SMOE_OK;
        }
        return merge ? SMOE_OK : smoe_token_vec_push(out, id); /* a run of unknowns is one <unk> */
    }
    s->prev_unk = false;
    return smoe_token_vec_push(out, id);
}

/* sentencepiece's resegment: an UNUSED piece is replaced by the two symbols it was last merged from. */
static smoe_status emit_symbol(const smoe_tokenizer *t, scratch *s, uint32_t start, uint32_t len,
                               smoe_token_vec *out) {
    int32_t id = piece_to_id(t, s->norm + start, len);
    if (t->types[id] != SMOE_TOK_UNUSED || !s->rev_left || s->rev_left[id] < 0)
        return emit_piece(t, s, s->norm + start, len, id, out);
    size_t need = 2 * ((size_t)t->piece_lens[id] + 2);
    if (s->stack_cap < need) {
        uint32_t *st = realloc(s->stack, need * sizeof(*st));
        SMOE_RETURN_IF(!st, SMOE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        s->stack     = st;
        s->stack_cap = need;
    }
    size_t top      = 0;
    s->stack[top++] = start;
    s->stack[top++] = len;
    while (top) {
        uint32_t l = s->stack[--top], b = s->stack[--top];
        int32_t  pid = piece_to_id(t, s->norm + b, l);
        int32_t  left = (t->types[pid] == SMOE_TOK_UNUSED) ? s->rev_left[pid] : -1;
        if (left <= 0 || (uint32_t)left >= l) {
            SMOE_TRY(emit_piece(t, s, s->norm + b, l, pid, out));
            continue;
        }
        /* right half below the left half so the left is emitted first; each half is shorter, so the stack
         * never holds more than 2 * (len + 1) entries */
        s->stack[top++] = b + (uint32_t)left;
        s->stack[top++] = l - (uint32_t)left;
        s->stack[top++] = b;
        s->stack[top++] = (uint32_t)left;
    }
    return SMOE_OK;
}

static bool norm_is_space(const char *p) { return memcmp(p, k_space, K_SPACE_LEN) == 0; }

/* sentencepiece's Normalizer::Normalize with an identity charsmap and escape_whitespaces; returns the length. */
static size_t normalize(const smoe_tokenizer *t, const char *in, size_t n, char *out) {
    size_t i = 0, o = 0;
    bool   rm = t->remove_extra_whitespaces;
    if (rm)
        while (i < n && in[i] == ' ') i++;
    if (i == n) return 0;
    if (t->add_dummy_prefix) {
        memcpy(out + o, k_space, K_SPACE_LEN);
        o += K_SPACE_LEN;
    }
    bool prev_space = rm;
    while (i < n) {
        if (in[i] == ' ') {
            if (!prev_space) {
                memcpy(out + o, k_space, K_SPACE_LEN);
                o += K_SPACE_LEN;
            }
            prev_space = rm;
            i++;
        } else {
            size_t l = char_len(in + i, n - i);
            memcpy(out + o, in + i, l);
            o += l;
            i += l;
            prev_space = false;
        }
    }
    if (rm)
        while (o >= K_SPACE_LEN && norm_is_space(out + o - K_SPACE_LEN)) o -= K_SPACE_LEN;
    return o;
}

/* Encodes one piece of text (no special tokens in it) as one sentencepiece Encode call. */
static smoe_status encode_fragment(const smoe_tokenizer *t, scratch *s, const char *text, size_t n,
                                   smoe_token_vec *out) {
    if (n == 0) return SMOE_OK;
    size_t need = 3 * n + K_SPACE_LEN; /* n <= SMOE_TOKENIZER_MAX_TEXT: no overflow */
    if (s->norm_cap < need) {
        free(s->norm);
        s->norm = malloc(need);
        SMOE_RETURN_IF(!s->norm, SMOE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory for %zu bytes", need);
        s->norm_cap = need;
    }
    size_t nn = normalize(t, text, n, s->norm);
    if (nn == 0) return SMOE_OK;
    if (s->syms_cap < nn) {
        free(s->syms);
        s->syms = malloc(nn * sizeof(*s->syms));
        SMOE_RETURN_IF(!s->syms, SMOE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory for %zu symbols", nn);
        s->syms_cap = nn;
    }

    /* split into characters; a user-defined piece (longest match) is one frozen symbol */
    int32_t ns = 0;
    for (size_t p = 0; p < nn;) {
        size_t l      = 0;
        bool   freeze = false;
        if (t->max_user_len && bitmap_has(t->user_first, (unsigned char)s->norm[p])) {
            size_t maxl = t->max_user_len < nn - p ? t->max_user_len : nn - p;
            for (size_t k = maxl; k > 0 && !freeze; k--) {
                const smoe_tok_entry *e = table_find(t, s->norm + p, k);
                if (e && e->user_defined) l = k, freeze = true;
            }
        }
        if (!freeze) l = char_len(s->norm + p, nn - p);
        s->syms[ns] = (sym){(uint32_t)p, (uint32_t)l, ns - 1, ns + 1, freeze};
        ns++;
        p += l;
    }

    /* merge word by word (see the file comment), or all at once */
    s->prev_unk = false;
    int32_t a   = 0;
    while (a < ns) {
        int32_t b = ns;
        if (t->split_words) {
            for (b = a + 1; b < ns; b++) {
                const sym *cur = &s->syms[b], *prv = &s->syms[b - 1];
                if (!cur->freeze && cur->len == K_SPACE_LEN && norm_is_space(s->norm + cur->start) &&
                    !(!prv->freeze && prv->len == K_SPACE_LEN && norm_is_space(s->norm + prv->start)))
                    break;
            }
        }
        s->syms[a].prev     = -1;
        s->syms[b - 1].next = -1;
        SMOE_TRY(bpe_merge(t, s, a, b));
        for (int32_t i = a; i >= 0; i = s->syms[i].next) SMOE_TRY(emit_symbol(t, s, s->syms[i].start, s->syms[i].len, out));
        a = b;
    }
    return SMOE_OK;
}

/* Length of the special piece at text[pos], 0 if none; *id gets its id. */
static size_t match_special(const smoe_tokenizer *t, const char *text, size_t n, size_t pos, int32_t *id) {
    if (!bitmap_has(t->special_first, (unsigned char)text[pos])) return 0;
    for (uint32_t k = 0; k < t->n_special_lens; k++) {
        size_t l = t->special_lens[k];
        if (l > n - pos) continue;
        const smoe_tok_entry *e = table_find(t, text + pos, l);
        if (!e || e->reserved_id < 0) continue;
        int ty = t->types[e->reserved_id];
        if (ty == SMOE_TOK_CONTROL || ty == SMOE_TOK_UNKNOWN) {
            *id = e->reserved_id;
            return l;
        }
    }
    return 0;
}

smoe_status smoe_tokenizer_encode(const smoe_tokenizer *t, const char *text, size_t len, uint32_t flags,
                                  smoe_token_vec *out) {
    SMOE_RETURN_IF(!t || !out || (!text && len), SMOE_ERR_INVALID_ARGUMENT, "tokenize: NULL argument");
    SMOE_RETURN_IF(len > SMOE_TOKENIZER_MAX_TEXT, SMOE_ERR_INVALID_ARGUMENT,
                   "tokenize: text of %zu bytes (limit %zu)", len, SMOE_TOKENIZER_MAX_TEXT);
    size_t valid = smoe_utf8_valid_prefix(text, len);
    SMOE_RETURN_IF(valid != len, SMOE_ERR_INVALID_TEXT, "tokenize: invalid UTF-8 at byte offset %zu (0x%02x)", valid,
                   (unsigned char)text[valid]);

    scratch     s  = {0};
    smoe_status st = SMOE_OK;
    if ((flags & SMOE_TOKENIZE_ADD_BOS) && t->bos_id >= 0) SMOE_GOTO_TRY(st, done, smoe_token_vec_push(out, t->bos_id));
    if ((flags & SMOE_TOKENIZE_PARSE_SPECIAL) && t->n_special_lens) {
        size_t frag = 0;
        for (size_t pos = 0; pos < len;) {
            int32_t id;
            size_t  l = match_special(t, text, len, pos, &id);
            if (l) {
                SMOE_GOTO_TRY(st, done, encode_fragment(t, &s, text + frag, pos - frag, out));
                SMOE_GOTO_TRY(st, done, smoe_token_vec_push(out, id));
                pos += l;
                frag = pos;
            } else {
                pos += char_len(text + pos, len - pos);
            }
        }
        SMOE_GOTO_TRY(st, done, encode_fragment(t, &s, text + frag, len - frag, out));
    } else {
        SMOE_GOTO_TRY(st, done, encode_fragment(t, &s, text, len, out));
    }
    if ((flags & SMOE_TOKENIZE_ADD_EOS) && t->eos_id >= 0) SMOE_GOTO_TRY(st, done, smoe_token_vec_push(out, t->eos_id));
done:
    scratch_free(&s);
    return st;
}

/* ---- public API ---- */

smoe_status smoe_tokenize(const smoe_tokenizer *tok, const char *text, size_t len, int32_t *ids, size_t cap,
                          size_t *n_out, uint32_t flags) {
    SMOE_RETURN_IF(!tok || !n_out, SMOE_ERR_INVALID_ARGUMENT, "smoe_tokenize: tok and n_out must not be NULL");
    *n_out = 0;
    SMOE_RETURN_IF(!ids && cap, SMOE_ERR_INVALID_ARGUMENT, "smoe_tokenize: ids is NULL but cap is %zu", cap);
    SMOE_RETURN_IF(flags & ~(SMOE_TOKENIZE_ADD_BOS | SMOE_TOKENIZE_ADD_EOS | SMOE_TOKENIZE_PARSE_SPECIAL),
                   SMOE_ERR_INVALID_ARGUMENT, "smoe_tokenize: unknown flags 0x%x", flags);
    smoe_token_vec v  = {0};
    smoe_status    st = smoe_tokenizer_encode(tok, text, len, flags, &v);
    if (st == SMOE_OK) {
        *n_out = v.n;
        if (v.n > cap)
            st = smoe_set_error(SMOE_ERR_BUFFER_TOO_SMALL, "smoe_tokenize: %zu ids do not fit in a buffer of %zu", v.n,
                                cap);
        else if (v.n)
            memcpy(ids, v.data, v.n * sizeof(*ids));
    }
    smoe_token_vec_free(&v);
    return st;
}

int32_t smoe_tokenizer_n_vocab(const smoe_tokenizer *tok) { return tok ? tok->n_vocab : 0; }
int32_t smoe_tokenizer_bos(const smoe_tokenizer *tok) { return tok ? tok->bos_id : -1; }
int32_t smoe_tokenizer_eos(const smoe_tokenizer *tok) { return tok ? tok->eos_id : -1; }
int32_t smoe_tokenizer_unk(const smoe_tokenizer *tok) { return tok ? tok->unk_id : -1; }

uint32_t smoe_tokenizer_default_flags(const smoe_tokenizer *tok) {
    if (!tok) return 0;
    return (tok->add_bos ? SMOE_TOKENIZE_ADD_BOS : 0) | (tok->add_eos ? SMOE_TOKENIZE_ADD_EOS : 0);
}

const char *smoe_tokenizer_chat_template(const smoe_tokenizer *tok) { return tok ? tok->chat_template : NULL; }

const char *smoe_token_to_piece(const smoe_tokenizer *tok, int32_t id) {
    if (!tok || id < 0 || id >= tok->n_vocab) return NULL;
    return tok->pieces[id];
}

smoe_token_type smoe_token_get_type(const smoe_tokenizer *tok, int32_t id) {
    if (!tok || id < 0 || id >= tok->n_vocab) return SMOE_TOKEN_TYPE_INVALID;
    return (smoe_token_type)tok->types[id];
}
