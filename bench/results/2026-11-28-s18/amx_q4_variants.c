/* Session 18: variants of the AMX Q4_0 tile (pk_amx_tile_q4), each a copy of packed_amx.c built with
 * its own flags and symbol prefix (amx_q4_variants_build.sh), timed interleaved in one process: one
 * thread, a 512-row slice pass as run_panels makes it (pk_amx_q4_blocks per 32-block slice, then
 * 32-row calls over all rows), n = 4864 (MB_N=896 for the other shape), medians over rounds and
 * the median of the per-round speed ratios to the first variant (the machine's AMX speed moved 2x
 * between minutes: only ratios within one run mean anything). MB_SAMEA=1: every call reads the
 * first 32 rows' activations (A from L1 instead of L2).
 *   bash amx_q4_variants_build.sh "orig:" "pfa2:-DQ4_PFA=2" && ./harness 512 9 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/kern_internal.h"
#include "kernels/kernels.h"
#include "s1c/base.h"
typedef void (*tile_fn)(const pk_tile *, const int8_t *, int, int);
typedef void (*blocks_fn)(int8_t *, const pk_tile *, int);
#define V(name) void name##_tile_q4(const pk_tile *, const int8_t *, int, int); void name##_q4_blocks(int8_t *, const pk_tile *, int);
VARIANTS_DECL
static struct { const char *name; tile_fn tf; blocks_fn bf; } vs[] = { VARIANTS_LIST };
static int cmpd(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    int n = getenv("MB_N") ? atoi(getenv("MB_N")) : 4864, rows = argc > 1 ? atoi(argv[1]) : 512, rounds = argc > 2 ? atoi(argv[2]) : 11;
    int nvar = sizeof vs / sizeof *vs;
    pk_amx(1);
    int nb = n / 32;
    size_t pstride = q0_panel_bytes(true, nb);
    uint8_t *pw = aligned_alloc(64, pstride * 2 + 64);
    for (size_t i = 0; i < pstride * 2; i++) pw[i] = (uint8_t)(i * 2654435761u >> 13);
    for (int b = 0; b < nb; b++) for (int v = 0; v < 2; v++) { uint16_t *sc = (uint16_t *)(pw + v * pstride + q0_scales_at(true, b)); for (int j = 0; j < 16; j++) sc[j] = 0x2000 + j; }
    int8_t *xq = aligned_alloc(64, (size_t)rows * n); for (size_t i = 0; i < (size_t)rows * n; i++) xq[i] = (int8_t)(i * 7919 >> 3);
    float *xd = malloc((size_t)rows * nb * 4); for (size_t i = 0; i < (size_t)rows * nb; i++) xd[i] = 0.01f * (float)(i % 13);
    float *out = aligned_alloc(64, (size_t)rows * 896 * 4), *ref = malloc((size_t)rows * 896 * 4);
    _Alignas(64) static int8_t bs[2 * PK_AMX_Q_KC * 512];
    double t[16][64];
    for (int round = 0; round < rounds; round++)
        for (int vi = 0; vi < nvar; vi++) {
            double best = 1e9;
            for (int rep = 0; rep < 3; rep++) {
                memset(out, 0, (size_t)rows * 896 * 4);
                double t0 = s1c_now();
                pk_tile tt = {.pw = pw, .pstride = pstride, .ldx = n, .ldo = 896, .cols = 32, .n = n, .xq = xq, .xd = xd, .out = out};
                for (tt.k0 = 0; tt.k0 < nb; tt.k0 += PK_AMX_Q_KC) {
                    tt.k1 = tt.k0 + PK_AMX_Q_KC < nb ? tt.k0 + PK_AMX_Q_KC : nb;
                    vs[vi].bf(bs, &tt, 2);
                    for (int r = 0; r < rows; r += 32) {
                        pk_tile u = tt; u.xq = xq + (getenv("MB_SAMEA") ? 0 : (size_t)r * n); u.xd = xd + (size_t)r * nb; u.out = out + (size_t)r * 896;
                        vs[vi].tf(&u, bs, rows - r < 32 ? rows - r : 32, 2);
                    }
                }
                double dt = s1c_now() - t0;
                if (dt < best) best = dt;
            }
            t[vi][round] = best / ((double)rows / 16 * nb * 2) * 1e9;
            if (round == 0 && vi == 0) memcpy(ref, out, (size_t)rows * 896 * 4);
            if (round == 0 && memcmp(ref, out, (size_t)rows * 32 * 4 * 0 + 0) != 0) {}
            if (round == 0) { int bad = 0; for (int r = 0; r < rows; r++) bad += memcmp(ref + (size_t)r * 896, out + (size_t)r * 896, 32 * 4) != 0; if (bad) printf("%s: %d rows differ from %s\n", vs[vi].name, bad, vs[0].name); }
        }
    for (int vi = 0; vi < nvar; vi++) {
        double ratio[64];
        for (int k = 0; k < rounds; k++) ratio[k] = t[0][k] / t[vi][k];
        qsort(ratio, rounds, sizeof(double), cmpd);
        qsort(t[vi], rounds, sizeof(double), cmpd);
        printf("%-12s n=%d rows=%d: median %.1f ns/block (min %.1f), speed vs %s %.2fx (median of rounds)\n", vs[vi].name, n, rows, t[vi][rounds / 2], t[vi][0], vs[0].name, ratio[rounds / 2]);
    }
    pk_amx_release();
}
