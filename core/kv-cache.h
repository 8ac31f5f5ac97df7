/*
 * kv-cache.h - the KV cache of a context: per layer a K and a V tensor [head_dim, n_head_kv, n_ctx] (PERSISTENT,
 * bound to one backend buffer), and per cell its (position, sequence id) on the host.
 *
 * Cells: a token of sequence s at position p occupies one cell; cell_info[2*c] = p, cell_info[2*c+1] = s, or s = -1
 * for an empty cell. Cells are taken lowest index first, so n_scan (highest used cell + 1) stays small; attention
 * looks only at cells [0, n_scan) whose sequence matches the query's and whose position is not after it, so a
 * cell's slot in the cache does not matter and sequences interleave freely.
 *
 * Invariants: `used` = number of non-empty cells; seq_next[s] = 1 + the largest position of s (0 if s has no
 * cell); a new token of s must have position seq_next[s] (positions continue their sequence).
 * Not thread safe (owned by one context).
 */
#ifndef SMOE_KV_CACHE_H
#define SMOE_KV_CACHE_H

#include "backend.h"

#include <stdint.h>

typedef struct smoe_kv_cache {
    uint32_t  n_ctx;     /* cells */
    uint32_t  n_seq_max; /* sequence ids are in [0, n_seq_max) */
    int32_t   n_layer;
    smoe_type type;      /* F16, F32 or Q8_0 */

    smoe_arena   *arena;     /* the K/V tensor structs */
    smoe_buffer **buffers;   /* every layer's K and V: one buffer, or consecutive layers per buffer where the
                                backend limits a buffer's size (props.max_buffer_size, devices) */
    int32_t       n_buffers;
    uint64_t      bytes;     /* in all buffers */
    smoe_tensor **k, **v; /* n_layer each */

    int32_t *cell_info; /* [2 * n_ctx]: (pos, seq) per cell; the ATTENTION op's cell_info layout */
    int32_t *seq_next;  /* [n_seq_max] */
    uint32_t used;
    uint32_t n_scan;
} smoe_kv_cache;

/* Allocates the caches on `backend` (zero-filled) for n_layer layers of n_head_kv heads of head_dim. type F16, F32
 * or Q8_0 (Q8_0 needs head_dim % 32 == 0: SMOE_ERR_INVALID_ARGUMENT otherwise). SMOE_ERR_OUT_OF_MEMORY when the
 * buffer cannot be allocated (the message gives its size). On failure kv is left zeroed. */
smoe_status smoe_kv_cache_init(smoe_kv_cache *kv, smoe_backend *backend, smoe_type type, int32_t n_layer,
                               int32_t n_head_kv, int32_t head_dim, uint32_t n_ctx, uint32_t n_seq_max);
void        smoe_kv_cache_free(smoe_kv_cache *kv); /* zeroes kv; a zeroed kv is a no-op */

static inline uint32_t smoe_kv_cache_n_free(const smoe_kv_cache *kv) { return kv->n_ctx - kv->used; }

/* Picks n free cells (lowest first) into cells[0..n) without changing the cache. SMOE_ERR_CONTEXT_FULL if fewer than
 * n are free. */
smoe_status smoe_kv_cache_find(const smoe_kv_cache *kv, uint32_t n, int32_t *cells);
/* Marks cells[i] as holding position pos[i] of sequence seq[i] (cells from smoe_kv_cache_find; the caller has
 * checked that positions continue their sequences). */
void smoe_kv_cache_commit(smoe_kv_cache *kv, uint32_t n, const int32_t *cells, const int32_t *pos,
                          const int32_t *seq);
/* Empties cells[0..n) again (a failed compute after commit). */
void smoe_kv_cache_release(smoe_kv_cache *kv, uint32_t n, const int32_t *cells);

/* Removes the cells of seq (-1: any) with positions in [p0, p1) (p1 < 0: no upper bound). SMOE_ERR_INVALID_ARGUMENT
 * for seq outside [-1, n_seq_max). */
smoe_status smoe_kv_cache_seq_rm(smoe_kv_cache *kv, int32_t seq, int32_t p0, int32_t p1);
void        smoe_kv_cache_clear(smoe_kv_cache *kv);
/* seq_next[seq], or -1 for an invalid seq. */
int32_t     smoe_kv_cache_seq_pos_next(const smoe_kv_cache *kv, int32_t seq);

#endif /* SMOE_KV_CACHE_H */
