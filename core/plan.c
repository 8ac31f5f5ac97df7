/*
 * plan.c - liveness buffer planner (see plan.h): best fit over a sorted, merged free list per arena.
 *
 * Complexity: O(n log n) for the event sort plus O(n * free blocks) for placement, which is tiny next to a run of
 * the graph; and it runs once per graph shape.
 */
#include "plan.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct free_block {
    size_t offset, size;
} free_block;

typedef struct arena_state {
    free_block *blocks; /* sorted by offset, never adjacent (merged) */
    int         n, cap;
    size_t      top;  /* end of the highest byte handed out so far = the arena's size */
    size_t      align;
} arena_state;

static size_t round_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

static smoe_status arena_alloc(arena_state *a, size_t size, size_t *offset) {
    int best = -1;
    for (int i = 0; i < a->n; i++)
        if (a->blocks[i].size >= size && (best < 0 || a->blocks[i].size < a->blocks[best].size)) best = i;
    if (best >= 0) {
        *offset = a->blocks[best].offset;
        a->blocks[best].offset += size;
        a->blocks[best].size -= size;
        if (a->blocks[best].size == 0) {
            memmove(&a->blocks[best], &a->blocks[best + 1], (size_t)(a->n - best - 1) * sizeof(free_block));
            a->n--;
        }
        return SMOE_OK;
    }
    /* nothing fits: if the last free block ends at the top, grow it; else take from the top */
    if (a->n > 0 && a->blocks[a->n - 1].offset + a->blocks[a->n - 1].size == a->top) {
        free_block *b = &a->blocks[a->n - 1];
        *offset = b->offset;
        a->top = b->offset + size;
        a->n--;
        return SMOE_OK;
    }
    *offset = a->top;
    a->top += size;
    return SMOE_OK;
}

static smoe_status arena_release(arena_state *a, size_t offset, size_t size) {
    int i = 0;
    while (i < a->n && a->blocks[i].offset < offset) i++;
    /* merge with the previous and/or next block */
    bool merge_prev = i > 0 && a->blocks[i - 1].offset + a->blocks[i - 1].size == offset;
    bool merge_next = i < a->n && offset + size == a->blocks[i].offset;
    if (merge_prev && merge_next) {
        a->blocks[i - 1].size += size + a->blocks[i].size;
        memmove(&a->blocks[i], &a->blocks[i + 1], (size_t)(a->n - i - 1) * sizeof(free_block));
        a->n--;
    } else if (merge_prev) {
        a->blocks[i - 1].size += size;
    } else if (merge_next) {
        a->blocks[i].offset = offset;
        a->blocks[i].size += size;
    } else {
        if (a->n == a->cap) {
            int nc = a->cap ? a->cap * 2 : 16;
            free_block *p = realloc(a->blocks, (size_t)nc * sizeof(*p));
            SMOE_RETURN_IF(!p, SMOE_ERR_OUT_OF_MEMORY, "planner: out of memory");
            a->blocks = p;
            a->cap = nc;
        }
        memmove(&a->blocks[i + 1], &a->blocks[i], (size_t)(a->n - i) * sizeof(free_block));
        a->blocks[i].offset = offset;
        a->blocks[i].size = size;
        a->n++;
    }
    return SMOE_OK;
}

typedef struct event {
    int32_t step;
    int32_t kind; /* 0 = place, 1 = release (places come first within a step) */
    int32_t req;
} event;

static int event_cmp(const void *pa, const void *pb) {
    const event *a = pa, *b = pb;
    if (a->step != b->step) return a->step < b->step ? -1 : 1;
    if (a->kind != b->kind) return a->kind < b->kind ? -1 : 1;
    return a->req < b->req ? -1 : (a->req > b->req);
}

smoe_status smoe_plan_assign(smoe_plan_req *reqs, int n_reqs, int n_arenas, const size_t *alignment,
                             size_t *arena_size) {
    SMOE_RETURN_IF(n_reqs < 0 || (n_reqs > 0 && !reqs) || n_arenas < 1 || !alignment || !arena_size,
                   SMOE_ERR_INVALID_ARGUMENT, "planner: bad arguments");
    for (int a = 0; a < n_arenas; a++)
        SMOE_RETURN_IF(alignment[a] == 0 || (alignment[a] & (alignment[a] - 1)) != 0, SMOE_ERR_INVALID_ARGUMENT,
                       "planner: alignment %zu of arena %d is not a power of two", alignment[a], a);
    for (int i = 0; i < n_reqs; i++) {
        SMOE_RETURN_IF(reqs[i].arena < 0 || reqs[i].arena >= n_arenas, SMOE_ERR_INVALID_ARGUMENT,
                       "planner: request %d has arena %d", i, reqs[i].arena);
        SMOE_RETURN_IF(reqs[i].last_step >= 0 && reqs[i].last_step < reqs[i].first_step, SMOE_ERR_INVALID_ARGUMENT,
                       "planner: request %d released (%d) before it is placed (%d)", i, reqs[i].last_step,
                       reqs[i].first_step);
        SMOE_RETURN_IF(reqs[i].size > SIZE_MAX / 4, SMOE_ERR_INVALID_ARGUMENT, "planner: request %d too large", i);
    }

    smoe_status st = SMOE_OK;
    arena_state *ar = calloc((size_t)n_arenas, sizeof(*ar));
    event *ev = malloc((size_t)(2 * n_reqs + 1) * sizeof(*ev));
    SMOE_GOTO_IF(!ar || !ev, st, done, SMOE_ERR_OUT_OF_MEMORY, "planner: out of memory");
    for (int a = 0; a < n_arenas; a++) ar[a].align = alignment[a];

    int n_ev = 0;
    for (int i = 0; i < n_reqs; i++) {
        int32_t first = reqs[i].first_step < 0 ? -1 : reqs[i].first_step;
        ev[n_ev++] = (event){.step = first, .kind = 0, .req = i};
        if (reqs[i].last_step >= 0) ev[n_ev++] = (event){.step = reqs[i].last_step, .kind = 1, .req = i};
    }
    qsort(ev, (size_t)n_ev, sizeof(*ev), event_cmp);

    for (int e = 0; e < n_ev; e++) {
        smoe_plan_req *r = &reqs[ev[e].req];
        arena_state *a = &ar[r->arena];
        size_t size = round_up(r->size ? r->size : 1, a->align);
        if (ev[e].kind == 0) {
            SMOE_GOTO_TRY(st, done, arena_alloc(a, size, &r->offset));
        } else {
            SMOE_GOTO_TRY(st, done, arena_release(a, r->offset, size));
        }
    }
    for (int a = 0; a < n_arenas; a++) arena_size[a] = ar[a].top;

done:
    if (ar)
        for (int a = 0; a < n_arenas; a++) free(ar[a].blocks);
    free(ar);
    free(ev);
    return st;
}
