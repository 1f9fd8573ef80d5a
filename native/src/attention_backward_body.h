/* attention_backward_body.h — the per-head attention backward a row at a time (the reference the blocked driver
 * is tested against), parametrised by its dot and axpy. The includer defines ATTN_BWD_NAME, ATTN_DOT(a, b, d) and ATTN_AXPY(y, alpha, x, d) (y += alpha * x).
 *
 * For query row t: p = softmax(q_t.k_s * scale), s <= t (recomputed as the forward does it);
 * dp_s = dout_t.v_s; ds_s = p_s (dp_s - sum_s p_s dp_s);  dq_t = scale sum_s ds_s k_s;
 * dk_s += scale ds_s q_t;  dv_s += p_s dout_t. */
static void ATTN_BWD_NAME(const float *q, const float *k, const float *v, const float *dout, float *dq, float *dk,
                          float *dv, int64_t t0, int64_t t1, int64_t qs, int64_t ks, int64_t d, float scale,
                          float *sc, float *dp) {
    for (int64_t t = t0; t < t1; t++) {
        const float *qt = q + t * qs, *ot = dout + t * qs;
        float *dqt = dq + t * qs;
        const int64_t n_kv = t + 1;
        float mx = -INFINITY;
        for (int64_t s = 0; s < n_kv; s++) {
            sc[s] = ATTN_DOT(qt, k + s * ks, d) * scale;
            mx = sc[s] > mx ? sc[s] : mx;
        }
        double sum = 0.0;
        for (int64_t s = 0; s < n_kv; s++) {
            sc[s] = expf(sc[s] - mx);
            sum += sc[s];
        }
        const float inv = (float)(1.0 / sum);
        double D = 0.0;
        for (int64_t s = 0; s < n_kv; s++) {
            sc[s] *= inv;
            dp[s] = ATTN_DOT(ot, v + s * ks, d);
            D += (double)sc[s] * dp[s];
        }
        const float Df = (float)D;
        for (int64_t i = 0; i < d; i++) dqt[i] = 0.0f;
        for (int64_t s = 0; s < n_kv; s++) {
            const float ds = sc[s] * (dp[s] - Df) * scale;
            ATTN_AXPY(dqt, ds, k + s * ks, d);
            ATTN_AXPY(dk + s * ks, ds, qt, d);
            ATTN_AXPY(dv + s * ks, sc[s], ot, d);
        }
    }
}
