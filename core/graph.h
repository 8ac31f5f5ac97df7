/*
 * graph.h - a graph of ops, built once per batch shape and executed many times (by a scheduler, core/sched.h).
 *
 * Building: create input leaves with smoe_graph_new_tensor, then call the op constructors below in dependency
 * order; each appends one node. Constructors validate shapes and types and return SMOE_ERR_INVALID_ARGUMENT (with a
 * message naming the op and the offending tensor) instead of asserting; on failure *out is NULL and the graph is
 * unchanged. Node order is execution order (always topological, since sources must exist first).
 *
 * Sources may be tensors of this graph or external tensors (weights, KV caches) that are bound to a buffer before
 * the graph is scheduled. Nothing data-dependent is baked into a graph: token ids, positions, cell indices, the
 * number of cells to scan and expert ids are all tensors.
 *
 * Results: every constructor's result is a new f32 tensor unless stated, contiguous, named "<op>-<index>" until the
 * caller renames it. Mark what you read back with SMOE_TENSOR_OUTPUT (smoe_graph_set_output), else the planner may
 * reuse its memory.
 *
 * A graph (its arena) owns its tensors; external tensors are borrowed and must outlive it. Not thread safe.
 */
#ifndef SMOE_GRAPH_H
#define SMOE_GRAPH_H

#include "tensor.h"

typedef struct smoe_graph smoe_graph;

smoe_status smoe_graph_init(smoe_graph **out);
void        smoe_graph_free(smoe_graph *g); /* NULL is a no-op */

/* A graph leaf: an input the caller fills before each compute (flag SMOE_TENSOR_INPUT). Memory comes from the
 * scheduler's planner. Same shape rules as smoe_tensor_new. */
smoe_status smoe_graph_new_tensor(smoe_graph *g, smoe_type type, int n_dims, const int64_t *ne, smoe_tensor **out);

/* Flags t as an output (its memory is not reused; read it after compute). Returns t. */
smoe_tensor *smoe_graph_set_output(smoe_tensor *t);

int          smoe_graph_n_nodes(const smoe_graph *g);
smoe_tensor *smoe_graph_node(const smoe_graph *g, int i);   /* NULL if out of range */
int          smoe_graph_n_leaves(const smoe_graph *g);      /* leaves made with smoe_graph_new_tensor */
smoe_tensor *smoe_graph_leaf(const smoe_graph *g, int i);   /* NULL if out of range */
/* First node or leaf with this name, or NULL. */
smoe_tensor *smoe_graph_get_tensor(const smoe_graph *g, const char *name);
smoe_arena  *smoe_graph_arena(smoe_graph *g);

/* Scheduler bookkeeping: changes whenever the graph is modified (nodes added); a plan is valid for one version. */
uint64_t smoe_graph_version(const smoe_graph *g);

/* ---- views (op VIEW; no computation, no memory) ---- */

/* A view of a with its own type-compatible shape and strides: n_dims 1..4, ne[n_dims], nb[1..n_dims-1] byte strides
 * (nb[0] is the element size of a's type; pass nb = NULL for dense strides), starting `offset` bytes into a. The
 * view must stay inside a's memory. */
smoe_status smoe_view(smoe_graph *g, smoe_tensor *a, int n_dims, const int64_t *ne, const size_t *nb, size_t offset,
                      smoe_tensor **out);
/* a contiguous tensor with a new shape of the same element count (e.g. [n_embd, n_tokens] -> [head_dim, n_head,
 * n_tokens]). */
smoe_status smoe_reshape(smoe_graph *g, smoe_tensor *a, int n_dims, const int64_t *ne, smoe_tensor **out);

/* ---- ops (see core/ops.def) ---- */

/* table [n_embd, n_rows] of any type with to_f32 (weights may be quantized), ids I32 [n] (1-D)
 *   -> f32 [n_embd, n]; out[:, i] = table[:, ids[i]]. An id outside [0, n_rows) fails the compute with
 *   SMOE_ERR_INVALID_ARGUMENT. */
smoe_status smoe_get_rows(smoe_graph *g, smoe_tensor *table, smoe_tensor *ids, smoe_tensor **out);

/* x f32 [n, r1, r2, r3], weight f32 [n] -> f32 like x: y = x / sqrt(mean(x^2) + eps) * weight (per row of n). */
smoe_status smoe_rms_norm(smoe_graph *g, smoe_tensor *x, smoe_tensor *weight, float eps, smoe_tensor **out);

/* w [k, m] (2-D, any type with to_f32; k a multiple of its block size), x f32 [k, n, n2, n3]
 *   -> f32 [m, n, n2, n3]; out[i, j] = sum_l w[l, i] * x[l, j]. The CPU computes it as the type's vec_dot against x
 *   quantized to the type's vec_dot_type (so results carry that rounding). */
smoe_status smoe_mul_mat(smoe_graph *g, smoe_tensor *w, smoe_tensor *x, smoe_tensor **out);

/* experts w [k, m, n_expert] (any type with to_f32), x f32 [k, n_x, n_tokens] with n_x = 1 (one input row per token,
 *   used for every chosen expert) or n_x = n_used (one input row per chosen expert), ids I32 [n_used, n_tokens]
 *   -> f32 [m, n_used, n_tokens]; out[:, s, t] = w[:, :, ids[s, t]] x[:, s or 0, t]. An id outside [0, n_expert)
 *   fails the compute with SMOE_ERR_INVALID_ARGUMENT. */
smoe_status smoe_mul_mat_id(smoe_graph *g, smoe_tensor *w, smoe_tensor *x, smoe_tensor *ids, smoe_tensor **out);

/* x f32 [head_dim, n_head, n_tokens], pos I32 [n_tokens] -> f32 like x. llama.cpp's "normal" mode (the layout that
 *   GGUF's permuted Q/K weights are stored for): for i < n_rot/2 the pair (x[2i], x[2i+1]) is rotated by the angle
 *   p * theta_base^(-2i/n_rot), p = pos[t] * freq_scale; dims >= n_rot are copied. n_rot even, 2 <= n_rot <= head_dim.
 */
smoe_status smoe_rope(smoe_graph *g, smoe_tensor *x, smoe_tensor *pos, const smoe_op_rope_params *params,
                      smoe_tensor **out);

/* In place: cache [head_dim, n_head_kv, n_cells] (F32, F16 or any type with from_f32 whose block divides head_dim;
 *   contiguous; usually a PERSISTENT tensor), rows f32 [head_dim, n_head_kv, n_tokens], cells I32 [n_tokens]:
 *   cache[:, :, cells[t]] = rows[:, :, t] (converted to the cache type). The result is a view of the whole cache:
 *   pass it (not the cache) to smoe_attention so the write happens first. A cell index outside [0, n_cells) fails
 *   the compute with SMOE_ERR_INVALID_ARGUMENT. */
smoe_status smoe_kv_write(smoe_graph *g, smoe_tensor *cache, smoe_tensor *rows, smoe_tensor *cells,
                          smoe_tensor **out);

/* Fused causal attention with grouped-query heads, reading the KV cache.
 *   q         f32 [head_dim, n_head, n_tokens]
 *   k, v      [head_dim, n_head_kv, n_cells] (types with to_f32; usually the results of smoe_kv_write); n_head is a
 *             multiple of n_head_kv and query head h uses kv head h / (n_head / n_head_kv)
 *   q_info    I32 [2, n_tokens]: (position, sequence id) of each query
 *   cell_info I32 [2, n_cells]:  (position, sequence id) of each cell; sequence id -1 = empty cell
 *   n_scan    I32 [1]: only cells [0, n_scan) are looked at (clamped to [0, n_cells])
 *   -> f32 [head_dim, n_head, n_tokens]. Query t attends cell j iff seq(j) == seq(t) and pos(j) <= pos(t); weights are
 *   softmax(scale * q.k) over those cells (online softmax, no score matrix); a query with no such cell gets zeros. */
smoe_status smoe_attention(smoe_graph *g, smoe_tensor *q, smoe_tensor *k, smoe_tensor *v, smoe_tensor *q_info,
                           smoe_tensor *cell_info, smoe_tensor *n_scan, float scale, smoe_tensor **out);

/* logits f32 [n_expert, n_tokens] -> ids I32 [n_used, n_tokens]: the n_used largest logits of each token in
 *   decreasing order (ties: the lower expert index first). 1 <= n_used <= n_expert.
 *   Routing weights are not a second output: smoe_moe_combine recomputes them from the logits (a softmax over
 *   n_used numbers is cheap), which keeps every op single-output. */
smoe_status smoe_moe_route(smoe_graph *g, smoe_tensor *logits, int n_used, smoe_tensor **out);

/* expert outputs y f32 [n_embd, n_used, n_tokens], logits f32 [n_expert, n_tokens], ids I32 [n_used, n_tokens]
 *   -> f32 [n_embd, n_tokens]: out[:, t] = sum_s w[s, t] y[:, s, t] with w[:, t] = softmax over s of
 *   logits[ids[s, t], t]. That equals Mixtral's softmax over all experts, then top-k, then renormalize. */
smoe_status smoe_moe_combine(smoe_graph *g, smoe_tensor *y, smoe_tensor *logits, smoe_tensor *ids,
                             smoe_tensor **out);

/* gate, up f32, same shape -> silu(gate) * up, silu(x) = x / (1 + exp(-x)). */
smoe_status smoe_swiglu(smoe_graph *g, smoe_tensor *gate, smoe_tensor *up, smoe_tensor **out);

/* a f32, b f32 with b->ne[i] == a->ne[i] or 1 for each i (broadcast) -> f32 like a. */
smoe_status smoe_add(smoe_graph *g, smoe_tensor *a, smoe_tensor *b, smoe_tensor **out);
smoe_status smoe_mul(smoe_graph *g, smoe_tensor *a, smoe_tensor *b, smoe_tensor **out);

/* a f32 -> a * s. */
smoe_status smoe_scale(smoe_graph *g, smoe_tensor *a, float s, smoe_tensor **out);

/* a (any type with to_f32, rows contiguous) -> a new contiguous tensor of `type` (with from_f32; ne[0] a multiple of
 *   its block size), same shape: f32 <-> f16/bf16 conversion, or making a view contiguous. */
smoe_status smoe_cpy(smoe_graph *g, smoe_tensor *a, smoe_type type, smoe_tensor **out);

#endif /* SMOE_GRAPH_H */
