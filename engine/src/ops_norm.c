/* ops_norm.c - batch norm and group norm: argument checks, statistics, running-stat updates, autograd. */
#include "internal.h"

/* weight / bias / running stats of a norm op: NULL, or float32 [C] on x's device. */
static rn_status check_channel_vec(const rn_tensor *t, const rn_tensor *x, int64_t C, const char *op,
                                   const char *what) {
  if (!t) return RN_OK;
  char b[64], xb[64], name[64];
  snprintf(name, sizeof name, "%s: %s", op, what);
  RN_TRY(rn_check_f32(t, name));
  RN_TRY(rn_check_same_device(t, x, name));
  if (t->ndim != 1 || t->shape[0] != C)
    return rn_error(RN_ERR_SHAPE, "%s %s does not fit input %s: expected [%lld] (one entry per channel)", name,
                    rn_shape_str(t, b, 64), rn_shape_str(x, xb, 64), (long long)C);
  return RN_OK;
}

/* x: float32, 2 to 5 dims [N, C, ...], no zero-sized dims. */
static rn_status check_norm_input(const rn_tensor *x, const char *op) {
  char name[64], b[64];
  snprintf(name, sizeof name, "%s: input", op);
  RN_TRY(rn_check_f32(x, name));
  if (x->ndim < 2)
    return rn_error(RN_ERR_SHAPE, "%s must be [N,C] or [N,C,H,W], got %s", name, rn_shape_str(x, b, 64));
  for (int d = 0; d < x->ndim; d++)
    if (x->shape[d] == 0) return rn_error(RN_ERR_SHAPE, "%s %s has an empty dim", name, rn_shape_str(x, b, 64));
  return RN_OK;
}

static rn_status vec_new(rn_tensor **out, const rn_tensor *x, int64_t n) { return rn_new_like_shape(out, x, 1, &n); }

/* dst <- (1 - momentum) * dst + factor * stat, in place and outside autograd. */
static rn_status running_update(rn_tensor *dst, const rn_tensor *stat, float momentum, float factor) {
  rn_tensor *a = NULL, *b = NULL, *s = NULL;
  rn_status st = rn_scale(&a, dst, 1.0f - momentum, 0.0f);
  if (st == RN_OK) st = rn_scale(&b, (rn_tensor *)stat, factor, 0.0f);
  if (st == RN_OK) st = rn_add(&s, a, b);
  if (st == RN_OK) st = rn_copy_(dst, s);
  rn_tensor_release(a);
  rn_tensor_release(b);
  rn_tensor_release(s);
  return st;
}

/* 1 / sqrt(var + eps) */
static rn_status invstd_of(rn_tensor **out, rn_tensor *var, float eps) {
  rn_tensor *t = NULL;
  RN_TRY(rn_scale(&t, var, 1.0f, eps));
  rn_status st = rn_unary(out, RN_UN_RSQRT, t, 0.0f, 0.0f);
  rn_tensor_release(t);
  return st;
}

/* ------------------------------------------------------------------ batch norm */

/* in: x, weight, bias; saved: mean, invstd, contiguous x; ip[0]: training */
static rn_status batch_norm_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  rn_tensor *w = n->in[1], *x = n->saved[2], *mean = n->saved[0], *invstd = n->saved[1];
  int64_t C = x->shape[1];
  rn_tensor *gy = NULL, *wc = NULL, *gx = NULL, *gw = NULL, *gb = NULL;
  rn_status st = rn_contig_nograd(&gy, gout);
  if (st == RN_OK && w) st = rn_contig_nograd(&wc, w);
  /* the kernel always produces gx; it is cheap next to the reductions it shares with gw */
  if (st == RN_OK) st = rn_tensor_empty_like(&gx, x);
  if (st == RN_OK && rn_node_needs_grad(n, 1)) st = vec_new(&gw, x, C);
  if (st == RN_OK && rn_node_needs_grad(n, 2)) st = vec_new(&gb, x, C);
  if (st == RN_OK) st = rn_kernels_of(x)->batch_norm_backward(gx, gw, gb, gy, x, mean, invstd, wc, n->ip[0] != 0);
  if (st == RN_OK) {
    if (rn_node_needs_grad(n, 0)) { gin[0] = gx; gx = NULL; }
    gin[1] = gw; gw = NULL;
    gin[2] = gb; gb = NULL;
  }
  rn_tensor_release(gy);
  rn_tensor_release(wc);
  rn_tensor_release(gx);
  rn_tensor_release(gw);
  rn_tensor_release(gb);
  return st;
}

/* The tail both norms share: records the node (inputs x, weight, bias; ip[0] = param; saved: the two statistics
 * and contiguous x) and, on success, moves y into *out. Returns the first failure, st included. */
static rn_status record_norm(rn_status st, const char *name, rn_backward_fn bw, rn_tensor *x, rn_tensor *weight,
                             rn_tensor *bias, int64_t param, rn_tensor *stat0, rn_tensor *stat1, rn_tensor *xc,
                             rn_tensor **y, rn_tensor **out) {
  if (st == RN_OK) {
    rn_tensor *ins[3] = {x, weight, bias};
    rn_node *node = rn_record(name, bw, *y, 3, ins, &st);
    if (node) {
      node->ip[0] = param;
      if (st == RN_OK) st = rn_node_save(node, 0, stat0);
      if (st == RN_OK) st = rn_node_save(node, 1, stat1);
      if (st == RN_OK) st = rn_node_save(node, 2, xc);
    }
  }
  if (st == RN_OK) { *out = *y; *y = NULL; }
  return st;
}

rn_status rn_batch_norm(rn_tensor **out, rn_tensor *x, rn_tensor *weight, rn_tensor *bias, rn_tensor *running_mean,
                        rn_tensor *running_var, bool training, float momentum, float eps) {
  *out = NULL;
  const char *op = "batch_norm";
  RN_TRY(check_norm_input(x, op));
  int64_t C = x->shape[1], M = rn_tensor_numel(x) / C;
  RN_TRY(check_channel_vec(weight, x, C, op, "weight"));
  RN_TRY(check_channel_vec(bias, x, C, op, "bias"));
  RN_TRY(check_channel_vec(running_mean, x, C, op, "running_mean"));
  RN_TRY(check_channel_vec(running_var, x, C, op, "running_var"));
  double params[2] = {momentum, eps};
  RN_TRY(rn_check_finite_params(op, 2, params));
  if (eps < 0) return rn_error(RN_ERR_ARG, "batch_norm: eps must be >= 0, got %g", (double)eps);
  if (momentum < 0 || momentum > 1)
    return rn_error(RN_ERR_ARG, "batch_norm: momentum must be in [0, 1], got %g", (double)momentum);
  if (!running_mean != !running_var)
    return rn_error(RN_ERR_ARG, "batch_norm: give both running_mean and running_var, or neither");
  char b[64];
  if (training && M < 2)
    return rn_error(RN_ERR_SHAPE, "batch_norm: training needs more than one value per channel, got input %s",
                    rn_shape_str(x, b, 64));
  if (!training && !running_mean)
    return rn_error(RN_ERR_ARG, "batch_norm: eval mode needs running_mean and running_var");

  rn_nograd_scope ng = rn_nograd_begin(); /* statistics and running updates are not part of the graph */
  rn_tensor *xc = NULL, *wc = NULL, *bc = NULL, *mean = NULL, *var = NULL, *invstd = NULL, *y = NULL;
  rn_status st = rn_contig_nograd(&xc, x);
  if (st == RN_OK && weight) st = rn_contig_nograd(&wc, weight);
  if (st == RN_OK && bias) st = rn_contig_nograd(&bc, bias);
  if (training) {
    if (st == RN_OK) st = vec_new(&mean, x, C);
    if (st == RN_OK) st = vec_new(&var, x, C);
    if (st == RN_OK) st = rn_kernels_of(x)->batch_norm_stats(mean, var, xc);
    if (st == RN_OK && running_mean) st = running_update(running_mean, mean, momentum, momentum);
    if (st == RN_OK && running_var)
      st = running_update(running_var, var, momentum, (float)(momentum * (double)M / (double)(M - 1)));
  } else {
    /* a copy: the running mean may change in place before this graph's backward runs (invstd is new) */
    if (st == RN_OK) st = rn_clone(&mean, running_mean);
    if (st == RN_OK) var = rn_tensor_retain(running_var);
  }
  if (st == RN_OK) st = invstd_of(&invstd, var, eps);
  if (st == RN_OK) st = rn_tensor_empty_like(&y, xc);
  if (st == RN_OK) st = rn_kernels_of(x)->batch_norm_apply(y, xc, mean, invstd, wc, bc);
  rn_nograd_end(ng);

  st = record_norm(st, "batch_norm", batch_norm_backward, x, weight, bias, training, mean, invstd, xc, &y, out);
  rn_tensor_release(y);
  rn_tensor_release(xc);
  rn_tensor_release(wc);
  rn_tensor_release(bc);
  rn_tensor_release(mean);
  rn_tensor_release(var);
  rn_tensor_release(invstd);
  return st;
}

/* ------------------------------------------------------------------ group norm */

/* in: x, weight, bias; saved: mean, rstd, contiguous x; ip[0]: groups */
static rn_status group_norm_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  rn_tensor *w = n->in[1], *x = n->saved[2], *mean = n->saved[0], *rstd = n->saved[1];
  int64_t C = x->shape[1];
  rn_tensor *gy = NULL, *wc = NULL, *gx = NULL, *gw = NULL, *gb = NULL;
  rn_status st = rn_contig_nograd(&gy, gout);
  if (st == RN_OK && w) st = rn_contig_nograd(&wc, w);
  if (st == RN_OK && rn_node_needs_grad(n, 0)) st = rn_tensor_empty_like(&gx, x);
  if (st == RN_OK && rn_node_needs_grad(n, 1)) st = vec_new(&gw, x, C);
  if (st == RN_OK && rn_node_needs_grad(n, 2)) st = vec_new(&gb, x, C);
  if (st == RN_OK)
    st = rn_kernels_of(x)->group_norm_backward(gx, gw, gb, gy, x, mean, rstd, (int)n->ip[0], wc);
  if (st == RN_OK) {
    gin[0] = gx; gx = NULL;
    gin[1] = gw; gw = NULL;
    gin[2] = gb; gb = NULL;
  }
  rn_tensor_release(gy);
  rn_tensor_release(wc);
  rn_tensor_release(gx);
  rn_tensor_release(gw);
  rn_tensor_release(gb);
  return st;
}

/* silu: SiLU applied in the same pass; only without a graph to record (rn_group_norm_silu decides). */
static rn_status group_norm_impl(rn_tensor **out, rn_tensor *x, int groups, rn_tensor *weight, rn_tensor *bias,
                                 float eps, bool silu) {
  *out = NULL;
  const char *op = silu ? "group_norm_silu" : "group_norm";
  RN_TRY(check_norm_input(x, op));
  int64_t N = x->shape[0], C = x->shape[1];
  char b[64];
  if (groups <= 0 || C % groups != 0)
    return rn_error(RN_ERR_ARG, "%s: groups %d must be positive and divide the %lld channels of input %s", op,
                    groups, (long long)C, rn_shape_str(x, b, 64));
  RN_TRY(check_channel_vec(weight, x, C, op, "weight"));
  RN_TRY(check_channel_vec(bias, x, C, op, "bias"));
  double params[1] = {eps};
  RN_TRY(rn_check_finite_params(op, 1, params));
  if (eps < 0) return rn_error(RN_ERR_ARG, "%s: eps must be >= 0, got %g", op, (double)eps);

  int64_t stat_shape[2] = {N, groups};
  rn_tensor *xc = NULL, *wc = NULL, *bc = NULL, *mean = NULL, *rstd = NULL, *y = NULL;
  rn_status st = rn_contig_nograd(&xc, x);
  if (st == RN_OK && weight) st = rn_contig_nograd(&wc, weight);
  if (st == RN_OK && bias) st = rn_contig_nograd(&bc, bias);
  if (st == RN_OK) st = rn_new_like_shape(&mean, x, 2, stat_shape);
  if (st == RN_OK) st = rn_new_like_shape(&rstd, x, 2, stat_shape);
  if (st == RN_OK) st = rn_tensor_empty_like(&y, xc);
  if (st == RN_OK) st = rn_kernels_of(x)->group_norm(y, mean, rstd, xc, groups, wc, bc, eps, silu);
  if (silu) {
    if (st == RN_OK) { *out = y; y = NULL; }
  } else {
    st = record_norm(st, "group_norm", group_norm_backward, x, weight, bias, groups, mean, rstd, xc, &y, out);
  }
  rn_tensor_release(y);
  rn_tensor_release(xc);
  rn_tensor_release(wc);
  rn_tensor_release(bc);
  rn_tensor_release(mean);
  rn_tensor_release(rstd);
  return st;
}

rn_status rn_group_norm(rn_tensor **out, rn_tensor *x, int groups, rn_tensor *weight, rn_tensor *bias, float eps) {
  return group_norm_impl(out, x, groups, weight, bias, eps, false);
}

/* Fused when no gradient can flow (inference: one pass over the map instead of two, one kernel instead of two);
 * with a graph to record, the two ops, whose backward rules are checked in test_gradcheck_norm. */
rn_status rn_group_norm_silu(rn_tensor **out, rn_tensor *x, int groups, rn_tensor *weight, rn_tensor *bias,
                             float eps) {
  *out = NULL;
  RN_TRY(check_norm_input(x, "group_norm_silu"));
  bool grad = rn_grad_enabled() && (x->requires_grad || (weight && weight->requires_grad) ||
                                    (bias && bias->requires_grad));
  if (!grad) return group_norm_impl(out, x, groups, weight, bias, eps, true);
  rn_tensor *g = NULL;
  RN_TRY(rn_group_norm(&g, x, groups, weight, bias, eps));
  rn_status st = rn_unary(out, RN_UN_SILU, g, 0, 0);
  rn_tensor_release(g);
  return st;
}
