/* The curate run: load → decontamination → quality → difficulty → domain → diversity, every
 * stage writing its kept and dropped records and a stats line, then s1k.jsonl, summary.json
 * and curate.svg (SPEC.md §1). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curate_internal.h"
#include "s1c/grade.h"

#define MAX_KINDS 32

typedef struct stage_stat {
    const char *name;
    size_t in, kept, dropped;
    const char *kind[MAX_KINDS];
    size_t count[MAX_KINDS];
    int n_kinds;
    double seconds;
} stage_stat;

typedef struct run {
    cur_pool *p;
    const cur_opts *o;
    cur_rec **live;      /* records alive before the current stage */
    size_t n_live;
    stage_stat st[8];
    int n_st;
    FILE *stats;         /* stats.jsonl */
} run;

/* ------------------------------------------------------------------ helpers */

static void set_item(cJSON *obj, const char *name, cJSON *item) {
    if (!item) return;
    if (cJSON_GetObjectItemCaseSensitive(obj, name)) cJSON_ReplaceItemInObjectCaseSensitive(obj, name, item);
    else cJSON_AddItemToObject(obj, name, item);
}

static uint64_t qhash(const cur_rec *r) { return cur_hash(r->question, strlen(r->question), 0); }

static void qhash_hex(const cur_rec *r, char out[17]) { snprintf(out, 17, "%016llx", (unsigned long long)qhash(r)); }

static void progress(const run *R, const char *stage, size_t done, size_t total, double *last) {
    if (R->o->quiet) return;
    double now = s1c_now();
    if (done < total && now - *last < 5.0) return;
    *last = now;
    fprintf(stderr, "[curate] %s: %zu/%zu calls done\n", stage, done, total);
}

/* Writes the live records and the ones dropped by this stage, the stats line, and shrinks live. */
static int stage_end(run *R, const char *name, double t0, s1c_err *err) {
    stage_stat *s = &R->st[R->n_st++];
    memset(s, 0, sizeof *s);
    s->name = name;
    s->in = R->n_live;
    int idx = R->n_st - 1;
    char fname[96];
    snprintf(fname, sizeof fname, "%d-%s.kept.jsonl", idx, name);
    char *kp = s1c_path_join(R->o->out_dir, fname);
    snprintf(fname, sizeof fname, "%d-%s.dropped.jsonl", idx, name);
    char *dp = s1c_path_join(R->o->out_dir, fname);
    s1c_wfile kw = {0}, dw = {0};
    int rc = 0;
    bool write_kept = strcmp(name, "load") != 0; /* the pool itself needs no copy */
    if (!kp || !dp) { rc = s1c_fail(err, "out of memory"); goto out; }
    if ((write_kept && s1c_wfile_open(&kw, kp, err)) || s1c_wfile_open(&dw, dp, err)) { rc = -1; goto out; }
    size_t k = 0;
    for (size_t i = 0; i < R->n_live; i++) {
        cur_rec *r = R->live[i];
        if (!r->stage) {
            if (write_kept && !cur_write_rec(kw.fp, r)) kw.bad = true;
            R->live[k++] = r;
            continue;
        }
        if (!cur_write_rec(dw.fp, r)) dw.bad = true;
        s->dropped++;
        int j = 0;
        while (j < s->n_kinds && strcmp(s->kind[j], r->kind)) j++;
        if (j == s->n_kinds && j < MAX_KINDS) s->kind[s->n_kinds++] = r->kind;
        if (j < MAX_KINDS) s->count[j]++;
    }
    R->n_live = s->kept = k;
    s->seconds = s1c_now() - t0;
    if ((write_kept && s1c_wfile_commit(&kw, err)) || s1c_wfile_commit(&dw, err)) { rc = -1; goto out; }
    fprintf(R->stats, "{\"stage\":\"%s\",\"in\":%zu,\"kept\":%zu,\"dropped\":%zu,\"reasons\":{", name, s->in, s->kept, s->dropped);
    for (int j = 0; j < s->n_kinds; j++) fprintf(R->stats, "%s\"%s\":%zu", j ? "," : "", s->kind[j], s->count[j]);
    fprintf(R->stats, "},\"seconds\":%.3f}\n", s->seconds);
    fflush(R->stats);
    if (!R->o->quiet) {
        fprintf(stderr, "[curate] %-10s %zu in, %zu kept, %zu dropped", name, s->in, s->kept, s->dropped);
        for (int j = 0; j < s->n_kinds; j++) fprintf(stderr, "%s%s %zu", j ? ", " : " (", s->kind[j], s->count[j]);
        fprintf(stderr, "%s\n", s->n_kinds ? ")" : "");
    }
out:
    if (kw.fp) s1c_wfile_abort(&kw);
    if (dw.fp) s1c_wfile_abort(&dw);
    free(kp);
    free(dp);
    return rc;
}

/* ------------------------------------------------------------------ 1. decontamination */

static void stage_decontam(run *R) {
    if (!R->o->decontam) return;
    for (size_t i = 0; i < R->n_live; i++) {
        cur_rec *r = R->live[i];
        const char *hit = cur_decontam_match(R->o->decontam, r->question);
        if (hit) cur_drop(r, "decontam", "contaminated", "shares a word 8-gram with %s", hit);
    }
}

/* ------------------------------------------------------------------ 2. quality */

static int stage_quality(run *R, s1c_err *err) {
    const cur_fields *f = &R->p->f;
    cur_map exact = {0};
    for (size_t i = 0; i < R->n_live; i++) {
        cur_rec *r = R->live[i];
        cJSON *e = cJSON_GetObjectItemCaseSensitive(r->obj, "distill_error");
        if (cJSON_IsString(e)) { cur_drop(r, "quality", "teacher_failed", "teacher call failed: %s", e->valuestring); continue; }
        char *trace = cur_trace(r, f->trajectories);
        bool empty = !trace || !trace[0];
        free(trace);
        if (empty) {
            cur_drop(r, "quality", "empty_trace", "no teacher trace ('%s' missing, not strings, or empty)", f->trajectories);
            continue;
        }
        const char *src = cur_str(r, f->source);
        if (!src && !strcmp(f->source, "source")) src = cur_str(r, "source_type"); /* s1K's name */
        const char *why = cur_format_problem(r->question, src);
        if (why) { cur_drop(r, "quality", "format", "%s", why); continue; }
        char *norm = cur_normalize(r->question);
        if (!norm) { cur_map_free(&exact); return s1c_fail(err, "out of memory"); }
        uint64_t h = cur_hash(norm, strlen(norm), 0);
        free(norm);
        size_t first;
        if (cur_map_get(&exact, h, &first)) {
            cur_drop(r, "quality", "exact_duplicate", "same question as id '%s' (line %ld)", R->live[first]->id, R->live[first]->line);
            continue;
        }
        if (cur_map_put(&exact, h, i)) { cur_map_free(&exact); return s1c_fail(err, "out of memory"); }
    }
    cur_map_free(&exact);
    if (R->o->near_dup <= 0) return 0;
    /* near duplicates among the survivors, in pool order (the first one stays) */
    const char **texts = malloc((R->n_live ? R->n_live : 1) * sizeof *texts);
    size_t *map = malloc((R->n_live ? R->n_live : 1) * sizeof *map);
    long *dup = malloc((R->n_live ? R->n_live : 1) * sizeof *dup);
    int rc = 0;
    if (!texts || !map || !dup) { rc = s1c_fail(err, "out of memory"); goto out; }
    size_t m = 0;
    for (size_t i = 0; i < R->n_live; i++)
        if (!R->live[i]->stage) { map[m] = i; texts[m++] = R->live[i]->question; }
    if ((rc = cur_near_dups(texts, m, R->o->near_dup, dup, err))) goto out;
    for (size_t i = 0; i < m; i++)
        if (dup[i] >= 0) {
            cur_rec *o = R->live[map[dup[i]]];
            cur_drop(R->live[map[i]], "quality", "near_duplicate", "near duplicate (word 5-gram Jaccard >= %.2f) of id '%s' (line %ld)",
                     R->o->near_dup, o->id, o->line);
        }
out:
    free(texts); free(map); free(dup);
    return rc;
}

/* ------------------------------------------------------------------ 3. difficulty */

/* A precomputed verdict: ref_correct true/false, or a list / object of them (any true = solved).
 * Returns -1 when absent or malformed, else 0/1. */
static int precomputed(const cur_rec *r) {
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

/* Reference models: the API ones, then the local one. */
static int n_ref_models(const cur_opts *o) { return o->n_refs + (o->ref_local != NULL); }
static const char *ref_name(const cur_opts *o, int k) { return k < o->n_refs ? o->refs[k].model : o->ref_local_name; }

typedef struct ref_job {
    cur_rec *r;
    int ref;
    char *content;  /* a local model's reply (malloc'd; API replies are fetched by the task) */
    char *answer;   /* extracted answer (malloc'd) */
    bool done, correct, judged;
    char *error;
} ref_job;

typedef struct diff_ctx {
    run *R;
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
    const char *model = ref_name(o, J->ref);
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
    qhash_hex(J->r, qh);
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
    progress(D->R, "difficulty", D->n_done, D->n_jobs, &D->last);
    pthread_mutex_unlock(&D->mu);
}

static net_client *client_for(const cur_opts *o, const char *url, s1c_err *err) {
    net_client_opts no = {.base_url = url, .api_key = o->api_key, .timeout_s = o->timeout_s, .max_retries = o->retries,
                          .backoff_s = o->backoff_s};
    net_client *c = NULL;
    if (net_client_new(&c, &no, err)) return NULL;
    return c;
}

/* Looks a (record, model) verdict up in the journal lines. */
static cJSON *journal_find(cJSON *lines, cur_map *index, const cur_rec *r, const char *model) {
    char qh[17];
    qhash_hex(r, qh);
    uint64_t key = cur_hash(model, strlen(model), cur_hash(qh, 16, cur_hash(r->id, strlen(r->id), 0)));
    size_t at;
    if (!cur_map_get(index, key, &at)) return NULL;
    return cJSON_GetArrayItem(lines, (int)at);
}

static int journal_index(cJSON *lines, const char *model_key, cur_map *index, s1c_err *err) {
    int i = 0;
    cJSON *l;
    cJSON_ArrayForEach(l, lines) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(l, "id"), *qh = cJSON_GetObjectItemCaseSensitive(l, "qhash");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(l, model_key);
        if (cJSON_IsString(id) && cJSON_IsString(qh) && cJSON_IsString(m) && strlen(qh->valuestring) == 16) {
            uint64_t key = cur_hash(m->valuestring, strlen(m->valuestring),
                                    cur_hash(qh->valuestring, 16, cur_hash(id->valuestring, strlen(id->valuestring), 0)));
            if (cur_map_set(index, key, (size_t)i)) return s1c_fail(err, "out of memory");
        }
        i++;
    }
    return 0;
}

/* The local model's replies for its jobs, in one engine batch. */
static int local_replies(run *R, ref_job *jobs, size_t n, s1c_err *err) {
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

static int ask_refs(run *R, cJSON *lines, cur_map *index, s1c_err *err) {
    const cur_opts *o = R->o;
    diff_ctx D = {.R = R};
    int rc = 0;
    int nm = n_ref_models(o);
    D.jobs = calloc(R->n_live * (size_t)nm + 1, sizeof *D.jobs);
    D.clients = calloc((size_t)o->n_refs + 1, sizeof *D.clients);
    if (!D.jobs || !D.clients) { rc = s1c_fail(err, "out of memory"); goto out; }
    for (size_t i = 0; i < R->n_live; i++) {
        cur_rec *r = R->live[i];
        if (r->stage || precomputed(r) >= 0) continue;
        for (int k = 0; k < nm; k++)
            if (!journal_find(lines, index, r, ref_name(o, k))) D.jobs[D.n_jobs++] = (ref_job){.r = r, .ref = k};
    }
    if (D.n_jobs == 0) goto out;
    if (o->ref_local && (rc = local_replies(R, D.jobs, D.n_jobs, err))) goto out;
    for (int k = 0; k < o->n_refs; k++)
        if (!(D.clients[k] = client_for(o, o->refs[k].endpoint, err))) { rc = -1; goto out; }
    if (o->judge_endpoint) {
        char *jp = s1c_path_join(o->out_dir, "judge.cache.jsonl");
        if (!(D.judge = client_for(o, o->judge_endpoint, err)) || !jp || grade_judge_cache_open(&D.jcache, jp, err)) {
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
            cur_drop(J->r, "difficulty", "ref_error", "reference model %s failed: %s", ref_name(o, J->ref), J->error ? J->error : "?");
        else {
            cJSON *line = cJSON_CreateObject();
            char qh[17];
            qhash_hex(J->r, qh);
            cJSON_AddStringToObject(line, "id", J->r->id);
            cJSON_AddStringToObject(line, "qhash", qh);
            cJSON_AddStringToObject(line, "model", ref_name(o, J->ref));
            cJSON_AddStringToObject(line, "answer", J->answer);
            cJSON_AddBoolToObject(line, "correct", J->correct);
            cJSON_AddItemToArray(lines, line);
            if (cur_map_set(index, cur_hash(ref_name(o, J->ref), strlen(ref_name(o, J->ref)),
                                             cur_hash(qh, 16, cur_hash(J->r->id, strlen(J->r->id), 0))),
                            (size_t)cJSON_GetArraySize(lines) - 1))
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
static int measure_traces(run *R, s1c_err *err) {
    for (size_t i = 0; i < R->n_live; i++) {
        cur_rec *r = R->live[i];
        char *t = cur_trace(r, R->p->f.trajectories);
        if (!t) return s1c_fail(err, "record '%s': trace vanished", r->id);
        r->trace_tokens = cur_count_tokens(R->o->tok, t, strlen(t));
        free(t);
        set_item(r->obj, "trace_tokens", cJSON_CreateNumber((double)r->trace_tokens));
    }
    return 0;
}

static int stage_difficulty(run *R, s1c_err *err) {
    const cur_opts *o = R->o;
    if (measure_traces(R, err)) return -1;
    for (size_t i = 0; i < R->n_live; i++) {
        cur_rec *r = R->live[i];
        if (r->trace_tokens < o->min_trace_tokens)
            cur_drop(r, "difficulty", "short_trace", "teacher trace has %ld tokens (< %ld)", r->trace_tokens, o->min_trace_tokens);
        else if (!o->no_difficulty && precomputed(r) < 0 && !cur_str(r, R->p->f.solution))
            cur_drop(r, "difficulty", "no_solution", "no string field '%s' to grade reference answers against", R->p->f.solution);
    }
    if (o->no_difficulty) return 0;
    cJSON *lines = NULL;
    cur_map index = {0};
    int rc = 0;
    if (n_ref_models(o) > 0) {
        char *path = s1c_path_join(o->out_dir, "difficulty.journal.jsonl");
        cur_journal *j = NULL;
        rc = path ? cur_journal_open(&j, path, &lines, err) : s1c_fail(err, "out of memory");
        cur_journal_close(j);
        free(path);
        if (rc || (rc = journal_index(lines, "model", &index, err)) || (rc = ask_refs(R, lines, &index, err))) goto out;
    }
    for (size_t i = 0; i < R->n_live; i++) {
        cur_rec *r = R->live[i];
        if (r->stage) continue;
        int pre = precomputed(r);
        if (pre == 1) { cur_drop(r, "difficulty", "solved", "solved by a reference model (precomputed ref_correct)"); continue; }
        if (pre == 0) continue;
        cJSON *answers = cJSON_CreateObject();
        bool solved = false;
        for (int k = 0; k < n_ref_models(o) && !solved; k++) {
            cJSON *l = journal_find(lines, &index, r, ref_name(o, k));
            if (!l) break; /* dropped with ref_error above */
            cJSON *a = cJSON_GetObjectItemCaseSensitive(l, "answer");
            bool c = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l, "correct"));
            cJSON_AddStringToObject(answers, ref_name(o, k), cJSON_IsString(a) ? a->valuestring : "");
            if (c) {
                solved = true;
                cur_drop(r, "difficulty", "solved", "solved by %s (answer '%.200s')", ref_name(o, k), cJSON_IsString(a) ? a->valuestring : "");
            }
        }
        set_item(r->obj, "ref_answers", answers);
        if (!r->stage) set_item(r->obj, "ref_correct", cJSON_CreateFalse());
    }
out:
    cJSON_Delete(lines);
    cur_map_free(&index);
    return rc;
}

/* ------------------------------------------------------------------ 4. domain */

typedef struct dom_ctx {
    run *R;
    const cur_msc *msc;
    net_client *client;
    cur_journal *journal;
    cur_rec **todo;
    int *code;        /* per todo: index into msc, -1 */
    char **error;
    size_t n, n_done;
    pthread_mutex_t mu;
    double last;
} dom_ctx;

static void dom_task(void *ctx, size_t i) {
    dom_ctx *D = ctx;
    cur_rec *r = D->todo[i];
    const cur_opts *o = D->R->o;
    char *prompt = cur_msc_prompt(D->msc, r->question);
    net_message msg = {"user", prompt ? prompt : ""};
    net_chat_params prm = {.temperature = 0, .max_tokens = -1};
    net_chat_result res;
    s1c_err e = {{0}};
    D->code[i] = -1;
    if (!prompt) D->error[i] = cur_strdup("out of memory");
    else if (net_chat(D->client, o->domain_model, &msg, 1, &prm, &res, &e)) D->error[i] = cur_strdup(e.msg);
    else {
        char *reasoning = NULL, *answer = NULL;
        if (distill_split(res.content, res.reasoning, &reasoning, &answer, &e) == 0) {
            D->code[i] = cur_msc_parse_reply(D->msc, answer);
            if (D->code[i] < 0) {
                char *ex = cur_printable(answer, strlen(answer), 120);
                char buf[300];
                snprintf(buf, sizeof buf, "classifier reply names no MSC code: '%s'", ex ? ex : "");
                free(ex);
                D->error[i] = cur_strdup(buf);
            }
        } else {
            D->error[i] = cur_strdup(e.msg);
        }
        free(reasoning);
        free(answer);
        net_chat_result_free(&res);
    }
    free(prompt);
    if (D->code[i] >= 0) {
        cJSON *line = cJSON_CreateObject();
        char qh[17];
        qhash_hex(r, qh);
        cJSON_AddStringToObject(line, "id", r->id);
        cJSON_AddStringToObject(line, "qhash", qh);
        cJSON_AddStringToObject(line, "classifier", o->domain_model);
        cJSON_AddStringToObject(line, "code", D->msc->code[D->code[i]]);
        if (cur_journal_append(D->journal, line, &e)) { D->code[i] = -1; D->error[i] = cur_strdup(e.msg); }
        cJSON_Delete(line);
    }
    pthread_mutex_lock(&D->mu);
    D->n_done++;
    progress(D->R, "domain", D->n_done, D->n, &D->last);
    pthread_mutex_unlock(&D->mu);
}

static void set_domain(run *R, cur_rec *r, const cur_msc *msc, int c) {
    set_item(r->obj, R->p->f.domain, cJSON_CreateString(msc->code[c]));
    set_item(r->obj, "domain_title", cJSON_CreateString(msc->title[c]));
    r->domain = cur_str(r, R->p->f.domain);
}

static int stage_domain(run *R, s1c_err *err) {
    const cur_opts *o = R->o;
    dom_ctx D = {.R = R};
    cur_msc msc = {0};
    cJSON *lines = NULL;
    cur_map index = {0};
    int rc = 0;
    size_t missing = 0;
    for (size_t i = 0; i < R->n_live; i++) missing += !R->live[i]->domain;
    if (!missing) return 0;
    if (!o->domain_endpoint) return s1c_fail(err, "domain: %zu question(s) have no '%s' and no classifier was given (--domain-endpoint/--domain-model)", missing, R->p->f.domain);
    char *path = s1c_path_join(o->out_dir, "domain.journal.jsonl");
    if (!path) return s1c_fail(err, "out of memory");
    rc = cur_msc_load(&msc, err);
    if (!rc) rc = cur_journal_open(&D.journal, path, &lines, err);
    free(path);
    if (rc || (rc = journal_index(lines, "classifier", &index, err))) goto out;
    D.msc = &msc;
    D.todo = calloc(missing, sizeof *D.todo);
    D.code = calloc(missing, sizeof *D.code);
    D.error = calloc(missing, sizeof *D.error);
    if (!D.todo || !D.code || !D.error) { rc = s1c_fail(err, "out of memory"); goto out; }
    for (size_t i = 0; i < R->n_live; i++) {
        cur_rec *r = R->live[i];
        if (r->domain) continue;
        cJSON *l = journal_find(lines, &index, r, o->domain_model);
        cJSON *c = l ? cJSON_GetObjectItemCaseSensitive(l, "code") : NULL;
        int k = -1;
        for (int m = 0; cJSON_IsString(c) && m < msc.n; m++)
            if (!strcmp(msc.code[m], c->valuestring)) k = m;
        if (k >= 0) set_domain(R, r, &msc, k);
        else D.todo[D.n++] = r;
    }
    if (D.n) {
        if (!(D.client = client_for(o, o->domain_endpoint, err))) { rc = -1; goto out; }
        if (!o->quiet) fprintf(stderr, "[curate] domain: %zu classifier calls to make\n", D.n);
        pthread_mutex_init(&D.mu, NULL);
        D.last = s1c_now();
        rc = cur_par_run(D.n, o->concurrency, o->rps, dom_task, &D, err);
        pthread_mutex_destroy(&D.mu);
        for (size_t i = 0; i < D.n && rc == 0; i++) {
            if (D.code[i] >= 0) set_domain(R, D.todo[i], &msc, D.code[i]);
            else cur_drop(D.todo[i], "domain", "domain_error", "classifier %s: %s", o->domain_model, D.error[i] ? D.error[i] : "?");
        }
    }
out:
    for (size_t i = 0; D.error && i < D.n; i++) free(D.error[i]);
    free(D.todo); free(D.code); free(D.error);
    net_client_free(D.client);
    cur_journal_close(D.journal);
    cJSON_Delete(lines);
    cur_map_free(&index);
    cur_msc_free(&msc);
    return rc;
}

/* ------------------------------------------------------------------ 5. diversity and outputs */

/* The record as s1c train reads it: s1K's field names, thinking_trajectories as a list. */
static cJSON *final_obj(const run *R, const cur_rec *r) {
    cJSON *o = cJSON_Duplicate(r->obj, 1);
    if (!o) return NULL;
    const cur_fields *f = &R->p->f;
    const char *from[] = {f->question, f->solution, f->trajectories, f->attempt, f->domain};
    const char *to[] = {"question", "solution", "thinking_trajectories", "attempt", "domain"};
    for (int k = 0; k < 5; k++) {
        if (!from[k] || !strcmp(from[k], to[k])) continue;
        cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(o, from[k]);
        if (v) set_item(o, to[k], v);
    }
    cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "thinking_trajectories");
    if (cJSON_IsString(t)) {
        cJSON *arr = cJSON_CreateArray();
        cJSON_AddItemToArray(arr, cJSON_CreateString(t->valuestring));
        set_item(o, "thinking_trajectories", arr);
    }
    if (!cJSON_GetObjectItemCaseSensitive(o, "id")) cJSON_AddStringToObject(o, "id", r->id);
    return o;
}

static int stage_diversity(run *R, cur_rec ***sel, size_t *n_sel, s1c_err *err) {
    size_t n = R->n_live;
    const char **dom = malloc((n ? n : 1) * sizeof *dom);
    long *len = malloc((n ? n : 1) * sizeof *len);
    size_t *pick = malloc((R->o->k ? R->o->k : 1) * sizeof *pick);
    *sel = malloc((R->o->k ? R->o->k : 1) * sizeof **sel);
    if (!dom || !len || !pick || !*sel) { free(dom); free(len); free(pick); return s1c_fail(err, "out of memory"); }
    for (size_t i = 0; i < n; i++) { dom[i] = R->live[i]->domain; len[i] = R->live[i]->trace_tokens; }
    size_t got = cur_sample(dom, len, n, R->o->k, R->o->seed, pick);
    char *chosen = calloc(n ? n : 1, 1);
    if (!chosen) { free(dom); free(len); free(pick); return s1c_fail(err, "out of memory"); }
    for (size_t i = 0; i < got; i++) {
        chosen[pick[i]] = 1;
        (*sel)[i] = R->live[pick[i]];
        set_item(R->live[pick[i]]->obj, "selection_order", cJSON_CreateNumber((double)i));
    }
    for (size_t i = 0; i < n; i++)
        if (!chosen[i]) cur_drop(R->live[i], "diversity", "not_selected", "not drawn by the diversity sampler (k = %zu)", R->o->k);
    *n_sel = got;
    free(chosen); free(dom); free(len); free(pick);
    return 0;
}

static int write_s1k(run *R, cur_rec **sel, size_t n, s1c_err *err) {
    char *path = s1c_path_join(R->o->out_dir, "s1k.jsonl");
    s1c_wfile w = {0};
    if (!path || s1c_wfile_open(&w, path, err)) { free(path); return path ? -1 : s1c_fail(err, "out of memory"); }
    free(path);
    for (size_t i = 0; i < n; i++) {
        cur_rec tmp = *sel[i];
        tmp.obj = final_obj(R, sel[i]);
        if (!tmp.obj || !cur_write_rec(w.fp, &tmp)) w.bad = true;
        cJSON_Delete(tmp.obj);
    }
    return s1c_wfile_commit(&w, err);
}

/* ------------------------------------------------------------------ summary and plot */

#define N_BINS 20

typedef struct dcount { const char *domain; size_t n; } dcount;

static int cmp_dcount(const void *a, const void *b) {
    const dcount *x = a, *y = b;
    if (x->n != y->n) return x->n > y->n ? -1 : 1;
    return strcmp(x->domain, y->domain);
}

static size_t domain_hist(cur_rec **sel, size_t n, dcount *out) {
    size_t nd = 0;
    for (size_t i = 0; i < n; i++) {
        const char *d = sel[i]->domain ? sel[i]->domain : "";
        size_t j = 0;
        while (j < nd && strcmp(out[j].domain, d)) j++;
        if (j == nd) out[nd++] = (dcount){d, 0};
        out[j].n++;
    }
    qsort(out, nd, sizeof *out, cmp_dcount);
    return nd;
}

static char *svg_plot(const dcount *dc, size_t nd, const size_t *hs, const size_t *hc, double bin, size_t n_sel, size_t n_cand) {
    cur_sb b = {0};
    const double W = 760, H = 620, L = 60, R = 20;
    cur_sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" font-family=\"sans-serif\" font-size=\"11\">\n", W, H, W, H);
    cur_sb_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    /* panel 1: domains of the selection */
    double T = 30, B = 280, maxc = 1;
    for (size_t i = 0; i < nd; i++) if ((double)dc[i].n > maxc) maxc = (double)dc[i].n;
    cur_sb_printf(&b, "<text x=\"%g\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">Selected questions per domain (%zu questions, %zu domains)</text>\n", W / 2, n_sel, nd);
    cur_sb_printf(&b, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", L, B, W - R, B);
    double bw = nd ? (W - L - R) / (double)nd : 0;
    for (size_t i = 0; i < nd; i++) {
        double h = (B - T) * (double)dc[i].n / maxc, x = L + bw * (double)i;
        char *lab = cur_printable(dc[i].domain, strlen(dc[i].domain), 24);
        cur_sb b2 = {0};
        for (const char *p = lab ? lab : ""; *p; p++) {
            if (*p == '<') cur_sb_put(&b2, "&lt;", 4);
            else if (*p == '&') cur_sb_put(&b2, "&amp;", 5);
            else if (*p == '"') cur_sb_put(&b2, "&quot;", 6);
            else cur_sb_put(&b2, p, 1);
        }
        cur_sb_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#1f77b4\"><title>%s: %zu</title></rect>\n",
                      x + 1, B - h, bw > 2 ? bw - 2 : bw, h, b2.p ? b2.p : "", dc[i].n);
        cur_sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" transform=\"rotate(90 %.1f %.1f)\">%s</text>\n",
                      x + bw / 2 - 3, B + 4, x + bw / 2 - 3, B + 4, b2.p ? b2.p : "");
        free(b2.p);
        free(lab);
    }
    cur_sb_printf(&b, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">%.0f</text>\n", L - 4, T + 4, maxc);
    /* panel 2: trace-length histogram, selection vs. candidates (fractions) */
    T = 360; B = 580;
    double maxf = 1e-9;
    for (int i = 0; i < N_BINS; i++) {
        double a = n_sel ? (double)hs[i] / (double)n_sel : 0, c = n_cand ? (double)hc[i] / (double)n_cand : 0;
        if (a > maxf) maxf = a;
        if (c > maxf) maxf = c;
    }
    cur_sb_printf(&b, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\" font-size=\"14\">Teacher-trace length (tokens): selected (blue) vs. candidates (grey)</text>\n", W / 2, T - 12);
    cur_sb_printf(&b, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", L, B, W - R, B);
    double hw = (W - L - R) / N_BINS;
    for (int i = 0; i < N_BINS; i++) {
        double x = L + hw * i;
        double hcnd = n_cand ? (B - T) * ((double)hc[i] / (double)n_cand) / maxf : 0, hsel = n_sel ? (B - T) * ((double)hs[i] / (double)n_sel) / maxf : 0;
        cur_sb_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#bbb\"><title>%.0f-%.0f tokens: %zu candidates</title></rect>\n",
                      x + 1, B - hcnd, hw / 2 - 1, hcnd, bin * i, bin * (i + 1), hc[i]);
        cur_sb_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#1f77b4\"><title>%.0f-%.0f tokens: %zu selected</title></rect>\n",
                      x + hw / 2, B - hsel, hw / 2 - 1, hsel, bin * i, bin * (i + 1), hs[i]);
        if (i % 4 == 0) cur_sb_printf(&b, "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%.0f</text>\n", x, B + 14, bin * i);
    }
    cur_sb_printf(&b, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">%.0f</text>\n", W - R, B + 14, bin * N_BINS);
    cur_sb_printf(&b, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">%.0f%%</text>\n", L - 4, T + 4, 100 * maxf);
    cur_sb_printf(&b, "</svg>\n");
    if (b.oom) { free(b.p); return NULL; }
    return b.p;
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static void len_stats(cJSON *parent, const char *name, cur_rec **recs, size_t n) {
    cJSON *o = cJSON_AddObjectToObject(parent, name);
    long *v = malloc((n ? n : 1) * sizeof *v);
    if (!o || !v) { free(v); return; }
    double sum = 0;
    for (size_t i = 0; i < n; i++) { v[i] = recs[i]->trace_tokens; sum += (double)v[i]; }
    qsort(v, n, sizeof *v, cmp_long);
    cJSON_AddNumberToObject(o, "n", (double)n);
    if (n) {
        cJSON_AddNumberToObject(o, "min", (double)v[0]);
        cJSON_AddNumberToObject(o, "median", (double)v[n / 2]);
        cJSON_AddNumberToObject(o, "mean", sum / (double)n);
        cJSON_AddNumberToObject(o, "max", (double)v[n - 1]);
    }
    free(v);
}

static int write_summary(run *R, cur_rec **cand, size_t n_cand, cur_rec **sel, size_t n_sel, s1c_err *err) {
    cJSON *s = cJSON_CreateObject();
    dcount *dc = malloc((n_sel ? n_sel : 1) * sizeof *dc);
    if (!s || !dc) { cJSON_Delete(s); free(dc); return s1c_fail(err, "out of memory"); }
    cJSON_AddNumberToObject(s, "pool", (double)R->p->n);
    cJSON_AddNumberToObject(s, "k", (double)R->o->k);
    cJSON_AddNumberToObject(s, "seed", (double)R->o->seed);
    cJSON_AddNumberToObject(s, "selected", (double)n_sel);
    cJSON_AddStringToObject(s, "trace_length_unit", R->o->tok ? "tokenizer tokens" : "fallback estimate (letter runs, digits, symbols)");
    cJSON *stages = cJSON_AddArrayToObject(s, "stages");
    for (int i = 0; i < R->n_st; i++) {
        stage_stat *t = &R->st[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "stage", t->name);
        cJSON_AddNumberToObject(o, "in", (double)t->in);
        cJSON_AddNumberToObject(o, "kept", (double)t->kept);
        cJSON_AddNumberToObject(o, "dropped", (double)t->dropped);
        cJSON *rs = cJSON_AddObjectToObject(o, "reasons");
        for (int j = 0; j < t->n_kinds; j++) cJSON_AddNumberToObject(rs, t->kind[j], (double)t->count[j]);
        cJSON_AddItemToArray(stages, o);
    }
    size_t nd = domain_hist(sel, n_sel, dc);
    cJSON *dh = cJSON_AddObjectToObject(s, "domains");
    for (size_t i = 0; i < nd; i++) cJSON_AddNumberToObject(dh, dc[i].domain, (double)dc[i].n);
    cJSON *lens = cJSON_AddObjectToObject(s, "trace_tokens");
    len_stats(lens, "selected", sel, n_sel);
    len_stats(lens, "candidates", cand, n_cand);
    long maxlen = 1;
    for (size_t i = 0; i < n_cand; i++) if (cand[i]->trace_tokens > maxlen) maxlen = cand[i]->trace_tokens;
    double bin = (double)(maxlen + N_BINS) / N_BINS;
    size_t hs[N_BINS] = {0}, hc[N_BINS] = {0};
    for (size_t i = 0; i < n_cand; i++) hc[(int)((double)cand[i]->trace_tokens / bin)]++;
    for (size_t i = 0; i < n_sel; i++) hs[(int)((double)sel[i]->trace_tokens / bin)]++;
    cJSON *hist = cJSON_AddObjectToObject(lens, "histogram");
    cJSON_AddNumberToObject(hist, "bin_width", bin);
    cJSON *a = cJSON_AddArrayToObject(hist, "selected"), *c = cJSON_AddArrayToObject(hist, "candidates");
    for (int i = 0; i < N_BINS; i++) {
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)hs[i]));
        cJSON_AddItemToArray(c, cJSON_CreateNumber((double)hc[i]));
    }
    char *js = cJSON_Print(s);
    char *svg = svg_plot(dc, nd, hs, hc, bin, n_sel, n_cand);
    char *sp = s1c_path_join(R->o->out_dir, "summary.json"), *gp = s1c_path_join(R->o->out_dir, "curate.svg");
    int rc = 0;
    if (!js || !svg || !sp || !gp) rc = s1c_fail(err, "out of memory");
    else if (s1c_write_file_atomic(sp, js, strlen(js), err) || s1c_write_file_atomic(gp, svg, strlen(svg), err)) rc = -1;
    if (rc == 0 && !R->o->quiet) {
        fprintf(stderr, "[curate] selected %zu of %zu candidates from %zu domain(s) -> %s/s1k.jsonl\n", n_sel, n_cand, nd,
                R->o->out_dir);
        fprintf(stderr, "[curate] domains:");
        for (size_t i = 0; i < nd && i < 12; i++) fprintf(stderr, " %s %zu%s", dc[i].domain, dc[i].n, i + 1 < nd ? "," : "");
        fprintf(stderr, "%s\n", nd > 12 ? " ..." : "");
        cJSON *ss = cJSON_GetObjectItem(lens, "selected"), *cs = cJSON_GetObjectItem(lens, "candidates");
        cJSON *sm = cJSON_GetObjectItem(ss, "median"), *cm = cJSON_GetObjectItem(cs, "median");
        if (sm && cm)
            fprintf(stderr, "[curate] trace tokens, median: selected %.0f, candidates %.0f (histogram in curate.svg)\n", sm->valuedouble, cm->valuedouble);
    }
    free(js); free(svg); free(sp); free(gp); free(dc);
    cJSON_Delete(s);
    return rc;
}

/* ------------------------------------------------------------------ the run */

/* What would fail late is refused before any work: questions without a verdict and no reference
 * model, questions without a domain and no classifier. */
static int check_inputs(run *R, s1c_err *err) {
    const cur_opts *o = R->o;
    size_t no_domain = 0;
    const cur_rec *nd = NULL;
    for (size_t i = 0; i < R->n_live; i++)
        if (!R->live[i]->domain && !no_domain++) nd = R->live[i];
    if (no_domain && !o->domain_endpoint)
        return s1c_fail(err, "domain: %zu question(s) (first: id '%s', line %ld) have no '%s' and no classifier was given (--domain-endpoint/--domain-model)",
                        no_domain, nd->id, nd->line, R->p->f.domain);
    if (o->no_difficulty || n_ref_models(o) > 0) return 0;
    size_t lacking = 0;
    const cur_rec *first = NULL;
    for (size_t i = 0; i < R->n_live; i++)
        if (precomputed(R->live[i]) < 0) {
            if (!lacking++) first = R->live[i];
        }
    if (lacking)
        return s1c_fail(err, "difficulty: %zu question(s) (first: id '%s', line %ld) have no ref_correct and no reference model was given (--ref-endpoint/--ref-model, or --no-difficulty)",
                        lacking, first->id, first->line);
    return 0;
}

int cur_run(cur_pool *p, const cur_opts *o, s1c_err *err) {
    run R = {.p = p, .o = o};
    int rc = 0;
    cur_rec **sel = NULL, **cand = NULL;
    size_t n_sel = 0, n_cand = 0;
    if (s1c_mkdir_p(o->out_dir, err)) return -1;
    R.live = malloc((p->n ? p->n : 1) * sizeof *R.live);
    char *sp = s1c_path_join(o->out_dir, "stats.jsonl");
    if (!R.live || !sp) { free(R.live); free(sp); return s1c_fail(err, "out of memory"); }
    R.stats = fopen(sp, "w");
    if (!R.stats) { rc = s1c_fail(err, "%s: cannot write", sp); free(sp); free(R.live); return rc; }
    free(sp);
    for (size_t i = 0; i < p->n; i++) R.live[i] = &p->r[i];
    R.n_live = p->n;
    double t0 = s1c_now();
    if ((rc = stage_end(&R, "load", t0, err))) goto out;
    if ((rc = check_inputs(&R, err))) goto out;
    t0 = s1c_now();
    stage_decontam(&R);
    if ((rc = stage_end(&R, "decontam", t0, err))) goto out;
    t0 = s1c_now();
    if ((rc = stage_quality(&R, err)) || (rc = stage_end(&R, "quality", t0, err))) goto out;
    t0 = s1c_now();
    if ((rc = stage_difficulty(&R, err)) || (rc = stage_end(&R, "difficulty", t0, err))) goto out;
    t0 = s1c_now();
    if ((rc = stage_domain(&R, err)) || (rc = stage_end(&R, "domain", t0, err))) goto out;
    n_cand = R.n_live;
    cand = malloc((n_cand ? n_cand : 1) * sizeof *cand);
    if (!cand) { rc = s1c_fail(err, "out of memory"); goto out; }
    memcpy(cand, R.live, n_cand * sizeof *cand);
    t0 = s1c_now();
    if ((rc = stage_diversity(&R, &sel, &n_sel, err)) || (rc = stage_end(&R, "diversity", t0, err))) goto out;
    if ((rc = write_s1k(&R, sel, n_sel, err)) || (rc = write_summary(&R, cand, n_cand, sel, n_sel, err))) goto out;
    if (n_sel < o->k && !o->quiet)
        fprintf(stderr, "[curate] warning: only %zu question(s) survived the filters; s1k.jsonl has %zu, not %zu\n", n_cand, n_sel, o->k);
out:
    if (R.stats && fclose(R.stats) && rc == 0) rc = s1c_fail(err, "%s/stats.jsonl: write failed", o->out_dir);
    free(R.live);
    free(sel);
    free(cand);
    return rc;
}
