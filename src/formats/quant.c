/* GGML block quantization: dequantization of the common block types to f32, and the
 * reference (scalar, round-to-nearest) quantizers for Q8_0 and Q4_0.
 *
 * Block layouts follow ggml (ggml-common.h / ggml-quants.c); every multi-byte field is
 * little-endian, scales are IEEE half precision. Results are exact: each element is the
 * product ggml's reference dequantizer computes, in the same f32 arithmetic. */
#include <math.h>
#include <string.h>

#include "s1c/formats.h"

#define QK 32   /* elements per block of the *_0 / *_1 types */
#define QK_K 256 /* elements per super-block of the K-quants */

static inline float h2f(const uint8_t *p) { return s1c_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }
static inline void f2h(uint8_t *p, float f) {
    uint16_t h = s1c_f32_to_f16(f);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* ---------------------------------------------------------------- 32-element blocks */

/* Q4_0: f16 d, 16 bytes of nibbles; element j (< 16) is the low nibble of byte j, element
 * j + 16 its high nibble; value = (q - 8) * d. */
static void deq_q4_0(float *y, const uint8_t *b) {
    float d = h2f(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < QK / 2; j++) {
        y[j] = (float)((qs[j] & 0x0F) - 8) * d;
        y[j + QK / 2] = (float)((qs[j] >> 4) - 8) * d;
    }
}

/* Q4_1: f16 d, f16 m, nibbles as Q4_0; value = q * d + m. */
static void deq_q4_1(float *y, const uint8_t *b) {
    float d = h2f(b), m = h2f(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < QK / 2; j++) {
        y[j] = (float)(qs[j] & 0x0F) * d + m;
        y[j + QK / 2] = (float)(qs[j] >> 4) * d + m;
    }
}

static inline uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* Q5_0: f16 d, 32 high bits (bit j = 5th bit of element j), nibbles as Q4_0;
 * value = (q - 16) * d. */
static void deq_q5_0(float *y, const uint8_t *b) {
    float d = h2f(b);
    uint32_t qh = le32(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < QK / 2; j++) {
        int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = (float)(((qs[j] & 0x0F) | h0) - 16) * d;
        y[j + QK / 2] = (float)(((qs[j] >> 4) | h1) - 16) * d;
    }
}

/* Q5_1: f16 d, f16 m, high bits and nibbles as Q5_0; value = q * d + m. */
static void deq_q5_1(float *y, const uint8_t *b) {
    float d = h2f(b), m = h2f(b + 2);
    uint32_t qh = le32(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < QK / 2; j++) {
        int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = (float)((qs[j] & 0x0F) | h0) * d + m;
        y[j + QK / 2] = (float)((qs[j] >> 4) | h1) * d + m;
    }
}

/* Q8_0: f16 d, 32 signed bytes; value = q * d. */
static void deq_q8_0(float *y, const uint8_t *b) {
    float d = h2f(b);
    for (int j = 0; j < QK; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

/* ---------------------------------------------------------------- K-quants (256 elements) */

/* Q2_K: 16 bytes of scales (low nibble: scale, high nibble: min, one per 16 elements),
 * 64 bytes of 2-bit values, f16 d, f16 dmin. Each 128-element half reads 32 bytes of qs:
 * element 32*j + l of the half is bits 2j..2j+1 of qs[l]. value = d*sc*q - dmin*m. */
static void deq_q2_k(float *y, const uint8_t *b) {
    const uint8_t *sc = b, *qs = b + 16;
    float d = h2f(b + 80), dmin = h2f(b + 82);
    for (int e = 0; e < QK_K; e++) {
        int half = e / 128, r = e % 128, j = r / 32, l = r % 32;
        int q = (qs[half * 32 + l] >> (2 * j)) & 3;
        uint8_t s = sc[e / 16];
        y[e] = d * (float)(s & 0x0F) * (float)q - dmin * (float)(s >> 4);
    }
}

/* Q3_K: 32 bytes of high-bit masks, 64 bytes of 2-bit values, 12 bytes holding sixteen
 * 6-bit scales, f16 d. Scale s: low 4 bits from byte s (s < 8) or the high nibble of byte
 * s - 8, top 2 bits from byte 8 + s % 4 at shift 2 * (s / 4); signed as scale - 32.
 * Low bits as Q2_K; element e's high bit is bit e / 32 of hmask[e % 32], and a clear high
 * bit subtracts 4. value = d * (scale - 32) * q. */
static void deq_q3_k(float *y, const uint8_t *b) {
    const uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
    float d = h2f(b + 108);
    int scales[16];
    for (int s = 0; s < 16; s++) {
        int lo = s < 8 ? sc[s] & 0x0F : sc[s - 8] >> 4;
        int hi = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
        scales[s] = (lo | hi << 4) - 32;
    }
    for (int e = 0; e < QK_K; e++) {
        int half = e / 128, r = e % 128, j = r / 32, l = r % 32;
        int q = (qs[half * 32 + l] >> (2 * j)) & 3;
        if (!((hm[e % 32] >> (e / 32)) & 1)) q -= 4;
        y[e] = d * (float)scales[e / 16] * (float)q;
    }
}

/* The 6-bit scale and min of sub-block j (0..7) of Q4_K/Q5_K from their 12 packed bytes. */
static void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q4_K: f16 d, f16 dmin, 12 bytes of scales/mins (8 sub-blocks of 32), 128 bytes of
 * nibbles: each 64 elements read 32 bytes, low nibbles first then high nibbles.
 * value = d*sc*q - dmin*m. */
static void deq_q4_k(float *y, const uint8_t *b) {
    float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t *sc = b + 4, *qs = b + 16;
    for (int e = 0; e < QK_K; e++) {
        int chunk = e / 64, r = e % 64, sub = e / 32;
        int s, m;
        scale_min_k4(sub, sc, &s, &m);
        int q = r < 32 ? qs[chunk * 32 + r] & 0x0F : qs[chunk * 32 + r - 32] >> 4;
        y[e] = d * (float)s * (float)q - dmin * (float)m;
    }
}

/* Q5_K: as Q4_K plus 32 bytes of fifth bits: element e's is bit e / 32 of qh[e % 32]. */
static void deq_q5_k(float *y, const uint8_t *b) {
    float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t *sc = b + 4, *qh = b + 16, *qs = b + 48;
    for (int e = 0; e < QK_K; e++) {
        int chunk = e / 64, r = e % 64, sub = e / 32;
        int s, m;
        scale_min_k4(sub, sc, &s, &m);
        int q = r < 32 ? qs[chunk * 32 + r] & 0x0F : qs[chunk * 32 + r - 32] >> 4;
        q |= ((qh[e % 32] >> sub) & 1) << 4;
        y[e] = d * (float)s * (float)q - dmin * (float)m;
    }
}

/* Q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 signed 8-bit scales (one per
 * 16 elements), f16 d. In each 128-element half (ql += 64, qh += 32): for l < 32, elements
 * l, l+32, l+64, l+96 take the low nibble of ql[l], of ql[l+32], the high nibble of ql[l],
 * of ql[l+32], and bits 0-1, 2-3, 4-5, 6-7 of qh[l]. value = d * scale * (q - 32). */
static void deq_q6_k(float *y, const uint8_t *b) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = h2f(b + 208);
    for (int e = 0; e < QK_K; e++) {
        int half = e / 128, r = e % 128, g = r / 32, l = r % 32;
        const uint8_t *L = ql + half * 64, *H = qh + half * 32;
        int lo = g == 0 ? L[l] & 0x0F : g == 1 ? L[l + 32] & 0x0F : g == 2 ? L[l] >> 4 : L[l + 32] >> 4;
        int q = (lo | ((H[l] >> (2 * g)) & 3) << 4) - 32;
        y[e] = d * (float)sc[e / 16] * (float)q;
    }
}

typedef void (*deq_fn)(float *, const uint8_t *);

static deq_fn deq_of(int dtype) {
    switch (dtype) {
    case S1C_Q4_0: return deq_q4_0;
    case S1C_Q4_1: return deq_q4_1;
    case S1C_Q5_0: return deq_q5_0;
    case S1C_Q5_1: return deq_q5_1;
    case S1C_Q8_0: return deq_q8_0;
    case S1C_Q2_K: return deq_q2_k;
    case S1C_Q3_K: return deq_q3_k;
    case S1C_Q4_K: return deq_q4_k;
    case S1C_Q5_K: return deq_q5_k;
    case S1C_Q6_K: return deq_q6_k;
    default: return NULL;
    }
}

bool s1c_dtype_is_quant(int dtype) { return deq_of(dtype) != NULL; }

bool s1c_dtype_can_dequantize(int dtype) { return s1c_dtype_is_float(dtype) || deq_of(dtype) != NULL; }

int s1c_dequantize(float *dst, const void *src, int dtype, uint64_t n, s1c_err *err) {
    if (s1c_dtype_is_float(dtype)) return s1c_to_f32(dst, src, dtype, n, err);
    deq_fn f = deq_of(dtype);
    const char *name = s1c_dtype_name(dtype);
    if (!f) return s1c_fail(err, "cannot dequantize type %s", name ? name : "?");
    uint64_t bs = (uint64_t)s1c_dtype_block_size(dtype), ts = (uint64_t)s1c_dtype_type_size(dtype);
    if (n % bs != 0) return s1c_fail(err, "%llu elements are not a whole number of %s blocks of %llu", (unsigned long long)n, name, (unsigned long long)bs);
    const uint8_t *p = src;
    for (uint64_t i = 0; i < n / bs; i++) f(dst + i * bs, p + i * ts);
    return 0;
}

/* ---------------------------------------------------------------- quantizers */

/* ggml's quantize_row_q8_0_ref: d = max|x| / 127, q = round(x / d) (halves away from 0). */
static void q_q8_0(uint8_t *b, const float *x) {
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    f2h(b, d);
    for (int j = 0; j < QK; j++) b[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

/* ggml's quantize_row_q4_0_ref: the element of largest magnitude (the first one on ties)
 * maps to -8: d = max / -8, q = min(15, trunc(x / d + 8.5)). */
static void q_q4_0(uint8_t *b, const float *x) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK; j++)
        if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
    float d = max / -8.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    f2h(b, d);
    for (int j = 0; j < QK / 2; j++) {
        float v0 = x[j] * id + 8.5f, v1 = x[j + QK / 2] * id + 8.5f;
        int q0 = (int)(int8_t)v0, q1 = (int)(int8_t)v1;
        if (q0 > 15) q0 = 15;
        if (q1 > 15) q1 = 15;
        b[2 + j] = (uint8_t)(q0 | q1 << 4);
    }
}

int s1c_quantize(void *dst, const float *src, int dtype, uint64_t n, s1c_err *err) {
    uint8_t *out = dst;
    switch (dtype) {
    case S1C_F32: memcpy(dst, src, n * sizeof(float)); return 0;
    case S1C_F16:
        for (uint64_t i = 0; i < n; i++) { uint16_t h = s1c_f32_to_f16(src[i]); memcpy(out + 2 * i, &h, 2); }
        return 0;
    case S1C_BF16:
        for (uint64_t i = 0; i < n; i++) { uint16_t h = s1c_f32_to_bf16(src[i]); memcpy(out + 2 * i, &h, 2); }
        return 0;
    case S1C_Q8_0: case S1C_Q4_0: {
        if (n % QK != 0) return s1c_fail(err, "%llu elements are not a whole number of %s blocks of 32", (unsigned long long)n, s1c_dtype_name(dtype));
        uint64_t ts = (uint64_t)s1c_dtype_type_size(dtype);
        for (uint64_t i = 0; i < n / QK; i++) (dtype == S1C_Q8_0 ? q_q8_0 : q_q4_0)(out + i * ts, src + i * QK);
        return 0;
    }
    default: {
        const char *name = s1c_dtype_name(dtype);
        return s1c_fail(err, "cannot quantize to %s (f32, f16, bf16, q8_0 and q4_0 are supported)", name ? name : "?");
    }
    }
}
