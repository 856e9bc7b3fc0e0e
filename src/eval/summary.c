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
    const char *id, *extracted, *gold;
    const char *method, *klass; /* "budget-forcing" and "" for records from before methods existed */
    int budget, waits, sample, thinking_tokens;
    bool steps;         /* step-conditional: budget in steps */
    int thinking_steps; /* its steps (the record's, else counted from its thinking) */
    bool correct;
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
        if (!cJSON_IsString(id) || !cJSON_IsString(ex) || !cJSON_IsString(gold)) {
            cJSON_Delete(o);
            free(text);
            return s1c_fail(err, "%s:%d: not a sample record", path, line_no);
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            rec *nr = realloc(*out, (size_t)cap * sizeof *nr);
            if (!nr) { cJSON_Delete(o); free(text); return s1c_fail(err, "out of memory"); }
            *out = nr;
        }
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "method"), *k = cJSON_GetObjectItemCaseSensitive(o, "class");
        const char *method = cJSON_IsString(m) ? m->valuestring : "budget-forcing";
        bool steps = is_steps_method(method);
        (*out)[(*n)++] = (rec){o, id->valuestring, ex->valuestring, gold->valuestring, method, cJSON_IsString(k) ? k->valuestring : "",
                               eval_record_budget(o), eval_int_field(o, "num_waits"), eval_int_field(o, "sample"),
                               eval_int_field(o, "thinking_tokens"), steps, steps ? record_steps(o) : 0,
                               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "correct"))};
    }
    free(text);
    return 0;
}

static void free_recs(rec *r, int n) {
    for (int i = 0; i < n; i++) cJSON_Delete(r[i].o);
    free(r);
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

/* Points, one per setting (method, class, budget, waits) in first-seen order. */
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
                    idx[k++] = q;
                    think += r[q].thinking_tokens;
                    steps += r[q].thinking_steps;
                    /* within the budget in its unit: steps asked for are compared with steps */
                    within += r[q].budget < 0 || (r[q].steps ? r[q].thinking_steps : r[q].thinking_tokens) <= r[q].budget;
                    runs++;
                }
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

static char *summary_json(const eval_point *pts, int n, int n_samples) {
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "points");
    bool any_steps = false;
    for (int i = 0; i < n; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "method", pts[i].method);
        if (pts[i].klass[0]) cJSON_AddStringToObject(p, "class", pts[i].klass);
        /* a step-conditional point asked for N steps: it has no token budget */
        if (pts[i].max_thinking_tokens >= 0 && !pts[i].steps) cJSON_AddNumberToObject(p, "max_thinking_tokens", pts[i].max_thinking_tokens);
        else cJSON_AddNullToObject(p, "max_thinking_tokens");
        if (pts[i].steps) cJSON_AddNumberToObject(p, "max_thinking_steps", pts[i].max_thinking_tokens);
        cJSON_AddStringToObject(p, "budget_unit", pts[i].steps ? "steps" : "tokens");
        cJSON_AddNumberToObject(p, "num_waits", pts[i].num_waits);
        cJSON_AddNumberToObject(p, "samples", pts[i].n);
        cJSON_AddNumberToObject(p, "correct", pts[i].correct);
        cJSON_AddNumberToObject(p, "accuracy", pts[i].accuracy);
        cJSON *ci = cJSON_AddArrayToObject(p, "ci95");
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(pts[i].ci95_lo));
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(pts[i].ci95_hi));
        cJSON_AddNumberToObject(p, "avg_thinking_tokens", pts[i].avg_thinking_tokens);
        if (pts[i].steps) cJSON_AddNumberToObject(p, "avg_thinking_steps", pts[i].avg_thinking_steps);
        cJSON_AddNumberToObject(p, "control", pts[i].control);
        cJSON_AddItemToArray(arr, p);
        any_steps |= pts[i].steps;
    }
    cJSON_AddNumberToObject(root, "control", eval_control(pts, n));
    cJSON_AddNumberToObject(root, "scaling", eval_scaling(pts, n));
    cJSON_AddStringToObject(root, "scaling_unit", "accuracy percentage points per 1,000 thinking tokens");
    cJSON_AddStringToObject(root, "control_unit", any_steps ? "fraction of settings within their budget, in each point's budget_unit "
                                                              "(steps for step-conditional)" : "fraction of settings within their token budget");
    if (any_steps)
        cJSON_AddStringToObject(root, "step_definition", "s1's step markers in the thinking ('<|im_start|>N steps left', also "
                                                         "without the special token, or '<|im_start|>stepN'); a thinking without "
                                                         "markers counts its paragraphs (blocks separated by blank lines)");
    cJSON_AddNumberToObject(root, "performance", eval_performance(pts, n));
    cJSON_AddNumberToObject(root, "sample_records", n_samples);
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

static int cmp_x(const void *a, const void *b) {
    const eval_point *x = *(const eval_point *const *)a, *y = *(const eval_point *const *)b;
    return (x->avg_thinking_tokens > y->avg_thinking_tokens) - (x->avg_thinking_tokens < y->avg_thinking_tokens);
}

char *eval_svg(const eval_point *pts, int n) {
    const double W = 640, H = 400, L = 60, R = 20, T = 30, B = 50;
    double xmax = 1;
    for (int i = 0; i < n; i++)
        if (pts[i].avg_thinking_tokens > xmax) xmax = pts[i].avg_thinking_tokens;
    xmax *= 1.1;
    sb b = {0};
    sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
    sb_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"%g\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">Accuracy vs. average thinking tokens (budget forcing)</text>\n", W / 2);
    sb_printf(&b, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n",
              L, H - B, W - R, H - B, L, T, L, H - B);
    for (int k = 0; k <= 5; k++) { /* y: 0..100 % */
        double y = H - B - (H - B - T) * k / 5.0;
        sb_printf(&b, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#ddd\"/><text x=\"%g\" y=\"%g\" text-anchor=\"end\">%d%%</text>\n",
                  L, y, W - R, y, L - 6, y + 4, k * 20);
        double x = L + (W - L - R) * k / 5.0;
        sb_printf(&b, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">%.0f</text>\n", x, H - B + 16, xmax * k / 5.0);
    }
    sb_printf(&b, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">average thinking tokens</text>\n", (L + W - R) / 2, H - 12);
    sb_printf(&b, "<text x=\"16\" y=\"%g\" text-anchor=\"middle\" transform=\"rotate(-90 16 %g)\">accuracy</text>\n", (T + H - B) / 2, (T + H - B) / 2);
    const eval_point **order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    if (order) {
        for (int i = 0; i < n; i++) order[i] = &pts[i];
        qsort(order, (size_t)n, sizeof *order, cmp_x);
        sb_printf(&b, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"");
        for (int i = 0; i < n; i++)
            sb_printf(&b, "%.1f,%.1f ", L + (W - L - R) * order[i]->avg_thinking_tokens / xmax, H - B - (H - B - T) * order[i]->accuracy);
        sb_printf(&b, "\"/>\n");
        for (int i = 0; i < n; i++) {
            double x = L + (W - L - R) * order[i]->avg_thinking_tokens / xmax, y = H - B - (H - B - T) * order[i]->accuracy;
            sb_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#1f77b4\"><title>budget %d, waits %d: %.1f%% at %.0f tokens</title></circle>\n",
                      x, y, order[i]->max_thinking_tokens, order[i]->num_waits, 100 * order[i]->accuracy, order[i]->avg_thinking_tokens);
            if (order[i]->max_thinking_tokens >= 0)
                sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">%s=%d W=%d</text>\n", x + 5, y - 6,
                          order[i]->steps ? "S" : "T", order[i]->max_thinking_tokens, order[i]->num_waits);
            else
                sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">no budget W=%d</text>\n", x + 5, y - 6, order[i]->num_waits);
        }
        free(order);
    }
    sb_printf(&b, "</svg>\n");
    return b.p;
}

/* ------------------------------------------------------------------ HTML */

/* Text inside a <script type="application/json">: "</" must not appear as such. */
static void json_for_script(sb *b, const char *s) {
    for (; *s; s++) {
        if (s[0] == '<' && s[1] == '/') sb_printf(b, "<\\/"), s++;
        else sb_printf(b, "%c", *s);
    }
}

static const char *report_js =
    "const rows=JSON.parse(document.getElementById('samples').textContent);\n"
    "const tb=document.getElementById('rows');let filter='all';\n"
    "function esc(s){return String(s).replace(/[&<>]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]));}\n"
    "function show(){const q=document.getElementById('q').value.toLowerCase();let h='';let k=0;\n"
    " for(const r of rows){if(filter==='correct'&&!r.correct)continue;if(filter==='wrong'&&r.correct)continue;\n"
    "  if(filter==='budget'&&r.think_end_reason!=='budget')continue;\n"
    "  if(q&&!(r.id+' '+r.prompt+' '+r.extracted+' '+r.thinking+' '+r.answer).toLowerCase().includes(q))continue;k++;\n"
    "  h+=`<tr class=${r.correct?'ok':'bad'}><td>${esc(r.id)}</td><td>${r.max_thinking_steps!=null?r.max_thinking_steps+' steps':r.max_thinking_tokens<0?'none':r.max_thinking_tokens}</td><td>${r.num_waits}</td><td>${r.sample}</td>`+\n"
    "   `<td>${r.thinking_tokens}</td><td>${r.waits}</td><td>${esc(r.stop_reason)}</td><td>${esc(r.extracted)}</td><td>${esc(r.gold)}</td><td>${r.correct?'yes':'no'}</td>`+\n"
    "   `<td><details><summary>trace</summary><p><b>Question</b></p><pre>${esc(r.prompt)}</pre><p><b>Thinking</b></p><pre>${esc(r.thinking)}</pre><p><b>Answer</b></p><pre>${esc(r.answer)}</pre></details></td></tr>`;}\n"
    " tb.innerHTML=h;document.getElementById('count').textContent=k+' of '+rows.length+' samples';}\n"
    "for(const b of document.querySelectorAll('button[data-f]'))b.onclick=()=>{filter=b.dataset.f;show();};\n"
    "document.getElementById('q').oninput=show;show();\n";

static char *report_html(const eval_point *pts, int n, const char *svg, const char *samples_json) {
    sb b = {0};
    sb_printf(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>s1c eval report</title>\n<style>\n"
                  "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
                  "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
                  "tr.ok td:nth-child(10){color:#080}tr.bad td:nth-child(10){color:#b00}pre{white-space:pre-wrap;text-align:left;max-width:900px}"
                  "td details{text-align:left}</style></head><body>\n<h1>s1c evaluation</h1>\n");
    sb_printf(&b, "<h2>Summary</h2>\n<table id=\"metrics\"><tr><th>Control</th><th>Scaling (pp / 1,000 thinking tokens)</th><th>Performance</th></tr>"
                  "<tr><td>%.1f%%</td><td>%.2f</td><td>%.1f%%</td></tr></table>\n",
              100 * eval_control(pts, n), eval_scaling(pts, n), 100 * eval_performance(pts, n));
    sb_printf(&b, "<table id=\"points\"><tr><th>budget</th><th>waits</th><th>problems</th><th>correct</th><th>accuracy</th><th>95%% CI</th><th>avg thinking tokens</th><th>within budget</th></tr>\n");
    for (int i = 0; i < n; i++) {
        char bud[32];
        if (pts[i].max_thinking_tokens >= 0) snprintf(bud, sizeof bud, "%d%s", pts[i].max_thinking_tokens, pts[i].steps ? " steps" : "");
        else snprintf(bud, sizeof bud, "none");
        char think[64];
        if (pts[i].steps) snprintf(think, sizeof think, "%.1f (%.1f steps)", pts[i].avg_thinking_tokens, pts[i].avg_thinking_steps);
        else snprintf(think, sizeof think, "%.1f", pts[i].avg_thinking_tokens);
        sb_printf(&b, "<tr><td>%s</td><td>%d</td><td>%d</td><td>%d</td><td>%.1f%%</td><td>%.1f–%.1f%%</td><td>%s</td><td>%.0f%%</td></tr>\n", bud,
                  pts[i].num_waits, pts[i].n, pts[i].correct, 100 * pts[i].accuracy, 100 * pts[i].ci95_lo, 100 * pts[i].ci95_hi,
                  think, 100 * pts[i].control);
    }
    sb_printf(&b, "</table>\n<h2>Scaling</h2>\n%s\n<h2>Samples</h2>\n", svg ? svg : "");
    sb_printf(&b, "<p><button data-f=\"all\">all</button> <button data-f=\"correct\">correct</button> <button data-f=\"wrong\">wrong</button> "
                  "<button data-f=\"budget\">ended by the budget</button> <input id=\"q\" placeholder=\"search\"> <span id=\"count\"></span></p>\n");
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
    int n = 0, np = 0, rc = -1;
    eval_point *pts = NULL;
    char *summary = NULL, *svg = NULL, *html = NULL, *all = NULL;
    if (load(path, &r, &n, err) != 0) goto out;
    if (make_points(r, n, &pts, &np) != 0) { s1c_fail(err, "out of memory"); goto out; }
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_Duplicate(r[i].o, 1));
    all = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    summary = summary_json(pts, np, n);
    svg = eval_svg(pts, np);
    html = all ? report_html(pts, np, svg, all) : NULL;
    if (write_text(dir, "summary.json", summary, err) || write_text(dir, "scaling.svg", svg, err) || write_text(dir, "report.html", html, err)) goto out;
    rc = 0;
out:
    free_recs(r, n);
    free(pts); free(summary); free(svg); free(html); free(all); free(path);
    return rc;
}

int eval_regrade(const char *dir, s1c_err *err) {
    char *path = s1c_path_join(dir, "samples.jsonl");
    rec *r = NULL;
    int n = 0, rc = -1;
    if (load(path, &r, &n, err) != 0) goto out;
    sb b = {0};
    for (int i = 0; i < n; i++) {
        bool unsure, ok = eval_is_correct(r[i].gold, r[i].extracted, &unsure);
        cJSON_DeleteItemFromObjectCaseSensitive(r[i].o, "correct");
        cJSON_DeleteItemFromObjectCaseSensitive(r[i].o, "unsure");
        cJSON_AddBoolToObject(r[i].o, "correct", ok);
        if (unsure) cJSON_AddBoolToObject(r[i].o, "unsure", 1);
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

static int setting_verdicts(const rec *r, int n, const rec *key, verdict **out, s1c_err *err) {
    verdict *v = malloc(((size_t)n + 1) * sizeof *v);
    int *idx = malloc(((size_t)n + 1) * sizeof *idx), nv = 0;
    bool *seen = calloc((size_t)n + 1, 1);
    if (!v || !idx || !seen) { free(v); free(idx); free(seen); return s1c_fail(err, "out of memory"); }
    for (int i = 0; i < n; i++) {
        if (seen[i] || !same_setting(&r[i], key)) continue;
        int k = 0;
        for (int q = i; q < n; q++)
            if (!seen[q] && same_setting(&r[q], key) && !strcmp(r[q].id, r[i].id)) seen[q] = true, idx[k++] = q;
        v[nv++] = (verdict){r[i].id, voted_correct(r, idx, k)};
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
    fprintf(out, "%-22s %6s %5s %8s %8s %8s %7s %7s %9s\n", "setting", "budget", "waits", "problems", "A", "B", "only A",
            "only B", "p (McNemar)");
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
        int nva = setting_verdicts(ra, na, key, &va, err), nvb = nva >= 0 ? setting_verdicts(rb, nb, key, &vb, err) : -1;
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
        fprintf(out, "%-22s %6s %5d %8d %7.1f%% %7.1f%% %7d %7d %9.3g\n", setting, budget, key->waits, both, 100.0 * ca / both,
                100.0 * cb / both, only_a, only_b, mcnemar_p(only_a, only_b));
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
