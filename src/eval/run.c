/* An evaluation run: every setting (thinking budget × number of waits) × problem × sample
 * goes through one engine with the budget-forcing controller; each finished sample is
 * appended to DIR/samples.jsonl at once (a killed run resumes without redoing them); the
 * summary and reports are then computed from that file alone. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval_internal.h"
#include "s1c/grade.h"

typedef struct job {
    int problem, budget, waits;
    int root;           /* engine id of the first sample */
    s1c_bf_sweep_state st0; /* starts with the controller's state; sweeps use the rest */
} job;

/* ------------------------------------------------------------------ resuming */

char *eval_sample_key(const char *id, int budget, int waits, int sample) {
    size_t n = strlen(id) + 48;
    char *k = malloc(n);
    if (k) snprintf(k, n, "%s|%d|%d|%d", id, budget, waits, sample);
    return k;
}

static int cmp_keys(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Keys of the samples already in samples.jsonl; a torn last line (a killed run) is cut off. */
int eval_load_done(const char *path, char ***keys, int *n, s1c_err *err) {
    *keys = NULL;
    *n = 0;
    if (!s1c_file_exists(path)) return 0;
    char *text = NULL;
    size_t len = 0;
    if (s1c_read_file(path, 1u << 31, &text, &len, err) != 0) return -1;
    size_t good = 0;
    int cap = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        if (!nl) break; /* no newline: the line was being written when the run died */
        size_t end = (size_t)(nl - text);
        cJSON *o = cJSON_ParseWithLength(text + i, end - i);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        if (cJSON_IsString(id)) {
            if (*n == cap) { cap = cap ? cap * 2 : 256; char **nk = realloc(*keys, (size_t)cap * sizeof *nk); if (!nk) { cJSON_Delete(o); free(text); return s1c_fail(err, "out of memory"); } *keys = nk; }
            (*keys)[(*n)++] = eval_sample_key(id->valuestring, eval_int_field(o, "max_thinking_tokens"), eval_int_field(o, "num_waits"),
                                         eval_int_field(o, "sample"));
        }
        cJSON_Delete(o);
        good = end + 1;
        i = end + 1;
    }
    free(text);
    for (int i = 0; i < *n; i++)
        if (!(*keys)[i]) return s1c_fail(err, "out of memory");
    if (*n > 1) qsort(*keys, (size_t)*n, sizeof **keys, cmp_keys);
    if (good < len && truncate(path, (off_t)good) != 0) return s1c_fail(err, "%s: cannot cut the torn last line", path);
    return 0;
}

/* keys are sorted once after loading: a resumed sweep checks every sample in O(log n) */
bool eval_is_done(char **keys, int n, const char *key) {
    return n > 0 && bsearch(&key, keys, (size_t)n, sizeof *keys, cmp_keys) != NULL;
}

/* ------------------------------------------------------------------ one sample's record */


int eval_write_record(FILE *f, const eval_problem *p, const eval_record *r, int *n_correct, s1c_err *err) {
    /* extraction sees the whole output, thinking then answer, as s1's harness did */
    size_t all_len = r->full ? strlen(r->full) + 1 : strlen(r->thinking) + strlen(r->answer) + 2;
    char *all = malloc(all_len);
    if (!all) return s1c_fail(err, "out of memory");
    if (r->full) memcpy(all, r->full, all_len);
    else snprintf(all, all_len, "%s\n%s", r->thinking, r->answer);
    grade_extraction ex = {0};
    int rc = grade_extract(all, strlen(all), GRADE_EX_S1_MATH, &ex, err);
    if (rc == 0) {
        bool unsure, ok = eval_is_correct(p->gold, ex.answer, &unsure);
        *n_correct += ok; /* for the running accuracy of the progress lines */
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", p->id);
        cJSON_AddStringToObject(o, "method", "budget-forcing");
        cJSON_AddNumberToObject(o, "max_thinking_tokens", r->budget);
        cJSON_AddNumberToObject(o, "num_waits", r->num_waits);
        cJSON_AddNumberToObject(o, "sample", r->sample);
        cJSON_AddStringToObject(o, "prompt", p->question);
        cJSON_AddStringToObject(o, "thinking", r->thinking);
        cJSON_AddStringToObject(o, "answer", r->answer);
        cJSON_AddNumberToObject(o, "thinking_tokens", r->thinking_tokens);
        cJSON_AddNumberToObject(o, "answer_tokens", r->answer_tokens);
        cJSON_AddNumberToObject(o, "waits", r->waits);
        cJSON_AddStringToObject(o, "stop_reason", r->stop_reason);
        cJSON_AddStringToObject(o, "think_end_reason", r->think_end_reason);
        cJSON_AddStringToObject(o, "extracted", ex.answer);
        cJSON_AddStringToObject(o, "gold", p->gold);
        cJSON_AddBoolToObject(o, "correct", ok);
        if (unsure) cJSON_AddBoolToObject(o, "unsure", 1);
        if (r->endpoint) cJSON_AddStringToObject(o, "endpoint", r->endpoint);
        cJSON *meta = p->meta ? cJSON_Parse(p->meta) : NULL;
        if (meta) cJSON_AddItemToObject(o, "problem", meta);
        cJSON_AddNumberToObject(o, "prefill_s", r->prefill_s);
        cJSON_AddNumberToObject(o, "decode_s", r->decode_s);
        char *line = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!line || fprintf(f, "%s\n", line) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) rc = s1c_fail(err, "samples.jsonl: write failed (disk full?)");
        free(line);
    }
    grade_extraction_free(&ex);
    free(all);
    return rc;
}

/* One engine result as a record. */
static int write_sample(FILE *f, const eval_problem *p, const job *j, int sample, const s1c_seq_result *r,
                        const s1c_tokenizer *tok, const int32_t *prompt_end, int *n_correct, s1c_err *err) {
    const s1c_bf_state *st = r->state;
    int prev = prompt_end ? *prompt_end : -1;
    int think_end = st->think_end_at >= 0 ? st->think_end_at : r->n_tokens;
    char *all = s1c_tok_decode_range(tok, r->tokens, 0, r->n_tokens, prev, NULL);
    char *thinking = s1c_tok_decode_range(tok, r->tokens, 0, think_end, prev, NULL);
    char *answer = st->answer_at >= 0 ? s1c_tok_decode_range(tok, r->tokens, st->answer_at, r->n_tokens, prev, NULL) : strdup("");
    int rc;
    if (!all || !thinking || !answer) {
        rc = s1c_fail(err, "out of memory");
    } else {
        eval_record rec = {.budget = j->budget, .num_waits = j->waits, .sample = sample, .thinking = thinking, .full = all,
                           .answer = answer, .thinking_tokens = st->thinking_tokens, .answer_tokens = st->answer_tokens,
                           .waits = st->waits,
                           .stop_reason = s1c_stop_reason_name(s1c_bf_stop_reason(st, r->stop_reason)),
                           .think_end_reason = st->think_end_reason >= 0 ? s1c_stop_reason_name(st->think_end_reason) : "none",
                           .prefill_s = r->prefill_s, .decode_s = r->decode_s};
        rc = eval_write_record(f, p, &rec, n_correct, err);
    }
    free(all);
    free(thinking);
    free(answer);
    return rc;
}

/* ------------------------------------------------------------------ the run */

/* The largest budget of the sweep (no budget counts as the largest). */
static int largest_budget(const eval_opts *o) {
    int m = o->budgets[0];
    for (int i = 1; i < o->n_budgets; i++)
        if (m >= 0 && (o->budgets[i] < 0 || o->budgets[i] > m)) m = o->budgets[i];
    return m;
}

/* Budgets share one trajectory (DESIGN.md, "Sweeps share work") when decoding is greedy: then the
 * thinking under a budget is a prefix of the thinking under a larger one. */
static bool sweep_as_forks(const eval_opts *o) {
    if (o->no_sweep_forks || o->n_budgets < 2 || o->samples != 1 || o->sampler.temperature > 0) return false;
    if (o->bf.compat != S1C_BF_NORMATIVE || o->bf.rejection || o->max_answer_tokens == 0 || o->n_budgets > S1C_BF_SWEEP_MAX + 1) return false;
    for (int i = 0; i < o->n_budgets; i++)
        if (o->budgets[i] == S1C_BF_AUTO) return false;
    return true;
}

static void progress(const eval_opts *o, int done, int total, int correct, double t0) {
    static double last;
    double now = s1c_now();
    if (o->quiet || (now - last < 2.0 && done < total)) return;
    last = now;
    double el = now - t0, eta = done > 0 ? el / done * (total - done) : 0;
    fprintf(stderr, "[eval] %d/%d samples, accuracy so far %.3f, %.0f s elapsed, ETA %.0f s\n", done, total,
            done ? (double)correct / done : 0.0, el, eta);
}

int eval_run(const s1c_model *m, const s1c_tokenizer *tok, const eval_bench *b, const eval_opts *o, s1c_err *err) {
    if (o->samples < 1) return s1c_fail(err, "eval: --samples must be at least 1");
    if (o->n_budgets < 1 || o->n_waits < 1) return s1c_fail(err, "eval: no settings to run");
    if (s1c_mkdir_p(o->out_dir, err) != 0) return -1;
    char *path = s1c_path_join(o->out_dir, "samples.jsonl");
    char **done = NULL;
    int n_done = 0, rc = -1, n_problems = o->limit > 0 && o->limit < b->n ? o->limit : b->n;
    s1c_engine *e = NULL;
    s1c_bf **bfs = calloc((size_t)(o->n_budgets * o->n_waits), sizeof *bfs);
    job *jobs = calloc((size_t)n_problems * (size_t)(o->n_budgets * o->n_waits), sizeof *jobs);
    int32_t **prompts = calloc((size_t)n_problems, sizeof *prompts);
    int *n_prompt = calloc((size_t)n_problems, sizeof *n_prompt);
    FILE *f = NULL;
    if (!path || !bfs || !jobs || !prompts || !n_prompt) { s1c_fail(err, "out of memory"); goto out; }
    if (eval_load_done(path, &done, &n_done, err) != 0) goto out;
    f = fopen(path, "a");
    if (!f) { s1c_fail(err, "%s: cannot open for appending", path); goto out; }
    s1c_engine_params ep = s1c_engine_defaults();
    if (s1c_engine_new(&e, m, &ep, err) != 0) goto out;
    int ctx = s1c_model_config(m)->max_seq_len, tmpl = s1c_tok_chat_template(tok);
    if (tmpl < 0) { s1c_fail(err, "eval: the model has no chat template s1c knows"); goto out; }
    /* prompts in s1's layout: the chat template's generation prompt + the thinking start */
    for (int i = 0; i < n_problems; i++) {
        s1c_chat_msg msg = {"user", b->p[i].question};
        char *text = s1c_chat_render(tmpl, &msg, 1, true, err);
        if (!text) goto out;
        size_t tl = strlen(text), sl = strlen(o->bf.think_start);
        char *full = malloc(tl + sl + 1);
        if (!full) { free(text); s1c_fail(err, "out of memory"); goto out; }
        memcpy(full, text, tl);
        bool opened = tl > sl && !strncmp(text + tl - sl - 1, o->bf.think_start, sl);
        memcpy(full + tl, opened ? "" : o->bf.think_start, opened ? 1 : sl + 1);
        free(text);
        int r = s1c_tok_encode_ex(tok, full, strlen(full), S1C_ENC_SPECIAL, &prompts[i], &n_prompt[i], err);
        free(full);
        if (r != 0) goto out;
    }
    int n_jobs = 0, total = 0;
    bool sweep = sweep_as_forks(o);
    for (int s = 0; s < o->n_budgets * o->n_waits; s++) {
        s1c_bf_opts bo = o->bf;
        bo.max_thinking_tokens = o->budgets[s / o->n_waits];
        bo.num_waits = o->waits[s % o->n_waits];
        bo.max_answer_tokens = o->max_answer_tokens;
        if (s1c_bf_new(&bfs[s], &bo, tok, ctx, NULL, err) != 0) goto out;
        /* a sweep runs one sequence per problem and number of waits, under the largest budget */
        if (sweep && bo.max_thinking_tokens != largest_budget(o)) continue;
        for (int i = 0; i < n_problems; i++) {
            bool finished = true; /* resumed: every sample of this problem and setting is in samples.jsonl */
            for (int q = 0; q < (sweep ? o->n_budgets : 1) && finished; q++)
                for (int k = 0; k < o->samples && finished; k++) {
                    char *key = eval_sample_key(b->p[i].id, sweep ? o->budgets[q] : bo.max_thinking_tokens, bo.num_waits, k);
                    finished = key && eval_is_done(done, n_done, key);
                    free(key);
                }
            if (finished) continue;
            job *j = &jobs[n_jobs++];
            *j = (job){.problem = i, .budget = bo.max_thinking_tokens, .waits = bo.num_waits};
            j->st0.bf = s1c_bf_state_init(bfs[s], n_prompt[i]);
            s1c_seq_params sp = {.prompt = prompts[i], .n_prompt = n_prompt[i], .max_new_tokens = -1, .sampler = o->sampler,
                                 .hook = s1c_bf_hook, .user = bfs[s], .state = &j->st0.bf, .state_size = sizeof j->st0.bf, .n_samples = o->samples};
            if (sweep) {
                for (int q = 0; q < o->n_budgets; q++)
                    if (o->budgets[q] != bo.max_thinking_tokens && j->st0.n_pending < S1C_BF_SWEEP_MAX) j->st0.pending[j->st0.n_pending++] = o->budgets[q];
                sp.hook = s1c_bf_sweep_hook;
                sp.state = &j->st0;
                sp.state_size = sizeof j->st0;
            }
            j->root = s1c_engine_submit(e, &sp, err);
            if (j->root < 0) { s1c_fail_prefix(err, "problem %s", b->p[i].id); goto out; }
            total += o->samples * (sweep ? o->n_budgets : 1);
        }
    }
    if (!o->quiet) fprintf(stderr, "[eval] %s: %d problems x %d settings x %d samples; %d samples to run (%d already in %s)\n", b->name,
                           n_problems, o->n_budgets * o->n_waits, o->samples, total, n_done, path);
    double t0 = s1c_now();
    int finished = 0, correct = 0;
    for (int live = 1; live > 0;) {
        live = s1c_engine_step(e, err);
        if (live < 0) goto out;
        s1c_seq_result r;
        while (s1c_engine_poll(e, &r)) {
            int root = r.parent >= 0 ? r.parent : r.id;
            /* roots were submitted first, in job order, so their ids are 0..n_jobs-1 */
            const job *j = root >= 0 && root < n_jobs && jobs[root].root == root ? &jobs[root] : NULL;
            for (int k = 0; k < n_jobs && !j; k++)
                if (jobs[k].root == root) j = &jobs[k];
            /* the budgets this result stands for: its own, and in a sweep those that never forked */
            const s1c_bf_sweep_state *ss = r.state;
            int budgets[S1C_BF_SWEEP_MAX + 1], nb = 0, w = 0;
            budgets[nb++] = sweep ? ss->bf.max_thinking : j ? j->budget : 0;
            for (int q = 0; sweep && q < ss->n_pending; q++) budgets[nb++] = ss->pending[q];
            for (int q = 0; q < nb && j && w == 0; q++) {
                job jb = *j;
                jb.budget = budgets[q];
                char *key = eval_sample_key(b->p[j->problem].id, jb.budget, j->waits, r.sample);
                bool skip = !key || eval_is_done(done, n_done, key); /* written by an earlier, killed run */
                free(key);
                if (!skip) w = write_sample(f, &b->p[j->problem], &jb, r.sample, &r, tok, &prompts[j->problem][n_prompt[j->problem] - 1], &correct, err);
                finished++;
            }
            s1c_seq_result_free(&r);
            if (w != 0) goto out;
            progress(o, finished, total, correct, t0);
        }
    }
    fclose(f);
    f = NULL;
    rc = eval_summarize(o->out_dir, err);
out:
    if (f) fclose(f);
    s1c_engine_free(e);
    for (int s = 0; bfs && s < o->n_budgets * o->n_waits; s++) s1c_bf_free(bfs[s]);
    for (int i = 0; prompts && i < n_problems; i++) free(prompts[i]);
    for (int i = 0; i < n_done; i++) free(done[i]);
    free(done); free(bfs); free(jobs); free(prompts); free(n_prompt); free(path);
    return rc;
}
