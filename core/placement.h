/*
 * placement.h - which model weights go in GPU memory when they do not all fit (consumer GPUs), a pure function of
 * the tensor list and a byte budget (no device calls; tested on the CPU).
 *
 * Units are placed whole, in this priority order (first fit: a unit that does not fit is skipped and later, smaller
 * units may still be placed):
 *   1. norms (every layer's attn_norm / ffn_norm, then output_norm), one unit per tensor
 *   2. routers (blk.N.ffn_gate_inp), one unit per tensor
 *   3. attention, one unit per layer (attn_q, attn_k, attn_v, attn_output of that layer)
 *   4. lm_head (output.weight)
 *   5. experts, one unit per layer: every FFN/expert tensor of the layer (ffn_{gate,up,down}_exps, or the
 *      per-expert ffn_{gate,up,down}.E, or a dense ffn_{gate,up,down}), layers in ascending order, so the first
 *      layers' experts run on the GPU and the rest on the CPU
 *   6. other tensors, one unit each
 * token_embd never goes to the GPU: GET_ROWS reads n_embd numbers per token from it in host memory, which is
 * cheaper than holding the table (a decode step moves only the picked rows).
 *
 * `budget` is the memory for weights only: the caller subtracts the KV cache, the scheduler's activation arenas and
 * a safety margin first. Every tensor takes its size rounded up to `alignment` (the device's buffer alignment).
 */
#ifndef SMOE_PLACEMENT_H
#define SMOE_PLACEMENT_H

#include "status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum smoe_place_class {
    SMOE_PLACE_NORM = 0,
    SMOE_PLACE_ROUTER,
    SMOE_PLACE_ATTENTION,
    SMOE_PLACE_OUTPUT,
    SMOE_PLACE_FFN,   /* experts (or a dense FFN) */
    SMOE_PLACE_OTHER,
    SMOE_PLACE_EMBD,  /* token_embd: host memory */
    SMOE_PLACE_CLASS_COUNT
} smoe_place_class;

typedef struct smoe_place_tensor {
    const char *name;  /* GGUF name: "blk.3.ffn_up_exps.weight" */
    uint64_t    nbytes;
} smoe_place_tensor;

typedef struct smoe_place_stats {
    uint64_t gpu_bytes;            /* aligned bytes placed on the GPU */
    uint64_t host_bytes;           /* unaligned bytes left in host memory */
    uint64_t total_bytes;          /* aligned bytes of every tensor: what holding all of them takes */
    int      n_gpu, n_host;        /* tensors */
    int      n_layers;             /* 1 + the largest block index seen (0 if none) */
    int      n_ffn_layers_gpu;     /* layers whose FFN/expert unit is on the GPU */
    bool     dense_complete;       /* every norm, router, attention and output tensor is on the GPU */
} smoe_place_stats;

/* The class of a tensor by its GGUF name; *layer = its block index, or -1 outside blocks. */
smoe_place_class smoe_place_classify(const char *name, int *layer);
const char      *smoe_place_class_name(smoe_place_class c);

/* Decides on_gpu[i] for each of the n tensors. alignment: a power of two >= 1. stats may be NULL.
 * SMOE_ERR_INVALID_ARGUMENT for NULL arrays, a NULL name, a bad alignment or more than INT32_MAX tensors.
 * Allocates a scratch array (SMOE_ERR_OUT_OF_MEMORY). */
smoe_status smoe_place_plan(const smoe_place_tensor *tensors, size_t n, uint64_t budget, uint64_t alignment,
                            bool *on_gpu, smoe_place_stats *stats);

/* The public summary (smoe.h's smoe_placement) of a plan for a model of n_layer layers: when every tensor fits the
 * budget (stats->total_bytes <= budget) they all go to the device, token_embd too (split = false), else the plan's
 * stats. */
void smoe_place_summary(const smoe_place_stats *stats, uint64_t budget, int32_t n_layer, smoe_placement *out);

#endif /* SMOE_PLACEMENT_H */
