/* Exported API: y = x @ W_hat.T + bias for a sign-lsb-v1 packed weight (see hf_binarize/formats/binary.py), and
 * run time selection of the instruction set. (The int8-activation entry point is in int8_activations.c.) */
#include <stdlib.h>
#include <string.h>

#include "hfb.h"

/* Bumped whenever an exported function is added or its signature changes; cpu.py refuses a library with another
 * number. */
#define HFB_ABI_VERSION 4

/* Activation rows whose tables are built together and share one transpose of the weights. */
#define M_TILE HFB_LUT_MAX_M
/* Table bytes a chunk of K keeps hot (all rows of a tile): tables of 8192 inputs for one row, half an L2.
 * Larger chunks beat L1-sized ones (16 KiB) by 10% at 4096 x 4096: the packed rows stream contiguously, and
 * each table is loaded once per 32 rows, which an L2 keeps up with. */
#define TABLE_BUDGET (128 * 1024)
/* M * N * K per thread below which the product stays on fewer threads: about 50 us of lookups, so that waking a
 * worker that went to sleep (20-100 us on the test VM) cannot cost more than it saves. */
#define MIN_WORK_PER_THREAD (1 << 21)
/* One dequantized weight costs about as much as this many multiply-adds of the lookup kernel. */
#define DEQUANT_WORK_FACTOR 4

typedef struct {
    const float *x;
    int64_t M, K;
    const uint8_t *packed;
    int64_t N, KB, KD; /* bytes and dword columns per packed row */
    const void *scale;
    const void *offset;
    int scale_dtype, offset_dtype;
    int64_t G, gs;
    const float *bias;
    float *y;
    const hfb_isa_ops *ops;
    int64_t n0, n1; /* rows to dequantize */
    int out_dtype;  /* of the dequantized rows: HFB_F32 or HFB_BF16 */
    int parts;      /* of the dequantization */
    hfb_split split; /* of the product */
    int *status;
} problem;

static int64_t group_of_byte(const problem *p, int64_t b) {
    if (p->G == 1) return 0;
    int64_t g = b * 8 / p->gs;
    return g < p->G ? g : p->G - 1;
}

/* The last group runs to the end of the dword columns: the bytes past the row are zero and their inputs are 0. */
static int64_t group_end_byte(const problem *p, int64_t g) {
    return g == p->G - 1 ? 4 * p->KD : (g + 1) * p->gs / 8;
}

void *hfb_alloc(int64_t bytes) {
    void *ptr = NULL;
    size_t size = (size_t)(bytes > 0 ? bytes : 1);
#if defined(_WIN32)
    ptr = _aligned_malloc(size, 64);
#else
    if (posix_memalign(&ptr, 64, size)) ptr = NULL;
#endif
    return ptr;
}

void hfb_free(void *ptr) {
#if defined(_WIN32)
    _aligned_free(ptr);
#else
    free(ptr);
#endif
}

static void *alloc_floats(int64_t n) { return hfb_alloc(n * 4); }

/* Loads the packed bytes of the next block of rows while this one computes, a few cache lines between pieces of
 * the lookups. Each block of 8 rows at K = 4096 is one 4 KiB page, where hardware prefetchers stop, so with the
 * weight out of cache (as in a model, layer after layer) every block began with a stall; and issuing all of a
 * block's lines at once (256 at K = 4096) filled the core's miss buffers and stalled the lookups behind them, so
 * memory and arithmetic took turns. One piece is 32 bytes of each of the 32 rows' lookups, with 16 lines loaded
 * before it: at 4096 x 4096, M = 1, weights cycling through 64 MiB of copies, one Zen 5 core, the kernel went
 * from 0.22 to 0.13 ms (8, 16 and 64 bytes a piece: 0.15, 0.13, 0.19 ms; the kernel with the weight cached:
 * 0.12 ms). */
#define PREFETCH_PIECE_BYTES 32

typedef struct {
    const uint8_t *row; /* the next line's row of the next block (NULL: nothing to load) */
    int64_t KB, first, lines, rows_left; /* lines per row from byte `first` */
    int64_t line, per_piece;             /* the next line in its row */
} prefetcher;

static void prefetcher_start(prefetcher *pf, const problem *p, int64_t row0, int64_t n1, int64_t c0, int64_t c1,
                             int64_t pieces) {
    int64_t end = 4 * c1 < p->KB ? 4 * c1 : p->KB;
    memset(pf, 0, sizeof(*pf));
    if (row0 >= n1 || end <= 4 * c0) return;
    pf->row = p->packed + row0 * p->KB, pf->KB = p->KB, pf->first = 4 * c0;
    pf->lines = (end - pf->first + 63) / 64;
    pf->rows_left = n1 - row0 < HFB_ROWS ? n1 - row0 : HFB_ROWS;
    pf->per_piece = (pf->rows_left * pf->lines + pieces - 1) / pieces;
#if defined(__GNUC__) || defined(__clang__)
    /* One line per page of the block after, so that its page walks are done before its lines are asked for. */
    int64_t ahead = row0 + HFB_ROWS, stop = ahead + HFB_ROWS < n1 ? ahead + HFB_ROWS : n1;
    for (int64_t at = ahead * p->KB; at < stop * p->KB; at += 4096) __builtin_prefetch(p->packed + at, 0, 2);
#endif
}

static void prefetcher_issue(prefetcher *pf, int64_t count) {
    for (; count > 0 && pf->rows_left > 0; count--) {
#if defined(__GNUC__) || defined(__clang__)
        __builtin_prefetch(pf->row + pf->first + 64 * pf->line, 0, 2);
#endif
        if (++pf->line == pf->lines) pf->line = 0, pf->row += pf->KB, pf->rows_left--;
    }
}

/* ops->lut_rows over bytes [lo, hi) of the chunk, in pieces with some of the next block's lines loaded between. */
static void lut_prefetching(const hfb_isa_ops *ops, const uint32_t *wbuf, const float *T, int64_t tstride, float *acc,
                            int64_t astride, int64_t m, int64_t lo, int64_t hi, prefetcher *pf) {
    for (int64_t b = lo; b < hi; b += PREFETCH_PIECE_BYTES) {
        prefetcher_issue(pf, pf->per_piece);
        ops->lut_rows(wbuf, T, tstride, acc, astride, m, b, b + PREFETCH_PIECE_BYTES < hi ? b + PREFETCH_PIECE_BYTES : hi);
    }
}

/* Output rows [n0, n1) of activation rows [m0, m1). Per tile of activation rows and chunk of K: build the tables,
 * then for each block of 32 output rows transpose its packed bytes once and accumulate every activation row.
 * Sums of the current scale group live in gacc and are scaled into yacc where the group ends, so K chunks and
 * group boundaries need not line up.
 *
 * Without offsets a group adds scale * sum(+-x). With offsets it adds (offset + scale) * sum(x where the bit is
 * set) + (offset - scale) * sum(x where it is clear), two lookups instead of one: the shorter
 * scale * sum(+-x) + offset * sum(x) loses accuracy where offset and scale nearly cancel, and the rounding error
 * of this form is bounded by |x| @ |W_hat|, like a dense product's. */
static int run_block(const problem *p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    const hfb_isa_ops *ops = p->ops;
    const int sums = p->offset ? 2 : 1;
    int64_t nrg = (n1 - n0 + HFB_ROWS - 1) / HFB_ROWS, rows_pad = nrg * HFB_ROWS;
    int64_t mt_max = m1 - m0 < M_TILE ? m1 - m0 : M_TILE;
    /* Multiple of 8 dword columns, the unit of the SIMD transpose. */
    int64_t chunk = TABLE_BUDGET / (4 * HFB_TABLE_PER_BYTE * 4 * mt_max * sums) / 8 * 8;
    if (chunk < 8) chunk = 8;
    if (chunk > (p->KD + 7) / 8 * 8) chunk = (p->KD + 7) / 8 * 8;
    int64_t table_stride = chunk * 4 * HFB_TABLE_PER_BYTE;
    /* Scales and offsets as float: of the groups in a chunk for one block of rows, or with one group per row
     * (the common case), of all rows once. */
    int64_t sbuf_rows = p->G == 1 ? rows_pad : (chunk * 32 / p->gs + 2) * HFB_ROWS;

    float *T = alloc_floats(mt_max * sums * table_stride);
    uint32_t *wbuf = alloc_floats(chunk * HFB_ROWS);
    float *yacc = alloc_floats((1 + sums) * mt_max * rows_pad);
    float *sbuf = alloc_floats(2 * sbuf_rows);
    int ok = T && wbuf && yacc && sbuf;
    if (!ok) goto done;
    float *gacc = yacc + mt_max * rows_pad, *obuf = sbuf + sbuf_rows;
    if (p->G == 1) {
        for (int64_t rg = 0; rg < nrg; rg++) {
            int64_t row0 = n0 + rg * HFB_ROWS, nrows = n1 - row0 < HFB_ROWS ? n1 - row0 : HFB_ROWS;
            ops->load_groups(p->scale, p->scale_dtype, 1, row0, nrows, 0, 0, sbuf + rg * HFB_ROWS);
            if (p->offset) ops->load_groups(p->offset, p->offset_dtype, 1, row0, nrows, 0, 0, obuf + rg * HFB_ROWS);
        }
    }

    for (int64_t mt0 = m0; mt0 < m1; mt0 += mt_max) {
        int64_t mt = m1 - mt0 < mt_max ? m1 - mt0 : mt_max;
        memset(yacc, 0, sizeof(float) * (1 + sums) * mt_max * rows_pad);
        for (int64_t c0 = 0; c0 < p->KD; c0 += chunk) {
            int64_t c1 = c0 + chunk < p->KD ? c0 + chunk : p->KD, b0 = 4 * c0, b1 = 4 * c1;
            for (int64_t i = 0; i < mt * sums; i++) {
                int kind = sums == 1 ? HFB_SIGNED : i % 2 ? HFB_CLEAR : HFB_SET;
                ops->build_tables(p->x + (mt0 + i / sums) * p->K, p->K, 32 * c0, b1 - b0, kind, T + i * table_stride);
            }
            int64_t g0 = group_of_byte(p, b0), g1 = group_of_byte(p, b1 - 1);
            for (int64_t rg = 0; rg < nrg; rg++) {
                int64_t row0 = n0 + rg * HFB_ROWS, nrows = n1 - row0 < HFB_ROWS ? n1 - row0 : HFB_ROWS;
                ops->transpose(p->packed + row0 * p->KB, p->KB, nrows, c0, c1, wbuf);
                prefetcher pf;
                prefetcher_start(&pf, p, row0 + HFB_ROWS, n1, c0, c1,
                                 (b1 - b0 + PREFETCH_PIECE_BYTES - 1) / PREFETCH_PIECE_BYTES);
                const float *sg = sbuf + rg * HFB_ROWS, *og = obuf + rg * HFB_ROWS;
                if (p->G > 1) {
                    sg = sbuf, og = obuf;
                    ops->load_groups(p->scale, p->scale_dtype, p->G, row0, nrows, g0, g1, sbuf);
                    if (p->offset) ops->load_groups(p->offset, p->offset_dtype, p->G, row0, nrows, g0, g1, obuf);
                }
                /* Row i's sums of kind k (signed, or set then clear) in acc[(i * sums + k) * rows_pad], its tables at
                 * T + (i * sums + k) * table_stride: one call per kind covers the tile's rows. */
                float *acc = gacc + rg * HFB_ROWS;
                for (int64_t b = b0; b < b1;) {
                    int64_t g = group_of_byte(p, b), end = group_end_byte(p, g), stop = end < b1 ? end : b1;
                    lut_prefetching(ops, wbuf, T, sums * table_stride, acc, sums * rows_pad, mt, b - b0, stop - b0,
                                    &pf);
                    if (sums == 2)
                        ops->lut_rows(wbuf, T + table_stride, 2 * table_stride, acc + rows_pad, 2 * rows_pad, mt,
                                      b - b0, stop - b0);
                    if (stop == end) {
                        const float *s = sg + (g - g0) * HFB_ROWS, *o = og + (g - g0) * HFB_ROWS;
                        for (int64_t i = 0; i < mt; i++) {
                            float *y = yacc + i * rows_pad + rg * HFB_ROWS;
                            float *set = acc + i * sums * rows_pad, *clear = set + rows_pad;
                            if (sums == 1) {
                                for (int r = 0; r < HFB_ROWS; r++) y[r] += set[r] * s[r], set[r] = 0.0f;
                            } else {
                                for (int r = 0; r < HFB_ROWS; r++) {
                                    y[r] += set[r] * (o[r] + s[r]) + clear[r] * (o[r] - s[r]);
                                    set[r] = clear[r] = 0.0f;
                                }
                            }
                        }
                    }
                    b = stop;
                }
                prefetcher_issue(&pf, INT64_MAX);
            }
        }
        for (int64_t i = 0; i < mt; i++) {
            float *out = p->y + (mt0 + i) * p->N;
            for (int64_t n = n0; n < n1; n++) out[n] = yacc[i * rows_pad + n - n0] + (p->bias ? p->bias[n] : 0.0f);
        }
    }
done:
    hfb_free(T);
    hfb_free(wbuf);
    hfb_free(yacc);
    hfb_free(sbuf);
    return ok ? HFB_OK : HFB_ENOMEM;
}

static void run_part(void *ctx, int tid) {
    const problem *p = ctx;
    int64_t r[4];
    hfb_part_ranges(p->split, p->M, p->N, tid, r);
    p->status[tid] = r[0] < r[1] && r[2] < r[3] ? run_block(p, r[0], r[1], r[2], r[3]) : HFB_OK;
}

hfb_split hfb_plan_split(int64_t M, int64_t N, int64_t K, int nthreads) {
    int64_t blocks = (N + HFB_ROWS - 1) / HFB_ROWS;
    double work = (double)M * (double)N * (double)K;
    int wanted = hfb_thread_count(nthreads, work, INT64_MAX);
    hfb_split split;
    /* Split the output rows, unless there are fewer blocks of them than threads and more activation rows. */
    split.split_m = blocks < wanted && M > blocks;
    split.parts = hfb_thread_count(wanted, work, split.split_m ? M : blocks);
    return split;
}

void hfb_part_ranges(hfb_split split, int64_t M, int64_t N, int tid, int64_t r[4]) {
    if (split.split_m) {
        r[0] = M * tid / split.parts, r[1] = M * (tid + 1) / split.parts, r[2] = 0, r[3] = N;
    } else {
        int64_t blocks = (N + HFB_ROWS - 1) / HFB_ROWS;
        r[0] = 0, r[1] = M;
        r[2] = blocks * tid / split.parts * HFB_ROWS, r[3] = blocks * (tid + 1) / split.parts * HFB_ROWS;
        if (r[3] > N) r[3] = N;
    }
}

const hfb_isa_ops *hfb_isa_ops_for(int isa) {
#if HFB_X86
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (isa == HFB_ISA_AVX2 && avx2) return &hfb_avx2_ops;
    if (isa == HFB_ISA_AVX512 && avx2 && __builtin_cpu_supports("avx512f")) return &hfb_avx512_ops;
#endif
    return isa == HFB_ISA_PORTABLE ? &hfb_portable_ops : NULL;
}

/* The checks and fields the two entry points share. */
static int setup(problem *p, int64_t N, int64_t K, const uint8_t *packed, const void *scale, int scale_dtype,
                 const void *offset, int offset_dtype, int64_t group_size, int isa) {
    if (N < 0 || K < 1 || group_size < 1 || scale_dtype < 0 || scale_dtype > HFB_BF16 || offset_dtype < 0 ||
        offset_dtype > HFB_BF16)
        return HFB_EINVAL;
    memset(p, 0, sizeof(*p));
    p->G = (K + group_size - 1) / group_size;
    /* Several groups must start on byte boundaries. */
    if (p->G > 1 && group_size % 8) return HFB_EINVAL;
    p->ops = hfb_isa_ops_for(isa);
    if (!p->ops) return HFB_EISA;
    p->N = N, p->K = K, p->KB = (K + 7) / 8, p->KD = (K + 31) / 32, p->gs = group_size;
    p->packed = packed, p->scale = scale, p->scale_dtype = scale_dtype;
    p->offset = offset, p->offset_dtype = offset_dtype;
    return HFB_OK;
}

int hfb_run_parts(hfb_task fn, void *ctx, int parts, int **status) {
    int status_one = HFB_OK;
    *status = parts > 1 ? malloc(sizeof(int) * (size_t)parts) : &status_one;
    if (!*status) return HFB_ENOMEM;
    hfb_parallel(fn, ctx, parts);
    int result = HFB_OK;
    for (int i = 0; i < parts; i++)
        if ((*status)[i] != HFB_OK) result = (*status)[i];
    if (parts > 1) free(*status);
    *status = NULL;
    return result;
}

int hfb_thread_count(int nthreads, double work, int64_t units) {
    int64_t parts = nthreads < 1 ? 1 : nthreads;
    if (parts > work / MIN_WORK_PER_THREAD) parts = (int64_t)(work / MIN_WORK_PER_THREAD);
    if (parts > units) parts = units;
    return parts < 1 ? 1 : (int)parts;
}

HFB_API int hfb_abi_version(void) { return HFB_ABI_VERSION; }

HFB_API int hfb_isa_supported(int isa) { return hfb_isa_ops_for(isa) != NULL; }

/* Whether the CPU has bfloat16 dot-product instructions (AVX512-BF16, which every CPU with AMX also has): where it
 * does, torch's bfloat16 GEMM outruns its float32 one, else it is slower. */
HFB_API int hfb_has_bf16_units(void) {
#if HFB_X86 && !defined(__clang__) && __GNUC__ >= 11 /* other compilers: no bfloat16 GEMM path */
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") != 0;
#else
    return 0;
#endif
}

/* x: float32 [M, K] contiguous; packed: uint8 [N, ceil(K / 8)]; scale (and offset, or NULL): [N, G] of
 * HFB_F32 / HFB_F16 / HFB_BF16 with G = ceil(K / group_size); bias: float32 [N] or NULL; y: float32 [M, N].
 * Returns HFB_OK or an error code, leaving y undefined on error. */
HFB_API int hfb_binary_linear(const float *x, int64_t M, int64_t K, const uint8_t *packed, int64_t N,
                              const void *scale, int scale_dtype, const void *offset, int offset_dtype,
                              int64_t group_size, const float *bias, float *y, int isa, int nthreads) {
    problem p;
    int status = setup(&p, N, K, packed, scale, scale_dtype, offset, offset_dtype, group_size, isa);
    if (status != HFB_OK || M < 0) return status != HFB_OK ? status : HFB_EINVAL;
    if (M == 0 || N == 0) return HFB_OK;
    p.x = x, p.M = M, p.bias = bias, p.y = y;
    p.split = hfb_plan_split(M, N, K, nthreads);
    return hfb_run_parts(run_part, &p, p.split.parts, &p.status);
}

static void run_dequant(void *ctx, int tid) {
    const problem *p = ctx;
    int64_t n0 = p->n0 + (p->n1 - p->n0) * tid / p->parts, n1 = p->n0 + (p->n1 - p->n0) * (tid + 1) / p->parts;
    for (int64_t n = n0; n < n1; n++) {
        for (int64_t g = 0; g < p->G; g++) {
            int64_t k0 = g * p->gs, k1 = p->G == 1 || (g + 1) * p->gs > p->K ? p->K : (g + 1) * p->gs;
            float s = hfb_to_f32(p->scale, p->scale_dtype, n * p->G + g);
            float o = p->offset ? hfb_to_f32(p->offset, p->offset_dtype, n * p->G + g) : 0.0f;
            if (p->out_dtype == HFB_BF16)
                p->ops->dequant_bf16(p->packed + n * p->KB, k0, k1, hfb_f32_to_bf16(o - s), hfb_f32_to_bf16(o + s),
                                     (uint16_t *)p->y + (n - p->n0) * p->K);
            else
                p->ops->dequant(p->packed + n * p->KB, k0, k1, s, o, p->y + (n - p->n0) * p->K);
        }
    }
    p->status[tid] = HFB_OK;
}

/* out: [n1 - n0, K] of out_dtype (HFB_F32, or HFB_BF16 with each value rounded to nearest), the dense rows
 * [n0, n1) of the weight (other arguments as for hfb_binary_linear). */
HFB_API int hfb_dequantize(const uint8_t *packed, int64_t N, int64_t K, const void *scale, int scale_dtype,
                           const void *offset, int offset_dtype, int64_t group_size, int64_t n0, int64_t n1,
                           void *out, int out_dtype, int isa, int nthreads) {
    problem p;
    int status = setup(&p, N, K, packed, scale, scale_dtype, offset, offset_dtype, group_size, isa);
    if (status != HFB_OK || n0 < 0 || n1 > N || n0 > n1 || (out_dtype != HFB_F32 && out_dtype != HFB_BF16))
        return status != HFB_OK ? status : HFB_EINVAL;
    p.n0 = n0, p.n1 = n1, p.y = out, p.out_dtype = out_dtype;
    p.parts = hfb_thread_count(nthreads, (double)(n1 - n0) * (double)K * DEQUANT_WORK_FACTOR, n1 - n0);
    return hfb_run_parts(run_dequant, &p, p.parts, &p.status);
}
