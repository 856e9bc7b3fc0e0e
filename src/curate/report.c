/* The closing summary: summary.json (counts per stage and reason, domains, trace lengths) and
 * curate.svg (domain histogram, trace-length histogram). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_internal.h"

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

int cur_write_summary(run_ctx *R, cur_rec **cand, size_t n_cand, cur_rec **sel, size_t n_sel, s1c_err *err) {
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

