/* views.c - tensors sharing storage (narrow, select, transpose, permute, reshape, expand, squeeze) and their
 * backward rules. */
#include "internal.h"

static rn_status new_view(rn_tensor **out, rn_tensor *t) {
  rn_tensor *v = calloc(1, sizeof *v);
  if (!v) return rn_error(RN_ERR_OOM, "out of memory making a view");
  v->refcount = 1;
  v->storage = t->storage;
  t->storage->refcount++;
  v->offset = t->offset;
  v->ndim = t->ndim;
  v->dtype = t->dtype;
  memcpy(v->shape, t->shape, sizeof v->shape);
  memcpy(v->stride, t->stride, sizeof v->stride);
  *out = v;
  return RN_OK;
}

rn_status rn_detach(rn_tensor **out, rn_tensor *t) {
  RN_TRY(rn_check_tensor(t, "detach"));
  return new_view(out, t);
}

/* Backward of views that pick a region: scatter gout into zeros of the input's shape. */
static rn_status region_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  rn_tensor *x = n->in[0], *gx = NULL, *region = NULL;
  RN_TRY(rn_tensor_zeros(&gx, x->ndim, x->shape, gout->dtype, rn_tensor_device(gout)));
  rn_status st = n->ip[0] == 0 ? rn_narrow(&region, gx, (int)n->ip[1], n->ip[2], n->ip[3])
                               : rn_select(&region, gx, (int)n->ip[1], n->ip[2]);
  if (st == RN_OK) st = rn_copy_(region, gout);
  rn_tensor_release(region);
  if (st != RN_OK) { rn_tensor_release(gx); return st; }
  gin[0] = gx;
  return RN_OK;
}

rn_status rn_narrow(rn_tensor **out, rn_tensor *t, int dim, int64_t start, int64_t length) {
  *out = NULL;
  RN_TRY(rn_check_tensor(t, "narrow"));
  RN_TRY(rn_norm_dim(&dim, t->ndim, "narrow"));
  if (t->ndim == 0) return rn_error(RN_ERR_SHAPE, "narrow: cannot narrow a 0-dim tensor");
  if (start < 0 || length < 0 || start + length > t->shape[dim])
    return rn_error(RN_ERR_ARG, "narrow: range start %lld length %lld does not fit dim %d of size %lld",
                    (long long)start + 1, (long long)length, dim + 1, (long long)t->shape[dim]);
  rn_tensor *v = NULL;
  RN_TRY(new_view(&v, t));
  v->offset += start * t->stride[dim];
  v->shape[dim] = length;
  rn_node *node;
  RN_RECORD(node, "narrow", region_backward, v, 1, &t);
  if (node) { node->ip[0] = 0; node->ip[1] = dim; node->ip[2] = start; node->ip[3] = length; }
  *out = v;
  return RN_OK;
}

rn_status rn_select(rn_tensor **out, rn_tensor *t, int dim, int64_t index) {
  *out = NULL;
  RN_TRY(rn_check_tensor(t, "select"));
  if (t->ndim == 0) return rn_error(RN_ERR_SHAPE, "select: cannot index a 0-dim tensor");
  RN_TRY(rn_norm_dim(&dim, t->ndim, "select"));
  if (index < 0 || index >= t->shape[dim])
    return rn_error(RN_ERR_ARG, "select: index %lld out of range for dim %d of size %lld", (long long)index + 1,
                    dim + 1, (long long)t->shape[dim]);
  rn_tensor *v = NULL;
  RN_TRY(new_view(&v, t));
  v->offset += index * t->stride[dim];
  for (int d = dim; d + 1 < t->ndim; d++) { v->shape[d] = t->shape[d + 1]; v->stride[d] = t->stride[d + 1]; }
  v->ndim = t->ndim - 1;
  rn_node *node;
  RN_RECORD(node, "select", region_backward, v, 1, &t);
  if (node) { node->ip[0] = 1; node->ip[1] = dim; node->ip[2] = index; }
  *out = v;
  return RN_OK;
}

static rn_status permute_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  int inv[RN_MAX_DIMS];
  for (int d = 0; d < n->in[0]->ndim; d++) inv[n->ip[d]] = d;
  return rn_permute(&gin[0], gout, inv);
}

rn_status rn_permute(rn_tensor **out, rn_tensor *t, const int *perm) {
  *out = NULL;
  RN_TRY(rn_check_tensor(t, "permute"));
  bool seen[RN_MAX_DIMS] = {0};
  for (int d = 0; d < t->ndim; d++) {
    if (perm[d] < 0 || perm[d] >= t->ndim || seen[perm[d]])
      return rn_error(RN_ERR_ARG, "permute: the order must list each of the %d dims once (entry %d is %d)", t->ndim,
                      d + 1, perm[d] + 1);
    seen[perm[d]] = true;
  }
  rn_tensor *v = NULL;
  RN_TRY(new_view(&v, t));
  for (int d = 0; d < t->ndim; d++) { v->shape[d] = t->shape[perm[d]]; v->stride[d] = t->stride[perm[d]]; }
  rn_node *node;
  RN_RECORD(node, "permute", permute_backward, v, 1, &t);
  if (node) for (int d = 0; d < t->ndim; d++) node->ip[d] = perm[d];
  *out = v;
  return RN_OK;
}

rn_status rn_transpose(rn_tensor **out, rn_tensor *t, int d0, int d1) {
  *out = NULL;
  RN_TRY(rn_check_tensor(t, "transpose"));
  RN_TRY(rn_norm_dim(&d0, t->ndim, "transpose"));
  RN_TRY(rn_norm_dim(&d1, t->ndim, "transpose"));
  int perm[RN_MAX_DIMS];
  for (int d = 0; d < t->ndim; d++) perm[d] = d;
  perm[d0] = d1;
  perm[d1] = d0;
  return rn_permute(out, t, perm);
}

static rn_status reshape_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  return rn_reshape(&gin[0], gout, n->in[0]->ndim, n->in[0]->shape);
}

rn_status rn_reshape(rn_tensor **out, rn_tensor *t, int ndim, const int64_t *shape) {
  *out = NULL;
  RN_TRY(rn_check_tensor(t, "reshape"));
  if (ndim < 0 || ndim > RN_MAX_DIMS) return rn_error(RN_ERR_SHAPE, "reshape: %d dims (at most %d)", ndim, RN_MAX_DIMS);
  int64_t s[RN_MAX_DIMS], known = 1;
  int infer = -1;
  for (int d = 0; d < ndim; d++) {
    s[d] = shape[d];
    if (s[d] == -1) {
      if (infer >= 0) return rn_error(RN_ERR_SHAPE, "reshape: only one size may be -1");
      infer = d;
    } else if (s[d] < 0) {
      return rn_error(RN_ERR_SHAPE, "reshape: negative size %lld in dim %d", (long long)s[d], d + 1);
    } else {
      known *= s[d];
    }
  }
  int64_t n = rn_tensor_numel(t);
  if (infer >= 0) {
    if (known == 0 || n % known) {
      char b[64];
      return rn_error(RN_ERR_SHAPE, "reshape: cannot infer the -1 size for %lld elements of %s", (long long)n,
                      rn_shape_str(t, b, 64));
    }
    s[infer] = n / known;
    known *= s[infer];
  }
  if (known != n) {
    char b[64];
    return rn_error(RN_ERR_SHAPE, "reshape: %s has %lld elements, the new shape %lld", rn_shape_str(t, b, 64),
                    (long long)n, (long long)known);
  }
  rn_tensor *src = NULL;
  if (rn_tensor_is_contiguous(t)) src = rn_tensor_retain(t);
  else RN_TRY(rn_clone(&src, t));
  rn_tensor *v = NULL;
  rn_status st = new_view(&v, src);
  rn_tensor_release(src);
  if (st != RN_OK) return st;
  v->ndim = ndim;
  int64_t stride = 1;
  for (int d = ndim - 1; d >= 0; d--) { v->shape[d] = s[d]; v->stride[d] = stride; stride *= s[d]; }
  rn_node *node;
  RN_RECORD(node, "reshape", reshape_backward, v, 1, &t);
  *out = v;
  return RN_OK;
}

static rn_status identity_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  gin[0] = rn_tensor_retain(gout);
  return RN_OK;
}

rn_status rn_contiguous(rn_tensor **out, rn_tensor *t) {
  *out = NULL;
  RN_TRY(rn_check_tensor(t, "contiguous"));
  if (rn_tensor_is_contiguous(t)) { *out = rn_tensor_retain(t); return RN_OK; }
  rn_tensor *c;
  RN_TRY(rn_clone(&c, t));
  rn_node *node;
  RN_RECORD(node, "contiguous", identity_backward, c, 1, &t);
  *out = c;
  return RN_OK;
}

static rn_status expand_backward(rn_node *n, rn_tensor *gout, rn_tensor **gin) {
  return rn_sum_to(&gin[0], gout, n->in[0]->ndim, n->in[0]->shape);
}

rn_status rn_expand(rn_tensor **out, rn_tensor *t, int ndim, const int64_t *shape) {
  *out = NULL;
  RN_TRY(rn_check_tensor(t, "expand"));
  if (ndim < t->ndim || ndim > RN_MAX_DIMS) {
    char b[64];
    return rn_error(RN_ERR_SHAPE, "expand: %s cannot be expanded to %d dims", rn_shape_str(t, b, 64), ndim);
  }
  rn_tensor *v = NULL;
  RN_TRY(new_view(&v, t));
  v->ndim = ndim;
  int lead = ndim - t->ndim;
  for (int d = 0; d < ndim; d++) {
    int64_t want = shape[d];
    int64_t have = d >= lead ? t->shape[d - lead] : 1;
    int64_t st = d >= lead ? t->stride[d - lead] : 0;
    if (want == -1) want = have;
    if (have != want && have != 1) {
      char b[64];
      rn_tensor_release(v);
      return rn_error(RN_ERR_SHAPE, "expand: %s cannot be expanded: dim %d has size %lld, wanted %lld",
                      rn_shape_str(t, b, 64), d + 1, (long long)have, (long long)want);
    }
    if (want < 0) { rn_tensor_release(v); return rn_error(RN_ERR_SHAPE, "expand: negative size %lld", (long long)want); }
    v->shape[d] = want;
    v->stride[d] = have == want ? st : 0;
  }
  rn_node *node;
  RN_RECORD(node, "expand", expand_backward, v, 1, &t);
  *out = v;
  return RN_OK;
}

rn_status rn_squeeze(rn_tensor **out, rn_tensor *t, int dim) {
  *out = NULL;
  RN_TRY(rn_check_tensor(t, "squeeze"));
  RN_TRY(rn_norm_dim(&dim, t->ndim, "squeeze"));
  if (t->ndim == 0 || t->shape[dim] != 1) {
    char b[64];
    return rn_error(RN_ERR_SHAPE, "squeeze: dim %d of %s does not have size 1", dim + 1, rn_shape_str(t, b, 64));
  }
  int64_t s[RN_MAX_DIMS];
  int k = 0;
  for (int d = 0; d < t->ndim; d++) if (d != dim) s[k++] = t->shape[d];
  return rn_reshape(out, t, k, s);
}

rn_status rn_unsqueeze(rn_tensor **out, rn_tensor *t, int dim) {
  *out = NULL;
  RN_TRY(rn_check_tensor(t, "unsqueeze"));
  if (dim < 0) dim += t->ndim + 1;
  if (dim < 0 || dim > t->ndim || t->ndim >= RN_MAX_DIMS)
    return rn_error(RN_ERR_ARG, "unsqueeze: dim %d out of range for a tensor with %d dims", dim + 1, t->ndim);
  int64_t s[RN_MAX_DIMS];
  int k = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (d == dim) s[k++] = 1;
    s[k++] = t->shape[d];
  }
  if (dim == t->ndim) s[k++] = 1;
  return rn_reshape(out, t, k, s);
}
