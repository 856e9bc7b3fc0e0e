/* Matmul on quantized weights read in place, the reference. Q8_0 / Q4_0 (ggml's blocks: an f16
 * scale and 32 signed 8-bit values, or 16 bytes of 4-bit values stored as value + 8, low nibbles
 * first): activations are quantized per 32-block to 8 bits (kern_q8x_make, as llama.cpp's
 * q8_0 x q8_0 / q4_0 x q8_0 dots do), each block's integer dot is exact, and the blocks' scaled
 * sums are added in increasing order.
 *
 * The K-quants (Q4_K, Q5_K, Q6_K; 256-element super-blocks, layouts in src/formats/quant.c) use
 * the same activations, one 32-block at a time, in increasing block order b (the super-block's
 * sub-blocks are 32-blocks, or pairs of 16-element ones for Q6_K), s starting at 0:
 *   Q4_K/Q5_K  isum = sum_i q_i x_i (q unsigned, exact in int32);
 *              s = fma(isum, (d * sc) * xd, s); s = fma(dmin * m, -(xd * xs), s)
 *              (d * sc and dmin * m are exact in f32: an f16 times a 6-bit integer)
 *   Q6_K       isum = sc_a * sum_{i<16} (q_i - 32) x_i + sc_b * sum_{i>=16} (q_i - 32) x_i
 *              (exact, |isum| < 2^24); s = fma(isum, d * xd, s)
 * with x_i, xd, xs the activation block's values, scale and sum. These are the operations of
 * the packed AVX-512 kernels (packed_avx512.c), lane by lane, so the two agree bitwise. One
 * scale per 32 activations (not llama.cpp's Q8_K, one per 256) keeps a single activation format
 * for every quantized type in a model (Q4_K_M mixes Q4_K, Q6_K and, where rows are not whole
 * super-blocks, Q8_0/Q5_0), so q/k/v of mixed types share one quantization and one pass, and
 * small activations beside large ones in a 256-row keep more of their bits.
 * Q4_1, Q5_0, Q5_1 (ggml's 32-blocks with a minimum or a fifth bit; layouts in src/formats/quant.c)
 * take the same activations block by block, b increasing, s starting at 0, q the unsigned code
 * (Q4_1 0..15, Q5_x 0..31, the fifth bit from qh):
 *   Q5_0       isum = sum_i q_i x_i - 16 xs (y = d (q - 16): the bias folded into the exact sum);
 *              s = fma(isum, d * xd, s)
 *   Q4_1/Q5_1  isum = sum_i q_i x_i (y = d q + m);
 *              s = fma(isum, d * xd, s); s = fma(m, xd * xs, s)
 *              (xd * xs is kern_q8x's -m, rounded once; the min term as the K-quants' is)
 * Unlike Q8_0/Q4_0's `s += isum * (d * xd)` (whose packed kernel fuses it: results within a few
 * ulps of this loop's), these steps are fused here as in the packed kernel, so the two agree
 * bitwise, as the K-quants do.
 * Every output is one reduction over its own weight row and activation row: batch-invariant. */
#include "kern_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "s1c/base.h"

bool kern_is_kquant_dtype(int dtype) { return dtype == S1C_Q4_K || dtype == S1C_Q5_K || dtype == S1C_Q6_K; }

bool kern_is_q5x_dtype(int dtype) { return dtype == S1C_Q4_1 || dtype == S1C_Q5_0 || dtype == S1C_Q5_1; }

bool kern_is_qmatmul_dtype(int dtype) {
    return dtype == S1C_Q8_0 || dtype == S1C_Q4_0 || kern_is_q5x_dtype(dtype) || kern_is_kquant_dtype(dtype);
}

void kern_ref_q8x(kern_q8x *xq, const float *x, size_t b0, size_t b1) {
    for (size_t b = b0; b < b1; b++) {
        const float *xb = x + b * 32;
        float amax = 0.0f;
        for (int i = 0; i < 32; i++)
            if (fabsf(xb[i]) > amax) amax = fabsf(xb[i]);
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        int32_t sum = 0, half = 0;
        for (int i = 0; i < 32; i++) {
            xq->q[b * 32 + (size_t)i] = (int8_t)roundf(xb[i] * id);
            sum += xq->q[b * 32 + (size_t)i];
            if (i == 15) half = sum;
        }
        xq->d[b] = d;
        xq->s[b] = sum;
        xq->h[b] = half;
        xq->m[b] = -(d * (float)sum);
    }
}

void kern_q8x_fill_blocks(kern_q8x *xq, const float *x, size_t b0, size_t b1) {
    if (kern_avx512_supported()) kern_avx512_q8x(xq, x, b0, b1);
    else if (kern_avx2_supported()) kern_avx2_q8x(xq, x, b0, b1);
    else kern_ref_q8x(xq, x, b0, b1);
}

void kern_q8x_fill(kern_q8x *xq, const float *x, int n_rows) { kern_q8x_fill_blocks(xq, x, 0, (size_t)n_rows * (size_t)(xq->n / 32)); }

void kern_q8x_make(kern_q8x *xq, const float *x, int n_rows, int n) {
    size_t nb = (size_t)(n / 32);
    xq->n = n;
    xq->q = malloc((size_t)n_rows * (size_t)n + 64); /* +64: a two-block load at the last odd block stays inside */
    xq->d = malloc((size_t)n_rows * nb * sizeof(float) + sizeof(float));
    xq->s = malloc((size_t)n_rows * nb * sizeof(int32_t) + sizeof(int32_t));
    xq->h = malloc((size_t)n_rows * nb * sizeof(int32_t) + sizeof(int32_t));
    xq->m = malloc((size_t)n_rows * nb * sizeof(float) + sizeof(float));
    if (!xq->q || !xq->d || !xq->s || !xq->h || !xq->m) {
        fprintf(stderr, "s1c: out of memory quantizing %d activation rows\n", n_rows);
        abort();
    }
    kern_q8x_fill(xq, x, n_rows);
}

void kern_q8x_free(kern_q8x *xq) {
    free(xq->q);
    free(xq->d);
    free(xq->s);
    free(xq->h);
    free(xq->m);
}

static inline float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return s1c_f16_to_f32(h);
}

/* One weight row (nb blocks) against one quantized activation row (xq values, xd scales). */
static float dot_q8_0(const uint8_t *w, const int8_t *xq, const float *xd, int nb) {
    float s = 0.0f;
    for (int b = 0; b < nb; b++, w += 34, xq += 32) {
        const int8_t *q = (const int8_t *)(w + 2);
        int32_t isum = 0;
        for (int i = 0; i < 32; i++) isum += (int32_t)q[i] * xq[i];
        s += (float)isum * (f16_at(w) * xd[b]);
    }
    return s;
}

static float dot_q4_0(const uint8_t *w, const int8_t *xq, const float *xd, int nb) {
    float s = 0.0f;
    for (int b = 0; b < nb; b++, w += 18, xq += 32) {
        const uint8_t *q = w + 2;
        int32_t isum = 0;
        for (int i = 0; i < 16; i++) isum += ((q[i] & 0x0f) - 8) * xq[i] + ((q[i] >> 4) - 8) * xq[i + 16];
        s += (float)isum * (f16_at(w) * xd[b]);
    }
    return s;
}

static inline uint32_t le32_at(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* Q4_1 (20-byte blocks: f16 d, f16 m, 16 bytes of nibbles), Q5_0 (22: f16 d, u32 qh, nibbles) or
 * Q5_1 (24: f16 d, f16 m, u32 qh, nibbles); element i < 16 is the low nibble of byte i, i + 16 its
 * high nibble, and bit i of qh the fifth bit of element i. */
static float dot_q5x(const uint8_t *w, int dtype, const kern_q8x *xq, size_t b0, int nb) {
    bool has_min = dtype != S1C_Q5_0, five = dtype != S1C_Q4_1;
    size_t bytes = dtype == S1C_Q4_1 ? 20 : dtype == S1C_Q5_0 ? 22 : 24, qs_at = has_min ? 4 : 2;
    float s = 0.0f;
    for (int k = 0; k < nb; k++, w += bytes) {
        size_t b = b0 + (size_t)k;
        const int8_t *x = xq->q + b * 32;
        const uint8_t *qs = w + qs_at + (five ? 4 : 0);
        uint32_t qh = five ? le32_at(w + qs_at) : 0;
        int32_t isum = dtype == S1C_Q5_0 ? -16 * xq->s[b] : 0;
        for (int i = 0; i < 32; i++) {
            int q = (i < 16 ? qs[i] & 15 : qs[i - 16] >> 4) | (int)((qh >> i) & 1) << 4;
            isum += q * x[i];
        }
        s = fmaf((float)isum, f16_at(w) * xq->d[b], s);
        if (has_min) s = fmaf(f16_at(w + 2), -xq->m[b], s); /* -m[b] = xd * xs */
    }
    return s;
}

/* Q4_K (144-byte super-blocks) or Q5_K (176): f16 d, f16 dmin, 12 bytes of scales, (Q5_K: 32
 * bytes of fifth bits), 128 bytes of nibbles; sub-block j takes the low (j even) or high (j odd)
 * nibbles of bytes 32 (j / 2) .. + 31, and Q5_K its fifth bit from bit j of qh[l]. */
static float dot_q45_k(const uint8_t *w, bool q5, const kern_q8x *xq, size_t b0, int nsb) {
    float s = 0.0f;
    for (int sb = 0; sb < nsb; sb++, w += q5 ? 176 : 144) {
        float d = f16_at(w), dmin = f16_at(w + 2);
        const uint8_t *sc = w + 4, *qh = w + 16, *qs = w + (q5 ? 48 : 16);
        for (int j = 0; j < 8; j++) {
            size_t b = b0 + (size_t)sb * 8 + (size_t)j;
            const int8_t *x = xq->q + b * 32;
            const uint8_t *q = qs + 32 * (j / 2);
            int shift = 4 * (j & 1), scj, mj;
            s1c_q4k_scale_min(j, sc, &scj, &mj);
            int32_t isum = 0;
            for (int l = 0; l < 32; l++) {
                int v = (q[l] >> shift) & 15;
                if (q5) v |= ((qh[l] >> j) & 1) << 4;
                isum += v * x[l];
            }
            s = fmaf((float)isum, d * (float)scj * xq->d[b], s);
            s = fmaf(dmin * (float)mj, xq->m[b], s); /* m[b] = -(xd * xs) */
        }
    }
    return s;
}

/* Q6_K (210-byte super-blocks): 128 bytes of low nibbles, 64 of 2-bit highs, 16 int8 scales
 * (one per 16 elements), f16 d. 32-block g of half h (b = 4h + g) reads, for l < 32, the low
 * (g < 2) or high nibble of ql[64h + l + 32 (g & 1)] and bits 2g, 2g+1 of qh[32h + l]. */
static float dot_q6_k(const uint8_t *w, const kern_q8x *xq, size_t b0, int nsb) {
    float s = 0.0f;
    for (int sb = 0; sb < nsb; sb++, w += 210) {
        const int8_t *sc = (const int8_t *)(w + 192);
        float d = f16_at(w + 208);
        for (int j = 0; j < 8; j++) {
            size_t b = b0 + (size_t)sb * 8 + (size_t)j;
            const int8_t *x = xq->q + b * 32;
            int h = j / 4, g = j % 4;
            const uint8_t *L = w + 64 * h + 32 * (g & 1), *H = w + 128 + 32 * h;
            int32_t ia = 0, ib = 0;
            for (int l = 0; l < 32; l++) {
                int q = ((g < 2 ? L[l] & 15 : L[l] >> 4) | ((H[l] >> (2 * g)) & 3) << 4) - 32;
                if (l < 16) ia += q * x[l];
                else ib += q * x[l];
            }
            int32_t isum = sc[2 * j] * ia + sc[2 * j + 1] * ib;
            s = fmaf((float)isum, d * xq->d[b], s);
        }
    }
    return s;
}

void kern_ref_matmul_q_rows(float *out, const kern_q8x *xq, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1) {
    if (kern_is_kquant_dtype(dtype)) {
        int nsb = n / 256;
        size_t row_bytes = (size_t)nsb * (dtype == S1C_Q4_K ? 144 : dtype == S1C_Q5_K ? 176 : 210);
        for (int i = i0; i < i1; i++) {
            const uint8_t *wr = (const uint8_t *)w + (size_t)i * row_bytes;
            for (int t = 0; t < n_rows; t++) {
                size_t b0 = (size_t)t * (size_t)(n / 32);
                out[(size_t)t * d + i] = dtype == S1C_Q6_K ? dot_q6_k(wr, xq, b0, nsb) : dot_q45_k(wr, dtype == S1C_Q5_K, xq, b0, nsb);
            }
        }
        return;
    }
    int nb = n / 32;
    if (kern_is_q5x_dtype(dtype)) {
        size_t row_bytes = (size_t)nb * (size_t)s1c_dtype_type_size(dtype);
        for (int i = i0; i < i1; i++)
            for (int t = 0; t < n_rows; t++)
                out[(size_t)t * d + i] = dot_q5x((const uint8_t *)w + (size_t)i * row_bytes, dtype, xq, (size_t)t * (size_t)nb, nb);
        return;
    }
    size_t row_bytes = (size_t)nb * (dtype == S1C_Q8_0 ? 34 : 18);
    for (int i = i0; i < i1; i++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)i * row_bytes;
        for (int t = 0; t < n_rows; t++) {
            const int8_t *q = xq->q + (size_t)t * n;
            const float *xd = xq->d + (size_t)t * nb;
            out[(size_t)t * d + i] = dtype == S1C_Q8_0 ? dot_q8_0(wr, q, xd, nb) : dot_q4_0(wr, q, xd, nb);
        }
    }
}
