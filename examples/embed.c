/*
 * embed.c - the smallest program embedding smoe: load a model, stream a chat reply to stdout.
 *
 *   cc embed.c $(pkg-config --cflags --libs smoe) -o embed
 *   ./embed model.gguf "Why is the sky blue?" [max_tokens]
 *
 * Greedy decoding, so the output is reproducible. Exit status 0 on success, 1 on any error (printed to stderr).
 */
#include <smoe.h>

#include <stdio.h>
#include <stdlib.h>

static bool print_text(const char *text, size_t len, void *user_data) {
    (void)user_data;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

static int fail(const char *what, smoe_status st) {
    fprintf(stderr, "embed: %s: %s (%s)\n", what, smoe_status_string(st), smoe_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf MESSAGE [MAX_TOKENS]\n", argv[0]);
        return 2;
    }
    smoe_model   *model = NULL;
    smoe_context *ctx = NULL;
    smoe_status   st = smoe_model_load(argv[1], NULL, &model);
    if (st != SMOE_OK) return fail("load", st);

    smoe_context_params cp = smoe_context_default_params();
    cp.n_ctx = 2048;
    if ((st = smoe_context_init(model, &cp, &ctx)) != SMOE_OK) {
        smoe_model_free(model);
        return fail("context", st);
    }

    /* the conversation -> prompt tokens, exactly as mistral-common encodes it */
    const smoe_chat_message msgs[] = {{"user", argv[2]}};
    int32_t                 ids[1024];
    size_t                  n_ids = 0;
    st = smoe_chat_tokenize(smoe_model_tokenizer(model), msgs, 1, ids, 1024, &n_ids);

    smoe_generate_params gp = smoe_generate_default_params();
    gp.max_tokens = argc > 3 ? atoi(argv[3]) : 64;
    gp.sampling.temperature = 0.0f; /* greedy */
    gp.on_text = print_text;
    gp.detokenize_flags = 0; /* a reply: drop the first piece's leading space */
    smoe_generate_result res = {0};
    if (st == SMOE_OK) st = smoe_generate(ctx, ids, n_ids, &gp, &res);
    printf("\n");
    if (st == SMOE_OK)
        fprintf(stderr, "embed: %d prompt tokens, %d generated, %.1f tok/s\n", res.n_prompt, res.n_generated,
                res.generate_ms > 0 ? res.n_generated * 1e3 / res.generate_ms : 0.0);
    smoe_context_free(ctx);
    smoe_model_free(model);
    return st == SMOE_OK ? 0 : fail("generate", st);
}
