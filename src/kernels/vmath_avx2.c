/* vmath's AVX2 family: vmath.c's scalar exp, operation for operation, 8 lanes at a time (same
 * bits); tails through masked loads and stores. */
#include "vmath.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "vmath_avx2.h"

#define T256 VMATH_T256
#define INL VMATH_INL256

static T256 void exp_a(float *y, const float *x, float shift, int n) {
    __m256 sh = _mm256_set1_ps(shift);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh)));
    if (i < n) {
        __m256i k = lanes8(n - i);
        _mm256_maskstore_ps(y + i, k, exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), sh)));
    }
}

static T256 float exp_sum_a(float *y, const float *x, float shift, int n) {
    __m256 sh = _mm256_set1_ps(shift), acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
        _mm256_storeu_ps(y + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (i < n) {
        __m256i k = lanes8(n - i);
        __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), sh)), _mm256_castsi256_ps(k));
        _mm256_maskstore_ps(y + i, k, e);
        acc = _mm256_add_ps(acc, e);
    }
    return hsum8(acc);
}

/* e's 8 values into double lanes a (values 0-3) and b (4-7) */
INL void add_mass8(__m256d *a, __m256d *b, __m256 e) {
    *a = _mm256_add_pd(*a, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    *b = _mm256_add_pd(*b, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
}

/* e^(x - shift) for 8 values from x + i (lanes past n: +0, and nothing stored there) */
INL __m256 exp8_stored(float *y, const float *x, __m256 sh, int i, int n) {
    if (n - i >= 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
        _mm256_storeu_ps(y + i, e);
        return e;
    }
    if (i >= n) return _mm256_setzero_ps();
    __m256i k = lanes8(n - i);
    __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), sh)), _mm256_castsi256_ps(k));
    _mm256_maskstore_ps(y + i, k, e);
    return e;
}

static T256 double exp_mass_a(float *y, const float *x, float shift, int n) {
    __m256 sh = _mm256_set1_ps(shift);
    __m256d l[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()}; /* lanes 4c..4c+3 of 16 */
    for (int i = 0; i < n; i += 16) {
        add_mass8(&l[0], &l[1], exp8_stored(y, x, sh, i, n));
        add_mass8(&l[2], &l[3], exp8_stored(y, x, sh, i + 8, n));
    }
    double lane[16];
    for (int c = 0; c < 4; c++) _mm256_storeu_pd(lane + 4 * c, l[c]);
    return vmath_mass_tree(lane);
}

/* 8 values at a time: a movemask of those in range, its bits' indices written out */
static T256 int select_a(int *idx, const float *x, float lo, float hi, int n) {
    __m256 l = _mm256_set1_ps(lo), h = _mm256_set1_ps(hi);
    int k = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        unsigned m = (unsigned)_mm256_movemask_ps(_mm256_and_ps(_mm256_cmp_ps(v, l, _CMP_GE_OQ), _mm256_cmp_ps(v, h, _CMP_LT_OQ)));
        for (; m; m &= m - 1) idx[k++] = i + __builtin_ctz(m);
    }
    for (; i < n; i++)
        if (x[i] >= lo && x[i] < hi) idx[k++] = i;
    return k;
}

static T256 float max_a(const float *x, float init, int n) {
    __m256 m = _mm256_set1_ps(init);
    int i = 0;
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    float r[8];
    _mm256_storeu_ps(r, m);
    for (int j = 0; j < 8; j++) init = r[j] > init ? r[j] : init;
    for (; i < n; i++) init = x[i] > init ? x[i] : init;
    return init;
}

INL __m256 swiglu8(__m256 g, __m256 u) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

static T256 void swiglu_a(float *h, const float *g, const float *u, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(h + i, swiglu8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    if (i < n) {
        __m256i k = lanes8(n - i);
        _mm256_maskstore_ps(h + i, k, swiglu8(_mm256_maskload_ps(g + i, k), _mm256_maskload_ps(u + i, k)));
    }
}

INL void swiglu_back8(__m256 *g, __m256 *u, __m256 dh) {
    __m256 one = _mm256_set1_ps(1.0f), gi = *g;
    __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), gi))));
    __m256 t = _mm256_add_ps(one, _mm256_mul_ps(gi, _mm256_sub_ps(one, s)));
    *g = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dh, *u), s), t);
    *u = _mm256_mul_ps(_mm256_mul_ps(dh, gi), s);
}

static T256 void swiglu_backward_a(float *g, float *u, const float *dh, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i), uv = _mm256_loadu_ps(u + i);
        swiglu_back8(&gv, &uv, _mm256_loadu_ps(dh + i));
        _mm256_storeu_ps(g + i, gv);
        _mm256_storeu_ps(u + i, uv);
    }
    if (i < n) {
        __m256i k = lanes8(n - i);
        __m256 gv = _mm256_maskload_ps(g + i, k), uv = _mm256_maskload_ps(u + i, k);
        swiglu_back8(&gv, &uv, _mm256_maskload_ps(dh + i, k));
        _mm256_maskstore_ps(g + i, k, gv);
        _mm256_maskstore_ps(u + i, k, uv);
    }
}

const vmath_ops vmath_ops_avx2 = {exp_a, exp_sum_a, exp_mass_a, select_a, max_a, swiglu_a, swiglu_backward_a};

#else
const vmath_ops vmath_ops_avx2 = {0};
#endif
