/* ops_forward.c — the element-wise and row ops of the transformer forward pass. Each has (or will have) its
 * backward beside it in ops_backward.c, checked against PyTorch autograd. */
#include <math.h>

#include "internal.h"
#include "rope.h"
#include "row_sums.h"

int ckls_rmsnorm(const float *x, const float *w, float *y, int64_t n_rows, int64_t n, float eps) {
    if (n <= 0 || n_rows < 0 || !x || !y) return ckls_fail(CKLS_EINVAL, "rmsnorm: bad arguments");
    for (int64_t r = 0; r < n_rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        const double ss = row_dot_f64(xr, xr, NULL, n); /* double, as ggml does: rows are long, values large */
        const float scale = 1.0f / sqrtf((float)(ss / n) + eps);
        if (w) for (int64_t i = 0; i < n; i++) yr[i] = xr[i] * scale * w[i];
        else for (int64_t i = 0; i < n; i++) yr[i] = xr[i] * scale;
    }
    return CKLS_OK;
}

int ckls_rope(float *x, int64_t n_tok, int64_t n_head, int64_t head_dim, const int32_t *pos, int64_t n_rot,
              float freq_base, int mode) {
    if (!x || !pos || n_rot <= 0 || n_rot > head_dim || (n_rot & 1) || (mode != CKLS_ROPE_NORM && mode != CKLS_ROPE_NEOX))
        return ckls_fail(CKLS_EINVAL, "rope: bad arguments (n_rot %lld, head_dim %lld, mode %d)", (long long)n_rot,
                         (long long)head_dim, mode);
    const int64_t half = n_rot / 2;
    float cs[1024], sn[1024];
    if (half > 1024) return ckls_fail(CKLS_EINVAL, "rope: n_rot %lld too large", (long long)n_rot);
    const float theta_scale = ckls_rope_theta_scale(freq_base, n_rot);
    for (int64_t t = 0; t < n_tok; t++) {
        ckls_rope_angles(pos[t], theta_scale, half, cs, sn);
        for (int64_t h = 0; h < n_head; h++) {
            float *v = x + (t * n_head + h) * head_dim;
            if (mode == CKLS_ROPE_NORM) {
                for (int64_t i = 0; i < half; i++) {
                    const float a = v[2 * i], b = v[2 * i + 1];
                    v[2 * i] = a * cs[i] - b * sn[i];
                    v[2 * i + 1] = a * sn[i] + b * cs[i];
                }
            } else {
                for (int64_t i = 0; i < half; i++) {
                    const float a = v[i], b = v[i + half];
                    v[i] = a * cs[i] - b * sn[i];
                    v[i + half] = a * sn[i] + b * cs[i];
                }
            }
        }
    }
    return CKLS_OK;
}

int ckls_softmax(float *x, int64_t n_rows, int64_t n) {
    if (!x || n <= 0 || n_rows < 0) return ckls_fail(CKLS_EINVAL, "softmax: bad arguments");
    for (int64_t r = 0; r < n_rows; r++) {
        float *v = x + r * n;
        float mx = -INFINITY;
        for (int64_t i = 0; i < n; i++) mx = v[i] > mx ? v[i] : mx;
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) {
            v[i] = expf(v[i] - mx);
            sum += v[i];
        }
        const float inv = (float)(1.0 / sum);
        for (int64_t i = 0; i < n; i++) v[i] *= inv;
    }
    return CKLS_OK;
}

int ckls_swiglu(const float *gate, const float *up, float *y, int64_t n) {
    if (!gate || !up || !y || n < 0) return ckls_fail(CKLS_EINVAL, "swiglu: bad arguments");
    for (int64_t i = 0; i < n; i++) y[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
    return CKLS_OK;
}
