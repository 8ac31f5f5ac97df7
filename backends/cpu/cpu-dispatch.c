/*
 * cpu-dispatch.c - picks the CPU backend's kernel table by CPU features (cpuid + XCR0), once per process.
 *
 * The SIMD variants exist on x86-64 builds with GCC or clang (backends/cpu/meson.build compiles them there). A
 * variant is offered only when the CPU reports every feature its compiler flags assume and the OS saves the vector
 * registers it uses (XCR0). The environment variable SMOE_CPU_ISA ("scalar", "avx2", "avx2-vnni", "avx512",
 * "avx512-vnni") caps what AUTO picks, for benchmarks and bug reports; it is read once.
 */
#include "cpu-simd.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define SMOE_CPU_X86_SIMD 1
#include <cpuid.h>
#else
#define SMOE_CPU_X86_SIMD 0
#endif

static const char *const isa_names[SMOE_CPU_ISA_COUNT] = {
    [SMOE_CPU_ISA_AUTO] = "auto",     [SMOE_CPU_ISA_SCALAR] = "scalar",     [SMOE_CPU_ISA_AVX2] = "avx2",
    [SMOE_CPU_ISA_AVX2_VNNI] = "avx2-vnni", [SMOE_CPU_ISA_AVX512] = "avx512", [SMOE_CPU_ISA_AVX512_VNNI] = "avx512-vnni",
};

const char *smoe_cpu_isa_name(smoe_cpu_isa isa) {
    return (int)isa >= 0 && isa < SMOE_CPU_ISA_COUNT ? isa_names[isa] : "unknown";
}

int smoe_cpu_isa_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < SMOE_CPU_ISA_COUNT; i++)
        if (strcasecmp(name, isa_names[i]) == 0) return i;
    return -1;
}

static smoe_cpu_kernels tables[SMOE_CPU_ISA_COUNT];
static bool             available[SMOE_CPU_ISA_COUNT];
static smoe_cpu_isa     best = SMOE_CPU_ISA_SCALAR;
static pthread_once_t   once = PTHREAD_ONCE_INIT;

#if SMOE_CPU_X86_SIMD
static uint64_t xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
    if (!osxsave || !avx) return;
    const uint64_t x = xcr0();
    const bool os_ymm = (x & 0x6) == 0x6, os_zmm = (x & 0xe6) == 0xe6;
    unsigned b7 = 0, c7 = 0, a71 = 0;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b7, c7, d);
        unsigned b71, c71, d71;
        __cpuid_count(7, 1, a71, b71, c71, d71);
        (void)b71, (void)c71, (void)d71;
    }
    const bool avx2 = b7 & (1u << 5), avx512f = b7 & (1u << 16), avx512dq = b7 & (1u << 17);
    const bool avx512bw = b7 & (1u << 30), avx512vl = b7 & (1u << 31), avx512vnni = c7 & (1u << 11);
    const bool avxvnni = a71 & (1u << 4);
    const bool base = os_ymm && avx2 && fma && f16c;
    available[SMOE_CPU_ISA_AVX2] = base;
    available[SMOE_CPU_ISA_AVX2_VNNI] = base && avxvnni;
    available[SMOE_CPU_ISA_AVX512] = base && os_zmm && avx512f && avx512dq && avx512bw && avx512vl;
    available[SMOE_CPU_ISA_AVX512_VNNI] = available[SMOE_CPU_ISA_AVX512] && avx512vnni;
}
#endif

static void init_tables(void) {
    for (int i = 0; i < SMOE_CPU_ISA_COUNT; i++) {
        memset(&tables[i], 0, sizeof(tables[i]));
        tables[i].isa = (smoe_cpu_isa)i;
        tables[i].name = isa_names[i];
    }
    available[SMOE_CPU_ISA_SCALAR] = true;
#if SMOE_CPU_X86_SIMD
    detect();
    smoe_cpu_simd_fill_avx2(&tables[SMOE_CPU_ISA_AVX2]);
    smoe_cpu_simd_fill_avx2vnni(&tables[SMOE_CPU_ISA_AVX2_VNNI]);
    smoe_cpu_simd_fill_avx512(&tables[SMOE_CPU_ISA_AVX512]);
    smoe_cpu_simd_fill_avx512vnni(&tables[SMOE_CPU_ISA_AVX512_VNNI]);
#endif
    int cap = SMOE_CPU_ISA_COUNT - 1;
    const char *env = getenv("SMOE_CPU_ISA");
    if (env && *env) {
        const int e = smoe_cpu_isa_from_name(env);
        if (e > SMOE_CPU_ISA_AUTO) cap = e;
    }
    for (int i = SMOE_CPU_ISA_SCALAR; i <= cap; i++)
        if (available[i]) best = (smoe_cpu_isa)i;
    tables[SMOE_CPU_ISA_AUTO] = tables[best];
}

smoe_cpu_isa smoe_cpu_isa_best(void) {
    pthread_once(&once, init_tables);
    return best;
}

const smoe_cpu_kernels *smoe_cpu_kernels_get(smoe_cpu_isa isa) {
    pthread_once(&once, init_tables);
    if ((int)isa < 0 || isa >= SMOE_CPU_ISA_COUNT) return NULL;
    if (isa == SMOE_CPU_ISA_AUTO) return &tables[best];
    return available[isa] ? &tables[isa] : NULL;
}
