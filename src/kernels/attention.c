/* Attention of one query row for the heads of one GQA group (kern_attention in kernels.h):
 * flash-style, over chunks of 64 positions read straight from the paged KV blocks, with an
 * online softmax (running max and sum, earlier partial results rescaled when the max grows).
 *
 * Per chunk and head: scores s_j = (q . k_j) * scale (one FMA chain over the key's elements
 * in increasing order, in the AVX-512 steps), m' = max(m, max_j s_j),
 * p_j = exp(s_j - m'), sum = sum * exp(m - m') + sum_j p_j, acc = acc * exp(m - m') + sum_j p_j v_j;
 * at the end out = acc / sum (the AVX-512 steps keep m while a chunk's scores stay within
 * SHIFT_SLACK of it: any shift cancels). Chunks start at positions 0, 64, 128, ... whatever the batch, and
 * nothing depends on other rows, so a row's result is bitwise the same alone or in a batch and
 * for any thread split. Three implementations of the same steps: one through the family's
 * kern_dot / kern_axpy (ref, and avx2 for head sizes that are not multiples of 8), AVX-512 (the
 * scores of 16 positions per vector from the transposed keys, shared by the group's heads; a
 * vector exp; weighted sums in registers) and AVX2 (the same 8 positions per vector).
 * Keys are stored transposed within a block (kern_attn_args in kernels.h): element i of a
 * block's positions side by side.
 *
 * A BF16 cache with bf16_dot (kern_attention_dot) takes the same steps in bf16 dot products: the
 * query rounded to bf16 once, s_j one vdpbf16ps chain over element pairs; each p_j rounded to
 * bf16 before it is summed, acc one vdpbf16ps chain over position pairs (j, j+1). The cache is
 * read as stored; pairs are formed in registers. Its results differ from the f32 steps by the
 * roundings (the query's relative 2^-9 per element, each weight's 2^-9). */
#include "kern_internal.h"

#include <math.h>
#include <string.h>

enum { CHUNK = 64 };

/* Where position j's value row starts, and its key's element 0 (the next one bs further). */
static inline size_t row_at(const kern_attn_args *a, int j) {
    return (size_t)a->blocks[j / a->bs] * a->block_stride + (size_t)(j % a->bs) * a->ld;
}

static inline size_t key_at(const kern_attn_args *a, int j) { return (size_t)a->blocks[j / a->bs] * a->block_stride + (size_t)(j % a->bs); }

static inline float elem(const void *base, int dtype, size_t i) {
    if (dtype == S1C_F16) return s1c_f16_to_f32(((const uint16_t *)base)[i]);
    if (dtype == S1C_BF16) return s1c_bf16_to_f32(((const uint16_t *)base)[i]);
    return ((const float *)base)[i];
}

/* Position j's V row as f32: in place (F32) or converted into buf (the tile layout: its elements
 * bs apart). */
static const float *value_f32(const kern_attn_args *a, int j, float *buf) {
    if (a->tiles) {
        size_t r = key_at(a, j);
        for (int i = 0; i < a->hd; i++) buf[i] = elem(a->v, a->dtype, r + (size_t)i * (size_t)a->bs);
        return buf;
    }
    size_t r = row_at(a, j);
    if (a->dtype == S1C_F32) return (const float *)a->v + r;
    for (int i = 0; i < a->hd; i++) buf[i] = elem(a->v, a->dtype, r + (size_t)i);
    return buf;
}

/* Position j's key as f32, gathered into buf (its elements are bs apart; a row in the tile
 * layout). */
static const float *key_f32(const kern_attn_args *a, int j, float *buf) {
    size_t r = a->tiles ? (size_t)a->blocks[j / a->bs] * a->block_stride + (size_t)(j % a->bs) * (size_t)a->hd : key_at(a, j);
    size_t st = a->tiles ? 1 : (size_t)a->bs;
    for (int i = 0; i < a->hd; i++) buf[i] = elem(a->k, a->dtype, r + (size_t)i * st);
    return buf;
}

/* The online softmax's state before the first chunk: no maximum yet, empty sums (`lanes` per
 * head) and outputs. */
static void attn_start(const kern_attn_args *a, float *m, float *sum, int lanes) {
    for (int h = 0; h < a->nh; h++) {
        m[h] = -INFINITY;
        memset(sum + (size_t)h * lanes, 0, (size_t)lanes * sizeof(float));
        memset(a->out + (size_t)h * a->hd, 0, (size_t)a->hd * sizeof(float));
    }
}

/* The families without their own: dot products and weighted sums through kern_dot / kern_axpy
 * (the scalar reference's index-order loops, or AVX2). */
static void attn_generic(const kern_attn_args *a) {
    int nh = a->nh, hd = a->hd;
    float *s = a->scratch, *buf = a->scratch + KERN_ATTN_MAX_HEADS * CHUNK, m[KERN_ATTN_MAX_HEADS], sum[KERN_ATTN_MAX_HEADS];
    attn_start(a, m, sum, 1);
    for (int c0 = 0; c0 < a->n; c0 += CHUNK) {
        int len = a->n - c0 < CHUNK ? a->n - c0 : CHUNK;
        for (int j = 0; j < len; j++) {
            const float *k = key_f32(a, c0 + j, buf);
            for (int h = 0; h < nh; h++) s[h * CHUNK + j] = kern_dot(a->q + (size_t)h * hd, k, hd) * a->scale;
        }
        for (int h = 0; h < nh; h++) {
            float *sh = s + h * CHUNK, mx = m[h];
            for (int j = 0; j < len; j++) mx = sh[j] > mx ? sh[j] : mx;
            float corr = m[h] == -INFINITY ? 0.0f : expf(m[h] - mx), ps = 0.0f;
            for (int j = 0; j < len; j++) {
                sh[j] = expf(sh[j] - mx);
                ps += sh[j];
            }
            sum[h] = sum[h] * corr + ps;
            m[h] = mx;
            float *o = a->out + (size_t)h * hd;
            for (int i = 0; i < hd; i++) o[i] *= corr;
        }
        for (int j = 0; j < len; j++) {
            const float *v = value_f32(a, c0 + j, buf);
            for (int h = 0; h < nh; h++) kern_axpy(a->out + (size_t)h * hd, s[h * CHUNK + j], v, hd);
        }
    }
    for (int h = 0; h < nh; h++) {
        float *o = a->out + (size_t)h * hd;
        for (int i = 0; i < hd; i++) o[i] /= sum[h];
    }
}

/* Where each G-position group of the chunk starts in K (its first position's element 0), for
 * blocks that hold whole groups (bs a multiple of G): stepped through the block table, no
 * division per group. */
static inline void group_keys_at(const kern_attn_args *a, int c0, int len, int G, size_t *at) {
    for (int g = 0, b = c0 / a->bs, off = c0 % a->bs; G * g < len; g++, off += G) {
        if (off == a->bs) off = 0, b++;
        at[g] = (size_t)a->blocks[b] * a->block_stride + (size_t)off;
    }
}

/* Bytes [p, p + n) asked for into the caches (prefetcht0), a line at a time. */
static inline void prefetch_bytes(const char *p, size_t n) {
    for (size_t o = 0; o < n; o += 64) __builtin_prefetch(p + o, 0, 3);
}

/* The K and V bytes of the chunk PF_AHEAD chunks on are asked for into the caches a few lines at
 * a time from inside the weighted sums' loops (kv_ahead_step every PF_EVERY positions in pv_heads
 * and pv8), spread over the chunk in hand. Without prefetches decode attention waits on memory
 * latency; with a chunk's lines asked for all at once (256 for a 7-head group's bf16 chunk) the
 * loads behind them wait until memory answers, and reading and computing took turns:
 * bench_attention, 8K positions from memory, bf16 dot, blocks in order, one thread 250-285 us a
 * layer (0.36-0.40 of the read bandwidth, no better than without prefetches), two 140-160 ->
 * 72-116 us spread like this; one thread 270 -> 136-147 us; 32K, two threads, 632-675 ->
 * 423-439 us (0.52 -> 0.79), blocks shuffled 853 -> 563-573. A synthetic stream with the same
 * work per line: bursts of 16-32 lines as good as 2 at a time, 64 worse, a chunk's 256 the
 * worst. The scores' loops have no registers to spare: stepping there too cost 8% from the
 * caches. Chunks before n_cached are not asked for: an earlier row of the batch read them, and
 * from the caches prefetches only cost time. A chunk's bytes are a few runs (each block's keys,
 * hd rows of bs, and its value rows, one run when ld == hd); part of a block with long key rows
 * (bs * element size > 128 bytes) takes one run per key row, and runs past KV_AHEAD_RUNS are
 * asked for at once. */
enum { PF_AHEAD = 2, KV_AHEAD_RUNS = 16, PF_EVERY = 4 };

typedef struct kv_ahead {
    const char *run[KV_AHEAD_RUNS]; /* line-aligned */
    int lines[KV_AHEAD_RUNS];
    int n, r, l, per; /* runs; the next line (run r, line l); lines per step */
} kv_ahead;

static inline void kv_ahead_add(kv_ahead *f, const char *p, size_t bytes) {
    const char *lo = (const char *)((uintptr_t)p & ~(uintptr_t)63);
    if (f->n == KV_AHEAD_RUNS) {
        prefetch_bytes(lo, (size_t)(p + bytes - lo));
        return;
    }
    f->run[f->n] = lo;
    f->lines[f->n++] = (int)(((size_t)(p + bytes - lo) + 63) / 64);
}

/* The runs of the chunk at c0 (none past n or before n_cached), to be asked for over `steps`
 * calls of kv_ahead_step. */
static inline void kv_ahead_plan(kv_ahead *f, const kern_attn_args *a, int c0, int steps) {
    f->n = f->r = f->l = f->per = 0;
    if (c0 >= a->n || c0 + CHUNK <= a->n_cached) return;
    size_t es = (size_t)s1c_dtype_type_size(a->dtype), hd = (size_t)a->hd, bs = (size_t)a->bs;
    int total = 0;
    for (int j = c0, end = a->n - c0 < CHUNK ? a->n : c0 + CHUNK; j < end;) {
        int off = j % a->bs, cnt = a->bs - off < end - j ? a->bs - off : end - j;
        size_t blk = (size_t)a->blocks[j / a->bs] * a->block_stride;
        if (a->tiles) { /* the chunk's key rows, one run; the block's transposed values whole */
            kv_ahead_add(f, (const char *)a->k + (blk + (size_t)off * hd) * es, (size_t)cnt * hd * es);
            kv_ahead_add(f, (const char *)a->v + blk * es, bs * hd * es);
            j += cnt;
            continue;
        }
        const char *k = (const char *)a->k + blk * es, *v = (const char *)a->v + (blk + (size_t)off * a->ld) * es;
        /* the block's keys whole: all of them are read, or its rows are a line or two apart
         * anyway (a sequence's last block, filled to cnt) */
        if ((off == 0 && (size_t)cnt == bs) || bs * es <= 128) kv_ahead_add(f, k, hd * bs * es);
        else
            for (size_t i = 0; i < hd; i++) kv_ahead_add(f, k + (i * bs + (size_t)off) * es, (size_t)cnt * es);
        if (a->ld == hd) kv_ahead_add(f, v, (size_t)cnt * hd * es);
        else
            for (int r = 0; r < cnt; r++) kv_ahead_add(f, v + (size_t)r * a->ld * es, hd * es);
        j += cnt;
    }
    for (int i = 0; i < f->n; i++) total += f->lines[i];
    steps = steps > 0 ? steps : 1;
    f->per = (total + steps - 1) / steps;
}

static inline void kv_ahead_step(kv_ahead *f) {
    if (f->r == f->n) return;
    const char *p = f->run[f->r] + 64 * (size_t)f->l;
    int k = f->lines[f->r] - f->l < f->per ? f->lines[f->r] - f->l : f->per;
    for (int i = 0; i < k; i++) __builtin_prefetch(p + 64 * i, 0, 3);
    if ((f->l += k) == f->lines[f->r]) f->r++, f->l = 0;
}

/* What the steps left (the chunk in hand read fewer steps than planned). */
static inline void kv_ahead_finish(kv_ahead *f) {
    for (; f->r < f->n; f->r++, f->l = 0) prefetch_bytes(f->run[f->r] + 64 * (size_t)f->l, 64 * (size_t)(f->lines[f->r] - f->l));
}

/* The whole chunk at c0 at once (the first PF_AHEAD chunks, before any loop runs). */
static inline void prefetch_kv(const kern_attn_args *a, int c0) {
    kv_ahead f;
    kv_ahead_plan(&f, a, c0, 1);
    kv_ahead_finish(&f);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include "vmath_avx512.h" /* exp16: the one AVX-512 exp */

/* avx512bf16 for the dot steps of a BF16 cache; nothing else here emits its instructions, and
 * those steps run only where the CPU has it (kern_attention) */
#define TA __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")))
#define INL static inline __attribute__((always_inline)) TA

INL __m512 load16(const void *base, int dtype, size_t i, __mmask16 m) {
    if (dtype == S1C_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)base + i)), 16));
    if (dtype == S1C_F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)base + i));
    return _mm512_maskz_loadu_ps(m, (const float *)base + i);
}

/* 16 whole elements (no mask: masked loads and stores cost several times more on Zen 4). */
INL __m512 load16_full(const void *base, int dtype, size_t i) {
    if (dtype == S1C_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)base + i))), 16));
    if (dtype == S1C_F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)base + i)));
    return _mm512_loadu_ps((const float *)base + i);
}

INL __mmask16 tail_mask(int n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1); }

/* The chunk's V rows as f32 pointers: in place for an F32 cache, else converted once into buf
 * (len x hd), so the loops over heads below read f32 from L1 with no per-element type test.
 * A position's row comes from the block table by stepping through it, not by dividing. */
INL void chunk_rows(const kern_attn_args *a, const void *base, int c0, int len, float *buf, const float **rows) {
    int b = c0 / a->bs, off = c0 % a->bs, hd = a->hd;
    for (int j = 0; j < len; j++) {
        size_t r = (size_t)a->blocks[b] * a->block_stride + (size_t)off * a->ld;
        if (a->dtype == S1C_F32) {
            rows[j] = (const float *)base + r;
        } else {
            float *dst = buf + (size_t)j * hd;
            int full = hd & ~15;
            for (int i = 0; i < full; i += 16) _mm512_storeu_ps(dst + i, load16_full(base, a->dtype, r + (size_t)i));
            if (full < hd) {
                __mmask16 mk = tail_mask(hd - full);
                _mm512_mask_storeu_ps(dst + full, mk, load16(base, a->dtype, r + (size_t)full, mk));
            }
            rows[j] = dst;
        }
        if (++off == a->bs) off = 0, b++;
    }
}

/* The chunk's keys as groups of 16 positions, transposed: element i of group g's positions at
 * kt[g] + i * kst as f32. In place for an F32 cache whose blocks hold whole groups (bs a
 * multiple of 16, the engine's default: a group never straddles blocks), converted once per
 * chunk for a 16-bit one (buf: 16 x hd per group), gathered one element at a time otherwise.
 * Lanes past the sequence hold whatever the block holds (or 0): their scores are not stored. */
INL void chunk_keys(const kern_attn_args *a, int c0, int len, float *buf, const float **kt, size_t *kst) {
    int hd = a->hd;
    bool whole = a->bs % 16 == 0;
    size_t at[CHUNK / 16];
    *kst = whole && a->dtype == S1C_F32 ? (size_t)a->bs : 16;
    if (whole) group_keys_at(a, c0, len, 16, at);
    for (int g = 0; 16 * g < len; g++) {
        int j0 = c0 + 16 * g, cnt = len - 16 * g < 16 ? len - 16 * g : 16;
        float *dst = buf + (size_t)g * 16 * hd;
        kt[g] = dst;
        if (whole) {
            size_t r = at[g];
            if (a->dtype == S1C_F32) kt[g] = (const float *)a->k + r;
            else
                for (int i = 0; i < hd; i++) _mm512_storeu_ps(dst + 16 * i, load16_full(a->k, a->dtype, r + (size_t)i * a->bs));
            continue;
        }
        for (int jj = 0; jj < 16; jj++) {
            size_t r = jj < cnt ? key_at(a, j0 + jj) : 0;
            for (int i = 0; i < hd; i++) dst[16 * i + jj] = jj < cnt ? elem(a->k, a->dtype, r + (size_t)i * a->bs) : 0.0f;
        }
    }
}

/* The BF16 dot steps (kern_attn_args.bf16_dot): keys and values stay bf16, the query and the
 * softmax weights are rounded to bf16 (nearest even), and vdpbf16ps takes two products per lane.
 * A pair is two bf16 in one 32-bit lane, the lower element first: for scores element pair
 * (2i, 2i+1) of one position, for the weighted sum positions (2j, 2j+1) of one element. */

/* A 16-bit lane's value and its neighbour's as a pair: lanes 0..15 of a next to lanes 0..15 of b. */
INL __m512i pairs16(__m256i a, __m256i b) {
    const __m512i idx = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6, 37, 5, 36, 4, 35, 3,
                                         34, 2, 33, 1, 32, 0);
    return _mm512_permutex2var_epi16(_mm512_castsi256_si512(a), idx, _mm512_castsi256_si512(b));
}

/* The query rows of the group as bf16 pairs (qp[h * hd/2 + i] = elements 2i, 2i+1 of head h). */
INL void query_pairs(const kern_attn_args *a, float *qp) {
    size_t n = (size_t)a->nh * a->hd; /* hd even: whole pairs */
    for (size_t i = 0; i < n; i += 32) {
        __mmask16 lo = tail_mask((int)(n - i)), hi = n - i > 16 ? tail_mask((int)(n - i - 16)) : 0;
        __m512 x0 = _mm512_maskz_loadu_ps(lo, a->q + i), x1 = _mm512_maskz_loadu_ps(hi, a->q + i + 16);
        __m512i b = (__m512i)_mm512_cvtne2ps_pbh(x1, x0); /* x0's 16 in the low half */
        _mm512_mask_storeu_epi16((uint16_t *)qp + i, (__mmask32)lo | (__mmask32)hi << 16, b);
    }
}

/* The chunk's keys for the dot steps, kept in 16 bits: as chunk_keys but element i of group g's
 * 16 positions at kt[g] + i * kst bf16 (in place where blocks hold whole groups, kst = bs;
 * gathered into buf otherwise, kst = 16, lanes past the sequence 0). The scores pair elements
 * 2i and 2i+1 in registers. */
INL void chunk_keys16(const kern_attn_args *a, int c0, int len, float *buf, const float **kt, size_t *kst) {
    const uint16_t *k = a->k;
    *kst = a->bs % 16 == 0 ? (size_t)a->bs : 16;
    if (a->bs % 16 == 0) { /* groups never straddle blocks */
        size_t at[CHUNK / 16];
        group_keys_at(a, c0, len, 16, at);
        for (int g = 0; 16 * g < len; g++) kt[g] = (const float *)(k + at[g]);
        return;
    }
    for (int g = 0; 16 * g < len; g++) {
        int j0 = c0 + 16 * g, cnt = len - 16 * g < 16 ? len - 16 * g : 16;
        uint16_t *dst = (uint16_t *)buf + (size_t)g * 16 * a->hd;
        kt[g] = (const float *)dst;
        for (int jj = 0; jj < 16; jj++) {
            size_t r = jj < cnt ? key_at(a, j0 + jj) : 0;
            for (int i = 0; i < a->hd; i++) dst[16 * i + jj] = jj < cnt ? k[r + (size_t)i * a->bs] : 0;
        }
    }
}

/* The chunk's value rows for the dot steps, in place (bf16), in pairs: vr[2p], vr[2p + 1] are
 * positions c0 + 2p and c0 + 2p + 1; an odd chunk's last pair ends in a row of zeros (its
 * weight is 0 too). */
INL void chunk_rows16(const kern_attn_args *a, int c0, int len, const float **vr) {
    static const uint16_t zeros[KERN_ATTN_CONV_HD];
    /* one multiply per block, then the rows one ld apart */
    for (int j = 0, b = c0 / a->bs, off = c0 % a->bs; j < len; b++, off = 0) {
        const uint16_t *r = (const uint16_t *)a->v + (size_t)a->blocks[b] * a->block_stride + (size_t)off * a->ld;
        for (int end = j + a->bs - off < len ? j + a->bs - off : len; j < end; j++, r += a->ld) vr[j] = (const float *)r;
    }
    if (len % 2) vr[len] = (const float *)zeros;
}

/* Scores of HH heads (q: their query rows; s: their rows of the score scratch, CHUNK apart) for
 * NG groups of 16 positions: per key element one vector load per group, shared by the heads,
 * and per head a broadcast of its query element; each score is one FMA chain over the elements
 * from 0, times scale. HH x NG chains keep both FMA pipes busy; HH and NG are constants at every
 * call, so the loops unroll into registers. DOT: the same over element pairs (hd: the pair
 * count; q holds bf16 pairs in f32-sized slots, kt bf16 rows, chunk_keys16), one vdpbf16ps per
 * pair. */
INL void scores_kt(const int HH, const int NG, const bool DOT, float *s, const float *q, int hd, const float *const *kt, size_t kst,
                   const __mmask16 *mk, float scale) {
    __m512 acc[8][4];
#pragma GCC unroll 8
    for (int h = 0; h < HH; h++)
#pragma GCC unroll 4
        for (int g = 0; g < NG; g++) acc[h][g] = _mm512_setzero_ps();
    for (int i = 0; i < hd; i++) {
        __m512 kv[4];
#pragma GCC unroll 4
        for (int g = 0; g < NG; g++) {
            if (DOT) { /* rows 2i and 2i + 1 of 16 positions, as pairs */
                const uint16_t *r = (const uint16_t *)kt[g] + 2 * (size_t)i * kst;
                kv[g] = _mm512_castsi512_ps(pairs16(_mm256_loadu_si256((const __m256i *)r), _mm256_loadu_si256((const __m256i *)(r + kst))));
            } else {
                kv[g] = _mm512_loadu_ps(kt[g] + (size_t)i * kst);
            }
        }
#pragma GCC unroll 8
        for (int h = 0; h < HH; h++) {
            __m512 qb = _mm512_set1_ps(q[(size_t)h * hd + i]); /* DOT: a pair's 32 bits */
#pragma GCC unroll 4
            for (int g = 0; g < NG; g++)
                acc[h][g] = DOT ? _mm512_dpbf16_ps(acc[h][g], (__m512bh)qb, (__m512bh)kv[g]) : _mm512_fmadd_ps(qb, kv[g], acc[h][g]);
        }
    }
    __m512 sc = _mm512_set1_ps(scale);
#pragma GCC unroll 8
    for (int h = 0; h < HH; h++)
#pragma GCC unroll 4
        for (int g = 0; g < NG; g++) _mm512_mask_storeu_ps(s + h * CHUNK + 16 * g, mk[g], _mm512_mul_ps(acc[h][g], sc));
}

/* Up to 3 heads: all four groups at once (4 to 12 chains); 4 to 8 heads: two groups at a time. */
INL void scores_heads_of(const bool DOT, int hh, float *s, const float *q, int hd, const float *const *kt, size_t kst,
                         const __mmask16 *mk, float scale) {
    switch (hh) {
    case 1: scores_kt(1, 4, DOT, s, q, hd, kt, kst, mk, scale); return;
    case 2: scores_kt(2, 4, DOT, s, q, hd, kt, kst, mk, scale); return;
    case 3: scores_kt(3, 4, DOT, s, q, hd, kt, kst, mk, scale); return;
    default: break;
    }
    for (int g = 0; g < 4 && mk[g]; g += 2) {
        float *sg = s + 16 * g;
        switch (hh) {
        case 4: scores_kt(4, 2, DOT, sg, q, hd, kt + g, kst, mk + g, scale); break;
        case 5: scores_kt(5, 2, DOT, sg, q, hd, kt + g, kst, mk + g, scale); break;
        case 6: scores_kt(6, 2, DOT, sg, q, hd, kt + g, kst, mk + g, scale); break;
        case 7: scores_kt(7, 2, DOT, sg, q, hd, kt + g, kst, mk + g, scale); break;
        default: scores_kt(8, 2, DOT, sg, q, hd, kt + g, kst, mk + g, scale); break;
        }
    }
}

/* One out-of-line copy per arithmetic (the unrolled tiles are large). */
static TA void scores_heads(int hh, float *s, const float *q, int hd, const float *const *kt, size_t kst, const __mmask16 *mk, float scale) {
    scores_heads_of(false, hh, s, q, hd, kt, kst, mk, scale);
}

static TA void scores_heads_dot(int hh, float *s, const float *q, int hd, const float *const *kt, size_t kst, const __mmask16 *mk,
                                float scale) {
    scores_heads_of(true, hh, s, q, hd, kt, kst, mk, scale);
}

/* The scores of every head of the group over the chunk's len positions, heads 8 at a time
 * (q: the query rows, or their bf16 pairs for dot; steps: hd, or hd / 2). */
INL void scores_chunk(const kern_attn_args *a, bool dot, const float *q, int steps, float *s, const float *const *kt, size_t kst, int len) {
    const float *k4[4];
    __mmask16 mk[4];
    for (int g = 0; g < 4; g++) {
        int cnt = len - 16 * g;
        mk[g] = cnt > 0 ? tail_mask(cnt) : 0;
        k4[g] = cnt > 0 ? kt[g] : kt[0]; /* a group past the end: group 0 again, not stored */
    }
    for (int h0 = 0; h0 < a->nh; h0 += 8) {
        int hh = a->nh - h0 < 8 ? a->nh - h0 : 8;
        if (dot) scores_heads_dot(hh, s + h0 * CHUNK, q + (size_t)h0 * steps, steps, k4, kst, mk, a->scale);
        else scores_heads(hh, s + h0 * CHUNK, q + (size_t)h0 * steps, steps, k4, kst, mk, a->scale);
    }
}

/* e^x for the dot steps' softmax weights, which are rounded to bf16 next (8 significant bits):
 * x <= SHIFT_SLACK there (a score minus the shift), so no overflow test; below -87 the result is
 * e^-87 (~1.6e-38, not 0), and a NaN passes through (the clamp's second operand). 2^t with t
 * = x log2(e) split into round(t) (vscalefps) and f in [-1/2, 1/2] (degree 5 Taylor of e^(f ln 2),
 * relative error < 3e-6 with t's rounding): ~10 operations where exp16 (exact to f32 rounding,
 * every case) takes ~27, and a third of the dot steps' time was the softmax. */
INL __m512 exp16_weights(__m512 x) {
    __m512 t = _mm512_mul_ps(_mm512_max_ps(_mm512_set1_ps(-87.0f), x), _mm512_set1_ps(1.44269504f));
    __m512 r = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), f = _mm512_sub_ps(t, r);
    __m512 p = _mm512_set1_ps(1.3333558e-3f); /* ln(2)^k / k!, k = 5 .. 0 */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504109e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022651e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, r);
}

/* The AVX-512 steps' online softmax keeps per head a shift m (the scores' maximum so far, or up
 * to SHIFT_SLACK below it) and the weights' running sum in 16 lanes (added across at the end). A
 * chunk whose scores all stay within m + SHIFT_SLACK keeps m: its weights exp(s - m) are at most
 * e^8, far from overflow even summed over millions of positions, and nothing earlier is
 * rescaled. A chunk with a score past that (the first, and a few after it while the scores
 * settle) takes its maximum across the lanes, and the sum and the output so far are rescaled by
 * exp(m - m'). The shift cancels in out = acc / sum: the result is the softmax up to rounding,
 * and depends on the scores alone (the same bits in any batch and thread split). A maximum per
 * chunk cost two reductions across lanes per head and chunk and a branch on whether it grew:
 * the softmax was a fifth of the dot steps' time (one thread, 640 positions, Qwen's 7-head
 * group, cache-resident: 4.9 us a call). */
enum { SHIFT_SLACK = 8 };

/* Head h's new shift: the chunk's maximum (vmax's lanes), the sum and the output rescaled. */
INL void shift_head(int h, __m512 vmax, float *m, float *sum16, float *out, int hd) {
    float mx = _mm512_reduce_max_ps(vmax);
    if (m[h] != -INFINITY) { /* else the sum and the output are still zeros */
        __m512 cv = _mm512_set1_ps(expf(m[h] - mx));
        _mm512_storeu_ps(sum16 + 16 * h, _mm512_mul_ps(_mm512_loadu_ps(sum16 + 16 * h), cv));
        float *o = out + (size_t)h * hd;
        for (int i = 0; i < hd; i += 16) {
            __mmask16 mk = tail_mask(hd - i);
            _mm512_mask_storeu_ps(o + i, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, o + i), cv));
        }
    }
    m[h] = mx;
}

/* The softmax step of every head over the chunk's scores (head h's at s + h * CHUNK, len of
 * them): the shift (see SHIFT_SLACK), the weights and their sum. f32 steps (pb NULL): each
 * weight exp16 (exact), written back over its score. Dot steps: each weight exp16_weights,
 * rounded to bf16 and written as bf16 pairs (head h's at pb + h * CHUNK / 2 f32 slots, positions
 * in order, 0 past len; one vcvtne2ps2bf16 and one store per 32), summed as rounded two per lane
 * (vdpbf16ps against ones: the products are exact). */
INL void softmax_chunk(float *s, int nh, int len, float *m, float *sum16, float *out, int hd, float *pb) {
    const __m512bh ones = (__m512bh)_mm512_set1_epi16(0x3f80);
    __mmask16 mk[4];
    for (int g = 0; g < 4; g++) mk[g] = len > 16 * g ? tail_mask(len - 16 * g) : 0;
    for (int h = 0; h < nh; h++) {
        float *sh = s + h * CHUNK;
        __m512 v[4];
        for (int g = 0; g < 4; g++) v[g] = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), mk[g], sh + 16 * g);
        __m512 vmax = _mm512_max_ps(_mm512_max_ps(v[0], v[1]), _mm512_max_ps(v[2], v[3]));
        if (m[h] == -INFINITY || _mm512_cmp_ps_mask(vmax, _mm512_set1_ps(m[h] + SHIFT_SLACK), _CMP_GT_OQ))
            shift_head(h, vmax, m, sum16, out, hd);
        __m512 mv = _mm512_set1_ps(m[h]), ps = _mm512_loadu_ps(sum16 + 16 * h);
        if (pb) {
            for (int g = 0; g < 4; g += 2) {
                __m512 p0 = _mm512_maskz_mov_ps(mk[g], exp16_weights(_mm512_sub_ps(v[g], mv)));
                __m512 p1 = _mm512_maskz_mov_ps(mk[g + 1], exp16_weights(_mm512_sub_ps(v[g + 1], mv)));
                __m512bh pp = _mm512_cvtne2ps_pbh(p1, p0); /* p0's 16 in the low half: positions in order */
                _mm512_storeu_si512((uint16_t *)(pb + h * (CHUNK / 2)) + 16 * g, (__m512i)pp);
                ps = _mm512_dpbf16_ps(ps, pp, ones);
            }
        } else {
            for (int g = 0; g < 4; g++) {
                __m512 p = _mm512_maskz_mov_ps(mk[g], exp16(_mm512_sub_ps(v[g], mv)));
                _mm512_storeu_ps(sh + 16 * g, p);
                ps = _mm512_add_ps(ps, p);
            }
        }
        _mm512_storeu_ps(sum16 + 16 * h, ps);
    }
}

/* o_h[i0 .. i0 + 16 NV) += sum_j p_h[j] v_j over the chunk, j increasing, for HH heads at once
 * (HH x NV <= 16 accumulators: each value vector loaded once for HH heads, so the loop is bound
 * by its FMAs, not its loads, and the chains of several outputs interleave to hide their
 * latency). HH and NV are constants at every call, so the loops unroll with no tests. DOT: j
 * counts position pairs, p_h[j] holds a bf16 pair in an f32-sized slot, vr bf16 rows
 * (chunk_rows16), paired in registers (vdpbf16ps). */
INL void pv_heads(int HH, int NV, const bool DOT, float *const *o, const float *const *p, const float *const *vr, int len, int i0, int hd,
                  kv_ahead *pf) {
    __m512 acc[16];
    __mmask16 mk[8];
#pragma GCC unroll 8
    for (int c = 0; c < NV; c++) mk[c] = i0 + 16 * c < hd ? tail_mask(hd - i0 - 16 * c) : 0;
#pragma GCC unroll 8
    for (int h = 0; h < HH; h++)
#pragma GCC unroll 8
        for (int c = 0; c < NV; c++) acc[h * NV + c] = _mm512_maskz_loadu_ps(mk[c], o[h] + i0 + 16 * c);
    for (int j = 0; j < len; j++) {
        __m512 v[8];
        if (j % PF_EVERY == 0) kv_ahead_step(pf);
#pragma GCC unroll 8
        for (int c = 0; c < NV; c++) {
            if (DOT) { /* element i of positions 2j and 2j + 1 as pairs */
                const uint16_t *r0 = (const uint16_t *)vr[2 * j] + i0 + 16 * c, *r1 = (const uint16_t *)vr[2 * j + 1] + i0 + 16 * c;
                v[c] = _mm512_castsi512_ps(pairs16(_mm256_maskz_loadu_epi16(mk[c], r0), _mm256_maskz_loadu_epi16(mk[c], r1)));
            } else {
                v[c] = _mm512_maskz_loadu_ps(mk[c], vr[j] + i0 + 16 * c);
            }
        }
#pragma GCC unroll 8
        for (int h = 0; h < HH; h++) {
            __m512 pj = _mm512_set1_ps(p[h][j]);
#pragma GCC unroll 8
            for (int c = 0; c < NV; c++)
                acc[h * NV + c] = DOT ? _mm512_dpbf16_ps(acc[h * NV + c], (__m512bh)pj, (__m512bh)v[c]) : _mm512_fmadd_ps(pj, v[c], acc[h * NV + c]);
        }
    }
#pragma GCC unroll 8
    for (int h = 0; h < HH; h++)
#pragma GCC unroll 8
        for (int c = 0; c < NV; c++) _mm512_mask_storeu_ps(o[h] + i0 + 16 * c, mk[c], acc[h * NV + c]);
}

/* The weighted sum of values for every head of the group: heads 4 at a time while a head is at
 * most 64 wide, 2 at a time in slices of 128 elements otherwise (head h's weights at
 * s + h * pstride; DOT: len position pairs). */
INL void pv_chunk(const bool DOT, const kern_attn_args *a, const float *s, int pstride, const float *const *vr, int len, kv_ahead *pf) {
    int nh = a->nh, hd = a->hd, wide = hd > 64, step = wide ? 2 : 4;
    for (int h = 0; h < nh; h += step) {
        int hh = nh - h < step ? nh - h : step;
        float *o[4];
        const float *p[4];
        for (int k = 0; k < hh; k++) o[k] = a->out + (size_t)(h + k) * hd, p[k] = s + (h + k) * pstride;
        for (int i0 = 0; i0 < hd; i0 += wide ? 128 : 64) {
            if (wide) {
                if (hh == 2) pv_heads(2, 8, DOT, o, p, vr, len, i0, hd, pf);
                else pv_heads(1, 8, DOT, o, p, vr, len, i0, hd, pf);
            } else if (hh == 4) pv_heads(4, 4, DOT, o, p, vr, len, i0, hd, pf);
            else if (hh == 3) pv_heads(3, 4, DOT, o, p, vr, len, i0, hd, pf);
            else if (hh == 2) pv_heads(2, 4, DOT, o, p, vr, len, i0, hd, pf);
            else pv_heads(1, 4, DOT, o, p, vr, len, i0, hd, pf);
        }
    }
}

/* How many times pv_chunk steps a kv_ahead over len positions (or pairs): PF_EVERY positions
 * apart in each pv_heads call. */
static int pv_steps(const kern_attn_args *a, int len) {
    int wide = a->hd > 64, calls = (a->nh + (wide ? 1 : 3)) / (wide ? 2 : 4) * (wide ? (a->hd + 127) / 128 : (a->hd + 63) / 64);
    return calls * ((len + PF_EVERY - 1) / PF_EVERY);
}

/* Per chunk: its keys (converted once if the cache is 16-bit), the scores of every head 16
 * positions at a time, the online softmax, its value rows, the weighted values. Which heads are grouped together
 * changes only how independent work is interleaved: every output element's operations and their
 * order depend on n and hd alone. */
static TA void attn_avx512(const kern_attn_args *a, bool dot) {
    int nh = a->nh, hd = a->hd;
    float *s = a->scratch, *kbuf = a->scratch + KERN_ATTN_MAX_HEADS * CHUNK, *vbuf = kbuf + CHUNK * KERN_ATTN_CONV_HD;
    /* dot: 16-bit keys take half of kbuf, the query's pairs the rest; the weights' pairs vbuf */
    float *qp = kbuf + CHUNK * KERN_ATTN_CONV_HD / 2, *pb = vbuf;
    float m[KERN_ATTN_MAX_HEADS], sum16[16 * KERN_ATTN_MAX_HEADS];
    const float *kt[CHUNK / 16], *vr[CHUNK + 1];
    size_t kst;
    attn_start(a, m, sum16, 16);
    if (dot) query_pairs(a, qp);
    for (int c = 0; c < PF_AHEAD * CHUNK; c += CHUNK) prefetch_kv(a, c);
    for (int c0 = 0; c0 < a->n; c0 += CHUNK) {
        int len = a->n - c0 < CHUNK ? a->n - c0 : CHUNK;
        kv_ahead pf;
        kv_ahead_plan(&pf, a, c0 + PF_AHEAD * CHUNK, pv_steps(a, dot ? (len + 1) / 2 : len));
        if (dot) {
            chunk_keys16(a, c0, len, kbuf, kt, &kst);
            scores_chunk(a, true, qp, hd / 2, s, kt, kst, len);
            softmax_chunk(s, nh, len, m, sum16, a->out, hd, pb);
            chunk_rows16(a, c0, len, vr);
            pv_chunk(true, a, pb, CHUNK / 2, vr, (len + 1) / 2, &pf);
        } else {
            chunk_keys(a, c0, len, kbuf, kt, &kst);
            scores_chunk(a, false, a->q, hd, s, kt, kst, len);
            softmax_chunk(s, nh, len, m, sum16, a->out, hd, NULL);
            chunk_rows(a, a->v, c0, len, vbuf, vr);
            pv_chunk(false, a, s, CHUNK, vr, len, &pf);
        }
        kv_ahead_finish(&pf);
    }
    for (int h = 0; h < nh; h++) {
        float *o = a->out + (size_t)h * hd;
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(_mm512_loadu_ps(sum16 + 16 * h)));
        for (int i = 0; i < hd; i += 16) {
            __mmask16 mk = tail_mask(hd - i);
            _mm512_mask_storeu_ps(o + i, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, o + i), inv));
        }
    }
}

/* ---- The AMX steps, on a cache in the tile layout (kern_attn_args.tiles: per block K [bs][hd],
 * V [hd][bs]; bf16_dot). The group's heads are the columns of every tile (N = nh <= 16), a
 * 16-position group of the chunk the rows: S^T = K . Q^T takes a group's 16 key rows as an A
 * tile straight from the block (16 element pairs a tile) against Q^T's pairs (B, written once
 * per call); the softmax runs on score rows, one position per vector with the heads in lanes
 * (maxima and sums across positions are vertical: no reduction across lanes); O^T += V^T . P^T
 * takes a group's transposed values as A tiles straight from the block (16 elements x 8 position
 * pairs) against the weights' pairs P^T (B: positions 2p and 2p + 1 of every head, interleaved
 * in registers). O^T ([hd][16] f32, lanes = heads) goes through memory between chunks, 4 C tiles
 * of 16 elements at a time. The products are vdpbf16ps's (bf16 query, bf16 weights), summed in
 * another order than the AVX-512 dot steps; the same online softmax (SHIFT_SLACK), vectorized
 * over heads. One chunk is pipelined ahead: chunk c + 1's scores run on the tiles between chunk
 * c's weight stores and the weighted sum that loads them (a tile load waits for every older
 * store to reach the cache; without it 0.83-0.94x). A group past the sequence's end takes its
 * values from a copy with zeros past n (0 x NaN would be NaN: a block's free slots may hold
 * anything); its keys' extra rows give scores that are never read. Nothing depends on other rows
 * or the thread split. */
#if defined(__clang__) ? __clang_major__ >= 12 : __GNUC__ >= 11
#define TT __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")))
#define INLT static inline __attribute__((always_inline)) TT

enum { TILE_GROUPS = CHUNK / 16 };

typedef struct tile_state {
    const kern_attn_args *a;
    float *s[2], *ot;      /* scores of two chunks ([CHUNK][16], a row per position); O^T [hd][16] */
    uint32_t *qt, *pt[2];  /* Q^T pairs [hd / 2][nh]; P^T pairs of two chunks [CHUNK / 2][nh] */
    uint16_t *vtail;       /* a partial group's values, [hd][16] */
    __m512 m, sum;         /* per head (lanes): the shift, the weights' sum */
    __mmask16 hm;          /* the heads' lanes */
} tile_state;

/* Group g of the chunk at c0 (16 positions from c0 + 16 g): its key rows in place (kb, for the
 * scores), or its transposed values in place and their row stride (vb, vst, for the weighted
 * sum; the other NULL), the sequence's partial last group's values from a copy with zeros past
 * n. Returns the groups the chunk has. */
INLT int tile_groups(const tile_state *t, int c0, const uint16_t **kb, const uint16_t **vb, size_t *vst) {
    const kern_attn_args *a = t->a;
    int len = a->n - c0 < CHUNK ? a->n - c0 : CHUNK, ng = (len + 15) / 16;
    for (int g = 0; g < ng; g++) {
        int j = c0 + 16 * g;
        size_t blk = (size_t)a->blocks[j / a->bs] * a->block_stride, off = (size_t)(j % a->bs);
        if (kb) {
            kb[g] = (const uint16_t *)a->k + blk + off * (size_t)a->hd;
            continue;
        }
        vb[g] = (const uint16_t *)a->v + blk + off;
        vst[g] = (size_t)a->bs;
        if (a->n - j < 16) {
            __mmask16 keep = (__mmask16)((1u << (a->n - j)) - 1);
            for (int i = 0; i < a->hd; i++)
                _mm256_storeu_si256((__m256i *)(t->vtail + 16 * i), _mm256_maskz_loadu_epi16(keep, vb[g] + (size_t)i * a->bs));
            vb[g] = t->vtail, vst[g] = 16;
        }
    }
    return ng;
}

/* C tile g += group g's key rows (element pairs 16 kt .. 16 kt + 15) . Q^T's slice kt; tile
 * numbers are immediates, so the groups are spelled out. */
#define TILE_SCORE(g)                                                       \
    do {                                                                    \
        if (ng > (g)) {                                                     \
            _tile_loadd(4, kb[g] + 32 * (size_t)kt, 2 * a->hd);             \
            _tile_dpbf16ps(g, 4, 6);                                        \
        }                                                                   \
    } while (0)

TT static void tile_scores(const tile_state *t, int c0, float *s) {
    const kern_attn_args *a = t->a;
    const uint16_t *kb[TILE_GROUPS];
    int ng = tile_groups(t, c0, kb, NULL, NULL);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int kt = 0; kt < a->hd / 32; kt++) {
        _tile_loadd(6, t->qt + (size_t)kt * 16 * a->nh, 4 * a->nh);
        TILE_SCORE(0);
        TILE_SCORE(1);
        TILE_SCORE(2);
        TILE_SCORE(3);
    }
    _tile_stored(0, s, 64);
    if (ng > 1) _tile_stored(1, s + 16 * 16, 64);
    if (ng > 2) _tile_stored(2, s + 32 * 16, 64);
    if (ng > 3) _tile_stored(3, s + 48 * 16, 64);
}
#undef TILE_SCORE

/* The online softmax of the chunk at c0 on its score rows: the shift where a head's maximum
 * passed m + SLACK (O^T's rows and the sum rescaled by one vector), the weights rounded to bf16
 * as P^T's pairs (pt), summed two per lane as the AVX-512 dot steps do; kv_ahead stepped once a
 * pair. */
INLT void tile_softmax(tile_state *t, int c0, const float *s, uint32_t *pt, kv_ahead *pf) {
    const kern_attn_args *a = t->a;
    int len = a->n - c0 < CHUNK ? a->n - c0 : CHUNK, pairs = (len + 15) / 16 * 8;
    __m512 sc = _mm512_set1_ps(a->scale), mx = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < len; j++) mx = _mm512_max_ps(mx, _mm512_mul_ps(_mm512_loadu_ps(s + 16 * j), sc));
    __mmask16 grow = _mm512_mask_cmp_ps_mask(t->hm, mx, _mm512_add_ps(t->m, _mm512_set1_ps(SHIFT_SLACK)), _CMP_GT_OQ);
    if (grow) {
        __m512 nm = _mm512_mask_mov_ps(t->m, grow, mx);
        __mmask16 had = _mm512_cmp_ps_mask(t->m, _mm512_set1_ps(-INFINITY), _CMP_NEQ_OQ);
        __m512 cv = _mm512_mask_mov_ps(_mm512_set1_ps(1.0f), grow, _mm512_maskz_mov_ps(had, exp16(_mm512_sub_ps(t->m, nm))));
        t->sum = _mm512_mul_ps(t->sum, cv);
        for (int i = 0; i < a->hd; i++) _mm512_storeu_ps(t->ot + 16 * i, _mm512_mul_ps(_mm512_loadu_ps(t->ot + 16 * i), cv));
        t->m = nm;
    }
    /* (w[2p][h], w[2p + 1][h]) per head: the two rows' bf16 (one vcvtne2ps2bf16) interleaved */
    const __m512i il = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3,
                                        18, 2, 17, 1, 16, 0);
    const __m512bh ones = (__m512bh)_mm512_set1_epi16(0x3f80);
    for (int p = 0; p < pairs; p++) {
        kv_ahead_step(pf);
        __m512 w0 = 2 * p < len ? exp16_weights(_mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(s + 32 * p), sc), t->m)) : _mm512_setzero_ps();
        __m512 w1 = 2 * p + 1 < len ? exp16_weights(_mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(s + 32 * p + 16), sc), t->m)) : _mm512_setzero_ps();
        __m512i pr = _mm512_permutexvar_epi16(il, (__m512i)_mm512_cvtne2ps_pbh(w1, w0));
        t->sum = _mm512_dpbf16_ps(t->sum, (__m512bh)pr, ones);
        _mm512_mask_storeu_epi32(pt + (size_t)p * a->nh, t->hm, pr);
    }
}

/* O^T tile c (elements 16 (r0 + c) ..) += group g's transposed values . P^T's pairs of the group. */
#define TILE_PV(c)                                                                             \
    do {                                                                                       \
        if (nr > (c)) {                                                                        \
            _tile_loadd(5, vb[g] + (size_t)(r0 + (c)) * 16 * vst[g], 2 * vst[g]);              \
            _tile_dpbf16ps(c, 5, 7);                                                           \
        }                                                                                      \
    } while (0)
#define TILE_OT(op, c)                                                                         \
    do {                                                                                       \
        if (nr > (c)) op(c, t->ot + (size_t)(r0 + (c)) * 16 * 16, 64);                         \
    } while (0)

TT static void tile_pv(const tile_state *t, int c0, const uint32_t *pt) {
    const kern_attn_args *a = t->a;
    const uint16_t *vb[TILE_GROUPS];
    size_t vst[TILE_GROUPS];
    int ng = tile_groups(t, c0, NULL, vb, vst);
    for (int r0 = 0; r0 < a->hd / 16; r0 += 4) {
        int nr = a->hd / 16 - r0 < 4 ? a->hd / 16 - r0 : 4;
        TILE_OT(_tile_loadd, 0);
        TILE_OT(_tile_loadd, 1);
        TILE_OT(_tile_loadd, 2);
        TILE_OT(_tile_loadd, 3);
        for (int g = 0; g < ng; g++) {
            _tile_loadd(7, pt + (size_t)g * 8 * a->nh, 4 * a->nh);
            TILE_PV(0);
            TILE_PV(1);
            TILE_PV(2);
            TILE_PV(3);
        }
        TILE_OT(_tile_stored, 0);
        TILE_OT(_tile_stored, 1);
        TILE_OT(_tile_stored, 2);
        TILE_OT(_tile_stored, 3);
    }
}
#undef TILE_PV
#undef TILE_OT

/* Tiles 0-3 C (16 positions or elements x nh f32), 4 K rows (16 x 16 pairs), 5 V^T (16 x 8
 * pairs), 6 Q^T (16 pairs x nh), 7 P^T (8 pairs x nh). */
TT static void tile_config(int nh) {
    uint8_t rows[8] = {16, 16, 16, 16, 16, 16, 16, 8};
    uint16_t colsb[8];
    for (int i = 0; i < 8; i++) colsb[i] = (uint16_t)(4 * nh);
    colsb[4] = 64, colsb[5] = 32;
    pk_amx_config(rows, colsb);
}

TT static void attn_tiles(const kern_attn_args *a) {
    int nh = a->nh, hd = a->hd;
    tile_state t = {.a = a, .hm = (__mmask16)((1u << nh) - 1)};
    t.s[0] = a->scratch, t.s[1] = t.s[0] + CHUNK * 16, t.ot = t.s[1] + CHUNK * 16;
    t.qt = (uint32_t *)(t.ot + (size_t)hd * 16), t.pt[0] = t.qt + (size_t)hd / 2 * nh, t.pt[1] = t.pt[0] + CHUNK / 2 * nh;
    t.vtail = (uint16_t *)(t.pt[1] + CHUNK / 2 * nh);
    t.m = _mm512_set1_ps(-INFINITY), t.sum = _mm512_setzero_ps();
    tile_config(nh);
    /* Q^T's pairs: head h's row rounded to bf16 (32 elements a vcvtne2ps2bf16), pair i to qt[i][h] */
    const __m512i col = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(nh));
    for (int h = 0; h < nh; h++)
        for (int i0 = 0; i0 < hd; i0 += 32) {
            const float *q = a->q + (size_t)h * hd + i0;
            __m512i b = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(q + 16), _mm512_loadu_ps(q));
            _mm512_i32scatter_epi32(t.qt + (size_t)i0 / 2 * nh + h, col, b, 4);
        }
    memset(t.ot, 0, (size_t)hd * 16 * sizeof(float));
    for (int c = 0; c < PF_AHEAD * CHUNK; c += CHUNK) prefetch_kv(a, c);
    int nch = (a->n + CHUNK - 1) / CHUNK;
    kv_ahead pf;
    kv_ahead_plan(&pf, a, PF_AHEAD * CHUNK, CHUNK / 2);
    tile_scores(&t, 0, t.s[0]);
    tile_softmax(&t, 0, t.s[0], t.pt[0], &pf);
    kv_ahead_finish(&pf);
    for (int c = 0; c < nch; c++) {
        int c1 = (c + 1) * CHUNK;
        if (c + 1 < nch) tile_scores(&t, c1, t.s[(c + 1) & 1]);
        tile_pv(&t, c * CHUNK, t.pt[c & 1]);
        if (c + 1 < nch) {
            kv_ahead_plan(&pf, a, c1 + PF_AHEAD * CHUNK, CHUNK / 2);
            tile_softmax(&t, c1, t.s[(c + 1) & 1], t.pt[(c + 1) & 1], &pf);
            kv_ahead_finish(&pf);
        }
    }
    /* out[h][i] = O^T[i][h] / sum[h] */
    _Alignas(64) float inv[16];
    _mm512_store_ps(inv, _mm512_div_ps(_mm512_set1_ps(1.0f), t.sum));
    const __m512i rows16 = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(16));
    for (int h = 0; h < nh; h++)
        for (int i0 = 0; i0 < hd; i0 += 16) {
            __m512 o = _mm512_i32gather_ps(_mm512_add_epi32(rows16, _mm512_set1_epi32(h)), t.ot + (size_t)i0 * 16, 4);
            _mm512_storeu_ps(a->out + (size_t)h * hd + i0, _mm512_mul_ps(o, _mm512_set1_ps(inv[h])));
        }
}
#define HAVE_ATTN_TILES 1
#endif
#endif

/* ---- The AVX2 steps: attn_avx512's f32 steps 8 lanes wide (scores of 8 positions per vector
 * from the transposed keys, shared by the heads; exp8; the weighted sums in registers), for head
 * sizes that are multiples of 8. A 16-bit cache is read in place and widened in registers (a
 * key vector serves the group's heads, a value vector up to 3): converting each chunk into an f32
 * buffer first cost what the halved reads saved, so a BF16 cache was no faster than an F32 one. */
#if defined(__x86_64__) && defined(__GNUC__)
#include "vmath_avx2.h" /* exp8, lanes8, hsum8, hmax8 */

#define T2A __attribute__((target("avx2,fma,f16c")))
#define INL2 static inline __attribute__((always_inline)) T2A

/* Elements i .. i + 7 of a cache of dtype as f32. */
INL2 __m256 load8(const void *base, int dtype, size_t i) {
    if (dtype == S1C_BF16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + i))), 16));
    if (dtype == S1C_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + i)));
    return _mm256_loadu_ps((const float *)base + i);
}

/* The chunk's V rows in place (each row's first element; the cache's type). */
INL2 void rows8(const kern_attn_args *a, int c0, int len, const void **rows) {
    size_t es = (size_t)s1c_dtype_type_size(a->dtype);
    for (int j = 0, b = c0 / a->bs, off = c0 % a->bs; j < len; j++) {
        rows[j] = (const char *)a->v + ((size_t)a->blocks[b] * a->block_stride + (size_t)off * a->ld) * es;
        if (++off == a->bs) off = 0, b++;
    }
}

/* The chunk's keys in groups of 8 positions, transposed: element i of group g at kt[g] + i * kst
 * elements. In place (the cache's type, kst = bs) where blocks hold whole groups; else gathered
 * into buf as f32 (kst = 8; lanes past the sequence 0, never stored as scores). Returns the type
 * kt points at. */
INL2 int keys8(const kern_attn_args *a, int c0, int len, float *buf, const void **kt, size_t *kst) {
    if (a->bs % 8 == 0) {
        size_t at[CHUNK / 8], es = (size_t)s1c_dtype_type_size(a->dtype);
        group_keys_at(a, c0, len, 8, at);
        for (int g = 0; 8 * g < len; g++) kt[g] = (const char *)a->k + at[g] * es;
        *kst = (size_t)a->bs;
        return a->dtype;
    }
    for (int g = 0; 8 * g < len; g++) {
        float *dst = buf + (size_t)g * 8 * a->hd;
        kt[g] = dst;
        for (int jj = 0, cnt = len - 8 * g; jj < 8; jj++) {
            size_t r = jj < cnt ? key_at(a, c0 + 8 * g + jj) : 0;
            for (int i = 0; i < a->hd; i++) dst[8 * i + jj] = jj < cnt ? elem(a->k, a->dtype, r + (size_t)i * a->bs) : 0.0f;
        }
    }
    *kst = 8;
    return S1C_F32;
}

/* Scores of HH heads for NG groups of 8 positions (one FMA chain per score over the key's
 * elements from 0, times scale), stored for the groups' first `len` positions; keys of type DT. */
INL2 void scores8(const int HH, const int NG, const int DT, float *s, const float *q, int hd, const void *const *kt, size_t kst, int len,
                  float scale) {
    __m256 acc[8][4];
    for (int h = 0; h < HH; h++)
        for (int g = 0; g < NG; g++) acc[h][g] = _mm256_setzero_ps();
    for (int i = 0; i < hd; i++) {
        __m256 kv[4];
        for (int g = 0; g < NG; g++) kv[g] = load8(kt[g], DT, (size_t)i * kst);
        for (int h = 0; h < HH; h++) {
            __m256 qb = _mm256_broadcast_ss(q + (size_t)h * hd + i);
            for (int g = 0; g < NG; g++) acc[h][g] = _mm256_fmadd_ps(qb, kv[g], acc[h][g]);
        }
    }
    for (int g = 0; g < NG; g++) {
        __m256i mk = lanes8(len - 8 * g);
        for (int h = 0; h < HH; h++) _mm256_maskstore_ps(s + h * CHUNK + 8 * g, mk, _mm256_mul_ps(acc[h][g], _mm256_set1_ps(scale)));
    }
}

/* scores8 for hh heads and ng groups (the shapes scores_chunk8 takes). */
INL2 void scores_tile8(const int DT, int hh, int ng, float *s, const float *q, int hd, const void *const *kt, size_t kst, int len,
                       float scale) {
    if (ng == 4) hh == 1 ? scores8(1, 4, DT, s, q, hd, kt, kst, len, scale) : scores8(2, 4, DT, s, q, hd, kt, kst, len, scale);
    else if (ng == 2)
        switch (hh) {
        case 1: scores8(1, 2, DT, s, q, hd, kt, kst, len, scale); break;
        case 2: scores8(2, 2, DT, s, q, hd, kt, kst, len, scale); break;
        case 3: scores8(3, 2, DT, s, q, hd, kt, kst, len, scale); break;
        default: scores8(4, 2, DT, s, q, hd, kt, kst, len, scale); break;
        }
    else
        switch (hh) {
        case 1: scores8(1, 1, DT, s, q, hd, kt, kst, len, scale); break;
        case 2: scores8(2, 1, DT, s, q, hd, kt, kst, len, scale); break;
        case 3: scores8(3, 1, DT, s, q, hd, kt, kst, len, scale); break;
        case 4: scores8(4, 1, DT, s, q, hd, kt, kst, len, scale); break;
        case 5: scores8(5, 1, DT, s, q, hd, kt, kst, len, scale); break;
        case 6: scores8(6, 1, DT, s, q, hd, kt, kst, len, scale); break;
        case 7: scores8(7, 1, DT, s, q, hd, kt, kst, len, scale); break;
        default: scores8(8, 1, DT, s, q, hd, kt, kst, len, scale); break;
        }
}

/* Every head's scores over the chunk, heads 8 at a time: few heads take several groups of
 * positions at once (enough independent chains for both FMA pipes; HH x NG <= 8 accumulators). */
INL2 void scores_chunk8_t(const int DT, const kern_attn_args *a, float *s, const void *const *kt, size_t kst, int len) {
    int hd = a->hd, groups = (len + 7) / 8;
    for (int h0 = 0; h0 < a->nh; h0 += 8) {
        int hh = a->nh - h0 < 8 ? a->nh - h0 : 8;
        for (int g = 0, ng; g < groups; g += ng) {
            ng = hh <= 2 ? 4 : hh <= 4 ? 2 : 1;
            while (ng > groups - g) ng /= 2;
            scores_tile8(DT, hh, ng, s + h0 * CHUNK + 8 * g, a->q + (size_t)h0 * hd, hd, kt + g, kst, len - 8 * g, a->scale);
        }
    }
}

/* One out-of-line copy per key type (the unrolled tiles are large). */
static T2A __attribute__((noinline)) void scores_chunk8_f32(const kern_attn_args *a, float *s, const void *const *kt, size_t kst, int len) {
    scores_chunk8_t(S1C_F32, a, s, kt, kst, len);
}
static T2A __attribute__((noinline)) void scores_chunk8_f16(const kern_attn_args *a, float *s, const void *const *kt, size_t kst, int len) {
    scores_chunk8_t(S1C_F16, a, s, kt, kst, len);
}
static T2A __attribute__((noinline)) void scores_chunk8_bf16(const kern_attn_args *a, float *s, const void *const *kt, size_t kst, int len) {
    scores_chunk8_t(S1C_BF16, a, s, kt, kst, len);
}

/* The online softmax of every head over the chunk (see SHIFT_SLACK): weights exp8(s - m) written
 * over the scores (0 past len), their sum in 8 lanes per head. */
INL2 void softmax8(float *s, int nh, int len, float *m, float *sum8, float *out, int hd) {
    int groups = (len + 7) / 8;
    for (int h = 0; h < nh; h++) {
        float *sh = s + h * CHUNK;
        __m256 v[CHUNK / 8], vmax = _mm256_set1_ps(-INFINITY);
        for (int g = 0; g < groups; g++) {
            __m256i mk = lanes8(len - 8 * g);
            v[g] = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(sh + 8 * g, mk), _mm256_castsi256_ps(mk));
            vmax = _mm256_max_ps(vmax, v[g]);
        }
        if (m[h] == -INFINITY || _mm256_movemask_ps(_mm256_cmp_ps(vmax, _mm256_set1_ps(m[h] + SHIFT_SLACK), _CMP_GT_OQ))) {
            float mx = hmax8(vmax);
            if (m[h] != -INFINITY) { /* else the sum and the output are still zeros */
                __m256 cv = _mm256_set1_ps(expf(m[h] - mx));
                _mm256_storeu_ps(sum8 + 8 * h, _mm256_mul_ps(_mm256_loadu_ps(sum8 + 8 * h), cv));
                for (int i = 0; i < hd; i += 8) _mm256_storeu_ps(out + (size_t)h * hd + i, _mm256_mul_ps(_mm256_loadu_ps(out + (size_t)h * hd + i), cv));
            }
            m[h] = mx;
        }
        __m256 mv = _mm256_set1_ps(m[h]), ps = _mm256_loadu_ps(sum8 + 8 * h);
        for (int g = 0; g < groups; g++) {
            __m256 p = _mm256_and_ps(exp8(_mm256_sub_ps(v[g], mv)), _mm256_castsi256_ps(lanes8(len - 8 * g)));
            _mm256_storeu_ps(sh + 8 * g, p);
            ps = _mm256_add_ps(ps, p);
        }
        _mm256_storeu_ps(sum8 + 8 * h, ps);
    }
}

/* o_h[i0 .. i0 + 32) += sum_j p_h[j] v_j, j increasing, for HH heads at once (each value vector
 * loaded, and widened, once for the HH heads); values of type DT. */
INL2 void pv8(const int HH, const int DT, float *const *o, const float *const *p, const void *const *vr, int len, int i0, kv_ahead *pf) {
    __m256 acc[3][4];
    for (int h = 0; h < HH; h++)
        for (int c = 0; c < 4; c++) acc[h][c] = _mm256_loadu_ps(o[h] + i0 + 8 * c);
    for (int j = 0; j < len; j++) {
        if (j % PF_EVERY == 0) kv_ahead_step(pf);
        /* the weights first, then one value vector at a time: 12 accumulators + 3 + 1 fit the 16
         * ymm registers (four value vectors at once spilled an accumulator every step) */
        __m256 pj[3];
        for (int h = 0; h < HH; h++) pj[h] = _mm256_broadcast_ss(p[h] + j);
        for (int c = 0; c < 4; c++) {
            __m256 v = load8(vr[j], DT, (size_t)(i0 + 8 * c));
            for (int h = 0; h < HH; h++) acc[h][c] = _mm256_fmadd_ps(pj[h], v, acc[h][c]);
        }
    }
    for (int h = 0; h < HH; h++)
        for (int c = 0; c < 4; c++) _mm256_storeu_ps(o[h] + i0 + 8 * c, acc[h][c]);
}

/* A slice narrower than 32 (hd % 32 == 8, 16, 24): one head, 8 columns at a time. */
INL2 void pv8_narrow(const int DT, float *o, const float *p, const void *const *vr, int len, int i0) {
    __m256 acc = _mm256_loadu_ps(o + i0);
    for (int j = 0; j < len; j++) acc = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j), load8(vr[j], DT, (size_t)i0), acc);
    _mm256_storeu_ps(o + i0, acc);
}

INL2 void pv_chunk8_t(const int DT, const kern_attn_args *a, const float *s, const void *const *vr, int len, kv_ahead *pf) {
    int hd = a->hd;
    for (int h = 0; h < a->nh; h += 3) {
        int hh = a->nh - h < 3 ? a->nh - h : 3;
        float *o[3];
        const float *p[3];
        for (int k = 0; k < hh; k++) o[k] = a->out + (size_t)(h + k) * hd, p[k] = s + (h + k) * CHUNK;
        int i0 = 0;
        for (; i0 + 32 <= hd; i0 += 32) {
            if (hh == 3) pv8(3, DT, o, p, vr, len, i0, pf);
            else if (hh == 2) pv8(2, DT, o, p, vr, len, i0, pf);
            else pv8(1, DT, o, p, vr, len, i0, pf);
        }
        for (; i0 < hd; i0 += 8)
            for (int k = 0; k < hh; k++) pv8_narrow(DT, o[k], p[k], vr, len, i0);
    }
}

static T2A __attribute__((noinline)) void pv_chunk8_f32(const kern_attn_args *a, const float *s, const void *const *vr, int len, kv_ahead *pf) {
    pv_chunk8_t(S1C_F32, a, s, vr, len, pf);
}
static T2A __attribute__((noinline)) void pv_chunk8_f16(const kern_attn_args *a, const float *s, const void *const *vr, int len, kv_ahead *pf) {
    pv_chunk8_t(S1C_F16, a, s, vr, len, pf);
}
static T2A __attribute__((noinline)) void pv_chunk8_bf16(const kern_attn_args *a, const float *s, const void *const *vr, int len, kv_ahead *pf) {
    pv_chunk8_t(S1C_BF16, a, s, vr, len, pf);
}

static T2A void attn_avx2(const kern_attn_args *a) {
    int nh = a->nh, hd = a->hd;
    float *s = a->scratch, *kbuf = a->scratch + KERN_ATTN_MAX_HEADS * CHUNK;
    float m[KERN_ATTN_MAX_HEADS], sum8[8 * KERN_ATTN_MAX_HEADS];
    const void *kt[CHUNK / 8], *vr[CHUNK];
    size_t kst;
    attn_start(a, m, sum8, 8);
    for (int c = 0; c < PF_AHEAD * CHUNK; c += CHUNK) prefetch_kv(a, c);
    for (int c0 = 0; c0 < a->n; c0 += CHUNK) {
        int len = a->n - c0 < CHUNK ? a->n - c0 : CHUNK;
        kv_ahead pf; /* pv8's calls: heads 3 at a time, 32 elements at a time */
        kv_ahead_plan(&pf, a, c0 + PF_AHEAD * CHUNK, (nh + 2) / 3 * (hd / 32) * ((len + PF_EVERY - 1) / PF_EVERY));
        int kdt = keys8(a, c0, len, kbuf, kt, &kst);
        if (kdt == S1C_BF16) scores_chunk8_bf16(a, s, kt, kst, len);
        else if (kdt == S1C_F16) scores_chunk8_f16(a, s, kt, kst, len);
        else scores_chunk8_f32(a, s, kt, kst, len);
        softmax8(s, nh, len, m, sum8, a->out, hd);
        rows8(a, c0, len, vr);
        if (a->dtype == S1C_BF16) pv_chunk8_bf16(a, s, vr, len, &pf);
        else if (a->dtype == S1C_F16) pv_chunk8_f16(a, s, vr, len, &pf);
        else pv_chunk8_f32(a, s, vr, len, &pf);
        kv_ahead_finish(&pf);
    }
    for (int h = 0; h < nh; h++) {
        __m256 inv = _mm256_set1_ps(1.0f / hsum8(_mm256_loadu_ps(sum8 + 8 * h)));
        for (int i = 0; i < hd; i += 8) _mm256_storeu_ps(a->out + (size_t)h * hd + i, _mm256_mul_ps(_mm256_loadu_ps(a->out + (size_t)h * hd + i), inv));
    }
}
#endif

static bool takes_avx512(const kern_attn_args *a) { return a->hd <= KERN_ATTN_CONV_HD && kern_family() == KERN_AVX512; }

bool kern_attention_tiles(int dtype, int nh, int hd, int bs) {
#ifdef HAVE_ATTN_TILES
    return dtype == S1C_BF16 && nh >= 1 && nh <= 16 && hd % 32 == 0 && hd > 0 && hd <= 128 && bs % 16 == 0 && bs > 0 &&
           kern_family() == KERN_AVX512 && kern_avx512bf16_supported() && pk_amx_on();
#else
    (void)dtype, (void)nh, (void)hd, (void)bs;
    return false;
#endif
}

/* The AMX steps for a cache in the tile layout (else the generic steps read it). */
static bool tiles_run(const kern_attn_args *a) { return a->tiles && a->bf16_dot && kern_attention_tiles(a->dtype, a->nh, a->hd, a->bs); }

void kern_attention_done(void) { pk_amx_release(); }

/* The dot steps' conditions once the avx512 steps are taken. */
static bool dot_in_avx512(const kern_attn_args *a) {
    return a->dtype == S1C_BF16 && a->bf16_dot && a->hd % 2 == 0 && kern_avx512bf16_supported();
}

bool kern_attention_dot(const kern_attn_args *a) { return a->tiles ? tiles_run(a) : takes_avx512(a) && dot_in_avx512(a); }

void kern_attention(const kern_attn_args *a) {
#ifdef HAVE_ATTN_TILES
    if (tiles_run(a)) {
        attn_tiles(a);
        return;
    }
#endif
    if (a->tiles) { /* read element by element */
        attn_generic(a);
        return;
    }
#if defined(__x86_64__) && defined(__GNUC__)
    if (takes_avx512(a)) {
        attn_avx512(a, dot_in_avx512(a));
        return;
    }
    if (a->hd % 8 == 0 && a->hd <= KERN_ATTN_CONV_HD && kern_family() == KERN_AVX2) {
        attn_avx2(a);
        return;
    }
#endif
    attn_generic(a);
}
