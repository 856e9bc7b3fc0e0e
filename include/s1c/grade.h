/* s1c grade layer: answer extraction and deterministic math-answer grading, offline.
 *
 * Extraction follows ../shared/data/grading/PROVENANCE.md to the letter (s1's
 * `process_results` for openai_math / aime / gpqa_diamond_openai, and lm-evaluation-harness
 * minerva_math). Grading decides whether a predicted answer is mathematically equivalent to
 * a gold answer "up to trivial simplification", the way s1's gpt-4o-mini judge did: lenient
 * on formatting, units, `\text{}` wrappers, `x =` labels, thousands separators, order of
 * solution lists; strict on values. Where the deterministic grader cannot decide it says
 * UNSURE (the caller may then ask an LLM judge).
 *
 * Everything here is pure computation over byte strings: any input (invalid UTF-8, 1 MB
 * answers, 10,000-deep nesting, 10^{10^{10}}) gives a result in bounded time and memory.
 * Functions that can fail (only on out-of-memory) return 0 / -1 and fill an s1c_err. */
#ifndef S1C_GRADE_H
#define S1C_GRADE_H

#include <stdbool.h>
#include <stddef.h>

#include "s1c/base.h"

/* ---------------------------------------------------------------- extraction */

typedef enum grade_extractor {
    GRADE_EX_S1_MATH = 0, /* s1 openai_math / aime*: answer token, last \boxed, "Answer:" */
    GRADE_EX_S1_GPQA,     /* s1 gpqa_diamond_openai: the s1_math stage, then a letter A-D */
    GRADE_EX_MINERVA,     /* lm-eval minerva_math get_unnormalized_answer */
} grade_extractor;

/* "s1_math", "s1_gpqa", "minerva_math" -> enum. Returns 0, or -1 with a message. */
int grade_extractor_from_name(const char *name, grade_extractor *out, s1c_err *err);
const char *grade_extractor_name(grade_extractor ex);

/* Which rule produced an extraction. */
typedef enum grade_rule {
    GRADE_RULE_BOXED_SPACE, /* text after the last "\boxed " up to the next '$' */
    GRADE_RULE_BOXED,       /* content of the last balanced \boxed{...} */
    GRADE_RULE_ANSWER,      /* everything after the first "Answer:" (any case) */
    GRADE_RULE_WHOLE,       /* none of the above: the (answer-section) text unchanged */
    GRADE_RULE_FBOX,        /* only a \fbox{...}: s1's remove_boxed would raise; answer = its content */
    GRADE_RULE_BAD_BOX,     /* the last \boxed is balanced but not "\boxed{": s1 would raise; answer = raw box */
    GRADE_RULE_MINERVA,     /* minerva: "Final Answer: The final answer is X. I hope it is correct." */
    GRADE_RULE_INVALID,     /* minerva: no such sentence; answer = "[invalidanswer]" */
} grade_rule;

typedef struct grade_extraction {
    char *answer;     /* malloc'd, NUL-terminated (may contain NUL bytes of the input: use len) */
    size_t len;
    grade_rule rule;
    /* s1_gpqa: the deterministic stage gave no letter A-D (s1 then asks its judge and falls
     * back to "A"); answer holds the s1_math-stage text. s1_math: s1 itself would have raised
     * (GRADE_RULE_FBOX / GRADE_RULE_BAD_BOX). */
    bool needs_judge;
} grade_extraction;

/* Extracts the final answer from a model output. Returns 0, or -1 (out of memory). */
int grade_extract(const char *text, size_t len, grade_extractor ex, grade_extraction *out, s1c_err *err);
void grade_extraction_free(grade_extraction *e);

/* ---------------------------------------------------------------- equivalence */

typedef enum grade_verdict {
    GRADE_NOT_EQUAL = 0,
    GRADE_EQUAL = 1,
    GRADE_UNSURE = 2, /* the deterministic grader cannot decide (an LLM judge may) */
} grade_verdict;

typedef struct grade_opts {
    /* Skip the shortcuts (identical strings) so the parser and comparer always run: for
     * property tests. */
    bool no_fast_path;
    /* Random-point evaluation seed (0 = the fixed default; verdicts are deterministic). */
    unsigned long long seed;
} grade_opts;

typedef struct grade_result {
    grade_verdict verdict;
    /* The best deterministic guess: EQUAL -> true, NOT_EQUAL -> false, UNSURE -> what a
     * normalized string comparison says (so "equal" is always defined). */
    bool equal;
    /* A static one-line reason ("integers", "numeric", "random points", "parse failed", ...). */
    const char *reason;
} grade_result;

/* Grades pred against gold (both NUL-terminated). Returns 0, or -1 (out of memory). */
int grade_equal(const char *gold, const char *pred, grade_verdict *out, s1c_err *err);
/* The same with explicit lengths, options (NULL = defaults) and the full result. */
int grade_equal_ex(const char *gold, size_t gold_len, const char *pred, size_t pred_len, const grade_opts *opts,
                   grade_result *out, s1c_err *err);

const char *grade_verdict_name(grade_verdict v);


/* ---------------------------------------------------------------- LLM judge (src/grade/judge.c) */
/* For the pairs grade_equal calls UNSURE, s1 asked gpt-4o-mini whether the attempt "is
 * equivalent (ignoring trivial simplifications)" to the gold answer. grade_judge asks an
 * OpenAI-compatible model the same (a few-shot prompt; temperature 0) through the net layer;
 * the reply must be Yes or No (case, surrounding space, a final '.' and markdown '*' ignored),
 * anything else is an error. Verdicts go to an optional on-disk cache so a pair is asked once. */
#include "s1c/net.h"

/* A verdict cache keyed by (model, gold, pred): a JSONL file of
 * {"model":..,"gold":..,"pred":..,"equal":true|false}, loaded at open (lines that do not parse,
 * such as a torn last line, are ignored), appended and fsync'd for every new verdict. Safe to
 * share between threads. path NULL: in memory only. */
typedef struct grade_judge_cache grade_judge_cache;
int grade_judge_cache_open(grade_judge_cache **out, const char *path, s1c_err *err);
void grade_judge_cache_close(grade_judge_cache *c);
/* Verdicts held (loaded + added). */
size_t grade_judge_cache_size(const grade_judge_cache *c);

/* Asks client/model whether pred is equivalent to gold. cache may be NULL. Returns 0 with
 * *equal set, or -1 (request failed after retries, reply not Yes/No, cache write failed). */
int grade_judge(net_client *client, const char *model, const char *gold, const char *pred, grade_judge_cache *cache,
                bool *equal, s1c_err *err);
/* The user message grade_judge sends (malloc'd), for tests and for --help. */
char *grade_judge_prompt(const char *gold, const char *pred);

#endif
