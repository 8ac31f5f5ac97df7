/*
 * cmd-quantize.c - `smoe quantize IN.gguf OUT.gguf --type T [--stats] [--threads N] [--quiet]
 * [--allow-requantize]`: re-quantizes an F32/F16/BF16 GGUF file (smoe's or llama.cpp's).
 *
 * --stats prints one line per tensor to stdout (types, size, RMSE, relative RMSE, max error against the source)
 * and a total. Ctrl-C cancels through the progress callback: the library removes its temporary file, so an
 * interrupted run leaves no output.
 */
#include "cmd.h"
#include "progress.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct cli_state {
    smoe_cli_progress pr;
    bool              stats;
    /* totals for --stats */
    uint64_t n_el, src_bytes, dst_bytes;
    double   sum_sq_err;
    int64_t  n_quantized;
} cli_state;

static bool on_progress(uint64_t done, uint64_t total, void *user_data) {
    return smoe_cli_progress_update(&((cli_state *)user_data)->pr, done, total);
}

static void on_log(smoe_log_level level, const char *msg, void *user_data) {
    smoe_cli_progress_log(&((cli_state *)user_data)->pr, level, msg);
}

static void on_stats(const smoe_quantize_tensor_stats *t, void *user_data) {
    cli_state *s = user_data;
    s->n_el += t->n_elements;
    s->src_bytes += t->src_bytes;
    s->dst_bytes += t->dst_bytes;
    if (!s->stats) return;
    s->sum_sq_err += t->rmse * t->rmse * (double)t->n_elements;
    if (!t->copied) s->n_quantized++;
    smoe_cli_progress_clear(&s->pr);
    char shape[96];
    int  len = snprintf(shape, sizeof(shape), "%" PRId64, t->ne[0]);
    for (uint32_t d = 1; d < t->n_dims && d < 4 && len < (int)sizeof(shape); d++) {
        len += snprintf(shape + len, sizeof(shape) - (size_t)len, "x%" PRId64, t->ne[d]);
    }
    printf("%-36s %-18s %-5s -> %-5s %6.2f bpw  rmse %.4e  rel %.4e  max %.4e%s\n", t->name, shape, t->src_type,
           t->dst_type, t->n_elements ? 8.0 * (double)t->dst_bytes / (double)t->n_elements : 0.0, t->rmse,
           sqrt(t->nmse), t->max_abs_err, t->copied ? "  (copied)" : "");
    fflush(stdout);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: smoe quantize IN.gguf OUT.gguf --type T [--stats] [--threads N] [--quiet] [--allow-requantize]\n"
            "\n"
            "Re-quantizes a GGUF model with F32/F16/BF16 weights (smoe's or llama.cpp's).\n"
            "\n"
            "  -t, --type T          q8_0, q4_0, q4_1, q5_0, q5_1: that type, with llama-quantize's exceptions\n"
            "                        (output q6_k; attn_k/attn_v q8_0 with 8 experts)\n"
            "                        q4_k_m, q5_k_m: llama-quantize's K-mixes\n"
            "                        q4_k, q5_k, q6_k: every matrix in that type\n"
            "                        f16, bf16, f32: plain types; auto: smoe's MoE mix\n"
            "                        Norms and the expert router stay f32; rows that a type's block does not\n"
            "                        divide fall back as llama-quantize does (q4_k->q5_0, q5_k->q5_1, q6_k->q8_0).\n"
            "      --stats           per-tensor RMSE and max error against the source, on stdout\n"
            "  -j, --threads N       worker threads (default: CPU count)\n"
            "  -q, --quiet           no progress bar or info lines\n"
            "      --allow-requantize  accept already-quantized source tensors (the errors compound)\n");
}

int smoe_cmd_quantize(int argc, char **argv) {
    const char          *in = NULL, *out = NULL;
    smoe_quantize_params p     = smoe_quantize_default_params();
    bool                 typed = false;
    cli_state            s;
    memset(&s, 0, sizeof(s));
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a       = argv[i];
        const bool  has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--type")) && has_val) {
            if (smoe_ftype_from_name(argv[++i], &p.ftype) != SMOE_OK) {
                fprintf(stderr, "smoe quantize: %s\n\n", smoe_last_error());
                usage(stderr);
                return 2;
            }
            typed = true;
        } else if ((!strcmp(a, "-j") || !strcmp(a, "--threads")) && has_val) {
            char *end;
            long  n = strtol(argv[++i], &end, 10);
            if (*end || n < 0 || n > 256) {
                fprintf(stderr, "smoe quantize: --threads wants a number in [0, 256], not '%s'\n", argv[i]);
                return 2;
            }
            p.n_threads = (int32_t)n;
        } else if (!strcmp(a, "--stats")) {
            s.stats = true;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "--allow-requantize")) {
            p.allow_requantize = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "smoe quantize: unknown option '%s'%s\n\n", a, has_val ? "" : " (or missing value)");
            usage(stderr);
            return 2;
        } else if (!in) {
            in = a;
        } else if (!out) {
            out = a;
        } else {
            fprintf(stderr, "smoe quantize: unexpected argument '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!in || !out || !typed) {
        usage(stderr);
        return 2;
    }
    smoe_cli_progress_start(&s.pr, quiet);
    p.progress           = on_progress;
    p.progress_user_data = &s;
    p.log                = on_log;
    p.log_user_data      = &s;
    if (s.stats) {
        p.stats           = on_stats;
        p.stats_user_data = &s;
    }
    struct sigaction old_int, old_term;
    smoe_cli_interrupt_begin(&old_int, &old_term);
    const smoe_status st = smoe_model_quantize(in, out, &p);
    smoe_cli_interrupt_end(&old_int, &old_term);
    smoe_cli_progress_clear(&s.pr);
    if (st == SMOE_ERR_CANCELLED && smoe_cli_interrupted()) {
        fprintf(stderr, "smoe quantize: interrupted; %s not written\n", out);
        return 130;
    }
    if (st != SMOE_OK) return smoe_cli_fail("quantize", st);
    if (s.stats && s.n_el) {
        printf("total: %" PRIu64 " elements, %.1f -> %.1f MiB (%.2f bits/weight), %" PRId64
               " tensors quantized, rmse %.4e\n",
               s.n_el, (double)s.src_bytes / 1048576.0, (double)s.dst_bytes / 1048576.0,
               8.0 * (double)s.dst_bytes / (double)s.n_el, s.n_quantized, sqrt(s.sum_sq_err / (double)s.n_el));
    }
    if (!quiet) {
        struct stat sb_in, sb_out;
        if (stat(in, &sb_in) == 0 && stat(out, &sb_out) == 0) {
            fprintf(stderr, "wrote %s: %.1f MiB (from %.1f MiB) in %.1f s\n", out, (double)sb_out.st_size / 1048576.0,
                    (double)sb_in.st_size / 1048576.0, smoe_cli_now() - s.pr.t0);
        }
    }
    return 0;
}
