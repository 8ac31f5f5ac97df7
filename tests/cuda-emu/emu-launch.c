/*
 * emu-launch.c - the kernels' launchers of backends/cuda/cuda-kernels.h for the fake CUDA runtime with the real
 * kernels (tests only): each launcher queues its node on the stream like a kernel launch (tests/cuda-fake), and when
 * the stream runs it, the emulated launcher compiled from the .cu files of backends/cuda (cu2cc.py, emu.h) enqueues its kernels,
 * which run at once on the CPU emulator. So the op harness, backend-check and the model checks run the CUDA backend
 * whole, kernels included, on a machine without a GPU.
 */
#include "tests/cuda-fake/fake-cuda.h"

#include <stdio.h>

#define SMOE_EMU_LAUNCHER(name)                                                                 \
    int emu_smoe_cuda_##name(const smoe_cuda_node *n, void *stream, int *err);                  \
    int smoe_cuda_##name(const smoe_cuda_node *n, void *stream, int *err) {                     \
        const fake_cuda_launch l = {.op = n->op, .node = *n, .err = err, .run = emu_smoe_cuda_##name}; \
        return (int)fake_cuda_enqueue_launch(stream, &l);                                       \
    }
SMOE_EMU_LAUNCHER(get_rows)
SMOE_EMU_LAUNCHER(mul_mat)
SMOE_EMU_LAUNCHER(mul_mat_id)
SMOE_EMU_LAUNCHER(mmq)
SMOE_EMU_LAUNCHER(mmq_id)
SMOE_EMU_LAUNCHER(cpy)
SMOE_EMU_LAUNCHER(rms_norm)
SMOE_EMU_LAUNCHER(rope)
SMOE_EMU_LAUNCHER(binary)
SMOE_EMU_LAUNCHER(scale)
SMOE_EMU_LAUNCHER(moe_route)
SMOE_EMU_LAUNCHER(moe_combine)
SMOE_EMU_LAUNCHER(kv_write)
SMOE_EMU_LAUNCHER(attention)

int fake_cuda_run_launch(const fake_cuda_launch *l) {
    if (!fake_cuda_check_node(&l->node)) return 1;
    const int e = l->run(&l->node, NULL, l->err);
    if (e != 0) fprintf(stderr, "cuda-emu: launch of op %d (node %d) failed: error %d\n", l->op, l->node.node_index, e);
    return e != 0;
}
