/* test-cuda-host.c - the CUDA backend's host-side logic, on any machine: the registry entry, device_count() = 0 and
 * a clean init failure without a device (the library loads without a driver), and smoe_cuda_supports_node's answers
 * (what runs on the GPU and what falls back to the CPU). Kernels are tested on a GPU by test-ops -b cuda0
 * (bench/device-check.sh). Builds without CUDA check that the kind is absent. Also the CUDA-graph capture/replay
 * policy (backends/cuda/launch-cache.c), which is host logic built everywhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "backends/cuda/launch-cache.h"
#include "core/backend.h"
#include "core/graph.h"
#if SMOE_HAVE_CUDA
#include "backends/cuda/cuda-backend.h"
#include "backends/cuda/cuda-kernels.h"
#endif

static void test_registry(void **state) {
    (void)state;
    const smoe_backend_reg *r = smoe_backend_reg_find("cuda");
#if SMOE_HAVE_CUDA
    assert_non_null(r);
    const int n = r->device_count();
    assert_true(n >= 0);
    assert_int_equal(n, smoe_cuda_device_count());
    smoe_backend *b = NULL;
    if (n == 0) {
        /* no driver or device: reported as unavailable, never a crash */
        assert_int_equal(smoe_backend_init_by_name("cuda", 0, &b), SMOE_ERR_INVALID_ARGUMENT);
        assert_null(b);
        assert_non_null(strstr(smoe_last_error(), "no cuda device found"));
        assert_int_equal(smoe_cuda_backend_init(0, &b), SMOE_ERR_INVALID_ARGUMENT);
        assert_null(b);
        print_message("no CUDA device: init checks only\n");
    } else {
        assert_int_equal(smoe_backend_init_by_name("cuda", 0, &b), SMOE_OK);
        assert_true(smoe_backend_is_cuda(b));
        smoe_backend_props p;
        smoe_backend_get_props(b, &p);
        assert_string_equal(p.name, "cuda0");
        assert_false(p.host_memory);
        smoe_backend_free(b);
    }
    assert_int_equal(smoe_cuda_backend_init(-1, &b), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_cuda_backend_init(0, NULL), SMOE_ERR_INVALID_ARGUMENT);
#else
    assert_null(r);
    skip();
#endif
}

#if SMOE_HAVE_CUDA
static smoe_tensor *in(smoe_graph *g, smoe_type type, int n_dims, int64_t a, int64_t b, int64_t c) {
    const int64_t ne[3] = {a, b, c};
    smoe_tensor *t = NULL;
    assert_int_equal(smoe_graph_new_tensor(g, type, n_dims, ne, &t), SMOE_OK);
    return t;
}

static void test_supports(void **state) {
    (void)state;
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *x = in(g, SMOE_TYPE_F32, 2, 256, 3, 1), *out = NULL;
    const int cc = SMOE_CC_TURING;

    /* weight types the kernels decode, and one they do not (q8_k: activations only) */
    const smoe_type yes[] = {SMOE_TYPE_F32, SMOE_TYPE_F16, SMOE_TYPE_BF16, SMOE_TYPE_Q4_0, SMOE_TYPE_Q4_1,
                             SMOE_TYPE_Q5_0, SMOE_TYPE_Q5_1, SMOE_TYPE_Q8_0, SMOE_TYPE_Q4_K, SMOE_TYPE_Q5_K,
                             SMOE_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        smoe_tensor *w = in(g, yes[i], 2, 256, 5, 1);
        assert_int_equal(smoe_mul_mat(g, w, x, &out), SMOE_OK);
        assert_true(smoe_cuda_supports_node(out, cc));
        assert_true(smoe_cuda_type_supported((int32_t)yes[i]));
    }
    assert_false(smoe_cuda_type_supported(SMOE_TYPE_Q8_K));
    assert_false(smoe_cuda_type_supported(SMOE_TYPE_I32));

    /* MUL_MAT_ID with device expert ids */
    smoe_tensor *we = in(g, SMOE_TYPE_Q4_0, 3, 256, 7, 4), *ids = in(g, SMOE_TYPE_I32, 2, 2, 3, 1);
    smoe_tensor *xid = in(g, SMOE_TYPE_F32, 3, 256, 1, 3); /* one input row per token */
    assert_int_equal(smoe_mul_mat_id(g, we, xid, ids, &out), SMOE_OK);
    assert_true(smoe_cuda_supports_node(out, cc));

    /* CPY: to f16 and q8_0 on the GPU, to q4_0 on the CPU */
    assert_int_equal(smoe_cpy(g, x, SMOE_TYPE_F16, &out), SMOE_OK);
    assert_true(smoe_cuda_supports_node(out, cc));
    assert_int_equal(smoe_cpy(g, x, SMOE_TYPE_Q8_0, &out), SMOE_OK);
    assert_true(smoe_cuda_supports_node(out, cc));
    assert_int_equal(smoe_cpy(g, x, SMOE_TYPE_Q4_0, &out), SMOE_OK);
    assert_false(smoe_cuda_supports_node(out, cc));

    /* KV_WRITE: f16 and q8_0 caches yes, q4_0 no */
    smoe_tensor *rows = in(g, SMOE_TYPE_F32, 3, 64, 2, 3), *cells = in(g, SMOE_TYPE_I32, 1, 3, 1, 1);
    smoe_tensor *kc = in(g, SMOE_TYPE_F16, 3, 64, 2, 16), *vc = in(g, SMOE_TYPE_F16, 3, 64, 2, 16);
    smoe_tensor *kq = in(g, SMOE_TYPE_Q8_0, 3, 64, 2, 16), *vq = in(g, SMOE_TYPE_Q8_0, 3, 64, 2, 16);
    smoe_tensor *k4 = in(g, SMOE_TYPE_Q4_0, 3, 64, 2, 16), *kqw = NULL, *vqw = NULL;
    smoe_tensor *kw = NULL, *vw = NULL;
    assert_int_equal(smoe_kv_write(g, kc, rows, cells, &kw), SMOE_OK);
    assert_true(smoe_cuda_supports_node(kw, cc));
    assert_int_equal(smoe_kv_write(g, vc, rows, cells, &vw), SMOE_OK);
    assert_int_equal(smoe_kv_write(g, kq, rows, cells, &kqw), SMOE_OK);
    assert_true(smoe_cuda_supports_node(kqw, cc));
    assert_int_equal(smoe_kv_write(g, vq, rows, cells, &vqw), SMOE_OK);
    assert_int_equal(smoe_kv_write(g, k4, rows, cells, &out), SMOE_OK);
    assert_false(smoe_cuda_supports_node(out, cc));

    /* ATTENTION over the f16 cache, GQA 4:2 */
    smoe_tensor *q = in(g, SMOE_TYPE_F32, 3, 64, 4, 3), *qi = in(g, SMOE_TYPE_I32, 2, 2, 3, 1);
    smoe_tensor *ci = in(g, SMOE_TYPE_I32, 2, 2, 16, 1), *ns = in(g, SMOE_TYPE_I32, 1, 1, 1, 1);
    assert_int_equal(smoe_attention(g, q, kw, vw, qi, ci, ns, 0.125f, &out), SMOE_OK);
    assert_true(smoe_cuda_supports_node(out, cc));
    assert_int_equal(smoe_attention(g, q, kqw, vqw, qi, ci, ns, 0.125f, &out), SMOE_OK); /* q8_0 cache */
    assert_true(smoe_cuda_supports_node(out, cc));
    assert_int_equal(smoe_attention(g, q, kqw, vw, qi, ci, ns, 0.125f, &out), SMOE_OK); /* mixed: CPU */
    assert_false(smoe_cuda_supports_node(out, cc));

    /* routing, element-wise, norm, rope */
    smoe_tensor *logits = in(g, SMOE_TYPE_F32, 2, 8, 3, 1), *route = NULL, *y = in(g, SMOE_TYPE_F32, 3, 256, 2, 3);
    assert_int_equal(smoe_moe_route(g, logits, 2, &route), SMOE_OK);
    assert_true(smoe_cuda_supports_node(route, cc));
    assert_int_equal(smoe_moe_combine(g, y, logits, route, &out), SMOE_OK);
    assert_true(smoe_cuda_supports_node(out, cc));
    smoe_tensor *nw = in(g, SMOE_TYPE_F32, 1, 256, 1, 1);
    assert_int_equal(smoe_rms_norm(g, x, nw, 1e-5f, &out), SMOE_OK);
    assert_true(smoe_cuda_supports_node(out, cc));
    assert_int_equal(smoe_add(g, x, nw, &out), SMOE_OK);
    assert_true(smoe_cuda_supports_node(out, cc));
    assert_int_equal(smoe_swiglu(g, x, x, &out), SMOE_OK);
    assert_true(smoe_cuda_supports_node(out, cc));
    assert_int_equal(smoe_scale(g, x, 0.5f, &out), SMOE_OK);
    assert_true(smoe_cuda_supports_node(out, cc));
    smoe_tensor *pos = in(g, SMOE_TYPE_I32, 1, 3, 1, 1);
    const smoe_op_rope_params rp = {.n_rot = 64, .theta_base = 1e6f, .freq_scale = 1.0f};
    assert_int_equal(smoe_rope(g, q, pos, &rp, &out), SMOE_OK);
    assert_true(smoe_cuda_supports_node(out, cc));
    smoe_tensor *table = in(g, SMOE_TYPE_Q4_K, 2, 256, 10, 1), *rid = in(g, SMOE_TYPE_I32, 1, 3, 1, 1);
    assert_int_equal(smoe_get_rows(g, table, rid, &out), SMOE_OK);
    assert_true(smoe_cuda_supports_node(out, cc));

    /* CPY to the same type (a byte copy of each row) */
    smoe_tensor *q8 = in(g, SMOE_TYPE_Q8_0, 2, 64, 5, 1);
    assert_int_equal(smoe_cpy(g, q8, SMOE_TYPE_Q8_0, &out), SMOE_OK);
    assert_true(smoe_cuda_supports_node(out, cc));

    /* shapes past the kernels' limits stay on the CPU: head_dim > 256 (attention lanes hold 8 elements each), more
     * than 65535 tokens or columns where a launch puts them in gridDim.y or .z */
    smoe_tensor *qb = in(g, SMOE_TYPE_F32, 3, 264, 4, 3), *kb = in(g, SMOE_TYPE_F16, 3, 264, 2, 16);
    smoe_tensor *vb = in(g, SMOE_TYPE_F16, 3, 264, 2, 16);
    assert_int_equal(smoe_attention(g, qb, kb, vb, qi, ci, ns, 0.06f, &out), SMOE_OK);
    assert_false(smoe_cuda_supports_node(out, cc));
    const int64_t big = 70000;
    smoe_tensor *xbig = in(g, SMOE_TYPE_F32, 2, 256, big, 1), *wq = in(g, SMOE_TYPE_Q4_0, 2, 256, 5, 1);
    assert_int_equal(smoe_mul_mat(g, wq, xbig, &out), SMOE_OK);
    assert_false(smoe_cuda_supports_node(out, cc));
    smoe_tensor *xid_big = in(g, SMOE_TYPE_F32, 3, 256, 1, big), *ids_big = in(g, SMOE_TYPE_I32, 2, 2, big, 1);
    assert_int_equal(smoe_mul_mat_id(g, we, xid_big, ids_big, &out), SMOE_OK);
    assert_false(smoe_cuda_supports_node(out, cc));
    smoe_tensor *rows_big = in(g, SMOE_TYPE_F32, 3, 64, 2, big), *cells_big = in(g, SMOE_TYPE_I32, 1, big, 1, 1);
    assert_int_equal(smoe_kv_write(g, kc, rows_big, cells_big, &out), SMOE_OK);
    assert_false(smoe_cuda_supports_node(out, cc));
    smoe_tensor *pos_big = in(g, SMOE_TYPE_I32, 1, big, 1, 1);
    assert_int_equal(smoe_rope(g, rows_big, pos_big, &rp, &out), SMOE_OK);
    assert_false(smoe_cuda_supports_node(out, cc));
    smoe_tensor *y_big = in(g, SMOE_TYPE_F32, 3, 64, 2, big), *l_big = in(g, SMOE_TYPE_F32, 2, 8, big, 1);
    assert_int_equal(smoe_moe_combine(g, y_big, l_big, ids_big, &out), SMOE_OK);
    assert_false(smoe_cuda_supports_node(out, cc));

    assert_false(smoe_cuda_supports_node(NULL, cc));
    smoe_graph_free(g);
}
#endif

static int g_destroyed;
static void count_destroy(void *exec, void *ud) {
    (void)exec;
    (void)ud;
    g_destroyed++;
}

static void nodes_for(smoe_cuda_node *nodes, int n, uintptr_t base) {
    memset(nodes, 0, (size_t)n * sizeof(*nodes));
    for (int i = 0; i < n; i++) {
        nodes[i].op = i;
        nodes[i].node_index = i;
        nodes[i].dst.data = (void *)(base + 256 * (uintptr_t)i);
        nodes[i].dst.ne[0] = 4096;
    }
}

/* Capture on the second identical step, replay after, invalidate on any change, LRU eviction, clear. */
static void test_launch_cache(void **state) {
    (void)state;
    smoe_lc c;
    smoe_lc_init(&c, count_destroy, NULL);
    g_destroyed = 0;
    smoe_cuda_node x[5], y[5];
    nodes_for(x, 5, 0x10000);
    nodes_for(y, 5, 0x10000);
    y[3].src[1].data = (void *)0x999; /* one argument differs */
    const int       key_a = 0, key_b = 0;
    const void     *A = &key_a, *B = &key_b;
    int             slot = -1;
    smoe_lc_action  act;
    assert_int_equal(smoe_lc_lookup(&c, A, x, 5, &slot, &act), SMOE_OK);
    assert_int_equal(act, SMOE_LC_LAUNCH); /* first time: launched directly (a prefill seen once is never captured) */
    assert_int_equal(smoe_lc_lookup(&c, A, x, 5, &slot, &act), SMOE_OK);
    assert_int_equal(act, SMOE_LC_CAPTURE);
    smoe_lc_set_exec(&c, slot, (void *)0x1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(smoe_lc_lookup(&c, A, x, 5, &slot, &act), SMOE_OK);
        assert_int_equal(act, SMOE_LC_REPLAY);
    }
    assert_int_equal(c.n_captures, 1);
    assert_int_equal(c.n_replays, 3);
    /* the caller vouching for an unchanged array: no comparison, the same answer; another count or key: not found */
    assert_true(smoe_lc_lookup_unchanged(&c, A, 5, &slot, &act));
    assert_int_equal(act, SMOE_LC_REPLAY);
    assert_int_equal(c.n_replays, 4);
    assert_false(smoe_lc_lookup_unchanged(&c, A, 4, &slot, &act));
    assert_int_equal(slot, -1);
    assert_false(smoe_lc_lookup_unchanged(&c, B, 5, &slot, &act));
    assert_false(smoe_lc_lookup_unchanged(&c, NULL, 5, &slot, &act));
    /* the same split now launches something else: the graph is destroyed, the new array starts over */
    assert_int_equal(smoe_lc_lookup(&c, A, y, 5, &slot, &act), SMOE_OK);
    assert_int_equal(act, SMOE_LC_LAUNCH);
    assert_int_equal(g_destroyed, 1);
    assert_int_equal(c.n_invalidations, 1);
    assert_int_equal(smoe_lc_lookup(&c, A, y, 4, &slot, &act), SMOE_OK); /* fewer launches: different too */
    assert_int_equal(act, SMOE_LC_LAUNCH);
    assert_int_equal(smoe_lc_lookup(&c, A, y, 4, &slot, &act), SMOE_OK);
    assert_int_equal(act, SMOE_LC_CAPTURE);
    smoe_lc_set_exec(&c, slot, NULL); /* capture failed: counted again from scratch */
    assert_int_equal(smoe_lc_lookup(&c, A, y, 4, &slot, &act), SMOE_OK);
    assert_int_equal(act, SMOE_LC_LAUNCH);
    assert_int_equal(smoe_lc_lookup(&c, A, y, 4, &slot, &act), SMOE_OK);
    assert_int_equal(act, SMOE_LC_CAPTURE);
    smoe_lc_set_exec(&c, slot, (void *)0x2);
    /* another key is independent; an empty split is fine */
    assert_int_equal(smoe_lc_lookup(&c, B, NULL, 0, &slot, &act), SMOE_OK);
    assert_int_equal(act, SMOE_LC_LAUNCH);
    assert_int_equal(smoe_lc_lookup(&c, A, y, 4, &slot, &act), SMOE_OK);
    assert_int_equal(act, SMOE_LC_REPLAY);
    /* SMOE_LC_SLOTS other keys evict A (least recently used) and its graph */
    int keys[SMOE_LC_SLOTS];
    for (int i = 0; i < SMOE_LC_SLOTS; i++) {
        assert_int_equal(smoe_lc_lookup(&c, &keys[i], x, 5, &slot, &act), SMOE_OK);
        assert_int_equal(act, SMOE_LC_LAUNCH);
    }
    assert_int_equal(g_destroyed, 2);
    assert_int_equal(smoe_lc_lookup(&c, A, y, 4, &slot, &act), SMOE_OK);
    assert_int_equal(act, SMOE_LC_LAUNCH);
    /* graphs left are destroyed by clear */
    assert_int_equal(smoe_lc_lookup(&c, &keys[5], x, 5, &slot, &act), SMOE_OK);
    assert_int_equal(act, SMOE_LC_CAPTURE);
    smoe_lc_set_exec(&c, slot, (void *)0x3);
    smoe_lc_clear(&c);
    assert_int_equal(g_destroyed, 3);
    assert_int_equal(smoe_lc_lookup(&c, NULL, x, 5, &slot, &act), SMOE_ERR_INVALID_ARGUMENT);
    assert_int_equal(smoe_lc_lookup(&c, A, NULL, 3, &slot, &act), SMOE_ERR_INVALID_ARGUMENT);
    smoe_lc_clear(&c);
}

/* The split of ATTENTION over the cells: enough warps for decode, one chunk for prefill, scratch bytes. */
static void test_attention_chunks(void **state) {
    (void)state;
    assert_int_equal(smoe_cuda_attention_chunks(32, 4096), 64);     /* decode, 32 heads: chunks of 64 cells */
    assert_int_equal(smoe_cuda_attention_chunks(32, 32768), 128);   /* ~4096 warps */
    assert_int_equal(smoe_cuda_attention_chunks(32, 100), 2);
    assert_int_equal(smoe_cuda_attention_chunks(32, 64), 1);
    assert_int_equal(smoe_cuda_attention_chunks(512 * 32, 4096), 1); /* prefill: enough warps already */
    assert_int_equal(smoe_cuda_attention_chunks(1, 1 << 20), 1024);
    assert_int_equal(smoe_cuda_attention_chunks(0, 0), 1);
    assert_int_equal(smoe_cuda_attention_scratch(32, 128, 64), (size_t)32 * 64 * 130 * 4);
    assert_int_equal(smoe_cuda_attention_scratch(32, 128, 1), 0);
    /* the query heads a warp takes: Mixtral's 32 over 8 kv heads, 4 each */
    assert_int_equal(smoe_cuda_attention_group(32, 8), 4);
    assert_int_equal(smoe_cuda_attention_group(8, 8), 1);
    assert_int_equal(smoe_cuda_attention_group(16, 2), 8);
    assert_int_equal(smoe_cuda_attention_group(32, 2), 1); /* 16 per kv head: one warp per query head */
    assert_int_equal(smoe_cuda_attention_group(12, 4), 1); /* 3 */
    assert_int_equal(smoe_cuda_attention_group(10, 4), 1); /* not a whole number */
    assert_int_equal(smoe_cuda_attention_group(4, 0), 1);
}

/* RMS_NORM's threads per row: about 4 elements each, whole warps, 32 to 1024. */
static void test_norm_threads(void **state) {
    (void)state;
    assert_int_equal(smoe_cuda_norm_threads(4096), 1024); /* Mixtral's n_embd: 4 each */
    assert_int_equal(smoe_cuda_norm_threads(512), 128);
    assert_int_equal(smoe_cuda_norm_threads(100), 32); /* 25 rounded up to a warp */
    assert_int_equal(smoe_cuda_norm_threads(132), 64); /* 33 */
    assert_int_equal(smoe_cuda_norm_threads(1), 32);
    assert_int_equal(smoe_cuda_norm_threads(0), 32);
    assert_int_equal(smoe_cuda_norm_threads(1 << 20), 1024);
}

/* Which MUL_MAT / MUL_MAT_ID kernel runs: the fast ones for activations that float4 loads can read (16-byte aligned
 * address and row strides) and weights read in whole sub-blocks (float ones: 16-byte aligned rows, k % 32 == 0), the
 * tensor-core GEMM for many columns of quantized weights. */
static void mm_node(smoe_cuda_node *n, int32_t wtype, int64_t k, int64_t cols, int64_t n2, uintptr_t x_addr,
                    int64_t x_nb1) {
    memset(n, 0, sizeof(*n));
    n->src[0].type = wtype;
    n->src[0].ne[0] = k;
    n->src[0].ne[1] = 100;
    n->src[1].type = SMOE_CUDA_F32;
    n->src[1].data = (void *)x_addr;
    const int64_t ne[4] = {k, cols, n2, 1};
    int64_t nb = 4;
    for (int i = 0; i < 4; i++) {
        n->src[1].ne[i] = ne[i];
        n->src[1].nb[i] = i == 0 ? 4 : (i == 1 ? x_nb1 : nb);
        nb = n->src[1].nb[i] * ne[i];
    }
}

static void test_mm_path(void **state) {
    (void)state;
    smoe_cuda_node n;
    int scratch = 0;
    for (int64_t cols = 1; cols <= 40; cols++) { /* decode batches on the GEMV, 32 columns and more on tensor cores */
        mm_node(&n, SMOE_CUDA_Q4_K, 256, cols, 1, 0x10000, 256 * 4);
        const smoe_cuda_mm_path want = cols >= SMOE_CUDA_MMQ_MIN_COLS ? SMOE_CUDA_MM_MMQ : SMOE_CUDA_MM_GEMV;
        assert_int_equal(smoe_cuda_mm_path_want(&n, 0), want);
        assert_int_equal(smoe_cuda_mm_path_of(&n, 0), SMOE_CUDA_MM_GEMV); /* without its scratch */
        /* the scratch: the activations as f16, no lists */
        assert_int_equal(smoe_cuda_mmq_scratch(&n, 0), want == SMOE_CUDA_MM_MMQ ? (size_t)(256 * cols * 2) : 0);
        n.scratch = &scratch;
        assert_int_equal(smoe_cuda_mm_path_of(&n, 0), want);
    }
    mm_node(&n, SMOE_CUDA_Q4_0, 256, 40, 2, 0x10000, 256 * 4); /* several batch matrices: the GEMV */
    assert_int_equal(smoe_cuda_mm_path_of(&n, 0), SMOE_CUDA_MM_GEMV);
    mm_node(&n, SMOE_CUDA_Q4_0, 256, 3, 1, 0x10004, 256 * 4); /* a view 4 bytes in: no float4 loads */
    assert_int_equal(smoe_cuda_mm_path_of(&n, 0), SMOE_CUDA_MM_REF);
    mm_node(&n, SMOE_CUDA_Q4_0, 256, 3, 1, 0x10000, 257 * 4); /* rows 1028 bytes apart */
    assert_int_equal(smoe_cuda_mm_path_of(&n, 0), SMOE_CUDA_MM_REF);
    mm_node(&n, SMOE_CUDA_Q8_0, 64, 3, 3, 0x10000, 68 * 4); /* aligned rows, 3 x 272-byte matrices: aligned */
    assert_int_equal(smoe_cuda_mm_path_of(&n, 0), SMOE_CUDA_MM_GEMV);
    mm_node(&n, SMOE_CUDA_Q8_0, 64, 3, 3, 0x10000, 68 * 4);
    n.src[1].nb[2] = 3 * 68 * 4 + 4; /* a matrix stride that is not */
    assert_int_equal(smoe_cuda_mm_path_of(&n, 0), SMOE_CUDA_MM_REF);
    const int32_t plain[] = {SMOE_CUDA_F32, SMOE_CUDA_F16, SMOE_CUDA_BF16}; /* the GEMV, never the tensor cores */
    for (int i = 0; i < 3; i++) {
        mm_node(&n, plain[i], 256, 40, 1, 0x10000, 256 * 4);
        n.src[0].nb[1] = 256 * 4;
        assert_int_equal(smoe_cuda_mm_path_of(&n, 0), SMOE_CUDA_MM_GEMV);
        n.src[0].nb[1] = 264; /* rows not 16-byte aligned (132 F16 elements) */
        assert_int_equal(smoe_cuda_mm_path_of(&n, 0), SMOE_CUDA_MM_REF);
        n.src[0].nb[1] = 256 * 4;
        n.src[0].data = (void *)0x20008; /* nor the matrix */
        assert_int_equal(smoe_cuda_mm_path_of(&n, 0), SMOE_CUDA_MM_REF);
        mm_node(&n, plain[i], 272, 1, 1, 0x10000, 272 * 4); /* k not a multiple of 32 */
        assert_int_equal(smoe_cuda_mm_path_of(&n, 0), SMOE_CUDA_MM_REF);
        mm_node(&n, plain[i], 256, 1, 40, 0x10000, 256 * 4); /* experts: their stride counts too */
        n.src[0].nb[1] = 512;
        n.src[0].nb[2] = 512 * 100 + 8;
        n.src[2].ne[0] = 2;
        n.src[2].ne[1] = 40;
        n.scratch = &n;
        assert_int_equal(smoe_cuda_mm_path_of(&n, 1), SMOE_CUDA_MM_REF);
        n.src[0].nb[2] = 512 * 100;
        assert_int_equal(smoe_cuda_mm_path_of(&n, 1), SMOE_CUDA_MM_GEMV);
        assert_int_equal(smoe_cuda_mm_path_of(&n, 0), SMOE_CUDA_MM_GEMV); /* a dense product ignores nb[2] */
    }
    mm_node(&n, SMOE_CUDA_Q6_K, 256, 40, 1, 0x10000, 256 * 4);
    n.simple = 1; /* SMOE_CUDA_SIMPLE=1 */
    assert_int_equal(smoe_cuda_mm_path_of(&n, 0), SMOE_CUDA_MM_REF);

    /* MUL_MAT_ID: x [k, 1, n_tokens], ids [2, n_tokens]; the GEMM needs 32 pairs and the pair-list scratch */
    for (int64_t t = 1; t <= 20; t++) {
        mm_node(&n, SMOE_CUDA_Q4_0, 256, 1, t, 0x10000, 256 * 4);
        n.src[2].type = SMOE_CUDA_I32;
        n.src[2].ne[0] = 2;
        n.src[2].ne[1] = t;
        assert_int_equal(smoe_cuda_mm_path_of(&n, 1), SMOE_CUDA_MM_GEMV); /* no scratch */
        n.scratch = &scratch;
        const smoe_cuda_mm_path want = 2 * t >= SMOE_CUDA_MMQ_MIN_COLS ? SMOE_CUDA_MM_MMQ : SMOE_CUDA_MM_GEMV;
        assert_int_equal(smoe_cuda_mm_path_of(&n, 1), want);
        n.src[0].ne[2] = 8; /* experts: 8 counts and 8 lists of 2 t pairs, then t columns of f16 */
        const size_t lists = ((size_t)8 * (size_t)(2 * t + 1) * 4 + 255) / 256 * 256;
        assert_int_equal(smoe_cuda_mmq_scratch(&n, 1), want == SMOE_CUDA_MM_MMQ ? lists + (size_t)(256 * t * 2) : 0);
        n.src[1].data = (void *)0x10008;
        assert_int_equal(smoe_cuda_mm_path_of(&n, 1), SMOE_CUDA_MM_REF);
    }
}

/* The int8 decode GEMV's scratch (smoe_cuda_gemvq_scratch): one quantized column per (token, slot) for its weight
 * types, k up to its limit, rows it may read in its loads; nothing for the other paths. */
static void test_gemvq_scratch(void **state) {
    (void)state;
    smoe_cuda_node n;
    const size_t col = smoe_cuda_q8_column_bytes(4096);
    assert_int_equal(col, 4096 + 128 * 8);
    assert_int_equal(smoe_cuda_q8_column_bytes(32), 48); /* 40, padded to 16 */
    const int32_t yes[] = {SMOE_CUDA_Q4_0, SMOE_CUDA_Q8_0, SMOE_CUDA_Q4_K, SMOE_CUDA_Q5_K, SMOE_CUDA_Q6_K};
    for (int i = 0; i < 5; i++) {
        mm_node(&n, yes[i], 4096, 1, 3, 0x10000, 4096 * 4);
        n.src[0].data = (void *)0x20000;
        n.src[0].nb[1] = 4096;
        assert_int_equal(smoe_cuda_gemvq_scratch(&n, 0), 3 * col);
        n.src[0].data = (void *)0x20004; /* 4-byte aligned rows: Q4_0/Q8_0 (aligned 32-bit loads), Q6_K */
        const int kq = yes[i] == SMOE_CUDA_Q4_K || yes[i] == SMOE_CUDA_Q5_K, q6 = yes[i] == SMOE_CUDA_Q6_K;
        assert_int_equal(smoe_cuda_gemvq_scratch(&n, 0), kq ? 0 : 3 * col);
        n.src[0].data = (void *)0x20002; /* 2-byte aligned rows: Q6_K only */
        assert_int_equal(smoe_cuda_gemvq_scratch(&n, 0), q6 ? 3 * col : 0);
        n.src[0].data = (void *)0x20000;
        n.src[0].nb[1] = 4096 + 18; /* a row stride that is not a multiple of 4: the same */
        assert_int_equal(smoe_cuda_gemvq_scratch(&n, 0), q6 ? 3 * col : 0);
        n.src[0].data = (void *)0x20001;
        assert_int_equal(smoe_cuda_gemvq_scratch(&n, 0), 0);
    }
    const int32_t no[] = {SMOE_CUDA_F32, SMOE_CUDA_F16, SMOE_CUDA_Q4_1, SMOE_CUDA_Q5_0, SMOE_CUDA_Q5_1};
    for (int i = 0; i < 5; i++) {
        mm_node(&n, no[i], 4096, 1, 1, 0x10000, 4096 * 4);
        assert_int_equal(smoe_cuda_gemvq_scratch(&n, 0), 0);
    }
    mm_node(&n, SMOE_CUDA_Q4_0, SMOE_CUDA_GEMVQ_MAX_K + 32, 1, 1, 0x10000, (SMOE_CUDA_GEMVQ_MAX_K + 32) * 4);
    assert_int_equal(smoe_cuda_gemvq_scratch(&n, 0), 0); /* k past the limit */
    mm_node(&n, SMOE_CUDA_Q4_0, 4096, 2, 1, 0x10000, 4096 * 4);
    assert_int_equal(smoe_cuda_gemvq_scratch(&n, 0), 0); /* two columns: the multi-column GEMV */
    mm_node(&n, SMOE_CUDA_Q4_0, 4096, 1, 1, 0x10004, 4096 * 4);
    assert_int_equal(smoe_cuda_gemvq_scratch(&n, 0), 0); /* activations float4 loads can not read */
    mm_node(&n, SMOE_CUDA_Q4_0, 4096, 1, 1, 0x10000, 4096 * 4);
    n.simple = 1;
    assert_int_equal(smoe_cuda_gemvq_scratch(&n, 0), 0);
    /* MUL_MAT_ID: x [k, slots, tokens] (down: a column per slot) or [k, 1, tokens] (gate, up: shared); the pair
     * lists' scratch present or not, the GEMV below 32 pairs */
    int scratch = 0;
    for (int64_t t = 1; t <= 20; t++)
        for (int64_t xs = 1; xs <= 2; xs++) {
            mm_node(&n, SMOE_CUDA_Q4_K, 4096, xs, t, 0x10000, 4096 * 4);
            n.src[2].type = SMOE_CUDA_I32;
            n.src[2].ne[0] = 2;
            n.src[2].ne[1] = t;
            const size_t want = 2 * t < SMOE_CUDA_MMQ_MIN_COLS ? (size_t)(xs * t) * col : 0;
            assert_int_equal(smoe_cuda_gemvq_scratch(&n, 1), want);
            n.scratch = &scratch;
            assert_int_equal(smoe_cuda_gemvq_scratch(&n, 1), want);
        }
}

/* RMS_NORM / SWIGLU rows against the int8 GEMV columns of the node that reads them (smoe_cuda_q8_rows_match) */
static smoe_cuda_tensor f32_rows(uintptr_t addr, int64_t k, int64_t n1, int64_t n2) {
    smoe_cuda_tensor t;
    memset(&t, 0, sizeof(t));
    t.data = (void *)addr;
    t.type = SMOE_CUDA_F32;
    const int64_t ne[4] = {k, n1, n2, 1};
    int64_t       nb = 4;
    for (int i = 0; i < 4; i++) {
        t.ne[i] = ne[i];
        t.nb[i] = nb;
        nb *= ne[i];
    }
    return t;
}

static void test_q8_rows_match(void **state) {
    (void)state;
    smoe_cuda_node c;
    smoe_cuda_tensor r = f32_rows(0x10000, 4096, 1, 1); /* one token's norm */
    mm_node(&c, SMOE_CUDA_Q4_0, 4096, 1, 1, 0x10000, 4096 * 4);
    assert_true(smoe_cuda_q8_rows_match(&r, &c, 0));
    c.src[1].data = (void *)0x20000; /* another tensor */
    assert_false(smoe_cuda_q8_rows_match(&r, &c, 0));
    r = f32_rows(0x10000, 4096, 3, 1); /* 3 tokens as [k, 3]; the dense GEMV reads [k, 1, 3] */
    mm_node(&c, SMOE_CUDA_Q4_0, 4096, 1, 3, 0x10000, 4096 * 4);
    assert_true(smoe_cuda_q8_rows_match(&r, &c, 0));
    mm_node(&c, SMOE_CUDA_Q4_0, 4096, 3, 1, 0x10000, 4096 * 4); /* [k, 3]: the multi-column GEMV, no int8 */
    assert_false(smoe_cuda_q8_rows_match(&r, &c, 0));
    assert_true(smoe_cuda_q8_rows_match(&r, &c, 1)); /* MUL_MAT_ID's per-slot columns: slot + 3 token */
    r = f32_rows(0x10000, 4096, 2, 3); /* SWIGLU [n_ff, 2 slots, 3 tokens] */
    mm_node(&c, SMOE_CUDA_Q4_0, 4096, 2, 3, 0x10000, 4096 * 4);
    assert_true(smoe_cuda_q8_rows_match(&r, &c, 1));
    mm_node(&c, SMOE_CUDA_Q4_0, 4096, 1, 6, 0x10000, 4096 * 4); /* the same 6 rows read as [k, 1, 6] */
    assert_true(smoe_cuda_q8_rows_match(&r, &c, 1));
    mm_node(&c, SMOE_CUDA_Q4_0, 4096, 1, 5, 0x10000, 4096 * 4); /* 5 of them */
    assert_false(smoe_cuda_q8_rows_match(&r, &c, 1));
    r = f32_rows(0x10000, 4096, 2, 3);
    r.nb[2] += 64; /* padded rows */
    r.nb[3] = r.nb[2] * 3;
    mm_node(&c, SMOE_CUDA_Q4_0, 4096, 2, 3, 0x10000, 4096 * 4);
    assert_false(smoe_cuda_q8_rows_match(&r, &c, 1));
    r = f32_rows(0x10000, 80, 1, 1); /* groups of 32 do not divide 80 */
    mm_node(&c, SMOE_CUDA_Q8_0, 80, 1, 1, 0x10000, 80 * 4);
    assert_false(smoe_cuda_q8_rows_match(&r, &c, 0));
}

/* byte overlap of f32 tensors */
static void test_overlap(void **state) {
    (void)state;
    smoe_cuda_tensor a = f32_rows(0x1000, 64, 3, 1), b = f32_rows(0x1000 + 64 * 3 * 4, 64, 1, 1);
    assert_false(smoe_cuda_overlap4(&a, &b));
    b.data = (void *)(0x1000 + 64 * 3 * 4 - 4);
    assert_true(smoe_cuda_overlap4(&a, &b));
    assert_true(smoe_cuda_overlap4(&b, &a));
    b.data = (void *)0xf00;
    assert_false(smoe_cuda_overlap4(&a, &b)); /* [0xf00, 0x1000) */
    b.ne[0] = 65;
    assert_true(smoe_cuda_overlap4(&a, &b));
}

#if SMOE_HAVE_CUDA
/* which launches share work (smoe_cuda_plan_fusion): the GEMV after one reading the same tensor reuses its columns,
 * an RMS_NORM / SWIGLU writes the columns of a GEMV up to 4 launches on (nothing across a launch that uses scratch),
 * consecutive GEMVs of the same columns are one launch (not where their results overlap), a projection does the
 * residual ADD after it, K's RoPE the KV_WRITEs of K and V, the router the MOE_ROUTE; ATTENTION writes the output
 * projection's columns after its own scratch and does q's RoPE */
static void plan_gemv(smoe_cuda_node *n, uintptr_t x) {
    mm_node(n, SMOE_CUDA_Q4_0, 4096, 1, 1, x, 4096 * 4);
    n->op = SMOE_OP_MUL_MAT;
    n->src[0].data = (void *)0x800000;
    n->src[0].nb[1] = 4096;
}

static void test_plan_fusion(void **state) {
    (void)state;
    int           scratch;
    smoe_cuda_node nd[8];
    memset(nd, 0, sizeof(nd));
    nd[0].op = SMOE_OP_RMS_NORM;
    nd[0].dst = f32_rows(0x10000, 4096, 1, 1);
    plan_gemv(&nd[1], 0x10000); /* k */
    plan_gemv(&nd[2], 0x10000); /* v */
    plan_gemv(&nd[3], 0x10000); /* q */
    nd[1].dst = f32_rows(0x100000, 1024, 1, 1);
    nd[2].dst = f32_rows(0x200000, 1024, 1, 1);
    nd[3].dst = f32_rows(0x300000, 4096, 1, 1);
    smoe_cuda_plan_fusion(nd, 4, 1, &scratch);
    assert_ptr_equal(nd[0].q8_out, &scratch);
    assert_true(nd[1].q8_ready && nd[2].q8_ready && nd[3].q8_ready);
    assert_int_equal(nd[1].n_more, 2); /* k does v and q */
    assert_ptr_equal(nd[1].more_w[1].data, nd[3].src[0].data);
    assert_ptr_equal(nd[1].more_dst[0].data, nd[2].dst.data);
    assert_int_equal(nd[2].n_more + nd[3].n_more, 0);
    nd[3].src[0].type = SMOE_CUDA_Q8_0; /* q of another type: k and v only */
    smoe_cuda_plan_fusion(nd, 4, 1, &scratch);
    assert_int_equal(nd[1].n_more, 1);
    assert_int_equal(nd[3].n_more, 0);
    nd[3].src[0].type = SMOE_CUDA_Q4_0;
    nd[2].dst = f32_rows(0x100000 + 512, 1024, 1, 1); /* v's result over k's (k's dead): not one launch */
    smoe_cuda_plan_fusion(nd, 4, 1, &scratch);
    assert_int_equal(nd[1].n_more, 0);
    assert_int_equal(nd[2].n_more, 1); /* v and q still */
    smoe_cuda_plan_fusion(nd, 4, 0, &scratch); /* no fusion: the first GEMV quantizes, the others reuse */
    assert_null(nd[0].q8_out);
    assert_true(!nd[1].q8_ready && nd[2].q8_ready && nd[3].q8_ready);
    assert_int_equal(nd[1].n_more + nd[2].n_more, 0);
    /* the FFN: norm, router (no scratch), route, then the GEMV 3 launches on */
    memset(&nd[1], 0, 3 * sizeof(nd[1]));
    nd[1].op = SMOE_OP_MUL_MAT;
    nd[2].op = SMOE_OP_MOE_ROUTE;
    plan_gemv(&nd[3], 0x10000);
    smoe_cuda_plan_fusion(nd, 4, 1, &scratch);
    assert_ptr_equal(nd[0].q8_out, &scratch);
    assert_true(nd[3].q8_ready);
    /* an ATTENTION using scratch between: its partial results would overwrite the columns */
    nd[2].op = SMOE_OP_ATTENTION;
    nd[2].i[2] = 4;
    nd[2].src[0] = f32_rows(0x40000, 128, 32, 1);
    smoe_cuda_plan_fusion(nd, 4, 1, &scratch);
    assert_null(nd[0].q8_out);
    assert_false(nd[3].q8_ready);
    /* too far: 5 launches on */
    memset(&nd[1], 0, 7 * sizeof(nd[1]));
    for (int i = 1; i < 5; i++) nd[i].op = SMOE_OP_ADD;
    plan_gemv(&nd[5], 0x10000);
    smoe_cuda_plan_fusion(nd, 6, 1, &scratch);
    assert_null(nd[0].q8_out);
    assert_false(nd[5].q8_ready);
    /* a SWIGLU's rows; the reference kernels (simple) never fuse */
    nd[4].op = SMOE_OP_SWIGLU;
    nd[4].dst = f32_rows(0x10000, 4096, 1, 1);
    smoe_cuda_plan_fusion(nd, 6, 1, &scratch);
    assert_ptr_equal(nd[4].q8_out, &scratch);
    assert_true(nd[5].q8_ready);
    nd[4].simple = 1;
    smoe_cuda_plan_fusion(nd, 6, 1, &scratch);
    assert_null(nd[4].q8_out);
    assert_false(nd[5].q8_ready);
    /* a GEMV reading another tensor */
    nd[4].simple = 0;
    nd[5].src[1].data = (void *)0x20000;
    smoe_cuda_plan_fusion(nd, 6, 1, &scratch);
    assert_null(nd[4].q8_out);

    /* a projection y = W a [4096, 1], then x + y: one launch; y + x too; in place over x too */
    memset(nd, 0, sizeof(nd));
    plan_gemv(&nd[0], 0x10000);
    nd[0].dst = f32_rows(0x100000, 100, 1, 1);
    nd[1].op = SMOE_OP_ADD;
    nd[1].src[0] = f32_rows(0x200000, 100, 1, 1);
    nd[1].src[1] = nd[0].dst;
    nd[1].dst = f32_rows(0x300000, 100, 1, 1);
    smoe_cuda_plan_fusion(nd, 2, 1, &scratch);
    assert_int_equal(nd[0].add, 1);
    assert_ptr_equal(nd[0].add_r.data, (void *)0x200000);
    assert_ptr_equal(nd[0].add_out.data, (void *)0x300000);
    nd[1].src[1] = nd[1].src[0];
    nd[1].src[0] = nd[0].dst;
    nd[1].dst = nd[1].src[1];
    smoe_cuda_plan_fusion(nd, 2, 1, &scratch);
    assert_int_equal(nd[0].add, 1);
    nd[1].dst = f32_rows(0x200000 + 8, 100, 1, 1); /* over x, shifted: rows would read sums */
    smoe_cuda_plan_fusion(nd, 2, 1, &scratch);
    assert_int_equal(nd[0].add, 0);
    nd[1].dst = f32_rows(0x300000, 100, 1, 1);
    nd[1].src[1] = f32_rows(0x200000, 1, 1, 1); /* x broadcast: not this kernel's */
    smoe_cuda_plan_fusion(nd, 2, 1, &scratch);
    assert_int_equal(nd[0].add, 0);
    nd[1].src[1] = f32_rows(0x200000, 100, 1, 1);
    nd[1].src[0] = f32_rows(0x100000 + 4, 99, 1, 1); /* not the product */
    smoe_cuda_plan_fusion(nd, 2, 1, &scratch);
    assert_int_equal(nd[0].add, 0);
    nd[1].src[0] = nd[0].dst;
    smoe_cuda_plan_fusion(nd, 2, 1, &scratch);
    assert_int_equal(nd[0].add, 1);
    smoe_cuda_plan_fusion(nd, 2, 0, &scratch);
    assert_int_equal(nd[0].add, 0);
    nd[0].simple = 1; /* the reference kernels: not the int8 GEMV */
    smoe_cuda_plan_fusion(nd, 2, 1, &scratch);
    assert_int_equal(nd[0].add, 0);

    /* ROPE of k [128, 8, 1], KV_WRITE of its result, KV_WRITE of v at the same cells: one launch */
    memset(nd, 0, sizeof(nd));
    nd[0].op = SMOE_OP_ROPE;
    nd[0].src[0] = f32_rows(0x10000, 128, 8, 1);
    nd[0].dst = f32_rows(0x20000, 128, 8, 1);
    nd[1].op = SMOE_OP_KV_WRITE;
    nd[1].src[0] = f32_rows(0x100000, 128, 8, 64); /* the caches */
    nd[1].src[1] = nd[0].dst;
    nd[1].src[2] = f32_rows(0x30000, 1, 1, 1);
    nd[2] = nd[1];
    nd[2].src[0] = f32_rows(0x200000, 128, 8, 64);
    nd[2].src[1] = f32_rows(0x40000, 128, 8, 1);
    smoe_cuda_plan_fusion(nd, 3, 1, &scratch);
    assert_int_equal(nd[0].kv_write, 2);
    assert_ptr_equal(nd[0].kv_cache.data, (void *)0x100000);
    assert_ptr_equal(nd[0].kv2_cache.data, (void *)0x200000);
    assert_ptr_equal(nd[0].kv2_rows.data, (void *)0x40000);
    nd[2].src[2].data = (void *)0x30100; /* v at other cells: K alone */
    smoe_cuda_plan_fusion(nd, 3, 1, &scratch);
    assert_int_equal(nd[0].kv_write, 1);
    nd[2].src[2] = nd[1].src[2];
    nd[2].src[1].data = (void *)(0x20000 + 64); /* v's rows under the RoPE result: K alone */
    smoe_cuda_plan_fusion(nd, 3, 1, &scratch);
    assert_int_equal(nd[0].kv_write, 1);
    nd[2].src[1].data = (void *)0x40000;
    nd[1].src[1].data = (void *)0x50000; /* K's rows not the RoPE's result */
    smoe_cuda_plan_fusion(nd, 3, 1, &scratch);
    assert_int_equal(nd[0].kv_write, 0);
    nd[1].src[1] = nd[0].dst;
    nd[0].simple = 1;
    smoe_cuda_plan_fusion(nd, 3, 1, &scratch);
    assert_int_equal(nd[0].kv_write, 0);
    nd[0].simple = 0;
    smoe_cuda_plan_fusion(nd, 3, 0, &scratch);
    assert_int_equal(nd[0].kv_write, 0);
    smoe_cuda_plan_fusion(nd, 2, 1, &scratch); /* the split ends after K's write */
    assert_int_equal(nd[0].kv_write, 1);

    /* the router (F32 [4096, 8]) on one token, then MOE_ROUTE of its logits: one launch */
    memset(nd, 0, sizeof(nd));
    mm_node(&nd[0], SMOE_CUDA_F32, 4096, 1, 1, 0x10000, 4096 * 4);
    nd[0].op = SMOE_OP_MUL_MAT;
    nd[0].src[0].ne[1] = 8;
    nd[0].src[0].data = (void *)0x800000;
    nd[0].src[0].nb[1] = 4096 * 4;
    nd[0].dst = f32_rows(0x20000, 8, 1, 1);
    nd[1].op = SMOE_OP_MOE_ROUTE;
    nd[1].src[0] = nd[0].dst;
    nd[1].dst = f32_rows(0x30000, 2, 1, 1);
    nd[1].dst.type = SMOE_CUDA_I32;
    nd[1].i[0] = 2;
    smoe_cuda_plan_fusion(nd, 2, 1, &scratch);
    assert_int_equal(nd[0].route_n_used, 2);
    assert_ptr_equal(nd[0].route_ids.data, (void *)0x30000);
    nd[1].dst.data = (void *)0x20004; /* the ids over the logits */
    smoe_cuda_plan_fusion(nd, 2, 1, &scratch);
    assert_int_equal(nd[0].route_n_used, 0);
    nd[1].dst.data = (void *)0x30000;
    nd[0].src[0].ne[1] = 129; /* more experts than the route warp holds */
    smoe_cuda_plan_fusion(nd, 2, 1, &scratch);
    assert_int_equal(nd[0].route_n_used, 0);
    nd[0].src[0].ne[1] = 8;
    nd[0].src[0].type = SMOE_CUDA_Q8_0; /* a quantized router: the int8 GEMV's arithmetic, not fused */
    smoe_cuda_plan_fusion(nd, 2, 1, &scratch);
    assert_int_equal(nd[0].route_n_used, 0);
    nd[0].src[0].type = SMOE_CUDA_F16;
    smoe_cuda_plan_fusion(nd, 2, 1, &scratch);
    assert_int_equal(nd[0].route_n_used, 2);
    nd[1].simple = 1;
    smoe_cuda_plan_fusion(nd, 2, 1, &scratch);
    assert_int_equal(nd[0].route_n_used, 0);
    nd[1].simple = 0;
    smoe_cuda_plan_fusion(nd, 2, 0, &scratch);
    assert_int_equal(nd[0].route_n_used, 0);

    /* ATTENTION [128, 32, 1] in 16 chunks, then the output projection W [4096, 4096] of its rows: the columns go
     * after the attention's partial results in the scratch, and the plan asks for both */
    static uint8_t buf[1 << 20];
    memset(nd, 0, sizeof(nd));
    nd[0].op = SMOE_OP_ATTENTION;
    nd[0].src[0] = f32_rows(0x10000, 128, 32, 1);
    nd[0].dst = f32_rows(0x40000, 128, 32, 1);
    nd[0].i[2] = 16;
    plan_gemv(&nd[1], 0x40000);
    nd[1].dst = f32_rows(0x80000, 4096, 1, 1);
    const size_t partials = smoe_cuda_attention_scratch(32, 128, 16), col = smoe_cuda_q8_column_bytes(4096);
    const size_t off = (partials + 255) / 256 * 256;
    assert_int_equal(smoe_cuda_plan_fusion(nd, 2, 1, buf), off + col);
    assert_ptr_equal(nd[0].q8_out, buf + off);
    assert_ptr_equal(nd[1].scratch, buf + off);
    assert_true(nd[1].q8_ready);
    assert_int_equal(smoe_cuda_plan_fusion(nd, 2, 0, buf), partials); /* without fusion: the larger of the two */
    assert_null(nd[0].q8_out);
    nd[0].i[2] = 1; /* one chunk: no partial results, the columns at the start */
    assert_int_equal(smoe_cuda_plan_fusion(nd, 2, 1, buf), col);
    assert_ptr_equal(nd[0].q8_out, buf);
    nd[0].dst = f32_rows(0x40000, 16, 32, 1); /* head_dim 16: a warp's 32 elements span two heads */
    nd[1].src[1].ne[0] = 512;
    assert_int_equal(smoe_cuda_plan_fusion(nd, 2, 1, buf), smoe_cuda_gemvq_scratch(&nd[1], 0));
    assert_null(nd[0].q8_out);

    /* ROPE of q [128, 32, 1], then the ATTENTION of its result: the attention rotates q */
    memset(nd, 0, sizeof(nd));
    nd[0].op = SMOE_OP_ROPE;
    nd[0].src[0] = f32_rows(0x10000, 128, 32, 1);
    nd[0].src[1] = f32_rows(0x20000, 1, 1, 1);
    nd[0].dst = f32_rows(0x30000, 128, 32, 1);
    nd[0].i[0] = 128;
    nd[0].f[0] = 1e6f;
    nd[0].f[1] = 1.0f;
    nd[1].op = SMOE_OP_ATTENTION;
    nd[1].src[0] = nd[0].dst;
    nd[1].dst = f32_rows(0x40000, 128, 32, 1);
    nd[1].f[0] = 0.088f;
    smoe_cuda_plan_fusion(nd, 2, 1, buf);
    assert_true(nd[0].rope_q && nd[1].rope_q);
    assert_ptr_equal(nd[1].rope_src.data, (void *)0x10000);
    assert_ptr_equal(nd[1].rope_pos.data, (void *)0x20000);
    assert_int_equal(nd[1].i[0], 128);
    assert_true(nd[1].f[1] == 1e6f && nd[1].f[2] == 1.0f && nd[1].f[0] == 0.088f);
    nd[1].dst.data = (void *)0x10000; /* the attention's result over the ROPE's input (dead after the ROPE) */
    smoe_cuda_plan_fusion(nd, 2, 1, buf);
    assert_false(nd[0].rope_q || nd[1].rope_q);
    assert_int_equal(nd[1].i[0], 0);
    nd[1].dst.data = (void *)0x40000;
    nd[1].src[0].data = (void *)0x50000; /* q not the ROPE's result */
    smoe_cuda_plan_fusion(nd, 2, 1, buf);
    assert_false(nd[0].rope_q || nd[1].rope_q);
    nd[1].src[0] = nd[0].dst;
    smoe_cuda_plan_fusion(nd, 2, 0, buf);
    assert_false(nd[0].rope_q || nd[1].rope_q);
}

#endif

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
#if SMOE_HAVE_CUDA
        cmocka_unit_test(test_supports),
#endif
        cmocka_unit_test(test_launch_cache),
        cmocka_unit_test(test_attention_chunks),
        cmocka_unit_test(test_norm_threads),
        cmocka_unit_test(test_mm_path),
        cmocka_unit_test(test_gemvq_scratch),
        cmocka_unit_test(test_q8_rows_match),
        cmocka_unit_test(test_overlap),
#if SMOE_HAVE_CUDA
        cmocka_unit_test(test_plan_fusion),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
