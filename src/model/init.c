/* Freshly initialized models as Hugging Face directories, for tests, benchmarks and
 * training from scratch. Initialization follows transformers' Qwen2/Llama
 * `_init_weights`: matrices ~ normal(0, 0.02), RMSNorm weights 1, biases 0. Tensors are
 * generated and written one at a time, so a 32B model needs no more memory than its
 * largest tensor. */
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

typedef struct init_tensor {
    char name[128];
    int role;
} init_tensor;

/* A value of mean 0 and variance 1 from one 64-bit draw: the sum of its four 16-bit uniforms
 * (Irwin-Hall, within +-2 sqrt(3)), scaled. Not a normal's tails, but no cos and log per value
 * as s1c_rng_normal's Box-Muller: for the bench's throwaway weights. */
static float quick_normal(s1c_rng *rng) {
    uint64_t u = s1c_rng_u64(rng);
    uint32_t sum = (uint32_t)(u & 0xffff) + (uint32_t)(u >> 16 & 0xffff) + (uint32_t)(u >> 32 & 0xffff) + (uint32_t)(u >> 48);
    return ((float)sum * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

static void fill(void *dst, int dtype, int role, uint64_t n, s1c_rng *rng, bool quick) {
    bool ones = role == T_ATTN_NORM || role == T_FFN_NORM || role == T_OUTPUT_NORM;
    bool zeros = role == T_Q_BIAS || role == T_K_BIAS || role == T_V_BIAS;
    for (uint64_t i = 0; i < n; i++) {
        float v = ones ? 1.0f : zeros ? 0.0f : 0.02f * (quick ? quick_normal(rng) : s1c_rng_normal(rng));
        if (dtype == S1C_F32) ((float *)dst)[i] = v;
        else ((uint16_t *)dst)[i] = s1c_f32_to_bf16(v);
    }
}

int s1c_model_init_hf(const s1c_config *c, uint64_t seed, int dtype, const char *dir, s1c_err *err) {
    return model_init_hf(c, seed, dtype, dir, false, err);
}

int model_init_hf(const s1c_config *c, uint64_t seed, int dtype, const char *dir, bool quick, s1c_err *err) {
    if (dtype != S1C_F32 && dtype != S1C_BF16) return s1c_fail(err, "init: dtype must be f32 or bf16");
    if (s1c_config_validate(c, "init", err) != 0 || s1c_mkdir_p(dir, err) != 0) return -1;
    /* tensor list in HF's order */
    int n = hf_tensor_count(c);
    init_tensor *it = calloc((size_t)n, sizeof *it);
    s1c_tensor *ts = calloc((size_t)n, sizeof *ts);
    if (!it || !ts) { free(it); free(ts); return s1c_fail(err, "init: out of memory"); }
    for (int i = 0; i < n; i++) {
        int layer;
        hf_tensor_at(c, i, &it[i].role, &layer);
        tensor_name_hf(it[i].name, sizeof it[i].name, it[i].role, layer < 0 ? 0 : layer);
    }
    uint64_t max_bytes = 0;
    for (int i = 0; i < n; i++) {
        s1c_tensor *t = &ts[i];
        t->name = it[i].name;
        t->dtype = dtype;
        tensor_shape(c, it[i].role, t->shape, &t->ndim);
        s1c_dtype_nbytes(dtype, s1c_tensor_nelem(t), &t->nbytes);
        if (t->nbytes > max_bytes) max_bytes = t->nbytes;
    }
    char *path = s1c_path_join(dir, "model.safetensors");
    void *buf = malloc(max_bytes);
    s1c_wfile f;
    int rc = -1;
    if (!buf) s1c_fail(err, "init: out of memory");
    else if (st_write_begin(&f, path, ts, n, err) == 0) {
        s1c_rng rng;
        s1c_rng_seed(&rng, seed);
        for (int i = 0; i < n; i++) {
            fill(buf, dtype, it[i].role, s1c_tensor_nelem(&ts[i]), &rng, quick);
            s1c_wfile_write(&f, buf, ts[i].nbytes);
        }
        rc = s1c_wfile_commit(&f, err);
    }
    free(buf);
    free(path);
    free(it);
    free(ts);
    if (rc != 0) return -1;
    char *json = s1c_config_to_hf_json(c, dtype == S1C_F32 ? "float32" : "bfloat16");
    char *cpath = s1c_path_join(dir, "config.json");
    rc = s1c_write_file_atomic(cpath, json, strlen(json), err);
    free(json);
    free(cpath);
    return rc;
}
