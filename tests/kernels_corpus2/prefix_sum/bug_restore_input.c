// Planted bug (input mutated then restored): scans x in place to save a buffer, copies it out, then undoes
// the scan. x is const: a read-only or shared input breaks, and so does a caller reading x from another thread.
#include <stdint.h>
#include <string.h>

void prefix_sum(int64_t n, const int64_t *x, int64_t *out) {
    int64_t *xx = (int64_t *)x;
    for (int64_t i = 1; i < n; i++) xx[i] += xx[i - 1];
    if (n) memcpy(out, xx, (size_t)n * sizeof *out);
    for (int64_t i = n - 1; i > 0; i--) xx[i] -= xx[i - 1];
}
