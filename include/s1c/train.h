/* s1c training: fp32 parameters in one buffer, the transformer's forward + backward for a
 * training row, AdamW with s1's schedule, the SFT dataset, checkpoints and the train loop.
 *
 * The maths is SPEC.md §4. The split of work: the model layer computes gradients of a
 * weighted token cross-entropy for one row of tokens (s1c_grad_row); the train layer decides
 * the weights (s1's loss weighting: every sequence's mean token loss counts equally), steps
 * the optimizer and owns data order and checkpoints. */
#ifndef S1C_TRAIN_H
#define S1C_TRAIN_H

#include "s1c/base.h"
#include "s1c/model.h"
#include "s1c/text.h"

/* ---------------------------------------------------------------- parameters */

/* One tensor of the parameter buffer, in Hugging Face's order and names. */
typedef struct s1c_param_info {
    char name[96];
    int role, layer;      /* model-internal role; layer -1 for the non-layer tensors */
    int ndim;
    int64_t shape[2];     /* outermost first */
    uint64_t offset, n;   /* in floats, into the buffer */
    bool decay;           /* AdamW weight decay applies (every weight except biases, SPEC §4) */
} s1c_param_info;

/* Every parameter as f32 in one contiguous buffer (gradients and Adam moments use the same
 * layout, so the optimizer is one loop over n floats). */
typedef struct s1c_params {
    s1c_config cfg;
    int n_tensors;
    s1c_param_info *info;
    uint64_t n;
    float *data; /* owned; 64-byte aligned */
} s1c_params;

/* The layout for a config, with data zeroed. */
int s1c_params_new(s1c_params *p, const s1c_config *c, s1c_err *err);
/* Copies a model's weights (any dtype s1c reads) to f32. RoPE layout: gradients follow the
 * model's own layout, so a GGUF llama (adjacent pairs) trains as loaded. */
int s1c_params_from_model(s1c_params *p, const s1c_model *m, s1c_err *err);
void s1c_params_free(s1c_params *p);
const s1c_param_info *s1c_params_find(const s1c_params *p, const char *name);
/* Writes the parameters (data: p->data or any buffer of the same layout, e.g. gradients) as
 * one safetensors file with HF names, in dtype F32 or BF16 (round to nearest even). */
int s1c_params_write(const s1c_params *p, const float *data, const char *path, int dtype, s1c_err *err);
/* The same for tensors [t0, t1) only (one shard of a sharded checkpoint). */
int s1c_params_write_range(const s1c_params *p, const float *data, const char *path, int dtype, int t0, int t1,
                           s1c_err *err);
/* Reads a buffer of this layout back from a safetensors file (F32/BF16/F16), checking names
 * and shapes; names the first difference. */
int s1c_params_read(const s1c_params *p, float *data, const char *path, s1c_err *err);

/* ---------------------------------------------------------------- forward + backward */

/* One row of training tokens. Position t predicts target[t] (-1: no prediction) with
 * weight[t]; the row's loss is sum_t weight[t] * CE(logits_t, target[t]). seg (NULL: one
 * segment) packs several sequences in a row: positions restart at 0 where seg changes and
 * attention never crosses a segment boundary. */
typedef struct s1c_grad_row {
    int n;
    const int32_t *token;
    const int32_t *target;
    const float *weight;
    const int32_t *seg;
} s1c_grad_row;

/* Activation memory for rows of up to max_tokens: each layer's input is kept (gradient
 * checkpointing per layer), one layer's internals are recomputed during the backward pass —
 * unless keeping every layer's internals costs at most keep_bytes more, in which case nothing
 * is recomputed (a third fewer FLOPs; short rows and small models),
 * attention is computed row by row (never T x T) and the LM head and cross-entropy in chunks
 * of head_chunk tokens (never T x vocab). */
typedef struct s1c_gradws s1c_gradws;
int s1c_gradws_new(s1c_gradws **out, const s1c_config *c, int max_tokens, int head_chunk, uint64_t keep_bytes,
                   s1c_err *err);
void s1c_gradws_free(s1c_gradws *w);
/* BF16 compute (s1's mixed precision): the linear layers' and the head's products take inputs
 * rounded to bf16 and accumulate in f32; master weights, gradients, norms, softmax and the
 * optimizer stay f32. */
void s1c_gradws_set_bf16(s1c_gradws *w, bool on);
/* Bytes s1c_gradws_new allocates for these sizes (the memory plan, README "Training"). */
uint64_t s1c_gradws_bytes(const s1c_config *c, int max_tokens, int head_chunk, uint64_t keep_bytes);

/* Adds d loss / d params to grad (same layout as p; NULL: the loss only, no backward pass)
 * and returns the row's loss in *loss and the number of predicted positions in *n_targets. */
int s1c_grad_row_run(s1c_gradws *w, const s1c_params *p, float *grad, const s1c_grad_row *row, double *loss,
                     int *n_targets, s1c_err *err);

/* ---------------------------------------------------------------- loss weighting */

/* HF labels (-100 = ignored; position t predicts labels[t+1]) to per-position targets: -1
 * where nothing is predicted, including across a segment boundary of a packed row. */
void s1c_targets_from_labels(int32_t *target, const int32_t *label, const int32_t *seg, int n);
/* The samples of a row (a packed row holds several: one per segment) that predict anything. */
int s1c_row_samples(const int32_t *target, const int32_t *seg, int n);
/* s1's loss weighting (SPEC.md §4): each sample's mean token loss counts equally, so a target
 * of a sample with k targets weighs 1 / (k * n_samples), n_samples counted over the whole
 * optimizer step (every micro-batch and every rank). */
void s1c_loss_weights(float *weight, const int32_t *target, const int32_t *seg, int n, int n_samples);

/* ---------------------------------------------------------------- optimizer */

typedef struct s1c_adamw {
    /* doubles, as the Python floats torch computes these scalars in */
    double lr_peak;      /* 1e-5 */
    double beta1, beta2; /* 0.9, 0.95 */
    double eps;          /* 1e-8 */
    double weight_decay; /* 1e-4 */
    double clip;         /* global-norm clip, 1.0; <= 0: none */
    int total_steps;
    int warmup_steps;   /* ceil(0.05 * total_steps) */
} s1c_adamw;

/* s1's defaults for a run of total_steps (SPEC.md §4). */
void s1c_adamw_defaults(s1c_adamw *o, int total_steps);
/* HF get_cosine_schedule_with_warmup: the lr used by optimizer step `step` (0-based): linear
 * from 0 over the warm-up, then a half cosine to 0 at total_steps. */
double s1c_lr_at(const s1c_adamw *o, int step);
/* The global L2 norm of a gradient buffer (double accumulation, fixed order). */
double s1c_grad_norm(const float *g, uint64_t n);
/* One AdamW step (torch.optim.AdamW semantics: decoupled decay w -= lr*wd*w first, bias
 * correction with t = step + 1) after clipping g to the global norm o->clip. m, v: moments
 * of the same layout. Returns the norm before clipping. */
double s1c_adamw_step(const s1c_adamw *o, const s1c_params *p, float *g, float *m, float *v, int step);
/* The same for a shard (ZeRO-1): only tensors [t0, t1) are updated and m, v hold only their
 * moments, m[0] being that of info[t0].offset. norm is the whole (all-reduced) gradient's
 * s1c_grad_norm — the clipping norm is global, and the caller has it already. */
void s1c_adamw_step_shard(const s1c_adamw *o, const s1c_params *p, float *g, float *m, float *v, int step, int t0, int t1,
                          double norm);

/* ---------------------------------------------------------------- SFT data */

/* Which fields of a JSONL record hold the sample (SPEC.md §3). */
typedef struct s1c_sft_fields {
    const char *question; /* "question" */
    const char *trace;    /* "thinking_trajectories" (s1K); s1K-1.1: "deepseek_thinking_trajectory" or
                             "gemini_thinking_trajectory" — a list of strings or a string */
    const char *attempt;  /* "attempt"; s1K-1.1: "deepseek_attempt" / "gemini_attempt" */
    const char *system;   /* NULL: Qwen2.5's default system prompt */
} s1c_sft_fields;

/* The fields of a named layout: "s1k", "s1k-1.1" (DeepSeek-R1 traces), "s1k-1.1-gemini". */
int s1c_sft_fields_preset(s1c_sft_fields *f, const char *name, s1c_err *err);

/* One rendered and tokenized sample: labels are -100 up to and including
 * "<|im_start|>assistant\n" and the token ids after it (the loss covers the thinking, the
 * answer, the final <|im_end|> and its newline). */
typedef struct s1c_sft_sample {
    int n;
    int32_t *token, *label;
    long line; /* 1-based line of the data file */
} s1c_sft_sample;

/* A record that was not used, and why (for the report). */
typedef struct s1c_sft_skip {
    long line;
    int n_tokens; /* 0 when it did not parse */
    char reason[160];
} s1c_sft_skip;

typedef struct s1c_sft_data {
    int n;
    s1c_sft_sample *s;
    int n_skip;
    s1c_sft_skip *skip;
    long long n_tokens, n_loss_tokens;
    int max_len;
} s1c_sft_data;

typedef struct s1c_sft_load_opts {
    s1c_sft_fields fields;
    int block_size;  /* samples longer than this are skipped (or truncated) */
    bool truncate;   /* keep the first block_size tokens instead of skipping */
    bool skip_bad;   /* malformed records are skipped and reported instead of failing */
    int chat_template; /* the model's template (s1c_tok_chat_template) renders the system and user
                          turns, so training sees the prompt generation will build; -1: SPEC.md §3's
                          Qwen2.5 layout */
} s1c_sft_load_opts;

/* Reads a JSONL file of records, renders each in s1's format and tokenizes it. Fails on the
 * first malformed line (naming it) unless skip_bad; fails when no sample is left. */
int s1c_sft_load(s1c_sft_data *d, const char *path, const s1c_tokenizer *tok, const s1c_sft_load_opts *o,
                 s1c_err *err);
void s1c_sft_free(s1c_sft_data *d);

/* Rows (what one forward pass sees) and the order of a run: without packing a row is one
 * sample; with packing, consecutive samples of a seeded shuffle share a row up to block_size
 * tokens (segments; attention never crosses them). Each epoch visits the rows in a new
 * seeded order; a step takes `batch` rows (the last step of an epoch may take fewer, as
 * transformers' Trainer does without drop_last). */
typedef struct s1c_sft_plan {
    int n_rows;
    int *row_start, *row_len; /* samples [row_start[r], row_start[r] + row_len[r]) of `order` */
    int *order;               /* sample indices in packing order */
    int batch, epochs, steps_per_epoch, total_steps;
    uint64_t seed;
} s1c_sft_plan;

int s1c_sft_plan_new(s1c_sft_plan *pl, const s1c_sft_data *d, int batch, int epochs, bool pack, int block_size,
                     uint64_t seed, s1c_err *err);
void s1c_sft_plan_free(s1c_sft_plan *pl);
/* The rows of optimizer step `step` (0-based): writes up to pl->batch row ids, returns how many. */
int s1c_sft_step_rows(const s1c_sft_plan *pl, int step, int *rows);

/* ---------------------------------------------------------------- the run */

typedef struct s1c_train_opts {
    const char *model;       /* base model: a Hugging Face directory */
    const char *data;        /* JSONL */
    const char *val_data;    /* optional JSONL for validation loss */
    const char *out;         /* run directory */
    s1c_sft_fields fields;
    int epochs, batch;       /* 5, 16 (sequences per optimizer step) */
    int block_size;          /* 32768 */
    bool pack, truncate, skip_bad;
    int max_steps;           /* > 0: stop after this many steps (the schedule still spans the run) */
    int save_every;          /* steps between checkpoints (<= 0: only at the end) */
    int keep;                /* checkpoints kept (<= 0: all) */
    int val_every;           /* steps between validation losses (<= 0: none) */
    int head_chunk;          /* tokens per LM-head chunk */
    double lr, warmup_ratio, weight_decay, clip;
    uint64_t seed;
    int out_dtype;           /* F32, BF16, or -1: the base model's (bf16 stays bf16, else f32) */
    bool bf16_compute;       /* s1's mixed precision: products in bf16, everything else f32 */
    uint64_t shard_bytes;    /* model files larger than this are sharded as transformers does (5 GB) */
    uint64_t keep_bytes;     /* keep every layer's activations (no recomputation) when they fit this (2 GiB) */
} s1c_train_opts;

/* s1's defaults (SPEC.md §4). */
void s1c_train_opts_defaults(s1c_train_opts *o);
/* True when this build trains data-parallel under mpirun (OpenMPI found at build time). A run
 * started by mpirun splits each step's rows over the ranks, all-reduces the gradients, shards
 * the Adam moments (ZeRO-1), and rank 0 writes the log and the checkpoints. */
bool s1c_train_has_mpi(void);

typedef struct s1c_train_progress {
    int step, total_steps, epoch;
    double loss, lr, grad_norm, val_loss; /* val_loss NaN when not computed this step */
    double tok_s, elapsed_s, eta_s;
    long long tokens;
} s1c_train_progress;

/* Called after each optimizer step (and with step == 0 before the first, for the plan). */
typedef void (*s1c_train_cb)(const s1c_train_progress *pr, const char *message, void *ctx);

/* Trains as the options say, writing checkpoints and OUT/log.jsonl. */
int s1c_train_run(const s1c_train_opts *o, s1c_train_cb cb, void *ctx, s1c_err *err);
/* Continues the run in OUT from its latest checkpoint to its original target. Options that
 * override the stored ones must agree with them (only max_steps, save_every, keep and
 * val_every may change); a difference is refused by name. */
int s1c_train_resume(const char *out, const s1c_train_opts *overrides, s1c_train_cb cb, void *ctx, s1c_err *err);

#endif
