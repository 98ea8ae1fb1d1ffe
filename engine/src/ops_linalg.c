/* ops_linalg.c - matmul (batch dims broadcast, 1-d operands as in numpy) and linear, with backward rules.
 *
 * Everything goes through the backend's batched gemm on [B, rows, cols] views; an operand whose batch is a
 * single matrix is passed with batch 1 and the kernel reuses it for every product, so `x @ W` with a 2-d
 * W never copies W. Gradients of broadcast operands are summed back with rn_sum_to.
 */
#include "internal.h"

/* A no-grad reshape (a view of contiguous t). */
static rn_status view_as(rn_tensor **out, rn_tensor *t, int ndim, const int64_t *shape) {
  bool prev = rn_set_grad_enabled(false);
  rn_status st = rn_reshape(out, t, ndim, shape);
  rn_set_grad_enabled(prev);
  return st;
}

static int64_t prod(const int64_t *v, int n) {
  int64_t p = 1;
  for (int i = 0; i < n; i++) p *= v[i];
  return p;
}

/* t (rank >= 2) as a contiguous [B or 1, rows, cols] tensor for the batch shape `batch` (nb dims). */
static rn_status as_batched(rn_tensor **out, rn_tensor *t, int nb, const int64_t *batch) {
  *out = NULL;
  int tb = t->ndim - 2;
  int64_t r = t->shape[t->ndim - 2], c = t->shape[t->ndim - 1], B = prod(batch, nb);
  rn_tensor *src = NULL;
  rn_status st;
  bool single = prod(t->shape, tb) == 1;
  if (single || prod(t->shape, tb) == B) {
    st = rn_contig_nograd(&src, t); /* one matrix, or already the full batch */
  } else {
    int64_t full[RN_MAX_DIMS];
    memcpy(full, batch, (size_t)nb * sizeof *full);
    full[nb] = r;
    full[nb + 1] = c;
    rn_tensor *e = NULL;
    bool prev = rn_set_grad_enabled(false);
    st = rn_expand(&e, t, nb + 2, full);
    rn_set_grad_enabled(prev);
    if (st == RN_OK) st = rn_clone(&src, e);
    rn_tensor_release(e);
  }
  if (st == RN_OK) {
    int64_t s3[3] = {single ? 1 : B, r, c};
    st = view_as(out, src, 3, s3);
  }
  rn_tensor_release(src);
  return st;
}

/* Batch shape of the output: numpy broadcasting of the leading dims of a and b. */
static rn_status batch_shape(rn_tensor *a, rn_tensor *b, int *nb, int64_t *batch) {
  int na = a->ndim - 2, nbb = b->ndim - 2, n = na > nbb ? na : nbb;
  for (int i = 0; i < n; i++) {
    int ia = na - n + i, ib = nbb - n + i;
    int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      char x[64], y[64];
      return rn_error(RN_ERR_SHAPE, "matmul: batch dims of %s and %s cannot be broadcast together",
                      rn_shape_str(a, x, 64), rn_shape_str(b, y, 64));
    }
    batch[i] = sa == 1 ? sb : sa;
  }
  *nb = n;
  return RN_OK;
}

/* y3 = op(a3) op(b3) into a new tensor of `shape`, through [B, rows, cols] views. */
static rn_status gemm_into(rn_tensor **out, int ndim, const int64_t *shape, rn_tensor *a3, rn_tensor *b3, bool ta,
                           bool tb) {
  rn_tensor *y = NULL, *y3 = NULL;
  int64_t B = a3->shape[0] > b3->shape[0] ? a3->shape[0] : b3->shape[0];
  int64_t s3[3] = {B, shape[ndim - 2], shape[ndim - 1]};
  rn_status st = rn_new_like_shape(&y, a3, ndim, shape);
  if (st == RN_OK) st = view_as(&y3, y, 3, s3);
  if (st == RN_OK) st = rn_kernels_of(a3)->gemm(y3, a3, b3, ta, tb, 1.0f, 0.0f);
  rn_tensor_release(y3);
  if (st != RN_OK) { rn_tensor_release(y); return st; }
  *out = y;
  return RN_OK;
}

/* ------------------------------------------------------------------ matmul (both ranks >= 2) */

static rn_status matmul_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  rn_tensor *a = n->in[0], *b = n->in[1];
  int nb;
  int64_t batch[RN_MAX_DIMS], full[RN_MAX_DIMS];
  RN_TRY(batch_shape(a, b, &nb, batch));
  int64_t B = prod(batch, nb), m = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1], nn = b->shape[b->ndim - 1];
  rn_tensor *gc = NULL, *g3 = NULL, *a3 = NULL, *b3 = NULL, *ga = NULL, *gb = NULL;
  int64_t gs[3] = {B, m, nn};
  rn_status st = rn_contig_nograd(&gc, gout);
  if (st == RN_OK) st = view_as(&g3, gc, 3, gs);
  memcpy(full, batch, (size_t)nb * sizeof *full);
  if (st == RN_OK && rn_node_needs_grad(n, 0)) { /* ga = g b^T, summed over broadcast batch dims */
    full[nb] = m; full[nb + 1] = k;
    st = as_batched(&b3, b, nb, batch);
    if (st == RN_OK) st = gemm_into(&ga, nb + 2, full, g3, b3, false, true);
    if (st == RN_OK) st = rn_sum_to(&gin[0], ga, a->ndim, a->shape);
  }
  if (st == RN_OK && rn_node_needs_grad(n, 1)) { /* gb = a^T g */
    full[nb] = k; full[nb + 1] = nn;
    st = as_batched(&a3, a, nb, batch);
    if (st == RN_OK) st = gemm_into(&gb, nb + 2, full, a3, g3, true, false);
    if (st == RN_OK) st = rn_sum_to(&gin[1], gb, b->ndim, b->shape);
  }
  rn_tensor_release(gc); rn_tensor_release(g3); rn_tensor_release(a3); rn_tensor_release(b3);
  rn_tensor_release(ga); rn_tensor_release(gb);
  return st;
}

static rn_status matmul_nd(rn_tensor **out, rn_tensor *a, rn_tensor *b) {
  char x[64], y[64];
  int64_t k = a->shape[a->ndim - 1];
  if (b->shape[b->ndim - 2] != k)
    return rn_error(RN_ERR_SHAPE, "matmul: %s @ %s: inner sizes %lld and %lld differ", rn_shape_str(a, x, 64),
                    rn_shape_str(b, y, 64), (long long)k, (long long)b->shape[b->ndim - 2]);
  int nb;
  int64_t batch[RN_MAX_DIMS], shape[RN_MAX_DIMS + 2];
  RN_TRY(batch_shape(a, b, &nb, batch));
  if (nb + 2 > RN_MAX_DIMS) return rn_error(RN_ERR_SHAPE, "matmul: result would have more than %d dims", RN_MAX_DIMS);
  memcpy(shape, batch, (size_t)nb * sizeof *shape);
  shape[nb] = a->shape[a->ndim - 2];
  shape[nb + 1] = b->shape[b->ndim - 1];
  rn_tensor *a3 = NULL, *b3 = NULL, *r = NULL;
  rn_status st = as_batched(&a3, a, nb, batch);
  if (st == RN_OK) st = as_batched(&b3, b, nb, batch);
  if (st == RN_OK) st = gemm_into(&r, nb + 2, shape, a3, b3, false, false);
  rn_tensor_release(a3);
  rn_tensor_release(b3);
  if (st != RN_OK) return st;
  rn_tensor *ins[2] = {a, b};
  rn_node *node;
  RN_RECORD(node, "matmul", matmul_backward, r, 2, ins);
  (void)node;
  *out = r;
  return RN_OK;
}

rn_status rn_matmul(rn_tensor **out, rn_tensor *a, rn_tensor *b) {
  *out = NULL;
  RN_TRY(rn_check_f32(a, "matmul: a"));
  RN_TRY(rn_check_f32(b, "matmul: b"));
  RN_TRY(rn_check_same_device(a, b, "matmul"));
  if (a->ndim < 1 || b->ndim < 1) return rn_error(RN_ERR_SHAPE, "matmul: operands need at least 1 dim, got a scalar");
  if (a->ndim >= 2 && b->ndim >= 2) {
    if (b->ndim == 2 && a->ndim > 2) { /* fold a's batch into rows: one product, W used once */
      int64_t a2s[2] = {prod(a->shape, a->ndim - 1), a->shape[a->ndim - 1]}, ys[RN_MAX_DIMS];
      rn_tensor *a2 = NULL, *r = NULL;
      RN_TRY(rn_reshape(&a2, a, 2, a2s));
      rn_status st = matmul_nd(&r, a2, b);
      rn_tensor_release(a2);
      if (st != RN_OK) return st;
      memcpy(ys, a->shape, sizeof ys);
      ys[a->ndim - 1] = b->shape[1];
      st = rn_reshape(out, r, a->ndim, ys);
      rn_tensor_release(r);
      return st;
    }
    return matmul_nd(out, a, b);
  }
  /* 1-d operands: a [k] is a row [1, k], b [k] a column [k, 1]; the added dim is dropped again */
  rn_tensor *a2 = NULL, *b2 = NULL, *r = NULL;
  int64_t s[RN_MAX_DIMS];
  rn_status st = RN_OK;
  if (a->ndim == 1) { int64_t as[2] = {1, a->shape[0]}; st = rn_reshape(&a2, a, 2, as); }
  else a2 = rn_tensor_retain(a);
  if (st == RN_OK && b->ndim == 1) { int64_t bs[2] = {b->shape[0], 1}; st = rn_reshape(&b2, b, 2, bs); }
  else if (st == RN_OK) b2 = rn_tensor_retain(b);
  if (st == RN_OK) st = rn_matmul(&r, a2, b2);
  rn_tensor_release(a2);
  rn_tensor_release(b2);
  if (st != RN_OK) return st;
  int nd = 0;
  for (int i = 0; i < r->ndim; i++) {
    if (a->ndim == 1 && i == r->ndim - 2) continue;
    if (b->ndim == 1 && i == r->ndim - 1) continue;
    s[nd++] = r->shape[i];
  }
  st = rn_reshape(out, r, nd, s);
  rn_tensor_release(r);
  return st;
}

/* ------------------------------------------------------------------ linear */

static rn_status linear_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  rn_tensor *x = n->in[0], *w = n->in[1];
  int64_t in = w->shape[1], o = w->shape[0], P = prod(x->shape, x->ndim - 1);
  int64_t gs[3] = {1, P, o}, xs[3] = {1, P, in}, ws[3] = {1, o, in};
  rn_tensor *gc = NULL, *g3 = NULL, *xc = NULL, *x3 = NULL, *wc = NULL, *w3 = NULL, *gx = NULL, *gw = NULL;
  rn_tensor *gx3 = NULL, *gw3 = NULL;
  rn_status st = rn_contig_nograd(&gc, gout);
  if (st == RN_OK) st = view_as(&g3, gc, 3, gs);
  if (st == RN_OK && rn_node_needs_grad(n, 0)) { /* gx = g W */
    st = rn_contig_nograd(&wc, w);
    if (st == RN_OK) st = view_as(&w3, wc, 3, ws);
    if (st == RN_OK) st = rn_tensor_empty_like(&gx, x);
    if (st == RN_OK) st = view_as(&gx3, gx, 3, xs);
    if (st == RN_OK) st = rn_kernels_of(gc)->gemm(gx3, g3, w3, false, false, 1.0f, 0.0f);
  }
  if (st == RN_OK && rn_node_needs_grad(n, 1)) { /* gW = g^T x */
    st = rn_contig_nograd(&xc, x);
    if (st == RN_OK) st = view_as(&x3, xc, 3, xs);
    if (st == RN_OK) st = rn_tensor_empty_like(&gw, w);
    if (st == RN_OK) st = view_as(&gw3, gw, 3, ws);
    if (st == RN_OK) st = rn_kernels_of(gc)->gemm(gw3, g3, x3, true, false, 1.0f, 0.0f);
  }
  if (st == RN_OK && rn_node_needs_grad(n, 2)) st = rn_sum_to(&gin[2], gc, 1, &o);
  rn_tensor_release(gc); rn_tensor_release(g3); rn_tensor_release(xc); rn_tensor_release(x3);
  rn_tensor_release(wc); rn_tensor_release(w3); rn_tensor_release(gx3); rn_tensor_release(gw3);
  if (st != RN_OK) { rn_tensor_release(gx); rn_tensor_release(gw); return st; }
  gin[0] = gx;
  gin[1] = gw;
  return RN_OK;
}

rn_status rn_linear(rn_tensor **out, rn_tensor *x, rn_tensor *w, rn_tensor *bias) {
  *out = NULL;
  char a[64], b[64];
  RN_TRY(rn_check_f32(x, "linear: input"));
  RN_TRY(rn_check_f32(w, "linear: weight"));
  RN_TRY(rn_check_ndim(w, 2, "linear: weight"));
  RN_TRY(rn_check_same_device(x, w, "linear"));
  if (x->ndim < 1) return rn_error(RN_ERR_SHAPE, "linear: input needs at least 1 dim, got a scalar");
  int64_t in = w->shape[1], o = w->shape[0], P = prod(x->shape, x->ndim - 1);
  if (x->shape[x->ndim - 1] != in)
    return rn_error(RN_ERR_SHAPE, "linear: weight %s does not fit input %s (expects %lld input features)",
                    rn_shape_str(w, a, 64), rn_shape_str(x, b, 64), (long long)in);
  if (bias) {
    RN_TRY(rn_check_f32(bias, "linear: bias"));
    RN_TRY(rn_check_same_device(x, bias, "linear"));
    if (bias->ndim != 1 || bias->shape[0] != o)
      return rn_error(RN_ERR_SHAPE, "linear: bias %s does not match %lld output features", rn_shape_str(bias, a, 64),
                      (long long)o);
  }
  int64_t ys[RN_MAX_DIMS], x3s[3] = {1, P, in}, w3s[3] = {1, o, in}, y3s[3] = {1, P, o};
  memcpy(ys, x->shape, sizeof ys);
  ys[x->ndim - 1] = o;
  rn_tensor *xc = NULL, *wc = NULL, *x3 = NULL, *w3 = NULL, *y = NULL, *y3 = NULL, *eb = NULL;
  rn_status st = rn_contig_nograd(&xc, x);
  if (st == RN_OK) st = rn_contig_nograd(&wc, w);
  if (st == RN_OK) st = view_as(&x3, xc, 3, x3s);
  if (st == RN_OK) st = view_as(&w3, wc, 3, w3s);
  if (st == RN_OK) st = rn_new_like_shape(&y, x, x->ndim, ys);
  if (st == RN_OK) st = view_as(&y3, y, 3, y3s);
  if (st == RN_OK && bias) { /* y starts as the bias, then the product accumulates onto it */
    bool prev = rn_set_grad_enabled(false);
    st = rn_expand(&eb, bias, x->ndim, ys);
    rn_set_grad_enabled(prev);
    if (st == RN_OK) st = rn_kernels_of(x)->copy(y, eb);
  }
  if (st == RN_OK) st = rn_kernels_of(x)->gemm(y3, x3, w3, false, true, 1.0f, bias ? 1.0f : 0.0f);
  rn_tensor_release(xc); rn_tensor_release(wc); rn_tensor_release(x3); rn_tensor_release(w3);
  rn_tensor_release(y3); rn_tensor_release(eb);
  if (st != RN_OK) { rn_tensor_release(y); return st; }
  rn_tensor *ins[3] = {x, w, bias};
  rn_node *node;
  RN_RECORD(node, "linear", linear_backward, y, 3, ins);
  (void)node;
  *out = y;
  return RN_OK;
}
