/* Sampler: greedy ties, penalties, and the distributions temperature / top-k / top-p / min-p
 * produce, checked by drawing many samples against the analytic probabilities; on vocabularies
 * of real size, every draw against the definition computed plainly (a full sort), in each
 * kernel family. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/vmath.h"
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

/* ---- The sampler's definition written out plainly (sampler.c builds the order lazily, a band
 * of probabilities at a time): every token's weight, a full sort, the cuts, the draw. */
typedef struct {
    float p;
    int id;
} ref_cand;

static int ref_cmp(const void *a, const void *b) {
    const ref_cand *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

static int ref_sample(const s1c_sampler_params *sp, s1c_rng *rng, const float *logits, int V) {
    float *c = malloc((size_t)V * sizeof *c), inv = 1.0f / sp->temperature, mx = -INFINITY;
    ref_cand *o = malloc((size_t)V * sizeof *o);
    assert_non_null(c);
    assert_non_null(o);
    for (int i = 0; i < V; i++) {
        float v = logits[i] * inv;
        c[i] = v == v ? v : -INFINITY;
        mx = c[i] > mx ? c[i] : mx;
    }
    int got = -1;
    if (mx == -INFINITY) got = 0;
    for (int i = 0; got < 0 && mx == INFINITY; i++)
        if (c[i] == INFINITY) got = i;
    if (got >= 0) { free(c); free(o); return got; }
    /* the vocabulary's mass: chunks of 2048, each 16 lanes in order and the fixed tree */
    double total_all = 0.0;
    for (int c0 = 0; c0 < V; c0 += 2048) {
        double lane[16] = {0};
        for (int i = c0; i < V && i < c0 + 2048; i++) lane[(i - c0) % 16] += c[i] = vmath_expf(c[i] - mx);
        double a[8];
        for (int j = 0; j < 8; j++) a[j] = lane[j] + lane[j + 8];
        total_all += ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    }
    for (int i = 0; i < V; i++) o[i] = (ref_cand){c[i], i};
    qsort(o, (size_t)V, sizeof *o, ref_cmp);
    double *run = malloc((size_t)V * sizeof *run), acc = 0.0;
    assert_non_null(run);
    for (int i = 0; i < V; i++) run[i] = acc += o[i].p;
    int n = V;
    double kept = total_all;
    if (sp->top_k > 0 && sp->top_k < V) n = sp->top_k, kept = run[n - 1];
    if (sp->top_p < 1.0f)
        for (int i = 0; i < n; i++)
            if (run[i] >= (double)sp->top_p * kept) { n = i + 1; break; }
    if (sp->min_p > 0.0f) {
        int k = 1;
        while (k < n && o[k].p >= sp->min_p * o[0].p) k++;
        n = k;
    }
    double r = (double)s1c_rng_float(rng) * (n == V ? kept : run[n - 1]);
    got = -1;
    for (int i = 0; i < n && got < 0; i++)
        if (run[i] > r) got = o[i].id;
    if (got < 0) {
        int i = n - 1;
        while (i > 0 && o[i].p == 0.0f) i--;
        got = o[i].id;
    }
    free(c); free(o); free(run);
    return got;
}

/* Vocabularies the size of real ones, logits of several shapes (peaked like a trained model's,
 * wide, all equal, with banned -inf and NaN entries) and the cuts in many combinations: every
 * draw is the definition's, under every kernel family (the draw must not depend on it). */
static void test_large_vocab_matches_definition(void **st) {
    (void)st;
    enum { V = 20000, SHAPES = 4 };
    static const float temps[] = {0.6f, 2.5f};
    static const int topks[] = {0, 1, 40, 4999, V};
    static const float topps[] = {1.0f, 0.3f, 0.999999f};
    static const float minps[] = {0.0f, 0.001f, 0.9f};
    static const char *fams[] = {"ref", "avx2", "avx512"};
    float *logits = malloc(V * sizeof *logits), *work = malloc(V * sizeof *work);
    assert_non_null(logits);
    assert_non_null(work);
    s1c_rng gen;
    s1c_rng_seed(&gen, 99);
    int checked = 0;
    for (int f = 0; f < 3; f++) {
        if (kern_select(fams[f]) != 0) continue;
        for (int shape = 0; shape < SHAPES; shape++) {
            for (int i = 0; i < V; i++) {
                float z = s1c_rng_normal(&gen);
                logits[i] = shape == 0 ? 2.0f * z : shape == 1 ? 6.0f * z : shape == 2 ? 1.5f : z;
            }
            if (shape == 0) logits[123] = 14.0f, logits[4567] = 13.5f, logits[V - 1] = 13.5f; /* a peak, a tie */
            if (shape == 3) logits[7] = -INFINITY, logits[8] = NAN, logits[9] = 30.0f;
            for (size_t a = 0; a < sizeof temps / sizeof *temps; a++)
                for (size_t b = 0; b < sizeof topks / sizeof *topks; b++)
                    for (size_t c = 0; c < sizeof topps / sizeof *topps; c++)
                        for (size_t d = 0; d < sizeof minps / sizeof *minps; d++) {
                            s1c_sampler_params sp = s1c_sampler_defaults();
                            sp.temperature = temps[a], sp.top_k = topks[b], sp.top_p = topps[c], sp.min_p = minps[d];
                            sp.seed = 1000 + a * 100 + b * 10 + c + d * 7 + (uint64_t)shape * 1000;
                            s1c_err err;
                            s1c_sampler *s;
                            assert_int_equal(s1c_sampler_new(&s, &sp, V, &err), 0);
                            s1c_rng rr;
                            s1c_rng_seed(&rr, sp.seed);
                            for (int draw = 0; draw < 2; draw++) {
                                memcpy(work, logits, V * sizeof *work);
                                int got = s1c_sampler_sample(s, work, NULL, 0), want = ref_sample(&sp, &rr, logits, V);
                                if (got != want)
                                    fail_msg("%s shape %d T %g top_k %d top_p %g min_p %g draw %d: %d, want %d", fams[f], shape, temps[a],
                                             topks[b], topps[c], minps[d], draw, got, want);
                                checked++;
                            }
                            s1c_sampler_free(s);
                        }
        }
    }
    kern_select("auto");
    assert_true(checked > 0);
    free(logits);
    free(work);
}

/* A vocabulary of 50000 with a few likely tokens and a flat tail: the frequencies of a top-p
 * draw are the truncated, renormalized probabilities (the lazy order reaches into the tail). */
static void test_large_vocab_frequencies(void **st) {
    (void)st;
    enum { V = 50000, DRAWS_L = 20000 };
    float *logits = malloc(V * sizeof *logits), *work = malloc(V * sizeof *work);
    assert_non_null(logits);
    assert_non_null(work);
    /* weights: token 0: 0.4, token 1: 0.2, the other V-2 share 0.4 equally (in logits) */
    for (int i = 0; i < V; i++) logits[i] = (float)log(0.4 / (V - 2));
    logits[0] = (float)log(0.4), logits[1] = (float)log(0.2);
    s1c_sampler_params sp = s1c_sampler_defaults();
    sp.temperature = 1.0f;
    sp.top_p = 0.7f; /* 0.4 + 0.2 + 0.1 of the tail: the first 12500 tail tokens in id order */
    s1c_err err;
    s1c_sampler *s;
    assert_int_equal(s1c_sampler_new(&s, &sp, V, &err), 0);
    double f0 = 0, f1 = 0, ftail = 0;
    int past = 0;
    for (int i = 0; i < DRAWS_L; i++) {
        memcpy(work, logits, V * sizeof *work);
        int t = s1c_sampler_sample(s, work, NULL, 0);
        f0 += t == 0, f1 += t == 1, ftail += t >= 2;
        past += t >= 2 + (V - 2) / 4 + 2; /* beyond the kept quarter of the tail (one token of slack) */
    }
    s1c_sampler_free(s);
    double want0 = 0.4 / 0.7, want1 = 0.2 / 0.7, wantt = 0.1 / 0.7;
    double tol = 4 * sqrt(0.25 / DRAWS_L);
    assert_true(fabs(f0 / DRAWS_L - want0) < tol);
    assert_true(fabs(f1 / DRAWS_L - want1) < tol);
    assert_true(fabs(ftail / DRAWS_L - wantt) < tol);
    assert_int_equal(past, 0);
    free(logits);
    free(work);
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
        cmocka_unit_test(test_large_vocab_matches_definition), cmocka_unit_test(test_large_vocab_frequencies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
