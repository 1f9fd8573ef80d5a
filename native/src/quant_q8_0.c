/* quant_q8_0.c — Q8_0: blocks of 32 int8 with one f16 scale; w = q * d. Also the activation format that
 * Q8_0 and Q4_0 weights are dotted with. Matches ggml's quantize_row_q8_0_ref. */
#include <math.h>

#include "quant.h"

void ckls_dequantize_q8_0(const void *x, float *y, int64_t n) {
    const block_q8_0 *b = x;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const float d = ckls_f16_to_f32(b[i].d);
        for (int j = 0; j < QK8_0; j++) y[i * QK8_0 + j] = b[i].qs[j] * d;
    }
}

/* max |x| of a block; NaN ignored (fmaxf), as ggml does */
static float block_amax(const float *xb) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(xb[j]));
    return amax;
}

void ckls_quantize_q8_0_ref(const float *x, void *y, int64_t n) {
    block_q8_0 *b = y;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const float *xb = x + i * QK8_0;
        const float amax = block_amax(xb);
        const float d = amax / 127.0f;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = ckls_f32_to_f16(d);
        for (int j = 0; j < QK8_0; j++) {
            const float v = roundf(xb[j] * id); /* NaN (from Inf/NaN input) -> 0 instead of an undefined cast */
            b[i].qs[j] = (int8_t)(v == v ? (v > 127.0f ? 127.0f : v < -128.0f ? -128.0f : v) : 0.0f);
        }
    }
}

/* Q8_0 blocks whose quants fit 7 bits (|q| <= 64), the fine-tuner's activations where its Q8_0 products take them
 * (gemm_x8_a7: AVX2 without VNNI, whose maddubs can then take the weight + 128 as its unsigned operand). Only the
 * trainer reads them, so the rounding is what one SIMD conversion does (to nearest, ties to even, after clamping
 * to [-64, 63]) rather than roundf's, and the inverse scale is one division: id = 63 / amax. NaN -> 0. Where off
 * is set, also the blocks' terms for gemm_x8_a7 (ckls_q8_0_a7_terms into off and d, n / 32 each). */
void ckls_quantize_q8_0_a7_ref(const float *x, void *y, int64_t n, int32_t *off, float *d) {
    block_q8_0 *b = y;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const float *xb = x + i * QK8_0;
        const float amax = block_amax(xb);
        const float id = amax ? 63.0f / amax : 0.0f;
        b[i].d = ckls_f32_to_f16(amax / 63.0f);
        for (int j = 0; j < QK8_0; j++) {
            float v = xb[j] * id; /* Inf where amax is denormal, NaN from 0 * Inf or NaN input */
            v = v != v ? 0.0f : v > 63.0f ? 63.0f : v < -64.0f ? -64.0f : v;
            b[i].qs[j] = (int8_t)nearbyintf(v);
        }
    }
    if (off) ckls_q8_0_a7_terms(y, 0, n, 1, off, d);
}
