/* test_gradcheck_norm.c - finite-difference checks of batch norm (train and eval, with and without affine)
 * and group norm (with and without affine; and SiLU(group norm), whose graph is the two ops), for the input,
 * weight and bias. */
#include "testutil.h"

typedef struct {
  rn_tensor *rm, *rv; /* running statistics (batch norm) */
  bool training;
  int groups;         /* > 0: group norm */
  bool silu;          /* rn_group_norm_silu */
} norm_ctx;

static rn_status norm_fn(rn_tensor **out, rn_tensor **in, void *ctx) {
  norm_ctx *c = ctx;
  if (c->groups > 0 && c->silu) return rn_group_norm_silu(out, in[0], c->groups, in[1], in[2], 1e-5f);
  if (c->groups > 0) return rn_group_norm(out, in[0], c->groups, in[1], in[2], 1e-5f);
  return rn_batch_norm(out, in[0], in[1], in[2], c->rm, c->rv, c->training, 0.1f, 1e-5f);
}

enum { PLAIN = 0, WEIGHT = 1, BIAS = 2, AFFINE = 3 };

static void run_silu(const char *name, int ndim, const int64_t *xs, int affine, bool training, int groups,
                     bool silu) {
  int64_t C = xs[1];
  rn_tensor *in[3] = {test_randn(ndim, xs, 11, 1.0f), NULL, NULL};
  if (affine & WEIGHT) in[1] = test_randn(1, &C, 12, 1.0f);
  if (affine & BIAS) in[2] = test_randn(1, &C, 13, 1.0f);
  norm_ctx c = {NULL, NULL, training, groups, silu};
  if (groups == 0) {
    c.rm = test_randn(1, &C, 14, 0.5f);
    CHECK_OK(rn_tensor_full(&c.rv, 1, &C, RN_F32, rn_cpu(), 1.5));
  }
  for (int i = 0; i < 3; i++) if (in[i]) CHECK_OK(rn_set_requires_grad(in[i], true));
  test_gradcheck(name, norm_fn, 3, in, &c, GC_EPS, GC_ATOL, GC_RTOL);
  for (int i = 0; i < 3; i++) rn_tensor_release(in[i]);
  rn_tensor_release(c.rm);
  rn_tensor_release(c.rv);
}

static void run(const char *name, int ndim, const int64_t *xs, int affine, bool training, int groups) {
  run_silu(name, ndim, xs, affine, training, groups, false);
}

int main(void) {
  int64_t s4[4] = {3, 2, 3, 3}, s2[2] = {5, 3}, g4[4] = {2, 4, 2, 3};
  run("batch_norm train affine", 4, s4, AFFINE, true, 0);
  run("batch_norm train plain", 4, s4, PLAIN, true, 0);
  run("batch_norm train [N,C]", 2, s2, AFFINE, true, 0);
  run("batch_norm train weight only", 4, s4, WEIGHT, true, 0);
  run("batch_norm eval affine", 4, s4, AFFINE, false, 0);
  run("batch_norm eval plain", 2, s2, PLAIN, false, 0);
  run("batch_norm eval bias only", 4, s4, BIAS, false, 0);
  run("group_norm affine", 4, g4, AFFINE, false, 2);
  run("group_norm plain", 4, g4, PLAIN, false, 4);
  run("group_norm one group", 4, g4, AFFINE, false, 1);
  run("group_norm weight only", 4, g4, WEIGHT, false, 2);
  run_silu("group_norm_silu affine", 4, g4, AFFINE, false, 2, true);
  run_silu("group_norm_silu plain", 4, g4, PLAIN, false, 4, true);
  return test_finish("gradcheck_norm");
}
