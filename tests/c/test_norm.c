/* test_norm.c - batch norm and group norm against PyTorch fixtures (tests/fixtures/gen_norm.py), the
 * running-statistics rules, and bad input. */
#include <math.h>
#include <string.h>

#include "testutil.h"

#define TOL 1e-4

static rn_tensor *fx(const char *name, const char *key) {
  char rel[128];
  snprintf(rel, sizeof rel, "norm/%s_%s.npy", name, key);
  return test_fixture(rel);
}

static rn_tensor *leaf(rn_tensor *t) {
  if (t) CHECK_OK(rn_set_requires_grad(t, true));
  return t;
}

static void close_to(const rn_tensor *a, const char *name, const char *key) {
  char what[128];
  snprintf(what, sizeof what, "%s %s", name, key);
  rn_tensor *ref = fx(name, key);
  if (!CHECK(a != NULL)) { rn_tensor_release(ref); return; }
  test_check_close(a, ref, TOL, TOL, what);
  rn_tensor_release(ref);
}

static double flat(const rn_tensor *t, int64_t i) {
  double v = 0;
  rn_tensor_get(t, &i, &v);
  return v;
}

/* Output, updated running statistics and the gradients of x, weight and bias against PyTorch. */
static void batch_norm_case(const char *name, bool affine) {
  rn_tensor *x = leaf(fx(name, "x")), *p = fx(name, "p"), *rm = NULL, *rv = NULL, *y = NULL;
  rn_tensor *w = affine ? leaf(fx(name, "w")) : NULL, *b = affine ? leaf(fx(name, "b")) : NULL;
  rn_tensor *rm0 = fx(name, "rm0"), *rv0 = fx(name, "rv0"), *gy = fx(name, "gy");
  if (!x || !p || !rm0 || !rv0 || !gy) goto done;
  CHECK_OK(rn_clone(&rm, rm0));
  CHECK_OK(rn_clone(&rv, rv0));
  bool training = flat(p, 0) != 0;
  if (!CHECK_OK(rn_batch_norm(&y, x, w, b, rm, rv, training, (float)flat(p, 1), (float)flat(p, 2)))) goto done;
  close_to(y, name, "y");
  close_to(rm, name, "rm1");
  close_to(rv, name, "rv1");
  /* the running statistics are buffers: never part of the graph */
  CHECK(!rm->requires_grad && !rm->grad_fn && !rv->requires_grad && !rv->grad_fn);
  if (!CHECK_OK(rn_backward(y, gy))) goto done;
  close_to(x->grad, name, "gx");
  if (affine) {
    close_to(w->grad, name, "gw");
    close_to(b->grad, name, "gb");
  }
done:
  rn_tensor_release(x); rn_tensor_release(p); rn_tensor_release(w); rn_tensor_release(b);
  rn_tensor_release(rm); rn_tensor_release(rv); rn_tensor_release(rm0); rn_tensor_release(rv0);
  rn_tensor_release(gy); rn_tensor_release(y);
}

static void group_norm_case(const char *name, bool affine) {
  rn_tensor *x = leaf(fx(name, "x")), *p = fx(name, "p"), *gy = fx(name, "gy"), *y = NULL;
  rn_tensor *w = affine ? leaf(fx(name, "w")) : NULL, *b = affine ? leaf(fx(name, "b")) : NULL;
  if (!x || !p || !gy) goto done;
  if (!CHECK_OK(rn_group_norm(&y, x, (int)flat(p, 0), w, b, (float)flat(p, 1)))) goto done;
  close_to(y, name, "y");
  if (!CHECK_OK(rn_backward(y, gy))) goto done;
  close_to(x->grad, name, "gx");
  if (affine) {
    close_to(w->grad, name, "gw");
    close_to(b->grad, name, "gb");
  }
done:
  rn_tensor_release(x); rn_tensor_release(p); rn_tensor_release(w); rn_tensor_release(b);
  rn_tensor_release(gy); rn_tensor_release(y);
}

/* Eval leaves the running statistics alone; training without them works; no graph in no-grad mode;
 * a non-contiguous input gives the same result as its contiguous copy. */
static void test_semantics(void) {
  int64_t xs[4] = {3, 2, 4, 4}, cs[1] = {2};
  rn_tensor *x = test_randn(4, xs, 7, 1.0f), *rm = NULL, *rv = NULL, *y = NULL, *y2 = NULL;
  CHECK_OK(rn_tensor_full(&rm, 1, cs, RN_F32, rn_cpu(), 0.25));
  CHECK_OK(rn_tensor_full(&rv, 1, cs, RN_F32, rn_cpu(), 2.0));
  CHECK_OK(rn_batch_norm(&y, x, NULL, NULL, rm, rv, false, 0.1f, 1e-5f));
  int64_t i0 = 0;
  double v = 0, xv = 0;
  CHECK_OK(rn_tensor_get(rm, &i0, &v));
  CHECK_NEAR(v, 0.25, 0);
  CHECK_OK(rn_tensor_get(rv, &i0, &v));
  CHECK_NEAR(v, 2.0, 0);
  int64_t idx[4] = {1, 1, 2, 3};
  CHECK_OK(rn_tensor_get(x, idx, &xv));
  CHECK_OK(rn_tensor_get(y, idx, &v));
  CHECK_NEAR(v, (xv - 0.25) / sqrt(2.0 + 1e-5), 1e-5);
  rn_tensor_release(y);
  y = NULL;

  /* training without running stats: per channel mean 0, biased variance 1 - eps effects */
  CHECK_OK(rn_batch_norm(&y, x, NULL, NULL, NULL, NULL, true, 0.1f, 0.0f));
  rn_tensor *mean = NULL;
  int dims[3] = {0, 2, 3};
  CHECK_OK(rn_reduce(&mean, RN_RED_MEAN, y, 3, dims, false));
  if (mean) { CHECK_NEAR(flat(mean, 0), 0, 1e-5); CHECK_NEAR(flat(mean, 1), 0, 1e-5); }
  rn_tensor_release(mean);
  rn_tensor_release(y);
  y = NULL;

  /* no-grad mode records nothing, even for an input that requires grad */
  CHECK_OK(rn_set_requires_grad(x, true));
  bool prev = rn_set_grad_enabled(false);
  CHECK_OK(rn_batch_norm(&y, x, NULL, NULL, rm, rv, true, 0.1f, 1e-5f));
  CHECK(y && y->grad_fn == NULL);
  CHECK_OK(rn_group_norm(&y2, x, 2, NULL, NULL, 1e-5f));
  CHECK(y2 && y2->grad_fn == NULL);
  rn_set_grad_enabled(prev);
  rn_tensor_release(y);
  rn_tensor_release(y2);
  y = y2 = NULL;

  /* a transposed (non-contiguous) input */
  rn_tensor *xt = NULL, *xtc = NULL;
  CHECK_OK(rn_transpose(&xt, x, 2, 3));
  CHECK_OK(rn_clone(&xtc, xt));
  CHECK_OK(rn_group_norm(&y, xt, 1, NULL, NULL, 1e-5f));
  CHECK_OK(rn_group_norm(&y2, xtc, 1, NULL, NULL, 1e-5f));
  if (y && y2) CHECK(test_max_abs_diff(y, y2) == 0);
  rn_tensor_release(y); rn_tensor_release(y2); rn_tensor_release(xt); rn_tensor_release(xtc);
  rn_tensor_release(x); rn_tensor_release(rm); rn_tensor_release(rv);
}

/* SiLU(group norm): the fused kernel (no graph to record) gives the two ops' values to the bit; with a graph
 * it records the two ops, so gradients flow (their values: test_gradcheck_norm). */
static void test_group_norm_silu(void) {
  int64_t xs[4] = {2, 6, 5, 7}, cs[1] = {6};
  rn_tensor *x = test_randn(4, xs, 21, 2.0f), *w = test_randn(1, cs, 22, 1.0f), *b = test_randn(1, cs, 23, 1.0f);
  rn_tensor *g = NULL, *ref = NULL, *y = NULL, *y2 = NULL, *xt = NULL;
  CHECK_OK(rn_group_norm(&g, x, 3, w, b, 1e-5f));
  CHECK_OK(rn_unary(&ref, RN_UN_SILU, g, 0, 0));
  CHECK_OK(rn_group_norm_silu(&y, x, 3, w, b, 1e-5f));
  if (y && ref) CHECK(test_max_abs_diff(y, ref) == 0);
  CHECK(y && y->grad_fn == NULL);
  rn_tensor_release(y);
  y = NULL;
  CHECK_OK(rn_transpose(&xt, x, 2, 3)); /* a strided input is made contiguous first, as for group_norm */
  CHECK_OK(rn_group_norm_silu(&y, xt, 1, NULL, NULL, 1e-5f));
  rn_tensor_release(g);
  rn_tensor_release(ref);
  g = ref = NULL;
  CHECK_OK(rn_group_norm(&g, xt, 1, NULL, NULL, 1e-5f));
  CHECK_OK(rn_unary(&ref, RN_UN_SILU, g, 0, 0));
  if (y && ref) CHECK(test_max_abs_diff(y, ref) == 0);
  rn_tensor_release(y);
  y = NULL;
  CHECK_OK(rn_set_requires_grad(w, true)); /* a graph to record: the two ops */
  CHECK_OK(rn_group_norm_silu(&y, x, 3, w, b, 1e-5f));
  CHECK(y && y->grad_fn != NULL);
  bool prev = rn_set_grad_enabled(false); /* no-grad mode: fused again */
  CHECK_OK(rn_group_norm_silu(&y2, x, 3, w, b, 1e-5f));
  rn_set_grad_enabled(prev);
  CHECK(y2 && y2->grad_fn == NULL);
  if (y && y2) CHECK(test_max_abs_diff(y, y2) == 0);
  rn_tensor_release(y2);
  y2 = NULL;
  CHECK_ERR(rn_group_norm_silu(&y2, x, 4, NULL, NULL, 1e-5f), RN_ERR_ARG, "group_norm_silu: groups 4");
  CHECK_ERR(rn_group_norm_silu(&y2, NULL, 3, NULL, NULL, 1e-5f), RN_ERR_ARG, "input");
  CHECK(y2 == NULL);
  rn_tensor_release(x); rn_tensor_release(w); rn_tensor_release(b); rn_tensor_release(g);
  rn_tensor_release(ref); rn_tensor_release(y); rn_tensor_release(xt);
}

static void test_bad_input(void) {
  int64_t xs[4] = {2, 3, 4, 4}, c3[1] = {3}, c4[1] = {4}, r1[1] = {12}, one[4] = {1, 3, 1, 1};
  rn_tensor *x = test_randn(4, xs, 1, 1.0f), *w3 = test_randn(1, c3, 2, 1.0f), *w4 = test_randn(1, c4, 3, 1.0f);
  rn_tensor *v1 = test_randn(1, r1, 4, 1.0f), *x1 = test_randn(4, one, 5, 1.0f), *xi = NULL, *rv = NULL, *y = NULL;
  CHECK_OK(rn_tensor_zeros(&xi, 4, xs, RN_I32, rn_cpu()));
  CHECK_OK(rn_tensor_full(&rv, 1, c3, RN_F32, rn_cpu(), 1.0));
  rn_tensor *w3x2 = NULL;
  int64_t s32[2] = {3, 2};
  CHECK_OK(rn_tensor_zeros(&w3x2, 2, s32, RN_F32, rn_cpu()));

  /* batch norm */
  CHECK_ERR(rn_batch_norm(&y, NULL, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f), RN_ERR_ARG, "input");
  CHECK_ERR(rn_batch_norm(&y, x, w4, NULL, NULL, NULL, true, 0.1f, 1e-5f), RN_ERR_SHAPE, "weight");
  CHECK_ERR(rn_batch_norm(&y, x, w3, w4, NULL, NULL, true, 0.1f, 1e-5f), RN_ERR_SHAPE, "bias");
  CHECK_ERR(rn_batch_norm(&y, x, w3x2, NULL, NULL, NULL, true, 0.1f, 1e-5f), RN_ERR_SHAPE, "[3,2]");
  CHECK_ERR(rn_batch_norm(&y, x, NULL, NULL, w4, rv, true, 0.1f, 1e-5f), RN_ERR_SHAPE, "running_mean");
  CHECK_ERR(rn_batch_norm(&y, x, NULL, NULL, rv, w4, false, 0.1f, 1e-5f), RN_ERR_SHAPE, "running_var");
  CHECK_ERR(rn_batch_norm(&y, x, NULL, NULL, rv, NULL, true, 0.1f, 1e-5f), RN_ERR_ARG, "both");
  CHECK_ERR(rn_batch_norm(&y, x, NULL, NULL, NULL, NULL, false, 0.1f, 1e-5f), RN_ERR_ARG, "eval");
  CHECK_ERR(rn_batch_norm(&y, v1, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f), RN_ERR_SHAPE, "[12]");
  CHECK_ERR(rn_batch_norm(&y, xi, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f), RN_ERR_ARG, "float32");
  CHECK_ERR(rn_batch_norm(&y, x, NULL, NULL, NULL, NULL, true, NAN, 1e-5f), RN_ERR_ARG, "finite");
  CHECK_ERR(rn_batch_norm(&y, x, NULL, NULL, NULL, NULL, true, 0.1f, NAN), RN_ERR_ARG, "finite");
  CHECK_ERR(rn_batch_norm(&y, x, NULL, NULL, NULL, NULL, true, 0.1f, -1.0f), RN_ERR_ARG, "eps");
  CHECK_ERR(rn_batch_norm(&y, x, NULL, NULL, NULL, NULL, true, 1.5f, 1e-5f), RN_ERR_ARG, "momentum");
  CHECK_ERR(rn_batch_norm(&y, x1, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f), RN_ERR_SHAPE, "more than one");
  CHECK(y == NULL);

  /* group norm */
  CHECK_ERR(rn_group_norm(&y, x, 2, NULL, NULL, 1e-5f), RN_ERR_ARG, "divide");
  CHECK_ERR(rn_group_norm(&y, x, 0, NULL, NULL, 1e-5f), RN_ERR_ARG, "groups");
  CHECK_ERR(rn_group_norm(&y, x, -3, NULL, NULL, 1e-5f), RN_ERR_ARG, "groups");
  CHECK_ERR(rn_group_norm(&y, x, 3, w4, NULL, 1e-5f), RN_ERR_SHAPE, "weight");
  CHECK_ERR(rn_group_norm(&y, x, 3, w3, w4, 1e-5f), RN_ERR_SHAPE, "bias");
  CHECK_ERR(rn_group_norm(&y, v1, 1, NULL, NULL, 1e-5f), RN_ERR_SHAPE, "input");
  CHECK_ERR(rn_group_norm(&y, xi, 3, NULL, NULL, 1e-5f), RN_ERR_ARG, "float32");
  CHECK_ERR(rn_group_norm(&y, x, 3, NULL, NULL, NAN), RN_ERR_ARG, "finite");
  CHECK_ERR(rn_group_norm(&y, NULL, 3, NULL, NULL, 1e-5f), RN_ERR_ARG, "input");
  CHECK(y == NULL);

  rn_tensor_release(x); rn_tensor_release(w3); rn_tensor_release(w4); rn_tensor_release(v1);
  rn_tensor_release(x1); rn_tensor_release(xi); rn_tensor_release(rv); rn_tensor_release(w3x2);
}

int main(void) {
  batch_norm_case("bn_train_affine", true);
  batch_norm_case("bn_train_plain", false);
  batch_norm_case("bn_train_2d", true);
  batch_norm_case("bn_eval_affine", true);
  batch_norm_case("bn_eval_plain", false);
  group_norm_case("gn_affine", true);
  group_norm_case("gn_plain", false);
  group_norm_case("gn_one_group", true);
  test_semantics();
  test_group_norm_silu();
  test_bad_input();
  return test_finish("norm");
}
