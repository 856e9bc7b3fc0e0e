#include "jsonl.h"

#include <stdlib.h>

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

ssize_t jsonl_next(jsonl_in *in) {
    ssize_t got;
    while ((got = getline(&in->line, &in->cap, stdin)) != -1) {
        in->lineno++;
        size_t n = (size_t)got, k = 0;
        while (n && (in->line[n - 1] == '\n' || in->line[n - 1] == '\r')) n--;
        while (k < n && is_space(in->line[k])) k++;
        if (k < n) return (ssize_t)n;
    }
    return -1;
}

void jsonl_close(jsonl_in *in) {
    free(in->line);
    in->line = NULL;
    in->cap = 0;
}

const char *jsonl_open_object(const char *line, size_t n, FILE *out) {
    while (n && is_space(line[n - 1])) n--;
    n--; /* the closing brace */
    size_t k = n;
    while (k && is_space(line[k - 1])) k--;
    fwrite(line, 1, n, out);
    return k && line[k - 1] == '{' ? "" : ",";
}
