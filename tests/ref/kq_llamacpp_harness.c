/* Driver of llama.cpp's own quantization code, for test_kquant_llamacpp.c (compiled at test
 * time by test_kquant_llamacpp_run.sh against the prebuilt libggml-base / libllama of
 * ../shared/tools/llama-ref; not part of s1c).
 *
 *   kq_llamacpp_harness rows TYPE N_PER_ROW IN.f32 OUT.q OUT.deq
 *       ggml_quantize_chunk(TYPE, no importance matrix) of the float32 rows in IN.f32 (the
 *       path llama-quantize takes), then ggml's own dequantizer of the result.
 *   kq_llamacpp_harness model FTYPE IN.gguf OUT.gguf
 *       llama_model_quantize with the default parameters (llama-quantize IN OUT FTYPE). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "llama.h"

static void *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(len > 0 ? (size_t)len : 1);
    if (p && fread(p, 1, (size_t)len, f) != (size_t)len) { free(p); p = NULL; }
    fclose(f);
    *n = (size_t)len;
    return p;
}

static int write_all(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(p, 1, n, f) == n;
    if (f) ok &= fclose(f) == 0;
    return ok ? 0 : 1;
}

static int rows(int type, long n_per_row, const char *in, const char *out_q, const char *out_deq) {
    size_t nbytes;
    float *x = read_all(in, &nbytes);
    if (!x || n_per_row <= 0 || nbytes % (sizeof(float) * (size_t)n_per_row)) { fprintf(stderr, "bad input %s\n", in); return 1; }
    int64_t nrows = (int64_t)(nbytes / sizeof(float)) / n_per_row;
    size_t qsize = ggml_row_size((enum ggml_type)type, n_per_row) * (size_t)nrows;
    void *q = malloc(qsize);
    float *y = malloc(nbytes);
    size_t done = ggml_quantize_chunk((enum ggml_type)type, x, q, 0, nrows, n_per_row, NULL);
    if (done != qsize) { fprintf(stderr, "ggml_quantize_chunk wrote %zu bytes, expected %zu\n", done, qsize); return 1; }
    ggml_get_type_traits((enum ggml_type)type)->to_float(q, y, nrows * n_per_row);
    int rc = write_all(out_q, q, qsize) | write_all(out_deq, y, nbytes);
    free(x); free(q); free(y);
    return rc;
}

static int model(int ftype, const char *in, const char *out) {
    llama_backend_init();
    struct llama_model_quantize_params p = llama_model_quantize_default_params();
    p.ftype = (enum llama_ftype)ftype;
    p.nthread = 2;
    uint32_t rc = llama_model_quantize(in, out, &p);
    llama_backend_free();
    return rc != 0;
}

int main(int argc, char **argv) {
    if (argc == 7 && !strcmp(argv[1], "rows")) return rows(atoi(argv[2]), atol(argv[3]), argv[4], argv[5], argv[6]);
    if (argc == 5 && !strcmp(argv[1], "model")) return model(atoi(argv[2]), argv[3], argv[4]);
    fprintf(stderr, "usage: %s rows TYPE N_PER_ROW IN.f32 OUT.q OUT.deq | model FTYPE IN.gguf OUT.gguf\n", argv[0]);
    return 2;
}
