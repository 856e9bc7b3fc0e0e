/* The Mathematics Subject Classification list s1 classified its questions into
 * (data/msc/msc.json, embedded in the binary; provenance in data/msc/PROVENANCE.md), the
 * classification prompt, and reading a classifier's reply. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curate_internal.h"

__asm__(".section .rodata\n.balign 16\n.global s1c_msc_json\ns1c_msc_json:\n.incbin \"" S1C_MSC_DIR "/msc.json\"\n"
        ".byte 0\n.global s1c_msc_json_end\ns1c_msc_json_end:\n.previous\n");
extern const char s1c_msc_json[], s1c_msc_json_end[];

void cur_msc_free(cur_msc *m) {
    for (int i = 0; i < m->n; i++) {
        free(m->code[i]);
        free(m->title[i]);
        free(m->prompt[i]);
    }
    free(m->code);
    free(m->title);
    free(m->prompt);
    memset(m, 0, sizeof *m);
}

int cur_msc_parse(cur_msc *m, const char *json, size_t len, s1c_err *err) {
    memset(m, 0, sizeof *m);
    cJSON *a = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) == 0) {
        cJSON_Delete(a);
        return s1c_fail(err, "msc.json: not a non-empty JSON array");
    }
    int n = cJSON_GetArraySize(a);
    m->code = calloc((size_t)n, sizeof *m->code);
    m->title = calloc((size_t)n, sizeof *m->title);
    m->prompt = calloc((size_t)n, sizeof *m->prompt);
    if (!m->code || !m->title || !m->prompt) { cJSON_Delete(a); cur_msc_free(m); return s1c_fail(err, "out of memory"); }
    cJSON *e;
    cJSON_ArrayForEach(e, a) {
        cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code"), *t = cJSON_GetObjectItemCaseSensitive(e, "title");
        cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "prompt");
        if (!cJSON_IsString(c) || !cJSON_IsString(t) || !cJSON_IsString(p)) {
            int at = m->n;
            cJSON_Delete(a);
            cur_msc_free(m);
            return s1c_fail(err, "msc.json: entry %d lacks a string code, title or prompt", at);
        }
        m->code[m->n] = cur_strdup(c->valuestring);
        m->title[m->n] = cur_strdup(t->valuestring);
        m->prompt[m->n] = cur_strdup(p->valuestring);
        m->n++;
        if (!m->code[m->n - 1] || !m->title[m->n - 1] || !m->prompt[m->n - 1]) {
            cJSON_Delete(a);
            cur_msc_free(m);
            return s1c_fail(err, "out of memory");
        }
    }
    cJSON_Delete(a);
    return 0;
}

int cur_msc_load(cur_msc *m, s1c_err *err) {
    return cur_msc_parse(m, s1c_msc_json, (size_t)(s1c_msc_json_end - s1c_msc_json - 1), err);
}

char *cur_msc_prompt(const cur_msc *m, const char *question) {
    cur_sb b = {0};
    cur_sb_printf(&b, "Classify the question below into exactly one of these subjects of the Mathematics Subject "
                      "Classification (science questions go to the science subjects).\n\n");
    for (int i = 0; i < m->n; i++) cur_sb_printf(&b, "%s\n\n", m->prompt[i]);
    cur_sb_printf(&b, "Question:\n%s\n\nReply with the two-digit code of the subject only, for example: Code: %s",
                  question, m->n ? m->code[0] : "00");
    if (b.oom) { free(b.p); return NULL; }
    return b.p;
}

int cur_msc_parse_reply(const cur_msc *m, const char *reply) {
    int found = -1;
    if (!reply) return -1;
    /* the last standalone two-digit number that is a code of the list (a reasoning model may
     * think aloud about several before answering) */
    for (const char *p = reply; *p; p++) {
        if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1])) continue;
        if ((p > reply && isdigit((unsigned char)p[-1])) || isdigit((unsigned char)p[2])) continue;
        for (int i = 0; i < m->n; i++)
            if (!strncmp(m->code[i], p, 2) && m->code[i][2] == 0) found = i;
    }
    return found;
}
