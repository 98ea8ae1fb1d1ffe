/* ops_index.c - concat, index_select, gather and top-k, with their backward rules. */
#include "internal.h"

/* Index tensors are int64 and every value lies in [0, size): checked on the host so kernels can trust them. */
static rn_status check_index(const rn_tensor *index, int64_t size, int dim, const char *op) {
  RN_TRY(rn_check_tensor(index, op));
  if (index->dtype != RN_I64)
    return rn_error(RN_ERR_ARG, "%s: index must be int64, got %s", op, rn_dtype_name(index->dtype));
  rn_tensor *h = NULL, *c = NULL;
  RN_TRY(rn_to_device(&h, (rn_tensor *)index, rn_cpu()));
  rn_status st = rn_contig_nograd(&c, h);
  rn_tensor_release(h);
  if (st != RN_OK) return st;
  const int64_t *v = (const int64_t *)rn_tensor_data(c);
  int64_t n = rn_tensor_numel(c);
  for (int64_t i = 0; i < n; i++)
    if (v[i] < 0 || v[i] >= size) {
      st = rn_error(RN_ERR_ARG, "%s: index %lld is out of range for dim %d of size %lld", op, (long long)v[i],
                    dim + 1, (long long)size);
      break;
    }
  rn_tensor_release(c);
  return st;
}

/* gin = zeros(x) with gout added back through `index` along dim by the scatter_add or index_add kernel. */
static rn_status add_back(rn_tensor **gin, const rn_tensor *x, rn_tensor *gout, const rn_tensor *index, int dim,
                          bool scatter) {
  rn_tensor *gc = NULL, *ic = NULL, *gx = NULL;
  rn_status st = rn_contig_nograd(&gc, gout);
  if (st == RN_OK) st = rn_contig_nograd(&ic, index);
  if (st == RN_OK) st = rn_tensor_zeros(&gx, x->ndim, x->shape, RN_F32, rn_tensor_device(x));
  if (st == RN_OK)
    st = scatter ? rn_kernels_of(x)->scatter_add(gx, dim, ic, gc) : rn_kernels_of(x)->index_add(gx, dim, ic, gc);
  rn_tensor_release(gc);
  rn_tensor_release(ic);
  if (st != RN_OK) { rn_tensor_release(gx); return st; }
  *gin = gx;
  return RN_OK;
}

/* ------------------------------------------------------------------ concat */

static rn_status concat_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  int dim = (int)n->ip[0];
  int64_t off = 0;
  for (int i = 0; i < n->n_in; i++) {
    int64_t len = n->in[i]->shape[dim];
    if (rn_node_needs_grad(n, i)) {
      rn_tensor *part = NULL;
      RN_TRY(rn_narrow(&part, gout, dim, off, len));
      rn_status st = rn_clone(&gin[i], part);
      rn_tensor_release(part);
      RN_TRY(st);
    }
    off += len;
  }
  return RN_OK;
}

rn_status rn_concat(rn_tensor **out, int n, rn_tensor *const *xs, int dim) {
  if (!out) return rn_error(RN_ERR_ARG, "concat: no output pointer");
  *out = NULL;
  if (n < 1 || !xs) return rn_error(RN_ERR_ARG, "concat: expected at least one tensor, got %d", n);
  for (int i = 0; i < n; i++)
    if (!xs[i]) return rn_error(RN_ERR_ARG, "concat: tensor %d is missing", i + 1);
  const rn_tensor *x0 = xs[0];
  if (x0->ndim == 0) return rn_error(RN_ERR_SHAPE, "concat: cannot concatenate 0-dim tensors");
  RN_TRY(rn_norm_dim(&dim, x0->ndim, "concat"));
  int64_t shape[RN_MAX_DIMS];
  memcpy(shape, x0->shape, sizeof shape);
  shape[dim] = 0;
  for (int i = 0; i < n; i++) {
    const rn_tensor *x = xs[i];
    char a[64], b[64];
    RN_TRY(rn_check_same_device(x0, x, "concat"));
    if (x->dtype != x0->dtype)
      return rn_error(RN_ERR_ARG, "concat: tensor %d is %s but tensor 1 is %s", i + 1, rn_dtype_name(x->dtype),
                      rn_dtype_name(x0->dtype));
    bool fits = x->ndim == x0->ndim;
    for (int d = 0; d < x0->ndim && fits; d++) if (d != dim && x->shape[d] != x0->shape[d]) fits = false;
    if (!fits)
      return rn_error(RN_ERR_SHAPE, "concat: tensor %d of shape %s does not fit tensor 1 of shape %s along dim %d",
                      i + 1, rn_shape_str(x, a, 64), rn_shape_str(x0, b, 64), dim + 1);
    shape[dim] += x->shape[dim];
  }
  rn_tensor *y = NULL;
  RN_TRY(rn_tensor_empty(&y, x0->ndim, shape, x0->dtype, rn_tensor_device(x0)));
  bool one_call = n >= 2 && n <= RN_CONCAT_MAX; /* contiguous inputs: one kernel (one launch on a GPU) */
  for (int i = 0; i < n && one_call; i++) one_call = rn_tensor_is_contiguous(xs[i]);
  if (one_call) {
    rn_status st = rn_kernels_of(y)->concat(y, n, (const rn_tensor *const *)xs, dim);
    if (st != RN_OK) { rn_tensor_release(y); return st; }
  }
  int64_t off = 0;
  for (int i = 0; i < n && !one_call; i++) {
    rn_tensor *part = NULL;
    rn_status st = rn_narrow(&part, y, dim, off, xs[i]->shape[dim]);
    if (st == RN_OK) st = rn_copy_(part, xs[i]);
    rn_tensor_release(part);
    if (st != RN_OK) { rn_tensor_release(y); return st; }
    off += xs[i]->shape[dim];
  }
  rn_node *node;
  RN_RECORD(node, "concat", concat_backward, y, n, xs);
  if (node) node->ip[0] = dim;
  *out = y;
  return RN_OK;
}

/* ------------------------------------------------------------------ index_select */

static rn_status index_select_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  if (!rn_node_needs_grad(n, 0)) return RN_OK;
  return add_back(&gin[0], n->in[0], gout, n->in[1], (int)n->ip[0], false);
}

static rn_status index_select(rn_tensor **out, rn_tensor *x, int dim, rn_tensor *index, bool check);

rn_status rn_index_select(rn_tensor **out, rn_tensor *x, int dim, rn_tensor *index) {
  return index_select(out, x, dim, index, true);
}

rn_status rn_index_select_trusted(rn_tensor **out, rn_tensor *x, int dim, rn_tensor *index) {
  return index_select(out, x, dim, index, false);
}

/* check: range-check the indices on the host (for a device index that is a copy and a wait) */
static rn_status index_select(rn_tensor **out, rn_tensor *x, int dim, rn_tensor *index, bool check) {
  if (!out) return rn_error(RN_ERR_ARG, "index_select: no output pointer");
  *out = NULL;
  RN_TRY(rn_check_tensor(x, "index_select: input"));
  RN_TRY(rn_check_tensor(index, "index_select: index"));
  if (x->ndim == 0) return rn_error(RN_ERR_SHAPE, "index_select: input must have at least 1 dim");
  RN_TRY(rn_norm_dim(&dim, x->ndim, "index_select"));
  if (index->ndim != 1) {
    char b[64];
    return rn_error(RN_ERR_SHAPE, "index_select: index must be 1-d, got shape %s", rn_shape_str(index, b, 64));
  }
  RN_TRY(rn_check_same_device(x, index, "index_select"));
  if (check) RN_TRY(check_index(index, x->shape[dim], dim, "index_select"));
  else if (index->dtype != RN_I64) return rn_error(RN_ERR_ARG, "index_select: index must be int64");
  int64_t shape[RN_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  shape[dim] = index->shape[0];
  rn_tensor *xc = NULL, *ic = NULL, *y = NULL;
  rn_status st = rn_contig_nograd(&xc, x);
  if (st == RN_OK) st = rn_contig_nograd(&ic, index);
  if (st == RN_OK) st = rn_new_like_shape(&y, x, x->ndim, shape);
  if (st == RN_OK) st = rn_kernels_of(x)->index_select(y, xc, dim, ic);
  rn_tensor_release(xc);
  rn_tensor_release(ic);
  if (st != RN_OK) { rn_tensor_release(y); return st; }
  rn_tensor *ins[2] = {x, index};
  rn_node *node;
  RN_RECORD(node, "index_select", index_select_backward, y, 2, ins);
  if (node) node->ip[0] = dim;
  *out = y;
  return RN_OK;
}

/* ------------------------------------------------------------------ gather */

static rn_status gather_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  if (!rn_node_needs_grad(n, 0)) return RN_OK;
  return add_back(&gin[0], n->in[0], gout, n->in[1], (int)n->ip[0], true);
}

rn_status rn_gather(rn_tensor **out, rn_tensor *x, int dim, rn_tensor *index) {
  if (!out) return rn_error(RN_ERR_ARG, "gather: no output pointer");
  *out = NULL;
  RN_TRY(rn_check_tensor(x, "gather: input"));
  RN_TRY(rn_check_tensor(index, "gather: index"));
  if (x->ndim == 0) return rn_error(RN_ERR_SHAPE, "gather: input must have at least 1 dim");
  RN_TRY(rn_norm_dim(&dim, x->ndim, "gather"));
  char a[64], b[64];
  bool fits = index->ndim == x->ndim;
  for (int d = 0; d < x->ndim && fits; d++) if (d != dim && index->shape[d] > x->shape[d]) fits = false;
  if (!fits)
    return rn_error(RN_ERR_SHAPE, "gather: index of shape %s does not fit input %s (same rank, sizes no larger "
                    "outside dim %d)", rn_shape_str(index, a, 64), rn_shape_str(x, b, 64), dim + 1);
  RN_TRY(rn_check_same_device(x, index, "gather"));
  RN_TRY(check_index(index, x->shape[dim], dim, "gather"));
  rn_tensor *xc = NULL, *ic = NULL, *y = NULL;
  rn_status st = rn_contig_nograd(&xc, x);
  if (st == RN_OK) st = rn_contig_nograd(&ic, index);
  if (st == RN_OK) st = rn_new_like_shape(&y, x, index->ndim, index->shape);
  if (st == RN_OK) st = rn_kernels_of(x)->gather(y, xc, dim, ic);
  rn_tensor_release(xc);
  rn_tensor_release(ic);
  if (st != RN_OK) { rn_tensor_release(y); return st; }
  rn_tensor *ins[2] = {x, index};
  rn_node *node;
  RN_RECORD(node, "gather", gather_backward, y, 2, ins);
  if (node) node->ip[0] = dim;
  *out = y;
  return RN_OK;
}

/* ------------------------------------------------------------------ top-k */

static rn_status topk_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  if (!rn_node_needs_grad(n, 0)) return RN_OK;
  return add_back(&gin[0], n->in[0], gout, n->saved[0], (int)n->ip[0], true);
}

rn_status rn_topk(rn_tensor **values, rn_tensor **indices, rn_tensor *x, int k, int dim, bool largest) {
  if (!values || !indices) return rn_error(RN_ERR_ARG, "topk: no output pointer");
  *values = *indices = NULL;
  RN_TRY(rn_check_f32(x, "topk"));
  if (x->ndim == 0) return rn_error(RN_ERR_SHAPE, "topk: input must have at least 1 dim");
  RN_TRY(rn_norm_dim(&dim, x->ndim, "topk"));
  if (k < 0 || k > x->shape[dim]) {
    char b[64];
    return rn_error(RN_ERR_ARG, "topk: k = %d is out of range for dim %d of size %lld (input %s)", k, dim + 1,
                    (long long)x->shape[dim], rn_shape_str(x, b, 64));
  }
  int64_t shape[RN_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  shape[dim] = k;
  rn_tensor *xc = NULL, *v = NULL, *ix = NULL;
  RN_TRY(rn_contig_nograd(&xc, x));
  rn_status st = rn_tensor_empty(&v, x->ndim, shape, RN_F32, rn_tensor_device(x));
  if (st == RN_OK) st = rn_tensor_empty(&ix, x->ndim, shape, RN_I64, rn_tensor_device(x));
  if (st == RN_OK) st = rn_kernels_of(x)->topk(v, ix, xc, k, dim, largest);
  rn_tensor_release(xc);
  rn_node *node = NULL;
  if (st == RN_OK) node = rn_record("topk", topk_backward, v, 1, &x, &st);
  if (st == RN_OK && node) {
    node->ip[0] = dim;
    st = rn_node_save(node, 0, ix);
  }
  if (st != RN_OK) { rn_tensor_release(v); rn_tensor_release(ix); return st; }
  *values = v;
  *indices = ix;
  return RN_OK;
}
