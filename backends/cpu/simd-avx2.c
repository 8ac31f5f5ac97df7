/*
 * simd-avx2.c - the 256-bit kernel variants: compiled by meson with -mavx2 -mfma -mf16c (fill function
 * smoe_cpu_simd_fill_avx2), and again with -mavxvnni added (smoe_cpu_simd_fill_avx2vnni). The kernels themselves
 * are in simd-x86.inc.
 */
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "simd-avx2.c needs -mavx2 -mfma -mf16c"
#endif
#if defined(__AVX512F__)
#error "simd-avx2.c is the 256-bit variant: compile it without -mavx512*"
#endif

#if defined(__AVXVNNI__)
#define SIMD_VARIANT_FILL smoe_cpu_simd_fill_avx2vnni
#else
#define SIMD_VARIANT_FILL smoe_cpu_simd_fill_avx2
#endif

#include "simd-x86.inc"
