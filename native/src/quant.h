/* quant.h — scalar reference kernels of every block format: the ground truth SIMD files are tested against.
 * Dequantize: x -> y (n floats). Quantize: x (n floats) -> y blocks. Dot: weight row · quantized activation. */
#ifndef CKLS_QUANT_H
#define CKLS_QUANT_H

#include "internal.h"

/* Round to nearest, ties to even, via the 1.5*2^23 trick exactly as ggml does it (valid for |x| < 2^22; NaN
 * gives 0). Q8_K and the K-quant quantizers depend on these exact ties. */
static inline int ckls_nearest_int(float x) {
    float v = x + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* float rows (quant_float.c) */
void ckls_dequantize_f32(const void *x, float *y, int64_t n);
void ckls_quantize_f32(const float *x, void *y, int64_t n);
void ckls_dequantize_f16(const void *x, float *y, int64_t n);
void ckls_quantize_f16(const float *x, void *y, int64_t n);
void ckls_dequantize_bf16(const void *x, float *y, int64_t n);
void ckls_quantize_bf16(const float *x, void *y, int64_t n);
void ckls_vec_dot_f32_f32(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_f16_f32(int64_t n, float *s, const void *w, const void *x);
void ckls_vec_dot_bf16_f32(int64_t n, float *s, const void *w, const void *x);

/* Q8_0 (quant_q8_0.c) */
void ckls_dequantize_q8_0(const void *x, float *y, int64_t n);
void ckls_quantize_q8_0(const float *x, void *y, int64_t n);
void ckls_vec_dot_q8_0_q8_0(int64_t n, float *s, const void *w, const void *x);

/* Q4_0 (quant_q4_0.c) */
void ckls_dequantize_q4_0(const void *x, float *y, int64_t n);
void ckls_quantize_q4_0(const float *x, void *y, int64_t n);
void ckls_vec_dot_q4_0_q8_0(int64_t n, float *s, const void *w, const void *x);

/* Q8_K (quant_q8_k.c): activations only */
void ckls_dequantize_q8_K(const void *x, float *y, int64_t n);
void ckls_quantize_q8_K(const float *x, void *y, int64_t n);

/* Q4_K (quant_q4_k.c) */
void ckls_dequantize_q4_K(const void *x, float *y, int64_t n);
void ckls_quantize_q4_K(const float *x, void *y, int64_t n);
void ckls_quantize_q4_K_imatrix(const float *x, void *y, int64_t n, const float *imatrix);
void ckls_vec_dot_q4_K_q8_K(int64_t n, float *s, const void *w, const void *x);

/* Q4_K's 12 scale bytes -> scale and min of sub-block j: j < 4 in the low 6 bits of bytes j / j+4; j >= 4 split
 * between the low/high nibble of byte j+4 and the top 2 bits of bytes j-4 / j. */
static inline void ckls_q4k_scale_min(int j, const uint8_t *s, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q6_K (quant_q6_k.c) */
void ckls_dequantize_q6_K(const void *x, float *y, int64_t n);
void ckls_quantize_q6_K(const float *x, void *y, int64_t n);
void ckls_quantize_q6_K_imatrix(const float *x, void *y, int64_t n, const float *imatrix);
void ckls_vec_dot_q6_K_q8_K(int64_t n, float *s, const void *w, const void *x);

/* Interleaved 8-row layouts (repack.c; block_q4_0x8 / block_q4_Kx8 in internal.h) */
/* Bytes of the repacked form of n_out rows of n_in: every full group of 8 rows (tail rows stay in the original
 * layout); 0 for types without one or n_out < 8, -1 for a row length that is not a multiple of the block. */
int64_t ckls_packed_bytes(int type, int64_t n_out, int64_t n_in);
/* Repacks groups g0..g1-1 of 8 rows (w: n_in per row, original layout) into dst (the whole packed matrix). */
void ckls_repack_groups(int type, const void *w, int64_t n_in, int64_t g0, int64_t g1, void *dst);
/* aux for Q4_0 groups: the int16 sum of each Q8_0 activation block (n / 32 per row), n_tok rows xq_stride apart */
void ckls_q8_0_block_sums(const void *xq, int64_t xq_stride, int64_t n, int64_t n_tok, int16_t *out);
/* Scalar references of the gemm_x8 kernels: the AVX2 ones must equal them bit for bit. */
void ckls_gemm_q4_0x8_ref(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                          const int16_t *aux, int nt);
void ckls_gemm_q4_Kx8_ref(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                          const int16_t *aux, int nt);
void ckls_gemm_q8_0x8_ref(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                          const int16_t *aux, int nt);
/* their AVX2 versions (repack_avx2.c; absent from builds without AVX2) */
void ckls_gemm_q4_0x8_avx2(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                           const int16_t *aux, int nt);
void ckls_gemm_q4_Kx8_avx2(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                           const int16_t *aux, int nt);
void ckls_gemm_q8_0x8_avx2(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                           const int16_t *aux, int nt);

#endif
