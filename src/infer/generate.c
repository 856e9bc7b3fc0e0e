/* Single-sequence generation on the batch-first forward: one prefill batch for the prompt,
 * then one row per step. Text is streamed through a UTF-8-safe decoder and a stop-string
 * filter that holds back only what could still become a stop string. */
#include <stdlib.h>
#include <string.h>

#include "s1c/infer.h"

const char *s1c_stop_reason_name(int r) {
    static const char *names[] = {"eos", "stop_string", "max_tokens", "context_full", "cancelled"};
    return r >= 0 && r < (int)(sizeof names / sizeof names[0]) ? names[r] : "unknown";
}

void s1c_gen_result_free(s1c_gen_result *r) {
    free(r->tokens);
    free(r->text);
    memset(r, 0, sizeof *r);
}

/* The text produced so far and how much of it has been handed to the callback. */
typedef struct text_out {
    char *buf;
    size_t len, cap, emitted;
    const s1c_gen_params *p;
    s1c_text_cb cb;
    void *user;
} text_out;

static int text_append(text_out *o, const char *s, int n) {
    if (o->len + (size_t)n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 4096;
        while (cap < o->len + (size_t)n + 1) cap *= 2;
        char *nb = realloc(o->buf, cap);
        if (!nb) return -1;
        o->buf = nb;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, (size_t)n);
    o->len += (size_t)n;
    o->buf[o->len] = 0;
    return 0;
}

/* Finds the earliest stop string in the unemitted text; returns its offset or -1. Also
 * computes how much text is safe to emit (no suffix of it can start a stop string). */
static long find_stop(const text_out *o, size_t *safe) {
    long found = -1;
    *safe = o->len;
    for (int s = 0; s < o->p->n_stop_strings; s++) {
        const char *stop = o->p->stop_strings[s];
        size_t sl = strlen(stop);
        if (sl == 0) continue;
        /* a match may straddle what was emitted only if it was held back: search from there */
        size_t from = o->emitted;
        const char *hit = memmem(o->buf + from, o->len - from, stop, sl);
        if (hit && (found < 0 || hit - o->buf < found)) found = hit - o->buf;
        for (size_t k = sl - 1; k > 0; k--) /* longest tail that is a prefix of the stop string */
            if (k <= o->len - o->emitted && memcmp(o->buf + o->len - k, stop, k) == 0) {
                if (o->len - k < *safe) *safe = o->len - k;
                break;
            }
    }
    return found;
}

/* Emits newly final text; returns 1 when a stop string was hit, -1 when cancelled. */
static int text_flush(text_out *o, bool final) {
    size_t safe;
    long stop = find_stop(o, &safe);
    size_t upto = stop >= 0 ? (size_t)stop : final ? o->len : safe;
    int rc = 0;
    if (upto > o->emitted && o->cb && o->cb(o->user, o->buf + o->emitted, (int)(upto - o->emitted)) != 0) rc = -1;
    if (upto > o->emitted) o->emitted = upto;
    if (stop >= 0) {
        o->len = (size_t)stop; /* the stop string is not part of the output */
        o->buf[o->len] = 0;
        return 1;
    }
    return rc;
}

static bool is_stop_id(const s1c_gen_params *p, int id) {
    for (int i = 0; i < p->n_stop_ids; i++)
        if (p->stop_ids[i] == id) return true;
    return false;
}

typedef struct gen_state {
    s1c_kv *kv;
    s1c_fwd *fwd;
    s1c_sampler *smp;
    int32_t *blocks;
    int n_blocks;
    float *logits;
    int32_t *hist; /* prompt + generated */
} gen_state;

static void gen_state_free(gen_state *g) {
    s1c_kv_free(g->kv);
    s1c_fwd_free(g->fwd);
    s1c_sampler_free(g->smp);
    free(g->blocks);
    free(g->logits);
    free(g->hist);
}

/* Forwards rows [from, to) of the history at positions from..to-1; logits of the last row. */
static int forward_range(gen_state *g, int from, int to, s1c_err *err) {
    int n = to - from;
    int32_t *pos = malloc((size_t)n * sizeof(int32_t));
    int32_t *seq = calloc((size_t)n, sizeof(int32_t));
    uint8_t *want = calloc((size_t)n, 1);
    if (!pos || !seq || !want) { free(pos); free(seq); free(want); return s1c_fail(err, "out of memory"); }
    for (int i = 0; i < n; i++) pos[i] = from + i;
    want[n - 1] = 1;
    s1c_seq_blocks sb = {g->blocks, g->n_blocks};
    s1c_batch b = {.n_tokens = n, .token = g->hist + from, .pos = pos, .seq = seq, .logits = want, .n_seqs = 1, .seqs = &sb};
    int rc = s1c_forward(g->fwd, g->kv, &b, g->logits, err);
    free(pos); free(seq); free(want);
    return rc;
}

int s1c_generate(const s1c_model *m, const s1c_tokenizer *tok, const int32_t *prompt, int n_prompt,
                 const s1c_gen_params *p, s1c_text_cb cb, void *user, s1c_gen_result *res, s1c_err *err) {
    memset(res, 0, sizeof *res);
    const s1c_config *c = s1c_model_config(m);
    if (n_prompt <= 0) return s1c_fail(err, "the prompt is empty (no tokens)");
    int ctx = p->ctx > 0 ? p->ctx : c->max_seq_len;
    if (n_prompt > ctx) return s1c_fail(err, "the prompt has %d tokens, more than the context of %d", n_prompt, ctx);
    /* the last sampled token is never forwarded, so it may sit at position ctx */
    int room = ctx - n_prompt + 1;
    int max_new = p->max_new_tokens >= 0 && p->max_new_tokens < room ? p->max_new_tokens : room;
    int last_pos = n_prompt + max_new - 1; /* highest position forwarded, +1 */
    const int block = 16;
    gen_state g = {0};
    text_out o = {.p = p, .cb = cb, .user = user};
    g.n_blocks = (last_pos + block - 1) / block;
    if (g.n_blocks < 1) g.n_blocks = 1;
    int rc = -1;
    if (s1c_kv_new(&g.kv, c, block, g.n_blocks, S1C_F32, err) != 0 ||
        s1c_fwd_new(&g.fwd, m, n_prompt < 512 ? n_prompt : 512, ctx, err) != 0 ||
        s1c_sampler_new(&g.smp, &p->sampler, c->vocab_size, err) != 0)
        goto out;
    g.blocks = malloc((size_t)g.n_blocks * sizeof(int32_t));
    g.logits = malloc((size_t)c->vocab_size * sizeof(float));
    g.hist = malloc((size_t)(n_prompt + max_new + 1) * sizeof(int32_t));
    res->tokens = malloc((size_t)(max_new + 1) * sizeof(int32_t));
    if (!g.blocks || !g.logits || !g.hist || !res->tokens) { s1c_fail(err, "out of memory"); goto out; }
    for (int i = 0; i < g.n_blocks; i++) g.blocks[i] = s1c_kv_alloc(g.kv);
    memcpy(g.hist, prompt, (size_t)n_prompt * sizeof(int32_t));

    s1c_detok dt = {0};
    char piece[512], ready[600];
    int n_hist = n_prompt;
    res->stop_reason = max_new < room ? S1C_STOP_MAX_TOKENS : S1C_STOP_CONTEXT_FULL;
    double t0 = s1c_now();
    if (max_new > 0 && forward_range(&g, 0, n_prompt, err) != 0) goto out;
    res->prefill_s = s1c_now() - t0;
    t0 = s1c_now();
    for (int i = 0; i < max_new; i++) {
        if (i > 0 && forward_range(&g, n_hist - 1, n_hist, err) != 0) goto out;
        int next = s1c_sampler_sample(g.smp, g.logits, g.hist, n_hist);
        g.hist[n_hist++] = next;
        res->tokens[res->n_tokens++] = next;
        if (is_stop_id(p, next)) { res->stop_reason = S1C_STOP_EOS; break; }
        if (!tok) continue;
        int n = s1c_tok_decode(tok, g.hist[n_hist - 2], next, piece, (int)sizeof piece);
        int k = s1c_detok_push(&dt, piece, n, ready, (int)sizeof ready);
        if (text_append(&o, ready, k) != 0) { s1c_fail(err, "out of memory"); goto out; }
        int st = text_flush(&o, false);
        if (st == 1) { res->stop_reason = S1C_STOP_STRING; break; }
        if (st < 0) { res->stop_reason = S1C_STOP_CANCELLED; break; }
    }
    if (tok && res->stop_reason != S1C_STOP_STRING) {
        int k = s1c_detok_flush(&dt, ready, (int)sizeof ready);
        if (text_append(&o, ready, k) != 0) { s1c_fail(err, "out of memory"); goto out; }
        text_flush(&o, true);
    }
    res->decode_s = s1c_now() - t0;
    res->text = o.buf ? o.buf : calloc(1, 1);
    res->text_len = o.len;
    o.buf = NULL;
    rc = 0;
out:
    free(o.buf);
    gen_state_free(&g);
    if (rc != 0) s1c_gen_result_free(res);
    return rc;
}
