/* The machine's limits, measured (not assumed) so benchmark results can be given as a
 * fraction of them: memory bandwidth (a large copy) and f32 FMA throughput per core. */
#ifndef S1C_BENCH_MACHINE_H
#define S1C_BENCH_MACHINE_H

#include <stdlib.h>
#include <string.h>

#include "s1c/base.h"

/* Bytes per second read+written by memcpy over a buffer far larger than the caches. */
static inline double machine_bandwidth(void) {
    size_t n = 256u << 20;
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b) { free(a); free(b); return 0; }
    memset(a, 1, n);
    memset(b, 2, n);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t = s1c_now();
        memcpy(b, a, n);
        t = s1c_now() - t;
        if (t < best) best = t;
    }
    volatile char sink = b[n / 2];
    (void)sink;
    free(a);
    free(b);
    return 2.0 * (double)n / best;
}

/* f32 FLOP/s of one core: many independent multiply-add chains the compiler vectorizes with
 * the widest FMA the CPU has (AVX-512 when present), so latency does not hide throughput. */
#define FMA_LOOP(name, attr)                                                   \
    attr static double name(long iters) {                                      \
        enum { W = 128 };                                                      \
        float acc[W], x[W], y[W];                                              \
        for (int i = 0; i < W; i++) { acc[i] = 0; x[i] = 1e-6f * (float)i; y[i] = 0.9999f; } \
        double t = s1c_now();                                                  \
        for (long k = 0; k < iters; k++)                                       \
            for (int i = 0; i < W; i++) acc[i] = acc[i] * y[i] + x[i];         \
        t = s1c_now() - t;                                                     \
        volatile float sink = acc[5];                                          \
        (void)sink;                                                            \
        return 2.0 * W * (double)iters / t;                                    \
    }
FMA_LOOP(fma_generic, )
FMA_LOOP(fma_avx512, __attribute__((target("avx512f,fma"))))
FMA_LOOP(fma_avx2, __attribute__((target("avx2,fma"))))

static inline double machine_flops_one_core(const char **isa) {
    double (*f)(long) = fma_generic;
    *isa = "baseline";
    if (__builtin_cpu_supports("avx512f")) { f = fma_avx512; *isa = "avx512"; }
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) { f = fma_avx2; *isa = "avx2"; }
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double v = f(2000000);
        if (v > best) best = v;
    }
    return best;
}

#endif
