/*
 * simd-avx512.c - the 512-bit kernel variants: compiled by meson with -mavx512f -mavx512bw -mavx512vl -mavx512dq
 * -mfma -mf16c (fill function smoe_cpu_simd_fill_avx512), and again with -mavx512vnni added
 * (smoe_cpu_simd_fill_avx512vnni). The kernels themselves are in simd-x86.inc.
 */
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__) || !defined(__AVX512DQ__) ||            \
    !defined(__FMA__) || !defined(__F16C__)
#error "simd-avx512.c needs -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c"
#endif

#if defined(__AVX512VNNI__)
#define SIMD_VARIANT_FILL smoe_cpu_simd_fill_avx512vnni
#else
#define SIMD_VARIANT_FILL smoe_cpu_simd_fill_avx512
#endif

#include "simd-x86.inc"
