/* gemm_i16_avxvnni.c — the int16 product kernel (gemm_i16_body.h) with AVX-VNNI's dpwssd: madd and add in one
 * operation, so half the vector operations of the AVX2 kernel's; the sums are the same exact int32 (no overflow:
 * gemm_i16.c), bit for bit the reference. Intel from Alder Lake, AMD from Zen 5, where no bf16 products exist for
 * the vocabulary dX (AVX512-BF16). */
#include <string.h>

#include "backward.h"

#if defined(__AVXVNNI__) && defined(__FMA__)
#include <immintrin.h>

#define I16_NAME ckls_gemm_i16x8_avxvnni
#define I16_DOT(s, x, w) _mm256_dpwssd_avx_epi32(s, x, w)
#define I16_UNROLL 16
#include "gemm_i16_body.h"

#endif
