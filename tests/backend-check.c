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
#include "synthetic-run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_PROMPT 40

static int usage(void) {
    fprintf(stderr, "usage: backend-check -b BACKEND [-t f32,q8_0,q4_0,q4_k_m] [-s STEPS (1..%d)]\n", SR_MAX_STEPS);
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
    if (!backend || steps < 1 || steps > SR_MAX_STEPS) return usage();
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
        sr_run ref;
        if (sr_run_model("cpu", 0, ft, N_PROMPT, steps, NULL, &ref) != SMOE_OK) {
            fprintf(stderr, "backend-check: %s on cpu: %s\n", name, smoe_last_error());
            return 1;
        }
        const double tol = ft == SMOE_FTYPE_F32 ? 1e-4 : 3e-2;
        uint64_t gpu_all = 0;
        for (int half = 0; half < 2; half++) {
            sr_run got;
            const uint64_t budget = half ? gpu_all / 2 : SMOE_GPU_MEM_ALL;
            char where[64];
            const smoe_status st = sr_run_model(backend, budget, ft, N_PROMPT, steps, ref.tokens, &got);
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
                const double d = sr_rel_diff(a, b, (size_t)ref.n_vocab);
                if (!(d <= worst)) worst = d;
                same += sr_argmax(a, got.n_vocab) == sr_argmax(b, ref.n_vocab);
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
