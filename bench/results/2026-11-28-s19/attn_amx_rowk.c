/* Prototype: attention's bf16 dot steps on AMX tiles with a cache that stores what the tiles
 * load -- keys row-major within a block ([bs][hd]), values transposed ([hd][bs]) -- so no pairs
 * are written per call. S^T = K . Q^T (A: a block's 16 key rows in place; B: Q^T's pairs, built
 * once per call), the softmax on score rows per position (lanes = heads), O^T += V^T . P^T (A: a
 * block's transposed values in place, 16 elements x 8 position pairs; B: P^T's pairs, two
 * position rows interleaved in registers). Against kern_attention (AVX-512 dot steps) on the same
 * values in the engine's layout: max |diff| and time, 1 and 2 threads, interleaved.
 * build (from the repository root): gcc -O2 -std=gnu11 -I include -I src
 *   bench/results/2026-11-28-s19/attn_amx_rowk.c build/libs1c.a -lm -lpthread -o /tmp/rowk
 * usage: rowk N ROUNDS THREADS */
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels/kern_internal.h"
#include "kernels/kernels.h"
#include "s1c/base.h"

#define TX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))
enum { NH = 7, HD = 64, BS = 16, CH = 64, SLACK = 8 };

typedef struct { uint8_t palette, start_row, r[14]; uint16_t colsb[16]; uint8_t rows[16]; } cfg_t;

/* tiles: 0-3 C (16 x NH f32), 4 A scores (16 rows x 16 pairs), 5 A pv (16 rows x 8 pairs),
 * 6 B Q^T (16 pairs x NH), 7 B P^T (8 pairs x NH) */
TX static void config(void) {
    static __thread int done;
    if (done) return;
    cfg_t c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 4; i++) c.rows[i] = 16, c.colsb[i] = 4 * NH;
    c.rows[4] = 16, c.colsb[4] = 64;
    c.rows[5] = 16, c.colsb[5] = 32;
    c.rows[6] = 16, c.colsb[6] = 4 * NH;
    c.rows[7] = 8, c.colsb[7] = 4 * NH;
    _tile_loadconfig(&c);
    done = 1;
}

static inline TX __m512 exp16w(__m512 x) {
    __m512 t = _mm512_mul_ps(_mm512_max_ps(_mm512_set1_ps(-87.0f), x), _mm512_set1_ps(1.44269504f));
    __m512 r = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), f = _mm512_sub_ps(t, r);
    __m512 p = _mm512_set1_ps(1.3333558e-3f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504109e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022651e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, r);
}

typedef struct {
    const float *q; float *out; int n; const uint16_t *k, *v; const int32_t *blocks; size_t block_stride; float scale;
    float *scr; /* scratch */
} rk_args;


static inline TX int rk_blocks(const rk_args *a, int c0, const uint16_t **kb, const uint16_t **vb) {
    int len = a->n - c0 < CH ? a->n - c0 : CH, nb = (len + BS - 1) / BS;
    for (int g = 0; g < nb; g++) {
        size_t base = (size_t)a->blocks[(c0 >> 4) + g] * a->block_stride;
        kb[g] = a->k + base, vb[g] = a->v + base;
    }
    return nb;
}

static inline TX void rk_scores(const rk_args *a, int c0, float *s) {
    const uint16_t *kb[4], *vb[4], *qt = (const uint16_t *)(a->scr + CH * 16 * 2 + HD * 16);
    int nb = rk_blocks(a, c0, kb, vb);
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    for (int t = 0; t < HD / 32; t++) {
        _tile_loadd(6, qt + (size_t)t * 16 * NH * 2, 4 * NH);
        if (nb > 0) { _tile_loadd(4, kb[0] + 32 * t, 2 * HD); _tile_dpbf16ps(0, 4, 6); }
        if (nb > 1) { _tile_loadd(4, kb[1] + 32 * t, 2 * HD); _tile_dpbf16ps(1, 4, 6); }
        if (nb > 2) { _tile_loadd(4, kb[2] + 32 * t, 2 * HD); _tile_dpbf16ps(2, 4, 6); }
        if (nb > 3) { _tile_loadd(4, kb[3] + 32 * t, 2 * HD); _tile_dpbf16ps(3, 4, 6); }
    }
    _tile_stored(0, s, 64);
    if (nb > 1) _tile_stored(1, s + 16 * 16, 64);
    if (nb > 2) _tile_stored(2, s + 32 * 16, 64);
    if (nb > 3) _tile_stored(3, s + 48 * 16, 64);
}

static inline TX void rk_softmax(const rk_args *a, int c0, const float *s, uint16_t *pt, __m512 *mp, __m512 *sump, float *ot) {
    int len = a->n - c0 < CH ? a->n - c0 : CH, nb = (len + BS - 1) / BS;
    const __mmask16 hm = (1u << NH) - 1;
    __m512 m = *mp, sum = *sump;
    __m512 sc = _mm512_set1_ps(a->scale), mx = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < len; j++) mx = _mm512_max_ps(mx, _mm512_mul_ps(_mm512_loadu_ps(s + 16 * j), sc));
    __mmask16 grow = _mm512_mask_cmp_ps_mask(hm, mx, _mm512_add_ps(m, _mm512_set1_ps(SLACK)), _CMP_GT_OQ);
    if (grow) {
        __m512 nm = _mm512_mask_mov_ps(m, grow, mx);
        __m512 cv = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m, _mm512_set1_ps(-INFINITY), _CMP_NEQ_OQ), exp16w(_mm512_sub_ps(m, nm)));
        cv = _mm512_mask_mov_ps(_mm512_set1_ps(1.0f), grow, cv);
        sum = _mm512_mul_ps(sum, cv);
        for (int i = 0; i < HD; i++) _mm512_storeu_ps(ot + 16 * i, _mm512_mul_ps(_mm512_loadu_ps(ot + 16 * i), cv));
        m = nm;
    }
    const __m512i il2 = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int p = 0; p < nb * BS / 2; p++) {
        __m512 w0 = 2 * p < len ? exp16w(_mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(s + 32 * p), sc), m)) : _mm512_setzero_ps();
        __m512 w1 = 2 * p + 1 < len ? exp16w(_mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(s + 32 * p + 16), sc), m)) : _mm512_setzero_ps();
        __m512i pr = _mm512_permutexvar_epi16(il2, (__m512i)_mm512_cvtne2ps_pbh(w1, w0));
        sum = _mm512_dpbf16_ps(sum, (__m512bh)pr, (__m512bh)_mm512_set1_epi16(0x3f80));
        _mm512_mask_storeu_epi32(pt + (size_t)p * NH * 2, hm, pr);
    }
    *mp = m, *sump = sum;
}

static inline TX void rk_pv(const rk_args *a, int c0, const uint16_t *pt, float *ot) {
    const uint16_t *kb[4], *vb[4];
    int nb = rk_blocks(a, c0, kb, vb);
    _tile_loadd(0, ot, 64); _tile_loadd(1, ot + 16 * 16, 64); _tile_loadd(2, ot + 32 * 16, 64); _tile_loadd(3, ot + 48 * 16, 64);
    for (int g = 0; g < nb; g++) {
        _tile_loadd(7, pt + (size_t)g * 8 * NH * 2, 4 * NH);
        _tile_loadd(5, vb[g], 2 * BS); _tile_dpbf16ps(0, 5, 7);
        _tile_loadd(5, vb[g] + 16 * BS, 2 * BS); _tile_dpbf16ps(1, 5, 7);
        _tile_loadd(5, vb[g] + 32 * BS, 2 * BS); _tile_dpbf16ps(2, 5, 7);
        _tile_loadd(5, vb[g] + 48 * BS, 2 * BS); _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, ot, 64); _tile_stored(1, ot + 16 * 16, 64); _tile_stored(2, ot + 32 * 16, 64); _tile_stored(3, ot + 48 * 16, 64);
}

/* k: per block [BS][HD]; v: per block [HD][BS] (bf16). */
TX static void attn_rowk(const rk_args *a) {
    config();
    float *s = a->scr;                      /* 2 x [CH][16] scores, rows = positions */
    float *ot = s + CH * 16 * 2;            /* [HD][16] O^T, lanes = heads */
    uint16_t *qt = (uint16_t *)(ot + HD * 16); /* [HD/2][NH][2] */
    uint16_t *pt = qt + HD * NH;            /* [CH/2][NH][2] per chunk */
    /* Q^T pairs: qt[i][h] = (q[h][2i], q[h][2i+1]) rounded to bf16: each head's row as 32 pairs
     * (one vcvtne2ps2bf16 per 32 elements), scattered to column h (a 32-bit store per pair) */
    for (int h = 0; h < NH; h++)
        for (int i0 = 0; i0 < HD; i0 += 32) {
            __m512i b = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(a->q + h * HD + i0 + 16), _mm512_loadu_ps(a->q + h * HD + i0));
            _mm512_i32scatter_epi32((int *)qt + (i0 / 2) * NH + h, _mm512_mullo_epi32(_mm512_set_epi32(15,14,13,12,11,10,9,8,7,6,5,4,3,2,1,0), _mm512_set1_epi32(NH)), b, 4);
        }
    memset(ot, 0, HD * 16 * sizeof(float));
    __m512 m = _mm512_set1_ps(-INFINITY), sum = _mm512_setzero_ps();
    const __mmask16 hm = (1u << NH) - 1;
    /* one chunk ahead: the scores of chunk c + 1 run on the tiles between the weights' stores of
     * chunk c and the weighted sums that load them */
    int nch = (a->n + CH - 1) / CH;
    float *sb[2] = {s, s + CH * 16};
    uint16_t *pb[2] = {pt, pt + CH * NH * 2};
    rk_scores(a, 0, sb[0]);
    rk_softmax(a, 0, sb[0], pb[0], &m, &sum, ot);
    for (int c = 0; c < nch; c++) {
        if (c + 1 < nch) rk_scores(a, (c + 1) * CH, sb[(c + 1) & 1]);
        rk_pv(a, c * CH, pb[c & 1], ot);
        if (c + 1 < nch) rk_softmax(a, (c + 1) * CH, sb[(c + 1) & 1], pb[(c + 1) & 1], &m, &sum, ot);
    }
    /* out[h][i] = ot[i][h] / sum[h]: lanes scaled, then gathered per head */
    __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), sum);
    for (int h = 0; h < NH; h++)
        for (int i0 = 0; i0 < HD; i0 += 16) {
            __m512 v = _mm512_i32gather_ps(_mm512_add_epi32(_mm512_set1_epi32(h), _mm512_mullo_epi32(_mm512_set_epi32(15,14,13,12,11,10,9,8,7,6,5,4,3,2,1,0), _mm512_set1_epi32(16))), ot + 16 * i0, 4);
            _mm512_storeu_ps(a->out + h * HD + i0, _mm512_mul_ps(v, _mm512_set1_ps(((float *)&inv)[h])));
        }
}

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int cmpd(const void *x, const void *y) { double a = *(const double *)x, b = *(const double *)y; return (a > b) - (a < b); }

typedef struct { int mode, iters; kern_attn_args ka; rk_args ra; } job;
static void *run(void *p) {
    job *j = p;
    for (int i = 0; i < j->iters; i++) {
        if (j->mode) attn_rowk(&j->ra);
        else kern_attention(&j->ka);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 640, reps = argc > 2 ? atoi(argv[2]) : 9, thr = argc > 3 ? atoi(argv[3]) : 1;
    if (!pk_amx(1)) { puts("no AMX"); return 1; }
    int nb = (n + BS - 1) / BS + 4;
    size_t bstride = (size_t)BS * HD;
    uint16_t *k0 = aligned_alloc(64, nb * bstride * 2), *v0 = aligned_alloc(64, nb * bstride * 2); /* engine: K [HD][BS], V [BS][HD] */
    uint16_t *k1 = aligned_alloc(64, nb * bstride * 2), *v1 = aligned_alloc(64, nb * bstride * 2); /* proto: K [BS][HD], V [HD][BS] */
    for (int b = 0; b < nb; b++)
        for (int j = 0; j < BS; j++)
            for (int i = 0; i < HD; i++) {
                uint16_t kk = s1c_f32_to_bf16(2.0f * ((float)rand() / RAND_MAX - 0.5f)), vv = s1c_f32_to_bf16((float)rand() / RAND_MAX - 0.5f);
                k0[b * bstride + i * BS + j] = kk, v0[b * bstride + j * HD + i] = vv;
                k1[b * bstride + j * HD + i] = kk, v1[b * bstride + i * BS + j] = vv;
            }
    int32_t *blocks = malloc(nb * 4);
    for (int i = 0; i < nb; i++) blocks[i] = (i * 7) % nb; /* not in order */
    float q[NH * HD];
    for (int i = 0; i < NH * HD; i++) q[i] = (float)rand() / RAND_MAX * 4 - 2;
    job jobs[2][2];
    for (int t = 0; t < 2; t++)
        for (int mo = 0; mo < 2; mo++) {
            job *j = &jobs[t][mo];
            j->mode = mo;
            float *out = aligned_alloc(64, 4096), *scr = aligned_alloc(64, KERN_ATTN_SCRATCH * 4);
            j->ka = (kern_attn_args){q, out, NH, HD, n, BS, S1C_BF16, k0, v0, blocks, bstride, HD, 0.125f, scr, true, n};
            j->ra = (rk_args){q, out, n, k1, v1, blocks, bstride, 0.125f, scr};
        }
    jobs[0][0].iters = jobs[0][1].iters = 1;
    run(&jobs[0][0]), run(&jobs[0][1]);
    double d = 0, mx = 0;
    for (int i = 0; i < NH * HD; i++) d = fmax(d, fabs(jobs[0][0].ka.out[i] - jobs[0][1].ra.out[i])), mx = fmax(mx, fabs(jobs[0][0].ka.out[i]));
    static double tm[2][64];
    int iters = 100000 / n + 1;
    for (int r = 0; r < reps; r++)
        for (int mo = 0; mo < 2; mo++) {
            pthread_t th[2];
            for (int t = 0; t < thr; t++) jobs[t][mo].iters = iters;
            double t0 = now();
            for (int t = 0; t < thr; t++) pthread_create(&th[t], NULL, run, &jobs[t][mo]);
            for (int t = 0; t < thr; t++) pthread_join(th[t], NULL);
            tm[mo][r] = (now() - t0) / iters * 1e6;
        }
    qsort(tm[0], reps, 8, cmpd), qsort(tm[1], reps, 8, cmpd);
    printf("n=%d threads=%d avx512dot %.2f us  amx_rowk %.2f us  ratio %.2f  max|diff| %.2g (max |out| %.2g)\n", n, thr, tm[0][reps / 2], tm[1][reps / 2],
           tm[0][reps / 2] / tm[1][reps / 2], d, mx);
    return 0;
}
