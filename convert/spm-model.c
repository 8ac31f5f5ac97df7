/*
 * spm-model.c - a bounds-checked protobuf wire-format reader for SentencePiece's ModelProto (sentencepiece_model.proto):
 *
 *   ModelProto     { repeated SentencePiece pieces = 1; TrainerSpec trainer_spec = 2;
 *                    NormalizerSpec normalizer_spec = 3; NormalizerSpec denormalizer_spec = 5; }
 *   SentencePiece  { string piece = 1; float score = 2; Type type = 3 [default = NORMAL]; }
 *   TrainerSpec    { ModelType model_type = 3 [default = UNIGRAM]; bool treat_whitespace_as_suffix = 24;
 *                    bool byte_fallback = 35; string unk_piece = 45 [default = "<unk>"];
 *                    string bos_piece = 46 [default = "<s>"]; string eos_piece = 47 [default = "</s>"];
 *                    string pad_piece = 48 [default = "<pad>"]; ... }
 *   NormalizerSpec { string name = 1; bytes precompiled_charsmap = 2; bool add_dummy_prefix = 3 [default = true];
 *                    bool remove_extra_whitespaces = 4 [default = true]; bool escape_whitespaces = 5 [default = true]; }
 *
 * Wire format: each field is a varint key (field_number << 3 | wire_type); wire types 0 varint, 1 fixed64,
 * 2 length-delimited, 5 fixed32 (3/4, groups, are rejected). Scalars that appear twice take the last value and
 * messages that appear twice are merged, as protobuf parsers do. Every length is checked against the bytes left.
 */
#include "spm-model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPM_MAX_FILE  ((size_t)256 << 20)
#define SPM_MAX_PIECE 4096

typedef struct pb {
    const uint8_t *p, *end;
} pb;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static smoe_status pb_varint(pb *b, uint64_t *out, const char *what) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        SMOE_RETURN_IF(b->p >= b->end, SMOE_ERR_CORRUPT_FILE, "%s: truncated varint", what);
        uint8_t c = *b->p++;
        if (shift == 63 && (c & 0x7E)) break; /* more than 64 bits */
        v |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return SMOE_OK;
        }
    }
    return smoe_set_error(SMOE_ERR_CORRUPT_FILE, "%s: varint longer than 64 bits", what);
}

static smoe_status pb_key(pb *b, uint32_t *field, uint32_t *wt, const char *what) {
    uint64_t k;
    SMOE_TRY(pb_varint(b, &k, what));
    SMOE_RETURN_IF((k >> 3) == 0 || (k >> 3) > 0x1FFFFFFF, SMOE_ERR_CORRUPT_FILE, "%s: invalid field number %" PRIu64,
                   what, k >> 3);
    *field = (uint32_t)(k >> 3);
    *wt    = (uint32_t)(k & 7);
    return SMOE_OK;
}

/* A length-delimited value as a sub-reader. */
static smoe_status pb_len(pb *b, pb *sub, const char *what) {
    uint64_t n;
    SMOE_TRY(pb_varint(b, &n, what));
    SMOE_RETURN_IF(n > (uint64_t)(b->end - b->p), SMOE_ERR_CORRUPT_FILE,
                   "%s: length %" PRIu64 " past the end of its message (%zu bytes left)", what, n,
                   (size_t)(b->end - b->p));
    sub->p   = b->p;
    sub->end = b->p + n;
    b->p += n;
    return SMOE_OK;
}

static smoe_status pb_skip(pb *b, uint32_t wt, uint32_t field, const char *what) {
    uint64_t v;
    pb       sub;
    switch (wt) {
    case WT_VARINT: return pb_varint(b, &v, what);
    case WT_LEN: return pb_len(b, &sub, what);
    case WT_I64:
    case WT_I32: {
        size_t n = wt == WT_I64 ? 8 : 4;
        SMOE_RETURN_IF((size_t)(b->end - b->p) < n, SMOE_ERR_CORRUPT_FILE, "%s: truncated field %u", what, field);
        b->p += n;
        return SMOE_OK;
    }
    default:
        return smoe_set_error(SMOE_ERR_CORRUPT_FILE, "%s: field %u has unsupported wire type %u", what, field, wt);
    }
}

static smoe_status pb_expect(uint32_t wt, uint32_t want, uint32_t field, const char *what) {
    SMOE_RETURN_IF(wt != want, SMOE_ERR_CORRUPT_FILE, "%s: field %u has wire type %u, expected %u", what, field, wt,
                   want);
    return SMOE_OK;
}

/* ---- parsed model ---- */

typedef struct spm_string {
    const uint8_t *s;
    size_t         n;
} spm_string;

typedef struct spm_parsed {
    /* pieces */
    spm_string *piece;
    float      *score;
    int32_t    *type;
    size_t      n, cap;
    /* trainer_spec */
    uint64_t   model_type;
    bool       byte_fallback, ws_suffix;
    spm_string unk_piece, bos_piece, eos_piece, pad_piece;
    /* normalizer_spec / denormalizer_spec */
    bool       add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    spm_string norm_name;
    size_t     norm_charsmap, denorm_charsmap;
} spm_parsed;

static spm_string str_lit(const char *s) { return (spm_string){(const uint8_t *)s, strlen(s)}; }

static smoe_status parse_piece(pb *b, spm_parsed *m) {
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        void  *a   = realloc(m->piece, cap * sizeof(*m->piece));
        if (a) m->piece = a;
        void *c = a ? realloc(m->score, cap * sizeof(*m->score)) : NULL;
        if (c) m->score = c;
        void *d = c ? realloc(m->type, cap * sizeof(*m->type)) : NULL;
        if (d) m->type = d;
        SMOE_RETURN_IF(!d, SMOE_ERR_OUT_OF_MEMORY, "out of memory for %zu pieces", cap);
        m->cap = cap;
    }
    spm_string piece = {NULL, 0};
    float      score = 0.0f;
    int32_t    type  = SMOE_TOK_NORMAL;
    while (b->p < b->end) {
        uint32_t f = 0, wt = 0;
        SMOE_TRY(pb_key(b, &f, &wt, "piece"));
        if (f == 1) {
            pb s;
            SMOE_TRY(pb_expect(wt, WT_LEN, f, "piece"));
            SMOE_TRY(pb_len(b, &s, "piece"));
            piece = (spm_string){s.p, (size_t)(s.end - s.p)};
        } else if (f == 2) {
            SMOE_TRY(pb_expect(wt, WT_I32, f, "piece score"));
            SMOE_RETURN_IF(b->end - b->p < 4, SMOE_ERR_CORRUPT_FILE, "piece %zu: truncated score", m->n);
            uint32_t u = (uint32_t)b->p[0] | (uint32_t)b->p[1] << 8 | (uint32_t)b->p[2] << 16 | (uint32_t)b->p[3] << 24;
            memcpy(&score, &u, 4);
            b->p += 4;
        } else if (f == 3) {
            uint64_t v;
            SMOE_TRY(pb_expect(wt, WT_VARINT, f, "piece type"));
            SMOE_TRY(pb_varint(b, &v, "piece type"));
            type = (int32_t)v;
        } else {
            SMOE_TRY(pb_skip(b, wt, f, "piece"));
        }
    }
    m->piece[m->n] = piece;
    m->score[m->n] = score;
    m->type[m->n]  = type;
    m->n++;
    return SMOE_OK;
}

static smoe_status parse_trainer(pb *b, spm_parsed *m) {
    while (b->p < b->end) {
        uint32_t f = 0, wt = 0;
        uint64_t v;
        pb       s;
        SMOE_TRY(pb_key(b, &f, &wt, "trainer_spec"));
        switch (f) {
        case 3:
        case 24:
        case 35:
            SMOE_TRY(pb_expect(wt, WT_VARINT, f, "trainer_spec"));
            SMOE_TRY(pb_varint(b, &v, "trainer_spec"));
            if (f == 3) m->model_type = v;
            if (f == 24) m->ws_suffix = v != 0;
            if (f == 35) m->byte_fallback = v != 0;
            break;
        case 45:
        case 46:
        case 47:
        case 48: {
            SMOE_TRY(pb_expect(wt, WT_LEN, f, "trainer_spec"));
            SMOE_TRY(pb_len(b, &s, "trainer_spec"));
            spm_string str = {s.p, (size_t)(s.end - s.p)};
            if (f == 45) m->unk_piece = str;
            if (f == 46) m->bos_piece = str;
            if (f == 47) m->eos_piece = str;
            if (f == 48) m->pad_piece = str;
            break;
        }
        default: SMOE_TRY(pb_skip(b, wt, f, "trainer_spec"));
        }
    }
    return SMOE_OK;
}

static smoe_status parse_normalizer(pb *b, spm_parsed *m, bool denorm) {
    const char *what = denorm ? "denormalizer_spec" : "normalizer_spec";
    while (b->p < b->end) {
        uint32_t f = 0, wt = 0;
        uint64_t v;
        pb       s;
        SMOE_TRY(pb_key(b, &f, &wt, what));
        if (f == 1 || f == 2) {
            SMOE_TRY(pb_expect(wt, WT_LEN, f, what));
            SMOE_TRY(pb_len(b, &s, what));
            size_t n = (size_t)(s.end - s.p);
            if (f == 2) {
                if (denorm)
                    m->denorm_charsmap = n;
                else
                    m->norm_charsmap = n;
            } else if (!denorm) {
                m->norm_name = (spm_string){s.p, n};
            }
        } else if (!denorm && f >= 3 && f <= 5) {
            SMOE_TRY(pb_expect(wt, WT_VARINT, f, what));
            SMOE_TRY(pb_varint(b, &v, what));
            if (f == 3) m->add_dummy_prefix = v != 0;
            if (f == 4) m->remove_extra_whitespaces = v != 0;
            if (f == 5) m->escape_whitespaces = v != 0;
        } else {
            SMOE_TRY(pb_skip(b, wt, f, what));
        }
    }
    return SMOE_OK;
}

static smoe_status parse_model(const uint8_t *data, size_t size, spm_parsed *m) {
    pb b = {data, data + size};
    while (b.p < b.end) {
        uint32_t f = 0, wt = 0;
        pb       s;
        SMOE_TRY(pb_key(&b, &f, &wt, "ModelProto"));
        if (f == 1 || f == 2 || f == 3 || f == 5) {
            SMOE_TRY(pb_expect(wt, WT_LEN, f, "ModelProto"));
            SMOE_TRY(pb_len(&b, &s, "ModelProto"));
            if (f == 1) {
                SMOE_RETURN_IF(m->n >= SMOE_TOKENIZER_MAX_VOCAB, SMOE_ERR_CORRUPT_FILE, "more than %d pieces",
                               SMOE_TOKENIZER_MAX_VOCAB);
                SMOE_TRY(parse_piece(&s, m));
            }
            if (f == 2) SMOE_TRY(parse_trainer(&s, m));
            if (f == 3) SMOE_TRY(parse_normalizer(&s, m, false));
            if (f == 5) SMOE_TRY(parse_normalizer(&s, m, true));
        } else {
            SMOE_TRY(pb_skip(&b, wt, f, "ModelProto"));
        }
    }
    return SMOE_OK;
}

/* ---- validation as SentencePiece's ModelInterface::InitializePieces ---- */

static int byte_of_piece(spm_string s) {
    if (s.n != 6 || memcmp(s.s, "<0x", 3) != 0 || s.s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        int c = s.s[i], d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static bool str_eq(spm_string a, spm_string b) { return a.n == b.n && (a.n == 0 || memcmp(a.s, b.s, a.n) == 0); }

static bool normal_class(int32_t t) {
    return t == SMOE_TOK_NORMAL || t == SMOE_TOK_USER_DEFINED || t == SMOE_TOK_UNUSED;
}

/* PieceToId over the parsed pieces (linear: used a few times at load). Reserved pieces first. */
static int32_t find_piece(const spm_parsed *m, spm_string s, int32_t unk) {
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < m->n; i++)
            if (normal_class(m->type[i]) == (pass == 1) && str_eq(m->piece[i], s)) return (int32_t)i;
    return unk;
}

static uint64_t hash_str(spm_string s, uint64_t salt) {
    uint64_t h = 0xcbf29ce484222325ull ^ salt;
    for (size_t i = 0; i < s.n; i++) {
        h ^= s.s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static smoe_status validate(const spm_parsed *m, int32_t *unk_out) {
    SMOE_RETURN_IF(m->n == 0, SMOE_ERR_CORRUPT_FILE, "the model has no pieces");
    SMOE_RETURN_IF(m->model_type != 2, SMOE_ERR_UNSUPPORTED,
                   "model_type is %s; only BPE SentencePiece models are supported",
                   m->model_type == 1 ? "UNIGRAM" : m->model_type == 3 ? "WORD" : m->model_type == 4 ? "CHAR" : "?");
    SMOE_RETURN_IF(m->norm_charsmap != 0, SMOE_ERR_UNSUPPORTED,
                   "normalizer '%.*s' has a precompiled character map (e.g. NFKC); only identity normalization is "
                   "supported",
                   (int)(m->norm_name.n < 40 ? m->norm_name.n : 40), (const char *)m->norm_name.s);
    SMOE_RETURN_IF(m->denorm_charsmap != 0, SMOE_ERR_UNSUPPORTED, "denormalizer rules are not supported");
    SMOE_RETURN_IF(!m->escape_whitespaces, SMOE_ERR_UNSUPPORTED, "escape_whitespaces = false is not supported");
    SMOE_RETURN_IF(m->ws_suffix, SMOE_ERR_UNSUPPORTED, "treat_whitespace_as_suffix = true is not supported");

    int32_t unk        = -1;
    bool    bytes[256] = {false};
    for (size_t i = 0; i < m->n; i++) {
        int32_t t = m->type[i];
        SMOE_RETURN_IF(t < SMOE_TOK_NORMAL || t > SMOE_TOK_BYTE, SMOE_ERR_CORRUPT_FILE, "piece %zu: invalid type %d",
                       i, t);
        SMOE_RETURN_IF(m->piece[i].n == 0, SMOE_ERR_CORRUPT_FILE, "piece %zu is empty", i);
        /* sentencepiece would order merges by NaN (undefined behaviour in its priority queue) */
        SMOE_RETURN_IF(isnan(m->score[i]), SMOE_ERR_CORRUPT_FILE, "piece %zu: score is NaN", i);
        SMOE_RETURN_IF(m->piece[i].n > SPM_MAX_PIECE, SMOE_ERR_CORRUPT_FILE, "piece %zu: %zu bytes (limit %d)", i,
                       m->piece[i].n, SPM_MAX_PIECE);
        if (t == SMOE_TOK_UNKNOWN) {
            SMOE_RETURN_IF(unk >= 0, SMOE_ERR_CORRUPT_FILE, "pieces %d and %zu are both of type UNKNOWN", unk, i);
            unk = (int32_t)i;
        }
        if (t == SMOE_TOK_BYTE) {
            SMOE_RETURN_IF(!m->byte_fallback, SMOE_ERR_CORRUPT_FILE,
                           "piece %zu is a byte piece although byte_fallback is false", i);
            int v = byte_of_piece(m->piece[i]);
            SMOE_RETURN_IF(v < 0, SMOE_ERR_CORRUPT_FILE, "piece %zu: invalid byte piece", i);
            bytes[v] = true;
        }
    }
    SMOE_RETURN_IF(unk < 0, SMOE_ERR_CORRUPT_FILE, "no piece of type UNKNOWN");
    if (m->byte_fallback)
        for (int v = 0; v < 256; v++)
            SMOE_RETURN_IF(!bytes[v], SMOE_ERR_CORRUPT_FILE, "byte_fallback is set but there is no piece <0x%02X>", v);

    /* duplicates within one of SentencePiece's two maps (normal and reserved pieces) */
    size_t cap = 16;
    while (cap < m->n * 2) cap *= 2;
    int32_t *tab = malloc(cap * sizeof(*tab));
    SMOE_RETURN_IF(!tab, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < cap; i++) tab[i] = -1;
    smoe_status st = SMOE_OK;
    for (size_t i = 0; i < m->n && st == SMOE_OK; i++) {
        bool     nc = normal_class(m->type[i]);
        uint64_t h  = hash_str(m->piece[i], nc);
        for (size_t k = h & (cap - 1);; k = (k + 1) & (cap - 1)) {
            int32_t j = tab[k];
            if (j < 0) {
                tab[k] = (int32_t)i;
                break;
            }
            if (normal_class(m->type[j]) == nc && str_eq(m->piece[j], m->piece[i])) {
                st = smoe_set_error(SMOE_ERR_CORRUPT_FILE, "pieces %d and %zu are the same string", j, i);
                break;
            }
        }
    }
    free(tab);
    *unk_out = unk;
    return st;
}

/* ---- API ---- */

void smoe_spm_free(smoe_spm_vocab *v) {
    if (!v) return;
    if (v->pieces)
        for (int32_t i = 0; i < v->n_vocab; i++) free(v->pieces[i]);
    free(v->pieces);
    free(v->piece_lens);
    free(v->scores);
    free(v->types);
    free(v);
}

smoe_status smoe_spm_parse(const void *data, size_t size, smoe_spm_vocab **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "smoe_spm_parse: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!data && size, SMOE_ERR_INVALID_ARGUMENT, "smoe_spm_parse: data is NULL");
    spm_parsed m = {0};
    m.model_type = 1; /* proto2 defaults */
    m.add_dummy_prefix = m.remove_extra_whitespaces = m.escape_whitespaces = true;
    m.unk_piece                                                        = str_lit("<unk>");
    m.bos_piece                                                        = str_lit("<s>");
    m.eos_piece                                                        = str_lit("</s>");
    m.pad_piece                                                        = str_lit("<pad>");

    smoe_spm_vocab *v   = NULL;
    int32_t         unk = -1;
    smoe_status     st  = parse_model(data, size, &m);
    if (st == SMOE_OK) st = validate(&m, &unk);
    if (st != SMOE_OK) goto done;

    v = calloc(1, sizeof(*v));
    SMOE_GOTO_IF(!v, st, done, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    v->n_vocab    = (int32_t)m.n;
    v->pieces     = calloc(m.n, sizeof(*v->pieces));
    v->piece_lens = calloc(m.n, sizeof(*v->piece_lens));
    v->scores     = calloc(m.n, sizeof(*v->scores));
    v->types      = calloc(m.n, sizeof(*v->types));
    SMOE_GOTO_IF(!v->pieces || !v->piece_lens || !v->scores || !v->types, st, done, SMOE_ERR_OUT_OF_MEMORY,
                 "out of memory for %zu pieces", m.n);
    for (size_t i = 0; i < m.n; i++) {
        v->pieces[i] = malloc(m.piece[i].n + 1);
        SMOE_GOTO_IF(!v->pieces[i], st, done, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
        memcpy(v->pieces[i], m.piece[i].s, m.piece[i].n);
        v->pieces[i][m.piece[i].n] = '\0';
        v->piece_lens[i]           = m.piece[i].n;
        v->scores[i]               = m.score[i];
        v->types[i]                = m.type[i];
    }
    v->unk_id = unk;
    int32_t b = find_piece(&m, m.bos_piece, unk), e = find_piece(&m, m.eos_piece, unk),
            p = find_piece(&m, m.pad_piece, unk);
    v->bos_id                   = m.type[b] == SMOE_TOK_CONTROL ? b : -1;
    v->eos_id                   = m.type[e] == SMOE_TOK_CONTROL ? e : -1;
    v->pad_id                   = m.type[p] == SMOE_TOK_CONTROL ? p : -1;
    v->add_dummy_prefix         = m.add_dummy_prefix;
    v->remove_extra_whitespaces = m.remove_extra_whitespaces;
    v->byte_fallback            = m.byte_fallback;
    *out                        = v;
    v                           = NULL;
done:
    smoe_spm_free(v);
    free(m.piece);
    free(m.score);
    free(m.type);
    return st;
}

smoe_status smoe_spm_load(const char *path, smoe_spm_vocab **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "smoe_spm_load: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!path, SMOE_ERR_INVALID_ARGUMENT, "smoe_spm_load: path is NULL");
    FILE *f = fopen(path, "rb");
    SMOE_RETURN_IF(!f, SMOE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t    *data = NULL;
    size_t      n = 0, cap = 0;
    smoe_status st = SMOE_OK;
    for (;;) {
        if (n == cap) {
            SMOE_GOTO_IF(cap >= SPM_MAX_FILE, st, done, SMOE_ERR_CORRUPT_FILE,
                         "%s: larger than %zu bytes, not a SentencePiece model", path, SPM_MAX_FILE);
            cap         = cap ? cap * 2 : ((size_t)1 << 20);
            uint8_t *nd = realloc(data, cap);
            SMOE_GOTO_IF(!nd, st, done, SMOE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
            data = nd;
        }
        size_t r = fread(data + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    SMOE_GOTO_IF(ferror(f), st, done, SMOE_ERR_IO, "%s: read error", path);
    st = smoe_spm_parse(data, n, out);
    if (st != SMOE_OK) smoe_error_prefix("%s", path);
done:
    fclose(f);
    free(data);
    return st;
}

smoe_status smoe_spm_to_tokenizer(const smoe_spm_vocab *v, smoe_tokenizer **out) {
    SMOE_RETURN_IF(!v || !out, SMOE_ERR_INVALID_ARGUMENT, "smoe_spm_to_tokenizer: NULL argument");
    smoe_vocab_desc d          = {0};
    d.n_vocab                  = v->n_vocab;
    d.pieces                   = (const char *const *)v->pieces;
    d.piece_lens               = v->piece_lens;
    d.scores                   = v->scores;
    d.types                    = v->types;
    d.bos_id                   = v->bos_id;
    d.eos_id                   = v->eos_id;
    d.unk_id                   = v->unk_id;
    d.add_bos                  = true;
    d.add_eos                  = false;
    d.add_dummy_prefix         = v->add_dummy_prefix;
    d.remove_extra_whitespaces = v->remove_extra_whitespaces;
    d.byte_fallback            = v->byte_fallback;
    return smoe_tokenizer_create(&d, out);
}
