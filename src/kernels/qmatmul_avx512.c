/* The Q8_0 / Q4_0 matmul with AVX-512 VNNI (qmatmul.c has the reference and the formats; the
 * other quantized types take the reference rows here).
 *
 * Two 32-element blocks fill one zmm. vpdpbusd multiplies unsigned by signed bytes, so the
 * weights enter as |w| and the activations take w's sign (q4_0's nibbles are first shifted
 * to -8..7); each 32-bit lane then holds an exact partial integer dot of 4 products. The lanes
 * are converted to f32 and added, times their block's scale (w's d x x's d), into one 16-lane
 * accumulator per output, reduced by a fixed tree at the end. Up to 4 activation rows share
 * each weight load; every accumulator sees exactly the operations it would see alone, so
 * results do not depend on the batch or the thread split. */
#include "kern_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <string.h>

#define TQ __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c")))
#define INL static inline __attribute__((always_inline)) TQ

/* Blocks b and b+1 (or b alone, the upper half zero) of a weight row as 64 signed bytes. */
INL __m512i load_w2(const uint8_t *w, int dtype, int b, bool two) {
    if (dtype == S1C_Q8_0) {
        __m256i lo = _mm256_loadu_si256((const __m256i *)(w + (size_t)b * 34 + 2));
        __m256i hi = two ? _mm256_loadu_si256((const __m256i *)(w + (size_t)(b + 1) * 34 + 2)) : _mm256_setzero_si256();
        return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
    __m128i m = _mm_set1_epi8(0x0f), e8 = _mm_set1_epi8(8);
    __m128i a = _mm_loadu_si128((const __m128i *)(w + (size_t)b * 18 + 2));
    __m128i a_lo = _mm_sub_epi8(_mm_and_si128(a, m), e8), a_hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(a, 4), m), e8);
    __m128i b_lo = _mm_setzero_si128(), b_hi = _mm_setzero_si128();
    if (two) {
        __m128i c = _mm_loadu_si128((const __m128i *)(w + (size_t)(b + 1) * 18 + 2));
        b_lo = _mm_sub_epi8(_mm_and_si128(c, m), e8);
        b_hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(c, 4), m), e8);
    }
    __m512i z = _mm512_castsi128_si512(a_lo);
    z = _mm512_inserti32x4(z, a_hi, 1);
    z = _mm512_inserti32x4(z, b_lo, 2);
    return _mm512_inserti32x4(z, b_hi, 3);
}

/* The f16 scale of block b, as bits. */
INL int scale_bits(const uint8_t *w, int dtype, int b) {
    uint16_t h;
    memcpy(&h, w + (size_t)b * (dtype == S1C_Q8_0 ? 34 : 18), 2);
    return h;
}

/* Blocks b, b+1 (two) or b alone of weight row w against C activation rows, into acc. */
INL void qstep(__m512 *acc, const kern_q8x *xq, const uint8_t *w, int dtype, int b, int t0, int C, bool two) {
    int n = xq->n, nb = n / 32;
    __m512i wv = load_w2(w, dtype, b, two);
    __m512i wabs = _mm512_abs_epi8(wv);
    __mmask64 neg = _mm512_movepi8_mask(wv);
    /* lanes 0-7: block b's weight scale, 8-15: block b+1's (both f16s widened by one vcvtph2ps) */
    const __m512i half = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    __m128i h = _mm_cvtsi32_si128(scale_bits(w, dtype, b));
    if (two) h = _mm_insert_epi16(h, scale_bits(w, dtype, b + 1), 1);
    __m512 ws = _mm512_permutexvar_ps(half, _mm512_castps128_ps512(_mm_cvtph_ps(h)));
#pragma GCC unroll 4
    for (int c = 0; c < C; c++) {
        const int8_t *xv8 = xq->q + (size_t)(t0 + c) * n + (size_t)b * 32;
        const float *xd = xq->d + (size_t)(t0 + c) * nb + b;
        __m512i xv = two ? _mm512_loadu_si512(xv8) : _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)xv8));
        if (!two) xv = _mm512_inserti64x4(xv, _mm256_setzero_si256(), 1);
        xv = _mm512_mask_sub_epi8(xv, neg, _mm512_setzero_si512(), xv); /* x * sign(w) */
        __m512i isum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wabs, xv);
        __m512 xs;
        if (two) {
            double pair;
            memcpy(&pair, xd, sizeof pair); /* (d[b], d[b+1]) */
            xs = _mm512_permutexvar_ps(half, _mm512_castpd_ps(_mm512_set1_pd(pair)));
        } else {
            xs = _mm512_set1_ps(xd[0]);
        }
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(ws, xs), acc[c]);
    }
}

/* out[t0 + c][i] for c < C (C <= 4 activation rows). */
INL void qblock(float *out, const kern_q8x *xq, const uint8_t *w, int dtype, int d, int i, int t0, int C) {
    int nb = xq->n / 32;
    __m512 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < C; c++) acc[c] = _mm512_setzero_ps();
    int b = 0;
    for (; b + 2 <= nb; b += 2) qstep(acc, xq, w, dtype, b, t0, C, true);
    if (b < nb) qstep(acc, xq, w, dtype, b, t0, C, false);
#pragma GCC unroll 4
    for (int c = 0; c < C; c++) out[(size_t)(t0 + c) * d + i] = _mm512_reduce_add_ps(acc[c]);
}

static TQ void vnni_rows(float *out, const kern_q8x *xq, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1) {
    size_t row_bytes = (size_t)(n / 32) * (dtype == S1C_Q8_0 ? 34 : 18);
    for (int i = i0; i < i1; i++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)i * row_bytes;
        int t = 0;
        for (; t + 4 <= n_rows; t += 4) qblock(out, xq, wr, dtype, d, i, t, 4);
        switch (n_rows - t) {
        case 3: qblock(out, xq, wr, dtype, d, i, t, 3); break;
        case 2: qblock(out, xq, wr, dtype, d, i, t, 2); break;
        case 1: qblock(out, xq, wr, dtype, d, i, t, 1); break;
        default: break;
        }
    }
}

/* roundf (halves away from zero) of 16 floats: truncate, then step away from zero where the
 * dropped fraction is at least one half (v - trunc(v) is exact). */
INL __m512 round_away(__m512 v) {
    __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    __m512 one = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(_mm512_set1_ps(1.0f)),
                                                     _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u))));
    return _mm512_mask_add_ps(t, up, t, one);
}

/* Sixteen vectors reduced to one whose lane i is the reduction of v[i] (max or add, both exact
 * here: any order gives the same value), by a tree of 128-bit and 32-bit shuffles: at each level
 * two vectors become one holding half as many partials of twice as many inputs. The tree's last
 * level leaves input i in lane TREE_SLOT(i), a 4 x 4 transpose (its own inverse): callers put
 * what lane i should reduce in v[TREE_SLOT(i)]. */
#define TREE_SLOT(i) (4 * ((i) % 4) + (i) / 4)
#define TREE16(OP, SF4, SPS, v)                                                                                     \
    do {                                                                                                            \
        for (int i = 0; i < 8; i++) v[i] = OP(SF4(v[2 * i], v[2 * i + 1], 0x44), SF4(v[2 * i], v[2 * i + 1], 0xEE)); \
        for (int i = 0; i < 4; i++) v[i] = OP(SF4(v[2 * i], v[2 * i + 1], 0x88), SF4(v[2 * i], v[2 * i + 1], 0xDD)); \
        for (int i = 0; i < 2; i++) v[i] = OP(SPS(v[2 * i], v[2 * i + 1], 0x44), SPS(v[2 * i], v[2 * i + 1], 0xEE)); \
        v[0] = OP(SPS(v[0], v[1], 0x88), SPS(v[0], v[1], 0xDD));                                                    \
    } while (0)

/* vshufps on integer lanes (a macro: the immediate must be a constant for every compiler) */
#define SHUF_EPI32(a, b, imm) _mm512_castps_si512(_mm512_shuffle_ps(_mm512_castsi512_ps(a), _mm512_castsi512_ps(b), imm))

INL __m512 tree_max(__m512 v[16]) {
    TREE16(_mm512_max_ps, _mm512_shuffle_f32x4, _mm512_shuffle_ps, v);
    return v[0];
}

INL __m512i tree_add(__m512i v[16]) {
    TREE16(_mm512_add_epi32, _mm512_shuffle_i32x4, SHUF_EPI32, v);
    return v[0];
}

/* Sixteen blocks at x (blocks b..b+15 of xq): the maxima, scales and sums as vectors of one
 * lane per block (vdivps rounds as divss does), the rounding per block. */
INL void q8x_16(kern_q8x *xq, const float *x, size_t b) {
    __m512 t[16];
    for (int i = 0; i < 16; i++)
        t[TREE_SLOT(i)] = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + 32 * i)), _mm512_abs_ps(_mm512_loadu_ps(x + 32 * i + 16)));
    __m512 d = _mm512_div_ps(tree_max(t), _mm512_set1_ps(127.0f));
    __m512 id = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_NEQ_UQ), _mm512_set1_ps(1.0f), d);
    float ids[16];
    _mm512_storeu_ps(ids, id);
    __m512i h[16], s[16];
    for (int i = 0; i < 16; i++) {
        __m512 idv = _mm512_set1_ps(ids[i]);
        __m512i qa = _mm512_cvttps_epi32(round_away(_mm512_mul_ps(_mm512_loadu_ps(x + 32 * i), idv)));
        __m512i qc = _mm512_cvttps_epi32(round_away(_mm512_mul_ps(_mm512_loadu_ps(x + 32 * i + 16), idv)));
        _mm_storeu_si128((__m128i *)(xq->q + (b + (size_t)i) * 32), _mm512_cvtepi32_epi8(qa));
        _mm_storeu_si128((__m128i *)(xq->q + (b + (size_t)i) * 32 + 16), _mm512_cvtepi32_epi8(qc));
        h[TREE_SLOT(i)] = qa;
        s[TREE_SLOT(i)] = _mm512_add_epi32(qa, qc);
    }
    __m512i sum = tree_add(s);
    _mm512_storeu_ps(xq->d + b, d);
    _mm512_storeu_si512(xq->s + b, sum);
    _mm512_storeu_si512(xq->h + b, tree_add(h));
    /* -(d * s): the sign flipped exactly */
    __m512 ds = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sum));
    _mm512_storeu_ps(xq->m + b, _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(ds), _mm512_set1_epi32((int)0x80000000u))));
}

/* kern_q8x_fill's blocks, the scalar loop's arithmetic 16 lanes at a time (max is exact, the
 * scale and its inverse are divisions as there, the rounding is roundf's); sixteen blocks at a
 * time share the reductions (q8x_16), the rest one by one. */
TQ void kern_avx512_q8x(kern_q8x *xq, const float *x, size_t b0, size_t b1) {
    for (; b0 + 16 <= b1; b0 += 16) q8x_16(xq, x + b0 * 32, b0);
    x += b0 * 32;
    for (size_t b = b0; b < b1; b++, x += 32) {
        __m512 a = _mm512_loadu_ps(x), c = _mm512_loadu_ps(x + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(c)));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        __m512 idv = _mm512_set1_ps(id);
        __m512i qa = _mm512_cvttps_epi32(round_away(_mm512_mul_ps(a, idv))), qc = _mm512_cvttps_epi32(round_away(_mm512_mul_ps(c, idv)));
        _mm_storeu_si128((__m128i *)(xq->q + b * 32), _mm512_cvtepi32_epi8(qa));
        _mm_storeu_si128((__m128i *)(xq->q + b * 32 + 16), _mm512_cvtepi32_epi8(qc));
        xq->d[b] = d;
        int32_t half = _mm512_reduce_add_epi32(qa);
        xq->s[b] = half + _mm512_reduce_add_epi32(qc);
        xq->h[b] = half;
        xq->m[b] = -(d * (float)xq->s[b]);
    }
}

void kern_avx512_matmul_q_rows(float *out, const kern_q8x *xq, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1) {
    __builtin_cpu_init();
    /* the K-quants, Q4_1, Q5_0, Q5_1, and every type on a CPU without VNNI (Skylake-SP/X): the
     * AVX2 rows, the reference's bits (with VNNI the packed kernels are their fast path, with the
     * same bits) */
    if ((dtype == S1C_Q8_0 || dtype == S1C_Q4_0) && __builtin_cpu_supports("avx512vnni")) vnni_rows(out, xq, n_rows, w, dtype, n, d, i0, i1);
    else kern_avx2_matmul_q_rows(out, xq, n_rows, w, dtype, n, d, i0, i1);
}

#else
void kern_avx512_q8x(kern_q8x *xq, const float *x, size_t b0, size_t b1) { (void)xq, (void)x, (void)b0, (void)b1; }
void kern_avx512_matmul_q_rows(float *out, const kern_q8x *xq, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1) {
    kern_ref_matmul_q_rows(out, xq, n_rows, w, dtype, n, d, i0, i1);
}
#endif
