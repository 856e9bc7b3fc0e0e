/* Quality (SPEC.md §1.1): formatting problems left by broken scraping and templates, and
 * exact / near duplicate questions. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curate_internal.h"

static bool contains_ci(const char *s, const char *needle) {
    size_t n = strlen(needle);
    for (; *s; s++)
        if (!strncasecmp(s, needle, n)) return true;
    return false;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* s1's regex \*\*(?=.*\d)[^\s\]]*\*\* (bold text containing digits, left over from markdown),
 * by hand: at a "**", a digit must follow on the same line (the lookahead), and the run of
 * characters that are neither space nor ']' after it must contain another "**". */
static bool bold_with_digits(const char *q) {
    for (const char *p = strstr(q, "**"); p; p = strstr(p + 1, "**")) {
        const char *s = p + 2;
        bool digit = false;
        for (const char *t = s; *t && *t != '\n' && *t != '\r'; t++)
            if (isdigit((unsigned char)*t)) { digit = true; break; }
        if (!digit) continue;
        for (const char *t = s; *t && !is_space(*t) && *t != ']'; t++)
            if (t[0] == '*' && t[1] == '*') return true;
    }
    return false;
}

const char *cur_format_problem(const char *q, const char *source) {
    if (strstr(q, "[asy]") && !(source && contains_ci(source, "aime"))) return "[asy] figure (only AIME questions keep them)";
    if (contains_ci(q, "![image]") || strstr(q, "![](")) return "reference to a missing image";
    if (strstr(q, "p{i}.")) return "template residue 'p{i}.'";
    if (bold_with_digits(q)) return "markdown bold with digits";
    return NULL;
}

/* ------------------------------------------------------------------ near duplicates */

#define SHINGLE 5
#define N_HASH 128
#define BANDS 32 /* of N_HASH / BANDS = 4 rows: pairs at Jaccard 0.8 collide in a band with p ~ 1 - (1-0.8^4)^32 ~ 1 */

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sorted unique shingle hashes. */
static int shingles(const char *text, uint64_t **out, size_t *n, s1c_err *err) {
    if (cur_ngrams(text, SHINGLE, out, n, err)) return -1;
    if (!*n) return 0;
    qsort(*out, *n, sizeof **out, cmp_u64);
    size_t k = 1;
    for (size_t i = 1; i < *n; i++)
        if ((*out)[i] != (*out)[k - 1]) (*out)[k++] = (*out)[i];
    *n = k;
    return 0;
}

static double jaccard(const uint64_t *a, size_t na, const uint64_t *b, size_t nb) {
    size_t i = 0, j = 0, inter = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) { inter++; i++; j++; }
        else if (a[i] < b[j]) i++;
        else j++;
    }
    size_t uni = na + nb - inter;
    return uni ? (double)inter / (double)uni : 1.0;
}

int cur_near_dups(const char *const *texts, size_t n, double threshold, long *dup_of, s1c_err *err) {
    uint64_t **sh = calloc(n ? n : 1, sizeof *sh);
    size_t *nsh = calloc(n ? n : 1, sizeof *nsh);
    cur_map *bands = calloc(BANDS, sizeof *bands);
    /* one chain per band bucket: next[i * BANDS + b] = the previous record in i's bucket */
    long *next = malloc((n ? n : 1) * BANDS * sizeof *next);
    int rc = 0;
    if (!sh || !nsh || !bands || !next) { rc = s1c_fail(err, "out of memory"); goto out; }
    for (size_t i = 0; i < n && rc == 0; i++) {
        dup_of[i] = -1;
        rc = shingles(texts[i], &sh[i], &nsh[i], err);
        if (rc || !nsh[i]) continue;
        uint64_t sig[N_HASH];
        for (int h = 0; h < N_HASH; h++) {
            uint64_t best = UINT64_MAX, salt = mix((uint64_t)h + 1);
            for (size_t s = 0; s < nsh[i]; s++) {
                uint64_t v = mix(sh[i][s] ^ salt);
                if (v < best) best = v;
            }
            sig[h] = best;
        }
        for (int b = 0; b < BANDS; b++) {
            uint64_t key = cur_hash(&sig[b * (N_HASH / BANDS)], sizeof(uint64_t) * (N_HASH / BANDS), 0x1234567ull + (uint64_t)b);
            size_t head;
            long prev = cur_map_get(&bands[b], key, &head) ? (long)head : -1;
            /* candidates: every earlier record in this bucket */
            for (long c = prev; c >= 0 && dup_of[i] < 0; c = next[(size_t)c * BANDS + (size_t)b])
                if (dup_of[c] < 0 && jaccard(sh[i], nsh[i], sh[c], nsh[c]) >= threshold) dup_of[i] = c;
            next[i * BANDS + (size_t)b] = prev;
            if (cur_map_set(&bands[b], key, i)) { /* the bucket head becomes i */
                rc = s1c_fail(err, "out of memory");
                break;
            }
        }
    }
out:
    if (sh)
        for (size_t i = 0; i < n; i++) free(sh[i]);
    if (bands)
        for (int b = 0; b < BANDS; b++) cur_map_free(&bands[b]);
    free(sh); free(nsh); free(bands); free(next);
    return rc;
}
