// Pitfall: C's % keeps the sign of a negative index, so idx < 0 reads before the table.
#include <stdint.h>

void gather_rows(int64_t vocab, int64_t dim, int64_t n, const float *table, int64_t table_s0, int64_t table_s1,
                 const int64_t *idx, float *out) {
    for (int64_t i = 0; i < n; i++) {
        const float *src = table + (idx[i] % vocab) * table_s0;
        for (int64_t d = 0; d < dim; d++) out[i * dim + d] = src[d * table_s1];
    }
}
