/* The packed tiles with AVX2 (the avx2 family's; packed.c has the layouts and the driver). They
 * read the AVX-512 family's panels as they are: a 64-byte vector of a panel (16 rows x 4 bytes,
 * or one k of 16 f32 rows, or one k-pair of 16 bf16 rows) is two ymm halves of 8 rows, a block's
 * [16] f16 scales two halves of 8.
 *
 * F32 and BF16 (widened): one FMA per k in increasing k per output, as the AVX-512 tiles.
 * Quantized types (packed_avx2_q.h, instantiated below with and without AVX-VNNI): per 32-block
 * and output the exact integer dot of the weights and the 8-bit activations, e.g.
 *   Q8_0  w = stored byte ^ 0x80 (the panel keeps w + 128 for vpdpbusd); vpmaddubsw on |w| and
 *         x with w's sign (a pair of products within int16: 2 * 128 * 127), vpmaddwd to int32.
 *   Q4_0  vpmaddubsw on the nibbles (0..15) and x, the block's eight results added in int16
 *         (|sum| <= 16 * 15 * 127 = 30480), one vpmaddwd, then -8 * sum(x).
 *   others: unsigned 4 / 5 / 6-bit codes, their int16 sums widened before they could overflow;
 *   with AVX-VNNI, vpdpbusd as the AVX-512 tiles.
 * then, lane by lane, the AVX-512 tiles' float steps (for Q8_0/Q4_0 acc = fma(float(isum), d_w *
 * d_x, acc)). The integer is the AVX-512 tile's (its vpdpbusd on w + 128 with the -128 * sum(x)
 * bias, or on the nibbles with -8 * sum(x), is the same exact sum) and so is every float
 * operation: the families' packed results are the same bits, for any tile shape or thread split.
 *
 * Why packed tiles for AVX2: the row kernels (qmatmul_avx2.c) hold one row per lane and pay a
 * reduction across lanes per block and eight rows' scattered reads; here a lane is an output
 * for the whole k range, the block's activations are four-byte broadcasts shared by eight rows,
 * and a batch's weight vectors (and their unpacking) are shared by the tile's rows. */
#include "kern_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

#define T2 __attribute__((target("avx2,fma,f16c")))
#define INL static inline __attribute__((always_inline)) T2

static inline int32_t load4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Lanes i < cols set (cols may be <= 0 or > 8). */
INL __m256i lanes_below(int cols) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }

/* The accumulators of MR rows x halves [H0, H0 + NH) from the stored partial sums (k0 > 0) or 0,
 * and the masks of their valid lanes; a first slice asks for its rows' output lines OUT_AHEAD
 * floats on (kern_internal.h). */
#define ACC2_START(ACC, M, MR, H0, NH, T)                                                                   \
    do {                                                                                                    \
        _Pragma("GCC unroll 2") for (int h = 0; h < (NH); h++) M[h] = lanes_below((T)->cols - 8 * ((H0) + h)); \
        if ((T)->k0 == 0 && (H0) == 0)                                                                      \
            _Pragma("GCC unroll 6") for (int r = 0; r < (MR); r++)                                         \
                out_ahead((T)->out + (size_t)r * (T)->ldo);                                                \
        _Pragma("GCC unroll 6") for (int r = 0; r < (MR); r++)                                             \
            _Pragma("GCC unroll 2") for (int h = 0; h < (NH); h++) ACC[r][h] =                            \
                (T)->k0 > 0 ? _mm256_maskload_ps((T)->out + (size_t)r * (T)->ldo + 8 * ((H0) + h), M[h])   \
                            : _mm256_setzero_ps();                                                          \
    } while (0)

#define ACC2_STORE(ACC, M, MR, H0, NH, T)                                                                   \
    do {                                                                                                    \
        _Pragma("GCC unroll 6") for (int r = 0; r < (MR); r++)                                             \
            _Pragma("GCC unroll 2") for (int h = 0; h < (NH); h++)                                         \
                _mm256_maskstore_ps((T)->out + (size_t)r * (T)->ldo + 8 * ((H0) + h), M[h], ACC[r][h]);   \
    } while (0)

/* F32 and BF16 (widened) tiles: MR rows x NV panels, both halves of each: MR * NV * 2
 * accumulators, each one FMA chain in increasing k (the AVX-512 tiles' lanes). One row takes 4
 * panels: a single panel's two chains would wait on the FMA latency (4 cycles a k), which held
 * a hot 896 x 4864 BF16 decode to 33 GFLOP/s against the row kernels' 59. */
#define F2_START(ACC, M, MR, NV, T)                                                                          \
    do {                                                                                                    \
        _Pragma("GCC unroll 4") for (int v = 0; v < (NV); v++) {                                           \
            pk_tile tv = *(T);                                                                              \
            tv.out += 16 * v, tv.cols -= 16 * v;                                                            \
            __m256 a2[6][2];                                                                                \
            ACC2_START(a2, M[v], MR, 0, 2, &tv);                                                            \
            _Pragma("GCC unroll 6") for (int r = 0; r < (MR); r++) ACC[r][v][0] = a2[r][0], ACC[r][v][1] = a2[r][1]; \
        }                                                                                                   \
    } while (0)

#define F2_STORE(ACC, M, MR, NV, T)                                                                          \
    do {                                                                                                    \
        _Pragma("GCC unroll 4") for (int v = 0; v < (NV); v++) _Pragma("GCC unroll 6") for (int r = 0; r < (MR); r++) \
            _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++)                                            \
                _mm256_maskstore_ps((T)->out + (size_t)r * (T)->ldo + 16 * v + 8 * h, M[v][h], ACC[r][v][h]); \
    } while (0)

/* F32 weights ([n][16] a panel: a k's two halves are adjacent ymm). */
INL void f32_tile(const pk_tile *t, const int MR, const int NV) {
    __m256 acc[6][4][2];
    __m256i m[4][2];
    F2_START(acc, m, MR, NV, t);
    const float *w = (const float *)t->pw;
    const size_t ps = t->pstride / sizeof(float);
    for (int k = t->k0; k < t->k1; k++) {
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            __m256 w0 = _mm256_loadu_ps(w + v * ps + (size_t)k * 16), w1 = _mm256_loadu_ps(w + v * ps + (size_t)k * 16 + 8);
#pragma GCC unroll 6
            for (int r = 0; r < MR; r++) {
                __m256 xv = _mm256_broadcast_ss(t->x + (size_t)r * t->ldx + k);
                acc[r][v][0] = _mm256_fmadd_ps(w0, xv, acc[r][v][0]);
                acc[r][v][1] = _mm256_fmadd_ps(w1, xv, acc[r][v][1]);
            }
        }
    }
    F2_STORE(acc, m, MR, NV, t);
}

/* One BF16 row (decode) asks for each panel's line 2 KiB ahead: its out-of-order window covers
 * half the lines F32's does (twice the work a line), and the hardware prefetchers alone kept 4
 * streams at 27 GB/s (bench_packed packed_cold, one thread, 896 x 4864 / 4864 x 896: none 27 /
 * 34, 1 KiB 24-29 / 33, 1.5 KiB 32 / 37, 2 KiB 33-35 / 38-40, 3 KiB 31-34 / 37-39, 4 KiB 29.5,
 * 8 KiB 27 / 34-36 GB/s; F32, at 42-44 / 46-47 without, loses 1-5 GB/s with any distance). */
enum { BF16_DECODE_AHEAD = 2048 };

/* BF16 weights widened exactly ([n2][16][2] a panel: a k-pair's lane holds k's bf16 in its low
 * half, k+1's in its high half) against f32 activations: the F32 chain. The pair's vector is
 * read twice (a shift for k, a mask for k+1) rather than kept: 6 x 2 accumulators leave no
 * registers for it. */
INL void bf16w_tile(const pk_tile *t, const int MR, const int NV) {
    __m256 acc[6][4][2];
    __m256i m[4][2];
    F2_START(acc, m, MR, NV, t);
    const __m256i hi_mask = _mm256_set1_epi32((int)0xffff0000u);
    for (int k = t->k0; k < t->k1; k++) {
        const bool odd = 2 * k + 1 < t->n; /* an odd n's last pair has no k+1 (x ends at k) */
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            const __m256i *pw = (const __m256i *)(t->pw + (size_t)v * t->pstride + (size_t)k * 64);
            if (MR == 1) __builtin_prefetch((const uint8_t *)pw + BF16_DECODE_AHEAD, 0, 3);
            __m256 w0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_loadu_si256(pw), 16));
            __m256 w1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_loadu_si256(pw + 1), 16));
#pragma GCC unroll 6
            for (int r = 0; r < MR; r++) {
                __m256 xv = _mm256_broadcast_ss(t->x + (size_t)r * t->ldx + 2 * k);
                acc[r][v][0] = _mm256_fmadd_ps(w0, xv, acc[r][v][0]);
                acc[r][v][1] = _mm256_fmadd_ps(w1, xv, acc[r][v][1]);
            }
            if (!odd) continue;
            w0 = _mm256_castsi256_ps(_mm256_and_si256(_mm256_loadu_si256(pw), hi_mask));
            w1 = _mm256_castsi256_ps(_mm256_and_si256(_mm256_loadu_si256(pw + 1), hi_mask));
#pragma GCC unroll 6
            for (int r = 0; r < MR; r++) {
                __m256 xv = _mm256_broadcast_ss(t->x + (size_t)r * t->ldx + 2 * k + 1);
                acc[r][v][0] = _mm256_fmadd_ps(w0, xv, acc[r][v][0]);
                acc[r][v][1] = _mm256_fmadd_ps(w1, xv, acc[r][v][1]);
            }
        }
    }
    F2_STORE(acc, m, MR, NV, t);
}

#define SHAPES_F2(NAME, BODY)                                                                             \
    static T2 void NAME##_rows(const pk_tile *t, int mr, int nv) {                                       \
        if (mr == 1) { /* decode: 1 row x 1..4 panels */                                                  \
            switch (nv) {                                                                                 \
            case 1: BODY(t, 1, 1); break;                                                                \
            case 2: BODY(t, 1, 2); break;                                                                \
            case 3: BODY(t, 1, 3); break;                                                                \
            default: BODY(t, 1, 4); break;                                                               \
            }                                                                                             \
            return;                                                                                       \
        }                                                                                                 \
        switch (mr) {                                                                                     \
        case 2: BODY(t, 2, 1); break;                                                                    \
        case 3: BODY(t, 3, 1); break;                                                                    \
        case 4: BODY(t, 4, 1); break;                                                                    \
        case 5: BODY(t, 5, 1); break;                                                                    \
        default: BODY(t, 6, 1); break;                                                                   \
        }                                                                                                 \
    }
SHAPES_F2(f32, f32_tile)
SHAPES_F2(bf16w, bf16w_tile)

/* The high bits of value vector z, nibble h, moved to bit 4 (and 5) of each byte, from the half of
 * the bit-plane(s) at bits (packed.c's layouts; packed_avx512.c's kq_high and q5x_high): KT 5 the
 * fifth bits of Q5_K and of Q5_0 / Q5_1 (the same plane layout), KT 6 Q6_K's two. */
INL __m256i kq_high8(const uint8_t *bits, const int KT, const int z, const int h) {
    const int s = KT == 5 ? 4 - (2 * z + h) : 4 - 2 * (2 * (z % 2) + h);
    const __m256i v = _mm256_loadu_si256((const __m256i *)(bits + (KT == 5 ? 0 : 64 * (z / 2))));
    return s > 0 ? _mm256_slli_epi16(v, s) : s < 0 ? _mm256_srli_epi16(v, -s) : v;
}

/* The quantized tiles, twice: with AVX2's vpmaddubsw / vpmaddwd and with AVX-VNNI's vpdpbusd
 * (packed_avx2_q.h; the same integers, so the same bits). */
#define QV 0
#define QT T2
#define QN(f) f
#include "packed_avx2_q.h"
#undef QV
#undef QT
#undef QN
#define QV 1
#define QT __attribute__((target("avx2,fma,f16c,avxvnni")))
#define QN(f) f##_vnni
#include "packed_avx2_q.h"
#undef QV
#undef QT
#undef QN

/* -1: as the CPU allows (kern_cpu_has_avxvnni), 0 / 1: set by pk_avx2_vnni */
static _Atomic int vnni_mode = -1;

bool pk_avx2_vnni(int mode) {
    atomic_store(&vnni_mode, mode < 0 ? -1 : mode > 0 ? 1 : 0);
    return mode != 0 && kern_cpu_has_avxvnni();
}

static bool use_vnni(void) {
    int m = atomic_load_explicit(&vnni_mode, memory_order_relaxed);
    return m != 0 && kern_cpu_has_avxvnni();
}

void pk_avx2_tile(const pk_tile *t, int dtype, int mr, int nv) {
    if (dtype == S1C_F32 || dtype == S1C_BF16) {
        (dtype == S1C_F32 ? f32_rows : bf16w_rows)(t, mr, nv);
        return;
    }
    bool v = use_vnni();
    void (*f)(const pk_tile *, int, int, int) = kern_is_kquant_dtype(dtype) ? (v ? kq_rows_vnni : kq_rows)
                                                : kern_is_q5x_dtype(dtype)   ? (v ? q5x_rows_vnni : q5x_rows)
                                                                             : (v ? q0_rows_vnni : q0_rows);
    f(t, dtype, mr, 0);
    if (mr == 1 || t->cols <= 8) return;
    pk_tile second = *t; /* the slice's share of the next one was asked for by the first half */
    second.pf = (pk_pf){0};
    f(&second, dtype, mr, 1);
}

#else
void pk_avx2_tile(const pk_tile *t, int dtype, int mr, int nv) { (void)t, (void)dtype, (void)mr, (void)nv; }
bool pk_avx2_vnni(int mode) { (void)mode; return false; }
#endif
