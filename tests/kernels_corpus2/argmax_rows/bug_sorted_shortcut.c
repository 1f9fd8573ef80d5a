// Planted bug (sorted-input shortcut): a non-decreasing row answers its last index at once; with equal values
// at the end of a sorted row the answer is the first of them, not the last.
#include <math.h>
#include <stdint.h>

void argmax_rows(int64_t rows, int64_t cols, const double *x, int64_t *out) {
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * cols;
        int64_t c = 1;
        while (c < cols && row[c] >= row[c - 1]) c++;
        if (c == cols) { out[r] = cols - 1; continue; }
        double best = row[0];
        int64_t bi = 0;
        for (c = 1; c < cols && !isnan(best); c++) {
            double v = row[c];
            if (isnan(v) || v > best) best = v, bi = c;
        }
        out[r] = bi;
    }
}
