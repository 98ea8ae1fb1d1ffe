/* test_conv.c - conv2d and conv-transpose2d against PyTorch fixtures (forward and all gradients), under
 * every convolution implementation (oneDNN plain and blocked layouts, im2col), their agreement on larger
 * shapes, and bad-input errors. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char *conv_cases[] = {
  "conv2d_basic", "conv2d_stride_dil", "conv2d_groups", "conv2d_depthwise", "conv2d_depthwise_mult", "conv2d_1x1",
  "conv2d_1x1_stride", "conv2d_7x7_s2", "conv2d_nopad_rect", "convt_basic", "convt_groups_dil",
  "convt_outpad_gt_pad", "convt_dil_outpad", "convt_k4_s2",
};

/* REALNET_CONV / REALNET_ONEDNN_LAYOUT settings; all must give the same numbers. */
static const char *impls[][2] = {{"onednn", NULL}, {"onednn", "plain"}, {"onednn", "blocked"}, {"im2col", NULL}};

static void use_impl(int i) {
  setenv("REALNET_CONV", impls[i][0], 1);
  if (impls[i][1]) setenv("REALNET_ONEDNN_LAYOUT", impls[i][1], 1);
  else unsetenv("REALNET_ONEDNN_LAYOUT");
}

static rn_tensor *fixture(const char *name, const char *key) {
  char rel[128];
  snprintf(rel, sizeof rel, "conv/%s_%s.npy", name, key);
  return test_fixture(rel);
}

static void check_case(const char *name, const char *impl) {
  char what[160];
  rn_tensor *p = fixture(name, "p");
  if (!p) return;
  int64_t *v = rn_tensor_data(p);
  rn_conv_params cp = {{(int)v[0], (int)v[1]}, {(int)v[2], (int)v[3]}, {(int)v[4], (int)v[5]}, (int)v[6],
                       {(int)v[7], (int)v[8]}};
  bool has_bias = v[9] != 0, transpose = strncmp(name, "convt", 5) == 0;
  rn_tensor *x = fixture(name, "x"), *w = fixture(name, "w"), *b = has_bias ? fixture(name, "b") : NULL;
  rn_tensor *y = fixture(name, "y"), *gy = fixture(name, "gy"), *gx = fixture(name, "gx"), *gw = fixture(name, "gw");
  rn_tensor *gb = has_bias ? fixture(name, "gb") : NULL, *out = NULL;
  if (x && w && y && gy && gx && gw && (!has_bias || (b && gb))) {
    CHECK_OK(rn_set_requires_grad(x, true));
    CHECK_OK(rn_set_requires_grad(w, true));
    if (b) CHECK_OK(rn_set_requires_grad(b, true));
    rn_status st = transpose ? rn_conv_transpose2d(&out, x, w, b, &cp) : rn_conv2d(&out, x, w, b, &cp);
    if (CHECK_OK(st)) {
      snprintf(what, sizeof what, "%s [%s] output", name, impl);
      test_check_close(out, y, 1e-4, 1e-4, what);
      if (CHECK_OK(rn_backward(out, gy))) {
        snprintf(what, sizeof what, "%s [%s] input grad", name, impl);
        test_check_close(x->grad, gx, 1e-4, 1e-4, what);
        snprintf(what, sizeof what, "%s [%s] weight grad", name, impl);
        test_check_close(w->grad, gw, 1e-4, 1e-4, what);
        if (b) {
          snprintf(what, sizeof what, "%s [%s] bias grad", name, impl);
          test_check_close(b->grad, gb, 1e-4, 1e-4, what);
        }
      }
    }
  }
  rn_tensor *all[] = {p, x, w, b, y, gy, gx, gw, gb, out};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) rn_tensor_release(all[i]);
}

/* Shapes past the fixtures' sizes (several column blocks, batch 1 and batch > threads) must agree
 * between implementations, forward and backward. */
typedef struct { int64_t xs[4], ws[4]; rn_conv_params p; bool transpose; } agree_case;

static void run_all(const agree_case *c, rn_tensor *x, rn_tensor *w, rn_tensor *gy, rn_tensor **res) {
  rn_tensor *out = NULL;
  rn_zero_grad(x);
  rn_zero_grad(w);
  rn_status st = c->transpose ? rn_conv_transpose2d(&out, x, w, NULL, &c->p) : rn_conv2d(&out, x, w, NULL, &c->p);
  if (CHECK_OK(st) && CHECK_OK(rn_backward(out, gy))) {
    res[0] = out;
    res[1] = rn_tensor_retain(x->grad);
    res[2] = rn_tensor_retain(w->grad);
  } else {
    rn_tensor_release(out);
  }
}

static void check_agreement(void) {
  agree_case cases[] = {
    {{1, 64, 30, 30}, {16, 64, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}, false},
    {{3, 32, 17, 19}, {24, 32, 3, 3}, {{2, 2}, {1, 2}, {1, 2}, 1, {0, 0}}, false},
    {{1, 48, 33, 33}, {32, 48, 1, 1}, {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}}, false},
    {{2, 32, 20, 20}, {32, 8, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 4, {0, 0}}, false},
    {{1, 16, 12, 12}, {16, 8, 4, 4}, {{2, 2}, {1, 1}, {1, 1}, 1, {0, 0}}, true},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    agree_case *c = &cases[k];
    rn_tensor *x = test_randn(4, c->xs, 100 + k, 1.0f), *w = test_randn(4, c->ws, 200 + k, 0.1f);
    rn_tensor *probe = NULL, *gy = NULL;
    rn_set_grad_enabled(false);
    use_impl(3);
    CHECK_OK(c->transpose ? rn_conv_transpose2d(&probe, x, w, NULL, &c->p) : rn_conv2d(&probe, x, w, NULL, &c->p));
    rn_set_grad_enabled(true);
    if (!probe) { rn_tensor_release(x); rn_tensor_release(w); continue; }
    gy = test_randn(4, probe->shape, 300 + k, 1.0f);
    CHECK_OK(rn_set_requires_grad(x, true));
    CHECK_OK(rn_set_requires_grad(w, true));
    rn_tensor *ref[3] = {0}, *got[3] = {0};
    run_all(c, x, w, gy, ref);
    for (int i = 0; i < 3; i++) {
      use_impl(i);
      run_all(c, x, w, gy, got);
      const char *part[3] = {"output", "input grad", "weight grad"};
      for (int j = 0; j < 3; j++) {
        char what[96];
        snprintf(what, sizeof what, "agreement case %zu [%s/%s] %s", k, impls[i][0], impls[i][1] ? impls[i][1] : "auto",
                 part[j]);
        test_check_close(got[j], ref[j], 2e-4, 2e-4, what);
        rn_tensor_release(got[j]);
        got[j] = NULL;
      }
      use_impl(3);
    }
    for (int j = 0; j < 3; j++) rn_tensor_release(ref[j]);
    rn_tensor_release(probe); rn_tensor_release(gy); rn_tensor_release(x); rn_tensor_release(w);
  }
}

static void check_bad_input(void) {
  int64_t xs[4] = {2, 4, 8, 8}, ws[4] = {6, 4, 3, 3}, x3s[3] = {4, 8, 8}, bigs[4] = {6, 4, 11, 11};
  int64_t wgs[4] = {6, 2, 3, 3}, bs[1] = {5};
  rn_tensor *x = test_randn(4, xs, 1, 1.0f), *w = test_randn(4, ws, 2, 1.0f), *x3 = test_randn(3, x3s, 3, 1.0f);
  rn_tensor *big = test_randn(4, bigs, 4, 1.0f), *wg = test_randn(4, wgs, 5, 1.0f), *b5 = test_randn(1, bs, 6, 1.0f);
  rn_tensor *xi = NULL, *out = NULL;
  rn_conv_params p = rn_conv_params_default();
  CHECK_ERR(rn_conv2d(&out, x3, w, NULL, &p), RN_ERR_SHAPE, "4 dims");
  CHECK_ERR(rn_conv2d(&out, x, x3, NULL, &p), RN_ERR_SHAPE, "weight");
  CHECK_ERR(rn_conv2d(&out, NULL, w, NULL, &p), RN_ERR_ARG, "input");
  CHECK_ERR(rn_conv2d(&out, x, wg, NULL, &p), RN_ERR_SHAPE, "does not fit");      /* channel mismatch */
  CHECK_ERR(rn_conv2d(&out, x, w, b5, &p), RN_ERR_SHAPE, "bias");
  CHECK_ERR(rn_conv2d(&out, x, big, NULL, &p), RN_ERR_SHAPE, "larger than the padded input");
  p.pad[0] = p.pad[1] = 2;
  CHECK_OK(rn_conv2d(&out, x, big, NULL, &p)); /* padded to 12x12 the 11x11 kernel fits */
  rn_tensor_release(out); out = NULL;
  p = rn_conv_params_default(); p.stride[1] = 0;
  CHECK_ERR(rn_conv2d(&out, x, w, NULL, &p), RN_ERR_ARG, "stride");
  p = rn_conv_params_default(); p.pad[0] = -1;
  CHECK_ERR(rn_conv2d(&out, x, w, NULL, &p), RN_ERR_ARG, "padding");
  p = rn_conv_params_default(); p.dilation[0] = 0;
  CHECK_ERR(rn_conv2d(&out, x, w, NULL, &p), RN_ERR_ARG, "dilation");
  p = rn_conv_params_default(); p.groups = 3;
  CHECK_ERR(rn_conv2d(&out, x, wg, NULL, &p), RN_ERR_ARG, "groups");            /* 3 does not divide 4 */
  p.groups = 0;
  CHECK_ERR(rn_conv2d(&out, x, w, NULL, &p), RN_ERR_ARG, "groups");
  CHECK_OK(rn_to_dtype(&xi, x, RN_I32));
  p = rn_conv_params_default();
  CHECK_ERR(rn_conv2d(&out, xi, w, NULL, &p), RN_ERR_ARG, "float32");
  /* conv-transpose: weight [C_in, O/groups, kh, kw] */
  CHECK_ERR(rn_conv_transpose2d(&out, x, w, NULL, &p), RN_ERR_SHAPE, "does not fit"); /* w dim 0 is 6, x has 4 */
  CHECK_ERR(rn_conv_transpose2d(&out, x3, w, NULL, &p), RN_ERR_SHAPE, "4 dims");
  p.stride[0] = 2; p.out_pad[0] = 2;
  int64_t wts[4] = {4, 3, 3, 3};
  rn_tensor *wt = test_randn(4, wts, 7, 1.0f);
  CHECK_ERR(rn_conv_transpose2d(&out, x, wt, NULL, &p), RN_ERR_ARG, "output_padding");
  p.out_pad[0] = 1;
  CHECK_OK(rn_conv_transpose2d(&out, x, wt, NULL, &p));
  if (out) CHECK(out->shape[1] == 3 && out->shape[2] == 18 && out->shape[3] == 10);
  rn_tensor_release(out); out = NULL;
  p = rn_conv_params_default(); p.pad[0] = 5;
  CHECK_ERR(rn_conv_transpose2d(&out, x, wt, NULL, &p), RN_ERR_SHAPE, "empty output");
  p = rn_conv_params_default(); p.groups = 3;
  CHECK_ERR(rn_conv_transpose2d(&out, x, wt, NULL, &p), RN_ERR_ARG, "groups");
  CHECK(out == NULL);
  rn_tensor *all[] = {x, w, x3, big, wg, b5, xi, wt};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) rn_tensor_release(all[i]);
}

int main(void) {
  for (int i = 0; i < 4; i++) {
    use_impl(i);
    char impl[32];
    snprintf(impl, sizeof impl, "%s/%s", impls[i][0], impls[i][1] ? impls[i][1] : "auto");
    for (size_t k = 0; k < sizeof conv_cases / sizeof *conv_cases; k++) check_case(conv_cases[k], impl);
  }
  check_agreement();
  unsetenv("REALNET_CONV");
  unsetenv("REALNET_ONEDNN_LAYOUT");
  check_bad_input();
  return test_finish("conv");
}
