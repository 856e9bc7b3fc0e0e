/* Benchmarks: the three that ship inside s1c (embedded bytes, see data/benchmarks/PROVENANCE.md)
 * and any JSONL file. Questions are the user messages exactly as s1 built them (SPEC.md §7). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/eval.h"
#include "s1c/grade.h"

/* The shipped files, NUL-terminated, in .rodata. */
#define EMBED(sym, file)                                                                  \
    __asm__(".section .rodata\n.balign 16\n.global " #sym "\n" #sym ":\n.incbin \"" S1C_BENCH_DIR "/" file \
            "\"\n.byte 0\n.global " #sym "_end\n" #sym "_end:\n.previous\n");               \
    extern const char sym[], sym##_end[];
EMBED(s1c_bench_aime24, "aime24.jsonl")
EMBED(s1c_bench_aime25, "aime25.jsonl")
EMBED(s1c_bench_math500, "math500.jsonl")

/* QwQ's suffix on the shipped AIME25 prompts; s1 asked the bare question. */
static const char qwq_suffix[] = "\nPlease reason step by step, and put your final answer within \\boxed{}.";

static char *json_text(const cJSON *v) {
    if (cJSON_IsString(v)) return strdup(v->valuestring);
    if (cJSON_IsNumber(v)) {
        char buf[64];
        return strdup(s1c_num_text(v->valuedouble, buf, sizeof buf));
    }
    return NULL;
}

static void strip_suffix(char *q, const char *suffix) {
    size_t n = strlen(q), k = strlen(suffix);
    if (n >= k && !strcmp(q + n - k, suffix)) q[n - k] = 0;
}

int eval_bench_parse(eval_bench *b, const char *name, const char *text, size_t len, const char *qf, const char *af, s1c_err *err) {
    memset(b, 0, sizeof *b);
    b->name = strdup(name);
    int cap = 0, line_no = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        line_no++;
        size_t k = i;
        while (k < end && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r')) k++;
        if (k < end) {
            cJSON *o = cJSON_ParseWithLength(text + i, end - i);
            char *q = o ? json_text(cJSON_GetObjectItemCaseSensitive(o, qf)) : NULL;
            char *a = o ? json_text(cJSON_GetObjectItemCaseSensitive(o, af)) : NULL;
            char *id = o ? json_text(cJSON_GetObjectItemCaseSensitive(o, "id")) : NULL;
            if (!id) id = o ? json_text(cJSON_GetObjectItemCaseSensitive(o, "unique_id")) : NULL;
            cJSON_Delete(o);
            if (!q || !a) {
                free(q); free(a); free(id);
                eval_bench_free(b);
                return s1c_fail(err, "%s:%d: not a JSON object with \"%s\" and \"%s\"", name, line_no, qf, af);
            }
            if (b->n == cap) {
                cap = cap ? cap * 2 : 64;
                eval_problem *np = realloc(b->p, (size_t)cap * sizeof *np);
                if (!np) { free(q); free(a); free(id); eval_bench_free(b); return s1c_fail(err, "out of memory"); }
                b->p = np;
            }
            if (!id) {
                char buf[32];
                snprintf(buf, sizeof buf, "%d", line_no);
                id = strdup(buf);
            }
            strip_suffix(q, qwq_suffix);
            b->p[b->n++] = (eval_problem){.id = id, .question = q, .gold = a};
        }
        i = end + 1;
    }
    if (b->n == 0) { eval_bench_free(b); return s1c_fail(err, "%s: no problems", name); }
    return 0;
}

int eval_bench_builtin(eval_bench *b, const char *name, s1c_err *err) {
    if (!strcmp(name, "aime24")) return eval_bench_parse(b, "aime24", s1c_bench_aime24, (size_t)(s1c_bench_aime24_end - s1c_bench_aime24 - 1), "problem", "answer", err);
    if (!strcmp(name, "aime25")) return eval_bench_parse(b, "aime25", s1c_bench_aime25, (size_t)(s1c_bench_aime25_end - s1c_bench_aime25 - 1), "prompt", "answer", err);
    if (!strcmp(name, "math500")) return eval_bench_parse(b, "math500", s1c_bench_math500, (size_t)(s1c_bench_math500_end - s1c_bench_math500 - 1), "problem", "answer", err);
    if (!strcmp(name, "gpqa"))
        return s1c_fail(err, "GPQA is not shipped (its authors ask that it not be redistributed in plain text): "
                             "--bench gpqa --bench-file gpqa_diamond.csv");
    return s1c_fail(err, "unknown benchmark '%s' (aime24, aime25, math500, gpqa with --bench-file; or --bench-file)", name);
}

int eval_bench_file(eval_bench *b, const char *path, const char *qf, const char *af, s1c_err *err) {
    char *text = NULL;
    size_t len = 0;
    if (s1c_read_file(path, 1u << 30, &text, &len, err) != 0) return -1;
    int rc = eval_bench_parse(b, path, text, len, qf, af, err);
    free(text);
    return rc;
}

void eval_bench_free(eval_bench *b) {
    for (int i = 0; i < b->n; i++) { free(b->p[i].id); free(b->p[i].question); free(b->p[i].gold); free(b->p[i].meta); }
    free(b->p);
    free(b->name);
    memset(b, 0, sizeof *b);
}

static bool all_digits(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

bool eval_is_correct(const char *gold, const char *pred, bool *unsure) {
    *unsure = false;
    if (gold[0] >= 'A' && gold[0] <= 'D' && !gold[1]) return eval_choice_letter(pred) == gold[0];
    if (all_digits(gold) && all_digits(pred)) {
        /* s1: str(int(pred)) == str(int(gold)); compare without leading zeros, any length */
        while (gold[0] == '0' && gold[1]) gold++;
        while (pred[0] == '0' && pred[1]) pred++;
        return !strcmp(gold, pred);
    }
    grade_result r;
    if (grade_equal_ex(gold, strlen(gold), pred, strlen(pred), NULL, &r, NULL) != 0) { *unsure = true; return false; }
    *unsure = r.verdict == GRADE_UNSURE;
    return r.equal;
}
