/* kern_matmul on Q8_0 / Q4_0 weights read in place, against the scalar reference and against
 * the dequantized f32 product, and its batch invariance.
 *
 * Weights are random rows quantized with s1c_quantize (ggml's rounding). Every family is
 * compared with kern_ref_matmul: both quantize the activations the same way and compute each
 * block's integer dot exactly, so they differ only in how the scaled block sums are added:
 * |fast - ref| <= (n/32 + 2) * FLT_EPSILON * sum_j |w_j| (|x_j| + max|x|_block / 254).
 * Against kern_ref_matmul on the dequantized f32 weights the difference is the activations'
 * quantization: each x_j moves by at most half a step (max|x|_block / 254), so
 * |q - f32| <= sum_j |w_j| max|x|_block(j) / 254 * (1 + 1e-3) + n * FLT_EPSILON * sum_j |w_j x_j|.
 * Batch invariance is bitwise: a row alone, inside a batch of 7, and with 1-3 threads. A model
 * test: the tiny Qwen2 model converted to q8_0 gives logits near those of its dequantized
 * weights. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kern_internal.h"
#include "kernels/kernels.h"
#include "modelrun.h"
#include "testutil.h"

static const char *families[] = {"ref", "avx512", "avx2"};
static const int qtypes[] = {S1C_Q8_0, S1C_Q4_0};

static float *randv(s1c_rng *r, size_t n, float scale) {
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = scale * s1c_rng_normal(r);
    return v;
}

/* W [d][n] quantized to dtype, and its dequantized f32 copy. */
static void *make_q(s1c_rng *r, int dtype, int n, int d, float **deq) {
    float *w = randv(r, (size_t)n * d, 1.0f);
    uint64_t bytes;
    assert_int_equal(s1c_dtype_nbytes(dtype, (uint64_t)n * d, &bytes), 0);
    void *q = malloc(bytes);
    s1c_err err;
    assert_int_equal(s1c_quantize(q, w, dtype, (uint64_t)n * d, &err), 0);
    *deq = malloc((size_t)n * d * sizeof(float));
    assert_int_equal(s1c_dequantize(*deq, q, dtype, (uint64_t)n * d, &err), 0);
    free(w);
    return q;
}

static double block_amax(const float *x, int j) {
    double a = 0;
    for (int i = j / 32 * 32; i < j / 32 * 32 + 32; i++) a = fmax(a, fabs(x[i]));
    return a;
}

static void test_q_vs_ref_and_f32(void **state) {
    (void)state;
    static const int ns[] = {32, 64, 96, 896};
    static const int ds[] = {1, 3, 4, 5, 17};
    static const int rows[] = {1, 2, 3, 4, 5, 7, 9};
    s1c_rng r;
    s1c_rng_seed(&r, 21);
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        if (kern_select(families[f]) != 0) continue;
        for (int qi = 0; qi < 2; qi++)
            for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
                for (size_t b = 0; b < sizeof ds / sizeof *ds; b++) {
                    int n = ns[a], d = ds[b], nr = rows[(a + b) % 7], dt = qtypes[qi];
                    float *deq;
                    void *w = make_q(&r, dt, n, d, &deq);
                    float *x = randv(&r, (size_t)nr * n, 1.0f);
                    if (b == 0) x[0] = 0, memset(x, 0, 32 * sizeof(float)); /* an all-zero block: scale 0 */
                    float *got = malloc((size_t)nr * d * sizeof(float)), *want = malloc((size_t)nr * d * sizeof(float));
                    float *f32 = malloc((size_t)nr * d * sizeof(float));
                    kern_matmul(got, x, nr, w, dt, n, d);
                    kern_ref_matmul(want, x, nr, w, dt, n, d);
                    kern_ref_matmul(f32, x, nr, deq, S1C_F32, n, d);
                    for (int t = 0; t < nr; t++)
                        for (int i = 0; i < d; i++) {
                            const float *xt = x + (size_t)t * n, *wi = deq + (size_t)i * n;
                            double mag = 0, qerr = 0, prod = 0;
                            for (int j = 0; j < n; j++) {
                                double am = block_amax(xt, j);
                                mag += fabs(wi[j]) * (fabs(xt[j]) + am / 254);
                                qerr += fabs(wi[j]) * am / 254;
                                prod += fabs((double)wi[j] * xt[j]);
                            }
                            size_t k = (size_t)t * d + i;
                            double tol = (n / 32 + 2) * FLT_EPSILON * mag + 1e-30;
                            if (!(fabs((double)got[k] - want[k]) <= tol))
                                fail_msg("%s %s n=%d d=%d rows=%d: out[%d][%d] = %.9g, ref %.9g (tol %.3g)", families[f],
                                         s1c_dtype_name(dt), n, d, nr, t, i, got[k], want[k], tol);
                            double tol32 = qerr * (1 + 1e-3) + n * FLT_EPSILON * prod + 1e-30;
                            if (!(fabs((double)got[k] - f32[k]) <= tol32))
                                fail_msg("%s %s n=%d d=%d: out[%d][%d] = %.9g, dequantized f32 %.9g (tol %.3g)", families[f],
                                         s1c_dtype_name(dt), n, d, t, i, got[k], f32[k], tol32);
                        }
                    free(w); free(deq); free(x); free(got); free(want); free(f32);
                }
    }
    kern_select("auto");
}

/* A row alone == inside a batch of 7 (at any position) == any thread split, bitwise. */
static void test_q_batch_invariance(void **state) {
    (void)state;
    enum { B = 7, N = 320, D = 67 };
    s1c_pool *pools[3];
    s1c_err err;
    for (int p = 0; p < 3; p++) assert_int_equal(s1c_pool_new(&pools[p], p + 1, &err), 0);
    s1c_rng r;
    s1c_rng_seed(&r, 22);
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        if (kern_select(families[f]) != 0) continue;
        for (int qi = 0; qi < 2; qi++) {
            float *deq;
            void *w = make_q(&r, qtypes[qi], N, D, &deq);
            float *x = randv(&r, (size_t)B * N, 1.0f);
            float batch[B * D], alone[D], mt[B * D];
            kern_matmul(batch, x, B, w, qtypes[qi], N, D);
            for (int t = 0; t < B; t++) {
                kern_matmul(alone, x + (size_t)t * N, 1, w, qtypes[qi], N, D);
                assert_memory_equal(alone, batch + (size_t)t * D, sizeof alone);
            }
            for (int p = 0; p < 3; p++) {
                kern_matmul_mt(pools[p], mt, x, B, w, qtypes[qi], N, D);
                assert_memory_equal(mt, batch, sizeof mt);
            }
            free(w); free(deq); free(x);
        }
    }
    kern_select("auto");
    for (int p = 0; p < 3; p++) s1c_pool_free(pools[p]);
}

/* The AVX2 family's Q8_0 / Q4_0 rows are the reference's operations lane by lane: bitwise equal,
 * for groups of 8 output rows and their tails, runs of 64 blocks (n = 4864: 152 blocks) and
 * activation rows past its stack buffer (70), on weights of random bytes (Q8_0's -128
 * included: the int16 pair sums' worst case) and activations at the extremes. */
static void test_q_avx2_bitwise(void **state) {
    (void)state;
    if (kern_select("avx2") != 0) {
        printf("# no AVX2 here, skipped\n");
        return;
    }
    static const int shapes[][3] = {{32, 1, 1}, {96, 7, 3}, {896, 8, 1}, {896, 17, 5}, {4864, 9, 2}, {320, 67, 70}};
    s1c_rng r;
    s1c_rng_seed(&r, 23);
    for (int qi = 0; qi < 2; qi++)
        for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
            int n = shapes[k][0], d = shapes[k][1], nr = shapes[k][2], dt = qtypes[qi];
            size_t bb = dt == S1C_Q8_0 ? 34 : 18, bytes = (size_t)d * (size_t)(n / 32) * bb;
            uint8_t *w = malloc(bytes);
            for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)s1c_rng_u64(&r);
            for (size_t b = 0; b < bytes; b += bb) { /* finite scales */
                uint16_t h = s1c_f32_to_f16(0.01f * (float)(1 + s1c_rng_u64(&r) % 100));
                memcpy(w + b, &h, 2);
            }
            if (dt == S1C_Q8_0) memset(w + 2, 0x80, 32); /* a block of -128s */
            float *x = randv(&r, (size_t)nr * n, 1.0f);
            for (int j = 0; j < 32 && j < n; j++) x[j] = j % 2 ? 1.0f : -1.0f; /* quantized to +-127 */
            float *got = malloc((size_t)nr * d * sizeof(float)), *want = malloc((size_t)nr * d * sizeof(float));
            kern_matmul(got, x, nr, w, dt, n, d);
            kern_ref_matmul(want, x, nr, w, dt, n, d);
            if (memcmp(got, want, (size_t)nr * d * sizeof(float)) != 0)
                fail_msg("avx2 %s n=%d d=%d rows=%d: differs from the reference", s1c_dtype_name(dt), n, d, nr);
            free(w); free(x); free(got); free(want);
        }
    kern_select("auto");
}

/* The embedding lookup reads a Q8_0 / Q4_0 row as the dequantizer does. */
static void test_q_get_row(void **state) {
    (void)state;
    s1c_rng r;
    s1c_rng_seed(&r, 23);
    for (int qi = 0; qi < 2; qi++) {
        float *deq, row[96];
        void *w = make_q(&r, qtypes[qi], 96, 5, &deq);
        for (int i = 0; i < 5; i++) {
            kern_get_row(row, w, qtypes[qi], i, 96);
            assert_memory_equal(row, deq + (size_t)i * 96, sizeof row);
        }
        free(w); free(deq);
    }
}

/* Logits of every row of 12 tokens. */
static float *run_model(const char *path, const int32_t *tokens, int n) {
    s1c_err err;
    s1c_model *m;
    if (s1c_model_open(&m, path, &err) != 0) fail_msg("%s", err.msg);
    const s1c_config *c = s1c_model_config(m);
    s1c_kv *kv;
    s1c_fwd *f;
    assert_int_equal(s1c_kv_new(&kv, c, 16, 4, S1C_F32, &err), 0);
    assert_int_equal(s1c_fwd_new(&f, m, n, 64, &err), 0);
    mr_seq s;
    mr_seq_alloc(&s, kv, n);
    float *logits = malloc((size_t)n * c->vocab_size * sizeof(float));
    assert_int_equal(mr_forward(f, kv, &s, tokens, 0, n, logits), 0);
    s1c_fwd_free(f);
    s1c_kv_free(kv);
    s1c_model_free(m);
    return logits;
}

/* The tiny Qwen2 shape with every matrix in q8_0 / q4_0 (its 176-wide FFN rows fall back to
 * f16, as llama.cpp's converter does), against the same weights dequantized to f32: the
 * activations' 8-bit rounding moves the logits by well under 5% of their spread. */
static void test_q_model(void **state) {
    (void)state;
    char *hf = tu_path("S1C_TMP", "qk_hf"), *q = tu_path("S1C_TMP", "qk_q.gguf"), *f = tu_path("S1C_TMP", "qk_f32.gguf");
    s1c_err err;
    s1c_config c;
    assert_int_equal(s1c_config_preset(&c, "qwen2", "tiny", &err), 0);
    assert_int_equal(s1c_model_init_hf(&c, 5, S1C_F32, hf, &err), 0);
    int32_t tokens[12];
    for (int i = 0; i < 12; i++) tokens[i] = (i * 37 + 11) % c.vocab_size;
    for (int qi = 0; qi < 2; qi++) {
        if (s1c_model_convert(hf, q, qtypes[qi], &err) != 0) fail_msg("%s", err.msg);
        if (s1c_model_convert(q, f, S1C_F32, &err) != 0) fail_msg("%s", err.msg); /* exact dequantization */
        float *lq = run_model(q, tokens, 12), *lf = run_model(f, tokens, 12);
        size_t n = (size_t)12 * c.vocab_size;
        double lo = 1e30, hi = -1e30, maxdiff = 0;
        for (size_t i = 0; i < n; i++) {
            lo = fmin(lo, lf[i]), hi = fmax(hi, lf[i]);
            maxdiff = fmax(maxdiff, fabs((double)lq[i] - lf[i]));
        }
        if (!(maxdiff <= 0.05 * (hi - lo)) || maxdiff == 0)
            fail_msg("%s model: max logit difference %.4g vs spread %.4g", s1c_dtype_name(qtypes[qi]), maxdiff, hi - lo);
        free(lq);
        free(lf);
    }
    free(hf); free(q); free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q_vs_ref_and_f32),
        cmocka_unit_test(test_q_batch_invariance),
        cmocka_unit_test(test_q_avx2_bitwise),
        cmocka_unit_test(test_q_get_row),
        cmocka_unit_test(test_q_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
