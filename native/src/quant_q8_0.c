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

/* to `levels` (127 for Q8_0; 63 for the trainer's 7-bit activations): d = amax / levels, q clamped to
 * [-levels - 1, levels] (only Inf/NaN input or a denormal d reach the clamp) */
static void quantize_q8_0_levels(const float *x, void *y, int64_t n, float levels) {
    block_q8_0 *b = y;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const float *xb = x + i * QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / levels;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = ckls_f32_to_f16(d);
        for (int j = 0; j < QK8_0; j++) {
            const float v = roundf(xb[j] * id); /* NaN (from Inf/NaN input) -> 0 instead of an undefined cast */
            b[i].qs[j] = (int8_t)(v == v ? (v > levels ? levels : v < -levels - 1.0f ? -levels - 1.0f : v) : 0.0f);
        }
    }
}

void ckls_quantize_q8_0_ref(const float *x, void *y, int64_t n) { quantize_q8_0_levels(x, y, n, 127.0f); }

/* Q8_0 blocks whose quants fit 7 bits (|q| <= 64): the fine-tuner's activations on AVX2, where the unsigned
 * operand of maddubs can then be the weight + 128 (ckls_gemm_q8_0x8_a7_avx2) and no sign ops are needed */
void ckls_quantize_q8_0_a7_ref(const float *x, void *y, int64_t n) { quantize_q8_0_levels(x, y, n, 63.0f); }
