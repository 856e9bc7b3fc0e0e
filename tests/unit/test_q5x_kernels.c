/* Q4_1 / Q5_0 / Q5_1 matrices read in place: the reference quantized matmul (qmatmul.c) against
 * the dequantized f32 product, the packed AVX-512 kernels against the reference (bitwise: they
 * perform the reference's operations lane by lane), batch and thread invariance (bitwise), every
 * family's row-major path (the reference's bits), the fused multi-matrix pass over mixed
 * quantized types, a tiny Qwen2 GGUF whose every matrix is of one of these types run end to end,
 * and `s1c convert --type q4_k_m / q5_k_m` at a width that is not whole 256-blocks (llama.cpp's
 * Q5_0 / Q5_1 fallbacks) loading without f32 copies.
 *
 * Weights: half the blocks from s1c_quantize (ggml's rounding of random rows), half random bytes
 * (any bytes are a valid block once the f16 scales are finite: codes and fifth bits over their
 * whole range), and one block of all-maximal codes per matrix (the integer sums' extremes).
 *
 * Reference vs f32: both use the same (exactly dequantized) weights; the reference moves each
 * activation by at most half a quantization step (max|x|_block / 254) and rounds its per-block
 * float steps (Q4_1/Q5_1's min term m * (xd * xs) too, xd * xs rounded once), so
 *   |q - f32| <= sum_j |w_j| amax_block(j) / 254 * (1 + 1e-3)
 *              + 4 (n / 32 + 2) FLT_EPSILON (sum_j |w_j| (|x_j| + amax_block(j) / 254) + sum_b |m_b| xd_b |xs_b|). */
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

static const int qtypes[] = {S1C_Q4_1, S1C_Q5_0, S1C_Q5_1};

static const char *tn(int dtype) { return s1c_dtype_name(dtype); }

static void put_f16(uint8_t *p, float f) {
    uint16_t h = s1c_f32_to_f16(f);
    memcpy(p, &h, 2);
}

/* Block b of a [d][n] matrix of dtype overwritten with random bytes (extreme: every code and
 * fifth bit at its maximum), d and m about amp / 16 in size. */
static void random_block(s1c_rng *r, int dtype, uint8_t *blk, bool extreme, float amp) {
    size_t ts = (size_t)s1c_dtype_type_size(dtype);
    for (size_t i = 0; i < ts; i++) blk[i] = extreme ? 0xff : (uint8_t)s1c_rng_u64(r);
    float u = (float)(s1c_rng_u64(r) % 1000) / 1000.0f, sign = s1c_rng_u64(r) & 1 ? -1.0f : 1.0f;
    put_f16(blk, (0.5f + u) * amp / 16);
    if (dtype != S1C_Q5_0) put_f16(blk + 2, sign * (0.5f + u) * amp);
}

/* W [d][n] of dtype (see the top) and its dequantized copy. */
static uint8_t *make_w(s1c_rng *r, int dtype, int n, int d, float **deq) {
    size_t ts = (size_t)s1c_dtype_type_size(dtype), nb = (size_t)n / 32 * (size_t)d;
    float amp = 1.0f / sqrtf((float)n); /* weights of about N(0, 1/n): a model's activations stay O(1) */
    float *f = kt_randv(r, (size_t)n * d, amp);
    uint8_t *w = malloc(nb * ts);
    s1c_err err;
    assert_int_equal(s1c_quantize(w, f, dtype, (uint64_t)n * d, &err), 0);
    size_t extreme = (size_t)(s1c_rng_u64(r) % nb);
    for (size_t b = 0; b < nb; b++)
        if (b == extreme || s1c_rng_u64(r) % 2) random_block(r, dtype, w + b * ts, b == extreme, 3.0f * amp);
    free(f);
    *deq = malloc((size_t)n * d * sizeof(float));
    assert_int_equal(s1c_dequantize(*deq, w, dtype, (uint64_t)n * d, &err), 0);
    return w;
}

static float f16_of(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return s1c_f16_to_f32(h);
}

static void test_ref_vs_f32(void **state) {
    (void)state;
    static const int shapes[][3] = {{32, 1, 1}, {64, 5, 3}, {96, 7, 2}, {896, 3, 4}, {4864, 2, 1}, {1312, 3, 2}};
    s1c_rng r;
    s1c_rng_seed(&r, 7);
    for (int ti = 0; ti < 3; ti++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            int n = shapes[s][0], d = shapes[s][1], M = shapes[s][2], dt = qtypes[ti], nb = n / 32;
            float *deq;
            uint8_t *w = make_w(&r, dt, n, d, &deq);
            float *x = kt_randv(&r, (size_t)M * n, 1.0f);
            if (s == 1) memset(x + 32, 0, 32 * sizeof(float)); /* an all-zero activation block: scale 0 */
            float *q = malloc((size_t)M * d * sizeof(float)), *f = malloc((size_t)M * d * sizeof(float));
            kern_ref_matmul(q, x, M, w, dt, n, d);
            kern_ref_matmul(f, x, M, deq, S1C_F32, n, d);
            size_t ts = (size_t)s1c_dtype_type_size(dt);
            for (int t = 0; t < M; t++)
                for (int i = 0; i < d; i++) {
                    const float *xt = x + (size_t)t * n, *wi = deq + (size_t)i * n;
                    double qerr = 0, mag = 0;
                    for (int b = 0; b < nb; b++) {
                        double am = 0, xs = 0;
                        for (int k = 32 * b; k < 32 * b + 32; k++) am = fmax(am, fabs(xt[k]));
                        for (int k = 32 * b; k < 32 * b + 32; k++) {
                            qerr += fabs(wi[k]) * am / 254.0;
                            mag += fabs(wi[k]) * (fabs(xt[k]) + am / 254.0);
                            xs += fabs(xt[k]) * 127.0 / (am > 0 ? am : 1) + 0.5;
                        }
                        if (dt != S1C_Q5_0) mag += fabs(f16_of(w + ((size_t)i * nb + b) * ts + 2)) * am / 127.0 * xs;
                    }
                    double tol = qerr * (1 + 1e-3) + 4.0 * (nb + 2) * FLT_EPSILON * mag, diff = fabs((double)q[(size_t)t * d + i] - f[(size_t)t * d + i]);
                    if (!(diff <= tol)) fail_msg("%s n=%d d=%d M=%d [%d][%d]: |q - f32| = %.3g > %.3g", tn(dt), n, d, M, t, i, diff, tol);
                }
            free(w), free(deq), free(x), free(q), free(f);
        }
}

/* One shape through the packed kernel with 1, 2 and 3 threads, against the reference (bitwise)
 * and rows against their own 1-row call and a 2-row call (bitwise). */
static void check_packed(s1c_rng *r, int dt, int M, int n, int d, s1c_pool *pool2, s1c_pool *pool3) {
    float *deq;
    uint8_t *w = make_w(r, dt, n, d, &deq);
    float *x = kt_randv(r, (size_t)M * n, 1.0f);
    for (int t = 1; t < M; t += 2) /* every other row's blocks at +-127: the integer sums' worst case */
        for (int i = 0; i < n; i++) x[(size_t)t * n + i] = s1c_rng_u64(r) & 1 ? 1.0f : -1.0f;
    memset(x + (size_t)(M - 1) * n, 0, 32 * sizeof(float)); /* an all-zero activation block: scale 0 */
    kern_packed *p;
    s1c_err err;
    assert_int_equal(kern_pack(&p, w, dt, n, d, 0, &err), 0);
    assert_non_null(p);
    size_t sz = (size_t)M * d * sizeof(float);
    float *ref = malloc(sz), *one = malloc(sz), *two = malloc(sz), *row = malloc(2 * (size_t)d * sizeof(float));
    kern_ref_matmul(ref, x, M, w, dt, n, d);
    kern_matmul_packed(NULL, one, x, M, p, NULL);
    kern_matmul_packed(pool2, two, x, M, p, NULL);
    for (size_t i = 0; i < (size_t)M * d; i++)
        if (memcmp(&one[i], &ref[i], sizeof(float)) != 0)
            fail_msg("%s M=%d n=%d d=%d: packed [%zu][%zu] = %.9g, reference %.9g", tn(dt), M, n, d, i / (size_t)d, i % (size_t)d, one[i], ref[i]);
    if (memcmp(one, two, sz) != 0) fail_msg("%s M=%d n=%d d=%d: 1 and 2 threads differ", tn(dt), M, n, d);
    kern_matmul_packed(pool3, two, x, M, p, NULL);
    if (memcmp(one, two, sz) != 0) fail_msg("%s M=%d n=%d d=%d: 1 and 3 threads differ", tn(dt), M, n, d);
    for (int t = 0; t < M; t += M > 8 ? 7 : 1) {
        kern_matmul_packed(NULL, row, x + (size_t)t * n, 1, p, NULL);
        if (memcmp(row, one + (size_t)t * d, (size_t)d * sizeof(float)) != 0) fail_msg("%s M=%d n=%d d=%d: row %d alone differs", tn(dt), M, n, d, t);
        if (t + 1 < M) {
            kern_matmul_packed(pool2, row, x + (size_t)t * n, 2, p, NULL);
            if (memcmp(row, one + (size_t)t * d, 2 * (size_t)d * sizeof(float)) != 0) fail_msg("%s M=%d n=%d d=%d: rows %d, %d as a pair differ", tn(dt), M, n, d, t, t + 1);
        }
    }
    kern_packed_free(p);
    free(w), free(deq), free(x), free(ref), free(one), free(two), free(row);
}

/* Under each family that packs them: avx512 (VNNI), avx2 with AVX-VNNI where the CPU has it and
 * avx2 without (packed_avx2.c). */
static void test_packed_vs_ref(void **state) {
    (void)state;
    static const struct { const char *family; int vnni; } runs[] = {{"avx512", -1}, {"avx2", 1}, {"avx2", 0}};
    s1c_pool *pool2 = kt_pool(2), *pool3 = kt_pool(3);
    int done = 0;
    for (size_t k = 0; k < sizeof runs / sizeof *runs; k++) {
        if (kern_select(runs[k].family) != 0 || !kt_have_packed(S1C_Q5_0)) continue;
        if (!pk_avx2_vnni(runs[k].vnni) && runs[k].vnni == 1) continue; /* no AVX-VNNI here */
        done++;
        s1c_rng r;
        s1c_rng_seed(&r, 11);
        /* the 0.5B shapes' k (896, 4864), odd block counts, odd output counts (partial panels),
         * every tile height; then random shapes */
        static const int fixed[][3] = {{1, 896, 37}, {1, 4864, 17}, {4, 896, 33}, {1, 32, 1}, {3, 96, 15}, {40, 160, 19}, {13, 1056, 7}, {6, 4864, 3}};
        for (int ti = 0; ti < 3; ti++) {
            int dt = qtypes[ti];
            for (size_t s = 0; s < sizeof fixed / sizeof *fixed; s++) check_packed(&r, dt, fixed[s][0], fixed[s][1], fixed[s][2], pool2, pool3);
            for (int k2 = 0; k2 < 8; k2++) {
                int M = 1 + (int)(s1c_rng_u64(&r) % 40), n = 32 * (1 + (int)(s1c_rng_u64(&r) % 152)), d = 1 + (int)(s1c_rng_u64(&r) % 80);
                if (d % 16 == 0) d++;
                if (k2 < 3) M = 1; /* decode's tiles */
                check_packed(&r, dt, M, n, d, pool2, pool3);
            }
        }
    }
    pk_avx2_vnni(-1);
    kern_select("auto");
    s1c_pool_free(pool2);
    s1c_pool_free(pool3);
    if (!done) {
        print_message("no packed Q4_1/Q5_x kernels on this CPU: reference only\n");
        skip();
    }
}

/* The unpacked path of every family (kern_matmul, kern_matmul_mt) is the reference's rows. */
static void test_families_rowmajor(void **state) {
    (void)state;
    kt_check_families_rowmajor(qtypes, 3, 352, make_w);
}

/* The AVX2 family's rows: one block, runs of blocks (4864: 64 + 64 + 24), groups of 8 rows and
 * their tails, more activation rows than its stack buffer holds (70). */
static void test_avx2_rows(void **state) {
    (void)state;
    static const int shapes[][3] = {{32, 1, 1}, {4864, 9, 2}, {352, 37, 70}, {896, 16, 3}};
    kt_check_avx2_rows(qtypes, 3, shapes, 4, make_w);
}

/* A Q4_K_M layer's mixture in one fused pass (Q5_0 q, Q8_0 v, Q4_1, Q5_1, Q4_K): each matrix
 * as its own call would give it. */
static void test_packed_n_mixed(void **state) {
    (void)state;
    kern_select("auto");
    if (!kt_have_packed(S1C_Q5_0)) skip();
    s1c_pool *pool2 = kt_pool(2);
    s1c_rng r;
    s1c_rng_seed(&r, 17);
    enum { NM = 5 };
    int n = 768, ds[NM] = {33, 16, 20, 7, 18}, M = 6, dts[NM] = {S1C_Q5_0, S1C_Q8_0, S1C_Q4_1, S1C_Q5_1, S1C_Q4_K};
    float *deq[NM], *out[NM], *alone[NM];
    void *w[NM];
    kern_packed *p[NM];
    s1c_err err;
    for (int i = 0; i < NM; i++) {
        uint64_t qb;
        deq[i] = kt_randv(&r, (size_t)n * ds[i], 0.05f);
        assert_int_equal(s1c_dtype_nbytes(dts[i], (uint64_t)n * ds[i], &qb), 0);
        w[i] = malloc(qb);
        assert_int_equal(s1c_quantize(w[i], deq[i], dts[i], (uint64_t)n * ds[i], &err), 0);
        assert_int_equal(kern_pack(&p[i], w[i], dts[i], n, ds[i], 0, &err), 0);
        assert_non_null(p[i]);
        out[i] = malloc((size_t)M * ds[i] * sizeof(float));
        alone[i] = malloc((size_t)M * ds[i] * sizeof(float));
    }
    float *x = kt_randv(&r, (size_t)M * n, 1.0f);
    kern_ws ws = {0};
    for (int rows = 1; rows <= M; rows += M - 1) {
        kern_matmul_packed_n(pool2, NM, out, x, rows, (const kern_packed *const *)p, &ws);
        for (int i = 0; i < NM; i++) {
            kern_matmul_packed(NULL, alone[i], x, rows, p[i], NULL);
            if (memcmp(out[i], alone[i], (size_t)rows * ds[i] * sizeof(float)) != 0)
                fail_msg("fused pass of %d rows: matrix %d (%s) differs from its own call", rows, i, tn(dts[i]));
        }
    }
    kern_ws_free(&ws);
    for (int i = 0; i < NM; i++) {
        kern_packed_free(p[i]);
        free(w[i]), free(deq[i]), free(out[i]), free(alone[i]);
    }
    free(x);
    s1c_pool_free(pool2);
}

/* ------------------------------------------------------------------ tiny models */

enum { E = 160, F = 352, L = 2, H = 5, KVH = 1, HD = 32, V = 300 };

/* A qwen2 GGUF with every matrix of type dt (token embeddings too), F32 norms and biases;
 * f32: the same weights dequantized, written as F32. */
static void write_model(const char *path, int dt, bool f32, uint64_t seed) {
    mr_shape s = {E, F, L, H, KVH, HD, V};
    mr_write_qwen2(path, &s, dt, f32, seed, make_w);
}

static float *run_model(const char *path, const int32_t *tokens, int n, bool whole, int vocab) {
    int got = 0;
    float *logits = mr_model_logits(path, tokens, n, !whole, &got);
    assert_non_null(logits);
    assert_int_equal(got, vocab);
    return logits;
}

/* Opens path and checks that no matrix was widened to f32 and that the packed copies (where this
 * CPU packs) are about the file's size: *file_bytes, *packed_bytes over the layers' matrices. */
static void check_in_place(const char *path, size_t *file_bytes, size_t *packed_bytes) {
    s1c_err err;
    s1c_model *m;
    if (s1c_model_open(&m, path, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(m->n_deq, 0);
    if (model_pack(m, &err) != 0) fail_msg("%s", err.msg);
    *file_bytes = *packed_bytes = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const layer_weights *w = &m->layers[l];
        const s1c_tensor *mats[7] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down};
        for (int i = 0; i < 7; i++) {
            assert_true(s1c_dtype_is_quant(mats[i]->dtype));
            *file_bytes += (size_t)mats[i]->nbytes;
            *packed_bytes += kern_packed_bytes(w->pk[i]);
        }
    }
    s1c_model_free(m);
}

/* Prefill == token-by-token decode, bitwise, and (unpacked_same: every matrix of a type whose
 * row-major path is the reference, i.e. no Q8_0/Q4_0) == the unpacked (S1C_PACK=0) logits;
 * returns them. */
static float *check_runs(const char *path, const int32_t *tokens, int n, int vocab, bool unpacked_same, const char *what) {
    size_t sz = (size_t)n * vocab * sizeof(float);
    float *pre = run_model(path, tokens, n, true, vocab), *dec = run_model(path, tokens, n, false, vocab);
    if (memcmp(pre, dec, sz) != 0) fail_msg("%s: prefill and token-by-token decode differ", what);
    if (unpacked_same) {
        setenv("S1C_PACK", "0", 1);
        float *unp = run_model(path, tokens, n, true, vocab);
        unsetenv("S1C_PACK");
        if (memcmp(pre, unp, sz) != 0) fail_msg("%s: packed and unpacked logits differ", what);
        free(unp);
    }
    free(dec);
    return pre;
}

/* The logits' largest difference is under 5% of their spread (and not 0: the weights differ). */
static void check_close(const float *got, const float *want, size_t n, const char *what) {
    double lo = 1e30, hi = -1e30, maxdiff = 0;
    for (size_t i = 0; i < n; i++) {
        lo = fmin(lo, want[i]), hi = fmax(hi, want[i]);
        maxdiff = fmax(maxdiff, fabs((double)got[i] - want[i]));
    }
    printf("%s: max logit difference to the f32 weights %.4g, spread %.4g\n", what, maxdiff, hi - lo);
    if (!(maxdiff <= 0.05 * (hi - lo)) || maxdiff == 0) fail_msg("%s: max logit difference %.4g vs spread %.4g", what, maxdiff, hi - lo);
}

static void test_model(void **state) {
    (void)state;
    kern_select("auto");
    int32_t tokens[12];
    for (int i = 0; i < 12; i++) tokens[i] = (i * 37 + 11) % V;
    size_t n = (size_t)12 * V;
    for (int ti = 0; ti < 3; ti++) {
        int dt = qtypes[ti];
        char *q = tu_path("S1C_TMP", "q5x_model.gguf"), *f = tu_path("S1C_TMP", "q5x_model_f32.gguf");
        write_model(q, dt, false, 100 + (uint64_t)ti);
        write_model(f, dt, true, 100 + (uint64_t)ti);
        size_t fb, pb;
        check_in_place(q, &fb, &pb);
        /* packed = the file's bytes per weight (only the last panel's padding rows on top) */
        if (pb) printf("%s model: %zu file bytes in the layers' matrices, %zu packed\n", tn(dt), fb, pb);
        if (pb && !(pb >= fb && pb <= fb + fb / 8)) fail_msg("%s model: %zu packed bytes for %zu in the file", tn(dt), pb, fb);
        float *pre = check_runs(q, tokens, 12, V, true, tn(dt)), *lf = run_model(f, tokens, 12, true, V);
        check_close(pre, lf, n, tn(dt));
        free(pre), free(lf), free(q), free(f);
    }
}

/* s1c convert's Q4_K_M and Q5_K_M of a model whose width (160) is not whole 256-blocks: q/k/o/
 * gate/up fall back to Q5_0 (Q5_1), v to Q8_0 or Q6_K's fallback, down (rows of 512) stays a
 * K-quant; every matrix is read in place. */
static void test_converted_mixture(void **state) {
    (void)state;
    kern_select("auto");
    s1c_err err;
    s1c_config c;
    assert_int_equal(s1c_config_preset(&c, "qwen2", "tiny", &err), 0);
    c.dim = 160, c.hidden_dim = 512, c.n_heads = 5, c.n_kv_heads = 1, c.head_dim = 32, c.n_layers = 2;
    char *hf = tu_path("S1C_TMP", "q5x_mix_hf"), *q = tu_path("S1C_TMP", "q5x_mix.gguf"), *f = tu_path("S1C_TMP", "q5x_mix_f32.gguf");
    assert_int_equal(s1c_model_init_hf(&c, 9, S1C_F32, hf, &err), 0);
    static const int mixes[][3] = {{S1C_FTYPE_Q4_K_M, S1C_Q5_0, S1C_Q4_K}, {S1C_FTYPE_Q5_K_M, S1C_Q5_1, S1C_Q5_K}};
    int32_t tokens[10];
    for (int i = 0; i < 10; i++) tokens[i] = (i * 53 + 5) % c.vocab_size;
    for (int k = 0; k < 2; k++) {
        if (s1c_model_convert(hf, q, S1C_MIX(mixes[k][0]), &err) != 0) fail_msg("%s", err.msg);
        s1c_model *m;
        if (s1c_model_open(&m, q, &err) != 0) fail_msg("%s", err.msg);
        assert_int_equal(m->layers[1].wq->dtype, mixes[k][1]);
        assert_int_equal(m->layers[1].w_up->dtype, mixes[k][1]);
        assert_int_equal(m->layers[0].w_down->dtype, mixes[k][2]); /* layer 1 of 2 gets more bits: Q6_K */
        s1c_model_free(m);
        size_t fb, pb;
        check_in_place(q, &fb, &pb);
        if (s1c_model_convert(q, f, S1C_F32, &err) != 0) fail_msg("%s", err.msg); /* exact dequantization */
        const char *what = k ? "q5_k_m" : "q4_k_m";
        float *lg = check_runs(q, tokens, 10, c.vocab_size, false, what), *lf = run_model(f, tokens, 10, true, c.vocab_size);
        check_close(lg, lf, (size_t)10 * c.vocab_size, what);
        free(lg), free(lf);
    }
    free(hf), free(q), free(f);
}

/* s1c bench's random models: q5_0 (every matrix of rows of 32s in Q5_0) and the q4_k_m
 * mixture at a width that is not whole 256-blocks (each matrix as s1c convert would type it:
 * Q5_0 fallbacks, Q4_K/Q6_K down, Q8_0 v and tied embeddings), loaded with no f32 copies,
 * reported under the mixture's name, and run. */
static void test_bench_models(void **state) {
    (void)state;
    kern_select("auto");
    s1c_err err;
    s1c_config c;
    assert_int_equal(s1c_config_preset(&c, "qwen2", "qwen2.5-0.5b", &err), 0);
    c.dim = 160, c.hidden_dim = 512, c.n_heads = 5, c.n_kv_heads = 1, c.head_dim = 32, c.n_layers = 3, c.vocab_size = V;
    assert_true(c.tied_embeddings);
    static const struct { int dtype; const char *name; int q, v2, down0, down2, embd; } cases[] = {
        {S1C_Q5_0, "q5_0", S1C_Q5_0, S1C_Q5_0, S1C_Q5_0, S1C_Q5_0, S1C_Q5_0},
        /* llama-quantize's more bits of 3 layers: layer 2's v (Q6_K, whose fallback is Q8_0) and down */
        {S1C_MIX(S1C_FTYPE_Q4_K_M), "q4_k_m", S1C_Q5_0, S1C_Q8_0, S1C_Q4_K, S1C_Q6_K, S1C_Q8_0},
        {S1C_MIX(S1C_FTYPE_Q5_K_S), "q5_k_s", S1C_Q5_1, S1C_Q5_1, S1C_Q5_K, S1C_Q5_K, S1C_Q8_0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char *tmp = tu_path("S1C_TMP", ""), *dir, *path;
        if (bench_make_model(&c, cases[k].dtype, tmp, &dir, &path, &err) != 0) fail_msg("%s", err.msg);
        s1c_model *m;
        if (s1c_model_open(&m, path, &err) != 0) fail_msg("%s", err.msg);
        assert_int_equal(m->n_deq, 0);
        assert_string_equal(bench_model_type_name(m), cases[k].name);
        assert_int_equal(m->layers[1].wq->dtype, cases[k].q);
        assert_int_equal(m->layers[1].w_gate->dtype, cases[k].q);
        assert_int_equal(m->layers[2].wv->dtype, cases[k].v2);
        assert_int_equal(m->layers[0].w_down->dtype, cases[k].down0);
        assert_int_equal(m->layers[2].w_down->dtype, cases[k].down2);
        assert_int_equal(m->tok_embd->dtype, cases[k].embd);
        s1c_model_free(m);
        int32_t tokens[5] = {1, 7, 299, 2, 9};
        float *lg = run_model(path, tokens, 5, true, V);
        for (size_t i = 0; i < (size_t)5 * V; i++)
            if (!isfinite(lg[i])) fail_msg("%s bench model: logit %zu is %g", cases[k].name, i, lg[i]);
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
        cmocka_unit_test(test_converted_mixture),
        cmocka_unit_test(test_bench_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
