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

/* One setting of the sweep and its controller. */
typedef struct setting {
    eval_setting s;
    s1c_bf *bf;
} setting;

typedef struct job {
    int problem, setting, budget, waits;
    int root;           /* engine id of the first sample */
    int tries;          /* rejection sampling: draws so far */
    s1c_bf_sweep_state st0; /* starts with the controller's state; sweeps use the rest */
} job;

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
                           .control = st_->s.control_name, .tries = j->tries};
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

/* The sweep's settings, each with its controller. */
static int make_settings(const eval_opts *o, const s1c_tokenizer *tok, int ctx, setting **out, int *n_out, s1c_err *err) {
    eval_setting *es = NULL;
    int n = 0;
    if (eval_make_settings(o, &es, &n, err) != 0) return -1;
    setting *st = calloc((size_t)n, sizeof *st);
    if (!st) { free(es); return s1c_fail(err, "out of memory"); }
    *out = st;
    *n_out = n;
    int rc = 0;
    for (int s = 0; s < n && rc == 0; s++) {
        st[s].s = es[s];
        s1c_bf_opts bo = o->bf;
        bo.max_thinking_tokens = es[s].enforce;
        bo.rejection = es[s].reject;
        bo.num_waits = es[s].waits;
        bo.max_answer_tokens = o->max_answer_tokens;
        rc = s1c_bf_new(&st[s].bf, &bo, tok, ctx, NULL, err);
    }
    free(es);
    return rc;
}

static void free_settings(setting *st, int n) {
    for (int s = 0; st && s < n; s++) s1c_bf_free(st[s].bf);
    free(st);
}

static int encode_prompt(const s1c_tokenizer *tok, int tmpl, const char *question, int control, int control_n,
                         const char *think_start, int32_t **ids, int *n, s1c_err *err) {
    char *q = s1c_control_question(question, control, control_n);
    if (!q) return s1c_fail(err, "out of memory");
    char *full = eval_prompt_text(tmpl, q, think_start, err);
    free(q);
    if (!full) return -1;
    int r = s1c_tok_encode_ex(tok, full, strlen(full), S1C_ENC_SPECIAL, ids, n, err);
    free(full);
    return r;
}

int eval_run(const s1c_model *m, const s1c_tokenizer *tok, const eval_bench *b, const eval_opts *o, s1c_err *err) {
    if (eval_check_method(o, err) != 0 || s1c_mkdir_p(o->out_dir, err) != 0) return -1;
    char *path = s1c_path_join(o->out_dir, "samples.jsonl");
    eval_done done = {0};
    eval_progress pg = {.quiet = true}; /* started once the work is known; silent until then */
    int rc = -1, n_problems = o->limit > 0 && o->limit < b->n ? o->limit : b->n, n_set = 0;
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
    if (eval_load_done(path, &done, err) != 0) goto out;
    f = fopen(path, "a");
    if (!f) { s1c_fail(err, "%s: cannot open for appending", path); goto out; }
    s1c_engine_params ep = s1c_engine_defaults();
    ep.kv_dtype = o->kv_dtype;
    if (s1c_engine_new(&e, m, &ep, err) != 0) goto out;
    for (int i = 0; i < n_prompts; i++) {
        const setting *t = per_setting ? &sets[i % n_set] : NULL;
        if (encode_prompt(tok, tmpl, b->p[per_setting ? i / n_set : i].question, t ? t->s.control : S1C_CONTROL_NONE,
                          t ? t->s.budget : 0, o->bf.think_start, &prompts[i], &n_prompt[i], err) != 0)
            goto out;
    }
#define PROMPT_OF(problem, s) (per_setting ? (problem) * n_set + (s) : (problem))
    /* the progress line counts every sample of the run; a resumed run starts at what is done */
    int n_jobs = 0, total = 0, done0 = 0, correct0 = 0;
    bool sweep = sweep_as_forks(o);
    for (int s = 0; s < n_set; s++) {
        const setting *t = &sets[s];
        /* a sweep runs one sequence per problem and number of waits, under the largest budget */
        if (sweep && t->s.budget != largest_budget(o)) continue;
        for (int i = 0; i < n_problems; i++) {
            int n_here = 0; /* resumed: the samples of this problem and setting already in samples.jsonl */
            for (int q = 0; q < (sweep ? o->n_budgets : 1); q++)
                for (int k = 0; k < o->samples; k++) {
                    char *key = eval_sample_key(b->p[i].id, t->s.label, sweep ? o->budgets[q] : t->s.budget, t->s.waits, k);
                    bool ok = false;
                    if (!key) { s1c_fail(err, "out of memory"); goto out; }
                    if (eval_is_done(&done, key, &ok)) { n_here++; correct0 += ok; }
                    free(key);
                }
            int n_all = o->samples * (sweep ? o->n_budgets : 1);
            total += n_all;
            done0 += n_here;
            if (n_here == n_all) continue;
            int pi = PROMPT_OF(i, s);
            job *j = &jobs[n_jobs++];
            *j = (job){.problem = i, .setting = s, .budget = t->s.budget, .waits = t->s.waits, .tries = 1};
            j->st0.bf = s1c_bf_state_init(t->bf, n_prompt[pi]);
            s1c_seq_params sp = {.prompt = prompts[pi], .n_prompt = n_prompt[pi], .max_new_tokens = -1, .sampler = o->sampler,
                                 .hook = s1c_bf_hook, .user = t->bf, .state = &j->st0.bf, .state_size = sizeof j->st0.bf, .n_samples = o->samples};
            if (sweep) {
                for (int q = 0; q < o->n_budgets; q++)
                    if (o->budgets[q] != t->s.budget && j->st0.n_pending < S1C_BF_SWEEP_MAX) j->st0.pending[j->st0.n_pending++] = o->budgets[q];
                sp.hook = s1c_bf_sweep_hook;
                sp.state = &j->st0;
                sp.state_size = sizeof j->st0;
            }
            j->root = s1c_engine_submit(e, &sp, err);
            if (j->root < 0) { s1c_fail_prefix(err, "problem %s", b->p[i].id); goto out; }
        }
    }
    if (!o->quiet) fprintf(stderr, "[eval] %s (%s): %d problems x %d settings x %d samples; %d samples to run (%d already in %s)\n",
                           b->name, eval_method_name(o->method), n_problems, n_set, o->samples, total - done0, done0, path);
    eval_progress_start(&pg, total, done0, correct0, o->quiet);
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
            int budgets[S1C_BF_SWEEP_MAX + 1], nb = 0, w = 0, n_new = 0, n_right = 0;
            budgets[nb++] = sweep ? ss->bf.max_thinking : j ? j->budget : 0;
            for (int q = 0; sweep && q < ss->n_pending; q++) budgets[nb++] = ss->pending[q];
            for (int q = 0; q < nb && j && w == 0; q++) {
                job jb = *j;
                jb.budget = budgets[q];
                char *key = eval_sample_key(b->p[j->problem].id, t->s.label, jb.budget, j->waits, r.sample);
                bool skip = !key || eval_is_done(&done, key, NULL); /* written by an earlier, killed run */
                free(key);
                int pi = PROMPT_OF(j->problem, j->setting);
                if (!skip) {
                    w = write_sample(f, &b->p[j->problem], &jb, t, o->method, r.sample, &r, tok, &prompts[pi][n_prompt[pi] - 1], &n_right, err);
                    n_new++;
                }
            }
            s1c_seq_result_free(&r);
            if (w != 0) goto out;
            eval_progress_add(&pg, n_new, n_right, 0);
        }
    }
#undef PROMPT_OF
    fclose(f);
    f = NULL;
    rc = eval_summarize(o->out_dir, err);
out:
    eval_progress_end(&pg); /* also before an error, so its message starts on a line of its own */
    if (f) fclose(f);
    s1c_engine_free(e);
    free_settings(sets, n_set);
    for (int i = 0; prompts && i < n_problems * (per_setting ? n_set : 1); i++) free(prompts[i]);
    eval_done_free(&done);
    free(jobs); free(prompts); free(n_prompt); free(path);
    return rc;
}
