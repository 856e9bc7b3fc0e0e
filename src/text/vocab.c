/* Vocabulary loading (llama2.c, GGUF, Hugging Face) and per-token decoding. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/cursor.h"
#include "tokenizer_internal.h"

s1c_tokenizer *tok_alloc(int kind, int n) {
    s1c_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->kind = kind;
    t->n_vocab = n;
    t->piece = calloc((size_t)n, sizeof(char *));
    t->piece_len = calloc((size_t)n, sizeof(int));
    t->score = calloc((size_t)n, sizeof(float));
    t->type = malloc((size_t)n);
    t->sorted = malloc((size_t)n * sizeof(int));
    t->bos = t->eos = -1;
    t->chat = -1;
    if (!t->piece || !t->piece_len || !t->score || !t->type || !t->sorted) {
        s1c_tok_free(t);
        return NULL;
    }
    memset(t->type, TT_NORMAL, (size_t)n);
    return t;
}

void s1c_tok_free(s1c_tokenizer *t) {
    if (!t) return;
    if (t->piece)
        for (int i = 0; i < t->n_vocab; i++) free(t->piece[i]);
    free(t->piece);
    free(t->piece_len);
    free(t->score);
    free(t->type);
    free(t->sorted);
    free(t->specials);
    bpe_free(t->bpe);
    free(t);
}

int tok_set_piece(s1c_tokenizer *t, int id, const char *p, size_t len) {
    char *s = malloc(len + 1);
    if (!s) return -1;
    memcpy(s, p, len);
    s[len] = 0;
    free(t->piece[id]);
    t->piece[id] = s;
    t->piece_len[id] = (int)len;
    return 0;
}

static int cmp_bytes(const char *a, int la, const char *b, int lb) {
    int c = memcmp(a, b, (size_t)(la < lb ? la : lb));
    return c ? c : (la > lb) - (la < lb);
}

static int cmp_ids(const void *x, const void *y, void *ctx) {
    const s1c_tokenizer *t = ctx;
    int a = *(const int *)x, b = *(const int *)y;
    int c = cmp_bytes(t->piece[a], t->piece_len[a], t->piece[b], t->piece_len[b]);
    return c ? c : (a > b) - (a < b); /* equal pieces: the lower id wins lookups */
}

static int cmp_len_desc(const void *x, const void *y, void *ctx) {
    const s1c_tokenizer *t = ctx;
    int a = *(const int *)x, b = *(const int *)y;
    int la = t->piece_len[a], lb = t->piece_len[b];
    return la != lb ? (la < lb) - (la > lb) : (a > b) - (a < b);
}

/* Added tokens (control and user-defined) that special-token parsing matches in text,
 * longest first so "<|im_start|>" wins over any shorter token it begins with. */
static int build_specials(s1c_tokenizer *t) {
    free(t->specials);
    t->n_specials = 0;
    t->specials = malloc((size_t)t->n_vocab * sizeof(int));
    if (!t->specials) return -1;
    for (int i = 0; i < t->n_vocab; i++)
        if ((t->type[i] == TT_CONTROL || t->type[i] == TT_USER_DEFINED) && t->piece_len[i] > 0) t->specials[t->n_specials++] = i;
    qsort_r(t->specials, (size_t)t->n_specials, sizeof(int), cmp_len_desc, t);
    return 0;
}

int tok_finish(s1c_tokenizer *t, s1c_err *err) {
    t->max_piece_len = 0;
    for (int i = 0; i < t->n_vocab; i++) {
        if (!t->piece[i] && tok_set_piece(t, i, "", 0) != 0) return s1c_fail(err, "tokenizer: out of memory");
        t->sorted[i] = i;
        if (t->piece_len[i] > t->max_piece_len) t->max_piece_len = t->piece_len[i];
    }
    qsort_r(t->sorted, (size_t)t->n_vocab, sizeof(int), cmp_ids, t);
    if (build_specials(t) != 0) return s1c_fail(err, "tokenizer: out of memory");
    for (int b = 0; b < 256; b++) {
        char hex[8];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        t->byte_id[b] = tok_lookup(t, hex, 6);
    }
    return 0;
}

int tok_lookup(const s1c_tokenizer *t, const char *p, size_t len) {
    int lo = 0, hi = t->n_vocab - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, id = t->sorted[mid];
        int c = cmp_bytes(t->piece[id], t->piece_len[id], p, (int)len);
        if (c == 0) {
            while (mid > 0 && cmp_bytes(t->piece[t->sorted[mid - 1]], t->piece_len[t->sorted[mid - 1]], p, (int)len) == 0) mid--;
            return t->sorted[mid];
        }
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* ------------------------------------------------------------------ llama2.c */

/* The file does not store its token count (run.c takes it from the model): count records. */
static int count_l2c_records(const uint8_t *data, size_t size) {
    cursor c = {.base = data, .size = size, .pos = 4};
    int n = 0;
    while (cur_left(&c) > 0 && n < (1 << 24)) {
        cur_f32(&c);
        int32_t len = cur_i32(&c);
        if (c.bad || len < 0 || !cur_take(&c, (uint64_t)len)) return -1;
        n++;
    }
    return n;
}

int s1c_tok_load_llama2c(s1c_tokenizer **out, const char *path, int vocab_size, s1c_err *err) {
    *out = NULL;
    s1c_mfile f;
    if (s1c_mfile_open(&f, path, err) != 0) return -1;
    cursor c = {.base = f.data, .size = f.size};
    int32_t max_len = cur_i32(&c);
    if (vocab_size <= 0) vocab_size = count_l2c_records(f.data, f.size);
    s1c_tokenizer *t = vocab_size > 0 ? tok_alloc(S1C_TOK_SPM, vocab_size) : NULL;
    int rc = 0;
    if (c.bad || max_len <= 0) rc = s1c_fail(err, "%s: not a llama2.c tokenizer (bad header)", path);
    else if (!t) rc = s1c_fail(err, "%s: out of memory or bad vocabulary size %d", path, vocab_size);
    for (int i = 0; rc == 0 && i < vocab_size; i++) {
        t->score[i] = cur_f32(&c);
        int32_t len = cur_i32(&c);
        const uint8_t *p = len >= 0 ? cur_take(&c, (uint64_t)len) : NULL;
        if (c.bad || !p)
            rc = s1c_fail(err, "%s: truncated at token %d of %d (the model's vocabulary is larger than this tokenizer)", path, i, vocab_size);
        else if (tok_set_piece(t, i, (const char *)p, (size_t)len) != 0)
            rc = s1c_fail(err, "%s: out of memory", path);
    }
    s1c_mfile_close(&f);
    if (rc == 0) rc = tok_finish(t, err);
    if (rc != 0) { s1c_tok_free(t); return -1; }
    t->bos = 1; /* llama2.c's fixed ids */
    t->eos = 2;
    t->add_space_prefix = true;
    *out = t;
    return 0;
}

/* ------------------------------------------------------------------ GGUF */

/* SentencePiece writes spaces as U+2581; llama2.c and s1c use ' '. */
static int set_spm_piece(s1c_tokenizer *t, int id, const char *p, size_t len) {
    char *buf = malloc(len + 1);
    if (!buf) return -1;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (i + 2 < len && (uint8_t)p[i] == 0xE2 && (uint8_t)p[i + 1] == 0x96 && (uint8_t)p[i + 2] == 0x81) {
            buf[k++] = ' ';
            i += 2;
        } else {
            buf[k++] = p[i];
        }
    }
    int rc = tok_set_piece(t, id, buf, k);
    free(buf);
    return rc;
}

/* Byte-level BPE from GGUF: the pre-tokenizer is named by llama.cpp's tokenizer.ggml.pre. */
static int gguf_setup_bpe(s1c_tokenizer *t, const gguf_file *g, const char *path, s1c_err *err) {
    s1c_str pre = {"default", 7};
    if (gguf_get_str(g, "tokenizer.ggml.pre", &pre, err) < 0) return -1;
    const char *regex;
    if ((pre.len == 5 && memcmp(pre.p, "qwen2", 5) == 0) || (pre.len == 16 && memcmp(pre.p, "deepseek-r1-qwen", 16) == 0)) regex = bpe_regex_qwen2;
    else if ((pre.len == 7 && memcmp(pre.p, "default", 7) == 0) || (pre.len == 4 && memcmp(pre.p, "gpt2", 4) == 0)) regex = bpe_regex_gpt2;
    else return s1c_fail(err, "%s: pre-tokenizer '%.*s' is not supported (qwen2, gpt2 are)", path, (int)(pre.len > 32 ? 32 : pre.len), pre.p);
    const gguf_kv *merges = gguf_find(g, "tokenizer.ggml.merges");
    if (merges && (merges->type != GGUF_ARRAY || merges->arr_type != GGUF_STRING))
        return s1c_fail(err, "%s: tokenizer.ggml.merges must be a string array", path);
    uint64_t nm = merges ? merges->arr_n : 0;
    if (bpe_init(t, regex, (size_t)nm, err) != 0) return s1c_fail_prefix(err, "%s", path);
    for (uint64_t i = 0; i < nm; i++)
        if (bpe_add_merge_line(t, merges->arr_strs[i].p, merges->arr_strs[i].len, (int)i) != 0)
            return s1c_fail(err, "%s: merge %llu is not two symbols separated by a space", path, (unsigned long long)i);
    return 0;
}

int s1c_tok_load_gguf(s1c_tokenizer **out, const gguf_file *g, s1c_err *err) {
    *out = NULL;
    const char *path = g->file.path ? g->file.path : "<memory>";
    s1c_str model;
    int r = gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (r < 0) return -1;
    if (r == 0) return s1c_fail(err, "%s: no tokenizer in the file (tokenizer.ggml.model missing)", path);
    int kind;
    if (model.len == 5 && memcmp(model.p, "llama", 5) == 0) kind = S1C_TOK_SPM;
    else if (model.len == 4 && memcmp(model.p, "gpt2", 4) == 0) kind = S1C_TOK_BYTE_BPE;
    else return s1c_fail(err, "%s: tokenizer model '%.*s' is not supported (llama, gpt2 are)", path, (int)(model.len > 32 ? 32 : model.len), model.p);
    const gguf_kv *toks = gguf_find(g, "tokenizer.ggml.tokens");
    if (!toks || toks->type != GGUF_ARRAY || toks->arr_type != GGUF_STRING || toks->arr_n == 0 || toks->arr_n > (1u << 24))
        return s1c_fail(err, "%s: tokenizer.ggml.tokens missing or not a string array", path);
    int n = (int)toks->arr_n;
    const gguf_kv *scores = gguf_find(g, "tokenizer.ggml.scores");
    const gguf_kv *types = gguf_find(g, "tokenizer.ggml.token_type");
    if (scores && (scores->type != GGUF_ARRAY || scores->arr_type != GGUF_F32 || scores->arr_n != (uint64_t)n))
        return s1c_fail(err, "%s: tokenizer.ggml.scores must be %d f32 values", path, n);
    if (types && (types->type != GGUF_ARRAY || types->arr_type != GGUF_I32 || types->arr_n != (uint64_t)n))
        return s1c_fail(err, "%s: tokenizer.ggml.token_type must be %d i32 values", path, n);
    s1c_tokenizer *t = tok_alloc(kind, n);
    if (!t) return s1c_fail(err, "%s: out of memory", path);
    for (int i = 0; i < n; i++) {
        const s1c_str *s = &toks->arr_strs[i];
        int rc = kind == S1C_TOK_SPM ? set_spm_piece(t, i, s->p, s->len) : tok_set_piece(t, i, s->p, s->len);
        if (rc != 0) { s1c_tok_free(t); return s1c_fail(err, "%s: out of memory", path); }
        if (scores) t->score[i] = (float)gguf_arr_f64(scores, (uint64_t)i);
        if (types) t->type[i] = (uint8_t)gguf_arr_i64(types, (uint64_t)i);
    }
    if (tok_finish(t, err) != 0 || (kind == S1C_TOK_BYTE_BPE && gguf_setup_bpe(t, g, path, err) != 0)) {
        s1c_tok_free(t);
        return -1;
    }
    uint64_t id;
    if (gguf_get_u64(g, "tokenizer.ggml.bos_token_id", &id, NULL) == 1 && id < (uint64_t)n) t->bos = (int)id;
    if (gguf_get_u64(g, "tokenizer.ggml.eos_token_id", &id, NULL) == 1 && id < (uint64_t)n) t->eos = (int)id;
    s1c_str tmpl;
    if (gguf_get_str(g, "tokenizer.chat_template", &tmpl, NULL) == 1) {
        char *j = strndup(tmpl.p, (size_t)tmpl.len);
        t->chat = j ? s1c_chat_detect(j) : -1;
        free(j);
    }
    bool sp = kind == S1C_TOK_SPM;
    gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &sp, NULL);
    t->add_space_prefix = sp;
    *out = t;
    return 0;
}

/* ------------------------------------------------------------------ Hugging Face */

/* Collects id → token from a JSON object {token: id} into t (growing n as needed). */
static int hf_add_vocab(s1c_tokenizer **tp, const cJSON *vocab, const cJSON *added, const char *path, s1c_err *err) {
    if (!cJSON_IsObject(vocab)) return s1c_fail(err, "%s: the vocabulary is not a JSON object {token: id}", path);
    if (added && !cJSON_IsObject(added) && !cJSON_IsArray(added)) return s1c_fail(err, "%s: added tokens are neither a list nor an object", path);
    int max_id = -1;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0 && e->valuedouble < (1 << 24)))
            return s1c_fail(err, "%s: token '%.40s' has no valid id (0 .. 2^24)", path, e->string);
        if (e->valuedouble > max_id) max_id = (int)e->valuedouble;
    }
    for (const cJSON *e = added ? added->child : NULL; e; e = e->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        double v = cJSON_IsNumber(id) ? id->valuedouble : e->string ? atof(e->string) : -1;
        if (!(v >= 0 && v < (1 << 24))) return s1c_fail(err, "%s: an added token has no valid id", path);
        if (v > max_id) max_id = (int)v;
    }
    if (max_id < 0) return s1c_fail(err, "%s: empty vocabulary", path);
    s1c_tokenizer *t = tok_alloc(S1C_TOK_BYTE_BPE, max_id + 1);
    if (!t) return s1c_fail(err, "%s: out of memory", path);
    for (const cJSON *e = vocab->child; e; e = e->next) {
        tok_set_piece(t, (int)e->valuedouble, e->string, strlen(e->string));
    }
    /* added tokens: tokenizer.json has a list of {id, content, special}; tokenizer_config.json
     * an object {"id": {content, special}} */
    for (const cJSON *e = added ? added->child : NULL; e; e = e->next) {
        const cJSON *idj = cJSON_GetObjectItemCaseSensitive(e, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        const cJSON *special = cJSON_GetObjectItemCaseSensitive(e, "special");
        int id = cJSON_IsNumber(idj) ? (int)idj->valuedouble : e->string ? atoi(e->string) : -1;
        if (id < 0 || !cJSON_IsString(content)) continue;
        tok_set_piece(t, id, content->valuestring, strlen(content->valuestring));
        t->type[id] = cJSON_IsTrue(special) ? TT_CONTROL : TT_USER_DEFINED;
    }
    *tp = t;
    return 0;
}

/* The pre-tokenizer regex of a tokenizer.json: the pattern of its Split step (alone or in a
 * Sequence); GPT-2's when only a regex-using ByteLevel step is there; NULL when none. */
static const char *hf_pretok_regex(const cJSON *pre) {
    if (!cJSON_IsObject(pre)) return NULL;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(pre, "type");
    if (!cJSON_IsString(type)) return NULL;
    if (strcmp(type->valuestring, "Split") == 0) {
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pre, "pattern"), "Regex");
        return cJSON_IsString(re) ? re->valuestring : NULL;
    }
    if (strcmp(type->valuestring, "ByteLevel") == 0) {
        const cJSON *use = cJSON_GetObjectItemCaseSensitive(pre, "use_regex");
        return cJSON_IsFalse(use) ? NULL : bpe_regex_gpt2;
    }
    if (strcmp(type->valuestring, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
        for (const cJSON *e = cJSON_IsArray(list) ? list->child : NULL; e; e = e->next) {
            const char *r = hf_pretok_regex(e);
            if (r) return r;
        }
    }
    return NULL;
}

/* tokenizer.json's model.merges: "a b" strings (older files) or ["a", "b"] pairs. */
static int hf_add_merges_json(s1c_tokenizer *t, const cJSON *merges, const char *path, s1c_err *err) {
    int rank = 0;
    for (const cJSON *e = merges ? merges->child : NULL; e; e = e->next, rank++) {
        int rc = -1;
        if (cJSON_IsString(e)) rc = bpe_add_merge_line(t, e->valuestring, strlen(e->valuestring), rank);
        else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) && cJSON_IsString(e->child->next))
            rc = bpe_add_merge_pair(t, e->child->valuestring, e->child->next->valuestring, rank);
        if (rc != 0) return s1c_fail(err, "%s: merge %d is malformed", path, rank);
    }
    return 0;
}

/* merges.txt: an optional "#version" line, then "a b" per line. */
static int hf_add_merges_txt(s1c_tokenizer *t, const char *text, size_t len, const char *path, s1c_err *err) {
    int rank = 0, line_no = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len, l = end - i;
        line_no++;
        if (l > 0 && text[i + l - 1] == '\r') l--;
        bool skip = l == 0 || (line_no == 1 && l >= 8 && memcmp(text + i, "#version", 8) == 0);
        if (!skip) {
            if (bpe_add_merge_line(t, text + i, l, rank) != 0) return s1c_fail(err, "%s:%d: not two symbols separated by a space", path, line_no);
            rank++;
        }
        i = end + 1;
    }
    return 0;
}

static int count_lines(const char *s, size_t n) {
    int c = 1;
    for (size_t i = 0; i < n; i++) c += s[i] == '\n';
    return c;
}

int s1c_tok_load_hf(s1c_tokenizer **out, const char *dir_or_file, s1c_err *err) {
    *out = NULL;
    /* a directory, or a tokenizer.json file itself */
    bool is_file = !s1c_is_dir(dir_or_file);
    char *tj = is_file ? strdup(dir_or_file) : s1c_path_join(dir_or_file, "tokenizer.json");
    char *vj = is_file ? NULL : s1c_path_join(dir_or_file, "vocab.json");
    char *mt = is_file ? NULL : s1c_path_join(dir_or_file, "merges.txt");
    char *tc = is_file ? NULL : s1c_path_join(dir_or_file, "tokenizer_config.json");
    char *text = NULL, *text2 = NULL, *mtext = NULL;
    size_t mlen = 0;
    cJSON *root = NULL, *cfg = NULL;
    s1c_tokenizer *t = NULL;
    int rc;
    if (s1c_file_exists(tj)) {
        rc = s1c_read_file(tj, 256u << 20, &text, NULL, err);
        if (rc == 0 && !(root = cJSON_Parse(text))) rc = s1c_fail(err, "%s: not valid JSON", tj);
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
        const cJSON *mtype = cJSON_GetObjectItemCaseSensitive(model, "type");
        if (rc == 0 && (!cJSON_IsString(mtype) || strcmp(mtype->valuestring, "BPE") != 0))
            rc = s1c_fail(err, "%s: only BPE tokenizer models are supported", tj);
        if (rc == 0) rc = hf_add_vocab(&t, cJSON_GetObjectItemCaseSensitive(model, "vocab"), cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), tj, err);
        if (rc == 0) rc = tok_finish(t, err);
        const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
        const char *re = hf_pretok_regex(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"));
        if (rc == 0 && bpe_init(t, re ? re : bpe_regex_qwen2, (size_t)cJSON_GetArraySize(merges), err) != 0) rc = s1c_fail_prefix(err, "%s", tj);
        if (rc == 0) rc = hf_add_merges_json(t, merges, tj, err);
    } else if (vj && s1c_file_exists(vj)) {
        rc = s1c_read_file(vj, 256u << 20, &text, NULL, err);
        if (rc == 0 && !(root = cJSON_Parse(text))) rc = s1c_fail(err, "%s: not valid JSON", vj);
        if (rc == 0 && s1c_file_exists(tc)) {
            rc = s1c_read_file(tc, 64u << 20, &text2, NULL, err);
            if (rc == 0 && !(cfg = cJSON_Parse(text2))) rc = s1c_fail(err, "%s: not valid JSON", tc);
        }
        if (rc == 0) rc = hf_add_vocab(&t, root, cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder"), vj, err);
        if (rc == 0) rc = tok_finish(t, err);
        if (rc == 0 && !s1c_file_exists(mt)) rc = s1c_fail(err, "%s: missing (vocab.json needs merges.txt)", mt);
        if (rc == 0) rc = s1c_read_file(mt, 256u << 20, &mtext, &mlen, err);
        /* Qwen2's tokenizer class (the only vocab.json family s1c meets) uses its own regex */
        if (rc == 0 && bpe_init(t, bpe_regex_qwen2, (size_t)count_lines(mtext, mlen), err) != 0) rc = s1c_fail_prefix(err, "%s", vj);
        if (rc == 0) rc = hf_add_merges_txt(t, mtext, mlen, mt, err);
    } else {
        rc = s1c_fail(err, "%s: no tokenizer.json or vocab.json", dir_or_file);
    }
    if (rc == 0) {
        t->eos = tok_lookup(t, "<|im_end|>", 10);
        if (t->eos < 0) t->eos = tok_lookup(t, "<|endoftext|>", 13);
        if (!cfg && tc && s1c_file_exists(tc) && s1c_read_file(tc, 64u << 20, &text2, NULL, NULL) == 0) cfg = cJSON_Parse(text2);
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
        if (cJSON_IsString(ct)) t->chat = s1c_chat_detect(ct->valuestring);
    }
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    free(text); free(text2); free(mtext); free(tj); free(vj); free(mt); free(tc);
    if (rc != 0) { s1c_tok_free(t); return -1; }
    *out = t;
    return 0;
}

/* ------------------------------------------------------------------ any of them */

int s1c_tok_load(s1c_tokenizer **out, const char *path, int vocab_size, s1c_err *err) {
    *out = NULL;
    if (s1c_is_dir(path)) return s1c_tok_load_hf(out, path, err);
    size_t n = strlen(path);
    if (n >= 5 && strcmp(path + n - 5, ".json") == 0) return s1c_tok_load_hf(out, path, err);
    FILE *fp = fopen(path, "rb");
    if (!fp) return s1c_fail(err, "%s: cannot open", path);
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, fp);
    fclose(fp);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0) {
        gguf_file g;
        if (gguf_open(&g, path, err) != 0) return -1;
        int rc = s1c_tok_load_gguf(out, &g, err);
        gguf_close(&g);
        return rc;
    }
    return s1c_tok_load_llama2c(out, path, vocab_size, err);
}

/* ------------------------------------------------------------------ queries and decoding */

int s1c_tok_kind_of(const s1c_tokenizer *t) { return t->kind; }
int s1c_tok_n_vocab(const s1c_tokenizer *t) { return t->n_vocab; }
int s1c_tok_bos(const s1c_tokenizer *t) { return t->bos; }
int s1c_tok_eos(const s1c_tokenizer *t) { return t->eos; }
int s1c_tok_chat_template(const s1c_tokenizer *t) {
    if (t->chat >= 0) return t->chat;
    return tok_lookup(t, "<|im_start|>", 12) >= 0 ? S1C_CHAT_QWEN25 : -1; /* Qwen vocabularies without a template */
}
bool s1c_tok_can_encode(const s1c_tokenizer *t) { return t->kind == S1C_TOK_SPM || t->bpe != NULL; }

/* Encodes plain text with the tokenizer's own algorithm, appending to the id array. */
static int encode_plain(const s1c_tokenizer *t, const char *text, size_t len, bool first, int32_t **ids, int *n, int *cap, s1c_err *err) {
    if (len == 0) return 0;
    if (t->kind == S1C_TOK_SPM) return spm_encode_text(t, text, len, first && t->add_space_prefix, ids, n, cap, err);
    return bpe_encode_text(t, text, len, ids, n, cap, err);
}

/* The longest added token at text[i], or -1. */
static int special_at(const s1c_tokenizer *t, const char *text, size_t len, size_t i) {
    for (int k = 0; k < t->n_specials; k++) {
        int id = t->specials[k];
        size_t pl = (size_t)t->piece_len[id];
        if (pl <= len - i && t->piece[id][0] == text[i] && memcmp(t->piece[id], text + i, pl) == 0) return id;
    }
    return -1;
}

int s1c_tok_encode_ex(const s1c_tokenizer *t, const char *text, size_t len, int flags, int32_t **ids_out, int *n_out, s1c_err *err) {
    *ids_out = NULL;
    *n_out = 0;
    if (t->kind == S1C_TOK_BYTE_BPE && !t->bpe) return s1c_fail(err, "tokenizer: this vocabulary has no merges: it can decode but not encode");
    int32_t *ids = NULL;
    int n = 0, cap = 0, rc = 0;
    if ((flags & S1C_ENC_BOS) && t->bos >= 0) {
        ids = malloc(16 * sizeof(int32_t));
        if (!ids) return s1c_fail(err, "tokenizer: out of memory");
        cap = 16;
        ids[n++] = t->bos;
    }
    /* special tokens split the text into plain segments; without S1C_ENC_SPECIAL their text is plain text */
    size_t seg = 0;
    bool first = !(flags & S1C_ENC_NO_PREFIX);
    if (flags & S1C_ENC_SPECIAL) {
        uint8_t starts[256] = {0}; /* first bytes of added tokens: most positions are skipped at once */
        for (int k = 0; k < t->n_specials; k++) starts[(uint8_t)t->piece[t->specials[k]][0]] = 1;
        for (size_t i = 0; i < len && rc == 0;) {
            int id = starts[(uint8_t)text[i]] ? special_at(t, text, len, i) : -1;
            if (id < 0) { i++; continue; }
            rc = encode_plain(t, text + seg, i - seg, first, &ids, &n, &cap, err);
            first = false;
            if (rc == 0 && n + 1 > cap) {
                int32_t *ni = realloc(ids, (size_t)(cap = cap * 2 + 16) * sizeof(int32_t));
                if (!ni) rc = s1c_fail(err, "tokenizer: out of memory");
                else ids = ni;
            }
            if (rc == 0) ids[n++] = id;
            i += (size_t)t->piece_len[id];
            seg = i;
        }
    }
    if (rc == 0) rc = encode_plain(t, text + seg, len - seg, first, &ids, &n, &cap, err);
    if (rc != 0) { free(ids); return -1; }
    if (!ids) ids = malloc(sizeof(int32_t)); /* a valid pointer even for no tokens */
    *ids_out = ids;
    *n_out = n;
    return 0;
}

int s1c_tok_encode(const s1c_tokenizer *t, const char *text, bool add_bos, int32_t **ids, int *n_ids, s1c_err *err) {
    return s1c_tok_encode_ex(t, text, strlen(text), add_bos ? S1C_ENC_BOS : 0, ids, n_ids, err);
}

/* GPT-2's byte ↔ unicode table: printable Latin-1 bytes stand for themselves, the other
 * 68 bytes are shifted to U+0100.. in order. Returns the byte for code point cp, or -1. */
static int gpt2_byte_of(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp < 0x100 || cp >= 0x100 + 68) return -1;
    int k = (int)cp - 0x100, n = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (!printable && n++ == k) return b;
    }
    return -1;
}

/* Decodes one UTF-8 code point; returns its length or 0 if malformed. */
static int utf8_next(const uint8_t *s, int n, uint32_t *cp) {
    if (n <= 0) return 0;
    uint8_t c = s[0];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || len > n) return 0;
    uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    *cp = v;
    return len;
}

static int decode_byte_bpe(const s1c_tokenizer *t, int token, char *buf, int cap) {
    const uint8_t *p = (const uint8_t *)t->piece[token];
    int n = t->piece_len[token], k = 0;
    if (t->type[token] == TT_CONTROL || t->type[token] == TT_USER_DEFINED) {
        /* added tokens are stored as their literal text */
        k = n < cap ? n : cap;
        memcpy(buf, p, (size_t)k);
        return k;
    }
    for (int i = 0; i < n && k < cap;) {
        uint32_t cp;
        int len = utf8_next(p + i, n - i, &cp);
        int b = len ? gpt2_byte_of(cp) : -1;
        if (b < 0) { /* not a byte-level symbol: keep the raw bytes */
            int l = len ? len : 1;
            for (int j = 0; j < l && k < cap; j++) buf[k++] = (char)p[i + j];
            i += l;
        } else {
            buf[k++] = (char)b;
            i += len;
        }
    }
    return k;
}

int s1c_tok_decode(const s1c_tokenizer *t, int prev, int token, char *buf, int cap) {
    if (token < 0 || token >= t->n_vocab || cap <= 0) return 0;
    if (t->kind == S1C_TOK_BYTE_BPE) return decode_byte_bpe(t, token, buf, cap);
    if (t->type[token] == TT_CONTROL) return 0;
    const char *p = t->piece[token];
    int n = t->piece_len[token];
    /* SentencePiece's dummy prefix: the first piece after BOS loses its leading space */
    if (prev == t->bos && n > 0 && p[0] == ' ') { p++; n--; }
    unsigned int byte;
    if (n == 6 && p[0] == '<' && p[5] == '>' && sscanf(p, "<0x%02X>", &byte) == 1) {
        buf[0] = (char)byte;
        return 1;
    }
    if (n > cap) n = cap;
    memcpy(buf, p, (size_t)n);
    return n;
}
