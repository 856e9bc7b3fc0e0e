/* s1c tokenize: text on stdin → ids (one line, single spaces), or ids → text (--decode). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "s1c/text.h"

static const char *tokenize_help =
    "usage: s1c tokenize --tokenizer PATH [--special] [--bos] < text\n"
    "       s1c tokenize --tokenizer PATH --decode < ids\n"
    "\n"
    "  --tokenizer PATH  a Hugging Face directory, a tokenizer.json, a .gguf, or a llama2.c tok512.bin\n"
    "  --special         match special/added tokens such as <|im_start|> in the text\n"
    "  --bos             prepend the BOS token (if the vocabulary has one)\n"
    "  --decode          read token ids (space, comma or newline separated) and print the text\n"
    "\n"
    "The whole of stdin is one text (newlines included). It must be UTF-8.\n"
    "example:\n"
    "  printf 'Hello world' | s1c tokenize --tokenizer ../shared/data/qwen2.5-tokenizer\n";

#define MAX_INPUT (1u << 30)

static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) break;
        if (n == cap) { /* keep room for the terminating NUL */
            if (cap >= MAX_INPUT) { free(buf); return NULL; }
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); return NULL; }
            buf = nb;
        }
    }
    if (buf && n == cap) {
        char *nb = realloc(buf, cap + 1);
        if (!nb) { free(buf); return NULL; }
        buf = nb;
    }
    if (buf) buf[n] = 0; /* --decode parses it as a string */
    *len = n;
    return buf;
}

/* Offset of the first byte that is not valid UTF-8, or -1. */
static long invalid_utf8_at(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (len == 0 || i + len > n) return (long)i;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return (long)i;
        if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F) || (c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F))
            return (long)i;
        i += len;
    }
    return -1;
}

static int decode_ids(const s1c_tokenizer *tok, const char *in) {
    s1c_detok d = {0};
    char piece[1024], ready[1100];
    int prev = -1;
    for (const char *p = in; *p;) {
        while (*p == ' ' || *p == ',' || *p == '\n' || *p == '\t' || *p == '\r') p++;
        if (!*p) break;
        char *end;
        long id = strtol(p, &end, 10);
        if (end == p || id < 0 || id >= s1c_tok_n_vocab(tok)) return cli_error("tokenize --decode: '%.16s' is not a token id in [0, %d)", p, s1c_tok_n_vocab(tok));
        int n = s1c_tok_decode(tok, prev, (int)id, piece, (int)sizeof piece);
        n = s1c_detok_push(&d, piece, n, ready, (int)sizeof ready);
        fwrite(ready, 1, (size_t)n, stdout);
        prev = (int)id;
        p = end;
    }
    int n = s1c_detok_flush(&d, ready, (int)sizeof ready);
    fwrite(ready, 1, (size_t)n, stdout);
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL;
    bool special = false, bos = false, decode = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(tokenize_help, stdout); return 0; }
        else if (!strcmp(a, "--tokenizer")) { if (!arg_str(argc, argv, &i, &path)) return 1; }
        else if (!strcmp(a, "--special")) special = true;
        else if (!strcmp(a, "--bos")) bos = true;
        else if (!strcmp(a, "--decode")) decode = true;
        else return cli_error("tokenize: unknown option '%s' (see s1c tokenize --help)", a);
    }
    if (!path) return cli_error("tokenize: --tokenizer PATH is required");
    s1c_err err = {{0}};
    s1c_tokenizer *tok;
    if (s1c_tok_load(&tok, path, 0, &err) != 0) return cli_error("%s", err.msg);
    size_t len;
    char *in = read_stdin(&len);
    int rc = 0;
    if (!in) rc = cli_error("tokenize: cannot read stdin (out of memory or over 1 GiB)");
    else if (decode) {
        if (memchr(in, 0, len)) rc = cli_error("tokenize --decode: stdin holds a NUL byte");
        else rc = decode_ids(tok, in);
    } else {
        long bad = invalid_utf8_at((const unsigned char *)in, len);
        int32_t *ids = NULL;
        int n = 0;
        if (bad >= 0) rc = cli_error("tokenize: stdin is not valid UTF-8 (byte %ld)", bad);
        else if (s1c_tok_encode_ex(tok, in, len, (special ? S1C_ENC_SPECIAL : 0) | (bos ? S1C_ENC_BOS : 0), &ids, &n, &err) != 0)
            rc = cli_error("%s", err.msg);
        else {
            for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
            printf("\n");
        }
        free(ids);
    }
    free(in);
    s1c_tok_free(tok);
    return rc;
}
