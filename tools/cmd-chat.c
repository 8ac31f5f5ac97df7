/*
 * cmd-chat.c - `smoe chat`: an interactive conversation with the [INST] template, streamed.
 *
 * Each turn re-encodes the whole conversation exactly as mistral-common does (the assistant's replies as text), keeps
 * the KV cache's longest common prefix with it and decodes only the rest, so a turn costs its new tokens. Ctrl-C
 * stops the current reply; at the prompt it ends the program (as does EOF / Ctrl-D).
 */
#include "cmd.h"
#include "gen-common.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct reply {
    char  *text;
    size_t len, cap;
} reply;

static bool on_text(const char *text, size_t len, void *user_data) {
    reply *r = user_data;
    smoe_cli_write_text(text, len, NULL);
    if (r->len + len + 1 > r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 1024;
        while (ncap < r->len + len + 1) ncap *= 2;
        char *nt = realloc(r->text, ncap);
        if (!nt) return false;
        r->text = nt;
        r->cap = ncap;
    }
    memcpy(r->text + r->len, text, len);
    r->len += len;
    r->text[r->len] = '\0';
    return !interrupted;
}

static void usage(FILE *f) {
    fprintf(f, "usage: smoe chat -m MODEL [--system TEXT] [options]\n\n"
               "An interactive conversation. Type a message and press Enter; Ctrl-C stops a reply, Ctrl-D quits.\n\n"
               "  --system TEXT            system prompt (prepended to the first message, as mistral-common does)\n");
    smoe_cli_print_common_usage(f);
}

/* Reads one line from stdin without the newline into a malloc'd string; NULL at EOF or on Ctrl-C. */
static char *read_line(void) {
    size_t cap = 256, n = 0;
    char  *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        int c = fgetc(stdin);
        if (c == EOF || interrupted) {
            if (n > 0 && !interrupted && !ferror(stdin)) break;
            free(buf);
            return NULL;
        }
        if (c == '\n') break;
        if (n + 2 > cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        buf[n++] = (char)c;
    }
    if (n > 0 && buf[n - 1] == '\r') n--;
    buf[n] = '\0';
    return buf;
}

int smoe_cmd_chat(int argc, char **argv) {
    smoe_cli_opts o;
    smoe_cli_opts_init(&o);
    o.n_predict = 1024;
    const char *system = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int         r = smoe_cli_parse_common(&o, argc, argv, &i, "chat");
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        if (!strcmp(a, "--system") && i + 1 < argc) system = argv[++i];
        else {
            fprintf(stderr, "smoe chat: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    smoe_model   *model = NULL;
    smoe_context *ctx = NULL;
    int           rc = smoe_cli_load(&o, "chat", &model, &ctx);
    if (rc) return rc;
    const smoe_tokenizer *tok = smoe_model_tokenizer(model);

    /* the conversation: messages (owned strings) and the tokens now in the KV cache */
    size_t             n_msgs = 0, cap_msgs = 16;
    smoe_chat_message *msgs = malloc(cap_msgs * sizeof(*msgs));
    int32_t           *cached = NULL, *ids = NULL, *gen_buf = NULL;
    size_t             n_cached = 0, cap_ids = 0;
    if (!msgs) return smoe_cli_fail("chat", SMOE_ERR_OUT_OF_MEMORY);
    if (system) msgs[n_msgs++] = (smoe_chat_message){"system", strdup(system)};

    struct sigaction sa = {0};
    sa.sa_handler = on_sigint; /* no SA_RESTART: Ctrl-C at the prompt interrupts the read */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    fprintf(stderr, "smoe chat: Ctrl-C stops a reply, Ctrl-D quits.\n");

    for (;;) {
        interrupted = 0;
        fprintf(stdout, "\n> ");
        fflush(stdout);
        char *line = read_line();
        if (!line) break;
        if (!line[0]) {
            free(line);
            continue;
        }
        if (n_msgs + 2 > cap_msgs) {
            smoe_chat_message *nm = realloc(msgs, (cap_msgs *= 2) * sizeof(*msgs));
            if (!nm) {
                free(line);
                rc = smoe_cli_fail("chat", SMOE_ERR_OUT_OF_MEMORY);
                break;
            }
            msgs = nm;
        }
        msgs[n_msgs++] = (smoe_chat_message){"user", line};

        size_t      n_ids = 0;
        smoe_status st = smoe_chat_tokenize(tok, msgs, n_msgs, ids, cap_ids, &n_ids);
        if (st == SMOE_ERR_BUFFER_TOO_SMALL) {
            int32_t *ni = realloc(ids, n_ids * sizeof(*ids));
            if (!ni) st = SMOE_ERR_OUT_OF_MEMORY;
            else {
                ids = ni;
                cap_ids = n_ids;
                st = smoe_chat_tokenize(tok, msgs, n_msgs, ids, cap_ids, &n_ids);
            }
        }
        if (st != SMOE_OK) { /* e.g. invalid UTF-8: drop the message, keep the conversation */
            smoe_cli_fail("chat", st);
            free((char *)msgs[--n_msgs].content);
            continue;
        }
        /* keep the cache's common prefix (at least one token must be decoded to get logits) */
        size_t keep = 0;
        while (keep < n_cached && keep < n_ids && cached[keep] == ids[keep]) keep++;
        if (keep == n_ids) keep--;
        smoe_kv_seq_rm(ctx, 0, (int32_t)keep, -1);

        reply                r = {0};
        smoe_generate_params gp = smoe_generate_default_params();
        gp.max_tokens = o.n_predict;
        gp.sampling = o.sampling;
        gp.stop = o.stop;
        gp.n_stop = o.n_stop;
        gp.on_text = on_text;
        gp.user_data = &r;
        gp.detokenize_flags = 0;
        uint32_t room = smoe_context_n_ctx(ctx) - smoe_kv_used(ctx);
        if ((size_t)gp.max_tokens + (n_ids - keep) > room)
            gp.max_tokens = room > n_ids - keep ? (int32_t)(room - (n_ids - keep)) : 0;
        if (gp.max_tokens < 1) {
            fprintf(stderr, "smoe chat: the context is full (%u tokens); start a new chat with a larger -c\n",
                    smoe_context_n_ctx(ctx));
            free((char *)msgs[--n_msgs].content);
            break;
        }
        int32_t *gen = realloc(gen_buf, (size_t)gp.max_tokens * sizeof(*gen_buf));
        if (!gen) {
            rc = smoe_cli_fail("chat", SMOE_ERR_OUT_OF_MEMORY);
            break;
        }
        gen_buf = gen;
        gp.out_tokens = gen;
        smoe_generate_result res;
        st = smoe_generate(ctx, ids + keep, n_ids - keep, &gp, &res);
        if (st != SMOE_OK) {
            smoe_cli_fail("chat", st);
            free(r.text);
            free((char *)msgs[--n_msgs].content);
            smoe_kv_seq_rm(ctx, 0, (int32_t)keep, -1);
            n_cached = keep;
            continue;
        }
        if (interrupted) fprintf(stderr, "\n[stopped]");
        smoe_cli_print_speed(&res);
        msgs[n_msgs++] = (smoe_chat_message){"assistant", r.text ? r.text : strdup("")};
        /* the cache now holds ids + the generated tokens */
        int32_t *nc = realloc(cached, (n_ids + (size_t)res.n_generated) * sizeof(*cached));
        if (!nc) {
            rc = smoe_cli_fail("chat", SMOE_ERR_OUT_OF_MEMORY);
            break;
        }
        cached = nc;
        memcpy(cached, ids, n_ids * sizeof(*ids));
        memcpy(cached + n_ids, gen, (size_t)res.n_generated * sizeof(*gen));
        n_cached = n_ids + (size_t)res.n_generated;
    }
    fputc('\n', stdout);
    for (size_t i = 0; i < n_msgs; i++) free((char *)msgs[i].content);
    free(msgs);
    free(cached);
    free(ids);
    free(gen_buf);
    smoe_context_free(ctx);
    smoe_model_free(model);
    return rc;
}
