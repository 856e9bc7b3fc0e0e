/* Decontamination (SPEC.md §1): a question is dropped when it shares a lowercased word 8-gram
 * with an evaluation text, as s1 did while building its pool. The n-grams of every evaluation
 * text go into one hash map (hash -> benchmark name); a pool question is looked up n-gram by
 * n-gram. Hashes are 64-bit, so a false match needs a collision (about n²/2^64). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curate_internal.h"

struct cur_decontam {
    int n;
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
    return 0;
}

static int add_strings(cur_decontam *d, const char *bench, const cJSON *v, s1c_err *err) {
    if (cJSON_IsString(v)) return cur_decontam_add(d, bench, v->valuestring, err);
    const cJSON *e;
    if (cJSON_IsObject(v) || cJSON_IsArray(v))
        cJSON_ArrayForEach(e, v) if (add_strings(d, bench, e, err)) return -1;
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
            else if (field) {
                cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
                if (!cJSON_IsString(v)) rc = s1c_fail(err, "%s:%ld: no string field '%s'", path, line, field);
                else rc = cur_decontam_add(d, path, v->valuestring, err);
            } else {
                rc = add_strings(d, path, o, err);
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

const char *cur_decontam_match(const cur_decontam *d, const char *text) {
    uint64_t *g;
    size_t ng;
    s1c_err e;
    if (cur_ngrams(text, d->n, &g, &ng, &e)) return NULL;
    const char *hit = NULL;
    for (size_t i = 0; i < ng && !hit; i++) {
        size_t idx;
        if (cur_map_get(&d->grams, g[i], &idx)) hit = d->names[idx];
    }
    free(g);
    return hit;
}
