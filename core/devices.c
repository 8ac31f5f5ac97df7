/*
 * devices.c - the public device list (smoe_device_count, smoe_device_get_info) over the registry of backend kinds
 * (core/backend.c), and backend specs (core/devices.h).
 */
#include "devices.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if SMOE_HAVE_VULKAN
#include "backends/vulkan/vk-backend.h"
#endif

smoe_status smoe_backend_spec_parse(const char *spec, const smoe_backend_reg **reg, int *device) {
    SMOE_RETURN_IF(!spec || !reg || !device, SMOE_ERR_INVALID_ARGUMENT, "backend spec: NULL argument");
    size_t n = 0;
    while (spec[n] && !isdigit((unsigned char)spec[n]) && spec[n] != ':') n++;
    char kind[32];
    SMOE_RETURN_IF(n == 0 || n >= sizeof(kind), SMOE_ERR_INVALID_ARGUMENT,
                   "backend '%s': expected a kind such as cpu or vulkan, optionally with a device (vulkan:1)", spec);
    memcpy(kind, spec, n);
    kind[n] = '\0';
    const char *rest = spec + n;
    if (*rest == ':') rest++;
    long dev = 0;
    if (*rest) {
        char *end = NULL;
        dev = strtol(rest, &end, 10);
        SMOE_RETURN_IF(!isdigit((unsigned char)*rest) || !end || *end || dev > 1 << 20, SMOE_ERR_INVALID_ARGUMENT,
                       "backend '%s': bad device index '%s'", spec, rest);
    } else {
        SMOE_RETURN_IF(rest[-1] == ':', SMOE_ERR_INVALID_ARGUMENT, "backend '%s': missing device index", spec);
    }
    *reg = smoe_backend_reg_find(kind);
    if (!*reg) {
        char kinds[128] = "";
        for (int i = 0; i < smoe_backend_reg_count(); i++) {
            const size_t len = strlen(kinds);
            snprintf(kinds + len, sizeof(kinds) - len, "%s%s", i ? ", " : "", smoe_backend_reg_get(i)->name);
        }
        return smoe_set_error(SMOE_ERR_UNSUPPORTED, "backend '%s': '%s' is not compiled in (available: %s)", spec,
                              kind, kinds);
    }
    *device = (int)dev;
    return SMOE_OK;
}

smoe_status smoe_backend_init_spec(const char *spec, smoe_backend **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "backend: out is NULL");
    *out = NULL;
    const smoe_backend_reg *reg = NULL;
    int device = 0;
    SMOE_TRY(smoe_backend_spec_parse(spec, &reg, &device));
    return smoe_backend_init_by_name(reg->name, device, out);
}

const char *smoe_backend_default_spec(void) {
    const char *e = getenv("SMOE_BACKEND");
    return e && *e ? e : "cpu";
}

uint64_t smoe_device_auto_gpu_mem(uint64_t memory_total, uint64_t memory_free) {
    const uint64_t mem = memory_free ? memory_free : memory_total;
    uint64_t       reserve = memory_total / 16;
    if (reserve < ((uint64_t)1 << 30)) reserve = (uint64_t)1 << 30;
    return mem == 0 ? SMOE_GPU_MEM_ALL : mem > reserve ? mem - reserve : 0;
}

/* ---- the public list ---- */

int32_t smoe_device_count(void) {
    int32_t n = 0;
    for (int i = 0; i < smoe_backend_reg_count(); i++) n += smoe_backend_reg_get(i)->device_count();
    return n;
}

smoe_status smoe_device_get_info(int32_t i, smoe_device_info *info) {
    SMOE_RETURN_IF(!info, SMOE_ERR_INVALID_ARGUMENT, "smoe_device_get_info: info is NULL");
    memset(info, 0, sizeof(*info));
    SMOE_RETURN_IF(i < 0, SMOE_ERR_INVALID_ARGUMENT, "smoe_device_get_info: device %d < 0", (int)i);
    int32_t base = 0;
    for (int k = 0; k < smoe_backend_reg_count(); k++) {
        const smoe_backend_reg *reg = smoe_backend_reg_get(k);
        const int n = reg->device_count();
        if (i >= base + n) {
            base += n;
            continue;
        }
        const int dev = (int)(i - base);
        snprintf(info->kind, sizeof(info->kind), "%s", reg->name);
        info->index = dev;
#if SMOE_HAVE_VULKAN
        if (strcmp(reg->name, "vulkan") == 0)
            return smoe_vk_device_describe(dev, info->name, sizeof(info->name), info->description,
                                           sizeof(info->description), &info->memory_total);
#endif
        /* other kinds: create the backend and read its properties */
        smoe_backend *b = NULL;
        SMOE_TRY(reg->init(dev, &b));
        smoe_backend_props p;
        smoe_backend_get_props(b, &p);
        snprintf(info->name, sizeof(info->name), "%s", p.name ? p.name : reg->name);
        snprintf(info->description, sizeof(info->description), "%s", p.description ? p.description : "");
        info->memory_total = p.memory_total;
        info->memory_free = p.memory_free;
        smoe_backend_free(b);
        return SMOE_OK;
    }
    return smoe_set_error(SMOE_ERR_INVALID_ARGUMENT, "smoe_device_get_info: device %d not in [0, %d)", (int)i,
                          (int)base);
}
