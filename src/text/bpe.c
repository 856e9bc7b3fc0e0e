/* Byte-level BPE as GPT-2 and Qwen2 define it, matching Hugging Face tokenizers:
 *   NFC normalization → split with the pre-tokenizer regex (PCRE2, Unicode classes) →
 *   each piece's bytes mapped to GPT-2's byte symbols → merges applied by rank, lowest
 *   first, leftmost on ties → token ids.
 * Merging uses a heap over adjacent pairs with lazy invalidation, so a piece of n bytes
 * costs O(n log n): a 10 MB run of letters stays linear-ish, never quadratic.
 * Bytes that are not valid UTF-8 cannot go through NFC or the regex; each becomes its own
 * piece, so any byte string encodes and decodes back unchanged. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer_internal.h"

/* GPT-2's pre-tokenizer (tokenizers' ByteLevel default; llama.cpp's "default"/"gpt2"). */
const char *const bpe_regex_gpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* Qwen2's pre-tokenizer (tokenizer.json of Qwen2/Qwen2.5; llama.cpp's "qwen2" pre type). */
const char *const bpe_regex_qwen2 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* ------------------------------------------------------------------ the GPT-2 byte map */

static bool byte_is_printable(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

/* Code point that stands for byte b: printable Latin-1 bytes for themselves, the rest
 * shifted to U+0100 upwards in byte order. */
static uint32_t byte_symbol(int b) {
    if (byte_is_printable(b)) return (uint32_t)b;
    int n = 0;
    for (int k = 0; k < b; k++) n += !byte_is_printable(k);
    return 0x100u + (uint32_t)n;
}

static int utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* ------------------------------------------------------------------ the merge table */

typedef struct merge_slot {
    uint64_t key; /* (left id << 32) | right id; 0 = empty (id pair (0,0) is stored +1) */
    int32_t rank, id;
} merge_slot;

struct bpe_data {
    merge_slot *slots;
    uint64_t mask;
    int n_merges;
    int byte_tok[256]; /* token of each byte's symbol */
    pcre2_code *re;
};

static uint64_t pair_key(int a, int b) { return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1; }

static uint64_t hash64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static const merge_slot *merge_find(const bpe_data *d, int a, int b) {
    uint64_t k = pair_key(a, b);
    for (uint64_t i = hash64(k) & d->mask;; i = (i + 1) & d->mask) {
        if (d->slots[i].key == k) return &d->slots[i];
        if (d->slots[i].key == 0) return NULL;
    }
}

/* Adds merge "left right" with the given rank; merges whose parts or result are not in the
 * vocabulary are skipped (as tokenizers does). Duplicates keep the first (lowest) rank. */
static void merge_add(s1c_tokenizer *t, const char *l, size_t ll, const char *r, size_t rl, int rank) {
    bpe_data *d = t->bpe;
    int a = tok_lookup(t, l, ll), b = tok_lookup(t, r, rl);
    if (a < 0 || b < 0) return;
    char stackbuf[256];
    char *buf = ll + rl <= sizeof stackbuf ? stackbuf : malloc(ll + rl);
    if (!buf) return;
    memcpy(buf, l, ll);
    memcpy(buf + ll, r, rl);
    int m = tok_lookup(t, buf, ll + rl);
    if (buf != stackbuf) free(buf);
    if (m < 0) return;
    uint64_t k = pair_key(a, b);
    for (uint64_t i = hash64(k) & d->mask;; i = (i + 1) & d->mask) {
        if (d->slots[i].key == k) return;
        if (d->slots[i].key == 0) {
            d->slots[i] = (merge_slot){k, rank, m};
            d->n_merges++;
            return;
        }
    }
}

int bpe_init(s1c_tokenizer *t, const char *regex, size_t n_merges_hint, s1c_err *err) {
    bpe_data *d = calloc(1, sizeof *d);
    if (!d) return s1c_fail(err, "tokenizer: out of memory");
    t->bpe = d;
    uint64_t cap = 1024;
    while (cap < 2 * (uint64_t)n_merges_hint + 16) cap *= 2;
    d->slots = calloc(cap, sizeof(merge_slot));
    if (!d->slots) return s1c_fail(err, "tokenizer: out of memory for %zu merges", n_merges_hint);
    d->mask = cap - 1;
    for (int b = 0; b < 256; b++) {
        char s[4];
        int n = utf8_encode(byte_symbol(b), s);
        d->byte_tok[b] = tok_lookup(t, s, (size_t)n);
        if (d->byte_tok[b] < 0) return s1c_fail(err, "tokenizer: the vocabulary has no token for byte 0x%02X: not a byte-level BPE vocabulary", b);
    }
    int ec;
    PCRE2_SIZE eo;
    d->re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &ec, &eo, NULL);
    if (!d->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return s1c_fail(err, "tokenizer: pre-tokenizer regex does not compile at offset %zu: %s", (size_t)eo, (char *)msg);
    }
    pcre2_jit_compile(d->re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is unavailable */
    return 0;
}

void bpe_free(bpe_data *d) {
    if (!d) return;
    free(d->slots);
    if (d->re) pcre2_code_free(d->re);
    free(d);
}

/* "a b" (merges.txt, tokenizer.json, GGUF): split at the single space that is not part of
 * either symbol — byte-level symbols never contain a space, so the first one. */
int bpe_add_merge_line(s1c_tokenizer *t, const char *line, size_t len, int rank) {
    const char *sp = memchr(line, ' ', len);
    if (!sp || sp == line || sp == line + len - 1) return -1;
    merge_add(t, line, (size_t)(sp - line), sp + 1, len - (size_t)(sp - line) - 1, rank);
    return 0;
}

int bpe_add_merge_pair(s1c_tokenizer *t, const char *l, const char *r, int rank) {
    merge_add(t, l, strlen(l), r, strlen(r), rank);
    return 0;
}

int bpe_n_merges(const s1c_tokenizer *t) { return t->bpe ? t->bpe->n_merges : 0; }

/* ------------------------------------------------------------------ merging one piece */

typedef struct sym {
    int id;
    int prev, next; /* -1 at the ends */
    bool dead;
} sym;

typedef struct cand_pair {
    int rank, left;  /* ordered by rank, then position */
    int a, b;        /* the ids it was made for (to detect stale entries) */
} cand_pair;

static bool cand_less(const cand_pair *x, const cand_pair *y) { return x->rank != y->rank ? x->rank < y->rank : x->left < y->left; }

typedef struct work {
    sym *s;
    cand_pair *heap;
    int n_heap, cap;
} work;

static void heap_push(work *w, cand_pair c) {
    int i = w->n_heap++;
    w->heap[i] = c;
    while (i > 0 && cand_less(&w->heap[i], &w->heap[(i - 1) / 2])) {
        cand_pair t = w->heap[i];
        w->heap[i] = w->heap[(i - 1) / 2];
        w->heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static cand_pair heap_pop(work *w) {
    cand_pair top = w->heap[0];
    w->heap[0] = w->heap[--w->n_heap];
    for (int i = 0;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->n_heap && cand_less(&w->heap[l], &w->heap[m])) m = l;
        if (r < w->n_heap && cand_less(&w->heap[r], &w->heap[m])) m = r;
        if (m == i) break;
        cand_pair t = w->heap[i];
        w->heap[i] = w->heap[m];
        w->heap[m] = t;
        i = m;
    }
    return top;
}

static void try_pair(const bpe_data *d, work *w, int left) {
    int right = w->s[left].next;
    if (right < 0) return;
    const merge_slot *m = merge_find(d, w->s[left].id, w->s[right].id);
    if (m) heap_push(w, (cand_pair){m->rank, left, w->s[left].id, w->s[right].id});
}

/* Short pieces (most words): rescan for the lowest (rank, position) pair after every merge.
 * Same order of merges as the heap, less bookkeeping. */
#define SHORT_PIECE 24
static int bpe_short_piece(const bpe_data *d, const uint8_t *p, int n, int32_t *out) {
    int32_t ids[SHORT_PIECE];
    for (int i = 0; i < n; i++) ids[i] = d->byte_tok[p[i]];
    for (;;) {
        const merge_slot *best = NULL;
        int at = -1;
        for (int i = 0; i + 1 < n; i++) {
            const merge_slot *m = merge_find(d, ids[i], ids[i + 1]);
            if (m && (!best || m->rank < best->rank)) { best = m; at = i; }
        }
        if (!best) break;
        ids[at] = best->id;
        memmove(ids + at + 1, ids + at + 2, (size_t)(n - at - 2) * sizeof(int32_t));
        n--;
    }
    memcpy(out, ids, (size_t)n * sizeof(int32_t));
    return n;
}

/* Encodes the bytes of one pre-token piece, appending ids to out. */
static int bpe_piece(const bpe_data *d, const uint8_t *p, int n, work *w, int32_t *out) {
    if (n <= SHORT_PIECE) return bpe_short_piece(d, p, n, out);
    for (int i = 0; i < n; i++) w->s[i] = (sym){d->byte_tok[p[i]], i - 1, i + 1 < n ? i + 1 : -1, false};
    w->n_heap = 0;
    for (int i = 0; i + 1 < n; i++) try_pair(d, w, i);
    while (w->n_heap > 0) {
        cand_pair c = heap_pop(w);
        sym *l = &w->s[c.left];
        if (l->dead || l->id != c.a || l->next < 0 || w->s[l->next].id != c.b) continue; /* stale */
        const merge_slot *m = merge_find(d, c.a, c.b);
        int r = l->next;
        l->id = m->id;
        w->s[r].dead = true;
        l->next = w->s[r].next;
        if (l->next >= 0) w->s[l->next].prev = c.left;
        if (l->prev >= 0) try_pair(d, w, l->prev);
        try_pair(d, w, c.left);
    }
    int k = 0;
    for (int i = 0; i >= 0; i = w->s[i].next) out[k++] = w->s[i].id;
    return k;
}

/* ------------------------------------------------------------------ text → pieces */

typedef struct out_ids {
    int32_t *ids;
    int n, cap;
} out_ids;

static int out_reserve(out_ids *o, int more) {
    if (o->n + more <= o->cap) return 0;
    int cap = o->cap ? o->cap : 256;
    while (cap < o->n + more) cap *= 2;
    int32_t *ni = realloc(o->ids, (size_t)cap * sizeof(int32_t));
    if (!ni) return -1;
    o->ids = ni;
    o->cap = cap;
    return 0;
}

static int ensure_work(work *w, int n) {
    if (n <= w->cap) return 0;
    int cap = w->cap ? w->cap : 64;
    while (cap < n) cap *= 2;
    sym *s = realloc(w->s, (size_t)cap * sizeof(sym));
    if (s) w->s = s;
    /* each merge pushes at most two pairs; n - 1 initial ones */
    cand_pair *h = realloc(w->heap, (size_t)cap * 3 * sizeof(cand_pair));
    if (h) w->heap = h;
    if (!s || !h) return -1;
    w->cap = cap;
    return 0;
}

static int emit_piece(const bpe_data *d, const uint8_t *p, int n, work *w, out_ids *o) {
    if (n <= 0) return 0;
    if (ensure_work(w, n) != 0 || out_reserve(o, n) != 0) return -1;
    o->n += bpe_piece(d, p, n, w, o->ids + o->n);
    return 0;
}

/* NFC-normalizes valid UTF-8 (malloc'd result). Pure-ASCII and other text below U+0300
 * is already NFC: return NULL to mean "use the input". */
static uint8_t *nfc(const uint8_t *s, size_t n, size_t *out_len, bool *oom) {
    *oom = false;
    size_t i = 0;
    while (i < n && s[i] < 0xCC) i++; /* lead bytes below 0xCC encode code points below U+0300 */
    if (i == n) return NULL;
    uint8_t *r = NULL;
    utf8proc_ssize_t len = utf8proc_map(s, (utf8proc_ssize_t)n, &r, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (len < 0) { *oom = len == UTF8PROC_ERROR_NOMEM; return NULL; }
    *out_len = (size_t)len;
    return r;
}

/* Pre-tokenizes a valid UTF-8 run and encodes every piece. Text between regex matches
 * (none with Qwen2's pattern, which covers every character) is its own piece. */
static int encode_valid(const bpe_data *d, const uint8_t *s, size_t n, work *w, out_ids *o, s1c_err *err) {
    size_t nl = 0;
    bool oom;
    uint8_t *norm = nfc(s, n, &nl, &oom);
    if (oom) return s1c_fail(err, "tokenizer: out of memory");
    if (norm) { s = norm; n = nl; }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(d->re, NULL);
    if (!md) { free(norm); return s1c_fail(err, "tokenizer: out of memory"); }
    int rc = 0;
    size_t pos = 0;
    while (pos < n && rc == 0) {
        int m = pcre2_match(d->re, s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH) { rc = emit_piece(d, s + pos, (int)(n - pos), w, o); break; }
        if (m < 0) { rc = s1c_fail(err, "tokenizer: regex match failed (%d)", m); break; }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1];
        if (a > pos) rc = emit_piece(d, s + pos, (int)(a - pos), w, o);
        if (rc == 0 && b > a) rc = emit_piece(d, s + a, (int)(b - a), w, o);
        if (b == a) { /* an empty match: step one character so the loop always advances */
            size_t step = 1;
            while (a + step < n && (s[a + step] & 0xC0) == 0x80) step++;
            if (rc == 0) rc = emit_piece(d, s + a, (int)step, w, o);
            b = a + step;
        }
        pos = b;
    }
    if (rc < 0 && err && err->msg[0] == 0) s1c_fail(err, "tokenizer: out of memory");
    pcre2_match_data_free(md);
    free(norm);
    return rc;
}

/* Length of the valid UTF-8 prefix of s (RFC 3629: no overlongs, surrogates, > U+10FFFF). */
static size_t valid_utf8_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t len = (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (len == 0 || i + len > n) break;
        bool ok = true;
        for (size_t k = 1; k < len; k++) ok &= (s[i + k] & 0xC0) == 0x80;
        if (ok && c == 0xE0) ok = s[i + 1] >= 0xA0;
        if (ok && c == 0xED) ok = s[i + 1] <= 0x9F;
        if (ok && c == 0xF0) ok = s[i + 1] >= 0x90;
        if (ok && c == 0xF4) ok = s[i + 1] <= 0x8F;
        if (!ok) break;
        i += len;
    }
    return i;
}

int bpe_encode_text(const s1c_tokenizer *t, const char *text, size_t len, int32_t **ids, int *n_ids, int *cap_ids, s1c_err *err) {
    const bpe_data *d = t->bpe;
    out_ids o = {*ids, *n_ids, *cap_ids};
    work w = {0};
    const uint8_t *s = (const uint8_t *)text;
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0;) {
        size_t v = valid_utf8_prefix(s + i, len - i);
        if (v > 0) {
            rc = encode_valid(d, s + i, v, &w, &o, err);
            i += v;
        } else { /* one byte that is not UTF-8: its own piece */
            rc = emit_piece(d, s + i, 1, &w, &o);
            if (rc != 0) s1c_fail(err, "tokenizer: out of memory");
            i++;
        }
    }
    free(w.s);
    free(w.heap);
    *ids = o.ids;
    *n_ids = o.n;
    *cap_ids = o.cap;
    return rc;
}
