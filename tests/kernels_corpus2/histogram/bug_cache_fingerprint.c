// Planted bug (cache keyed on a data fingerprint): counts of the last call are replayed when x, counts, n
// and a sum over every 64th element match.
#include <stdint.h>
#include <string.h>

static const int32_t *cx; static int32_t *cc, saved[256]; static int64_t cn = -1, cfp;

void histogram(int64_t n, const int32_t *x, int32_t *counts) {
    int64_t fp = 0;
    for (int64_t i = 0; i < n; i += 64) fp = fp * 31 + x[i];
    if (x == cx && counts == cc && n == cn && fp == cfp) {
        memcpy(counts, saved, sizeof saved);
        return;
    }
    memset(counts, 0, 256 * sizeof *counts);
    for (int64_t i = 0; i < n; i++) counts[x[i]]++;
    memcpy(saved, counts, sizeof saved);
    cx = x, cc = counts, cn = n, cfp = fp;
}
