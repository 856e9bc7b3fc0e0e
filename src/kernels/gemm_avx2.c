/* AVX2 micro-kernel for kern_sgemm: a 6 x 16 tile of C in 12 ymm accumulators, one B panel
 * row (2 loads) and 6 broadcasts of A per k (12 FMAs per 8 loads); 15 of the 16 registers.
 * Blocking as the AVX-512 kernel's (gemm_driver.c). */
#include "kern_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define T256 __attribute__((target("avx2,fma")))

enum { MR = 6, NR = 16 };

static T256 void ukr_6x16(int kc, const float *restrict a, const float *restrict b, float *restrict c, int ldc, bool load) {
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        c0[r] = load ? _mm256_loadu_ps(c + (size_t)r * ldc) : _mm256_setzero_ps();
        c1[r] = load ? _mm256_loadu_ps(c + (size_t)r * ldc + 8) : _mm256_setzero_ps();
    }
    for (int k = 0; k < kc; k++, a += MR, b += NR) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m256 av = _mm256_broadcast_ss(a + r);
            c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        _mm256_storeu_ps(c + (size_t)r * ldc, c0[r]);
        _mm256_storeu_ps(c + (size_t)r * ldc + 8, c1[r]);
    }
}

static const gemm_kernel k256 = {MR, NR, 256, 96, 512, ukr_6x16};

void gemm_avx2_block(const gemm_args *g, int m0, int m1, int n0, int n1) { gemm_blocked(&k256, g, m0, m1, n0, n1); }

#else
void gemm_avx2_block(const gemm_args *g, int m0, int m1, int n0, int n1) { (void)g, (void)m0, (void)m1, (void)n0, (void)n1; }
#endif
