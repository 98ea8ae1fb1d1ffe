/* test_gradcheck_reduce.c - finite-difference checks of reductions, max_dim, softmax and log-softmax
 * (tolerances GC_EPS / GC_ATOL / GC_RTOL from testutil.h). */
#include "testutil.h"

typedef struct { rn_reduce_op op; int n; int dims[3]; bool keep; } red_ctx;

static rn_status f_reduce(rn_tensor **out, rn_tensor **in, void *ctx) {
  red_ctx *c = ctx;
  return rn_reduce(out, c->op, in[0], c->n, c->dims, c->keep);
}

static rn_status f_max_dim(rn_tensor **out, rn_tensor **in, void *ctx) {
  rn_tensor *ix = NULL;
  rn_status st = rn_max_dim(out, &ix, in[0], *(int *)ctx, false);
  rn_tensor_release(ix);
  return st;
}

static rn_status f_softmax(rn_tensor **out, rn_tensor **in, void *ctx) { return rn_softmax(out, in[0], *(int *)ctx); }
static rn_status f_log_softmax(rn_tensor **out, rn_tensor **in, void *ctx) {
  return rn_log_softmax(out, in[0], *(int *)ctx);
}

/* Distinct values at least 0.1 apart (a shuffled ramp), so finite differences never cross a max/min tie. */
static rn_tensor *spread(int ndim, const int64_t *shape, uint64_t seed) {
  rn_tensor *t = NULL;
  rn_tensor_empty(&t, ndim, shape, RN_F32, rn_cpu());
  int64_t n = rn_tensor_numel(t);
  float *p = rn_f32(t);
  for (int64_t i = 0; i < n; i++) p[i] = 0.1f * (float)i - 0.05f * (float)n;
  for (int64_t i = n - 1; i > 0; i--) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    int64_t j = (int64_t)((seed >> 33) % (uint64_t)(i + 1));
    float tmp = p[i]; p[i] = p[j]; p[j] = tmp;
  }
  rn_set_requires_grad(t, true);
  return t;
}

int main(void) {
  int64_t shape[3] = {2, 3, 4};
  red_ctx cases[] = {
    {RN_RED_SUM, 0, {0}, false},      {RN_RED_SUM, 2, {0, 2}, true},   {RN_RED_MEAN, 1, {1}, false},
    {RN_RED_MEAN, 0, {0}, true},      {RN_RED_MAX, 2, {1, 2}, false},  {RN_RED_MAX, 1, {-1}, true},
    {RN_RED_MIN, 2, {0, 2}, false},   {RN_RED_MIN, 0, {0}, false},
  };
  const char *names[] = {"sum all", "sum 0,2 keep", "mean 1", "mean all keep", "max 1,2", "max -1 keep",
                         "min 0,2", "min all"};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rn_tensor *x = spread(3, shape, 11 + i);
    test_gradcheck(names[i], f_reduce, 1, &x, &cases[i], GC_EPS, GC_ATOL, GC_RTOL);
    rn_tensor_release(x);
  }
  for (int dim = 0; dim < 3; dim++) {
    rn_tensor *x = spread(3, shape, 40 + dim);
    test_gradcheck("max_dim", f_max_dim, 1, &x, &dim, GC_EPS, GC_ATOL, GC_RTOL);
    rn_tensor_release(x);
  }
  for (int dim = -1; dim < 3; dim++) {
    rn_tensor *x = test_randn(3, shape, 50 + dim, 2.0f);
    rn_set_requires_grad(x, true);
    test_gradcheck("softmax", f_softmax, 1, &x, &dim, GC_EPS, GC_ATOL, GC_RTOL);
    test_gradcheck("log_softmax", f_log_softmax, 1, &x, &dim, GC_EPS, GC_ATOL, GC_RTOL);
    rn_tensor_release(x);
  }
  return test_finish("gradcheck_reduce");
}
