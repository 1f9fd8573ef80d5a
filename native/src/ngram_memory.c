/* ngram_memory.c — a bounded token memory of the user's repository (a cache n-gram / suffix-match model: Tu et
 * al. 2014, Hellendoorn & Devanbu 2017) and its mix into next-token logits (kNN-LM-style interpolation).
 *
 * Storage: the files' token streams one after another in an arena of `capacity` positions; for every position p
 * whose two preceding tokens lie in the same file, a hash chain links p to the previous position with the same
 * two-token anchor (newest first). A query hashes the context's last two tokens, walks that chain over live
 * positions, extends each match backwards (within its file and the context, up to CKLS_NGRAM_MAX_MATCH tokens)
 * and keeps the occurrences whose match is longest: their next tokens, counted, are the memory's prediction.
 *
 * Files: add(file, tokens) replaces the file's earlier tokens; remove(file) marks them dead. When live tokens
 * would exceed the capacity the oldest files are evicted; when the arena is full of dead positions it is compacted
 * (live files copied down in age order and the chains rebuilt: O(capacity), only on an add). */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

#define ANCHOR 2
#define CKLS_NGRAM_LAMBDA_CAP 0.95f

typedef struct {
    int64_t file;  /* the caller's id */
    int64_t age;   /* order of adds */
    int32_t start, len;
    int32_t live;
    int32_t hidden; /* kept, but no prediction reads it (an open document's saved copy) */
} seg_t;

struct ckls_ngram_memory {
    int32_t cap;      /* positions */
    int32_t used;     /* positions taken in the arena, live or dead */
    int64_t live;     /* live positions */
    int32_t *tok;     /* [cap] */
    int32_t *prev;    /* [cap] previous position of the same anchor bucket, -1 at the end */
    int32_t *seg;     /* [cap] index in segs */
    int32_t *heads;   /* [mask + 1] newest position per bucket, -1 empty */
    uint32_t mask;
    seg_t *segs;
    int32_t n_segs, segs_cap, n_live_files;
    int64_t clock;
};

static uint32_t anchor_hash(int32_t a, int32_t b, uint32_t mask) {
    uint64_t x = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    return (uint32_t)x & mask;
}

ckls_ngram_memory *ckls_ngram_memory_create(int32_t capacity) {
    if (capacity < 16 || capacity > CKLS_NGRAM_MAX_CAPACITY) {
        ckls_fail(CKLS_EINVAL, "ngram memory: capacity %d outside [16, %d]", (int)capacity,
                  (int)CKLS_NGRAM_MAX_CAPACITY);
        return NULL;
    }
    ckls_ngram_memory *m = calloc(1, sizeof *m);
    if (!m) goto oom;
    uint32_t n_buckets = 1;
    while (n_buckets < (uint32_t)capacity * 2u) n_buckets <<= 1;
    m->cap = capacity;
    m->mask = n_buckets - 1;
    /* calloc/malloc of big arrays: pages are touched only as the arena fills */
    m->tok = malloc(sizeof(int32_t) * (size_t)capacity);
    m->prev = malloc(sizeof(int32_t) * (size_t)capacity);
    m->seg = malloc(sizeof(int32_t) * (size_t)capacity);
    m->heads = malloc(sizeof(int32_t) * (size_t)n_buckets);
    if (!m->tok || !m->prev || !m->seg || !m->heads) goto oom;
    memset(m->heads, 0xff, sizeof(int32_t) * (size_t)n_buckets);
    return m;
oom:
    ckls_ngram_memory_free(m);
    ckls_fail(CKLS_ENOMEM, "ngram memory: out of memory for %d tokens", (int)capacity);
    return NULL;
}

void ckls_ngram_memory_free(ckls_ngram_memory *m) {
    if (!m) return;
    free(m->tok);
    free(m->prev);
    free(m->seg);
    free(m->heads);
    free(m->segs);
    free(m);
}

int32_t ckls_ngram_memory_capacity(const ckls_ngram_memory *m) { return m ? m->cap : CKLS_EINVAL; }
int64_t ckls_ngram_memory_tokens(const ckls_ngram_memory *m) { return m ? m->live : CKLS_EINVAL; }
int32_t ckls_ngram_memory_files(const ckls_ngram_memory *m) { return m ? m->n_live_files : CKLS_EINVAL; }

static int32_t find_live(const ckls_ngram_memory *m, int64_t file) {
    for (int32_t i = m->n_segs - 1; i >= 0; i--)
        if (m->segs[i].live && m->segs[i].file == file) return i;
    return -1;
}

static void kill_seg(ckls_ngram_memory *m, int32_t i) {
    m->segs[i].live = 0;
    m->live -= m->segs[i].len;
    m->n_live_files--;
}

int ckls_ngram_memory_remove(ckls_ngram_memory *m, int64_t file) {
    if (!m) return ckls_fail(CKLS_EINVAL, "ngram memory: NULL");
    const int32_t i = find_live(m, file);
    if (i < 0) return 0;
    kill_seg(m, i);
    return 1;
}

int ckls_ngram_memory_hide(ckls_ngram_memory *m, int64_t file, int hidden) {
    if (!m) return ckls_fail(CKLS_EINVAL, "ngram memory: NULL");
    const int32_t i = find_live(m, file);
    if (i < 0) return 0;
    m->segs[i].hidden = hidden != 0;
    return 1;
}

int ckls_ngram_memory_clear(ckls_ngram_memory *m) {
    if (!m) return ckls_fail(CKLS_EINVAL, "ngram memory: NULL");
    m->used = 0;
    m->live = 0;
    m->n_segs = 0;
    m->n_live_files = 0;
    memset(m->heads, 0xff, sizeof(int32_t) * ((size_t)m->mask + 1));
    return CKLS_OK;
}

/* Links positions [start + ANCHOR, start + len) of segment si into the chains. */
static void link_seg(ckls_ngram_memory *m, int32_t si) {
    const seg_t *s = &m->segs[si];
    for (int32_t p = s->start; p < s->start + s->len; p++) {
        m->seg[p] = si;
        if (p - s->start < ANCHOR) {
            m->prev[p] = -1;
            continue;
        }
        const uint32_t h = anchor_hash(m->tok[p - 2], m->tok[p - 1], m->mask);
        m->prev[p] = m->heads[h];
        m->heads[h] = p;
    }
}

/* Copies live segments down in age order (their arena order), drops dead ones, rebuilds the chains. */
static void compact(ckls_ngram_memory *m) {
    int32_t w = 0, pos = 0;
    for (int32_t i = 0; i < m->n_segs; i++) {
        seg_t s = m->segs[i];
        if (!s.live) continue;
        if (s.start != pos) memmove(m->tok + pos, m->tok + s.start, sizeof(int32_t) * (size_t)s.len);
        s.start = pos;
        pos += s.len;
        m->segs[w++] = s;
    }
    m->n_segs = w;
    m->used = pos;
    memset(m->heads, 0xff, sizeof(int32_t) * ((size_t)m->mask + 1));
    for (int32_t i = 0; i < m->n_segs; i++) link_seg(m, i);
}

int64_t ckls_ngram_memory_add(ckls_ngram_memory *m, int64_t file, const int32_t *tokens, int64_t n) {
    if (!m) return ckls_fail(CKLS_EINVAL, "ngram memory: NULL");
    if (n < 0 || (n > 0 && !tokens)) return ckls_fail(CKLS_EINVAL, "ngram memory: bad tokens (n %lld)", (long long)n);
    if (n > m->cap) n = m->cap; /* a file larger than the whole memory keeps its head */
    /* room for the segment record first, so that a failure leaves everything as it was */
    if (m->n_segs + 1 > m->segs_cap) {
        /* compaction drops dead records: try it before growing (bounded by files ever live at once + 1) */
        int32_t dead = m->n_segs - m->n_live_files;
        if (dead > 0 && dead >= m->n_segs / 2) compact(m);
        if (m->n_segs + 1 > m->segs_cap) {
            const int32_t want = m->segs_cap ? m->segs_cap * 2 : 64;
            seg_t *ns = realloc(m->segs, sizeof(seg_t) * (size_t)want);
            if (!ns) return ckls_fail(CKLS_ENOMEM, "ngram memory: out of memory for file records");
            m->segs = ns;
            m->segs_cap = want;
        }
    }
    const int32_t old = find_live(m, file);
    const int32_t was_hidden = old >= 0 && m->segs[old].hidden; /* a new copy of a hidden file stays hidden */
    if (old >= 0) kill_seg(m, old);
    if (n == 0) return 0;
    /* evict the oldest files until the new one fits among the live tokens */
    for (int32_t i = 0; i < m->n_segs && m->live + n > m->cap; i++)
        if (m->segs[i].live) kill_seg(m, i);
    if ((int64_t)m->used + n > m->cap) compact(m);
    seg_t *s = &m->segs[m->n_segs];
    s->file = file;
    s->age = m->clock++;
    s->start = m->used;
    s->len = (int32_t)n;
    s->live = 1;
    s->hidden = was_hidden;
    memcpy(m->tok + m->used, tokens, sizeof(int32_t) * (size_t)n);
    m->used += (int32_t)n;
    m->live += n;
    m->n_live_files++;
    link_seg(m, m->n_segs++);
    return n;
}

typedef struct { int32_t id, count; } idcount;

static int cmp_idcount(const void *a, const void *b) {
    const idcount *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The prediction into a caller's buffer of `cap` pairs (cap >= max_visits suffices); returns the number of
 * distinct tokens (all of them fit: at most max_visits), *match_len, *total. */
static int32_t predict(const ckls_ngram_memory *m, const int32_t *ctx, int32_t n_ctx, int32_t max_visits,
                       idcount *out, int32_t *match_len, int32_t *total) {
    *match_len = 0;
    *total = 0;
    if (n_ctx < ANCHOR || m->live == 0) return 0;
    const int32_t a = ctx[n_ctx - 2], b = ctx[n_ctx - 1];
    const int32_t max_len = n_ctx < CKLS_NGRAM_MAX_MATCH ? n_ctx : CKLS_NGRAM_MAX_MATCH;
    int32_t best = 0, n_out = 0, visits = 0;
    /* chains hold dead positions until compaction: the walk is bounded too */
    int64_t steps = 0;
    const int64_t max_steps = 16 * (int64_t)max_visits + 1024;
    for (int32_t p = m->heads[anchor_hash(a, b, m->mask)]; p >= 0 && visits < max_visits && steps < max_steps;
         p = m->prev[p], steps++) {
        const seg_t *s = &m->segs[m->seg[p]];
        if (!s->live || s->hidden || m->tok[p - 1] != b || m->tok[p - 2] != a) continue;
        visits++;
        int32_t len = ANCHOR;
        while (len < max_len && p - len - 1 >= s->start && m->tok[p - len - 1] == ctx[n_ctx - len - 1]) len++;
        if (len < best) continue;
        if (len > best) {
            best = len;
            n_out = 0;
        }
        const int32_t t = m->tok[p];
        int32_t j = 0;
        while (j < n_out && out[j].id != t) j++;
        if (j == n_out) out[n_out++] = (idcount){t, 0};
        out[j].count++;
    }
    for (int32_t j = 0; j < n_out; j++) *total += out[j].count;
    *match_len = best;
    qsort(out, (size_t)n_out, sizeof(idcount), cmp_idcount);
    return n_out;
}

static int32_t clamp_visits(int32_t v) {
    return v <= 0 ? CKLS_NGRAM_MAX_VISITS : v > CKLS_NGRAM_MAX_VISITS ? CKLS_NGRAM_MAX_VISITS : v;
}

int32_t ckls_ngram_memory_predict(const ckls_ngram_memory *m, const int32_t *ctx, int32_t n_ctx, int32_t max_visits,
                                  int32_t *ids, int32_t *counts, int32_t cap, int32_t *match_len) {
    if (!m || (n_ctx > 0 && !ctx) || n_ctx < 0 || cap < 0 || (cap > 0 && (!ids || !counts)))
        return ckls_fail(CKLS_EINVAL, "ngram memory predict: bad arguments");
    idcount buf[CKLS_NGRAM_MAX_VISITS];
    int32_t len, total;
    const int32_t n = predict(m, ctx, n_ctx, clamp_visits(max_visits), buf, &len, &total);
    for (int32_t j = 0; j < n && j < cap; j++) {
        ids[j] = buf[j].id;
        counts[j] = buf[j].count;
    }
    if (match_len) *match_len = len;
    return n;
}

float ckls_ngram_mix_weight(const ckls_ngram_mix_params *p, int32_t match_len, int32_t total, int32_t top_count) {
    if (!p || match_len < ANCHOR || total <= 0 || match_len < p->min_match) return 0.0f;
    float w = p->lambda_max;
    if (p->full_match > p->min_match) {
        const float r = (float)(match_len - p->min_match + 1) / (float)(p->full_match - p->min_match + 1);
        w *= r < 1.0f ? r : 1.0f;
    }
    if (p->count_prior > 0.0f) w *= (float)total / ((float)total + p->count_prior);
    if (p->agreement) w *= (float)top_count / (float)total;
    if (!(w > 0.0f)) return 0.0f; /* also NaN */
    return w < CKLS_NGRAM_LAMBDA_CAP ? w : CKLS_NGRAM_LAMBDA_CAP;
}

int ckls_ngram_memory_mix(const ckls_ngram_memory *m, float *logits, int32_t n_vocab, const int32_t *ctx,
                          int32_t n_ctx, const ckls_ngram_mix_params *p, float *lambda_out) {
    if (lambda_out) *lambda_out = 0.0f;
    if (!m || !logits || n_vocab <= 0 || !p || n_ctx < 0 || (n_ctx > 0 && !ctx))
        return ckls_fail(CKLS_EINVAL, "ngram memory mix: bad arguments");
    idcount buf[CKLS_NGRAM_MAX_VISITS];
    int32_t len, total;
    const int32_t n = predict(m, ctx, n_ctx, clamp_visits(p->max_visits), buf, &len, &total);
    if (n == 0) return 0;
    const float lam = ckls_ngram_mix_weight(p, len, total, buf[0].count);
    if (lam <= 0.0f) return 0;
    /* p_mix = (1 - lam) softmax(logits) + lam q. Written back as logits up to one shared constant:
     * l'_i = lse + log(exp(l_i - lse) + lam / (1 - lam) q_i) for the memory's tokens; the others keep l_i.
     * Masked (-inf) and non-finite logits stay as they are: the memory never revives a token a caller ruled out. */
    float mx = -INFINITY;
    for (int32_t i = 0; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    if (!isfinite(mx)) return 0;
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++)
        if (logits[i] > -INFINITY) sum += expf(logits[i] - mx);
    const double lse = mx + log(sum);
    const double odds = (double)lam / (1.0 - (double)lam);
    int32_t changed = 0;
    for (int32_t j = 0; j < n; j++) {
        const int32_t id = buf[j].id;
        if (id < 0 || id >= n_vocab || !isfinite(logits[id])) continue;
        const double q = (double)buf[j].count / (double)total;
        logits[id] = (float)(lse + log(exp((double)logits[id] - lse) + odds * q));
        changed++;
    }
    if (lambda_out && changed) *lambda_out = lam;
    return changed;
}
