/*
 * smoe.c - the `smoe` command-line tool: dispatches to the subcommands in cmd-*.c.
 */
#include "cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const smoe_cmd commands[] = {
    {"info", smoe_cmd_info, "print a GGUF file's metadata and tensor table"},
    {"tokenize", smoe_cmd_tokenize, "print the token ids of a text (SentencePiece, as the model's GGUF says)"},
    {"convert", smoe_cmd_convert, "convert a Hugging Face Mixtral checkpoint to GGUF"},
    {"run", smoe_cmd_run, "generate a completion (or a chat answer with --chat) of a prompt"},
    {"chat", smoe_cmd_chat, "an interactive conversation with the [INST] chat template"},
    {"quantize", smoe_cmd_quantize, "re-quantize a GGUF model (q4_k_m, q8_0, ...); --stats for its errors"},
    {"bench", smoe_cmd_bench, "prompt-processing and generation speed (as llama-bench) and weight bandwidth"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

int smoe_cli_fail(const char *cmd, smoe_status st) {
    const char *detail = smoe_last_error();
    fprintf(stderr, "smoe %s: %s%s%s\n", cmd, smoe_status_string(st), detail[0] ? ": " : "", detail);
    return 1;
}

double smoe_cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

bool smoe_cli_parse_size(const char *s, uint64_t *out) {
    if (!s || !out) return false;
    if (!strcmp(s, "all")) {
        *out = SMOE_GPU_MEM_ALL;
        return true;
    }
    char *end = NULL;
    errno = 0;
    const double v = strtod(s, &end);
    if (errno || end == s || !(v > 0)) return false;
    static const char *const units = "KMGT";
    double mul = 1;
    if (*end) {
        const char *u = strchr(units, *end == 'k' ? 'K' : *end);
        if (!u || !*u) return false;
        for (const char *q = units; q <= u; q++) mul *= 1024;
        end++;
        if (!strcmp(end, "iB") || !strcmp(end, "B")) end += strlen(end);
    }
    if (*end) return false;
    const double bytes = v * mul;
    if (bytes < 1 || bytes >= 18446744073709551615.0) return false;
    *out = (uint64_t)bytes;
    return true;
}

static void usage(FILE *f) {
    fprintf(f, "smoe %s - Mixtral 8x7B inference runtime\n\nusage: smoe COMMAND [ARGS...]\n\ncommands:\n",
            smoe_version());
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun `smoe COMMAND --help` for a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("smoe %s\n", smoe_version());
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "smoe: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
