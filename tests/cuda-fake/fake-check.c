/*
 * fake-check.c - what a kernel launch on the fake CUDA runtime relies on, checked before it runs (tests only): every
 * tensor the node touches lies in device memory (not host memory the scheduler forgot to copy), and the scratch
 * memory the fast kernels index is there and large enough. Shared by fake-launch.c (the CPU backend's ops) and
 * tests/cuda-emu/emu-launch.c (the real kernels, emulated).
 */
#include "fake-cuda.h"

#include "core/ops.h"
#include "core/tensor.h"

#include <stdio.h>
#include <string.h>

void fake_cuda_to_tensor(const smoe_cuda_tensor *d, smoe_tensor *t) {
    memset(t, 0, sizeof(*t));
    t->type = (smoe_type)d->type;
    t->n_dims = 4;
    for (int i = 0; i < 4; i++) {
        t->ne[i] = d->ne[i];
        t->nb[i] = (size_t)d->nb[i];
    }
    t->data = d->data;
    t->index = -1;
    t->backend_id = -1;
    snprintf(t->name, sizeof(t->name), "fake-cuda");
}

static int on_device(const smoe_cuda_tensor *d, const char *what, const smoe_cuda_node *n) {
    smoe_tensor t;
    fake_cuda_to_tensor(d, &t);
    if (fake_cuda_is_device(t.data, smoe_tensor_nbytes(&t))) return 1;
    fprintf(stderr, "fake cuda: %s op %d (node %d): %s is not in device memory\n", smoe_op_name((smoe_op)n->op),
            n->op, n->node_index, what);
    return 0;
}

static int g_q8_out, g_grouped, g_added, g_kv, g_route, g_rope_q, g_pdl;
int        fake_cuda_q8_out_launches(void) { return g_q8_out; }
int        fake_cuda_grouped_launches(void) { return g_grouped; }
int        fake_cuda_added_launches(void) { return g_added; }
int        fake_cuda_kv_launches(void) { return g_kv; }
int        fake_cuda_route_launches(void) { return g_route; }
int        fake_cuda_rope_q_launches(void) { return g_rope_q; }
int        fake_cuda_pdl_launches(void) { return g_pdl; }

static int64_t elements_of(const int64_t *ne) { return ne[0] * ne[1] * ne[2] * ne[3]; }

int fake_cuda_check_node(const smoe_cuda_node *n) {
    if (!on_device(&n->dst, "the result", n)) return 0;
    if (n->pdl != 0 && (n->pdl != 1 || n->cc < SMOE_CC_HOPPER)) { /* programmatic dependent launch: Hopper on */
        fprintf(stderr, "fake cuda: %s (node %d): pdl %d on compute capability %d\n", smoe_op_name((smoe_op)n->op),
                n->node_index, n->pdl, n->cc);
        return 0;
    }
    g_pdl += n->pdl;
    const int n_src = smoe_op_n_src((smoe_op)n->op);
    for (int i = 0; i < n_src; i++) {
        char what[16];
        snprintf(what, sizeof(what), "src[%d]", i);
        if (!on_device(&n->src[i], what, n)) return 0;
    }
    size_t scratch = 0;
    if (!n->simple && n->op == SMOE_OP_ATTENTION)
        scratch = smoe_cuda_attention_scratch(n->src[0].ne[1] * n->src[0].ne[2], n->src[0].ne[0], n->i[2]);
    if (n->op == SMOE_OP_MUL_MAT || n->op == SMOE_OP_MUL_MAT_ID) { /* 0 for the reference kernels */
        const int is_id = n->op == SMOE_OP_MUL_MAT_ID;
        if (smoe_cuda_mm_path_of(n, is_id) == SMOE_CUDA_MM_MMQ) scratch = smoe_cuda_mmq_scratch(n, is_id);
        const size_t q8 = smoe_cuda_gemvq_scratch(n, is_id);
        scratch = q8 > scratch ? q8 : scratch;
    }
    if (n->n_more) { /* an int8 GEMV doing the products of the launches after it: same k, type, columns */
        if ((n->op != SMOE_OP_MUL_MAT && n->op != SMOE_OP_MUL_MAT_ID) || n->n_more < 0 || n->n_more > 2) {
            fprintf(stderr, "fake cuda: %s (node %d): n_more %d\n", smoe_op_name((smoe_op)n->op), n->node_index,
                    n->n_more);
            return 0;
        }
        for (int i = 0; i < n->n_more; i++)
            if (!on_device(&n->more_w[i], "more_w", n) || !on_device(&n->more_dst[i], "more_dst", n) ||
                n->more_w[i].type != n->src[0].type || n->more_w[i].ne[0] != n->src[0].ne[0]) {
                fprintf(stderr, "fake cuda: %s (node %d): product %d of the group does not fit\n",
                        smoe_op_name((smoe_op)n->op), n->node_index, i + 1);
                return 0;
            }
        g_grouped++;
    }
    if (n->add) { /* a MUL_MAT (the sum not over the residual) or a one-token MOE_COMBINE doing the ADD after it */
        const int mm = n->op == SMOE_OP_MUL_MAT, comb = n->op == SMOE_OP_MOE_COMBINE;
        if ((!mm && !comb) || !on_device(&n->add_r, "the residual", n) || !on_device(&n->add_out, "the sum", n) ||
            memcmp(n->add_r.ne, n->dst.ne, sizeof(n->dst.ne)) != 0 ||
            memcmp(n->add_out.ne, n->dst.ne, sizeof(n->dst.ne)) != 0 ||
            (mm && n->add_out.data != n->add_r.data && smoe_cuda_overlap4(&n->add_out, &n->add_r)) ||
            (comb && (n->src[2].ne[1] != 1 || n->src[2].ne[0] > 4 || smoe_cuda_overlap4(&n->add_out, &n->dst)))) {
            fprintf(stderr, "fake cuda: %s (node %d): the fused ADD does not fit\n", smoe_op_name((smoe_op)n->op),
                    n->node_index);
            return 0;
        }
        g_added++;
    }
    if (n->rope_q && n->op == SMOE_OP_ATTENTION) { /* the ATTENTION doing the ROPE of its q */
        if (!on_device(&n->rope_src, "the ROPE's input", n) || !on_device(&n->rope_pos, "the positions", n) ||
            memcmp(n->rope_src.ne, n->src[0].ne, sizeof(n->src[0].ne)) != 0) {
            fprintf(stderr, "fake cuda: ATTENTION (node %d): the fused ROPE does not fit\n", n->node_index);
            return 0;
        }
        g_rope_q++;
    }
    if (n->route_n_used > 0) { /* the router doing the MOE_ROUTE of its logits */
        const int32_t wt = n->src[0].type;
        if (n->op != SMOE_OP_MUL_MAT || (wt != SMOE_CUDA_F32 && wt != SMOE_CUDA_F16 && wt != SMOE_CUDA_BF16) ||
            n->src[0].ne[1] > 128 || n->route_n_used > n->src[0].ne[1] || !on_device(&n->route_ids, "the ids", n) ||
            n->route_ids.ne[1] != n->dst.ne[1]) {
            fprintf(stderr, "fake cuda: MUL_MAT (node %d): the fused MOE_ROUTE does not fit\n", n->node_index);
            return 0;
        }
        g_route++;
    }
    if (n->kv_write) { /* a ROPE doing the KV_WRITE of its result (and of v's rows) */
        int ok = n->op == SMOE_OP_ROPE && n->kv_write <= 2 && on_device(&n->kv_cache, "the K cache", n) &&
                 on_device(&n->kv_cells, "the cells", n);
        if (ok && n->kv_write == 2)
            ok = on_device(&n->kv2_cache, "the V cache", n) && on_device(&n->kv2_rows, "V's rows", n) &&
                 n->kv2_rows.ne[1] == n->dst.ne[1] && n->kv2_rows.ne[2] == n->dst.ne[2];
        if (!ok) {
            fprintf(stderr, "fake cuda: %s (node %d): the fused KV_WRITE does not fit\n",
                    smoe_op_name((smoe_op)n->op), n->node_index);
            return 0;
        }
        g_kv++;
    }
    if (n->q8_out) { /* an RMS_NORM, SWIGLU or ATTENTION (a token's heads as one row) writing int8 GEMV columns */
        const int     attn = n->op == SMOE_OP_ATTENTION;
        const int64_t row = attn ? n->dst.ne[0] * n->dst.ne[1] : n->dst.ne[0];
        const size_t  q8 = (size_t)(elements_of(n->dst.ne) / row) * smoe_cuda_q8_column_bytes(row);
        if ((n->op != SMOE_OP_RMS_NORM && n->op != SMOE_OP_SWIGLU && !attn) || n->dst.ne[0] % 32 != 0 ||
            !fake_cuda_is_device(n->q8_out, q8)) {
            fprintf(stderr, "fake cuda: %s (node %d): q8_out of %zu bytes not device memory, or not such an op\n",
                    smoe_op_name((smoe_op)n->op), n->node_index, q8);
            return 0;
        }
        g_q8_out++;
    }
    if (scratch && !fake_cuda_is_device(n->scratch, scratch)) {
        fprintf(stderr, "fake cuda: %s (node %d): scratch of %zu bytes missing or too small\n",
                smoe_op_name((smoe_op)n->op), n->node_index, scratch);
        return 0;
    }
    return 1;
}
