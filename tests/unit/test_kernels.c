/* The fast kernels against the scalar reference, and their batch invariance.
 *
 * Every family this CPU runs (avx512, avx2) is compared with kern_ref_* on random shapes with
 * odd sizes and tails (n not a multiple of 8 or 16; d = 1, 3, 17, ...), for F32, BF16 and F16
 * weights. Tolerance: |fast - ref| <= n * FLT_EPSILON * sum_j |w_j x_j| (+1e-30), the
 * worst-case gap between two summation orders of the same n products (each is within
 * ~n*u*sum|w x| of the exact sum, u = FLT_EPSILON/2); the weights are widened exactly in both,
 * so no dtype adds error. Batch invariance is bitwise: a row computed alone, inside a batch
 * of 7 (at any position), and with 1, 2 or 3 threads splitting the output rows gives the same
 * bits. The pool itself: every task runs exactly once, for any thread count, also when two
 * threads use one pool at the same time. */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "testutil.h"

static const char *families[] = {"avx512", "avx2"};
static const int dtypes[] = {S1C_F32, S1C_BF16, S1C_F16};

static void *make_weights(s1c_rng *r, int dtype, int n, int d) {
    size_t cnt = (size_t)n * (size_t)d;
    if (dtype == S1C_F32) {
        float *w = malloc(cnt * sizeof(float));
        for (size_t i = 0; i < cnt; i++) w[i] = s1c_rng_normal(r);
        return w;
    }
    uint16_t *w = malloc(cnt * sizeof(uint16_t));
    for (size_t i = 0; i < cnt; i++) {
        float v = s1c_rng_normal(r);
        w[i] = dtype == S1C_BF16 ? s1c_f32_to_bf16(v) : s1c_f32_to_f16(v);
    }
    return w;
}

static float weight_at(const void *w, int dtype, size_t i) {
    if (dtype == S1C_F32) return ((const float *)w)[i];
    uint16_t h = ((const uint16_t *)w)[i];
    return dtype == S1C_BF16 ? s1c_bf16_to_f32(h) : s1c_f16_to_f32(h);
}

static float *make_x(s1c_rng *r, size_t cnt) {
    float *x = malloc(cnt * sizeof(float));
    for (size_t i = 0; i < cnt; i++) x[i] = s1c_rng_normal(r);
    return x;
}

static void test_matmul_vs_ref(void **state) {
    (void)state;
    static const int ns[] = {1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 257};
    static const int ds[] = {1, 3, 4, 5, 17, 33};
    static const int rows[] = {1, 2, 3, 4, 5, 7, 9};
    s1c_rng r;
    s1c_rng_seed(&r, 1);
    int tested = 0;
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        if (kern_select(families[f]) != 0) continue;
        tested++;
        for (size_t di = 0; di < 3; di++)
            for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
                for (size_t b = 0; b < sizeof ds / sizeof *ds; b++) {
                    int n = ns[a], d = ds[b], nr = rows[(a + b) % 7], dt = dtypes[di];
                    void *w = make_weights(&r, dt, n, d);
                    float *x = make_x(&r, (size_t)nr * n);
                    float *got = malloc((size_t)nr * d * sizeof(float)), *want = malloc((size_t)nr * d * sizeof(float));
                    kern_matmul(got, x, nr, w, dt, n, d);
                    kern_ref_matmul(want, x, nr, w, dt, n, d);
                    for (int t = 0; t < nr; t++)
                        for (int i = 0; i < d; i++) {
                            double mag = 0;
                            for (int j = 0; j < n; j++) mag += fabs((double)weight_at(w, dt, (size_t)i * n + j) * x[(size_t)t * n + j]);
                            double tol = n * FLT_EPSILON * mag + 1e-30, diff = fabs((double)got[t * d + i] - want[t * d + i]);
                            if (!(diff <= tol))
                                fail_msg("%s dtype %d n=%d d=%d rows=%d: out[%d][%d] = %.9g, ref %.9g (diff %.3g > tol %.3g)",
                                         families[f], dt, n, d, nr, t, i, got[t * d + i], want[t * d + i], diff, tol);
                        }
                    free(w); free(x); free(got); free(want);
                }
    }
    kern_select("auto");
    if (!tested) skip();
}

static void test_vector_kernels_vs_ref(void **state) {
    (void)state;
    static const int ns[] = {1, 3, 7, 8, 9, 16, 17, 63, 64, 65, 896};
    s1c_rng r;
    s1c_rng_seed(&r, 2);
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        if (kern_select(families[f]) != 0) continue;
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++) {
            int n = ns[a];
            float *x = make_x(&r, (size_t)n), *y = make_x(&r, (size_t)n), *w = make_x(&r, (size_t)n);
            float *o1 = malloc((size_t)n * sizeof(float)), *o2 = malloc((size_t)n * sizeof(float));
            double mag = 0, ss = 0;
            for (int i = 0; i < n; i++) { mag += fabs((double)x[i] * y[i]); ss += (double)x[i] * x[i]; }
            /* dot: the same summation-order bound as the matmul */
            assert_true(fabs((double)kern_dot(x, y, n) - kern_ref_dot(x, y, n)) <= n * FLT_EPSILON * mag + 1e-30);
            /* axpy: one FMA against a multiply and an add: within one rounding of |y| + |a x| */
            memcpy(o1, y, (size_t)n * sizeof(float));
            memcpy(o2, y, (size_t)n * sizeof(float));
            kern_axpy(o1, 0.37f, x, n);
            kern_ref_axpy(o2, 0.37f, x, n);
            for (int i = 0; i < n; i++) assert_true(fabs((double)o1[i] - o2[i]) <= 2 * FLT_EPSILON * (fabs(y[i]) + fabs(0.37 * x[i])));
            /* rmsnorm: the sum of squares to n*eps relative, so the scale to ~n*eps/2 and each
             * output to that plus two roundings */
            kern_rmsnorm(o1, x, w, n, 1e-6f);
            kern_ref_rmsnorm(o2, x, w, n, 1e-6f);
            double rms = sqrt(ss / n + 1e-6);
            for (int i = 0; i < n; i++) {
                double tol = (n * FLT_EPSILON + 4 * FLT_EPSILON) * fabs((double)w[i] * x[i] / rms) + 1e-30;
                if (!(fabs((double)o1[i] - o2[i]) <= tol)) fail_msg("%s rmsnorm n=%d [%d]: %.9g vs %.9g", families[f], n, i, o1[i], o2[i]);
            }
            /* in place (o aliases x) gives the same bits */
            memcpy(o2, x, (size_t)n * sizeof(float));
            kern_rmsnorm(o2, o2, w, n, 1e-6f);
            kern_rmsnorm(o1, x, w, n, 1e-6f);
            assert_memory_equal(o1, o2, (size_t)n * sizeof(float));
            free(x); free(y); free(w); free(o1); free(o2);
        }
    }
    kern_select("auto");
}

/* kern_argmax is the scalar fold's answer in every family: the first index of the largest value
 * (ties among many equal maxima, the maximum in the tail or in any of the vector chains), NaNs
 * anywhere but x[0] ignored, x[0] NaN giving 0, all -inf giving 0, lengths around the vector
 * steps and a vocabulary's. */
static void test_argmax_vs_ref(void **state) {
    (void)state;
    static const int ns[] = {1, 2, 15, 16, 17, 63, 64, 65, 127, 128, 129, 1000, 151936};
    s1c_rng r;
    s1c_rng_seed(&r, 11);
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        if (kern_select(families[f]) != 0) continue;
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++) {
            int n = ns[a];
            float *x = malloc((size_t)n * sizeof(float));
            for (int c = 0; c < 8; c++) {
                for (int i = 0; i < n; i++) x[i] = c == 1 ? (float)(s1c_rng_u64(&r) % 4) : c == 6 ? -INFINITY : s1c_rng_normal(&r);
                int at = (int)(s1c_rng_u64(&r) % (uint64_t)n);
                if (c == 2) x[at] = 100.0f, x[n - 1] = 100.0f;                       /* a tie, one at the end */
                if (c == 3) x[n - 1] = 100.0f;                                      /* the tail */
                if (c == 4) x[at] = NAN;                                            /* NaN somewhere */
                if (c == 5) x[0] = NAN;                                             /* NaN first */
                if (c == 7) x[at] = 50.0f, x[at / 2] = 50.0f, x[(at + n) / 2] = 50.0f; /* equal maxima */
                int got = kern_argmax(x, n), want = kern_ref_argmax(x, n);
                if (got != want) fail_msg("%s argmax n=%d case %d: %d, the fold says %d", families[f], n, c, got, want);
            }
            free(x);
        }
    }
    kern_select("auto");
}

/* A row alone == the row inside a batch of 7 == any thread split, bitwise, for every family
 * (the reference included). */
static void test_batch_invariance(void **state) {
    (void)state;
    static const char *all[] = {"ref", "avx512", "avx2"};
    static const int shapes[][2] = {{896, 130}, {257, 67}, {64, 33}, {17, 9}};
    enum { B = 7 };
    s1c_pool *pools[3];
    s1c_err err;
    for (int p = 0; p < 3; p++) assert_int_equal(s1c_pool_new(&pools[p], p + 1, &err), 0);
    s1c_rng r;
    s1c_rng_seed(&r, 3);
    for (size_t f = 0; f < 3; f++) {
        if (kern_select(all[f]) != 0) continue;
        for (size_t di = 0; di < 3; di++)
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
                int n = shapes[s][0], d = shapes[s][1], dt = dtypes[di];
                void *w = make_weights(&r, dt, n, d);
                float *x = make_x(&r, (size_t)B * n);
                float *batch = malloc((size_t)B * d * sizeof(float)), *other = malloc((size_t)B * d * sizeof(float));
                kern_matmul(batch, x, B, w, dt, n, d);
                for (int t = 0; t < B; t++) {
                    kern_matmul(other, x + (size_t)t * n, 1, w, dt, n, d);
                    if (memcmp(other, batch + (size_t)t * d, (size_t)d * sizeof(float)) != 0)
                        fail_msg("%s dtype %d %dx%d: row %d alone differs from the batch", all[f], dt, d, n, t);
                }
                /* rows 2..5 as a batch of 4 (another blocking of the same rows) */
                kern_matmul(other, x + 2 * (size_t)n, 4, w, dt, n, d);
                assert_memory_equal(other, batch + 2 * (size_t)d, 4 * (size_t)d * sizeof(float));
                for (int p = 0; p < 3; p++) {
                    memset(other, 0, (size_t)B * d * sizeof(float));
                    kern_matmul_mt(pools[p], other, x, B, w, dt, n, d);
                    if (memcmp(other, batch, (size_t)B * d * sizeof(float)) != 0)
                        fail_msg("%s dtype %d %dx%d: %d threads differ from one", all[f], dt, d, n, p + 1);
                    kern_matmul_mt(pools[p], other, x + 6 * (size_t)n, 1, w, dt, n, d);
                    assert_memory_equal(other, batch + 6 * (size_t)d, (size_t)d * sizeof(float));
                }
                free(w); free(x); free(batch); free(other);
            }
    }
    for (int p = 0; p < 3; p++) s1c_pool_free(pools[p]);
    kern_select("auto");
}

/* ---------------------------------------------------------------- the pool */

typedef struct count_ctx {
    int *hits;
} count_ctx;

static void count_task(void *ctx, int task, int n_tasks) {
    count_ctx *c = ctx;
    assert_true(task >= 0 && task < n_tasks);
    c->hits[task]++; /* tasks own disjoint slots */
}

static void test_pool_runs_each_task_once(void **state) {
    (void)state;
    s1c_err err;
    for (int T = 1; T <= 4; T++) {
        s1c_pool *p;
        assert_int_equal(s1c_pool_new(&p, T, &err), 0);
        assert_int_equal(s1c_pool_threads(p), T);
        for (int round = 0; round < 200; round++) {
            int n = round % 13;
            int hits[13] = {0};
            count_ctx c = {hits};
            s1c_pool_run(p, n, count_task, &c);
            for (int t = 0; t < n; t++) assert_int_equal(hits[t], 1);
        }
        s1c_pool_free(p);
    }
    assert_non_null(s1c_pool_global());
    assert_true(s1c_pool_threads(s1c_pool_global()) >= 1);
}

typedef struct shared_ctx {
    s1c_pool *p;
    int ok;
} shared_ctx;

static void *hammer(void *arg) {
    shared_ctx *s = arg;
    s->ok = 1;
    for (int round = 0; round < 300; round++) {
        int hits[9] = {0};
        count_ctx c = {hits};
        s1c_pool_run(s->p, 9, count_task, &c);
        for (int t = 0; t < 9; t++)
            if (hits[t] != 1) s->ok = 0;
    }
    return NULL;
}

static void test_pool_shared_by_two_threads(void **state) {
    (void)state;
    s1c_err err;
    s1c_pool *p;
    assert_int_equal(s1c_pool_new(&p, 2, &err), 0);
    shared_ctx a = {p, 0}, b = {p, 0};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, hammer, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, hammer, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_true(a.ok && b.ok);
    s1c_pool_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_vs_ref),
        cmocka_unit_test(test_vector_kernels_vs_ref),
        cmocka_unit_test(test_argmax_vs_ref),
        cmocka_unit_test(test_batch_invariance),
        cmocka_unit_test(test_pool_runs_each_task_once),
        cmocka_unit_test(test_pool_shared_by_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
