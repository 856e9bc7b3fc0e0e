#include <stdio.h>
#include "model_internal.h"

static const char *gguf_names[T_ROLE_COUNT] = {
    "token_embd.weight", "output_norm.weight", "output.weight",
    "blk.%d.attn_norm.weight", "blk.%d.attn_q.weight", "blk.%d.attn_k.weight", "blk.%d.attn_v.weight",
    "blk.%d.attn_q.bias", "blk.%d.attn_k.bias", "blk.%d.attn_v.bias", "blk.%d.attn_output.weight",
    "blk.%d.ffn_norm.weight", "blk.%d.ffn_gate.weight", "blk.%d.ffn_up.weight", "blk.%d.ffn_down.weight",
};

static const char *hf_names[T_ROLE_COUNT] = {
    "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
    "model.layers.%d.input_layernorm.weight", "model.layers.%d.self_attn.q_proj.weight",
    "model.layers.%d.self_attn.k_proj.weight", "model.layers.%d.self_attn.v_proj.weight",
    "model.layers.%d.self_attn.q_proj.bias", "model.layers.%d.self_attn.k_proj.bias",
    "model.layers.%d.self_attn.v_proj.bias", "model.layers.%d.self_attn.o_proj.weight",
    "model.layers.%d.post_attention_layernorm.weight", "model.layers.%d.mlp.gate_proj.weight",
    "model.layers.%d.mlp.up_proj.weight", "model.layers.%d.mlp.down_proj.weight",
};

void tensor_name_gguf(char *buf, size_t n, int role, int layer) { snprintf(buf, n, gguf_names[role], layer); }
void tensor_name_hf(char *buf, size_t n, int role, int layer) { snprintf(buf, n, hf_names[role], layer); }

/* A layer's tensors in the order transformers writes them. */
static const int hf_layer_roles[] = {T_ATTN_NORM, T_Q, T_Q_BIAS, T_K, T_K_BIAS, T_V, T_V_BIAS,
                                     T_O, T_FFN_NORM, T_GATE, T_UP, T_DOWN};
enum { HF_LAYER_ROLES = sizeof hf_layer_roles / sizeof hf_layer_roles[0] };

static int hf_per_layer(const s1c_config *c) { return c->qkv_bias ? HF_LAYER_ROLES : HF_LAYER_ROLES - 3; }

int hf_tensor_count(const s1c_config *c) {
    return 2 + (c->tied_embeddings ? 0 : 1) + hf_per_layer(c) * c->n_layers;
}

void hf_tensor_at(const s1c_config *c, int i, int *role, int *layer) {
    int per = hf_per_layer(c);
    *layer = -1;
    if (i == 0) { *role = T_TOK_EMBD; return; }
    i--;
    if (i < per * c->n_layers) {
        *layer = i / per;
        int k = i % per, seen = -1;
        for (int r = 0; r < HF_LAYER_ROLES; r++) {
            int ro = hf_layer_roles[r];
            if (!c->qkv_bias && (ro == T_Q_BIAS || ro == T_K_BIAS || ro == T_V_BIAS)) continue;
            if (++seen == k) { *role = ro; return; }
        }
    }
    i -= per * c->n_layers;
    *role = i == 0 ? T_OUTPUT_NORM : T_OUTPUT;
}

void tensor_shape(const s1c_config *c, int role, int64_t *shape, int *ndim) {
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
