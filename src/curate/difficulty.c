/* The difficulty stage (SPEC.md §1.2): reference models answer, the grader (and a judge for
 * unsure pairs) decides; a question any of them solves is dropped. Answers are journaled. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_internal.h"
#include "s1c/grade.h"

/* ------------------------------------------------------------------ 3. difficulty */

/* A precomputed verdict: ref_correct true/false, or a list / object of them (any true = solved).
 * Returns -1 when absent or malformed, else 0/1. */
int cur_precomputed(const cur_rec *r) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(r->obj, "ref_correct");
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    if (!cJSON_IsArray(v) && !cJSON_IsObject(v)) return -1;
    int any = 0, n = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsBool(e)) return -1;
        any |= cJSON_IsTrue(e);
        n++;
    }
    return n ? any : -1;
}

typedef struct ref_job {
    cur_rec *r;
    int ref;
    char *content;  /* a local model's reply (malloc'd; API replies are fetched by the task) */
    char *answer;   /* extracted answer (malloc'd) */
    bool done, correct, judged;
    char *error;
} ref_job;

typedef struct diff_ctx {
    run_ctx *R;
    net_client **clients; /* one per reference model */
    net_client *judge;
    grade_judge_cache *jcache;
    cur_journal *journal;
    ref_job *jobs;
    size_t n_jobs, n_done;
    pthread_mutex_t mu;
    double last;
} diff_ctx;

/* The gold answer inside a solution: s1's extraction (last \boxed, "Answer:", else all). */
static char *gold_of(const char *solution) {
    grade_extraction ex;
    s1c_err e;
    if (grade_extract(solution, strlen(solution), GRADE_EX_S1_MATH, &ex, &e)) return NULL;
    char *g = cur_strdup(ex.answer);
    grade_extraction_free(&ex);
    return g;
}

static void ref_task(void *ctx, size_t i) {
    diff_ctx *D = ctx;
    ref_job *J = &D->jobs[i];
    const cur_opts *o = D->R->o;
    const char *model = cur_ref_name(o, J->ref);
    s1c_err e = {{0}};
    char *gold = NULL, *reasoning = NULL, *answer = NULL;
    if (J->error) goto done; /* a local model that could not answer */
    if (J->ref < o->n_refs) {
        net_message msg = {"user", J->r->question};
        net_chat_params prm = {.temperature = 0, .max_tokens = o->ref_max_tokens};
        net_chat_result res;
        if (net_chat(D->clients[J->ref], model, &msg, 1, &prm, &res, &e)) {
            J->error = cur_strdup(e.msg);
            goto done;
        }
        int r = distill_split(res.content, res.reasoning, &reasoning, &answer, &e);
        net_chat_result_free(&res);
        if (r) { J->error = cur_strdup(e.msg); goto done; }
    } else if (distill_split(J->content, NULL, &reasoning, &answer, &e)) {
        J->error = cur_strdup(e.msg);
        goto done;
    }
    grade_extraction ex;
    gold = gold_of(cur_str(J->r, D->R->p->f.solution));
    if (!gold || grade_extract(answer, strlen(answer), GRADE_EX_S1_MATH, &ex, &e)) { J->error = cur_strdup("out of memory"); goto done; }
    J->answer = cur_strdup(ex.answer);
    grade_extraction_free(&ex);
    grade_result gr;
    if (grade_equal_ex(gold, strlen(gold), J->answer, strlen(J->answer), NULL, &gr, &e)) { J->error = cur_strdup(e.msg); goto done; }
    J->correct = gr.equal;
    if (gr.verdict == GRADE_UNSURE && D->judge) {
        bool eq;
        if (grade_judge(D->judge, o->judge_model, gold, J->answer, D->jcache, &eq, &e)) { J->error = cur_strdup(e.msg); goto done; }
        J->correct = eq;
        J->judged = true;
    }
    J->done = true;
    cJSON *line = cJSON_CreateObject();
    char qh[17];
    cur_qhash_hex(J->r, qh);
    cJSON_AddStringToObject(line, "id", J->r->id);
    cJSON_AddStringToObject(line, "qhash", qh);
    cJSON_AddStringToObject(line, "model", model);
    cJSON_AddStringToObject(line, "answer", J->answer);
    cJSON_AddBoolToObject(line, "correct", J->correct);
    if (J->judged) cJSON_AddBoolToObject(line, "judge", 1);
    if (cur_journal_append(D->journal, line, &e)) { J->done = false; J->error = cur_strdup(e.msg); }
    cJSON_Delete(line);
done:
    free(gold); free(reasoning); free(answer);
    pthread_mutex_lock(&D->mu);
    D->n_done++;
    cur_progress(D->R, "difficulty", D->n_done, D->n_jobs, &D->last);
    pthread_mutex_unlock(&D->mu);
}

net_client *cur_client_for(const cur_opts *o, const char *url, s1c_err *err) {
    net_client_opts no = {.base_url = url, .api_key = o->api_key, .timeout_s = o->timeout_s, .max_retries = o->retries,
                          .backoff_s = o->backoff_s};
    net_client *c = NULL;
    if (net_client_new(&c, &no, err)) return NULL;
    return c;
}

/* Looks a (record, model) verdict up in the journal lines. */
cJSON *cur_journal_find(cJSON *lines, cur_map *index, const cur_rec *r, const char *model) {
    char qh[17];
    cur_qhash_hex(r, qh);
    uint64_t key = cur_hash(model, strlen(model), cur_hash(qh, 16, cur_hash(r->id, strlen(r->id), 0)));
    size_t at;
    (void)lines;
    return cur_map_get(index, key, &at) ? (cJSON *)(uintptr_t)at : NULL; /* the index holds the line itself */
}

int cur_journal_index(cJSON *lines, const char *model_key, cur_map *index, s1c_err *err) {
    cJSON *l;
    cJSON_ArrayForEach(l, lines) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(l, "id"), *qh = cJSON_GetObjectItemCaseSensitive(l, "qhash");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(l, model_key);
        if (cJSON_IsString(id) && cJSON_IsString(qh) && cJSON_IsString(m) && strlen(qh->valuestring) == 16) {
            uint64_t key = cur_hash(m->valuestring, strlen(m->valuestring),
                                    cur_hash(qh->valuestring, 16, cur_hash(id->valuestring, strlen(id->valuestring), 0)));
            if (cur_map_set(index, key, (size_t)(uintptr_t)l)) return s1c_fail(err, "out of memory"); /* later lines win */
        }
    }
    return 0;
}

/* The local model's replies for its jobs, in one engine batch. */
static int local_replies(run_ctx *R, ref_job *jobs, size_t n, s1c_err *err) {
    const cur_opts *o = R->o;
    size_t m = 0;
    for (size_t j = 0; j < n; j++) m += jobs[j].ref == o->n_refs;
    if (!m) return 0;
    const char **qs = malloc(m * sizeof *qs);
    char **ans = calloc(m, sizeof *ans), **errs = calloc(m, sizeof *errs);
    ref_job **js = malloc(m * sizeof *js);
    int rc = 0;
    if (!qs || !ans || !errs || !js) { rc = s1c_fail(err, "out of memory"); goto out; }
    m = 0;
    for (size_t j = 0; j < n; j++)
        if (jobs[j].ref == o->n_refs) { js[m] = &jobs[j]; qs[m++] = jobs[j].r->question; }
    if (!o->quiet) fprintf(stderr, "[curate] difficulty: %zu question(s) through the local model %s\n", m, o->ref_local_name);
    if ((rc = cur_local_answer(o->ref_local, o->ref_local_tok, qs, m, o->ref_max_tokens, ans, errs, err))) goto out;
    for (size_t i = 0; i < m; i++) {
        js[i]->content = ans[i];
        js[i]->error = errs[i] ? errs[i] : ans[i] ? NULL : cur_strdup("no reply");
        ans[i] = errs[i] = NULL;
    }
out:
    for (size_t i = 0; ans && errs && i < m; i++) { free(ans[i]); free(errs[i]); }
    free(qs); free(ans); free(errs); free(js);
    return rc;
}

static int ask_refs(run_ctx *R, cJSON *lines, cur_map *index, s1c_err *err) {
    const cur_opts *o = R->o;
    diff_ctx D = {.R = R};
    int rc = 0;
    int nm = cur_n_ref_models(o);
    D.jobs = calloc(R->n_live * (size_t)nm + 1, sizeof *D.jobs);
    D.clients = calloc((size_t)o->n_refs + 1, sizeof *D.clients);
    if (!D.jobs || !D.clients) { rc = s1c_fail(err, "out of memory"); goto out; }
    for (size_t i = 0; i < R->n_live; i++) {
        cur_rec *r = R->live[i];
        if (r->stage || cur_precomputed(r) >= 0) continue;
        for (int k = 0; k < nm; k++)
            if (!cur_journal_find(lines, index, r, cur_ref_name(o, k))) D.jobs[D.n_jobs++] = (ref_job){.r = r, .ref = k};
    }
    if (D.n_jobs == 0) goto out;
    if (o->ref_local && (rc = local_replies(R, D.jobs, D.n_jobs, err))) goto out;
    for (int k = 0; k < o->n_refs; k++)
        if (!(D.clients[k] = cur_client_for(o, o->refs[k].endpoint, err))) { rc = -1; goto out; }
    if (o->judge_endpoint) {
        char *jp = s1c_path_join(o->out_dir, "judge.cache.jsonl");
        if (!(D.judge = cur_client_for(o, o->judge_endpoint, err)) || !jp || grade_judge_cache_open(&D.jcache, jp, err)) {
            free(jp);
            rc = -1;
            goto out;
        }
        free(jp);
    }
    char *path = s1c_path_join(o->out_dir, "difficulty.journal.jsonl");
    rc = path ? cur_journal_open(&D.journal, path, NULL, err) : s1c_fail(err, "out of memory");
    free(path);
    if (rc) goto out;
    if (!o->quiet) fprintf(stderr, "[curate] difficulty: %zu reference-model calls to make\n", D.n_jobs);
    pthread_mutex_init(&D.mu, NULL);
    D.last = s1c_now();
    rc = cur_par_run(D.n_jobs, o->concurrency, o->rps, ref_task, &D, err);
    pthread_mutex_destroy(&D.mu);
    /* failed calls: the question cannot be judged; it is dropped with the error (a rerun asks again) */
    for (size_t j = 0; j < D.n_jobs && rc == 0; j++) {
        ref_job *J = &D.jobs[j];
        if (!J->done)
            cur_drop(J->r, "difficulty", "ref_error", "reference model %s failed: %s", cur_ref_name(o, J->ref), J->error ? J->error : "?");
        else {
            cJSON *line = cJSON_CreateObject();
            char qh[17];
            cur_qhash_hex(J->r, qh);
            cJSON_AddStringToObject(line, "id", J->r->id);
            cJSON_AddStringToObject(line, "qhash", qh);
            cJSON_AddStringToObject(line, "model", cur_ref_name(o, J->ref));
            cJSON_AddStringToObject(line, "answer", J->answer);
            cJSON_AddBoolToObject(line, "correct", J->correct);
            cJSON_AddItemToArray(lines, line);
            if (cur_map_set(index, cur_hash(cur_ref_name(o, J->ref), strlen(cur_ref_name(o, J->ref)),
                                             cur_hash(qh, 16, cur_hash(J->r->id, strlen(J->r->id), 0))),
                            (size_t)(uintptr_t)line))
                rc = s1c_fail(err, "out of memory");
        }
    }
out:
    for (size_t j = 0; D.jobs && j < D.n_jobs; j++) { free(D.jobs[j].answer); free(D.jobs[j].error); free(D.jobs[j].content); }
    for (int k = 0; D.clients && k < o->n_refs; k++) net_client_free(D.clients[k]);
    free(D.jobs);
    free(D.clients);
    net_client_free(D.judge);
    grade_judge_cache_close(D.jcache);
    cur_journal_close(D.journal);
    return rc;
}

/* Trace lengths of every live record (field "trace_tokens"). */
static int measure_traces(run_ctx *R, s1c_err *err) {
    for (size_t i = 0; i < R->n_live; i++) {
        cur_rec *r = R->live[i];
        char *t = cur_trace(r, R->p->f.trajectories);
        if (!t) return s1c_fail(err, "record '%s': trace vanished", r->id);
        r->trace_tokens = cur_count_tokens(R->o->tok, t, strlen(t));
        free(t);
        cur_set_item(r->obj, "trace_tokens", cJSON_CreateNumber((double)r->trace_tokens));
    }
    return 0;
}

int cur_stage_difficulty(run_ctx *R, s1c_err *err) {
    const cur_opts *o = R->o;
    if (measure_traces(R, err)) return -1;
    for (size_t i = 0; i < R->n_live; i++) {
        cur_rec *r = R->live[i];
        if (r->trace_tokens < o->min_trace_tokens)
            cur_drop(r, "difficulty", "short_trace", "teacher trace has %ld tokens (< %ld)", r->trace_tokens, o->min_trace_tokens);
        else if (!o->no_difficulty && cur_precomputed(r) < 0 && !cur_str(r, R->p->f.solution))
            cur_drop(r, "difficulty", "no_solution", "no string field '%s' to grade reference answers against", R->p->f.solution);
    }
    if (o->no_difficulty) return 0;
    cJSON *lines = NULL;
    cur_map index = {0};
    int rc = 0;
    if (cur_n_ref_models(o) > 0) {
        char *path = s1c_path_join(o->out_dir, "difficulty.journal.jsonl");
        cur_journal *j = NULL;
        rc = path ? cur_journal_open(&j, path, &lines, err) : s1c_fail(err, "out of memory");
        cur_journal_close(j);
        free(path);
        if (rc || (rc = cur_journal_index(lines, "model", &index, err)) || (rc = ask_refs(R, lines, &index, err))) goto out;
    }
    for (size_t i = 0; i < R->n_live; i++) {
        cur_rec *r = R->live[i];
        if (r->stage) continue;
        int pre = cur_precomputed(r);
        if (pre == 1) { cur_drop(r, "difficulty", "solved", "solved by a reference model (precomputed ref_correct)"); continue; }
        if (pre == 0) continue;
        cJSON *answers = cJSON_CreateObject();
        bool solved = false;
        for (int k = 0; k < cur_n_ref_models(o) && !solved; k++) {
            cJSON *l = cur_journal_find(lines, &index, r, cur_ref_name(o, k));
            if (!l) break; /* dropped with ref_error above */
            cJSON *a = cJSON_GetObjectItemCaseSensitive(l, "answer");
            bool c = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l, "correct"));
            cJSON_AddStringToObject(answers, cur_ref_name(o, k), cJSON_IsString(a) ? a->valuestring : "");
            if (c) {
                solved = true;
                cur_drop(r, "difficulty", "solved", "solved by %s (answer '%.200s')", cur_ref_name(o, k), cJSON_IsString(a) ? a->valuestring : "");
            }
        }
        cur_set_item(r->obj, "ref_answers", answers);
        if (!r->stage) cur_set_item(r->obj, "ref_correct", cJSON_CreateFalse());
    }
out:
    cJSON_Delete(lines);
    cur_map_free(&index);
    return rc;
}

