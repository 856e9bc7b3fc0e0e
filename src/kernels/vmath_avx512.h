/* vmath's AVX-512 exp and SwiGLU lanes, for every AVX-512 kernel that needs them (the
 * trainer's passes and inference SwiGLU in vmath_avx512.c, inference attention in attention.c):
 * one algorithm, the same bits as vmath.c's scalar vmath_expf. Include only where <immintrin.h>
 * and GNU C are available. */
#ifndef S1C_VMATH_AVX512_H
#define S1C_VMATH_AVX512_H

#include <immintrin.h>
#include "vmath.h"

#define VMATH_T512 __attribute__((target("avx512f,avx512dq,fma")))
#define VMATH_INL static inline __attribute__((always_inline)) VMATH_T512

VMATH_INL __m512 exp16(__m512 x) {
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-VMATH_EXP_MAX)), _mm512_set1_ps(VMATH_EXP_MAX));
    __m512 qf = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(VMATH_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512i q = _mm512_cvtps_epi32(qf), q1 = _mm512_srai_epi32(q, 1), q2 = _mm512_sub_epi32(q, q1);
    __m512 s = _mm512_fmadd_ps(qf, _mm512_set1_ps(-VMATH_LN2_HI), xc);
    s = _mm512_fmadd_ps(qf, _mm512_set1_ps(-VMATH_LN2_LO), s);
    __m512 u = _mm512_set1_ps(VMATH_C6);
    u = _mm512_fmadd_ps(u, s, _mm512_set1_ps(VMATH_C5));
    u = _mm512_fmadd_ps(u, s, _mm512_set1_ps(VMATH_C4));
    u = _mm512_fmadd_ps(u, s, _mm512_set1_ps(VMATH_C3));
    u = _mm512_fmadd_ps(u, s, _mm512_set1_ps(VMATH_C2));
    u = _mm512_fmadd_ps(u, s, _mm512_set1_ps(VMATH_C1));
    u = _mm512_fmadd_ps(_mm512_mul_ps(s, s), u, _mm512_add_ps(s, _mm512_set1_ps(1.0f)));
    __m512i bias = _mm512_set1_epi32(127);
    __m512 p1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(q1, bias), 23));
    __m512 p2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(q2, bias), 23));
    __m512 r = _mm512_mul_ps(_mm512_mul_ps(u, p1), p2);
    r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, _mm512_set1_ps(VMATH_EXP_MAX), _CMP_GT_OQ), _mm512_set1_ps(__builtin_inff()));
    r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, _mm512_set1_ps(-VMATH_EXP_MAX), _CMP_LT_OQ), _mm512_setzero_ps());
    return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), _mm512_add_ps(x, x));
}

VMATH_INL __m512 swiglu16(__m512 g, __m512 u) {
    __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
    return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u);
}

#endif
