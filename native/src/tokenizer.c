/* tokenizer.c — byte-level BPE (GPT-2 family): special-token split, hand-written pre-tokenizer regexes over
 * code points, rank-ordered merges with a binary heap, and a per-word cache.
 *
 * Semantics follow HF tokenizers (the reference the vocabularies were trained with):
 *  - control tokens are cut out of the text only with parse_special; user-defined tokens always (as HF does
 *    for non-special added tokens and llama.cpp for USER_DEFINED); leftmost match, longest first.
 *  - each remaining segment is split by the pre-type's regex, each piece BPE-merged: lowest merge rank
 *    first, leftmost on ties; llama3 takes a piece that is already a token whole (HF's ignore_merges).
 *  - invalid UTF-8 bytes split like symbols and come out as their own byte's token (lossless).
 */
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"
#include "unicode.h"

#define CACHE_SLOTS (1u << 16)       /* open-addressing slots; cleared when half full */
#define CACHE_MAX_WORD 128           /* longer pieces are not cached */
#define CACHE_BYTES (1u << 20)
#define CACHE_IDS (1u << 18)

typedef struct { uint64_t key; int32_t rank, id; } merge_slot;  /* key = left << 32 | right; empty = ~0 */
typedef struct { uint64_t hash; uint32_t koff, ioff; uint16_t klen, nids; } cache_slot; /* klen 0 = empty */

struct ckls_tokenizer {
    int32_t n_vocab, pre_type;
    char *bytes;          /* raw bytes of every token */
    int64_t *off;         /* token i = bytes[off[i] .. off[i+1]) */
    uint8_t *type;
    int64_t max_len;
    int32_t *map;         /* raw bytes -> id, open addressing, -1 empty */
    uint32_t map_mask;
    int32_t byte_id[256]; /* token of each single byte, -1 if the vocabulary lacks it */
    merge_slot *merges;
    uint32_t merge_mask;
    int32_t *special;     /* control + user-defined ids, grouped by first byte, longest first */
    int32_t special_start[257];
    pthread_mutex_t cache_lock;
    cache_slot *cache;
    uint32_t cache_used, cache_bytes_used, cache_ids_used;
    char *cache_bytes;
    int32_t *cache_ids;
};

/* ---- hashing -------------------------------------------------------------------------------------------- */
static uint64_t hash_bytes(const char *s, int64_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    memcpy(&w, s + i, (size_t)(n - i));
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33; x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33; x *= 0xC4CEB9FE1A85EC53ull;
    return x ^ (x >> 33);
}

static uint32_t pow2_at_least(uint64_t n) {
    uint32_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

static int32_t token_lookup(const ckls_tokenizer *t, const char *s, int64_t n) {
    for (uint32_t h = (uint32_t)hash_bytes(s, n) & t->map_mask;; h = (h + 1) & t->map_mask) {
        int32_t id = t->map[h];
        if (id < 0) return -1;
        if (t->off[id + 1] - t->off[id] == n && memcmp(t->bytes + t->off[id], s, (size_t)n) == 0) return id;
    }
}

static void token_insert(ckls_tokenizer *t, int32_t id) {
    const char *s = t->bytes + t->off[id];
    int64_t n = t->off[id + 1] - t->off[id];
    if (token_lookup(t, s, n) >= 0) return; /* first wins; normal tokens are inserted before special ones */
    uint32_t h = (uint32_t)hash_bytes(s, n) & t->map_mask;
    while (t->map[h] >= 0) h = (h + 1) & t->map_mask;
    t->map[h] = id;
}

static const merge_slot *merge_find(const ckls_tokenizer *t, int32_t left, int32_t right) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (uint32_t h = (uint32_t)hash_u64(key) & t->merge_mask;; h = (h + 1) & t->merge_mask) {
        const merge_slot *m = &t->merges[h];
        if (m->key == key) return m;
        if (m->key == ~0ull) return NULL;
    }
}

/* ---- GPT-2 byte <-> unicode ------------------------------------------------------------------------------ */
/* Printable Latin-1 bytes stand for themselves; the other 68 bytes map to U+0100.. in byte order. */
static int16_t unicode_to_byte[256 + 68];

static int byte_is_printable(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

static void init_byte_tables(void) {
    int n = 0;
    for (int cp = 0; cp < 256 + 68; cp++) unicode_to_byte[cp] = -1;
    for (int b = 0; b < 256; b++) {
        if (byte_is_printable(b)) unicode_to_byte[b] = (int16_t)b;
        else unicode_to_byte[256 + n++] = (int16_t)b;
    }
}

/* Undoes the byte-level text form into out (room for n bytes); code points outside the map are kept as
 * their UTF-8 (GGUFs may carry such tokens; they simply never come out of BPE). Returns bytes written. */
static int64_t byte_level_decode(const char *s, int64_t n, char *out) {
    int64_t o = 0;
    for (int64_t i = 0; i < n;) {
        uint32_t cp;
        int k = ckls_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (cp < 256 + 68 && unicode_to_byte[cp] >= 0) out[o++] = (char)unicode_to_byte[cp];
        else { memcpy(out + o, s + i, (size_t)k); o += k; }
        i += k;
    }
    return o;
}

static int type_is_special(uint8_t ty) { return ty == CKLS_TOKEN_CONTROL || ty == CKLS_TOKEN_USER_DEFINED; }

/* ---- creation ------------------------------------------------------------------------------------------- */
void ckls_tokenizer_free(ckls_tokenizer *t) {
    if (!t) return;
    free(t->bytes); free(t->off); free(t->type); free(t->map); free(t->merges); free(t->special);
    free(t->cache); free(t->cache_bytes); free(t->cache_ids);
    pthread_mutex_destroy(&t->cache_lock);
    free(t);
}

typedef struct { uint8_t first; int64_t len; int32_t id; } special_key;

static int cmp_special(const void *a, const void *b) { /* by first byte, then longest first, then id */
    const special_key *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int build_merges(ckls_tokenizer *t, int32_t n_merges, const char *merge_data, const int64_t *merge_off) {
    t->merge_mask = pow2_at_least((uint64_t)n_merges * 2 + 1) - 1;
    t->merges = malloc(((size_t)t->merge_mask + 1) * sizeof *t->merges);
    int64_t longest = 0;
    for (int32_t r = 0; r < n_merges; r++)
        if (merge_off[r + 1] - merge_off[r] > longest) longest = merge_off[r + 1] - merge_off[r];
    char *buf = malloc((size_t)longest + 8); /* decoding never grows the text */
    if (!t->merges || !buf) { free(buf); return ckls_fail(CKLS_ENOMEM, "tokenizer: out of memory for merges"); }
    memset(t->merges, 0xFF, ((size_t)t->merge_mask + 1) * sizeof *t->merges);
    int status = CKLS_OK;
    for (int32_t r = 0; r < n_merges; r++) {
        const char *m = merge_data + merge_off[r];
        int64_t n = merge_off[r + 1] - merge_off[r];
        const char *sp = n > 1 ? memchr(m + 1, ' ', (size_t)(n - 1)) : NULL;
        if (!sp || sp + 1 == m + n) {
            status = ckls_fail(CKLS_EINVAL, "tokenizer: merge %d (\"%.*s\") is not \"left right\"", r,
                               (int)(n > 200 ? 200 : n), m);
            break;
        }
        int64_t nl = sp - m, nr = n - nl - 1;
        int64_t bl = byte_level_decode(m, nl, buf), br = byte_level_decode(sp + 1, nr, buf + bl);
        int32_t left = token_lookup(t, buf, bl), right = token_lookup(t, buf + bl, br);
        int32_t id = token_lookup(t, buf, bl + br);
        if (left < 0 || right < 0) {
            status = ckls_fail(CKLS_EINVAL, "tokenizer: merge %d (\"%.*s\") refers to an unknown token", r,
                               (int)(n > 200 ? 200 : n), m);
            break;
        }
        if (id < 0) {
            status = ckls_fail(CKLS_EINVAL, "tokenizer: merge %d (\"%.*s\") gives a token not in the vocabulary",
                               r, (int)(n > 200 ? 200 : n), m);
            break;
        }
        uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
        uint32_t h = (uint32_t)hash_u64(key) & t->merge_mask;
        while (t->merges[h].key != ~0ull && t->merges[h].key != key) h = (h + 1) & t->merge_mask;
        if (t->merges[h].key == key) continue; /* a repeated merge keeps its first (best) rank */
        t->merges[h] = (merge_slot){key, r, id};
    }
    free(buf);
    return status;
}

ckls_tokenizer *ckls_tokenizer_create(int32_t n_vocab, const char *tok_data, const int64_t *tok_off,
                                      const int32_t *tok_type, int32_t n_merges, const char *merge_data,
                                      const int64_t *merge_off, int32_t pre_type) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_byte_tables);
    if (n_vocab <= 0 || !tok_data || !tok_off || n_merges < 0 || (n_merges > 0 && (!merge_data || !merge_off))) {
        ckls_fail(CKLS_EINVAL, "tokenizer: bad arguments (n_vocab %d, n_merges %d)", n_vocab, n_merges);
        return NULL;
    }
    if (pre_type != CKLS_PRE_GPT2 && pre_type != CKLS_PRE_QWEN2 && pre_type != CKLS_PRE_LLAMA3) {
        ckls_fail(CKLS_EINVAL, "tokenizer: unknown pre-tokenizer type %d", pre_type);
        return NULL;
    }
    if (tok_off[0] != 0) { ckls_fail(CKLS_EINVAL, "tokenizer: token offsets must start at 0"); return NULL; }
    for (int32_t i = 0; i < n_vocab; i++)
        if (tok_off[i + 1] < tok_off[i]) {
            ckls_fail(CKLS_EINVAL, "tokenizer: token offsets decrease at %d", i);
            return NULL;
        }
    for (int32_t i = 0; i < n_merges; i++)
        if (merge_off[0] != 0 || merge_off[i + 1] < merge_off[i]) {
            ckls_fail(CKLS_EINVAL, "tokenizer: merge offsets must start at 0 and not decrease (at %d)", i);
            return NULL;
        }
    ckls_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { ckls_fail(CKLS_ENOMEM, "tokenizer: out of memory"); return NULL; }
    pthread_mutex_init(&t->cache_lock, NULL);
    t->n_vocab = n_vocab;
    t->pre_type = pre_type;
    int64_t total = tok_off[n_vocab];
    t->bytes = malloc((size_t)total + 1);
    t->off = malloc(((size_t)n_vocab + 1) * sizeof *t->off);
    t->type = malloc((size_t)n_vocab);
    t->map_mask = pow2_at_least((uint64_t)n_vocab * 2 + 1) - 1;
    t->map = malloc(((size_t)t->map_mask + 1) * sizeof *t->map);
    t->special = malloc((size_t)n_vocab * sizeof *t->special);
    t->cache = calloc(CACHE_SLOTS, sizeof *t->cache);
    t->cache_bytes = malloc(CACHE_BYTES);
    t->cache_ids = malloc(CACHE_IDS * sizeof *t->cache_ids);
    if (!t->bytes || !t->off || !t->type || !t->map || !t->special || !t->cache || !t->cache_bytes ||
        !t->cache_ids) {
        ckls_fail(CKLS_ENOMEM, "tokenizer: out of memory for %d tokens", n_vocab);
        ckls_tokenizer_free(t);
        return NULL;
    }
    /* Raw bytes per token: normal tokens are in byte-level form, control/user-defined ones are plain text. */
    int64_t o = 0;
    int32_t n_special = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        int32_t ty = tok_type ? tok_type[i] : CKLS_TOKEN_NORMAL;
        if (ty < CKLS_TOKEN_NORMAL || ty > CKLS_TOKEN_BYTE) ty = CKLS_TOKEN_NORMAL;
        t->type[i] = (uint8_t)ty;
        t->off[i] = o;
        const char *s = tok_data + tok_off[i];
        int64_t n = tok_off[i + 1] - tok_off[i];
        if (type_is_special((uint8_t)ty)) { memcpy(t->bytes + o, s, (size_t)n); o += n; }
        else o += byte_level_decode(s, n, t->bytes + o);
        if (o - t->off[i] > t->max_len) t->max_len = o - t->off[i];
        if (type_is_special((uint8_t)ty) && o > t->off[i]) t->special[n_special++] = i;
    }
    t->off[n_vocab] = o;
    memset(t->map, 0xFF, ((size_t)t->map_mask + 1) * sizeof *t->map);
    for (int pass = 0; pass < 2; pass++)
        for (int32_t i = 0; i < n_vocab; i++)
            if (type_is_special(t->type[i]) == pass && t->off[i + 1] > t->off[i]) token_insert(t, i);
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_id[b] = token_lookup(t, &c, 1);
    }
    special_key *keys = malloc(((size_t)n_special + 1) * sizeof *keys);
    if (!keys) {
        ckls_fail(CKLS_ENOMEM, "tokenizer: out of memory");
        ckls_tokenizer_free(t);
        return NULL;
    }
    for (int32_t k = 0; k < n_special; k++) {
        int32_t id = t->special[k];
        keys[k] = (special_key){(uint8_t)t->bytes[t->off[id]], t->off[id + 1] - t->off[id], id};
    }
    qsort(keys, (size_t)n_special, sizeof *keys, cmp_special);
    for (int32_t k = 0; k < n_special; k++) t->special[k] = keys[k].id;
    free(keys);
    for (int b = 0, k = 0; b <= 256; b++) {
        while (k < n_special && (uint8_t)t->bytes[t->off[t->special[k]]] < b) k++;
        t->special_start[b] = k;
    }
    if (build_merges(t, n_merges, merge_data, merge_off) != CKLS_OK) {
        ckls_tokenizer_free(t);
        return NULL;
    }
    return t;
}

/* ---- BPE on one piece ----------------------------------------------------------------------------------- */
typedef struct { int32_t id, prev, next; } bpe_sym;
typedef struct { int32_t rank, pos, left, right; } bpe_cand;

typedef struct {          /* per-call scratch, grown on demand */
    bpe_sym *sym;
    bpe_cand *heap;
    int64_t cap;
    int32_t *ids;         /* one piece's result */
    int64_t n_ids;
} bpe_work;

static int cand_less(const bpe_cand *a, const bpe_cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(bpe_cand *h, int64_t *n, bpe_cand c) {
    int64_t i = (*n)++;
    while (i > 0) {
        int64_t p = (i - 1) >> 1;
        if (!cand_less(&c, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static bpe_cand heap_pop(bpe_cand *h, int64_t *n) {
    bpe_cand top = h[0], last = h[--(*n)];
    int64_t i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(&h[c + 1], &h[c])) c++;
        if (!cand_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

static void push_pair(const ckls_tokenizer *t, bpe_work *w, int64_t *nh, int32_t pos) {
    if (pos < 0) return;
    int32_t next = w->sym[pos].next;
    if (next < 0 || w->sym[pos].id < 0 || w->sym[next].id < 0) return;
    const merge_slot *m = merge_find(t, w->sym[pos].id, w->sym[next].id);
    if (m) heap_push(w->heap, nh, (bpe_cand){m->rank, pos, w->sym[pos].id, w->sym[next].id});
}

static int work_reserve(bpe_work *w, int64_t n) {
    if (n <= w->cap) return CKLS_OK;
    int64_t cap = n < 256 ? 256 : n * 2;
    bpe_sym *s = realloc(w->sym, (size_t)cap * sizeof *s);
    if (s) w->sym = s;
    bpe_cand *h = realloc(w->heap, (size_t)cap * 3 * sizeof *h);
    if (h) w->heap = h;
    int32_t *ids = realloc(w->ids, (size_t)cap * sizeof *ids);
    if (ids) w->ids = ids;
    if (!s || !h || !ids) return ckls_fail(CKLS_ENOMEM, "tokenizer: out of memory for a %lld-byte piece", (long long)n);
    w->cap = cap;
    return CKLS_OK;
}

/* Merges the bytes of one piece into w->ids. */
static int bpe_piece(const ckls_tokenizer *t, bpe_work *w, const char *s, int64_t n) {
    w->n_ids = 0;
    if (n > INT32_MAX / 4) return ckls_fail(CKLS_EINVAL, "tokenizer: piece of %lld bytes is too long", (long long)n);
    if (work_reserve(w, n) != CKLS_OK) return CKLS_ENOMEM;
    if (t->pre_type == CKLS_PRE_LLAMA3 && n <= t->max_len) {
        int32_t id = token_lookup(t, s, n);
        if (id >= 0 && !type_is_special(t->type[id])) { w->ids[w->n_ids++] = id; return CKLS_OK; }
    }
    bpe_sym *sym = w->sym;
    for (int32_t i = 0; i < n; i++) sym[i] = (bpe_sym){t->byte_id[(uint8_t)s[i]], i - 1, i + 1 < n ? i + 1 : -1};
    int64_t nh = 0;
    for (int32_t i = 0; i + 1 < n; i++) push_pair(t, w, &nh, i);
    while (nh > 0) {
        bpe_cand c = heap_pop(w->heap, &nh);
        int32_t next = sym[c.pos].next;
        if (sym[c.pos].id != c.left || next < 0 || sym[next].id != c.right) continue; /* stale */
        sym[c.pos].id = merge_find(t, c.left, c.right)->id;
        sym[c.pos].next = sym[next].next;
        if (sym[next].next >= 0) sym[sym[next].next].prev = c.pos;
        sym[next].id = -2; /* gone */
        push_pair(t, w, &nh, sym[c.pos].prev);
        push_pair(t, w, &nh, c.pos);
    }
    for (int32_t i = 0; i >= 0 && i < n; i = sym[i].next)
        if (sym[i].id >= 0) w->ids[w->n_ids++] = sym[i].id; /* bytes the vocabulary lacks are dropped, like HF */
    return CKLS_OK;
}

/* ---- per-piece cache ------------------------------------------------------------------------------------ */
static const cache_slot *cache_find(const ckls_tokenizer *t, const char *s, int64_t n, uint64_t h) {
    for (uint32_t i = (uint32_t)h & (CACHE_SLOTS - 1);; i = (i + 1) & (CACHE_SLOTS - 1)) {
        const cache_slot *c = &t->cache[i];
        if (c->klen == 0) return NULL;
        if (c->hash == h && c->klen == n && memcmp(t->cache_bytes + c->koff, s, (size_t)n) == 0) return c;
    }
}

static void cache_put(ckls_tokenizer *t, const char *s, int64_t n, uint64_t h, const int32_t *ids, int64_t k) {
    if (t->cache_used >= CACHE_SLOTS / 2 || t->cache_bytes_used + n > CACHE_BYTES ||
        t->cache_ids_used + k > CACHE_IDS) {
        memset(t->cache, 0, CACHE_SLOTS * sizeof *t->cache);
        t->cache_used = t->cache_bytes_used = t->cache_ids_used = 0;
    }
    uint32_t i = (uint32_t)h & (CACHE_SLOTS - 1);
    while (t->cache[i].klen) i = (i + 1) & (CACHE_SLOTS - 1);
    memcpy(t->cache_bytes + t->cache_bytes_used, s, (size_t)n);
    memcpy(t->cache_ids + t->cache_ids_used, ids, (size_t)k * sizeof *ids);
    t->cache[i] = (cache_slot){h, t->cache_bytes_used, t->cache_ids_used, (uint16_t)n, (uint16_t)k};
    t->cache_used++;
    t->cache_bytes_used += (uint32_t)n;
    t->cache_ids_used += (uint32_t)k;
}

/* ---- pre-tokenizer regexes, by hand ---------------------------------------------------------------------- */
enum { F_L = CKLS_CP_LETTER, F_N = CKLS_CP_NUMBER, F_S = CKLS_CP_SPACE, F_NL = 8 };
#define IS_P(f) (((f) & (F_L | F_N | F_S)) == 0) /* [^\s\p{L}\p{N}] */

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ — returns the end of the
 * match starting at i. */
static int64_t split_gpt2(const uint32_t *cp, const uint8_t *fl, int64_t i, int64_t n) {
    uint32_t c = cp[i];
    if (c == '\'' && i + 1 < n) {
        uint32_t d = cp[i + 1];
        if (d == 's' || d == 't' || d == 'm' || d == 'd') return i + 2;
        if (i + 2 < n) {
            uint32_t e = cp[i + 2];
            if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) return i + 3;
        }
    }
    int64_t j = (c == ' ' && i + 1 < n && !(fl[i + 1] & F_S)) ? i + 1 : i;
    uint8_t f = fl[j];
    if (f & F_L) { while (j < n && (fl[j] & F_L)) j++; return j; }
    if (f & F_N) { while (j < n && (fl[j] & F_N)) j++; return j; }
    if (IS_P(f)) { while (j < n && IS_P(fl[j])) j++; return j; }
    int64_t k = i;
    while (k < n && (fl[k] & F_S)) k++;
    return (k == n || k - i == 1) ? k : k - 1; /* a run before text leaves its last space to the text */
}

/* Oniguruma's case-insensitive match of the contraction letters: ASCII case plus U+017F (long s ~ s). */
static uint32_t fold(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    return c == 0x17F ? 's' : c;
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+ — Qwen2 (max_digits 1) and Llama 3 (3). */
static int64_t split_qwen2(const uint32_t *cp, const uint8_t *fl, int64_t i, int64_t n, int max_digits) {
    uint32_t c = cp[i];
    if (c == '\'' && i + 1 < n) {
        uint32_t d = fold(cp[i + 1]);
        if (d == 's' || d == 't' || d == 'm' || d == 'd') return i + 2;
        if (i + 2 < n) {
            uint32_t e = fold(cp[i + 2]);
            if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) return i + 3;
        }
    }
    uint8_t f = fl[i];
    int64_t j;
    if (!(f & (F_L | F_N | F_NL)) && i + 1 < n && (fl[i + 1] & F_L)) {
        for (j = i + 2; j < n && (fl[j] & F_L); j++) {}
        return j;
    }
    if (f & F_L) { for (j = i + 1; j < n && (fl[j] & F_L); j++) {} return j; }
    if (f & F_N) { for (j = i + 1; j < n && j - i < max_digits && (fl[j] & F_N); j++) {} return j; }
    j = (c == ' ' && i + 1 < n && IS_P(fl[i + 1])) ? i + 1 : i;
    if (IS_P(fl[j])) {
        while (j < n && IS_P(fl[j])) j++;
        while (j < n && (fl[j] & F_NL)) j++;
        return j;
    }
    int64_t k = i, last_nl = -1;
    for (; k < n && (fl[k] & F_S); k++)
        if (fl[k] & F_NL) last_nl = k;
    if (last_nl >= 0) return last_nl + 1; /* \s*[\r\n]+ ends after the run's last line break */
    return (k == n || k - i == 1) ? k : k - 1;
}

typedef struct {
    ckls_tokenizer *t;
    int use_cache;
    bpe_work w;
    uint32_t *cp;
    uint8_t *fl;
    int64_t *boff;   /* byte offset of each code point (+ end) */
    int64_t cap_cp;
    int32_t *out;
    int64_t *ends;      /* pre-tokenize only: piece end offsets instead of ids */
    const char *text;
    int64_t cap, count;
} enc_ctx;

static void emit_end(enc_ctx *e, const char *end) {
    if (e->count < e->cap) e->ends[e->count] = end - e->text;
    e->count++;
}

static void emit(enc_ctx *e, const int32_t *ids, int64_t k) {
    for (int64_t i = 0; i < k; i++) {
        if (e->count < e->cap) e->out[e->count] = ids[i];
        e->count++;
    }
}

static int encode_piece(enc_ctx *e, const char *s, int64_t n) {
    ckls_tokenizer *t = e->t;
    if (n == 1 && t->byte_id[(uint8_t)s[0]] >= 0) { emit(e, &t->byte_id[(uint8_t)s[0]], 1); return CKLS_OK; }
    uint64_t h = 0;
    if (e->use_cache && n <= CACHE_MAX_WORD) {
        h = hash_bytes(s, n);
        const cache_slot *c = cache_find(t, s, n, h);
        if (c) { emit(e, t->cache_ids + c->ioff, c->nids); return CKLS_OK; }
    }
    if (bpe_piece(t, &e->w, s, n) != CKLS_OK) return CKLS_ENOMEM;
    if (e->use_cache && n <= CACHE_MAX_WORD) cache_put(t, s, n, h, e->w.ids, e->w.n_ids);
    emit(e, e->w.ids, e->w.n_ids);
    return CKLS_OK;
}

/* Pre-tokenizes and encodes one segment free of special tokens. */
static int encode_segment(enc_ctx *e, const char *s, int64_t len) {
    if (len == 0) return CKLS_OK;
    if (len + 1 > e->cap_cp) {
        int64_t cap = len + 1 < 4096 ? 4096 : (len + 1) * 2;
        uint32_t *cp = realloc(e->cp, (size_t)cap * sizeof *cp);
        if (cp) e->cp = cp;
        uint8_t *fl = realloc(e->fl, (size_t)cap);
        if (fl) e->fl = fl;
        int64_t *bo = realloc(e->boff, (size_t)cap * sizeof *bo);
        if (bo) e->boff = bo;
        if (!cp || !fl || !bo) return ckls_fail(CKLS_ENOMEM, "tokenizer: out of memory for %lld bytes", (long long)len);
        e->cap_cp = cap;
    }
    int64_t n = 0;
    for (int64_t i = 0; i < len; n++) {
        uint32_t c;
        int k = ckls_utf8_decode((const uint8_t *)s + i, len - i, &c);
        e->cp[n] = c;
        e->fl[n] = (uint8_t)((c < CKLS_CP_INVALID_BASE ? ckls_cp_flags(c) : 0) | (c == '\r' || c == '\n' ? F_NL : 0));
        e->boff[n] = i;
        i += k;
    }
    e->boff[n] = len;
    const int pre = e->t->pre_type;
    for (int64_t i = 0; i < n;) {
        int64_t j = pre == CKLS_PRE_GPT2 ? split_gpt2(e->cp, e->fl, i, n)
                                         : split_qwen2(e->cp, e->fl, i, n, pre == CKLS_PRE_LLAMA3 ? 3 : 1);
        int st = CKLS_OK;
        if (e->ends) emit_end(e, s + e->boff[j]);
        else st = encode_piece(e, s + e->boff[i], e->boff[j] - e->boff[i]);
        if (st != CKLS_OK) return st;
        i = j;
    }
    return CKLS_OK;
}

/* Longest special token starting at s (NULL-free id or -1). */
static int32_t match_special(const ckls_tokenizer *t, const char *s, int64_t n, int parse_special) {
    uint8_t b = (uint8_t)s[0];
    for (int32_t k = t->special_start[b]; k < t->special_start[b + 1]; k++) {
        int32_t id = t->special[k];
        int64_t len = t->off[id + 1] - t->off[id];
        if (!parse_special && t->type[id] == CKLS_TOKEN_CONTROL) continue;
        if (len <= n && memcmp(t->bytes + t->off[id], s, (size_t)len) == 0) return id;
    }
    return -1;
}

static int64_t run(ckls_tokenizer *t, const char *text, int64_t len, int32_t parse_special, int32_t *out,
                   int64_t *ends, int64_t cap) {
    if (!t || len < 0 || (len > 0 && !text) || cap < 0 || (cap > 0 && !out && !ends))
        return ckls_fail(CKLS_EINVAL, "tokenize: bad arguments (len %lld, cap %lld)", (long long)len, (long long)cap);
    enc_ctx e = {.t = t, .out = out, .ends = ends, .text = text, .cap = cap};
    e.use_cache = !ends && pthread_mutex_trylock(&t->cache_lock) == 0; /* a concurrent caller goes uncached */
    int status = CKLS_OK;
    int has_special = t->special_start[256] > 0;
    int64_t seg = 0;
    for (int64_t i = 0; has_special && i < len && status == CKLS_OK;) {
        int32_t id = match_special(t, text + i, len - i, parse_special);
        if (id < 0) { i++; continue; }
        status = encode_segment(&e, text + seg, i - seg);
        i += t->off[id + 1] - t->off[id];
        if (ends) emit_end(&e, text + i);
        else emit(&e, &id, 1);
        seg = i;
    }
    if (status == CKLS_OK) status = encode_segment(&e, text + seg, len - seg);
    if (e.use_cache) pthread_mutex_unlock(&t->cache_lock);
    free(e.w.sym); free(e.w.heap); free(e.w.ids); free(e.cp); free(e.fl); free(e.boff);
    return status == CKLS_OK ? e.count : status;
}

int64_t ckls_tokenize(ckls_tokenizer *t, const char *text, int64_t len, int32_t parse_special, int32_t *out,
                      int64_t cap) {
    return run(t, text, len, parse_special, out, NULL, cap);
}

int64_t ckls_pretokenize(ckls_tokenizer *t, const char *text, int64_t len, int32_t parse_special, int64_t *ends,
                         int64_t cap) {
    return run(t, text, len, parse_special, NULL, ends, cap);
}

int64_t ckls_token_to_bytes(const ckls_tokenizer *t, int32_t id, char *out, int64_t cap) {
    if (!t || id < 0 || id >= t->n_vocab || cap < 0 || (cap > 0 && !out))
        return ckls_fail(CKLS_EINVAL, "token_to_bytes: bad token id %d or buffer", id);
    int64_t n = t->off[id + 1] - t->off[id];
    memcpy(out, t->bytes + t->off[id], (size_t)(n < cap ? n : cap));
    return n;
}

int64_t ckls_detokenize(const ckls_tokenizer *t, const int32_t *ids, int64_t n_ids, int32_t skip_control,
                        char *out, int64_t cap) {
    if (!t || n_ids < 0 || (n_ids > 0 && !ids) || cap < 0 || (cap > 0 && !out))
        return ckls_fail(CKLS_EINVAL, "detokenize: bad arguments");
    int64_t o = 0;
    for (int64_t i = 0; i < n_ids; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab)
            return ckls_fail(CKLS_EINVAL, "detokenize: token id %d at %lld outside [0, %d)", id, (long long)i,
                             t->n_vocab);
        if (skip_control && t->type[id] == CKLS_TOKEN_CONTROL) continue;
        int64_t n = t->off[id + 1] - t->off[id];
        if (o < cap) memcpy(out + o, t->bytes + t->off[id], (size_t)(o + n <= cap ? n : cap - o));
        o += n;
    }
    return o;
}

int32_t ckls_tokenizer_n_vocab(const ckls_tokenizer *t) { return t ? t->n_vocab : 0; }

const char *ckls_tokenizer_unicode_version(void) { return ckls_unicode_version; }
