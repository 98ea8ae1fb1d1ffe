/* test_loss.c - MSE, pixel-wise cross entropy (2 and 3 classes) and focal loss against PyTorch fixtures,
 * values and input gradients; bad targets and shapes. */
#include <math.h>

#include "testutil.h"

typedef enum { MSE, CE, FOCAL } loss_kind;

/* Computes the loss, compares it with <ref>.npy and the logits' gradient with <ref>_grad0.npy. */
static void check_loss(loss_kind kind, const char *ref, rn_tensor *a, rn_tensor *b, float gamma, rn_tensor *alpha) {
  char path[128];
  rn_tensor *x = NULL, *y = NULL;
  CHECK_OK(rn_clone(&x, a));
  CHECK_OK(rn_set_requires_grad(x, true));
  rn_status st = kind == MSE ? rn_mse_loss(&y, x, b) : kind == CE ? rn_cross_entropy(&y, x, b)
                                                                 : rn_focal_loss(&y, x, b, gamma, alpha);
  CHECK_OK(st);
  snprintf(path, sizeof path, "loss/%s.npy", ref);
  rn_tensor *r = test_fixture(path);
  test_check_close(y, r, 1e-6, 1e-5, ref);
  if (y) CHECK_OK(rn_backward(y, NULL));
  snprintf(path, sizeof path, "loss/%s_grad0.npy", ref);
  rn_tensor *g = test_fixture(path);
  if (x->grad) test_check_close(x->grad, g, 1e-7, 1e-4, path);
  else CHECK(!"no gradient");
  rn_tensor_release(r);
  rn_tensor_release(g);
  rn_tensor_release(y);
  rn_tensor_release(x);
}

static void against_torch(void) {
  rn_tensor *x = test_fixture("loss/mse_x.npy"), *y = test_fixture("loss/mse_y.npy");
  if (x && y) check_loss(MSE, "mse", x, y, 0, NULL);
  /* the target's gradient too */
  rn_tensor *yc = NULL, *l = NULL, *g1 = test_fixture("loss/mse_grad1.npy");
  CHECK_OK(rn_clone(&yc, y));
  CHECK_OK(rn_set_requires_grad(yc, true));
  CHECK_OK(rn_mse_loss(&l, x, yc));
  CHECK_OK(rn_backward(l, NULL));
  if (yc->grad) test_check_close(yc->grad, g1, 1e-7, 1e-4, "mse target gradient");
  rn_tensor_release(l); rn_tensor_release(yc); rn_tensor_release(g1);
  rn_tensor_release(x); rn_tensor_release(y);

  for (int K = 2; K <= 3; K++) {
    char p[64], ref[64];
    snprintf(p, sizeof p, "loss/logits_k%d.npy", K);
    rn_tensor *logits = test_fixture(p);
    snprintf(p, sizeof p, "loss/target_k%d.npy", K);
    rn_tensor *target = test_fixture(p);
    snprintf(p, sizeof p, "loss/alpha_k%d.npy", K);
    rn_tensor *alpha = test_fixture(p);
    if (!logits || !target || !alpha) continue;
    snprintf(ref, sizeof ref, "ce_k%d", K);
    check_loss(CE, ref, logits, target, 0, NULL);
    snprintf(ref, sizeof ref, "focal_k%d_g2", K);
    check_loss(FOCAL, ref, logits, target, 2.0f, NULL);
    snprintf(ref, sizeof ref, "focal_k%d_g1.5_alpha", K);
    check_loss(FOCAL, ref, logits, target, 1.5f, alpha);
    snprintf(ref, sizeof ref, "focal_k%d_g0_alpha", K);
    check_loss(FOCAL, ref, logits, target, 0.0f, alpha);
    /* focal with gamma 0 and no alpha is cross entropy */
    rn_tensor *a = NULL, *b = NULL;
    CHECK_OK(rn_focal_loss(&a, logits, target, 0.0f, NULL));
    CHECK_OK(rn_cross_entropy(&b, logits, target));
    if (a && b) CHECK_NEAR(rn_f32(a)[0], rn_f32(b)[0], 1e-6);
    rn_tensor_release(a); rn_tensor_release(b);
    rn_tensor_release(logits); rn_tensor_release(target); rn_tensor_release(alpha);
  }
  rn_tensor *l2 = test_fixture("loss/logits_2d.npy"), *t2 = test_fixture("loss/target_2d.npy");
  if (l2 && t2) check_loss(CE, "ce_2d", l2, t2, 0, NULL);
  rn_tensor_release(l2); rn_tensor_release(t2);
}

static void bad_inputs(void) {
  int64_t ls[4] = {2, 3, 2, 2}, ts[3] = {2, 2, 2}, tb[3] = {2, 2, 3}, as[1] = {2};
  rn_tensor *logits = test_randn(4, ls, 1, 1.0f), *t = NULL, *tf = NULL, *tbad = NULL, *a2 = NULL, *y = NULL;
  CHECK_OK(rn_tensor_zeros(&t, 3, ts, RN_I64, rn_cpu()));
  CHECK_OK(rn_tensor_zeros(&tf, 3, ts, RN_F32, rn_cpu()));
  CHECK_OK(rn_tensor_zeros(&tbad, 3, tb, RN_I64, rn_cpu()));
  CHECK_OK(rn_tensor_zeros(&a2, 1, as, RN_F32, rn_cpu()));
  int64_t i1[3] = {1, 1, 1};
  rn_tensor_set(t, i1, 3);
  CHECK_ERR(rn_cross_entropy(&y, logits, t), RN_ERR_ARG, "target class 3 is out of range for 3 classes");
  rn_tensor_set(t, i1, -1);
  CHECK_ERR(rn_focal_loss(&y, logits, t, 2, NULL), RN_ERR_ARG, "target class -1");
  rn_tensor_set(t, i1, 2);
  CHECK_OK(rn_cross_entropy(&y, logits, t));
  rn_tensor_release(y);
  y = NULL;
  CHECK_ERR(rn_cross_entropy(&y, logits, tf), RN_ERR_ARG, "int64");
  CHECK_ERR(rn_cross_entropy(&y, logits, tbad), RN_ERR_SHAPE, "[2,2,3]");
  CHECK_ERR(rn_cross_entropy(&y, t, t), RN_ERR_ARG, "float32");
  CHECK_ERR(rn_cross_entropy(&y, a2, t), RN_ERR_SHAPE, "[N,K");
  CHECK_ERR(rn_cross_entropy(&y, logits, NULL), RN_ERR_ARG, "cross_entropy");
  CHECK_ERR(rn_focal_loss(&y, logits, t, -1, NULL), RN_ERR_ARG, "gamma");
  CHECK_ERR(rn_focal_loss(&y, logits, t, NAN, NULL), RN_ERR_ARG, "gamma");
  CHECK_ERR(rn_focal_loss(&y, logits, t, 2, a2), RN_ERR_SHAPE, "alpha");
  CHECK_ERR(rn_focal_loss(&y, logits, t, 2, t), RN_ERR_ARG, "float32");
  CHECK_ERR(rn_mse_loss(&y, logits, tf), RN_ERR_SHAPE, "differ");
  CHECK_ERR(rn_mse_loss(&y, logits, t), RN_ERR_ARG, "float32");
  CHECK_ERR(rn_mse_loss(&y, NULL, logits), RN_ERR_ARG, "mse_loss");
  CHECK(y == NULL);
  rn_tensor *ts_[] = {logits, t, tf, tbad, a2};
  for (int i = 0; i < 5; i++) rn_tensor_release(ts_[i]);
}

int main(void) {
  against_torch();
  bad_inputs();
  return test_finish("loss");
}
