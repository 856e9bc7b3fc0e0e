/* Model hyperparameters: from/to Hugging Face config.json, validation, presets. */
#include "s1c/model.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int json_int(const cJSON *root, const char *key, int def, bool required, int *out, const char *path, s1c_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) return s1c_fail(err, "%s: missing \"%s\"", path, key);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble)
        return s1c_fail(err, "%s: \"%s\" should be an integer", path, key);
    *out = (int)v->valuedouble;
    return 0;
}

static int json_float(const cJSON *root, const char *key, float def, float *out, const char *path, s1c_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) { *out = def; return 0; }
    if (!cJSON_IsNumber(v)) return s1c_fail(err, "%s: \"%s\" should be a number", path, key);
    *out = (float)v->valuedouble;
    return 0;
}

/* eos_token_id may be an int or a list (Qwen2.5 instruct lists two); take the first. */
static int json_first_id(const cJSON *root, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsArray(v)) v = cJSON_GetArrayItem(v, 0);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : -1;
}

int s1c_config_from_hf_json(s1c_config *c, const char *json, const char *path, s1c_err *err) {
    memset(c, 0, sizeof *c);
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return s1c_fail(err, "%s: not valid JSON", path);
    }
    int rc = -1;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const char *arch = cJSON_IsString(mt) ? mt->valuestring : NULL;
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (!arch && cJSON_IsString(a0)) arch = strcmp(a0->valuestring, "Qwen2ForCausalLM") == 0 ? "qwen2" : strcmp(a0->valuestring, "LlamaForCausalLM") == 0 ? "llama" : a0->valuestring;
    if (!arch) { s1c_fail(err, "%s: no \"model_type\" or \"architectures\"", path); goto out; }
    if (strcmp(arch, "qwen2") == 0) c->arch = S1C_ARCH_QWEN2;
    else if (strcmp(arch, "llama") == 0) c->arch = S1C_ARCH_LLAMA;
    else { s1c_fail(err, "%s: unsupported architecture '%s' (qwen2 and llama are supported)", path, arch); goto out; }
    c->rope_layout = S1C_ROPE_HALF; /* HF stores Q/K for rotate_half in both families */
    if (json_int(root, "hidden_size", 0, true, &c->dim, path, err) ||
        json_int(root, "intermediate_size", 0, true, &c->hidden_dim, path, err) ||
        json_int(root, "num_hidden_layers", 0, true, &c->n_layers, path, err) ||
        json_int(root, "num_attention_heads", 0, true, &c->n_heads, path, err) ||
        json_int(root, "num_key_value_heads", c->n_heads, false, &c->n_kv_heads, path, err) ||
        json_int(root, "vocab_size", 0, true, &c->vocab_size, path, err) ||
        json_int(root, "max_position_embeddings", 2048, false, &c->max_seq_len, path, err) ||
        json_float(root, "rope_theta", 10000.0f, &c->rope_theta, path, err) ||
        json_float(root, "rms_norm_eps", 1e-6f, &c->norm_eps, path, err))
        goto out;
    if (c->n_heads <= 0) { s1c_fail(err, "%s: num_attention_heads must be positive", path); goto out; }
    if (json_int(root, "head_dim", c->dim / c->n_heads, false, &c->head_dim, path, err)) goto out;
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    c->tied_embeddings = cJSON_IsBool(tie) ? cJSON_IsTrue(tie) : false; /* transformers' default for both */
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (rs && !cJSON_IsNull(rs)) { s1c_fail(err, "%s: rope_scaling is not supported yet", path); goto out; }
    c->bos_id = json_first_id(root, "bos_token_id");
    c->eos_id = json_first_id(root, "eos_token_id");
    rc = s1c_config_validate(c, path, err);
out:
    cJSON_Delete(root);
    return rc;
}

char *s1c_config_to_hf_json(const s1c_config *c, const char *torch_dtype) {
    bool qwen = c->arch == S1C_ARCH_QWEN2;
    cJSON *r = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(r, "architectures");
    cJSON_AddItemToArray(a, cJSON_CreateString(qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM"));
    cJSON_AddStringToObject(r, "model_type", qwen ? "qwen2" : "llama");
    cJSON_AddNumberToObject(r, "hidden_size", c->dim);
    cJSON_AddNumberToObject(r, "intermediate_size", c->hidden_dim);
    cJSON_AddNumberToObject(r, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(r, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(r, "num_key_value_heads", c->n_kv_heads);
    if (c->head_dim != c->dim / c->n_heads) cJSON_AddNumberToObject(r, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(r, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(r, "max_position_embeddings", c->max_seq_len);
    cJSON_AddNumberToObject(r, "rope_theta", c->rope_theta);
    cJSON_AddNumberToObject(r, "rms_norm_eps", c->norm_eps);
    cJSON_AddBoolToObject(r, "tie_word_embeddings", c->tied_embeddings);
    cJSON_AddStringToObject(r, "hidden_act", "silu");
    if (!qwen) cJSON_AddBoolToObject(r, "attention_bias", c->qkv_bias);
    if (c->bos_id >= 0) cJSON_AddNumberToObject(r, "bos_token_id", c->bos_id);
    if (c->eos_id >= 0) cJSON_AddNumberToObject(r, "eos_token_id", c->eos_id);
    cJSON_AddStringToObject(r, "torch_dtype", torch_dtype);
    char *s = cJSON_Print(r);
    cJSON_Delete(r);
    return s;
}

int s1c_config_validate(const s1c_config *c, const char *path, s1c_err *err) {
    if (c->dim <= 0 || c->dim > 1 << 16) return s1c_fail(err, "%s: hidden size %d out of range", path, c->dim);
    if (c->hidden_dim <= 0 || c->hidden_dim > 1 << 18) return s1c_fail(err, "%s: FFN size %d out of range", path, c->hidden_dim);
    if (c->n_layers <= 0 || c->n_layers > 1024) return s1c_fail(err, "%s: layer count %d out of range", path, c->n_layers);
    if (c->n_heads <= 0 || c->n_heads > 1024) return s1c_fail(err, "%s: head count %d out of range", path, c->n_heads);
    if (c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads != 0)
        return s1c_fail(err, "%s: %d KV heads do not divide %d heads", path, c->n_kv_heads, c->n_heads);
    if (c->head_dim <= 0 || c->head_dim > 1024 || c->head_dim % 2 != 0)
        return s1c_fail(err, "%s: head size %d must be even and positive", path, c->head_dim);
    if (c->vocab_size <= 0 || c->vocab_size > 1 << 24) return s1c_fail(err, "%s: vocabulary size %d out of range", path, c->vocab_size);
    if (c->max_seq_len <= 0) return s1c_fail(err, "%s: context length %d must be positive", path, c->max_seq_len);
    if (!(c->rope_theta > 0.0f)) return s1c_fail(err, "%s: rope theta must be positive", path);
    if (!(c->norm_eps > 0.0f && c->norm_eps < 1.0f)) return s1c_fail(err, "%s: RMSNorm eps %g out of range", path, (double)c->norm_eps);
    return 0;
}

typedef struct {
    const char *name;
    int arch, dim, hidden, layers, heads, kv_heads, vocab, ctx;
    float theta, eps;
    bool tied, bias;
} preset;

/* Qwen2.5 shapes from the released config.json files; "tiny" sizes are for tests. */
static const preset presets[] = {
    {"tiny", S1C_ARCH_QWEN2, 64, 176, 2, 4, 2, 512, 4096, 1e6f, 1e-6f, true, true},
    {"qwen2.5-0.5b", S1C_ARCH_QWEN2, 896, 4864, 24, 14, 2, 151936, 32768, 1e6f, 1e-6f, true, true},
    {"qwen2.5-1.5b", S1C_ARCH_QWEN2, 1536, 8960, 28, 12, 2, 151936, 32768, 1e6f, 1e-6f, true, true},
    {"qwen2.5-3b", S1C_ARCH_QWEN2, 2048, 11008, 36, 16, 2, 151936, 32768, 1e6f, 1e-6f, true, true},
    {"qwen2.5-7b", S1C_ARCH_QWEN2, 3584, 18944, 28, 28, 4, 152064, 32768, 1e6f, 1e-6f, false, true},
    {"qwen2.5-14b", S1C_ARCH_QWEN2, 5120, 13824, 48, 40, 8, 152064, 32768, 1e6f, 1e-6f, false, true},
    {"qwen2.5-32b", S1C_ARCH_QWEN2, 5120, 27648, 64, 40, 8, 152064, 32768, 1e6f, 1e-6f, false, true},
    {"tiny", S1C_ARCH_LLAMA, 64, 172, 5, 8, 4, 512, 512, 1e4f, 1e-5f, true, false},
};

int s1c_config_preset(s1c_config *c, const char *arch, const char *name, s1c_err *err) {
    int a = strcmp(arch, "qwen2") == 0 ? S1C_ARCH_QWEN2 : strcmp(arch, "llama") == 0 ? S1C_ARCH_LLAMA : -1;
    if (a < 0) return s1c_fail(err, "unknown architecture '%s' (qwen2 or llama)", arch);
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        const preset *p = &presets[i];
        if (p->arch != a || strcmp(p->name, name) != 0) continue;
        *c = (s1c_config){
            .arch = a, .dim = p->dim, .hidden_dim = p->hidden, .n_layers = p->layers, .n_heads = p->heads,
            .n_kv_heads = p->kv_heads, .head_dim = p->dim / p->heads, .vocab_size = p->vocab, .max_seq_len = p->ctx,
            .rope_theta = p->theta, .norm_eps = p->eps, .rope_layout = S1C_ROPE_HALF,
            .tied_embeddings = p->tied, .qkv_bias = p->bias, .bos_id = -1, .eos_id = -1,
        };
        if (a == S1C_ARCH_QWEN2) { c->bos_id = 151643; c->eos_id = 151645; }
        if (c->eos_id >= c->vocab_size) c->bos_id = c->eos_id = -1;
        return 0;
    }
    return s1c_fail(err, "unknown preset '%s' for %s (try tiny, qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-3b, qwen2.5-7b, qwen2.5-14b, qwen2.5-32b)", name, arch);
}

uint64_t s1c_config_n_params(const s1c_config *c) {
    uint64_t d = (uint64_t)c->dim, q = (uint64_t)c->n_heads * (uint64_t)c->head_dim;
    uint64_t kv = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim, h = (uint64_t)c->hidden_dim;
    uint64_t per_layer = 2 * d + d * q + 2 * d * kv + q * d + 3 * d * h + (c->qkv_bias ? q + 2 * kv : 0);
    uint64_t emb = (uint64_t)c->vocab_size * d;
    return emb * (c->tied_embeddings ? 1 : 2) + d + per_layer * (uint64_t)c->n_layers;
}
