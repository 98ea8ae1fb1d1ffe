/* test_pool.c - pooling and upsampling against PyTorch fixtures (tests/fixtures/gen_pool.py): outputs and
 * input gradients, output-size rules, and bad input. */
#include <math.h>
#include <string.h>

#include "testutil.h"

#define TOL 1e-4

static rn_tensor *fx(const char *name, const char *key) {
  char rel[128];
  snprintf(rel, sizeof rel, "pool/%s_%s.npy", name, key);
  return test_fixture(rel);
}

static int64_t ip(const rn_tensor *p, int64_t i) {
  double v = 0;
  rn_tensor_get(p, &i, &v);
  return (int64_t)v;
}

static rn_pool_params pool_params(const rn_tensor *p) {
  rn_pool_params q;
  for (int i = 0; i < 2; i++) {
    q.kernel[i] = (int)ip(p, i);
    q.stride[i] = (int)ip(p, 2 + i);
    q.pad[i] = (int)ip(p, 4 + i);
  }
  q.ceil_mode = ip(p, 6) != 0;
  q.count_include_pad = ip(p, 7) != 0;
  return q;
}

static bool starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* Runs the op a case name stands for. */
static rn_status run_case(const char *name, rn_tensor **y, rn_tensor *x, const rn_tensor *p) {
  if (starts(name, "max_")) { rn_pool_params q = pool_params(p); return rn_max_pool2d(y, x, &q); }
  if (starts(name, "avg_")) { rn_pool_params q = pool_params(p); return rn_avg_pool2d(y, x, &q); }
  if (starts(name, "adaptive_")) return rn_adaptive_avg_pool2d(y, x, (int)ip(p, 0), (int)ip(p, 1));
  if (strcmp(name, "global_avg") == 0) return rn_global_avg_pool(y, x);
  if (strcmp(name, "global_max") == 0) return rn_global_max_pool(y, x);
  rn_upsample_mode mode = starts(name, "nearest") ? RN_UPSAMPLE_NEAREST : RN_UPSAMPLE_BILINEAR;
  return rn_upsample(y, x, (int)ip(p, 0), (int)ip(p, 1), mode, ip(p, 2) != 0);
}

static void fixture_case(const char *name) {
  rn_tensor *x = fx(name, "x"), *p = fx(name, "p"), *yr = fx(name, "y"), *gy = fx(name, "gy"), *gx = fx(name, "gx");
  rn_tensor *y = NULL;
  char what[96];
  if (!x || !p || !yr || !gy || !gx) goto done;
  CHECK_OK(rn_set_requires_grad(x, true));
  if (!CHECK_OK(run_case(name, &y, x, p))) goto done;
  snprintf(what, sizeof what, "%s output", name);
  test_check_close(y, yr, TOL, TOL, what);
  if (!CHECK_OK(rn_backward(y, gy))) goto done;
  snprintf(what, sizeof what, "%s input gradient", name);
  test_check_close(x->grad, gx, TOL, TOL, what);
done:
  rn_tensor_release(x); rn_tensor_release(p); rn_tensor_release(yr); rn_tensor_release(gy);
  rn_tensor_release(gx); rn_tensor_release(y);
}

static const char *cases[] = {
  "max_ceil_odd", "max_ceil_even_pad", "max_ceil_drop", "max_floor_rect", "max_ceil_rect", "max_floor_k2",
  "avg_ceil_cip", "avg_ceil_nocip", "avg_floor_rect", "avg_ceil_drop",
  "adaptive_7x9_3x4", "adaptive_5x5_2x3", "adaptive_3x3_5x4", "global_avg", "global_max",
  "nearest_up2", "nearest_up", "nearest_down", "nearest_mixed",
  "bilinear_noac_up2", "bilinear_noac_up", "bilinear_noac_down", "bilinear_noac_mixed",
  "bilinear_ac_up2", "bilinear_ac_up", "bilinear_ac_down", "bilinear_ac_mixed",
};

/* Output sizes by PyTorch's rule, including ceil mode dropping a window that starts in the right padding. */
static void test_output_sizes(void) {
  struct { int64_t in; int k, s, p; bool ceil; int64_t out; } t[] = {
    {7, 3, 2, 0, true, 3}, {8, 3, 2, 0, true, 4}, {8, 3, 2, 0, false, 3}, {5, 2, 2, 1, true, 3},
    {6, 2, 2, 1, true, 4}, {4, 4, 1, 0, false, 1}, {1, 1, 1, 0, true, 1}, {10, 3, 3, 1, true, 4},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    int64_t shape[4] = {1, 1, t[i].in, 3};
    rn_tensor *x = test_randn(4, shape, 3, 1.0f), *y = NULL;
    rn_pool_params p = {{t[i].k, 1}, {t[i].s, 1}, {t[i].p, 0}, t[i].ceil, true};
    if (CHECK_OK(rn_max_pool2d(&y, x, &p))) CHECK(y->shape[2] == t[i].out && y->shape[3] == 3);
    rn_tensor_release(y);
    y = NULL;
    if (CHECK_OK(rn_avg_pool2d(&y, x, &p))) CHECK(y->shape[2] == t[i].out);
    rn_tensor_release(y);
    rn_tensor_release(x);
  }
}

/* Global pools give [N,C,1,1]; NaN propagates through max pool; strided input matches its copy. */
static void test_semantics(void) {
  int64_t shape[4] = {2, 3, 4, 5};
  rn_tensor *x = test_randn(4, shape, 9, 1.0f), *y = NULL, *y2 = NULL, *xt = NULL, *xtc = NULL;
  if (CHECK_OK(rn_global_max_pool(&y, x))) CHECK(y->ndim == 4 && y->shape[2] == 1 && y->shape[3] == 1);
  rn_tensor_release(y);
  y = NULL;
  int64_t idx[4] = {1, 2, 3, 4}, o[4] = {1, 2, 0, 0};
  double v = 0;
  CHECK_OK(rn_tensor_set(x, idx, NAN));
  if (CHECK_OK(rn_global_max_pool(&y, x))) { CHECK_OK(rn_tensor_get(y, o, &v)); CHECK(isnan(v)); }
  rn_tensor_release(y);
  y = NULL;
  CHECK_OK(rn_tensor_set(x, idx, 0.5));
  CHECK_OK(rn_transpose(&xt, x, 2, 3));
  CHECK_OK(rn_clone(&xtc, xt));
  CHECK_OK(rn_upsample(&y, xt, 9, 5, RN_UPSAMPLE_BILINEAR, false));
  CHECK_OK(rn_upsample(&y2, xtc, 9, 5, RN_UPSAMPLE_BILINEAR, false));
  if (y && y2) CHECK(test_max_abs_diff(y, y2) == 0);
  rn_tensor_release(y); rn_tensor_release(y2); rn_tensor_release(xt); rn_tensor_release(xtc);
  rn_tensor_release(x);
}

static void test_bad_input(void) {
  int64_t s4[4] = {1, 2, 3, 3}, s3[3] = {2, 3, 3};
  rn_tensor *x = test_randn(4, s4, 1, 1.0f), *x3 = test_randn(3, s3, 2, 1.0f), *xi = NULL, *y = NULL;
  CHECK_OK(rn_tensor_zeros(&xi, 4, s4, RN_U8, rn_cpu()));
  rn_pool_params ok = {{2, 2}, {2, 2}, {0, 0}, false, true};
  rn_pool_params big = {{5, 5}, {1, 1}, {0, 0}, false, true};
  rn_pool_params big_pad = {{6, 2}, {1, 1}, {1, 0}, true, true};
  rn_pool_params zero_k = {{0, 2}, {1, 1}, {0, 0}, false, true};
  rn_pool_params neg_s = {{2, 2}, {-1, 1}, {0, 0}, false, true};
  rn_pool_params zero_s = {{2, 2}, {1, 0}, {0, 0}, false, true};
  rn_pool_params neg_p = {{2, 2}, {1, 1}, {0, -1}, false, true};
  rn_pool_params half = {{2, 2}, {1, 1}, {2, 0}, false, true};

  CHECK_ERR(rn_max_pool2d(&y, x, &big), RN_ERR_SHAPE, "larger");
  CHECK_ERR(rn_max_pool2d(&y, x, &big_pad), RN_ERR_SHAPE, "padded input");
  CHECK_ERR(rn_avg_pool2d(&y, x, &big), RN_ERR_SHAPE, "larger");
  CHECK_ERR(rn_max_pool2d(&y, x, &zero_k), RN_ERR_ARG, "positive");
  CHECK_ERR(rn_max_pool2d(&y, x, &neg_s), RN_ERR_ARG, "positive");
  CHECK_ERR(rn_avg_pool2d(&y, x, &zero_s), RN_ERR_ARG, "stride");
  CHECK_ERR(rn_avg_pool2d(&y, x, &neg_p), RN_ERR_ARG, "padding");
  CHECK_ERR(rn_max_pool2d(&y, x, &half), RN_ERR_ARG, "half");
  CHECK_ERR(rn_max_pool2d(&y, x, NULL), RN_ERR_ARG, "parameters");
  CHECK_ERR(rn_max_pool2d(&y, x3, &ok), RN_ERR_SHAPE, "[N,C,H,W]");
  CHECK_ERR(rn_avg_pool2d(&y, x3, &ok), RN_ERR_SHAPE, "[2,3,3]");
  CHECK_ERR(rn_max_pool2d(&y, xi, &ok), RN_ERR_ARG, "float32");
  CHECK_ERR(rn_avg_pool2d(&y, NULL, &ok), RN_ERR_ARG, "input");
  CHECK_ERR(rn_adaptive_avg_pool2d(&y, x, 0, 2), RN_ERR_ARG, "positive");
  CHECK_ERR(rn_adaptive_avg_pool2d(&y, x, 2, -1), RN_ERR_ARG, "positive");
  CHECK_ERR(rn_adaptive_avg_pool2d(&y, x3, 2, 2), RN_ERR_SHAPE, "[N,C,H,W]");
  CHECK_ERR(rn_adaptive_avg_pool2d(&y, xi, 2, 2), RN_ERR_ARG, "float32");
  CHECK_ERR(rn_global_avg_pool(&y, x3), RN_ERR_SHAPE, "global_avg_pool");
  CHECK_ERR(rn_global_max_pool(&y, xi), RN_ERR_ARG, "global_max_pool");
  CHECK_ERR(rn_upsample(&y, x, 0, 4, RN_UPSAMPLE_NEAREST, false), RN_ERR_ARG, "positive");
  CHECK_ERR(rn_upsample(&y, x, 4, -2, RN_UPSAMPLE_BILINEAR, true), RN_ERR_ARG, "positive");
  CHECK_ERR(rn_upsample(&y, x, 4, 4, (rn_upsample_mode)7, false), RN_ERR_ARG, "mode");
  CHECK_ERR(rn_upsample(&y, x3, 4, 4, RN_UPSAMPLE_NEAREST, false), RN_ERR_SHAPE, "upsample");
  CHECK_ERR(rn_upsample(&y, xi, 4, 4, RN_UPSAMPLE_NEAREST, false), RN_ERR_ARG, "float32");
  CHECK(y == NULL);
  rn_tensor_release(x); rn_tensor_release(x3); rn_tensor_release(xi);
}

int main(void) {
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) fixture_case(cases[i]);
  test_output_sizes();
  test_semantics();
  test_bad_input();
  return test_finish("pool");
}
