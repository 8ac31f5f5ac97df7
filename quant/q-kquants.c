/*
 * q-kquants.c - the K-quant super-block formats Q4_K, Q5_K, Q6_K and the activation format Q8_K: quantizers,
 * dequantizers (bit-exact with ggml / gguf.quants) and dot products against Q8_K.
 *
 * Quantization is two-level: each sub-block gets a float scale (and for Q4_K/Q5_K a min) from a search, then the
 * sub-block scales are themselves quantized (6-bit unsigned for Q4_K/Q5_K, 8-bit signed for Q6_K) against an fp16
 * super-block scale. Steps:
 *   1. per sub-block, candidate inverse scales around nmax / range; each candidate's levels are refitted by weighted
 *      least squares (scale, and min constrained to <= 0, as the format stores x = d*sc*q - dmin*m with m >= 0);
 *      candidates are compared by their error with re-rounded levels; the best is refitted once more;
 *   2. the super-block scales put the largest sub-block scale (and min) on the top 6-bit (or -128) level;
 *   3. each sub-block's integer scale/min is chosen among the nearest values +-1 by the error of the levels they
 *      produce (measured exactly as dequantization computes: (d * sc) * q - (dmin * m));
 *   4. the fp16 super-block scale(s) are refitted by least squares for the chosen integers and levels, rounded, and
 *      step 3 repeated; kept only if the block error went down.
 * Weights (an importance matrix) enter every least-squares fit and error; NULL means uniform.
 */
#include "quant-impl.h"

/* candidate grids for the sub-block search */
#ifndef K4_NSTEP
#define K4_NSTEP 10
#endif
#ifndef K4_STEP
#define K4_STEP 0.2f
#endif
#ifndef K5_NSTEP
#define K5_NSTEP 10
#endif
#ifndef K5_STEP
#define K5_STEP 0.3f
#endif
#ifndef K6_NSTEP
#define K6_NSTEP 10
#endif
#ifndef K6_STEP
#define K6_STEP 0.3f
#endif
#ifndef K_REFIT_ROUNDS
#define K_REFIT_ROUNDS 2
#endif

/* ---- step 1: sub-block search ---- */

/* Error of x ~ s * q + b with nearest q in [0, nmax] (float parameters, s > 0). */
static float asym_sub_eval(const float *x, const float *w, int n, int nmax, float s, float b) {
    const float id  = 1.0f / s;
    float       err = 0.0f;
    for (int i = 0; i < n; i++) {
        const int   q = smoe_q_round_clamp((x[i] - b) * id, 0, nmax);
        const float e = x[i] - ((float)q * s + b);
        err += w[i] * e * e;
    }
    return err;
}

/* Least squares of x ~ s * q + b, b <= 0, for levels q = round((x - b0) * id). False if degenerate. */
static bool asym_sub_refit(const float *x, const float *w, int n, int nmax, float b0, float id, float *s, float *b) {
    float sw = 0.0f, sq = 0.0f, sqq = 0.0f, sx = 0.0f, sqx = 0.0f;
    for (int i = 0; i < n; i++) {
        const float q  = (float)smoe_q_round_clamp((x[i] - b0) * id, 0, nmax);
        const float wi = w[i];
        sw += wi;
        sq += wi * q;
        sqq += wi * q * q;
        sx += wi * x[i];
        sqx += wi * q * x[i];
    }
    const float det = sw * sqq - sq * sq;
    float       ss, bb;
    if (det > 0.0f) {
        ss = (sw * sqx - sq * sx) / det;
        bb = (sqq * sx - sq * sqx) / det;
    } else {
        ss = 0.0f;
        bb = 1.0f;
    }
    if (bb > 0.0f) { /* the format cannot add a positive offset: fit the scale alone */
        bb = 0.0f;
        if (!(sqq > 0.0f)) return false;
        ss = sqx / sqq;
    }
    if (!(ss > 0.0f) || !isfinite(ss) || !isfinite(bb)) return false;
    *s = ss;
    *b = bb;
    return true;
}

/* x ~ s * q - m with q in [0, nmax], s >= 0, m >= 0. */
static void asym_sub_search(const float *x, const float *w, int n, int nmax, int nstep, float step, float *s_out,
                            float *m_out) {
    float min = x[0], max = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
    }
    if (min > 0.0f) min = 0.0f;
    if (!(max > min)) { /* constant block <= 0 (or all zero) */
        *s_out = 0.0f;
        *m_out = -min;
        return;
    }
    float best_s = (max - min) / (float)nmax, best_b = min;
    float best_err = asym_sub_eval(x, w, n, nmax, best_s, best_b);
    for (int k = -nstep; k <= nstep; k++) {
        const float id = ((float)nmax + step * (float)k) / (max - min);
        float       s, b;
        if (!asym_sub_refit(x, w, n, nmax, min, id, &s, &b)) continue;
        const float err = asym_sub_eval(x, w, n, nmax, s, b);
        if (err < best_err) {
            best_err = err;
            best_s   = s;
            best_b   = b;
        }
    }
    float s, b;
    if (asym_sub_refit(x, w, n, nmax, best_b, 1.0f / best_s, &s, &b) && asym_sub_eval(x, w, n, nmax, s, b) < best_err) {
        best_s = s;
        best_b = b;
    }
    *s_out = best_s;
    *m_out = -best_b;
}

/* Error of x ~ s * q with nearest q in [qmin, qmax] (s != 0). */
static float sym_sub_eval(const float *x, const float *w, int n, int qmin, int qmax, float s) {
    const float id  = 1.0f / s;
    float       err = 0.0f;
    for (int i = 0; i < n; i++) {
        const float e = x[i] - (float)smoe_q_round_clamp(x[i] * id, qmin, qmax) * s;
        err += w[i] * e * e;
    }
    return err;
}

static float sym_sub_refit(const float *x, const float *w, int n, int qmin, int qmax, float id) {
    float sxq = 0.0f, sqq = 0.0f;
    for (int i = 0; i < n; i++) {
        const float q = (float)smoe_q_round_clamp(x[i] * id, qmin, qmax);
        sxq += w[i] * x[i] * q;
        sqq += w[i] * q * q;
    }
    return sqq > 0.0f ? sxq / sqq : 0.0f;
}

/* x ~ s * q with q in [qmin, qmax]; the largest-magnitude element goes near qmin (the longer side). */
static float sym_sub_search(const float *x, const float *w, int n, int qmin, int qmax, int nstep, float step) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max  = x[i];
        }
    }
    if (amax == 0.0f) return 0.0f;
    float best_s   = max / (float)qmin;
    float best_err = sym_sub_eval(x, w, n, qmin, qmax, best_s);
    for (int k = -nstep; k <= nstep + 1; k++) {
        const float target = k <= nstep ? (float)qmin + step * (float)k : (float)qmax;
        const float s      = sym_sub_refit(x, w, n, qmin, qmax, target / max);
        if (s == 0.0f || !isfinite(s)) continue;
        const float err = sym_sub_eval(x, w, n, qmin, qmax, s);
        if (err < best_err) {
            best_err = err;
            best_s   = s;
        }
    }
    const float s = sym_sub_refit(x, w, n, qmin, qmax, 1.0f / best_s);
    if (s != 0.0f && isfinite(s) && sym_sub_eval(x, w, n, qmin, qmax, s) < best_err) best_s = s;
    return best_s;
}

/* ---- steps 2-4 for Q4_K / Q5_K: 8 sub-blocks of 32, 6-bit scales and mins ---- */

/* Levels of one sub-block for effective scale d1 and min m1 (as dequantization computes them); returns the error. */
static float asym_levels(const float *x, const float *w, int nmax, float d1, float m1, uint8_t *L) {
    float err = 0.0f;
    if (d1 > 0.0f) {
        const float id = 1.0f / d1;
        for (int i = 0; i < 32; i++) {
            const int   q = smoe_q_round_clamp((x[i] + m1) * id, 0, nmax);
            const float e = x[i] - ((float)q * d1 - m1);
            err += w[i] * e * e;
            if (L) L[i] = (uint8_t)q;
        }
    } else {
        for (int i = 0; i < 32; i++) {
            const float e = x[i] + m1;
            err += w[i] * e * e;
            if (L) L[i] = 0;
        }
    }
    return err;
}

/* Step 3: picks sc[j], m[j] within +-1 of the given centers; fills L; returns the block error. */
static float asym_pick_scales(const float *x, const float *w, int nmax, float d, float dmin, const int *c_sc,
                              const int *c_m, uint8_t *sc, uint8_t *m, uint8_t *L) {
    float total = 0.0f;
    for (int j = 0; j < 8; j++) {
        const float *xj = x + 32 * j, *wj = w + 32 * j;
        float        best = INFINITY;
        int          bs = 0, bm = 0;
        for (int a = c_sc[j] - 1; a <= c_sc[j] + 1; a++) {
            if (a < 0 || a > 63) continue;
            for (int b = c_m[j] - 1; b <= c_m[j] + 1; b++) {
                if (b < 0 || b > 63) continue;
                const float err = asym_levels(xj, wj, nmax, d * (float)a, dmin * (float)b, NULL);
                if (err < best) {
                    best = err;
                    bs   = a;
                    bm   = b;
                }
            }
        }
        sc[j] = (uint8_t)bs;
        m[j]  = (uint8_t)bm;
        asym_levels(xj, wj, nmax, d * (float)bs, dmin * (float)bm, L + 32 * j);
        total += best;
    }
    return total;
}

typedef struct asym_block {
    float   d, dmin; /* fp16-exact */
    uint8_t sc[8], m[8];
    uint8_t L[SMOE_QK_K];
} asym_block;

static void asym_block_quantize(const float *x, const float *w, int nmax, int nstep, float step, asym_block *out) {
    float s[8], mn[8], max_s = 0.0f, max_m = 0.0f;
    for (int j = 0; j < 8; j++) {
        asym_sub_search(x + 32 * j, w + 32 * j, 32, nmax, nstep, step, &s[j], &mn[j]);
        if (s[j] > max_s) max_s = s[j];
        if (mn[j] > max_m) max_m = mn[j];
    }
    float d    = smoe_q_fp16_round(max_s / 63.0f);
    float dmin = smoe_q_fp16_round(max_m / 63.0f);
    int   c_sc[8], c_m[8];
    for (int j = 0; j < 8; j++) {
        c_sc[j] = d > 0.0f ? smoe_q_round_clamp(s[j] / d, 0, 63) : 0;
        c_m[j]  = dmin > 0.0f ? smoe_q_round_clamp(mn[j] / dmin, 0, 63) : 0;
    }
    out->d         = d;
    out->dmin      = dmin;
    float best_err = asym_pick_scales(x, w, nmax, d, dmin, c_sc, c_m, out->sc, out->m, out->L);

    asym_block trial;
    for (int round = 0; round < K_REFIT_ROUNDS; round++) {
        /* step 4: x ~ d * A - dmin * B with A = sc * q, B = m */
        double saa = 0, sab = 0, sbb = 0, sxa = 0, sxb = 0;
        for (int i = 0; i < SMOE_QK_K; i++) {
            const double A = (double)out->sc[i / 32] * out->L[i], B = out->m[i / 32], wi = w[i];
            saa += wi * A * A;
            sab += wi * A * B;
            sbb += wi * B * B;
            sxa += wi * x[i] * A;
            sxb += wi * x[i] * B;
        }
        const double det = saa * sbb - sab * sab;
        double       nd, ndmin;
        if (det > 1e-30 * saa * sbb && det > 0) {
            nd    = (sxa * sbb - sab * sxb) / det;
            ndmin = -(saa * sxb - sab * sxa) / det;
        } else {
            nd    = saa > 0 ? sxa / saa : 0.0;
            ndmin = out->dmin;
        }
        if (ndmin < 0) {
            ndmin = 0;
            nd    = saa > 0 ? sxa / saa : 0.0;
        }
        if (!(nd >= 0) || !isfinite(nd) || !isfinite(ndmin)) break;
        trial.d    = smoe_q_fp16_round((float)nd);
        trial.dmin = smoe_q_fp16_round((float)ndmin);
        if (trial.d == out->d && trial.dmin == out->dmin) break;
        for (int j = 0; j < 8; j++) {
            c_sc[j] = out->sc[j];
            c_m[j]  = out->m[j];
        }
        const float err = asym_pick_scales(x, w, nmax, trial.d, trial.dmin, c_sc, c_m, trial.sc, trial.m, trial.L);
        if (!(err < best_err)) break;
        best_err = err;
        *out     = trial;
    }
}

static void pack_k4_scales(const uint8_t *sc, const uint8_t *m, uint8_t *q) {
    for (int j = 0; j < 4; j++) {
        q[j]     = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        q[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        q[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
    }
}

void smoe_quant_q4_k_search(const float *src, void *dst, int64_t n, const float *w) {
    smoe_block_q4_k *y = dst;
    asym_block       b;
    for (int64_t i = 0; i < n / SMOE_QK_K; i++, src += SMOE_QK_K) {
        const float *wb = w ? w + i * SMOE_QK_K : smoe_q_ones;
        asym_block_quantize(src, wb, 15, K4_NSTEP, K4_STEP, &b);
        y[i].d    = smoe_f32_to_fp16(b.d);
        y[i].dmin = smoe_f32_to_fp16(b.dmin);
        pack_k4_scales(b.sc, b.m, y[i].scales);
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                y[i].qs[32 * c + l] = (uint8_t)(b.L[64 * c + l] | (b.L[64 * c + 32 + l] << 4));
            }
        }
    }
}

void smoe_quant_q5_k_search(const float *src, void *dst, int64_t n, const float *w) {
    smoe_block_q5_k *y = dst;
    asym_block       b;
    for (int64_t i = 0; i < n / SMOE_QK_K; i++, src += SMOE_QK_K) {
        const float *wb = w ? w + i * SMOE_QK_K : smoe_q_ones;
        asym_block_quantize(src, wb, 31, K5_NSTEP, K5_STEP, &b);
        y[i].d    = smoe_f32_to_fp16(b.d);
        y[i].dmin = smoe_f32_to_fp16(b.dmin);
        pack_k4_scales(b.sc, b.m, y[i].scales);
        memset(y[i].qh, 0, sizeof(y[i].qh));
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                const uint8_t lo = b.L[64 * c + l], hi = b.L[64 * c + 32 + l];
                y[i].qs[32 * c + l] = (uint8_t)((lo & 0xF) | ((hi & 0xF) << 4));
                y[i].qh[l] |= (uint8_t)(((lo >> 4) & 1) << (2 * c));
                y[i].qh[l] |= (uint8_t)(((hi >> 4) & 1) << (2 * c + 1));
            }
        }
    }
}

void smoe_quant_q4_k_ref(const float *src, void *dst, int64_t n) { smoe_quant_q4_k_search(src, dst, n, NULL); }
void smoe_quant_q5_k_ref(const float *src, void *dst, int64_t n) { smoe_quant_q5_k_search(src, dst, n, NULL); }

/* ---- Q6_K: 16 sub-blocks of 16, signed 8-bit scales ---- */

static float sym_levels16(const float *x, const float *w, float d1, int8_t *L) {
    float err = 0.0f;
    if (d1 == 0.0f) {
        for (int i = 0; i < 16; i++) {
            err += w[i] * x[i] * x[i];
            if (L) L[i] = 0;
        }
        return err;
    }
    const float id = 1.0f / d1;
    for (int i = 0; i < 16; i++) {
        const int   q = smoe_q_round_clamp(x[i] * id, -32, 31);
        const float e = x[i] - d1 * (float)q;
        err += w[i] * e * e;
        if (L) L[i] = (int8_t)q;
    }
    return err;
}

static float sym_pick_scales(const float *x, const float *w, float d, const int *center, int8_t *sc, int8_t *L) {
    float total = 0.0f;
    for (int j = 0; j < 16; j++) {
        const float *xj = x + 16 * j, *wj = w + 16 * j;
        float        best = INFINITY;
        int          bs   = 0;
        for (int a = center[j] - 1; a <= center[j] + 1; a++) {
            if (a < -128 || a > 127) continue;
            const float err = sym_levels16(xj, wj, d * (float)a, NULL);
            if (err < best) {
                best = err;
                bs   = a;
            }
        }
        sc[j] = (int8_t)bs;
        sym_levels16(xj, wj, d * (float)bs, L + 16 * j);
        total += best;
    }
    return total;
}

void smoe_quant_q6_k_search(const float *src, void *dst, int64_t n, const float *w) {
    smoe_block_q6_k *y = dst;
    for (int64_t i = 0; i < n / SMOE_QK_K; i++, src += SMOE_QK_K) {
        const float *wb = w ? w + i * SMOE_QK_K : smoe_q_ones;
        float s[16], amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 16; j++) {
            s[j] = sym_sub_search(src + 16 * j, wb + 16 * j, 16, -32, 31, K6_NSTEP, K6_STEP);
            if (fabsf(s[j]) > amax) {
                amax = fabsf(s[j]);
                max  = s[j];
            }
        }
        float  d = smoe_q_fp16_round(max / -128.0f);
        int    center[16];
        int8_t sc[16], L[SMOE_QK_K];
        for (int j = 0; j < 16; j++) center[j] = d != 0.0f ? smoe_q_round_clamp(s[j] / d, -128, 127) : 0;
        float best_err = sym_pick_scales(src, wb, d, center, sc, L);
        for (int round = 0; round < K_REFIT_ROUNDS && d != 0.0f; round++) {
            double saa = 0, sxa = 0;
            for (int k = 0; k < SMOE_QK_K; k++) {
                const double A = (double)sc[k / 16] * L[k];
                saa += wb[k] * A * A;
                sxa += wb[k] * src[k] * A;
            }
            if (!(saa > 0)) break;
            const float nd = smoe_q_fp16_round((float)(sxa / saa));
            if (nd == d || nd == 0.0f) break;
            int8_t tsc[16], tL[SMOE_QK_K];
            for (int j = 0; j < 16; j++) center[j] = sc[j];
            const float err = sym_pick_scales(src, wb, nd, center, tsc, tL);
            if (!(err < best_err)) break;
            best_err = err;
            d        = nd;
            memcpy(sc, tsc, sizeof(sc));
            memcpy(L, tL, sizeof(L));
        }
        y[i].d = smoe_f32_to_fp16(d);
        memcpy(y[i].scales, sc, sizeof(sc));
        memset(y[i].qh, 0, sizeof(y[i].qh));
        for (int h = 0; h < 2; h++) {
            const int8_t *Lh = L + 128 * h;
            uint8_t      *ql = y[i].ql + 64 * h, *qh = y[i].qh + 32 * h;
            for (int e = 0; e < 128; e++) {
                const uint8_t q = (uint8_t)(Lh[e] + 32);
                if (e < 64) ql[e] = (uint8_t)(q & 0xF);
                else ql[e - 64] |= (uint8_t)((q & 0xF) << 4);
                qh[e % 32] |= (uint8_t)((q >> 4) << (2 * (e / 32)));
            }
        }
    }
}

void smoe_quant_q6_k_ref(const float *src, void *dst, int64_t n) { smoe_quant_q6_k_search(src, dst, n, NULL); }

/* ---- Q8_K (activations) ---- */

void smoe_quant_q8_k_ref(const float *src, void *dst, int64_t n) {
    smoe_block_q8_k *y = dst;
    for (int64_t i = 0; i < n / SMOE_QK_K; i++, src += SMOE_QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < SMOE_QK_K; j++) {
            if (fabsf(src[j]) > amax) {
                amax = fabsf(src[j]);
                max  = src[j];
            }
        }
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < SMOE_QK_K; j++) {
            const int v = smoe_q_round_clamp(iscale * src[j], -127, 127);
            y[i].qs[j]  = (int8_t)v;
        }
        for (int j = 0; j < SMOE_QK_K / 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += y[i].qs[16 * j + l];
            y[i].bsums[j] = (int16_t)s;
        }
        y[i].d = 1.0f / iscale;
    }
}

void smoe_dequant_q8_k(const void *src, float *dst, int64_t n) {
    const smoe_block_q8_k *x = src;
    for (int64_t i = 0; i < n / SMOE_QK_K; i++, dst += SMOE_QK_K) {
        for (int j = 0; j < SMOE_QK_K; j++) dst[j] = x[i].d * (float)x[i].qs[j];
    }
}

/* ---- dequantizers ---- */

void smoe_dequant_q4_k(const void *src, float *dst, int64_t n) {
    const smoe_block_q4_k *x = src;
    for (int64_t i = 0; i < n / SMOE_QK_K; i++) {
        const float d = smoe_fp16_to_f32(x[i].d), dmin = smoe_fp16_to_f32(x[i].dmin);
        for (int c = 0; c < 4; c++) {
            uint8_t sc0, m0, sc1, m1;
            smoe_quant_k4_scale_min(2 * c, x[i].scales, &sc0, &m0);
            smoe_quant_k4_scale_min(2 * c + 1, x[i].scales, &sc1, &m1);
            const float    d0 = d * (float)sc0, mm0 = dmin * (float)m0;
            const float    d1 = d * (float)sc1, mm1 = dmin * (float)m1;
            const uint8_t *q  = x[i].qs + 32 * c;
            for (int l = 0; l < 32; l++) *dst++ = d0 * (float)(q[l] & 0xF) - mm0;
            for (int l = 0; l < 32; l++) *dst++ = d1 * (float)(q[l] >> 4) - mm1;
        }
    }
}

void smoe_dequant_q5_k(const void *src, float *dst, int64_t n) {
    const smoe_block_q5_k *x = src;
    for (int64_t i = 0; i < n / SMOE_QK_K; i++) {
        const float d = smoe_fp16_to_f32(x[i].d), dmin = smoe_fp16_to_f32(x[i].dmin);
        for (int c = 0; c < 4; c++) {
            uint8_t sc0, m0, sc1, m1;
            smoe_quant_k4_scale_min(2 * c, x[i].scales, &sc0, &m0);
            smoe_quant_k4_scale_min(2 * c + 1, x[i].scales, &sc1, &m1);
            const float    d0 = d * (float)sc0, mm0 = dmin * (float)m0;
            const float    d1 = d * (float)sc1, mm1 = dmin * (float)m1;
            const uint8_t *q  = x[i].qs + 32 * c;
            for (int l = 0; l < 32; l++) {
                const int v = (q[l] & 0xF) | (((x[i].qh[l] >> (2 * c)) & 1) << 4);
                *dst++      = d0 * (float)v - mm0;
            }
            for (int l = 0; l < 32; l++) {
                const int v = (q[l] >> 4) | (((x[i].qh[l] >> (2 * c + 1)) & 1) << 4);
                *dst++      = d1 * (float)v - mm1;
            }
        }
    }
}

void smoe_dequant_q6_k(const void *src, float *dst, int64_t n) {
    const smoe_block_q6_k *x = src;
    for (int64_t i = 0; i < n / SMOE_QK_K; i++) {
        const float d = smoe_fp16_to_f32(x[i].d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            const int8_t  *sc = x[i].scales + 8 * h;
            for (int e = 0; e < 128; e++) {
                const int lo = e < 64 ? (ql[e] & 0xF) : (ql[e - 64] >> 4);
                const int q  = (lo | (((qh[e % 32] >> (2 * (e / 32))) & 3) << 4)) - 32;
                *dst++       = (d * (float)sc[e / 16]) * (float)q;
            }
        }
    }
}

/* ---- dot products against Q8_K ---- */

void smoe_vec_dot_q4_k_q8_k(int64_t n, float *out, const void *vx, const void *vy) {
    const smoe_block_q4_k *x   = vx;
    const smoe_block_q8_k *y   = vy;
    float                  sum = 0.0f;
    for (int64_t i = 0; i < n / SMOE_QK_K; i++) {
        int32_t sumi = 0, summ = 0;
        for (int c = 0; c < 4; c++) {
            uint8_t sc0, m0, sc1, m1;
            smoe_quant_k4_scale_min(2 * c, x[i].scales, &sc0, &m0);
            smoe_quant_k4_scale_min(2 * c + 1, x[i].scales, &sc1, &m1);
            const uint8_t *q  = x[i].qs + 32 * c;
            const int8_t  *y0 = y[i].qs + 64 * c, *y1 = y0 + 32;
            int32_t        s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += (q[l] & 0xF) * y0[l];
                s1 += (q[l] >> 4) * y1[l];
            }
            sumi += sc0 * s0 + sc1 * s1;
            summ += m0 * (y[i].bsums[4 * c] + y[i].bsums[4 * c + 1]) + m1 * (y[i].bsums[4 * c + 2] + y[i].bsums[4 * c + 3]);
        }
        sum += y[i].d * (smoe_fp16_to_f32(x[i].d) * (float)sumi - smoe_fp16_to_f32(x[i].dmin) * (float)summ);
    }
    *out = sum;
}

void smoe_vec_dot_q5_k_q8_k(int64_t n, float *out, const void *vx, const void *vy) {
    const smoe_block_q5_k *x   = vx;
    const smoe_block_q8_k *y   = vy;
    float                  sum = 0.0f;
    for (int64_t i = 0; i < n / SMOE_QK_K; i++) {
        int32_t sumi = 0, summ = 0;
        for (int c = 0; c < 4; c++) {
            uint8_t sc0, m0, sc1, m1;
            smoe_quant_k4_scale_min(2 * c, x[i].scales, &sc0, &m0);
            smoe_quant_k4_scale_min(2 * c + 1, x[i].scales, &sc1, &m1);
            const uint8_t *q  = x[i].qs + 32 * c;
            const int8_t  *y0 = y[i].qs + 64 * c, *y1 = y0 + 32;
            int32_t        s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                const uint8_t h = x[i].qh[l] >> (2 * c);
                s0 += ((q[l] & 0xF) | ((h & 1) << 4)) * y0[l];
                s1 += ((q[l] >> 4) | ((h & 2) << 3)) * y1[l];
            }
            sumi += sc0 * s0 + sc1 * s1;
            summ += m0 * (y[i].bsums[4 * c] + y[i].bsums[4 * c + 1]) + m1 * (y[i].bsums[4 * c + 2] + y[i].bsums[4 * c + 3]);
        }
        sum += y[i].d * (smoe_fp16_to_f32(x[i].d) * (float)sumi - smoe_fp16_to_f32(x[i].dmin) * (float)summ);
    }
    *out = sum;
}

void smoe_vec_dot_q6_k_q8_k(int64_t n, float *out, const void *vx, const void *vy) {
    const smoe_block_q6_k *x   = vx;
    const smoe_block_q8_k *y   = vy;
    float                  sum = 0.0f;
    for (int64_t i = 0; i < n / SMOE_QK_K; i++) {
        int32_t sumi = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            const int8_t  *sc = x[i].scales + 8 * h, *yq = y[i].qs + 128 * h;
            /* four groups of 32 elements: e = 32 g + l */
            for (int g = 0; g < 4; g++) {
                const uint8_t *qlg   = ql + 32 * (g & 1);
                const int      shift = g < 2 ? 0 : 4;
                int32_t        s0 = 0, s1 = 0; /* the two sub-blocks of 16 in this group */
                for (int l = 0; l < 16; l++) {
                    s0 += (((qlg[l] >> shift) & 0xF) | (((qh[l] >> (2 * g)) & 3) << 4)) * yq[32 * g + l];
                    s1 += (((qlg[l + 16] >> shift) & 0xF) | (((qh[l + 16] >> (2 * g)) & 3) << 4)) * yq[32 * g + 16 + l];
                }
                /* the -32 offset: sum of y over each sub-block, from bsums */
                s0 -= 32 * y[i].bsums[8 * h + 2 * g];
                s1 -= 32 * y[i].bsums[8 * h + 2 * g + 1];
                sumi += sc[2 * g] * s0 + sc[2 * g + 1] * s1;
            }
        }
        sum += y[i].d * smoe_fp16_to_f32(x[i].d) * (float)sumi;
    }
    *out = sum;
}
