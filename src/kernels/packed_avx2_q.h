/* The packed quantized tiles of packed_avx2.c, instantiated there twice: QV 0 with AVX2's
 * vpmaddubsw / vpmaddwd, QV 1 with AVX-VNNI's vpdpbusd (QT: the functions' target, QN: their
 * names). Every variant computes the AVX-512 tiles' exact block integers, then their float steps,
 * so all give the same bits. Not a header for anything else.
 *
 * A block's integers are computed for MR activation rows x halves [H0, H0 + NH) of one panel (8
 * rows a half): ia[r][h] (and ib[r][h], Q6_K's second 16-element sub-block). */
#define INLQ static inline __attribute__((always_inline)) QT

#if QV
/* Q8_0 block b's exact integer dots: vpdpbusd on the stored w + 128 from -128 * sum(x), as the AVX-512 tile. One
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
/* Q8_0 block b's exact integer dots: vpmaddubsw on |w| and x with w's sign (a pair of products
 * within int16: 2 * 128 * 127), vpmaddwd to int32. */
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

/* Block b's parts: sbase is the K-quants' super-block record. */
INLQ qblock QN(qblock_at)(const pk_tile *t, const int DT, int b, const uint8_t *sbase) {
    qblock q = {0};
    if (DT == S1C_Q8_0 || DT == S1C_Q4_0) {
        const bool q4 = DT == S1C_Q4_0;
        q.values = t->pw + q0_block_at(q4, b);
        q.scales = t->pw + q0_scales_at(q4, b);
        q.from = q.values, q.bytes = q0_blk_bytes(q4) + 32;
    } else if (kern_is_q5x_dtype(DT)) {
        const int nb = t->ldx / 32, j = b & 1, c = (b | 1) < nb ? 2 : 1; /* an odd count's last block: a record alone */
        const size_t pair = q5x_rec_bytes(DT, 2);
        const uint8_t *rec = t->pw + (size_t)(b >> 1) * pair;
        q.values = rec + q5x_values_at(DT, c, j);
        q.bits = rec + q5x_bits_at(DT, c, j);
        q.scales = rec + 32 * (size_t)j;
        q.mins = rec + q5x_m_at(c, j);
        q.from = rec + (size_t)j * (pair / 2), q.bytes = pair / 2;
    } else {
        const size_t nbits = DT == S1C_Q4_K ? 0 : DT == S1C_Q5_K ? KQ_BITS5 : KQ_BITS6, rec = KQ_HDR + 4 * kq_pair_bytes(nbits);
        const int j = b & 7;
        q.values = sbase + kq_values_at(j, nbits);
        q.bits = sbase + kq_bits_at(j, nbits);
        q.scales = sbase + kq_scales_at(j, nbits);
        q.mins = q.scales + 16;
        q.from = sbase + (size_t)j * (rec / 8), q.bytes = rec / 8;
    }
    return q;
}

/* The activation blocks' corrections the integers start from (as the AVX-512 tiles): Q4_0's -8
 * and Q5_0's -16 times sum(x), Q6_K's -32 times each sub-block's sum; second: Q6_K's second. */
INLQ __m256i QN(int_start)(const pk_tile *t, const int DT, int r, int b, const bool second) {
    const size_t i = (size_t)r * (size_t)(t->ldx / 32) + (size_t)b;
    if (DT == S1C_Q6_K) return _mm256_set1_epi32(-32 * (second ? t->xs[i] - t->xh[i] : t->xh[i]));
    if (second) return _mm256_setzero_si256();
    if (DT == S1C_Q4_0) return _mm256_set1_epi32(-8 * t->xs[i]);
    if (DT == S1C_Q5_0) return _mm256_set1_epi32(-16 * t->xs[i]);
    return _mm256_setzero_si256();
}

/* Value vector z's codes for half `half`: lo (k = 4z..4z+3 of each row's 16 bytes), hi (k + 16),
 * unsigned, with Q5_x / Q5_K's fifth bit or Q6_K's two high bits joined from their planes (a
 * shift to bit 4, as packed_avx512.c's kq_high / q5x_high). inplace: hi as the high nibble where
 * it is (16 times the code; 4-bit codes only). */
INLQ void QN(codes)(const qblock *q, const int BITS, int z, int half, const bool inplace, __m256i *lo, __m256i *hi) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    __m256i raw = _mm256_loadu_si256((const __m256i *)(q->values + (size_t)z * 64 + 32 * (size_t)half));
    *lo = _mm256_and_si256(raw, low4);
    *hi = inplace ? _mm256_andnot_si256(low4, raw) : _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
    if (BITS == 4) return;
    const uint8_t *plane = q->bits + 32 * (size_t)half;
    const __m256i mask = _mm256_set1_epi8(BITS == 6 ? 0x30 : 0x10);
    *lo = _mm256_or_si256(*lo, _mm256_and_si256(kq_high8(plane, BITS, z, 0), mask));
    *hi = _mm256_or_si256(*hi, _mm256_and_si256(kq_high8(plane, BITS, z, 1), mask));
}

/* Block b's exact integer dots on unsigned codes of BITS bits (Q4_0, Q4_1, Q4_K: 4; Q5_0, Q5_1,
 * Q5_K: 5; Q6_K: 6, its sub-blocks apart in ia / ib). With VNNI, one row keeps the high codes in a
 * second chain (vpdpbusd's latency), 4-bit ones in place and shifted back after. Without, the
 * products go through int16 sums widened by vpmaddwd before they could overflow: 8 products of
 * 4-bit codes (|sum| <= 8 * 2 * 15 * 127 = 30480), 4 of 5-bit ones per nibble half (31496), 2 of
 * 6-bit ones (32004). */
INLQ void QN(codes_block)(const pk_tile *t, const qblock *q, int b, const int DT, const int MR, const int H0, const int NH,
                          __m256i ia[4][2], __m256i ib[4][2]) {
    const int BITS = DT == S1C_Q6_K ? 6 : DT == S1C_Q5_0 || DT == S1C_Q5_1 || DT == S1C_Q5_K ? 5 : 4;
    const bool SEP = DT == S1C_Q6_K, CHAIN2 = QV && MR == 1 && !SEP, INPLACE = CHAIN2 && BITS == 4;
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) ia[r][h] = QN(int_start)(t, DT, r, b, false), ib[r][h] = QN(int_start)(t, DT, r, b, true);
#if !QV
    const __m256i ones = _mm256_set1_epi16(1);
    const int WIDEN = BITS == 6 ? 2 : 4; /* z steps per int16 sum */
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
        for (int h = 0; h < NH; h++) QN(codes)(q, BITS, z, H0 + h, INPLACE, &lo[h], &hi[h]);
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) {
            const int8_t *x = t->xq + (size_t)r * t->ldx + (size_t)b * 32 + 4 * z;
            __m256i xl = _mm256_set1_epi32(load4(x)), xh = _mm256_set1_epi32(load4(x + 16));
#pragma GCC unroll 2
            for (int h = 0; h < NH; h++) {
#if QV
                ia[r][h] = _mm256_dpbusd_avx_epi32(ia[r][h], lo[h], xl);
                if (SEP || CHAIN2) ib[r][h] = _mm256_dpbusd_avx_epi32(ib[r][h], hi[h], xh);
                else ia[r][h] = _mm256_dpbusd_avx_epi32(ia[r][h], hi[h], xh);
#else
                __m256i pl = _mm256_maddubs_epi16(lo[h], xl), ph = _mm256_maddubs_epi16(hi[h], xh);
                if (BITS == 4) {
                    a16[r][h] = _mm256_add_epi16(a16[r][h], _mm256_add_epi16(pl, ph));
                } else {
                    a16[r][h] = _mm256_add_epi16(a16[r][h], pl);
                    b16[r][h] = _mm256_add_epi16(b16[r][h], ph);
                }
                if (z % WIDEN == WIDEN - 1) {
                    ia[r][h] = _mm256_add_epi32(ia[r][h], _mm256_madd_epi16(a16[r][h], ones));
                    if (BITS != 4) {
                        __m256i wb = _mm256_madd_epi16(b16[r][h], ones);
                        if (SEP) ib[r][h] = _mm256_add_epi32(ib[r][h], wb);
                        else ia[r][h] = _mm256_add_epi32(ia[r][h], wb);
                    }
                    a16[r][h] = b16[r][h] = _mm256_setzero_si256();
                }
#endif
            }
        }
    }
    if (CHAIN2)
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) ia[0][h] = _mm256_add_epi32(ia[0][h], INPLACE ? _mm256_srai_epi32(ib[0][h], 4) : ib[0][h]);
}

/* MR activation rows x halves [H0, H0 + NH) of one panel of DT over blocks [k0, k1): the block
 * integers, then the AVX-512 tiles' float steps lane by lane (packed_avx512.c, qmatmul.c):
 *   Q8_0, Q4_0, Q5_0  acc = fma(isum, d * xd, acc)
 *   Q4_1, Q5_1        the same, then acc = -(m * xm) + acc
 *   Q4_K, Q5_K        acc = fma(isum, (d * sc) * xd, acc); acc = fma(dmin * m, xm, acc)
 *   Q6_K              isum = sc_a * ia + sc_b * ib; acc = fma(isum, d * xd, acc)
 * (the K-quants' d and dmin per super-block, from its header). */
INLQ void QN(qtile)(const pk_tile *t, const int DT, const int MR, const int H0, const int NH) {
    __m256 acc[4][2];
    __m256i m[2];
    ACC2_START(acc, m, MR, H0, NH, t);
    const int nb = t->ldx / 32;
    const bool KQ = DT == S1C_Q4_K || DT == S1C_Q5_K || DT == S1C_Q6_K, MIN = DT == S1C_Q4_1 || DT == S1C_Q5_1;
    const size_t nbits = DT == S1C_Q4_K ? 0 : DT == S1C_Q5_K ? KQ_BITS5 : KQ_BITS6, rec = KQ_HDR + 4 * kq_pair_bytes(nbits);
    __m256 dv[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()}, dmv[2] = {dv[0], dv[1]};
    pf_cursor pf = pf_start(&t->pf);
    for (int b = t->k0; b < t->k1; b++) {
        pf_step(&pf);
        const uint8_t *sbase = KQ ? t->pw + (size_t)(b >> 3) * rec : NULL;
        const qblock q = QN(qblock_at)(t, DT, b, sbase);
        if (MR == 1) decode_ahead(q.from, q.bytes);
        if (KQ && ((b & 7) == 0 || b == t->k0))
#pragma GCC unroll 2
            for (int h = 0; h < NH; h++) {
                dv[h] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sbase + 16 * (size_t)(H0 + h))));
                if (DT != S1C_Q6_K) dmv[h] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sbase + 32 + 16 * (size_t)(H0 + h))));
            }
        __m256i ia[4][2], ib[4][2];
        if (DT == S1C_Q8_0) QN(q8_block)(t, q.values + 32 * (size_t)H0, b, MR, NH, ia);
        else QN(codes_block)(t, &q, b, DT, MR, H0, NH, ia, ib);
#pragma GCC unroll 2
        for (int h = 0; h < NH; h++) {
            const int half = H0 + h;
            __m256 ws, wm = _mm256_setzero_ps();
            if (DT == S1C_Q6_K) {
                __m256i sa = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q.scales + 8 * (size_t)half)));
                __m256i sb = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q.scales + 16 + 8 * (size_t)half)));
#pragma GCC unroll 4
                for (int r = 0; r < MR; r++) ia[r][h] = _mm256_add_epi32(_mm256_mullo_epi32(ia[r][h], sa), _mm256_mullo_epi32(ib[r][h], sb));
                ws = dv[h];
            } else if (KQ) {
                ws = _mm256_mul_ps(dv[h], _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(q.scales + 8 * (size_t)half)))));
                wm = _mm256_mul_ps(dmv[h], _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(q.mins + 8 * (size_t)half)))));
            } else {
                ws = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(q.scales + 16 * (size_t)half)));
                if (MIN) wm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(q.mins + 16 * (size_t)half)));
            }
#pragma GCC unroll 4
            for (int r = 0; r < MR; r++) {
                const size_t i = (size_t)r * nb + b;
                acc[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[r][h]), _mm256_mul_ps(ws, _mm256_set1_ps(t->xd[i])), acc[r][h]);
                if (KQ && DT != S1C_Q6_K) acc[r][h] = _mm256_fmadd_ps(wm, _mm256_set1_ps(t->xm[i]), acc[r][h]);
                if (MIN) acc[r][h] = _mm256_fnmadd_ps(wm, _mm256_set1_ps(t->xm[i]), acc[r][h]);
            }
        }
    }
    ACC2_STORE(acc, m, MR, H0, NH, t);
}

/* Every type and shape as its own function, so the loops above unroll into registers: one row
 * takes both halves in one pass (one stream over the panel); a batch's tile takes mr rows of one
 * half (4 rows' accumulators for both halves would not fit the 16 ymm), then the other, from
 * L1/L2. */
#define QT_SHAPES(D)                                                                                      \
    switch (mr) {                                                                                         \
    case 1: QN(qtile)(t, D, 1, 0, 2); break;                                                             \
    case 2: QN(qtile)(t, D, 2, h0, 1); break;                                                            \
    case 3: QN(qtile)(t, D, 3, h0, 1); break;                                                            \
    default: QN(qtile)(t, D, 4, h0, 1); break;                                                           \
    }

static QT void QN(qrows)(const pk_tile *t, int dtype, int mr, int h0) {
    switch (dtype) {
    case S1C_Q8_0: QT_SHAPES(S1C_Q8_0) break;
    case S1C_Q4_0: QT_SHAPES(S1C_Q4_0) break;
    case S1C_Q4_1: QT_SHAPES(S1C_Q4_1) break;
    case S1C_Q5_0: QT_SHAPES(S1C_Q5_0) break;
    case S1C_Q5_1: QT_SHAPES(S1C_Q5_1) break;
    case S1C_Q4_K: QT_SHAPES(S1C_Q4_K) break;
    case S1C_Q5_K: QT_SHAPES(S1C_Q5_K) break;
    default: QT_SHAPES(S1C_Q6_K) break;
    }
}
#undef QT_SHAPES

#undef INLQ
