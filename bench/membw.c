/*
 * membw.c - the machine's memory read bandwidth: the physical limit of token generation, which reads every active
 * weight byte once per token (tokens/s <= bandwidth / bytes read per token).
 *
 * Each of T threads sums its share of a buffer much larger than the last-level cache (default 4 GiB: L3 caches of
 * virtual machines can report hundreds of MiB), 64 bytes per cache line, with 8 independent accumulators so the loads
 * are the limit, not the adds. Prints the best of REPS passes in GB/s (10^9 bytes), per thread count.
 *
 * usage: membw [-m MIB] [-t T[,T...]] [-r REPS]   (defaults: -m 4096, -t 1,all CPUs, -r 5)
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct job {
    const uint64_t *p;
    size_t          n;    /* uint64 words */
    uint64_t        sum;
    pthread_barrier_t *start;
} job;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *reader(void *arg) {
    job *j = arg;
    pthread_barrier_wait(j->start);
    uint64_t a[8] = {0};
    for (size_t i = 0; i + 8 <= j->n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += j->p[i + k];
    j->sum = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
    return NULL;
}

/* One pass over the buffer with t threads; returns seconds (from the common start to the last thread's end). */
static double pass(const uint64_t *buf, size_t n_words, int t, uint64_t *sink) {
    pthread_t        th[256];
    job              jobs[256];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)t + 1);
    const size_t per = n_words / (size_t)t / 8 * 8;
    for (int i = 0; i < t; i++) {
        jobs[i] = (job){.p = buf + (size_t)i * per, .n = per, .start = &start};
        pthread_create(&th[i], NULL, reader, &jobs[i]);
    }
    pthread_barrier_wait(&start);
    const double t0 = now_s();
    for (int i = 0; i < t; i++) {
        pthread_join(th[i], NULL);
        *sink += jobs[i].sum;
    }
    const double dt = now_s() - t0;
    pthread_barrier_destroy(&start);
    return dt;
}

int main(int argc, char **argv) {
    size_t mib = 4096;
    int    reps = 5, threads[16], n_threads = 0;
    long   ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) mib = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) {
            for (char *s = argv[++i], *end; *s && n_threads < 16; s = *end ? end + 1 : end) {
                long v = strtol(s, &end, 10);
                if (end == s || v < 1 || v > 256) {
                    fprintf(stderr, "membw: bad thread count in '%s'\n", argv[i]);
                    return 2;
                }
                threads[n_threads++] = (int)v;
            }
        } else {
            fprintf(stderr, "usage: membw [-m MIB] [-t T[,T...]] [-r REPS]\n");
            return 2;
        }
    }
    if (mib < 64 || reps < 1) {
        fprintf(stderr, "membw: -m must be >= 64 and -r >= 1\n");
        return 2;
    }
    if (n_threads == 0) {
        threads[n_threads++] = 1;
        if (ncpu > 1) threads[n_threads++] = (int)(ncpu > 256 ? 256 : ncpu);
    }
    const size_t bytes = mib << 20, n_words = bytes / sizeof(uint64_t);
    uint64_t    *buf = NULL;
    if (posix_memalign((void **)&buf, 4096, bytes) != 0) {
        fprintf(stderr, "membw: cannot allocate %zu MiB\n", mib);
        return 1;
    }
    for (size_t i = 0; i < n_words; i++) buf[i] = i * 0x9E3779B97F4A7C15ull; /* touch every page */
    uint64_t sink = 0;
    printf("threads,buffer_mib,best_gbps,median_gbps\n");
    for (int k = 0; k < n_threads; k++) {
        double best = 1e30, dts[64];
        const int r = reps > 64 ? 64 : reps;
        for (int i = 0; i < r; i++) {
            dts[i] = pass(buf, n_words, threads[k], &sink);
            if (dts[i] < best) best = dts[i];
        }
        for (int i = 1; i < r; i++) /* insertion sort for the median */
            for (int j = i; j > 0 && dts[j] < dts[j - 1]; j--) {
                double x = dts[j];
                dts[j] = dts[j - 1];
                dts[j - 1] = x;
            }
        const double read = (double)(n_words / (size_t)threads[k] / 8 * 8) * (double)threads[k] * sizeof(uint64_t);
        printf("%d,%zu,%.2f,%.2f\n", threads[k], mib, read / best / 1e9, read / dts[r / 2] / 1e9);
    }
    free(buf);
    return sink == 42 ? 3 : 0; /* keep the sums alive */
}
