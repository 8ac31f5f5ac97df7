/*
 * progress.h - what `smoe convert` and `smoe quantize` share: a progress bar on stderr (when it is a terminal and
 * not --quiet) with MiB done, MB/s and an ETA, log lines that keep the bar intact, and Ctrl-C handling that cancels
 * through the library's progress callback (a second Ctrl-C ends the process at once).
 */
#ifndef SMOE_TOOLS_PROGRESS_H
#define SMOE_TOOLS_PROGRESS_H

#include "smoe.h"

#include <signal.h>
#include <stdbool.h>

typedef struct smoe_cli_progress {
    bool   bar;   /* draw the bar */
    bool   quiet; /* info lines off (warnings and errors still shown) */
    bool   drawn; /* a bar line is open on stderr */
    double t0;    /* start, seconds */
    double last;  /* last redraw */
} smoe_cli_progress;

/* Starts the clock; the bar is drawn when stderr is a terminal and not quiet. */
void smoe_cli_progress_start(smoe_cli_progress *p, bool quiet);
/* The body of a progress callback: redraws at most every 0.1 s (and at the end); false once interrupted. */
bool smoe_cli_progress_update(smoe_cli_progress *p, uint64_t done, uint64_t total);
/* Ends an open bar line (before other output). */
void smoe_cli_progress_clear(smoe_cli_progress *p);
/* A log line: errors, warnings, and info unless quiet; debug never. */
void smoe_cli_progress_log(smoe_cli_progress *p, smoe_log_level level, const char *msg);

/* Ctrl-C and SIGTERM set the interrupted flag for the duration of a library call (between begin and end). */
void smoe_cli_interrupt_begin(struct sigaction *old_int, struct sigaction *old_term);
void smoe_cli_interrupt_end(const struct sigaction *old_int, const struct sigaction *old_term);
bool smoe_cli_interrupted(void);

#endif
