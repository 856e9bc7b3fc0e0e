/* Cross-check against a real llama.cpp (prebuilt, via ../shared/tools/llama-ref): on random
 * Qwen2 GGUF files written by llama.cpp's own gguf-py, s1c's logits at the 8 positions
 * llama.cpp generated greedily must match llama.cpp's raw logits to fp32 tolerance, and
 * s1c's greedy tokens must be llama.cpp's. Skipped (77) when node/npm are unavailable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelrun.h"
#include "testutil.h"

#define N_GEN 8
/* llama.cpp accumulates in a different order (SIMD, F32 KV): ~1e-6 relative to the logit
 * range here; 1e-4 absolute is far below any real disagreement. */
#define TOL 1e-4

static int check(const char *variant, const char *flags) {
    char *dir = tu_path("S1C_TMP", variant);
    int rc = tu_system("bash %s/tests/ref/llama_ref_qwen2.sh %s %s > %s.log 2>&1", tu_env("S1C_SRC"), dir, flags, dir);
    if (rc == 77) { fprintf(stderr, "llama-ref unavailable (see %s.log): skipping\n", dir); return 77; }
    if (rc != 0) { fprintf(stderr, "llama_ref_qwen2.sh failed (%d), see %s.log\n", rc, dir); return 1; }
    char path[1024];
    snprintf(path, sizeof path, "%s/model.gguf", dir);
    s1c_err err;
    s1c_model *m;
    if (s1c_model_open(&m, path, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    int V = s1c_model_config(m)->vocab_size;
    int32_t seq[256], greedy[N_GEN];
    snprintf(path, sizeof path, "%s/prompt.txt", dir);
    int n_prompt = mr_read_ids(path, seq, 200);
    snprintf(path, sizeof path, "%s/greedy_tokens.txt", dir);
    int n_gen = mr_read_ids(path, greedy, N_GEN);
    snprintf(path, sizeof path, "%s/logits.f32", dir);
    size_t len;
    float *ref = (float *)tu_read(path, &len);
    if (n_prompt <= 0 || n_gen != N_GEN || !ref || len != (size_t)N_GEN * V * 4) { fprintf(stderr, "bad fixture in %s\n", dir); return 1; }
    s1c_kv *kv;
    s1c_fwd *f;
    s1c_kv_new(&kv, s1c_model_config(m), 16, 32, S1C_F32, &err);
    s1c_fwd_new(&f, m, 256, 512, &err);
    mr_seq s;
    mr_seq_alloc(&s, kv, n_prompt + N_GEN);
    float *out = malloc((size_t)(n_prompt + N_GEN) * V * sizeof(float));
    int bad = mr_forward(f, kv, &s, seq, 0, n_prompt, out) != 0;
    double worst = 0.0;
    /* s1c decodes greedily on its own; llama.cpp's tokens are only compared, never fed in */
    for (int i = 0; i < N_GEN && !bad; i++) {
        const float *row = out + (size_t)(n_prompt - 1 + i) * V;
        double d = tu_max_abs_diff(row, ref + (size_t)i * V, (size_t)V);
        if (d > worst) worst = d;
        int best = 0;
        for (int k = 1; k < V; k++)
            if (row[k] > row[best]) best = k;
        if (d > TOL) { fprintf(stderr, "%s: step %d: max abs diff %.3g > %.0e\n", variant, i, d, TOL); bad = 1; }
        if (best != greedy[i]) { fprintf(stderr, "%s: step %d: s1c picks %d, llama.cpp %d\n", variant, i, best, greedy[i]); bad = 1; }
        seq[n_prompt + i] = best;
        if (!bad) bad = mr_forward(f, kv, &s, seq, n_prompt + i, n_prompt + i + 1, out + (size_t)(n_prompt + i) * V) != 0;
    }
    printf("%s: %d greedy tokens equal, max abs logit diff %.3g\n", variant, bad ? -1 : N_GEN, worst);
    free(out); free(ref); free(dir);
    s1c_fwd_free(f);
    s1c_kv_free(kv);
    s1c_model_free(m);
    return bad;
}

int main(void) {
    int a = check("llama_ref_untied", "");
    if (a == 77) return 77;
    int b = check("llama_ref_tied", "--tied --seed 1");
    printf("%d passed, %d failed\n", (a == 0) + (b == 0), (a != 0) + (b != 0));
    return a || b;
}
