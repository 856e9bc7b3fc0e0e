/* Chat templates in C: the conversations s1c renders are plain system/user/assistant turns,
 * so each known template family is a few string appends that reproduce its Jinja output. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/text.h"

const char *const s1c_qwen_default_system = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

/* A growing string; on allocation failure it stays marked and the render fails once. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

/* Appends NULL-terminated string arguments. */
static void sb_cat(sbuf *b, ...) {
    va_list ap;
    va_start(ap, b);
    for (const char *s; (s = va_arg(ap, const char *));) sb_add(b, s, strlen(s));
    va_end(ap);
}

static char *sb_finish(sbuf *b, s1c_err *err) {
    if (b->oom || !b->p) {
        free(b->p);
        if (b->oom) { s1c_fail(err, "chat template: out of memory"); return NULL; }
        return calloc(1, 1);
    }
    return b->p;
}

int s1c_chat_detect(const char *j) {
    if (!j) return -1;
    if (strstr(j, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>")) return S1C_CHAT_R1_DISTILL; /* <｜Assistant｜> */
    if (!strstr(j, "<|im_start|>")) return -1;
    if (strstr(j, "<think>")) return S1C_CHAT_QWQ;
    if (strstr(j, "You are Qwen, created by Alibaba Cloud")) return S1C_CHAT_QWEN25;
    return S1C_CHAT_CHATML;
}

/* What reasoning models keep of an earlier assistant turn: the text after the last </think>. */
static const char *after_think(const char *s) {
    const char *last = NULL;
    for (const char *p = s; (p = strstr(p, "</think>")); p += 8) last = p + 8;
    return last ? last : s;
}

static void render_chatml(sbuf *b, int tmpl, const s1c_chat_msg *m, int n, bool gen) {
    int first = 0;
    if (n > 0 && !strcmp(m[0].role, "system")) {
        sb_cat(b, "<|im_start|>system\n", m[0].content, "<|im_end|>\n", NULL);
        first = 1;
    } else if (tmpl == S1C_CHAT_QWEN25) {
        sb_cat(b, "<|im_start|>system\n", s1c_qwen_default_system, "<|im_end|>\n", NULL);
    }
    for (int i = first; i < n; i++) {
        const char *c = m[i].content;
        if (tmpl == S1C_CHAT_QWQ && !strcmp(m[i].role, "assistant")) {
            c = after_think(c);
            while (*c == '\n') c++; /* QwQ's template: .split('</think>')[-1].lstrip('\n') */
        }
        sb_cat(b, "<|im_start|>", m[i].role, "\n", c, "<|im_end|>\n", NULL);
    }
    if (gen) sb_cat(b, "<|im_start|>assistant\n", tmpl == S1C_CHAT_QWQ ? "<think>\n" : "", NULL);
}

static void render_r1(sbuf *b, const s1c_chat_msg *m, int n, bool gen) {
    /* BOS, then the system prompt (the last system message wins, as in the template) */
    const char *system = "";
    for (int i = 0; i < n; i++)
        if (!strcmp(m[i].role, "system")) system = m[i].content;
    sb_cat(b, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", system, NULL);
    for (int i = 0; i < n; i++) {
        if (!strcmp(m[i].role, "user")) sb_cat(b, "<\xef\xbd\x9cUser\xef\xbd\x9c>", m[i].content, NULL);
        else if (!strcmp(m[i].role, "assistant"))
            sb_cat(b, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>", after_think(m[i].content), "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", NULL);
    }
    if (gen) sb_cat(b, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><think>\n", NULL);
}

char *s1c_chat_render(int tmpl, const s1c_chat_msg *msgs, int n, bool gen, s1c_err *err) {
    for (int i = 0; i < n; i++) {
        const char *r = msgs[i].role;
        if (!r || !msgs[i].content) { s1c_fail(err, "chat: message %d has no role or content", i); return NULL; }
        if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant")) { s1c_fail(err, "chat: message %d has role '%s' (system, user, assistant)", i, r); return NULL; }
    }
    sbuf b = {0};
    switch (tmpl) {
    case S1C_CHAT_QWEN25: case S1C_CHAT_CHATML: case S1C_CHAT_QWQ: render_chatml(&b, tmpl, msgs, n, gen); break;
    case S1C_CHAT_R1_DISTILL: render_r1(&b, msgs, n, gen); break;
    default: s1c_fail(err, "chat: unknown template %d", tmpl); return NULL;
    }
    return sb_finish(&b, err);
}

/* Python's str.strip() for ASCII whitespace (s1's strings are stripped that way; the Unicode
 * whitespace it would also strip does not occur at the ends of s1K traces). */
static void strip(const char **s, size_t *n) {
    while (*n > 0 && strchr(" \t\n\r\f\v", (*s)[0])) { (*s)++; (*n)--; }
    while (*n > 0 && strchr(" \t\n\r\f\v", (*s)[*n - 1])) (*n)--;
}

static void user_turns(sbuf *b, const char *system, const char *question) {
    sb_cat(b, "<|im_start|>system\n", system ? system : s1c_qwen_default_system, "<|im_end|>\n",
           "<|im_start|>user\n", question, "<|im_end|>\n<|im_start|>assistant\n", NULL);
}

char *s1c_s1_train_sample(const char *system, const char *question, const char *const *traces, int n_traces,
                          const char *attempt, size_t *loss_start, s1c_err *err) {
    if (!question || !attempt || (n_traces > 0 && !traces)) { s1c_fail(err, "s1 sample: question, traces and attempt are required"); return NULL; }
    sbuf b = {0};
    user_turns(&b, system, question);
    *loss_start = b.len;
    /* the trace: trajectories joined with "\n", then stripped */
    sbuf tr = {0};
    for (int i = 0; i < n_traces; i++) {
        if (i) sb_add(&tr, "\n", 1);
        sb_add(&tr, traces[i], strlen(traces[i]));
    }
    const char *t = tr.p ? tr.p : "";
    size_t tl = tr.len;
    strip(&t, &tl);
    const char *a = attempt;
    size_t al = strlen(attempt);
    strip(&a, &al);
    sb_cat(&b, "<|im_start|>think\n", NULL);
    sb_add(&b, t, tl);
    sb_cat(&b, "\n<|im_start|>answer\n", NULL);
    if (!memmem(a, al, "Answer:", 7)) sb_cat(&b, "Answer: ", NULL);
    sb_add(&b, a, al);
    sb_cat(&b, "<|im_end|>\n", NULL);
    free(tr.p);
    if (tr.oom) b.oom = true;
    return sb_finish(&b, err);
}

char *s1c_s1_prompt(const char *system, const char *question, const char *think_start, s1c_err *err) {
    if (!question) { s1c_fail(err, "s1 prompt: no question"); return NULL; }
    sbuf b = {0};
    user_turns(&b, system, question);
    sb_cat(&b, think_start ? think_start : "<|im_start|>think", NULL);
    return sb_finish(&b, err);
}
