/* From samples.jsonl to the summary (SPEC.md §6 metrics, §8 names), the plot and the report.
 * Everything is recomputed from the samples file, so a resumed or re-graded run gives the
 * same summary as an uninterrupted one. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"

typedef struct rec {
    cJSON *o;       /* the sample line */
    const char *id, *extracted, *gold; /* extracted: "" for an error record */
    const char *method, *klass; /* "budget-forcing" and "" for records from before methods existed */
    int budget, waits, sample, thinking_tokens;
    bool steps;         /* step-conditional: budget in steps */
    int thinking_steps; /* its steps (the record's, else counted from its thinking) */
    bool correct;
    bool error;         /* its requests failed: no verdict, counted apart, never as wrong */
    char *key;          /* eval_record_key */
} rec;

static bool is_steps_method(const char *method) { return !strcmp(method, eval_method_name(EVAL_STEP_CONDITIONAL)); }

/* A step-conditional record's steps: as written, or counted (records from before the field). */
static int record_steps(const cJSON *o) {
    int s = eval_int_field(o, "thinking_steps");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "thinking");
    return s >= 0 ? s : eval_count_steps(cJSON_IsString(t) ? t->valuestring : "");
}

int eval_int_field(const void *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive((const cJSON *)obj, name);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static void free_recs(rec *r, int n) {
    for (int i = 0; i < n; i++) {
        cJSON_Delete(r[i].o);
        free(r[i].key);
    }
    free(r);
}

typedef struct { const rec *r; int i; } rec_ref;
static int cmp_ref(const void *a, const void *b) {
    const rec_ref *x = a, *y = b;
    int c = strcmp(x->r[x->i].key, y->r[y->i].key);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* A key written more than once (an error record, then its retry by a later run): the newest
 * line wins; the others are dropped, the rest keep their order in the file. */
static int keep_newest(rec *r, int *n) {
    rec_ref *ref = malloc(((size_t)*n + 1) * sizeof *ref);
    bool *drop = calloc((size_t)*n + 1, 1);
    if (!ref || !drop) { free(ref); free(drop); return -1; }
    for (int i = 0; i < *n; i++) ref[i] = (rec_ref){r, i};
    qsort(ref, (size_t)*n, sizeof *ref, cmp_ref);
    for (int i = 0; i + 1 < *n; i++)
        if (!strcmp(r[ref[i].i].key, r[ref[i + 1].i].key)) drop[ref[i].i] = true;
    int w = 0;
    for (int i = 0; i < *n; i++) {
        if (drop[i]) {
            cJSON_Delete(r[i].o);
            free(r[i].key);
        } else {
            r[w++] = r[i];
        }
    }
    *n = w;
    free(ref);
    free(drop);
    return 0;
}

static int load(const char *path, rec **out, int *n, s1c_err *err) {
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    *n = 0;
    if (s1c_read_file(path, 1u << 31, &text, &len, err) != 0) return -1;
    int cap = 0, line_no = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        line_no++;
        if (!*line) continue;
        cJSON *o = cJSON_Parse(line);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id"), *ex = cJSON_GetObjectItemCaseSensitive(o, "extracted");
        const cJSON *gold = cJSON_GetObjectItemCaseSensitive(o, "gold");
        bool error = eval_record_is_error(o);
        if (!cJSON_IsString(id) || (!error && !cJSON_IsString(ex)) || !cJSON_IsString(gold)) {
            cJSON_Delete(o);
            free(text);
            return s1c_fail(err, "%s:%d: not a sample record", path, line_no);
        }
        char *key = eval_record_key(o);
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            rec *nr = key ? realloc(*out, (size_t)cap * sizeof *nr) : NULL;
            if (!nr) { cJSON_Delete(o); free(key); free(text); return s1c_fail(err, "out of memory"); }
            *out = nr;
        } else if (!key) {
            cJSON_Delete(o);
            free(text);
            return s1c_fail(err, "out of memory");
        }
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "method"), *k = cJSON_GetObjectItemCaseSensitive(o, "class");
        const char *method = cJSON_IsString(m) ? m->valuestring : "budget-forcing";
        bool steps = is_steps_method(method);
        (*out)[(*n)++] = (rec){o, id->valuestring, error ? "" : ex->valuestring, gold->valuestring, method,
                               cJSON_IsString(k) ? k->valuestring : "", eval_record_budget(o), eval_int_field(o, "num_waits"),
                               eval_int_field(o, "sample"), eval_int_field(o, "thinking_tokens"), steps,
                               steps && !error ? record_steps(o) : 0, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "correct")),
                               error, key};
    }
    free(text);
    if (keep_newest(*out, n) != 0) return s1c_fail(err, "out of memory");
    return 0;
}

/* One problem's verdict at one setting: its sample, or the majority of its samples'
 * extracted answers (groups of equivalent answers; the earliest group wins ties). */
static bool voted_correct(const rec *r, const int *idx, int k) {
    if (k == 1) return r[idx[0]].correct;
    int best = -1, best_size = 0;
    for (int a = 0; a < k; a++) {
        int size = 0;
        for (int b = 0; b < k; b++) {
            bool unsure;
            size += !strcmp(r[idx[a]].extracted, r[idx[b]].extracted) || eval_is_correct(r[idx[a]].extracted, r[idx[b]].extracted, &unsure);
        }
        if (size > best_size) { best = a; best_size = size; }
    }
    return r[idx[best]].correct;
}

/* Two records belong to the same setting. */
static bool same_setting(const rec *a, const rec *b) {
    return a->budget == b->budget && a->waits == b->waits && !strcmp(a->method, b->method) && !strcmp(a->klass, b->klass);
}

/* Points, one per setting (method, class, budget, waits) in first-seen order. Only graded
 * samples count (majority votes, accuracy, thinking, control); error records are counted in
 * the point's errors, and a problem all of whose samples failed is left out of n. */
static int make_points(const rec *r, int n, eval_point **out, int *n_pts) {
    eval_point *pts = calloc((size_t)n + 1, sizeof *pts);
    int *idx = malloc(((size_t)n + 1) * sizeof(int));
    bool *seen = calloc((size_t)n + 1, 1);
    if (!pts || !idx || !seen) { free(pts); free(idx); free(seen); return -1; }
    int np = 0;
    for (int i = 0; i < n; i++) {
        if (seen[i]) continue;
        eval_point *p = &pts[np++];
        p->max_thinking_tokens = r[i].budget;
        p->num_waits = r[i].waits;
        p->steps = r[i].steps;
        snprintf(p->method, sizeof p->method, "%s", r[i].method);
        snprintf(p->klass, sizeof p->klass, "%s", r[i].klass);
        double think = 0, steps = 0;
        int runs = 0, within = 0;
        for (int j = i; j < n; j++) {
            if (seen[j] || !same_setting(&r[j], &r[i])) continue;
            /* all samples of this problem at this setting */
            int k = 0;
            for (int q = j; q < n; q++)
                if (!seen[q] && same_setting(&r[q], &r[i]) && !strcmp(r[q].id, r[j].id)) {
                    seen[q] = true;
                    if (r[q].error) { /* no verdict: counted apart, never as wrong */
                        p->errors++;
                        continue;
                    }
                    idx[k++] = q;
                    think += r[q].thinking_tokens;
                    steps += r[q].thinking_steps;
                    /* within the budget in its unit: steps asked for are compared with steps */
                    within += r[q].budget < 0 || (r[q].steps ? r[q].thinking_steps : r[q].thinking_tokens) <= r[q].budget;
                    runs++;
                }
            if (k == 0) continue; /* every sample of this problem failed: the problem is not graded here */
            p->n++;
            p->correct += voted_correct(r, idx, k);
        }
        p->accuracy = p->n ? (double)p->correct / p->n : 0;
        eval_wilson(p->correct, p->n, &p->ci95_lo, &p->ci95_hi);
        p->avg_thinking_tokens = runs ? think / runs : 0;
        p->avg_thinking_steps = runs ? steps / runs : 0;
        p->control = runs ? (double)within / runs : 0;
    }
    free(idx);
    free(seen);
    *out = pts;
    *n_pts = np;
    return 0;
}

/* The points with graded samples: the only ones a metric or the plot can use (a point whose
 * samples all failed has no accuracy). */
static eval_point *graded_points(const eval_point *pts, int n, int *n_out) {
    eval_point *g = malloc(((size_t)n + 1) * sizeof *g);
    *n_out = 0;
    for (int i = 0; g && i < n; i++)
        if (pts[i].n > 0) g[(*n_out)++] = pts[i];
    return g;
}

static cJSON *point_json(const eval_point *pt) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "method", pt->method);
    if (pt->klass[0]) cJSON_AddStringToObject(p, "class", pt->klass);
    /* a step-conditional point asked for N steps: it has no token budget */
    if (pt->max_thinking_tokens >= 0 && !pt->steps) cJSON_AddNumberToObject(p, "max_thinking_tokens", pt->max_thinking_tokens);
    else cJSON_AddNullToObject(p, "max_thinking_tokens");
    if (pt->steps) cJSON_AddNumberToObject(p, "max_thinking_steps", pt->max_thinking_tokens);
    cJSON_AddStringToObject(p, "budget_unit", pt->steps ? "steps" : "tokens");
    cJSON_AddNumberToObject(p, "num_waits", pt->num_waits);
    cJSON_AddNumberToObject(p, "samples", pt->n);
    cJSON_AddNumberToObject(p, "correct", pt->correct);
    cJSON_AddNumberToObject(p, "errors", pt->errors);
    if (pt->n == 0) { /* nothing graded: no accuracy, thinking or control to state */
        cJSON_AddNullToObject(p, "accuracy");
        cJSON_AddNullToObject(p, "ci95");
        cJSON_AddNullToObject(p, "avg_thinking_tokens");
        cJSON_AddNullToObject(p, "control");
        return p;
    }
    cJSON_AddNumberToObject(p, "accuracy", pt->accuracy);
    cJSON *ci = cJSON_AddArrayToObject(p, "ci95");
    cJSON_AddItemToArray(ci, cJSON_CreateNumber(pt->ci95_lo));
    cJSON_AddItemToArray(ci, cJSON_CreateNumber(pt->ci95_hi));
    cJSON_AddNumberToObject(p, "avg_thinking_tokens", pt->avg_thinking_tokens);
    if (pt->steps) cJSON_AddNumberToObject(p, "avg_thinking_steps", pt->avg_thinking_steps);
    cJSON_AddNumberToObject(p, "control", pt->control);
    return p;
}

/* g: the graded points (graded_points), which the overall metrics use. */
static char *summary_json(const eval_point *pts, int n, const eval_point *g, int ng, int n_samples) {
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "points");
    bool any_steps = false;
    int errors = 0;
    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr, point_json(&pts[i]));
        any_steps |= pts[i].steps;
        errors += pts[i].errors;
    }
    /* nothing graded (every sample failed): no metric to state */
    if (ng > 0) cJSON_AddNumberToObject(root, "control", eval_control(g, ng));
    else cJSON_AddNullToObject(root, "control");
    if (ng > 0) cJSON_AddNumberToObject(root, "scaling", eval_scaling(g, ng));
    else cJSON_AddNullToObject(root, "scaling");
    cJSON_AddStringToObject(root, "scaling_unit", "accuracy percentage points per 1,000 thinking tokens");
    cJSON_AddStringToObject(root, "control_unit", any_steps ? "fraction of settings within their budget, in each point's budget_unit "
                                                              "(steps for step-conditional)" : "fraction of settings within their token budget");
    if (any_steps)
        cJSON_AddStringToObject(root, "step_definition", "s1's step markers in the thinking ('<|im_start|>N steps left', also "
                                                         "without the special token, or '<|im_start|>stepN'); a thinking without "
                                                         "markers counts its paragraphs (blocks separated by blank lines)");
    if (ng > 0) cJSON_AddNumberToObject(root, "performance", eval_performance(g, ng));
    else cJSON_AddNullToObject(root, "performance");
    cJSON_AddNumberToObject(root, "sample_records", n_samples);
    /* samples whose requests failed after their retries: in no accuracy, never wrong; a rerun retries them */
    cJSON_AddNumberToObject(root, "errors", errors);
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

/* ------------------------------------------------------------------ SVG */

typedef struct sb { char *p; size_t len, cap; } sb;
static void sb_printf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if (b->p && b->len + (size_t)k < b->cap) { b->len += (size_t)k; return; }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)k + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return;
        b->p = np;
        b->cap = cap;
    }
}

static const char *const series_colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                             "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

/* Index of the series named name among names[0..*n), added when new. */
static int series_index(const char **names, int *n, const char *name) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(names[i], name)) return i;
    names[*n] = name;
    return (*n)++;
}

static double svg_x(double tokens, double xmax) { return 60 + (640 - 60 - 20) * tokens / xmax; }
static double svg_y(double accuracy) { return 400 - 50 - (400 - 50 - 30) * accuracy; }

static void svg_axes(sb *b, const char *title, double xmax) {
    const double W = 640, H = 400, L = 60, R = 20, T = 30, B = 50;
    sb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
    sb_printf(b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"%g\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">", W / 2);
    for (const char *c = title; *c; c++) /* the title is ours, but escape it anyway */
        sb_printf(b, "%s", *c == '<' ? "&lt;" : *c == '&' ? "&amp;" : (char[2]){*c, 0});
    sb_printf(b, "</text>\n<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n",
              L, H - B, W - R, H - B, L, T, L, H - B);
    for (int k = 0; k <= 5; k++) { /* y: 0..100 % */
        double y = H - B - (H - B - T) * k / 5.0;
        sb_printf(b, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#ddd\"/><text x=\"%g\" y=\"%g\" text-anchor=\"end\">%d%%</text>\n",
                  L, y, W - R, y, L - 6, y + 4, k * 20);
        double x = L + (W - L - R) * k / 5.0;
        sb_printf(b, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">%.0f</text>\n", x, H - B + 16, xmax * k / 5.0);
    }
    sb_printf(b, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">average thinking tokens</text>\n", (L + W - R) / 2, H - 12);
    sb_printf(b, "<text x=\"16\" y=\"%g\" text-anchor=\"middle\" transform=\"rotate(-90 16 %g)\">accuracy</text>\n", (T + H - B) / 2, (T + H - B) / 2);
}

static int cmp_x(const void *a, const void *b) {
    const eval_point *x = *(const eval_point *const *)a, *y = *(const eval_point *const *)b;
    return (x->avg_thinking_tokens > y->avg_thinking_tokens) - (x->avg_thinking_tokens < y->avg_thinking_tokens);
}

/* One series: its line through the points by average thinking, the points with their setting. */
static void svg_series(sb *b, const eval_point **pts, int n, const char *color, double xmax) {
    qsort(pts, (size_t)n, sizeof *pts, cmp_x);
    sb_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
    for (int i = 0; i < n; i++) sb_printf(b, "%.1f,%.1f ", svg_x(pts[i]->avg_thinking_tokens, xmax), svg_y(pts[i]->accuracy));
    sb_printf(b, "\"/>\n");
    for (int i = 0; i < n; i++) {
        const eval_point *p = pts[i];
        char budget[32] = "no budget";
        if (p->max_thinking_tokens >= 0) snprintf(budget, sizeof budget, "%s=%d", p->steps ? "S" : "T", p->max_thinking_tokens);
        sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"><title>%s, waits %d: %.1f%% at %.0f tokens</title></circle>\n",
                  svg_x(p->avg_thinking_tokens, xmax), svg_y(p->accuracy), color, budget, p->num_waits, 100 * p->accuracy,
                  p->avg_thinking_tokens);
    }
}

char *eval_svg_series(const eval_point *pts, const char *const *series, int n, const char *title) {
    double xmax = 1;
    for (int i = 0; i < n; i++)
        if (pts[i].avg_thinking_tokens > xmax) xmax = pts[i].avg_thinking_tokens;
    xmax *= 1.1;
    sb b = {0};
    svg_axes(&b, title, xmax);
    const char **names = malloc((size_t)(n > 0 ? n : 1) * sizeof *names);
    const eval_point **sel = malloc((size_t)(n > 0 ? n : 1) * sizeof *sel);
    int n_names = 0;
    for (int i = 0; names && i < n; i++) series_index(names, &n_names, series[i]);
    for (int k = 0; sel && k < n_names; k++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(series[i], names[k]) && pts[i].n > 0) sel[m++] = &pts[i];
        const char *color = series_colors[k % (int)(sizeof series_colors / sizeof *series_colors)];
        svg_series(&b, sel, m, color, xmax);
        /* the legend, top left inside the plot */
        sb_printf(&b, "<rect x=\"72\" y=\"%d\" width=\"12\" height=\"3\" fill=\"%s\"/><text x=\"90\" y=\"%d\" font-size=\"11\">", 40 + 15 * k, color,
                  45 + 15 * k);
        for (const char *c = names[k]; *c; c++) sb_printf(&b, "%s", *c == '<' ? "&lt;" : *c == '&' ? "&amp;" : (char[2]){*c, 0});
        sb_printf(&b, "</text>\n");
    }
    free(names);
    free(sel);
    sb_printf(&b, "</svg>\n");
    return b.p;
}

/* s1's figure: one line per method (and per number of forced Waits, for budget forcing). */
char *eval_svg(const eval_point *pts, int n) {
    char (*names)[64] = malloc((size_t)(n > 0 ? n : 1) * sizeof *names);
    const char **series = malloc((size_t)(n > 0 ? n : 1) * sizeof *series);
    char *svg = NULL;
    if (names && series) {
        for (int i = 0; i < n; i++) {
            if (pts[i].klass[0]) snprintf(names[i], sizeof names[i], "%s (%s)", pts[i].method, pts[i].klass);
            else if (!strcmp(pts[i].method, "budget-forcing")) snprintf(names[i], sizeof names[i], "budget forcing, %d Wait%s", pts[i].num_waits, pts[i].num_waits == 1 ? "" : "s");
            else snprintf(names[i], sizeof names[i], "%s", pts[i].method);
            series[i] = names[i];
        }
        svg = eval_svg_series(pts, series, n, "Accuracy vs. average thinking tokens");
    }
    free(names);
    free(series);
    return svg;
}

/* ------------------------------------------------------------------ HTML */

/* Text inside a <script type="application/json">: "</" must not appear as such. */
static void json_for_script(sb *b, const char *s) {
    for (; *s; s++) {
        if (s[0] == '<' && s[1] == '/') sb_printf(b, "<\\/"), s++;
        else sb_printf(b, "%c", *s);
    }
}

/* The trace viewer. Error records (requests that failed) have no text, verdict or extracted
 * answer: they show their error, and only the "error" filter (or "all") lists them. The page's
 * fragment picks the first filter (report.html#error). */
static const char *report_js =
    "const rows=JSON.parse(document.getElementById('samples').textContent);\n"
    "const tb=document.getElementById('rows');const h0=location.hash.slice(1);\n"
    "let filter=['correct','wrong','budget','error'].includes(h0)?h0:'all';\n"
    "function v(x){return x==null?'':x;}\n"
    "function esc(s){return String(v(s)).replace(/[&<>]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]));}\n"
    "function keep(r){if(filter==='correct')return r.correct===true;if(filter==='wrong')return r.correct===false;\n"
    " if(filter==='error')return r.error!=null;if(filter==='budget')return r.think_end_reason==='budget';return true;}\n"
    "function show(){const q=document.getElementById('q').value.toLowerCase();let h='';let k=0;\n"
    " for(const r of rows){if(!keep(r))continue;\n"
    "  if(q&&!(r.id+' '+r.prompt+' '+v(r.extracted)+' '+v(r.thinking)+' '+v(r.answer)+' '+v(r.error)).toLowerCase().includes(q))continue;k++;\n"
    "  const e=r.error!=null;\n"
    "  h+=`<tr class=${e?'err':r.correct?'ok':'bad'}><td>${esc(r.id)}</td><td>${r.max_thinking_steps!=null?r.max_thinking_steps+' steps':r.max_thinking_tokens<0?'none':r.max_thinking_tokens}</td><td>${r.num_waits}</td><td>${r.sample}</td>`+\n"
    "   `<td>${esc(r.thinking_tokens)}</td><td>${esc(r.waits)}</td><td>${e?'error':esc(r.stop_reason)}</td><td>${esc(r.extracted)}</td><td>${esc(r.gold)}</td><td>${e?'error':r.correct?'yes':'no'}</td>`+\n"
    "   `<td><details><summary>${e?'error':'trace'}</summary><p><b>Question</b></p><pre>${esc(r.prompt)}</pre>`+\n"
    "   (e?`<p><b>Error</b> (not counted as wrong; a rerun of the run retries it)</p><pre>${esc(r.error)}</pre>`:\n"
    "      `<p><b>Thinking</b></p><pre>${esc(r.thinking)}</pre><p><b>Answer</b></p><pre>${esc(r.answer)}</pre>`)+`</details></td></tr>`;}\n"
    " tb.innerHTML=h;document.getElementById('count').textContent=k+' of '+rows.length+' samples';}\n"
    "for(const b of document.querySelectorAll('button[data-f]'))b.onclick=()=>{filter=b.dataset.f;show();};\n"
    "document.getElementById('q').oninput=show;show();\n";

/* pts: every point; g: the graded ones (the metrics); errors: error records in all. */
static char *report_html(const eval_point *pts, int n, const eval_point *g, int ng, int errors, const char *svg,
                         const char *samples_json) {
    sb b = {0};
    sb_printf(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>s1c eval report</title>\n<style>\n"
                  "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
                  "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
                  "tr.ok td:nth-child(10){color:#080}tr.bad td:nth-child(10){color:#b00}tr.err td{color:#a60}"
                  "pre{white-space:pre-wrap;text-align:left;max-width:900px}"
                  "td details{text-align:left}.errors{color:#a60}</style></head><body>\n<h1>s1c evaluation</h1>\n");
    char control[16] = "–", scaling[16] = "–", perf[16] = "–";
    if (ng > 0) {
        snprintf(control, sizeof control, "%.1f%%", 100 * eval_control(g, ng));
        snprintf(scaling, sizeof scaling, "%.2f", eval_scaling(g, ng));
        snprintf(perf, sizeof perf, "%.1f%%", 100 * eval_performance(g, ng));
    }
    sb_printf(&b, "<h2>Summary</h2>\n<table id=\"metrics\"><tr><th>Control</th><th>Scaling (pp / 1,000 thinking tokens)</th><th>Performance</th>"
                  "<th>Errors</th></tr><tr><td>%s</td><td>%s</td><td>%s</td><td>%d</td></tr></table>\n", control, scaling, perf, errors);
    if (errors > 0)
        sb_printf(&b, "<p class=\"errors\" id=\"errors\">%d sample%s ended in error (requests that failed after their retries): "
                      "they count in no accuracy and never as wrong; running the same command again retries them.</p>\n",
                  errors, errors == 1 ? "" : "s");
    sb_printf(&b, "<table id=\"points\"><tr><th>budget</th><th>waits</th><th>problems</th><th>correct</th><th>accuracy</th><th>95%% CI</th>"
                  "<th>avg thinking tokens</th><th>within budget</th><th>errors</th></tr>\n");
    for (int i = 0; i < n; i++) {
        const eval_point *p = &pts[i];
        char bud[32], think[64] = "–", acc[16] = "–", ci[40] = "–", within[16] = "–";
        if (p->max_thinking_tokens >= 0) snprintf(bud, sizeof bud, "%d%s", p->max_thinking_tokens, p->steps ? " steps" : "");
        else snprintf(bud, sizeof bud, "none");
        if (p->n > 0) {
            if (p->steps) snprintf(think, sizeof think, "%.1f (%.1f steps)", p->avg_thinking_tokens, p->avg_thinking_steps);
            else snprintf(think, sizeof think, "%.1f", p->avg_thinking_tokens);
            snprintf(acc, sizeof acc, "%.1f%%", 100 * p->accuracy);
            snprintf(ci, sizeof ci, "%.1f–%.1f%%", 100 * p->ci95_lo, 100 * p->ci95_hi);
            snprintf(within, sizeof within, "%.0f%%", 100 * p->control);
        }
        sb_printf(&b, "<tr><td>%s</td><td>%d</td><td>%d</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td%s>%d</td></tr>\n", bud,
                  p->num_waits, p->n, p->correct, acc, ci, think, within, p->errors ? " class=\"errors\"" : "", p->errors);
    }
    sb_printf(&b, "</table>\n<h2>Scaling</h2>\n%s\n<h2>Samples</h2>\n", svg ? svg : "");
    sb_printf(&b, "<p><button data-f=\"all\">all</button> <button data-f=\"correct\">correct</button> <button data-f=\"wrong\">wrong</button> "
                  "<button data-f=\"budget\">ended by the budget</button> <button data-f=\"error\">error</button> "
                  "<input id=\"q\" placeholder=\"search\"> <span id=\"count\"></span></p>\n");
    sb_printf(&b, "<table><thead><tr><th>id</th><th>budget</th><th>waits</th><th>sample</th><th>thinking tokens</th><th>waits used</th><th>stop</th>"
                  "<th>extracted</th><th>gold</th><th>correct</th><th></th></tr></thead><tbody id=\"rows\"></tbody></table>\n");
    sb_printf(&b, "<script type=\"application/json\" id=\"samples\">");
    json_for_script(&b, samples_json);
    sb_printf(&b, "</script>\n<script>\n%s</script>\n</body></html>\n", report_js);
    return b.p;
}

/* ------------------------------------------------------------------ summarize */

static int write_text(const char *dir, const char *name, const char *text, s1c_err *err) {
    char *p = s1c_path_join(dir, name);
    int rc = text ? s1c_write_file_atomic(p, text, strlen(text), err) : s1c_fail(err, "%s: out of memory", name);
    free(p);
    return rc;
}

int eval_summarize(const char *dir, s1c_err *err) {
    char *path = s1c_path_join(dir, "samples.jsonl");
    rec *r = NULL;
    int n = 0, np = 0, ng = 0, rc = -1;
    eval_point *pts = NULL, *g = NULL;
    char *summary = NULL, *svg = NULL, *html = NULL, *all = NULL;
    if (load(path, &r, &n, err) != 0) goto out;
    if (make_points(r, n, &pts, &np) != 0 || !(g = graded_points(pts, np, &ng))) { s1c_fail(err, "out of memory"); goto out; }
    cJSON *arr = cJSON_CreateArray();
    int errors = 0;
    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr, cJSON_Duplicate(r[i].o, 1));
        errors += r[i].error;
    }
    all = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    summary = summary_json(pts, np, g, ng, n);
    svg = eval_svg(g, ng);
    html = all ? report_html(pts, np, g, ng, errors, svg, all) : NULL;
    if (write_text(dir, "summary.json", summary, err) || write_text(dir, "scaling.svg", svg, err) || write_text(dir, "report.html", html, err)) goto out;
    rc = 0;
out:
    free_recs(r, n);
    free(pts); free(g); free(summary); free(svg); free(html); free(all); free(path);
    return rc;
}

int eval_regrade(const char *dir, s1c_err *err) {
    char *path = s1c_path_join(dir, "samples.jsonl");
    rec *r = NULL;
    int n = 0, rc = -1;
    if (load(path, &r, &n, err) != 0) goto out;
    sb b = {0};
    /* the newest record of each sample, graded again; error records have no answer to grade: they
     * stay as they are, for a rerun to retry */
    for (int i = 0; i < n; i++) {
        if (!r[i].error) {
            bool unsure, ok = eval_is_correct(r[i].gold, r[i].extracted, &unsure);
            cJSON_DeleteItemFromObjectCaseSensitive(r[i].o, "correct");
            cJSON_DeleteItemFromObjectCaseSensitive(r[i].o, "unsure");
            cJSON_AddBoolToObject(r[i].o, "correct", ok);
            if (unsure) cJSON_AddBoolToObject(r[i].o, "unsure", 1);
        }
        char *line = cJSON_PrintUnformatted(r[i].o);
        if (line) sb_printf(&b, "%s\n", line);
        free(line);
    }
    rc = s1c_write_file_atomic(path, b.p ? b.p : "", b.len, err);
    free(b.p);
    if (rc == 0) rc = eval_summarize(dir, err);
out:
    free_recs(r, n);
    free(path);
    return rc;
}

/* ------------------------------------------------------------------ comparing two runs */

/* Exact two-sided McNemar test: the probability of a split at least this uneven among the
 * discordant problems when either run is equally likely to be the right one. */
static double mcnemar_p(int only_a, int only_b) {
    int n = only_a + only_b, k = only_a < only_b ? only_a : only_b;
    if (n == 0) return 1.0;
    double p = 0, logc = 0; /* log C(n, i), built up from i = 0 */
    for (int i = 0; i <= k; i++) {
        if (i > 0) logc += log((double)(n - i + 1)) - log((double)i);
        p += exp(logc - n * log(2.0));
    }
    p *= 2;
    return p > 1 ? 1 : p;
}

/* The per-problem verdicts of one setting (majority vote over samples) as (id, correct) pairs. */
typedef struct verdict {
    const char *id;
    bool correct;
} verdict;

/* Problems whose samples all failed have no verdict; *errors counts the failed samples. */
static int setting_verdicts(const rec *r, int n, const rec *key, verdict **out, int *errors, s1c_err *err) {
    verdict *v = malloc(((size_t)n + 1) * sizeof *v);
    int *idx = malloc(((size_t)n + 1) * sizeof *idx), nv = 0;
    bool *seen = calloc((size_t)n + 1, 1);
    *errors = 0;
    if (!v || !idx || !seen) { free(v); free(idx); free(seen); return s1c_fail(err, "out of memory"); }
    for (int i = 0; i < n; i++) {
        if (seen[i] || !same_setting(&r[i], key)) continue;
        int k = 0;
        for (int q = i; q < n; q++)
            if (!seen[q] && same_setting(&r[q], key) && !strcmp(r[q].id, r[i].id)) {
                seen[q] = true;
                if (r[q].error) ++*errors;
                else idx[k++] = q;
            }
        if (k > 0) v[nv++] = (verdict){r[i].id, voted_correct(r, idx, k)};
    }
    free(idx);
    free(seen);
    *out = v;
    return nv;
}

static int cmp_settings(const void *pa, const void *pb) {
    const rec *a = *(const rec *const *)pa, *b = *(const rec *const *)pb;
    int c = strcmp(a->method, b->method);
    if (!c) c = strcmp(a->klass, b->klass);
    if (!c) c = a->waits - b->waits;
    if (!c) {
        long x = a->budget < 0 ? 1L << 40 : a->budget, y = b->budget < 0 ? 1L << 40 : b->budget;
        c = x < y ? -1 : x > y;
    }
    return c;
}

int eval_compare(const char *dir_a, const char *dir_b, FILE *out, s1c_err *err) {
    char *pa = s1c_path_join(dir_a, "samples.jsonl"), *pb = s1c_path_join(dir_b, "samples.jsonl");
    rec *ra = NULL, *rb = NULL;
    int na = 0, nb = 0, rc = -1, compared = 0;
    if (load(pa, &ra, &na, err) != 0 || load(pb, &rb, &nb, err) != 0) goto done;
    /* errors: samples whose requests failed in A / in B (no verdict: their problems are left out) */
    fprintf(out, "%-22s %6s %5s %8s %8s %8s %9s %7s %7s %9s\n", "setting", "budget", "waits", "problems", "A", "B", "errors",
            "only A", "only B", "p (McNemar)");
    /* one row per setting of A, in a stable order: method, class, waits, then budget (none last) */
    const rec **lead = malloc(((size_t)na + 1) * sizeof *lead);
    int nl = 0;
    for (int i = 0; i < na && lead; i++) {
        bool seen = false;
        for (int k = 0; k < nl && !seen; k++) seen = same_setting(lead[k], &ra[i]);
        if (!seen) lead[nl++] = &ra[i];
    }
    if (lead) qsort(lead, (size_t)nl, sizeof *lead, cmp_settings);
    for (int l = 0; l < nl; l++) {
        const rec *key = lead[l];
        verdict *va = NULL, *vb = NULL;
        int ea = 0, eb = 0;
        int nva = setting_verdicts(ra, na, key, &va, &ea, err), nvb = nva >= 0 ? setting_verdicts(rb, nb, key, &vb, &eb, err) : -1;
        int both = 0, ca = 0, cb = 0, only_a = 0, only_b = 0;
        for (int x = 0; x < nva && nvb > 0; x++)
            for (int y = 0; y < nvb; y++)
                if (!strcmp(va[x].id, vb[y].id)) {
                    both++;
                    ca += va[x].correct;
                    cb += vb[y].correct;
                    only_a += va[x].correct && !vb[y].correct;
                    only_b += !va[x].correct && vb[y].correct;
                    break;
                }
        free(va);
        free(vb);
        if (both == 0) continue;
        compared++;
        char setting[64], budget[16] = "none";
        snprintf(setting, sizeof setting, "%s%s%s", key->method, key->klass[0] ? ":" : "", key->klass);
        if (key->budget >= 0) snprintf(budget, sizeof budget, key->steps ? "%d st" : "%d", key->budget);
        char errs[32];
        snprintf(errs, sizeof errs, "%d/%d", ea, eb);
        fprintf(out, "%-22s %6s %5d %8d %7.1f%% %7.1f%% %9s %7d %7d %9.3g\n", setting, budget, key->waits, both, 100.0 * ca / both,
                100.0 * cb / both, errs, only_a, only_b, mcnemar_p(only_a, only_b));
    }
    free(lead);
    rc = compared ? 0 : s1c_fail(err, "%s and %s share no setting and problem to compare", dir_a, dir_b);
done:
    free_recs(ra, na);
    free_recs(rb, nb);
    free(pa);
    free(pb);
    return rc;
}
