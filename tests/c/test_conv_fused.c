/* test_conv_fused.c - rn_conv2d_fused, act(conv2d(x, w, bias) + residual): without a gradient to record it is one
 * kernel-table call and equals conv2d, add and the activation one after another to the bit, for every activation,
 * with and without bias and residual, strided, grouped and 1x1; with a gradient it records those ops (same
 * values, same gradients); bad input (an activation with parameters, a residual of the wrong shape, dtype or
 * device) fails naming it. The gradients themselves are checked by finite differences in test_gradcheck_conv. */
#include <stdlib.h>

#include "conv_fused_reference.h"

static void exact_case(const int64_t xs[4], const int64_t ws[4], int stride, int pad, int groups, uint64_t seed) {
  rn_conv_params p = rn_conv_params_default();
  p.stride[0] = p.stride[1] = stride;
  p.pad[0] = p.pad[1] = pad;
  p.groups = groups;
  int64_t oh = (xs[2] + 2 * pad - ws[2]) / stride + 1, ow = (xs[3] + 2 * pad - ws[3]) / stride + 1;
  int64_t ys[4] = {xs[0], ws[0], oh, ow}, bs[1] = {ws[0]};
  rn_tensor *x = test_randn(4, xs, seed, 1.0f), *w = test_randn(4, ws, seed + 1, 0.5f);
  rn_tensor *b = test_randn(1, bs, seed + 2, 1.0f), *r = test_randn(4, ys, seed + 3, 1.0f);
  for (int with = 0; with < 4; with++) {
    rn_tensor *bias = with & 1 ? b : NULL, *res = with & 2 ? r : NULL;
    for (int a = 0; a < N_FUSED_ACTS; a++) {
      rn_tensor *want = conv2d_separate(x, w, bias, res, fused_acts[a], &p), *got = NULL;
      uint64_t calls = rn_kernel_calls();
      CHECK_OK(rn_conv2d_fused(&got, x, w, bias, res, fused_acts[a], &p));
      calls = rn_kernel_calls() - calls;
      char what[128];
      snprintf(what, sizeof what, "conv2d_fused %s, bias %d, residual %d, stride %d, groups %d", fused_act_names[a],
               with & 1, with >> 1, stride, groups);
      test_check_close(got, want, 0, 0, what); /* zero tolerances: equal to the bit */
      if (!CHECK(calls == 1)) fprintf(stderr, "  %s: %llu kernel calls\n", what, (unsigned long long)calls);
      rn_tensor_release(want);
      rn_tensor_release(got);
    }
  }
  rn_tensor_release(x);
  rn_tensor_release(w);
  rn_tensor_release(b);
  rn_tensor_release(r);
}

/* With inputs that want gradients the ops are recorded: same output, same gradients as the separate ops. */
static void gradient_case(void) {
  int64_t xs[4] = {2, 3, 6, 6}, ws[4] = {4, 3, 3, 3}, bs[1] = {4}, ys[4] = {2, 4, 6, 6};
  rn_conv_params p = rn_conv_params_default();
  p.pad[0] = p.pad[1] = 1;
  rn_tensor *in[2][4];
  for (int k = 0; k < 2; k++) {
    in[k][0] = test_randn(4, xs, 1, 1.0f), in[k][1] = test_randn(4, ws, 2, 0.5f);
    in[k][2] = test_randn(1, bs, 3, 1.0f), in[k][3] = test_randn(4, ys, 4, 1.0f);
    for (int i = 0; i < 4; i++) CHECK_OK(rn_set_requires_grad(in[k][i], true));
  }
  rn_tensor *y0 = NULL, *y1 = conv2d_separate(in[1][0], in[1][1], in[1][2], in[1][3], RN_UN_SILU, &p);
  CHECK_OK(rn_conv2d_fused(&y0, in[0][0], in[0][1], in[0][2], in[0][3], RN_UN_SILU, &p));
  CHECK(y0 && y0->requires_grad);
  test_check_close(y0, y1, 0, 0, "conv2d_fused with gradients: output");
  rn_tensor *l0 = NULL, *l1 = NULL;
  CHECK_OK(rn_reduce(&l0, RN_RED_SUM, y0, 0, NULL, false));
  CHECK_OK(rn_reduce(&l1, RN_RED_SUM, y1, 0, NULL, false));
  CHECK_OK(rn_backward(l0, NULL));
  CHECK_OK(rn_backward(l1, NULL));
  const char *names[4] = {"input", "weight", "bias", "residual"};
  for (int i = 0; i < 4; i++) {
    char what[64];
    snprintf(what, sizeof what, "conv2d_fused with gradients: d/d%s", names[i]);
    test_check_close(in[0][i]->grad, in[1][i]->grad, 0, 0, what);
  }
  rn_tensor *all[] = {y0, y1, l0, l1, in[0][0], in[0][1], in[0][2], in[0][3], in[1][0], in[1][1], in[1][2], in[1][3]};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) rn_tensor_release(all[i]);
}

static void bad_input(void) {
  int64_t xs[4] = {1, 2, 5, 5}, ws[4] = {3, 2, 3, 3}, ys[4] = {1, 3, 3, 3}, wrong[4] = {1, 3, 5, 5};
  rn_tensor *x = test_randn(4, xs, 1, 1.0f), *w = test_randn(4, ws, 2, 1.0f), *r = test_randn(4, ys, 3, 1.0f);
  rn_tensor *rw = test_randn(4, wrong, 4, 1.0f), *ri = NULL, *out = NULL;
  rn_conv_params p = rn_conv_params_default();
  CHECK_OK(rn_conv2d_fused(&out, x, w, NULL, r, RN_ACT_NONE, &p));
  rn_tensor_release(out);
  out = NULL;
  CHECK_ERR(rn_conv2d_fused(&out, x, w, NULL, rw, RN_ACT_NONE, &p), RN_ERR_SHAPE, "residual [1,3,5,5] must have the output's shape [1,3,3,3]");
  CHECK_ERR(rn_conv2d_fused(&out, x, w, NULL, NULL, RN_UN_EXP, &p), RN_ERR_ARG, "activation must be none, relu");
  CHECK_ERR(rn_conv2d_fused(&out, x, w, NULL, NULL, RN_UN_LEAKY_RELU, &p), RN_ERR_ARG, "activation");
  CHECK_OK(rn_to_dtype(&ri, r, RN_I32));
  CHECK_ERR(rn_conv2d_fused(&out, x, w, NULL, ri, RN_ACT_NONE, &p), RN_ERR_ARG, "residual");
  CHECK_ERR(rn_conv2d_fused(&out, x, rw, NULL, NULL, RN_ACT_NONE, &p), RN_ERR_SHAPE, "weight"); /* conv2d's checks */
  CHECK(out == NULL);
  rn_tensor *all[] = {x, w, r, rw, ri};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) rn_tensor_release(all[i]);
}

int main(void) {
  const char *impl[2] = {"onednn", "im2col"};
  for (int i = 0; i < 2; i++) {
    setenv("REALNET_CONV", impl[i], 1);
    exact_case((int64_t[]){2, 4, 9, 9}, (int64_t[]){6, 4, 3, 3}, 1, 1, 1, 10);
    exact_case((int64_t[]){2, 4, 9, 8}, (int64_t[]){6, 2, 3, 3}, 2, 1, 2, 20);
    exact_case((int64_t[]){3, 8, 5, 7}, (int64_t[]){5, 8, 1, 1}, 1, 0, 1, 30);
  }
  unsetenv("REALNET_CONV");
  gradient_case();
  bad_input();
  return test_finish("conv_fused");
}
