/*
 * fake-cuda.h - the CPU stand-in for the CUDA runtime and the kernels' launchers (tests only; see fake-cudart.c and
 * fake-launch.c): what the two halves share.
 */
#ifndef SMOE_FAKE_CUDA_H
#define SMOE_FAKE_CUDA_H

#include "backends/cuda/cuda-kernels.h"

#include <cuda_runtime_api.h>

/* a kernel launch as the stream keeps it: the node by value (kernel arguments are copied at launch) */
typedef struct fake_cuda_launch {
    int            op; /* smoe_op */
    smoe_cuda_node node;
    int           *err; /* the device error word */
    /* tests/cuda-emu: the emulated launcher that runs it (the real kernels on the CPU); NULL: the CPU backend's op */
    int (*run)(const smoe_cuda_node *n, void *stream, int *err);
} fake_cuda_launch;

/* queues a launch on `stream` (or adds it to the graph being captured) */
cudaError_t fake_cuda_enqueue_launch(void *stream, const fake_cuda_launch *l);
/* runs a launch on the CPU (fake-launch.c, or tests/cuda-emu/emu-launch.c): 0, or nonzero for a failed launch */
int fake_cuda_run_launch(const fake_cuda_launch *l);
/* what every launch relies on (fake-check.c): each tensor the node touches lies in device memory, and the scratch
 * the fast kernels index is there and large enough; 1 if so, else 0 with a message on stderr */
int fake_cuda_check_node(const smoe_cuda_node *n);
struct smoe_tensor;
/* the node's tensor as a core tensor over the same memory (fake-check.c) */
void fake_cuda_to_tensor(const smoe_cuda_tensor *d, struct smoe_tensor *t);
/* whether [p, p + size) lies in one cudaMalloc block */
int fake_cuda_is_device(const void *p, size_t size);
/* launches run so far (graph replays included) */
int fake_cuda_launches_run(void);
/* cudaGraphLaunch calls so far */
int fake_cuda_graph_launches(void);
/* launches checked so far that wrote int8 GEMV columns for a later launch (smoe_cuda_node.q8_out) */
int fake_cuda_q8_out_launches(void);
/* launches checked so far that also did the products of the launches after them (smoe_cuda_node.n_more) */
int fake_cuda_grouped_launches(void);
/* launches checked so far that also did the residual ADD after them (smoe_cuda_node.add) */
int fake_cuda_added_launches(void);
/* launches checked so far of a ROPE that also did the KV_WRITEs after it (smoe_cuda_node.kv_write) */
int fake_cuda_kv_launches(void);
/* launches checked so far of a router MUL_MAT that also did the MOE_ROUTE after it (smoe_cuda_node.route_n_used) */
int fake_cuda_route_launches(void);
/* launches checked so far of an ATTENTION that also did the ROPE of its q (smoe_cuda_node.rope_q) */
int fake_cuda_rope_q_launches(void);
/* launches checked so far with programmatic stream serialization (smoe_cuda_node.pdl, SMOE_CUDA_PDL=1) */
int fake_cuda_pdl_launches(void);

#endif
