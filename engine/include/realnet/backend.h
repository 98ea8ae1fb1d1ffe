/* backend.h - the device vtable: memory, copies, synchronisation and the kernel table.
 *
 * The device-independent op layer (engine/src/ops_*.c) checks arguments, allocates outputs and records
 * autograd nodes; it then calls the kernels of the inputs' backend. The CPU backend is always built
 * (engine/src/cpu/); a CUDA backend registers itself in backend.c when REALNET_CUDA is on.
 * Unless a comment says otherwise, kernels receive contiguous tensors of the documented dtypes, outputs
 * already allocated with the right shape, and return RN_OK or an error with a message.
 */
#ifndef REALNET_BACKEND_H
#define REALNET_BACKEND_H

#include "ops.h"

#define RN_CONCAT_MAX 8

typedef struct rn_kernels {
  /* --- elementwise; these accept any strides --- */
  rn_status (*fill)(rn_tensor *t, double v);
  rn_status (*copy)(rn_tensor *dst, const rn_tensor *src);           /* same shape, dtype conversion */
  /* y = op(x) (y contiguous, x any strides, float32) */
  rn_status (*unary)(rn_unary_op op, rn_tensor *y, const rn_tensor *x, float a, float b);
  /* gx = gy * op'(x) (all the same shape, contiguous) */
  rn_status (*unary_backward)(rn_unary_op op, rn_tensor *gx, const rn_tensor *gy, const rn_tensor *x, float a, float b);
  /* y = a op b; a and b are views already expanded to y's shape (stride 0 where broadcast) */
  rn_status (*binary)(rn_binary_op op, rn_tensor *y, const rn_tensor *a, const rn_tensor *b);
  rn_status (*where)(rn_tensor *y, const rn_tensor *cond, const rn_tensor *a, const rn_tensor *b); /* expanded views */

  /* --- reductions (float32) --- */
  /* y has x's rank with reduced dims of size 1; reduce[d] says which dims are reduced */
  rn_status (*reduce)(rn_reduce_op op, rn_tensor *y, const rn_tensor *x, const bool *reduce);
  /* values/indices have x's rank with dim of size 1; indices int64 */
  rn_status (*arg_reduce)(bool is_max, rn_tensor *values, rn_tensor *indices, const rn_tensor *x, int dim);
  rn_status (*softmax)(rn_tensor *y, const rn_tensor *x, int dim, bool log);
  rn_status (*softmax_backward)(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *y, int dim, bool log);

  /* --- indexing (index tensors int64, 0-based, already range-checked) --- */
  /* y = xs[0..n-1] one after another along dim: 2 .. RN_CONCAT_MAX contiguous inputs of y's dtype, equal to y's
   * shape but along dim (rn_concat's one-call path; other cases copy each input into a view of y) */
  rn_status (*concat)(rn_tensor *y, int n, const rn_tensor *const *xs, int dim);
  rn_status (*index_select)(rn_tensor *y, const rn_tensor *x, int dim, const rn_tensor *index);
  rn_status (*index_add)(rn_tensor *gx, int dim, const rn_tensor *index, const rn_tensor *gy); /* gx zeroed */
  rn_status (*gather)(rn_tensor *y, const rn_tensor *x, int dim, const rn_tensor *index);
  rn_status (*scatter_add)(rn_tensor *gx, int dim, const rn_tensor *index, const rn_tensor *gy); /* gx zeroed */
  rn_status (*topk)(rn_tensor *values, rn_tensor *indices, const rn_tensor *x, int k, int dim, bool largest);

  /* --- matrix products: y[b] = alpha * op(a[b]) op(b[b]) + beta * y[b], all [B, rows, cols] float32; y
   * contiguous, a and b with contiguous rows (any row and batch strides: rn_gemm_operand in internal.h) --- */
  rn_status (*gemm)(rn_tensor *y, const rn_tensor *a, const rn_tensor *b, bool trans_a, bool trans_b,
                    float alpha, float beta);

  /* --- convolution (NCHW float32); bias may be NULL --- */
  rn_status (*conv2d)(rn_tensor *y, const rn_tensor *x, const rn_tensor *w, const rn_tensor *bias,
                      const rn_conv_params *p);
  /* y = act(conv2d(x, w, bias) + residual): residual (y's shape) may be NULL, act RN_ACT_NONE or a unary op
   * without parameters (rn_conv2d_fused); the same values as conv2d, binary add and unary one after another */
  rn_status (*conv2d_fused)(rn_tensor *y, const rn_tensor *x, const rn_tensor *w, const rn_tensor *bias,
                            const rn_tensor *residual, rn_unary_op act, const rn_conv_params *p);
  /* gx = d(conv2d)/dx applied to gy (this is also conv-transpose's forward) */
  rn_status (*conv2d_backward_data)(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *w, const rn_conv_params *p);
  /* gw = d(conv2d)/dw applied to gy (overwritten, not accumulated) */
  rn_status (*conv2d_backward_weight)(rn_tensor *gw, const rn_tensor *gy, const rn_tensor *x, const rn_conv_params *p);

  /* --- normalisation: x viewed as [N, C, S] (S = H*W, or 1) --- */
  /* per-channel mean and biased variance over N and S */
  rn_status (*batch_norm_stats)(rn_tensor *mean, rn_tensor *var, const rn_tensor *x);
  /* y = (x - mean) * invstd * w + b; w, b may be NULL */
  rn_status (*batch_norm_apply)(rn_tensor *y, const rn_tensor *x, const rn_tensor *mean, const rn_tensor *invstd,
                                const rn_tensor *w, const rn_tensor *b);
  /* gx (and gw, gb when non-NULL) given gy; training says whether mean/invstd came from the batch */
  rn_status (*batch_norm_backward)(rn_tensor *gx, rn_tensor *gw, rn_tensor *gb, const rn_tensor *gy,
                                   const rn_tensor *x, const rn_tensor *mean, const rn_tensor *invstd,
                                   const rn_tensor *w, bool training);
  /* mean/rstd are [N, groups]; silu: y = SiLU(group norm), one pass instead of two (inference) */
  rn_status (*group_norm)(rn_tensor *y, rn_tensor *mean, rn_tensor *rstd, const rn_tensor *x, int groups,
                          const rn_tensor *w, const rn_tensor *b, float eps, bool silu);
  rn_status (*group_norm_backward)(rn_tensor *gx, rn_tensor *gw, rn_tensor *gb, const rn_tensor *gy,
                                   const rn_tensor *x, const rn_tensor *mean, const rn_tensor *rstd, int groups,
                                   const rn_tensor *w);

  /* --- pooling and resampling (NCHW float32) --- */
  rn_status (*max_pool2d)(rn_tensor *y, rn_tensor *argmax, const rn_tensor *x, const rn_pool_params *p); /* argmax int64 flat h*W+w */
  rn_status (*max_pool2d_backward)(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *argmax);      /* gx zeroed */
  rn_status (*avg_pool2d)(rn_tensor *y, const rn_tensor *x, const rn_pool_params *p);
  rn_status (*avg_pool2d_backward)(rn_tensor *gx, const rn_tensor *gy, const rn_pool_params *p);      /* gx zeroed */
  rn_status (*adaptive_avg_pool2d)(rn_tensor *y, const rn_tensor *x);
  rn_status (*adaptive_avg_pool2d_backward)(rn_tensor *gx, const rn_tensor *gy);                       /* gx zeroed */
  rn_status (*upsample)(rn_tensor *y, const rn_tensor *x, rn_upsample_mode mode, bool align_corners);
  rn_status (*upsample_backward)(rn_tensor *gx, const rn_tensor *gy, rn_upsample_mode mode, bool align_corners); /* gx zeroed */

  /* --- random numbers: element i (row-major over t) uses Philox counter (offset + i, stream) --- */
  rn_status (*rng_uniform)(rn_tensor *t, uint64_t seed, uint64_t stream, uint64_t offset, float lo, float hi);
  rn_status (*rng_normal)(rn_tensor *t, uint64_t seed, uint64_t stream, uint64_t offset, float mean, float std);

  /* --- optimiser steps, in place on contiguous float32 tensors of one shape --- */
  /* Adam/AdamW: m, v moments; `step` counts from 1; decoupled = AdamW's weight decay */
  rn_status (*adam_step)(rn_tensor *p, const rn_tensor *g, rn_tensor *m, rn_tensor *v, float lr, float beta1,
                         float beta2, float eps, float weight_decay, int64_t step, bool decoupled);
} rn_kernels;

typedef struct rn_backend {
  const char *name;
  rn_device_type type;
  rn_status (*alloc)(const struct rn_backend *be, int device_index, size_t bytes, void **ptr);
  void (*free)(const struct rn_backend *be, int device_index, void *ptr, size_t bytes);
  /* bytes between host and/or this backend's devices */
  rn_status (*memcpy)(const struct rn_backend *be, void *dst, rn_device dst_dev, const void *src, rn_device src_dev,
                      size_t bytes);
  rn_status (*sync)(const struct rn_backend *be, int device_index);
  int (*device_count)(const struct rn_backend *be);
  const rn_kernels *k;
  void *ctx; /* backend state: streams, handles, caching allocator */
} rn_backend;

/* The backend of a device type, or NULL with an error set when not built or no such device. */
const rn_backend *rn_backend_for(rn_device dev);
const rn_backend *rn_cpu_backend(void);

/* Kernel-table calls made by the op layer since the start (all backends, all threads): the difference across
 * a forward pass counts its kernels, what a small batch on a GPU pays for in launches. */
uint64_t rn_kernel_calls(void);

/* Threads used by the CPU kernels (OpenMP); n <= 0 restores the default. */
void rn_set_num_threads(int n);
int rn_get_num_threads(void);

#endif
