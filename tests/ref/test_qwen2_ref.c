/* Qwen2 (and Llama) forward against an independent PyTorch float64 implementation
 * (tests/ref/qwen2_ref.py): random tiny models saved as a Hugging Face directory and as
 * GGUF; logits over a 32-token prefill and then over single-token decode steps must agree
 * to 1e-4 max abs error in fp32 (F32 weights). BF16 weights are read exactly as stored and, with
 * --bf16-math exact, computed in f32, so the same tolerance holds for them too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelrun.h"
#include "testutil.h"

#define N_PREFILL 32
#define TOL 1e-4

typedef struct ref_case {
    const char *name;
    const char *args;
} ref_case;

static const ref_case cases[] = {
    {"gqa2_untied", "--hidden 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 --vocab 256 --tied 0"},
    {"gqa1_tied", "--hidden 64 --layers 2 --heads 4 --kv-heads 4 --ffn 96 --vocab 200 --tied 1 --seed 3"},
    {"gqa7_tied", "--hidden 112 --layers 2 --heads 7 --kv-heads 1 --ffn 160 --vocab 300 --tied 1 --seed 5"},
    {"gqa7_untied_3layers", "--hidden 112 --layers 3 --heads 7 --kv-heads 1 --ffn 96 --vocab 128 --tied 0 --seed 6"},
    {"head_dim_override", "--hidden 64 --layers 2 --heads 4 --kv-heads 2 --head-dim 24 --ffn 128 --vocab 256 --seed 7"},
    {"bf16", "--hidden 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 --vocab 256 --dtype bf16 --seed 8"},
    {"f16", "--hidden 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 --vocab 256 --dtype f16 --seed 9"},
    {"llama", "--arch llama --hidden 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 --vocab 256 --rope-theta 10000 --eps 1e-5 --seed 10"},
    {"llama_tied_bf16", "--arch llama --hidden 128 --layers 2 --heads 4 --kv-heads 1 --ffn 128 --vocab 256 --tied 1 --dtype bf16 --seed 11"},
};

static char *make_case(const ref_case *c) {
    char *dir = tu_path("S1C_TMP", c->name);
    int rc = tu_system("/usr/bin/python3 %s/tests/ref/qwen2_ref.py --out %s --n-tokens 36 %s > %s.log 2>&1",
                       tu_env("S1C_SRC"), dir, c->args, dir);
    if (rc != 0) fprintf(stderr, "qwen2_ref.py failed for %s (see %s.log)\n", c->name, dir);
    assert_int_equal(rc, 0);
    return dir;
}

/* Prefill 32 tokens (logits of every row), then decode the rest one at a time. */
static double check_model(const char *model_path, const char *dir) {
    s1c_err err;
    s1c_model *m = NULL;
    if (s1c_model_open(&m, model_path, &err) != 0) fail_msg("%s", err.msg);
    /* BF16 widened exactly (bf16 dot products, the default on CPUs with them, round the
     * activations: test_bf16_math and test_kern_forward bound that) */
    if (s1c_model_set_bf16_dot(m, false, &err) != 0) fail_msg("%s", err.msg);
    const s1c_config *c = s1c_model_config(m);
    int32_t tokens[64];
    char *tok_path = malloc(strlen(dir) + 16);
    sprintf(tok_path, "%s/tokens.txt", dir);
    int n = mr_read_ids(tok_path, tokens, 64);
    assert_true(n > N_PREFILL);
    char *lg_path = malloc(strlen(dir) + 16);
    sprintf(lg_path, "%s/logits.f32", dir);
    size_t len;
    float *ref = (float *)tu_read(lg_path, &len);
    assert_non_null(ref);
    assert_int_equal(len, (size_t)n * (size_t)c->vocab_size * 4);
    s1c_kv *kv;
    s1c_fwd *f;
    assert_int_equal(s1c_kv_new(&kv, c, 16, 8, S1C_F32, &err), 0);
    assert_int_equal(s1c_fwd_new(&f, m, 64, 128, &err), 0);
    mr_seq s;
    mr_seq_alloc(&s, kv, n);
    float *out = malloc((size_t)n * (size_t)c->vocab_size * sizeof(float));
    assert_int_equal(mr_forward(f, kv, &s, tokens, 0, N_PREFILL, out), 0);
    for (int t = N_PREFILL; t < n; t++) assert_int_equal(mr_forward(f, kv, &s, tokens, t, t + 1, out + (size_t)t * c->vocab_size), 0);
    double worst = 0.0;
    for (int t = 0; t < n; t++) {
        double d = tu_max_abs_diff(out + (size_t)t * c->vocab_size, ref + (size_t)t * c->vocab_size, (size_t)c->vocab_size);
        if (d > worst) worst = d;
        if (!(d <= TOL)) fail_msg("%s: position %d (%s): max abs diff %.3g > %.0e", model_path, t, t < N_PREFILL ? "prefill" : "decode", d, TOL);
    }
    free(out); free(ref); free(tok_path); free(lg_path);
    s1c_fwd_free(f);
    s1c_kv_free(kv);
    s1c_model_free(m);
    return worst;
}

static void test_case(void **state) {
    const ref_case *c = *state;
    char *dir = make_case(c);
    char *hf = malloc(strlen(dir) + 8), *gg = malloc(strlen(dir) + 16);
    sprintf(hf, "%s/hf", dir);
    sprintf(gg, "%s/model.gguf", dir);
    double a = check_model(hf, dir), b = check_model(gg, dir);
    printf("%-22s HF max|diff| %.2e   GGUF max|diff| %.2e\n", c->name, a, b);
    free(hf); free(gg); free(dir);
}

int main(void) {
    if (tu_system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0) {
        fprintf(stderr, "python3-torch is not installed: skipping\n");
        return 77;
    }
    struct CMUnitTest tests[sizeof cases / sizeof cases[0]];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tests[i] = (struct CMUnitTest){cases[i].name, test_case, NULL, NULL, (void *)&cases[i]};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
