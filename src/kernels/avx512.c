/* AVX-512 kernels (F, BW, VL, DQ + FMA/F16C), compiled with target attributes so the rest of
 * the build stays portable; dispatch.c runs them only where the CPU has these features.
 *
 * Reduction order (the batch-invariance contract): one dot product of length n is one
 * 16-lane accumulator, updated by an FMA per 16-element chunk in increasing k (the last,
 * partial chunk masked to zeros), then reduced across lanes by a fixed tree. The matmul
 * computes a block of up to 4 weight rows x 4 activation rows at once only to reuse loads:
 * each accumulator sees exactly the operations it would see alone. */
#include "kern_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <math.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define INL static inline __attribute__((always_inline)) T512

/* 16 weights from row-major W (dtype F32/F16/BF16) at element offset off, widened to f32. */
INL __m512 load_w(const void *w, int dtype, size_t off, __mmask16 m) {
    if (dtype == S1C_BF16) {
        __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)w + off);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    if (dtype == S1C_F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)w + off));
    return _mm512_maskz_loadu_ps(m, (const float *)w + off);
}

/* out[t0+c][i+r] for r < R, c < C. R and C are constants at every call site. */
INL void block(float *out, const float *x, const void *w, int dtype, int n, int d, int i, int t0, int R, int C) {
    __m512 acc[4][4], xv[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
    const float *xr = x + (size_t)t0 * (size_t)n;
    size_t wr = (size_t)i * (size_t)n;
    int k = 0;
    for (; k + 16 <= n; k += 16) {
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) xv[c] = _mm512_loadu_ps(xr + (size_t)c * n + k);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 wv = load_w(w, dtype, wr + (size_t)r * n + k, 0xffff);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) acc[r][c] = _mm512_fmadd_ps(wv, xv[c], acc[r][c]);
        }
    }
    if (k < n) {
        __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) xv[c] = _mm512_maskz_loadu_ps(m, xr + (size_t)c * n + k);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 wv = load_w(w, dtype, wr + (size_t)r * n + k, m);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) acc[r][c] = _mm512_fmadd_ps(wv, xv[c], acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) out[(size_t)(t0 + c) * (size_t)d + (size_t)(i + r)] = _mm512_reduce_add_ps(acc[r][c]);
}

/* All activation rows against weight rows i..i+R-1. */
INL void row_group(float *out, const float *x, int n_rows, const void *w, int dtype, int n, int d, int i, int R) {
    int t = 0;
    for (; t + 4 <= n_rows; t += 4) block(out, x, w, dtype, n, d, i, t, R, 4);
    switch (n_rows - t) {
    case 3: block(out, x, w, dtype, n, d, i, t, R, 3); break;
    case 2: block(out, x, w, dtype, n, d, i, t, R, 2); break;
    case 1: block(out, x, w, dtype, n, d, i, t, R, 1); break;
    default: break;
    }
}

INL void matmul_dtype(float *out, const float *x, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1) {
    int i = i0;
    for (; i + 4 <= i1; i += 4) row_group(out, x, n_rows, w, dtype, n, d, i, 4);
    for (; i < i1; i++) row_group(out, x, n_rows, w, dtype, n, d, i, 1);
}

static T512 void mm_f32(float *out, const float *x, int n_rows, const void *w, int n, int d, int i0, int i1) {
    matmul_dtype(out, x, n_rows, w, S1C_F32, n, d, i0, i1);
}
static T512 void mm_bf16(float *out, const float *x, int n_rows, const void *w, int n, int d, int i0, int i1) {
    matmul_dtype(out, x, n_rows, w, S1C_BF16, n, d, i0, i1);
}
static T512 void mm_f16(float *out, const float *x, int n_rows, const void *w, int n, int d, int i0, int i1) {
    matmul_dtype(out, x, n_rows, w, S1C_F16, n, d, i0, i1);
}

static void avx512_matmul_rows(float *out, const float *x, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1) {
    switch (dtype) {
    case S1C_BF16: mm_bf16(out, x, n_rows, w, n, d, i0, i1); break;
    case S1C_F16: mm_f16(out, x, n_rows, w, n, d, i0, i1); break;
    default: mm_f32(out, x, n_rows, w, n, d, i0, i1); break;
    }
}

static T512 float avx512_dot(const float *a, const float *b, int n) {
    __m512 acc = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= n; k += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), acc);
    if (k < n) {
        __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + k), _mm512_maskz_loadu_ps(m, b + k), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

static T512 void avx512_axpy(float *y, float a, const float *x, int n) {
    __m512 av = _mm512_set1_ps(a);
    int k = 0;
    for (; k + 16 <= n; k += 16) _mm512_storeu_ps(y + k, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + k), _mm512_loadu_ps(y + k)));
    if (k < n) {
        __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
        _mm512_mask_storeu_ps(y + k, m, _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + k), _mm512_maskz_loadu_ps(m, y + k)));
    }
}

static T512 void avx512_rmsnorm(float *o, const float *x, const float *w, int n, float eps) {
    float ss = avx512_dot(x, x, n) / (float)n + eps;
    __m512 s = _mm512_set1_ps(1.0f / sqrtf(ss));
    int k = 0;
    /* the reference's w * (s * x), element by element */
    for (; k + 16 <= n; k += 16) _mm512_storeu_ps(o + k, _mm512_mul_ps(_mm512_loadu_ps(w + k), _mm512_mul_ps(s, _mm512_loadu_ps(x + k))));
    if (k < n) {
        __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
        _mm512_mask_storeu_ps(o + k, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, w + k), _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, x + k))));
    }
}

/* kern_ref_argmax's answer: per lane the first index of its largest value (strictly greater
 * replaces; NaN compares false, -inf start), four chains for the compare latency, then the
 * largest of the lanes and the smallest index holding it. x[0] NaN keeps 0 in the fold: the
 * reference answers that. */
static T512 int avx512_argmax(const float *x, int n) {
    if (n < 64 || x[0] != x[0]) return kern_ref_argmax(x, n);
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 best[4] = {ninf, ninf, ninf, ninf};
    __m512i at[4], idx[4], step = _mm512_set1_epi32(64);
    for (int c = 0; c < 4; c++) {
        at[c] = _mm512_setzero_si512();
        idx[c] = _mm512_add_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(16 * c));
    }
    int k = 0;
    for (; k + 64 <= n; k += 64) {
        for (int c = 0; c < 4; c++) {
            __m512 v = _mm512_loadu_ps(x + k + 16 * c);
            __mmask16 gt = _mm512_cmp_ps_mask(v, best[c], _CMP_GT_OQ);
            best[c] = _mm512_mask_mov_ps(best[c], gt, v);
            at[c] = _mm512_mask_mov_epi32(at[c], gt, idx[c]);
            idx[c] = _mm512_add_epi32(idx[c], step);
        }
    }
    for (int c = 0; k < n; k += 16, c = (c + 1) & 3) {
        __mmask16 m = n - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - k)) - 1);
        __m512 v = _mm512_mask_loadu_ps(ninf, m, x + k);
        __mmask16 gt = _mm512_mask_cmp_ps_mask(m, v, best[c], _CMP_GT_OQ);
        best[c] = _mm512_mask_mov_ps(best[c], gt, v);
        at[c] = _mm512_mask_mov_epi32(at[c], gt, _mm512_add_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(k)));
    }
    /* chains 1..3 into 0: the larger value, on a tie the smaller index */
    for (int c = 1; c < 4; c++) {
        __mmask16 take = _mm512_cmp_ps_mask(best[c], best[0], _CMP_GT_OQ) |
                         (_mm512_cmp_ps_mask(best[c], best[0], _CMP_EQ_OQ) & _mm512_cmplt_epi32_mask(at[c], at[0]));
        best[0] = _mm512_mask_mov_ps(best[0], take, best[c]);
        at[0] = _mm512_mask_mov_epi32(at[0], take, at[c]);
    }
    float top = _mm512_reduce_max_ps(best[0]);
    return _mm512_mask_reduce_min_epi32(_mm512_cmp_ps_mask(best[0], _mm512_set1_ps(top), _CMP_EQ_OQ), at[0]);
}

bool kern_avx512_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma") && kern_cpu_has_f16c();
}

const kern_ops kern_ops_avx512 = {"avx512", avx512_matmul_rows, avx512_rmsnorm, avx512_dot, avx512_axpy, gemm_avx512_block, 12, 32, kern_avx512_matmul_q_rows, avx512_argmax};

#else
bool kern_avx512_supported(void) { return false; }
const kern_ops kern_ops_avx512 = {"avx512", 0, 0, 0, 0, 0, 0, 0, 0, 0};
#endif
