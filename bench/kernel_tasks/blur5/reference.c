// Clamped five-point blur; the neighbour sum is taken in double so five values near FLT_MAX/5 cannot
// overflow before the division.
#include <stdint.h>

void blur5(int64_t h, int64_t w, const float *img, int64_t img_s0, int64_t img_s1, float *out) {
    for (int64_t i = 0; i < h; i++) {
        const int64_t iu = i > 0 ? i - 1 : 0, id = i + 1 < h ? i + 1 : h - 1;
        for (int64_t j = 0; j < w; j++) {
            const int64_t jl = j > 0 ? j - 1 : 0, jr = j + 1 < w ? j + 1 : w - 1;
            const double s = (double)img[i * img_s0 + j * img_s1] + img[iu * img_s0 + j * img_s1] +
                             img[id * img_s0 + j * img_s1] + img[i * img_s0 + jl * img_s1] +
                             img[i * img_s0 + jr * img_s1];
            out[i * w + j] = (float)(s / 5.0);
        }
    }
}
