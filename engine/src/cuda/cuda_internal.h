/* cuda_internal.h - shared by the CUDA backend's files (the .c files of engine/src/cuda; built only with REALNET_CUDA).
 *
 * Model: one non-blocking stream per device carries every kernel, cuBLAS and cuDNN call and copy of that
 * device, so work is ordered without events and a freed block can be handed to the next allocation at once
 * (anything that reads it later is queued after whatever used it before). Copies to and from the host wait
 * for the stream. Every CUDA, cuBLAS and cuDNN status is checked and becomes an rn_error naming the call.
 * The exception is a fork (rn_cuda_fork): until the join, work goes to the stream of the current lane, each
 * lane has its own cuBLAS and cuDNN handle, and the allocator tags blocks by lane (lane_tags.h).
 */
#ifndef REALNET_CUDA_INTERNAL_H
#define REALNET_CUDA_INTERNAL_H

#include <cuda_runtime_api.h>

#include "../internal.h"
#include "cuda_api.h"
#include "rn_cuda_kernels.h"

#define RN_CUDA_MAX_DEVICES 16
#define RN_CUDA_MAX_LANES 8

/* RN_OK, or an RN_ERR_DEVICE error "<call> failed: <CUDA's message>" (RN_ERR_OOM for out-of-memory). */
rn_status rn_cu_check(cudaError_t e, const char *call);

/* Makes `device` current, creating its stream on first use, and returns the stream. */
rn_status rn_cu_enter(int device, cudaStream_t *stream);
/* rn_cu_enter for the device of t's storage. */
rn_status rn_cu_stream(const rn_tensor *t, cudaStream_t *stream);
/* The lane work on the device goes to (0 when not forked): which cuBLAS / cuDNN handle to use. */
int rn_cu_current_lane(int device);
/* Waits for every stream of the device, lanes included. */
rn_status rn_cu_synchronize_all(int device);
/* Create the cuBLAS / cuDNN handles of lanes 0 .. lanes-1 now (a fork outside a capture calls them): creating one
 * allocates device memory, which a graph capture must not record. */
rn_status rn_cu_blas_prepare(int device, int lanes);
rn_status rn_cu_dnn_prepare(int device, int lanes);

/* Device address of t's element 0 (storage offset applied), and its shape/strides for the launchers. */
static inline void *rn_cu_ptr(const rn_tensor *t) {
  return t ? (char *)t->storage->data + t->offset * (int64_t)rn_dtype_size(t->dtype) : NULL;
}
static inline rnk_layout rn_cu_layout(const rn_tensor *t) {
  rnk_layout l;
  l.ndim = t->ndim;
  for (int d = 0; d < RN_MAX_DIMS; d++) {
    l.shape[d] = d < t->ndim ? t->shape[d] : 1;
    l.stride[d] = d < t->ndim ? t->stride[d] : 0;
  }
  return l;
}

/* Kernel-side argument checks (the op layer validates user input; these guard direct callers). */
rn_status rn_cu_need(const rn_tensor *t, bool contiguous, bool f32, const char *what);

/* --- cuda_alloc.c: the caching allocator (blocks kept by rounded size, per device) --- */
rn_status rn_cu_alloc(int device, size_t bytes, void **ptr);
void rn_cu_free(int device, void *ptr, size_t bytes);
void rn_cu_release_cache(int device); /* -1: every device */
size_t rn_cu_cached_bytes(void);
/* The allocator's side of rn_cuda_fork / rn_cuda_lane / rn_cuda_join (lane tags, see lane_tags.h). */
rn_status rn_cu_alloc_fork(int device, int lanes);
rn_status rn_cu_alloc_use_lane(int device, int lane);
void rn_cu_alloc_join(int device);
/* The blocks a CUDA graph capture allocates or frees (see cuda_alloc.c): begin before the capture, end_capture
 * after it, free once the graph is destroyed and its replays have finished. One capture at a time. */
typedef struct rn_cu_graph_pool rn_cu_graph_pool;
rn_status rn_cu_graph_pool_begin(rn_cu_graph_pool **out);
void rn_cu_graph_pool_end_capture(rn_cu_graph_pool *p);
void rn_cu_graph_pool_free(rn_cu_graph_pool *p);

/* --- the kernel table: cuda_elementwise.c, cuda_kernels.c, cuda_blas.c, cuda_conv.c --- */
rn_status rn_cu_fill(rn_tensor *t, double v);
rn_status rn_cu_copy(rn_tensor *dst, const rn_tensor *src);
rn_status rn_cu_unary(rn_unary_op op, rn_tensor *y, const rn_tensor *x, float a, float b);
rn_status rn_cu_unary_backward(rn_unary_op op, rn_tensor *gx, const rn_tensor *gy, const rn_tensor *x, float a,
                               float b);
rn_status rn_cu_binary(rn_binary_op op, rn_tensor *y, const rn_tensor *a, const rn_tensor *b);
rn_status rn_cu_where(rn_tensor *y, const rn_tensor *cond, const rn_tensor *a, const rn_tensor *b);

rn_status rn_cu_reduce(rn_reduce_op op, rn_tensor *y, const rn_tensor *x, const bool *reduce);
rn_status rn_cu_arg_reduce(bool is_max, rn_tensor *values, rn_tensor *indices, const rn_tensor *x, int dim);
rn_status rn_cu_softmax(rn_tensor *y, const rn_tensor *x, int dim, bool log);
rn_status rn_cu_softmax_backward(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *y, int dim, bool log);

rn_status rn_cu_concat(rn_tensor *y, int n, const rn_tensor *const *xs, int dim);
rn_status rn_cu_index_select(rn_tensor *y, const rn_tensor *x, int dim, const rn_tensor *index);
rn_status rn_cu_index_add(rn_tensor *gx, int dim, const rn_tensor *index, const rn_tensor *gy);
rn_status rn_cu_gather(rn_tensor *y, const rn_tensor *x, int dim, const rn_tensor *index);
rn_status rn_cu_scatter_add(rn_tensor *gx, int dim, const rn_tensor *index, const rn_tensor *gy);
rn_status rn_cu_topk(rn_tensor *values, rn_tensor *indices, const rn_tensor *x, int k, int dim, bool largest);

rn_status rn_cu_gemm(rn_tensor *y, const rn_tensor *a, const rn_tensor *b, bool trans_a, bool trans_b, float alpha,
                     float beta);

rn_status rn_cu_conv2d(rn_tensor *y, const rn_tensor *x, const rn_tensor *w, const rn_tensor *bias,
                       const rn_conv_params *p);
rn_status rn_cu_conv2d_fused(rn_tensor *y, const rn_tensor *x, const rn_tensor *w, const rn_tensor *bias,
                             const rn_tensor *residual, rn_unary_op act, const rn_conv_params *p);
rn_status rn_cu_conv2d_backward_data(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *w, const rn_conv_params *p);
rn_status rn_cu_conv2d_backward_weight(rn_tensor *gw, const rn_tensor *gy, const rn_tensor *x,
                                       const rn_conv_params *p);

rn_status rn_cu_batch_norm_stats(rn_tensor *mean, rn_tensor *var, const rn_tensor *x);
rn_status rn_cu_batch_norm_apply(rn_tensor *y, const rn_tensor *x, const rn_tensor *mean, const rn_tensor *invstd,
                                 const rn_tensor *w, const rn_tensor *b);
rn_status rn_cu_batch_norm_backward(rn_tensor *gx, rn_tensor *gw, rn_tensor *gb, const rn_tensor *gy,
                                    const rn_tensor *x, const rn_tensor *mean, const rn_tensor *invstd,
                                    const rn_tensor *w, bool training);
rn_status rn_cu_group_norm(rn_tensor *y, rn_tensor *mean, rn_tensor *rstd, const rn_tensor *x, int groups,
                           const rn_tensor *w, const rn_tensor *b, float eps, bool silu);
rn_status rn_cu_group_norm_backward(rn_tensor *gx, rn_tensor *gw, rn_tensor *gb, const rn_tensor *gy,
                                    const rn_tensor *x, const rn_tensor *mean, const rn_tensor *rstd, int groups,
                                    const rn_tensor *w);

rn_status rn_cu_max_pool2d(rn_tensor *y, rn_tensor *argmax, const rn_tensor *x, const rn_pool_params *p);
rn_status rn_cu_max_pool2d_backward(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *argmax);
rn_status rn_cu_avg_pool2d(rn_tensor *y, const rn_tensor *x, const rn_pool_params *p);
rn_status rn_cu_avg_pool2d_backward(rn_tensor *gx, const rn_tensor *gy, const rn_pool_params *p);
rn_status rn_cu_adaptive_avg_pool2d(rn_tensor *y, const rn_tensor *x);
rn_status rn_cu_adaptive_avg_pool2d_backward(rn_tensor *gx, const rn_tensor *gy);
rn_status rn_cu_upsample(rn_tensor *y, const rn_tensor *x, rn_upsample_mode mode, bool align_corners);
rn_status rn_cu_upsample_backward(rn_tensor *gx, const rn_tensor *gy, rn_upsample_mode mode, bool align_corners);

rn_status rn_cu_rng_uniform(rn_tensor *t, uint64_t seed, uint64_t stream, uint64_t offset, float lo, float hi);
rn_status rn_cu_rng_normal(rn_tensor *t, uint64_t seed, uint64_t stream, uint64_t offset, float mean, float std);
rn_status rn_cu_adam_step(rn_tensor *p, const rn_tensor *g, rn_tensor *m, rn_tensor *v, float lr, float beta1,
                          float beta2, float eps, float weight_decay, int64_t step, bool decoupled);

#endif
