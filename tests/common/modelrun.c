#include "modelrun.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mr_seq_alloc(mr_seq *s, s1c_kv *kv, int n_positions) {
    int bs = s1c_kv_block_size(kv);
    s->n_blocks = (n_positions + bs - 1) / bs;
    for (int i = 0; i < s->n_blocks; i++) s->blocks[i] = s1c_kv_alloc(kv);
}

int mr_forward(s1c_fwd *f, s1c_kv *kv, mr_seq *s, const int32_t *tokens, int from, int to, float *logits) {
    int n = to - from;
    int32_t *pos = malloc((size_t)n * sizeof(int32_t)), *seq = calloc((size_t)n, sizeof(int32_t));
    uint8_t *want = malloc((size_t)n);
    for (int i = 0; i < n; i++) { pos[i] = from + i; want[i] = 1; }
    s1c_seq_blocks sb = {s->blocks, s->n_blocks};
    s1c_batch b = {.n_tokens = n, .token = tokens + from, .pos = pos, .seq = seq, .logits = want, .n_seqs = 1, .seqs = &sb};
    s1c_err err;
    int rc = s1c_forward(f, kv, &b, logits, &err);
    if (rc != 0) fprintf(stderr, "forward failed: %s\n", err.msg);
    free(pos); free(seq); free(want);
    return rc;
}

float *mr_model_logits(const char *path, const int32_t *tokens, int n, bool one_at_a_time, int *vocab) {
    s1c_err err;
    s1c_model *m = NULL;
    s1c_kv *kv = NULL;
    s1c_fwd *f = NULL;
    float *logits = NULL;
    int rc = s1c_model_open(&m, path, &err);
    if (rc == 0) {
        *vocab = s1c_model_config(m)->vocab_size;
        rc = s1c_kv_new(&kv, s1c_model_config(m), 16, (n + 15) / 16 + 1, S1C_F32, &err);
    }
    if (rc == 0) rc = s1c_fwd_new(&f, m, n, n + 16, &err);
    if (rc != 0) fprintf(stderr, "%s: %s\n", path, err.msg);
    if (rc == 0 && (logits = malloc((size_t)n * (size_t)*vocab * sizeof(float)))) {
        mr_seq s;
        mr_seq_alloc(&s, kv, n);
        if (!one_at_a_time) rc = mr_forward(f, kv, &s, tokens, 0, n, logits);
        for (int i = 0; one_at_a_time && i < n && rc == 0; i++) rc = mr_forward(f, kv, &s, tokens, i, i + 1, logits + (size_t)i * (size_t)*vocab);
        if (rc != 0) free(logits), logits = NULL;
    }
    s1c_fwd_free(f);
    s1c_kv_free(kv);
    s1c_model_free(m);
    return logits;
}

int mr_read_ids(const char *path, int32_t *ids, int cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0, v;
    while (n < cap && fscanf(f, "%d", &v) == 1) ids[n++] = v;
    fclose(f);
    return n;
}
