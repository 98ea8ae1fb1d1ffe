/* ops_pool.c - max/avg/adaptive/global pooling and upsampling: checks, output sizes, autograd. */
#include <limits.h>

#include "internal.h"

/* x: float32 [N,C,H,W] with H, W > 0. */
static rn_status check_image(const rn_tensor *x, const char *op) {
  char name[64], b[64];
  snprintf(name, sizeof name, "%s: input", op);
  RN_TRY(rn_check_f32(x, name));
  if (x->ndim != 4) return rn_error(RN_ERR_SHAPE, "%s must be [N,C,H,W], got %s", name, rn_shape_str(x, b, 64));
  if (x->shape[2] <= 0 || x->shape[3] <= 0)
    return rn_error(RN_ERR_SHAPE, "%s %s has an empty spatial dim", name, rn_shape_str(x, b, 64));
  return RN_OK;
}

/* PyTorch's pooling output size: floor (or ceil) of (in + 2 pad - k) / s + 1; in ceil mode the last
 * window must still start inside the input or the left padding, else it is dropped. */
static int64_t pool_out_size(int64_t in, int k, int s, int pad, bool ceil_mode) {
  int64_t num = in + 2 * (int64_t)pad - k + (ceil_mode ? s - 1 : 0);
  int64_t q = num >= 0 ? num / s : -((-num + s - 1) / s); /* floor division */
  int64_t out = q + 1;
  if (ceil_mode && out > 0 && (out - 1) * s >= in + pad) out--;
  return out;
}

static rn_status check_pool_params(const rn_tensor *x, const rn_pool_params *p, const char *op, int64_t *oh,
                                   int64_t *ow) {
  if (!p) return rn_error(RN_ERR_ARG, "%s: missing pool parameters", op);
  for (int i = 0; i < 2; i++) {
    if (p->kernel[i] <= 0 || p->stride[i] <= 0 || p->pad[i] < 0)
      return rn_error(RN_ERR_ARG, "%s: kernel (%d,%d) and stride (%d,%d) must be positive and padding (%d,%d) >= 0",
                      op, p->kernel[0], p->kernel[1], p->stride[0], p->stride[1], p->pad[0], p->pad[1]);
    if (p->pad[i] > p->kernel[i] / 2)
      return rn_error(RN_ERR_ARG, "%s: padding (%d,%d) must be at most half the kernel (%d,%d)", op, p->pad[0],
                      p->pad[1], p->kernel[0], p->kernel[1]);
  }
  *oh = pool_out_size(x->shape[2], p->kernel[0], p->stride[0], p->pad[0], p->ceil_mode);
  *ow = pool_out_size(x->shape[3], p->kernel[1], p->stride[1], p->pad[1], p->ceil_mode);
  if (*oh <= 0 || *ow <= 0) {
    char b[64];
    return rn_error(RN_ERR_SHAPE, "%s: kernel (%d,%d) is larger than the padded input %s (padding (%d,%d))", op,
                    p->kernel[0], p->kernel[1], rn_shape_str(x, b, 64), p->pad[0], p->pad[1]);
  }
  return RN_OK;
}

static void params_store(rn_node *n, const rn_pool_params *p) {
  for (int i = 0; i < 2; i++) { n->ip[i] = p->kernel[i]; n->ip[2 + i] = p->stride[i]; n->ip[4 + i] = p->pad[i]; }
  n->ip[6] = p->ceil_mode;
  n->ip[7] = p->count_include_pad;
}

static rn_pool_params params_load(const rn_node *n) {
  rn_pool_params p;
  for (int i = 0; i < 2; i++) {
    p.kernel[i] = (int)n->ip[i];
    p.stride[i] = (int)n->ip[2 + i];
    p.pad[i] = (int)n->ip[4 + i];
  }
  p.ceil_mode = n->ip[6] != 0;
  p.count_include_pad = n->ip[7] != 0;
  return p;
}

/* The common tail of the backward functions: gx = zeros like the input, then the kernel scatters into it. */
typedef enum { BW_MAX, BW_AVG, BW_ADAPTIVE, BW_UPSAMPLE } bw_kind;

static rn_status pool_backward_common(rn_node *n, rn_tensor *gout, rn_tensor **gin, bw_kind kind) {
  if (!rn_node_needs_grad(n, 0)) return RN_OK;
  rn_tensor *gy = NULL, *gx = NULL;
  rn_status st = rn_contig_nograd(&gy, gout);
  if (st == RN_OK) st = rn_tensor_zeros_like(&gx, n->in[0]);
  if (st == RN_OK) {
    const rn_kernels *k = rn_kernels_of(gx);
    rn_pool_params p = params_load(n);
    switch (kind) {
      case BW_MAX: st = k->max_pool2d_backward(gx, gy, n->saved[0]); break;
      case BW_AVG: st = k->avg_pool2d_backward(gx, gy, &p); break;
      case BW_ADAPTIVE: st = k->adaptive_avg_pool2d_backward(gx, gy); break;
      case BW_UPSAMPLE: st = k->upsample_backward(gx, gy, (rn_upsample_mode)n->ip[0], n->ip[1] != 0); break;
    }
  }
  if (st == RN_OK) { gin[0] = gx; gx = NULL; }
  rn_tensor_release(gx);
  rn_tensor_release(gy);
  return st;
}

static rn_status max_pool_backward(rn_node *n, rn_tensor *g, rn_tensor **gin) {
  return pool_backward_common(n, g, gin, BW_MAX);
}
static rn_status avg_pool_backward(rn_node *n, rn_tensor *g, rn_tensor **gin) {
  return pool_backward_common(n, g, gin, BW_AVG);
}
static rn_status adaptive_backward(rn_node *n, rn_tensor *g, rn_tensor **gin) {
  return pool_backward_common(n, g, gin, BW_ADAPTIVE);
}
static rn_status upsample_backward(rn_node *n, rn_tensor *g, rn_tensor **gin) {
  return pool_backward_common(n, g, gin, BW_UPSAMPLE);
}

/* ------------------------------------------------------------------ max / avg pool */

/* name: the op recorded (global max pool is a max pool whose window is the whole plane). */
static rn_status max_pool(rn_tensor **out, rn_tensor *x, const rn_pool_params *p, const char *name) {
  int64_t oh, ow;
  RN_TRY(check_pool_params(x, p, name, &oh, &ow));
  int64_t shape[4] = {x->shape[0], x->shape[1], oh, ow};
  rn_tensor *xc = NULL, *y = NULL, *arg = NULL;
  rn_status st = rn_contig_nograd(&xc, x);
  if (st == RN_OK) st = rn_new_like_shape(&y, x, 4, shape);
  if (st == RN_OK) st = rn_tensor_empty(&arg, 4, shape, RN_I64, rn_tensor_device(x));
  if (st == RN_OK) st = rn_kernels_of(x)->max_pool2d(y, arg, xc, p);
  if (st == RN_OK) {
    rn_node *node = rn_record(name, max_pool_backward, y, 1, &x, &st);
    if (node) {
      params_store(node, p);
      if (st == RN_OK) st = rn_node_save(node, 0, arg);
    }
  }
  if (st == RN_OK) { *out = y; y = NULL; }
  rn_tensor_release(y);
  rn_tensor_release(xc);
  rn_tensor_release(arg);
  return st;
}

rn_status rn_max_pool2d(rn_tensor **out, rn_tensor *x, const rn_pool_params *p) {
  *out = NULL;
  RN_TRY(check_image(x, "max_pool2d"));
  return max_pool(out, x, p, "max_pool2d");
}

rn_status rn_global_max_pool(rn_tensor **out, rn_tensor *x) {
  *out = NULL;
  RN_TRY(check_image(x, "global_max_pool"));
  if (x->shape[2] > INT_MAX || x->shape[3] > INT_MAX)
    return rn_error(RN_ERR_SHAPE, "global_max_pool: input plane too large");
  rn_pool_params p = {{(int)x->shape[2], (int)x->shape[3]}, {(int)x->shape[2], (int)x->shape[3]}, {0, 0}, false, false};
  return max_pool(out, x, &p, "global_max_pool");
}

rn_status rn_avg_pool2d(rn_tensor **out, rn_tensor *x, const rn_pool_params *p) {
  *out = NULL;
  RN_TRY(check_image(x, "avg_pool2d"));
  int64_t oh, ow;
  RN_TRY(check_pool_params(x, p, "avg_pool2d", &oh, &ow));
  int64_t shape[4] = {x->shape[0], x->shape[1], oh, ow};
  rn_tensor *xc = NULL, *y = NULL;
  rn_status st = rn_contig_nograd(&xc, x);
  if (st == RN_OK) st = rn_new_like_shape(&y, x, 4, shape);
  if (st == RN_OK) st = rn_kernels_of(x)->avg_pool2d(y, xc, p);
  if (st == RN_OK) {
    rn_node *node = rn_record("avg_pool2d", avg_pool_backward, y, 1, &x, &st);
    if (node) params_store(node, p);
  }
  if (st == RN_OK) { *out = y; y = NULL; }
  rn_tensor_release(y);
  rn_tensor_release(xc);
  return st;
}

/* ------------------------------------------------------------------ adaptive / global avg pool */

static rn_status adaptive_avg(rn_tensor **out, rn_tensor *x, int64_t oh, int64_t ow, const char *name) {
  int64_t shape[4] = {x->shape[0], x->shape[1], oh, ow};
  rn_tensor *xc = NULL, *y = NULL;
  rn_status st = rn_contig_nograd(&xc, x);
  if (st == RN_OK) st = rn_new_like_shape(&y, x, 4, shape);
  if (st == RN_OK) st = rn_kernels_of(x)->adaptive_avg_pool2d(y, xc);
  if (st == RN_OK) rn_record(name, adaptive_backward, y, 1, &x, &st);
  if (st == RN_OK) { *out = y; y = NULL; }
  rn_tensor_release(y);
  rn_tensor_release(xc);
  return st;
}

rn_status rn_adaptive_avg_pool2d(rn_tensor **out, rn_tensor *x, int out_h, int out_w) {
  *out = NULL;
  RN_TRY(check_image(x, "adaptive_avg_pool2d"));
  if (out_h <= 0 || out_w <= 0)
    return rn_error(RN_ERR_ARG, "adaptive_avg_pool2d: output size (%d,%d) must be positive", out_h, out_w);
  return adaptive_avg(out, x, out_h, out_w, "adaptive_avg_pool2d");
}

rn_status rn_global_avg_pool(rn_tensor **out, rn_tensor *x) {
  *out = NULL;
  RN_TRY(check_image(x, "global_avg_pool"));
  return adaptive_avg(out, x, 1, 1, "global_avg_pool");
}

/* ------------------------------------------------------------------ upsample */

rn_status rn_upsample(rn_tensor **out, rn_tensor *x, int out_h, int out_w, rn_upsample_mode mode, bool align_corners) {
  *out = NULL;
  RN_TRY(check_image(x, "upsample"));
  if (mode != RN_UPSAMPLE_NEAREST && mode != RN_UPSAMPLE_BILINEAR)
    return rn_error(RN_ERR_ARG, "upsample: unknown mode %d (expected nearest or bilinear)", (int)mode);
  if (out_h <= 0 || out_w <= 0)
    return rn_error(RN_ERR_ARG, "upsample: output size (%d,%d) must be positive", out_h, out_w);
  int64_t shape[4] = {x->shape[0], x->shape[1], out_h, out_w};
  rn_tensor *xc = NULL, *y = NULL;
  rn_status st = rn_contig_nograd(&xc, x);
  if (st == RN_OK) st = rn_new_like_shape(&y, x, 4, shape);
  if (st == RN_OK) st = rn_kernels_of(x)->upsample(y, xc, mode, align_corners);
  if (st == RN_OK) {
    rn_node *node = rn_record("upsample", upsample_backward, y, 1, &x, &st);
    if (node) { node->ip[0] = mode; node->ip[1] = align_corners; }
  }
  if (st == RN_OK) { *out = y; y = NULL; }
  rn_tensor_release(y);
  rn_tensor_release(xc);
  return st;
}
