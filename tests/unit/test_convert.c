/* s1c_model_convert: HF -> GGUF -> HF round trips give identical tensors (F32, BF16; qwen2
 * unpermuted, llama's Q/K permutation undone exactly), a tokenizer that still encodes
 * llama.cpp's 46 qwen2 vectors, and logits on the GGUF equal to those on the HF directory;
 * a Q8_0 GGUF output loads (dequantized) and stays close. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelrun.h"
#include "s1c/model.h"
#include "s1c/text.h"
#include "testutil.h"

static char *tmp(const char *name) { return tu_path("S1C_TMP", name); }

static void init_model(const char *out, const char *arch, const char *dtype, bool qwen_tok) {
    int rc = tu_system("rm -rf %s && %s init --arch %s --preset tiny --dtype %s --seed 3 %s%s%s --out %s 2>/dev/null", out,
                       tu_env("S1C_BIN"), arch, dtype, qwen_tok ? "--vocab 151936 --tokenizer " : "",
                       qwen_tok ? tu_env("S1C_DATA") : "", qwen_tok ? "/qwen2.5-tokenizer" : "", out);
    assert_int_equal(rc, 0);
}

static void same_tensors(const char *a, const char *b) {
    st_set x, y;
    s1c_err err;
    assert_int_equal(st_open(&x, a, &err), 0);
    assert_int_equal(st_open(&y, b, &err), 0);
    assert_int_equal(x.n_tensors, y.n_tensors);
    for (uint64_t i = 0; i < x.n_tensors; i++) {
        const s1c_tensor *s = &x.tensors[i], *t = st_find(&y, s->name);
        if (!t) fail_msg("%s: tensor %s missing after the round trip", b, s->name);
        if (t->dtype != s->dtype || t->ndim != s->ndim || t->nbytes != s->nbytes || memcmp(t->shape, s->shape, sizeof s->shape) != 0 ||
            memcmp(t->data, s->data, s->nbytes) != 0)
            fail_msg("%s: tensor %s differs after the round trip", b, s->name);
    }
    st_close(&x);
    st_close(&y);
}

/* Logits of every row of a fixed sequence. */
#define NSEQ 12
static float *logits_of(const char *path, int *V) {
    int32_t toks[NSEQ];
    for (int i = 0; i < NSEQ; i++) toks[i] = (int32_t)((i * 7919 + 13) % 500);
    float *out = mr_model_logits(path, toks, NSEQ, false, V);
    assert_non_null(out);
    return out;
}

static double last_max; /* max |logit| of a in the last logit_diff */
static double logit_diff(const char *a, const char *b) {
    int va, vb;
    float *x = logits_of(a, &va), *y = logits_of(b, &vb);
    assert_int_equal(va, vb);
    double d = tu_max_abs_diff(x, y, (size_t)NSEQ * (size_t)va);
    last_max = 0;
    for (size_t i = 0; i < (size_t)NSEQ * (size_t)va; i++) last_max = x[i] > last_max ? x[i] : -x[i] > last_max ? -x[i] : last_max;
    free(x);
    free(y);
    return d;
}


static void roundtrip(const char *arch, const char *dtype, bool qwen_tok, double logit_tol) {
    char name[64];
    snprintf(name, sizeof name, "cv_%s_%s", arch, dtype);
    char *hf = tmp(name), gg[1200], back[1200];
    snprintf(gg, sizeof gg, "%s.gguf", hf);
    snprintf(back, sizeof back, "%s_back", hf);
    init_model(hf, arch, dtype, qwen_tok);
    s1c_err err;
    if (s1c_model_convert(hf, gg, -1, &err) != 0) fail_msg("%s", err.msg);
    if (s1c_model_convert(gg, back, -1, &err) != 0) fail_msg("%s", err.msg);
    same_tensors(hf, back);
    double d = logit_diff(hf, gg);
    printf("%s %s: tensors identical after HF -> GGUF -> HF; logits HF vs GGUF max |diff| %.3g\n", arch, dtype, d);
    assert_true(d <= logit_tol);
    if (qwen_tok) {
        s1c_tokenizer *t;
        gguf_file g;
        assert_int_equal(gguf_open(&g, gg, &err), 0);
        if (s1c_tok_load_gguf(&t, &g, &err) != 0) fail_msg("%s", err.msg);
        tu_check_qwen2_vectors(t, "GGUF tokenizer");
        assert_int_equal(s1c_tok_eos(t), 151645);
        s1c_tok_free(t);
        gguf_close(&g);
        if (s1c_tok_load_hf(&t, back, &err) != 0) fail_msg("%s", err.msg);
        tu_check_qwen2_vectors(t, "HF tokenizer after the round trip");
        assert_int_equal(s1c_tok_n_vocab(t), 151665);
        s1c_tok_free(t);
    }
    free(hf);
}

/* qwen2: same rows, same RoPE: the forward is the same computation, so logits are equal. */
static void test_qwen2_f32(void **state) { (void)state; roundtrip("qwen2", "f32", true, 0.0); }
static void test_qwen2_bf16(void **state) { (void)state; roundtrip("qwen2", "bf16", true, 0.0); }
/* llama: GGUF rows are permuted and RoPE pairs adjacent dims; the sums run in another order
 * (~1e-7 of logits of size ~0.1). */
static void test_llama_f32(void **state) { (void)state; roundtrip("llama", "f32", false, 1e-5); }
static void test_llama_bf16(void **state) { (void)state; roundtrip("llama", "bf16", false, 1e-5); }

static void test_q8_0_output(void **state) {
    (void)state;
    char *hf = tmp("cv_llama_f32"), *gg = tmp("cv_llama_q8_0.gguf"), *ref = tmp("cv_llama_f32.gguf");
    s1c_err err;
    if (s1c_model_convert(hf, gg, S1C_Q8_0, &err) != 0) fail_msg("%s", err.msg);
    gguf_file g;
    assert_int_equal(gguf_open(&g, gg, &err), 0);
    assert_int_equal(gguf_find_tensor(&g, "blk.0.attn_q.weight")->dtype, S1C_Q8_0);
    assert_int_equal(gguf_find_tensor(&g, "blk.0.ffn_down.weight")->dtype, S1C_F16); /* 172 columns: F16 fallback */
    assert_int_equal(gguf_find_tensor(&g, "blk.0.attn_norm.weight")->dtype, S1C_F32);
    gguf_close(&g);
    double d = logit_diff(ref, gg);
    printf("llama q8_0 vs f32: logits max |diff| %.3g of max |logit| %.3g\n", d, last_max);
    /* Q8_0 rounds each weight by up to 1/254 of its block's largest: a few % of the logits */
    assert_true(d < 0.05 * last_max);
    /* quantized types are for GGUF only */
    char *bad = tmp("cv_bad_hf");
    assert_int_not_equal(s1c_model_convert(gg, bad, S1C_Q4_0, &err), 0);
    assert_non_null(strstr(err.msg, "f32, f16 or bf16"));
    free(hf); free(gg); free(ref); free(bad);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qwen2_f32), cmocka_unit_test(test_qwen2_bf16), cmocka_unit_test(test_llama_f32),
        cmocka_unit_test(test_llama_bf16), cmocka_unit_test(test_q8_0_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
