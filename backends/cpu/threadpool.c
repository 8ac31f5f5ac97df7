/*
 * threadpool.c - fork/join pool: a generation counter under a mutex wakes the workers, a pending count tells the
 * caller when they are done. Workers block on a condition variable between jobs.
 */
#include "threadpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

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
    uint64_t        generation; /* bumped per job */
    int             pending;    /* workers still running the current job */
    bool            stop;
    smoe_task_fn    fn;
    void           *arg;
};

static void *worker_main(void *p) {
    worker *w = p;
    smoe_threadpool *pool = w->pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        while (!pool->stop && pool->generation == seen) pthread_cond_wait(&pool->cv_work, &pool->mu);
        if (pool->stop) break;
        seen = pool->generation;
        smoe_task_fn fn = pool->fn;
        void *arg = pool->arg;
        pthread_mutex_unlock(&pool->mu);
        fn(arg, w->ith, pool->n_threads);
        pthread_mutex_lock(&pool->mu);
        if (--pool->pending == 0) pthread_cond_signal(&pool->cv_done);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

smoe_status smoe_threadpool_init(int n_threads, smoe_threadpool **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "threadpool: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(n_threads < 1 || n_threads > 1024, SMOE_ERR_INVALID_ARGUMENT,
                   "threadpool: n_threads %d not in 1..1024", n_threads);
    smoe_threadpool *pool = calloc(1, sizeof(*pool));
    SMOE_RETURN_IF(!pool, SMOE_ERR_OUT_OF_MEMORY, "threadpool: out of memory");
    pool->n_threads = n_threads;
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
    pool->stop = true;
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
    pthread_mutex_lock(&pool->mu);
    pool->fn = fn;
    pool->arg = arg;
    pool->pending = pool->n_threads - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->cv_work);
    pthread_mutex_unlock(&pool->mu);

    fn(arg, 0, pool->n_threads);

    pthread_mutex_lock(&pool->mu);
    while (pool->pending > 0) pthread_cond_wait(&pool->cv_done, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
}
