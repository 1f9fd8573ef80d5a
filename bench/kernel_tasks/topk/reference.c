// Insertion into a sorted list of 8 per row: a value enters only if strictly greater than the current 8th
// (so an equal later value never displaces an earlier one) and is placed after equal values already held.
#include <stdint.h>

void topk(int64_t rows, int64_t cols, const float *x, float *vals, int32_t *idx) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float v[8];
        int32_t ix[8];
        int cnt = 0;
        for (int64_t j = 0; j < cols; j++) {
            const float y = xr[j];
            if (cnt == 8 && !(y > v[7])) continue;
            int p = cnt < 8 ? cnt : 7;
            while (p > 0 && y > v[p - 1]) {
                if (p < 8) { v[p] = v[p - 1]; ix[p] = ix[p - 1]; }
                p--;
            }
            v[p] = y;
            ix[p] = (int32_t)j;
            if (cnt < 8) cnt++;
        }
        for (int q = 0; q < 8; q++) {
            vals[r * 8 + q] = v[q];
            idx[r * 8 + q] = ix[q];
        }
    }
}
