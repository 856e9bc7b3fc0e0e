/* Opening a model: detect the format, read the hyperparameters, bind every weight to a view
 * into the mapped file and check its shape against the config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/kernels.h"
#include "model_internal.h"

/* ------------------------------------------------------------------ configs per format */

static int config_from_l2c(s1c_config *c, const l2c_header *h) {
    *c = (s1c_config){
        .arch = S1C_ARCH_LLAMA, .dim = h->dim, .hidden_dim = h->hidden_dim, .n_layers = h->n_layers,
        .n_heads = h->n_heads, .n_kv_heads = h->n_kv_heads, .head_dim = h->dim / h->n_heads,
        .vocab_size = h->vocab_size, .max_seq_len = h->seq_len, .rope_theta = 10000.0f, .norm_eps = 1e-5f,
        .rope_layout = S1C_ROPE_ADJACENT, .tied_embeddings = h->shared_classifier, .bos_id = 1, .eos_id = 2,
    };
    return 0;
}

/* Reads "{arch}.{key}" as an int; missing → def (or an error when def < 0). */
static int gguf_int(const gguf_file *g, const char *arch, const char *key, int def, int *out, s1c_err *err) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    uint64_t v;
    int r = gguf_get_u64(g, full, &v, err);
    if (r < 0) return -1;
    if (r == 0) {
        if (def < 0) return s1c_fail(err, "%s: missing metadata '%s'", g->file.path, full);
        *out = def;
        return 0;
    }
    if (v > 1u << 30) return s1c_fail(err, "%s: metadata '%s' = %llu is out of range", g->file.path, full, (unsigned long long)v);
    *out = (int)v;
    return 0;
}

static int gguf_float(const gguf_file *g, const char *arch, const char *key, float def, float *out, s1c_err *err) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    double v;
    int r = gguf_get_f64(g, full, &v, err);
    if (r < 0) return -1;
    *out = r ? (float)v : def;
    return 0;
}

static int config_from_gguf(s1c_config *c, const gguf_file *g, s1c_err *err) {
    memset(c, 0, sizeof *c);
    const char *path = g->file.path;
    s1c_str a;
    int r = gguf_get_str(g, "general.architecture", &a, err);
    if (r < 0) return -1;
    if (r == 0) return s1c_fail(err, "%s: missing metadata 'general.architecture'", path);
    char arch[32];
    snprintf(arch, sizeof arch, "%.*s", (int)(a.len < 31 ? a.len : 31), a.p);
    if (strcmp(arch, "llama") == 0) {
        c->arch = S1C_ARCH_LLAMA;
        c->rope_layout = S1C_ROPE_ADJACENT; /* llama.cpp's converter permutes Q/K for this */
    } else if (strcmp(arch, "qwen2") == 0) {
        c->arch = S1C_ARCH_QWEN2;
        c->rope_layout = S1C_ROPE_HALF;     /* NEOX: rows kept as in HF */
    } else {
        return s1c_fail(err, "%s: unsupported architecture '%s' (llama and qwen2 are supported)", path, arch);
    }
    const gguf_kv *hc = gguf_find(g, "llama.attention.head_count");
    if (hc && hc->type == GGUF_ARRAY) return s1c_fail(err, "%s: per-layer head counts are not supported", path);
    if (gguf_int(g, arch, "embedding_length", -1, &c->dim, err) || gguf_int(g, arch, "feed_forward_length", -1, &c->hidden_dim, err) ||
        gguf_int(g, arch, "block_count", -1, &c->n_layers, err) || gguf_int(g, arch, "attention.head_count", -1, &c->n_heads, err) ||
        gguf_int(g, arch, "attention.head_count_kv", c->n_heads, &c->n_kv_heads, err) ||
        gguf_int(g, arch, "context_length", 2048, &c->max_seq_len, err) ||
        gguf_float(g, arch, "rope.freq_base", 10000.0f, &c->rope_theta, err) ||
        gguf_float(g, arch, "attention.layer_norm_rms_epsilon", 1e-5f, &c->norm_eps, err))
        return -1;
    if (c->n_heads <= 0) return s1c_fail(err, "%s: %s.attention.head_count must be positive", path, arch);
    int rope_dims = 0;
    if (gguf_int(g, arch, "attention.key_length", c->dim / c->n_heads, &c->head_dim, err) ||
        gguf_int(g, arch, "rope.dimension_count", c->head_dim, &rope_dims, err))
        return -1;
    if (rope_dims != c->head_dim)
        return s1c_fail(err, "%s: partial RoPE (%d of %d head dimensions) is not supported", path, rope_dims, c->head_dim);
    const s1c_tensor *emb = gguf_find_tensor(g, "token_embd.weight");
    if (!emb) return s1c_fail(err, "%s: missing tensor 'token_embd.weight'", path);
    c->vocab_size = emb->ndim == 2 && emb->shape[0] <= (1 << 24) ? (int)emb->shape[0] : 0;
    c->tied_embeddings = gguf_find_tensor(g, "output.weight") == NULL;
    uint64_t id;
    c->bos_id = gguf_get_u64(g, "tokenizer.ggml.bos_token_id", &id, NULL) == 1 && id < (uint64_t)c->vocab_size ? (int)id : -1;
    c->eos_id = gguf_get_u64(g, "tokenizer.ggml.eos_token_id", &id, NULL) == 1 && id < (uint64_t)c->vocab_size ? (int)id : -1;
    return 0;
}

static int config_from_hf_dir(s1c_config *c, const char *dir, s1c_err *err) {
    char *path = s1c_path_join(dir, "config.json");
    char *text = NULL;
    int rc = s1c_read_file(path, 1u << 20, &text, NULL, err);
    if (rc == 0) rc = s1c_config_from_hf_json(c, text, path, err);
    free(text);
    free(path);
    return rc;
}

/* ------------------------------------------------------------------ binding weights */

static const s1c_tensor *find_tensor(const s1c_model *m, int role, int layer, char *name, size_t n) {
    if (m->format == S1C_FMT_HF) {
        tensor_name_hf(name, n, role, layer);
        return st_find(&m->st, name);
    }
    tensor_name_gguf(name, n, role, layer);
    return m->format == S1C_FMT_GGUF ? gguf_find_tensor(&m->gguf, name) : l2c_find(&m->l2c, name);
}

/* A matrix stored in a quantized type the kernels do not read in place (Q2_K, Q3_K) becomes an
 * owned f32 copy (kept in m->deq, freed by s1c_model_free), so the float kernels run it
 * unchanged, at 4 bytes per weight. Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K matrices
 * (kern_is_qmatmul_dtype) stay views into the mapped file (kern_matmul reads their blocks), as
 * F32/F16/BF16 do. */
static int dequantize_matrix(s1c_model *m, const s1c_tensor **t, s1c_err *err) {
    const s1c_tensor *q = *t;
    uint64_t n = s1c_tensor_nelem(q), nbytes;
    if (s1c_mul_overflow(n, sizeof(float), &nbytes) || nbytes > SIZE_MAX)
        return s1c_fail(err, "%s: tensor '%s' is too large to dequantize", m->path, q->name);
    float *buf = malloc((size_t)nbytes);
    if (!buf) return s1c_fail(err, "%s: out of memory dequantizing tensor '%s' (%llu bytes)", m->path, q->name, (unsigned long long)nbytes);
    if (s1c_dequantize(buf, q->data, q->dtype, n, err) != 0) {
        free(buf);
        return s1c_fail_prefix(err, "%s: tensor '%s'", m->path, q->name);
    }
    s1c_tensor *d = &m->deq[m->n_deq++];
    *d = *q;
    d->dtype = S1C_F32;
    d->data = buf;
    d->nbytes = nbytes;
    *t = d;
    return 0;
}

/* Finds a tensor and checks its shape ([rows, cols], or [rows] when cols == 0) and type. */
static int bind(s1c_model *m, int role, int layer, int64_t rows, int64_t cols, bool optional,
                const s1c_tensor **out, s1c_err *err) {
    char name[128];
    const s1c_tensor *t = find_tensor(m, role, layer, name, sizeof name);
    *out = t;
    if (!t) return optional ? 0 : s1c_fail(err, "%s: missing tensor '%s'", m->path, name);
    int64_t want[2] = {rows, cols};
    int want_nd = cols ? 2 : 1;
    bool ok = t->ndim == want_nd && t->shape[0] == rows && (want_nd == 1 || t->shape[1] == cols);
    if (!ok) {
        char a[64], b[64];
        return s1c_fail(err, "%s: tensor '%s' has shape %s, config says %s", m->path, name,
                        s1c_shape_str(t->shape, t->ndim, a, sizeof a), s1c_shape_str(want, want_nd, b, sizeof b));
    }
    if (want_nd == 2 && kern_is_qmatmul_dtype(t->dtype)) {
        int block = s1c_dtype_block_size(t->dtype);
        if (cols % block != 0)
            return s1c_fail(err, "%s: tensor '%s' is %s with rows of %lld values, not whole %d-value blocks", m->path, name,
                            s1c_dtype_name(t->dtype), (long long)cols, block);
        return 0;
    }
    if (want_nd == 2 && s1c_dtype_is_quant(t->dtype)) return dequantize_matrix(m, out, err);
    if (!s1c_dtype_is_float(t->dtype)) {
        const char *dn = s1c_dtype_name(t->dtype);
        return s1c_fail(err, "%s: tensor '%s' has type %s; this build reads f32, f16 and bf16 weights%s", m->path, name,
                        dn ? dn : "?", want_nd == 2 ? ", q4_0, q4_1, q5_0, q5_1, q8_0 and q2_k..q6_k matrices" : " (vectors)");
    }
    if ((uintptr_t)t->data % (uintptr_t)s1c_dtype_type_size(t->dtype) != 0)
        return s1c_fail(err, "%s: tensor '%s' is not aligned to its element size in the file", m->path, name);
    return 0;
}

/* Copies a small 1-D tensor to f32 at *cursor and advances the cursor. */
static float *take_vector(float **cursor, const s1c_tensor *t, int64_t n) {
    if (!t) return NULL;
    float *dst = *cursor;
    s1c_to_f32(dst, t->data, t->dtype, (uint64_t)n, NULL);
    *cursor += n;
    return dst;
}

static int bind_weights(s1c_model *m, s1c_err *err) {
    const s1c_config *c = &m->cfg;
    int64_t dim = c->dim, q_dim = (int64_t)c->n_heads * c->head_dim, kv_dim = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t hid = c->hidden_dim, V = c->vocab_size;
    const s1c_tensor *t;
    m->deq = calloc((size_t)c->n_layers * 7 + 2, sizeof(s1c_tensor)); /* room for every matrix */
    if (!m->deq) return s1c_fail(err, "%s: out of memory", m->path);
    if (bind(m, T_TOK_EMBD, 0, V, dim, false, &m->tok_embd, err) != 0) return -1;
    if (c->tied_embeddings) m->output = m->tok_embd;
    else if (bind(m, T_OUTPUT, 0, V, dim, false, &m->output, err) != 0) return -1;
    /* small vectors: norms (2 per layer + 1) and biases */
    size_t per_layer = (size_t)(2 * dim + (c->qkv_bias ? q_dim + 2 * kv_dim : 0));
    m->small = malloc(((size_t)dim + per_layer * (size_t)c->n_layers) * sizeof(float));
    m->layers = calloc((size_t)c->n_layers, sizeof(layer_weights));
    if (!m->small || !m->layers) return s1c_fail(err, "%s: out of memory", m->path);
    float *cur = m->small;
    if (bind(m, T_OUTPUT_NORM, 0, dim, 0, false, &t, err) != 0) return -1;
    m->output_norm = take_vector(&cur, t, dim);
    for (int l = 0; l < c->n_layers; l++) {
        layer_weights *w = &m->layers[l];
        if (bind(m, T_Q, l, q_dim, dim, false, &w->wq, err) || bind(m, T_K, l, kv_dim, dim, false, &w->wk, err) ||
            bind(m, T_V, l, kv_dim, dim, false, &w->wv, err) || bind(m, T_O, l, dim, q_dim, false, &w->wo, err) ||
            bind(m, T_GATE, l, hid, dim, false, &w->w_gate, err) || bind(m, T_UP, l, hid, dim, false, &w->w_up, err) ||
            bind(m, T_DOWN, l, dim, hid, false, &w->w_down, err))
            return -1;
        if (bind(m, T_ATTN_NORM, l, dim, 0, false, &t, err) != 0) return -1;
        w->attn_norm = take_vector(&cur, t, dim);
        if (bind(m, T_FFN_NORM, l, dim, 0, false, &t, err) != 0) return -1;
        w->ffn_norm = take_vector(&cur, t, dim);
        if (c->qkv_bias) {
            if (bind(m, T_Q_BIAS, l, q_dim, 0, false, &t, err) != 0) return -1;
            w->bq = take_vector(&cur, t, q_dim);
            if (bind(m, T_K_BIAS, l, kv_dim, 0, false, &t, err) != 0) return -1;
            w->bk = take_vector(&cur, t, kv_dim);
            if (bind(m, T_V_BIAS, l, kv_dim, 0, false, &t, err) != 0) return -1;
            w->bv = take_vector(&cur, t, kv_dim);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ open / free */

static bool has_gguf_magic(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return false;
    char magic[4] = {0};
    size_t n = fread(magic, 1, 4, fp);
    fclose(fp);
    return n == 4 && memcmp(magic, "GGUF", 4) == 0;
}

static int open_format(s1c_model *m, const char *path, s1c_err *err) {
    if (s1c_is_dir(path)) {
        m->format = S1C_FMT_HF;
        if (config_from_hf_dir(&m->cfg, path, err) != 0 || st_open(&m->st, path, err) != 0) return -1;
        /* Qwen2 always carries q/k/v biases; Llama only with attention_bias */
        char name[128];
        m->cfg.qkv_bias = find_tensor(m, T_Q_BIAS, 0, name, sizeof name) != NULL;
        if (m->cfg.tied_embeddings == false && !find_tensor(m, T_OUTPUT, 0, name, sizeof name))
            return s1c_fail(err, "%s: missing tensor 'lm_head.weight' (config.json says the embeddings are not tied)", path);
        return 0;
    }
    if (!s1c_file_exists(path)) return s1c_fail(err, "%s: no such file or directory", path);
    if (has_gguf_magic(path)) {
        m->format = S1C_FMT_GGUF;
        if (gguf_open(&m->gguf, path, err) != 0 || config_from_gguf(&m->cfg, &m->gguf, err) != 0) return -1;
        m->cfg.qkv_bias = gguf_find_tensor(&m->gguf, "blk.0.attn_q.bias") != NULL;
        return 0;
    }
    m->format = S1C_FMT_LLAMA2C;
    if (l2c_open(&m->l2c, path, err) != 0) return -1;
    return config_from_l2c(&m->cfg, &m->l2c.hdr);
}

/* ------------------------------------------------------------------ packing */

/* The packed copy replaces the original in every matmul, so the original's pages are handed
 * back: MADV_PAGEOUT keeps the contents (file pages are re-read, anonymous ones swapped, only if
 * something touches them again — the embedding rows of a tied head do, a row at a time), and
 * the process holds one copy of the weights, not two. Best effort: older kernels lack it. */
static void release_pages(const void *data, uint64_t nbytes) {
#ifdef MADV_PAGEOUT
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)data + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t hi = ((uintptr_t)data + (uintptr_t)nbytes) & ~(uintptr_t)(page - 1);
    if (page > 0 && hi > lo) (void)madvise((void *)lo, hi - lo, MADV_PAGEOUT);
#else
    (void)data, (void)nbytes;
#endif
}

static int pack_one(s1c_model *m, const s1c_tensor *t, kern_packed **out, int flags, s1c_err *err) {
    if (kern_pack(out, t->data, t->dtype, (int)t->shape[1], (int)t->shape[0], flags, err) != 0)
        return s1c_fail_prefix(err, "%s: tensor '%s'", m->path, t->name ? t->name : "?");
    if (*out) release_pages(t->data, t->nbytes);
    return 0;
}

static int pack_all(s1c_model *m, s1c_err *err) {
    const char *e = getenv("S1C_PACK");
    if (e && strcmp(e, "0") == 0) return 0;
    int flags = m->bf16_dot ? KERN_PACK_BF16_DOT : 0;
    /* the head first: it is the largest matrix, and while one matrix is packed both copies are
     * resident, so the peak is smallest when the largest goes while few copies exist */
    if (pack_one(m, m->output, &m->output_pk, flags, err) != 0) return -1;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        layer_weights *w = &m->layers[l];
        const s1c_tensor *mats[7] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down};
        for (int i = 0; i < 7; i++)
            if (pack_one(m, mats[i], &w->pk[i], flags, err) != 0) return -1;
    }
    return 0;
}

static void unpack_all(s1c_model *m) {
    for (int l = 0; m->layers && l < m->cfg.n_layers; l++)
        for (int i = 0; i < 7; i++) {
            kern_packed_free(m->layers[l].pk[i]);
            m->layers[l].pk[i] = NULL;
        }
    kern_packed_free(m->output_pk);
    m->output_pk = NULL;
}

int model_pack(const s1c_model *cm, s1c_err *err) {
    s1c_model *m = (s1c_model *)cm; /* the packed copies are a cache: logically const */
    pthread_mutex_lock(&m->pack_lock);
    int rc = 0;
    if (!m->packed) {
        rc = pack_all(m, err);
        if (rc != 0) unpack_all(m);
        else m->packed = true;
    }
    pthread_mutex_unlock(&m->pack_lock);
    return rc;
}

/* ------------------------------------------------------------------ open / free (2) */

/* BF16's arithmetic unless told: bf16 dot products where the CPU has them (AVX512_BF16), as
 * llama.cpp, PyTorch's bfloat16 and GPUs compute a BF16 model; elsewhere there is no faster
 * arithmetic than the exact widening. $S1C_BF16_MATH=exact|dot overrides. */
bool s1c_bf16_dot_default(void) {
    const char *bm = getenv("S1C_BF16_MATH");
    if (bm && strcmp(bm, "dot") == 0) return true;
    if (bm && strcmp(bm, "exact") == 0) return false;
    return kern_packs_bf16_dot();
}

int s1c_model_open(s1c_model **out, const char *path, s1c_err *err) {
    *out = NULL;
    s1c_model *m = calloc(1, sizeof *m);
    if (!m) return s1c_fail(err, "%s: out of memory", path);
    pthread_mutex_init(&m->pack_lock, NULL);
    m->bf16_dot = s1c_bf16_dot_default();
    m->path = strdup(path);
    if (open_format(m, path, err) != 0 || s1c_config_validate(&m->cfg, path, err) != 0 || bind_weights(m, err) != 0) {
        s1c_model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

void s1c_model_free(s1c_model *m) {
    if (!m) return;
    if (m->format == S1C_FMT_GGUF) gguf_close(&m->gguf);
    if (m->format == S1C_FMT_HF) st_close(&m->st);
    if (m->format == S1C_FMT_LLAMA2C) l2c_close(&m->l2c);
    unpack_all(m);
    pthread_mutex_destroy(&m->pack_lock);
    for (int i = 0; i < m->n_deq; i++) free((void *)m->deq[i].data);
    free(m->deq);
    free(m->layers);
    free(m->small);
    free(m->path);
    free(m);
}

const s1c_config *s1c_model_config(const s1c_model *m) { return &m->cfg; }
int s1c_model_format_of(const s1c_model *m) { return m->format; }
const char *s1c_model_path(const s1c_model *m) { return m->path; }
int s1c_model_weight_dtype(const s1c_model *m) { return m->tok_embd->dtype; }

int s1c_model_set_bf16_dot(s1c_model *m, bool dot, s1c_err *err) {
    pthread_mutex_lock(&m->pack_lock);
    bool late = m->packed && m->bf16_dot != dot;
    if (!late) m->bf16_dot = dot;
    pthread_mutex_unlock(&m->pack_lock);
    return late ? s1c_fail(err, "%s: the BF16 arithmetic is chosen before the first forward (the matrices are packed for it)", m->path) : 0;
}

bool s1c_model_bf16_dot(const s1c_model *m) { return m->bf16_dot; }

int s1c_kv_auto_dtype(const s1c_model *m) {
    if (s1c_model_weight_dtype(m) == S1C_F32) return S1C_F32;
    if (m->bf16_dot) return S1C_BF16;
    return kern_family() == KERN_AVX2 ? S1C_F16 : S1C_F32;
}
const gguf_file *s1c_model_gguf(const s1c_model *m) { return m->format == S1C_FMT_GGUF ? &m->gguf : NULL; }
