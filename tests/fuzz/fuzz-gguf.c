/*
 * fuzz-gguf.c - libFuzzer target for the GGUF reader: parse any bytes with smoe_gguf_open_memory, and when they are
 * accepted, walk everything the getters expose (so a file that validates but lies is caught by ASan/UBSan here).
 * Invariants checked (trap on violation): a failure sets a message; find_key/find_tensor return the index of the
 * entry they were built from; every tensor's bytes lie inside the input.
 */
#include "core/gguf.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    smoe_gguf *g = NULL;
    if (smoe_gguf_open_memory(data, size, &g) != SMOE_OK) {
        if (g || !smoe_last_error()[0]) __builtin_trap();
        return 0;
    }
    uint64_t acc = smoe_gguf_version(g) + smoe_gguf_alignment(g) + smoe_gguf_data_offset(g);
    char     buf[128];
    for (int64_t i = 0; i < smoe_gguf_n_kv(g); i++) {
        const char *key = smoe_gguf_key(g, i);
        if (smoe_gguf_find_key(g, key) != i) __builtin_trap();
        smoe_gguf_value_type t = smoe_gguf_kv_type(g, i);
        uint64_t             len;
        if (t == SMOE_GGUF_STRING) {
            const char *s = smoe_gguf_str(g, i, &len);
            acc += len + (unsigned char)s[len]; /* the terminating NUL is readable */
        } else if (t == SMOE_GGUF_ARRAY) {
            smoe_gguf_value_type at = smoe_gguf_arr_type(g, i);
            uint64_t             n  = smoe_gguf_arr_n(g, i);
            if (at == SMOE_GGUF_STRING) {
                for (uint64_t j = 0; j < n; j++) acc += strlen(smoe_gguf_arr_str(g, i, j, &len)) + len;
            } else if (at != SMOE_GGUF_ARRAY) {
                const uint8_t *d = smoe_gguf_arr_data(g, i);
                for (uint64_t j = 0; j < n * smoe_gguf_value_type_size(at); j++) acc += d[j];
            }
            uint64_t       raw_size;
            const uint8_t *raw = smoe_gguf_arr_raw(g, i, &raw_size);
            if (raw_size && (raw < data || raw + raw_size > data + size)) __builtin_trap();
        } else {
            const uint8_t *v = smoe_gguf_val(g, i);
            for (size_t j = 0; j < smoe_gguf_value_type_size(t); j++) acc += v[j];
        }
        acc += smoe_gguf_kv_format(g, i, buf, sizeof(buf), 4);
        /* typed getters on every key: any outcome but a crash */
        uint32_t    u32;
        uint64_t    u64;
        int32_t     i32;
        float       f;
        bool        b;
        const char *s;
        acc += (uint64_t)smoe_gguf_get_u32(g, key, &u32) + (uint64_t)smoe_gguf_get_u64(g, key, &u64) +
               (uint64_t)smoe_gguf_get_i32(g, key, &i32) + (uint64_t)smoe_gguf_get_f32(g, key, &f) +
               (uint64_t)smoe_gguf_get_bool(g, key, &b) + (uint64_t)smoe_gguf_get_str(g, key, &s);
    }
    for (int64_t i = 0; i < smoe_gguf_n_tensors(g); i++) {
        const smoe_gguf_tensor_info *ti = smoe_gguf_tensor(g, i);
        if (smoe_gguf_find_tensor(g, ti->name) != i) __builtin_trap();
        const uint8_t *d = smoe_gguf_tensor_data(g, i);
        if (d < data || (uint64_t)(data + size - d) < ti->size) __builtin_trap();
        if (ti->size) acc += d[0] + d[ti->size - 1];
    }
    sink = acc;
    smoe_gguf_close(g);
    return 0;
}
