/*
 * gen-common.c - shared options and helpers of `smoe run` and `smoe chat` (public API only).
 */
#include "gen-common.h"

#include "cmd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void smoe_cli_opts_init(smoe_cli_opts *o) {
    memset(o, 0, sizeof(*o));
    o->n_predict = 256;
    o->kv_type = SMOE_KV_F16;
    o->sampling = smoe_sampler_default_params();
    o->sampling.seed = 0xC0FFEE;
}

static bool parse_long(const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || !end || *end || end == s || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool parse_float(const char *s, float *out) {
    char *end = NULL;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || !end || *end || end == s) return false;
    *out = v;
    return true;
}

int smoe_cli_parse_common(smoe_cli_opts *o, int argc, char **argv, int *i, const char *cmd) {
    const char *a = argv[*i];
    static const char *const with_value[] = {"-m", "--model", "-c", "--ctx-size", "-t", "--threads", "-n",
                                             "--n-predict", "--temp", "--top-k", "--top-p", "--min-p",
                                             "--repeat-penalty", "--repeat-last-n", "--frequency-penalty",
                                             "--presence-penalty", "--seed", "--stop", "--kv-type", "--backend",
                                             "--gpu-mem"};
    bool takes_value = false;
    for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++)
        if (!strcmp(a, with_value[k])) takes_value = true;
    if (!takes_value) {
        if (!strcmp(a, "--ignore-eos")) return o->ignore_eos = true, 1;
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) return o->verbose = true, 1;
        return 0;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "smoe %s: %s needs a value\n", cmd, a);
        return -1;
    }
    const char *v = argv[++*i];
    long        l = 0;
    float       f = 0;
    bool        ok = true;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
    else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) ok = parse_long(v, 1, 1 << 24, &l), o->n_ctx = (uint32_t)l;
    else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) ok = parse_long(v, 1, 1024, &l), o->n_threads = (int32_t)l;
    else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict"))
        ok = parse_long(v, 1, 1 << 24, &l), o->n_predict = (int32_t)l;
    else if (!strcmp(a, "--temp")) ok = parse_float(v, &f), o->sampling.temperature = f;
    else if (!strcmp(a, "--top-k")) ok = parse_long(v, 0, 1 << 24, &l), o->sampling.top_k = (int32_t)l;
    else if (!strcmp(a, "--top-p")) ok = parse_float(v, &f), o->sampling.top_p = f;
    else if (!strcmp(a, "--min-p")) ok = parse_float(v, &f), o->sampling.min_p = f;
    else if (!strcmp(a, "--repeat-penalty")) ok = parse_float(v, &f), o->sampling.repeat_penalty = f;
    else if (!strcmp(a, "--repeat-last-n"))
        ok = parse_long(v, -1, 1 << 24, &l), o->sampling.repeat_last_n = (int32_t)l;
    else if (!strcmp(a, "--frequency-penalty")) ok = parse_float(v, &f), o->sampling.frequency_penalty = f;
    else if (!strcmp(a, "--presence-penalty")) ok = parse_float(v, &f), o->sampling.presence_penalty = f;
    else if (!strcmp(a, "--seed")) {
        char *end = NULL;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 0);
        ok = !errno && end && !*end && end != v && v[0] != '-';
        o->sampling.seed = s;
    } else if (!strcmp(a, "--stop")) {
        if (o->n_stop == SMOE_CLI_MAX_STOP || !v[0]) ok = false;
        else o->stop[o->n_stop++] = v;
    } else if (!strcmp(a, "--backend")) {
        o->backend = v;
    } else if (!strcmp(a, "--gpu-mem")) {
        ok = smoe_cli_parse_size(v, &o->gpu_mem);
    } else if (!strcmp(a, "--kv-type")) {
        if (!strcmp(v, "f16")) o->kv_type = SMOE_KV_F16;
        else if (!strcmp(v, "q8_0")) o->kv_type = SMOE_KV_Q8_0;
        else if (!strcmp(v, "f32")) o->kv_type = SMOE_KV_F32;
        else ok = false;
    }
    if (!ok) {
        fprintf(stderr, "smoe %s: bad value for %s: '%s'\n", cmd, a, v);
        return -1;
    }
    return 1;
}

void smoe_cli_print_common_usage(FILE *f) {
    fprintf(f,
            "  -m, --model FILE         the GGUF model (required)\n"
            "  -c, --ctx-size N         context size in tokens (default: the model's, at most 32768)\n"
            "  -t, --threads N          CPU threads (default: all)\n"
            "  -n, --n-predict N        tokens to generate at most (default 256)\n"
            "  --temp T                 temperature, 0 = greedy (default 0.8)\n"
            "  --top-k K                keep the K most likely tokens, 0 = off (default 40)\n"
            "  --top-p P                nucleus sampling, 1 = off (default 0.95)\n"
            "  --min-p P                drop tokens below P x the best, 0 = off (default 0.05)\n"
            "  --repeat-penalty R       penalize repeated tokens, 1 = off (default 1.0)\n"
            "  --repeat-last-n N        window of the penalties (default 64, -1 = all)\n"
            "  --frequency-penalty F    (default 0)\n"
            "  --presence-penalty P     (default 0)\n"
            "  --seed S                 random seed (same seed, same output)\n"
            "  --stop STR               stop when STR is generated (repeatable)\n"
            "  --ignore-eos             keep generating past end-of-sequence\n"
            "  --kv-type f16|q8_0|f32   KV cache type (default f16)\n"
            "  --backend SPEC           where weights live and graphs run: cpu, vulkan, vulkan:N, cuda (smoe info\n"
            "                           --devices; default $SMOE_BACKEND, else cpu)\n"
            "  --gpu-mem SIZE           device memory the weights may take, e.g. 16G (KV cache and work buffers come\n"
            "                           on top); the experts that do not fit run on the CPU (smoe info --plan).\n"
            "                           Default: free memory less max(1 GiB, 1/16); 'all' = every weight\n"
            "  -v, --verbose            log loading details to stderr\n");
}

static bool progress_line(uint64_t done, uint64_t total, void *user_data) {
    (void)user_data;
    int pct = total ? (int)(done * 100 / total) : 100;
    fprintf(stderr, "\rloading model: %3d%%", pct);
    if (done >= total) fputc('\n', stderr);
    return true;
}

static void log_stderr(smoe_log_level level, const char *msg, void *user_data) {
    int verbose = *(const int *)user_data;
    if (level <= SMOE_LOG_WARN || verbose) fprintf(stderr, "smoe: %s\n", msg);
}

int smoe_cli_load(const smoe_cli_opts *o, const char *cmd, smoe_model **model, smoe_context **ctx) {
    static int verbose;
    verbose = o->verbose;
    *model = NULL;
    *ctx = NULL;
    if (!o->model) {
        fprintf(stderr, "smoe %s: -m MODEL is required\n", cmd);
        return 2;
    }
    smoe_model_params mp = smoe_model_default_params();
    mp.n_threads = o->n_threads;
    mp.backend = o->backend;
    mp.gpu_mem = o->gpu_mem;
    mp.log_fn = log_stderr;
    mp.log_user_data = &verbose;
    if (isatty(STDERR_FILENO)) mp.progress_fn = progress_line;
    smoe_status st = smoe_model_load(o->model, &mp, model);
    if (st != SMOE_OK) return smoe_cli_fail(cmd, st);
    if (!smoe_model_tokenizer(*model)) {
        fprintf(stderr, "smoe %s: %s has no tokenizer (no tokenizer.ggml.model key): convert the checkpoint with its "
                        "tokenizer.model\n", cmd, o->model);
        smoe_model_free(*model);
        *model = NULL;
        return 1;
    }
    smoe_context_params cp = smoe_context_default_params();
    cp.n_ctx = o->n_ctx;
    cp.n_threads = o->n_threads;
    cp.kv_type = o->kv_type;
    st = smoe_context_init(*model, &cp, ctx);
    if (st != SMOE_OK) {
        int rc = smoe_cli_fail(cmd, st);
        smoe_model_free(*model);
        *model = NULL;
        return rc;
    }
    return 0;
}

void smoe_cli_print_speed(const smoe_generate_result *r) {
    const double ps = r->prompt_ms / 1e3, gs = r->generate_ms / 1e3;
    fprintf(stderr, "\n[prompt: %d tokens in %.2f s (%.1f tok/s) | generation: %d tokens in %.2f s (%.1f tok/s)]\n",
            r->n_prompt, ps, ps > 0 ? r->n_prompt / ps : 0.0, r->n_generated, gs,
            gs > 0 ? r->n_generated / gs : 0.0);
}

bool smoe_cli_write_text(const char *text, size_t len, void *user_data) {
    (void)user_data;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}
