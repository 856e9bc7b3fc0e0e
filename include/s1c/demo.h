/* s1c demo: synthetic reasoning problems with verifiable answers and a programmatic teacher
 * that writes s1-style thinking traces (step by step; sometimes "Wait" and a check by another
 * pass, which catches the teacher's slips), so the whole s1 recipe runs at miniature scale
 * with no downloads. */
#ifndef S1C_DEMO_H
#define S1C_DEMO_H

#include "s1c/base.h"

/* The problem families ("domains"): each folds a list of two-digit numbers. */
typedef enum demo_domain {
    DEMO_SUM = 0, /* the last digit of the sum */
    DEMO_MIN,     /* the smallest */
    DEMO_COUNT,   /* how many are above a threshold */
    DEMO_MAX,     /* the largest */
    DEMO_PRODUCT, /* the last digit of the product */
    DEMO_N_DOMAINS
} demo_domain;

enum {
    DEMO_MAX_TERMS = 7,  /* numbers in the hardest problems */
    DEMO_MAX_PASSES = 4, /* a checking teacher's passes at most (the last one never slips) */
};

const char *demo_domain_name(int d);

/* One problem with the teacher's solution. Strings are owned (demo_problem_free). */
typedef struct demo_problem {
    int domain;
    int difficulty; /* 1: 2-3 numbers, 2: 4-5, 3: 6-7 */
    int n_terms;
    char *question;
    char *trace;  /* the thinking: one line per step, "Wait, again from X:" before each check */
    char *answer; /* the final answer, e.g. "76" */
    int n_passes; /* passes over the numbers: 1, or 2..DEMO_MAX_PASSES when the teacher checked */
    int n_slips;  /* passes with a wrong step (always caught: the answer is the first repeat) */
} demo_problem;

/* A problem of the domain and difficulty drawn from rng. check_p: probability that the
 * teacher checks its result of a difficulty-3 problem by further passes (difficulty d:
 * check_p * d / 3); slip_p: probability that a pass of a checking
 * trace (except the last possible one) has one wrong step. */
int demo_problem_make(demo_problem *p, int domain, int difficulty, double check_p, double slip_p, s1c_rng *rng,
                      s1c_err *err);
void demo_problem_free(demo_problem *p);

/* Writes a byte-level tokenizer (the 256 bytes of GPT-2's byte-level BPE, no merges, plus
 * ChatML's special tokens) as tokenizer.json + tokenizer_config.json in dir; returns the
 * vocabulary size in *n_vocab. Every tool that loads Hugging Face tokenizers reads it. */
int demo_write_tokenizer(const char *dir, int *n_vocab, s1c_err *err);

/* The models `s1c demo --from-scratch` trained, as data/demo ships them inside this binary:
 * demo_have_embedded says whether this build has them; demo_write_embedded writes the one
 * named "pretrain", "sft" or "sft-random" as a Hugging Face directory (config.json,
 * model.safetensors, the tokenizer) into dir. */
bool demo_have_embedded(void);
int demo_write_embedded(const char *name, const char *dir, s1c_err *err);

#endif
