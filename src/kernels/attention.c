/* Attention of one query row for the heads of one GQA group (kern_attention in kernels.h):
 * flash-style, over chunks of 64 positions read straight from the paged KV blocks, with an
 * online softmax (running max and sum, earlier partial results rescaled when the max grows).
 *
 * Per chunk and head: scores s_j = (q . k_j) * scale (one FMA chain over the key's elements
 * in increasing order, in the AVX-512 steps), m' = max(m, max_j s_j),
 * p_j = exp(s_j - m'), sum = sum * exp(m - m') + sum_j p_j, acc = acc * exp(m - m') + sum_j p_j v_j;
 * at the end out = acc / sum. Chunks start at positions 0, 64, 128, ... whatever the batch, and
 * nothing depends on other rows, so a row's result is bitwise the same alone or in a batch and
 * for any thread split. Two implementations of the same steps: one through the family's
 * kern_dot / kern_axpy (ref, avx2) and AVX-512 (the scores of 16 positions per vector from the
 * transposed keys, shared by the group's heads; a vector exp; weighted sums in registers).
 * Keys are stored transposed within a block (kern_attn_args in kernels.h): element i of a
 * block's positions side by side. */
#include "kern_internal.h"

#include <math.h>
#include <string.h>

enum { CHUNK = 64 };

/* Where position j's value row starts, and its key's element 0 (the next one bs further). */
static inline size_t row_at(const kern_attn_args *a, int j) {
    return (size_t)a->blocks[j / a->bs] * a->block_stride + (size_t)(j % a->bs) * a->ld;
}

static inline size_t key_at(const kern_attn_args *a, int j) { return (size_t)a->blocks[j / a->bs] * a->block_stride + (size_t)(j % a->bs); }

static inline float elem(const void *base, int dtype, size_t i) {
    if (dtype == S1C_F16) return s1c_f16_to_f32(((const uint16_t *)base)[i]);
    if (dtype == S1C_BF16) return s1c_bf16_to_f32(((const uint16_t *)base)[i]);
    return ((const float *)base)[i];
}

/* Position j's V row as f32: in place (F32) or converted into buf. */
static const float *value_f32(const kern_attn_args *a, int j, float *buf) {
    size_t r = row_at(a, j);
    if (a->dtype == S1C_F32) return (const float *)a->v + r;
    for (int i = 0; i < a->hd; i++) buf[i] = elem(a->v, a->dtype, r + (size_t)i);
    return buf;
}

/* Position j's key as f32, gathered into buf (its elements are bs apart). */
static const float *key_f32(const kern_attn_args *a, int j, float *buf) {
    size_t r = key_at(a, j);
    for (int i = 0; i < a->hd; i++) buf[i] = elem(a->k, a->dtype, r + (size_t)i * (size_t)a->bs);
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
            const float *k = key_f32(a, c0 + j, buf);
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
            const float *v = value_f32(a, c0 + j, buf);
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

/* The chunk's V rows as f32 pointers: in place for an F32 cache, else converted once into buf
 * (len x hd), so the loops over heads below read f32 from L1 with no per-element type test.
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

/* The chunk's keys as groups of 16 positions, transposed: element i of group g's positions at
 * kt[g] + i * kst as f32. In place for an F32 cache whose blocks hold whole groups (bs a
 * multiple of 16, the engine's default: a group never straddles blocks), converted once per
 * chunk for a 16-bit one (buf: 16 x hd per group), gathered one element at a time otherwise.
 * Lanes past the sequence hold whatever the block holds (or 0): their scores are not stored. */
INL void chunk_keys(const kern_attn_args *a, int c0, int len, float *buf, const float **kt, size_t *kst) {
    int hd = a->hd;
    bool whole = a->bs % 16 == 0;
    *kst = whole && a->dtype == S1C_F32 ? (size_t)a->bs : 16;
    for (int g = 0; 16 * g < len; g++) {
        int j0 = c0 + 16 * g, cnt = len - 16 * g < 16 ? len - 16 * g : 16;
        float *dst = buf + (size_t)g * 16 * hd;
        kt[g] = dst;
        if (whole) {
            size_t r = key_at(a, j0);
            if (a->dtype == S1C_F32) kt[g] = (const float *)a->k + r;
            else
                for (int i = 0; i < hd; i++) _mm512_storeu_ps(dst + 16 * i, load16_full(a->k, a->dtype, r + (size_t)i * a->bs));
            continue;
        }
        for (int jj = 0; jj < 16; jj++) {
            size_t r = jj < cnt ? key_at(a, j0 + jj) : 0;
            for (int i = 0; i < hd; i++) dst[16 * i + jj] = jj < cnt ? elem(a->k, a->dtype, r + (size_t)i * a->bs) : 0.0f;
        }
    }
}

/* Scores of HH heads (q: their query rows; s: their rows of the score scratch, CHUNK apart) for
 * NG groups of 16 positions: per key element one vector load per group, shared by the heads,
 * and per head a broadcast of its query element; each score is one FMA chain over the elements
 * from 0, times scale. HH x NG chains keep both FMA pipes busy; HH and NG are constants at every
 * call, so the loops unroll into registers. */
INL void scores_kt(const int HH, const int NG, float *s, const float *q, int hd, const float *const *kt, size_t kst,
                   const __mmask16 *mk, float scale) {
    __m512 acc[8][4];
#pragma GCC unroll 8
    for (int h = 0; h < HH; h++)
#pragma GCC unroll 4
        for (int g = 0; g < NG; g++) acc[h][g] = _mm512_setzero_ps();
    for (int i = 0; i < hd; i++) {
        __m512 kv[4];
#pragma GCC unroll 4
        for (int g = 0; g < NG; g++) kv[g] = _mm512_loadu_ps(kt[g] + (size_t)i * kst);
#pragma GCC unroll 8
        for (int h = 0; h < HH; h++) {
            __m512 qb = _mm512_set1_ps(q[(size_t)h * hd + i]);
#pragma GCC unroll 4
            for (int g = 0; g < NG; g++) acc[h][g] = _mm512_fmadd_ps(qb, kv[g], acc[h][g]);
        }
    }
    __m512 sc = _mm512_set1_ps(scale);
#pragma GCC unroll 8
    for (int h = 0; h < HH; h++)
#pragma GCC unroll 4
        for (int g = 0; g < NG; g++) _mm512_mask_storeu_ps(s + h * CHUNK + 16 * g, mk[g], _mm512_mul_ps(acc[h][g], sc));
}

/* Up to 3 heads: all four groups at once (4 to 12 chains); 4 to 8 heads: two groups at a time. */
static TA void scores_heads(int hh, float *s, const float *q, int hd, const float *const *kt, size_t kst, const __mmask16 *mk, float scale) {
    switch (hh) {
    case 1: scores_kt(1, 4, s, q, hd, kt, kst, mk, scale); return;
    case 2: scores_kt(2, 4, s, q, hd, kt, kst, mk, scale); return;
    case 3: scores_kt(3, 4, s, q, hd, kt, kst, mk, scale); return;
    default: break;
    }
    for (int g = 0; g < 4 && mk[g]; g += 2) {
        float *sg = s + 16 * g;
        switch (hh) {
        case 4: scores_kt(4, 2, sg, q, hd, kt + g, kst, mk + g, scale); break;
        case 5: scores_kt(5, 2, sg, q, hd, kt + g, kst, mk + g, scale); break;
        case 6: scores_kt(6, 2, sg, q, hd, kt + g, kst, mk + g, scale); break;
        case 7: scores_kt(7, 2, sg, q, hd, kt + g, kst, mk + g, scale); break;
        default: scores_kt(8, 2, sg, q, hd, kt + g, kst, mk + g, scale); break;
        }
    }
}

/* The scores of every head of the group over the chunk's len positions, heads 8 at a time. */
INL void scores_chunk(const kern_attn_args *a, float *s, const float *const *kt, size_t kst, int len) {
    const float *k4[4];
    __mmask16 mk[4];
    for (int g = 0; g < 4; g++) {
        int cnt = len - 16 * g;
        mk[g] = cnt > 0 ? tail_mask(cnt) : 0;
        k4[g] = cnt > 0 ? kt[g] : kt[0]; /* a group past the end: group 0 again, not stored */
    }
    for (int h0 = 0; h0 < a->nh; h0 += 8)
        scores_heads(a->nh - h0 < 8 ? a->nh - h0 : 8, s + h0 * CHUNK, a->q + (size_t)h0 * a->hd, a->hd, k4, kst, mk, a->scale);
}

/* Online softmax step of every head over the chunk's scores (head h's at s + h * CHUNK): first
 * each head's new maximum (independent chains), then per head the exps (written back over the
 * scores), their sum and the rescale of the output so far by exp(m - m'). A head whose maximum
 * did not grow (most chunks after the first few) skips the rescale: its factor is exactly 1, and
 * so is the first chunk's output (zeros times 0); the bits are those of always rescaling. */
INL void softmax_chunk(float *s, int nh, int len, float *m, float *sum, float *out, int hd) {
    float mx[KERN_ATTN_MAX_HEADS];
    for (int h = 0; h < nh; h++) {
        const float *sh = s + h * CHUNK;
        __m512 mv = _mm512_set1_ps(m[h]);
        for (int j = 0; j < len; j += 16) mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(mv, tail_mask(len - j), sh + j));
        mx[h] = _mm512_reduce_max_ps(mv);
    }
    for (int h = 0; h < nh; h++) {
        float *sh = s + h * CHUNK;
        __m512 ps = _mm512_setzero_ps(), mxv = _mm512_set1_ps(mx[h]);
        for (int j = 0; j < len; j += 16) {
            __mmask16 mk = tail_mask(len - j);
            __m512 p = _mm512_maskz_mov_ps(mk, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, sh + j), mxv)));
            _mm512_mask_storeu_ps(sh + j, mk, p);
            ps = _mm512_add_ps(ps, p);
        }
        float psum = _mm512_reduce_add_ps(ps);
        if (mx[h] == m[h]) { /* expf(0) == 1: sum * 1 + psum, o * 1 */
            sum[h] += psum;
            continue;
        }
        float corr = m[h] == -INFINITY ? 0.0f : expf(m[h] - mx[h]);
        bool first = m[h] == -INFINITY; /* the output is still zeros */
        sum[h] = sum[h] * corr + psum;
        m[h] = mx[h];
        if (first) continue;
        float *o = out + (size_t)h * hd;
        __m512 cv = _mm512_set1_ps(corr);
        for (int i = 0; i < hd; i += 16) {
            __mmask16 mk = tail_mask(hd - i);
            _mm512_mask_storeu_ps(o + i, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, o + i), cv));
        }
    }
}

/* o_h[i0 .. i0 + 16 NV) += sum_j p_h[j] v_j over the chunk, j increasing, for HH heads at once
 * (HH x NV <= 16 accumulators: each value vector loaded once for HH heads, so the loop is bound
 * by its FMAs, not its loads, and the chains of several outputs interleave to hide their
 * latency). HH and NV are constants at every call, so the loops unroll with no tests. */
INL void pv_heads(int HH, int NV, float *const *o, const float *const *p, const float *const *vr, int len, int i0, int hd) {
    __m512 acc[16];
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

/* The weighted sum of values for every head of the group: heads 4 at a time while a head is at
 * most 64 wide, 2 at a time in slices of 128 elements otherwise. */
INL void pv_chunk(const kern_attn_args *a, const float *s, const float *const *vr, int len) {
    int nh = a->nh, hd = a->hd, wide = hd > 64, step = wide ? 2 : 4;
    for (int h = 0; h < nh; h += step) {
        int hh = nh - h < step ? nh - h : step;
        float *o[4];
        const float *p[4];
        for (int k = 0; k < hh; k++) o[k] = a->out + (size_t)(h + k) * hd, p[k] = s + (h + k) * CHUNK;
        for (int i0 = 0; i0 < hd; i0 += wide ? 128 : 64) {
            if (wide) {
                if (hh == 2) pv_heads(2, 8, o, p, vr, len, i0, hd);
                else pv_heads(1, 8, o, p, vr, len, i0, hd);
            } else if (hh == 4) pv_heads(4, 4, o, p, vr, len, i0, hd);
            else if (hh == 3) pv_heads(3, 4, o, p, vr, len, i0, hd);
            else if (hh == 2) pv_heads(2, 4, o, p, vr, len, i0, hd);
            else pv_heads(1, 4, o, p, vr, len, i0, hd);
        }
    }
}

/* Per chunk: its keys (converted once if the cache is 16-bit), the scores of every head 16
 * positions at a time, the online softmax, its value rows, the weighted values. Which heads are grouped together
 * changes only how independent work is interleaved: every output element's operations and their
 * order depend on n and hd alone. */
static TA void attn_avx512(const kern_attn_args *a) {
    int nh = a->nh, hd = a->hd;
    float *s = a->scratch, *kbuf = a->scratch + KERN_ATTN_MAX_HEADS * CHUNK, *vbuf = kbuf + CHUNK * KERN_ATTN_CONV_HD;
    float m[KERN_ATTN_MAX_HEADS], sum[KERN_ATTN_MAX_HEADS];
    const float *kt[CHUNK / 16], *vr[CHUNK];
    size_t kst;
    attn_start(a, m, sum);
    for (int c0 = 0; c0 < a->n; c0 += CHUNK) {
        int len = a->n - c0 < CHUNK ? a->n - c0 : CHUNK;
        chunk_keys(a, c0, len, kbuf, kt, &kst);
        scores_chunk(a, s, kt, kst, len);
        softmax_chunk(s, nh, len, m, sum, a->out, hd);
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
