/* cpu_kernels.h - the CPU backend's kernels (see backend.h for each contract). One file per family. */
#ifndef REALNET_CPU_KERNELS_H
#define REALNET_CPU_KERNELS_H

#include "../internal.h"

/* cpu_backend.c: frees the blocks the allocator keeps for reuse */
void rn_cpu_release_cache(void);

/* elementwise.c */
rn_status rn_cpu_fill(rn_tensor *t, double v);
rn_status rn_cpu_copy(rn_tensor *dst, const rn_tensor *src);
rn_status rn_cpu_unary(rn_unary_op op, rn_tensor *y, const rn_tensor *x, float a, float b);
rn_status rn_cpu_unary_backward(rn_unary_op op, rn_tensor *gx, const rn_tensor *gy, const rn_tensor *x, float a, float b);
rn_status rn_cpu_binary(rn_binary_op op, rn_tensor *y, const rn_tensor *a, const rn_tensor *b);
rn_status rn_cpu_where(rn_tensor *y, const rn_tensor *cond, const rn_tensor *a, const rn_tensor *b);

/* reduce.c */
rn_status rn_cpu_reduce(rn_reduce_op op, rn_tensor *y, const rn_tensor *x, const bool *reduce);
rn_status rn_cpu_arg_reduce(bool is_max, rn_tensor *values, rn_tensor *indices, const rn_tensor *x, int dim);
rn_status rn_cpu_softmax(rn_tensor *y, const rn_tensor *x, int dim, bool log);
rn_status rn_cpu_softmax_backward(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *y, int dim, bool log);

/* index.c */
rn_status rn_cpu_concat(rn_tensor *y, int n, const rn_tensor *const *xs, int dim);
rn_status rn_cpu_index_select(rn_tensor *y, const rn_tensor *x, int dim, const rn_tensor *index);
rn_status rn_cpu_index_add(rn_tensor *gx, int dim, const rn_tensor *index, const rn_tensor *gy);
rn_status rn_cpu_gather(rn_tensor *y, const rn_tensor *x, int dim, const rn_tensor *index);
rn_status rn_cpu_scatter_add(rn_tensor *gx, int dim, const rn_tensor *index, const rn_tensor *gy);
rn_status rn_cpu_topk(rn_tensor *values, rn_tensor *indices, const rn_tensor *x, int k, int dim, bool largest);

/* gemm.c */
rn_status rn_cpu_gemm(rn_tensor *y, const rn_tensor *a, const rn_tensor *b, bool trans_a, bool trans_b, float alpha,
                      float beta);

/* conv.c */
rn_status rn_cpu_conv2d(rn_tensor *y, const rn_tensor *x, const rn_tensor *w, const rn_tensor *bias,
                        const rn_conv_params *p);
/* rn_cpu_conv2d for weights the caller keeps unchanged while `stamp` stays the same (a frozen backbone's): their
 * copy in oneDNN's blocked layout is kept in *slot (allocated here, owned by the caller, freed with
 * rn_conv_packed_free) and reused by later calls with the same stamp instead of reordering the weights again.
 * The caller must pass a new stamp whenever the weights may have changed; stamp 0 means "may be shared with
 * someone who changes them": no reuse, and the slot is emptied. Equal to rn_cpu_conv2d to the bit. */
typedef struct rn_conv_packed rn_conv_packed;
rn_status rn_cpu_conv2d_packed(rn_tensor *y, const rn_tensor *x, const rn_tensor *w, const rn_tensor *bias,
                               const rn_conv_params *p, rn_conv_packed **slot, uint64_t stamp);
void rn_conv_packed_free(rn_conv_packed *p);
rn_status rn_cpu_conv2d_fused(rn_tensor *y, const rn_tensor *x, const rn_tensor *w, const rn_tensor *bias,
                              const rn_tensor *residual, rn_unary_op act, const rn_conv_params *p);
rn_status rn_cpu_conv2d_backward_data(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *w, const rn_conv_params *p);
rn_status rn_cpu_conv2d_backward_weight(rn_tensor *gw, const rn_tensor *gy, const rn_tensor *x,
                                        const rn_conv_params *p);

/* norm.c */
rn_status rn_cpu_batch_norm_stats(rn_tensor *mean, rn_tensor *var, const rn_tensor *x);
rn_status rn_cpu_batch_norm_apply(rn_tensor *y, const rn_tensor *x, const rn_tensor *mean, const rn_tensor *invstd,
                                  const rn_tensor *w, const rn_tensor *b);
rn_status rn_cpu_batch_norm_backward(rn_tensor *gx, rn_tensor *gw, rn_tensor *gb, const rn_tensor *gy,
                                     const rn_tensor *x, const rn_tensor *mean, const rn_tensor *invstd,
                                     const rn_tensor *w, bool training);
rn_status rn_cpu_group_norm(rn_tensor *y, rn_tensor *mean, rn_tensor *rstd, const rn_tensor *x, int groups,
                            const rn_tensor *w, const rn_tensor *b, float eps, bool silu);
rn_status rn_cpu_group_norm_backward(rn_tensor *gx, rn_tensor *gw, rn_tensor *gb, const rn_tensor *gy,
                                     const rn_tensor *x, const rn_tensor *mean, const rn_tensor *rstd, int groups,
                                     const rn_tensor *w);

/* pool.c */
rn_status rn_cpu_max_pool2d(rn_tensor *y, rn_tensor *argmax, const rn_tensor *x, const rn_pool_params *p);
rn_status rn_cpu_max_pool2d_backward(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *argmax);
rn_status rn_cpu_avg_pool2d(rn_tensor *y, const rn_tensor *x, const rn_pool_params *p);
rn_status rn_cpu_avg_pool2d_backward(rn_tensor *gx, const rn_tensor *gy, const rn_pool_params *p);
rn_status rn_cpu_adaptive_avg_pool2d(rn_tensor *y, const rn_tensor *x);
rn_status rn_cpu_adaptive_avg_pool2d_backward(rn_tensor *gx, const rn_tensor *gy);
rn_status rn_cpu_upsample(rn_tensor *y, const rn_tensor *x, rn_upsample_mode mode, bool align_corners);
rn_status rn_cpu_upsample_backward(rn_tensor *gx, const rn_tensor *gy, rn_upsample_mode mode, bool align_corners);

/* random.c */
rn_status rn_cpu_rng_uniform(rn_tensor *t, uint64_t seed, uint64_t stream, uint64_t offset, float lo, float hi);
rn_status rn_cpu_rng_normal(rn_tensor *t, uint64_t seed, uint64_t stream, uint64_t offset, float mean, float std);

/* optim.c */
rn_status rn_cpu_adam_step(rn_tensor *p, const rn_tensor *g, rn_tensor *m, rn_tensor *v, float lr, float beta1,
                           float beta2, float eps, float weight_decay, int64_t step, bool decoupled);

#endif
