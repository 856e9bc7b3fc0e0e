/* Sampler: greedy ties, penalties, and the distributions temperature / top-k / top-p / min-p
 * produce, checked by drawing many samples against the analytic probabilities. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/infer.h"
#include "testutil.h"

#define N 4
#define DRAWS 40000

/* Empirical frequencies of each token from DRAWS samples of fixed probabilities p. */
static void frequencies(s1c_sampler_params sp, const double *p, double *freq) {
    s1c_err err;
    s1c_sampler *s;
    assert_int_equal(s1c_sampler_new(&s, &sp, N, &err), 0);
    memset(freq, 0, N * sizeof(double));
    for (int i = 0; i < DRAWS; i++) {
        float logits[N];
        for (int k = 0; k < N; k++) logits[k] = (float)log(p[k]);
        int t = s1c_sampler_sample(s, logits, NULL, 0);
        assert_true(t >= 0 && t < N);
        freq[t] += 1.0 / DRAWS;
    }
    s1c_sampler_free(s);
}

/* 4 standard deviations of a binomial proportion, plus a floor */
static void expect(const double *freq, const double *want) {
    for (int k = 0; k < N; k++) {
        double tol = 4 * sqrt(want[k] * (1 - want[k]) / DRAWS) + 1e-9;
        if (fabs(freq[k] - want[k]) > tol) fail_msg("token %d: frequency %.4f, expected %.4f (tol %.4f)", k, freq[k], want[k], tol);
    }
}

static const double P[N] = {0.5, 0.3, 0.15, 0.05};

static void test_plain(void **st) {
    (void)st;
    s1c_sampler_params sp = s1c_sampler_defaults();
    sp.temperature = 1.0f;
    double f[N];
    frequencies(sp, P, f);
    expect(f, P);
}

static void test_temperature(void **st) {
    (void)st;
    s1c_sampler_params sp = s1c_sampler_defaults();
    sp.temperature = 2.0f; /* p^(1/2), renormalized */
    double w[N], z = 0, f[N];
    for (int k = 0; k < N; k++) z += w[k] = sqrt(P[k]);
    for (int k = 0; k < N; k++) w[k] /= z;
    frequencies(sp, P, f);
    expect(f, w);
}

static void test_top_k_top_p_min_p(void **st) {
    (void)st;
    double f[N];
    s1c_sampler_params sp = s1c_sampler_defaults();
    sp.temperature = 1.0f;
    sp.top_k = 2; /* {0.5, 0.3} */
    frequencies(sp, P, f);
    expect(f, (double[N]){0.625, 0.375, 0, 0});
    sp.top_k = 0;
    sp.top_p = 0.9f; /* smallest prefix with mass >= 0.9: {0.5, 0.3, 0.15} */
    frequencies(sp, P, f);
    expect(f, (double[N]){0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0});
    sp.top_p = 1.0f;
    sp.min_p = 0.5f; /* keep p >= 0.25 */
    frequencies(sp, P, f);
    expect(f, (double[N]){0.625, 0.375, 0, 0});
}

static void test_greedy_and_penalty(void **st) {
    (void)st;
    s1c_err err;
    s1c_sampler *s;
    s1c_sampler_params sp = s1c_sampler_defaults();
    assert_int_equal(s1c_sampler_new(&s, &sp, N, &err), 0);
    float l1[N] = {1, 3, 3, 0};
    assert_int_equal(s1c_sampler_sample(s, l1, NULL, 0), 1); /* lowest id among ties */
    s1c_sampler_free(s);
    sp.repeat_penalty = 2.0f;
    assert_int_equal(s1c_sampler_new(&s, &sp, N, &err), 0);
    float l2[N] = {2, -1, 1.5f, 0};
    int32_t hist[3] = {0, 1, 0}; /* token 0 seen twice: penalized once */
    assert_int_equal(s1c_sampler_sample(s, l2, hist, 3), 2);
    assert_true(l2[0] == 1.0f && l2[1] == -2.0f && l2[2] == 1.5f);
    s1c_sampler_free(s);
}

static void test_seed_determinism(void **st) {
    (void)st;
    s1c_err err;
    s1c_sampler_params sp = s1c_sampler_defaults();
    sp.temperature = 1.0f;
    sp.seed = 1234;
    int seq[2][64];
    for (int r = 0; r < 2; r++) {
        s1c_sampler *s;
        assert_int_equal(s1c_sampler_new(&s, &sp, N, &err), 0);
        for (int i = 0; i < 64; i++) {
            float l[N] = {0, 0, 0, 0};
            seq[r][i] = s1c_sampler_sample(s, l, NULL, 0);
        }
        s1c_sampler_free(s);
    }
    assert_memory_equal(seq[0], seq[1], sizeof seq[0]);
}

static void test_bad_params(void **st) {
    (void)st;
    s1c_err err;
    s1c_sampler_params sp = s1c_sampler_defaults();
    sp.top_p = 0.0f;
    assert_int_equal(s1c_sampler_check(&sp, &err), -1);
    sp = s1c_sampler_defaults();
    sp.temperature = -1.0f;
    assert_int_equal(s1c_sampler_check(&sp, &err), -1);
    sp = s1c_sampler_defaults();
    sp.min_p = 1.5f;
    assert_int_equal(s1c_sampler_check(&sp, &err), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain), cmocka_unit_test(test_temperature), cmocka_unit_test(test_top_k_top_p_min_p),
        cmocka_unit_test(test_greedy_and_penalty), cmocka_unit_test(test_seed_determinism), cmocka_unit_test(test_bad_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
