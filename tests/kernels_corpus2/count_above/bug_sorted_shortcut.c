// Planted bug (sorted-input shortcut): a sorted x is answered by binary search, but the search finds the
// first element >= t (lower bound) where the count needs the first element > t (upper bound).
#include <stdint.h>

void count_above(int64_t n, const double *x, double t, int64_t *out) {
    int64_t i = 1;
    while (i < n && x[i - 1] <= x[i]) i++;
    if (n > 1 && i == n) {
        int64_t lo = 0, hi = n;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (x[mid] < t) lo = mid + 1; else hi = mid;
        }
        *out = n - lo;
        return;
    }
    int64_t k = 0;
    for (i = 0; i < n; i++) k += x[i] > t;
    *out = k;
}
