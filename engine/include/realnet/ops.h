/* ops.h - differentiable tensor operations.
 *
 * Every op: `rn_status rn_<op>(rn_tensor **out, inputs..., params)`; on success *out holds a new reference.
 * Inputs must share one device. When grad mode is on (see autograd.h) and an input requires grad, the op
 * records a node so rn_backward can differentiate it. Shapes follow PyTorch's conventions (NCHW).
 * Errors name the argument and the shapes at fault.
 */
#ifndef REALNET_OPS_H
#define REALNET_OPS_H

#include "tensor.h"

/* ---------- elementwise (broadcasting) ---------- */
typedef enum {
  RN_BIN_ADD, RN_BIN_SUB, RN_BIN_MUL, RN_BIN_DIV, RN_BIN_POW, RN_BIN_MAX, RN_BIN_MIN,
  /* comparisons give 1/0 in the input dtype, not differentiable */
  RN_BIN_EQ, RN_BIN_LT, RN_BIN_LE, RN_BIN_GT, RN_BIN_GE, RN_BIN_COUNT
} rn_binary_op;

typedef enum {
  RN_UN_NEG, RN_UN_EXP, RN_UN_LOG, RN_UN_SQRT, RN_UN_RSQRT, RN_UN_ABS, RN_UN_SQUARE, RN_UN_SIN, RN_UN_COS,
  RN_UN_RELU, RN_UN_RELU6, RN_UN_SILU, RN_UN_SIGMOID, RN_UN_TANH, RN_UN_GELU, RN_UN_LEAKY_RELU,
  RN_UN_SCALE,      /* a * x + b  (params a, b) */
  RN_UN_POWS,       /* x ^ a */
  RN_UN_CLAMP,      /* clamp(x, a, b); NaN bounds mean "none" */
  RN_UN_COUNT
} rn_unary_op;

rn_status rn_binary(rn_tensor **out, rn_binary_op op, rn_tensor *a, rn_tensor *b);
rn_status rn_unary(rn_tensor **out, rn_unary_op op, rn_tensor *x, float a, float b);
rn_status rn_add(rn_tensor **out, rn_tensor *a, rn_tensor *b);
rn_status rn_sub(rn_tensor **out, rn_tensor *a, rn_tensor *b);
rn_status rn_mul(rn_tensor **out, rn_tensor *a, rn_tensor *b);
rn_status rn_div(rn_tensor **out, rn_tensor *a, rn_tensor *b);
rn_status rn_scale(rn_tensor **out, rn_tensor *x, float a, float b);   /* a*x + b */
rn_status rn_clamp(rn_tensor **out, rn_tensor *x, float lo, float hi);
/* where(cond, a, b): cond is any dtype (nonzero = true); grads flow to a and b. */
rn_status rn_where(rn_tensor **out, rn_tensor *cond, rn_tensor *a, rn_tensor *b);

/* ---------- reductions ---------- */
typedef enum { RN_RED_SUM, RN_RED_MEAN, RN_RED_MAX, RN_RED_MIN } rn_reduce_op;
/* Reduce over the dims listed (0-based, negative counts from the end); n_dims == 0 reduces all.
 * keepdim keeps reduced dims with size 1. Max/min backward sends the gradient to the first arg-extremum. */
rn_status rn_reduce(rn_tensor **out, rn_reduce_op op, rn_tensor *x, int n_dims, const int *dims, bool keepdim);
/* Values and 0-based int64 indices of max / min along one dim. */
rn_status rn_max_dim(rn_tensor **values, rn_tensor **indices, rn_tensor *x, int dim, bool keepdim);
/* Sum `g` down to `shape` (the reverse of broadcasting). */
rn_status rn_sum_to(rn_tensor **out, rn_tensor *g, int ndim, const int64_t *shape);

/* ---------- shape / indexing ---------- */
rn_status rn_concat(rn_tensor **out, int n, rn_tensor *const *xs, int dim);
/* Pick entries along `dim` by a 1-d int64 index tensor (0-based), like torch.index_select. */
rn_status rn_index_select(rn_tensor **out, rn_tensor *x, int dim, rn_tensor *index);
/* index_select without the host-side range check of the indices: for indices in range by construction (top-k
 * output, offsets computed from it, selections validated when made), so device work need not wait for a copy
 * of them. An index out of range reads outside x: never pass user input here. */
rn_status rn_index_select_trusted(rn_tensor **out, rn_tensor *x, int dim, rn_tensor *index);
/* torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] for dim 1, index int64 of out's shape. */
rn_status rn_gather(rn_tensor **out, rn_tensor *x, int dim, rn_tensor *index);
/* Top k along dim (largest or smallest), sorted; values differentiable, indices int64 0-based. */
rn_status rn_topk(rn_tensor **values, rn_tensor **indices, rn_tensor *x, int k, int dim, bool largest);

/* ---------- linear algebra ---------- */
/* a [..., m, k] @ b [..., k, n] with batch dims broadcast; 2-d and 3-d are the usual cases. */
rn_status rn_matmul(rn_tensor **out, rn_tensor *a, rn_tensor *b);
/* x [..., in] W[out, in]^T + bias[out] (bias may be NULL). */
rn_status rn_linear(rn_tensor **out, rn_tensor *x, rn_tensor *w, rn_tensor *bias);

/* ---------- convolution ---------- */
typedef struct {
  int stride[2], pad[2], dilation[2];
  int groups;
  int out_pad[2];   /* conv-transpose only */
} rn_conv_params;
rn_conv_params rn_conv_params_default(void); /* stride 1, pad 0, dilation 1, groups 1 */
/* x [N,C,H,W], w [O, C/groups, kh, kw], bias [O] or NULL. */
rn_status rn_conv2d(rn_tensor **out, rn_tensor *x, rn_tensor *w, rn_tensor *bias, const rn_conv_params *p);
/* act(conv2d(x, w, bias) + residual), the convolution with its epilogue: residual (the output's shape) may be
 * NULL; act is RN_UN_RELU, RN_UN_RELU6, RN_UN_SILU or RN_UN_SIGMOID, or RN_ACT_NONE. Without a gradient to record
 * it is one kernel-table call (on a GPU the convolution and one pass for bias, residual and activation instead of
 * three); with one, the ops one by one. The values are the ops' own, to the bit, either way. */
#define RN_ACT_NONE RN_UN_COUNT
rn_status rn_conv2d_fused(rn_tensor **out, rn_tensor *x, rn_tensor *w, rn_tensor *bias, rn_tensor *residual,
                          rn_unary_op act, const rn_conv_params *p);
/* x [N,C,H,W], w [C, O/groups, kh, kw] (PyTorch layout), bias [O] or NULL. */
rn_status rn_conv_transpose2d(rn_tensor **out, rn_tensor *x, rn_tensor *w, rn_tensor *bias, const rn_conv_params *p);

/* ---------- normalisation ---------- */
/* Batch norm over [N,C,H,W] (or [N,C]). weight/bias may be NULL (no affine). In training mode batch
 * statistics are used and running_mean/var (if given) are updated in place with `momentum`
 * (unbiased variance, as PyTorch); in eval mode the running statistics are used. */
rn_status rn_batch_norm(rn_tensor **out, rn_tensor *x, rn_tensor *weight, rn_tensor *bias,
                        rn_tensor *running_mean, rn_tensor *running_var, bool training, float momentum, float eps);
rn_status rn_group_norm(rn_tensor **out, rn_tensor *x, int groups, rn_tensor *weight, rn_tensor *bias, float eps);
/* SiLU(group_norm(...)): one fused kernel when no gradient is recorded, else the two ops (same values). */
rn_status rn_group_norm_silu(rn_tensor **out, rn_tensor *x, int groups, rn_tensor *weight, rn_tensor *bias,
                             float eps);

/* ---------- activations over a dim ---------- */
rn_status rn_softmax(rn_tensor **out, rn_tensor *x, int dim);
rn_status rn_log_softmax(rn_tensor **out, rn_tensor *x, int dim);

/* ---------- pooling / resampling ---------- */
typedef struct {
  int kernel[2], stride[2], pad[2];
  bool ceil_mode;
  bool count_include_pad; /* avg pool */
} rn_pool_params;
rn_status rn_max_pool2d(rn_tensor **out, rn_tensor *x, const rn_pool_params *p);
rn_status rn_avg_pool2d(rn_tensor **out, rn_tensor *x, const rn_pool_params *p);
rn_status rn_adaptive_avg_pool2d(rn_tensor **out, rn_tensor *x, int out_h, int out_w);
/* [N,C,H,W] -> [N,C,1,1] */
rn_status rn_global_avg_pool(rn_tensor **out, rn_tensor *x);
rn_status rn_global_max_pool(rn_tensor **out, rn_tensor *x);
typedef enum { RN_UPSAMPLE_NEAREST, RN_UPSAMPLE_BILINEAR } rn_upsample_mode;
rn_status rn_upsample(rn_tensor **out, rn_tensor *x, int out_h, int out_w, rn_upsample_mode mode, bool align_corners);

/* ---------- losses (mean over all elements unless stated) ---------- */
rn_status rn_mse_loss(rn_tensor **out, rn_tensor *x, rn_tensor *target);
/* logits [N,K,...], target int64 [N,...] of class ids 0..K-1; mean over positions. */
rn_status rn_cross_entropy(rn_tensor **out, rn_tensor *logits, rn_tensor *target);
/* Multi-class focal loss: mean of -(1-p_t)^gamma * alpha_t * log p_t; alpha may be NULL ([K] weights). */
rn_status rn_focal_loss(rn_tensor **out, rn_tensor *logits, rn_tensor *target, float gamma, rn_tensor *alpha);

/* ---------- attention ---------- */
/* Scaled dot-product attention: q [B, L, d], k [B, S, d], v [B, S, dv] -> [B, L, dv]. */
rn_status rn_sdpa(rn_tensor **out, rn_tensor *q, rn_tensor *k, rn_tensor *v);
/* Self-attention over the spatial positions of x [N,C,H,W] with `heads` heads: q,k,v = x reshaped to
 * [N*heads, H*W, C/heads] (projections are the caller's convolutions). Output [N,C,H,W]. */
rn_status rn_spatial_attention(rn_tensor **out, rn_tensor *q, rn_tensor *k, rn_tensor *v, int heads);
/* Attention from a fused projection qkv [N, 3C, H, W] in guided-diffusion's legacy layout (per head q, k, v rows
 * adjacent: qkv viewed as [N*heads, 3*C/heads, H, W]) -> [N, C, H, W]. Without a gradient to record it reads qkv in
 * place (two strided products and a softmax); with one it is the composite of views and rn_spatial_attention. */
rn_status rn_qkv_attention(rn_tensor **out, rn_tensor *qkv, int heads);

#endif
