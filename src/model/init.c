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

static void fill(void *dst, int dtype, int role, uint64_t n, s1c_rng *rng) {
    bool ones = role == T_ATTN_NORM || role == T_FFN_NORM || role == T_OUTPUT_NORM;
    bool zeros = role == T_Q_BIAS || role == T_K_BIAS || role == T_V_BIAS;
    for (uint64_t i = 0; i < n; i++) {
        float v = ones ? 1.0f : zeros ? 0.0f : 0.02f * s1c_rng_normal(rng);
        if (dtype == S1C_F32) ((float *)dst)[i] = v;
        else ((uint16_t *)dst)[i] = s1c_f32_to_bf16(v);
    }
}

static void shape_of(const s1c_config *c, int role, int64_t *shape, int *ndim) {
    int64_t dim = c->dim, q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t h = c->hidden_dim, V = c->vocab_size;
    int64_t r = 0, k = 0;
    switch (role) {
    case T_TOK_EMBD: case T_OUTPUT: r = V; k = dim; break;
    case T_OUTPUT_NORM: case T_ATTN_NORM: case T_FFN_NORM: r = dim; break;
    case T_Q: r = q; k = dim; break;
    case T_K: case T_V: r = kv; k = dim; break;
    case T_Q_BIAS: r = q; break;
    case T_K_BIAS: case T_V_BIAS: r = kv; break;
    case T_O: r = dim; k = q; break;
    case T_GATE: case T_UP: r = h; k = dim; break;
    case T_DOWN: r = dim; k = h; break;
    }
    shape[0] = r;
    shape[1] = k;
    *ndim = k ? 2 : 1;
}

int s1c_model_init_hf(const s1c_config *c, uint64_t seed, int dtype, const char *dir, s1c_err *err) {
    if (dtype != S1C_F32 && dtype != S1C_BF16) return s1c_fail(err, "init: dtype must be f32 or bf16");
    if (s1c_config_validate(c, "init", err) != 0 || s1c_mkdir_p(dir, err) != 0) return -1;
    /* tensor list in HF's order */
    int n_per_layer = 9 + (c->qkv_bias ? 3 : 0);
    int n = 2 + (c->tied_embeddings ? 0 : 1) + n_per_layer * c->n_layers;
    init_tensor *it = calloc((size_t)n, sizeof *it);
    s1c_tensor *ts = calloc((size_t)n, sizeof *ts);
    if (!it || !ts) { free(it); free(ts); return s1c_fail(err, "init: out of memory"); }
    int k = 0;
    static const int layer_roles[] = {T_ATTN_NORM, T_Q, T_Q_BIAS, T_K, T_K_BIAS, T_V, T_V_BIAS, T_O, T_FFN_NORM, T_GATE, T_UP, T_DOWN};
    it[k++].role = T_TOK_EMBD;
    for (int l = 0; l < c->n_layers; l++)
        for (size_t r = 0; r < sizeof layer_roles / sizeof layer_roles[0]; r++) {
            int role = layer_roles[r];
            if (!c->qkv_bias && (role == T_Q_BIAS || role == T_K_BIAS || role == T_V_BIAS)) continue;
            tensor_name_hf(it[k].name, sizeof it[k].name, role, l);
            it[k++].role = role;
        }
    it[k++].role = T_OUTPUT_NORM;
    if (!c->tied_embeddings) it[k++].role = T_OUTPUT;
    uint64_t max_bytes = 0;
    for (int i = 0; i < n; i++) {
        if (it[i].name[0] == 0) tensor_name_hf(it[i].name, sizeof it[i].name, it[i].role, 0);
        s1c_tensor *t = &ts[i];
        t->name = it[i].name;
        t->dtype = dtype;
        shape_of(c, it[i].role, t->shape, &t->ndim);
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
            fill(buf, dtype, it[i].role, s1c_tensor_nelem(&ts[i]), &rng);
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
