/* Model workloads for `s1c bench` (modelbench.h): timed through s1c_forward on a paged KV
 * cache, set against the machine's limits by a roofline over each forward call. */
#include "modelbench.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/model_internal.h"
#include "s1c/train.h"

enum { BS = 16, MAX_BATCH = 32 };

bench_opts bench_opts_default(void) {
    return (bench_opts){.prompt = 512, .decode = 128, .ctx = 8192, .ctx_decode = 32, .batch_steps = 16, .reps = 3, .kv_dtype = S1C_KV_AUTO};
}
bench_opts bench_opts_quick(void) {
    return (bench_opts){.prompt = 32, .decode = 8, .ctx = 256, .ctx_decode = 4, .batch_steps = 4, .reps = 1, .kv_dtype = S1C_KV_AUTO};
}

/* ------------------------------------------------------------------ costs */

/* The tensor as stored in the file (a quantized GGUF matrix is widened at load; its file
 * bytes are what a native kernel would stream). */
static const s1c_tensor *stored(const s1c_model *m, const s1c_tensor *t) {
    if (m->format == S1C_FMT_GGUF && t->name) {
        const s1c_tensor *f = gguf_find_tensor(&m->gguf, t->name);
        if (f) return f;
    }
    return t;
}

/* The type holding most of the layers' weights (a Q4_K_M file mixes Q4_K with Q6_K, and rows
 * that are not whole super-blocks fall back to another type). */
int bench_model_dtype(const s1c_model *m) {
    double count[S1C_DTYPE_COUNT] = {0};
    int best = stored(m, m->layers[0].w_up)->dtype;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const layer_weights *w = &m->layers[l];
        const s1c_tensor *mats[] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down};
        for (int i = 0; i < 7; i++) {
            const s1c_tensor *t = stored(m, mats[i]);
            if (t->dtype < 0 || t->dtype >= S1C_DTYPE_COUNT) continue;
            count[t->dtype] += (double)s1c_tensor_nelem(t);
            if (count[t->dtype] > count[best]) best = t->dtype;
        }
    }
    return best;
}

/* llama.cpp's names of the mixtures (general.file_type) a random or real GGUF may declare. */
static const char *mixture_name(uint64_t ftype) {
    switch (ftype) {
    case S1C_FTYPE_Q4_K_S: return "q4_k_s";
    case S1C_FTYPE_Q4_K_M: return "q4_k_m";
    case S1C_FTYPE_Q5_K_S: return "q5_k_s";
    case S1C_FTYPE_Q5_K_M: return "q5_k_m";
    case S1C_FTYPE_Q6_K: return "q6_k";
    default: return NULL;
    }
}

const char *bench_model_type_name(const s1c_model *m) {
    uint64_t ft;
    const char *mix = m->format == S1C_FMT_GGUF && gguf_get_u64(&m->gguf, "general.file_type", &ft, NULL) == 1 ? mixture_name(ft) : NULL;
    /* BF16 widened exactly is its own line: the same weights, other arithmetic (bf16 is the
     * type's own, bf16 dot products) */
    if (!mix && bench_model_dtype(m) == S1C_BF16 && !s1c_model_bf16_dot(m)) return "bf16_exact";
    const char *name = mix ? mix : s1c_dtype_name(bench_model_dtype(m));
    return name ? name : "?";
}

typedef struct costs {
    double layer_params, head_params; /* matrix elements: all layers; the output head */
    double layer_bytes, head_bytes;   /* the same, stored bytes */
    double attn_flops_per_pos;        /* per row and context position, all layers */
    double kv_bytes_per_pos;          /* K and V of one position, all layers, in the cache's type */
    double peak, bw;                  /* the limits that apply */
    double peak_wide;                 /* the peak of calls of wide_rows rows or more (0: none) */
    int wide_rows;                    /* (Q4_0/Q8_0 batches on AMX int8 tiles: kern_packed_amx_int8_rows) */
} costs;

static costs model_costs(const s1c_model *m, const bench_limits *lim, int kv_dtype) {
    const s1c_config *c = &m->cfg;
    costs k = {0};
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights *w = &m->layers[l];
        const s1c_tensor *mats[] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down};
        for (int i = 0; i < 7; i++) {
            k.layer_params += (double)s1c_tensor_nelem(mats[i]);
            k.layer_bytes += (double)stored(m, mats[i])->nbytes;
        }
    }
    k.head_params = (double)s1c_tensor_nelem(m->output);
    k.head_bytes = (double)stored(m, m->output)->nbytes;
    k.attn_flops_per_pos = 4.0 * c->n_heads * c->head_dim * c->n_layers;
    k.kv_bytes_per_pos = (double)s1c_kv_block_bytes(c, 1, kv_dtype);
    int dt = bench_model_dtype(m);
    bool quant = !s1c_dtype_is_float(dt);
    /* a BF16 model's peak: of the instruction its matmuls use (AMX tiles, vdpbf16ps, or f32 FMA
     * on widened weights) */
    bool dot = dt == S1C_BF16 && s1c_model_bf16_dot(m);
    k.peak = dot && lim->amx_bf16_flops > 0 ? lim->amx_bf16_flops
             : dot && lim->bf16_flops > 0   ? lim->bf16_flops
             : quant && lim->int8_ops > 0   ? lim->int8_ops
                                            : lim->f32_flops;
    /* Q4_0/Q8_0 prompts on AMX int8 tiles: those calls against the tile's peak */
    k.wide_rows = lim->amx_int8_ops > 0 ? kern_packed_amx_int8_rows(dt) : 0;
    k.peak_wide = k.wide_rows > 0 ? lim->amx_int8_ops : 0;
    k.bw = lim->read_bytes_s;
    return k;
}

/* FLOPs and bytes of the forward calls of one run. */
typedef struct tally {
    double rows, flops, bytes;
    double wide_flops;               /* of calls against costs.peak_wide */
    double rows_before, flops_before; /* the totals at the last tally_call */
} tally;

static void tally_row(tally *t, const costs *k, int pos, bool logits) {
    t->rows += 1;
    t->flops += 2 * k->layer_params + k->attn_flops_per_pos * (pos + 1) + (logits ? 2 * k->head_params : 0);
    t->bytes += k->kv_bytes_per_pos * (pos + 1);
}

/* One forward call, of the rows tallied since the last. */
static void tally_call(tally *t, const costs *k, bool logits) {
    t->bytes += k->layer_bytes + (logits ? k->head_bytes : 0);
    if (k->wide_rows > 0 && t->rows - t->rows_before >= k->wide_rows) t->wide_flops += t->flops - t->flops_before;
    t->rows_before = t->rows;
    t->flops_before = t->flops;
}

static void finish(bench_result *r, const costs *k, const tally *t) {
    double compute_s = (t->flops - t->wide_flops) / k->peak + (t->wide_flops > 0 ? t->wide_flops / k->peak_wide : 0);
    double by_compute = t->rows / compute_s, by_bw = k->bw * t->rows / t->bytes;
    r->limit_tok_s = by_compute < by_bw ? by_compute : by_bw;
    r->bound = by_compute < by_bw ? "compute" : "bandwidth";
    r->fraction = r->limit_tok_s > 0 ? r->tok_s / r->limit_tok_s : 0;
    r->flops_per_token = t->flops / t->rows;
    r->bytes_per_token = t->bytes / t->rows;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ------------------------------------------------------------------ sequences */

typedef struct seqtab {
    int32_t *blocks;
    int n;
} seqtab;

/* A block table for positions [0, positions): the first `shared` positions (a multiple of BS)
 * hold the prompt's blocks, the prompt's own (refcounted, never written) and past its end copies
 * of them, over and over: a long context is read from memory as a real one is, not from the
 * caches (about 200 MB per token at 8K on the 0.5B shape with an f32 cache). The rest are fresh. */
static int seq_make(s1c_kv *kv, const int32_t *prompt_blocks, int n_prompt_blocks, int shared, int positions, seqtab *s, s1c_err *err) {
    s->n = (positions + BS - 1) / BS;
    s->blocks = malloc((size_t)s->n * sizeof(int32_t));
    if (!s->blocks) return s1c_fail(err, "bench: out of memory");
    for (int b = 0; b < s->n; b++) {
        if (b < shared / BS && b < n_prompt_blocks) {
            s->blocks[b] = prompt_blocks[b];
            s1c_kv_ref(kv, s->blocks[b]);
        } else if ((s->blocks[b] = s1c_kv_alloc(kv)) >= 0) {
            if (b < shared / BS) s1c_kv_copy(kv, s->blocks[b], prompt_blocks[b % n_prompt_blocks], BS);
        } else {
            for (int i = 0; i < b; i++) s1c_kv_unref(kv, s->blocks[i]);
            free(s->blocks);
            return s1c_fail(err, "bench: the KV cache ran out of blocks");
        }
    }
    return 0;
}

static void seq_free(s1c_kv *kv, seqtab *s) {
    for (int b = 0; b < s->n; b++) s1c_kv_unref(kv, s->blocks[b]);
    free(s->blocks);
    s->blocks = NULL;
}

/* Greedy next tokens of n rows of logits, the rows split over the pool (a sampler's work,
 * serial it would be ~2% of a 32-row step on the 0.5B shape). */
typedef struct argmax_job {
    const float *logits;
    int32_t *tok;
    int vocab;
} argmax_job;

static void argmax_task(void *ctx, int task, int n_tasks) {
    const argmax_job *j = ctx;
    (void)n_tasks;
    j->tok[task] = kern_argmax(j->logits + (size_t)task * j->vocab, j->vocab);
}

static void argmax_rows(int32_t *tok, const float *logits, int n, int vocab) {
    argmax_job j = {logits, tok, vocab};
    s1c_pool_run(s1c_pool_global(), n, argmax_task, &j);
}

/* ------------------------------------------------------------------ the runs */

typedef struct runner {
    const s1c_model *m;
    const bench_opts *o;
    const bench_limits *lim;
    int kv_dtype; /* o->kv_dtype, auto resolved */
    costs k;
    s1c_fwd *fwd;
    s1c_kv *kv;
    int32_t *prompt_blocks, *prompt_tokens, first_token;
    float *logits;
    /* one batch's rows */
    int32_t tok[MAX_BATCH], pos[MAX_BATCH], seq[MAX_BATCH];
    uint8_t want[MAX_BATCH];
    s1c_seq_blocks sb[MAX_BATCH];
} runner;

static double prefill_once(runner *R, tally *t, s1c_err *err) {
    int P = R->o->prompt;
    int32_t *pos = malloc((size_t)P * sizeof(int32_t)), *seq = calloc((size_t)P, sizeof(int32_t));
    uint8_t *want = calloc((size_t)P, 1);
    if (!pos || !seq || !want) { free(pos); free(seq); free(want); s1c_fail(err, "bench: out of memory"); return -1; }
    for (int i = 0; i < P; i++) { pos[i] = i; tally_row(t, &R->k, i, i == P - 1); }
    want[P - 1] = 1;
    tally_call(t, &R->k, true);
    s1c_seq_blocks sb = {R->prompt_blocks, P / BS};
    s1c_batch b = {P, R->prompt_tokens, pos, seq, want, 1, &sb};
    double t0 = s1c_now();
    int rc = s1c_forward(R->fwd, R->kv, &b, R->logits, err);
    double sec = s1c_now() - t0;
    argmax_rows(&R->first_token, R->logits, 1, R->m->cfg.vocab_size);
    free(pos); free(seq); free(want);
    return rc == 0 ? sec : -1;
}

/* n_seqs sequences forked from the prompt (positions [0, shared) are prompt blocks), each
 * decoding `steps` greedy tokens from position `start`, all in one forward per step. */
static double decode_once(runner *R, int n_seqs, int shared, int start, int steps, tally *t, s1c_err *err) {
    seqtab tabs[MAX_BATCH];
    int V = R->m->cfg.vocab_size, made = 0, rc = 0;
    for (; made < n_seqs && rc == 0; made++) {
        rc = seq_make(R->kv, R->prompt_blocks, R->o->prompt / BS, shared, start + steps, &tabs[made], err);
        if (rc != 0) break;
        R->sb[made] = (s1c_seq_blocks){tabs[made].blocks, tabs[made].n};
        R->tok[made] = (R->first_token + made) % V;
        R->seq[made] = made;
        R->want[made] = 1;
    }
    double sec = -1;
    if (rc == 0) {
        double t0 = s1c_now();
        for (int s = 0; s < steps && rc == 0; s++) {
            for (int i = 0; i < n_seqs; i++) { R->pos[i] = start + s; tally_row(t, &R->k, start + s, true); }
            tally_call(t, &R->k, true);
            s1c_batch b = {n_seqs, R->tok, R->pos, R->seq, R->want, n_seqs, R->sb};
            rc = s1c_forward(R->fwd, R->kv, &b, R->logits, err);
            argmax_rows(R->tok, R->logits, n_seqs, V);
        }
        sec = s1c_now() - t0;
    }
    for (int i = 0; i < made; i++) seq_free(R->kv, &tabs[i]);
    return rc == 0 ? sec : -1;
}

typedef enum { W_PREFILL, W_DECODE, W_CTX, W_BATCH8, W_BATCH32, W_BATCH8_CTX, W_TRAIN } workload;

static int run_workload(runner *R, workload w, bench_result *r, s1c_err *err) {
    const bench_opts *o = R->o;
    double *times = malloc((size_t)o->reps * sizeof(double));
    if (!times) return s1c_fail(err, "bench: out of memory");
    tally t = {0};
    for (int rep = 0; rep < o->reps; rep++) {
        tally one = {0};
        double sec;
        switch (w) {
        case W_PREFILL: sec = prefill_once(R, &one, err); r->seqs = 1; r->tokens = o->prompt; r->ctx = o->prompt; break;
        case W_DECODE:
            sec = decode_once(R, 1, o->prompt, o->prompt, o->decode, &one, err);
            r->seqs = 1; r->tokens = o->decode; r->ctx = o->prompt + o->decode;
            break;
        case W_CTX:
            sec = decode_once(R, 1, o->ctx, o->ctx, o->ctx_decode, &one, err);
            r->seqs = 1; r->tokens = o->ctx_decode; r->ctx = o->ctx + o->ctx_decode;
            break;
        case W_BATCH8_CTX: /* s1's parallel sampling well into its thinking: every context its own */
            sec = decode_once(R, 8, o->ctx, o->ctx, o->ctx_decode, &one, err);
            r->seqs = 8; r->tokens = 8 * o->ctx_decode; r->ctx = o->ctx + o->ctx_decode;
            break;
        default: {
            int n = w == W_BATCH8 ? 8 : 32;
            sec = decode_once(R, n, o->prompt, o->prompt, o->batch_steps, &one, err);
            r->seqs = n; r->tokens = n * o->batch_steps; r->ctx = o->prompt + o->batch_steps;
        }
        }
        if (sec < 0) { free(times); return -1; }
        times[rep] = sec;
        t = one; /* every run does the same work */
    }
    r->seconds = median(times, o->reps);
    r->tok_s = r->tokens / r->seconds;
    finish(r, &R->k, &t);
    free(times);
    return 0;
}

/* One optimizer step of s1c train on a row of `prompt` tokens (every position predicting the
 * next): forward, backward (with per-layer recomputation) and AdamW on f32 master weights.
 * FLOPs per token = 3 x the forward's (forward + both backward products), against the f32
 * FMA peak; the recomputed forward is a cost, not counted as work. The trainer computes in f32
 * whatever the file's type, so only the first type measured runs it. */
static int bench_train_step(runner *R, bench_result *r, s1c_err *err) {
    static bool done;
    if (done) {
        r->skipped = true;
        r->reason = "the trainer keeps f32 master weights whatever the file's type: see the first train_step";
        return 0;
    }
    done = true;
    int T = R->o->prompt;
    s1c_params p;
    s1c_gradws *ws = NULL;
    if (s1c_params_from_model(&p, R->m, err) != 0) return -1;
    float *g = calloc(p.n, sizeof *g), *mo = calloc(p.n, sizeof *mo), *v = calloc(p.n, sizeof *v), *w = malloc((size_t)T * sizeof *w);
    int32_t *tgt = malloc((size_t)T * sizeof *tgt);
    int rc = g && mo && v && w && tgt ? s1c_gradws_new(&ws, &p.cfg, T, 256, (uint64_t)2 << 30, err) : s1c_fail(err, "bench: out of memory for training");
    double ts[16];
    int reps = R->o->reps < 16 ? R->o->reps : 16;
    for (int t = 0; rc == 0 && t < T; t++) {
        tgt[t] = t + 1 < T ? R->prompt_tokens[t + 1] : -1;
        w[t] = 1.0f / (float)(T - 1);
    }
    s1c_adamw o;
    s1c_adamw_defaults(&o, 1000);
    s1c_grad_row row = {T, R->prompt_tokens, tgt, w, NULL};
    for (int k = 0; rc == 0 && k <= reps; k++) { /* k == 0 warms up */
        double t0 = s1c_now(), loss;
        int nt;
        memset(g, 0, p.n * sizeof *g);
        rc = s1c_grad_row_run(ws, &p, g, &row, &loss, &nt, err);
        if (rc == 0) s1c_adamw_step(&o, &p, g, mo, v, k + 10);
        if (k > 0) ts[k - 1] = s1c_now() - t0;
    }
    if (rc == 0) {
        tally t = {0};
        for (int i = 0; i < T; i++) tally_row(&t, &R->k, i, true);
        r->seqs = 1;
        r->tokens = T;
        r->ctx = T;
        r->seconds = median(ts, reps);
        r->tok_s = T / r->seconds;
        r->flops_per_token = 3 * t.flops / t.rows;
        r->limit_tok_s = R->lim->f32_flops / r->flops_per_token;
        r->bound = "compute";
        r->fraction = r->tok_s / r->limit_tok_s;
        r->bytes_per_token = 0;
    }
    s1c_gradws_free(ws);
    s1c_params_free(&p);
    free(g), free(mo), free(v), free(w), free(tgt);
    return rc;
}

static int runner_init(runner *R, const s1c_model *m, const bench_opts *o, s1c_err *err) {
    const s1c_config *c = &m->cfg;
    int P = o->prompt;
    if (P < BS || P % BS || o->ctx % BS || o->ctx < P || o->decode < 1 || o->ctx_decode < 1 || o->batch_steps < 1 || o->reps < 1)
        return s1c_fail(err, "bench: the prompt and context must be positive multiples of %d (context >= prompt), counts >= 1", BS);
    int max_ctx = o->ctx + o->ctx_decode;
    if (P + o->decode > max_ctx) max_ctx = P + o->decode;
    if (P + o->batch_steps > max_ctx) max_ctx = P + o->batch_steps;
    /* blocks past the prompt's: the most any workload holds at once (batch8_ctx8k: 8 long contexts) */
    int fresh = (o->decode + BS - 1) / BS + 1, f2 = 8 * ((o->ctx - P + o->ctx_decode + BS - 1) / BS + 1), f3 = MAX_BATCH * ((o->batch_steps + BS - 1) / BS + 1);
    if (f2 > fresh) fresh = f2;
    if (f3 > fresh) fresh = f3;
    if (s1c_fwd_new(&R->fwd, m, P > MAX_BATCH ? P : MAX_BATCH, max_ctx + 1, err) != 0) return -1;
    if (s1c_kv_new(&R->kv, c, BS, P / BS + fresh + 2, R->kv_dtype, err) != 0) return -1;
    R->prompt_blocks = malloc((size_t)(P / BS) * sizeof(int32_t));
    R->prompt_tokens = malloc((size_t)P * sizeof(int32_t));
    R->logits = malloc((size_t)MAX_BATCH * (size_t)c->vocab_size * sizeof(float));
    if (!R->prompt_blocks || !R->prompt_tokens || !R->logits) return s1c_fail(err, "bench: out of memory");
    for (int b = 0; b < P / BS; b++) R->prompt_blocks[b] = s1c_kv_alloc(R->kv);
    s1c_rng rng;
    s1c_rng_seed(&rng, 7);
    for (int i = 0; i < P; i++) R->prompt_tokens[i] = (int32_t)(s1c_rng_u64(&rng) % (uint64_t)c->vocab_size);
    return 0;
}

static void runner_free(runner *R) {
    s1c_fwd_free(R->fwd);
    s1c_kv_free(R->kv);
    free(R->prompt_blocks);
    free(R->prompt_tokens);
    free(R->logits);
}

/* Every workload, in the order they run and are reported. */
static const struct {
    workload w;
    const char *name;
} workloads[] = {{W_PREFILL, "prefill"}, {W_DECODE, "decode"},   {W_CTX, "decode_ctx8k"},        {W_BATCH8, "batch8"},
                 {W_BATCH32, "batch32"}, {W_BATCH8_CTX, "batch8_ctx8k"}, {W_TRAIN, "train_step"}};
enum { N_WORKLOADS = sizeof workloads / sizeof *workloads };

bool bench_workload_known(const char *name) {
    for (int i = 0; i < N_WORKLOADS; i++)
        if (!strcmp(name, workloads[i].name)) return true;
    return false;
}

void bench_workload_names(char *buf, size_t cap) {
    size_t len = 0;
    if (cap > 0) buf[0] = '\0';
    for (int i = 0; i < N_WORKLOADS && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", workloads[i].name);
}

/* Whether o->only (comma-separated) names the workload. */
static bool selected(const bench_opts *o, const char *name) {
    if (!o->only) return true;
    size_t n = strlen(name);
    for (const char *p = o->only; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

int bench_run_model(const s1c_model *m, const bench_limits *lim, const bench_opts *o, bench_emit_fn emit, void *user, s1c_err *err) {
    int kv = o->kv_dtype == S1C_KV_AUTO ? s1c_kv_auto_dtype(m) : o->kv_dtype;
    runner R = {.m = m, .o = o, .lim = lim, .kv_dtype = kv, .k = model_costs(m, lim, kv)};
    int rc = runner_init(&R, m, o, err);
    const char *type = bench_model_type_name(m), *kv_name = s1c_dtype_name(kv);
    /* the prompt's K/V (for the decodes) comes from a prefill: it runs first (once, untimed,
     * when it is not asked for) */
    for (int i = 0; rc == 0 && i < N_WORKLOADS; i++) {
        bench_result r = {.name = workloads[i].name, .type = type, .kv = kv_name};
        if (!selected(o, workloads[i].name)) {
            tally t = {0};
            if (workloads[i].w == W_PREFILL && prefill_once(&R, &t, err) < 0) rc = -1;
            continue;
        }
        rc = workloads[i].w == W_TRAIN ? bench_train_step(&R, &r, err) : run_workload(&R, workloads[i].w, &r, err);
        if (rc == 0) emit(user, &r);
    }
    runner_free(&R);
    return rc;
}

/* ------------------------------------------------------------------ temporary models */

void bench_remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *p = s1c_path_join(dir, e->d_name);
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) bench_remove_dir(p);
            else unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* Random blocks of a quantized type (any bytes are a valid block once the f16 scales are
 * finite), scaled so weights are about N(0, 1/cols) in size, or random F32/F16 values. */
static void random_blocks(s1c_rng *r, uint8_t *dst, int dtype, int64_t rows, int64_t cols) {
    if (dtype == S1C_F32 || dtype == S1C_F16) {
        for (int64_t i = 0; i < rows * cols; i++) {
            float v = s1c_rng_normal(r) / sqrtf((float)cols);
            if (dtype == S1C_F32) ((float *)dst)[i] = v;
            else ((uint16_t *)dst)[i] = s1c_f32_to_f16(v);
        }
        return;
    }
    size_t ts = (size_t)s1c_dtype_type_size(dtype), nb = (size_t)(rows * (cols / s1c_dtype_block_size(dtype)));
    float amp = 3.0f / sqrtf((float)cols);
    for (size_t i = 0; i < nb * ts; i += 8) {
        uint64_t v = s1c_rng_u64(r);
        memcpy(dst + i, &v, nb * ts - i < 8 ? nb * ts - i : 8);
    }
    for (size_t b = 0; b < nb; b++) {
        uint8_t *blk = dst + b * ts;
        uint16_t d, dmin;
        switch (dtype) {
        case S1C_Q6_K: d = s1c_f32_to_f16(amp / (128 * 32)); memcpy(blk + 208, &d, 2); break;
        case S1C_Q8_0: d = s1c_f32_to_f16(amp / 127); memcpy(blk, &d, 2); break;
        case S1C_Q4_0:
        case S1C_Q5_0: d = s1c_f32_to_f16(amp / (dtype == S1C_Q4_0 ? 8 : 16)); memcpy(blk, &d, 2); break;
        case S1C_Q4_1:
        case S1C_Q5_1: /* y = d q + m, q unsigned: m = -amp centres them */
            d = s1c_f32_to_f16(2 * amp / (dtype == S1C_Q4_1 ? 15 : 31)), dmin = s1c_f32_to_f16(-amp);
            memcpy(blk, &d, 2), memcpy(blk + 2, &dmin, 2);
            break;
        default:
            d = s1c_f32_to_f16(amp / (63 * 15)), dmin = s1c_f32_to_f16(amp / (63 * 30));
            memcpy(blk, &d, 2), memcpy(blk + 2, &dmin, 2);
            break;
        }
    }
}

/* The type of a random model's matrix (role, layer) with rows of cols values: a mixture's as
 * `s1c convert` (llama-quantize) chooses it; a K-quant where rows are whole super-blocks, else
 * Q8_0 (as llama.cpp's quantizer falls back to another type); a 32-block type where rows are
 * whole blocks; F32 otherwise. */
static int random_matrix_type(const s1c_config *c, int dtype, int role, int layer, int64_t cols) {
    if (dtype >= S1C_MIX_BASE) return model_matrix_type(c, dtype, role, layer, cols);
    if (cols % 32 != 0) return S1C_F32;
    if (s1c_dtype_block_size(dtype) == 256) return cols % 256 == 0 ? dtype : S1C_Q8_0;
    return dtype;
}

/* A GGUF of shape c with random matrices of a quantized dtype or mixture (no tokenizer: the bench
 * feeds ids); a mixture's general.file_type names it. */
static int write_random_quant(const s1c_config *c, int dtype, const char *path, s1c_err *err) {
    const char *arch = c->arch == S1C_ARCH_QWEN2 ? "qwen2" : "llama";
    gguf_writer *w = gguf_writer_new();
    int n = hf_tensor_count(c), n_bufs = 0, rc = 0;
    void **bufs = calloc((size_t)n, sizeof *bufs);
    if (!w || !bufs) {
        gguf_writer_free(w);
        free(bufs);
        return s1c_fail(err, "bench: out of memory");
    }
    char name[128];
    gguf_w_str(w, "general.architecture", arch);
    if (dtype >= S1C_MIX_BASE) gguf_w_u32(w, "general.file_type", (uint32_t)(dtype - S1C_MIX_BASE));
    gguf_w_hparams(w, c);
    s1c_rng r;
    s1c_rng_seed(&r, 1);
    /* the model's own tensor list: matrices random, norms ones, biases zeros */
    for (int i = 0; i < n && rc == 0; i++) {
        int role, layer, ndim;
        int64_t shape[2];
        hf_tensor_at(c, i, &role, &layer);
        tensor_shape(c, role, shape, &ndim);
        tensor_name_gguf(name, sizeof name, role, layer);
        int64_t rows = shape[0], cols = ndim == 2 ? shape[1] : 0;
        int dt = cols == 0 ? S1C_F32 : random_matrix_type(c, dtype, role, layer, cols);
        uint64_t bytes;
        if (s1c_dtype_nbytes(dt, (uint64_t)(rows * (cols ? cols : 1)), &bytes) != 0 || !(bufs[n_bufs] = malloc(bytes))) {
            rc = s1c_fail(err, "bench: out of memory for tensor '%s'", name);
            break;
        }
        bool bias = role == T_Q_BIAS || role == T_K_BIAS || role == T_V_BIAS;
        if (cols) random_blocks(&r, bufs[n_bufs], dt, rows, cols);
        else
            for (int64_t k = 0; k < rows; k++) ((float *)bufs[n_bufs])[k] = bias ? 0.0f : 1.0f;
        gguf_w_tensor(w, name, dt, ndim, shape, bufs[n_bufs++]);
    }
    if (rc == 0) rc = gguf_writer_write(w, path, err);
    gguf_writer_free(w);
    for (int i = 0; i < n_bufs; i++) free(bufs[i]);
    free(bufs);
    return rc;
}

int bench_make_model(const s1c_config *c, int dtype, const char *tmp_root, char **dir, char **path, s1c_err *err) {
    *dir = *path = NULL;
    bool mix = dtype > S1C_MIX_BASE && mixture_name((uint64_t)(dtype - S1C_MIX_BASE));
    bool random = mix || dtype == S1C_Q4_K || dtype == S1C_Q5_K || dtype == S1C_Q6_K || dtype == S1C_Q4_1 || dtype == S1C_Q5_0 || dtype == S1C_Q5_1;
    if (dtype != S1C_F32 && dtype != S1C_BF16 && dtype != S1C_Q8_0 && dtype != S1C_Q4_0 && !random)
        return s1c_fail(err, "bench: cannot build a model of type %s", !mix && s1c_dtype_name(dtype) ? s1c_dtype_name(dtype) : "?");
    char *tmpl = s1c_path_join(tmp_root, "s1c-bench-XXXXXX");
    if (!mkdtemp(tmpl)) {
        int e = errno;
        s1c_fail(err, "%s: cannot make a temporary folder: %s", tmp_root, strerror(e));
        free(tmpl);
        return -1;
    }
    *dir = tmpl;
    int rc;
    if (random) {
        *path = s1c_path_join(tmpl, "model.gguf");
        rc = write_random_quant(c, dtype, *path, err);
    } else if (dtype == S1C_F32 || dtype == S1C_BF16) {
        rc = model_init_hf(c, 1, dtype, tmpl, true, err);
        if (rc == 0 && !(*path = strdup(tmpl))) rc = s1c_fail(err, "bench: out of memory");
    } else {
        /* quantized: a bf16 HF folder, converted to GGUF as `s1c convert` does */
        char *hf = s1c_path_join(tmpl, "hf");
        *path = s1c_path_join(tmpl, "model.gguf");
        rc = model_init_hf(c, 1, S1C_BF16, hf, true, err);
        if (rc == 0) rc = s1c_model_convert(hf, *path, dtype, err);
        bench_remove_dir(hf);
        free(hf);
    }
    if (rc != 0) {
        bench_remove_dir(tmpl);
        free(*dir);
        free(*path);
        *dir = *path = NULL;
    }
    return rc;
}
