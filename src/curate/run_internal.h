/* The curate run's shared state and the stages that live in their own files
 * (difficulty.c, domain.c, report.c); run.c drives them. */
#ifndef S1C_CURATE_RUN_H
#define S1C_CURATE_RUN_H

#include <stdio.h>

#include "curate_internal.h"

#define MAX_KINDS 32

typedef struct stage_stat {
    const char *name;
    size_t in, kept, dropped;
    const char *kind[MAX_KINDS];
    size_t count[MAX_KINDS];
    int n_kinds;
    double seconds;
} stage_stat;

typedef struct run_ctx {
    cur_pool *p;
    const cur_opts *o;
    cur_rec **live;      /* records alive before the current stage */
    size_t n_live;
    stage_stat st[8];
    int n_st;
    FILE *stats;         /* stats.jsonl */
} run_ctx;

/* Sets obj[name] = item, replacing an existing member (item owned by obj afterwards). */
void cur_set_item(cJSON *obj, const char *name, cJSON *item);
/* The question's hash as 16 hex digits (journal keys: an edited question is asked again). */
void cur_qhash_hex(const cur_rec *r, char out[17]);
/* A progress line at most every 5 s (and at the end). */
void cur_progress(const run_ctx *R, const char *stage, size_t done, size_t total, double *last);
/* An API client with the run's timeout, retries and key. */
net_client *cur_client_for(const cur_opts *o, const char *url, s1c_err *err);
/* Journal lines indexed by (id, question hash, model_key's value): the index maps to the line
 * objects themselves (lines must outlive it); find returns the line or NULL. */
int cur_journal_index(cJSON *lines, const char *model_key, cur_map *index, s1c_err *err);
cJSON *cur_journal_find(cJSON *lines, cur_map *index, const cur_rec *r, const char *model);
/* A precomputed ref_correct verdict: -1 absent or malformed, else 0/1 (any true = solved). */
int cur_precomputed(const cur_rec *r);

/* Reference models: the API ones, then the local one. */
static inline int cur_n_ref_models(const cur_opts *o) { return o->n_refs + (o->ref_local != NULL); }
static inline const char *cur_ref_name(const cur_opts *o, int k) { return k < o->n_refs ? o->refs[k].model : o->ref_local_name; }

int cur_stage_difficulty(run_ctx *R, s1c_err *err);
int cur_stage_domain(run_ctx *R, s1c_err *err);
/* summary.json and curate.svg from the candidates (after the domain stage) and the selection. */
int cur_write_summary(run_ctx *R, cur_rec **cand, size_t n_cand, cur_rec **sel, size_t n_sel, s1c_err *err);

#endif
