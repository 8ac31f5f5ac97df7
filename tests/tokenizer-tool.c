/*
 * tokenizer-tool.c - drives smoe's tokenizer for tests/python/test_tokenizer.py, many cases per process.
 *
 *   tokenizer-tool (-g VOCAB.gguf | -s tokenizer.model) COMMAND [options] [FILE]
 *
 * Input lines are hex-encoded bytes (so any byte string, CR, NUL or invalid UTF-8 included, fits on a line);
 * output is one JSON object per input line:
 *   encode [--bos] [--eos] [--special] FILE  {"ids":[..],"dec":HEX,"stream":HEX} or {"err":STATUS,"msg":"..."}
 *            dec = smoe_detokenize(ids), stream = the streaming detokenizer fed one id at a time, then flushed
 *   decode [--keep-space] FILE               each line: ids separated by spaces -> {"dec":HEX,"stream":HEX}
 *   chat FILE                                each line: JSON [{"role":..,"content":..},..] -> {"ids":[..]} / err
 *   format FILE                              the same -> {"text":HEX} / err
 *   vocab                                    {"n_vocab":..,"bos":..,"eos":..,"unk":..,"flags":..} then per id
 *                                            {"piece":HEX,"score":..,"type":..}
 *   bench FILE                               tokenizes the whole file (best of 3); bytes, ids, CPU and wall seconds
 */
#include "convert/spm-model.h"
#include "core/tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void put_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) printf("%02x", (unsigned char)s[i]);
}

static void put_err(smoe_status st) {
    printf("{\"err\":%d,\"msg\":", (int)st);
    json_t *m = json_string(smoe_last_error());
    char   *d = m ? json_dumps(m, JSON_ENCODE_ANY) : NULL;
    printf("%s}\n", d ? d : "\"?\"");
    free(d);
    json_decref(m);
}

static char *read_line(FILE *f, size_t *len) {
    size_t  cap = 0;
    char   *line = NULL;
    ssize_t n    = getline(&line, &cap, f);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    *len = (size_t)n;
    return line;
}

static size_t unhex(char *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned v;
        sscanf(s + i, "%2x", &v);
        s[o++] = (char)v;
    }
    return o;
}

/* dec and stream of ids, as JSON fields (no braces) */
static int put_decoded(const smoe_tokenizer *tok, const int32_t *ids, size_t n, uint32_t dflags) {
    size_t      need;
    smoe_status st = smoe_detokenize(tok, ids, n, NULL, 0, &need, dflags);
    if (st != SMOE_ERR_BUFFER_TOO_SMALL) return (int)st;
    char *buf = malloc(need + 1);
    if (!buf) return -5;
    st = smoe_detokenize(tok, ids, n, buf, need + 1, &need, dflags);
    if (st != SMOE_OK) {
        free(buf);
        return (int)st;
    }
    printf("\"dec\":\"");
    put_hex(buf, need);
    free(buf);
    printf("\",\"stream\":\"");
    smoe_detokenizer *d;
    if (smoe_detokenizer_init(tok, dflags, &d) != SMOE_OK) return -5;
    for (size_t i = 0; i <= n; i++) {
        const char *t;
        size_t      l;
        st = i < n ? smoe_detokenizer_feed(d, ids[i], &t, &l) : smoe_detokenizer_flush(d, &t, &l);
        if (st != SMOE_OK) break;
        put_hex(t, l);
    }
    smoe_detokenizer_free(d);
    printf("\"");
    return (int)st;
}

static int cmd_encode(const smoe_tokenizer *tok, FILE *in, uint32_t flags) {
    char  *line;
    size_t len;
    while ((line = read_line(in, &len))) {
        len = unhex(line, len);
        size_t      n;
        smoe_status st = smoe_tokenize(tok, line, len, NULL, 0, &n, flags);
        int32_t    *ids = NULL;
        if (st == SMOE_ERR_BUFFER_TOO_SMALL || st == SMOE_OK) {
            ids = malloc((n + 1) * sizeof(*ids));
            st  = smoe_tokenize(tok, line, len, ids, n, &n, flags);
        }
        if (st != SMOE_OK) {
            put_err(st);
        } else {
            printf("{\"ids\":[");
            for (size_t i = 0; i < n; i++) printf(i ? ",%d" : "%d", ids[i]);
            printf("],");
            put_decoded(tok, ids, n, 0);
            printf("}\n");
        }
        free(ids);
        free(line);
    }
    return 0;
}

static int cmd_decode(const smoe_tokenizer *tok, FILE *in, uint32_t dflags) {
    char  *line;
    size_t len;
    while ((line = read_line(in, &len))) {
        size_t   n = 0, cap = 16;
        int32_t *ids = malloc(cap * sizeof(*ids));
        for (char *p = line, *e; *p; p = e) {
            long v = strtol(p, &e, 10);
            if (e == p) break;
            if (n == cap) ids = realloc(ids, (cap *= 2) * sizeof(*ids));
            ids[n++] = (int32_t)v;
        }
        printf("{");
        int st = put_decoded(tok, ids, n, dflags);
        if (st) printf(",\"err\":%d", st);
        printf("}\n");
        free(ids);
        free(line);
    }
    return 0;
}

/* Parses a JSON array of {"role","content"}; content strings must not contain NUL. */
static smoe_chat_message *parse_conv(json_t *j, size_t *n) {
    if (!json_is_array(j)) return NULL;
    *n                     = json_array_size(j);
    smoe_chat_message *msg = calloc(*n + 1, sizeof(*msg));
    for (size_t i = 0; i < *n; i++) {
        json_t *m        = json_array_get(j, i);
        msg[i].role      = json_string_value(json_object_get(m, "role"));
        msg[i].content   = json_string_value(json_object_get(m, "content"));
    }
    return msg;
}

static int cmd_chat(const smoe_tokenizer *tok, FILE *in, bool format) {
    char  *line;
    size_t len;
    while ((line = read_line(in, &len))) {
        json_error_t       err;
        json_t            *j = json_loads(line, 0, &err);
        size_t             n = 0, need = 0;
        smoe_chat_message *msg = j ? parse_conv(j, &n) : NULL;
        if (!msg) {
            printf("{\"err\":-100,\"msg\":\"bad input line\"}\n");
        } else if (format) {
            smoe_status st = smoe_chat_format(tok, msg, n, NULL, 0, &need);
            char       *buf = NULL;
            if (st == SMOE_ERR_BUFFER_TOO_SMALL) {
                buf = malloc(need + 1);
                st  = smoe_chat_format(tok, msg, n, buf, need + 1, &need);
            }
            if (st != SMOE_OK) {
                put_err(st);
            } else {
                printf("{\"text\":\"");
                put_hex(buf, need);
                printf("\"}\n");
            }
            free(buf);
        } else {
            smoe_status st  = smoe_chat_tokenize(tok, msg, n, NULL, 0, &need);
            int32_t    *ids = NULL;
            if (st == SMOE_ERR_BUFFER_TOO_SMALL) {
                ids = malloc(need * sizeof(*ids));
                st  = smoe_chat_tokenize(tok, msg, n, ids, need, &need);
            }
            if (st != SMOE_OK) {
                put_err(st);
            } else {
                printf("{\"ids\":[");
                for (size_t i = 0; i < need; i++) printf(i ? ",%d" : "%d", ids[i]);
                printf("]}\n");
            }
            free(ids);
        }
        free(msg);
        json_decref(j);
        free(line);
    }
    return 0;
}

static int cmd_vocab(const smoe_tokenizer *tok) {
    printf("{\"n_vocab\":%d,\"bos\":%d,\"eos\":%d,\"unk\":%d,\"flags\":%u}\n", smoe_tokenizer_n_vocab(tok),
           smoe_tokenizer_bos(tok), smoe_tokenizer_eos(tok), smoe_tokenizer_unk(tok),
           smoe_tokenizer_default_flags(tok));
    for (int32_t i = 0; i < tok->n_vocab; i++) {
        printf("{\"piece\":\"");
        put_hex(tok->pieces[i], tok->piece_lens[i]);
        printf("\",\"score\":%.9g,\"type\":%d}\n", (double)tok->scores[i], tok->types[i]);
    }
    return 0;
}

static int cmd_bench(const smoe_tokenizer *tok, FILE *in) {
    size_t n = 0, cap = 1 << 20;
    char  *buf = malloc(cap);
    for (size_t r; (r = fread(buf + n, 1, cap - n, in)) > 0;) {
        n += r;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    double best = 1e30, best_wall = 1e30; /* CPU time of the calling thread (the machine may be busy), wall time */
    size_t n_ids = 0;
    for (int rep = 0; rep < 3; rep++) {
        struct timespec a, b, wa, wb;
        smoe_token_vec  v = {0};
        clock_gettime(CLOCK_MONOTONIC, &wa);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        smoe_status st = smoe_tokenizer_encode(tok, buf, n, 0, &v);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        clock_gettime(CLOCK_MONOTONIC, &wb);
        if (st != SMOE_OK) {
            fprintf(stderr, "bench: %s\n", smoe_last_error());
            return 1;
        }
        double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        double w = (double)(wb.tv_sec - wa.tv_sec) + 1e-9 * (double)(wb.tv_nsec - wa.tv_nsec);
        if (s < best) best = s;
        if (w < best_wall) best_wall = w;
        n_ids = v.n;
        smoe_token_vec_free(&v);
    }
    printf("{\"bytes\":%zu,\"ids\":%zu,\"seconds\":%.6f,\"wall_seconds\":%.6f}\n", n, n_ids, best, best_wall);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    const char *gguf = NULL, *spm = NULL, *cmd = NULL, *file = NULL;
    uint32_t    flags = 0, dflags = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-g") && i + 1 < argc)
            gguf = argv[++i];
        else if (!strcmp(argv[i], "-s") && i + 1 < argc)
            spm = argv[++i];
        else if (!strcmp(argv[i], "--bos"))
            flags |= SMOE_TOKENIZE_ADD_BOS;
        else if (!strcmp(argv[i], "--eos"))
            flags |= SMOE_TOKENIZE_ADD_EOS;
        else if (!strcmp(argv[i], "--special"))
            flags |= SMOE_TOKENIZE_PARSE_SPECIAL;
        else if (!strcmp(argv[i], "--keep-space"))
            dflags |= SMOE_DETOKENIZE_KEEP_LEADING_SPACE;
        else if (!cmd)
            cmd = argv[i];
        else
            file = argv[i];
    }
    if (!cmd || (!gguf == !spm)) {
        fprintf(stderr, "usage: tokenizer-tool (-g VOCAB.gguf | -s tokenizer.model) COMMAND [options] [FILE]\n");
        return 2;
    }
    smoe_tokenizer *tok = NULL;
    smoe_status     st;
    if (gguf) {
        st = smoe_tokenizer_load_gguf(gguf, &tok);
    } else {
        smoe_spm_vocab *v;
        st = smoe_spm_load(spm, &v);
        if (st == SMOE_OK) {
            st = smoe_spm_to_tokenizer(v, &tok);
            smoe_spm_free(v);
        }
    }
    if (st != SMOE_OK) {
        fprintf(stderr, "tokenizer-tool: %s: %s\n", smoe_status_string(st), smoe_last_error());
        return 1;
    }
    FILE *in = stdin;
    if (file && !(in = fopen(file, "rb"))) {
        fprintf(stderr, "tokenizer-tool: cannot open %s\n", file);
        smoe_tokenizer_free(tok);
        return 1;
    }
    int rc;
    if (!strcmp(cmd, "encode"))
        rc = cmd_encode(tok, in, flags);
    else if (!strcmp(cmd, "decode"))
        rc = cmd_decode(tok, in, dflags);
    else if (!strcmp(cmd, "chat"))
        rc = cmd_chat(tok, in, false);
    else if (!strcmp(cmd, "format"))
        rc = cmd_chat(tok, in, true);
    else if (!strcmp(cmd, "vocab"))
        rc = cmd_vocab(tok);
    else if (!strcmp(cmd, "bench"))
        rc = cmd_bench(tok, in);
    else {
        fprintf(stderr, "tokenizer-tool: unknown command %s\n", cmd);
        rc = 2;
    }
    if (in != stdin) fclose(in);
    smoe_tokenizer_free(tok);
    return rc;
}
