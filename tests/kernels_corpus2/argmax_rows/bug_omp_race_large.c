// Planted bug (OpenMP race above a size threshold): the running best and its index are declared outside the
// parallel loop, so they are shared between threads; the loop only goes parallel above 100000 elements.
#include <math.h>
#include <stdint.h>

void argmax_rows(int64_t rows, int64_t cols, const double *x, int64_t *out) {
    double best;
    int64_t bi, c;
    #pragma omp parallel for schedule(static) if (rows * cols > 100000)
    for (int64_t r = 0; r < rows; r++) {
        const double *row = x + r * cols;
        best = row[0];
        bi = 0;
        for (c = 1; c < cols && !isnan(best); c++)
            if (isnan(row[c]) || row[c] > best) best = row[c], bi = c;
        out[r] = bi;
    }
}
