/* attn_group.c — the scalar reference of the per-group attention kernel (ckls_isa_kernels.attn_group) that
 * ckls_attention (attention.c) runs for each (token, KV head); attn_group_avx2.c holds its AVX2 version. */
#include <math.h>

#include "internal.h"

/* Scalar reference of the per-group kernel (ckls_isa_kernels.attn_group). */
void ckls_attn_group_ref(const float *q, int64_t g, const float *k, const float *v, int64_t stride, int64_t n_kv,
                         int64_t d, float scale, float *scores, float *out) {
    for (int64_t j = 0; j < g; j++) {
        const float *qj = q + j * d;
        float *sc = scores + j * n_kv;
        float mx = -INFINITY;
        for (int64_t s = 0; s < n_kv; s++) {
            float dot = 0.0f;
            for (int64_t i = 0; i < d; i++) dot += qj[i] * k[s * stride + i];
            sc[s] = dot * scale;
            mx = sc[s] > mx ? sc[s] : mx;
        }
        double sum = 0.0;
        for (int64_t s = 0; s < n_kv; s++) {
            sc[s] = expf(sc[s] - mx);
            sum += sc[s];
        }
        const float inv = (float)(1.0 / sum);
        float *o = out + j * d;
        for (int64_t i = 0; i < d; i++) o[i] = 0.0f;
        for (int64_t s = 0; s < n_kv; s++) {
            const float w = sc[s] * inv;
            for (int64_t i = 0; i < d; i++) o[i] += w * v[s * stride + i];
        }
    }
}
