/* test_cuda_conv_fused.c - the convolution's epilogue on the GPU (rn_conv2d_fused: cuDNN or cuBLAS, then bias,
 * residual and activation in one kernel): against the CPU, 1e-4 abs + 1e-4 rel as the plain convolutions of
 * test_cuda_linalg (the activations are monotone and 1-Lipschitz or flatter, so they do not widen the gap); and
 * against the separate ops on the GPU (conv2d with its bias, add, unary), which it must equal to the bit, since
 * the epilogue rounds in their order. */
#include "../c/conv_fused_reference.h"
#include "cuda_check.h"

static void fused_case(const int64_t xs[4], const int64_t ws[4], int stride, int pad, int groups, const char *name) {
  rn_conv_params p = rn_conv_params_default();
  p.stride[0] = p.stride[1] = stride;
  p.pad[0] = p.pad[1] = pad;
  p.groups = groups;
  int64_t ys[4] = {xs[0], ws[0], (xs[2] + 2 * pad - ws[2]) / stride + 1, (xs[3] + 2 * pad - ws[3]) / stride + 1};
  int64_t bs[1] = {ws[0]};
  rn_tensor *x = test_randn(4, xs, 1, 1.0f), *w = test_randn(4, ws, 2, 0.3f), *b = test_randn(1, bs, 3, 1.0f);
  rn_tensor *r = test_randn(4, ys, 4, 1.0f);
  rn_tensor *gx = to_gpu(x), *gw = to_gpu(w), *gb = to_gpu(b), *gr = to_gpu(r);
  for (int with = 0; with < 4; with++) {
    for (int a = 0; a < N_FUSED_ACTS; a++) {
      rn_tensor *cb = with & 1 ? b : NULL, *cr = with & 2 ? r : NULL;
      rn_tensor *g_b = with & 1 ? gb : NULL, *g_r = with & 2 ? gr : NULL;
      rn_tensor *yc = NULL, *yg = NULL, *sep = conv2d_separate(gx, gw, g_b, g_r, fused_acts[a], &p);
      CHECK_OK(rn_conv2d_fused(&yc, x, w, cb, cr, fused_acts[a], &p));
      CHECK_OK(rn_conv2d_fused(&yg, gx, gw, g_b, g_r, fused_acts[a], &p));
      char what[160];
      snprintf(what, sizeof what, "conv2d_fused %s (%s, bias %d, residual %d) vs the CPU", name,
               fused_act_names[a], with & 1, with >> 1);
      agree(yg, yc, 1e-4, 1e-4, what);
      rn_tensor *seph = NULL;
      CHECK_OK(rn_to_device(&seph, sep, rn_cpu()));
      snprintf(what, sizeof what, "conv2d_fused %s (%s, bias %d, residual %d) vs the separate GPU ops", name,
               fused_act_names[a], with & 1, with >> 1);
      agree_exact(yg, seph, what);
      release_all(4, yc, yg, sep, seph);
    }
  }
  release_all(8, x, w, b, r, gx, gw, gb, gr);
}

int main(void) {
  int skip = cuda_begin("conv_fused");
  if (skip) return skip;
  rn_cuda_set_tf32(false);
  rn_set_grad_enabled(false);
  fused_case((int64_t[]){2, 8, 17, 19}, (int64_t[]){12, 8, 3, 3}, 1, 1, 1, "3x3 pad 1 (cuDNN)");
  fused_case((int64_t[]){2, 16, 16, 16}, (int64_t[]){24, 4, 3, 3}, 2, 1, 4, "grouped stride 2 (cuDNN)");
  fused_case((int64_t[]){3, 24, 10, 13}, (int64_t[]){20, 24, 1, 1}, 1, 0, 1, "1x1 (cuBLAS)");
  return test_finish("cuda conv_fused");
}
