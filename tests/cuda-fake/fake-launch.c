/*
 * fake-launch.c - the kernels' launchers of backends/cuda/cuda-kernels.h for the fake CUDA runtime (tests only):
 * each queues its node on the stream like a kernel launch; when the stream runs it, the node is rebuilt as a graph
 * node over the same memory and computed by the CPU backend. So the CUDA backend's host side can run whole models
 * and the op harness without a GPU; what it tests is the host side (the kernels themselves are the CPU's).
 *
 * Each launch also checks what a kernel would rely on: every tensor it touches lies inside device memory (not host
 * memory the scheduler forgot to copy), the scratch memory the fast kernels use is there and large enough, and ids
 * out of range go to the device error word (node index + 1) as the kernels' report_error does.
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

static void to_tensor(const smoe_cuda_tensor *d, smoe_tensor *t) {
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

static int on_device(const smoe_tensor *t, const char *what, const smoe_cuda_node *n) {
    if (fake_cuda_is_device(t->data, smoe_tensor_nbytes(t))) return 1;
    fprintf(stderr, "fake cuda: %s op %d (node %d): %s is not in device memory\n", smoe_op_name((smoe_op)n->op),
            n->op, n->node_index, what);
    return 0;
}

int fake_cuda_run_launch(const fake_cuda_launch *l) {
    const smoe_cuda_node *n = &l->node;
    if (!cpu) {
        smoe_cpu_params p = smoe_cpu_default_params();
        p.n_threads = 1;
        if (smoe_cpu_backend_init(&p, &cpu) != SMOE_OK) return 1;
        atexit(free_cpu);
    }
    smoe_tensor src[6], dst;
    to_tensor(&n->dst, &dst);
    dst.op = (smoe_op)n->op;
    const int n_src = smoe_op_n_src(dst.op);
    if (!on_device(&dst, "the result", n)) return 1;
    for (int i = 0; i < n_src; i++) {
        to_tensor(&n->src[i], &src[i]);
        dst.src[i] = &src[i];
        char what[16];
        snprintf(what, sizeof(what), "src[%d]", i);
        if (!on_device(&src[i], what, n)) return 1;
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
    /* the scratch the fast kernels index (split attention's partial results, MUL_MAT_ID's per-expert lists) */
    size_t scratch = 0;
    if (!n->simple && dst.op == SMOE_OP_ATTENTION)
        scratch = smoe_cuda_attention_scratch(n->src[0].ne[1] * n->src[0].ne[2], n->src[0].ne[0], n->i[2]);
    if (dst.op == SMOE_OP_MUL_MAT_ID && smoe_cuda_mm_path_of(n, 1) == SMOE_CUDA_MM_MMQ)
        scratch = smoe_cuda_mul_mat_id_scratch(n->src[0].ne[2], n->src[2].ne[0] * n->src[2].ne[1]);
    if (scratch && !fake_cuda_is_device(n->scratch, scratch)) {
        fprintf(stderr, "fake cuda: %s (node %d): scratch of %zu bytes missing or too small\n", smoe_op_name(dst.op),
                n->node_index, scratch);
        return 1;
    }
    smoe_tensor *node = &dst;
    const smoe_split split = {.backend = cpu, .nodes = &node, .n_nodes = 1};
    const smoe_status st = cpu->iface.compute(cpu, &split);
    if (st == SMOE_ERR_INVALID_ARGUMENT) { /* an id out of range: the kernels report it in the error word */
        if (*l->err == 0) *l->err = n->node_index + 1;
        return 0;
    }
    if (st != SMOE_OK) fprintf(stderr, "fake cuda: %s: %s\n", smoe_op_name(dst.op), smoe_last_error());
    return st == SMOE_OK ? 0 : 1;
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
