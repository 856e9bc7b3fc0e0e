/* vmath's AVX2 exp lanes, for every AVX2 kernel that needs them (the trainer's passes in
 * vmath_avx2.c, inference attention in attention.c): the same bits as vmath.c's scalar
 * vmath_expf and vmath_avx512.h's exp16; and the 8-lane helpers those and the avx2 family's
 * kernels (avx2.c, qmatmul_avx2.c) share. Include only where <immintrin.h> and GNU C are
 * available. */
#ifndef S1C_VMATH_AVX2_H
#define S1C_VMATH_AVX2_H

#include <immintrin.h>
#include "vmath.h"

#define VMATH_T256 __attribute__((target("avx2,fma")))
#define VMATH_INL256 static inline __attribute__((always_inline)) VMATH_T256
/* the helpers need AVX2 alone, so kernels built without FMA (qmatmul_avx2.c's) inline them too */
#define VMATH_INL_AVX2 static inline __attribute__((always_inline, target("avx2")))

/* Lanes [0, n) on, as vmaskmovps takes a mask. */
VMATH_INL_AVX2 __m256i lanes8(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }

/* The sum of the 8 lanes in a fixed order: (lo + hi) pairwise, then across. */
VMATH_INL_AVX2 float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The largest of the 8 lanes (exact in any order). */
VMATH_INL_AVX2 float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_shuffle_ps(m, m, 0x4e));
    return _mm_cvtss_f32(_mm_max_ps(m, _mm_shuffle_ps(m, m, 0xb1)));
}

VMATH_INL256 __m256 exp8(__m256 x) {
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-VMATH_EXP_MAX)), _mm256_set1_ps(VMATH_EXP_MAX));
    __m256 qf = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(VMATH_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256i q = _mm256_cvtps_epi32(qf), q1 = _mm256_srai_epi32(q, 1), q2 = _mm256_sub_epi32(q, q1);
    __m256 s = _mm256_fmadd_ps(qf, _mm256_set1_ps(-VMATH_LN2_HI), xc);
    s = _mm256_fmadd_ps(qf, _mm256_set1_ps(-VMATH_LN2_LO), s);
    __m256 u = _mm256_set1_ps(VMATH_C6);
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(VMATH_C5));
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(VMATH_C4));
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(VMATH_C3));
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(VMATH_C2));
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(VMATH_C1));
    u = _mm256_fmadd_ps(_mm256_mul_ps(s, s), u, _mm256_add_ps(s, _mm256_set1_ps(1.0f)));
    __m256i bias = _mm256_set1_epi32(127);
    __m256 p1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(q1, bias), 23));
    __m256 p2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(q2, bias), 23));
    __m256 r = _mm256_mul_ps(_mm256_mul_ps(u, p1), p2);
    r = _mm256_blendv_ps(r, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, _mm256_set1_ps(VMATH_EXP_MAX), _CMP_GT_OQ));
    r = _mm256_blendv_ps(r, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(-VMATH_EXP_MAX), _CMP_LT_OQ));
    return _mm256_blendv_ps(r, _mm256_add_ps(x, x), _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

#endif
