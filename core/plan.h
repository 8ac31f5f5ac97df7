/*
 * plan.h - the liveness buffer planner: gives each tensor an offset in one arena per backend so that tensors alive
 * at the same time never overlap and memory is reused after a tensor's last reader.
 *
 * Steps are node indices in execution order. At step s the planner first places every request with
 * first_step == s (the node's output must not overlap its inputs, which are still being read), then releases every
 * request with last_step == s. Requests with first_step < 0 are placed before step 0 (graph inputs); last_step < 0
 * means never released (inputs, outputs). Placement is best fit over a free list merged on release; the arena grows
 * at its end when nothing fits.
 */
#ifndef SMOE_PLAN_H
#define SMOE_PLAN_H

#include "status.h"

#include <stddef.h>
#include <stdint.h>

typedef struct smoe_plan_req {
    size_t  size;       /* bytes (rounded up to the arena's alignment by the planner) */
    int32_t arena;      /* 0 .. n_arenas-1 */
    int32_t first_step; /* produced at this step; < 0: before the first step */
    int32_t last_step;  /* last read at this step (>= first_step); < 0: never released */
    size_t  offset;     /* out: byte offset in its arena */
} smoe_plan_req;

/* Assigns reqs[i].offset; arena_size[a] receives the bytes arena a needs. alignment[a] must be a power of two.
 * Returns SMOE_ERR_INVALID_ARGUMENT for a bad request, SMOE_ERR_OUT_OF_MEMORY if scratch allocation fails. */
smoe_status smoe_plan_assign(smoe_plan_req *reqs, int n_reqs, int n_arenas, const size_t *alignment,
                             size_t *arena_size);

#endif /* SMOE_PLAN_H */
