/* ops_reduce.c - reductions (sum/mean/max/min over dims), max/min along a dim, softmax and log-softmax. */
#include "internal.h"

/* A borrowed header over t's storage with a contiguous `shape` of the same element count, for kernel calls
 * only (never retained or released). t must be contiguous. */
static rn_tensor kernel_view(const rn_tensor *t, int ndim, const int64_t *shape) {
  rn_tensor v = *t;
  v.ndim = ndim;
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) { v.shape[i] = shape[i]; v.stride[i] = s; s *= shape[i]; }
  v.grad = NULL;
  v.grad_fn = NULL;
  return v;
}

static const char *reduce_name(rn_reduce_op op) {
  switch (op) {
    case RN_RED_SUM: return "sum";
    case RN_RED_MEAN: return "mean";
    case RN_RED_MAX: return "max";
    case RN_RED_MIN: return "min";
    default: return "reduce";
  }
}

/* ------------------------------------------------------------------ rn_reduce */

/* sum/mean: broadcast gout back over the reduced dims; max/min: the gradient goes to the first
 * arg-extremum in row-major order of the reduced dims, found by viewing x as [kept, reduced]. */
static rn_status reduce_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  if (!rn_node_needs_grad(n, 0)) return RN_OK;
  rn_tensor *x = n->in[0];
  rn_reduce_op op = (rn_reduce_op)n->ip[0];
  int64_t mask = n->ip[1];
  int64_t kshape[RN_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) kshape[d] = (mask >> d) & 1 ? 1 : x->shape[d];
  rn_status st = RN_OK;
  if (op == RN_RED_SUM || op == RN_RED_MEAN) {
    rn_tensor *gk = NULL, *ge = NULL, *gs = NULL;
    st = rn_reshape(&gk, gout, x->ndim, kshape);
    if (st == RN_OK && op == RN_RED_MEAN) {
      st = rn_scale(&gs, gk, (float)(1.0 / (double)n->ip[2]), 0.0f);
      rn_tensor_release(gk);
      gk = gs;
    }
    if (st == RN_OK) st = rn_expand(&ge, gk, x->ndim, x->shape);
    if (st == RN_OK) st = rn_clone(&gin[0], ge);
    rn_tensor_release(gk);
    rn_tensor_release(ge);
    return st;
  }
  /* permutation: kept dims first, then reduced dims, both in order */
  int perm[RN_MAX_DIMS], inv[RN_MAX_DIMS], k = 0;
  int64_t K = 1, R = 1, pshape[RN_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) if (!((mask >> d) & 1)) { perm[k++] = d; K *= x->shape[d]; }
  for (int d = 0; d < x->ndim; d++) if ((mask >> d) & 1) { perm[k++] = d; R *= x->shape[d]; }
  for (int i = 0; i < x->ndim; i++) { inv[perm[i]] = i; pshape[i] = x->shape[perm[i]]; }
  rn_tensor *xp = NULL, *xc = NULL, *vals = NULL, *idx = NULL, *g2 = NULL, *gc = NULL, *gp = NULL, *gpp = NULL;
  int64_t s2[2] = {K, R}, s1[2] = {K, 1};
  if (x->ndim) st = rn_permute(&xp, x, perm);
  else xp = rn_tensor_retain(x);
  if (st == RN_OK) st = rn_clone(&xc, xp);
  if (st == RN_OK) st = rn_tensor_empty(&vals, 2, s1, RN_F32, rn_tensor_device(x));
  if (st == RN_OK) st = rn_tensor_empty(&idx, 2, s1, RN_I64, rn_tensor_device(x));
  if (st == RN_OK) {
    rn_tensor x2 = kernel_view(xc, 2, s2);
    st = rn_kernels_of(x)->arg_reduce(op == RN_RED_MAX, vals, idx, &x2, 1);
  }
  if (st == RN_OK) st = rn_tensor_zeros(&g2, 2, s2, RN_F32, rn_tensor_device(x));
  if (st == RN_OK) st = rn_reshape(&gp, gout, 2, s1);
  if (st == RN_OK) st = rn_contig_nograd(&gc, gp);
  if (st == RN_OK) st = rn_kernels_of(x)->scatter_add(g2, 1, idx, gc);
  rn_tensor_release(gp);
  gp = NULL;
  if (st == RN_OK) st = rn_reshape(&gp, g2, x->ndim, pshape);
  if (st == RN_OK && x->ndim) st = rn_permute(&gpp, gp, inv);
  else if (st == RN_OK) gpp = rn_tensor_retain(gp);
  if (st == RN_OK) st = rn_clone(&gin[0], gpp);
  rn_tensor_release(xp); rn_tensor_release(xc); rn_tensor_release(vals); rn_tensor_release(idx);
  rn_tensor_release(g2); rn_tensor_release(gc); rn_tensor_release(gp); rn_tensor_release(gpp);
  return st;
}

rn_status rn_reduce(rn_tensor **out, rn_reduce_op op, rn_tensor *x, int n_dims, const int *dims, bool keepdim) {
  if (!out) return rn_error(RN_ERR_ARG, "reduce: no output pointer");
  *out = NULL;
  if ((unsigned)op > RN_RED_MIN) return rn_error(RN_ERR_ARG, "reduce: unknown reduction %d", (int)op);
  const char *name = reduce_name(op);
  RN_TRY(rn_check_f32(x, name));
  if (n_dims < 0 || n_dims > x->ndim || (n_dims > 0 && !dims))
    return rn_error(RN_ERR_ARG, "%s: %d dims listed for a tensor with %d dims", name, n_dims, x->ndim);
  bool red[RN_MAX_DIMS] = {false};
  for (int i = 0; i < n_dims; i++) {
    int d = dims[i];
    RN_TRY(rn_norm_dim(&d, x->ndim, name));
    if (x->ndim == 0) continue;
    if (red[d]) return rn_error(RN_ERR_ARG, "%s: dim %d listed twice", name, d + 1);
    red[d] = true;
  }
  if (n_dims == 0) for (int d = 0; d < x->ndim; d++) red[d] = true;
  int64_t kshape[RN_MAX_DIMS], fshape[RN_MAX_DIMS], mask = 0, count = 1;
  int fnd = 0;
  for (int d = 0; d < x->ndim; d++) {
    kshape[d] = red[d] ? 1 : x->shape[d];
    if (red[d]) { mask |= (int64_t)1 << d; count *= x->shape[d]; }
    if (!red[d] || keepdim) fshape[fnd++] = kshape[d];
  }
  if ((op == RN_RED_MAX || op == RN_RED_MIN) && count == 0) {
    char b[64];
    return rn_error(RN_ERR_SHAPE, "%s: cannot reduce over an empty dim of %s (no identity)", name,
                    rn_shape_str(x, b, 64));
  }
  rn_tensor *xc = NULL, *y = NULL;
  RN_TRY(rn_contig_nograd(&xc, x));
  rn_status st = rn_tensor_empty(&y, fnd, fshape, RN_F32, rn_tensor_device(x));
  if (st == RN_OK) {
    rn_tensor yk = kernel_view(y, x->ndim, kshape);
    st = rn_kernels_of(x)->reduce(op, &yk, xc, red);
  }
  rn_tensor_release(xc);
  if (st != RN_OK) { rn_tensor_release(y); return st; }
  rn_node *node;
  RN_RECORD(node, name, reduce_backward, y, 1, &x);
  if (node) { node->ip[0] = op; node->ip[1] = mask; node->ip[2] = count; }
  *out = y;
  return RN_OK;
}

/* ------------------------------------------------------------------ rn_max_dim */

/* The gradient of the values goes to the saved indices (keepdim shape) along ip[0]. */
static rn_status max_dim_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  if (!rn_node_needs_grad(n, 0)) return RN_OK;
  rn_tensor *x = n->in[0], *idx = n->saved[0], *gk = NULL, *gc = NULL, *gx = NULL;
  rn_status st = rn_reshape(&gk, gout, idx->ndim, idx->shape);
  if (st == RN_OK) st = rn_contig_nograd(&gc, gk);
  if (st == RN_OK) st = rn_tensor_zeros(&gx, x->ndim, x->shape, RN_F32, rn_tensor_device(x));
  if (st == RN_OK && x->ndim == 0) st = rn_copy_(gx, gc);
  else if (st == RN_OK) st = rn_kernels_of(x)->scatter_add(gx, (int)n->ip[0], idx, gc);
  rn_tensor_release(gk);
  rn_tensor_release(gc);
  if (st != RN_OK) { rn_tensor_release(gx); return st; }
  gin[0] = gx;
  return RN_OK;
}

rn_status rn_max_dim(rn_tensor **values, rn_tensor **indices, rn_tensor *x, int dim, bool keepdim) {
  if (!values || !indices) return rn_error(RN_ERR_ARG, "max_dim: no output pointer");
  *values = *indices = NULL;
  RN_TRY(rn_check_f32(x, "max_dim"));
  RN_TRY(rn_norm_dim(&dim, x->ndim, "max_dim"));
  int64_t kshape[RN_MAX_DIMS], fshape[RN_MAX_DIMS];
  int fnd = 0;
  for (int d = 0; d < x->ndim; d++) {
    kshape[d] = d == dim ? 1 : x->shape[d];
    if (d != dim || keepdim) fshape[fnd++] = kshape[d];
  }
  if (x->ndim && x->shape[dim] == 0) {
    char b[64];
    return rn_error(RN_ERR_SHAPE, "max_dim: dim %d of %s is empty", dim + 1, rn_shape_str(x, b, 64));
  }
  rn_tensor *xc = NULL, *v = NULL, *ix = NULL;
  RN_TRY(rn_contig_nograd(&xc, x));
  rn_status st = rn_tensor_empty(&v, fnd, fshape, RN_F32, rn_tensor_device(x));
  if (st == RN_OK) st = rn_tensor_empty(&ix, fnd, fshape, RN_I64, rn_tensor_device(x));
  rn_tensor vk = {0}, ik = {0};
  if (st == RN_OK) {
    vk = kernel_view(v, x->ndim, kshape);
    ik = kernel_view(ix, x->ndim, kshape);
    st = rn_kernels_of(x)->arg_reduce(true, &vk, &ik, xc, dim);
  }
  rn_tensor_release(xc);
  if (st != RN_OK) { rn_tensor_release(v); rn_tensor_release(ix); return st; }
  rn_node *node;
  rn_status rst = RN_OK;
  node = rn_record("max_dim", max_dim_backward, v, 1, &x, &rst);
  if (rst == RN_OK && node) {
    node->ip[0] = dim;
    rst = rn_node_save(node, 0, &ik);
  }
  if (rst != RN_OK) { rn_tensor_release(v); rn_tensor_release(ix); return rst; }
  *values = v;
  *indices = ix;
  return RN_OK;
}

/* ------------------------------------------------------------------ softmax / log-softmax */

static rn_status softmax_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  if (!rn_node_needs_grad(n, 0)) return RN_OK;
  rn_tensor *y = n->saved[0], *gc = NULL, *gx = NULL;
  RN_TRY(rn_contig_nograd(&gc, gout));
  rn_status st = rn_new_like_shape(&gx, y, y->ndim, y->shape);
  if (st == RN_OK) st = rn_kernels_of(y)->softmax_backward(gx, gc, y, (int)n->ip[0], n->ip[1] != 0);
  rn_tensor_release(gc);
  if (st != RN_OK) { rn_tensor_release(gx); return st; }
  gin[0] = gx;
  return RN_OK;
}

static rn_status softmax_op(rn_tensor **out, rn_tensor *x, int dim, bool log, const char *name) {
  if (!out) return rn_error(RN_ERR_ARG, "%s: no output pointer", name);
  *out = NULL;
  RN_TRY(rn_check_f32(x, name));
  RN_TRY(rn_norm_dim(&dim, x->ndim, name));
  rn_tensor *xc = NULL, *y = NULL;
  RN_TRY(rn_contig_nograd(&xc, x));
  rn_status st = rn_new_like_shape(&y, xc, x->ndim, x->shape);
  if (st == RN_OK) st = rn_kernels_of(x)->softmax(y, xc, dim, log);
  rn_tensor_release(xc);
  if (st != RN_OK) { rn_tensor_release(y); return st; }
  rn_node *node;
  RN_RECORD(node, name, softmax_backward, y, 1, &x);
  if (node) {
    node->ip[0] = dim;
    node->ip[1] = log;
    st = rn_node_save(node, 0, y);
    if (st != RN_OK) { rn_tensor_release(y); return st; }
  }
  *out = y;
  return RN_OK;
}

rn_status rn_softmax(rn_tensor **out, rn_tensor *x, int dim) { return softmax_op(out, x, dim, false, "softmax"); }

rn_status rn_log_softmax(rn_tensor **out, rn_tensor *x, int dim) {
  return softmax_op(out, x, dim, true, "log_softmax");
}
