/* Answer extraction, exactly as ../shared/data/grading/PROVENANCE.md specifies:
 *   s1_math   s1's process_results (openai_math / aime / gpqa_diamond_openai): the answer
 *             section, then "\boxed " / the last balanced \boxed{...} / "Answer:" / the text;
 *   s1_gpqa   the same, then a single letter a-d/A-D (anything else needs s1's judge);
 *   minerva   lm-eval minerva_math get_unnormalized_answer.
 * All scans are linear in the input (the minerva regex is simulated with monotone cursors). */
#include <stdlib.h>
#include <string.h>

#include "grade_internal.h"

int grade_extractor_from_name(const char *name, grade_extractor *out, s1c_err *err) {
    if (!strcmp(name, "s1_math")) *out = GRADE_EX_S1_MATH;
    else if (!strcmp(name, "s1_gpqa")) *out = GRADE_EX_S1_GPQA;
    else if (!strcmp(name, "minerva_math") || !strcmp(name, "minerva")) *out = GRADE_EX_MINERVA;
    else return s1c_fail(err, "unknown extractor '%s' (s1_math, s1_gpqa, minerva_math)", name);
    return 0;
}

const char *grade_extractor_name(grade_extractor ex) {
    switch (ex) {
    case GRADE_EX_S1_MATH: return "s1_math";
    case GRADE_EX_S1_GPQA: return "s1_gpqa";
    case GRADE_EX_MINERVA: return "minerva_math";
    }
    return "?";
}

/* Python's str.isspace() on the UTF-8 character at s (n bytes left): returns its byte length
 * if it is whitespace, else 0. Invalid UTF-8 is never whitespace. */
size_t gr_py_space(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return 1;
    if (c < 0x80) return 0;
    if (c == 0xC2 && n >= 2 && (s[1] == 0x85 || s[1] == 0xA0)) return 2;
    if (c == 0xE1 && n >= 3 && s[1] == 0x9A && s[2] == 0x80) return 3; /* U+1680 */
    if (c == 0xE2 && n >= 3) {
        if (s[1] == 0x80 && ((s[2] >= 0x80 && s[2] <= 0x8A) || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF)) return 3;
        if (s[1] == 0x81 && s[2] == 0x9F) return 3; /* U+205F */
    }
    if (c == 0xE3 && n >= 3 && s[1] == 0x80 && s[2] == 0x80) return 3; /* U+3000 */
    return 0;
}

/* Length of Python whitespace that ends exactly at s+n (scanning backwards), one char. */
static size_t py_space_before(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    for (size_t k = 1; k <= 3 && k <= n; k++)
        if (gr_py_space(s + n - k, k) == k) return k;
    return 0;
}

static const char *find_last(const char *s, size_t n, const char *pat) {
    size_t m = strlen(pat);
    if (m > n) return NULL;
    for (size_t i = n - m + 1; i-- > 0;)
        if (s[i] == pat[0] && memcmp(s + i, pat, m) == 0) return s + i;
    return NULL;
}

/* Case-insensitive "answer" at s as Python's (?i) matches it (the 's' also matches U+017F,
 * long s). Returns the match length or 0. */
static size_t match_answer_word(const unsigned char *s, size_t n) {
    static const char w[] = "answer";
    size_t j = 0;
    for (int k = 0; k < 6; k++) {
        if (j >= n) return 0;
        unsigned c = s[j];
        if (k == 2 && c == 0xC5 && j + 1 < n && s[j + 1] == 0xBF) { j += 2; continue; }
        if (c >= 'A' && c <= 'Z') c += 32;
        if (c != (unsigned char)w[k]) return 0;
        j++;
    }
    return j;
}

/* re.findall(r"(?i)Answer\s*:\s*(.*)", a, re.DOTALL)[-1]: the first match swallows the rest. */
static bool answer_colon(const char *a, size_t n, size_t *off) {
    const unsigned char *u = (const unsigned char *)a;
    for (size_t i = 0; i < n; i++) {
        size_t w = match_answer_word(u + i, n - i);
        if (!w) continue;
        size_t j = i + w, k;
        while (j < n && (k = gr_py_space(u + j, n - j))) j += k;
        if (j >= n || a[j] != ':') continue;
        j++;
        while (j < n && (k = gr_py_space(u + j, n - j))) j += k;
        *off = j;
        return true;
    }
    return false;
}

static int set_answer(grade_extraction *out, const char *p, size_t n, grade_rule rule, s1c_err *err) {
    out->answer = malloc(n + 1);
    if (!out->answer) return s1c_fail(err, "extract: out of memory (%zu bytes)", n + 1);
    if (n) memcpy(out->answer, p, n);
    out->answer[n] = 0;
    out->len = n;
    out->rule = rule;
    return 0;
}

static int extract_s1_math(const char *text, size_t len, grade_extraction *out, s1c_err *err) {
    const char *a = text;
    size_t n = len;
    const char *p;
    /* 1. the answer section */
    if ((p = find_last(a, n, "<|im_start|>answer\n"))) {
        size_t skip = (size_t)(p - a) + strlen("<|im_start|>answer\n");
        a += skip, n -= skip;
    } else if ((p = find_last(a, n, "<|im_start|>"))) {
        size_t skip = (size_t)(p - a) + strlen("<|im_start|>");
        a += skip, n -= skip;
        const char *nl = memchr(a, '\n', n);
        if (nl) n -= (size_t)(nl + 1 - a), a = nl + 1;
    }
    /* 2. "\boxed " (with a space) anywhere wins: after its last occurrence, up to a '$' */
    if ((p = find_last(a, n, "\\boxed "))) {
        const char *s = p + 7;
        size_t m = n - (size_t)(s - a);
        const char *dollar = memchr(s, '$', m);
        return set_answer(out, s, dollar ? (size_t)(dollar - s) : m, GRADE_RULE_BOXED_SPACE, err);
    }
    /* 3. the last \boxed (else \fbox), brace-counted from that occurrence */
    bool fbox = false;
    if (!(p = find_last(a, n, "\\boxed"))) { p = find_last(a, n, "\\fbox"); fbox = p != NULL; }
    if (p) {
        long open = 0;
        for (const char *q = p; q < a + n; q++) {
            if (*q == '{') open++;
            if (*q == '}' && --open == 0) {
                size_t blen = (size_t)(q + 1 - p);
                const char *left = fbox ? "\\fbox{" : "\\boxed{";
                size_t ll = strlen(left);
                if (blen >= ll && memcmp(p, left, ll) == 0) {
                    if (set_answer(out, p + ll, blen - ll - 1, fbox ? GRADE_RULE_FBOX : GRADE_RULE_BOXED, err)) return -1;
                } else if (set_answer(out, p, blen, GRADE_RULE_BAD_BOX, err)) return -1;
                out->needs_judge = fbox || out->rule == GRADE_RULE_BAD_BOX;
                return 0;
            }
        }
        /* unbalanced: no box, fall through */
    }
    /* 4. "Answer:" */
    size_t off;
    if (answer_colon(a, n, &off)) return set_answer(out, a + off, n - off, GRADE_RULE_ANSWER, err);
    /* 5. the text unchanged */
    return set_answer(out, a, n, GRADE_RULE_WHOLE, err);
}

/* minerva: re.search(r"Final Answer: The final answer is(.*?). I hope it is correct.", text +
 * "I hope it is correct."), group 1 stripped; '.' matches anything but '\n'. */
static int extract_minerva(const char *text, size_t len, grade_extraction *out, s1c_err *err) {
    static const char head[] = "Final Answer: The final answer is", tail[] = " I hope it is correct";
    const size_t hl = sizeof head - 1, tl = sizeof tail - 1, suffix = 21; /* "I hope it is correct." */
    size_t n = len + suffix;
    char *t = malloc(n + 1);
    if (!t) return s1c_fail(err, "extract: out of memory (%zu bytes)", n + 1);
    memcpy(t, text, len);
    memcpy(t + len, "I hope it is correct.", suffix);
    t[n] = 0;
    /* m: a position where tail starts, t[m + tl] exists and is not '\n'. Found monotonically. */
    size_t m_cache = 0, nl_cache = 0;
    bool m_valid = false, nl_valid = false;
    int rc = -2;
    for (size_t p = 0; p + hl <= n && rc == -2;) {
        const char *h = memmem(t + p, n - p, head, hl);
        if (!h) break;
        size_t start = (size_t)(h - t) + hl;
        p = (size_t)(h - t) + 1;
        if (!m_valid || m_cache < start + 1) {
            m_valid = false;
            for (size_t from = start + 1; from + tl < n;) {
                const char *f = memmem(t + from, n - from, tail, tl);
                if (!f) break;
                size_t m = (size_t)(f - t);
                if (m + tl < n && t[m + tl] != '\n') { m_cache = m, m_valid = true; break; }
                from = m + 1;
            }
            if (!m_valid) break; /* no tail later on: no later head can match either */
        }
        if (!nl_valid || nl_cache < start) { /* the first newline at or after start, cached */
            const char *nl = memchr(t + start, '\n', n - start);
            nl_cache = nl ? (size_t)(nl - t) : n;
            nl_valid = true;
        }
        if (nl_cache < m_cache) continue; /* the group and the any-char must stay on the line */
        const unsigned char *g = (const unsigned char *)t + start;
        size_t gl = m_cache - 1 - start, k;
        while (gl && (k = gr_py_space(g, gl))) g += k, gl -= k;
        while (gl && (k = py_space_before(g, gl))) gl -= k;
        rc = set_answer(out, (const char *)g, gl, GRADE_RULE_MINERVA, err);
    }
    free(t);
    if (rc == -2) rc = set_answer(out, "[invalidanswer]", 15, GRADE_RULE_INVALID, err);
    return rc;
}

int grade_extract(const char *text, size_t len, grade_extractor ex, grade_extraction *out, s1c_err *err) {
    *out = (grade_extraction){0};
    if (!text) text = "", len = 0;
    if (ex == GRADE_EX_MINERVA) return extract_minerva(text, len, out, err);
    if (extract_s1_math(text, len, out, err)) return -1;
    if (ex == GRADE_EX_S1_GPQA) {
        char c = out->len == 1 ? out->answer[0] : 0;
        if (c >= 'a' && c <= 'd') out->answer[0] = (char)(c - 32), c -= 32;
        out->needs_judge = !(c >= 'A' && c <= 'D');
    }
    return 0;
}

void grade_extraction_free(grade_extraction *e) {
    if (!e) return;
    free(e->answer);
    *e = (grade_extraction){0};
}
