/* ops_elementwise.c - broadcasting binary ops, unary maps, where, and sum_to (the reverse of broadcasting). */
#include "internal.h"

static const char *binary_names[RN_BIN_COUNT] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum",
                                                 "eq", "lt", "le", "gt", "ge"};
static const char *unary_names[RN_UN_COUNT] = {"neg", "exp", "log", "sqrt", "rsqrt", "abs", "square", "sin", "cos",
                                               "relu", "relu6", "silu", "sigmoid", "tanh", "gelu", "leaky_relu",
                                               "scale", "pow", "clamp"};

/* ------------------------------------------------------------------ sum_to */

rn_status rn_sum_to(rn_tensor **out, rn_tensor *g, int ndim, const int64_t *shape) {
  *out = NULL;
  RN_TRY(rn_check_tensor(g, "sum_to"));
  bool same = g->ndim == ndim;
  for (int d = 0; same && d < ndim; d++) same = g->shape[d] == shape[d];
  if (same) { *out = rn_tensor_retain(g); return RN_OK; }
  int lead = g->ndim - ndim, dims[RN_MAX_DIMS], n = 0;
  if (lead < 0) return rn_error(RN_ERR_SHAPE, "sum_to: cannot sum %d dims down to %d", g->ndim, ndim);
  for (int d = 0; d < g->ndim; d++) {
    if (d < lead) dims[n++] = d;
    else if (shape[d - lead] == 1 && g->shape[d] != 1) dims[n++] = d;
    else if (shape[d - lead] != g->shape[d])
      return rn_error(RN_ERR_SHAPE, "sum_to: dim %d has size %lld, target %lld", d + 1, (long long)g->shape[d],
                      (long long)shape[d - lead]);
  }
  rn_tensor *r = NULL;
  if (n) RN_TRY(rn_reduce(&r, RN_RED_SUM, g, n, dims, true));
  else r = rn_tensor_retain(g);
  rn_status st = rn_reshape(out, r, ndim, shape);
  rn_tensor_release(r);
  return st;
}

/* ------------------------------------------------------------------ binary */

static rn_status binary_backward(rn_node *n, rn_tensor *g, rn_tensor **gin) {
  rn_binary_op op = (rn_binary_op)n->ip[0];
  rn_tensor *a = n->in[0], *b = n->in[1];
  rn_tensor *ga = NULL, *gb = NULL, *t1 = NULL, *t2 = NULL, *t3 = NULL;
  rn_status st = RN_OK;
  bool need_a = rn_node_needs_grad(n, 0), need_b = rn_node_needs_grad(n, 1);
  switch (op) {
    case RN_BIN_ADD:
      if (need_a) ga = rn_tensor_retain(g);
      if (need_b) gb = rn_tensor_retain(g);
      break;
    case RN_BIN_SUB:
      if (need_a) ga = rn_tensor_retain(g);
      if (need_b) st = rn_unary(&gb, RN_UN_NEG, g, 0, 0);
      break;
    case RN_BIN_MUL:
      if (need_a) st = rn_mul(&ga, g, b);
      if (st == RN_OK && need_b) st = rn_mul(&gb, g, a);
      break;
    case RN_BIN_DIV:
      if (need_a) st = rn_div(&ga, g, b);
      if (st == RN_OK && need_b) { /* -g * a / b^2 */
        st = rn_mul(&t1, g, a);
        if (st == RN_OK) st = rn_unary(&t2, RN_UN_SQUARE, b, 0, 0);
        if (st == RN_OK) st = rn_div(&t3, t1, t2);
        if (st == RN_OK) st = rn_unary(&gb, RN_UN_NEG, t3, 0, 0);
      }
      break;
    case RN_BIN_POW: {
      rn_tensor *y = n->saved[0];
      if (need_a) { /* g * b * a^(b-1) = g * b * y / a */
        st = rn_mul(&t1, g, b);
        rn_tensor *t4 = NULL, *bm1 = NULL, *p = NULL;
        if (st == RN_OK) st = rn_scale(&bm1, b, 1, -1);
        if (st == RN_OK) st = rn_binary(&p, RN_BIN_POW, a, bm1);
        if (st == RN_OK) st = rn_mul(&t4, t1, p);
        ga = t4;
        rn_tensor_release(bm1);
        rn_tensor_release(p);
        rn_tensor_release(t1);
        t1 = NULL;
      }
      if (st == RN_OK && need_b) { /* g * y * log(a) */
        st = rn_mul(&t2, g, y);
        if (st == RN_OK) st = rn_unary(&t3, RN_UN_LOG, a, 0, 0);
        if (st == RN_OK) st = rn_mul(&gb, t2, t3);
      }
      break;
    }
    case RN_BIN_MAX:
    case RN_BIN_MIN: { /* the larger (smaller) input takes the gradient; ties split it */
      rn_tensor *win = NULL, *tie = NULL, *w = NULL, *half = NULL;
      st = rn_binary(&win, op == RN_BIN_MAX ? RN_BIN_GT : RN_BIN_LT, a, b);
      if (st == RN_OK) st = rn_binary(&tie, RN_BIN_EQ, a, b);
      if (st == RN_OK) st = rn_scale(&half, tie, 0.5f, 0);
      if (st == RN_OK) st = rn_add(&w, win, half);            /* weight of a: 1, 0.5 or 0 */
      if (st == RN_OK && need_a) st = rn_mul(&ga, g, w);
      if (st == RN_OK && need_b) {
        rn_tensor *wb = NULL;
        st = rn_scale(&wb, w, -1, 1);
        if (st == RN_OK) st = rn_mul(&gb, g, wb);
        rn_tensor_release(wb);
      }
      rn_tensor_release(win); rn_tensor_release(tie); rn_tensor_release(w); rn_tensor_release(half);
      break;
    }
    default:
      st = rn_error(RN_ERR_ARG, "%s is not differentiable", binary_names[op]);
  }
  rn_tensor_release(t1); rn_tensor_release(t2); rn_tensor_release(t3);
  if (st == RN_OK && ga) st = rn_sum_to(&gin[0], ga, a->ndim, a->shape);
  if (st == RN_OK && gb) st = rn_sum_to(&gin[1], gb, b->ndim, b->shape);
  rn_tensor_release(ga);
  rn_tensor_release(gb);
  return st;
}

rn_status rn_binary(rn_tensor **out, rn_binary_op op, rn_tensor *a, rn_tensor *b) {
  *out = NULL;
  if ((unsigned)op >= RN_BIN_COUNT) return rn_error(RN_ERR_ARG, "unknown binary op %d", (int)op);
  const char *name = binary_names[op];
  RN_TRY(rn_check_tensor(a, name));
  RN_TRY(rn_check_tensor(b, name));
  RN_TRY(rn_check_same_device(a, b, name));
  if (a->dtype != b->dtype)
    return rn_error(RN_ERR_ARG, "%s: dtypes differ (%s and %s); convert one first", name, rn_dtype_name(a->dtype),
                    rn_dtype_name(b->dtype));
  int ndim;
  int64_t shape[RN_MAX_DIMS];
  if (rn_broadcast_shape(a, b, &ndim, shape) != RN_OK)
    return rn_error(RN_ERR_SHAPE, "%s: %s", name, rn_last_error());
  rn_tensor *y = NULL, *ea = NULL, *eb = NULL;
  bool prev = rn_set_grad_enabled(false); /* the expanded views are kernel inputs only */
  rn_status st = rn_tensor_empty(&y, ndim, shape, a->dtype, rn_tensor_device(a));
  if (st == RN_OK) st = rn_expand(&ea, a, ndim, shape);
  if (st == RN_OK) st = rn_expand(&eb, b, ndim, shape);
  rn_set_grad_enabled(prev);
  if (st == RN_OK) st = rn_kernels_of(a)->binary(op, y, ea, eb);
  rn_tensor_release(ea);
  rn_tensor_release(eb);
  if (st != RN_OK) { rn_tensor_release(y); return st; }
  if (op < RN_BIN_EQ) {
    rn_tensor *ins[2] = {a, b};
    rn_node *node;
    RN_RECORD(node, name, binary_backward, y, 2, ins);
    if (node) {
      node->ip[0] = op;
      if (op == RN_BIN_POW && (st = rn_node_save(node, 0, y)) != RN_OK) { rn_tensor_release(y); return st; }
    }
  }
  *out = y;
  return RN_OK;
}

rn_status rn_add(rn_tensor **out, rn_tensor *a, rn_tensor *b) { return rn_binary(out, RN_BIN_ADD, a, b); }
rn_status rn_sub(rn_tensor **out, rn_tensor *a, rn_tensor *b) { return rn_binary(out, RN_BIN_SUB, a, b); }
rn_status rn_mul(rn_tensor **out, rn_tensor *a, rn_tensor *b) { return rn_binary(out, RN_BIN_MUL, a, b); }
rn_status rn_div(rn_tensor **out, rn_tensor *a, rn_tensor *b) { return rn_binary(out, RN_BIN_DIV, a, b); }

/* ------------------------------------------------------------------ unary */

static rn_status unary_backward(rn_node *n, rn_tensor *g, rn_tensor **gin) {
  rn_tensor *x = NULL, *gc = NULL, *gx = NULL;
  rn_status st = rn_contig_nograd(&x, n->in[0]);
  if (st == RN_OK) st = rn_contig_nograd(&gc, g);
  if (st == RN_OK) st = rn_tensor_empty_like(&gx, x);
  if (st == RN_OK) st = rn_kernels_of(x)->unary_backward((rn_unary_op)n->ip[0], gx, gc, x, (float)n->fp[0], (float)n->fp[1]);
  rn_tensor_release(x);
  rn_tensor_release(gc);
  if (st != RN_OK) { rn_tensor_release(gx); return st; }
  gin[0] = gx;
  return RN_OK;
}

rn_status rn_unary(rn_tensor **out, rn_unary_op op, rn_tensor *x, float a, float b) {
  *out = NULL;
  if ((unsigned)op >= RN_UN_COUNT) return rn_error(RN_ERR_ARG, "unknown unary op %d", (int)op);
  const char *name = unary_names[op];
  RN_TRY(rn_check_f32(x, name));
  if (op == RN_UN_SCALE || op == RN_UN_POWS || op == RN_UN_LEAKY_RELU) {
    double v[2] = {a, b};
    RN_TRY(rn_check_finite_params(name, op == RN_UN_SCALE ? 2 : 1, v));
  }
  if (op == RN_UN_CLAMP && a == a && b == b && a > b)
    return rn_error(RN_ERR_ARG, "clamp: lower bound %g is above upper bound %g", a, b);
  rn_tensor *y = NULL;
  RN_TRY(rn_tensor_empty(&y, x->ndim, x->shape, x->dtype, rn_tensor_device(x)));
  rn_status st = rn_kernels_of(x)->unary(op, y, x, a, b);
  if (st != RN_OK) { rn_tensor_release(y); return st; }
  rn_node *node;
  RN_RECORD(node, name, unary_backward, y, 1, &x);
  if (node) { node->ip[0] = op; node->fp[0] = a; node->fp[1] = b; }
  *out = y;
  return RN_OK;
}

rn_status rn_scale(rn_tensor **out, rn_tensor *x, float a, float b) { return rn_unary(out, RN_UN_SCALE, x, a, b); }

rn_status rn_clamp(rn_tensor **out, rn_tensor *x, float lo, float hi) {
  if (lo != lo && hi != hi) return rn_error(RN_ERR_ARG, "clamp: give at least one bound");
  return rn_unary(out, RN_UN_CLAMP, x, lo, hi);
}

/* ------------------------------------------------------------------ where */

static rn_status where_backward(rn_node *n, rn_tensor *g, rn_tensor **gin) {
  rn_tensor *zero = NULL;
  RN_TRY(rn_tensor_scalar(&zero, 0, g->dtype, rn_tensor_device(g)));
  rn_status st = RN_OK;
  for (int i = 1; i <= 2 && st == RN_OK; i++) {
    if (!rn_node_needs_grad(n, i)) continue;
    rn_tensor *gi = NULL;
    st = i == 1 ? rn_where(&gi, n->in[0], g, zero) : rn_where(&gi, n->in[0], zero, g);
    if (st == RN_OK) st = rn_sum_to(&gin[i], gi, n->in[i]->ndim, n->in[i]->shape);
    rn_tensor_release(gi);
  }
  rn_tensor_release(zero);
  return st;
}

rn_status rn_where(rn_tensor **out, rn_tensor *cond, rn_tensor *a, rn_tensor *b) {
  *out = NULL;
  RN_TRY(rn_check_tensor(cond, "where: condition"));
  RN_TRY(rn_check_f32(a, "where: a"));
  RN_TRY(rn_check_f32(b, "where: b"));
  RN_TRY(rn_check_same_device(cond, a, "where"));
  RN_TRY(rn_check_same_device(a, b, "where"));
  int n1, n2;
  int64_t s1[RN_MAX_DIMS], s2[RN_MAX_DIMS];
  if (rn_broadcast_shape(a, b, &n1, s1) != RN_OK) return rn_error(RN_ERR_SHAPE, "where: %s", rn_last_error());
  rn_tensor tmp = *a; /* shape-only stand-in for the broadcast of a and b */
  tmp.ndim = n1;
  memcpy(tmp.shape, s1, sizeof s1);
  if (rn_broadcast_shape(cond, &tmp, &n2, s2) != RN_OK) return rn_error(RN_ERR_SHAPE, "where: %s", rn_last_error());
  rn_tensor *y = NULL, *ec = NULL, *ea = NULL, *eb = NULL;
  bool prev = rn_set_grad_enabled(false);
  rn_status st = rn_tensor_empty(&y, n2, s2, RN_F32, rn_tensor_device(a));
  if (st == RN_OK) st = rn_expand(&ec, cond, n2, s2);
  if (st == RN_OK) st = rn_expand(&ea, a, n2, s2);
  if (st == RN_OK) st = rn_expand(&eb, b, n2, s2);
  rn_set_grad_enabled(prev);
  if (st == RN_OK) st = rn_kernels_of(a)->where(y, ec, ea, eb);
  rn_tensor_release(ec); rn_tensor_release(ea); rn_tensor_release(eb);
  if (st != RN_OK) { rn_tensor_release(y); return st; }
  rn_tensor *ins[3] = {cond, a, b};
  rn_node *node;
  RN_RECORD(node, "where", where_backward, y, 3, ins);
  *out = y;
  return RN_OK;
}
