/* quant_q4_k.c — Q4_K: super-blocks of 256 weights as 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit
 * min, scaled again by the f16 pair (d, dmin): w = d*sc*q - dmin*m, q in 0..15. Dotted with Q8_K.
 *
 * Quantizer: per sub-block a weighted least-squares fit of (scale, min) over a sweep of candidate step sizes
 * (the approach ggml's Q4_K uses), then the 16 fitted values are themselves quantized to 6 bits and every weight
 * is re-rounded against the scales the decoder will actually see. Weights are |x| + rms(x) (errors on large
 * weights cost more) or, with an importance matrix, imatrix[i] * sqrt(var + x^2). */
#include <math.h>

#include "quant.h"

void ckls_dequantize_q4_K(const void *x, float *y, int64_t n) {
    const block_q4_K *b = x;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        const float d = ckls_f16_to_f32(b[i].d), dmin = ckls_f16_to_f32(b[i].dmin);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            ckls_q4k_scale_min(j, b[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            const uint8_t *q = b[i].qs + 32 * (j / 2);
            const int shift = 4 * (j & 1);
            for (int l = 0; l < 32; l++) y[32 * j + l] = d1 * (float)((q[l] >> shift) & 0x0F) - m1;
        }
    }
}

/* Weighted fit of x ~ scale * L + min (min <= 0, L in 0..nmax) for one sub-block. Writes the levels to L and
 * returns scale; *neg_min receives -min (>= 0) as the format stores it. */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min) {
    float xmin = x[0], xmax = x[0], sw = 0, swx = 0;
    for (int i = 0; i < n; i++) {
        xmin = fminf(xmin, x[i]);
        xmax = fmaxf(xmax, x[i]);
        sw += w[i];
        swx += w[i] * x[i];
    }
    if (xmin > 0) xmin = 0;
    if (!(xmax > xmin)) { /* constant (or NaN) block: everything is the min */
        memset(L, 0, (size_t)n);
        *neg_min = isfinite(xmin) ? -xmin : 0.0f;
        return 0.0f;
    }
    uint8_t Lt[32];
    float best_scale = 0, best_min = xmin, best_err = INFINITY;
    /* Candidate step sizes slightly below to slightly above the range/nmax one; each is refined by the
     * closed-form least-squares (scale, min) for the levels it produces. */
    for (int step = -1; step <= 20; step++) {
        const float iscale = step < 0 ? nmax / (xmax - xmin) : (nmax - 1.0f + 0.1f * step) / (xmax - xmin);
        float sl = 0, sl2 = 0, sxl = 0;
        for (int i = 0; i < n; i++) {
            int l = ckls_nearest_int(iscale * (x[i] - xmin));
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Lt[i] = (uint8_t)l;
            sl += w[i] * l;
            sl2 += w[i] * l * l;
            sxl += w[i] * l * x[i];
        }
        float scale, mn;
        const float det = sw * sl2 - sl * sl;
        if (det > 0) {
            scale = (sw * sxl - swx * sl) / det;
            mn = (sl2 * swx - sl * sxl) / det;
            if (mn > 0) { /* the format's min is an offset down; refit the scale alone */
                mn = 0;
                scale = sl2 > 0 ? sxl / sl2 : 0;
            }
        } else {
            scale = 1.0f / iscale;
            mn = xmin;
        }
        float err = 0;
        for (int i = 0; i < n; i++) {
            const float diff = scale * Lt[i] + mn - x[i];
            err += w[i] * diff * diff;
        }
        if (err < best_err) {
            best_err = err;
            best_scale = scale;
            best_min = mn;
            memcpy(L, Lt, (size_t)n);
        }
    }
    *neg_min = -best_min;
    return best_scale;
}

static void quantize_block(const float *x, block_q4_K *y, const float *imatrix) {
    float w[QK_K], scales[8], mins[8];
    uint8_t L[QK_K];
    float sum_x2 = 0;
    for (int i = 0; i < QK_K; i++) sum_x2 += x[i] * x[i];
    const float var = sum_x2 / QK_K, rms = sqrtf(var);
    for (int i = 0; i < QK_K; i++) w[i] = imatrix ? imatrix[i] * sqrtf(var + x[i] * x[i]) : rms + fabsf(x[i]);

    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        scales[j] = fit_scale_min(32, 15, x + 32 * j, w + 32 * j, L + 32 * j, &mins[j]);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        int a = ckls_nearest_int(inv_scale * scales[j]), b = ckls_nearest_int(inv_min * mins[j]);
        ls[j] = (uint8_t)(a < 0 ? 0 : a > 63 ? 63 : a);
        lm[j] = (uint8_t)(b < 0 ? 0 : b > 63 ? 63 : b);
    }
    y->d = ckls_f32_to_f16(max_scale / 63.0f);
    y->dmin = ckls_f32_to_f16(max_min / 63.0f);

    /* The 6-bit codes are a rounding of the fitted values: per sub-block try the neighbouring codes too and keep
     * the pair whose re-rounded weights have the smallest weighted error against the scales as stored. */
    const float d = ckls_f16_to_f32(y->d), dmin = ckls_f16_to_f32(y->dmin);
    for (int j = 0; j < 8; j++) {
        const float *xj = x + 32 * j, *wj = w + 32 * j;
        float best_err = INFINITY;
        int best_s = ls[j], best_m = lm[j];
        static const int step[3] = {0, -1, 1}; /* the plain rounding first: it wins ties */
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                const int cs = ls[j] + step[a], cm = lm[j] + step[b];
                if (cs < 0 || cs > 63 || cm < 0 || cm > 63) continue;
                const float dj = d * cs, mj = dmin * cm;
                float err = 0;
                for (int l = 0; l < 32; l++) {
                    int q = dj != 0.0f ? ckls_nearest_int((xj[l] + mj) / dj) : 0;
                    q = q < 0 ? 0 : q > 15 ? 15 : q;
                    const float diff = dj * q - mj - xj[l];
                    err += wj[l] * diff * diff;
                }
                if (err < best_err) { best_err = err; best_s = cs; best_m = cm; }
            }
        ls[j] = (uint8_t)best_s;
        lm[j] = (uint8_t)best_m;
        const float dj = d * ls[j], mj = dmin * lm[j];
        for (int l = 0; l < 32; l++) {
            int q = dj != 0.0f ? ckls_nearest_int((xj[l] + mj) / dj) : 0;
            L[32 * j + l] = (uint8_t)(q < 0 ? 0 : q > 15 ? 15 : q);
        }
    }
    memset(y->scales, 0, sizeof y->scales);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            y->scales[j] |= ls[j];
            y->scales[j + 4] |= lm[j];
        } else {
            y->scales[j + 4] = (uint8_t)((ls[j] & 0x0F) | ((lm[j] & 0x0F) << 4));
            y->scales[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            y->scales[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) y->qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
}

void ckls_quantize_q4_K(const float *x, void *y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; i++) quantize_block(x + i * QK_K, (block_q4_K *)y + i, NULL);
}

/* imatrix: one importance value per column (n of them, e.g. mean squared activation). */
void ckls_quantize_q4_K_imatrix(const float *x, void *y, int64_t n, const float *imatrix) {
    for (int64_t i = 0; i < n / QK_K; i++)
        quantize_block(x + i * QK_K, (block_q4_K *)y + i, imatrix ? imatrix + i * QK_K : NULL);
}
