/* test_autograd.c - graph recording, accumulation, no-grad scopes, freeing after backward. */
#include <math.h>

#include "testutil.h"

static double scalar(rn_tensor *t) {
  int64_t idx[RN_MAX_DIMS] = {0};
  double v = NAN;
  rn_tensor_get(t, idx, &v);
  return v;
}

int main(void) {
  int64_t s1[] = {1};
  float xv[] = {3}, yv[] = {4};
  rn_tensor *x = NULL, *y = NULL, *xy = NULL, *z = NULL, *w = NULL;
  CHECK_OK(rn_tensor_from_data(&x, 1, s1, RN_F32, xv));
  CHECK_OK(rn_tensor_from_data(&y, 1, s1, RN_F32, yv));
  CHECK_OK(rn_set_requires_grad(x, true));
  CHECK_OK(rn_set_requires_grad(y, true));

  /* z = x*y + x  ->  dz/dx = y + 1 = 5, dz/dy = x = 3; x is used twice, so its gradient accumulates */
  CHECK_OK(rn_mul(&xy, x, y));
  CHECK_OK(rn_add(&z, xy, x));
  CHECK(z->requires_grad && z->grad_fn != NULL);
  CHECK_OK(rn_backward(z, NULL));
  CHECK_NEAR(scalar(x->grad), 5, 1e-6);
  CHECK_NEAR(scalar(y->grad), 3, 1e-6);
  CHECK(z->grad_fn->released);
  CHECK_ERR(rn_backward(z, NULL), RN_ERR_ARG, "already");

  /* a second graph adds to the existing leaf gradients */
  CHECK_OK(rn_mul(&w, x, x));
  CHECK_OK(rn_backward(w, NULL));
  CHECK_NEAR(scalar(x->grad), 5 + 6, 1e-6);
  rn_zero_grad(x);
  CHECK(x->grad == NULL);

  /* no-grad scope records nothing */
  bool prev = rn_set_grad_enabled(false);
  rn_tensor *n = NULL;
  CHECK_OK(rn_mul(&n, x, y));
  CHECK(!n->requires_grad && n->grad_fn == NULL);
  rn_set_grad_enabled(prev);
  CHECK_ERR(rn_backward(n, NULL), RN_ERR_ARG, "does not require grad");
  rn_tensor_release(n);

  /* leaves only; ints cannot require grad */
  CHECK_ERR(rn_set_requires_grad(z, true), RN_ERR_ARG, "leaf");
  rn_tensor *ints = NULL;
  CHECK_OK(rn_tensor_zeros(&ints, 1, s1, RN_I64, rn_cpu()));
  CHECK_ERR(rn_set_requires_grad(ints, true), RN_ERR_ARG, "float32");

  /* a long chain (deeper than any recursion would survive) backpropagates */
  rn_tensor *h = rn_tensor_retain(x);
  for (int i = 0; i < 20000; i++) {
    rn_tensor *h2 = NULL;
    CHECK_OK(rn_scale(&h2, h, 1.0f, 0.001f));
    rn_tensor_release(h);
    h = h2;
  }
  CHECK_OK(rn_backward(h, NULL));
  CHECK_NEAR(scalar(x->grad), 1, 1e-6);
  rn_tensor_release(h);

  /* a gradient of the wrong shape is refused */
  int64_t s2[] = {2};
  rn_tensor *g2 = NULL;
  CHECK_OK(rn_tensor_zeros(&g2, 1, s2, RN_F32, rn_cpu()));
  rn_tensor *m = NULL;
  CHECK_OK(rn_mul(&m, x, y));
  CHECK_ERR(rn_backward(m, g2), RN_ERR_SHAPE, "does not match");
  rn_tensor_release(m);

  rn_tensor_release(g2); rn_tensor_release(ints); rn_tensor_release(w); rn_tensor_release(z);
  rn_tensor_release(xy); rn_tensor_release(x); rn_tensor_release(y);
  CHECK(rn_allocated_bytes(RN_CPU) == 0);
  return test_finish("autograd");
}
