/* Machine limits by fixed methods (limits.h). */
#include "limits.h"

#include "kernels/kern_internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

/* ------------------------------------------------------------------ read bandwidth */

/* The read bandwidth is the best any of a few loops reaches, each pass timed on its own: which
 * loop a machine likes differs (Zen 4 splits 512-bit loads and streams 256-bit plain loads
 * fastest; elsewhere non-temporal 512-bit loads may win), and the limit a decode kernel is held
 * to must be what the machine can deliver, not what one loop happens to get. Each loop keeps 8
 * independent accumulators (no dependency chain limits the loads in flight) and reads its share
 * front to back as one stream (the hardware prefetchers' best case). The buffer is 2 MiB aligned
 * and advised as transparent huge pages (as the packed weights are: kern_pack), so TLB misses do
 * not count against the memory. Tried on the 2-core EPYC VM and left out: software prefetch
 * (no gain over the hardware prefetchers), several streams per thread (slower: 14-16 against
 * 23-27 GB/s single-threaded), pinning threads to cores (no gain; vCPUs float anyway). */
enum { BW_NT512, BW_PLAIN256, BW_PLAIN512, BW_METHODS };

typedef struct bw_job {
    const uint8_t *buf;
    size_t bytes;
    int method;
    uint64_t sink[64]; /* per task, so the reads cannot be optimized away */
} bw_job;

#if HAVE_X86
__attribute__((target("avx512f"))) static uint64_t fold512(const __m512i *a) {
    uint64_t lanes[8], x = 0;
    for (int k = 0; k < 8; k++) {
        _mm512_storeu_si512(lanes, a[k]);
        for (int i = 0; i < 8; i++) x ^= lanes[i]; /* (GCC's reduce_add adds signed lanes: UB on overflow) */
    }
    return x;
}

/* 8 x 64 bytes per step, with vmovntdqa (nt) or plain loads; nt is a constant in each caller */
__attribute__((target("avx512f"), always_inline)) static inline uint64_t read512(const uint8_t *p, size_t n, bool nt) {
    __m512i a[8];
    for (int k = 0; k < 8; k++) a[k] = _mm512_setzero_si512();
    for (size_t i = 0; i + 512 <= n; i += 512)
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            const void *at = p + i + 64 * k;
            a[k] = _mm512_xor_si512(a[k], nt ? _mm512_stream_load_si512((void *)at) : _mm512_load_si512(at));
        }
    return fold512(a);
}

__attribute__((target("avx512f"))) static uint64_t read_nt512(const uint8_t *p, size_t n) { return read512(p, n, true); }

__attribute__((target("avx512f"))) static uint64_t read_plain512(const uint8_t *p, size_t n) { return read512(p, n, false); }

__attribute__((target("avx2"))) static uint64_t read_plain256(const uint8_t *p, size_t n) {
    __m256i a[8];
    for (int k = 0; k < 8; k++) a[k] = _mm256_setzero_si256();
    for (size_t i = 0; i + 256 <= n; i += 256)
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) a[k] = _mm256_xor_si256(a[k], _mm256_load_si256((const __m256i *)(p + i + 32 * k)));
    uint64_t x = 0;
    for (int k = 0; k < 8; k++) x ^= (uint64_t)_mm256_extract_epi64(a[k], 0) ^ (uint64_t)_mm256_extract_epi64(a[k], 3);
    return x;
}
#endif

static uint64_t read_scalar(const uint8_t *p, size_t n) {
    uint64_t a = 0;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        a ^= v;
    }
    return a;
}

/* Whether this CPU can run the method's loop (BW_PLAIN256 always runs: the scalar loop stands
 * in without AVX2). */
static bool bw_method_ok(int method) {
#if HAVE_X86
    if (method != BW_PLAIN256) return __builtin_cpu_supports("avx512f");
    return true;
#else
    return method == BW_PLAIN256;
#endif
}

static void bw_task(void *ctx, int task, int n_tasks) {
    bw_job *j = ctx;
    /* contiguous shares, 4 KiB aligned */
    size_t per = (j->bytes / (size_t)n_tasks) & ~(size_t)4095;
    const uint8_t *p = j->buf + per * (size_t)task;
    size_t n = task == n_tasks - 1 ? j->bytes - per * (size_t)task : per;
    uint64_t s;
#if HAVE_X86
    if (j->method == BW_NT512) s = read_nt512(p, n);
    else if (j->method == BW_PLAIN512) s = read_plain512(p, n);
    else if (__builtin_cpu_supports("avx2")) s = read_plain256(p, n);
    else s = read_scalar(p, n);
#else
    s = read_scalar(p, n);
#endif
    j->sink[task % 64] ^= s;
}

double bench_read_bandwidth(s1c_pool *pool, size_t bytes, int reps) {
    enum { HUGE = 1 << 21 };
    bytes &= ~(size_t)4095;
    if (bytes == 0) return 0;
    bytes = (bytes + HUGE - 1) & ~(size_t)(HUGE - 1); /* aligned_alloc wants a multiple of the alignment */
    bw_job j = {aligned_alloc(HUGE, bytes), bytes, 0, {0}};
    if (!j.buf) return 0;
#ifdef MADV_HUGEPAGE
    (void)madvise((void *)j.buf, bytes, MADV_HUGEPAGE); /* a refusal only costs TLB misses */
#endif
    memset((void *)j.buf, 0x5a, bytes); /* fault every page in before timing */
    int T = s1c_pool_threads(pool);
    double best = 1e30;
    /* the methods interleaved in each round, so a noisy moment does not single one out */
    for (int r = 0; r < (reps > 0 ? reps : 1); r++)
        for (j.method = 0; j.method < BW_METHODS; j.method++) {
            if (!bw_method_ok(j.method)) continue;
            double t = s1c_now();
            if (pool && T > 1) s1c_pool_run(pool, T, bw_task, &j);
            else bw_task(&j, 0, 1);
            t = s1c_now() - t;
            if (t < best) best = t;
        }
    volatile uint64_t sink = j.sink[0];
    (void)sink;
    free((void *)j.buf);
    return (double)bytes / best;
}

/* ------------------------------------------------------------------ peaks */

enum { PEAK_ITERS = 1 << 20 };

typedef struct peak_job {
    double (*loop)(long iters); /* returns the operations it did */
    float sink[64];
} peak_job;

#if HAVE_X86
/* 12 named accumulators (an array with an asm barrier would live in memory) */
#define CHAINS12(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11)
#define DECL(i) V a##i = INIT(i);
#define STEP(i) a##i = OPER(a##i, x, y);
#define SUM(i) s = ADD(s, a##i);

#define V __m512
#define INIT(i) _mm512_set1_ps((float)(i))
#define OPER(a, x, y) _mm512_fmadd_ps(a, x, y)
#define ADD _mm512_add_ps
__attribute__((target("avx512f,fma"))) static double loop_f32_avx512(long iters) {
    __m512 x = _mm512_set1_ps(0.99999f), y = _mm512_set1_ps(1e-6f), s = _mm512_setzero_ps();
    CHAINS12(DECL)
    for (long k = 0; k < iters; k++) { CHAINS12(STEP) }
    CHAINS12(SUM)
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return 2.0 * 16 * 12 * (double)iters;
}
#undef V
#undef INIT
#undef OPER
#undef ADD

#define V __m256
#define INIT(i) _mm256_set1_ps((float)(i))
#define OPER(a, x, y) _mm256_fmadd_ps(a, x, y)
#define ADD _mm256_add_ps
__attribute__((target("avx2,fma"))) static double loop_f32_avx2(long iters) {
    __m256 x = _mm256_set1_ps(0.99999f), y = _mm256_set1_ps(1e-6f), s = _mm256_setzero_ps();
    CHAINS12(DECL)
    for (long k = 0; k < iters; k++) { CHAINS12(STEP) }
    CHAINS12(SUM)
    float out[8];
    _mm256_storeu_ps(out, s);
    volatile float sink = out[0];
    (void)sink;
    return 2.0 * 8 * 12 * (double)iters;
}
#undef V
#undef INIT
#undef OPER
#undef ADD

#define V __m512
#define INIT(i) _mm512_set1_ps((float)(i))
#define OPER(a, x, y) _mm512_dpbf16_ps(a, x, y)
#define ADD _mm512_add_ps
__attribute__((target("avx512f,avx512bf16"))) static double loop_bf16(long iters) {
    __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(2e-3f));
    __m512bh y = _mm512_cvtne2ps_pbh(_mm512_set1_ps(-1e-3f), _mm512_set1_ps(1e-3f));
    __m512 s = _mm512_setzero_ps();
    CHAINS12(DECL)
    for (long k = 0; k < iters; k++) { CHAINS12(STEP) }
    CHAINS12(SUM)
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return 2.0 * 32 * 12 * (double)iters;
}
#undef V
#undef INIT
#undef OPER
#undef ADD

#define V __m512i
#define INIT(i) _mm512_set1_epi32(i)
#define OPER(a, x, y) _mm512_dpbusd_epi32(a, x, y)
#define ADD _mm512_add_epi32
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static double loop_int8(long iters) {
    __m512i x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-2), s = _mm512_setzero_si512();
    CHAINS12(DECL)
    for (long k = 0; k < iters; k++) { CHAINS12(STEP) }
    CHAINS12(SUM)
    uint32_t lanes[16], fold = 0;
    _mm512_storeu_si512(lanes, s);
    for (int i = 0; i < 16; i++) fold ^= lanes[i]; /* (GCC's reduce_add adds signed lanes: UB on overflow) */
    volatile uint32_t sink = fold;
    (void)sink;
    return 2.0 * 64 * 12 * (double)iters;
}
#undef V
#undef INIT
#undef OPER
#undef ADD

#define V __m256i
#define INIT(i) _mm256_set1_epi32(i)
#define OPER(a, x, y) _mm256_dpbusd_avx_epi32(a, x, y)
#define ADD _mm256_add_epi32
__attribute__((target("avx2,avxvnni"))) static double loop_int8_avxvnni(long iters) {
    __m256i x = _mm256_set1_epi8(3), y = _mm256_set1_epi8(-2), s = _mm256_setzero_si256();
    CHAINS12(DECL)
    for (long k = 0; k < iters; k++) { CHAINS12(STEP) }
    CHAINS12(SUM)
    volatile int sink = _mm256_extract_epi32(s, 0);
    (void)sink;
    return 2.0 * 32 * 12 * (double)iters;
}
#undef OPER

/* AVX2 without VNNI: the packed tiles' step for 32 u8 x s8 products, vpmaddubsw then vpmaddwd
 * into an add (for Q8_0 a vpsignb too, left out: a ceiling). The products' inputs pass through an
 * empty asm each step so that the compiler neither hoists nor merges them. */
#define OPER(a, x, y) _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), ones))
__attribute__((target("avx2"))) static double loop_int8_avx2(long iters) {
    __m256i x = _mm256_set1_epi8(3), y = _mm256_set1_epi8(-2), s = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi16(1);
    CHAINS12(DECL)
    for (long k = 0; k < iters; k++) {
#define STEP_OPAQUE(i) __asm__ volatile("" : "+x"(x)); a##i = OPER(a##i, x, y);
        CHAINS12(STEP_OPAQUE)
#undef STEP_OPAQUE
    }
    CHAINS12(SUM)
    volatile int sink = _mm256_extract_epi32(s, 0);
    (void)sink;
    return 2.0 * 32 * 12 * (double)iters;
}
#undef V
#undef INIT
#undef OPER
#undef ADD
#endif

static double loop_f32_scalar(long iters) {
    float a[12];
    for (int i = 0; i < 12; i++) a[i] = (float)i;
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 12; i++) a[i] = a[i] * 0.99999f + 1e-6f;
    volatile float sink = a[3];
    (void)sink;
    return 2.0 * 12 * (double)iters;
}

static void peak_task(void *ctx, int task, int n_tasks) {
    (void)n_tasks;
    peak_job *j = ctx;
    j->sink[task % 64] = (float)j->loop(PEAK_ITERS);
}

/* Operations per second of loop on every thread at once, best of 5. */
static double run_peak(s1c_pool *pool, double (*loop)(long)) {
    peak_job j = {loop, {0}};
    int T = s1c_pool_threads(pool);
    loop(PEAK_ITERS / 16); /* warm up (clocks, the code page) */
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t = s1c_now();
        if (pool && T > 1) s1c_pool_run(pool, T, peak_task, &j);
        else peak_task(&j, 0, 1);
        t = s1c_now() - t;
        if (t < best) best = t;
    }
    return (double)T * loop(1) * PEAK_ITERS / best; /* loop(1): the operations of one iteration */
}

/* The peaks follow the kernel family in use (kern_family: S1C_KERNELS or the CPU's best), since a
 * fraction of a peak the kernels cannot reach says nothing: with avx2 (a laptop, or
 * S1C_KERNELS=avx2 here) f32 is 256-bit FMA, bf16 none (its weights are widened to f32: the f32
 * peak serves), int8 the AVX2 tiles' instructions. */

double bench_peak_f32(s1c_pool *pool, const char **isa) {
#if HAVE_X86
    if (kern_family() == KERN_AVX512 && __builtin_cpu_supports("avx512f")) { if (isa) *isa = "avx512"; return run_peak(pool, loop_f32_avx512); }
    if (kern_family() != KERN_REF && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        if (isa) *isa = "avx2";
        return run_peak(pool, loop_f32_avx2);
    }
#endif
    if (isa) *isa = "scalar";
    return run_peak(pool, loop_f32_scalar);
}

double bench_peak_bf16(s1c_pool *pool) {
#if HAVE_X86
    if (kern_family() == KERN_AVX512 && kern_avx512bf16_supported()) return run_peak(pool, loop_bf16);
#endif
    (void)pool;
    return 0;
}

double bench_peak_amx_bf16(s1c_pool *pool) {
    if (kern_family() == KERN_AVX512 && pk_amx_on()) return run_peak(pool, pk_amx_bf16_peak_loop);
    (void)pool;
    return 0;
}

double bench_peak_amx_int8(s1c_pool *pool) {
    if (kern_packed_amx_int8_rows(S1C_Q4_0) > 0) return run_peak(pool, pk_amx_int8_peak_loop);
    (void)pool;
    return 0;
}

double bench_peak_int8(s1c_pool *pool, const char **isa) {
    if (isa) *isa = "none";
#if HAVE_X86
    if (kern_family() == KERN_AVX512 && kern_avx512vnni_supported()) {
        if (isa) *isa = "avx512vnni";
        return run_peak(pool, loop_int8);
    }
    /* the avx2 family's tiles, and an AVX-512 CPU's without VNNI (packed.c: avx2_tiles) */
    if (kern_family() != KERN_REF && kern_avx2_supported()) {
        if (isa) *isa = kern_cpu_has_avxvnni() ? "avxvnni" : "avx2";
        return run_peak(pool, kern_cpu_has_avxvnni() ? loop_int8_avxvnni : loop_int8_avx2);
    }
#endif
    (void)pool;
    return 0;
}

void bench_measure_limits(bench_limits *l, s1c_pool *pool, size_t bw_bytes, int bw_reps) {
    l->threads = s1c_pool_threads(pool);
    l->read_bytes_s = bench_read_bandwidth(pool, bw_bytes, bw_reps);
    l->f32_flops = bench_peak_f32(pool, &l->isa);
    l->bf16_flops = bench_peak_bf16(pool);
    l->int8_ops = bench_peak_int8(pool, &l->int8_isa);
    l->amx_bf16_flops = bench_peak_amx_bf16(pool);
    l->amx_int8_ops = bench_peak_amx_int8(pool);
}

static bool grow(double *best, double now) {
    if (!(now > *best)) return false;
    *best = now;
    return true;
}

bool bench_limits_keep_best(bench_limits *best, const bench_limits *now) {
    bool g = grow(&best->read_bytes_s, now->read_bytes_s);
    g |= grow(&best->f32_flops, now->f32_flops);
    g |= grow(&best->bf16_flops, now->bf16_flops);
    g |= grow(&best->int8_ops, now->int8_ops);
    g |= grow(&best->amx_bf16_flops, now->amx_bf16_flops);
    g |= grow(&best->amx_int8_ops, now->amx_int8_ops);
    return g;
}
