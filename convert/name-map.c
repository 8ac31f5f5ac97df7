/*
 * name-map.c - see name-map.h. Facts from llama.cpp's convert_hf_to_gguf.py (LlamaModel, TextModel, and gguf-py's
 * SpecialVocab) that a file must follow to load in llama.cpp as a Mixtral:
 * - tensors: names and merged experts as in name-map.h; 1-D tensors (norms) and the router (ffn_gate_inp) stay F32
 *   in F16/BF16 files; the rest takes the output type;
 * - metadata: see smoe_name_map_write_metadata, in llama.cpp's key order.
 */
#include "name-map.h"

#include "convert/spm-model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const class_names[SMOE_CONV_CLASS_COUNT] = {
    [SMOE_CONV_TOKEN_EMBD] = "token_embd",         [SMOE_CONV_ATTN_NORM] = "attn_norm",
    [SMOE_CONV_ATTN_Q] = "attn_q",                 [SMOE_CONV_ATTN_K] = "attn_k",
    [SMOE_CONV_ATTN_V] = "attn_v",                 [SMOE_CONV_ATTN_OUTPUT] = "attn_output",
    [SMOE_CONV_FFN_NORM] = "ffn_norm",             [SMOE_CONV_FFN_GATE_INP] = "ffn_gate_inp",
    [SMOE_CONV_FFN_GATE_EXPS] = "ffn_gate_exps",   [SMOE_CONV_FFN_DOWN_EXPS] = "ffn_down_exps",
    [SMOE_CONV_FFN_UP_EXPS] = "ffn_up_exps",       [SMOE_CONV_OUTPUT_NORM] = "output_norm",
    [SMOE_CONV_OUTPUT] = "output",
};

const char *smoe_conv_class_name(smoe_conv_class c) {
    return (unsigned)c < SMOE_CONV_CLASS_COUNT ? class_names[c] : "?";
}

/* ---- names ---- */

/* Per-layer HF suffixes (after "model.layers.N.") and their GGUF class. */
static const struct {
    const char     *hf;
    smoe_conv_class cls;
} layer_map[] = {
    {"input_layernorm.weight", SMOE_CONV_ATTN_NORM},
    {"self_attn.q_proj.weight", SMOE_CONV_ATTN_Q},
    {"self_attn.k_proj.weight", SMOE_CONV_ATTN_K},
    {"self_attn.v_proj.weight", SMOE_CONV_ATTN_V},
    {"self_attn.o_proj.weight", SMOE_CONV_ATTN_OUTPUT},
    {"post_attention_layernorm.weight", SMOE_CONV_FFN_NORM},
    {"block_sparse_moe.gate.weight", SMOE_CONV_FFN_GATE_INP},
};

/* Expert weights: w1 = gate, w2 = down, w3 = up (Mixtral's FFN is w2 * (silu(w1 x) * w3 x)). */
static const smoe_conv_class expert_cls[3] = {SMOE_CONV_FFN_GATE_EXPS, SMOE_CONV_FFN_DOWN_EXPS,
                                              SMOE_CONV_FFN_UP_EXPS};

static void gguf_name(smoe_conv_class cls, int layer, char *out, size_t size) {
    if (layer >= 0) snprintf(out, size, "blk.%d.%s.weight", layer, class_names[cls]);
    else snprintf(out, size, "%s.weight", class_names[cls]);
}

/* Parses a decimal index (no sign, no leading zeros except "0") at *p, advancing past it. */
static bool parse_index(const char **p, long *out) {
    const char *s = *p;
    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9')) return false;
    long v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        if (v > 1000000) return false;
        s++;
    }
    *p = s;
    *out = v;
    return true;
}

bool smoe_name_map_hf_to_gguf(const char *hf, char *out, size_t size, int *expert) {
    if (expert) *expert = -1;
    if (!strcmp(hf, "model.embed_tokens.weight")) return gguf_name(SMOE_CONV_TOKEN_EMBD, -1, out, size), true;
    if (!strcmp(hf, "model.norm.weight")) return gguf_name(SMOE_CONV_OUTPUT_NORM, -1, out, size), true;
    if (!strcmp(hf, "lm_head.weight")) return gguf_name(SMOE_CONV_OUTPUT, -1, out, size), true;
    const char *p = hf;
    if (strncmp(p, "model.layers.", 13)) return false;
    p += 13;
    long layer;
    if (!parse_index(&p, &layer) || *p++ != '.') return false;
    for (size_t i = 0; i < sizeof(layer_map) / sizeof(layer_map[0]); i++)
        if (!strcmp(p, layer_map[i].hf)) return gguf_name(layer_map[i].cls, (int)layer, out, size), true;
    if (strncmp(p, "block_sparse_moe.experts.", 25)) return false;
    p += 25;
    long e;
    if (!parse_index(&p, &e) || strncmp(p, ".w", 2) || p[2] < '1' || p[2] > '3' || strcmp(p + 3, ".weight"))
        return false;
    if (expert) *expert = (int)e;
    gguf_name(expert_cls[p[2] - '1'], (int)layer, out, size);
    return true;
}

/* ---- the plan ---- */

static bool is_ignorable(const char *hf) {
    /* Rotary tables some checkpoints carry; recomputed from rope_theta. */
    const char *s = strstr(hf, "rotary_emb.inv_freq");
    return s && s[19] == '\0';
}

static const char *shape_str(const int64_t *shape, uint32_t n, char *buf, size_t size) {
    size_t k = (size_t)snprintf(buf, size, "[");
    for (uint32_t d = 0; d < n && k < size; d++)
        k += (size_t)snprintf(buf + k, size - k, "%s%" PRId64, d ? ", " : "", shape[d]);
    if (k < size) snprintf(buf + k, size - k, "]");
    return buf;
}

/* Looks up an HF tensor and checks its dtype and its HF (row-major) shape. */
static smoe_status get_source(const smoe_st_set *s, const char *name, uint32_t n_dims, const int64_t *shape,
                              const smoe_st_tensor **out) {
    const smoe_st_tensor *t = smoe_st_set_find(s, name);
    SMOE_RETURN_IF(!t, SMOE_ERR_CORRUPT_FILE, "tensor '%s' is missing from the checkpoint", name);
    char a[96], b[96];
    bool ok = t->n_dims == n_dims;
    for (uint32_t d = 0; ok && d < n_dims; d++) ok = t->shape[d] == shape[d];
    SMOE_RETURN_IF(!ok, SMOE_ERR_CORRUPT_FILE, "tensor '%s': shape %s does not match config.json (expected %s)", name,
                   shape_str(t->shape, t->n_dims, a, sizeof(a)), shape_str(shape, n_dims, b, sizeof(b)));
    SMOE_RETURN_IF(t->dtype != SMOE_ST_F32 && t->dtype != SMOE_ST_F16 && t->dtype != SMOE_ST_BF16,
                   SMOE_ERR_UNSUPPORTED, "tensor '%s': dtype %s (smoe converts F32, F16 and BF16)", name,
                   smoe_st_dtype_name(t->dtype));
    *out = t;
    return SMOE_OK;
}

typedef struct plan_builder {
    smoe_conv_plan      *p;
    const smoe_st_set   *s;
    size_t               n_src_used;
} plan_builder;

/* Adds output tensor `cls` of `layer` with GGUF ne (ne[0] = row length) from HF tensor hf, or, when n_exp > 0,
 * from the n_exp experts of the layer (hf + expert index + exp_suffix) merged into ne[2]. */
static smoe_status add_tensor(plan_builder *b, smoe_conv_class cls, int layer, uint32_t n_dims, int64_t ne0,
                              int64_t ne1, uint32_t n_exp, const char *hf, const char *exp_suffix,
                              uint32_t permute_heads) {
    smoe_conv_tensor *t = &b->p->t[b->p->n];
    memset(t, 0, sizeof(*t));
    gguf_name(cls, layer, t->name, sizeof(t->name));
    const uint32_t n_src = n_exp ? n_exp : 1;
    t->cls = cls;
    t->layer = layer;
    t->n_dims = n_exp ? 3 : n_dims;
    t->ne[0] = ne0;
    t->ne[1] = n_dims > 1 ? ne1 : 1;
    t->ne[2] = n_src;
    t->ne[3] = 1;
    t->src = &b->p->src_storage[b->n_src_used];
    t->n_src = n_src;
    t->permute_heads = permute_heads;
    t->type = SMOE_TYPE_F32;
    const int64_t hf_shape[2] = {n_dims > 1 ? ne1 : ne0, ne0}; /* HF: [out, in] */
    for (uint32_t e = 0; e < n_src; e++) {
        char name[160];
        if (n_exp) snprintf(name, sizeof(name), "%s%u%s", hf, e, exp_suffix);
        else snprintf(name, sizeof(name), "%s", hf);
        SMOE_TRY(get_source(b->s, name, n_dims, n_dims > 1 ? hf_shape : hf_shape + 1, &t->src[e]));
    }
    b->n_src_used += n_src;
    const uint64_t n_el = (uint64_t)t->ne[0] * (uint64_t)t->ne[1] * (uint64_t)t->ne[2];
    b->p->n_params += n_el;
    if (n_exp) b->p->n_expert_params += n_el;
    b->p->n++;
    return SMOE_OK;
}

smoe_status smoe_name_map_plan(const smoe_hf_config *c, const smoe_st_set *s, const smoe_logger *log,
                               smoe_conv_plan **out) {
    SMOE_RETURN_IF(!c || !s || !out, SMOE_ERR_INVALID_ARGUMENT, "smoe_name_map_plan: NULL argument");
    *out = NULL;
    const bool has_output = smoe_st_set_find(s, "lm_head.weight") != NULL || !c->tie_word_embeddings;
    const size_t n_tensors = 2 + (size_t)c->n_layer * 10 + (has_output ? 1 : 0);
    const size_t n_srcs = 2 + (size_t)c->n_layer * (7 + 3 * (size_t)c->n_expert) + 1;
    smoe_conv_plan *p = calloc(1, sizeof(*p));
    smoe_status st = SMOE_OK;
    SMOE_GOTO_IF(!p, st, fail, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    p->t = calloc(n_tensors, sizeof(*p->t));
    p->src_storage = calloc(n_srcs, sizeof(*p->src_storage));
    SMOE_GOTO_IF(!p->t || !p->src_storage, st, fail, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    plan_builder b = {.p = p, .s = s};

    const int64_t n_embd = c->n_embd, n_vocab = c->n_vocab, n_ff = c->n_ff;
    const int64_t n_q = (int64_t)c->n_head * c->head_dim, n_kv = (int64_t)c->n_head_kv * c->head_dim;
    SMOE_GOTO_TRY(st, fail, add_tensor(&b, SMOE_CONV_TOKEN_EMBD, -1, 2, n_embd, n_vocab, 0,
                                       "model.embed_tokens.weight", NULL, 0));
    for (int l = 0; l < (int)c->n_layer; l++) {
        char hf[160], pat[96];
#define LAYER_TENSOR(cls, nd, ne0, ne1, suffix, perm)                                                                  \
    do {                                                                                                               \
        snprintf(hf, sizeof(hf), "model.layers.%d.%s", l, suffix);                                                     \
        SMOE_GOTO_TRY(st, fail, add_tensor(&b, cls, l, nd, ne0, ne1, 0, hf, NULL, perm));                                    \
    } while (0)
        LAYER_TENSOR(SMOE_CONV_ATTN_NORM, 1, n_embd, 1, "input_layernorm.weight", 0);
        LAYER_TENSOR(SMOE_CONV_ATTN_Q, 2, n_embd, n_q, "self_attn.q_proj.weight", c->n_head);
        LAYER_TENSOR(SMOE_CONV_ATTN_K, 2, n_embd, n_kv, "self_attn.k_proj.weight", c->n_head_kv);
        LAYER_TENSOR(SMOE_CONV_ATTN_V, 2, n_embd, n_kv, "self_attn.v_proj.weight", 0);
        LAYER_TENSOR(SMOE_CONV_ATTN_OUTPUT, 2, n_q, n_embd, "self_attn.o_proj.weight", 0);
        LAYER_TENSOR(SMOE_CONV_FFN_NORM, 1, n_embd, 1, "post_attention_layernorm.weight", 0);
        LAYER_TENSOR(SMOE_CONV_FFN_GATE_INP, 2, n_embd, c->n_expert, "block_sparse_moe.gate.weight", 0);
#undef LAYER_TENSOR
        for (int w = 0; w < 3; w++) {
            /* w1, w3: [n_ff, n_embd]; w2: [n_embd, n_ff] */
            const int64_t ne0 = w == 1 ? n_ff : n_embd, ne1 = w == 1 ? n_embd : n_ff;
            static const char *const wsuffix[3] = {".w1.weight", ".w2.weight", ".w3.weight"};
            snprintf(pat, sizeof(pat), "model.layers.%d.block_sparse_moe.experts.", l);
            SMOE_GOTO_TRY(st, fail, add_tensor(&b, expert_cls[w], l, 2, ne0, ne1, c->n_expert, pat, wsuffix[w], 0));
        }
    }
    SMOE_GOTO_TRY(st, fail, add_tensor(&b, SMOE_CONV_OUTPUT_NORM, -1, 1, n_embd, 1, 0, "model.norm.weight", NULL, 0));
    if (has_output)
        SMOE_GOTO_TRY(st, fail, add_tensor(&b, SMOE_CONV_OUTPUT, -1, 2, n_embd, n_vocab, 0, "lm_head.weight", NULL, 0));

    /* Anything else in the checkpoint is not part of a Mixtral we know: say so, and leave it out. */
    for (int64_t i = 0; i < smoe_st_set_n_tensors(s); i++) {
        const smoe_st_tensor *t = smoe_st_set_tensor_at(s, i);
        char g[SMOE_CONV_NAME_MAX];
        int e;
        if (is_ignorable(t->name)) continue;
        bool known = smoe_name_map_hf_to_gguf(t->name, g, sizeof(g), &e);
        if (known) { /* a layer or expert index beyond the config is not used either */
            known = false;
            for (int64_t k = 0; k < p->n && !known; k++)
                for (uint32_t j = 0; j < p->t[k].n_src && !known; j++) known = p->t[k].src[j] == t;
        }
        if (!known) smoe_log(log, SMOE_LOG_WARN, "ignoring tensor '%s': not part of a Mixtral with this config", t->name);
    }
    *out = p;
    return SMOE_OK;
fail:
    smoe_name_map_plan_free(p);
    return st;
}

void smoe_name_map_plan_free(smoe_conv_plan *p) {
    if (!p) return;
    free(p->t);
    free(p->src_storage);
    free(p);
}

/* ---- metadata ---- */

void smoe_name_map_size_label(const smoe_conv_plan *p, uint32_t n_expert, char *out, size_t size) {
    /* gguf-py: total/shared/expert counts (GGUFWriter.get_total_parameter_count), then size_label() and
     * model_weight_count_rounded_notation(shared + one expert, min_digits = 2). */
    const uint64_t shared = p->n_params - p->n_expert_params;
    const uint64_t one_expert = n_expert ? p->n_expert_params / n_expert : 0;
    const double x = (double)(n_expert ? shared + one_expert : p->n_params);
    double scaled;
    const char *suffix;
    if (x > 1e12) scaled = x * 1e-12, suffix = "T";
    else if (x > 1e9) scaled = x * 1e-9, suffix = "B";
    else if (x > 1e6) scaled = x * 1e-6, suffix = "M";
    else scaled = x * 1e-3, suffix = "K";
    /* digits of round(scaled) (ties to even, as Python's round) without leading zeros */
    char digits[32];
    snprintf(digits, sizeof(digits), "%.0f", nearbyint(scaled));
    size_t nd = strlen(digits);
    if (!strcmp(digits, "0")) nd = 0;
    const int fix = nd >= 2 ? 0 : 2 - (int)nd;
    char num[48];
    snprintf(num, sizeof(num), "%.*f%s", fix, scaled, suffix);
    if (n_expert) snprintf(out, size, "%ux%s", n_expert, num);
    else snprintf(out, size, "%s", num);
}

/* gguf-py's does_token_look_special (tokens some models forget to mark special). */
static bool looks_special(const char *s) {
    const size_t n = strlen(s);
    if (!strcmp(s, "<pad>") || !strcmp(s, "<mask>") || !strcmp(s, "<2mass>") || !strcmp(s, "[@BOS@]")) return true;
    if (n >= 4 && !strncmp(s, "<|", 2) && !strcmp(s + n - 2, "|>")) return true;
    /* "<｜" ... "｜>" (U+FF5C, deepseek-coder) */
    if (n >= 8 && !strncmp(s, "<\xef\xbd\x9c", 4) && !strcmp(s + n - 4, "\xef\xbd\x9c>")) return true;
    return n >= 8 && !strncmp(s, "<unused", 7) && s[n - 1] == '>';
}

/* "▁" (U+2581) -> " " in a copy of s. */
static char *unescape_spaces(const char *s) {
    char *r = malloc(strlen(s) + 1), *o = r;
    if (!r) return NULL;
    while (*s) {
        if (!strncmp(s, "\xe2\x96\x81", 3)) *o++ = ' ', s += 3;
        else *o++ = *s++;
    }
    *o = '\0';
    return r;
}

typedef struct vocab_out {
    int64_t      n;
    const char **tokens;
    uint64_t    *lens;
    float       *scores;
    int32_t     *types;
    char        *pad_names; /* "[PAD<i>]" strings */
    char       **owned;     /* strings allocated here */
    int64_t      n_owned;
} vocab_out;

static void vocab_free(vocab_out *v) {
    free(v->tokens);
    free(v->lens);
    free(v->scores);
    free(v->types);
    free(v->pad_names);
    for (int64_t i = 0; i < v->n_owned; i++) free(v->owned[i]);
    free(v->owned);
}

/* The vocabulary as llama.cpp's _create_vocab_sentencepiece builds it: config's vocab_size entries, unused
 * "[PAD<i>]" slots filled from tokenizer.model, then added_tokens.json and added_tokens_decoder (score -1000). */
static smoe_status build_vocab(const smoe_hf_config *c, const smoe_spm_vocab *spm, vocab_out *v) {
    const int64_t n = c->n_vocab;
    memset(v, 0, sizeof(*v));
    v->n = n;
    v->tokens = calloc((size_t)n, sizeof(*v->tokens));
    v->lens = calloc((size_t)n, sizeof(*v->lens));
    v->scores = calloc((size_t)n, sizeof(*v->scores));
    v->types = calloc((size_t)n, sizeof(*v->types));
    v->owned = calloc((size_t)(c->n_added_decoder + 1), sizeof(*v->owned));
    const int64_t n_pad = n > spm->n_vocab ? n - spm->n_vocab : 0;
    v->pad_names = malloc((size_t)n_pad * 16 + 1);
    SMOE_RETURN_IF(!v->tokens || !v->lens || !v->scores || !v->types || !v->owned || !v->pad_names,
                   SMOE_ERR_OUT_OF_MEMORY, "out of memory for the vocabulary");
    char *pad = v->pad_names;
    for (int64_t i = 0; i < n; i++) {
        if (i < spm->n_vocab) {
            v->tokens[i] = spm->pieces[i];
            v->lens[i] = spm->piece_lens[i];
            v->scores[i] = spm->scores[i];
            v->types[i] = spm->types[i];
        } else {
            int k = snprintf(pad, 16, "[PAD%" PRId64 "]", i);
            v->tokens[i] = pad;
            v->lens[i] = (uint64_t)k;
            v->scores[i] = -10000.0f;
            v->types[i] = SMOE_TOK_UNUSED;
            pad += k + 1;
        }
    }
    for (int64_t k = 0; k < c->n_added_json; k++) {
        const smoe_hf_added_token *a = &c->added_json[k];
        if (a->id >= n) continue;
        v->tokens[a->id] = a->content;
        v->lens[a->id] = strlen(a->content);
        v->scores[a->id] = -1000.0f;
        v->types[a->id] = SMOE_TOK_USER_DEFINED;
    }
    for (int64_t k = 0; k < c->n_added_decoder; k++) {
        const smoe_hf_added_token *a = &c->added_decoder[k];
        if (a->id >= n) continue;
        const char *tok = a->content;
        if (a->special || looks_special(a->content)) {
            v->types[a->id] = SMOE_TOK_CONTROL;
        } else {
            char *u = unescape_spaces(a->content);
            SMOE_RETURN_IF(!u, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
            v->owned[v->n_owned++] = u;
            tok = u;
            v->types[a->id] = SMOE_TOK_USER_DEFINED;
        }
        v->scores[a->id] = -1000.0f;
        v->tokens[a->id] = tok;
        v->lens[a->id] = strlen(tok);
    }
    return SMOE_OK;
}

static const char *const special_keys[SMOE_HF_SPECIAL_COUNT] = {
    "tokenizer.ggml.bos_token_id",       "tokenizer.ggml.eos_token_id",     "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.seperator_token_id", "tokenizer.ggml.padding_token_id", "tokenizer.ggml.cls_token_id",
    "tokenizer.ggml.mask_token_id",
};

static const char *const add_keys[SMOE_HF_SPECIAL_COUNT] = {
    "tokenizer.ggml.add_bos_token",  "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_unk_token",
    "tokenizer.ggml.add_sep_token",  "tokenizer.ggml.add_pad_token", "tokenizer.ggml.add_cls_token",
    "tokenizer.ggml.add_mask_token",
};

static smoe_status write_tokenizer(smoe_gguf_writer *w, const smoe_hf_config *c, const char *hf_dir,
                                   const smoe_logger *log) {
    size_t n = strlen(hf_dir);
    char *path = malloc(n + sizeof("/tokenizer.model"));
    SMOE_RETURN_IF(!path, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(path, hf_dir, n);
    memcpy(path + n, "/tokenizer.model", sizeof("/tokenizer.model"));
    smoe_spm_vocab *spm = NULL;
    smoe_status st = smoe_spm_load(path, &spm);
    free(path);
    SMOE_TRY(st);
    if (spm->n_vocab > (int32_t)c->n_vocab)
        smoe_log(log, SMOE_LOG_WARN, "tokenizer.model has %d pieces, config.json vocab_size %u: ignoring the rest",
                 spm->n_vocab, c->n_vocab);
    vocab_out v;
    st = build_vocab(c, spm, &v);
    if (st != SMOE_OK) goto done;
    SMOE_GOTO_TRY(st, done, smoe_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"));
    SMOE_GOTO_TRY(st, done, smoe_gguf_writer_set_str(w, "tokenizer.ggml.pre", "default"));
    SMOE_GOTO_TRY(st, done, smoe_gguf_writer_set_arr_str_n(w, "tokenizer.ggml.tokens", v.tokens, v.lens, (uint64_t)v.n));
    SMOE_GOTO_TRY(st, done, smoe_gguf_writer_set_arr(w, "tokenizer.ggml.scores", SMOE_GGUF_FLOAT32, v.scores,
                                                     (uint64_t)v.n));
    SMOE_GOTO_TRY(st, done, smoe_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", SMOE_GGUF_INT32, v.types,
                                                     (uint64_t)v.n));
    /* Normalizer settings, only where they differ from what llama.cpp assumes for a SentencePiece model without
     * these keys (a dummy prefix, whitespace kept): Mixtral's tokenizer needs neither. */
    if (!spm->add_dummy_prefix)
        SMOE_GOTO_TRY(st, done, smoe_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", false));
    if (spm->remove_extra_whitespaces)
        SMOE_GOTO_TRY(st, done, smoe_gguf_writer_set_bool(w, "tokenizer.ggml.remove_extra_whitespaces", true));
    for (int s = 0; s < SMOE_HF_SPECIAL_COUNT; s++) {
        int64_t id = c->special_id[s];
        /* llama.cpp finds no unknown id in a checkpoint without tokenizer.json; tokenizer.model knows it */
        if (s == SMOE_HF_UNK && id < 0) id = spm->unk_id;
        if (id < 0) continue;
        if (id >= (int64_t)c->n_vocab) {
            smoe_log(log, SMOE_LOG_WARN, "%s token id %" PRId64 " is not below vocab_size %u: not written",
                     smoe_hf_special_name((smoe_hf_special)s), id, c->n_vocab);
            continue;
        }
        SMOE_GOTO_TRY(st, done, smoe_gguf_writer_set_u32(w, special_keys[s], (uint32_t)id));
    }
    for (int s = 0; s < SMOE_HF_SPECIAL_COUNT; s++)
        if (c->add_special[s] >= 0)
            SMOE_GOTO_TRY(st, done, smoe_gguf_writer_set_bool(w, add_keys[s], c->add_special[s] != 0));
    if (c->chat_template) SMOE_GOTO_TRY(st, done, smoe_gguf_writer_set_str(w, "tokenizer.chat_template", c->chat_template));
done:
    vocab_free(&v);
    smoe_spm_free(spm);
    return st;
}

smoe_status smoe_name_map_write_metadata(smoe_gguf_writer *w, const smoe_hf_config *c, const smoe_conv_plan *p,
                                         uint32_t file_type, const char *hf_dir, const smoe_logger *log) {
    char label[64];
    smoe_name_map_size_label(p, c->n_expert, label, sizeof(label));
    /* llama.cpp's order: general.*, the hyper-parameters (TextModel.set_gguf_parameters, then LlamaModel's), the
     * quantization version, the tokenizer. */
    SMOE_TRY(smoe_gguf_writer_set_str(w, "general.architecture", "llama"));
    SMOE_TRY(smoe_gguf_writer_set_str(w, "general.type", "model"));
    SMOE_TRY(smoe_gguf_writer_set_str(w, "general.name", c->name));
    SMOE_TRY(smoe_gguf_writer_set_str(w, "general.size_label", label));
    SMOE_TRY(smoe_gguf_writer_set_u32(w, "llama.block_count", c->n_layer));
    SMOE_TRY(smoe_gguf_writer_set_u32(w, "llama.context_length", c->n_ctx_train));
    SMOE_TRY(smoe_gguf_writer_set_u32(w, "llama.embedding_length", c->n_embd));
    SMOE_TRY(smoe_gguf_writer_set_u32(w, "llama.feed_forward_length", c->n_ff));
    SMOE_TRY(smoe_gguf_writer_set_u32(w, "llama.attention.head_count", c->n_head));
    SMOE_TRY(smoe_gguf_writer_set_u32(w, "llama.attention.head_count_kv", c->n_head_kv));
    SMOE_TRY(smoe_gguf_writer_set_f32(w, "llama.rope.freq_base", c->rope_theta));
    SMOE_TRY(smoe_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", c->rms_eps));
    SMOE_TRY(smoe_gguf_writer_set_u32(w, "llama.expert_count", c->n_expert));
    SMOE_TRY(smoe_gguf_writer_set_u32(w, "llama.expert_used_count", c->n_expert_used));
    SMOE_TRY(smoe_gguf_writer_set_u32(w, "general.file_type", file_type));
    SMOE_TRY(smoe_gguf_writer_set_u32(w, "llama.vocab_size", c->n_vocab));
    SMOE_TRY(smoe_gguf_writer_set_u32(w, "llama.rope.dimension_count", c->head_dim));
    SMOE_TRY(smoe_gguf_writer_set_u32(w, "general.quantization_version", 2));
    return write_tokenizer(w, c, hf_dir, log);
}
