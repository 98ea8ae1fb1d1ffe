/* test_gradcheck_conv.c - finite-difference checks of conv2d (input, weight, bias; stride, padding,
 * dilation, groups, depthwise), conv2d_fused (the residual too, through SiLU) and conv-transpose2d
 * (output_padding, groups, dilation), under both convolution implementations. Tolerances: GC_EPS / GC_ATOL /
 * GC_RTOL from testutil.h. */
#include <stdlib.h>

#include "testutil.h"

typedef struct { rn_conv_params p; bool transpose; } conv_ctx;

static rn_status conv_fn(rn_tensor **out, rn_tensor **in, void *ctx) {
  conv_ctx *c = ctx;
  return c->transpose ? rn_conv_transpose2d(out, in[0], in[1], in[2], &c->p) : rn_conv2d(out, in[0], in[1], in[2], &c->p);
}

static void run(const char *name, bool transpose, const int64_t *xs, const int64_t *ws, int64_t nb,
                rn_conv_params p, uint64_t seed) {
  conv_ctx c = {p, transpose};
  rn_tensor *in[3] = {test_randn(4, xs, seed, 1.0f), test_randn(4, ws, seed + 1, 0.5f),
                      nb ? test_randn(1, &nb, seed + 2, 1.0f) : NULL};
  for (int i = 0; i < 3; i++) if (in[i]) CHECK_OK(rn_set_requires_grad(in[i], true));
  test_gradcheck(name, conv_fn, 3, in, &c, GC_EPS, GC_ATOL, GC_RTOL);
  for (int i = 0; i < 3; i++) rn_tensor_release(in[i]);
}

static rn_status fused_fn(rn_tensor **out, rn_tensor **in, void *ctx) {
  return rn_conv2d_fused(out, in[0], in[1], in[2], in[3], RN_UN_SILU, ctx);
}

/* act(conv2d + residual) with every input differentiable (recorded as the separate ops) */
static void run_fused(const char *name, uint64_t seed) {
  int64_t xs[4] = {2, 3, 5, 5}, ws[4] = {4, 3, 3, 3}, bs[1] = {4}, rs[4] = {2, 4, 3, 3};
  rn_conv_params p = rn_conv_params_default();
  p.stride[0] = p.stride[1] = 2;
  p.pad[0] = p.pad[1] = 1;
  rn_tensor *in[4] = {test_randn(4, xs, seed, 1.0f), test_randn(4, ws, seed + 1, 0.5f),
                      test_randn(1, bs, seed + 2, 1.0f), test_randn(4, rs, seed + 3, 1.0f)};
  for (int i = 0; i < 4; i++) CHECK_OK(rn_set_requires_grad(in[i], true));
  test_gradcheck(name, fused_fn, 4, in, &p, GC_EPS, GC_ATOL, GC_RTOL);
  for (int i = 0; i < 4; i++) rn_tensor_release(in[i]);
}

static rn_conv_params params(int s0, int s1, int p0, int p1, int d0, int d1, int g, int op0, int op1) {
  rn_conv_params p = {{s0, s1}, {p0, p1}, {d0, d1}, g, {op0, op1}};
  return p;
}

int main(void) {
  const char *impl[2] = {"onednn", "im2col"};
  for (int i = 0; i < 2; i++) {
    setenv("REALNET_CONV", impl[i], 1);
    char name[64];
    int64_t x1[4] = {2, 3, 6, 6}, w1[4] = {4, 3, 3, 3};
    snprintf(name, sizeof name, "conv2d pad [%s]", impl[i]);
    run(name, false, x1, w1, 4, params(1, 1, 1, 1, 1, 1, 1, 0, 0), 10);
    int64_t x2[4] = {1, 4, 7, 6}, w2[4] = {6, 2, 3, 2};
    snprintf(name, sizeof name, "conv2d stride/dilation/groups [%s]", impl[i]);
    run(name, false, x2, w2, 6, params(2, 1, 1, 2, 2, 1, 2, 0, 0), 20);
    int64_t x3[4] = {2, 4, 5, 5}, w3[4] = {4, 1, 3, 3};
    snprintf(name, sizeof name, "conv2d depthwise [%s]", impl[i]);
    run(name, false, x3, w3, 0, params(1, 1, 1, 1, 1, 1, 4, 0, 0), 30);
    int64_t x4[4] = {2, 3, 4, 4}, w4[4] = {3, 2, 3, 3};
    snprintf(name, sizeof name, "conv_transpose2d stride/output_padding [%s]", impl[i]);
    run(name, true, x4, w4, 2, params(2, 2, 1, 1, 1, 1, 1, 1, 1), 40);
    int64_t x5[4] = {1, 4, 3, 4}, w5[4] = {4, 3, 2, 3};
    snprintf(name, sizeof name, "conv_transpose2d groups/dilation [%s]", impl[i]);
    run(name, true, x5, w5, 6, params(2, 1, 0, 1, 2, 2, 2, 1, 1), 50);
    snprintf(name, sizeof name, "conv2d_fused residual + silu [%s]", impl[i]);
    run_fused(name, 60);
  }
  return test_finish("gradcheck_conv");
}
