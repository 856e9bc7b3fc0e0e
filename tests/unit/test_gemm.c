/* kern_sgemm (the trainer's matrix product) against the scalar reference, and its thread
 * invariance.
 *
 * Every family this CPU runs ("ref" through the dispatcher, avx512, avx2) is compared with
 * kern_ref_sgemm for every trans_a/trans_b combination, beta 0 and 1, ragged sizes (1, primes,
 * sizes that cross the 12/32/6/16 tiles and the 96 x 256 x 512 cache blocks) and leading
 * dimensions larger than the rows. With beta 0 C starts full of NaNs (it must not be read);
 * the padding between rows (ldc > N) holds a sentinel that must survive. Tolerance:
 * |fast - ref| <= (K + 1) * FLT_EPSILON * (|beta c| + sum_k |a b|) + 1e-30 — both start from
 * the same value and add the same products in the same order, the fast one with fused
 * multiply-adds, so each of the K steps may round differently by at most one ulp of the
 * running magnitude. Thread invariance is bitwise: pools of 1, 2 and 3 threads, and a block
 * of rows computed on its own, give exactly the full product's bits. kern_sgemm_bf16 is held
 * to the same bound against kern_ref_sgemm_bf16 (the products of two bf16 values are exact in
 * f32, so only the summation differs; odd K pads a pair), to bitwise thread invariance, and
 * to 2^-7 * sum|a b| (two bf16 roundings) against the f32 product. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "testutil.h"

static const char *families[] = {"ref", "avx512", "avx2"};
static const float SENTINEL = 12345.0f;

typedef struct shape {
    int M, N, K;
} shape;

static float *randv(s1c_rng *r, size_t n) {
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = s1c_rng_normal(r);
    return v;
}

/* op(A) and op(B) stored with leading dimensions ld_pad larger than needed */
typedef struct operands {
    bool ta, tb;
    int M, N, K, lda, ldb, ldc;
    float *A, *B, *C0; /* C0: the initial C (for beta 1) */
} operands;

static operands make_ops(s1c_rng *r, bool ta, bool tb, shape s, int pad) {
    operands o = {ta, tb, s.M, s.N, s.K, 0, 0, s.N + pad, NULL, NULL, NULL};
    o.lda = (ta ? s.M : s.K) + pad;
    o.ldb = (tb ? s.K : s.N) + pad;
    o.A = randv(r, (size_t)(ta ? (s.K > 0 ? s.K : 1) : s.M) * o.lda);
    o.B = randv(r, (size_t)(tb ? s.N : (s.K > 0 ? s.K : 1)) * o.ldb);
    o.C0 = randv(r, (size_t)s.M * o.ldc);
    return o;
}

static void free_ops(operands *o) { free(o->A); free(o->B); free(o->C0); }

static float at_a(const operands *o, int m, int k) { return o->ta ? o->A[(size_t)k * o->lda + m] : o->A[(size_t)m * o->lda + k]; }
static float at_b(const operands *o, int k, int n) { return o->tb ? o->B[(size_t)n * o->ldb + k] : o->B[(size_t)k * o->ldb + n]; }

/* A C buffer for the call: NaN where the product goes (beta 0) or C0 (beta 1), the sentinel in
 * the row padding. */
static float *start_c(const operands *o, float beta) {
    float *c = malloc((size_t)o->M * o->ldc * sizeof(float));
    for (int m = 0; m < o->M; m++)
        for (int n = 0; n < o->ldc; n++)
            c[(size_t)m * o->ldc + n] = n >= o->N ? SENTINEL : beta == 0.0f ? NAN : o->C0[(size_t)m * o->ldc + n];
    return c;
}

static void run_p(s1c_pool *pool, bool bf16, const operands *o, float beta, float *c) {
    (bf16 ? kern_sgemm_bf16 : kern_sgemm)(pool, o->ta, o->tb, o->M, o->N, o->K, o->A, o->lda, o->B, o->ldb, beta, c, o->ldc);
}

static void run(s1c_pool *pool, const operands *o, float beta, float *c) { run_p(pool, false, o, beta, c); }

static float rnd(float v) { return s1c_bf16_to_f32(s1c_f32_to_bf16(v)); }

static void check_vs_ref_p(const char *fam, bool bf16, const operands *o, float beta) {
    float *got = start_c(o, beta), *want = start_c(o, beta);
    run_p(NULL, bf16, o, beta, got);
    (bf16 ? kern_ref_sgemm_bf16 : kern_ref_sgemm)(o->ta, o->tb, o->M, o->N, o->K, o->A, o->lda, o->B, o->ldb, beta, want, o->ldc);
    for (int m = 0; m < o->M; m++)
        for (int n = 0; n < o->ldc; n++) {
            size_t i = (size_t)m * o->ldc + n;
            if (n >= o->N) {
                if (got[i] != SENTINEL) fail_msg("%s: C[%d][%d] past N=%d was written", fam, m, n, o->N);
                continue;
            }
            double mag = beta == 0.0f ? 0.0 : fabs((double)o->C0[i]);
            for (int k = 0; k < o->K; k++)
                mag += bf16 ? fabs((double)rnd(at_a(o, m, k)) * rnd(at_b(o, k, n))) : fabs((double)at_a(o, m, k) * at_b(o, k, n));
            double tol = (o->K + 1) * FLT_EPSILON * mag + 1e-30, diff = fabs((double)got[i] - want[i]);
            if (!(diff <= tol))
                fail_msg("%s%s ta=%d tb=%d M=%d N=%d K=%d beta=%g: C[%d][%d] = %.9g, ref %.9g (diff %.3g > tol %.3g)", fam,
                         bf16 ? " bf16" : "", o->ta, o->tb, o->M, o->N, o->K, beta, m, n, got[i], want[i], diff, tol);
        }
    free(got);
    free(want);
}

static void check_vs_ref(const char *fam, const operands *o, float beta) { check_vs_ref_p(fam, false, o, beta); }

static void test_gemm_vs_ref(void **state) {
    (void)state;
    static const shape shapes[] = {{1, 1, 1},   {1, 7, 16},   {7, 16, 1},   {2, 3, 5},     {13, 31, 17},  {12, 32, 8},
                                   {11, 33, 29}, {25, 65, 64}, {37, 5, 100}, {97, 61, 257}, {99, 70, 260}, {13, 530, 40}};
    s1c_rng r;
    s1c_rng_seed(&r, 11);
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        if (kern_select(families[f]) != 0) continue;
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (int t = 0; t < 4; t++) {
                bool ta = t & 1, tb = t & 2;
                /* the reference's own dispatch needs no large shapes (they cost seconds under ASan) */
                if (f == 0 && shapes[s].M * shapes[s].N > 4000) continue;
                /* the last two cross every cache block (96 x 256 x 512): (0,0) and (1,1) take all four packing paths */
                if (s >= 9 && (t == 1 || t == 2)) continue;
                operands o = make_ops(&r, ta, tb, shapes[s], (int)(s % 3) * 3);
                check_vs_ref(families[f], &o, 0.0f);
                check_vs_ref(families[f], &o, 1.0f);
                free_ops(&o);
            }
    }
    kern_select("auto");
}

/* The trainer's three products of a linear layer, at tests' sizes (T = 7 tokens, n = 16). */
static void test_gemm_trainer_shapes(void **state) {
    (void)state;
    enum { T = 7, NN = 16, D = 24 };
    s1c_rng r;
    s1c_rng_seed(&r, 12);
    float *X = randv(&r, T * NN), *W = randv(&r, D * NN), *dY = randv(&r, T * D);
    float Y[T * D], dX[T * NN], dW[D * NN] = {0};
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        if (kern_select(families[f]) != 0) continue;
        kern_sgemm(NULL, false, true, T, D, NN, X, NN, W, NN, 0.0f, Y, D);   /* Y = X W^T */
        kern_sgemm(NULL, false, false, T, NN, D, dY, D, W, NN, 0.0f, dX, NN); /* dX = dY W */
        memset(dW, 0, sizeof dW);
        kern_sgemm(NULL, true, false, D, NN, T, dY, D, X, NN, 1.0f, dW, NN); /* dW += dY^T X */
        kern_sgemm(NULL, true, false, D, NN, T, dY, D, X, NN, 1.0f, dW, NN); /* twice: 2 dY^T X */
        for (int t = 0; t < T; t++)
            for (int i = 0; i < D; i++) {
                double s = 0;
                for (int j = 0; j < NN; j++) s += (double)X[t * NN + j] * W[i * NN + j];
                assert_true(fabs(s - Y[t * D + i]) <= 1e-5 * (1 + fabs(s)));
            }
        for (int t = 0; t < T; t++)
            for (int j = 0; j < NN; j++) {
                double s = 0;
                for (int i = 0; i < D; i++) s += (double)dY[t * D + i] * W[i * NN + j];
                assert_true(fabs(s - dX[t * NN + j]) <= 1e-5 * (1 + fabs(s)));
            }
        for (int i = 0; i < D; i++)
            for (int j = 0; j < NN; j++) {
                double s = 0;
                for (int t = 0; t < T; t++) s += (double)dY[t * D + i] * X[t * NN + j];
                assert_true(fabs(2 * s - dW[i * NN + j]) <= 1e-5 * (1 + fabs(s)));
            }
    }
    kern_select("auto");
    free(X); free(W); free(dY);
}

/* K = 0: beta 0 writes zeros (over NaNs), beta 1 leaves C; another beta scales C. */
static void test_gemm_edge_cases(void **state) {
    (void)state;
    s1c_rng r;
    s1c_rng_seed(&r, 13);
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        if (kern_select(families[f]) != 0) continue;
        operands o = make_ops(&r, false, false, (shape){5, 9, 0}, 2);
        float *c = start_c(&o, 0.0f);
        run(NULL, &o, 0.0f, c);
        for (int m = 0; m < 5; m++)
            for (int n = 0; n < 9; n++) assert_true(c[m * o.ldc + n] == 0.0f);
        free(c);
        c = start_c(&o, 1.0f);
        run(NULL, &o, 1.0f, c);
        for (int m = 0; m < 5; m++) assert_memory_equal(c + m * o.ldc, o.C0 + m * o.ldc, 9 * sizeof(float));
        free(c);
        free_ops(&o);
        o = make_ops(&r, true, true, (shape){19, 40, 23}, 1);
        check_vs_ref(families[f], &o, 0.5f);
        free_ops(&o);
        /* M or N of 0: nothing is touched */
        float one = 7.0f;
        kern_sgemm(NULL, false, false, 0, 3, 3, &one, 3, &one, 3, 0.0f, &one, 3);
        kern_sgemm(NULL, false, false, 3, 0, 3, &one, 3, &one, 3, 0.0f, &one, 0);
        assert_true(one == 7.0f);
    }
    kern_select("auto");
}

/* Bitwise: pools of 1, 2, 3 threads == no pool == a block of rows or columns on its own. */
static void test_gemm_thread_invariance(void **state) {
    (void)state;
    static const shape shapes[] = {{130, 75, 300}, {20, 700, 100}, {97, 97, 260}};
    s1c_pool *pools[3];
    s1c_err err;
    for (int p = 0; p < 3; p++) assert_int_equal(s1c_pool_new(&pools[p], p + 1, &err), 0);
    s1c_rng r;
    s1c_rng_seed(&r, 14);
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        if (kern_select(families[f]) != 0) continue;
        for (size_t s = 0; s < (f == 0 ? 1 : sizeof shapes / sizeof *shapes); s++) /* ref: one shape (slow under ASan) */
            for (int t = 0; t < 4; t++)
                for (int bi = 0; bi < 2; bi++) {
                    float beta = (float)bi;
                    operands o = make_ops(&r, t & 1, t & 2, shapes[s], 1);
                    float *want = start_c(&o, beta);
                    run(NULL, &o, beta, want);
                    size_t bytes = (size_t)o.M * o.ldc * sizeof(float);
                    for (int p = 0; p < 3; p++) {
                        float *got = start_c(&o, beta);
                        run(pools[p], &o, beta, got);
                        if (memcmp(got, want, bytes) != 0)
                            fail_msg("%s: %d threads differ from one (M=%d N=%d K=%d ta=%d tb=%d)", families[f], p + 1, o.M, o.N, o.K,
                                     o.ta, o.tb);
                        free(got);
                    }
                    /* rows [5, 5+h) alone: op(A) starts 5 rows later; columns [3, 3+w) alone */
                    float *got = start_c(&o, beta);
                    int h = o.M - 9, w = o.N - 7;
                    const float *a5 = o.ta ? o.A + 5 : o.A + (size_t)5 * o.lda;
                    kern_sgemm(NULL, o.ta, o.tb, h, o.N, o.K, a5, o.lda, o.B, o.ldb, beta, got + (size_t)5 * o.ldc, o.ldc);
                    for (int m = 5; m < 5 + h; m++)
                        if (memcmp(got + (size_t)m * o.ldc, want + (size_t)m * o.ldc, (size_t)o.N * sizeof(float)) != 0)
                            fail_msg("%s: row %d differs when rows 5..%d are computed alone", families[f], m, 4 + h);
                    free(got);
                    got = start_c(&o, beta);
                    const float *b3 = o.tb ? o.B + (size_t)3 * o.ldb : o.B + 3;
                    kern_sgemm(NULL, o.ta, o.tb, o.M, w, o.K, o.A, o.lda, b3, o.ldb, beta, got + 3, o.ldc);
                    for (int m = 0; m < o.M; m++)
                        if (memcmp(got + (size_t)m * o.ldc + 3, want + (size_t)m * o.ldc + 3, (size_t)w * sizeof(float)) != 0)
                            fail_msg("%s: row %d differs when columns 3..%d are computed alone", families[f], m, 2 + w);
                    free(got);
                    free(want);
                    free_ops(&o);
                }
    }
    kern_select("auto");
    for (int p = 0; p < 3; p++) s1c_pool_free(pools[p]);
}

static void test_gemm_bf16(void **state) {
    (void)state;
    static const shape shapes[] = {{1, 1, 1}, {2, 3, 5}, {13, 31, 17}, {12, 32, 8}, {25, 65, 64}, {37, 5, 101}, {97, 61, 257}, {99, 70, 515}, {13, 530, 40}};
    s1c_pool *pool;
    s1c_err err;
    assert_int_equal(s1c_pool_new(&pool, 2, &err), 0);
    s1c_rng r;
    s1c_rng_seed(&r, 15);
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        if (kern_select(families[f]) != 0) continue;
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (int t = 0; t < 4; t++) {
                /* the last two cross every cache block (k in pairs: 512 < 515); (0,0) and (1,1) take all packing paths */
                bool big = s >= 7;
                if ((f == 0 && shapes[s].M * shapes[s].N > 4000) || (big && (t == 1 || t == 2))) continue;
                operands o = make_ops(&r, t & 1, t & 2, shapes[s], (int)(s % 3) * 3);
                check_vs_ref_p(families[f], true, &o, 0.0f);
                check_vs_ref_p(families[f], true, &o, 1.0f);
                /* near the f32 product: each factor within 2^-9 relative, so a product 2^-8 */
                float *b = start_c(&o, 0.0f), *w = start_c(&o, 0.0f);
                run_p(NULL, true, &o, 0.0f, b);
                run_p(NULL, false, &o, 0.0f, w);
                for (int m = 0; m < o.M; m++)
                    for (int n = 0; n < o.N; n++) {
                        double mag = 0;
                        for (int k = 0; k < o.K; k++) mag += fabs((double)at_a(&o, m, k) * at_b(&o, k, n));
                        size_t i = (size_t)m * o.ldc + n;
                        if (!(fabs((double)b[i] - w[i]) <= (1.0 / 128 + (o.K + 1) * FLT_EPSILON) * mag + 1e-30))
                            fail_msg("%s bf16 vs f32 M=%d N=%d K=%d: C[%d][%d] %.9g vs %.9g", families[f], o.M, o.N, o.K, m, n, b[i], w[i]);
                    }
                /* threads: bitwise */
                if (big || s == 6) {
                    float *p2 = start_c(&o, 1.0f), *p1 = start_c(&o, 1.0f);
                    run_p(pool, true, &o, 1.0f, p2);
                    run_p(NULL, true, &o, 1.0f, p1);
                    assert_memory_equal(p1, p2, (size_t)o.M * o.ldc * sizeof(float));
                    free(p1);
                    free(p2);
                }
                free(b);
                free(w);
                free_ops(&o);
            }
    }
    kern_select("auto");
    s1c_pool_free(pool);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_vs_ref),
        cmocka_unit_test(test_gemm_trainer_shapes),
        cmocka_unit_test(test_gemm_edge_cases),
        cmocka_unit_test(test_gemm_thread_invariance),
        cmocka_unit_test(test_gemm_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
