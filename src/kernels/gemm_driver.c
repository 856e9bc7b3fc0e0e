/* The blocked matrix product shared by the SIMD families (the GotoBLAS/BLIS scheme): C is cut
 * into nc-column blocks, K into kc-deep slices, M into mc-row blocks; each (kc x nc) slice of
 * op(B) is packed once into nr-wide panels (it stays in L2), each (mc x kc) block of op(A)
 * into mr-tall panels, and the family's register-blocked micro-kernel multiplies one A panel
 * by one B panel into an mr x nr tile of C. Packing also zero-pads the ragged edges, so the
 * micro-kernel always runs full tiles (edge tiles go through a small buffer).
 *
 * Reduction order: a C element starts at 0 (beta 0, first slice) or at its stored value, and
 * takes one FMA per k in increasing k; between slices it is stored and reloaded exactly. So
 * the result depends on neither the blocking nor the thread split. */
#include "kern_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { GEMM_MAX_TILE = 32 * 32 };

static inline int imin(int a, int b) { return a < b ? a : b; }

/* v rounded to bf16 (nearest even; NaN stays NaN) and widened back: kern_sgemm_bf16 on the
 * f32 micro-kernels. */
static inline float round_bf16(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) u |= 0x00400000u;
    else u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&v, &u, 4);
    return v;
}

/* Rounds the n floats just packed at p when the call is kern_sgemm_bf16. */
static void maybe_round(const gemm_args *g, float *p, size_t n) {
    if (g->bf16)
        for (size_t i = 0; i < n; i++) p[i] = round_bf16(p[i]);
}

/* op(A)[m0 + r][k0 + k] for r < rows (zero up to mr), k < kc, panel by panel: each panel
 * is mr floats per k. */
void gemm_pack_a(const gemm_args *g, int mr, int m0, int rows, int k0, int kc, float *pa) {
    for (int ir = 0; ir < rows; ir += mr, pa += (size_t)mr * kc) {
        int h = imin(mr, rows - ir);
        if (g->ta) {
            /* op(A)[m][k] = A[k*lda + m]: each k's column piece is contiguous */
            for (int k = 0; k < kc; k++) {
                const float *src = g->A + (size_t)(k0 + k) * g->lda + (m0 + ir);
                float *dst = pa + (size_t)k * mr;
                memcpy(dst, src, (size_t)h * sizeof(float));
                for (int r = h; r < mr; r++) dst[r] = 0.0f;
            }
        } else {
            for (int r = 0; r < h; r++) {
                const float *src = g->A + (size_t)(m0 + ir + r) * g->lda + k0;
                for (int k = 0; k < kc; k++) pa[(size_t)k * mr + r] = src[k];
            }
            for (int r = h; r < mr; r++)
                for (int k = 0; k < kc; k++) pa[(size_t)k * mr + r] = 0.0f;
        }
        maybe_round(g, pa, (size_t)mr * kc);
    }
}

/* op(B)[k0 + k][n0 + j] for k < kc, j < cols (zero up to nr), panel by panel: each panel is
 * nr floats per k. */
void gemm_pack_b(const gemm_args *g, int nr, int k0, int kc, int n0, int cols, float *pb) {
    for (int jr = 0; jr < cols; jr += nr, pb += (size_t)nr * kc) {
        int w = imin(nr, cols - jr);
        if (g->tb) {
            /* op(B)[k][n] = B[n*ldb + k] */
            for (int j = 0; j < w; j++) {
                const float *src = g->B + (size_t)(n0 + jr + j) * g->ldb + k0;
                for (int k = 0; k < kc; k++) pb[(size_t)k * nr + j] = src[k];
            }
            for (int j = w; j < nr; j++)
                for (int k = 0; k < kc; k++) pb[(size_t)k * nr + j] = 0.0f;
        } else {
            for (int k = 0; k < kc; k++) {
                const float *src = g->B + (size_t)(k0 + k) * g->ldb + (n0 + jr);
                float *dst = pb + (size_t)k * nr;
                memcpy(dst, src, (size_t)w * sizeof(float));
                for (int j = w; j < nr; j++) dst[j] = 0.0f;
            }
        }
        maybe_round(g, pb, (size_t)nr * kc);
    }
}

/* One mr x nr tile of C of which only h x w lies inside C: through a buffer. */
static void edge_tile(const gemm_kernel *kn, int kc, const float *pa, const float *pb, float *c, int ldc, int h, int w, bool load) {
    _Alignas(64) float tile[GEMM_MAX_TILE];
    int nr = kn->nr;
    if (load)
        for (int r = 0; r < h; r++) memcpy(tile + (size_t)r * nr, c + (size_t)r * ldc, (size_t)w * sizeof(float));
    kn->ukr(kc, pa, pb, tile, nr, load);
    for (int r = 0; r < h; r++) memcpy(c + (size_t)r * ldc, tile + (size_t)r * nr, (size_t)w * sizeof(float));
}

static void *xalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!p) {
        /* kern_sgemm has no error channel; its buffers are a few hundred KiB */
        fprintf(stderr, "s1c: out of memory for kern_sgemm's packing buffers (%zu bytes)\n", n);
        abort();
    }
    return p;
}

/* ---------------------------------------------------------------- small products, unpacked
 *
 * When C is at most one nc block wide, each packed A panel would serve only a few B panels, so
 * packing A costs as much as a good part of the product (the trainer's small models and its
 * attention tiles). There the direct tiles below read op(A) in place (one broadcast per row
 * and k, from A[m*lda + k] or A[k*lda + m]) and op(B) in place when its rows are contiguous
 * (B[k*ldb + n]); only a transposed B is packed. The arithmetic is the micro-kernel's: each C
 * element starts from 0 or C and takes one FMA per k in increasing k over the same kc slices,
 * so both paths give the same bits (tests/unit/test_gemm_small.c). */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define T256 __attribute__((target("avx2,fma")))

/* One 12 x 32 tile, h x w of it inside C: op(A) row r at ar[r] (element k at ar[r][k * ak]),
 * op(B) row k at b + k * ldb. */
static T512 void direct_12x32(int kc, const float *const *ar, size_t ak, const float *b, size_t ldb, float *c, size_t ldc,
                              bool load, int h, int w) {
    __mmask16 m0 = (__mmask16)(w >= 16 ? 0xffffu : (1u << w) - 1u), m1 = (__mmask16)(w >= 32 ? 0xffffu : w > 16 ? (1u << (w - 16)) - 1u : 0u);
    __m512 c0[12], c1[12];
#pragma GCC unroll 12
    for (int r = 0; r < 12; r++) {
        bool in = load && r < h;
        c0[r] = in ? _mm512_maskz_loadu_ps(m0, c + r * ldc) : _mm512_setzero_ps();
        c1[r] = in ? _mm512_maskz_loadu_ps(m1, c + r * ldc + 16) : _mm512_setzero_ps();
    }
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b + k * ldb), b1 = _mm512_maskz_loadu_ps(m1, b + k * ldb + 16);
#pragma GCC unroll 12
        for (int r = 0; r < 12; r++) {
            __m512 av = _mm512_set1_ps(ar[r][k * ak]);
            c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < 12; r++)
        if (r < h) {
            _mm512_mask_storeu_ps(c + r * ldc, m0, c0[r]);
            _mm512_mask_storeu_ps(c + r * ldc + 16, m1, c1[r]);
        }
}

/* The AVX2 family's 6 x 16 tile, likewise. */
static T256 void direct_6x16(int kc, const float *const *ar, size_t ak, const float *b, size_t ldb, float *c, size_t ldc,
                             bool load, int h, int w) {
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(w), idx), m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(w - 8), idx);
    __m256 c0[6], c1[6];
#pragma GCC unroll 6
    for (int r = 0; r < 6; r++) {
        bool in = load && r < h;
        c0[r] = in ? _mm256_maskload_ps(c + r * ldc, m0) : _mm256_setzero_ps();
        c1[r] = in ? _mm256_maskload_ps(c + r * ldc + 8, m1) : _mm256_setzero_ps();
    }
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_maskload_ps(b + k * ldb, m0), b1 = _mm256_maskload_ps(b + k * ldb + 8, m1);
#pragma GCC unroll 6
        for (int r = 0; r < 6; r++) {
            __m256 av = _mm256_set1_ps(ar[r][k * ak]);
            c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < 6; r++)
        if (r < h) {
            _mm256_maskstore_ps(c + r * ldc, m0, c0[r]);
            _mm256_maskstore_ps(c + r * ldc + 8, m1, c1[r]);
        }
}

typedef void (*direct_fn)(int, const float *const *, size_t, const float *, size_t, float *, size_t, bool, int, int);

/* The direct tile of a family's micro-kernel shape (NULL: none). */
static direct_fn direct_for(const gemm_kernel *kn) {
    if (kn->mr == 12 && kn->nr == 32) return direct_12x32;
    if (kn->mr == 6 && kn->nr == 16) return direct_6x16;
    return NULL;
}
#else
typedef void (*direct_fn)(int, const float *const *, size_t, const float *, size_t, float *, size_t, bool, int, int);
static direct_fn direct_for(const gemm_kernel *kn) { return (void)kn, NULL; }
#endif

/* gemm_blocked's loops without packing A (and without packing B unless it is transposed). */
static void gemm_direct(const gemm_kernel *kn, direct_fn tile, const gemm_args *g, int m0, int m1, int n0, int n1) {
    int mr = kn->mr, nr = kn->nr, KC = kn->kc, kcap = imin(KC, g->K);
    int cols = (n1 - n0 + nr - 1) / nr * nr;
    float *pb = g->tb ? xalloc((size_t)cols * kcap * sizeof(float)) : NULL;
    size_t ak = g->ta ? (size_t)g->lda : 1;
    for (int pc = 0; pc < g->K; pc += KC) {
        int kc = imin(KC, g->K - pc);
        bool load = pc > 0 || g->beta != 0.0f;
        if (pb) gemm_pack_b(g, nr, pc, kc, n0, n1 - n0, pb);
        for (int ir = m0; ir < m1; ir += mr) {
            int h = imin(mr, m1 - ir);
            const float *ar[32];
            for (int r = 0; r < mr; r++) { /* rows past the edge repeat the last one (computed, not stored) */
                int m = ir + imin(r, h - 1);
                ar[r] = g->ta ? g->A + (size_t)pc * g->lda + m : g->A + (size_t)m * g->lda + pc;
            }
            for (int jr = n0; jr < n1; jr += nr) {
                const float *b = pb ? pb + (size_t)(jr - n0) * kc : g->B + (size_t)pc * g->ldb + jr;
                tile(kc, ar, ak, b, pb ? (size_t)nr : (size_t)g->ldb, g->C + (size_t)ir * g->ldc + jr, (size_t)g->ldc, load, h,
                     imin(nr, n1 - jr));
            }
        }
    }
    free(pb);
}

void gemm_blocked(const gemm_kernel *kn, const gemm_args *g, int m0, int m1, int n0, int n1) {
    if (m0 >= m1 || n0 >= n1) return;
    if (g->K <= 0) {
        if (g->beta == 0.0f)
            for (int m = m0; m < m1; m++) memset(g->C + (size_t)m * g->ldc + n0, 0, (size_t)(n1 - n0) * sizeof(float));
        return;
    }
    direct_fn tile = direct_for(kn);
    if (tile && !g->bf16 && n1 - n0 <= kn->nc) {
        gemm_direct(kn, tile, g, m0, m1, n0, n1);
        return;
    }
    int mr = kn->mr, nr = kn->nr, KC = kn->kc;
    int MC = imin(kn->mc, (m1 - m0 + mr - 1) / mr * mr), NC = imin(kn->nc, (n1 - n0 + nr - 1) / nr * nr);
    int kcap = imin(KC, g->K);
    float *pa = xalloc((size_t)MC * kcap * sizeof(float)), *pb = xalloc((size_t)NC * kcap * sizeof(float));
    for (int jc = n0; jc < n1; jc += NC) {
        int nc = imin(NC, n1 - jc);
        for (int pc = 0; pc < g->K; pc += KC) {
            int kc = imin(KC, g->K - pc);
            bool load = pc > 0 || g->beta != 0.0f;
            gemm_pack_b(g, nr, pc, kc, jc, nc, pb);
            for (int ic = m0; ic < m1; ic += MC) {
                int mc = imin(MC, m1 - ic);
                gemm_pack_a(g, mr, ic, mc, pc, kc, pa);
                for (int jr = 0; jr < nc; jr += nr) {
                    const float *b = pb + (size_t)jr * kc;
                    for (int ir = 0; ir < mc; ir += mr) {
                        const float *a = pa + (size_t)ir * kc;
                        float *c = g->C + (size_t)(ic + ir) * g->ldc + (jc + jr);
                        int h = imin(mr, mc - ir), w = imin(nr, nc - jr);
                        if (h == mr && w == nr) kn->ukr(kc, a, b, c, g->ldc, load);
                        else edge_tile(kn, kc, a, b, c, g->ldc, h, w, load);
                    }
                }
            }
        }
    }
    free(pa);
    free(pb);
}
