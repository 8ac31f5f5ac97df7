/*
 * e2e-eval.c - runs a model on given token ids for the end-to-end reference checks (public API only).
 *
 *   e2e-eval MODEL.gguf --prompt "1 733 ..." [--forced "17654 ..."] [--n-free N] [--logits-out FILE]
 *            [--kv f16|f32|q8_0] [--batch N] [--backend SPEC] [--gpu-mem BYTES]
 *
 * Decodes the prompt (in batches of --batch tokens, default all at once), writes the last position's logits to
 * FILE (raw float32), then:
 *   - teacher forcing: for each forced token, records the argmax of the current logits and feeds the forced token
 *     (so one early disagreement does not derail the rest of the comparison);
 *   - free running: clears the cache, decodes the prompt again and generates N greedy tokens.
 * Prints one JSON object: {"forced_argmax": [...], "free_greedy": [...], "placement": {...}}.
 */
#include <smoe.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_ids(const char *s, int32_t **out, size_t *n) {
    size_t cap = 64;
    *n = 0;
    *out = malloc(cap * sizeof(int32_t));
    if (!*out) return -1;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s) {
            if (*s == ' ' || *s == ',') {
                s++;
                continue;
            }
            return -1;
        }
        if (errno) return -1;
        if (*n == cap) {
            int32_t *ni = realloc(*out, (cap *= 2) * sizeof(int32_t));
            if (!ni) return -1;
            *out = ni;
        }
        (*out)[(*n)++] = (int32_t)v;
        s = end;
    }
    return 0;
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int die(const char *what, smoe_status st) {
    fprintf(stderr, "e2e-eval: %s: %s: %s\n", what, smoe_status_string(st), smoe_last_error());
    return 1;
}

/* Decodes ids[0..n) at positions pos0.. in sequence 0, in chunks of `chunk`, logits for the last one. */
static smoe_status decode(smoe_context *ctx, smoe_batch *b, const int32_t *ids, size_t n, int32_t pos0, size_t chunk) {
    for (size_t i = 0; i < n; i += chunk) {
        size_t m = n - i < chunk ? n - i : chunk;
        b->n_tokens = 0;
        for (size_t j = 0; j < m; j++) {
            smoe_status st = smoe_batch_add(b, ids[i + j], pos0 + (int32_t)(i + j), 0, i + j + 1 == n);
            if (st != SMOE_OK) return st;
        }
        smoe_status st = smoe_decode(ctx, b);
        if (st != SMOE_OK) return st;
    }
    return SMOE_OK;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *prompt_s = NULL, *forced_s = "", *logits_out = NULL;
    int         n_free = 0;
    size_t      chunk = 0;
    smoe_kv_type kv = SMOE_KV_F32;
    smoe_model_params mp = smoe_model_default_params();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--prompt") && i + 1 < argc) prompt_s = argv[++i];
        else if (!strcmp(argv[i], "--forced") && i + 1 < argc) forced_s = argv[++i];
        else if (!strcmp(argv[i], "--n-free") && i + 1 < argc) n_free = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--logits-out") && i + 1 < argc) logits_out = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) chunk = (size_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--backend") && i + 1 < argc) mp.backend = argv[++i];
        else if (!strcmp(argv[i], "--gpu-mem") && i + 1 < argc) mp.gpu_mem = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--kv") && i + 1 < argc) {
            const char *k = argv[++i];
            kv = !strcmp(k, "f16") ? SMOE_KV_F16 : !strcmp(k, "q8_0") ? SMOE_KV_Q8_0 : SMOE_KV_F32;
        } else if (!model_path) model_path = argv[i];
        else {
            fprintf(stderr, "e2e-eval: unexpected argument %s\n", argv[i]);
            return 2;
        }
    }
    int32_t *prompt = NULL, *forced = NULL;
    size_t   n_prompt = 0, n_forced = 0;
    if (!model_path || !prompt_s || parse_ids(prompt_s, &prompt, &n_prompt) || parse_ids(forced_s, &forced, &n_forced) ||
        n_prompt == 0) {
        fprintf(stderr, "usage: e2e-eval MODEL --prompt IDS [--forced IDS] [--n-free N] [--logits-out FILE]\n");
        return 2;
    }
    if (chunk == 0) chunk = n_prompt;

    smoe_model   *model = NULL;
    smoe_context *ctx = NULL;
    smoe_status   st = smoe_model_load(model_path, &mp, &model);
    if (st != SMOE_OK) return die("load", st);
    smoe_model_info info;
    smoe_model_get_info(model, &info);
    smoe_context_params cp = smoe_context_default_params();
    cp.n_ctx = (uint32_t)(n_prompt + n_forced + (size_t)n_free + 8);
    cp.n_batch = (uint32_t)(chunk > 512 ? 512 : chunk);
    cp.kv_type = kv;
    if ((st = smoe_context_init(model, &cp, &ctx)) != SMOE_OK) return die("context", st);
    smoe_batch b;
    if ((st = smoe_batch_init((int32_t)chunk, &b)) != SMOE_OK) return die("batch", st);

    if ((st = decode(ctx, &b, prompt, n_prompt, 0, chunk)) != SMOE_OK) return die("decode prompt", st);
    const float *logits = smoe_get_logits(ctx, b.n_tokens - 1);
    if (!logits) return die("logits", SMOE_ERR_INVALID_ARGUMENT);
    if (logits_out) {
        FILE *f = fopen(logits_out, "wb");
        if (!f || fwrite(logits, sizeof(float), (size_t)info.n_vocab, f) != (size_t)info.n_vocab || fclose(f)) {
            fprintf(stderr, "e2e-eval: cannot write %s\n", logits_out);
            return 1;
        }
    }
    char names_last[64];
    snprintf(names_last, sizeof(names_last), "blk.%d.ffn_up_exps.weight", (int)info.n_layer - 1);
    printf("{\"forced_argmax\": [");
    for (size_t i = 0; i < n_forced; i++) {
        printf("%s%d", i ? ", " : "", (int)argmax(logits, info.n_vocab));
        if ((st = decode(ctx, &b, &forced[i], 1, (int32_t)(n_prompt + i), 1)) != SMOE_OK) return die("decode", st);
        logits = smoe_get_logits(ctx, 0);
    }
    printf("], \"free_greedy\": [");
    if (n_free > 0) {
        smoe_kv_clear(ctx);
        if ((st = decode(ctx, &b, prompt, n_prompt, 0, chunk)) != SMOE_OK) return die("decode prompt", st);
        logits = smoe_get_logits(ctx, b.n_tokens - 1);
        for (int i = 0; i < n_free; i++) {
            int32_t t = argmax(logits, info.n_vocab);
            printf("%s%d", i ? ", " : "", (int)t);
            if ((st = decode(ctx, &b, &t, 1, (int32_t)n_prompt + i, 1)) != SMOE_OK) return die("decode", st);
            logits = smoe_get_logits(ctx, 0);
        }
    }
    smoe_placement pl = {.size = sizeof(pl)};
    if ((st = smoe_model_get_placement(model, &pl)) != SMOE_OK) return die("placement", st);
    printf("], \"placement\": {\"split\": %s, \"gpu_bytes\": %llu, \"host_bytes\": %llu, \"n_gpu_tensors\": %d, "
           "\"n_host_tensors\": %d, \"n_ffn_layers_gpu\": %d, \"dense_complete\": %s, \"experts0_on_host\": %d, "
           "\"experts_last_on_host\": %d}}\n",
           pl.split ? "true" : "false", (unsigned long long)pl.gpu_bytes, (unsigned long long)pl.host_bytes,
           (int)pl.n_gpu_tensors, (int)pl.n_host_tensors, (int)pl.n_ffn_layers_gpu,
           pl.dense_complete ? "true" : "false", (int)smoe_model_weight_on_host(model, "blk.0.ffn_up_exps.weight"),
           (int)smoe_model_weight_on_host(model, names_last));
    smoe_batch_free(&b);
    smoe_context_free(ctx);
    smoe_model_free(model);
    free(prompt);
    free(forced);
    return 0;
}
