/* GGML block quantization: dequantization of the common block types to f32, and ggml's
 * reference quantizers (llama-quantize without an importance matrix) for Q8_0, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q4_K, Q5_K and Q6_K.
 *
 * Block layouts follow ggml (ggml-common.h / ggml-quants.c); every multi-byte field is
 * little-endian, scales are IEEE half precision. Results are exact: each element is the
 * product ggml's reference dequantizer computes, in the same f32 arithmetic. */
#include <float.h>
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

/* Q4_K/Q5_K: sub-block j's 6-bit scale and min from the 12 packed bytes (formats.h). */
void s1c_q4k_scale_min(int j, const uint8_t *q, int *sc, int *m) {
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
        s1c_q4k_scale_min(sub, sc, &s, &m);
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
        s1c_q4k_scale_min(sub, sc, &s, &m);
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

/* ---------------------------------------------------------------- quantizers
 *
 * Every quantizer below reproduces ggml's quantize_row_*_ref (what llama-quantize runs when
 * no importance matrix is given) bit for bit: the same f32 operations in the same order, the
 * same rounding and the same float-to-integer conversions. That is why some expressions keep
 * an order or a cast that looks arbitrary: changing it changes the bytes. The file is built
 * as ISO C (no FMA contraction), as ggml's generic x86-64 build is. */

/* Round to nearest, ties to even, the way ggml's nearest_int does it: adding 1.5 * 2^23 lets
 * the f32 adder do the rounding, and the integer sits in the low mantissa bits. Exact for
 * |v| < 2^22 (always the case for finite block data); inf and NaN give the same (meaningless
 * but deterministic) numbers as in ggml, so degenerate blocks still match byte for byte. */
static inline int round_even(float v) {
    float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* v limited to lo..hi (lo <= hi); two plain min/max steps, so loops using it vectorize */
static inline int clampi(int v, int lo, int hi) {
    int t = v > hi ? hi : v;
    return t < lo ? lo : t;
}

/* ggml's quantize_row_q8_0_ref: d = max|x| / 127, q = round(x / d) (halves away from 0). */
static void q_q8_0(uint8_t *b, const float *x) {
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]); /* ggml's MAX, not fmaxf: a NaN propagates */
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    f2h(b, d);
    for (int j = 0; j < QK; j++) b[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

/* The element of largest magnitude, with its sign (the first one on ties): Q4_0 and Q5_0
 * map it to the most negative code, so the code range is used asymmetrically on purpose. */
static float signed_absmax(const float *x) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK; j++)
        if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
    return max;
}

/* ggml's quantize_row_q4_0_ref: d = max / -8, q = min(15, trunc(x / d + 8.5)). */
static void q_q4_0(uint8_t *b, const float *x) {
    float d = signed_absmax(x) / -8.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    f2h(b, d);
    for (int j = 0; j < QK / 2; j++) {
        int q0 = (int8_t)(x[j] * id + 8.5f), q1 = (int8_t)(x[j + QK / 2] * id + 8.5f);
        b[2 + j] = (uint8_t)((q0 > 15 ? 15 : q0) | (q1 > 15 ? 15 : q1) << 4);
    }
}

/* ggml's quantize_row_q5_0_ref: as Q4_0 with 32 levels: d = max / -16,
 * q = min(31, trunc(x / d + 16.5)); the fifth bits go to a 32-bit mask. */
static void q_q5_0(uint8_t *b, const float *x) {
    float d = signed_absmax(x) / -16.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    f2h(b, d);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
        int q0 = (int8_t)(x[j] * id + 16.5f), q1 = (int8_t)(x[j + QK / 2] * id + 16.5f);
        q0 = q0 > 31 ? 31 : q0;
        q1 = q1 > 31 ? 31 : q1;
        b[6 + j] = (uint8_t)((q0 & 0x0F) | (q1 & 0x0F) << 4);
        qh |= (uint32_t)((q0 >> 4) & 1) << j | (uint32_t)((q1 >> 4) & 1) << (j + QK / 2);
    }
    for (int k = 0; k < 4; k++) b[2 + k] = (uint8_t)(qh >> (8 * k));
}

/* The min and max of a 32-element block (Q4_1, Q5_1 store the range, not a sign). */
static void block_range(const float *x, float *lo, float *hi) {
    float mn = FLT_MAX, mx = -FLT_MAX;
    for (int j = 0; j < QK; j++) {
        if (x[j] < mn) mn = x[j];
        if (x[j] > mx) mx = x[j];
    }
    *lo = mn;
    *hi = mx;
}

/* ggml's quantize_row_q4_1_ref: d = (max - min) / 15, m = min,
 * q = min(15, trunc((x - min) / d + 0.5)). */
static void q_q4_1(uint8_t *b, const float *x) {
    float mn, mx;
    block_range(x, &mn, &mx);
    float d = (mx - mn) / 15.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    f2h(b, d);
    f2h(b + 2, mn);
    for (int j = 0; j < QK / 2; j++) {
        int q0 = (int8_t)((x[j] - mn) * id + 0.5f), q1 = (int8_t)((x[j + QK / 2] - mn) * id + 0.5f);
        b[4 + j] = (uint8_t)((q0 > 15 ? 15 : q0) | (q1 > 15 ? 15 : q1) << 4);
    }
}

/* ggml's quantize_row_q5_1_ref: d = (max - min) / 31, m = min, q = trunc((x - min) / d + 0.5)
 * (no clamp in ggml: a 32 from rounding keeps only its low five bits, as there). */
static void q_q5_1(uint8_t *b, const float *x) {
    float mn, mx;
    block_range(x, &mn, &mx);
    float d = (mx - mn) / 31.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    f2h(b, d);
    f2h(b + 2, mn);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
        int q0 = (uint8_t)((x[j] - mn) * id + 0.5f), q1 = (uint8_t)((x[j + QK / 2] - mn) * id + 0.5f);
        b[8 + j] = (uint8_t)((q0 & 0x0F) | (q1 & 0x0F) << 4);
        qh |= (uint32_t)((q0 >> 4) & 1) << j | (uint32_t)((q1 >> 4) & 1) << (j + QK / 2);
    }
    for (int k = 0; k < 4; k++) b[4 + k] = (uint8_t)(qh >> (8 * k));
}

/* ---------------------------------------------------------------- K-quant quantizers */

/* ggml's make_qkx2_quants, for four 32-element sub-blocks at once: each sub-block is fitted
 * as x ~ scale * L + min with L in 0..nmax and min <= 0, minimizing the error weighted by
 * w = |x| + rms(sub-block). Start from the plain min/max fit, then try nstep + 1 stretched
 * grids (iscale = (nmax + rmin + rdelta * k) / (max - min), with the min of the best fit so
 * far), solve the weighted least squares for scale and min on each grid's codes and keep a
 * better one. Outputs scale[j], neg_min[j] = -min (stored positive) and the codes
 * L[32 * j + i] for j = 0..3.
 *
 * Why four lanes: this search is nearly all of a K-quant's time, and each sub-block's steps
 * depend on the previous ones (min moves), but sub-blocks are independent. Lane j of every
 * vector operation below is the f32 operation ggml's scalar loop does for sub-block j, in the
 * same order (IEEE arithmetic is the same in a vector lane), so the bytes do not change; the
 * data-dependent branches become masks (select). GCC/Clang vector extensions, 16 bytes: SSE2
 * on any x86-64, NEON on arm64. */
enum { NL = 4, SUB = 32 };
typedef float vf4 __attribute__((vector_size(16)));
typedef int32_t vi4 __attribute__((vector_size(16)));

/* mask ? a : b, lane by lane, bits copied exactly */
static inline vf4 sel(vi4 mask, vf4 a, vf4 b) { return (vf4)(((vi4)a & mask) | ((vi4)b & ~mask)); }
static inline vi4 seli(vi4 mask, vi4 a, vi4 b) { return (a & mask) | (b & ~mask); }
/* round_even, lane by lane */
static inline vi4 round_even4(vf4 v) { return ((vi4)(v + 12582912.0f) & 0x007fffff) - 0x00400000; }
static inline vi4 clamp4(vi4 v, int hi) {
    v = seli(v > hi, (vi4){hi, hi, hi, hi}, v);
    return seli(v < 0, (vi4){0}, v);
}
static inline vf4 tof(vi4 v) { return __builtin_convertvector(v, vf4); }

static void fit_scale_min4(const float *x, int nmax, float rmin, float rdelta, int nstep, uint8_t *L, float *scale,
                           float *neg_min) {
    vf4 xt[SUB], wt[SUB], sum_x2 = {0}, av;
    vi4 lb[SUB], lt[SUB];                        /* best and trial codes */
    for (int i = 0; i < SUB; i++) {
        for (int j = 0; j < NL; j++) xt[i][j] = x[SUB * j + i];
        sum_x2 += xt[i] * xt[i];
    }
    for (int j = 0; j < NL; j++) av[j] = sqrtf(sum_x2[j] / 32);
    for (int i = 0; i < SUB; i++) wt[i] = av + (vf4)((vi4)xt[i] & 0x7fffffff); /* + |x| */
    vf4 mn = xt[0], mx = xt[0], sw = wt[0], sx = sw * xt[0];
    for (int i = 1; i < SUB; i++) {
        mn = sel(xt[i] < mn, xt[i], mn);
        mx = sel(xt[i] > mx, xt[i], mx);
        sw += wt[i];
        sx += wt[i] * xt[i];
    }
    mn = sel(mn > 0, (vf4){0}, mn);
    vi4 flat = mx == mn; /* ggml returns all codes 0 and scale 0 right away */
    vf4 isc = (float)nmax / (mx - mn), sc = 1 / isc, best = {0};
    for (int i = 0; i < SUB; i++) {
        lb[i] = clamp4(round_even4(isc * (xt[i] - mn)), nmax);
        vf4 diff = sc * tof(lb[i]) + mn - xt[i];
        best += wt[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        vf4 sl = {0}, sl2 = {0}, sxl = {0}, err = {0};
        isc = (rmin + rdelta * is + nmax) / (mx - mn);
        for (int i = 0; i < SUB; i++) {
            lt[i] = clamp4(round_even4(isc * (xt[i] - mn)), nmax);
            vf4 l = tof(lt[i]);
            sl += wt[i] * l;
            sl2 += wt[i] * l * l;
            sxl += wt[i] * l * xt[i];
        }
        vf4 D = sw * sl2 - sl * sl;
        vf4 ts = (sw * sxl - sx * sl) / D, tm = (sl2 * sx - sl * sxl) / D;
        vi4 pos = tm > 0; /* the offset may only lower values: refit the scale alone */
        tm = sel(pos, (vf4){0}, tm);
        ts = sel(pos, sxl / sl2, ts);
        for (int i = 0; i < SUB; i++) {
            vf4 diff = ts * tof(lt[i]) + tm - xt[i];
            err += wt[i] * (diff * diff);
        }
        vi4 ok = (D > 0) & (err < best);
        for (int i = 0; i < SUB; i++) lb[i] = seli(ok, lt[i], lb[i]);
        best = sel(ok, err, best);
        sc = sel(ok, ts, sc);
        mn = sel(ok, tm, mn);
    }
    /* a flat lane never accepts a step (its D is 0), so mn is still its min */
    for (int j = 0; j < NL; j++) {
        scale[j] = flat[j] ? 0.0f : sc[j];
        neg_min[j] = -mn[j];
        for (int i = 0; i < SUB; i++) L[SUB * j + i] = flat[j] ? 0 : (uint8_t)lb[i][j];
    }
}

/* The 12 bytes of eight 6-bit scales and mins of Q4_K/Q5_K (the inverse of s1c_q4k_scale_min):
 * sub-blocks 0-3 take bytes 0-3 (scale) and 4-7 (min) whole; 4-7 put their low nibbles in
 * bytes 8-11 and their top two bits in the spare top bits of bytes 0-7. */
static void pack_scales_k4(uint8_t *q, const uint8_t *ls, const uint8_t *lm) {
    memset(q, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            q[j] = ls[j];
            q[j + 4] = lm[j];
        } else {
            q[j + 4] = (uint8_t)((ls[j] & 0x0F) | (lm[j] & 0x0F) << 4);
            q[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            q[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* The common part of ggml's quantize_row_q4_K_ref / q5_K_ref for one 256-element super-block:
 * fit each 32-element sub-block (weights |x| + rms of the sub-block), quantize the eight
 * scales and mins to 6 bits against their maxima (d, dmin as f16 into hdr[0..3], the packed
 * 6-bit values into hdr[4..15]), then requantize every element against the scale and min as
 * they will be decoded. L receives the codes 0..nmax. */
static void kquant_fit(uint8_t *hdr, const float *x, int nmax, float rmin, int nstep, uint8_t *L) {
    float scales[8], mins[8], max_scale = 0, max_min = 0;
    fit_scale_min4(x, nmax, rmin, 0.1f, nstep, L, scales, mins);
    fit_scale_min4(x + 4 * SUB, nmax, rmin, 0.1f, nstep, L + 4 * SUB, scales + 4, mins + 4);
    for (int j = 0; j < 8; j++) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f, inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        /* the byte truncation before the clamp is ggml's (uint8_t variables) */
        uint8_t a = (uint8_t)round_even(inv_scale * scales[j]), m = (uint8_t)round_even(inv_min * mins[j]);
        ls[j] = a < 63 ? a : 63;
        lm[j] = m < 63 ? m : 63;
    }
    f2h(hdr, max_scale / 63.f);
    f2h(hdr + 2, max_min / 63.f);
    pack_scales_k4(hdr + 4, ls, lm);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        s1c_q4k_scale_min(j, hdr + 4, &sc, &m);
        const float d = h2f(hdr) * (float)sc;
        if (!d) continue; /* a zero scale keeps the codes of the fit */
        const float dm = h2f(hdr + 2) * (float)m;
        for (int i = 0; i < 32; i++) L[32 * j + i] = (uint8_t)clampi(round_even((x[32 * j + i] + dm) / d), 0, nmax);
    }
}

/* ggml's quantize_row_q4_K_ref: codes 0..15, each 64 elements as 32 bytes (first 32 in the
 * low nibbles, next 32 in the high nibbles). */
static void q_q4_k(uint8_t *b, const float *x) {
    uint8_t L[QK_K];
    kquant_fit(b, x, 15, -1.0f, 20, L);
    uint8_t *q = b + 16;
    for (int j = 0; j < QK_K; j += 64, q += 32)
        for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | L[j + l + 32] << 4);
}

/* ggml's quantize_row_q5_K_ref: codes 0..31; low nibbles as Q4_K, the fifth bit of element
 * 32 * s + l is bit s of qh[l]. */
static void q_q5_k(uint8_t *b, const float *x) {
    uint8_t L[QK_K];
    kquant_fit(b, x, 31, -0.5f, 15, L);
    uint8_t *qh = b + 16, *ql = b + 48;
    memset(qh, 0, 32);
    for (int j = 0; j < QK_K; j += 64, ql += 32)
        for (int l = 0; l < 32; l++) {
            int a = L[j + l], c = L[j + l + 32];
            qh[l] |= (uint8_t)((a >> 4) << (j / 32) | (c >> 4) << (j / 32 + 1));
            ql[l] = (uint8_t)((a & 0x0F) | (c & 0x0F) << 4);
        }
}

/* ggml's make_qx_quants(16, 32, x, L, rmse_type 1, no weights), Q6_K's per-16 fit, for four
 * 16-element groups at once (lanes, as fit_scale_min4): a symmetric scale with codes -32..31
 * (the largest-magnitude element at -32), refined by trying iscale = -(32 + 0.1 k) / max for
 * k = -9..9 and keeping the best x^2-weighted least squares fit. Writes scale[g] and
 * L[16 * g + i] = code + 32. */
static void fit_symmetric16x4(const float *x, int8_t *L, float *scale) {
    enum { N = 16, NMAX = 32 };
    vf4 xt[N], w[N], max = {0}, amax = {0};
    vi4 lb[N], lt[N];
    for (int i = 0; i < N; i++) {
        for (int g = 0; g < NL; g++) xt[i][g] = x[N * g + i];
        vf4 ax = (vf4)((vi4)xt[i] & 0x7fffffff);
        vi4 bigger = ax > amax;
        amax = sel(bigger, ax, amax);
        max = sel(bigger, xt[i], max);
        w[i] = xt[i] * xt[i];
    }
    vf4 iscale = -NMAX / max, sumlx = {0}, suml2 = {0};
    for (int i = 0; i < N; i++) {
        lb[i] = round_even4(iscale * xt[i]);
        lb[i] = seli(lb[i] > NMAX - 1, (vi4){NMAX - 1, NMAX - 1, NMAX - 1, NMAX - 1}, lb[i]);
        lb[i] = seli(lb[i] < -NMAX, (vi4){-NMAX, -NMAX, -NMAX, -NMAX}, lb[i]);
        vf4 l = tof(lb[i]);
        sumlx += w[i] * xt[i] * l;
        suml2 += w[i] * l * l;
    }
    vf4 sc = sel(suml2 != 0, sumlx / suml2, (vf4){0}), best = sc * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(NMAX + 0.1f * is) / max;
        sumlx = suml2 = (vf4){0};
        for (int i = 0; i < N; i++) {
            lt[i] = round_even4(iscale * xt[i]);
            lt[i] = seli(lt[i] > NMAX - 1, (vi4){NMAX - 1, NMAX - 1, NMAX - 1, NMAX - 1}, lt[i]);
            lt[i] = seli(lt[i] < -NMAX, (vi4){-NMAX, -NMAX, -NMAX, -NMAX}, lt[i]);
            vf4 l = tof(lt[i]);
            sumlx += w[i] * xt[i] * l;
            suml2 += w[i] * l * l;
        }
        vi4 ok = (suml2 > 0) & (sumlx * sumlx > best * suml2);
        for (int i = 0; i < N; i++) lb[i] = seli(ok, lt[i], lb[i]);
        sc = sel(ok, sumlx / suml2, sc);
        best = sel(ok, sc * sumlx, best);
    }
    for (int g = 0; g < NL; g++) {
        bool zero = amax[g] < 1e-15f; /* ggml's GROUP_MAX_EPS: treated as all zero */
        scale[g] = zero ? 0.0f : sc[g];
        for (int i = 0; i < N; i++) L[N * g + i] = zero ? 0 : (int8_t)(lb[i][g] + NMAX);
    }
}

/* ggml's quantize_row_q6_K_ref: sixteen per-16 scales quantized to int8 against the one of
 * largest magnitude (which maps to -128), d = that scale / -128 as f16, then every element
 * requantized to -32..31 against d * scale as decoded. Layout as deq_q6_k reads it. */
static void q_q6_k(uint8_t *b, const float *x) {
    int8_t L[QK_K];
    float scales[16], max_scale = 0, max_abs = 0;
    for (int ib = 0; ib < 16; ib += NL) fit_symmetric16x4(x + 16 * ib, L + 16 * ib, scales + ib);
    for (int ib = 0; ib < 16; ib++)
        if (fabsf(scales[ib]) > max_abs) { max_abs = fabsf(scales[ib]); max_scale = scales[ib]; }
    memset(b, 0, 210);
    if (max_abs < 1e-15f) return; /* an all-zero block: all bytes 0, d = +0 */
    int8_t *sc = (int8_t *)(b + 192);
    float iscale = -128.f / max_scale;
    f2h(b + 208, 1 / iscale);
    for (int ib = 0; ib < 16; ib++) {
        int v = round_even(iscale * scales[ib]);
        sc[ib] = (int8_t)(v < 127 ? v : 127);
    }
    for (int j = 0; j < 16; j++) {
        float d = h2f(b + 208) * sc[j];
        if (!d) continue; /* keeps the codes of the fit */
        for (int i = 0; i < 16; i++) L[16 * j + i] = (int8_t)(clampi(round_even(x[16 * j + i] / d), -32, 31) + 32);
    }
    uint8_t *ql = b, *qh = b + 128;
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32)
        for (int l = 0; l < 32; l++) {
            int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
            ql[l] = (uint8_t)((q1 & 0x0F) | (q3 & 0x0F) << 4);
            ql[l + 32] = (uint8_t)((q2 & 0x0F) | (q4 & 0x0F) << 4);
            qh[l] = (uint8_t)((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
        }
}

typedef void (*q_fn)(uint8_t *, const float *);

static q_fn q_of(int dtype) {
    switch (dtype) {
    case S1C_Q4_0: return q_q4_0;
    case S1C_Q4_1: return q_q4_1;
    case S1C_Q5_0: return q_q5_0;
    case S1C_Q5_1: return q_q5_1;
    case S1C_Q8_0: return q_q8_0;
    case S1C_Q4_K: return q_q4_k;
    case S1C_Q5_K: return q_q5_k;
    case S1C_Q6_K: return q_q6_k;
    default: return NULL;
    }
}

uint64_t s1c_first_nonfinite(const float *x, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return n;
}

bool s1c_dtype_can_quantize(int dtype) {
    return dtype == S1C_F32 || dtype == S1C_F16 || dtype == S1C_BF16 || q_of(dtype) != NULL;
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
    default: break;
    }
    q_fn f = q_of(dtype);
    const char *name = s1c_dtype_name(dtype);
    if (!f) return s1c_fail(err, "cannot quantize to %s (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k and q6_k are supported)", name ? name : "?");
    uint64_t bs = (uint64_t)s1c_dtype_block_size(dtype), ts = (uint64_t)s1c_dtype_type_size(dtype);
    if (n % bs != 0) return s1c_fail(err, "%llu elements are not a whole number of %s blocks of %llu", (unsigned long long)n, name, (unsigned long long)bs);
    uint64_t bad = s1c_first_nonfinite(src, n);
    if (bad < n) return s1c_fail(err, "element %llu is %g: a %s block cannot hold it", (unsigned long long)bad, (double)src[bad], name);
    for (uint64_t i = 0; i < n / bs; i++) f(out + i * ts, src + i * bs);
    return 0;
}
