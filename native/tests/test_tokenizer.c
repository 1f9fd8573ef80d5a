/* test_tokenizer.c — the heap-driven BPE against a naive rank scan on random vocabularies and text (fresh seed
 * each run, printed), lossless round trips on random bytes, special tokens, and bad-input handling. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "test_util.h"

/* ---- vocabulary under construction: raw bytes per token, GGUF form produced on demand ---------------- */
#define MAXV 1024
static char raw[MAXV][64];
static int raw_len[MAXV], types[MAXV], n_vocab;
static int merge_l[MAXV], merge_r[MAXV], n_merges;

static int byte_to_cp(int b) { /* GPT-2's byte -> code point */
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    int n = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE)) n++;
    return 256 + n;
}

static int put_byte_level(char *out, const char *s, int n) {
    int o = 0;
    for (int i = 0; i < n; i++) {
        int cp = byte_to_cp((uint8_t)s[i]);
        if (cp < 0x80) out[o++] = (char)cp;
        else { out[o++] = (char)(0xC0 | (cp >> 6)); out[o++] = (char)(0x80 | (cp & 0x3F)); }
    }
    return o;
}

static int find_raw(const char *s, int n) {
    for (int i = 0; i < n_vocab; i++)
        if (types[i] == CKLS_TOKEN_NORMAL && raw_len[i] == n && memcmp(raw[i], s, (size_t)n) == 0) return i;
    return -1;
}

static ckls_tokenizer *build(int pre) {
    static char tok_data[MAXV * 130], merge_data[MAXV * 260];
    static int64_t tok_off[MAXV + 1], merge_off[MAXV + 1];
    static int32_t ty[MAXV];
    int64_t o = 0;
    for (int i = 0; i < n_vocab; i++) {
        tok_off[i] = o;
        if (types[i] == CKLS_TOKEN_NORMAL) o += put_byte_level(tok_data + o, raw[i], raw_len[i]);
        else { memcpy(tok_data + o, raw[i], (size_t)raw_len[i]); o += raw_len[i]; }
        ty[i] = types[i];
    }
    tok_off[n_vocab] = o;
    o = 0;
    for (int m = 0; m < n_merges; m++) {
        merge_off[m] = o;
        o += put_byte_level(merge_data + o, raw[merge_l[m]], raw_len[merge_l[m]]);
        merge_data[o++] = ' ';
        o += put_byte_level(merge_data + o, raw[merge_r[m]], raw_len[merge_r[m]]);
    }
    merge_off[n_merges] = o;
    return ckls_tokenizer_create(n_vocab, tok_data, tok_off, ty, n_merges, merge_data, merge_off, pre);
}

static void random_vocab(const char *alphabet) {
    n_vocab = n_merges = 0;
    for (int b = 0; b < 256; b++) { raw[n_vocab][0] = (char)b; raw_len[n_vocab] = 1; types[n_vocab++] = CKLS_TOKEN_NORMAL; }
    int na = (int)strlen(alphabet), want = 200 + (int)(rnd() % 400);
    while (n_merges < want && n_vocab < MAXV - 8) {
        /* pair two existing tokens made of alphabet letters; short ones more often so merges chain */
        int l = -1, r = -1;
        for (int tries = 0; tries < 50 && (l < 0 || r < 0); tries++) {
            int c = n_vocab > 256 && rnd() % 3 ? 256 + (int)(rnd() % (uint32_t)(n_vocab - 256))
                                               : (uint8_t)alphabet[rnd() % (uint32_t)na];
            if (l < 0) l = c; else r = c;
        }
        if (raw_len[l] + raw_len[r] > 40) continue;
        char buf[64];
        memcpy(buf, raw[l], (size_t)raw_len[l]);
        memcpy(buf + raw_len[l], raw[r], (size_t)raw_len[r]);
        int dup = 0;
        for (int m = 0; m < n_merges; m++) dup |= merge_l[m] == l && merge_r[m] == r;
        if (dup) continue;
        if (find_raw(buf, raw_len[l] + raw_len[r]) < 0) {
            memcpy(raw[n_vocab], buf, 64);
            raw_len[n_vocab] = raw_len[l] + raw_len[r];
            types[n_vocab++] = CKLS_TOKEN_NORMAL;
        }
        merge_l[n_merges] = l; merge_r[n_merges] = r; n_merges++;
    }
}

/* Reference BPE: repeatedly merge the adjacent pair of lowest rank (leftmost on ties), by linear scans. */
static int32_t rank2d[MAXV][MAXV];

static void fill_ranks(void) {
    for (int i = 0; i < MAXV; i++)
        for (int j = 0; j < MAXV; j++) rank2d[i][j] = 1 << 30;
    for (int m = n_merges - 1; m >= 0; m--) rank2d[merge_l[m]][merge_r[m]] = m;
}

static int ref_bpe(const char *s, int n, int32_t *out) {
    int ids[4096], k = n;
    for (int i = 0; i < n; i++) ids[i] = (uint8_t)s[i];
    for (;;) {
        int best = -1, best_rank = 1 << 30;
        for (int i = 0; i + 1 < k; i++)
            if (rank2d[ids[i]][ids[i + 1]] < best_rank) { best = i; best_rank = rank2d[ids[i]][ids[i + 1]]; }
        if (best < 0) break;
        char buf[64];
        memcpy(buf, raw[ids[best]], (size_t)raw_len[ids[best]]);
        memcpy(buf + raw_len[ids[best]], raw[ids[best + 1]], (size_t)raw_len[ids[best + 1]]);
        ids[best] = find_raw(buf, raw_len[ids[best]] + raw_len[ids[best + 1]]);
        memmove(ids + best + 1, ids + best + 2, (size_t)(k - best - 2) * sizeof *ids);
        k--;
    }
    memcpy(out, ids, (size_t)k * sizeof *ids);
    return k;
}

static void test_bpe_vs_reference(void) {
    const char *alphabet = "abcd";
    for (int round = 0; round < 20; round++) {
        random_vocab(alphabet);
        fill_ranks();
        for (int pre = CKLS_PRE_GPT2; pre <= CKLS_PRE_LLAMA3; pre++) {
            if (pre == CKLS_PRE_LLAMA3) continue; /* whole-word shortcut differs from plain BPE by design */
            ckls_tokenizer *t = build(pre);
            CHECK(t != NULL, "create: %s", ckls_last_error());
            if (!t) return;
            for (int iter = 0; iter < 200; iter++) {
                char text[2048];
                int n = 1 + (int)(rnd() % (iter < 150 ? 40u : 2000u)); /* short pieces, then heap-sized ones */
                for (int i = 0; i < n; i++) text[i] = alphabet[rnd() % 4];
                int32_t want[4096], got[4096];
                int nw = ref_bpe(text, n, want);
                int64_t ng = ckls_tokenize(t, text, n, 0, got, 4096);
                CHECK(ng == nw && memcmp(got, want, (size_t)nw * sizeof *want) == 0,
                      "round %d pre %d len %d: %lld ids vs %d", round, pre, n, (long long)ng, nw);
                /* again, now served from the piece cache when short */
                ng = ckls_tokenize(t, text, n, 0, got, 4096);
                CHECK(ng == nw && memcmp(got, want, (size_t)nw * sizeof *want) == 0, "cached round %d", round);
            }
            ckls_tokenizer_free(t);
        }
    }
}

static void test_random_bytes_roundtrip(void) {
    random_vocab("ab \n");
    strcpy(raw[n_vocab], "<|s|>"); raw_len[n_vocab] = 5; types[n_vocab++] = CKLS_TOKEN_CONTROL;
    strcpy(raw[n_vocab], "<u>"); raw_len[n_vocab] = 3; types[n_vocab++] = CKLS_TOKEN_USER_DEFINED;
    for (int pre = CKLS_PRE_GPT2; pre <= CKLS_PRE_LLAMA3; pre++) {
        ckls_tokenizer *t = build(pre);
        CHECK(t != NULL, "create: %s", ckls_last_error());
        if (!t) return;
        for (int iter = 0; iter < 500; iter++) {
            char text[600], back[4096];
            int n = (int)(rnd() % 600);
            for (int i = 0; i < n; i++) {
                uint32_t r = rnd() % 10;
                text[i] = r < 4 ? (char)rnd() : r < 6 ? "ab \n\r\t'"[rnd() % 7] : r < 8 ? "\xe4\xb8\xad\xf0\x9f"[rnd() % 5]
                        : "<|s|><u>"[rnd() % 8];
            }
            int32_t ids[700];
            for (int special = 0; special < 2; special++) {
                int64_t k = ckls_tokenize(t, text, n, special, ids, 700);
                CHECK(k >= 0 && k <= n, "tokenize random bytes: %lld", (long long)k);
                if (k < 0 || k > 700) continue;
                int64_t m = ckls_detokenize(t, ids, k, 0, back, sizeof back);
                CHECK(m == n && memcmp(back, text, (size_t)n) == 0, "round trip of %d random bytes (pre %d)", n, pre);
                /* a short buffer still reports the full count and writes only cap ids */
                int32_t few[3] = {-7, -7, -7};
                int64_t k2 = ckls_tokenize(t, text, n, special, few, 2);
                CHECK(k2 == k && few[2] == -7, "cap semantics: %lld vs %lld", (long long)k2, (long long)k);
            }
        }
        /* specials: control only with parse_special, user-defined always */
        int32_t ids[16];
        int64_t k = ckls_tokenize(t, "a<|s|>b", 7, 1, ids, 16);
        CHECK(k == 3 && ids[1] == n_vocab - 2, "control token with parse_special");
        k = ckls_tokenize(t, "a<|s|>b", 7, 0, ids, 16);
        int has = 0;
        for (int i = 0; i < k && i < 16; i++) has |= ids[i] == n_vocab - 2;
        CHECK(k > 3 && !has, "control token text without parse_special");
        k = ckls_tokenize(t, "<u><u>", 6, 0, ids, 16);
        CHECK(k == 2 && ids[0] == n_vocab - 1 && ids[1] == n_vocab - 1, "user-defined tokens always match");
        char b[8];
        CHECK(ckls_detokenize(t, ids, 2, 1, b, 8) == 6, "user-defined kept with skip_control");
        int32_t ctl = n_vocab - 2;
        CHECK(ckls_detokenize(t, &ctl, 1, 1, b, 8) == 0, "control left out with skip_control");
        ckls_tokenizer_free(t);
    }
}

static void test_bad_input(void) {
    random_vocab("ab");
    ckls_tokenizer *t = build(CKLS_PRE_QWEN2);
    int32_t ids[4];
    char b[4];
    CHECK(ckls_tokenize(NULL, "a", 1, 0, ids, 4) == CKLS_EINVAL, "NULL tokenizer");
    CHECK(ckls_tokenize(t, NULL, 1, 0, ids, 4) == CKLS_EINVAL, "NULL text");
    CHECK(ckls_tokenize(t, "a", -1, 0, ids, 4) == CKLS_EINVAL, "negative length");
    CHECK(ckls_tokenize(t, "a", 1, 0, NULL, 4) == CKLS_EINVAL, "NULL out with cap");
    CHECK(ckls_tokenize(t, "ab", 2, 0, NULL, 0) >= 1, "count only");
    CHECK(ckls_tokenize(t, NULL, 0, 0, NULL, 0) == 0, "empty");
    CHECK(ckls_token_to_bytes(t, n_vocab, b, 4) == CKLS_EINVAL, "id past the vocabulary");
    CHECK(ckls_token_to_bytes(t, -1, b, 4) == CKLS_EINVAL, "negative id");
    int32_t bad = n_vocab;
    CHECK(ckls_detokenize(t, &bad, 1, 0, b, 4) == CKLS_EINVAL, "detokenize bad id");
    CHECK(strstr(ckls_last_error(), "outside") != NULL, "message: %s", ckls_last_error());
    ckls_tokenizer_free(t);
    ckls_tokenizer_free(NULL);

    int64_t off[3] = {0, 1, 2}, boff[3] = {0, 2, 1}, moff[2] = {0, 3};
    CHECK(ckls_tokenizer_create(2, "ab", off, NULL, 0, NULL, NULL, 9) == NULL, "unknown pre type");
    CHECK(ckls_tokenizer_create(2, "ab", boff, NULL, 0, NULL, NULL, 0) == NULL, "decreasing offsets");
    CHECK(ckls_tokenizer_create(0, "", off, NULL, 0, NULL, NULL, 0) == NULL, "empty vocabulary");
    CHECK(ckls_tokenizer_create(2, "ab", off, NULL, 1, "a b", moff, 0) == NULL, "merge result missing");
    CHECK(strstr(ckls_last_error(), "not in the vocabulary") != NULL, "message: %s", ckls_last_error());
    CHECK(ckls_tokenizer_create(2, "ab", off, NULL, 1, "a c", moff, 0) == NULL, "merge of unknown token");
    CHECK(ckls_tokenizer_create(2, "ab", off, NULL, 1, "abc", moff, 0) == NULL, "merge without a space");
    /* out-of-range types are treated as normal, a vocabulary without some bytes just drops them */
    int32_t ty[2] = {77, -3};
    t = ckls_tokenizer_create(2, "ab", off, ty, 0, NULL, NULL, 0);
    CHECK(t != NULL, "odd token types accepted");
    if (t) {
        int64_t k = ckls_tokenize(t, "axb", 3, 1, ids, 4);
        CHECK(k == 2 && ids[0] == 0 && ids[1] == 1, "missing byte dropped");
        ckls_tokenizer_free(t);
    }
}

int main(int argc, char **argv) {
    test_seed(argc, argv, "test_tokenizer");
    test_bpe_vs_reference();
    test_random_bytes_roundtrip();
    test_bad_input();
    return test_report();
}
