/* Packed weights for the multi-row kernels (kern_pack in kernels.h): the layouts, the activation
 * preparation and the driver that walks a matmul in register tiles (packed_avx512.c,
 * packed_avx2.c) and splits it over threads.
 *
 * Layouts, for panel p of 16 output rows (rows past d are zero, scale 0):
 *   F32   [n][16] f32                          one zmm per k
 *   BF16  [n2][16][2] bf16, n2 = ceil(n / 2)     one zmm per k-pair (even k in the low half:
 *                                                a shift or a mask widens either to f32)
 *   Q8_0  [nb][8][16][4] u8 = w + 128          one zmm per 4 k of a block, 16 rows x 4 bytes
 *   Q4_0  [nb][4][16][4] u8, ggml's own bytes    byte j*4 + i of a row holds k = 4j+i (low nibble)
 *                                                and k = 16+4j+i (high nibble)
 *   both per pair of blocks (an odd count's last alone) as one record: the two blocks' scales,
 *   [16] f16 each, in one 64-byte line, then their values as above (q0_*_at in kern_internal.h):
 *   one stream per panel. With the scales in an array of their own, a slow second stream per
 *   panel that the hardware prefetchers did not keep ahead of, the 32-row tiles from memory ran
 *   ~10% slower (bench_packed packed_cold, 896 x 4864, one thread: 605-623 GOP/s, 670-690 with
 *   the scales in the weights' lines).
 *   Q4_K, Q5_K, Q6_K: per 256-element super-block of the panel's 16 rows, one record (kq_rec_bytes each):
 *     header 64 B      [16] f16 d, [16] f16 dmin (Q6_K: d and 32 B of padding)
 *     then per pair of 32-blocks (one sequential stream; offsets: kq_*_at in kern_internal.h):
 *     scales 2 x 32 B  per 32-block: [16] u8 sc, [16] u8 m (Q6_K: [16] i8 scale of k 0-15, of 16-31)
 *     values 2 x 256 B per 32-block: Q4_0's nibble layout (4 zmm; byte 4r+i of zmm j: k = 4j+i low,
 *                      k = 16+4j+i high), the low 4 bits of q (unsigned: 0..15 / 31 / 63)
 *     bits   2 x 64 B (Q5_K) or 2 x 128 B (Q6_K) per 32-block, one or two zmm: byte 4r+i holds the
 *                      high bits of row r's codes of byte i of the value zmms, for value zmm j and
 *                      nibble h (0 low, 1 high): Q5_K's fifth bit at bit 2j+h; Q6_K's two at bits
 *                      2u, 2u+1 of bits zmm j / 2, u = 2 (j % 2) + h. A shift puts them at bit 4
 *                      (and 5), a ternary-logic or under a constant mask joins them to the nibble.
 *   = 4.625 / 5.625 / 6.625 bits per weight (the files: 4.5 / 5.5 / 6.5625), every part 64-byte
 *   aligned; a panel is one stream read front to back (separate regions per part read as several
 *   streams made one-row Q5_K/Q6_K decode ~2x slower from memory than Q4_K).
 *   Q4_1, Q5_0, Q5_1: per pair of 32-blocks of the panel's 16 rows (an odd count's last block
 *   alone), one record (q5x_*_at in kern_internal.h):
 *     d       2 x 32 B   per block [16] f16
 *     m       2 x 32 B   per block [16] f16 (Q4_1, Q5_1)
 *     bits    2 x 64 B   per block the fifth bits (Q5_0, Q5_1): Q5_K's bit-plane above, byte 4r+i
 *                        holding at bit 2j+h the fifth bit of k = 16h+4j+i
 *     values  2 x 256 B  per block Q4_0's nibble layout (ggml's own bytes), the low 4 bits of q
 *   = 5.0 / 5.5 / 6.0 bits per weight, as the files' 20 / 22 / 24 bytes per 32 (a panel rounded
 *   up to 64 bytes), every part 64-byte aligned (but in an odd count's last, lone-block record),
 *   one stream per panel.
 *
 * Blocking: a thread takes whole panels; per group of nv panels the k range is cut into slices
 * (kc) so the group's slice of weights stays in L2 (F32 and BF16: 512 steps, 32 KiB a panel;
 * quantized: 128 blocks, 64 / 32 KiB a Q8_0 / Q4_0 panel) while every tile of activation rows
 * passes over it; the partial sums go through `out` between slices, which is exact. L1-sized
 * slices (8 blocks) were 4-12% slower (bench_packed, one thread, 32 and 512 rows): a tile loads
 * one weight vector per several multiplies, which L2 feeds, while each slice costs a reload and
 * store of the tile's partial sums and a restart of the prefetchers. */
#include "kern_internal.h"
#include "vmath.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PANEL = 16, PK_MAX_TASKS = 64 };

struct kern_packed {
    const void *w; /* the row-major weights (the fallback for other families) */
    int dtype, n, d;
    bool bf16_dot; /* BF16: vdpbf16ps on bf16-rounded activations (KERN_PACK_BF16_DOT) */
    int panels, steps;  /* steps along k: n (F32), k-pairs (BF16), 32-blocks (quantized) */
    size_t pstride;     /* bytes per panel */
    uint8_t *data;
    size_t bytes;
};

/* The AVX2 tiles (packed_avx2.c: the same bits as the AVX-512 ones) run everything the avx2
 * family packs (F32, BF16 widened, every quantized type), and an AVX-512 CPU's quantized types
 * where it has no VNNI (Skylake-SP/X: no vpdpbusd for the AVX-512 tiles). */
static bool avx2_tiles(int dtype) {
    kern_family_id f = kern_family(); /* read per call: tests switch families (kern_select) */
    return f == KERN_AVX2 || (f == KERN_AVX512 && kern_is_qmatmul_dtype(dtype) && !kern_avx512vnni_supported());
}

/* Tile shape and k slice per type: mr rows x nv panels, kc steps; amx: the AMX tiles
 * (packed_amx.c). */
typedef struct pk_shape {
    int mr, nv, kc;
    bool amx;
} pk_shape;

/* The AMX tiles take BF16 dot products at every row count: their sums' order differs from
 * vdpbf16ps's, and a row must come out the same alone or in a batch. (Q8_0 / Q4_0 on int8 tiles
 * were measured and left: each 32-block's 16 x 16 integer sums must leave the tile to be scaled,
 * and on this Xeon the tile products with their stores (61 ns per 32 rows x 32 outputs x block)
 * and the AVX-512 scaling (70 ns) did not overlap: no faster than vpdpbusd.) */
static bool amx_takes(const kern_packed *p) {
    return p->dtype == S1C_BF16 && p->bf16_dot && kern_family() == KERN_AVX512 && pk_amx_on();
}

/* Q4_0 and Q8_0 on the int8 tiles (pk_amx_tile_q): the same bits as pk_tile_q, so only where
 * they are faster, from AMX_Q_ROWS rows on. Qwen2.5-0.5B Q4_0, 2 threads, 5 interleaved rounds (s1c
 * bench --only prefill, 512 rows): 373 -> 440 tok/s (medians); in-cache 896 x 4864, 128 rows: 1.6x
 * the AVX-512 tile, 32 rows 1.1-1.2x, but batch32 of the whole model (weights from memory) no
 * faster. (Q8_0: packed_amx.c.) */
enum { AMX_Q_ROWS = 64 };
int kern_packed_amx_int8_rows(int dtype) {
    return (dtype == S1C_Q4_0 || dtype == S1C_Q8_0) && kern_family() == KERN_AVX512 && pk_amx_int8_on() ? AMX_Q_ROWS : 0;
}

static bool amx_q_takes(const kern_packed *p, int n_rows) {
    int from = kern_packed_amx_int8_rows(p->dtype);
    return from > 0 && n_rows >= from;
}

/* One activation row (decode) on quantized weights: one panel per tile, so a thread reads its
 * panels as one sequential stream (a 3-panel tile reads three streams of a few KiB each, which
 * the prefetchers pick up late: ~1.4x slower from memory at 896 x 4864, bench_packed's
 * packed_cold). Nothing to share a weight load with, and the integer dots of consecutive blocks
 * overlap out of order. Every lane's operations are those of any other tile shape: same bits. */
static pk_shape shape_of(const kern_packed *p, int n_rows) {
    int dtype = p->dtype;
    if (amx_takes(p)) return (pk_shape){32, 2, 512, true};
    if (amx_q_takes(p, n_rows)) return (pk_shape){32, 2, PK_AMX_Q_KC, true};
    if (avx2_tiles(dtype)) { /* packed_avx2.c: panels of two 8-row halves */
        bool fl = dtype == S1C_F32 || dtype == S1C_BF16;
        /* one float row: 4 panels, 8 FMA chains (packed_avx2.c); BF16 batches 5 rows: 6 x 2
         * accumulators left its widening no registers (spills: 32 rows, one thread, 63 GFLOP/s;
         * 5 rows 119, 4 rows 112) */
        if (n_rows == 1) return (pk_shape){1, fl ? 4 : 1, 1 << 20, false};
        if (fl) return (pk_shape){dtype == S1C_BF16 ? 5 : 6, 1, 512, false};
        return (pk_shape){dtype == S1C_Q6_K ? 3 : 4, 1, 128, false};
    }
    if (dtype == S1C_F32) return (pk_shape){6, 4, 512, false};
    if (dtype == S1C_BF16) return (pk_shape){6, 4, 512, false};
    if (n_rows == 1) return (pk_shape){1, 1, 1 << 20, false};
    /* Q6_K keeps two integer accumulators per output (its two 16-element scales): 2 panels */
    if (dtype == S1C_Q6_K) return (pk_shape){4, 2, 128, false};
    return (pk_shape){4, 3, 128, false};
}

static inline int imin(int a, int b) { return a < b ? a : b; }
static size_t up64(size_t b) { return (b + 63) & ~(size_t)63; }

static bool family_packs(int dtype, bool bf16_dot) {
    kern_family_id f = kern_family();
    if (f == KERN_AVX2) return dtype == S1C_F32 || (dtype == S1C_BF16 && !bf16_dot) || kern_is_qmatmul_dtype(dtype);
    if (f != KERN_AVX512) return false;
    if (dtype == S1C_BF16) return !bf16_dot || kern_avx512bf16_supported();
    return dtype == S1C_F32 || kern_is_qmatmul_dtype(dtype); /* quantized without VNNI: avx2_tiles */
}

bool kern_packs_bf16_dot(void) { return family_packs(S1C_BF16, true); }

static void pack_f32(kern_packed *p, int p0, int p1) {
    const float *w = p->w;
    float *dst = (float *)p->data;
    for (int pn = p0; pn < p1; pn++)
        for (int r = 0; r < PANEL; r++) {
            int row = pn * PANEL + r;
            for (int k = 0; k < p->n; k++)
                dst[((size_t)pn * p->n + k) * PANEL + r] = row < p->d ? w[(size_t)row * p->n + k] : 0.0f;
        }
}

static void pack_bf16(kern_packed *p, int p0, int p1) {
    const uint16_t *w = p->w;
    uint16_t *dst = (uint16_t *)p->data;
    for (int pn = p0; pn < p1; pn++)
        for (int r = 0; r < PANEL; r++) {
            int row = pn * PANEL + r;
            for (int k = 0; k < 2 * p->steps; k++)
                dst[((size_t)pn * p->steps + k / 2) * 2 * PANEL + r * 2 + k % 2] =
                    row < p->d && k < p->n ? w[(size_t)row * p->n + k] : 0;
        }
}

static void pack_q(kern_packed *p, int p0, int p1) {
    bool q4 = p->dtype == S1C_Q4_0;
    int nb = p->steps, bbytes = q4 ? 18 : 34, groups = q4 ? 4 : 8;
    size_t row_bytes = (size_t)nb * bbytes;
    const uint8_t *w = p->w;
    memset(p->data + (size_t)p0 * p->pstride, 0, p->pstride * (size_t)(p1 - p0)); /* the lone last block's unused scale half */
    for (int pn = p0; pn < p1; pn++)
        for (int r = 0; r < PANEL; r++) {
            int row = pn * PANEL + r;
            uint8_t *panel = p->data + (size_t)pn * p->pstride;
            for (int b = 0; b < nb; b++) {
                const uint8_t *blk = row < p->d ? w + (size_t)row * row_bytes + (size_t)b * bbytes : NULL;
                if (row < p->d) memcpy(panel + q0_scales_at(q4, b) + 2 * (size_t)r, blk, 2); /* padding rows: scale 0 */
                uint8_t *dst = panel + q0_block_at(q4, b) + (size_t)r * 4;
                for (int j = 0; j < groups; j++)
                    for (int i = 0; i < 4; i++) {
                        /* a padding row: the byte of value 0 (its scale is 0 anyway) */
                        uint8_t v = row < p->d ? blk[2 + 4 * j + i] : (q4 ? 0x88 : 0);
                        dst[(size_t)j * 64 + i] = q4 ? v : (uint8_t)(v ^ 0x80);
                    }
            }
        }
}

/* Q4_1 / Q5_0 / Q5_1 into pair records: a row's block is its f16 d (and m), its fifth bits
 * regrouped as the bit-plane the tile shifts into place, and its 16 nibble bytes as they are.
 * Padding rows (and the odd last block's partner) stay zero. */
static void pack_q5x(kern_packed *p, int p0, int p1) {
    int dt = p->dtype, nb = p->steps;
    bool has_min = q5x_has_min(dt), bits = q5x_has_bits(dt);
    size_t bbytes = (size_t)s1c_dtype_type_size(dt), row_bytes = (size_t)nb * bbytes, qh_at = has_min ? 4 : 2;
    size_t qs_at = qh_at + (bits ? 4 : 0), pair = q5x_rec_bytes(dt, 2);
    memset(p->data + (size_t)p0 * p->pstride, 0, p->pstride * (size_t)(p1 - p0));
    for (int pn = p0; pn < p1; pn++)
        for (int r = 0; r < PANEL && pn * PANEL + r < p->d; r++) {
            const uint8_t *row = (const uint8_t *)p->w + (size_t)(pn * PANEL + r) * row_bytes;
            for (int b = 0; b < nb; b++) {
                const uint8_t *blk = row + (size_t)b * bbytes;
                uint8_t *rec = p->data + (size_t)pn * p->pstride + (size_t)(b / 2) * pair;
                int j = b % 2, c = b - j + 1 < nb ? 2 : 1;
                memcpy(rec + 32 * j + 2 * r, blk, 2);
                if (has_min) memcpy(rec + q5x_m_at(c, j) + 2 * r, blk + 2, 2);
                uint32_t qh = bits ? (uint32_t)blk[qh_at] | (uint32_t)blk[qh_at + 1] << 8 | (uint32_t)blk[qh_at + 2] << 16 | (uint32_t)blk[qh_at + 3] << 24 : 0;
                for (int z = 0; z < 4; z++)
                    for (int i = 0; i < 4; i++) {
                        int pos = 4 * r + i, k = 4 * z + i;
                        rec[q5x_values_at(dt, c, j) + 64 * (size_t)z + (size_t)pos] = blk[qs_at + (size_t)k];
                        if (bits) rec[q5x_bits_at(dt, c, j) + (size_t)pos] |= (uint8_t)(((qh >> k) & 1) << (2 * z) | ((qh >> (k + 16)) & 1) << (2 * z + 1));
                    }
            }
        }
}

/* One row's super-block of a K-quant, unpacked: the 256 values' unsigned codes (the low 4 bits
 * and, Q5_K/Q6_K, the high bits as stored), the per-32-block scale bytes (sc, m: Q4_K/Q5_K's 6-bit
 * scale and min; Q6_K's two int8 scales) and the f16 header words. */
typedef struct kq_unpacked {
    uint8_t q[256];
    uint8_t sc[8], m[8];
    uint16_t d, dmin;
} kq_unpacked;

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static void kq_unpack(kq_unpacked *u, const uint8_t *blk, int dtype) {
    if (dtype == S1C_Q6_K) {
        /* half h, group g (32 codes each): ql's low (g < 2) or high nibbles of 32 bytes, qh's
         * bits 2g, 2g+1; loops over l alone, which the compiler vectorizes (packing is load time) */
        const uint8_t *ql = blk, *qh = blk + 128;
        for (int h = 0; h < 2; h++)
            for (int g = 0; g < 4; g++) {
                const uint8_t *L = ql + 64 * h + 32 * (g & 1), *H = qh + 32 * h;
                uint8_t *q = u->q + 128 * h + 32 * g;
                for (int l = 0; l < 32; l++) q[l] = (uint8_t)(((g < 2 ? L[l] : L[l] >> 4) & 15) | ((H[l] >> (2 * g)) & 3) << 4);
            }
        for (int j = 0; j < 8; j++) u->sc[j] = blk[192 + 2 * j], u->m[j] = blk[192 + 2 * j + 1];
        u->d = le16(blk + 208);
        u->dmin = 0;
        return;
    }
    bool q5 = dtype == S1C_Q5_K;
    const uint8_t *qh = blk + 16, *qs = blk + (q5 ? 48 : 16);
    for (int j = 0; j < 8; j++) { /* block j: the low (even j) or high nibbles of a pair's 32 bytes */
        const uint8_t *Q = qs + 32 * (j / 2);
        uint8_t *q = u->q + 32 * j;
        for (int l = 0; l < 32; l++) q[l] = (uint8_t)(((Q[l] >> (4 * (j & 1))) & 15) | (q5 ? ((qh[l] >> j) & 1) << 4 : 0));
    }
    for (int j = 0; j < 8; j++) {
        int sc, m;
        s1c_q4k_scale_min(j, blk + 4, &sc, &m);
        u->sc[j] = (uint8_t)sc, u->m[j] = (uint8_t)m;
    }
    u->d = le16(blk);
    u->dmin = le16(blk + 2);
}

static size_t kq_bits_per_block(int dtype) { return dtype == S1C_Q4_K ? 0 : dtype == S1C_Q5_K ? KQ_BITS5 : KQ_BITS6; }
size_t kq_rec_bytes(int dtype) { return KQ_HDR + 4 * kq_pair_bytes(kq_bits_per_block(dtype)); }

/* Row r (< 16) of a panel's super-block record from its unpacked codes (zeros: a padding row). */
static void kq_put_row(uint8_t *rec, int dtype, int r, const kq_unpacked *u) {
    uint16_t *hdr = (uint16_t *)rec;
    hdr[r] = u->d;
    if (dtype != S1C_Q6_K) hdr[16 + r] = u->dmin;
    size_t nbits = kq_bits_per_block(dtype);
    for (int j = 0; j < 8; j++) {
        rec[kq_scales_at(j, nbits) + (size_t)r] = u->sc[j];
        rec[kq_scales_at(j, nbits) + 16 + (size_t)r] = u->m[j];
        uint8_t *vals = rec + kq_values_at(j, nbits), *bits = rec + kq_bits_at(j, nbits);
        const uint8_t *q = u->q + 32 * j;
        /* byte 4r + i of value vector zj: codes k = 4zj + i (low nibble) and k + 16 (high); each
         * written once (the bit-planes gather four vectors' bits, hence |=) */
        for (int zj = 0; zj < 4; zj++)
            for (int i = 0, pos = 4 * r; i < 4; i++, pos++) {
                int lo = q[4 * zj + i], hi = q[16 + 4 * zj + i];
                vals[64 * zj + pos] = (uint8_t)((lo & 15) | (hi & 15) << 4);
                if (dtype == S1C_Q5_K) bits[pos] |= (uint8_t)((lo >> 4 & 1) << (2 * zj) | (hi >> 4 & 1) << (2 * zj + 1));
                if (dtype == S1C_Q6_K)
                    bits[64 * (zj / 2) + pos] |= (uint8_t)((lo >> 4 & 3) << (4 * (zj % 2)) | (hi >> 4 & 3) << (4 * (zj % 2) + 2));
            }
    }
}

static void pack_kq(kern_packed *p, int p0, int p1) {
    int nsb = p->n / 256;
    size_t rec = kq_rec_bytes(p->dtype), row_bytes = (size_t)nsb * (size_t)s1c_dtype_type_size(p->dtype);
    memset(p->data + (size_t)p0 * p->pstride, 0, p->pstride * (size_t)(p1 - p0));
    kq_unpacked u;
    for (int pn = p0; pn < p1; pn++)
        for (int r = 0; r < PANEL && pn * PANEL + r < p->d; r++) {
            const uint8_t *row = (const uint8_t *)p->w + (size_t)(pn * PANEL + r) * row_bytes;
            for (int sb = 0; sb < nsb; sb++) {
                kq_unpack(&u, row + (size_t)sb * (size_t)s1c_dtype_type_size(p->dtype), p->dtype);
                kq_put_row(p->data + (size_t)pn * p->pstride + (size_t)sb * rec, p->dtype, r, &u);
            }
        }
}

/* Panels [p0, p1) of p from its row-major weights (each panel's bytes written by its own call). */
static void pack_panels(kern_packed *p, int p0, int p1) {
    if (p->dtype == S1C_F32) pack_f32(p, p0, p1);
    else if (p->dtype == S1C_BF16) pack_bf16(p, p0, p1);
    else if (kern_is_kquant_dtype(p->dtype)) pack_kq(p, p0, p1);
    else if (kern_is_q5x_dtype(p->dtype)) pack_q5x(p, p0, p1);
    else pack_q(p, p0, p1);
}

static void pack_task(void *ctx, int task, int n_tasks) {
    kern_packed *p = ctx;
    int per = (p->panels + n_tasks - 1) / n_tasks;
    if (task * per < p->panels) pack_panels(p, task * per, imin(p->panels, (task + 1) * per));
}

/* Packing is a model's load time (a 1.5B Q4_K_M: 3.4 s of 3.8 on one thread here): the panels
 * are independent, so the process-wide pool takes them (matrices under 1 MiB on the caller). */
static void pack_over_pool(kern_packed *p) {
    s1c_pool *pool = s1c_pool_global();
    int T = imin(s1c_pool_threads(pool), PK_MAX_TASKS);
    if (T > 1 && p->bytes >= (1u << 20)) s1c_pool_run(pool, T, pack_task, p);
    else pack_panels(p, 0, p->panels);
}

int kern_pack(kern_packed **out, const void *w, int dtype, int n, int d, int flags, s1c_err *err) {
    *out = NULL;
    bool dot = dtype == S1C_BF16 && (flags & KERN_PACK_BF16_DOT);
    if (!family_packs(dtype, dot) || n <= 0 || d <= 0) return 0;
    bool kq = kern_is_kquant_dtype(dtype), q5x = kern_is_q5x_dtype(dtype), q = kern_is_qmatmul_dtype(dtype) && !kq && !q5x;
    if (((q || q5x) && n % 32 != 0) || (kq && n % 256 != 0)) return 0;
    kern_packed *p = calloc(1, sizeof *p);
    if (!p) return s1c_fail(err, "packing weights: out of memory");
    p->w = w;
    p->dtype = dtype;
    p->bf16_dot = dot;
    p->n = n;
    p->d = d;
    p->panels = (d + PANEL - 1) / PANEL;
    p->steps = dtype == S1C_F32 ? n : dtype == S1C_BF16 ? (n + 1) / 2 : n / 32;
    p->pstride = kq    ? (size_t)(n / 256) * kq_rec_bytes(dtype)
                 : q5x ? up64((size_t)(p->steps / 2) * q5x_rec_bytes(dtype, 2) + (size_t)(p->steps % 2) * q5x_rec_bytes(dtype, 1))
                 : q   ? q0_panel_bytes(dtype == S1C_Q4_0, p->steps)
                       : (size_t)p->steps * 64;
    size_t data_bytes = p->pstride * (size_t)p->panels;
    void *data = s1c_alloc_huge(data_bytes); /* streamed once per token: huge pages */
    if (!data) {
        free(p);
        return s1c_fail(err, "packing a %d x %d weight matrix: out of memory (%zu bytes)", d, n, data_bytes);
    }
    p->data = data;
    p->bytes = data_bytes;
    pack_over_pool(p);
    *out = p;
    return 0;
}

void kern_packed_free(kern_packed *p) {
    if (!p) return;
    free(p->data);
    free(p);
}

size_t kern_packed_bytes(const kern_packed *p) { return p ? p->bytes : 0; }

/* The activations in the form the tiles read: as they are (F32, BF16 widened), bf16 pairs, or
 * quantized; converted buffers live in the caller's workspace (or a temporary one). */
typedef struct pk_prep {
    const float *x;
    uint32_t *xb;
    kern_q8x xq;
    kern_ws own; /* used when the caller gave no workspace */
} pk_prep;

void kern_ws_free(kern_ws *ws) {
    free(ws->buf);
    ws->buf = NULL;
    ws->cap = 0;
}

/* A workspace of at least `bytes` (64-byte aligned; contents not kept). */
static void *ws_get(kern_ws *ws, size_t bytes) {
    if (ws->cap < bytes) {
        free(ws->buf);
        ws->buf = NULL;
        ws->cap = 0;
        if (posix_memalign(&ws->buf, 64, bytes) != 0) {
            fprintf(stderr, "s1c: out of memory for %zu bytes of converted activations\n", bytes);
            abort();
        }
        ws->cap = bytes;
    }
    return ws->buf;
}

/* Converting the activations of a batch is a few percent of its matmul (more for the wide down
 * projection: rows x 4864 values against 896 outputs) and the other threads would wait through
 * it: large ones are split over the pool (rows for bf16 pairs, 32-blocks for int8; each part is
 * independent, so the split changes no bit). */
typedef struct prep_job {
    pk_prep *xp;
    const kern_packed *p;
    int n_rows;
    const struct pk_job *mm; /* the matmul to come, whose first slices are asked for meanwhile */
} prep_job;

static void prefetch_first_slice(const struct pk_job *j, int task);

static void prep_task(void *ctx, int task, int n_tasks) {
    const prep_job *j = ctx;
    if (j->mm) prefetch_first_slice(j->mm, task);
    if (j->xp->xb) {
        int per = (j->n_rows + n_tasks - 1) / n_tasks;
        pk_bf16_pairs(j->xp->xb, j->xp->x, j->p->n, j->p->steps, imin(j->n_rows, task * per), imin(j->n_rows, (task + 1) * per));
        return;
    }
    size_t nb = (size_t)j->n_rows * (size_t)(j->p->n / 32), per = (nb + (size_t)n_tasks - 1) / (size_t)n_tasks;
    size_t b0 = (size_t)task * per, b1 = b0 + per < nb ? b0 + per : nb;
    if (b0 < b1) kern_q8x_fill_blocks(&j->xp->xq, j->xp->x, b0, b1);
}

static void prep_make(pk_prep *xp, s1c_pool *pool, const kern_packed *p, const float *x, int n_rows, kern_ws *ws,
                      const struct pk_job *mm) {
    memset(xp, 0, sizeof *xp);
    xp->x = x;
    if (!ws) ws = &xp->own;
    if (p->dtype == S1C_BF16 && p->bf16_dot) {
        xp->xb = ws_get(ws, (size_t)n_rows * (size_t)p->steps * sizeof(uint32_t));
    } else if (kern_is_qmatmul_dtype(p->dtype)) {
        size_t nb = (size_t)n_rows * (size_t)(p->n / 32), qb = up64((size_t)n_rows * p->n + 64), sb = up64(nb * 4 + 4);
        uint8_t *b = ws_get(ws, qb + 4 * sb);
        xp->xq = (kern_q8x){(int8_t *)b, (float *)(b + qb), (int32_t *)(b + qb + sb), (int32_t *)(b + qb + 2 * sb),
                            (float *)(b + qb + 3 * sb), p->n};
    } else {
        return; /* F32 and exactly widened BF16 read x as it is */
    }
    prep_job j = {xp, p, n_rows, mm};
    int T = imin(s1c_pool_threads(pool), PK_MAX_TASKS);
    /* below ~16K values (about 4 us) a thread's wake-up costs more than it saves */
    if (T > 1 && (size_t)n_rows * (size_t)p->n >= 16384) {
        s1c_pool_run(pool, T, prep_task, &j);
    } else {
        j.mm = NULL; /* on the caller alone (decode): nothing to overlap the prefetch with */
        prep_task(&j, 0, 1);
    }
}

static void prep_free(pk_prep *xp) { kern_ws_free(&xp->own); }

/* The weights of the slice of panel group pg from step k0, as lines [0, total) of its panels
 * read in lockstep (nothing past the last panel). A panel's bytes per step are about pstride /
 * steps (near enough for a K-quant's records). */
static pk_pf slice_at(const kern_packed *p, pk_shape s, int pg, int k0) {
    pk_pf f = {0};
    int nv = imin(s.nv, p->panels - pg), k1 = imin(p->steps, k0 + s.kc);
    if (nv <= 0) return f;
    size_t per_step = p->pstride / (size_t)p->steps, from = (size_t)k0 * per_step & ~(size_t)63;
    size_t lines = ((size_t)k1 * per_step - from + 63) / 64;
    f.base = p->data + (size_t)pg * p->pstride + from;
    f.stride = p->pstride;
    f.n = nv;
    f.hi = lines * (size_t)nv;
    return f;
}

/* The panel group a thread reads after group pg of a matrix: group pg + dpg of p (the next group
 * of the same matrix, or in a gated pair (kern_matmul_packed_glu) the up matrix's group pg after
 * the gate's, the gate's next group after the up's). */
typedef struct pk_follow {
    const kern_packed *p;
    int dpg;
} pk_follow;

/* The slice after (panel group pg, steps up to k1): the rest of this group's k, else the first
 * slice of the group that follows. Each pass over a slice that is read more than once (the
 * quantized tiles' row groups) prefetches a share of it (pass_share): its first pass otherwise
 * waits on memory at ~3x the time of the others. */
static pk_pf next_slice(const kern_packed *p, pk_shape s, int pg, int k1, pk_follow fw) {
    return k1 >= p->steps ? slice_at(fw.p, s, pg + fw.dpg, 0) : slice_at(p, s, pg, k1);
}

/* The tile shape for n_rows rows of p, its k slices of equal length (152 blocks: 76 + 76, not
 * 128 + 24), so a slice's passes have as many steps to prefetch the next one in as it has lines
 * (next_slice). */
static pk_shape shape_for(const kern_packed *p, int n_rows) {
    pk_shape s = shape_of(p, n_rows);
    int slices = (p->steps + s.kc - 1) / s.kc;
    s.kc = (p->steps + slices - 1) / slices;
    if (s.amx && p->dtype == S1C_BF16) s.kc = (s.kc + 15) & ~15; /* whole tile steps but in the last slice */
    return s;
}

/* Pass g of G's share of the next slice, spread over this slice's steps. */
static pk_pf pass_share(pk_pf next, int g, int G, int steps) {
    size_t total = next.hi;
    next.lo = total * (size_t)g / (size_t)G;
    next.hi = total * (size_t)(g + 1) / (size_t)G;
    next.per_block = (int)((next.hi - next.lo + (size_t)steps - 1) / (size_t)steps);
    return next;
}

/* Output panels [pa, pb) for all n_rows rows; fw.p NULL: the groups follow one another. */
static void run_panels(const kern_packed *p, const pk_prep *xp, float *out, int n_rows, int pa, int pb, pk_follow fw) {
    pk_shape s = shape_for(p, n_rows);
    if (!fw.p) fw = (pk_follow){p, s.nv};
    bool kq = kern_is_kquant_dtype(p->dtype), q5x = kern_is_q5x_dtype(p->dtype), q = kern_is_qmatmul_dtype(p->dtype) && !kq && !q5x;
    int ldx = p->bf16_dot ? p->steps : p->n, nb = p->n / 32;
    bool avx2 = avx2_tiles(p->dtype);
    _Alignas(64) int8_t bs[2 * PK_AMX_Q_KC * 512]; /* the int8 tiles' signed slice (pk_amx_q_blocks) */
    for (int pg = pa; pg < pb; pg += s.nv) {
        int nv = imin(s.nv, pb - pg);
        pk_tile t = {.pw = p->data + (size_t)pg * p->pstride, .pstride = p->pstride, .ldx = ldx, .ldo = p->d,
                     .cols = imin(nv * PANEL, p->d - pg * PANEL), .n = p->n};
        for (t.k0 = 0; t.k0 < p->steps; t.k0 += s.kc) {
            t.k1 = imin(p->steps, t.k0 + s.kc);
            int G = (n_rows + s.mr - 1) / s.mr; /* passes over the slice */
            /* (the int8 tiles read the slice once to make it signed: even one pass prefetches) */
            pk_pf next = (G > 1 || s.amx) && (q || kq || q5x) ? next_slice(p, s, pg, t.k1, fw) : (pk_pf){0};
            if (s.amx && q) pk_amx_q_blocks(bs, &t, nv, p->dtype == S1C_Q4_0);
            for (int r = 0; r < n_rows; r += s.mr) {
                int mr = imin(s.mr, n_rows - r);
                t.pf = next.hi > 0 ? pass_share(next, r / s.mr, G, t.k1 - t.k0) : (pk_pf){0};
                t.out = out + (size_t)r * p->d + (size_t)pg * PANEL;
                if (s.amx && q) {
                    t.xq = xp->xq.q + (size_t)r * ldx;
                    t.xd = xp->xq.d + (size_t)r * nb;
                    pk_amx_tile_q(&t, bs, mr, nv, p->dtype == S1C_Q4_0);
                } else if (s.amx) {
                    t.xb = xp->xb + (size_t)r * ldx;
                    pk_amx_tile_bf16(&t, mr, nv);
                } else if (avx2 && (p->dtype == S1C_F32 || p->dtype == S1C_BF16)) {
                    t.x = xp->x + (size_t)r * ldx;
                    pk_avx2_tile(&t, p->dtype, mr, nv);
                } else if (p->dtype == S1C_F32) {
                    t.x = xp->x + (size_t)r * ldx;
                    pk_tile_f32(&t, mr, nv);
                } else if (p->dtype == S1C_BF16 && !p->bf16_dot) {
                    t.x = xp->x + (size_t)r * ldx;
                    pk_tile_bf16w(&t, mr, nv);
                } else if (p->dtype == S1C_BF16) {
                    t.xb = xp->xb + (size_t)r * ldx;
                    pk_tile_bf16(&t, mr, nv);
                } else {
                    t.xq = xp->xq.q + (size_t)r * ldx;
                    t.xd = xp->xq.d + (size_t)r * nb;
                    t.xs = xp->xq.s + (size_t)r * nb;
                    t.xh = xp->xq.h + (size_t)r * nb;
                    t.xm = xp->xq.m + (size_t)r * nb;
                    if (avx2) pk_avx2_tile(&t, p->dtype, mr, nv);
                    else if (kq) pk_tile_kq(&t, p->dtype, mr, nv);
                    else if (q5x) pk_tile_q5x(&t, p->dtype, mr, nv);
                    else pk_tile_q(&t, p->dtype, mr, nv);
                }
            }
        }
    }
}

/* Task t's share of the units, [next, end), claimed a chunk at a time (less near its end: claim)
 * from the front by its owner and, once their own share is done, by the other tasks: a thread
 * that was descheduled (a 2-core VM shared with other work) or whose memory was slower no longer
 * holds everyone up at the end of the matmul, and the owner still reads its share front to back.
 * Which thread computes a unit changes no bit of it. */
typedef struct pk_range {
    _Alignas(64) atomic_int next;
    int end;
} pk_range;

typedef struct pk_job {
    int n_mats;
    const kern_packed *const *p;
    float *const *out;
    const pk_prep *xp;
    int n_rows, units; /* units: panel groups of all the matrices together (glu: of one) */
    int chunk;         /* units claimed at a time */
    bool glu;          /* p[0], p[1]: gate and up, out[0] = silu(gate x) * up x (kern_matmul_packed_glu) */
    pk_range range[PK_MAX_TASKS];
} pk_job;

/* The thread split's units: the panel groups one tile takes (single panels for quantized decode,
 * so the split is even to a panel). */
static int groups_of(const kern_packed *p, int n_rows) {
    int nv = shape_of(p, n_rows).nv;
    return (p->panels + nv - 1) / nv;
}

/* Gate and up group u, then out[0] = silu(out[0]) * out[1] on the group's columns while both
 * are in the caches (element-wise: the same bits as one pass over the whole output). */
static void run_glu_unit(const pk_job *j, int u) {
    const kern_packed *g = j->p[0], *up = j->p[1];
    int nv = shape_of(g, j->n_rows).nv, pa = u * nv, pb = imin(g->panels, pa + nv);
    run_panels(g, j->xp, j->out[0], j->n_rows, pa, pb, (pk_follow){up, 0});
    run_panels(up, j->xp, j->out[1], j->n_rows, pa, pb, (pk_follow){g, nv});
    int c0 = pa * PANEL, cols = imin(pb * PANEL, g->d) - c0;
    for (int r = 0; r < j->n_rows; r++) {
        float *gr = j->out[0] + (size_t)r * g->d + c0;
        vmath_swiglu(gr, gr, j->out[1] + (size_t)r * g->d + c0, cols);
    }
}

/* Units [a, b), counted across the matrices in order. */
static void run_units(const pk_job *j, int a, int b) {
    if (j->glu) {
        for (int u = a; u < b; u++) run_glu_unit(j, u);
        return;
    }
    for (int i = 0, base = 0; i < j->n_mats && a < b; base += groups_of(j->p[i], j->n_rows), i++) {
        int g = groups_of(j->p[i], j->n_rows), lo = a - base, hi = imin(b - base, g);
        if (lo >= g || hi <= 0) continue;
        if (lo < 0) lo = 0;
        int nv = shape_of(j->p[i], j->n_rows).nv;
        run_panels(j->p[i], j->xp, j->out[i], j->n_rows, lo * nv, imin(j->p[i]->panels, hi * nv), (pk_follow){0});
    }
}

/* The next claim of range r: a chunk, but near the range's end a share of what is left (down to
 * one unit), so that the tasks that end up sharing it finish together instead of one waiting
 * out the other's last chunk (decode's chunk is 9 panels, ~3.5 us at ~40 GB/s a thread). Q8_0
 * 0.5B decode, 2 threads, timed in place: the two tasks' ends 2.9-3.8 us apart on average per
 * matmul before, 1.1-1.4 after; a 4864-wide gate/up call 138-140 -> 135-136 us. Returns the
 * first unit, *b the end; a >= r->end: nothing left. */
static int claim(pk_range *r, int chunk, int n_tasks, int *b) {
    int a = atomic_load_explicit(&r->next, memory_order_relaxed), n;
    do {
        if (a >= r->end) return a;
        n = (r->end - a) / (2 * n_tasks);
        n = n < 1 ? 1 : n > chunk ? chunk : n;
    } while (!atomic_compare_exchange_weak_explicit(&r->next, &a, a + n, memory_order_relaxed, memory_order_relaxed));
    *b = a + n;
    return a;
}

/* Task t of T: its own share first, then what is left of the others' (pk_range). */
static void pk_task(void *ctx, int task, int n_tasks) {
    pk_job *j = ctx;
    for (int k = 0; k < n_tasks; k++) {
        pk_range *r = &j->range[(task + k) % n_tasks];
        for (int a, b; (a = claim(r, j->chunk, n_tasks, &b)) < r->end;) run_units(j, a, b);
    }
    pk_amx_release();
}

/* Shares of the units for T tasks, and the chunk: about 128 KiB of weights (long enough for the
 * prefetchers, short enough to even out the end), at most a quarter of a share. */
static void pk_split(pk_job *j, int T) {
    int per = (j->units + T - 1) / T;
    for (int t = 0; t < T; t++) {
        atomic_init(&j->range[t].next, imin(j->units, t * per));
        j->range[t].end = imin(j->units, (t + 1) * per);
    }
    const kern_packed *p = j->p[0];
    size_t unit_bytes = p->pstride * (size_t)shape_of(p, j->n_rows).nv * (j->glu ? 2 : 1);
    int by_bytes = (int)((128u << 10) / unit_bytes) + 1;
    j->chunk = imin(by_bytes, (per + 3) / 4);
    if (j->chunk < 1) j->chunk = 1;
}

/* Task t's first slice of weights (the first panel group of its share), asked for into L2
 * while it prepares its part of the activations (prep_task): every other slice is asked for
 * during the one before it (next_slice), the first waited on memory. bench_packed packed_cold,
 * Q8_0, 32 rows, 2 threads, medians of 6 interleaved rounds: 896 x 1152 (qkv) 1009 -> 1122
 * GOP/s, 896 x 896 939 -> 1015, 4864 x 896 1049 -> 1075, 896 x 4864 1201 -> 1296. */
static void prefetch_first_slice(const pk_job *j, int task) {
    if (task >= PK_MAX_TASKS) return;
    int a = atomic_load_explicit(&j->range[task].next, memory_order_relaxed);
    if (a >= j->range[task].end) return;
    /* a gated pair's unit a starts with the gate's group a */
    for (int i = 0, base = 0; i < j->n_mats; base += groups_of(j->p[i], j->n_rows), i++) {
        if (a - base >= groups_of(j->p[i], j->n_rows) && !j->glu) continue;
        pk_shape s = shape_for(j->p[i], j->n_rows);
        pk_pf f = slice_at(j->p[i], s, (a - base) * s.nv, 0);
        for (size_t l = 0; f.n > 0 && l < f.hi / (size_t)f.n; l++)
            for (int u = 0; u < f.n; u++) __builtin_prefetch(f.base + (size_t)u * f.stride + 64 * l, 0, 2);
        return;
    }
}

/* Job j (its matrices, outputs, rows and units set) over the pool, the activations prepared
 * once for all its matrices. */
static void run_job(s1c_pool *pool, pk_job *j, const float *x, kern_ws *ws) {
    pk_prep xp;
    j->xp = &xp;
    double work = 0;
    for (int i = 0; i < j->n_mats; i++) work += (double)j->n_rows * j->p[i]->n * j->p[i]->d;
    int T = imin(s1c_pool_threads(pool), PK_MAX_TASKS);
    /* below ~64K multiply-adds waking a thread costs more than it saves */
    if (T <= 1 || work < 65536.0 || j->units < 2) T = 1;
    pk_split(j, T);
    prep_make(&xp, pool, j->p[0], x, j->n_rows, ws, T > 1 ? j : NULL);
    if (T == 1) pk_task(j, 0, 1);
    else s1c_pool_run(pool, T, pk_task, j);
    prep_free(&xp);
    j->xp = NULL;
}

void kern_matmul_packed_n(s1c_pool *pool, int n_mats, float *const *out, const float *x, int n_rows, const kern_packed *const *p,
                          kern_ws *ws) {
    if (n_rows <= 0 || n_mats <= 0) return;
    /* one activation preparation for all: the same type, or quantized types of any kind (one
     * kern_q8x serves them all: Q4_K_M's v and half its down matrices are Q6_K) */
    bool same = true, q0 = kern_is_qmatmul_dtype(p[0]->dtype);
    for (int i = 1; i < n_mats; i++)
        same = same && p[i]->n == p[0]->n && p[i]->bf16_dot == p[0]->bf16_dot &&
               (p[i]->dtype == p[0]->dtype || (q0 && kern_is_qmatmul_dtype(p[i]->dtype)));
    for (int i = 0; i < n_mats; i++) same = same && family_packs(p[i]->dtype, p[i]->bf16_dot);
    if (!same) {
        for (int i = 0; i < n_mats; i++) kern_matmul_packed(pool, out[i], x, n_rows, p[i], ws);
        return;
    }
    pk_job j = {.n_mats = n_mats, .p = p, .out = out, .n_rows = n_rows};
    for (int i = 0; i < n_mats; i++) j.units += groups_of(p[i], n_rows);
    run_job(pool, &j, x, ws);
}

/* The SwiGLU's element-wise step over the pool (the split changes no bit; serial it was ~1% of
 * a 32-row step, with the other thread waiting). */
typedef struct glu_job {
    float *a;
    const float *b;
    size_t n;
} glu_job;

static void glu_task(void *ctx, int task, int n_tasks) {
    const glu_job *j = ctx;
    size_t per = (j->n / (size_t)n_tasks + 15) & ~(size_t)15, a = per * (size_t)task, b = a + per < j->n ? a + per : j->n;
    if (a < b) kern_swiglu(j->a + a, j->b + a, (int)(b - a));
}

void kern_swiglu_mt(s1c_pool *pool, float *a, const float *b, size_t n) {
    int T = imin(s1c_pool_threads(pool), PK_MAX_TASKS);
    glu_job j = {a, b, n};
    if (T <= 1 || n < 16384) glu_task(&j, 0, 1);
    else s1c_pool_run(pool, T, glu_task, &j);
}

/* Fused where a batch's tiles make it pay: a thread takes a panel group of the gate and the same
 * group of the up matrix and applies the SwiGLU to their outputs while they are in its caches
 * (run_glu_unit), instead of a pass over both [n_rows][d] outputs from memory afterwards (a
 * 512-row prefill's are 10 MB each a layer). Decode stays unfused: its units are single panels,
 * and alternating between the two matrices would read two streams instead of one, for a
 * SwiGLU of d values. */
void kern_matmul_packed_glu(s1c_pool *pool, float *gate_out, float *up_out, const float *x, int n_rows, const kern_packed *gate,
                            const kern_packed *up, kern_ws *ws) {
    if (n_rows <= 0) return;
    const kern_packed *p[2] = {gate, up};
    float *out[2] = {gate_out, up_out};
    bool pairs = family_packs(gate->dtype, gate->bf16_dot) && n_rows > 1 && gate->dtype == up->dtype && gate->n == up->n &&
                 gate->d == up->d && gate->bf16_dot == up->bf16_dot;
    if (!pairs) {
        kern_matmul_packed_n(pool, 2, out, x, n_rows, p, ws);
        kern_swiglu_mt(pool, gate_out, up_out, (size_t)n_rows * (size_t)gate->d);
        return;
    }
    pk_job j = {.n_mats = 2, .p = p, .out = out, .n_rows = n_rows, .units = groups_of(gate, n_rows), .glu = true};
    run_job(pool, &j, x, ws);
}

void kern_matmul_packed(s1c_pool *pool, float *out, const float *x, int n_rows, const kern_packed *p, kern_ws *ws) {
    if (n_rows <= 0) return;
    if (!family_packs(p->dtype, p->bf16_dot)) { /* packed by another family (tests switch them) */
        kern_matmul_mt(pool, out, x, n_rows, p->w, p->dtype, p->n, p->d);
        return;
    }
    kern_matmul_packed_n(pool, 1, &out, x, n_rows, &p, ws);
}
