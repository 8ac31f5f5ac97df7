/*
 * threadpool.c - fork/join pool: the caller publishes (fn, arg) and bumps a generation counter; workers run the job
 * and count down `pending`; the last one to finish tells the caller.
 *
 * Waiting is spin-then-sleep on both sides. A graph runs one job per op, microseconds apart, so a worker that has
 * just finished polls the generation for a short while (SPIN_ITERS pauses, ~0.1 ms) and usually sees the next job
 * without a system call; after that it sleeps on a condition variable until the next job, so an idle pool uses no
 * CPU. The caller waits for the workers the same way. Sleeping is announced in an atomic counter checked by the
 * other side after it publishes (both sequentially consistent), so a wake-up is never lost: either the sleeper sees
 * the new state before it waits, or the publisher sees the sleeper and signals under the mutex.
 */
#include "threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define SPIN_ITERS 1024

typedef struct worker {
    smoe_threadpool *pool;
    int              ith;
    pthread_t        thread;
} worker;

struct smoe_threadpool {
    int             n_threads;
    worker         *workers; /* n_threads - 1 */
    int             n_started;
    pthread_mutex_t mu;
    pthread_cond_t  cv_work;
    pthread_cond_t  cv_done;
    /* the job: fn/arg are written before generation is bumped (release) and read after it is seen (acquire) */
    smoe_task_fn    fn;
    void           *arg;
    _Alignas(64) atomic_uint_fast64_t generation;
    atomic_bool     stop;
    _Alignas(64) atomic_int pending; /* workers still running the current job */
    _Alignas(64) atomic_int n_sleeping; /* workers blocked on cv_work */
    atomic_bool     caller_sleeping;
};

static void *worker_main(void *p) {
    worker *w = p;
    smoe_threadpool *pool = w->pool;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = atomic_load_explicit(&pool->generation, memory_order_acquire);
        for (int i = 0; g == seen && i < SPIN_ITERS && !atomic_load_explicit(&pool->stop, memory_order_relaxed); i++) {
            cpu_relax();
            g = atomic_load_explicit(&pool->generation, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&pool->mu);
            atomic_fetch_add(&pool->n_sleeping, 1);
            while ((g = atomic_load(&pool->generation)) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->cv_work, &pool->mu);
            atomic_fetch_sub(&pool->n_sleeping, 1);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->stop)) break;
        seen = g;
        pool->fn(pool->arg, w->ith, pool->n_threads);
        if (atomic_fetch_sub(&pool->pending, 1) == 1 && atomic_load(&pool->caller_sleeping)) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_signal(&pool->cv_done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
    return NULL;
}

smoe_status smoe_threadpool_init(int n_threads, smoe_threadpool **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "threadpool: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(n_threads < 1 || n_threads > 1024, SMOE_ERR_INVALID_ARGUMENT,
                   "threadpool: n_threads %d not in 1..1024", n_threads);
    smoe_threadpool *pool = aligned_alloc(64, (sizeof(*pool) + 63) & ~(size_t)63);
    SMOE_RETURN_IF(!pool, SMOE_ERR_OUT_OF_MEMORY, "threadpool: out of memory");
    memset(pool, 0, sizeof(*pool));
    pool->n_threads = n_threads;
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->stop, false);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->n_sleeping, 0);
    atomic_init(&pool->caller_sleeping, false);
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv_work, NULL);
    pthread_cond_init(&pool->cv_done, NULL);
    if (n_threads > 1) {
        pool->workers = calloc((size_t)n_threads - 1, sizeof(*pool->workers));
        if (!pool->workers) {
            smoe_threadpool_free(pool);
            return smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "threadpool: out of memory");
        }
        for (int i = 0; i < n_threads - 1; i++) {
            pool->workers[i].pool = pool;
            pool->workers[i].ith = i + 1;
            if (pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]) != 0) {
                smoe_threadpool_free(pool);
                return smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "threadpool: cannot start thread %d", i + 1);
            }
            pool->n_started++;
        }
    }
    *out = pool;
    return SMOE_OK;
}

void smoe_threadpool_free(smoe_threadpool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, true);
    pthread_cond_broadcast(&pool->cv_work);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < pool->n_started; i++) pthread_join(pool->workers[i].thread, NULL);
    pthread_cond_destroy(&pool->cv_work);
    pthread_cond_destroy(&pool->cv_done);
    pthread_mutex_destroy(&pool->mu);
    free(pool->workers);
    free(pool);
}

int smoe_threadpool_n_threads(const smoe_threadpool *pool) { return pool ? pool->n_threads : 1; }

void smoe_threadpool_run(smoe_threadpool *pool, smoe_task_fn fn, void *arg) {
    if (pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store(&pool->pending, pool->n_threads - 1);
    atomic_fetch_add(&pool->generation, 1); /* publishes fn/arg/pending */
    if (atomic_load(&pool->n_sleeping) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv_work);
        pthread_mutex_unlock(&pool->mu);
    }

    fn(arg, 0, pool->n_threads);

    for (int i = 0; i < SPIN_ITERS && atomic_load_explicit(&pool->pending, memory_order_acquire) > 0; i++) cpu_relax();
    if (atomic_load(&pool->pending) > 0) {
        pthread_mutex_lock(&pool->mu);
        atomic_store(&pool->caller_sleeping, true);
        while (atomic_load(&pool->pending) > 0) pthread_cond_wait(&pool->cv_done, &pool->mu);
        atomic_store(&pool->caller_sleeping, false);
        pthread_mutex_unlock(&pool->mu);
    }
}
