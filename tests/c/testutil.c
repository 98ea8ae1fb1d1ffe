/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int test_checks, test_failures;

int test_check(int ok, const char *expr, const char *file, int line) {
  test_checks++;
  if (!ok) { test_failures++; fprintf(stderr, "FAIL %s:%d: %s\n", file, line, expr); }
  return ok;
}

int test_check_status(rn_status s, const char *expr, const char *file, int line) {
  test_checks++;
  if (s != RN_OK) {
    test_failures++;
    fprintf(stderr, "FAIL %s:%d: %s -> %s: %s\n", file, line, expr, rn_status_name(s), rn_last_error());
    return 0;
  }
  return 1;
}

int test_check_error(rn_status s, rn_status want, const char *needle, const char *expr, const char *file, int line) {
  test_checks++;
  if (s != want || (needle && !strstr(rn_last_error(), needle))) {
    test_failures++;
    fprintf(stderr, "FAIL %s:%d: %s -> %s (\"%s\"), wanted %s mentioning \"%s\"\n", file, line, expr,
            rn_status_name(s), s == RN_OK ? "" : rn_last_error(), rn_status_name(want), needle ? needle : "");
    return 0;
  }
  return 1;
}

int test_check_near(double a, double b, double tol, const char *expr, const char *file, int line) {
  test_checks++;
  if (!(fabs(a - b) <= tol)) {
    test_failures++;
    fprintf(stderr, "FAIL %s:%d: %s = %.9g, expected %.9g (tol %g)\n", file, line, expr, a, b, tol);
    return 0;
  }
  return 1;
}

int test_finish(const char *name) {
  printf("%s: %d checks, %d failed\n", name, test_checks, test_failures);
  return test_failures ? 1 : 0;
}

int test_skip(const char *why) {
  printf("skipped: %s\n", why);
  return 77;
}

rn_tensor *test_randn(int ndim, const int64_t *shape, uint64_t seed, float scale) {
  rn_tensor *t = NULL;
  rn_rng g;
  rn_rng_init(&g, seed, 0);
  if (rn_tensor_empty(&t, ndim, shape, RN_F32, rn_cpu()) != RN_OK || rn_rng_normal_(&g, t, 0, scale) != RN_OK) {
    fprintf(stderr, "test_randn: %s\n", rn_last_error());
    exit(2);
  }
  return t;
}

static double get_flat(const rn_tensor *t, int64_t i) {
  int64_t idx[RN_MAX_DIMS];
  for (int d = t->ndim - 1; d >= 0; d--) { idx[d] = i % t->shape[d]; i /= t->shape[d]; }
  double v = 0;
  rn_tensor_get(t, idx, &v);
  return v;
}

static void set_flat(rn_tensor *t, int64_t i, double v) {
  int64_t idx[RN_MAX_DIMS];
  for (int d = t->ndim - 1; d >= 0; d--) { idx[d] = i % t->shape[d]; i /= t->shape[d]; }
  rn_tensor_set(t, idx, v);
}

double test_max_abs_diff(const rn_tensor *a, const rn_tensor *b) {
  double m = 0;
  int64_t n = rn_tensor_numel(a);
  for (int64_t i = 0; i < n; i++) {
    double d = fabs(get_flat(a, i) - get_flat(b, i));
    if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
  }
  return m;
}

int test_check_close(const rn_tensor *a, const rn_tensor *b, double atol, double rtol, const char *what) {
  test_checks++;
  if (!a || !b || !rn_tensor_same_shape(a, b)) {
    char x[64] = "-", y[64] = "-";
    if (a) rn_shape_str(a, x, 64);
    if (b) rn_shape_str(b, y, 64);
    test_failures++;
    fprintf(stderr, "FAIL %s: shapes %s vs reference %s\n", what, x, y);
    return 0;
  }
  int64_t n = rn_tensor_numel(a), bad = 0, worst = -1;
  double worst_ratio = 0;
  for (int64_t i = 0; i < n; i++) {
    double x = get_flat(a, i), y = get_flat(b, i);
    double tol = atol + rtol * fabs(y); /* zero tolerances ask for exact equality */
    double ratio = tol > 0 ? fabs(x - y) / tol : (x == y ? 0 : INFINITY);
    if (!(ratio <= 1)) { bad++; if (!(ratio <= worst_ratio)) { worst_ratio = ratio; worst = i; } }
  }
  if (bad) {
    test_failures++;
    fprintf(stderr, "FAIL %s: %lld of %lld elements off; worst at %lld: %.9g vs %.9g\n", what, (long long)bad,
            (long long)n, (long long)worst, get_flat(a, worst), get_flat(b, worst));
    return 0;
  }
  return 1;
}

rn_tensor *test_fixture(const char *rel) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", FIXTURES_DIR, rel);
  rn_tensor *t = NULL;
  if (!CHECK_OK(rn_npy_read(&t, path))) return NULL;
  return t;
}

/* L = sum(out * R) in double on the host. */
static rn_status loss_of(test_fn f, rn_tensor **in, void *ctx, const rn_tensor *r, double *L) {
  rn_tensor *out = NULL;
  RN_TRY(f(&out, in, ctx));
  rn_tensor *c = NULL;
  rn_status st = rn_to_dtype(&c, out, RN_F32);
  if (st == RN_OK) {
    int64_t n = rn_tensor_numel(c);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += get_flat(c, i) * get_flat(r, i);
    *L = s;
  }
  rn_tensor_release(c);
  rn_tensor_release(out);
  return st;
}

int test_gradcheck(const char *name, test_fn f, int n, rn_tensor **in, void *ctx, double eps, double atol, double rtol) {
  rn_tensor *out = NULL;
  if (!CHECK_OK(f(&out, in, ctx))) return 0;
  rn_tensor *r = test_randn(out->ndim, out->shape, 12345, 1.0f);
  rn_tensor *rr = NULL, *prod = NULL, *L = NULL;
  for (int i = 0; i < n; i++) if (in[i]) rn_zero_grad(in[i]);
  int ok = CHECK_OK(rn_mul(&prod, out, r)) && CHECK_OK(rn_reduce(&L, RN_RED_SUM, prod, 0, NULL, false)) &&
           CHECK_OK(rn_backward(L, NULL));
  rn_tensor_release(L);
  rn_tensor_release(prod);
  rn_tensor_release(out);
  rn_tensor_release(rr);
  if (!ok) { rn_tensor_release(r); return 0; }
  bool prev = rn_set_grad_enabled(false);
  for (int i = 0; i < n && ok; i++) {
    rn_tensor *x = in[i];
    if (!x || !x->requires_grad) continue;
    if (!x->grad) { ok = CHECK(!"input requires grad but received no gradient"); break; }
    int64_t ne = rn_tensor_numel(x), bad = 0;
    double worst = 0, wn = 0, wa = 0;
    for (int64_t j = 0; j < ne; j++) {
      double v = get_flat(x, j), lp = 0, lm = 0;
      set_flat(x, j, v + eps);
      rn_status s1 = loss_of(f, in, ctx, r, &lp);
      set_flat(x, j, v - eps);
      rn_status s2 = loss_of(f, in, ctx, r, &lm);
      set_flat(x, j, v);
      if (s1 != RN_OK || s2 != RN_OK) { ok = CHECK_OK(s1 != RN_OK ? s1 : s2); break; }
      double num = (lp - lm) / (2 * eps), ana = get_flat(x->grad, j);
      double err = fabs(num - ana) / (atol + rtol * fabs(num));
      if (!(err <= 1)) { bad++; if (!(err <= worst)) { worst = err; wn = num; wa = ana; } }
    }
    test_checks++;
    if (bad) {
      test_failures++;
      ok = 0;
      fprintf(stderr, "FAIL gradcheck %s input %d: %lld of %lld elements off, worst numeric %.6g vs analytic %.6g\n",
              name, i + 1, (long long)bad, (long long)ne, wn, wa);
    }
  }
  rn_set_grad_enabled(prev);
  rn_tensor_release(r);
  if (ok) printf("gradcheck %s ok\n", name);
  return ok;
}
