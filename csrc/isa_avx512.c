/* AVX-512 path: 16-entry tables over 4 inputs looked up with vpermps zmm (one lookup covers 16 rows x 4 inputs),
 * each table loaded once for the 32 rows. Transposes, dequantization, scale loading and bfloat16 conversions are the
 * AVX2 ones. */
#include "hfb.h"

#if HFB_X86
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx2,fma")))

TARGET static void build_tables(const float *x, int64_t K, int64_t k0, int64_t nbytes, int kind, float *T) {
    /* Entry i of a nibble's table is the sum over its 4 inputs j of c(bit j of i) * x_j. */
    float c[4][16];
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 16; i++) c[j][i] = hfb_coefficient(kind, i >> j & 1);
    const __m512 s0 = _mm512_loadu_ps(c[0]), s1 = _mm512_loadu_ps(c[1]);
    const __m512 s2 = _mm512_loadu_ps(c[2]), s3 = _mm512_loadu_ps(c[3]);
    for (int64_t j = 0; j < 2 * nbytes; j++) {
        float v[4];
        for (int i = 0; i < 4; i++) {
            int64_t k = k0 + 4 * j + i;
            v[i] = k < K ? x[k] : 0.0f;
        }
        __m512 t = _mm512_mul_ps(_mm512_set1_ps(v[0]), s0);
        t = _mm512_fmadd_ps(_mm512_set1_ps(v[1]), s1, t);
        t = _mm512_fmadd_ps(_mm512_set1_ps(v[2]), s2, t);
        t = _mm512_fmadd_ps(_mm512_set1_ps(v[3]), s3, t);
        _mm512_storeu_ps(T + 16 * j, t);
    }
}

/* Keeps GCC from hoisting every lookup of a dword column above the additions (see isa_avx2.c). */
#define ORDER() __asm__("" : "+v"(a0), "+v"(a1), "+v"(v0), "+v"(v1))

#define LOOK(t, v, s) _mm512_permutexvar_ps(_mm512_srli_epi32(v, s), t)

/* Nibbles f and f + 1 (bits 4f .. 4f + 7) of a dword column, for the 2 row vectors. */
#define NIBBLE_PAIR(f)                                                                           \
    do {                                                                                         \
        __m512 t0 = _mm512_loadu_ps(t + 16 * (f)), t1 = _mm512_loadu_ps(t + 16 * (f) + 16);     \
        a0 = _mm512_add_ps(a0, _mm512_add_ps(LOOK(t0, v0, 4 * (f)), LOOK(t1, v0, 4 * (f) + 4))); \
        a1 = _mm512_add_ps(a1, _mm512_add_ps(LOOK(t0, v1, 4 * (f)), LOOK(t1, v1, 4 * (f) + 4))); \
        ORDER();                                                                                 \
    } while (0)

/* Dword columns [c0, c1) for m activation rows: each nibble's bits, shifted once, index every row's table (one row
 * at a time shifted them again for each row: 4096 x 4096, M = 64, one Zen 5 core, 5.5 -> 4.9 ms). The empty asm
 * keeps GCC from hoisting the next nibbles' lookups above the additions (1.3x slower without it). */
TARGET static inline __attribute__((always_inline)) void lut_dwords(const uint32_t *wbuf, const float *T,
                                                                    int64_t tstride, float *acc, int64_t astride,
                                                                    const int m, int64_t c0, int64_t c1) {
    __m512 a[HFB_LUT_MAX_M][2];
    for (int i = 0; i < m; i++) a[i][0] = _mm512_loadu_ps(acc + i * astride), a[i][1] = _mm512_loadu_ps(acc + i * astride + 16);
    for (int64_t c = c0; c < c1; c++) {
        __m512i v0 = _mm512_loadu_si512(wbuf + c * HFB_ROWS), v1 = _mm512_loadu_si512(wbuf + c * HFB_ROWS + 16);
        const float *t = T + 4 * c * HFB_TABLE_PER_BYTE;
#pragma GCC unroll 4
        for (int f = 0; f < 8; f += 2) {
            __m512i s00 = _mm512_srli_epi32(v0, 4 * f), s01 = _mm512_srli_epi32(v0, 4 * f + 4);
            __m512i s10 = _mm512_srli_epi32(v1, 4 * f), s11 = _mm512_srli_epi32(v1, 4 * f + 4);
            for (int i = 0; i < m; i++) {
                __m512 t0 = _mm512_loadu_ps(t + i * tstride + 16 * f), t1 = _mm512_loadu_ps(t + i * tstride + 16 * f + 16);
                a[i][0] = _mm512_add_ps(a[i][0], _mm512_add_ps(_mm512_permutexvar_ps(s00, t0), _mm512_permutexvar_ps(s01, t1)));
                a[i][1] = _mm512_add_ps(a[i][1], _mm512_add_ps(_mm512_permutexvar_ps(s10, t0), _mm512_permutexvar_ps(s11, t1)));
            }
            for (int i = 0; i < m; i++) __asm__("" : "+v"(a[i][0]), "+v"(a[i][1]));
            __asm__("" : "+v"(v0), "+v"(v1));
        }
    }
    for (int i = 0; i < m; i++) _mm512_storeu_ps(acc + i * astride, a[i][0]), _mm512_storeu_ps(acc + i * astride + 16, a[i][1]);
}

TARGET static void lut_bytes(const uint32_t *wbuf, const float *T, int64_t b0, int64_t b1, float *acc) {
    __m512 a0 = _mm512_loadu_ps(acc), a1 = _mm512_loadu_ps(acc + 16);
    for (int64_t b = b0; b < b1; b++) {
        const uint32_t *w = wbuf + (b >> 2) * HFB_ROWS;
        __m128i s = _mm_cvtsi32_si128((int)(8 * (b & 3)));
        __m512i v0 = _mm512_srl_epi32(_mm512_loadu_si512(w), s), v1 = _mm512_srl_epi32(_mm512_loadu_si512(w + 16), s);
        const float *t = T + b * HFB_TABLE_PER_BYTE;
        NIBBLE_PAIR(0);
    }
    _mm512_storeu_ps(acc, a0);
    _mm512_storeu_ps(acc + 16, a1);
}

TARGET static void lut_rows(const uint32_t *wbuf, const float *T, int64_t tstride, float *acc, int64_t astride,
                            int64_t m, int64_t b0, int64_t b1) {
    int64_t head = (b0 + 3) & ~(int64_t)3, tail = b1 & ~(int64_t)3;
    if (head >= tail) head = tail = b1;
    for (int64_t i = 0; i < m; i++)
        if (b0 < head) lut_bytes(wbuf, T + i * tstride, b0, head, acc + i * astride);
    switch (head < tail ? m : 0) { /* a constant row count keeps the sums in registers */
    case 4: lut_dwords(wbuf, T, tstride, acc, astride, 4, head / 4, tail / 4); break;
    case 3: lut_dwords(wbuf, T, tstride, acc, astride, 3, head / 4, tail / 4); break;
    case 2: lut_dwords(wbuf, T, tstride, acc, astride, 2, head / 4, tail / 4); break;
    case 1: lut_dwords(wbuf, T, tstride, acc, astride, 1, head / 4, tail / 4); break;
    default: break;
    }
    for (int64_t i = 0; i < m; i++)
        if (tail < b1) lut_bytes(wbuf, T + i * tstride, tail, b1, acc + i * astride);
}

/* Int8 activations (hfb.h) with AVX512-VNNI. Lanes are output rows, as in wbuf: vpermd looks nibble f of each row's
 * dword up in a table of 16 dwords, whose entry i holds bit j of i in byte j, giving 16 rows x 4 inputs of 0/1 bytes
 * in two instructions; vpdpbusd multiplies them with 4 int8 inputs broadcast from the activation row and adds the 4
 * products to each row's int32 sum. One expansion serves INT8_MR activation rows. */
#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma")))
#define INT8_MR 8

static const uint32_t nibble_bytes[16] = {
    0x00000000, 0x00000001, 0x00000100, 0x00000101, 0x00010000, 0x00010001, 0x00010100, 0x00010101,
    0x01000000, 0x01000001, 0x01000100, 0x01000101, 0x01010000, 0x01010001, 0x01010100, 0x01010101,
};

VNNI_TARGET static inline __attribute__((always_inline)) void int8_tile_vnni(const uint32_t *wbuf, int64_t KD,
                                                                             const int8_t *q, int64_t qstride,
                                                                             const int mr, __m512i set[][2]) {
    const __m512i table = _mm512_loadu_si512(nibble_bytes);
    for (int i = 0; i < mr; i++) set[i][0] = set[i][1] = _mm512_setzero_si512();
    for (int64_t c = 0; c < KD; c++) {
        __m512i v0 = _mm512_loadu_si512(wbuf + c * HFB_ROWS), v1 = _mm512_loadu_si512(wbuf + c * HFB_ROWS + 16);
        const int8_t *qc = q + 32 * c;
#pragma GCC unroll 8
        for (int f = 0; f < 8; f++) {
            __m512i w0 = _mm512_permutexvar_epi32(_mm512_srli_epi32(v0, 4 * f), table);
            __m512i w1 = _mm512_permutexvar_epi32(_mm512_srli_epi32(v1, 4 * f), table);
            for (int i = 0; i < mr; i++) {
                int32_t a;
                memcpy(&a, qc + i * qstride + 4 * f, 4);
                __m512i av = _mm512_set1_epi32(a);
                set[i][0] = _mm512_dpbusd_epi32(set[i][0], w0, av);
                set[i][1] = _mm512_dpbusd_epi32(set[i][1], w1, av);
            }
        }
    }
}

VNNI_TARGET static void int8_rows_vnni(const uint32_t *wbuf, int64_t KD, const int8_t *q, int64_t qstride,
                                       int64_t mt, const int32_t *qsum, const float *xscale, const float *wscale,
                                       const float *bias, float *y, int64_t ystride, int64_t nrows) {
    const __m512 ws[2] = {_mm512_loadu_ps(wscale), _mm512_loadu_ps(wscale + 16)};
    __mmask16 keep[2];
    for (int h = 0; h < 2; h++) {
        int64_t n = nrows - 16 * h;
        keep[h] = n >= 16 ? (__mmask16)0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : (__mmask16)0;
    }
    __m512i set[INT8_MR][2];
    for (int64_t i0 = 0; i0 < mt; i0 += INT8_MR) {
        int mr = mt - i0 < INT8_MR ? (int)(mt - i0) : INT8_MR;
        const int8_t *qi = q + i0 * qstride;
        switch (mr) { /* a constant row count keeps the sums in registers */
        case 8: int8_tile_vnni(wbuf, KD, qi, qstride, 8, set); break;
        case 7: int8_tile_vnni(wbuf, KD, qi, qstride, 7, set); break;
        case 6: int8_tile_vnni(wbuf, KD, qi, qstride, 6, set); break;
        case 5: int8_tile_vnni(wbuf, KD, qi, qstride, 5, set); break;
        case 4: int8_tile_vnni(wbuf, KD, qi, qstride, 4, set); break;
        case 3: int8_tile_vnni(wbuf, KD, qi, qstride, 3, set); break;
        case 2: int8_tile_vnni(wbuf, KD, qi, qstride, 2, set); break;
        default: int8_tile_vnni(wbuf, KD, qi, qstride, 1, set); break;
        }
        for (int i = 0; i < mr; i++) {
            __m512 xs = _mm512_set1_ps(xscale[i0 + i]);
            __m512i sum = _mm512_set1_epi32(qsum[i0 + i]);
            for (int h = 0; h < 2; h++) {
                __m512i dot = _mm512_sub_epi32(_mm512_slli_epi32(set[i][h], 1), sum);
                __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(xs, ws[h]));
                if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + 16 * h));
                _mm512_mask_storeu_ps(y + (i0 + i) * ystride + 16 * h, keep[h], v);
            }
        }
    }
}

/* hfb_int8_ops.direct with AVX512-VNNI: 8 bytes of a packed row are the mask of its 64 inputs, a masked load keeps
 * the int8 inputs whose sign is +1 and vpdpbusd adds them to S (times bytes of 1): 3 instructions per 64 inputs and
 * no transpose. DIRECT_ROWS output rows at a time keep that many independent sums in flight. */
#define DIRECT_ROWS 8

VNNI_TARGET static void int8_direct_vnni(const uint8_t *packed, int64_t KB, int64_t nrows, const int8_t *q,
                                         int64_t qstride, int64_t mt, const int32_t *qsum, const float *xscale,
                                         const float *wscale, const float *bias, float *y, int64_t ystride) {
    const __m512i one = _mm512_set1_epi8(1);
    const int64_t full = KB / 8, tail = KB % 8;
    for (int64_t i = 0; i < mt; i++) {
        const int8_t *qi = q + i * qstride;
        for (int64_t r0 = 0; r0 < nrows; r0 += DIRECT_ROWS) {
            const int64_t nr = nrows - r0 < DIRECT_ROWS ? nrows - r0 : DIRECT_ROWS;
            const uint8_t *row[DIRECT_ROWS];
            __m512i acc[DIRECT_ROWS];
            for (int r = 0; r < DIRECT_ROWS; r++) { /* rows past nrows repeat the last one, their sums unused */
                row[r] = packed + (r0 + (r < nr ? r : nr - 1)) * KB;
                acc[r] = _mm512_setzero_si512();
            }
            for (int64_t c = 0; c < full; c++) {
                const int8_t *qc = qi + 64 * c;
#pragma GCC unroll 8
                for (int r = 0; r < DIRECT_ROWS; r++) {
                    uint64_t bits;
                    memcpy(&bits, row[r] + 8 * c, 8);
                    acc[r] = _mm512_dpbusd_epi32(acc[r], one, _mm512_maskz_loadu_epi8(bits, qc));
                }
            }
            if (tail)
                for (int r = 0; r < DIRECT_ROWS; r++) {
                    uint64_t bits = 0;
                    memcpy(&bits, row[r] + 8 * full, (size_t)tail);
                    acc[r] = _mm512_dpbusd_epi32(acc[r], one, _mm512_maskz_loadu_epi8(bits, qi + 64 * full));
                }
            for (int64_t r = 0; r < nr; r++) {
                int32_t set = _mm512_reduce_add_epi32(acc[r]);
                y[i * ystride + r0 + r] = hfb_int8_output(2 * set - qsum[i], xscale[i], wscale[r0 + r],
                                                          bias ? bias + r0 + r : NULL);
            }
        }
    }
}

const hfb_int8_ops hfb_int8_avx512_vnni_ops = {HFB_INT8_AVX512_VNNI, hfb_quantize_avx2, int8_rows_vnni,
                                               int8_direct_vnni};

const hfb_isa_ops hfb_avx512_ops = {build_tables, lut_rows, hfb_transpose_avx2, hfb_dequant_avx2,
                                    hfb_dequant_bf16_avx2, hfb_load_groups_avx2, hfb_from_bf16_avx2,
                                    hfb_to_bf16_avx2};

#endif
