/* test_gradcheck_linalg.c - finite-difference checks of matmul (2-d, batched with broadcasting, folded,
 * 1-d) and linear (with and without bias, 3-d input). Tolerances: GC_EPS / GC_ATOL / GC_RTOL. */
#include "testutil.h"

static rn_status matmul_fn(rn_tensor **out, rn_tensor **in, void *ctx) { return rn_matmul(out, in[0], in[1]); }
static rn_status linear_fn(rn_tensor **out, rn_tensor **in, void *ctx) { return rn_linear(out, in[0], in[1], in[2]); }

static void run(const char *name, test_fn f, int n, int na, const int64_t *as, int nb, const int64_t *bs,
                const int64_t *cs) {
  rn_tensor *in[3] = {test_randn(na, as, 1, 1.0f), test_randn(nb, bs, 2, 1.0f), cs ? test_randn(1, cs, 3, 1.0f) : NULL};
  for (int i = 0; i < 3; i++) if (in[i]) CHECK_OK(rn_set_requires_grad(in[i], true));
  test_gradcheck(name, f, n, in, NULL, GC_EPS, GC_ATOL, GC_RTOL);
  for (int i = 0; i < 3; i++) rn_tensor_release(in[i]);
}

int main(void) {
  int64_t a2[2] = {3, 4}, b2[2] = {4, 5};
  run("matmul 2-d", matmul_fn, 2, 2, a2, 2, b2, NULL);
  int64_t a3[3] = {2, 3, 4}, b3[3] = {2, 4, 2};
  run("matmul batched", matmul_fn, 2, 3, a3, 3, b3, NULL);
  int64_t a4[4] = {2, 1, 3, 4}, b4[3] = {3, 4, 2};
  run("matmul broadcast batch", matmul_fn, 2, 4, a4, 3, b4, NULL);
  run("matmul folded (3-d @ 2-d)", matmul_fn, 2, 3, a3, 2, b2, NULL);
  int64_t v4[1] = {4};
  run("matmul vector @ batch", matmul_fn, 2, 1, v4, 3, b3, NULL);
  run("matmul batch @ vector", matmul_fn, 2, 3, a3, 1, v4, NULL);
  int64_t w[2] = {5, 4}, bias[1] = {5};
  run("linear 3-d with bias", linear_fn, 3, 3, a3, 2, w, bias);
  run("linear 2-d without bias", linear_fn, 3, 2, a2, 2, w, NULL);
  return test_finish("gradcheck_linalg");
}
