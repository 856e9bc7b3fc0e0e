#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("s1c: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
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
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20) fprintf(f, "\\u%04x", c);
            else fputc(c, f);
        }
    }
    fputc('"', f);
}
