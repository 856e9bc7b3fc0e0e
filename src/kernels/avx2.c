/* AVX2 + FMA + F16C kernels, compiled with target attributes (the build stays portable);
 * dispatch.c runs them where AVX-512 is missing, or when $S1C_KERNELS=avx2.
 *
 * Reduction order: as avx512.c with 8 lanes. One dot product is one 8-lane accumulator, an
 * FMA per 8-element chunk in increasing k (the last partial chunk zero-padded through a
 * small buffer), then a fixed horizontal-sum tree. Blocks of up to 4 weight rows x 4
 * activation rows only share loads. */
#include "kern_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "vmath_avx2.h" /* hsum8 */

#define T256 __attribute__((target("avx2,fma,f16c")))
#define INL static inline __attribute__((always_inline)) T256

INL __m256 load_w(const void *w, int dtype, size_t off) {
    if (dtype == S1C_BF16) {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + off));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    if (dtype == S1C_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + off)));
    return _mm256_loadu_ps((const float *)w + off);
}

/* The last n - k (< 8) weights of a row, zero-padded to 8. */
INL __m256 load_w_tail(const void *w, int dtype, size_t off, int len) {
    if (dtype == S1C_F32) {
        float buf[8] = {0};
        memcpy(buf, (const float *)w + off, (size_t)len * sizeof(float));
        return _mm256_loadu_ps(buf);
    }
    uint16_t buf[8] = {0};
    memcpy(buf, (const uint16_t *)w + off, (size_t)len * sizeof(uint16_t));
    return load_w(buf, dtype, 0);
}

INL __m256 load_x_tail(const float *x, int len) {
    float buf[8] = {0};
    memcpy(buf, x, (size_t)len * sizeof(float));
    return _mm256_loadu_ps(buf);
}

/* pf: ask for the next group's rows (R further) at the same k, a line at a time: one activation
 * row (decode) reads each weight once, and R interleaved rows of 16-bit weights were more than
 * the hardware prefetchers kept ahead of (as qmatmul_avx2.c's groups). S1C_KERNELS=avx2 decode,
 * 0.5B, 2 interleaved rounds: BF16 28-30 -> 33.5 tok/s; F32 20.4-21.0 -> 19.4-19.5, so F32
 * rows are left to the hardware. */
INL void block(float *out, const float *x, const void *w, int dtype, int n, int d, int i, int t0, int R, int C, bool pf) {
    __m256 acc[4][4], xv[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
    const float *xr = x + (size_t)t0 * (size_t)n;
    size_t wr = (size_t)i * (size_t)n;
    int k = 0;
    size_t es = dtype == S1C_F32 ? 4 : 2;
    for (; k + 8 <= n; k += 8) {
        if (pf && ((size_t)k * es & 63) == 0)
            for (int r = 0; r < R; r++) _mm_prefetch((const char *)w + (wr + (size_t)(R + r) * n + (size_t)k) * es, _MM_HINT_T0);
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) xv[c] = _mm256_loadu_ps(xr + (size_t)c * n + k);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256 wv = load_w(w, dtype, wr + (size_t)r * n + k);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) acc[r][c] = _mm256_fmadd_ps(wv, xv[c], acc[r][c]);
        }
    }
    if (k < n) {
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) xv[c] = load_x_tail(xr + (size_t)c * n + k, n - k);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256 wv = load_w_tail(w, dtype, wr + (size_t)r * n + k, n - k);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) acc[r][c] = _mm256_fmadd_ps(wv, xv[c], acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) out[(size_t)(t0 + c) * (size_t)d + (size_t)(i + r)] = hsum8(acc[r][c]);
}

INL void row_group(float *out, const float *x, int n_rows, const void *w, int dtype, int n, int d, int i, int R, bool pf) {
    int t = 0;
    for (; t + 4 <= n_rows; t += 4) block(out, x, w, dtype, n, d, i, t, R, 4, false);
    switch (n_rows - t) {
    case 3: block(out, x, w, dtype, n, d, i, t, R, 3, false); break;
    case 2: block(out, x, w, dtype, n, d, i, t, R, 2, false); break;
    case 1: block(out, x, w, dtype, n, d, i, t, R, 1, pf && n_rows == 1); break;
    default: break;
    }
}

INL void matmul_dtype(float *out, const float *x, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1) {
    int i = i0;
    for (; i + 4 <= i1; i += 4) row_group(out, x, n_rows, w, dtype, n, d, i, 4, dtype != S1C_F32 && i + 8 <= i1);
    for (; i < i1; i++) row_group(out, x, n_rows, w, dtype, n, d, i, 1, false);
}

static T256 void mm_f32(float *out, const float *x, int n_rows, const void *w, int n, int d, int i0, int i1) {
    matmul_dtype(out, x, n_rows, w, S1C_F32, n, d, i0, i1);
}
static T256 void mm_bf16(float *out, const float *x, int n_rows, const void *w, int n, int d, int i0, int i1) {
    matmul_dtype(out, x, n_rows, w, S1C_BF16, n, d, i0, i1);
}
static T256 void mm_f16(float *out, const float *x, int n_rows, const void *w, int n, int d, int i0, int i1) {
    matmul_dtype(out, x, n_rows, w, S1C_F16, n, d, i0, i1);
}

static void avx2_matmul_rows(float *out, const float *x, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1) {
    switch (dtype) {
    case S1C_BF16: mm_bf16(out, x, n_rows, w, n, d, i0, i1); break;
    case S1C_F16: mm_f16(out, x, n_rows, w, n, d, i0, i1); break;
    default: mm_f32(out, x, n_rows, w, n, d, i0, i1); break;
    }
}

static T256 float avx2_dot(const float *a, const float *b, int n) {
    __m256 acc = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= n; k += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), acc);
    if (k < n) acc = _mm256_fmadd_ps(load_x_tail(a + k, n - k), load_x_tail(b + k, n - k), acc);
    return hsum8(acc);
}

static T256 void avx2_axpy(float *y, float a, const float *x, int n) {
    __m256 av = _mm256_set1_ps(a);
    int k = 0;
    for (; k + 8 <= n; k += 8) _mm256_storeu_ps(y + k, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + k), _mm256_loadu_ps(y + k)));
    for (; k < n; k++) y[k] = fmaf(a, x[k], y[k]); /* the same single rounding as the vector lanes */
}

static T256 void avx2_rmsnorm(float *o, const float *x, const float *w, int n, float eps) {
    float ss = avx2_dot(x, x, n) / (float)n + eps;
    __m256 s = _mm256_set1_ps(1.0f / sqrtf(ss));
    float sc = 1.0f / sqrtf(ss);
    int k = 0;
    for (; k + 8 <= n; k += 8) _mm256_storeu_ps(o + k, _mm256_mul_ps(_mm256_loadu_ps(w + k), _mm256_mul_ps(s, _mm256_loadu_ps(x + k))));
    for (; k < n; k++) o[k] = w[k] * (sc * x[k]);
}

bool kern_avx2_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && kern_cpu_has_f16c();
}

const kern_ops kern_ops_avx2 = {"avx2", avx2_matmul_rows, avx2_rmsnorm, avx2_dot, avx2_axpy, gemm_avx2_block, 6, 16, kern_avx2_matmul_q_rows, kern_ref_argmax};

#else
bool kern_avx2_supported(void) { return false; }
const kern_ops kern_ops_avx2 = {"avx2", 0, 0, 0, 0, 0, 0, 0, 0, 0};
#endif
