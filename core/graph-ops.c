/*
 * graph-ops.c - one constructor per op: validates sources (types, shapes, strides) and appends a node.
 * Contracts are documented in graph.h. Every failure is SMOE_ERR_INVALID_ARGUMENT with "OP: what is wrong".
 */
#include "graph-impl.h"

#include <math.h>
#include <string.h>

#define CHECK(cond, ...) SMOE_RETURN_IF(!(cond), SMOE_ERR_INVALID_ARGUMENT, __VA_ARGS__)

/* Common checks for a source: present, from this graph or external (bound or bindable later). */
static smoe_status check_src(smoe_graph *g, const char *op, const char *what, const smoe_tensor *t) {
    CHECK(g != NULL, "%s: graph is NULL", op);
    CHECK(t != NULL, "%s: %s is NULL", op, what);
    CHECK(t->graph == NULL || t->graph == g, "%s: %s (%s) belongs to another graph", op, what, t->name);
    CHECK(smoe_type_get_traits(t->type) != NULL, "%s: %s (%s) has an invalid type", op, what, t->name);
    return SMOE_OK;
}

static smoe_status check_type(const char *op, const char *what, const smoe_tensor *t, smoe_type type) {
    CHECK(t->type == type, "%s: %s (%s) must be %s, not %s", op, what, t->name, smoe_type_name(type),
          smoe_type_name(t->type));
    CHECK(smoe_tensor_rows_contiguous(t), "%s: %s (%s) must have contiguous rows", op, what, t->name);
    return SMOE_OK;
}

/* A type the CPU can read: has to_f32, and rows are contiguous. */
static smoe_status check_readable(const char *op, const char *what, const smoe_tensor *t) {
    const smoe_type_traits *tr = smoe_type_get_traits(t->type);
    CHECK(tr && tr->to_f32, "%s: %s (%s) has type %s, which has no conversion to f32", op, what, t->name,
          smoe_type_name(t->type));
    CHECK(smoe_tensor_rows_contiguous(t), "%s: %s (%s) must have contiguous rows", op, what, t->name);
    return SMOE_OK;
}

static smoe_status check_dims(const char *op, const char *what, const smoe_tensor *t, int max_dims) {
    for (int i = max_dims; i < SMOE_MAX_DIMS; i++)
        CHECK(t->ne[i] == 1, "%s: %s (%s) must have at most %d dimensions (ne[%d] = %" PRId64 ")", op, what, t->name,
              max_dims, i, t->ne[i]);
    return SMOE_OK;
}

static int max_int(int a, int b) { return a > b ? a : b; }

static smoe_status finish(smoe_graph *g, smoe_op op, smoe_type type, int n_dims, const int64_t *ne,
                          smoe_tensor *const *srcs, const smoe_op_params *params, smoe_tensor **out) {
    smoe_tensor *t = NULL;
    SMOE_TRY(smoe_graph_make_node(g, op, type, n_dims, ne, srcs, &t));
    if (params) t->params = *params;
    SMOE_TRY(smoe_graph_append(g, t));
    *out = t;
    return SMOE_OK;
}

#define BEGIN(opname)                                                                                                  \
    const char *op_ = opname;                                                                                          \
    (void)op_;                                                                                                         \
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "%s: out is NULL", opname);                                        \
    *out = NULL;                                                                                                       \
    SMOE_RETURN_IF(!g, SMOE_ERR_INVALID_ARGUMENT, "%s: graph is NULL", opname)

/* ---- views ---- */

static smoe_status make_view(smoe_graph *g, smoe_tensor *a, int n_dims, const int64_t *ne, const size_t *nb,
                             size_t offset, smoe_tensor **out) {
    const char *op_ = "VIEW";
    const smoe_type_traits *tr = smoe_type_get_traits(a->type);
    smoe_tensor *t = NULL;
    smoe_tensor *srcs[1] = {a};
    SMOE_TRY(smoe_graph_make_node(g, SMOE_OP_VIEW, a->type, n_dims, ne, srcs, &t));
    if (nb) {
        CHECK(nb[0] == tr->type_size, "%s: nb[0] = %zu must be the %s element size %zu", op_, nb[0], tr->name,
              tr->type_size);
        for (int i = 1; i < n_dims; i++) t->nb[i] = nb[i];
        for (int i = n_dims; i < SMOE_MAX_DIMS; i++) t->nb[i] = t->nb[i - 1] * (size_t)t->ne[i - 1];
    }
    /* bounds: the view's span must lie inside a's span */
    uint64_t span = smoe_tensor_row_size(t);
    for (int i = 1; i < SMOE_MAX_DIMS; i++) {
        uint64_t extra = 0;
        CHECK(!smoe_mul_overflow_u64((uint64_t)(t->ne[i] - 1), t->nb[i], &extra) &&
                  !smoe_add_overflow_u64(span, extra, &span),
              "%s: strides overflow", op_);
    }
    uint64_t end = 0;
    CHECK(!smoe_add_overflow_u64(span, offset, &end) && end <= smoe_tensor_nbytes(a),
          "%s: view of %" PRIu64 " bytes at offset %zu exceeds %s (%zu bytes)", op_, span, offset, a->name,
          smoe_tensor_nbytes(a));
    smoe_tensor *root = smoe_tensor_root(a);
    t->view_src = root;
    t->view_offset = (a->view_src ? a->view_offset : 0) + offset;
    SMOE_TRY(smoe_graph_append(g, t));
    *out = t;
    return SMOE_OK;
}

smoe_status smoe_view(smoe_graph *g, smoe_tensor *a, int n_dims, const int64_t *ne, const size_t *nb, size_t offset,
                      smoe_tensor **out) {
    BEGIN("VIEW");
    SMOE_TRY(check_src(g, op_, "a", a));
    CHECK(ne != NULL, "%s: ne is NULL", op_);
    return make_view(g, a, n_dims, ne, nb, offset, out);
}

smoe_status smoe_reshape(smoe_graph *g, smoe_tensor *a, int n_dims, const int64_t *ne, smoe_tensor **out) {
    BEGIN("VIEW");
    SMOE_TRY(check_src(g, op_, "a", a));
    CHECK(ne != NULL, "%s: ne is NULL", op_);
    CHECK(smoe_tensor_is_contiguous(a), "reshape: %s is not contiguous", a->name);
    CHECK(n_dims >= 1 && n_dims <= SMOE_MAX_DIMS, "reshape: n_dims %d not in 1..4", n_dims);
    int64_t n = 1;
    for (int i = 0; i < n_dims; i++) {
        CHECK(ne[i] >= 1 && ne[i] <= SMOE_MAX_NE, "reshape: ne[%d] = %" PRId64 " out of range", i, ne[i]);
        n *= ne[i];
        CHECK(n <= SMOE_MAX_NE * 1024, "reshape: too many elements");
    }
    CHECK(n == smoe_tensor_nelements(a), "reshape: %s has %" PRId64 " elements, the new shape %" PRId64, a->name,
          smoe_tensor_nelements(a), n);
    return make_view(g, a, n_dims, ne, NULL, 0, out);
}

/* ---- ops ---- */

smoe_status smoe_get_rows(smoe_graph *g, smoe_tensor *table, smoe_tensor *ids, smoe_tensor **out) {
    BEGIN("GET_ROWS");
    SMOE_TRY(check_src(g, op_, "table", table));
    SMOE_TRY(check_src(g, op_, "ids", ids));
    SMOE_TRY(check_readable(op_, "table", table));
    SMOE_TRY(check_dims(op_, "table", table, 2));
    SMOE_TRY(check_type(op_, "ids", ids, SMOE_TYPE_I32));
    SMOE_TRY(check_dims(op_, "ids", ids, 1));
    int64_t ne[2] = {table->ne[0], ids->ne[0]};
    smoe_tensor *srcs[] = {table, ids};
    return finish(g, SMOE_OP_GET_ROWS, SMOE_TYPE_F32, 2, ne, srcs, NULL, out);
}

smoe_status smoe_rms_norm(smoe_graph *g, smoe_tensor *x, smoe_tensor *weight, float eps, smoe_tensor **out) {
    BEGIN("RMS_NORM");
    SMOE_TRY(check_src(g, op_, "x", x));
    SMOE_TRY(check_src(g, op_, "weight", weight));
    SMOE_TRY(check_type(op_, "x", x, SMOE_TYPE_F32));
    SMOE_TRY(check_type(op_, "weight", weight, SMOE_TYPE_F32));
    SMOE_TRY(check_dims(op_, "weight", weight, 1));
    CHECK(weight->ne[0] == x->ne[0], "%s: weight (%s) has %" PRId64 " elements, x rows have %" PRId64, op_,
          weight->name, weight->ne[0], x->ne[0]);
    CHECK(isfinite(eps) && eps >= 0.0f, "%s: eps %g must be finite and >= 0", op_, (double)eps);
    smoe_op_params p = {.rms_norm = {.eps = eps}};
    smoe_tensor *srcs[] = {x, weight};
    return finish(g, SMOE_OP_RMS_NORM, SMOE_TYPE_F32, x->n_dims, x->ne, srcs, &p, out);
}

smoe_status smoe_mul_mat(smoe_graph *g, smoe_tensor *w, smoe_tensor *x, smoe_tensor **out) {
    BEGIN("MUL_MAT");
    SMOE_TRY(check_src(g, op_, "w", w));
    SMOE_TRY(check_src(g, op_, "x", x));
    SMOE_TRY(check_readable(op_, "w", w));
    SMOE_TRY(check_dims(op_, "w", w, 2));
    SMOE_TRY(check_type(op_, "x", x, SMOE_TYPE_F32));
    CHECK(w->ne[0] == x->ne[0], "%s: w (%s) has k = %" PRId64 ", x (%s) has k = %" PRId64, op_, w->name, w->ne[0],
          x->name, x->ne[0]);
    int64_t ne[4] = {w->ne[1], x->ne[1], x->ne[2], x->ne[3]};
    smoe_tensor *srcs[] = {w, x};
    return finish(g, SMOE_OP_MUL_MAT, SMOE_TYPE_F32, max_int(2, x->n_dims), ne, srcs, NULL, out);
}

smoe_status smoe_mul_mat_id(smoe_graph *g, smoe_tensor *w, smoe_tensor *x, smoe_tensor *ids, smoe_tensor **out) {
    BEGIN("MUL_MAT_ID");
    SMOE_TRY(check_src(g, op_, "w", w));
    SMOE_TRY(check_src(g, op_, "x", x));
    SMOE_TRY(check_src(g, op_, "ids", ids));
    SMOE_TRY(check_readable(op_, "w", w));
    SMOE_TRY(check_dims(op_, "w", w, 3));
    SMOE_TRY(check_type(op_, "x", x, SMOE_TYPE_F32));
    SMOE_TRY(check_dims(op_, "x", x, 3));
    SMOE_TRY(check_type(op_, "ids", ids, SMOE_TYPE_I32));
    SMOE_TRY(check_dims(op_, "ids", ids, 2));
    CHECK(w->ne[0] == x->ne[0], "%s: w (%s) has k = %" PRId64 ", x (%s) has k = %" PRId64, op_, w->name, w->ne[0],
          x->name, x->ne[0]);
    const int64_t n_used = ids->ne[0], n_tokens = ids->ne[1];
    CHECK(x->ne[2] == n_tokens, "%s: x (%s) has %" PRId64 " tokens, ids (%s) %" PRId64, op_, x->name, x->ne[2],
          ids->name, n_tokens);
    CHECK(x->ne[1] == 1 || x->ne[1] == n_used, "%s: x (%s) ne[1] = %" PRId64 " must be 1 or n_used = %" PRId64, op_,
          x->name, x->ne[1], n_used);
    CHECK(n_used <= w->ne[2], "%s: n_used %" PRId64 " exceeds n_expert %" PRId64, op_, n_used, w->ne[2]);
    int64_t ne[3] = {w->ne[1], n_used, n_tokens};
    smoe_tensor *srcs[] = {w, x, ids};
    return finish(g, SMOE_OP_MUL_MAT_ID, SMOE_TYPE_F32, 3, ne, srcs, NULL, out);
}

smoe_status smoe_rope(smoe_graph *g, smoe_tensor *x, smoe_tensor *pos, const smoe_op_rope_params *params,
                      smoe_tensor **out) {
    BEGIN("ROPE");
    SMOE_TRY(check_src(g, op_, "x", x));
    SMOE_TRY(check_src(g, op_, "pos", pos));
    CHECK(params != NULL, "%s: params is NULL", op_);
    SMOE_TRY(check_type(op_, "x", x, SMOE_TYPE_F32));
    SMOE_TRY(check_dims(op_, "x", x, 3));
    SMOE_TRY(check_type(op_, "pos", pos, SMOE_TYPE_I32));
    SMOE_TRY(check_dims(op_, "pos", pos, 1));
    CHECK(pos->ne[0] == x->ne[2], "%s: pos (%s) has %" PRId64 " entries, x (%s) has %" PRId64 " tokens", op_,
          pos->name, pos->ne[0], x->name, x->ne[2]);
    CHECK(params->n_rot >= 2 && params->n_rot % 2 == 0 && params->n_rot <= x->ne[0],
          "%s: n_rot %d must be even and in [2, head_dim = %" PRId64 "]", op_, params->n_rot, x->ne[0]);
    CHECK(isfinite(params->theta_base) && params->theta_base > 0.0f, "%s: theta_base %g must be > 0", op_,
          (double)params->theta_base);
    CHECK(isfinite(params->freq_scale) && params->freq_scale > 0.0f, "%s: freq_scale %g must be > 0", op_,
          (double)params->freq_scale);
    smoe_op_params p = {.rope = *params};
    smoe_tensor *srcs[] = {x, pos};
    return finish(g, SMOE_OP_ROPE, SMOE_TYPE_F32, x->n_dims, x->ne, srcs, &p, out);
}

smoe_status smoe_kv_write(smoe_graph *g, smoe_tensor *cache, smoe_tensor *rows, smoe_tensor *cells,
                          smoe_tensor **out) {
    BEGIN("KV_WRITE");
    SMOE_TRY(check_src(g, op_, "cache", cache));
    SMOE_TRY(check_src(g, op_, "rows", rows));
    SMOE_TRY(check_src(g, op_, "cells", cells));
    const smoe_type_traits *tr = smoe_type_get_traits(cache->type);
    CHECK(tr->from_f32 && tr->to_f32, "%s: cache (%s) type %s has no conversion from f32", op_, cache->name,
          tr->name);
    CHECK(smoe_tensor_is_contiguous(cache), "%s: cache (%s) must be contiguous", op_, cache->name);
    SMOE_TRY(check_dims(op_, "cache", cache, 3));
    SMOE_TRY(check_type(op_, "rows", rows, SMOE_TYPE_F32));
    SMOE_TRY(check_dims(op_, "rows", rows, 3));
    SMOE_TRY(check_type(op_, "cells", cells, SMOE_TYPE_I32));
    SMOE_TRY(check_dims(op_, "cells", cells, 1));
    CHECK(rows->ne[0] == cache->ne[0] && rows->ne[1] == cache->ne[1],
          "%s: rows (%s) [%" PRId64 ", %" PRId64 "] do not match cache (%s) [%" PRId64 ", %" PRId64 "]", op_,
          rows->name, rows->ne[0], rows->ne[1], cache->name, cache->ne[0], cache->ne[1]);
    CHECK(cells->ne[0] == rows->ne[2], "%s: cells (%s) has %" PRId64 " entries, rows (%s) %" PRId64 " tokens", op_,
          cells->name, cells->ne[0], rows->name, rows->ne[2]);
    smoe_tensor *t = NULL;
    smoe_tensor *srcs[] = {cache, rows, cells};
    SMOE_TRY(smoe_graph_make_node(g, SMOE_OP_KV_WRITE, cache->type, cache->n_dims, cache->ne, srcs, &t));
    memcpy(t->nb, cache->nb, sizeof(t->nb));
    t->view_src = smoe_tensor_root(cache);
    t->view_offset = cache->view_src ? cache->view_offset : 0;
    SMOE_TRY(smoe_graph_append(g, t));
    *out = t;
    return SMOE_OK;
}

smoe_status smoe_attention(smoe_graph *g, smoe_tensor *q, smoe_tensor *k, smoe_tensor *v, smoe_tensor *q_info,
                           smoe_tensor *cell_info, smoe_tensor *n_scan, float scale, smoe_tensor **out) {
    BEGIN("ATTENTION");
    SMOE_TRY(check_src(g, op_, "q", q));
    SMOE_TRY(check_src(g, op_, "k", k));
    SMOE_TRY(check_src(g, op_, "v", v));
    SMOE_TRY(check_src(g, op_, "q_info", q_info));
    SMOE_TRY(check_src(g, op_, "cell_info", cell_info));
    SMOE_TRY(check_src(g, op_, "n_scan", n_scan));
    SMOE_TRY(check_type(op_, "q", q, SMOE_TYPE_F32));
    SMOE_TRY(check_dims(op_, "q", q, 3));
    SMOE_TRY(check_readable(op_, "k", k));
    SMOE_TRY(check_readable(op_, "v", v));
    SMOE_TRY(check_dims(op_, "k", k, 3));
    SMOE_TRY(check_dims(op_, "v", v, 3));
    SMOE_TRY(check_type(op_, "q_info", q_info, SMOE_TYPE_I32));
    SMOE_TRY(check_type(op_, "cell_info", cell_info, SMOE_TYPE_I32));
    SMOE_TRY(check_type(op_, "n_scan", n_scan, SMOE_TYPE_I32));
    const int64_t head_dim = q->ne[0], n_head = q->ne[1], n_tokens = q->ne[2];
    const int64_t n_head_kv = k->ne[1], n_cells = k->ne[2];
    CHECK(k->ne[0] == head_dim, "%s: k (%s) head_dim %" PRId64 " != q's %" PRId64, op_, k->name, k->ne[0], head_dim);
    CHECK(smoe_tensor_same_shape(k, v), "%s: k (%s) and v (%s) differ in shape", op_, k->name, v->name);
    CHECK(n_head % n_head_kv == 0, "%s: n_head %" PRId64 " is not a multiple of n_head_kv %" PRId64, op_, n_head,
          n_head_kv);
    CHECK(q_info->ne[0] == 2 && q_info->ne[1] == n_tokens && q_info->ne[2] == 1 && q_info->ne[3] == 1,
          "%s: q_info (%s) must be [2, n_tokens = %" PRId64 "]", op_, q_info->name, n_tokens);
    CHECK(cell_info->ne[0] == 2 && cell_info->ne[1] == n_cells && cell_info->ne[2] == 1 && cell_info->ne[3] == 1,
          "%s: cell_info (%s) must be [2, n_cells = %" PRId64 "]", op_, cell_info->name, n_cells);
    CHECK(smoe_tensor_nelements(n_scan) == 1, "%s: n_scan (%s) must have one element", op_, n_scan->name);
    CHECK(isfinite(scale), "%s: scale must be finite", op_);
    smoe_op_params p = {.attention = {.scale = scale}};
    smoe_tensor *srcs[] = {q, k, v, q_info, cell_info, n_scan};
    return finish(g, SMOE_OP_ATTENTION, SMOE_TYPE_F32, 3, q->ne, srcs, &p, out);
}

smoe_status smoe_moe_route(smoe_graph *g, smoe_tensor *logits, int n_used, smoe_tensor **out) {
    BEGIN("MOE_ROUTE");
    SMOE_TRY(check_src(g, op_, "logits", logits));
    SMOE_TRY(check_type(op_, "logits", logits, SMOE_TYPE_F32));
    SMOE_TRY(check_dims(op_, "logits", logits, 2));
    CHECK(n_used >= 1 && n_used <= logits->ne[0], "%s: n_used %d not in [1, n_expert = %" PRId64 "]", op_, n_used,
          logits->ne[0]);
    int64_t ne[2] = {n_used, logits->ne[1]};
    smoe_op_params p = {.moe_route = {.n_used = n_used}};
    smoe_tensor *srcs[] = {logits};
    return finish(g, SMOE_OP_MOE_ROUTE, SMOE_TYPE_I32, 2, ne, srcs, &p, out);
}

smoe_status smoe_moe_combine(smoe_graph *g, smoe_tensor *y, smoe_tensor *logits, smoe_tensor *ids,
                             smoe_tensor **out) {
    BEGIN("MOE_COMBINE");
    SMOE_TRY(check_src(g, op_, "y", y));
    SMOE_TRY(check_src(g, op_, "logits", logits));
    SMOE_TRY(check_src(g, op_, "ids", ids));
    SMOE_TRY(check_type(op_, "y", y, SMOE_TYPE_F32));
    SMOE_TRY(check_dims(op_, "y", y, 3));
    SMOE_TRY(check_type(op_, "logits", logits, SMOE_TYPE_F32));
    SMOE_TRY(check_dims(op_, "logits", logits, 2));
    SMOE_TRY(check_type(op_, "ids", ids, SMOE_TYPE_I32));
    SMOE_TRY(check_dims(op_, "ids", ids, 2));
    const int64_t n_used = ids->ne[0], n_tokens = ids->ne[1];
    CHECK(y->ne[1] == n_used && y->ne[2] == n_tokens,
          "%s: y (%s) must be [n_embd, n_used = %" PRId64 ", n_tokens = %" PRId64 "]", op_, y->name, n_used, n_tokens);
    CHECK(logits->ne[1] == n_tokens, "%s: logits (%s) has %" PRId64 " tokens, ids %" PRId64, op_, logits->name,
          logits->ne[1], n_tokens);
    CHECK(n_used <= logits->ne[0], "%s: n_used %" PRId64 " exceeds n_expert %" PRId64, op_, n_used, logits->ne[0]);
    int64_t ne[2] = {y->ne[0], n_tokens};
    smoe_tensor *srcs[] = {y, logits, ids};
    return finish(g, SMOE_OP_MOE_COMBINE, SMOE_TYPE_F32, 2, ne, srcs, NULL, out);
}

smoe_status smoe_swiglu(smoe_graph *g, smoe_tensor *gate, smoe_tensor *up, smoe_tensor **out) {
    BEGIN("SWIGLU");
    SMOE_TRY(check_src(g, op_, "gate", gate));
    SMOE_TRY(check_src(g, op_, "up", up));
    SMOE_TRY(check_type(op_, "gate", gate, SMOE_TYPE_F32));
    SMOE_TRY(check_type(op_, "up", up, SMOE_TYPE_F32));
    CHECK(smoe_tensor_same_shape(gate, up), "%s: gate (%s) and up (%s) differ in shape", op_, gate->name, up->name);
    smoe_tensor *srcs[] = {gate, up};
    return finish(g, SMOE_OP_SWIGLU, SMOE_TYPE_F32, gate->n_dims, gate->ne, srcs, NULL, out);
}

static smoe_status binary(smoe_graph *g, smoe_op op, smoe_tensor *a, smoe_tensor *b, smoe_tensor **out) {
    const char *op_ = smoe_op_name(op);
    SMOE_TRY(check_src(g, op_, "a", a));
    SMOE_TRY(check_src(g, op_, "b", b));
    SMOE_TRY(check_type(op_, "a", a, SMOE_TYPE_F32));
    SMOE_TRY(check_type(op_, "b", b, SMOE_TYPE_F32));
    for (int i = 0; i < SMOE_MAX_DIMS; i++)
        CHECK(b->ne[i] == a->ne[i] || b->ne[i] == 1,
              "%s: b (%s) ne[%d] = %" PRId64 " must be 1 or a's %" PRId64 " (%s)", op_, b->name, i, b->ne[i],
              a->ne[i], a->name);
    smoe_tensor *srcs[] = {a, b};
    return finish(g, op, SMOE_TYPE_F32, a->n_dims, a->ne, srcs, NULL, out);
}

smoe_status smoe_add(smoe_graph *g, smoe_tensor *a, smoe_tensor *b, smoe_tensor **out) {
    BEGIN("ADD");
    return binary(g, SMOE_OP_ADD, a, b, out);
}

smoe_status smoe_mul(smoe_graph *g, smoe_tensor *a, smoe_tensor *b, smoe_tensor **out) {
    BEGIN("MUL");
    return binary(g, SMOE_OP_MUL, a, b, out);
}

smoe_status smoe_scale(smoe_graph *g, smoe_tensor *a, float s, smoe_tensor **out) {
    BEGIN("SCALE");
    SMOE_TRY(check_src(g, op_, "a", a));
    SMOE_TRY(check_type(op_, "a", a, SMOE_TYPE_F32));
    CHECK(isfinite(s), "%s: s must be finite", op_);
    smoe_op_params p = {.scale = {.s = s}};
    smoe_tensor *srcs[] = {a};
    return finish(g, SMOE_OP_SCALE, SMOE_TYPE_F32, a->n_dims, a->ne, srcs, &p, out);
}

smoe_status smoe_cpy(smoe_graph *g, smoe_tensor *a, smoe_type type, smoe_tensor **out) {
    BEGIN("CPY");
    SMOE_TRY(check_src(g, op_, "a", a));
    SMOE_TRY(check_readable(op_, "a", a));
    const smoe_type_traits *tr = smoe_type_get_traits(type);
    CHECK(tr && tr->from_f32, "%s: type %s has no conversion from f32", op_, smoe_type_name(type));
    CHECK(a->ne[0] % tr->block_size == 0, "%s: ne[0] = %" PRId64 " is not a multiple of the %s block size", op_,
          a->ne[0], tr->name);
    smoe_op_params p = {.cpy = {.type = type}};
    smoe_tensor *srcs[] = {a};
    return finish(g, SMOE_OP_CPY, type, a->n_dims, a->ne, srcs, &p, out);
}
