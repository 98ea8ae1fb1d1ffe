/* rn_cuda_kernels.h - the C ABI of the CUDA kernels (the .cu files of kernels/), called by engine/src/cuda/.
 *
 * Every launcher takes device pointers to element 0 of its operands (the tensor's storage offset already
 * applied), sizes, and the stream to run on, and returns the cudaError_t of the launch (cudaSuccess or the
 * error cudaGetLastError reports); the caller turns an error into rn_error naming the launcher. Launchers never
 * synchronise, allocate or abort. Semantics match the CPU kernels of engine/src/cpu/ (see backend.h for each
 * contract); where a launcher needs scratch memory the caller allocates it after asking the *_workspace
 * function for the size. Enum arguments are the engine's (rn_unary_op, rn_binary_op, rn_reduce_op, rn_dtype,
 * rn_upsample_mode).
 */
#ifndef REALNET_CUDA_KERNELS_H
#define REALNET_CUDA_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "realnet/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Shape and element strides of one operand (strides may be 0 for broadcast views). */
typedef struct {
  int ndim;
  int64_t shape[RN_MAX_DIMS];
  int64_t stride[RN_MAX_DIMS];
} rnk_layout;

/* ------------------------------------------------------------------ elementwise.cu (any strides) */
cudaError_t rnk_fill(void *p, rn_dtype dt, const rnk_layout *l, double v, cudaStream_t s);
/* dst and src have the same shape; dtype conversion as the CPU's rn_store (uint8 saturates, NaN -> 0) */
cudaError_t rnk_copy(void *dst, rn_dtype ddt, const rnk_layout *dl, const void *src, rn_dtype sdt,
                     const rnk_layout *sl, cudaStream_t s);
cudaError_t rnk_unary(rn_unary_op op, float *y, const rnk_layout *yl, const float *x, const rnk_layout *xl, float a,
                      float b, cudaStream_t s);
/* contiguous, n elements */
cudaError_t rnk_unary_backward(rn_unary_op op, float *gx, const float *gy, const float *x, int64_t n, float a,
                               float b, cudaStream_t s);
cudaError_t rnk_binary(rn_binary_op op, void *y, rn_dtype ydt, const rnk_layout *yl, const void *a, rn_dtype adt,
                       const rnk_layout *al, const void *b, rn_dtype bdt, const rnk_layout *bl, cudaStream_t s);
/* y float32 contiguous of the layouts' shape; cond any dtype */
cudaError_t rnk_where(float *y, const void *cond, rn_dtype cdt, const rnk_layout *cl, const float *a,
                      const rnk_layout *al, const float *b, const rnk_layout *bl, cudaStream_t s);

/* y [N, C, S] (contiguous) = act((y + b[C]) + z[N, C, S]): a convolution's epilogue; b and z may be NULL, act
 * RN_UN_COUNT (RN_ACT_NONE) for none, else a unary op without parameters */
cudaError_t rnk_conv_epilogue(float *y, const float *b, const float *z, rn_unary_op act, int64_t N, int64_t C,
                              int64_t S, cudaStream_t s);

/* ------------------------------------------------------------------ bf16.cu (contiguous, n elements) */
/* bfloat16 bit patterns from float32, rounded to nearest even (NaN stays NaN) */
cudaError_t rnk_to_bf16(uint16_t *dst, const float *src, int64_t n, cudaStream_t s);
/* float32 from bfloat16 bit patterns (exact) */
cudaError_t rnk_from_bf16(float *dst, const uint16_t *src, int64_t n, cudaStream_t s);

/* ------------------------------------------------------------------ reduce.cu */
/* x's dims split into kept (outer, row-major) and reduced groups, each with sizes and x strides. */
typedef struct {
  int nk, nr;
  int64_t ksz[RN_MAX_DIMS], kst[RN_MAX_DIMS];
  int64_t rsz[RN_MAX_DIMS], rst[RN_MAX_DIMS];
  int64_t n_out, n_red;
} rnk_reduce_plan;
/* Bytes of scratch rnk_reduce needs for this plan (0 when none). */
size_t rnk_reduce_workspace(const rnk_reduce_plan *p);
/* y[o] (contiguous, n_out values) = op over the n_red elements of output o; mean divides by n_red. */
cudaError_t rnk_reduce(rn_reduce_op op, float *y, const float *x, const rnk_reduce_plan *p, void *work,
                       cudaStream_t s);
/* x contiguous viewed as [outer, D, inner]; values/indices [outer, inner] */
cudaError_t rnk_arg_reduce(bool is_max, float *values, int64_t *indices, const float *x, int64_t outer, int64_t D,
                           int64_t inner, cudaStream_t s);
cudaError_t rnk_softmax(float *y, const float *x, int64_t outer, int64_t D, int64_t inner, bool log, cudaStream_t s);
cudaError_t rnk_softmax_backward(float *gx, const float *gy, const float *y, int64_t outer, int64_t D, int64_t inner,
                                 bool log, cudaStream_t s);

/* ------------------------------------------------------------------ index.cu (contiguous; indices int64) */
/* y [outer, sum chunk_i] = the inputs [outer, chunk_i] side by side (chunk = length along the dim x inner), n of
 * them (1 .. 8), all of elem_size 1, 2, 4 or 8 bytes: a concatenation in one launch */
typedef struct {
  int n;
  const void *x[8];
  int64_t chunk[8];
} rnk_concat_inputs;
cudaError_t rnk_concat(void *y, size_t elem_size, const rnk_concat_inputs *in, int64_t outer, cudaStream_t s);
/* y [outer, K, inner] = x [outer, D, inner] picked by ix[K]; elem_size 1, 2, 4 or 8 bytes */
cudaError_t rnk_index_select(void *y, const void *x, size_t elem_size, const int64_t *ix, int64_t outer, int64_t D,
                             int64_t inner, int64_t K, cudaStream_t s);
/* gx [outer, D, inner] += gy [outer, K, inner] at ix[K] */
cudaError_t rnk_index_add(float *gx, const int64_t *ix, const float *gy, int64_t outer, int64_t D, int64_t inner,
                          int64_t K, cudaStream_t s);
/* Elements of `index` (shape ishape) and the contiguous data tensor (shape dshape) along dim. */
typedef struct {
  int ndim, dim;
  int64_t ishape[RN_MAX_DIMS], dshape[RN_MAX_DIMS];
  int64_t n; /* elements of index */
} rnk_gather_plan;
cudaError_t rnk_gather(void *y, const void *x, size_t elem_size, const int64_t *ix, const rnk_gather_plan *p,
                       cudaStream_t s);
cudaError_t rnk_scatter_add(float *gx, const int64_t *ix, const float *gy, const rnk_gather_plan *p, cudaStream_t s);
/* sorted top k along D of x [outer, D, inner]; values/indices [outer, k, inner] */
size_t rnk_topk_workspace(int64_t outer, int64_t D, int64_t inner, int k);
cudaError_t rnk_topk(float *values, int64_t *indices, const float *x, int64_t outer, int64_t D, int64_t inner, int k,
                     bool largest, void *work, cudaStream_t s);

/* ------------------------------------------------------------------ norm.cu (x viewed as [N, C, S]) */
cudaError_t rnk_batch_norm_stats(float *mean, float *var, const float *x, int64_t N, int64_t C, int64_t S,
                                 cudaStream_t s);
/* w, b may be NULL */
cudaError_t rnk_batch_norm_apply(float *y, const float *x, const float *mean, const float *invstd, const float *w,
                                 const float *b, int64_t N, int64_t C, int64_t S, cudaStream_t s);
/* gx, gw, gb may be NULL; work holds 2*C doubles */
cudaError_t rnk_batch_norm_backward(float *gx, float *gw, float *gb, const float *gy, const float *x,
                                    const float *mean, const float *invstd, const float *w, bool training, int64_t N,
                                    int64_t C, int64_t S, double *work, cudaStream_t s);
cudaError_t rnk_group_norm(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                           int64_t N, int64_t C, int64_t S, int groups, float eps, bool silu, cudaStream_t s);
cudaError_t rnk_group_norm_backward(float *gx, float *gw, float *gb, const float *gy, const float *x,
                                    const float *mean, const float *rstd, const float *w, int64_t N, int64_t C,
                                    int64_t S, int groups, cudaStream_t s);

/* ------------------------------------------------------------------ pool.cu (NCHW, planes = N*C) */
typedef struct {
  int64_t planes, h, w, oh, ow; /* input-side h, w; output-side oh, ow */
  int kernel[2], stride[2], pad[2];
  bool count_include_pad;
} rnk_pool;
cudaError_t rnk_max_pool2d(float *y, int64_t *argmax, const float *x, const rnk_pool *p, cudaStream_t s);
/* gx zeroed by the caller */
cudaError_t rnk_max_pool2d_backward(float *gx, const float *gy, const int64_t *argmax, const rnk_pool *p,
                                    cudaStream_t s);
cudaError_t rnk_avg_pool2d(float *y, const float *x, const rnk_pool *p, cudaStream_t s);
cudaError_t rnk_avg_pool2d_backward(float *gx, const float *gy, const rnk_pool *p, cudaStream_t s);
cudaError_t rnk_adaptive_avg_pool2d(float *y, const float *x, const rnk_pool *p, cudaStream_t s);
cudaError_t rnk_adaptive_avg_pool2d_backward(float *gx, const float *gy, const rnk_pool *p, cudaStream_t s);
cudaError_t rnk_upsample(float *y, const float *x, const rnk_pool *p, rn_upsample_mode mode, bool align_corners,
                         cudaStream_t s);
cudaError_t rnk_upsample_backward(float *gx, const float *gy, const rnk_pool *p, rn_upsample_mode mode,
                                  bool align_corners, cudaStream_t s);

/* ------------------------------------------------------------------ random.cu (contiguous) */
cudaError_t rnk_rng_uniform(float *p, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset, float lo, float hi,
                            cudaStream_t s);
cudaError_t rnk_rng_normal(float *p, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset, float mean,
                           float std, cudaStream_t s);
/* One Adam/AdamW step; step_size = lr / (1 - beta1^t), inv_sqrt_bc2 = 1 / sqrt(1 - beta2^t), decay = 1 - lr*wd
 * (AdamW) or 1, l2 = wd (Adam) or 0 — computed on the host exactly as the CPU kernel does. */
cudaError_t rnk_adam_step(float *p, const float *g, float *m, float *v, int64_t n, float beta1, float beta2,
                          float eps, float step_size, float inv_sqrt_bc2, float decay, float l2, cudaStream_t s);

#ifdef __cplusplus
}
#endif

#endif
