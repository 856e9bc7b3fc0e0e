/* s1c curate: SPEC.md §1 over a question pool, stage by stage (src/curate/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "s1c/curate.h"
#include "generate.h"
#include "s1c/eval.h"
#include "s1c/model.h"

static const char *curate_help =
    "usage: s1c curate --pool POOL.jsonl --out DIR [--k 1000] [--seed S] [options]\n"
    "\n"
    "Selects s1K-style training questions from a pool (JSONL, one question per line: id,\n"
    "question, solution, source, optional domain, thinking_trajectories (list or string),\n"
    "attempt, any other fields, which are kept) in five stages, as s1 did (SPEC.md §1):\n"
    "  1 decontam    drop questions sharing a lowercased word 8-gram with an evaluation set\n"
    "                (AIME24, AIME25, MATH500 shipped with s1c; GPQA etc. with --decontam-file)\n"
    "  2 quality     drop failed or empty teacher traces, [asy] figures (kept for AIME),\n"
    "                missing images, 'p{i}.' residue, markdown bold with digits, exact and near\n"
    "                duplicate questions\n"
    "  3 difficulty  drop questions a reference model solves (graded by s1c's grader, an LLM\n"
    "                judge for unsure pairs); precomputed ref_correct fields are honoured;\n"
    "                records the teacher-trace length\n"
    "  4 domain      classify questions without a domain into the Mathematics Subject\n"
    "                Classification (61 codes, data/msc/) with an LLM\n"
    "  5 diversity   until K are chosen: a domain uniformly at random, then in it the rank-r\n"
    "                longest trace with probability proportional to 2^-r (seeded)\n"
    "The source decides whether [asy] figures stay (AIME's do); s1K's source_type is read when\n"
    "there is no source field.\n"
    "Bad pool lines (not JSON, no question, invalid UTF-8, repeated id) are dropped at stage\n"
    "'load' with their line number, never fatal.\n"
    "\n"
    "DIR gets N-STAGE.kept.jsonl and N-STAGE.dropped.jsonl (with drop_stage, drop_kind,\n"
    "drop_reason) per stage, stats.jsonl (one line per stage), s1k.jsonl (the selection, in\n"
    "pick order, with s1K's field names: ready for s1c train), summary.json (counts per stage\n"
    "and reason, domain histogram, trace lengths) and curate.svg. API answers are journaled in\n"
    "DIR (difficulty.journal.jsonl, domain.journal.jsonl, judge.cache.jsonl): a rerun asks\n"
    "nothing twice (failed calls are asked again; delete a journal to ask everything again).\n"
    "\n"
    "  --pool FILE            the pool (required)\n"
    "  --out DIR              output directory (required; created)\n"
    "  --k N                  how many to select (default 1000)\n"
    "  --seed S               sampler seed (default 0)\n"
    "  --id-field, --question-field, --solution-field, --source-field, --domain-field,\n"
    "  --trajectories-field, --attempt-field, --year-field NAME   field names (defaults as above; year)\n"
    "  --no-decontam          skip decontamination\n"
    "  --decontam-bench LIST  built-in sets to decontaminate against (default aime24,aime25,math500)\n"
    "  --decontam-file F[:FIELD]  also a JSONL file (its FIELD, default the first of question,\n"
    "                         problem, Question, Problem, prompt); repeatable\n"
    "  --max-year Y           also drop questions whose year is later than Y (s1's pool kept AIME\n"
    "                         1983-2021: the evaluation sets are AIME 2022-2025)\n"
    "  --ngram N              n-gram length (default 8); evaluation texts shorter than that match\n"
    "                         a question holding all their words in a row (3+ words) or equal to it\n"
    "  --near-dup J           near duplicates: word 5-gram Jaccard >= J (default 0.8; 0 = off)\n"
    "  --no-difficulty        skip the difficulty filter (trace lengths are still measured)\n"
    "  --ref-endpoint URL     OpenAI-compatible endpoint for the --ref-model flags after it\n"
    "  --ref-model NAME       a reference model (repeatable; a question any of them solves is dropped)\n"
    "  --ref-local MODEL      a local reference model through s1c's engine (GGUF, HF directory or\n"
    "                         llama2.c .bin; greedy, batched, its chat template when it has one)\n"
    "  --ref-local-tokenizer PATH  its tokenizer when the model file has none (llama2.c)\n"
    "  --ref-max-tokens N     answer limit for reference models (default: the server's / the context)\n"
    "  --judge-endpoint URL --judge-model NAME   LLM judge for pairs the grader is unsure about\n"
    "  --min-trace-tokens N   drop teacher traces shorter than N tokens (default 0)\n"
    "  --domain-endpoint URL --domain-model NAME  the MSC classifier for questions without a domain\n"
    "  --tokenizer PATH       count trace tokens with this tokenizer (HF dir, tokenizer.json, GGUF);\n"
    "                         s1 used Qwen2.5's. Default: an estimate (one token per letter run,\n"
    "                         digit and symbol), recorded in summary.json\n"
    "  --api-key KEY          API key for all endpoints (default $OPENAI_API_KEY)\n"
    "  --concurrency N        concurrent API requests (default 8)\n"
    "  --rps R                at most R requests started per second (default: no limit)\n"
    "  --timeout S            seconds per request (default 300)\n"
    "  --retries N            retries on 429/5xx/timeouts (default 4; exponential backoff)\n"
    "  --quiet                no progress lines\n"
    "\n"
    "examples:\n"
    "  s1c curate --pool pool.jsonl --out cur --k 1000 --no-difficulty\n"
    "  s1c curate --pool distilled.jsonl --out cur --tokenizer Qwen2.5-32B-Instruct \\\n"
    "      --ref-endpoint http://localhost:8000/v1 --ref-model Qwen2.5-7B-Instruct --ref-model Qwen2.5-32B-Instruct \\\n"
    "      --domain-endpoint https://api.openai.com/v1 --domain-model gpt-4o-mini\n";

typedef struct dfile { const char *path, *field; char *buf; } dfile;

/* Parses "F[:FIELD]"; the field follows the last ':' when no file of the full name exists. */
static void split_dfile(const char *arg, dfile *d) {
    d->buf = strdup(arg);
    d->path = d->buf;
    d->field = NULL;
    char *c = d->buf ? strrchr(d->buf, ':') : NULL;
    if (c && !s1c_file_exists(arg)) {
        *c = 0;
        d->field = c + 1;
    }
}

static int build_decontam(cur_decontam **d, const char *benches, const dfile *files, int n_files, int ngram, eval_bench *keep, int *n_keep) {
    s1c_err err = {{0}};
    if (cur_decontam_new(d, ngram, &err)) return cli_error("curate: %s", err.msg);
    char *list = strdup(benches);
    if (!list) return cli_error("curate: out of memory");
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!*t) continue;
        eval_bench *b = &keep[*n_keep];
        if (*n_keep >= 8 || eval_bench_builtin(b, t, &err)) {
            free(list);
            return cli_error("curate: --decontam-bench: %s", *n_keep >= 8 ? "at most 8 sets" : err.msg);
        }
        (*n_keep)++;
        for (int i = 0; i < b->n; i++)
            if (cur_decontam_add(*d, b->name, b->p[i].question, &err)) { free(list); return cli_error("curate: %s", err.msg); }
    }
    free(list);
    for (int i = 0; i < n_files; i++)
        if (cur_decontam_add_file(*d, files[i].path, files[i].field, &err)) return cli_error("curate: --decontam-file: %s", err.msg);
    return 0;
}

int cmd_curate(int argc, char **argv) {
    const char *pool = NULL, *out = NULL, *benches = "aime24,aime25,math500", *tok_path = NULL, *cur_ep = NULL;
    const char *local = NULL, *local_tok = NULL;
    cur_fields f;
    cur_fields_default(&f);
    cur_opts o = {.k = 1000, .near_dup = 0.8, .concurrency = 8, .timeout_s = 300, .retries = 4, .backoff_s = 1};
    cur_ref refs[16];
    dfile files[16];
    int n_refs = 0, n_files = 0, ngram = 8, k = 1000, conc = 8, min_trace = 0, ref_max = 0;
    uint64_t seed = 0;
    float near = 0.8f, rps = 0, timeout = 300;
    bool no_decontam = false;
    int rc = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(curate_help, stdout); return 0; }
        else if (!strcmp(a, "--pool")) ok = arg_str(argc, argv, &i, &pool);
        else if (!strcmp(a, "--out")) ok = arg_str(argc, argv, &i, &out);
        else if (!strcmp(a, "--k")) ok = arg_int(argc, argv, &i, 1, 100000000, &k);
        else if (!strcmp(a, "--seed")) ok = arg_u64(argc, argv, &i, &seed);
        else if (!strcmp(a, "--id-field")) ok = arg_str(argc, argv, &i, &f.id);
        else if (!strcmp(a, "--question-field")) ok = arg_str(argc, argv, &i, &f.question);
        else if (!strcmp(a, "--solution-field")) ok = arg_str(argc, argv, &i, &f.solution);
        else if (!strcmp(a, "--source-field")) ok = arg_str(argc, argv, &i, &f.source);
        else if (!strcmp(a, "--domain-field")) ok = arg_str(argc, argv, &i, &f.domain);
        else if (!strcmp(a, "--trajectories-field")) ok = arg_str(argc, argv, &i, &f.trajectories);
        else if (!strcmp(a, "--attempt-field")) ok = arg_str(argc, argv, &i, &f.attempt);
        else if (!strcmp(a, "--year-field")) ok = arg_str(argc, argv, &i, &f.year);
        else if (!strcmp(a, "--max-year")) ok = arg_int(argc, argv, &i, 1, 100000, &o.max_year);
        else if (!strcmp(a, "--no-decontam")) no_decontam = true;
        else if (!strcmp(a, "--decontam-bench")) ok = arg_str(argc, argv, &i, &benches);
        else if (!strcmp(a, "--decontam-file")) {
            const char *v;
            ok = arg_str(argc, argv, &i, &v);
            if (ok && n_files >= 16) return cli_error("curate: at most 16 --decontam-file");
            if (ok) split_dfile(v, &files[n_files++]);
        }
        else if (!strcmp(a, "--ngram")) ok = arg_int(argc, argv, &i, 1, 64, &ngram);
        else if (!strcmp(a, "--near-dup")) ok = arg_float(argc, argv, &i, 0, 1, &near);
        else if (!strcmp(a, "--no-difficulty")) o.no_difficulty = true;
        else if (!strcmp(a, "--ref-endpoint")) ok = arg_str(argc, argv, &i, &cur_ep);
        else if (!strcmp(a, "--ref-model")) {
            const char *m;
            ok = arg_str(argc, argv, &i, &m);
            if (ok && !cur_ep) return cli_error("curate: --ref-model %s needs a --ref-endpoint before it", m);
            if (ok && n_refs >= 16) return cli_error("curate: at most 16 --ref-model");
            if (ok) refs[n_refs++] = (cur_ref){cur_ep, m};
        }
        else if (!strcmp(a, "--ref-local")) ok = arg_str(argc, argv, &i, &local);
        else if (!strcmp(a, "--ref-local-tokenizer")) ok = arg_str(argc, argv, &i, &local_tok);
        else if (!strcmp(a, "--ref-max-tokens")) ok = arg_int(argc, argv, &i, 1, 10000000, &ref_max);
        else if (!strcmp(a, "--judge-endpoint")) ok = arg_str(argc, argv, &i, &o.judge_endpoint);
        else if (!strcmp(a, "--judge-model")) ok = arg_str(argc, argv, &i, &o.judge_model);
        else if (!strcmp(a, "--min-trace-tokens")) ok = arg_int(argc, argv, &i, 0, 100000000, &min_trace);
        else if (!strcmp(a, "--domain-endpoint")) ok = arg_str(argc, argv, &i, &o.domain_endpoint);
        else if (!strcmp(a, "--domain-model")) ok = arg_str(argc, argv, &i, &o.domain_model);
        else if (!strcmp(a, "--tokenizer")) ok = arg_str(argc, argv, &i, &tok_path);
        else if (!strcmp(a, "--api-key")) ok = arg_str(argc, argv, &i, &o.api_key);
        else if (!strcmp(a, "--concurrency")) ok = arg_int(argc, argv, &i, 1, 1024, &conc);
        else if (!strcmp(a, "--rps")) ok = arg_float(argc, argv, &i, 0, 1e6, &rps);
        else if (!strcmp(a, "--timeout")) ok = arg_float(argc, argv, &i, 0.001, 86400, &timeout);
        else if (!strcmp(a, "--retries")) ok = arg_int(argc, argv, &i, 0, 100, &o.retries);
        else if (!strcmp(a, "--quiet")) o.quiet = true;
        else { rc = cli_error("curate: unknown option '%s' (see s1c curate --help)", a); goto done; }
        if (!ok) goto done;
    }
    if (!pool || !out) { rc = cli_error("curate: --pool and --out are required (see s1c curate --help)"); goto done; }
    if (!o.judge_endpoint != !o.judge_model) { rc = cli_error("curate: --judge-endpoint and --judge-model go together"); goto done; }
    if (!o.domain_endpoint != !o.domain_model) { rc = cli_error("curate: --domain-endpoint and --domain-model go together"); goto done; }
    if (cur_ep && !n_refs) { rc = cli_error("curate: --ref-endpoint needs at least one --ref-model after it"); goto done; }
    if (local_tok && !local) { rc = cli_error("curate: --ref-local-tokenizer needs --ref-local"); goto done; }
    if (o.no_difficulty && (n_refs || local || o.judge_endpoint)) { rc = cli_error("curate: --no-difficulty with reference models or a judge"); goto done; }
    const char *urls[18] = {o.judge_endpoint, o.domain_endpoint};
    for (int i = 0; i < n_refs; i++) urls[2 + i] = refs[i].endpoint;
    for (int i = 0; i < 2 + n_refs; i++)
        if (urls[i] && strncmp(urls[i], "http://", 7) && strncmp(urls[i], "https://", 8)) {
            rc = cli_error("curate: endpoint '%s' is not an http:// or https:// URL", urls[i]);
            goto done;
        }
    const char *b = getenv("S1C_NET_BACKOFF"); /* first backoff in seconds (tests shorten it) */
    if (b && atof(b) > 0) o.backoff_s = atof(b);
    o.out_dir = out;
    o.k = (size_t)k;
    o.seed = seed;
    o.near_dup = near;
    o.refs = refs;
    o.n_refs = n_refs;
    o.ref_max_tokens = ref_max;
    o.min_trace_tokens = min_trace;
    o.concurrency = conc;
    o.rps = rps;
    o.timeout_s = timeout;

    s1c_err err = {{0}};
    s1c_tokenizer *tok = NULL, *ltok = NULL;
    s1c_model *lm = NULL;
    char lname[300];
    cur_decontam *dc = NULL;
    eval_bench kept[8];
    int n_kept = 0;
    cur_pool p = {0};
    if (tok_path) {
        if (s1c_tok_load(&tok, tok_path, 0, &err)) { rc = cli_error("curate: --tokenizer: %s", err.msg); goto done; }
        if (!s1c_tok_can_encode(tok)) { rc = cli_error("curate: --tokenizer %s cannot encode text (no merges)", tok_path); goto free_all; }
        o.tok = tok;
    }
    if (local) {
        gen_opts go;
        gen_opts_init(&go);
        go.model = local;
        go.tokenizer = local_tok;
        if (s1c_model_open(&lm, local, &err) || gen_load_tokenizer(&go, lm, &ltok, &err)) { rc = cli_error("curate: --ref-local: %s", err.msg); goto free_all; }
        if (!ltok || !s1c_tok_can_encode(ltok)) { rc = cli_error("curate: --ref-local %s: no tokenizer that can encode text (--ref-local-tokenizer)", local); goto free_all; }
        const char *base = strrchr(local, '/');
        snprintf(lname, sizeof lname, "local:%s", base && base[1] ? base + 1 : local);
        o.ref_local = lm;
        o.ref_local_tok = ltok;
        o.ref_local_name = lname;
    }
    if (!no_decontam && build_decontam(&dc, benches, files, n_files, ngram, kept, &n_kept)) goto free_all;
    o.decontam = dc;
    if (cur_pool_load(&p, pool, &f, &err)) { rc = cli_error("curate: %s", err.msg); goto free_all; }
    if (!o.quiet) fprintf(stderr, "[curate] %s: %zu record(s)%s%s\n", pool, p.n, dc ? ", decontaminating against " : "", dc ? benches : "");
    rc = cur_run(&p, &o, &err) ? cli_error("curate: %s", err.msg) : 0;
free_all:
    cur_pool_free(&p);
    cur_decontam_free(dc);
    for (int i = 0; i < n_kept; i++) eval_bench_free(&kept[i]);
    s1c_tok_free(tok);
    s1c_tok_free(ltok);
    s1c_model_free(lm);
done:
    for (int i = 0; i < n_files; i++) free(files[i].buf);
    return rc;
}
