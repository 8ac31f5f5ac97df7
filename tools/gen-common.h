/*
 * gen-common.h - what `smoe run` and `smoe chat` share: model/context/sampling options, loading with a progress
 * line, speed reports. Public API only.
 */
#ifndef SMOE_TOOLS_GEN_COMMON_H
#define SMOE_TOOLS_GEN_COMMON_H

#include "smoe.h"

#include <stdbool.h>
#include <stdio.h>

#define SMOE_CLI_MAX_STOP 16

typedef struct smoe_cli_opts {
    const char          *model;
    uint32_t             n_ctx;
    int32_t              n_threads;
    int32_t              n_predict;
    smoe_kv_type         kv_type;
    smoe_sampler_params  sampling;
    const char          *stop[SMOE_CLI_MAX_STOP];
    size_t               n_stop;
    bool                 ignore_eos;
    bool                 verbose;
    const char          *backend;  /* NULL: $SMOE_BACKEND or cpu */
    uint64_t             gpu_mem;  /* 0: automatic */
} smoe_cli_opts;

void smoe_cli_opts_init(smoe_cli_opts *o);

/* Parses argv[*i] (and its value) if it is one of the shared options. Returns 1 if consumed, 0 if not an option of
 * ours, -1 on a bad value (message printed). */
int smoe_cli_parse_common(smoe_cli_opts *o, int argc, char **argv, int *i, const char *cmd);

/* Usage lines of the shared options. */
void smoe_cli_print_common_usage(FILE *f);

/* Loads the model and makes a context (progress on stderr when it is a terminal). Returns 0 or prints the error and
 * returns 1. */
int smoe_cli_load(const smoe_cli_opts *o, const char *cmd, smoe_model **model, smoe_context **ctx);

/* "prompt: 12 tokens in 0.31 s (38.7 tok/s) | generation: 64 tokens in 2.10 s (30.5 tok/s)" to stderr. */
void smoe_cli_print_speed(const smoe_generate_result *r);

/* Writes to stdout and flushes (the on_text callback of run/chat). */
bool smoe_cli_write_text(const char *text, size_t len, void *user_data);

#endif
