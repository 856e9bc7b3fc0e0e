/* The transformer's forward and backward pass for training (Qwen2 and Llama families).
 *
 * Memory plan (README "Training"): the forward keeps only each layer's input (gradient
 * checkpointing per layer); the backward recomputes one layer's internals at a time from its
 * input and then runs that layer backwards. Attention is tiled as in FlashAttention: blocks
 * of ATT_B queries against blocks of ATT_B keys with an online softmax (never T x T scores),
 * keeping each row's log-sum-exp so the backward recomputes the probabilities block by
 * block. The LM head
 * and the cross-entropy run over chunks of predicted positions (never T x vocab logits), and
 * only positions that predict something are computed at all — the prompt part of an SFT
 * sample costs nothing in the head.
 *
 * All matrix products are kern_sgemm calls: Y = X Wᵀ forward, dX = dY W and dW += dYᵀ X
 * backward; the rest is element-wise and runs in a fixed order, so a row's gradients are
 * the same bits for any thread count. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/train.h"
#include "kernels/kernels.h"
#include "kernels/vmath.h"
#include "model_internal.h"

/* Attention tiles: ATT_B queries x ATT_B keys. Per task: scores S and dP [B][B], the output
 * accumulator [B][hd], running max, sum and D [B]. */
enum { ATT_B = 64 };
#define ATT_SCRATCH(hd) ((uint64_t)2 * ATT_B * ATT_B + (uint64_t)ATT_B * (hd) + 3 * ATT_B)

/* Per-layer recomputed activations; T rows each. */
typedef struct layer_acts {
    float *xn, *rstd1;        /* [T][D], [T] */
    float *q, *k, *v;         /* after bias and RoPE: [T][Q], [T][KV], [T][KV] */
    float *kt, *vt;           /* k and v transposed, [KV][T]: the attention tiles read them row-wise */
    float *att, *lse;         /* attention output [T][Q], log-sum-exp [T][nh] */
    float *y, *yn, *rstd2;    /* after attention residual [T][D], normed, [T] */
    float *g, *u, *h;         /* [T][H] gate, up, silu(gate)*up */
} layer_acts;

struct s1c_gradws {
    s1c_config c;
    int max_tokens, chunk;
    bool bf16; /* the model's matrix products take bf16-rounded inputs (f32 accumulation) */
    float *xs;           /* [L+1][T][D]: each layer's input; xs[L] the final hidden state */
    layer_acts *acts;    /* one layer's internals, or every layer's when they fit the budget */
    int n_acts;          /* 1 (recompute each layer in the backward) or L (keep them all) */
    layer_acts *a;       /* the layer being computed */
    float *dx, *dy, *dxn;        /* [T][D] */
    float *dhb;                  /* [T][H] */
    float *dq, *dk, *dv, *datt;  /* [T][Q] [T][KV] [T][KV] [T][Q] */
    float *hn, *rstdf, *dhn;     /* final norm: [T][D], [T], [T][D] */
    float *logits, *hc, *dhc;    /* head chunk: [C][V], [C][D], [C][D] */
    int32_t *rows;               /* [T] positions that predict a target */
    int32_t *pos, *seg_start;    /* [T] position in segment, first row of the segment */
    float *rope_cos, *rope_sin;  /* [T][hd/2] for positions 0..T-1 */
    float *att_scratch;          /* per query head: ATT_SCRATCH(hd) floats of tiles */
    void *block;                 /* the one allocation everything above lives in */
    uint64_t bytes;
};

/* ---------------------------------------------------------------- workspace */

/* Lays out every buffer in one block; with base NULL only counts bytes. */
static uint64_t ws_layout(s1c_gradws *w, const s1c_config *c, int T, int C, int n_acts, char *base) {
    uint64_t off = 0;
    uint64_t D = (uint64_t)c->dim, Q = (uint64_t)c->n_heads * c->head_dim, KV = (uint64_t)c->n_kv_heads * c->head_dim;
    uint64_t H = (uint64_t)c->hidden_dim, V = (uint64_t)c->vocab_size, t = (uint64_t)T;
#define TAKE(field, type, count)                                    \
    do {                                                            \
        if (base) w->field = (type *)(base + off);                  \
        off += (((uint64_t)(count) * sizeof(type)) + 63) & ~(uint64_t)63; \
    } while (0)
    TAKE(xs, float, (uint64_t)(c->n_layers + 1) * t * D);
    for (int l = 0; l < n_acts; l++) {
        TAKE(acts[l].xn, float, t * D);
        TAKE(acts[l].rstd1, float, t);
        TAKE(acts[l].q, float, t * Q);
        TAKE(acts[l].k, float, t * KV);
        TAKE(acts[l].v, float, t * KV);
        TAKE(acts[l].kt, float, t * KV);
        TAKE(acts[l].vt, float, t * KV);
        TAKE(acts[l].att, float, t * Q);
        TAKE(acts[l].lse, float, t * (uint64_t)c->n_heads);
        TAKE(acts[l].y, float, t * D);
        TAKE(acts[l].yn, float, t * D);
        TAKE(acts[l].rstd2, float, t);
        TAKE(acts[l].g, float, t * H);
        TAKE(acts[l].u, float, t * H);
        TAKE(acts[l].h, float, t * H);
    }
    TAKE(dx, float, t * D);
    TAKE(dy, float, t * D);
    TAKE(dxn, float, t * D);
    TAKE(dhb, float, t * H);
    TAKE(dq, float, t * Q);
    TAKE(dk, float, t * KV);
    TAKE(dv, float, t * KV);
    TAKE(datt, float, t * Q);
    TAKE(hn, float, t * D);
    TAKE(rstdf, float, t);
    TAKE(dhn, float, t * D);
    TAKE(logits, float, (uint64_t)C * V);
    TAKE(hc, float, (uint64_t)C * D);
    TAKE(dhc, float, (uint64_t)C * D);
    TAKE(rows, int32_t, t);
    TAKE(pos, int32_t, t);
    TAKE(seg_start, int32_t, t);
    TAKE(rope_cos, float, t * (uint64_t)(c->head_dim / 2));
    TAKE(rope_sin, float, t * (uint64_t)(c->head_dim / 2));
    TAKE(att_scratch, float, (uint64_t)c->n_heads * ATT_SCRATCH(c->head_dim));
#undef TAKE
    return off;
}

/* Keep every layer's internals (no recomputation: a third fewer FLOPs) when the extra
 * memory fits keep_bytes. */
static int acts_to_keep(const s1c_config *c, int max_tokens, int head_chunk, uint64_t keep_bytes) {
    s1c_gradws w;
    uint64_t one = ws_layout(&w, c, max_tokens, head_chunk, 1, NULL), two = ws_layout(&w, c, max_tokens, head_chunk, 2, NULL);
    return (two - one) * (uint64_t)(c->n_layers - 1) <= keep_bytes ? c->n_layers : 1;
}

uint64_t s1c_gradws_bytes(const s1c_config *c, int max_tokens, int head_chunk, uint64_t keep_bytes) {
    s1c_gradws w;
    return ws_layout(&w, c, max_tokens, head_chunk, acts_to_keep(c, max_tokens, head_chunk, keep_bytes), NULL);
}

int s1c_gradws_new(s1c_gradws **out, const s1c_config *c, int max_tokens, int head_chunk, uint64_t keep_bytes,
                   s1c_err *err) {
    *out = NULL;
    if (max_tokens < 1 || head_chunk < 1) return s1c_fail(err, "train: max_tokens and head_chunk must be positive");
    if (s1c_config_validate(c, "train", err) != 0) return -1;
    s1c_gradws *w = calloc(1, sizeof *w);
    if (!w) return s1c_fail(err, "train: out of memory");
    w->c = *c;
    w->max_tokens = max_tokens;
    w->chunk = head_chunk;
    w->n_acts = acts_to_keep(c, max_tokens, head_chunk, keep_bytes);
    w->acts = calloc((size_t)w->n_acts, sizeof *w->acts);
    w->bytes = ws_layout(w, c, max_tokens, head_chunk, w->n_acts, NULL);
    w->block = w->acts ? aligned_alloc(64, w->bytes) : NULL;
    if (!w->block) {
        double mib = (double)w->bytes / 1048576.0;
        free(w->acts);
        free(w);
        return s1c_fail(err, "train: cannot allocate %.1f MiB of activations for %d tokens", mib, max_tokens);
    }
    ws_layout(w, c, max_tokens, head_chunk, w->n_acts, w->block);
    w->a = &w->acts[0];
    /* RoPE angles: the forward's (kern_rope_angles) */
    int half = c->head_dim / 2;
    for (int p = 0; p < max_tokens; p++) kern_rope_angles(w->rope_cos + (size_t)p * half, w->rope_sin + (size_t)p * half, c->head_dim, p, c->rope_theta);
    *out = w;
    return 0;
}

void s1c_gradws_set_bf16(s1c_gradws *w, bool on) { w->bf16 = on; }

void s1c_gradws_free(s1c_gradws *w) {
    if (!w) return;
    free(w->acts);
    free(w->block);
    free(w);
}

/* ---------------------------------------------------------------- element-wise pieces */

/* The linear layers' and the head's products; attention tiles stay f32 (as autocast keeps
 * softmax and its neighbours in f32). */
static void gemm(const s1c_gradws *w, bool ta, bool tb, int M, int N, int K, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc) {
    if (w->bf16) kern_sgemm_bf16(s1c_pool_global(), ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
    else kern_sgemm(s1c_pool_global(), ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

/* Work on the pool comes in pieces: contiguous rows (or, for sums over rows, columns) of
 * the element-wise passes and of the products, whole heads of the attention. Each piece
 * writes only its own outputs and computes every element exactly as one loop would, so the
 * bits depend neither on the split nor on which thread runs a piece. That lets the threads
 * take pieces as they come free (an atomic counter) instead of a fixed share: a thread that
 * the OS holds back on a shared machine, or a share that came out larger, no longer keeps
 * the others waiting. */

/* [i0, i1): piece k of n_pieces of [0, n). */
static void piece(int n, int k, int n_pieces, int *i0, int *i1) {
    *i0 = (int)((int64_t)n * k / n_pieces);
    *i1 = (int)((int64_t)n * (k + 1) / n_pieces);
}

typedef struct pieces_job {
    s1c_pool_fn fn;
    void *ctx;
    int n;
    atomic_int next;
} pieces_job;

static void pieces_task(void *ctx, int task, int n_tasks) {
    pieces_job *j = ctx;
    for (int k; (k = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed)) < j->n;) j->fn(j->ctx, k, j->n);
}

/* fn(ctx, k, n) for every piece k < n, on the pool's threads as they come free. */
static void run_pieces(int n, s1c_pool_fn fn, void *ctx) {
    s1c_pool *p = s1c_pool_global();
    if (n <= 1 || s1c_pool_threads(p) <= 1) {
        for (int k = 0; k < n; k++) fn(ctx, k, n);
        return;
    }
    pieces_job j = {fn, ctx, n, 0};
    s1c_pool_run(p, s1c_pool_threads(p), pieces_task, &j);
}

/* An element-wise pass: four pieces per thread; below ~16K elements of work, one. */
static void par_run(int64_t work, s1c_pool_fn fn, void *ctx) {
    run_pieces(work < 16384 ? 1 : 4 * s1c_pool_threads(s1c_pool_global()), fn, ctx);
}

/* Several products in one pool run: piece k is the k-th run of C rows of every product (in
 * 12-row tiles, a multiple of every family's micro-tile), product after product, so the
 * pool wakes once per group of products instead of once per product, and a product may
 * accumulate into an earlier one's C of the same height (its rows are in the same piece).
 * A row split never changes a bit (kern_sgemm's contract). */
typedef struct mm_op {
    bool ta, tb;
    int M, N, K;
    const float *A;
    int lda;
    const float *B;
    int ldb;
    float beta;
    float *C;
    int ldc;
} mm_op;

typedef struct mm_job {
    const s1c_gradws *w;
    const mm_op *op;
    int n;
} mm_job;

static void mm_piece(void *ctx, int k, int n_pieces) {
    const mm_job *j = ctx;
    for (int i = 0; i < j->n; i++) {
        const mm_op *o = &j->op[i];
        int t0, t1;
        piece((o->M + 11) / 12, k, n_pieces, &t0, &t1);
        int m0 = t0 * 12, m1 = t1 * 12 < o->M ? t1 * 12 : o->M;
        if (m0 >= m1) continue;
        const float *A = o->A + (o->ta ? (size_t)m0 : (size_t)m0 * o->lda);
        float *C = o->C + (size_t)m0 * o->ldc;
        if (j->w->bf16) kern_sgemm_bf16(NULL, o->ta, o->tb, m1 - m0, o->N, o->K, A, o->lda, o->B, o->ldb, o->beta, C, o->ldc);
        else kern_sgemm(NULL, o->ta, o->tb, m1 - m0, o->N, o->K, A, o->lda, o->B, o->ldb, o->beta, C, o->ldc);
    }
}

/* Runs the n products in order. Large products (the big models' layers) go one by one
 * through kern_sgemm's own split, which picks rows or columns and packs each operand once. */
static void gemms(const s1c_gradws *w, const mm_op *op, int n) {
    double work = 0, largest = 0;
    bool packs = false;
    for (int i = 0; i < n; i++) {
        double f = (double)op[i].M * op[i].N * op[i].K;
        work += f;
        largest = f > largest ? f : largest;
        packs |= op[i].tb;
    }
    if (largest > 64e6) {
        for (int i = 0; i < n; i++)
            gemm(w, op[i].ta, op[i].tb, op[i].M, op[i].N, op[i].K, op[i].A, op[i].lda, op[i].B, op[i].ldb, op[i].beta, op[i].C,
                 op[i].ldc);
        return;
    }
    /* below ~1M multiply-adds: one piece; a transposed B is packed once per piece, so those
     * products take one piece per thread, the others four */
    mm_job j = {w, op, n};
    int threads = s1c_pool_threads(s1c_pool_global());
    run_pieces(work < 1048576.0 ? 1 : packs ? threads : 4 * threads, mm_piece, &j);
}

/* The product y = x Wᵀ: x [T][n], W [d][n]. */
static mm_op linear_op(float *y, const float *x, const float *W, int T, int n, int d) {
    return (mm_op){false, true, T, d, n, x, n, W, n, 0.0f, y, d};
}

/* The products of its backward: dx (+)= dy W and dW += dyᵀ x (dy [T][d], x [T][n]). */
static void linear_backward_ops(mm_op *op, float *dx, float dx_beta, float *dW, const float *dy, const float *x, const float *W,
                                int T, int n, int d) {
    op[0] = (mm_op){false, false, T, n, d, dy, d, W, n, dx_beta, dx, n};
    op[1] = (mm_op){true, false, d, n, T, dy, d, x, n, 1.0f, dW, n};
}

/* Σ a_i b_i c_i in double (c NULL: Σ a_i b_i), in four interleaved partial sums added as
 * (s0 + s1) + (s2 + s3): the same order for every row of length n, and four independent
 * chains instead of one latency-bound one. */
static double dot_f64(const float *a, const float *b, const float *c, int n) {
    double s[4] = {0, 0, 0, 0};
    int i = 0;
    if (c)
        for (; i + 4 <= n; i += 4)
            for (int k = 0; k < 4; k++) s[k] += (double)a[i + k] * b[i + k] * c[i + k];
    else
        for (; i + 4 <= n; i += 4)
            for (int k = 0; k < 4; k++) s[k] += (double)a[i + k] * b[i + k];
    double r = (s[0] + s[1]) + (s[2] + s[3]);
    for (; i < n; i++) r += c ? (double)a[i] * b[i] * c[i] : (double)a[i] * b[i];
    return r;
}

typedef struct norm_job {
    float *o, *rstd;
    const float *x, *w;
    int T, n;
    float eps;
} norm_job;

static void norm_task(void *ctx, int k, int n_pieces) {
    const norm_job *j = ctx;
    int t0, t1, n = j->n;
    piece(j->T, k, n_pieces, &t0, &t1);
    for (int t = t0; t < t1; t++) {
        const float *xr = j->x + (size_t)t * n;
        float r = (float)(1.0 / sqrt(dot_f64(xr, xr, NULL, n) / n + j->eps));
        j->rstd[t] = r;
        for (int i = 0; i < n; i++) j->o[(size_t)t * n + i] = xr[i] * r * j->w[i];
    }
}

static void rmsnorm_rows(float *o, float *rstd, const float *x, const float *w, int T, int n, float eps) {
    norm_job j = {o, rstd, x, w, T, n, eps};
    par_run((int64_t)T * n, norm_task, &j);
}

typedef struct norm_back_job {
    float *dx, *dw;
    const float *base, *do_, *x, *w, *rstd;
    int T, n;
} norm_back_job;

/* Rows [t0, t1) of dx, columns [i0, i1) of dw (each a sum over all rows in increasing t). */
static void norm_back_task(void *ctx, int k, int n_pieces) {
    const norm_back_job *j = ctx;
    int t0, t1, i0, i1, n = j->n;
    piece(j->T, k, n_pieces, &t0, &t1);
    piece(n, k, n_pieces, &i0, &i1);
    for (int t = t0; t < t1; t++) {
        const float *xr = j->x + (size_t)t * n, *dr = j->do_ + (size_t)t * n, *br = j->base + (size_t)t * n;
        float r = j->rstd[t];
        float c = (float)(dot_f64(j->w, dr, xr, n) * r * r * r / n);
        float *dxr = j->dx + (size_t)t * n;
        for (int i = 0; i < n; i++) dxr[i] = br[i] + (r * j->w[i] * dr[i] - c * xr[i]);
    }
    for (int t = 0; t < j->T; t++) {
        const float *xr = j->x + (size_t)t * n, *dr = j->do_ + (size_t)t * n;
        float r = j->rstd[t];
        for (int i = i0; i < i1; i++) j->dw[i] += dr[i] * xr[i] * r;
    }
}

/* o = r x w: do_ given; dx = base + d loss / d x (base may be dx itself) and dw += d loss / d w.
 * d x_j = r w_j do_j - r³/n x_j Σ_i w_i do_i x_i. */
static void rmsnorm_backward(float *dx, const float *base, float *dw, const float *do_, const float *x, const float *w,
                             const float *rstd, int T, int n) {
    norm_back_job j = {dx, dw, base, do_, x, w, rstd, T, n};
    par_run((int64_t)T * n, norm_back_task, &j);
}

/* Rotates every head of rows [t0, t1) by its position; sign -1 applies the inverse rotation
 * (the backward of a rotation is its transpose). */
static void rope_rows(const s1c_gradws *w, float *x, int t0, int t1, int n_heads, float sign) {
    int hd = w->c.head_dim, half = hd / 2;
    bool rotate_half = w->c.rope_layout == S1C_ROPE_HALF;
    for (int t = t0; t < t1; t++) {
        const float *cs = w->rope_cos + (size_t)w->pos[t] * half, *sn = w->rope_sin + (size_t)w->pos[t] * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)t * n_heads + h) * hd;
            for (int i = 0; i < half; i++) {
                int a = rotate_half ? i : 2 * i, b = rotate_half ? i + half : 2 * i + 1;
                float c = cs[i], s = sign * sn[i], v0 = v[a], v1 = v[b];
                v[a] = v0 * c - v1 * s;
                v[b] = v0 * s + v1 * c;
            }
        }
    }
}

/* y[t] += b for rows [t0, t1) of y [T][d] (no bias: nothing). */
static void add_bias_rows(float *y, const float *b, int t0, int t1, int d) {
    if (!b) return;
    for (int t = t0; t < t1; t++)
        for (int i = 0; i < d; i++) y[(size_t)t * d + i] += b[i];
}

/* db[i] += Σ_t dy[t][i] for columns [i0, i1), rows in increasing t. */
static void add_bias_grad(float *db, const float *dy, int T, int d, int i0, int i1) {
    if (!db) return;
    for (int t = 0; t < T; t++)
        for (int i = i0; i < i1; i++) db[i] += dy[(size_t)t * d + i];
}

/* SwiGLU forward (h from g, u) or backward (g, u become d gate, d up from dh) in pieces. */
typedef struct swiglu_job {
    float *h, *g, *u;
    const float *dh;
    int64_t n;
} swiglu_job;

static void swiglu_task(void *ctx, int k, int n_pieces) {
    const swiglu_job *j = ctx;
    int64_t i0 = j->n * k / n_pieces, i1 = j->n * (k + 1) / n_pieces;
    if (j->dh) vmath_swiglu_backward(j->g + i0, j->u + i0, j->dh + i0, (int)(i1 - i0));
    else vmath_swiglu(j->h + i0, j->g + i0, j->u + i0, (int)(i1 - i0));
}

/* ---------------------------------------------------------------- attention */

/* Rows [ta, tb) of dst [n][T] = src [T][n]ᵀ, in 16 x 16 blocks (both sides stay in cache lines). */
static void transpose_rows(float *dst, const float *src, int T, int n, int ta, int tb) {
    for (int t0 = ta; t0 < tb; t0 += 16)
        for (int i0 = 0; i0 < n; i0 += 16) {
            int t1 = t0 + 16 < tb ? t0 + 16 : tb, i1 = i0 + 16 < n ? i0 + 16 : n;
            for (int i = i0; i < i1; i++)
                for (int t = t0; t < t1; t++) dst[(size_t)i * T + t] = src[(size_t)t * n + i];
        }
}

typedef struct attn_job {
    s1c_gradws *w;
    int T;
} attn_job;

/* The tiles of task `h`. */
typedef struct att_tiles {
    float *S, *dP, *O, *m, *l, *D;
} att_tiles;

static att_tiles tiles_of(const s1c_gradws *w, int h) {
    float *base = w->att_scratch + (size_t)h * ATT_SCRATCH(w->c.head_dim);
    att_tiles t = {base, base + ATT_B * ATT_B, base + 2 * ATT_B * ATT_B, NULL, NULL, NULL};
    t.m = t.O + (size_t)ATT_B * w->c.head_dim;
    t.l = t.m + ATT_B;
    t.D = t.l + ATT_B;
    return t;
}

/* The query block that starts at q0: up to ATT_B rows, never past the end of q0's segment.
 * Blocks start at each segment's start, so a block's keys are its segment's from the start
 * on, in blocks of ATT_B that end exactly at the block's diagonal: no key block is spent on
 * another segment. */
static int qblock_len(const s1c_gradws *w, int q0, int T) {
    int end = q0 + ATT_B < T ? q0 + ATT_B : T;
    for (int t = q0 + 1; t < end; t++)
        if (w->seg_start[t] == t) return t - q0;
    return end - q0;
}

/* S = scale * Q[q0..q1) K[k0..k1)ᵀ with keys outside a row's segment or after it masked
 * (T: the row's length, kt's row stride). */
static void block_scores(const s1c_gradws *w, float *S, int h, int g, int q0, int nq, int k0, int nk, float scale, int T) {
    const s1c_config *c = &w->c;
    int hd = c->head_dim, Qd = c->n_heads * hd;
    kern_sgemm(NULL, false, false, nq, nk, hd, w->a->q + (size_t)q0 * Qd + (size_t)h * hd, Qd,
               w->a->kt + (size_t)g * hd * T + k0, T, 0.0f, S, ATT_B);
    for (int i = 0; i < nq; i++) {
        /* visible keys: [seg_start[t], t] */
        int t = q0 + i, lo = w->seg_start[t] - k0, hi = t - k0 + 1;
        lo = lo < 0 ? 0 : lo > nk ? nk : lo;
        hi = hi < lo ? lo : hi > nk ? nk : hi;
        float *row = S + (size_t)i * ATT_B;
        for (int j = 0; j < lo; j++) row[j] = -INFINITY;
        for (int j = lo; j < hi; j++) row[j] *= scale;
        for (int j = hi; j < nk; j++) row[j] = -INFINITY;
    }
}

/* One query head: online softmax over key blocks; keeps the output and the log-sum-exp. */
static void attn_forward_head(void *ctx, int h, int n_tasks) {
    attn_job *j = ctx;
    s1c_gradws *w = j->w;
    const s1c_config *c = &w->c;
    int hd = c->head_dim, Qd = c->n_heads * hd, KVd = c->n_kv_heads * hd, g = h / (c->n_heads / c->n_kv_heads);
    float scale = 1.0f / sqrtf((float)hd);
    att_tiles tl = tiles_of(w, h);
    for (int q0 = 0, nq; q0 < j->T; q0 += nq) {
        nq = qblock_len(w, q0, j->T);
        for (int i = 0; i < nq; i++) tl.m[i] = -INFINITY, tl.l[i] = 0.0f;
        memset(tl.O, 0, (size_t)nq * hd * sizeof(float));
        for (int k0 = w->seg_start[q0]; k0 < q0 + nq; k0 += ATT_B) {
            int nk = q0 + nq - k0 < ATT_B ? q0 + nq - k0 : ATT_B;
            block_scores(w, tl.S, h, g, q0, nq, k0, nk, scale, j->T);
            for (int i = 0; i < nq; i++) {
                float *row = tl.S + (size_t)i * ATT_B, mx = vmath_max(row, tl.m[i], nk);
                if (mx == -INFINITY) { /* no visible key in this block yet */
                    memset(row, 0, (size_t)nk * sizeof(float));
                    continue;
                }
                float corr = vmath_expf(tl.m[i] - mx), sum = vmath_exp_sum(row, row, mx, nk);
                tl.l[i] = tl.l[i] * corr + sum;
                tl.m[i] = mx;
                for (int d = 0; d < hd; d++) tl.O[(size_t)i * hd + d] *= corr;
            }
            kern_sgemm(NULL, false, false, nq, hd, nk, tl.S, ATT_B, w->a->v + (size_t)k0 * KVd + (size_t)g * hd, KVd, 1.0f,
                       tl.O, hd);
        }
        for (int i = 0; i < nq; i++) {
            float inv = 1.0f / tl.l[i], *o = w->a->att + (size_t)(q0 + i) * Qd + (size_t)h * hd;
            for (int d = 0; d < hd; d++) o[d] = tl.O[(size_t)i * hd + d] * inv;
            w->a->lse[(size_t)(q0 + i) * c->n_heads + h] = tl.m[i] + logf(tl.l[i]);
        }
    }
}

/* The backward of one query head over one query block, accumulating into dq and into its
 * group's dk, dv: P = exp(S - lse), dV += Pᵀ dO, dP = dO Vᵀ, dS = P (dP - D) scale,
 * dQ += dS K, dK += dSᵀ Q. */
static void attn_backward_block(s1c_gradws *w, att_tiles *tl, int h, int g, int q0, int nq, float scale, int T) {
    const s1c_config *c = &w->c;
    int hd = c->head_dim, Qd = c->n_heads * hd, KVd = c->n_kv_heads * hd;
    size_t qo = (size_t)q0 * Qd + (size_t)h * hd;
    for (int i = 0; i < nq; i++) tl->D[i] = kern_dot(w->datt + qo + (size_t)i * Qd, w->a->att + qo + (size_t)i * Qd, hd);
    for (int k0 = w->seg_start[q0]; k0 < q0 + nq; k0 += ATT_B) {
        int nk = q0 + nq - k0 < ATT_B ? q0 + nq - k0 : ATT_B;
        size_t ko = (size_t)k0 * KVd + (size_t)g * hd;
        block_scores(w, tl->S, h, g, q0, nq, k0, nk, scale, T);
        for (int i = 0; i < nq; i++) {
            float lse = w->a->lse[(size_t)(q0 + i) * c->n_heads + h], *row = tl->S + (size_t)i * ATT_B;
            vmath_exp(row, row, lse, nk); /* exp(-inf) = 0 where masked */
        }
        kern_sgemm(NULL, true, false, nk, hd, nq, tl->S, ATT_B, w->datt + qo, Qd, 1.0f, w->dv + ko, KVd);
        kern_sgemm(NULL, false, false, nq, nk, hd, w->datt + qo, Qd, w->a->vt + (size_t)g * hd * T + k0, T, 0.0f, tl->dP, ATT_B);
        for (int i = 0; i < nq; i++) {
            float *p = tl->S + (size_t)i * ATT_B, *dp = tl->dP + (size_t)i * ATT_B;
            for (int jj = 0; jj < nk; jj++) p[jj] = p[jj] * (dp[jj] - tl->D[i]) * scale; /* dS, in place of P */
        }
        kern_sgemm(NULL, false, false, nq, hd, nk, tl->S, ATT_B, w->a->k + ko, KVd, 1.0f, w->dq + qo, Qd);
        kern_sgemm(NULL, true, false, nk, hd, nq, tl->S, ATT_B, w->a->q + qo, Qd, 1.0f, w->dk + ko, KVd);
    }
}

/* One KV head with all its query heads: it alone writes its columns of dk and dv, so the
 * groups run on different threads without sharing anything. */
static void attn_backward_group(void *ctx, int g, int n_tasks) {
    attn_job *j = ctx;
    s1c_gradws *w = j->w;
    const s1c_config *c = &w->c;
    int hd = c->head_dim, Qd = c->n_heads * hd, KVd = c->n_kv_heads * hd, per = c->n_heads / c->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    for (int t = 0; t < j->T; t++) {
        memset(w->dk + (size_t)t * KVd + (size_t)g * hd, 0, (size_t)hd * sizeof(float));
        memset(w->dv + (size_t)t * KVd + (size_t)g * hd, 0, (size_t)hd * sizeof(float));
    }
    att_tiles tl = tiles_of(w, g * per); /* the group's first head's tiles: heads of a group run here, in turn */
    for (int h = g * per; h < (g + 1) * per; h++) {
        for (int t = 0; t < j->T; t++) memset(w->dq + (size_t)t * Qd + (size_t)h * hd, 0, (size_t)hd * sizeof(float));
        for (int q0 = 0, nq; q0 < j->T; q0 += nq) {
            nq = qblock_len(w, q0, j->T);
            attn_backward_block(w, &tl, h, g, q0, nq, scale, j->T);
        }
    }
}

/* ---------------------------------------------------------------- layers */

/* The parameter views of one layer (f32 in the parameter buffer). */
typedef struct layer_params {
    const float *wq, *wk, *wv, *wo, *wg, *wu, *wd, *n1, *n2, *bq, *bk, *bv;
} layer_params;

static const float *param_ptr(const s1c_params *p, const float *base, int role, int layer) {
    for (int i = 0; i < p->n_tensors; i++)
        if (p->info[i].role == role && p->info[i].layer == layer) return base + p->info[i].offset;
    return NULL;
}

/* The views for one layer into `base`: the parameters themselves or a gradient buffer. */
static layer_params layer_views(const s1c_params *p, const float *base, int l) {
    return (layer_params){
        param_ptr(p, base, T_Q, l),      param_ptr(p, base, T_K, l),        param_ptr(p, base, T_V, l),
        param_ptr(p, base, T_O, l),      param_ptr(p, base, T_GATE, l),     param_ptr(p, base, T_UP, l),
        param_ptr(p, base, T_DOWN, l),   param_ptr(p, base, T_ATTN_NORM, l), param_ptr(p, base, T_FFN_NORM, l),
        param_ptr(p, base, T_Q_BIAS, l), param_ptr(p, base, T_K_BIAS, l),   param_ptr(p, base, T_V_BIAS, l),
    };
}

/* After the q, k, v products (forward) or the attention backward: the element-wise passes
 * between them and the next products, one pool run each. */
typedef struct qkv_job {
    s1c_gradws *w;
    const layer_params *P, *G;
    int T;
} qkv_job;

/* Forward, rows [t0, t1): q, k, v biases, RoPE on q and k, k and v transposed for the tiles. */
static void qkv_forward_task(void *ctx, int k, int n_pieces) {
    const qkv_job *j = ctx;
    const layer_params *P = j->P;
    const s1c_config *c = &j->w->c;
    layer_acts *a = j->w->a;
    int Qd = c->n_heads * c->head_dim, KVd = c->n_kv_heads * c->head_dim, t0, t1;
    piece(j->T, k, n_pieces, &t0, &t1);
    add_bias_rows(a->q, P->bq, t0, t1, Qd);
    add_bias_rows(a->k, P->bk, t0, t1, KVd);
    add_bias_rows(a->v, P->bv, t0, t1, KVd);
    rope_rows(j->w, a->q, t0, t1, c->n_heads, 1.0f);
    rope_rows(j->w, a->k, t0, t1, c->n_kv_heads, 1.0f);
    transpose_rows(a->kt, a->k, j->T, KVd, t0, t1);
    transpose_rows(a->vt, a->v, j->T, KVd, t0, t1);
}

/* Backward, rows [t0, t1): the inverse RoPE on dq and dk. */
static void qkv_rope_back_task(void *ctx, int k, int n_pieces) {
    const qkv_job *j = ctx;
    const s1c_config *c = &j->w->c;
    int t0, t1;
    piece(j->T, k, n_pieces, &t0, &t1);
    rope_rows(j->w, j->w->dq, t0, t1, c->n_heads, -1.0f);
    rope_rows(j->w, j->w->dk, t0, t1, c->n_kv_heads, -1.0f);
}

/* Backward, columns: the bias gradients (sums over all rows). */
static void qkv_bias_back_task(void *ctx, int k, int n_pieces) {
    const qkv_job *j = ctx;
    const layer_params *G = j->G;
    const s1c_config *c = &j->w->c;
    int Qd = c->n_heads * c->head_dim, KVd = c->n_kv_heads * c->head_dim, i0, i1;
    piece(Qd, k, n_pieces, &i0, &i1);
    add_bias_grad((float *)G->bq, j->w->dq, j->T, Qd, i0, i1);
    piece(KVd, k, n_pieces, &i0, &i1);
    add_bias_grad((float *)G->bk, j->w->dk, j->T, KVd, i0, i1);
    add_bias_grad((float *)G->bv, j->w->dv, j->T, KVd, i0, i1);
}

/* Recomputes (or computes) layer l from its input x = xs[l]; writes xs[l+1] when out != NULL. */
static void layer_forward(s1c_gradws *w, const layer_params *P, const float *x, float *out, int T) {
    const s1c_config *c = &w->c;
    int D = c->dim, Qd = c->n_heads * c->head_dim, KVd = c->n_kv_heads * c->head_dim, H = c->hidden_dim;
    layer_acts *a = w->a;
    rmsnorm_rows(a->xn, a->rstd1, x, P->n1, T, D, c->norm_eps);
    mm_op qkv[3] = {linear_op(a->q, a->xn, P->wq, T, D, Qd), linear_op(a->k, a->xn, P->wk, T, D, KVd),
                    linear_op(a->v, a->xn, P->wv, T, D, KVd)};
    gemms(w, qkv, 3);
    qkv_job qj = {w, P, NULL, T};
    par_run((int64_t)T * (Qd + 2 * KVd), qkv_forward_task, &qj);
    attn_job job = {w, T};
    run_pieces(c->n_heads, attn_forward_head, &job);
    memcpy(a->y, x, (size_t)T * D * sizeof(float));
    gemm(w, false, true, T, D, Qd, a->att, Qd, P->wo, Qd, 1.0f, a->y, D);
    rmsnorm_rows(a->yn, a->rstd2, a->y, P->n2, T, D, c->norm_eps);
    mm_op gu[2] = {linear_op(a->g, a->yn, P->wg, T, D, H), linear_op(a->u, a->yn, P->wu, T, D, H)};
    gemms(w, gu, 2);
    swiglu_job sj = {a->h, a->g, a->u, NULL, (int64_t)T * H};
    par_run(sj.n, swiglu_task, &sj);
    if (!out) return;
    memcpy(out, a->y, (size_t)T * D * sizeof(float));
    gemm(w, false, true, T, D, H, a->h, H, P->wd, H, 1.0f, out, D);
}

/* w->dx holds d loss / d xs[l+1] on entry and d loss / d xs[l] on return; the layer's
 * internals must be those of xs[l] (layer_forward just ran). */
static void layer_backward(s1c_gradws *w, const layer_params *P, layer_params *G, const float *x, int T) {
    const s1c_config *c = &w->c;
    int D = c->dim, Qd = c->n_heads * c->head_dim, KVd = c->n_kv_heads * c->head_dim, H = c->hidden_dim;
    layer_acts *a = w->a;
    /* MLP: out = y + (silu(g) * u) Wdᵀ */
    mm_op op[6];
    linear_backward_ops(op, w->dhb, 0.0f, (float *)G->wd, w->dx, a->h, P->wd, T, H, D);
    gemms(w, op, 2);
    swiglu_job sj = {NULL, a->g, a->u, w->dhb, (int64_t)T * H}; /* g, u become d gate, d up */
    par_run(sj.n, swiglu_task, &sj);
    linear_backward_ops(op, w->dxn, 0.0f, (float *)G->wg, a->g, a->yn, P->wg, T, D, H);
    linear_backward_ops(op + 2, w->dxn, 1.0f, (float *)G->wu, a->u, a->yn, P->wu, T, D, H);
    gemms(w, op, 4);
    rmsnorm_backward(w->dy, w->dx, (float *)G->n2, w->dxn, a->y, P->n2, a->rstd2, T, D); /* dy = dx + through the norm */
    /* attention: y = x + att Woᵀ */
    linear_backward_ops(op, w->datt, 0.0f, (float *)G->wo, w->dy, a->att, P->wo, T, Qd, D);
    gemms(w, op, 2);
    attn_job job = {w, T};
    run_pieces(c->n_kv_heads, attn_backward_group, &job);
    qkv_job qj = {w, P, G, T};
    par_run((int64_t)T * (Qd + KVd), qkv_rope_back_task, &qj);
    if (G->bq || G->bk || G->bv) par_run((int64_t)T * (Qd + 2 * KVd), qkv_bias_back_task, &qj);
    linear_backward_ops(op, w->dxn, 0.0f, (float *)G->wq, w->dq, a->xn, P->wq, T, D, Qd);
    linear_backward_ops(op + 2, w->dxn, 1.0f, (float *)G->wk, w->dk, a->xn, P->wk, T, D, KVd);
    linear_backward_ops(op + 4, w->dxn, 1.0f, (float *)G->wv, w->dv, a->xn, P->wv, T, D, KVd);
    gemms(w, op, 6);
    rmsnorm_backward(w->dx, w->dy, (float *)G->n1, w->dxn, x, P->n1, a->rstd1, T, D); /* dx = dy + through the norm */
}

/* ---------------------------------------------------------------- head + loss */

/* Cross-entropy of the predicting rows, chunk by chunk: loss, d hn, d head. */
static double head_loss_backward(s1c_gradws *w, const s1c_params *p, float *grad, const s1c_grad_row *row, int n_rows) {
    const s1c_config *c = &w->c;
    int D = c->dim, V = c->vocab_size;
    int head_role = c->tied_embeddings ? T_TOK_EMBD : T_OUTPUT;
    const float *E = param_ptr(p, p->data, head_role, -1);
    float *dE = grad ? (float *)param_ptr(p, grad, head_role, -1) : NULL;
    double loss = 0;
    memset(w->dhn, 0, (size_t)row->n * D * sizeof(float));
    for (int r0 = 0; r0 < n_rows; r0 += w->chunk) {
        int C = n_rows - r0 < w->chunk ? n_rows - r0 : w->chunk;
        for (int i = 0; i < C; i++)
            memcpy(w->hc + (size_t)i * D, w->hn + (size_t)w->rows[r0 + i] * D, (size_t)D * sizeof(float));
        gemm(w, false, true, C, V, D, w->hc, D, E, D, 0.0f, w->logits, V);
        for (int i = 0; i < C; i++) {
            int t = w->rows[r0 + i];
            float *z = w->logits + (size_t)i * V, m = vmath_max(z, -INFINITY, V), wt = row->weight[t];
            float z_target = z[row->target[t]];
            vmath_exp(z, z, m, V);
            double sum = 0;
            for (int k = 0; k < V; k++) sum += z[k];
            loss += wt * ((double)m + log(sum) - z_target);
            /* d loss / d z = wt * (softmax - onehot) */
            float scale = (float)(wt / sum);
            for (int k = 0; k < V; k++) z[k] *= scale;
            z[row->target[t]] -= wt;
        }
        if (!grad) continue; /* loss only */
        gemm(w, false, false, C, D, V, w->logits, V, E, D, 0.0f, w->dhc, D);
        gemm(w, true, false, V, D, C, w->logits, V, w->hc, D, 1.0f, dE, D);
        for (int i = 0; i < C; i++)
            memcpy(w->dhn + (size_t)w->rows[r0 + i] * D, w->dhc + (size_t)i * D, (size_t)D * sizeof(float));
    }
    return loss;
}

/* ---------------------------------------------------------------- the row */

static int check_row(const s1c_gradws *w, const s1c_grad_row *row, s1c_err *err) {
    if (row->n < 1) return s1c_fail(err, "train: empty row");
    if (row->n > w->max_tokens)
        return s1c_fail(err, "train: row of %d tokens exceeds the workspace (%d)", row->n, w->max_tokens);
    for (int t = 0; t < row->n; t++) {
        if (row->token[t] < 0 || row->token[t] >= w->c.vocab_size)
            return s1c_fail(err, "train: token %d at position %d is outside the vocabulary (%d)", row->token[t], t,
                            w->c.vocab_size);
        if (row->target[t] >= w->c.vocab_size)
            return s1c_fail(err, "train: target %d at position %d is outside the vocabulary (%d)", row->target[t], t,
                            w->c.vocab_size);
    }
    return 0;
}

/* Positions within segments and each row's segment start; the rows that predict. */
static int plan_row(s1c_gradws *w, const s1c_grad_row *row) {
    int n_pred = 0;
    for (int t = 0; t < row->n; t++) {
        bool starts = t == 0 || (row->seg && row->seg[t] != row->seg[t - 1]);
        w->seg_start[t] = starts ? t : w->seg_start[t - 1];
        w->pos[t] = t - w->seg_start[t];
        if (row->target[t] >= 0) w->rows[n_pred++] = t;
    }
    return n_pred;
}

int s1c_grad_row_run(s1c_gradws *w, const s1c_params *p, float *grad, const s1c_grad_row *row, double *loss,
                     int *n_targets, s1c_err *err) {
    if (check_row(w, row, err) != 0) return -1;
    const s1c_config *c = &w->c;
    int T = row->n, D = c->dim, L = c->n_layers;
    int n_pred = plan_row(w, row);
    *n_targets = n_pred;
    *loss = 0;
    /* forward, keeping each layer's input */
    const float *E = param_ptr(p, p->data, T_TOK_EMBD, -1);
    for (int t = 0; t < T; t++) memcpy(w->xs + (size_t)t * D, E + (size_t)row->token[t] * D, (size_t)D * sizeof(float));
    bool keep = w->n_acts == L;
    for (int l = 0; l < L; l++) {
        layer_params P = layer_views(p, p->data, l);
        w->a = &w->acts[keep ? l : 0];
        layer_forward(w, &P, w->xs + (size_t)l * T * D, w->xs + (size_t)(l + 1) * T * D, T);
    }
    const float *xL = w->xs + (size_t)L * T * D;
    const float *wn = param_ptr(p, p->data, T_OUTPUT_NORM, -1);
    rmsnorm_rows(w->hn, w->rstdf, xL, wn, T, D, c->norm_eps);
    if (n_pred == 0) return 0;
    *loss = head_loss_backward(w, p, grad, row, n_pred);
    if (!grad) return 0;
    /* backward */
    memset(w->dx, 0, (size_t)T * D * sizeof(float));
    rmsnorm_backward(w->dx, w->dx, (float *)param_ptr(p, grad, T_OUTPUT_NORM, -1), w->dhn, xL, wn, w->rstdf, T, D);
    for (int l = L - 1; l >= 0; l--) {
        layer_params P = layer_views(p, p->data, l), G = layer_views(p, grad, l);
        const float *x = w->xs + (size_t)l * T * D;
        w->a = &w->acts[keep ? l : 0];
        if (!keep) layer_forward(w, &P, x, NULL, T); /* gradient checkpointing: recompute this layer */
        layer_backward(w, &P, &G, x, T);
    }
    float *dE = (float *)param_ptr(p, grad, T_TOK_EMBD, -1);
    for (int t = 0; t < T; t++) kern_axpy(dE + (size_t)row->token[t] * D, 1.0f, w->dx + (size_t)t * D, D);
    return 0;
}
