/* Exported API of the int8-activation path: y = x_int8 . signs, scaled, + bias, for a sign-lsb-v1 weight with one
 * scale per output row and no offset (hfb.h says how the rows are quantized and the result computed). Each thread
 * takes a range of blocks of 32 output rows (or of activation rows, where there are fewer blocks than threads),
 * transposes a block's packed rows once per pass and multiplies every activation row of the pass with it. */
#include <string.h>

#include "hfb.h"

/* Largest K whose dot products fit an int32: |2 * S - sum(q)| <= 254 * K. */
#define MAX_K (INT32_MAX / 254)
/* Bytes of int8 activation rows per pass over the weights: they stay in L2 while every block of 32 output rows is
 * transposed and multiplied with them. */
#define PASS_BYTES (512 * 1024)
/* One quantized input costs about as much as this many multiply-adds of the integer kernels. */
#define QUANTIZE_WORK_FACTOR 16

typedef struct {
    const hfb_isa_ops *ops;
    const hfb_int8_ops *kernel;
    const float *x;
    int64_t M, K, N, KB, KD, KP; /* KP: bytes per int8 row, the dword columns' 32 * KD */
    const uint8_t *packed;
    const void *scale;
    int scale_dtype;
    const float *bias;
    float *y;
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
    for (int64_t m = p->M * tid / p->parts; m < p->M * (tid + 1) / p->parts; m++)
        p->kernel->quantize(p->x + m * p->K, p->K, p->KP, p->q + m * p->KP, p->xscale + m, p->qsum + m);
    p->status[tid] = HFB_OK;
}

/* Output rows [n0, n1) of activation rows [m0, m1). */
static int run_block(const problem *p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    uint32_t *wbuf = hfb_alloc(p->KD * HFB_ROWS * 4);
    float *wscale = hfb_alloc(2 * HFB_ROWS * 4), *bias = wscale + HFB_ROWS;
    int ok = wbuf && wscale;
    int64_t pass = PASS_BYTES / p->KP > 0 ? PASS_BYTES / p->KP : 1;
    for (int64_t mp = m0; ok && mp < m1; mp += pass) {
        int64_t mt = m1 - mp < pass ? m1 - mp : pass;
        for (int64_t row0 = n0; row0 < n1; row0 += HFB_ROWS) {
            int64_t nrows = n1 - row0 < HFB_ROWS ? n1 - row0 : HFB_ROWS;
            p->ops->transpose(p->packed + row0 * p->KB, p->KB, nrows, 0, p->KD, wbuf);
            p->ops->load_groups(p->scale, p->scale_dtype, 1, row0, nrows, 0, 0, wscale);
            if (p->bias)
                for (int64_t r = 0; r < HFB_ROWS; r++) bias[r] = r < nrows ? p->bias[row0 + r] : 0.0f;
            p->kernel->rows(wbuf, p->KD, p->q + mp * p->KP, p->KP, mt, p->qsum + mp, p->xscale + mp, wscale,
                            p->bias ? bias : NULL, p->y + mp * p->N + row0, p->N, nrows);
        }
    }
    hfb_free(wbuf);
    hfb_free(wscale);
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

/* x: float32 [M, K] contiguous; packed: uint8 [N, ceil(K / 8)]; scale: [N] of HFB_F32 / HFB_F16 / HFB_BF16 (one per
 * row); bias: float32 [N] or NULL; y: float32 [M, N]. Returns HFB_OK or an error code, y undefined on error. */
HFB_API int hfb_binary_linear_int8(const float *x, int64_t M, int64_t K, const uint8_t *packed, int64_t N,
                                   const void *scale, int scale_dtype, const float *bias, float *y, int isa,
                                   int nthreads) {
    if (M < 0 || N < 0 || K < 1 || K > MAX_K || scale_dtype < HFB_F32 || scale_dtype > HFB_BF16) return HFB_EINVAL;
    problem p;
    memset(&p, 0, sizeof(p));
    p.ops = hfb_isa_ops_for(isa);
    p.kernel = int8_ops(isa);
    if (!p.ops || !p.kernel) return HFB_EISA;
    if (M == 0 || N == 0) return HFB_OK;
    p.x = x, p.M = M, p.K = K, p.N = N, p.KB = (K + 7) / 8, p.KD = (K + 31) / 32, p.KP = 32 * p.KD;
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
