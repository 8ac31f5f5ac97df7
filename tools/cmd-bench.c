/*
 * cmd-bench.c - `smoe bench`: prompt-processing and generation speed, reported as llama-bench reports them so the
 * two compare directly, plus the memory bandwidth that generation achieves. Public API only.
 *
 * Tests (as llama-bench's): ppN decodes N random tokens in one batch from an empty KV cache (logits of the last
 * one only); tgN decodes N tokens one at a time from an empty cache (logits of each). Each test runs once as a
 * warm-up, then REPS times; the speed is tokens / seconds per rep, printed as mean +- sample standard deviation.
 *
 * Bandwidth of generation: the bytes of weights one token reads (the "active" bytes) times tokens per second. From
 * the GGUF's tensor table: every tensor counts whole, except the expert tensors (`*_exps`, or the per-expert layout
 * `ffn_*.E.weight`), which count n_expert_used / n_expert of their size, and the token embedding, of which one row
 * is read. CPU seconds per rep (process user+system time) are printed too: on a machine shared with other work, wall
 * time includes waiting for a core, CPU time does not.
 */
#include "cmd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_LIST 16
#define TRY(expr)                                                                                                      \
    do {                                                                                                               \
        const smoe_status try_st_ = (expr);                                                                            \
        if (try_st_ != SMOE_OK) return try_st_;                                                                        \
    } while (0)

typedef struct bench_opts {
    const char  *model;
    int          pp[MAX_LIST], n_pp;
    int          tg[MAX_LIST], n_tg;
    int          threads[MAX_LIST], n_threads;
    int          reps;
    smoe_kv_type kv_type;
    const char  *backend; /* NULL: $SMOE_BACKEND or cpu */
    uint64_t     gpu_mem; /* 0: automatic */
    bool         csv, verbose;
} bench_opts;

static void usage(FILE *f) {
    fprintf(f, "usage: smoe bench -m MODEL [-p N[,N...]] [-n N[,N...]] [-t N[,N...]] [-r REPS] [options]\n\n"
               "Measures prompt processing (ppN: N tokens in one batch) and generation (tgN: N tokens one by one),\n"
               "as llama-bench does (tokens/s, mean +- stddev over REPS after one warm-up), and the weight bandwidth\n"
               "that generation achieves.\n\n"
               "  -m, --model FILE       the GGUF model\n"
               "  -p, --n-prompt N,...   prompt lengths (default 128; 0 = none)\n"
               "  -n, --n-gen N,...      generation lengths (default 32; 0 = none)\n"
               "  -t, --threads N,...    CPU threads (default: all online CPUs)\n"
               "  -r, --repetitions R    measured runs per test (default 5)\n"
               "  --kv-type f16|q8_0|f32 KV cache type (default f16, as llama-bench)\n"
               "  --backend SPEC         where weights live and graphs run: cpu, vulkan, vulkan:N (smoe info\n"
               "                         --devices; default $SMOE_BACKEND, else cpu)\n"
               "  --gpu-mem SIZE         device memory for weights, e.g. 16G; experts that do not fit run on the\n"
               "                         CPU (default: free memory less max(1 GiB, 1/16); 'all')\n"
               "  -o, --output md|csv    table format (default md)\n"
               "  -v, --verbose          log loading details to stderr\n");
}

static int parse_list(const char *s, int *out, int max, int min) {
    int n = 0;
    while (*s && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < min || v > 1 << 20) return -1;
        out[n++] = (int)v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return n;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

static void log_stderr(smoe_log_level level, const char *msg, void *user_data) {
    (void)user_data, (void)level;
    fprintf(stderr, "%s\n", msg);
}

/* Bytes of weights one generated token reads (see the file comment); 0 if the file cannot be inspected. */
static double active_bytes(const char *path, int n_expert, int n_used, int n_vocab, double *total) {
    smoe_gguf_file *f = NULL;
    *total = 0;
    if (smoe_gguf_file_open(path, &f) != SMOE_OK) return 0;
    double active = 0;
    for (int64_t i = 0; i < smoe_gguf_file_n_tensors(f); i++) {
        const char *name = smoe_gguf_file_tensor_name(f, i);
        const double size = (double)smoe_gguf_file_tensor_size(f, i);
        *total += size;
        bool expert = strstr(name, "_exps.") != NULL;
        if (!expert && strstr(name, ".ffn_")) { /* per-expert layout: blk.N.ffn_gate.E.weight */
            const char *p = strstr(name, ".ffn_") + 5;
            p = strchr(p, '.');
            expert = p && p[1] >= '0' && p[1] <= '9';
            if (expert) {
                active += size * (double)n_used;
                continue;
            }
        }
        if (expert && n_expert > 0) active += size * (double)n_used / (double)n_expert;
        else if (strncmp(name, "token_embd.", 11) == 0 && n_vocab > 0) active += size / (double)n_vocab;
        else active += size;
    }
    smoe_gguf_file_close(f);
    return active;
}

typedef struct stats {
    double ts[64];
    double cpu[64];
    int    n;
} stats;

static void stats_mean_sd(const double *v, int n, double *mean, double *sd) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = n ? s / n : 0;
    for (int i = 0; i < n; i++) ss += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

/* One run of a test; *seconds and *cpu get its wall and CPU time. */
static smoe_status run_test(smoe_context *ctx, smoe_batch *batch, int n_vocab, int n_prompt, int n_gen,
                            unsigned *seed, double *seconds, double *cpu) {
    smoe_kv_clear(ctx);
    const double t0 = now_s(), c0 = cpu_s();
    if (n_prompt > 0) {
        batch->n_tokens = 0;
        for (int i = 0; i < n_prompt; i++) {
            *seed = *seed * 1103515245u + 12345u;
            const int32_t tok = i == 0 ? 1 : (int32_t)((*seed >> 8) % (unsigned)n_vocab);
            TRY(smoe_batch_add(batch, tok, i, 0, i == n_prompt - 1));
        }
        TRY(smoe_decode(ctx, batch));
    }
    for (int i = 0; i < n_gen; i++) {
        *seed = *seed * 1103515245u + 12345u;
        const int32_t tok = i == 0 ? 1 : (int32_t)((*seed >> 8) % (unsigned)n_vocab);
        batch->n_tokens = 0;
        TRY(smoe_batch_add(batch, tok, i, 0, true));
        TRY(smoe_decode(ctx, batch));
    }
    *seconds = now_s() - t0;
    *cpu = cpu_s() - c0;
    return SMOE_OK;
}

int smoe_cmd_bench(int argc, char **argv) {
    bench_opts o = {.pp = {128}, .n_pp = 1, .tg = {32}, .n_tg = 1, .threads = {0}, .n_threads = 1, .reps = 5,
                    .kv_type = SMOE_KV_F16};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const bool has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) {
            o.model = argv[++i];
        } else if ((!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) && has) {
            if ((o.n_pp = parse_list(argv[++i], o.pp, MAX_LIST, 0)) < 1) goto bad;
        } else if ((!strcmp(a, "-n") || !strcmp(a, "--n-gen")) && has) {
            if ((o.n_tg = parse_list(argv[++i], o.tg, MAX_LIST, 0)) < 1) goto bad;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && has) {
            if ((o.n_threads = parse_list(argv[++i], o.threads, MAX_LIST, 1)) < 1) goto bad;
        } else if ((!strcmp(a, "-r") || !strcmp(a, "--repetitions")) && has) {
            o.reps = atoi(argv[++i]);
            if (o.reps < 1 || o.reps > 64) goto bad;
        } else if (!strcmp(a, "--kv-type") && has) {
            const char *v = argv[++i];
            if (!strcmp(v, "f16")) o.kv_type = SMOE_KV_F16;
            else if (!strcmp(v, "q8_0")) o.kv_type = SMOE_KV_Q8_0;
            else if (!strcmp(v, "f32")) o.kv_type = SMOE_KV_F32;
            else goto bad;
        } else if (!strcmp(a, "--backend") && has) {
            o.backend = argv[++i];
        } else if (!strcmp(a, "--gpu-mem") && has) {
            if (!smoe_cli_parse_size(argv[++i], &o.gpu_mem)) goto bad;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has) {
            const char *v = argv[++i];
            if (!strcmp(v, "csv")) o.csv = true;
            else if (!strcmp(v, "md")) o.csv = false;
            else goto bad;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o.verbose = true;
        } else {
            goto bad;
        }
        continue;
    bad:
        fprintf(stderr, "smoe bench: bad argument '%s'%s%s\n", a, has ? " " : "", has ? argv[i] : "");
        usage(stderr);
        return 2;
    }
    if (!o.model) {
        fprintf(stderr, "smoe bench: -m MODEL is required\n");
        usage(stderr);
        return 2;
    }

    smoe_model_params mp = smoe_model_default_params();
    if (o.verbose) mp.log_fn = log_stderr;
    mp.backend = o.backend;
    mp.gpu_mem = o.gpu_mem;
    smoe_model *model = NULL;
    smoe_status st = smoe_model_load(o.model, &mp, &model);
    if (st != SMOE_OK) return smoe_cli_fail("bench", st);
    smoe_model_info info;
    smoe_model_get_info(model, &info);
    double file_bytes = 0;
    const double active = active_bytes(o.model, info.n_expert, info.n_expert_used, info.n_vocab, &file_bytes);
    const char *base = strrchr(o.model, '/');
    base = base ? base + 1 : o.model;

    int max_pp = 0, max_tg = 0;
    for (int i = 0; i < o.n_pp; i++) max_pp = o.pp[i] > max_pp ? o.pp[i] : max_pp;
    for (int i = 0; i < o.n_tg; i++) max_tg = o.tg[i] > max_tg ? o.tg[i] : max_tg;

    if (o.csv) {
        printf("model,type,size_bytes,params,active_bytes,threads,test,n_prompt,n_gen,reps,avg_ts,stddev_ts,"
               "avg_cpu_s,avg_s,gbps\n");
    } else {
        printf("| model | type | size | params | threads | test | t/s | cpu s/run | weights GB/s |\n");
        printf("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |\n");
    }
    smoe_batch batch = {0};
    st = smoe_batch_init(max_pp > 1 ? max_pp : 1, &batch);
    int rc = 0;
    for (int ti = 0; st == SMOE_OK && ti < o.n_threads; ti++) {
        smoe_context_params cp = smoe_context_default_params();
        cp.n_ctx = (uint32_t)(max_pp > max_tg ? max_pp : max_tg) + 16;
        cp.n_batch = (uint32_t)(max_pp > 512 ? max_pp : 512);
        cp.n_threads = o.threads[ti];
        cp.kv_type = o.kv_type;
        smoe_context *ctx = NULL;
        st = smoe_context_init(model, &cp, &ctx);
        if (st != SMOE_OK) break;
        for (int kind = 0; st == SMOE_OK && kind < 2; kind++) {
            const int n_list = kind == 0 ? o.n_pp : o.n_tg;
            for (int li = 0; st == SMOE_OK && li < n_list; li++) {
                const int n = kind == 0 ? o.pp[li] : o.tg[li];
                if (n == 0) continue;
                const int np = kind == 0 ? n : 0, ng = kind == 0 ? 0 : n;
                unsigned seed = 1234u + (unsigned)n;
                double sec, cpu;
                st = run_test(ctx, &batch, info.n_vocab, np, ng, &seed, &sec, &cpu); /* warm-up */
                stats s = {.n = 0};
                for (int r = 0; st == SMOE_OK && r < o.reps; r++) {
                    st = run_test(ctx, &batch, info.n_vocab, np, ng, &seed, &sec, &cpu);
                    s.ts[s.n] = n / sec;
                    s.cpu[s.n++] = cpu;
                }
                if (st != SMOE_OK) break;
                double mean, sd, cmean, csd;
                stats_mean_sd(s.ts, s.n, &mean, &sd);
                stats_mean_sd(s.cpu, s.n, &cmean, &csd);
                const double gbps = kind == 1 ? active * mean * 1e-9 : 0;
                char test[32];
                snprintf(test, sizeof(test), "%s%d", kind == 0 ? "pp" : "tg", n);
                const int threads = o.threads[ti] ? o.threads[ti] : 0;
                if (o.csv) {
                    printf("%s,%s,%.0f,%llu,%.0f,%d,%s,%d,%d,%d,%.4f,%.4f,%.4f,%.4f,%.3f\n", base, info.type_name,
                           file_bytes, (unsigned long long)info.n_params, active, threads, test, np, ng, s.n, mean,
                           sd, cmean, n / mean, gbps);
                } else {
                    char tcol[16];
                    if (threads) snprintf(tcol, sizeof(tcol), "%d", threads);
                    else snprintf(tcol, sizeof(tcol), "all");
                    char bw[32] = "";
                    if (kind == 1) snprintf(bw, sizeof(bw), "%.2f", gbps);
                    printf("| %s | %s | %.2f GiB | %.2f B | %s | %s | %.2f ± %.2f | %.3f | %s |\n", base, info.type_name,
                           file_bytes / (1024.0 * 1024.0 * 1024.0), (double)info.n_params * 1e-9, tcol, test, mean,
                           sd, cmean, bw);
                }
                fflush(stdout);
            }
        }
        smoe_context_free(ctx);
    }
    if (st != SMOE_OK) rc = smoe_cli_fail("bench", st);
    else if (!o.csv)
        printf("\nactive weights per generated token: %.1f MiB of %.1f MiB\n", active / (1024.0 * 1024.0),
               file_bytes / (1024.0 * 1024.0));
    smoe_batch_free(&batch);
    smoe_model_free(model);
    return rc;
}
