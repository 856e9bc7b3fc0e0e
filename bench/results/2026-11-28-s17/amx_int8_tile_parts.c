/* Session 17: the parts of one AMX int8 block (16 rows x 16 outputs x 32 k): tile loads,
 * tdpbssd and the store of the sums vs the AVX-512 scaling, in cache, one thread.
 *   gcc -O2 amx_int8_tile_parts.c -o parts && ./parts */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#define TXI __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
typedef struct { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } tile_cfg;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
enum { NB = 32, LDX = 896 };
static int8_t xbig[512 * LDX] __attribute__((aligned(64)));
static int8_t xa[16 * LDX] __attribute__((aligned(64)));
static int8_t bs[NB * 512] __attribute__((aligned(64)));
static uint16_t sc[NB * 16];
static float xd[16 * 64];
float sink[16 * 16];
int mode;
TXI static void run(long reps) {
    tile_cfg c; memset(&c, 0, sizeof c); c.palette = 1;
    for (int u = 0; u < 4; u++) c.rows[u] = 16, c.colsb[u] = 64;
    for (int u = 0; u < 2; u++) c.rows[4+u] = 16, c.colsb[4+u] = 32, c.rows[6+u] = 8, c.colsb[6+u] = 64;
    _tile_loadconfig(&c);
    _Alignas(64) int32_t cb[4][16][16];
    memset(cb, 0, sizeof cb);
    __m512 acc[16];
    for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
    const int nb = 28;
    size_t ldx = mode == 3 ? 32 : LDX;
    for (long rep = 0; rep < reps; rep++) {
        const int8_t *xa_ = mode == 5 ? xbig + (size_t)(rep % 32) * 16 * LDX : xa;
#define ISSUE(C, A, B, I) do { if ((I) < NB) { if (mode != 2) { _tile_loadd(A, xa_ + (mode == 3 ? (size_t)(I) * 512 : (size_t)32 * (I)), ldx); _tile_loadd(B, bs + (size_t)(I) * 512, 64); _tile_zero(C); _tile_dpbssd(C, A, B); if (mode != 4) _tile_stored(C, cb[C], 64);} } } while (0)
#define SCALE(CB, B) do { if (mode != 1) { __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sc + 16 * (B)))); \
    _Pragma("GCC unroll 16") for (int r = 0; r < 16; r++) acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512((CB)[r])), _mm512_mul_ps(ws, _mm512_set1_ps(xd[(size_t)r * nb + (B)])), acc[r]); } } while (0)
        if (mode == 6) {
        ISSUE(0, 4, 6, 0); ISSUE(1, 5, 7, 1); ISSUE(2, 4, 6, 2);
        for (int i = 0; i < NB; i += 4) {
            ISSUE(3, 5, 7, i + 3); SCALE(cb[0], i);
            ISSUE(0, 4, 6, i + 4); SCALE(cb[1], i + 1);
            ISSUE(1, 5, 7, i + 5); SCALE(cb[2], i + 2);
            ISSUE(2, 4, 6, i + 6); SCALE(cb[3], i + 3);
        }
        continue;
        }
        ISSUE(0, 4, 6, 0); ISSUE(1, 5, 7, 1);
        for (int i = 0; i < NB; i += 4) {
            ISSUE(2, 4, 6, i + 2); SCALE(cb[0], i);
            ISSUE(3, 5, 7, i + 3); SCALE(cb[1], i + 1);
            ISSUE(0, 4, 6, i + 4); SCALE(cb[2], i + 2);
            ISSUE(1, 5, 7, i + 5); SCALE(cb[3], i + 3);
        }
    }
    for (int r = 0; r < 16; r++) _mm512_storeu_ps(sink, _mm512_add_ps(_mm512_loadu_ps(sink), acc[r]));
    _tile_release();
}
int main(void) {
    syscall(SYS_arch_prctl, 0x1023, 18);
    for (int i = 0; i < NB * 16; i++) sc[i] = 0x3c00;
    const char *names[] = {"full", "tiles only (no scale)", "scale only (no tiles)", "full, A contiguous", "tiles no store + scale", "full, A from L2 (512 rows)", "full, 3 ahead"};
    for (int round = 0; round < 3; round++)
    for (mode = 0; mode < 7; mode++) {
        long reps = 20000;
        run(100);
        double t = now(); run(reps); t = now() - t;
        printf("%-26s %.1f ns per 16x16x32 block\n", names[mode], t / reps / NB * 1e9);
    }
}
