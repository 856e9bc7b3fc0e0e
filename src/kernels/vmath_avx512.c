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

const vmath_ops vmath_ops_avx512 = {exp_a, exp_sum_a, max_a, swiglu_a, swiglu_backward_a};

#else
const vmath_ops vmath_ops_avx512 = {0};
#endif
