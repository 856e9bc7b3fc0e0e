/* s1c demo: synthetic reasoning problems with verifiable answers and a programmatic teacher
 * that writes s1-style thinking traces (step by step; sometimes a slip, then "Wait", a
 * re-check and the correction; sometimes a verification at the end), so the whole s1 recipe
 * runs at miniature scale with no downloads. */
#ifndef S1C_DEMO_H
#define S1C_DEMO_H

#include "s1c/base.h"

/* The problem families ("domains"). */
typedef enum demo_domain {
    DEMO_ARITH = 0, /* a + b * c - d, evaluated in steps */
    DEMO_MOD,       /* n mod k by the largest multiple */
    DEMO_LINEAR,    /* a x + b = c */
    DEMO_COUNT,     /* multiples of k up to n */
    DEMO_UNITS,     /* hours and minutes to minutes, and similar */
    DEMO_N_DOMAINS
} demo_domain;

const char *demo_domain_name(int d);

/* One problem with the teacher's solution. Strings are owned (demo_problem_free). */
typedef struct demo_problem {
    int domain;
    int difficulty;  /* 1 (one or two short steps) .. 3 (more steps, larger numbers) */
    char *question;
    char *trace;     /* the thinking: steps separated by newlines */
    char *answer;    /* the final answer, e.g. "76" */
    int n_slips;     /* how many times the trace went wrong and corrected itself after "Wait" */
    bool verified;   /* the trace checks its result at the end */
} demo_problem;

/* A problem of the domain and difficulty drawn from rng; slip_p: probability that a step is
 * first written wrong (then corrected after "Wait"), verify_p: probability of a final check. */
int demo_problem_make(demo_problem *p, int domain, int difficulty, double slip_p, double verify_p, s1c_rng *rng,
                      s1c_err *err);
void demo_problem_free(demo_problem *p);

/* Writes a byte-level tokenizer (the 256 bytes of GPT-2's byte-level BPE, no merges, plus
 * ChatML's special tokens) as tokenizer.json + tokenizer_config.json in dir; returns the
 * vocabulary size in *n_vocab. Every tool that loads Hugging Face tokenizers reads it. */
int demo_write_tokenizer(const char *dir, int *n_vocab, s1c_err *err);

#endif
