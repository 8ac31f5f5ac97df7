/*
 * safetensors.h - a validating, memory-mapped reader of safetensors files and of sharded checkpoints.
 *
 * Format (github.com/huggingface/safetensors): u64 little-endian header length N, then N bytes of JSON
 * {"NAME": {"dtype": "BF16", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ..., "__metadata__": {...}},
 * then the data buffer; offsets are relative to the start of the buffer (file offset 8 + N), row-major, little-endian.
 *
 * Everything is checked when a file is opened: the header length against the file size, the JSON (jansson, duplicate
 * keys rejected), each entry's dtype, shape and offsets (end - begin must equal the element count times the dtype
 * size, computed without overflow; the range must lie inside the file; no two tensors may overlap). A failure returns
 * SMOE_ERR_CORRUPT_FILE with a message naming the file and the tensor. After that, tensor data can be read without
 * further checks.
 *
 * A checkpoint (smoe_st_set) is a folder: the shards named by model.safetensors.index.json's weight_map, or, without
 * an index, every *.safetensors file in the folder. Tensor names are unique across shards.
 */
#ifndef SMOE_CONVERT_SAFETENSORS_H
#define SMOE_CONVERT_SAFETENSORS_H

#include "core/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMOE_ST_MAX_DIMS 8
/* The format's own limit on the JSON header (100 MB). */
#define SMOE_ST_MAX_HEADER (100u * 1000u * 1000u)

typedef enum smoe_st_dtype {
    SMOE_ST_BOOL,
    SMOE_ST_U8,
    SMOE_ST_I8,
    SMOE_ST_F8_E5M2,
    SMOE_ST_F8_E4M3,
    SMOE_ST_I16,
    SMOE_ST_U16,
    SMOE_ST_F16,
    SMOE_ST_BF16,
    SMOE_ST_I32,
    SMOE_ST_U32,
    SMOE_ST_F32,
    SMOE_ST_F64,
    SMOE_ST_I64,
    SMOE_ST_U64,
    SMOE_ST_DTYPE_COUNT,
} smoe_st_dtype;

const char *smoe_st_dtype_name(smoe_st_dtype dtype); /* "BF16", ...; "?" if out of range */
size_t      smoe_st_dtype_size(smoe_st_dtype dtype); /* bytes per element; 0 if out of range */

typedef struct smoe_st_tensor {
    const char   *name;
    smoe_st_dtype dtype;
    uint32_t      n_dims;                  /* 0 for a scalar */
    int64_t       shape[SMOE_ST_MAX_DIMS]; /* row-major: shape[n_dims - 1] varies fastest */
    uint64_t      n_elements;
    uint64_t      offset; /* absolute offset in its file */
    uint64_t      size;   /* bytes */
    const void   *data;   /* inside the file's read-only mapping (may be unaligned) */
    uint32_t      shard;  /* index of the file within a set; 0 for a single file */
    bool          mapped; /* data lies in a file mapping of ours (release may drop its pages) */
} smoe_st_tensor;

/* ---- one file ---- */

typedef struct smoe_st_file smoe_st_file;

/* Maps and validates `path`. SMOE_ERR_IO if it cannot be opened or mapped, SMOE_ERR_CORRUPT_FILE if malformed.
 * The messages start with the path. */
smoe_status smoe_st_open(const char *path, smoe_st_file **out);
/* The same for a buffer the caller keeps alive while the file is open (fuzzing, tests); `label` names it in errors. */
smoe_status smoe_st_open_memory(const void *data, size_t size, const char *label, smoe_st_file **out);
void        smoe_st_close(smoe_st_file *f); /* NULL is a no-op */

int64_t               smoe_st_n_tensors(const smoe_st_file *f);
const smoe_st_tensor *smoe_st_tensor_at(const smoe_st_file *f, int64_t i); /* sorted by name */
const smoe_st_tensor *smoe_st_find(const smoe_st_file *f, const char *name); /* NULL if absent */
const char           *smoe_st_path(const smoe_st_file *f);
uint64_t              smoe_st_file_size(const smoe_st_file *f);

/* ---- a checkpoint folder ---- */

typedef struct smoe_st_set smoe_st_set;

/* Opens every shard of the checkpoint in `dir` (see above). A shard listed in the index that is missing or cannot
 * be read is SMOE_ERR_IO; one that is truncated or malformed, or a tensor the index places in a shard that does not
 * hold it, or a name held by two shards, is SMOE_ERR_CORRUPT_FILE. */
smoe_status smoe_st_set_open(const char *dir, smoe_st_set **out);
void        smoe_st_set_close(smoe_st_set *s); /* NULL is a no-op */

int64_t               smoe_st_set_n_tensors(const smoe_st_set *s);
const smoe_st_tensor *smoe_st_set_tensor_at(const smoe_st_set *s, int64_t i); /* sorted by name */
const smoe_st_tensor *smoe_st_set_find(const smoe_st_set *s, const char *name);
uint32_t              smoe_st_set_n_files(const smoe_st_set *s);
const smoe_st_file   *smoe_st_set_file(const smoe_st_set *s, uint32_t i);
uint64_t              smoe_st_set_data_bytes(const smoe_st_set *s); /* sum of all tensor sizes */

/* Tells the kernel the tensor's pages will be read soon (sequentially), or are no longer needed: dropping them from
 * this process's resident set keeps the peak RSS of a streaming conversion bounded by what is being worked on. Both
 * are hints; they never fail. */
void smoe_st_prefetch(const smoe_st_tensor *t);
void smoe_st_release(const smoe_st_tensor *t);

#endif /* SMOE_CONVERT_SAFETENSORS_H */
