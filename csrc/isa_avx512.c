/* AVX-512 path: 16-entry tables over 4 inputs looked up with vpermps zmm (one lookup covers 16 rows x 4 inputs),
 * each table loaded once for the 32 rows. Transposes, dequantization and scale loading are the AVX2 ones. */
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

TARGET static void lut_dwords(const uint32_t *wbuf, const float *T, int64_t c0, int64_t c1, float *acc) {
    __m512 a0 = _mm512_loadu_ps(acc), a1 = _mm512_loadu_ps(acc + 16);
    for (int64_t c = c0; c < c1; c++) {
        __m512i v0 = _mm512_loadu_si512(wbuf + c * HFB_ROWS), v1 = _mm512_loadu_si512(wbuf + c * HFB_ROWS + 16);
        const float *t = T + 4 * c * HFB_TABLE_PER_BYTE;
        NIBBLE_PAIR(0); NIBBLE_PAIR(2); NIBBLE_PAIR(4); NIBBLE_PAIR(6);
    }
    _mm512_storeu_ps(acc, a0);
    _mm512_storeu_ps(acc + 16, a1);
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

TARGET static void lut_rows(const uint32_t *wbuf, const float *T, int64_t b0, int64_t b1, float *acc) {
    int64_t head = (b0 + 3) & ~(int64_t)3, tail = b1 & ~(int64_t)3;
    if (head >= tail) {
        lut_bytes(wbuf, T, b0, b1, acc);
        return;
    }
    if (b0 < head) lut_bytes(wbuf, T, b0, head, acc);
    lut_dwords(wbuf, T, head / 4, tail / 4, acc);
    if (tail < b1) lut_bytes(wbuf, T, tail, b1, acc);
}

const hfb_isa_ops hfb_avx512_ops = {build_tables, lut_rows, hfb_transpose_avx2, hfb_dequant_avx2,
                                    hfb_dequant_bf16_avx2, hfb_load_groups_avx2};

#endif
