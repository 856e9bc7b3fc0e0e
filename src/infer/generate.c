/* Generation on the engine: text decoding with stop strings for any number of sequences
 * (s1c_textgen), and s1c_generate, one prompt run as a batch of one. */
#include <stdlib.h>
#include <string.h>

#include "s1c/infer.h"

const char *s1c_stop_reason_name(int r) {
    static const char *names[] = {"eos", "stop_string", "max_tokens", "context_full", "cancelled",
                                  "think_end", "budget", "answer_end", "answer_limit", "rejected"};
    return r >= 0 && r < (int)(sizeof names / sizeof names[0]) ? names[r] : "unknown";
}

void s1c_gen_result_free(s1c_gen_result *r) {
    free(r->tokens);
    free(r->text);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ text of one sequence */

typedef struct text_slot {
    int seq_id;
    char *buf;
    size_t len, cap, emitted;
    s1c_detok dt;
    bool flushed;
} text_slot;

struct s1c_textgen {
    const s1c_tokenizer *tok;
    const s1c_gen_params *p;
    s1c_text_cb cb;
    void *cb_user;
    text_slot *slots;
    int n_slots, cap_slots;
    double first_token_t;
};

static int slot_append(text_slot *o, const char *s, int n) {
    if (o->len + (size_t)n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 1024;
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

/* The earliest stop string in the unemitted text (offset, or -1), and how much text is safe
 * to emit: no suffix of it could still grow into a stop string. */
static long find_stop(const s1c_gen_params *p, const text_slot *o, size_t *safe) {
    long found = -1;
    *safe = o->len;
    for (int s = 0; s < p->n_stop_strings; s++) {
        const char *stop = p->stop_strings[s];
        size_t sl = strlen(stop);
        if (sl == 0) continue;
        /* text before `emitted` cannot hold a match: it would have been held back */
        const char *hit = memmem(o->buf + o->emitted, o->len - o->emitted, stop, sl);
        if (hit && (found < 0 || hit - o->buf < found)) found = hit - o->buf;
        for (size_t k = sl - 1; k > 0; k--) /* longest tail that is a prefix of the stop string */
            if (k <= o->len - o->emitted && memcmp(o->buf + o->len - k, stop, k) == 0) {
                if (o->len - k < *safe) *safe = o->len - k;
                break;
            }
    }
    return found;
}

/* Emits newly final text; returns 1 when a stop string was hit, -1 when the callback cancels. */
static int slot_flush(s1c_textgen *g, text_slot *o, bool final) {
    size_t safe;
    long stop = find_stop(g->p, o, &safe);
    size_t upto = stop >= 0 ? (size_t)stop : final ? o->len : safe;
    int rc = 0;
    if (upto > o->emitted && g->cb && g->cb(g->cb_user, o->buf + o->emitted, (int)(upto - o->emitted)) != 0) rc = -1;
    if (upto > o->emitted) o->emitted = upto;
    if (stop >= 0) {
        o->len = (size_t)stop; /* the stop string is not part of the output */
        o->buf[o->len] = 0;
        return 1;
    }
    return rc;
}

/* ------------------------------------------------------------------ the text hook */

s1c_textgen *s1c_textgen_new(const s1c_tokenizer *tok, const s1c_gen_params *p, s1c_text_cb cb, void *cb_user) {
    s1c_textgen *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->tok = tok;
    g->p = p;
    g->cb = cb;
    g->cb_user = cb_user;
    return g;
}

void s1c_textgen_free(s1c_textgen *g) {
    if (!g) return;
    for (int i = 0; i < g->n_slots; i++) free(g->slots[i].buf);
    free(g->slots);
    free(g);
}

s1c_textgen_state s1c_textgen_state_init(void) { return (s1c_textgen_state){-1, -1}; }

double s1c_textgen_first_token_time(const s1c_textgen *g) { return g->first_token_t; }

/* The slot of this sequence; a fork (state owned by another id) starts from a copy of its
 * parent's text. */
static text_slot *claim_slot(s1c_textgen *g, int seq_id, s1c_textgen_state *st) {
    if (st->owner == seq_id) return &g->slots[st->slot];
    if (g->n_slots == g->cap_slots) {
        int cap = g->cap_slots ? g->cap_slots * 2 : 8;
        text_slot *ns = realloc(g->slots, (size_t)cap * sizeof(text_slot));
        if (!ns) return NULL;
        g->slots = ns;
        g->cap_slots = cap;
    }
    text_slot *o = &g->slots[g->n_slots];
    memset(o, 0, sizeof *o);
    o->seq_id = seq_id;
    if (st->slot >= 0) {
        const text_slot *from = &g->slots[st->slot];
        if (from->len > 0 && slot_append(o, from->buf, (int)from->len) != 0) return NULL;
        o->emitted = from->emitted;
        o->dt = from->dt;
    }
    st->owner = seq_id;
    st->slot = g->n_slots++;
    return o;
}

static bool is_stop_id(const s1c_gen_params *p, int id) {
    for (int i = 0; i < p->n_stop_ids; i++)
        if (p->stop_ids[i] == id) return true;
    return false;
}

/* Appends the text of `token` (which follows `prev`) to the slot; stops at stop strings. */
static void add_token_text(s1c_textgen *g, text_slot *o, int prev, int token, s1c_step_io *io) {
    char piece[512], ready[600];
    int n = s1c_tok_decode(g->tok, prev, token, piece, (int)sizeof piece);
    int k = s1c_detok_push(&o->dt, piece, n, ready, (int)sizeof ready);
    if (slot_append(o, ready, k) != 0) { io->stop = true; io->stop_reason = S1C_STOP_CANCELLED; return; }
    int st = slot_flush(g, o, false);
    if (st == 1) { io->stop = true; io->stop_reason = S1C_STOP_STRING; }
    if (st < 0) { io->stop = true; io->stop_reason = S1C_STOP_CANCELLED; }
}

void s1c_textgen_on_token(s1c_textgen *g, s1c_engine *e, int seq_id, s1c_textgen_state *st, s1c_step_io *io) {
    if (g->first_token_t == 0) g->first_token_t = s1c_now();
    text_slot *o = claim_slot(g, seq_id, st);
    if (!o) { io->stop = true; io->stop_reason = S1C_STOP_CANCELLED; return; }
    if (!g->tok) return;
    int n, n_prompt;
    const int32_t *toks = s1c_engine_tokens(e, seq_id, &n, &n_prompt);
    if (io->truncate_to >= 0 && io->truncate_to < n - n_prompt) {
        /* the controller cuts the sequence: rebuild its text from the tokens that stay */
        n = n_prompt + io->truncate_to;
        o->len = o->emitted = 0;
        memset(&o->dt, 0, sizeof o->dt);
        s1c_step_io quiet = {.truncate_to = -1};
        for (int i = n_prompt; i < n; i++) add_token_text(g, o, i > 0 ? toks[i - 1] : -1, toks[i], &quiet);
    }
    int prev = toks && n > 0 ? toks[n - 1] : -1;
    if (!io->drop && !is_stop_id(g->p, io->token)) add_token_text(g, o, prev, io->token, io);
    if (!io->drop) prev = io->token;
    /* injected tokens are text too; a stop string found in them ends the text there */
    for (int i = 0; i < io->n_inject && io->stop_reason != S1C_STOP_STRING; i++) {
        add_token_text(g, o, prev, io->inject[i], io);
        prev = io->inject[i];
    }
}

void s1c_textgen_hook(s1c_engine *e, int seq_id, void *user, void *state, s1c_step_io *io) {
    s1c_textgen_on_token(user, e, seq_id, state, io);
}

const char *s1c_textgen_text(s1c_textgen *g, int seq_id, size_t *len) {
    for (int i = 0; i < g->n_slots; i++) {
        text_slot *o = &g->slots[i];
        if (o->seq_id != seq_id) continue;
        if (!o->flushed) {
            o->flushed = true;
            char ready[16];
            int k = s1c_detok_flush(&o->dt, ready, (int)sizeof ready);
            if (slot_append(o, ready, k) == 0) slot_flush(g, o, true);
        }
        *len = o->len;
        return o->buf ? o->buf : "";
    }
    *len = 0;
    return NULL;
}

/* ------------------------------------------------------------------ one prompt */

int s1c_generate(const s1c_model *m, const s1c_tokenizer *tok, const int32_t *prompt, int n_prompt,
                 const s1c_gen_params *p, s1c_text_cb cb, void *user, s1c_gen_result *res, s1c_err *err) {
    memset(res, 0, sizeof *res);
    const s1c_config *c = s1c_model_config(m);
    if (n_prompt <= 0) return s1c_fail(err, "the prompt is empty (no tokens)");
    int ctx = p->ctx > 0 && p->ctx < c->max_seq_len ? p->ctx : c->max_seq_len;
    if (n_prompt > ctx) return s1c_fail(err, "the prompt has %d tokens, more than the context of %d", n_prompt, ctx);
    /* the last sampled token is never forwarded, so it may sit at position ctx */
    int room = ctx - n_prompt + 1;
    int max_new = p->max_new_tokens >= 0 && p->max_new_tokens < room ? p->max_new_tokens : room;
    res->stop_reason = max_new < room ? S1C_STOP_MAX_TOKENS : S1C_STOP_CONTEXT_FULL;
    if (max_new == 0) {
        res->tokens = malloc(sizeof(int32_t));
        res->text = calloc(1, 1);
        return res->tokens && res->text ? 0 : s1c_fail(err, "out of memory");
    }
    s1c_engine_params ep = s1c_engine_defaults();
    ep.max_seqs = 1;
    ep.ctx = ctx;
    ep.prefix_cache = false;
    ep.kv_dtype = p->kv_dtype;
    ep.n_blocks = (n_prompt + max_new + ep.block_size - 1) / ep.block_size + 1;
    s1c_engine *e = NULL;
    s1c_textgen *g = s1c_textgen_new(tok, p, cb, user);
    if (!g) return s1c_fail(err, "out of memory");
    if (s1c_engine_new(&e, m, &ep, err) != 0) { s1c_textgen_free(g); return -1; }
    s1c_textgen_state st = s1c_textgen_state_init();
    s1c_seq_params sp = {.prompt = prompt, .n_prompt = n_prompt, .max_new_tokens = max_new, .stop_ids = p->stop_ids,
                         .n_stop_ids = p->n_stop_ids, .sampler = p->sampler, .hook = s1c_textgen_hook, .user = g,
                         .state = &st, .state_size = sizeof st};
    double t0 = s1c_now();
    int rc = -1;
    s1c_seq_result r = {0};
    if (s1c_engine_submit(e, &sp, err) < 0 || s1c_engine_run(e, err) != 0) goto out;
    if (s1c_engine_poll(e, &r) != 1) { s1c_fail(err, "engine: no result"); goto out; }
    if (r.error[0]) { s1c_fail(err, "%s", r.error); goto out; }
    double t1 = s1c_now(), tf = s1c_textgen_first_token_time(g);
    res->prefill_s = (tf > 0 ? tf : t1) - t0;
    res->decode_s = tf > 0 ? t1 - tf : 0;
    res->stop_reason = r.stop_reason;
    res->tokens = r.tokens;
    res->n_tokens = r.n_tokens;
    r.tokens = NULL;
    size_t len = 0;
    const char *text = tok ? s1c_textgen_text(g, r.id, &len) : NULL;
    res->text = malloc(len + 1);
    if (!res->text) { s1c_fail(err, "out of memory"); goto out; }
    if (len) memcpy(res->text, text, len);
    res->text[len] = 0;
    res->text_len = len;
    rc = 0;
out:
    s1c_seq_result_free(&r);
    s1c_engine_free(e);
    s1c_textgen_free(g);
    if (rc != 0) s1c_gen_result_free(res);
    return rc;
}
