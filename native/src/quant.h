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

/* Q6_K (quant_q6_k.c) */
void ckls_dequantize_q6_K(const void *x, float *y, int64_t n);
void ckls_quantize_q6_K(const float *x, void *y, int64_t n);
void ckls_quantize_q6_K_imatrix(const float *x, void *y, int64_t n, const float *imatrix);
void ckls_vec_dot_q6_K_q8_K(int64_t n, float *s, const void *w, const void *x);

#endif
