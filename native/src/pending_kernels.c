/* PENDING — placeholders so the tree links while the block-format kernels are written; delete this file when
 * quant_q4_0.c, quant_q8_k.c, quant_q4_k.c, quant_q6_k.c and dot_{avx2,avx512,neon}.c exist. */
#include "quant.h"

void ckls_dequantize_q4_0(const void *x, float *y, int64_t n) { memset(y, 0, n * 4); }
void ckls_quantize_q4_0(const float *x, void *y, int64_t n) { memset(y, 0, n / 32 * 18); }
void ckls_vec_dot_q4_0_q8_0(int64_t n, float *s, const void *w, const void *x) { *s = 0; }
void ckls_dequantize_q8_K(const void *x, float *y, int64_t n) { memset(y, 0, n * 4); }
void ckls_quantize_q8_K(const float *x, void *y, int64_t n) { memset(y, 0, n / 256 * 292); }
void ckls_dequantize_q4_K(const void *x, float *y, int64_t n) { memset(y, 0, n * 4); }
void ckls_quantize_q4_K(const float *x, void *y, int64_t n) { memset(y, 0, n / 256 * 144); }
void ckls_quantize_q4_K_imatrix(const float *x, void *y, int64_t n, const float *im) { ckls_quantize_q4_K(x, y, n); }
void ckls_vec_dot_q4_K_q8_K(int64_t n, float *s, const void *w, const void *x) { *s = 0; }
void ckls_dequantize_q6_K(const void *x, float *y, int64_t n) { memset(y, 0, n * 4); }
void ckls_quantize_q6_K(const float *x, void *y, int64_t n) { memset(y, 0, n / 256 * 210); }
void ckls_quantize_q6_K_imatrix(const float *x, void *y, int64_t n, const float *im) { ckls_quantize_q6_K(x, y, n); }
void ckls_vec_dot_q6_K_q8_K(int64_t n, float *s, const void *w, const void *x) { *s = 0; }
const ckls_isa_kernels *ckls_kernels_avx2(void) { return NULL; }
const ckls_isa_kernels *ckls_kernels_avx512(void) { return NULL; }
const ckls_isa_kernels *ckls_kernels_neon(void) { return NULL; }
