/* quant_q6_k.c — Q6_K: super-blocks of 256 weights as 16 groups of 16, each with a signed 8-bit scale under one
 * f16 d: w = d*sc*(q - 32), q in 0..63 stored as 4 low bits (ql) + 2 high bits (qh). Dotted with Q8_K.
 *
 * Quantizer: per group, a sweep of candidate step sizes around max/32, each refined to the weighted least-squares
 * scale for its levels, keeping the one with the smallest weighted error (weights x^2 like ggml's rmse search,
 * or imatrix[i] * sqrt(var + x^2)); the 16 group scales are then quantized to int8 and every weight re-rounded
 * against the stored scales. */
#include <math.h>

#include "quant.h"

void ckls_dequantize_q6_K(const void *x, float *y, int64_t n) {
    const block_q6_K *b = x;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        const float d = ckls_f16_to_f32(b[i].d);
        for (int j = 0; j < QK_K; j++) y[j] = d * (float)b[i].scales[j / 16] * (float)(ckls_q6k_level(&b[i], j) - 32);
    }
}

/* Best scale for x ~ scale * L, L in -nmax..nmax-1, weighted by w. Writes L and returns the scale. */
static float fit_scale(int n, int nmax, const float *x, const float *w, int8_t *L) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    if (!(amax > 1e-30f) || !isfinite(amax)) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    int8_t Lt[16];
    float best_scale = 0, best = -1; /* maximize sxl^2 / sl2 == minimize the weighted error at the LS scale */
    for (int step = -9; step <= 9; step++) {
        const float iscale = -(nmax + 0.1f * step) / max;
        float sxl = 0, sl2 = 0;
        for (int i = 0; i < n; i++) {
            int l = ckls_nearest_int(iscale * x[i]);
            l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
            Lt[i] = (int8_t)l;
            sxl += w[i] * x[i] * l;
            sl2 += w[i] * l * l;
        }
        if (sl2 > 0 && sxl * sxl > best * sl2) {
            best = sxl * sxl / sl2;
            best_scale = sxl / sl2;
            memcpy(L, Lt, (size_t)n);
        }
    }
    return best_scale;
}

static void quantize_block(const float *x, block_q6_K *y, const float *imatrix) {
    float w[QK_K], scales[16];
    int8_t L[QK_K];
    float sum_x2 = 0;
    for (int i = 0; i < QK_K; i++) sum_x2 += x[i] * x[i];
    const float var = sum_x2 / QK_K;
    for (int i = 0; i < QK_K; i++) w[i] = imatrix ? imatrix[i] * sqrtf(var + x[i] * x[i]) : x[i] * x[i];

    float max_scale = 0, amax = 0;
    for (int g = 0; g < 16; g++) {
        scales[g] = fit_scale(16, 32, x + 16 * g, w + 16 * g, L + 16 * g);
        if (fabsf(scales[g]) > amax) { amax = fabsf(scales[g]); max_scale = scales[g]; }
    }
    memset(y, 0, sizeof *y);
    if (amax == 0.0f) {
        memset(L, 0, sizeof L); /* d = 0; levels at 32 (q - 32 = 0) */
    } else {
        const float iscale = -128.0f / max_scale;
        y->d = ckls_f32_to_f16(1.0f / iscale);
        for (int g = 0; g < 16; g++) {
            const int s = ckls_nearest_int(iscale * scales[g]);
            y->scales[g] = (int8_t)(s > 127 ? 127 : s < -128 ? -128 : s);
        }
        /* The int8 codes round the fitted scales: per group also try the neighbouring codes and keep the one
         * whose re-rounded weights have the smallest weighted error against d as stored. */
        const float d = ckls_f16_to_f32(y->d);
        static const int step[3] = {0, -1, 1}; /* plain rounding first: it wins ties */
        for (int g = 0; g < 16; g++) {
            const float *xg = x + 16 * g, *wg = w + 16 * g;
            int best = y->scales[g];
            float best_err = INFINITY;
            for (int k = 0; k < 3; k++) {
                const int c = y->scales[g] + step[k];
                if (c < -128 || c > 127) continue;
                const float dg = d * c;
                float err = 0;
                for (int l = 0; l < 16; l++) {
                    int q = dg != 0.0f ? ckls_nearest_int(xg[l] / dg) : 0;
                    q = q < -32 ? -32 : q > 31 ? 31 : q;
                    const float diff = dg * q - xg[l];
                    err += wg[l] * diff * diff;
                }
                if (err < best_err) { best_err = err; best = c; }
            }
            y->scales[g] = (int8_t)best;
            const float dg = d * best;
            for (int l = 0; l < 16; l++) {
                int q = dg != 0.0f ? ckls_nearest_int(xg[l] / dg) : 0;
                L[16 * g + l] = (int8_t)(q < -32 ? -32 : q > 31 ? 31 : q);
            }
        }
    }
    for (int half = 0; half < 2; half++) {
        const int8_t *Lh = L + 128 * half;
        uint8_t *ql = y->ql + 64 * half, *qh = y->qh + 32 * half;
        for (int l = 0; l < 32; l++) {
            const int q0 = Lh[l] + 32, q1 = Lh[l + 32] + 32, q2 = Lh[l + 64] + 32, q3 = Lh[l + 96] + 32;
            ql[l] = (uint8_t)((q0 & 0x0F) | ((q2 & 0x0F) << 4));
            ql[l + 32] = (uint8_t)((q1 & 0x0F) | ((q3 & 0x0F) << 4));
            qh[l] = (uint8_t)((q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6));
        }
    }
}

void ckls_quantize_q6_K(const float *x, void *y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; i++) quantize_block(x + i * QK_K, (block_q6_K *)y + i, NULL);
}

void ckls_quantize_q6_K_imatrix(const float *x, void *y, int64_t n, const float *imatrix) {
    for (int64_t i = 0; i < n / QK_K; i++)
        quantize_block(x + i * QK_K, (block_q6_K *)y + i, imatrix ? imatrix + i * QK_K : NULL);
}
