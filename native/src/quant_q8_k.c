/* quant_q8_k.c — Q8_K: the activation format K-quant weights are dotted with. 256 int8 per block, an f32 scale,
 * and the sum of every 16 quants (bsums) so dots can fold the weights' offsets in once per group. The
 * quantizer reproduces ggml's quantize_row_q8_K_ref exactly (scale -127/max, round half to even), which is
 * what keeps our logits in step with llama.cpp's. */
#include <math.h>

#include "quant.h"

void ckls_dequantize_q8_K(const void *x, float *y, int64_t n) {
    const block_q8_K *b = x;
    for (int64_t i = 0; i < n / QK_K; i++)
        for (int j = 0; j < QK_K; j++) y[i * QK_K + j] = b[i].d * b[i].qs[j];
}

void ckls_quantize_q8_K_ref(const float *x, void *y, int64_t n) {
    block_q8_K *b = y;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *xb = x + i * QK_K;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(xb[j]) > amax) { amax = fabsf(xb[j]); max = xb[j]; }
        if (amax == 0.0f) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; j++) {
            const int v = ckls_nearest_int(iscale * xb[j]);
            b[i].qs[j] = (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
        }
        for (int g = 0; g < QK_K / 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += b[i].qs[g * 16 + j];
            b[i].bsums[g] = (int16_t)sum;
        }
        b[i].d = 1.0f / iscale;
    }
}
