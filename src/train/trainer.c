/* The SFT run: data → rows → gradients → AdamW, with checkpoints, a JSONL log and exact
 * resume. Everything a step does depends only on (options, data, step), so a run resumed
 * from step k repeats the straight run bit for bit: the epoch's order is recomputed from
 * the seed, and the checkpoint holds the f32 master weights and both Adam moments. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "train_internal.h"

void s1c_train_opts_defaults(s1c_train_opts *o) {
    memset(o, 0, sizeof *o);
    s1c_sft_fields_preset(&o->fields, "s1k", NULL);
    o->epochs = 5;
    o->batch = 16;
    o->block_size = 32768;
    o->keep = 2;
    o->head_chunk = 256;
    o->lr = 1e-5;
    o->warmup_ratio = 0.05;
    o->weight_decay = 1e-4;
    o->clip = 1.0;
    o->out_dtype = -1;
    o->shard_bytes = 5000000000ULL; /* transformers' default max_shard_size, 5 GB */
    o->keep_bytes = (uint64_t)2 << 30;  /* no recomputation when every layer's internals fit in 2 GiB */
}

/* ---------------------------------------------------------------- the run's state */

typedef struct run {
    s1c_train_opts o;
    char *model_dir, *data_path, *val_path; /* absolute copies */
    uint64_t data_hash;
    long long data_size;
    s1c_params p;
    float *grad, *m, *v;
    s1c_gradws *ws;
    s1c_tokenizer *tok;
    s1c_sft_data data, val;
    s1c_sft_plan plan;
    s1c_adamw adam;
    int dtype, start_step, end_step;
    int group_cap; /* tokens per forward call */
    /* data parallel: this rank's rows of each step and its optimizer shard (ZeRO-1): tensors
     * [t0, t1), whose Adam moments m and v hold (from offset m_off, m_n floats) */
    dist d;
    int t0, t1;
    uint64_t m_off, m_n;
    /* the current row */
    int32_t *token, *label, *target, *seg;
    float *weight;
    FILE *log;
} run;

static char *absolute(const char *path) {
    char *r = realpath(path, NULL);
    return r ? r : strdup(path);
}

/* FNV-1a over the file's bytes: resuming against changed data is refused. */
static int hash_file(const char *path, uint64_t *hash, long long *size, s1c_err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return s1c_fail(err, "%s: cannot open: %s", path, strerror(errno));
    uint64_t h = 1469598103934665603ULL;
    long long n = 0;
    unsigned char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, fp)) > 0) {
        for (size_t i = 0; i < k; i++) h = (h ^ buf[i]) * 1099511628211ULL;
        n += (long long)k;
    }
    fclose(fp);
    *hash = h;
    *size = n;
    return 0;
}

static void run_free(run *r) {
    free(r->model_dir);
    free(r->data_path);
    free(r->val_path);
    s1c_params_free(&r->p);
    free(r->grad);
    free(r->m);
    free(r->v);
    s1c_gradws_free(r->ws);
    s1c_tok_free(r->tok);
    s1c_sft_free(&r->data);
    s1c_sft_free(&r->val);
    s1c_sft_plan_free(&r->plan);
    free(r->token);
    free(r->label);
    free(r->target);
    free(r->seg);
    free(r->weight);
    if (r->log) fclose(r->log);
}

/* ---------------------------------------------------------------- options as JSON */

/* The options that define a run: stored in every checkpoint, compared on resume. */
static cJSON *options_json(const run *r) {
    const s1c_train_opts *o = &r->o;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", r->model_dir);
    cJSON_AddStringToObject(j, "data", r->data_path);
    cJSON_AddStringToObject(j, "question_field", o->fields.question);
    cJSON_AddStringToObject(j, "trace_field", o->fields.trace);
    cJSON_AddStringToObject(j, "attempt_field", o->fields.attempt);
    if (o->fields.system) cJSON_AddStringToObject(j, "system", o->fields.system);
    cJSON_AddNumberToObject(j, "epochs", o->epochs);
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "block_size", o->block_size);
    cJSON_AddBoolToObject(j, "pack", o->pack);
    cJSON_AddBoolToObject(j, "truncate", o->truncate);
    cJSON_AddBoolToObject(j, "skip_bad", o->skip_bad);
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "warmup_ratio", o->warmup_ratio);
    cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(j, "clip", o->clip);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    cJSON_AddStringToObject(j, "seed", seed);
    cJSON_AddNumberToObject(j, "head_chunk", o->head_chunk);
    cJSON_AddStringToObject(j, "compute", o->bf16_compute ? "bf16" : "f32");
    cJSON_AddNumberToObject(j, "shard_bytes", (double)o->shard_bytes);
    cJSON_AddStringToObject(j, "dtype", r->dtype == S1C_BF16 ? "bf16" : "f32");
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)r->data_hash);
    cJSON_AddStringToObject(j, "data_fnv1a64", hash);
    cJSON_AddNumberToObject(j, "data_bytes", (double)r->data_size);
    if (r->val_path) cJSON_AddStringToObject(j, "val_data", r->val_path);
    return j;
}

static char *state_json(const run *r, int step) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "s1c-train-1");
    cJSON_AddNumberToObject(j, "step", step);
    cJSON_AddNumberToObject(j, "total_steps", r->plan.total_steps);
    cJSON_AddNumberToObject(j, "epoch", step / r->plan.steps_per_epoch);
    cJSON_AddNumberToObject(j, "warmup_steps", r->adam.warmup_steps);
    cJSON_AddNumberToObject(j, "max_steps", r->o.max_steps);
    cJSON_AddItemToObject(j, "options", options_json(r));
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    return text;
}

/* ---------------------------------------------------------------- setup */

static int dtype_for_output(const s1c_train_opts *o, const s1c_model *m) {
    if (o->out_dtype == S1C_F32 || o->out_dtype == S1C_BF16) return o->out_dtype;
    return s1c_model_weight_dtype(m) == S1C_BF16 ? S1C_BF16 : S1C_F32;
}

static int load_model(run *r, s1c_err *err) {
    struct stat st;
    if (stat(r->model_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return s1c_fail(err, "%s: s1c train starts from a Hugging Face model directory (s1c convert makes one from a GGUF)",
                        r->model_dir);
    s1c_model *m;
    if (s1c_model_open(&m, r->model_dir, err) != 0) return -1;
    r->dtype = dtype_for_output(&r->o, m);
    int rc = s1c_params_from_model(&r->p, m, err);
    s1c_model_free(m);
    if (rc != 0) return -1;
    if (s1c_tok_load(&r->tok, r->model_dir, 0, err) != 0) return s1c_fail_prefix(err, "%s: tokenizer", r->model_dir);
    return 0;
}

static int load_data(run *r, s1c_err *err) {
    s1c_sft_load_opts lo = {r->o.fields, r->o.block_size, r->o.truncate, r->o.skip_bad, s1c_tok_chat_template(r->tok)};
    if (s1c_sft_load(&r->data, r->data_path, r->tok, &lo, err) != 0) return -1;
    if (r->val_path && s1c_sft_load(&r->val, r->val_path, r->tok, &lo, err) != 0) return -1;
    for (int i = 0; i < r->data.n; i++)
        for (int t = 0; t < r->data.s[i].n; t++)
            if (r->data.s[i].token[t] >= r->p.cfg.vocab_size)
                return s1c_fail(err, "%s:%ld: token %d is outside the model's vocabulary (%d)", r->data_path,
                                r->data.s[i].line, r->data.s[i].token[t], r->p.cfg.vocab_size);
    return s1c_sft_plan_new(&r->plan, &r->data, r->o.batch, r->o.epochs, r->o.pack, r->o.block_size, r->o.seed, err);
}

/* This rank's tensors: contiguous, about 1/size of the floats each. */
static void plan_shard(run *r) {
    r->t0 = r->t1 = 0;
    uint64_t lo = r->p.n * (uint64_t)r->d.rank / (uint64_t)r->d.size;
    uint64_t hi = r->p.n * (uint64_t)(r->d.rank + 1) / (uint64_t)r->d.size;
    while (r->t0 < r->p.n_tensors && r->p.info[r->t0].offset < lo) r->t0++;
    r->t1 = r->t0;
    while (r->t1 < r->p.n_tensors && r->p.info[r->t1].offset < hi) r->t1++;
    r->m_off = r->t0 < r->p.n_tensors ? r->p.info[r->t0].offset : r->p.n;
    r->m_n = (r->t1 < r->p.n_tensors ? r->p.info[r->t1].offset : r->p.n) - r->m_off;
}

/* Buffers sized by the longest row the plan or the validation set holds. */
static int alloc_buffers(run *r, s1c_err *err) {
    int longest = r->val.max_len;
    for (int i = 0; i < r->plan.n_rows; i++) {
        int n = 0;
        for (int k = 0; k < r->plan.row_len[i]; k++) n += r->data.s[r->plan.order[r->plan.row_start[i] + k]].n;
        if (n > longest) longest = n;
    }
    /* short rows of a step share forward calls up to this many tokens (at least the longest row) */
    r->group_cap = r->o.block_size < 4096 ? r->o.block_size : 4096;
    if (r->group_cap < longest) r->group_cap = longest;
    if (s1c_gradws_new(&r->ws, &r->p.cfg, r->group_cap, r->o.head_chunk, r->o.keep_bytes, err) != 0) return -1;
    s1c_gradws_set_bf16(r->ws, r->o.bf16_compute);
    size_t n = (size_t)r->group_cap;
    r->grad = calloc(r->p.n, sizeof *r->grad);
    plan_shard(r);
    r->m = calloc(r->m_n ? r->m_n : 1, sizeof *r->m);
    r->v = calloc(r->m_n ? r->m_n : 1, sizeof *r->v);
    r->token = malloc(n * sizeof *r->token);
    r->label = malloc(n * sizeof *r->label);
    r->target = malloc(n * sizeof *r->target);
    r->seg = malloc(n * sizeof *r->seg);
    r->weight = malloc(n * sizeof *r->weight);
    if (!r->grad || !r->m || !r->v || !r->token || !r->label || !r->target || !r->seg || !r->weight)
        return s1c_fail(err, "out of memory for %llu parameters' gradients and moments", (unsigned long long)r->p.n);
    return 0;
}

static void setup_optimizer(run *r) {
    s1c_adamw_defaults(&r->adam, r->plan.total_steps);
    r->adam.lr_peak = r->o.lr;
    r->adam.weight_decay = r->o.weight_decay;
    r->adam.clip = r->o.clip;
    r->adam.warmup_steps = (int)ceil(r->o.warmup_ratio * r->plan.total_steps);
    r->end_step = r->plan.total_steps;
    if (r->o.max_steps > 0 && r->o.max_steps < r->end_step) r->end_step = r->o.max_steps;
    /* a validation set without --val-every is measured at each checkpoint (and at the end) */
    if (r->val.n && r->o.val_every <= 0) r->o.val_every = r->o.save_every > 0 ? r->o.save_every : r->end_step;
}

/* ---------------------------------------------------------------- one step */

/* Appends the samples of one row to r's buffers at position `at`, each sample its own
 * segment (ids from *seg_id on); returns the new end. Targets are left to the caller. */
static int append_row(run *r, const s1c_sft_data *d, const int *samples, int n_samples, int at, int *seg_id) {
    for (int k = 0; k < n_samples; k++) {
        const s1c_sft_sample *s = &d->s[samples[k]];
        memcpy(r->token + at, s->token, (size_t)s->n * sizeof *r->token);
        memcpy(r->label + at, s->label, (size_t)s->n * sizeof *r->label);
        for (int t = 0; t < s->n; t++) r->seg[at + t] = *seg_id;
        (*seg_id)++;
        at += s->n;
    }
    return at;
}

/* One row alone in r's buffers, with its targets; returns its length. */
static int build_row(run *r, const s1c_sft_data *d, const int *samples, int n_samples) {
    int seg_id = 0, n = append_row(r, d, samples, n_samples, 0, &seg_id);
    s1c_targets_from_labels(r->target, r->label, r->seg, n);
    return n;
}

/* Forward + backward of the rows gathered in r's buffers (n tokens) as one call: each sample
 * is a segment, so this is the same maths as one call per row, in fewer, larger products. */
static int run_group(run *r, int n, int n_samples, double *loss, s1c_err *err) {
    s1c_targets_from_labels(r->target, r->label, r->seg, n);
    s1c_loss_weights(r->weight, r->target, r->seg, n, n_samples);
    s1c_grad_row row = {n, r->token, r->target, r->weight, r->seg};
    double l = 0;
    int nt;
    int rc = s1c_grad_row_run(r->ws, &r->p, r->grad, &row, &l, &nt, err);
    *loss += l;
    return rc;
}

/* Gradient of one step over its rows into r->grad; returns the step's loss and token count. */
static int step_gradients(run *r, int step, double *loss, long long *tokens, s1c_err *err) {
    int rows[r->plan.batch > 0 ? r->plan.batch : 1];
    int n_rows = s1c_sft_step_rows(&r->plan, step, rows);
    if (n_rows == 0) return s1c_fail(err, "step %d has no rows", step + 1);
    /* s1's weighting needs the step's sample count before any row runs */
    int n_samples = 0;
    for (int i = 0; i < n_rows; i++) {
        int n = build_row(r, &r->data, r->plan.order + r->plan.row_start[rows[i]], r->plan.row_len[rows[i]]);
        n_samples += s1c_row_samples(r->target, r->seg, n);
    }
    memset(r->grad, 0, r->p.n * sizeof *r->grad);
    *loss = 0;
    *tokens = 0;
    int rc = 0, at = 0, seg_id = 0;
    /* rank k takes rows k, k + size, ...; the weights already divide by the step's samples.
     * Consecutive rows share one forward call while they fit in group_cap tokens. */
    for (int i = r->d.rank; i < n_rows && n_samples > 0 && rc == 0; i += r->d.size) {
        const int *samples = r->plan.order + r->plan.row_start[rows[i]];
        int k = r->plan.row_len[rows[i]], len = 0;
        for (int j = 0; j < k; j++) len += r->data.s[samples[j]].n;
        if (at > 0 && at + len > r->group_cap) {
            rc = run_group(r, at, n_samples, loss, err);
            at = seg_id = 0;
        }
        at = append_row(r, &r->data, samples, k, at, &seg_id);
        *tokens += len;
    }
    if (rc == 0 && at > 0) rc = run_group(r, at, n_samples, loss, err);
    if (dist_max_int(&r->d, rc != 0) != 0) return rc != 0 ? -1 : s1c_fail(err, "another rank failed at step %d", step + 1);
    dist_sum_f32(&r->d, r->grad, r->p.n);
    *loss = dist_sum_f64(&r->d, *loss);
    *tokens = (long long)dist_sum_f64(&r->d, (double)*tokens);
    return 0;
}

/* Mean over validation samples of each sample's mean token loss (forward only). */
static double validation_loss(run *r, s1c_err *err) {
    double sum = 0;
    int used = 0;
    for (int i = r->d.rank; i < r->val.n; i += r->d.size) {
        int n = build_row(r, &r->val, &i, 1);
        if (s1c_row_samples(r->target, NULL, n) == 0) continue;
        s1c_loss_weights(r->weight, r->target, NULL, n, 1);
        s1c_grad_row row = {n, r->token, r->target, r->weight, r->seg};
        double l;
        int nt;
        if (s1c_grad_row_run(r->ws, &r->p, NULL, &row, &l, &nt, err) != 0) return NAN;
        sum += l;
        used++;
    }
    sum = dist_sum_f64(&r->d, sum);
    used = (int)dist_sum_f64(&r->d, used);
    return used ? sum / used : NAN;
}

/* ---------------------------------------------------------------- checkpoints and log */

/* Rank 0 writes the checkpoint with every rank's moments gathered; all ranks learn whether
 * it worked. */
static int save(run *r, int step, s1c_err *err) {
    float *m = r->m, *v = r->v;
    bool whole = r->m_off == 0 && r->m_n == r->p.n;
    if (!whole && r->d.rank == 0) {
        m = malloc(r->p.n * sizeof *m);
        v = malloc(r->p.n * sizeof *v);
    }
    int rc = 0;
    if (!whole && r->d.rank == 0 && (!m || !v)) rc = s1c_fail(err, "out of memory gathering the optimizer state");
    if (!whole && dist_max_int(&r->d, rc != 0) == 0) {
        dist_gather_f32(&r->d, m, r->m, r->m_off, r->m_n, 0);
        dist_gather_f32(&r->d, v, r->v, r->m_off, r->m_n, 0);
    }
    if (rc == 0 && r->d.rank == 0) {
        char *state = state_json(r, step);
        ckpt_data c = {step, &r->p, m, v, r->dtype, r->model_dir, state, r->o.keep, r->o.shard_bytes};
        rc = ckpt_save(r->o.out, &c, err);
        free(state);
        if (rc == 0 && r->log) {
            fflush(r->log);
            fsync(fileno(r->log));
        }
    }
    if (!whole && r->d.rank == 0) {
        free(m);
        free(v);
    }
    if (dist_max_int(&r->d, rc != 0) != 0 && rc == 0) rc = s1c_fail(err, "rank 0 could not save step %d", step);
    return rc;
}

/* Opens OUT/log.jsonl keeping only the lines of steps <= keep_steps (a resumed run rewrites
 * the steps after its checkpoint). */
static int open_log(run *r, int keep_steps, s1c_err *err) {
    char *path = s1c_path_join(r->o.out, "log.jsonl");
    char *old = NULL;
    size_t len = 0;
    s1c_err ignored;
    if (keep_steps > 0) s1c_read_file(path, (size_t)1 << 30, &old, &len, &ignored);
    r->log = fopen(path, "w");
    int rc = r->log ? 0 : s1c_fail(err, "%s: cannot write: %s", path, strerror(errno));
    for (char *line = old, *next; rc == 0 && line && *line; line = next) {
        next = strchr(line, '\n');
        next = next ? next + 1 : line + strlen(line);
        int step = 0;
        if (sscanf(line, "{\"step\": %d", &step) == 1 && step <= keep_steps) fwrite(line, 1, (size_t)(next - line), r->log);
    }
    free(old);
    free(path);
    return rc;
}

static void log_step(run *r, const s1c_train_progress *pr) {
    fprintf(r->log, "{\"step\": %d, \"epoch\": %.4f, \"loss\": %.6g, \"lr\": %.6g, \"grad_norm\": %.6g, \"tokens_per_s\": %.1f",
            pr->step, (double)pr->step / r->plan.steps_per_epoch, pr->loss, pr->lr, pr->grad_norm, pr->tok_s);
    if (!isnan(pr->val_loss)) fprintf(r->log, ", \"val_loss\": %.6g", pr->val_loss);
    fprintf(r->log, "}\n");
    fflush(r->log);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- the loop */

/* After a ZeRO-1 step every rank holds only its tensors' new values: each broadcasts its own. */
static void share_updated_weights(run *r) {
    for (int k = 0; k < r->d.size; k++) {
        uint64_t lo = r->p.n * (uint64_t)k / (uint64_t)r->d.size, hi = r->p.n * (uint64_t)(k + 1) / (uint64_t)r->d.size;
        int t0 = 0, t1;
        while (t0 < r->p.n_tensors && r->p.info[t0].offset < lo) t0++;
        for (t1 = t0; t1 < r->p.n_tensors && r->p.info[t1].offset < hi; t1++)
            ;
        uint64_t a = t0 < r->p.n_tensors ? r->p.info[t0].offset : r->p.n, b = t1 < r->p.n_tensors ? r->p.info[t1].offset : r->p.n;
        if (b > a) dist_bcast_f32(&r->d, r->p.data + a, b - a, k);
    }
}

static int train_loop(run *r, s1c_train_cb cb, void *ctx, s1c_err *err) {
    double t0 = now_s();
    long long tokens_run = 0;
    for (int step = r->start_step; step < r->end_step; step++) {
        double loss = 0;
        long long tokens = 0;
        if (step_gradients(r, step, &loss, &tokens, err) != 0) return -1;
        double norm = s1c_grad_norm(r->grad, r->p.n);
        if (!isfinite(loss) || !isfinite(norm))
            return s1c_fail(err, "step %d: the %s is %s; stopping without saving (the last checkpoint is intact)",
                            step + 1, isfinite(loss) ? "gradient norm" : "loss", isnan(isfinite(loss) ? norm : loss) ? "NaN" : "infinite");
        s1c_train_progress pr = {.step = step + 1, .total_steps = r->end_step, .loss = loss, .grad_norm = norm,
                                 .lr = s1c_lr_at(&r->adam, step), .val_loss = NAN};
        s1c_adamw_step_shard(&r->adam, &r->p, r->grad, r->m, r->v, step, r->t0, r->t1, norm);
        share_updated_weights(r);
        tokens_run += tokens;
        pr.tokens = tokens_run;
        pr.epoch = step / r->plan.steps_per_epoch;
        pr.elapsed_s = now_s() - t0;
        pr.tok_s = tokens_run / (pr.elapsed_s > 0 ? pr.elapsed_s : 1e-9);
        pr.eta_s = pr.elapsed_s / (step + 1 - r->start_step) * (r->end_step - step - 1);
        if (r->val.n && r->o.val_every > 0 && (step + 1) % r->o.val_every == 0) pr.val_loss = validation_loss(r, err);
        if (r->d.rank == 0) {
            log_step(r, &pr);
            if (cb) cb(&pr, NULL, ctx);
        }
        bool last = step + 1 == r->end_step;
        if ((last || (r->o.save_every > 0 && (step + 1) % r->o.save_every == 0)) && save(r, step + 1, err) != 0) return -1;
    }
    return 0;
}

static void report_plan(run *r, s1c_train_cb cb, void *ctx) {
    if (!cb || r->d.rank != 0) return;
    char msg[512];
    if (r->d.size > 1) {
        snprintf(msg, sizeof msg, "data parallel over %d ranks (each takes every %dth row of a step; optimizer state sharded)",
                 r->d.size, r->d.size);
        s1c_train_progress p0 = {.val_loss = NAN};
        cb(&p0, msg, ctx);
    }
    snprintf(msg, sizeof msg,
             "%d samples (%lld tokens, %lld in the loss, longest %d) in %d rows; %d epochs x %d steps = %d steps of %d "
             "rows; warm-up %d; %d skipped",
             r->data.n, r->data.n_tokens, r->data.n_loss_tokens, r->data.max_len, r->plan.n_rows, r->plan.epochs,
             r->plan.steps_per_epoch, r->plan.total_steps, r->plan.batch, r->adam.warmup_steps, r->data.n_skip);
    s1c_train_progress pr = {.step = r->start_step, .total_steps = r->end_step, .val_loss = NAN};
    cb(&pr, msg, ctx);
    for (int i = 0; i < r->data.n_skip; i++) {
        snprintf(msg, sizeof msg, "skipped %s:%ld: %s", r->data_path, r->data.skip[i].line, r->data.skip[i].reason);
        cb(&pr, msg, ctx);
    }
}

static int prepare(run *r, s1c_err *err) {
    if (!r->o.model || !r->o.data || !r->o.out) return s1c_fail(err, "train needs a model, a data file and an output directory");
    r->model_dir = absolute(r->o.model);
    r->data_path = absolute(r->o.data);
    r->val_path = r->o.val_data ? absolute(r->o.val_data) : NULL;
    if (hash_file(r->data_path, &r->data_hash, &r->data_size, err) != 0) return -1;
    if (s1c_mkdir_p(r->o.out, err) != 0) return -1;
    if (load_model(r, err) != 0 || load_data(r, err) != 0 || alloc_buffers(r, err) != 0) return -1;
    setup_optimizer(r);
    return 0;
}

/* Every rank learns whether any rank failed (one rank alone must not go on into a collective). */
static int agree(run *r, int rc, s1c_err *err) {
    if (dist_max_int(&r->d, rc != 0) == 0) return 0;
    return rc != 0 ? rc : s1c_fail(err, "another rank failed (its message names the cause)");
}

static int open_log_rank0(run *r, int keep_steps, s1c_err *err) {
    return r->d.rank == 0 ? open_log(r, keep_steps, err) : 0;
}

int s1c_train_run(const s1c_train_opts *o, s1c_train_cb cb, void *ctx, s1c_err *err) {
    run r = {.o = *o};
    if (dist_init(&r.d, err) != 0) return -1;
    char *latest = s1c_path_join(o->out, "latest");
    bool exists = access(latest, F_OK) == 0;
    free(latest);
    int rc = exists ? s1c_fail(err, "%s already holds a run (--resume %s continues it; pick another --out to start over)",
                               o->out, o->out)
                    : prepare(&r, err);
    rc = agree(&r, rc, err);
    if (rc == 0) report_plan(&r, cb, ctx);
    if (rc == 0) rc = agree(&r, open_log_rank0(&r, 0, err), err);
    if (rc == 0) rc = train_loop(&r, cb, ctx, err);
    run_free(&r);
    dist_finalize(&r.d);
    return rc;
}

/* ---------------------------------------------------------------- resume */

static const char *json_str(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double json_num(const cJSON *j, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* Fills r->o from the stored options (strings stay owned by the cJSON tree `keep`). */
static int options_from_json(s1c_train_opts *o, const cJSON *j, s1c_err *err) {
    o->model = json_str(j, "model");
    o->data = json_str(j, "data");
    o->val_data = json_str(j, "val_data");
    o->fields.question = json_str(j, "question_field");
    o->fields.trace = json_str(j, "trace_field");
    o->fields.attempt = json_str(j, "attempt_field");
    o->fields.system = json_str(j, "system");
    if (!o->model || !o->data || !o->fields.question || !o->fields.trace || !o->fields.attempt)
        return s1c_fail(err, "trainer_state.json lacks the run's options");
    o->epochs = (int)json_num(j, "epochs", 5);
    o->batch = (int)json_num(j, "batch", 16);
    o->block_size = (int)json_num(j, "block_size", 32768);
    o->pack = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "pack"));
    o->truncate = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "truncate"));
    o->skip_bad = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "skip_bad"));
    o->lr = json_num(j, "lr", 1e-5);
    o->warmup_ratio = json_num(j, "warmup_ratio", 0.05);
    o->weight_decay = json_num(j, "weight_decay", 1e-4);
    o->clip = json_num(j, "clip", 1.0);
    o->head_chunk = (int)json_num(j, "head_chunk", 256);
    const char *compute = json_str(j, "compute");
    o->bf16_compute = compute && !strcmp(compute, "bf16");
    o->shard_bytes = (uint64_t)json_num(j, "shard_bytes", 5e9); /* file names stay the same across checkpoints */
    const char *seed = json_str(j, "seed");
    o->seed = seed ? strtoull(seed, NULL, 10) : 0;
    const char *dt = json_str(j, "dtype");
    o->out_dtype = dt && strcmp(dt, "bf16") == 0 ? S1C_BF16 : S1C_F32;
    return 0;
}

/* The first option the user set on the command line that disagrees with the stored run. */
static int check_overrides(const s1c_train_opts *stored, const s1c_train_opts *ov, s1c_err *err) {
#define SAME_NUM(field, name)                                                                            \
    if (ov->field != 0 && ov->field != stored->field)                                                    \
        return s1c_fail(err, "--resume: the run was started with %s %g, not %g (resuming must not change it)", \
                        name, (double)stored->field, (double)ov->field);
    SAME_NUM(epochs, "--epochs");
    SAME_NUM(batch, "--batch");
    SAME_NUM(block_size, "--block-size");
    SAME_NUM(lr, "--lr");
    SAME_NUM(seed, "--seed");
#undef SAME_NUM
    if (ov->data) {
        char *a = absolute(ov->data);
        int diff = strcmp(a, stored->data);
        free(a);
        if (diff) return s1c_fail(err, "--resume: the run was started on --data %s, not %s", stored->data, ov->data);
    }
    if (ov->model) {
        char *a = absolute(ov->model);
        int diff = strcmp(a, stored->model);
        free(a);
        if (diff) return s1c_fail(err, "--resume: the run was started from --model %s, not %s", stored->model, ov->model);
    }
    return 0;
}

/* The checkpoint's data hash must match the file as it is now. */
static int check_data_unchanged(const run *r, const cJSON *opts, s1c_err *err) {
    const char *hash = json_str(opts, "data_fnv1a64");
    char now[32];
    snprintf(now, sizeof now, "%016llx", (unsigned long long)r->data_hash);
    if (hash && strcmp(hash, now) != 0)
        return s1c_fail(err, "--resume: %s changed since the run started (%lld bytes, hash %s; now %lld bytes, hash %s)",
                        r->data_path, (long long)json_num(opts, "data_bytes", -1), hash, r->data_size, now);
    return 0;
}

/* The checkpoint's weights, and this rank's slice of its Adam moments. */
static int load_state(run *r, const char *dir, s1c_err *err) {
    bool whole = r->m_off == 0 && r->m_n == r->p.n;
    float *m = whole ? r->m : malloc(r->p.n * sizeof *m), *v = whole ? r->v : malloc(r->p.n * sizeof *v);
    char *ignored = NULL;
    int rc = m && v ? ckpt_load(dir, &r->p, m, v, &ignored, err) : s1c_fail(err, "out of memory reading the optimizer state");
    free(ignored);
    if (rc == 0 && !whole) {
        memcpy(r->m, m + r->m_off, r->m_n * sizeof *m);
        memcpy(r->v, v + r->m_off, r->m_n * sizeof *v);
    }
    if (!whole) {
        free(m);
        free(v);
    }
    return rc;
}

int s1c_train_resume(const char *out, const s1c_train_opts *ov, s1c_train_cb cb, void *ctx, s1c_err *err) {
    char *latest = s1c_path_join(out, "latest"), *state_text = NULL;
    size_t len;
    char *state_path = s1c_path_join(latest, "trainer_state.json");
    int rc = s1c_read_file(state_path, 1 << 20, &state_text, &len, err);
    free(state_path);
    if (rc != 0) {
        free(latest);
        return s1c_fail(err, "%s: no checkpoint to resume from (latest/trainer_state.json is missing)", out);
    }
    cJSON *state = cJSON_Parse(state_text);
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(state, "options");
    run r = {0};
    s1c_train_opts_defaults(&r.o);
    if (dist_init(&r.d, err) != 0) rc = -1;
    else rc = opts ? options_from_json(&r.o, opts, err) : s1c_fail(err, "%s/latest/trainer_state.json is malformed", out);
    if (rc == 0) rc = check_overrides(&r.o, ov, err);
    r.o.out = out;
    r.o.max_steps = ov->max_steps > 0 ? ov->max_steps : (int)json_num(state, "max_steps", 0);
    r.o.save_every = ov->save_every;
    r.o.keep = ov->keep;
    r.o.val_every = ov->val_every;
    if (rc == 0) rc = prepare(&r, err);
    if (rc == 0) rc = check_data_unchanged(&r, opts, err);
    if (rc == 0) rc = load_state(&r, latest, err);
    if (rc == 0) {
        r.start_step = (int)json_num(state, "step", 0);
        if (r.start_step >= r.end_step) rc = s1c_fail(err, "%s: the run is complete (%d of %d steps)", out, r.start_step, r.end_step);
    }
    rc = agree(&r, rc, err);
    if (rc == 0) report_plan(&r, cb, ctx);
    if (rc == 0) rc = agree(&r, open_log_rank0(&r, r.start_step, err), err);
    if (rc == 0) rc = train_loop(&r, cb, ctx, err);
    run_free(&r);
    dist_finalize(&r.d);
    cJSON_Delete(state);
    free(state_text);
    free(latest);
    return rc;
}
