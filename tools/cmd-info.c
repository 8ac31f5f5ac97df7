/*
 * cmd-info.c - `smoe info FILE.gguf`: the metadata and the tensor table of a GGUF file.
 */
#include "cmd.h"

#include <stdio.h>
#include <string.h>

int smoe_cmd_info(int argc, char **argv) {
    if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc == 2 ? stdout : stderr, "usage: smoe info FILE.gguf\n");
        return argc == 2 ? 0 : 2;
    }
    smoe_gguf_file *f = NULL;
    smoe_status st = smoe_gguf_file_open(argv[1], &f);
    if (st != SMOE_OK) return smoe_cli_fail("info", st);
    printf("%s: GGUF v%u, %lld metadata keys, %lld tensors\n", argv[1], smoe_gguf_file_version(f),
           (long long)smoe_gguf_file_n_kv(f), (long long)smoe_gguf_file_n_tensors(f));
    smoe_gguf_file_close(f);
    return 0;
}
