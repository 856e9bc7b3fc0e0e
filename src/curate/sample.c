/* The diversity sampler of SPEC.md §1.3 (s1's paper algorithm): uniform over domains, then
 * within the domain rank by trace length (longest first) and pick rank r with probability
 * proportional to 2^-r. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "curate_internal.h"

typedef struct item {
    const char *domain;
    long len;
    size_t idx;
} item;

static int cmp_item(const void *a, const void *b) {
    const item *x = a, *y = b;
    int c = strcmp(x->domain, y->domain);
    if (c) return c;
    if (x->len != y->len) return x->len > y->len ? -1 : 1; /* longest first */
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Uniform in [0, m) without modulo bias. */
static size_t uniform_below(s1c_rng *r, size_t m) {
    uint64_t lim = UINT64_MAX - UINT64_MAX % m, x;
    do x = s1c_rng_u64(r);
    while (x >= lim);
    return (size_t)(x % m);
}

/* Rank r in [0, m) with P(r) = 2^-(r+1) / (1 - 2^-m): invert the truncated geometric CDF
 * F(r) = 1 - 2^-(r+1) at a uniform u scaled into [0, F(m-1)). */
static size_t geometric_rank(s1c_rng *r, size_t m) {
    double u = (double)(s1c_rng_u64(r) >> 11) * 0x1p-53;
    double top = m >= 1074 ? 1.0 : 1.0 - ldexp(1.0, -(int)m);
    double v = u * top;
    size_t k = (size_t)floor(-log2(1.0 - v));
    return k < m ? k : m - 1;
}

size_t cur_sample(const char *const *domains, const long *lengths, size_t n, size_t k, uint64_t seed, size_t *picked) {
    if (n == 0 || k == 0) return 0;
    item *it = malloc(n * sizeof *it);
    size_t *start = malloc((n + 1) * sizeof *start), *head = malloc(n * sizeof *head), *left = malloc(n * sizeof *left),
           *live = malloc(n * sizeof *live);
    char *gone = calloc(n, 1);
    size_t got = 0;
    if (!it || !start || !head || !left || !live || !gone) goto out;
    for (size_t i = 0; i < n; i++) it[i] = (item){domains[i] ? domains[i] : "", lengths[i], i};
    qsort(it, n, sizeof *it, cmp_item);
    /* domains as runs of it[]: run d is it[start[d] .. start[d + 1]); its remaining items, in rank
     * order, are those not gone from head[d] on (picks are near the front, so a walk is short) */
    size_t nd = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(it[i].domain, it[i - 1].domain)) start[nd++] = i;
    start[nd] = n;
    for (size_t d = 0; d < nd; d++) { head[d] = start[d]; left[d] = start[d + 1] - start[d]; live[d] = d; }
    size_t n_live = nd;
    s1c_rng rng;
    s1c_rng_seed(&rng, seed);
    while (got < k && n_live > 0) {
        size_t li = uniform_below(&rng, n_live), d = live[li];
        size_t r = geometric_rank(&rng, left[d]), j = head[d];
        for (size_t seen = 0;; j++)
            if (!gone[j] && seen++ == r) break;
        picked[got++] = it[j].idx;
        gone[j] = 1;
        while (head[d] < start[d + 1] && gone[head[d]]) head[d]++;
        if (--left[d] == 0) live[li] = live[--n_live]; /* the order of live domains does not bias: the draw is uniform */
    }
out:
    free(it); free(start); free(head); free(left); free(live); free(gone);
    return got;
}
