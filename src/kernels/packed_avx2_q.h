/* The packed quantized tiles of packed_avx2.c (Q8_0 / Q4_0, the K-quants, Q4_1 / Q5_x),
 * instantiated there twice: QV 0 with AVX2's vpmaddubsw / vpmaddwd, QV 1 with AVX-VNNI's vpdpbusd
 * (QT: the functions' target, QN: their names). Both compute the AVX-512 tiles' exact block
 * integers, then their float steps, so every variant gives the same bits. Not a header for
 * anything else. (One tile for all the types instead of three compiled to spills and ran 9-22%
 * slower in batches: tried and reverted, d1db6c3.) */
#define INLQ static inline __attribute__((always_inline)) QT

#if QV
/* Block b's exact integer dots, Q4_0: ia[r][h] for rows r < MR and halves h < NH of the 8-row
 * halves that start at wb (a block's first vector, already offset to the first half). vpdpbusd
 * from -8 * sum(x), as the AVX-512 tile; one row keeps the high nibbles in place (16 times their
 * value) in a second accumulator, scaled back by an exact shift, instead of a shift per vector. */
INLQ void QN(q4_block)(const pk_tile *t, const uint8_t *wb, int b, const int MR, const int NH, __m256i ia[4][2]) {
    const __m256i low4 = _mm256_set1_epi8(0x0f), high4 = _mm256_set1_epi8((char)0xf0);
    const int nb = t->ldx / 32;
    __m256i ih[2];
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++) {
        __m256i bias = _mm256_set1_epi32(-8 * t->xs[(size_t)r * nb + b]);
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) ia[r][h] = bias;
    }
#pragma GCC unroll 2
    for (int h = 0; h < NH; h++) ih[h] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m256i lo[2], hi[2];
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) {
            __m256i raw = _mm256_loadu_si256((const __m256i *)(wb + (size_t)j * 64 + 32 * (size_t)h));
            lo[h] = _mm256_and_si256(raw, low4);
            hi[h] = MR == 1 ? _mm256_and_si256(raw, high4) : _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
        }
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) {
            const int8_t *x = t->xq + (size_t)r * t->ldx + (size_t)b * 32 + 4 * j;
            __m256i xl = _mm256_set1_epi32(load4(x)), xh = _mm256_set1_epi32(load4(x + 16));
#pragma GCC unroll 2
            for (int h = 0; h < NH; h++) {
                ia[r][h] = _mm256_dpbusd_avx_epi32(ia[r][h], lo[h], xl);
                if (MR == 1) ih[h] = _mm256_dpbusd_avx_epi32(ih[h], hi[h], xh);
                else ia[r][h] = _mm256_dpbusd_avx_epi32(ia[r][h], hi[h], xh);
            }
        }
    }
    if (MR == 1)
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) ia[0][h] = _mm256_add_epi32(ia[0][h], _mm256_srai_epi32(ih[h], 4));
}

/* The same for Q8_0: vpdpbusd on the stored w + 128 from -128 * sum(x), as the AVX-512 tile. One
 * row splits the block's 8 steps over two chains (vpdpbusd's latency; integer adds, exact):
 * bench_packed packed_cold, one thread, 5 interleaved rounds: 896 x 4864 33.5-34.9 -> 36.6-39.9
 * GB/s, 4864 x 896 30-34 -> 34-37. */
INLQ void QN(q8_block)(const pk_tile *t, const uint8_t *wb, int b, const int MR, const int NH, __m256i ia[4][2]) {
    const int nb = t->ldx / 32;
    __m256i i2[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++) {
        __m256i bias = _mm256_set1_epi32(-128 * t->xs[(size_t)r * nb + b]);
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) ia[r][h] = bias;
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        __m256i w[2];
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) w[h] = _mm256_loadu_si256((const __m256i *)(wb + (size_t)j * 64 + 32 * (size_t)h));
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) {
            __m256i xv = _mm256_set1_epi32(load4(t->xq + (size_t)r * t->ldx + (size_t)b * 32 + 4 * j));
#pragma GCC unroll 2
            for (int h = 0; h < NH; h++) {
                if (MR == 1 && (j & 1)) i2[h] = _mm256_dpbusd_avx_epi32(i2[h], w[h], xv);
                else ia[r][h] = _mm256_dpbusd_avx_epi32(ia[r][h], w[h], xv);
            }
        }
    }
    if (MR == 1)
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) ia[0][h] = _mm256_add_epi32(ia[0][h], i2[h]);
}
#else
/* Block b's exact integer dots, Q4_0: ia[r][h] for rows r < MR and halves h < NH of the 8-row
 * halves that start at wb (a block's first vector, already offset to the first half). */
INLQ void QN(q4_block)(const pk_tile *t, const uint8_t *wb, int b, const int MR, const int NH, __m256i ia[4][2]) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const int nb = t->ldx / 32;
    __m256i s16[4][2];
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) s16[r][h] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m256i lo[2], hi[2];
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) {
            __m256i raw = _mm256_loadu_si256((const __m256i *)(wb + (size_t)j * 64 + 32 * (size_t)h));
            lo[h] = _mm256_and_si256(raw, low4);
            hi[h] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
        }
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) {
            const int8_t *x = t->xq + (size_t)r * t->ldx + (size_t)b * 32 + 4 * j;
            __m256i xl = _mm256_set1_epi32(load4(x)), xh = _mm256_set1_epi32(load4(x + 16));
#pragma GCC unroll 2
            for (int h = 0; h < NH; h++)
                s16[r][h] = _mm256_add_epi16(s16[r][h], _mm256_add_epi16(_mm256_maddubs_epi16(lo[h], xl), _mm256_maddubs_epi16(hi[h], xh)));
        }
    }
    const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++) {
        __m256i bias = _mm256_set1_epi32(-8 * t->xs[(size_t)r * nb + b]);
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) ia[r][h] = _mm256_add_epi32(_mm256_madd_epi16(s16[r][h], ones), bias);
    }
}

/* The same for Q8_0. */
INLQ void QN(q8_block)(const pk_tile *t, const uint8_t *wb, int b, const int MR, const int NH, __m256i ia[4][2]) {
    const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) ia[r][h] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        __m256i w[2], aw[2];
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) {
            w[h] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(wb + (size_t)j * 64 + 32 * (size_t)h)), flip);
            aw[h] = _mm256_abs_epi8(w[h]);
        }
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) {
            __m256i xv = _mm256_set1_epi32(load4(t->xq + (size_t)r * t->ldx + (size_t)b * 32 + 4 * j));
#pragma GCC unroll 2
            for (int h = 0; h < NH; h++)
                ia[r][h] = _mm256_add_epi32(ia[r][h], _mm256_madd_epi16(_mm256_maddubs_epi16(aw[h], _mm256_sign_epi8(xv, w[h])), ones));
        }
    }
}

#endif

/* MR activation rows x halves [H0, H0 + NH) of one panel over blocks [k0, k1). */
INLQ void QN(q_tile)(const pk_tile *t, const bool Q4, const int MR, const int H0, const int NH) {
    __m256 acc[4][2];
    __m256i m[2];
    ACC2_START(acc, m, MR, H0, NH, t);
    const int nb = t->ldx / 32;
    pf_cursor pf = pf_start(&t->pf);
    for (int b = t->k0; b < t->k1; b++) {
        pf_step(&pf);
        const uint8_t *wb = t->pw + q0_block_at(Q4, b) + 32 * H0, *sb = t->pw + q0_scales_at(Q4, b) + 16 * H0;
        if (MR == 1) decode_ahead(wb, q0_blk_bytes(Q4) + 32); /* a block's share of its record */
        __m256i ia[4][2];
        if (Q4) QN(q4_block)(t, wb, b, MR, NH, ia);
        else QN(q8_block)(t, wb, b, MR, NH, ia);
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) {
            __m256 ws = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sb + 16 * (size_t)h)));
#pragma GCC unroll 4
            for (int r = 0; r < MR; r++) {
                __m256 sc = _mm256_mul_ps(ws, _mm256_set1_ps(t->xd[(size_t)r * nb + b]));
                acc[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[r][h]), sc, acc[r][h]);
            }
        }
    }
    ACC2_STORE(acc, m, MR, H0, NH, t);
}

/* Every shape as its own function, so the loops above unroll into registers: one row takes both
 * halves in one pass (one stream over the panel); a batch's tile takes 4 rows of one half (16
 * accumulators do not fit both halves of 4 rows), then the other half, from L1/L2. */
static QT void QN(q0_rows)(const pk_tile *t, int dtype, int mr, int h0) {
    const bool Q4 = dtype == S1C_Q4_0;
#define Q0_SHAPES(Q)                                                                                      \
    switch (mr) {                                                                                         \
    case 1: QN(q_tile)(t, Q, 1, 0, 2); break;                                                            \
    case 2: QN(q_tile)(t, Q, 2, h0, 1); break;                                                           \
    case 3: QN(q_tile)(t, Q, 3, h0, 1); break;                                                           \
    default: QN(q_tile)(t, Q, 4, h0, 1); break;                                                          \
    }
    if (Q4) { Q0_SHAPES(true) }
    else { Q0_SHAPES(false) }
#undef Q0_SHAPES
}

/* Q4_K / Q5_K / Q6_K (KT 4, 5, 6) block b's exact integer dots for MR rows x halves [H0, H0 + NH)
 * of the panel whose super-block record starts at base: ia (Q6_K: its first 16-element sub-block
 * minus 32 * xh, ib the second minus 32 * (xs - xh)), as the AVX-512 kq_tile computes them. One
 * row (QV): a second chain, ib, for the high nibbles, Q4_K's kept in place (16 times the code) and
 * shifted back. Without VNNI the int16 sums stay within range: Q4_K's eight products of codes <= 15
 * (|sum| <= 30480), Q5_K's four per nibble half (codes <= 31: 31496), Q6_K's two (codes <= 63:
 * 32004), each then widened by vpmaddwd. */
INLQ void QN(kq_block)(const pk_tile *t, const uint8_t *base, int b, const int KT, const int MR, const int H0, const int NH,
                       __m256i ia[4][2], __m256i ib[4][2]) {
    const size_t nbits = KT == 4 ? 0 : KT == 5 ? KQ_BITS5 : KQ_BITS6;
    const int nb = t->ldx / 32, j = b & 7;
    const __m256i low4 = _mm256_set1_epi8(0x0f), hmask = _mm256_set1_epi8(KT == 6 ? 0x30 : 0x10);
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++) {
        __m256i sa = _mm256_setzero_si256(), sb = _mm256_setzero_si256();
        if (KT == 6) {
            int32_t h = t->xh[(size_t)r * nb + b], s = t->xs[(size_t)r * nb + b];
            sa = _mm256_set1_epi32(-32 * h);
            sb = _mm256_set1_epi32(-32 * (s - h));
        }
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) ia[r][h] = sa, ib[r][h] = sb;
    }
#if !QV
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a16[4][2], b16[4][2];
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) a16[r][h] = b16[r][h] = _mm256_setzero_si256();
#endif
#pragma GCC unroll 4
    for (int z = 0; z < 4; z++) {
        __m256i lo[2], hi[2];
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) {
            const int half = H0 + h;
            __m256i raw = _mm256_loadu_si256((const __m256i *)(base + kq_values_at(j, nbits) + (size_t)z * 64 + 32 * (size_t)half));
            lo[h] = _mm256_and_si256(raw, low4);
            if (QV && KT == 4 && MR == 1) hi[h] = _mm256_andnot_si256(low4, raw);
            else hi[h] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
            if (KT != 4) {
                const uint8_t *bits = base + kq_bits_at(j, nbits) + 32 * (size_t)half;
                lo[h] = _mm256_or_si256(lo[h], _mm256_and_si256(kq_high8(bits, KT, z, 0), hmask));
                hi[h] = _mm256_or_si256(hi[h], _mm256_and_si256(kq_high8(bits, KT, z, 1), hmask));
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) {
            const int8_t *x = t->xq + (size_t)r * t->ldx + (size_t)b * 32 + 4 * z;
            __m256i xl = _mm256_set1_epi32(load4(x)), xh = _mm256_set1_epi32(load4(x + 16));
#pragma GCC unroll 2
            for (int h = 0; h < NH; h++) {
#if QV
                ia[r][h] = _mm256_dpbusd_avx_epi32(ia[r][h], lo[h], xl);
                if (KT == 6 || MR == 1) ib[r][h] = _mm256_dpbusd_avx_epi32(ib[r][h], hi[h], xh);
                else ia[r][h] = _mm256_dpbusd_avx_epi32(ia[r][h], hi[h], xh);
#else
                __m256i pl = _mm256_maddubs_epi16(lo[h], xl), ph = _mm256_maddubs_epi16(hi[h], xh);
                if (KT == 4) {
                    a16[r][h] = _mm256_add_epi16(a16[r][h], _mm256_add_epi16(pl, ph));
                } else {
                    a16[r][h] = _mm256_add_epi16(a16[r][h], pl);
                    b16[r][h] = _mm256_add_epi16(b16[r][h], ph);
                }
                if (KT == 6 && (z & 1)) { /* two products of 6-bit codes: widen before a third */
                    ia[r][h] = _mm256_add_epi32(ia[r][h], _mm256_madd_epi16(a16[r][h], ones));
                    ib[r][h] = _mm256_add_epi32(ib[r][h], _mm256_madd_epi16(b16[r][h], ones));
                    a16[r][h] = b16[r][h] = _mm256_setzero_si256();
                }
#endif
            }
        }
    }
#if QV
    if (MR == 1 && KT != 6)
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) ia[0][h] = _mm256_add_epi32(ia[0][h], KT == 4 ? _mm256_srai_epi32(ib[0][h], 4) : ib[0][h]);
#else
    if (KT != 6)
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++)
#pragma GCC unroll 2
            for (int h = 0; h < NH; h++) {
                ia[r][h] = _mm256_madd_epi16(a16[r][h], ones);
                if (KT == 5) ia[r][h] = _mm256_add_epi32(ia[r][h], _mm256_madd_epi16(b16[r][h], ones));
            }
#endif
}

/* MR rows x halves [H0, H0 + NH) of one panel of a K-quant over blocks [k0, k1): kq_block's
 * integers, then the AVX-512 kq_tile's float steps lane by lane (packed_avx512.c states them):
 * bitwise the reference. */
INLQ void QN(kq_tile)(const pk_tile *t, const int KT, const int MR, const int H0, const int NH) {
    __m256 acc[4][2];
    __m256i m[2];
    ACC2_START(acc, m, MR, H0, NH, t);
    const int nb = t->ldx / 32;
    const size_t nbits = KT == 4 ? 0 : KT == 5 ? KQ_BITS5 : KQ_BITS6, rec = KQ_HDR + 4 * kq_pair_bytes(nbits);
    __m256 dv[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()}, dmv[2] = {dv[0], dv[1]};
    pf_cursor pf = pf_start(&t->pf);
    for (int b = t->k0; b < t->k1; b++) {
        pf_step(&pf);
        const uint8_t *base = t->pw + (size_t)(b >> 3) * rec;
        const int j = b & 7;
        if (MR == 1) decode_ahead(base + (size_t)j * (rec / 8), rec / 8); /* a block's share of the record */
        if (j == 0 || b == t->k0)
#pragma GCC unroll 2
            for (int h = 0; h < NH; h++) {
                dv[h] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(base + 16 * (size_t)(H0 + h))));
                if (KT != 6) dmv[h] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(base + 32 + 16 * (size_t)(H0 + h))));
            }
        __m256i ia[4][2], ib[4][2];
        QN(kq_block)(t, base, b, KT, MR, H0, NH, ia, ib);
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) {
            const uint8_t *sc = base + kq_scales_at(j, nbits) + 8 * (size_t)(H0 + h);
            if (KT == 6) {
                __m256i sa = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)sc));
                __m256i sb = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(sc + 16)));
#pragma GCC unroll 4
                for (int r = 0; r < MR; r++) {
                    __m256i isum = _mm256_add_epi32(_mm256_mullo_epi32(ia[r][h], sa), _mm256_mullo_epi32(ib[r][h], sb));
                    __m256 f = _mm256_mul_ps(dv[h], _mm256_set1_ps(t->xd[(size_t)r * nb + b]));
                    acc[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), f, acc[r][h]);
                }
            } else {
                __m256 ws = _mm256_mul_ps(dv[h], _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)sc))));
                __m256 wm = _mm256_mul_ps(dmv[h], _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(sc + 16)))));
#pragma GCC unroll 4
                for (int r = 0; r < MR; r++) {
                    __m256 f = _mm256_mul_ps(ws, _mm256_set1_ps(t->xd[(size_t)r * nb + b]));
                    acc[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[r][h]), f, acc[r][h]);
                    acc[r][h] = _mm256_fmadd_ps(wm, _mm256_set1_ps(t->xm[(size_t)r * nb + b]), acc[r][h]);
                }
            }
        }
    }
    ACC2_STORE(acc, m, MR, H0, NH, t);
}

/* Every K-quant shape as its own function: one row both halves in one pass; batches MR rows of one
 * half (Q6_K 3: its two integer accumulators per output). */
static QT void QN(kq_rows)(const pk_tile *t, int dtype, int mr, int h0) {
    const int KT = dtype == S1C_Q4_K ? 4 : dtype == S1C_Q5_K ? 5 : 6;
#define KQ_SHAPES(K)                                                                                      \
    switch (mr) {                                                                                         \
    case 1: QN(kq_tile)(t, K, 1, 0, 2); break;                                                           \
    case 2: QN(kq_tile)(t, K, 2, h0, 1); break;                                                          \
    case 3: QN(kq_tile)(t, K, 3, h0, 1); break;                                                          \
    default: QN(kq_tile)(t, K, 4, h0, 1); break;                                                         \
    }
    if (KT == 4) { KQ_SHAPES(4) }
    else if (KT == 5) { KQ_SHAPES(5) }
    else { KQ_SHAPES(6) }
#undef KQ_SHAPES
}

/* Q4_1 / Q5_0 / Q5_1 (DT) block b's exact integer dots from its pair record rec (packed.c), for MR
 * rows x halves [H0, H0 + NH): Q5_0's from -16 * sum(x), as the AVX-512 q5x_tile; one row (QV)
 * keeps the high codes in a second chain (Q4_1's nibbles in place, shifted back). Without VNNI
 * the int16 sums stay within range: Q4_1's eight products of codes <= 15, Q5_x's four per nibble
 * half (codes <= 31: 31496). */
INLQ void QN(q5x_block)(const pk_tile *t, const uint8_t *rec, int b, const int DT, const int MR, const int H0, const int NH,
                        __m256i ia[4][2]) {
    const int nb = t->ldx / 32, j = b & 1, c = (b | 1) < nb ? 2 : 1; /* an odd count's last block: a record alone */
    const bool five = q5x_has_bits(DT);
    const __m256i low4 = _mm256_set1_epi8(0x0f), bit4 = _mm256_set1_epi8(0x10);
    __m256i ib[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++) {
        __m256i s0 = DT == S1C_Q5_0 ? _mm256_set1_epi32(-16 * t->xs[(size_t)r * nb + b]) : _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) ia[r][h] = s0;
    }
#if !QV
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a16[4][2], b16[4][2];
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) a16[r][h] = b16[r][h] = _mm256_setzero_si256();
#endif
#pragma GCC unroll 4
    for (int z = 0; z < 4; z++) {
        __m256i lo[2], hi[2];
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) {
            const size_t half = 32 * (size_t)(H0 + h);
            __m256i raw = _mm256_loadu_si256((const __m256i *)(rec + q5x_values_at(DT, c, j) + (size_t)z * 64 + half));
            lo[h] = _mm256_and_si256(raw, low4);
            if (QV && !five && MR == 1) hi[h] = _mm256_andnot_si256(low4, raw);
            else hi[h] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
            if (five) {
                const uint8_t *bits = rec + q5x_bits_at(DT, c, j) + half;
                lo[h] = _mm256_or_si256(lo[h], _mm256_and_si256(kq_high8(bits, 5, z, 0), bit4));
                hi[h] = _mm256_or_si256(hi[h], _mm256_and_si256(kq_high8(bits, 5, z, 1), bit4));
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) {
            const int8_t *x = t->xq + (size_t)r * t->ldx + (size_t)b * 32 + 4 * z;
            __m256i xl = _mm256_set1_epi32(load4(x)), xh = _mm256_set1_epi32(load4(x + 16));
#pragma GCC unroll 2
            for (int h = 0; h < NH; h++) {
#if QV
                ia[r][h] = _mm256_dpbusd_avx_epi32(ia[r][h], lo[h], xl);
                if (MR == 1) ib[h] = _mm256_dpbusd_avx_epi32(ib[h], hi[h], xh);
                else ia[r][h] = _mm256_dpbusd_avx_epi32(ia[r][h], hi[h], xh);
#else
                __m256i pl = _mm256_maddubs_epi16(lo[h], xl), ph = _mm256_maddubs_epi16(hi[h], xh);
                if (five) {
                    a16[r][h] = _mm256_add_epi16(a16[r][h], pl);
                    b16[r][h] = _mm256_add_epi16(b16[r][h], ph);
                } else {
                    a16[r][h] = _mm256_add_epi16(a16[r][h], _mm256_add_epi16(pl, ph));
                }
#endif
            }
        }
    }
#if QV
    if (MR == 1)
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) ia[0][h] = _mm256_add_epi32(ia[0][h], five ? ib[h] : _mm256_srai_epi32(ib[h], 4));
#else
    (void)ib;
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) {
            ia[r][h] = _mm256_add_epi32(ia[r][h], _mm256_madd_epi16(a16[r][h], ones));
            if (five) ia[r][h] = _mm256_add_epi32(ia[r][h], _mm256_madd_epi16(b16[r][h], ones));
        }
#endif
}

/* MR rows x halves [H0, H0 + NH) of one panel of Q4_1 / Q5_0 / Q5_1 over blocks [k0, k1):
 * q5x_block's integers, then the AVX-512 q5x_tile's float steps lane by lane: bitwise the
 * reference. */
INLQ void QN(q5x_tile)(const pk_tile *t, const int DT, const int MR, const int H0, const int NH) {
    __m256 acc[4][2];
    __m256i m[2];
    ACC2_START(acc, m, MR, H0, NH, t);
    const int nb = t->ldx / 32;
    const bool has_min = q5x_has_min(DT);
    const size_t pair = q5x_rec_bytes(DT, 2);
    pf_cursor pf = pf_start(&t->pf);
    for (int b = t->k0; b < t->k1; b++) {
        pf_step(&pf);
        const uint8_t *rec = t->pw + (size_t)(b >> 1) * pair;
        const int j = b & 1, c = (b | 1) < nb ? 2 : 1;
        if (MR == 1) decode_ahead(rec + (size_t)j * (pair / 2), pair / 2); /* a block's share of the record */
        __m256i ia[4][2];
        QN(q5x_block)(t, rec, b, DT, MR, H0, NH, ia);
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) {
            const size_t half = 16 * (size_t)(H0 + h);
            __m256 ws = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(rec + 32 * (size_t)j + half)));
            __m256 wm = has_min ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(rec + q5x_m_at(c, j) + half))) : ws;
#pragma GCC unroll 4
            for (int r = 0; r < MR; r++) {
                __m256 f = _mm256_mul_ps(ws, _mm256_set1_ps(t->xd[(size_t)r * nb + b]));
                acc[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[r][h]), f, acc[r][h]);
                if (has_min) acc[r][h] = _mm256_fnmadd_ps(wm, _mm256_set1_ps(t->xm[(size_t)r * nb + b]), acc[r][h]);
            }
        }
    }
    ACC2_STORE(acc, m, MR, H0, NH, t);
}

static QT void QN(q5x_rows)(const pk_tile *t, int dtype, int mr, int h0) {
#define Q5X_SHAPES(D)                                                                                     \
    switch (mr) {                                                                                         \
    case 1: QN(q5x_tile)(t, D, 1, 0, 2); break;                                                          \
    case 2: QN(q5x_tile)(t, D, 2, h0, 1); break;                                                         \
    case 3: QN(q5x_tile)(t, D, 3, h0, 1); break;                                                         \
    default: QN(q5x_tile)(t, D, 4, h0, 1); break;                                                        \
    }
    if (dtype == S1C_Q4_1) { Q5X_SHAPES(S1C_Q4_1) }
    else if (dtype == S1C_Q5_0) { Q5X_SHAPES(S1C_Q5_0) }
    else { Q5X_SHAPES(S1C_Q5_1) }
#undef Q5X_SHAPES
}

#undef INLQ
