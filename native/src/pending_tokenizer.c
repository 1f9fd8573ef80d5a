/* PENDING — placeholder so the tree links while tokenizer.c is written; delete when it exists. */
#include "internal.h"

ckls_tokenizer *ckls_tokenizer_create(int32_t n_vocab, const char *tok_data, const int64_t *tok_off,
                                      const int32_t *tok_type, int32_t n_merges, const char *merge_data,
                                      const int64_t *merge_off, int32_t pre_type) {
    ckls_fail(CKLS_EINVAL, "tokenizer not built yet");
    return NULL;
}
void ckls_tokenizer_free(ckls_tokenizer *t) {}
int64_t ckls_tokenize(ckls_tokenizer *t, const char *text, int64_t len, int32_t parse_special, int32_t *out,
                      int64_t cap) { return CKLS_EINVAL; }
int64_t ckls_token_to_bytes(const ckls_tokenizer *t, int32_t id, char *out, int64_t cap) { return CKLS_EINVAL; }
