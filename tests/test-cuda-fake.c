/*
 * test-cuda-fake.c - the CUDA backend's host side (backends/cuda/cuda-backend.c, unchanged) on the CPU stand-in for
 * the CUDA runtime and the kernels in tests/cuda-fake: device discovery, buffers and transfers (the staging memory,
 * the pinned chunk ring of large uploads, queued downloads), index errors reported through the device error word,
 * scratch memory, CUDA-graph capture and replay over whole decode steps, a model split between the "GPU" and host
 * memory, and running out of device memory. Kernels are the CPU's here (tests/cuda-fake/fake-launch.c), so the model
 * results must match the CPU backend's; what differs is everything around them. The fake keeps CUDA's ordering rules
 * (queued streams, copies from pinned memory read when they run, nothing runs during capture), checked first.
 *
 * Built with SMOE_TEST_CUDA_EMU (test-cuda-emu), the kernels are the real ones on the emulator of tests/cuda-emu:
 * they keep activations in f32 where the CPU quantizes them, so a model's logits agree with the CPU's to about 1%
 * and a greedy run may take another token at a near tie. There the first step's logits are compared with the CPU's
 * within 3%, and a decode step replayed from a CUDA graph must give exactly what the same kernels launched directly
 * give.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "backends/cuda/cuda-backend.h"
#include "core/backend-impl.h"
#include "cuda-fake/fake-cuda.h"
#include "graph-test-util.h"
#include "device-test-util.h"
#include "synthetic-run.h"
#include "smoe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NE(...) ((const int64_t[]){__VA_ARGS__})

static smoe_backend *cuda_open(void) {
    smoe_backend *b = NULL;
    const smoe_status st = smoe_cuda_backend_init(0, &b);
    if (st != SMOE_OK) fail_msg("cuda0 on the fake runtime: %s", smoe_last_error());
    return b;
}

/* ---- the fake itself: CUDA's ordering, so that host code relying on anything else fails ---- */

static void test_fake_ordering(void **state) {
    (void)state;
    cudaStream_t s = NULL;
    assert_int_equal(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    uint8_t *pinned = NULL, *pinned2 = NULL, *dev = NULL, page[4] = {1, 2, 3, 4}, back[4] = {0};
    assert_int_equal(cudaMallocHost((void **)&pinned, 4), cudaSuccess);
    assert_int_equal(cudaMallocHost((void **)&pinned2, 4), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&dev, 8), cudaSuccess);
    /* from pinned memory: read when the copy runs, so refilling it before then changes what arrives */
    memcpy(pinned, "AAAA", 4);
    assert_int_equal(cudaMemcpyAsync(dev, pinned, 4, cudaMemcpyHostToDevice, s), cudaSuccess);
    memcpy(pinned, "BBBB", 4);
    /* from pageable memory: read at the call */
    assert_int_equal(cudaMemcpyAsync(dev + 4, page, 4, cudaMemcpyHostToDevice, s), cudaSuccess);
    page[0] = 99;
    /* to pinned memory: not there before the stream runs */
    memset(pinned2, 0, 4);
    assert_int_equal(cudaMemcpyAsync(pinned2, dev + 4, 4, cudaMemcpyDeviceToHost, s), cudaSuccess);
    assert_int_equal(pinned2[0], 0);
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    assert_memory_equal(pinned2, ((const uint8_t[]){1, 2, 3, 4}), 4);
    /* to pageable memory: done at return */
    assert_int_equal(cudaMemcpyAsync(back, dev, 4, cudaMemcpyDeviceToHost, s), cudaSuccess);
    assert_memory_equal(back, "BBBB", 4);
    /* capture: nothing runs, pageable copies are refused; a replay runs the captured work again */
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaMemsetAsync(dev, 7, 2, s), cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(dev, page, 4, cudaMemcpyHostToDevice, s), cudaErrorStreamCaptureUnsupported);
    assert_int_equal(cudaGetLastError(), cudaErrorStreamCaptureUnsupported);
    assert_int_equal(cudaStreamEndCapture(s, &graph), cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(back, dev, 4, cudaMemcpyDeviceToHost, s), cudaSuccess);
    assert_memory_equal(back, "BBBB", 4);
    assert_int_equal(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    assert_int_equal(cudaGraphLaunch(exec, s), cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(back, dev, 4, cudaMemcpyDeviceToHost, s), cudaSuccess);
    assert_memory_equal(back, ((const uint8_t[]){7, 7, 'B', 'B'}), 4);
    /* fresh device memory is not zeroed */
    uint8_t *fresh = NULL;
    assert_int_equal(cudaMalloc((void **)&fresh, 4), cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(back, fresh, 4, cudaMemcpyDeviceToHost, s), cudaSuccess);
    assert_memory_equal(back, ((const uint8_t[]){0xff, 0xff, 0xff, 0xff}), 4);
    (void)cudaGraphExecDestroy(exec);
    (void)cudaGraphDestroy(graph);
    (void)cudaFree(fresh);
    (void)cudaFree(dev);
    (void)cudaFreeHost(pinned);
    (void)cudaFreeHost(pinned2);
    (void)cudaStreamDestroy(s);
}

/* ---- device and transfers ---- */

static void test_device(void **state) {
    (void)state;
    assert_int_equal(smoe_cuda_device_count(), 1);
    smoe_backend *b = NULL;
    assert_int_equal(smoe_backend_init_by_name("cuda", 0, &b), SMOE_OK);
    assert_true(smoe_backend_is_cuda(b));
    assert_string_equal(smoe_backend_name(b), "cuda0");
    smoe_backend_props p;
    smoe_backend_get_props(b, &p);
    assert_false(p.host_memory);
    assert_int_equal(p.memory_total, (uint64_t)8 << 30);
    assert_non_null(strstr(p.description, "sm_90"));
    smoe_backend_free(b);
    assert_int_equal(smoe_cuda_backend_init(1, &b), SMOE_ERR_INVALID_ARGUMENT);
    assert_null(b);
}

static void fill(uint8_t *p, size_t n, uint64_t seed) {
    gt_rng rng = {seed};
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)gt_rng_next(&rng);
}

/* One upload larger than the staging memory (the chunk ring: 8 MiB chunks, the last one partial), many small
 * queued uploads that overflow the staging memory, queued downloads read back at synchronize, a large download. */
static void test_transfers(void **state) {
    (void)state;
    smoe_backend *b = cuda_open();
    const size_t size = ((size_t)41 << 20) + 12345;
    smoe_tensor t;
    smoe_buffer *buf = dt_bytes_buffer(b, size, &t);
    uint8_t *a = malloc(size), *r = malloc(size);
    assert_non_null(a);
    assert_non_null(r);
    fill(a, size, 1);
    assert_int_equal(smoe_tensor_set_async(&t, a, 0, size), SMOE_OK);
    /* the ring copied the source: it may change now (the loader's mmap does not, but a caller's buffer may) */
    memset(a, 0, 1000);
    fill(a, 1000, 1);
    assert_int_equal(smoe_backend_synchronize(b), SMOE_OK);
    assert_int_equal(smoe_tensor_get(&t, r, 0, size), SMOE_OK);
    assert_memory_equal(a, r, size);
    /* 400 queued uploads of 100000 bytes (40 MB through 16 MiB of staging), each from the same host buffer */
    const size_t piece = 100000;
    uint8_t *src = malloc(piece);
    for (size_t k = 0; k < 400; k++) {
        fill(src, piece, 100 + k);
        memcpy(a + k * piece, src, piece);
        assert_int_equal(smoe_tensor_set_async(&t, src, k * piece, piece), SMOE_OK);
    }
    /* queued downloads of pieces, in another order */
    uint8_t *got = malloc(40 * piece);
    for (size_t k = 0; k < 40; k++)
        assert_int_equal(smoe_tensor_get_async(&t, got + k * piece, (399 - k * 10) * piece, piece), SMOE_OK);
    assert_int_equal(smoe_backend_synchronize(b), SMOE_OK);
    for (size_t k = 0; k < 40; k++) assert_memory_equal(got + k * piece, a + (399 - k * 10) * piece, piece);
    assert_int_equal(smoe_tensor_get(&t, r, 0, size), SMOE_OK);
    assert_memory_equal(a, r, size);
    /* clear */
    assert_int_equal(smoe_buffer_clear(buf, 0xAB), SMOE_OK);
    assert_int_equal(smoe_tensor_get(&t, r, size - 4097, 4097), SMOE_OK);
    for (size_t i = 0; i < 4097; i++) assert_int_equal(r[i], 0xAB);
    smoe_buffer_free(buf);
    /* more than the device has */
    buf = NULL;
    assert_int_equal(smoe_backend_buffer_alloc(b, (size_t)9 << 30, &buf), SMOE_ERR_OUT_OF_MEMORY);
    assert_non_null(strstr(smoe_last_error(), "cudaMalloc"));
    assert_null(buf);
    smoe_backend_free(b);
    free(a);
    free(r);
    free(src);
    free(got);
}

/* ---- index errors: the device error word names the node ---- */

static void test_index_errors(void **state) {
    (void)state;
    smoe_backend *b = cuda_open();
    dt_check_index_errors(b);
    smoe_backend_free(b);
}

/* Index errors inside fused launches name the op whose index was bad, as unfused launches do: a bad cell in K's
 * KV_WRITE done by the ROPE's launch, a bad expert id in gate/up done as one launch (the first of them), a bad expert
 * id in the one-token MOE_COMBINE that does the residual ADD. Each case must also have run fused. */
static void test_fused_index_errors(void **state) {
    (void)state;
    const int64_t k = 64, m = 8, n_exp = 4, hd = 32;
    smoe_graph   *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *kx, *pos, *cache, *cells, *x, *wg, *wu, *eids, *y, *lg, *cids, *res;
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 3, NE(hd, 1, 1), &kx), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 1, NE(1), &pos), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F16, 3, NE(hd, 1, 4), &cache), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 1, NE(1), &cells), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 3, NE(k, 1, 1), &x), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_Q8_0, 3, NE(k, m, n_exp), &wg), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_Q8_0, 3, NE(k, m, n_exp), &wu), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 2, NE(2, 1), &eids), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 3, NE(k, 2, 1), &y), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 2, NE(n_exp, 1), &lg), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 2, NE(2, 1), &cids), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 2, NE(k, 1), &res), SMOE_OK);
    const smoe_op_rope_params rp = {.n_rot = 32, .theta_base = 1e4f, .freq_scale = 1.0f};
    smoe_tensor *rk, *kw, *gate, *up, *c, *sum;
    assert_int_equal(smoe_rope(g, kx, pos, &rp, &rk), SMOE_OK);
    assert_int_equal(smoe_kv_write(g, cache, rk, cells, &kw), SMOE_OK);
    smoe_tensor_set_name(kw, "the_cache");
    assert_int_equal(smoe_mul_mat_id(g, wg, x, eids, &gate), SMOE_OK);
    smoe_tensor_set_name(gate, "the_gate");
    assert_int_equal(smoe_mul_mat_id(g, wu, x, eids, &up), SMOE_OK);
    assert_int_equal(smoe_moe_combine(g, y, lg, cids, &c), SMOE_OK);
    smoe_tensor_set_name(c, "the_combine");
    assert_int_equal(smoe_add(g, res, c, &sum), SMOE_OK);
    smoe_graph_set_output(kw);
    smoe_graph_set_output(gate);
    smoe_graph_set_output(up);
    smoe_graph_set_output(sum);

    float    fk[32] = {0}, fx[64] = {0}, fy[128] = {0}, fl[4] = {0}, fr[64] = {0};
    uint8_t  c16[32 * 4 * 2] = {0}, wq[8 * 4 * 2 * 34] = {0};
    int32_t  p0 = 3, good_cell = 2, bad_cell = 4, good_e[2] = {0, 3}, bad_e[2] = {0, 4}, bad_c[2] = {-1, 1};
    struct {
        const int32_t *cell, *e, *ce;
        const char    *expect;
    } cases[] = {
        {&good_cell, good_e, good_e, NULL},
        {&bad_cell, good_e, good_e, "the_cache"},
        {&good_cell, bad_e, good_e, "the_gate"},
        {&good_cell, good_e, bad_c, "the_combine"},
        {&good_cell, good_e, good_e, NULL},
    };
    smoe_backend *b = cuda_open();
    smoe_sched   *s = NULL;
    assert_int_equal(smoe_sched_init(&b, 1, &s), SMOE_OK);
    assert_int_equal(smoe_sched_alloc_graph(s, g), SMOE_OK);
    const int kv0 = fake_cuda_kv_launches(), g0 = fake_cuda_grouped_launches(), a0 = fake_cuda_added_launches();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(smoe_tensor_set(kx, fk, 0, sizeof(fk)), SMOE_OK);
        assert_int_equal(smoe_tensor_set(pos, &p0, 0, 4), SMOE_OK);
        assert_int_equal(smoe_tensor_set(cache, c16, 0, sizeof(c16)), SMOE_OK);
        assert_int_equal(smoe_tensor_set(cells, cases[i].cell, 0, 4), SMOE_OK);
        assert_int_equal(smoe_tensor_set(x, fx, 0, sizeof(fx)), SMOE_OK);
        assert_int_equal(smoe_tensor_set(wg, wq, 0, sizeof(wq)), SMOE_OK);
        assert_int_equal(smoe_tensor_set(wu, wq, 0, sizeof(wq)), SMOE_OK);
        assert_int_equal(smoe_tensor_set(eids, cases[i].e, 0, 8), SMOE_OK);
        assert_int_equal(smoe_tensor_set(y, fy, 0, sizeof(fy)), SMOE_OK);
        assert_int_equal(smoe_tensor_set(lg, fl, 0, sizeof(fl)), SMOE_OK);
        assert_int_equal(smoe_tensor_set(cids, cases[i].ce, 0, 8), SMOE_OK);
        assert_int_equal(smoe_tensor_set(res, fr, 0, sizeof(fr)), SMOE_OK);
        dt_run_expect(s, g, b, i, cases[i].expect);
    }
    /* every run took the fused launches (a replayed graph is counted once, when captured) */
    if (fake_cuda_kv_launches() == kv0 || fake_cuda_grouped_launches() == g0 || fake_cuda_added_launches() == a0)
        fail_msg("not fused: %d ROPE+KV_WRITE, %d grouped, %d added launches", fake_cuda_kv_launches() - kv0,
                 fake_cuda_grouped_launches() - g0, fake_cuda_added_launches() - a0);
    smoe_sched_free(s);
    smoe_backend_free(b);
    smoe_graph_free(g);
}

/* ---- the int8 GEMV's quantized activations reused by the next launch only when it reads the same tensor ---- */

/* y = W1 x1 + W2 x2 + W3 x2, the three products consecutive launches: the second must quantize its own x, the third
 * may reuse the second's (cuda-backend.c: q8_ready). On the emulator a wrong reuse changes y. */
static void test_q8_reuse(void **state) {
    (void)state;
    const int64_t k = 256, m = 40;
    gt_rng        rng = {.s = 77};
    smoe_graph   *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *w[3], *x[2], *y[3], *s = NULL, *out = NULL;
    gt_input     in[5];
    void        *data[5];
    for (int i = 0; i < 5; i++) {
        smoe_tensor *t = NULL;
        const bool   is_w = i < 3;
        assert_int_equal(smoe_graph_new_tensor(g, is_w ? SMOE_TYPE_Q8_0 : SMOE_TYPE_F32, 2, NE(k, is_w ? m : 1), &t),
                         SMOE_OK);
        const int64_t n = smoe_tensor_nelements(t);
        float        *f = malloc((size_t)n * sizeof(float));
        gt_fill(&rng, f, n, -1, 1);
        data[i] = gt_encode(t->type, f, k, n / k);
        free(f);
        in[i] = (gt_input){t, data[i]};
        if (is_w) w[i] = t;
        else x[i - 3] = t;
    }
    assert_int_equal(smoe_mul_mat(g, w[0], x[0], &y[0]), SMOE_OK);
    assert_int_equal(smoe_mul_mat(g, w[1], x[1], &y[1]), SMOE_OK);
    assert_int_equal(smoe_mul_mat(g, w[2], x[1], &y[2]), SMOE_OK);
    assert_int_equal(smoe_add(g, y[0], y[1], &s), SMOE_OK);
    assert_int_equal(smoe_add(g, s, y[2], &out), SMOE_OK);
    float want[40], got[40];
    smoe_backend *cpu = NULL, *cuda = cuda_open();
    assert_int_equal(smoe_cpu_backend_init(NULL, &cpu), SMOE_OK);
    assert_int_equal(gt_run(&cpu, 1, g, in, 5, &(gt_output){out, want}, 1, 1, NULL), SMOE_OK);
    const int g0 = fake_cuda_grouped_launches();
    assert_int_equal(gt_run(&cuda, 1, g, in, 5, &(gt_output){out, got}, 1, 2, NULL), SMOE_OK);
    if (fake_cuda_grouped_launches() == g0) fail_msg("W2 x2 and W3 x2 did not run as one launch");
    double num = 0, den = 0;
    for (int i = 0; i < m; i++) {
        num += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        den += (double)want[i] * want[i];
    }
    if (!(num <= 1e-8 * den)) fail_msg("y differs from the CPU's: NMSE %.3g", num / den);
    smoe_backend_free(cpu);
    smoe_backend_free(cuda);
    smoe_graph_free(g);
    for (int i = 0; i < 5; i++) free(data[i]);
}

/* RMS_NORM and SWIGLU writing the int8 columns of the GEMV after them (smoe_cuda_plan_fusion), at k = 512 (16 groups:
 * both halves of the layout's swizzle): a norm into a dense product (which adds a residual in its launch), a norm
 * of [k, 1, 3] into two MUL_MAT_IDs' broadcast input (one launch for both), a SWIGLU into MUL_MAT_ID's per-slot
 * input. On the emulator the kernels' bytes must be the
 * quantize kernel's: with fusion, without, and the CPU agree. */
static void test_q8_fused(void **state) {
    (void)state;
    const int64_t k = 512, m = 40, n_exp = 4, nt = 3;
    gt_rng        rng = {.s = 91};
    smoe_graph   *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    const smoe_type types[10] = {SMOE_TYPE_F32,  SMOE_TYPE_F32,  SMOE_TYPE_F32, SMOE_TYPE_F32,  SMOE_TYPE_F32,
                                 SMOE_TYPE_Q8_0, SMOE_TYPE_Q4_0, SMOE_TYPE_I32, SMOE_TYPE_Q4_0, SMOE_TYPE_F32};
    const int64_t   shapes[10][3] = {{k, 1, 1}, {k, 1, nt},    {k, 1, 1},  {k, 2, nt},    {k, 2, nt},
                                     {k, m, 1}, {k, m, n_exp}, {2, nt, 1}, {k, m, n_exp}, {m, 1, 1}};
    smoe_tensor *t[10];
    gt_input     in[10];
    void        *data[10];
    for (int i = 0; i < 10; i++) {
        assert_int_equal(smoe_graph_new_tensor(g, types[i], 3, shapes[i], &t[i]), SMOE_OK);
        const int64_t n = smoe_tensor_nelements(t[i]);
        if (types[i] == SMOE_TYPE_I32) {
            int32_t *ids = malloc((size_t)n * sizeof(int32_t));
            for (int64_t j = 0; j < n; j++) ids[j] = (int32_t)((j * 3 + 1) % n_exp);
            data[i] = ids;
        } else {
            float *f = malloc((size_t)n * sizeof(float));
            gt_fill(&rng, f, n, i == 2 ? 0.5 : -2, 2); /* the norm weight positive */
            data[i] = gt_encode(t[i]->type, f, t[i]->ne[0], n / t[i]->ne[0]);
            free(f);
        }
        in[i] = (gt_input){t[i], data[i]};
    }
    smoe_tensor *n1, *n2, *sw, *y1, *r1, *y2, *y2b, *y3, *s1, *s2, *out;
    assert_int_equal(smoe_rms_norm(g, t[0], t[2], 1e-5f, &n1), SMOE_OK);
    assert_int_equal(smoe_mul_mat(g, t[5], n1, &y1), SMOE_OK);            /* [m, 1, 1] */
    assert_int_equal(smoe_add(g, t[9], y1, &r1), SMOE_OK);                 /* in the GEMV's launch (add) */
    assert_int_equal(smoe_rms_norm(g, t[1], t[2], 1e-5f, &n2), SMOE_OK);
    assert_int_equal(smoe_mul_mat_id(g, t[6], n2, t[7], &y2), SMOE_OK);   /* [m, 2, nt] */
    assert_int_equal(smoe_mul_mat_id(g, t[8], n2, t[7], &y2b), SMOE_OK);  /* one launch with y2's (n_more) */
    assert_int_equal(smoe_swiglu(g, t[3], t[4], &sw), SMOE_OK);
    assert_int_equal(smoe_mul_mat_id(g, t[6], sw, t[7], &y3), SMOE_OK);   /* [m, 2, nt] */
    assert_int_equal(smoe_add(g, y2, y3, &s1), SMOE_OK);
    assert_int_equal(smoe_add(g, s1, y2b, &s2), SMOE_OK);
    assert_int_equal(smoe_add(g, s2, r1, &out), SMOE_OK);                  /* r1 broadcast */
    const int64_t n_out = m * 2 * nt;
    float want[240], got[240], unfused[240];
    smoe_backend *cpu = NULL, *cuda = cuda_open();
    assert_int_equal(smoe_cpu_backend_init(NULL, &cpu), SMOE_OK);
    assert_int_equal(gt_run(&cpu, 1, g, in, 10, &(gt_output){out, want}, 1, 1, NULL), SMOE_OK);
    const int q0 = fake_cuda_q8_out_launches(), g0 = fake_cuda_grouped_launches(), a0 = fake_cuda_added_launches();
    assert_int_equal(gt_run(&cuda, 1, g, in, 10, &(gt_output){out, got}, 1, 1, NULL), SMOE_OK);
    assert_int_equal(fake_cuda_q8_out_launches() - q0, 3);
    assert_int_equal(fake_cuda_grouped_launches() - g0, 1);
    assert_int_equal(fake_cuda_added_launches() - a0, 1);
    smoe_backend_free(cuda);
    setenv("SMOE_CUDA_FUSE", "0", 1);
    cuda = cuda_open();
    unsetenv("SMOE_CUDA_FUSE");
    const int q1 = fake_cuda_q8_out_launches(), g1 = fake_cuda_grouped_launches();
    assert_int_equal(gt_run(&cuda, 1, g, in, 10, &(gt_output){out, unfused}, 1, 1, NULL), SMOE_OK);
    assert_int_equal(fake_cuda_q8_out_launches() - q1, 0);
    assert_int_equal(fake_cuda_grouped_launches() - g1, 0);
    double num = 0, den = 0;
    for (int64_t i = 0; i < n_out; i++) {
        if (got[i] != unfused[i]) fail_msg("output %d: %.9g with fusion, %.9g without", (int)i, got[i], unfused[i]);
        num += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        den += (double)want[i] * want[i];
    }
    if (!(num <= 1e-8 * den)) fail_msg("the output differs from the CPU's: NMSE %.3g", num / den);
    smoe_backend_free(cpu);
    smoe_backend_free(cuda);
    smoe_graph_free(g);
    for (int i = 0; i < 10; i++) free(data[i]);
}

/* ROPE of k, KV_WRITE of it and of v at the same cells: one launch (smoe_cuda_plan_fusion: kv_write), for an F16
 * and a Q8_0 cache, a partial rotation (n_rot 48 of 64) and a cell written twice (the later token wins; the earlier
 * one's RoPE result is still written). The caches' bytes and the RoPE result must equal the unfused launches' on the
 * emulator, and the CPU's within float rounding. */
static void test_rope_kv_fused(void **state) {
    (void)state;
    const int64_t   hd = 64, nkv = 2, nt = 3, nc = 6;
    const smoe_type cache_types[2] = {SMOE_TYPE_F16, SMOE_TYPE_Q8_0};
    for (int ct = 0; ct < 2; ct++) {
        gt_rng      rng = {.s = 5 + (uint64_t)ct};
        smoe_graph *g = NULL;
        assert_int_equal(smoe_graph_init(&g), SMOE_OK);
        smoe_tensor *k = NULL, *v = NULL, *pos = NULL, *cells = NULL, *ck = NULL, *cv = NULL;
        assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 3, NE(hd, nkv, nt), &k), SMOE_OK);
        assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 3, NE(hd, nkv, nt), &v), SMOE_OK);
        assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 1, NE(nt), &pos), SMOE_OK);
        assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 1, NE(nt), &cells), SMOE_OK);
        assert_int_equal(smoe_graph_new_tensor(g, cache_types[ct], 3, NE(hd, nkv, nc), &ck), SMOE_OK);
        assert_int_equal(smoe_graph_new_tensor(g, cache_types[ct], 3, NE(hd, nkv, nc), &cv), SMOE_OK);
        float kf[384], vf[384], zero[768] = {0};
        gt_fill(&rng, kf, hd * nkv * nt, -2, 2);
        gt_fill(&rng, vf, hd * nkv * nt, -2, 2);
        const int32_t posd[3] = {7, 300, 31000}, celld[3] = {1, 4, 1};
        void         *cz = gt_encode(cache_types[ct], zero, hd, nkv * nc);
        const gt_input in[6] = {{k, kf}, {v, vf}, {pos, posd}, {cells, celld}, {ck, cz}, {cv, cz}};
        const smoe_op_rope_params rp = {.n_rot = 48, .theta_base = 1e6f, .freq_scale = 1.0f};
        smoe_tensor *rk = NULL, *kc = NULL, *vc = NULL;
        assert_int_equal(smoe_rope(g, k, pos, &rp, &rk), SMOE_OK);
        assert_int_equal(smoe_kv_write(g, ck, rk, cells, &kc), SMOE_OK);
        assert_int_equal(smoe_kv_write(g, cv, v, cells, &vc), SMOE_OK);
        smoe_graph_set_output(rk);
        smoe_graph_set_output(kc);
        smoe_graph_set_output(vc);
        const size_t  cb = smoe_tensor_nbytes(ck);
        uint8_t       want_k[2][8192], want_v[2][8192], got_k[8192], got_v[8192];
        float         want_r[2][384], got_r[384];
        smoe_backend *cpu = NULL, *cuda = NULL;
        assert_true(cb <= sizeof(got_k));
        assert_int_equal(smoe_cpu_backend_init(NULL, &cpu), SMOE_OK);
        const gt_output cpu_out[3] = {{rk, want_r[0]}, {kc, want_k[0]}, {vc, want_v[0]}};
        assert_int_equal(gt_run(&cpu, 1, g, in, 6, cpu_out, 3, 1, NULL), SMOE_OK);
        setenv("SMOE_CUDA_FUSE", "0", 1);
        cuda = cuda_open();
        unsetenv("SMOE_CUDA_FUSE");
        const gt_output unf_out[3] = {{rk, want_r[1]}, {kc, want_k[1]}, {vc, want_v[1]}};
        assert_int_equal(gt_run(&cuda, 1, g, in, 6, unf_out, 3, 1, NULL), SMOE_OK);
        smoe_backend_free(cuda);
        cuda = cuda_open();
        const int       kv0 = fake_cuda_kv_launches();
        const gt_output out[3] = {{rk, got_r}, {kc, got_k}, {vc, got_v}};
        assert_int_equal(gt_run(&cuda, 1, g, in, 6, out, 3, 1, NULL), SMOE_OK);
        assert_int_equal(fake_cuda_kv_launches() - kv0, 1);
        assert_memory_equal(got_r, want_r[1], sizeof(got_r));
        assert_memory_equal(got_k, want_k[1], cb);
        assert_memory_equal(got_v, want_v[1], cb);
        /* against the CPU: the caches decoded, and the RoPE result */
        float a[768], b[768];
        gt_decode(cache_types[ct], got_k, a, hd, nkv * nc);
        gt_decode(cache_types[ct], want_k[0], b, hd, nkv * nc);
        for (int i = 0; i < hd * nkv * nc; i++)
            if (fabsf(a[i] - b[i]) > 1e-2f * (1.0f + fabsf(b[i])))
                fail_msg("K cache element %d: %g, CPU %g", i, (double)a[i], (double)b[i]);
        gt_decode(cache_types[ct], got_v, a, hd, nkv * nc);
        gt_decode(cache_types[ct], want_v[0], b, hd, nkv * nc);
        for (int i = 0; i < hd * nkv * nc; i++)
            if (a[i] != b[i]) fail_msg("V cache element %d: %g, CPU %g", i, (double)a[i], (double)b[i]);
        for (int i = 0; i < hd * nkv * nt; i++)
            if (fabsf(got_r[i] - want_r[0][i]) > 1e-5f * (1.0f + fabsf(want_r[0][i])))
                fail_msg("RoPE element %d: %g, CPU %g", i, (double)got_r[i], (double)want_r[0][i]);
        smoe_backend_free(cpu);
        smoe_backend_free(cuda);
        smoe_graph_free(g);
        free(cz);
    }
}

/* ATTENTION doing q's ROPE before it (rope_q: n_rot 48 of 64; the ROPE's result is read back too) and writing the
 * int8 columns of the output projection after it (q8_out: a token's heads as one row, after the attention's own
 * scratch when its cells are split into chunks), at head_dim 64 with 4 heads over 2 kv heads: a 32-cell cache (one
 * chunk: the split kernel writes the output) and a 512-cell one (chunks, then the combine). On the emulator the
 * results must equal the unfused launches' and the CPU's within the int8 rounding. */
static void test_attention_q8_fused(void **state) {
    (void)state;
    const int64_t hd = 64, nh = 4, nkv = 2, m = 24;
    const int64_t n_cells[2] = {32, 512};
    for (int ci = 0; ci < 2; ci++) {
        const int64_t nc = n_cells[ci];
        gt_rng        rng = {.s = 17 + (uint64_t)ci};
        smoe_graph   *g = NULL;
        assert_int_equal(smoe_graph_init(&g), SMOE_OK);
        smoe_tensor *q = NULL, *kc = NULL, *vc = NULL, *qi = NULL, *cinf = NULL, *ns = NULL, *w = NULL;
        assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 3, NE(hd, nh, 1), &q), SMOE_OK);
        assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F16, 3, NE(hd, nkv, nc), &kc), SMOE_OK);
        assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F16, 3, NE(hd, nkv, nc), &vc), SMOE_OK);
        assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 2, NE(2, 1), &qi), SMOE_OK);
        assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 2, NE(2, nc), &cinf), SMOE_OK);
        assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 1, NE(1), &ns), SMOE_OK);
        assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_Q8_0, 2, NE(hd * nh, m), &w), SMOE_OK);
        float   qf[256], kf[64 * 2 * 512], vf[64 * 2 * 512], wf[256 * 24];
        int32_t qinfo[2] = {(int32_t)nc - 1, 0}, cinfo[2 * 512], n_scan = (int32_t)nc;
        for (int64_t j = 0; j < nc; j++) cinfo[2 * j] = (int32_t)j, cinfo[2 * j + 1] = 0;
        gt_fill(&rng, qf, hd * nh, -1, 1);
        gt_fill(&rng, kf, hd * nkv * nc, -1, 1);
        gt_fill(&rng, vf, hd * nkv * nc, -1, 1);
        gt_fill(&rng, wf, hd * nh * m, -1, 1);
        void *kd = gt_encode(SMOE_TYPE_F16, kf, hd, nkv * nc), *vd = gt_encode(SMOE_TYPE_F16, vf, hd, nkv * nc);
        void *wd = gt_encode(SMOE_TYPE_Q8_0, wf, hd * nh, m);
        const int32_t  posd = 1000;
        gt_input       in[8] = {{q, qf}, {kc, kd}, {vc, vd}, {qi, qinfo}, {cinf, cinfo}, {ns, &n_scan}, {w, wd}, {0}};
        smoe_tensor *a = NULL, *a2 = NULL, *y = NULL, *rq = NULL, *pos = NULL;
        assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 1, NE(1), &pos), SMOE_OK);
        const smoe_op_rope_params rp = {.n_rot = 48, .theta_base = 1e6f, .freq_scale = 1.0f};
        assert_int_equal(smoe_rope(g, q, pos, &rp, &rq), SMOE_OK);
        smoe_graph_set_output(rq);
        assert_int_equal(smoe_attention(g, rq, kc, vc, qi, cinf, ns, 0.125f, &a), SMOE_OK);
        assert_int_equal(smoe_reshape(g, a, 2, NE(hd * nh, 1), &a2), SMOE_OK);
        assert_int_equal(smoe_mul_mat(g, w, a2, &y), SMOE_OK);
        smoe_graph_set_output(y);
        in[7] = (gt_input){pos, &posd};
        float         want[24], unfused[24], got[24], rq_want[256], rq_got[256];
        smoe_backend *cpu = NULL, *cuda = NULL;
        assert_int_equal(smoe_cpu_backend_init(NULL, &cpu), SMOE_OK);
        const gt_output cpu_out[2] = {{y, want}, {rq, rq_want}}, unf_out[2] = {{y, unfused}, {rq, rq_want}};
        assert_int_equal(gt_run(&cpu, 1, g, in, 8, cpu_out, 2, 1, NULL), SMOE_OK);
        setenv("SMOE_CUDA_FUSE", "0", 1);
        cuda = cuda_open();
        unsetenv("SMOE_CUDA_FUSE");
        assert_int_equal(gt_run(&cuda, 1, g, in, 8, unf_out, 2, 1, NULL), SMOE_OK);
        smoe_backend_free(cuda);
        cuda = cuda_open();
        const int       q0 = fake_cuda_q8_out_launches(), r0 = fake_cuda_rope_q_launches();
        const gt_output out[2] = {{y, got}, {rq, rq_got}};
        assert_int_equal(gt_run(&cuda, 1, g, in, 8, out, 2, 1, NULL), SMOE_OK);
        assert_int_equal(fake_cuda_q8_out_launches() - q0, 1);
        assert_int_equal(fake_cuda_rope_q_launches() - r0, 1);
        assert_memory_equal(rq_got, rq_want, sizeof(rq_got)); /* the unfused ROPE's result (the CUDA one's) */
        double num = 0, den = 0;
        for (int i = 0; i < m; i++) {
            if (got[i] != unfused[i]) fail_msg("cells %d, output %d: %.9g with fusion, %.9g without", (int)nc, i,
                                               (double)got[i], (double)unfused[i]);
            num += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
            den += (double)want[i] * want[i];
        }
        if (!(num <= 1e-4 * den)) fail_msg("cells %d: the output differs from the CPU's: NMSE %.3g", (int)nc, num / den);
        smoe_backend_free(cpu);
        smoe_backend_free(cuda);
        smoe_graph_free(g);
        free(kd);
        free(vd);
        free(wd);
    }
}

/* ---- whole models: the CUDA backend's results equal the CPU backend's ---- */

#define N_PROMPT 6
#define N_GEN 14

typedef struct gen_result {
    sr_run run;
    int    graph_launches;
    int    q8_out_launches;  /* launches (not replayed in a graph) writing a later GEMV's int8 columns */
    int    grouped_launches; /* int8 GEMV launches (not replayed) doing the products of the next ones too */
    int    added_launches;   /* int8 GEMV launches (not replayed) doing the residual ADD after them */
    int    kv_launches;      /* ROPE launches (not replayed) doing the KV_WRITEs after them */
    int    route_launches;   /* router launches (not replayed) doing the MOE_ROUTE after them */
    int    rope_q_launches;  /* attention launches (not replayed) doing q's ROPE */
    int    pdl_launches;     /* launches (not replayed) with programmatic stream serialization */
} gen_result;

/* The tiny synthetic model of `ftype` on `backend` with a weight budget: a prompt, then greedy generation one token
 * per decode (from the third step on, a decode step is a replayed CUDA graph). */
static smoe_status generate(const char *backend, uint64_t gpu_mem, smoe_ftype ftype, gen_result *r) {
    free(r->run.logits);
    const int         g0 = fake_cuda_graph_launches(), q0 = fake_cuda_q8_out_launches();
    const int         u0 = fake_cuda_grouped_launches(), a0 = fake_cuda_added_launches();
    const int         k0 = fake_cuda_kv_launches(), r0 = fake_cuda_route_launches();
    const int         p0 = fake_cuda_rope_q_launches(), d0 = fake_cuda_pdl_launches();
    const smoe_status st = sr_run_model(backend, gpu_mem, ftype, N_PROMPT, N_GEN, NULL, &r->run);
    r->graph_launches = fake_cuda_graph_launches() - g0;
    r->q8_out_launches = fake_cuda_q8_out_launches() - q0;
    r->grouped_launches = fake_cuda_grouped_launches() - u0;
    r->added_launches = fake_cuda_added_launches() - a0;
    r->kv_launches = fake_cuda_kv_launches() - k0;
    r->route_launches = fake_cuda_route_launches() - r0;
    r->rope_q_launches = fake_cuda_rope_q_launches() - p0;
    r->pdl_launches = fake_cuda_pdl_launches() - d0;
    return st;
}

static void gen_free(gen_result *r) {
    free(r->run.logits);
    memset(r, 0, sizeof(*r));
}

static void check_identical(const char *what, const gen_result *got, const gen_result *ref) {
    const double d = sr_rel_diff(got->run.logits, ref->run.logits, (size_t)(N_GEN + 1) * (size_t)ref->run.n_vocab);
    if (!(d < 1e-5)) fail_msg("%s: logits differ from the reference run's (max relative %.3g)", what, d);
    assert_memory_equal(got->run.tokens, ref->run.tokens, sizeof(got->run.tokens));
}

/* got (a cuda0 run) against ref (the CPU's) */
static void check_same(const char *what, const gen_result *got, const gen_result *ref) {
#ifdef SMOE_TEST_CUDA_EMU
    const double d = sr_rel_diff(got->run.logits, ref->run.logits, (size_t)ref->run.n_vocab);
    if (!(d < 3e-2)) fail_msg("%s: first logits differ from the CPU backend's (max relative %.3g)", what, d);
    assert_int_equal(got->run.tokens[0], ref->run.tokens[0]);
#else
    check_identical(what, got, ref);
#endif
}

static void test_model_decode(void **state) {
    (void)state;
    gen_result ref = {0}, got = {0}, graphs = {0};
    const smoe_ftype types[] = {SMOE_FTYPE_Q4_0, SMOE_FTYPE_Q8_0};
    for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
        assert_int_equal(generate("cpu", 0, types[k], &ref), SMOE_OK);
        /* every weight on the device, CUDA graphs: captured on the second decode step, replayed from the third */
        assert_int_equal(generate("cuda0", SMOE_GPU_MEM_ALL, types[k], &got), SMOE_OK);
        check_same("cuda0 with graphs", &got, &ref);
        assert_false(got.run.placement.split);
        if (got.graph_launches < N_GEN - 2)
            fail_msg("%d graph launches for %d decode steps", got.graph_launches, N_GEN);
        gen_free(&graphs);
        graphs = got;
        memset(&got, 0, sizeof(got));
        /* launched directly: the same kernels, so the same results as the replayed graphs */
        setenv("SMOE_CUDA_GRAPHS", "0", 1);
        assert_int_equal(generate("cuda0", SMOE_GPU_MEM_ALL, types[k], &got), SMOE_OK);
        unsetenv("SMOE_CUDA_GRAPHS");
        check_same("cuda0 without graphs", &got, &ref);
        check_identical("cuda0 with graphs against without", &graphs, &got);
        assert_int_equal(got.graph_launches, 0);
        /* per layer and step, the attention's and the FFN's RMS_NORM and the SWIGLU write their GEMV's columns
         * (smoe_cuda_plan_fusion); without that the GEMVs quantize them: the same bytes, so the same results */
        if (got.grouped_launches < 2 * (N_GEN + 1)) /* K, V, Q and gate, up: one launch each, per layer and step */
            fail_msg("%d grouped GEMV launches in %d steps", got.grouped_launches, N_GEN + 1);
        if (got.added_launches < N_GEN + 1) /* the attention's output projection and its residual */
            fail_msg("%d GEMV launches with the residual ADD in %d steps", got.added_launches, N_GEN + 1);
        if (got.kv_launches < N_GEN + 1) /* K's RoPE with the K and V cache writes */
            fail_msg("%d ROPE launches with the KV_WRITEs in %d steps", got.kv_launches, N_GEN + 1);
        if (got.route_launches < N_GEN + 1) /* the router with the expert choice */
            fail_msg("%d router launches with the MOE_ROUTE in %d steps", got.route_launches, N_GEN + 1);
        if (got.rope_q_launches < N_GEN + 1) /* the attention with q's RoPE */
            fail_msg("%d attention launches with q's ROPE in %d steps", got.rope_q_launches, N_GEN + 1);
        const int fused = got.q8_out_launches;
        if (fused < 3 * 2 * (N_GEN + 1)) fail_msg("%d launches wrote int8 columns in %d steps", fused, N_GEN + 1);
        setenv("SMOE_CUDA_FUSE", "0", 1);
        assert_int_equal(generate("cuda0", SMOE_GPU_MEM_ALL, types[k], &got), SMOE_OK);
        unsetenv("SMOE_CUDA_FUSE");
        assert_int_equal(got.q8_out_launches, 0);
        assert_int_equal(got.grouped_launches, 0);
        assert_int_equal(got.added_launches, 0);
        assert_int_equal(got.kv_launches, 0);
        assert_int_equal(got.route_launches, 0);
        assert_int_equal(got.rope_q_launches, 0);
        check_identical("cuda0 without fusion against with", &graphs, &got);
        /* programmatic dependent launch: asked for on the (fake) Hopper device, every launch carries it (the
         * launchers' kernels all wait first: tests/check-cuda-pdl.py), the same results; not on an older device,
         * nor by default */
        assert_int_equal(graphs.pdl_launches, 0);
        setenv("SMOE_CUDA_PDL", "1", 1);
        assert_int_equal(generate("cuda0", SMOE_GPU_MEM_ALL, types[k], &got), SMOE_OK);
        if (got.pdl_launches < 10 * (N_GEN + 1))
            fail_msg("%d launches with programmatic serialization in %d steps", got.pdl_launches, N_GEN + 1);
        check_identical("cuda0 with programmatic dependent launch against without", &graphs, &got);
        setenv("SMOE_FAKE_CUDA_CC", "8.9", 1);
        assert_int_equal(generate("cuda0", SMOE_GPU_MEM_ALL, types[k], &got), SMOE_OK);
        unsetenv("SMOE_FAKE_CUDA_CC");
        unsetenv("SMOE_CUDA_PDL");
        assert_int_equal(got.pdl_launches, 0);
        check_identical("cuda0 on Ada against Hopper", &graphs, &got);
        /* the reference kernels' launches (no scratch memory) */
        setenv("SMOE_CUDA_SIMPLE", "1", 1);
        assert_int_equal(generate("cuda0", SMOE_GPU_MEM_ALL, types[k], &got), SMOE_OK);
        unsetenv("SMOE_CUDA_SIMPLE");
        check_same("cuda0, reference kernels", &got, &ref);
    }
    gen_free(&ref);
    gen_free(&got);
    gen_free(&graphs);
}

#define RB_STEPS  8
#define RB_ROUNDS 3
/* The logits after each step (RB_ROUNDS x RB_STEPS x n_vocab, malloc'd), the sequence run RB_ROUNDS times on one
 * model, each time in a new context (the one before freed: the new context's scheduler splits may sit where the
 * freed ones did, and the backend must not take them for the splits it described last). */
static smoe_status rebind_run(const char *backend, float **out, int *n_vocab) {
    smoe_model *m = NULL;
    smoe_batch  batch = {0};
    *out = NULL;
    smoe_status st = sr_model_init(backend, SMOE_GPU_MEM_ALL, SMOE_FTYPE_Q8_0, &m);
    if (st != SMOE_OK) return st;
    smoe_model_info info;
    smoe_model_get_info(m, &info);
    *n_vocab = info.n_vocab;
    smoe_context_params cp = smoe_context_default_params();
    cp.n_ctx = 512;
    const size_t per = (size_t)RB_STEPS * (size_t)info.n_vocab;
    float       *logits = malloc(RB_ROUNDS * per * sizeof(float));
    if (!logits) st = SMOE_ERR_OUT_OF_MEMORY;
    if (st == SMOE_OK) st = smoe_batch_init(64, &batch);
    for (int round = 0; round < RB_ROUNDS && st == SMOE_OK; round++) {
        smoe_context *ctx = NULL;
        int32_t       pos = 0;
        st = smoe_context_init(m, &cp, &ctx);
        for (int s = 0; s < RB_STEPS && st == SMOE_OK; s++) {
            const int n = s == 4 ? 48 : 1; /* step 4: the large batch; the first: one token, as a decode step */
            batch.n_tokens = 0;
            for (int i = 0; i < n && st == SMOE_OK; i++, pos++)
                st = smoe_batch_add(&batch, (int32_t)((pos * 37 + 11) % info.n_vocab), pos, 0, i == n - 1);
            if (st == SMOE_OK) st = smoe_decode(ctx, &batch);
            if (st == SMOE_OK)
                memcpy(logits + round * per + (size_t)s * (size_t)info.n_vocab, smoe_get_logits(ctx, -1),
                       (size_t)info.n_vocab * sizeof(float));
        }
        smoe_context_free(ctx);
    }
    smoe_batch_free(&batch);
    smoe_model_free(m);
    if (st != SMOE_OK) free(logits);
    else *out = logits;
    return st;
}

/* Decode steps, a batch large enough to grow the scheduler's arena (the decode graph is bound to new addresses
 * after it), decode steps again, in three contexts one after another, against the CPU's logits: a CUDA backend
 * that kept launches it described for splits since freed or re-bound (cuda-backend.c: the split's stamp) would
 * compute on freed memory (the fake runtime fills it with NaNs). */
static void test_model_rebind(void **state) {
    (void)state;
    float *ref = NULL, *got = NULL;
    int    n_vocab = 0;
    assert_int_equal(rebind_run("cpu", &ref, &n_vocab), SMOE_OK);
    assert_int_equal(rebind_run("cuda0", &got, &n_vocab), SMOE_OK);
    for (int r = 0; r < RB_ROUNDS; r++)
        for (int s = 0; s < RB_STEPS; s++) {
            const size_t off = ((size_t)r * RB_STEPS + (size_t)s) * (size_t)n_vocab;
            const double d = sr_rel_diff(got + off, ref + off, (size_t)n_vocab);
#ifdef SMOE_TEST_CUDA_EMU
            const double tol = 3e-2;
#else
            const double tol = 1e-5;
#endif
            if (!(d < tol)) fail_msg("context %d, step %d: logits differ from the CPU's (max relative %.3g)", r, s, d);
        }
    free(ref);
    free(got);
}

/* A budget that holds the dense weights and some experts: the rest run on the CPU from host memory. */
static void test_model_split(void **state) {
    (void)state;
    gen_result ref = {0}, got = {0};
    assert_int_equal(generate("cpu", 0, SMOE_FTYPE_Q8_0, &ref), SMOE_OK);
    assert_int_equal(generate("cuda0", SMOE_GPU_MEM_ALL, SMOE_FTYPE_Q8_0, &got), SMOE_OK);
    const uint64_t all = got.run.placement.gpu_bytes;
    bool some_split = false;
    for (int k = 1; k <= 3; k++) {
        assert_int_equal(generate("cuda0", all * k / 4, SMOE_FTYPE_Q8_0, &got), SMOE_OK);
        char what[64];
        snprintf(what, sizeof(what), "cuda0 with %d/4 of the weights' bytes", k);
        check_same(what, &got, &ref);
        assert_true(got.run.placement.gpu_bytes <= all * k / 4);
        const smoe_placement *pl = &got.run.placement;
        some_split |= pl->split && pl->n_host_tensors > 0 && pl->n_gpu_tensors > 0;
    }
    assert_true(some_split);
    gen_free(&ref);
    gen_free(&got);
}

/* A device with too little memory: an explicit budget it cannot hold fails cleanly; the automatic one fits. */
static void test_model_small_device(void **state) {
    (void)state;
    gen_result ref = {0}, got = {0};
    assert_int_equal(generate("cpu", 0, SMOE_FTYPE_Q8_0, &ref), SMOE_OK);
    setenv("SMOE_FAKE_CUDA_MEM", "300000", 1);
    assert_int_equal(generate("cuda0", SMOE_GPU_MEM_ALL, SMOE_FTYPE_Q8_0, &got), SMOE_ERR_OUT_OF_MEMORY);
    assert_non_null(strstr(smoe_last_error(), "cuda0"));
    assert_int_equal(generate("cuda0", 0, SMOE_FTYPE_Q8_0, &got), SMOE_OK);
    unsetenv("SMOE_FAKE_CUDA_MEM");
    check_same("cuda0 with 300 kB of memory", &got, &ref);
    assert_true(got.run.placement.host_bytes > 0);
    gen_free(&ref);
    gen_free(&got);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fake_ordering), cmocka_unit_test(test_device),
        cmocka_unit_test(test_transfers),     cmocka_unit_test(test_index_errors),
        cmocka_unit_test(test_model_decode),  cmocka_unit_test(test_model_rebind), cmocka_unit_test(test_model_split),
        cmocka_unit_test(test_model_small_device), cmocka_unit_test(test_q8_reuse), cmocka_unit_test(test_q8_fused), cmocka_unit_test(test_fused_index_errors), cmocka_unit_test(test_rope_kv_fused), cmocka_unit_test(test_attention_q8_fused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
