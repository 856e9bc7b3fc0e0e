/* Against a REAL llama.cpp (prebuilt, ../shared/tools/llama-ref), skipped (77) without node/npm:
 *  1. Q8_0, Q4_0 and BF16 GGUFs written by llama.cpp's gguf-py (requant_gguf.py), and Q4_K / Q6_K
 *     ones (random blocks in ggml's layouts, written by gguf-py), load in s1c (the quantized
 *     matrices read in place by its quantized kernels, checked) and give llama.cpp's logits
 *     within QTOL of the logit range; so does the Q4_K_M file `s1c convert --type q4_k_m`
 *     writes (llama.cpp greedy-decodes it).
 *  2. llama.cpp loads the GGUFs `s1c_model_convert` writes from tiny qwen2 and llama HF models
 *     (Qwen2.5 tokenizer, 151936 rows) and its logits equal s1c's to fp32 tolerance.
 * s1c runs the exact sequence llama.cpp ran (prompt + its greedy tokens), so one near-tie
 * cannot make the two walks diverge; argmax must agree wherever the top-2 margin exceeds the
 * tolerance. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelrun.h"
#include "testutil.h"
#include "s1c/text.h"

/* F32 weights: llama.cpp differs only by summation order (~1e-6 relative), as in
 * test_llama_ref.c. */
#define F32_TOL 1e-4
/* Quantized weights: llama.cpp also rounds every matmul input (activation) to Q8_0, s1c keeps
 * f32 activations on the same (bit-exactly dequantized) weights. Measured on this fixture:
 * s1c vs llama.cpp 3.0e-2 (Q8_0) and 2.5e-2 (Q4_0) of the logit range, and llama-ref's exact
 * float64 numpy forward vs llama.cpp gives the same 3.0e-2 on Q8_0, so the gap is llama.cpp's
 * activation rounding, not s1c. Tolerance 5e-2 of the range. */
#define QTOL_REL 5e-2

static int run(const char *fmt, const char *a, const char *b, const char *c) {
    return tu_system("bash %s/tests/ref/test_convert_llamacpp_run.sh %s %s %s %s > /dev/null", tu_env("S1C_SRC"), fmt, a, b ? b : "", c ? c : "");
}

/* llama.cpp tokenizes text with s1c's GGUF exactly as s1c does (its tokenizer metadata is right). */
static int tokenize_like_llamacpp(const char *gg, const char *tag) {
    static const char text[] = "<|im_start|>user\nHello world! What's 3.14159 × 2?  Ünïcödé 数学, emoji 🤔\n"
                               "  indented\tcode(x) -> y;\n<|im_end|>\n<|im_start|>assistant\n";
    char in[1200], out[1200];
    snprintf(in, sizeof in, "%s/%s_text.txt", tu_env("S1C_TMP"), tag);
    snprintf(out, sizeof out, "%s/%s_ids.txt", tu_env("S1C_TMP"), tag);
    if (tu_write(in, text, strlen(text)) != 0) return 1;
    int rc = tu_system("bash %s/tests/ref/test_convert_llamacpp_run.sh tokenize %s %s %s", tu_env("S1C_SRC"), gg, in, out);
    if (rc == 77) return 77;
    char *ids = rc == 0 ? tu_read(out, NULL) : NULL;
    if (!ids) { fprintf(stderr, "%s: llama.cpp tokenize failed (%d)\n", tag, rc); return 1; }
    gguf_file g;
    s1c_tokenizer *t = NULL;
    s1c_err err;
    int32_t *mine = NULL;
    int n = 0, bad = 1;
    if (gguf_open(&g, gg, &err) == 0) {
        if (s1c_tok_load_gguf(&t, &g, &err) == 0 && s1c_tok_encode_ex(t, text, strlen(text), S1C_ENC_SPECIAL, &mine, &n, &err) == 0) {
            char *p = ids;
            bad = 0;
            for (int i = 0; i < n && !bad; i++) {
                char *e;
                long v = strtol(p, &e, 10);
                bad = e == p || v != mine[i];
                p = e;
            }
            while (*p == ' ' || *p == '\n') p++;
            if (*p) bad = 1;
        }
        gguf_close(&g);
    }
    printf("%s: llama.cpp tokenizes %d tokens of mixed text %s s1c\n", tag, n, bad ? "UNLIKE" : "exactly like");
    if (bad) fprintf(stderr, "%s: llama.cpp %s\n", tag, ids);
    free(ids);
    free(mine);
    s1c_tok_free(t);
    return bad;
}

static int convert_case(const char *arch, const char *tag) {
    char hf[1100], gg[1200];
    snprintf(hf, sizeof hf, "%s/%s_hf", tu_env("S1C_TMP"), tag);
    snprintf(gg, sizeof gg, "%s.gguf", hf);
    if (tu_system("rm -rf %s && %s init --arch %s --preset tiny --seed 5 --vocab 151936 --tokenizer %s/qwen2.5-tokenizer --out %s 2>/dev/null",
                  hf, tu_env("S1C_BIN"), arch, tu_env("S1C_DATA"), hf) != 0) { fprintf(stderr, "%s: s1c init failed\n", tag); return 1; }
    s1c_err err;
    if (s1c_model_convert(hf, gg, -1, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    int rc = tokenize_like_llamacpp(gg, tag);
    if (rc != 0) return rc;
    return mr_vs_llamacpp(gg, "9707 11 1879 0 358 1079 264 1273 315 279 5686 13", tag, F32_TOL, 0);
}

/* The K-quant files' matrices stay in their type (no f32 copy at load): their token embeddings
 * (256 wide) are of that type. */
static int reads_in_place(const char *path, int dtype) {
    s1c_err err;
    s1c_model *m;
    if (s1c_model_open(&m, path, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    int got = s1c_model_weight_dtype(m);
    s1c_model_free(m);
    if (got == dtype) return 0;
    fprintf(stderr, "%s: weights loaded as %s, not read in place as %s\n", path, s1c_dtype_name(got), s1c_dtype_name(dtype));
    return 1;
}

int main(void) {
    char *dir = tu_path("S1C_TMP", "cv_llamacpp");
    int rc = run("make", dir, NULL, NULL);
    if (rc == 77) { printf("SKIP: llama-ref (node/npm) unavailable\n"); free(dir); return 77; }
    if (rc != 0) { fprintf(stderr, "making the quantized GGUFs failed (%d)\n", rc); return 1; }
    char path[1200], prompt[1024] = {0};
    snprintf(path, sizeof path, "%s/prompt.txt", dir);
    char *p = tu_read(path, NULL);
    if (!p) return 1;
    snprintf(prompt, sizeof prompt, "%s", p);
    free(p);
    prompt[strcspn(prompt, "\n")] = 0;
    int fails = 0, passes = 0, r;
    /* BF16: llama.cpp rounds every matmul input to bf16, s1c widens the weights and keeps f32
     * activations: measured 9.0e-3 of the logit range on this random model (2e-2 allowed) */
    const char *q[7] = {"f32", "Q8_0", "Q4_0", "BF16", "Q4_K", "Q6_K", "S1C_Q4_K_M"};
    for (int i = 0; i < 7; i++) {
        snprintf(path, sizeof path, "%s/%s.gguf", dir, q[i]);
        char tag[64];
        snprintf(tag, sizeof tag, "llamacpp_quant_%s", q[i]);
        /* S1C_Q4_K_M: 7.2e-2 of the range (s1c reads it in place, 8-bit activations per 32);
         * llama-ref's exact float64 numpy forward on the same file is 6.3e-2 from llama.cpp too
         * (its Q4_K/Q6_K kernels round the activations to Q8_K, 4 layers of 256-wide rows), so
         * 1e-1 is allowed there */
        r = mr_vs_llamacpp(path, prompt, tag, i == 0 ? F32_TOL : 0, i == 3 ? 2e-2 : i == 6 ? 1e-1 : QTOL_REL);
        if (r == 77) return 77;
        /* read in place, judged by the token embedding's type (in the Q4_K_M file, whose output
         * is separate, the mixture's base type Q4_K) */
        if (r == 0 && i >= 4) r = reads_in_place(path, i == 5 ? S1C_Q6_K : S1C_Q4_K);
        r ? fails++ : passes++;
    }
    r = convert_case("qwen2", "s1c_convert_qwen2");
    r ? fails++ : passes++;
    r = convert_case("llama", "s1c_convert_llama");
    r ? fails++ : passes++;
    printf("%d passed, %d failed\n", passes, fails);
    free(dir);
    return fails != 0;
}
