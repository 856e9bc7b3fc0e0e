/* Tokenizer throughput: Qwen2.5 byte-level BPE encoding MATH500 problem texts, one thread,
 * in MB/s (median of repeats), plus the linearity check: a run of N bytes with no spaces
 * (one giant pre-token) must cost ~N log N, not N^2 — reported as MB/s at 1, 4 and 10 MB.
 * usage: bench_tokenizer [SHARED_DATA_DIR] [repeats]   (prints JSON lines) */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/text.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    return v[n / 2];
}

/* Seconds to encode every text once. */
static double encode_all(const s1c_tokenizer *t, char **texts, size_t *lens, int n, long *tokens) {
    s1c_err err;
    double t0 = s1c_now();
    *tokens = 0;
    for (int i = 0; i < n; i++) {
        int32_t *ids;
        int k;
        if (s1c_tok_encode_ex(t, texts[i], lens[i], 0, &ids, &k, &err) != 0) { fprintf(stderr, "%s\n", err.msg); exit(1); }
        *tokens += k;
        free(ids);
    }
    return s1c_now() - t0;
}

int main(int argc, char **argv) {
    const char *data = argc > 1 ? argv[1] : "../shared/data";
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    char path[1024];
    snprintf(path, sizeof path, "%s/qwen2.5-tokenizer", data);
    s1c_err err;
    s1c_tokenizer *t;
    double t0 = s1c_now();
    if (s1c_tok_load(&t, path, 0, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    printf("{\"bench\":\"tokenizer_load\",\"tokenizer\":\"qwen2.5\",\"seconds\":%.3f}\n", s1c_now() - t0);

    snprintf(path, sizeof path, "%s/math500/test.jsonl", data);
    char *file = NULL;
    size_t flen;
    if (s1c_read_file(path, 64u << 20, &file, &flen, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    char *texts[600];
    size_t lens[600], bytes = 0;
    int n = 0;
    for (char *line = strtok(file, "\n"); line && n < 600; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *p = cJSON_GetObjectItem(o, "problem");
        if (cJSON_IsString(p)) { texts[n] = strdup(p->valuestring); lens[n] = strlen(texts[n]); bytes += lens[n]; n++; }
        cJSON_Delete(o);
    }
    double secs[64];
    long tokens = 0;
    encode_all(t, texts, lens, n, &tokens); /* warm-up */
    for (int r = 0; r < reps; r++) secs[r] = encode_all(t, texts, lens, n, &tokens);
    double med = median(secs, reps);
    printf("{\"bench\":\"tokenizer_encode\",\"corpus\":\"math500_problems\",\"texts\":%d,\"bytes\":%zu,\"tokens\":%ld,"
           "\"threads\":1,\"repeats\":%d,\"median_s\":%.4f,\"mb_per_s\":%.2f,\"target_mb_per_s\":20}\n",
           n, bytes, tokens, reps, med, bytes / med / 1e6);

    /* one pre-token of N letters: the merge heap keeps this O(N log N) */
    const int sizes[] = {1 << 20, 4 << 20, 10 << 20};
    for (int s = 0; s < 3; s++) {
        size_t len = (size_t)sizes[s];
        char *big = malloc(len);
        unsigned x = 1;
        for (size_t i = 0; i < len; i++) { x = x * 1103515245u + 12345u; big[i] = (char)('a' + (x >> 16) % 26); }
        long tk;
        char *one[1] = {big};
        double sec = encode_all(t, one, &len, 1, &tk);
        printf("{\"bench\":\"tokenizer_encode\",\"corpus\":\"letters_no_spaces\",\"bytes\":%zu,\"tokens\":%ld,\"seconds\":%.3f,\"mb_per_s\":%.2f}\n",
               len, tk, sec, len / sec / 1e6);
        free(big);
    }
    for (int i = 0; i < n; i++) free(texts[i]);
    free(file);
    s1c_tok_free(t);
    return 0;
}
