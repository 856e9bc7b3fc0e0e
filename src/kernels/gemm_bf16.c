/* kern_sgemm_bf16 with AVX512_BF16: A and B are rounded to bf16 while they are packed, in
 * k-pairs (vdpbf16ps multiplies two bf16 pairs per f32 lane and adds both products to it),
 * and a 12 x 32 tile of C is kept in 24 zmm accumulators as in gemm_avx512.c. Blocking as
 * gemm_driver.c's, with kc counted in pairs (kc = 256 pairs: an A panel of 12 KiB, a packed
 * 512 x 512 slice of B of 512 KiB). Packing reuses gemm_driver.c's f32 packing, one panel at
 * a time, then converts with vcvtneps2bf16 (round to nearest even). An odd K is padded with a
 * zero pair member.
 *
 * Reduction order: a C element starts at 0 or at its stored value and takes one vdpbf16ps per
 * k-pair in increasing k, so the result depends on neither the blocking nor the threads. */
#include "kern_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MR = 12, NR = 32, KCP = 256 /* k-pairs */, MC = 96, NC = 512 };

static inline int imin(int a, int b) { return a < b ? a : b; }

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define TBF __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

/* f32 rows k and k+1 of a packed panel (w <= 16 floats each; k1 NULL: zeros) -> w bf16 pairs. */
static inline __attribute__((always_inline)) TBF void pairs16(const float *k0, const float *k1, int w, uint16_t *out) {
    __mmask16 m = (__mmask16)((1u << w) - 1);
    __m512 a = _mm512_maskz_loadu_ps(m, k0), b = k1 ? _mm512_maskz_loadu_ps(m, k1) : _mm512_setzero_ps();
    __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(a)), hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(b));
    _mm512_mask_storeu_epi32(out, m, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
}

/* A panel packed as f32 (width floats per k, kc values of k) -> kp k-pairs of width bf16 pairs. */
static TBF void to_pairs(const float *f, int width, int kc, int kp, uint16_t *out) {
    for (int p = 0; p < kp; p++) {
        const float *r0 = f + (size_t)(2 * p) * width, *r1 = 2 * p + 1 < kc ? r0 + width : NULL;
        for (int j = 0; j < width; j += 16) pairs16(r0 + j, r1 ? r1 + j : NULL, imin(16, width - j), out + ((size_t)p * width + j) * 2);
    }
}
#else
static void to_pairs(const float *f, int width, int kc, int kp, uint16_t *out) { (void)f, (void)width, (void)kc, (void)kp, (void)out; }
#endif

/* op(A)[m0 + r][k0 + k] as bf16, panel by panel: per k-pair p, MR pairs (k = 2p, 2p+1). Rows past
 * `rows` and k past K are zero. Packed as f32 first (gemm_driver.c), one panel at a time. */
static void pack_a(const gemm_args *g, int m0, int rows, int k0, int kp, float *scratch, uint16_t *pa) {
    int kc = imin(2 * kp, g->K - k0);
    for (int ir = 0; ir < rows; ir += MR, pa += (size_t)MR * kp * 2) {
        gemm_pack_a(g, MR, m0 + ir, imin(MR, rows - ir), k0, kc, scratch);
        to_pairs(scratch, MR, kc, kp, pa);
    }
}

/* op(B)[k0 + k][n0 + j] as bf16, panel by panel: per k-pair p, NR pairs. */
static void pack_b(const gemm_args *g, int k0, int kp, int n0, int cols, float *scratch, uint16_t *pb) {
    int kc = imin(2 * kp, g->K - k0);
    for (int jr = 0; jr < cols; jr += NR, pb += (size_t)NR * kp * 2) {
        gemm_pack_b(g, NR, k0, kc, n0 + jr, imin(NR, cols - jr), scratch);
        to_pairs(scratch, NR, kc, kp, pb);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
static TBF void ukr_bf16(int kp, const uint16_t *restrict a, const uint16_t *restrict b, float *restrict c, int ldc, bool load) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        c0[r] = load ? _mm512_loadu_ps(c + (size_t)r * ldc) : _mm512_setzero_ps();
        c1[r] = load ? _mm512_loadu_ps(c + (size_t)r * ldc + 16) : _mm512_setzero_ps();
    }
    for (int p = 0; p < kp; p++, a += 2 * MR, b += 2 * NR) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = (__m512bh)_mm512_load_si512(b + 32);
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            uint32_t pair;
            memcpy(&pair, a + 2 * r, 4);
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)pair);
            c0[r] = _mm512_dpbf16_ps(c0[r], av, b0);
            c1[r] = _mm512_dpbf16_ps(c1[r], av, b1);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        _mm512_storeu_ps(c + (size_t)r * ldc, c0[r]);
        _mm512_storeu_ps(c + (size_t)r * ldc + 16, c1[r]);
    }
}

bool kern_avx512bf16_supported(void) {
    __builtin_cpu_init();
    return kern_avx512_supported() && __builtin_cpu_supports("avx512bf16");
}
#else
static void ukr_bf16(int kp, const uint16_t *a, const uint16_t *b, float *c, int ldc, bool load) {
    (void)kp, (void)a, (void)b, (void)c, (void)ldc, (void)load;
}
bool kern_avx512bf16_supported(void) { return false; }
#endif

static void *xalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "s1c: out of memory for kern_sgemm_bf16's packing buffers (%zu bytes)\n", n);
        abort();
    }
    return p;
}

void gemm_bf16_block(const gemm_args *g, int m0, int m1, int n0, int n1) {
    if (m0 >= m1 || n0 >= n1) return;
    if (g->K <= 0) {
        if (g->beta == 0.0f)
            for (int m = m0; m < m1; m++) memset(g->C + (size_t)m * g->ldc + n0, 0, (size_t)(n1 - n0) * sizeof(float));
        return;
    }
    int kpairs = (g->K + 1) / 2;
    int mcap = imin(MC, (m1 - m0 + MR - 1) / MR * MR), ncap = imin(NC, (n1 - n0 + NR - 1) / NR * NR), kcap = imin(KCP, kpairs);
    uint16_t *pa = xalloc((size_t)mcap * kcap * 4), *pb = xalloc((size_t)ncap * kcap * 4);
    float *scratch = xalloc((size_t)NR * kcap * 2 * sizeof(float)); /* one f32 panel (NR >= MR) */
    gemm_args g32 = *g;
    g32.bf16 = false; /* the f32 packing copies; rounding happens in the conversion */
    _Alignas(64) float tile[MR * NR];
    for (int jc = n0; jc < n1; jc += NC) {
        int nc = imin(NC, n1 - jc);
        for (int pc = 0; pc < kpairs; pc += KCP) {
            int kp = imin(KCP, kpairs - pc);
            bool load = pc > 0 || g->beta != 0.0f;
            pack_b(&g32, 2 * pc, kp, jc, nc, scratch, pb);
            for (int ic = m0; ic < m1; ic += MC) {
                int mc = imin(MC, m1 - ic);
                pack_a(&g32, ic, mc, 2 * pc, kp, scratch, pa);
                for (int jr = 0; jr < nc; jr += NR)
                    for (int ir = 0; ir < mc; ir += MR) {
                        const uint16_t *a = pa + (size_t)ir * kp * 2, *b = pb + (size_t)jr * kp * 2;
                        float *c = g->C + (size_t)(ic + ir) * g->ldc + (jc + jr);
                        int h = imin(MR, mc - ir), w = imin(NR, nc - jr);
                        if (h == MR && w == NR) {
                            ukr_bf16(kp, a, b, c, g->ldc, load);
                            continue;
                        }
                        if (load)
                            for (int r = 0; r < h; r++) memcpy(tile + r * NR, c + (size_t)r * g->ldc, (size_t)w * sizeof(float));
                        ukr_bf16(kp, a, b, tile, NR, load);
                        for (int r = 0; r < h; r++) memcpy(c + (size_t)r * g->ldc, tile + r * NR, (size_t)w * sizeof(float));
                    }
            }
        }
    }
    free(pa);
    free(pb);
    free(scratch);
}
