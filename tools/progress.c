/*
 * progress.c - the progress bar, log lines and Ctrl-C handling of the long-running commands (see progress.h).
 */
#include "progress.h"

#include "cmd.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_interrupted;

static void on_signal(int sig) {
    (void)sig;
    g_interrupted = 1;
}

void smoe_cli_progress_start(smoe_cli_progress *p, bool quiet) {
    *p = (smoe_cli_progress){.bar = !quiet && isatty(STDERR_FILENO), .quiet = quiet};
    p->t0 = p->last = smoe_cli_now();
}

static void format_time(char *buf, size_t size, double s) {
    snprintf(buf, size, "%d:%02d", (int)s / 60, (int)s % 60);
}

bool smoe_cli_progress_update(smoe_cli_progress *p, uint64_t done, uint64_t total) {
    if (g_interrupted) return false;
    if (!p->bar) return true;
    const double t = smoe_cli_now();
    const bool   final = done >= total;
    if (!final && t - p->last < 0.1) return true;
    const double el = t - p->t0, frac = total ? (double)done / (double)total : 1.0;
    char         eta[32] = "--:--";
    if (final) format_time(eta, sizeof(eta), el);
    else if (done > 0 && frac > 0) format_time(eta, sizeof(eta), el * (1.0 - frac) / frac);
    enum { WIDTH = 30 };
    char      bar[WIDTH + 1];
    const int fill = (int)(frac * WIDTH + 0.5);
    for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r[%s] %5.1f%%  %.0f/%.0f MiB  %6.1f MB/s  %s %s ", bar, frac * 100.0, (double)done / 1048576.0,
            (double)total / 1048576.0, el > 0 ? (double)done / el / 1e6 : 0.0, final ? "in" : "ETA", eta);
    if (final) fputc('\n', stderr);
    fflush(stderr);
    p->drawn = !final;
    p->last = t;
    return true;
}

void smoe_cli_progress_clear(smoe_cli_progress *p) {
    if (p->drawn) fputc('\n', stderr);
    p->drawn = false;
}

void smoe_cli_progress_log(smoe_cli_progress *p, smoe_log_level level, const char *msg) {
    if (level > SMOE_LOG_INFO || (p->quiet && level > SMOE_LOG_WARN)) return;
    smoe_cli_progress_clear(p); /* keep the bar's line intact */
    fprintf(stderr, "%s%s\n", level == SMOE_LOG_ERROR ? "error: " : level == SMOE_LOG_WARN ? "warning: " : "", msg);
}

void smoe_cli_interrupt_begin(struct sigaction *old_int, struct sigaction *old_term) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = (int)SA_RESETHAND; /* a second Ctrl-C ends the process */
    sigemptyset(&sa.sa_mask);
    g_interrupted = 0;
    sigaction(SIGINT, &sa, old_int);
    sigaction(SIGTERM, &sa, old_term);
}

void smoe_cli_interrupt_end(const struct sigaction *old_int, const struct sigaction *old_term) {
    sigaction(SIGINT, old_int, NULL);
    sigaction(SIGTERM, old_term, NULL);
}

bool smoe_cli_interrupted(void) { return g_interrupted != 0; }
