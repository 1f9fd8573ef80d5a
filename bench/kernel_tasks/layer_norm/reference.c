// Two passes in double (mean, then centred variance), so huge rows do not overflow and the variance does
// not cancel; the output pass reads x[j] before writing out[j], so out may be x.
#include <math.h>
#include <stdint.h>

void layer_norm(int64_t rows, int64_t cols, const float *x, const float *gamma, const float *beta, float *out) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *o = out + r * cols;
        double mean = 0.0;
        for (int64_t j = 0; j < cols; j++) mean += xr[j];
        mean /= (double)cols;
        double var = 0.0;
        for (int64_t j = 0; j < cols; j++) {
            const double d = xr[j] - mean;
            var += d * d;
        }
        var /= (double)cols;
        const double inv = 1.0 / sqrt(var + 1e-5);
        for (int64_t j = 0; j < cols; j++) o[j] = (float)(((double)xr[j] - mean) * inv * gamma[j] + beta[j]);
    }
}
