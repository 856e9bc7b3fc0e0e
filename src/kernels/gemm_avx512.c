/* AVX-512 micro-kernel for kern_sgemm: a 12 x 32 tile of C in 24 zmm accumulators (two
 * vectors per row), one B panel row (2 loads) and 12 broadcasts of A per k — 24 FMAs per
 * 14 loads, enough to keep the FMA pipes busy (Zen 4 runs one 512-bit FMA per cycle, Intel
 * server cores two). Blocking (gemm_driver.c): kc = 256 keeps an A panel (12 KiB) in L1,
 * a packed kc x nc slice of B (256 x 512 floats = 512 KiB) in L2. */
#include "kern_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

enum { MR = 12, NR = 32 };

static T512 void ukr_12x32(int kc, const float *restrict a, const float *restrict b, float *restrict c, int ldc, bool load) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        c0[r] = load ? _mm512_loadu_ps(c + (size_t)r * ldc) : _mm512_setzero_ps();
        c1[r] = load ? _mm512_loadu_ps(c + (size_t)r * ldc + 16) : _mm512_setzero_ps();
    }
    for (int k = 0; k < kc; k++, a += MR, b += NR) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            __m512 av = _mm512_set1_ps(a[r]);
            c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        _mm512_storeu_ps(c + (size_t)r * ldc, c0[r]);
        _mm512_storeu_ps(c + (size_t)r * ldc + 16, c1[r]);
    }
}

static const gemm_kernel k512 = {MR, NR, 256, 96, 512, ukr_12x32};

void gemm_avx512_block(const gemm_args *g, int m0, int m1, int n0, int n1) {
    /* bf16 calls take the dot-product kernel where the CPU has it (same 12 x 32 tiles) */
    if (g->bf16 && kern_avx512bf16_supported()) gemm_bf16_block(g, m0, m1, n0, n1);
    else gemm_blocked(&k512, g, m0, m1, n0, n1);
}

#else
void gemm_avx512_block(const gemm_args *g, int m0, int m1, int n0, int n1) { (void)g, (void)m0, (void)m1, (void)n0, (void)n1; }
#endif
