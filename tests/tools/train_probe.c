/* train_probe: the trainer's maths on token-level inputs, for the PyTorch reference tests
 * (tests/ref/train_ref.py implements the same interface independently).
 *
 *   train_probe grads --model DIR --batch B.json --out G.safetensors
 *   train_probe steps --model DIR --batches S.json --lr X --total N --out W.safetensors
 *               --log L.jsonl [--clip 1.0] [--wd 1e-4] [--warmup-ratio 0.05]
 *   --bf16: the trainer's BF16 compute mode (products of bf16-rounded inputs)
 *
 * B.json: {"rows": [{"tokens": [...], "labels": [...], "seg": [...]}, ...]} with HF labels
 * (-100 ignored, position t predicts labels[t+1]); S.json: {"steps": [B, B, ...]}. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/train.h"

typedef struct probe_row {
    int n;
    int32_t *token, *target, *seg;
    float *weight;
} probe_row;

static int fail(const char *msg) {
    fprintf(stderr, "train_probe: %s\n", msg);
    return 1;
}

static int32_t *int_array(const cJSON *a, int n) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return NULL;
    int32_t *v = malloc((size_t)n * sizeof *v);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) v[i++] = (int32_t)e->valuedouble;
    return v;
}

/* Parses one step's rows; targets from labels; weights over the whole step. */
static int parse_rows(const cJSON *step, probe_row **out, int *n_out) {
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(step, "rows");
    if (!cJSON_IsArray(rows)) return -1;
    int n = cJSON_GetArraySize(rows), k = 0, samples = 0;
    probe_row *r = calloc((size_t)n, sizeof *r);
    const cJSON *e;
    cJSON_ArrayForEach(e, rows) {
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(e, "tokens");
        probe_row *pr = &r[k++];
        pr->n = cJSON_GetArraySize(tok);
        pr->token = int_array(tok, pr->n);
        int32_t *label = int_array(cJSON_GetObjectItemCaseSensitive(e, "labels"), pr->n);
        const cJSON *seg = cJSON_GetObjectItemCaseSensitive(e, "seg");
        pr->seg = seg ? int_array(seg, pr->n) : NULL;
        if (!pr->token || !label || (seg && !pr->seg)) return -1;
        pr->target = malloc((size_t)pr->n * sizeof *pr->target);
        pr->weight = malloc((size_t)pr->n * sizeof *pr->weight);
        s1c_targets_from_labels(pr->target, label, pr->seg, pr->n);
        samples += s1c_row_samples(pr->target, pr->seg, pr->n);
        free(label);
    }
    for (int i = 0; i < n; i++) s1c_loss_weights(r[i].weight, r[i].target, r[i].seg, r[i].n, samples);
    *out = r;
    *n_out = n;
    return 0;
}

static void free_rows(probe_row *r, int n) {
    for (int i = 0; i < n; i++) {
        free(r[i].token);
        free(r[i].target);
        free(r[i].seg);
        free(r[i].weight);
    }
    free(r);
}

/* Zeroes grad and accumulates one step's gradients; returns the step's loss. */
static int step_grads(s1c_gradws *ws, const s1c_params *p, float *grad, const cJSON *step, double *loss, s1c_err *err) {
    probe_row *rows;
    int n;
    if (parse_rows(step, &rows, &n) != 0) return s1c_fail(err, "malformed rows");
    memset(grad, 0, p->n * sizeof *grad);
    *loss = 0;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        s1c_grad_row row = {rows[i].n, rows[i].token, rows[i].target, rows[i].weight, rows[i].seg};
        double l;
        int nt;
        rc = s1c_grad_row_run(ws, p, grad, &row, &l, &nt, err);
        *loss += l;
    }
    free_rows(rows, n);
    return rc;
}

/* Gradients under HF names plus a tensor "loss" [1], as train_ref.py writes them. */
static int write_grads(const s1c_params *p, const float *grad, double loss, const char *path, s1c_err *err) {
    s1c_tensor *ts = calloc((size_t)p->n_tensors + 1, sizeof *ts);
    for (int i = 0; i < p->n_tensors; i++) {
        const s1c_param_info *t = &p->info[i];
        ts[i] = (s1c_tensor){.name = t->name, .dtype = S1C_F32, .ndim = t->ndim, .data = grad + t->offset,
                             .nbytes = t->n * sizeof(float)};
        memcpy(ts[i].shape, t->shape, sizeof t->shape);
    }
    float l = (float)loss;
    ts[p->n_tensors] = (s1c_tensor){.name = "loss", .dtype = S1C_F32, .ndim = 1, .shape = {1}, .data = &l, .nbytes = 4};
    int rc = st_write(path, ts, p->n_tensors + 1, err);
    free(ts);
    return rc;
}

static const char *opt(int argc, char **argv, const char *name, const char *def) {
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return def;
}

static cJSON *read_json(const char *path) {
    char *text;
    size_t len;
    s1c_err err;
    if (s1c_read_file(path, (size_t)1 << 30, &text, &len, &err) != 0) return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

int main(int argc, char **argv) {
    if (argc < 2) return fail("usage: train_probe grads|steps --model DIR ...");
    const char *model_dir = opt(argc, argv, "--model", NULL), *out = opt(argc, argv, "--out", NULL);
    bool grads = strcmp(argv[1], "grads") == 0;
    const char *in = opt(argc, argv, grads ? "--batch" : "--batches", NULL);
    if (!model_dir || !out || !in) return fail("missing --model, --out or the batch file");
    s1c_err err;
    s1c_model *m;
    if (s1c_model_open(&m, model_dir, &err) != 0) return fail(err.msg);
    s1c_params p;
    if (s1c_params_from_model(&p, m, &err) != 0) return fail(err.msg);
    s1c_model_free(m);
    cJSON *j = read_json(in);
    if (!j) return fail("cannot read the batch file");
    s1c_gradws *ws;
    float *grad = calloc(p.n, sizeof *grad);
    uint64_t keep = (uint64_t)1 << 40; /* --recompute: gradient checkpointing (recompute each layer) */
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--recompute")) keep = 0;
    if (s1c_gradws_new(&ws, &p.cfg, 4096, 64, keep, &err) != 0) return fail(err.msg);
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--bf16")) s1c_gradws_set_bf16(ws, true);
    int rc = 0;
    if (grads) {
        double loss;
        if (step_grads(ws, &p, grad, j, &loss, &err) != 0) return fail(err.msg);
        if (write_grads(&p, grad, loss, out, &err) != 0) return fail(err.msg);
        printf("{\"loss\": %.17g}\n", loss);
    } else {
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(j, "steps");
        s1c_adamw o;
        s1c_adamw_defaults(&o, atoi(opt(argc, argv, "--total", "1")));
        o.lr_peak = atof(opt(argc, argv, "--lr", "1e-5"));
        o.clip = atof(opt(argc, argv, "--clip", "1.0"));
        o.weight_decay = atof(opt(argc, argv, "--wd", "1e-4"));
        o.warmup_steps = (int)ceil(atof(opt(argc, argv, "--warmup-ratio", "0.05")) * o.total_steps);
        float *mo = calloc(p.n, sizeof *mo), *ve = calloc(p.n, sizeof *ve);
        FILE *log = fopen(opt(argc, argv, "--log", "/dev/null"), "w");
        int k = 0;
        const cJSON *st;
        cJSON_ArrayForEach(st, steps) {
            double loss;
            if (step_grads(ws, &p, grad, st, &loss, &err) != 0) return fail(err.msg);
            double lr = s1c_lr_at(&o, k);
            double norm = s1c_adamw_step(&o, &p, grad, mo, ve, k);
            fprintf(log, "{\"step\": %d, \"loss\": %.17g, \"lr\": %.17g, \"grad_norm\": %.17g}\n", k + 1, loss, lr, norm);
            k++;
        }
        fclose(log);
        if (s1c_params_write(&p, p.data, out, S1C_F32, &err) != 0) rc = fail(err.msg);
        free(mo);
        free(ve);
    }
    cJSON_Delete(j);
    s1c_gradws_free(ws);
    free(grad);
    s1c_params_free(&p);
    return rc;
}
