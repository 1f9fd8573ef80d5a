// Correct: one pass, counts cleared first.
#include <stdint.h>
#include <string.h>

void histogram(int64_t n, const int32_t *x, int32_t *counts) {
    memset(counts, 0, 256 * sizeof *counts);
    for (int64_t i = 0; i < n; i++) counts[x[i]]++;
}
