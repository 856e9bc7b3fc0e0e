/* libFuzzer target: question pools and teacher replies on arbitrary bytes. The input is parsed
 * as a pool (bad lines become dropped records, never an error); every record goes through the
 * quality checks and is written back, which must give one valid UTF-8 JSON line; questions go
 * through decontamination and near-duplicate detection; the whole input is also a teacher reply
 * (reasoning split), an MSC list and a classifier reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/curate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cur_pool p;
    s1c_err err;
    if (cur_pool_parse(&p, "fuzz", (const char *)data, size, NULL, &err)) return 0;
    cur_decontam *d = NULL;
    if (cur_decontam_new(&d, 8, &err)) { cur_pool_free(&p); return 0; }
    cur_decontam_add(d, "bench", "Let x be a real number such that x squared equals four; find x.", &err);
    cur_decontam_add(d, "bench", "Compute 2+2.", &err);
    cur_decontam_add(d, "bench", "Find the sum of all primes.", &err);
    const char **qs = calloc(p.n + 1, sizeof *qs);
    size_t nq = 0;
    for (size_t i = 0; i < p.n; i++) {
        cur_rec *r = &p.r[i];
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) continue;
        bool ok = cur_write_rec(f, r);
        fclose(f);
        if (ok) {
            if (!cur_utf8_valid(buf, len) || len == 0 || buf[len - 1] != '\n' || memchr(buf, '\n', len) != buf + len - 1) __builtin_trap();
            cJSON *o = cJSON_ParseWithLength(buf, len);
            if (!cJSON_IsObject(o)) __builtin_trap(); /* what s1c writes must read back */
            cJSON_Delete(o);
        }
        free(buf);
        if (r->stage) continue;
        qs[nq++] = r->question;
        cur_format_problem(r->question, cur_str(r, "source"));
        free(cur_normalize(r->question));
        char *t = cur_trace(r, "thinking_trajectories");
        if (t) cur_count_tokens(NULL, t, strlen(t));
        free(t);
        cur_decontam_match(d, r->question);
    }
    long *dup = calloc(nq + 1, sizeof *dup);
    if (dup) cur_near_dups(qs, nq, 0.8, dup, &err);
    free(dup);
    free(qs);
    cur_decontam_free(d);
    cur_pool_free(&p);

    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    char *reasoning, *answer;
    if (distill_split(s, NULL, &reasoning, &answer, &err) == 0) {
        if (strlen(reasoning) + strlen(answer) > size) __builtin_trap(); /* pieces of the input */
        free(reasoning);
        free(answer);
    }
    cur_msc m;
    if (cur_msc_parse(&m, s, size, &err) == 0) {
        char *prompt = cur_msc_prompt(&m, s);
        free(prompt);
        int c = cur_msc_parse_reply(&m, s);
        if (c < -1 || c >= m.n) __builtin_trap();
        cur_msc_free(&m);
    }
    free(s);
    return 0;
}
