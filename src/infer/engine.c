/* The engine: continuous batching of many sequences over one paged KV cache.
 *
 * A sequence is its token list (prompt, then everything sampled or injected) plus how many
 * of those tokens already have K/V in the cache (n_fwd). Each step gathers every running
 * sequence's pending tokens [n_fwd, n) into one ragged batch (decodes first, then prefill
 * chunks up to max_batch_tokens), forwards once, samples for every sequence whose pending
 * tokens are all in, runs its hook, and retires finished sequences so waiting ones take
 * their blocks. Blocks are refcounted: forks and the prefix cache share them, and a shared
 * block is copied before a sequence writes into it (copy-on-write). When blocks run out a
 * running sequence is preempted: its blocks are freed and it is recomputed later from its
 * tokens, which gives the same results because a row's arithmetic does not depend on the
 * batch (reference kernels; see DESIGN.md). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/infer.h"

enum { SEQ_WAITING = 0, SEQ_RUNNING = 1, SEQ_DONE = 2 };

typedef struct eseq {
    int id, parent, phase; /* phase: SEQ_WAITING, SEQ_RUNNING or SEQ_DONE */
    int sample;            /* index among the submission's n_samples */
    int32_t *tok;
    int n, cap, n_prompt;
    int n_fwd;             /* tokens with K/V in the cache */
    int n_cached_prompt;
    int32_t *blocks;
    int n_blocks, cap_blocks;
    int n_registered;      /* full prompt blocks offered to the prefix cache */
    uint64_t admit_order;
    s1c_sampler *smp;
    s1c_seq_params p;      /* prompt/stop pointers not used after submit: copied below */
    int32_t *stop_ids;
    void *state;           /* per-sequence hook state (p.state_size bytes) */
    int n_samples_left;    /* forks still to make at the first sample */
    int32_t ban[8];
    int n_ban;
    int stop_reason;
    char error[256];
    double t_submit, t_admit, t_first;
} eseq;

typedef struct cache_entry {
    uint64_t hash;         /* 0 = empty */
    int block;
    uint64_t last_use;
} cache_entry;

struct s1c_engine {
    const s1c_model *m;
    s1c_engine_params p;
    int vocab;
    s1c_kv *kv;
    s1c_fwd *fwd;
    eseq **seqs;           /* live sequences, by id order */
    int n_seqs, cap_seqs;
    eseq **incoming;       /* submitted, not yet seen by step (guarded by mu) */
    int n_incoming, cap_incoming;
    s1c_seq_result *done;  /* finished, not yet polled (guarded by mu) */
    int n_done, cap_done;
    pthread_mutex_t mu;
    int next_id;
    uint64_t admit_counter, clock;
    /* batch buffers */
    int32_t *b_tok, *b_pos, *b_seq;
    uint8_t *b_want;
    s1c_seq_blocks *b_blocks;
    eseq **b_members;      /* sequence of each batch slot */
    int *b_drawn;          /* per batch slot: its logits row and the token drawn in parallel (sample_all) */
    float *logits;         /* [max_seqs][vocab] */
    float *hook_logits;    /* [vocab]: the drawn row for hooks that want it (made on first use) */
    /* prefix cache */
    cache_entry *cache;
    int cache_cap, n_cached;
    s1c_engine_stats st;
    eseq **forks;          /* made by hooks during a step, admitted after it */
    int n_forks, cap_forks;
};

s1c_engine_params s1c_engine_defaults(void) {
    return (s1c_engine_params){.max_batch_tokens = 256, .max_seqs = 64, .block_size = 16, .kv_dtype = S1C_KV_AUTO, .prefix_cache = true};
}

void s1c_seq_result_free(s1c_seq_result *r) {
    free(r->tokens);
    free(r->state);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ growing arrays */

static int grow(void **arr, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    int c = *cap ? *cap : 8;
    while (c < need) c *= 2;
    void *n = realloc(*arr, (size_t)c * elem);
    if (!n) return -1;
    *arr = n;
    *cap = c;
    return 0;
}

static int seq_append(eseq *s, const int32_t *t, int k) {
    if (grow((void **)&s->tok, &s->cap, s->n + k, sizeof(int32_t)) != 0) return -1;
    memcpy(s->tok + s->n, t, (size_t)k * sizeof(int32_t));
    s->n += k;
    return 0;
}

static void seq_free(eseq *s) {
    if (!s) return;
    free(s->tok);
    free(s->blocks);
    free(s->stop_ids);
    free(s->state);
    s1c_sampler_free(s->smp);
    free(s);
}

/* ------------------------------------------------------------------ prefix cache */

/* Hash of a full block given the hash of the blocks before it (a chain, so equal hashes mean
 * equal prefixes up to collisions of 64-bit hashes). */
static uint64_t block_hash(uint64_t prev, const int32_t *t, int n) {
    uint64_t h = prev ^ 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < n; i++) {
        h ^= (uint64_t)(uint32_t)t[i] + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
        h *= 0xff51afd7ed558ccdull;
    }
    return h ? h : 1;
}

static cache_entry *cache_find(s1c_engine *e, uint64_t h) {
    if (!e->cache) return NULL;
    for (int i = (int)(h % (uint64_t)e->cache_cap), k = 0; k < e->cache_cap; k++, i = (i + 1) % e->cache_cap) {
        if (e->cache[i].hash == h) return &e->cache[i];
        if (e->cache[i].hash == 0) return NULL;
    }
    return NULL;
}

static void cache_insert(s1c_engine *e, uint64_t h, int block) {
    if (!e->cache || cache_find(e, h) || e->n_cached * 2 >= e->cache_cap) return;
    for (int i = (int)(h % (uint64_t)e->cache_cap);; i = (i + 1) % e->cache_cap)
        if (e->cache[i].hash == 0) {
            e->cache[i] = (cache_entry){h, block, ++e->clock};
            s1c_kv_ref(e->kv, block); /* the cache holds its own reference */
            e->n_cached++;
            return;
        }
}

/* Drops the least recently used entry that only the cache still uses. Open addressing with
 * linear probing: entries after the removed one are re-inserted to keep probe chains intact. */
static bool cache_evict_one(s1c_engine *e) {
    int victim = -1;
    for (int i = 0; i < e->cache_cap; i++)
        if (e->cache[i].hash && s1c_kv_refcount(e->kv, e->cache[i].block) == 1 &&
            (victim < 0 || e->cache[i].last_use < e->cache[victim].last_use))
            victim = i;
    if (victim < 0) return false;
    s1c_kv_unref(e->kv, e->cache[victim].block);
    e->cache[victim].hash = 0;
    e->n_cached--;
    for (int i = (victim + 1) % e->cache_cap; e->cache[i].hash; i = (i + 1) % e->cache_cap) {
        cache_entry c = e->cache[i];
        e->cache[i].hash = 0;
        int j = (int)(c.hash % (uint64_t)e->cache_cap);
        while (e->cache[j].hash) j = (j + 1) % e->cache_cap;
        e->cache[j] = c;
    }
    return true;
}

static int alloc_block(s1c_engine *e) {
    int b = s1c_kv_alloc(e->kv);
    while (b < 0 && cache_evict_one(e)) b = s1c_kv_alloc(e->kv);
    return b;
}

/* Offers the sequence's full prompt blocks that are now in the cache. */
static void register_prompt_blocks(s1c_engine *e, eseq *s) {
    if (!e->cache) return;
    int bs = e->p.block_size;
    uint64_t h = 0;
    for (int i = 0; (i + 1) * bs <= s->n_prompt && (i + 1) * bs <= s->n_fwd; i++) {
        h = block_hash(h, s->tok + i * bs, bs);
        if (i >= s->n_registered) {
            cache_insert(e, h, s->blocks[i]);
            s->n_registered = i + 1;
        }
    }
}

/* At admission: reuse cached blocks for the longest cached run of full prompt blocks, always
 * leaving at least one prompt token to forward (its logits start the generation). */
static void take_cached_prefix(s1c_engine *e, eseq *s) {
    if (!e->cache || s->n_fwd > 0) return;
    int bs = e->p.block_size;
    if (grow((void **)&s->blocks, &s->cap_blocks, s->n_prompt / bs + 1, sizeof(int32_t)) != 0) return;
    uint64_t h = 0;
    for (int i = 0; (i + 1) * bs <= s->n_prompt - 1; i++) {
        h = block_hash(h, s->tok + i * bs, bs);
        cache_entry *c = cache_find(e, h);
        if (!c) break;
        c->last_use = ++e->clock;
        s1c_kv_ref(e->kv, c->block);
        s->blocks[s->n_blocks++] = c->block;
        s->n_fwd = s->n_cached_prompt = (i + 1) * bs;
        s->n_registered = i + 1;
        e->st.prefix_hits++;
    }
}

/* ------------------------------------------------------------------ blocks of a sequence */

static void release_blocks(s1c_engine *e, eseq *s) {
    for (int i = 0; i < s->n_blocks; i++) s1c_kv_unref(e->kv, s->blocks[i]);
    s->n_blocks = 0;
    s->n_registered = 0;
}

/* Makes positions [from, to) writable: blocks allocated, shared ones copied first. */
static int ensure_blocks(s1c_engine *e, eseq *s, int from, int to) {
    int bs = e->p.block_size, need = (to + bs - 1) / bs;
    if (grow((void **)&s->blocks, &s->cap_blocks, need, sizeof(int32_t)) != 0) return -1;
    for (int j = from / bs; j < need; j++) {
        if (j < s->n_blocks) {
            int b = s->blocks[j];
            if (s1c_kv_refcount(e->kv, b) == 1) continue;
            int nb = alloc_block(e); /* copy-on-write: another sequence or the cache uses it */
            if (nb < 0) return -1;
            s1c_kv_copy(e->kv, nb, b, from - j * bs > 0 ? from - j * bs : 0);
            s1c_kv_unref(e->kv, b);
            s->blocks[j] = nb;
            if (j < s->n_registered) s->n_registered = j;
        } else {
            int nb = alloc_block(e);
            if (nb < 0) return -1;
            s->blocks[s->n_blocks++] = nb;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ life cycle */

int s1c_engine_new(s1c_engine **out, const s1c_model *m, const s1c_engine_params *pp, s1c_err *err) {
    *out = NULL;
    s1c_engine_params p = pp ? *pp : s1c_engine_defaults();
    const s1c_config *c = s1c_model_config(m);
    if (p.max_batch_tokens <= 0) p.max_batch_tokens = 256;
    if (p.max_seqs <= 0) p.max_seqs = 64;
    if (p.block_size <= 0) p.block_size = 16;
    if (p.ctx <= 0 || p.ctx > c->max_seq_len) p.ctx = c->max_seq_len;
    if (p.kv_dtype == S1C_KV_AUTO) p.kv_dtype = s1c_kv_auto_dtype(m);
    if (p.kv_dtype != S1C_F32 && p.kv_dtype != S1C_F16 && p.kv_dtype != S1C_BF16) p.kv_dtype = S1C_F32;
    uint64_t bb = s1c_kv_block_bytes(c, p.block_size, p.kv_dtype);
    if (p.n_blocks <= 0) {
        uint64_t want = p.kv_bytes;
        if (want == 0) {
            uint64_t full = (uint64_t)p.max_seqs * (uint64_t)((p.ctx + p.block_size - 1) / p.block_size) * bb;
            want = full < (2ull << 30) ? full : (2ull << 30);
        }
        p.n_blocks = (int)(want / bb);
    }
    if (p.n_blocks <= 0) return s1c_fail(err, "engine: the KV memory limit holds no block (one block takes %llu bytes)", (unsigned long long)bb);
    s1c_engine *e = calloc(1, sizeof *e);
    if (!e) return s1c_fail(err, "engine: out of memory");
    e->m = m;
    e->p = p;
    e->vocab = c->vocab_size;
    pthread_mutex_init(&e->mu, NULL);
    int T = p.max_batch_tokens;
    if (s1c_kv_new(&e->kv, c, p.block_size, p.n_blocks, p.kv_dtype, err) != 0 ||
        s1c_fwd_new(&e->fwd, m, T, p.ctx, err) != 0) {
        s1c_engine_free(e);
        return -1;
    }
    e->b_tok = malloc((size_t)T * sizeof(int32_t));
    e->b_pos = malloc((size_t)T * sizeof(int32_t));
    e->b_seq = malloc((size_t)T * sizeof(int32_t));
    e->b_want = malloc((size_t)T);
    e->b_blocks = malloc((size_t)p.max_seqs * sizeof(s1c_seq_blocks));
    e->b_members = malloc((size_t)p.max_seqs * sizeof(eseq *));
    e->b_drawn = malloc((size_t)p.max_seqs * 2 * sizeof(int));
    e->logits = malloc((size_t)p.max_seqs * (size_t)e->vocab * sizeof(float));
    if (p.prefix_cache) {
        e->cache_cap = 2 * p.n_blocks + 16;
        e->cache = calloc((size_t)e->cache_cap, sizeof(cache_entry));
    }
    if (!e->b_tok || !e->b_pos || !e->b_seq || !e->b_want || !e->b_blocks || !e->b_members || !e->b_drawn || !e->logits || (p.prefix_cache && !e->cache)) {
        s1c_engine_free(e);
        return s1c_fail(err, "engine: out of memory");
    }
    e->st.n_blocks = p.n_blocks;
    *out = e;
    return 0;
}

void s1c_engine_free(s1c_engine *e) {
    if (!e) return;
    for (int i = 0; i < e->n_seqs; i++) seq_free(e->seqs[i]);
    for (int i = 0; i < e->n_incoming; i++) seq_free(e->incoming[i]);
    for (int i = 0; i < e->n_forks; i++) seq_free(e->forks[i]);
    for (int i = 0; i < e->n_done; i++) s1c_seq_result_free(&e->done[i]);
    free(e->seqs); free(e->incoming); free(e->done); free(e->forks);
    free(e->b_tok); free(e->b_pos); free(e->b_seq); free(e->b_want); free(e->b_blocks); free(e->b_members); free(e->b_drawn);
    free(e->logits); free(e->cache); free(e->hook_logits);
    s1c_kv_free(e->kv);
    s1c_fwd_free(e->fwd);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

static eseq *seq_new(const s1c_seq_params *p, int vocab, s1c_err *err) {
    eseq *s = calloc(1, sizeof *s);
    if (!s) { s1c_fail(err, "engine: out of memory"); return NULL; }
    s->p = *p;
    s->parent = -1;
    s->n_prompt = p->n_prompt;
    if (seq_append(s, p->prompt, p->n_prompt) != 0 || s1c_sampler_new(&s->smp, &p->sampler, vocab, err) != 0) {
        seq_free(s);
        return NULL;
    }
    if (p->n_stop_ids > 0) {
        s->stop_ids = malloc((size_t)p->n_stop_ids * sizeof(int32_t));
        if (!s->stop_ids) { seq_free(s); s1c_fail(err, "engine: out of memory"); return NULL; }
        memcpy(s->stop_ids, p->stop_ids, (size_t)p->n_stop_ids * sizeof(int32_t));
    }
    if (p->state_size > 0) {
        s->state = malloc(p->state_size);
        if (!s->state) { seq_free(s); s1c_fail(err, "engine: out of memory"); return NULL; }
        if (p->state) memcpy(s->state, p->state, p->state_size);
        else memset(s->state, 0, p->state_size);
    }
    s->p.prompt = NULL;
    s->p.state = NULL;
    s->p.stop_ids = s->stop_ids;
    s->n_samples_left = p->n_samples > 1 ? p->n_samples - 1 : 0;
    s->t_submit = s1c_now();
    return s;
}

int s1c_engine_submit(s1c_engine *e, const s1c_seq_params *p, s1c_err *err) {
    if (!p || p->n_prompt <= 0 || !p->prompt) return s1c_fail(err, "engine: the prompt is empty");
    if (p->n_samples < 0) return s1c_fail(err, "engine: the number of samples must be at least 1");
    for (int i = 0; i < p->n_stop_ids; i++)
        if (p->stop_ids[i] < 0 || p->stop_ids[i] >= e->vocab) return s1c_fail(err, "engine: stop token %d is outside the vocabulary", p->stop_ids[i]);
    if (p->n_prompt >= e->p.ctx) return s1c_fail(err, "engine: the prompt has %d tokens; the context holds %d", p->n_prompt, e->p.ctx);
    for (int i = 0; i < p->n_prompt; i++)
        if (p->prompt[i] < 0 || p->prompt[i] >= e->vocab) return s1c_fail(err, "engine: prompt token %d (id %d) is outside the vocabulary", i, p->prompt[i]);
    uint64_t need = (uint64_t)(p->n_prompt + 1 + e->p.block_size - 1) / (uint64_t)e->p.block_size;
    if (need > (uint64_t)e->p.n_blocks)
        return s1c_fail(err, "engine: the prompt needs %llu KV blocks; the cache has %d (raise the KV memory limit)", (unsigned long long)need, e->p.n_blocks);
    eseq *s = seq_new(p, e->vocab, err);
    if (!s) return -1;
    pthread_mutex_lock(&e->mu);
    int rc = grow((void **)&e->incoming, &e->cap_incoming, e->n_incoming + 1, sizeof(eseq *));
    if (rc == 0) {
        s->id = e->next_id++;
        e->incoming[e->n_incoming++] = s;
    }
    pthread_mutex_unlock(&e->mu);
    if (rc != 0) { seq_free(s); return s1c_fail(err, "engine: out of memory"); }
    return s->id;
}

static eseq *find_seq(const s1c_engine *e, int id) {
    for (int i = 0; i < e->n_seqs; i++)
        if (e->seqs[i]->id == id) return e->seqs[i];
    for (int i = 0; i < e->n_forks; i++)
        if (e->forks[i]->id == id) return e->forks[i];
    return NULL;
}

const int32_t *s1c_engine_tokens(const s1c_engine *e, int seq_id, int *n, int *n_prompt) {
    eseq *s = find_seq(e, seq_id);
    if (!s) return NULL;
    *n = s->n;
    *n_prompt = s->n_prompt;
    return s->tok;
}

void *s1c_engine_state(const s1c_engine *e, int seq_id) {
    eseq *s = find_seq(e, seq_id);
    return s ? s->state : NULL;
}

void s1c_engine_get_stats(const s1c_engine *e, s1c_engine_stats *st) {
    *st = e->st;
    st->n_free_blocks = s1c_kv_n_free(e->kv);
    st->n_cached_blocks = e->n_cached;
}

/* A running copy of s's first `keep` tokens, sharing its KV blocks (copy-on-write). */
static eseq *clone_seq(s1c_engine *e, const eseq *s, int keep, const s1c_sampler_params *sp) {
    eseq *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->p = s->p;
    c->p.n_samples = 1;
    if (sp) c->p.sampler = *sp;
    c->parent = s->id;
    c->sample = s->sample;
    c->n_prompt = s->n_prompt;
    c->n_cached_prompt = s->n_prompt;
    c->n_fwd = s->n_fwd < keep ? s->n_fwd : keep;
    c->t_submit = c->t_admit = s1c_now();
    c->admit_order = ++e->admit_counter;
    c->phase = SEQ_RUNNING;
    s1c_err err;
    if (seq_append(c, s->tok, keep) != 0 || s1c_sampler_new(&c->smp, &c->p.sampler, e->vocab, &err) != 0 ||
        grow((void **)&c->blocks, &c->cap_blocks, s->n_blocks, sizeof(int32_t)) != 0) {
        seq_free(c);
        return NULL;
    }
    c->stop_ids = s->p.n_stop_ids ? malloc((size_t)s->p.n_stop_ids * sizeof(int32_t)) : NULL;
    c->state = s->p.state_size ? malloc(s->p.state_size) : NULL;
    if ((s->p.n_stop_ids && !c->stop_ids) || (s->p.state_size && !c->state)) {
        seq_free(c);
        return NULL;
    }
    if (c->stop_ids) memcpy(c->stop_ids, s->stop_ids, (size_t)s->p.n_stop_ids * sizeof(int32_t));
    if (c->state) memcpy(c->state, s->state, s->p.state_size);
    c->p.stop_ids = c->stop_ids;
    int bs = e->p.block_size, nb = (c->n_fwd + bs - 1) / bs;
    for (int i = 0; i < nb; i++) {
        c->blocks[c->n_blocks++] = s->blocks[i];
        s1c_kv_ref(e->kv, s->blocks[i]);
    }
    c->n_registered = 0;
    pthread_mutex_lock(&e->mu);
    c->id = e->next_id++;
    pthread_mutex_unlock(&e->mu);
    return c;
}

/* ------------------------------------------------------------------ finishing */

static void finish(s1c_engine *e, eseq *s, int reason, const char *msg) {
    if (s->phase == SEQ_DONE) return;
    register_prompt_blocks(e, s);
    release_blocks(e, s);
    s->phase = SEQ_DONE;
    s->stop_reason = reason;
    if (msg) snprintf(s->error, sizeof s->error, "%s", msg);
}

/* Moves finished sequences to the results list. */
static int retire(s1c_engine *e) {
    int k = 0;
    for (int i = 0; i < e->n_seqs; i++) {
        eseq *s = e->seqs[i];
        if (s->phase != SEQ_DONE) { e->seqs[k++] = s; continue; }
        s1c_seq_result r = {.id = s->id, .parent = s->parent, .sample = s->sample, .n_prompt = s->n_prompt, .n_cached_prompt = s->n_cached_prompt,
                            .stop_reason = s->stop_reason, .user = s->p.user,
                            .queue_s = s->t_admit > 0 ? s->t_admit - s->t_submit : 0,
                            .prefill_s = s->t_first > 0 ? s->t_first - s->t_admit : 0,
                            .decode_s = s->t_first > 0 ? s1c_now() - s->t_first : 0};
        snprintf(r.error, sizeof r.error, "%s", s->error);
        r.state = s->state; /* handed over to the result */
        s->state = NULL;
        r.n_tokens = s->n - s->n_prompt;
        r.tokens = malloc((size_t)(r.n_tokens > 0 ? r.n_tokens : 1) * sizeof(int32_t));
        if (!r.tokens) return -1;
        memcpy(r.tokens, s->tok + s->n_prompt, (size_t)r.n_tokens * sizeof(int32_t));
        pthread_mutex_lock(&e->mu);
        int rc = grow((void **)&e->done, &e->cap_done, e->n_done + 1, sizeof(s1c_seq_result));
        if (rc == 0) e->done[e->n_done++] = r;
        pthread_mutex_unlock(&e->mu);
        if (rc != 0) { free(r.tokens); return -1; }
        seq_free(s);
    }
    e->n_seqs = k;
    return 0;
}

int s1c_engine_poll(s1c_engine *e, s1c_seq_result *out) {
    pthread_mutex_lock(&e->mu);
    int got = e->n_done > 0;
    if (got) {
        *out = e->done[0];
        memmove(e->done, e->done + 1, (size_t)(e->n_done - 1) * sizeof(s1c_seq_result));
        e->n_done--;
    }
    pthread_mutex_unlock(&e->mu);
    return got;
}

/* ------------------------------------------------------------------ sampling and hooks */

int s1c_engine_fork(s1c_engine *e, int seq_id, const int32_t *inject, int n_inject, const void *state,
                    const s1c_sampler_params *sampler) {
    eseq *s = find_seq(e, seq_id);
    if (!s || s->phase != SEQ_RUNNING || n_inject < 0) return -1;
    for (int i = 0; i < n_inject; i++)
        if (inject[i] < 0 || inject[i] >= e->vocab) return -1;
    eseq *c = clone_seq(e, s, s->n, sampler);
    if (!c) return -1;
    if (state && c->state) memcpy(c->state, state, c->p.state_size);
    if ((n_inject > 0 && seq_append(c, inject, n_inject) != 0) ||
        grow((void **)&e->forks, &e->cap_forks, e->n_forks + 1, sizeof(eseq *)) != 0) {
        release_blocks(e, c);
        seq_free(c);
        return -1;
    }
    if (c->n_fwd == c->n) c->n_fwd--; /* nothing new to forward: recompute the last position's logits */
    e->forks[e->n_forks++] = c;
    return c->id;
}

static bool is_stop_id(const eseq *s, int t) {
    for (int i = 0; i < s->p.n_stop_ids; i++)
        if (s->stop_ids[i] == t) return true;
    return false;
}

/* This step's bans on the sequence's logits row (then cleared): the tokens a hook banned, and
 * the stop tokens while min_new_tokens is not reached. */
static void apply_bans(eseq *s, float *row) {
    for (int i = 0; i < s->n_ban; i++) row[s->ban[i]] = -INFINITY;
    s->n_ban = 0;
    if (s->n - s->n_prompt < s->p.min_new_tokens)
        for (int i = 0; i < s->p.n_stop_ids; i++) row[s->stop_ids[i]] = -INFINITY;
}

/* The token t drawn for s (its logits row as hooks see it: seen, or NULL), through the hook's
 * decisions. */
static void apply_draw(s1c_engine *e, eseq *s, int t, const float *seen) {
    if (s->t_first == 0) s->t_first = s1c_now();
    s1c_step_io io = {.token = t, .n_generated = s->n - s->n_prompt, .truncate_to = -1, .logits = seen};
    if (s->p.hook) s->p.hook(e, s->id, s->p.user, s->state, &io);
    if (io.truncate_to >= 0 && io.truncate_to < s->n - s->n_prompt) {
        /* cut back: later positions are simply overwritten when forwarded again */
        s->n = s->n_prompt + io.truncate_to;
        if (s->n_fwd > s->n) s->n_fwd = s->n;
    }
    t = io.token; /* a hook may substitute the drawn token (forcing, scripted tests) */
    if (t < 0 || t >= e->vocab) { finish(e, s, S1C_STOP_CANCELLED, "hook substituted a token outside the vocabulary"); return; }
    for (int i = 0; i < io.n_inject; i++)
        if (io.inject[i] < 0 || io.inject[i] >= e->vocab) { finish(e, s, S1C_STOP_CANCELLED, "hook injected a token outside the vocabulary"); return; }
    if ((!io.drop && seq_append(s, &t, 1) != 0) || (io.n_inject > 0 && seq_append(s, io.inject, io.n_inject) != 0)) {
        finish(e, s, S1C_STOP_CANCELLED, "out of memory");
        return;
    }
    for (int i = 0; i < io.n_ban && i < 8; i++)
        if (io.ban[i] >= 0 && io.ban[i] < e->vocab) s->ban[s->n_ban++] = io.ban[i];
    int generated = s->n - s->n_prompt;
    if (io.stop) finish(e, s, io.stop_reason, NULL);
    else if (!io.drop && io.n_inject == 0 && is_stop_id(s, t)) finish(e, s, S1C_STOP_EOS, NULL);
    else if (s->p.max_new_tokens >= 0 && generated >= s->p.max_new_tokens) finish(e, s, S1C_STOP_MAX_TOKENS, NULL);
    /* the newest token sits at position n-1; it is forwarded (and another token drawn) only if n-1 < ctx */
    else if (s->n > e->p.ctx + 1) finish(e, s, S1C_STOP_CONTEXT_FULL, "injected tokens run past the context");
    else if (s->n == e->p.ctx + 1) finish(e, s, S1C_STOP_CONTEXT_FULL, NULL);
    else if (s->n_fwd == s->n) s->n_fwd--; /* dropped with nothing injected: recompute these logits */
}

/* Draws the next token from this sequence's logits row and applies the hook's decisions. */
static void sample_and_apply(s1c_engine *e, eseq *s, float *row) {
    apply_bans(s, row);
    const float *seen = NULL;
    if (s->p.want_logits) {
        /* the sampler rescales the row in place: hooks get it as the model gave it */
        if (!e->hook_logits) e->hook_logits = malloc((size_t)e->vocab * sizeof(float));
        if (e->hook_logits) seen = memcpy(e->hook_logits, row, (size_t)e->vocab * sizeof(float));
    }
    apply_draw(e, s, s1c_sampler_sample(s->smp, row, s->tok, s->n), seen);
}

/* Whether slot i's draw can run beside the others (sample_all): it forks nothing and no hook
 * wants its logits (those share one buffer). */
static bool draws_alone(const eseq *s) { return s->n_fwd == s->n && s->n_samples_left == 0 && !s->p.want_logits; }

typedef struct draw_job {
    s1c_engine *e;
    int n; /* batch slots */
} draw_job;

/* Task t of T: the draws of slots t, t + T, ... that draws_alone (each touches its own sequence's
 * bans, sampler and logits row only). b_drawn[2i] holds slot i's row, b_drawn[2i + 1] gets the
 * token (it stays -1 for a slot drawn later, on the serial path). */
static void draw_task(void *ctx, int task, int n_tasks) {
    const draw_job *j = ctx;
    s1c_engine *e = j->e;
    for (int i = task; i < j->n; i += n_tasks) {
        eseq *s = e->b_members[i];
        if (!draws_alone(s)) continue;
        float *row = e->logits + (size_t)e->b_drawn[2 * i] * (size_t)e->vocab;
        apply_bans(s, row);
        e->b_drawn[2 * i + 1] = s1c_sampler_sample(s->smp, row, s->tok, s->n);
    }
}

/* Every slot's next token: the draws first, over the pool (a draw with temperature is ~75 us on
 * Qwen's 151936 tokens, and 32 sequences' draws one after another were ~8% of a 0.5B step), then
 * the hooks and their decisions in slot order on this thread. */
static int sample_all(s1c_engine *e, int n_members) {
    const size_t V = (size_t)e->vocab;
    int rows = 0, alone = 0;
    for (int i = 0; i < n_members; i++) {
        eseq *s = e->b_members[i];
        e->b_drawn[2 * i] = s->n_fwd == s->n ? rows++ : -1;
        e->b_drawn[2 * i + 1] = -1;
        alone += draws_alone(s);
    }
    draw_job dj = {e, n_members};
    s1c_pool *pool = s1c_pool_global();
    int T = s1c_pool_threads(pool);
    if (T > 1 && alone > 1) s1c_pool_run(pool, T < alone ? T : alone, draw_task, &dj);
    else draw_task(&dj, 0, 1);
    for (int i = 0; i < n_members; i++) {
        eseq *s = e->b_members[i];
        if (s->n_fwd != s->n) continue; /* a prefill chunk that is not finished yet */
        if (e->b_drawn[2 * i + 1] >= 0) { /* drawn above: a hook on an earlier slot changes nothing of it */
            apply_draw(e, s, e->b_drawn[2 * i + 1], NULL);
            continue;
        }
        float *row = e->logits + (size_t)e->b_drawn[2 * i] * V;
        if (s->n_samples_left > 0) {
            /* k samples share the prompt's blocks and its last logits */
            float *copy = malloc(V * sizeof(float));
            if (!copy) return -1;
            for (int k = 1; k <= s->n_samples_left; k++) {
                s1c_sampler_params sp = s->p.sampler;
                sp.seed += (uint64_t)k;
                eseq *c = clone_seq(e, s, s->n, &sp);
                if (!c || grow((void **)&e->forks, &e->cap_forks, e->n_forks + 1, sizeof(eseq *)) != 0) { seq_free(c); free(copy); return -1; }
                e->forks[e->n_forks++] = c;
                c->sample = k;
                memcpy(copy, row, V * sizeof(float));
                sample_and_apply(e, c, copy);
            }
            s->n_samples_left = 0;
            free(copy);
        }
        sample_and_apply(e, s, row);
    }
    return 0;
}

/* ------------------------------------------------------------------ scheduling */

static int n_running(const s1c_engine *e) {
    int k = 0;
    for (int i = 0; i < e->n_seqs; i++) k += e->seqs[i]->phase == SEQ_RUNNING;
    return k;
}

static void preempt(s1c_engine *e, eseq *s) {
    release_blocks(e, s);
    s->n_fwd = 0;
    s->phase = SEQ_WAITING;
    e->st.preemptions++;
}

static void admit(s1c_engine *e) {
    int running = n_running(e);
    for (int i = 0; i < e->n_seqs && running < e->p.max_seqs; i++) {
        eseq *s = e->seqs[i];
        if (s->phase != SEQ_WAITING) continue;
        if ((s->n + e->p.block_size - 1) / e->p.block_size > e->p.n_blocks) {
            finish(e, s, S1C_STOP_CONTEXT_FULL, "the sequence outgrew the whole KV cache");
            continue;
        }
        take_cached_prefix(e, s);
        int chunk = s->n - s->n_fwd < e->p.max_batch_tokens ? s->n - s->n_fwd : e->p.max_batch_tokens;
        if (ensure_blocks(e, s, s->n_fwd, s->n_fwd + chunk) != 0) {
            release_blocks(e, s);
            s->n_fwd = s->n_cached_prompt = 0;
            break; /* first come, first served: later arrivals wait too */
        }
        s->phase = SEQ_RUNNING;
        if (s->t_admit == 0) s->t_admit = s1c_now();
        s->admit_order = ++e->admit_counter;
        running++;
    }
}

/* The latest-admitted running sequence that is not in this step's batch, other than s. */
static eseq *pick_victim(s1c_engine *e, const eseq *s, const bool *in_batch) {
    eseq *v = NULL;
    for (int i = 0; i < e->n_seqs; i++) {
        eseq *c = e->seqs[i];
        if (c == s || c->phase != SEQ_RUNNING || in_batch[i]) continue;
        if (!v || c->admit_order > v->admit_order) v = c;
    }
    return v;
}

/* Adds up to k rows of s to the batch, making room by preemption if needed. Returns the
 * rows added (0 when s itself had to wait). */
static int add_rows(s1c_engine *e, eseq *s, int k, int *rows, int *nb, bool *in_batch, int idx) {
    while (ensure_blocks(e, s, s->n_fwd, s->n_fwd + k) != 0) {
        eseq *v = pick_victim(e, s, in_batch);
        if (v) { preempt(e, v); continue; }
        if (*nb == 0 && n_running(e) == 1) { /* alone and still too big: it can never fit */
            char msg[160];
            snprintf(msg, sizeof msg, "the KV cache (%d blocks of %d positions) cannot hold this sequence", e->p.n_blocks, e->p.block_size);
            finish(e, s, S1C_STOP_CONTEXT_FULL, msg);
        } else {
            preempt(e, s);
        }
        return 0;
    }
    for (int j = 0; j < k; j++) {
        int r = *rows + j;
        e->b_tok[r] = s->tok[s->n_fwd + j];
        e->b_pos[r] = s->n_fwd + j;
        e->b_seq[r] = *nb;
        e->b_want[r] = (uint8_t)(j == k - 1 && s->n_fwd + k == s->n);
    }
    e->b_members[*nb] = s;
    e->b_blocks[*nb] = (s1c_seq_blocks){s->blocks, s->n_blocks};
    in_batch[idx] = true;
    (*nb)++;
    *rows += k;
    return k;
}

static int build_batch(s1c_engine *e, int *n_rows, int *n_members) {
    int rows = 0, nb = 0, T = e->p.max_batch_tokens;
    bool *in_batch = calloc((size_t)e->n_seqs + 1, 1);
    if (!in_batch) return -1;
    /* decodes first (one row each), then prefill chunks with the rows left */
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t order = 0;;) { /* in admission order */
            int idx = -1;
            for (int i = 0; i < e->n_seqs; i++) {
                eseq *s = e->seqs[i];
                if (s->phase == SEQ_RUNNING && !in_batch[i] && s->admit_order > order && (idx < 0 || s->admit_order < e->seqs[idx]->admit_order)) idx = i;
            }
            if (idx < 0 || rows >= T || nb >= e->p.max_seqs) break;
            eseq *s = e->seqs[idx];
            order = s->admit_order;
            int pending = s->n - s->n_fwd;
            if ((pass == 0) != (pending == 1) || pending <= 0) continue;
            int k = pending < T - rows ? pending : T - rows;
            add_rows(e, s, k, &rows, &nb, in_batch, idx);
        }
    }
    free(in_batch);
    *n_rows = rows;
    *n_members = nb;
    return 0;
}

/* Moves submitted sequences into the live set (they wait for admission there). */
static int take_incoming(s1c_engine *e) {
    pthread_mutex_lock(&e->mu);
    int need = e->n_seqs + e->n_incoming;
    int rc = grow((void **)&e->seqs, &e->cap_seqs, need, sizeof(eseq *));
    if (rc == 0 && e->n_incoming > 0) {
        memcpy(e->seqs + e->n_seqs, e->incoming, (size_t)e->n_incoming * sizeof(eseq *));
        e->n_seqs += e->n_incoming;
        e->n_incoming = 0;
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

int s1c_engine_cancel(s1c_engine *e, int seq_id) {
    if (take_incoming(e) != 0) return 0;
    int k = 0;
    for (int i = 0; i < e->n_seqs; i++) {
        eseq *s = e->seqs[i];
        if ((s->id == seq_id || s->parent == seq_id) && s->phase != SEQ_DONE) {
            finish(e, s, S1C_STOP_CANCELLED, NULL);
            k++;
        }
    }
    if (k > 0) retire(e); /* out of memory here: they stay finished and retire at the next step */
    return k;
}

int s1c_engine_step(s1c_engine *e, s1c_err *err) {
    if (take_incoming(e) != 0) return s1c_fail(err, "engine: out of memory");
    admit(e);
    int rows, nb;
    if (build_batch(e, &rows, &nb) != 0) return s1c_fail(err, "engine: out of memory");
    if (rows > 0) {
        s1c_batch b = {.n_tokens = rows, .token = e->b_tok, .pos = e->b_pos, .seq = e->b_seq, .logits = e->b_want, .n_seqs = nb, .seqs = e->b_blocks};
        if (s1c_forward(e->fwd, e->kv, &b, e->logits, err) != 0) return -1;
        for (int i = 0; i < nb; i++) {
            eseq *s = e->b_members[i];
            for (int r = 0; r < rows; r++)
                if (e->b_seq[r] == i) s->n_fwd++;
            register_prompt_blocks(e, s);
        }
        e->st.steps++;
        e->st.rows += rows;
        if (sample_all(e, nb) != 0) return s1c_fail(err, "engine: out of memory");
    }
    else if (n_running(e) == 0) {
        /* nothing could run although every block is free: fail the first waiting sequence
         * rather than spin (admission checks make this unreachable; this keeps it so) */
        for (int i = 0; i < e->n_seqs; i++)
            if (e->seqs[i]->phase == SEQ_WAITING) { finish(e, e->seqs[i], S1C_STOP_CONTEXT_FULL, "the KV cache cannot hold this sequence"); break; }
    }
    /* forks made this step join the running set */
    if (e->n_forks > 0) {
        if (grow((void **)&e->seqs, &e->cap_seqs, e->n_seqs + e->n_forks, sizeof(eseq *)) != 0) return s1c_fail(err, "engine: out of memory");
        memcpy(e->seqs + e->n_seqs, e->forks, (size_t)e->n_forks * sizeof(eseq *));
        e->n_seqs += e->n_forks;
        e->n_forks = 0;
    }
    if (retire(e) != 0) return s1c_fail(err, "engine: out of memory");
    pthread_mutex_lock(&e->mu);
    int live = e->n_seqs + e->n_incoming;
    pthread_mutex_unlock(&e->mu);
    return live;
}

int s1c_engine_run(s1c_engine *e, s1c_err *err) {
    for (;;) {
        int live = s1c_engine_step(e, err);
        if (live <= 0) return live;
    }
}
