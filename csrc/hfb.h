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

#if defined(_WIN32)
#define HFB_API __declspec(dllexport)
#else
#define HFB_API __attribute__((visibility("default")))
#endif

/* Status codes of the exported functions. */
enum { HFB_OK = 0, HFB_EINVAL = 1, HFB_EISA = 2, HFB_ENOMEM = 3 };

enum { HFB_ISA_PORTABLE = 0, HFB_ISA_AVX2 = 1, HFB_ISA_AVX512 = 2 };
enum { HFB_F32 = 0, HFB_F16 = 1, HFB_BF16 = 2 };
/* What a table entry sums over its inputs x_j: +-x_j by the bit (HFB_SIGNED), or only the x_j whose bit is set
 * (HFB_SET) or clear (HFB_CLEAR). */
enum { HFB_SIGNED = 0, HFB_SET = 1, HFB_CLEAR = 2 };

/* Output rows handled together: a block of packed rows is transposed into [dword column][HFB_ROWS]. */
#define HFB_ROWS 32
/* Activation rows one lookup call serves (the rows of a tile, binary_linear.c's M_TILE). */
#define HFB_LUT_MAX_M 4
/* Floats of lookup table per packed byte (8 inputs): 4 tables of 8 (AVX2) or 2 of 16 (AVX-512, portable). */
#define HFB_TABLE_PER_BYTE 32

typedef struct {
    /* Tables of kind HFB_SIGNED / SET / CLEAR for the inputs [k0, k0 + 8 * nbytes) of one activation row x
     * (length K; inputs past K count as 0), HFB_TABLE_PER_BYTE floats per byte. */
    void (*build_tables)(const float *x, int64_t K, int64_t k0, int64_t nbytes, int kind, float *T);
    /* For each activation row i < m (at most HFB_LUT_MAX_M): acc[i * astride + r] += the entries of its tables
     * T + i * tstride that the bytes [b0, b1) (of the transposed chunk) of output row r index, r < 32. Each row's
     * sums are added in the same order whatever m is, so results do not depend on how rows are grouped. */
    void (*lut_rows)(const uint32_t *wbuf, const float *T, int64_t tstride, float *acc, int64_t astride, int64_t m,
                     int64_t b0, int64_t b1);
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
    /* dst[k] = src[k] for k < n, bfloat16 bits to float (exact) and float to bfloat16 bits (hfb_f32_to_bf16). */
    void (*from_bf16)(const uint16_t *src, int64_t n, float *dst);
    void (*to_bf16)(const float *src, int64_t n, uint16_t *dst);
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
void hfb_from_bf16_avx2(const uint16_t *src, int64_t n, float *dst);
void hfb_to_bf16_avx2(const float *src, int64_t n, uint16_t *dst);
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

/* Int8 activations (csrc/int8_activations.c): each activation row is quantized to int8 with one scale,
 * scale = max |x| / 127 and q = round(x / scale) (to nearest, ties to even) clamped to [-127, 127], and multiplied by
 * the signs with integer dot products. With S = the sum of q_k over the k whose bit is set (+1), the exact dot
 * product of q with the signs is 2 * S - sum(q). Float arithmetic happens only in the quantization and in
 * hfb_int8_output, in an order every kernel (and hf_binarize/ops/reference.py) follows exactly, so all of them give
 * bit-identical results. */
enum { HFB_INT8_PORTABLE = 0, HFB_INT8_AVX2 = 1, HFB_INT8_AVX512_VNNI = 2 };

typedef struct {
    int code; /* HFB_INT8_* */
    /* One row x[0, K) into q[0, KP) (zero from K on), its scale and sum(q). A row whose scale is 0, inf or NaN
     * (all zeros; inf or NaN inside) gets q = 0 and keeps that scale, so its outputs are the bias, or NaN. */
    void (*quantize)(const float *x, int64_t K, int64_t KP, int8_t *q, float *scale, int32_t *qsum);
    /* For the 32 output rows whose signs wbuf holds ([KD][HFB_ROWS] dword columns, hfb_isa_ops.transpose) and the
     * activation rows i < mt of q (row stride qstride, zero past K): y[i * ystride + r] = hfb_int8_output(2 * S -
     * qsum[i], xscale[i], wscale[r], bias + r) for r < nrows (bias NULL: none). */
    void (*rows)(const uint32_t *wbuf, int64_t KD, const int8_t *q, int64_t qstride, int64_t mt, const int32_t *qsum,
                 const float *xscale, const float *wscale, const float *bias, float *y, int64_t ystride,
                 int64_t nrows);
    /* The same from the packed rows themselves (row stride KB bytes, nrows <= HFB_ROWS), for few activation rows,
     * where transposing the block would cost more than the products; NULL where the instruction set has none. */
    void (*direct)(const uint8_t *packed, int64_t KB, int64_t nrows, const int8_t *q, int64_t qstride, int64_t mt,
                   const int32_t *qsum, const float *xscale, const float *wscale, const float *bias, float *y,
                   int64_t ystride);
} hfb_int8_ops;

extern const hfb_int8_ops hfb_int8_portable_ops;
#if HFB_X86
extern const hfb_int8_ops hfb_int8_avx2_ops;
extern const hfb_int8_ops hfb_int8_avx512_vnni_ops;
void hfb_quantize_avx2(const float *x, int64_t K, int64_t KP, int8_t *q, float *scale, int32_t *qsum);
#endif

/* A quiet NaN, without math.h's NAN (C99 leaves it optional). */
static inline float hfb_nan(void) {
    uint32_t bits = 0x7fc00000u;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* x / scale clamped to [-127, 127] and rounded to the nearest integer, ties to even (torch.round): adding and
 * subtracting 1.5 * 2^23 rounds in the default rounding mode, as the SIMD conversions do, without libm. */
static inline int8_t hfb_quantize_one(float x, float scale) {
    float v = x / scale;
    v = v < -127.0f ? -127.0f : v > 127.0f ? 127.0f : v;
    return (int8_t)((v + 12582912.0f) - 12582912.0f);
}

/* The one output formula of the int8 path: (float)dot * (xscale * wscale), then + bias. Built with
 * -ffp-contract=off (setup.py), so no compiler fuses the multiply and the add into one rounding. */
static inline float hfb_int8_output(int32_t dot, float xscale, float wscale, const float *bias) {
    float y = (float)dot * (xscale * wscale);
    return bias ? y + *bias : y;
}

/* The instruction set's kernels (NULL where the CPU lacks it), for the int8 path. */
const hfb_isa_ops *hfb_isa_ops_for(int isa);
/* Elements per thread below which a product stays on fewer threads (binary_linear.c explains it). */
int hfb_thread_count(int nthreads, double work, int64_t units);
void *hfb_alloc(int64_t bytes);
void hfb_free(void *ptr);

/* Runs fn(ctx, 0) .. fn(ctx, n - 1), in parallel on a persistent pthread pool where possible. */
typedef void (*hfb_task)(void *ctx, int tid);
void hfb_parallel(hfb_task fn, void *ctx, int n);
/* Runs fn(ctx, tid) for tid < parts, each storing its status (HFB_OK or an error) in (*status)[tid], an array this
 * allocates; returns the first error any of them reported. */
int hfb_run_parts(hfb_task fn, void *ctx, int parts, int **status);

/* How a product of M activation rows by N output rows is shared between threads (binary_linear.c). */
typedef struct {
    int parts;
    int split_m; /* ranges of activation rows instead of ranges of blocks of HFB_ROWS output rows */
} hfb_split;
hfb_split hfb_plan_split(int64_t M, int64_t N, int64_t K, int nthreads);
/* Part tid's activation rows [r[0], r[1]) and output rows [r[2], r[3]) (an empty range: nothing to do). */
void hfb_part_ranges(hfb_split split, int64_t M, int64_t N, int tid, int64_t r[4]);

#endif
