/* Streaming detokenization: never emit half a UTF-8 character. */
#include <stdlib.h>
#include <string.h>

#include "s1c/text.h"

/* Expected length of a sequence starting with lead byte c; 0 for a byte that cannot start one. */
static int utf8_len(uint8_t c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

int s1c_detok_push(s1c_detok *d, const char *bytes, int n, char *out, int cap) {
    int k = 0;
    for (int i = 0; i < n && k < cap; i++) {
        uint8_t c = (uint8_t)bytes[i];
        if (d->n_pending > 0) {
            if ((c & 0xC0) == 0x80) {
                d->pending[d->n_pending++] = (char)c;
                if (d->n_pending == utf8_len((uint8_t)d->pending[0])) {
                    for (int j = 0; j < d->n_pending && k < cap; j++) out[k++] = d->pending[j];
                    d->n_pending = 0;
                }
                continue;
            }
            /* the held sequence was cut short: pass its bytes through as they are */
            for (int j = 0; j < d->n_pending && k < cap; j++) out[k++] = d->pending[j];
            d->n_pending = 0;
        }
        int l = utf8_len(c);
        if (l <= 1) out[k++] = (char)c; /* ASCII, or a stray byte passed through */
        else d->pending[d->n_pending++] = (char)c;
    }
    return k;
}

int s1c_detok_flush(s1c_detok *d, char *out, int cap) {
    int k = 0;
    for (int j = 0; j < d->n_pending && k < cap; j++) out[k++] = d->pending[j];
    d->n_pending = 0;
    return k;
}

char *s1c_tok_decode_range(const s1c_tokenizer *t, const int32_t *tokens, int from, int to, int prev, size_t *len) {
    size_t cap = 256, n = 0;
    char *buf = malloc(cap), piece[512], ready[600];
    s1c_detok d = {0};
    for (int i = from; i < to && buf; i++) {
        int k = tokens[i] == s1c_tok_eos(t) ? 0 : s1c_tok_decode(t, i > 0 ? tokens[i - 1] : prev, tokens[i], piece, (int)sizeof piece);
        k = s1c_detok_push(&d, piece, k, ready, (int)sizeof ready);
        if (i + 1 == to) k += s1c_detok_flush(&d, ready + k, (int)sizeof ready - k);
        while (buf && n + (size_t)k + 1 > cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
        if (buf) { memcpy(buf + n, ready, (size_t)k); n += (size_t)k; }
    }
    if (buf) buf[n] = 0;
    if (len) *len = buf ? n : 0;
    return buf;
}
