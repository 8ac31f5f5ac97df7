/*
 * placement.c - the GPU placement plan for weights (see placement.h for the rules).
 */
#include "placement.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *const class_names[SMOE_PLACE_CLASS_COUNT] = {
    [SMOE_PLACE_NORM] = "norm",     [SMOE_PLACE_ROUTER] = "router", [SMOE_PLACE_ATTENTION] = "attention",
    [SMOE_PLACE_OUTPUT] = "output", [SMOE_PLACE_FFN] = "ffn",       [SMOE_PLACE_OTHER] = "other",
    [SMOE_PLACE_EMBD] = "embd",
};

const char *smoe_place_class_name(smoe_place_class c) {
    return (unsigned)c < SMOE_PLACE_CLASS_COUNT ? class_names[c] : "unknown";
}

smoe_place_class smoe_place_classify(const char *name, int *layer) {
    int l = -1;
    const char *rest = name ? name : "";
    if (strncmp(rest, "blk.", 4) == 0 && rest[4] >= '0' && rest[4] <= '9') {
        long v = 0;
        const char *p = rest + 4;
        while (*p >= '0' && *p <= '9' && v <= INT_MAX / 10) v = v * 10 + (*p++ - '0');
        if (*p == '.' && v <= INT_MAX / 10) {
            l = (int)v;
            rest = p + 1;
        }
    }
    if (layer) *layer = l;
    if (strncmp(rest, "token_embd", 10) == 0) return SMOE_PLACE_EMBD;
    if (strstr(rest, "_norm")) return SMOE_PLACE_NORM;
    if (strncmp(rest, "ffn_gate_inp", 12) == 0) return SMOE_PLACE_ROUTER;
    if (l >= 0 && strncmp(rest, "attn_", 5) == 0) return SMOE_PLACE_ATTENTION;
    if (l >= 0 && strncmp(rest, "ffn_", 4) == 0) return SMOE_PLACE_FFN;
    if (l < 0 && strcmp(rest, "output.weight") == 0) return SMOE_PLACE_OUTPUT;
    return SMOE_PLACE_OTHER;
}

/* placement order of the classes (EMBD is never placed) */
static int class_rank(smoe_place_class c) {
    switch (c) {
    case SMOE_PLACE_NORM: return 0;
    case SMOE_PLACE_ROUTER: return 1;
    case SMOE_PLACE_ATTENTION: return 2;
    case SMOE_PLACE_OUTPUT: return 3;
    case SMOE_PLACE_FFN: return 4;
    case SMOE_PLACE_OTHER: return 5;
    default: return 6;
    }
}

typedef struct entry {
    int      rank;
    int      layer; /* -1 -> INT_MAX: tensors outside blocks come after the blocks' */
    int      index;
    bool     per_layer_unit;
} entry;

static int entry_cmp(const void *pa, const void *pb) {
    const entry *a = pa, *b = pb;
    if (a->rank != b->rank) return a->rank < b->rank ? -1 : 1;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    return a->index < b->index ? -1 : (a->index > b->index);
}

static uint64_t add_sat(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

static uint64_t aligned(uint64_t n, uint64_t al) {
    const uint64_t r = n % al;
    return r ? add_sat(n, al - r) : n;
}

smoe_status smoe_place_plan(const smoe_place_tensor *tensors, size_t n, uint64_t budget, uint64_t alignment,
                            bool *on_gpu, smoe_place_stats *stats) {
    SMOE_RETURN_IF(n && (!tensors || !on_gpu), SMOE_ERR_INVALID_ARGUMENT, "placement: NULL tensor or result array");
    SMOE_RETURN_IF(alignment == 0 || (alignment & (alignment - 1)) != 0, SMOE_ERR_INVALID_ARGUMENT,
                   "placement: alignment %llu is not a power of two", (unsigned long long)alignment);
    SMOE_RETURN_IF(n > INT32_MAX, SMOE_ERR_INVALID_ARGUMENT, "placement: %zu tensors is too many", n);
    for (size_t i = 0; i < n; i++)
        SMOE_RETURN_IF(!tensors[i].name, SMOE_ERR_INVALID_ARGUMENT, "placement: tensor %zu has no name", i);
    smoe_place_stats st;
    memset(&st, 0, sizeof(st));
    entry *e = n ? malloc(n * sizeof(*e)) : NULL;
    SMOE_RETURN_IF(n && !e, SMOE_ERR_OUT_OF_MEMORY, "placement: out of memory");
    for (size_t i = 0; i < n; i++) {
        int layer = -1;
        const smoe_place_class c = smoe_place_classify(tensors[i].name, &layer);
        if (layer + 1 > st.n_layers) st.n_layers = layer + 1;
        e[i] = (entry){.rank = class_rank(c), .layer = layer < 0 ? INT_MAX : layer, .index = (int)i,
                       .per_layer_unit = layer >= 0 && (c == SMOE_PLACE_ATTENTION || c == SMOE_PLACE_FFN)};
        on_gpu[i] = false;
    }
    if (n) qsort(e, n, sizeof(*e), entry_cmp);

    uint64_t left = budget;
    for (size_t u0 = 0; u0 < n;) {
        /* a unit: one tensor, or a layer's attention / FFN tensors (adjacent after the sort) */
        size_t u1 = u0 + 1;
        if (e[u0].per_layer_unit)
            while (u1 < n && e[u1].rank == e[u0].rank && e[u1].layer == e[u0].layer) u1++;
        const bool placeable = e[u0].rank < class_rank(SMOE_PLACE_EMBD);
        uint64_t need = 0;
        for (size_t k = u0; k < u1; k++) need = add_sat(need, aligned(tensors[e[k].index].nbytes, alignment));
        st.total_bytes = add_sat(st.total_bytes, need);
        if (placeable && need <= left) {
            left -= need;
            st.gpu_bytes += need;
            for (size_t k = u0; k < u1; k++) on_gpu[e[k].index] = true;
            if (e[u0].rank == class_rank(SMOE_PLACE_FFN) && e[u0].per_layer_unit) st.n_ffn_layers_gpu++;
        }
        u0 = u1;
    }
    st.dense_complete = true;
    for (size_t i = 0; i < n; i++) {
        if (on_gpu[i]) {
            st.n_gpu++;
        } else {
            st.n_host++;
            st.host_bytes = add_sat(st.host_bytes, tensors[i].nbytes);
            const smoe_place_class c = smoe_place_classify(tensors[i].name, NULL);
            if (c == SMOE_PLACE_NORM || c == SMOE_PLACE_ROUTER || c == SMOE_PLACE_ATTENTION ||
                c == SMOE_PLACE_OUTPUT)
                st.dense_complete = false;
        }
    }
    free(e);
    if (stats) *stats = st;
    return SMOE_OK;
}

void smoe_place_summary(const smoe_place_stats *ps, uint64_t budget, int32_t n_layer, smoe_placement *out) {
    *out = (smoe_placement){.size = sizeof(*out), .budget = budget, .n_layer = n_layer};
    if (ps->total_bytes <= budget) { /* everything fits: every weight, token_embd too, on the device */
        out->gpu_bytes = ps->total_bytes;
        out->n_gpu_tensors = ps->n_gpu + ps->n_host;
        out->n_ffn_layers_gpu = n_layer;
        out->dense_complete = true;
        return;
    }
    out->split = true;
    out->gpu_bytes = ps->gpu_bytes;
    out->host_bytes = ps->host_bytes;
    out->n_gpu_tensors = ps->n_gpu;
    out->n_host_tensors = ps->n_host;
    out->n_ffn_layers_gpu = ps->n_ffn_layers_gpu;
    out->dense_complete = ps->dense_complete;
}
