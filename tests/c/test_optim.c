/* test_optim.c - Adam, AdamW and SGD trajectories against PyTorch; clipping and EMA. */
#include <math.h>

#include "testutil.h"

static void run_case(const char *name, rn_optim_config cfg) {
  char rel[64];
  snprintf(rel, sizeof rel, "optim/%s.npy", name);
  rn_tensor *p = test_fixture("optim/p0.npy"), *grads = test_fixture("optim/grads.npy"), *want = test_fixture(rel);
  if (!p || !grads || !want) return;
  CHECK_OK(rn_set_requires_grad(p, true));
  rn_optim *o = NULL;
  CHECK_OK(rn_optim_new(&o, &cfg, 1, &p));
  for (int k = 0; k < 3; k++) {
    rn_tensor *g = NULL;
    CHECK_OK(rn_select(&g, grads, 0, k));
    rn_zero_grad(p);
    CHECK_OK(rn_clone(&p->grad, g));
    rn_tensor_release(g);
    CHECK_OK(rn_optim_step(o));
  }
  CHECK(rn_optim_steps(o) == 3);
  test_check_close(p, want, 1e-6, 1e-5, name);
  rn_optim_free(o);
  rn_tensor_release(p); rn_tensor_release(grads); rn_tensor_release(want);
}

int main(void) {
  rn_optim_config c = rn_optim_defaults(RN_OPT_ADAM);
  c.lr = 0.1f;
  run_case("adam", c);
  c.weight_decay = 0.1f;
  run_case("adam_l2", c);
  c = rn_optim_defaults(RN_OPT_ADAMW);
  c.lr = 0.1f; c.weight_decay = 0.1f;
  run_case("adamw", c);
  c = rn_optim_defaults(RN_OPT_SGD);
  c.lr = 0.1f; c.momentum = 0.9f;
  run_case("sgd_momentum", c);
  c.nesterov = true; c.weight_decay = 0.01f;
  run_case("sgd_nesterov", c);

  /* bad configurations are refused */
  rn_optim *o = NULL;
  rn_tensor *p = test_fixture("optim/p0.npy");
  c = rn_optim_defaults(RN_OPT_ADAM);
  c.lr = NAN;
  CHECK_ERR(rn_optim_new(&o, &c, 1, &p), RN_ERR_ARG, "not finite");
  c.lr = 0.1f; c.beta1 = 1.5f;
  CHECK_ERR(rn_optim_new(&o, &c, 1, &p), RN_ERR_ARG, "betas");

  /* clip_grad_norm: a gradient of norm 10 scaled to norm 1 */
  int64_t s2[] = {2};
  float gv[] = {6, 8};
  CHECK_OK(rn_set_requires_grad(p, true));
  CHECK_OK(rn_tensor_from_data(&p->grad, 1, s2, RN_F32, gv));
  float norm = 0;
  CHECK_OK(rn_clip_grad_norm(1, &p, 1.0f, &norm));
  CHECK_NEAR(norm, 10, 1e-5);
  int64_t i0[] = {0}, i1[] = {1};
  double a, b;
  rn_tensor_get(p->grad, i0, &a);
  rn_tensor_get(p->grad, i1, &b);
  CHECK_NEAR(sqrt(a * a + b * b), 1, 1e-5);
  CHECK_ERR(rn_clip_grad_norm(1, &p, 0, &norm), RN_ERR_ARG, "positive");

  /* EMA: e <- 0.9 e + 0.1 p */
  rn_tensor *e = NULL, *q = NULL;
  float ev[] = {1, 1}, qv[] = {11, -9};
  CHECK_OK(rn_tensor_from_data(&e, 1, s2, RN_F32, ev));
  CHECK_OK(rn_tensor_from_data(&q, 1, s2, RN_F32, qv));
  CHECK_OK(rn_ema_update(1, &e, &q, 0.9f));
  rn_tensor_get(e, i0, &a);
  rn_tensor_get(e, i1, &b);
  CHECK_NEAR(a, 2, 1e-6);
  CHECK_NEAR(b, 0, 1e-6);
  CHECK_ERR(rn_ema_update(1, &e, &p, 0.9f), RN_ERR_SHAPE, "does not match");
  rn_tensor_release(e); rn_tensor_release(q); rn_tensor_release(p);
  return test_finish("optim");
}
