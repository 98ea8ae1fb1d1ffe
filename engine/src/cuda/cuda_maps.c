/* cuda_maps.c - kernel-table entries for elementwise maps, reductions, softmax and indexing: argument checks,
 * then one launcher of kernels/ (rn_cuda_kernels.h) on the tensor's device stream. */
#include "cuda_internal.h"

#define LAUNCH(name, ...) rn_cu_check(name(__VA_ARGS__), #name)

/* [outer, D, inner] around dim, as the CPU kernels view a contiguous tensor */
static void split_at(const rn_tensor *t, int dim, int64_t *outer, int64_t *D, int64_t *inner) {
  *outer = *inner = 1;
  for (int d = 0; d < dim; d++) *outer *= t->shape[d];
  for (int d = dim + 1; d < t->ndim; d++) *inner *= t->shape[d];
  *D = t->ndim ? t->shape[dim] : 1;
}

/* ------------------------------------------------------------------ elementwise */

rn_status rn_cu_fill(rn_tensor *t, double v) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(t, &s));
  rnk_layout l = rn_cu_layout(t);
  return LAUNCH(rnk_fill, rn_cu_ptr(t), t->dtype, &l, v, s);
}

rn_status rn_cu_copy(rn_tensor *dst, const rn_tensor *src) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(dst, &s));
  RN_TRY(rn_cu_need(src, false, false, "copy: source"));
  if (!rn_tensor_same_shape(dst, src)) return rn_error(RN_ERR_SHAPE, "copy: shapes differ");
  rnk_layout dl = rn_cu_layout(dst), sl = rn_cu_layout(src);
  return LAUNCH(rnk_copy, rn_cu_ptr(dst), dst->dtype, &dl, rn_cu_ptr(src), src->dtype, &sl, s);
}

rn_status rn_cu_unary(rn_unary_op op, rn_tensor *y, const rn_tensor *x, float a, float b) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(y, &s));
  RN_TRY(rn_cu_need(y, false, true, "unary: output"));
  RN_TRY(rn_cu_need(x, false, true, "unary: input"));
  rnk_layout yl = rn_cu_layout(y), xl = rn_cu_layout(x);
  return LAUNCH(rnk_unary, op, rn_cu_ptr(y), &yl, rn_cu_ptr(x), &xl, a, b, s);
}

rn_status rn_cu_unary_backward(rn_unary_op op, rn_tensor *gx, const rn_tensor *gy, const rn_tensor *x, float a,
                               float b) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(gx, &s));
  RN_TRY(rn_cu_need(gx, true, true, "unary backward: gx"));
  RN_TRY(rn_cu_need(gy, true, true, "unary backward: gy"));
  RN_TRY(rn_cu_need(x, true, true, "unary backward: x"));
  return LAUNCH(rnk_unary_backward, op, rn_cu_ptr(gx), rn_cu_ptr(gy), rn_cu_ptr(x), rn_tensor_numel(gx), a, b, s);
}

rn_status rn_cu_binary(rn_binary_op op, rn_tensor *y, const rn_tensor *a, const rn_tensor *b) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(y, &s));
  RN_TRY(rn_cu_need(a, false, false, "binary: a"));
  RN_TRY(rn_cu_need(b, false, false, "binary: b"));
  rnk_layout yl = rn_cu_layout(y), al = rn_cu_layout(a), bl = rn_cu_layout(b);
  return LAUNCH(rnk_binary, op, rn_cu_ptr(y), y->dtype, &yl, rn_cu_ptr(a), a->dtype, &al, rn_cu_ptr(b), b->dtype, &bl, s);
}

rn_status rn_cu_where(rn_tensor *y, const rn_tensor *cond, const rn_tensor *a, const rn_tensor *b) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(y, &s));
  RN_TRY(rn_cu_need(y, true, true, "where: output"));
  RN_TRY(rn_cu_need(cond, false, false, "where: condition"));
  RN_TRY(rn_cu_need(a, false, true, "where: a"));
  RN_TRY(rn_cu_need(b, false, true, "where: b"));
  rnk_layout cl = rn_cu_layout(cond), al = rn_cu_layout(a), bl = rn_cu_layout(b);
  cl.ndim = al.ndim = bl.ndim = y->ndim; /* the views are expanded to y's shape; walk them with y's rank */
  for (int d = 0; d < y->ndim; d++) cl.shape[d] = al.shape[d] = bl.shape[d] = y->shape[d];
  return LAUNCH(rnk_where, rn_cu_ptr(y), rn_cu_ptr(cond), cond->dtype, &cl, rn_cu_ptr(a), &al, rn_cu_ptr(b), &bl, s);
}

/* ------------------------------------------------------------------ reductions */

rn_status rn_cu_reduce(rn_reduce_op op, rn_tensor *y, const rn_tensor *x, const bool *reduce) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(rn_cu_need(x, false, true, "reduce: input"));
  RN_TRY(rn_cu_need(y, true, true, "reduce: output"));
  rnk_reduce_plan p = {0};
  p.n_out = p.n_red = 1;
  for (int d = 0; d < x->ndim; d++) {
    if (reduce[d]) {
      p.rsz[p.nr] = x->shape[d];
      p.rst[p.nr++] = x->stride[d];
      p.n_red *= x->shape[d];
    } else {
      p.ksz[p.nk] = x->shape[d];
      p.kst[p.nk++] = x->stride[d];
      p.n_out *= x->shape[d];
    }
  }
  if (rn_tensor_numel(y) != p.n_out) return rn_error(RN_ERR_SHAPE, "reduce: output has the wrong size");
  size_t wb = rnk_reduce_workspace(&p);
  void *work = NULL;
  int dev = x->storage->device.index;
  if (wb) RN_TRY(rn_cu_alloc(dev, wb, &work));
  rn_status st = LAUNCH(rnk_reduce, op, rn_cu_ptr(y), rn_cu_ptr(x), &p, work, s);
  rn_cu_free(dev, work, wb); /* stream-ordered: the next user of the block runs after this reduction */
  return st;
}

rn_status rn_cu_arg_reduce(bool is_max, rn_tensor *values, rn_tensor *indices, const rn_tensor *x, int dim) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(rn_cu_need(x, true, true, "arg reduce: input"));
  RN_TRY(rn_cu_need(values, true, true, "arg reduce: values"));
  RN_TRY(rn_cu_need(indices, true, false, "arg reduce: indices"));
  if (indices->dtype != RN_I64) return rn_error(RN_ERR_ARG, "arg reduce: indices must be int64");
  int64_t outer, D, inner;
  split_at(x, dim, &outer, &D, &inner);
  return LAUNCH(rnk_arg_reduce, is_max, rn_cu_ptr(values), rn_cu_ptr(indices), rn_cu_ptr(x), outer, D, inner, s);
}

rn_status rn_cu_softmax(rn_tensor *y, const rn_tensor *x, int dim, bool log) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(rn_cu_need(x, true, true, "softmax: input"));
  RN_TRY(rn_cu_need(y, true, true, "softmax: output"));
  int64_t outer, D, inner;
  split_at(x, dim, &outer, &D, &inner);
  return LAUNCH(rnk_softmax, rn_cu_ptr(y), rn_cu_ptr(x), outer, D, inner, log, s);
}

rn_status rn_cu_softmax_backward(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *y, int dim, bool log) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(y, &s));
  RN_TRY(rn_cu_need(gx, true, true, "softmax backward: gx"));
  RN_TRY(rn_cu_need(gy, true, true, "softmax backward: gy"));
  RN_TRY(rn_cu_need(y, true, true, "softmax backward: y"));
  int64_t outer, D, inner;
  split_at(y, dim, &outer, &D, &inner);
  return LAUNCH(rnk_softmax_backward, rn_cu_ptr(gx), rn_cu_ptr(gy), rn_cu_ptr(y), outer, D, inner, log, s);
}

/* ------------------------------------------------------------------ indexing */

static rn_status need_index(const rn_tensor *ix, const char *what) {
  RN_TRY(rn_cu_need(ix, true, false, what));
  if (ix->dtype != RN_I64) return rn_error(RN_ERR_ARG, "%s: expected int64 indices", what);
  return RN_OK;
}

_Static_assert(RN_CONCAT_MAX <= sizeof(((rnk_concat_inputs *)0)->x) / sizeof(const void *),
               "rnk_concat_inputs holds fewer inputs than RN_CONCAT_MAX");

rn_status rn_cu_concat(rn_tensor *y, int n, const rn_tensor *const *xs, int dim) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(y, &s));
  RN_TRY(rn_cu_need(y, true, false, "concat: output"));
  if (n < 1 || n > RN_CONCAT_MAX)
    return rn_error(RN_ERR_ARG, "concat: 1 .. %d inputs in one call, got %d", RN_CONCAT_MAX, n);
  int64_t outer, D, inner;
  split_at(y, dim, &outer, &D, &inner);
  rnk_concat_inputs in = {.n = n};
  int64_t along = 0;
  for (int i = 0; i < n; i++) {
    RN_TRY(rn_cu_need(xs[i], true, false, "concat: input"));
    if (xs[i]->dtype != y->dtype || xs[i]->ndim != y->ndim)
      return rn_error(RN_ERR_ARG, "concat: input %d is not a %d-d %s tensor like the output", i, y->ndim,
                      rn_dtype_name(y->dtype));
    in.x[i] = rn_cu_ptr(xs[i]);
    in.chunk[i] = xs[i]->shape[dim] * inner;
    along += xs[i]->shape[dim];
  }
  if (along != D)
    return rn_error(RN_ERR_SHAPE, "concat: the inputs' lengths along dim %d do not sum to the output's", dim);
  return LAUNCH(rnk_concat, rn_cu_ptr(y), rn_dtype_size(y->dtype), &in, outer, s);
}

rn_status rn_cu_index_select(rn_tensor *y, const rn_tensor *x, int dim, const rn_tensor *index) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(rn_cu_need(x, true, false, "index_select: input"));
  RN_TRY(rn_cu_need(y, true, false, "index_select: output"));
  RN_TRY(need_index(index, "index_select: index"));
  int64_t outer, D, inner;
  split_at(x, dim, &outer, &D, &inner);
  return LAUNCH(rnk_index_select, rn_cu_ptr(y), rn_cu_ptr(x), rn_dtype_size(x->dtype), rn_cu_ptr(index), outer, D,
                inner, rn_tensor_numel(index), s);
}

rn_status rn_cu_index_add(rn_tensor *gx, int dim, const rn_tensor *index, const rn_tensor *gy) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(gx, &s));
  RN_TRY(rn_cu_need(gx, true, true, "index_add: gx"));
  RN_TRY(rn_cu_need(gy, true, true, "index_add: gy"));
  RN_TRY(need_index(index, "index_add: index"));
  int64_t outer, D, inner;
  split_at(gx, dim, &outer, &D, &inner);
  return LAUNCH(rnk_index_add, rn_cu_ptr(gx), rn_cu_ptr(index), rn_cu_ptr(gy), outer, D, inner,
                rn_tensor_numel(index), s);
}

static rnk_gather_plan gather_plan(const rn_tensor *index, const rn_tensor *data, int dim) {
  rnk_gather_plan p = {0};
  p.ndim = index->ndim;
  p.dim = dim;
  for (int d = 0; d < index->ndim; d++) {
    p.ishape[d] = index->shape[d];
    p.dshape[d] = data->shape[d];
  }
  p.n = rn_tensor_numel(index);
  return p;
}

rn_status rn_cu_gather(rn_tensor *y, const rn_tensor *x, int dim, const rn_tensor *index) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(rn_cu_need(x, true, false, "gather: input"));
  RN_TRY(rn_cu_need(y, true, false, "gather: output"));
  RN_TRY(need_index(index, "gather: index"));
  if (index->ndim != x->ndim) return rn_error(RN_ERR_SHAPE, "gather: index and input ranks differ");
  rnk_gather_plan p = gather_plan(index, x, dim);
  return LAUNCH(rnk_gather, rn_cu_ptr(y), rn_cu_ptr(x), rn_dtype_size(x->dtype), rn_cu_ptr(index), &p, s);
}

rn_status rn_cu_scatter_add(rn_tensor *gx, int dim, const rn_tensor *index, const rn_tensor *gy) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(gx, &s));
  RN_TRY(rn_cu_need(gx, true, true, "scatter_add: gx"));
  RN_TRY(rn_cu_need(gy, true, true, "scatter_add: gy"));
  RN_TRY(need_index(index, "scatter_add: index"));
  if (index->ndim != gx->ndim) return rn_error(RN_ERR_SHAPE, "scatter_add: index and gx ranks differ");
  rnk_gather_plan p = gather_plan(index, gx, dim);
  return LAUNCH(rnk_scatter_add, rn_cu_ptr(gx), rn_cu_ptr(index), rn_cu_ptr(gy), &p, s);
}

rn_status rn_cu_topk(rn_tensor *values, rn_tensor *indices, const rn_tensor *x, int k, int dim, bool largest) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(rn_cu_need(x, true, true, "topk: input"));
  RN_TRY(rn_cu_need(values, true, true, "topk: values"));
  RN_TRY(need_index(indices, "topk: indices"));
  int64_t outer, D, inner;
  split_at(x, dim, &outer, &D, &inner);
  if (k < 0 || k > D) return rn_error(RN_ERR_ARG, "topk: k = %d out of range for a dim of size %lld", k, (long long)D);
  size_t wb = rnk_topk_workspace(outer, D, inner, k);
  void *work = NULL;
  int dev = x->storage->device.index;
  if (wb) RN_TRY(rn_cu_alloc(dev, wb, &work));
  rn_status st = LAUNCH(rnk_topk, rn_cu_ptr(values), rn_cu_ptr(indices), rn_cu_ptr(x), outer, D, inner, k, largest,
                        work, s);
  rn_cu_free(dev, work, wb);
  return st;
}
