/* test_gradcheck_rrs.c - finite differences through the RRS gather, in each mode and in training and eval.
 * The residual is built so that the ranking is stable under the check's +-eps perturbations: in sample b,
 * channel c holds k[b][c] of its 9 values at 1 + 0.1 c (the rest 0), which separates the batch-normalised GMP
 * and GAP scores by at least 0.1 (found by a search over the second sample's counts). */
#include "realnet/rrs.h"
#include "testutil.h"

typedef struct { rn_rrs *r; bool training; } ctx_t;

static rn_status f_rrs(rn_tensor **out, rn_tensor **in, void *ctx) {
  ctx_t *c = ctx;
  return rn_rrs_forward(out, NULL, c->r, in[0], c->training);
}

static rn_tensor *separated(void) {
  static const int k[2][6] = {{1, 2, 3, 4, 5, 6}, {3, 6, 2, 5, 1, 4}};
  int64_t shape[4] = {2, 6, 3, 3};
  rn_tensor *x = NULL;
  if (rn_tensor_zeros(&x, 4, shape, RN_F32, rn_cpu()) != RN_OK) return NULL;
  float *p = rn_f32(x);
  for (int b = 0; b < 2; b++)
    for (int c = 0; c < 6; c++)
      for (int i = 0; i < k[b][c]; i++) p[(b * 6 + c) * 9 + i] = 1.0f + 0.1f * (float)c;
  return x;
}

int main(void) {
  const rn_rrs_mode modes[3] = {RN_RRS_MAXAVG, RN_RRS_MAX, RN_RRS_AVG};
  for (int m = 0; m < 3; m++)
    for (int tr = 0; tr < 2; tr++) {
      rn_rrs_config c = rn_rrs_config_default();
      c.mode = modes[m];
      c.ratio = 0.5;
      rn_rrs *r = NULL;
      CHECK_OK(rn_rrs_new(&r, &c, rn_cpu()));
      rn_tensor *x = separated();
      CHECK_OK(rn_set_requires_grad(x, true));
      ctx_t ctx = {r, tr != 0};
      char name[64];
      snprintf(name, sizeof name, "rrs %s %s", rn_rrs_mode_name(modes[m]), tr ? "train" : "eval");
      CHECK(test_gradcheck(name, f_rrs, 1, &x, &ctx, GC_EPS, GC_ATOL, GC_RTOL));
      rn_tensor_release(x);
      rn_rrs_free(r);
    }
  /* overlapping sets: k_max + k_avg = C, so every channel is gathered at least once and some twice */
  rn_rrs_config c = rn_rrs_config_default();
  c.k_max = 4;
  c.k_avg = 4;
  rn_rrs *r = NULL;
  CHECK_OK(rn_rrs_new(&r, &c, rn_cpu()));
  rn_tensor *x = separated();
  CHECK_OK(rn_set_requires_grad(x, true));
  ctx_t ctx = {r, true};
  CHECK(test_gradcheck("rrs overlap", f_rrs, 1, &x, &ctx, GC_EPS, GC_ATOL, GC_RTOL));
  rn_tensor_release(x);
  rn_rrs_free(r);
  return test_finish("gradcheck_rrs");
}
