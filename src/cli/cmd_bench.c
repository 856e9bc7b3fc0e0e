/* s1c bench: the inference workloads on random weights of each type (or on a given model),
 * each as tokens/s and as a fraction of the machine limit that bounds it, with the limits
 * measured in the same run (src/bench/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/limits.h"
#include "bench/modelbench.h"
#include "cli.h"
#include "kernels/kernels.h"
#include "s1c/model.h"

static const char *bench_help =
    "usage: s1c bench [--model PATH] [--json] [options]\n"
    "\n"
    "Measures the machine (memory read bandwidth; f32 FMA, bf16 dot and int8 dot peaks, with the\n"
    "instructions of the kernel family in use) and then,\n"
    "for each weight type, prefill, decode, decode at a long context, batched decode and a\n"
    "training step, each as tok/s, the machine's limit for it (a roofline of FLOPs and bytes per\n"
    "token) and the fraction reached. Without --model, a model of the preset's shape with random\n"
    "weights is written to a temporary folder for each type (removed once the model is open), and\n"
    "the machine is measured again before each type after the first: the limits used from then\n"
    "on are the best of the measurements so far (a busy neighbour on a shared machine pulls one\n"
    "down), printed again as a machine line (\"best_so_far\": true) when one grew.\n"
    "\n"
    "  --model PATH      benchmark this model (HF folder, GGUF, llama2.c .bin) instead\n"
    "  --preset NAME     shape of the random models (default qwen2.5-0.5b; tiny for tests)\n"
    "  --arch A          qwen2 (default) or llama\n"
    "  --types LIST      weight types of the random models (default f32,bf16,q8_0,q4_0; also\n"
    "                    q4_1, q5_0, q5_1: random blocks; q4_k, q5_k, q6_k: random super-blocks,\n"
    "                    q8_0 where rows are not whole 256-blocks, e.g. the 896-wide rows of\n"
    "                    qwen2.5-0.5b; q4_k_m, q4_k_s, q5_k_m, q5_k_s: llama-quantize's mixtures,\n"
    "                    each matrix random blocks of the type s1c convert --type gives it (on\n"
    "                    qwen2.5-0.5b q4_k_m is mostly q5_0, with q4_k/q6_k down and q8_0 v/head))\n"
    "  --repeats N       runs per workload, the median is reported (default 3)\n"
    "  --only LIST       report only these workloads (prefill,decode,decode_ctx8k,batch8,batch32,\n"
    "                    batch8_ctx8k,train_step)\n"
    "  --quick           1 run, a 32-token prompt, 8 decode steps, a 256-token long context\n"
    "                    (seconds on --preset tiny)\n"
    "  --kv-type T       the KV cache's element type: auto (default: bf16 for BF16/F16/quantized\n"
    "                    weights under --bf16-math dot, f16 for them with the avx2 kernels, else\n"
    "                    f32), f32, f16 or bf16\n"
    "  --bf16-math M     BF16 weights: dot (bf16 dot products on bf16-rounded activations; the\n"
    "                    default where the CPU has AVX512_BF16) or exact (widened to f32, f32 FMAs: at\n"
    "                    most half the bf16 dot peak its fractions are of; reported as type bf16_exact)\n"
    "  --json            one JSON object per line: the machine, then one per result with name,\n"
    "                    type, tok_s, limit_tok_s, fraction, bound, ...\n"
    "  --tmp DIR         where the random models are written (default $TMPDIR or /tmp)\n"
    "\n"
    "Workloads: prefill (512-token prompt), decode (128 tokens after it), decode_ctx8k (32 tokens\n"
    "at context 8192), batch8 / batch32 (8 or 32 sequences forked from the prompt, 16 steps),\n"
    "batch8_ctx8k (8 sequences, each at its own context of 8192, 32 steps), train_step.\n"
    "$S1C_THREADS sets the threads, $S1C_KERNELS the kernel family.\n"
    "\n"
    "examples:\n"
    "  s1c bench\n"
    "  s1c bench --types bf16,q8_0 --json\n"
    "  s1c bench --types q4_0,q4_k_m --only prefill,decode --repeats 3\n"
    "  s1c bench --model /models/qwen2.5-0.5b-q8_0.gguf\n";

typedef struct printer {
    bool json;
    bool header_done;
} printer;

static void emit(void *user, const bench_result *r) {
    printer *p = user;
    if (p->json) {
        if (r->skipped)
            printf("{\"name\":\"%s\",\"type\":\"%s\",\"skipped\":true,\"reason\":\"%s\",\"tok_s\":null,\"limit_tok_s\":null,\"fraction\":null}\n",
                   r->name, r->type, r->reason);
        else
            printf("{\"name\":\"%s\",\"type\":\"%s\",\"tok_s\":%.6g,\"limit_tok_s\":%.6g,\"fraction\":%.5f,\"bound\":\"%s\",\"seqs\":%d,"
                   "\"tokens\":%d,\"ctx\":%d,\"seconds\":%.4g,\"flops_per_token\":%.4g,\"bytes_per_token\":%.4g,\"kv\":\"%s\"}\n",
                   r->name, r->type, r->tok_s, r->limit_tok_s, r->fraction, r->bound, r->seqs, r->tokens, r->ctx, r->seconds,
                   r->flops_per_token, r->bytes_per_token, r->kv ? r->kv : "?");
    } else {
        if (!p->header_done) {
            printf("%-8s %-13s %10s %10s %9s  %s\n", "type", "workload", "tok/s", "limit", "of limit", "bound");
            p->header_done = true;
        }
        if (r->skipped) printf("%-8s %-13s %10s %10s %9s  (skipped: %s)\n", r->type, r->name, "-", "-", "-", r->reason);
        else
            printf("%-8s %-13s %10.2f %10.2f %8.1f%%  %s\n", r->type, r->name, r->tok_s, r->limit_tok_s, 100 * r->fraction, r->bound);
    }
    fflush(stdout);
}

/* ", AMX bf16 tiles N GFLOP/s, AMX int8 tiles N GOP/s" for the tiles the kernels use, else "". */
static const char *amx_note(const bench_limits *l) {
    static char s[96];
    int k = 0;
    s[0] = 0;
    if (l->amx_bf16_flops > 0) k = snprintf(s, sizeof s, ", AMX bf16 tiles %.0f GFLOP/s", l->amx_bf16_flops / 1e9);
    if (l->amx_int8_ops > 0) snprintf(s + k, sizeof s - (size_t)k, ", AMX int8 tiles %.0f GOP/s", l->amx_int8_ops / 1e9);
    return s;
}

/* The limits in use; `again`: the best of the measurements so far, after one more that raised
 * some (the results after this line are fractions of these). */
static void print_machine(const bench_limits *l, bool json, bool again) {
    if (json)
        printf("{\"name\":\"machine\",\"threads\":%d,\"kernels\":\"%s\",\"isa\":\"%s\",\"int8_isa\":\"%s\",\"read_gb_s\":%.2f,"
               "\"f32_gflops\":%.1f,\"bf16_gflops\":%.1f,\"int8_gops\":%.1f,\"amx_bf16_gflops\":%.1f,\"amx_int8_gops\":%.1f%s}\n",
               l->threads, kern_name(), l->isa, l->int8_isa, l->read_bytes_s / 1e9, l->f32_flops / 1e9, l->bf16_flops / 1e9,
               l->int8_ops / 1e9, l->amx_bf16_flops / 1e9, l->amx_int8_ops / 1e9, again ? ",\"best_so_far\":true" : "");
    else
        printf("machine%s: %d threads, kernels %s; read %.1f GB/s; f32 FMA %.0f GFLOP/s (%s), bf16 dot %.0f GFLOP/s, int8 %.0f GOP/s (%s)%s\n",
               again ? " (best so far)" : "", l->threads, kern_name(), l->read_bytes_s / 1e9, l->f32_flops / 1e9, l->isa,
               l->bf16_flops / 1e9, l->int8_ops / 1e9, l->int8_isa, amx_note(l));
    fflush(stdout);
}

static int type_of(const char *name) {
    static const struct { const char *n; int t; } types[] = {
        {"f32", S1C_F32},   {"bf16", S1C_BF16}, {"q8_0", S1C_Q8_0}, {"q4_0", S1C_Q4_0},
        {"q4_1", S1C_Q4_1}, {"q5_0", S1C_Q5_0}, {"q5_1", S1C_Q5_1}, {"q4_k", S1C_Q4_K},
        {"q5_k", S1C_Q5_K}, {"q6_k", S1C_Q6_K}, {"q4_k_m", S1C_MIX(S1C_FTYPE_Q4_K_M)}, {"q4_k_s", S1C_MIX(S1C_FTYPE_Q4_K_S)},
        {"q5_k_m", S1C_MIX(S1C_FTYPE_Q5_K_M)}, {"q5_k_s", S1C_MIX(S1C_FTYPE_Q5_K_S)}};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (!strcmp(name, types[i].n)) return types[i].t;
    return -1;
}

/* tmp_dir: a temporary model's folder, removed as soon as the model is open (its files stay
 * mapped), so an interrupted run leaves nothing behind. */
static int bench_one(const char *path, const char *tmp_dir, const bench_limits *lim, const bench_opts *o, int bf16_math, printer *p) {
    s1c_err err = {{0}};
    s1c_model *m;
    int rc = s1c_model_open(&m, path, &err);
    if (tmp_dir) bench_remove_dir(tmp_dir);
    if (rc == 0 && bf16_math >= 0 && (rc = s1c_model_set_bf16_dot(m, bf16_math == 1, &err)) != 0) s1c_model_free(m);
    if (rc != 0) return cli_error("%s", err.msg);
    rc = bench_run_model(m, lim, o, emit, p, &err);
    s1c_model_free(m);
    return rc == 0 ? 0 : cli_error("%s", err.msg);
}

int cmd_bench(int argc, char **argv) {
    const char *model = NULL, *preset = "qwen2.5-0.5b", *arch = "qwen2", *types = "f32,bf16,q8_0,q4_0", *tmp = NULL, *only = NULL;
    bool json = false, quick = false;
    int reps = 0, kv_dtype = S1C_KV_AUTO, bf16_math = -1; /* -1: the model's default */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(bench_help, stdout); return 0; }
        else if (!strcmp(a, "--model")) ok = arg_str(argc, argv, &i, &model);
        else if (!strcmp(a, "--preset")) ok = arg_str(argc, argv, &i, &preset);
        else if (!strcmp(a, "--arch")) ok = arg_str(argc, argv, &i, &arch);
        else if (!strcmp(a, "--types")) ok = arg_str(argc, argv, &i, &types);
        else if (!strcmp(a, "--tmp")) ok = arg_str(argc, argv, &i, &tmp);
        else if (!strcmp(a, "--repeats")) ok = arg_int(argc, argv, &i, 1, 1000, &reps);
        else if (!strcmp(a, "--only")) ok = arg_str(argc, argv, &i, &only);
        else if (!strcmp(a, "--kv-type")) ok = arg_kv_type(argc, argv, &i, &kv_dtype);
        else if (!strcmp(a, "--bf16-math")) {
            bool dot;
            if ((ok = arg_bf16_math(argc, argv, &i, &dot))) bf16_math = dot;
        }
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--quick")) quick = true;
        else return cli_error("bench: unknown option '%s' (see s1c bench --help)", a);
        if (!ok) return 1;
    }
    bench_opts o = quick ? bench_opts_quick() : bench_opts_default();
    if (reps) o.reps = reps;
    o.kv_dtype = kv_dtype;
    if (only) {
        char list[256];
        if (strlen(only) >= sizeof list) return cli_error("bench: --only '%s' is too long", only);
        strcpy(list, only);
        for (char *t = strtok(list, ","); t; t = strtok(NULL, ","))
            if (!bench_workload_known(t)) {
                char names[160];
                bench_workload_names(names, sizeof names);
                return cli_error("bench: --only: unknown workload '%s' (%s)", t, names);
            }
        o.only = only;
    }
    s1c_err err = {{0}};
    s1c_config c;
    int dts[16], n_types = 0;
    const char *names[16];
    char list[256]; /* names[] point into it */
    if (!model) {
        if (s1c_config_preset(&c, arch, preset, &err) != 0) return cli_error("bench: %s", err.msg);
        if (strlen(types) >= sizeof list) return cli_error("bench: --types '%s' is too long", types);
        strcpy(list, types);
        for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
            if ((dts[n_types] = type_of(t)) < 0)
                return cli_error("bench: --types: unknown type '%s' (f32, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, q4_k_m, "
                                 "q4_k_s, q5_k_m, q5_k_s)", t);
            names[n_types] = t;
            if (++n_types == 16) break;
        }
        if (!n_types) return cli_error("bench: --types lists no type");
        if (o.ctx + o.ctx_decode > c.max_seq_len) o.ctx = (c.max_seq_len - o.ctx_decode) / 16 * 16;
        if (!tmp) tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    }
    bench_limits lim;
    /* the documented method reads 1 GiB; --quick 256 MiB */
    size_t bw_bytes = (quick ? (size_t)256 : (size_t)1024) << 20;
    int bw_reps = quick ? 3 : 5;
    bench_measure_limits(&lim, s1c_pool_global(), bw_bytes, bw_reps);
    print_machine(&lim, json, false);
    printer p = {json, false};
    if (model) return bench_one(model, NULL, &lim, &o, bf16_math, &p);
    for (int i = 0; i < n_types; i++) {
        char *dir, *path;
        fprintf(stderr, "s1c bench: writing a %s-shaped %s model with random weights under %s\n", preset, names[i], tmp);
        int qd = c.n_heads * c.head_dim;
        if ((dts[i] == S1C_Q4_K || dts[i] == S1C_Q5_K || dts[i] == S1C_Q6_K) && (c.dim % 256 || c.hidden_dim % 256 || qd % 256))
            fprintf(stderr, "s1c bench: note: %s has rows of %d/%d/%d values, not all whole 256-blocks: those matrices are "
                            "q8_0 (or f32), as llama.cpp falls back; the type reported is the one of most weights\n",
                    preset, c.dim, qd, c.hidden_dim);
        if (bench_make_model(&c, dts[i], tmp, &dir, &path, &err) != 0) return cli_error("bench: %s", err.msg);
        if (i > 0) {
            /* measured again before each type: on a shared machine one measurement can fall in a
             * busy stretch (read 46 GB/s at the start of a run whose decode then read 62) */
            bench_limits now;
            bench_measure_limits(&now, s1c_pool_global(), bw_bytes, bw_reps);
            if (bench_limits_keep_best(&lim, &now)) print_machine(&lim, json, true);
        }
        int rc = bench_one(path, dir, &lim, &o, bf16_math, &p);
        free(dir);
        free(path);
        if (rc != 0) return rc;
    }
    return 0;
}
