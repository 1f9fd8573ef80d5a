/* test_train.c — the LoRA training step end to end in C (so ASan/UBSan watch every buffer it touches): a
 * random f32 llama/qwen2-shaped model with odd sizes, an adapter on every matrix, and
 *   - gradients of the step against central finite differences of its own loss, for the largest-gradient
 *     parameters of every adapted matrix (float64 differences of float32 losses, so tolerances are loose but
 *     any wrong index, transpose or missing term shows as an order-of-magnitude error);
 *   - eval with the adapter set gives the same logits as the training forward implies (loss recomputed from
 *     ckls_model_eval logits with ckls_cross_entropy);
 *   - a raised cancel flag returns CKLS_ECANCELLED and leaves the gradients as they were, and a flag raised and
 *     lowered at random moments from another thread never lets a step that skipped work return a result;
 *   - bad arguments come back as status codes.
 * Seed from the clock unless given (printed). Last line: "N passed, N failed". */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"
#include "test_util.h"



static float *randw(int64_t n, float scale, float offset) {
    float *p = malloc(sizeof(float) * (size_t)n);
    if (!p) { printf("out of memory\n"); exit(2); }
    for (int64_t i = 0; i < n; i++) p[i] = offset + scale * rnd_sym();
    return p;
}

/* Raises *flag for 0..30 us, then lowers it for 0..4 step times, until told to stop: some steps finish, some are
 * caught (its own generator: the test's is not thread-safe). */
typedef struct {
    volatile int32_t *flag;
    atomic_int stop;
    uint64_t state;
    long step_ns;
} toggler;

static void *toggle(void *p) {
    toggler *tg = p;
    while (!atomic_load(&tg->stop)) {
        tg->state = tg->state * 6364136223846793005ull + 1442695040888963407ull;
        const long ns = (long)((tg->state >> 33) % (uint64_t)(*tg->flag ? 30000 : 4 * tg->step_ns + 1));
        const struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
        nanosleep(&ts, NULL);
        *tg->flag = !*tg->flag;
    }
    return NULL;
}

/* Steps on two alternating sequences while another thread raises and lowers the flag: a product that stopped
 * early leaves the other sequence's values behind, so a step that returned OK after skipping work would show. */
static void cancel_race(ckls_train *t, ckls_lora *a, const int32_t *tok, const int32_t *tgt, int n_tok, int64_t V) {
    const int64_t np = ckls_lora_n_params(a);
    float *g = ckls_lora_buffer(a, CKLS_LORA_GRADS), *ref[2], loss_ref[2];
    int32_t tok2[2][20];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < n_tok; i++) tok2[s][i] = s ? (int32_t)((tok[i] + 1 + i) % V) : tok[i];
        ckls_lora_zero_grad(a);
        CHECK(ckls_train_step(t, tok2[s], tgt, n_tok, 1.0f, NULL, &loss_ref[s]) == 0, "train_step");
        ref[s] = malloc(sizeof(float) * (size_t)np);
        memcpy(ref[s], g, sizeof(float) * (size_t)np);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const long step_ns = ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec)) / 2;
    volatile int32_t flag = 0;
    toggler tg = {.flag = &flag, .state = rnd(), .step_ns = step_ns > 1000 ? step_ns : 1000};
    atomic_init(&tg.stop, 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, toggle, &tg) == 0, "pthread_create");
    int ok = 0, cancelled = 0, bad = 0;
    for (int i = 0; i < 4000; i++) {
        const int s = i & 1;
        float l;
        ckls_lora_zero_grad(a);
        const int rc = ckls_train_step(t, tok2[s], tgt, n_tok, 1.0f, &flag, &l);
        if (rc == CKLS_OK) {
            ok++;
            /* attention's per-thread dK/dV copies may sum in another order: rounding, not stale values */
            bad += fabsf(l - loss_ref[s]) > 1e-5f * loss_ref[s] || rel_err(g, ref[s], np) > 1e-4;
        } else {
            cancelled++;
            bad += rc != CKLS_ECANCELLED;
            for (int64_t k = 0; k < np; k++) bad += g[k] != 0.0f;
        }
    }
    atomic_store(&tg.stop, 1);
    pthread_join(th, NULL);
    CHECK(bad == 0, "%d steps with a wrong result under a racing cancel flag (%d ok, %d cancelled)", bad, ok,
          cancelled);
    CHECK(ok > 0 && cancelled > 0, "the race did not exercise both outcomes (%d ok, %d cancelled)", ok, cancelled);
    free(ref[0]), free(ref[1]);
}

static ckls_tensor tensor(float *data, int64_t ne0, int64_t ne1) {
    return (ckls_tensor){.data = data, .type = CKLS_TYPE_F32, .ne0 = ne0, .ne1 = ne1, .nbytes = 4 * ne0 * ne1};
}

static void run(int arch) {
    ckls_hparams hp = {.arch = arch, .n_vocab = rnd_int(20, 90), .n_layer = rnd_int(1, 3), .n_head_kv = rnd_int(1, 2),
                       .rms_eps = 1e-5f, .rope_base = 10000.0f,
                       .rope_mode = arch == CKLS_ARCH_QWEN2 ? CKLS_ROPE_NEOX : CKLS_ROPE_NORM};
    hp.n_head = hp.n_head_kv * rnd_int(1, 3);
    const int hd = 2 * rnd_int(2, 6);
    hp.n_embd = hp.n_head * hd;
    hp.n_ff = rnd_int(5, 40);
    hp.n_rot = hd - 2 * rnd_int(0, 1);
    const int64_t d = hp.n_embd, kv = (int64_t)hp.n_head_kv * hd, ff = hp.n_ff, V = hp.n_vocab;
    void *bufs[64];
    int nb = 0;
#define KEEP(p) (bufs[nb++] = (p))
    ckls_tensor emb = tensor(KEEP(randw(V * d, 1.0f, 0.0f)), d, V), onorm = tensor(KEEP(randw(d, 0.2f, 1.0f)), d, 1);
    ckls_tensor out = tensor(KEEP(randw(V * d, 0.3f, 0.0f)), d, V);
    ckls_layer *layers = calloc((size_t)hp.n_layer, sizeof *layers);
    for (int l = 0; l < hp.n_layer; l++) {
        ckls_layer *L = &layers[l];
        const float s = 1.0f / sqrtf((float)d);
        L->attn_norm = tensor(KEEP(randw(d, 0.2f, 1.0f)), d, 1);
        L->wq = tensor(KEEP(randw(d * d, 2 * s, 0)), d, d);
        L->wk = tensor(KEEP(randw(kv * d, 2 * s, 0)), d, kv);
        L->wv = tensor(KEEP(randw(kv * d, s, 0)), d, kv);
        L->wo = tensor(KEEP(randw(d * d, s, 0)), d, d);
        L->ffn_norm = tensor(KEEP(randw(d, 0.2f, 1.0f)), d, 1);
        L->w_gate = tensor(KEEP(randw(ff * d, s, 0)), d, ff);
        L->w_up = tensor(KEEP(randw(ff * d, s, 0)), d, ff);
        L->w_down = tensor(KEEP(randw(d * ff, 1.0f / sqrtf((float)ff), 0)), ff, d);
        if (arch == CKLS_ARCH_QWEN2) {
            L->bq = tensor(KEEP(randw(d, 0.1f, 0)), d, 1);
            L->bk = tensor(KEEP(randw(kv, 0.1f, 0)), kv, 1);
            L->bv = tensor(KEEP(randw(kv, 0.1f, 0)), kv, 1);
        }
    }
    const int n_th = rnd_int(1, 3), n_tok = rnd_int(2, 19);
    ckls_model *m = ckls_model_create(&hp, &emb, &onorm, rnd_int(0, 1) ? &out : &(ckls_tensor){0}, layers, 32, n_th);
    CHECK(m != NULL, "model_create: %s", ckls_last_error());
    const int rank = rnd_int(1, 5);
    ckls_lora *a = ckls_lora_create(&hp, rank, 2.0f * rank, CKLS_LORA_ALL, rnd());
    CHECK(a != NULL, "lora_create: %s", ckls_last_error());
    if (!m || !a) return;
    float *p = ckls_lora_buffer(a, CKLS_LORA_PARAMS), *g = ckls_lora_buffer(a, CKLS_LORA_GRADS);
    const int64_t np = ckls_lora_n_params(a);
    for (int64_t i = 0; i < np; i++) /* B starts at zero: make it non-zero so A gets gradient too */
        if (p[i] == 0.0f) p[i] = 0.3f * rnd_sym();
    const int64_t ins[7] = {d, d, d, d, d, d, ff}, outs[7] = {d, kv, kv, d, ff, ff, d};
    ckls_train *t = ckls_train_create(m, a, 20);
    CHECK(t != NULL, "train_create: %s", ckls_last_error());
    int32_t tok[20], tgt[20];
    for (int i = 0; i < n_tok; i++) {
        tok[i] = rnd_int(0, (int)V - 1);
        tgt[i] = rnd_int(0, 4) ? rnd_int(0, (int)V - 1) : -1;
    }
    tgt[0] = 1;
    float loss = 0, loss2 = 0;
    /* a random model can be sure of a short sequence's targets (loss ~1e-7): then every gradient vanishes and the
     * finite differences below check nothing, so draw other targets */
    for (int tries = 0; tries < 8; tries++) {
        memset(g, 0, sizeof(float) * (size_t)np);
        CHECK(ckls_train_step(t, tok, tgt, n_tok, 1.0f, NULL, &loss) == 0, "train_step: %s", ckls_last_error());
        if (loss > 0.05f) break;
        for (int i = 0; i < n_tok; i++) tgt[i] = rnd_int(0, (int)V - 1);
    }
    CHECK(isfinite(loss) && loss > 0.05f, "loss %g", loss);

    /* finite differences on the largest gradients of each adapted matrix */
    float *g0 = malloc(sizeof(float) * (size_t)np);
    memcpy(g0, g, sizeof(float) * (size_t)np);
    int fd_checked = 0, fd_bad = 0;
    for (int l = 0; l < hp.n_layer; l++)
        for (int ti = 0; ti < 7; ti++)
            for (int is_b = 0; is_b < 2; is_b++) {
                const int64_t o0 = ckls_lora_offset(a, l, 1 << ti, is_b);
                const int64_t o1 = o0 + rank * (is_b ? outs[ti] : ins[ti]);
                int64_t best = o0;
                double gmax = 0.0;
                for (int64_t i = o0; i < o1; i++)
                    if (fabs(g0[i]) > gmax) gmax = fabs(g0[i]), best = i;
                if (gmax < 1e-3) continue;
                const float keep = p[best], h = 3e-3f;
                float lp, lm;
                p[best] = keep + h;
                ckls_train_step(t, tok, tgt, n_tok, 0.0f, NULL, &lp);
                p[best] = keep - h;
                ckls_train_step(t, tok, tgt, n_tok, 0.0f, NULL, &lm);
                p[best] = keep;
                const double fd = ((double)lp - lm) / (2.0 * h);
                fd_checked++;
                if (fabs(fd - g0[best]) > 0.05 * fabs(g0[best]) + 2e-3) {
                    fd_bad++;
                    printf("  layer %d target %d %s[%lld]: step gradient %g, finite difference %g\n", l, ti,
                           is_b ? "B" : "A", (long long)(best - o0), g0[best], fd);
                }
            }
    CHECK(fd_bad == 0 && fd_checked > 0, "%d of %d gradients disagree with finite differences (arch %d)", fd_bad,
          fd_checked, arch);
    CHECK(memcmp(g, g0, sizeof(float) * (size_t)np) == 0, "grad_scale 0 steps changed the gradients");

    /* eval with the adapter: the same loss from its logits */
    float *logits = malloc(sizeof(float) * (size_t)(n_tok * V));
    CHECK(ckls_model_set_lora(m, a) == 0, "set_lora: %s", ckls_last_error());
    CHECK(ckls_model_eval(m, tok, n_tok, 0, logits, 1, NULL) == 0, "eval: %s", ckls_last_error());
    CHECK(ckls_cross_entropy(logits, tgt, n_tok, V, 1.0f, &loss2, NULL, NULL) == 0, "cross_entropy");
    CHECK(fabsf(loss - loss2) <= 1e-5f * loss, "loss %g from the step, %g from eval with the adapter", loss, loss2);
    CHECK(ckls_model_set_lora(m, NULL) == 0, "set_lora NULL");

    /* cancel leaves the gradients alone; bad input is refused */
    volatile int32_t flag = 1;
    CHECK(ckls_train_step(t, tok, tgt, n_tok, 1.0f, &flag, &loss2) == CKLS_ECANCELLED, "cancel");
    CHECK(memcmp(g, g0, sizeof(float) * (size_t)np) == 0, "a cancelled step changed the gradients");
    cancel_race(t, a, tok, tgt, n_tok, V);
    CHECK(ckls_train_step(t, tok, tgt, 21, 1.0f, NULL, &loss2) == CKLS_ERANGE, "too many tokens accepted");
    tok[0] = (int32_t)V;
    CHECK(ckls_train_step(t, tok, tgt, n_tok, 1.0f, NULL, &loss2) == CKLS_EINVAL, "token outside the vocabulary");
    ckls_hparams other = hp;
    other.n_ff += 1;
    ckls_lora *b = ckls_lora_create(&other, 2, 2.0f, CKLS_LORA_Q, 1);
    CHECK(ckls_model_set_lora(m, b) == CKLS_EINVAL, "an adapter of another shape accepted");
    CHECK(ckls_train_create(m, b, 4) == NULL, "train state for an adapter of another shape");
    CHECK(ckls_lora_create(&hp, 0, 1.0f, CKLS_LORA_Q, 1) == NULL, "rank 0 accepted");

    ckls_lora_free(b);
    free(logits);
    free(g0);
    ckls_train_free(t);
    ckls_lora_free(a);
    ckls_model_free(m);
    free(layers);
    for (int i = 0; i < nb; i++) free(bufs[i]);
#undef KEEP
}

int main(int argc, char **argv) {
    test_seed(argc, argv, "test_train");
    for (int rep = 0; rep < 3; rep++) {
        run(CKLS_ARCH_LLAMA);
        run(CKLS_ARCH_QWEN2);
    }
    return test_report();
}
