/* GGML block quantization: quantize -> dequantize error bounds for every type s1c writes,
 * refused sizes, and agreement
 * with llama.cpp's own gguf-py (../shared/tools/llama-ref): Q8_0/Q4_0 bytes written by
 * requant_gguf.py equal s1c_quantize's, and gguf-py's dequantizers give exactly s1c's values
 * for random blocks of every type s1c reads (Q4_0 .. Q6_K). The gguf-py parts skip with a
 * message when node/npm or the llama-ref tools are unavailable. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/formats.h"
#include "testutil.h"

static float *random_f32(uint64_t n, uint64_t seed) {
    s1c_rng r;
    s1c_rng_seed(&r, seed);
    float *x = malloc(n * sizeof(float));
    for (uint64_t i = 0; i < n; i++) x[i] = s1c_rng_normal(&r) * (1.0f + (float)(i / 32 % 7));
    /* special blocks: all zero, ties of the largest magnitude, one huge outlier */
    for (int j = 0; j < 32; j++) x[j] = 0.0f;
    for (int j = 32; j < 64; j++) x[j] = j % 2 ? 3.0f : -3.0f;
    x[64 + 5] = 1000.0f;
    return x;
}

static void test_roundtrip_bounds(void **state) {
    (void)state;
    const uint64_t n = 32 * 512;
    float *x = random_f32(n, 1), *y = malloc(n * sizeof(float));
    uint8_t *q = malloc(n * 2);
    s1c_err err;
    int types[2] = {S1C_Q8_0, S1C_Q4_0};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(s1c_quantize(q, x, types[k], n, &err), 0);
        assert_int_equal(s1c_dequantize(y, q, types[k], n, &err), 0);
        double worst = 0.0;
        for (uint64_t b = 0; b < n / 32; b++) {
            float amax = 0.0f;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
            /* Q8_0: step amax/127, error <= half a step (+ f16 rounding of the scale, 2^-11
             * relative, times 127 steps); Q4_0: step amax/8, the positive side clamps at 7
             * steps, so error <= one step (+ the same scale rounding) */
            double step = types[k] == S1C_Q8_0 ? amax / 127.0 : amax / 8.0;
            double bound = (types[k] == S1C_Q8_0 ? 0.5 : 1.0) * step + amax * 1.0 / 1024 + 1e-30;
            for (int j = 0; j < 32; j++) {
                double e = fabs((double)x[b * 32 + j] - y[b * 32 + j]);
                if (e > bound) fail_msg("%s block %llu elem %d: |%g - %g| > %g", s1c_dtype_name(types[k]), (unsigned long long)b, j, x[b * 32 + j], y[b * 32 + j], bound);
                if (step > 0 && e / step > worst) worst = e / step;
            }
        }
        printf("%s: max error %.3f steps\n", s1c_dtype_name(types[k]), worst);
    }
    /* zeros stay exact; a whole-number-of-blocks check */
    for (int j = 0; j < 32; j++) assert_true(y[j] == 0.0f);
    assert_int_not_equal(s1c_quantize(q, x, S1C_Q8_0, 33, &err), 0);
    assert_int_not_equal(s1c_dequantize(y, q, S1C_Q8_K, 256, &err), 0);
    free(x); free(y); free(q);
}

/* The other block types. Each element's error is bounded by the code step it was rounded
 * to (half a step; a full step where ggml clamps the top code) plus the f16 rounding of the
 * stored scale and offset. The K-quants' steps are per sub-block and their 6/8-bit scales
 * are fitted, so they are bounded against the super-block's range instead, and on Gaussian
 * data more bits must mean a smaller RMS error. */
static void test_more_types_roundtrip(void **state) {
    (void)state;
    const uint64_t n = 256 * 64;
    float *x = random_f32(n, 2), *y = malloc(n * sizeof(float));
    uint8_t *q = malloc(n * 2);
    s1c_err err;
    static const struct { int dtype; int bs; double frac; } cases[] = {
        /* frac: worst |error| as a fraction of the block's (max - min) (32-element types) or of
         * the super-block's (K-quants) */
        {S1C_Q4_1, 32, 0.5 / 15}, {S1C_Q5_1, 32, 0.5 / 31}, {S1C_Q5_0, 32, 1.0 / 16}, {S1C_Q4_K, 256, 1.0 / 15},
        {S1C_Q5_K, 256, 1.0 / 31}, {S1C_Q6_K, 256, 1.0 / 32}};
    double rms[6] = {0};
    for (int k = 0; k < 6; k++) {
        int bs = cases[k].bs;
        assert_true(s1c_dtype_can_quantize(cases[k].dtype));
        assert_int_equal(s1c_quantize(q, x, cases[k].dtype, n, &err), 0);
        assert_int_equal(s1c_dequantize(y, q, cases[k].dtype, n, &err), 0);
        double worst = 0, se = 0;
        for (uint64_t b = 0; b < n / (uint64_t)bs; b++) {
            float mn = 0, mx = 0;
            for (int j = 0; j < bs; j++) { mn = fminf(mn, x[b * bs + j]); mx = fmaxf(mx, x[b * bs + j]); }
            double range = (double)mx - mn, bound = cases[k].frac * range + range / 512 + 1e-30;
            for (int j = 0; j < bs; j++) {
                double e = fabs((double)x[b * bs + j] - y[b * bs + j]);
                se += e * e;
                if (e > bound) fail_msg("%s block %llu elem %d: |%g - %g| > %g", s1c_dtype_name(cases[k].dtype), (unsigned long long)b, j, x[b * bs + j], y[b * bs + j], bound);
                if (range > 0 && e / range > worst) worst = e / range;
            }
        }
        rms[k] = sqrt(se / (double)n);
        printf("%s: max error %.4f of the block range, rms %.4f\n", s1c_dtype_name(cases[k].dtype), worst, rms[k]);
        for (int j = 0; j < 32; j++) assert_true(y[j] == 0.0f); /* the all-zero block stays exact */
    }
    assert_true(rms[3] > rms[4] && rms[4] > rms[5]); /* Q4_K > Q5_K > Q6_K */
    assert_true(rms[0] > rms[1]);                    /* Q4_1 > Q5_1 */
    free(x); free(y); free(q);
}

/* Sizes that are not whole blocks and types without a quantizer are refused with a message;
 * any whole-block slice quantizes to the same bytes as inside the whole (convert relies on it
 * to split the work across threads). */
static void test_quantize_sizes(void **state) {
    (void)state;
    const uint64_t n = 256 * 8;
    float *x = random_f32(n, 3);
    uint8_t *all = malloc(n * 2), *part = malloc(n * 2);
    s1c_err err;
    static const int types[] = {S1C_Q4_0, S1C_Q4_1, S1C_Q5_0, S1C_Q5_1, S1C_Q8_0, S1C_Q4_K, S1C_Q5_K, S1C_Q6_K};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        int t = types[k], bs = s1c_dtype_block_size(t), ts = s1c_dtype_type_size(t);
        assert_int_not_equal(s1c_quantize(all, x, t, (uint64_t)bs + 1, &err), 0);
        assert_non_null(strstr(err.msg, "whole number"));
        assert_int_not_equal(s1c_quantize(all, x, t, (uint64_t)bs / 2, &err), 0);
        assert_int_equal(s1c_quantize(all, x, t, n, &err), 0);
        assert_int_equal(s1c_quantize(part, x + 3 * bs, t, 2 * (uint64_t)bs, &err), 0);
        assert_memory_equal(part, all + 3 * ts, 2 * (size_t)ts);
    }
    assert_int_not_equal(s1c_quantize(all, x, S1C_Q4_K, 32, &err), 0); /* a Q4_0 block is not a Q4_K one */
    assert_int_not_equal(s1c_quantize(all, x, S1C_Q2_K, 256, &err), 0);
    assert_non_null(strstr(err.msg, "cannot quantize to q2_k"));
    assert_false(s1c_dtype_can_quantize(S1C_Q3_K));
    /* NaN / inf: refused by the block types, with the element named */
    float keep = x[300];
    x[300] = NAN;
    assert_int_not_equal(s1c_quantize(all, x, S1C_Q4_K, n, &err), 0);
    assert_non_null(strstr(err.msg, "element 300 is nan"));
    x[300] = -INFINITY;
    assert_int_not_equal(s1c_quantize(all, x, S1C_Q8_0, n, &err), 0);
    assert_non_null(strstr(err.msg, "element 300 is -inf"));
    assert_int_equal(s1c_quantize(all, x, S1C_F16, n, &err), 0); /* float types keep them */
    x[300] = keep;
    assert_false(s1c_dtype_can_quantize(999));
    assert_int_not_equal(s1c_quantize(all, x, 999, 256, &err), 0);
    free(x); free(all); free(part);
}

/* ------------------------------------------------------------------ against gguf-py */

static const char *gguf_py_dir(void) {
    static char dir[1024];
    const char *base = getenv("LLAMA_REF_DIR");
    snprintf(dir, sizeof dir, "%s/gguf-py", base && *base ? base : "/tmp/llama-ref");
    return dir;
}

/* Makes sure llama-ref's gguf-py is there (running its idempotent setup.sh if needed). */
static bool have_gguf_py(void) {
    char p[1200];
    snprintf(p, sizeof p, "%s/gguf/__init__.py", gguf_py_dir());
    FILE *f = fopen(p, "r");
    if (f) { fclose(f); return true; }
    if (tu_system("command -v npm >/dev/null && command -v node >/dev/null && /usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) return false;
    if (tu_system("bash %s/../shared/tools/llama-ref/setup.sh > %s/llama_ref_setup.log 2>&1", tu_env("S1C_SRC"), tu_env("S1C_TMP")) != 0) return false;
    f = fopen(p, "r");
    if (f) fclose(f);
    return f != NULL;
}

static void test_q8_0_q4_0_bytes_match_gguf_py(void **state) {
    (void)state;
    if (!have_gguf_py()) { printf("SKIP: llama-ref's gguf-py is unavailable (needs node/npm)\n"); skip(); }
    const int64_t shape[2] = {96, 256};
    const uint64_t n = 96 * 256;
    float *x = random_f32(n, 7);
    char *in = tu_path("S1C_TMP", "quant_f32.gguf");
    gguf_writer *w = gguf_writer_new();
    gguf_w_str(w, "general.architecture", "qwen2");
    gguf_w_tensor(w, "blk.0.ffn_up.weight", S1C_F32, 2, shape, x);
    s1c_err err;
    assert_int_equal(gguf_writer_write(w, in, &err), 0);
    gguf_writer_free(w);
    const char *names[2] = {"Q8_0", "Q4_0"};
    int types[2] = {S1C_Q8_0, S1C_Q4_0};
    for (int k = 0; k < 2; k++) {
        char out[1100];
        snprintf(out, sizeof out, "%s/quant_%s.gguf", tu_env("S1C_TMP"), names[k]);
        int rc = tu_system("GGUF_PY=%s /usr/bin/python3 %s/../shared/tools/llama-ref/requant_gguf.py %s %s %s > /dev/null",
                           gguf_py_dir(), tu_env("S1C_SRC"), in, out, names[k]);
        assert_int_equal(rc, 0);
        gguf_file g;
        assert_int_equal(gguf_open(&g, out, &err), 0);
        const s1c_tensor *t = gguf_find_tensor(&g, "blk.0.ffn_up.weight");
        assert_non_null(t);
        assert_int_equal(t->dtype, types[k]);
        uint64_t nb;
        assert_int_equal(s1c_dtype_nbytes(types[k], n, &nb), 0);
        assert_int_equal(t->nbytes, nb);
        uint8_t *mine = malloc(nb);
        assert_int_equal(s1c_quantize(mine, x, types[k], n, &err), 0);
        uint64_t diff = 0;
        for (uint64_t i = 0; i < nb; i++) diff += mine[i] != ((const uint8_t *)t->data)[i];
        printf("%s: %llu bytes, %llu differ from llama.cpp's gguf-py\n", names[k], (unsigned long long)nb, (unsigned long long)diff);
        assert_int_equal(diff, 0);
        free(mine);
        gguf_close(&g);
    }
    free(x); free(in);
}

/* Random blocks of every readable type (scales: finite f16 values), written raw into a GGUF;
 * gguf-py dequantizes them (GGUFReader + gguf.quants.dequantize) into NAME.f32 files. */
static const char *deq_script =
    "import sys, os, types, importlib.util\n"
    "for mod, attr in ((\"sentencepiece\", \"SentencePieceProcessor\"), (\"yaml\", None)):\n"
    "    if importlib.util.find_spec(mod) is None:\n"
    "        m = types.ModuleType(mod)\n"
    "        if attr: setattr(m, attr, None)\n"
    "        sys.modules[mod] = m\n"
    "sys.path.insert(0, os.environ['GGUF_PY'])\n"
    "import gguf, numpy as np\n"
    "r = gguf.GGUFReader(sys.argv[1])\n"
    "for t in r.tensors:\n"
    "    y = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)\n"
    "    y.tofile(os.path.join(sys.argv[2], t.name + '.f32'))\n";

static void test_dequantize_matches_gguf_py(void **state) {
    (void)state;
    if (!have_gguf_py()) { printf("SKIP: llama-ref's gguf-py is unavailable (needs node/npm)\n"); skip(); }
    static const struct { int dtype; int f16_at[2]; } types[] = {
        {S1C_Q4_0, {0, -1}}, {S1C_Q4_1, {0, 2}}, {S1C_Q5_0, {0, -1}}, {S1C_Q5_1, {0, 2}}, {S1C_Q8_0, {0, -1}},
        {S1C_Q2_K, {80, 82}}, {S1C_Q3_K, {108, -1}}, {S1C_Q4_K, {0, 2}}, {S1C_Q5_K, {0, 2}}, {S1C_Q6_K, {208, -1}},
    };
    const int nt = (int)(sizeof types / sizeof types[0]);
    const int64_t shape[2] = {8, 512};
    const uint64_t n = 8 * 512;
    uint8_t *raw[16];
    s1c_rng r;
    s1c_rng_seed(&r, 3);
    gguf_writer *w = gguf_writer_new();
    gguf_w_str(w, "general.architecture", "qwen2");
    for (int k = 0; k < nt; k++) {
        uint64_t nb;
        s1c_dtype_nbytes(types[k].dtype, n, &nb);
        raw[k] = malloc(nb);
        for (uint64_t i = 0; i < nb; i++) raw[k][i] = (uint8_t)s1c_rng_u64(&r);
        int ts = s1c_dtype_type_size(types[k].dtype);
        for (uint64_t b = 0; b < nb / (uint64_t)ts; b++)
            for (int f = 0; f < 2; f++)
                if (types[k].f16_at[f] >= 0) {
                    uint16_t h = s1c_f32_to_f16((s1c_rng_float(&r) - 0.5f) * 0.1f);
                    memcpy(raw[k] + b * (uint64_t)ts + types[k].f16_at[f], &h, 2);
                }
        gguf_w_tensor(w, s1c_dtype_name(types[k].dtype), types[k].dtype, 2, shape, raw[k]);
    }
    char *path = tu_path("S1C_TMP", "quant_all.gguf"), *script = tu_path("S1C_TMP", "quant_deq.py");
    s1c_err err;
    assert_int_equal(gguf_writer_write(w, path, &err), 0);
    gguf_writer_free(w);
    assert_int_equal(tu_write(script, deq_script, strlen(deq_script)), 0);
    assert_int_equal(tu_system("GGUF_PY=%s /usr/bin/python3 %s %s %s", gguf_py_dir(), script, path, tu_env("S1C_TMP")), 0);
    float *y = malloc(n * sizeof(float));
    int bad = 0;
    for (int k = 0; k < nt; k++) {
        const char *name = s1c_dtype_name(types[k].dtype);
        char p[1100];
        snprintf(p, sizeof p, "%s/%s.f32", tu_env("S1C_TMP"), name);
        size_t len;
        float *ref = (float *)tu_read(p, &len);
        assert_non_null(ref);
        assert_int_equal(len, n * sizeof(float));
        assert_int_equal(s1c_dequantize(y, raw[k], types[k].dtype, n, &err), 0);
        uint64_t diff = 0;
        for (uint64_t i = 0; i < n; i++) diff += memcmp(&y[i], &ref[i], 4) != 0;
        printf("%-5s: %llu of %llu values differ from gguf-py (max |diff| %.3g)\n", name, (unsigned long long)diff,
               (unsigned long long)n, tu_max_abs_diff(y, ref, n));
        bad |= diff != 0;
        free(ref);
        free(raw[k]);
    }
    assert_false(bad);
    free(y); free(path); free(script);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_bounds),
        cmocka_unit_test(test_more_types_roundtrip),
        cmocka_unit_test(test_quantize_sizes),
        cmocka_unit_test(test_q8_0_q4_0_bytes_match_gguf_py),
        cmocka_unit_test(test_dequantize_matches_gguf_py),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
