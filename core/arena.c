/*
 * arena.c - chunked bump allocator (see arena.h).
 */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t              size; /* usable bytes after the header */
    size_t              used;
} arena_chunk;

/* header rounded to the alignment so chunk payloads stay aligned */
#define CHUNK_HDR ((sizeof(arena_chunk) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))

struct smoe_arena {
    arena_chunk *head; /* current chunk first */
    size_t       chunk_size;
    size_t       used;
};

smoe_status smoe_arena_init(size_t chunk_size, smoe_arena **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "arena: out is NULL");
    *out = NULL;
    smoe_arena *a = calloc(1, sizeof(*a));
    SMOE_RETURN_IF(!a, SMOE_ERR_OUT_OF_MEMORY, "arena: out of memory");
    a->chunk_size = chunk_size ? chunk_size : (size_t)64 << 10;
    *out = a;
    return SMOE_OK;
}

void smoe_arena_free(smoe_arena *a) {
    if (!a) return;
    arena_chunk *c = a->head;
    while (c) {
        arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    free(a);
}

void *smoe_arena_alloc(smoe_arena *a, size_t size) {
    if (!a) return NULL;
    if (size == 0) size = 1;
    if (size > SIZE_MAX / 2) {
        smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "arena: request of %zu bytes", size);
        return NULL;
    }
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    arena_chunk *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t csize = size > a->chunk_size ? size : a->chunk_size;
        arena_chunk *nc = malloc(CHUNK_HDR + csize);
        if (!nc) {
            smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "arena: out of memory (%zu bytes)", csize);
            return NULL;
        }
        nc->size = csize;
        nc->used = 0;
        if (c && size > a->chunk_size) {
            /* an oversized request: keep the current chunk in front so its free space is still used */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
    }
    void *p = (char *)c + CHUNK_HDR + c->used;
    c->used += size;
    a->used += size;
    memset(p, 0, size);
    return p;
}

char *smoe_arena_strdup(smoe_arena *a, const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s);
    char *d = smoe_arena_alloc(a, n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

size_t smoe_arena_used(const smoe_arena *a) { return a ? a->used : 0; }
