/* s1c grade: JSONL in (fields "gold" and "pred"), the same objects out with "equal" added. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "jsonl.h"
#include "s1c/grade.h"

static const char *grade_help =
    "usage: s1c grade [options] < in.jsonl > out.jsonl\n"
    "\n"
    "Reads one JSON object per line with a gold answer and a predicted (already extracted)\n"
    "answer, decides offline and deterministically whether they are mathematically equivalent\n"
    "up to trivial simplification (as s1's gpt-4o-mini judge did), and writes the same object\n"
    "(its bytes unchanged) with \"equal\": true|false added, in input order, line by line.\n"
    "Where the grader cannot decide it also adds \"unsure\": true (\"equal\" is then its best\n"
    "guess: whether the answers agree as normalized strings).\n"
    "\n"
    "  --gold-field NAME   gold answer field (default gold; a string or a number)\n"
    "  --pred-field NAME   predicted answer field (default pred; a string or a number)\n"
    "  --reason            also write \"grade_reason\" (integers, equivalent, not equivalent, ...)\n"
    "  --skip-bad          skip a malformed line with a warning on stderr (default: stop with an\n"
    "                      error naming the line, exit 1)\n"
    "  --judge-endpoint URL --judge-model NAME\n"
    "                      ask an OpenAI-compatible LLM judge (URL like http://host:8000/v1) whether\n"
    "                      the attempt is equivalent up to trivial simplification, for the pairs the\n"
    "                      grader is unsure about, as s1 asked gpt-4o-mini; such lines get the judge's\n"
    "                      \"equal\" and \"judge\": true. A judge failure (after retries) keeps the best\n"
    "                      guess with \"unsure\": true and \"judge_error\", and is counted on stderr\n"
    "  --judge-key KEY     API key (default $OPENAI_API_KEY; none sent when neither is set)\n"
    "  --judge-cache FILE  verdict cache (JSONL, appended and fsync'd): a pair is asked once\n"
    "  --judge-timeout S   seconds per request (default 60)\n"
    "  --judge-retries N   retries on 429/5xx/timeouts/connection errors (default 4; exponential\n"
    "                      backoff with jitter, Retry-After honoured)\n"
    "\n"
    "What counts as equal: 023 = 23 (integers), 0.5 = \\frac12 = 1/2, 1,000 = 1000,\n"
    "x = 5 = 5, \\text{(C)} = C, 10\\text{ cm} = 10, 28\\% = 28, 75^\\circ = 75, -2, 1 = 1, -2\n"
    "(order of solutions ignored), (1, 2) != [1, 2), x \\geq 5 = 5 \\leq x, (x+1)^2 = x^2+2x+1.\n"
    "\n"
    "examples:\n"
    "  echo '{\"gold\":\"\\\\frac{1}{2}\",\"pred\":\"0.5\"}' | s1c grade\n"
    "  s1c extract < outputs.jsonl | s1c grade --pred-field answer --gold-field gold > graded.jsonl\n"
    "  s1c grade --judge-endpoint https://api.openai.com/v1 --judge-model gpt-4o-mini \\\n"
    "            --judge-cache judge.jsonl < pairs.jsonl > graded.jsonl\n";

/* A string field, or a JSON number printed back as text (AIME golds are often numbers). */
static const char *field_text(cJSON *obj, const char *name, char *buf, size_t cap) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsNumber(v)) return s1c_num_text(v->valuedouble, buf, cap);
    return NULL;
}

/* How a line was decided: by the grader alone, by the judge, or the judge failed (jerr). */
typedef struct line_verdict {
    bool equal, unsure, judged;
    const char *jerr; /* judge error message, or NULL */
} line_verdict;

static void write_line(const char *line, size_t n, cJSON *obj, const line_verdict *v, const grade_result *r, bool reason) {
    static const char *const ours[] = {"equal", "unsure", "judge", "judge_error", "grade_reason"};
    bool exists = false;
    for (size_t k = 0; k < sizeof ours / sizeof ours[0]; k++)
        if ((k < 4 || reason) && cJSON_GetObjectItemCaseSensitive(obj, ours[k])) exists = true;
    if (exists) { /* replace: re-serialize */
        for (size_t k = 0; k < sizeof ours / sizeof ours[0]; k++)
            if (k < 4 || reason) cJSON_DeleteItemFromObjectCaseSensitive(obj, ours[k]);
        cJSON_AddBoolToObject(obj, "equal", v->equal);
        if (v->unsure) cJSON_AddBoolToObject(obj, "unsure", 1);
        if (v->judged) cJSON_AddBoolToObject(obj, "judge", 1);
        if (v->jerr) cJSON_AddStringToObject(obj, "judge_error", v->jerr);
        if (reason) cJSON_AddStringToObject(obj, "grade_reason", r->reason);
        char *s = cJSON_PrintUnformatted(obj);
        if (s) { fputs(s, stdout); fputc('\n', stdout); }
        free(s);
        return;
    }
    fputs(jsonl_open_object(line, n, stdout), stdout);
    printf("\"equal\":%s", v->equal ? "true" : "false");
    if (v->unsure) fputs(",\"unsure\":true", stdout);
    if (v->judged) fputs(",\"judge\":true", stdout);
    if (v->jerr) {
        fputs(",\"judge_error\":", stdout);
        json_write_str(stdout, v->jerr, strlen(v->jerr));
    }
    if (reason) printf(",\"grade_reason\":\"%s\"", r->reason);
    fputs("}\n", stdout);
}

int cmd_grade(int argc, char **argv) {
    const char *gold_field = "gold", *pred_field = "pred", *judge_url = NULL, *judge_model = NULL;
    const char *judge_cache = NULL, *judge_key = NULL;
    float judge_timeout = 60;
    int judge_retries = 4;
    bool skip_bad = false, reason = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(grade_help, stdout); return 0; }
        else if (!strcmp(a, "--gold-field")) ok = arg_str(argc, argv, &i, &gold_field);
        else if (!strcmp(a, "--pred-field")) ok = arg_str(argc, argv, &i, &pred_field);
        else if (!strcmp(a, "--judge-endpoint")) ok = arg_str(argc, argv, &i, &judge_url);
        else if (!strcmp(a, "--judge-model")) ok = arg_str(argc, argv, &i, &judge_model);
        else if (!strcmp(a, "--judge-cache")) ok = arg_str(argc, argv, &i, &judge_cache);
        else if (!strcmp(a, "--judge-key")) ok = arg_str(argc, argv, &i, &judge_key);
        else if (!strcmp(a, "--judge-timeout")) ok = arg_float(argc, argv, &i, 0.001, 86400, &judge_timeout);
        else if (!strcmp(a, "--judge-retries")) ok = arg_int(argc, argv, &i, 0, 100, &judge_retries);
        else if (!strcmp(a, "--skip-bad")) skip_bad = true;
        else if (!strcmp(a, "--reason")) reason = true;
        else return cli_error("grade: unknown option '%s' (see s1c grade --help)", a);
        if (!ok) return 1;
    }
    if (!judge_url != !judge_model) return cli_error("grade: --judge-endpoint and --judge-model go together");
    if (!judge_url && (judge_cache || judge_key))
        return cli_error("grade: --judge-cache/--judge-key need --judge-endpoint and --judge-model");

    s1c_err err = {{0}};
    net_client *client = NULL;
    grade_judge_cache *cache = NULL;
    if (judge_url) {
        net_client_opts o = {.base_url = judge_url, .api_key = judge_key, .timeout_s = judge_timeout,
                             .max_retries = judge_retries, .backoff_s = 1.0};
        const char *b = getenv("S1C_NET_BACKOFF"); /* first backoff in seconds (tests shorten it) */
        if (b && atof(b) > 0) o.backoff_s = atof(b);
        if (net_client_new(&client, &o, &err)) return cli_error("grade: %s", err.msg);
        if (grade_judge_cache_open(&cache, judge_cache, &err)) {
            net_client_free(client);
            return cli_error("grade: %s", err.msg);
        }
    }
    jsonl_in in = {0};
    ssize_t got;
    long bad = 0, judged = 0, judge_failed = 0;
    int rc = 0;
    while ((got = jsonl_next(&in)) >= 0) {
        const char *line = in.line;
        long lineno = in.lineno;
        size_t n = (size_t)got;
        char gb[64], pb[64];
        cJSON *obj = cJSON_ParseWithLength(line, n);
        const char *gold = NULL, *pred = NULL, *missing = NULL;
        if (obj && cJSON_IsObject(obj)) {
            gold = field_text(obj, gold_field, gb, sizeof gb);
            pred = field_text(obj, pred_field, pb, sizeof pb);
            missing = !gold ? gold_field : !pred ? pred_field : NULL;
        }
        if (!obj || !cJSON_IsObject(obj) || missing) {
            if (missing) fprintf(stderr, "s1c: grade: stdin line %ld has no string or number field \"%s\"%s\n", lineno, missing, skip_bad ? " (skipped)" : "");
            else fprintf(stderr, "s1c: grade: stdin line %ld is not a JSON object%s\n", lineno, skip_bad ? " (skipped)" : "");
            cJSON_Delete(obj);
            bad++;
            if (skip_bad) continue;
            rc = 1;
            break;
        }
        grade_result r;
        if (grade_equal_ex(gold, strlen(gold), pred, strlen(pred), NULL, &r, &err)) {
            cJSON_Delete(obj);
            rc = cli_error("grade: stdin line %ld: %s", lineno, err.msg);
            break;
        }
        line_verdict v = {.equal = r.equal, .unsure = r.verdict == GRADE_UNSURE};
        if (v.unsure && client) {
            bool eq;
            if (grade_judge(client, judge_model, gold, pred, cache, &eq, &err) == 0) {
                v = (line_verdict){.equal = eq, .judged = true};
                judged++;
            } else {
                v.jerr = err.msg;
                judge_failed++;
            }
        }
        write_line(line, n, obj, &v, &r, reason);
        cJSON_Delete(obj);
    }
    jsonl_close(&in);
    grade_judge_cache_close(cache);
    net_client_free(client);
    if (judge_failed)
        fprintf(stderr, "s1c: grade: warning: the judge failed on %ld of %ld unsure pair(s); they keep \"unsure\": true and a \"judge_error\" (last: %s)\n",
                judge_failed, judge_failed + judged, err.msg);
    if (fflush(stdout) != 0 || ferror(stdout)) return cli_error("grade: cannot write to stdout");
    if (bad && skip_bad) fprintf(stderr, "s1c: grade: %ld malformed line(s) skipped\n", bad);
    return rc;
}
