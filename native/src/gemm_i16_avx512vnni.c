/* gemm_i16_avx512vnni.c — the int16 product kernel (gemm_i16_body.h) with AVX512-VNNI's dpwssd on 256-bit registers
 * (AVX512VL): gemm_i16_avxvnni.c's arithmetic for the CPUs that have the EVEX form but not the VEX one and no bf16
 * products (Ice Lake, Tiger Lake, Cascade Lake), bit for bit the reference. */
#include <string.h>

#include "backward.h"

#if defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__FMA__)
#include <immintrin.h>

#define I16_NAME ckls_gemm_i16x8_avx512vnni
#define I16_DOT(s, x, w) _mm256_dpwssd_epi32(s, x, w)
#define I16_UNROLL 16
#include "gemm_i16_body.h"

#endif
