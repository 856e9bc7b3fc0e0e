/* Shared by the generate command's files: options, prompt encoding, generation settings. */
#ifndef S1C_CLI_GENERATE_H
#define S1C_CLI_GENERATE_H

#include "s1c/infer.h"

typedef struct gen_opts {
    const char *model, *tokenizer, *prompt, *prompt_ids;
    int steps, max_tokens, ctx;
    bool json, echo, ignore_eos, chat, special;
    const char *prompts_file;
    int samples;
    s1c_bf_opts bf;   /* budget forcing (SPEC.md §8) */
    bool bf_on;       /* any budget-forcing flag given */
    bool raw;         /* --raw: the prompt is sent as is, no s1 layout */
    bool think_start_set, think_end_set;
    int kv_mem_mib;   /* --kv-mem: KV cache memory limit in MiB (0 = the engine's default) */
    int kv_dtype;     /* --kv-type: the KV cache's element type (S1C_KV_AUTO, S1C_F32, S1C_F16, S1C_BF16) */
    bool bf16_math_set, bf16_dot; /* --bf16-math (else the model's default) */
    int reject_tries; /* --reject N: rejection sampling with at most N tries (0 = off) */
    int control;      /* --control tokens|steps|short|long (s1c_control) */
    int control_n;    /* N in "Think for up to N tokens/steps." */
    const char *system;
    const char *stops[32];
    int n_stops;
    s1c_sampler_params sp;
} gen_opts;

void gen_opts_init(gen_opts *o);
/* The flags generate and chat share (model, sampling, stops, budget forcing): 1 = taken,
 * 0 = not one of them, -1 = bad value (reported). */
int gen_parse_common(int argc, char **argv, int *i, gen_opts *o);
/* Opens --model with the options that shape how it computes (--bf16-math). */
int gen_open_model(const gen_opts *o, s1c_model **m, s1c_err *err);
/* --tokenizer, else the model's own (GGUF, HF directory); NULL for a HF directory without one. */
int gen_load_tokenizer(const gen_opts *o, const s1c_model *m, s1c_tokenizer **tok, s1c_err *err);
/* The prompt text as token ids (chat template with --chat, BOS when the model wants it). */
int gen_encode_prompt(const gen_opts *o, const s1c_model *m, const s1c_tokenizer *tok, const char *text, int32_t **ids, int *n, s1c_err *err);
/* "1,2 3" as token ids below vocab (malloc'd). */
int gen_parse_ids(const char *s, int vocab, int32_t **out, int *n, s1c_err *err);
/* Generation settings for a prompt of n_prompt tokens (stop ids written to stop_ids[4]). */
s1c_gen_params gen_params(const gen_opts *o, const s1c_model *m, const s1c_tokenizer *tok, int n_prompt, int32_t *stop_ids);
/* --prompts-file and --samples: every prompt and sample through one engine. */
int gen_run_batch(const gen_opts *o, const s1c_model *m, const s1c_tokenizer *tok, s1c_err *err);
/* The JSON fields every generate --json object has, without the braces. */
void gen_print_fields(const int32_t *prompt, int n_prompt, const int32_t *tokens, int n_tokens, const char *text, size_t len,
                      int stop_reason, double prefill_s, double decode_s);

#endif
