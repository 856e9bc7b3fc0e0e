/* vmath's AVX-512 family: vmath.c's scalar exp, operation for operation, 16 lanes at a time
 * (same bits); tails through masked loads and stores. */
#include "vmath.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "vmath_avx512.h"

#define T512 VMATH_T512
#define INL VMATH_INL

INL __mmask16 tail_mask(int left) { return (__mmask16)((1u << left) - 1u); }

static T512 void exp_a(float *y, const float *x, float shift, int n) {
    __m512 sh = _mm512_set1_ps(shift);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), sh)));
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), sh)));
    }
}

static T512 float exp_sum_a(float *y, const float *x, float shift, int n) {
    __m512 sh = _mm512_set1_ps(shift), acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), sh));
        _mm512_storeu_ps(y + i, e);
        acc = _mm512_add_ps(acc, e);
    }
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        __m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), sh)));
        _mm512_mask_storeu_ps(y + i, k, e);
        acc = _mm512_add_ps(acc, e);
    }
    return _mm512_reduce_add_ps(acc);
}

/* e's 16 values into the 16 double lanes: values 0-7 into lo, 8-15 into hi */
INL void add_mass16(__m512d *lo, __m512d *hi, __m512 e) {
    *lo = _mm512_add_pd(*lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    *hi = _mm512_add_pd(*hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
}

static T512 double exp_mass_a(float *y, const float *x, float shift, int n) {
    __m512 sh = _mm512_set1_ps(shift);
    __m512d lo = _mm512_setzero_pd(), hi = lo; /* lane j: the values at i = j mod 16, in order */
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), sh));
        _mm512_storeu_ps(y + i, e);
        add_mass16(&lo, &hi, e);
    }
    if (i < n) { /* lanes past n: +0, adding nothing */
        __mmask16 k = tail_mask(n - i);
        __m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), sh)));
        _mm512_mask_storeu_ps(y + i, k, e);
        add_mass16(&lo, &hi, e);
    }
    double lane[16];
    _mm512_storeu_pd(lane, lo);
    _mm512_storeu_pd(lane + 8, hi);
    return vmath_mass_tree(lane);
}

/* 16 values at a time: the indices of those in range compressed out (vpcompressd) */
static T512 int select_a(int *idx, const float *x, float lo, float hi, int n) {
    __m512 l = _mm512_set1_ps(lo), h = _mm512_set1_ps(hi);
    __m512i at = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), step = _mm512_set1_epi32(16);
    int k = 0;
    for (int i = 0; i < n; i += 16, at = _mm512_add_epi32(at, step)) {
        __mmask16 valid = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
        __m512 v = _mm512_maskz_loadu_ps(valid, x + i);
        __mmask16 m = _mm512_mask_cmp_ps_mask(valid, v, l, _CMP_GE_OQ) & _mm512_cmp_ps_mask(v, h, _CMP_LT_OQ);
        if (!m) continue;
        _mm512_mask_compressstoreu_epi32(idx + k, m, at);
        k += __builtin_popcount(m);
    }
    return k;
}

static T512 float max_a(const float *x, float init, int n) {
    __m512 m = _mm512_set1_ps(init);
    int i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
    if (i < n) m = _mm512_mask_max_ps(m, tail_mask(n - i), m, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
    return _mm512_reduce_max_ps(m);
}

static T512 void swiglu_a(float *h, const float *g, const float *u, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(h + i, swiglu16(_mm512_loadu_ps(g + i), _mm512_loadu_ps(u + i)));
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(h + i, k, swiglu16(_mm512_maskz_loadu_ps(k, g + i), _mm512_maskz_loadu_ps(k, u + i)));
    }
}

INL void swiglu_back16(__m512 *g, __m512 *u, __m512 dh) {
    __m512 one = _mm512_set1_ps(1.0f), gi = *g;
    __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), gi))));
    __m512 t = _mm512_add_ps(one, _mm512_mul_ps(gi, _mm512_sub_ps(one, s)));
    *g = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dh, *u), s), t);
    *u = _mm512_mul_ps(_mm512_mul_ps(dh, gi), s);
}

static T512 void swiglu_backward_a(float *g, float *u, const float *dh, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 gv = _mm512_loadu_ps(g + i), uv = _mm512_loadu_ps(u + i);
        swiglu_back16(&gv, &uv, _mm512_loadu_ps(dh + i));
        _mm512_storeu_ps(g + i, gv);
        _mm512_storeu_ps(u + i, uv);
    }
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        __m512 gv = _mm512_maskz_loadu_ps(k, g + i), uv = _mm512_maskz_loadu_ps(k, u + i);
        swiglu_back16(&gv, &uv, _mm512_maskz_loadu_ps(k, dh + i));
        _mm512_mask_storeu_ps(g + i, k, gv);
        _mm512_mask_storeu_ps(u + i, k, uv);
    }
}

const vmath_ops vmath_ops_avx512 = {exp_a, exp_sum_a, exp_mass_a, select_a, max_a, swiglu_a, swiglu_backward_a};

#else
const vmath_ops vmath_ops_avx512 = {0};
#endif
