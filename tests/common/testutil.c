#include "testutil.h"
#include "s1c/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

const char *tu_env(const char *name) {
    const char *v = getenv(name);
    if (!v) {
        fprintf(stderr, "environment variable %s is not set (run the tests through ctest)\n", name);
        exit(1);
    }
    return v;
}

char *tu_path(const char *env, const char *rel) {
    const char *base = tu_env(env);
    size_t n = strlen(base) + strlen(rel) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", base, rel);
    return p;
}

char *tu_read(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) { fclose(f); free(buf); return NULL; }
    fclose(f);
    buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

int tu_write(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int bad = fwrite(data, 1, len, f) != len;
    return fclose(f) != 0 || bad ? -1 : 0;
}

int tu_system(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

double tu_max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as the max */
    }
    return m;
}

void tu_check_qwen2_vectors(const s1c_tokenizer *t, const char *what) {
    char *ip = tu_path("S1C_DATA", "llama.cpp-qwen2-vocab-test/ggml-vocab-qwen2.gguf.inp");
    char *op = tu_path("S1C_DATA", "llama.cpp-qwen2-vocab-test/ggml-vocab-qwen2.gguf.out");
    char *inp = tu_read(ip, NULL), *out = tu_read(op, NULL);
    assert_non_null(inp);
    assert_non_null(out);
    const char *sep = "\n__ggml_vocab_test__\n";
    char *p = inp, *line = out;
    for (int k = 0; k < 46; k++) {
        char *e = strstr(p, sep), *nl = strchr(line, '\n');
        assert_non_null(e);
        assert_non_null(nl);
        *nl = 0;
        int32_t *ids;
        int n;
        s1c_err err;
        assert_int_equal(s1c_tok_encode_ex(t, p, (size_t)(e - p), 0, &ids, &n, &err), 0);
        char got[8192] = {0};
        size_t g = 0;
        for (int i = 0; i < n; i++) g += (size_t)snprintf(got + g, sizeof got - g, " %d", ids[i]);
        if (strcmp(got, line) != 0) fail_msg("%s: vector %d %.30s: got%s\nwant%s", what, k, p, got, line);
        free(ids);
        p = e + strlen(sep);
        line = nl + 1;
    }
    free(inp); free(out); free(ip); free(op);
}
