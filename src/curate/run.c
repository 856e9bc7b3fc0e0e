/* The curate run: load → decontamination → quality → difficulty → domain → diversity, every
 * stage writing its kept and dropped records and a stats line, then s1k.jsonl, summary.json
 * and curate.svg (SPEC.md §1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_internal.h"

/* ------------------------------------------------------------------ helpers */

void cur_set_item(cJSON *obj, const char *name, cJSON *item) {
    if (!item) return;
    if (cJSON_GetObjectItemCaseSensitive(obj, name)) cJSON_ReplaceItemInObjectCaseSensitive(obj, name, item);
    else cJSON_AddItemToObject(obj, name, item);
}

static uint64_t qhash(const cur_rec *r) { return cur_hash(r->question, strlen(r->question), 0); }

void cur_qhash_hex(const cur_rec *r, char out[17]) { snprintf(out, 17, "%016llx", (unsigned long long)qhash(r)); }

void cur_progress(const run_ctx *R, const char *stage, size_t done, size_t total, double *last) {
    if (R->o->quiet) return;
    double now = s1c_now();
    if (done < total && now - *last < 5.0) return;
    *last = now;
    fprintf(stderr, "[curate] %s: %zu/%zu calls done\n", stage, done, total);
}

/* Writes the live records and the ones dropped by this stage, the stats line, and shrinks live. */
static int stage_end(run_ctx *R, const char *name, double t0, s1c_err *err) {
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

/* The year of a record (a number, or a string starting with one), or 0. */
static long year_of(const cur_rec *r, const char *field) {
    cJSON *v = field ? cJSON_GetObjectItemCaseSensitive(r->obj, field) : NULL;
    if (cJSON_IsNumber(v)) return (long)v->valuedouble;
    if (cJSON_IsString(v)) return strtol(v->valuestring, NULL, 10);
    return 0;
}

static void stage_decontam(run_ctx *R) {
    const cur_opts *o = R->o;
    for (size_t i = 0; i < R->n_live; i++) {
        cur_rec *r = R->live[i];
        long y = o->max_year > 0 ? year_of(r, R->p->f.year) : 0;
        if (y > o->max_year) {
            cur_drop(r, "decontam", "too_recent", "year %ld is after %d (an evaluation year)", y, o->max_year);
            continue;
        }
        const char *hit = o->decontam ? cur_decontam_match(o->decontam, r->question) : NULL;
        if (hit) cur_drop(r, "decontam", "contaminated", "shares a word 8-gram with %s", hit);
    }
}

/* ------------------------------------------------------------------ 2. quality */

static int stage_quality(run_ctx *R, s1c_err *err) {
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

/* ------------------------------------------------------------------ 5. diversity and outputs */

/* The record as s1c train reads it: s1K's field names, thinking_trajectories as a list. */
static cJSON *final_obj(const run_ctx *R, const cur_rec *r) {
    cJSON *o = cJSON_Duplicate(r->obj, 1);
    if (!o) return NULL;
    const cur_fields *f = &R->p->f;
    const char *from[] = {f->question, f->solution, f->trajectories, f->attempt, f->domain};
    const char *to[] = {"question", "solution", "thinking_trajectories", "attempt", "domain"};
    for (int k = 0; k < 5; k++) {
        if (!from[k] || !strcmp(from[k], to[k])) continue;
        cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(o, from[k]);
        if (v) cur_set_item(o, to[k], v);
    }
    cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "thinking_trajectories");
    if (cJSON_IsString(t)) {
        cJSON *arr = cJSON_CreateArray();
        cJSON_AddItemToArray(arr, cJSON_CreateString(t->valuestring));
        cur_set_item(o, "thinking_trajectories", arr);
    }
    if (!cJSON_GetObjectItemCaseSensitive(o, "id")) cJSON_AddStringToObject(o, "id", r->id);
    return o;
}

static int stage_diversity(run_ctx *R, cur_rec ***sel, size_t *n_sel, s1c_err *err) {
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
        cur_set_item(R->live[pick[i]]->obj, "selection_order", cJSON_CreateNumber((double)i));
    }
    for (size_t i = 0; i < n; i++)
        if (!chosen[i]) cur_drop(R->live[i], "diversity", "not_selected", "not drawn by the diversity sampler (k = %zu)", R->o->k);
    *n_sel = got;
    free(chosen); free(dom); free(len); free(pick);
    return 0;
}

static int write_s1k(run_ctx *R, cur_rec **sel, size_t n, s1c_err *err) {
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

/* ------------------------------------------------------------------ the run */

/* What would fail late is refused before any work: questions without a verdict and no reference
 * model, questions without a domain and no classifier. */
static int check_inputs(run_ctx *R, s1c_err *err) {
    const cur_opts *o = R->o;
    size_t no_domain = 0;
    const cur_rec *nd = NULL;
    for (size_t i = 0; i < R->n_live; i++)
        if (!R->live[i]->domain && !no_domain++) nd = R->live[i];
    if (no_domain && !o->domain_endpoint)
        return s1c_fail(err, "domain: %zu question(s) (first: id '%s', line %ld) have no '%s' and no classifier was given (--domain-endpoint/--domain-model)",
                        no_domain, nd->id, nd->line, R->p->f.domain);
    if (o->no_difficulty || cur_n_ref_models(o) > 0) return 0;
    size_t lacking = 0;
    const cur_rec *first = NULL;
    for (size_t i = 0; i < R->n_live; i++)
        if (cur_precomputed(R->live[i]) < 0) {
            if (!lacking++) first = R->live[i];
        }
    if (lacking)
        return s1c_fail(err, "difficulty: %zu question(s) (first: id '%s', line %ld) have no ref_correct and no reference model was given (--ref-endpoint/--ref-model, or --no-difficulty)",
                        lacking, first->id, first->line);
    return 0;
}

int cur_run(cur_pool *p, const cur_opts *o, s1c_err *err) {
    run_ctx R = {.p = p, .o = o};
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
    if ((rc = cur_stage_difficulty(&R, err)) || (rc = stage_end(&R, "difficulty", t0, err))) goto out;
    t0 = s1c_now();
    if ((rc = cur_stage_domain(&R, err)) || (rc = stage_end(&R, "domain", t0, err))) goto out;
    n_cand = R.n_live;
    cand = malloc((n_cand ? n_cand : 1) * sizeof *cand);
    if (!cand) { rc = s1c_fail(err, "out of memory"); goto out; }
    memcpy(cand, R.live, n_cand * sizeof *cand);
    t0 = s1c_now();
    if ((rc = stage_diversity(&R, &sel, &n_sel, err)) || (rc = stage_end(&R, "diversity", t0, err))) goto out;
    if ((rc = write_s1k(&R, sel, n_sel, err)) || (rc = cur_write_summary(&R, cand, n_cand, sel, n_sel, err))) goto out;
    if (n_sel < o->k && !o->quiet)
        fprintf(stderr, "[curate] warning: only %zu question(s) survived the filters; s1k.jsonl has %zu, not %zu\n", n_cand, n_sel, o->k);
out:
    if (R.stats && fclose(R.stats) && rc == 0) rc = s1c_fail(err, "%s/stats.jsonl: write failed", o->out_dir);
    free(R.live);
    free(sel);
    free(cand);
    return rc;
}
