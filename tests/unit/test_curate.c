/* The curate filters one by one with examples written here (s1's bold regex checked against
 * Python's re on the same strings), pool validation, decontamination with all of MATH500
 * inserted into a pool, exact/near duplicates, the diversity sampler's statistics over many
 * seeds (domains uniform, within-domain ranks ~ 2^-rank, by chi-square), reply splitting,
 * the MSC list, the journal, and a whole run with precomputed verdicts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s1c/curate.h"
#include "s1c/eval.h"
#include "testutil.h"

/* ------------------------------------------------------------------ quality */

static void test_format_filters(void **st) {
    (void)st;
    /* [asy] figures: dropped unless the source names AIME */
    assert_non_null(cur_format_problem("Find the area. [asy] draw((0,0)--(1,1)); [/asy]", "numina_math"));
    assert_non_null(cur_format_problem("Find the area. [asy] draw((0,0)--(1,1)); [/asy]", NULL));
    assert_null(cur_format_problem("Find the area. [asy] draw((0,0)--(1,1)); [/asy]", "AIME_1983_2021"));
    assert_null(cur_format_problem("Find the area. [asy] x [/asy]", "qq8933/AIME_1983_2024"));
    /* missing images */
    assert_non_null(cur_format_problem("As shown in ![Image](img1.png), find x.", "s"));
    assert_non_null(cur_format_problem("See ![](https://cdn.mathpix.com/x.jpg) and find x.", "s"));
    assert_null(cur_format_problem("The image of f under g is an interval; find it.", "s"));
    /* template residue */
    assert_non_null(cur_format_problem("p{i}. Let x be 3.", "s"));
    assert_null(cur_format_problem("Let p_i be the i-th prime.", "s"));
    /* s1's \*\*(?=.*\d)[^\s\]]*\*\*; expectations from Python's re.search on the same strings */
    static const struct { const char *q; bool hit; } bold[] = {
        {"**1**", true}, {"**bold** text 5", true}, {"**bold text** 5", false}, {"plain 5 text", false},
        {"**x**", false}, {"a **12** b", true}, {"**a]b** 3", false}, {"[**3]**", false}, {"**\n5**", false},
        {"** 5 **", false}, {"**5", false}, {"****", false}, {"***7***", true}, {"see **Answer:** 42", true},
        {"x **a*b** y 1", true}, {"**2\n**", false}, {"The value **is** 3.", true},
    };
    for (size_t i = 0; i < sizeof bold / sizeof bold[0]; i++) {
        const char *why = cur_format_problem(bold[i].q, "s");
        if ((why != NULL) != bold[i].hit) fail_msg("bold filter on '%s': got %s, expected %d", bold[i].q, why ? why : "none", bold[i].hit);
    }
    /* an ordinary question passes */
    assert_null(cur_format_problem("Let $x^2 + 3x = 10$. Find all real $x$.", "s"));
}

static void test_normalize(void **st) {
    (void)st;
    char *a = cur_normalize("  What IS\n\t2+2?  "), *b = cur_normalize("what is 2+2?");
    assert_string_equal(a, b);
    assert_string_equal(a, "what is 2+2?");
    free(a);
    free(b);
}

/* 60 words of a fixed pseudo-random vocabulary; `seed` picks the text. */
static char *words_text(unsigned seed, int n) {
    static const char *vocab[] = {"triangle", "circle", "prime", "integer", "sum", "product", "let", "find", "the", "of",
                                  "number", "real", "positive", "polynomial", "roots", "angle", "side", "length", "area", "digits",
                                  "sequence", "term", "ratio", "probability", "coin", "dice", "graph", "vertex", "edge", "matrix"};
    char *s = calloc((size_t)n, 16);
    unsigned x = seed * 2654435761u + 1;
    for (int i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        strcat(s, vocab[(x >> 16) % 30]);
        strcat(s, i + 1 < n ? " " : "?");
    }
    return s;
}

static void test_near_dups(void **st) {
    (void)st;
    enum { N = 40 };
    char *t[N];
    for (int i = 0; i < N; i++) t[i] = words_text((unsigned)i + 100, 60);
    /* t[30..39]: copies of t[0..9] with one word changed, and with different case/spacing */
    for (int i = 30; i < N; i++) {
        free(t[i]);
        t[i] = malloc(strlen(t[i - 30]) + 64);
        strcpy(t[i], t[i - 30]);
        char *sp = strchr(t[i] + strlen(t[i]) / 2, ' ');
        memcpy(sp + 1, "XYZZY", 5); /* overwrites part of one word: a different word */
        if (i % 2) for (char *p = t[i]; *p; p++) if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32);
    }
    long dup[N];
    s1c_err err = {{0}};
    assert_int_equal(cur_near_dups((const char *const *)t, N, 0.8, dup, &err), 0);
    for (int i = 0; i < 30; i++)
        if (dup[i] != -1) fail_msg("novel text %d marked a duplicate of %ld", i, dup[i]);
    for (int i = 30; i < N; i++)
        if (dup[i] != i - 30) fail_msg("text %d: dup_of %ld, expected %d", i, dup[i], i - 30);
    /* a very different threshold: 1.0 means only identical shingle sets */
    assert_int_equal(cur_near_dups((const char *const *)t, N, 1.0, dup, &err), 0);
    for (int i = 0; i < N; i++) assert_int_equal(dup[i], -1);
    for (int i = 0; i < N; i++) free(t[i]);
}

/* ------------------------------------------------------------------ pools */

static cur_pool parse(const char *text) {
    cur_pool p;
    s1c_err err = {{0}};
    if (cur_pool_parse(&p, "pool.jsonl", text, strlen(text), NULL, &err)) fail_msg("parse: %s", err.msg);
    return p;
}

static void test_pool_bad_input(void **st) {
    (void)st;
    const char *text =
        "{\"id\":\"a\",\"question\":\"Q1\",\"solution\":\"1\",\"x\":[1,2]}\n"
        "\n"
        "{\"id\":\"a\",\"question\":\"Q2\"}\n"                 /* line 3: duplicate id */
        "{\"question\":\"Q3\"}\n"                             /* line 4: no id -> "4" */
        "{\"id\":7,\"question\":\"Q4\"}\n"                    /* numeric id */
        "not json\n"                                          /* line 6 */
        "[1,2]\n"                                             /* line 7: not an object */
        "{\"id\":\"e\",\"question\":\"\"}\n"                  /* line 8: empty question */
        "{\"id\":\"f\",\"question\":42}\n"                    /* line 9: not a string */
        "{\"id\":\"g\",\"question\":\"caf\xe9\"}\n"           /* line 10: not UTF-8 */
        "{\"id\":\"h\",\"question\":\"ok\",\"meta\":{\"k\":\"\xff\"}}\n" /* line 11: nested */
        "{\"id\":\"i\",\"question\":\"last, no newline\"}";
    cur_pool p = parse(text);
    assert_int_equal(p.n, 11);
    struct { const char *id, *kind, *reason_part; } want[] = {
        {"a", NULL, NULL}, {"a", "duplicate_id", "pool.jsonl:3: duplicate id 'a' (first on line 1)"}, {"4", NULL, NULL}, {"7", NULL, NULL},
        {"6", "not_json", "pool.jsonl:6: not a JSON object"}, {"7", "not_json", "pool.jsonl:7"},
        {"e", "missing_question", "no non-empty field 'question'"}, {"f", "missing_question", "no string field"},
        {"g", "invalid_utf8", "pool.jsonl:10: field 'question' is not valid UTF-8"}, {"h", "invalid_utf8", "'k'"}, {"i", NULL, NULL},
    };
    for (size_t i = 0; i < p.n; i++) {
        assert_string_equal(p.r[i].id, want[i].id);
        if (!want[i].kind) { assert_null(p.r[i].stage); continue; }
        assert_string_equal(p.r[i].stage, "load");
        assert_string_equal(p.r[i].kind, want[i].kind);
        if (!strstr(p.r[i].reason, want[i].reason_part)) fail_msg("reason '%s' lacks '%s'", p.r[i].reason, want[i].reason_part);
    }
    /* a record written back keeps every field; a bad one gets its reason and valid UTF-8 */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_true(cur_write_rec(f, &p.r[0]));
    assert_true(cur_write_rec(f, &p.r[8]));
    fclose(f);
    assert_non_null(strstr(buf, "\"x\":[1,2]"));
    assert_non_null(strstr(buf, "caf\xEF\xBF\xBD"));
    assert_non_null(strstr(buf, "\"drop_stage\":\"load\""));
    assert_true(cur_utf8_valid(buf, len));
    free(buf);
    cur_pool_free(&p);
    /* a line that is only garbage bytes: not JSON, still a record with a printable raw copy */
    p = parse("\x01\x02\xff\xfe\n");
    assert_int_equal(p.n, 1);
    assert_string_equal(p.r[0].kind, "not_json");
    cur_pool_free(&p);
}

static void test_trace(void **st) {
    (void)st;
    cur_pool p = parse("{\"question\":\"q\",\"thinking_trajectories\":[\"  a\",\"b \"]}\n"
                       "{\"question\":\"q\",\"thinking_trajectories\":\"\\n just one \\n\"}\n"
                       "{\"question\":\"q\",\"thinking_trajectories\":[1]}\n"
                       "{\"question\":\"q\"}\n");
    char *t = cur_trace(&p.r[0], "thinking_trajectories");
    assert_string_equal(t, "a\nb"); /* joined with "\n", stripped, as s1 builds the sample */
    free(t);
    t = cur_trace(&p.r[1], "thinking_trajectories");
    assert_string_equal(t, "just one");
    free(t);
    assert_null(cur_trace(&p.r[2], "thinking_trajectories"));
    assert_null(cur_trace(&p.r[3], "thinking_trajectories"));
    cur_pool_free(&p);
    /* the fallback token count: letter runs, single digits, single symbols */
    assert_int_equal(cur_count_tokens(NULL, "x^2 + 3x = 12", 13), 9);
    assert_int_equal(cur_count_tokens(NULL, "Wait, so", 8), 3);
    assert_int_equal(cur_count_tokens(NULL, "", 0), 0);
}

/* ------------------------------------------------------------------ decontamination */

static void test_decontam_math500(void **st) {
    (void)st;
    eval_bench b;
    s1c_err err = {{0}};
    assert_int_equal(eval_bench_builtin(&b, "math500", &err), 0);
    cur_decontam *d;
    assert_int_equal(cur_decontam_new(&d, 8, &err), 0);
    for (int i = 0; i < b.n; i++) assert_int_equal(cur_decontam_add(d, "math500", b.p[i].question, &err), 0);
    assert_true(cur_decontam_size(d) > 10000);
    /* every MATH500 problem, as is, in other case, and inside a longer question */
    for (int i = 0; i < b.n; i++) {
        const char *q = b.p[i].question;
        if (!cur_decontam_match(d, q)) fail_msg("MATH500 problem %d not matched: %.80s", i, q);
        char *up = malloc(strlen(q) + 64);
        sprintf(up, "Solve this problem. %s", q);
        for (char *c = up; *c; c++) if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 32);
        uint64_t *w;
        size_t nw;
        assert_int_equal(cur_ngrams(q, 1, &w, &nw, &err), 0);
        free(w);
        if (nw >= 3 && !cur_decontam_match(d, up)) fail_msg("MATH500 problem %d (prefixed, upper case) not matched", i);
        free(up);
    }
    /* novel questions (written here, no paraphrases) are kept */
    static const char *novel[] = {
        "A frog hops along a line of 17 lily pads, jumping one or two pads at a time; in how many ways can it reach the last pad?",
        "Let $f(x) = x^3 - 7x + 6$. Compute the sum of the squares of the roots of $f$.",
        "Twelve knights sit at a round table. How many ways can three be chosen so that no two are neighbours?",
        "What is the remainder when $3^{2025}$ is divided by $1000$?",
        "Find all pairs of positive integers $(m, n)$ with $m^2 - n^2 = 2025$.",
    };
    for (size_t i = 0; i < sizeof novel / sizeof novel[0]; i++)
        if (cur_decontam_match(d, novel[i])) fail_msg("novel question %zu matched", i);
    for (unsigned s = 0; s < 300; s++) {
        char *t = words_text(s + 5000, 30);
        if (cur_decontam_match(d, t)) fail_msg("random question %u matched", s);
        free(t);
    }
    cur_decontam_free(d);
    eval_bench_free(&b);
    /* a short evaluation text (fewer than 8 words) still catches an identical question */
    assert_int_equal(cur_decontam_new(&d, 8, &err), 0);
    assert_int_equal(cur_decontam_add(d, "tiny", "Compute 2+2.", &err), 0);
    assert_non_null(cur_decontam_match(d, "compute   2+2."));
    assert_null(cur_decontam_match(d, "Compute 2+3."));
    assert_null(cur_decontam_match(d, "First compute 2+2. Then add 5.")); /* 2 words: identical only */
    assert_int_equal(cur_decontam_add(d, "tiny", "Simplify $\\sqrt{242}$ please.", &err), 0);
    assert_non_null(cur_decontam_match(d, "First simplify $\\sqrt{242}$ please. Then add 5.")); /* 3 words in a row */
    cur_decontam_free(d);
}

static void test_decontam_file(void **st) {
    (void)st;
    char *path = tu_path("S1C_TMP", "curate_gpqa.jsonl");
    const char *text = "{\"Question\":\"Which of the following is the strongest acid in water at room temperature and pressure?\",\"Correct Answer\":\"HI\"}\n";
    assert_int_equal(tu_write(path, text, strlen(text)), 0);
    cur_decontam *d;
    s1c_err err = {{0}};
    assert_int_equal(cur_decontam_new(&d, 8, &err), 0);
    assert_int_equal(cur_decontam_add_file(d, path, "Question", &err), 0);
    const char *hit = cur_decontam_match(d, "Quick: which of the following is the strongest acid in water at room temperature?");
    assert_non_null(hit);
    assert_string_equal(hit, path);
    assert_int_equal(cur_decontam_add_file(d, path, "Nope", &err), -1);
    assert_non_null(strstr(err.msg, ":1: no string field 'Nope'"));
    assert_int_equal(tu_write(path, "{\"problem\":\"a b c d e f g h i\"}\nnot json\n", 40), 0);
    assert_int_equal(cur_decontam_add_file(d, path, NULL, &err), -1);
    assert_non_null(strstr(err.msg, ":2: not a JSON object"));
    assert_non_null(cur_decontam_match(d, "z a b c d e f g h")); /* line 1 went in (field guessed) */
    assert_int_equal(tu_write(path, "{\"text\":\"x\"}\n", 13), 0);
    assert_int_equal(cur_decontam_add_file(d, path, NULL, &err), -1);
    assert_non_null(strstr(err.msg, ":1: no string field question, problem"));
    cur_decontam_free(d);
    free(path);
}

/* ------------------------------------------------------------------ sampler */

/* Chi-square statistic of observed counts against expected probabilities. */
static double chi2(const double *obs, const double *p, int k, double n) {
    double s = 0;
    for (int i = 0; i < k; i++) s += (obs[i] - n * p[i]) * (obs[i] - n * p[i]) / (n * p[i]);
    return s;
}

static void test_sampler_statistics(void **st) {
    (void)st;
    /* 4 domains of unequal sizes; lengths distinct so ranks are well defined */
    enum { N = 4 + 10 + 40 + 200, SEEDS = 20000 };
    const char *dom[N];
    long len[N];
    static const char *names[4] = {"a", "b", "c", "d"};
    static const int size[4] = {4, 10, 40, 200};
    int at = 0;
    for (int d = 0; d < 4; d++)
        for (int i = 0; i < size[d]; i++) {
            dom[at] = names[d];
            len[at] = 1000 + (long)((i * 7919) % size[d]) * 3; /* a shuffled order: rank != index */
            at++;
        }
    /* first pick over many seeds: domain uniform, rank r with P = 2^-(r+1) (truncated) */
    double dcount[4] = {0}, rcount[4][6] = {{0}};
    for (uint64_t seed = 0; seed < SEEDS; seed++) {
        size_t pick;
        assert_int_equal(cur_sample(dom, len, N, 1, seed, &pick), 1);
        int d = 0;
        while (strcmp(dom[pick], names[d])) d++;
        dcount[d]++;
        int rank = 0; /* items of the domain longer than the pick, or as long with a lower index */
        for (int i = 0; i < N; i++)
            if (dom[i] == dom[pick] && (len[i] > len[pick] || (len[i] == len[pick] && i < (int)pick))) rank++;
        rcount[d][rank < 5 ? rank : 5]++;
    }
    double pu[4] = {0.25, 0.25, 0.25, 0.25};
    double c = chi2(dcount, pu, 4, SEEDS);
    if (c > 16.27) fail_msg("domain frequencies not uniform: chi2 %.1f (df 3, p 0.001 bound 16.27): %g %g %g %g", c, dcount[0], dcount[1], dcount[2], dcount[3]);
    for (int d = 0; d < 4; d++) {
        /* expected rank probabilities in a domain of m items: 2^-(r+1) / (1 - 2^-m), tail lumped */
        double m = size[d], norm = 1 - pow(2, -m), p[6], tail = 1;
        int k = size[d] < 6 ? size[d] : 6;
        for (int r = 0; r < k - 1; r++) { p[r] = pow(2, -(r + 1)) / norm; tail -= p[r]; }
        p[k - 1] = tail;
        double c2 = chi2(rcount[d], p, k, dcount[d]);
        /* df k-1 <= 5; 20.5 is the p = 0.001 bound for df 5 */
        if (c2 > 20.5) fail_msg("domain %s: ranks do not follow 2^-rank: chi2 %.1f; counts %g %g %g %g %g %g", names[d], c2,
                                rcount[d][0], rcount[d][1], rcount[d][2], rcount[d][3], rcount[d][4], rcount[d][5]);
    }
    /* a whole selection: domains are drawn uniformly until they run out, so the small domain
     * is exhausted and the rest split evenly: k = 64 -> a 4, b 10, c ~25, d ~25 */
    double tot[4] = {0};
    for (uint64_t seed = 0; seed < 500; seed++) {
        size_t pick[64];
        assert_int_equal(cur_sample(dom, len, N, 64, seed, pick), 64);
        for (int i = 0; i < 64; i++) {
            int d = 0;
            while (strcmp(dom[pick[i]], names[d])) d++;
            tot[d]++;
        }
        for (int i = 0; i < 64; i++)
            for (int j = 0; j < i; j++) assert_true(pick[i] != pick[j]); /* without replacement */
    }
    assert_true(fabs(tot[0] / 500 - 4) < 1e-9);
    assert_true(fabs(tot[1] / 500 - 10) < 0.05);
    assert_true(fabs(tot[2] / 500 - 25) < 0.6 && fabs(tot[3] / 500 - 25) < 0.6);
}

static void test_sampler_determinism(void **st) {
    (void)st;
    const char *dom[50];
    long len[50];
    for (int i = 0; i < 50; i++) { dom[i] = i % 3 ? "x" : "y"; len[i] = (i * 37) % 50; }
    size_t a[20], b[20], c[20];
    assert_int_equal(cur_sample(dom, len, 50, 20, 42, a), 20);
    assert_int_equal(cur_sample(dom, len, 50, 20, 42, b), 20);
    assert_int_equal(cur_sample(dom, len, 50, 20, 43, c), 20);
    assert_memory_equal(a, b, sizeof a);
    assert_true(memcmp(a, c, sizeof a) != 0);
    /* more asked than available: everything, once */
    size_t all[60];
    assert_int_equal(cur_sample(dom, len, 50, 60, 1, all), 50);
    int seen[50] = {0};
    for (int i = 0; i < 50; i++) seen[all[i]]++;
    for (int i = 0; i < 50; i++) assert_int_equal(seen[i], 1);
    assert_int_equal(cur_sample(dom, len, 0, 5, 1, all), 0);
    /* one domain, all lengths equal: the rank order is the pool order */
    long same[8] = {5, 5, 5, 5, 5, 5, 5, 5};
    const char *one[8] = {"z", "z", "z", "z", "z", "z", "z", "z"};
    size_t first0 = 0;
    for (uint64_t s = 0; s < 4000; s++) {
        size_t p;
        cur_sample(one, same, 8, 1, s, &p);
        first0 += p == 0;
    }
    assert_true(first0 > 1800 && first0 < 2200); /* P(rank 0) = 0.5 / (1 - 2^-8) */
}

/* ------------------------------------------------------------------ replies, MSC, journal */

static void split(const char *content, const char *reasoning, const char *want_r, const char *want_a) {
    char *r, *a;
    s1c_err err = {{0}};
    assert_int_equal(distill_split(content, reasoning, &r, &a, &err), 0);
    if (strcmp(r, want_r) || strcmp(a, want_a)) fail_msg("split(%s): got [%s] [%s], want [%s] [%s]", content, r, a, want_r, want_a);
    free(r);
    free(a);
}

static void test_distill_split(void **st) {
    (void)st;
    split("<think>\nLet me see.\n</think>\n\nThe answer is 4.", NULL, "Let me see.", "The answer is 4.");
    split("Let me see.\n</think>\n4", NULL, "Let me see.", "4"); /* R1 without the opening tag */
    split("The answer is 4.", "I added 2 and 2.", "I added 2 and 2.", "The answer is 4.");
    split("<think>x</think>4", "from the field", "from the field", "4");
    split("just an answer", NULL, "", "just an answer");
    split("", NULL, "", "");
    split("</think> <think>weird", NULL, "", "<think>weird"); /* an empty reasoning before the close */
}

static void test_msc(void **st) {
    (void)st;
    cur_msc m;
    s1c_err err = {{0}};
    assert_int_equal(cur_msc_load(&m, &err), 0);
    assert_int_equal(m.n, 61);
    assert_string_equal(m.code[0], "03");
    assert_string_equal(m.title[1], "Combinatorics");
    int comb = 1;
    assert_int_equal(cur_msc_parse_reply(&m, "05"), comb);
    assert_int_equal(cur_msc_parse_reply(&m, "Code: 05 (Combinatorics)"), comb);
    assert_int_equal(cur_msc_parse_reply(&m, "Maybe 11, but in the end: **05**"), comb); /* the last code named */
    assert_int_equal(cur_msc_parse_reply(&m, "2005"), -1);  /* not a standalone two-digit number */
    assert_int_equal(cur_msc_parse_reply(&m, "99"), -1);    /* not a code of the list */
    assert_int_equal(cur_msc_parse_reply(&m, "no idea"), -1);
    char *p = cur_msc_prompt(&m, "How many subsets does a 5-set have?");
    assert_non_null(strstr(p, "### Combinatorics\n* Code: 05"));
    assert_non_null(strstr(p, "How many subsets"));
    free(p);
    cur_msc_free(&m);
    assert_int_equal(cur_msc_parse(&m, "[{\"code\":\"01\"}]", 15, &err), -1);
    assert_int_equal(cur_msc_parse(&m, "{}", 2, &err), -1);
}

static void test_journal(void **st) {
    (void)st;
    char *path = tu_path("S1C_TMP", "curate_journal.jsonl");
    unlink(path);
    cur_journal *j;
    cJSON *lines;
    s1c_err err = {{0}};
    assert_int_equal(cur_journal_open(&j, path, &lines, &err), 0);
    assert_int_equal(cJSON_GetArraySize(lines), 0);
    cJSON_Delete(lines);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", "a");
    assert_int_equal(cur_journal_append(j, o, &err), 0);
    assert_int_equal(cur_journal_append(j, o, &err), 0);
    cur_journal_close(j);
    cJSON_Delete(o);
    /* a torn last line (a kill during a write) is cut; the next line starts clean */
    FILE *f = fopen(path, "a");
    fputs("{\"id\":\"to", f);
    fclose(f);
    assert_int_equal(cur_journal_open(&j, path, &lines, &err), 0);
    assert_int_equal(cJSON_GetArraySize(lines), 2);
    cJSON_Delete(lines);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", "b");
    assert_int_equal(cur_journal_append(j, o, &err), 0);
    cJSON_Delete(o);
    cur_journal_close(j);
    size_t len;
    char *text = tu_read(path, &len);
    assert_string_equal(text, "{\"id\":\"a\"}\n{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
    free(text);
    free(path);
}

/* ------------------------------------------------------------------ a whole run */

static void test_run_precomputed(void **st) {
    (void)st;
    /* custom field names; ref_correct precomputed; one MATH500 problem; a failed teacher call */
    eval_bench b;
    s1c_err err = {{0}};
    assert_int_equal(eval_bench_builtin(&b, "math500", &err), 0);
    cur_decontam *d;
    assert_int_equal(cur_decontam_new(&d, 8, &err), 0);
    for (int i = 0; i < b.n; i++) cur_decontam_add(d, "math500", b.p[i].question, &err);
    cJSON *pool = cJSON_CreateArray();
    char *text = NULL;
    size_t tl = 0;
    FILE *f = open_memstream(&text, &tl);
    for (int i = 0; i < 30; i++) {
        char *q = words_text((unsigned)i + 9000, 25);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "uid", (char[16]){0});
        char id[16];
        snprintf(id, sizeof id, "u%d", i);
        cJSON_ReplaceItemInObject(o, "uid", cJSON_CreateString(id));
        cJSON_AddStringToObject(o, "problem", q);
        cJSON_AddStringToObject(o, "gold", "1");
        cJSON_AddStringToObject(o, "subject", i % 2 ? "11" : "05");
        cJSON_AddStringToObject(o, "trace", i == 5 ? "" : "think think think");
        cJSON_AddStringToObject(o, "final", "1");
        cJSON_AddBoolToObject(o, "ref_correct", i % 3 == 0);
        cJSON_AddNumberToObject(o, "keep_me", i);
        if (i == 7) cJSON_AddStringToObject(o, "distill_error", "HTTP 500 after 5 tries");
        char *s = cJSON_PrintUnformatted(o);
        fprintf(f, "%s\n", s);
        free(s);
        free(q);
        cJSON_Delete(o);
    }
    cJSON *mq = cJSON_CreateString(b.p[17].question);
    char *mqs = cJSON_PrintUnformatted(mq);
    fprintf(f, "{\"uid\":\"m\",\"problem\":%s,\"gold\":\"1\",\"subject\":\"05\",\"trace\":\"t\",\"ref_correct\":false}\n", mqs);
    free(mqs);
    cJSON_Delete(mq);
    fclose(f);
    cJSON_Delete(pool);
    cur_fields fl = {.id = "uid", .question = "problem", .solution = "gold", .source = "src", .domain = "subject",
                     .trajectories = "trace", .attempt = "final"};
    cur_pool p;
    assert_int_equal(cur_pool_parse(&p, "pool", text, tl, &fl, &err), 0);
    char *dir = tu_path("S1C_TMP", "curate_run");
    tu_system("rm -rf '%s'", dir);
    cur_opts o = {.out_dir = dir, .k = 8, .seed = 3, .decontam = d, .near_dup = 0.8, .concurrency = 1, .quiet = true};
    if (cur_run(&p, &o, &err)) fail_msg("run: %s", err.msg);
    /* stage accounting: 31 in; decontam 1; quality: empty trace + teacher failure; difficulty: ref_correct true (i%3==0, i != 7...) */
    size_t contaminated = 0, failed = 0, empty = 0, solved = 0, selected = 0;
    for (size_t i = 0; i < p.n; i++) {
        cur_rec *r = &p.r[i];
        if (!r->stage) { selected++; continue; }
        if (!strcmp(r->kind, "contaminated")) contaminated++;
        if (!strcmp(r->kind, "teacher_failed")) failed++;
        if (!strcmp(r->kind, "empty_trace")) empty++;
        if (!strcmp(r->kind, "solved")) solved++;
    }
    assert_int_equal(contaminated, 1);
    assert_int_equal(failed, 1);
    assert_int_equal(empty, 1);
    assert_int_equal(solved, 10); /* i = 0, 3, ..., 27 */
    assert_int_equal(selected, 8);
    /* s1k.jsonl: s1K's names, the list form, extra fields kept */
    char *sp = tu_path("S1C_TMP", "curate_run/s1k.jsonl");
    char *out = tu_read(sp, NULL);
    assert_non_null(out);
    int lines = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        cJSON *r = cJSON_Parse(line);
        assert_non_null(r);
        assert_true(cJSON_IsString(cJSON_GetObjectItem(r, "question")));
        assert_true(cJSON_IsString(cJSON_GetObjectItem(r, "solution")));
        assert_true(cJSON_IsArray(cJSON_GetObjectItem(r, "thinking_trajectories")));
        assert_true(cJSON_IsString(cJSON_GetObjectItem(r, "attempt")));
        assert_true(cJSON_IsString(cJSON_GetObjectItem(r, "domain")));
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(r, "keep_me")));
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(r, "trace_tokens")));
        assert_null(cJSON_GetObjectItem(r, "problem"));
        cJSON_Delete(r);
    }
    assert_int_equal(lines, 8);
    free(out);
    free(sp);
    /* every stage wrote its files; stats has one line per stage */
    static const char *files[] = {"0-load.dropped.jsonl", "1-decontam.kept.jsonl", "1-decontam.dropped.jsonl", "2-quality.dropped.jsonl",
                                  "3-difficulty.dropped.jsonl", "4-domain.kept.jsonl", "5-diversity.dropped.jsonl", "summary.json", "curate.svg"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "curate_run/%s", files[i]);
        char *fp = tu_path("S1C_TMP", rel);
        if (access(fp, R_OK)) fail_msg("missing %s", fp);
        free(fp);
    }
    /* no precomputed verdicts and no reference model: a clear error up front */
    cur_pool_free(&p);
    const char *one = "{\"problem\":\"q\",\"trace\":\"t\",\"subject\":\"05\"}\n";
    assert_int_equal(cur_pool_parse(&p, "pool", one, strlen(one), &fl, &err), 0);
    assert_int_equal(cur_run(&p, &o, &err), -1);
    assert_non_null(strstr(err.msg, "no ref_correct"));
    cur_pool_free(&p);
    /* no domain and no classifier: refused before any work too */
    one = "{\"problem\":\"q\",\"trace\":\"t\",\"ref_correct\":false}\n";
    assert_int_equal(cur_pool_parse(&p, "pool", one, strlen(one), &fl, &err), 0);
    assert_int_equal(cur_run(&p, &o, &err), -1);
    assert_non_null(strstr(err.msg, "no 'subject' and no classifier"));
    cur_pool_free(&p);
    free(text);
    free(dir);
    cur_decontam_free(d);
    eval_bench_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_filters), cmocka_unit_test(test_normalize), cmocka_unit_test(test_near_dups),
        cmocka_unit_test(test_pool_bad_input), cmocka_unit_test(test_trace), cmocka_unit_test(test_decontam_math500),
        cmocka_unit_test(test_decontam_file), cmocka_unit_test(test_sampler_statistics), cmocka_unit_test(test_sampler_determinism),
        cmocka_unit_test(test_distill_split), cmocka_unit_test(test_msc), cmocka_unit_test(test_journal),
        cmocka_unit_test(test_run_precomputed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
