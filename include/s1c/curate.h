/* s1c data layer: question pools, the curation stages of SPEC.md §1 (decontamination,
 * quality, difficulty, domain, diversity) and distillation from a teacher model through any
 * OpenAI-compatible API (src/curate/, src/distill/).
 *
 * A pool is JSONL, one question per line. Every record keeps its whole JSON object, so fields
 * s1c does not know travel through every stage untouched. Bad lines (not JSON, no question,
 * invalid UTF-8, a repeated id) are never fatal: they become records dropped at stage "load"
 * with a reason naming the line.
 *
 * Stages mark records as dropped (stage + one-line reason) and never free them; the curate
 * run writes, for every stage, the kept and the dropped records with their reasons. */
#ifndef S1C_CURATE_H
#define S1C_CURATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "s1c/base.h"
#include "s1c/net.h"
#include "s1c/text.h"

/* ---------------------------------------------------------------- pools */

/* Field names of a pool (the defaults are s1K's names plus "id", "source" and "domain"). */
typedef struct cur_fields {
    const char *id, *question, *solution, *source, *domain, *trajectories, *attempt, *year;
} cur_fields;
void cur_fields_default(cur_fields *f);

typedef struct cur_rec {
    cJSON *obj;          /* the line's object (owned); for a line that is not JSON: {"line":N,"raw":"..."} */
    char *id;            /* the id as text (a missing id is the line number) */
    long line;           /* 1-based line in the pool file */
    const char *question; /* view into obj (NULL when missing) */
    const char *stage;   /* NULL while kept; else the (static) name of the stage that dropped it */
    const char *kind;    /* the (static) reason category counted in the stats ("contaminated", ...) */
    char *reason;        /* malloc'd one-line reason when dropped */
    long trace_tokens;   /* teacher-trace length in tokens (-1 until measured) */
    const char *domain;  /* view into obj, NULL until known */
} cur_rec;

typedef struct cur_pool {
    cur_rec *r;
    size_t n, cap;
    cur_fields f;        /* the field names (pointers owned by the caller) */
} cur_pool;

/* Parses JSONL text (name is used in reasons). Fails only when out of memory: bad lines
 * become records dropped at stage "load". */
int cur_pool_parse(cur_pool *p, const char *name, const char *text, size_t len, const cur_fields *f, s1c_err *err);
/* The same from a file (memory-mapped). Fails when the file cannot be read. */
int cur_pool_load(cur_pool *p, const char *path, const cur_fields *f, s1c_err *err);
void cur_pool_free(cur_pool *p);
/* Marks r dropped by stage, counted under kind, with a printf-style reason (a second drop keeps
 * the first). */
void cur_drop(cur_rec *r, const char *stage, const char *kind, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* String field of a record (NULL when missing or not a string). */
const char *cur_str(const cur_rec *r, const char *field);
/* The teacher trace: the trajectories field joined with "\n" (s1K keeps a list of strings;
 * a plain string is taken as is), stripped. malloc'd; NULL when missing or not strings. */
char *cur_trace(const cur_rec *r, const char *field);
/* Writes one record as a JSON line (invalid UTF-8 in its strings becomes U+FFFD; a dropped
 * record gets "drop_stage" and "drop_reason"). Returns false when the stream failed. */
bool cur_write_rec(void *fp, const cur_rec *r);

/* ---------------------------------------------------------------- text helpers */

/* True when the n bytes are valid UTF-8. */
bool cur_utf8_valid(const char *s, size_t n);
/* FNV-1a 64-bit. */
uint64_t cur_hash(const void *data, size_t n, uint64_t h0);
/* Lowercased words (maximal runs of non-space bytes, ASCII lowercased, as s1 split them):
 * hashes of every word n-gram of text (n >= 1). *out malloc'd. A text of fewer than n words
 * (but at least one) gives one hash of all its words, so short questions still match. */
int cur_ngrams(const char *text, int n, uint64_t **out, size_t *n_out, s1c_err *err);
/* Teacher-trace length: with a tokenizer its token count, else the fallback: one token per
 * run of letters, per digit, per other non-space character (close to BPE counts on math). */
long cur_count_tokens(const s1c_tokenizer *tok, const char *text, size_t n);

/* ---------------------------------------------------------------- decontamination */

/* A set of word 8-gram hashes from evaluation texts. An evaluation text of fewer than 8 words
 * matches a question that contains all its words in a row (3 words or more) or is identical
 * to it (1-2 words). */
typedef struct cur_decontam cur_decontam;
int cur_decontam_new(cur_decontam **out, int n, s1c_err *err);
void cur_decontam_free(cur_decontam *d);
/* Adds a text's n-grams under a benchmark name (kept for reasons, must outlive d). */
int cur_decontam_add(cur_decontam *d, const char *bench, const char *text, s1c_err *err);
/* Adds the chosen field (NULL: the first of question, problem, Question, Problem, prompt) of
 * every line of a JSONL file (path must outlive d: it names the matches); a line that is not
 * JSON or lacks the field is an error naming the line. */
int cur_decontam_add_file(cur_decontam *d, const char *path, const char *field, s1c_err *err);
size_t cur_decontam_size(const cur_decontam *d);
/* The benchmark a text shares an n-gram with, or NULL. */
const char *cur_decontam_match(const cur_decontam *d, const char *text);

/* ---------------------------------------------------------------- quality (SPEC.md §1.1) */

/* The formatting problem of a question, or NULL: "[asy] figure" (unless the source names AIME),
 * "missing image", "template residue p{i}.", "markdown bold with digits". */
const char *cur_format_problem(const char *question, const char *source);
/* Normalized question for exact-duplicate detection: lowercased, whitespace collapsed,
 * trimmed (malloc'd). */
char *cur_normalize(const char *text);
/* Near-duplicate detection: recs[i] whose word 5-gram shingles have Jaccard similarity >=
 * threshold with an earlier record's get dup_of[i] = that record's index (else -1). MinHash
 * with LSH banding proposes candidates, exact Jaccard decides. */
int cur_near_dups(const char *const *texts, size_t n, double threshold, long *dup_of, s1c_err *err);

/* ---------------------------------------------------------------- domains */

/* The Mathematics Subject Classification list s1 used (data/msc/msc.json, embedded). */
typedef struct cur_msc {
    int n;
    char **code, **title, **prompt;
} cur_msc;
int cur_msc_load(cur_msc *m, s1c_err *err);
int cur_msc_parse(cur_msc *m, const char *json, size_t len, s1c_err *err);
void cur_msc_free(cur_msc *m);
/* The classification prompt for a question (malloc'd). */
char *cur_msc_prompt(const cur_msc *m, const char *question);
/* The code a classifier reply names: the last two-digit code of the list in the reply, or -1. */
int cur_msc_parse_reply(const cur_msc *m, const char *reply);

/* ---------------------------------------------------------------- diversity (SPEC.md §1.3) */

/* Chooses up to k of n items: until k are chosen (or none remain), pick a domain uniformly
 * among those with items left; rank its remaining items by length, longest first (ties: lower
 * index first), pick rank r with probability proportional to 2^-r, remove it. Deterministic
 * for a seed. picked (capacity k) gets item indices in pick order; returns how many. */
size_t cur_sample(const char *const *domains, const long *lengths, size_t n, size_t k, uint64_t seed, size_t *picked);

/* ---------------------------------------------------------------- parallel API calls */

/* Runs fn(ctx, i) for i in [0, n) on `threads` threads, starting at most `rps` calls per second
 * (<= 0: no limit). fn does its own locking for shared output. */
typedef void (*cur_task_fn)(void *ctx, size_t i);
int cur_par_run(size_t n, int threads, double rps, cur_task_fn fn, void *ctx, s1c_err *err);

/* An append-only JSONL journal: every line is written and fsync'd before append returns
 * (thread-safe), so a run killed at any point loses at most the line being written; a torn
 * last line is cut at open. */
typedef struct cur_journal cur_journal;
/* Opens (creating) path; if lines is not NULL, the complete lines already there are returned
 * as parsed objects (a JSON array, owned by the caller). */
int cur_journal_open(cur_journal **out, const char *path, cJSON **lines, s1c_err *err);
int cur_journal_append(cur_journal *j, const cJSON *obj, s1c_err *err);
void cur_journal_close(cur_journal *j);

/* ---------------------------------------------------------------- the curate run */

typedef struct cur_ref {
    const char *endpoint, *model;
} cur_ref;

/* Answers questions with a local model through the engine (greedy, one batch; the model's chat
 * template when it has one, else the bare question): answers[i] (malloc'd, valid UTF-8) or
 * errors[i] (malloc'd reason) for each. Fails only when the engine cannot run. */
struct s1c_model;
int cur_local_answer(const struct s1c_model *m, const s1c_tokenizer *tok, const char *const *questions, size_t n, int max_tokens,
                     char **answers, char **errors, s1c_err *err);

typedef struct cur_opts {
    const char *out_dir;
    size_t k;
    uint64_t seed;
    const cur_decontam *decontam;   /* NULL: no n-gram decontamination */
    int max_year;                   /* > 0: drop questions whose year field is later (the evaluation years) */
    double near_dup;                /* Jaccard threshold for near duplicates (<= 0: off) */
    bool no_difficulty;
    const cur_ref *refs;            /* reference models (may be none: precomputed ref_correct) */
    int n_refs;
    const char *judge_endpoint, *judge_model; /* for pairs the grader is unsure about */
    int ref_max_tokens;             /* per reference answer (<= 0: server default / the context) */
    const struct s1c_model *ref_local; /* a local reference model (NULL: none) */
    const s1c_tokenizer *ref_local_tok;
    const char *ref_local_name;     /* its name in records and journals */
    long min_trace_tokens;          /* drop shorter teacher traces */
    const char *domain_endpoint, *domain_model; /* the classifier (NULL: domains must be present) */
    const s1c_tokenizer *tok;       /* for trace lengths (NULL: the fallback count) */
    const char *api_key;
    int concurrency;
    double rps;
    double timeout_s;
    int retries;
    double backoff_s;
    bool quiet;
} cur_opts;

/* Runs every stage over the pool, writing into out_dir: NN-stage.kept.jsonl,
 * NN-stage.dropped.jsonl, stats.jsonl (one line per stage), s1k.jsonl, summary.json and
 * curate.svg. API answers (reference models, judge, classifier) are journaled in out_dir so a
 * rerun asks nothing twice. */
int cur_run(cur_pool *p, const cur_opts *o, s1c_err *err);

/* ---------------------------------------------------------------- distillation */

typedef struct distill_opts {
    const char *endpoint, *model, *api_key;
    const char *out_path;
    const char *system;     /* optional system message */
    int concurrency;
    double rps;
    double timeout_s;
    int retries;
    double backoff_s;
    int max_tokens;         /* <= 0: server default */
    double temperature;     /* < 0: server default */
    bool retry_failed;      /* ask again for ids whose earlier attempt failed */
    const s1c_tokenizer *tok; /* for trace_tokens (NULL: the fallback count) */
    bool quiet;
} distill_opts;

typedef struct distill_stats {
    size_t total, skipped, ok, failed, bad_lines;
    long prompt_tokens, completion_tokens, trace_tokens;
    int requests;
} distill_stats;

/* Splits a reply into reasoning and answer: reasoning from the reasoning field when present,
 * else from <think>...</think> in the content (an answer with only "</think>" counts what comes
 * before it as reasoning). Both malloc'd and stripped; *reasoning is "" when there is none. */
int distill_split(const char *content, const char *reasoning_field, char **reasoning, char **answer, s1c_err *err);
/* Asks the teacher for every question of the pool that out_path does not already hold, appending
 * each result (fsync'd) as it arrives, then rewrites out_path in pool order (one line per id). */
int distill_run(const cur_pool *p, const distill_opts *o, distill_stats *st, s1c_err *err);

#endif
