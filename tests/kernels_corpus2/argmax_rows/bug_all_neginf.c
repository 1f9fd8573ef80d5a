// Planted bug (all -inf row): starts from best = -inf and "not found" = -1, so a row of only -inf answers -1
// instead of 0.
#include <math.h>
#include <stdint.h>

void argmax_rows(int64_t rows, int64_t cols, const double *x, int64_t *out) {
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * cols;
        double best = -INFINITY;
        int64_t bi = -1;
        for (int64_t c = 0; c < cols; c++) {
            double v = row[c];
            if (isnan(v)) { bi = c; break; }
            if (v > best) best = v, bi = c;
        }
        out[r] = bi;
    }
}
