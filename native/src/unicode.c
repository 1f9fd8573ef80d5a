/* unicode.c — strict UTF-8 decoding and code point class lookup (Latin-1 table, then binary search). */
#include "unicode.h"

uint8_t ckls_cp_flags(uint32_t cp) {
    if (cp < 256) return ckls_unicode_latin1[cp];
    int32_t lo = 0, hi = ckls_unicode_n_ranges - 1;
    while (lo <= hi) {
        int32_t mid = (lo + hi) >> 1;
        const ckls_unicode_range *r = &ckls_unicode_ranges[mid];
        if (cp < r->first) hi = mid - 1;
        else if (cp > r->last) lo = mid + 1;
        else return r->flags;
    }
    return 0;
}

int ckls_utf8_decode(const uint8_t *s, int64_t n, uint32_t *cp) {
    uint8_t b = s[0];
    if (b < 0x80) { *cp = b; return 1; }
    int len;
    uint32_t v, min;
    if ((b & 0xE0) == 0xC0) { len = 2; v = b & 0x1F; min = 0x80; }
    else if ((b & 0xF0) == 0xE0) { len = 3; v = b & 0x0F; min = 0x800; }
    else if ((b & 0xF8) == 0xF0) { len = 4; v = b & 0x07; min = 0x10000; }
    else goto invalid;
    if (n < len) goto invalid;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) goto invalid;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) goto invalid;
    *cp = v;
    return len;
invalid:
    *cp = CKLS_CP_INVALID_BASE + b;
    return 1;
}

int ckls_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
