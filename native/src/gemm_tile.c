/* gemm_tile.c — scalar references of the f32 kernels under training's products (ckls_isa_kernels.gemm_tile and
 * .transpose): C[m x n] (=|+=) alpha * A.B for one tile, the same against rows of W (A.W^T, .gemm_nt), and the panel
 * transpose. gemm_tile_avx2.c and
 * gemm_tile_avx512.c hold the same kernels per ISA; matmul_backward.c and attention_backward.c drive them. */
#include "internal.h"

void ckls_gemm_tile_ref(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t a_si, int64_t a_sk,
                        const float *B, int64_t ldb, int accumulate, float *C, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float s = 0.0f;
            for (int64_t p = 0; p < k; p++) s += A[i * a_si + p * a_sk] * B[p * ldb + j];
            C[i * ldc + j] = accumulate ? C[i * ldc + j] + alpha * s : alpha * s;
        }
}

void ckls_gemm_nt_ref(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t lda, const float *W,
                      int64_t ldw, int accumulate, float *C, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float s = 0.0f;
            for (int64_t p = 0; p < k; p++) s += A[i * lda + p] * W[j * ldw + p];
            C[i * ldc + j] = accumulate ? C[i * ldc + j] + alpha * s : alpha * s;
        }
}

void ckls_transpose_ref(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst, int64_t ldd) {
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) dst[j * ldd + i] = src[i * lds + j];
}
