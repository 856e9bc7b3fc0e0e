/* Model workloads for `s1c bench`: prefill, decode, decode at a long context, batched decode
 * and (once the trainer is in) a training step, each timed through the real forward
 * (s1c_forward on a paged KV cache) and set against the machine's limits (limits.h).
 *
 * What each measures (medians of `reps` runs; prompt P, block size 16):
 *   prefill       one forward of P prompt tokens (logits for the last);
 *   decode        `decode` greedy steps of one token after the P-token prompt (logits every step);
 *   decode_ctx8k  `ctx_decode` greedy steps at positions ctx.. (the cache's first ctx positions are
 *                 the prompt's blocks shared over and over: the values differ from a real
 *                 8K-token prefill, the work does not);
 *   batch8/32     8 or 32 sequences forked from the P-token prompt (shared prefix blocks, as
 *                 parallel samples are) decoding `batch_steps` steps together;
 *   train_step    skipped until the trainer is merged (bench_train_step).
 * Limit (a roofline): tok/s = min(peak x rows / FLOPs, bandwidth x rows / bytes) per forward,
 * where FLOPs = 2 x matrix parameters per row (+ the head for rows with logits) + attention
 * (4 x heads x head_dim x context per layer), bytes = the matrices at their stored size
 * (file bytes: a quantized file counts its blocks even while the loader widens them) + the K/V
 * each row reads (f32 cache). The peak is the one of the weights' type: f32/f16 -> FMA,
 * bf16 -> BF16 dot, quantized -> int8 dot (limits.h: each with the kernel family's instructions;
 * the FMA peak where the family has none). */
#ifndef S1C_BENCH_MODELBENCH_H
#define S1C_BENCH_MODELBENCH_H

#include <stdbool.h>
#include "bench/limits.h"
#include "s1c/model.h"

typedef struct bench_opts {
    int prompt;      /* P: prompt tokens (a multiple of 16, >= 16) */
    int decode;      /* tokens decoded after the prompt */
    int ctx;         /* the long context (a multiple of 16) */
    int ctx_decode;  /* tokens decoded at the long context */
    int batch_steps; /* steps of the batched decodes */
    int reps;        /* repeats (median) */
    const char *only; /* comma-separated workload names to report (NULL: all) */
    int kv_dtype;     /* the KV cache's element type (S1C_KV_AUTO by default, F32, F16, BF16) */
} bench_opts;

/* Whether name is one of the workloads (prefill, decode, decode_ctx8k, batch8, batch32,
 * batch8_ctx8k, train_step). */
bool bench_workload_known(const char *name);
/* Their names, ", "-separated, into buf (cut at cap - 1 characters). */
void bench_workload_names(char *buf, size_t cap);

/* The full run's settings, and --quick's (seconds on the tiny preset). */
bench_opts bench_opts_default(void);
bench_opts bench_opts_quick(void);

typedef struct bench_result {
    const char *name;      /* prefill, decode, decode_ctx8k, batch8, batch32, train_step */
    const char *type;      /* the weights' type: f32, bf16, q8_0, q4_0, ... */
    bool skipped;
    const char *reason;    /* why skipped */
    int seqs, tokens, ctx; /* sequences, tokens timed per run (all sequences), context reached */
    double seconds;        /* median seconds of one run */
    double tok_s, limit_tok_s, fraction;
    const char *bound;     /* which limit binds: "bandwidth" or "compute" */
    double flops_per_token, bytes_per_token;
    const char *kv;        /* the KV cache's type (auto resolved) */
} bench_result;

typedef void (*bench_emit_fn)(void *user, const bench_result *r);

/* The type of m's matrices as stored in its file (F32, BF16, Q8_0, ...): the one holding most
 * of the layers' weights. */
int bench_model_dtype(const s1c_model *m);
/* What the results call m's type: the mixture a GGUF declares (general.file_type: q4_k_m, ...),
 * else bench_model_dtype's name. */
const char *bench_model_type_name(const s1c_model *m);

/* Runs every workload on m and calls emit for each result as it is measured. */
int bench_run_model(const s1c_model *m, const bench_limits *lim, const bench_opts *o, bench_emit_fn emit, void *user, s1c_err *err);

/* Writes a randomly initialized model of shape c with matrices of dtype (F32, BF16, Q8_0,
 * Q4_0: converted from random bf16 weights; Q4_1/Q5_0/Q5_1: random blocks; Q4_K/Q5_K/Q6_K:
 * random super-blocks, Q8_0 where rows are not whole super-blocks; S1C_MIX(S1C_FTYPE_*): random
 * blocks of the type `s1c convert --type` gives each matrix, llama-quantize's mixture) into a new
 * folder under tmp_root; *dir gets the folder (remove it with bench_remove_dir), *path what
 * s1c_model_open takes. Both malloc'd. */
int bench_make_model(const s1c_config *c, int dtype, const char *tmp_root, char **dir, char **path, s1c_err *err);
/* Removes a folder made by bench_make_model and the files in it. */
void bench_remove_dir(const char *dir);

#endif
