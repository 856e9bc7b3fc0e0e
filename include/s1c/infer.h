/* s1c infer layer: sampling and generation. Today a single sequence; the engine
 * (continuous batching over the paged cache) and budget forcing build on the same pieces. */
#ifndef S1C_INFER_H
#define S1C_INFER_H

#include "s1c/base.h"
#include "s1c/grade.h"
#include "s1c/model.h"
#include "s1c/text.h"

/* ---------------------------------------------------------------- sampler */

/* Applied in this order, as vLLM and transformers do: repetition penalty, temperature,
 * top-k, top-p, min-p, then a draw. temperature <= 0 is greedy (argmax; the lowest id wins
 * ties). 0 / 1.0 disable top_k / top_p and min_p 0 disables min-p. */
typedef struct s1c_sampler_params {
    float temperature;
    int top_k;
    float top_p;
    float min_p;
    float repeat_penalty;  /* 1.0 = off; llama.cpp's rule: positive logits /= p, negative *= p */
    int repeat_last_n;     /* how many recent tokens the penalty looks at (0 = all) */
    uint64_t seed;
} s1c_sampler_params;

s1c_sampler_params s1c_sampler_defaults(void);
int s1c_sampler_check(const s1c_sampler_params *p, s1c_err *err);

typedef struct s1c_sampler s1c_sampler;
int s1c_sampler_new(s1c_sampler **out, const s1c_sampler_params *p, int n_vocab, s1c_err *err);
void s1c_sampler_free(s1c_sampler *s);
/* Picks a token; logits are modified in place. history: the tokens so far (for the penalty). */
int s1c_sampler_sample(s1c_sampler *s, float *logits, const int32_t *history, int n_history);

/* ---------------------------------------------------------------- the engine */

/* Continuous batching over the paged KV cache: sequences are submitted (from any thread),
 * admitted while KV blocks are free, stepped together (every running sequence contributes
 * its pending rows — a prompt chunk, injected tokens, or the one token it just sampled — to
 * one forward), and retired as soon as they finish. Per-sequence hooks see every sampled
 * token and may drop it, inject tokens, ban tokens for the next draw, fork the sequence or
 * stop it: budget forcing and sweeps are built on them. */
typedef struct s1c_engine s1c_engine;

typedef struct s1c_engine_params {
    int max_batch_tokens; /* rows per forward (prefill chunks share it with decodes); default 256 */
    int max_seqs;         /* running at once; default 64 */
    int block_size;       /* positions per KV block; default 16 */
    int n_blocks;         /* KV blocks; 0 = derive from kv_bytes */
    uint64_t kv_bytes;    /* KV memory limit when n_blocks is 0; default enough for max_seqs full contexts, capped at 2 GiB */
    int kv_dtype;         /* S1C_F32, S1C_F16, S1C_BF16, or S1C_KV_AUTO (s1c_kv_auto_dtype; the default) */
    int ctx;              /* positions per sequence; 0 = the model's context */
    bool prefix_cache;    /* share full blocks of identical prompt prefixes */
} s1c_engine_params;

s1c_engine_params s1c_engine_defaults(void);

/* What a hook sees and may change after each sampled token. */
typedef struct s1c_step_io {
    int token;              /* the token just sampled (a hook may replace it) */
    int n_generated;        /* tokens after the prompt so far (sampled and injected), before this one */
    bool drop;              /* discard the sampled token */
    int32_t inject[64];     /* tokens to append after it (forwarded next step, never sampled) */
    int n_inject;
    int32_t ban[8];         /* tokens that cannot be drawn at the next sample */
    int n_ban;
    bool stop;              /* finish the sequence (stop_reason says why) */
    int stop_reason;
    int truncate_to;        /* >= 0: first cut the sequence back to this many tokens after the prompt */
    const float *logits;    /* the row the token was drawn from (bans applied, before the sampler's
                               temperature/top-k/top-p), when the sequence asked for want_logits; else NULL */
} s1c_step_io;

/* user: shared by every sequence of a submission; state: this sequence's own copy of the
 * submission's state bytes (forks copy their parent's), for per-sequence controllers. */
typedef void (*s1c_seq_hook)(s1c_engine *e, int seq_id, void *user, void *state, s1c_step_io *io);

typedef struct s1c_seq_params {
    const int32_t *prompt;
    int n_prompt;
    int max_new_tokens;     /* sampled + injected tokens after the prompt; < 0 = until the context is full */
    const int32_t *stop_ids;
    int n_stop_ids;
    int min_new_tokens;     /* stop ids cannot be drawn before this many new tokens (vLLM's min_tokens) */
    s1c_sampler_params sampler;
    s1c_seq_hook hook;      /* may be NULL */
    void *user;             /* handed to the hook and returned with the result */
    const void *state;      /* initial per-sequence state (copied; may be NULL) */
    size_t state_size;
    int n_samples;          /* > 1: the prompt is prefilled once and forked into this many samples
                               (seeds sampler.seed, +1, +2, ...) */
    bool want_logits;       /* hand the hook the logits row of every draw (for logprobs) */
} s1c_seq_params;

typedef struct s1c_seq_result {
    int id;                 /* the id submit returned (forks get their own ids) */
    int parent;             /* the sequence this one was forked from, or -1 */
    int sample;             /* k for the k-th of n_samples (0 = the submitted one); forks made
                               by hooks keep their parent's */
    int32_t *tokens;        /* everything after the prompt (malloc'd; the stop token included) */
    int n_tokens;
    int n_prompt;
    int n_cached_prompt;    /* prompt positions taken from the prefix cache or a fork */
    int stop_reason;        /* s1c_stop_reason */
    void *user;
    void *state;            /* the sequence's final state bytes (malloc'd), or NULL */
    char error[256];        /* non-empty when the sequence failed */
    double queue_s;         /* waiting for admission */
    double prefill_s;       /* admission to the first sampled token */
    double decode_s;        /* first sampled token to the end */
} s1c_seq_result;

void s1c_seq_result_free(s1c_seq_result *r);

int s1c_engine_new(s1c_engine **out, const s1c_model *m, const s1c_engine_params *p, s1c_err *err);
void s1c_engine_free(s1c_engine *e);
/* Queues a sequence; thread-safe. Returns its id (>= 0) or -1 with err filled. */
int s1c_engine_submit(s1c_engine *e, const s1c_seq_params *p, s1c_err *err);
/* One scheduling step: admit, forward once, sample, run hooks, retire. Returns the number of
 * sequences still live (waiting or running), or -1 on an internal error. Call from one thread. */
int s1c_engine_step(s1c_engine *e, s1c_err *err);
/* Steps until every submitted sequence is finished. */
int s1c_engine_run(s1c_engine *e, s1c_err *err);
/* Takes one finished result (1), or returns 0 when none is ready; thread-safe. */
int s1c_engine_poll(s1c_engine *e, s1c_seq_result *out);
/* From inside a hook: a copy of the sequence at its current state (the token being
 * processed excluded), sharing its KV blocks, with a copy of its state bytes (or `state` when
 * not NULL); the copy appends `inject` and goes on with the same hook and its own sampler
 * (sampler NULL = the parent's settings). Returns the new id or -1. */
int s1c_engine_fork(s1c_engine *e, int seq_id, const int32_t *inject, int n_inject, const void *state,
                    const s1c_sampler_params *sampler);
/* The state bytes of a live sequence (forks made in this step included), or NULL. */
void *s1c_engine_state(const s1c_engine *e, int seq_id);
/* The tokens of a live sequence (prompt included) and the prompt length: valid until the next step. */
const int32_t *s1c_engine_tokens(const s1c_engine *e, int seq_id, int *n, int *n_prompt);

/* Ends a sequence and the samples forked from it (parent == seq_id), waiting or running: their
 * KV blocks are freed now and their results (stop_reason S1C_STOP_CANCELLED) are ready to poll.
 * Call from the thread that steps (a server cancels a disconnected client's request between
 * steps). Returns how many sequences it ended (0 when none is live). */
int s1c_engine_cancel(s1c_engine *e, int seq_id);

/* Engine statistics, for tests and benchmarks. */
typedef struct s1c_engine_stats {
    int n_blocks, n_free_blocks, n_cached_blocks;
    long steps, rows, preemptions, prefix_hits;
} s1c_engine_stats;
void s1c_engine_get_stats(const s1c_engine *e, s1c_engine_stats *st);

/* ---------------------------------------------------------------- generation */

typedef enum s1c_stop_reason {
    S1C_STOP_EOS = 0,        /* an end-of-sequence token */
    S1C_STOP_STRING,         /* a stop string */
    S1C_STOP_MAX_TOKENS,     /* --max-tokens / --steps reached */
    S1C_STOP_CONTEXT_FULL,   /* the model's context is full */
    S1C_STOP_CANCELLED,      /* the callback asked to stop */
    /* budget forcing (SPEC.md §8) */
    S1C_STOP_THINK_END,      /* thinking ended naturally and no answer was allowed (max_answer_tokens 0) */
    S1C_STOP_BUDGET,         /* thinking was forced to end and no answer was allowed */
    S1C_STOP_ANSWER_END,     /* the answer ended with <|im_end|> */
    S1C_STOP_ANSWER_LIMIT,   /* the answer reached max_answer_tokens */
    S1C_STOP_REJECTED,       /* rejection sampling: the thinking outgrew the budget */
} s1c_stop_reason;
const char *s1c_stop_reason_name(int r);

typedef struct s1c_gen_params {
    int max_new_tokens;          /* < 0: until a stop condition or the context is full */
    int ctx;                     /* context length to allow; 0 = the model's */
    const int32_t *stop_ids;     /* tokens that end generation (not emitted as text) */
    int n_stop_ids;
    const char *const *stop_strings; /* text that ends generation (cut from the output) */
    int n_stop_strings;
    s1c_sampler_params sampler;
    int kv_dtype;                /* KV cache element type: S1C_F32 (0), S1C_F16, S1C_BF16, S1C_KV_AUTO */
} s1c_gen_params;

/* Called with text as it becomes final (whole UTF-8 characters, stop strings held back
 * until they cannot match). Return non-zero to cancel. */
typedef int (*s1c_text_cb)(void *user, const char *text, int n);

typedef struct s1c_gen_result {
    int32_t *tokens;    /* generated ids (malloc'd), the stop token included if one ended it */
    int n_tokens;
    char *text;         /* generated text (malloc'd), stop string excluded */
    size_t text_len;
    int stop_reason;
    double prefill_s, decode_s;
} s1c_gen_result;

void s1c_gen_result_free(s1c_gen_result *r);

/* Text of engine sequences: a hook that decodes every committed token (UTF-8-safe), stops a
 * sequence at a stop string (cut from its text) and streams text to an optional callback.
 * Each sequence — forks included — gets its own text, found by its id afterwards. Give
 * s1c_textgen_hook as the hook, the s1c_textgen as user, and s1c_textgen_state_init() /
 * sizeof(s1c_textgen_state) as the per-sequence state. */
typedef struct s1c_textgen s1c_textgen;
typedef struct s1c_textgen_state {
    int owner;  /* the sequence this state belongs to (-1 = not yet claimed) */
    int slot;   /* its text slot (-1 = none) */
} s1c_textgen_state;

s1c_textgen *s1c_textgen_new(const s1c_tokenizer *tok, const s1c_gen_params *p, s1c_text_cb cb, void *cb_user);
void s1c_textgen_free(s1c_textgen *g);
s1c_textgen_state s1c_textgen_state_init(void);
void s1c_textgen_hook(s1c_engine *e, int seq_id, void *user, void *state, s1c_step_io *io);
/* Called by hooks that wrap this one: the text of the token the sequence is about to commit. */
void s1c_textgen_on_token(s1c_textgen *g, s1c_engine *e, int seq_id, s1c_textgen_state *st, s1c_step_io *io);
/* The final text of a finished sequence (flushes held-back bytes once); NULL if unknown. */
const char *s1c_textgen_text(s1c_textgen *g, int seq_id, size_t *len);
/* Time of the first token any sequence of this textgen committed (for prefill timing). */
double s1c_textgen_first_token_time(const s1c_textgen *g);

/* Runs one prompt (already tokenized, BOS included when the model wants one) to the end.
 * tok may be NULL (no text then, only tokens). */
int s1c_generate(const s1c_model *m, const s1c_tokenizer *tok, const int32_t *prompt, int n_prompt,
                 const s1c_gen_params *p, s1c_text_cb cb, void *user, s1c_gen_result *res, s1c_err *err);

/* ---------------------------------------------------------------- parallel scaling */

/* Majority vote over k sampled outputs: answers are extracted (s1's rules) and grouped by
 * mathematical equivalence (the grader; an unsure pair counts by its best guess). */
typedef struct s1c_vote {
    int winner;        /* index of a sample in the largest group (the earliest group on ties) */
    int votes;         /* size of that group */
    int n;             /* samples voted */
    double agreement;  /* votes / n */
    char *answer;      /* the winner's extracted answer (malloc'd) */
} s1c_vote;

int s1c_majority_vote(const char *const *texts, const size_t *lens, int n, grade_extractor ex, s1c_vote *out, s1c_err *err);
void s1c_vote_free(s1c_vote *v);

/* ---------------------------------------------------------------- budget forcing */

/* SPEC.md §8, normative: one option set, the same names everywhere (C field = server JSON
 * field = summary.json key). */
#define S1C_BF_UNLIMITED (-1)
#define S1C_BF_AUTO (-2)

typedef enum s1c_bf_compat {
    S1C_BF_NORMATIVE = 0, /* §8: thinking_tokens <= max_thinking_tokens, always */
    S1C_BF_S1_EVAL,       /* s1's evaluation fork: every Wait round gets the full budget again;
                             the joined thinking is cut to the budget afterwards */
} s1c_bf_compat;

typedef struct s1c_bf_opts {
    int max_thinking_tokens; /* --think-max: budget T, S1C_BF_UNLIMITED, or S1C_BF_AUTO */
    int min_thinking_tokens; /* --think-min */
    int num_waits;           /* --waits */
    const char *wait_str;    /* --wait-str, default "Wait" */
    const char *answer_prefix; /* --answer-prefix, default "Final Answer:" */
    const char *think_start; /* --think-start, default "<|im_start|>think" */
    const char *think_end;   /* --think-end, default "<|im_start|>answer" */
    int max_answer_tokens;   /* --answer-max; S1C_BF_UNLIMITED = until the context is full */
    int compat;              /* s1c_bf_compat */
    bool rejection;          /* --reject: never force the end; a run whose thinking outgrows the
                                budget stops as S1C_STOP_REJECTED (the caller resamples) */
} s1c_bf_opts;

s1c_bf_opts s1c_bf_defaults(void);

/* The options resolved against a tokenizer: delimiter and ignore-string token ids. */
typedef struct s1c_bf s1c_bf;

/* ctx: the context length (for S1C_BF_AUTO). textgen (may be NULL) receives every committed
 * token so stop strings and streaming work under budget forcing too. */
int s1c_bf_new(s1c_bf **out, const s1c_bf_opts *o, const s1c_tokenizer *tok, int ctx, s1c_textgen *textgen, s1c_err *err);
void s1c_bf_free(s1c_bf *bf);

enum { S1C_BF_THINK = 0, S1C_BF_ANSWER = 1 };

/* Per-sequence controller state (the engine's hook state; also the accounting it returns). */
typedef struct s1c_bf_state {
    int phase;               /* S1C_BF_THINK, S1C_BF_ANSWER */
    int max_thinking;        /* the resolved budget (auto computed for this prompt), -1 = none */
    int thinking_tokens;     /* §8: generated + injected ignore-string tokens of the thinking */
    int answer_tokens;       /* generated answer tokens (forced suffix excluded) */
    int waits;               /* ignore strings injected */
    int round_tokens;        /* s1-eval: thinking tokens of the current round */
    int think_end_reason;    /* how thinking ended: S1C_STOP_THINK_END, S1C_STOP_BUDGET, or -1 */
    int stop_reason;         /* set when the controller ends the sequence, else -1 */
    int think_end_at;        /* generated-token index where the end-of-thinking delimiter starts */
    int answer_at;           /* generated-token index where the answer text starts */
    bool suppress_end;       /* ban end-of-thinking tokens at the next draw */
    s1c_textgen_state tg;
} s1c_bf_state;

/* Initial state for a prompt of n_prompt tokens (which ends with think_start). */
s1c_bf_state s1c_bf_state_init(const s1c_bf *bf, int n_prompt);
void s1c_bf_hook(s1c_engine *e, int seq_id, void *user, void *state, s1c_step_io *io);
/* A budget sweep as forks (DESIGN.md, "Sweeps share work"): with greedy decoding the thinking
 * under a budget is a prefix of the thinking under a larger one, so one sequence runs under the
 * largest budget and the smaller ones ride along; at the step where one of them would act
 * differently (its budget is reached, or an ignore string no longer fits it) the sequence forks
 * and the fork takes that action. Budgets still riding along when the sequence ends share its
 * result. Use s1c_bf_sweep_hook with this state (the engine copies it into forks). */
#define S1C_BF_SWEEP_MAX 32
typedef struct s1c_bf_sweep_state {
    s1c_bf_state bf;                    /* this sequence's controller (max_thinking = its budget) */
    int pending[S1C_BF_SWEEP_MAX];      /* smaller budgets riding along */
    int n_pending;
} s1c_bf_sweep_state;
void s1c_bf_sweep_hook(s1c_engine *e, int seq_id, void *user, void *state, s1c_step_io *io);
/* Whether these options allow sweeps as forks (normative accounting, no rejection sampling, an
 * answer phase); otherwise run each budget as its own sequence. */
bool s1c_bf_sweep_ok(const s1c_bf *bf);

/* The final stop reason of a budget-forced sequence from the engine's and the controller's. */
int s1c_bf_stop_reason(const s1c_bf_state *st, int engine_reason);
/* The paper's other test-time controls (SPEC.md §5), as prompt suffixes on the question:
 * token-conditional "Think for up to N tokens.", step-conditional "Think for up to N steps.",
 * class-conditional asking for short or long thinking. Returns the new question (malloc'd). */
typedef enum s1c_control {
    S1C_CONTROL_NONE = 0, S1C_CONTROL_TOKENS, S1C_CONTROL_STEPS, S1C_CONTROL_SHORT, S1C_CONTROL_LONG
} s1c_control;
char *s1c_control_question(const char *question, int control, int n);
int s1c_control_from_name(const char *name); /* "tokens", "steps", "short", "long"; -1 if unknown */

/* The tokens of think_start, for building prompts. */
const int32_t *s1c_bf_think_start(const s1c_bf *bf, int *n);

#endif
