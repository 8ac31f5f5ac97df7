/*
 * quant-tool.c - a helper for tests/python/test_quant_reference.py: runs smoe's quantizers, dequantizers and dot
 * products on raw little-endian files so the test can compare them with the PyPI gguf package.
 *
 *   quant-tool quantize TYPE ref|search IN.f32 OUT.bin N_PER_ROW [IMATRIX.f32]
 *   quant-tool dequantize TYPE IN.bin OUT.f32
 *   quant-tool vecdot TYPE W.bin ACT.f32 N_PER_ROW OUT.f32   one dot per row of W with ACT (ACT quantized to the
 *                                                            type's vec_dot_type by its reference quantizer)
 *   quant-tool gguf-dequant FILE.gguf TENSOR OUT.f32          a tensor of a GGUF file (read with core/gguf.c),
 *                                                            dequantized
 * Exit status 0 on success, 1 on failure (message on stderr), 2 on usage errors.
 */
#include "core/gguf.h"
#include "quant/quant.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "quant-tool: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(len > 0 ? (size_t)len : 1);
    if (!buf || (len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len)) {
        fprintf(stderr, "quant-tool: %s: read failed\n", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *size = (size_t)len;
    return buf;
}

static int write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        fprintf(stderr, "quant-tool: %s: write failed\n", path);
        return 1;
    }
    return 0;
}

static int cmd_quantize(int argc, char **argv) {
    if (argc < 6) return 2;
    const int type = smoe_type_from_name(argv[1]);
    const int ref  = !strcmp(argv[2], "ref");
    const long long n_per_row = atoll(argv[5]);
    const smoe_type_traits *t = smoe_type_get_traits(type);
    if (!t || n_per_row <= 0 || smoe_row_size(type, n_per_row) == 0) {
        fprintf(stderr, "quant-tool: bad type or row length\n");
        return 1;
    }
    size_t size;
    float *src = read_file(argv[3], &size);
    if (!src) return 1;
    float *imatrix = NULL;
    if (argc > 6) {
        size_t isz;
        imatrix = read_file(argv[6], &isz);
        if (!imatrix || isz != (size_t)n_per_row * sizeof(float)) {
            fprintf(stderr, "quant-tool: imatrix must hold %lld floats\n", n_per_row);
            free(src);
            free(imatrix);
            return 1;
        }
    }
    const int64_t n_rows = (int64_t)(size / sizeof(float)) / n_per_row;
    const size_t  row    = smoe_row_size(type, n_per_row);
    void         *dst    = malloc(row * (size_t)n_rows + 1);
    int           rc     = 1;
    if (ref) {
        if (t->from_f32) {
            for (int64_t r = 0; r < n_rows; r++) t->from_f32(src + r * n_per_row, (char *)dst + r * row, n_per_row);
            rc = 0;
        }
    } else {
        rc = smoe_quantize_rows_imatrix(type, src, dst, n_rows, n_per_row, imatrix) == row * (size_t)n_rows ? 0 : 1;
    }
    if (rc == 0) rc = write_file(argv[4], dst, row * (size_t)n_rows);
    else fprintf(stderr, "quant-tool: %s cannot be quantized\n", argv[1]);
    free(dst);
    free(src);
    free(imatrix);
    return rc;
}

static int cmd_dequantize(int argc, char **argv) {
    if (argc < 4) return 2;
    const int               type = smoe_type_from_name(argv[1]);
    const smoe_type_traits *t    = smoe_type_get_traits(type);
    if (!t || !t->to_f32) {
        fprintf(stderr, "quant-tool: cannot dequantize %s\n", argv[1]);
        return 1;
    }
    size_t size;
    void  *src = read_file(argv[2], &size);
    if (!src) return 1;
    if (size % t->type_size != 0) {
        fprintf(stderr, "quant-tool: %zu bytes is not a whole number of %s blocks\n", size, t->name);
        free(src);
        return 1;
    }
    const int64_t n   = (int64_t)(size / t->type_size) * t->block_size;
    float        *dst = malloc((size_t)n * sizeof(float) + 1);
    t->to_f32(src, dst, n);
    const int rc = write_file(argv[3], dst, (size_t)n * sizeof(float));
    free(dst);
    free(src);
    return rc;
}

static int cmd_vecdot(int argc, char **argv) {
    if (argc < 6) return 2;
    const int               type      = smoe_type_from_name(argv[1]);
    const smoe_type_traits *t         = smoe_type_get_traits(type);
    const long long         n_per_row = atoll(argv[4]);
    if (!t || !t->vec_dot || n_per_row <= 0 || smoe_row_size(type, n_per_row) == 0) {
        fprintf(stderr, "quant-tool: no dot product for %s with rows of %lld\n", argv[1], n_per_row);
        return 1;
    }
    const smoe_type_traits *yt = smoe_type_get_traits(t->vec_dot_type);
    size_t                  wsize, asize;
    void                   *w   = read_file(argv[2], &wsize);
    float                  *act = read_file(argv[3], &asize);
    int                     rc  = 1;
    if (w && act && asize == (size_t)n_per_row * sizeof(float)) {
        const size_t  row    = smoe_row_size(type, n_per_row);
        const int64_t n_rows = (int64_t)(wsize / row);
        void         *yq     = malloc(smoe_row_size(t->vec_dot_type, n_per_row) + 1);
        float        *out    = malloc((size_t)n_rows * sizeof(float) + 1);
        yt->from_f32(act, yq, n_per_row);
        for (int64_t r = 0; r < n_rows; r++) t->vec_dot(n_per_row, &out[r], (const char *)w + r * row, yq);
        rc = write_file(argv[5], out, (size_t)n_rows * sizeof(float));
        free(yq);
        free(out);
    } else {
        fprintf(stderr, "quant-tool: bad inputs for vecdot\n");
    }
    free(w);
    free(act);
    return rc;
}

static int cmd_gguf_dequant(int argc, char **argv) {
    if (argc < 4) return 2;
    smoe_gguf *g = NULL;
    if (smoe_gguf_open(argv[1], &g) != SMOE_OK) {
        fprintf(stderr, "quant-tool: %s\n", smoe_last_error());
        return 1;
    }
    int           rc = 1;
    const int64_t i  = smoe_gguf_find_tensor(g, argv[2]);
    if (i < 0) {
        fprintf(stderr, "quant-tool: no tensor '%s'\n", argv[2]);
    } else {
        const smoe_gguf_tensor_info *ti = smoe_gguf_tensor(g, i);
        int64_t                      n  = 1;
        for (uint32_t d = 0; d < ti->n_dims; d++) n *= ti->ne[d];
        float *dst = malloc((size_t)n * sizeof(float) + 1);
        if (dst && smoe_dequantize_row(ti->type, smoe_gguf_tensor_data(g, i), dst, n)) {
            rc = write_file(argv[3], dst, (size_t)n * sizeof(float));
        } else {
            fprintf(stderr, "quant-tool: cannot dequantize '%s' (%s)\n", argv[2], smoe_type_name(ti->type));
        }
        free(dst);
    }
    smoe_gguf_close(g);
    return rc;
}

int main(int argc, char **argv) {
    int rc = 2;
    if (argc >= 2 && !strcmp(argv[1], "quantize")) rc = cmd_quantize(argc - 1, argv + 1);
    else if (argc >= 2 && !strcmp(argv[1], "dequantize")) rc = cmd_dequantize(argc - 1, argv + 1);
    else if (argc >= 2 && !strcmp(argv[1], "vecdot")) rc = cmd_vecdot(argc - 1, argv + 1);
    else if (argc >= 2 && !strcmp(argv[1], "gguf-dequant")) rc = cmd_gguf_dequant(argc - 1, argv + 1);
    if (rc == 2) {
        fprintf(stderr, "usage: quant-tool quantize TYPE ref|search IN.f32 OUT.bin N_PER_ROW [IMATRIX.f32]\n"
                        "       quant-tool dequantize TYPE IN.bin OUT.f32\n"
                        "       quant-tool vecdot TYPE W.bin ACT.f32 N_PER_ROW OUT.f32\n"
                        "       quant-tool gguf-dequant FILE.gguf TENSOR OUT.f32\n");
    }
    return rc;
}
