/* The packed multi-row kernels (kern_pack / kern_matmul_packed) against the scalar reference on
 * random and odd shapes, and their batch invariance.
 *
 * Shapes: rows M in {1, 2, 3, 7, 31, 64, 513} (tiles of 6 or 4 rows plus every tail), outputs d
 * not a multiple of the 16-row panel or of the 4-panel group, and k with tails (odd n for BF16's
 * k-pairs, k slices of 128 plus a rest). Tolerances against kern_ref_matmul, with
 * S = sum_j |w_j x_j|:
 *   F32: different summation order only: n * FLT_EPSILON * S.
 *   BF16: the weights widened exactly, so the result is bitwise the F32 kernel's on the widened
 *         matrix (checked), and as F32 against the reference.
 *   BF16 with KERN_PACK_BF16_DOT: the kernel rounds the activations to bf16 (as llama.cpp), so
 *         the reference is run on bf16-rounded x; then as F32 (vdpbf16ps keeps f32 accumulation).
 *   Q8_0/Q4_0: both quantize the activations the same way and compute each block's integer dot
 *         exactly; only the adding of scaled block sums differs: (n/32 + 2) * FLT_EPSILON * S'
 *         with S' = sum_j |w_j| (|x_j| + max|x|_block / 254).
 * Batch invariance, bitwise: each row of an M-row call equals the same row in a 1-row call, for
 * 1, 2 and 3 threads (one row on quantized weights runs other tiles: 1 row x 1 panel, the Q4_0
 * high nibbles in a second accumulator; several matrices in one call, split by single panels). Skipped (with a message) where the CPU has no packed kernel.
 * All of it under each family that packs: avx512 (every type; with and without the AMX BF16 tile
 * where the CPU has AMX) and avx2 (F32, BF16 widened, Q8_0, Q4_0; its tiles also bitwise against
 * avx512's: test_packed_families). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kern_internal.h"
#include "kernels/kernels.h"
#include "testutil.h"

/* The family the tests run under (main runs them for each), and whether with the AMX tiles */
static const char *family = "auto";
static bool amx_group;

/* (dtype, kern_pack flags) */
static const int types[][2] = {{S1C_F32, 0}, {S1C_BF16, 0}, {S1C_BF16, KERN_PACK_BF16_DOT}, {S1C_Q8_0, 0}, {S1C_Q4_0, 0}};

static float *randv(s1c_rng *r, size_t n, float scale) {
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = scale * s1c_rng_normal(r);
    return v;
}

/* Random W [d][n] stored as dtype, and the f32 values it stands for. */
static void *make_w(s1c_rng *r, int dtype, int n, int d, float **deq) {
    float *w = randv(r, (size_t)n * d, 1.0f);
    uint64_t bytes;
    assert_int_equal(s1c_dtype_nbytes(dtype, (uint64_t)n * d, &bytes), 0);
    void *q = malloc(bytes);
    s1c_err err;
    if (dtype == S1C_F32) memcpy(q, w, bytes);
    else if (dtype == S1C_BF16)
        for (size_t i = 0; i < (size_t)n * d; i++) ((uint16_t *)q)[i] = s1c_f32_to_bf16(w[i]);
    else assert_int_equal(s1c_quantize(q, w, dtype, (uint64_t)n * d, &err), 0);
    *deq = malloc((size_t)n * d * sizeof(float));
    assert_int_equal(s1c_dequantize(*deq, q, dtype, (uint64_t)n * d, &err), 0);
    free(w);
    return q;
}

/* max|x| over each 32-block of a row (the activations' quantization step), per element */
static void block_amax(const float *x, int n, double *out) {
    for (int b = 0; b < n; b += 32) {
        double a = 0;
        for (int i = b; i < b + 32 && i < n; i++) a = fmax(a, fabs(x[i]));
        for (int i = b; i < b + 32 && i < n; i++) out[i] = a;
    }
}

/* |got - ref| within the tolerance above for every output. */
static void check_close(int dtype, const float *got, const float *ref, const float *x, const float *w, int M, int n, int d) {
    bool q = dtype == S1C_Q8_0 || dtype == S1C_Q4_0;
    double *ax = malloc((size_t)n * sizeof(double));
    for (int t = 0; t < M; t++) {
        const float *xr = x + (size_t)t * n;
        block_amax(xr, n, ax);
        for (int j = 0; j < n; j++) ax[j] = fabs(xr[j]) + (q ? ax[j] / 254.0 : 0);
        for (int i = 0; i < d; i++) {
            const float *wr = w + (size_t)i * n;
            double s = 0;
            for (int j = 0; j < n; j++) s += fabs(wr[j]) * ax[j];
            double tol = (q ? n / 32.0 + 2 : n + 2) * FLT_EPSILON * s + 1e-30;
            double g = got[(size_t)t * d + i], e = ref[(size_t)t * d + i];
            if (!(fabs(g - e) <= tol)) fail_msg("%s M=%d n=%d d=%d: out[%d][%d] = %.9g, reference %.9g (tolerance %.3g)",
                                                s1c_dtype_name(dtype), M, n, d, t, i, g, e, tol);
        }
    }
    free(ax);
}

static s1c_pool *pool_of(int threads) {
    s1c_pool *p = NULL;
    s1c_err err;
    if (threads > 1) assert_int_equal(s1c_pool_new(&p, threads, &err), 0);
    return p;
}

/* BF16 widened: bitwise the F32 kernel on the widened weights. */
static void same_as_f32(const float *got, const float *x, const float *wf, int M, int n, int d) {
    kern_packed *p;
    s1c_err err;
    assert_int_equal(kern_pack(&p, wf, S1C_F32, n, d, 0, &err), 0);
    float *o = malloc((size_t)M * d * sizeof(float));
    kern_matmul_packed(NULL, o, x, M, p, NULL);
    if (memcmp(o, got, (size_t)M * d * sizeof(float)) != 0) fail_msg("bf16 M=%d n=%d d=%d: differs from f32 on the widened weights", M, n, d);
    free(o);
    kern_packed_free(p);
}

/* One shape: against the reference, and row by row against 1-row calls, for 1-3 threads. */
static void check_shape(s1c_rng *r, int dtype, int flags, int M, int n, int d) {
    float *wf;
    void *w = make_w(r, dtype, n, d, &wf);
    float *x = randv(r, (size_t)M * n, 1.0f);
    kern_packed *p;
    s1c_err err;
    assert_int_equal(kern_pack(&p, w, dtype, n, d, flags, &err), 0);
    assert_non_null(p);
    bool dot = flags & KERN_PACK_BF16_DOT;
    /* the reference: quantized types on the same weights; float types on the f32 values (BF16
     * with the activations rounded as the kernel does) */
    float *xr = malloc((size_t)M * n * sizeof(float)), *ref = malloc((size_t)M * d * sizeof(float));
    for (size_t i = 0; i < (size_t)M * n; i++) xr[i] = dot ? s1c_bf16_to_f32(s1c_f32_to_bf16(x[i])) : x[i];
    if (dtype == S1C_Q8_0 || dtype == S1C_Q4_0) kern_ref_matmul(ref, xr, M, w, dtype, n, d);
    else kern_ref_matmul(ref, xr, M, wf, S1C_F32, n, d);
    float *one = malloc((size_t)d * sizeof(float)), *out = malloc((size_t)M * d * sizeof(float));
    for (int threads = 1; threads <= 3; threads++) {
        s1c_pool *pool = pool_of(threads);
        for (size_t i = 0; i < (size_t)M * d; i++) out[i] = NAN;
        kern_matmul_packed(pool, out, x, M, p, NULL);
        check_close(dtype, out, ref, xr, wf, M, n, d);
        if (dtype == S1C_BF16 && !dot && threads == 1) same_as_f32(out, x, wf, M, n, d);
        for (int t = 0; t < M; t += (M > 40 ? 37 : 1)) {
            kern_matmul_packed(pool, one, x + (size_t)t * n, 1, p, NULL);
            if (memcmp(one, out + (size_t)t * d, (size_t)d * sizeof(float)) != 0)
                fail_msg("%s M=%d n=%d d=%d threads=%d: row %d differs from the same row alone", s1c_dtype_name(dtype), M, n, d,
                         threads, t);
        }
        s1c_pool_free(pool);
    }
    kern_packed_free(p);
    free(one); free(out); free(ref); free(xr); free(x); free(w); free(wf);
}

static bool have_packed(int dtype, int flags) {
    kern_packed *p;
    s1c_err err;
    float w[32 * 16] = {0};
    uint64_t bytes;
    s1c_dtype_nbytes(dtype, 32 * 16, &bytes);
    void *q = calloc(1, bytes);
    assert_int_equal(kern_pack(&p, q, dtype, 32, 16, flags, &err), 0);
    (void)w;
    bool ok = p != NULL;
    kern_packed_free(p);
    free(q);
    if (!ok) printf("# %s%s: no packed kernel on this CPU (family %s), skipped\n", s1c_dtype_name(dtype), flags ? " (dot)" : "", kern_name());
    return ok;
}

static void test_packed_shapes(void **state) {
    (void)state;
    static const int rows[] = {1, 2, 3, 7, 31, 64, 513};
    static const int nds[][2] = {{32, 1}, {64, 17}, {96, 33}, {160, 47}, {288, 64}, {896, 80}};
    s1c_rng r;
    s1c_rng_seed(&r, 5);
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        if (!have_packed(types[ti][0], types[ti][1])) continue;
        for (size_t a = 0; a < sizeof rows / sizeof *rows; a++)
            for (size_t b = 0; b < sizeof nds / sizeof *nds; b++) {
                /* 513 rows only on the small shapes: the test stays in seconds under ASan */
                if (rows[a] > 64 && nds[b][0] * nds[b][1] > 96 * 33) continue;
                check_shape(&r, types[ti][0], types[ti][1], rows[a], nds[b][0], nds[b][1]);
            }
    }
}

/* Float types also take any n: k tails of 1..15 (F32) and odd n (BF16 pairs). */
static void test_packed_k_tails(void **state) {
    (void)state;
    static const int ns[] = {1, 3, 15, 17, 129, 257};
    s1c_rng r;
    s1c_rng_seed(&r, 6);
    for (int ti = 0; ti < 3; ti++) {
        if (!have_packed(types[ti][0], types[ti][1])) continue;
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++) {
            check_shape(&r, types[ti][0], types[ti][1], 7, ns[a], 21);
            check_shape(&r, types[ti][0], types[ti][1], 1, ns[a], 5);
        }
    }
}

/* Several matrices in one call: each output bitwise as its own call. */
static void test_packed_n(void **state) {
    (void)state;
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        int dt = types[ti][0], fl = types[ti][1];
        if (!have_packed(dt, fl)) continue;
        s1c_rng r;
        s1c_rng_seed(&r, 8);
        static const int ds[3] = {48, 17, 100};
        for (int M = 1; M <= 5; M += 4) { /* one row: the split by single panels across the matrices */
            int n = M == 1 ? 512 : 96; /* one row: enough work to split over the 2 threads */
            void *w[3];
            float *wf[3], *out[3], *one = malloc(100 * 5 * sizeof(float));
            kern_packed *p[3];
            s1c_err err;
            for (int i = 0; i < 3; i++) {
                w[i] = make_w(&r, dt, n, ds[i], &wf[i]);
                assert_int_equal(kern_pack(&p[i], w[i], dt, n, ds[i], fl, &err), 0);
                out[i] = malloc((size_t)M * ds[i] * sizeof(float));
            }
            float *x = randv(&r, (size_t)M * n, 1.0f);
            s1c_pool *pool = pool_of(2);
            kern_matmul_packed_n(pool, 3, out, x, M, (const kern_packed *const *)p, NULL);
            for (int i = 0; i < 3; i++) {
                kern_matmul_packed(NULL, one, x, M, p[i], NULL);
                assert_memory_equal(one, out[i], (size_t)M * ds[i] * sizeof(float));
                kern_packed_free(p[i]);
                free(w[i]); free(wf[i]); free(out[i]);
            }
            s1c_pool_free(pool);
            free(x); free(one);
        }
    }
}

/* Gate and up with the SwiGLU (kern_matmul_packed_glu) bitwise as the two matmuls and then
 * kern_swiglu over the whole output: rows of one (unfused), a tile and tails; outputs a panel
 * group's tail; k in one slice and in several (4832: 151 blocks); 1-3 threads; and a pair of
 * two types (unfused). */
static void check_glu(s1c_rng *r, int dt_gate, int dt_up, int flags, int M, int n, int d) {
    float *wf[2], *x = randv(r, (size_t)M * n, 1.0f);
    void *w[2] = {make_w(r, dt_gate, n, d, &wf[0]), make_w(r, dt_up, n, d, &wf[1])};
    kern_packed *p[2];
    s1c_err err;
    for (int i = 0; i < 2; i++) assert_int_equal(kern_pack(&p[i], w[i], i ? dt_up : dt_gate, n, d, flags, &err), 0);
    size_t sz = (size_t)M * d * sizeof(float);
    float *want[2] = {malloc(sz), malloc(sz)}, *got = malloc(sz), *scratch = malloc(sz);
    kern_matmul_packed_n(NULL, 2, want, x, M, (const kern_packed *const *)p, NULL);
    kern_swiglu(want[0], want[1], M * d);
    for (int threads = 1; threads <= 3; threads++) {
        s1c_pool *pool = pool_of(threads);
        memset(got, 0xff, sz);
        kern_matmul_packed_glu(pool, got, scratch, x, M, p[0], p[1], NULL);
        if (memcmp(got, want[0], sz) != 0)
            fail_msg("%s/%s M=%d n=%d d=%d threads=%d: the fused SwiGLU differs", s1c_dtype_name(dt_gate), s1c_dtype_name(dt_up), M, n,
                     d, threads);
        s1c_pool_free(pool);
    }
    for (int i = 0; i < 2; i++) {
        kern_packed_free(p[i]);
        free(w[i]); free(wf[i]); free(want[i]);
    }
    free(got); free(scratch); free(x);
}

static void test_packed_glu(void **state) {
    (void)state;
    s1c_rng r;
    s1c_rng_seed(&r, 14);
    static const int shapes[][3] = {{1, 96, 100}, {5, 96, 100}, {33, 160, 48}, {70, 64, 17}, {9, 4832, 40}};
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        if (!have_packed(types[ti][0], types[ti][1])) continue;
        for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
            check_glu(&r, types[ti][0], types[ti][0], types[ti][1], shapes[k][0], shapes[k][1], shapes[k][2]);
    }
    if (have_packed(S1C_Q8_0, 0) && have_packed(S1C_Q4_0, 0)) check_glu(&r, S1C_Q8_0, S1C_Q4_0, 0, 7, 96, 100);
}

/* Matrices of 2 MiB and more are packed on huge pages (advised; refused without transparent huge
 * pages): the same results there. Also k cut into slices that start at an odd block (4800: 150
 * blocks, slices of 75) and an odd block count (4832: 151), where a slice starts inside the
 * quantized types' pair records, for 1 row and for passes of several row tiles. */
static void test_packed_large(void **state) {
    (void)state;
    static const int shapes[][3] = {{S1C_F32, 512, 1030}, {S1C_Q8_0, 2048, 1030}, {S1C_Q4_0, 2048, 2050}, {S1C_Q8_0, 4800, 40},
                                    {S1C_Q4_0, 4800, 40},  {S1C_Q8_0, 4832, 24},   {S1C_Q4_0, 4832, 24}};
    s1c_rng r;
    s1c_rng_seed(&r, 10);
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        if (have_packed(shapes[i][0], 0)) {
            check_shape(&r, shapes[i][0], 0, 3, shapes[i][1], shapes[i][2]);
            if (shapes[i][1] > 4096) { /* the sliced ones: decode's one row and 13 rows (4 + 4 + 4 + 1) */
                check_shape(&r, shapes[i][0], 0, 1, shapes[i][1], shapes[i][2]);
                check_shape(&r, shapes[i][0], 0, 13, shapes[i][1], shapes[i][2]);
            }
        }
}

/* Blocks [0, nb) of a and b alike: values, scales and sums. */
static void same_q8x(const kern_q8x *a, const kern_q8x *b, size_t nb) {
    assert_memory_equal(a->q, b->q, nb * 32);
    assert_memory_equal(a->d, b->d, nb * sizeof(float));
    assert_memory_equal(a->s, b->s, nb * sizeof(int32_t));
    assert_memory_equal(a->h, b->h, nb * sizeof(int32_t));
    assert_memory_equal(a->m, b->m, nb * sizeof(float));
}

/* The activation quantizer (vectorized where the CPU allows) against the scalar loop, bitwise,
 * on random blocks and on blocks whose scaled values sit exactly on halves (roundf's ties go away
 * from zero, not to even) or are all zero. */
static void test_q8x_fill(void **state) {
    (void)state;
    enum { ROWS = 9, N = 256 };
    s1c_rng r;
    s1c_rng_seed(&r, 9);
    float *x = randv(&r, ROWS * N, 3.0f);
    for (int i = 0; i < N; i++) x[N + i] = i % 32 == 0 ? 127.0f : (float)(i % 64) - 31.5f; /* scale 1: ties */
    for (int i = 0; i < N; i++) x[2 * N + i] = 0.0f;
    for (int i = 0; i < N; i++) x[3 * N + i] = i % 32 == 5 ? -254.0f : (float)(i % 7) - 2.5f; /* scale 2 */
    kern_q8x a, b;
    kern_q8x_make(&a, x, ROWS, N);
    kern_q8x_make(&b, x, ROWS, N);
    kern_ref_q8x(&b, x, 0, (size_t)ROWS * N / 32);
    same_q8x(&a, &b, (size_t)ROWS * N / 32);
    /* ranges that start and end inside the vectorized code's groups of 16 blocks */
    static const size_t ranges[][2] = {{5, 58}, {16, 32}, {1, 15}, {40, 72}, {0, 17}};
    for (size_t k = 0; k < sizeof ranges / sizeof *ranges; k++) {
        memset(a.q, 0, (size_t)ROWS * N), memset(b.q, 0, (size_t)ROWS * N);
        kern_q8x_fill_blocks(&a, x, ranges[k][0], ranges[k][1]);
        kern_ref_q8x(&b, x, ranges[k][0], ranges[k][1]);
        assert_memory_equal(a.q, b.q, (size_t)ROWS * N);
        for (size_t i = ranges[k][0]; i < ranges[k][1]; i++) {
            assert_memory_equal(&a.d[i], &b.d[i], sizeof(float));
            assert_memory_equal(&a.m[i], &b.m[i], sizeof(float));
            assert_int_equal(a.s[i], b.s[i]);
            assert_int_equal(a.h[i], b.h[i]);
        }
    }
    /* the AVX2 quantizer (on CPUs without AVX-512) the same, bitwise */
    if (kern_avx2_supported()) {
        memset(a.q, 0, (size_t)ROWS * N);
        kern_avx2_q8x(&a, x, 0, (size_t)ROWS * N / 32);
        kern_ref_q8x(&b, x, 0, (size_t)ROWS * N / 32);
        same_q8x(&a, &b, (size_t)ROWS * N / 32);
    }
    kern_q8x_free(&a);
    kern_q8x_free(&b);
    free(x);
}

/* The BF16 dot kernels' activations (pk_bf16_pairs): every value as s1c_f32_to_bf16 rounds it
 * (ties to even, a NaN made quiet, denormals rounded, not flushed), 0 past an odd n, rows apart. */
static void test_bf16_pairs(void **state) {
    (void)state;
    if (!have_packed(S1C_BF16, KERN_PACK_BF16_DOT)) return;
    enum { ROWS = 3, N = 45, N2 = (N + 1) / 2 };
    static const uint32_t special[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x80008000u, 0x00018000u, 0x007fffffu,
                                       0x3f808000u, 0x3f818000u, 0x3f80ffffu, 0x7f7fffffu, 0x7f800000u, 0xff800000u,
                                       0x7f800001u, 0xffc00001u, 0x7fffffffu, 0x47ffffffu};
    s1c_rng r;
    s1c_rng_seed(&r, 13);
    float x[ROWS * N];
    for (int i = 0; i < ROWS * N; i++) {
        uint32_t b = i < (int)(sizeof special / sizeof *special) ? special[i] : (uint32_t)s1c_rng_u64(&r);
        memcpy(&x[i], &b, 4);
    }
    uint32_t got[ROWS * N2 + 1];
    got[ROWS * N2] = 0xdeadbeefu; /* nothing written past the rows */
    pk_bf16_pairs(got, x, N, N2, 0, ROWS);
    for (int t = 0; t < ROWS; t++)
        for (int j = 0; j < N2; j++) {
            uint32_t lo = s1c_f32_to_bf16(x[t * N + 2 * j]), hi = 2 * j + 1 < N ? s1c_f32_to_bf16(x[t * N + 2 * j + 1]) : 0;
            assert_int_equal(got[t * N2 + j], lo | hi << 16);
        }
    assert_int_equal(got[ROWS * N2], 0xdeadbeefu);
}

/* Random Q8_0 / Q4_0 rows from raw bytes (every code, Q8_0's -128 included) with scales of
 * 2^-8 (finite f16, exact products), and activations whose blocks quantize to +-127 (every
 * value of magnitude 1, random signs) or to a normal spread: the largest integer dots the AVX2
 * tiles' int16 steps must hold. */
static void *raw_q(s1c_rng *r, int dtype, int n, int d) {
    size_t bb = dtype == S1C_Q4_0 ? 18 : 34, bytes = (size_t)d * (size_t)(n / 32) * bb;
    uint8_t *w = malloc(bytes);
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)s1c_rng_u64(r);
    for (size_t b = 0; b < bytes; b += bb) w[b] = 0x00, w[b + 1] = 0x1c; /* f16 2^-8 */
    return w;
}

/* The avx2 family's packed tiles against the avx512 family's on one packed copy: the same bits
 * (packed_avx2.c), Q8_0/Q4_0 with AVX2 alone and with AVX-VNNI where the CPU has it, for 1-2 threads, one row (both halves of a panel in one pass) and batches
 * (6-row float tiles, 4-row quantized tiles of one half; tails), odd output counts (a half-empty
 * last panel), k in one slice and in several (4832: 151 blocks, 10 float slices; odd k for BF16's
 * pairs). Q8_0 / Q4_0 from raw bytes with activations at +-127 (raw_q). */
static void test_packed_families(void **state) {
    (void)state;
    if (strcmp(family, "avx512") != 0) return; /* once */
    if (!have_packed(S1C_Q8_0, 0) || !have_packed(S1C_F32, 0) || kern_select("avx2") != 0) {
        printf("# avx512 and avx2 packed kernels not both available here, skipped\n");
        kern_select(family);
        return;
    }
    static const int shapes[][3] = {{1, 96, 100}, {2, 96, 17}, {5, 160, 9}, {33, 64, 40}, {7, 33, 23}, {1, 4832, 24}, {13, 4832, 24}};
    static const int dts[] = {S1C_F32, S1C_BF16, S1C_Q8_0, S1C_Q4_0};
    s1c_rng r;
    s1c_rng_seed(&r, 15);
    for (int ti = 0; ti < 4; ti++)
        for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
            int dt = dts[ti], M = shapes[k][0], n = shapes[k][1], d = shapes[k][2];
            bool q = dt == S1C_Q8_0 || dt == S1C_Q4_0;
            if (q && n % 32 != 0) continue;
            float *wf = NULL;
            void *w = q ? raw_q(&r, dt, n, d) : make_w(&r, dt, n, d, &wf);
            float *x = randv(&r, (size_t)M * n, 1.0f);
            for (int t = 0; q && t < M; t += 2) /* every other row: blocks at +-127 */
                for (int j = 0; j < n; j++) x[(size_t)t * n + j] = s1c_rng_u64(&r) & 1 ? 1.0f : -1.0f;
            kern_packed *p;
            s1c_err err;
            assert_int_equal(kern_select("avx512"), 0);
            assert_int_equal(kern_pack(&p, w, dt, n, d, 0, &err), 0);
            size_t sz = (size_t)M * d * sizeof(float);
            float *a = malloc(sz), *b = malloc(sz);
            for (int threads = 1; threads <= 2; threads++)
                for (int vnni = 0; vnni <= 1; vnni++) { /* Q8_0/Q4_0 with and without AVX-VNNI */
                    if (!pk_avx2_vnni(vnni) && vnni) continue;
                    s1c_pool *pool = pool_of(threads);
                    assert_int_equal(kern_select("avx512"), 0);
                    kern_matmul_packed(pool, a, x, M, p, NULL);
                    assert_int_equal(kern_select("avx2"), 0);
                    memset(b, 0xff, sz);
                    kern_matmul_packed(pool, b, x, M, p, NULL);
                    if (memcmp(a, b, sz) != 0)
                        fail_msg("%s M=%d n=%d d=%d threads=%d vnni=%d: the avx2 tiles differ from the avx512 ones", s1c_dtype_name(dt), M, n,
                                 d, threads, vnni);
                    s1c_pool_free(pool);
                }
            pk_avx2_vnni(-1);
            kern_packed_free(p);
            free(a); free(b); free(w); free(wf); free(x);
        }
    assert_int_equal(kern_select(family), 0);
}

/* The AMX Q4_0 and Q8_0 tile (packed_amx.c; batches of 64 rows on) against the AVX-512 tile on one
 * packed copy: the same bits, for 1-2 threads, rows in row groups of 16 with tails (70: 32 + 32 + 6),
 * k in one slice of 5 blocks and in slices of 17 + 16 (1056), 31 + 30 (4832: 151 blocks, a
 * slice starting inside a pair record) and 30 (4800), odd panel counts (d 40: three panels, a
 * group of one; 17, 33: a partly used last panel). Activations at +-127 on every other row
 * (blocks of extreme sums; Q8_0's raw bytes include -128). Also check_shape on two of them (the
 * reference, rows alone). */
static void amx_q_matches(int dt) {
    if (!amx_group || !pk_amx_int8_on() || !have_packed(dt, 0)) {
        if (amx_group) printf("# no AMX-INT8 here: the %s tile was not tested\n", s1c_dtype_name(dt));
        return;
    }
    int from = kern_packed_amx_int8_rows(dt); /* every shape below has at least 64 rows */
    if (from <= 0 || from > 64) fail_msg("%s: the AMX tile takes batches from %d rows, not the 64 this test covers", s1c_dtype_name(dt), from);
    static const int shapes[][3] = {{96, 160, 17}, {70, 1056, 40}, {64, 4832, 24}, {65, 4800, 33}};
    s1c_rng r;
    s1c_rng_seed(&r, 21);
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        int M = shapes[k][0], n = shapes[k][1], d = shapes[k][2];
        void *w = raw_q(&r, dt, n, d);
        float *x = randv(&r, (size_t)M * n, 1.0f);
        for (int t = 0; t < M; t += 2)
            for (int j = 0; j < n; j++) x[(size_t)t * n + j] = s1c_rng_u64(&r) & 1 ? 1.0f : -1.0f;
        kern_packed *p;
        s1c_err err;
        assert_int_equal(kern_pack(&p, w, dt, n, d, 0, &err), 0);
        size_t sz = (size_t)M * d * sizeof(float);
        float *a = malloc(sz), *b = malloc(sz);
        for (int threads = 1; threads <= 2; threads++) {
            s1c_pool *pool = pool_of(threads);
            pk_amx(0);
            kern_matmul_packed(pool, a, x, M, p, NULL);
            pk_amx(1);
            memset(b, 0xff, sz);
            kern_matmul_packed(pool, b, x, M, p, NULL);
            if (memcmp(a, b, sz) != 0)
                fail_msg("%s M=%d n=%d d=%d threads=%d: the AMX tile differs from the AVX-512 one", s1c_dtype_name(dt), M, n, d, threads);
            s1c_pool_free(pool);
        }
        kern_packed_free(p);
        free(a); free(b); free(w); free(x);
    }
    check_shape(&r, dt, 0, 70, 1056, 40);
    check_shape(&r, dt, 0, 65, 4832, 24);
}

static void test_packed_amx_q4(void **state) {
    (void)state;
    amx_q_matches(S1C_Q4_0);
}

static void test_packed_amx_q8(void **state) {
    (void)state;
    amx_q_matches(S1C_Q8_0);
}

/* With another family selected, the packed matrix falls back to the row-major weights. */
static void test_packed_fallback(void **state) {
    (void)state;
    if (!have_packed(S1C_F32, 0)) return;
    s1c_rng r;
    s1c_rng_seed(&r, 7);
    float *wf;
    void *w = make_w(&r, S1C_F32, 64, 20, &wf);
    float *x = randv(&r, 3 * 64, 1.0f), out[3 * 20], ref[3 * 20];
    kern_packed *p;
    s1c_err err;
    assert_int_equal(kern_pack(&p, w, S1C_F32, 64, 20, 0, &err), 0);
    assert_int_equal(kern_select("ref"), 0);
    kern_matmul_packed(NULL, out, x, 3, p, NULL);
    kern_ref_matmul(ref, x, 3, w, S1C_F32, 64, 20);
    assert_memory_equal(out, ref, sizeof out);
    assert_int_equal(kern_select(family), 0);
    kern_packed_free(p);
    free(w); free(wf); free(x);
}

/* Every test once per family that packs (avx512, avx2), the family selected for the group; on
 * a CPU with AMX the avx512 group runs twice, with the AMX tiles (BF16, and Q4_0/Q8_0 from 64 rows; the
 * default there) and without them (the AVX-512 tiles). */
static int select_family(void **state) {
    (void)state;
    pk_amx(amx_group ? 1 : 0);
    return kern_select(family);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packed_shapes),
        cmocka_unit_test(test_packed_k_tails),
        cmocka_unit_test(test_packed_n),
        cmocka_unit_test(test_packed_glu),
        cmocka_unit_test(test_packed_large),
        cmocka_unit_test(test_q8x_fill),
        cmocka_unit_test(test_bf16_pairs),
        cmocka_unit_test(test_packed_fallback),
        cmocka_unit_test(test_packed_families),
        cmocka_unit_test(test_packed_amx_q4),
        cmocka_unit_test(test_packed_amx_q8),
    };
    static const char *families[] = {"avx512", "avx512", "avx2"};
    static const char *names[] = {"avx512+amx", "avx512", "avx2"};
    bool have_amx = pk_amx(1);
    int failed = 0, ran = 0;
    for (int f = 0; f < 3; f++) {
        family = families[f];
        amx_group = f == 0;
        if (kern_select(family) != 0 || (amx_group && !have_amx)) continue;
        failed += cmocka_run_group_tests_name(names[f], tests, select_family, NULL);
        ran++;
    }
    if (!have_amx) printf("# no AMX on this CPU (or not allowed by the OS): the AMX tile was not tested\n");
    pk_amx(-1);
    if (!ran) { /* no packing family: the quantizer and fallback tests still run (the rest skip) */
        family = "auto";
        failed += cmocka_run_group_tests_name("auto", tests, select_family, NULL);
    }
    return failed;
}
