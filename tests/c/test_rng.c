/* test_rng.c - Philox determinism across thread counts and the moments of its distributions. */
#include <math.h>

#include "testutil.h"

static void moments(rn_tensor *t, double *mean, double *var) {
  const float *p = rn_f32(t);
  int64_t n = rn_tensor_numel(t);
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < n; i++) { s += p[i]; s2 += (double)p[i] * p[i]; }
  *mean = s / n;
  *var = s2 / n - *mean * *mean;
}

int main(void) {
  int64_t shape[] = {1000, 1000};
  rn_tensor *a = NULL, *b = NULL;
  rn_rng g;
  CHECK_OK(rn_tensor_empty(&a, 2, shape, RN_F32, rn_cpu()));
  CHECK_OK(rn_tensor_empty(&b, 2, shape, RN_F32, rn_cpu()));

  /* the same seed gives the same numbers with 1 and 2 threads */
  rn_set_num_threads(1);
  rn_rng_init(&g, 42, 0);
  CHECK_OK(rn_rng_normal_(&g, a, 0, 1));
  rn_set_num_threads(2);
  rn_rng_init(&g, 42, 0);
  CHECK_OK(rn_rng_normal_(&g, b, 0, 1));
  rn_set_num_threads(0);
  CHECK(test_max_abs_diff(a, b) == 0);

  double m, v;
  moments(a, &m, &v);
  CHECK_NEAR(m, 0, 5e-3);
  CHECK_NEAR(v, 1, 5e-3);

  /* the offset advances: a second draw differs; another stream differs */
  CHECK_OK(rn_rng_normal_(&g, b, 0, 1));
  CHECK(test_max_abs_diff(a, b) > 1);
  rn_rng h;
  rn_rng_init(&h, 42, 1);
  CHECK_OK(rn_rng_normal_(&h, b, 0, 1));
  CHECK(test_max_abs_diff(a, b) > 1);

  rn_rng_init(&g, 7, 0);
  CHECK_OK(rn_rng_uniform_(&g, a, -1, 3));
  moments(a, &m, &v);
  CHECK_NEAR(m, 1, 1e-2);
  CHECK_NEAR(v, 16.0 / 12.0, 1e-2);
  float lo = 1e9f, hi = -1e9f;
  for (int64_t i = 0; i < 1000000; i++) { float x = rn_f32(a)[i]; lo = x < lo ? x : lo; hi = x > hi ? x : hi; }
  CHECK(lo >= -1 && hi < 3);

  /* known Philox4x32-10 answer (Random123 known-answer test: zero counter and key) */
  uint32_t w[4];
  rn_philox(0, 0, 0, w);
  CHECK(w[0] == 0x6627e8d5u && w[1] == 0xe169c58du && w[2] == 0xbc57ac4cu && w[3] == 0x9b00dbd8u);

  /* integers and permutations */
  int counts[6] = {0};
  for (int i = 0; i < 60000; i++) counts[rn_rng_int(&g, 0, 5)]++;
  for (int k = 0; k < 6; k++) CHECK(counts[k] > 9500 && counts[k] < 10500);
  rn_tensor *perm = NULL;
  CHECK_OK(rn_rng_permutation(&g, &perm, 100));
  int seen[100] = {0};
  const int64_t *pp = rn_tensor_data(perm);
  for (int i = 0; i < 100; i++) if (pp[i] >= 0 && pp[i] < 100) seen[pp[i]]++;
  int all = 1;
  for (int i = 0; i < 100; i++) all &= seen[i] == 1;
  CHECK(all);
  rn_tensor_release(perm);
  CHECK_ERR(rn_rng_permutation(&g, &perm, -3), RN_ERR_ARG, "negative");
  CHECK_ERR(rn_rng_normal_(&g, a, 0, -1), RN_ERR_ARG, "negative");
  CHECK_ERR(rn_rng_uniform_(&g, a, NAN, 1), RN_ERR_ARG, "not finite");

  rn_tensor_release(perm);
  rn_tensor_release(a);
  rn_tensor_release(b);
  return test_finish("rng");
}
