/*
 * vk-ops.c - which nodes the Vulkan backend runs (supports_op) and how each is recorded: shader, specialization,
 * bindings, push constants, grid.
 *
 * Bindings and limits: every operand is bound as a window of its buffer (bind_range) that starts at a multiple of
 * the offset alignment and spans at most ctx->max_range bytes. Activations, caches and small tensors must fit one
 * window (supports_op checks their sizes; a tensor too large for that runs on the CPU). Weights, the operands that
 * legitimately exceed a binding (token embeddings, expert tensors, lm_head on devices with 128 MiB bindings), are
 * split: GET_ROWS and MUL_MAT over ranges of rows, MUL_MAT_ID over ranges of experts (and of rows within an expert
 * when one expert is larger than a window), one dispatch per range; each dispatch skips the rows/experts it does not
 * hold. Grid sizes are split the same way where they could exceed maxComputeWorkGroupCount.
 */
#include "vk-impl.h"
#include "vk-push.h"

#include <math.h>
#include <string.h>

#define SLACK 4 /* a 32-bit read at a 2-aligned offset may touch 2 bytes past a tensor's last byte */

static size_t t_offset(const smoe_tensor *t) { return (size_t)((uintptr_t)t->data - (uintptr_t)t->buffer->base); }

/* Bytes a window must hold for an operand of `bytes` bytes starting anywhere (alignment waste + slack). */
static bool fits_window(const smoe_vk_ctx *c, size_t bytes) {
    return bytes <= c->max_range && c->max_range - bytes >= c->min_align + SLACK;
}

static bool fits(const smoe_vk_ctx *c, const smoe_tensor *t) { return fits_window(c, smoe_tensor_nbytes(t)); }

/* Binds bytes [lo, hi) of t's memory (counted from t->data) to b; *rel receives the byte offset of t->data + lo
 * inside the window. */
static smoe_status bind_range(smoe_vk_ctx *c, smoe_vk_binding *b, const smoe_tensor *t, size_t lo, size_t hi,
                              uint32_t *rel) {
    SMOE_RETURN_IF(!t->buffer || !t->data || !t->buffer->ctx, SMOE_ERR_INVALID_ARGUMENT, "vulkan: %s has no memory",
                   t->name);
    const smoe_vk_mem *m = t->buffer->ctx;
    const VkDeviceSize off = t_offset(t) + lo, end = (t_offset(t) + hi + 3) & ~(VkDeviceSize)3;
    const VkDeviceSize start = off / c->min_align * c->min_align;
    SMOE_RETURN_IF(end > m->size || end - start > c->max_range, SMOE_ERR_UNSUPPORTED,
                   "vulkan: %s: bytes [%zu, %zu) do not fit one binding (internal)", t->name, lo, hi);
    /* a tight window: the barrier logic (vk-pipelines.c) and the validation layer see what is really touched */
    b->buffer = m->buffer;
    b->offset = start;
    b->range = end - start;
    b->write = false;
    *rel = (uint32_t)(off - start);
    return SMOE_OK;
}

static smoe_status bind_all(smoe_vk_ctx *c, smoe_vk_binding *b, const smoe_tensor *t, uint32_t *rel) {
    return bind_range(c, b, t, 0, smoe_tensor_nbytes(t), rel);
}

/* Binds a 4-byte-element tensor (f32, i32) and returns its offset and strides in elements. */
static smoe_status bind_elems(smoe_vk_ctx *c, smoe_vk_binding *b, const smoe_tensor *t, uint32_t *off, uint32_t nb[4]) {
    uint32_t rel = 0;
    SMOE_TRY(bind_all(c, b, t, &rel));
    SMOE_RETURN_IF(rel % 4 != 0, SMOE_ERR_UNSUPPORTED, "vulkan: %s is not 4-byte aligned", t->name);
    *off = rel / 4;
    if (nb)
        for (int i = 0; i < 4; i++) nb[i] = (uint32_t)(t->nb[i] / 4);
    return SMOE_OK;
}

static uint32_t err_code(int index, int kind) { return ((uint32_t)(index + 1) << 2) | (uint32_t)kind; }

static uint32_t ceil_div(uint64_t a, uint64_t b) { return (uint32_t)((a + b - 1) / b); }

static uint32_t wg_size(const smoe_vk_ctx *c, uint32_t want) {
    while (want > c->max_wg && want > 1) want /= 2;
    return want;
}

/* Spreads n workgroups over x and y (x * y >= n); shaders flatten (y * num_x + x). */
static void grid_2d(const smoe_vk_ctx *c, uint64_t n, uint32_t g[3]) {
    g[0] = (uint32_t)(n < c->max_groups[0] ? n : c->max_groups[0]);
    if (g[0] == 0) g[0] = 1;
    g[1] = ceil_div(n, g[0]);
    g[2] = 1;
}

/* ---- what the backend runs ---- */

static bool f32_rows(const smoe_tensor *t) {
    return t->type == SMOE_TYPE_F32 && t->nb[0] == 4 && t->nb[1] % 4 == 0 && t->nb[2] % 4 == 0 && t->nb[3] % 4 == 0;
}

static bool i32_rows(const smoe_tensor *t) {
    return t->type == SMOE_TYPE_I32 && t->nb[0] == 4 && t->nb[1] % 4 == 0 && t->nb[2] % 4 == 0 && t->nb[3] % 4 == 0;
}

static bool kv_type(smoe_type t) {
    switch (t) {
    case SMOE_TYPE_F32:
    case SMOE_TYPE_F16:
    case SMOE_TYPE_BF16:
    case SMOE_TYPE_Q8_0:
    case SMOE_TYPE_Q4_0:
    case SMOE_TYPE_Q4_1:
    case SMOE_TYPE_Q5_0:
    case SMOE_TYPE_Q5_1: return true;
    default: return false;
    }
}

/* Whether every element count and byte offset of the operand fits the shaders' 32-bit arithmetic. */
static bool small_dims(const smoe_tensor *t) {
    for (int i = 0; i < 4; i++)
        if (t->ne[i] > (int64_t)UINT32_MAX / 4 || t->nb[i] > UINT32_MAX) return false;
    return true;
}

static bool weight_ok(const smoe_vk_ctx *c, const smoe_tensor *w, smoe_vk_kernel k) {
    return smoe_tensor_rows_contiguous(w) && small_dims(w) &&
           fits_window(c, smoe_tensor_row_size(w)) && smoe_vk_shader_for((smoe_vk_ctx *)c, k, w->type, 0) >= 0;
}

bool smoe_vk_supports_op(smoe_vk_ctx *c, const smoe_tensor *n) {
    if ((int)n->op < 0 || n->op >= SMOE_OP_COUNT) return false;
    if (n->op == SMOE_OP_NONE || n->op == SMOE_OP_VIEW) return true;
    const int n_src = smoe_op_n_src(n->op);
    for (int i = 0; i < n_src; i++)
        if (!small_dims(n->src[i])) return false;
    if (!small_dims(n)) return false;
    const smoe_tensor *a = n->src[0], *b = n_src > 1 ? n->src[1] : NULL, *s2 = n_src > 2 ? n->src[2] : NULL;
    switch (n->op) {
    case SMOE_OP_GET_ROWS:
        return weight_ok(c, a, SMOE_VK_GET_ROWS) && i32_rows(b) && fits(c, b) && fits(c, n) &&
               b->ne[0] <= c->max_groups[1];
    case SMOE_OP_MUL_MAT:
        return weight_ok(c, a, SMOE_VK_MUL_MV) && f32_rows(b) && fits(c, b) && fits(c, n) &&
               ceil_div((uint64_t)smoe_tensor_nrows(b), 8) <= c->max_groups[1];
    case SMOE_OP_MUL_MAT_ID: {
        const uint64_t n_pairs = (uint64_t)s2->ne[0] * (uint64_t)s2->ne[1];
        return weight_ok(c, a, SMOE_VK_MUL_MV_ID) && f32_rows(b) && i32_rows(s2) && fits(c, b) && fits(c, s2) &&
               fits(c, n) && a->ne[2] <= 1024 && n_pairs + (uint64_t)a->ne[2] <= c->max_groups[1] &&
               fits_window(c, (1 + 4 * (n_pairs + (uint64_t)a->ne[2])) * 4);
    }
    case SMOE_OP_RMS_NORM: return f32_rows(a) && f32_rows(b) && fits(c, a) && fits(c, b) && fits(c, n);
    case SMOE_OP_ROPE:
        return f32_rows(a) && i32_rows(b) && fits(c, a) && fits(c, b) && fits(c, n) && a->ne[3] == 1 &&
               a->ne[2] <= c->max_groups[1];
    case SMOE_OP_KV_WRITE:
        return kv_type(a->type) && smoe_tensor_is_contiguous(a) && f32_rows(b) && i32_rows(s2) && fits(c, a) &&
               fits(c, b) && fits(c, s2) && b->ne[1] <= c->max_groups[1] && b->ne[3] <= c->max_groups[2] &&
               smoe_vk_shader_for(c, SMOE_VK_CPY, SMOE_TYPE_F32, a->type) >= 0;
    case SMOE_OP_ATTENTION: {
        const smoe_tensor *k = n->src[1], *v = n->src[2];
        const int64_t hd = a->ne[0];
        return f32_rows(a) && k->type == v->type && kv_type(k->type) && smoe_tensor_rows_contiguous(k) &&
               smoe_tensor_rows_contiguous(v) && hd % 4 == 0 && hd <= 512 && hd % smoe_type_get_traits(k->type)->block_size == 0 &&
               i32_rows(n->src[3]) && i32_rows(n->src[4]) && i32_rows(n->src[5]) && fits(c, a) && fits(c, k) &&
               fits(c, v) && fits(c, n->src[3]) && fits(c, n->src[4]) && fits(c, n) && a->ne[1] <= c->max_groups[0] &&
               a->ne[2] <= c->max_groups[1] && smoe_vk_shader_for(c, SMOE_VK_ATTENTION, k->type, 0) >= 0;
    }
    case SMOE_OP_MOE_ROUTE: return f32_rows(a) && n->ne[0] <= 64 && fits(c, a) && fits(c, n);
    case SMOE_OP_MOE_COMBINE:
        return f32_rows(a) && f32_rows(b) && i32_rows(s2) && fits(c, a) && fits(c, b) && fits(c, s2) && fits(c, n) &&
               n->ne[1] <= c->max_groups[1];
    case SMOE_OP_SWIGLU:
    case SMOE_OP_ADD:
    case SMOE_OP_MUL: return f32_rows(a) && f32_rows(b) && f32_rows(n) && fits(c, a) && fits(c, b) && fits(c, n);
    case SMOE_OP_SCALE: return f32_rows(a) && f32_rows(n) && fits(c, a) && fits(c, n);
    case SMOE_OP_CPY:
        return smoe_tensor_rows_contiguous(a) && smoe_tensor_is_contiguous(n) && fits(c, a) && fits(c, n) &&
               a->ne[1] <= c->max_groups[1] && (uint64_t)a->ne[2] * (uint64_t)a->ne[3] <= c->max_groups[2] &&
               smoe_vk_shader_for(c, SMOE_VK_CPY, a->type, n->type) >= 0;
    default: return false;
    }
}

/* ---- weights larger than one binding: ranges of rows (and experts) per dispatch ---- */

/* Rows of `nb1` bytes (each row_size bytes long) that one window holds, at least 1 (supports_op checked a row). */
static int64_t rows_per_window(const smoe_vk_ctx *c, size_t nb1, size_t row_size, int64_t n) {
    const size_t usable = (size_t)c->max_range - (size_t)c->min_align - SLACK;
    if (n <= 1 || nb1 == 0) return n < 1 ? 1 : n;
    const int64_t r = (int64_t)((usable - row_size) / nb1) + 1;
    return r < 1 ? 1 : r > n ? n : r;
}

/* ---- recorders ---- */

typedef struct rec {
    smoe_vk_ctx       *c;
    const smoe_tensor *n;
    int                index;
} rec;

static smoe_vk_dispatch dispatch(int shader, uint32_t wg, uint32_t s1, uint32_t s2) {
    smoe_vk_dispatch d;
    memset(&d, 0, sizeof(d));
    d.shader = shader;
    d.spec[0] = wg;
    d.spec[1] = s1;
    d.spec[2] = s2;
    return d;
}

static smoe_status shader_or_fail(smoe_vk_ctx *c, const smoe_tensor *n, smoe_vk_kernel k, smoe_type t1, smoe_type t2,
                                  int *out) {
    *out = smoe_vk_shader_for(c, k, t1, t2);
    SMOE_RETURN_IF(*out < 0, SMOE_ERR_UNSUPPORTED, "vulkan: no shader for %s (%s)", n->name, smoe_op_name(n->op));
    return SMOE_OK;
}

static smoe_status rec_get_rows(const rec *r) {
    smoe_vk_ctx *c = r->c;
    const smoe_tensor *tab = r->n->src[0], *ids = r->n->src[1];
    int sh;
    SMOE_TRY(shader_or_fail(c, r->n, SMOE_VK_GET_ROWS, tab->type, 0, &sh));
    const uint32_t wg = wg_size(c, 64);
    smoe_vk_dispatch d = dispatch(sh, wg, 0, 0);
    smoe_vk_push_get_rows p = {.ne0 = (uint32_t)tab->ne[0],
                               .n_rows = (uint32_t)tab->ne[1],
                               .n_ids = (uint32_t)ids->ne[0],
                               .a_nb1 = (uint32_t)tab->nb[1],
                               .err_code = err_code(r->index, SMOE_VK_ERR_ROW_ID)};
    uint32_t nb[4];
    SMOE_TRY(bind_elems(c, &d.bind[1], ids, &p.ids_off, NULL));
    SMOE_TRY(bind_elems(c, &d.bind[2], r->n, &p.out_off, nb));
    d.bind[2].write = true;
    p.out_nb1 = nb[1];
    d.push = &p;
    d.push_size = sizeof(p);
    d.groups[0] = ceil_div((uint64_t)tab->ne[0], 4u * wg);
    d.groups[1] = (uint32_t)ids->ne[0];
    d.groups[2] = 1;
    const size_t row = smoe_tensor_row_size(tab);
    const int64_t per = rows_per_window(c, tab->nb[1], row, tab->ne[1]);
    for (int64_t r0 = 0; r0 < tab->ne[1]; r0 += per) {
        const int64_t r1 = r0 + per < tab->ne[1] ? r0 + per : tab->ne[1];
        SMOE_TRY(bind_range(c, &d.bind[0], tab, (size_t)r0 * tab->nb[1], (size_t)(r1 - 1) * tab->nb[1] + row, &p.a_off));
        p.row_lo = (uint32_t)r0;
        p.row_hi = (uint32_t)r1;
        SMOE_TRY(smoe_vk_record(c, &d));
    }
    return SMOE_OK;
}

/* uints of the MUL_MAT_ID chunk table (moe_sort.comp) */
static size_t moe_sort_words(const smoe_tensor *n) {
    const smoe_tensor *w = n->src[0], *ids = n->src[2];
    const size_t n_pairs = (size_t)(ids->ne[0] * ids->ne[1]), max_chunks = n_pairs + (size_t)w->ne[2];
    return 1 + 3 * max_chunks + n_pairs;
}

/* Bytes of the int8 activation blocks of x (quantize_q8.comp: 12 uints per 32 elements). */
static size_t q8_bytes(const smoe_tensor *x) { return (size_t)smoe_tensor_nrows(x) * (size_t)(x->ne[0] / 32) * 48; }

/* ---- tiled products (mul_mm.comp) ---- */

/* mul_mm.comp's specialization: WG invocations, a BM x BN tile, TM rows per invocation (see the shader). */
typedef struct mm_shape {
    uint32_t wg, bm, bn, tm;
} mm_shape;

#define MM_BK 32 /* mul_mm.comp's BK */

/* Shared memory of a shape, as mul_mm.comp declares it. */
static size_t mm_shared_bytes(const mm_shape *s) {
    return (size_t)(s->bm + s->bn) * (MM_BK / 4 + 1) * 16 + 8 * (size_t)s->bn;
}

/* The first shape the device can run, largest first. CPU devices (lavapipe), where an invocation is a SIMD lane and
 * the register tile is what amortizes the shared loads: 8 x 4 invocations with 8 x 16 (8 x 8) registers (measured on
 * 2 cores, f16 and q4_0, k = 1024, 128 columns: 12-13 GFLOP/s; 8 x 8 registers 11, one row per invocation 5; larger
 * tiles ran faster still, up to 22 GFLOP/s with 16 x 64, but LLVM then takes minutes and gigabytes to compile each
 * pipeline). GPUs: 8 x 8 invocations with 8 x 8 (4 x 4) registers. The smaller shapes need under 16 KiB of shared
 * memory, which every device has; the limit is read, not assumed. */
static bool mm_pick(const smoe_vk_ctx *c, mm_shape *out) {
    static const mm_shape cpu[] = {{32, 64, 64, 8}, {32, 64, 32, 8}};
    static const mm_shape gpu[] = {{64, 64, 64, 8}, {64, 32, 32, 4}};
    const mm_shape *s = c->cpu_tuning ? cpu : gpu;
    for (int i = 0; i < 2; i++) {
        const uint32_t wm = s[i].bm / s[i].tm;
        if (s[i].wg <= c->max_wg && mm_shared_bytes(&s[i]) <= c->max_shared && s[i].bm % s[i].tm == 0 &&
            s[i].wg % wm == 0 && s[i].bn % (s[i].wg / wm) == 0) {
            *out = s[i];
            return true;
        }
    }
    return false;
}

/* Whether a MUL_MAT / MUL_MAT_ID runs tiled: enough columns for a weight tile to be reused (MUL_MAT: activation
 * columns; MUL_MAT_ID: (slot, token) pairs per expert on average) and a shape that fits the device. */
static bool use_mm(smoe_vk_ctx *c, const smoe_tensor *n, mm_shape *shape) {
    const smoe_tensor *w = n->src[0];
    const bool id = n->op == SMOE_OP_MUL_MAT_ID;
    const int64_t cols = id ? n->src[2]->ne[0] * n->src[2]->ne[1] / w->ne[2] : smoe_tensor_nrows(n->src[1]);
    mm_shape s;
    if (cols < (int64_t)c->mm_min_cols || !mm_pick(c, &s)) return false;
    if (smoe_type_get_traits(w->type)->block_size > 1 && w->ne[0] % MM_BK != 0) return false;
    if (smoe_vk_shader_for(c, id ? SMOE_VK_MUL_MM_ID : SMOE_VK_MUL_MM, w->type, 0) < 0) return false;
    if (!id && ceil_div((uint64_t)cols, s.bn) > c->max_groups[1]) return false;
    if (shape) *shape = s;
    return true;
}

/* Whether a MUL_MAT / MUL_MAT_ID runs on integer dot products: the device has them, the weight type has the shader,
 * and the int8 activations (next to the largest chunk table) fit one binding; not for products that run tiled. */
static bool use_q8(smoe_vk_ctx *c, const smoe_tensor *n) {
    if (!c->caps.int_dot || c->no_q8 || use_mm(c, n, NULL)) return false;
    const smoe_tensor *w = n->src[0], *x = n->src[1];
    const smoe_vk_kernel k = n->op == SMOE_OP_MUL_MAT_ID ? SMOE_VK_MUL_MVQ_ID : SMOE_VK_MUL_MVQ;
    const size_t table = n->op == SMOE_OP_MUL_MAT_ID ? moe_sort_words(n) * 4 + 256 : 0;
    return w->ne[0] % 32 == 0 && smoe_vk_shader_for(c, k, w->type, 0) >= 0 &&
           smoe_vk_shader_for(c, SMOE_VK_QUANTIZE_Q8, 0, 0) >= 0 && fits_window(c, table + q8_bytes(x)) &&
           smoe_tensor_nrows(x) <= c->max_groups[1];
}

/* ATTENTION's split over the cells (flash-decoding) on GPUs, where n_head x n_tokens workgroups would leave most of
 * the device idle at decode: chunks of >= 256 cells so that about 1024 workgroups run, at most 64; their partial
 * results (head_dim + 2 floats per token, head and chunk) take the table area of the scratch buffer and
 * attention_combine.comp merges them. 1 (no split) on CPU devices, where the workgroups already outnumber the cores. */
static uint32_t attn_chunks(const smoe_vk_ctx *c, const smoe_tensor *n) {
    const smoe_tensor *q = n->src[0], *k = n->src[1];
    if (c->cpu_tuning || smoe_vk_shader_for((smoe_vk_ctx *)c, SMOE_VK_ATTN_COMBINE, 0, 0) < 0) return 1;
    const uint64_t n_wg = (uint64_t)q->ne[1] * (uint64_t)q->ne[2];
    uint64_t       ch = (1024 + n_wg - 1) / n_wg;
    const uint64_t max_ch = ((uint64_t)k->ne[2] + 255) / 256;
    if (ch > max_ch) ch = max_ch;
    if (ch > 64) ch = 64;
    if (ch > c->max_groups[2]) ch = c->max_groups[2];
    while (ch > 1 && !fits_window(c, n_wg * ch * (uint64_t)(q->ne[0] + 2) * 4)) ch /= 2;
    return ch < 1 ? 1 : (uint32_t)ch;
}

static size_t attn_partial_bytes(const smoe_tensor *n, uint32_t chunks) {
    const smoe_tensor *q = n->src[0];
    return chunks > 1 ? (size_t)q->ne[1] * (size_t)q->ne[2] * chunks * (size_t)(q->ne[0] + 2) * 4 : 0;
}

void smoe_vk_op_scratch(smoe_vk_ctx *c, const smoe_tensor *node, size_t *table_bytes, size_t *q8) {
    *table_bytes = node->op == SMOE_OP_MUL_MAT_ID ? moe_sort_words(node) * 4 : 0;
    if (node->op == SMOE_OP_ATTENTION) *table_bytes = attn_partial_bytes(node, attn_chunks(c, node));
    *q8 = (node->op == SMOE_OP_MUL_MAT || node->op == SMOE_OP_MUL_MAT_ID) && use_q8(c, node) ? q8_bytes(node->src[1])
                                                                                              : 0;
}

/* Quantizes x into the int8 area of the scratch buffer (unless this compute already did, for an earlier product
 * reading the same x: Q/K/V, gate/up); *q_off receives its offset in uints. */
static smoe_status rec_quantize_x(const rec *r, const smoe_tensor *x, uint32_t *q_off) {
    smoe_vk_ctx *c = r->c;
    *q_off = 0; /* the int8 area is bound on its own */
    if (c->q8_src == x && c->q8_src_data == x->data) return SMOE_OK;
    int sh;
    SMOE_TRY(shader_or_fail(c, r->n, SMOE_VK_QUANTIZE_Q8, 0, 0, &sh));
    const uint32_t wg = wg_size(c, 64);
    smoe_vk_dispatch d = dispatch(sh, wg, 0, 0);
    smoe_vk_push_quantize_q8 p = {.x_ne1 = (uint32_t)x->ne[1], .x_ne2 = (uint32_t)x->ne[2],
                                  .k = (uint32_t)x->ne[0], .q_off = *q_off};
    uint32_t nb[4];
    SMOE_TRY(bind_elems(c, &d.bind[0], x, &p.x_off, nb));
    p.x_nb1 = nb[1];
    p.x_nb2 = nb[2];
    p.x_nb3 = nb[3];
    SMOE_RETURN_IF(c->scratch.size < c->scratch_q8_off + q8_bytes(x), SMOE_ERR_UNSUPPORTED,
                   "vulkan: scratch not reserved (internal)");
    d.bind[1] = (smoe_vk_binding){c->scratch.buffer, c->scratch_q8_off, q8_bytes(x), true};
    d.push = &p;
    d.push_size = sizeof(p);
    d.groups[0] = ceil_div((uint64_t)(x->ne[0] / 32), wg);
    d.groups[1] = (uint32_t)smoe_tensor_nrows(x);
    d.groups[2] = 1;
    SMOE_TRY(smoe_vk_record(c, &d));
    c->q8_src = x;
    c->q8_src_data = x->data;
    return SMOE_OK;
}

/* Activation columns per workgroup: 1 for decode-sized batches (a weight row is read once per column anyway),
 * 8 otherwise. */
static uint32_t pick_nc(int64_t n_cols) { return n_cols < 4 ? 1 : 8; }

/* Rows per workgroup of wg invocations for rows of `units` units of work (4 elements, or a 32-element block for the
 * integer-dot shaders): TPR = wg / NR invocations share a row, with about 4 units each (up to all wg on a row), so
 * short rows (small models) neither leave invocations idle nor need a workgroup per row (mv_reduce.glsl). */
static uint32_t pick_nr(const smoe_vk_ctx *c, uint32_t wg, int64_t units) {
    /* a CPU device (lavapipe) runs a workgroup's invocations as SIMD lanes of one thread, where the reduction's
     * barriers cost more than reading a row per lane (GPUs want neighbouring invocations on neighbouring bytes) */
    if (c->cpu_tuning) return wg;
    uint32_t tpr = 1;
    while (tpr * 2 <= wg && (int64_t)tpr * 2 * 4 <= units) tpr *= 2;
    return wg / tpr;
}

static smoe_status rec_mul_mat(const rec *r) {
    smoe_vk_ctx *c = r->c;
    const smoe_tensor *w = r->n->src[0], *x = r->n->src[1];
    mm_shape mm;
    const bool tiled = use_mm(c, r->n, &mm), q8 = !tiled && use_q8(c, r->n);
    int sh;
    SMOE_TRY(shader_or_fail(c, r->n, tiled ? SMOE_VK_MUL_MM : q8 ? SMOE_VK_MUL_MVQ : SMOE_VK_MUL_MV, w->type, 0, &sh));
    const int64_t n_cols = smoe_tensor_nrows(x);
    const uint32_t wg = wg_size(c, 64);
    /* rows and columns per workgroup */
    const uint32_t nc = tiled ? mm.bn : pick_nc(n_cols);
    const uint32_t nr = tiled ? mm.bm : pick_nr(c, wg, q8 ? w->ne[0] / 32 : (w->ne[0] + 3) / 4);
    smoe_vk_dispatch d = tiled ? dispatch(sh, mm.wg, mm.bm, mm.bn) : dispatch(sh, wg, nr, nc);
    d.spec[3] = tiled ? mm.tm : 0;
    smoe_vk_push_mul_mv p = {.w_nb1 = (uint32_t)w->nb[1],
                             .k = (uint32_t)w->ne[0],
                             .x_ne1 = (uint32_t)x->ne[1],
                             .x_ne2 = (uint32_t)x->ne[2],
                             .n_cols = (uint32_t)n_cols};
    smoe_vk_push_mul_mvq pq = {.w_nb1 = p.w_nb1, .k = p.k, .n_cols = p.n_cols};
    uint32_t nb[4];
    if (q8) {
        SMOE_TRY(rec_quantize_x(r, x, &pq.q_off));
        d.bind[1] = (smoe_vk_binding){c->scratch.buffer, c->scratch_q8_off, q8_bytes(x), false};
    } else {
        SMOE_TRY(bind_elems(c, &d.bind[1], x, &p.x_off, nb));
        p.x_nb1 = nb[1];
        p.x_nb2 = nb[2];
        p.x_nb3 = nb[3];
        p.x4 = (p.x_off | p.x_nb1 | p.x_nb2 | p.x_nb3) % 4 == 0;
    }
    SMOE_TRY(bind_elems(c, &d.bind[2], r->n, &p.out_off, nb));
    d.bind[2].write = true;
    p.out_nb1 = nb[1];
    pq.out_off = p.out_off;
    pq.out_nb1 = p.out_nb1;
    d.push = q8 ? (const void *)&pq : (const void *)&p;
    d.push_size = q8 ? sizeof(pq) : sizeof(p);
    const size_t row = smoe_tensor_row_size(w);
    int64_t per = rows_per_window(c, w->nb[1], row, w->ne[1]);
    if (per > (int64_t)c->max_groups[0] * nr) per = (int64_t)c->max_groups[0] * nr;
    for (int64_t r0 = 0; r0 < w->ne[1]; r0 += per) {
        const int64_t r1 = r0 + per < w->ne[1] ? r0 + per : w->ne[1];
        SMOE_TRY(bind_range(c, &d.bind[0], w, (size_t)r0 * w->nb[1], (size_t)(r1 - 1) * w->nb[1] + row, &p.w_off));
        p.row_lo = pq.row_lo = (uint32_t)r0;
        p.m_rows = pq.m_rows = (uint32_t)(r1 - r0);
        pq.w_off = p.w_off;
        d.groups[0] = ceil_div((uint64_t)(r1 - r0), nr);
        d.groups[1] = ceil_div((uint64_t)n_cols, nc);
        d.groups[2] = 1;
        SMOE_TRY(smoe_vk_record(c, &d));
    }
    return SMOE_OK;
}

static smoe_status rec_mul_mat_id(const rec *r) {
    smoe_vk_ctx *c = r->c;
    const smoe_tensor *w = r->n->src[0], *x = r->n->src[1], *ids = r->n->src[2];
    const int64_t n_used = ids->ne[0], n_tokens = ids->ne[1], n_expert = w->ne[2];
    const uint32_t n_pairs = (uint32_t)(n_used * n_tokens), max_chunks = n_pairs + (uint32_t)n_expert;
    mm_shape mm;
    const bool tiled = use_mm(c, r->n, &mm), q8 = !tiled && use_q8(c, r->n);
    const uint32_t wg = wg_size(c, 64);
    /* rows per workgroup, pairs per workgroup (the chunks of the table) */
    const uint32_t nc = tiled ? mm.bn : pick_nc(n_tokens);
    const uint32_t nr = tiled ? mm.bm : pick_nr(c, wg, q8 ? w->ne[0] / 32 : (w->ne[0] + 3) / 4);

    /* 1. group the pairs by expert */
    int sh_sort, sh;
    SMOE_TRY(shader_or_fail(c, r->n, SMOE_VK_MOE_SORT, 0, 0, &sh_sort));
    SMOE_TRY(shader_or_fail(c, r->n, tiled ? SMOE_VK_MUL_MM_ID : q8 ? SMOE_VK_MUL_MVQ_ID : SMOE_VK_MUL_MV_ID, w->type,
                            0, &sh));
    smoe_vk_dispatch ds = dispatch(sh_sort, wg_size(c, 64), 0, 0);
    uint32_t nb[4];
    smoe_vk_push_moe_sort ps = {.n_used = (uint32_t)n_used,
                                .n_tokens = (uint32_t)n_tokens,
                                .n_expert = (uint32_t)n_expert,
                                .nc = nc,
                                .sort_off = 0,
                                .max_chunks = max_chunks,
                                .err_code = err_code(r->index, SMOE_VK_ERR_EXPERT_ID)};
    SMOE_TRY(bind_elems(c, &ds.bind[0], ids, &ps.ids_off, nb));
    ps.ids_nb1 = nb[1];
    const VkDeviceSize words = moe_sort_words(r->n);
    SMOE_RETURN_IF(c->scratch.size < words * 4, SMOE_ERR_UNSUPPORTED, "vulkan: scratch not reserved (internal)");
    ds.bind[1] = (smoe_vk_binding){c->scratch.buffer, 0, words * 4, true};
    ds.push = &ps;
    ds.push_size = sizeof(ps);
    ds.groups[0] = ds.groups[1] = ds.groups[2] = 1;
    SMOE_TRY(smoe_vk_record(c, &ds));

    /* 2. the products, over ranges of experts (and rows) that fit a binding */
    smoe_vk_dispatch d = tiled ? dispatch(sh, mm.wg, mm.bm, mm.bn) : dispatch(sh, wg, nr, nc);
    d.spec[3] = tiled ? mm.tm : 0;
    smoe_vk_push_mul_mv_id p = {.w_nb1 = (uint32_t)w->nb[1],
                                .w_nb2 = (uint32_t)w->nb[2],
                                .k = (uint32_t)w->ne[0],
                                .n_x = (uint32_t)x->ne[1],
                                .n_used = (uint32_t)n_used,
                                .sort_off = 0,
                                .max_chunks = max_chunks};
    smoe_vk_push_mul_mvq_id pq = {.w_nb1 = p.w_nb1, .w_nb2 = p.w_nb2, .k = p.k, .n_x = p.n_x, .n_used = p.n_used,
                                  .sort_off = 0, .max_chunks = max_chunks};
    if (q8) {
        SMOE_TRY(rec_quantize_x(r, x, &pq.q_off));
        d.bind[1] = (smoe_vk_binding){c->scratch.buffer, c->scratch_q8_off, q8_bytes(x), false};
    } else {
        SMOE_TRY(bind_elems(c, &d.bind[1], x, &p.x_off, nb));
        p.x_nb1 = nb[1];
        p.x_nb2 = nb[2];
        p.x4 = (p.x_off | p.x_nb1 | p.x_nb2) % 4 == 0;
    }
    SMOE_TRY(bind_elems(c, &d.bind[2], r->n, &p.out_off, nb));
    d.bind[2].write = true;
    p.out_nb1 = pq.out_nb1 = nb[1];
    p.out_nb2 = pq.out_nb2 = nb[2];
    pq.out_off = p.out_off;
    d.bind[3] = ds.bind[1];
    d.bind[3].write = false;
    d.push = q8 ? (const void *)&pq : (const void *)&p;
    d.push_size = q8 ? sizeof(pq) : sizeof(p);
    const size_t row = smoe_tensor_row_size(w);
    const int64_t m = w->ne[1];
    const size_t expert_span = (size_t)(m - 1) * w->nb[1] + row;
    int64_t e_per = 1, r_per = m;
    if (fits_window(c, expert_span)) {
        const size_t usable = (size_t)c->max_range - (size_t)c->min_align - SLACK;
        e_per = n_expert <= 1 ? 1 : (int64_t)((usable - expert_span) / w->nb[2]) + 1;
        if (e_per > n_expert) e_per = n_expert;
    } else {
        r_per = rows_per_window(c, w->nb[1], row, m);
    }
    if (r_per > (int64_t)c->max_groups[0] * nr) r_per = (int64_t)c->max_groups[0] * nr;
    const uint32_t chunk_groups = nc == 1 ? n_pairs : ceil_div(n_pairs, nc) + (uint32_t)n_expert;
    for (int64_t e0 = 0; e0 < n_expert; e0 += e_per) {
        const int64_t e1 = e0 + e_per < n_expert ? e0 + e_per : n_expert;
        for (int64_t r0 = 0; r0 < m; r0 += r_per) {
            const int64_t r1 = r0 + r_per < m ? r0 + r_per : m;
            const size_t lo = (size_t)e0 * w->nb[2] + (size_t)r0 * w->nb[1];
            const size_t hi = (size_t)(e1 - 1) * w->nb[2] + (size_t)(r1 - 1) * w->nb[1] + row;
            SMOE_TRY(bind_range(c, &d.bind[0], w, lo, hi, &p.w_off));
            pq.w_off = p.w_off;
            p.e_lo = pq.e_lo = (uint32_t)e0;
            p.e_hi = pq.e_hi = (uint32_t)e1;
            p.row_lo = pq.row_lo = (uint32_t)r0;
            p.m_rows = pq.m_rows = (uint32_t)(r1 - r0);
            d.groups[0] = ceil_div((uint64_t)(r1 - r0), nr);
            d.groups[1] = chunk_groups;
            d.groups[2] = 1;
            SMOE_TRY(smoe_vk_record(c, &d));
        }
    }
    return SMOE_OK;
}

static smoe_status rec_rms_norm(const rec *r) {
    smoe_vk_ctx *c = r->c;
    const smoe_tensor *x = r->n->src[0], *w = r->n->src[1];
    int sh;
    SMOE_TRY(shader_or_fail(c, r->n, SMOE_VK_RMS_NORM, 0, 0, &sh));
    smoe_vk_dispatch d = dispatch(sh, wg_size(c, 128), 0, 0);
    const int64_t rows = smoe_tensor_nrows(x);
    smoe_vk_push_rms_norm p = {.ne0 = (uint32_t)x->ne[0],
                               .ne1 = (uint32_t)x->ne[1],
                               .ne2 = (uint32_t)x->ne[2],
                               .n_rows = (uint32_t)rows,
                               .eps = r->n->params.rms_norm.eps};
    uint32_t nb[4];
    SMOE_TRY(bind_elems(c, &d.bind[0], x, &p.x_off, nb));
    p.x_nb1 = nb[1];
    p.x_nb2 = nb[2];
    p.x_nb3 = nb[3];
    SMOE_TRY(bind_elems(c, &d.bind[1], w, &p.w_off, NULL));
    SMOE_TRY(bind_elems(c, &d.bind[2], r->n, &p.o_off, nb));
    d.bind[2].write = true;
    p.o_nb1 = nb[1];
    p.o_nb2 = nb[2];
    p.o_nb3 = nb[3];
    d.push = &p;
    d.push_size = sizeof(p);
    grid_2d(c, (uint64_t)rows, d.groups);
    return smoe_vk_record(c, &d);
}

static smoe_status rec_rope(const rec *r) {
    smoe_vk_ctx *c = r->c;
    const smoe_tensor *x = r->n->src[0], *pos = r->n->src[1];
    const smoe_op_rope_params *rp = &r->n->params.rope;
    int sh;
    SMOE_TRY(shader_or_fail(c, r->n, SMOE_VK_ROPE, 0, 0, &sh));
    const uint32_t wg = wg_size(c, 64);
    smoe_vk_dispatch d = dispatch(sh, wg, 0, 0);
    /* theta^(-2/n_rot) in double: the shader raises it to the power i exactly enough (see rope.comp) */
    const double base = pow((double)rp->theta_base, -2.0 / (double)rp->n_rot);
    uint64_t bits;
    memcpy(&bits, &base, sizeof(bits));
    smoe_vk_push_rope p = {.head_dim = (uint32_t)x->ne[0],
                           .n_head = (uint32_t)x->ne[1],
                           .n_tokens = (uint32_t)x->ne[2],
                           .n_rot = (uint32_t)rp->n_rot,
                           .freq_scale = rp->freq_scale,
                           .log2_theta = (float)log2((double)rp->theta_base),
                           .base_lo = (uint32_t)bits,
                           .base_hi = (uint32_t)(bits >> 32)};
    uint32_t nb[4];
    SMOE_TRY(bind_elems(c, &d.bind[0], x, &p.x_off, nb));
    p.x_nb1 = nb[1];
    p.x_nb2 = nb[2];
    SMOE_TRY(bind_elems(c, &d.bind[1], pos, &p.pos_off, NULL));
    SMOE_TRY(bind_elems(c, &d.bind[2], r->n, &p.o_off, nb));
    d.bind[2].write = true;
    p.o_nb1 = nb[1];
    p.o_nb2 = nb[2];
    d.push = &p;
    d.push_size = sizeof(p);
    d.groups[0] = ceil_div((uint64_t)((x->ne[0] + 1) / 2) * (uint64_t)x->ne[1], wg);
    d.groups[1] = (uint32_t)x->ne[2];
    d.groups[2] = 1;
    return smoe_vk_record(c, &d);
}

/* CPY (scatter = false) and KV_WRITE (scatter = true: rows -> cache cells). */
static smoe_status rec_copy(const rec *r, const smoe_tensor *src, const smoe_tensor *dst, const smoe_tensor *cells) {
    smoe_vk_ctx *c = r->c;
    int sh;
    SMOE_TRY(shader_or_fail(c, r->n, SMOE_VK_CPY, src->type, dst->type, &sh));
    const uint32_t wg = wg_size(c, 64);
    smoe_vk_dispatch d = dispatch(sh, wg, 0, 0);
    smoe_vk_push_cpy p = {.ne0 = (uint32_t)src->ne[0],
                          .ne1 = (uint32_t)src->ne[1],
                          .ne2 = (uint32_t)src->ne[2],
                          .ne3 = (uint32_t)src->ne[3],
                          .s_nb1 = (uint32_t)src->nb[1],
                          .s_nb2 = (uint32_t)src->nb[2],
                          .s_nb3 = (uint32_t)src->nb[3],
                          .d_nb1 = (uint32_t)dst->nb[1],
                          .d_nb2 = (uint32_t)dst->nb[2],
                          .d_nb3 = (uint32_t)dst->nb[3],
                          .scatter = cells ? 1u : 0u,
                          .n_cells = cells ? (uint32_t)dst->ne[2] : 0u,
                          .err_code = err_code(r->index, SMOE_VK_ERR_CELL)};
    SMOE_TRY(bind_all(c, &d.bind[0], src, &p.s_off));
    SMOE_TRY(bind_all(c, &d.bind[1], dst, &p.d_off));
    d.bind[1].write = true;
    if (cells) SMOE_TRY(bind_elems(c, &d.bind[2], cells, &p.idx_off, NULL));
    d.push = &p;
    d.push_size = sizeof(p);
    const smoe_type_traits *dt = smoe_type_get_traits(dst->type);
    const uint64_t units = dt->block_size == 1 ? (uint64_t)(src->ne[0] + 3) / 4 : (uint64_t)(src->ne[0] / 32);
    d.groups[0] = ceil_div(units, wg);
    d.groups[1] = (uint32_t)src->ne[1];
    d.groups[2] = cells ? (uint32_t)src->ne[3] : (uint32_t)(src->ne[2] * src->ne[3]);
    return smoe_vk_record(c, &d);
}

static smoe_status rec_attention(const rec *r) {
    smoe_vk_ctx *c = r->c;
    const smoe_tensor *n = r->n, *q = n->src[0], *k = n->src[1], *v = n->src[2];
    int sh;
    SMOE_TRY(shader_or_fail(c, n, SMOE_VK_ATTENTION, k->type, 0, &sh));
    const uint32_t wg = wg_size(c, q->ne[0] <= 128 ? 32 : 64);
    SMOE_RETURN_IF((uint64_t)q->ne[0] > 16u * wg, SMOE_ERR_UNSUPPORTED, "vulkan: %s: head_dim too large", n->name);
    smoe_vk_dispatch d = dispatch(sh, wg, 0, 0);
    smoe_vk_push_attention p = {.k_nb1 = (uint32_t)k->nb[1],
                                .k_nb2 = (uint32_t)k->nb[2],
                                .v_nb1 = (uint32_t)v->nb[1],
                                .v_nb2 = (uint32_t)v->nb[2],
                                .head_dim = (uint32_t)q->ne[0],
                                .n_head = (uint32_t)q->ne[1],
                                .n_head_kv = (uint32_t)k->ne[1],
                                .n_cells = (uint32_t)k->ne[2],
                                .scale = n->params.attention.scale};
    uint32_t nb[4];
    SMOE_TRY(bind_elems(c, &d.bind[0], q, &p.q_off, nb));
    p.q_nb1 = nb[1];
    p.q_nb2 = nb[2];
    SMOE_TRY(bind_all(c, &d.bind[1], k, &p.k_off));
    SMOE_TRY(bind_all(c, &d.bind[2], v, &p.v_off));
    SMOE_TRY(bind_elems(c, &d.bind[3], n->src[3], &p.qi_off, nb));
    p.qi_nb1 = nb[1];
    SMOE_TRY(bind_elems(c, &d.bind[4], n->src[4], &p.ci_off, nb));
    p.ci_nb1 = nb[1];
    SMOE_TRY(bind_elems(c, &d.bind[5], n->src[5], &p.ns_off, NULL));
    SMOE_TRY(bind_elems(c, &d.bind[6], n, &p.o_off, nb));
    d.bind[6].write = true;
    p.o_nb1 = nb[1];
    p.o_nb2 = nb[2];
    d.push = &p;
    d.push_size = sizeof(p);
    d.groups[0] = (uint32_t)q->ne[1];
    d.groups[1] = (uint32_t)q->ne[2];
    d.groups[2] = 1;
    const uint32_t chunks = attn_chunks(c, n);
    if (chunks == 1) return smoe_vk_record(c, &d);

    /* split: the chunks' partial results to the scratch table area, then merged into the output */
    const size_t part = attn_partial_bytes(n, chunks);
    SMOE_RETURN_IF(c->scratch.size < part, SMOE_ERR_UNSUPPORTED, "vulkan: scratch not reserved (internal)");
    const smoe_vk_binding out = d.bind[6];
    const uint32_t        o_off = p.o_off;
    d.bind[6] = (smoe_vk_binding){c->scratch.buffer, 0, part, true};
    p.o_off = 0;
    p.n_chunks = chunks;
    p.chunk = (uint32_t)((k->ne[2] + chunks - 1) / chunks);
    d.groups[2] = chunks;
    SMOE_TRY(smoe_vk_record(c, &d));
    int shc;
    SMOE_TRY(shader_or_fail(c, n, SMOE_VK_ATTN_COMBINE, 0, 0, &shc));
    smoe_vk_dispatch dc = dispatch(shc, wg_size(c, 64), 0, 0);
    smoe_vk_push_attention_combine pc = {.p_off = 0,
                                         .o_off = o_off,
                                         .o_nb1 = p.o_nb1,
                                         .o_nb2 = p.o_nb2,
                                         .head_dim = p.head_dim,
                                         .n_head = p.n_head,
                                         .n_chunks = chunks};
    dc.bind[0] = (smoe_vk_binding){c->scratch.buffer, 0, part, false};
    dc.bind[1] = out;
    dc.push = &pc;
    dc.push_size = sizeof(pc);
    dc.groups[0] = (uint32_t)q->ne[1];
    dc.groups[1] = (uint32_t)q->ne[2];
    dc.groups[2] = 1;
    return smoe_vk_record(c, &dc);
}

static smoe_status rec_moe_route(const rec *r) {
    smoe_vk_ctx *c = r->c;
    const smoe_tensor *l = r->n->src[0];
    int sh;
    SMOE_TRY(shader_or_fail(c, r->n, SMOE_VK_MOE_ROUTE, 0, 0, &sh));
    const uint32_t wg = wg_size(c, 64);
    smoe_vk_dispatch d = dispatch(sh, wg, 0, 0);
    smoe_vk_push_moe_route p = {.n_expert = (uint32_t)l->ne[0],
                                .n_used = (uint32_t)r->n->ne[0],
                                .n_tokens = (uint32_t)l->ne[1]};
    uint32_t nb[4];
    SMOE_TRY(bind_elems(c, &d.bind[0], l, &p.l_off, nb));
    p.l_nb1 = nb[1];
    SMOE_TRY(bind_elems(c, &d.bind[1], r->n, &p.o_off, nb));
    d.bind[1].write = true;
    p.o_nb1 = nb[1];
    d.push = &p;
    d.push_size = sizeof(p);
    grid_2d(c, ceil_div((uint64_t)l->ne[1], wg), d.groups);
    SMOE_RETURN_IF(d.groups[1] != 1, SMOE_ERR_UNSUPPORTED, "vulkan: %s: too many tokens", r->n->name);
    return smoe_vk_record(c, &d);
}

static smoe_status rec_moe_combine(const rec *r) {
    smoe_vk_ctx *c = r->c;
    const smoe_tensor *y = r->n->src[0], *l = r->n->src[1], *ids = r->n->src[2];
    int sh;
    SMOE_TRY(shader_or_fail(c, r->n, SMOE_VK_MOE_COMBINE, 0, 0, &sh));
    const uint32_t wg = wg_size(c, 64);
    smoe_vk_dispatch d = dispatch(sh, wg, 0, 0);
    smoe_vk_push_moe_combine p = {.n_embd = (uint32_t)y->ne[0],
                                  .n_used = (uint32_t)ids->ne[0],
                                  .n_expert = (uint32_t)l->ne[0],
                                  .err_code = err_code(r->index, SMOE_VK_ERR_EXPERT_ID)};
    uint32_t nb[4];
    SMOE_TRY(bind_elems(c, &d.bind[0], y, &p.y_off, nb));
    p.y_nb1 = nb[1];
    p.y_nb2 = nb[2];
    SMOE_TRY(bind_elems(c, &d.bind[1], l, &p.l_off, nb));
    p.l_nb1 = nb[1];
    SMOE_TRY(bind_elems(c, &d.bind[2], ids, &p.i_off, nb));
    p.i_nb1 = nb[1];
    SMOE_TRY(bind_elems(c, &d.bind[3], r->n, &p.o_off, nb));
    d.bind[3].write = true;
    p.o_nb1 = nb[1];
    d.push = &p;
    d.push_size = sizeof(p);
    d.groups[0] = ceil_div((uint64_t)y->ne[0], wg);
    d.groups[1] = (uint32_t)ids->ne[1];
    d.groups[2] = 1;
    return smoe_vk_record(c, &d);
}

static smoe_status rec_eltwise(const rec *r, uint32_t op) {
    smoe_vk_ctx *c = r->c;
    const smoe_tensor *n = r->n, *a = n->src[0], *b = op == SMOE_VK_ELT_SCALE ? NULL : n->src[1];
    int sh;
    SMOE_TRY(shader_or_fail(c, n, SMOE_VK_ELTWISE, 0, 0, &sh));
    const uint32_t wg = wg_size(c, 256);
    smoe_vk_dispatch d = dispatch(sh, wg, 0, 0);
    smoe_vk_push_eltwise p = {.ne0 = (uint32_t)n->ne[0],
                              .ne1 = (uint32_t)n->ne[1],
                              .ne2 = (uint32_t)n->ne[2],
                              .ne3 = (uint32_t)n->ne[3],
                              .b_ne0 = 1, .b_ne1 = 1, .b_ne2 = 1, .b_ne3 = 1,
                              .op = op,
                              .s = op == SMOE_VK_ELT_SCALE ? n->params.scale.s : 0.0f};
    uint32_t nb[4];
    SMOE_TRY(bind_elems(c, &d.bind[0], a, &p.a_off, nb));
    p.a_nb1 = nb[1];
    p.a_nb2 = nb[2];
    p.a_nb3 = nb[3];
    if (b) {
        SMOE_TRY(bind_elems(c, &d.bind[1], b, &p.b_off, nb));
        p.b_nb1 = nb[1];
        p.b_nb2 = nb[2];
        p.b_nb3 = nb[3];
        p.b_ne0 = (uint32_t)b->ne[0];
        p.b_ne1 = (uint32_t)b->ne[1];
        p.b_ne2 = (uint32_t)b->ne[2];
        p.b_ne3 = (uint32_t)b->ne[3];
    }
    SMOE_TRY(bind_elems(c, &d.bind[2], n, &p.o_off, nb));
    d.bind[2].write = true;
    p.o_nb1 = nb[1];
    p.o_nb2 = nb[2];
    p.o_nb3 = nb[3];
    d.push = &p;
    d.push_size = sizeof(p);
    grid_2d(c, ceil_div((uint64_t)smoe_tensor_nelements(n), wg), d.groups);
    return smoe_vk_record(c, &d);
}

smoe_status smoe_vk_record_op(smoe_vk_ctx *c, const smoe_tensor *node, int index) {
    const rec r = {.c = c, .n = node, .index = index};
    switch (node->op) {
    case SMOE_OP_NONE:
    case SMOE_OP_VIEW: return SMOE_OK;
    case SMOE_OP_GET_ROWS: return rec_get_rows(&r);
    case SMOE_OP_MUL_MAT: return rec_mul_mat(&r);
    case SMOE_OP_MUL_MAT_ID: return rec_mul_mat_id(&r);
    case SMOE_OP_RMS_NORM: return rec_rms_norm(&r);
    case SMOE_OP_ROPE: return rec_rope(&r);
    case SMOE_OP_KV_WRITE: return rec_copy(&r, node->src[1], node->src[0], node->src[2]);
    case SMOE_OP_ATTENTION: return rec_attention(&r);
    case SMOE_OP_MOE_ROUTE: return rec_moe_route(&r);
    case SMOE_OP_MOE_COMBINE: return rec_moe_combine(&r);
    case SMOE_OP_SWIGLU: return rec_eltwise(&r, SMOE_VK_ELT_SWIGLU);
    case SMOE_OP_ADD: return rec_eltwise(&r, SMOE_VK_ELT_ADD);
    case SMOE_OP_MUL: return rec_eltwise(&r, SMOE_VK_ELT_MUL);
    case SMOE_OP_SCALE: return rec_eltwise(&r, SMOE_VK_ELT_SCALE);
    case SMOE_OP_CPY: return rec_copy(&r, node->src[0], node, NULL);
    default: break;
    }
    return smoe_set_error(SMOE_ERR_UNSUPPORTED, "vulkan: no kernel for %s (%s)", smoe_op_name(node->op), node->name);
}
