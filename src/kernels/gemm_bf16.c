/* kern_sgemm_bf16 with AVX512_BF16: A and B are rounded to bf16 while they are packed, in
 * k-pairs (vdpbf16ps multiplies two bf16 pairs per f32 lane and adds both products to it),
 * and a 12 x 32 tile of C is kept in 24 zmm accumulators as in gemm_avx512.c. Blocking as
 * gemm_driver.c's, with kc counted in pairs (kc = 256 pairs: an A panel of 12 KiB, a packed
 * 512 x 512 slice of B of 512 KiB). An odd K is padded with a zero pair member.
 *
 * Reduction order: a C element starts at 0 or at its stored value and takes one vdpbf16ps per
 * k-pair in increasing k, so the result depends on neither the blocking nor the threads. */
#include "kern_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MR = 12, NR = 32, KCP = 256 /* k-pairs */, MC = 96, NC = 512 };

/* round to nearest even; NaN stays NaN */
static inline uint16_t to_bf16(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline int imin(int a, int b) { return a < b ? a : b; }

static inline float at_a(const gemm_args *g, int m, int k) { return g->ta ? g->A[(size_t)k * g->lda + m] : g->A[(size_t)m * g->lda + k]; }
static inline float at_b(const gemm_args *g, int k, int n) { return g->tb ? g->B[(size_t)n * g->ldb + k] : g->B[(size_t)k * g->ldb + n]; }

/* op(A)[m0 + r][k0 + k] as bf16, panel by panel: per k-pair p, MR pairs (r: [2p], [2p+1]).
 * Rows past `rows` and the k past K are zero. */
static void pack_a(const gemm_args *g, int m0, int rows, int k0, int kp, uint16_t *pa) {
    for (int ir = 0; ir < rows; ir += MR, pa += (size_t)MR * kp * 2) {
        int h = imin(MR, rows - ir);
        for (int r = 0; r < MR; r++)
            for (int p = 0; p < kp; p++)
                for (int e = 0; e < 2; e++) {
                    int k = k0 + 2 * p + e;
                    pa[((size_t)p * MR + r) * 2 + e] = r < h && k < g->K ? to_bf16(at_a(g, m0 + ir + r, k)) : 0;
                }
    }
}

/* op(B)[k0 + k][n0 + j] as bf16, panel by panel: per k-pair p, NR pairs. */
static void pack_b(const gemm_args *g, int k0, int kp, int n0, int cols, uint16_t *pb) {
    for (int jr = 0; jr < cols; jr += NR, pb += (size_t)NR * kp * 2) {
        int w = imin(NR, cols - jr);
        for (int j = 0; j < NR; j++)
            for (int p = 0; p < kp; p++)
                for (int e = 0; e < 2; e++) {
                    int k = k0 + 2 * p + e;
                    pb[((size_t)p * NR + j) * 2 + e] = j < w && k < g->K ? to_bf16(at_b(g, k, n0 + jr + j)) : 0;
                }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define TBF __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

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
    _Alignas(64) float tile[MR * NR];
    for (int jc = n0; jc < n1; jc += NC) {
        int nc = imin(NC, n1 - jc);
        for (int pc = 0; pc < kpairs; pc += KCP) {
            int kp = imin(KCP, kpairs - pc);
            bool load = pc > 0 || g->beta != 0.0f;
            pack_b(g, 2 * pc, kp, jc, nc, pb);
            for (int ic = m0; ic < m1; ic += MC) {
                int mc = imin(MC, m1 - ic);
                pack_a(g, ic, mc, 2 * pc, kp, pa);
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
}
