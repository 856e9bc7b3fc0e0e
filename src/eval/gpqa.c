/* GPQA-Diamond from the user's own file (its authors ask that it not be redistributed in
 * plain text, so s1c ships no copy): the official CSV (RFC 4180: quoted fields with commas,
 * doubled quotes and newlines) or JSONL with the same column names ("Question", "Correct
 * Answer", "Incorrect Answer 1..3"), or JSONL with "question", a list "choices"/"options" and
 * "answer" (a letter or a 0-based index; these keep their order).
 *
 * The prompt is SPEC.md §7's: "{Question}\n\nA) {c1}\nB) {c2}\nC) {c3}\nD) {c4}", the four
 * choices shuffled per problem by a seeded generator (seed + problem number), so a run is
 * reproducible and the gold letter is known; the mapping is kept with the problem (`meta`) and
 * written into every sample record. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"

/* ---------------------------------------------------------------- CSV */

typedef struct csv_row {
    char **f;
    int n;
} csv_row;

static void row_free(csv_row *r) {
    for (int i = 0; i < r->n; i++) free(r->f[i]);
    free(r->f);
    memset(r, 0, sizeof *r);
}

static int row_push(csv_row *r, const char *s, size_t n) {
    char **nf = realloc(r->f, (size_t)(r->n + 1) * sizeof *nf);
    char *copy = malloc(n + 1);
    if (!nf || !copy) {
        free(copy);
        if (nf) r->f = nf;
        return -1;
    }
    memcpy(copy, s, n);
    copy[n] = 0;
    r->f = nf;
    r->f[r->n++] = copy;
    return 0;
}

/* One record from *pos: fields split at commas outside quotes; "" inside quotes is a quote.
 * Returns 1 with a row, 0 at the end, -1 on a malformed record (an unterminated quote). */
static int csv_next(const char *t, size_t len, size_t *pos, csv_row *row, int *line, char *buf, size_t buf_cap) {
    size_t i = *pos;
    if (i >= len) return 0;
    memset(row, 0, sizeof *row);
    for (;;) {
        size_t n = 0;
        if (i < len && t[i] == '"') {
            i++;
            for (;;) {
                if (i >= len) return -1;
                if (t[i] == '"' && i + 1 < len && t[i + 1] == '"') { if (n < buf_cap) buf[n++] = '"'; i += 2; continue; }
                if (t[i] == '"') { i++; break; }
                if (t[i] == '\n') (*line)++;
                if (n < buf_cap) buf[n++] = t[i];
                i++;
            }
        }
        while (i < len && t[i] != ',' && t[i] != '\n' && t[i] != '\r') {
            if (n < buf_cap) buf[n++] = t[i];
            i++;
        }
        if (row_push(row, buf, n) != 0) return -1;
        if (i < len && t[i] == ',') { i++; continue; }
        if (i < len && t[i] == '\r') i++;
        if (i < len && t[i] == '\n') { i++; (*line)++; }
        break;
    }
    *pos = i;
    return 1;
}

static int column(const csv_row *header, const char *name) {
    for (int i = 0; i < header->n; i++) {
        const char *h = header->f[i];
        if (!strncmp(h, "\xEF\xBB\xBF", 3)) h += 3; /* a byte-order mark before the first name */
        if (!strcmp(h, name)) return i;
    }
    return -1;
}

/* ---------------------------------------------------------------- problems */

typedef struct gpqa_item {
    char *id, *question, *choice[4];
    int correct;  /* index into choice */
    bool shuffle; /* the official layout: choices are shuffled; a given list keeps its order */
} gpqa_item;

static void item_free(gpqa_item *it) {
    free(it->id);
    free(it->question);
    for (int k = 0; k < 4; k++) free(it->choice[k]);
}

static char *trimmed(const char *s) {
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    char *r = malloc(n + 1);
    if (r) {
        memcpy(r, s, n);
        r[n] = 0;
    }
    return r;
}

/* The problem as eval sees it: shuffled choices, the prompt, the gold letter, the mapping. */
static int item_to_problem(const gpqa_item *it, int index, uint64_t seed, eval_problem *p) {
    int order[4] = {0, 1, 2, 3};
    if (it->shuffle) {
        s1c_rng rng;
        s1c_rng_seed(&rng, seed * 1000003ULL + (uint64_t)index);
        for (int i = 3; i > 0; i--) {
            int j = (int)(s1c_rng_u64(&rng) % (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }
    size_t n = strlen(it->question) + 32;
    for (int k = 0; k < 4; k++) n += strlen(it->choice[k]) + 8;
    char *q = malloc(n), gold[2] = {0};
    if (!q) return -1;
    int w = snprintf(q, n, "%s\n", it->question);
    for (int k = 0; k < 4; k++) {
        w += snprintf(q + w, n - (size_t)w, "\n%c) %s", 'A' + k, it->choice[order[k]]);
        if (order[k] == it->correct) gold[0] = (char)('A' + k);
    }
    cJSON *meta = cJSON_CreateObject(), *letters = cJSON_AddObjectToObject(meta, "choices");
    for (int k = 0; k < 4; k++) {
        char l[2] = {(char)('A' + k), 0};
        cJSON_AddStringToObject(letters, l, it->choice[order[k]]);
    }
    cJSON_AddStringToObject(meta, "correct_answer", it->choice[it->correct]);
    p->meta = cJSON_PrintUnformatted(meta);
    cJSON_Delete(meta);
    p->question = q;
    p->gold = strdup(gold);
    p->id = strdup(it->id);
    return p->meta && p->gold && p->id ? 0 : -1;
}

static int add_problem(eval_bench *b, const gpqa_item *it, uint64_t seed, s1c_err *err) {
    eval_problem *np = realloc(b->p, (size_t)(b->n + 1) * sizeof *np);
    if (!np) return s1c_fail(err, "out of memory");
    b->p = np;
    memset(&b->p[b->n], 0, sizeof b->p[b->n]);
    if (item_to_problem(it, b->n, seed, &b->p[b->n]) != 0) return s1c_fail(err, "out of memory");
    b->n++;
    return 0;
}

/* ---------------------------------------------------------------- the two file kinds */

static const char *const official[5] = {"Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
                                        "Incorrect Answer 3"};

static int load_csv(eval_bench *b, const char *path, const char *text, size_t len, uint64_t seed, s1c_err *err) {
    size_t pos = 0, cap = len + 1;
    char *buf = malloc(cap);
    csv_row header = {0}, row = {0};
    int line = 1, cols[5], rc = buf ? 0 : s1c_fail(err, "out of memory");
    if (rc == 0 && csv_next(text, len, &pos, &header, &line, buf, cap) != 1) rc = s1c_fail(err, "%s: empty or malformed CSV", path);
    for (int k = 0; rc == 0 && k < 5; k++)
        if ((cols[k] = column(&header, official[k])) < 0)
            rc = s1c_fail(err, "%s: no column \"%s\" (GPQA's CSV has Question, Correct Answer, Incorrect Answer 1..3)", path, official[k]);
    int rid = rc == 0 ? column(&header, "Record ID") : -1;
    for (int r; rc == 0;) {
        int at = line;
        r = csv_next(text, len, &pos, &row, &line, buf, cap);
        if (r == 0) break;
        if (r < 0) { rc = s1c_fail(err, "%s:%d: unterminated quoted field", path, at); break; }
        if (row.n == 1 && !row.f[0][0]) { row_free(&row); continue; } /* a blank line */
        gpqa_item it = {.shuffle = true, .correct = 0};
        for (int k = 0; k < 5; k++) {
            if (cols[k] >= row.n) { rc = s1c_fail(err, "%s:%d: %d fields, \"%s\" is missing", path, at, row.n, official[k]); break; }
            char *v = trimmed(row.f[cols[k]]);
            if (k == 0) it.question = v;
            else it.choice[k - 1] = v;
        }
        char idbuf[32];
        snprintf(idbuf, sizeof idbuf, "gpqa-%d", b->n + 1);
        it.id = strdup(rid >= 0 && rid < row.n && row.f[rid][0] ? row.f[rid] : idbuf);
        if (rc == 0) rc = add_problem(b, &it, seed, err);
        item_free(&it);
        row_free(&row);
    }
    row_free(&header);
    free(buf);
    return rc;
}

static char *json_string(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? trimmed(v->valuestring) : NULL;
}

/* One JSONL record in either layout into it; a message in why when it fits neither. */
static int json_item(const cJSON *o, gpqa_item *it, char *why, size_t why_n) {
    if ((it->question = json_string(o, official[0]))) {
        it->shuffle = true;
        for (int k = 0; k < 4; k++)
            if (!(it->choice[k] = json_string(o, official[k + 1]))) {
                snprintf(why, why_n, "no \"%s\"", official[k + 1]);
                return -1;
            }
        it->id = json_string(o, "Record ID");
        return 0;
    }
    if (!(it->question = json_string(o, "question"))) {
        snprintf(why, why_n, "no \"Question\" or \"question\"");
        return -1;
    }
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(o, "choices");
    if (!ch) ch = cJSON_GetObjectItemCaseSensitive(o, "options");
    if (!cJSON_IsArray(ch) || cJSON_GetArraySize(ch) != 4) {
        snprintf(why, why_n, "\"choices\" (or \"options\") must be a list of 4 strings");
        return -1;
    }
    for (int k = 0; k < 4; k++) {
        const cJSON *c = cJSON_GetArrayItem(ch, k);
        if (!cJSON_IsString(c) || !(it->choice[k] = trimmed(c->valuestring))) {
            snprintf(why, why_n, "choice %d is not a string", k);
            return -1;
        }
    }
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "answer");
    if (cJSON_IsNumber(a) && a->valueint >= 0 && a->valueint < 4) it->correct = a->valueint;
    else if (cJSON_IsString(a) && a->valuestring[0] >= 'A' && a->valuestring[0] <= 'D' && !a->valuestring[1])
        it->correct = a->valuestring[0] - 'A';
    else {
        snprintf(why, why_n, "\"answer\" must be a letter A-D or an index 0-3");
        return -1;
    }
    it->id = json_string(o, "id");
    return 0;
}

static int load_jsonl(eval_bench *b, const char *path, const char *text, size_t len, uint64_t seed, s1c_err *err) {
    int line = 0, rc = 0;
    for (size_t i = 0; i < len && rc == 0;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        line++;
        size_t k = i;
        while (k < end && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r')) k++;
        if (k < end) {
            cJSON *o = cJSON_ParseWithLength(text + i, end - i);
            gpqa_item it = {0};
            char why[160] = "not a JSON object";
            if (!cJSON_IsObject(o) || json_item(o, &it, why, sizeof why) != 0) {
                rc = s1c_fail(err, "%s:%d: %s", path, line, why);
            } else {
                if (!it.id) {
                    char idbuf[32];
                    snprintf(idbuf, sizeof idbuf, "gpqa-%d", b->n + 1);
                    it.id = strdup(idbuf);
                }
                rc = add_problem(b, &it, seed, err);
            }
            item_free(&it);
            cJSON_Delete(o);
        }
        i = end + 1;
    }
    return rc;
}

int eval_bench_gpqa(eval_bench *b, const char *path, uint64_t seed, s1c_err *err) {
    memset(b, 0, sizeof *b);
    char *text = NULL;
    size_t len = 0;
    if (s1c_read_file(path, 1u << 30, &text, &len, err) != 0) return -1;
    size_t k = 0;
    while (k < len && (text[k] == ' ' || text[k] == '\n' || text[k] == '\r' || text[k] == '\t')) k++;
    b->name = strdup("gpqa");
    int rc = k < len && text[k] == '{' ? load_jsonl(b, path, text, len, seed, err) : load_csv(b, path, text, len, seed, err);
    free(text);
    if (rc == 0 && b->n == 0) rc = s1c_fail(err, "%s: no problems", path);
    if (rc != 0) eval_bench_free(b);
    return rc;
}

/* The letter a multiple-choice answer names: "B", "(B)", "B)", "B.", "\text{B}", "B) text". */
char eval_choice_letter(const char *pred) {
    const char *s = pred;
    while (*s == ' ' || *s == '(' || *s == '{' || *s == '$') s++;
    if (!strncmp(s, "\\text{", 6) || !strncmp(s, "\\textbf{", 8) || !strncmp(s, "\\mathrm{", 8)) s = strchr(s, '{') + 1;
    if (*s >= 'A' && *s <= 'D') {
        char next = s[1];
        if (!next || next == ')' || next == '.' || next == '}' || next == ' ' || next == ':' || next == '$') return *s;
    }
    return 0;
}
