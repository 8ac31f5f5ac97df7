/*
 * fuzz-tokenizer.c - libFuzzer target for tokenize + detokenize.
 *
 * The first input byte picks the tokenizer and the flags, the rest is the text: raw bytes (mostly invalid UTF-8,
 * which must be rejected with SMOE_ERR_INVALID_TEXT and nothing else) or, with bit 3, bytes mapped to valid UTF-8
 * (ASCII for bytes < 0xC0, else a code point from the next two bytes, anywhere up to U+10FFFF).
 *
 * Tokenizers: A = SMOE_FUZZ_TOKENIZER_VOCAB (a GGUF file, e.g. a Mixtral vocabulary) if set, else a synthetic
 * Mixtral-like one (byte fallback, dummy prefix, merges); B = a synthetic one with UNUSED and USER_DEFINED pieces,
 * no byte fallback, no dummy prefix and remove_extra_whitespaces (the other code paths).
 *
 * Invariants (trap on violation): a failure sets a message; ids are in range; the ids are also fed back through the
 * detokenizer, whose output is always valid UTF-8 and whose streamed output equals the one-shot decode; and with A
 * (byte fallback, dummy prefix, no special parsing), decode(encode(text)) == text for text without U+2581.
 */
#include "core/tokenizer.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static smoe_tokenizer *tok_a, *tok_b;
static bool            a_roundtrips;

#define SP "\xE2\x96\x81"
static const char *const synth_pieces[] = {
    SP,       SP SP,    SP SP SP SP, "t",     "h",      "e",      "a",      "n",      "i",       "r",   "s",
    "o",      "th",     "he",        "in",    "er",     "an",     SP "t",   SP "a",   SP "th",   "the", SP "the",
    "re",     "on",     SP "s",      "ing",   SP "i",   "\xC3\xA9", "\xE6\x97\xA5", "\xE6\x9C\xAC",
    "\xE6\x97\xA5\xE6\x9C\xAC", "1",  "2",  "12", ".",  ",",  "!",  "?",  "<",  ">",  "/",  "x",  "\t", "\n",
};
#define N_SYNTH (sizeof(synth_pieces) / sizeof(synth_pieces[0]))

static smoe_tokenizer *synthetic(bool variant) {
    enum { N = 3 + 256 + N_SYNTH };
    static char  bytes[256][8];
    const char  *pieces[N];
    float        scores[N];
    int32_t      types[N];
    pieces[0] = "<unk>", types[0] = SMOE_TOK_UNKNOWN;
    pieces[1] = "<s>", types[1] = SMOE_TOK_CONTROL;
    pieces[2] = "</s>", types[2] = SMOE_TOK_CONTROL;
    for (int b = 0; b < 256; b++) {
        static const char hex[] = "0123456789ABCDEF";
        memcpy(bytes[b], "<0x", 3);
        bytes[b][3] = hex[b >> 4], bytes[b][4] = hex[b & 15], bytes[b][5] = '>', bytes[b][6] = '\0';
        pieces[3 + b] = bytes[b];
        types[3 + b]  = SMOE_TOK_BYTE;
    }
    for (int i = 0; i < 259; i++) scores[i] = 0.0f;
    for (size_t i = 0; i < N_SYNTH; i++) {
        pieces[259 + i] = synth_pieces[i];
        scores[259 + i] = -(float)(i % 7); /* many ties */
        types[259 + i]  = SMOE_TOK_NORMAL;
    }
    if (variant) {
        types[259 + 12] = SMOE_TOK_UNUSED;       /* th */
        types[259 + 19] = SMOE_TOK_UNUSED;       /* ▁th */
        types[259 + 1]  = SMOE_TOK_UNUSED;       /* ▁▁ */
        types[259 + 25] = SMOE_TOK_USER_DEFINED; /* ing */
        types[259 + 30] = SMOE_TOK_USER_DEFINED; /* 日本 */
    }
    smoe_vocab_desc d = {.n_vocab = N, .pieces = pieces, .scores = scores, .types = types, .bos_id = 1, .eos_id = 2,
                         .unk_id = 0, .add_bos = true, .add_dummy_prefix = !variant,
                         .remove_extra_whitespaces = variant, .byte_fallback = !variant};
    smoe_tokenizer *t = NULL;
    if (smoe_tokenizer_create(&d, &t) != SMOE_OK) __builtin_trap();
    return t;
}

static void init(void) {
    const char *path = getenv("SMOE_FUZZ_TOKENIZER_VOCAB");
    if (path && smoe_tokenizer_load_gguf(path, &tok_a) != SMOE_OK) __builtin_trap();
    if (!tok_a) tok_a = synthetic(false);
    tok_b = synthetic(true);
    int32_t sp_id = -1;
    for (int32_t i = 0; i < tok_a->n_vocab; i++)
        if (tok_a->piece_lens[i] == 3 && !memcmp(tok_a->pieces[i], SP, 3)) sp_id = i;
    a_roundtrips = tok_a->byte_fallback && tok_a->add_dummy_prefix && !tok_a->remove_extra_whitespaces && sp_id >= 0;
}

/* bytes -> valid UTF-8 */
static size_t to_utf8(const uint8_t *in, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = in[i];
        if (b < 0xC0 || i + 2 >= n) {
            out[o++] = (char)(b & 0x7F);
            continue;
        }
        uint32_t cp = (((uint32_t)(b & 0x3F) << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2]) % 0x110000;
        i += 2;
        if (cp >= 0xD800 && cp < 0xE000) cp ^= 0x800;
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else if (cp < 0x800) {
            out[o++] = (char)(0xC0 | (cp >> 6));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out[o++] = (char)(0xE0 | (cp >> 12));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        } else {
            out[o++] = (char)(0xF0 | (cp >> 18));
            out[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return o;
}

static bool contains(const char *s, size_t n, const char *needle, size_t m) {
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(s + i, needle, m)) return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tok_a) init();
    if (size == 0 || size > (1 << 16)) return 0;
    uint8_t               mode  = data[0];
    const smoe_tokenizer *tok   = (mode & 1) ? tok_b : tok_a;
    uint32_t              flags = ((mode & 2) ? SMOE_TOKENIZE_ADD_BOS : 0) | ((mode & 4) ? SMOE_TOKENIZE_PARSE_SPECIAL : 0);
    bool                  utf8  = mode & 8;

    char  *text = malloc(4 * size);
    size_t len;
    if (utf8) {
        len = to_utf8(data + 1, size - 1, text);
    } else {
        len = size - 1;
        memcpy(text, data + 1, len);
    }

    size_t      n  = 0;
    smoe_status st = smoe_tokenize(tok, text, len, NULL, 0, &n, flags);
    bool        valid = smoe_utf8_valid_prefix(text, len) == len;
    if (!valid) {
        if (st != SMOE_ERR_INVALID_TEXT || !smoe_last_error()[0]) __builtin_trap();
        free(text);
        return 0;
    }
    if (st != SMOE_OK && st != SMOE_ERR_BUFFER_TOO_SMALL) __builtin_trap();
    int32_t *ids = malloc((n + 1) * sizeof(*ids));
    size_t   n2  = 0;
    if (smoe_tokenize(tok, text, len, ids, n, &n2, flags) != SMOE_OK || n2 != n) __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tok->n_vocab) __builtin_trap();

    /* one-shot decode */
    size_t need = 0;
    st          = smoe_detokenize(tok, ids, n, NULL, 0, &need, 0);
    if (st != SMOE_ERR_BUFFER_TOO_SMALL) __builtin_trap();
    char *dec = malloc(need + 1);
    if (smoe_detokenize(tok, ids, n, dec, need + 1, &need, 0) != SMOE_OK) __builtin_trap();
    if (smoe_utf8_valid_prefix(dec, need) != need || dec[need] != '\0') __builtin_trap();

    /* streamed decode equals it */
    smoe_detokenizer *d;
    if (smoe_detokenizer_init(tok, 0, &d) != SMOE_OK) __builtin_trap();
    size_t at = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *t;
        size_t      l;
        st = i < n ? smoe_detokenizer_feed(d, ids[i], &t, &l) : smoe_detokenizer_flush(d, &t, &l);
        if (st != SMOE_OK || at + l > need || memcmp(dec + at, t, l) != 0) __builtin_trap();
        at += l;
    }
    if (at != need) __builtin_trap();
    smoe_detokenizer_free(d);

    /* round trip */
    if (tok == tok_a && a_roundtrips && !(flags & SMOE_TOKENIZE_PARSE_SPECIAL) && !contains(text, len, SP, 3)) {
        if (need != len || memcmp(dec, text, len) != 0) __builtin_trap();
    }

    /* the raw input as ids: the detokenizer takes any sequence of valid ids */
    if (size >= 3) {
        size_t   m      = (size - 1) / 2;
        int32_t *rnd    = malloc(m * sizeof(*rnd));
        for (size_t i = 0; i < m; i++) rnd[i] = (int32_t)((data[1 + 2 * i] | data[2 + 2 * i] << 8) % tok->n_vocab);
        if (smoe_detokenize(tok, rnd, m, NULL, 0, &need, SMOE_DETOKENIZE_RENDER_SPECIAL) != SMOE_ERR_BUFFER_TOO_SMALL)
            __builtin_trap();
        char *r = malloc(need + 1);
        if (smoe_detokenize(tok, rnd, m, r, need + 1, &need, SMOE_DETOKENIZE_RENDER_SPECIAL) != SMOE_OK)
            __builtin_trap();
        if (smoe_utf8_valid_prefix(r, need) != need) __builtin_trap();
        free(r);
        free(rnd);
    }
    free(dec);
    free(ids);
    free(text);
    return 0;
}
