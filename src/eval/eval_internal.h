#ifndef S1C_EVAL_INTERNAL_H
#define S1C_EVAL_INTERNAL_H

#include <stdio.h>

#include "s1c/eval.h"

/* ---------------------------------------------------------------- samples.jsonl (run.c) */

/* One finished sample, whatever produced it (the local engine or a remote server). */
typedef struct eval_record {
    int budget, num_waits, sample;    /* the setting */
    const char *thinking, *answer;    /* text of the two phases */
    const char *full;                 /* everything generated (what extraction reads), or NULL:
                                         thinking and answer joined by a newline */
    int thinking_tokens, answer_tokens, waits;
    const char *stop_reason, *think_end_reason;
    const char *endpoint;             /* the server that answered (remote runs), or NULL */
    const char *method;               /* eval_method_name (NULL: budget-forcing) */
    const char *control;              /* class-conditional: "short" / "long", else NULL */
    int tries;                        /* rejection sampling: draws it took */
    double prefill_s, decode_s;
} eval_record;

/* Grades the record against the problem and appends it as one fsync'd line. */
int eval_write_record(FILE *f, const eval_problem *p, const eval_record *r, int *n_correct, s1c_err *err);
/* s1's prompt text (SPEC §5): the template's generation prompt for the question, then the
 * thinking start unless the template opened it already (malloc'd; NULL with err on failure). */
char *eval_prompt_text(int tmpl, const char *question, const char *think_start, s1c_err *err);
/* "id|label|budget|waits|sample": the key of a sample in a resumed run; label is the method
 * and the control ("class-conditional:short"), see eval_setting_label. */
char *eval_sample_key(const char *id, const char *label, int budget, int waits, int sample);
void eval_setting_label(char *buf, size_t n, const char *method, const char *control);
/* The sorted keys of samples.jsonl's records; a torn last line is cut off. */
int eval_load_done(const char *path, char ***keys, int *n, s1c_err *err);
bool eval_is_done(char **keys, int n, const char *key);

/* An integer field of a sample record; -1 when missing or not a number (a hand-edited file). */
int eval_int_field(const void *cjson_object, const char *name);

/* Reads DIR/samples.jsonl and writes DIR/summary.json, DIR/scaling.svg, DIR/report.html. */
int eval_summarize(const char *dir, s1c_err *err);

/* The plot as an SVG document (malloc'd): accuracy against average thinking tokens. */
char *eval_svg(const eval_point *pts, int n);

#endif
