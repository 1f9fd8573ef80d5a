/* quant_float.c — F32 / F16 / BF16 rows: conversion and scalar dots against f32 activations. */
#include "quant.h"

void ckls_dequantize_f32(const void *x, float *y, int64_t n) { memcpy(y, x, (size_t)n * sizeof(float)); }
void ckls_quantize_f32(const float *x, void *y, int64_t n) { memcpy(y, x, (size_t)n * sizeof(float)); }

void ckls_dequantize_f16(const void *x, float *y, int64_t n) {
    const ckls_f16 *h = x;
    for (int64_t i = 0; i < n; i++) y[i] = ckls_f16_to_f32(h[i]);
}
void ckls_quantize_f16(const float *x, void *y, int64_t n) {
    ckls_f16 *h = y;
    for (int64_t i = 0; i < n; i++) h[i] = ckls_f32_to_f16(x[i]);
}
void ckls_dequantize_bf16(const void *x, float *y, int64_t n) {
    const ckls_bf16 *h = x;
    for (int64_t i = 0; i < n; i++) y[i] = ckls_bf16_to_f32(h[i]);
}
void ckls_quantize_bf16(const float *x, void *y, int64_t n) {
    ckls_bf16 *h = y;
    for (int64_t i = 0; i < n; i++) h[i] = ckls_f32_to_bf16(x[i]);
}
