/*
 * cmd-tokenize.c - `smoe tokenize -m MODEL.gguf [-p TEXT | -f FILE] [--no-bos] [--special] [--ids]`: the token ids of
 * a text with the model's tokenizer. Uses the public API only.
 */
#include "cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: smoe tokenize -m MODEL.gguf [-p TEXT | -f FILE] [options]\n"
               "\n"
               "Tokenizes TEXT (or the contents of FILE, '-' for standard input) with the model's SentencePiece\n"
               "tokenizer and prints one line per token: id, then the piece as stored in the vocabulary (U+2581 for\n"
               "spaces, <0xNN> for byte tokens). BOS/EOS are added as the model's GGUF says (BOS by default).\n"
               "\n"
               "options:\n"
               "  -m, --model FILE   GGUF file with tokenizer.ggml.* keys (required)\n"
               "  -p, --prompt TEXT  the text\n"
               "  -f, --file FILE    read the text from FILE (exact bytes; '-' = stdin)\n"
               "  --no-bos           do not add the BOS token\n"
               "  --special          parse control pieces written in the text (<s>, </s>) as their tokens\n"
               "  --ids              print only the ids, space-separated on one line\n"
               "  -h, --help         this help\n");
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    size_t n = 0, cap = 1 << 16;
    char  *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    if (f != stdin) fclose(f);
    *len = n;
    return buf;
}

int smoe_cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *file = NULL;
    bool        no_bos = false, special = false, ids_only = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc)
            model = argv[++i];
        else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && i + 1 < argc)
            prompt = argv[++i];
        else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && i + 1 < argc)
            file = argv[++i];
        else if (!strcmp(a, "--no-bos"))
            no_bos = true;
        else if (!strcmp(a, "--special"))
            special = true;
        else if (!strcmp(a, "--ids"))
            ids_only = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "smoe tokenize: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model || (!prompt == !file)) {
        fprintf(stderr, "smoe tokenize: need -m MODEL and exactly one of -p TEXT or -f FILE\n\n");
        usage(stderr);
        return 2;
    }

    size_t len  = 0;
    char  *text = NULL;
    if (file) {
        text = read_all(file, &len);
        if (!text) {
            fprintf(stderr, "smoe tokenize: cannot read %s\n", file);
            return 1;
        }
    }
    smoe_tokenizer *tok;
    smoe_status     st = smoe_tokenizer_load_gguf(model, &tok);
    if (st != SMOE_OK) {
        free(text);
        return smoe_cli_fail("tokenize", st);
    }
    uint32_t flags = smoe_tokenizer_default_flags(tok);
    if (no_bos) flags &= ~SMOE_TOKENIZE_ADD_BOS;
    if (special) flags |= SMOE_TOKENIZE_PARSE_SPECIAL;
    const char *src = file ? text : prompt;
    if (!file) len = strlen(prompt);

    size_t   n   = 0;
    int32_t *ids = NULL;
    st           = smoe_tokenize(tok, src, len, NULL, 0, &n, flags);
    if (st == SMOE_ERR_BUFFER_TOO_SMALL) {
        ids = malloc(n * sizeof(*ids));
        st  = ids ? smoe_tokenize(tok, src, len, ids, n, &n, flags) : SMOE_ERR_OUT_OF_MEMORY;
    }
    int rc = 0;
    if (st != SMOE_OK) {
        rc = smoe_cli_fail("tokenize", st);
    } else if (ids_only) {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
    } else {
        for (size_t i = 0; i < n; i++) {
            printf("%6d '", ids[i]);
            /* the piece, with control characters escaped so that one token is one line */
            for (const unsigned char *p = (const unsigned char *)smoe_token_to_piece(tok, ids[i]); *p; p++) {
                if (*p < 0x20 || *p == 0x7F)
                    printf("\\x%02x", *p);
                else
                    putchar(*p);
            }
            printf("'\n");
        }
    }
    free(ids);
    free(text);
    smoe_tokenizer_free(tok);
    return rc;
}
