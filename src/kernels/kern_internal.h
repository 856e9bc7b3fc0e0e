/* The kernel families' function tables (dispatch.c picks one). */
#ifndef S1C_KERN_INTERNAL_H
#define S1C_KERN_INTERNAL_H

#include "kernels.h"

/* One kern_sgemm call's operands (beta already applied: 0 or 1). bf16: A and B are rounded
 * to bf16 (kern_sgemm_bf16). */
typedef struct gemm_args {
    bool ta, tb, bf16;
    int M, N, K;
    const float *A, *B;
    int lda, ldb, ldc;
    float beta;
    float *C;
} gemm_args;

/* A family's register-blocked micro-kernel and its cache blocking (gemm_driver.c runs it):
 * ukr computes the mr x nr tile c (row stride ldc) = (load ? c : 0) + a * b over kc, where a
 * is an A panel packed k-major (mr floats per k) and b a B panel packed k-major (nr floats
 * per k). Each c element is one FMA chain in increasing k. */
typedef struct gemm_kernel {
    int mr, nr, kc, mc, nc;
    void (*ukr)(int kc, const float *a, const float *b, float *c, int ldc, bool load);
} gemm_kernel;

/* Packing (gemm_driver.c): op(A) rows [m0, m0 + rows) x k [k0, k0 + kc) into mr-tall panels
 * (mr floats per k, zero rows past `rows`), and op(B) k [k0, k0 + kc) x columns [n0, n0 + cols)
 * into nr-wide panels (nr floats per k, zero columns past `cols`); rounded to bf16 values when
 * g->bf16. */
void gemm_pack_a(const gemm_args *g, int mr, int m0, int rows, int k0, int kc, float *pa);
void gemm_pack_b(const gemm_args *g, int nr, int k0, int kc, int n0, int cols, float *pb);

/* The blocked product for the C block [m0, m1) x [n0, n1) of g (packing, cache blocks). */
void gemm_blocked(const gemm_kernel *k, const gemm_args *g, int m0, int m1, int n0, int n1);

/* Activation rows quantized for the quantized matmuls (kern_is_qmatmul_dtype; qmatmul.c): per 32-block, q = round(x / d)
 * with d = max|x| / 127 (as ggml's q8_0, the scale kept in f32). Values and scales in separate
 * arrays so that two blocks' values are one 64-byte load. */
typedef struct kern_q8x {
    int8_t *q; /* [n_rows][n] */
    float *d;  /* [n_rows][n / 32] */
    int32_t *s; /* [n_rows][n / 32]: each block's sum of q (the bias corrections of Q8_0/Q4_0/Q5_0/Q6_K) */
    int32_t *h; /* [n_rows][n / 32]: the sum of each block's first 16 q (Q6_K's 16-element sub-blocks) */
    float *m;   /* [n_rows][n / 32]: -(d * s), the factor of Q4_K/Q5_K's (and -1 times Q4_1/Q5_1's) min terms */
    int n;     /* a multiple of 32 */
} kern_q8x;

/* Quantizes n_rows rows of n activations into xq (allocated: kern_q8x_free). kern_matmul has no
 * error channel: out of memory ends the process with a message. */
void kern_q8x_make(kern_q8x *xq, const float *x, int n_rows, int n);
/* The same into xq's arrays, already sized (q: n_rows * n + 64 bytes; d, s, h, m: n_rows * n / 32 + 1);
 * vectorized where the CPU has AVX-512, with the same roundf results as the scalar loop. */
void kern_q8x_fill(kern_q8x *xq, const float *x, int n_rows);
/* Blocks [b0, b1) of the rows (counted across rows: block b is x[32 b .. 32 b + 31]); the blocks
 * are independent, so threads may fill disjoint ranges. */
void kern_q8x_fill_blocks(kern_q8x *xq, const float *x, size_t b0, size_t b1);
void kern_avx512_q8x(kern_q8x *xq, const float *x, size_t b0, size_t b1); /* qmatmul_avx512.c */
void kern_avx2_q8x(kern_q8x *xq, const float *x, size_t b0, size_t b1);   /* qmatmul_avx2.c */
void kern_ref_q8x(kern_q8x *xq, const float *x, size_t b0, size_t b1); /* the scalar loop, blocks [b0, b1) */
void kern_q8x_free(kern_q8x *xq);
/* Q4_K, Q5_K, Q6_K: 256-element super-blocks, so rows of n % 256 == 0 only. */
bool kern_is_kquant_dtype(int dtype);
/* Q4_1, Q5_0, Q5_1: 32-blocks with a minimum (Q4_1, Q5_1) and/or a fifth bit (Q5_0, Q5_1). */
bool kern_is_q5x_dtype(int dtype);
/* The reference quantized matmul rows (qmatmul.c): families without their own use it. */
void kern_ref_matmul_q_rows(float *out, const kern_q8x *xq, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1);

typedef struct kern_ops {
    const char *name;
    /* kern_matmul restricted to output rows [i0, i1) */
    void (*matmul_rows)(float *out, const float *x, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1);
    void (*rmsnorm)(float *o, const float *x, const float *w, int n, float eps);
    float (*dot)(const float *a, const float *b, int n);
    void (*axpy)(float *y, float a, const float *x, int n);
    /* kern_sgemm restricted to the C block [m0, m1) x [n0, n1); gemm_mr/gemm_nr: the tile
     * sizes a thread split should be a multiple of */
    void (*sgemm_block)(const gemm_args *g, int m0, int m1, int n0, int n1);
    int gemm_mr, gemm_nr;
    /* kern_matmul of quantized weights (kern_is_qmatmul_dtype) on activations quantized by
     * kern_q8x_make (n / 32 blocks per row), output rows [i0, i1) */
    void (*matmul_q_rows)(float *out, const kern_q8x *xq, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1);
    int (*argmax)(const float *x, int n);
} kern_ops;

/* Each family's sgemm_block (gemm_ref.c, gemm_avx512.c, gemm_avx2.c). */
void gemm_ref_block(const gemm_args *g, int m0, int m1, int n0, int n1);
void gemm_avx512_block(const gemm_args *g, int m0, int m1, int n0, int n1);
void gemm_avx2_block(const gemm_args *g, int m0, int m1, int n0, int n1);
/* kern_sgemm_bf16 with AVX512_BF16 dot products (gemm_bf16.c); only where the CPU has them. */
void gemm_bf16_block(const gemm_args *g, int m0, int m1, int n0, int n1);
bool kern_avx512bf16_supported(void);
/* The AVX-512 VNNI quantized matmul (qmatmul_avx512.c) for Q8_0 / Q4_0 where the CPU has VNNI;
 * the other types, or a CPU without VNNI, the AVX2 rows. */
void kern_avx512_matmul_q_rows(float *out, const kern_q8x *xq, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1);
/* The AVX2 one (qmatmul_avx2.c): Q8_0 / Q4_0 bitwise as the reference, the other types the reference. */
void kern_avx2_matmul_q_rows(float *out, const kern_q8x *xq, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1);

/* Weights to prefetch into L2 while a tile computes: lines [lo, hi) of n ranges (range i at
 * base + i * stride) read in lockstep (line l is range l % n's line l / n, the order a tile
 * reads its panels in), per_block lines per step. The driver gives each of a slice's row passes a
 * share of the next slice, so its first pass finds it in L2 instead of waiting on memory. */
typedef struct pk_pf {
    const uint8_t *base;
    size_t stride, lo, hi; /* lo, hi: line indices */
    int n, per_block;
} pk_pf;

/* pk_pf's lines, per_block of them per step (prefetcht1: into L2). */
typedef struct pf_cursor {
    const uint8_t *base;
    size_t stride, off, left;
    int u, n, per;
} pf_cursor;

static inline pf_cursor pf_start(const pk_pf *f) {
    if (f->per_block <= 0 || f->hi <= f->lo) return (pf_cursor){0};
    return (pf_cursor){f->base, f->stride, f->lo / (size_t)f->n * 64, f->hi - f->lo, (int)(f->lo % (size_t)f->n), f->n, f->per_block};
}

static inline void pf_step(pf_cursor *c) {
    for (int i = 0; i < c->per && c->left > 0; i++, c->left--) {
        __builtin_prefetch(c->base + (size_t)c->u * c->stride + c->off, 0, 2);
        if (++c->u == c->n) c->u = 0, c->off += 64;
    }
}

/* A tile's first slice (k0 == 0) asks for output lines for writing (prefetchw) while it
 * computes, those OUT_AHEAD floats further along its rows (about three tiles on: the tiles that
 * follow on this thread, as a thread takes consecutive panels): a wide output (the lm_head's 32 x 151936 logits, 19 MB, far past L2)
 * otherwise stalls the stores on read-for-ownership misses. Asking for the tile's own lines, as
 * this did at first, came too late: bench_packed packed_cold 896 x 151936, 32 rows, Q8_0, 2
 * threads, 5 interleaved rounds: own lines 1204 GOP/s (median), 1, 2, 3, 4, 6 tiles of 48
 * ahead 1266, 1365, 1349-1389, 1383, 1322; with the logits not written at all ~1390-1410.
 * Prefetches never fault: the lines past the output's end (an address, not a pointer into it)
 * are harmless. */
enum { OUT_AHEAD = 144 };

/* The write prefetch above for a tile's outputs in one row, starting at `row`: the line
 * OUT_AHEAD floats on, computed as an address (it may lie past the output's end). */
static inline void out_ahead(const float *row) { __builtin_prefetch((const void *)((uintptr_t)row + 4 * OUT_AHEAD), 1, 3); }

/* One row's quantized tile (decode) streams its panel from memory with nothing else to hide the
 * latency: per block it asks for the lines DECODE_AHEAD bytes past the block's share of the
 * panel (into the next panel near the end, usually this thread's next). bench_packed packed_cold,
 * one row, one thread, GB/s (AVX-512; 1536 x 8960 K-quants, 896 x 4864 others): no prefetch /
 * 4 KiB / 8 KiB ahead: Q6_K 16-17 / 37-39 / 41-43, Q4_K 25-26 / 36-40 / 42-44, Q5_0 27-33 / 34-38
 * / 37-42; Q8_0 and Q4_0 (4 KiB until 2026-11-27) 38-40 and 35-38 -> 38-44 and 40-44 at 8 KiB; 12
 * KiB as 8, 16-24 KiB less. Whole model, 2 threads, interleaved rounds (s1c bench --only decode):
 * Q4_K_M 0.5B 102-131 -> 118-169 tok/s (3 rounds), Q8_0 / Q4_0 ahead of 4 KiB in each of 4 rounds. */
enum { DECODE_AHEAD = 8192 };

/* The lines of [at, at + bytes) moved `ahead` bytes on, asked for into L1 (prefetcht0). */
static inline void prefetch_ahead(const uint8_t *at, size_t bytes, size_t ahead) {
    for (size_t l = 0; l < (bytes + 63) / 64; l++) __builtin_prefetch(at + ahead + 64 * l, 0, 3);
}

/* The prefetch for a block's `bytes` at `at` (decode). */
static inline void decode_ahead(const uint8_t *at, size_t bytes) { prefetch_ahead(at, bytes, DECODE_AHEAD); }

/* The packed multi-row kernels (packed_avx512.c, packed_avx2.c; see kern_pack in kernels.h). pw: the tile's
 * first panel; pstride: bytes from one panel to the next. Rows t of the activations: x (f32), xb (bf16
 * pairs as u32, n2 per row) or xq/xd/xs, each pointing at the tile's first row. out: [n_rows][d] with the tile's first output at column c0;
 * cols: valid outputs in the tile (the rest of the last panel is not stored). Range [k0, k1) in
 * k (F32), k-pairs (BF16) or blocks (quantized); k0 > 0 continues from out. */
typedef struct pk_tile {
    pk_pf pf; /* per_block 0: none */
    const uint8_t *pw;
    size_t pstride;
    const float *x;
    const uint32_t *xb;
    const int8_t *xq;  /* quantized rows (kern_q8x's q, d, s) */
    const float *xd;
    const int32_t *xs;
    const int32_t *xh; /* kern_q8x's h (Q6_K) and m (Q4_K/Q5_K) */
    const float *xm;
    int ldx; /* elements per activation row: n, or n2 for xb */
    float *out;
    int ldo, cols, k0, k1;
    int n; /* the matrix's k length (BF16 widened: the last pair of an odd n is half) */
} pk_tile;
/* One tile of mr rows (1..6; 1..4 for quantized) x nv panels (1..4; 1..3 quantized). */
void pk_tile_f32(const pk_tile *t, int mr, int nv);
void pk_tile_bf16(const pk_tile *t, int mr, int nv);  /* vdpbf16ps on bf16 activations */
void pk_tile_bf16w(const pk_tile *t, int mr, int nv); /* widened weights, f32 activations */
void pk_tile_q(const pk_tile *t, int dtype, int mr, int nv);
/* The AVX2 tiles (packed_avx2.c): F32 and BF16 widened (1 row x nv 1..4 panels, or mr 2..6 x
 * one panel) the same bits as pk_tile_f32 / pk_tile_bf16w, every quantized type (mr 1..4 x one
 * panel) as pk_tile_q / pk_tile_kq / pk_tile_q5x. */
void pk_avx2_tile(const pk_tile *t, int dtype, int mr, int nv);
/* Whether the quantized ones use AVX-VNNI: on (1, where the CPU has it), off (0) or as the CPU
 * allows (-1, the default); returns whether they will. For tests and benchmarks (both ways give
 * the same bits). */
bool pk_avx2_vnni(int mode);
/* The AMX tile (packed_amx.c): up to 32 rows x 2 panels of BF16 weights on bf16 activations (xb;
 * k0/k1 in pairs). pk_amx sets whether packed.c takes it: on (1, where the CPU and the OS allow
 * AMX), off (0), or the default (-1: on where allowed, unless $S1C_AMX is 0), for tests and
 * benchmarks; returns the setting. pk_amx_on reads it (the first call of either reads the CPU
 * and asks the OS for the tile state). */
bool pk_amx(int mode);
bool pk_amx_on(void);
/* Returns this thread's tiles to their initial state (TILERELEASE), so that a context switch
 * saves and restores no tile data; the next tile call configures them again. */
void pk_amx_release(void);
/* The tile's peak loop for bench_peak_bf16 (limits.c): iters steps of its four tile products;
 * returns the FLOPs (0 where not built). Only where pk_amx_on. */
double pk_amx_bf16_peak_loop(long iters);
void pk_amx_tile_bf16(const pk_tile *t, int mr, int nv);
/* The Q4_0 (q4) and Q8_0 tile (packed_amx.c; AMX-INT8, where pk_amx_int8_on): the same bits as
 * pk_tile_q. pk_amx_q_blocks writes blocks [k0, k1) of t's nv (1..2) panels as signed B tiles
 * into bs (nv * (k1 - k0) * 512 bytes, 64-aligned; at most PK_AMX_Q_KC blocks), which
 * pk_amx_tile_q then takes for up to 32 rows (xq, xd) x nv panels. */
enum { PK_AMX_Q_KC = 32 };
bool pk_amx_int8_on(void);
void pk_amx_q_blocks(int8_t *bs, const pk_tile *t, int nv, bool q4);
void pk_amx_tile_q(const pk_tile *t, const int8_t *bs, int mr, int nv, bool q4);
/* The int8 tile's peak loop for bench_peak_amx_int8 (limits.c), as pk_amx_bf16_peak_loop: returns
 * the ops (0 where not built). Only where pk_amx_int8_on. */
double pk_amx_int8_peak_loop(long iters);
/* Tiles 0-7 configured as rows[i] x colsb[i] bytes (palette 1) for this thread, unless they are
 * already (attention.c's AMX steps; the packed tiles configure their own shapes). */
void pk_amx_config(const uint8_t rows[8], const uint16_t colsb[8]);
/* Rows [t0, t1) of x ([rows][n]) as bf16 pairs for the BF16 dot tiles (xb: [rows][n2], n2 =
 * ceil(n / 2); element 2j in the low half, 2j + 1 in the high, 0 past n), each value as
 * s1c_f32_to_bf16 rounds it. */
void pk_bf16_pairs(uint32_t *xb, const float *x, int n, int n2, int t0, int t1);
/* Q4_K / Q5_K / Q6_K (mr 1..4 x nv 1..3; nv 1..2 for Q6_K): the operations of the reference
 * (qmatmul.c) per lane; k0/k1 in 32-blocks. kq_rec_bytes: a panel's bytes per super-block. */
void pk_tile_kq(const pk_tile *t, int dtype, int mr, int nv);
/* The K-quant super-block record (packed.c describes it): a 64-byte header, then per pair of
 * 32-blocks their scales (2 x 32 bytes), values (2 x 256) and high bits (2 x nbits: 0, 64 for
 * Q5_K, 128 for Q6_K), so decode reads it as one sequential stream. Offsets of block j's parts: */
enum { KQ_HDR = 64, KQ_BITS5 = 64, KQ_BITS6 = 128 };
static inline size_t kq_pair_bytes(size_t nbits) { return 64 + 512 + 2 * nbits; }
static inline size_t kq_scales_at(int j, size_t nbits) { return KQ_HDR + (size_t)(j / 2) * kq_pair_bytes(nbits) + (size_t)(j % 2) * 32; }
static inline size_t kq_values_at(int j, size_t nbits) { return KQ_HDR + (size_t)(j / 2) * kq_pair_bytes(nbits) + 64 + (size_t)(j % 2) * 256; }
static inline size_t kq_bits_at(int j, size_t nbits) { return KQ_HDR + (size_t)(j / 2) * kq_pair_bytes(nbits) + 576 + (size_t)(j % 2) * nbits; }
size_t kq_rec_bytes(int dtype);
/* Q4_1 / Q5_0 / Q5_1 (mr 1..4 x nv 1..3): the reference's operations (qmatmul.c) per lane; k0/k1
 * in 32-blocks, on the pair records below. */
void pk_tile_q5x(const pk_tile *t, int dtype, int mr, int nv);
/* Their record per pair of 32-blocks and panel (packed.c describes it): the c blocks' (2, or 1
 * for an odd count's last) f16 d (c x 32 bytes), f16 m (c x 32, Q4_1/Q5_1), fifth bits (c x 64,
 * Q5_0/Q5_1) and values (c x 256, Q4_0's nibble layout). Offsets of block j's (< c) parts: */
static inline bool q5x_has_min(int dtype) { return dtype != S1C_Q5_0; }
static inline bool q5x_has_bits(int dtype) { return dtype != S1C_Q4_1; }
static inline size_t q5x_m_at(int c, int j) { return 32 * (size_t)(c + j); }
static inline size_t q5x_bits_at(int dtype, int c, int j) { return 32 * (size_t)c * (q5x_has_min(dtype) ? 2 : 1) + 64 * (size_t)j; }
static inline size_t q5x_values_at(int dtype, int c, int j) { return q5x_bits_at(dtype, c, 0) + (q5x_has_bits(dtype) ? 64 * (size_t)c : 0) + 256 * (size_t)j; }
static inline size_t q5x_rec_bytes(int dtype, int c) { return q5x_values_at(dtype, c, c); }
/* Q8_0 / Q4_0 pair records (packed.c): the two blocks' [16] f16 scales in one 64-byte line (an odd
 * count's lone last block: the first half), then their values, blk bytes each (512 / 256). */
static inline size_t q0_blk_bytes(bool q4) { return q4 ? 256 : 512; }
static inline size_t q0_block_at(bool q4, int b) { return (size_t)(b / 2) * (64 + 2 * q0_blk_bytes(q4)) + (size_t)(b % 2) * q0_blk_bytes(q4) + 64; }
static inline size_t q0_scales_at(bool q4, int b) { return (size_t)(b / 2) * (64 + 2 * q0_blk_bytes(q4)) + (size_t)(b % 2) * 32; }
static inline size_t q0_panel_bytes(bool q4, int nb) { return (size_t)nb * q0_blk_bytes(q4) + (size_t)(nb + 1) / 2 * 64; }
bool kern_avx512vnni_supported(void);

extern const kern_ops kern_ops_ref, kern_ops_avx2, kern_ops_avx512;
/* F16C (half-precision conversions), read from CPUID: clang's __builtin_cpu_supports has no
 * name for it. */
bool kern_cpu_has_f16c(void);
/* AVX-VNNI (ymm vpdpbusd without AVX-512), from CPUID; the AVX2 packed quantized tiles use it
 * where present. */
bool kern_cpu_has_avxvnni(void);
/* Whether this CPU (and compiler) can run the family. */
bool kern_avx512_supported(void);
bool kern_avx2_supported(void);

#endif
