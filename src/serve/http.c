/* The server's HTTP side (libmicrohttpd, one thread per connection): routing, the API key,
 * body limits, OpenAI-shaped responses and errors, server-sent events, /metrics. A handler
 * thread waits on its job's condition variable and checks every 200 ms whether its client
 * is still there; one that left cancels its job. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "serve_int.h"

/* Appends a string (literal or not). */
#define ADD(b, str) srv_buf_add((b), (str), strlen(str))

enum { EP_NONE = 0, EP_CHAT, EP_COMPLETION, EP_MODELS, EP_HEALTH, EP_METRICS };

typedef struct conn_ctx {
    s1c_server *s;
    struct MHD_Connection *conn;
    int endpoint;
    srv_buf body;
    bool too_big, answered;
    size_t received;       /* body bytes so far (kept or dropped) */
    int status;
    double t0;
    srv_job *job;          /* streaming: the job the reader follows */
    srv_buf out;           /* SSE bytes produced, not yet handed to MHD */
    size_t out_off;
    bool usage_sent, done_sent;
    char method[8], path[64];
} conn_ctx;

const char *srv_finish_reason(int r) {
    switch (r) {
    case S1C_STOP_MAX_TOKENS: case S1C_STOP_CONTEXT_FULL: case S1C_STOP_ANSWER_LIMIT: case S1C_STOP_BUDGET: return "length";
    default: return "stop";
    }
}

/* ------------------------------------------------------------------ plain responses */

static enum MHD_Result respond(conn_ctx *c, int status, const char *type, const char *body, size_t len, const char *h1, const char *v1) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    if (h1) MHD_add_response_header(r, h1, v1);
    c->status = status;
    c->answered = true;
    enum MHD_Result rc = MHD_queue_response(c->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static void error_json(srv_buf *b, const srv_error *e) {
    ADD(b, "{\"error\":{\"message\":");
    srv_buf_json_str(b, e->message, strlen(e->message));
    srv_buf_printf(b, ",\"type\":\"%s\",\"param\":", e->type);
    if (e->param[0]) srv_buf_json_str(b, e->param, strlen(e->param));
    else ADD(b, "null");
    ADD(b, ",\"code\":null}}");
}

static void count_status(conn_ctx *c, int status) {
    int k = status < 300 ? 0 : status == 400 ? 1 : status == 401 ? 2 : status == 413 ? 3 : status == 429 ? 4 : 5;
    pthread_mutex_lock(&c->s->mu);
    if (c->endpoint == EP_CHAT || c->endpoint == EP_COMPLETION) c->s->met.requests[c->endpoint == EP_CHAT ? 0 : 1][k]++;
    else if (status >= 400) c->s->met.other_errors++;
    pthread_mutex_unlock(&c->s->mu);
}

static enum MHD_Result respond_error(conn_ctx *c, const srv_error *e) {
    srv_buf b = {0};
    error_json(&b, e);
    const char *h = NULL, *v = NULL;
    if (e->status == 429 || e->status == 503) { h = "Retry-After"; v = "1"; }
    if (e->status == 401) { h = "WWW-Authenticate"; v = "Bearer"; }
    count_status(c, e->status);
    enum MHD_Result rc = respond(c, e->status, "application/json", b.s ? b.s : "{}", b.len, h, v);
    free(b.s);
    return rc;
}

static enum MHD_Result fail(conn_ctx *c, int status, const char *param, const char *msg) {
    srv_error e;
    srv_fail(&e, status, param, "%s", msg);
    return respond_error(c, &e);
}

/* ------------------------------------------------------------------ rendering results */

static void json_piece(srv_buf *b, const s1c_tokenizer *tok, int prev, int token, bool bytes) {
    char piece[512];
    int n = s1c_tok_decode(tok, prev, token, piece, (int)sizeof piece);
    srv_buf_json_str(b, piece, (size_t)n);
    if (!bytes) return;
    ADD(b, ",\"bytes\":[");
    for (int i = 0; i < n; i++) srv_buf_printf(b, i ? ",%d" : "%d", (unsigned char)piece[i]);
    ADD(b, "]");
}

/* Chat logprobs entries [from, to) of a choice. */
static void chat_logprobs(srv_buf *b, const s1c_server *s, const srv_choice *ch, int from, int to) {
    ADD(b, "{\"content\":[");
    for (int i = from; i < to; i++) {
        const srv_lp *lp = &ch->lp[i];
        ADD(b, i > from ? ",{\"token\":" : "{\"token\":");
        json_piece(b, s->tok, lp->prev, lp->token, true);
        srv_buf_printf(b, ",\"logprob\":%.6g,\"top_logprobs\":[", lp->logprob);
        for (int k = 0; k < lp->n_top; k++) {
            ADD(b, k ? ",{\"token\":" : "{\"token\":");
            json_piece(b, s->tok, lp->prev, lp->top[k], true);
            srv_buf_printf(b, ",\"logprob\":%.6g}", lp->top_lp[k]);
        }
        ADD(b, "]}");
    }
    ADD(b, "]}");
}

/* Completions logprobs (the legacy shape): tokens, token_logprobs, top_logprobs, text_offset. */
static void completion_logprobs(srv_buf *b, const s1c_server *s, const srv_choice *ch, int from, int to, size_t base) {
    ADD(b, "{\"tokens\":[");
    for (int i = from; i < to; i++) { if (i > from) ADD(b, ","); json_piece(b, s->tok, ch->lp[i].prev, ch->lp[i].token, false); }
    ADD(b, "],\"token_logprobs\":[");
    for (int i = from; i < to; i++) srv_buf_printf(b, i > from ? ",%.6g" : "%.6g", ch->lp[i].logprob);
    ADD(b, "],\"top_logprobs\":[");
    for (int i = from; i < to; i++) {
        ADD(b, i > from ? ",{" : "{");
        for (int k = 0; k < ch->lp[i].n_top; k++) {
            if (k) ADD(b, ",");
            json_piece(b, s->tok, ch->lp[i].prev, ch->lp[i].top[k], false);
            srv_buf_printf(b, ":%.6g", ch->lp[i].top_lp[k]);
        }
        ADD(b, "}");
    }
    ADD(b, "],\"text_offset\":[");
    for (int i = from; i < to; i++) srv_buf_printf(b, i > from ? ",%zu" : "%zu", base + ch->lp[i].text_off);
    ADD(b, "]}");
}

static void usage_json(srv_buf *b, const srv_job *j) {
    long prompt = 0, completion = 0, reasoning = 0;
    int np = j->req.kind == SRV_CHAT ? 1 : j->req.n_prompts;
    for (int i = 0; i < np; i++) prompt += j->n_ids[i];
    for (int i = 0; i < j->n_choices; i++) {
        completion += j->choices[i].completion_tokens;
        reasoning += j->bf ? j->choices[i].bf.thinking_tokens : 0;
    }
    srv_buf_printf(b, "{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,\"total_tokens\":%ld,\"completion_tokens_details\":{\"reasoning_tokens\":%ld}}",
                   prompt, completion, prompt + completion, reasoning);
}

/* s1c's own accounting of a choice (SPEC.md §8 names). */
static void budget_json(srv_buf *b, const srv_job *j, const srv_choice *c) {
    if (!j->bf) return;
    srv_buf_printf(b, ",\"budget_forcing\":{\"thinking_tokens\":%d,\"answer_tokens\":%d,\"waits\":%d,\"max_thinking_tokens\":%d,\"stop_reason\":\"%s\",\"think_end_reason\":",
                   c->bf.thinking_tokens, c->bf.answer_tokens, c->bf.waits, c->bf.max_thinking, s1c_stop_reason_name(c->stop_reason));
    if (c->bf.think_end_reason >= 0) srv_buf_printf(b, "\"%s\"}", s1c_stop_reason_name(c->bf.think_end_reason));
    else ADD(b, "null}");
}

static void head_json(srv_buf *b, const s1c_server *s, const srv_job *j, const char *object) {
    srv_buf_printf(b, "{\"id\":\"%s-%ld\",\"object\":\"%s\",\"created\":%ld,\"model\":", j->req.kind == SRV_CHAT ? "chatcmpl" : "cmpl", j->id, object, j->created);
    srv_buf_json_str(b, s->o.model_name, strlen(s->o.model_name));
    ADD(b, ",\"system_fingerprint\":\"s1c\",\"choices\":[");
}

/* The prompt's text for echo (completions). */
static char *prompt_text(const s1c_server *s, const srv_job *j, int p, size_t *len) {
    return s1c_tok_decode_range(s->tok, j->ids[p], 0, j->n_ids[p], -1, len);
}

static void full_response(srv_buf *b, const s1c_server *s, const srv_job *j) {
    bool chat = j->req.kind == SRV_CHAT;
    head_json(b, s, j, chat ? "chat.completion" : "text_completion");
    for (int i = 0; i < j->n_choices; i++) {
        const srv_choice *c = &j->choices[i];
        srv_buf_printf(b, "%s{\"index\":%d,", i ? "," : "", i);
        if (chat) {
            ADD(b, "\"message\":{\"role\":\"assistant\",\"content\":");
            srv_buf_json_str(b, c->text[CH_CONTENT].s ? c->text[CH_CONTENT].s : "", c->text[CH_CONTENT].len);
            for (int k = 0; k < 2; k++) {
                ADD(b, k ? ",\"reasoning\":" : ",\"reasoning_content\":");
                if (j->bf) srv_buf_json_str(b, c->text[CH_REASONING].s ? c->text[CH_REASONING].s : "", c->text[CH_REASONING].len);
                else ADD(b, "null");
            }
            ADD(b, "},\"logprobs\":");
            if (j->req.logprobs) chat_logprobs(b, s, c, 0, c->n_lp);
            else ADD(b, "null");
        } else {
            size_t el = 0;
            char *echo = j->req.echo ? prompt_text(s, j, i / j->req.n, &el) : NULL;
            ADD(b, "\"text\":");
            srv_buf t = {0};
            if (echo) srv_buf_add(&t, echo, el);
            srv_buf_add(&t, c->text[CH_CONTENT].s ? c->text[CH_CONTENT].s : "", c->text[CH_CONTENT].len);
            srv_buf_json_str(b, t.s ? t.s : "", t.len);
            free(t.s);
            free(echo);
            ADD(b, ",\"logprobs\":");
            if (j->req.logprobs) completion_logprobs(b, s, c, 0, c->n_lp, el);
            else ADD(b, "null");
        }
        srv_buf_printf(b, ",\"finish_reason\":\"%s\"", srv_finish_reason(c->stop_reason));
        budget_json(b, j, c);
        ADD(b, "}");
    }
    ADD(b, "],\"usage\":");
    usage_json(b, j);
    ADD(b, "}");
}

/* ------------------------------------------------------------------ waiting for the engine */

/* Whether the client closed its end (checked without reading its data). */
static bool client_gone(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return true;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/* Waits (mutex held) for the job to change; false when the client left (the job is cancelled). */
static bool wait_job(conn_ctx *c, srv_job *j) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 200 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    pthread_cond_timedwait(&j->cv, &c->s->mu, &ts);
    if (!j->finished && client_gone(c->conn)) {
        srv_job_cancel_locked(c->s, j);
        return false;
    }
    return true;
}

static enum MHD_Result answer_blocking(conn_ctx *c, srv_job *j) {
    s1c_server *s = c->s;
    pthread_mutex_lock(&s->mu);
    bool here = true;
    while (!j->finished && (here = wait_job(c, j))) {}
    while (!j->finished) wait_job(c, j); /* a cancelled job ends at the engine's next step */
    srv_buf b = {0};
    srv_error e = {0};
    if (j->status) srv_fail(&e, j->status, NULL, "%s", j->error);
    else full_response(&b, s, j);
    srv_job_unref_locked(s, j);
    pthread_mutex_unlock(&s->mu);
    if (!here) { free(b.s); return MHD_NO; } /* nobody to answer: close */
    if (e.status) return respond_error(c, &e);
    count_status(c, 200);
    enum MHD_Result rc = respond(c, 200, "application/json", b.s, b.len, NULL, NULL);
    free(b.s);
    return rc;
}

/* ------------------------------------------------------------------ streaming (SSE) */

static void chunk_head(srv_buf *b, const s1c_server *s, const srv_job *j) {
    ADD(b, "data: ");
    head_json(b, s, j, j->req.kind == SRV_CHAT ? "chat.completion.chunk" : "text_completion");
}

static void chunk_tail(srv_buf *b, const srv_job *j) {
    ADD(b, "]");
    if (j->req.include_usage) ADD(b, ",\"usage\":null");
    ADD(b, "}\n\n");
}

/* New text of one choice as one chunk (mutex held); returns whether it wrote one. */
static bool choice_delta(srv_buf *b, const s1c_server *s, const srv_job *j, srv_choice *c, int idx) {
    bool chat = j->req.kind == SRV_CHAT;
    size_t nr = c->ready[CH_REASONING] - c->sent[CH_REASONING], nc = c->ready[CH_CONTENT] - c->sent[CH_CONTENT];
    bool finish = c->done && !c->finish_sent && nr == 0 && nc == 0;
    bool first = chat && !c->role_sent;
    bool echo = !chat && j->req.echo && !c->role_sent;
    if (!nr && !nc && !finish && !first && !echo) return false;
    int lp_to = c->lp_sent;
    while (lp_to < c->n_lp && c->lp[lp_to].text_off < c->ready[CH_CONTENT]) lp_to++;
    chunk_head(b, s, j);
    srv_buf_printf(b, "{\"index\":%d,", idx);
    if (chat) {
        ADD(b, "\"delta\":{");
        bool comma = false;
        if (first) { ADD(b, "\"role\":\"assistant\""); comma = true; }
        if (nr) {
            const char *t = c->text[CH_REASONING].s + c->sent[CH_REASONING];
            ADD(b, comma ? ",\"reasoning_content\":" : "\"reasoning_content\":");
            srv_buf_json_str(b, t, nr);
            ADD(b, ",\"reasoning\":");
            srv_buf_json_str(b, t, nr);
            comma = true;
        }
        if (nc || first) {
            ADD(b, comma ? ",\"content\":" : "\"content\":");
            srv_buf_json_str(b, c->text[CH_CONTENT].s ? c->text[CH_CONTENT].s + c->sent[CH_CONTENT] : "", nc);
        }
        ADD(b, "},\"logprobs\":");
        if (j->req.logprobs && lp_to > c->lp_sent) chat_logprobs(b, s, c, c->lp_sent, lp_to);
        else ADD(b, "null");
    } else {
        srv_buf t = {0};
        size_t el = 0;
        char *ptext = echo ? prompt_text(s, j, idx / j->req.n, &el) : NULL;
        if (ptext) srv_buf_add(&t, ptext, el);
        free(ptext);
        if (nc) srv_buf_add(&t, c->text[CH_CONTENT].s + c->sent[CH_CONTENT], nc);
        ADD(b, "\"text\":");
        srv_buf_json_str(b, t.s ? t.s : "", t.len);
        free(t.s);
        ADD(b, ",\"logprobs\":");
        if (j->req.logprobs && lp_to > c->lp_sent) completion_logprobs(b, s, c, c->lp_sent, lp_to, 0);
        else ADD(b, "null");
    }
    if (finish) srv_buf_printf(b, ",\"finish_reason\":\"%s\"", srv_finish_reason(c->stop_reason));
    else ADD(b, ",\"finish_reason\":null");
    if (finish) budget_json(b, j, c);
    ADD(b, "}");
    chunk_tail(b, j);
    c->sent[CH_REASONING] = c->ready[CH_REASONING];
    c->sent[CH_CONTENT] = c->ready[CH_CONTENT];
    c->lp_sent = lp_to;
    c->role_sent = true;
    c->finish_sent |= finish;
    return true;
}

/* Produces the next SSE bytes (mutex held); false at the end of the stream. */
static bool next_events(conn_ctx *c) {
    srv_job *j = c->job;
    const s1c_server *s = c->s;
    for (int i = 0; i < j->n_choices; i++) choice_delta(&c->out, s, j, &j->choices[i], i);
    if (c->out.len > c->out_off) return true;
    if (!j->finished) return true;
    if (j->status) {
        srv_error e;
        srv_fail(&e, j->status, NULL, "%s", j->error);
        ADD(&c->out, "data: ");
        error_json(&c->out, &e);
        ADD(&c->out, "\n\n");
    }
    if (j->req.include_usage && !c->usage_sent && !j->status) {
        chunk_head(&c->out, s, j);
        ADD(&c->out, "],\"usage\":");
        usage_json(&c->out, j);
        ADD(&c->out, "}\n\n");
        c->usage_sent = true;
    }
    if (!c->done_sent) {
        ADD(&c->out, "data: [DONE]\n\n");
        c->done_sent = true;
        return true;
    }
    return c->out.len > c->out_off;
}

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    conn_ctx *c = cls;
    s1c_server *s = c->s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (c->out.len > c->out_off) {
            size_t n = c->out.len - c->out_off < max ? c->out.len - c->out_off : max;
            memcpy(buf, c->out.s + c->out_off, n);
            c->out_off += n;
            if (c->out_off == c->out.len) c->out.len = c->out_off = 0;
            pthread_mutex_unlock(&s->mu);
            return (ssize_t)n;
        }
        if (c->done_sent) break;
        bool more = next_events(c);
        if (c->out.len > c->out_off) continue;
        if (!more) break;
        if (!wait_job(c, c->job)) { pthread_mutex_unlock(&s->mu); return MHD_CONTENT_READER_END_WITH_ERROR; }
    }
    pthread_mutex_unlock(&s->mu);
    (void)pos;
    return MHD_CONTENT_READER_END_OF_STREAM;
}

static enum MHD_Result answer_stream(conn_ctx *c, srv_job *j) {
    c->job = j; /* the reference the HTTP side holds is now the reader's (dropped at completion) */
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_reader, c, NULL);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    c->status = 200;
    c->answered = true;
    count_status(c, 200);
    enum MHD_Result rc = MHD_queue_response(c->conn, 200, r);
    MHD_destroy_response(r);
    return rc;
}

/* ------------------------------------------------------------------ GET endpoints */

static enum MHD_Result get_models(conn_ctx *c) {
    srv_buf b = {0};
    ADD(&b, "{\"object\":\"list\",\"data\":[{\"id\":");
    srv_buf_json_str(&b, c->s->o.model_name, strlen(c->s->o.model_name));
    srv_buf_printf(&b, ",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"s1c\",\"max_model_len\":%d}]}", (long)time(NULL), c->s->ctx);
    enum MHD_Result rc = respond(c, 200, "application/json", b.s, b.len, NULL, NULL);
    free(b.s);
    return rc;
}

static void hist_text(srv_buf *b, const char *name, const char *help, const srv_hist *h) {
    srv_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    long cum = 0;
    for (int i = 0; i < h->n; i++) {
        cum += h->counts[i];
        srv_buf_printf(b, "%s_bucket{le=\"%g\"} %ld\n", name, h->bounds[i], cum);
    }
    srv_buf_printf(b, "%s_bucket{le=\"+Inf\"} %ld\n%s_sum %.6f\n%s_count %ld\n", name, h->total, name, h->sum, name, h->total);
}

static enum MHD_Result get_metrics(conn_ctx *c) {
    s1c_server *s = c->s;
    srv_buf b = {0};
    static const char *eps[2] = {"chat", "completions"};
    static const char *codes[6] = {"2xx", "400", "401", "413", "429", "5xx"};
    pthread_mutex_lock(&s->mu);
    const srv_metrics *m = &s->met;
    srv_buf_printf(&b, "# HELP s1c_requests_total Requests by endpoint and status.\n# TYPE s1c_requests_total counter\n");
    for (int e = 0; e < 2; e++)
        for (int k = 0; k < 6; k++) srv_buf_printf(&b, "s1c_requests_total{endpoint=\"%s\",status=\"%s\"} %ld\n", eps[e], codes[k], m->requests[e][k]);
    srv_buf_printf(&b, "# HELP s1c_other_errors_total Requests to unknown paths or with wrong methods.\n# TYPE s1c_other_errors_total counter\ns1c_other_errors_total %ld\n", m->other_errors);
    srv_buf_printf(&b, "# HELP s1c_tokens_total Tokens by phase.\n# TYPE s1c_tokens_total counter\n"
                       "s1c_tokens_total{phase=\"prompt\"} %ld\ns1c_tokens_total{phase=\"reasoning\"} %ld\n"
                       "s1c_tokens_total{phase=\"answer\"} %ld\ns1c_tokens_total{phase=\"completion\"} %ld\n",
                   m->prompt_tokens, m->reasoning_tokens, m->content_tokens, m->completion_tokens);
    srv_buf_printf(&b, "# HELP s1c_cancelled_total Requests cancelled (client gone or shutdown).\n# TYPE s1c_cancelled_total counter\ns1c_cancelled_total %ld\n", m->cancelled);
    srv_buf_printf(&b, "# HELP s1c_queue_depth Requests waiting for the engine.\n# TYPE s1c_queue_depth gauge\ns1c_queue_depth %d\n", s->n_queued);
    srv_buf_printf(&b, "# HELP s1c_running_requests Requests in the engine.\n# TYPE s1c_running_requests gauge\ns1c_running_requests %d\n", s->n_active);
    srv_buf_printf(&b, "# HELP s1c_running_sequences Sequences in the engine.\n# TYPE s1c_running_sequences gauge\ns1c_running_sequences %d\n", s->active_seqs);
    hist_text(&b, "s1c_request_duration_seconds", "Time from the request to its last token.", &m->latency);
    hist_text(&b, "s1c_time_to_first_token_seconds", "Time from the request to its first generated token.", &m->ttft);
    pthread_mutex_unlock(&s->mu);
    enum MHD_Result rc = respond(c, 200, "text/plain; version=0.0.4", b.s, b.len, NULL, NULL);
    free(b.s);
    return rc;
}

/* ------------------------------------------------------------------ the handler */

static bool authorized(const conn_ctx *c) {
    const char *key = c->s->o.api_key;
    if (!key) return true;
    const char *h = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7)) return false;
    h += 7;
    size_t a = strlen(h), b = strlen(key);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < a && i < b; i++) diff |= (unsigned char)(h[i] ^ key[i]); /* no early exit: timing says nothing */
    return diff == 0;
}

static int route(const char *url) {
    if (!strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions")) return EP_CHAT;
    if (!strcmp(url, "/v1/completions") || !strcmp(url, "/completions")) return EP_COMPLETION;
    if (!strcmp(url, "/v1/models") || !strcmp(url, "/models")) return EP_MODELS;
    if (!strcmp(url, "/health")) return EP_HEALTH;
    if (!strcmp(url, "/metrics")) return EP_METRICS;
    return EP_NONE;
}

/* The first call for a request: routing, method, key, declared size. */
static enum MHD_Result start_request(conn_ctx *c, const char *url, const char *method) {
    c->endpoint = route(url);
    bool post = !strcmp(method, "POST"), get = !strcmp(method, "GET");
    if (c->endpoint == EP_NONE) return fail(c, 404, NULL, "unknown path: use /v1/chat/completions, /v1/completions, /v1/models, /health or /metrics");
    bool wants_post = c->endpoint == EP_CHAT || c->endpoint == EP_COMPLETION;
    if ((wants_post && !post) || (!wants_post && !get)) return fail(c, 405, NULL, wants_post ? "use POST" : "use GET");
    if (c->endpoint == EP_HEALTH) {
        pthread_mutex_lock(&c->s->mu);
        bool stopping = c->s->stopping;
        pthread_mutex_unlock(&c->s->mu);
        return stopping ? fail(c, 503, NULL, "shutting down") : respond(c, 200, "application/json", "{\"status\":\"ok\"}", 15, NULL, NULL);
    }
    if (!authorized(c)) return fail(c, 401, NULL, "a valid API key is required (Authorization: Bearer KEY)");
    if (c->endpoint == EP_MODELS) return get_models(c);
    if (c->endpoint == EP_METRICS) return get_metrics(c);
    const char *cl = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > c->s->o.max_body) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", c->s->o.max_body);
        return fail(c, 413, NULL, msg);
    }
    return MHD_YES;
}

static enum MHD_Result finish_request(conn_ctx *c) {
    if (c->too_big) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", c->s->o.max_body);
        return fail(c, 413, NULL, msg);
    }
    srv_req req;
    srv_error e = {0};
    srv_job *j = NULL;
    if (srv_parse_request(&req, c->endpoint == EP_CHAT ? SRV_CHAT : SRV_COMPLETION, c->body.s ? c->body.s : "", c->body.len, &c->s->o, &e) != 0) {
        srv_req_free(&req);
        return respond_error(c, &e);
    }
    if (srv_job_new(c->s, &req, &j, &e) != 0) return respond_error(c, &e);
    if (srv_job_submit(c->s, j, &e) != 0) {
        pthread_mutex_lock(&c->s->mu);
        srv_job_unref_locked(c->s, j);
        pthread_mutex_unlock(&c->s->mu);
        return respond_error(c, &e);
    }
    /* the idle timeout guards reading the request (slowloris); a request waiting for the engine
     * is not idle, and its client's departure is seen by client_gone */
    MHD_set_connection_option(c->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    return j->req.stream ? answer_stream(c, j) : answer_blocking(c, j);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
                               const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    conn_ctx *c = *con_cls;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) return MHD_NO;
        c->s = cls;
        c->conn = conn;
        c->t0 = s1c_now();
        snprintf(c->method, sizeof c->method, "%s", method);
        snprintf(c->path, sizeof c->path, "%s", url);
        *con_cls = c;
        pthread_mutex_lock(&c->s->mu);
        c->s->n_open++;
        pthread_mutex_unlock(&c->s->mu);
        return start_request(c, url, method);
    }
    if (c->answered) { *upload_size = 0; return MHD_YES; } /* an error was queued early: drop the rest */
    if (*upload_size > 0) {
        /* over the limit: the rest is read and dropped (MHD answers only after the upload),
         * and a client that goes on sending far past it is cut off */
        c->received += *upload_size;
        if (!c->too_big && c->body.len + *upload_size > c->s->o.max_body) {
            c->too_big = true;
            free(c->body.s);
            c->body = (srv_buf){0};
        }
        if (!c->too_big && srv_buf_add(&c->body, upload, *upload_size) != 0) return MHD_NO;
        *upload_size = 0;
        return c->too_big && c->received > 8 * c->s->o.max_body ? MHD_NO : MHD_YES;
    }
    return finish_request(c);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)conn;
    s1c_server *s = cls;
    conn_ctx *c = *con_cls;
    if (!c) return;
    pthread_mutex_lock(&s->mu);
    if (c->job) {
        if (!c->job->finished) srv_job_cancel_locked(s, c->job);
        srv_job_unref_locked(s, c->job);
    }
    s->n_open--;
    pthread_mutex_unlock(&s->mu);
    if (!s->o.quiet)
        fprintf(stderr, "%s %s %d %.3fs%s\n", c->method, c->path, c->status, s1c_now() - c->t0,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection ended early)");
    free(c->body.s);
    free(c->out.s);
    free(c);
    *con_cls = NULL;
}

/* ------------------------------------------------------------------ start and stop */

int srv_http_start(s1c_server *s, s1c_err *err) {
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->o.port)};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)s->o.port)};
    struct sockaddr *addr;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC;
    if (inet_pton(AF_INET, s->o.host, &a4.sin_addr) == 1) addr = (struct sockaddr *)&a4;
    else if (inet_pton(AF_INET6, s->o.host, &a6.sin6_addr) == 1) { addr = (struct sockaddr *)&a6; flags |= MHD_USE_IPv6; }
    else if (!strcmp(s->o.host, "localhost")) { a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK); addr = (struct sockaddr *)&a4; }
    else return s1c_fail(err, "serve: --host '%s' is not an IPv4 or IPv6 address", s->o.host);
    if (s->o.port < 0 || s->o.port > 65535) return s1c_fail(err, "serve: --port %d is not in [0, 65535]", s->o.port);
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)s->o.port, NULL, NULL, handler, s,
                                            MHD_OPTION_SOCK_ADDR, addr,
                                            MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.max_connections,
                                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->o.timeout_s,
                                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
                                            MHD_OPTION_END);
    if (!d) return s1c_fail(err, "serve: cannot listen on %s:%d (in use, or not allowed)", s->o.host, s->o.port);
    s->daemon = d;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->o.port;
    return 0;
}

void srv_http_quiesce(s1c_server *s) {
    if (!s->daemon) return;
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

void srv_http_stop(s1c_server *s) {
    if (!s->daemon) return;
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}
