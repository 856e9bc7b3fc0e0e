/* s1c train: s1's supervised fine-tuning (SPEC.md §4) with a progress line and a JSONL log. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "s1c/train.h"

static const char *train_help =
    "usage: s1c train --model DIR --data FILE.jsonl --out DIR [options]\n"
    "       s1c train --resume DIR [--steps N] [--save-every N]\n"
    "\n"
    "Full fine-tuning with s1's recipe: loss on the assistant turn only, each sequence's mean token loss\n"
    "weighted equally, AdamW (0.9, 0.95, eps 1e-8, weight decay 1e-4 except biases), clipping at norm 1,\n"
    "linear warm-up over 5% of the steps then cosine to 0. OUT always holds the newest complete checkpoint\n"
    "as a Hugging Face directory (config.json, model.safetensors, tokenizer files) and log.jsonl.\n"
    "\n"
    "data:\n"
    "  --data FILE          JSONL records: question, thinking_trajectories (list or string), attempt\n"
    "  --layout NAME        s1k (default), s1k-1.1 (deepseek_thinking_trajectory/deepseek_attempt),\n"
    "                       s1k-1.1-gemini (gemini_thinking_trajectory/gemini_attempt)\n"
    "  --question-field F   --trace-field F   --attempt-field F   (override the layout's names)\n"
    "  --system TEXT        the system prompt (default: Qwen2.5's)\n"
    "  --block-size N       longest sample in tokens (default 32768); longer ones are skipped and listed\n"
    "  --truncate           cut long samples to the block size instead of skipping them\n"
    "  --pack               pack several samples per row (attention kept within each sample)\n"
    "  --skip-bad           skip malformed lines (listed) instead of stopping at the first\n"
    "  --val-data FILE      validation set; --val-every N steps (default: at each checkpoint)\n"
    "\n"
    "schedule (s1's defaults):\n"
    "  --epochs N (5)   --batch N (16 sequences per step)   --lr X (1e-5)   --warmup-ratio X (0.05)\n"
    "  --weight-decay X (1e-4)   --clip X (1.0)   --seed S (0)   --steps N (stop after N steps)\n"
    "\n"
    "checkpoints:\n"
    "  --out DIR            run directory      --save-every N   steps between checkpoints (default: end only)\n"
    "  --keep N             checkpoints kept (default 2)        --dtype f32|bf16  (default: the base model's)\n"
    "  --compute f32|bf16   matrix products in f32 (default) or bf16 with f32 accumulation (s1's mixed\n"
    "                       precision; master weights, gradients and optimizer stay f32)\n"
    "  --resume DIR         continue the run in DIR from its newest checkpoint to its original target\n"
    "  --head-chunk N       tokens per LM-head chunk (memory: N x vocab floats; default 256)\n"
    "  --keep-activations SIZE  keep every layer's activations (no recomputation, a third fewer FLOPs) when\n"
    "                       they fit SIZE (default 2GB); 0: gradient checkpointing per layer always\n"
    "  --shard-size SIZE    model files above SIZE (5GB, 500MB, bytes) are sharded with an index,\n"
    "                       as transformers does (default 5GB)\n"
    "\n"
    "example:\n"
    "  s1c train --model qwen2.5-0.5b-instruct --data s1k.jsonl --out run1 --save-every 50\n";

typedef struct progress_ctx {
    bool tty;
    int last_len;
} progress_ctx;

static void on_progress(const s1c_train_progress *pr, const char *message, void *vctx) {
    progress_ctx *c = vctx;
    if (message) {
        if (c->tty && c->last_len) fputc('\n', stderr);
        c->last_len = 0;
        fprintf(stderr, "train: %s\n", message);
        return;
    }
    char eta[32], val[48] = "", bar[32], line[320];
    s1c_fmt_duration(eta, sizeof eta, pr->eta_s);
    if (!isnan(pr->val_loss)) snprintf(val, sizeof val, " val %.4f", pr->val_loss);
    s1c_progress_bar(bar, 24, pr->total_steps ? (double)pr->step / pr->total_steps : 1.0);
    snprintf(line, sizeof line, "%s step %d/%d  loss %.4f%s  lr %.3g  grad %.3g  %.0f tok/s  ETA %s", bar, pr->step,
             pr->total_steps, pr->loss, val, pr->lr, pr->grad_norm, pr->tok_s, eta);
    s1c_progress_print(stderr, c->tty, line);
    c->last_len = 1;
    if (c->tty && pr->step == pr->total_steps) fputc('\n', stderr);
}

typedef struct train_args {
    s1c_train_opts o;
    const char *resume, *layout, *dtype, *compute;
    const char *qf, *tf, *af;
} train_args;

static bool parse_float_opt(int argc, char **argv, int *i, double lo, double hi, double *out) {
    float f;
    if (!arg_float(argc, argv, i, lo, hi, &f)) return false;
    *out = atof(argv[*i]); /* keep the double the user wrote (1e-5 is not a float) */
    return true;
}

/* "5GB", "500MB", "64KB" (powers of 1000, as transformers' max_shard_size) or plain bytes. */
static bool parse_size(const char *v, uint64_t *out) {
    char *end;
    double x = strtod(v, &end);
    double mult = !strcasecmp(end, "") || !strcasecmp(end, "B") ? 1 : !strcasecmp(end, "KB") ? 1e3 : !strcasecmp(end, "MB") ? 1e6
                  : !strcasecmp(end, "GB") ? 1e9 : -1;
    if (end == v || mult < 0 || !(x * mult >= 1) || x * mult > 1e15) return false;
    *out = (uint64_t)(x * mult);
    return true;
}

/* 1: parsed, 0: --help printed, -1: error printed. */
static int parse_args(int argc, char **argv, train_args *a) {
    s1c_train_opts *o = &a->o;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        bool ok = true;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) { fputs(train_help, stdout); return 0; }
        else if (!strcmp(s, "--model")) ok = arg_str(argc, argv, &i, &o->model);
        else if (!strcmp(s, "--data")) ok = arg_str(argc, argv, &i, &o->data);
        else if (!strcmp(s, "--val-data")) ok = arg_str(argc, argv, &i, &o->val_data);
        else if (!strcmp(s, "--out")) ok = arg_str(argc, argv, &i, &o->out);
        else if (!strcmp(s, "--resume")) ok = arg_str(argc, argv, &i, &a->resume);
        else if (!strcmp(s, "--layout")) ok = arg_str(argc, argv, &i, &a->layout);
        else if (!strcmp(s, "--question-field")) ok = arg_str(argc, argv, &i, &a->qf);
        else if (!strcmp(s, "--trace-field")) ok = arg_str(argc, argv, &i, &a->tf);
        else if (!strcmp(s, "--attempt-field")) ok = arg_str(argc, argv, &i, &a->af);
        else if (!strcmp(s, "--system")) ok = arg_str(argc, argv, &i, &o->fields.system);
        else if (!strcmp(s, "--dtype")) ok = arg_str(argc, argv, &i, &a->dtype);
        else if (!strcmp(s, "--block-size")) ok = arg_int(argc, argv, &i, 16, 1 << 20, &o->block_size);
        else if (!strcmp(s, "--epochs")) ok = arg_int(argc, argv, &i, 1, 100000, &o->epochs);
        else if (!strcmp(s, "--batch")) ok = arg_int(argc, argv, &i, 1, 1 << 20, &o->batch);
        else if (!strcmp(s, "--steps")) ok = arg_int(argc, argv, &i, 1, 1 << 30, &o->max_steps);
        else if (!strcmp(s, "--save-every")) ok = arg_int(argc, argv, &i, 1, 1 << 30, &o->save_every);
        else if (!strcmp(s, "--keep")) ok = arg_int(argc, argv, &i, 1, 1 << 20, &o->keep);
        else if (!strcmp(s, "--val-every")) ok = arg_int(argc, argv, &i, 1, 1 << 30, &o->val_every);
        else if (!strcmp(s, "--head-chunk")) ok = arg_int(argc, argv, &i, 1, 1 << 16, &o->head_chunk);
        else if (!strcmp(s, "--lr")) ok = parse_float_opt(argc, argv, &i, 0, 1, &o->lr);
        else if (!strcmp(s, "--warmup-ratio")) ok = parse_float_opt(argc, argv, &i, 0, 1, &o->warmup_ratio);
        else if (!strcmp(s, "--weight-decay")) ok = parse_float_opt(argc, argv, &i, 0, 10, &o->weight_decay);
        else if (!strcmp(s, "--clip")) ok = parse_float_opt(argc, argv, &i, 0, 1e9, &o->clip);
        else if (!strcmp(s, "--seed")) ok = arg_u64(argc, argv, &i, &o->seed);
        else if (!strcmp(s, "--pack")) o->pack = true;
        else if (!strcmp(s, "--compute")) ok = arg_str(argc, argv, &i, &a->compute);
        else if (!strcmp(s, "--keep-activations")) {
            const char *v;
            ok = arg_str(argc, argv, &i, &v) && (!strcmp(v, "0") ? (o->keep_bytes = 0, true) : parse_size(v, &o->keep_bytes));
            if (!ok) { cli_error("train: --keep-activations takes a size such as 2GB or 0"); return -1; }
        }
        else if (!strcmp(s, "--shard-size")) {
            const char *v;
            ok = arg_str(argc, argv, &i, &v) && parse_size(v, &o->shard_bytes);
            if (!ok) { cli_error("train: --shard-size takes a size such as 5GB, 500MB or 200000"); return -1; }
        }
        else if (!strcmp(s, "--truncate")) o->truncate = true;
        else if (!strcmp(s, "--skip-bad")) o->skip_bad = true;
        else { cli_error("train: unknown option '%s' (see s1c train --help)", s); return -1; }
        if (!ok) return -1;
    }
    return 1;
}

static int apply_fields(train_args *a) {
    s1c_err err;
    const char *system = a->o.fields.system;
    if (a->layout && s1c_sft_fields_preset(&a->o.fields, a->layout, &err) != 0) return cli_error("train: %s", err.msg);
    a->o.fields.system = system;
    if (a->qf) a->o.fields.question = a->qf;
    if (a->tf) a->o.fields.trace = a->tf;
    if (a->af) a->o.fields.attempt = a->af;
    if (a->compute) {
        if (!strcmp(a->compute, "bf16")) a->o.bf16_compute = true;
        else if (strcmp(a->compute, "f32")) return cli_error("train: --compute must be f32 or bf16");
    }
    if (a->dtype) {
        if (!strcmp(a->dtype, "f32")) a->o.out_dtype = S1C_F32;
        else if (!strcmp(a->dtype, "bf16")) a->o.out_dtype = S1C_BF16;
        else return cli_error("train: --dtype must be f32 or bf16");
    }
    return 0;
}

int cmd_train(int argc, char **argv) {
    train_args a = {0};
    s1c_train_opts_defaults(&a.o);
    a.o.epochs = a.o.batch = a.o.block_size = 0; /* 0 = not given (resume compares only what was given) */
    a.o.lr = 0;
    int p = parse_args(argc, argv, &a);
    if (p == 0) {
        printf("\ndata parallel: mpirun -np N s1c train ... splits each step's rows over N ranks, all-reduces the\n"
               "gradients and shards the optimizer state; rank 0 writes. This build: MPI %s.\n",
               s1c_train_has_mpi() ? "enabled" : "not available (install libopenmpi-dev and rebuild)");
        return 0;
    }
    if (p < 0) return 2;
    if (apply_fields(&a) != 0) return 2;
    progress_ctx ctx = {.tty = isatty(2)};
    s1c_err err = {{0}};
    int rc;
    if (a.resume) {
        rc = s1c_train_resume(a.resume, &a.o, on_progress, &ctx, &err);
    } else {
        if (!a.o.model || !a.o.data || !a.o.out) return cli_error("train: --model, --data and --out are required");
        s1c_train_opts defaults;
        s1c_train_opts_defaults(&defaults);
        if (!a.o.epochs) a.o.epochs = defaults.epochs;
        if (!a.o.batch) a.o.batch = defaults.batch;
        if (!a.o.block_size) a.o.block_size = defaults.block_size;
        if (a.o.lr == 0) a.o.lr = defaults.lr;
        rc = s1c_train_run(&a.o, on_progress, &ctx, &err);
    }
    if (rc != 0) {
        if (ctx.tty && ctx.last_len) fputc('\n', stderr);
        return cli_error("train: %s", err.msg);
    }
    return 0;
}
