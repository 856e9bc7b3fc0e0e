/* Small pieces the data layer shares: a 64-bit-keyed map, a string builder, UTF-8 checks,
 * hashing, word n-grams and the token-count fallback. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curate_internal.h"

/* ------------------------------------------------------------------ map */

static size_t slot_of(uint64_t key, size_t cap) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 7) & (cap - 1); }

static int map_grow(cur_map *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    uint64_t *k = calloc(cap, sizeof *k);
    size_t *v = malloc(cap * sizeof *v);
    if (!k || !v) { free(k); free(v); return -1; }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->key[i]) continue;
        size_t s = slot_of(m->key[i], cap);
        while (k[s]) s = (s + 1) & (cap - 1);
        k[s] = m->key[i];
        v[s] = m->val[i];
    }
    free(m->key);
    free(m->val);
    m->key = k;
    m->val = v;
    m->cap = cap;
    return 0;
}

static int map_insert(cur_map *m, uint64_t key, size_t val, bool replace) {
    if (key == 0) {
        if (!m->has_zero || replace) m->zero_val = val;
        m->has_zero = true;
        return 0;
    }
    if ((m->n + 1) * 4 > m->cap * 3 && map_grow(m)) return -1;
    size_t s = slot_of(key, m->cap);
    while (m->key[s]) {
        if (m->key[s] == key) {
            if (replace) m->val[s] = val;
            return 0;
        }
        s = (s + 1) & (m->cap - 1);
    }
    m->key[s] = key;
    m->val[s] = val;
    m->n++;
    return 0;
}

int cur_map_put(cur_map *m, uint64_t key, size_t val) { return map_insert(m, key, val, false); }
int cur_map_set(cur_map *m, uint64_t key, size_t val) { return map_insert(m, key, val, true); }

bool cur_map_get(const cur_map *m, uint64_t key, size_t *val) {
    if (key == 0) {
        if (m->has_zero && val) *val = m->zero_val;
        return m->has_zero;
    }
    if (!m->cap) return false;
    for (size_t s = slot_of(key, m->cap); m->key[s]; s = (s + 1) & (m->cap - 1))
        if (m->key[s] == key) {
            if (val) *val = m->val[s];
            return true;
        }
    return false;
}

void cur_map_free(cur_map *m) {
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ strings */

void cur_sb_put(cur_sb *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void cur_sb_printf(cur_sb *b, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof small) { cur_sb_put(b, small, (size_t)k); return; }
    char *big = malloc((size_t)k + 1);
    if (!big) { b->oom = true; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    cur_sb_put(b, big, (size_t)k);
    free(big);
}

char *cur_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}


bool cur_utf8_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = s1c_utf8_len(u + i, n - i);
        if (!k) return false;
        i += k;
    }
    return true;
}

char *cur_printable(const char *s, size_t n, size_t max) {
    cur_sb b = {0};
    const unsigned char *u = (const unsigned char *)s;
    cur_sb_put(&b, "", 0);
    for (size_t i = 0; i < n && b.len < max;) {
        size_t k = s1c_utf8_len(u + i, n - i);
        if (!k) { cur_sb_put(&b, "\xEF\xBF\xBD", 3); i++; continue; }
        if (k == 1 && (u[i] < 0x20 || u[i] == 0x7f)) cur_sb_put(&b, "?", 1);
        else cur_sb_put(&b, s + i, k);
        i += k;
    }
    if (b.oom) { free(b.p); return NULL; }
    return b.p;
}

char *cur_utf8_fix(const char *s, size_t n) {
    cur_sb b = {0};
    const unsigned char *u = (const unsigned char *)s;
    cur_sb_put(&b, "", 0);
    for (size_t i = 0; i < n;) {
        size_t k = s1c_utf8_len(u + i, n - i);
        if (!k) { cur_sb_put(&b, "\xEF\xBF\xBD", 3); i++; continue; }
        cur_sb_put(&b, s + i, k);
        i += k;
    }
    if (b.oom) { free(b.p); return NULL; }
    return b.p;
}

uint64_t cur_hash(const void *data, size_t n, uint64_t h) {
    const unsigned char *p = data;
    if (!h) h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ------------------------------------------------------------------ words */

static bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Hash of one lowercased word, mixed so that n-gram hashes combine order-sensitively. */
static uint64_t word_hash(const char *w, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)tolower((unsigned char)w[i]);
        h *= 0x100000001b3ull;
    }
    return h;
}

int cur_ngrams(const char *text, int n, uint64_t **out, size_t *n_out, s1c_err *err) {
    *out = NULL;
    *n_out = 0;
    size_t nw = 0, cap = 64;
    uint64_t *w = malloc(cap * sizeof *w);
    if (!w) return s1c_fail(err, "out of memory");
    for (const char *p = text; *p;) {
        while (*p && is_space((unsigned char)*p)) p++;
        const char *s = p;
        while (*p && !is_space((unsigned char)*p)) p++;
        if (p == s) break;
        if (nw == cap) {
            uint64_t *nwp = realloc(w, (cap *= 2) * sizeof *w);
            if (!nwp) { free(w); return s1c_fail(err, "out of memory"); }
            w = nwp;
        }
        w[nw++] = word_hash(s, (size_t)(p - s));
    }
    if (nw == 0) { free(w); return 0; }
    size_t count = nw >= (size_t)n ? nw - (size_t)n + 1 : 1, len = nw >= (size_t)n ? (size_t)n : nw;
    uint64_t *g = malloc(count * sizeof *g);
    if (!g) { free(w); return s1c_fail(err, "out of memory"); }
    for (size_t i = 0; i < count; i++) {
        uint64_t h = 0x84222325cbf29ce4ull ^ len;
        for (size_t j = 0; j < len; j++) h = (h ^ w[i + j]) * 0x9E3779B97F4A7C15ull + (h >> 29);
        g[i] = h;
    }
    free(w);
    *out = g;
    *n_out = count;
    return 0;
}

char *cur_normalize(const char *text) {
    size_t n = strlen(text);
    char *o = malloc(n + 1);
    if (!o) return NULL;
    size_t k = 0;
    bool space = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (is_space(c)) { space = k > 0; continue; }
        if (space) o[k++] = ' ';
        space = false;
        o[k++] = (char)tolower(c);
    }
    o[k] = 0;
    return o;
}

long cur_count_tokens(const s1c_tokenizer *tok, const char *text, size_t n) {
    if (tok && s1c_tok_can_encode(tok)) {
        int32_t *ids = NULL;
        int n_ids = 0;
        s1c_err e;
        if (s1c_tok_encode_ex(tok, text, n, 0, &ids, &n_ids, &e) == 0) {
            free(ids);
            return n_ids;
        }
    }
    /* fallback: letters runs (a UTF-8 multi-byte character counts as a letter), single digits,
     * single other characters */
    long count = 0;
    const unsigned char *u = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        if (is_space(c)) { i++; continue; }
        if (isalpha(c) || c >= 0x80) {
            while (i < n && (isalpha(u[i]) || u[i] >= 0x80)) i++;
        } else {
            i++;
        }
        count++;
    }
    return count;
}
