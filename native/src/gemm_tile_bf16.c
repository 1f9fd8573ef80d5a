/* gemm_tile_bf16.c — scalar references of the bf16 kernels under the integer-mode training products
 * (ckls_isa_kernels.gemm_tile_bf16, .bf16_rows, .bf16_pairs): f32 -> bf16 conversions into the pair layouts the
 * tile reads, and C[m x n] (=|+=) alpha * A.B over bf16 pairs with f32 sums. gemm_tile_bf16_avx512bf16.c holds
 * them with AVX512-BF16 (vcvtne2ps2bf16, vdpbf16ps); the references follow those instructions' arithmetic:
 * round to nearest even, denormal inputs read as zero, each pair's odd product added before its even one. */
#include <string.h>

#include "internal.h"

/* the instructions' conversion: ckls_f32_to_bf16 with denormals (of which bf16 keeps as many) read as zero */
static uint16_t round_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x7F800000u) == 0 ? (uint16_t)((u >> 16) & 0x8000u) : ckls_f32_to_bf16(f);
}

/* vdpbf16ps's reading of an operand: denormals as zero */
static float read_bf16(uint32_t h) { return (h & 0x7F80u) == 0 ? 0.0f : ckls_bf16_to_f32((ckls_bf16)h); }

static uint32_t pair(float lo, float hi) { return round_bf16(lo) | (uint32_t)round_bf16(hi) << 16; }

void ckls_bf16_rows_ref(const float *x, int64_t rows, int64_t cols, int64_t ldx, uint32_t *y, int64_t ldy) {
    for (int64_t i = 0; i < rows; i++)
        for (int64_t p = 0; 2 * p < cols; p++)
            y[i * ldy + p] = pair(x[i * ldx + 2 * p], 2 * p + 1 < cols ? x[i * ldx + 2 * p + 1] : 0.0f);
}

void ckls_bf16_pairs_ref(const float *x, int64_t rows, int64_t cols, int64_t ldx, uint32_t *y, int64_t ldy) {
    for (int64_t p = 0; 2 * p < rows; p++)
        for (int64_t j = 0; j < cols; j++)
            y[p * ldy + j] = pair(x[2 * p * ldx + j], 2 * p + 1 < rows ? x[(2 * p + 1) * ldx + j] : 0.0f);
}

void ckls_gemm_tile_bf16_ref(int64_t m, int64_t n, int64_t kp, float alpha, const uint32_t *A, int64_t a_si,
                             int64_t a_sp, const uint32_t *B, int64_t ldb, int accumulate, float *C, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float s = 0.0f;
            for (int64_t p = 0; p < kp; p++) {
                const uint32_t a = A[i * a_si + p * a_sp], b = B[p * ldb + j];
                /* bf16 x bf16 is exact in f32: only the sums round */
                s += read_bf16(a >> 16) * read_bf16(b >> 16);
                s += read_bf16(a & 0xFFFFu) * read_bf16(b & 0xFFFFu);
            }
            C[i * ldc + j] = accumulate ? C[i * ldc + j] + alpha * s : alpha * s;
        }
}
