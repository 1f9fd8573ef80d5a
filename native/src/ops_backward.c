/* ops_backward.c — gradients of the element-wise and row ops in ops_forward.c, plus the training loss.
 * Each mirrors its forward's arithmetic (double row sums where the forward has them) and is checked against
 * PyTorch autograd in tests/test_backward_torch.py. */
#include <math.h>

#include "backward.h"
#include "rope.h"
#include "row_sums.h"

/* y = x * r * w with r = 1/sqrt(mean(x^2) + eps):
 * dx = r * (w*dy) - x * r^3 / n * sum(x * w*dy);  dw += x * r * dy. */
int ckls_rmsnorm_backward(const float *x, const float *w, const float *dy, float *dx, float *dw, int64_t n_rows,
                          int64_t n, float eps) {
    if (n <= 0 || n_rows < 0 || !x || !dy || !dx) return ckls_fail(CKLS_EINVAL, "rmsnorm_backward: bad arguments");
    for (int64_t r = 0; r < n_rows; r++) {
        const float *xr = x + r * n, *gr = dy + r * n;
        float *dr = dx + r * n;
        const double ss = row_dot_f64(xr, xr, NULL, n), dot = row_dot_f64(xr, gr, w, n);
        const float rs = 1.0f / sqrtf((float)(ss / n) + eps);
        const float c = (float)(dot / n) * rs * rs * rs;
        if (dw)
            for (int64_t i = 0; i < n; i++) dw[i] += xr[i] * rs * gr[i];
        for (int64_t i = 0; i < n; i++) dr[i] = rs * gr[i] * (w ? w[i] : 1.0f) - xr[i] * c;
    }
    return CKLS_OK;
}

/* The rotation is orthogonal: its gradient is the rotation by -theta (same angles, sine negated). */
int ckls_rope_backward(float *dx, int64_t n_tok, int64_t n_head, int64_t head_dim, const int32_t *pos, int64_t n_rot,
                       float freq_base, int mode) {
    if (!dx || !pos || n_rot <= 0 || n_rot > head_dim || (n_rot & 1) ||
        (mode != CKLS_ROPE_NORM && mode != CKLS_ROPE_NEOX) || n_rot > 2048)
        return ckls_fail(CKLS_EINVAL, "rope_backward: bad arguments (n_rot %lld, head_dim %lld, mode %d)",
                         (long long)n_rot, (long long)head_dim, mode);
    const int64_t half = n_rot / 2;
    float cs[1024], sn[1024];
    const float theta_scale = ckls_rope_theta_scale(freq_base, n_rot);
    for (int64_t t = 0; t < n_tok; t++) {
        ckls_rope_angles(pos[t], theta_scale, half, cs, sn);
        for (int64_t h = 0; h < n_head; h++) {
            float *v = dx + (t * n_head + h) * head_dim;
            const int64_t stride = mode == CKLS_ROPE_NORM ? 2 : 1, off = mode == CKLS_ROPE_NORM ? 1 : half;
            for (int64_t i = 0; i < half; i++) {
                float *pa = v + i * stride, *pb = pa + off;
                const float a = *pa, b = *pb;
                *pa = a * cs[i] + b * sn[i];
                *pb = b * cs[i] - a * sn[i];
            }
        }
    }
    return CKLS_OK;
}

/* silu(g) = g*s, s = sigmoid(g): dsilu/dg = s * (1 + g * (1 - s)). */
int ckls_swiglu_backward(const float *gate, const float *up, const float *dy, float *dgate, float *dup, int64_t n) {
    if (!gate || !up || !dy || !dgate || !dup || n < 0) return ckls_fail(CKLS_EINVAL, "swiglu_backward: bad arguments");
    const ckls_exp_shift_fn ex = ckls_active_kernels()->exp_shift;
    float e[256]; /* exp(-g) for a chunk, through the vector exp; the rest of the loop then vectorizes too */
    for (int64_t i0 = 0; i0 < n; i0 += 256) {
        const int64_t m = n - i0 < 256 ? n - i0 : 256;
        for (int64_t i = 0; i < m; i++) e[i] = -gate[i0 + i];
        ex(e, e, m, 0.0f);
        for (int64_t i = 0; i < m; i++) {
            const float g = gate[i0 + i], u = up[i0 + i], d = dy[i0 + i];
            const float s = 1.0f / (1.0f + e[i]);
            dup[i0 + i] = d * g * s;
            dgate[i0 + i] = d * u * s * (1.0f + g * (1.0f - s));
        }
    }
    return CKLS_OK;
}

int ckls_softmax_backward(const float *y, const float *dy, float *dx, int64_t n_rows, int64_t n) {
    if (!y || !dy || !dx || n <= 0 || n_rows < 0) return ckls_fail(CKLS_EINVAL, "softmax_backward: bad arguments");
    for (int64_t r = 0; r < n_rows; r++) {
        const float *yr = y + r * n, *gr = dy + r * n;
        float *dr = dx + r * n;
        double dot = 0.0;
        for (int64_t i = 0; i < n; i++) dot += (double)yr[i] * gr[i];
        const float c = (float)dot;
        for (int64_t i = 0; i < n; i++) dr[i] = yr[i] * (gr[i] - c);
    }
    return CKLS_OK;
}

/* loss_row = logsumexp(z) - z[target]; dz = (softmax(z) - onehot) * grad_scale / n_counted. */
int ckls_cross_entropy(const float *logits, const int32_t *targets, int64_t n_rows, int64_t n_vocab, float grad_scale,
                       float *loss, float *dlogits, int64_t *n_counted) {
    if (!logits || !targets || !loss || n_vocab <= 0 || n_rows < 0)
        return ckls_fail(CKLS_EINVAL, "cross_entropy: bad arguments");
    int64_t cnt = 0;
    for (int64_t r = 0; r < n_rows; r++) {
        if (targets[r] >= n_vocab) return ckls_fail(CKLS_EINVAL, "cross_entropy: target %d at row %lld outside "
                                                    "the vocabulary of %lld", targets[r], (long long)r, (long long)n_vocab);
        cnt += targets[r] >= 0;
    }
    const float gscale = cnt ? grad_scale / (float)cnt : 0.0f;
    const ckls_exp_shift_fn ex = ckls_active_kernels()->exp_shift;
    double total = 0.0;
    for (int64_t r = 0; r < n_rows; r++) {
        const float *z = logits + r * n_vocab;
        float *dz = dlogits ? dlogits + r * n_vocab : NULL;
        if (targets[r] < 0) {
            if (dz) memset(dz, 0, sizeof(float) * (size_t)n_vocab);
            continue;
        }
        float m8[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
        int64_t i8 = 0; /* eight maxima side by side: one running max waits on each compare (a vocabulary row each) */
        for (; i8 + 8 <= n_vocab; i8 += 8)
            for (int l = 0; l < 8; l++) m8[l] = z[i8 + l] > m8[l] ? z[i8 + l] : m8[l];
        for (; i8 < n_vocab; i8++) m8[0] = z[i8] > m8[0] ? z[i8] : m8[0];
        float mx = m8[0];
        for (int l = 1; l < 8; l++) mx = m8[l] > mx ? m8[l] : mx;
        const float zt = z[targets[r]]; /* before dz (which may be z) is overwritten */
        double sum = 0.0;
        if (dz) { /* the exponentials once, into dz, then scaled */
            sum = ex(dz, z, n_vocab, mx);
            const float c = (float)(1.0 / sum) * gscale;
            for (int64_t i = 0; i < n_vocab; i++) dz[i] *= c;
            dz[targets[r]] -= gscale;
        } else {
            float buf[1024];
            for (int64_t i = 0; i < n_vocab; i += 1024) sum += ex(buf, z + i, n_vocab - i < 1024 ? n_vocab - i : 1024, mx);
        }
        total += log(sum) + mx - zt;
    }
    *loss = cnt ? (float)(total / cnt) : 0.0f;
    if (n_counted) *n_counted = cnt;
    return CKLS_OK;
}
