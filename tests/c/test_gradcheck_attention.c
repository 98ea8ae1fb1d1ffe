/* test_gradcheck_attention.c - finite-difference checks of sdpa and spatial attention with respect to q, k
 * and v, and of attention from a fused qkv map (tolerances GC_EPS / GC_ATOL / GC_RTOL from testutil.h). */
#include "testutil.h"

static rn_tensor *leaf(int ndim, const int64_t *shape, uint64_t seed) {
  rn_tensor *t = test_randn(ndim, shape, seed, 1.0f);
  rn_set_requires_grad(t, true);
  return t;
}

static rn_status f_sdpa(rn_tensor **out, rn_tensor **in, void *ctx) { return rn_sdpa(out, in[0], in[1], in[2]); }

static rn_status f_spatial(rn_tensor **out, rn_tensor **in, void *ctx) {
  return rn_spatial_attention(out, in[0], in[1], in[2], *(int *)ctx);
}

static rn_status f_qkv(rn_tensor **out, rn_tensor **in, void *ctx) {
  return rn_qkv_attention(out, in[0], *(int *)ctx);
}

int main(void) {
  int64_t sq[3] = {2, 3, 4}, sk[3] = {2, 5, 4}, sv[3] = {2, 5, 2};
  rn_tensor *in[3] = {leaf(3, sq, 1), leaf(3, sk, 2), leaf(3, sv, 3)};
  test_gradcheck("sdpa", f_sdpa, 3, in, NULL, GC_EPS, GC_ATOL, GC_RTOL);
  for (int i = 0; i < 3; i++) rn_tensor_release(in[i]);

  int64_t s4[4] = {1, 4, 2, 3};
  for (int heads = 1; heads <= 2; heads++) {
    rn_tensor *sin[3] = {leaf(4, s4, 10 + heads), leaf(4, s4, 20 + heads), leaf(4, s4, 30 + heads)};
    test_gradcheck(heads == 1 ? "spatial attention 1 head" : "spatial attention 2 heads", f_spatial, 3, sin, &heads,
                   GC_EPS, GC_ATOL, GC_RTOL);
    for (int i = 0; i < 3; i++) rn_tensor_release(sin[i]);
  }
  int64_t s12[4] = {1, 12, 2, 2};
  int h2 = 2;
  rn_tensor *qkv[1] = {leaf(4, s12, 40)};
  test_gradcheck("qkv attention 2 heads", f_qkv, 1, qkv, &h2, GC_EPS, GC_ATOL, GC_RTOL);
  rn_tensor_release(qkv[0]);
  return test_finish("gradcheck_attention");
}
