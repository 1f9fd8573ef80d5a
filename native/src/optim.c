/* optim.c — the adapter's optimizer: global-norm gradient clipping and AdamW exactly as torch.optim.AdamW
 * computes it (decoupled weight decay p -= lr*wd*p first; bias corrections; eps added after the square root of
 * the corrected second moment). */
#include <math.h>

#include "backward.h"

int ckls_lora_adamw(ckls_lora *a, float lr, float beta1, float beta2, float eps, float weight_decay, float clip,
                    float *grad_norm) {
    if (!a) return ckls_fail(CKLS_EINVAL, "adamw: NULL adapter");
    if (!(lr >= 0.0f) || !(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f) || !(eps >= 0.0f) ||
        !(weight_decay >= 0.0f) || isnan(clip))
        return ckls_fail(CKLS_EINVAL, "adamw: hyper-parameter out of range (lr %g, betas %g %g, eps %g, wd %g)", lr,
                         beta1, beta2, eps, weight_decay);
    const int64_t n = ckls_lora_n_params(a);
    float *p = ckls_lora_buffer(a, CKLS_LORA_PARAMS), *g = ckls_lora_buffer(a, CKLS_LORA_GRADS);
    float *m = ckls_lora_buffer(a, CKLS_LORA_ADAM_M), *v = ckls_lora_buffer(a, CKLS_LORA_ADAM_V);
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    const float norm = (float)sqrt(ss);
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm)) return ckls_fail(CKLS_ERANGE, "adamw: gradient norm is %g; parameters left unchanged", norm);
    if (clip > 0.0f && norm > clip) { /* torch.nn.utils.clip_grad_norm_: coefficient clip / (norm + 1e-6) */
        const float c = clip / (norm + 1e-6f);
        for (int64_t i = 0; i < n; i++) g[i] *= c;
    }
    const int64_t step = ckls_lora_adam_step(a) + 1;
    ckls_lora_set_adam_step(a, step);
    const float bc1 = 1.0f - (float)pow(beta1, (double)step), bc2 = 1.0f - (float)pow(beta2, (double)step);
    const float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2), decay = 1.0f - lr * weight_decay;
    for (int64_t i = 0; i < n; i++) {
        p[i] *= decay;
        m[i] = beta1 * m[i] + (1.0f - beta1) * g[i];
        v[i] = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        p[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
    return CKLS_OK;
}
