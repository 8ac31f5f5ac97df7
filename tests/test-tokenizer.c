/*
 * test-tokenizer.c - the tokenizer on a small synthetic vocabulary whose results are worked out by hand in the
 * comments (merge order, ties, word splitting, byte fallback, special tokens), the streaming detokenizer (characters
 * split over byte tokens, invalid and truncated sequences, leading-space rules, flags), buffer-too-small and flag
 * handling, invalid UTF-8, bad vocabularies in GGUF files (missing keys, mismatched lengths, wrong types), chat
 * validation and the SentencePiece .model reader on hand-made protobuf bytes.
 * The real vocabulary is checked against sentencepiece and mistral-common in tests/python/test_tokenizer.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert/spm-model.h"
#include "core/gguf.h"
#include "core/tokenizer.h"

/* ---- the synthetic vocabulary ----
 *   0 <unk> UNKNOWN, 1 <s> CONTROL, 2 </s> CONTROL, 3..258 <0x00>..<0xFF> BYTE, then NORMAL pieces with scores: */
#define BYTE(b) (3 + (b))
enum { P_SP = 259, P_A, P_B, P_C, P_AB, P_BC, P_SP_A, P_SP_AB, P_ABC, P_SP_SP, P_E_ACUTE, N_VOCAB };
static const char *const extra_pieces[] = {"\xE2\x96\x81", "a", "b", "c", "ab", "bc", "\xE2\x96\x81" "a",
                                           "\xE2\x96\x81" "ab", "abc", "\xE2\x96\x81\xE2\x96\x81", "\xC3\xA9"};
static const float extra_scores[] = {-1, -2, -3, -4, -10, -10, -20, -11, -12, -5, -6};

static char    piece_buf[N_VOCAB][8];
static const char *pieces[N_VOCAB];
static float   scores[N_VOCAB];
static int32_t types[N_VOCAB];

static void build_vocab_arrays(void) {
    pieces[0] = "<unk>", types[0] = 2;
    pieces[1] = "<s>", types[1] = 3;
    pieces[2] = "</s>", types[2] = 3;
    for (int b = 0; b < 256; b++) {
        snprintf(piece_buf[BYTE(b)], sizeof(piece_buf[0]), "<0x%02X>", b);
        pieces[BYTE(b)] = piece_buf[BYTE(b)];
        types[BYTE(b)]  = 6;
    }
    for (int i = P_SP; i < N_VOCAB; i++) {
        pieces[i] = extra_pieces[i - P_SP];
        scores[i] = extra_scores[i - P_SP];
        types[i]  = 1;
    }
}

static smoe_tokenizer *make_tok(void) {
    build_vocab_arrays();
    smoe_vocab_desc d = {.n_vocab = N_VOCAB, .pieces = pieces, .scores = scores, .types = types, .bos_id = 1,
                         .eos_id = 2, .unk_id = 0, .add_bos = true, .add_dummy_prefix = true, .byte_fallback = true};
    smoe_tokenizer *t = NULL;
    assert_int_equal(smoe_tokenizer_create(&d, &t), SMOE_OK);
    return t;
}

static void expect_ids(const smoe_tokenizer *t, const char *text, uint32_t flags, const int32_t *want, size_t n) {
    int32_t ids[64];
    size_t  got = 0;
    assert_int_equal(smoe_tokenize(t, text, strlen(text), ids, 64, &got, flags), SMOE_OK);
    if (got != n) fprintf(stderr, "text '%s': got %zu ids, want %zu\n", text, got, n);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] != want[i]) fprintf(stderr, "text '%s': id %zu is %d, want %d\n", text, i, ids[i], want[i]);
        assert_int_equal(ids[i], want[i]);
    }
}
#define EXPECT(t, text, flags, ...)                                                                                    \
    do {                                                                                                               \
        const int32_t want_[] = {__VA_ARGS__};                                                                         \
        expect_ids(t, text, flags, want_, sizeof(want_) / sizeof(want_[0]));                                           \
    } while (0)

static void test_merges(void **state) {
    (void)state;
    smoe_tokenizer *t = make_tok();
    /* "abc" -> "▁abc": pairs ▁a -20, ab -10, bc -10; the tie goes to the leftmost: ab. Then ▁ab -11 beats abc -12:
     * ▁ab c; "▁abc" is no piece. */
    EXPECT(t, "abc", 0, P_SP_AB, P_C);
    /* "bc a" -> "▁bc▁a": words "▁bc" (bc -10; "▁bc" is no piece) and "▁a" (-20) */
    EXPECT(t, "bc a", 0, P_SP, P_BC, P_SP_A);
    /* "a  b" -> "▁a▁▁b": "▁a", then "▁▁b": ▁▁ -5, "▁b" is no piece */
    EXPECT(t, "a  b", 0, P_SP_A, P_SP_SP, P_B);
    /* characters outside the vocabulary fall back to their UTF-8 bytes: € = E2 82 AC */
    EXPECT(t, "a\xC3\xA9\xE2\x82\xAC", 0, P_SP_A, P_E_ACUTE, BYTE(0xE2), BYTE(0x82), BYTE(0xAC));
    /* " " -> "▁▁" */
    EXPECT(t, " ", 0, P_SP_SP);
    /* a NUL byte is a character like any other */
    {
        int32_t ids[8];
        size_t  n;
        assert_int_equal(smoe_tokenize(t, "a\0b", 3, ids, 8, &n, 0), SMOE_OK);
        assert_int_equal(n, 3);
        assert_int_equal(ids[0], P_SP_A);
        assert_int_equal(ids[1], BYTE(0));
        assert_int_equal(ids[2], P_B);
    }
    smoe_tokenizer_free(t);
}

static void test_flags_and_special(void **state) {
    (void)state;
    smoe_tokenizer *t = make_tok();
    EXPECT(t, "a", SMOE_TOKENIZE_ADD_BOS | SMOE_TOKENIZE_ADD_EOS, 1, P_SP_A, 2);
    EXPECT(t, "a", SMOE_TOKENIZE_ADD_BOS, 1, P_SP_A);
    EXPECT(t, "", SMOE_TOKENIZE_ADD_BOS | SMOE_TOKENIZE_ADD_EOS, 1, 2);
    /* plain text by default: < / s > are bytes */
    EXPECT(t, "a</s>b", 0, P_SP_A, BYTE('<'), BYTE('/'), BYTE('s'), BYTE('>'), P_B);
    /* parsed: "a" | </s> | "b" with its own dummy prefix -> ▁ b */
    EXPECT(t, "a</s>b", SMOE_TOKENIZE_PARSE_SPECIAL, P_SP_A, 2, P_SP, P_B);
    EXPECT(t, "<s><unk></s>", SMOE_TOKENIZE_PARSE_SPECIAL, 1, 0, 2);
    EXPECT(t, "<s", SMOE_TOKENIZE_PARSE_SPECIAL, P_SP, BYTE('<'), BYTE('s'));
    {
        /* a control piece with the length of <s> but another first character */
        int32_t ty2[N_VOCAB];
        memcpy(ty2, types, sizeof(ty2));
        ty2[P_ABC]        = 3;
        smoe_vocab_desc d = {.n_vocab = N_VOCAB, .pieces = pieces, .scores = scores, .types = ty2, .bos_id = 1,
                             .eos_id = 2, .unk_id = 0, .add_dummy_prefix = true, .byte_fallback = true};
        smoe_tokenizer *t2;
        assert_int_equal(smoe_tokenizer_create(&d, &t2), SMOE_OK);
        EXPECT(t2, "abc", SMOE_TOKENIZE_PARSE_SPECIAL, P_ABC);
        EXPECT(t2, "<s>abc</s>", SMOE_TOKENIZE_PARSE_SPECIAL, 1, P_ABC, 2);
        EXPECT(t2, "abc", 0, P_SP_AB, P_C);
        smoe_tokenizer_free(t2);
    }

    int32_t ids[4];
    size_t  n = 99;
    assert_int_equal(smoe_tokenize(t, "a", 1, ids, 4, &n, 1u << 7), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_tokenize(t, "a", 1, NULL, 4, &n, 0), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_tokenize(NULL, "a", 1, ids, 4, &n, 0), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_tokenizer_default_flags(t), SMOE_TOKENIZE_ADD_BOS);
    assert_int_equal(smoe_tokenizer_n_vocab(t), N_VOCAB);
    assert_string_equal(smoe_token_to_piece(t, P_SP_AB), "\xE2\x96\x81" "ab");
    assert_null(smoe_token_to_piece(t, N_VOCAB));
    assert_null(smoe_token_to_piece(t, -1));
    assert_int_equal(smoe_token_get_type(t, 1), SMOE_TOKEN_TYPE_CONTROL);
    assert_int_equal(smoe_token_get_type(t, BYTE(7)), SMOE_TOKEN_TYPE_BYTE);
    assert_int_equal(smoe_token_get_type(t, N_VOCAB), SMOE_TOKEN_TYPE_INVALID);
    smoe_tokenizer_free(t);
}

static void test_buffer_too_small(void **state) {
    (void)state;
    smoe_tokenizer *t = make_tok();
    int32_t         ids[8] = {-7, -7, -7, -7, -7, -7, -7, -7};
    size_t          n      = 0;
    /* "a  b" needs 3 ids (+BOS = 4) */
    assert_int_equal(smoe_tokenize(t, "a  b", 4, NULL, 0, &n, SMOE_TOKENIZE_ADD_BOS), SMOE_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 4);
    assert_int_equal(smoe_tokenize(t, "a  b", 4, ids, 3, &n, SMOE_TOKENIZE_ADD_BOS), SMOE_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 4);
    assert_int_equal(ids[0], -7); /* nothing written */
    assert_non_null(strstr(smoe_last_error(), "4 ids"));
    assert_int_equal(smoe_tokenize(t, "a  b", 4, ids, 4, &n, SMOE_TOKENIZE_ADD_BOS), SMOE_OK);
    assert_int_equal(n, 4);
    assert_int_equal(ids[3], P_B);

    /* detokenize: needs text + NUL */
    const int32_t seq[] = {P_SP_A, P_SP_AB}; /* "a ab" */
    char          buf[8];
    assert_int_equal(smoe_detokenize(t, seq, 2, NULL, 0, &n, 0), SMOE_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 4);
    assert_int_equal(smoe_detokenize(t, seq, 2, buf, 4, &n, 0), SMOE_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(smoe_detokenize(t, seq, 2, buf, 5, &n, 0), SMOE_OK);
    assert_string_equal(buf, "a ab");
    smoe_tokenizer_free(t);
}

static void test_invalid_utf8(void **state) {
    (void)state;
    smoe_tokenizer *t = make_tok();
    static const char *const bad[] = {"\xFF", "ab\x80", "\xC3", "a\xE2\x82", "\xED\xA0\x80" /* surrogate */,
                                      "\xC0\xAF" /* overlong */, "\xF4\x90\x80\x80" /* > U+10FFFF */, "\xE0\x80\x80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n;
        assert_int_equal(smoe_tokenize(t, bad[i], strlen(bad[i]), NULL, 0, &n, 0), SMOE_ERR_INVALID_TEXT);
        assert_non_null(strstr(smoe_last_error(), "UTF-8"));
    }
    size_t n;
    assert_int_equal(smoe_tokenize(t, "ab\x80", 3, NULL, 0, &n, 0), SMOE_ERR_INVALID_TEXT);
    assert_non_null(strstr(smoe_last_error(), "offset 2"));
    /* valid edge cases */
    assert_int_equal(smoe_tokenize(t, "\xF4\x8F\xBF\xBF\xEF\xBF\xBD", 7, NULL, 0, &n, 0), SMOE_ERR_BUFFER_TOO_SMALL);
    smoe_tokenizer_free(t);
}

/* ---- detokenizer ---- */

typedef struct feed_case {
    int32_t     id;
    const char *out; /* text expected from this feed */
} feed_case;

static void run_feeds(const smoe_tokenizer *t, uint32_t flags, const feed_case *c, size_t n, const char *flush_out) {
    smoe_detokenizer *d;
    assert_int_equal(smoe_detokenizer_init(t, flags, &d), SMOE_OK);
    for (size_t i = 0; i < n; i++) {
        const char *text;
        size_t      len;
        assert_int_equal(smoe_detokenizer_feed(d, c[i].id, &text, &len), SMOE_OK);
        if (strcmp(text, c[i].out) != 0) fprintf(stderr, "feed %zu (id %d): got '%s' want '%s'\n", i, c[i].id, text, c[i].out);
        assert_string_equal(text, c[i].out);
        assert_int_equal(len, strlen(c[i].out));
    }
    const char *text;
    size_t      len;
    assert_int_equal(smoe_detokenizer_flush(d, &text, &len), SMOE_OK);
    assert_string_equal(text, flush_out);
    smoe_detokenizer_free(d);
}
#define FEEDS(t, flags, flush, ...)                                                                                    \
    do {                                                                                                               \
        const feed_case c_[] = {__VA_ARGS__};                                                                          \
        run_feeds(t, flags, c_, sizeof(c_) / sizeof(c_[0]), flush);                                                    \
    } while (0)

#define FFFD "\xEF\xBF\xBD"

static void test_detok_stream(void **state) {
    (void)state;
    smoe_tokenizer *t = make_tok();
    /* the first piece loses its dummy-prefix space, later ones keep theirs */
    FEEDS(t, 0, "", {P_SP_A, "a"}, {P_SP_AB, " ab"}, {P_C, "c"});
    /* BOS is invisible and does not count as text */
    FEEDS(t, 0, "", {1, ""}, {P_SP_A, "a"}, {2, ""});
    /* a lone "▁" first is consumed, so the next space stays */
    FEEDS(t, 0, "", {P_SP, ""}, {P_SP_A, " a"});
    /* text from bytes counts: the following piece keeps its space */
    FEEDS(t, 0, "", {BYTE('x'), "x"}, {P_SP_A, " a"});
    /* a 2-byte and a 4-byte character split over byte tokens: output when complete */
    FEEDS(t, 0, "", {BYTE(0xC3), ""}, {BYTE(0xA9), "\xC3\xA9"}, {BYTE(0xF0), ""}, {BYTE(0x9F), ""}, {BYTE(0x98), ""},
          {BYTE(0x80), "\xF0\x9F\x98\x80"});
    /* invalid bytes: U+FFFD each, as soon as they are known to be invalid */
    FEEDS(t, 0, "", {BYTE(0xFF), FFFD}, {BYTE(0x80), FFFD}, {BYTE('A'), "A"});
    /* E0 80 can never become valid (overlong): both bytes replaced at the second */
    FEEDS(t, 0, "", {BYTE(0xE0), ""}, {BYTE(0x80), FFFD FFFD});
    /* a truncated character ended by a piece: one U+FFFD per byte, then the piece */
    FEEDS(t, 0, "", {BYTE(0xE4), ""}, {BYTE(0xB8), ""}, {P_SP_A, FFFD FFFD " a"});
    /* ... or by the end of the text */
    FEEDS(t, 0, FFFD FFFD, {BYTE(0xE4), ""}, {BYTE(0xB8), ""});
    /* an incomplete character followed by an ASCII byte */
    FEEDS(t, 0, "", {BYTE(0xE4), ""}, {BYTE(0xB8), ""}, {BYTE('A'), FFFD FFFD "A"});
    /* the unknown token */
    FEEDS(t, 0, "", {0, " \xE2\x81\x87 "}, {P_SP_A, " a"});
    /* flags */
    FEEDS(t, SMOE_DETOKENIZE_KEEP_LEADING_SPACE, "", {P_SP_A, " a"});
    FEEDS(t, SMOE_DETOKENIZE_RENDER_SPECIAL, "", {1, "<s>"}, {P_SP_A, " a"}, {2, "</s>"});
    smoe_tokenizer_free(t);
}

static void test_detok_errors_and_reset(void **state) {
    (void)state;
    smoe_tokenizer   *t = make_tok();
    smoe_detokenizer *d;
    const char       *text;
    size_t            len;
    assert_int_equal(smoe_detokenizer_init(t, 1u << 9, &d), SMOE_ERR_INVALID_ARGUMENT);
    assert_null(d);
    assert_int_equal(smoe_detokenizer_init(NULL, 0, &d), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_detokenizer_init(t, 0, &d), SMOE_OK);
    assert_int_equal(smoe_detokenizer_feed(d, BYTE(0xC3), &text, &len), SMOE_OK);
    /* an id out of range leaves the state as it was */
    assert_int_equal(smoe_detokenizer_feed(d, N_VOCAB, &text, &len), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_detokenizer_feed(d, -1, &text, &len), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_detokenizer_feed(d, BYTE(0xA9), &text, &len), SMOE_OK);
    assert_string_equal(text, "\xC3\xA9");
    /* flush ends the text: the next one starts fresh (leading space dropped again) */
    assert_int_equal(smoe_detokenizer_flush(d, &text, &len), SMOE_OK);
    assert_int_equal(len, 0);
    assert_int_equal(smoe_detokenizer_feed(d, P_SP_A, &text, &len), SMOE_OK);
    assert_string_equal(text, "a");
    smoe_detokenizer_free(d);
    smoe_detokenizer_free(NULL);
    smoe_tokenizer_free(NULL);
    smoe_tokenizer_free(t);
}

/* ---- GGUF vocabularies ---- */

enum {
    BAD_NONE = 0,
    BAD_NO_MODEL,
    BAD_MODEL_GPT2,
    BAD_NO_TOKENS,
    BAD_NO_SCORES,
    BAD_NO_TYPES,
    BAD_SCORES_SHORT,
    BAD_TYPES_LONG,
    BAD_SCORES_I32,
    BAD_TOKENS_U32,
    BAD_TYPE_VALUE,
    BAD_UNK_NOT_UNKNOWN,
    BAD_BYTE_PIECE,
    BAD_BOS_RANGE,
    LLAMACPP_UNK, /* not bad: <unk> typed CONTROL and no unknown_token_id key, as llama.cpp writes */
    N_BAD
};

static const char *tmp_path(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/smoe-test-tok-%d-%s.gguf", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid(),
             name);
    return buf;
}

static void write_vocab(const char *path, int bad) {
    build_vocab_arrays();
    smoe_gguf_writer *w;
    assert_int_equal(smoe_gguf_writer_open(path, &w), SMOE_OK);
    if (bad != BAD_NO_MODEL)
        assert_int_equal(smoe_gguf_writer_set_str(w, "tokenizer.ggml.model", bad == BAD_MODEL_GPT2 ? "gpt2" : "llama"),
                         SMOE_OK);
    static int32_t ty[N_VOCAB + 1];
    memcpy(ty, types, sizeof(types));
    ty[N_VOCAB] = 1;
    if (bad == BAD_TYPE_VALUE) ty[P_C] = 9;
    if (bad == BAD_UNK_NOT_UNKNOWN) ty[0] = 1;
    if (bad == LLAMACPP_UNK) ty[0] = 3;
    const char *pc[N_VOCAB];
    memcpy(pc, pieces, sizeof(pieces));
    if (bad == BAD_BYTE_PIECE) pc[BYTE(5)] = "<0x5>";
    if (bad == BAD_TOKENS_U32)
        assert_int_equal(smoe_gguf_writer_set_arr(w, "tokenizer.ggml.tokens", SMOE_GGUF_UINT32, ty, N_VOCAB), SMOE_OK);
    else if (bad != BAD_NO_TOKENS)
        assert_int_equal(smoe_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", pc, N_VOCAB), SMOE_OK);
    if (bad == BAD_SCORES_I32)
        assert_int_equal(smoe_gguf_writer_set_arr(w, "tokenizer.ggml.scores", SMOE_GGUF_INT32, ty, N_VOCAB), SMOE_OK);
    else if (bad != BAD_NO_SCORES)
        assert_int_equal(smoe_gguf_writer_set_arr(w, "tokenizer.ggml.scores", SMOE_GGUF_FLOAT32, scores,
                                                  bad == BAD_SCORES_SHORT ? N_VOCAB - 1 : N_VOCAB),
                         SMOE_OK);
    if (bad != BAD_NO_TYPES)
        assert_int_equal(smoe_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", SMOE_GGUF_INT32, ty,
                                                  bad == BAD_TYPES_LONG ? N_VOCAB + 1 : N_VOCAB),
                         SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_i32(w, "tokenizer.ggml.bos_token_id", bad == BAD_BOS_RANGE ? -5 : 1), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2), SMOE_OK);
    if (bad != LLAMACPP_UNK) assert_int_equal(smoe_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", true), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_set_str(w, "tokenizer.chat_template", "{{ bos_token }}"), SMOE_OK);
    assert_int_equal(smoe_gguf_writer_finish(w), SMOE_OK);
}

static void test_gguf_vocab(void **state) {
    (void)state;
    char path[512];
    tmp_path(path, sizeof(path), "good");
    write_vocab(path, BAD_NONE);
    smoe_tokenizer *t = NULL;
    assert_int_equal(smoe_tokenizer_load_gguf(path, &t), SMOE_OK);
    assert_int_equal(smoe_tokenizer_n_vocab(t), N_VOCAB);
    assert_int_equal(smoe_tokenizer_bos(t), 1);
    assert_int_equal(smoe_tokenizer_eos(t), 2);
    assert_int_equal(smoe_tokenizer_unk(t), 0);
    assert_int_equal(smoe_tokenizer_default_flags(t), SMOE_TOKENIZE_ADD_EOS); /* from the file's add_*_token */
    assert_string_equal(smoe_tokenizer_chat_template(t), "{{ bos_token }}");
    EXPECT(t, "abc", 0, P_SP_AB, P_C);
    smoe_tokenizer_free(t);
    unlink(path);

    /* llama.cpp's typing of <unk>: still the unknown token (decoded " \u2047 ", not invisible) */
    tmp_path(path, sizeof(path), "llamacpp");
    write_vocab(path, LLAMACPP_UNK);
    assert_int_equal(smoe_tokenizer_load_gguf(path, &t), SMOE_OK);
    assert_int_equal(smoe_tokenizer_unk(t), 0);
    assert_int_equal(smoe_token_get_type(t, 0), SMOE_TOKEN_TYPE_UNKNOWN);
    EXPECT(t, "\xE2\x82\xAC", 0, P_SP, BYTE(0xE2), BYTE(0x82), BYTE(0xAC));
    {
        const int32_t unk = 0;
        char          buf[16];
        size_t        n;
        assert_int_equal(smoe_detokenize(t, &unk, 1, buf, sizeof(buf), &n, 0), SMOE_OK);
        assert_string_equal(buf, " \xE2\x81\x87 ");
    }
    smoe_tokenizer_free(t);
    unlink(path);

    static const struct {
        int         bad;
        smoe_status want;
        const char *msg; /* a part of the error message */
    } cases[] = {
        {BAD_NO_MODEL, SMOE_ERR_CORRUPT_FILE, "tokenizer.ggml.model"},
        {BAD_MODEL_GPT2, SMOE_ERR_UNSUPPORTED, "gpt2"},
        {BAD_NO_TOKENS, SMOE_ERR_CORRUPT_FILE, "missing key tokenizer.ggml.tokens"},
        {BAD_NO_SCORES, SMOE_ERR_CORRUPT_FILE, "missing key tokenizer.ggml.scores"},
        {BAD_NO_TYPES, SMOE_ERR_CORRUPT_FILE, "missing key tokenizer.ggml.token_type"},
        {BAD_SCORES_SHORT, SMOE_ERR_CORRUPT_FILE, "tokenizer.ggml.scores has 269 elements"},
        {BAD_TYPES_LONG, SMOE_ERR_CORRUPT_FILE, "tokenizer.ggml.token_type has 271 elements"},
        {BAD_SCORES_I32, SMOE_ERR_CORRUPT_FILE, "expected f32"},
        {BAD_TOKENS_U32, SMOE_ERR_CORRUPT_FILE, "expected strings"},
        {BAD_TYPE_VALUE, SMOE_ERR_CORRUPT_FILE, "invalid token type 9"},
        {BAD_UNK_NOT_UNKNOWN, SMOE_ERR_CORRUPT_FILE, "not of type UNKNOWN"},
        {BAD_BYTE_PIECE, SMOE_ERR_CORRUPT_FILE, "expected <0xNN>"},
        {BAD_BOS_RANGE, SMOE_ERR_CORRUPT_FILE, "BOS id -5"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "bad%d", cases[i].bad);
        tmp_path(path, sizeof(path), name);
        write_vocab(path, cases[i].bad);
        t                = (smoe_tokenizer *)1;
        smoe_status st   = smoe_tokenizer_load_gguf(path, &t);
        const char *err  = smoe_last_error();
        bool        good = st == cases[i].want && strstr(err, cases[i].msg) && strstr(err, path);
        if (!good) fprintf(stderr, "case %d: status %d, message '%s'\n", cases[i].bad, st, err);
        assert_true(good);
        assert_null(t);
        unlink(path);
    }
    assert_int_equal(smoe_tokenizer_load_gguf("/nonexistent/x.gguf", &t), SMOE_ERR_IO);
}

/* ---- chat ---- */

static void test_chat_validation(void **state) {
    (void)state;
    smoe_tokenizer *t = make_tok();
    size_t          n;
    int32_t         ids[256];
    const smoe_chat_message two_users[] = {{"user", "a"}, {"user", "b"}};
    assert_int_equal(smoe_chat_tokenize(t, two_users, 2, ids, 256, &n), SMOE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(smoe_last_error(), "alternate"));
    const smoe_chat_message assistant_first[] = {{"system", "s"}, {"assistant", "a"}, {"user", "b"}};
    assert_int_equal(smoe_chat_tokenize(t, assistant_first, 3, ids, 256, &n), SMOE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(smoe_last_error(), "message 1"));
    const smoe_chat_message bad_role[] = {{"tool", "a"}};
    assert_int_equal(smoe_chat_tokenize(t, bad_role, 1, ids, 256, &n), SMOE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(smoe_last_error(), "'tool'"));
    const smoe_chat_message empty_reply[] = {{"user", "a"}, {"assistant", ""}};
    assert_int_equal(smoe_chat_tokenize(t, empty_reply, 2, ids, 256, &n), SMOE_ERR_INVALID_ARGUMENT);
    const smoe_chat_message bad_text[] = {{"user", "a\xFF"}};
    assert_int_equal(smoe_chat_tokenize(t, bad_text, 1, ids, 256, &n), SMOE_ERR_INVALID_TEXT);
    assert_int_equal(smoe_chat_tokenize(t, NULL, 0, ids, 256, &n), SMOE_ERR_INVALID_ARGUMENT);

    /* [INST] and [/INST] are plain text: BOS, then the ids of "[INST] a [/INST]" in one piece */
    const smoe_chat_message one[] = {{"user", "a"}};
    assert_int_equal(smoe_chat_tokenize(t, one, 1, NULL, 0, &n), SMOE_ERR_BUFFER_TOO_SMALL);
    size_t need = n;
    assert_int_equal(smoe_chat_tokenize(t, one, 1, ids, 256, &n), SMOE_OK);
    assert_int_equal(n, need);
    int32_t ref[64];
    size_t  nref;
    assert_int_equal(smoe_tokenize(t, "[INST] a [/INST]", 16, ref, 64, &nref, SMOE_TOKENIZE_ADD_BOS), SMOE_OK);
    assert_int_equal(n, nref);
    assert_memory_equal(ids, ref, n * sizeof(*ids));

    /* the text form */
    char buf[128];
    const smoe_chat_message conv[] = {{"user", "hi"}, {"assistant", "yo"}, {"user", "ok?"}};
    assert_int_equal(smoe_chat_format(t, conv, 3, buf, sizeof(buf), &n), SMOE_OK);
    assert_string_equal(buf, "<s>[INST] hi [/INST]yo</s>[INST] ok? [/INST]");
    assert_int_equal(n, strlen(buf));
    assert_int_equal(smoe_chat_format(t, conv, 3, buf, n, &n), SMOE_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(smoe_chat_format(t, assistant_first, 3, buf, sizeof(buf), &n), SMOE_ERR_INVALID_ARGUMENT);
    smoe_tokenizer_free(t);
}

/* ---- the .model reader on hand-made protobuf ---- */

static size_t put_piece(uint8_t *p, const char *s, float score, int type) {
    size_t n = strlen(s), o = 0;
    p[o++]   = 0x0A; /* field 1 (pieces), LEN */
    p[o++]   = (uint8_t)(2 + n + 5 + 2);
    p[o++]   = 0x0A; /* piece */
    p[o++]   = (uint8_t)n;
    memcpy(p + o, s, n);
    o += n;
    p[o++] = 0x15; /* score, I32 */
    memcpy(p + o, &score, 4);
    o += 4;
    p[o++] = 0x18; /* type, VARINT */
    p[o++] = (uint8_t)type;
    return o;
}

static size_t make_model(uint8_t *p, int model_type) {
    size_t o = 0;
    o += put_piece(p + o, "<unk>", 0, 2);
    o += put_piece(p + o, "<s>", 0, 3);
    o += put_piece(p + o, "</s>", 0, 3);
    o += put_piece(p + o, "\xE2\x96\x81", -1, 1);
    o += put_piece(p + o, "a", -2, 1);
    o += put_piece(p + o, "\xE2\x96\x81" "a", -3, 1);
    if (model_type) {
        p[o++] = 0x12; /* trainer_spec */
        p[o++] = 2;
        p[o++] = 0x18; /* model_type */
        p[o++] = (uint8_t)model_type;
    }
    p[o++] = 0x1A; /* normalizer_spec { add_dummy_prefix: 1 } and the other fields at their defaults */
    p[o++] = 2;
    p[o++] = 0x18;
    p[o++] = 1;
    return o;
}

static void test_spm_reader(void **state) {
    (void)state;
    uint8_t         buf[256];
    size_t          n = make_model(buf, 2);
    smoe_spm_vocab *v = NULL;
    assert_int_equal(smoe_spm_parse(buf, n, &v), SMOE_OK);
    assert_int_equal(v->n_vocab, 6);
    assert_int_equal(v->unk_id, 0);
    assert_int_equal(v->bos_id, 1);
    assert_int_equal(v->eos_id, 2);
    assert_int_equal(v->pad_id, -1);
    assert_true(v->add_dummy_prefix);
    assert_true(v->remove_extra_whitespaces); /* the proto2 default */
    assert_false(v->byte_fallback);
    assert_string_equal(v->pieces[5], "\xE2\x96\x81" "a");
    assert_true(v->scores[4] == -2.0f);
    smoe_tokenizer *t;
    assert_int_equal(smoe_spm_to_tokenizer(v, &t), SMOE_OK);
    /* remove_extra_whitespaces: "  a  " -> "▁a"; without byte fallback "b" and "c" are one <unk> */
    EXPECT(t, "  a  ", 0, 5);
    EXPECT(t, "a bc", 0, 5, 3, 0);
    smoe_tokenizer_free(t);
    smoe_spm_free(v);

    /* every truncation is corrupt (or, cut between fields, a valid prefix with fewer pieces) and never crashes */
    for (size_t k = 0; k < n; k++) {
        smoe_status st = smoe_spm_parse(buf, k, &v);
        assert_true(st == SMOE_ERR_CORRUPT_FILE || st == SMOE_ERR_UNSUPPORTED || st == SMOE_OK);
        smoe_spm_free(v);
    }
    assert_int_equal(smoe_spm_parse(buf, 7, &v), SMOE_ERR_CORRUPT_FILE);
    assert_non_null(strstr(smoe_last_error(), "past the end"));
    /* no trainer_spec: model_type defaults to UNIGRAM */
    n = make_model(buf, 0);
    assert_int_equal(smoe_spm_parse(buf, n, &v), SMOE_ERR_UNSUPPORTED);
    assert_non_null(strstr(smoe_last_error(), "UNIGRAM"));
    /* a group (wire type 3) */
    n          = make_model(buf, 2);
    buf[n++]   = 0x23;
    assert_int_equal(smoe_spm_parse(buf, n, &v), SMOE_ERR_CORRUPT_FILE);
    /* a length far past the end */
    const uint8_t huge[] = {0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F};
    assert_int_equal(smoe_spm_parse(huge, sizeof(huge), &v), SMOE_ERR_CORRUPT_FILE);
    /* an 11-byte varint */
    const uint8_t longv[] = {0x20, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    assert_int_equal(smoe_spm_parse(longv, sizeof(longv), &v), SMOE_ERR_CORRUPT_FILE);
    assert_int_equal(smoe_spm_load("/nonexistent/tokenizer.model", &v), SMOE_ERR_IO);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merges),
        cmocka_unit_test(test_flags_and_special),
        cmocka_unit_test(test_buffer_too_small),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_detok_stream),
        cmocka_unit_test(test_detok_errors_and_reset),
        cmocka_unit_test(test_gguf_vocab),
        cmocka_unit_test(test_chat_validation),
        cmocka_unit_test(test_spm_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
