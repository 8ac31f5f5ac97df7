/*
 * sched.c - assigns graph nodes to backends, splits the graph into per-backend runs with copies between them,
 * plans memory by liveness (core/plan.c) and runs the splits. See sched.h for the rules.
 *
 * The graph itself is never modified: a node that reads a copy is replaced, in its split's node list, by a
 * "shadow" (a struct copy of the node whose src pointers point at the copies). After binding, shadows share their
 * original's buffer/data, so the caller reads results from the original nodes.
 */
#include "sched.h"

#include "backend-impl.h"
#include "graph-impl.h"
#include "plan.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct smoe_sched {
    uint64_t       uid;
    smoe_backend **backends;
    int            n_backends;
    smoe_backend_props *props;
    smoe_buffer  **arenas; /* one per backend, grown to the largest bound plan */

    const smoe_graph *bound_graph;
    uint64_t          bound_version;
    uint64_t          bind_count; /* bumped per bind, to notice a plan's stale binding */

    uint8_t *staging; /* host bytes for device-to-device copies */
    size_t   staging_size;
};

/* One planned tensor (a node's output, an input leaf, a copy). */
typedef struct plan_alloc {
    smoe_tensor *t;
    int32_t      backend;
    size_t       offset;
} plan_alloc;

typedef struct sched_plan {
    uint64_t sched_uid;
    uint64_t graph_version;
    uint64_t bound_at; /* sched->bind_count of the last bind; 0 = not bound */

    smoe_split *splits;
    int         n_splits;
    smoe_tensor **node_lists; /* storage for split node lists */
    smoe_tensor **input_lists;
    smoe_tensor **copy_lists;
    int           n_copies;

    smoe_tensor  *shadows; /* n_shadows struct copies of nodes */
    smoe_tensor **shadow_orig;
    int           n_shadows;
    smoe_tensor  *copy_tensors; /* n_copies copy tensors */

    plan_alloc *allocs;
    int         n_allocs;
    size_t     *arena_size; /* per backend */
    size_t      total_tensor_size;
} sched_plan;

static _Atomic uint64_t sched_uid_counter = 1;
static _Atomic uint64_t bind_stamp_counter = 1; /* smoe_split.stamp */

/* ---- lifecycle ---- */

smoe_status smoe_sched_init(smoe_backend *const *backends, int n_backends, smoe_sched **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "sched: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!backends || n_backends < 1 || n_backends > 64, SMOE_ERR_INVALID_ARGUMENT,
                   "sched: need 1..64 backends, got %d", n_backends);
    for (int i = 0; i < n_backends; i++) {
        SMOE_RETURN_IF(!backends[i], SMOE_ERR_INVALID_ARGUMENT, "sched: backend %d is NULL", i);
        for (int j = 0; j < i; j++)
            SMOE_RETURN_IF(backends[i] == backends[j], SMOE_ERR_INVALID_ARGUMENT, "sched: backend %d listed twice", i);
    }
    smoe_sched *s = calloc(1, sizeof(*s));
    SMOE_RETURN_IF(!s, SMOE_ERR_OUT_OF_MEMORY, "sched: out of memory");
    s->backends = calloc((size_t)n_backends, sizeof(*s->backends));
    s->props = calloc((size_t)n_backends, sizeof(*s->props));
    s->arenas = calloc((size_t)n_backends, sizeof(*s->arenas));
    if (!s->backends || !s->props || !s->arenas) {
        smoe_sched_free(s);
        return smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "sched: out of memory");
    }
    s->n_backends = n_backends;
    for (int i = 0; i < n_backends; i++) {
        s->backends[i] = backends[i];
        smoe_backend_get_props(backends[i], &s->props[i]);
        if (s->props[i].alignment == 0) s->props[i].alignment = 64;
    }
    s->uid = atomic_fetch_add(&sched_uid_counter, 1);
    *out = s;
    return SMOE_OK;
}

void smoe_sched_free(smoe_sched *s) {
    if (!s) return;
    if (s->arenas)
        for (int i = 0; i < s->n_backends; i++) smoe_buffer_free(s->arenas[i]);
    free(s->arenas);
    free(s->props);
    free(s->backends);
    free(s->staging);
    free(s);
}

static void plan_free(void *p) {
    sched_plan *pl = p;
    if (!pl) return;
    free(pl->splits);
    free(pl->node_lists);
    free(pl->input_lists);
    free(pl->copy_lists);
    free(pl->shadows);
    free(pl->shadow_orig);
    free(pl->copy_tensors);
    free(pl->allocs);
    free(pl->arena_size);
    free(pl);
}

int smoe_sched_n_backends(const smoe_sched *s) { return s ? s->n_backends : 0; }

smoe_backend *smoe_sched_backend(const smoe_sched *s, int i) {
    return (s && i >= 0 && i < s->n_backends) ? s->backends[i] : NULL;
}

/* ---- planning ---- */

/* Index of the backend holding memory of backend b. Host memory of a backend we do not have (a model's CPU backend,
 * shared by contexts that each drive their own CPU backend) is read by our first host-memory backend. */
static int backend_index(const smoe_sched *s, smoe_backend *b) {
    for (int i = 0; i < s->n_backends; i++)
        if (s->backends[i] == b) return i;
    smoe_backend_props props;
    smoe_backend_get_props(b, &props);
    for (int i = 0; props.host_memory && i < s->n_backends; i++)
        if (s->props[i].host_memory) return i;
    return -1;
}

static bool in_graph(const smoe_graph *g, const smoe_tensor *t) { return t->graph == g; }

/* Where t's memory lives: a backend index, or -1 if not decided yet (an unassigned input leaf). */
static int location(const smoe_sched *s, const smoe_graph *g, const smoe_tensor *t) {
    const smoe_tensor *r = t->view_src ? t->view_src : t;
    if (!in_graph(g, r)) return r->buffer ? backend_index(s, r->buffer->backend) : -1;
    return r->backend_id;
}

static bool supports(const smoe_sched *s, int b, const smoe_tensor *node) {
    return b >= 0 && smoe_backend_supports_op(s->backends[b], node);
}

static smoe_status assign_backends(smoe_sched *s, smoe_graph *g) {
    for (int i = 0; i < g->n_leaves; i++) g->leaves[i]->backend_id = -1;
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i]->backend_id = -1;

    for (int i = 0; i < g->n_nodes; i++) {
        smoe_tensor *n = g->nodes[i];
        const int n_src = smoe_op_n_src(n->op);
        /* external sources must be bound to one of our backends */
        for (int j = 0; j < n_src; j++) {
            const smoe_tensor *r = smoe_tensor_root(n->src[j]);
            if (in_graph(g, r)) continue;
            SMOE_RETURN_IF(!r->buffer, SMOE_ERR_INVALID_ARGUMENT,
                           "sched: %s reads %s, which is neither in the graph nor bound to a buffer", n->name,
                           r->name);
            SMOE_RETURN_IF(backend_index(s, r->buffer->backend) < 0, SMOE_ERR_INVALID_ARGUMENT,
                           "sched: %s lives on backend %s, which this scheduler does not have", r->name,
                           smoe_backend_name(r->buffer->backend));
        }
        int b = -1;
        if (n->op == SMOE_OP_VIEW || n->view_src) {
            /* views and in-place ops stay with their memory */
            b = location(s, g, n->view_src);
            if (b < 0) { /* a view of an input leaf not placed yet: place both */
                for (int k = 0; k < s->n_backends && b < 0; k++)
                    if (supports(s, k, n)) b = k;
                n->view_src->backend_id = b;
            }
            SMOE_RETURN_IF(n->op != SMOE_OP_VIEW && !supports(s, b, n), SMOE_ERR_UNSUPPORTED,
                           "sched: %s (%s) must run where %s lives (%s), which does not support it", n->name,
                           smoe_op_name(n->op), n->view_src->name, b >= 0 ? smoe_backend_name(s->backends[b]) : "?");
        } else {
            /* 1. follow bound memory (weights, caches) */
            for (int j = 0; j < n_src && b < 0; j++) {
                const smoe_tensor *r = smoe_tensor_root(n->src[j]);
                if (!in_graph(g, r) && supports(s, location(s, g, r), n)) b = location(s, g, r);
            }
            /* 2. follow the first computed source */
            for (int j = 0; j < n_src && b < 0; j++) {
                const smoe_tensor *r = smoe_tensor_root(n->src[j]);
                if (in_graph(g, r) && r->op != SMOE_OP_NONE && supports(s, r->backend_id, n)) b = r->backend_id;
            }
            /* 3. the first backend that can */
            for (int k = 0; k < s->n_backends && b < 0; k++)
                if (supports(s, k, n)) b = k;
            SMOE_RETURN_IF(b < 0, SMOE_ERR_UNSUPPORTED, "sched: no backend supports %s (%s)", n->name,
                           smoe_op_name(n->op));
        }
        n->backend_id = b;
        /* input leaves live with their first consumer */
        for (int j = 0; j < n_src; j++) {
            smoe_tensor *r = smoe_tensor_root(n->src[j]);
            if (in_graph(g, r) && r->op == SMOE_OP_NONE && r->backend_id < 0) r->backend_id = b;
        }
    }
    for (int i = 0; i < g->n_leaves; i++)
        if (g->leaves[i]->backend_id < 0) g->leaves[i]->backend_id = 0; /* unused input */
    return SMOE_OK;
}

/* Slot of a graph tensor in per-tensor arrays: the node index for nodes, n_nodes + leaf index for leaves
 * (graphs have few leaves, so a linear search is fine). */
static int tensor_slot(const smoe_graph *g, const smoe_tensor *t) {
    if (t->op != SMOE_OP_NONE) return t->index;
    for (int i = 0; i < g->n_leaves; i++)
        if (g->leaves[i] == t) return g->n_nodes + i;
    return -1;
}

static smoe_status build_plan(smoe_sched *s, smoe_graph *g, sched_plan **out) {
    smoe_status st = SMOE_OK;
    sched_plan *pl = calloc(1, sizeof(*pl));
    SMOE_RETURN_IF(!pl, SMOE_ERR_OUT_OF_MEMORY, "sched: out of memory");
    const int nn = g->n_nodes, nl = g->n_leaves;
    int *last = NULL, *node_split = NULL, *copy_last = NULL;
    smoe_plan_req *reqs = NULL;
    size_t *align = NULL;
    /* per (split, tensor) copies: found by scanning; at most one per src slot of each node */
    smoe_tensor **copy_src = NULL; /* source of copy c */
    int *copy_split = NULL;
    int *shadow_copy = NULL; /* [shadow * SMOE_MAX_SRC + j]: copy index read by src j, or -1 */

    SMOE_GOTO_TRY(st, fail, assign_backends(s, g));

    /* index leaves for tensor_slot (leaves keep index -1; we look them up linearly, graphs have few leaves) */
    last = malloc((size_t)(nn + nl + 1) * sizeof(*last));
    node_split = malloc((size_t)(nn + 1) * sizeof(*node_split));
    SMOE_GOTO_IF(!last || !node_split, st, fail, SMOE_ERR_OUT_OF_MEMORY, "sched: out of memory");
    for (int i = 0; i < nn + nl; i++) last[i] = -1;

    /* splits: runs of consecutive non-VIEW nodes on one backend */
    int n_splits = 0, n_compute = 0;
    {
        int cur = -1;
        for (int i = 0; i < nn; i++) {
            smoe_tensor *n = g->nodes[i];
            node_split[i] = -1;
            if (n->op == SMOE_OP_VIEW) continue;
            if (n->backend_id != cur) {
                n_splits++;
                cur = n->backend_id;
            }
            node_split[i] = n_splits - 1;
            n_compute++;
        }
    }
    pl->splits = calloc((size_t)n_splits + 1, sizeof(*pl->splits));
    pl->node_lists = calloc((size_t)n_compute + 1, sizeof(*pl->node_lists));
    const int max_copies = n_compute * SMOE_MAX_SRC + 1;
    copy_src = calloc((size_t)max_copies, sizeof(*copy_src));
    copy_split = calloc((size_t)max_copies, sizeof(*copy_split));
    copy_last = calloc((size_t)max_copies, sizeof(*copy_last));
    pl->shadow_orig = calloc((size_t)n_compute + 1, sizeof(*pl->shadow_orig));
    pl->shadows = calloc((size_t)n_compute + 1, sizeof(*pl->shadows));
    shadow_copy = malloc(((size_t)n_compute + 1) * SMOE_MAX_SRC * sizeof(*shadow_copy));
    SMOE_GOTO_IF(!shadow_copy || !pl->splits || !pl->node_lists || !copy_src || !copy_split || !copy_last ||
                     !pl->shadow_orig || !pl->shadows,
                 st, fail, SMOE_ERR_OUT_OF_MEMORY, "sched: out of memory");

    /* liveness of graph tensors (through views), and the copies each split needs */
    int n_copies = 0, pos = 0;
    for (int i = 0; i < nn; i++) {
        smoe_tensor *n = g->nodes[i];
        const int n_src = smoe_op_n_src(n->op);
        for (int j = 0; j < n_src; j++) {
            smoe_tensor *r = smoe_tensor_root(n->src[j]);
            if (in_graph(g, r)) {
                int slot = tensor_slot(g, r);
                if (slot >= 0 && i > last[slot]) last[slot] = i;
            }
        }
        if (n->op == SMOE_OP_VIEW) continue;
        const int sp = node_split[i];
        smoe_split *split = &pl->splits[sp];
        if (split->n_nodes == 0) {
            split->backend_id = n->backend_id;
            split->backend = s->backends[n->backend_id];
            split->nodes = &pl->node_lists[pos];
        }
        bool need_shadow = false;
        for (int j = 0; j < n_src; j++)
            if (location(s, g, n->src[j]) != n->backend_id) need_shadow = true;
        smoe_tensor *exec = n;
        if (need_shadow) {
            const int sh = pl->n_shadows++;
            exec = &pl->shadows[sh];
            *exec = *n;
            pl->shadow_orig[sh] = n;
            for (int j = 0; j < SMOE_MAX_SRC; j++) shadow_copy[sh * SMOE_MAX_SRC + j] = -1;
            for (int j = 0; j < n_src; j++) {
                smoe_tensor *src = n->src[j];
                if (location(s, g, src) == n->backend_id) continue;
                int c = -1;
                for (int k = n_copies - 1; k >= 0 && copy_split[k] == sp; k--)
                    if (copy_src[k] == src) c = k;
                if (c < 0) {
                    c = n_copies++;
                    copy_src[c] = src;
                    copy_split[c] = sp;
                }
                copy_last[c] = i;
                shadow_copy[sh * SMOE_MAX_SRC + j] = c; /* pointed at the copy once the copies exist */
            }
        }
        pl->node_lists[pos++] = exec;
        split->n_nodes++;
    }
    pl->n_splits = n_splits;
    pl->n_copies = n_copies;

    /* copy tensors, and the per-split input lists */
    pl->copy_tensors = calloc((size_t)n_copies + 1, sizeof(*pl->copy_tensors));
    pl->input_lists = calloc((size_t)n_copies + 1, sizeof(*pl->input_lists));
    pl->copy_lists = calloc((size_t)n_copies + 1, sizeof(*pl->copy_lists));
    SMOE_GOTO_IF(!pl->copy_tensors || !pl->input_lists || !pl->copy_lists, st, fail, SMOE_ERR_OUT_OF_MEMORY,
                 "sched: out of memory");
    for (int c = 0; c < n_copies; c++) {
        smoe_tensor *src = copy_src[c];
        smoe_tensor *cp = &pl->copy_tensors[c];
        SMOE_GOTO_TRY(st, fail, smoe_tensor_init_layout(cp, src->type, src->n_dims, src->ne));
        cp->op = SMOE_OP_NONE;
        cp->index = -1;
        cp->backend_id = pl->splits[copy_split[c]].backend_id;
        snprintf(cp->name, sizeof(cp->name), "%.40s#copy%d", src->name, c);
        pl->input_lists[c] = src;
        pl->copy_lists[c] = cp;
        smoe_split *split = &pl->splits[copy_split[c]];
        if (split->n_inputs == 0) {
            split->inputs = &pl->input_lists[c];
            split->copies = &pl->copy_lists[c];
        }
        split->n_inputs++;
    }
    for (int k = 0; k < pl->n_shadows; k++) {
        for (int j = 0; j < SMOE_MAX_SRC; j++) {
            int c = shadow_copy[k * SMOE_MAX_SRC + j];
            if (c >= 0) pl->shadows[k].src[j] = &pl->copy_tensors[c];
        }
    }

    /* memory requests: non-view nodes, input leaves, copies */
    const int max_reqs = nn + nl + n_copies + 1;
    reqs = calloc((size_t)max_reqs, sizeof(*reqs));
    pl->allocs = calloc((size_t)max_reqs, sizeof(*pl->allocs));
    pl->arena_size = calloc((size_t)s->n_backends, sizeof(*pl->arena_size));
    align = calloc((size_t)s->n_backends, sizeof(*align));
    SMOE_GOTO_IF(!reqs || !pl->allocs || !pl->arena_size || !align, st, fail, SMOE_ERR_OUT_OF_MEMORY,
                 "sched: out of memory");
    for (int b = 0; b < s->n_backends; b++) align[b] = s->props[b].alignment;
    /* outputs read through views keep their root alive */
    bool *keep = calloc((size_t)(nn + nl + 1), sizeof(*keep));
    SMOE_GOTO_IF(!keep, st, fail, SMOE_ERR_OUT_OF_MEMORY, "sched: out of memory");
    for (int i = 0; i < nn; i++) {
        smoe_tensor *n = g->nodes[i];
        if (!(n->flags & SMOE_TENSOR_OUTPUT)) continue;
        smoe_tensor *r = smoe_tensor_root(n);
        if (in_graph(g, r)) {
            int slot = tensor_slot(g, r);
            if (slot >= 0) keep[slot] = true;
        }
    }
    int nr = 0;
    for (int i = 0; i < nl; i++) {
        smoe_tensor *t = g->leaves[i];
        reqs[nr] = (smoe_plan_req){.size = smoe_tensor_nbytes(t), .arena = t->backend_id, .first_step = -1,
                                   .last_step = -1};
        pl->allocs[nr++] = (plan_alloc){.t = t, .backend = t->backend_id};
    }
    for (int i = 0; i < nn; i++) {
        smoe_tensor *t = g->nodes[i];
        if (t->view_src) continue;
        bool never = (t->flags & (SMOE_TENSOR_OUTPUT | SMOE_TENSOR_INPUT | SMOE_TENSOR_PERSISTENT)) || keep[i];
        int lst = last[i] < 0 ? i : last[i];
        reqs[nr] = (smoe_plan_req){.size = smoe_tensor_nbytes(t), .arena = t->backend_id, .first_step = i,
                                   .last_step = never ? -1 : lst};
        pl->allocs[nr++] = (plan_alloc){.t = t, .backend = t->backend_id};
    }
    free(keep);
    for (int c = 0; c < n_copies; c++) {
        smoe_tensor *cp = &pl->copy_tensors[c];
        /* placed when its split starts (the first node of the split), released after its last reader */
        const smoe_split *split = &pl->splits[copy_split[c]];
        const smoe_tensor *first_node = split->nodes[0];
        int start = first_node->index; /* shadows keep the original's index */
        reqs[nr] = (smoe_plan_req){.size = smoe_tensor_nbytes(cp), .arena = cp->backend_id, .first_step = start,
                                   .last_step = copy_last[c]};
        pl->allocs[nr++] = (plan_alloc){.t = cp, .backend = cp->backend_id};
    }
    SMOE_GOTO_TRY(st, fail, smoe_plan_assign(reqs, nr, s->n_backends, align, pl->arena_size));
    pl->n_allocs = nr;
    for (int k = 0; k < nr; k++) {
        pl->allocs[k].offset = reqs[k].offset;
        pl->total_tensor_size += (reqs[k].size + align[reqs[k].arena] - 1) & ~(align[reqs[k].arena] - 1);
    }

    pl->sched_uid = s->uid;
    pl->graph_version = g->version;
    free(last);
    free(node_split);
    free(copy_src);
    free(copy_split);
    free(copy_last);
    free(shadow_copy);
    free(reqs);
    free(align);
    *out = pl;
    return SMOE_OK;

fail:
    free(last);
    free(node_split);
    free(copy_src);
    free(copy_split);
    free(copy_last);
    free(shadow_copy);
    free(reqs);
    free(align);
    plan_free(pl);
    return st;
}

/* ---- binding ---- */

static smoe_status bind_plan(smoe_sched *s, smoe_graph *g, sched_plan *pl) {
    /* grow arenas where needed */
    for (int b = 0; b < s->n_backends; b++) {
        size_t need = pl->arena_size[b];
        if (need == 0 || (s->arenas[b] && s->arenas[b]->size >= need)) continue;
        smoe_buffer_free(s->arenas[b]);
        s->arenas[b] = NULL;
        smoe_status st = smoe_backend_buffer_alloc(s->backends[b], need, &s->arenas[b]);
        if (st != SMOE_OK) {
            smoe_error_prefix("sched: arena of %zu bytes on %s", need, smoe_backend_name(s->backends[b]));
            return st;
        }
    }
    for (int k = 0; k < pl->n_allocs; k++) {
        plan_alloc *a = &pl->allocs[k];
        a->t->buffer = s->arenas[a->backend];
        a->t->data = (char *)s->arenas[a->backend]->base + a->offset;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        smoe_tensor *n = g->nodes[i];
        if (!n->view_src) continue;
        n->buffer = n->view_src->buffer;
        n->data = n->view_src->data ? (char *)n->view_src->data + n->view_offset : NULL;
    }
    for (int k = 0; k < pl->n_shadows; k++) {
        pl->shadows[k].buffer = pl->shadow_orig[k]->buffer;
        pl->shadows[k].data = pl->shadow_orig[k]->data;
    }
    const uint64_t stamp = atomic_fetch_add(&bind_stamp_counter, 1);
    for (int i = 0; i < pl->n_splits; i++) pl->splits[i].stamp = stamp;
    s->bind_count++;
    pl->bound_at = s->bind_count;
    s->bound_graph = g;
    s->bound_version = g->version;
    return SMOE_OK;
}

smoe_status smoe_sched_alloc_graph(smoe_sched *s, smoe_graph *g) {
    SMOE_RETURN_IF(!s || !g, SMOE_ERR_INVALID_ARGUMENT, "sched: NULL argument");
    sched_plan *pl = g->plan;
    if (pl && (pl->sched_uid != s->uid || pl->graph_version != g->version)) {
        g->plan_free(pl);
        g->plan = NULL;
        pl = NULL;
    }
    if (!pl) {
        SMOE_TRY(build_plan(s, g, &pl));
        g->plan = pl;
        g->plan_free = plan_free;
    } else if (s->bound_graph == g && pl->bound_at == s->bind_count && s->bound_version == g->version) {
        return SMOE_OK; /* already bound: nothing to do */
    }
    return bind_plan(s, g, pl);
}

/* ---- running ---- */

static smoe_status staging_reserve(smoe_sched *s, size_t n) {
    if (s->staging_size >= n) return SMOE_OK;
    uint8_t *p = realloc(s->staging, n);
    SMOE_RETURN_IF(!p, SMOE_ERR_OUT_OF_MEMORY, "sched: staging buffer of %zu bytes", n);
    s->staging = p;
    s->staging_size = n;
    return SMOE_OK;
}

/* Copies the tensor src (any strides, rows contiguous) into the contiguous tensor dst on another backend. */
static smoe_status copy_tensor(smoe_sched *s, const smoe_tensor *src, smoe_tensor *dst) {
    smoe_backend *sb = src->buffer->backend, *db = dst->buffer->backend;
    smoe_backend_props sp;
    smoe_backend_get_props(sb, &sp);
    const size_t total = smoe_tensor_nbytes(dst);
    if (smoe_tensor_is_contiguous(src) && sp.host_memory) {
        SMOE_TRY(db->iface.tensor_set_async(db, dst, src->data, 0, total));
        return smoe_backend_synchronize(db);
    }
    SMOE_TRY(staging_reserve(s, total));
    if (smoe_tensor_is_contiguous(src)) {
        SMOE_TRY(sb->iface.tensor_get_async(sb, src, s->staging, 0, total));
    } else {
        const size_t row = smoe_tensor_row_size(src);
        size_t o = 0;
        for (int64_t i3 = 0; i3 < src->ne[3]; i3++)
            for (int64_t i2 = 0; i2 < src->ne[2]; i2++)
                for (int64_t i1 = 0; i1 < src->ne[1]; i1++, o += row) {
                    size_t off = (size_t)i1 * src->nb[1] + (size_t)i2 * src->nb[2] + (size_t)i3 * src->nb[3];
                    SMOE_TRY(sb->iface.tensor_get_async(sb, src, s->staging + o, off, row));
                }
    }
    SMOE_TRY(smoe_backend_synchronize(sb));
    SMOE_TRY(db->iface.tensor_set_async(db, dst, s->staging, 0, total));
    return smoe_backend_synchronize(db);
}

smoe_status smoe_sched_compute(smoe_sched *s, smoe_graph *g) {
    SMOE_RETURN_IF(!s || !g, SMOE_ERR_INVALID_ARGUMENT, "sched: NULL argument");
    sched_plan *pl = g->plan;
    SMOE_RETURN_IF(!pl || s->bound_graph != g || pl->bound_at != s->bind_count || s->bound_version != g->version ||
                       pl->sched_uid != s->uid,
                   SMOE_ERR_INVALID_ARGUMENT, "sched: graph is not bound (call smoe_sched_alloc_graph first)");
    for (int i = 0; i < pl->n_splits; i++) {
        const smoe_split *sp = &pl->splits[i];
        for (int c = 0; c < sp->n_inputs; c++) SMOE_TRY(copy_tensor(s, sp->inputs[c], sp->copies[c]));
        SMOE_TRY(sp->backend->iface.compute(sp->backend, sp));
        SMOE_TRY(smoe_backend_synchronize(sp->backend));
    }
    return SMOE_OK;
}

/* ---- introspection ---- */

smoe_status smoe_sched_get_stats(const smoe_sched *s, const smoe_graph *g, smoe_sched_stats *stats) {
    SMOE_RETURN_IF(!s || !g || !stats, SMOE_ERR_INVALID_ARGUMENT, "sched stats: NULL argument");
    const sched_plan *pl = g->plan;
    SMOE_RETURN_IF(!pl || pl->sched_uid != s->uid, SMOE_ERR_INVALID_ARGUMENT,
                   "sched stats: graph not planned by this scheduler");
    memset(stats, 0, sizeof(*stats));
    stats->n_splits = pl->n_splits;
    stats->n_copies = pl->n_copies;
    for (int b = 0; b < s->n_backends; b++) {
        if (b < 8) stats->arena_size[b] = pl->arena_size[b];
        stats->total_arena_size += pl->arena_size[b];
    }
    stats->total_tensor_size = pl->total_tensor_size;
    return SMOE_OK;
}

smoe_backend *smoe_sched_tensor_backend(const smoe_sched *s, const smoe_tensor *t) {
    if (!s || !t) return NULL;
    const smoe_tensor *r = smoe_tensor_root((smoe_tensor *)t);
    if (r->graph && r->backend_id >= 0 && r->backend_id < s->n_backends) return s->backends[r->backend_id];
    if (r->buffer) return r->buffer->backend;
    return NULL;
}
