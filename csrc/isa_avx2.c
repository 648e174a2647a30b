/* AVX2 path: 4-entry tables over 2 inputs looked up with vpermilps, 8 rows a vector, 4 vectors a table.
 *
 * Measured on a Zen 3 (4096 x 4096, M = 1, one thread): vpermilps over 2 bits took 0.39-0.41 ms against
 * 0.42-0.50 ms for vpermps over 3 bits, whose fewer lookups do not make up for its lane crossing; loading each
 * table once for all 32 rows instead of once per 8 was 1.2x faster; a bit-mask loop (vpsllvd + vblendvps per 8
 * inputs and row) took 1.3-1.6 ms. */
#include "hfb.h"

#if HFB_X86
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma,f16c")))

TARGET static void build_tables(const float *x, int64_t K, int64_t k0, int64_t nbytes, int kind, float *T) {
    /* Entry i of a pair's table is c(bit 0 of i) * a + c(bit 1 of i) * b, in both 128-bit halves. */
    float ca[8], cb[8];
    for (int i = 0; i < 8; i++) ca[i] = hfb_coefficient(kind, i & 1), cb[i] = hfb_coefficient(kind, i & 2);
    const __m256 sa = _mm256_loadu_ps(ca), sb = _mm256_loadu_ps(cb);
    for (int64_t p = 0; p < 4 * nbytes; p++) {
        int64_t k = k0 + 2 * p;
        float a = k < K ? x[k] : 0.0f, b = k + 1 < K ? x[k + 1] : 0.0f;
        _mm256_storeu_ps(T + 8 * p, _mm256_fmadd_ps(_mm256_set1_ps(b), sb, _mm256_mul_ps(_mm256_set1_ps(a), sa)));
    }
}

/* An empty asm that the next field's lookups depend on: without it GCC (12, -O1 and up) hoists all 64 lookups
 * of a dword column above the additions and spills most of them to the stack, 1.6x slower. */
#define ORDER() __asm__("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(v0), "+x"(v1), "+x"(v2), "+x"(v3))

#define LOOK(t, v, s) _mm256_permutevar_ps(t, _mm256_srli_epi32(v, s))

/* Fields f and f + 1 (bits 2f .. 2f + 3) of a dword column, for the 4 row vectors. */
#define FIELD_PAIR(f)                                                                     \
    do {                                                                                  \
        __m256 t0 = _mm256_loadu_ps(t + 8 * (f)), t1 = _mm256_loadu_ps(t + 8 * (f) + 8); \
        a0 = _mm256_add_ps(a0, _mm256_add_ps(LOOK(t0, v0, 2 * (f)), LOOK(t1, v0, 2 * (f) + 2))); \
        a1 = _mm256_add_ps(a1, _mm256_add_ps(LOOK(t0, v1, 2 * (f)), LOOK(t1, v1, 2 * (f) + 2))); \
        a2 = _mm256_add_ps(a2, _mm256_add_ps(LOOK(t0, v2, 2 * (f)), LOOK(t1, v2, 2 * (f) + 2))); \
        a3 = _mm256_add_ps(a3, _mm256_add_ps(LOOK(t0, v3, 2 * (f)), LOOK(t1, v3, 2 * (f) + 2))); \
        ORDER();                                                                          \
    } while (0)

/* Dword columns [c0, c1): 16 fields each. Kept apart from the byte loop below, which made GCC spill. */
TARGET static void lut_dwords(const uint32_t *wbuf, const float *T, int64_t c0, int64_t c1, float *acc) {
    __m256 a0 = _mm256_loadu_ps(acc), a1 = _mm256_loadu_ps(acc + 8);
    __m256 a2 = _mm256_loadu_ps(acc + 16), a3 = _mm256_loadu_ps(acc + 24);
    for (int64_t c = c0; c < c1; c++) {
        const __m256i *w = (const __m256i *)(wbuf + c * HFB_ROWS);
        __m256i v0 = _mm256_loadu_si256(w), v1 = _mm256_loadu_si256(w + 1);
        __m256i v2 = _mm256_loadu_si256(w + 2), v3 = _mm256_loadu_si256(w + 3);
        const float *t = T + 4 * c * HFB_TABLE_PER_BYTE;
        FIELD_PAIR(0); FIELD_PAIR(2); FIELD_PAIR(4); FIELD_PAIR(6);
        FIELD_PAIR(8); FIELD_PAIR(10); FIELD_PAIR(12); FIELD_PAIR(14);
    }
    _mm256_storeu_ps(acc, a0); _mm256_storeu_ps(acc + 8, a1);
    _mm256_storeu_ps(acc + 16, a2); _mm256_storeu_ps(acc + 24, a3);
}

/* Single bytes [b0, b1), where a scale group ends inside a dword (group sizes not a multiple of 32). */
TARGET static void lut_bytes(const uint32_t *wbuf, const float *T, int64_t b0, int64_t b1, float *acc) {
    __m256 a0 = _mm256_loadu_ps(acc), a1 = _mm256_loadu_ps(acc + 8);
    __m256 a2 = _mm256_loadu_ps(acc + 16), a3 = _mm256_loadu_ps(acc + 24);
    for (int64_t b = b0; b < b1; b++) {
        const __m256i *w = (const __m256i *)(wbuf + (b >> 2) * HFB_ROWS);
        __m128i s = _mm_cvtsi32_si128((int)(8 * (b & 3)));
        __m256i v0 = _mm256_srl_epi32(_mm256_loadu_si256(w), s), v1 = _mm256_srl_epi32(_mm256_loadu_si256(w + 1), s);
        __m256i v2 = _mm256_srl_epi32(_mm256_loadu_si256(w + 2), s), v3 = _mm256_srl_epi32(_mm256_loadu_si256(w + 3), s);
        const float *t = T + b * HFB_TABLE_PER_BYTE;
        FIELD_PAIR(0); FIELD_PAIR(2);
    }
    _mm256_storeu_ps(acc, a0); _mm256_storeu_ps(acc + 8, a1);
    _mm256_storeu_ps(acc + 16, a2); _mm256_storeu_ps(acc + 24, a3);
}

TARGET static void lut_row(const uint32_t *wbuf, const float *T, int64_t b0, int64_t b1, float *acc) {
    int64_t head = (b0 + 3) & ~(int64_t)3, tail = b1 & ~(int64_t)3;
    if (head >= tail) {
        lut_bytes(wbuf, T, b0, b1, acc);
        return;
    }
    if (b0 < head) lut_bytes(wbuf, T, b0, head, acc);
    lut_dwords(wbuf, T, head / 4, tail / 4, acc);
    if (tail < b1) lut_bytes(wbuf, T, tail, b1, acc);
}

TARGET static void lut_rows(const uint32_t *wbuf, const float *T, int64_t tstride, float *acc, int64_t astride,
                            int64_t m, int64_t b0, int64_t b1) {
    for (int64_t i = 0; i < m; i++) lut_row(wbuf, T + i * tstride, b0, b1, acc + i * astride);
}

TARGET static inline void transpose8(__m256i r[8]) {
    __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
    __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
    r[0] = _mm256_permute2x128_si256(u0, u4, 0x20); r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
    r[2] = _mm256_permute2x128_si256(u2, u6, 0x20); r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
    r[4] = _mm256_permute2x128_si256(u0, u4, 0x31); r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
    r[6] = _mm256_permute2x128_si256(u2, u6, 0x31); r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/* 8x8 dword transposes of 8 rows x 32 bytes; the scalar path takes the ragged edges (last rows of the matrix,
 * the end of a row), so no load passes the end of a row. */
TARGET void hfb_transpose_avx2(const uint8_t *rows, int64_t KB, int64_t nrows, int64_t c0, int64_t c1,
                               uint32_t *wbuf) {
    for (int64_t r0 = 0; r0 < HFB_ROWS; r0 += 8) {
        for (int64_t c = c0; c < c1; c += 8) {
            int64_t ncol = c1 - c < 8 ? c1 - c : 8;
            if (r0 + 8 > nrows || 4 * c + 32 > KB) {
                hfb_transpose_part(rows, KB, nrows, r0, r0 + 8, c0, c, c + ncol, wbuf);
                continue;
            }
            __m256i r[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_si256((const __m256i *)(rows + (r0 + i) * KB + 4 * c));
            transpose8(r);
            for (int64_t j = 0; j < ncol; j++) _mm256_storeu_si256((__m256i *)(wbuf + (c - c0 + j) * HFB_ROWS + r0), r[j]);
        }
    }
}

TARGET void hfb_dequant_avx2(const uint8_t *row, int64_t k0, int64_t k1, float s, float o, float *out) {
    /* Lane j gets bit j of the byte in its sign bit, which is all blendv looks at. */
    const __m256i to_sign = _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 plus = _mm256_set1_ps(o + s), minus = _mm256_set1_ps(o - s);
    for (int64_t k = k0; k < k1; k += 8) {
        __m256i bits = _mm256_sllv_epi32(_mm256_set1_epi32(row[k >> 3]), to_sign);
        __m256 w = _mm256_blendv_ps(minus, plus, _mm256_castsi256_ps(bits));
        if (k + 8 <= k1) {
            _mm256_storeu_ps(out + k, w);
        } else {
            __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(k1 - k)), lane);
            _mm256_maskstore_ps(out + k, keep, w);
        }
    }
}

TARGET void hfb_dequant_bf16_avx2(const uint8_t *row, int64_t k0, int64_t k1, uint16_t minus, uint16_t plus,
                                  uint16_t *out) {
    /* Lane j of 8 16-bit lanes is all ones where bit j of the byte is set. */
    const __m128i bit = _mm_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128);
    const __m128i lo = _mm_set1_epi16((short)minus), hi = _mm_set1_epi16((short)plus);
    int64_t k = k0;
    for (; k + 8 <= k1; k += 8) {
        __m128i set = _mm_cmpeq_epi16(_mm_and_si128(_mm_set1_epi16(row[k >> 3]), bit), bit);
        _mm_storeu_si128((__m128i *)(out + k), _mm_blendv_epi8(lo, hi, set));
    }
    for (; k < k1; k++) out[k] = (row[k >> 3] >> (k & 7)) & 1 ? plus : minus;
}

/* 8 groups of one row as float. */
TARGET static inline __m256 load8(const void *src, int dtype, int64_t at) {
    if (dtype == HFB_F32) return _mm256_loadu_ps((const float *)src + at);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)src + at));
    if (dtype == HFB_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* 8 rows x 8 groups at a time through the dword transpose; ragged edges one by one. */
TARGET void hfb_load_groups_avx2(const void *src, int dtype, int64_t G, int64_t row0, int64_t nrows, int64_t g0,
                                 int64_t g1, float *dst) {
    for (int64_t r0 = 0; r0 < HFB_ROWS; r0 += 8) {
        int64_t g = g0;
        for (; r0 + 8 <= nrows && g + 8 <= g1 + 1; g += 8) {
            __m256i v[8];
            for (int i = 0; i < 8; i++) v[i] = _mm256_castps_si256(load8(src, dtype, (row0 + r0 + i) * G + g));
            transpose8(v);
            for (int j = 0; j < 8; j++) _mm256_storeu_si256((__m256i *)(dst + (g - g0 + j) * HFB_ROWS + r0), v[j]);
        }
        for (; g <= g1; g++)
            for (int64_t r = r0; r < r0 + 8; r++)
                dst[(g - g0) * HFB_ROWS + r] = r < nrows ? hfb_to_f32(src, dtype, (row0 + r) * G + g) : 0.0f;
    }
}

TARGET void hfb_from_bf16_avx2(const uint16_t *src, int64_t n, float *dst) {
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
        _mm256_storeu_ps(dst + k, load8(src, HFB_BF16, k));
    for (; k < n; k++) dst[k] = hfb_to_f32(src, HFB_BF16, k);
}

/* hfb_f32_to_bf16, 8 at a time: round to nearest even on the bits, NaN kept quiet. */
TARGET void hfb_to_bf16_avx2(const float *src, int64_t n, uint16_t *dst) {
    const __m256i one = _mm256_set1_epi32(1), half = _mm256_set1_epi32(0x7fff), quiet = _mm256_set1_epi32(0x40);
    const __m256i magnitude = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256i b = _mm256_castps_si256(_mm256_loadu_ps(src + k)), high = _mm256_srli_epi32(b, 16);
        __m256i r = _mm256_srli_epi32(_mm256_add_epi32(b, _mm256_add_epi32(half, _mm256_and_si256(high, one))), 16);
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(b, magnitude), inf);
        r = _mm256_blendv_epi8(r, _mm256_or_si256(high, quiet), nan);
        /* packus works within 128-bit lanes: qwords 0 and 2 hold the 8 results in order. */
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
        _mm_storeu_si128((__m128i *)(dst + k), _mm256_castsi256_si128(packed));
    }
    for (; k < n; k++) dst[k] = hfb_f32_to_bf16(src[k]);
}

/* Int8 activations (hfb.h). */

TARGET void hfb_quantize_avx2(const float *x, int64_t K, int64_t KP, int8_t *q, float *scale, int32_t *qsum) {
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 vmax = _mm256_setzero_ps(), unordered = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 v = _mm256_loadu_ps(x + k);
        unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        vmax = _mm256_max_ps(vmax, _mm256_and_ps(v, magnitude));
    }
    float lanes[8], amax = 0.0f;
    _mm256_storeu_ps(lanes, vmax);
    int nan = _mm256_movemask_ps(unordered) != 0;
    for (int i = 0; i < 8; i++) amax = lanes[i] > amax ? lanes[i] : amax;
    for (int64_t t = k; t < K; t++) {
        float a = x[t] < 0.0f ? -x[t] : x[t];
        if (a != a) nan = 1;
        else if (a > amax) amax = a;
    }
    float s = nan ? hfb_nan() : amax / 127.0f;
    int32_t sum = 0;
    k = 0;
    if (s > 0.0f && s - s == 0.0f) {
        const __m256 vs = _mm256_set1_ps(s), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
        /* packs interleaves the 128-bit lanes; this puts the 8 dwords of 4 bytes back in order. */
        const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        __m256i vsum = _mm256_setzero_si256();
        for (; k + 32 <= K; k += 32) {
            __m256i r[4];
            for (int j = 0; j < 4; j++) {
                __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + k + 8 * j), vs);
                r[j] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi));
                vsum = _mm256_add_epi32(vsum, r[j]);
            }
            __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(r[0], r[1]), _mm256_packs_epi32(r[2], r[3]));
            _mm256_storeu_si256((__m256i *)(q + k), _mm256_permutevar8x32_epi32(bytes, order));
        }
        int32_t parts[8];
        _mm256_storeu_si256((__m256i *)parts, vsum);
        for (int i = 0; i < 8; i++) sum += parts[i];
        for (; k < K; k++) sum += q[k] = hfb_quantize_one(x[k], s);
    }
    memset(q + k, 0, (size_t)(KP - k));
    *scale = s;
    *qsum = sum;
}

/* Activation rows per pass over the signs, and dword columns whose 16-bit sums are added up before they are widened
 * to 32 bits: each column adds at most 4 * 2 * 254 to a 16-bit lane, 16 columns at most 32512. */
#define INT8_MR 2
#define INT8_FLUSH 16

/* 32 rows x mr activation rows of hfb_int8_ops.rows. Lanes are output rows, as in wbuf: the 8 bits of byte b of a
 * row's dword become two vectors of 0/1 bytes (vpshufb copies the byte to the 4 bytes of its lane, a mask keeps bit
 * j of byte j, vpminub makes it 0 or 1), and vpmaddubsw multiplies them with 4 broadcast int8 inputs. */
TARGET static inline __attribute__((always_inline)) void int8_tile_avx2(const uint32_t *wbuf, int64_t KD,
                                                                        const int8_t *q, int64_t qstride,
                                                                        const int mr, int32_t set[][HFB_ROWS]) {
    const __m256i low_bits = _mm256_set1_epi32(0x08040201), high_bits = _mm256_set1_epi32((int)0x80402010u);
    const __m256i one = _mm256_set1_epi8(1), pairs = _mm256_set1_epi16(1);
    /* Byte b of each dword to all 4 bytes of that dword (vpshufb indexes within 128-bit lanes). */
    const __m256i dwords = _mm256_setr_epi32(0, 0x04040404, 0x08080808, 0x0c0c0c0c, 0, 0x04040404, 0x08080808,
                                             0x0c0c0c0c);
    __m256i spread[4];
    for (int b = 0; b < 4; b++) spread[b] = _mm256_add_epi8(dwords, _mm256_set1_epi8((char)b));
    for (int i = 0; i < mr; i++) memset(set[i], 0, sizeof(set[i]));
    for (int64_t c0 = 0; c0 < KD; c0 += INT8_FLUSH) {
        int64_t c1 = c0 + INT8_FLUSH < KD ? c0 + INT8_FLUSH : KD;
        __m256i acc[INT8_MR][4];
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < 4; j++) acc[i][j] = _mm256_setzero_si256();
        for (int64_t c = c0; c < c1; c++) {
            const __m256i *w = (const __m256i *)(wbuf + c * HFB_ROWS);
#pragma GCC unroll 4
            for (int b = 0; b < 4; b++) {
                __m256i a_low[INT8_MR], a_high[INT8_MR];
                for (int i = 0; i < mr; i++) {
                    int32_t low, high;
                    memcpy(&low, q + i * qstride + 32 * c + 8 * b, 4);
                    memcpy(&high, q + i * qstride + 32 * c + 8 * b + 4, 4);
                    a_low[i] = _mm256_set1_epi32(low), a_high[i] = _mm256_set1_epi32(high);
                }
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) {
                    __m256i bytes = _mm256_shuffle_epi8(_mm256_loadu_si256(w + j), spread[b]);
                    __m256i wl = _mm256_min_epu8(_mm256_and_si256(bytes, low_bits), one);
                    __m256i wh = _mm256_min_epu8(_mm256_and_si256(bytes, high_bits), one);
                    for (int i = 0; i < mr; i++)
                        acc[i][j] = _mm256_add_epi16(acc[i][j], _mm256_add_epi16(_mm256_maddubs_epi16(wl, a_low[i]),
                                                                                 _mm256_maddubs_epi16(wh, a_high[i])));
                }
            }
        }
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < 4; j++) {
                __m256i *s = (__m256i *)(set[i] + 8 * j);
                _mm256_storeu_si256(s, _mm256_add_epi32(_mm256_loadu_si256(s), _mm256_madd_epi16(acc[i][j], pairs)));
            }
    }
}

TARGET static void int8_rows_avx2(const uint32_t *wbuf, int64_t KD, const int8_t *q, int64_t qstride, int64_t mt,
                                  const int32_t *qsum, const float *xscale, const float *wscale, const float *bias,
                                  float *y, int64_t ystride, int64_t nrows) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int32_t set[INT8_MR][HFB_ROWS];
    for (int64_t i0 = 0; i0 < mt; i0 += INT8_MR) {
        int mr = mt - i0 < INT8_MR ? (int)(mt - i0) : INT8_MR;
        if (mr == INT8_MR) int8_tile_avx2(wbuf, KD, q + i0 * qstride, qstride, INT8_MR, set);
        else int8_tile_avx2(wbuf, KD, q + i0 * qstride, qstride, 1, set);
        for (int i = 0; i < mr; i++) {
            __m256 xs = _mm256_set1_ps(xscale[i0 + i]);
            __m256i sum = _mm256_set1_epi32(qsum[i0 + i]);
            float *out = y + (i0 + i) * ystride;
            for (int j = 0; j < 4; j++) {
                __m256i dot = _mm256_sub_epi32(_mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(set[i] + 8 * j)), 1), sum);
                __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(xs, _mm256_loadu_ps(wscale + 8 * j)));
                if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + 8 * j));
                if (nrows >= 8 * j + 8) _mm256_storeu_ps(out + 8 * j, v);
                else if (nrows > 8 * j)
                    _mm256_maskstore_ps(out + 8 * j, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(nrows - 8 * j)), lane), v);
            }
        }
    }
}

const hfb_int8_ops hfb_int8_avx2_ops = {HFB_INT8_AVX2, hfb_quantize_avx2, int8_rows_avx2, NULL};

const hfb_isa_ops hfb_avx2_ops = {build_tables, lut_rows, hfb_transpose_avx2, hfb_dequant_avx2,
                                   hfb_dequant_bf16_avx2, hfb_load_groups_avx2, hfb_from_bf16_avx2, hfb_to_bf16_avx2};

#endif
