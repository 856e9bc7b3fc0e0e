/* Decontamination (SPEC.md §1): a question is dropped when it shares a lowercased word 8-gram
 * with an evaluation text, as s1 did while building its pool. The n-grams of every evaluation
 * text go into one hash map (hash -> benchmark name); a pool question is looked up n-gram by
 * n-gram. Hashes are 64-bit, so a false match needs a collision (about n²/2^64). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curate_internal.h"

/* Evaluation texts shorter than n words are matched as a contiguous run of their words anywhere
 * in a question when they have at least this many words (a 1-2 word text only matches an
 * identical question: "Find x." must not remove every question containing it). */
#define MIN_SHORT 3

struct cur_decontam {
    int n;
    uint64_t short_lens;  /* bit k: some evaluation text has k words (MIN_SHORT <= k < n) */
    cur_map grams;       /* n-gram hash -> index into names */
    const char **names;  /* benchmark names (not owned) */
    size_t n_names;
};

int cur_decontam_new(cur_decontam **out, int n, s1c_err *err) {
    *out = calloc(1, sizeof **out);
    if (!*out) return s1c_fail(err, "out of memory");
    (*out)->n = n > 0 ? n : 8;
    return 0;
}

void cur_decontam_free(cur_decontam *d) {
    if (!d) return;
    cur_map_free(&d->grams);
    free(d->names);
    free(d);
}

size_t cur_decontam_size(const cur_decontam *d) { return d->grams.n + d->grams.has_zero; }

static int name_index(cur_decontam *d, const char *bench, size_t *idx, s1c_err *err) {
    for (size_t i = 0; i < d->n_names; i++)
        if (d->names[i] == bench || !strcmp(d->names[i], bench)) { *idx = i; return 0; }
    const char **nn = realloc(d->names, (d->n_names + 1) * sizeof *nn);
    if (!nn) return s1c_fail(err, "out of memory");
    d->names = nn;
    d->names[d->n_names] = bench;
    *idx = d->n_names++;
    return 0;
}

int cur_decontam_add(cur_decontam *d, const char *bench, const char *text, s1c_err *err) {
    size_t idx = 0;
    if (name_index(d, bench, &idx, err)) return -1;
    uint64_t *g;
    size_t ng;
    if (cur_ngrams(text, d->n, &g, &ng, err)) return -1;
    for (size_t i = 0; i < ng; i++)
        if (cur_map_put(&d->grams, g[i], idx)) { free(g); return s1c_fail(err, "out of memory"); }
    free(g);
    uint64_t *w;
    size_t nw;
    if (cur_ngrams(text, 1, &w, &nw, err)) return -1; /* the word count */
    free(w);
    if (nw >= MIN_SHORT && nw < (size_t)d->n && nw < 64) d->short_lens |= 1ull << nw;
    return 0;
}

int cur_decontam_add_file(cur_decontam *d, const char *path, const char *field, s1c_err *err) {
    s1c_mfile m;
    if (s1c_mfile_open(&m, path, err)) return -1;
    const char *text = (const char *)m.data;
    long line = 0, used = 0;
    int rc = 0;
    for (size_t i = 0; i < m.size && rc == 0;) {
        const char *nl = memchr(text + i, '\n', m.size - i);
        size_t end = nl ? (size_t)(nl - text) : m.size, k = i;
        line++;
        while (k < end && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r')) k++;
        if (k < end) {
            cJSON *o = cJSON_ParseWithLength(text + i, end - i);
            if (!cJSON_IsObject(o)) rc = s1c_fail(err, "%s:%ld: not a JSON object", path, line);
            else {
                static const char *const guess[] = {"question", "problem", "Question", "Problem", "prompt"};
                cJSON *v = field ? cJSON_GetObjectItemCaseSensitive(o, field) : NULL;
                for (size_t g = 0; !field && !cJSON_IsString(v) && g < sizeof guess / sizeof guess[0]; g++)
                    v = cJSON_GetObjectItemCaseSensitive(o, guess[g]);
                if (cJSON_IsString(v)) rc = cur_decontam_add(d, path, v->valuestring, err);
                else if (field) rc = s1c_fail(err, "%s:%ld: no string field '%s'", path, line, field);
                else rc = s1c_fail(err, "%s:%ld: no string field question, problem, Question, Problem or prompt (name one with FILE:FIELD)", path, line);
            }
            cJSON_Delete(o);
            used++;
        }
        i = end + 1;
    }
    s1c_mfile_close(&m);
    if (rc == 0 && used == 0) rc = s1c_fail(err, "%s: no JSON lines", path);
    return rc;
}

/* The benchmark one of text's k-grams belongs to, or NULL. */
static const char *match_k(const cur_decontam *d, const char *text, int k) {
    uint64_t *g;
    size_t ng;
    s1c_err e;
    if (cur_ngrams(text, k, &g, &ng, &e)) return NULL;
    const char *hit = NULL;
    for (size_t i = 0; i < ng && !hit; i++) {
        size_t idx;
        if (cur_map_get(&d->grams, g[i], &idx)) hit = d->names[idx];
    }
    free(g);
    return hit;
}

const char *cur_decontam_match(const cur_decontam *d, const char *text) {
    const char *hit = match_k(d, text, d->n);
    for (int k = MIN_SHORT; k < d->n && k < 64 && !hit; k++)
        if (d->short_lens >> k & 1) hit = match_k(d, text, k);
    return hit;
}
