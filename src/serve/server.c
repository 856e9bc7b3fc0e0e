/* The server's engine side: jobs made from parsed requests (prompt tokens, budget forcing),
 * the bounded queue, and the one engine thread that submits, cancels, steps and routes text
 * into each job's choices. HTTP threads never touch the engine. */
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve_int.h"

s1c_serve_opts s1c_serve_defaults(void) {
    s1c_serve_opts o = {.host = "127.0.0.1", .port = 8080, .parallel = 8, .queue = 256, .model_name = "s1c", .max_body = 1 << 20,
                        .max_n = 16, .timeout_s = 30, .max_connections = 512, .shutdown_grace_s = 30, .max_tokens = -1,
                        .sampler = s1c_sampler_defaults(), .bf = s1c_bf_defaults(), .effort_budgets = {512, 2048, 8192},
                        .kv_dtype = S1C_KV_AUTO};
    o.sampler.temperature = 1.0f; /* OpenAI's default */
    return o;
}

/* ------------------------------------------------------------------ growing text */

int srv_buf_add(srv_buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) return -1;
        b->s = ns;
        b->cap = cap;
    }
    if (n) memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
    return 0;
}

int srv_buf_printf(srv_buf *b, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    if ((size_t)n < sizeof small) return srv_buf_add(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) return -1;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = srv_buf_add(b, big, (size_t)n);
    free(big);
    return rc;
}

/* A JSON string literal; bytes that are not UTF-8 become U+FFFD so the output stays valid JSON. */
void srv_buf_json_str(srv_buf *b, const char *s, size_t n) {
    srv_buf_add(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { char esc[2] = {'\\', (char)c}; srv_buf_add(b, esc, 2); i++; continue; }
        if (c < 0x20) {
            const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
            if (named) srv_buf_add(b, named, 2);
            else srv_buf_printf(b, "\\u%04x", c);
            i++;
            continue;
        }
        if (c < 0x80) { srv_buf_add(b, s + i, 1); i++; continue; }
        int len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
        bool ok = len > 0 && i + (size_t)len <= n;
        for (int k = 1; ok && k < len; k++) ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
        if (ok && len == 3) { unsigned char d = (unsigned char)s[i + 1]; ok = !(c == 0xE0 && d < 0xA0) && !(c == 0xED && d >= 0xA0); }
        if (ok && len == 4) { unsigned char d = (unsigned char)s[i + 1]; ok = !(c == 0xF0 && d < 0x90) && !(c == 0xF4 && d >= 0x90); }
        if (ok) { srv_buf_add(b, s + i, (size_t)len); i += (size_t)len; }
        else { srv_buf_add(b, "\xEF\xBF\xBD", 3); i++; }
    }
    srv_buf_add(b, "\"", 1);
}

void srv_hist_add(srv_hist *h, double v) {
    int i = 0;
    while (i < h->n && v > h->bounds[i]) i++;
    h->counts[i]++; /* counts[n] is +Inf */
    h->sum += v;
    h->total++;
}

/* ------------------------------------------------------------------ jobs */

static void job_free(srv_job *j) {
    for (int i = 0; i < j->n_choices; i++) {
        free(j->choices[i].text[0].s);
        free(j->choices[i].text[1].s);
        free(j->choices[i].lp);
    }
    free(j->choices);
    for (int i = 0; i < j->req.n_prompts || (j->req.kind == SRV_CHAT && i < 1); i++) free(j->ids ? j->ids[i] : NULL);
    free(j->ids);
    free(j->n_ids);
    free(j->root);
    free(j->forked);
    s1c_bf_free(j->bf);
    srv_req_free(&j->req);
    pthread_cond_destroy(&j->cv);
    free(j);
}

void srv_job_unref_locked(s1c_server *s, srv_job *j) {
    (void)s;
    if (--j->refs == 0) job_free(j);
}

static void job_end_locked(s1c_server *s, srv_job *j, int status, const char *msg);

void srv_job_cancel_locked(s1c_server *s, srv_job *j) {
    if (j->finished || j->cancel) return;
    j->cancel = true;
    s->met.disconnects++;
    if (j->queued) {
        /* never started: out of the queue now, so it holds no place there */
        srv_job **p = &s->q_head, *prev = NULL;
        while (*p && *p != j) { prev = *p; p = &(*p)->next; }
        if (*p) {
            *p = j->next;
            if (s->q_tail == j) s->q_tail = prev;
            s->n_queued--;
        }
        j->queued = false;
        s->met.cancelled++; /* cancelled before it started: still a cancelled request */
        job_end_locked(s, j, 499, "cancelled: the client disconnected");
        return;
    }
    pthread_cond_signal(&s->work_cv);
}

/* The conversation in the model's template, opened for the assistant (and for thinking). */
static char *render_chat(s1c_server *s, srv_job *j, srv_error *e) {
    const srv_req *r = &j->req;
    if (s->tmpl < 0) { srv_fail(e, 400, "messages", "the model has no chat template s1c knows: use /v1/completions"); return NULL; }
    bool has_system = r->n_msgs > 0 && !strcmp(r->msgs[0].role, "system");
    s1c_chat_msg *m = malloc((size_t)(r->n_msgs + 1) * sizeof *m);
    if (!m) { srv_fail(e, 500, NULL, "out of memory"); return NULL; }
    int k = 0;
    if (!has_system && s->o.system) m[k++] = (s1c_chat_msg){"system", s->o.system};
    for (int i = 0; i < r->n_msgs; i++) m[k++] = r->msgs[i];
    s1c_err err;
    char *text = s1c_chat_render(s->tmpl, m, k, true, &err);
    free(m);
    if (!text) { srv_fail(e, 400, "messages", "%s", err.msg); return NULL; }
    if (!r->bf_on) return text;
    /* s1's layout: the generation prompt, then the thinking start (unless the template opened it) */
    const char *ts = r->bf.think_start;
    size_t tl = strlen(text), sl = strlen(ts);
    bool opened = (tl >= sl && !strcmp(text + tl - sl, ts)) || (tl >= sl + 1 && !strncmp(text + tl - sl - 1, ts, sl) && text[tl - 1] == '\n');
    if (opened || !sl) return text;
    char *t2 = realloc(text, tl + sl + 1);
    if (!t2) { free(text); srv_fail(e, 500, NULL, "out of memory"); return NULL; }
    memcpy(t2 + tl, ts, sl + 1);
    return t2;
}

static int encode(s1c_server *s, const char *text, const char *think_start, int32_t **ids, int *n, srv_error *e) {
    size_t len = strlen(text), sl = think_start ? strlen(think_start) : 0;
    char *owned = NULL;
    if (sl && (len < sl || strcmp(text + len - sl, think_start))) {
        /* a completion with budget forcing: the prompt must open the thinking */
        owned = malloc(len + sl + 1);
        if (!owned) return srv_fail(e, 500, NULL, "out of memory");
        memcpy(owned, text, len);
        memcpy(owned + len, think_start, sl + 1);
        text = owned;
        len += sl;
    }
    s1c_err err;
    int rc = s1c_tok_encode_ex(s->tok, text, len, S1C_ENC_SPECIAL | (s->add_bos ? S1C_ENC_BOS : 0), ids, n, &err);
    free(owned);
    if (rc != 0) return srv_fail(e, 400, NULL, "cannot tokenize the prompt: %s", err.msg);
    return 0;
}

static int check_prompt(s1c_server *s, srv_job *j, int i, srv_error *e) {
    int n = j->n_ids[i], V = s1c_model_config(s->m)->vocab_size;
    const char *what = j->req.kind == SRV_CHAT ? "messages" : "prompt";
    if (n == 0) return srv_fail(e, 400, what, "the %s encode to no tokens", what);
    for (int k = 0; k < n; k++)
        if (j->ids[i][k] >= V) return srv_fail(e, 400, what, "token id %d is outside the model's vocabulary (%d)", j->ids[i][k], V);
    if (n >= s->ctx)
        return srv_fail(e, 400, what, "This model's maximum context length is %d tokens. However, your %s resulted in %d tokens.", s->ctx, what, n);
    if (j->req.max_tokens > 0 && n + j->req.max_tokens > s->ctx)
        return srv_fail(e, 400, "max_tokens", "This model's maximum context length is %d tokens. However, you requested %d tokens (%d in the %s, %d in the completion).",
                        s->ctx, n + j->req.max_tokens, n, what, j->req.max_tokens);
    return 0;
}

/* Stop tokens as s1c generate takes them: llama2.c models stop at BOS, others at their ends. */
static void stop_ids(const s1c_server *s, srv_job *j) {
    const s1c_config *c = s1c_model_config(s->m);
    j->n_stop_ids = 0;
    if (s1c_model_format_of(s->m) == S1C_FMT_LLAMA2C) { j->stop_ids[j->n_stop_ids++] = 1; return; }
    if (c->eos_id >= 0) j->stop_ids[j->n_stop_ids++] = c->eos_id;
    if (s1c_tok_eos(s->tok) >= 0 && s1c_tok_eos(s->tok) != c->eos_id) j->stop_ids[j->n_stop_ids++] = s1c_tok_eos(s->tok);
}

static int prepare(s1c_server *s, srv_job *j, srv_error *e) {
    srv_req *r = &j->req;
    int np = r->kind == SRV_CHAT ? 1 : r->n_prompts;
    bool think_tags = s->tmpl == S1C_CHAT_QWQ || s->tmpl == S1C_CHAT_R1_DISTILL;
    if (think_tags && r->kind == SRV_CHAT) r->bf_on = true; /* these models always think: split it off */
    if (think_tags && !r->think_start_set) r->bf.think_start = "<think>";
    if (think_tags && !r->think_end_set) r->bf.think_end = "</think>";
    j->ids = calloc((size_t)np, sizeof *j->ids);
    j->n_ids = calloc((size_t)np, sizeof *j->n_ids);
    j->root = calloc((size_t)np, sizeof *j->root);
    j->forked = calloc((size_t)np, sizeof *j->forked);
    j->n_choices = np * r->n;
    j->choices = calloc((size_t)j->n_choices, sizeof *j->choices);
    if (!j->ids || !j->n_ids || !j->root || !j->forked || !j->choices) return srv_fail(e, 500, NULL, "out of memory");
    if (r->kind == SRV_CHAT) {
        char *text = render_chat(s, j, e);
        if (!text) return -1;
        int rc = encode(s, text, NULL, &j->ids[0], &j->n_ids[0], e);
        free(text);
        if (rc != 0) return -1;
    }
    for (int i = 0; r->kind == SRV_COMPLETION && i < np; i++) {
        if (r->prompts[i].text) {
            if (encode(s, r->prompts[i].text, r->bf_on ? r->bf.think_start : NULL, &j->ids[i], &j->n_ids[i], e) != 0) return -1;
        } else {
            j->ids[i] = r->prompts[i].ids; /* taken over */
            j->n_ids[i] = r->prompts[i].n_ids;
            r->prompts[i].ids = NULL;
        }
    }
    for (int i = 0; i < np; i++)
        if (check_prompt(s, j, i, e) != 0) return -1;
    stop_ids(s, j);
    if (r->bf_on) {
        s1c_err err;
        if (s1c_bf_new(&j->bf, &r->bf, s->tok, s->ctx, NULL, &err) != 0) return srv_fail(e, 400, NULL, "%s", err.msg);
    }
    if (!r->seed_set && r->sampler.temperature > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r->sampler.seed = (uint64_t)ts.tv_nsec * 6364136223846793005ull + (uint64_t)ts.tv_sec + (uint64_t)j->id;
    }
    return 0;
}

int srv_job_new(s1c_server *s, srv_req *req, srv_job **out, srv_error *e) {
    *out = NULL;
    srv_job *j = calloc(1, sizeof *j);
    if (!j) { srv_req_free(req); return srv_fail(e, 500, NULL, "out of memory"); }
    j->req = *req;
    memset(req, 0, sizeof *req);
    j->refs = 1;
    pthread_cond_init(&j->cv, NULL);
    j->t_start = s1c_now();
    j->created = (long)time(NULL);
    pthread_mutex_lock(&s->mu);
    j->id = ++s->next_id;
    pthread_mutex_unlock(&s->mu);
    j->srv = s;
    if (prepare(s, j, e) != 0) { job_free(j); return -1; }
    *out = j;
    return 0;
}

int srv_job_submit(s1c_server *s, srv_job *j, srv_error *e) {
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->stopping) rc = srv_fail(e, 503, NULL, "the server is shutting down");
    else if (s->n_queued >= s->o.queue && (s->q_head || (s->active_seqs > 0 && s->active_seqs + j->n_choices > s->o.parallel)))
        rc = srv_fail(e, 429, NULL, "the server is busy: %d requests are running and %d waiting; retry later", s->n_active, s->n_queued);
    else {
        j->refs++;
        j->queued = true;
        if (s->q_tail) s->q_tail->next = j;
        else s->q_head = j;
        s->q_tail = j;
        s->n_queued++;
        pthread_cond_signal(&s->work_cv);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ------------------------------------------------------------------ the hook: text per choice */

/* Per-sequence hook state (copied into sampled forks). */
typedef struct srv_seq {
    s1c_bf_state bf;
    int owner;          /* the sequence this state belongs to (-1 = not yet claimed) */
    int prompt;         /* which prompt of the job */
    int choice;
    int prev;           /* the last committed token */
    s1c_detok dt[2];
    bool stopped;       /* a stop string ended it */
} srv_seq;

static bool is_stop_id(const srv_job *j, int t) {
    for (int i = 0; i < j->n_stop_ids; i++)
        if (j->stop_ids[i] == t) return true;
    return false;
}

/* Which channel the generated token at index i goes to, or -1 (delimiters, end tokens). */
static int channel_of(const srv_job *j, const srv_seq *st, int i, int token) {
    if (is_stop_id(j, token)) return -1;
    if (!j->bf || j->req.kind == SRV_COMPLETION) return CH_CONTENT;
    if (st->bf.think_end_at < 0 || i < st->bf.think_end_at) return CH_REASONING;
    if (st->bf.answer_at >= 0 && i >= st->bf.answer_at) return CH_CONTENT;
    return -1;
}

/* The earliest stop string in the content from `from`, or -1; *safe: bytes no stop can still claim. */
static long find_stop(const srv_req *r, const srv_buf *b, size_t from, size_t *safe) {
    long found = -1;
    *safe = b->len;
    for (int k = 0; k < r->n_stops; k++) {
        size_t sl = strlen(r->stops[k]);
        const char *hit = b->len > from ? memmem(b->s + from, b->len - from, r->stops[k], sl) : NULL;
        if (hit && (found < 0 || hit - b->s < found)) found = hit - b->s;
        for (size_t t = sl - 1; t > 0; t--)
            if (t <= b->len - from && memcmp(b->s + b->len - t, r->stops[k], t) == 0) {
                if (b->len - t < *safe) *safe = b->len - t;
                break;
            }
    }
    return found;
}

/* Appends text to a channel; content is checked for stop strings. Returns 1 at a stop. */
static int add_text(srv_job *j, srv_choice *c, int ch, const char *t, int n, bool final) {
    size_t before = c->ready[ch];
    if (srv_buf_add(&c->text[ch], t, (size_t)n) != 0) return -1;
    if (ch == CH_REASONING || j->req.n_stops == 0) { c->ready[ch] = c->text[ch].len; return 0; }
    size_t safe;
    long stop = find_stop(&j->req, &c->text[ch], before, &safe);
    if (stop >= 0) {
        c->text[ch].len = (size_t)stop;
        c->text[ch].s[stop] = 0;
        c->ready[ch] = (size_t)stop;
        return 1;
    }
    c->ready[ch] = final ? c->text[ch].len : safe;
    return 0;
}

static float top_logprobs(const float *logits, int V, int token, int k, srv_lp *lp) {
    float mx = -INFINITY;
    for (int v = 0; v < V; v++) mx = logits[v] > mx ? logits[v] : mx;
    double sum = 0;
    for (int v = 0; v < V; v++) sum += exp((double)logits[v] - mx);
    float lse = mx + (float)log(sum);
    lp->n_top = 0;
    for (int v = 0; v < V && k > 0; v++) {
        /* insertion into the sorted best-k (ties: the lower id first) */
        int at = lp->n_top;
        while (at > 0 && logits[lp->top[at - 1]] < logits[v]) at--;
        if (at >= k) continue;
        int end = lp->n_top < k ? lp->n_top : k - 1;
        for (int q = end; q > at; q--) lp->top[q] = lp->top[q - 1];
        lp->top[at] = v;
        if (lp->n_top < k) lp->n_top++;
    }
    for (int q = 0; q < lp->n_top; q++) lp->top_lp[q] = logits[lp->top[q]] - lse;
    return logits[token] - lse;
}

static void record_logprob(s1c_server *s, srv_choice *c, const s1c_step_io *io, int prev, size_t off, int k) {
    if (c->n_lp == c->cap_lp) {
        int cap = c->cap_lp ? c->cap_lp * 2 : 64;
        srv_lp *n = realloc(c->lp, (size_t)cap * sizeof *n);
        if (!n) return;
        c->lp = n;
        c->cap_lp = cap;
    }
    srv_lp *lp = &c->lp[c->n_lp++];
    lp->token = io->token;
    lp->prev = prev;
    lp->text_off = off;
    lp->logprob = top_logprobs(io->logits, s1c_model_config(s->m)->vocab_size, io->token, k, lp);
}

/* Claims the state for this sequence: the prompt's first sequence is choice 0, the forks
 * n_samples made from it the next ones, in the order the engine draws their first tokens. */
static srv_choice *claim(srv_job *j, int id, srv_seq *st) {
    if (st->owner != id) {
        int k = id == j->root[st->prompt] ? 0 : ++j->forked[st->prompt];
        if (k >= j->req.n) k = j->req.n - 1;
        st->choice = st->prompt * j->req.n + k;
        st->owner = id;
    }
    return &j->choices[st->choice];
}

static void commit_token(s1c_server *s, srv_job *j, srv_choice *c, srv_seq *st, int index, int token, const s1c_step_io *io, s1c_step_io *out) {
    int ch = channel_of(j, st, index, token);
    if (ch >= 0 && !st->stopped) {
        char piece[512], ready[600];
        int n = s1c_tok_decode(s->tok, st->prev, token, piece, (int)sizeof piece);
        int k = s1c_detok_push(&st->dt[ch], piece, n, ready, (int)sizeof ready);
        if (io && io->logits && (ch == CH_CONTENT)) record_logprob(s, c, io, st->prev, c->text[ch].len, j->req.top_logprobs);
        int rc = add_text(j, c, ch, ready, k, false);
        if (rc != 0) {
            st->stopped = true;
            out->stop = true;
            out->stop_reason = rc > 0 ? S1C_STOP_STRING : S1C_STOP_CANCELLED;
        }
    }
    st->prev = token;
}

static void serve_hook(s1c_engine *e, int id, void *user, void *state, s1c_step_io *io) {
    srv_job *j = user;
    srv_seq *st = state;
    if (j->bf) s1c_bf_hook(e, id, j->bf, &st->bf, io);
    s1c_server *srv = j->srv;
    pthread_mutex_lock(&srv->mu);
    srv_choice *c = claim(j, id, st);
    if (j->t_first == 0) j->t_first = s1c_now();
    int index = io->n_generated;
    if (!io->drop) commit_token(srv, j, c, st, index++, io->token, io, io);
    for (int i = 0; i < io->n_inject; i++) commit_token(srv, j, c, st, index++, io->inject[i], NULL, io);
    if (st->stopped && j->bf) st->bf.stop_reason = S1C_STOP_STRING;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&srv->mu);
}

/* ------------------------------------------------------------------ the engine thread */

static void job_end_locked(s1c_server *s, srv_job *j, int status, const char *msg) {
    if (j->finished) return;
    j->finished = true;
    if (status && !j->status) {
        j->status = status;
        snprintf(j->error, sizeof j->error, "%s", msg ? msg : "");
    }
    if (j->running) {
        for (int i = 0; i < s->n_active; i++)
            if (s->active[i] == j) { s->active[i] = s->active[--s->n_active]; break; }
        s->active_seqs -= j->n_choices;
        j->running = false;
    }
    srv_metrics *m = &s->met;
    for (int i = 0; i < j->n_choices && !j->status; i++) {
        const srv_choice *c = &j->choices[i];
        m->completion_tokens += c->completion_tokens;
        m->reasoning_tokens += c->bf.thinking_tokens;
        m->content_tokens += j->bf ? c->bf.answer_tokens : c->completion_tokens;
    }
    if (!j->status) {
        srv_hist_add(&m->latency, s1c_now() - j->t_start);
        if (j->t_first > 0) srv_hist_add(&m->ttft, j->t_first - j->t_start);
    }
    pthread_cond_broadcast(&j->cv);
    j->next = NULL;
    srv_job_unref_locked(s, j);
}

/* Starts a queued job: one engine submission per prompt, n samples forked after its prefill. */
static void run_job(s1c_server *s, srv_job *j) {
    srv_req *r = &j->req;
    j->running = true;
    if (s->n_active == s->cap_active) {
        int cap = s->cap_active ? s->cap_active * 2 : 16;
        srv_job **na = realloc(s->active, (size_t)cap * sizeof *na);
        if (!na) { j->running = false; job_end_locked(s, j, 500, "out of memory"); return; }
        s->active = na;
        s->cap_active = cap;
    }
    s->active[s->n_active++] = j;
    s->active_seqs += j->n_choices;
    int np = r->kind == SRV_CHAT ? 1 : r->n_prompts;
    for (int i = 0; i < np; i++) {
        srv_seq init = {.owner = -1, .prompt = i, .prev = j->ids[i][j->n_ids[i] - 1]};
        if (j->bf) init.bf = s1c_bf_state_init(j->bf, j->n_ids[i]);
        s1c_seq_params sp = {.prompt = j->ids[i], .n_prompt = j->n_ids[i], .max_new_tokens = r->max_tokens,
                             .stop_ids = j->stop_ids, .n_stop_ids = j->bf ? 0 : j->n_stop_ids, .sampler = r->sampler,
                             .hook = serve_hook, .user = j, .state = &init, .state_size = sizeof init, .n_samples = r->n,
                             .want_logits = r->logprobs};
        s1c_err err;
        j->root[i] = s1c_engine_submit(s->e, &sp, &err);
        if (j->root[i] < 0) {
            /* nothing of this job has run yet (the engine steps on this thread): undo the rest */
            for (int k = 0; k < i; k++) s1c_engine_cancel(s->e, j->root[k]);
            job_end_locked(s, j, 400, err.msg);
            return;
        }
        s->met.prompt_tokens += j->n_ids[i];
    }
}

/* A finished sequence: flush its held-back text and close its choice. */
static void route_result(s1c_server *s, s1c_seq_result *r) {
    srv_job *j = r->user;
    srv_seq *st = r->state;
    if (!j || !st) return;
    srv_choice *c = claim(j, r->id, st);
    for (int ch = 0; ch < 2; ch++) {
        char ready[16];
        int k = s1c_detok_flush(&st->dt[ch], ready, (int)sizeof ready);
        if (!st->stopped && add_text(j, c, ch, ready, k, true) > 0) st->stopped = true;
        c->ready[ch] = c->text[ch].len;
    }
    c->bf = st->bf;
    c->completion_tokens = r->n_tokens;
    c->stop_reason = st->stopped ? S1C_STOP_STRING : j->bf ? s1c_bf_stop_reason(&st->bf, r->stop_reason) : r->stop_reason;
    if (!c->done) { c->done = true; j->n_done++; }
    if (r->error[0] && !j->status) { j->status = 500; snprintf(j->error, sizeof j->error, "%s", r->error); }
    if (j->n_done == j->n_choices) job_end_locked(s, j, j->status, j->error);
    else pthread_cond_broadcast(&j->cv);
}

static void cancel_and_admit(s1c_server *s) {
    double now = s1c_now();
    for (int i = 0; i < s->n_active; i++) {
        srv_job *j = s->active[i];
        bool expired = s->stopping && now > s->stop_deadline;
        if ((j->cancel || expired) && !j->cancel_sent) {
            j->cancel_sent = true;
            int np = j->req.kind == SRV_CHAT ? 1 : j->req.n_prompts;
            for (int k = 0; k < np; k++) s1c_engine_cancel(s->e, j->root[k]);
            s->met.cancelled++;
            if (expired && !j->status) { j->status = 503; snprintf(j->error, sizeof j->error, "the server shut down before the request finished"); }
        }
    }
    /* first come, first served; a job larger than the whole budget runs alone */
    while (s->q_head && (s->active_seqs + s->q_head->n_choices <= s->o.parallel || s->active_seqs == 0)) {
        srv_job *j = s->q_head;
        s->q_head = j->next;
        if (!s->q_head) s->q_tail = NULL;
        s->n_queued--;
        j->next = NULL;
        j->queued = false;
        if (j->cancel || s->stopping) {
            s->met.cancelled++;
            job_end_locked(s, j, s->stopping ? 503 : 499, s->stopping ? "the server is shutting down" : "cancelled");
            continue;
        }
        run_job(s, j);
    }
}

static void *engine_main(void *arg) {
    s1c_server *s = arg;
    bool idle = false;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        cancel_and_admit(s);
        s1c_seq_result r;
        while (s1c_engine_poll(s->e, &r)) { route_result(s, &r); s1c_seq_result_free(&r); }
        if (s->n_active == 0) {
            if (s->stopping && !s->q_head) break;
            if (!idle) malloc_trim(0); /* idle: hand the requests' freed memory back to the system */
            idle = true;
            pthread_cond_wait(&s->work_cv, &s->mu);
            continue;
        }
        idle = false;
        pthread_mutex_unlock(&s->mu);
        s1c_err err;
        int live = s1c_engine_step(s->e, &err);
        pthread_mutex_lock(&s->mu);
        while (s1c_engine_poll(s->e, &r)) { route_result(s, &r); s1c_seq_result_free(&r); }
        if (live < 0) {
            /* an internal engine error: every running request fails, the server goes on */
            fprintf(stderr, "s1c serve: engine: %s\n", err.msg);
            while (s->n_active > 0) {
                srv_job *j = s->active[0];
                int np = j->req.kind == SRV_CHAT ? 1 : j->req.n_prompts;
                for (int k = 0; k < np; k++) s1c_engine_cancel(s->e, j->root[k]);
                job_end_locked(s, j, 500, err.msg);
            }
            while (s1c_engine_poll(s->e, &r)) s1c_seq_result_free(&r);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ------------------------------------------------------------------ start and stop */

static bool wants_bos(const s1c_model *m, const s1c_tokenizer *tok) {
    if (s1c_tok_bos(tok) < 0) return false;
    if (s1c_model_format_of(m) == S1C_FMT_LLAMA2C) return true;
    if (s1c_model_format_of(m) == S1C_FMT_GGUF) {
        bool add = s1c_tok_kind_of(tok) == S1C_TOK_SPM; /* llama.cpp's default per vocabulary type */
        gguf_get_bool(s1c_model_gguf(m), "tokenizer.ggml.add_bos_token", &add, NULL);
        return add;
    }
    return false;
}

int s1c_serve_start(s1c_server **out, const s1c_model *m, const s1c_tokenizer *tok, const s1c_serve_opts *o, s1c_err *err) {
    *out = NULL;
    if (!tok || !s1c_tok_can_encode(tok)) return s1c_fail(err, "serve: the model needs a tokenizer that can encode text");
    if (o->parallel < 1 || o->queue < 0 || o->max_n < 1) return s1c_fail(err, "serve: --parallel must be >= 1 and --queue >= 0");
    s1c_server *s = calloc(1, sizeof *s);
    if (!s) return s1c_fail(err, "out of memory");
    s->o = *o;
    s->m = m;
    s->tok = tok;
    s->tmpl = s1c_tok_chat_template(tok);
    s->add_bos = wants_bos(m, tok);
    const s1c_config *c = s1c_model_config(m);
    s->ctx = o->ctx > 0 && o->ctx < c->max_seq_len ? o->ctx : c->max_seq_len;
    /* static: a compound literal here would die with this function's frame */
    static const double latency_bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
    static const double ttft_bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    s->met.latency.bounds = latency_bounds;
    s->met.latency.n = 12;
    s->met.ttft.bounds = ttft_bounds;
    s->met.ttft.n = 12;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    s1c_engine_params ep = s1c_engine_defaults();
    ep.max_seqs = o->parallel;
    ep.ctx = s->ctx;
    ep.kv_bytes = (uint64_t)o->kv_mem_mib << 20;
    ep.kv_dtype = o->kv_dtype;
    if (s1c_engine_new(&s->e, m, &ep, err) != 0) { s1c_serve_free(s); return -1; }
    if (pthread_create(&s->engine_thread, NULL, engine_main, s) != 0) { s1c_serve_free(s); return s1c_fail(err, "serve: cannot start the engine thread"); }
    s->engine_started = true;
    if (srv_http_start(s, err) != 0) { s1c_serve_stop(s); s1c_serve_free(s); return -1; }
    *out = s;
    return 0;
}

int s1c_serve_port(const s1c_server *s) { return s->port; }

void s1c_serve_stop(s1c_server *s) {
    if (!s || !s->engine_started) return;
    srv_http_quiesce(s); /* no new connections; open ones still get their answers */
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    s->stop_deadline = s1c_now() + s->o.shutdown_grace_s;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->engine_thread, NULL);
    s->engine_started = false;
    /* requests still being read or answered (a late one gets its 503) finish, within the grace */
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int open = s->n_open;
        pthread_mutex_unlock(&s->mu);
        if (open == 0 || s1c_now() > s->stop_deadline + 1) break;
        nanosleep(&(struct timespec){0, 20 * 1000000L}, NULL);
    }
    srv_http_stop(s);
}

void s1c_serve_free(s1c_server *s) {
    if (!s) return;
    s1c_serve_stop(s);
    srv_http_stop(s);
    s1c_engine_free(s->e);
    free(s->active);
    pthread_cond_destroy(&s->work_cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
