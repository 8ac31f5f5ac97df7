/*
 * cmd-info.c - `smoe info FILE.gguf`: the header, the metadata and the tensor table of a GGUF file, with totals.
 * Uses the public API only. `--json` prints the same as one JSON object.
 */
#include "cmd.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_ITEMS 6
#define MAX_TYPES     64
#define MAX_VALUE_WIDTH 120

static void usage(FILE *f) {
    fprintf(f, "usage: smoe info [options] FILE.gguf\n"
               "       smoe info --devices [--json]\n"
               "       smoe info --plan [--gpu-mem SIZE] [--backend SPEC] [--json] FILE.gguf\n"
               "\n"
               "Prints a GGUF file's header, metadata (key, type, value) and tensor table (name, type, shape,\n"
               "size, offset), then totals. The file is fully validated first.\n"
               "\n"
               "options:\n"
               "  -n, --items N   show at most N elements of each array (default %d; 0 = all)\n"
               "  --no-tensors    skip the tensor table (totals are still printed)\n"
               "  --json          print one JSON object instead (arrays are not elided unless -n is given)\n"
               "  --devices       list the devices models can run on (names for --backend / SMOE_BACKEND)\n"
               "  --plan          which weights a GPU would hold and which would stay in host memory (run on\n"
               "                  the CPU), for --gpu-mem SIZE (e.g. 16G) or else the automatic budget of the\n"
               "                  --backend device (default: the first GPU), as a model load would place them\n"
               "  -h, --help      this help\n",
               DEFAULT_ITEMS);
}

static const char *value_type_name(smoe_gguf_value_type t) {
    static const char *names[] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

/* "1.5 GiB", "12.0 KiB", "17 B" */
static const char *human_bytes(uint64_t n, char *buf, size_t size) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double             v       = (double)n;
    int                u       = 0;
    while (v >= 1024.0 && u < 4) v /= 1024.0, u++;
    if (u == 0) snprintf(buf, size, "%" PRIu64 " B", n);
    else snprintf(buf, size, "%.1f %s", v, units[u]);
    return buf;
}

/* "46.70 B", "7.24 M", "512" */
static const char *human_count(uint64_t n, char *buf, size_t size) {
    if (n >= 1000000000ull) snprintf(buf, size, "%.2f B", (double)n / 1e9);
    else if (n >= 1000000ull) snprintf(buf, size, "%.2f M", (double)n / 1e6);
    else if (n >= 1000ull) snprintf(buf, size, "%.2f K", (double)n / 1e3);
    else snprintf(buf, size, "%" PRIu64, n);
    return buf;
}

static char *format_value(const smoe_gguf_file *f, int64_t i, size_t items) {
    size_t need = smoe_gguf_file_kv_format(f, i, NULL, 0, items);
    char  *s    = malloc(need + 1);
    if (s) smoe_gguf_file_kv_format(f, i, s, need + 1, items);
    return s;
}

static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static uint64_t n_elements(const smoe_gguf_file *f, int64_t i) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < smoe_gguf_file_tensor_n_dims(f, i); d++) n *= (uint64_t)smoe_gguf_file_tensor_ne(f, i, d);
    return n;
}

static void shape_str(const smoe_gguf_file *f, int64_t i, char *buf, size_t size) {
    size_t at = (size_t)snprintf(buf, size, "[");
    for (uint32_t d = 0; d < smoe_gguf_file_tensor_n_dims(f, i) && at < size; d++) {
        at += (size_t)snprintf(buf + at, size - at, "%s%" PRId64, d ? ", " : "", smoe_gguf_file_tensor_ne(f, i, d));
    }
    if (at < size) snprintf(buf + at, size - at, "]");
}

typedef struct type_count {
    const char *name;
    int64_t     n;
    uint64_t    bytes;
} type_count;

static int print_json(const smoe_gguf_file *f, const char *path, uint64_t file_size, size_t items) {
    printf("{\"file\": ");
    json_str(path);
    printf(", \"version\": %u, \"file_size\": %" PRIu64 ", \"alignment\": %" PRIu64 ", \"data_offset\": %" PRIu64
           ",\n \"metadata\": [",
           smoe_gguf_file_version(f), file_size, smoe_gguf_file_alignment(f), smoe_gguf_file_data_offset(f));
    for (int64_t i = 0; i < smoe_gguf_file_n_kv(f); i++) {
        char *v = format_value(f, i, items);
        if (!v) return 1;
        printf("%s\n  {\"key\": ", i ? "," : "");
        json_str(smoe_gguf_file_kv_key(f, i));
        smoe_gguf_value_type t = smoe_gguf_file_kv_type(f, i);
        printf(", \"type\": \"%s\"", value_type_name(t));
        if (t == SMOE_GGUF_ARRAY) {
            printf(", \"element_type\": \"%s\", \"n\": %" PRIu64,
                   value_type_name(smoe_gguf_file_kv_array_type(f, i)), smoe_gguf_file_kv_array_n(f, i));
        }
        printf(", \"value\": ");
        json_str(v); /* the rendering, as text (nan/inf and elided arrays are not JSON) */
        printf("}");
        free(v);
    }
    printf("],\n \"tensors\": [");
    for (int64_t i = 0; i < smoe_gguf_file_n_tensors(f); i++) {
        printf("%s\n  {\"name\": ", i ? "," : "");
        json_str(smoe_gguf_file_tensor_name(f, i));
        printf(", \"type\": \"%s\", \"shape\": [", smoe_gguf_file_tensor_type_name(f, i));
        for (uint32_t d = 0; d < smoe_gguf_file_tensor_n_dims(f, i); d++) {
            printf("%s%" PRId64, d ? ", " : "", smoe_gguf_file_tensor_ne(f, i, d));
        }
        printf("], \"size\": %" PRIu64 ", \"offset\": %" PRIu64 "}", smoe_gguf_file_tensor_size(f, i),
               smoe_gguf_file_tensor_offset(f, i));
    }
    printf("]}\n");
    return 0;
}

static int print_text(const smoe_gguf_file *f, const char *path, uint64_t file_size, size_t items, bool tensors) {
    char    b1[32], b2[32];
    int64_t n_kv = smoe_gguf_file_n_kv(f), n_t = smoe_gguf_file_n_tensors(f);
    printf("%s: GGUF v%u, %s, %" PRId64 " metadata keys, %" PRId64 " tensors, alignment %" PRIu64
           ", data at offset %" PRIu64 "\n",
           path, smoe_gguf_file_version(f), human_bytes(file_size, b1, sizeof(b1)), n_kv, n_t,
           smoe_gguf_file_alignment(f), smoe_gguf_file_data_offset(f));

    int kw = 3;
    for (int64_t i = 0; i < n_kv; i++) {
        int l = (int)strlen(smoe_gguf_file_kv_key(f, i));
        if (l > kw) kw = l > 48 ? 48 : l;
    }
    printf("\nmetadata:\n  %-*s  %-14s  %s\n", kw, "key", "type", "value");
    for (int64_t i = 0; i < n_kv; i++) {
        char                *v = format_value(f, i, items);
        char                 type[40];
        smoe_gguf_value_type t = smoe_gguf_file_kv_type(f, i);
        if (!v) return 1;
        if (t == SMOE_GGUF_ARRAY) {
            snprintf(type, sizeof(type), "%s[%" PRIu64 "]", value_type_name(smoe_gguf_file_kv_array_type(f, i)),
                     smoe_gguf_file_kv_array_n(f, i));
        } else {
            snprintf(type, sizeof(type), "%s", value_type_name(t));
        }
        size_t len = strlen(v);
        if (items != SIZE_MAX && len > MAX_VALUE_WIDTH) { /* cut long strings at a UTF-8 boundary */
            size_t cut = MAX_VALUE_WIDTH;
            while (cut > 0 && ((unsigned char)v[cut] & 0xc0) == 0x80) cut--;
            printf("  %-*s  %-14s  %.*s... (%zu chars; -n 0 shows all)\n", kw, smoe_gguf_file_kv_key(f, i), type,
                   (int)cut, v, len);
        } else {
            printf("  %-*s  %-14s  %s\n", kw, smoe_gguf_file_kv_key(f, i), type, v);
        }
        free(v);
    }

    type_count types[MAX_TYPES];
    int        n_types = 0;
    uint64_t   params = 0, bytes = 0;
    int        nw     = 4;
    for (int64_t i = 0; i < n_t; i++) {
        int l = (int)strlen(smoe_gguf_file_tensor_name(f, i));
        if (l > nw) nw = l > 48 ? 48 : l;
    }
    if (tensors && n_t) printf("\ntensors:\n  %5s  %-*s  %-7s  %-24s  %10s  %12s\n", "#", nw, "name", "type", "shape",
                               "size", "offset");
    for (int64_t i = 0; i < n_t; i++) {
        const char *tn = smoe_gguf_file_tensor_type_name(f, i);
        uint64_t    sz = smoe_gguf_file_tensor_size(f, i);
        params += n_elements(f, i);
        bytes += sz;
        int k = 0;
        while (k < n_types && strcmp(types[k].name, tn) != 0) k++;
        if (k == n_types && n_types < MAX_TYPES) types[n_types++] = (type_count){tn, 0, 0};
        if (k < n_types) types[k].n++, types[k].bytes += sz;
        if (!tensors) continue;
        char shape[96];
        shape_str(f, i, shape, sizeof(shape));
        printf("  %5" PRId64 "  %-*s  %-7s  %-24s  %10s  %12" PRIu64 "\n", i, nw, smoe_gguf_file_tensor_name(f, i),
               tn, shape, human_bytes(sz, b1, sizeof(b1)), smoe_gguf_file_tensor_offset(f, i));
    }
    printf("\ntotal: %" PRId64 " tensors, %s parameters (%" PRIu64 "), %s of tensor data (%.2f bits/parameter)\n",
           n_t, human_count(params, b1, sizeof(b1)), params, human_bytes(bytes, b2, sizeof(b2)),
           params ? (double)bytes * 8.0 / (double)params : 0.0);
    for (int k = 0; k < n_types; k++) {
        printf("  %-7s %5" PRId64 " tensor%s  %s\n", types[k].name, types[k].n, types[k].n == 1 ? " " : "s",
               human_bytes(types[k].bytes, b1, sizeof(b1)));
    }
    return 0;
}

/* ---- --plan ---- */

/* The block index of "blk.N.<rest>" (and *rest), or -1. */
static int block_of(const char *name, const char **rest) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    char *end = NULL;
    long  l = strtol(name + 4, &end, 10);
    if (end == name + 4 || *end != '.' || l < 0 || l > 1 << 20) return -1;
    *rest = end + 1;
    return (int)l;
}

typedef struct plan_row {
    uint64_t gpu, host;
} plan_row;

/* Picks the device of --backend (or the first GPU) and its automatic budget. */
static int plan_budget(const char *backend, uint64_t *budget, char *dev, size_t dev_size) {
    const int32_t n = smoe_device_count();
    for (int32_t i = 0; i < n; i++) {
        smoe_device_info d;
        smoe_status      st = smoe_device_get_info(i, &d);
        if (st != SMOE_OK) return smoe_cli_fail("info", st);
        bool match;
        if (backend) {
            char spec[48];
            snprintf(spec, sizeof(spec), "%s:%d", d.kind, (int)d.index);
            match = !strcmp(backend, d.name) || !strcmp(backend, spec) || (!strcmp(backend, d.kind) && d.index == 0);
        } else {
            match = strcmp(d.kind, "cpu") != 0;
        }
        if (!match) continue;
        if (!strcmp(d.kind, "cpu")) {
            fprintf(stderr, "smoe info: --plan is for a GPU; the CPU holds every weight in host memory\n");
            return 2;
        }
        *budget = smoe_device_auto_gpu_mem(d.memory_total, d.memory_free);
        snprintf(dev, dev_size, "%s (%s)", d.name, d.description);
        return 0;
    }
    fprintf(stderr, "smoe info: %s%s%s: give --gpu-mem SIZE to see the plan for a budget\n",
            backend ? "no device '" : "no GPU device found", backend ? backend : "", backend ? "'" : "");
    return 1;
}

static int print_plan(const smoe_gguf_file *f, const char *path, uint64_t budget, const char *dev, bool json) {
    const int64_t n = smoe_gguf_file_n_tensors(f);
    bool         *on = malloc((size_t)(n > 0 ? n : 1) * sizeof(*on));
    if (!on) return smoe_cli_fail("info", SMOE_ERR_OUT_OF_MEMORY);
    smoe_placement pl = {.size = sizeof(pl)};
    smoe_status    st = smoe_gguf_file_plan_placement(f, budget, 0, on, &pl);
    if (st != SMOE_OK) {
        free(on);
        return smoe_cli_fail("info", st);
    }
    const int n_layer = pl.n_layer;
    /* per layer: [0] attention + norms + router, [1] experts */
    plan_row(*rows)[2] = calloc((size_t)(n_layer > 0 ? n_layer : 1), sizeof(*rows));
    if (!rows) {
        free(on);
        return smoe_cli_fail("info", SMOE_ERR_OUT_OF_MEMORY);
    }
    for (int64_t i = 0; i < n; i++) {
        const char *rest = NULL;
        const int   il = block_of(smoe_gguf_file_tensor_name(f, i), &rest);
        if (il < 0 || il >= n_layer) continue;
        plan_row *r = &rows[il][strncmp(rest, "ffn_", 4) == 0 && strncmp(rest, "ffn_gate_inp", 12) != 0 &&
                                strncmp(rest, "ffn_norm", 8) != 0];
        *(on[i] ? &r->gpu : &r->host) += smoe_gguf_file_tensor_size(f, i);
    }
    char b1[32], b2[32], b3[32];
    if (json) {
        printf("{\"file\": ");
        json_str(path);
        printf(", \"device\": ");
        json_str(dev);
        printf(", \"budget_bytes\": %" PRIu64 ", \"split\": %s, \"gpu_bytes\": %" PRIu64
               ", \"host_bytes\": %" PRIu64 ", \"n_layer\": %d, \"n_ffn_layers_gpu\": %d, \"dense_complete\": %s,"
               "\n \"tensors\": [",
               budget, pl.split ? "true" : "false", pl.gpu_bytes, pl.host_bytes, pl.n_layer, pl.n_ffn_layers_gpu,
               pl.dense_complete ? "true" : "false");
        for (int64_t i = 0; i < n; i++) {
            printf("%s\n  {\"name\": ", i ? "," : "");
            json_str(smoe_gguf_file_tensor_name(f, i));
            printf(", \"bytes\": %" PRIu64 ", \"on_gpu\": %s}", smoe_gguf_file_tensor_size(f, i),
                   on[i] ? "true" : "false");
        }
        printf("\n]}\n");
    } else {
        printf("placement of %s on %s\n", path, dev);
        printf("budget for weights: %s\n", budget == SMOE_GPU_MEM_ALL ? "unlimited" : human_bytes(budget, b1, sizeof(b1)));
        if (!pl.split) {
            printf("every weight fits on the GPU: %s (%d tensors)\n", human_bytes(pl.gpu_bytes, b1, sizeof(b1)),
                   (int)pl.n_gpu_tensors);
        } else {
            printf("on the GPU:     %10s in %d tensors: %s; the experts of %d of %d layers\n",
                   human_bytes(pl.gpu_bytes, b1, sizeof(b1)), (int)pl.n_gpu_tensors,
                   pl.dense_complete ? "every norm, router, attention and output weight"
                                     : "not every dense weight (norms, routers, attention, output): the budget is too small",
                   (int)pl.n_ffn_layers_gpu, n_layer);
            printf("in host memory: %10s in %d tensors, run on the CPU\n",
                   human_bytes(pl.host_bytes, b1, sizeof(b1)), (int)pl.n_host_tensors);
            printf("\n%5s  %-24s  %-24s\n", "layer", "attention+norms+router", "experts");
            for (int il = 0; il < n_layer; il++) {
                char a[40], e[40];
                snprintf(a, sizeof(a), "%-4s %s", rows[il][0].host ? (rows[il][0].gpu ? "both" : "cpu") : "gpu",
                         human_bytes(rows[il][0].gpu + rows[il][0].host, b2, sizeof(b2)));
                snprintf(e, sizeof(e), "%-4s %s", rows[il][1].host ? (rows[il][1].gpu ? "both" : "cpu") : "gpu",
                         human_bytes(rows[il][1].gpu + rows[il][1].host, b3, sizeof(b3)));
                printf("%5d  %-24s  %-24s\n", il, a, e);
            }
            printf("\noutside the layers:\n");
            for (int64_t i = 0; i < n; i++) {
                const char *rest = NULL;
                if (block_of(smoe_gguf_file_tensor_name(f, i), &rest) >= 0) continue;
                printf("  %-28s %-4s %s\n", smoe_gguf_file_tensor_name(f, i), on[i] ? "gpu" : "cpu",
                       human_bytes(smoe_gguf_file_tensor_size(f, i), b1, sizeof(b1)));
            }
        }
    }
    free(rows);
    free(on);
    return 0;
}

/* `smoe info --devices`: one line (or JSON object) per device of smoe_device_get_info. */
static int list_devices(bool json) {
    const int32_t n = smoe_device_count();
    if (json) printf("{\"devices\": [");
    for (int32_t i = 0; i < n; i++) {
        smoe_device_info d;
        smoe_status st = smoe_device_get_info(i, &d);
        if (st != SMOE_OK) return smoe_cli_fail("info", st);
        char mem[32];
        human_bytes(d.memory_total, mem, sizeof(mem));
        if (json) {
            printf("%s\n  {\"name\": ", i ? "," : "");
            json_str(d.name);
            printf(", \"kind\": ");
            json_str(d.kind);
            printf(", \"index\": %d, \"description\": ", (int)d.index);
            json_str(d.description);
            printf(", \"memory_bytes\": %" PRIu64 "}", d.memory_total);
        } else {
            printf("%-10s %-60s %10s\n", d.name, d.description, mem);
        }
    }
    if (json) printf("\n]}\n");
    return 0;
}

int smoe_cmd_info(int argc, char **argv) {
    const char *path    = NULL, *backend = NULL;
    bool        json    = false, tensors = true, devices = false, plan = false;
    uint64_t    gpu_mem = 0;
    long        items   = -1;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[a], "--json")) {
            json = true;
        } else if (!strcmp(argv[a], "--devices")) {
            devices = true;
        } else if (!strcmp(argv[a], "--plan")) {
            plan = true;
        } else if (!strcmp(argv[a], "--gpu-mem") && a + 1 < argc) {
            if (!smoe_cli_parse_size(argv[++a], &gpu_mem)) {
                fprintf(stderr, "smoe info: bad size '%s' (e.g. 16G, 1500M, all)\n", argv[a]);
                return 2;
            }
        } else if (!strcmp(argv[a], "--backend") && a + 1 < argc) {
            backend = argv[++a];
        } else if (!strcmp(argv[a], "--no-tensors")) {
            tensors = false;
        } else if ((!strcmp(argv[a], "-n") || !strcmp(argv[a], "--items")) && a + 1 < argc) {
            char *end;
            items = strtol(argv[++a], &end, 10);
            if (*end || items < 0) {
                fprintf(stderr, "smoe info: bad item count '%s'\n", argv[a]);
                return 2;
            }
        } else if (argv[a][0] == '-' && argv[a][1]) {
            fprintf(stderr, "smoe info: unknown option '%s'\n\n", argv[a]);
            usage(stderr);
            return 2;
        } else if (!path) {
            path = argv[a];
        } else {
            fprintf(stderr, "smoe info: one file at a time\n\n");
            usage(stderr);
            return 2;
        }
    }
    if (devices) return list_devices(json);
    if (!path) {
        usage(stderr);
        return 2;
    }
    size_t max_items = items < 0 ? (json ? SIZE_MAX : DEFAULT_ITEMS) : items == 0 ? SIZE_MAX : (size_t)items;

    smoe_gguf_file *f  = NULL;
    smoe_status     st = smoe_gguf_file_open(path, &f);
    if (st != SMOE_OK) return smoe_cli_fail("info", st);
    if (plan) {
        char dev[320] = "a GPU";
        int  rc = 0;
        if (gpu_mem == 0) rc = plan_budget(backend, &gpu_mem, dev, sizeof(dev));
        else if (backend) snprintf(dev, sizeof(dev), "%s", backend);
        if (rc == 0) rc = print_plan(f, path, gpu_mem, dev, json);
        smoe_gguf_file_close(f);
        return rc;
    }
    struct stat sb;
    uint64_t    file_size = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    int         rc        = json ? print_json(f, path, file_size, max_items)
                                 : print_text(f, path, file_size, max_items, tensors);
    smoe_gguf_file_close(f);
    if (rc) fprintf(stderr, "smoe info: out of memory\n");
    return rc;
}
