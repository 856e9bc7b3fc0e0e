/* Pools: JSONL question records, validated line by line. A bad line never stops the run: it
 * becomes a record dropped at stage "load" whose reason names the line. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curate_internal.h"

void cur_fields_default(cur_fields *f) {
    *f = (cur_fields){.id = "id", .question = "question", .solution = "solution", .source = "source",
                      .domain = "domain", .trajectories = "thinking_trajectories", .attempt = "attempt", .year = "year"};
}

void cur_drop(cur_rec *r, const char *stage, const char *kind, const char *fmt, ...) {
    if (r->stage) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->stage = stage;
    r->kind = kind;
    r->reason = cur_printable(msg, strlen(msg), sizeof msg);
}

const char *cur_str(const cur_rec *r, const char *field) {
    if (!field || !r->obj) return NULL;
    cJSON *v = cJSON_GetObjectItemCaseSensitive(r->obj, field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *strip_span(const char *s, size_t *n) {
    while (*n && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')) { s++; (*n)--; }
    while (*n && (s[*n - 1] == ' ' || s[*n - 1] == '\n' || s[*n - 1] == '\t' || s[*n - 1] == '\r')) (*n)--;
    return s;
}

char *cur_trace(const cur_rec *r, const char *field) {
    cJSON *v = field && r->obj ? cJSON_GetObjectItemCaseSensitive(r->obj, field) : NULL;
    cur_sb b = {0};
    if (cJSON_IsString(v)) {
        cur_sb_put(&b, v->valuestring, strlen(v->valuestring));
    } else if (cJSON_IsArray(v)) {
        cJSON *e;
        bool first = true;
        cJSON_ArrayForEach(e, v) {
            if (!cJSON_IsString(e)) { free(b.p); return NULL; }
            if (!first) cur_sb_put(&b, "\n", 1);
            cur_sb_put(&b, e->valuestring, strlen(e->valuestring));
            first = false;
        }
    } else {
        return NULL;
    }
    cur_sb_put(&b, "", 0);
    if (b.oom) { free(b.p); return NULL; }
    size_t n = b.len;
    const char *s = strip_span(b.p, &n);
    memmove(b.p, s, n);
    b.p[n] = 0;
    return b.p;
}

/* The first string inside v (recursively) that is not valid UTF-8: its key path in buf. */
static bool find_bad_utf8(const cJSON *v, char *buf, size_t cap) {
    if (cJSON_IsString(v)) return !cur_utf8_valid(v->valuestring, strlen(v->valuestring));
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) return false;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (e->string && !cur_utf8_valid(e->string, strlen(e->string))) { snprintf(buf, cap, "(a key)"); return true; }
        if (find_bad_utf8(e, buf, cap)) {
            if (cJSON_IsObject(v) && e->string && !buf[0]) snprintf(buf, cap, "%s", e->string);
            return true;
        }
    }
    return false;
}

/* The value of the id field as text: a string as is, a number printed. NULL if absent. */
static char *id_text(cJSON *obj, const char *field) {
    cJSON *v = field ? cJSON_GetObjectItemCaseSensitive(obj, field) : NULL;
    if (cJSON_IsString(v) && v->valuestring[0]) return cur_strdup(v->valuestring);
    if (cJSON_IsNumber(v)) {
        char buf[64];
        return cur_strdup(s1c_num_text(v->valuedouble, buf, sizeof buf));
    }
    return NULL;
}

static int push_rec(cur_pool *p, s1c_err *err) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        cur_rec *r = realloc(p->r, cap * sizeof *r);
        if (!r) return s1c_fail(err, "out of memory");
        p->r = r;
        p->cap = cap;
    }
    memset(&p->r[p->n], 0, sizeof p->r[p->n]);
    p->r[p->n].trace_tokens = -1;
    p->n++;
    return 0;
}

/* Fills rec from one non-blank line; problems become a drop at stage "load". */
static int parse_line(cur_pool *p, cur_rec *rec, const char *name, const char *line, size_t n, cur_map *ids, s1c_err *err) {
    rec->obj = cJSON_ParseWithLength(line, n);
    if (!rec->obj || !cJSON_IsObject(rec->obj)) {
        cJSON_Delete(rec->obj);
        rec->obj = cJSON_CreateObject();
        char *raw = cur_printable(line, n, 2000);
        char lbuf[32];
        snprintf(lbuf, sizeof lbuf, "%ld", rec->line);
        rec->id = cur_strdup(lbuf);
        if (!rec->obj || !raw || !rec->id) { free(raw); return s1c_fail(err, "out of memory"); }
        cJSON_AddNumberToObject(rec->obj, "line", (double)rec->line);
        cJSON_AddStringToObject(rec->obj, "raw", raw);
        free(raw);
        cur_drop(rec, "load", "not_json", "%s:%ld: not a JSON object", name, rec->line);
        return 0;
    }
    rec->id = id_text(rec->obj, p->f.id);
    if (!rec->id) {
        char lbuf[32];
        snprintf(lbuf, sizeof lbuf, "%ld", rec->line);
        rec->id = cur_strdup(lbuf);
        if (!rec->id) return s1c_fail(err, "out of memory");
    }
    char where[256] = "";
    if (find_bad_utf8(rec->obj, where, sizeof where)) {
        cur_drop(rec, "load", "invalid_utf8", "%s:%ld: field '%s' is not valid UTF-8", name, rec->line, where[0] ? where : "?");
        return 0;
    }
    rec->question = cur_str(rec, p->f.question);
    if (!rec->question || !rec->question[0]) {
        cur_drop(rec, "load", "missing_question", "%s:%ld: no %s field '%s'", name, rec->line, rec->question ? "non-empty" : "string", p->f.question);
        return 0;
    }
    uint64_t h = cur_hash(rec->id, strlen(rec->id), 0);
    size_t first;
    if (cur_map_get(ids, h, &first) && !strcmp(p->r[first].id, rec->id)) {
        cur_drop(rec, "load", "duplicate_id", "%s:%ld: duplicate id '%s' (first on line %ld)", name, rec->line, rec->id, p->r[first].line);
        return 0;
    }
    if (cur_map_put(ids, h, (size_t)(rec - p->r))) return s1c_fail(err, "out of memory");
    const char *d = cur_str(rec, p->f.domain);
    rec->domain = d && d[0] ? d : NULL;
    return 0;
}

int cur_pool_parse(cur_pool *p, const char *name, const char *text, size_t len, const cur_fields *f, s1c_err *err) {
    memset(p, 0, sizeof *p);
    if (f) p->f = *f;
    else cur_fields_default(&p->f);
    cur_map ids = {0};
    long line_no = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len, k = i;
        line_no++;
        while (k < end && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r')) k++;
        if (k < end) {
            if (push_rec(p, err)) goto fail;
            cur_rec *rec = &p->r[p->n - 1];
            rec->line = line_no;
            if (parse_line(p, rec, name, text + i, end - i, &ids, err)) goto fail;
        }
        i = end + 1;
    }
    cur_map_free(&ids);
    return 0;
fail:
    cur_map_free(&ids);
    cur_pool_free(p);
    return -1;
}

int cur_pool_load(cur_pool *p, const char *path, const cur_fields *f, s1c_err *err) {
    s1c_mfile m;
    if (s1c_mfile_open(&m, path, err)) return -1;
    int rc = cur_pool_parse(p, path, (const char *)m.data, m.size, f, err);
    s1c_mfile_close(&m);
    return rc;
}

void cur_pool_free(cur_pool *p) {
    for (size_t i = 0; i < p->n; i++) {
        cJSON_Delete(p->r[i].obj);
        free(p->r[i].id);
        free(p->r[i].reason);
    }
    free(p->r);
    memset(p, 0, sizeof *p);
}

/* Replaces invalid UTF-8 in every string (and key) of v in place. */
static void sanitize(cJSON *v) {
    if (cJSON_IsString(v) && !cur_utf8_valid(v->valuestring, strlen(v->valuestring))) {
        char *s = cur_printable(v->valuestring, strlen(v->valuestring), (size_t)-1);
        if (s) { cJSON_free(v->valuestring); v->valuestring = s; }
    }
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) return;
    cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (e->string && !cur_utf8_valid(e->string, strlen(e->string))) {
            char *s = cur_printable(e->string, strlen(e->string), (size_t)-1);
            if (s) { cJSON_free(e->string); e->string = s; }
        }
        sanitize(e);
    }
}

bool cur_write_rec(void *fp, const cur_rec *r) {
    FILE *f = fp;
    cJSON *o = cJSON_Duplicate(r->obj, 1);
    if (!o) return false;
    sanitize(o);
    if (r->stage) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "drop_stage");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "drop_reason");
        cJSON_AddStringToObject(o, "drop_stage", r->stage);
        cJSON_AddStringToObject(o, "drop_reason", r->reason ? r->reason : "");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "drop_kind");
        cJSON_AddStringToObject(o, "drop_kind", r->kind ? r->kind : "");
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return false;
    bool ok = fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    free(s);
    return ok;
}
