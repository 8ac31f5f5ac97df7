/*
 * graph.c - graph lifecycle, leaves and node lists (the op constructors are in graph-ops.c).
 */
#include "graph-impl.h"

#include <stdlib.h>
#include <string.h>

smoe_status smoe_graph_init(smoe_graph **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "graph: out is NULL");
    *out = NULL;
    smoe_graph *g = calloc(1, sizeof(*g));
    SMOE_RETURN_IF(!g, SMOE_ERR_OUT_OF_MEMORY, "graph: out of memory");
    smoe_status st = smoe_arena_init(0, &g->arena);
    if (st != SMOE_OK) {
        free(g);
        return st;
    }
    *out = g;
    return SMOE_OK;
}

void smoe_graph_free(smoe_graph *g) {
    if (!g) return;
    if (g->plan && g->plan_free) g->plan_free(g->plan);
    free(g->nodes);
    free(g->leaves);
    smoe_arena_free(g->arena);
    free(g);
}

static smoe_status push(smoe_tensor ***arr, int *n, int *cap, smoe_tensor *t) {
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        SMOE_RETURN_IF(nc > (1 << 28), SMOE_ERR_OUT_OF_MEMORY, "graph: too many tensors");
        smoe_tensor **p = realloc(*arr, (size_t)nc * sizeof(*p));
        SMOE_RETURN_IF(!p, SMOE_ERR_OUT_OF_MEMORY, "graph: out of memory");
        *arr = p;
        *cap = nc;
    }
    (*arr)[(*n)++] = t;
    return SMOE_OK;
}

smoe_status smoe_graph_new_tensor(smoe_graph *g, smoe_type type, int n_dims, const int64_t *ne, smoe_tensor **out) {
    SMOE_RETURN_IF(!g || !out, SMOE_ERR_INVALID_ARGUMENT, "graph: NULL argument");
    *out = NULL;
    smoe_tensor *t = NULL;
    SMOE_TRY(smoe_tensor_new(g->arena, type, n_dims, ne, &t));
    t->graph = g;
    t->flags |= SMOE_TENSOR_INPUT;
    smoe_tensor_format_name(t, "input-%d", g->n_leaves);
    SMOE_TRY(push(&g->leaves, &g->n_leaves, &g->cap_leaves, t));
    g->version++;
    *out = t;
    return SMOE_OK;
}

smoe_status smoe_graph_make_node(smoe_graph *g, smoe_op op, smoe_type type, int n_dims, const int64_t *ne,
                                 smoe_tensor *const *srcs, smoe_tensor **out) {
    *out = NULL;
    smoe_tensor *t = NULL;
    SMOE_TRY(smoe_tensor_new(g->arena, type, n_dims, ne, &t));
    t->op = op;
    t->graph = g;
    int n = smoe_op_n_src(op);
    for (int i = 0; i < n; i++) t->src[i] = srcs[i];
    *out = t;
    return SMOE_OK;
}

smoe_status smoe_graph_append(smoe_graph *g, smoe_tensor *node) {
    node->index = g->n_nodes;
    if (!node->name[0]) smoe_tensor_format_name(node, "%s-%d", smoe_op_name(node->op), g->n_nodes);
    SMOE_TRY(push(&g->nodes, &g->n_nodes, &g->cap_nodes, node));
    g->version++;
    return SMOE_OK;
}

smoe_tensor *smoe_graph_set_output(smoe_tensor *t) {
    if (t) t->flags |= SMOE_TENSOR_OUTPUT;
    if (t && t->graph) t->graph->version++;
    return t;
}

int smoe_graph_n_nodes(const smoe_graph *g) { return g ? g->n_nodes : 0; }

smoe_tensor *smoe_graph_node(const smoe_graph *g, int i) {
    return (g && i >= 0 && i < g->n_nodes) ? g->nodes[i] : NULL;
}

int smoe_graph_n_leaves(const smoe_graph *g) { return g ? g->n_leaves : 0; }

smoe_tensor *smoe_graph_leaf(const smoe_graph *g, int i) {
    return (g && i >= 0 && i < g->n_leaves) ? g->leaves[i] : NULL;
}

smoe_tensor *smoe_graph_get_tensor(const smoe_graph *g, const char *name) {
    if (!g || !name) return NULL;
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i]->name, name) == 0) return g->nodes[i];
    for (int i = 0; i < g->n_leaves; i++)
        if (strcmp(g->leaves[i]->name, name) == 0) return g->leaves[i];
    return NULL;
}

smoe_arena *smoe_graph_arena(smoe_graph *g) { return g ? g->arena : NULL; }

uint64_t smoe_graph_version(const smoe_graph *g) { return g ? g->version : 0; }
