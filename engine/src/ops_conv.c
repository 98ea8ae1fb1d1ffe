/* ops_conv.c - conv2d and conv-transpose2d (PyTorch semantics) with their backward rules.
 *
 * Three kernels cover both ops: conv2d forward, its gradient with respect to the input ("backward data")
 * and with respect to the weight. Conv-transpose is conv2d run backwards: its forward is conv2d's
 * backward-data, its input gradient is a conv2d forward and its weight gradient is conv2d's backward-weight
 * with the roles of input and output swapped.
 */
#include "internal.h"

rn_conv_params rn_conv_params_default(void) {
  rn_conv_params p = {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}};
  return p;
}

static void params_store(rn_node *n, const rn_conv_params *p) {
  int64_t v[9] = {p->stride[0], p->stride[1], p->pad[0], p->pad[1], p->dilation[0], p->dilation[1], p->groups,
                  p->out_pad[0], p->out_pad[1]};
  memcpy(n->ip, v, sizeof v);
}

static rn_conv_params params_load(const rn_node *n) {
  rn_conv_params p = {{(int)n->ip[0], (int)n->ip[1]}, {(int)n->ip[2], (int)n->ip[3]}, {(int)n->ip[4], (int)n->ip[5]},
                      (int)n->ip[6], {(int)n->ip[7], (int)n->ip[8]}};
  return p;
}

/* Checks shared by both ops: types, ranks, devices and the parameter ranges. */
static rn_status check_common(const char *op, rn_tensor *x, rn_tensor *w, rn_tensor *bias, const rn_conv_params *p) {
  char what[48];
  snprintf(what, sizeof what, "%s: input", op);
  RN_TRY(rn_check_f32(x, what));
  RN_TRY(rn_check_ndim(x, 4, what));
  snprintf(what, sizeof what, "%s: weight", op);
  RN_TRY(rn_check_f32(w, what));
  RN_TRY(rn_check_ndim(w, 4, what));
  RN_TRY(rn_check_same_device(x, w, op));
  if (bias) {
    snprintf(what, sizeof what, "%s: bias", op);
    RN_TRY(rn_check_f32(bias, what));
    RN_TRY(rn_check_ndim(bias, 1, what));
    RN_TRY(rn_check_same_device(x, bias, op));
  }
  for (int i = 0; i < 2; i++) {
    if (p->stride[i] < 1) return rn_error(RN_ERR_ARG, "%s: stride must be >= 1, got %d", op, p->stride[i]);
    if (p->dilation[i] < 1) return rn_error(RN_ERR_ARG, "%s: dilation must be >= 1, got %d", op, p->dilation[i]);
    if (p->pad[i] < 0) return rn_error(RN_ERR_ARG, "%s: padding must be >= 0, got %d", op, p->pad[i]);
  }
  if (p->groups < 1) return rn_error(RN_ERR_ARG, "%s: groups must be >= 1, got %d", op, p->groups);
  for (int i = 0; i < 4; i++)
    if (x->shape[i] < 1 || w->shape[i] < 1) {
      char a[64], b[64];
      return rn_error(RN_ERR_SHAPE, "%s: empty input %s or weight %s", op, rn_shape_str(x, a, 64),
                      rn_shape_str(w, b, 64));
    }
  return RN_OK;
}

static rn_status check_bias(const char *op, rn_tensor *bias, int64_t out_channels) {
  if (bias && bias->shape[0] != out_channels) {
    char a[64];
    return rn_error(RN_ERR_SHAPE, "%s: bias %s does not match %lld output channels", op, rn_shape_str(bias, a, 64),
                    (long long)out_channels);
  }
  return RN_OK;
}

/* Sum of g over batch and space: the bias gradient, [C]. */
static rn_status bias_grad(rn_tensor **out, rn_tensor *g) {
  int dims[3] = {0, 2, 3};
  return rn_reduce(out, RN_RED_SUM, g, 3, dims, false);
}

/* y += bias over channels (y contiguous [N,O,H,W], no autograd). */
static rn_status add_bias(rn_tensor *y, rn_tensor *bias) {
  rn_tensor *b4 = NULL, *eb = NULL;
  int64_t shape4[4] = {1, bias->shape[0], 1, 1};
  bool prev = rn_set_grad_enabled(false);
  rn_status st = rn_reshape(&b4, bias, 4, shape4);
  if (st == RN_OK) st = rn_expand(&eb, b4, 4, y->shape);
  rn_set_grad_enabled(prev);
  if (st == RN_OK) st = rn_kernels_of(y)->binary(RN_BIN_ADD, y, y, eb);
  rn_tensor_release(eb);
  rn_tensor_release(b4);
  return st;
}

/* Backward of both ops. conv2d: gx is conv2d's backward-data, gw its backward-weight. Conv-transpose (transpose
 * true): d/dx of conv2d's backward-data is conv2d itself, and for gw x plays conv2d's output gradient, gy its input. */
static rn_status conv_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin, bool transpose) {
  rn_conv_params p = params_load(n);
  rn_tensor *gy = NULL, *x = NULL, *w = NULL, *gx = NULL, *gw = NULL;
  rn_status st = rn_contig_nograd(&gy, gout);
  if (st == RN_OK && rn_node_needs_grad(n, 0)) {
    st = rn_contig_nograd(&w, n->in[1]);
    if (st == RN_OK) st = rn_tensor_empty_like(&gx, n->in[0]);
    if (st == RN_OK)
      st = transpose ? rn_kernels_of(gy)->conv2d(gx, gy, w, NULL, &p)
                     : rn_kernels_of(gy)->conv2d_backward_data(gx, gy, w, &p);
  }
  if (st == RN_OK && rn_node_needs_grad(n, 1)) {
    st = rn_contig_nograd(&x, n->in[0]);
    if (st == RN_OK) st = rn_tensor_empty_like(&gw, n->in[1]);
    if (st == RN_OK)
      st = transpose ? rn_kernels_of(gy)->conv2d_backward_weight(gw, x, gy, &p)
                     : rn_kernels_of(gy)->conv2d_backward_weight(gw, gy, x, &p);
  }
  if (st == RN_OK && rn_node_needs_grad(n, 2)) st = bias_grad(&gin[2], gy);
  rn_tensor_release(gy);
  rn_tensor_release(x);
  rn_tensor_release(w);
  if (st != RN_OK) {
    rn_tensor_release(gx);
    rn_tensor_release(gw);
    return st;
  }
  gin[0] = gx;
  gin[1] = gw;
  return RN_OK;
}

/* ------------------------------------------------------------------ conv2d */

static rn_status conv2d_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  return conv_backward(n, gout, gin, false);
}

/* The checks of conv2d and its output shape. */
static rn_status conv2d_shape(const char *op, rn_tensor *x, rn_tensor *w, rn_tensor *bias, const rn_conv_params *p,
                              int64_t shape[4]) {
  RN_TRY(check_common(op, x, w, bias, p));
  char a[64], b[64];
  int64_t c = x->shape[1], o = w->shape[0];
  if (c % p->groups || o % p->groups)
    return rn_error(RN_ERR_ARG, "%s: groups %d must divide input channels %lld and output channels %lld", op,
                    p->groups, (long long)c, (long long)o);
  if (w->shape[1] * p->groups != c)
    return rn_error(RN_ERR_SHAPE, "%s: weight %s does not fit input %s (expects %lld input channels with %d groups)",
                    op, rn_shape_str(w, a, 64), rn_shape_str(x, b, 64), (long long)(w->shape[1] * p->groups),
                    p->groups);
  RN_TRY(check_bias(op, bias, o));
  shape[0] = x->shape[0];
  shape[1] = o;
  for (int i = 0; i < 2; i++) {
    int64_t span = (int64_t)p->dilation[i] * (w->shape[2 + i] - 1) + 1, padded = x->shape[2 + i] + 2 * p->pad[i];
    if (span > padded)
      return rn_error(RN_ERR_SHAPE, "%s: kernel %s (dilation %d, extent %lld) is larger than the padded input %s", op,
                      rn_shape_str(w, a, 64), p->dilation[i], (long long)span, rn_shape_str(x, b, 64));
    shape[2 + i] = (padded - span) / p->stride[i] + 1;
  }
  return RN_OK;
}

/* conv2d's kernel call, or conv2d_fused's when fused (residual already checked; act may be RN_ACT_NONE). */
static rn_status conv2d_run(rn_tensor **y, rn_tensor *x, rn_tensor *w, rn_tensor *bias, const int64_t shape[4],
                            const rn_conv_params *p, bool fused, rn_tensor *residual, rn_unary_op act) {
  rn_tensor *xc = NULL, *wc = NULL, *bc = NULL, *rc = NULL;
  rn_status st = rn_contig_nograd(&xc, x);
  if (st == RN_OK) st = rn_contig_nograd(&wc, w);
  if (st == RN_OK && bias) st = rn_contig_nograd(&bc, bias);
  if (st == RN_OK && residual) st = rn_contig_nograd(&rc, residual);
  if (st == RN_OK) st = rn_new_like_shape(y, x, 4, shape);
  if (st == RN_OK) st = fused ? rn_kernels_of(x)->conv2d_fused(*y, xc, wc, bc, rc, act, p)
                              : rn_kernels_of(x)->conv2d(*y, xc, wc, bc, p);
  rn_tensor_release(xc);
  rn_tensor_release(wc);
  rn_tensor_release(bc);
  rn_tensor_release(rc);
  if (st != RN_OK) { rn_tensor_release(*y); *y = NULL; }
  return st;
}

rn_status rn_conv2d(rn_tensor **out, rn_tensor *x, rn_tensor *w, rn_tensor *bias, const rn_conv_params *p) {
  *out = NULL;
  rn_conv_params def = rn_conv_params_default();
  if (!p) p = &def;
  int64_t shape[4];
  RN_TRY(conv2d_shape("conv2d", x, w, bias, p, shape));
  rn_tensor *y = NULL;
  RN_TRY(conv2d_run(&y, x, w, bias, shape, p, false, NULL, RN_ACT_NONE));
  rn_tensor *ins[3] = {x, w, bias};
  rn_node *node;
  RN_RECORD(node, "conv2d", conv2d_backward, y, 3, ins);
  if (node) params_store(node, p);
  *out = y;
  return RN_OK;
}

/* ------------------------------------------------------------------ conv2d with its epilogue */

static bool epilogue_act(rn_unary_op act) {
  return act == RN_ACT_NONE || act == RN_UN_RELU || act == RN_UN_RELU6 || act == RN_UN_SILU || act == RN_UN_SIGMOID;
}

/* One kernel call without a gradient to record (inference); with one, conv2d, add and the activation as
 * separate ops, whose backward rules the gradient checks cover. */
rn_status rn_conv2d_fused(rn_tensor **out, rn_tensor *x, rn_tensor *w, rn_tensor *bias, rn_tensor *residual,
                          rn_unary_op act, const rn_conv_params *p) {
  *out = NULL;
  const char *op = "conv2d_fused";
  rn_conv_params def = rn_conv_params_default();
  if (!p) p = &def;
  if (!epilogue_act(act))
    return rn_error(RN_ERR_ARG, "%s: the activation must be none, relu, relu6, silu or sigmoid (unary op %d)", op,
                    (int)act);
  int64_t shape[4];
  RN_TRY(conv2d_shape(op, x, w, bias, p, shape));
  if (residual) {
    RN_TRY(rn_check_f32(residual, "conv2d_fused: residual"));
    RN_TRY(rn_check_same_device(x, residual, op));
    if (residual->ndim != 4 || memcmp(residual->shape, shape, sizeof shape) != 0) {
      char a[64];
      return rn_error(RN_ERR_SHAPE, "%s: residual %s must have the output's shape [%lld,%lld,%lld,%lld]", op,
                      rn_shape_str(residual, a, 64), (long long)shape[0], (long long)shape[1], (long long)shape[2],
                      (long long)shape[3]);
    }
  }
  bool grad = rn_grad_enabled() && (x->requires_grad || w->requires_grad || (bias && bias->requires_grad) ||
                                    (residual && residual->requires_grad));
  if (!grad) return conv2d_run(out, x, w, bias, shape, p, true, residual, act);
  rn_tensor *c = NULL, *s = NULL;
  rn_status st = rn_conv2d(&c, x, w, bias, p);
  if (st == RN_OK && residual) st = rn_add(&s, c, residual);
  else if (st == RN_OK) s = rn_tensor_retain(c);
  if (st == RN_OK && act != RN_ACT_NONE) st = rn_unary(out, act, s, 0.0f, 0.0f);
  else if (st == RN_OK) *out = rn_tensor_retain(s);
  rn_tensor_release(c);
  rn_tensor_release(s);
  return st;
}

/* ------------------------------------------------------------------ conv-transpose2d */

static rn_status conv_transpose2d_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  return conv_backward(n, gout, gin, true);
}

rn_status rn_conv_transpose2d(rn_tensor **out, rn_tensor *x, rn_tensor *w, rn_tensor *bias, const rn_conv_params *p) {
  *out = NULL;
  rn_conv_params def = rn_conv_params_default();
  if (!p) p = &def;
  const char *op = "conv_transpose2d";
  RN_TRY(check_common(op, x, w, bias, p));
  char a[64], b[64];
  int64_t c = x->shape[1], o = w->shape[1] * p->groups;
  if (c % p->groups)
    return rn_error(RN_ERR_ARG, "%s: groups %d must divide input channels %lld", op, p->groups, (long long)c);
  if (w->shape[0] != c)
    return rn_error(RN_ERR_SHAPE, "%s: weight %s does not fit input %s (weight dim 1 must be the %lld input channels)",
                    op, rn_shape_str(w, a, 64), rn_shape_str(x, b, 64), (long long)c);
  RN_TRY(check_bias(op, bias, o));
  int64_t shape[4] = {x->shape[0], o, 0, 0};
  for (int i = 0; i < 2; i++) {
    int op_ = p->out_pad[i];
    if (op_ < 0 || (op_ >= p->stride[i] && op_ >= p->dilation[i]))
      return rn_error(RN_ERR_ARG, "%s: output_padding %d must be >= 0 and smaller than stride %d or dilation %d", op,
                      op_, p->stride[i], p->dilation[i]);
    shape[2 + i] = (x->shape[2 + i] - 1) * p->stride[i] - 2 * (int64_t)p->pad[i] +
                   (int64_t)p->dilation[i] * (w->shape[2 + i] - 1) + op_ + 1;
    if (shape[2 + i] < 1)
      return rn_error(RN_ERR_SHAPE, "%s: input %s with weight %s and padding %d gives an empty output", op,
                      rn_shape_str(x, a, 64), rn_shape_str(w, b, 64), p->pad[i]);
  }
  rn_tensor *xc = NULL, *wc = NULL, *y = NULL;
  rn_status st = rn_contig_nograd(&xc, x);
  if (st == RN_OK) st = rn_contig_nograd(&wc, w);
  if (st == RN_OK) st = rn_new_like_shape(&y, x, 4, shape);
  if (st == RN_OK) st = rn_kernels_of(x)->conv2d_backward_data(y, xc, wc, p);
  if (st == RN_OK && bias) st = add_bias(y, bias);
  rn_tensor_release(xc);
  rn_tensor_release(wc);
  if (st != RN_OK) { rn_tensor_release(y); return st; }
  rn_tensor *ins[3] = {x, w, bias};
  rn_node *node;
  RN_RECORD(node, "conv_transpose2d", conv_transpose2d_backward, y, 3, ins);
  if (node) params_store(node, p);
  *out = y;
  return RN_OK;
}
