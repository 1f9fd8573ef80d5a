// Max (NaN-propagating, as NumPy's), sum of exp in double, then x - max - log(sum). Each x[j] is read
// before out[j] is written in the last pass, so out may be x.
#include <math.h>
#include <stdint.h>

void log_softmax(int64_t rows, int64_t cols, const float *x, float *out) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *o = out + r * cols;
        float m = xr[0];
        for (int64_t j = 1; j < cols; j++) m = (xr[j] > m || m != m) ? xr[j] : m;
        double s = 0.0;
        for (int64_t j = 0; j < cols; j++) s += exp((double)xr[j] - (double)m);
        const double lse = log(s);
        for (int64_t j = 0; j < cols; j++) o[j] = (float)(((double)xr[j] - (double)m) - lse);
    }
}
