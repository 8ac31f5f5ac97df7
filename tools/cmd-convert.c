/*
 * cmd-convert.c - `smoe convert HF_DIR -o OUT.gguf [--type T] [--threads N] [--quiet]`: a Hugging Face Mixtral
 * checkpoint to GGUF.
 *
 * Ctrl-C cancels through the progress callback: the library stops after the batch in flight and removes its
 * temporary file, so an interrupted run leaves no output (a second Ctrl-C kills the process at once).
 */
#include "cmd.h"
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool on_progress(uint64_t done, uint64_t total, void *user_data) {
    return smoe_cli_progress_update(user_data, done, total);
}

static void on_log(smoe_log_level level, const char *msg, void *user_data) {
    smoe_cli_progress_log(user_data, level, msg);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: smoe convert HF_DIR -o OUT.gguf [--type T] [--threads N] [--quiet]\n"
            "\n"
            "Converts a Hugging Face Mixtral checkpoint (config.json, *.safetensors, tokenizer.model) to GGUF.\n"
            "\n"
            "  -o, --output FILE  the GGUF file to write (replaced only when the conversion succeeds)\n"
            "  -t, --type T       f32, f16, bf16, q8_0, q4_0, q4_k_m, q5_k_m or auto (default: auto, smoe's\n"
            "                     MoE mix: experts 4-bit, attention 8-bit, router f32, output q6_k)\n"
            "  -j, --threads N    worker threads (default: CPU count, at most 8)\n"
            "  -q, --quiet        no progress bar or info lines (warnings and errors still go to stderr)\n");
}

int smoe_cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    smoe_convert_params p = smoe_convert_default_params();
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has_val) {
            out = argv[++i];
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--type")) && has_val) {
            smoe_status st = smoe_ftype_from_name(argv[++i], &p.ftype);
            if (st != SMOE_OK) {
                fprintf(stderr, "smoe convert: %s\n", smoe_last_error());
                return 2;
            }
        } else if ((!strcmp(a, "-j") || !strcmp(a, "--threads")) && has_val) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 0 || n > 64) {
                fprintf(stderr, "smoe convert: --threads wants a number in [0, 64], not '%s'\n", argv[i]);
                return 2;
            }
            p.n_threads = (int32_t)n;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "smoe convert: unknown option '%s'%s\n\n", a, has_val ? "" : " (or missing value)");
            usage(stderr);
            return 2;
        } else if (!in) {
            in = a;
        } else {
            fprintf(stderr, "smoe convert: unexpected argument '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!in || !out) {
        usage(stderr);
        return 2;
    }

    smoe_cli_progress ps;
    smoe_cli_progress_start(&ps, quiet);
    p.progress = on_progress;
    p.progress_user_data = &ps;
    p.log = on_log;
    p.log_user_data = &ps;

    struct sigaction old_int, old_term;
    smoe_cli_interrupt_begin(&old_int, &old_term);
    smoe_status st = smoe_convert(in, out, &p);
    smoe_cli_interrupt_end(&old_int, &old_term);
    smoe_cli_progress_clear(&ps);
    if (st == SMOE_ERR_CANCELLED && smoe_cli_interrupted()) {
        fprintf(stderr, "smoe convert: interrupted; %s not written\n", out);
        return 130;
    }
    if (st != SMOE_OK) return smoe_cli_fail("convert", st);
    return 0;
}
