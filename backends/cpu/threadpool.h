/*
 * threadpool.h - a small fork/join pool for the CPU backend.
 *
 * smoe_threadpool_run(pool, fn, arg) calls fn(arg, ith, nth) once for each ith in [0, nth) (the calling thread is
 * ith 0) and returns when all calls have returned. Idle workers sleep on a condition variable; nothing spins.
 * One thread drives a pool at a time.
 */
#ifndef SMOE_CPU_THREADPOOL_H
#define SMOE_CPU_THREADPOOL_H

#include "core/status.h"

typedef struct smoe_threadpool smoe_threadpool;
typedef void (*smoe_task_fn)(void *arg, int ith, int nth);

/* n_threads >= 1 (1 = no worker threads: run() calls fn inline). */
smoe_status smoe_threadpool_init(int n_threads, smoe_threadpool **out);
void        smoe_threadpool_free(smoe_threadpool *pool); /* NULL is a no-op */
int         smoe_threadpool_n_threads(const smoe_threadpool *pool);
void        smoe_threadpool_run(smoe_threadpool *pool, smoe_task_fn fn, void *arg);
/* As smoe_threadpool_run, but for `work` units (elements) below SMOE_POOL_MIN_WORK the caller runs fn(arg, 0, 1)
 * alone: waking the workers costs more than such a job (decode runs many of them per token). Tasks must give the
 * same results for any nth, as all CPU kernels do. */
#define SMOE_POOL_MIN_WORK 32768
static inline void smoe_threadpool_run_sized(smoe_threadpool *pool, smoe_task_fn fn, void *arg, int64_t work) {
    if (work < SMOE_POOL_MIN_WORK) fn(arg, 0, 1);
    else smoe_threadpool_run(pool, fn, arg);
}

/* The half-open range [*begin, *end) of n items that thread ith of nth takes (contiguous, balanced). */
static inline void smoe_split_range(int64_t n, int ith, int nth, int64_t *begin, int64_t *end) {
    *begin = n * ith / nth;
    *end = n * (ith + 1) / nth;
}

#endif /* SMOE_CPU_THREADPOOL_H */
