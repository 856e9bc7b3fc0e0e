/* Evaluation against OpenAI-compatible servers (vLLM, llama.cpp, SGLang, s1c serve): every
 * problem × setting × sample becomes one job; `concurrency` worker threads take jobs in order
 * and send each to endpoint (job number mod the number of endpoints), so a fleet of servers
 * shares the work. Records go to the same samples.jsonl as local runs (resumable, graded the
 * same way, summarized by the same code).
 *
 * Two ways to force budgets:
 *   server  s1c serve applies SPEC.md §8 itself: one chat request per sample carrying
 *           max_thinking_tokens, num_waits, ... and returning its exact accounting.
 *   client  any server: s1's loop through /v1/completions on the rendered prompt — think with
 *           max_tokens = what is left of the budget and the end-of-thinking delimiter as a stop
 *           string; on a natural end with Waits left append the ignore string and continue;
 *           at the budget append "\n<think_end>\n<answer_prefix>"; then the answer phase.
 *           Token counts come from the server's usage (an ignore string's from the growth of
 *           prompt_tokens), so they are the server tokenizer's. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"
#include "s1c/net.h"

typedef struct rjob {
    int problem, budget, waits, sample;
} rjob;

typedef struct rrun {
    const eval_remote *r;
    const eval_bench *b;
    const eval_opts *o;
    net_client **clients;
    char **prompts; /* client mode: rendered prompt per problem */
    rjob *jobs;
    int n_jobs;
    atomic_int next;
    atomic_int failed;
    pthread_mutex_t lock; /* samples.jsonl, progress, first error */
    FILE *f;
    int finished, correct;
    double t0;
    s1c_err first_err;
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
} phase_out;

static void phase_out_free(phase_out *p) {
    free(p->thinking.s);
    free(p->answer.s);
    free(p->full.s);
}

static net_completion_params sampling(const eval_opts *o, int sample, int max_tokens, const char *const *stop, int n_stop) {
    net_completion_params p = {.temperature = o->sampler.temperature, .top_p = o->sampler.top_p, .max_tokens = max_tokens,
                               .seed = -1, .stop = stop, .n_stop = n_stop};
    /* every sample its own seed, reproducible run to run */
    if (o->sampler.temperature > 0) p.seed = (long long)(o->sampler.seed + (uint64_t)sample);
    return p;
}

static int complete(net_client *c, const char *model, const str *prompt, const net_completion_params *p, net_completion *out,
                    s1c_err *err) {
    if (net_complete(c, model, prompt->s, p, out, err) != 0) return -1;
    if (out->completion_tokens < 0 || out->prompt_tokens < 0) {
        net_completion_free(out);
        return s1c_fail(err, "%s: the server reports no token usage (needed to count thinking tokens)", net_client_url(c));
    }
    return 0;
}

/* The thinking phase; on return text holds the prompt plus everything up to the answer phase. */
static int think(net_client *c, const rrun *R, const rjob *j, str *text, phase_out *out, s1c_err *err) {
    const s1c_bf_opts *bf = &R->o->bf;
    const char *stop[] = {bf->think_end, "<|im_end|>", "<|endoftext|>"};
    int budget = j->budget, cap = R->r->max_tokens, wait_est = (int)(strlen(bf->wait_str) + 3) / 4;
    long last_prompt = -1, last_completion = 0;
    bool pending_wait = false;
    for (;;) {
        int left = budget >= 0 ? budget - out->thinking_tokens : cap - out->thinking_tokens;
        if (left <= 0) {
            out->think_end_reason = "budget";
            break;
        }
        net_completion_params p = sampling(R->o, j->sample, left, stop, 3);
        net_completion res;
        if (complete(c, R->r->model, text, &p, &res, err) != 0) return -1;
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
        if (hit_limit) {
            out->think_end_reason = budget >= 0 ? "budget" : "answer_limit";
            break;
        }
        /* a natural end of thinking: replace it by the ignore string while Waits are left */
        bool want_wait = out->waits < j->waits || out->thinking_tokens < bf->min_thinking_tokens;
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

static int client_sample(net_client *c, const rrun *R, const rjob *j, phase_out *out, s1c_err *err) {
    str text = {0};
    int rc = str_cat(&text, R->prompts[j->problem]) ? s1c_fail(err, "out of memory") : 0;
    size_t think_from = text.len;
    if (rc == 0) rc = think(c, R, j, &text, out, err);
    if (rc == 0) {
        const char *stop[] = {"<|im_end|>", "<|endoftext|>"};
        int amax = R->o->max_answer_tokens > 0 ? R->o->max_answer_tokens : R->r->max_tokens;
        net_completion_params p = sampling(R->o, j->sample, amax, stop, 2);
        net_completion res;
        rc = complete(c, R->r->model, &text, &p, &res, err);
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
static char *bf_fields(const rrun *R, const rjob *j) {
    const s1c_bf_opts *bf = &R->o->bf;
    cJSON *x = cJSON_CreateObject();
    if (j->budget >= 0) cJSON_AddNumberToObject(x, "max_thinking_tokens", j->budget);
    cJSON_AddNumberToObject(x, "num_waits", j->waits);
    if (bf->min_thinking_tokens > 0) cJSON_AddNumberToObject(x, "min_thinking_tokens", bf->min_thinking_tokens);
    cJSON_AddStringToObject(x, "wait_str", bf->wait_str);
    cJSON_AddStringToObject(x, "answer_prefix", bf->answer_prefix);
    cJSON_AddStringToObject(x, "think_start", bf->think_start);
    cJSON_AddStringToObject(x, "think_end", bf->think_end);
    if (R->o->max_answer_tokens > 0) cJSON_AddNumberToObject(x, "max_answer_tokens", R->o->max_answer_tokens);
    if (R->o->sampler.top_p > 0 && R->o->sampler.top_p < 1) cJSON_AddNumberToObject(x, "top_p", R->o->sampler.top_p);
    if (R->o->sampler.temperature > 0) cJSON_AddNumberToObject(x, "seed", (double)(R->o->sampler.seed + (uint64_t)j->sample));
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

static int server_sample(net_client *c, const rrun *R, const rjob *j, phase_out *out, s1c_err *err) {
    char *extra = bf_fields(R, j);
    net_message msg = {"user", R->b->p[j->problem].question};
    /* no max_tokens: the budget fields bound the phases, the server its context */
    net_chat_params p = {.temperature = R->o->sampler.temperature, .extra_json = extra};
    net_chat_result res;
    int rc = extra ? net_chat(c, R->r->model, &msg, 1, &p, &res, err) : s1c_fail(err, "out of memory");
    free(extra);
    if (rc != 0) return -1;
    cJSON *bf = res.budget_forcing ? cJSON_Parse(res.budget_forcing) : NULL;
    if (!bf) {
        net_chat_result_free(&res);
        return s1c_fail(err, "%s: the server does not apply budget forcing itself (no budget_forcing in its answer; "
                             "use --remote-bf client)", net_client_url(c));
    }
    out->thinking_tokens = json_int(bf, "thinking_tokens", 0);
    out->answer_tokens = json_int(bf, "answer_tokens", 0);
    out->waits = json_int(bf, "waits", 0);
    out->stop_reason = reason_name(bf, "stop_reason", "answer_end");
    out->think_end_reason = reason_name(bf, "think_end_reason", "none");
    cJSON_Delete(bf);
    const char *thinking = res.reasoning ? res.reasoning : "";
    if (str_cat(&out->thinking, thinking) || str_cat(&out->answer, res.content) || str_cat(&out->full, thinking) ||
        str_cat(&out->full, "\n") || str_cat(&out->full, R->o->bf.think_end) || str_cat(&out->full, "\n") ||
        str_cat(&out->full, res.content))
        rc = s1c_fail(err, "out of memory");
    net_chat_result_free(&res);
    return rc;
}

/* ---------------------------------------------------------------- the workers */

static void progress(rrun *R) {
    static double last;
    double now = s1c_now();
    if (R->o->quiet || (now - last < 2.0 && R->finished < R->n_jobs)) return;
    last = now;
    double el = now - R->t0, eta = R->finished ? el / R->finished * (R->n_jobs - R->finished) : 0;
    fprintf(stderr, "[eval] %d/%d samples, accuracy so far %.3f, %.0f s elapsed, ETA %.0f s\n", R->finished, R->n_jobs,
            R->finished ? (double)R->correct / R->finished : 0.0, el, eta);
}

static int run_job(rrun *R, int k, s1c_err *err) {
    const rjob *j = &R->jobs[k];
    int e = k % R->r->n_endpoints;
    net_client *c = R->clients[e];
    phase_out out = {.stop_reason = "answer_end", .think_end_reason = "none"};
    double t = s1c_now();
    int rc = R->r->server_bf ? server_sample(c, R, j, &out, err) : client_sample(c, R, j, &out, err);
    if (rc == 0) {
        eval_record rec = {.budget = j->budget, .num_waits = j->waits, .sample = j->sample,
                           .thinking = out.thinking.s ? out.thinking.s : "", .answer = out.answer.s ? out.answer.s : "",
                           .full = out.full.s, .thinking_tokens = out.thinking_tokens, .answer_tokens = out.answer_tokens,
                           .waits = out.waits, .stop_reason = out.stop_reason, .think_end_reason = out.think_end_reason,
                           .endpoint = R->r->endpoints[e], .decode_s = s1c_now() - t};
        pthread_mutex_lock(&R->lock);
        rc = eval_write_record(R->f, &R->b->p[j->problem], &rec, &R->correct, err);
        R->finished++;
        progress(R);
        pthread_mutex_unlock(&R->lock);
    } else {
        s1c_fail_prefix(err, "problem %s", R->b->p[j->problem].id);
    }
    phase_out_free(&out);
    return rc;
}

/* Takes jobs until none is left or a job failed (a failed request has used up its retries:
 * the run stops, and what finished is in samples.jsonl for the next attempt). */
static void *worker(void *arg) {
    rrun *R = arg;
    for (;;) {
        if (atomic_load(&R->failed)) break;
        int k = atomic_fetch_add(&R->next, 1);
        if (k >= R->n_jobs) break;
        s1c_err e;
        if (run_job(R, k, &e) != 0) {
            pthread_mutex_lock(&R->lock);
            if (!atomic_exchange(&R->failed, 1)) R->first_err = e;
            pthread_mutex_unlock(&R->lock);
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- the run */

/* Prompts for the client loop: the chat template's generation prompt + the thinking start. */
static int render_prompts(rrun *R, int n_problems, s1c_err *err) {
    R->prompts = calloc((size_t)n_problems, sizeof *R->prompts);
    if (!R->prompts) return s1c_fail(err, "out of memory");
    for (int i = 0; i < n_problems; i++)
        if (!(R->prompts[i] = eval_prompt_text(R->r->chat_template, R->b->p[i].question, R->o->bf.think_start, err))) return -1;
    return 0;
}

/* The jobs not yet in samples.jsonl. */
static int plan_jobs(rrun *R, int n_problems, char **done, int n_done, s1c_err *err) {
    const eval_opts *o = R->o;
    size_t cap = (size_t)n_problems * (size_t)o->n_budgets * (size_t)o->n_waits * (size_t)o->samples;
    R->jobs = malloc((cap ? cap : 1) * sizeof *R->jobs);
    if (!R->jobs) return s1c_fail(err, "out of memory");
    for (int i = 0; i < n_problems; i++)
        for (int s = 0; s < o->n_budgets * o->n_waits; s++)
            for (int k = 0; k < o->samples; k++) {
                rjob j = {i, o->budgets[s / o->n_waits], o->waits[s % o->n_waits], k};
                char *key = eval_sample_key(R->b->p[i].id, "budget-forcing", j.budget, j.waits, k);
                if (!key) return s1c_fail(err, "out of memory");
                bool skip = eval_is_done(done, n_done, key);
                free(key);
                if (!skip) R->jobs[R->n_jobs++] = j;
            }
    return 0;
}

static int check_remote(const eval_remote *r, const eval_opts *o, s1c_err *err) {
    if (r->n_endpoints < 1) return s1c_fail(err, "eval: no --endpoint");
    if (!r->model || !*r->model) return s1c_fail(err, "eval: --endpoint needs --model NAME (the served model's name)");
    if (o->samples < 1 || o->n_budgets < 1 || o->n_waits < 1) return s1c_fail(err, "eval: no settings to run");
    if (o->method != EVAL_BUDGET_FORCING) return s1c_fail(err, "eval: --endpoint runs --method budget-forcing only (for now)");
    for (int i = 0; i < o->n_budgets; i++)
        if (o->budgets[i] == S1C_BF_AUTO) return s1c_fail(err, "eval: --think-budgets auto needs a local model (the context length)");
    return 0;
}

int eval_run_remote(const eval_remote *r, const eval_bench *b, const eval_opts *o, s1c_err *err) {
    if (check_remote(r, o, err) != 0 || s1c_mkdir_p(o->out_dir, err) != 0) return -1;
    rrun R = {.r = r, .b = b, .o = o};
    pthread_mutex_init(&R.lock, NULL);
    int n_problems = o->limit > 0 && o->limit < b->n ? o->limit : b->n, n_done = 0, rc = -1;
    char *path = s1c_path_join(o->out_dir, "samples.jsonl"), **done = NULL;
    R.clients = calloc((size_t)r->n_endpoints, sizeof *R.clients);
    if (!path || !R.clients) { s1c_fail(err, "out of memory"); goto out; }
    for (int e = 0; e < r->n_endpoints; e++) {
        net_client_opts co = {.base_url = r->endpoints[e], .api_key = r->api_key, .timeout_s = r->timeout_s, .max_retries = -1};
        if (net_client_new(&R.clients[e], &co, err) != 0) goto out;
    }
    if ((!r->server_bf && render_prompts(&R, n_problems, err) != 0) || eval_load_done(path, &done, &n_done, err) != 0 ||
        plan_jobs(&R, n_problems, done, n_done, err) != 0)
        goto out;
    R.f = fopen(path, "a");
    if (!R.f) { s1c_fail(err, "%s: cannot open for appending", path); goto out; }
    if (!o->quiet)
        fprintf(stderr, "[eval] %s: %d problems x %d settings x %d samples; %d to run on %d endpoint(s), %d at a time (%s budget forcing)\n",
                b->name, n_problems, o->n_budgets * o->n_waits, o->samples, R.n_jobs, r->n_endpoints, r->concurrency,
                r->server_bf ? "server-side" : "client-side");
    R.t0 = s1c_now();
    int nt = r->concurrency < 1 ? 1 : r->concurrency > 1024 ? 1024 : r->concurrency;
    if (nt > R.n_jobs) nt = R.n_jobs > 0 ? R.n_jobs : 1;
    pthread_t *th = calloc((size_t)nt, sizeof *th);
    int started = 0;
    for (; th && started < nt; started++)
        if (pthread_create(&th[started], NULL, worker, &R) != 0) break;
    if (started == 0) worker(&R); /* no threads to be had: run the jobs on this one */
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    free(th);
    fclose(R.f);
    R.f = NULL;
    if (atomic_load(&R.failed)) {
        *err = R.first_err;
        s1c_fail_prefix(err, "eval stopped (%d samples done are kept; run it again to continue)", R.finished);
        goto out;
    }
    rc = eval_summarize(o->out_dir, err);
out:
    if (R.f) fclose(R.f);
    for (int e = 0; R.clients && e < r->n_endpoints; e++) net_client_free(R.clients[e]);
    for (int i = 0; R.prompts && i < n_problems; i++) free(R.prompts[i]);
    for (int i = 0; i < n_done; i++) free(done[i]);
    free(done);
    free(R.prompts);
    free(R.clients);
    free(R.jobs);
    free(path);
    pthread_mutex_destroy(&R.lock);
    return rc;
}
