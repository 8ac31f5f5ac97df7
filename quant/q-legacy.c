/*
 * q-legacy.c - the 32-element block formats Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0: reference quantizers (byte-identical
 * to ggml's and the gguf package's), search quantizers for weights, dequantizers and dot products against Q8_0.
 *
 * Symmetric types (Q4_0, Q5_0, Q8_0) store x ~ d * q with q in [qmin, qmax]; asymmetric ones (Q4_1, Q5_1) store
 * x ~ d * q + m with q in [0, nmax]. The search quantizer evaluates a set of candidate scales per block: the
 * reference scale, and scales that map the largest-magnitude element to qmin +- a fraction of a level (clipping it
 * a little or leaving headroom); each candidate's levels are refitted by weighted least squares (d, or d and m), and
 * every candidate is measured with its fp16-rounded parameters and the nearest levels under them, which is what
 * dequantization will see. The best is refined once more and stored.
 */
#include "quant-impl.h"

/* ---- candidate evaluation ---- */

/* Error of x ~ d16 * q (d16 already fp16-exact) with nearest levels; writes the levels to L if non-NULL. */
static float sym_eval(const float *x, const float *w, int n, int qmin, int qmax, float d16, int8_t *L) {
    float err = 0.0f;
    if (d16 == 0.0f) {
        for (int i = 0; i < n; i++) {
            err += w[i] * x[i] * x[i];
            if (L) L[i] = 0;
        }
        return err;
    }
    const float id = 1.0f / d16;
    for (int i = 0; i < n; i++) {
        const int   q = smoe_q_round_clamp(x[i] * id, qmin, qmax);
        const float e = x[i] - (float)q * d16;
        err += w[i] * e * e;
        if (L) L[i] = (int8_t)q;
    }
    return err;
}

/* Least-squares d for fixed levels obtained with inverse scale id: d = sum w x q / sum w q^2 (0 if undefined). */
static float sym_refit(const float *x, const float *w, int n, int qmin, int qmax, float id) {
    float sxq = 0.0f, sqq = 0.0f;
    for (int i = 0; i < n; i++) {
        const float q  = (float)smoe_q_round_clamp(x[i] * id, qmin, qmax);
        const float wi = w[i];
        sxq += wi * x[i] * q;
        sqq += wi * q * q;
    }
    return sqq > 0.0f ? sxq / sqq : 0.0f;
}

/* Searches d for a symmetric block. `d_ref` is the reference quantizer's scale (always a candidate); candidates map
 * the largest-magnitude element to qmin + step * k for |k| <= nstep, plus one mapping it to qmax. Writes the levels
 * to L and returns the fp16 scale. */
static float sym_search(const float *x, const float *w, int n, int qmin, int qmax, float d_ref, int nstep, float step,
                        int8_t *L) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max  = x[i];
        }
    }
    if (amax == 0.0f) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float best_d   = smoe_q_fp16_round(d_ref);
    float best_err = sym_eval(x, w, n, qmin, qmax, best_d, NULL);
    for (int k = -nstep; k <= nstep + 1; k++) {
        const float target = k <= nstep ? (float)qmin + step * (float)k : (float)qmax;
        const float id     = target / max;
        const float d      = smoe_q_fp16_round(sym_refit(x, w, n, qmin, qmax, id));
        if (d == best_d) continue;
        const float err = sym_eval(x, w, n, qmin, qmax, d, NULL);
        if (err < best_err) {
            best_err = err;
            best_d   = d;
        }
    }
    /* one more refit with the winner's levels */
    if (best_d != 0.0f) {
        const float d = smoe_q_fp16_round(sym_refit(x, w, n, qmin, qmax, 1.0f / best_d));
        if (d != best_d && sym_eval(x, w, n, qmin, qmax, d, NULL) < best_err) best_d = d;
    }
    sym_eval(x, w, n, qmin, qmax, best_d, L);
    return best_d;
}

/* Error of x ~ d16 * q + m16 (both fp16-exact) with nearest levels q in [0, nmax]; levels to L if non-NULL. */
static float asym_eval(const float *x, const float *w, int n, int nmax, float d16, float m16, uint8_t *L) {
    float       err = 0.0f;
    const float id  = d16 != 0.0f ? 1.0f / d16 : 0.0f;
    for (int i = 0; i < n; i++) {
        const int   q = d16 != 0.0f ? smoe_q_round_clamp((x[i] - m16) * id, 0, nmax) : 0;
        const float e = x[i] - ((float)q * d16 + m16);
        err += w[i] * e * e;
        if (L) L[i] = (uint8_t)q;
    }
    return err;
}

/* Weighted least squares of x ~ d * q + m for levels q = round((x - m0) * id). Returns false if degenerate. */
static bool asym_refit(const float *x, const float *w, int n, int nmax, float m0, float id, float *d, float *m) {
    float sw = 0.0f, sq = 0.0f, sqq = 0.0f, sx = 0.0f, sqx = 0.0f;
    for (int i = 0; i < n; i++) {
        const float q  = (float)smoe_q_round_clamp((x[i] - m0) * id, 0, nmax);
        const float wi = w[i];
        sw += wi;
        sq += wi * q;
        sqq += wi * q * q;
        sx += wi * x[i];
        sqx += wi * q * x[i];
    }
    const float det = sw * sqq - sq * sq;
    if (!(det > 0.0f)) return false;
    *d = (sw * sqx - sq * sx) / det;
    *m = (sqq * sx - sq * sqx) / det;
    return isfinite(*d) && isfinite(*m);
}

/* Searches (d, m) for an asymmetric block. The reference (d = (max - min) / nmax, m = min) is a candidate; others map
 * the range to nmax + step * k levels, refitted by least squares. Writes levels and returns fp16-exact d and m. */
static void asym_search(const float *x, const float *w, int n, int nmax, int nstep, float step, uint8_t *L, float *d_out,
                        float *m_out) {
    float min = x[0], max = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
    }
    float best_d = smoe_q_fp16_round((max - min) / (float)nmax), best_m = smoe_q_fp16_round(min);
    float best_err = asym_eval(x, w, n, nmax, best_d, best_m, NULL);
    if (max > min) {
        for (int k = -nstep; k <= nstep; k++) {
            const float id = ((float)nmax + step * (float)k) / (max - min);
            float       d, m;
            if (!asym_refit(x, w, n, nmax, min, id, &d, &m)) continue;
            d = smoe_q_fp16_round(d);
            m = smoe_q_fp16_round(m);
            const float err = asym_eval(x, w, n, nmax, d, m, NULL);
            if (err < best_err) {
                best_err = err;
                best_d   = d;
                best_m   = m;
            }
        }
        float d, m;
        if (best_d != 0.0f && asym_refit(x, w, n, nmax, best_m, 1.0f / best_d, &d, &m)) {
            d = smoe_q_fp16_round(d);
            m = smoe_q_fp16_round(m);
            if (asym_eval(x, w, n, nmax, d, m, NULL) < best_err) {
                best_d = d;
                best_m = m;
            }
        }
    }
    asym_eval(x, w, n, nmax, best_d, best_m, L);
    *d_out = best_d;
    *m_out = best_m;
}

/* ---- packing ---- */

static void pack_nibbles(const uint8_t *q, uint8_t *qs) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
}

static void pack_q5(const uint8_t *q, uint8_t *qs, uint8_t qh[4]) {
    uint32_t h = 0;
    for (int j = 0; j < 32; j++) h |= (uint32_t)((q[j] >> 4) & 1u) << j;
    pack_nibbles(q, qs);
    for (int b = 0; b < 4; b++) qh[b] = (uint8_t)(h >> (8 * b));
}

/* The 32 high bits of a Q5 block as bytes 0/1 (bit j of the little-endian u32 -> hb[j]), through a constant table
 * of each byte's bits spread over 8 bytes, so no loop needs a per-element variable shift and they vectorize. */
#define SPREAD(b)                                                                                                      \
    {(b) & 1, ((b) >> 1) & 1, ((b) >> 2) & 1, ((b) >> 3) & 1, ((b) >> 4) & 1, ((b) >> 5) & 1, ((b) >> 6) & 1,     \
     ((b) >> 7) & 1}
#define SPREAD4(b) SPREAD(b), SPREAD((b) + 1), SPREAD((b) + 2), SPREAD((b) + 3)
#define SPREAD16(b) SPREAD4(b), SPREAD4((b) + 4), SPREAD4((b) + 8), SPREAD4((b) + 12)
#define SPREAD64(b) SPREAD16(b), SPREAD16((b) + 16), SPREAD16((b) + 32), SPREAD16((b) + 48)
static const uint8_t spread_bits[256][8] = {SPREAD64(0), SPREAD64(64), SPREAD64(128), SPREAD64(192)};

static void expand_qh(const uint8_t qh[4], uint8_t hb[32]) {
    for (int b = 0; b < 4; b++) memcpy(hb + 8 * b, spread_bits[qh[b]], 8);
}

/* ---- reference quantizers (ggml's arithmetic, operation by operation) ---- */

static float block_absmax(const float *x, int n, float *max_signed) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max  = x[j];
        }
    }
    *max_signed = max;
    return amax;
}

void smoe_quant_q8_0_ref(const float *src, void *dst, int64_t n) {
    smoe_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / SMOE_QK8_0; i++, src += SMOE_QK8_0) {
        float       max;
        const float amax = block_absmax(src, SMOE_QK8_0, &max);
        const float d    = amax / 127.0f;
        const float id   = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d           = smoe_f32_to_fp16(d);
        for (int j = 0; j < SMOE_QK8_0; j++) y[i].qs[j] = (int8_t)roundf(src[j] * id);
    }
}

void smoe_quant_q4_0_ref(const float *src, void *dst, int64_t n) {
    smoe_block_q4_0 *y = dst;
    for (int64_t i = 0; i < n / SMOE_QK4_0; i++, src += SMOE_QK4_0) {
        float max;
        block_absmax(src, SMOE_QK4_0, &max);
        const float d  = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d         = smoe_f32_to_fp16(d);
        uint8_t q[32];
        for (int j = 0; j < 32; j++) {
            const int v = (int8_t)(src[j] * id + 8.5f);
            q[j]        = (uint8_t)(v < 15 ? v : 15);
        }
        pack_nibbles(q, y[i].qs);
    }
}

void smoe_quant_q5_0_ref(const float *src, void *dst, int64_t n) {
    smoe_block_q5_0 *y = dst;
    for (int64_t i = 0; i < n / SMOE_QK5_0; i++, src += SMOE_QK5_0) {
        float max;
        block_absmax(src, SMOE_QK5_0, &max);
        const float d  = max / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d         = smoe_f32_to_fp16(d);
        uint8_t q[32];
        for (int j = 0; j < 32; j++) {
            const int v = (int8_t)(src[j] * id + 16.5f);
            q[j]        = (uint8_t)(v < 31 ? v : 31);
        }
        pack_q5(q, y[i].qs, y[i].qh);
    }
}

static void minmax(const float *x, int n, float *min, float *max) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *min = lo;
    *max = hi;
}

void smoe_quant_q4_1_ref(const float *src, void *dst, int64_t n) {
    smoe_block_q4_1 *y = dst;
    for (int64_t i = 0; i < n / SMOE_QK4_1; i++, src += SMOE_QK4_1) {
        float min, max;
        minmax(src, SMOE_QK4_1, &min, &max);
        const float d  = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d         = smoe_f32_to_fp16(d);
        y[i].m         = smoe_f32_to_fp16(min);
        uint8_t q[32];
        for (int j = 0; j < 32; j++) {
            const int v = (int8_t)((src[j] - min) * id + 0.5f);
            q[j]        = (uint8_t)(v < 15 ? v : 15);
        }
        pack_nibbles(q, y[i].qs);
    }
}

void smoe_quant_q5_1_ref(const float *src, void *dst, int64_t n) {
    smoe_block_q5_1 *y = dst;
    for (int64_t i = 0; i < n / SMOE_QK5_1; i++, src += SMOE_QK5_1) {
        float min, max;
        minmax(src, SMOE_QK5_1, &min, &max);
        const float d  = (max - min) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d         = smoe_f32_to_fp16(d);
        y[i].m         = smoe_f32_to_fp16(min);
        uint8_t q[32];
        for (int j = 0; j < 32; j++) {
            const int v = (int8_t)((src[j] - min) * id + 0.5f);
            q[j]        = (uint8_t)(v < 31 ? v : 31);
        }
        pack_q5(q, y[i].qs, y[i].qh);
    }
}

/* ---- search quantizers ---- */

/* Candidate grids (levels around the extreme element): chosen on normal, Student-t and outlier rows; see the
 * RMSE figures in tests/python/test_quant_reference.py. */
#ifndef Q4_NSTEP
#define Q4_NSTEP 10
#endif
#ifndef Q4_STEP
#define Q4_STEP 0.2f
#endif
#ifndef Q5_NSTEP
#define Q5_NSTEP 10
#endif
#ifndef Q5_STEP
#define Q5_STEP 0.3f
#endif
#ifndef Q8_NSTEP
#define Q8_NSTEP 4
#endif
#ifndef Q8_STEP
#define Q8_STEP 1.0f
#endif

void smoe_quant_q4_0_search(const float *src, void *dst, int64_t n, const float *w) {
    smoe_block_q4_0 *y = dst;
    for (int64_t i = 0; i < n / SMOE_QK4_0; i++, src += SMOE_QK4_0) {
        const float *wb = w ? w + i * SMOE_QK4_0 : smoe_q_ones;
        float max;
        block_absmax(src, SMOE_QK4_0, &max);
        int8_t      L[32];
        const float d = sym_search(src, wb, 32, -8, 7, max / -8.0f, Q4_NSTEP, Q4_STEP, L);
        uint8_t     q[32];
        for (int j = 0; j < 32; j++) q[j] = (uint8_t)(L[j] + 8);
        y[i].d = smoe_f32_to_fp16(d);
        pack_nibbles(q, y[i].qs);
    }
}

void smoe_quant_q5_0_search(const float *src, void *dst, int64_t n, const float *w) {
    smoe_block_q5_0 *y = dst;
    for (int64_t i = 0; i < n / SMOE_QK5_0; i++, src += SMOE_QK5_0) {
        const float *wb = w ? w + i * SMOE_QK5_0 : smoe_q_ones;
        float max;
        block_absmax(src, SMOE_QK5_0, &max);
        int8_t      L[32];
        const float d = sym_search(src, wb, 32, -16, 15, max / -16.0f, Q5_NSTEP, Q5_STEP, L);
        uint8_t     q[32];
        for (int j = 0; j < 32; j++) q[j] = (uint8_t)(L[j] + 16);
        y[i].d = smoe_f32_to_fp16(d);
        pack_q5(q, y[i].qs, y[i].qh);
    }
}

void smoe_quant_q8_0_search(const float *src, void *dst, int64_t n, const float *w) {
    smoe_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / SMOE_QK8_0; i++, src += SMOE_QK8_0) {
        const float *wb = w ? w + i * SMOE_QK8_0 : smoe_q_ones;
        float       max;
        const float amax = block_absmax(src, SMOE_QK8_0, &max);
        const float d    = sym_search(src, wb, 32, -127, 127, amax / 127.0f, Q8_NSTEP, Q8_STEP, y[i].qs);
        y[i].d           = smoe_f32_to_fp16(d);
    }
}

void smoe_quant_q4_1_search(const float *src, void *dst, int64_t n, const float *w) {
    smoe_block_q4_1 *y = dst;
    for (int64_t i = 0; i < n / SMOE_QK4_1; i++, src += SMOE_QK4_1) {
        const float *wb = w ? w + i * SMOE_QK4_1 : smoe_q_ones;
        uint8_t q[32];
        float   d, m;
        asym_search(src, wb, 32, 15, Q4_NSTEP, Q4_STEP, q, &d, &m);
        y[i].d = smoe_f32_to_fp16(d);
        y[i].m = smoe_f32_to_fp16(m);
        pack_nibbles(q, y[i].qs);
    }
}

void smoe_quant_q5_1_search(const float *src, void *dst, int64_t n, const float *w) {
    smoe_block_q5_1 *y = dst;
    for (int64_t i = 0; i < n / SMOE_QK5_1; i++, src += SMOE_QK5_1) {
        const float *wb = w ? w + i * SMOE_QK5_1 : smoe_q_ones;
        uint8_t q[32];
        float   d, m;
        asym_search(src, wb, 32, 31, Q5_NSTEP, Q5_STEP, q, &d, &m);
        y[i].d = smoe_f32_to_fp16(d);
        y[i].m = smoe_f32_to_fp16(m);
        pack_q5(q, y[i].qs, y[i].qh);
    }
}

/* ---- dequantizers ---- */

void smoe_dequant_q4_0(const void *src, float *dst, int64_t n) {
    const smoe_block_q4_0 *x = src;
    for (int64_t i = 0; i < n / SMOE_QK4_0; i++, dst += SMOE_QK4_0) {
        const float d = smoe_fp16_to_f32(x[i].d);
        for (int j = 0; j < 16; j++) {
            dst[j]      = (float)((x[i].qs[j] & 0xF) - 8) * d;
            dst[j + 16] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void smoe_dequant_q4_1(const void *src, float *dst, int64_t n) {
    const smoe_block_q4_1 *x = src;
    for (int64_t i = 0; i < n / SMOE_QK4_1; i++, dst += SMOE_QK4_1) {
        const float d = smoe_fp16_to_f32(x[i].d), m = smoe_fp16_to_f32(x[i].m);
        for (int j = 0; j < 16; j++) {
            dst[j]      = (float)(x[i].qs[j] & 0xF) * d + m;
            dst[j + 16] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

void smoe_dequant_q5_0(const void *src, float *dst, int64_t n) {
    const smoe_block_q5_0 *x = src;
    for (int64_t i = 0; i < n / SMOE_QK5_0; i++, dst += SMOE_QK5_0) {
        const float d = smoe_fp16_to_f32(x[i].d);
        uint8_t     hb[32];
        expand_qh(x[i].qh, hb);
        for (int j = 0; j < 16; j++) {
            const int q0 = (x[i].qs[j] & 0xF) | (hb[j] << 4);
            const int q1 = (x[i].qs[j] >> 4) | (hb[j + 16] << 4);
            dst[j]       = (float)(q0 - 16) * d;
            dst[j + 16]  = (float)(q1 - 16) * d;
        }
    }
}

void smoe_dequant_q5_1(const void *src, float *dst, int64_t n) {
    const smoe_block_q5_1 *x = src;
    for (int64_t i = 0; i < n / SMOE_QK5_1; i++, dst += SMOE_QK5_1) {
        const float d = smoe_fp16_to_f32(x[i].d), m = smoe_fp16_to_f32(x[i].m);
        uint8_t     hb[32];
        expand_qh(x[i].qh, hb);
        for (int j = 0; j < 16; j++) {
            const int q0 = (x[i].qs[j] & 0xF) | (hb[j] << 4);
            const int q1 = (x[i].qs[j] >> 4) | (hb[j + 16] << 4);
            dst[j]       = (float)q0 * d + m;
            dst[j + 16]  = (float)q1 * d + m;
        }
    }
}

void smoe_dequant_q8_0(const void *src, float *dst, int64_t n) {
    const smoe_block_q8_0 *x = src;
    for (int64_t i = 0; i < n / SMOE_QK8_0; i++, dst += SMOE_QK8_0) {
        const float d = smoe_fp16_to_f32(x[i].d);
        for (int j = 0; j < 32; j++) dst[j] = (float)x[i].qs[j] * d;
    }
}

/* ---- dot products against Q8_0 (integer sums per block, one float multiply-add per block) ---- */

void smoe_vec_dot_q8_0_q8_0(int64_t n, float *out, const void *vx, const void *vy) {
    const smoe_block_q8_0 *x = vx, *y = vy;
    float                  sum = 0.0f;
    for (int64_t i = 0; i < n / SMOE_QK8_0; i++) {
        int32_t s = 0;
        for (int j = 0; j < 32; j++) s += (int32_t)x[i].qs[j] * y[i].qs[j];
        sum += (float)s * (smoe_fp16_to_f32(x[i].d) * smoe_fp16_to_f32(y[i].d));
    }
    *out = sum;
}

void smoe_vec_dot_q4_0_q8_0(int64_t n, float *out, const void *vx, const void *vy) {
    const smoe_block_q4_0 *x   = vx;
    const smoe_block_q8_0 *y   = vy;
    float                  sum = 0.0f;
    for (int64_t i = 0; i < n / SMOE_QK4_0; i++) {
        int32_t s = 0;
        for (int j = 0; j < 16; j++) {
            s += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j] + ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
        }
        sum += (float)s * (smoe_fp16_to_f32(x[i].d) * smoe_fp16_to_f32(y[i].d));
    }
    *out = sum;
}

void smoe_vec_dot_q4_1_q8_0(int64_t n, float *out, const void *vx, const void *vy) {
    const smoe_block_q4_1 *x   = vx;
    const smoe_block_q8_0 *y   = vy;
    float                  sum = 0.0f;
    for (int64_t i = 0; i < n / SMOE_QK4_1; i++) {
        int32_t s = 0, sy = 0;
        for (int j = 0; j < 16; j++) {
            s += (x[i].qs[j] & 0xF) * y[i].qs[j] + (x[i].qs[j] >> 4) * y[i].qs[j + 16];
            sy += y[i].qs[j] + y[i].qs[j + 16];
        }
        const float dy = smoe_fp16_to_f32(y[i].d);
        sum += (float)s * (smoe_fp16_to_f32(x[i].d) * dy) + (float)sy * (smoe_fp16_to_f32(x[i].m) * dy);
    }
    *out = sum;
}

void smoe_vec_dot_q5_0_q8_0(int64_t n, float *out, const void *vx, const void *vy) {
    const smoe_block_q5_0 *x   = vx;
    const smoe_block_q8_0 *y   = vy;
    float                  sum = 0.0f;
    for (int64_t i = 0; i < n / SMOE_QK5_0; i++) {
        /* sum (lo + 16 h - 16) y, as three sums that each vectorize */
        uint8_t hb[32];
        expand_qh(x[i].qh, hb);
        int32_t s = 0, sh = 0, sy = 0;
        for (int j = 0; j < 16; j++) s += (x[i].qs[j] & 0xF) * y[i].qs[j] + (x[i].qs[j] >> 4) * y[i].qs[j + 16];
        for (int j = 0; j < 32; j++) {
            sh += hb[j] * y[i].qs[j];
            sy += y[i].qs[j];
        }
        s += 16 * (sh - sy);
        sum += (float)s * (smoe_fp16_to_f32(x[i].d) * smoe_fp16_to_f32(y[i].d));
    }
    *out = sum;
}

void smoe_vec_dot_q5_1_q8_0(int64_t n, float *out, const void *vx, const void *vy) {
    const smoe_block_q5_1 *x   = vx;
    const smoe_block_q8_0 *y   = vy;
    float                  sum = 0.0f;
    for (int64_t i = 0; i < n / SMOE_QK5_1; i++) {
        uint8_t hb[32];
        expand_qh(x[i].qh, hb);
        int32_t s = 0, sh = 0, sy = 0;
        for (int j = 0; j < 16; j++) s += (x[i].qs[j] & 0xF) * y[i].qs[j] + (x[i].qs[j] >> 4) * y[i].qs[j + 16];
        for (int j = 0; j < 32; j++) {
            sh += hb[j] * y[i].qs[j];
            sy += y[i].qs[j];
        }
        s += 16 * sh;
        const float dy = smoe_fp16_to_f32(y[i].d);
        sum += (float)s * (smoe_fp16_to_f32(x[i].d) * dy) + (float)sy * (smoe_fp16_to_f32(x[i].m) * dy);
    }
    *out = sum;
}
