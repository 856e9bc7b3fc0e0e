/* Evaluation against OpenAI-compatible servers (vLLM, llama.cpp, SGLang, s1c serve): every
 * problem × setting × sample becomes one job; `concurrency` worker threads take jobs in order
 * (problems innermost, so one problem's samples are spread over the run) and send each to
 * endpoint (job number mod the number of endpoints), so a fleet of servers shares the work.
 * Records go to the same samples.jsonl as local runs (resumable, graded the same way,
 * summarized by the same code).
 *
 * Failures. The net client retries a request (5xx, 429, 408, timeouts, no connection) with
 * exponential backoff. A request that still fails puts its endpoint in back-off (no new
 * requests for endpoint_backoff_s, doubling per further failure, then one probe request at a
 * time until one succeeds) and the job moves to the next endpoint not in back-off that it has
 * not tried; with none left the sample is written as an error record (neither right nor wrong;
 * the next run retries it) and the run goes on. When stop_after requests in a row failed, on
 * every endpoint, with no success between, the servers are taken to be down: the run stops
 * early instead of spending every remaining sample's retries. Only local failures (the disk,
 * memory) stop the run at once.
 *
 * Two ways to force budgets:
 *   server  s1c serve applies SPEC.md §8 itself: one chat request per sample carrying
 *           max_thinking_tokens, num_waits, ... and returning its exact accounting.
 *   client  any server: s1's loop through /v1/completions on the rendered prompt — think with
 *           max_tokens = what is left of the budget and the end-of-thinking delimiter as a stop
 *           string; on a natural end with Waits left append the ignore string and continue;
 *           at the budget append "\n<think_end>\n<answer_prefix>"; then the answer phase.
 *           Token counts come from the server's usage (an ignore string's from the growth of
 *           prompt_tokens), so they are the server tokenizer's.
 *
 * Every --method runs in both modes, as in a local run: the prompt-side controls (token-,
 * step-, class-conditional) send the question with its suffix and enforce no budget; rejection
 * sampling enforces the budget plus one token and draws again (seed + 1, ...) while the
 * thinking outgrows the budget. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"
#include "s1c/net.h"

typedef struct rjob {
    int problem, setting, sample;
} rjob;

/* One draw of a sample. */
typedef struct attempt {
    const char *question; /* with the setting's control suffix */
    int budget;           /* thinking budget enforced (S1C_BF_UNLIMITED: none) */
    int reject_over;      /* rejection sampling: a thinking longer than this is rejected (-1: never) */
    int waits;
    int seed;             /* added to the sampler's seed: the sample's index, plus the redraws */
} attempt;

#define MAX_ENDPOINTS 64 /* a job's tried endpoints are bits of a uint64_t */
#define DEFAULT_STOP_AFTER 16
#define DEFAULT_ENDPOINT_BACKOFF_S 30.0

/* What the run knows of one endpoint's health (under rrun.health). */
typedef struct endpoint_state {
    int fails;      /* its requests that failed in a row (a success resets) */
    double until;   /* in back-off until then (s1c_now) */
    bool probing;   /* a request is testing it after its back-off */
} endpoint_state;

typedef struct rrun {
    const eval_remote *r;
    const eval_bench *b;
    const eval_opts *o;
    net_client **clients;
    eval_setting *sets;
    int n_sets;
    rjob *jobs;
    int n_jobs;
    atomic_int next;
    atomic_int failed;    /* a local failure: stop at once */
    atomic_int stopped;   /* every endpoint failing: take no new job */
    pthread_mutex_t lock; /* samples.jsonl, progress, the errors below */
    FILE *f;
    int finished, errors; /* samples written: graded, and error records */
    eval_progress pg;
    s1c_err first_err;    /* the local failure */
    char first_error[1100]; /* the first error record: "problem ID: what failed" */
    pthread_mutex_t health; /* eps, streak */
    endpoint_state *eps;
    int streak;           /* requests in a row that failed, over all endpoints */
    uint64_t streak_eps;  /* the endpoints among them */
    s1c_err stop_err;     /* why the run stopped early */
} rrun;

/* ---------------------------------------------------------------- a growing string */

typedef struct str {
    char *s;
    size_t len;
} str;

static int str_cat(str *t, const char *a) {
    size_t n = strlen(a);
    char *s = realloc(t->s, t->len + n + 1);
    if (!s) return -1;
    memcpy(s + t->len, a, n + 1);
    t->s = s;
    t->len += n;
    return 0;
}

/* ---------------------------------------------------------------- client-side budget forcing */

typedef struct phase_out {
    str thinking, answer;
    str full; /* everything generated after the prompt, delimiters included (what extraction reads) */
    int thinking_tokens, answer_tokens, waits;
    const char *stop_reason, *think_end_reason;
    bool rejected; /* rejection sampling: the thinking outgrew the budget */
    bool server_failed; /* the failure was the server's (a request, its answer), not ours */
} phase_out;

static void phase_out_free(phase_out *p) {
    free(p->thinking.s);
    free(p->answer.s);
    free(p->full.s);
}

static net_completion_params sampling(const eval_opts *o, int seed, int max_tokens, const char *const *stop, int n_stop) {
    net_completion_params p = {.temperature = o->sampler.temperature, .top_p = o->sampler.top_p, .max_tokens = max_tokens,
                               .seed = -1, .stop = stop, .n_stop = n_stop};
    /* every sample (and redraw) its own seed, reproducible run to run */
    if (o->sampler.temperature > 0) p.seed = (long long)(o->sampler.seed + (uint64_t)seed);
    return p;
}

static bool outgrew(const attempt *a, phase_out *out) {
    if (a->reject_over < 0 || out->thinking_tokens <= a->reject_over) return false;
    out->rejected = true;
    return true;
}

/* One completion of a phase ("thinking", "answer"); a failure is marked as the server's. */
static int complete(net_client *c, const char *model, const char *phase, const str *prompt, const net_completion_params *p,
                    net_completion *out, phase_out *po, s1c_err *err) {
    if (net_complete(c, model, prompt->s, p, out, err) != 0) {
        po->server_failed = true;
        return s1c_fail_prefix(err, "%s request", phase);
    }
    if (out->completion_tokens < 0 || out->prompt_tokens < 0) {
        net_completion_free(out);
        po->server_failed = true;
        return s1c_fail(err, "%s: the server reports no token usage (needed to count thinking tokens)", net_client_url(c));
    }
    return 0;
}

/* The thinking phase; on return text holds the prompt plus everything up to the answer phase. */
static int think(net_client *c, const rrun *R, const attempt *a, str *text, phase_out *out, s1c_err *err) {
    const s1c_bf_opts *bf = &R->o->bf;
    const char *stop[] = {bf->think_end, "<|im_end|>", "<|endoftext|>"};
    int budget = a->budget, cap = R->r->max_tokens, wait_est = (int)(strlen(bf->wait_str) + 3) / 4;
    long last_prompt = -1, last_completion = 0;
    bool pending_wait = false;
    for (;;) {
        if (outgrew(a, out)) return 0;
        int left = budget >= 0 ? budget - out->thinking_tokens : cap - out->thinking_tokens;
        if (left <= 0) {
            out->think_end_reason = "budget";
            break;
        }
        net_completion_params p = sampling(R->o, a->seed, left, stop, 3);
        net_completion res;
        if (complete(c, R->r->model, "thinking", text, &p, &res, out, err) != 0) return -1;
        if (pending_wait && last_prompt >= 0) {
            /* the ignore string's real size: how much the prompt grew beyond the last completion */
            long grew = res.prompt_tokens - last_prompt - last_completion;
            if (grew > 0) out->thinking_tokens += (int)grew - wait_est;
            if (grew > 0) wait_est = (int)grew;
        }
        pending_wait = false;
        last_prompt = res.prompt_tokens;
        last_completion = res.completion_tokens;
        out->thinking_tokens += (int)res.completion_tokens;
        int rc = str_cat(text, res.text) | str_cat(&out->thinking, res.text);
        bool hit_limit = res.finish_reason && !strcmp(res.finish_reason, "length");
        net_completion_free(&res);
        if (rc) return s1c_fail(err, "out of memory");
        if (outgrew(a, out)) return 0;
        if (hit_limit) {
            out->think_end_reason = budget >= 0 ? "budget" : "answer_limit";
            break;
        }
        /* a natural end of thinking: replace it by the ignore string while Waits are left */
        bool want_wait = out->waits < a->waits || out->thinking_tokens < bf->min_thinking_tokens;
        if (!want_wait) {
            out->think_end_reason = "think_end";
            return str_cat(text, bf->think_end) ? s1c_fail(err, "out of memory") : 0;
        }
        if (budget >= 0 && out->thinking_tokens + wait_est > budget) {
            out->think_end_reason = "budget";
            break;
        }
        if (str_cat(text, bf->wait_str) || str_cat(&out->thinking, bf->wait_str)) return s1c_fail(err, "out of memory");
        out->thinking_tokens += wait_est;
        out->waits++;
        pending_wait = true;
    }
    /* forced end: newline if needed, the delimiter, a newline, the answer prefix (as the engine) */
    bool nl = text->len > 0 && text->s[text->len - 1] == '\n';
    if ((!nl && str_cat(text, "\n")) || str_cat(text, bf->think_end) || str_cat(text, "\n") || str_cat(text, bf->answer_prefix))
        return s1c_fail(err, "out of memory");
    return 0;
}

static int client_sample(net_client *c, const rrun *R, const attempt *a, phase_out *out, s1c_err *err) {
    str text = {0};
    char *prompt = eval_prompt_text(R->r->chat_template, a->question, R->o->bf.think_start, err);
    int rc = !prompt ? -1 : str_cat(&text, prompt) ? s1c_fail(err, "out of memory") : 0;
    free(prompt);
    size_t think_from = text.len;
    if (rc == 0) rc = think(c, R, a, &text, out, err);
    if (rc == 0 && !out->rejected) { /* a rejected draw is drawn again: no answer phase */
        const char *stop[] = {"<|im_end|>", "<|endoftext|>"};
        int amax = R->o->max_answer_tokens > 0 ? R->o->max_answer_tokens : R->r->max_tokens;
        net_completion_params p = sampling(R->o, a->seed, amax, stop, 2);
        net_completion res;
        rc = complete(c, R->r->model, "answer", &text, &p, &res, out, err);
        if (rc == 0) {
            out->answer_tokens = (int)res.completion_tokens;
            out->stop_reason = res.finish_reason && !strcmp(res.finish_reason, "length") ? "answer_limit" : "answer_end";
            if (str_cat(&out->answer, res.text) || str_cat(&text, res.text)) rc = s1c_fail(err, "out of memory");
            net_completion_free(&res);
        }
    }
    if (rc == 0 && str_cat(&out->full, text.s + think_from)) rc = s1c_fail(err, "out of memory");
    free(text.s);
    return rc;
}

/* ---------------------------------------------------------------- server-side budget forcing */

/* SPEC.md §8's fields for s1c serve (and seed/top_p, which chat params do not carry). */
static char *bf_fields(const rrun *R, const attempt *a) {
    const s1c_bf_opts *bf = &R->o->bf;
    cJSON *x = cJSON_CreateObject();
    if (a->budget >= 0) cJSON_AddNumberToObject(x, "max_thinking_tokens", a->budget);
    cJSON_AddNumberToObject(x, "num_waits", a->waits);
    if (bf->min_thinking_tokens > 0) cJSON_AddNumberToObject(x, "min_thinking_tokens", bf->min_thinking_tokens);
    cJSON_AddStringToObject(x, "wait_str", bf->wait_str);
    cJSON_AddStringToObject(x, "answer_prefix", bf->answer_prefix);
    cJSON_AddStringToObject(x, "think_start", bf->think_start);
    cJSON_AddStringToObject(x, "think_end", bf->think_end);
    if (R->o->max_answer_tokens > 0) cJSON_AddNumberToObject(x, "max_answer_tokens", R->o->max_answer_tokens);
    if (R->o->sampler.top_p > 0 && R->o->sampler.top_p < 1) cJSON_AddNumberToObject(x, "top_p", R->o->sampler.top_p);
    if (R->o->sampler.temperature > 0) cJSON_AddNumberToObject(x, "seed", (double)(R->o->sampler.seed + (uint64_t)a->seed));
    char *s = cJSON_PrintUnformatted(x);
    cJSON_Delete(x);
    return s;
}

static int json_int(const cJSON *o, const char *k, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valueint : def;
}

static const char *reason_name(const cJSON *o, const char *k, const char *def) {
    static const char *const known[] = {"think_end", "budget", "answer_end", "answer_limit", "context_full", "cancelled"};
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    for (size_t i = 0; cJSON_IsString(v) && i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(v->valuestring, known[i])) return known[i];
    return def;
}

static int server_sample(net_client *c, const rrun *R, const attempt *a, phase_out *out, s1c_err *err) {
    char *extra = bf_fields(R, a);
    net_message msg = {"user", a->question};
    /* no max_tokens: the budget fields bound the phases, the server its context */
    net_chat_params p = {.temperature = R->o->sampler.temperature, .extra_json = extra};
    net_chat_result res;
    if (!extra) return s1c_fail(err, "out of memory");
    int rc = net_chat(c, R->r->model, &msg, 1, &p, &res, err);
    free(extra);
    if (rc != 0) {
        out->server_failed = true;
        return s1c_fail_prefix(err, "request");
    }
    cJSON *bf = res.budget_forcing ? cJSON_Parse(res.budget_forcing) : NULL;
    if (!bf) {
        net_chat_result_free(&res);
        out->server_failed = true;
        return s1c_fail(err, "%s: the server does not apply budget forcing itself (no budget_forcing in its answer; "
                             "use --remote-bf client)", net_client_url(c));
    }
    out->thinking_tokens = json_int(bf, "thinking_tokens", 0);
    out->answer_tokens = json_int(bf, "answer_tokens", 0);
    out->waits = json_int(bf, "waits", 0);
    out->stop_reason = reason_name(bf, "stop_reason", "answer_end");
    out->think_end_reason = reason_name(bf, "think_end_reason", "none");
    cJSON_Delete(bf);
    outgrew(a, out);
    const char *thinking = res.reasoning ? res.reasoning : "";
    if (str_cat(&out->thinking, thinking) || str_cat(&out->answer, res.content) || str_cat(&out->full, thinking) ||
        str_cat(&out->full, "\n") || str_cat(&out->full, R->o->bf.think_end) || str_cat(&out->full, "\n") ||
        str_cat(&out->full, res.content))
        rc = s1c_fail(err, "out of memory");
    net_chat_result_free(&res);
    return rc;
}

/* ---------------------------------------------------------------- the workers */

/* Draws one sample; rejection sampling draws again (seed + 1, ...) while the thinking outgrows
 * the budget, --reject-tries times at most, and keeps the last draw as "rejected". */
static int draw_sample(net_client *c, const rrun *R, const rjob *j, phase_out *out, int *tries, s1c_err *err) {
    const eval_setting *t = &R->sets[j->setting];
    char *question = eval_setting_question(t, R->b->p[j->problem].question);
    if (!question) return s1c_fail(err, "out of memory");
    /* rejection: one token past the budget is enough to know a draw outgrew it */
    attempt a = {question, t->reject ? t->budget + 1 : t->enforce, t->reject ? t->budget : -1, t->waits, j->sample};
    int rc = 0;
    for (*tries = 1;; ++*tries) {
        *out = (phase_out){.stop_reason = "answer_end", .think_end_reason = "none"};
        rc = R->r->server_bf ? server_sample(c, R, &a, out, err) : client_sample(c, R, &a, out, err);
        if (rc != 0 || !out->rejected || *tries >= R->o->reject_tries) break;
        phase_out_free(out);
        a.seed++;
    }
    if (rc == 0 && out->rejected) {
        /* as the local controller: the token that outgrew the budget is not counted */
        out->stop_reason = "rejected";
        out->think_end_reason = "none";
        if (out->thinking_tokens > t->budget) out->thinking_tokens = t->budget;
        out->answer_tokens = 0;
    }
    free(question);
    return rc;
}

/* ---------------------------------------------------------------- endpoints' health */

/* The endpoint for job k's next request, or -1: its own (k mod n) unless that one is in
 * back-off, else the next one not in back-off (one whose back-off is over takes one probe
 * request at a time) that the job has not tried. When every endpoint is in back-off a job's
 * first request still goes out, to the one whose back-off ends first (so a lone endpoint or a
 * fleet that is all down keeps being asked, and stop_after can tell); a job that already failed
 * somewhere gives up instead. */
static int pick_endpoint(rrun *R, int k, uint64_t tried) {
    int n = R->r->n_endpoints, pick = -1, soonest = -1;
    double now = s1c_now();
    pthread_mutex_lock(&R->health);
    for (int i = 0; i < n && pick < 0; i++) {
        int e = (k + i) % n;
        endpoint_state *s = &R->eps[e];
        if (tried >> e & 1) continue;
        if (s->fails == 0) pick = e;
        else if (s->until <= now && !s->probing) pick = e, s->probing = true;
        else if (soonest < 0 || s->until < R->eps[soonest].until) soonest = e;
    }
    if (pick < 0 && tried == 0) pick = soonest;
    pthread_mutex_unlock(&R->health);
    return pick;
}

/* Books a request's outcome: a success clears the endpoint and the run's streak of failures;
 * a failure backs the endpoint off and may stop the run (every endpoint failing). */
static void book_request(rrun *R, int e, bool ok, const char *what) {
    const eval_remote *r = R->r;
    pthread_mutex_lock(&R->health);
    endpoint_state *s = &R->eps[e];
    s->probing = false;
    if (ok) {
        s->fails = 0;
        R->streak = 0;
        R->streak_eps = 0;
    } else {
        s->fails++;
        double base = r->endpoint_backoff_s > 0 ? r->endpoint_backoff_s : DEFAULT_ENDPOINT_BACKOFF_S;
        s->until = s1c_now() + base * (double)(1 << (s->fails < 4 ? s->fails - 1 : 3));
        R->streak++;
        R->streak_eps |= 1ull << e;
        int limit = r->stop_after > 0 ? r->stop_after : DEFAULT_STOP_AFTER;
        uint64_t all = r->n_endpoints >= 64 ? ~0ull : (1ull << r->n_endpoints) - 1;
        if (R->streak >= limit && R->streak_eps == all && !atomic_exchange(&R->stopped, 1))
            s1c_fail(&R->stop_err, "eval stopped early: the last %d requests failed, on every endpoint (%d), with no success "
                                   "between (the last: %.700s)", R->streak, r->n_endpoints, what);
    }
    pthread_mutex_unlock(&R->health);
}

/* ---------------------------------------------------------------- the workers */

/* Appends one request's failure to a sample's error text (one line, bounded). The net client
 * names its tries when it retried; a request that failed at once says so too. */
static void add_failure(char *buf, size_t cap, const char *msg) {
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n, "%s%.600s%s", n ? "; then " : "", msg, strstr(msg, "(after ") ? "" : " (after 1 try)");
    for (char *p = buf + n; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
}

/* Writes the job's record (graded, or an error record when error is set). A write that fails
 * is a local failure: the run stops with it. */
static int write_job(rrun *R, const rjob *j, const phase_out *out, int tries, int e, double t0, const char *error, s1c_err *err) {
    const eval_setting *t = &R->sets[j->setting];
    eval_record rec = {.budget = t->budget, .num_waits = t->waits, .sample = j->sample, .thinking = "", .answer = "",
                       .stop_reason = "error", .think_end_reason = "none", .endpoint = e >= 0 ? R->r->endpoints[e] : NULL,
                       .decode_s = s1c_now() - t0, .method = eval_method_name(R->o->method), .control = t->control_name,
                       .tries = tries, .error = error};
    if (!error) {
        rec.thinking = out->thinking.s ? out->thinking.s : "";
        rec.answer = out->answer.s ? out->answer.s : "";
        rec.full = out->full.s;
        rec.thinking_tokens = out->thinking_tokens;
        rec.answer_tokens = out->answer_tokens;
        rec.waits = out->waits;
        rec.stop_reason = out->stop_reason;
        rec.think_end_reason = out->think_end_reason;
    }
    int right = 0;
    pthread_mutex_lock(&R->lock);
    int rc = eval_write_record(R->f, &R->b->p[j->problem], &rec, &right, err);
    if (rc == 0 && error) {
        if (R->errors++ == 0) snprintf(R->first_error, sizeof R->first_error, "problem %s: %s", R->b->p[j->problem].id, error);
        eval_progress_add(&R->pg, 0, 0, 1); /* an error, never a wrong answer */
    } else if (rc == 0) {
        R->finished++;
        eval_progress_add(&R->pg, 1, right, 0);
    }
    pthread_mutex_unlock(&R->lock);
    return rc;
}

/* One job: its sample drawn on its endpoint, on the next live one after a failure, and written
 * as a record or, when every try failed, as an error record. Fails only locally. */
static int run_job(rrun *R, int k, s1c_err *err) {
    const rjob *j = &R->jobs[k];
    char failures[1000] = "";
    uint64_t tried = 0;
    int last = -1;
    double t0 = s1c_now();
    for (int e; !atomic_load(&R->failed) && (e = pick_endpoint(R, k, tried)) >= 0;) {
        tried |= 1ull << e;
        last = e;
        phase_out out = {0};
        int tries = 1;
        s1c_err re = {{0}};
        int rc = draw_sample(R->clients[e], R, j, &out, &tries, &re);
        if (rc == 0 || out.server_failed) book_request(R, e, rc == 0, re.msg);
        if (rc == 0) rc = write_job(R, j, &out, tries, e, t0, NULL, err);
        else if (!out.server_failed) *err = re; /* ours (memory): the run stops */
        phase_out_free(&out);
        if (rc == 0 || !out.server_failed) return rc;
        add_failure(failures, sizeof failures, re.msg);
        if (atomic_load(&R->stopped)) break; /* the servers are down: no use trying the others */
    }
    if (atomic_load(&R->failed)) return 0; /* stopping for another job's local failure: nothing to write */
    if (!failures[0]) snprintf(failures, sizeof failures, "no endpoint to try: all in back-off");
    return write_job(R, j, NULL, 1, last, t0, failures, err);
}

/* Takes jobs until none is left, a local failure (the run stops at once; what finished is in
 * samples.jsonl) or every endpoint failing (no new jobs; the ones in flight finish). */
static void *worker(void *arg) {
    rrun *R = arg;
    for (;;) {
        if (atomic_load(&R->failed) || atomic_load(&R->stopped)) break;
        int k = atomic_fetch_add(&R->next, 1);
        if (k >= R->n_jobs) break;
        s1c_err e;
        if (run_job(R, k, &e) != 0) {
            s1c_fail_prefix(&e, "problem %s", R->b->p[R->jobs[k].problem].id);
            pthread_mutex_lock(&R->lock);
            if (!atomic_exchange(&R->failed, 1)) R->first_err = e;
            pthread_mutex_unlock(&R->lock);
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- the run */

/* The jobs not yet in samples.jsonl (error records included: they are tried again); counts
 * what is done for the progress line, and the error records to retry. */
static int plan_jobs(rrun *R, int n_problems, const eval_done *done, int *total, int *done0, int *correct0, int *retry,
                     s1c_err *err) {
    const eval_opts *o = R->o;
    size_t cap = (size_t)n_problems * (size_t)R->n_sets * (size_t)o->samples;
    R->jobs = malloc((cap ? cap : 1) * sizeof *R->jobs);
    if (!R->jobs) return s1c_fail(err, "out of memory");
    /* problems innermost: a problem the servers always fail on comes up between the others, so
     * its failures never look like a fleet that is down (stop_after) */
    for (int s = 0; s < R->n_sets; s++)
        for (int k = 0; k < o->samples; k++)
            for (int i = 0; i < n_problems; i++) {
                const eval_setting *t = &R->sets[s];
                char *key = eval_sample_key(R->b->p[i].id, t->label, t->budget, t->waits, k);
                if (!key) return s1c_fail(err, "out of memory");
                bool ok = false, skip = eval_is_done(done, key, &ok);
                const eval_done_item *prev = skip ? NULL : eval_done_find(done, key);
                *retry += prev && prev->error;
                free(key);
                ++*total;
                if (skip) {
                    ++*done0;
                    *correct0 += ok;
                } else {
                    R->jobs[R->n_jobs++] = (rjob){i, s, k};
                }
            }
    return 0;
}

static int check_remote(const eval_remote *r, const eval_opts *o, s1c_err *err) {
    if (r->n_endpoints < 1) return s1c_fail(err, "eval: no --endpoint");
    if (r->n_endpoints > MAX_ENDPOINTS) return s1c_fail(err, "eval: at most %d endpoints", MAX_ENDPOINTS);
    if (!r->model || !*r->model) return s1c_fail(err, "eval: --endpoint needs --model NAME (the served model's name)");
    if (eval_check_method(o, err) != 0) return -1;
    for (int i = 0; i < o->n_budgets; i++)
        if (o->budgets[i] == S1C_BF_AUTO) return s1c_fail(err, "eval: --think-budgets auto needs a local model (the context length)");
    return 0;
}

/* After the workers: the run's outcome (see eval_run_remote). */
static int finish_run(rrun *R, s1c_err *err) {
    if (atomic_load(&R->failed)) {
        *err = R->first_err;
        return s1c_fail_prefix(err, "eval stopped (%d samples done are kept; run it again to continue)", R->finished);
    }
    if (atomic_load(&R->stopped)) {
        *err = R->stop_err;
        return s1c_fail(err, "%.850s; %d samples done are kept, %d recorded as errors, the rest not run: run the same command "
                             "again once the servers answer", R->stop_err.msg, R->finished, R->errors);
    }
    if (eval_summarize(R->o->out_dir, err) != 0) return -1;
    if (R->errors == 0) return 0;
    s1c_fail(err, "%d sample%s ended in error after every retry (%.700s); they are error records in samples.jsonl, counted "
                  "in no accuracy and never as wrong: run the same command again to retry them",
             R->errors, R->errors == 1 ? "" : "s", R->first_error);
    return R->errors;
}

int eval_run_remote(const eval_remote *r, const eval_bench *b, const eval_opts *o, s1c_err *err) {
    if (check_remote(r, o, err) != 0 || s1c_mkdir_p(o->out_dir, err) != 0) return -1;
    rrun R = {.r = r, .b = b, .o = o};
    pthread_mutex_init(&R.lock, NULL);
    pthread_mutex_init(&R.health, NULL);
    int n_problems = o->limit > 0 && o->limit < b->n ? o->limit : b->n, rc = -1, total = 0, done0 = 0, correct0 = 0, retry = 0;
    char *path = s1c_path_join(o->out_dir, "samples.jsonl");
    eval_done done = {0};
    R.clients = calloc((size_t)r->n_endpoints, sizeof *R.clients);
    R.eps = calloc((size_t)r->n_endpoints, sizeof *R.eps);
    if (!path || !R.clients || !R.eps) { s1c_fail(err, "out of memory"); goto out; }
    for (int e = 0; e < r->n_endpoints; e++) {
        net_client_opts co = {.base_url = r->endpoints[e], .api_key = r->api_key, .timeout_s = r->timeout_s,
                              .max_retries = r->retries, .backoff_s = r->retry_backoff_s};
        if (net_client_new(&R.clients[e], &co, err) != 0) goto out;
    }
    if (eval_make_settings(o, &R.sets, &R.n_sets, err) != 0 || eval_load_done(path, &done, err) != 0 ||
        plan_jobs(&R, n_problems, &done, &total, &done0, &correct0, &retry, err) != 0)
        goto out;
    R.f = fopen(path, "a");
    if (!R.f) { s1c_fail(err, "%s: cannot open for appending", path); goto out; }
    if (!o->quiet) {
        char again[64] = "";
        if (retry) snprintf(again, sizeof again, ", %d error record%s retried", retry, retry == 1 ? "" : "s");
        fprintf(stderr, "[eval] %s (%s): %d problems x %d settings x %d samples; %d to run (%d already in %s%s) on %d endpoint(s), "
                "%d at a time (%s budget forcing)\n", b->name, eval_method_name(o->method), n_problems, R.n_sets, o->samples,
                R.n_jobs, done0, path, again, r->n_endpoints, r->concurrency, r->server_bf ? "server-side" : "client-side");
    }
    eval_progress_start(&R.pg, total, done0, correct0, o->quiet);
    int nt = r->concurrency < 1 ? 1 : r->concurrency > 1024 ? 1024 : r->concurrency;
    if (nt > R.n_jobs) nt = R.n_jobs > 0 ? R.n_jobs : 1;
    pthread_t *th = calloc((size_t)nt, sizeof *th);
    int started = 0;
    for (; th && started < nt; started++)
        if (pthread_create(&th[started], NULL, worker, &R) != 0) break;
    if (started == 0) worker(&R); /* no threads to be had: run the jobs on this one */
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    free(th);
    eval_progress_end(&R.pg);
    fclose(R.f);
    R.f = NULL;
    rc = finish_run(&R, err);
out:
    if (R.f) fclose(R.f);
    for (int e = 0; R.clients && e < r->n_endpoints; e++) net_client_free(R.clients[e]);
    eval_done_free(&done);
    free(R.sets);
    free(R.clients);
    free(R.eps);
    free(R.jobs);
    free(path);
    pthread_mutex_destroy(&R.lock);
    pthread_mutex_destroy(&R.health);
    return rc;
}
