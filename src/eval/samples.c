/* What local and remote runs share: the sweep's settings (method × budget × waits), the keys
 * that make a run resumable, s1's prompt text, step counting for step-conditional control, and
 * the writer of samples.jsonl's records. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval_internal.h"
#include "s1c/grade.h"

/* ------------------------------------------------------------------ methods and settings */

static const char *const method_names[EVAL_N_METHODS] = {"budget-forcing", "token-conditional", "step-conditional",
                                                         "class-conditional", "rejection"};

const char *eval_method_name(int m) { return m >= 0 && m < EVAL_N_METHODS ? method_names[m] : "?"; }

int eval_method_from_name(const char *name) {
    for (int i = 0; i < EVAL_N_METHODS; i++)
        if (!strcmp(name, method_names[i])) return i;
    return -1;
}

void eval_setting_label(char *buf, size_t n, const char *method, const char *control) {
    if (control && *control) snprintf(buf, n, "%s:%s", method, control);
    else snprintf(buf, n, "%s", method);
}

int eval_check_method(const eval_opts *o, s1c_err *err) {
    if (o->method < 0 || o->method >= EVAL_N_METHODS) return s1c_fail(err, "eval: unknown method");
    if (o->samples < 1) return s1c_fail(err, "eval: --samples must be at least 1");
    if (o->n_budgets < 1 || o->n_waits < 1) return s1c_fail(err, "eval: no settings to run");
    bool needs_budget = o->method == EVAL_TOKEN_CONDITIONAL || o->method == EVAL_STEP_CONDITIONAL || o->method == EVAL_REJECTION;
    for (int i = 0; needs_budget && i < o->n_budgets; i++)
        if (o->budgets[i] < 0) return s1c_fail(err, "eval: --method %s needs numeric --think-budgets", eval_method_name(o->method));
    if (o->method == EVAL_REJECTION && o->sampler.temperature <= 0)
        return s1c_fail(err, "eval: rejection sampling needs --temperature > 0 (greedy draws are all the same)");
    if (o->method == EVAL_REJECTION && o->samples != 1) return s1c_fail(err, "eval: rejection sampling takes one sample per setting");
    return 0;
}

int eval_make_settings(const eval_opts *o, eval_setting **out, int *n_out, s1c_err *err) {
    bool classes = o->method == EVAL_CLASS_CONDITIONAL;
    int nb = classes ? 2 : o->n_budgets, n = nb * o->n_waits;
    eval_setting *st = calloc((size_t)n, sizeof *st);
    if (!st) return s1c_fail(err, "out of memory");
    for (int s = 0; s < n; s++) {
        eval_setting *t = &st[s];
        int b = s / o->n_waits;
        t->waits = o->waits[s % o->n_waits];
        t->budget = classes ? S1C_BF_UNLIMITED : o->budgets[b];
        t->control = o->method == EVAL_TOKEN_CONDITIONAL ? S1C_CONTROL_TOKENS
                     : o->method == EVAL_STEP_CONDITIONAL ? S1C_CONTROL_STEPS
                     : classes ? (b == 0 ? S1C_CONTROL_SHORT : S1C_CONTROL_LONG) : S1C_CONTROL_NONE;
        t->control_name = classes ? (b == 0 ? "short" : "long") : NULL;
        /* budget forcing and rejection enforce the budget; the conditional controls only ask for it */
        t->enforce = o->method == EVAL_BUDGET_FORCING || o->method == EVAL_REJECTION ? t->budget : S1C_BF_UNLIMITED;
        t->reject = o->method == EVAL_REJECTION;
        eval_setting_label(t->label, sizeof t->label, eval_method_name(o->method), t->control_name);
    }
    *out = st;
    *n_out = n;
    return 0;
}

char *eval_setting_question(const eval_setting *t, const char *question) {
    return s1c_control_question(question, t->control, t->budget);
}

/* s1's layout: the chat template's generation prompt + the thinking start. */
char *eval_prompt_text(int tmpl, const char *question, const char *think_start, s1c_err *err) {
    s1c_chat_msg msg = {"user", question};
    char *text = s1c_chat_render(tmpl, &msg, 1, true, err);
    if (!text) return NULL;
    size_t tl = strlen(text), sl = strlen(think_start);
    char *full = malloc(tl + sl + 1);
    if (!full) { free(text); s1c_fail(err, "out of memory"); return NULL; }
    memcpy(full, text, tl);
    /* QwQ's and R1's templates already open the thinking ("<think>\n") */
    bool opened = tl > sl && !strncmp(text + tl - sl - 1, think_start, sl);
    memcpy(full + tl, opened ? "" : think_start, opened ? 1 : sl + 1);
    free(text);
    return full;
}

/* ------------------------------------------------------------------ steps (step-conditional) */

/* "<|im_start|>12 steps left" (s1's step-conditional-control model counts down before every
 * step), the same without the special token, or "<|im_start|>step12" (its earlier model). */
static bool is_step_marker(const char *s) {
    if (!strncmp(s, "<|im_start|>", 12)) {
        s += 12;
        if (!strncmp(s, "step", 4) && isdigit((unsigned char)s[4])) return true;
    }
    if (!isdigit((unsigned char)*s)) return false;
    while (isdigit((unsigned char)*s)) s++;
    return !strncmp(s, " steps left", 11) || !strncmp(s, " step left", 10);
}

int eval_count_steps(const char *t) {
    int markers = 0, paragraphs = 0;
    bool in_par = false;
    for (const char *line = t; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
        markers += is_step_marker(line + k);
        /* a paragraph starts at a non-blank line after a blank one (or the start) */
        bool blank = k == len;
        paragraphs += !blank && !in_par;
        in_par = !blank;
        if (!nl) break;
        line = nl + 1;
    }
    return markers > 0 ? markers : paragraphs;
}

/* ------------------------------------------------------------------ resuming */

char *eval_sample_key(const char *id, const char *label, int budget, int waits, int sample) {
    size_t n = strlen(id) + strlen(label) + 48;
    char *k = malloc(n);
    if (k) snprintf(k, n, "%s|%s|%d|%d|%d", id, label, budget, waits, sample);
    return k;
}

int eval_record_budget(const void *obj) {
    int steps = eval_int_field(obj, "max_thinking_steps");
    return steps >= 0 ? steps : eval_int_field(obj, "max_thinking_tokens");
}

char *eval_record_key(const void *obj) {
    const cJSON *o = obj, *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "method"), *c = cJSON_GetObjectItemCaseSensitive(o, "class");
    char label[96];
    eval_setting_label(label, sizeof label, cJSON_IsString(m) ? m->valuestring : "budget-forcing", cJSON_IsString(c) ? c->valuestring : NULL);
    return eval_sample_key(cJSON_IsString(id) ? id->valuestring : "", label, eval_record_budget(o), eval_int_field(o, "num_waits"),
                           eval_int_field(o, "sample"));
}

bool eval_record_is_error(const void *obj) { return cJSON_IsString(cJSON_GetObjectItemCaseSensitive((const cJSON *)obj, "error")); }

/* by key, then by line: the last of a run of equal keys is the newest */
static int cmp_done(const void *a, const void *b) {
    const eval_done_item *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int cmp_key(const void *a, const void *b) {
    return strcmp(((const eval_done_item *)a)->key, ((const eval_done_item *)b)->key);
}

/* Keeps the newest item of each key (items sorted by cmp_done). */
static void keep_newest(eval_done *d) {
    int w = 0;
    for (int i = 0; i < d->n; i++) {
        if (i + 1 < d->n && !strcmp(d->items[i].key, d->items[i + 1].key)) {
            free(d->items[i].key);
            continue;
        }
        d->items[w++] = d->items[i];
    }
    d->n = w;
}

/* The samples already in samples.jsonl; a torn last line (a killed run) is cut off. */
int eval_load_done(const char *path, eval_done *d, s1c_err *err) {
    *d = (eval_done){0};
    if (!s1c_file_exists(path)) return 0;
    char *text = NULL;
    size_t len = 0;
    if (s1c_read_file(path, 1u << 31, &text, &len, err) != 0) return -1;
    size_t good = 0;
    int cap = 0, rc = 0, line = 0;
    for (size_t i = 0; i < len && rc == 0; line++) {
        const char *nl = memchr(text + i, '\n', len - i);
        if (!nl) break; /* no newline: the line was being written when the run died */
        size_t end = (size_t)(nl - text);
        cJSON *o = cJSON_ParseWithLength(text + i, end - i);
        if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "id"))) {
            if (d->n == cap) {
                cap = cap ? cap * 2 : 256;
                eval_done_item *ni = realloc(d->items, (size_t)cap * sizeof *ni);
                if (!ni) rc = s1c_fail(err, "out of memory");
                else d->items = ni;
            }
            char *key = rc == 0 ? eval_record_key(o) : NULL;
            if (key)
                d->items[d->n++] = (eval_done_item){key, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "correct")),
                                                    eval_record_is_error(o), line};
            else if (rc == 0) rc = s1c_fail(err, "out of memory");
        }
        cJSON_Delete(o);
        good = end + 1;
        i = end + 1;
    }
    free(text);
    if (rc != 0) return -1;
    if (d->n > 1) qsort(d->items, (size_t)d->n, sizeof *d->items, cmp_done);
    keep_newest(d);
    if (good < len && truncate(path, (off_t)good) != 0) return s1c_fail(err, "%s: cannot cut the torn last line", path);
    return 0;
}

/* sorted once after loading: a resumed sweep checks every sample in O(log n) */
const eval_done_item *eval_done_find(const eval_done *d, const char *key) {
    eval_done_item k = {(char *)key, false, false, 0};
    return d->n > 0 ? bsearch(&k, d->items, (size_t)d->n, sizeof *d->items, cmp_key) : NULL;
}

bool eval_is_done(const eval_done *d, const char *key, bool *correct) {
    const eval_done_item *hit = eval_done_find(d, key);
    if (!hit || hit->error) return false;
    if (correct) *correct = hit->correct;
    return true;
}

void eval_done_free(eval_done *d) {
    for (int i = 0; i < d->n; i++) free(d->items[i].key);
    free(d->items);
    *d = (eval_done){0};
}

/* ------------------------------------------------------------------ one sample's record */

/* The fields every record has: which sample of which setting, of which problem. */
static cJSON *record_head(const eval_problem *p, const eval_record *r, bool steps) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", p->id);
    cJSON_AddStringToObject(o, "method", r->method ? r->method : "budget-forcing");
    if (r->control) cJSON_AddStringToObject(o, "class", r->control);
    if (r->tries > 1) cJSON_AddNumberToObject(o, "tries", r->tries);
    /* step-conditional asks for N steps: its budget is no token budget (SPEC.md §5) */
    if (steps) cJSON_AddNullToObject(o, "max_thinking_tokens");
    else cJSON_AddNumberToObject(o, "max_thinking_tokens", r->budget);
    if (steps) cJSON_AddNumberToObject(o, "max_thinking_steps", r->budget);
    cJSON_AddNumberToObject(o, "num_waits", r->num_waits);
    cJSON_AddNumberToObject(o, "sample", r->sample);
    cJSON_AddStringToObject(o, "prompt", p->question);
    return o;
}

/* Appends the record as one line, on disk before this returns (a killed run keeps it). */
static int append_line(FILE *f, cJSON *o, s1c_err *err) {
    char *line = cJSON_PrintUnformatted(o);
    int rc = 0;
    if (!line || fprintf(f, "%s\n", line) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = s1c_fail(err, "samples.jsonl: write failed (disk full?)");
    free(line);
    return rc;
}

/* A sample whose requests failed: no text, no extracted answer, no verdict; the error says why. */
static int write_error(FILE *f, const eval_problem *p, const eval_record *r, bool steps, s1c_err *err) {
    cJSON *o = record_head(p, r, steps);
    cJSON_AddStringToObject(o, "gold", p->gold);
    cJSON_AddNullToObject(o, "correct");
    cJSON_AddStringToObject(o, "error", r->error);
    if (r->endpoint) cJSON_AddStringToObject(o, "endpoint", r->endpoint);
    cJSON *meta = p->meta ? cJSON_Parse(p->meta) : NULL;
    if (meta) cJSON_AddItemToObject(o, "problem", meta);
    cJSON_AddNumberToObject(o, "elapsed_s", r->decode_s);
    int rc = append_line(f, o, err);
    cJSON_Delete(o);
    return rc;
}

int eval_write_record(FILE *f, const eval_problem *p, const eval_record *r, int *n_correct, s1c_err *err) {
    bool steps = r->method && !strcmp(r->method, eval_method_name(EVAL_STEP_CONDITIONAL));
    if (r->error) return write_error(f, p, r, steps, err);
    /* extraction sees the whole output, thinking then answer, as s1's harness did */
    size_t all_len = r->full ? strlen(r->full) + 1 : strlen(r->thinking) + strlen(r->answer) + 2;
    char *all = malloc(all_len);
    if (!all) return s1c_fail(err, "out of memory");
    if (r->full) memcpy(all, r->full, all_len);
    else snprintf(all, all_len, "%s\n%s", r->thinking, r->answer);
    grade_extraction ex = {0};
    int rc = grade_extract(all, strlen(all), GRADE_EX_S1_MATH, &ex, err);
    if (rc == 0) {
        bool unsure, ok = eval_is_correct(p->gold, ex.answer, &unsure);
        *n_correct += ok; /* for the running accuracy of the progress lines */
        cJSON *o = record_head(p, r, steps);
        cJSON_AddStringToObject(o, "thinking", r->thinking);
        cJSON_AddStringToObject(o, "answer", r->answer);
        cJSON_AddNumberToObject(o, "thinking_tokens", r->thinking_tokens);
        if (steps) cJSON_AddNumberToObject(o, "thinking_steps", eval_count_steps(r->thinking));
        cJSON_AddNumberToObject(o, "answer_tokens", r->answer_tokens);
        cJSON_AddNumberToObject(o, "waits", r->waits);
        cJSON_AddStringToObject(o, "stop_reason", r->stop_reason);
        cJSON_AddStringToObject(o, "think_end_reason", r->think_end_reason);
        cJSON_AddStringToObject(o, "extracted", ex.answer);
        cJSON_AddStringToObject(o, "gold", p->gold);
        cJSON_AddBoolToObject(o, "correct", ok);
        if (unsure) cJSON_AddBoolToObject(o, "unsure", 1);
        if (r->endpoint) cJSON_AddStringToObject(o, "endpoint", r->endpoint);
        cJSON *meta = p->meta ? cJSON_Parse(p->meta) : NULL;
        if (meta) cJSON_AddItemToObject(o, "problem", meta);
        cJSON_AddNumberToObject(o, "prefill_s", r->prefill_s);
        cJSON_AddNumberToObject(o, "decode_s", r->decode_s);
        rc = append_line(f, o, err);
        cJSON_Delete(o);
    }
    grade_extraction_free(&ex);
    free(all);
    return rc;
}
