/* s1c_model_set_bf16_dot (--bf16-math): a tiny BF16 Qwen2 computed in bf16 dot products gives
 * logits close to the exact widening's (the activations rounded to bf16, 2^-9 relative each)
 * and, where the CPU has AVX512_BF16, not the same bits (the setting reaches the kernels);
 * prefill and one-token decode agree bitwise in either arithmetic; the setting is refused once
 * the matrices are packed (after the first forward). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kern_internal.h"
#include "modelrun.h"
#include "s1c/model.h"
#include "testutil.h"

enum { N = 12 };
static const int32_t tokens[N] = {1, 17, 99, 3, 250, 31, 7, 64, 128, 5, 11, 200};

/* Logits of every position (all at once or one token at a time) with the arithmetic `dot`, on a
 * KV cache of kv_dtype. */
static float *logits_kv(s1c_model *m, bool dot, bool one_at_a_time, int kv_dtype) {
    s1c_err err;
    s1c_kv *kv;
    s1c_fwd *f;
    int V = s1c_model_config(m)->vocab_size;
    assert_int_equal(s1c_model_set_bf16_dot(m, dot, &err), 0);
    assert_int_equal(s1c_kv_new(&kv, s1c_model_config(m), 16, 2, kv_dtype, &err), 0);
    assert_int_equal(s1c_fwd_new(&f, m, N, N + 16, &err), 0);
    float *lg = malloc((size_t)N * V * sizeof(float));
    mr_seq s;
    mr_seq_alloc(&s, kv, N);
    if (!one_at_a_time) assert_int_equal(mr_forward(f, kv, &s, tokens, 0, N, lg), 0);
    for (int i = 0; one_at_a_time && i < N; i++) assert_int_equal(mr_forward(f, kv, &s, tokens, i, i + 1, lg + (size_t)i * V), 0);
    s1c_fwd_free(f);
    s1c_kv_free(kv);
    return lg;
}

static float *logits_of(s1c_model *m, bool dot, bool one_at_a_time) { return logits_kv(m, dot, one_at_a_time, S1C_F32); }

static void test_bf16_math(void **state) {
    (void)state;
    char *dir = tu_path("S1C_TMP", "bf16_math_model");
    assert_int_equal(tu_system("rm -rf %s && %s init --arch qwen2 --preset tiny --dtype bf16 --seed 5 --out %s >/dev/null 2>&1", dir,
                               tu_env("S1C_BIN"), dir),
                     0);
    s1c_err err;
    s1c_model *ex, *dt, *dt1;
    assert_int_equal(s1c_model_open(&ex, dir, &err), 0);
    assert_int_equal(s1c_model_open(&dt, dir, &err), 0);
    assert_int_equal(s1c_model_open(&dt1, dir, &err), 0);
    size_t n = (size_t)N * s1c_model_config(ex)->vocab_size;
    float *a = logits_of(ex, false, false), *b = logits_of(dt, true, false), *b1 = logits_of(dt1, true, true);
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) lo = fminf(lo, a[i]), hi = fmaxf(hi, a[i]);
    double diff = tu_max_abs_diff(a, b, n);
    printf("bf16 dot vs exact: max |diff| %.3g of a logit range %.3g\n", diff, (double)(hi - lo));
    assert_true(diff <= 2e-2 * (hi - lo));
    if (!strcmp(kern_name(), "avx512") && kern_avx512bf16_supported()) assert_true(diff > 0);
    assert_memory_equal(b, b1, n * sizeof(float)); /* batch-invariant in dot products too */
    /* packed by the first forward: the other arithmetic is refused, the same one is a no-op */
    assert_int_equal(s1c_model_set_bf16_dot(dt, true, &err), 0);
    assert_int_not_equal(s1c_model_set_bf16_dot(dt, false, &err), 0);
    assert_non_null(strstr(err.msg, "before the first forward"));
    assert_true(s1c_model_bf16_dot(dt) && !s1c_model_bf16_dot(ex));
    /* a BF16 cache: attention in bf16 dot products too (kern_attention_dot), still batch-invariant,
     * close to the f32 cache's logits; --kv-type auto picks it for this model under dot only */
    float *c = logits_kv(dt, true, false, S1C_BF16), *c1 = logits_kv(dt, true, true, S1C_BF16);
    double kdiff = tu_max_abs_diff(b, c, n);
    printf("bf16 cache vs f32 cache (bf16 dot): max |diff| %.3g\n", kdiff);
    assert_true(kdiff <= 2e-2 * (hi - lo));
    assert_memory_equal(c, c1, n * sizeof(float));
    assert_int_equal(s1c_kv_auto_dtype(dt), S1C_BF16);
    assert_int_equal(s1c_kv_auto_dtype(ex), kern_family() == KERN_AVX2 ? S1C_F16 : S1C_F32); /* 16 bits where avx2 reads them in registers */
    free(a), free(b), free(b1), free(c), free(c1);
    s1c_model_free(ex), s1c_model_free(dt), s1c_model_free(dt1);
    tu_system("rm -rf %s", dir);
    free(dir);
}

/* The default: bf16 dot products where the packed kernels take them (AVX512_BF16), exact
 * elsewhere; $S1C_BF16_MATH overrides it either way. */
static void test_bf16_default(void **state) {
    (void)state;
    unsetenv("S1C_BF16_MATH");
    assert_true(s1c_bf16_dot_default() == kern_packs_bf16_dot());
    setenv("S1C_BF16_MATH", "exact", 1);
    assert_false(s1c_bf16_dot_default());
    setenv("S1C_BF16_MATH", "dot", 1);
    assert_true(s1c_bf16_dot_default());
    unsetenv("S1C_BF16_MATH");
    if (kern_avx512bf16_supported() && !strcmp(kern_name(), "avx512")) assert_true(s1c_bf16_dot_default());
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_bf16_math), cmocka_unit_test(test_bf16_default)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
