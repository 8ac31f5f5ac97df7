/*
 * gguf.h - GGUF v2/v3 reader (mmap, validated up front) and streaming writer (temp file, renamed when complete).
 *
 * Format facts (GGUF spec): little-endian; header = magic "GGUF", u32 version, u64 n_tensors, u64 n_kv (v1 used
 * u32 counts and is not supported); kv = string key, u32 value type, value; string = u64 length + bytes (no NUL);
 * array = u32 element type, u64 count, elements; tensor info = string name, u32 n_dims, u64 ne[n_dims], u32 type,
 * u64 offset (relative to the data section, a multiple of the alignment); the data section starts at the first
 * multiple of `general.alignment` (u32, default 32) after the tensor infos.
 *
 * The reader copies all metadata into its own arena (NUL-terminated strings, aligned numeric arrays), so callers
 * never touch unaligned mmap'd bytes for metadata. Tensor data stays in the mapping.
 * A reader is immutable after open: any number of threads may use it at once. Pointers it returns live until close.
 * Getters take an index in [0, n) and return NULL / 0 / -1 for anything else (they never crash on a bad index).
 */
#ifndef SMOE_GGUF_H
#define SMOE_GGUF_H

#include "status.h"
#include "types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMOE_GGUF_DEFAULT_ALIGNMENT 32
#define SMOE_GGUF_MAX_DIMS 4

/* ---- reader ---- */

typedef struct smoe_gguf smoe_gguf;

typedef struct smoe_gguf_tensor_info {
    const char *name;
    smoe_type   type;
    uint32_t    n_dims;
    int64_t     ne[SMOE_GGUF_MAX_DIMS]; /* unused dims are 1 */
    uint64_t    offset;                 /* relative to the data section */
    uint64_t    size;                   /* bytes */
} smoe_gguf_tensor_info;

/* Opens and validates a file. On error returns the status with the message "PATH: what is wrong". */
smoe_status smoe_gguf_open(const char *path, smoe_gguf **out);
/* Parses a buffer the caller keeps alive for the reader's lifetime (fuzzing, tests). */
smoe_status smoe_gguf_open_memory(const void *data, size_t size, smoe_gguf **out);
void        smoe_gguf_close(smoe_gguf *g);

uint32_t    smoe_gguf_version(const smoe_gguf *g);
uint64_t    smoe_gguf_alignment(const smoe_gguf *g);
uint64_t    smoe_gguf_data_offset(const smoe_gguf *g); /* absolute file offset of the data section */
const void *smoe_gguf_base(const smoe_gguf *g);        /* start of the mapping */
uint64_t    smoe_gguf_file_size(const smoe_gguf *g);

/* metadata */
int64_t              smoe_gguf_n_kv(const smoe_gguf *g);
int64_t              smoe_gguf_find_key(const smoe_gguf *g, const char *key); /* -1 if absent */
const char          *smoe_gguf_key(const smoe_gguf *g, int64_t i);
smoe_gguf_value_type smoe_gguf_kv_type(const smoe_gguf *g, int64_t i);
smoe_gguf_value_type smoe_gguf_arr_type(const smoe_gguf *g, int64_t i); /* element type of an array kv */
uint64_t             smoe_gguf_arr_n(const smoe_gguf *g, int64_t i);
/* Numeric array elements, aligned, in the element type's C representation (bool as uint8_t). */
const void          *smoe_gguf_arr_data(const smoe_gguf *g, int64_t i);
/* Element j of a string array: NUL-terminated; *len (if non-NULL) gets the byte length (may contain NULs). */
const char          *smoe_gguf_arr_str(const smoe_gguf *g, int64_t i, uint64_t j, uint64_t *len);
/* A scalar string value, NUL-terminated. */
const char          *smoe_gguf_str(const smoe_gguf *g, int64_t i, uint64_t *len);
/* A scalar numeric/bool value in its C representation (aligned); NULL for strings, arrays or a bad index. */
const void          *smoe_gguf_val(const smoe_gguf *g, int64_t i);
/* The array's elements exactly as stored in the file (little-endian, unaligned), *size bytes. For arrays of
 * arrays, which the reader validates but keeps opaque (arr_data is NULL for them); copy_kv uses this. */
const void          *smoe_gguf_arr_raw(const smoe_gguf *g, int64_t i, uint64_t *size);
/* Size in bytes of a numeric/bool value type; 0 for STRING, ARRAY and unknown ids. */
size_t               smoe_gguf_value_type_size(smoe_gguf_value_type type);
const char          *smoe_gguf_value_type_name(smoe_gguf_value_type type); /* "u32", "string", ...; "?" if unknown */
/* Renders value i as text (what smoe_gguf_file_kv_format documents); returns the full length, like snprintf. */
size_t               smoe_gguf_kv_format(const smoe_gguf *g, int64_t i, char *buf, size_t size, size_t max_items);

/* Typed look-ups by key. SMOE_ERR_CORRUPT_FILE if absent or of an incompatible type (integer types convert
 * to each other when the value fits; floats accept f32/f64). The message names the key. */
smoe_status smoe_gguf_get_u32(const smoe_gguf *g, const char *key, uint32_t *out);
smoe_status smoe_gguf_get_u64(const smoe_gguf *g, const char *key, uint64_t *out);
smoe_status smoe_gguf_get_i32(const smoe_gguf *g, const char *key, int32_t *out);
smoe_status smoe_gguf_get_f32(const smoe_gguf *g, const char *key, float *out);
smoe_status smoe_gguf_get_bool(const smoe_gguf *g, const char *key, bool *out);
smoe_status smoe_gguf_get_str(const smoe_gguf *g, const char *key, const char **out);
/* The same with a default when the key is absent (a present key of the wrong type is still an error). */
smoe_status smoe_gguf_get_u32_or(const smoe_gguf *g, const char *key, uint32_t def, uint32_t *out);
smoe_status smoe_gguf_get_f32_or(const smoe_gguf *g, const char *key, float def, float *out);
smoe_status smoe_gguf_get_bool_or(const smoe_gguf *g, const char *key, bool def, bool *out);

/* tensors */
int64_t                      smoe_gguf_n_tensors(const smoe_gguf *g);
const smoe_gguf_tensor_info *smoe_gguf_tensor(const smoe_gguf *g, int64_t i);
int64_t                      smoe_gguf_find_tensor(const smoe_gguf *g, const char *name); /* -1 if absent */
const void                  *smoe_gguf_tensor_data(const smoe_gguf *g, int64_t i);

/* ---- writer ----
 * Usage: open; set_* metadata and add_tensor (any order); begin_data (writes header, kv and tensor infos); then
 * write_data the bytes of each tensor in the order they were added (in pieces of any size: padding is inserted when a
 * tensor's byte count is complete); finish (flush, fsync, rename into place). abort (or any error) removes the
 * temporary file; after an error only abort is valid. Keys are unique: setting a key twice replaces its value.
 * The output is GGUF v3, metadata in the order first set, tensors in the order added, each tensor's data at a multiple
 * of the alignment: 32, or `general.alignment` if set (it must then be a u32 power of two, else begin_data fails).
 * The temporary file is PATH.tmp.XXXXXX in PATH's directory; PATH holds either its old content or the complete new
 * file, never a partial one. Errors are INVALID_ARGUMENT (misuse, bad shapes/types, duplicate tensor names, data
 * count mismatch), IO or OUT_OF_MEMORY, with a message naming PATH. */

typedef struct smoe_gguf_writer smoe_gguf_writer;

smoe_status smoe_gguf_writer_open(const char *path, smoe_gguf_writer **out);
smoe_status smoe_gguf_writer_set_u8(smoe_gguf_writer *w, const char *key, uint8_t v);
smoe_status smoe_gguf_writer_set_u32(smoe_gguf_writer *w, const char *key, uint32_t v);
smoe_status smoe_gguf_writer_set_i32(smoe_gguf_writer *w, const char *key, int32_t v);
smoe_status smoe_gguf_writer_set_u64(smoe_gguf_writer *w, const char *key, uint64_t v);
smoe_status smoe_gguf_writer_set_f32(smoe_gguf_writer *w, const char *key, float v);
smoe_status smoe_gguf_writer_set_bool(smoe_gguf_writer *w, const char *key, bool v);
smoe_status smoe_gguf_writer_set_str(smoe_gguf_writer *w, const char *key, const char *v);
/* A string of n bytes (may contain NULs). */
smoe_status smoe_gguf_writer_set_str_n(smoe_gguf_writer *w, const char *key, const char *v, uint64_t n);
/* Any numeric/bool scalar: *v in the type's C representation (bool as uint8_t 0/1). */
smoe_status smoe_gguf_writer_set_scalar(smoe_gguf_writer *w, const char *key, smoe_gguf_value_type type,
                                        const void *v);
/* Numeric array: n elements of `type` (not STRING/ARRAY) in their C representation. */
smoe_status smoe_gguf_writer_set_arr(smoe_gguf_writer *w, const char *key, smoe_gguf_value_type type,
                                     const void *data, uint64_t n);
smoe_status smoe_gguf_writer_set_arr_str(smoe_gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/* The same with explicit byte lengths (strings may contain NULs). */
smoe_status smoe_gguf_writer_set_arr_str_n(smoe_gguf_writer *w, const char *key, const char *const *strs,
                                           const uint64_t *lens, uint64_t n);
/* Copies key/value i of a reader (used by `smoe quantize` to carry metadata over). */
smoe_status smoe_gguf_writer_copy_kv(smoe_gguf_writer *w, const smoe_gguf *g, int64_t i);
smoe_status smoe_gguf_writer_add_tensor(smoe_gguf_writer *w, const char *name, smoe_type type, uint32_t n_dims,
                                        const int64_t *ne);
smoe_status smoe_gguf_writer_begin_data(smoe_gguf_writer *w);
smoe_status smoe_gguf_writer_write_data(smoe_gguf_writer *w, const void *data, size_t n);
smoe_status smoe_gguf_writer_finish(smoe_gguf_writer *w); /* frees w, also on failure */
void        smoe_gguf_writer_abort(smoe_gguf_writer *w);  /* frees w; NULL is a no-op */

#endif /* SMOE_GGUF_H */
