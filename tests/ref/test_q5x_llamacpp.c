/* Q4_1 / Q5_0 / Q5_1 against a REAL llama.cpp (prebuilt, ../shared/tools/llama-ref), skipped (77)
 * without node/npm: GGUFs of these types written by llama.cpp's gguf-py (requant_gguf.py) load in
 * s1c with every matrix read in place (no f32 copy) and give llama.cpp's logits within QTOL of the
 * logit range; so do the Q5_K_M / Q4_K_M files `s1c convert` writes at a width that is not whole
 * 256-blocks (mostly Q5_1 / Q5_0, as llama-quantize falls back), which llama.cpp greedy-decodes.
 * s1c runs the exact sequence llama.cpp ran (prompt + its greedy tokens), so a near-tie cannot
 * make the walks diverge; the argmax must agree wherever the top-2 margin exceeds the tolerance. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "modelrun.h"
#include "testutil.h"

#define N_GEN 8
/* llama.cpp rounds every matmul input to Q8_0 (Q5_0) or Q8_1 (Q4_1, Q5_1) per 32, s1c to its
 * own 8-bit blocks, both on the bit-exactly dequantized weights (measured on these fixtures: see
 * the printed lines, 2.3e-2..3.5e-2 of the range): 5e-2, as test_convert_llamacpp's Q8_0/Q4_0. */
#define QTOL_REL 5e-2

/* llama.cpp greedy on model with prompt ids; s1c on prompt + llama.cpp's tokens; compare. */
static int compare(const char *model, const char *prompt_ids, const char *tag) {
    char prefix[1200];
    snprintf(prefix, sizeof prefix, "%s/%s", tu_env("S1C_TMP"), tag);
    int rc = tu_system("bash %s/tests/ref/test_convert_llamacpp_run.sh greedy %s '%s' %s %d > %s.log 2>&1", tu_env("S1C_SRC"), model,
                       prompt_ids, prefix, N_GEN, prefix);
    if (rc == 77) return 77;
    if (rc != 0) { fprintf(stderr, "%s: llama.cpp failed (%d), see %s.log\n", tag, rc, prefix); return 1; }
    s1c_err err;
    s1c_model *m;
    if (s1c_model_open(&m, model, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    if (m->n_deq != 0) { fprintf(stderr, "%s: %d matrices widened to f32 at load\n", tag, m->n_deq); s1c_model_free(m); return 1; }
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
    int n_gen = mr_read_ids(path, seq + n_prompt, N_GEN);
    snprintf(path, sizeof path, "%s.f32", prefix);
    size_t len;
    float *ref = (float *)tu_read(path, &len);
    if (n_gen != N_GEN || !ref || len != (size_t)N_GEN * V * 4) { fprintf(stderr, "%s: bad llama.cpp output\n", tag); free(ref); s1c_model_free(m); return 1; }
    s1c_kv *kv;
    s1c_fwd *f;
    s1c_kv_new(&kv, s1c_model_config(m), 16, 8, S1C_F32, &err);
    s1c_fwd_new(&f, m, 64, 128, &err);
    mr_seq s;
    int n = n_prompt + N_GEN - 1;
    mr_seq_alloc(&s, kv, n);
    float *out = malloc((size_t)n * V * sizeof(float));
    int bad = mr_forward(f, kv, &s, seq, 0, n, out) != 0;
    double range = 0, worst = 0;
    for (size_t i = 0; i < (size_t)N_GEN * V; i++) range = ref[i] > range ? ref[i] : -ref[i] > range ? -ref[i] : range;
    double tol = QTOL_REL * range;
    int argmax_equal = 0;
    for (int i = 0; i < N_GEN && !bad; i++) {
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
           worst / (range > 0 ? range : 1), range, tol, argmax_equal, N_GEN);
    free(out), free(ref);
    s1c_fwd_free(f);
    s1c_kv_free(kv);
    s1c_model_free(m);
    return bad;
}

/* The file's matrices: how many of type dtype (the fixture must hold the type it stands for). */
static int count_type(const char *path, int dtype) {
    gguf_file g;
    s1c_err err;
    if (gguf_open(&g, path, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return -1; }
    int n = 0;
    for (uint64_t i = 0; i < g.n_tensors; i++) n += g.tensors[i].dtype == dtype && g.tensors[i].ndim == 2;
    gguf_close(&g);
    return n;
}

int main(void) {
    char *dir = tu_path("S1C_TMP", "q5x_llamacpp");
    int rc = tu_system("bash %s/tests/ref/test_q5x_llamacpp_run.sh make %s > /dev/null", tu_env("S1C_SRC"), dir);
    if (rc == 77) { printf("SKIP: llama-ref (node/npm) unavailable\n"); free(dir); return 77; }
    if (rc != 0) { fprintf(stderr, "making the GGUFs failed (%d)\n", rc); free(dir); return 1; }
    char path[1200], *p;
    snprintf(path, sizeof path, "%s/prompt.txt", dir);
    if (!(p = tu_read(path, NULL))) return 1;
    p[strcspn(p, "\n")] = 0;
    static const struct { const char *name; int dtype; } files[] = {
        {"Q4_1", S1C_Q4_1}, {"Q5_0", S1C_Q5_0}, {"Q5_1", S1C_Q5_1}, {"S1C_Q5_K_M", S1C_Q5_1}, {"S1C_Q4_K_M", S1C_Q5_0}};
    int fails = 0, passes = 0;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s.gguf", dir, files[i].name);
        char tag[64];
        snprintf(tag, sizeof tag, "llamacpp_q5x_%s", files[i].name);
        int n = count_type(path, files[i].dtype);
        if (n < 10) { fprintf(stderr, "%s: %d %s matrices, expected most of them\n", tag, n, s1c_dtype_name(files[i].dtype)); fails++; continue; }
        int r = compare(path, p, tag);
        if (r == 77) { free(p); free(dir); return 77; }
        r ? fails++ : passes++;
    }
    printf("%d passed, %d failed\n", passes, fails);
    free(p);
    free(dir);
    return fails != 0;
}
