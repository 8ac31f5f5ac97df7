/*
 * cmd-bench.c - `smoe bench`: prompt-processing and generation speed, reported as llama-bench reports them so the
 * two compare directly, plus the memory bandwidth that generation achieves. Public API only.
 *
 * Tests (as llama-bench's): ppN decodes N random tokens in one batch from an empty KV cache (logits of the last
 * one only); tgN decodes N tokens one at a time from an empty cache (logits of each). Each test runs once as a
 * warm-up, then REPS times; the speed is tokens / seconds per rep, printed as mean +- sample standard deviation.
 *
 * With -d DEPTH (as llama-bench's -d), the KV cache first holds DEPTH tokens (decoded untimed before each rep):
 * tgN at depth 4096 is generation with 4096 tokens of context.
 *
 * Bandwidth of generation: the bytes of weights one token reads (smoe_model_active_bytes: every weight whole, the
 * experts n_expert_used / n_expert of theirs, one row of the token embedding) times tokens per second; with
 * --peak-gbps, also its fraction of the device's peak. CPU seconds per rep (process user+system time) are printed
 * too: on a machine shared with other work, wall time includes waiting for a core, CPU time does not.
 *
 * --synthetic PRESET builds the model in memory instead (smoe_model_init_synthetic: random weights of the preset's
 * shapes, no file), once per --type: `smoe bench --synthetic mixtral-8x7b --type q4_0,q4_k_m,q8_0 --backend cuda`.
 */
#include "cmd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

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
    int          depth[MAX_LIST], n_depth;
    const char  *synthetic;          /* preset, or NULL */
    smoe_ftype   types[MAX_LIST];    /* with synthetic */
    int          n_types, n_layer;
    double       peak_gbps;          /* 0: unknown */
    bool         csv, verbose;
} bench_opts;

static void usage(FILE *f) {
    fprintf(f, "usage: smoe bench -m MODEL [-p N[,N...]] [-n N[,N...]] [-d N[,N...]] [-t N[,N...]] [-r REPS] [options]\n"
               "       smoe bench --synthetic mixtral-8x7b|bench|tiny [--type T[,T...]] [--layers N] [options]\n\n"
               "Measures prompt processing (ppN: N tokens in one batch) and generation (tgN: N tokens one by one),\n"
               "as llama-bench does (tokens/s, mean +- stddev over REPS after one warm-up), and the weight bandwidth\n"
               "that generation achieves.\n\n"
               "  -m, --model FILE       the GGUF model\n"
               "  -p, --n-prompt N,...   prompt lengths (default 128; 0 = none)\n"
               "  -n, --n-gen N,...      generation lengths (default 32; 0 = none)\n"
               "  -d, --depth N,...      tokens already in the KV cache before each test (default 0)\n"
               "  --synthetic PRESET     random weights of a preset's shapes instead of a file (no tokenizer)\n"
               "  --type T,...           with --synthetic: file types as smoe convert --type (default q4_0)\n"
               "  --layers N             with --synthetic: layers (default: the preset's)\n"
               "  --peak-gbps G          the device's peak memory bandwidth: prints generation's fraction of it\n"
               "  -t, --threads N,...    CPU threads (default: all online CPUs)\n"
               "  -r, --repetitions R    measured runs per test (default 5)\n"
               "  --kv-type f16|q8_0|f32 KV cache type (default f16, as llama-bench)\n"
               "  --backend SPEC         where weights live and graphs run: cpu, cuda, vulkan, vulkan:N (smoe info\n"
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

/* One run of a test; *seconds and *cpu get its wall and CPU time (the depth fill is not timed). */
static smoe_status run_test(smoe_context *ctx, smoe_batch *batch, int n_vocab, int depth, int n_prompt, int n_gen,
                            unsigned *seed, double *seconds, double *cpu) {
    smoe_kv_clear(ctx);
    for (int done = 0; done < depth;) { /* context of `depth` tokens, in batches */
        batch->n_tokens = 0;
        for (; done < depth && batch->n_tokens < batch->capacity; done++) {
            *seed = *seed * 1103515245u + 12345u;
            TRY(smoe_batch_add(batch, done == 0 ? 1 : (int32_t)((*seed >> 8) % (unsigned)n_vocab), done, 0,
                               done == depth - 1));
        }
        TRY(smoe_decode(ctx, batch));
    }
    const double t0 = smoe_cli_now(), c0 = cpu_s();
    if (n_prompt > 0) {
        batch->n_tokens = 0;
        for (int i = 0; i < n_prompt; i++) {
            *seed = *seed * 1103515245u + 12345u;
            const int32_t tok = i == 0 && depth == 0 ? 1 : (int32_t)((*seed >> 8) % (unsigned)n_vocab);
            TRY(smoe_batch_add(batch, tok, depth + i, 0, i == n_prompt - 1));
        }
        TRY(smoe_decode(ctx, batch));
    }
    for (int i = 0; i < n_gen; i++) {
        *seed = *seed * 1103515245u + 12345u;
        const int32_t tok = i == 0 && depth == 0 ? 1 : (int32_t)((*seed >> 8) % (unsigned)n_vocab);
        batch->n_tokens = 0;
        TRY(smoe_batch_add(batch, tok, depth + i, 0, true));
        TRY(smoe_decode(ctx, batch));
    }
    *seconds = smoe_cli_now() - t0;
    *cpu = cpu_s() - c0;
    return SMOE_OK;
}

static int max_of(const int *v, int n) {
    int m = 0;
    for (int i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

/* Runs every test on one model, printing a row each. */
static smoe_status bench_model(const bench_opts *o, smoe_model *model, const char *label) {
    smoe_model_info info;
    smoe_model_get_info(model, &info);
    const double active = (double)smoe_model_active_bytes(model), size = (double)info.size_bytes;
    const int    max_pp = max_of(o->pp, o->n_pp), max_tg = max_of(o->tg, o->n_tg), max_d = max_of(o->depth, o->n_depth);
    const int    cap = max_pp > 512 ? max_pp : 512;
    smoe_batch   batch = {0};
    smoe_status  st = smoe_batch_init(cap, &batch);
    for (int ti = 0; st == SMOE_OK && ti < o->n_threads; ti++) {
        smoe_context_params cp = smoe_context_default_params();
        cp.n_ctx = (uint32_t)(max_d + (max_pp > max_tg ? max_pp : max_tg) + 16);
        cp.n_batch = (uint32_t)cap;
        cp.n_threads = o->threads[ti];
        cp.kv_type = o->kv_type;
        smoe_context *ctx = NULL;
        st = smoe_context_init(model, &cp, &ctx);
        if (st != SMOE_OK) break;
        for (int di = 0; st == SMOE_OK && di < o->n_depth; di++) {
            const int depth = o->depth[di];
            for (int kind = 0; st == SMOE_OK && kind < 2; kind++) {
                const int n_list = kind == 0 ? o->n_pp : o->n_tg;
                for (int li = 0; st == SMOE_OK && li < n_list; li++) {
                    const int n = kind == 0 ? o->pp[li] : o->tg[li];
                    if (n == 0) continue;
                    const int np = kind == 0 ? n : 0, ng = kind == 0 ? 0 : n;
                    unsigned  seed = 1234u + (unsigned)n;
                    double    sec, cpu;
                    st = run_test(ctx, &batch, info.n_vocab, depth, np, ng, &seed, &sec, &cpu); /* warm-up */
                    stats s = {.n = 0};
                    for (int r = 0; st == SMOE_OK && r < o->reps; r++) {
                        st = run_test(ctx, &batch, info.n_vocab, depth, np, ng, &seed, &sec, &cpu);
                        s.ts[s.n] = n / sec;
                        s.cpu[s.n++] = cpu;
                    }
                    if (st != SMOE_OK) break;
                    double mean, sd, cmean, csd;
                    stats_mean_sd(s.ts, s.n, &mean, &sd);
                    stats_mean_sd(s.cpu, s.n, &cmean, &csd);
                    const double gbps = kind == 1 ? active * mean * 1e-9 : 0;
                    char         test[48];
                    if (depth) snprintf(test, sizeof(test), "%s%d @ d%d", kind == 0 ? "pp" : "tg", n, depth);
                    else snprintf(test, sizeof(test), "%s%d", kind == 0 ? "pp" : "tg", n);
                    const int threads = o->threads[ti] ? o->threads[ti] : 0;
                    if (o->csv) {
                        printf("%s,%s,%.0f,%llu,%.0f,%d,%s,%d,%d,%d,%.4f,%.4f,%.4f,%.4f,%.3f,%d,%.4f\n", label,
                               info.type_name, size, (unsigned long long)info.n_params, active, threads, test, np, ng,
                               s.n, mean, sd, cmean, n / mean, gbps, depth,
                               kind == 1 && o->peak_gbps > 0 ? gbps / o->peak_gbps : 0.0);
                    } else {
                        char tcol[16], bw[48] = "";
                        if (threads) snprintf(tcol, sizeof(tcol), "%d", threads);
                        else snprintf(tcol, sizeof(tcol), "all");
                        if (kind == 1 && o->peak_gbps > 0)
                            snprintf(bw, sizeof(bw), "%.2f (%.0f%% of peak)", gbps, 100 * gbps / o->peak_gbps);
                        else if (kind == 1) snprintf(bw, sizeof(bw), "%.2f", gbps);
                        printf("| %s | %s | %.2f GiB | %.2f B | %s | %s | %.2f ± %.2f | %.3f | %s |\n", label,
                               info.type_name, size / (1024.0 * 1024.0 * 1024.0), (double)info.n_params * 1e-9, tcol,
                               test, mean, sd, cmean, bw);
                    }
                    fflush(stdout);
                }
            }
        }
        smoe_context_free(ctx);
    }
    if (st == SMOE_OK && !o->csv)
        fprintf(stderr, "%s: active weights per generated token: %.1f MiB of %.1f MiB\n", label,
                active / (1024.0 * 1024.0), size / (1024.0 * 1024.0));
    smoe_batch_free(&batch);
    return st;
}

int smoe_cmd_bench(int argc, char **argv) {
    bench_opts o = {.pp = {128}, .n_pp = 1, .tg = {32}, .n_tg = 1, .threads = {0}, .n_threads = 1, .reps = 5,
                    .kv_type = SMOE_KV_F16, .depth = {0}, .n_depth = 1, .types = {SMOE_FTYPE_Q4_0}, .n_types = 1};
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
        } else if ((!strcmp(a, "-d") || !strcmp(a, "--depth")) && has) {
            if ((o.n_depth = parse_list(argv[++i], o.depth, MAX_LIST, 0)) < 1) goto bad;
        } else if (!strcmp(a, "--synthetic") && has) {
            o.synthetic = argv[++i];
        } else if (!strcmp(a, "--type") && has) {
            char list[256];
            snprintf(list, sizeof(list), "%s", argv[++i]);
            o.n_types = 0;
            for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (o.n_types == MAX_LIST || smoe_ftype_from_name(t, &o.types[o.n_types]) != SMOE_OK) goto bad;
                o.n_types++;
            }
            if (o.n_types == 0) goto bad;
        } else if (!strcmp(a, "--layers") && has) {
            o.n_layer = atoi(argv[++i]);
            if (o.n_layer < 1 || o.n_layer > 4096) goto bad;
        } else if (!strcmp(a, "--peak-gbps") && has) {
            o.peak_gbps = atof(argv[++i]);
            if (!(o.peak_gbps > 0)) goto bad;
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
    if (!o.model == !o.synthetic) {
        fprintf(stderr, "smoe bench: give -m MODEL or --synthetic PRESET (one of them)\n");
        usage(stderr);
        return 2;
    }

    smoe_model_params mp = smoe_model_default_params();
    if (o.verbose) mp.log_fn = log_stderr;
    mp.backend = o.backend;
    mp.gpu_mem = o.gpu_mem;
    if (o.csv)
        printf("model,type,size_bytes,params,active_bytes,threads,test,n_prompt,n_gen,reps,avg_ts,stddev_ts,"
               "avg_cpu_s,avg_s,gbps,n_depth,peak_fraction\n");
    else
        printf("| model | type | size | params | threads | test | t/s | cpu s/run | weights GB/s |\n"
               "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |\n");
    const int   n_models = o.synthetic ? o.n_types : 1;
    smoe_status st = SMOE_OK;
    for (int k = 0; st == SMOE_OK && k < n_models; k++) {
        smoe_model *model = NULL;
        char        label[128];
        if (o.synthetic) {
            smoe_synthetic_params sp = smoe_synthetic_default_params();
            sp.preset = o.synthetic;
            sp.ftype = o.types[k];
            sp.n_layer = o.n_layer;
            st = smoe_model_init_synthetic(&sp, &mp, &model);
            snprintf(label, sizeof(label), "synthetic-%s-%s", o.synthetic, smoe_ftype_name(o.types[k]));
        } else {
            st = smoe_model_load(o.model, &mp, &model);
            const char *base = strrchr(o.model, '/');
            snprintf(label, sizeof(label), "%s", base ? base + 1 : o.model);
        }
        if (st == SMOE_OK) st = bench_model(&o, model, label);
        smoe_model_free(model);
    }
    return st == SMOE_OK ? 0 : smoe_cli_fail("bench", st);
}
