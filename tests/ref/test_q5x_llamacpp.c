/* Q4_1 / Q5_0 / Q5_1 against a REAL llama.cpp (prebuilt, ../shared/tools/llama-ref), skipped (77)
 * without node/npm: GGUFs of these types written by llama.cpp's gguf-py (requant_gguf.py) load in
 * s1c with every matrix read in place (no f32 copy) and give llama.cpp's logits within QTOL of the
 * logit range; so do the Q5_K_M / Q4_K_M files `s1c convert` writes at a width that is not whole
 * 256-blocks (mostly Q5_1 / Q5_0, as llama-quantize falls back), which llama.cpp greedy-decodes.
 * s1c runs the exact sequence llama.cpp ran (prompt + its greedy tokens), so a near-tie cannot
 * make the walks diverge; the argmax must agree wherever the top-2 margin exceeds the tolerance. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "modelrun.h"
#include "testutil.h"

/* llama.cpp rounds every matmul input to Q8_0 (Q5_0) or Q8_1 (Q4_1, Q5_1) per 32, s1c to its
 * own 8-bit blocks, both on the bit-exactly dequantized weights (measured on these fixtures: see
 * the printed lines, 2.3e-2..3.5e-2 of the range): 5e-2, as test_convert_llamacpp's Q8_0/Q4_0. */
#define QTOL_REL 5e-2

/* The file's matrices read in place: none widened to f32 at load. */
static bool none_widened(const char *model, const char *tag) {
    s1c_err err;
    s1c_model *m;
    if (s1c_model_open(&m, model, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return false; }
    int n = m->n_deq;
    s1c_model_free(m);
    if (n != 0) fprintf(stderr, "%s: %d matrices widened to f32 at load\n", tag, n);
    return n == 0;
}

/* The file's matrices: how many of type dtype (the fixture must hold the type it stands for). */
static int count_type(const char *path, int dtype) {
    gguf_file g;
    s1c_err err;
    if (gguf_open(&g, path, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return -1; }
    int n = 0;
    for (uint64_t i = 0; i < g.n_tensors; i++) n += g.tensors[i].dtype == dtype && g.tensors[i].ndim == 2;
    gguf_close(&g);
    return n;
}

int main(void) {
    char *dir = tu_path("S1C_TMP", "q5x_llamacpp");
    int rc = tu_system("bash %s/tests/ref/test_convert_llamacpp_run.sh make-q5x %s > /dev/null", tu_env("S1C_SRC"), dir);
    if (rc == 77) { printf("SKIP: llama-ref (node/npm) unavailable\n"); free(dir); return 77; }
    if (rc != 0) { fprintf(stderr, "making the GGUFs failed (%d)\n", rc); free(dir); return 1; }
    char path[1200], *p;
    snprintf(path, sizeof path, "%s/prompt.txt", dir);
    if (!(p = tu_read(path, NULL))) return 1;
    p[strcspn(p, "\n")] = 0;
    static const struct { const char *name; int dtype; } files[] = {
        {"Q4_1", S1C_Q4_1}, {"Q5_0", S1C_Q5_0}, {"Q5_1", S1C_Q5_1}, {"S1C_Q5_K_M", S1C_Q5_1}, {"S1C_Q4_K_M", S1C_Q5_0}};
    int fails = 0, passes = 0;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s.gguf", dir, files[i].name);
        char tag[64];
        snprintf(tag, sizeof tag, "llamacpp_q5x_%s", files[i].name);
        int n = count_type(path, files[i].dtype);
        if (n < 10) { fprintf(stderr, "%s: %d %s matrices, expected most of them\n", tag, n, s1c_dtype_name(files[i].dtype)); fails++; continue; }
        int r = none_widened(path, tag) ? mr_vs_llamacpp(path, p, tag, 0, QTOL_REL) : 1;
        if (r == 77) { free(p); free(dir); return 77; }
        r ? fails++ : passes++;
    }
    printf("%d passed, %d failed\n", passes, fails);
    free(p);
    free(dir);
    return fails != 0;
}
