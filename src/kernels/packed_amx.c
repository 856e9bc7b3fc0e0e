/* The AMX tile for the packed BF16 kernel (Intel Sapphire Rapids and later: TMUL's 16 x 16
 * matrix products on eight 1 KiB tile registers). The BF16 panel layout (packed.c) is already
 * AMX's: a panel's k-pair rows, [16 rows][2] bf16 each, are a B tile's rows, 16 pairs (1 KiB) a
 * tile; the bf16 activation pairs are the A tiles, loaded with their row stride.
 *
 * One call computes up to 32 activation rows x 2 panels as four 16 x 16 C tiles (tile 2g + v:
 * rows 16g.., panel v) from two A tiles and two B tiles per step, each operand used twice. C
 * accumulates in f32 over the call's k range, 16 pairs a step (tdpbf16ps); a range whose length
 * is not a multiple of 16 ends with the AVX-512 bf16 tile on the stored partial sums. The
 * products are the bf16 ones of vdpbf16ps, summed in another order (and with denormals flushed),
 * so the results differ from the AVX-512 tile's by rounding; packed.c takes this tile for every
 * row count, so a row's result is the same alone or in any batch. Tiles are configured per
 * thread (LDTILECFG) when a call's shape differs from the thread's last one. */
#include "kern_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && (defined(__clang__) ? __clang_major__ >= 12 : __GNUC__ >= 11)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")))
#define TXI __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))

/* Linux's opt-in for the tile data state (arch/x86/include/uapi/asm/prctl.h): a process must ask
 * before its first tile instruction, or that instruction faults. */
enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };

static bool amx_hw, amx_int8_hw, amx_default;
static _Atomic bool amx_on;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

/* CPUID leaf 7: AMX-BF16 (EDX bit 22), AMX-TILE (24) and AMX-INT8 (25, for the Q4_0 tile); the OS saves the tile state (XCR0 bits
 * 17, 18) and lets this process use it (arch_prctl); AVX512_BF16 for the k tails' tile. S1C_AMX=0
 * leaves it off. */
static void read_amx(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22)) || !(d & (1u << 24))) return;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return; /* OSXSAVE: xgetbv allowed */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) return;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return;
    amx_hw = kern_avx512bf16_supported();
    amx_int8_hw = amx_hw && (d & (1u << 25)) && kern_avx512vnni_supported();
    const char *e = getenv("S1C_AMX");
    amx_default = amx_hw && !(e && strcmp(e, "0") == 0);
    amx_on = amx_default;
}

bool pk_amx(int mode) {
    pthread_once(&amx_once, read_amx);
    atomic_store(&amx_on, mode < 0 ? amx_default : mode > 0 && amx_hw);
    return amx_on;
}

bool pk_amx_on(void) {
    pthread_once(&amx_once, read_amx);
    return atomic_load_explicit(&amx_on, memory_order_relaxed);
}

bool pk_amx_int8_on(void) { return pk_amx_on() && amx_int8_hw; }

/* The tile configuration (palette 1) of a call: tiles 0-3 C[g][v] (tile 2g + v: rows[g] x cols[v]
 * f32), 4-5 A[g] (rows[g] activation rows x 16 k-pairs), 6-7 B[v] (16 k-pairs x cols[v] outputs);
 * rows[g]: activation rows in row group g, cols[v]: outputs of panel v (0: unused). */
typedef struct tile_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_cfg;

static _Thread_local tile_cfg cur_cfg;

/* Loads c unless it is the thread's configuration already. */
TX static void load_cfg(const tile_cfg *c) {
    if (memcmp(c, &cur_cfg, sizeof *c) != 0) {
        _tile_loadconfig(c);
        cur_cfg = *c;
    }
}

TX static void configure(const int rows[2], const int cols[2]) {
    tile_cfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int g = 0; g < 2; g++) {
        if (rows[g]) c.rows[4 + g] = (uint8_t)rows[g], c.colsb[4 + g] = 64;
        for (int v = 0; v < 2; v++)
            if (rows[g] && cols[v]) c.rows[2 * g + v] = (uint8_t)rows[g], c.colsb[2 * g + v] = (uint16_t)(4 * cols[v]);
    }
    for (int v = 0; v < 2; v++)
        if (cols[v]) c.rows[6 + v] = 16, c.colsb[6 + v] = (uint16_t)(4 * cols[v]);
    load_cfg(&c);
}

TX void pk_amx_config(const uint8_t rows[8], const uint16_t colsb[8]) {
    tile_cfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 8; i++) c.rows[i] = rows[i], c.colsb[i] = colsb[i];
    load_cfg(&c);
}

TX void pk_amx_release(void) {
    if (!cur_cfg.palette) return;
    _tile_release();
    memset(&cur_cfg, 0, sizeof cur_cfg);
}

/* The call's row groups and panels: rows[g], cols[v] as configure takes them. */
static void tile_shape(const pk_tile *t, int mr, int nv, int rows[2], int cols[2]) {
    rows[0] = mr < 16 ? mr : 16;
    rows[1] = mr - rows[0];
    cols[0] = t->cols < 16 ? t->cols : 16;
    cols[1] = nv > 1 ? t->cols - 16 : 0;
}

/* Tile numbers are spelled into the instructions (GCC's intrinsics paste them as text): OP(C
 * tile, its A tile, its B tile, row group, panel) for each C tile in use. */
#define FOR_C(rows, cols, OP)                                          \
    do {                                                               \
        if ((rows)[0] && (cols)[0]) OP(0, 4, 6, 0, 0);                 \
        if ((rows)[0] && (cols)[1]) OP(1, 4, 7, 0, 1);                 \
        if ((rows)[1] && (cols)[0]) OP(2, 5, 6, 1, 0);                 \
        if ((rows)[1] && (cols)[1]) OP(3, 5, 7, 1, 1);                 \
    } while (0)

/* A tile load waits for all 16 of its lines, and a slice's first row pass streams the weights
 * from memory: each step asks for its panels' lines AMX_AHEAD bytes on, at every row count.
 * bench_packed packed_cold, one row, 2 threads (noisy; interleaved with the AVX-512 tile): with
 * no prefetch the AMX tile was ~1.3x slower; 16 KiB ahead ~1.2x, 8 KiB 0.95-1.15x, 4 KiB 0.9-1.1x;
 * whole model (s1c bench --types bf16 --only decode, 4 rounds) 31.3-32.4 tok/s against the AVX-512
 * tile's 29.7-33.1. Batches asked for nothing until session 18 (decode's one or two rows only):
 * asking at every row count, s1c bench --only batch8,batch32,prefill, 3 interleaved rounds,
 * batch32 281-311 -> 337-382 tok/s, batch8 124-139 -> 145-161, prefill (its later passes read
 * the slice from L2) 349-369 -> 346-365; 8 KiB ahead no different from 4 for batches. */
enum { AMX_AHEAD = 4096 };

TX void pk_amx_tile_bf16(const pk_tile *t, int mr, int nv) {
    int rows[2], cols[2];
    tile_shape(t, mr, nv, rows, cols);
    int kmain = t->k0 + (t->k1 - t->k0) / 16 * 16;
    size_t ldo = (size_t)t->ldo * sizeof(float), ldx = (size_t)t->ldx * sizeof(uint32_t);
    if (kmain > t->k0) {
        configure(rows, cols);
        float *o = t->out;
#define C_START(T, A, B, G, V)                                                       \
    do {                                                                       \
        if (t->k0 > 0) _tile_loadd(T, o + (size_t)(G) * 16 * t->ldo + 16 * (V), ldo); \
        else _tile_zero(T);                                                    \
    } while (0)
        FOR_C(rows, cols, C_START);
        const uint32_t *xa = t->xb, *xb1 = rows[1] ? t->xb + (size_t)16 * t->ldx : t->xb;
        const uint8_t *w0 = t->pw, *w1 = cols[1] ? t->pw + t->pstride : t->pw;
        for (int k = t->k0; k < kmain; k += 16) {
            prefetch_ahead(w0 + (size_t)k * 64, 1024, AMX_AHEAD); /* each panel's 1 KiB of this step */
            if (cols[1]) prefetch_ahead(w1 + (size_t)k * 64, 1024, AMX_AHEAD);
            _tile_loadd(4, xa + k, ldx);
            if (rows[1]) _tile_loadd(5, xb1 + k, ldx);
            _tile_loadd(6, w0 + (size_t)k * 64, 64);
            if (cols[1]) _tile_loadd(7, w1 + (size_t)k * 64, 64);
#define C_DOT(T, A, B, G, V) _tile_dpbf16ps(T, A, B)
            FOR_C(rows, cols, C_DOT);
        }
#define C_STORE(T, A, B, G, V) _tile_stored(T, o + (size_t)(G) * 16 * t->ldo + 16 * (V), ldo)
        FOR_C(rows, cols, C_STORE);
    }
    if (kmain == t->k1) return;
    /* the last pairs (fewer than 16) on the AVX-512 tile, from the stored sums, 6 rows at a time */
    for (int r = 0; r < mr; r += 6) {
        pk_tile u = *t;
        u.k0 = kmain;
        u.xb = t->xb + (size_t)r * t->ldx;
        u.out = t->out + (size_t)r * t->ldo;
        pk_tile_bf16(&u, mr - r < 6 ? mr - r : 6, nv);
    }
}

/* The Q4_0 and Q8_0 tile (AMX-INT8). A block of a panel holds [8 k-quads][16 outputs][4 k] bytes
 * (Q8_0: the values plus 128, for vpdpbusd) or [4 k-quads][16][4] nibble pairs (Q4_0, packed.c:
 * quad j's low nibbles are k 4j.., its high ones k 16 + 4j..); pk_amx_q_blocks spreads a slice of
 * them once, for all the slice's row passes, into B tiles' shape, [8 k-quads][16][4] signed
 * bytes (the values: Q8_0's bytes xor 0x80, Q4_0's nibbles less 8). Per block one tdpbssd gives
 * the 16 x 16 exact integer dots of a row group and a panel, which go through memory (there is
 * no tile-to-register move) to pk_tile_q's f32 steps: acc = fma(isum, ws * xd, acc). The
 * integers are pk_tile_q's (its bias correction gives the same signed sums), and so are the
 * float steps, in the same order: the same bits as the AVX-512 tile at every row count, so
 * packed.c takes this tile only where it is faster. The accumulators of one row group and panel
 * stay in registers across the blocks; C takes tiles 0-3 in turn (A 4/5, B 6/7) so that the
 * products of the next two blocks run while one block is scaled.
 * Q8_0, left on vpdpbusd in session 17 (whole-model prefill 0.91x in 5 rounds), is taken since
 * the A lines are asked for ahead (a_ahead): in cache (s17's amx_q4_microbench.c, 2 threads,
 * interleaved medians) 1.12-1.34x vpdpbusd at 128 and 512 rows, as Q4_0's 1.15-1.39x; whole-model
 * prefill, 17 interleaved rounds with the machine's AMX at half speed: median ratio 1.04 (0.89 to
 * 1.33), bench/results/2026-11-28-s18. */
TXI static void q4_slice(int8_t *bs, const pk_tile *t, int nv) {
    const int nblk = t->k1 - t->k0;
    const __m512i low4 = _mm512_set1_epi8(0x0f), eight = _mm512_set1_epi8(8);
    for (int v = 0; v < nv; v++)
        for (int b = t->k0; b < t->k1; b++) {
            const uint8_t *wb = t->pw + (size_t)v * t->pstride + q0_block_at(true, b);
            int8_t *o = bs + ((size_t)v * nblk + (size_t)(b - t->k0)) * 512;
            for (int j = 0; j < 4; j++) {
                __m512i raw = _mm512_loadu_si512(wb + 64 * j);
                _mm512_store_si512(o + 64 * j, _mm512_sub_epi8(_mm512_and_si512(raw, low4), eight));
                _mm512_store_si512(o + 64 * (4 + j), _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(raw, 4), low4), eight));
            }
        }
}

TXI static void q8_slice(int8_t *bs, const pk_tile *t, int nv) {
    const int nblk = t->k1 - t->k0;
    const __m512i sign = _mm512_set1_epi8((char)0x80);
    for (int v = 0; v < nv; v++)
        for (int b = t->k0; b < t->k1; b++) {
            const uint8_t *wb = t->pw + (size_t)v * t->pstride + q0_block_at(false, b);
            int8_t *o = bs + ((size_t)v * nblk + (size_t)(b - t->k0)) * 512;
            for (int j = 0; j < 8; j++) _mm512_store_si512(o + 64 * j, _mm512_xor_si512(_mm512_loadu_si512(wb + 64 * j), sign));
        }
}

TXI void pk_amx_q_blocks(int8_t *bs, const pk_tile *t, int nv, bool q4) {
    if (q4) q4_slice(bs, t, nv);
    else q8_slice(bs, t, nv);
}

/* Tiles 0-3 C (rows x 16 int32), 4-5 A (rows x 32 int8: one block's k), 6-7 B (8 k-quads x 64). */
TXI static void configure_q(int rows) {
    tile_cfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int u = 0; u < 4; u++) c.rows[u] = (uint8_t)rows, c.colsb[u] = 64;
    for (int u = 0; u < 2; u++) {
        c.rows[4 + u] = (uint8_t)rows, c.colsb[4 + u] = 32;
        c.rows[6 + u] = 8, c.colsb[6 + u] = 64;
    }
    load_cfg(&c);
}

/* acc[r] += isum[r] * (ws * xd[r]) for the rows < rg of block B. */
#define Q_SCALE(CB, B)                                                                                                \
    do {                                                                                                             \
        __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sv + q0_scales_at(q4, (B)))));              \
        _Pragma("GCC unroll 16") for (int r = 0; r < 16; r++) if (r < rg) acc[r] =                                  \
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512((CB)[r])), _mm512_mul_ps(ws, _mm512_set1_ps(xd[(size_t)r * nb + (B)])), acc[r]); \
    } while (0)

/* The line after the one holding [a, a + 32) in each of 16 rows ldx bytes apart, into L1: the
 * next two blocks of an A tile's rows. (A tile's rows read from L2 at 512 rows x 896 or x 4864,
 * one thread, interleaved in one process: this ahead 1.05-1.09x per block, 4 and 8 blocks ahead
 * 1.04x and 1.02x, 16 ahead slower; bench/results/2026-11-28-s18.) Addresses as integers: the
 * last row group's lines past the activations are only asked for, never read. */
TXI static inline void a_ahead(const int8_t *a, size_t ldx) {
    for (int r = 0; r < 16; r++) _mm_prefetch((const char *)((uintptr_t)a + (size_t)r * ldx + 64), _MM_HINT_T0);
}

/* Rows [16g, 16g + rg) x panel v over the call's blocks; bsv: the panel's signed blocks, sv: its
 * packed bytes (for the scales, laid out as Q4_0's where q4, else Q8_0's). */
TXI static void q_rows(const pk_tile *t, const int8_t *bsv, const uint8_t *sv, int g, int rg, int v, bool pf_here, bool q4) {
    const int nb = t->ldx / 32;
    const size_t ldx = (size_t)t->ldx;
    const int8_t *xa = t->xq + (size_t)16 * g * ldx;
    const float *xd = t->xd + (size_t)16 * g * nb;
    float *o = t->out + (size_t)16 * g * t->ldo + 16 * v;
    const int cols = t->cols - 16 * v;
    const __mmask16 m = cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1);
    __m512 acc[16];
    if (t->k0 == 0) /* the output lines of the tiles that follow, for writing (as ACC_START) */
        for (int r = 0; r < rg; r++) out_ahead(o + (size_t)r * t->ldo);
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++) acc[r] = t->k0 > 0 && r < rg ? _mm512_maskz_loadu_ps(m, o + (size_t)r * t->ldo) : _mm512_setzero_ps();
    _Alignas(64) int32_t cb[4][16][16];
    pf_cursor pf = pf_here ? pf_start(&t->pf) : (pf_cursor){0};
    const int nblk = t->k1 - t->k0;
    /* block i (from k0): C tile i % 4 into cb[i % 4], A and B tiles 4 + i % 2 and 6 + i % 2; the
     * products run two blocks ahead of the scaling. The first panel's pass reads the row group's
     * activations from L2 (the slice's 512 rows x 1 KiB do not stay in L1 between passes): at
     * every other block it asks for each row's next line, the next two blocks' A (a_ahead). */
#define Q_ISSUE(C, A, B, I)                                                      \
    do {                                                                         \
        if ((I) < nblk) {                                                        \
            pf_step(&pf);                                                        \
            if (v == 0 && (I) % 2 == 0) a_ahead(xa + (size_t)32 * (t->k0 + (I)), ldx); \
            _tile_loadd(A, xa + (size_t)32 * (t->k0 + (I)), ldx);                \
            _tile_loadd(B, bsv + (size_t)(I) * 512, 64);                         \
            _tile_zero(C);                                                       \
            _tile_dpbssd(C, A, B);                                               \
            _tile_stored(C, cb[C], 64);                                          \
        }                                                                        \
    } while (0)
    Q_ISSUE(0, 4, 6, 0);
    Q_ISSUE(1, 5, 7, 1);
    for (int i = 0; i < nblk; i += 4) {
        Q_ISSUE(2, 4, 6, i + 2);
        Q_SCALE(cb[0], t->k0 + i);
        if (i + 1 >= nblk) break;
        Q_ISSUE(3, 5, 7, i + 3);
        Q_SCALE(cb[1], t->k0 + i + 1);
        if (i + 2 >= nblk) break;
        Q_ISSUE(0, 4, 6, i + 4);
        Q_SCALE(cb[2], t->k0 + i + 2);
        if (i + 3 >= nblk) break;
        Q_ISSUE(1, 5, 7, i + 5);
        Q_SCALE(cb[3], t->k0 + i + 3);
    }
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++)
        if (r < rg) _mm512_mask_storeu_ps(o + (size_t)r * t->ldo, m, acc[r]);
}

TXI void pk_amx_tile_q(const pk_tile *t, const int8_t *bs, int mr, int nv, bool q4) {
    const size_t nblk = (size_t)(t->k1 - t->k0);
    for (int g = 0; 16 * g < mr; g++) {
        int rg = mr - 16 * g < 16 ? mr - 16 * g : 16;
        configure_q(rg);
        for (int v = 0; v < nv; v++) q_rows(t, bs + (size_t)v * nblk * 512, t->pw + (size_t)v * t->pstride, g, rg, v, g == 0 && v == 0, q4);
    }
}

/* The peak loops' operands: A tiles (4, 5; rows a_stride bytes apart) and B tiles (6, 7) of
 * zeros (no overflow, no denormals), C tiles (0-3) zeroed, in the configuration loaded. */
TX static void peak_operands(size_t a_stride) {
    _Alignas(64) static const uint8_t zeros[16 * 64];
    _tile_loadd(4, zeros, a_stride);
    _tile_loadd(5, zeros, a_stride);
    _tile_loadd(6, zeros, 64);
    _tile_loadd(7, zeros, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
}

/* A C tile stored where the compiler cannot drop it, and the tiles released. */
TX static void peak_done(void) {
    _Alignas(64) int32_t sink[16 * 16];
    _tile_stored(0, sink, 64);
    volatile int32_t keep = sink[0];
    (void)keep;
    pk_amx_release();
}

/* The BF16 tile's peak: its four products per step on operands already in the tiles (the
 * kernel's configuration, so the thread's cached one stays true). Returns the FLOPs done. */
TX double pk_amx_bf16_peak_loop(long iters) {
    static const int rows[2] = {16, 16}, cols[2] = {16, 16};
    configure(rows, cols);
    peak_operands(64);
    for (long i = 0; i < iters; i++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    peak_done();
    return 4.0 * 16 * 16 * 32 * 2 * (double)iters;
}

/* The int8 tile's peak: four tdpbssd per step in the Q4_0 tile's configuration (16 rows, one
 * 32-block of k: half the k of a full tile, as the kernel runs it). Returns the ops done (2 per
 * multiply-add). */
TXI double pk_amx_int8_peak_loop(long iters) {
    configure_q(16);
    peak_operands(32);
    for (long i = 0; i < iters; i++) {
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 5, 7);
        _tile_dpbssd(2, 4, 7);
        _tile_dpbssd(3, 5, 6);
    }
    peak_done();
    return 4.0 * 16 * 16 * 32 * 2 * (double)iters;
}

#else
double pk_amx_int8_peak_loop(long iters) {
    (void)iters;
    return 0;
}
double pk_amx_bf16_peak_loop(long iters) {
    (void)iters;
    return 0;
}
bool pk_amx(int mode) {
    (void)mode;
    return false;
}
bool pk_amx_on(void) { return false; }
bool pk_amx_int8_on(void) { return false; }
void pk_amx_q_blocks(int8_t *bs, const pk_tile *t, int nv, bool q4) { (void)bs, (void)t, (void)nv, (void)q4; }
void pk_amx_tile_q(const pk_tile *t, const int8_t *bs, int mr, int nv, bool q4) { (void)t, (void)bs, (void)mr, (void)nv, (void)q4; }
void pk_amx_release(void) {}
void pk_amx_config(const uint8_t rows[8], const uint16_t colsb[8]) { (void)rows, (void)colsb; }
void pk_amx_tile_bf16(const pk_tile *t, int mr, int nv) { (void)t, (void)mr, (void)nv; }
#endif
