/* Exported API of the int8-activation path: y = x_int8 . signs, scaled, + bias, for a sign-lsb-v1 weight with one
 * scale per output row and no offset (hfb.h says how the rows are quantized and the result computed). Each thread
 * takes a range of blocks of 32 output rows (or of activation rows, where there are fewer blocks than threads),
 * transposes a block's packed rows once per pass and multiplies every activation row of the pass with it; for one or
 * two activation rows a kernel's direct products read the packed rows as they are (hfb_int8_ops.direct). */
#include <string.h>

#include "hfb.h"

/* Largest K whose dot products fit an int32: |2 * S - sum(q)| <= 254 * K. */
#define MAX_K (INT32_MAX / 254)
/* Bytes of int8 activation rows per pass over the weights: they stay in L2 while every block of 32 output rows is
 * transposed and multiplied with them. */
#define PASS_BYTES (512 * 1024)
/* Up to this many activation rows, a kernel's direct products (hfb_int8_ops.direct) beat transposing the signs. */
#define DIRECT_MAX_ROWS 2
/* One quantized input costs about as much as this many multiply-adds of the integer kernels. */
#define QUANTIZE_WORK_FACTOR 16

typedef struct {
    const hfb_isa_ops *ops;
    const hfb_int8_ops *kernel;
    const void *x;
    int io_dtype; /* of x and y: HFB_F32 or HFB_BF16 */
    int64_t M, K, N, KB, KD, KP; /* KP: bytes per int8 row, the dword columns' 32 * KD */
    const uint8_t *packed;
    const void *scale;
    int scale_dtype;
    const float *bias;
    void *y;
    int8_t *q;
    float *xscale;
    int32_t *qsum;
    int parts;       /* of the quantization */
    hfb_split split; /* of the product */
    int *status;
} problem;

static const hfb_int8_ops *int8_ops(int isa) {
    if (!hfb_isa_ops_for(isa)) return NULL;
#if HFB_X86
    if (isa == HFB_ISA_AVX512 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw"))
        return &hfb_int8_avx512_vnni_ops;
    if (isa != HFB_ISA_PORTABLE) return &hfb_int8_avx2_ops;
#endif
    return &hfb_int8_portable_ops;
}

static void quantize_part(void *ctx, int tid) {
    const problem *p = ctx;
    /* A bfloat16 row is widened first (exactly), so that every kernel quantizes float32 as the reference does. */
    float *row = p->io_dtype == HFB_BF16 ? hfb_alloc(p->K * 4) : NULL;
    if (p->io_dtype == HFB_BF16 && !row) {
        p->status[tid] = HFB_ENOMEM;
        return;
    }
    for (int64_t m = p->M * tid / p->parts; m < p->M * (tid + 1) / p->parts; m++) {
        const float *x = (const float *)p->x + m * p->K;
        if (row) {
            p->ops->from_bf16((const uint16_t *)p->x + m * p->K, p->K, row);
            x = row;
        }
        p->kernel->quantize(x, p->K, p->KP, p->q + m * p->KP, p->xscale + m, p->qsum + m);
    }
    hfb_free(row);
    p->status[tid] = HFB_OK;
}

/* Output rows [n0, n1) of activation rows [m0, m1). A bfloat16 output block is computed in float32 into a buffer
 * (ystride HFB_ROWS) and rounded into y while it is in cache. */
static int run_block(const problem *p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    int direct = p->kernel->direct && m1 - m0 <= DIRECT_MAX_ROWS;
    uint32_t *wbuf = direct ? NULL : hfb_alloc(p->KD * HFB_ROWS * 4); /* the transposed signs */
    float *wscale = hfb_alloc(2 * HFB_ROWS * 4), *bias = wscale + HFB_ROWS;
    int64_t pass = PASS_BYTES / p->KP > 0 ? PASS_BYTES / p->KP : 1;
    int bf16 = p->io_dtype == HFB_BF16;
    float *block = bf16 ? hfb_alloc((pass < m1 - m0 ? pass : m1 - m0) * HFB_ROWS * 4) : NULL;
    int ok = (wbuf || direct) && wscale && (block || !bf16);
    for (int64_t mp = m0; ok && mp < m1; mp += pass) {
        int64_t mt = m1 - mp < pass ? m1 - mp : pass;
        for (int64_t row0 = n0; row0 < n1; row0 += HFB_ROWS) {
            int64_t nrows = n1 - row0 < HFB_ROWS ? n1 - row0 : HFB_ROWS;
            p->ops->load_groups(p->scale, p->scale_dtype, 1, row0, nrows, 0, 0, wscale);
            if (p->bias)
                for (int64_t r = 0; r < HFB_ROWS; r++) bias[r] = r < nrows ? p->bias[row0 + r] : 0.0f;
            float *y = bf16 ? block : (float *)p->y + mp * p->N + row0;
            int64_t ystride = bf16 ? HFB_ROWS : p->N;
            if (direct) {
                p->kernel->direct(p->packed + row0 * p->KB, p->KB, nrows, p->q + mp * p->KP, p->KP, mt,
                                  p->qsum + mp, p->xscale + mp, wscale, p->bias ? bias : NULL, y, ystride);
            } else {
                p->ops->transpose(p->packed + row0 * p->KB, p->KB, nrows, 0, p->KD, wbuf);
                p->kernel->rows(wbuf, p->KD, p->q + mp * p->KP, p->KP, mt, p->qsum + mp, p->xscale + mp, wscale,
                                p->bias ? bias : NULL, y, ystride, nrows);
            }
            if (bf16)
                for (int64_t i = 0; i < mt; i++)
                    p->ops->to_bf16(block + i * HFB_ROWS, nrows, (uint16_t *)p->y + (mp + i) * p->N + row0);
        }
    }
    hfb_free(wbuf);
    hfb_free(wscale);
    hfb_free(block);
    return ok ? HFB_OK : HFB_ENOMEM;
}

static void multiply_part(void *ctx, int tid) {
    const problem *p = ctx;
    int64_t r[4];
    hfb_part_ranges(p->split, p->M, p->N, tid, r);
    p->status[tid] = r[0] < r[1] && r[2] < r[3] ? run_block(p, r[0], r[1], r[2], r[3]) : HFB_OK;
}

/* Which int8 kernel (HFB_INT8_*) the instruction set runs on this CPU, -1 where the CPU lacks it: AVX-512 runs
 * VNNI where the CPU has it (with AVX-512BW), else the AVX2 kernel. */
HFB_API int hfb_int8_kernel(int isa) {
    const hfb_int8_ops *kernel = int8_ops(isa);
    return kernel ? kernel->code : -1;
}

/* x: [M, K] contiguous, of io_dtype HFB_F32 or HFB_BF16; packed: uint8 [N, ceil(K / 8)]; scale: [N] of HFB_F32 /
 * HFB_F16 / HFB_BF16 (one per row); bias: float32 [N] or NULL; y: [M, N] of io_dtype (a bfloat16 y is the float32
 * result rounded to nearest even). Returns HFB_OK or an error code, y undefined on error. */
HFB_API int hfb_binary_linear_int8(const void *x, int io_dtype, int64_t M, int64_t K, const uint8_t *packed,
                                   int64_t N, const void *scale, int scale_dtype, const float *bias, void *y,
                                   int isa, int nthreads) {
    if (M < 0 || N < 0 || K < 1 || K > MAX_K || scale_dtype < HFB_F32 || scale_dtype > HFB_BF16 ||
        (io_dtype != HFB_F32 && io_dtype != HFB_BF16))
        return HFB_EINVAL;
    problem p;
    memset(&p, 0, sizeof(p));
    p.ops = hfb_isa_ops_for(isa);
    p.kernel = int8_ops(isa);
    if (!p.ops || !p.kernel) return HFB_EISA;
    if (M == 0 || N == 0) return HFB_OK;
    p.x = x, p.io_dtype = io_dtype, p.M = M, p.K = K, p.N = N, p.KB = (K + 7) / 8, p.KD = (K + 31) / 32, p.KP = 32 * p.KD;
    p.packed = packed, p.scale = scale, p.scale_dtype = scale_dtype, p.bias = bias, p.y = y;
    p.q = hfb_alloc(M * p.KP);
    p.xscale = hfb_alloc(M * 4);
    p.qsum = hfb_alloc(M * 4);
    int status = p.q && p.xscale && p.qsum ? HFB_OK : HFB_ENOMEM;
    if (status == HFB_OK) {
        p.parts = hfb_thread_count(nthreads, (double)M * (double)K * QUANTIZE_WORK_FACTOR, M);
        status = hfb_run_parts(quantize_part, &p, p.parts, &p.status);
    }
    if (status == HFB_OK) {
        p.split = hfb_plan_split(M, N, K, nthreads);
        status = hfb_run_parts(multiply_part, &p, p.split.parts, &p.status);
    }
    hfb_free(p.q);
    hfb_free(p.xscale);
    hfb_free(p.qsum);
    return status;
}
