/*
 * quant.c - quantizing rows and tensors with the search quantizers, and error metrics of quantized rows.
 */
#include "quant-impl.h"

typedef void (*search_fn)(const float *src, void *dst, int64_t n, const float *w);

static search_fn search_quantizer(smoe_type type) {
    switch (type) {
    case SMOE_TYPE_Q4_0: return smoe_quant_q4_0_search;
    case SMOE_TYPE_Q4_1: return smoe_quant_q4_1_search;
    case SMOE_TYPE_Q5_0: return smoe_quant_q5_0_search;
    case SMOE_TYPE_Q5_1: return smoe_quant_q5_1_search;
    case SMOE_TYPE_Q8_0: return smoe_quant_q8_0_search;
    case SMOE_TYPE_Q4_K: return smoe_quant_q4_k_search;
    case SMOE_TYPE_Q5_K: return smoe_quant_q5_k_search;
    case SMOE_TYPE_Q6_K: return smoe_quant_q6_k_search;
    default: return NULL;
    }
}

size_t smoe_quantize_row(smoe_type type, const float *src, void *dst, int64_t n, const float *imatrix) {
    const size_t size = smoe_row_size(type, n);
    if (size == 0 && n != 0) return 0;
    search_fn fn = search_quantizer(type);
    if (fn) {
        fn(src, dst, n, imatrix);
        return size;
    }
    const smoe_type_traits *t = smoe_type_get_traits(type);
    if (!t || !t->from_f32) return 0;
    t->from_f32(src, dst, n);
    return size;
}

size_t smoe_quantize_rows_imatrix(smoe_type type, const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                                  const float *imatrix) {
    const size_t row = smoe_row_size(type, n_per_row);
    if (n_rows < 0 || (row == 0 && n_per_row != 0)) return 0;
    const smoe_type_traits *t = smoe_type_get_traits(type);
    if (!search_quantizer(type) && (!t || !t->from_f32)) return 0;
    if (n_rows > 0 && row > SIZE_MAX / (size_t)n_rows) return 0;
    for (int64_t r = 0; r < n_rows; r++) {
        smoe_quantize_row(type, src + r * n_per_row, (char *)dst + (size_t)r * row, n_per_row, imatrix);
    }
    return row * (size_t)n_rows;
}

size_t smoe_quantize_rows(smoe_type type, const float *src, void *dst, int64_t n_rows, int64_t n_per_row) {
    return smoe_quantize_rows_imatrix(type, src, dst, n_rows, n_per_row, NULL);
}

bool smoe_dequantize_row(smoe_type type, const void *src, float *dst, int64_t n) {
    const smoe_type_traits *t = smoe_type_get_traits(type);
    if (!t || !t->to_f32 || n < 0 || n % t->block_size != 0) return false;
    t->to_f32(src, dst, n);
    return true;
}

bool smoe_quant_all_finite(const float *x, int64_t n) {
    /* an exponent of all ones is Inf or NaN; OR-reduce so the loop vectorizes */
    uint32_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

/* ---- error metrics ---- */

bool smoe_quant_error_add(smoe_quant_error *e, smoe_type type, const float *src, const void *q, int64_t n) {
    const smoe_type_traits *t = smoe_type_get_traits(type);
    if (!t || !t->to_f32 || n < 0 || n % t->block_size != 0) return false;
    enum { CHUNK = 1024 }; /* a multiple of every block size */
    float       buf[CHUNK];
    const char *qb = q;
    for (int64_t off = 0; off < n;) {
        int64_t m = n - off;
        if (m > CHUNK) m = CHUNK;
        /* chunks stay block-aligned: CHUNK is a multiple of 256 and of 32, and the tail is a whole number of blocks */
        t->to_f32(qb + (size_t)(off / t->block_size) * t->type_size, buf, m);
        double ss = 0, sx = 0, mx = e->max_abs_err;
        for (int64_t i = 0; i < m; i++) {
            const double x = src[off + i], y = buf[i];
            if (!isfinite(y)) {
                e->n_nonfinite++;
                continue;
            }
            const double d = x - y;
            ss += d * d;
            sx += x * x;
            if (fabs(d) > mx) mx = fabs(d);
        }
        e->sum_sq_err += ss;
        e->sum_sq_src += sx;
        e->max_abs_err = mx;
        off += m;
    }
    e->n += n;
    return true;
}

void smoe_quant_error_merge(smoe_quant_error *into, const smoe_quant_error *from) {
    into->sum_sq_err += from->sum_sq_err;
    into->sum_sq_src += from->sum_sq_src;
    if (from->max_abs_err > into->max_abs_err) into->max_abs_err = from->max_abs_err;
    into->n += from->n;
    into->n_nonfinite += from->n_nonfinite;
}

double smoe_quant_error_rmse(const smoe_quant_error *e) { return e->n > 0 ? sqrt(e->sum_sq_err / (double)e->n) : 0.0; }

double smoe_quant_error_nmse(const smoe_quant_error *e) {
    if (e->sum_sq_src > 0) return e->sum_sq_err / e->sum_sq_src;
    return e->sum_sq_err > 0 ? INFINITY : 0.0;
}
