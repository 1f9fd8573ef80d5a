/* sample.c — token selection from logits: greedy, or temperature with top-k / top-p / min-p, and an optional
 * repetition penalty. Deterministic for a given rng state (xorshift64*). */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

static uint64_t next_u64(uint64_t *s) {
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

typedef struct { float logit; int32_t id; } cand;

static int cmp_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->id - y->id; /* ties: lower id first, for determinism */
}

static int32_t argmax(const float *logits, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

int32_t ckls_sample(float *logits, int32_t n_vocab, const ckls_sampler_params *p, uint64_t *rng,
                    const int32_t *recent, int32_t n_recent) {
    if (!logits || n_vocab <= 0 || !p) return ckls_fail(CKLS_EINVAL, "sample: bad arguments");
    if (recent && p->repeat_penalty > 0.0f && p->repeat_penalty != 1.0f) {
        for (int32_t i = 0; i < n_recent; i++) {
            const int32_t id = recent[i];
            if (id < 0 || id >= n_vocab) continue;
            logits[id] = logits[id] > 0 ? logits[id] / p->repeat_penalty : logits[id] * p->repeat_penalty;
        }
    }
    if (!(p->temperature > 0.0f) || !rng) return argmax(logits, n_vocab);

    /* Keep the top_k best (all when off), sorted; then softmax with temperature, then top-p / min-p cut. */
    int32_t k = p->top_k > 0 && p->top_k < n_vocab ? p->top_k : n_vocab;
    cand *c = malloc(sizeof(cand) * (size_t)n_vocab);
    if (!c) return argmax(logits, n_vocab);
    for (int32_t i = 0; i < n_vocab; i++) c[i] = (cand){logits[i], i};
    if (k < n_vocab) {
        /* partial selection: a heap would be faster, but top-k is small and this runs once per token */
        for (int32_t i = 0; i < k; i++) {
            int32_t best = i;
            for (int32_t j = i + 1; j < n_vocab; j++)
                if (c[j].logit > c[best].logit || (c[j].logit == c[best].logit && c[j].id < c[best].id)) best = j;
            cand tmp = c[i]; c[i] = c[best]; c[best] = tmp;
        }
    } else {
        qsort(c, (size_t)n_vocab, sizeof(cand), cmp_desc);
    }
    const float mx = c[0].logit;
    double sum = 0.0;
    for (int32_t i = 0; i < k; i++) {
        c[i].logit = expf((c[i].logit - mx) / p->temperature);
        sum += c[i].logit;
    }
    int32_t keep = k;
    if (p->top_p > 0.0f && p->top_p < 1.0f) {
        double acc = 0.0;
        for (int32_t i = 0; i < k; i++) {
            acc += c[i].logit / sum;
            if (acc >= p->top_p) { keep = i + 1; break; }
        }
    }
    if (p->min_p > 0.0f) {
        const float floor_p = c[0].logit * p->min_p; /* c[0] is the most likely: its weight is exp(0) = 1 */
        int32_t j = 1;
        while (j < keep && c[j].logit >= floor_p) j++;
        keep = j;
    }
    double total = 0.0;
    for (int32_t i = 0; i < keep; i++) total += c[i].logit;
    const double r = (double)(next_u64(rng) >> 11) * (1.0 / 9007199254740992.0) * total;
    double acc = 0.0;
    int32_t pick = c[keep - 1].id;
    for (int32_t i = 0; i < keep; i++) {
        acc += c[i].logit;
        if (r < acc) { pick = c[i].id; break; }
    }
    free(c);
    return pick;
}
