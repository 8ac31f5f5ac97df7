/*
 * hf-config.c - see hf-config.h. JSON is parsed with jansson (duplicate keys rejected).
 */
#include "hf-config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Sane limits: anything beyond is a corrupt config, not a model (Mixtral 8x7B: 4096, 14336, 32, 32, 8, 8, 32000). */
#define MAX_DIM      (1u << 20)
#define MAX_LAYERS   4096u
#define MAX_HEADS    4096u
#define MAX_EXPERTS  1024u
#define MAX_VOCAB    (1u << 24)

static const char *const special_names[SMOE_HF_SPECIAL_COUNT] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};

const char *smoe_hf_special_name(smoe_hf_special s) {
    return (unsigned)s < SMOE_HF_SPECIAL_COUNT ? special_names[s] : "?";
}

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

/* JSON numbers are decoded as doubles (JSON_DECODE_INT_AS_REAL): tokenizer_config.json files carry integers such as
 * model_max_length = 1e30 that do not fit an integer. An integer is then a number with an integral value. */
static bool json_int(const json_t *v, int64_t *out) {
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (!json_is_real(v)) return false;
    const double d = json_real_value(v);
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || d != floor(d)) return false;
    *out = (int64_t)d;
    return true;
}

/* Loads dir/name. *out = NULL (and SMOE_OK) if the file does not exist and is optional. */
static smoe_status load_json(const char *dir, const char *name, bool optional, json_t **out) {
    *out = NULL;
    char *p = path_join(dir, name);
    SMOE_RETURN_IF(!p, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    if (access(p, F_OK) != 0) {
        int e = errno;
        smoe_status st = optional ? SMOE_OK : smoe_set_error(SMOE_ERR_IO, "%s: cannot open: %s", p, strerror(e));
        free(p);
        return st;
    }
    json_error_t jerr;
    json_t *j = json_load_file(p, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
    if (!j) {
        smoe_status st = smoe_set_error(SMOE_ERR_CORRUPT_FILE, "%s: %s (line %d, column %d)", p, jerr.text, jerr.line,
                                        jerr.column);
        free(p);
        return st;
    }
    free(p);
    if (!json_is_object(j)) {
        json_decref(j);
        return smoe_set_error(SMOE_ERR_CORRUPT_FILE, "%s/%s: not a JSON object", dir, name);
    }
    *out = j;
    return SMOE_OK;
}

/* A required (or defaulted, when def >= 0) positive integer key of config.json, at most `max`. */
static smoe_status get_uint(const json_t *cfg, const char *key, int64_t def, uint32_t max, uint32_t *out) {
    const json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) {
        SMOE_RETURN_IF(def < 0, SMOE_ERR_CORRUPT_FILE, "config.json: missing \"%s\"", key);
        *out = (uint32_t)def;
        return SMOE_OK;
    }
    int64_t i;
    SMOE_RETURN_IF(!json_int(v, &i), SMOE_ERR_CORRUPT_FILE, "config.json: \"%s\" is not an integer", key);
    SMOE_RETURN_IF(i < 1 || (uint64_t)i > max, SMOE_ERR_CORRUPT_FILE,
                   "config.json: \"%s\" = %lld is out of range [1, %u]", key, (long long)i, max);
    *out = (uint32_t)i;
    return SMOE_OK;
}

static smoe_status get_float(const json_t *cfg, const char *key, double def, float *out) {
    const json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) {
        *out = (float)def;
        return SMOE_OK;
    }
    SMOE_RETURN_IF(!json_is_number(v), SMOE_ERR_CORRUPT_FILE, "config.json: \"%s\" is not a number", key);
    double d = json_number_value(v);
    SMOE_RETURN_IF(!(d > 0) || !isfinite(d) || d > 3.4e38, SMOE_ERR_CORRUPT_FILE,
                   "config.json: \"%s\" = %g is not a positive finite number", key, d);
    *out = (float)d;
    return SMOE_OK;
}

static bool is_mixtral(const json_t *cfg, const char **what) {
    const json_t *arch = json_object_get(cfg, "architectures");
    const json_t *mt = json_object_get(cfg, "model_type");
    *what = json_is_string(mt) ? json_string_value(mt) : "(none)";
    if (json_is_array(arch)) {
        for (size_t i = 0; i < json_array_size(arch); i++) {
            const json_t *a = json_array_get(arch, i);
            if (json_is_string(a) && !strcmp(json_string_value(a), "MixtralForCausalLM")) return true;
        }
        if (json_array_size(arch) > 0 && json_is_string(json_array_get(arch, 0)))
            *what = json_string_value(json_array_get(arch, 0));
    }
    return json_is_string(mt) && !strcmp(json_string_value(mt), "mixtral");
}

/* A token entry of tokenizer_config.json: a string, or an object with "content" (AddedToken). */
static const char *token_content(const json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v) && json_is_string(json_object_get(v, "content")))
        return json_string_value(json_object_get(v, "content"));
    return NULL;
}

static smoe_status parse_config(smoe_hf_config *c, const json_t *cfg) {
    const char *what;
    SMOE_RETURN_IF(!is_mixtral(cfg, &what), SMOE_ERR_UNSUPPORTED,
                   "config.json: unknown architecture %s (smoe converts MixtralForCausalLM checkpoints)", what);
    c->architecture = strdup("MixtralForCausalLM");
    SMOE_RETURN_IF(!c->architecture, SMOE_ERR_OUT_OF_MEMORY, "out of memory");

    SMOE_TRY(get_uint(cfg, "vocab_size", -1, MAX_VOCAB, &c->n_vocab));
    SMOE_TRY(get_uint(cfg, "hidden_size", -1, MAX_DIM, &c->n_embd));
    SMOE_TRY(get_uint(cfg, "intermediate_size", -1, MAX_DIM, &c->n_ff));
    SMOE_TRY(get_uint(cfg, "num_hidden_layers", -1, MAX_LAYERS, &c->n_layer));
    SMOE_TRY(get_uint(cfg, "num_attention_heads", -1, MAX_HEADS, &c->n_head));
    SMOE_TRY(get_uint(cfg, "num_key_value_heads", c->n_head, MAX_HEADS, &c->n_head_kv));
    SMOE_TRY(get_uint(cfg, "num_local_experts", -1, MAX_EXPERTS, &c->n_expert));
    SMOE_TRY(get_uint(cfg, "num_experts_per_tok", -1, MAX_EXPERTS, &c->n_expert_used));
    SMOE_TRY(get_uint(cfg, "max_position_embeddings", 131072, UINT32_MAX, &c->n_ctx_train));
    SMOE_TRY(get_float(cfg, "rope_theta", 1e6, &c->rope_theta));
    SMOE_TRY(get_float(cfg, "rms_norm_eps", 1e-5, &c->rms_eps));

    SMOE_RETURN_IF(c->n_embd % c->n_head, SMOE_ERR_CORRUPT_FILE,
                   "config.json: hidden_size %u is not a multiple of num_attention_heads %u", c->n_embd, c->n_head);
    c->head_dim = c->n_embd / c->n_head;
    SMOE_RETURN_IF(c->head_dim % 2, SMOE_ERR_CORRUPT_FILE, "config.json: head dimension %u is odd (RoPE needs pairs)",
                   c->head_dim);
    SMOE_RETURN_IF(c->n_head % c->n_head_kv, SMOE_ERR_CORRUPT_FILE,
                   "config.json: num_attention_heads %u is not a multiple of num_key_value_heads %u", c->n_head,
                   c->n_head_kv);
    SMOE_RETURN_IF(c->n_expert_used > c->n_expert, SMOE_ERR_CORRUPT_FILE,
                   "config.json: num_experts_per_tok %u > num_local_experts %u", c->n_expert_used, c->n_expert);
    const json_t *hd = json_object_get(cfg, "head_dim");
    int64_t hdv = 0;
    SMOE_RETURN_IF(hd && !json_is_null(hd) && (!json_int(hd, &hdv) || hdv != c->head_dim),
                   SMOE_ERR_UNSUPPORTED, "config.json: head_dim differs from hidden_size / num_attention_heads (%u)",
                   c->head_dim);
    const json_t *rs = json_object_get(cfg, "rope_scaling");
    SMOE_RETURN_IF(rs && !json_is_null(rs), SMOE_ERR_UNSUPPORTED, "config.json: rope_scaling is not supported");
    const json_t *act = json_object_get(cfg, "hidden_act");
    SMOE_RETURN_IF(act && json_is_string(act) && strcmp(json_string_value(act), "silu"), SMOE_ERR_UNSUPPORTED,
                   "config.json: hidden_act \"%s\" (Mixtral uses silu)", json_string_value(act));
    c->tie_word_embeddings = json_is_true(json_object_get(cfg, "tie_word_embeddings"));
    return SMOE_OK;
}

static smoe_status add_token(smoe_hf_added_token **arr, int64_t *n, int64_t id, const char *content, bool special) {
    smoe_hf_added_token *a = realloc(*arr, (size_t)(*n + 1) * sizeof(**arr));
    SMOE_RETURN_IF(!a, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    *arr = a;
    a[*n].id = id;
    a[*n].special = special;
    a[*n].content = strdup(content);
    SMOE_RETURN_IF(!a[*n].content, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    (*n)++;
    return SMOE_OK;
}

static smoe_status parse_tokenizer_config(smoe_hf_config *c, const json_t *tc) {
    const json_t *ct = json_object_get(tc, "chat_template");
    if (json_is_string(ct)) {
        c->chat_template = strdup(json_string_value(ct));
        SMOE_RETURN_IF(!c->chat_template, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    } else if (json_is_array(ct)) {
        /* A list of named templates: keep "default" (llama.cpp also writes the others; smoe does not). */
        for (size_t i = 0; i < json_array_size(ct); i++) {
            const json_t *e = json_array_get(ct, i);
            const json_t *nm = json_object_get(e, "name"), *tp = json_object_get(e, "template");
            if (json_is_string(nm) && json_is_string(tp) && !strcmp(json_string_value(nm), "default")) {
                c->chat_template = strdup(json_string_value(tp));
                SMOE_RETURN_IF(!c->chat_template, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
            }
        }
    }
    for (int s = 0; s < SMOE_HF_SPECIAL_COUNT; s++) {
        char key[32];
        snprintf(key, sizeof(key), "add_%s_token", special_names[s]);
        const json_t *v = json_object_get(tc, key);
        if (json_is_boolean(v)) c->add_special[s] = json_is_true(v);
        snprintf(key, sizeof(key), "%s_token", special_names[s]);
        const char *content = token_content(json_object_get(tc, key));
        if (content) {
            c->special_content[s] = strdup(content);
            SMOE_RETURN_IF(!c->special_content[s], SMOE_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    const json_t *dec = json_object_get(tc, "added_tokens_decoder");
    if (json_is_object(dec)) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)dec, key, v) {
            char *end;
            errno = 0;
            long long id = strtoll(key, &end, 10);
            SMOE_RETURN_IF(!key[0] || *end || errno || id < 0, SMOE_ERR_CORRUPT_FILE,
                           "tokenizer_config.json: added_tokens_decoder key \"%s\" is not a token id", key);
            const json_t *content = json_object_get(v, "content");
            SMOE_RETURN_IF(!json_is_string(content), SMOE_ERR_CORRUPT_FILE,
                           "tokenizer_config.json: added_tokens_decoder[\"%s\"] has no string \"content\"", key);
            SMOE_TRY(add_token(&c->added_decoder, &c->n_added_decoder, id, json_string_value(content),
                               json_is_true(json_object_get(v, "special"))));
        }
    }
    return SMOE_OK;
}

/* tokenizer.json's added_tokens: [{"id": 0, "content": "<unk>", ...}, ...]; first match of each special content. */
static void resolve_from_tokenizer_json(smoe_hf_config *c, const json_t *tj) {
    const json_t *added = json_object_get(tj, "added_tokens");
    if (!json_is_array(added)) return;
    for (int s = 0; s < SMOE_HF_SPECIAL_COUNT; s++) {
        if (!c->special_content[s] || c->special_id[s] >= 0) continue;
        for (size_t i = 0; i < json_array_size(added); i++) {
            const json_t *e = json_array_get(added, i);
            const json_t *content = json_object_get(e, "content"), *id = json_object_get(e, "id");
            if (json_is_string(content) && !strcmp(json_string_value(content), c->special_content[s])) {
                int64_t v;
                if (json_int(id, &v) && v >= 0) c->special_id[s] = v;
                break;
            }
        }
    }
}

static void resolve_from_ids(smoe_hf_config *c, const json_t *j, bool bos_eos_only) {
    for (int s = 0; s < SMOE_HF_SPECIAL_COUNT; s++) {
        if (c->special_id[s] >= 0 || (bos_eos_only && s != SMOE_HF_BOS && s != SMOE_HF_EOS)) continue;
        char key[32];
        snprintf(key, sizeof(key), "%s_token_id", special_names[s]);
        const json_t *v = json_object_get(j, key);
        int64_t id;
        if (json_int(v, &id) && id >= 0) c->special_id[s] = id;
    }
}

static smoe_status parse_added_tokens_json(smoe_hf_config *c, const json_t *aj) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)aj, key, v) {
        int64_t id;
        SMOE_RETURN_IF(!json_int(v, &id) || id < 0, SMOE_ERR_CORRUPT_FILE, "added_tokens.json: \"%s\" is not a token id",
                       key);
        SMOE_TRY(add_token(&c->added_json, &c->n_added_json, id, key, false));
    }
    return SMOE_OK;
}

void smoe_hf_id_to_title(const char *id, char *out, size_t size) {
    if (!size) return;
    size_t n = 0;
    const char *p = id;
    while (*p) {
        while (*p == '-' || isspace((unsigned char)*p)) p++;
        if (!*p) break;
        const char *w = p;
        while (*p && *p != '-' && !isspace((unsigned char)*p)) p++;
        size_t len = (size_t)(p - w);
        /* str.islower(): some cased character and none upper case */
        bool has_lower = false, has_upper = false;
        for (size_t i = 0; i < len; i++) {
            has_lower |= islower((unsigned char)w[i]) != 0;
            has_upper |= isupper((unsigned char)w[i]) != 0;
        }
        /* version (v1, v0.2) or starts with a digit: kept as is */
        bool keep = isdigit((unsigned char)w[0]);
        if (w[0] == 'v' && len > 1 && isdigit((unsigned char)w[1])) {
            size_t i = 1;
            bool ok = true;
            while (ok && i < len) {
                while (i < len && isdigit((unsigned char)w[i])) i++;
                if (i < len) {
                    ok = w[i] == '.' && i + 1 < len && isdigit((unsigned char)w[i + 1]);
                    i++;
                }
            }
            keep |= ok;
        }
        bool title = has_lower && !has_upper && !keep;
        if (n && n + 1 < size) out[n++] = ' ';
        bool prev_alpha = false;
        for (size_t i = 0; i < len && n + 1 < size; i++) {
            unsigned char ch = (unsigned char)w[i];
            bool alpha = isalpha(ch) != 0;
            if (title && alpha) ch = (unsigned char)(prev_alpha ? tolower(ch) : toupper(ch));
            prev_alpha = alpha;
            out[n++] = (char)ch;
        }
    }
    out[n] = '\0';
}

static smoe_status folder_name(smoe_hf_config *c, const char *dir) {
    char *abs = realpath(dir, NULL);
    const char *d = abs ? abs : dir;
    size_t len = strlen(d);
    while (len > 1 && d[len - 1] == '/') len--;
    size_t b = len;
    while (b > 0 && d[b - 1] != '/') b--;
    char base[256];
    size_t m = len - b < sizeof(base) - 1 ? len - b : sizeof(base) - 1;
    memcpy(base, d + b, m);
    base[m] = '\0';
    free(abs);
    c->name = malloc(sizeof(base) + 8);
    SMOE_RETURN_IF(!c->name, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    smoe_hf_id_to_title(base, c->name, sizeof(base) + 8);
    if (!c->name[0]) strcpy(c->name, "Mixtral");
    return SMOE_OK;
}

smoe_status smoe_hf_config_load(const char *dir, smoe_hf_config **out) {
    SMOE_RETURN_IF(!dir || !out, SMOE_ERR_INVALID_ARGUMENT, "smoe_hf_config_load: NULL argument");
    *out = NULL;
    smoe_hf_config *c = calloc(1, sizeof(*c));
    SMOE_RETURN_IF(!c, SMOE_ERR_OUT_OF_MEMORY, "out of memory");
    for (int s = 0; s < SMOE_HF_SPECIAL_COUNT; s++) {
        c->add_special[s] = -1;
        c->special_id[s] = -1;
    }
    json_t *cfg = NULL, *tc = NULL, *tj = NULL, *aj = NULL, *gc = NULL;
    smoe_status st;
    SMOE_GOTO_TRY(st, fail, load_json(dir, "config.json", false, &cfg));
    st = parse_config(c, cfg);
    if (st != SMOE_OK) {
        smoe_error_prefix("%s", dir);
        goto fail;
    }
    SMOE_GOTO_TRY(st, fail, load_json(dir, "tokenizer_config.json", true, &tc));
    if (tc) SMOE_GOTO_TRY(st, fail, parse_tokenizer_config(c, tc));
    SMOE_GOTO_TRY(st, fail, load_json(dir, "added_tokens.json", true, &aj));
    if (aj) SMOE_GOTO_TRY(st, fail, parse_added_tokens_json(c, aj));
    /* Special ids in llama.cpp's order of precedence: tokenizer.json, then config.json; generation_config.json is
     * our fallback for bos/eos. */
    SMOE_GOTO_TRY(st, fail, load_json(dir, "tokenizer.json", true, &tj));
    if (tj) resolve_from_tokenizer_json(c, tj);
    resolve_from_ids(c, cfg, false);
    SMOE_GOTO_TRY(st, fail, load_json(dir, "generation_config.json", true, &gc));
    if (gc) resolve_from_ids(c, gc, true);
    SMOE_GOTO_TRY(st, fail, folder_name(c, dir));
    json_decref(cfg);
    json_decref(tc);
    json_decref(tj);
    json_decref(aj);
    json_decref(gc);
    *out = c;
    return SMOE_OK;
fail:
    json_decref(cfg);
    json_decref(tc);
    json_decref(tj);
    json_decref(aj);
    json_decref(gc);
    smoe_hf_config_free(c);
    return st;
}

void smoe_hf_config_free(smoe_hf_config *c) {
    if (!c) return;
    free(c->architecture);
    free(c->name);
    free(c->chat_template);
    for (int s = 0; s < SMOE_HF_SPECIAL_COUNT; s++) free(c->special_content[s]);
    for (int64_t i = 0; i < c->n_added_decoder; i++) free(c->added_decoder[i].content);
    for (int64_t i = 0; i < c->n_added_json; i++) free(c->added_json[i].content);
    free(c->added_decoder);
    free(c->added_json);
    free(c);
}
