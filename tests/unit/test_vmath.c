/* vmath (src/kernels/vmath.h) against libm and across its families.
 *
 * exp: every family's vmath exp against libm's expf on a stride through all 2^32 bit
 * patterns (plus dense sweeps where exp overflows, turns subnormal and underflows to 0, and the
 * special values ±0, ±inf, NaNs, subnormal inputs, ±FLT_MAX): within 1 ulp (bit-pattern
 * distance; libm's expf is correctly rounded in practice, vmath's bound is 1 ulp — an
 * exhaustive run over all 2^32 inputs measured max 1), NaN for NaN; and the scalar, AVX2 and
 * AVX-512 results are the same bits. exp_sum: the sum of what it stored within n ulps, the
 * tail past n never written. exp_mass: its double sum the same bits in every family, as the
 * definition written out in the test; select the indices in range. max over tails and -inf. SwiGLU forward and backward against
 * double-precision formulas (relative 1e-6 of the terms' magnitude), and bitwise across
 * families. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kern_internal.h"
#include "kernels/vmath.h"
#include "testutil.h"

/* The families this CPU runs (the scalar one always). */
static int families(const vmath_ops **out, const char **names) {
    int n = 0;
    out[n] = &vmath_ops_ref, names[n++] = "ref";
    if (kern_avx2_supported()) out[n] = &vmath_ops_avx2, names[n++] = "avx2";
    if (kern_avx512_supported()) out[n] = &vmath_ops_avx512, names[n++] = "avx512";
    return n;
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Distance in representable floats between two non-NaN values. */
static int64_t ulp_dist(float a, float b) {
    uint32_t ua = to_bits(a), ub = to_bits(b);
    int64_t ka = ua >> 31 ? -(int64_t)(ua & 0x7fffffffu) : (int64_t)ua;
    int64_t kb = ub >> 31 ? -(int64_t)(ub & 0x7fffffffu) : (int64_t)ub;
    return ka > kb ? ka - kb : kb - ka;
}

/* Checks exp over x[0..n) in every family; returns the worst ulp distance to libm. */
static int64_t check_exp(const float *x, int n) {
    const vmath_ops *fam[3];
    const char *names[3];
    int nf = families(fam, names);
    float *y = malloc((size_t)n * sizeof *y), *y0 = malloc((size_t)n * sizeof *y0);
    assert_non_null(y);
    assert_non_null(y0);
    int64_t worst = 0;
    vmath_ops_ref.exp(y0, x, 0.0f, n);
    for (int i = 0; i < n; i++) {
        float want = expf(x[i]);
        if (isnan(want)) {
            if (!isnan(y0[i])) fail_msg("exp(%a) = %a, want NaN", x[i], y0[i]);
            continue;
        }
        int64_t d = ulp_dist(y0[i], want);
        if (d > 1) fail_msg("exp(%a) = %a, libm %a: %lld ulps", x[i], y0[i], want, (long long)d);
        if (d > worst) worst = d;
        assert_true(to_bits(y0[i]) == to_bits(vmath_expf(x[i])));
    }
    for (int f = 1; f < nf; f++) {
        fam[f]->exp(y, x, 0.0f, n);
        for (int i = 0; i < n; i++)
            if (to_bits(y[i]) != to_bits(y0[i]) && !(isnan(y[i]) && isnan(y0[i])))
                fail_msg("%s exp(%a) = %a, scalar %a", names[f], x[i], y[i], y0[i]);
    }
    free(y);
    free(y0);
    return worst;
}

static void test_exp_whole_range(void **state) {
    (void)state;
    enum { N = 1 << 16 };
    float *x = malloc(N * sizeof *x);
    assert_non_null(x);
    int64_t worst = 0;
    /* a stride through every bit pattern (odd, so all exponents and both signs come up) */
    int n = 0;
    for (uint64_t u = 0; u < ((uint64_t)1 << 32); u += 2741) {
        x[n++] = from_bits((uint32_t)u);
        if (n == N) {
            int64_t d = check_exp(x, n);
            worst = d > worst ? d : worst;
            n = 0;
        }
    }
    /* dense where results overflow, turn subnormal, underflow; around 0 */
    const float starts[] = {88.0f, -88.0f, -104.5f, -1e-3f, 103.5f};
    for (size_t s = 0; s < sizeof starts / sizeof *starts; s++) {
        uint32_t b = to_bits(starts[s]);
        for (int i = 0; i < N; i++) x[i] = from_bits(starts[s] < 0 ? b - (uint32_t)i * 7u : b + (uint32_t)i * 7u);
        int64_t d = check_exp(x, N);
        worst = d > worst ? d : worst;
    }
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, from_bits(0x7f800001u), from_bits(0xffc00001u),
                             FLT_MIN, -FLT_MIN, from_bits(1), from_bits(0x80000001u), from_bits(0x007fffffu),
                             FLT_MAX, -FLT_MAX, 104.0f, -104.0f, 88.72283f, 88.72284f, -87.33654f, -103.97208f, 1.0f, -1.0f};
    int ns = (int)(sizeof special / sizeof *special);
    worst = check_exp(special, ns) > worst ? check_exp(special, ns) : worst;
    assert_true(vmath_expf(-INFINITY) == 0.0f && !signbit(vmath_expf(-INFINITY)));
    assert_true(vmath_expf(INFINITY) == INFINITY);
    assert_true(vmath_expf(0.0f) == 1.0f);
    printf("exp: worst %lld ulp against libm\n", (long long)worst);
    free(x);
}

/* exp_sum and max over every length up to 70 (tails in every family), with a shift and -inf. */
static void test_exp_sum_and_max(void **state) {
    (void)state;
    const vmath_ops *fam[3];
    const char *names[3];
    int nf = families(fam, names);
    s1c_rng r;
    s1c_rng_seed(&r, 7);
    float x[80], y[80], e[80];
    for (int n = 0; n <= 70; n++) {
        for (int i = 0; i < 80; i++) x[i] = 4.0f * s1c_rng_normal(&r);
        if (n > 3) x[n / 2] = -INFINITY;
        float shift = n > 0 ? x[0] : 0.0f;
        for (int i = 0; i < n; i++) e[i] = vmath_expf(x[i] - shift);
        float want_max = -INFINITY;
        for (int i = 0; i < n; i++) want_max = x[i] > want_max ? x[i] : want_max;
        for (int f = 0; f < nf; f++) {
            for (int i = 0; i < 80; i++) y[i] = 12345.0f;
            float sum = fam[f]->exp_sum(y, x, shift, n);
            double ref = 0, mag = 0;
            for (int i = 0; i < n; i++) {
                if (to_bits(y[i]) != to_bits(e[i])) fail_msg("%s exp_sum n=%d: y[%d] = %a, want %a", names[f], n, i, y[i], e[i]);
                ref += e[i];
                mag += fabs(e[i]);
            }
            for (int i = n; i < 80; i++) assert_true(y[i] == 12345.0f); /* nothing written past n */
            /* any summation order of n floats is within n * eps * sum|.| of the exact sum */
            assert_true(fabs(sum - ref) <= n * FLT_EPSILON * mag + 1e-30);
            assert_true(fam[f]->max(x, -INFINITY, n) == want_max);
            assert_true(fam[f]->max(x, 1e30f, n) == 1e30f);
            for (int i = 0; i < 80; i++) y[i] = 12345.0f;
            fam[f]->exp(y, x, shift, n);
            for (int i = 0; i < n; i++) assert_true(to_bits(y[i]) == to_bits(e[i]));
            for (int i = n; i < 80; i++) assert_true(y[i] == 12345.0f);
        }
    }
}

/* exp_mass: the values exp stores, and their sum in 16 double lanes (lane i mod 16, in order)
 * folded by the fixed tree: the same bits in every family, written out here as the definition.
 * select: exactly the indices in [lo, hi), in order, whatever the family (NaN never in). */
static void test_exp_mass_and_select(void **state) {
    (void)state;
    const vmath_ops *fam[3];
    const char *names[3];
    int nf = families(fam, names);
    s1c_rng r;
    s1c_rng_seed(&r, 11);
    enum { M = 300 };
    float x[M], y[M], e[M];
    int idx[M], want[M];
    for (int n = 0; n <= M; n += n < 40 ? 1 : 37) {
        for (int i = 0; i < M; i++) x[i] = 3.0f * s1c_rng_normal(&r);
        if (n > 5) x[n / 3] = -INFINITY, x[n / 2] = NAN;
        float shift = 2.0f;
        double lane[16] = {0};
        for (int i = 0; i < n; i++) lane[i % 16] += e[i] = vmath_expf(x[i] - shift);
        double a[8];
        for (int j = 0; j < 8; j++) a[j] = lane[j] + lane[j + 8];
        double mass = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
        float lo = 0.05f, hi = 2.0f;
        int nw = 0;
        for (int i = 0; i < n; i++)
            if (x[i] >= lo && x[i] < hi) want[nw++] = i;
        for (int f = 0; f < nf; f++) {
            for (int i = 0; i < M; i++) y[i] = 12345.0f;
            double got = fam[f]->exp_mass(y, x, shift, n);
            if (memcmp(&got, &mass, sizeof got) != 0 && !(isnan(got) && isnan(mass)))
                fail_msg("%s exp_mass n=%d: %a, want %a", names[f], n, got, mass);
            for (int i = 0; i < n; i++)
                if (to_bits(y[i]) != to_bits(e[i])) fail_msg("%s exp_mass n=%d: y[%d] = %a, want %a", names[f], n, i, y[i], e[i]);
            for (int i = n; i < M; i++) assert_true(y[i] == 12345.0f); /* nothing written past n */
            int k = fam[f]->select(idx, x, lo, hi, n);
            if (k != nw || memcmp(idx, want, (size_t)k * sizeof *idx) != 0) fail_msg("%s select n=%d: %d indices, want %d", names[f], n, k, nw);
            assert_int_equal(fam[f]->select(idx, x, -INFINITY, INFINITY, n), n - (n > 5)); /* all but the NaN */
        }
    }
}

static void test_swiglu(void **state) {
    (void)state;
    const vmath_ops *fam[3];
    const char *names[3];
    int nf = families(fam, names);
    enum { N = 1037 };
    s1c_rng r;
    s1c_rng_seed(&r, 3);
    static float g[N], u[N], dh[N], h0[N], dg0[N], du0[N], h[N], dg[N], du[N];
    for (int i = 0; i < N; i++) {
        g[i] = (i % 50 == 0 ? 40.0f : 4.0f) * s1c_rng_normal(&r); /* some far in the tails */
        u[i] = s1c_rng_normal(&r);
        dh[i] = s1c_rng_normal(&r);
    }
    g[0] = -120.0f, g[1] = 120.0f, g[2] = 0.0f;
    vmath_ops_ref.swiglu(h0, g, u, N);
    memcpy(dg0, g, sizeof g);
    memcpy(du0, u, sizeof u);
    vmath_ops_ref.swiglu_backward(dg0, du0, dh, N);
    for (int i = 0; i < N; i++) {
        double gd = g[i], s = 1.0 / (1.0 + exp(-gd));
        double want_h = gd * s * u[i], want_dg = dh[i] * u[i] * s * (1.0 + gd * (1.0 - s)), want_du = dh[i] * gd * s;
        /* a few roundings of terms no larger than |g u|, |dh u| (1 + |g|), |dh g| */
        assert_true(fabs(h0[i] - want_h) <= 1e-6 * fabs(gd * u[i]) + 1e-30);
        assert_true(fabs(dg0[i] - want_dg) <= 1e-6 * fabs(dh[i] * u[i]) * (1.0 + fabs(gd)) + 1e-30);
        assert_true(fabs(du0[i] - want_du) <= 1e-6 * fabs(dh[i] * gd) + 1e-30);
    }
    for (int f = 1; f < nf; f++)
        for (int n = N - 16; n <= N; n++) { /* every tail length */
            memset(h, 0, sizeof h);
            fam[f]->swiglu(h, g, u, n);
            memcpy(dg, g, sizeof g);
            memcpy(du, u, sizeof u);
            fam[f]->swiglu_backward(dg, du, dh, n);
            for (int i = 0; i < n; i++)
                if (to_bits(h[i]) != to_bits(h0[i]) || to_bits(dg[i]) != to_bits(dg0[i]) || to_bits(du[i]) != to_bits(du0[i]))
                    fail_msg("%s swiglu at %d of %d differs from the scalar family", names[f], i, n);
            for (int i = n; i < N; i++) assert_true(h[i] == 0.0f && dg[i] == g[i] && du[i] == u[i]);
        }
}

/* The public functions follow kern_select. */
static void test_dispatch_follows_kernels(void **state) {
    (void)state;
    float x[5] = {-1.0f, 0.5f, 2.0f, -INFINITY, 80.0f}, y[5];
    const char *fams[] = {"ref", "avx2", "avx512"};
    const char *before = kern_name();
    for (int f = 0; f < 3; f++) {
        if (kern_select(fams[f]) != 0) continue;
        vmath_exp(y, x, 1.0f, 5);
        for (int i = 0; i < 5; i++) assert_true(to_bits(y[i]) == to_bits(vmath_expf(x[i] - 1.0f)));
        assert_true(vmath_max(x, -INFINITY, 5) == 80.0f);
    }
    assert_int_equal(kern_select(before), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp_whole_range),
        cmocka_unit_test(test_exp_sum_and_max),
        cmocka_unit_test(test_exp_mass_and_select),
        cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_dispatch_follows_kernels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
