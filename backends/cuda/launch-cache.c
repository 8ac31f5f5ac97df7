/*
 * launch-cache.c - the capture/replay policy of CUDA graphs (see launch-cache.h). No CUDA calls.
 */
#include "launch-cache.h"

#include <stdlib.h>
#include <string.h>

void smoe_lc_init(smoe_lc *c, void (*destroy)(void *exec, void *user_data), void *user_data) {
    memset(c, 0, sizeof(*c));
    c->destroy = destroy;
    c->user_data = user_data;
}

static void drop_exec(smoe_lc *c, smoe_lc_entry *e) {
    if (e->exec && c->destroy) c->destroy(e->exec, c->user_data);
    e->exec = NULL;
}

void smoe_lc_clear(smoe_lc *c) {
    for (int i = 0; i < SMOE_LC_SLOTS; i++) {
        drop_exec(c, &c->e[i]);
        free(c->e[i].nodes);
        c->e[i] = (smoe_lc_entry){0};
    }
}

/* the array recorded under e came again */
static void hit(smoe_lc *c, smoe_lc_entry *e, smoe_lc_action *action) {
    e->seen++;
    if (e->exec) {
        c->n_replays++;
        *action = SMOE_LC_REPLAY;
    } else if (e->seen >= 2) {
        *action = SMOE_LC_CAPTURE;
    }
}

bool smoe_lc_lookup_unchanged(smoe_lc *c, const void *key, int n, int *slot, smoe_lc_action *action) {
    *action = SMOE_LC_LAUNCH;
    *slot = -1;
    if (!key) return false;
    for (int i = 0; i < SMOE_LC_SLOTS; i++) {
        smoe_lc_entry *e = &c->e[i];
        if (e->key != key || e->n != n) continue;
        c->clock++;
        e->last_use = c->clock;
        *slot = i;
        hit(c, e, action);
        return true;
    }
    return false;
}

smoe_status smoe_lc_lookup(smoe_lc *c, const void *key, const smoe_cuda_node *nodes, int n, int *slot,
                           smoe_lc_action *action) {
    *action = SMOE_LC_LAUNCH;
    *slot = -1;
    SMOE_RETURN_IF(!key || n < 0 || (n > 0 && !nodes), SMOE_ERR_INVALID_ARGUMENT, "launch cache: bad arguments");
    c->clock++;
    int found = -1, victim = 0;
    for (int i = 0; i < SMOE_LC_SLOTS; i++) {
        if (c->e[i].key == key) found = i;
        if (!c->e[victim].key) continue; /* a free slot stays the victim */
        if (!c->e[i].key || c->e[i].last_use < c->e[victim].last_use) victim = i;
    }
    smoe_lc_entry *e;
    if (found >= 0) {
        e = &c->e[found];
        e->last_use = c->clock;
        *slot = found;
        if (e->n == n && memcmp(e->nodes, nodes, (size_t)n * sizeof(*nodes)) == 0) {
            hit(c, e, action);
            return SMOE_OK;
        }
        if (e->exec) c->n_invalidations++;
        drop_exec(c, e); /* the split now launches something else */
    } else {
        e = &c->e[victim];
        drop_exec(c, e);
        *slot = victim;
    }
    if (n > e->cap) {
        smoe_cuda_node *p = realloc(e->nodes, (size_t)n * sizeof(*p));
        if (!p) {
            free(e->nodes);
            *e = (smoe_lc_entry){0};
            *slot = -1;
            return smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "launch cache: out of memory");
        }
        e->nodes = p;
        e->cap = n;
    }
    if (n > 0) memcpy(e->nodes, nodes, (size_t)n * sizeof(*nodes));
    e->key = key;
    e->n = n;
    e->seen = 1;
    e->last_use = c->clock;
    return SMOE_OK;
}

void smoe_lc_set_exec(smoe_lc *c, int slot, void *exec) {
    if (slot < 0 || slot >= SMOE_LC_SLOTS) return;
    smoe_lc_entry *e = &c->e[slot];
    drop_exec(c, e);
    e->exec = exec;
    if (exec) c->n_captures++;
    else e->seen = 0; /* capture failed: count again from scratch */
}
