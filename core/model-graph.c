/*
 * model-graph.c - the Mixtral forward pass as a graph, for one batch shape (n_tokens, n_outputs).
 *
 *   x = token_embd[tokens]                                            [n_embd, n]
 *   per layer:
 *     h = rms_norm(x) * attn_norm
 *     q, k, v = wq h, wk h, wv h  -> [head_dim, heads, n]; q, k = rope(q, k, pos) (llama.cpp "normal" mode: GGUF's
 *                                    Q/K rows are permuted for it)
 *     cache_k[cells] = k; cache_v[cells] = v                            (KV_WRITE, in place)
 *     a = attention(q, cache_k, cache_v, q_info, cell_info, n_scan), scale 1/sqrt(head_dim)
 *     x = x + wo a
 *     h = rms_norm(x) * ffn_norm; r = router h                           [n_expert, n]
 *     ids = top-k(r); x = x + sum_s softmax(r[ids])_s * w2_s (silu(w1_s h) * (w3_s h))
 *   logits = output (rms_norm(x) * output_norm)                          [n_vocab, n_outputs]
 *
 * Only the rows whose logits are wanted go through lm_head: the last layer selects them (GET_ROWS by out_ids) right
 * after attention, so its output projection and FFN also run on those rows only (a prefill asking for the last
 * position computes one row). With n_outputs == 0 the last layer stops after writing its K/V.
 */
#include "model.h"

#include <math.h>
#include <string.h>

void smoe_fwd_graph_free(smoe_fwd_graph *fg) {
    if (!fg) return;
    smoe_graph_free(fg->graph);
    memset(fg, 0, sizeof(*fg));
}

static smoe_status input(smoe_graph *g, int n_dims, int64_t ne0, int64_t ne1, const char *name, smoe_tensor **out) {
    const int64_t ne[2] = {ne0, ne1};
    SMOE_TRY(smoe_graph_new_tensor(g, SMOE_TYPE_I32, n_dims, ne, out));
    smoe_tensor_set_name(*out, name);
    return SMOE_OK;
}

static smoe_status build(const smoe_model *m, const smoe_kv_cache *kv, smoe_fwd_graph *fg) {
    const smoe_hparams *hp = &m->hp;
    const int64_t       n = fg->n_tokens, n_out = fg->n_outputs;
    const int64_t       n_embd = hp->n_embd, hd = hp->head_dim;
    smoe_graph         *g = NULL;
    SMOE_TRY(smoe_graph_init(&g));
    fg->graph = g;

    SMOE_TRY(input(g, 1, n, 1, "inp_tokens", &fg->tokens));
    SMOE_TRY(input(g, 1, n, 1, "inp_pos", &fg->pos));
    SMOE_TRY(input(g, 1, n, 1, "inp_cells", &fg->cells));
    SMOE_TRY(input(g, 2, 2, n, "inp_q_info", &fg->q_info));
    SMOE_TRY(input(g, 2, 2, kv->n_ctx, "inp_cell_info", &fg->cell_info));
    SMOE_TRY(input(g, 1, 1, 1, "inp_n_scan", &fg->n_scan));
    if (n_out > 0 && n_out < n) SMOE_TRY(input(g, 1, n_out, 1, "inp_out_ids", &fg->out_ids));

    const smoe_op_rope_params rope = {
        .n_rot = hp->n_rot, .theta_base = hp->rope_theta, .freq_scale = hp->rope_freq_scale};
    const float kq_scale = 1.0f / sqrtf((float)hd);

    smoe_tensor *x = NULL, *t = NULL;
    SMOE_TRY(smoe_get_rows(g, m->tok_embd, fg->tokens, &x));
    smoe_tensor_set_name(x, "embd");

    for (int il = 0; il < hp->n_layer; il++) {
        const smoe_layer *l = &m->layers[il];
        const bool        last = il == hp->n_layer - 1;
        int64_t           nr = n; /* rows from here on */

        /* attention */
        smoe_tensor *h = NULL, *q = NULL, *k = NULL, *v = NULL;
        SMOE_TRY(smoe_rms_norm(g, x, l->attn_norm, hp->rms_eps, &h));
        smoe_tensor_format_name(h, "attn_norm-%d", il);
        /* the three projections of h one after another: a device backend can share work between consecutive
         * products of the same input (CUDA quantizes h once for the three); the last layer needs no q when no
         * logits are wanted */
        const bool need_q = !(last && n_out == 0);
        SMOE_TRY(smoe_mul_mat(g, l->wk, h, &t));
        SMOE_TRY(smoe_reshape(g, t, 3, (const int64_t[]){hd, hp->n_head_kv, n}, &k));
        SMOE_TRY(smoe_mul_mat(g, l->wv, h, &t));
        SMOE_TRY(smoe_reshape(g, t, 3, (const int64_t[]){hd, hp->n_head_kv, n}, &v));
        if (need_q) {
            SMOE_TRY(smoe_mul_mat(g, l->wq, h, &t));
            SMOE_TRY(smoe_reshape(g, t, 3, (const int64_t[]){hd, hp->n_head, n}, &q));
        }
        SMOE_TRY(smoe_rope(g, k, fg->pos, &rope, &k));
        smoe_tensor_format_name(k, "k-%d", il);

        smoe_tensor *kc = NULL, *vc = NULL;
        SMOE_TRY(smoe_kv_write(g, kv->k[il], k, fg->cells, &kc));
        SMOE_TRY(smoe_kv_write(g, kv->v[il], v, fg->cells, &vc));
        if (!need_q) break; /* nothing reads the last layer's output */

        SMOE_TRY(smoe_rope(g, q, fg->pos, &rope, &q));
        smoe_tensor_format_name(q, "q-%d", il);

        smoe_tensor *a = NULL;
        SMOE_TRY(smoe_attention(g, q, kc, vc, fg->q_info, fg->cell_info, fg->n_scan, kq_scale, &a));
        smoe_tensor_format_name(a, "attn-%d", il);
        SMOE_TRY(smoe_reshape(g, a, 2, (const int64_t[]){hd * hp->n_head, n}, &a));
        if (last && fg->out_ids) {
            /* from here on only the rows whose logits are wanted */
            SMOE_TRY(smoe_get_rows(g, a, fg->out_ids, &a));
            SMOE_TRY(smoe_get_rows(g, x, fg->out_ids, &x));
            nr = n_out;
        }
        SMOE_TRY(smoe_mul_mat(g, l->wo, a, &t));
        SMOE_TRY(smoe_add(g, x, t, &x));
        smoe_tensor_format_name(x, "attn_out-%d", il);

        /* mixture of experts */
        smoe_tensor *router = NULL, *ids = NULL, *h3 = NULL, *gate = NULL, *up = NULL, *y = NULL;
        SMOE_TRY(smoe_rms_norm(g, x, l->ffn_norm, hp->rms_eps, &h));
        smoe_tensor_format_name(h, "ffn_norm-%d", il);
        SMOE_TRY(smoe_mul_mat(g, l->ffn_gate_inp, h, &router)); /* [n_expert, nr] */
        smoe_tensor_format_name(router, "router-%d", il);
        SMOE_TRY(smoe_moe_route(g, router, hp->n_expert_used, &ids)); /* [n_used, nr] */
        SMOE_TRY(smoe_reshape(g, h, 3, (const int64_t[]){n_embd, 1, nr}, &h3));
        SMOE_TRY(smoe_mul_mat_id(g, l->ffn_gate_exps, h3, ids, &gate)); /* [n_ff, n_used, nr] */
        SMOE_TRY(smoe_mul_mat_id(g, l->ffn_up_exps, h3, ids, &up));
        SMOE_TRY(smoe_swiglu(g, gate, up, &t));
        SMOE_TRY(smoe_mul_mat_id(g, l->ffn_down_exps, t, ids, &y)); /* [n_embd, n_used, nr] */
        SMOE_TRY(smoe_moe_combine(g, y, router, ids, &t));              /* [n_embd, nr] */
        SMOE_TRY(smoe_add(g, x, t, &x));
        smoe_tensor_format_name(x, "l_out-%d", il);
    }

    if (n_out > 0) {
        SMOE_TRY(smoe_rms_norm(g, x, m->output_norm, hp->rms_eps, &t));
        smoe_tensor_set_name(t, "result_norm");
        SMOE_TRY(smoe_mul_mat(g, m->output, t, &fg->logits)); /* [n_vocab, n_out] */
        smoe_tensor_set_name(fg->logits, "logits");
        smoe_graph_set_output(fg->logits);
    }
    return SMOE_OK;
}

smoe_status smoe_fwd_graph_build(const smoe_model *m, const smoe_kv_cache *kv, int32_t n_tokens, int32_t n_outputs,
                                 smoe_fwd_graph *out) {
    SMOE_RETURN_IF(!m || !kv || !out, SMOE_ERR_INVALID_ARGUMENT, "forward graph: NULL argument");
    memset(out, 0, sizeof(*out));
    SMOE_RETURN_IF(n_tokens < 1 || n_outputs < 0 || n_outputs > n_tokens, SMOE_ERR_INVALID_ARGUMENT,
                   "forward graph: bad shape (%d tokens, %d outputs)", (int)n_tokens, (int)n_outputs);
    SMOE_RETURN_IF(kv->n_layer != m->hp.n_layer, SMOE_ERR_INVALID_ARGUMENT,
                   "forward graph: the KV cache has %d layers, the model %d", (int)kv->n_layer, m->hp.n_layer);
    out->n_tokens = n_tokens;
    out->n_outputs = n_outputs;
    smoe_status st = build(m, kv, out);
    if (st != SMOE_OK) {
        smoe_error_prefix("building the forward graph (%d tokens, %d outputs)", (int)n_tokens, (int)n_outputs);
        smoe_fwd_graph_free(out);
    }
    return st;
}
