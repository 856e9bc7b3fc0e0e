#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "s1c/base.h"
#include "s1c/formats.h"
#include "s1c/model.h"

int cli_error(const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* one line, whatever a file's tensor names or keys contain: control bytes become '?' */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    fprintf(stderr, "s1c: %s\n", msg);
    return 1;
}

bool arg_str(int argc, char **argv, int *i, const char **out) {
    if (*i + 1 >= argc) {
        cli_error("%s needs a value", argv[*i]);
        return false;
    }
    *out = argv[++*i];
    return true;
}

bool arg_kv_type(int argc, char **argv, int *i, int *out) {
    const char *name;
    if (!arg_str(argc, argv, i, &name)) return false;
    if (!strcmp(name, "auto")) *out = S1C_KV_AUTO;
    else if (!strcmp(name, "f32")) *out = S1C_F32;
    else if (!strcmp(name, "f16")) *out = S1C_F16;
    else if (!strcmp(name, "bf16")) *out = S1C_BF16;
    else {
        cli_error("--kv-type must be auto, f32, f16 or bf16, not '%s'", name);
        return false;
    }
    return true;
}

bool arg_bf16_math(int argc, char **argv, int *i, bool *dot) {
    const char *name;
    if (!arg_str(argc, argv, i, &name)) return false;
    if (strcmp(name, "exact") != 0 && strcmp(name, "dot") != 0) {
        cli_error("--bf16-math must be exact or dot, not '%s'", name);
        return false;
    }
    *dot = !strcmp(name, "dot");
    return true;
}

bool arg_int(int argc, char **argv, int *i, long lo, long hi, int *out) {
    const char *flag = argv[*i], *v;
    if (!arg_str(argc, argv, i, &v)) return false;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        cli_error("%s: '%s' is not an integer in [%ld, %ld]", flag, v, lo, hi);
        return false;
    }
    *out = (int)x;
    return true;
}

bool arg_u64(int argc, char **argv, int *i, uint64_t *out) {
    const char *flag = argv[*i], *v;
    if (!arg_str(argc, argv, i, &v)) return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-') {
        cli_error("%s: '%s' is not a non-negative integer", flag, v);
        return false;
    }
    *out = x;
    return true;
}

bool arg_float(int argc, char **argv, int *i, double lo, double hi, float *out) {
    const char *flag = argv[*i], *v;
    if (!arg_str(argc, argv, i, &v)) return false;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < lo || x > hi) {
        cli_error("%s: '%s' is not a number in [%g, %g]", flag, v, lo, hi);
        return false;
    }
    *out = (float)x;
    return true;
}


void json_write_str(void *fp, const char *s, size_t n) {
    FILE *f = fp;
    const unsigned char *u = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t len = s1c_utf8_len(u + i, n - i);
        if (len == 0) { /* JSON text must be UTF-8: a byte that is not becomes U+FFFD */
            fputs("\\ufffd", f);
            i++;
            continue;
        }
        if (len > 1) {
            fwrite(u + i, 1, len, f);
            i += len;
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
            else fputc(c, f);
        }
        i++;
    }
    fputc('"', f);
}

int cli_print_stream(void *user, const char *text, int n) {
    (void)user;
    fwrite(text, 1, (size_t)n, stdout);
    fflush(stdout);
    return 0;
}
