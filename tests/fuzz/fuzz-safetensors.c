/*
 * fuzz-safetensors.c - libFuzzer target for the safetensors reader: parse any bytes with smoe_st_open_memory, and
 * when they are accepted, check what the reader promises (trap on violation): a failure sets a message and returns
 * no file; every tensor's byte range lies inside the input and matches its dtype and shape; no two non-empty tensors
 * overlap; smoe_st_find returns each tensor by its name; names are sorted. Every data byte is read so ASan sees any
 * range that lies.
 */
#include "convert/safetensors.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    smoe_st_file *f = NULL;
    if (smoe_st_open_memory(data, size, "fuzz", &f) != SMOE_OK) {
        if (f || !smoe_last_error()[0]) __builtin_trap();
        return 0;
    }
    uint64_t acc = 0;
    const int64_t n = smoe_st_n_tensors(f);
    for (int64_t i = 0; i < n; i++) {
        const smoe_st_tensor *t = smoe_st_tensor_at(f, i);
        if (smoe_st_find(f, t->name) != t) __builtin_trap();
        if (i > 0 && strcmp(smoe_st_tensor_at(f, i - 1)->name, t->name) >= 0) __builtin_trap();
        if (t->offset > size || t->size > size - t->offset) __builtin_trap();
        if ((const uint8_t *)t->data != data + t->offset) __builtin_trap();
        uint64_t el = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) el *= (uint64_t)t->shape[d];
        if (el != t->n_elements || el * smoe_st_dtype_size(t->dtype) != t->size) __builtin_trap();
        for (uint64_t b = 0; b < t->size; b++) acc += ((const uint8_t *)t->data)[b];
        for (int64_t j = 0; j < i && n <= 4096; j++) {
            const smoe_st_tensor *u = smoe_st_tensor_at(f, j);
            if (t->size && u->size && t->offset < u->offset + u->size && u->offset < t->offset + t->size)
                __builtin_trap();
        }
    }
    sink = acc;
    smoe_st_close(f);
    return 0;
}
