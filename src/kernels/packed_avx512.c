/* The packed multi-row kernels' register tiles (AVX-512; kern_pack in kernels.h has the layout).
 *
 * A tile is mr activation rows x nv panels of 16 output rows: mr * nv zmm accumulators, each
 * holding 16 outputs of one activation row. Per step one zmm load per panel is shared by the
 * mr rows and one broadcast per row by the nv panels, so a weight is loaded once per mr rows
 * (the point of the layout) while every accumulator lane sees exactly the chain of operations
 * it would see in a 1 x 1 tile: the tile shape, the row count and the thread split never change
 * a bit. The driver (packed.c) picks the shapes and the k ranges. */
#include "kern_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <string.h>

#define TP __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16,fma,f16c,prfchw")))
#define INL static inline __attribute__((always_inline)) TP

static inline __mmask16 col_mask(int cols) { return cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1); }

/* The accumulators start at 0 (k0 == 0) or at the stored partial results; a first slice asks
 * for output lines for writing OUT_AHEAD floats on (kern_internal.h says why). */
#define ACC_START(ACC, MR, NV, M, T)                                                                     \
    do {                                                                                                   \
        _Pragma("GCC unroll 4") for (int v = 0; v < (NV); v++) M[v] = col_mask((T)->cols - 16 * v);      \
        if ((T)->k0 == 0)                                                                                  \
            _Pragma("GCC unroll 6") for (int r = 0; r < (MR); r++)                                        \
                _Pragma("GCC unroll 4") for (int v = 0; v < (NV); v++)                                    \
                    out_ahead((T)->out + (size_t)r * (T)->ldo + 16 * v);                                \
        _Pragma("GCC unroll 6") for (int r = 0; r < (MR); r++)                                            \
            _Pragma("GCC unroll 4") for (int v = 0; v < (NV); v++) ACC[r][v] =                           \
                (T)->k0 > 0 ? _mm512_maskz_loadu_ps(M[v], (T)->out + (size_t)r * (T)->ldo + 16 * v)      \
                            : _mm512_setzero_ps();                                                         \
    } while (0)

#define ACC_STORE(ACC, MR, NV, M, T)                                                                     \
    do {                                                                                                   \
        _Pragma("GCC unroll 6") for (int r = 0; r < (MR); r++)                                            \
            _Pragma("GCC unroll 4") for (int v = 0; v < (NV); v++)                                        \
                _mm512_mask_storeu_ps((T)->out + (size_t)r * (T)->ldo + 16 * v, M[v], ACC[r][v]);       \
    } while (0)

/* F32 weights: one FMA per k, in increasing k. */
INL void f32_tile(const pk_tile *t, const int MR, const int NV) {
    __m512 acc[6][4];
    __mmask16 m[4];
    ACC_START(acc, MR, NV, m, t);
    const float *w = (const float *)t->pw;
    size_t ps = t->pstride / sizeof(float);
    for (int k = t->k0; k < t->k1; k++) {
        __m512 wv[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) wv[v] = _mm512_loadu_ps(w + (size_t)v * ps + (size_t)k * 16);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m512 xv = _mm512_set1_ps(t->x[(size_t)r * t->ldx + k]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(wv[v], xv, acc[r][v]);
        }
    }
    ACC_STORE(acc, MR, NV, m, t);
}

/* BF16 weights widened exactly (a k-pair's lane holds k's bf16 in its low half, k+1's in its
 * high half: a shift and a mask give both as f32) against f32 activations: the F32 chain, one
 * FMA per k in increasing k, so the result is the F32 kernel's on the widened weights. */
INL void bf16w_tile(const pk_tile *t, const int MR, const int NV) {
    __m512 acc[6][4];
    __mmask16 m[4];
    ACC_START(acc, MR, NV, m, t);
    const __m512i hi_mask = _mm512_set1_epi32((int)0xffff0000u);
    for (int k = t->k0; k < t->k1; k++) {
        __m512 w[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            w[v] = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_loadu_si512(t->pw + (size_t)v * t->pstride + (size_t)k * 64), 16));
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m512 xv = _mm512_set1_ps(t->x[(size_t)r * t->ldx + 2 * k]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(w[v], xv, acc[r][v]);
        }
        if (2 * k + 1 >= t->n) break; /* odd n: the last pair has no k+1 (x ends at k) */
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            w[v] = _mm512_castsi512_ps(_mm512_and_si512(_mm512_loadu_si512(t->pw + (size_t)v * t->pstride + (size_t)k * 64), hi_mask));
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m512 xv = _mm512_set1_ps(t->x[(size_t)r * t->ldx + 2 * k + 1]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(w[v], xv, acc[r][v]);
        }
    }
    ACC_STORE(acc, MR, NV, m, t);
}

/* BF16 weights and bf16-rounded activations (KERN_PACK_BF16_DOT): one vdpbf16ps per k-pair, in
 * increasing k. */
INL void bf16_tile(const pk_tile *t, const int MR, const int NV) {
    __m512 acc[6][4];
    __mmask16 m[4];
    ACC_START(acc, MR, NV, m, t);
    for (int k = t->k0; k < t->k1; k++) {
        __m512bh wv[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) wv[v] = (__m512bh)_mm512_loadu_si512(t->pw + (size_t)v * t->pstride + (size_t)k * 64);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m512bh xv = (__m512bh)_mm512_set1_epi32((int)t->xb[(size_t)r * t->ldx + k]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], wv[v], xv);
        }
    }
    ACC_STORE(acc, MR, NV, m, t);
}

static inline int32_t load4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Q8_0 (weights stored as w + 128, unsigned) or Q4_0 (nibbles 0..15) against 8-bit activations:
 * per block an exact integer dot in int32 lanes (vpdpbusd, starting from the bias correction
 * -128 or -8 times the block's activation sum), then acc += isum * (w scale * x scale). Block b
 * of panel v: its values at pw + v * pstride + q0_block_at(b), its scales at q0_scales_at(b). */
INL void q_tile(const pk_tile *t, const bool Q4, const int MR, const int NV) {
    __m512 acc[4][3];
    __mmask16 m[4];
    ACC_START(acc, MR, NV, m, t);
    const int nb = t->ldx / 32, bias = Q4 ? -8 : -128;
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    pf_cursor pf = pf_start(&t->pf);
    for (int b = t->k0; b < t->k1; b++) {
        pf_step(&pf);
        const uint8_t *wb = t->pw + q0_block_at(Q4, b), *sb = t->pw + q0_scales_at(Q4, b);
        if (MR == 1) decode_ahead(wb, q0_blk_bytes(Q4) + 32); /* a block's share of its record */
        __m512i ia[4][3];
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) {
            __m512i s = _mm512_set1_epi32(bias * t->xs[(size_t)r * nb + b]);
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) ia[r][v] = s;
        }
        if (Q4 && MR == 1) {
            /* one row: the high nibbles masked in place (16 times their value) into a second
             * accumulator, scaled back by an exact shift, instead of a shift per weight vector */
            const __m512i high4 = _mm512_set1_epi8((char)0xf0);
            __m512i ih[3];
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) ih[v] = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                __m512i xl = _mm512_set1_epi32(load4(t->xq + (size_t)b * 32 + 4 * j));
                __m512i xh = _mm512_set1_epi32(load4(t->xq + (size_t)b * 32 + 4 * j + 16));
#pragma GCC unroll 3
                for (int v = 0; v < NV; v++) {
                    __m512i raw = _mm512_loadu_si512(wb + (size_t)v * t->pstride + (size_t)j * 64);
                    ia[0][v] = _mm512_dpbusd_epi32(ia[0][v], _mm512_and_si512(raw, low4), xl);
                    ih[v] = _mm512_dpbusd_epi32(ih[v], _mm512_and_si512(raw, high4), xh);
                }
            }
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) ia[0][v] = _mm512_add_epi32(ia[0][v], _mm512_srai_epi32(ih[v], 4));
        } else if (Q4) {
            /* low nibbles (k = 4j..4j+3) for all panels, then high ones (k + 16): few live registers */
#pragma GCC unroll 8
            for (int jj = 0; jj < 8; jj++) {
                int j = jj >> 1, half = jj & 1;
                __m512i wv[3];
#pragma GCC unroll 3
                for (int v = 0; v < NV; v++) {
                    __m512i raw = _mm512_loadu_si512(wb + (size_t)v * t->pstride + (size_t)j * 64);
                    wv[v] = _mm512_and_si512(half ? _mm512_srli_epi16(raw, 4) : raw, low4);
                }
#pragma GCC unroll 4
                for (int r = 0; r < MR; r++) {
                    __m512i xv = _mm512_set1_epi32(load4(t->xq + (size_t)r * t->ldx + (size_t)b * 32 + 4 * j + 16 * half));
#pragma GCC unroll 3
                    for (int v = 0; v < NV; v++) ia[r][v] = _mm512_dpbusd_epi32(ia[r][v], wv[v], xv);
                }
            }
        } else {
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                __m512i wv[3];
#pragma GCC unroll 3
                for (int v = 0; v < NV; v++) wv[v] = _mm512_loadu_si512(wb + (size_t)v * t->pstride + (size_t)j * 64);
#pragma GCC unroll 4
                for (int r = 0; r < MR; r++) {
                    __m512i xv = _mm512_set1_epi32(load4(t->xq + (size_t)r * t->ldx + (size_t)b * 32 + 4 * j));
#pragma GCC unroll 3
                    for (int v = 0; v < NV; v++) ia[r][v] = _mm512_dpbusd_epi32(ia[r][v], wv[v], xv);
                }
            }
        }
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) {
            __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sb + (size_t)v * t->pstride)));
#pragma GCC unroll 4
            for (int r = 0; r < MR; r++) {
                __m512 sc = _mm512_mul_ps(ws, _mm512_set1_ps(t->xd[(size_t)r * nb + b]));
                acc[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[r][v]), sc, acc[r][v]);
            }
        }
    }
    ACC_STORE(acc, MR, NV, m, t);
}

/* Q5_K's / Q6_K's high bits for value zmm z, nibble h, moved to bit 4 (and 5) of each byte
 * (packed.c's layout; bits that 16-bit shifts carry across bytes land outside the mask). */
INL __m512i kq_high(const uint8_t *bits, const int KT, const int z, const int h) {
    const int s = KT == 5 ? 4 - (2 * z + h) : 4 - 2 * (2 * (z % 2) + h);
    const __m512i v = _mm512_loadu_si512(bits + (KT == 5 ? 0 : 64 * (z / 2)));
    return s > 0 ? _mm512_slli_epi16(v, s) : s < 0 ? _mm512_srli_epi16(v, -s) : v;
}

/* Q4_K / Q5_K / Q6_K (KT 4, 5, 6) on the packed super-block records (packed.c): per 32-block an
 * exact integer dot per output (vpdpbusd of the unsigned codes, Q5_K/Q6_K's high bits joined to
 * the nibbles by a shift and a vpternlogd), then the reference's float steps (qmatmul.c) lane by
 * lane:
 *   Q4_K/Q5_K  acc = fma(isum, (d * sc) * xd, acc); acc = fma(dmin * m, -(xd * xs), acc)
 *   Q6_K       isum = sc_a * (dot over k < 16 - 32 xh) + sc_b * (dot over k >= 16 - 32 (xs - xh));
 *              acc = fma(isum, d * xd, acc) */
INL void kq_tile(const pk_tile *t, const int KT, const int MR, const int NV) {
    __m512 acc[4][3];
    __mmask16 m[4];
    ACC_START(acc, MR, NV, m, t);
    const int nb = t->ldx / 32;
    const size_t nbits = KT == 4 ? 0 : KT == 5 ? KQ_BITS5 : KQ_BITS6, rec = KQ_HDR + 4 * kq_pair_bytes(nbits);
    const __m512i low4 = _mm512_set1_epi8(0x0f), high4 = _mm512_set1_epi8((char)0xf0);
    const __m512i hmask = _mm512_set1_epi8(KT == 6 ? 0x30 : 0x10);
    /* the super-block's d and dmin per panel, read at its first block */
    __m512 dv[3] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()}, dmv[3] = {dv[0], dv[1], dv[2]};
    pf_cursor pf = pf_start(&t->pf);
    for (int b = t->k0; b < t->k1; b++) {
        pf_step(&pf);
        const size_t sbo = (size_t)(b >> 3) * rec;
        const int j = b & 7;
        if (MR == 1) decode_ahead(t->pw + sbo + (size_t)j * (rec / 8), rec / 8); /* a block's share of the record */
        if (j == 0 || b == t->k0) {
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) {
                const uint8_t *hdr = t->pw + (size_t)v * t->pstride + sbo;
                dv[v] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)hdr));
                if (KT != 6) dmv[v] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(hdr + 32)));
            }
        }
        __m512i ia[4][3], ib[4][3];
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) {
            __m512i sa = _mm512_setzero_si512(), sb = _mm512_setzero_si512();
            if (KT == 6) {
                int32_t h = t->xh[(size_t)r * nb + b], s = t->xs[(size_t)r * nb + b];
                sa = _mm512_set1_epi32(-32 * h);
                sb = _mm512_set1_epi32(-32 * (s - h));
            }
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) ia[r][v] = sa, ib[r][v] = sb;
        }
#pragma GCC unroll 4
        for (int z = 0; z < 4; z++) {
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) {
                const uint8_t *base = t->pw + (size_t)v * t->pstride + sbo;
                __m512i raw = _mm512_loadu_si512(base + kq_values_at(j, nbits) + (size_t)z * 64);
                if (KT == 4 && MR == 1) {
                    /* one row: the high nibbles masked in place (16 times their code) into the
                     * second accumulator, scaled back by an exact shift after the block */
                    __m512i xl = _mm512_set1_epi32(load4(t->xq + (size_t)b * 32 + 4 * z));
                    __m512i xh = _mm512_set1_epi32(load4(t->xq + (size_t)b * 32 + 4 * z + 16));
                    ia[0][v] = _mm512_dpbusd_epi32(ia[0][v], _mm512_and_si512(raw, low4), xl);
                    ib[0][v] = _mm512_dpbusd_epi32(ib[0][v], _mm512_and_si512(raw, high4), xh);
                    continue;
                }
                __m512i lo = _mm512_and_si512(raw, low4), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
                if (KT != 4) {
                    /* code = nibble | (shifted bits & hmask): vpternlogd's A | (B & C) */
                    const uint8_t *bits = base + kq_bits_at(j, nbits);
                    lo = _mm512_ternarylogic_epi32(lo, kq_high(bits, KT, z, 0), hmask, 0xf8);
                    hi = _mm512_ternarylogic_epi32(hi, kq_high(bits, KT, z, 1), hmask, 0xf8);
                }
#pragma GCC unroll 4
                for (int r = 0; r < MR; r++) {
                    __m512i xl = _mm512_set1_epi32(load4(t->xq + (size_t)r * t->ldx + (size_t)b * 32 + 4 * z));
                    __m512i xh = _mm512_set1_epi32(load4(t->xq + (size_t)r * t->ldx + (size_t)b * 32 + 4 * z + 16));
                    ia[r][v] = _mm512_dpbusd_epi32(ia[r][v], lo, xl);
                    /* Q6_K: the second sub-block; one row: a second chain (half the latency) */
                    if (KT == 6 || MR == 1) ib[r][v] = _mm512_dpbusd_epi32(ib[r][v], hi, xh);
                    else ia[r][v] = _mm512_dpbusd_epi32(ia[r][v], hi, xh);
                }
            }
        }
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) {
            const uint8_t *sc = t->pw + (size_t)v * t->pstride + sbo + kq_scales_at(j, nbits);
            if (KT == 6) {
                __m512i sa = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)sc));
                __m512i sb = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(sc + 16)));
#pragma GCC unroll 4
                for (int r = 0; r < MR; r++) {
                    __m512i isum = _mm512_add_epi32(_mm512_mullo_epi32(ia[r][v], sa), _mm512_mullo_epi32(ib[r][v], sb));
                    __m512 f = _mm512_mul_ps(dv[v], _mm512_set1_ps(t->xd[(size_t)r * nb + b]));
                    acc[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), f, acc[r][v]);
                }
            } else {
                __m512 ws = _mm512_mul_ps(dv[v], _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)sc))));
                __m512 wm = _mm512_mul_ps(dmv[v], _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(sc + 16)))));
                if (KT == 4 && MR == 1) ia[0][v] = _mm512_add_epi32(ia[0][v], _mm512_srai_epi32(ib[0][v], 4));
                if (KT == 5 && MR == 1) ia[0][v] = _mm512_add_epi32(ia[0][v], ib[0][v]);
#pragma GCC unroll 4
                for (int r = 0; r < MR; r++) {
                    float xd = t->xd[(size_t)r * nb + b];
                    __m512 f = _mm512_mul_ps(ws, _mm512_set1_ps(xd));
                    acc[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[r][v]), f, acc[r][v]);
                    acc[r][v] = _mm512_fmadd_ps(wm, _mm512_set1_ps(t->xm[(size_t)r * nb + b]), acc[r][v]);
                }
            }
        }
    }
    ACC_STORE(acc, MR, NV, m, t);
}

/* The fifth bits of value zmm z, nibble h (bit 2z+h of each byte of Q4_1/Q5_x's bit-plane,
 * packed.c), moved to bit 4 (bits that 16-bit shifts carry across bytes land outside the mask). */
INL __m512i q5x_high(__m512i bits, const int z, const int h) {
    const int s = 4 - (2 * z + h);
    return s > 0 ? _mm512_slli_epi16(bits, s) : s < 0 ? _mm512_srli_epi16(bits, -s) : bits;
}

/* Q4_1 / Q5_0 / Q5_1 (DT) on the pair records (packed.c): per 32-block an exact integer dot per
 * output (vpdpbusd of the unsigned codes; Q5_x's fifth bit joined to the nibble by a shift and a
 * vpternlogd; Q5_0 starting from -16 times the activation block's sum), then the reference's
 * float steps (qmatmul.c) lane by lane:
 *   acc = fma(isum, d * xd, acc); Q4_1/Q5_1: acc = fma(m, xd * xs, acc) (as -(m * xm) + acc) */
INL void q5x_tile(const pk_tile *t, const int DT, const int MR, const int NV) {
    __m512 acc[4][3];
    __mmask16 m[4];
    ACC_START(acc, MR, NV, m, t);
    const int nb = t->ldx / 32;
    const bool has_min = q5x_has_min(DT), five = q5x_has_bits(DT);
    const size_t pair = q5x_rec_bytes(DT, 2);
    const __m512i low4 = _mm512_set1_epi8(0x0f), high4 = _mm512_set1_epi8((char)0xf0), bit4 = _mm512_set1_epi8(0x10);
    pf_cursor pf = pf_start(&t->pf);
    for (int b = t->k0; b < t->k1; b++) {
        pf_step(&pf);
        const uint8_t *rec = t->pw + (size_t)(b >> 1) * pair;
        const int j = b & 1, c = (b | 1) < nb ? 2 : 1; /* an odd count's last block: a record alone */
        if (MR == 1) decode_ahead(rec + (size_t)j * (pair / 2), pair / 2); /* a block's share of the record */
        __m512i ia[4][3], ib[3];
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) {
            __m512i s0 = DT == S1C_Q5_0 ? _mm512_set1_epi32(-16 * t->xs[(size_t)r * nb + b]) : _mm512_setzero_si512();
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) ia[r][v] = s0;
        }
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) ib[v] = _mm512_setzero_si512();
        if (MR > 1) {
            /* low nibbles' codes (k = 4z..4z+3) for all panels, then high ones (k + 16), as Q4_0's
             * tile: few live registers */
#pragma GCC unroll 8
            for (int zh = 0; zh < 8; zh++) {
                const int z = zh >> 1, h = zh & 1;
                __m512i wv[3];
#pragma GCC unroll 3
                for (int v = 0; v < NV; v++) {
                    const uint8_t *base = rec + (size_t)v * t->pstride;
                    __m512i raw = _mm512_loadu_si512(base + q5x_values_at(DT, c, j) + (size_t)z * 64);
                    wv[v] = _mm512_and_si512(h ? _mm512_srli_epi16(raw, 4) : raw, low4);
                    if (five) wv[v] = _mm512_ternarylogic_epi32(wv[v], q5x_high(_mm512_loadu_si512(base + q5x_bits_at(DT, c, j)), z, h), bit4, 0xf8);
                }
#pragma GCC unroll 4
                for (int r = 0; r < MR; r++) {
                    __m512i xv = _mm512_set1_epi32(load4(t->xq + (size_t)r * t->ldx + (size_t)b * 32 + 4 * z + 16 * h));
#pragma GCC unroll 3
                    for (int v = 0; v < NV; v++) ia[r][v] = _mm512_dpbusd_epi32(ia[r][v], wv[v], xv);
                }
            }
        } else {
#pragma GCC unroll 4
            for (int z = 0; z < 4; z++) {
#pragma GCC unroll 3
                for (int v = 0; v < NV; v++) {
                    const uint8_t *base = rec + (size_t)v * t->pstride;
                    __m512i raw = _mm512_loadu_si512(base + q5x_values_at(DT, c, j) + (size_t)z * 64);
                    if (!five) {
                        /* one row: Q4_0's way, the high nibbles masked in place (16 times their code)
                         * into a second accumulator, scaled back by an exact shift after the block */
                        __m512i xl = _mm512_set1_epi32(load4(t->xq + (size_t)b * 32 + 4 * z));
                        __m512i xh = _mm512_set1_epi32(load4(t->xq + (size_t)b * 32 + 4 * z + 16));
                        ia[0][v] = _mm512_dpbusd_epi32(ia[0][v], _mm512_and_si512(raw, low4), xl);
                        ib[v] = _mm512_dpbusd_epi32(ib[v], _mm512_and_si512(raw, high4), xh);
                        continue;
                    }
                    /* code = nibble | (shifted bits & 0x10): vpternlogd's A | (B & C); the high
                     * codes in a second chain (half the latency) */
                    __m512i bits = _mm512_loadu_si512(base + q5x_bits_at(DT, c, j));
                    __m512i lo = _mm512_and_si512(raw, low4), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
                    lo = _mm512_ternarylogic_epi32(lo, q5x_high(bits, z, 0), bit4, 0xf8);
                    hi = _mm512_ternarylogic_epi32(hi, q5x_high(bits, z, 1), bit4, 0xf8);
                    __m512i xl = _mm512_set1_epi32(load4(t->xq + (size_t)b * 32 + 4 * z));
                    __m512i xh = _mm512_set1_epi32(load4(t->xq + (size_t)b * 32 + 4 * z + 16));
                    ia[0][v] = _mm512_dpbusd_epi32(ia[0][v], lo, xl);
                    ib[v] = _mm512_dpbusd_epi32(ib[v], hi, xh);
                }
            }
        }
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) {
            const uint8_t *base = rec + (size_t)v * t->pstride;
            if (MR == 1) ia[0][v] = _mm512_add_epi32(ia[0][v], five ? ib[v] : _mm512_srai_epi32(ib[v], 4));
            __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(base + 32 * (size_t)j)));
            __m512 wm = has_min ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(base + q5x_m_at(c, j)))) : ws;
#pragma GCC unroll 4
            for (int r = 0; r < MR; r++) {
                __m512 f = _mm512_mul_ps(ws, _mm512_set1_ps(t->xd[(size_t)r * nb + b]));
                acc[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[r][v]), f, acc[r][v]);
                if (has_min) acc[r][v] = _mm512_fnmadd_ps(wm, _mm512_set1_ps(t->xm[(size_t)r * nb + b]), acc[r][v]);
            }
        }
    }
    ACC_STORE(acc, MR, NV, m, t);
}

/* Every (mr, nv) shape as its own function, so the loops above unroll into registers. */
#define SHAPES_F(NAME, BODY, NV)                                                                          \
    static TP void NAME##_nv##NV(const pk_tile *t, int mr) {                                             \
        switch (mr) {                                                                                     \
        case 1: BODY(t, 1, NV); break;                                                                   \
        case 2: BODY(t, 2, NV); break;                                                                   \
        case 3: BODY(t, 3, NV); break;                                                                   \
        case 4: BODY(t, 4, NV); break;                                                                   \
        case 5: BODY(t, 5, NV); break;                                                                   \
        default: BODY(t, 6, NV); break;                                                                  \
        }                                                                                                 \
    }
SHAPES_F(f32, f32_tile, 1)
SHAPES_F(f32, f32_tile, 2)
SHAPES_F(f32, f32_tile, 3)
SHAPES_F(f32, f32_tile, 4)
SHAPES_F(bf16, bf16_tile, 1)
SHAPES_F(bf16, bf16_tile, 2)
SHAPES_F(bf16, bf16_tile, 3)
SHAPES_F(bf16, bf16_tile, 4)
SHAPES_F(bf16w, bf16w_tile, 1)
SHAPES_F(bf16w, bf16w_tile, 2)
SHAPES_F(bf16w, bf16w_tile, 3)
SHAPES_F(bf16w, bf16w_tile, 4)

#define SHAPES_Q(NAME, Q4, NV)                                                                            \
    static TP void NAME##_nv##NV(const pk_tile *t, int mr) {                                             \
        switch (mr) {                                                                                     \
        case 1: q_tile(t, Q4, 1, NV); break;                                                             \
        case 2: q_tile(t, Q4, 2, NV); break;                                                             \
        case 3: q_tile(t, Q4, 3, NV); break;                                                             \
        default: q_tile(t, Q4, 4, NV); break;                                                            \
        }                                                                                                 \
    }
SHAPES_Q(q8, false, 1)
SHAPES_Q(q8, false, 2)
SHAPES_Q(q8, false, 3)
SHAPES_Q(q4, true, 1)
SHAPES_Q(q4, true, 2)
SHAPES_Q(q4, true, 3)

void pk_tile_f32(const pk_tile *t, int mr, int nv) {
    switch (nv) {
    case 1: f32_nv1(t, mr); break;
    case 2: f32_nv2(t, mr); break;
    case 3: f32_nv3(t, mr); break;
    default: f32_nv4(t, mr); break;
    }
}

void pk_tile_bf16w(const pk_tile *t, int mr, int nv) {
    switch (nv) {
    case 1: bf16w_nv1(t, mr); break;
    case 2: bf16w_nv2(t, mr); break;
    case 3: bf16w_nv3(t, mr); break;
    default: bf16w_nv4(t, mr); break;
    }
}

void pk_tile_bf16(const pk_tile *t, int mr, int nv) {
    switch (nv) {
    case 1: bf16_nv1(t, mr); break;
    case 2: bf16_nv2(t, mr); break;
    case 3: bf16_nv3(t, mr); break;
    default: bf16_nv4(t, mr); break;
    }
}

#define SHAPES_KQ(NAME, KT, NV)                                                                           \
    static TP void NAME##_nv##NV(const pk_tile *t, int mr) {                                             \
        switch (mr) {                                                                                     \
        case 1: kq_tile(t, KT, 1, NV); break;                                                            \
        case 2: kq_tile(t, KT, 2, NV); break;                                                            \
        case 3: kq_tile(t, KT, 3, NV); break;                                                            \
        default: kq_tile(t, KT, 4, NV); break;                                                           \
        }                                                                                                 \
    }
SHAPES_KQ(q4k, 4, 1)
SHAPES_KQ(q4k, 4, 2)
SHAPES_KQ(q4k, 4, 3)
SHAPES_KQ(q5k, 5, 1)
SHAPES_KQ(q5k, 5, 2)
SHAPES_KQ(q5k, 5, 3)
SHAPES_KQ(q6k, 6, 1)
SHAPES_KQ(q6k, 6, 2)

void pk_tile_kq(const pk_tile *t, int dtype, int mr, int nv) {
    if (dtype == S1C_Q6_K) {
        if (nv == 1) q6k_nv1(t, mr);
        else q6k_nv2(t, mr);
    } else if (dtype == S1C_Q5_K) {
        switch (nv) {
        case 1: q5k_nv1(t, mr); break;
        case 2: q5k_nv2(t, mr); break;
        default: q5k_nv3(t, mr); break;
        }
    } else {
        switch (nv) {
        case 1: q4k_nv1(t, mr); break;
        case 2: q4k_nv2(t, mr); break;
        default: q4k_nv3(t, mr); break;
        }
    }
}

#define SHAPES_Q5X(NAME, DT, NV)                                                                          \
    static TP void NAME##_nv##NV(const pk_tile *t, int mr) {                                             \
        switch (mr) {                                                                                     \
        case 1: q5x_tile(t, DT, 1, NV); break;                                                           \
        case 2: q5x_tile(t, DT, 2, NV); break;                                                           \
        case 3: q5x_tile(t, DT, 3, NV); break;                                                           \
        default: q5x_tile(t, DT, 4, NV); break;                                                          \
        }                                                                                                 \
    }
SHAPES_Q5X(q41, S1C_Q4_1, 1)
SHAPES_Q5X(q41, S1C_Q4_1, 2)
SHAPES_Q5X(q41, S1C_Q4_1, 3)
SHAPES_Q5X(q50, S1C_Q5_0, 1)
SHAPES_Q5X(q50, S1C_Q5_0, 2)
SHAPES_Q5X(q50, S1C_Q5_0, 3)
SHAPES_Q5X(q51, S1C_Q5_1, 1)
SHAPES_Q5X(q51, S1C_Q5_1, 2)
SHAPES_Q5X(q51, S1C_Q5_1, 3)

void pk_tile_q5x(const pk_tile *t, int dtype, int mr, int nv) {
    switch (dtype) {
    case S1C_Q4_1: nv == 1 ? q41_nv1(t, mr) : nv == 2 ? q41_nv2(t, mr) : q41_nv3(t, mr); break;
    case S1C_Q5_0: nv == 1 ? q50_nv1(t, mr) : nv == 2 ? q50_nv2(t, mr) : q50_nv3(t, mr); break;
    default: nv == 1 ? q51_nv1(t, mr) : nv == 2 ? q51_nv2(t, mr) : q51_nv3(t, mr); break;
    }
}

/* s1c_f32_to_bf16 on 16 lanes, in the low half of each (round to nearest even on the bits, a NaN
 * made quiet): the same bits as the scalar, denormals included (vcvtneps2bf16 would treat those
 * as zero). */
INL __m512i bf16_bits16(__m512 v) {
    __m512i x = _mm512_castps_si512(v), one = _mm512_set1_epi32(1);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(x, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(_mm512_srli_epi32(x, 16), one))), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(x, 16), _mm512_set1_epi32(0x40));
}

/* 16 values at a time: their bf16 bits packed to 16-bit lanes in order are 8 pairs. One decode
 * row (BF16 0.5B, timed in place): 896 values 1.66 -> 0.27 us, the down projection's 4864 8.12
 * -> 1.24 us with the scalar loop this replaces (~0.27 ms of a ~16.4 ms token). */
TP void pk_bf16_pairs(uint32_t *xb, const float *x, int n, int n2, int t0, int t1) {
    for (int t = t0; t < t1; t++) {
        const float *xr = x + (size_t)t * n;
        uint16_t *dst = (uint16_t *)(xb + (size_t)t * n2);
        for (int i = 0; i < 2 * n2; i += 16) {
            __mmask16 in = col_mask(n - i), out = col_mask(2 * n2 - i);
            __m256i h = _mm512_cvtepi32_epi16(bf16_bits16(_mm512_maskz_loadu_ps(in, xr + i)));
            _mm256_mask_storeu_epi16(dst + i, out, h);
        }
    }
}

void pk_tile_q(const pk_tile *t, int dtype, int mr, int nv) {
    bool q4 = dtype == S1C_Q4_0;
    switch (nv) {
    case 1: q4 ? q4_nv1(t, mr) : q8_nv1(t, mr); break;
    case 2: q4 ? q4_nv2(t, mr) : q8_nv2(t, mr); break;
    default: q4 ? q4_nv3(t, mr) : q8_nv3(t, mr); break;
    }
}

bool kern_avx512vnni_supported(void) {
    __builtin_cpu_init();
    return kern_avx512_supported() && __builtin_cpu_supports("avx512vnni");
}

#else
void pk_tile_f32(const pk_tile *t, int mr, int nv) { (void)t, (void)mr, (void)nv; }
void pk_tile_bf16(const pk_tile *t, int mr, int nv) { (void)t, (void)mr, (void)nv; }
void pk_tile_bf16w(const pk_tile *t, int mr, int nv) { (void)t, (void)mr, (void)nv; }
void pk_tile_q(const pk_tile *t, int dtype, int mr, int nv) { (void)t, (void)dtype, (void)mr, (void)nv; }
void pk_bf16_pairs(uint32_t *xb, const float *x, int n, int n2, int t0, int t1) { (void)xb, (void)x, (void)n, (void)n2, (void)t0, (void)t1; }
void pk_tile_kq(const pk_tile *t, int dtype, int mr, int nv) { (void)t, (void)dtype, (void)mr, (void)nv; }
void pk_tile_q5x(const pk_tile *t, int dtype, int mr, int nv) { (void)t, (void)dtype, (void)mr, (void)nv; }
bool kern_avx512vnni_supported(void) { return false; }
#endif
