/*
 * arena.h - a chunked bump allocator for metadata (tensor structs, names, node lists).
 *
 * Everything allocated from an arena lives until smoe_arena_free; there is no per-object free. Chunks are never
 * moved, so pointers stay valid while the arena grows. Allocations are zeroed and aligned to 16 bytes.
 * Not thread safe: one arena belongs to one owner (a graph, a model's weight table).
 */
#ifndef SMOE_ARENA_H
#define SMOE_ARENA_H

#include "status.h"

#include <stddef.h>

typedef struct smoe_arena smoe_arena;

/* chunk_size: bytes per chunk (0 = 64 KiB); larger requests get a chunk of their own. */
smoe_status smoe_arena_init(size_t chunk_size, smoe_arena **out);
void        smoe_arena_free(smoe_arena *a); /* NULL is a no-op */

/* Zeroed memory of `size` bytes, 16-byte aligned; NULL (with the last error set) when out of memory. */
void *smoe_arena_alloc(smoe_arena *a, size_t size);
/* A copy of the NUL-terminated string s; NULL when out of memory. */
char *smoe_arena_strdup(smoe_arena *a, const char *s);
/* Bytes handed out so far (for reports). */
size_t smoe_arena_used(const smoe_arena *a);

#endif /* SMOE_ARENA_H */
