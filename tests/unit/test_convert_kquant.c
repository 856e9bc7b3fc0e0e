/* s1c convert --type q4_k_m|q4_k_s|q5_k_m|q5_k_s|q6_k without llama.cpp at hand: the type of
 * every tensor against a table written out from llama.cpp's rules (llama-quant.cpp: output /
 * tied embedding Q6_K, attn_v and ffn_down of the "more bits" layers 0, 3, 6, 7 of 8 in Q6_K
 * for _M, the first 4 attn_v / first ffn_down in Q5_K for Q4_K_S, rows of 32 falling back to
 * Q5_0 / Q5_1 / Q8_0), general.file_type, that the file loads and predicts like the F32 model,
 * and the errors for impossible requests. The byte-for-byte proof against llama.cpp itself is
 * tests/ref/test_kquant_llamacpp.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelrun.h"
#include "s1c/model.h"
#include "testutil.h"

/* hidden 256 (K-quant rows), FFN 32 (ffn_down rows are not), 8 layers, untied or tied; small
 * otherwise, as the K-quant fits are slow under the sanitizers */
static char *make_model(const char *name, bool tied) {
    s1c_config c;
    s1c_err err;
    assert_int_equal(s1c_config_preset(&c, "qwen2", "tiny", &err), 0);
    c.dim = 256;
    c.hidden_dim = 32;
    c.n_layers = 8;
    c.n_heads = 4;
    c.n_kv_heads = 1;
    c.head_dim = 64;
    c.vocab_size = 256;
    c.tied_embeddings = tied;
    char *dir = tu_path("S1C_TMP", name);
    tu_system("rm -rf %s", dir);
    if (s1c_model_init_hf(&c, 7, S1C_F32, dir, &err) != 0) fail_msg("%s", err.msg);
    return dir;
}

static bool more_bits(int l) { return l == 0 || l == 3 || l == 6 || l == 7; }

/* The type llama-quantize gives `name` (llama.cpp's rules written out for this shape). */
static int expected(const char *ftype, const char *name, bool tied) {
    bool m = strstr(ftype, "_m") != NULL, s4 = !strcmp(ftype, "q4_k_s");
    int base = ftype[1] == '4' ? S1C_Q4_K : ftype[1] == '5' ? S1C_Q5_K : S1C_Q6_K, layer = -1;
    sscanf(name, "blk.%d.", &layer);
    if (!strstr(name, ".weight") || strstr(name, "norm")) return S1C_F32;
    if (!strcmp(name, "output.weight") || (tied && !strcmp(name, "token_embd.weight"))) return S1C_Q6_K;
    int t = base;
    if (strstr(name, "attn_v.")) t = m && more_bits(layer) ? S1C_Q6_K : s4 && layer < 4 ? S1C_Q5_K : base;
    if (strstr(name, "ffn_down.")) {
        t = m && more_bits(layer) ? S1C_Q6_K : s4 && layer < 1 ? S1C_Q5_K : base;
        t = t == S1C_Q4_K ? S1C_Q5_0 : t == S1C_Q5_K ? S1C_Q5_1 : S1C_Q8_0; /* rows of 32 */
    }
    return t;
}

static void check_types(const char *dir, const char *ftype, int file_type, bool tied) {
    char *out = malloc(strlen(dir) + 32);
    sprintf(out, "%s_%s.gguf", dir, ftype);
    assert_int_equal(tu_system("%s convert %s %s --type %s 2>/dev/null", tu_env("S1C_BIN"), dir, out, ftype), 0);
    gguf_file g;
    s1c_err err;
    assert_int_equal(gguf_open(&g, out, &err), 0);
    uint64_t ft = 0, qv = 0;
    assert_int_equal(gguf_get_u64(&g, "general.file_type", &ft, &err), 1);
    assert_int_equal(gguf_get_u64(&g, "general.quantization_version", &qv, &err), 1);
    assert_int_equal((int)ft, file_type);
    assert_int_equal((int)qv, 2);
    int counts[S1C_DTYPE_COUNT] = {0};
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const s1c_tensor *t = &g.tensors[i];
        int want = expected(ftype, t->name, tied);
        if (t->dtype != want) fail_msg("%s %s: %s, llama.cpp's rules give %s", ftype, t->name, s1c_dtype_name(t->dtype), s1c_dtype_name(want));
        counts[t->dtype]++;
    }
    printf("%s%s:", ftype, tied ? " (tied)" : "");
    for (int d = 0; d < S1C_DTYPE_COUNT; d++)
        if (counts[d]) printf(" %s x%d", s1c_dtype_name(d), counts[d]);
    printf("\n");
    gguf_close(&g);
    free(out);
}

static void test_mixture_types(void **state) {
    (void)state;
    char *dir = make_model("kq_untied", false), *tied = make_model("kq_tied", true);
    /* (test_mixtures_predict and test_impossible_requests use the files written here) */
    static const struct { const char *name; int ftype; } mixes[] = {
        {"q4_k_m", 15}, {"q4_k_s", 14}, {"q5_k_m", 17}, {"q5_k_s", 16}, {"q6_k", 18}};
    for (int i = 0; i < 5; i++) check_types(dir, mixes[i].name, mixes[i].ftype, false);
    check_types(tied, "q4_k_m", 15, true);
    free(dir);
    free(tied);
}

/* Logits of a fixed sequence on the model at path. */
enum { NSEQ = 6 };
static float *logits_of(const char *path, int *V) {
    int32_t toks[NSEQ] = {1, 17, 200, 42, 9, 255};
    float *out = mr_model_logits(path, toks, NSEQ, false, V);
    assert_non_null(out);
    return out;
}

/* RMS of a - b relative to the RMS of a. */
static double rel_rms(const float *a, const float *b, size_t n) {
    double se = 0, sa = 0;
    for (size_t i = 0; i < n; i++) {
        se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        sa += (double)a[i] * a[i];
    }
    return sqrt(se / (sa > 0 ? sa : 1));
}

/* The mixture files of test_mixture_types load (dequantized), their logits follow the F32
 * model's, and more bits bring them closer: q4_k_m > q5_k_m > q6_k in error. */
static void test_mixtures_predict(void **state) {
    (void)state;
    char *dir = tu_path("S1C_TMP", "kq_untied");
    int V = 0;
    float *ref = logits_of(dir, &V);
    static const char *names[3] = {"q4_k_m", "q5_k_m", "q6_k"};
    double e[3];
    for (int k = 0; k < 3; k++) {
        char *out = malloc(strlen(dir) + 32);
        sprintf(out, "%s_%s.gguf", dir, names[k]);
        int v2;
        float *lg = logits_of(out, &v2);
        assert_int_equal(v2, V);
        e[k] = rel_rms(ref, lg, (size_t)NSEQ * V);
        printf("%s vs f32: logits' rms error %.4f of their rms\n", names[k], e[k]);
        free(lg);
        free(out);
    }
    assert_true(e[0] < 0.5 && e[0] > e[1] && e[1] > e[2] && e[2] > 0);
    free(ref);
    free(dir);
}

/* A mixture needs a GGUF output; unknown names are refused with the list of valid ones. */
static void test_impossible_requests(void **state) {
    (void)state;
    char *dir = tu_path("S1C_TMP", "kq_untied"), *hf = tu_path("S1C_TMP", "kq_err_hf"), *log = tu_path("S1C_TMP", "kq_err.log");
    s1c_err err;
    assert_int_not_equal(s1c_model_convert(dir, hf, S1C_MIX(S1C_FTYPE_Q4_K_M), &err), 0);
    assert_non_null(strstr(err.msg, "q4_k_m"));
    assert_int_not_equal(s1c_model_convert(dir, "x.gguf", S1C_MIX(3), &err), 0);
    assert_int_not_equal(s1c_model_convert(dir, "x.gguf", S1C_Q6_K, &err), 0); /* a bare K type is not a --type */
    assert_int_equal(tu_system("%s convert %s x.gguf --type q3_k_m 2> %s", tu_env("S1C_BIN"), dir, log), 1);
    char *msg = tu_read(log, NULL);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "q4_k_m"));
    assert_non_null(strstr(msg, "'q3_k_m'"));
    free(msg);
    /* llama-quantize's upper-case spelling is accepted */
    assert_int_equal(tu_system("%s convert %s %s_up.gguf --type Q6_K 2>/dev/null", tu_env("S1C_BIN"), dir, dir), 0);
    free(dir); free(hf); free(log);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixture_types),
        cmocka_unit_test(test_mixtures_predict),
        cmocka_unit_test(test_impossible_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
