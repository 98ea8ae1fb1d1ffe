/* test_gradcheck_index.c - finite-difference checks of concat, index_select, gather and top-k values
 * (tolerances GC_EPS / GC_ATOL / GC_RTOL from testutil.h). */
#include "testutil.h"

static rn_tensor *leaf(int ndim, const int64_t *shape, uint64_t seed) {
  rn_tensor *t = test_randn(ndim, shape, seed, 1.0f);
  rn_set_requires_grad(t, true);
  return t;
}

/* Distinct values at least 0.1 apart, so finite differences never reorder top-k. */
static rn_tensor *spread(int ndim, const int64_t *shape) {
  rn_tensor *t = NULL;
  rn_tensor_empty(&t, ndim, shape, RN_F32, rn_cpu());
  int64_t n = rn_tensor_numel(t);
  float *p = rn_f32(t);
  for (int64_t i = 0; i < n; i++) p[i] = 0.1f * (float)((i * 7) % n) - 0.05f * (float)n; /* 7 is coprime to n */
  rn_set_requires_grad(t, true);
  return t;
}

static rn_tensor *ivals(int ndim, const int64_t *shape, const int64_t *v) {
  rn_tensor *t = NULL;
  rn_tensor_from_data(&t, ndim, shape, RN_I64, v);
  return t;
}

static rn_status f_concat(rn_tensor **out, rn_tensor **in, void *ctx) {
  rn_tensor *parts[3] = {in[0], in[1], in[0]}; /* a repeated input accumulates two gradients */
  return rn_concat(out, 3, parts, *(int *)ctx);
}

typedef struct { int dim; rn_tensor *index; } idx_ctx;

static rn_status f_index_select(rn_tensor **out, rn_tensor **in, void *ctx) {
  idx_ctx *c = ctx;
  return rn_index_select(out, in[0], c->dim, c->index);
}

static rn_status f_gather(rn_tensor **out, rn_tensor **in, void *ctx) {
  idx_ctx *c = ctx;
  return rn_gather(out, in[0], c->dim, c->index);
}

typedef struct { int k, dim; bool largest; } topk_ctx;

static rn_status f_topk(rn_tensor **out, rn_tensor **in, void *ctx) {
  topk_ctx *c = ctx;
  rn_tensor *ix = NULL;
  rn_status st = rn_topk(out, &ix, in[0], c->k, c->dim, c->largest);
  rn_tensor_release(ix);
  return st;
}

int main(void) {
  int64_t sa[3] = {2, 3, 4}, sb[3] = {2, 1, 4}, sc[3] = {2, 3, 2};
  rn_tensor *in[2];
  int dim = 1;
  in[0] = leaf(3, sa, 1);
  in[1] = leaf(3, sb, 2);
  test_gradcheck("concat dim 1", f_concat, 2, in, &dim, GC_EPS, GC_ATOL, GC_RTOL);
  rn_tensor_release(in[1]);
  in[1] = leaf(3, sc, 3);
  dim = -1;
  test_gradcheck("concat dim -1", f_concat, 2, in, &dim, GC_EPS, GC_ATOL, GC_RTOL);
  rn_tensor_release(in[1]);
  rn_set_requires_grad(in[0], false);
  in[1] = leaf(3, sc, 4);
  test_gradcheck("concat, one input without grad", f_concat, 2, in, &dim, GC_EPS, GC_ATOL, GC_RTOL);
  rn_tensor_release(in[1]);
  rn_tensor_release(in[0]);

  int64_t n5[1] = {5}, sel[5] = {2, 0, 2, 2, 1};
  idx_ctx ic = {1, ivals(1, n5, sel)};
  rn_tensor *x = leaf(3, sa, 5);
  test_gradcheck("index_select dim 1 (repeats)", f_index_select, 1, &x, &ic, GC_EPS, GC_ATOL, GC_RTOL);
  rn_tensor_release(ic.index);
  int64_t sel0[5] = {1, 1, 0, 1, 0};
  ic.dim = 0;
  ic.index = ivals(1, n5, sel0);
  test_gradcheck("index_select dim 0", f_index_select, 1, &x, &ic, GC_EPS, GC_ATOL, GC_RTOL);
  rn_tensor_release(ic.index);

  int64_t gs[3] = {2, 5, 3}, gv[30];
  for (int i = 0; i < 30; i++) gv[i] = (i * 7 + i / 4) % 3;
  ic.dim = 1;
  ic.index = ivals(3, gs, gv);
  test_gradcheck("gather dim 1", f_gather, 1, &x, &ic, GC_EPS, GC_ATOL, GC_RTOL);
  rn_tensor_release(ic.index);
  int64_t gs2[3] = {1, 2, 6}, gv2[12];
  for (int i = 0; i < 12; i++) gv2[i] = (i * 5) % 4;
  ic.dim = 2;
  ic.index = ivals(3, gs2, gv2);
  test_gradcheck("gather dim 2, smaller index", f_gather, 1, &x, &ic, GC_EPS, GC_ATOL, GC_RTOL);
  rn_tensor_release(ic.index);

  topk_ctx tk[3] = {{2, 2, true}, {3, 1, false}, {1, 0, true}};
  const char *tn[3] = {"topk largest dim 2", "topk smallest dim 1", "topk dim 0"};
  rn_tensor_release(x);
  x = spread(3, sa);
  for (int i = 0; i < 3; i++) test_gradcheck(tn[i], f_topk, 1, &x, &tk[i], GC_EPS, GC_ATOL, GC_RTOL);
  rn_tensor_release(x);
  return test_finish("gradcheck_index");
}
