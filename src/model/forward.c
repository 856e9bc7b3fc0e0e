/* The transformer forward pass over a ragged batch.
 *
 * For each layer, all rows of the batch go through each weight together (one
 * matrix-matrix product per weight), their keys and values are written into the paged
 * cache, and then every row attends to positions 0..pos of its own sequence through that
 * sequence's block table. A row's arithmetic is the same whatever else is in the batch, so
 * prefill, decode and any mix of sequences give the same logits. The kernels come from
 * kernels/ (the fast family the CPU supports, or the scalar reference with S1C_KERNELS=ref);
 * matmuls split their output rows over the process-wide thread pool, which never changes a
 * reduction, so the same holds bitwise for any thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kv_internal.h"
#include "model_internal.h"

struct s1c_fwd {
    const s1c_model *m;
    int max_tokens, max_ctx;
    float *x;           /* [max_tokens][dim] residual stream */
    float *xb;          /* [max_tokens][max(dim, q_dim)] */
    float *xb2;         /* [max_tokens][max(dim, q_dim)] */
    float *q;           /* [max_tokens][q_dim] */
    float *k, *v;       /* [max_tokens][kv_dim] */
    float *hb, *hb2;    /* [max_tokens][hidden] */
    float *rope;        /* [max_tokens][head_dim]: a row's RoPE cosines, then sines (every layer's) */
    float *att;         /* [n_scratch][KERN_ATTN_SCRATCH]: one attention scratch per pool task */
    int n_scratch;
    kern_ws ws;         /* converted activations of the packed matmuls */
    int *cached;        /* [max_tokens]: a row's leading positions earlier rows read too (shared_prefixes) */
    uint8_t *seen;      /* [seen_cap] per KV block: read by a row of the chunk so far (zeros between chunks) */
    int seen_cap;
};

int s1c_fwd_new(s1c_fwd **out, const s1c_model *m, int max_tokens, int max_ctx, s1c_err *err) {
    *out = NULL;
    const s1c_config *c = &m->cfg;
    if (max_tokens <= 0 || max_ctx <= 0) return s1c_fail(err, "forward: max_tokens and max_ctx must be positive");
    if (c->head_dim > KERN_ATTN_MAX_HD) return s1c_fail(err, "forward: head_dim %d is above the %d the attention kernel takes", c->head_dim, KERN_ATTN_MAX_HD);
    if (model_pack(m, err) != 0) return -1;
    s1c_fwd *f = calloc(1, sizeof *f);
    if (!f) return s1c_fail(err, "forward: out of memory");
    f->m = m;
    f->max_tokens = max_tokens;
    f->max_ctx = max_ctx;
    size_t T = (size_t)max_tokens, q_dim = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t kv_dim = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t wide = q_dim > (size_t)c->dim ? q_dim : (size_t)c->dim;
    f->x = malloc(T * (size_t)c->dim * sizeof(float));
    f->xb = malloc(T * wide * sizeof(float));
    f->xb2 = malloc(T * wide * sizeof(float));
    f->q = malloc(T * q_dim * sizeof(float));
    f->k = malloc(T * kv_dim * sizeof(float));
    f->v = malloc(T * kv_dim * sizeof(float));
    f->hb = malloc(T * (size_t)c->hidden_dim * sizeof(float));
    f->hb2 = malloc(T * (size_t)c->hidden_dim * sizeof(float));
    f->rope = malloc(T * (size_t)c->head_dim * sizeof(float));
    f->n_scratch = s1c_pool_threads(s1c_pool_global());
    if (f->n_scratch < 1) f->n_scratch = 1;
    f->att = malloc((size_t)f->n_scratch * KERN_ATTN_SCRATCH * sizeof(float));
    f->cached = calloc(T, sizeof(int));
    if (!f->x || !f->xb || !f->xb2 || !f->q || !f->k || !f->v || !f->hb || !f->hb2 || !f->rope || !f->att || !f->cached) {
        s1c_fwd_free(f);
        return s1c_fail(err, "forward: out of memory for %d rows", max_tokens);
    }
    *out = f;
    return 0;
}

void s1c_fwd_free(s1c_fwd *f) {
    if (!f) return;
    free(f->x); free(f->xb); free(f->xb2); free(f->q); free(f->k); free(f->v);
    free(f->hb); free(f->hb2); free(f->rope); free(f->att); free(f->cached); free(f->seen);
    kern_ws_free(&f->ws);
    free(f);
}

/* Through the packed kernel where the weight has one (the same kernel for 1 row or many, so
 * decode and prefill agree bitwise), else the per-row kernels on the row-major view. */
static void matmul(s1c_fwd *f, float *out, const float *x, int n_rows, const s1c_tensor *w, const kern_packed *pk) {
    if (pk) kern_matmul_packed(s1c_pool_global(), out, x, n_rows, pk, &f->ws);
    else kern_matmul_mt(s1c_pool_global(), out, x, n_rows, w->data, w->dtype, (int)w->shape[1], (int)w->shape[0]);
}

static void add_bias(float *x, const float *b, int n) {
    if (!b) return;
    for (int i = 0; i < n; i++) x[i] += b[i];
}

static int cmp_slot(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* No two rows store into one cache slot (the same sequence and position twice, or two sequences
 * whose block tables share the block a position is written to): the rows are stored by
 * different threads, so which one would land is not fixed, and attention would read either.
 * Sorted, not compared pairwise: a long prompt is one batch of thousands of rows. */
static int check_slots(const s1c_kv *kv, const s1c_batch *b, s1c_err *err) {
    if (b->n_tokens < 2) return 0;
    uint64_t *slot = malloc((size_t)b->n_tokens * sizeof *slot);
    if (!slot) return s1c_fail(err, "forward: out of memory checking a batch of %d rows", b->n_tokens);
    int bs = kv->block_size, rc = 0;
    for (int i = 0; i < b->n_tokens; i++) {
        int p = b->pos[i];
        slot[i] = ((uint64_t)b->seqs[b->seq[i]].blocks[p / bs] * (uint64_t)bs + (uint64_t)(p % bs)) << 32 | (uint64_t)i; /* the row below */
    }
    qsort(slot, (size_t)b->n_tokens, sizeof *slot, cmp_slot);
    for (int i = 1; i < b->n_tokens && rc == 0; i++)
        if (slot[i] >> 32 == slot[i - 1] >> 32) {
            int r0 = (int)(slot[i - 1] & 0xffffffff), r1 = (int)(slot[i] & 0xffffffff);
            rc = s1c_fail(err, "forward: rows %d and %d store into the same KV cache slot (sequence %d position %d, sequence %d position %d)",
                          r0, r1, b->seq[r0], b->pos[r0], b->seq[r1], b->pos[r1]);
        }
    free(slot);
    return rc;
}

static int check_batch(const s1c_fwd *f, const s1c_kv *kv, const s1c_batch *b, s1c_err *err) {
    const s1c_config *c = &f->m->cfg;
    if (b->n_tokens < 0 || (b->n_tokens > 0 && (!b->token || !b->pos || !b->seq || !b->seqs)))
        return s1c_fail(err, "forward: malformed batch");
    if (kv->n_layers != c->n_layers || kv->kv_dim != c->n_kv_heads * c->head_dim)
        return s1c_fail(err, "forward: KV cache was made for another model shape");
    for (int i = 0; i < b->n_tokens; i++) {
        int s = b->seq[i], p = b->pos[i];
        if (b->token[i] < 0 || b->token[i] >= c->vocab_size)
            return s1c_fail(err, "forward: row %d: token id %d outside the vocabulary (0..%d)", i, b->token[i], c->vocab_size - 1);
        if (s < 0 || s >= b->n_seqs) return s1c_fail(err, "forward: row %d: sequence %d outside the batch", i, s);
        if (p < 0 || p >= f->max_ctx) return s1c_fail(err, "forward: row %d: position %d outside the context (%d)", i, p, f->max_ctx);
        const s1c_seq_blocks *sb = &b->seqs[s];
        if (p / kv->block_size >= sb->n_blocks)
            return s1c_fail(err, "forward: row %d: position %d needs more than the %d blocks of sequence %d", i, p, sb->n_blocks, s);
        for (int k = 0; k <= p / kv->block_size; k++)
            if (sb->blocks[k] < 0 || sb->blocks[k] >= kv->n_blocks)
                return s1c_fail(err, "forward: sequence %d: block id %d out of range", s, sb->blocks[k]);
    }
    return check_slots(kv, b, err);
}

/* One layer's work over rows [r0, r0 + n) of a batch, split over the pool (attention; RoPE and
 * the KV store). */
typedef struct layer_rows_job {
    s1c_fwd *f;
    s1c_kv *kv;
    const s1c_batch *b;
    int layer, r0, n;
} layer_rows_job;

/* Attention of every row of the chunk: items (row, KV head, group slice) are dealt out to the
 * pool's tasks in turn (item i to task i mod T: prefill rows grow in cost, so a contiguous split
 * would leave one thread with most of it); each item is one kern_attention call, reading the
 * sequence's KV blocks in place. */
static void attn_task(void *ctx, int task, int n_tasks) {
    const layer_rows_job *j = ctx;
    const s1c_config *c = &j->f->m->cfg;
    const s1c_kv *kv = j->kv;
    int hd = c->head_dim, group = c->n_heads / c->n_kv_heads;
    int slices = (group + KERN_ATTN_MAX_HEADS - 1) / KERN_ATTN_MAX_HEADS, per_row = c->n_kv_heads * slices;
    size_t q_dim = (size_t)c->n_heads * hd;
    for (int it = task; it < j->n * per_row; it += n_tasks) {
        int t = it / per_row, g = it % per_row / slices, sl = it % slices;
        int h0 = g * group + sl * KERN_ATTN_MAX_HEADS, nh = group - sl * KERN_ATTN_MAX_HEADS;
        if (nh > KERN_ATTN_MAX_HEADS) nh = KERN_ATTN_MAX_HEADS;
        int row = j->r0 + t;
        kern_attn_args a = {
            .q = j->f->q + (size_t)t * q_dim + (size_t)h0 * hd,
            .out = j->f->xb2 + (size_t)t * q_dim + (size_t)h0 * hd,
            .nh = nh, .hd = hd, .n = j->b->pos[row] + 1, .bs = kv->block_size, .dtype = kv->dtype,
            /* KV head g's slab: per block K [hd][bs], V [bs][hd] (the tile layout: K [bs][hd], V [hd][bs]) */
            .k = kv_head_base(kv, false, j->layer, g), .v = kv_head_base(kv, true, j->layer, g),
            .blocks = j->b->seqs[j->b->seq[row]].blocks,
            .block_stride = (size_t)kv->block_size * hd, .ld = (size_t)hd,
            .scale = 1.0f / sqrtf((float)hd),
            .scratch = j->f->att + (size_t)task * KERN_ATTN_SCRATCH,
            .bf16_dot = j->f->m->bf16_dot, /* a BF16 cache: bf16 arithmetic as the model's BF16 weights get */
            .n_cached = j->f->cached[t],
            .tiles = kv->tiles,
        };
        kern_attention(&a);
    }
    kern_attention_done();
}

static void attend_all(s1c_fwd *f, s1c_kv *kv, int layer, const s1c_batch *b, int r0, int n) {
    layer_rows_job j = {f, kv, b, layer, r0, n};
    s1c_pool *pool = s1c_pool_global();
    int T = s1c_pool_threads(pool);
    if (T > f->n_scratch) T = f->n_scratch;
    if (T <= 1) attn_task(&j, 0, 1);
    else s1c_pool_run(pool, T, attn_task, &j);
}

/* Each row's q, k and v biases, RoPE on its q and k, then its k and v into the cache, over the
 * pool by rows (each row writes only its own position's slots; serial it was ~2% of a 32-row
 * step, the other thread waiting, and the biases ~1% more). */
static void rope_store_task(void *ctx, int task, int n_tasks) {
    const layer_rows_job *j = ctx;
    const s1c_config *c = &j->f->m->cfg;
    const layer_weights *w = &j->f->m->layers[j->layer];
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim, bs = j->kv->block_size;
    bool half = c->rope_layout == S1C_ROPE_HALF;
    for (int t = j->n * task / n_tasks; t < j->n * (task + 1) / n_tasks; t++) {
        int pos = j->b->pos[j->r0 + t];
        const s1c_seq_blocks *sb = &j->b->seqs[j->b->seq[j->r0 + t]];
        const float *cs = j->f->rope + (size_t)t * c->head_dim, *sn = cs + c->head_dim / 2;
        float *q = j->f->q + (size_t)t * q_dim, *k = j->f->k + (size_t)t * kv_dim, *v = j->f->v + (size_t)t * kv_dim;
        add_bias(q, w->bq, q_dim);
        add_bias(k, w->bk, kv_dim);
        add_bias(v, w->bv, kv_dim);
        kern_rope_apply(q, c->n_heads, c->head_dim, cs, sn, half);
        kern_rope_apply(k, c->n_kv_heads, c->head_dim, cs, sn, half);
        kv_store(j->kv, j->layer, sb->blocks[pos / bs], pos % bs, k, v);
    }
}

/* fn(job, task, n_tasks) over the chunk's n rows: over the pool for batches, on this thread for
 * fewer than 8 rows (a wake-up costs more than such rows' element-wise work). */
static void over_rows(s1c_pool_fn fn, void *job, int n) {
    s1c_pool *pool = s1c_pool_global();
    int T = s1c_pool_threads(pool);
    if (T <= 1 || n < 8) fn(job, 0, 1);
    else s1c_pool_run(pool, T < n ? T : n, fn, job);
}

static void rope_store_rows(s1c_fwd *f, s1c_kv *kv, int layer, const s1c_batch *b, int r0, int n) {
    layer_rows_job j = {f, kv, b, layer, r0, n};
    over_rows(rope_store_task, &j, n);
}

/* Rows [0, n) of the chunk: x += add (add NULL: nothing), then out = rmsnorm(x) * w (w NULL:
 * nothing); add and out may be the same rows. */
typedef struct norm_job {
    s1c_fwd *f;
    float *out;
    const float *add, *w;
    int n;
} norm_job;

static void residual_norm_task(void *ctx, int task, int n_tasks) {
    const norm_job *j = ctx;
    int dim = j->f->m->cfg.dim;
    for (int t = j->n * task / n_tasks; t < j->n * (task + 1) / n_tasks; t++) {
        float *x = j->f->x + (size_t)t * dim;
        if (j->add)
            for (int i = 0; i < dim; i++) x[i] += j->add[(size_t)t * dim + i];
        if (j->w) kern_rmsnorm(j->out + (size_t)t * dim, x, j->w, dim, j->f->m->cfg.norm_eps);
    }
}

/* The residual add and the next norm in one pass over the rows, over the pool for batches
 * (serial, the two were ~1.5% of a 32-row step with the other thread waiting). */
static void residual_norm(s1c_fwd *f, const float *add, float *out, const float *w, int n) {
    norm_job j = {f, out, add, w, n};
    over_rows(residual_norm_task, &j, n);
}

/* Layer l on rows [r0, r0 + n): f->xb holds the rows' attention norm on entry; on return f->x
 * holds the layer's output and f->xb its norm by `next` (the next layer's attention norm; NULL
 * after the last layer: f->xb then holds nothing of use). */
static void layer_forward(s1c_fwd *f, s1c_kv *kv, int l, const s1c_batch *b, int r0, int n, const float *next) {
    const layer_weights *w = &f->m->layers[l];
    int hid = f->m->cfg.hidden_dim;
    /* attention block */
    if (w->pk[0] && w->pk[1] && w->pk[2]) {
        float *outs[3] = {f->q, f->k, f->v};
        kern_matmul_packed_n(s1c_pool_global(), 3, outs, f->xb, n, (const kern_packed *const *)w->pk, &f->ws);
    } else {
        matmul(f, f->q, f->xb, n, w->wq, w->pk[0]);
        matmul(f, f->k, f->xb, n, w->wk, w->pk[1]);
        matmul(f, f->v, f->xb, n, w->wv, w->pk[2]);
    }
    rope_store_rows(f, kv, l, b, r0, n);
    /* every row's K/V is stored before any row attends: rows of one sequence see each other */
    attend_all(f, kv, l, b, r0, n);
    matmul(f, f->xb, f->xb2, n, w->wo, w->pk[3]);
    residual_norm(f, f->xb, f->xb, w->ffn_norm, n);
    /* feed-forward block: down(silu(gate x) * up x) */
    if (w->pk[4] && w->pk[5]) {
        kern_matmul_packed_glu(s1c_pool_global(), f->hb, f->hb2, f->xb, n, w->pk[4], w->pk[5], &f->ws);
    } else {
        matmul(f, f->hb, f->xb, n, w->w_gate, w->pk[4]);
        matmul(f, f->hb2, f->xb, n, w->w_up, w->pk[5]);
        kern_swiglu_mt(s1c_pool_global(), f->hb, f->hb2, (size_t)n * (size_t)hid);
    }
    matmul(f, f->xb, f->hb, n, w->w_down, w->pk[6]);
    residual_norm(f, f->xb, f->xb, next, n);
}

/* Per row of the chunk, how many leading positions lie in blocks that an earlier row of the
 * chunk reads too (a prefill's earlier positions; the prompt's blocks of sequences forked from
 * one prompt): the earlier row pulls them into the caches (with the prefetch: the pool deals
 * each thread its items in row order), and the attention does not prefetch them again
 * (kern_attn_args.n_cached). A hint only, left at 0 where the table cannot be had. The table
 * marks the blocks seen and holds zeros between chunks: only the blocks marked are cleared. */
static void shared_prefixes(s1c_fwd *f, const s1c_kv *kv, const s1c_batch *b, int r0, int n) {
    memset(f->cached, 0, (size_t)n * sizeof(int));
    if (n < 2) return;
    if (f->seen_cap < kv->n_blocks) {
        uint8_t *r = calloc((size_t)kv->n_blocks, 1);
        if (!r) return;
        free(f->seen);
        f->seen = r;
        f->seen_cap = kv->n_blocks;
    }
    int bs = kv->block_size;
    for (int t = 0; t < n; t++) {
        const int32_t *blk = b->seqs[b->seq[r0 + t]].blocks;
        int last = b->pos[r0 + t] / bs, k = 0;
        while (k <= last && f->seen[blk[k]]) k++;
        f->cached[t] = k * bs;
        for (; k <= last; k++) f->seen[blk[k]] = 1;
    }
    for (int t = 0; t < n; t++) {
        const int32_t *blk = b->seqs[b->seq[r0 + t]].blocks;
        for (int k = 0; k <= b->pos[r0 + t] / bs; k++) f->seen[blk[k]] = 0;
    }
}

/* Rows [r0, r0+n) of the batch; returns how many logit rows were written. */
static int forward_chunk(s1c_fwd *f, s1c_kv *kv, const s1c_batch *b, int r0, int n, float *logits) {
    const s1c_model *m = f->m;
    const s1c_config *c = &m->cfg;
    int dim = c->dim;
    for (int t = 0; t < n; t++)
        kern_get_row(f->x + (size_t)t * dim, m->tok_embd->data, m->tok_embd->dtype, b->token[r0 + t], dim);
    for (int t = 0; t < n; t++) {
        float *cs = f->rope + (size_t)t * c->head_dim;
        kern_rope_angles(cs, cs + c->head_dim / 2, c->head_dim, b->pos[r0 + t], c->rope_theta);
    }
    shared_prefixes(f, kv, b, r0, n);
    residual_norm(f, NULL, f->xb, c->n_layers > 0 ? m->layers[0].attn_norm : NULL, n);
    for (int l = 0; l < c->n_layers; l++) layer_forward(f, kv, l, b, r0, n, l + 1 < c->n_layers ? m->layers[l + 1].attn_norm : NULL);
    /* final norm and head, only for the rows asked for (gathered so the head is one matmul) */
    int nw = 0;
    for (int t = 0; t < n; t++)
        if (b->logits && b->logits[r0 + t])
            kern_rmsnorm(f->xb + (size_t)(nw++) * dim, f->x + (size_t)t * dim, m->output_norm, dim, c->norm_eps);
    if (nw > 0) matmul(f, logits, f->xb, nw, m->output, m->output_pk);
    return nw;
}

int s1c_forward(s1c_fwd *f, s1c_kv *kv, const s1c_batch *b, float *logits_out, s1c_err *err) {
    if (check_batch(f, kv, b, err) != 0) return -1;
    size_t V = (size_t)f->m->cfg.vocab_size;
    for (int r0 = 0; r0 < b->n_tokens; r0 += f->max_tokens) {
        int n = b->n_tokens - r0 < f->max_tokens ? b->n_tokens - r0 : f->max_tokens;
        int nw = forward_chunk(f, kv, b, r0, n, logits_out);
        logits_out += (size_t)nw * V;
    }
    return 0;
}
