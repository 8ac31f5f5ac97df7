/*
 * graph-impl.h - the graph struct, for graph.c, graph-ops.c and the scheduler.
 */
#ifndef SMOE_GRAPH_IMPL_H
#define SMOE_GRAPH_IMPL_H

#include "graph.h"

struct smoe_graph {
    smoe_arena   *arena;
    smoe_tensor **nodes; /* execution order */
    int           n_nodes, cap_nodes;
    smoe_tensor **leaves; /* inputs made by smoe_graph_new_tensor */
    int           n_leaves, cap_leaves;
    uint64_t      version; /* bumped on every change */

    /* the scheduler's plan for this graph (core/sched.c), freed with the graph */
    void *plan;
    void (*plan_free)(void *plan);
};

/* A new node tensor (contiguous, f32 unless `type` says otherwise) with op and sources set, not yet in the graph. */
smoe_status smoe_graph_make_node(smoe_graph *g, smoe_op op, smoe_type type, int n_dims, const int64_t *ne,
                                 smoe_tensor *const *srcs, smoe_tensor **out);
/* Appends a node made by smoe_graph_make_node. */
smoe_status smoe_graph_append(smoe_graph *g, smoe_tensor *node);

#endif /* SMOE_GRAPH_IMPL_H */
