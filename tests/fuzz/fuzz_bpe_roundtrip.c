/* libFuzzer target: Qwen2.5's byte-level BPE on arbitrary bytes. Encoding never fails, and
 * decoding gives back the input with its valid UTF-8 runs in NFC (Hugging Face normalizes)
 * and every other byte unchanged. The tokenizer is loaded once from $S1C_DATA (default
 * ../shared/data relative to the working directory). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "s1c/text.h"

static s1c_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *data = getenv("S1C_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/qwen2.5-tokenizer", data ? data : "../shared/data");
    s1c_err err;
    if (s1c_tok_load(&tok, path, 0, &err) != 0) {
        fprintf(stderr, "fuzz_bpe_roundtrip: %s\n", err.msg);
        exit(1);
    }
    return 0;
}

/* What the round trip must give: NFC of each valid UTF-8 run, other bytes as they are. */
static size_t expected(const uint8_t *s, size_t n, uint8_t *out) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        utf8proc_int32_t cp;
        for (utf8proc_ssize_t l; j < n && (l = utf8proc_iterate(s + j, (utf8proc_ssize_t)(n - j), &cp)) > 0;) j += (size_t)l;
        if (j == i) { out[k++] = s[i++]; continue; }
        uint8_t *nfc = NULL;
        utf8proc_ssize_t l = utf8proc_map(s + i, (utf8proc_ssize_t)(j - i), &nfc, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (l < 0) __builtin_trap();
        memcpy(out + k, nfc, (size_t)l);
        k += (size_t)l;
        free(nfc);
        i = j;
    }
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    int32_t *ids;
    int n;
    s1c_err err;
    if (s1c_tok_encode_ex(tok, (const char *)data, size, 0, &ids, &n, &err) != 0) __builtin_trap();
    /* NFC may lengthen text: at most 3x per code point (Unicode's bound) */
    uint8_t *want = malloc(size * 3 + 16), *got = malloc(size * 4 + 64);
    size_t wl = expected(data, size, want), gl = 0;
    s1c_detok d = {0};
    for (int i = 0; i < n; i++) {
        char piece[512];
        int pl = s1c_tok_decode(tok, i ? ids[i - 1] : -1, ids[i], piece, (int)sizeof piece);
        gl += (size_t)s1c_detok_push(&d, piece, pl, (char *)got + gl, 600);
    }
    gl += (size_t)s1c_detok_flush(&d, (char *)got + gl, 16);
    if (gl != wl || memcmp(got, want, wl) != 0) __builtin_trap();
    free(want);
    free(got);
    free(ids);
    return 0;
}
