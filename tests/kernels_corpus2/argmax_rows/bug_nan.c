// Planted bug (NaN handling): a NaN after the first element is skipped (every comparison with it is false).
#include <stdint.h>

void argmax_rows(int64_t rows, int64_t cols, const double *x, int64_t *out) {
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * cols;
        double best = row[0];
        int64_t bi = 0;
        for (int64_t c = 1; c < cols; c++)
            if (row[c] > best) best = row[c], bi = c;
        out[r] = bi;
    }
}
