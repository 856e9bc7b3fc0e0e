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

/* One setting of the sweep: what the controller and the prompt do. */
typedef struct setting {
    int budget, waits;     /* as recorded (budget: the N a conditional prompt names) */
    int control;           /* s1c_control: the question's suffix (none for budget forcing) */
    const char *control_name; /* class-conditional: "short" / "long", else NULL */
    char label[96];        /* method[:control], part of each sample's key */
    s1c_bf *bf;
} setting;

typedef struct job {
    int problem, setting, budget, waits;
    int root;           /* engine id of the first sample */
    int tries;          /* rejection sampling: draws so far */
    s1c_bf_sweep_state st0; /* starts with the controller's state; sweeps use the rest */
} job;

/* ------------------------------------------------------------------ resuming */

char *eval_sample_key(const char *id, const char *label, int budget, int waits, int sample) {
    size_t n = strlen(id) + strlen(label) + 48;
    char *k = malloc(n);
    if (k) snprintf(k, n, "%s|%s|%d|%d|%d", id, label, budget, waits, sample);
    return k;
}

static const char *const method_names[EVAL_N_METHODS] = {"budget-forcing", "token-conditional", "step-conditional",
                                                         "class-conditional", "rejection"};

const char *eval_method_name(int m) { return m >= 0 && m < EVAL_N_METHODS ? method_names[m] : "?"; }

int eval_method_from_name(const char *name) {
    for (int i = 0; i < EVAL_N_METHODS; i++)
        if (!strcmp(name, method_names[i])) return i;
    return -1;
}

void eval_setting_label(char *buf, size_t n, const char *method, const char *control) {
    if (control && *control) snprintf(buf, n, "%s:%s", method, control);
    else snprintf(buf, n, "%s", method);
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
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "method"), *c = cJSON_GetObjectItemCaseSensitive(o, "class");
            char label[96];
            eval_setting_label(label, sizeof label, cJSON_IsString(m) ? m->valuestring : "budget-forcing",
                               cJSON_IsString(c) ? c->valuestring : NULL);
            (*keys)[(*n)++] = eval_sample_key(id->valuestring, label, eval_int_field(o, "max_thinking_tokens"),
                                              eval_int_field(o, "num_waits"), eval_int_field(o, "sample"));
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
        cJSON_AddStringToObject(o, "method", r->method ? r->method : "budget-forcing");
        if (r->control) cJSON_AddStringToObject(o, "class", r->control);
        if (r->tries > 1) cJSON_AddNumberToObject(o, "tries", r->tries);
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
static int write_sample(FILE *f, const eval_problem *p, const job *j, const setting *st_, int method, int sample,
                        const s1c_seq_result *r, const s1c_tokenizer *tok, const int32_t *prompt_end, int *n_correct,
                        s1c_err *err) {
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
                           .prefill_s = r->prefill_s, .decode_s = r->decode_s, .method = eval_method_name(method),
                           .control = st_->control_name, .tries = j->tries};
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
    if (o->method != EVAL_BUDGET_FORCING) return false;
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

/* The sweep's settings: budgets x waits (class-conditional: short, long x waits). */
static int make_settings(const eval_opts *o, const s1c_tokenizer *tok, int ctx, setting **out, int *n_out, s1c_err *err) {
    bool classes = o->method == EVAL_CLASS_CONDITIONAL;
    int nb = classes ? 2 : o->n_budgets, n = nb * o->n_waits;
    setting *st = calloc((size_t)n, sizeof *st);
    if (!st) return s1c_fail(err, "out of memory");
    *out = st;
    *n_out = n;
    for (int s = 0; s < n; s++) {
        setting *t = &st[s];
        int b = s / o->n_waits;
        t->waits = o->waits[s % o->n_waits];
        t->budget = classes ? S1C_BF_UNLIMITED : o->budgets[b];
        t->control = o->method == EVAL_TOKEN_CONDITIONAL ? S1C_CONTROL_TOKENS
                     : o->method == EVAL_STEP_CONDITIONAL ? S1C_CONTROL_STEPS
                     : classes ? (b == 0 ? S1C_CONTROL_SHORT : S1C_CONTROL_LONG) : S1C_CONTROL_NONE;
        t->control_name = classes ? (b == 0 ? "short" : "long") : NULL;
        eval_setting_label(t->label, sizeof t->label, eval_method_name(o->method), t->control_name);
        s1c_bf_opts bo = o->bf;
        /* budget forcing and rejection enforce the budget; the conditional controls only ask for it */
        bool enforce = o->method == EVAL_BUDGET_FORCING || o->method == EVAL_REJECTION;
        bo.max_thinking_tokens = enforce ? t->budget : S1C_BF_UNLIMITED;
        bo.rejection = o->method == EVAL_REJECTION;
        bo.num_waits = t->waits;
        bo.max_answer_tokens = o->max_answer_tokens;
        if (s1c_bf_new(&t->bf, &bo, tok, ctx, NULL, err) != 0) return -1;
    }
    return 0;
}

static void free_settings(setting *st, int n) {
    for (int s = 0; st && s < n; s++) s1c_bf_free(st[s].bf);
    free(st);
}

/* s1's layout: the chat template's generation prompt + the thinking start, for the question
 * with the setting's control suffix. */
char *eval_prompt_text(int tmpl, const char *question, const char *think_start, s1c_err *err) {
    s1c_chat_msg msg = {"user", question};
    char *text = s1c_chat_render(tmpl, &msg, 1, true, err);
    if (!text) return NULL;
    size_t tl = strlen(text), sl = strlen(think_start);
    char *full = malloc(tl + sl + 1);
    if (!full) { free(text); s1c_fail(err, "out of memory"); return NULL; }
    memcpy(full, text, tl);
    /* QwQ's and R1's templates already open the thinking ("<think>\n") */
    bool opened = tl > sl && !strncmp(text + tl - sl - 1, think_start, sl);
    memcpy(full + tl, opened ? "" : think_start, opened ? 1 : sl + 1);
    free(text);
    return full;
}

static int encode_prompt(const s1c_tokenizer *tok, int tmpl, const char *question, int control, int control_n,
                         const char *think_start, int32_t **ids, int *n, s1c_err *err) {
    char *q = s1c_control_question(question, control, control_n);
    char *full = q ? eval_prompt_text(tmpl, q, think_start, err) : NULL;
    free(q);
    if (!full) return -1;
    int r = s1c_tok_encode_ex(tok, full, strlen(full), S1C_ENC_SPECIAL, ids, n, err);
    free(full);
    return r;
}

static int check_method(const eval_opts *o, s1c_err *err) {
    if (o->method < 0 || o->method >= EVAL_N_METHODS) return s1c_fail(err, "eval: unknown method");
    bool needs_budget = o->method == EVAL_TOKEN_CONDITIONAL || o->method == EVAL_STEP_CONDITIONAL || o->method == EVAL_REJECTION;
    for (int i = 0; needs_budget && i < o->n_budgets; i++)
        if (o->budgets[i] < 0) return s1c_fail(err, "eval: --method %s needs numeric --think-budgets", eval_method_name(o->method));
    if (o->method == EVAL_REJECTION && o->sampler.temperature <= 0)
        return s1c_fail(err, "eval: rejection sampling needs --temperature > 0 (greedy draws are all the same)");
    if (o->method == EVAL_REJECTION && o->samples != 1) return s1c_fail(err, "eval: rejection sampling takes one sample per setting");
    return 0;
}

int eval_run(const s1c_model *m, const s1c_tokenizer *tok, const eval_bench *b, const eval_opts *o, s1c_err *err) {
    if (o->samples < 1) return s1c_fail(err, "eval: --samples must be at least 1");
    if (o->n_budgets < 1 || o->n_waits < 1) return s1c_fail(err, "eval: no settings to run");
    if (check_method(o, err) != 0 || s1c_mkdir_p(o->out_dir, err) != 0) return -1;
    char *path = s1c_path_join(o->out_dir, "samples.jsonl");
    char **done = NULL;
    int n_done = 0, rc = -1, n_problems = o->limit > 0 && o->limit < b->n ? o->limit : b->n, n_set = 0;
    /* prompts differ per setting when the control is a question suffix */
    bool per_setting = o->method != EVAL_BUDGET_FORCING && o->method != EVAL_REJECTION;
    s1c_engine *e = NULL;
    setting *sets = NULL;
    job *jobs = NULL;
    int32_t **prompts = NULL;
    int *n_prompt = NULL;
    FILE *f = NULL;
    int ctx = s1c_model_config(m)->max_seq_len, tmpl = s1c_tok_chat_template(tok);
    if (tmpl < 0) { s1c_fail(err, "eval: the model has no chat template s1c knows"); goto out; }
    if (!path || make_settings(o, tok, ctx, &sets, &n_set, err) != 0) { if (!path) s1c_fail(err, "out of memory"); goto out; }
    int n_prompts = n_problems * (per_setting ? n_set : 1);
    jobs = calloc((size_t)n_problems * (size_t)n_set, sizeof *jobs);
    prompts = calloc((size_t)n_prompts, sizeof *prompts);
    n_prompt = calloc((size_t)n_prompts, sizeof *n_prompt);
    if (!jobs || !prompts || !n_prompt) { s1c_fail(err, "out of memory"); goto out; }
    if (eval_load_done(path, &done, &n_done, err) != 0) goto out;
    f = fopen(path, "a");
    if (!f) { s1c_fail(err, "%s: cannot open for appending", path); goto out; }
    s1c_engine_params ep = s1c_engine_defaults();
    if (s1c_engine_new(&e, m, &ep, err) != 0) goto out;
    for (int i = 0; i < n_prompts; i++) {
        const setting *t = per_setting ? &sets[i % n_set] : NULL;
        if (encode_prompt(tok, tmpl, b->p[per_setting ? i / n_set : i].question, t ? t->control : S1C_CONTROL_NONE,
                          t ? t->budget : 0, o->bf.think_start, &prompts[i], &n_prompt[i], err) != 0)
            goto out;
    }
#define PROMPT_OF(problem, s) (per_setting ? (problem) * n_set + (s) : (problem))
    int n_jobs = 0, total = 0;
    bool sweep = sweep_as_forks(o);
    for (int s = 0; s < n_set; s++) {
        const setting *t = &sets[s];
        /* a sweep runs one sequence per problem and number of waits, under the largest budget */
        if (sweep && t->budget != largest_budget(o)) continue;
        for (int i = 0; i < n_problems; i++) {
            bool finished = true; /* resumed: every sample of this problem and setting is in samples.jsonl */
            for (int q = 0; q < (sweep ? o->n_budgets : 1) && finished; q++)
                for (int k = 0; k < o->samples && finished; k++) {
                    char *key = eval_sample_key(b->p[i].id, t->label, sweep ? o->budgets[q] : t->budget, t->waits, k);
                    finished = key && eval_is_done(done, n_done, key);
                    free(key);
                }
            if (finished) continue;
            int pi = PROMPT_OF(i, s);
            job *j = &jobs[n_jobs++];
            *j = (job){.problem = i, .setting = s, .budget = t->budget, .waits = t->waits, .tries = 1};
            j->st0.bf = s1c_bf_state_init(t->bf, n_prompt[pi]);
            s1c_seq_params sp = {.prompt = prompts[pi], .n_prompt = n_prompt[pi], .max_new_tokens = -1, .sampler = o->sampler,
                                 .hook = s1c_bf_hook, .user = t->bf, .state = &j->st0.bf, .state_size = sizeof j->st0.bf, .n_samples = o->samples};
            if (sweep) {
                for (int q = 0; q < o->n_budgets; q++)
                    if (o->budgets[q] != t->budget && j->st0.n_pending < S1C_BF_SWEEP_MAX) j->st0.pending[j->st0.n_pending++] = o->budgets[q];
                sp.hook = s1c_bf_sweep_hook;
                sp.state = &j->st0;
                sp.state_size = sizeof j->st0;
            }
            j->root = s1c_engine_submit(e, &sp, err);
            if (j->root < 0) { s1c_fail_prefix(err, "problem %s", b->p[i].id); goto out; }
            total += o->samples * (sweep ? o->n_budgets : 1);
        }
    }
    if (!o->quiet) fprintf(stderr, "[eval] %s (%s): %d problems x %d settings x %d samples; %d samples to run (%d already in %s)\n",
                           b->name, eval_method_name(o->method), n_problems, n_set, o->samples, total, n_done, path);
    double t0 = s1c_now();
    int finished = 0, correct = 0;
    for (int live = 1; live > 0;) {
        live = s1c_engine_step(e, err);
        if (live < 0) goto out;
        s1c_seq_result r;
        while (s1c_engine_poll(e, &r)) {
            int root = r.parent >= 0 ? r.parent : r.id;
            /* roots were submitted first, in job order, so their ids are 0..n_jobs-1 (redraws: searched) */
            job *j = root >= 0 && root < n_jobs && jobs[root].root == root ? &jobs[root] : NULL;
            for (int k = 0; k < n_jobs && !j; k++)
                if (jobs[k].root == root) j = &jobs[k];
            const setting *t = j ? &sets[j->setting] : NULL;
            /* rejection sampling: a draw whose thinking outgrew the budget is drawn again with the next seed */
            if (j && o->method == EVAL_REJECTION && r.stop_reason == S1C_STOP_REJECTED && j->tries < o->reject_tries) {
                int pi = PROMPT_OF(j->problem, j->setting);
                j->st0.bf = s1c_bf_state_init(t->bf, n_prompt[pi]);
                s1c_seq_params sp = {.prompt = prompts[pi], .n_prompt = n_prompt[pi], .max_new_tokens = -1, .sampler = o->sampler,
                                     .hook = s1c_bf_hook, .user = t->bf, .state = &j->st0.bf, .state_size = sizeof j->st0.bf, .n_samples = 1};
                sp.sampler.seed = o->sampler.seed + (uint64_t)j->tries;
                j->tries++;
                j->root = s1c_engine_submit(e, &sp, err);
                s1c_seq_result_free(&r);
                if (j->root < 0) goto out;
                live = 1;
                continue;
            }
            /* the budgets this result stands for: its own, and in a sweep those that never forked */
            const s1c_bf_sweep_state *ss = r.state;
            int budgets[S1C_BF_SWEEP_MAX + 1], nb = 0, w = 0;
            budgets[nb++] = sweep ? ss->bf.max_thinking : j ? j->budget : 0;
            for (int q = 0; sweep && q < ss->n_pending; q++) budgets[nb++] = ss->pending[q];
            for (int q = 0; q < nb && j && w == 0; q++) {
                job jb = *j;
                jb.budget = budgets[q];
                char *key = eval_sample_key(b->p[j->problem].id, t->label, jb.budget, j->waits, r.sample);
                bool skip = !key || eval_is_done(done, n_done, key); /* written by an earlier, killed run */
                free(key);
                int pi = PROMPT_OF(j->problem, j->setting);
                if (!skip) w = write_sample(f, &b->p[j->problem], &jb, t, o->method, r.sample, &r, tok, &prompts[pi][n_prompt[pi] - 1], &correct, err);
                finished++;
            }
            s1c_seq_result_free(&r);
            if (w != 0) goto out;
            progress(o, finished, total, correct, t0);
        }
    }
#undef PROMPT_OF
    fclose(f);
    f = NULL;
    rc = eval_summarize(o->out_dir, err);
out:
    if (f) fclose(f);
    s1c_engine_free(e);
    free_settings(sets, n_set);
    for (int i = 0; prompts && i < n_problems * (per_setting ? n_set : 1); i++) free(prompts[i]);
    for (int i = 0; i < n_done; i++) free(done[i]);
    free(done); free(jobs); free(prompts); free(n_prompt); free(path);
    return rc;
}
