/* Portable C path: 16-entry tables over 4 inputs (one per nibble), looked up byte by byte for 32 rows. */
#include "hfb.h"

static void build_tables(const float *x, int64_t K, int64_t k0, int64_t nbytes, int kind, float *T) {
    for (int64_t j = 0; j < 2 * nbytes; j++) {
        float v[4];
        for (int i = 0; i < 4; i++) {
            int64_t k = k0 + 4 * j + i;
            v[i] = k < K ? x[k] : 0.0f;
        }
        for (int e = 0; e < 16; e++) {
            float s = hfb_coefficient(kind, e & 1) * v[0];
            for (int i = 1; i < 4; i++) s += hfb_coefficient(kind, e >> i & 1) * v[i];
            T[16 * j + e] = s;
        }
    }
}

static void lut_row(const uint32_t *wbuf, const float *T, int64_t b0, int64_t b1, float *acc) {
    /* Rows innermost: 32 independent sums keep the core busy where one row's chain of additions would not. */
    for (int64_t b = b0; b < b1; b++) {
        const uint32_t *w = wbuf + (b >> 2) * HFB_ROWS;
        const float *t = T + b * HFB_TABLE_PER_BYTE;
        int shift = 8 * (int)(b & 3);
        for (int r = 0; r < HFB_ROWS; r++) {
            uint32_t byte = (w[r] >> shift) & 0xffu;
            acc[r] += t[byte & 15] + t[16 + (byte >> 4)];
        }
    }
}

static void lut_rows(const uint32_t *wbuf, const float *T, int64_t tstride, float *acc, int64_t astride, int64_t m,
                     int64_t b0, int64_t b1) {
    for (int64_t i = 0; i < m; i++) lut_row(wbuf, T + i * tstride, b0, b1, acc + i * astride);
}

void hfb_transpose_part(const uint8_t *rows, int64_t KB, int64_t nrows, int64_t r0, int64_t r1, int64_t c0,
                        int64_t ca, int64_t cb, uint32_t *wbuf) {
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t c = ca; c < cb; c++) {
            uint32_t w = 0;
            /* Byte by byte so that the dword is little-endian on any host and stops at the row's end. */
            for (int64_t i = 0; r < nrows && i < 4 && 4 * c + i < KB; i++)
                w |= (uint32_t)rows[r * KB + 4 * c + i] << (8 * i);
            wbuf[(c - c0) * HFB_ROWS + r] = w;
        }
    }
}

static void transpose(const uint8_t *rows, int64_t KB, int64_t nrows, int64_t c0, int64_t c1, uint32_t *wbuf) {
    hfb_transpose_part(rows, KB, nrows, 0, HFB_ROWS, c0, c0, c1, wbuf);
}

static void dequant(const uint8_t *row, int64_t k0, int64_t k1, float s, float o, float *out) {
    float value[2] = {o - s, o + s};
    int64_t k = k0;
    for (; k + 8 <= k1; k += 8) {
        unsigned byte = row[k >> 3];
        for (int j = 0; j < 8; j++) out[k + j] = value[(byte >> j) & 1];
    }
    for (; k < k1; k++) out[k] = value[(row[k >> 3] >> (k & 7)) & 1];
}

static void dequant_bf16(const uint8_t *row, int64_t k0, int64_t k1, uint16_t minus, uint16_t plus, uint16_t *out) {
    uint16_t value[2] = {minus, plus};
    for (int64_t k = k0; k < k1; k++) out[k] = value[(row[k >> 3] >> (k & 7)) & 1];
}

static void load_groups(const void *src, int dtype, int64_t G, int64_t row0, int64_t nrows, int64_t g0, int64_t g1,
                        float *dst) {
    for (int64_t g = g0; g <= g1; g++)
        for (int64_t r = 0; r < HFB_ROWS; r++)
            dst[(g - g0) * HFB_ROWS + r] = r < nrows ? hfb_to_f32(src, dtype, (row0 + r) * G + g) : 0.0f;
}

static void from_bf16(const uint16_t *src, int64_t n, float *dst) {
    for (int64_t k = 0; k < n; k++) dst[k] = hfb_to_f32(src, HFB_BF16, k);
}

static void to_bf16(const float *src, int64_t n, uint16_t *dst) {
    for (int64_t k = 0; k < n; k++) dst[k] = hfb_f32_to_bf16(src[k]);
}

const hfb_isa_ops hfb_portable_ops = {build_tables, lut_rows, transpose, dequant, dequant_bf16, load_groups,
                                      from_bf16, to_bf16};

/* Int8 activations (hfb.h). */

static void quantize(const float *x, int64_t K, int64_t KP, int8_t *q, float *scale, int32_t *qsum) {
    float amax = 0.0f;
    int nan = 0;
    for (int64_t k = 0; k < K; k++) {
        float a = x[k] < 0.0f ? -x[k] : x[k];
        if (a != a) nan = 1;
        else if (a > amax) amax = a;
    }
    float s = nan ? hfb_nan() : amax / 127.0f;
    int32_t sum = 0;
    if (s > 0.0f && s - s == 0.0f) { /* positive and finite */
        for (int64_t k = 0; k < K; k++) sum += q[k] = hfb_quantize_one(x[k], s);
    } else {
        memset(q, 0, (size_t)K);
    }
    memset(q + K, 0, (size_t)(KP - K));
    *scale = s;
    *qsum = sum;
}

static void int8_rows(const uint32_t *wbuf, int64_t KD, const int8_t *q, int64_t qstride, int64_t mt,
                      const int32_t *qsum, const float *xscale, const float *wscale, const float *bias, float *y,
                      int64_t ystride, int64_t nrows) {
    for (int64_t i = 0; i < mt; i++) {
        int32_t set[HFB_ROWS] = {0};
        for (int64_t c = 0; c < KD; c++) {
            const int8_t *qc = q + i * qstride + 32 * c;
            for (int r = 0; r < HFB_ROWS; r++) {
                uint32_t bits = wbuf[c * HFB_ROWS + r];
                int32_t sum = 0;
                for (int j = 0; j < 32; j++) sum += (int32_t)(bits >> j & 1u) * qc[j];
                set[r] += sum;
            }
        }
        for (int64_t r = 0; r < nrows; r++)
            y[i * ystride + r] = hfb_int8_output(2 * set[r] - qsum[i], xscale[i], wscale[r], bias ? bias + r : NULL);
    }
}

const hfb_int8_ops hfb_int8_portable_ops = {HFB_INT8_PORTABLE, quantize, int8_rows, NULL};
