/*
 * sched.h - runs a graph over several backends.
 *
 * Planning (once per graph version, by smoe_sched_alloc_graph):
 *   1. Assignment. A node whose source is bound memory (a WEIGHT or PERSISTENT tensor, or a view of one, e.g. the KV
 *      cache behind KV_WRITE/ATTENTION) runs on the backend holding it, if that backend supports the node; VIEW nodes
 *      stay with the memory they view. Other nodes follow their first source computed in the graph when that
 *      backend supports them; otherwise the first backend in the list that supports them. In-place ops (KV_WRITE)
 *      must run where their memory is (else SMOE_ERR_UNSUPPORTED). Graph inputs live with their first consumer.
 *   2. Splits: maximal runs of consecutive nodes on one backend. A split's sources that live on another backend are
 *      copied into tensors of the split's backend before it runs (one copy per source per split).
 *   3. Memory: every intermediate, input and copy gets an offset in one arena per backend from the liveness planner
 *      (core/plan.h): memory is reused once a tensor's last reader has run; inputs and outputs are never reused.
 * Binding: the scheduler owns one arena buffer per backend, sized to the largest plan it has bound (grown when a
 * bigger graph comes, never per run). Binding a graph sets its tensors' buffer/data; running it again allocates
 * nothing.
 *
 * Usage per step: smoe_sched_alloc_graph(s, g); smoe_tensor_set(...) on the inputs; smoe_sched_compute(s, g);
 * smoe_tensor_get(...) on the outputs. Outputs stay valid until the next smoe_sched_alloc_graph of another graph
 * (graphs bound to one scheduler share its arenas).
 *
 * The plan is stored with the graph (freed by smoe_graph_free); a graph is planned for one scheduler at a time.
 * Not thread safe; one thread drives a scheduler.
 */
#ifndef SMOE_SCHED_H
#define SMOE_SCHED_H

#include "backend.h"
#include "graph.h"

typedef struct smoe_sched smoe_sched;

/* backends: borrowed, in priority order (GPU first, the CPU last as the fallback); n_backends >= 1. */
smoe_status smoe_sched_init(smoe_backend *const *backends, int n_backends, smoe_sched **out);
void        smoe_sched_free(smoe_sched *s); /* NULL is a no-op */

/* Plans g if needed and binds its tensors to this scheduler's arenas. Fails with SMOE_ERR_INVALID_ARGUMENT for a
 * source that is neither a node/leaf of g nor bound memory, SMOE_ERR_UNSUPPORTED when no backend supports a node,
 * SMOE_ERR_OUT_OF_MEMORY when an arena cannot be allocated. */
smoe_status smoe_sched_alloc_graph(smoe_sched *s, smoe_graph *g);
/* Runs g (which must be the graph last bound with smoe_sched_alloc_graph) and waits for it to finish. */
smoe_status smoe_sched_compute(smoe_sched *s, smoe_graph *g);

typedef struct smoe_sched_stats {
    int    n_splits;
    int    n_copies;            /* inputs copied between backends per run */
    size_t arena_size[8];       /* planned arena bytes per backend (first 8 backends) */
    size_t total_arena_size;    /* sum over backends */
    size_t total_tensor_size;   /* sum of the sizes of every planned tensor (what no reuse would need) */
} smoe_sched_stats;

/* Figures for the plan of g (planned by this scheduler). */
smoe_status smoe_sched_get_stats(const smoe_sched *s, const smoe_graph *g, smoe_sched_stats *stats);
int           smoe_sched_n_backends(const smoe_sched *s);
smoe_backend *smoe_sched_backend(const smoe_sched *s, int i);
/* The backend that runs (or holds) t in the current plan of its graph, or NULL. */
smoe_backend *smoe_sched_tensor_backend(const smoe_sched *s, const smoe_tensor *t);

#endif /* SMOE_SCHED_H */
