/* Model conversion: Hugging Face directory <-> GGUF (llama.cpp's `llama` and `qwen2`
 * layouts), and re-encoding of the weights (f32, f16, bf16, q8_0, q4_0, and llama-quantize's
 * K-quant mixtures q4_k_s/m, q5_k_s/m, q6_k with its per-tensor type choice).
 *
 * The source is opened with the ordinary model loader (any format it reads), so tensors are
 * found by role and checked against the config once. Every matrix goes through f32: it is
 * dequantized (or widened), its Q/K rows are permuted when the RoPE layouts of source and
 * target differ (GGUF `llama` stores them permuted for adjacent-pair RoPE, exactly as
 * llama.cpp's convert_hf_to_gguf.py does; HF and GGUF `qwen2` keep rotate-half order), and
 * it is encoded in the target type. 1-D tensors (norms, biases) are F32 in GGUF, as
 * llama.cpp writes them, and in the output type in HF.
 *
 * Tokenizers: HF byte-level BPE (tokenizer.json, or vocab.json + merges.txt with
 * tokenizer_config.json) <-> GGUF `gpt2` metadata with the `qwen2` pre-tokenizer, laid out
 * as llama.cpp's converter lays it out (ids padded to the embedding rows with [PADi]
 * UNUSED tokens, added tokens CONTROL when special or special-looking, else USER_DEFINED).
 *
 * Limits of this first version: the whole output is built in memory before it is written
 * (fine up to a few GB), and a quantized source is dequantized by the loader, so
 * GGUF -> GGUF keeps no quantized tensor as it was (it is re-encoded from f32). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

enum { TT_NORMAL = 1, TT_UNUSED = 5, TT_CONTROL = 3, TT_USER_DEFINED = 4 };

/* ------------------------------------------------------------------ owned buffers */

typedef struct bufs {
    void **p;
    int n, cap;
} bufs;

static void *bufs_alloc(bufs *b, size_t n) {
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 64;
        void **np = realloc(b->p, (size_t)cap * sizeof *np);
        if (!np) return NULL;
        b->p = np;
        b->cap = cap;
    }
    void *p = malloc(n ? n : 1);
    if (p) b->p[b->n++] = p;
    return p;
}
static char *bufs_strdup(bufs *b, const char *s, size_t n) {
    char *p = bufs_alloc(b, n + 1);
    if (p) { memcpy(p, s, n); p[n] = 0; }
    return p;
}
static void bufs_free(bufs *b) {
    for (int i = 0; i < b->n; i++) free(b->p[i]);
    free(b->p);
}

/* ------------------------------------------------------------------ RoPE row permutation */

/* llama.cpp's permute(w, n_head): within each head of d rows, row s*d/2 + i (rotate-half
 * order) moves to row 2i + s (adjacent pairs). inverse = true undoes it. cols = 1 for biases. */
static void permute_rows(float *w, int n_head, int64_t rows, int64_t cols, bool inverse, float *tmp) {
    int64_t d = rows / n_head, h2 = d / 2;
    memcpy(tmp, w, (size_t)(rows * cols) * sizeof(float));
    for (int h = 0; h < n_head; h++)
        for (int64_t s = 0; s < 2; s++)
            for (int64_t i = 0; i < h2; i++) {
                int64_t half = h * d + s * h2 + i, adj = h * d + 2 * i + s;
                int64_t dst = inverse ? half : adj, src = inverse ? adj : half;
                memcpy(w + dst * cols, tmp + src * cols, (size_t)cols * sizeof(float));
            }
}

/* ------------------------------------------------------------------ the tensor list */

typedef struct ctensor {
    char name[128];
    int role, layer, ndim;
    int64_t shape[2];
    const s1c_tensor *mat; /* matrices: the loader's view */
    const float *vec;      /* vectors: the loader's f32 copy */
} ctensor;

static int list_tensors(const s1c_model *m, bool hf_names, ctensor *out) {
    const s1c_config *c = &m->cfg;
    int64_t dim = c->dim, q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim, hid = c->hidden_dim;
    int n = 0;
#define ADD(ROLE, L, R, C, MAT, VEC)                                                                                 \
    do {                                                                                                             \
        ctensor *t = &out[n++];                                                                                      \
        *t = (ctensor){.role = (ROLE), .layer = (L), .ndim = (C) ? 2 : 1, .shape = {(R), (C)}, .mat = (MAT), .vec = (VEC)}; \
        (hf_names ? tensor_name_hf : tensor_name_gguf)(t->name, sizeof t->name, (ROLE), (L));                        \
    } while (0)
    ADD(T_TOK_EMBD, 0, (int64_t)c->vocab_size, dim, m->tok_embd, NULL);
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights *w = &m->layers[l];
        ADD(T_ATTN_NORM, l, dim, 0, NULL, w->attn_norm);
        ADD(T_Q, l, q, dim, w->wq, NULL);
        ADD(T_K, l, kv, dim, w->wk, NULL);
        ADD(T_V, l, kv, dim, w->wv, NULL);
        if (c->qkv_bias) {
            ADD(T_Q_BIAS, l, q, 0, NULL, w->bq);
            ADD(T_K_BIAS, l, kv, 0, NULL, w->bk);
            ADD(T_V_BIAS, l, kv, 0, NULL, w->bv);
        }
        ADD(T_O, l, dim, q, w->wo, NULL);
        ADD(T_FFN_NORM, l, dim, 0, NULL, w->ffn_norm);
        ADD(T_GATE, l, hid, dim, w->w_gate, NULL);
        ADD(T_UP, l, hid, dim, w->w_up, NULL);
        ADD(T_DOWN, l, dim, hid, w->w_down, NULL);
    }
    ADD(T_OUTPUT_NORM, 0, dim, 0, NULL, m->output_norm);
    if (!c->tied_embeddings) ADD(T_OUTPUT, 0, (int64_t)c->vocab_size, dim, m->output, NULL);
#undef ADD
    return n;
}

/* ------------------------------------------------------------------ llama-quantize's mixtures */

/* The K-quant mixtures: llama.cpp's file type, its name on the command line, and the type
 * most matrices get (llama_ftype_get_default_type). */
static const struct mix {
    int ftype;
    const char *name;
    int base;
} mixes[] = {
    {S1C_FTYPE_Q4_K_S, "q4_k_s", S1C_Q4_K}, {S1C_FTYPE_Q4_K_M, "q4_k_m", S1C_Q4_K}, {S1C_FTYPE_Q5_K_S, "q5_k_s", S1C_Q5_K},
    {S1C_FTYPE_Q5_K_M, "q5_k_m", S1C_Q5_K}, {S1C_FTYPE_Q6_K, "q6_k", S1C_Q6_K},
};

static const struct mix *mix_of(int dtype) {
    for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++)
        if (dtype == S1C_MIX(mixes[i].ftype)) return &mixes[i];
    return NULL;
}

/* A --type value's name: the dtype's, or the mixture's. */
static const char *type_name(int dtype) {
    const struct mix *x = mix_of(dtype);
    const char *n = x ? x->name : s1c_dtype_name(dtype);
    return n ? n : "?";
}

/* llama.cpp's use_more_bits: the first and last eighth of the layers and every third one in
 * between get more bits in the _M mixtures. */
static bool more_bits(int layer, int n_layers) {
    return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

/* llama.cpp's tensor_type_fallback: a row length that is not a whole number of the type's
 * blocks takes the 32-element type of about the same size, and F16 when even that does not
 * fit. */
static int fallback_type(int dtype, int64_t cols) {
    if (cols % s1c_dtype_block_size(dtype) == 0) return dtype;
    int f = dtype == S1C_Q4_K ? S1C_Q5_0 : dtype == S1C_Q5_K ? S1C_Q5_1 : dtype == S1C_Q6_K ? S1C_Q8_0 : dtype;
    return cols % s1c_dtype_block_size(f) == 0 ? f : S1C_F16;
}

/* The type llama-quantize gives one matrix of a dense qwen2/llama model in mixture x, with no
 * importance matrix and default options (llama_tensor_get_type_impl). llama.cpp counts attn_v
 * and ffn_down tensors in name order sorted by layer, so its counters equal the layer index. */
static int mix_type(const s1c_config *c, const struct mix *x, int role, int L, int64_t cols) {
    int ft = x->ftype, type = x->base, n = c->n_layers;
    /* llama.cpp's LLM_TYPE_70B (qwen2: 80 layers; llama: 80 layers with grouped KV heads) */
    bool is_70b = n == 80 && (c->arch == S1C_ARCH_QWEN2 || c->n_heads != c->n_kv_heads);
    if (role == T_OUTPUT || (role == T_TOK_EMBD && c->tied_embeddings)) {
        type = cols % s1c_dtype_block_size(type) != 0 ? S1C_Q8_0 : S1C_Q6_K;
    } else if (role == T_V) {
        if ((ft == S1C_FTYPE_Q4_K_M || ft == S1C_FTYPE_Q5_K_M) && more_bits(L, n)) type = S1C_Q6_K;
        else if (ft == S1C_FTYPE_Q4_K_S && L < 4) type = S1C_Q5_K;
        if (is_70b && type == S1C_Q4_K) type = S1C_Q5_K; /* 8 heads share attn_v: cheap to widen */
    } else if (role == T_DOWN) {
        if ((ft == S1C_FTYPE_Q4_K_M || ft == S1C_FTYPE_Q5_K_M) && more_bits(L, n)) type = S1C_Q6_K;
        else if (ft == S1C_FTYPE_Q4_K_S && L < n / 8) type = S1C_Q5_K;
    }
    return fallback_type(type, cols);
}

/* The GGUF type of a matrix for the requested --type: a mixture's choice, or the plain type
 * with llama.cpp's F16 fallback for rows that are not whole blocks. */
int model_matrix_type(const s1c_config *c, int dtype, int role, int layer, int64_t cols) {
    const struct mix *x = mix_of(dtype);
    if (x) return mix_type(c, x, role, layer, cols);
    return cols % s1c_dtype_block_size(dtype) != 0 ? S1C_F16 : dtype;
}

static int matrix_type(const s1c_model *m, const ctensor *t, int dtype) { return model_matrix_type(&m->cfg, dtype, t->role, t->layer, t->shape[1]); }

/* ------------------------------------------------------------------ encoding */

/* s1c_quantize over the global thread pool: the K-quant fits are ~100x the cost of a copy, so
 * a 7B model would take many minutes on one core. Blocks are independent, so each task takes
 * a whole-block slice and the bytes do not depend on the number of threads. */
typedef struct qjob {
    uint8_t *dst;
    const float *src;
    int dtype;
    uint64_t n_blocks, bs, ts;
} qjob;

static void quantize_task(void *ctx, int task, int n_tasks) {
    const qjob *j = ctx;
    uint64_t b0 = j->n_blocks * (uint64_t)task / (uint64_t)n_tasks, b1 = j->n_blocks * (uint64_t)(task + 1) / (uint64_t)n_tasks;
    if (b1 > b0) s1c_quantize(j->dst + b0 * j->ts, j->src + b0 * j->bs, j->dtype, (b1 - b0) * j->bs, NULL);
}

static int quantize_mt(void *dst, const float *src, int dtype, uint64_t n, s1c_err *err) {
    uint64_t bs = (uint64_t)s1c_dtype_block_size(dtype);
    s1c_pool *pool = s1c_pool_global();
    /* the tasks cannot report errors: anything s1c_quantize would refuse goes to it whole */
    if (!pool || n < 65536 || !s1c_dtype_can_quantize(dtype) || n % bs != 0 || (s1c_dtype_is_quant(dtype) && s1c_first_nonfinite(src, n) < n))
        return s1c_quantize(dst, src, dtype, n, err);
    qjob j = {dst, src, dtype, n / bs, bs, (uint64_t)s1c_dtype_type_size(dtype)};
    int tasks = 4 * s1c_pool_threads(pool);
    s1c_pool_run(pool, (uint64_t)tasks > j.n_blocks ? (int)j.n_blocks : tasks, quantize_task, &j);
    return 0;
}

/* Produces the bytes of one tensor in dtype (already a type that fits its rows). */
static int encode_tensor(const s1c_model *m, const ctensor *t, int dtype, int permute, bufs *b, const void **data,
                         uint64_t *nbytes, s1c_err *err) {
    uint64_t n = (uint64_t)t->shape[0] * (uint64_t)(t->ndim == 2 ? t->shape[1] : 1);
    s1c_dtype_nbytes(dtype, n, nbytes);
    bool perm = permute && (t->role == T_Q || t->role == T_K || t->role == T_Q_BIAS || t->role == T_K_BIAS);
    /* plain F32 -> F32 matrices stay views */
    if (t->mat && t->mat->dtype == dtype && !perm) { *data = t->mat->data; return 0; }
    float *f = malloc(n * sizeof(float)), *tmp = perm ? malloc(n * sizeof(float)) : NULL;
    void *out = bufs_alloc(b, (size_t)*nbytes);
    int rc = (!f || !out || (perm && !tmp)) ? s1c_fail(err, "out of memory converting '%s'", t->name) : 0;
    if (rc == 0) {
        if (t->mat) rc = s1c_dequantize(f, t->mat->data, t->mat->dtype, n, err);
        else memcpy(f, t->vec, n * sizeof(float));
    }
    if (rc == 0 && perm) {
        int heads = (t->role == T_Q || t->role == T_Q_BIAS) ? m->cfg.n_heads : m->cfg.n_kv_heads;
        permute_rows(f, heads, t->shape[0], t->ndim == 2 ? t->shape[1] : 1, permute < 0, tmp);
    }
    if (rc == 0) rc = quantize_mt(out, f, dtype, n, err);
    free(f);
    free(tmp);
    if (rc != 0) return s1c_fail_prefix(err, "tensor '%s'", t->name);
    *data = out;
    return 0;
}

/* ------------------------------------------------------------------ HF tokenizer -> GGUF */

typedef struct vocab {
    int n;
    const char **tok;
    int32_t *type;
    int n_merges;
    const char **merges;
    int bos, eos, pad;
    bool add_bos;
    const char *chat_template;
} vocab;

static bool looks_special(const char *s) {
    size_t n = strlen(s);
    if (!strcmp(s, "<pad>") || !strcmp(s, "<mask>") || !strcmp(s, "<2mass>") || !strcmp(s, "[@BOS@]")) return true;
    if (n >= 4 && !strncmp(s, "<|", 2) && !strcmp(s + n - 2, "|>")) return true;
    if (n >= 8 && !strncmp(s, "<\xef\xbd\x9c", 4) && !strcmp(s + n - 4, "\xef\xbd\x9c>")) return true; /* <｜ ｜> */
    return n >= 8 && !strncmp(s, "<unused", 7) && s[n - 1] == '>';
}

static cJSON *read_json(const char *dir, const char *name, s1c_err *err, int *rc) {
    char *p = s1c_path_join(dir, name), *text = NULL;
    cJSON *j = NULL;
    if (s1c_file_exists(p)) {
        if (s1c_read_file(p, 512u << 20, &text, NULL, err) != 0) *rc = -1;
        else if (!(j = cJSON_Parse(text))) *rc = s1c_fail(err, "%s: not valid JSON", p);
    }
    free(text);
    free(p);
    return j;
}

/* A special token named in tokenizer_config.json: a string or {"content": ...}. */
static const char *special_name(const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int find_tok(const vocab *v, const char *s) {
    if (!s) return -1;
    for (int i = 0; i < v->n; i++)
        if (v->tok[i] && !strcmp(v->tok[i], s)) return i;
    return -1;
}

/* Reads an HF byte-level BPE tokenizer from dir. Returns 1 loaded, 0 none there, -1 error. */
static int hf_vocab_read(const char *dir, const s1c_config *c, vocab *v, bufs *b, s1c_err *err) {
    memset(v, 0, sizeof *v);
    v->bos = v->eos = v->pad = -1;
    int rc = 0, loaded = 0;
    cJSON *tj = read_json(dir, "tokenizer.json", err, &rc);
    cJSON *tc = rc == 0 ? read_json(dir, "tokenizer_config.json", err, &rc) : NULL;
    cJSON *vj = rc == 0 && !tj ? read_json(dir, "vocab.json", err, &rc) : NULL;
    char *mtext = NULL;
    size_t mlen = 0;
    const cJSON *vocab_obj = NULL, *merges_arr = NULL, *added = NULL;
    if (rc != 0) goto done;
    if (tj) {
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(tj, "model");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE") != 0) { rc = s1c_fail(err, "%s/tokenizer.json: only BPE tokenizers convert", dir); goto done; }
        vocab_obj = cJSON_GetObjectItemCaseSensitive(model, "vocab");
        merges_arr = cJSON_GetObjectItemCaseSensitive(model, "merges");
        added = cJSON_GetObjectItemCaseSensitive(tj, "added_tokens");
    } else if (vj) {
        vocab_obj = vj;
        added = cJSON_GetObjectItemCaseSensitive(tc, "added_tokens_decoder");
        char *mp = s1c_path_join(dir, "merges.txt");
        rc = s1c_read_file(mp, 512u << 20, &mtext, &mlen, err);
        free(mp);
        if (rc != 0) goto done;
    } else {
        goto done; /* no tokenizer */
    }
    if (!cJSON_IsObject(vocab_obj)) { rc = s1c_fail(err, "%s: the vocabulary is not a JSON object", dir); goto done; }
    v->n = c->vocab_size;
    v->tok = bufs_alloc(b, (size_t)v->n * sizeof *v->tok);
    v->type = bufs_alloc(b, (size_t)v->n * sizeof *v->type);
    if (!v->tok || !v->type) { rc = s1c_fail(err, "out of memory"); goto done; }
    memset(v->tok, 0, (size_t)v->n * sizeof *v->tok);
    for (const cJSON *e = vocab_obj->child; e; e = e->next) {
        int id = cJSON_IsNumber(e) ? (int)e->valuedouble : -1;
        if (id < 0 || id >= v->n) { rc = s1c_fail(err, "%s: token '%.40s' has id %d outside the %d embedding rows", dir, e->string, id, v->n); goto done; }
        v->tok[id] = e->string;
        v->type[id] = TT_NORMAL;
    }
    for (const cJSON *e = added ? added->child : NULL; e; e = e->next) {
        const cJSON *idj = cJSON_GetObjectItemCaseSensitive(e, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        int id = cJSON_IsNumber(idj) ? (int)idj->valuedouble : e->string ? atoi(e->string) : -1;
        if (!cJSON_IsString(content)) continue;
        if (id < 0 || id >= v->n) { rc = s1c_fail(err, "%s: added token '%.40s' has id %d outside the %d embedding rows", dir, content->valuestring, id, v->n); goto done; }
        v->tok[id] = content->valuestring;
        v->type[id] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special")) || looks_special(content->valuestring) ? TT_CONTROL : TT_USER_DEFINED;
    }
    for (int i = 0; i < v->n; i++)
        if (!v->tok[i]) {
            char pad[32];
            int k = snprintf(pad, sizeof pad, "[PAD%d]", i);
            v->tok[i] = bufs_strdup(b, pad, (size_t)k);
            v->type[i] = TT_UNUSED;
        }
    /* merges: "a b" strings, [a, b] pairs, or merges.txt lines (after a #version line) */
    if (mtext) {
        int cap = 1;
        for (size_t i = 0; i < mlen; i++) cap += mtext[i] == '\n';
        v->merges = bufs_alloc(b, (size_t)cap * sizeof *v->merges);
        for (char *line = mtext; line && *line;) {
            char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line) : strlen(line);
            if (len && line[len - 1] == '\r') len--;
            if (len && !(line == mtext && !strncmp(line, "#version", 8))) v->merges[v->n_merges++] = bufs_strdup(b, line, len);
            line = nl ? nl + 1 : NULL;
        }
    } else if (cJSON_IsArray(merges_arr)) {
        v->merges = bufs_alloc(b, (size_t)(cJSON_GetArraySize(merges_arr) + 1) * sizeof *v->merges);
        for (const cJSON *e = merges_arr->child; e; e = e->next) {
            if (cJSON_IsString(e)) v->merges[v->n_merges++] = e->valuestring;
            else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) && cJSON_IsString(e->child->next)) {
                size_t la = strlen(e->child->valuestring), lb = strlen(e->child->next->valuestring);
                char *s = bufs_alloc(b, la + lb + 2);
                if (s) { memcpy(s, e->child->valuestring, la); s[la] = ' '; memcpy(s + la + 1, e->child->next->valuestring, lb + 1); }
                v->merges[v->n_merges++] = s;
            }
        }
    }
    /* special ids: tokenizer_config.json names first, then config.json's ids (as llama.cpp's
     * SpecialVocab does) */
    v->bos = find_tok(v, special_name(tc, "bos_token"));
    v->eos = find_tok(v, special_name(tc, "eos_token"));
    v->pad = find_tok(v, special_name(tc, "pad_token"));
    if (v->bos < 0) v->bos = c->bos_id;
    if (v->eos < 0) v->eos = c->eos_id;
    v->add_bos = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tc, "add_bos_token"));
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(tc, "chat_template");
    if (cJSON_IsArray(ct)) { /* [{name, template}]: the "default" one, else the first */
        const cJSON *pick = ct->child;
        for (const cJSON *e = ct->child; e; e = e->next) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
            if (cJSON_IsString(nm) && !strcmp(nm->valuestring, "default")) pick = e;
        }
        ct = cJSON_GetObjectItemCaseSensitive(pick, "template");
    }
    if (cJSON_IsString(ct)) v->chat_template = bufs_strdup(b, ct->valuestring, strlen(ct->valuestring));
    /* strings borrowed from the parsed JSON must outlive it: copy them */
    for (int i = 0; i < v->n; i++)
        if (v->type[i] != TT_UNUSED) v->tok[i] = bufs_strdup(b, v->tok[i], strlen(v->tok[i]));
    if (!mtext)
        for (int i = 0; i < v->n_merges; i++)
            if (v->merges[i]) v->merges[i] = bufs_strdup(b, v->merges[i], strlen(v->merges[i]));
    loaded = 1;
done:
    cJSON_Delete(tj);
    cJSON_Delete(tc);
    cJSON_Delete(vj);
    free(mtext);
    return rc != 0 ? -1 : loaded;
}

/* ------------------------------------------------------------------ to GGUF */

void gguf_w_hparams(gguf_writer *w, const s1c_config *c) {
    const char *arch = c->arch == S1C_ARCH_QWEN2 ? "qwen2" : "llama";
    char key[128];
#define K(s) (snprintf(key, sizeof key, "%s.%s", arch, s), key)
    gguf_w_u32(w, K("context_length"), (uint32_t)c->max_seq_len);
    gguf_w_u32(w, K("embedding_length"), (uint32_t)c->dim);
    gguf_w_u32(w, K("block_count"), (uint32_t)c->n_layers);
    gguf_w_u32(w, K("feed_forward_length"), (uint32_t)c->hidden_dim);
    gguf_w_u32(w, K("attention.head_count"), (uint32_t)c->n_heads);
    gguf_w_u32(w, K("attention.head_count_kv"), (uint32_t)c->n_kv_heads);
    gguf_w_f32(w, K("rope.freq_base"), c->rope_theta);
    gguf_w_f32(w, K("attention.layer_norm_rms_epsilon"), c->norm_eps);
    if (c->head_dim != c->dim / c->n_heads) {
        gguf_w_u32(w, K("attention.key_length"), (uint32_t)c->head_dim);
        gguf_w_u32(w, K("attention.value_length"), (uint32_t)c->head_dim);
    }
    if (c->arch == S1C_ARCH_LLAMA) {
        gguf_w_u32(w, K("vocab_size"), (uint32_t)c->vocab_size);
        gguf_w_u32(w, K("rope.dimension_count"), (uint32_t)c->head_dim);
    }
#undef K
}

/* general.file_type as llama.cpp writes it (llama_ftype). */
static int ggml_file_type(int dtype) {
    const struct mix *x = mix_of(dtype);
    if (x) return x->ftype;
    switch (dtype) {
    case S1C_F32: return 0;
    case S1C_F16: return 1;
    case S1C_Q4_0: return 2;
    case S1C_Q8_0: return 7;
    case S1C_BF16: return 32;
    default: return 0;
    }
}

static int write_gguf(const s1c_model *m, const char *out, int dtype, s1c_err *err) {
    const s1c_config *c = &m->cfg;
    const char *arch = c->arch == S1C_ARCH_QWEN2 ? "qwen2" : "llama";
    int want_layout = c->arch == S1C_ARCH_QWEN2 ? S1C_ROPE_HALF : S1C_ROPE_ADJACENT;
    int permute = c->rope_layout == want_layout ? 0 : want_layout == S1C_ROPE_ADJACENT ? 1 : -1;
    bufs b = {0};
    gguf_writer *w = gguf_writer_new();
    ctensor *ts = calloc((size_t)c->n_layers * 12 + 4, sizeof *ts);
    int rc = w && ts ? 0 : s1c_fail(err, "%s: out of memory", out);
    if (rc == 0) {
        gguf_w_str(w, "general.architecture", arch);
        const char *base = strrchr(m->path, '/');
        gguf_w_str(w, "general.name", base && base[1] ? base + 1 : m->path);
        gguf_w_u32(w, "general.file_type", (uint32_t)ggml_file_type(dtype));
        /* ggml's block layouts version (GGML_QNT_VERSION), written by llama.cpp's tools */
        if (dtype != S1C_F32 && dtype != S1C_F16 && dtype != S1C_BF16) gguf_w_u32(w, "general.quantization_version", 2);
        gguf_w_hparams(w, c);
    }
    /* tokenizer */
    if (rc == 0 && m->format == S1C_FMT_HF) {
        vocab v;
        int r = hf_vocab_read(m->path, c, &v, &b, err);
        if (r < 0) rc = -1;
        if (r > 0) {
            gguf_w_str(w, "tokenizer.ggml.model", "gpt2");
            gguf_w_str(w, "tokenizer.ggml.pre", "qwen2");
            gguf_w_arr_str(w, "tokenizer.ggml.tokens", v.tok, (uint64_t)v.n);
            gguf_w_arr_i32(w, "tokenizer.ggml.token_type", v.type, (uint64_t)v.n);
            gguf_w_arr_str(w, "tokenizer.ggml.merges", v.merges, (uint64_t)v.n_merges);
            if (v.bos >= 0) gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v.bos);
            if (v.eos >= 0) gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v.eos);
            if (v.pad >= 0) gguf_w_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)v.pad);
            gguf_w_bool(w, "tokenizer.ggml.add_bos_token", v.add_bos);
            if (v.chat_template) gguf_w_str(w, "tokenizer.chat_template", v.chat_template);
        }
    } else if (rc == 0 && m->format == S1C_FMT_GGUF) {
        /* GGUF -> GGUF: the tokenizer metadata is copied as it is */
        const gguf_file *g = &m->gguf;
        for (uint64_t i = 0; i < g->n_kv; i++) {
            const gguf_kv *kv = &g->kv[i];
            if (strncmp(kv->key, "tokenizer.", 10) != 0) continue;
            char *s = NULL;
            if (kv->type == GGUF_STRING) { s = bufs_strdup(&b, kv->v.s.p, kv->v.s.len); gguf_w_str(w, kv->key, s); }
            else if (kv->type == GGUF_BOOL) gguf_w_bool(w, kv->key, kv->v.u != 0);
            else if (kv->type != GGUF_F32 && kv->type != GGUF_F64 && kv->type != GGUF_ARRAY) gguf_w_u32(w, kv->key, (uint32_t)kv->v.u);
            else if (kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING) {
                const char **a = bufs_alloc(&b, (size_t)(kv->arr_n + 1) * sizeof *a);
                for (uint64_t k = 0; a && k < kv->arr_n; k++) a[k] = bufs_strdup(&b, kv->arr_strs[k].p, kv->arr_strs[k].len);
                if (a) gguf_w_arr_str(w, kv->key, a, kv->arr_n);
            } else if (kv->type == GGUF_ARRAY && kv->arr_type == GGUF_F32) {
                float *a = bufs_alloc(&b, (size_t)(kv->arr_n + 1) * sizeof *a);
                for (uint64_t k = 0; a && k < kv->arr_n; k++) a[k] = (float)gguf_arr_f64(kv, k);
                if (a) gguf_w_arr_f32(w, kv->key, a, kv->arr_n);
            } else if (kv->type == GGUF_ARRAY) {
                int32_t *a = bufs_alloc(&b, (size_t)(kv->arr_n + 1) * sizeof *a);
                for (uint64_t k = 0; a && k < kv->arr_n; k++) a[k] = (int32_t)gguf_arr_i64(kv, k);
                if (a) gguf_w_arr_i32(w, kv->key, a, kv->arr_n);
            }
        }
    }
    int n = rc == 0 ? list_tensors(m, false, ts) : 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const void *data;
        uint64_t nb;
        int dt = ts[i].ndim == 1 ? S1C_F32 : matrix_type(m, &ts[i], dtype);
        rc = encode_tensor(m, &ts[i], dt, permute, &b, &data, &nb, err);
        if (rc == 0) gguf_w_tensor(w, ts[i].name, dt, ts[i].ndim, ts[i].shape, data);
    }
    if (rc == 0) rc = gguf_writer_write(w, out, err);
    gguf_writer_free(w);
    free(ts);
    bufs_free(&b);
    return rc;
}

/* ------------------------------------------------------------------ to HF */

static int write_text(const char *dir, const char *name, const char *text, s1c_err *err) {
    char *p = s1c_path_join(dir, name);
    int rc = s1c_write_file_atomic(p, text, strlen(text), err);
    free(p);
    return rc;
}

static int write_json(const char *dir, const char *name, cJSON *j, bool pretty, s1c_err *err) {
    char *s = pretty ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
    int rc = s ? write_text(dir, name, s, err) : s1c_fail(err, "%s: out of memory", name);
    free(s);
    return rc;
}

static char *kv_str(const gguf_file *g, const char *key) {
    s1c_str s;
    if (gguf_get_str(g, key, &s, NULL) != 1) return NULL;
    char *p = malloc(s.len + 1);
    if (p) { memcpy(p, s.p, s.len); p[s.len] = 0; }
    return p;
}

/* vocab.json + merges.txt + tokenizer_config.json from GGUF gpt2 metadata. Returns 0 also
 * when there is no (convertible) tokenizer. */
static int gguf_tokenizer_to_hf(const gguf_file *g, const s1c_config *c, const char *dir, s1c_err *err) {
    char *model = kv_str(g, "tokenizer.ggml.model");
    bool gpt2 = model && !strcmp(model, "gpt2");
    free(model);
    const gguf_kv *toks = gguf_find(g, "tokenizer.ggml.tokens"), *types = gguf_find(g, "tokenizer.ggml.token_type");
    const gguf_kv *merges = gguf_find(g, "tokenizer.ggml.merges");
    if (!gpt2 || !toks || toks->type != GGUF_ARRAY || toks->arr_type != GGUF_STRING) return 0;
    uint64_t n = toks->arr_n;
    bool have_types = types && types->type == GGUF_ARRAY && types->arr_type != GGUF_STRING && types->arr_n == n;
    cJSON *vj = cJSON_CreateObject(), *tc = cJSON_CreateObject(), *added = cJSON_CreateObject();
    char *buf = NULL;
    int rc = 0;
    uint64_t bos = UINT64_MAX, eos = UINT64_MAX, pad = UINT64_MAX, v;
    if (gguf_get_u64(g, "tokenizer.ggml.bos_token_id", &v, NULL) == 1) bos = v;
    if (gguf_get_u64(g, "tokenizer.ggml.eos_token_id", &v, NULL) == 1) eos = v;
    if (gguf_get_u64(g, "tokenizer.ggml.padding_token_id", &v, NULL) == 1) pad = v;
    bool add_bos = false;
    gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, NULL);
    for (uint64_t i = 0; i < n; i++) {
        int64_t ty = have_types ? gguf_arr_i64(types, i) : TT_NORMAL;
        char *s = malloc(toks->arr_strs[i].len + 1);
        if (!s) { rc = s1c_fail(err, "out of memory"); break; }
        memcpy(s, toks->arr_strs[i].p, toks->arr_strs[i].len);
        s[toks->arr_strs[i].len] = 0;
        if (ty == TT_CONTROL || ty == TT_USER_DEFINED) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "content", s);
            cJSON_AddBoolToObject(e, "lstrip", false);
            cJSON_AddBoolToObject(e, "normalized", false);
            cJSON_AddBoolToObject(e, "rstrip", false);
            cJSON_AddBoolToObject(e, "single_word", false);
            cJSON_AddBoolToObject(e, "special", ty == TT_CONTROL);
            char id[24];
            snprintf(id, sizeof id, "%llu", (unsigned long long)i);
            cJSON_AddItemToObject(added, id, e);
        } else if (ty != TT_UNUSED) {
            cJSON_AddNumberToObject(vj, s, (double)i);
        }
        if (i == bos) cJSON_AddStringToObject(tc, "bos_token_name", s);
        if (i == eos) cJSON_AddStringToObject(tc, "eos_token", s);
        if (i == pad) cJSON_AddStringToObject(tc, "pad_token", s);
        free(s);
    }
    /* bos_token only when it is added (Qwen2's config has none); the id stays in config.json */
    cJSON *bn = cJSON_DetachItemFromObjectCaseSensitive(tc, "bos_token_name");
    if (add_bos && bn) cJSON_AddItemToObject(tc, "bos_token", bn);
    else { cJSON_Delete(bn); cJSON_AddNullToObject(tc, "bos_token"); }
    cJSON_AddBoolToObject(tc, "add_bos_token", add_bos);
    cJSON_AddBoolToObject(tc, "add_prefix_space", false);
    cJSON_AddItemToObject(tc, "added_tokens_decoder", added);
    added = NULL;
    char *ct = kv_str(g, "tokenizer.chat_template");
    if (ct) cJSON_AddStringToObject(tc, "chat_template", ct);
    free(ct);
    cJSON_AddBoolToObject(tc, "clean_up_tokenization_spaces", false);
    cJSON_AddStringToObject(tc, "errors", "replace");
    cJSON_AddNumberToObject(tc, "model_max_length", c->max_seq_len);
    cJSON_AddBoolToObject(tc, "split_special_tokens", false);
    cJSON_AddStringToObject(tc, "tokenizer_class", "Qwen2Tokenizer");
    cJSON_AddNullToObject(tc, "unk_token");
    if (rc == 0) rc = write_json(dir, "vocab.json", vj, false, err);
    if (rc == 0) rc = write_json(dir, "tokenizer_config.json", tc, true, err);
    if (rc == 0) {
        size_t len = 16, pos = 0;
        uint64_t nm = merges && merges->type == GGUF_ARRAY && merges->arr_type == GGUF_STRING ? merges->arr_n : 0;
        for (uint64_t i = 0; i < nm; i++) len += merges->arr_strs[i].len + 1;
        buf = malloc(len + 1);
        if (!buf) rc = s1c_fail(err, "out of memory");
        else {
            pos = (size_t)sprintf(buf, "#version: 0.2\n");
            for (uint64_t i = 0; i < nm; i++) {
                memcpy(buf + pos, merges->arr_strs[i].p, merges->arr_strs[i].len);
                pos += merges->arr_strs[i].len;
                buf[pos++] = '\n';
            }
            buf[pos] = 0;
            rc = write_text(dir, "merges.txt", buf, err);
        }
    }
    free(buf);
    cJSON_Delete(vj);
    cJSON_Delete(tc);
    cJSON_Delete(added);
    return rc;
}

static const char *tokenizer_files[] = {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                                         "special_tokens_map.json", "added_tokens.json", "generation_config.json"};

static int copy_hf_tokenizer(const char *from, const char *to, s1c_err *err) {
    for (size_t i = 0; i < sizeof tokenizer_files / sizeof tokenizer_files[0]; i++) {
        char *src = s1c_path_join(from, tokenizer_files[i]), *data = NULL;
        size_t len = 0;
        int rc = 0;
        if (s1c_file_exists(src)) {
            rc = s1c_read_file(src, 512u << 20, &data, &len, err);
            char *dst = s1c_path_join(to, tokenizer_files[i]);
            if (rc == 0) rc = s1c_write_file_atomic(dst, data, len, err);
            free(dst);
        }
        free(data);
        free(src);
        if (rc != 0) return -1;
    }
    return 0;
}

static int write_hf(const s1c_model *m, const char *out, int dtype, s1c_err *err) {
    const s1c_config *c = &m->cfg;
    if (dtype != S1C_F32 && dtype != S1C_F16 && dtype != S1C_BF16)
        return s1c_fail(err, "%s: a Hugging Face directory stores f32, f16 or bf16 weights, not %s (quantized types need a .gguf OUT)", out, type_name(dtype));
    if (s1c_mkdir_p(out, err) != 0) return -1;
    int permute = c->rope_layout == S1C_ROPE_HALF ? 0 : -1;
    bufs b = {0};
    ctensor *ts = calloc((size_t)c->n_layers * 12 + 4, sizeof *ts);
    s1c_tensor *st = calloc((size_t)c->n_layers * 12 + 4, sizeof *st);
    int rc = ts && st ? 0 : s1c_fail(err, "%s: out of memory", out);
    int n = rc == 0 ? list_tensors(m, true, ts) : 0;
    for (int i = 0; i < n && rc == 0; i++) {
        s1c_tensor *t = &st[i];
        t->name = ts[i].name;
        t->ndim = ts[i].ndim;
        t->shape[0] = ts[i].shape[0];
        t->shape[1] = ts[i].shape[1];
        t->dtype = dtype;
        rc = encode_tensor(m, &ts[i], dtype, permute, &b, &t->data, &t->nbytes, err);
    }
    char *path = s1c_path_join(out, "model.safetensors");
    if (rc == 0) rc = st_write(path, st, n, err);
    free(path);
    if (rc == 0) {
        char *cj = s1c_config_to_hf_json(c, dtype == S1C_BF16 ? "bfloat16" : dtype == S1C_F16 ? "float16" : "float32");
        rc = cj ? write_text(out, "config.json", cj, err) : s1c_fail(err, "%s: out of memory", out);
        free(cj);
    }
    if (rc == 0 && m->format == S1C_FMT_GGUF) rc = gguf_tokenizer_to_hf(&m->gguf, c, out, err);
    if (rc == 0 && m->format == S1C_FMT_HF) rc = copy_hf_tokenizer(m->path, out, err);
    free(ts);
    free(st);
    bufs_free(&b);
    return rc;
}

/* ------------------------------------------------------------------ entry point */

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int s1c_model_convert(const char *in, const char *out, int dtype, s1c_err *err) {
    s1c_model *m;
    if (s1c_model_open(&m, in, err) != 0) return -1;
    bool to_gguf = ends_with(out, ".gguf");
    if (dtype < 0) { /* keep the source's matrix type when the target can hold it, else f32 */
        int src = m->n_deq ? m->deq[0].dtype : m->tok_embd->dtype;
        if (m->n_deq) src = S1C_F32;
        dtype = src == S1C_F16 || src == S1C_BF16 ? src : S1C_F32;
    }
    if (dtype != S1C_F32 && dtype != S1C_F16 && dtype != S1C_BF16 && dtype != S1C_Q8_0 && dtype != S1C_Q4_0 && !mix_of(dtype)) {
        s1c_model_free(m);
        return s1c_fail(err, "convert: cannot write type %s (f32, f16, bf16, q8_0, q4_0, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k)", type_name(dtype));
    }
    int rc = to_gguf ? write_gguf(m, out, dtype, err) : write_hf(m, out, dtype, err);
    s1c_model_free(m);
    return rc;
}
