/*
 * bench-ops.c - microbenchmarks of the CPU backend's hot ops on the shapes of the benchmark model
 * (tests/gen/gen_tiny_mixtral.py --preset bench: hidden 1024, 8 experts, top-2, FFN 3584, head_dim 128, 2 KV heads).
 *
 * Each case is a one-op graph run through the scheduler on a CPU backend with a chosen kernel table (ISA) and
 * thread count; the time per run is the median (and minimum) over reps after one warm-up run. Printed per case:
 * microseconds, GFLOP/s (2 * multiply-adds) and, for the weight-reading ops, GB/s of weights read (each expert
 * used counts once); rates use the median wall time. cpu_us is the process CPU time per run divided by the thread
 * count (median): on a loaded machine, where wall time includes waiting for a core, it is the better measure of a
 * kernel's cost. Not a test: it checks nothing (the op harness does).
 *
 * usage: bench-ops [-t THREADS] [-i ISA[,ISA...]] [-T TYPE[,TYPE...]] [-r REPS] [-p SUBSTRING]
 *   defaults: -t all CPUs, -i best available, -T q8_0,q4_0,q4_k,q6_k, -r 10
 */
#include "backends/cpu/cpu-simd.h"
#include "core/backend.h"
#include "core/graph.h"
#include "core/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
static double cpu_s(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* n_rows rows of ne0 elements of `type`: a few distinct random rows, repeated (the speed does not depend on the
 * values, and quantizing tens of millions of weights with the search quantizers would take long). */
static void *make_rows(smoe_type type, int64_t ne0, int64_t n_rows) {
    const smoe_type_traits *tr = smoe_type_get_traits(type);
    const size_t row = smoe_row_size(type, ne0);
    uint8_t *data = malloc(row * (size_t)n_rows);
    float *f = malloc((size_t)ne0 * sizeof(float));
    const int64_t distinct = n_rows < 8 ? n_rows : 8;
    for (int64_t r = 0; r < distinct; r++) {
        for (int64_t i = 0; i < ne0; i++) f[i] = frand();
        tr->from_f32(f, data + (size_t)r * row, ne0);
    }
    for (int64_t r = distinct; r < n_rows; r++) memcpy(data + (size_t)r * row, data + (size_t)(r % distinct) * row, row);
    free(f);
    return data;
}

typedef struct bcase {
    const char *name;
    int         kind; /* 0: MUL_MAT, 1: MUL_MAT_ID (n_x = 1), 2: MUL_MAT_ID (n_x = n_used), 3: ATTENTION f16, 4: SWIGLU,
                         5: RMS_NORM */
    int64_t     k, m, n; /* MUL_MAT: w [k, m], n tokens; ATTENTION: k = cells, n = tokens */
} bcase;

static const bcase cases[] = {
    {"attn-proj tg", 0, 1024, 1024, 1},
    {"attn-proj pp128", 0, 1024, 1024, 128},
    {"experts-up tg", 1, 1024, 3584, 1},
    {"experts-up pp128", 1, 1024, 3584, 128},
    {"experts-down tg", 2, 3584, 1024, 1},
    {"experts-down pp128", 2, 3584, 1024, 128},
    {"lm-head tg", 0, 1024, 32000, 1},
    {"attention f16 tg (512 cells)", 3, 512, 0, 1},
    {"attention f16 tg (16384 cells)", 3, 16384, 0, 1},
    {"attention f16 pp128", 3, 128, 0, 128},
    {"swiglu pp128", 4, 3584, 0, 256},
    {"rms_norm pp128", 5, 1024, 0, 128},
};

#define N_EXPERT 8
#define N_USED   2

typedef struct run_ctx {
    smoe_graph  *g;
    smoe_tensor *in[8];
    void        *data[8];
    int          n_in;
    double       flops, bytes;
} run_ctx;

static smoe_tensor *input(run_ctx *rc, smoe_type type, int n_dims, const int64_t *ne, void *data) {
    smoe_tensor *t = NULL;
    if (smoe_graph_new_tensor(rc->g, type, n_dims, ne, &t) != SMOE_OK) return NULL;
    rc->in[rc->n_in] = t;
    rc->data[rc->n_in++] = data;
    return t;
}

static float *frands(int64_t n, float scale) {
    float *x = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = scale * frand();
    return x;
}

static smoe_status build(run_ctx *rc, const bcase *c, smoe_type type) {
    smoe_tensor *o = NULL;
    smoe_status st = SMOE_OK;
    switch (c->kind) {
    case 0: {
        smoe_tensor *w = input(rc, type, 2, (int64_t[]){c->k, c->m}, make_rows(type, c->k, c->m));
        smoe_tensor *x = input(rc, SMOE_TYPE_F32, 2, (int64_t[]){c->k, c->n}, frands(c->k * c->n, 1.0f));
        st = smoe_mul_mat(rc->g, w, x, &o);
        rc->flops = 2.0 * (double)c->k * (double)c->m * (double)c->n;
        rc->bytes = (double)smoe_row_size(type, c->k) * (double)c->m;
        break;
    }
    case 1:
    case 2: {
        const int64_t n_x = c->kind == 1 ? 1 : N_USED;
        smoe_tensor *w = input(rc, type, 3, (int64_t[]){c->k, c->m, N_EXPERT},
                               make_rows(type, c->k, c->m * N_EXPERT));
        smoe_tensor *x = input(rc, SMOE_TYPE_F32, 3, (int64_t[]){c->k, n_x, c->n}, frands(c->k * n_x * c->n, 1.0f));
        int32_t *ids = malloc((size_t)(N_USED * c->n) * sizeof(int32_t));
        bool used[N_EXPERT] = {0};
        for (int64_t t = 0; t < c->n; t++) {
            const int32_t a = (int32_t)(rng_state % N_EXPERT);
            frand();
            int32_t b = (int32_t)(rng_state % (N_EXPERT - 1));
            frand();
            if (b >= a) b++;
            ids[2 * t] = a, ids[2 * t + 1] = b;
            used[a] = used[b] = true;
        }
        int n_used_experts = 0;
        for (int e = 0; e < N_EXPERT; e++) n_used_experts += used[e];
        smoe_tensor *it = input(rc, SMOE_TYPE_I32, 2, (int64_t[]){N_USED, c->n}, ids);
        st = smoe_mul_mat_id(rc->g, w, x, it, &o);
        rc->flops = 2.0 * (double)c->k * (double)c->m * (double)(N_USED * c->n);
        rc->bytes = (double)smoe_row_size(type, c->k) * (double)c->m * n_used_experts;
        break;
    }
    case 3: { /* head_dim 128, 8 heads, 2 KV heads; query tokens at the last positions */
        const int64_t hd = 128, nh = 8, nkv = 2, cells = c->k, nt = c->n;
        smoe_tensor *q = input(rc, SMOE_TYPE_F32, 3, (int64_t[]){hd, nh, nt}, frands(hd * nh * nt, 1.0f));
        smoe_tensor *k = input(rc, SMOE_TYPE_F16, 3, (int64_t[]){hd, nkv, cells}, make_rows(SMOE_TYPE_F16, hd, nkv * cells));
        smoe_tensor *v = input(rc, SMOE_TYPE_F16, 3, (int64_t[]){hd, nkv, cells}, make_rows(SMOE_TYPE_F16, hd, nkv * cells));
        int32_t *qi = malloc((size_t)(2 * nt) * sizeof(int32_t)), *ci = malloc((size_t)(2 * cells) * sizeof(int32_t));
        for (int64_t t = 0; t < nt; t++) qi[2 * t] = (int32_t)(cells - nt + t), qi[2 * t + 1] = 0;
        for (int64_t j = 0; j < cells; j++) ci[2 * j] = (int32_t)j, ci[2 * j + 1] = 0;
        int32_t *ns = malloc(sizeof(int32_t));
        *ns = (int32_t)cells;
        smoe_tensor *qit = input(rc, SMOE_TYPE_I32, 2, (int64_t[]){2, nt}, qi);
        smoe_tensor *cit = input(rc, SMOE_TYPE_I32, 2, (int64_t[]){2, cells}, ci);
        smoe_tensor *nst = input(rc, SMOE_TYPE_I32, 1, (int64_t[]){1}, ns);
        st = smoe_attention(rc->g, q, k, v, qit, cit, nst, 0.0884f, &o);
        double pairs = 0;
        for (int64_t t = 0; t < nt; t++) pairs += (double)(cells - nt + t + 1);
        rc->flops = 4.0 * (double)hd * (double)nh * pairs;
        rc->bytes = 0;
        break;
    }
    case 4: {
        smoe_tensor *a = input(rc, SMOE_TYPE_F32, 2, (int64_t[]){c->k, c->n}, frands(c->k * c->n, 4.0f));
        smoe_tensor *b = input(rc, SMOE_TYPE_F32, 2, (int64_t[]){c->k, c->n}, frands(c->k * c->n, 4.0f));
        st = smoe_swiglu(rc->g, a, b, &o);
        rc->flops = 0;
        break;
    }
    case 5: {
        smoe_tensor *a = input(rc, SMOE_TYPE_F32, 2, (int64_t[]){c->k, c->n}, frands(c->k * c->n, 4.0f));
        smoe_tensor *b = input(rc, SMOE_TYPE_F32, 1, (int64_t[]){c->k}, frands(c->k, 1.0f));
        st = smoe_rms_norm(rc->g, a, b, 1e-5f, &o);
        rc->flops = 0;
        break;
    }
    }
    if (st == SMOE_OK) smoe_graph_set_output(o);
    return st;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int split_list(char *s, char **items, int max) {
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ",")) items[n++] = tok;
    return n;
}

int main(int argc, char **argv) {
    int n_threads = 0, reps = 10;
    char isa_arg[256] = "", type_arg[256] = "q8_0,q4_0,q4_k,q6_k";
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-i") && i + 1 < argc) snprintf(isa_arg, sizeof(isa_arg), "%s", argv[++i]);
        else if (!strcmp(argv[i], "-T") && i + 1 < argc) snprintf(type_arg, sizeof(type_arg), "%s", argv[++i]);
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) filter = argv[++i];
        else {
            fprintf(stderr, "usage: %s [-t THREADS] [-i ISA,...] [-T TYPE,...] [-r REPS] [-p SUBSTRING]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (!isa_arg[0]) snprintf(isa_arg, sizeof(isa_arg), "%s", smoe_cpu_isa_name(smoe_cpu_isa_best()));
    char *isas[8], *types[16];
    const int n_isa = split_list(isa_arg, isas, 8), n_type = split_list(type_arg, types, 16);

    for (int ii = 0; ii < n_isa; ii++) {
        const int isa = smoe_cpu_isa_from_name(isas[ii]);
        smoe_cpu_params p = smoe_cpu_default_params();
        p.n_threads = n_threads;
        p.isa = isa < 0 ? 0 : isa;
        smoe_backend *b = NULL;
        if (isa < 0 || smoe_cpu_backend_init(&p, &b) != SMOE_OK) {
            fprintf(stderr, "ISA %s: %s\n", isas[ii], isa < 0 ? "unknown" : smoe_last_error());
            continue;
        }
        smoe_backend_props props;
        smoe_backend_get_props(b, &props);
        printf("# %s\n", props.description);
        printf("%-30s %-6s %12s %12s %12s %10s %10s\n", "case", "type", "median_us", "min_us", "cpu_us", "GFLOP/s",
               "GB/s");
        for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
            const bcase *c = &cases[ci];
            if (filter && !strstr(c->name, filter)) continue;
            const int nt = c->kind <= 2 ? n_type : 1;
            for (int ti = 0; ti < nt; ti++) {
                const int type = c->kind <= 2 ? smoe_type_from_name(types[ti]) : SMOE_TYPE_F32;
                if (type < 0) {
                    fprintf(stderr, "unknown type %s\n", types[ti]);
                    continue;
                }
                run_ctx rc = {0};
                smoe_sched *s = NULL;
                if (smoe_graph_init(&rc.g) != SMOE_OK) return 1;
                smoe_status st = build(&rc, c, (smoe_type)type);
                if (st == SMOE_OK) st = smoe_sched_init(&b, 1, &s);
                if (st == SMOE_OK) st = smoe_sched_alloc_graph(s, rc.g);
                for (int i = 0; st == SMOE_OK && i < rc.n_in; i++)
                    st = smoe_tensor_set(rc.in[i], rc.data[i], 0, smoe_tensor_nbytes(rc.in[i]));
                double *t = calloc((size_t)reps, sizeof(double)), *tc = calloc((size_t)reps, sizeof(double));
                if (st == SMOE_OK) st = smoe_sched_compute(s, rc.g); /* warm-up */
                for (int r = 0; st == SMOE_OK && r < reps; r++) {
                    const double t0 = now_s(), c0 = cpu_s();
                    st = smoe_sched_compute(s, rc.g);
                    t[r] = now_s() - t0;
                    tc[r] = (cpu_s() - c0) / props.n_threads;
                }
                if (st != SMOE_OK) {
                    printf("%-30s %-6s failed: %s\n", c->name, smoe_type_name(type), smoe_last_error());
                } else {
                    qsort(t, (size_t)reps, sizeof(double), cmp_double);
                    qsort(tc, (size_t)reps, sizeof(double), cmp_double);
                    const double med = t[reps / 2], mn = t[0];
                    printf("%-30s %-6s %12.1f %12.1f %12.1f %10.1f %10.2f\n", c->name,
                           c->kind <= 2 ? smoe_type_name(type) : "f32", med * 1e6, mn * 1e6, tc[reps / 2] * 1e6,
                           rc.flops / med * 1e-9, rc.bytes / med * 1e-9);
                }
                fflush(stdout);
                free(t);
                free(tc);
                smoe_sched_free(s);
                smoe_graph_free(rc.g);
                for (int i = 0; i < rc.n_in; i++) free(rc.data[i]);
            }
        }
        smoe_backend_free(b);
    }
    return 0;
}
