#include "modelrun.h"

#include "s1c/formats.h"
#include "testutil.h"

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

static float *mr_randv(s1c_rng *r, size_t n, float scale) {
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = scale * s1c_rng_normal(r);
    return v;
}

void mr_write_qwen2(const char *path, const mr_shape *sh, int dt, bool f32, uint64_t seed, mr_matrix_fn make) {
    const int E = sh->E, F = sh->F, L = sh->L, H = sh->H, KVH = sh->KVH, HD = sh->HD, V = sh->V;
    if (L > 8) {
        fprintf(stderr, "mr_write_qwen2: at most 8 layers\n");
        abort();
    }
    s1c_rng r;
    s1c_rng_seed(&r, seed);
    gguf_writer *w = gguf_writer_new();
    gguf_w_str(w, "general.architecture", "qwen2");
    gguf_w_u32(w, "qwen2.context_length", 256);
    gguf_w_u32(w, "qwen2.embedding_length", E);
    gguf_w_u32(w, "qwen2.block_count", L);
    gguf_w_u32(w, "qwen2.feed_forward_length", F);
    gguf_w_u32(w, "qwen2.attention.head_count", H);
    gguf_w_u32(w, "qwen2.attention.head_count_kv", KVH);
    gguf_w_f32(w, "qwen2.rope.freq_base", 1e6f);
    gguf_w_f32(w, "qwen2.attention.layer_norm_rms_epsilon", 1e-6f);
    void *bufs[2 * 3 + 7 * 2 * 8 + 5 * 8]; /* up to 8 layers */
    int nbuf = 0;
    char name[64];
    /* one matrix: [rows][cols] */
    #define MAT(NAME, ROWS, COLS)                                                                      \
        do {                                                                                           \
            float *deq;                                                                                \
            uint8_t *q = make(&r, dt, COLS, ROWS, &deq);                                                \
            int64_t shape[2] = {ROWS, COLS};                                                           \
            gguf_w_tensor(w, NAME, f32 ? S1C_F32 : dt, 2, shape, f32 ? (void *)deq : (void *)q);       \
            bufs[nbuf++] = q, bufs[nbuf++] = deq;                                                      \
        } while (0)
    #define VEC(NAME, N, BASE, S)                                                                      \
        do {                                                                                           \
            float *v = mr_randv(&r, N, S);                                                             \
            for (int i = 0; i < (N); i++) v[i] += (BASE);                                              \
            int64_t shape[1] = {N};                                                                    \
            gguf_w_tensor(w, NAME, S1C_F32, 1, shape, v);                                              \
            bufs[nbuf++] = v;                                                                          \
        } while (0)
    MAT("token_embd.weight", V, E);
    MAT("output.weight", V, E);
    VEC("output_norm.weight", E, 1.0f, 0.1f);
    for (int l = 0; l < L; l++) {
        static const char *m[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
        const int rows[7] = {H * HD, KVH * HD, KVH * HD, E, F, F, E}, cols[7] = {E, E, E, H * HD, E, E, F};
        for (int i = 0; i < 7; i++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, m[i]);
            MAT(name, rows[i], cols[i]);
        }
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        VEC(name, E, 1.0f, 0.1f);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        VEC(name, E, 1.0f, 0.1f);
        static const char *b[3] = {"attn_q", "attn_k", "attn_v"};
        const int bn[3] = {H * HD, KVH * HD, KVH * HD};
        for (int j = 0; j < 3; j++) {
            snprintf(name, sizeof name, "blk.%d.%s.bias", l, b[j]);
            VEC(name, bn[j], 0.0f, 0.1f);
        }
    }
    #undef MAT
    #undef VEC
    s1c_err err;
    if (gguf_writer_write(w, path, &err) != 0) {
        fprintf(stderr, "mr_write_qwen2: %s\n", err.msg);
        abort();
    }
    gguf_writer_free(w);
    for (int i = 0; i < nbuf; i++) free(bufs[i]);
}

int mr_vs_llamacpp(const char *model, const char *prompt_ids, const char *tag, double abs_tol, double rel_tol) {
    char prefix[1200], cmd[2600];
    snprintf(prefix, sizeof prefix, "%s/%s", tu_env("S1C_TMP"), tag);
    snprintf(cmd, sizeof cmd, "'%s' %s %d", prompt_ids, prefix, MR_LLAMACPP_GEN);
    int rc = tu_system("bash %s/tests/ref/test_convert_llamacpp_run.sh greedy %s %s > %s.log 2>&1", tu_env("S1C_SRC"), model, cmd, prefix);
    if (rc == 77) return 77;
    if (rc != 0) { fprintf(stderr, "%s: llama.cpp failed (%d), see %s.log\n", tag, rc, prefix); return 1; }
    s1c_err err;
    s1c_model *m;
    if (s1c_model_open(&m, model, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    int V = s1c_model_config(m)->vocab_size;
    int32_t seq[256];
    int n_prompt = 0;
    for (const char *p = prompt_ids; *p;) {
        char *e;
        long v = strtol(p, &e, 10);
        if (e == p) break;
        seq[n_prompt++] = (int32_t)v;
        p = e;
    }
    char path[1300];
    snprintf(path, sizeof path, "%s.tokens", prefix);
    int n_gen = mr_read_ids(path, seq + n_prompt, MR_LLAMACPP_GEN);
    snprintf(path, sizeof path, "%s.f32", prefix);
    size_t len;
    float *ref = (float *)tu_read(path, &len);
    if (n_gen != MR_LLAMACPP_GEN || !ref || len != (size_t)MR_LLAMACPP_GEN * V * 4) { fprintf(stderr, "%s: bad llama.cpp output\n", tag); return 1; }
    s1c_kv *kv;
    s1c_fwd *f;
    s1c_kv_new(&kv, s1c_model_config(m), 16, 8, S1C_F32, &err);
    s1c_fwd_new(&f, m, 64, 128, &err);
    mr_seq s;
    int n = n_prompt + MR_LLAMACPP_GEN - 1;
    mr_seq_alloc(&s, kv, n);
    float *out = malloc((size_t)n * V * sizeof(float));
    int bad = mr_forward(f, kv, &s, seq, 0, n, out) != 0;
    double range = 0, worst = 0;
    for (size_t i = 0; i < (size_t)MR_LLAMACPP_GEN * V; i++) range = ref[i] > range ? ref[i] : -ref[i] > range ? -ref[i] : range;
    double tol = abs_tol > 0 ? abs_tol : rel_tol * range;
    int argmax_equal = 0;
    for (int i = 0; i < MR_LLAMACPP_GEN && !bad; i++) {
        const float *row = out + (size_t)(n_prompt - 1 + i) * V, *lr = ref + (size_t)i * V;
        double d = tu_max_abs_diff(row, lr, (size_t)V);
        if (d > worst) worst = d;
        int best = 0, b2 = -1;
        for (int k = 1; k < V; k++)
            if (row[k] > row[best]) best = k;
        for (int k = 0; k < V; k++)
            if (k != seq[n_prompt + i] && (b2 < 0 || lr[k] > lr[b2])) b2 = k;
        double margin = lr[seq[n_prompt + i]] - lr[b2];
        if (best == seq[n_prompt + i]) argmax_equal++;
        else if (margin > 2 * tol) { fprintf(stderr, "%s: step %d: s1c picks %d, llama.cpp %d (margin %.3g)\n", tag, i, best, seq[n_prompt + i], margin); bad = 1; }
    }
    if (worst > tol) { fprintf(stderr, "%s: max abs logit diff %.3g > %.3g\n", tag, worst, tol); bad = 1; }
    printf("%s: max |logit diff| vs llama.cpp %.3g (%.2e of the range %.3g; tolerance %.3g), argmax equal %d/%d\n", tag, worst,
           worst / (range > 0 ? range : 1), range, tol, argmax_equal, MR_LLAMACPP_GEN);
    free(out); free(ref);
    s1c_fwd_free(f);
    s1c_kv_free(kv);
    s1c_model_free(m);
    return bad;
}

int mr_read_ids(const char *path, int32_t *ids, int cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0, v;
    while (n < cap && fscanf(f, "%d", &v) == 1) ids[n++] = v;
    fclose(f);
    return n;
}
