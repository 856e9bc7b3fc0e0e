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

/* 16 whole elements (no mask: masked loads and stores cost several times more on Zen 4). */
INL __m512 load16_full(const void *base, int dtype, size_t i) {
    if (dtype == S1C_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)base + i))), 16));
    if (dtype == S1C_F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)base + i)));
    return _mm512_loadu_ps((const float *)base + i);
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

/* The chunk's K or V rows as f32 pointers: in place for an F32 cache, else converted once into
 * buf (len x hd), so the loops over heads below read f32 from L1 with no per-element type test.
 * A position's row comes from the block table by stepping through it, not by dividing. */
INL void chunk_rows(const kern_attn_args *a, const void *base, int c0, int len, float *buf, const float **rows) {
    int b = c0 / a->bs, off = c0 % a->bs, hd = a->hd;
    for (int j = 0; j < len; j++) {
        size_t r = (size_t)a->blocks[b] * a->block_stride + (size_t)off * a->ld;
        if (a->dtype == S1C_F32) {
            rows[j] = (const float *)base + r;
        } else {
            float *dst = buf + (size_t)j * hd;
            int full = hd & ~15;
            for (int i = 0; i < full; i += 16) _mm512_storeu_ps(dst + i, load16_full(base, a->dtype, r + (size_t)i));
            if (full < hd) {
                __mmask16 mk = tail_mask(hd - full);
                _mm512_mask_storeu_ps(dst + full, mk, load16(base, a->dtype, r + (size_t)full, mk));
            }
            rows[j] = dst;
        }
        if (++off == a->bs) off = 0, b++;
    }
}

/* s[j0 + jj] = scale * (q . k_{j0+jj}) for jj < cnt: 16 dot products side by side (each one FMA
 * chain over the head's elements from 0), then one transposing reduction tree. */
INL void scores16(float *s, const float *q, const float *const *kr, int cnt, int hd, float scale) {
    const float *rows[16];
    for (int jj = 0; jj < 16; jj++) rows[jj] = kr[jj < cnt ? jj : 0]; /* past the end: row 0 again, not stored */
    __m512 acc[16];
#pragma GCC unroll 16
    for (int jj = 0; jj < 16; jj++) acc[jj] = _mm512_setzero_ps();
    int full = hd & ~15;
    for (int i = 0; i < full; i += 16) { /* plain loads: masked ones cost more on some cores */
        __m512 qv = _mm512_loadu_ps(q + i);
#pragma GCC unroll 16
        for (int jj = 0; jj < 16; jj++) acc[jj] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(rows[jj] + i), acc[jj]);
    }
    if (full < hd) {
        __mmask16 mk = tail_mask(hd - full);
        __m512 qv = _mm512_maskz_loadu_ps(mk, q + full);
#pragma GCC unroll 16
        for (int jj = 0; jj < 16; jj++) acc[jj] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(mk, rows[jj] + full), acc[jj]);
    }
    _mm512_mask_storeu_ps(s, tail_mask(cnt), _mm512_mul_ps(sum16(acc), _mm512_set1_ps(scale)));
}

/* scores16 for two heads at once over 8 positions: the two heads share each K load (lanes 0-7 of
 * the reduced vector are head 0's scores, 8-15 head 1's). Every score is the same FMA chain and
 * reduction tree as in scores16, so the bits do not depend on which variant computed them. */
INL void scores8x2(float *s0, float *s1, const float *q0, const float *q1, const float *const *kr, int cnt, int hd, float scale) {
    const float *rows[8];
    for (int jj = 0; jj < 8; jj++) rows[jj] = kr[jj < cnt ? jj : 0];
    __m512 acc[16];
#pragma GCC unroll 16
    for (int jj = 0; jj < 16; jj++) acc[jj] = _mm512_setzero_ps();
    int full = hd & ~15;
    for (int i = 0; i < full; i += 16) {
        __m512 qa = _mm512_loadu_ps(q0 + i), qb = _mm512_loadu_ps(q1 + i);
#pragma GCC unroll 8
        for (int jj = 0; jj < 8; jj++) {
            __m512 k = _mm512_loadu_ps(rows[jj] + i);
            acc[jj] = _mm512_fmadd_ps(qa, k, acc[jj]);
            acc[8 + jj] = _mm512_fmadd_ps(qb, k, acc[8 + jj]);
        }
    }
    if (full < hd) {
        __mmask16 mk = tail_mask(hd - full);
        __m512 qa = _mm512_maskz_loadu_ps(mk, q0 + full), qb = _mm512_maskz_loadu_ps(mk, q1 + full);
#pragma GCC unroll 8
        for (int jj = 0; jj < 8; jj++) {
            __m512 k = _mm512_maskz_loadu_ps(mk, rows[jj] + full);
            acc[jj] = _mm512_fmadd_ps(qa, k, acc[jj]);
            acc[8 + jj] = _mm512_fmadd_ps(qb, k, acc[8 + jj]);
        }
    }
    __m512 r = _mm512_mul_ps(sum16(acc), _mm512_set1_ps(scale));
    __mmask16 m = (__mmask16)(cnt >= 8 ? 0xff : (1u << cnt) - 1);
    _mm512_mask_storeu_ps(s0, m, r);
    _mm512_mask_storeu_ps(s1 - 8, (__mmask16)(m << 8), r);
}

/* Online softmax step of one head over the chunk's scores sh[0..len): the chunk's max, its exps
 * (written back over the scores) and sum, and the rescale of the output so far. */
INL void softmax_chunk(float *sh, int len, float *m, float *sum, float *o, int hd) {
    __m512 mv = _mm512_set1_ps(*m);
    for (int j = 0; j < len; j += 16) mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(mv, tail_mask(len - j), sh + j));
    float mx = _mm512_reduce_max_ps(mv);
    float corr = *m == -INFINITY ? 0.0f : expf(*m - mx);
    __m512 ps = _mm512_setzero_ps(), mxv = _mm512_set1_ps(mx);
    for (int j = 0; j < len; j += 16) {
        __mmask16 mk = tail_mask(len - j);
        __m512 p = _mm512_maskz_mov_ps(mk, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, sh + j), mxv)));
        _mm512_mask_storeu_ps(sh + j, mk, p);
        ps = _mm512_add_ps(ps, p);
    }
    *sum = *sum * corr + _mm512_reduce_add_ps(ps);
    *m = mx;
    __m512 cv = _mm512_set1_ps(corr);
    for (int i = 0; i < hd; i += 16) {
        __mmask16 mk = tail_mask(hd - i);
        _mm512_mask_storeu_ps(o + i, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, o + i), cv));
    }
}

/* o_h[i0 .. i0 + 16 NV) += sum_j p_h[j] v_j over the chunk, j increasing, for HH heads at once
 * (HH x NV <= 8 accumulators, so the FMA chains of several outputs interleave and their latency
 * is hidden). HH and NV are constants at every call, so the loops unroll with no tests. */
INL void pv_heads(int HH, int NV, float *const *o, const float *const *p, const float *const *vr, int len, int i0, int hd) {
    __m512 acc[8];
    __mmask16 mk[8];
#pragma GCC unroll 8
    for (int c = 0; c < NV; c++) mk[c] = i0 + 16 * c < hd ? tail_mask(hd - i0 - 16 * c) : 0;
#pragma GCC unroll 8
    for (int h = 0; h < HH; h++)
#pragma GCC unroll 8
        for (int c = 0; c < NV; c++) acc[h * NV + c] = _mm512_maskz_loadu_ps(mk[c], o[h] + i0 + 16 * c);
    for (int j = 0; j < len; j++) {
        __m512 v[8];
#pragma GCC unroll 8
        for (int c = 0; c < NV; c++) v[c] = _mm512_maskz_loadu_ps(mk[c], vr[j] + i0 + 16 * c);
#pragma GCC unroll 8
        for (int h = 0; h < HH; h++) {
            __m512 pj = _mm512_set1_ps(p[h][j]);
#pragma GCC unroll 8
            for (int c = 0; c < NV; c++) acc[h * NV + c] = _mm512_fmadd_ps(pj, v[c], acc[h * NV + c]);
        }
    }
#pragma GCC unroll 8
    for (int h = 0; h < HH; h++)
#pragma GCC unroll 8
        for (int c = 0; c < NV; c++) _mm512_mask_storeu_ps(o[h] + i0 + 16 * c, mk[c], acc[h * NV + c]);
}

/* The weighted sum of values for every head of the group: heads in pairs while a head is at most
 * 64 wide, else one head at a time in slices of 128 elements. */
INL void pv_chunk(const kern_attn_args *a, const float *s, const float *const *vr, int len) {
    int nh = a->nh, hd = a->hd;
    if (hd <= 64) {
        int h = 0;
        for (; h + 2 <= nh; h += 2) {
            float *o[2] = {a->out + (size_t)h * hd, a->out + (size_t)(h + 1) * hd};
            const float *p[2] = {s + h * CHUNK, s + (h + 1) * CHUNK};
            pv_heads(2, 4, o, p, vr, len, 0, hd);
        }
        if (h < nh) {
            float *o[1] = {a->out + (size_t)h * hd};
            const float *p[1] = {s + h * CHUNK};
            pv_heads(1, 4, o, p, vr, len, 0, hd);
        }
        return;
    }
    for (int h = 0; h < nh; h++) {
        float *o[1] = {a->out + (size_t)h * hd};
        const float *p[1] = {s + h * CHUNK};
        for (int i0 = 0; i0 < hd; i0 += 128) pv_heads(1, 8, o, p, vr, len, i0, hd);
    }
}

/* Per chunk: its rows (converted once if the cache is 16-bit), the scores of every head 16
 * positions at a time, the online softmax, the weighted values. Which heads are grouped together
 * changes only how independent work is interleaved: every output element's operations and their
 * order depend on n and hd alone. */
static TA void attn_avx512(const kern_attn_args *a) {
    int nh = a->nh, hd = a->hd;
    float *s = a->scratch, *kbuf = a->scratch + KERN_ATTN_MAX_HEADS * CHUNK, *vbuf = kbuf + CHUNK * KERN_ATTN_CONV_HD;
    float m[KERN_ATTN_MAX_HEADS], sum[KERN_ATTN_MAX_HEADS];
    const float *kr[CHUNK], *vr[CHUNK];
    attn_start(a, m, sum);
    for (int c0 = 0; c0 < a->n; c0 += CHUNK) {
        int len = a->n - c0 < CHUNK ? a->n - c0 : CHUNK;
        chunk_rows(a, a->k, c0, len, kbuf, kr);
        for (int j0 = 0; j0 < len; j0 += 16) {
            int h = 0, cnt = len - j0 < 16 ? len - j0 : 16;
            for (; h + 2 <= nh; h += 2)
                for (int j1 = 0; j1 < cnt; j1 += 8)
                    scores8x2(s + h * CHUNK + j0 + j1, s + (h + 1) * CHUNK + j0 + j1, a->q + (size_t)h * hd, a->q + (size_t)(h + 1) * hd,
                              kr + j0 + j1, cnt - j1, hd, a->scale);
            if (h < nh) scores16(s + h * CHUNK + j0, a->q + (size_t)h * hd, kr + j0, cnt, hd, a->scale);
        }
        for (int h = 0; h < nh; h++) softmax_chunk(s + h * CHUNK, len, &m[h], &sum[h], a->out + (size_t)h * hd, hd);
        chunk_rows(a, a->v, c0, len, vbuf, vr);
        pv_chunk(a, s, vr, len);
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
    if (a->hd <= KERN_ATTN_CONV_HD && strcmp(kern_name(), "avx512") == 0) {
        attn_avx512(a);
        return;
    }
#endif
    attn_generic(a);
}
