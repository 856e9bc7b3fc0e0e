/* s1c's quantizers and `s1c convert --type q4_k_m|...` against llama.cpp's OWN code (the
 * prebuilt libggml-base / libllama of ../shared/tools/llama-ref, driven by
 * kq_llamacpp_harness.c; skipped with 77 when llama-ref is unavailable):
 *  1. rows: random rows and edge cases (zeros, constants, one outlier, all negative, tiny,
 *     huge, subnormal, exact rounding ties) quantized by ggml_quantize_chunk (no importance
 *     matrix) and by s1c_quantize: the bytes must be identical for Q4_0, Q4_1, Q5_0, Q5_1,
 *     Q8_0, Q4_K, Q5_K and Q6_K, and s1c_dequantize must give ggml's dequantized floats bit for
 *     bit.
 *  2. models: llama_model_quantize (= llama-quantize IN OUT Q4_K_M ...) and s1c convert --type
 *     of the same F32 GGUFs (rows that are and are not multiples of 256 and of 32, 8 layers for
 *     the "more bits" layer rule, tied and untied output, 80-layer qwen2 and llama models for
 *     the 70B rule): every tensor must have the same type and the same bytes, and
 *     general.file_type must agree. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "s1c/formats.h"

#define NPR 256 /* elements per row: one K-quant super-block, eight 32-element blocks */

static int run(const char *fmt, const char *a, const char *b, const char *c, const char *d, const char *e, const char *f) {
    return tu_system("bash %s/tests/ref/test_kquant_llamacpp_run.sh %s %s %s %s %s %s %s", tu_env("S1C_SRC"), fmt, a, b ? b : "",
                     c ? c : "", d ? d : "", e ? e : "", f ? f : "");
}

/* xorshift + Box-Muller: reproducible normal samples without libc's rand */
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double unif(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((rng >> 11) + 0.5) / 9007199254740992.0;
}
static float gauss(void) { return (float)(sqrt(-2 * log(unif())) * cos(6.283185307179586 * unif())); }

/* The test rows: 48 random ones at scales 1e-3..1e3 (some shifted so min > 0), then edge cases. */
static int make_rows(float *x) {
    int r = 0;
    for (; r < 48; r++) {
        float scale = powf(10.0f, (float)(r % 7) - 3.0f), shift = r % 5 == 4 ? 3 * scale : 0;
        for (int i = 0; i < NPR; i++) x[r * NPR + i] = gauss() * scale + shift;
    }
    float *e;
#define ROW(EXPR) do { e = x + (size_t)r++ * NPR; for (int i = 0; i < NPR; i++) e[i] = (EXPR); } while (0)
    ROW(0.0f);                                              /* all zeros */
    ROW(-0.0f);                                             /* negative zeros */
    ROW(0.75f);                                             /* constant */
    ROW(-2.5f);                                             /* negative constant */
    ROW(i == 77 ? 100.0f : gauss() * 0.01f);                /* one outlier */
    ROW(i == 3 ? -50.0f : gauss());                         /* one negative outlier */
    ROW(-fabsf(gauss()) - 0.1f);                            /* all negative */
    ROW(fabsf(gauss()) + 0.1f);                             /* all positive (min > 0) */
    ROW(gauss() * 1e-30f);                                  /* tiny: scales underflow f16 */
    ROW(gauss() * 1e-6f);                                   /* f16-subnormal scales */
    ROW(gauss() * 1e4f);                                    /* large: scales near f16's max */
    ROW(gauss() * 1e30f);                                   /* huge: scales overflow f16 */
    ROW(gauss() * 1e-40f);                                  /* f32 subnormals */
    ROW(i % 32 == 0 ? 1e-40f : 0.0f);                       /* a subnormal per block */
    ROW((float)((i * 7) % 33 - 16) * 0.5f);                 /* exact halves: rounding ties */
    ROW((float)(i % 16));                                   /* integers 0..15 */
    ROW((float)(i % 64 - 32));                              /* integers -32..31 */
    ROW(i % 2 ? 1.0f : -1.0f);                              /* +-1 */
    ROW(i < 128 ? 0.0f : gauss());                          /* half the super-block zero */
    ROW(i % 16 == 0 ? gauss() : 0.0f);                      /* sparse */
    ROW(i % 32 < 16 ? 1e-3f * gauss() : 1e3f * gauss());   /* mixed magnitudes per block */
    ROW(65504.0f * (i % 3 == 0 ? 1 : -1));                  /* f16's max */
#undef ROW
    return r;
}

static int check_type(int dtype, const float *x, int nrows, const char *harness, const char *dir) {
    const char *name = s1c_dtype_name(dtype);
    char in[1200], oq[1200], od[1200], ty[16], npr[16];
    snprintf(in, sizeof in, "%s/rows.f32", dir);
    snprintf(oq, sizeof oq, "%s/rows_%s.q", dir, name);
    snprintf(od, sizeof od, "%s/rows_%s.deq", dir, name);
    snprintf(ty, sizeof ty, "%d", dtype);
    snprintf(npr, sizeof npr, "%d", NPR);
    uint64_t n = (uint64_t)nrows * NPR, nb = 0;
    s1c_dtype_nbytes(dtype, n, &nb);
    if (run("rows", harness, ty, npr, in, oq, od) != 0) { fprintf(stderr, "%s: the ggml harness failed\n", name); return 1; }
    size_t lq = 0, ld = 0;
    uint8_t *ref = (uint8_t *)tu_read(oq, &lq);
    float *refd = (float *)tu_read(od, &ld);
    uint8_t *mine = malloc(nb);
    float *mined = malloc(n * sizeof(float));
    s1c_err err;
    int bad = !ref || !refd || lq != nb || ld != n * sizeof(float) || s1c_quantize(mine, x, dtype, n, &err) != 0 ||
              s1c_dequantize(mined, mine, dtype, n, &err) != 0;
    int rows_equal = 0;
    size_t rb = nb / (size_t)nrows;
    for (int r = 0; r < nrows && !bad; r++) {
        if (!memcmp(mine + r * rb, ref + r * rb, rb)) rows_equal++;
        else if (rows_equal == r) fprintf(stderr, "%s: row %d: bytes differ from ggml's\n", name, r);
    }
    bad |= rows_equal != nrows || memcmp(mined, refd, n * sizeof(float)) != 0;
    double err_max = 0;
    for (int r = 0; r < 48 && !bad; r++) { /* round-trip error of the random rows, relative to each row's max |x| */
        double d = 0, a = 0;
        for (size_t k = (size_t)r * NPR; k < (size_t)(r + 1) * NPR; k++) {
            d = fmax(d, fabs((double)mined[k] - x[k]));
            a = fmax(a, fabs((double)x[k]));
        }
        err_max = fmax(err_max, d / a);
    }
    printf("%-5s %d/%d rows byte-identical to ggml_quantize_chunk, dequantized floats %s; max |error| / max |x| of a row %.4f\n", name,
           rows_equal, nrows, bad ? "DIFFER" : "identical", err_max);
    free(ref); free(refd); free(mine); free(mined);
    return bad;
}

/* Every tensor of llama.cpp's file must be in s1c's with the same type, shape and bytes. */
static int compare_files(const char *ref_path, const char *mine_path, const char *tag) {
    gguf_file a, b;
    s1c_err err;
    if (gguf_open(&a, ref_path, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    if (gguf_open(&b, mine_path, &err) != 0) { fprintf(stderr, "%s\n", err.msg); gguf_close(&a); return 1; }
    int bad = a.n_tensors != b.n_tensors, same = 0, counts[S1C_DTYPE_COUNT] = {0};
    uint64_t fa = 0, fb = 1;
    gguf_get_u64(&a, "general.file_type", &fa, NULL);
    gguf_get_u64(&b, "general.file_type", &fb, NULL);
    if (fa != fb) { fprintf(stderr, "%s: general.file_type %llu (llama.cpp) vs %llu (s1c)\n", tag, (unsigned long long)fa, (unsigned long long)fb); bad = 1; }
    for (uint64_t i = 0; i < a.n_tensors; i++) {
        const s1c_tensor *t = &a.tensors[i], *u = gguf_find_tensor(&b, t->name);
        if (!u) { fprintf(stderr, "%s: %s missing in s1c's file\n", tag, t->name); bad = 1; continue; }
        bool ok = u->dtype == t->dtype && u->ndim == t->ndim && u->nbytes == t->nbytes && !memcmp(u->shape, t->shape, sizeof t->shape) &&
                  !memcmp(u->data, t->data, t->nbytes);
        if (!ok) {
            fprintf(stderr, "%s: %s: llama.cpp %s, s1c %s%s\n", tag, t->name, s1c_dtype_name(t->dtype), s1c_dtype_name(u->dtype),
                    u->dtype == t->dtype ? " (bytes differ)" : "");
            bad = 1;
        }
        same += ok;
        if (t->dtype >= 0 && t->dtype < S1C_DTYPE_COUNT) counts[t->dtype]++;
    }
    printf("%s: %d/%llu tensors identical (type and bytes), file_type %llu:", tag, same, (unsigned long long)a.n_tensors, (unsigned long long)fa);
    for (int d = 0; d < S1C_DTYPE_COUNT; d++)
        if (counts[d]) printf(" %s x%d", s1c_dtype_name(d), counts[d]);
    printf("\n");
    gguf_close(&a);
    gguf_close(&b);
    return bad;
}

static int check_model(const char *harness, const char *dir, const char *model, int ftype, const char *type) {
    char in[1200], ref[1300], mine[1300], ft[16], tag[64];
    snprintf(in, sizeof in, "%s/%s.gguf", dir, model);
    snprintf(ref, sizeof ref, "%s/%s_llama_%s.gguf", dir, model, type);
    snprintf(mine, sizeof mine, "%s/%s_s1c_%s.gguf", dir, model, type);
    snprintf(ft, sizeof ft, "%d", ftype);
    snprintf(tag, sizeof tag, "%s %s", model, type);
    if (tu_system("bash %s/tests/ref/test_kquant_llamacpp_run.sh quantize %s %s %s %s > %s.log 2>&1", tu_env("S1C_SRC"), harness, ft, in, ref, ref) != 0) {
        fprintf(stderr, "%s: llama_model_quantize failed, see %s.log\n", tag, ref);
        return 1;
    }
    if (tu_system("%s convert %s %s --type %s 2>/dev/null", tu_env("S1C_BIN"), in, mine, type) != 0) { fprintf(stderr, "%s: s1c convert failed\n", tag); return 1; }
    return compare_files(ref, mine, tag);
}

int main(void) {
    char *dir = tu_path("S1C_TMP", "kq_llamacpp");
    char harness[1200];
    snprintf(harness, sizeof harness, "%s/kq_harness", dir);
    int rc = run("build", dir, NULL, NULL, NULL, NULL, NULL);
    if (rc == 77) { printf("SKIP: llama-ref unavailable\n"); free(dir); return 77; }
    if (rc != 0) { fprintf(stderr, "building the llama.cpp harness failed (%d)\n", rc); free(dir); return 1; }
    float *x = malloc(sizeof(float) * 128 * NPR);
    int nrows = make_rows(x), fails = 0, passes = 0;
    char path[1300];
    snprintf(path, sizeof path, "%s/rows.f32", dir);
    if (tu_write(path, x, (size_t)nrows * NPR * sizeof(float)) != 0) return 1;
    static const int types[] = {S1C_Q4_0, S1C_Q4_1, S1C_Q5_0, S1C_Q5_1, S1C_Q8_0, S1C_Q4_K, S1C_Q5_K, S1C_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) check_type(types[i], x, nrows, harness, dir) ? fails++ : passes++;
    free(x);
    rc = run("models", dir, NULL, NULL, NULL, NULL, NULL);
    if (rc == 77) { printf("SKIP (models): python3 + numpy + gguf-py unavailable\n"); }
    else if (rc != 0) { fprintf(stderr, "making the F32 models failed (%d)\n", rc); fails++; }
    else {
        static const struct { int ftype; const char *name; } mixes[] = {
            {S1C_FTYPE_Q4_K_M, "q4_k_m"}, {S1C_FTYPE_Q4_K_S, "q4_k_s"}, {S1C_FTYPE_Q5_K_M, "q5_k_m"}, {S1C_FTYPE_Q5_K_S, "q5_k_s"}, {S1C_FTYPE_Q6_K, "q6_k"}};
        for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++) {
            check_model(harness, dir, "a", mixes[i].ftype, mixes[i].name) ? fails++ : passes++;
            check_model(harness, dir, "b", mixes[i].ftype, mixes[i].name) ? fails++ : passes++;
            if (mixes[i].ftype == S1C_FTYPE_Q4_K_M || mixes[i].ftype == S1C_FTYPE_Q4_K_S) { /* where the 70B rule acts */
                check_model(harness, dir, "c", mixes[i].ftype, mixes[i].name) ? fails++ : passes++;
                check_model(harness, dir, "d", mixes[i].ftype, mixes[i].name) ? fails++ : passes++;
            }
        }
    }
    printf("%d passed, %d failed\n", passes, fails);
    free(dir);
    return fails != 0;
}
