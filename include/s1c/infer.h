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
