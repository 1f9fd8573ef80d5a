/* test_ngram_memory.c — random operations on the repository memory (meant for the --sanitize build: every read
 * stays in bounds, nothing leaks) with its invariants checked: live tokens within the capacity, predictions that
 * count only what was stored, a mix that keeps masked logits masked and never makes a NaN out of finite input.
 * The exact answers are compared with a Python reference in tests/test_ngram_memory.py. */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "../include/ckls.h"
#include "test_util.h"

static void test_random_ops(void) {
    for (int trial = 0; trial < 20; trial++) {
        const int cap = rnd_int(16, 3000);
        const int vocab = rnd_int(2, 40);
        ckls_ngram_memory *m = ckls_ngram_memory_create(cap);
        CHECK(m != NULL, "create %d", cap);
        if (!m) continue;
        int32_t buf[4000], ctx[100], ids[CKLS_NGRAM_MAX_VISITS], counts[CKLS_NGRAM_MAX_VISITS];
        float logits[64];
        for (int op = 0; op < 400; op++) {
            const int kind = rnd_int(0, 9);
            const int64_t file = rnd_int(0, 12);
            if (kind < 6) {
                const int n = rnd_int(0, 1) ? rnd_int(0, 40) : rnd_int(0, 4000);
                for (int i = 0; i < n; i++) buf[i] = rnd_int(0, 3) ? rnd_int(0, vocab - 1) : (int32_t)rnd();
                const int64_t got = ckls_ngram_memory_add(m, file, buf, n);
                CHECK(got == (n < cap ? n : cap), "add %d -> %lld", n, (long long)got);
            } else if (kind < 8) {
                const int r = ckls_ngram_memory_remove(m, file);
                CHECK(r == 0 || r == 1, "remove %d", r);
            } else if (kind == 8 && rnd_int(0, 20) == 0) {
                CHECK(ckls_ngram_memory_clear(m) == CKLS_OK, "clear");
            }
            const int64_t live = ckls_ngram_memory_tokens(m);
            CHECK(live >= 0 && live <= cap, "live %lld of %d", (long long)live, cap);
            CHECK(ckls_ngram_memory_files(m) >= 0 && ckls_ngram_memory_files(m) <= 13, "files");
            const int n_ctx = rnd_int(0, 100);
            for (int i = 0; i < n_ctx; i++) ctx[i] = rnd_int(0, vocab - 1);
            int32_t len = -1;
            const int visits = rnd_int(-2, 2000);
            const int32_t nd = ckls_ngram_memory_predict(m, ctx, n_ctx, visits, ids, counts, rnd_int(0, 8), &len);
            CHECK(nd >= 0 && nd <= CKLS_NGRAM_MAX_VISITS, "predict %d", nd);
            CHECK(len == 0 || (len >= 2 && len <= n_ctx && len <= CKLS_NGRAM_MAX_MATCH), "match %d of %d", len, n_ctx);
            CHECK((nd == 0) == (len == 0), "distinct %d with match %d", nd, len);
            ckls_ngram_mix_params p = {rnd_int(-1, 6), rnd_int(-1, 20), rnd_unit() * 2.0f, rnd_unit() * 3.0f,
                                       rnd_int(0, 1), rnd_int(-5, 3000)};
            const int nv = rnd_int(1, 64);
            int masked = 0;
            for (int i = 0; i < nv; i++) {
                logits[i] = rnd_int(0, 5) ? rnd_sym() * 10.0f : -INFINITY;
                masked += isinf(logits[i]) != 0;
            }
            float lam = -1.0f;
            const int changed = ckls_ngram_memory_mix(m, logits, nv, ctx, n_ctx, &p, &lam);
            CHECK(changed >= 0 && lam >= 0.0f && lam <= 0.95f, "mix %d, lambda %g", changed, lam);
            int masked_after = 0, nan = 0;
            for (int i = 0; i < nv; i++) {
                masked_after += isinf(logits[i]) != 0;
                nan += isnan(logits[i]) != 0;
            }
            CHECK(masked_after == masked && nan == 0, "masked %d -> %d, NaN %d", masked, masked_after, nan);
        }
        ckls_ngram_memory_free(m);
    }
}

static void test_bad_input(void) {
    CHECK(ckls_ngram_memory_create(0) == NULL, "cap 0");
    CHECK(ckls_ngram_memory_create(CKLS_NGRAM_MAX_CAPACITY + 1) == NULL, "cap too big");
    CHECK(ckls_ngram_memory_add(NULL, 0, NULL, 0) == CKLS_EINVAL, "NULL memory");
    CHECK(ckls_ngram_memory_mix(NULL, NULL, 0, NULL, 0, NULL, NULL) == CKLS_EINVAL, "NULL mix");
    CHECK(ckls_ngram_memory_predict(NULL, NULL, 0, 0, NULL, NULL, 0, NULL) == CKLS_EINVAL, "NULL predict");
    CHECK(ckls_ngram_mix_weight(NULL, 5, 5, 5) == 0.0f, "NULL params");
    ckls_ngram_memory_free(NULL);
    ckls_ngram_memory *m = ckls_ngram_memory_create(16);
    int32_t t[3] = {1, 2, 3};
    CHECK(ckls_ngram_memory_add(m, 7, t, -1) == CKLS_EINVAL, "negative n");
    CHECK(ckls_ngram_memory_add(m, 7, NULL, 3) == CKLS_EINVAL, "NULL tokens");
    CHECK(ckls_ngram_memory_add(m, 7, t, 3) == 3, "add");
    float lg[4] = {NAN, NAN, NAN, NAN};
    ckls_ngram_mix_params p = {2, 0, 0.5f, 0.0f, 0, 0};
    CHECK(ckls_ngram_memory_mix(m, lg, 4, t, 2, &p, NULL) == 0, "NaN logits untouched");
    ckls_ngram_memory_free(m);
}

int main(int argc, char **argv) {
    test_seed(argc, argv, "test_ngram_memory");
    test_random_ops();
    test_bad_input();
    return test_report();
}
