/* test_attention.c - scaled dot-product attention, spatial attention and attention from a fused qkv projection
 * (guided-diffusion's legacy layout) against PyTorch fixtures (values and q/k/v gradients); qkv attention's
 * in-place path against its composite path; bad shapes. */
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

/* qkv_attention without a graph (strided products on views of qkv) and with one (the composite of views and
 * spatial attention) against guided-diffusion's QKVAttentionLegacy in PyTorch. */
static void qkv_vs_torch(void) {
  rn_tensor *qkv = test_fixture("attention/qkv.npy");
  if (!qkv) return;
  for (int heads = 1; heads <= 2; heads++) {
    rn_tensor *ref = test_fixture(heads == 1 ? "attention/qkv_h1.npy" : "attention/qkv_h2.npy");
    rn_tensor *fast = NULL, *x = NULL, *slow = NULL;
    CHECK_OK(rn_qkv_attention(&fast, qkv, heads));
    CHECK(fast && fast->grad_fn == NULL);
    test_check_close(fast, ref, 1e-6, 1e-5, heads == 1 ? "qkv attention, 1 head" : "qkv attention, 2 heads");
    CHECK_OK(rn_clone(&x, qkv));
    CHECK_OK(rn_set_requires_grad(x, true));
    CHECK_OK(rn_qkv_attention(&slow, x, heads));
    CHECK(slow && slow->grad_fn != NULL); /* the differentiable composite */
    test_check_close(slow, ref, 1e-6, 1e-5, "qkv attention, composite path");
    rn_tensor_release(ref); rn_tensor_release(fast); rn_tensor_release(x); rn_tensor_release(slow);
  }
  /* a strided qkv (a channel slice of a bigger map), a 1x1 map, bad head counts */
  int64_t sbig[4] = {1, 30, 5, 2}, sone[4] = {2, 12, 1, 1};
  rn_tensor *big = test_randn(4, sbig, 40, 1.0f), *part = NULL, *partc = NULL, *a = NULL, *b = NULL;
  CHECK_OK(rn_narrow(&part, big, 1, 3, 24));
  CHECK_OK(rn_clone(&partc, part));
  CHECK_OK(rn_qkv_attention(&a, part, 4));
  CHECK_OK(rn_qkv_attention(&b, partc, 4));
  if (a && b) CHECK(test_max_abs_diff(a, b) == 0);
  rn_tensor_release(a); rn_tensor_release(b);
  a = b = NULL;
  rn_tensor *one = test_randn(4, sone, 41, 1.0f), *v = NULL;
  CHECK_OK(rn_qkv_attention(&a, one, 2)); /* one position: the output is v */
  CHECK_OK(rn_reshape(&b, one, 4, (int64_t[]){2, 2, 6, 1}));
  CHECK_OK(rn_narrow(&v, b, 2, 4, 2));
  rn_tensor *vc = NULL;
  CHECK_OK(rn_clone(&vc, v));
  rn_tensor *vr = NULL;
  CHECK_OK(rn_reshape(&vr, vc, 4, (int64_t[]){2, 4, 1, 1}));
  if (a && vr) CHECK(test_max_abs_diff(a, vr) < 1e-6);
  rn_tensor *o = NULL;
  CHECK_ERR(rn_qkv_attention(&o, qkv, 3), RN_ERR_ARG, "3 heads");
  CHECK_ERR(rn_qkv_attention(&o, qkv, 0), RN_ERR_ARG, "0 heads");
  CHECK_ERR(rn_qkv_attention(&o, NULL, 1), RN_ERR_ARG, "qkv");
  CHECK(o == NULL);
  rn_tensor *ts[] = {qkv, big, part, partc, a, b, one, v, vc, vr};
  for (int i = 0; i < 10; i++) rn_tensor_release(ts[i]);
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
  qkv_vs_torch();
  bad_inputs();
  return test_finish("attention");
}
