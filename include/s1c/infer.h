/* s1c infer layer: sampling and generation. Today a single sequence; the engine
 * (continuous batching over the paged cache) and budget forcing build on the same pieces. */
#ifndef S1C_INFER_H
#define S1C_INFER_H

#include "s1c/base.h"
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
    int kv_dtype;         /* S1C_F32 (default), S1C_F16, S1C_BF16 */
    int ctx;              /* positions per sequence; 0 = the model's context */
    bool prefix_cache;    /* share full blocks of identical prompt prefixes */
} s1c_engine_params;

s1c_engine_params s1c_engine_defaults(void);

/* What a hook sees and may change after each sampled token. */
typedef struct s1c_step_io {
    int token;              /* the token just sampled */
    int n_generated;        /* tokens after the prompt so far (sampled and injected), before this one */
    bool drop;              /* discard the sampled token */
    int32_t inject[64];     /* tokens to append after it (forwarded next step, never sampled) */
    int n_inject;
    int32_t ban[8];         /* tokens that cannot be drawn at the next sample */
    int n_ban;
    bool stop;              /* finish the sequence (stop_reason says why) */
    int stop_reason;
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
    s1c_sampler_params sampler;
    s1c_seq_hook hook;      /* may be NULL */
    void *user;             /* handed to the hook and returned with the result */
    const void *state;      /* initial per-sequence state (copied; may be NULL) */
    size_t state_size;
    int n_samples;          /* > 1: the prompt is prefilled once and forked into this many samples
                               (seeds sampler.seed, +1, +2, ...) */
} s1c_seq_params;

typedef struct s1c_seq_result {
    int id;                 /* the id submit returned (forks get their own ids) */
    int parent;             /* the sequence this one was forked from, or -1 */
    int32_t *tokens;        /* everything after the prompt (malloc'd; the stop token included) */
    int n_tokens;
    int n_prompt;
    int n_cached_prompt;    /* prompt positions taken from the prefix cache or a fork */
    int stop_reason;        /* s1c_stop_reason */
    void *user;
    void *state;            /* the sequence's final state bytes (malloc'd), or NULL */
    char error[256];        /* non-empty when the sequence failed */
    double queue_s, run_s;  /* waiting for admission, then until done */
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
/* The tokens of a live sequence (prompt included) and the prompt length: valid until the next step. */
const int32_t *s1c_engine_tokens(const s1c_engine *e, int seq_id, int *n, int *n_prompt);

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

/* Runs one prompt (already tokenized, BOS included when the model wants one) to the end.
 * tok may be NULL (no text then, only tokens). */
int s1c_generate(const s1c_model *m, const s1c_tokenizer *tok, const int32_t *prompt, int n_prompt,
                 const s1c_gen_params *p, s1c_text_cb cb, void *user, s1c_gen_result *res, s1c_err *err);

#endif
