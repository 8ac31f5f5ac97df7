/*
 * launch-cache.h - when the CUDA backend captures a split's kernel launches into a CUDA graph and when it replays
 * one. Host logic only (no CUDA calls), so it is built and tested on every machine (tests/test-cuda-host.c).
 *
 * A split's launches are fully described by the smoe_cuda_node array the backend hands to the launchers: ops,
 * shapes, byte strides, device addresses, op params, compute capability (make_node zeroes each node first, so
 * padding compares equal). Two identical arrays launch identical kernels with identical arguments; everything that
 * changes from one decode step to the next (tokens, positions, KV cells, expert ids, the attention length) is in
 * device memory that the kernels read, so a decode step's arrays repeat exactly and its graph can be replayed.
 *
 * Policy, per key (the split; several graphs alive at once each keep their entry):
 *   - an array not seen under its key (or different from the one recorded there): recorded, launched directly
 *     (SMOE_LC_LAUNCH); a graph recorded for the old array is destroyed (invalidation);
 *   - seen a second time, unchanged: captured into a graph and launched (SMOE_LC_CAPTURE); one-off graphs (a
 *     prompt's prefill) are never captured;
 *   - every later time: the graph is replayed (SMOE_LC_REPLAY).
 * At most SMOE_LC_SLOTS keys are remembered; the least recently used one is evicted (its graph destroyed).
 */
#ifndef SMOE_CUDA_LAUNCH_CACHE_H
#define SMOE_CUDA_LAUNCH_CACHE_H

#include "core/status.h"
#include "cuda-kernels.h"

#include <stdbool.h>
#include <stdint.h>

#define SMOE_LC_SLOTS 16

typedef enum smoe_lc_action { SMOE_LC_LAUNCH = 0, SMOE_LC_CAPTURE, SMOE_LC_REPLAY } smoe_lc_action;

typedef struct smoe_lc_entry {
    const void     *key;       /* NULL: free */
    smoe_cuda_node *nodes;
    int             n, cap;
    int             seen;      /* times this exact array came, consecutively under this key */
    void           *exec;      /* the instantiated graph (cudaGraphExec_t), or NULL */
    uint64_t        last_use;
} smoe_lc_entry;

typedef struct smoe_lc {
    smoe_lc_entry e[SMOE_LC_SLOTS];
    uint64_t      clock;
    void        (*destroy)(void *exec, void *user_data); /* frees a graph (NULL: nothing to free) */
    void         *user_data;
    int           n_captures, n_replays, n_invalidations; /* statistics */
} smoe_lc;

void smoe_lc_init(smoe_lc *c, void (*destroy)(void *exec, void *user_data), void *user_data);
/* Forgets everything, destroying every graph. */
void smoe_lc_clear(smoe_lc *c);
/* What to do with the n launches `nodes` of split `key`; *slot is the entry to pass back below.
 * SMOE_ERR_OUT_OF_MEMORY if the array cannot be recorded (then launch directly). */
smoe_status smoe_lc_lookup(smoe_lc *c, const void *key, const smoe_cuda_node *nodes, int n, int *slot,
                           smoe_lc_action *action);
/* The same for a caller that knows its array is the one it passed under key last time (the split was not re-bound
 * and nothing was re-described: cuda-backend.c), without comparing the bytes (~0.8 MB per Mixtral decode step);
 * false when key has no entry of n launches (evicted): then smoe_lc_lookup with the array. */
bool smoe_lc_lookup_unchanged(smoe_lc *c, const void *key, int n, int *slot, smoe_lc_action *action);
/* After SMOE_LC_CAPTURE: the graph made (exec), or NULL when capturing failed (the entry then starts over). */
void smoe_lc_set_exec(smoe_lc *c, int slot, void *exec);

#endif /* SMOE_CUDA_LAUNCH_CACHE_H */
