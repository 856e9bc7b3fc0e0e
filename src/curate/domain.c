/* The domain stage (SPEC.md §1.3): an LLM names an MSC code for questions without a domain;
 * answers are journaled. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_internal.h"

/* ------------------------------------------------------------------ 4. domain */

typedef struct dom_ctx {
    run_ctx *R;
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
        cur_qhash_hex(r, qh);
        cJSON_AddStringToObject(line, "id", r->id);
        cJSON_AddStringToObject(line, "qhash", qh);
        cJSON_AddStringToObject(line, "classifier", o->domain_model);
        cJSON_AddStringToObject(line, "code", D->msc->code[D->code[i]]);
        if (cur_journal_append(D->journal, line, &e)) { D->code[i] = -1; D->error[i] = cur_strdup(e.msg); }
        cJSON_Delete(line);
    }
    pthread_mutex_lock(&D->mu);
    D->n_done++;
    cur_progress(D->R, "domain", D->n_done, D->n, &D->last);
    pthread_mutex_unlock(&D->mu);
}

static void set_domain(run_ctx *R, cur_rec *r, const cur_msc *msc, int c) {
    cur_set_item(r->obj, R->p->f.domain, cJSON_CreateString(msc->code[c]));
    cur_set_item(r->obj, "domain_title", cJSON_CreateString(msc->title[c]));
    r->domain = cur_str(r, R->p->f.domain);
}

int cur_stage_domain(run_ctx *R, s1c_err *err) {
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
    if (rc || (rc = cur_journal_index(lines, "classifier", &index, err))) goto out;
    D.msc = &msc;
    D.todo = calloc(missing, sizeof *D.todo);
    D.code = calloc(missing, sizeof *D.code);
    D.error = calloc(missing, sizeof *D.error);
    if (!D.todo || !D.code || !D.error) { rc = s1c_fail(err, "out of memory"); goto out; }
    for (size_t i = 0; i < R->n_live; i++) {
        cur_rec *r = R->live[i];
        if (r->domain) continue;
        cJSON *l = cur_journal_find(lines, &index, r, o->domain_model);
        cJSON *c = l ? cJSON_GetObjectItemCaseSensitive(l, "code") : NULL;
        int k = -1;
        for (int m = 0; cJSON_IsString(c) && m < msc.n; m++)
            if (!strcmp(msc.code[m], c->valuestring)) k = m;
        if (k >= 0) set_domain(R, r, &msc, k);
        else D.todo[D.n++] = r;
    }
    if (D.n) {
        if (!(D.client = cur_client_for(o, o->domain_endpoint, err))) { rc = -1; goto out; }
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

