#ifndef S1C_EVAL_INTERNAL_H
#define S1C_EVAL_INTERNAL_H

#include <stdio.h>

#include "s1c/eval.h"

/* ---------------------------------------------------------------- samples.jsonl (samples.c) */

/* One finished sample, whatever produced it (the local engine or a remote server), or one
 * whose requests failed after every retry (error set: an error record, neither right nor
 * wrong, retried by the next run over the same directory). */
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
    const char *error;                /* the failure (one line), or NULL: a graded sample */
} eval_record;

/* Grades the record against the problem and appends it as one fsync'd line; an error record
 * (r->error set) is written with "correct": null, its error and no text or extracted answer. */
int eval_write_record(FILE *f, const eval_problem *p, const eval_record *r, int *n_correct, s1c_err *err);
/* s1's prompt text (SPEC §5): the template's generation prompt for the question, then the
 * thinking start unless the template opened it already (malloc'd; NULL with err on failure). */
char *eval_prompt_text(int tmpl, const char *question, const char *think_start, s1c_err *err);
/* "id|label|budget|waits|sample": the key of a sample in a resumed run; label is the method
 * and the control ("class-conditional:short"), see eval_setting_label. */
char *eval_sample_key(const char *id, const char *label, int budget, int waits, int sample);
void eval_setting_label(char *buf, size_t n, const char *method, const char *control);
/* A record's requested budget: max_thinking_steps (step-conditional) or max_thinking_tokens;
 * -1 for none. */
int eval_record_budget(const void *cjson_object);
/* A record's key (eval_sample_key of its fields; malloc'd, NULL: out of memory). */
char *eval_record_key(const void *cjson_object);
/* Whether a record is an error record (its requests failed; no verdict). */
bool eval_record_is_error(const void *cjson_object);

/* The samples in samples.jsonl, sorted by key, with their verdicts. A key may appear more
 * than once (a rerun appends the retry of an error record): the newest line wins. */
typedef struct eval_done_item {
    char *key;
    bool correct;
    bool error;   /* an error record: not done, the next run retries it */
    int line;     /* where it is in the file (the newest wins) */
} eval_done_item;
typedef struct eval_done {
    eval_done_item *items;
    int n;
} eval_done;
/* Loads them; a torn last line (a killed run) is cut off the file. */
int eval_load_done(const char *path, eval_done *d, s1c_err *err);
/* The newest record of key, or NULL. */
const eval_done_item *eval_done_find(const eval_done *d, const char *key);
/* Whether key has a graded record (and then, when correct is not NULL, its verdict); an error
 * record is not done. */
bool eval_is_done(const eval_done *d, const char *key, bool *correct);
void eval_done_free(eval_done *d);

/* ---------------------------------------------------------------- the sweep (samples.c) */

/* One setting: what the controller and the prompt do. */
typedef struct eval_setting {
    int budget;               /* as recorded: the budget forced or asked for (steps for step-conditional),
                                 S1C_BF_UNLIMITED for none */
    int waits;
    int enforce;              /* the thinking budget enforced: the budget for budget forcing and
                                 rejection, S1C_BF_UNLIMITED for the prompt-side controls */
    bool reject;              /* rejection sampling: a thinking over the budget is drawn again */
    int control;              /* s1c_control: the question's suffix (none for budget forcing) */
    const char *control_name; /* class-conditional: "short" / "long", else NULL */
    char label[96];           /* method[:control], part of each sample's key */
} eval_setting;

/* The options' method, budgets and sample count make sense together. */
int eval_check_method(const eval_opts *o, s1c_err *err);
/* The sweep's settings: budgets x waits (class-conditional: short, long x waits). */
int eval_make_settings(const eval_opts *o, eval_setting **out, int *n, s1c_err *err);
/* The question as the setting asks it: with its control suffix (malloc'd, NULL: out of memory). */
char *eval_setting_question(const eval_setting *t, const char *question);

/* An integer field of a sample record; -1 when missing or not a number (a hand-edited file). */
int eval_int_field(const void *cjson_object, const char *name);

/* Reads DIR/samples.jsonl and writes DIR/summary.json, DIR/scaling.svg, DIR/report.html. */
int eval_summarize(const char *dir, s1c_err *err);

/* The plot as an SVG document (malloc'd): accuracy against average thinking tokens. */
char *eval_svg(const eval_point *pts, int n);

/* ---------------------------------------------------------------- the progress line (progress.c) */

typedef struct eval_progress {
    bool quiet, tty;
    int total;          /* samples of the whole run, those finished by earlier runs included */
    int done, correct;  /* finished (resumed ones included) and right among them */
    int errors;         /* samples whose requests failed: neither right nor wrong */
    int done0;          /* finished when this process started (the pace counts only the rest) */
    double t0, last_s;  /* start, last line drawn */
    int last_step;      /* log mode: the last 1/20 of the run a line was written for */
    bool drawn;
    int drawn_done, drawn_errors;
} eval_progress;

/* total: samples of the run; done, correct: those already in samples.jsonl (a resumed run). */
void eval_progress_start(eval_progress *p, int total, int done, int correct, bool quiet);
/* Counts finished samples (correct among them) and failed ones; draws when a line is due. */
void eval_progress_add(eval_progress *p, int done, int correct, int errors);
/* Draws the final state (and ends a terminal's line). */
void eval_progress_end(eval_progress *p);
/* The line itself, at time now (tests and the two functions above). */
void eval_progress_line(const eval_progress *p, double now, char *buf, size_t n);

#endif
