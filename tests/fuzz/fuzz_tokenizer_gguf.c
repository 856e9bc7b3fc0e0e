/* libFuzzer target: loading a tokenizer from GGUF metadata, then encoding and decoding.
 * Vocabularies from a file may hold empty pieces, duplicate pieces, huge pieces, odd token
 * types and out-of-range special ids; none of that may crash encode or decode. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/formats.h"
#include "s1c/text.h"

static volatile uint64_t sink;

/* Texts that reach the interesting paths: plain words, merges, multi-byte UTF-8, bytes that
 * need the byte fallback, invalid UTF-8, and the empty string. */
static const char *const texts[] = {
    "Once upon a time", " hello  world ", "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80", "\xff\xfe\x80", "<0x41><s>", "",
};

static uint64_t encode_decode(const s1c_tokenizer *t, const char *text) {
    int32_t *ids = NULL;
    int n = 0;
    s1c_err err = {{0}};
    if (s1c_tok_encode(t, text, true, &ids, &n, &err) != 0) {
        if (err.msg[0] == 0) __builtin_trap(); /* a failure must say why */
        return 1;
    }
    uint64_t s = (uint64_t)n;
    char buf[64], out[256];
    s1c_detok d = {0};
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= s1c_tok_n_vocab(t)) __builtin_trap(); /* ids index the vocabulary */
        /* a small buffer on purpose: decode must respect cap */
        int k = s1c_tok_decode(t, i ? ids[i - 1] : -1, ids[i], buf, (int)sizeof buf);
        if (k < 0 || k > (int)sizeof buf) __builtin_trap();
        s += (uint64_t)s1c_detok_push(&d, buf, k, out, (int)sizeof out);
    }
    s += (uint64_t)s1c_detok_flush(&d, out, (int)sizeof out);
    free(ids);
    return s;
}

static uint64_t exercise(const s1c_tokenizer *t) {
    uint64_t s = (uint64_t)s1c_tok_bos(t) + (uint64_t)s1c_tok_eos(t);
    /* decode every piece (after "no token" and after BOS) and a few out-of-range ids; into
     * a 3-byte buffer too, which most pieces overflow unless decode respects cap */
    char small[3], buf[64];
    for (int id = -2; id < s1c_tok_n_vocab(t) + 2; id++) {
        s += (uint64_t)s1c_tok_decode(t, -1, id, small, (int)sizeof small);
        s += (uint64_t)s1c_tok_decode(t, -1, id, buf, (int)sizeof buf);
        s += (uint64_t)s1c_tok_decode(t, s1c_tok_bos(t), id, buf, (int)sizeof buf);
    }
    if (s1c_tok_can_encode(t))
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) s += encode_decode(t, texts[i]);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file g;
    memset(&g, 0, sizeof g);
    s1c_err err = {{0}};
    if (gguf_parse(&g, data, size, "<fuzz>", &err) == 0) {
        s1c_tokenizer *t = NULL;
        if (s1c_tok_load_gguf(&t, &g, &err) == 0) {
            sink = exercise(t);
            s1c_tok_free(t);
        } else if (err.msg[0] == 0) {
            __builtin_trap();
        }
    }
    gguf_close(&g);
    return 0;
}
