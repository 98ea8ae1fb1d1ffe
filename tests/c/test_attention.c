/* test_attention.c - scaled dot-product attention and spatial attention against PyTorch fixtures
 * (values and q/k/v gradients), and bad shapes. */
#include "testutil.h"

static void sdpa_vs_torch(void) {
  const char *names[3] = {"attention/sdpa_q.npy", "attention/sdpa_k.npy", "attention/sdpa_v.npy"};
  const char *grads[3] = {"attention/sdpa_grad_q.npy", "attention/sdpa_grad_k.npy", "attention/sdpa_grad_v.npy"};
  rn_tensor *in[3], *o = NULL, *orr = NULL, *L = NULL;
  for (int i = 0; i < 3; i++) {
    rn_tensor *f = test_fixture(names[i]);
    in[i] = NULL;
    if (f) CHECK_OK(rn_clone(&in[i], f));
    rn_tensor_release(f);
    if (!in[i]) return;
    rn_set_requires_grad(in[i], true);
  }
  rn_tensor *ref = test_fixture("attention/sdpa_out.npy"), *r = test_fixture("attention/sdpa_r.npy");
  CHECK_OK(rn_sdpa(&o, in[0], in[1], in[2]));
  test_check_close(o, ref, 1e-6, 1e-5, "sdpa output");
  if (o && r) {
    CHECK_OK(rn_mul(&orr, o, r));
    CHECK_OK(rn_reduce(&L, RN_RED_SUM, orr, 0, NULL, false));
    CHECK_OK(rn_backward(L, NULL));
    for (int i = 0; i < 3; i++) {
      rn_tensor *g = test_fixture(grads[i]);
      if (in[i]->grad) test_check_close(in[i]->grad, g, 1e-6, 1e-4, grads[i]);
      else CHECK(!"no gradient");
      rn_tensor_release(g);
    }
  }
  rn_tensor *ts[] = {o, orr, L, ref, r, in[0], in[1], in[2]};
  for (int i = 0; i < 8; i++) rn_tensor_release(ts[i]);
}

static void spatial_vs_torch(void) {
  rn_tensor *q = test_fixture("attention/spatial_q.npy"), *k = test_fixture("attention/spatial_k.npy");
  rn_tensor *v = test_fixture("attention/spatial_v.npy");
  for (int heads = 1; heads <= 2; heads++) {
    rn_tensor *o = NULL, *ref = test_fixture(heads == 1 ? "attention/spatial_h1.npy" : "attention/spatial_h2.npy");
    CHECK_OK(rn_spatial_attention(&o, q, k, v, heads));
    test_check_close(o, ref, 1e-6, 1e-5, heads == 1 ? "spatial attention, 1 head" : "spatial attention, 2 heads");
    rn_tensor_release(o);
    rn_tensor_release(ref);
  }
  rn_tensor *o = NULL;
  CHECK_ERR(rn_spatial_attention(&o, q, k, v, 3), RN_ERR_ARG, "3 heads");
  CHECK_ERR(rn_spatial_attention(&o, q, k, v, 0), RN_ERR_ARG, "heads");
  int64_t s3[3] = {2, 4, 9};
  rn_tensor *bad = test_randn(3, s3, 1, 1.0f);
  CHECK_ERR(rn_spatial_attention(&o, bad, bad, bad, 1), RN_ERR_SHAPE, "4 dims");
  CHECK_ERR(rn_spatial_attention(&o, q, bad, v, 1), RN_ERR_SHAPE, "[2,4,9]");
  CHECK(o == NULL);
  rn_tensor_release(bad);
  rn_tensor_release(q); rn_tensor_release(k); rn_tensor_release(v);
}

static void bad_inputs(void) {
  int64_t sq[3] = {2, 5, 4}, sk[3] = {2, 6, 4}, sv[3] = {2, 6, 3}, skd[3] = {2, 6, 5}, svs[3] = {2, 7, 3};
  int64_t sb[3] = {3, 6, 4};
  rn_tensor *q = test_randn(3, sq, 1, 1), *k = test_randn(3, sk, 2, 1), *v = test_randn(3, sv, 3, 1);
  rn_tensor *kd = test_randn(3, skd, 4, 1), *vs = test_randn(3, svs, 5, 1), *kb = test_randn(3, sb, 6, 1);
  rn_tensor *o = NULL, *iq = NULL;
  CHECK_OK(rn_tensor_zeros(&iq, 3, sq, RN_I64, rn_cpu()));
  CHECK_ERR(rn_sdpa(&o, q, kd, v), RN_ERR_SHAPE, "[2,6,5]");
  CHECK_ERR(rn_sdpa(&o, q, k, vs), RN_ERR_SHAPE, "[2,7,3]");
  CHECK_ERR(rn_sdpa(&o, q, kb, v), RN_ERR_SHAPE, "[3,6,4]");
  CHECK_ERR(rn_sdpa(&o, iq, k, v), RN_ERR_ARG, "float32");
  CHECK_ERR(rn_sdpa(&o, q, NULL, v), RN_ERR_ARG, "sdpa: k");
  rn_tensor *q2 = NULL;
  int64_t s2[2] = {5, 4};
  q2 = test_randn(2, s2, 7, 1);
  CHECK_ERR(rn_sdpa(&o, q2, k, v), RN_ERR_SHAPE, "3 dims");
  CHECK(o == NULL);
  rn_tensor *ts[] = {q, k, v, kd, vs, kb, iq, q2};
  for (int i = 0; i < 8; i++) rn_tensor_release(ts[i]);
}

int main(void) {
  sdpa_vs_torch();
  spatial_vs_torch();
  bad_inputs();
  return test_finish("attention");
}
