/* s1c eval layer: benchmarks, budget sweeps, the metrics of SPEC.md §6, run directories and
 * reports. */
#ifndef S1C_EVAL_H
#define S1C_EVAL_H

#include <stdio.h>

#include "s1c/base.h"
#include "s1c/infer.h"

/* ---------------------------------------------------------------- benchmarks */

typedef struct eval_problem {
    char *id;
    char *question; /* the user message, exactly as s1 built it */
    char *gold;     /* the gold answer as text */
    char *meta;     /* JSON object kept with every sample record (GPQA: the shuffled choices), or NULL */
} eval_problem;

typedef struct eval_bench {
    char *name;
    eval_problem *p;
    int n;
} eval_bench;

/* Built in: "aime24", "aime25", "math500" (embedded in the binary). */
int eval_bench_builtin(eval_bench *b, const char *name, s1c_err *err);
/* Any JSONL with a question and an answer field (ids: field "id", else the line number). */
int eval_bench_file(eval_bench *b, const char *path, const char *q_field, const char *a_field, s1c_err *err);
/* The same from a buffer (tests); name is used in error messages. */
int eval_bench_parse(eval_bench *b, const char *name, const char *text, size_t len, const char *q_field, const char *a_field, s1c_err *err);
void eval_bench_free(eval_bench *b);
/* GPQA(-Diamond) from the user's file: the official CSV or JSONL (see src/eval/gpqa.c); the
 * four choices shuffled per problem from `seed`, the prompt as SPEC.md §7, gold = the letter. */
int eval_bench_gpqa(eval_bench *b, const char *path, uint64_t seed, s1c_err *err);
/* The choice letter A-D an answer names ("B", "(B)", "B)", "\text{B}", ...), or 0. */
char eval_choice_letter(const char *pred);

/* Correctness as s1 judged it: both digit strings → integer equality (023 = 23); a gold choice
 * letter (A-D) → the letter the prediction names; else the deterministic grader's verdict (an
 * unsure pair counts by its best guess). */
bool eval_is_correct(const char *gold, const char *pred, bool *unsure);

/* Steps of a thinking as s1's step-conditional control counts them (SPEC.md §5): its step
 * markers ("<|im_start|>N steps left", also without the special token, or
 * "<|im_start|>stepN"); a thinking without markers (a model that was only prompted) counts
 * its paragraphs (non-blank lines after a blank one), as s1c generate does. */
int eval_count_steps(const char *thinking);

/* ---------------------------------------------------------------- metrics (SPEC.md §6) */

typedef struct eval_point {
    char method[32];         /* eval_method_name */
    char klass[8];           /* class-conditional: "short" / "long", else "" */
    int max_thinking_tokens; /* the requested budget (S1C_BF_UNLIMITED = none) */
    int num_waits;
    int n;                   /* graded samples */
    int correct;
    double accuracy;         /* correct / n */
    double ci95_lo, ci95_hi; /* Wilson score interval */
    double avg_thinking_tokens;
    bool steps;              /* step-conditional: max_thinking_tokens holds the N steps asked for, and
                                control is measured in steps (SPEC.md §5) */
    double avg_thinking_steps; /* steps (eval_count_steps); filled for step-conditional points */
    double control;          /* fraction of this setting's runs within the requested budget */
    int errors;              /* samples whose requests failed (error records): in no other field */
} eval_point;

/* scaling.svg as SVG text (malloc'd; NULL when out of memory): accuracy vs. average thinking
 * tokens, one line per series — series[i] names point i's line (points without graded samples
 * are left out), in order of first appearance, with a legend. */
char *eval_svg_series(const eval_point *pts, const char *const *series, int n, const char *title);

/* Wilson 95% interval for k successes out of n. */
void eval_wilson(int k, int n, double *lo, double *hi);
/* Control: the fraction of settings whose average thinking lies within [lo, hi] (the paper's
 * definition; a setting with no budget counts as within), in each setting's unit: thinking
 * tokens, or steps for step-conditional points. */
double eval_control(const eval_point *pts, int n);
/* Scaling: the average slope over all pairs of settings, in accuracy percentage points per
 * 1,000 thinking tokens; pairs with equal average thinking are skipped. */
double eval_scaling(const eval_point *pts, int n);
/* Performance: the best accuracy. */
double eval_performance(const eval_point *pts, int n);

/* ---------------------------------------------------------------- runs */

/* The test-time controls of the paper (SPEC.md §5-6). */
typedef enum eval_method {
    EVAL_BUDGET_FORCING = 0, /* s1: force the end at the budget, "Wait" to extend */
    EVAL_TOKEN_CONDITIONAL,  /* the question says "Think for up to N tokens." (no forcing) */
    EVAL_STEP_CONDITIONAL,   /* "Think for up to N steps." (each budget is N steps) */
    EVAL_CLASS_CONDITIONAL,  /* two prompts: short / long thinking (budgets do not apply) */
    EVAL_REJECTION,          /* resample (seed + 1, ...) until the thinking fits the budget */
    EVAL_N_METHODS
} eval_method;

/* "budget-forcing", "token-conditional", ...; eval_method_from_name returns -1 when unknown. */
const char *eval_method_name(int m);
int eval_method_from_name(const char *name);

typedef struct eval_opts {
    const char *out_dir;
    const int *budgets;     /* thinking budgets to sweep (S1C_BF_UNLIMITED allowed) */
    int n_budgets;
    const int *waits;       /* numbers of waits to sweep */
    int n_waits;
    int samples;            /* per problem and setting (majority vote when > 1) */
    s1c_sampler_params sampler;
    s1c_bf_opts bf;         /* everything but the swept fields */
    int max_answer_tokens;
    int limit;              /* first N problems (0 = all) */
    bool quiet;             /* no progress lines */
    bool no_sweep_forks;    /* run every budget as its own sequence even where one trajectory
                               with forks would do (greedy decoding, one sample) */
    int method;             /* eval_method */
    int reject_tries;       /* EVAL_REJECTION: draws per sample at most */
    int kv_dtype;           /* KV cache element type: S1C_F32 (0), S1C_F16, S1C_BF16, S1C_KV_AUTO */
} eval_opts;

/* Runs every setting × problem × sample through the engine (resuming from the run
 * directory's samples.jsonl), then writes summary.json, scaling.svg and report.html. */
int eval_run(const s1c_model *m, const s1c_tokenizer *tok, const eval_bench *b, const eval_opts *o, s1c_err *err);
/* Evaluation against OpenAI-compatible servers instead of a local model. */
typedef struct eval_remote {
    const char *const *endpoints; /* base URLs ("http://host:8000/v1"); jobs are spread over them (64 at most) */
    int n_endpoints;
    const char *model;            /* the served model's name */
    const char *api_key;          /* NULL: $OPENAI_API_KEY */
    int concurrency;              /* requests in flight at once, over all endpoints */
    bool server_bf;               /* the server applies budget forcing (s1c serve's fields); else
                                     s1's loop runs here through /v1/completions */
    int chat_template;            /* client mode: the template that renders the prompt */
    int max_tokens;               /* client mode: the cap when no budget limits a phase */
    double timeout_s;             /* per request */
    int retries;                  /* tries after the first of a request that failed (a 5xx, 429, 408, a
                                     timeout, no connection), with exponential backoff; < 0: 4 */
    double retry_backoff_s;       /* the first of those backoffs; <= 0: 1 s */
    double endpoint_backoff_s;    /* after a failed request an endpoint gets no new requests for this
                                     long (doubling with each further failure, 8x at most) while
                                     another one is live; <= 0: 30 s */
    int stop_after;               /* stop the run when this many requests in a row failed, on every
                                     endpoint, with no success between; <= 0: 16 */
} eval_remote;

/* Runs every setting × problem × sample against the servers (resuming from samples.jsonl),
 * then writes the same summary and reports as eval_run. A sample whose request still fails
 * after its retries (and on the other endpoints, with several) becomes an error record and the
 * run goes on; the next run over the directory retries it. Returns the number of samples that
 * ended in error (0: every sample graded; > 0: err says how many and what failed first), or -1
 * on failure: a local one (the disk), or every endpoint failing (the stop_after rule), which
 * stops the run early with what finished kept. */
int eval_run_remote(const eval_remote *r, const eval_bench *b, const eval_opts *o, s1c_err *err);

/* Compares two run directories setting by setting on the problems both ran: accuracy of each,
 * problems only one got right, and the exact McNemar test's two-sided p-value; a table on out. */
int eval_compare(const char *dir_a, const char *dir_b, FILE *out, s1c_err *err);

/* Re-grades a run directory's samples.jsonl and rewrites its summary and reports. */
int eval_regrade(const char *dir, s1c_err *err);

#endif
