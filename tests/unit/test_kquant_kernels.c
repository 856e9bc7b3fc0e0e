/* Q4_K / Q5_K / Q6_K matrices read in place: the reference quantized matmul (qmatmul.c) against
 * the dequantized f32 product, the packed AVX-512 kernels against the reference (bitwise: they
 * perform the reference's operations lane by lane), batch and thread invariance (bitwise), the
 * fused multi-matrix pass over mixed quantized types, and a tiny Qwen2 GGUF whose every matrix is
 * a K-quant (token embeddings included), run end to end.
 *
 * Weights are random super-blocks: any bytes are a valid block once the f16 scales are finite,
 * so the codes, 6-bit scales/mins and int8 scales cover their whole ranges (extremes included:
 * one block of all-maximal codes and scales checks that the integer sums cannot overflow).
 *
 * Reference vs f32: both use the same (exactly dequantized) weights; the reference moves each
 * activation by at most half a quantization step (max|x|_block / 254) and rounds its per-block
 * float steps, so |q - f32| <= sum_j |w_j| amax_block(j) / 254 * (1 + 1e-3)
 *                              + 4 (n / 32 + 2) FLT_EPSILON sum_j |w_j| (|x_j| + amax_block(j) / 254). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/modelbench.h"
#include "kernels/kern_internal.h"
#include "kernels/kernels.h"
#include "model/model_internal.h"
#include "kerntest.h"
#include "modelrun.h"
#include "testutil.h"

static const int ktypes[] = {S1C_Q4_K, S1C_Q5_K, S1C_Q6_K};

static void put_f16(uint8_t *p, float f) {
    uint16_t h = s1c_f32_to_f16(f);
    memcpy(p, &h, 2);
}

/* One random super-block of dtype at blk, weights up to about amp in magnitude; extreme: every
 * code, scale and min at its maximum. */
static void random_block(s1c_rng *r, int dtype, uint8_t *blk, bool extreme, float amp) {
    size_t ts = (size_t)s1c_dtype_type_size(dtype);
    for (size_t i = 0; i < ts; i++) blk[i] = extreme ? 0xff : (uint8_t)s1c_rng_u64(r);
    float u = (float)(s1c_rng_u64(r) % 1000) / 1000.0f, sign = s1c_rng_u64(r) & 1 ? -1.0f : 1.0f;
    if (dtype == S1C_Q6_K) {
        if (extreme) memset(blk, 0, 192); /* codes 0: q - 32 = -32, the largest magnitude */
        if (extreme) memset(blk + 192, 0x80, 16); /* scales -128 */
        put_f16(blk + 208, sign * (0.5f + u) * amp / (128 * 32));
    } else {
        put_f16(blk, (0.5f + u) * amp / (63 * 15));
        put_f16(blk + 2, sign * (0.5f + u) * amp / (63 * 15 * 2));
    }
}

/* W [d][n] of dtype (random blocks; block `extreme_at` at its extremes, if in range) and its
 * dequantized copy. */
static uint8_t *make_kq(s1c_rng *r, int dtype, int n, int d, float **deq, long extreme_at) {
    size_t ts = (size_t)s1c_dtype_type_size(dtype), nb = (size_t)n / 256 * (size_t)d;
    uint8_t *w = malloc(nb * ts);
    /* weights of about N(0, 1/n) size, so a model's activations stay O(1) */
    for (size_t b = 0; b < nb; b++) random_block(r, dtype, w + b * ts, (long)b == extreme_at, 3.0f / sqrtf((float)n));
    *deq = malloc((size_t)n * d * sizeof(float));
    s1c_err err;
    assert_int_equal(s1c_dequantize(*deq, w, dtype, (uint64_t)n * d, &err), 0);
    return w;
}

/* make_kq with no extreme block: the mr_matrix_fn the shared helpers take */
static uint8_t *make_plain(s1c_rng *r, int dt, int n, int d, float **deq) { return make_kq(r, dt, n, d, deq, -1); }

static const char *tn(int dtype) { return s1c_dtype_name(dtype); }

static void test_ref_vs_f32(void **state) {
    (void)state;
    static const int shapes[][3] = {{256, 1, 1}, {256, 5, 3}, {512, 7, 2}, {1024, 3, 4}, {2304, 2, 1}};
    s1c_rng r;
    s1c_rng_seed(&r, 7);
    for (int ti = 0; ti < 3; ti++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            int n = shapes[s][0], d = shapes[s][1], M = shapes[s][2], dt = ktypes[ti];
            float *deq;
            uint8_t *w = make_kq(&r, dt, n, d, &deq, 1);
            float *x = kt_randv(&r, (size_t)M * n, 1.0f);
            if (s == 1) memset(x + 32, 0, 32 * sizeof(float)); /* an all-zero activation block: scale 0 */
            float *q = malloc((size_t)M * d * sizeof(float)), *f = malloc((size_t)M * d * sizeof(float));
            kern_ref_matmul(q, x, M, w, dt, n, d);
            kern_ref_matmul(f, x, M, deq, S1C_F32, n, d);
            for (int t = 0; t < M; t++)
                for (int i = 0; i < d; i++) {
                    const float *xt = x + (size_t)t * n, *wi = deq + (size_t)i * n;
                    double qerr = 0, mag = 0;
                    for (int j = 0; j < n; j++) {
                        double am = 0;
                        for (int k = j / 32 * 32; k < j / 32 * 32 + 32; k++) am = fmax(am, fabs(xt[k]));
                        qerr += fabs(wi[j]) * am / 254.0;
                        mag += fabs(wi[j]) * (fabs(xt[j]) + am / 254.0);
                    }
                    double tol = qerr * (1 + 1e-3) + 4.0 * (n / 32 + 2) * FLT_EPSILON * mag, diff = fabs((double)q[(size_t)t * d + i] - f[(size_t)t * d + i]);
                    if (!(diff <= tol)) fail_msg("%s n=%d d=%d M=%d [%d][%d]: |q - f32| = %.3g > %.3g", tn(dt), n, d, M, t, i, diff, tol);
                }
            free(w), free(deq), free(x), free(q), free(f);
        }
}

/* One shape through the packed kernel with 1 and 2 threads, against the reference (bitwise) and
 * each row against its own 1-row call (bitwise). */
static void check_packed(s1c_rng *r, int dt, int M, int n, int d, s1c_pool *pool2) {
    float *deq;
    uint8_t *w = make_kq(r, dt, n, d, &deq, (long)(s1c_rng_u64(r) % 4));
    float *x = kt_randv(r, (size_t)M * n, 1.0f);
    for (int t = 1; t < M; t += 2) /* every other row's blocks at +-127: the integer sums' worst case */
        for (int i = 0; i < n; i++) x[(size_t)t * n + i] = s1c_rng_u64(r) & 1 ? 1.0f : -1.0f;
    kern_packed *p;
    s1c_err err;
    assert_int_equal(kern_pack(&p, w, dt, n, d, 0, &err), 0);
    assert_non_null(p);
    size_t sz = (size_t)M * d * sizeof(float);
    float *ref = malloc(sz), *one = malloc(sz), *two = malloc(sz), *row = malloc((size_t)d * sizeof(float));
    kern_ref_matmul(ref, x, M, w, dt, n, d);
    kern_matmul_packed(NULL, one, x, M, p, NULL);
    kern_matmul_packed(pool2, two, x, M, p, NULL);
    for (size_t i = 0; i < (size_t)M * d; i++)
        if (memcmp(&one[i], &ref[i], sizeof(float)) != 0)
            fail_msg("%s M=%d n=%d d=%d: packed [%zu][%zu] = %.9g, reference %.9g", tn(dt), M, n, d, i / (size_t)d, i % (size_t)d, one[i], ref[i]);
    if (memcmp(one, two, sz) != 0) fail_msg("%s M=%d n=%d d=%d: 1 and 2 threads differ", tn(dt), M, n, d);
    for (int t = 0; t < M; t += M > 8 ? 7 : 1) {
        kern_matmul_packed(NULL, row, x + (size_t)t * n, 1, p, NULL);
        if (memcmp(row, one + (size_t)t * d, (size_t)d * sizeof(float)) != 0) fail_msg("%s M=%d n=%d d=%d: row %d alone differs", tn(dt), M, n, d, t);
    }
    kern_packed_free(p);
    free(w), free(deq), free(x), free(ref), free(one), free(two), free(row);
}

/* Under each family that packs K-quants: avx512 (VNNI), avx2 with AVX-VNNI where the CPU has it and
 * avx2 without (packed_avx2.c). */
static void test_packed_vs_ref(void **state) {
    (void)state;
    s1c_pool *pool2 = kt_pool(2);
    /* odd output counts (partial panels), k of 1..17 super-blocks, every tile height */
    static const int shapes[][3] = {{1, 256, 1}, {1, 256, 17}, {2, 512, 33}, {3, 768, 16}, {4, 1024, 15}, {5, 256, 47},
                                    {7, 1280, 31}, {13, 512, 49}, {1, 4352, 37}, {40, 256, 19}, {17, 2048, 9}, {6, 4096, 33}};
    static const struct { const char *family; int vnni; } runs[] = {{"avx512", -1}, {"avx2", 1}, {"avx2", 0}};
    int done = 0;
    for (size_t k = 0; k < sizeof runs / sizeof *runs; k++) {
        if (kern_select(runs[k].family) != 0) continue;
        if (!pk_avx2_vnni(runs[k].vnni) && runs[k].vnni == 1) continue; /* no AVX-VNNI here */
        s1c_rng r;
        s1c_rng_seed(&r, 11);
        for (int ti = 0; ti < 3; ti++) {
            if (!kt_have_packed(ktypes[ti])) continue;
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) check_packed(&r, ktypes[ti], shapes[s][0], shapes[s][1], shapes[s][2], pool2);
            done++;
        }
    }
    pk_avx2_vnni(-1);
    kern_select("auto");
    if (!done) print_message("no packed K-quant kernels on this CPU: reference only\n");
    s1c_pool_free(pool2);
}

/* The unpacked path of every family (kern_matmul, kern_matmul_mt) is the reference's rows. */
static void test_families_rowmajor(void **state) {
    (void)state;
    kt_check_families_rowmajor(ktypes, 3, 512, make_plain);
}

/* make_kq with its first block at the extremes (the integer sums' worst case) */
static uint8_t *make_extreme(s1c_rng *r, int dt, int n, int d, float **deq) { return make_kq(r, dt, n, d, deq, 0); }

/* The AVX2 family's rows: runs of super-blocks (1280 = 4 + 1 of them), groups of 8 rows and
 * their tails, more activation rows than its stack buffer holds (70), a block at its extremes. */
static void test_avx2_rows(void **state) {
    (void)state;
    static const int shapes[][3] = {{256, 1, 1}, {512, 9, 3}, {1280, 37, 70}, {2304, 16, 2}};
    kt_check_avx2_rows(ktypes, 3, shapes, 4, make_plain);
    kt_check_avx2_rows(ktypes, 3, shapes, 2, make_extreme);
}

/* q, k, v of different quantized types in one fused pass: each as its own call would give it. */
static void test_packed_n_mixed(void **state) {
    (void)state;
    kern_select("auto");
    if (!kt_have_packed(S1C_Q4_K)) skip();
    s1c_pool *pool2 = kt_pool(2);
    s1c_rng r;
    s1c_rng_seed(&r, 17);
    int n = 768, ds[4] = {33, 16, 16, 20}, M = 6;
    float *deq[4];
    void *w[4];
    for (int i = 0; i < 3; i++) w[i] = make_kq(&r, ktypes[i], n, ds[i], &deq[i], -1);
    /* and a Q8_0 matrix: one activation format for all of them */
    uint64_t qb;
    assert_int_equal(s1c_dtype_nbytes(S1C_Q8_0, (uint64_t)n * ds[3], &qb), 0);
    deq[3] = kt_randv(&r, (size_t)n * ds[3], 0.05f);
    w[3] = malloc(qb);
    s1c_err err;
    assert_int_equal(s1c_quantize(w[3], deq[3], S1C_Q8_0, (uint64_t)n * ds[3], &err), 0);
    int dts[4] = {S1C_Q4_K, S1C_Q5_K, S1C_Q6_K, S1C_Q8_0};
    kern_packed *p[4];
    float *out[4], *alone[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(kern_pack(&p[i], w[i], dts[i], n, ds[i], 0, &err), 0);
        assert_non_null(p[i]);
        out[i] = malloc((size_t)M * ds[i] * sizeof(float));
        alone[i] = malloc((size_t)M * ds[i] * sizeof(float));
    }
    float *x = kt_randv(&r, (size_t)M * n, 1.0f);
    kern_ws ws = {0};
    kern_matmul_packed_n(pool2, 4, out, x, M, (const kern_packed *const *)p, &ws);
    for (int i = 0; i < 4; i++) {
        kern_matmul_packed(NULL, alone[i], x, M, p[i], NULL);
        if (memcmp(out[i], alone[i], (size_t)M * ds[i] * sizeof(float)) != 0) fail_msg("fused pass: matrix %d (%s) differs from its own call", i, tn(dts[i]));
    }
    kern_ws_free(&ws);
    for (int i = 0; i < 4; i++) {
        kern_packed_free(p[i]);
        free(w[i]), free(deq[i]), free(out[i]), free(alone[i]);
    }
    free(x);
    s1c_pool_free(pool2);
}

/* ------------------------------------------------------------------ a tiny K-quant model */

enum { E = 256, F = 512, L = 2, H = 4, KVH = 2, HD = 64, V = 300 };

/* A qwen2 GGUF with every matrix of type dt (token embeddings too), F32 norms and biases;
 * f32: the same weights dequantized, written as F32. */
static void write_model(const char *path, int dt, bool f32, uint64_t seed) {
    mr_shape s = {E, F, L, H, KVH, HD, V};
    mr_write_qwen2(path, &s, dt, f32, seed, make_plain);
}

/* Logits of every row of tokens[0..n), fed as one prefill (whole) or one token at a time. */
static float *run_model(const char *path, const int32_t *tokens, int n, bool whole) {
    int vocab = 0;
    float *logits = mr_model_logits(path, tokens, n, !whole, &vocab);
    assert_non_null(logits);
    assert_int_equal(vocab, V);
    return logits;
}

static void test_model(void **state) {
    (void)state;
    kern_select("auto");
    int32_t tokens[12];
    for (int i = 0; i < 12; i++) tokens[i] = (i * 37 + 11) % V;
    size_t n = (size_t)12 * V;
    for (int ti = 0; ti < 3; ti++) {
        int dt = ktypes[ti];
        char *q = tu_path("S1C_TMP", "kq_model.gguf"), *f = tu_path("S1C_TMP", "kq_model_f32.gguf");
        write_model(q, dt, false, 100 + (uint64_t)ti);
        write_model(f, dt, true, 100 + (uint64_t)ti);
        /* the matrices stay in their file type (no f32 copies) */
        s1c_err err;
        s1c_model *m;
        if (s1c_model_open(&m, q, &err) != 0) fail_msg("%s", err.msg);
        assert_int_equal(s1c_model_weight_dtype(m), dt);
        assert_int_equal(m->n_deq, 0);
        assert_int_equal(m->layers[1].w_down->dtype, dt);
        s1c_model_free(m);
        float *pre = run_model(q, tokens, 12, true), *dec = run_model(q, tokens, 12, false), *lf = run_model(f, tokens, 12, true);
        if (memcmp(pre, dec, n * sizeof(float)) != 0) fail_msg("%s model: prefill and token-by-token decode differ", tn(dt));
        /* without packing (the reference rows): the same matrices' results bitwise, so the same logits */
        setenv("S1C_PACK", "0", 1);
        float *unp = run_model(q, tokens, 12, true);
        unsetenv("S1C_PACK");
        if (strcmp(kern_name(), "avx512") == 0 && memcmp(pre, unp, n * sizeof(float)) != 0)
            fail_msg("%s model: packed and unpacked logits differ", tn(dt));
        double lo = 1e30, hi = -1e30, maxdiff = 0;
        for (size_t i = 0; i < n; i++) {
            lo = fmin(lo, lf[i]), hi = fmax(hi, lf[i]);
            maxdiff = fmax(maxdiff, fabs((double)pre[i] - lf[i]));
        }
        printf("%s model: max logit difference to the f32 weights %.4g, spread %.4g\n", tn(dt), maxdiff, hi - lo);
        if (!(maxdiff <= 0.05 * (hi - lo)) || maxdiff == 0)
            fail_msg("%s model: max logit difference %.4g vs spread %.4g", tn(dt), maxdiff, hi - lo);
        free(pre), free(dec), free(lf), free(unp), free(q), free(f);
    }
}

/* s1c bench's random K-quant models (written directly, no quantizer): every matrix whose rows are
 * whole super-blocks in the type asked for, the rest Q8_0 (rows of 32s) or F32; they load with no
 * f32 copies and run. */
static void test_bench_model(void **state) {
    (void)state;
    kern_select("auto");
    s1c_err err;
    s1c_config c;
    assert_int_equal(s1c_config_preset(&c, "qwen2", "tiny", &err), 0);
    c.dim = 256, c.hidden_dim = 544, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 64, c.vocab_size = V;
    for (int ti = 0; ti < 3; ti++) {
        char *tmp = tu_path("S1C_TMP", ""), *dir, *path;
        if (bench_make_model(&c, ktypes[ti], tmp, &dir, &path, &err) != 0) fail_msg("%s", err.msg);
        s1c_model *m;
        if (s1c_model_open(&m, path, &err) != 0) fail_msg("%s", err.msg);
        assert_int_equal(m->n_deq, 0);
        assert_int_equal(m->tok_embd->dtype, ktypes[ti]);
        assert_int_equal(m->layers[0].wq->dtype, ktypes[ti]);
        assert_int_equal(m->layers[1].w_down->dtype, S1C_Q8_0); /* rows of 544: 17 blocks of 32 */
        assert_int_equal(bench_model_dtype(m), ktypes[ti]);
        s1c_model_free(m);
        int32_t tokens[5] = {1, 7, 299, 2, 9};
        float *lg = run_model(path, tokens, 5, true);
        for (size_t i = 0; i < (size_t)5 * V; i++)
            if (!isfinite(lg[i])) fail_msg("%s bench model: logit %zu is %g", tn(ktypes[ti]), i, lg[i]);
        free(lg);
        bench_remove_dir(dir);
        free(dir), free(path), free(tmp);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_vs_f32),
        cmocka_unit_test(test_packed_vs_ref),
        cmocka_unit_test(test_families_rowmajor),
        cmocka_unit_test(test_avx2_rows),
        cmocka_unit_test(test_packed_n_mixed),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_bench_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
