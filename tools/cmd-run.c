/*
 * cmd-run.c - `smoe run`: complete a prompt (or answer it with --chat), streaming the text to stdout.
 * Statistics go to stderr so stdout holds only the generated text.
 */
#include "cmd.h"
#include "gen-common.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static bool write_unless_interrupted(const char *text, size_t len, void *user_data) {
    smoe_cli_write_text(text, len, user_data);
    return !interrupted;
}

static void usage(FILE *f) {
    fprintf(f, "usage: smoe run -m MODEL (-p TEXT | -f FILE) [options]\n\n"
               "Completes TEXT (or, with --chat, answers it as the user's message) and streams the text to stdout.\n\n"
               "  -p, --prompt TEXT        the prompt\n"
               "  -f, --file FILE          read the prompt from FILE\n"
               "  --chat                   apply the [INST] chat template (mistral-common v1)\n"
               "  --system TEXT            system prompt (with --chat)\n"
               "  --no-bos                 do not add BOS (plain completion)\n"
               "  --dump-logits FILE       write the float32 logits of the last prompt position to FILE\n");
    smoe_cli_print_common_usage(f);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char  *buf = malloc(cap);
    while (buf) {
        if (n + 4096 > cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = '\0', *len = n;
    return buf;
}

/* Tokenizes into a malloc'd array (growing on SMOE_ERR_BUFFER_TOO_SMALL). */
static smoe_status tokenize_prompt(const smoe_tokenizer *tok, bool chat, const char *system, const char *text,
                                   size_t len, uint32_t flags, int32_t **ids, size_t *n) {
    size_t cap = len + 16;
    for (int attempt = 0; attempt < 2; attempt++) {
        *ids = malloc(cap * sizeof(int32_t));
        if (!*ids) return SMOE_ERR_OUT_OF_MEMORY;
        smoe_status st;
        if (chat) {
            smoe_chat_message msgs[2];
            size_t            nm = 0;
            if (system) msgs[nm++] = (smoe_chat_message){"system", system};
            msgs[nm++] = (smoe_chat_message){"user", text};
            st = smoe_chat_tokenize(tok, msgs, nm, *ids, cap, n);
        } else {
            st = smoe_tokenize(tok, text, len, *ids, cap, n, flags);
        }
        if (st != SMOE_ERR_BUFFER_TOO_SMALL) return st;
        free(*ids);
        *ids = NULL;
        cap = *n;
    }
    return SMOE_ERR_BUFFER_TOO_SMALL;
}

int smoe_cmd_run(int argc, char **argv) {
    smoe_cli_opts o;
    smoe_cli_opts_init(&o);
    const char *prompt = NULL, *file = NULL, *system = NULL, *dump = NULL;
    bool        chat = false, no_bos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int         r = smoe_cli_parse_common(&o, argc, argv, &i, "run");
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        if (!strcmp(a, "--chat")) chat = true;
        else if (!strcmp(a, "--no-bos")) no_bos = true;
        else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && i + 1 < argc) prompt = argv[++i];
        else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && i + 1 < argc) file = argv[++i];
        else if (!strcmp(a, "--system") && i + 1 < argc) system = argv[++i];
        else if (!strcmp(a, "--dump-logits") && i + 1 < argc) dump = argv[++i];
        else {
            fprintf(stderr, "smoe run: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!!prompt == !!file) {
        fprintf(stderr, "smoe run: give exactly one of -p TEXT or -f FILE\n");
        return 2;
    }
    if (system && !chat) {
        fprintf(stderr, "smoe run: --system needs --chat\n");
        return 2;
    }
    size_t len = 0;
    char  *owned = NULL;
    if (file) {
        owned = read_file(file, &len);
        if (!owned) {
            fprintf(stderr, "smoe run: cannot read %s\n", file);
            return 1;
        }
        if (memchr(owned, '\0', len) && chat) {
            fprintf(stderr, "smoe run: %s contains a NUL byte\n", file);
            free(owned);
            return 1;
        }
        prompt = owned;
    } else {
        len = strlen(prompt);
    }

    smoe_model   *model = NULL;
    smoe_context *ctx = NULL;
    int32_t      *ids = NULL;
    size_t        n_ids = 0;
    int           rc = smoe_cli_load(&o, "run", &model, &ctx);
    if (rc) goto done;

    const smoe_tokenizer *tok = smoe_model_tokenizer(model);
    uint32_t              flags = smoe_tokenizer_default_flags(tok);
    if (no_bos) flags &= ~SMOE_TOKENIZE_ADD_BOS;
    smoe_status st = tokenize_prompt(tok, chat, system, prompt, len, flags, &ids, &n_ids);
    if (st != SMOE_OK) {
        rc = smoe_cli_fail("run", st);
        goto done;
    }
    if (n_ids == 0) {
        fprintf(stderr, "smoe run: the prompt has no tokens (empty text with --no-bos)\n");
        rc = 1;
        goto done;
    }

    const int32_t *gen_prompt = ids;
    size_t         gen_n = n_ids;
    if (dump) {
        /* decode the prompt ourselves to read its last logits, then let generate re-decode the last token */
        smoe_batch b;
        if ((st = smoe_batch_init((int32_t)n_ids, &b)) != SMOE_OK) {
            rc = smoe_cli_fail("run", st);
            goto done;
        }
        for (size_t i = 0; i < n_ids && st == SMOE_OK; i++)
            st = smoe_batch_add(&b, ids[i], (int32_t)i, 0, i + 1 == n_ids);
        if (st == SMOE_OK) st = smoe_decode(ctx, &b);
        smoe_batch_free(&b);
        const float *logits = st == SMOE_OK ? smoe_get_logits(ctx, (int32_t)n_ids - 1) : NULL;
        if (st != SMOE_OK || !logits) {
            rc = smoe_cli_fail("run", st != SMOE_OK ? st : SMOE_ERR_INVALID_ARGUMENT);
            goto done;
        }
        smoe_model_info info;
        smoe_model_get_info(model, &info);
        FILE *f = fopen(dump, "wb");
        if (!f || fwrite(logits, sizeof(float), (size_t)info.n_vocab, f) != (size_t)info.n_vocab || fclose(f)) {
            fprintf(stderr, "smoe run: cannot write %s\n", dump);
            rc = 1;
            goto done;
        }
        smoe_kv_seq_rm(ctx, 0, (int32_t)n_ids - 1, -1);
        gen_prompt = ids + n_ids - 1;
        gen_n = 1;
    }

    smoe_generate_params gp = smoe_generate_default_params();
    gp.max_tokens = o.n_predict;
    gp.sampling = o.sampling;
    gp.stop = o.stop;
    gp.n_stop = o.n_stop;
    gp.ignore_eos = o.ignore_eos;
    gp.on_text = write_unless_interrupted;
    gp.detokenize_flags = chat ? 0 : SMOE_DETOKENIZE_KEEP_LEADING_SPACE;
    signal(SIGINT, on_sigint);
    if (!chat) fwrite(prompt, 1, len, stdout); /* a completion shows its prompt, as llama.cpp does */
    smoe_generate_result res;
    st = smoe_generate(ctx, gen_prompt, gen_n, &gp, &res);
    signal(SIGINT, SIG_DFL);
    if (st != SMOE_OK) {
        fputc('\n', stdout);
        rc = smoe_cli_fail("run", st);
        goto done;
    }
    if (dump) res.n_prompt = (int32_t)n_ids;
    fputc('\n', stdout);
    fflush(stdout);
    smoe_cli_print_speed(&res);
done:
    free(ids);
    free(owned);
    smoe_context_free(ctx);
    smoe_model_free(model);
    return rc;
}
