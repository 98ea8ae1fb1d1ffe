/* test_reduce.c - reductions, max along a dim, softmax/log-softmax against PyTorch fixtures; ties, NaN,
 * empty dims and bad arguments. */
#include <math.h>

#include "testutil.h"

static rn_tensor *vec(int n, const float *v) {
  rn_tensor *t = NULL;
  int64_t s[1] = {n};
  rn_tensor_from_data(&t, 1, s, RN_F32, v);
  return t;
}

static double at(const rn_tensor *t, int64_t i) {
  double v = NAN;
  int64_t idx[RN_MAX_DIMS];
  for (int d = t->ndim - 1; d >= 0; d--) { idx[d] = i % t->shape[d]; i /= t->shape[d]; }
  rn_tensor_get(t, idx, &v);
  return v;
}

static void against_torch(void) {
  rn_tensor *x = test_fixture("reduce/x.npy");
  if (!x) return;
  struct { rn_reduce_op op; int n; int dims[3]; bool keep; const char *ref; } cases[] = {
    {RN_RED_SUM, 2, {1, 3}, true, "reduce/sum_13_keep.npy"},
    {RN_RED_MEAN, 2, {0, -2}, false, "reduce/mean_02.npy"},
    {RN_RED_MAX, 3, {1, 2, 3}, false, "reduce/max_123.npy"},
    {RN_RED_MIN, 1, {-1}, true, "reduce/min_3_keep.npy"},
    {RN_RED_SUM, 0, {0}, false, "reduce/sum_all.npy"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    rn_tensor *y = NULL, *ref = test_fixture(cases[c].ref);
    CHECK_OK(rn_reduce(&y, cases[c].op, x, cases[c].n, cases[c].dims, cases[c].keep));
    test_check_close(y, ref, 1e-5, 1e-5, cases[c].ref);
    rn_tensor_release(y);
    rn_tensor_release(ref);
  }
  /* a non-contiguous input reduces the same as its copy */
  rn_tensor *xt = NULL, *a = NULL, *b = NULL, *xc = NULL;
  CHECK_OK(rn_transpose(&xt, x, 1, 3));
  CHECK_OK(rn_clone(&xc, xt));
  int d[2] = {0, 2};
  CHECK_OK(rn_reduce(&a, RN_RED_SUM, xt, 2, d, false));
  CHECK_OK(rn_reduce(&b, RN_RED_SUM, xc, 2, d, false));
  test_check_close(a, b, 1e-6, 1e-6, "sum of a transposed view");
  rn_tensor_release(a); rn_tensor_release(b);
  rn_tensor_release(xt); rn_tensor_release(xc);
  /* the kernel itself takes strided input (the CUDA agreement test feeds it views): per-channel sums of an
   * NCHW tensor permuted to NHWC, which the contiguous row path must not take */
  int64_t s4[4] = {4, 8, 6, 10}, ks[4] = {1, 1, 1, 8};
  int perm[4] = {0, 2, 3, 1};
  bool red[4] = {true, true, true, false};
  rn_tensor *x4 = test_randn(4, s4, 3, 1.0f);
  CHECK_OK(rn_permute(&xt, x4, perm));
  CHECK_OK(rn_clone(&xc, xt));
  CHECK_OK(rn_tensor_empty(&a, 4, ks, RN_F32, rn_cpu()));
  CHECK_OK(rn_tensor_empty(&b, 4, ks, RN_F32, rn_cpu()));
  const rn_kernels *K = rn_backend_for(rn_cpu())->k;
  CHECK_OK(K->reduce(RN_RED_SUM, a, xt, red));
  CHECK_OK(K->reduce(RN_RED_SUM, b, xc, red));
  test_check_close(a, b, 1e-5, 1e-5, "reduce kernel on a permuted view");
  rn_tensor_release(x4);
  rn_tensor_release(a); rn_tensor_release(b); rn_tensor_release(xt); rn_tensor_release(xc);

  /* max routing of the gradient, against PyTorch */
  rn_tensor *xg = NULL, *m = NULL, *r = test_fixture("reduce/max_123_r.npy"), *mr = NULL, *L = NULL;
  rn_tensor *gref = test_fixture("reduce/max_123_grad.npy");
  CHECK_OK(rn_clone(&xg, x));
  CHECK_OK(rn_set_requires_grad(xg, true));
  int d3[3] = {1, 2, 3};
  CHECK_OK(rn_reduce(&m, RN_RED_MAX, xg, 3, d3, false));
  CHECK_OK(rn_mul(&mr, m, r));
  CHECK_OK(rn_reduce(&L, RN_RED_SUM, mr, 0, NULL, false));
  CHECK_OK(rn_backward(L, NULL));
  test_check_close(xg->grad, gref, 1e-6, 1e-6, "max gradient routing");
  rn_tensor *ts[] = {xg, m, r, mr, L, gref};
  for (int i = 0; i < 6; i++) rn_tensor_release(ts[i]);

  rn_tensor *v = NULL, *ix = NULL, *vref = test_fixture("reduce/maxdim2_values.npy");
  rn_tensor *iref = test_fixture("reduce/maxdim2_indices.npy");
  CHECK_OK(rn_max_dim(&v, &ix, x, 2, false));
  test_check_close(v, vref, 1e-12, 0, "max_dim values");
  if (ix && iref) { CHECK(ix->dtype == RN_I64); test_check_close(ix, iref, 1e-12, 0, "max_dim indices"); }
  rn_tensor_release(v); rn_tensor_release(ix); rn_tensor_release(vref); rn_tensor_release(iref);
  CHECK_OK(rn_max_dim(&v, &ix, x, -1, true));
  if (v) CHECK(v->ndim == 4 && v->shape[3] == 1 && ix->shape[3] == 1);
  rn_tensor_release(v); rn_tensor_release(ix);
  rn_tensor_release(x);
}

static void softmax_against_torch(void) {
  rn_tensor *big = test_fixture("reduce/big.npy"), *x = test_fixture("reduce/x.npy");
  rn_tensor *g = test_fixture("reduce/softmax_g.npy");
  if (!big || !x || !g) return;
  for (int log = 0; log < 2; log++) {
    rn_tensor *y = NULL, *bg = NULL, *yg = NULL, *L = NULL;
    rn_tensor *ref = test_fixture(log ? "reduce/log_softmax_big_1.npy" : "reduce/softmax_big_1.npy");
    rn_tensor *gref = test_fixture(log ? "reduce/log_softmax_big_1_grad.npy" : "reduce/softmax_big_1_grad.npy");
    CHECK_OK(rn_clone(&bg, big));
    CHECK_OK(rn_set_requires_grad(bg, true));
    CHECK_OK(log ? rn_log_softmax(&y, bg, 1) : rn_softmax(&y, bg, 1));
    test_check_close(y, ref, 1e-5, 1e-5, log ? "log_softmax large logits" : "softmax large logits");
    CHECK_OK(rn_mul(&yg, y, g));
    CHECK_OK(rn_reduce(&L, RN_RED_SUM, yg, 0, NULL, false));
    CHECK_OK(rn_backward(L, NULL));
    test_check_close(bg->grad, gref, 1e-5, 1e-4, log ? "log_softmax backward" : "softmax backward");
    rn_tensor *ts[] = {y, bg, yg, L, ref, gref};
    for (int i = 0; i < 6; i++) rn_tensor_release(ts[i]);
  }
  rn_tensor *y = NULL, *ref = test_fixture("reduce/softmax_x_last.npy");
  CHECK_OK(rn_softmax(&y, x, -1));
  test_check_close(y, ref, 1e-6, 1e-5, "softmax last dim");
  rn_tensor_release(y); rn_tensor_release(ref);
  ref = test_fixture("reduce/log_softmax_x_0.npy");
  CHECK_OK(rn_log_softmax(&y, x, 0));
  test_check_close(y, ref, 1e-6, 1e-5, "log_softmax dim 0");
  rn_tensor_release(y); rn_tensor_release(ref);
  rn_tensor_release(big); rn_tensor_release(x); rn_tensor_release(g);
}

static void ties_and_specials(void) {
  /* ties: the gradient of max goes to the first maximum only */
  float v[5] = {1, 3, 3, 2, 3};
  rn_tensor *x = vec(5, v), *m = NULL, *vals = NULL, *ix = NULL;
  CHECK_OK(rn_set_requires_grad(x, true));
  CHECK_OK(rn_reduce(&m, RN_RED_MAX, x, 0, NULL, false));
  CHECK_OK(rn_backward(m, NULL));
  if (x->grad) { CHECK(at(x->grad, 1) == 1); CHECK(at(x->grad, 2) == 0 && at(x->grad, 4) == 0); }
  rn_tensor_release(m);
  CHECK_OK(rn_max_dim(&vals, &ix, x, 0, false));
  if (ix) { CHECK(ix->ndim == 0); CHECK(at(ix, 0) == 1); CHECK(at(vals, 0) == 3); }
  rn_tensor_release(vals); rn_tensor_release(ix);
  rn_zero_grad(x);
  CHECK_OK(rn_reduce(&m, RN_RED_MIN, x, 0, NULL, true));
  if (m) { CHECK(m->ndim == 1 && m->shape[0] == 1); CHECK(at(m, 0) == 1); }
  rn_tensor_release(m);
  rn_tensor_release(x);

  /* NaN propagates through max and softmax; -inf logits give zero probability */
  float w[4] = {1, NAN, 5, 2};
  x = vec(4, w);
  CHECK_OK(rn_reduce(&m, RN_RED_MAX, x, 0, NULL, false));
  if (m) CHECK(isnan(at(m, 0)));
  rn_tensor_release(m);
  CHECK_OK(rn_softmax(&m, x, 0));
  if (m) CHECK(isnan(at(m, 0)) && isnan(at(m, 2)));
  rn_tensor_release(m);
  CHECK_OK(rn_log_softmax(&m, x, 0));
  if (m) CHECK(isnan(at(m, 3)));
  rn_tensor_release(m);
  rn_tensor_release(x);
  float u[3] = {-INFINITY, 0, 0};
  x = vec(3, u);
  CHECK_OK(rn_softmax(&m, x, 0));
  if (m) { CHECK(at(m, 0) == 0); CHECK_NEAR(at(m, 1), 0.5, 1e-7); }
  rn_tensor_release(m);
  rn_tensor_release(x);

  /* empty dims: sum is 0, max is an error */
  int64_t es[2] = {3, 0};
  rn_tensor *e = NULL;
  CHECK_OK(rn_tensor_zeros(&e, 2, es, RN_F32, rn_cpu()));
  int d1 = 1;
  CHECK_OK(rn_reduce(&m, RN_RED_SUM, e, 1, &d1, false));
  if (m) { CHECK(m->ndim == 1 && m->shape[0] == 3); CHECK(at(m, 2) == 0); }
  rn_tensor_release(m);
  CHECK_ERR(rn_reduce(&m, RN_RED_MAX, e, 1, &d1, false), RN_ERR_SHAPE, "empty");
  CHECK_ERR(rn_max_dim(&m, &ix, e, 1, false), RN_ERR_SHAPE, "empty");
  rn_tensor_release(e);

  /* a 0-dim tensor reduces to itself */
  rn_tensor *s = NULL;
  CHECK_OK(rn_tensor_scalar(&s, 2.5, RN_F32, rn_cpu()));
  CHECK_OK(rn_reduce(&m, RN_RED_MEAN, s, 0, NULL, false));
  if (m) { CHECK(m->ndim == 0); CHECK(at(m, 0) == 2.5); }
  rn_tensor_release(m);
  rn_tensor_release(s);

  /* a big full sum is accurate (double accumulation) */
  int64_t bs[1] = {1 << 20};
  rn_tensor *b = NULL;
  CHECK_OK(rn_tensor_full(&b, 1, bs, RN_F32, rn_cpu(), 0.1));
  CHECK_OK(rn_reduce(&m, RN_RED_MEAN, b, 0, NULL, false));
  if (m) CHECK_NEAR(at(m, 0), 0.1f, 1e-7);
  rn_tensor_release(m);
  rn_tensor_release(b);

  /* the same sum with 1 and 2 threads, bit for bit */
  int64_t rs[2] = {300, 1001};
  rn_tensor *r = test_randn(2, rs, 5, 1.0f), *m1 = NULL, *m2 = NULL;
  rn_set_num_threads(1);
  CHECK_OK(rn_reduce(&m1, RN_RED_SUM, r, 0, NULL, false));
  rn_set_num_threads(2);
  CHECK_OK(rn_reduce(&m2, RN_RED_SUM, r, 0, NULL, false));
  rn_set_num_threads(0);
  if (m1 && m2) CHECK(at(m1, 0) == at(m2, 0));
  rn_tensor_release(m1); rn_tensor_release(m2); rn_tensor_release(r);
}

static void bad_inputs(void) {
  int64_t s[2] = {2, 3};
  rn_tensor *x = test_randn(2, s, 1, 1.0f), *i = NULL, *y = NULL, *ix = NULL;
  CHECK_OK(rn_tensor_zeros(&i, 2, s, RN_I64, rn_cpu()));
  int dd[2] = {1, 1}, d5 = 5, dm = -3;
  CHECK_ERR(rn_reduce(&y, RN_RED_SUM, NULL, 0, NULL, false), RN_ERR_ARG, "sum");
  CHECK_ERR(rn_reduce(&y, RN_RED_SUM, i, 0, NULL, false), RN_ERR_ARG, "float32");
  CHECK_ERR(rn_reduce(&y, RN_RED_MEAN, x, 2, dd, false), RN_ERR_ARG, "twice");
  CHECK_ERR(rn_reduce(&y, RN_RED_MAX, x, 1, &d5, false), RN_ERR_ARG, "out of range");
  CHECK_ERR(rn_reduce(&y, RN_RED_MIN, x, 1, &dm, false), RN_ERR_ARG, "out of range");
  CHECK_ERR(rn_reduce(&y, RN_RED_SUM, x, 3, dd, false), RN_ERR_ARG, "dims");
  CHECK_ERR(rn_reduce(&y, RN_RED_SUM, x, -1, dd, false), RN_ERR_ARG, "dims");
  CHECK_ERR(rn_reduce(&y, (rn_reduce_op)9, x, 0, NULL, false), RN_ERR_ARG, "unknown");
  CHECK_ERR(rn_max_dim(&y, &ix, x, 2, false), RN_ERR_ARG, "out of range");
  CHECK_ERR(rn_max_dim(&y, &ix, i, 0, false), RN_ERR_ARG, "float32");
  CHECK_ERR(rn_softmax(&y, x, 2), RN_ERR_ARG, "softmax");
  CHECK_ERR(rn_log_softmax(&y, i, 0), RN_ERR_ARG, "float32");
  CHECK_ERR(rn_softmax(&y, NULL, 0), RN_ERR_ARG, "softmax");
  CHECK(y == NULL && ix == NULL);
  rn_tensor_release(x);
  rn_tensor_release(i);
}

int main(void) {
  against_torch();
  softmax_against_torch();
  ties_and_specials();
  bad_inputs();
  return test_finish("reduce");
}
