/* Attention of one query row for the heads of one GQA group (kern_attention in kernels.h):
 * flash-style, over chunks of 64 positions read straight from the paged KV blocks, with an
 * online softmax (running max and sum, earlier partial results rescaled when the max grows).
 *
 * Per chunk and head: scores s_j = (q . k_j) * scale, m' = max(m, max_j s_j),
 * p_j = exp(s_j - m'), sum = sum * exp(m - m') + sum_j p_j, acc = acc * exp(m - m') + sum_j p_j v_j;
 * at the end out = acc / sum. Chunks start at positions 0, 64, 128, ... whatever the batch, and
 * nothing depends on other rows, so a row's result is bitwise the same alone or in a batch and
 * for any thread split. Two implementations of the same steps: one through the family's
 * kern_dot / kern_axpy (ref, avx2) and AVX-512 (16 scores at once, a vector exp, weighted sums in
 * registers). */
#include "kern_internal.h"

#include <math.h>
#include <string.h>

enum { CHUNK = 64 };

static inline size_t row_at(const kern_attn_args *a, int j) {
    return (size_t)a->blocks[j / a->bs] * a->block_stride + (size_t)(j % a->bs) * a->ld;
}

static inline float elem(const void *base, int dtype, size_t i) {
    if (dtype == S1C_F16) return s1c_f16_to_f32(((const uint16_t *)base)[i]);
    if (dtype == S1C_BF16) return s1c_bf16_to_f32(((const uint16_t *)base)[i]);
    return ((const float *)base)[i];
}

/* Position r's K or V row as f32: in place (F32) or converted into buf. */
static const float *row_f32(const void *base, int dtype, size_t r, int hd, float *buf) {
    if (dtype == S1C_F32) return (const float *)base + r;
    for (int i = 0; i < hd; i++) buf[i] = elem(base, dtype, r + (size_t)i);
    return buf;
}

/* The online softmax's state before the first chunk: no maximum yet, empty sums and outputs. */
static void attn_start(const kern_attn_args *a, float *m, float *sum) {
    for (int h = 0; h < a->nh; h++) {
        m[h] = -INFINITY;
        sum[h] = 0.0f;
        memset(a->out + (size_t)h * a->hd, 0, (size_t)a->hd * sizeof(float));
    }
}

/* The families without their own: dot products and weighted sums through kern_dot / kern_axpy
 * (the scalar reference's index-order loops, or AVX2). */
static void attn_generic(const kern_attn_args *a) {
    int nh = a->nh, hd = a->hd;
    float *s = a->scratch, *buf = a->scratch + KERN_ATTN_MAX_HEADS * CHUNK, m[KERN_ATTN_MAX_HEADS], sum[KERN_ATTN_MAX_HEADS];
    attn_start(a, m, sum);
    for (int c0 = 0; c0 < a->n; c0 += CHUNK) {
        int len = a->n - c0 < CHUNK ? a->n - c0 : CHUNK;
        for (int j = 0; j < len; j++) {
            const float *k = row_f32(a->k, a->dtype, row_at(a, c0 + j), hd, buf);
            for (int h = 0; h < nh; h++) s[h * CHUNK + j] = kern_dot(a->q + (size_t)h * hd, k, hd) * a->scale;
        }
        for (int h = 0; h < nh; h++) {
            float *sh = s + h * CHUNK, mx = m[h];
            for (int j = 0; j < len; j++) mx = sh[j] > mx ? sh[j] : mx;
            float corr = m[h] == -INFINITY ? 0.0f : expf(m[h] - mx), ps = 0.0f;
            for (int j = 0; j < len; j++) {
                sh[j] = expf(sh[j] - mx);
                ps += sh[j];
            }
            sum[h] = sum[h] * corr + ps;
            m[h] = mx;
            float *o = a->out + (size_t)h * hd;
            for (int i = 0; i < hd; i++) o[i] *= corr;
        }
        for (int j = 0; j < len; j++) {
            const float *v = row_f32(a->v, a->dtype, row_at(a, c0 + j), hd, buf);
            for (int h = 0; h < nh; h++) kern_axpy(a->out + (size_t)h * hd, s[h * CHUNK + j], v, hd);
        }
    }
    for (int h = 0; h < nh; h++) {
        float *o = a->out + (size_t)h * hd;
        for (int i = 0; i < hd; i++) o[i] /= sum[h];
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include "vmath_avx512.h" /* exp16, swiglu16: the one AVX-512 exp */

#define TA __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define INL static inline __attribute__((always_inline)) TA

INL __m512 load16(const void *base, int dtype, size_t i, __mmask16 m) {
    if (dtype == S1C_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)base + i)), 16));
    if (dtype == S1C_F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)base + i));
    return _mm512_maskz_loadu_ps(m, (const float *)base + i);
}

INL __mmask16 tail_mask(int n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1); }

/* The 16 horizontal sums of a[0..15], as one vector (lane i = sum of a[i]): pairs of vectors are
 * added after interleaving, then halves of 128-bit lanes, then the 128-bit lanes themselves. */
INL __m512 sum16(const __m512 *a) {
    __m512 x[8], y[4];
    for (int i = 0; i < 8; i++) x[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; i++)
        y[i] = _mm512_add_ps(_mm512_shuffle_ps(x[2 * i], x[2 * i + 1], 0x44), _mm512_shuffle_ps(x[2 * i], x[2 * i + 1], 0xee));
    /* y[i]'s 128-bit lane L holds, for a[4i..4i+3], the sums over lane L */
    __m512 w01 = _mm512_add_ps(_mm512_shuffle_f32x4(y[0], y[1], 0x44), _mm512_shuffle_f32x4(y[0], y[1], 0xee));
    __m512 w23 = _mm512_add_ps(_mm512_shuffle_f32x4(y[2], y[3], 0x44), _mm512_shuffle_f32x4(y[2], y[3], 0xee));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w01, w23, 0x88), _mm512_shuffle_f32x4(w01, w23, 0xdd));
}

static TA void attn_avx512(const kern_attn_args *a) {
    int nh = a->nh, hd = a->hd;
    float *s = a->scratch, m[KERN_ATTN_MAX_HEADS], sum[KERN_ATTN_MAX_HEADS];
    attn_start(a, m, sum);
    for (int c0 = 0; c0 < a->n; c0 += CHUNK) {
        int len = a->n - c0 < CHUNK ? a->n - c0 : CHUNK;
        /* scores, 16 positions at a time per head: 16 dot products side by side, then one
         * transposing reduction tree gives the 16 sums in one vector */
        for (int j0 = 0; j0 < len; j0 += 16) {
            int cnt = len - j0 < 16 ? len - j0 : 16;
            size_t rows[16];
            /* past the chunk's end: position j0 again, its sums not stored (keeps acc in registers) */
            for (int jj = 0; jj < 16; jj++) rows[jj] = row_at(a, c0 + j0 + (jj < cnt ? jj : 0));
            for (int h = 0; h < nh; h++) {
                const float *q = a->q + (size_t)h * hd;
                __m512 acc[16];
#pragma GCC unroll 16
                for (int jj = 0; jj < 16; jj++) acc[jj] = _mm512_setzero_ps();
                for (int i = 0; i < hd; i += 16) {
                    __mmask16 mk = tail_mask(hd - i);
                    __m512 qv = _mm512_maskz_loadu_ps(mk, q + i);
#pragma GCC unroll 16
                    for (int jj = 0; jj < 16; jj++) acc[jj] = _mm512_fmadd_ps(qv, load16(a->k, a->dtype, rows[jj] + (size_t)i, mk), acc[jj]);
                }
                _mm512_mask_storeu_ps(s + h * CHUNK + j0, tail_mask(cnt), _mm512_mul_ps(sum16(acc), _mm512_set1_ps(a->scale)));
            }
        }
        /* online softmax: the chunk's max, its exps and sum, and the rescale of what came before */
        for (int h = 0; h < nh; h++) {
            float *sh = s + h * CHUNK;
            __m512 mv = _mm512_set1_ps(m[h]);
            for (int j = 0; j < len; j += 16) mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(mv, tail_mask(len - j), sh + j));
            float mx = _mm512_reduce_max_ps(mv);
            float corr = m[h] == -INFINITY ? 0.0f : expf(m[h] - mx);
            __m512 ps = _mm512_setzero_ps(), mxv = _mm512_set1_ps(mx);
            for (int j = 0; j < len; j += 16) {
                __mmask16 mk = tail_mask(len - j);
                __m512 p = _mm512_maskz_mov_ps(mk, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, sh + j), mxv)));
                _mm512_mask_storeu_ps(sh + j, mk, p);
                ps = _mm512_add_ps(ps, p);
            }
            sum[h] = sum[h] * corr + _mm512_reduce_add_ps(ps);
            m[h] = mx;
            float *o = a->out + (size_t)h * hd;
            __m512 cv = _mm512_set1_ps(corr);
            for (int i = 0; i < hd; i += 16) {
                __mmask16 mk = tail_mask(hd - i);
                _mm512_mask_storeu_ps(o + i, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, o + i), cv));
            }
        }
        /* weighted sum of values: per head, up to 4 vectors of its output in registers over
         * the chunk's positions */
        size_t rows[CHUNK];
        for (int j = 0; j < len; j++) rows[j] = row_at(a, c0 + j);
        for (int h = 0; h < nh; h++) {
            float *o = a->out + (size_t)h * hd;
            const float *ph = s + h * CHUNK;
            for (int i0 = 0; i0 < hd; i0 += 64) {
                int nc = (hd - i0 + 15) / 16 < 4 ? (hd - i0 + 15) / 16 : 4;
                __m512 acc[4];
                __mmask16 mk[4];
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++) {
                    mk[c] = c < nc ? tail_mask(hd - i0 - 16 * c) : 0;
                    acc[c] = _mm512_maskz_loadu_ps(mk[c], o + i0 + 16 * c);
                }
                for (int j = 0; j < len; j++) {
                    __m512 p = _mm512_set1_ps(ph[j]);
#pragma GCC unroll 4
                    for (int c = 0; c < 4; c++)
                        if (c < nc) acc[c] = _mm512_fmadd_ps(p, load16(a->v, a->dtype, rows[j] + (size_t)(i0 + 16 * c), mk[c]), acc[c]);
                }
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++) _mm512_mask_storeu_ps(o + i0 + 16 * c, mk[c], acc[c]);
            }
        }
    }
    for (int h = 0; h < nh; h++) {
        float *o = a->out + (size_t)h * hd;
        __m512 inv = _mm512_set1_ps(1.0f / sum[h]);
        for (int i = 0; i < hd; i += 16) {
            __mmask16 mk = tail_mask(hd - i);
            _mm512_mask_storeu_ps(o + i, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, o + i), inv));
        }
    }
}
/* a = silu(a) * b, 16 at a time (vmath's lanes: the trainer's SwiGLU, bit for bit). */
TA void kern_avx512_swiglu(float *a, const float *b, int n) {
    for (int i = 0; i < n; i += 16) {
        __mmask16 mk = tail_mask(n - i);
        _mm512_mask_storeu_ps(a + i, mk, swiglu16(_mm512_maskz_loadu_ps(mk, a + i), _mm512_maskz_loadu_ps(mk, b + i)));
    }
}
#else
void kern_avx512_swiglu(float *a, const float *b, int n) { (void)a, (void)b, (void)n; }
#endif

void kern_attention(const kern_attn_args *a) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (strcmp(kern_name(), "avx512") == 0) {
        attn_avx512(a);
        return;
    }
#endif
    attn_generic(a);
}
