/* Internal interface of the native CPU kernels of hf_binarize (plain C, no Python or torch headers, so one
 * build serves every torch version). The exported API is in binary_linear.c; hf_binarize/backends/cpu.py loads
 * it with ctypes.
 *
 * Algorithm (lookup tables, after T-MAC): for each run of 2 (AVX2) or 4 (AVX-512, portable) inputs, a table
 * holds the signed sums +-x_a +-x_b(...) for every sign pattern, so one table lookup indexed by the packed
 * bits replaces 2 or 4 multiply-adds. The bits are looked up 32 output rows at a time: a block of 32 packed
 * rows is transposed so that one vector lane holds 32 bits of one row, and a variable permute (vpermilps,
 * vpermps) indexed by those bits reads 8 or 16 rows' table entries at once. Everything is float32 arithmetic
 * on the inputs as they are (no quantized tables), so results differ from a dense float32 product only by
 * rounding. */
#ifndef HFB_H
#define HFB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define HFB_X86 1
#else
#define HFB_X86 0
#endif

enum { HFB_ISA_PORTABLE = 0, HFB_ISA_AVX2 = 1, HFB_ISA_AVX512 = 2 };
enum { HFB_F32 = 0, HFB_F16 = 1, HFB_BF16 = 2 };
/* What a table entry sums over its inputs x_j: +-x_j by the bit (HFB_SIGNED), or only the x_j whose bit is set
 * (HFB_SET) or clear (HFB_CLEAR). */
enum { HFB_SIGNED = 0, HFB_SET = 1, HFB_CLEAR = 2 };

/* Output rows handled together: a block of packed rows is transposed into [dword column][HFB_ROWS]. */
#define HFB_ROWS 32
/* Floats of lookup table per packed byte (8 inputs): 4 tables of 8 (AVX2) or 2 of 16 (AVX-512, portable). */
#define HFB_TABLE_PER_BYTE 32

typedef struct {
    /* Tables of kind HFB_SIGNED / SET / CLEAR for the inputs [k0, k0 + 8 * nbytes) of one activation row x
     * (length K; inputs past K count as 0), HFB_TABLE_PER_BYTE floats per byte. */
    void (*build_tables)(const float *x, int64_t K, int64_t k0, int64_t nbytes, int kind, float *T);
    /* acc[r] += the entries of T that the bytes [b0, b1) (of the transposed chunk) of row r index, r < 32. */
    void (*lut_rows)(const uint32_t *wbuf, const float *T, int64_t b0, int64_t b1, float *acc);
    /* wbuf[(c - c0) * HFB_ROWS + r] = dword column c of row r of rows (row stride KB bytes); rows past nrows
     * and bytes past KB read as 0. */
    void (*transpose)(const uint8_t *rows, int64_t KB, int64_t nrows, int64_t c0, int64_t c1, uint32_t *wbuf);
    /* out[k] = o + s * sign k of the packed row, for k in [k0, k1) with k0 a multiple of 8. */
    void (*dequant)(const uint8_t *row, int64_t k0, int64_t k1, float s, float o, float *out);
    /* The same as bfloat16 bit patterns: out[k] = o + s * sign k, with o - s and o + s given as bfloat16 bits. */
    void (*dequant_bf16)(const uint8_t *row, int64_t k0, int64_t k1, uint16_t minus, uint16_t plus, uint16_t *out);
    /* dst[(g - g0) * HFB_ROWS + r] = src[row0 + r, g] (an [N, G] HFB_F32 / F16 / BF16 matrix) as float, for
     * groups [g0, g1] and the 32 rows, 0 past nrows. */
    void (*load_groups)(const void *src, int dtype, int64_t G, int64_t row0, int64_t nrows, int64_t g0, int64_t g1,
                        float *dst);
} hfb_isa_ops;

extern const hfb_isa_ops hfb_portable_ops;
#if HFB_X86
extern const hfb_isa_ops hfb_avx2_ops;
extern const hfb_isa_ops hfb_avx512_ops;
void hfb_transpose_avx2(const uint8_t *rows, int64_t KB, int64_t nrows, int64_t c0, int64_t c1, uint32_t *wbuf);
void hfb_dequant_avx2(const uint8_t *row, int64_t k0, int64_t k1, float s, float o, float *out);
void hfb_dequant_bf16_avx2(const uint8_t *row, int64_t k0, int64_t k1, uint16_t minus, uint16_t plus, uint16_t *out);
void hfb_load_groups_avx2(const void *src, int dtype, int64_t G, int64_t row0, int64_t nrows, int64_t g0, int64_t g1,
                          float *dst);
#endif

/* The part rows [r0, r1) x dword columns [ca, cb) of the transpose above, column c stored at c - c0. */
void hfb_transpose_part(const uint8_t *rows, int64_t KB, int64_t nrows, int64_t r0, int64_t r1, int64_t c0,
                        int64_t ca, int64_t cb, uint32_t *wbuf);

static inline float hfb_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    float f;
    if (exp == 0) {
        f = (float)man * 5.9604644775390625e-08f; /* subnormal: man * 2^-24, exact */
        return sign ? -f : f;
    }
    bits = sign | (exp == 0x1f ? 0x7f800000u | (man << 13) : ((exp + 112) << 23) | (man << 13));
    memcpy(&f, &bits, 4);
    return f;
}

/* Element i of an HFB_F32 / HFB_F16 / HFB_BF16 array as float. */
static inline float hfb_to_f32(const void *p, int dtype, int64_t i) {
    if (dtype == HFB_F32) return ((const float *)p)[i];
    if (dtype == HFB_F16) return hfb_f16_to_f32(((const uint16_t *)p)[i]);
    uint32_t bits = (uint32_t)((const uint16_t *)p)[i] << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* f rounded to the nearest bfloat16 (ties to even), as bits; NaN stays NaN. */
static inline uint16_t hfb_f32_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u);
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

/* The factor of x_j in a table entry of this kind where bit j of the entry's index is set / clear. */
static inline float hfb_coefficient(int kind, int bit) {
    return kind == HFB_SIGNED ? (bit ? 1.0f : -1.0f) : (kind == HFB_SET) == (bit != 0) ? 1.0f : 0.0f;
}

/* Runs fn(ctx, 0) .. fn(ctx, n - 1), in parallel on a persistent pthread pool where possible. */
typedef void (*hfb_task)(void *ctx, int tid);
void hfb_parallel(hfb_task fn, void *ctx, int n);

#endif
