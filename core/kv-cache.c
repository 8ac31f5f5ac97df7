/*
 * kv-cache.c - KV cache cells and tensors (see kv-cache.h).
 *
 * Memory: one buffer holds, layer by layer, K then V, each [head_dim, n_head_kv, n_ctx] of the cache type
 * (Mixtral 8x7B at n_ctx 32768 in F16: 32 layers * 2 * 8 * 128 * 32768 * 2 bytes = 4 GiB); on a backend that caps a
 * buffer's size (a GPU's largest allocation), consecutive layers are grouped into several buffers. They are
 * zero-filled once so that a cell that is scanned but never written (a failed compute) holds finite numbers.
 */
#include "kv-cache.h"

#include <stdlib.h>
#include <string.h>

smoe_status smoe_kv_cache_init(smoe_kv_cache *kv, smoe_backend *backend, smoe_type type, int32_t n_layer,
                               int32_t n_head_kv, int32_t head_dim, uint32_t n_ctx, uint32_t n_seq_max) {
    SMOE_RETURN_IF(!kv || !backend, SMOE_ERR_INVALID_ARGUMENT, "kv cache: NULL argument");
    memset(kv, 0, sizeof(*kv));
    SMOE_RETURN_IF(type != SMOE_TYPE_F16 && type != SMOE_TYPE_F32 && type != SMOE_TYPE_Q8_0,
                   SMOE_ERR_INVALID_ARGUMENT, "kv cache: type %s is not f16, f32 or q8_0", smoe_type_name(type));
    SMOE_RETURN_IF(n_layer < 1 || n_head_kv < 1 || head_dim < 1, SMOE_ERR_INVALID_ARGUMENT,
                   "kv cache: bad shape (%d layers, %d heads of %d)", n_layer, n_head_kv, head_dim);
    SMOE_RETURN_IF(n_ctx < 1 || n_ctx > (1u << 30), SMOE_ERR_INVALID_ARGUMENT, "kv cache: n_ctx %u out of range",
                   n_ctx);
    SMOE_RETURN_IF(n_seq_max < 1 || n_seq_max > n_ctx, SMOE_ERR_INVALID_ARGUMENT,
                   "kv cache: n_seq_max %u must be in [1, n_ctx = %u]", n_seq_max, n_ctx);
    const smoe_type_traits *tr = smoe_type_get_traits(type);
    SMOE_RETURN_IF(!tr || !tr->from_f32 || !tr->to_f32, SMOE_ERR_UNSUPPORTED,
                   "kv cache: type %s has no f32 conversions", smoe_type_name(type));
    SMOE_RETURN_IF(head_dim % tr->block_size != 0, SMOE_ERR_INVALID_ARGUMENT,
                   "kv cache: a %s cache needs head_dim (%d) to be a multiple of %" PRId64, tr->name, head_dim,
                   tr->block_size);

    smoe_status st = SMOE_OK;
    kv->n_ctx = n_ctx;
    kv->n_seq_max = n_seq_max;
    kv->n_layer = n_layer;
    kv->type = type;
    kv->k = calloc((size_t)n_layer, sizeof(*kv->k));
    kv->v = calloc((size_t)n_layer, sizeof(*kv->v));
    kv->cell_info = malloc((size_t)n_ctx * 2 * sizeof(int32_t));
    kv->seq_next = calloc(n_seq_max, sizeof(int32_t));
    SMOE_GOTO_IF(!kv->k || !kv->v || !kv->cell_info || !kv->seq_next, st, fail, SMOE_ERR_OUT_OF_MEMORY,
                 "kv cache: out of memory");
    SMOE_GOTO_TRY(st, fail, smoe_arena_init(0, &kv->arena));

    /* every tensor has the same size; offsets are rounded up to the buffer alignment */
    smoe_backend_props props;
    smoe_backend_get_props(backend, &props);
    const size_t align = props.alignment ? props.alignment : 64;
    const int64_t ne[3] = {head_dim, n_head_kv, n_ctx};
    smoe_tensor *probe = NULL;
    SMOE_GOTO_TRY(st, fail, smoe_tensor_new(kv->arena, type, 3, ne, &probe));
    const size_t   one = (smoe_tensor_nbytes(probe) + align - 1) / align * align;
    uint64_t       total = 0;
    SMOE_GOTO_IF(smoe_mul_overflow_u64(one, 2 * (uint64_t)n_layer, &total) || total > SIZE_MAX / 2, st, fail,
                 SMOE_ERR_OUT_OF_MEMORY, "kv cache: size overflows");
    /* layers per buffer: all of them, unless the backend caps a buffer's size */
    int32_t per_buf = n_layer;
    if (props.max_buffer_size && total > props.max_buffer_size) {
        SMOE_GOTO_IF(2 * (uint64_t)one > props.max_buffer_size, st, fail, SMOE_ERR_OUT_OF_MEMORY,
                     "kv cache: one layer's K and V (%" PRIu64 " MiB, %s, n_ctx %u) exceed the largest buffer of %s "
                     "(%" PRIu64 " MiB): use a smaller n_ctx",
                     (2 * (uint64_t)one) >> 20, tr->name, n_ctx, smoe_backend_name(backend),
                     props.max_buffer_size >> 20);
        per_buf = (int32_t)(props.max_buffer_size / (2 * (uint64_t)one));
    }
    kv->n_buffers = (n_layer + per_buf - 1) / per_buf;
    kv->buffers = calloc((size_t)kv->n_buffers, sizeof(*kv->buffers));
    SMOE_GOTO_IF(!kv->buffers, st, fail, SMOE_ERR_OUT_OF_MEMORY, "kv cache: out of memory");
    for (int32_t b = 0; b < kv->n_buffers; b++) {
        const int32_t n_here = n_layer - b * per_buf < per_buf ? n_layer - b * per_buf : per_buf;
        const size_t size = one * 2 * (size_t)n_here;
        st = smoe_backend_buffer_alloc(backend, size, &kv->buffers[b]);
        if (st != SMOE_OK) {
            smoe_error_prefix("kv cache of %" PRIu64 " MiB (%s, n_ctx %u)", total >> 20, tr->name, n_ctx);
            goto fail;
        }
        SMOE_GOTO_TRY(st, fail, smoe_buffer_clear(kv->buffers[b], 0));
        kv->bytes += size;
    }
    for (int32_t il = 0; il < n_layer; il++) {
        for (int kvi = 0; kvi < 2; kvi++) {
            smoe_tensor *t = NULL;
            SMOE_GOTO_TRY(st, fail, smoe_tensor_new(kv->arena, type, 3, ne, &t));
            smoe_tensor_format_name(t, "cache_%c_l%d", kvi ? 'v' : 'k', (int)il);
            smoe_tensor_set_flags(t, SMOE_TENSOR_PERSISTENT);
            const size_t off = one * (2 * (size_t)(il % per_buf) + (size_t)kvi);
            SMOE_GOTO_TRY(st, fail, smoe_tensor_bind(t, kv->buffers[il / per_buf], off));
            if (kvi) kv->v[il] = t;
            else kv->k[il] = t;
        }
    }
    smoe_kv_cache_clear(kv);
    return SMOE_OK;
fail:
    smoe_kv_cache_free(kv);
    return st;
}

void smoe_kv_cache_free(smoe_kv_cache *kv) {
    if (!kv) return;
    for (int32_t b = 0; b < kv->n_buffers && kv->buffers; b++) smoe_buffer_free(kv->buffers[b]);
    free(kv->buffers);
    smoe_arena_free(kv->arena);
    free(kv->k);
    free(kv->v);
    free(kv->cell_info);
    free(kv->seq_next);
    memset(kv, 0, sizeof(*kv));
}

smoe_status smoe_kv_cache_find(const smoe_kv_cache *kv, uint32_t n, int32_t *cells) {
    SMOE_RETURN_IF(n > smoe_kv_cache_n_free(kv), SMOE_ERR_CONTEXT_FULL,
                   "KV cache full: %u tokens need cells, %u of n_ctx = %u are free", n, smoe_kv_cache_n_free(kv),
                   kv->n_ctx);
    uint32_t k = 0;
    for (uint32_t c = 0; c < kv->n_ctx && k < n; c++)
        if (kv->cell_info[2 * (size_t)c + 1] < 0) cells[k++] = (int32_t)c;
    SMOE_ASSERT(k == n);
    return SMOE_OK;
}

void smoe_kv_cache_commit(smoe_kv_cache *kv, uint32_t n, const int32_t *cells, const int32_t *pos,
                          const int32_t *seq) {
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t c = (uint32_t)cells[i];
        SMOE_ASSERT(c < kv->n_ctx && kv->cell_info[2 * (size_t)c + 1] < 0);
        SMOE_ASSERT(seq[i] >= 0 && (uint32_t)seq[i] < kv->n_seq_max);
        kv->cell_info[2 * (size_t)c] = pos[i];
        kv->cell_info[2 * (size_t)c + 1] = seq[i];
        kv->used++;
        if (c + 1 > kv->n_scan) kv->n_scan = c + 1;
        if (pos[i] + 1 > kv->seq_next[seq[i]]) kv->seq_next[seq[i]] = pos[i] + 1;
    }
}

/* Recomputes used, n_scan and seq_next from cell_info. */
static void recount(smoe_kv_cache *kv) {
    memset(kv->seq_next, 0, kv->n_seq_max * sizeof(int32_t));
    kv->used = 0;
    kv->n_scan = 0;
    for (uint32_t c = 0; c < kv->n_ctx; c++) {
        const int32_t p = kv->cell_info[2 * (size_t)c], s = kv->cell_info[2 * (size_t)c + 1];
        if (s < 0) continue;
        kv->used++;
        kv->n_scan = c + 1;
        if (p + 1 > kv->seq_next[s]) kv->seq_next[s] = p + 1;
    }
}

void smoe_kv_cache_release(smoe_kv_cache *kv, uint32_t n, const int32_t *cells) {
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t c = (uint32_t)cells[i];
        if (c >= kv->n_ctx) continue;
        kv->cell_info[2 * (size_t)c] = -1;
        kv->cell_info[2 * (size_t)c + 1] = -1;
    }
    recount(kv);
}

smoe_status smoe_kv_cache_seq_rm(smoe_kv_cache *kv, int32_t seq, int32_t p0, int32_t p1) {
    SMOE_RETURN_IF(seq < -1 || (seq >= 0 && (uint32_t)seq >= kv->n_seq_max), SMOE_ERR_INVALID_ARGUMENT,
                   "kv seq_rm: sequence id %d not in [-1, n_seq_max = %u)", seq, kv->n_seq_max);
    if (p0 < 0) p0 = 0;
    if (p1 < 0) p1 = INT32_MAX;
    for (uint32_t c = 0; c < kv->n_ctx; c++) {
        const int32_t p = kv->cell_info[2 * (size_t)c], s = kv->cell_info[2 * (size_t)c + 1];
        if (s < 0 || (seq >= 0 && s != seq) || p < p0 || p >= p1) continue;
        kv->cell_info[2 * (size_t)c] = -1;
        kv->cell_info[2 * (size_t)c + 1] = -1;
    }
    recount(kv);
    return SMOE_OK;
}

void smoe_kv_cache_clear(smoe_kv_cache *kv) {
    for (size_t i = 0; i < 2 * (size_t)kv->n_ctx; i++) kv->cell_info[i] = -1;
    recount(kv);
}

int32_t smoe_kv_cache_seq_pos_next(const smoe_kv_cache *kv, int32_t seq) {
    if (seq < 0 || (uint32_t)seq >= kv->n_seq_max) return -1;
    return kv->seq_next[seq];
}
