/* Distillation (SPEC.md §2): ask a teacher reasoning model for every question's reasoning and
 * final answer through an OpenAI-compatible API. Results are appended to the output as they
 * arrive (fsync'd), so a killed run loses nothing it finished; a rerun skips finished ids and
 * asks again for failed ones; at the end the output is rewritten in pool order, one line per id. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../curate/curate_internal.h"

/* ------------------------------------------------------------------ reply parsing */

static char *dup_stripped(const char *s, size_t n) {
    while (n && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')) { s++; n--; }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

int distill_split(const char *content, const char *reasoning_field, char **reasoning, char **answer, s1c_err *err) {
    *reasoning = *answer = NULL;
    if (!content) content = "";
    const char *open = strstr(content, "<think>"), *close = strstr(content, "</think>");
    const char *ans = content;
    size_t ans_n = strlen(content);
    const char *th = "";
    size_t th_n = 0;
    if (close) {
        /* <think>...</think> answer, or (R1 without the opening tag) ... </think> answer */
        th = open && open < close ? open + 7 : content;
        th_n = (size_t)(close - th);
        ans = close + 8;
        ans_n = strlen(ans);
    }
    if (reasoning_field && reasoning_field[0]) { th = reasoning_field; th_n = strlen(reasoning_field); }
    *reasoning = dup_stripped(th, th_n);
    *answer = dup_stripped(ans, ans_n);
    if (!*reasoning || !*answer) {
        free(*reasoning);
        free(*answer);
        *reasoning = *answer = NULL;
        return s1c_fail(err, "out of memory");
    }
    return 0;
}

/* ------------------------------------------------------------------ the run */

typedef struct dctx {
    const cur_pool *p;
    const distill_opts *o;
    net_client *client;
    cur_journal *journal;
    const cur_rec **todo;
    size_t n;
    distill_stats *st;
    pthread_mutex_t mu;
    double last, t0;
    char first_error[512];
    bool io_failed;
    s1c_err io_err;
} dctx;

static void set_item(cJSON *obj, const char *name, cJSON *item) {
    if (!item) return;
    if (cJSON_GetObjectItemCaseSensitive(obj, name)) cJSON_ReplaceItemInObjectCaseSensitive(obj, name, item);
    else cJSON_AddItemToObject(obj, name, item);
}

/* Why a reply cannot be used, or NULL. */
static const char *reply_problem(const net_chat_result *res, const char *reasoning, const char *answer) {
    if (!cur_utf8_valid(res->content, strlen(res->content)) || (res->reasoning && !cur_utf8_valid(res->reasoning, strlen(res->reasoning))))
        return "reply is not valid UTF-8";
    if (res->finish_reason && !strcmp(res->finish_reason, "length")) return "reply cut at the token limit (finish_reason \"length\")";
    if (!reasoning[0] && !answer[0]) return "empty reply";
    if (!reasoning[0]) return "no reasoning in the reply (no reasoning_content/reasoning field, no <think> block)";
    if (!answer[0]) return "no final answer after the reasoning";
    return NULL;
}

static void task(void *ctx, size_t i) {
    dctx *D = ctx;
    const distill_opts *o = D->o;
    const cur_rec *r = D->todo[i];
    net_message msgs[2];
    int nm = 0;
    if (o->system) msgs[nm++] = (net_message){"system", o->system};
    msgs[nm++] = (net_message){"user", r->question};
    net_chat_params prm = {.temperature = o->temperature, .max_tokens = o->max_tokens};
    net_chat_result res;
    s1c_err e = {{0}};
    double t = s1c_now();
    cJSON *out = cJSON_Duplicate(r->obj, 1);
    char *reasoning = NULL, *answer = NULL;
    const char *problem = NULL;
    bool ok = false;
    long ptok = -1, ctok = -1, ttok = 0;
    int tries = 0;
    if (!out) { problem = "out of memory"; goto record; }
    cJSON_DeleteItemFromObjectCaseSensitive(out, "distill_error");
    if (!cJSON_GetObjectItemCaseSensitive(out, D->p->f.id)) cJSON_AddStringToObject(out, D->p->f.id, r->id);
    if (net_chat(D->client, o->model, msgs, nm, &prm, &res, &e)) { problem = e.msg; goto record; }
    tries = res.tries;
    ptok = res.prompt_tokens;
    ctok = res.completion_tokens;
    if (distill_split(res.content, res.reasoning, &reasoning, &answer, &e)) problem = e.msg;
    else problem = reply_problem(&res, reasoning, answer);
    if (res.finish_reason) set_item(out, "finish_reason", cJSON_CreateString(res.finish_reason));
    net_chat_result_free(&res);
    if (problem) goto record;
    cJSON *traj = cJSON_CreateArray();
    cJSON_AddItemToArray(traj, cJSON_CreateString(reasoning));
    set_item(out, D->p->f.trajectories, traj);
    set_item(out, D->p->f.attempt, cJSON_CreateString(answer));
    ttok = cur_count_tokens(o->tok, reasoning, strlen(reasoning));
    set_item(out, "trace_tokens", cJSON_CreateNumber((double)ttok));
    ok = true;
record:
    if (out) {
        set_item(out, "teacher_model", cJSON_CreateString(o->model));
        if (ptok >= 0) set_item(out, "prompt_tokens", cJSON_CreateNumber((double)ptok));
        if (ctok >= 0) set_item(out, "completion_tokens", cJSON_CreateNumber((double)ctok));
        if (tries) set_item(out, "distill_tries", cJSON_CreateNumber(tries));
        set_item(out, "distill_seconds", cJSON_CreateNumber((double)(long)((s1c_now() - t) * 1000) / 1000.0));
        if (!ok) {
            char *pr = cur_printable(problem, strlen(problem), 900);
            set_item(out, "distill_error", cJSON_CreateString(pr ? pr : "?"));
            free(pr);
        }
    }
    s1c_err je = {{0}};
    bool written = out && cur_journal_append(D->journal, out, &je) == 0;
    cJSON_Delete(out);
    free(reasoning);
    free(answer);
    pthread_mutex_lock(&D->mu);
    distill_stats *st = D->st;
    if (!written) {
        if (!D->io_failed) D->io_err = je;
        D->io_failed = true;
    }
    if (ok && written) st->ok++;
    else st->failed++;
    if (!ok && !D->first_error[0]) snprintf(D->first_error, sizeof D->first_error, "%.100s: %.400s", r->id, problem);
    if (ptok > 0) st->prompt_tokens += ptok;
    if (ctok > 0) st->completion_tokens += ctok;
    st->trace_tokens += ttok;
    st->requests += tries ? tries : 1;
    double now = s1c_now();
    size_t done = st->ok + st->failed;
    if (!o->quiet && (now - D->last >= 5.0 || done == D->n)) {
        D->last = now;
        fprintf(stderr, "[distill] %zu/%zu done, %zu failed, %ld prompt + %ld completion tokens, %.0f s\n", done, D->n, st->failed,
                st->prompt_tokens, st->completion_tokens, now - D->t0);
    }
    pthread_mutex_unlock(&D->mu);
}

/* The output file as an index, without holding its records: every complete line's place and
 * whether it is a failure; ids map (by a 64-bit hash) to their last line. */
typedef struct out_line {
    size_t off, len;
    uint64_t id_hash;
    bool failed;
} out_line;

typedef struct out_index {
    s1c_mfile f;
    out_line *l;
    size_t n;
    cur_map last; /* id hash -> index of its last line */
} out_index;

static void out_index_free(out_index *x) {
    s1c_mfile_close(&x->f);
    free(x->l);
    cur_map_free(&x->last);
    memset(x, 0, sizeof *x);
}

/* The id of a line (string or number) as text in buf. */
static const char *line_id(const cJSON *l, const char *field, char *buf, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(l, field);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsNumber(v)) return s1c_num_text(v->valuedouble, buf, cap);
    return NULL;
}

/* Indexes path (complete lines only: the journal has cut a torn one). Lines that do not parse
 * or have no id are left out (and so rewritten away by compact). */
static int out_index_load(out_index *x, const char *path, const char *id_field, s1c_err *err) {
    memset(x, 0, sizeof *x);
    if (s1c_mfile_open(&x->f, path, err)) return -1;
    const char *t = (const char *)x->f.data;
    size_t cap = 0;
    for (size_t i = 0; i < x->f.size;) {
        const char *nl = memchr(t + i, '\n', x->f.size - i);
        size_t end = nl ? (size_t)(nl - t) : x->f.size;
        cJSON *o = end > i ? cJSON_ParseWithLength(t + i, end - i) : NULL;
        char buf[64];
        const char *id = cJSON_IsObject(o) ? line_id(o, id_field, buf, sizeof buf) : NULL;
        if (id) {
            if (x->n == cap) {
                cap = cap ? cap * 2 : 1024;
                out_line *nlp = realloc(x->l, cap * sizeof *nlp);
                if (!nlp) { cJSON_Delete(o); out_index_free(x); return s1c_fail(err, "out of memory"); }
                x->l = nlp;
            }
            uint64_t h = cur_hash(id, strlen(id), 0);
            x->l[x->n] = (out_line){i, end - i, h, cJSON_GetObjectItemCaseSensitive(o, "distill_error") != NULL};
            if (cur_map_set(&x->last, h, x->n)) { cJSON_Delete(o); out_index_free(x); return s1c_fail(err, "out of memory"); }
            x->n++;
        }
        cJSON_Delete(o);
        i = end + 1;
    }
    return 0;
}

static const out_line *out_last(const out_index *x, const char *id) {
    size_t at;
    return cur_map_get(&x->last, cur_hash(id, strlen(id), 0), &at) ? &x->l[at] : NULL;
}

/* Rewrites path: the pool's ids in pool order (their last line), then the last line of every id
 * the pool does not have (kept, never lost). */
static int compact(const cur_pool *p, const char *path, s1c_err *err) {
    out_index x;
    if (out_index_load(&x, path, p->f.id, err)) return -1;
    const char *t = (const char *)x.f.data;
    char *used = calloc(x.n ? x.n : 1, 1);
    s1c_wfile w = {0};
    int rc = 0;
    if (!used) { rc = s1c_fail(err, "out of memory"); goto out; }
    if ((rc = s1c_wfile_open(&w, path, err))) goto out;
    for (size_t i = 0; i < p->n; i++) {
        if (p->r[i].stage) continue;
        const out_line *l = out_last(&x, p->r[i].id);
        if (!l || used[l - x.l]) continue;
        s1c_wfile_write(&w, t + l->off, l->len);
        s1c_wfile_write(&w, "\n", 1);
        used[l - x.l] = 1;
    }
    for (size_t i = 0; i < x.n; i++) {
        size_t at;
        if (used[i] || !cur_map_get(&x.last, x.l[i].id_hash, &at) || at != i) continue; /* only last lines */
        s1c_wfile_write(&w, t + x.l[i].off, x.l[i].len);
        s1c_wfile_write(&w, "\n", 1);
    }
    rc = s1c_wfile_commit(&w, err);
out:
    free(used);
    out_index_free(&x);
    return rc;
}

int distill_run(const cur_pool *p, const distill_opts *o, distill_stats *st, s1c_err *err) {
    memset(st, 0, sizeof *st);
    dctx D = {.p = p, .o = o, .st = st};
    out_index x = {0};
    int rc = 0;
    net_client_opts no = {.base_url = o->endpoint, .api_key = o->api_key, .timeout_s = o->timeout_s,
                          .max_retries = o->retries, .backoff_s = o->backoff_s};
    if (net_client_new(&D.client, &no, err)) return -1;
    if (cur_journal_open(&D.journal, o->out_path, NULL, err)) { net_client_free(D.client); return -1; }
    D.todo = malloc((p->n ? p->n : 1) * sizeof *D.todo);
    if (!D.todo) { rc = s1c_fail(err, "out of memory"); goto out; }
    if ((rc = out_index_load(&x, o->out_path, p->f.id, err))) goto out;
    for (size_t i = 0; i < p->n; i++) {
        const cur_rec *r = &p->r[i];
        if (r->stage) { st->bad_lines++; continue; }
        st->total++;
        const out_line *l = out_last(&x, r->id);
        if (l && (!l->failed || !o->retry_failed)) { st->skipped++; continue; }
        D.todo[D.n++] = r;
    }
    out_index_free(&x);
    if (!o->quiet)
        fprintf(stderr, "[distill] %zu question(s): %zu already in %s, %zu to ask %s (%d at a time)\n", st->total, st->skipped,
                o->out_path, D.n, o->model, o->concurrency);
    pthread_mutex_init(&D.mu, NULL);
    D.t0 = D.last = s1c_now();
    rc = cur_par_run(D.n, o->concurrency, o->rps, task, &D, err);
    pthread_mutex_destroy(&D.mu);
    if (rc == 0 && D.io_failed) rc = s1c_fail(err, "%s", D.io_err.msg);
    if (rc == 0 && D.first_error[0] && !o->quiet) fprintf(stderr, "[distill] first failure: %s\n", D.first_error);
out:
    cur_journal_close(D.journal);
    net_client_free(D.client);
    free(D.todo);
    out_index_free(&x);
    if (rc == 0) rc = compact(p, o->out_path, err);
    return rc;
}
