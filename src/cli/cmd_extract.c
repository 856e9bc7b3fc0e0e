/* s1c extract: JSONL in (field "text"), the same objects out with "answer" added. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "jsonl.h"
#include "s1c/grade.h"

static const char *extract_help =
    "usage: s1c extract [--extractor s1_math|s1_gpqa|minerva_math] [options] < in.jsonl > out.jsonl\n"
    "\n"
    "Reads one JSON object per line, extracts the final answer from its \"text\" field and writes\n"
    "the same object (its bytes unchanged) with \"answer\" added, in input order, line by line\n"
    "(lines of any length; millions of lines stream in constant memory).\n"
    "\n"
    "  --extractor NAME   s1_math (default): s1's rules: the text after the last\n"
    "                     \"<|im_start|>answer\\n\", the last balanced \\boxed{...} (a \"\\boxed \" with\n"
    "                     a space wins), else what follows the first \"Answer:\", else the text;\n"
    "                     s1_gpqa: the same, then a letter A-D; minerva_math: lm-eval's\n"
    "                     \"Final Answer: The final answer is X. I hope it is correct.\"\n"
    "  --field NAME       the input field (default text)\n"
    "  --out-field NAME   the output field (default answer; an existing field is replaced)\n"
    "  --rule             also write \"extract_rule\" (boxed, boxed_space, answer_colon, whole, ...)\n"
    "  --skip-bad         skip a malformed line with a warning on stderr (default: stop with an\n"
    "                     error naming the line, exit 1)\n"
    "\n"
    "Where s1 would not have a deterministic answer, \"needs_judge\": true is added: s1_gpqa when\n"
    "the text gives no letter A-D (s1 asked gpt-4o-mini, then fell back to \"A\"), s1_math when s1's\n"
    "remove_boxed would have raised (only a \\fbox{...}, or \\boxed not followed by '{').\n"
    "\n"
    "examples:\n"
    "  echo '{\"text\":\"so the answer is $\\\\boxed{\\\\frac{1}{3}}$.\"}' | s1c extract\n"
    "  s1c extract --extractor s1_gpqa < gpqa_outputs.jsonl > gpqa_answers.jsonl\n"
    "  s1c extract --extractor minerva_math --field completion --out-field pred < runs.jsonl\n";

static const char *rule_name(grade_rule r) {
    switch (r) {
    case GRADE_RULE_BOXED_SPACE: return "boxed_space";
    case GRADE_RULE_BOXED: return "boxed";
    case GRADE_RULE_ANSWER: return "answer_colon";
    case GRADE_RULE_WHOLE: return "whole";
    case GRADE_RULE_FBOX: return "fbox";
    case GRADE_RULE_BAD_BOX: return "bad_box";
    case GRADE_RULE_MINERVA: return "minerva";
    case GRADE_RULE_INVALID: return "invalid";
    }
    return "?";
}

/* Writes the object line with the extra fields appended before its closing brace (bytes of
 * the input kept), or re-serialized when the output field already exists. */
static void write_with_fields(const char *line, size_t n, cJSON *obj, const char *field, const grade_extraction *ex,
                              bool rule) {
    if (cJSON_GetObjectItemCaseSensitive(obj, field)) {
        cJSON_DeleteItemFromObjectCaseSensitive(obj, field);
        char *tmp = malloc(ex->len + 1);
        if (tmp) {
            memcpy(tmp, ex->answer, ex->len + 1);
            cJSON_AddStringToObject(obj, field, tmp);
            free(tmp);
        }
        if (ex->needs_judge) cJSON_AddBoolToObject(obj, "needs_judge", 1);
        if (rule) cJSON_AddStringToObject(obj, "extract_rule", rule_name(ex->rule));
        char *s = cJSON_PrintUnformatted(obj);
        if (s) { fputs(s, stdout); fputc('\n', stdout); }
        free(s);
        return;
    }
    fputs(jsonl_open_object(line, n, stdout), stdout);
    json_write_str(stdout, field, strlen(field));
    fputc(':', stdout);
    json_write_str(stdout, ex->answer, ex->len);
    if (ex->needs_judge) fputs(",\"needs_judge\":true", stdout);
    if (rule) printf(",\"extract_rule\":\"%s\"", rule_name(ex->rule));
    fputs("}\n", stdout);
}

int cmd_extract(int argc, char **argv) {
    const char *ex_name = "s1_math", *field = "text", *out_field = "answer";
    bool skip_bad = false, rule = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(extract_help, stdout); return 0; }
        else if (!strcmp(a, "--extractor")) ok = arg_str(argc, argv, &i, &ex_name);
        else if (!strcmp(a, "--field")) ok = arg_str(argc, argv, &i, &field);
        else if (!strcmp(a, "--out-field")) ok = arg_str(argc, argv, &i, &out_field);
        else if (!strcmp(a, "--skip-bad")) skip_bad = true;
        else if (!strcmp(a, "--rule")) rule = true;
        else return cli_error("extract: unknown option '%s' (see s1c extract --help)", a);
        if (!ok) return 1;
    }
    s1c_err err = {{0}};
    grade_extractor ex;
    if (grade_extractor_from_name(ex_name, &ex, &err)) return cli_error("extract: %s", err.msg);

    jsonl_in in = {0};
    ssize_t got;
    long bad = 0;
    int rc = 0;
    while ((got = jsonl_next(&in)) >= 0) {
        const char *line = in.line;
        long lineno = in.lineno;
        size_t n = (size_t)got;
        const char *why = NULL;
        cJSON *obj = cJSON_ParseWithLength(line, n);
        cJSON *t = obj ? cJSON_GetObjectItemCaseSensitive(obj, field) : NULL;
        if (!obj || !cJSON_IsObject(obj)) why = "not a JSON object";
        else if (!cJSON_IsString(t)) why = "has no string field";
        if (why) {
            if (why[0] == 'h') fprintf(stderr, "s1c: extract: stdin line %ld %s \"%s\"%s\n", lineno, why, field, skip_bad ? " (skipped)" : "");
            else fprintf(stderr, "s1c: extract: stdin line %ld is %s%s\n", lineno, why, skip_bad ? " (skipped)" : "");
            cJSON_Delete(obj);
            bad++;
            if (skip_bad) continue;
            rc = 1;
            break;
        }
        grade_extraction e;
        if (grade_extract(t->valuestring, strlen(t->valuestring), ex, &e, &err)) {
            cJSON_Delete(obj);
            rc = cli_error("extract: stdin line %ld: %s", lineno, err.msg);
            break;
        }
        write_with_fields(line, n, obj, out_field, &e, rule);
        grade_extraction_free(&e);
        cJSON_Delete(obj);
    }
    jsonl_close(&in);
    if (fflush(stdout) != 0 || ferror(stdout)) return cli_error("extract: cannot write to stdout");
    if (bad && skip_bad) fprintf(stderr, "s1c: extract: %ld malformed line(s) skipped\n", bad);
    return rc;
}
