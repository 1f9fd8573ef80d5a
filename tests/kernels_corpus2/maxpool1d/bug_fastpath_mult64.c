// Planted bug (wrong fast path for multiples of 64): a blocked path for n % 64 == 0 uses windows one element
// short (j < i + k - 1) for all but the last block.
#include <stdint.h>

void maxpool1d(int64_t n, const double *x, int64_t k, double *out) {
    int fast = n > 0 && n % 64 == 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t w = (fast && i < n - 64 && k > 1) ? k - 1 : k;
        int64_t end = i + w < n ? i + w : n;
        double m = x[i];
        for (int64_t j = i + 1; j < end; j++)
            if (x[j] > m || x[j] != x[j]) m = m != m ? m : x[j];
        out[i] = m;
    }
}
