/* The packed Q8_0 / Q4_0 tiles of packed_avx2.c, instantiated there twice: QV 0 with AVX2's
 * vpmaddubsw / vpmaddwd, QV 1 with AVX-VNNI's vpdpbusd (QT: the functions' target, QN: their
 * names). Both compute the same exact block integers as the AVX-512 tile, then its float step,
 * so every variant gives the same bits. Not a header for anything else. */
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
        if (MR == 1) /* decode: Q0_DECODE_AHEAD; a block's share of its record, rounded up to lines */
            for (int l = 0; l < (int)((q0_blk_bytes(Q4) + 32 + 63) / 64); l++)
                __builtin_prefetch(wb + Q0_DECODE_AHEAD + 64 * l, 0, 3);
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
static QT void QN(q8_rows)(const pk_tile *t, int mr, int h0) {
    switch (mr) {
    case 1: QN(q_tile)(t, false, 1, 0, 2); break;
    case 2: QN(q_tile)(t, false, 2, h0, 1); break;
    case 3: QN(q_tile)(t, false, 3, h0, 1); break;
    default: QN(q_tile)(t, false, 4, h0, 1); break;
    }
}

static QT void QN(q4_rows)(const pk_tile *t, int mr, int h0) {
    switch (mr) {
    case 1: QN(q_tile)(t, true, 1, 0, 2); break;
    case 2: QN(q_tile)(t, true, 2, h0, 1); break;
    case 3: QN(q_tile)(t, true, 3, h0, 1); break;
    default: QN(q_tile)(t, true, 4, h0, 1); break;
    }
}


#undef INLQ
