/* testutil.h - a tiny C test harness: checks, fixtures, finite-difference gradient checks.
 *
 *   int main(void) {
 *     CHECK_OK(rn_tensor_zeros(&x, 2, shape, RN_F32, rn_cpu()));
 *     CHECK(rn_tensor_numel(x) == 6);
 *     return test_finish("tensor");
 *   }
 * A test prints each failure with file and line and ends with "name: N checks, M failed"; exit code 1 on
 * failure, 77 (CTest's skip code) through test_skip().
 */
#ifndef REALNET_TESTUTIL_H
#define REALNET_TESTUTIL_H

#include <stdio.h>

#include "realnet/realnet.h"

extern int test_checks, test_failures;

#define CHECK(cond) test_check((cond), #cond, __FILE__, __LINE__)
#define CHECK_OK(expr) test_check_status((expr), #expr, __FILE__, __LINE__)
/* expr must fail with status `st`; the message must mention `needle` (NULL: any message). */
#define CHECK_ERR(expr, st, needle) test_check_error((expr), (st), (needle), #expr, __FILE__, __LINE__)
#define CHECK_NEAR(a, b, tol) test_check_near((double)(a), (double)(b), (tol), #a, __FILE__, __LINE__)

int test_check(int ok, const char *expr, const char *file, int line);
int test_check_status(rn_status s, const char *expr, const char *file, int line);
int test_check_error(rn_status s, rn_status want, const char *needle, const char *expr, const char *file, int line);
int test_check_near(double a, double b, double tol, const char *expr, const char *file, int line);
int test_finish(const char *name);
int test_skip(const char *why);

/* A float32 CPU tensor of the shape with N(0,1) entries (scaled) from a fixed seed. */
rn_tensor *test_randn(int ndim, const int64_t *shape, uint64_t seed, float scale);
/* Largest |a-b| / (atol + rtol*|b|) ratio > 1 means failure; returns max abs difference. */
double test_max_abs_diff(const rn_tensor *a, const rn_tensor *b);
/* Checks a against reference b elementwise: |a-b| <= atol + rtol*|b|. */
int test_check_close(const rn_tensor *a, const rn_tensor *b, double atol, double rtol, const char *what);

/* Loads FIXTURES_DIR/<rel> (.npy). NULL (and a failed check) when missing. */
rn_tensor *test_fixture(const char *rel);

/* Gradient check. f computes one output from inputs; every float32 input with requires_grad set is
 * checked: the analytic gradient of L = sum(out * R) (R fixed random) against central differences
 * (L(x+eps) - L(x-eps)) / 2eps accumulated in double. Passes when |num - ana| <= atol + rtol * |num|
 * for every element. */
typedef rn_status (*test_fn)(rn_tensor **out, rn_tensor **in, void *ctx);
int test_gradcheck(const char *name, test_fn f, int n, rn_tensor **in, void *ctx, double eps, double atol,
                   double rtol);
/* Default tolerances used by the gradcheck tests (float32 arithmetic). */
#define GC_EPS 1e-2
#define GC_ATOL 2e-3
#define GC_RTOL 2e-2

#endif
