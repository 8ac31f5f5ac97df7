/*
 * backend-check.c - a whole model on a device backend against the same model on the CPU, with nothing but the
 * library: the GPU session's end-to-end check when no Python environment is at hand (bench/device-check.sh), and a
 * meson test on every device CI has (vulkan0 on lavapipe, cuda0 on the fake runtime of tests/cuda-fake).
 *
 *     backend-check -b BACKEND [-t f32,q8_0,q4_0,q4_k_m] [-s STEPS]
 *
 * For each weight type: the synthetic "tiny" model (smoe_model_init_synthetic, seeded) on the CPU and on BACKEND,
 * all weights on the device, then again with half of them (the rest in host memory, run by the CPU). A prompt of 40
 * tokens (so the prefill takes the device's many-column matmul paths, MUL_MAT_ID with 80 pairs), then STEPS single
 * token decodes fed the CPU's greedy tokens on both (teacher forcing: a near tie cannot make the runs diverge), in a
 * 512-cell context (split attention at decode on GPUs). Each step's logits are compared: max |a - b| / max |b| must
 * stay under the type's tolerance (f32 1e-4; quantized 3e-2: the CPU multiplies quantized weights with activations
 * quantized to Q8_0, a GPU may use f32 or f16 activations). Prints a table; exit status 0 when every row passes.
 */
#include "smoe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_PROMPT 40
#define MAX_STEPS 64

typedef struct run {
    int     n_vocab;
    float  *logits; /* (1 + steps) x n_vocab: after the prompt, then after each step */
    int32_t tokens[MAX_STEPS + 1];
    smoe_placement placement;
} run;

static int32_t argmax(const float *l, int n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    return best;
}

/* Runs the model of `ftype` on `backend`; forced != NULL: the tokens to feed (the CPU's), else greedy. */
static smoe_status run_model(const char *backend, uint64_t gpu_mem, smoe_ftype ftype, int steps, const int32_t *forced,
                             run *r) {
    smoe_synthetic_params sp = smoe_synthetic_default_params();
    sp.preset = "tiny";
    sp.ftype = ftype;
    sp.seed = 5;
    smoe_model_params mp = smoe_model_default_params();
    mp.backend = backend;
    mp.gpu_mem = gpu_mem;
    smoe_model  *m = NULL;
    smoe_context *ctx = NULL;
    smoe_batch   batch = {0};
    smoe_status  st = smoe_model_init_synthetic(&sp, &mp, &m);
    if (st != SMOE_OK) return st;
    smoe_model_info info;
    smoe_model_get_info(m, &info);
    r->n_vocab = info.n_vocab;
    r->placement.size = sizeof(r->placement);
    if ((st = smoe_model_get_placement(m, &r->placement)) != SMOE_OK) goto done;
    r->logits = malloc((size_t)(steps + 1) * (size_t)info.n_vocab * sizeof(float));
    if (!r->logits) {
        st = SMOE_ERR_OUT_OF_MEMORY;
        goto done;
    }
    smoe_context_params cp = smoe_context_default_params();
    cp.n_ctx = 512;
    if ((st = smoe_context_init(m, &cp, &ctx)) != SMOE_OK) goto done;
    if ((st = smoe_batch_init(N_PROMPT, &batch)) != SMOE_OK) goto done;
    for (int i = 0; i < N_PROMPT; i++)
        if ((st = smoe_batch_add(&batch, (int32_t)((i * 37 + 11) % info.n_vocab), i, 0, i == N_PROMPT - 1)) != SMOE_OK)
            goto done;
    for (int s = 0; s <= steps; s++) {
        if ((st = smoe_decode(ctx, &batch)) != SMOE_OK) goto done;
        const float *l = smoe_get_logits(ctx, -1);
        memcpy(r->logits + (size_t)s * (size_t)info.n_vocab, l, (size_t)info.n_vocab * sizeof(float));
        r->tokens[s] = forced ? forced[s] : argmax(l, info.n_vocab);
        batch.n_tokens = 0;
        if ((st = smoe_batch_add(&batch, r->tokens[s], N_PROMPT + s, 0, true)) != SMOE_OK) goto done;
    }
done:
    smoe_batch_free(&batch);
    smoe_context_free(ctx);
    smoe_model_free(m);
    return st;
}

static double rel_diff(const float *a, const float *b, size_t n) {
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= md)) md = d; /* NaN propagates */
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
    }
    return mb > 0 ? md / mb : md;
}

static int usage(void) {
    fprintf(stderr, "usage: backend-check -b BACKEND [-t f32,q8_0,q4_0,q4_k_m] [-s STEPS (1..%d)]\n", MAX_STEPS);
    return 2;
}

int main(int argc, char **argv) {
    const char *backend = NULL, *types = "f32,q8_0,q4_0,q4_k_m";
    int         steps = 12;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc) backend = argv[++i];
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) types = argv[++i];
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) steps = atoi(argv[++i]);
        else return usage();
    }
    if (!backend || steps < 1 || steps > MAX_STEPS) return usage();
    printf("| type | weights on %s | max relative logit difference (worst step) | tolerance | same argmax | |\n"
           "| --- | --- | ---: | ---: | ---: | --- |\n",
           backend);
    int failed = 0;
    char list[256];
    snprintf(list, sizeof(list), "%s", types);
    for (char *save = NULL, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        smoe_ftype ft;
        if (smoe_ftype_from_name(name, &ft) != SMOE_OK) {
            fprintf(stderr, "backend-check: %s\n", smoe_last_error());
            return 2;
        }
        run ref = {0};
        if (run_model("cpu", 0, ft, steps, NULL, &ref) != SMOE_OK) {
            fprintf(stderr, "backend-check: %s on cpu: %s\n", name, smoe_last_error());
            return 1;
        }
        const double tol = ft == SMOE_FTYPE_F32 ? 1e-4 : 3e-2;
        uint64_t gpu_all = 0;
        for (int half = 0; half < 2; half++) {
            run got = {0};
            const uint64_t budget = half ? gpu_all / 2 : SMOE_GPU_MEM_ALL;
            char where[64];
            const smoe_status st = run_model(backend, budget, ft, steps, ref.tokens, &got);
            if (st != SMOE_OK) {
                printf("| %s | %s | | | | FAILED: %s |\n", name, half ? "half" : "all", smoe_last_error());
                failed++;
                free(got.logits);
                continue;
            }
            if (!half) gpu_all = got.placement.gpu_bytes;
            snprintf(where, sizeof(where), "%s (%d of %d tensors)", half ? "half" : "all", got.placement.n_gpu_tensors,
                     got.placement.n_gpu_tensors + got.placement.n_host_tensors);
            double worst = 0;
            int    same = 0;
            for (int s = 0; s <= steps; s++) {
                const float *a = got.logits + (size_t)s * (size_t)got.n_vocab;
                const float *b = ref.logits + (size_t)s * (size_t)ref.n_vocab;
                const double d = rel_diff(a, b, (size_t)ref.n_vocab);
                if (!(d <= worst)) worst = d;
                same += argmax(a, got.n_vocab) == argmax(b, ref.n_vocab);
            }
            const int ok = worst <= tol && (!half || got.placement.n_host_tensors > 0);
            printf("| %s | %s | %.3g | %.0e | %d/%d | %s |\n", name, where, worst, tol, same, steps + 1,
                   ok ? "ok" : (worst <= tol ? "FAILED: nothing left in host memory" : "FAILED"));
            failed += !ok;
            free(got.logits);
        }
        free(ref.logits);
    }
    printf("backend-check %s: %s\n", backend, failed ? "FAILED" : "passed");
    return failed ? 1 : 0;
}
