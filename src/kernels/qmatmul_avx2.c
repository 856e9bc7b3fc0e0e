/* The quantized matmul with AVX2 (the avx2 family's matmul_q_rows: Q8_0, Q4_0,
 * Q4_1, Q5_0, Q5_1 and the K-quants; qmatmul.c has the reference and the formats), and the
 * activations' quantization with AVX2.
 *
 * Eight weight rows at a time, one lane each: per 32-block, each row's exact integer dot with
 * the activation block (vpmaddubsw on |w| and x with w's sign, or on unsigned codes: Q4_0's
 * nibbles with the -8 folded in as -8 * sum(x), the other types' 4 / 5 / 6-bit codes; pairs of
 * products stay within int16: 2 * 128 * 127), vpmaddwd to int32 partials, the eight rows'
 * partials summed across lanes into one vector of eight exact block sums; then, lane by lane,
 * the reference's float steps, blocks in increasing order: Q8_0 / Q4_0's `s += (float)isum *
 * (d_w * d_x)` as a multiply and an add (their functions' target has no FMA), the other
 * types' fmaf steps as FMAs. So every output is bitwise the reference's, whatever the grouping of rows
 * or the thread split. A group's per-row scales are gathered once per run of blocks (a row's
 * blocks are 18-210 bytes apart: no vector load reaches them) and serve every activation row.
 * No repacking: the layout is the file's, so the AVX2 family needs no second copy of the
 * weights (the packed AVX-512 layouts are that family's). */
#include "kern_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <string.h>

#include "vmath_avx2.h" /* hmax8 */

#define T2 __attribute__((target("avx2,f16c")))
#define INL static inline __attribute__((always_inline)) T2

enum { GROUP = 8, SCALE_BLOCKS = 64 };

/* Lane r: the sum of v[r]'s eight int32 lanes (exact: integer adds in any order). */
INL __m256i sum_lanes8(const __m256i v[GROUP]) {
    __m256i a = _mm256_hadd_epi32(v[0], v[1]), b = _mm256_hadd_epi32(v[2], v[3]);
    __m256i c = _mm256_hadd_epi32(v[4], v[5]), d = _mm256_hadd_epi32(v[6], v[7]);
    __m256i ab = _mm256_hadd_epi32(a, b), cd = _mm256_hadd_epi32(c, d); /* per 128-bit half: rows 0-3 / 4-7 */
    return _mm256_add_epi32(_mm256_permute2x128_si256(ab, cd, 0x20), _mm256_permute2x128_si256(ab, cd, 0x31));
}

/* Block b of a weight row against the activation block x, as 8 int32 partial sums. */
INL __m256i block_q8_0(const uint8_t *w, int b, __m256i x) {
    __m256i wv = _mm256_loadu_si256((const __m256i *)(w + (size_t)b * 34 + 2));
    __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(x, wv));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* Unsigned codes against x as 8 int32 partial sums (codes up to 128, as Q8_0's |w|: a pair of
 * products stays within vpmaddubsw's int16). */
INL __m256i dot_codes(__m256i q, __m256i x) { return _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), _mm256_set1_epi16(1)); }

/* 16 bytes of nibbles as 32 codes in x's order: element i < 16 is byte i's low nibble, i + 16
 * its high one (Q4_0, Q4_1, Q5_x). */
INL __m256i nibbles32(const uint8_t *p) {
    __m128i raw = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0f));
}

/* Q4_0's codes: the nibbles as stored (0..15; the -8 is the caller's -8 * sum(x)). */
INL __m256i code_q4_0(const uint8_t *w, int b) { return nibbles32(w + (size_t)b * 18 + 2); }

/* The f16 at byte `at` of blocks [b0, b0 + nb) of the group's rows (a scale or a min), as f32:
 * ws[k][r]. */
INL void group_scales(float (*ws)[GROUP], const uint8_t *const *wr, size_t block_bytes, size_t at, int b0, int nb) {
    for (int k = 0; k < nb; k++) {
        uint16_t h[GROUP];
        for (int r = 0; r < GROUP; r++) memcpy(&h[r], wr[r] + (size_t)(b0 + k) * block_bytes + at, 2);
        _mm256_storeu_ps(ws[k], _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h)));
    }
}

/* The group's eight row pointers from output row i0 (rows past `rows` repeat the last one, whose
 * results are not stored). */
INL void group_ptrs(const uint8_t **wr, const uint8_t *w, size_t row_bytes, int i0, int rows) {
    for (int r = 0; r < GROUP; r++) wr[r] = w + (size_t)(i0 + (r < rows ? r : rows - 1)) * row_bytes;
}

/* The next group's rows at byte `off` of each (see group_rows). */
INL void prefetch_group(const uint8_t *next, size_t row_bytes, size_t off) {
    for (int r = 0; r < GROUP; r++) _mm_prefetch((const char *)next + (size_t)r * row_bytes + off, _MM_HINT_T0);
}

/* Each activation row's sums of the group (acc, GROUP apart) into its outputs i0 .. i0 + rows - 1. */
INL void store_group(float *out, const float *acc, int n_rows, int d, int i0, int rows) {
    for (int t = 0; t < n_rows; t++)
        for (int r = 0; r < rows; r++) out[(size_t)t * d + i0 + r] = acc[(size_t)t * GROUP + r];
}

/* A batch of PRE_ROWS activation rows or more takes the codes of a run of blocks unpacked once
 * for all its rows (group_codes): Q8_0's |w| (w's sign goes onto x per row, as in block_q8_0),
 * Q4_0's nibbles in x's order; per row and block 3 operations instead of 5-6. */
enum { PRE_ROWS = 4 };

INL void group_codes(uint8_t (*codes)[GROUP][32], const uint8_t *const *wr, const bool q4, int b0, int b1) {
    for (int b = b0; b < b1; b++)
        for (int r = 0; r < GROUP; r++) {
            __m256i c = q4 ? code_q4_0(wr[r], b) : _mm256_abs_epi8(_mm256_loadu_si256((const __m256i *)(wr[r] + (size_t)b * 34 + 2)));
            _mm256_store_si256((__m256i *)codes[b - b0][r], c);
        }
}

/* A block's unpacked codes against x (with the signs of the Q8_0 values at `sign`, or NULL). */
INL __m256i block_coded(const uint8_t *code, const uint8_t *sign, __m256i x) {
    if (sign) x = _mm256_sign_epi8(x, _mm256_loadu_si256((const __m256i *)sign));
    return dot_codes(_mm256_load_si256((const __m256i *)code), x);
}

/* Outputs i0..i0+7 (rows past `rows` repeat the last and are not stored) for every activation
 * row. The blocks go in runs of SCALE_BLOCKS (their scales on the stack), each row's eight sums
 * kept in `acc` between runs. The first activation row's pass asks for the same blocks of the
 * next group's rows (`next`, NULL: none), which follow these in memory: decode reads the weights
 * once, and eight interleaved rows were more streams than the hardware prefetchers kept ahead of
 * (896 x 4864 Q8_0 from memory, one row, 2 threads: ~27 GB/s against ~65 from L3). */
INL void group_rows(float *out, const kern_q8x *xq, int n_rows, const uint8_t *w, const bool q4, size_t row_bytes, int d, int i0, int rows,
                    const uint8_t *next, float *acc) {
    int nb = xq->n / 32;
    size_t block_bytes = q4 ? 18 : 34;
    const uint8_t *wr[GROUP];
    group_ptrs(wr, w, row_bytes, i0, rows);
    float ws[SCALE_BLOCKS][GROUP];
    _Alignas(32) uint8_t codes[SCALE_BLOCKS][GROUP][32];
    bool pre = n_rows >= PRE_ROWS;
    for (int b0 = 0; b0 < nb; b0 += SCALE_BLOCKS) {
        int b1 = nb - b0 < SCALE_BLOCKS ? nb : b0 + SCALE_BLOCKS;
        group_scales(ws, wr, block_bytes, 0, b0, b1 - b0);
        if (pre) group_codes(codes, wr, q4, b0, b1);
        for (int t = 0; t < n_rows; t++) {
            const int8_t *xt = xq->q + (size_t)t * xq->n;
            const float *xd = xq->d + (size_t)t * nb;
            __m256 s = b0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(acc + (size_t)t * GROUP);
            for (int b = b0; b < b1; b++) {
                if (t == 0 && next) prefetch_group(next, row_bytes, (size_t)b * block_bytes);
                __m256i x = _mm256_loadu_si256((const __m256i *)(xt + (size_t)b * 32)), v[GROUP];
                if (pre)
                    for (int r = 0; r < GROUP; r++) v[r] = block_coded(codes[b - b0][r], q4 ? NULL : wr[r] + (size_t)b * 34 + 2, x);
                else
                    for (int r = 0; r < GROUP; r++) v[r] = q4 ? dot_codes(code_q4_0(wr[r], b), x) : block_q8_0(wr[r], b, x);
                __m256i isum = sum_lanes8(v);
                if (q4) isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(8 * xq->s[(size_t)t * nb + b]));
                __m256 sc = _mm256_mul_ps(_mm256_loadu_ps(ws[b - b0]), _mm256_set1_ps(xd[b]));
                s = _mm256_add_ps(s, _mm256_mul_ps(_mm256_cvtepi32_ps(isum), sc));
            }
            _mm256_storeu_ps(acc + (size_t)t * GROUP, s);
        }
    }
    store_group(out, acc, n_rows, d, i0, rows);
}

/* Each type's group as its own function, the type a constant (the loops above specialize). */
#define GROUP_FN(NAME, TARGET, BODY, DT)                                                                                  \
    static TARGET void NAME(float *out, const kern_q8x *xq, int n_rows, const uint8_t *w, size_t rb, int d, int i0, int rows, \
                            const uint8_t *nx, float *acc) {                                                              \
        BODY(out, xq, n_rows, w, DT, rb, d, i0, rows, nx, acc);                                                           \
    }
GROUP_FN(group_rows_q8_0, T2, group_rows, false)
GROUP_FN(group_rows_q4_0, T2, group_rows, true)

/* ---- K-quants: the reference's per-32-block steps (qmatmul.c), eight rows a lane each; their
 * FMAs are the reference's fmaf, so the same bits. */
#define T2F __attribute__((target("avx2,fma,f16c")))
#define INLF static inline __attribute__((always_inline)) T2F

enum { KQ_RUN = 4 }; /* super-blocks per run of per-row scale tables and unpacked codes (stack: ~12 KiB) */

/* Q4_K / Q5_K sub-block j of super-block p (its bytes): the nibbles (and Q5_K's fifth bits,
 * moved to bit 4 by a compare). */
INLF __m256i code_q45k(const uint8_t *p, bool q5, int j) {
    __m256i raw = _mm256_loadu_si256((const __m256i *)(p + (q5 ? 48 : 16) + 32 * (j / 2)));
    __m256i v = _mm256_and_si256(j & 1 ? _mm256_srli_epi16(raw, 4) : raw, _mm256_set1_epi8(0x0f));
    if (q5) {
        __m256i bit = _mm256_set1_epi8((char)(1 << j)), qh = _mm256_loadu_si256((const __m256i *)(p + 16));
        v = _mm256_or_si256(v, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit), _mm256_set1_epi8(0x10)));
    }
    return v;
}

/* Q6_K sub-block j: the unsigned 6-bit codes (0..63; their dot's int32 lanes 0-3 cover elements
 * 0-15, the first 16-element scale's, 4-7 the rest: the caller applies the scales and takes off
 * 32 * sum(x) per half). */
INLF __m256i code_q6k(const uint8_t *p, int j) {
    int h = j / 4, g = j % 4;
    __m256i lq = _mm256_loadu_si256((const __m256i *)(p + 64 * h + 32 * (g & 1)));
    __m256i hq = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * h));
    __m256i nib = _mm256_and_si256(g < 2 ? lq : _mm256_srli_epi16(lq, 4), _mm256_set1_epi8(0x0f));
    __m256i hi = _mm256_and_si256(_mm256_srl_epi16(hq, _mm_cvtsi32_si128(2 * g)), _mm256_set1_epi8(0x03));
    return _mm256_or_si256(nib, _mm256_slli_epi16(hi, 4)); /* bytes <= 3 << 4: no carry into the next */
}

/* sum_lanes8 in two halves: lane r of *lo the sum of v[r]'s lanes 0-3, of *hi its lanes 4-7. */
INLF void sum_halves8(const __m256i v[GROUP], __m256i *lo, __m256i *hi) {
    __m256i a = _mm256_hadd_epi32(v[0], v[1]), b = _mm256_hadd_epi32(v[2], v[3]);
    __m256i c = _mm256_hadd_epi32(v[4], v[5]), d = _mm256_hadd_epi32(v[6], v[7]);
    __m256i ab = _mm256_hadd_epi32(a, b), cd = _mm256_hadd_epi32(c, d);
    *lo = _mm256_permute2x128_si256(ab, cd, 0x20);
    *hi = _mm256_permute2x128_si256(ab, cd, 0x31);
}

/* m[r] lane j -> m[j] lane r. */
INLF void transpose8(__m256 m[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(m[2 * i], m[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(m[2 * i], m[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) { /* rows 4i .. 4i + 3: u[4i + c] holds columns c, c + 4 */
        u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        m[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        m[c + 4] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}

/* Per-row factors of the run's sub-blocks (k = super-block in the run * 8 + j), a vector over the
 * group's rows each: Q4_K/Q5_K fa = d * sc, fb = dmin * m (exact: an f16 times a 6-bit integer);
 * Q6_K fa = d, ca / cb the two 16-element scales. */
typedef struct kq_tables {
    __m256 fa[KQ_RUN * 8], fb[KQ_RUN * 8];
    __m256i ca[KQ_RUN * 8], cb[KQ_RUN * 8];
} kq_tables;

INLF float f16_le(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* Q4_K's twelve scale bytes as eight 6-bit scales (sc) and eight mins (m), one byte each: the
 * bit fields of s1c_q4k_scale_min, four at a time in 32-bit words. */
INLF void q4k_scales8(const uint8_t *q, uint8_t sc[8], uint8_t m[8]) {
    uint32_t u[3], o[4];
    memcpy(u, q, 12);
    o[0] = u[0] & 0x3f3f3f3fu;                                            /* sc 0-3: q[j] & 63 */
    o[1] = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 6 & 0x03030303u) << 4);       /* sc 4-7 */
    o[2] = u[1] & 0x3f3f3f3fu;                                            /* m 0-3: q[j + 4] & 63 */
    o[3] = (u[2] >> 4 & 0x0f0f0f0fu) | ((u[1] >> 6 & 0x03030303u) << 4);  /* m 4-7 */
    memcpy(sc, o, 8);
    memcpy(m, o + 2, 8);
}

/* Super-block sb's factors for the group's rows, j in lanes, then transposed: rows in lanes. */
static T2F void kq_fill(kq_tables *tb, const uint8_t *const *wr, int dtype, size_t tsz, int s0, int s1) {
    for (int sb = s0; sb < s1; sb++) {
        __m256 fa[GROUP], fb[GROUP];
        for (int r = 0; r < GROUP; r++) {
            const uint8_t *p = wr[r] + (size_t)sb * tsz;
            if (dtype == S1C_Q6_K) {
                /* the even scale bytes (each 32-block's first half) into the low 8, the odd ones above */
                __m128i sc = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 192)),
                                              _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
                fa[r] = _mm256_castsi256_ps(_mm256_cvtepi8_epi32(sc));
                fb[r] = _mm256_castsi256_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8)));
            } else {
                uint8_t sc[8], m[8];
                q4k_scales8(p + 4, sc, m);
                __m256 scf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)sc)));
                __m256 mf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)m)));
                fa[r] = _mm256_mul_ps(_mm256_set1_ps(f16_le(p)), scf);
                fb[r] = _mm256_mul_ps(_mm256_set1_ps(f16_le(p + 2)), mf);
            }
        }
        transpose8(fa);
        transpose8(fb);
        int k0 = (sb - s0) * 8;
        if (dtype == S1C_Q6_K) {
            float dr[GROUP];
            for (int r = 0; r < GROUP; r++) dr[r] = f16_le(wr[r] + (size_t)sb * tsz + 208);
            for (int j = 0; j < 8; j++) {
                tb->ca[k0 + j] = _mm256_castps_si256(fa[j]);
                tb->cb[k0 + j] = _mm256_castps_si256(fb[j]);
                tb->fa[k0 + j] = _mm256_loadu_ps(dr);
            }
        } else {
            for (int j = 0; j < 8; j++) tb->fa[k0 + j] = fa[j], tb->fb[k0 + j] = fb[j];
        }
    }
}

INLF __m256i kq_code(const uint8_t *p, const int KT, int j) { return KT == S1C_Q6_K ? code_q6k(p, j) : code_q45k(p, KT == S1C_Q5_K, j); }

/* group_rows for the K-quants: outputs i0..i0+7 over super-blocks in runs of KQ_RUN (a batch's
 * codes unpacked once per run, as group_codes). */
INLF void kq_group(float *out, const kern_q8x *xq, int n_rows, const uint8_t *w, const int KT, size_t row_bytes, int d, int i0, int rows,
                   const uint8_t *next, float *acc) {
    int nsb = xq->n / 256, nb = xq->n / 32;
    size_t tsz = KT == S1C_Q4_K ? 144 : KT == S1C_Q5_K ? 176 : 210;
    const uint8_t *wr[GROUP];
    group_ptrs(wr, w, row_bytes, i0, rows);
    kq_tables tb;
    _Alignas(32) uint8_t codes[KQ_RUN * 8][GROUP][32];
    bool pre = n_rows >= PRE_ROWS;
    for (int s0 = 0; s0 < nsb; s0 += KQ_RUN) {
        int s1 = nsb - s0 < KQ_RUN ? nsb : s0 + KQ_RUN;
        kq_fill(&tb, wr, KT, tsz, s0, s1);
        for (int sb = s0; pre && sb < s1; sb++)
            for (int j = 0; j < 8; j++)
                for (int r = 0; r < GROUP; r++)
                    _mm256_store_si256((__m256i *)codes[(sb - s0) * 8 + j][r], kq_code(wr[r] + (size_t)sb * tsz, KT, j));
        for (int t = 0; t < n_rows; t++) {
            const int8_t *xt = xq->q + (size_t)t * xq->n;
            size_t xb = (size_t)t * nb;
            __m256 s = s0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(acc + (size_t)t * GROUP);
            for (int sb = s0; sb < s1; sb++)
                for (int j = 0; j < 8; j++) {
                    int b = sb * 8 + j, k = (sb - s0) * 8 + j;
                    if (t == 0 && next) prefetch_group(next, row_bytes, (size_t)sb * tsz + (size_t)j * tsz / 8);
                    __m256i x = _mm256_loadu_si256((const __m256i *)(xt + (size_t)b * 32)), v[GROUP];
                    for (int r = 0; r < GROUP; r++)
                        v[r] = dot_codes(pre ? _mm256_load_si256((const __m256i *)codes[k][r]) : kq_code(wr[r] + (size_t)sb * tsz, KT, j), x);
                    __m256 xd = _mm256_set1_ps(xq->d[xb + b]);
                    if (KT == S1C_Q6_K) {
                        /* sc_a * (sum_{l<16} q x - 32 h) + sc_b * (sum_{l>=16} q x - 32 (s - h)), exact */
                        int32_t h = xq->h[xb + b], rest = xq->s[xb + b] - h;
                        __m256i lo, hi;
                        sum_halves8(v, &lo, &hi);
                        lo = _mm256_mullo_epi32(_mm256_sub_epi32(lo, _mm256_set1_epi32(32 * h)), tb.ca[k]);
                        hi = _mm256_mullo_epi32(_mm256_sub_epi32(hi, _mm256_set1_epi32(32 * rest)), tb.cb[k]);
                        __m256i isum = _mm256_add_epi32(lo, hi);
                        s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(tb.fa[k], xd), s);
                    } else {
                        __m256i isum = sum_lanes8(v);
                        s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(tb.fa[k], xd), s);
                        s = _mm256_fmadd_ps(tb.fb[k], _mm256_set1_ps(xq->m[xb + b]), s);
                    }
                }
            _mm256_storeu_ps(acc + (size_t)t * GROUP, s);
        }
    }
    store_group(out, acc, n_rows, d, i0, rows);
}

GROUP_FN(kq_group_q4k, T2F, kq_group, S1C_Q4_K)
GROUP_FN(kq_group_q5k, T2F, kq_group, S1C_Q5_K)
GROUP_FN(kq_group_q6k, T2F, kq_group, S1C_Q6_K)

/* ---- Q4_1, Q5_0, Q5_1 (20 / 22 / 24-byte blocks: f16 d, Q4_1/Q5_1 an f16 m, Q5_x a u32 of
 * fifth bits, 16 bytes of nibbles): the reference's steps (qmatmul.c's dot_q5x) lane by lane. */

/* The 32 fifth bits as bytes: 0x10 where bit i of qh is set (byte i sees qh's byte i / 8). */
INLF __m256i fifth_bits(uint32_t qh) {
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2,
                                                                                  2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), _mm256_set1_epi8(0x10));
}

/* Block b of a row: its unsigned codes (the nibbles and, Q5_x, the fifth bits). */
INLF __m256i code_q5x(const uint8_t *w, const int DT, size_t bb, int b) {
    const uint8_t *p = w + (size_t)b * bb;
    size_t qs = DT == S1C_Q4_1 ? 4 : DT == S1C_Q5_0 ? 6 : 8;
    __m256i q = nibbles32(p + qs);
    if (DT != S1C_Q4_1) {
        uint32_t qh;
        memcpy(&qh, p + qs - 4, 4);
        q = _mm256_or_si256(q, fifth_bits(qh));
    }
    return q;
}

/* group_rows for Q4_1 / Q5_0 / Q5_1 (a batch's codes unpacked once per run, as group_codes). */
INLF void q5x_group(float *out, const kern_q8x *xq, int n_rows, const uint8_t *w, const int DT, size_t row_bytes, int d, int i0, int rows,
                    const uint8_t *next, float *acc) {
    int nb = xq->n / 32;
    size_t bb = DT == S1C_Q4_1 ? 20 : DT == S1C_Q5_0 ? 22 : 24;
    const uint8_t *wr[GROUP];
    group_ptrs(wr, w, row_bytes, i0, rows);
    float ws[SCALE_BLOCKS][GROUP], wm[SCALE_BLOCKS][GROUP];
    _Alignas(32) uint8_t codes[SCALE_BLOCKS][GROUP][32];
    bool pre = n_rows >= PRE_ROWS;
    for (int b0 = 0; b0 < nb; b0 += SCALE_BLOCKS) {
        int b1 = nb - b0 < SCALE_BLOCKS ? nb : b0 + SCALE_BLOCKS;
        group_scales(ws, wr, bb, 0, b0, b1 - b0);
        if (DT != S1C_Q5_0) group_scales(wm, wr, bb, 2, b0, b1 - b0);
        for (int b = b0; pre && b < b1; b++)
            for (int r = 0; r < GROUP; r++) _mm256_store_si256((__m256i *)codes[b - b0][r], code_q5x(wr[r], DT, bb, b));
        for (int t = 0; t < n_rows; t++) {
            const int8_t *xt = xq->q + (size_t)t * xq->n;
            size_t xb = (size_t)t * nb;
            __m256 s = b0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(acc + (size_t)t * GROUP);
            for (int b = b0; b < b1; b++) {
                if (t == 0 && next) prefetch_group(next, row_bytes, (size_t)b * bb);
                __m256i x = _mm256_loadu_si256((const __m256i *)(xt + (size_t)b * 32)), v[GROUP];
                for (int r = 0; r < GROUP; r++)
                    v[r] = dot_codes(pre ? _mm256_load_si256((const __m256i *)codes[b - b0][r]) : code_q5x(wr[r], DT, bb, b), x);
                __m256i isum = sum_lanes8(v);
                if (DT == S1C_Q5_0) isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(16 * xq->s[xb + b]));
                s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(_mm256_loadu_ps(ws[b - b0]), _mm256_set1_ps(xq->d[xb + b])), s);
                if (DT != S1C_Q5_0) s = _mm256_fmadd_ps(_mm256_loadu_ps(wm[b - b0]), _mm256_set1_ps(-xq->m[xb + b]), s);
            }
            _mm256_storeu_ps(acc + (size_t)t * GROUP, s);
        }
    }
    store_group(out, acc, n_rows, d, i0, rows);
}

GROUP_FN(q5x_group_q41, T2F, q5x_group, S1C_Q4_1)
GROUP_FN(q5x_group_q50, T2F, q5x_group, S1C_Q5_0)
GROUP_FN(q5x_group_q51, T2F, q5x_group, S1C_Q5_1)

/* Output rows [i0, i1) in groups of 8, each group asking for the next (see group_rows). */
static void rows_in_groups(float *out, const kern_q8x *xq, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1) {
    size_t row_bytes = (size_t)n / (size_t)s1c_dtype_block_size(dtype) * (size_t)s1c_dtype_type_size(dtype);
    /* the running sums of each activation row between runs of blocks: a small stack buffer, or
     * the heap for long batches */
    float small[64 * GROUP], *acc = n_rows <= 64 ? small : aligned_alloc(32, (size_t)n_rows * GROUP * sizeof(float));
    if (!acc) {
        kern_ref_matmul_q_rows(out, xq, n_rows, w, dtype, n, d, i0, i1);
        return;
    }
    for (int i = i0; i < i1; i += GROUP) {
        const uint8_t *g = (const uint8_t *)w + (size_t)i * row_bytes, *next = i + 2 * GROUP <= i1 ? g + GROUP * row_bytes : NULL;
        int rows = i1 - i < GROUP ? i1 - i : GROUP;
        switch (dtype) {
        case S1C_Q8_0: group_rows_q8_0(out, xq, n_rows, w, row_bytes, d, i, rows, next, acc); break;
        case S1C_Q4_0: group_rows_q4_0(out, xq, n_rows, w, row_bytes, d, i, rows, next, acc); break;
        case S1C_Q4_K: kq_group_q4k(out, xq, n_rows, w, row_bytes, d, i, rows, next, acc); break;
        case S1C_Q5_K: kq_group_q5k(out, xq, n_rows, w, row_bytes, d, i, rows, next, acc); break;
        case S1C_Q4_1: q5x_group_q41(out, xq, n_rows, w, row_bytes, d, i, rows, next, acc); break;
        case S1C_Q5_0: q5x_group_q50(out, xq, n_rows, w, row_bytes, d, i, rows, next, acc); break;
        case S1C_Q5_1: q5x_group_q51(out, xq, n_rows, w, row_bytes, d, i, rows, next, acc); break;
        default: kq_group_q6k(out, xq, n_rows, w, row_bytes, d, i, rows, next, acc); break;
        }
    }
    if (acc != small) free(acc);
}

void kern_avx2_matmul_q_rows(float *out, const kern_q8x *xq, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1) {
    bool ours = dtype == S1C_Q8_0 || dtype == S1C_Q4_0 || kern_is_q5x_dtype(dtype) || (kern_is_kquant_dtype(dtype) && n % 256 == 0);
    if (ours && kern_avx2_supported()) rows_in_groups(out, xq, n_rows, w, dtype, n, d, i0, i1);
    else kern_ref_matmul_q_rows(out, xq, n_rows, w, dtype, n, d, i0, i1);
}

/* roundf of 8 floats (halves away from zero): truncate, then a step away from zero where the
 * dropped part is at least one half (v - trunc(v) is exact). */
INL __m256 round_away8(__m256 v) {
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f)), frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t));
    __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    return _mm256_add_ps(t, _mm256_and_ps(up, _mm256_or_ps(_mm256_set1_ps(1.0f), sign)));
}

INL int32_t hsum8_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)));
}

/* kern_ref_q8x's blocks 8 lanes at a time: the same max, divisions and roundf, so the same
 * bytes and scales. */
T2 void kern_avx2_q8x(kern_q8x *xq, const float *x, size_t b0, size_t b1) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (size_t b = b0; b < b1; b++) {
        const float *xb = x + b * 32;
        __m256 v[4], m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            m = _mm256_max_ps(_mm256_and_ps(v[k], abs_mask), m); /* a NaN lane keeps m (maxps's second operand), as the scalar compare skips it */
        }
        float d = hmax8(m) / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        __m256i q[4];
        for (int k = 0; k < 4; k++) q[k] = _mm256_cvttps_epi32(round_away8(_mm256_mul_ps(v[k], _mm256_set1_ps(id))));
        /* int32 -> int8 (values within -127..127: the saturating packs keep them) in order */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(xq->q + b * 32), p);
        int32_t half = hsum8_epi32(_mm256_add_epi32(q[0], q[1]));
        xq->d[b] = d;
        xq->s[b] = half + hsum8_epi32(_mm256_add_epi32(q[2], q[3]));
        xq->h[b] = half;
        xq->m[b] = -(d * (float)xq->s[b]);
    }
}

#else
void kern_avx2_matmul_q_rows(float *out, const kern_q8x *xq, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1) {
    kern_ref_matmul_q_rows(out, xq, n_rows, w, dtype, n, d, i0, i1);
}
void kern_avx2_q8x(kern_q8x *xq, const float *x, size_t b0, size_t b1) { kern_ref_q8x(xq, x, b0, b1); }
#endif
