/* unicode.h — UTF-8 decoding and the code point classes the pre-tokenizer regexes use. */
#ifndef CKLS_UNICODE_H
#define CKLS_UNICODE_H

#include <stdint.h>

enum { CKLS_CP_LETTER = 1, CKLS_CP_NUMBER = 2, CKLS_CP_SPACE = 4 };

/* Invalid UTF-8: each offending byte becomes its own code point above Unicode (0x110000 + byte), classed as
 * neither letter, number nor space, so it splits like a symbol and keeps its original byte. */
#define CKLS_CP_INVALID_BASE 0x110000u

typedef struct { uint32_t first, last; uint8_t flags; } ckls_unicode_range;

extern const char ckls_unicode_version[];
extern const uint8_t ckls_unicode_latin1[256];
extern const int32_t ckls_unicode_n_ranges;
extern const ckls_unicode_range ckls_unicode_ranges[];

/* Class flags of a code point (0 for unassigned, symbols, punctuation and invalid bytes). */
uint8_t ckls_cp_flags(uint32_t cp);

/* Decodes one code point at s[0..n) (n > 0) into *cp; returns bytes consumed (1..4). Overlong forms,
 * surrogates, values past U+10FFFF and truncated sequences consume one byte, giving CKLS_CP_INVALID_BASE + b. */
int ckls_utf8_decode(const uint8_t *s, int64_t n, uint32_t *cp);

/* Encodes a code point (<= U+10FFFF) as UTF-8 into out (4 bytes room); returns the length. */
int ckls_utf8_encode(uint32_t cp, char *out);

#endif /* CKLS_UNICODE_H */
