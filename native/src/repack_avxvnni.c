/* repack_avxvnni.c — the 8-row VNNI kernels (repack_vnni256.h) on AVX-VNNI: vpdpbusd in its VEX encoding, on the
 * cores that have it without AVX-512 (Intel from Alder Lake: most laptops and desktops sold since 2022) and on the
 * AVX-512 ones beside AVX512VL's. Bit for bit the scalar references, as the AVX-512 VNNI ones are. With 16 vector
 * registers instead of 32 some kernels keep fewer sums in registers; there is no 16-row form (it needs 512-bit
 * registers). */
#include "quant.h"

#if defined(__AVX2__) && defined(__AVXVNNI__)
#include <immintrin.h>

#define DPBUSD _mm256_dpbusd_avx_epi32
#define VNNI_NAME(kernel) kernel##_avxvnni
#include "repack_vnni256.h"

#endif
