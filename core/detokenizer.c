/*
 * detokenizer.c - token ids to text, streamed, with the output of sentencepiece's Decode:
 * - a run of byte tokens is decoded as UTF-8 one character at a time; a byte that does not start a valid character
 *   (bad lead byte, bad continuation, overlong, surrogate, > U+10FFFF, or cut off by the end of the run) becomes
 *   U+FFFD and decoding resumes at the next byte;
 * - a control token is "" (or its piece with SMOE_DETOKENIZE_RENDER_SPECIAL), the unknown token " \u2047 ";
 * - other pieces have U+2581 replaced by ' '. While nothing has been output yet and no leading-space piece was seen,
 *   a piece's leading U+2581 is dropped (the dummy prefix the encoder added); with remove_extra_whitespaces every
 *   such leading U+2581 is dropped until some text appears.
 * Streaming: a byte run is held only while its next character is incomplete and could still become valid; the text
 * of every call is final. The concatenation of all output equals the decode of the whole sequence.
 */
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

static const char k_space[]       = "\xE2\x96\x81"; /* U+2581 */
static const char k_replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
static const char k_unk_surface[] = " \xE2\x81\x87 "; /* sentencepiece's default unk_surface " ⁇ " */

struct smoe_detokenizer {
    const smoe_tokenizer *tok;
    uint32_t              flags;
    uint8_t               pending[4]; /* bytes of an incomplete character (at most 3 are ever held) */
    int                   n_pending;
    bool                  is_bos_ws;   /* a leading U+2581 may still be dropped */
    bool                  bos_ws_seen; /* the previous piece had its leading U+2581 dropped */
    bool                  any_text;    /* some text was output since the start */
    char                 *buf;         /* output of the current call, NUL-terminated */
    size_t                len, cap;
};

static void det_reset(smoe_detokenizer *d) {
    d->n_pending   = 0;
    d->is_bos_ws   = !(d->flags & SMOE_DETOKENIZE_KEEP_LEADING_SPACE);
    d->bos_ws_seen = false;
    d->any_text    = false;
}

static smoe_status put(smoe_detokenizer *d, const char *s, size_t n) {
    if (d->len + n + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 64;
        while (cap < d->len + n + 1) cap *= 2;
        char *b = realloc(d->buf, cap);
        SMOE_RETURN_IF(!b, SMOE_ERR_OUT_OF_MEMORY, "detokenizer: out of memory");
        d->buf = b;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, s, n);
    d->len += n;
    d->buf[d->len] = '\0';
    if (n) d->any_text = true;
    return SMOE_OK;
}

/* Bytes needed by a character with this lead byte under sentencepiece's DecodeUTF8 masks (0: never valid). */
static int lead_need(uint8_t c) {
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return 4;
    return 0;
}

/* Can p[0..n) (n < need) still be completed to a valid character? */
static bool could_complete(const uint8_t *p, int n) {
    uint8_t c = p[0];
    if (c == 0xC0 || c == 0xC1 || c >= 0xF5) return false; /* overlong / beyond U+10FFFF whatever follows */
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return false;
    if (n >= 2) {
        if (c == 0xE0 && p[1] < 0xA0) return false;
        if (c == 0xED && p[1] >= 0xA0) return false;
        if (c == 0xF0 && p[1] < 0x90) return false;
        if (c == 0xF4 && p[1] >= 0x90) return false;
    }
    return true;
}

/* Is p[0..need) a valid character (need = lead_need(p[0]) > 1)? */
static bool valid_char(const uint8_t *p, int need) {
    for (int i = 1; i < need; i++)
        if ((p[i] & 0xC0) != 0x80) return false;
    uint32_t cp;
    if (need == 2) {
        cp = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
        return cp >= 0x80;
    }
    if (need == 3) {
        cp = ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        return cp >= 0x800 && !(cp >= 0xD800 && cp < 0xE000);
    }
    cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6) |
         (p[3] & 0x3F);
    return cp >= 0x10000 && cp <= 0x10FFFF;
}

/* Outputs every pending character that is decided; with `end` (the byte run ended) all of them. */
static smoe_status drain(smoe_detokenizer *d, bool end) {
    while (d->n_pending > 0) {
        int need = lead_need(d->pending[0]);
        int take; /* bytes output as they are; 0 = one byte becomes U+FFFD */
        if (need == 1) {
            take = 1;
        } else if (need == 0) {
            take = 0;
        } else if (d->n_pending < need) {
            if (!end && could_complete(d->pending, d->n_pending)) return SMOE_OK; /* wait for more bytes */
            take = 0;
        } else {
            take = valid_char(d->pending, need) ? need : 0;
        }
        if (take)
            SMOE_TRY(put(d, (const char *)d->pending, (size_t)take));
        else
            SMOE_TRY(put(d, k_replacement, 3));
        int used = take ? take : 1;
        memmove(d->pending, d->pending + used, (size_t)(d->n_pending - used));
        d->n_pending -= used;
    }
    return SMOE_OK;
}

/* A non-byte piece (sentencepiece's DecodeSentencePiece). */
static smoe_status put_piece(smoe_detokenizer *d, int32_t id) {
    const smoe_tokenizer *t = d->tok;
    if (d->bos_ws_seen || d->any_text) d->is_bos_ws = false;
    int         ty = t->types[id];
    const char *p  = t->pieces[id];
    size_t      n  = t->piece_lens[id];
    if (ty == SMOE_TOK_CONTROL) {
        d->bos_ws_seen = false;
        return (d->flags & SMOE_DETOKENIZE_RENDER_SPECIAL) ? put(d, p, n) : SMOE_OK;
    }
    if (ty == SMOE_TOK_UNKNOWN) {
        d->bos_ws_seen = false;
        return put(d, k_unk_surface, sizeof(k_unk_surface) - 1);
    }
    bool has_bos_ws = false;
    if (d->is_bos_ws && (t->add_dummy_prefix || t->remove_extra_whitespaces) && n >= 3 && !memcmp(p, k_space, 3)) {
        p += 3;
        n -= 3;
        has_bos_ws = !t->remove_extra_whitespaces;
    }
    d->bos_ws_seen = has_bos_ws;
    size_t run     = 0; /* copy runs between spaces */
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && !memcmp(p + i, k_space, 3)) {
            SMOE_TRY(put(d, p + run, i - run));
            SMOE_TRY(put(d, " ", 1));
            i += 3;
            run = i;
        } else {
            i++;
        }
    }
    return put(d, p + run, n - run);
}

smoe_status smoe_detokenizer_init(const smoe_tokenizer *tok, uint32_t flags, smoe_detokenizer **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "smoe_detokenizer_init: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!tok, SMOE_ERR_INVALID_ARGUMENT, "smoe_detokenizer_init: tok is NULL");
    SMOE_RETURN_IF(flags & ~(SMOE_DETOKENIZE_KEEP_LEADING_SPACE | SMOE_DETOKENIZE_RENDER_SPECIAL),
                   SMOE_ERR_INVALID_ARGUMENT, "smoe_detokenizer_init: unknown flags 0x%x", flags);
    smoe_detokenizer *d = calloc(1, sizeof(*d));
    SMOE_RETURN_IF(!d, SMOE_ERR_OUT_OF_MEMORY, "detokenizer: out of memory");
    d->tok   = tok;
    d->flags = flags;
    det_reset(d);
    /* reserve the output buffer up front so that feeding rarely allocates */
    if (put(d, "", 0) != SMOE_OK) {
        free(d);
        return SMOE_ERR_OUT_OF_MEMORY;
    }
    *out = d;
    return SMOE_OK;
}

smoe_status smoe_detokenizer_feed(smoe_detokenizer *d, int32_t id, const char **text, size_t *len) {
    SMOE_RETURN_IF(!d || !text || !len, SMOE_ERR_INVALID_ARGUMENT, "smoe_detokenizer_feed: NULL argument");
    *text = "";
    *len  = 0;
    SMOE_RETURN_IF(id < 0 || id >= d->tok->n_vocab, SMOE_ERR_INVALID_ARGUMENT,
                   "smoe_detokenizer_feed: token id %d out of range [0, %d)", id, d->tok->n_vocab);
    d->len    = 0;
    d->buf[0] = '\0';
    smoe_status st;
    if (d->tok->types[id] == SMOE_TOK_BYTE) {
        /* byte tokens were checked to be <0xNN> when the tokenizer was built */
        const char *p = d->tok->pieces[id];
        int         v = 0;
        for (int i = 3; i < 5; i++) v = v * 16 + (p[i] <= '9' ? p[i] - '0' : p[i] - 'A' + 10);
        d->pending[d->n_pending++] = (uint8_t)v;
        st                         = drain(d, false);
    } else {
        st = drain(d, true);
        if (st == SMOE_OK) st = put_piece(d, id);
    }
    if (st != SMOE_OK) return st;
    *text = d->buf;
    *len  = d->len;
    return SMOE_OK;
}

smoe_status smoe_detokenizer_flush(smoe_detokenizer *d, const char **text, size_t *len) {
    SMOE_RETURN_IF(!d || !text || !len, SMOE_ERR_INVALID_ARGUMENT, "smoe_detokenizer_flush: NULL argument");
    *text     = "";
    *len      = 0;
    d->len    = 0;
    d->buf[0] = '\0';
    SMOE_TRY(drain(d, true));
    det_reset(d);
    *text = d->buf;
    *len  = d->len;
    return SMOE_OK;
}

void smoe_detokenizer_free(smoe_detokenizer *d) {
    if (!d) return;
    free(d->buf);
    free(d);
}

smoe_status smoe_detokenize(const smoe_tokenizer *tok, const int32_t *ids, size_t n, char *buf, size_t cap,
                            size_t *n_out, uint32_t flags) {
    SMOE_RETURN_IF(!n_out, SMOE_ERR_INVALID_ARGUMENT, "smoe_detokenize: n_out is NULL");
    *n_out = 0;
    SMOE_RETURN_IF(!ids && n, SMOE_ERR_INVALID_ARGUMENT, "smoe_detokenize: ids is NULL");
    SMOE_RETURN_IF(!buf && cap, SMOE_ERR_INVALID_ARGUMENT, "smoe_detokenize: buf is NULL but cap is %zu", cap);
    smoe_detokenizer *d;
    SMOE_TRY(smoe_detokenizer_init(tok, flags, &d));
    char       *acc = NULL; /* the whole text */
    size_t      acc_len = 0, acc_cap = 0;
    smoe_status st      = SMOE_OK;
    for (size_t i = 0; i <= n && st == SMOE_OK; i++) {
        const char *piece;
        size_t      len;
        st = i < n ? smoe_detokenizer_feed(d, ids[i], &piece, &len) : smoe_detokenizer_flush(d, &piece, &len);
        if (st != SMOE_OK) break;
        if (acc_len + len + 1 > acc_cap) {
            size_t cap2 = acc_cap ? acc_cap : 256;
            while (cap2 < acc_len + len + 1) cap2 *= 2;
            char *a = realloc(acc, cap2);
            if (!a) {
                st = smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "smoe_detokenize: out of memory");
                break;
            }
            acc     = a;
            acc_cap = cap2;
        }
        memcpy(acc + acc_len, piece, len);
        acc_len += len;
    }
    if (st == SMOE_OK) {
        *n_out = acc_len;
        if (acc_len + 1 > cap) {
            st = smoe_set_error(SMOE_ERR_BUFFER_TOO_SMALL, "smoe_detokenize: %zu bytes of text (+1 NUL) do not fit in %zu",
                                acc_len, cap);
        } else {
            if (acc_len) memcpy(buf, acc, acc_len);
            buf[acc_len] = '\0';
        }
    }
    free(acc);
    smoe_detokenizer_free(d);
    return st;
}
