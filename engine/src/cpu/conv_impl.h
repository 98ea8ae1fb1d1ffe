/* conv_impl.h - what the CPU convolution files (conv.c, conv_im2col.c, conv_onednn.c) and gemm.c share. */
#ifndef REALNET_CPU_CONV_IMPL_H
#define REALNET_CPU_CONV_IMPL_H

#include "cpu_kernels.h"

/* One convolution's sizes, read from the tensors of a call (x: [n,c,h,w], w: [o,c/g,kh,kw], y: [n,o,oh,ow]).
 * oh/ow may be smaller than the strided formula gives (conv-transpose with output_padding >= stride). */
typedef struct {
  int64_t n, c, h, w, o, kh, kw, oh, ow;
  int sh, sw, ph, pw, dh, dw, g;
} rn_conv_geom;

rn_conv_geom rn_conv_geom_make(const rn_tensor *x, const rn_tensor *w, const rn_tensor *y, const rn_conv_params *p);

/* --- gemm.c: row-major single-precision products without thread oversubscription ---
 * OpenBLAS (the pthread build) is kept single-threaded; parallelism comes from OpenMP, the same pool that
 * oneDNN and every other kernel uses, so the two runtimes never compete for the cores. */
void rn_cpu_blas_init(void);
/* C[m,n] = alpha op(A) op(B) + beta C on the calling thread only. */
void rn_cpu_sgemm1(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
/* The same product split over the OpenMP threads (call it outside parallel regions). */
void rn_cpu_sgemm_par(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                      const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* --- conv_im2col.c: im2col/col2im + OpenBLAS, pointers to contiguous NCHW data --- */
rn_status rn_conv_im2col_forward(const rn_conv_geom *g, float *y, const float *x, const float *w, const float *bias);
rn_status rn_conv_im2col_backward_data(const rn_conv_geom *g, float *gx, const float *gy, const float *w);
rn_status rn_conv_im2col_backward_weight(const rn_conv_geom *g, float *gw, const float *gy, const float *x);

/* --- conv_onednn.c: oneDNN primitives cached by shape. RN_ERR_UNSUPPORTED (no message) means "oneDNN has no
 * primitive for this case": the caller falls back to im2col. --- */
/* slot / stamp: see rn_cpu_conv2d_packed (NULL / 0 for none) */
rn_status rn_conv_onednn_forward(const rn_conv_geom *g, float *y, const float *x, const float *w, const float *bias,
                                 rn_conv_packed **slot, uint64_t stamp);
rn_status rn_conv_onednn_backward_data(const rn_conv_geom *g, float *gx, const float *gy, const float *w);
rn_status rn_conv_onednn_backward_weight(const rn_conv_geom *g, float *gw, const float *gy, const float *x);

/* A reusable 64-byte aligned scratch buffer of at least `bytes` (slot 0..RN_SCRATCH_SLOTS-1); kept between
 * calls because fresh pages are slow to fault in. NULL when out of memory. Not for concurrent callers. */
#define RN_SCRATCH_SLOTS 8
float *rn_cpu_scratch(int slot, size_t bytes);

#endif
