/* kern_attention (flash-style over paged KV blocks, online softmax by 64-position chunks) against
 * a direct softmax in double, for every family, K/V in F32, F16 and BF16, head sizes with tails,
 * lengths around the chunk and block boundaries, GQA groups of 1..7 heads and shuffled block
 * tables. Tolerance: |out - ref| <= 1e-5 * (1 + max_j |v_j|) per element (the softmax weights
 * are within ~1e-6 relative; the values are read exactly as stored). Each family runs its own
 * steps (ref: kern_dot / kern_axpy per position; avx2 and avx512: 8 / 16 positions a vector, their
 * head-size and block-size cases above); a row's result cannot depend on other rows (one call per row),
 * and calling twice gives the same bits. Also kern_swiglu, which shares the vector exp. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kern_internal.h" /* pk_amx_on */
#include "kernels/kernels.h"
#include "testutil.h"

static const char *families[] = {"ref", "avx2", "avx512"};

typedef struct cache {
    int dtype, bs, n_blocks, kv_dim;
    bool tiles; /* the tile layout */
    void *k, *v;
    int32_t *blocks; /* the sequence's table: a permutation of the blocks */
} cache;

static void put(void *base, int dtype, size_t i, float x) {
    if (dtype == S1C_F16) ((uint16_t *)base)[i] = s1c_f32_to_f16(x);
    else if (dtype == S1C_BF16) ((uint16_t *)base)[i] = s1c_f32_to_bf16(x);
    else ((float *)base)[i] = x;
}

static double get(const void *base, int dtype, size_t i) {
    if (dtype == S1C_F16) return s1c_f16_to_f32(((const uint16_t *)base)[i]);
    if (dtype == S1C_BF16) return s1c_bf16_to_f32(((const uint16_t *)base)[i]);
    return ((const float *)base)[i];
}

/* The KV cache's layout (src/model/kv_cache.c), written here from its description: per block,
 * K [kv_dim][bs] (transposed), V [kv_heads][bs][hd]; in the tile layout (kern_attn_args.tiles)
 * K [kv_heads][bs][hd], V [kv_dim][bs]. Element i of position j, KV head g: */
static size_t transposed_at(const cache *c, int j, int g, int hd, int i) {
    return (size_t)c->blocks[j / c->bs] * c->bs * c->kv_dim + ((size_t)g * hd + (size_t)i) * c->bs + (size_t)(j % c->bs);
}

static size_t row_at(const cache *c, int j, int g, int hd, int i) {
    return (size_t)c->blocks[j / c->bs] * c->bs * c->kv_dim + ((size_t)g * c->bs + (size_t)(j % c->bs)) * hd + (size_t)i;
}

static size_t k_at(const cache *c, int j, int g, int hd, int i) { return c->tiles ? row_at(c, j, g, hd, i) : transposed_at(c, j, g, hd, i); }
static size_t v_at(const cache *c, int j, int g, int hd, int i) { return c->tiles ? transposed_at(c, j, g, hd, i) : row_at(c, j, g, hd, i); }

static bool check_layout(s1c_rng *r, int dtype, int bs, int nh, int hd, int n, int n_kv, bool dot, bool tiles);

static bool check(s1c_rng *r, int dtype, int bs, int nh, int hd, int n, int n_kv, bool dot) {
    return check_layout(r, dtype, bs, nh, hd, n, n_kv, dot, false);
}

/* dot: ask for the bf16 dot steps; where they are taken the reference's query is rounded to
 * bf16 as theirs is, and the tolerance is that of the softmax weights rounded to bf16 (relative
 * 2^-9 each: the output moves by at most ~2^-8 of the values' range). Returns whether they were. */
static bool check_layout(s1c_rng *r, int dtype, int bs, int nh, int hd, int n, int n_kv, bool dot, bool tiles) {
    cache c = {dtype, bs, (n + bs - 1) / bs + 1, n_kv * hd, tiles, NULL, NULL, NULL};
    size_t es = dtype == S1C_F32 ? 4 : 2, elems = (size_t)c.n_blocks * c.bs * c.kv_dim;
    c.k = malloc(elems * es);
    c.v = malloc(elems * es);
    c.blocks = malloc((size_t)c.n_blocks * sizeof(int32_t));
    for (int i = 0; i < c.n_blocks; i++) c.blocks[i] = c.n_blocks - 1 - i; /* reversed: not in memory order */
    for (size_t i = 0; i < elems; i++) {
        put(c.k, dtype, i, 2.0f * s1c_rng_normal(r));
        put(c.v, dtype, i, s1c_rng_normal(r));
    }
    /* past n the sequence's last block may hold anything (a cache's free slots): NaN here, and
     * none of it may reach the output (whole 16-position groups are read in place) */
    for (int j = n; j < (n + bs - 1) / bs * bs; j++)
        for (int g = 0; g < n_kv; g++)
            for (int i = 0; i < hd; i++) put(c.k, dtype, k_at(&c, j, g, hd, i), NAN), put(c.v, dtype, v_at(&c, j, g, hd, i), NAN);
    float *q = malloc((size_t)nh * hd * sizeof(float)), *out = malloc((size_t)nh * hd * sizeof(float));
    float *out2 = malloc((size_t)nh * hd * sizeof(float)), *scratch = malloc(KERN_ATTN_SCRATCH * sizeof(float));
    for (int i = 0; i < nh * hd; i++) q[i] = s1c_rng_normal(r);
    double *w = malloc((size_t)n * sizeof(double));
    int g = n_kv - 1; /* the last KV head: offsets inside a row are exercised */
    kern_attn_args a = {q, out, nh, hd, n, c.bs, dtype, (const uint8_t *)c.k + (size_t)g * hd * c.bs * es,
                        (const uint8_t *)c.v + (size_t)g * c.bs * hd * es, c.blocks, (size_t)c.bs * c.kv_dim, (size_t)hd,
                        1.0f / sqrtf((float)hd), scratch, dot, 0, tiles};
    bool dotted = kern_attention_dot(&a);
    double tol = dotted ? 1.0 / 256 : 1e-5;
    if (dotted)
        for (int i = 0; i < nh * hd; i++) q[i] = s1c_bf16_to_f32(s1c_f32_to_bf16(q[i])); /* as the kernel rounds it */
    kern_attention(&a);
    a.out = out2;
    a.n_cached = n / 2; /* a hint (no prefetch of the first chunks): the same bits */
    kern_attention(&a);
    assert_memory_equal(out, out2, (size_t)nh * hd * sizeof(float));
    for (int h = 0; h < nh; h++) {
        double mx = -INFINITY, sum = 0, vmax = 0;
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int i = 0; i < hd; i++) s += (double)q[h * hd + i] * get(c.k, dtype, k_at(&c, j, g, hd, i));
            w[j] = s / sqrt((double)hd);
            mx = fmax(mx, w[j]);
        }
        for (int j = 0; j < n; j++) sum += (w[j] = exp(w[j] - mx));
        for (int i = 0; i < hd; i++) {
            double o = 0;
            for (int j = 0; j < n; j++) {
                double v = get(c.v, dtype, v_at(&c, j, g, hd, i));
                o += w[j] / sum * v;
                vmax = fmax(vmax, fabs(v));
            }
            double got = out[h * hd + i];
            if (!(fabs(got - o) <= tol * (1 + vmax)))
                fail_msg("%s %s%s%s bs=%d nh=%d hd=%d n=%d: out[%d][%d] = %.9g, reference %.9g", kern_name(), s1c_dtype_name(dtype),
                         dotted ? " dot" : "", tiles ? " tiles" : "", bs, nh, hd, n, h, i, got, o);
        }
    }
    free(w); free(q); free(out); free(out2); free(scratch); free(c.k); free(c.v); free(c.blocks);
    return dotted;
}

static void test_attention(void **state) {
    (void)state;
    /* {cache type, dot}: BF16 in f32 arithmetic and in bf16 dot products */
    static const int dtypes[][2] = {{S1C_F32, 0}, {S1C_F16, 0}, {S1C_BF16, 0}, {S1C_BF16, 1}};
    static const int ns[] = {1, 2, 15, 16, 17, 63, 64, 65, 130, 300};
    /* {head size, heads}: Qwen's 64 x 7, head counts for every score tile (1-3: four groups at
     * once; 4-8: two; 12: a tile of 8 and one of 4), odd sizes, slices of 128 (144, 256), and a
     * head too wide for the converted rows (272: the generic steps) */
    static const int hds[][2] = {{64, 7}, {24, 1}, {80, 2}, {8, 3}, {128, 5}, {144, 2}, {256, 1}, {272, 2}, {64, 8}, {32, 12}, {16, 4}};
    /* block sizes: 16 (keys read in place), 32 (two groups a block), 5 (groups straddle blocks: gathered) */
    static const int bss[] = {16, 32, 5};
    s1c_rng r;
    s1c_rng_seed(&r, 11);
    int dotted = 0;
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        if (kern_select(families[f]) != 0) continue;
        for (size_t d = 0; d < sizeof dtypes / sizeof *dtypes; d++)
            for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
                for (size_t h = 0; h < sizeof hds / sizeof *hds; h++)
                    for (size_t b = 0; b < sizeof bss / sizeof *bss; b++)
                        dotted += check(&r, dtypes[d][0], bss[b], hds[h][1], hds[h][0], ns[i], 2, dtypes[d][1]);
    }
    /* the dot steps: every even head size up to 256, on a CPU that has them; only there */
    printf("attention: %d cases in bf16 dot products%s\n", dotted, dotted ? "" : " (this CPU has no AVX512_BF16)");
    assert_true(dotted == 0 || dotted == 10 * 10 * 3);
    assert_int_equal(kern_select("auto"), 0);
}

/* A cache in the tile layout (kern_attn_args.tiles: K rows, V transposed): where the CPU and
 * the shape allow (kern_attention_tiles, AMX) the bf16 dot steps on tiles, else (another family,
 * f32 arithmetic, a shape the tiles do not take) the generic steps reading it element by element;
 * against the double reference, with NaN past n in the last block as everywhere. Head sizes 32 to
 * 128 (O^T in one or two passes of 4 C tiles), groups of 1 to 16 heads, blocks of 16, 32 and 48
 * (groups inside a block at every offset), lengths around groups, chunks and blocks. */
static void test_attention_tiles(void **state) {
    (void)state;
    static const int hds[][2] = {{64, 7}, {128, 5}, {64, 16}, {32, 12}, {96, 3}, {64, 1}, {128, 8}};
    static const int ns[] = {1, 2, 15, 16, 17, 31, 33, 63, 64, 65, 130, 300};
    static const int bss[] = {16, 32, 48};
    s1c_rng r;
    s1c_rng_seed(&r, 29);
    int on_tiles = 0, cases = 0;
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        if (kern_select(families[f]) != 0) continue;
        for (int dot = 0; dot < 2; dot++)
            for (size_t h = 0; h < sizeof hds / sizeof *hds; h++)
                for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
                    for (size_t b = 0; b < sizeof bss / sizeof *bss; b++) {
                        bool amx = dot && kern_attention_tiles(S1C_BF16, hds[h][1], hds[h][0], bss[b]);
                        bool dotted = check_layout(&r, S1C_BF16, bss[b], hds[h][1], hds[h][0], ns[i], 2, dot, true);
                        assert_true(dotted == amx); /* the tiles take the dot steps, nothing else does in this layout */
                        on_tiles += amx;
                        cases++;
                    }
    }
    printf("attention, tile layout: %d cases, %d on AMX tiles%s\n", cases, on_tiles, on_tiles ? "" : " (this CPU or build has no AMX)");
    assert_int_equal(kern_select("auto"), 0);
    if (kern_select("avx512") == 0 && kern_avx512bf16_supported() && pk_amx_on()) assert_int_equal(on_tiles, 7 * 12 * 3);
    /* the layout needs AMX and the shapes above */
    assert_false(kern_attention_tiles(S1C_F32, 7, 64, 16));
    assert_false(kern_attention_tiles(S1C_BF16, 17, 64, 16));
    assert_false(kern_attention_tiles(S1C_BF16, 7, 48, 16));
    assert_false(kern_attention_tiles(S1C_BF16, 7, 64, 8));
    assert_int_equal(kern_select("auto"), 0);
}

/* The tile steps' online softmax per head (lanes): scores that climb at a different rate for
 * each of 7 heads (0.05 to 0.35 a position: 3.2 to 22 a chunk, so heads move their shift in
 * different chunks, some under the slack of 8 for several chunks), over 700 positions in the tile
 * layout, against a softmax in double on the bf16 values the kernel reads. */
static void test_attention_tiles_climb(void **state) {
    (void)state;
    enum { HD = 64, NH = 7, N = 700, NB = (N + 15) / 16 };
    static uint16_t k[NB * 16 * HD], v[NB * 16 * HD];
    float q[NH * HD], out[NH * HD];
    static float scratch[KERN_ATTN_SCRATCH];
    int32_t blocks[NB];
    for (int i = 0; i < NB; i++) blocks[i] = NB - 1 - i;
    memset(k, 0, sizeof k);
    for (int j = 0; j < NB * 16; j++) { /* block b's K rows [16][HD], V [HD][16] */
        size_t blk = (size_t)blocks[j / 16] * 16 * HD, off = (size_t)(j % 16);
        k[blk + off * HD] = s1c_f32_to_bf16(j < N ? (float)j : 0.0f); /* element 0 of key j */
        for (int i = 0; i < HD; i++) v[blk + (size_t)i * 16 + off] = s1c_f32_to_bf16((float)((j * 7 + i) % 13) - 6.0f);
    }
    memset(q, 0, sizeof q);
    for (int h = 0; h < NH; h++) q[h * HD] = 0.05f * (float)(h + 1); /* the reference rounds it to bf16 as the tiles do */
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        if (kern_select(families[f]) != 0) continue;
        kern_attn_args a = {q, out, NH, HD, N, 16, S1C_BF16, k, v, blocks, 16 * HD, HD, 1.0f, scratch, true, 0, true};
        kern_attention(&a);
        bool dotted = kern_attention_dot(&a);
        for (int h = 0; h < NH; h++) {
            double qh = dotted ? s1c_bf16_to_f32(s1c_f32_to_bf16(q[h * HD])) : q[h * HD], w[N], mx = -INFINITY, sum = 0;
            for (int j = 0; j < N; j++) mx = fmax(mx, w[j] = qh * s1c_bf16_to_f32(k[(size_t)blocks[j / 16] * 16 * HD + (size_t)(j % 16) * HD]));
            for (int j = 0; j < N; j++) sum += (w[j] = exp(w[j] - mx));
            for (int i = 0; i < HD; i++) {
                double ref = 0;
                for (int j = 0; j < N; j++) ref += w[j] / sum * s1c_bf16_to_f32(v[(size_t)blocks[j / 16] * 16 * HD + (size_t)i * 16 + (size_t)(j % 16)]);
                if (!(fabs(out[h * HD + i] - ref) <= (dotted ? 6.0 / 256 : 1e-5 * 7)))
                    fail_msg("%s%s: out[%d][%d] = %.9g, reference %.9g", kern_name(), dotted ? " tiles" : "", h, i, out[h * HD + i], ref);
            }
        }
    }
    assert_int_equal(kern_select("auto"), 0);
}

/* Scores far apart (a huge first score, then much larger ones): the running max is replaced and
 * earlier sums rescaled without overflow or NaN. */
static void test_attention_rescale(void **state) {
    (void)state;
    enum { HD = 16, N = 200, NB = (N + 15) / 16 };
    float k[NB * 16 * HD], v[NB * 16 * HD], q[HD], out[HD], scratch[KERN_ATTN_SCRATCH]; /* whole blocks, as a cache has */
    int32_t blocks[NB];
    for (int i = 0; i < NB; i++) blocks[i] = i;
    memset(k, 0, sizeof k);
    memset(v, 0, sizeof v);
    for (int j = 0; j < N; j++) {
        k[j / 16 * 16 * HD + j % 16] = (float)j; /* element 0 (keys transposed per block): score grows with j, the max moves in every chunk */
        for (int i = 0; i < HD; i++) v[j * HD + i] = (float)(j == N - 1);
    }
    for (int i = 0; i < HD; i++) q[i] = i == 0 ? 50.0f : 0.0f;
    uint16_t kb[NB * 16 * HD], vb[NB * 16 * HD]; /* the same in BF16 (every value exact), in dot products */
    for (int i = 0; i < NB * 16 * HD; i++) kb[i] = s1c_f32_to_bf16(k[i]), vb[i] = s1c_f32_to_bf16(v[i]);
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        if (kern_select(families[f]) != 0) continue;
        kern_attn_args a = {q, out, 1, HD, N, 16, S1C_F32, k, v, blocks, 16 * HD, HD, 1.0f, scratch, false, 0, false};
        kern_attention(&a);
        for (int i = 0; i < HD; i++) assert_true(fabsf(out[i] - 1.0f) < 1e-6f);
        a = (kern_attn_args){q, out, 1, HD, N, 16, S1C_BF16, kb, vb, blocks, 16 * HD, HD, 1.0f, scratch, true, 0, false};
        kern_attention(&a);
        for (int i = 0; i < HD; i++) assert_true(fabsf(out[i] - 1.0f) < 1e-6f);
    }
    assert_int_equal(kern_select("auto"), 0);
}

/* Scores that climb slowly (0.1 a position: 6.4 a chunk, less than the AVX-512 softmax's slack of
 * 8, so some chunks keep the old shift with weights above 1 and some move it) against a
 * softmax in double, for F32 and the BF16 dot steps, with values that tell the positions apart. */
static void test_attention_slow_climb(void **state) {
    (void)state;
    enum { HD = 16, N = 700, NB = (N + 15) / 16 };
    static float k[NB * 16 * HD], v[NB * 16 * HD];
    static uint16_t kb[NB * 16 * HD], vb[NB * 16 * HD];
    float q[HD], out[HD], scratch[KERN_ATTN_SCRATCH];
    int32_t blocks[NB];
    for (int i = 0; i < NB; i++) blocks[i] = i;
    memset(k, 0, sizeof k);
    for (int j = 0; j < NB * 16; j++) {
        k[j / 16 * 16 * HD + j % 16] = j < N ? 0.1f * (float)j : 0.0f; /* element 0 of key j */
        for (int i = 0; i < HD; i++) v[j * HD + i] = (float)((j * 7 + i) % 13) - 6.0f;
    }
    for (int i = 0; i < HD; i++) q[i] = i == 0 ? 1.0f : 0.0f;
    for (int i = 0; i < NB * 16 * HD; i++) kb[i] = s1c_f32_to_bf16(k[i]), vb[i] = s1c_f32_to_bf16(v[i]);
    for (int dot = 0; dot < 2; dot++) {
        /* the reference from the values the kernel reads (bf16-rounded keys and values for dot) */
        double w[N], sum = 0, mx = -INFINITY, ref[HD] = {0};
        for (int j = 0; j < N; j++) {
            float kj = k[j / 16 * 16 * HD + j % 16];
            w[j] = dot ? s1c_bf16_to_f32(s1c_f32_to_bf16(kj)) : kj;
            mx = fmax(mx, w[j]);
        }
        for (int j = 0; j < N; j++) sum += (w[j] = exp(w[j] - mx));
        for (int j = 0; j < N; j++)
            for (int i = 0; i < HD; i++) ref[i] += w[j] / sum * (dot ? s1c_bf16_to_f32(vb[j * HD + i]) : v[j * HD + i]);
        for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
            if (kern_select(families[f]) != 0) continue;
            kern_attn_args a = dot ? (kern_attn_args){q, out, 1, HD, N, 16, S1C_BF16, kb, vb, blocks, 16 * HD, HD, 1.0f, scratch, true, 0, false}
                                   : (kern_attn_args){q, out, 1, HD, N, 16, S1C_F32, k, v, blocks, 16 * HD, HD, 1.0f, scratch, false, 0, false};
            kern_attention(&a);
            double tol = kern_attention_dot(&a) ? 6.0 / 256 : 1e-5 * 7;
            for (int i = 0; i < HD; i++)
                if (!(fabs(out[i] - ref[i]) <= tol))
                    fail_msg("%s%s: out[%d] = %.9g, reference %.9g", kern_name(), dot ? " dot" : "", i, out[i], ref[i]);
        }
    }
    assert_int_equal(kern_select("auto"), 0);
}

/* kern_swiglu (vectorized with the same exp in the avx512 family) against double precision,
 * over a range that covers exp's clamps and the tails. */
static void test_swiglu(void **state) {
    (void)state;
    enum { N = 1003 };
    float a[N], b[N], a0[N];
    for (int i = 0; i < N; i++) {
        a0[i] = -120.0f + 240.0f * (float)i / (N - 1);
        b[i] = 0.5f + (float)(i % 7) * 0.25f;
    }
    a0[17] = 0.0f;
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        if (kern_select(families[f]) != 0) continue;
        memcpy(a, a0, sizeof a);
        kern_swiglu(a, b, N);
        for (int i = 0; i < N; i++) {
            double v = a0[i], want = v / (1.0 + exp(-v)) * b[i];
            if (!(fabs(a[i] - want) <= 1e-6 * fabs(want) + 1e-30))
                fail_msg("%s: swiglu(%g) * %g = %.9g, want %.9g", kern_name(), v, b[i], a[i], want);
        }
    }
    assert_int_equal(kern_select("auto"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_attention_tiles),
        cmocka_unit_test(test_attention_tiles_climb),
        cmocka_unit_test(test_attention_rescale),
        cmocka_unit_test(test_attention_slow_climb),
        cmocka_unit_test(test_swiglu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
