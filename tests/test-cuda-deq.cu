// test-cuda-deq.cu - the CUDA kernels' element decoding (deq<T> in backends/cuda/cuda-common.cuh), run on the host
// without a GPU: every type the kernels read is quantized from seeded random rows by the reference quantizer
// (from_f32) and decoded element by element with deq<T>; each value must equal the CPU's to_f32 (which
// tests/test-quant.c and tests/python/test_quant_reference.py check bit-exactly against the gguf package) to within
// float rounding; the GEMV's sub-block decoder deq_sub<T> must give deq<T>'s values exactly. Also the bf16 rounding and the q8_0 quantizer of the KV_WRITE / CPY kernels against the CPU's
// from_f32 (bytes identical).
// Prints one line per type; exit status 1 on any mismatch.
#include "backends/cuda/cuda-common.cuh"

extern "C" {
#include "core/types.h"
}

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float rnd(void) { // xorshift64*, uniform in [-1, 1)
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((double)((rng_state * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

struct check {
    int32_t type;
    const std::vector<uint8_t> *row;
    int64_t n;
    std::vector<float> *out;
    template <int T> int run() {
        for (int64_t i = 0; i < n; i++) (*out)[(size_t)i] = deq<T>(row->data(), i);
        return 0;
    }
};

// deq_sub<T> (the GEMV's sub-block decoder) against deq<T>, element by element: the same arithmetic, so equal
struct check_sub {
    int32_t type;
    const std::vector<uint8_t> *row;
    int64_t n;
    int *bad;
    template <int T> int run() {
        {
            for (int64_t s = 0; s < n / 32; s++) {
                float w[32];
                deq_sub<T>(row->data(), s, w);
                for (int j = 0; j < 32; j++) {
                    const float want = deq<T>(row->data(), 32 * s + j);
                    if (w[j] != want && !(isnan(w[j]) && isnan(want))) {
                        if (*bad < 20)
                            printf("type %d: deq_sub sub-block %lld element %d: %.9g, deq %.9g\n", (int)type,
                                   (long long)s, j, (double)w[j], (double)want);
                        (*bad)++;
                    }
                }
            }
        }
        return 0;
    }
};

// load_h2<T> + decode_h2<T> (the prefill's f16 decoder for Q4_0 and Q8_0) against __float2half_rn of deq_sub<T>,
// bit for bit; the prefill's Q4_K/Q5_K decoder (load_kq, decode_kq) against deq_sub<T>
struct check_sub_h2 {
    const std::vector<uint8_t> *row;
    int64_t n;
    int *bad;
    template <int T> int run() {
        if constexpr (kq_type(T)) { // load_kq + decode_kq (the prefill's Q4_K/Q5_K path) against deq_sub, bit for bit
            for (int64_t s = 0; s < n / 32; s++) {
                float     w[32], v[32];
                raw_kq<T> r;
                deq_sub<T>(row->data(), s, w);
                load_kq<T>(row->data(), s, &r);
                decode_kq<T>(r, v);
                for (int j = 0; j < 32; j++)
                    if (memcmp(&w[j], &v[j], sizeof(float)) != 0) {
                        if (*bad < 20)
                            printf("type %d: decode_kq sub-block %lld element %d: %g, want %g\n", T, (long long)s,
                                   j, (double)v[j], (double)w[j]);
                        (*bad)++;
                    }
            }
        }
        if constexpr (deq_h2_type(T)) {
            for (int64_t s = 0; s < n / 32; s++) {
                float    w[32];
                uint32_t h[16];
                deq_sub<T>(row->data(), s, w);
                raw_h2<T> r;
                load_h2<T>(row->data(), s, &r, s % 3 != 0); // 16-bit loads, or aligned words (row 16-byte aligned)
                decode_h2<T>(r, h);
                for (int j = 0; j < 32; j++) {
                    const unsigned short got = (unsigned short)(h[j / 2] >> (16 * (j % 2)));
                    const unsigned short want = __half_as_ushort(__float2half_rn(w[j]));
                    if (got != want) {
                        if (*bad < 20)
                            printf("type %d: decode_h2 sub-block %lld element %d: 0x%04x, want 0x%04x\n", T,
                                   (long long)s, j, got, want);
                        (*bad)++;
                    }
                }
            }
        }
        return 0;
    }
};

int main(void) {
    const int32_t types[] = {SMOE_TYPE_F32, SMOE_TYPE_F16, SMOE_TYPE_BF16, SMOE_TYPE_Q4_0, SMOE_TYPE_Q4_1,
                             SMOE_TYPE_Q5_0, SMOE_TYPE_Q5_1, SMOE_TYPE_Q8_0, SMOE_TYPE_Q4_K, SMOE_TYPE_Q5_K,
                             SMOE_TYPE_Q6_K};
    const int64_t n = 4 * 256;
    int bad = 0;
    std::vector<float> src((size_t)n), ref((size_t)n), got((size_t)n);
    for (int32_t type : types) {
        const smoe_type_traits *tr = smoe_type_get_traits(type);
        if (!tr || !tr->from_f32 || !tr->to_f32) {
            printf("type %d: no reference conversions FAILED\n", type);
            bad++;
            continue;
        }
        double max_err = 0.0;
        for (int rep = 0; rep < 8; rep++) {
            const float scale = rep == 0 ? 1e-3f : (rep == 1 ? 100.0f : 1.0f);
            for (int64_t i = 0; i < n; i++) src[(size_t)i] = rnd() * scale;
            std::vector<uint8_t> row(smoe_row_size(type, n));
            tr->from_f32(src.data(), row.data(), n);
            tr->to_f32(row.data(), ref.data(), n);
            check c{type, &row, n, &got};
            if (dispatch_type(type, c) != 0) {
                printf("%s: no decoder FAILED\n", tr->name);
                bad++;
                break;
            }
            check_sub cs{type, &row, n, &bad};
            dispatch_type(type, cs);
            check_sub_h2 ch{&row, n, &bad};
            dispatch_type(type, ch);
            for (int64_t i = 0; i < n; i++) {
                const double d = fabs((double)got[(size_t)i] - (double)ref[(size_t)i]);
                const double rel = d / fmax(1e-30, fabs((double)ref[(size_t)i]));
                if (d > 0 && rel > 1e-6 && d > 1e-7 * scale) {
                    if (bad < 20)
                        printf("%s: element %lld: deq %.9g, to_f32 %.9g\n", tr->name, (long long)i,
                               (double)got[(size_t)i], (double)ref[(size_t)i]);
                    bad++;
                }
                max_err = fmax(max_err, d);
            }
        }
        printf("%s: deq vs to_f32 max |diff| %.3g\n", tr->name, max_err);
    }
    // bf16 rounding (KV_WRITE, CPY) against the CPU's from_f32
    const smoe_type_traits *bt = smoe_type_get_traits(SMOE_TYPE_BF16);
    const float specials[] = {0.0f, -0.0f, 1.0f, 1.00390625f, 1.01171875f, 3.4e38f, -3.4e38f, 1e-40f, INFINITY,
                              -INFINITY, NAN};
    int bf_bad = 0;
    for (int i = 0; i < 100000 + 11; i++) {
        const float f = i < 11 ? specials[i] : rnd() * powf(2.0f, (float)(i % 200) - 100.0f);
        unsigned short want = 0;
        bt->from_f32(&f, &want, 1);
        const unsigned short got_bf = f32_to_bf16(f);
        const bool both_nan = isnan(f) && (got_bf & 0x7f80) == 0x7f80 && (got_bf & 0x7f) && (want & 0x7f);
        if (got_bf != want && !both_nan) {
            if (bf_bad < 5) printf("bf16(%.9g): kernel 0x%04x, CPU 0x%04x\n", (double)f, got_bf, want);
            bf_bad++;
        }
    }
    printf("bf16 rounding: %d mismatches\n", bf_bad);
    bad += bf_bad;
    // q8_0 quantization (KV_WRITE, CPY) against the reference quantizer, byte for byte
    const smoe_type_traits *qt = smoe_type_get_traits(SMOE_TYPE_Q8_0);
    int q_bad = 0;
    for (int rep = 0; rep < 2000; rep++) {
        float x[32];
        const float scale = powf(2.0f, (float)(rep % 40) - 20.0f);
        for (int j = 0; j < 32; j++) x[j] = rep == 0 ? 0.0f : rnd() * scale;
        if (rep == 1) x[5] = NAN;
        uint8_t want[34], got_q[34];
        qt->from_f32(x, want, 32);
        quant_q8_0_block(x, got_q);
        if (memcmp(want, got_q, 34) != 0 && !(rep == 1)) {
            if (q_bad < 5) printf("q8_0 block %d differs from the reference quantizer\n", rep);
            q_bad++;
        }
    }
    printf("q8_0 quantization: %d mismatches\n", q_bad);
    bad += q_bad;
    // the K-quant scale and min of a sub-block pair from the block's head in registers (the int8 GEMV) and of one
    // sub-block (the prefill) against kq_scale_min's byte reads, on random heads
    int s_bad = 0;
    for (int rep = 0; rep < 2000; rep++) {
        uint8_t h[16];
        for (int j = 0; j < 16; j++) h[j] = (uint8_t)((rnd() + 1.0f) * 128.0f);
        uint4 head;
        memcpy(&head, h, 16);
        for (int p = 0; p < 4; p++) {
            int sc[2], m[2], want_sc[2], want_m[2], one_sc, one_m;
            kq_pair_scale_min(head, p, &sc[0], &m[0], &sc[1], &m[1]);
            for (int q = 0; q < 2; q++) {
                kq_scale_min(h + 4, 2 * p + q, &want_sc[q], &want_m[q]);
                kq_head_scale_min(head, 2 * p + q, &one_sc, &one_m);
                if (sc[q] != want_sc[q] || m[q] != want_m[q] || one_sc != want_sc[q] || one_m != want_m[q]) {
                    if (s_bad < 5)
                        printf("k-quant scales, sub-block %d: %d/%d (pair) %d/%d (one), want %d/%d\n", 2 * p + q,
                               sc[q], m[q], one_sc, one_m, want_sc[q], want_m[q]);
                    s_bad++;
                }
            }
        }
    }
    printf("k-quant scales from the head: %d mismatches\n", s_bad);
    bad += s_bad;
    printf(bad ? "FAILED\n" : "OK\n");
    return bad ? 1 : 0;
}
