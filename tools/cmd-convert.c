/*
 * cmd-convert.c - `smoe convert HF_DIR -o OUT.gguf [--type T] [--threads N] [--quiet]`: a Hugging Face Mixtral
 * checkpoint to GGUF.
 *
 * Ctrl-C cancels through the progress callback: the library stops after the batch in flight and removes its
 * temporary file, so an interrupted run leaves no output (a second Ctrl-C kills the process at once).
 */
#include "cmd.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

typedef struct progress_state {
    bool   bar;  /* draw a bar (stderr is a terminal and not --quiet) */
    double t0;   /* start, seconds */
    double last; /* last redraw */
    bool   drawn;
} progress_state;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void draw_bar(progress_state *ps, uint64_t done, uint64_t total, bool final) {
    const double t = now_s(), el = t - ps->t0;
    const double frac = total ? (double)done / (double)total : 1.0;
    const double rate = el > 0 ? (double)done / el / 1e6 : 0.0; /* MB/s of input */
    char eta[32] = "--:--";
    if (final) {
        snprintf(eta, sizeof(eta), "%d:%02d", (int)el / 60, (int)el % 60);
    } else if (done > 0 && frac > 0) {
        const double left = el * (1.0 - frac) / frac;
        snprintf(eta, sizeof(eta), "%d:%02d", (int)left / 60, (int)left % 60);
    }
    const int width = 30, fill = (int)(frac * width + 0.5);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %5.1f%%  %.0f/%.0f MiB  %6.1f MB/s  %s %s ", bar, frac * 100.0,
            (double)done / 1048576.0, (double)total / 1048576.0, rate, final ? "in" : "ETA", eta);
    if (final) fputc('\n', stderr);
    fflush(stderr);
    ps->drawn = !final; /* a line is open */
    ps->last = t;
}

static bool on_progress(uint64_t done, uint64_t total, void *user_data) {
    progress_state *ps = user_data;
    if (g_interrupted) return false;
    if (ps->bar) {
        const bool final = done >= total;
        if (final || now_s() - ps->last >= 0.1) draw_bar(ps, done, total, final);
    }
    return true;
}

typedef struct log_state {
    bool            quiet;
    progress_state *ps;
} log_state;

static void on_log(smoe_log_level level, const char *msg, void *user_data) {
    const log_state *ls = user_data;
    if (level > SMOE_LOG_INFO || (ls->quiet && level > SMOE_LOG_WARN)) return;
    if (ls->ps->drawn) fputc('\n', stderr); /* keep the bar's line intact */
    ls->ps->drawn = false;
    fprintf(stderr, "%s%s\n", level == SMOE_LOG_ERROR ? "error: " : level == SMOE_LOG_WARN ? "warning: " : "", msg);
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

    progress_state ps = {.bar = !quiet && isatty(STDERR_FILENO), .t0 = now_s()};
    log_state ls = {.quiet = quiet, .ps = &ps};
    p.progress = on_progress;
    p.progress_user_data = &ps;
    p.log = on_log;
    p.log_user_data = &ls;

    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sa.sa_flags = (int)SA_RESETHAND; /* a second Ctrl-C ends the process */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    sigaction(SIGTERM, &sa, NULL);
    smoe_status st = smoe_convert(in, out, &p);
    sigaction(SIGINT, &old, NULL);
    if (ps.drawn && st != SMOE_OK) fputc('\n', stderr);
    if (st == SMOE_ERR_CANCELLED && g_interrupted) {
        fprintf(stderr, "smoe convert: interrupted; %s not written\n", out);
        return 130;
    }
    if (st != SMOE_OK) return smoe_cli_fail("convert", st);
    return 0;
}
