/*
 * graph-test-util.h - helpers shared by test-graph.c and test-ops.c: a seeded RNG, filling tensors of any type from
 * f32 values, and running a graph on a list of backends (alloc, set inputs, compute, read outputs).
 */
#ifndef SMOE_GRAPH_TEST_UTIL_H
#define SMOE_GRAPH_TEST_UTIL_H

#include "core/backend.h"
#include "core/graph.h"
#include "core/sched.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct gt_rng {
    uint64_t s;
} gt_rng;

static inline uint64_t gt_rng_next(gt_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* uniform in [0, 1) */
static inline double gt_rng_uniform(gt_rng *r) { return (double)(gt_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }
/* uniform in [lo, hi) */
static inline float gt_rng_range(gt_rng *r, double lo, double hi) { return (float)(lo + (hi - lo) * gt_rng_uniform(r)); }
static inline int gt_rng_int(gt_rng *r, int n) { return (int)(gt_rng_next(r) % (uint64_t)n); }

static inline void gt_fill(gt_rng *r, float *x, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = gt_rng_range(r, lo, hi);
}

/* Bytes of a contiguous tensor of `type` with the shape of t. */
static inline size_t gt_bytes(const smoe_tensor *t) { return smoe_tensor_nbytes(t); }

/* Encodes n_rows rows of ne0 f32 values into the tensor's type (host memory, contiguous). Caller frees. */
static inline void *gt_encode(smoe_type type, const float *x, int64_t ne0, int64_t n_rows) {
    const smoe_type_traits *tr = smoe_type_get_traits(type);
    size_t row = smoe_row_size(type, ne0);
    uint8_t *out = malloc(row * (size_t)n_rows + 1);
    for (int64_t r = 0; r < n_rows; r++) tr->from_f32(x + r * ne0, out + (size_t)r * row, ne0);
    return out;
}

/* Decodes (to_f32) host data of a contiguous tensor of `type`. */
static inline void gt_decode(smoe_type type, const void *data, float *x, int64_t ne0, int64_t n_rows) {
    const smoe_type_traits *tr = smoe_type_get_traits(type);
    size_t row = smoe_row_size(type, ne0);
    for (int64_t r = 0; r < n_rows; r++) tr->to_f32((const uint8_t *)data + (size_t)r * row, x + r * ne0, ne0);
}

typedef struct gt_input {
    smoe_tensor *t;
    const void  *data; /* smoe_tensor_nbytes(t) bytes */
} gt_input;

typedef struct gt_output {
    smoe_tensor *t;
    void        *data; /* receives smoe_tensor_nbytes(t) bytes */
} gt_output;

/* Runs g on a fresh scheduler over `backends`: alloc, set inputs, compute `runs` times, get outputs.
 * stats (optional) receives the plan's figures. Returns the first failing status. */
static inline smoe_status gt_run(smoe_backend *const *backends, int n_backends, smoe_graph *g, const gt_input *in,
                                 int n_in, const gt_output *out, int n_out, int runs, smoe_sched_stats *stats) {
    smoe_sched *s = NULL;
    smoe_status st = smoe_sched_init(backends, n_backends, &s);
    if (st != SMOE_OK) return st;
    st = smoe_sched_alloc_graph(s, g);
    for (int i = 0; st == SMOE_OK && i < n_in; i++) st = smoe_tensor_set(in[i].t, in[i].data, 0, smoe_tensor_nbytes(in[i].t));
    for (int r = 0; st == SMOE_OK && r < runs; r++) st = smoe_sched_compute(s, g);
    for (int i = 0; st == SMOE_OK && i < n_out; i++) st = smoe_tensor_get(out[i].t, out[i].data, 0, smoe_tensor_nbytes(out[i].t));
    if (st == SMOE_OK && stats) st = smoe_sched_get_stats(s, g, stats);
    smoe_sched_free(s);
    return st;
}

#endif /* SMOE_GRAPH_TEST_UTIL_H */
