/*
 * cmd.h - the subcommands of the `smoe` CLI. Each returns the process exit code (0 ok, 1 failure, 2 usage).
 * The CLI uses only the public API (include/smoe.h).
 */
#ifndef SMOE_TOOLS_CMD_H
#define SMOE_TOOLS_CMD_H

#include "smoe.h"

typedef struct smoe_cmd {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
    const char *summary;
} smoe_cmd;

/* Prints "smoe NAME: <status string>: <last error>" to stderr and returns 1. */
int smoe_cli_fail(const char *cmd, smoe_status st);

/* A byte count as users write it: "16G", "16GiB", "1500M", "512K", "123456" (suffixes are powers of 1024, with or
 * without "iB"/"B"), or "all" = SMOE_GPU_MEM_ALL. Returns false for anything else, 0 or an overflow. */
bool smoe_cli_parse_size(const char *s, uint64_t *out);

/* Seconds on the monotonic clock. */
double smoe_cli_now(void);

int smoe_cmd_info(int argc, char **argv);
int smoe_cmd_tokenize(int argc, char **argv);
int smoe_cmd_convert(int argc, char **argv);
int smoe_cmd_quantize(int argc, char **argv);
int smoe_cmd_bench(int argc, char **argv);
int smoe_cmd_run(int argc, char **argv);
int smoe_cmd_chat(int argc, char **argv);

#endif
