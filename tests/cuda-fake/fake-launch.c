/*
 * fake-launch.c - the kernels' launchers of backends/cuda/cuda-kernels.h for the fake CUDA runtime (tests only):
 * each queues its node on the stream like a kernel launch; when the stream runs it, the node is rebuilt as a graph
 * node over the same memory and computed by the CPU backend. So the CUDA backend's host side can run whole models
 * and the op harness without a GPU; what it tests is the host side (the kernels themselves are the CPU's).
 *
 * Each launch also checks what a kernel would rely on (fake_cuda_check_node: its tensors and scratch in device
 * memory), and ids out of range go to the device error word (node index + 1) as the kernels' report_error does.
 */
#include "fake-cuda.h"

#include "core/backend-impl.h"
#include "core/backend.h"
#include "core/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static smoe_backend *cpu;

static void free_cpu(void) {
    smoe_backend_free(cpu);
    cpu = NULL;
}

/* a launch of `op` doing one part of l's fused work (cuda-kernels.h: n_more, add, kv_write, route_n_used, rope_q):
 * l's node as the launch index `index` would have been, its own fusions cleared */
static fake_cuda_launch part_of(const fake_cuda_launch *l, int op, int index) {
    fake_cuda_launch p = *l;
    p.op = p.node.op = op;
    p.node.node_index = index;
    p.node.n_more = p.node.add = p.node.kv_write = p.node.route_n_used = p.node.rope_q = 0;
    p.node.scratch = NULL;
    p.node.q8_out = NULL;
    return p;
}

int fake_cuda_run_launch(const fake_cuda_launch *l) {
    const smoe_cuda_node *n = &l->node;
    if (!cpu) {
        smoe_cpu_params p = smoe_cpu_default_params();
        p.n_threads = 1;
        if (smoe_cpu_backend_init(&p, &cpu) != SMOE_OK) return 1;
        atexit(free_cpu);
    }
    if (!fake_cuda_check_node(n)) return 1;
    if (n->op == SMOE_OP_ATTENTION && n->rope_q) { /* first the ROPE before it, whose result is q */
        fake_cuda_launch r = part_of(l, SMOE_OP_ROPE, n->node_index - 1);
        r.node.src[0] = n->rope_src;
        r.node.src[1] = n->rope_pos;
        r.node.dst = n->src[0];
        r.node.i[0] = n->i[0];
        r.node.f[0] = n->f[1];
        r.node.f[1] = n->f[2];
        if (fake_cuda_run_launch(&r) != 0) return 1;
    }
    smoe_tensor src[6], dst;
    fake_cuda_to_tensor(&n->dst, &dst);
    dst.op = (smoe_op)n->op;
    for (int i = 0; i < smoe_op_n_src(dst.op); i++) {
        fake_cuda_to_tensor(&n->src[i], &src[i]);
        dst.src[i] = &src[i];
    }
    switch (dst.op) {
    case SMOE_OP_RMS_NORM: dst.params.rms_norm.eps = n->f[0]; break;
    case SMOE_OP_ROPE:
        dst.params.rope.n_rot = n->i[0];
        dst.params.rope.theta_base = n->f[0];
        dst.params.rope.freq_scale = n->f[1];
        break;
    case SMOE_OP_ATTENTION: dst.params.attention.scale = n->f[0]; break;
    case SMOE_OP_SCALE: dst.params.scale.s = n->f[0]; break;
    case SMOE_OP_MOE_ROUTE: dst.params.moe_route.n_used = n->i[0]; break;
    case SMOE_OP_CPY: dst.params.cpy.type = dst.type; break;
    default: break;
    }
    smoe_tensor *node = &dst;
    const smoe_split split = {.backend = cpu, .nodes = &node, .n_nodes = 1};
    const smoe_status st = cpu->iface.compute(cpu, &split);
    if (st == SMOE_ERR_INVALID_ARGUMENT) { /* an id out of range: the kernels report it in the error word */
        if (*l->err == 0) *l->err = n->node_index + 1;
        return 0;
    }
    if (st != SMOE_OK) fprintf(stderr, "fake cuda: %s: %s\n", smoe_op_name(dst.op), smoe_last_error());
    if (st != SMOE_OK) return 1;
    for (int i = 0; i < n->n_more && i < 2; i++) { /* the products of the launches this one does too */
        fake_cuda_launch more = part_of(l, n->op, n->node_index); /* the grouped kernel reports as the first */
        more.node.src[0] = n->more_w[i];
        more.node.dst = n->more_dst[i];
        more.node.scratch = n->scratch;
        if (fake_cuda_run_launch(&more) != 0) return 1;
    }
    for (int i = 0; i < n->kv_write && i < 2; i++) { /* the KV_WRITEs after a ROPE: its result, then v's rows */
        fake_cuda_launch kv = part_of(l, SMOE_OP_KV_WRITE, n->node_index + 1 + i);
        kv.node.src[0] = i == 0 ? n->kv_cache : n->kv2_cache;
        kv.node.src[1] = i == 0 ? n->dst : n->kv2_rows;
        kv.node.src[2] = n->kv_cells;
        kv.node.dst = kv.node.src[0]; /* the CPU's KV_WRITE writes the cache (src[0]) */
        if (fake_cuda_run_launch(&kv) != 0) return 1;
    }
    if (n->route_n_used > 0) { /* the MOE_ROUTE after the router */
        fake_cuda_launch r = part_of(l, SMOE_OP_MOE_ROUTE, n->node_index + 1);
        r.node.src[0] = n->dst;
        r.node.dst = n->route_ids;
        r.node.i[0] = n->route_n_used;
        if (fake_cuda_run_launch(&r) != 0) return 1;
    }
    if (n->add) { /* the residual ADD after it: add_r + the product */
        fake_cuda_launch sum = part_of(l, SMOE_OP_ADD, n->node_index + 1);
        sum.node.src[0] = n->add_r;
        sum.node.src[1] = n->dst;
        sum.node.dst = n->add_out;
        if (fake_cuda_run_launch(&sum) != 0) return 1;
    }
    return 0;
}

static int launch(const smoe_cuda_node *n, void *stream, int *err) {
    const fake_cuda_launch l = {.op = n->op, .node = *n, .err = err};
    return (int)fake_cuda_enqueue_launch(stream, &l);
}

int smoe_cuda_get_rows(const smoe_cuda_node *n, void *stream, int *err) { return launch(n, stream, err); }
int smoe_cuda_mul_mat(const smoe_cuda_node *n, void *stream, int *err) { return launch(n, stream, err); }
int smoe_cuda_mul_mat_id(const smoe_cuda_node *n, void *stream, int *err) { return launch(n, stream, err); }
int smoe_cuda_mmq(const smoe_cuda_node *n, void *stream, int *err) { return launch(n, stream, err); }
int smoe_cuda_mmq_id(const smoe_cuda_node *n, void *stream, int *err) { return launch(n, stream, err); }
int smoe_cuda_cpy(const smoe_cuda_node *n, void *stream, int *err) { return launch(n, stream, err); }
int smoe_cuda_rms_norm(const smoe_cuda_node *n, void *stream, int *err) { return launch(n, stream, err); }
int smoe_cuda_rope(const smoe_cuda_node *n, void *stream, int *err) { return launch(n, stream, err); }
int smoe_cuda_binary(const smoe_cuda_node *n, void *stream, int *err) { return launch(n, stream, err); }
int smoe_cuda_scale(const smoe_cuda_node *n, void *stream, int *err) { return launch(n, stream, err); }
int smoe_cuda_moe_route(const smoe_cuda_node *n, void *stream, int *err) { return launch(n, stream, err); }
int smoe_cuda_moe_combine(const smoe_cuda_node *n, void *stream, int *err) { return launch(n, stream, err); }
int smoe_cuda_kv_write(const smoe_cuda_node *n, void *stream, int *err) { return launch(n, stream, err); }
int smoe_cuda_attention(const smoe_cuda_node *n, void *stream, int *err) { return launch(n, stream, err); }
