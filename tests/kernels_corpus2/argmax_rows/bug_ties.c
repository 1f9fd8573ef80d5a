// Planted bug (ties): >= instead of > keeps the LAST of equal maxima; np.argmax keeps the first.
#include <math.h>
#include <stdint.h>

void argmax_rows(int64_t rows, int64_t cols, const double *x, int64_t *out) {
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * cols;
        double best = row[0];
        int64_t bi = 0;
        for (int64_t c = 1; c < cols && !isnan(best); c++) {
            double v = row[c];
            if (isnan(v) || v >= best) best = v, bi = c;
        }
        out[r] = bi;
    }
}
