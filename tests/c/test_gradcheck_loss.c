/* test_gradcheck_loss.c - finite-difference checks of MSE, cross entropy and focal loss (logits, target and
 * alpha gradients; tolerances GC_EPS / GC_ATOL / GC_RTOL from testutil.h). */
#include "testutil.h"

static rn_tensor *leaf(int ndim, const int64_t *shape, uint64_t seed, float scale) {
  rn_tensor *t = test_randn(ndim, shape, seed, scale);
  rn_set_requires_grad(t, true);
  return t;
}

static rn_status f_mse(rn_tensor **out, rn_tensor **in, void *ctx) { return rn_mse_loss(out, in[0], in[1]); }

static rn_status f_ce(rn_tensor **out, rn_tensor **in, void *ctx) {
  return rn_cross_entropy(out, in[0], (rn_tensor *)ctx);
}

typedef struct { rn_tensor *target; float gamma; } focal_ctx;

static rn_status f_focal(rn_tensor **out, rn_tensor **in, void *ctx) {
  focal_ctx *c = ctx;
  return rn_focal_loss(out, in[0], c->target, c->gamma, in[1]);
}

int main(void) {
  int64_t s[4] = {2, 3, 2, 2};
  rn_tensor *in[2] = {leaf(4, s, 1, 1.0f), leaf(4, s, 2, 1.0f)};
  test_gradcheck("mse_loss", f_mse, 2, in, NULL, GC_EPS, GC_ATOL, GC_RTOL);
  rn_tensor_release(in[0]);
  rn_tensor_release(in[1]);

  for (int K = 2; K <= 3; K++) {
    int64_t ls[4] = {2, K, 3, 2}, ts[3] = {2, 3, 2}, tv[12], ks[1] = {K};
    for (int i = 0; i < 12; i++) tv[i] = (i * 5 + 1) % K;
    rn_tensor *target = NULL;
    rn_tensor_from_data(&target, 3, ts, RN_I64, tv);
    rn_tensor *logits = leaf(4, ls, 10 + K, 1.5f);
    test_gradcheck(K == 2 ? "cross_entropy K=2" : "cross_entropy K=3", f_ce, 1, &logits, target, GC_EPS, GC_ATOL,
                   GC_RTOL);
    rn_tensor *alpha = NULL;
    float av[3] = {0.25f, 0.75f, 1.5f};
    rn_tensor_from_data(&alpha, 1, ks, RN_F32, av);
    rn_set_requires_grad(alpha, true);
    float gammas[3] = {2.0f, 1.0f, 0.5f};
    for (int g = 0; g < 3; g++) {
      focal_ctx c = {target, gammas[g]};
      rn_tensor *fin[2] = {logits, g == 1 ? NULL : alpha};
      char name[64];
      snprintf(name, sizeof name, "focal K=%d gamma=%.1f%s", K, gammas[g], fin[1] ? " alpha" : "");
      test_gradcheck(name, f_focal, 2, fin, &c, GC_EPS, GC_ATOL, GC_RTOL);
    }
    rn_tensor_release(alpha);
    rn_tensor_release(logits);
    rn_tensor_release(target);
  }

  /* [N, K] without spatial dims */
  int64_t l2[2] = {4, 3}, t2[1] = {4}, tv2[4] = {2, 0, 1, 2};
  rn_tensor *target = NULL, *logits = leaf(2, l2, 30, 1.0f);
  rn_tensor_from_data(&target, 1, t2, RN_I64, tv2);
  test_gradcheck("cross_entropy [N,K]", f_ce, 1, &logits, target, GC_EPS, GC_ATOL, GC_RTOL);
  rn_tensor_release(logits);
  rn_tensor_release(target);
  return test_finish("gradcheck_loss");
}
