/*
 * model-logits.c - helper of tests/python/test_model.py (public API only): decodes token ids and writes the logits
 * of every position as raw little-endian float32, [n_tokens][n_vocab].
 *
 *   model-logits MODEL.gguf OUT.f32 [--kv f32|f16|q8_0] [--n-batch N] [--no-mmap] [--one-by-one] ID...
 *
 * --one-by-one decodes one token per smoe_decode call instead of the whole prompt in one batch.
 * Exit status 0 on success; on failure prints the status and smoe_last_error() to stderr.
 */
#include <smoe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, smoe_status st) {
    fprintf(stderr, "model-logits: %s: %s: %s\n", what, smoe_status_string(st), smoe_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: model-logits MODEL OUT [--kv T] [--n-batch N] [--no-mmap] [--one-by-one] ID...\n");
        return 2;
    }
    smoe_model_params   mp = smoe_model_default_params();
    smoe_context_params cp = smoe_context_default_params();
    mp.n_threads = 2;
    cp.n_ctx = 1024;
    cp.kv_type = SMOE_KV_F32;
    int one_by_one = 0, n = 0;
    int32_t *ids = calloc((size_t)argc, sizeof(int32_t));
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--kv") == 0 && i + 1 < argc) {
            const char *t = argv[++i];
            cp.kv_type = strcmp(t, "f16") == 0 ? SMOE_KV_F16 : strcmp(t, "q8_0") == 0 ? SMOE_KV_Q8_0 : SMOE_KV_F32;
        } else if (strcmp(argv[i], "--n-batch") == 0 && i + 1 < argc) {
            cp.n_batch = (uint32_t)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--no-mmap") == 0) {
            mp.use_mmap = false;
        } else if (strcmp(argv[i], "--one-by-one") == 0) {
            one_by_one = 1;
        } else {
            ids[n++] = (int32_t)atoi(argv[i]);
        }
    }
    smoe_model *m = NULL;
    smoe_status st = smoe_model_load(argv[1], &mp, &m);
    if (st != SMOE_OK) return fail("load", st);
    smoe_context *ctx = NULL;
    st = smoe_context_init(m, &cp, &ctx);
    if (st != SMOE_OK) return fail("context", st);
    smoe_model_info info;
    smoe_model_get_info(m, &info);
    float     *out = malloc((size_t)n * (size_t)info.n_vocab * sizeof(float));
    smoe_batch b;
    if (smoe_batch_init(n, &b) != SMOE_OK) return fail("batch", SMOE_ERR_OUT_OF_MEMORY);
    for (int i0 = 0; i0 < n;) {
        const int k = one_by_one ? 1 : n;
        b.n_tokens = 0;
        for (int i = i0; i < i0 + k; i++) smoe_batch_add(&b, ids[i], i, 0, true);
        st = smoe_decode(ctx, &b);
        if (st != SMOE_OK) return fail("decode", st);
        for (int i = 0; i < k; i++)
            memcpy(out + (size_t)(i0 + i) * info.n_vocab, smoe_get_logits(ctx, i), (size_t)info.n_vocab * sizeof(float));
        i0 += k;
    }
    FILE *f = fopen(argv[2], "wb");
    if (!f || fwrite(out, sizeof(float), (size_t)n * info.n_vocab, f) != (size_t)n * info.n_vocab) {
        fprintf(stderr, "model-logits: cannot write %s\n", argv[2]);
        return 1;
    }
    fclose(f);
    smoe_batch_free(&b);
    smoe_context_free(ctx);
    smoe_model_free(m);
    free(out);
    free(ids);
    return 0;
}
