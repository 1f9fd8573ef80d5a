// Floor modulo of each index, then a strided row copy (bit-exact: values are moved, not computed).
#include <stdint.h>

void gather_rows(int64_t vocab, int64_t dim, int64_t n, const float *table, int64_t table_s0, int64_t table_s1,
                 const int64_t *idx, float *out) {
    for (int64_t i = 0; i < n; i++) {
        int64_t r = idx[i] % vocab;
        if (r < 0) r += vocab;
        const float *src = table + r * table_s0;
        float *dst = out + i * dim;
        for (int64_t d = 0; d < dim; d++) dst[d] = src[d * table_s1];
    }
}
