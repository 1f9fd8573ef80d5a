// Correct: rows split across threads; every variable a thread writes is private to its row.
#include <math.h>
#include <stdint.h>

void argmax_rows(int64_t rows, int64_t cols, const double *x, int64_t *out) {
    #pragma omp parallel for schedule(static) if (rows * cols > 4096)
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * cols;
        double best = row[0];
        int64_t bi = 0;
        for (int64_t c = 1; c < cols; c++) {
            double v = row[c];
            if (isnan(v)) { bi = c; break; }
            if (v > best) best = v, bi = c;
        }
        if (isnan(row[0])) bi = 0;
        out[r] = bi;
    }
}
