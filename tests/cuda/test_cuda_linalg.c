/* test_cuda_linalg.c - cuBLAS gemm (all four transpose combinations, batched, a batch-shared operand, alpha and
 * beta, k = 0, operands with strided rows) and cuDNN convolution forward / backward-data / backward-weight (bias,
 * stride, padding, dilation, groups, depthwise, and an output smaller than the strided formula as conv-transpose
 * produces).
 * Tolerances, float32 (TF32 off): 1e-4 abs + 1e-4 rel (sums of up to a few thousand products in another
 * order); with TF32 on, checked once: 0.1 abs + 0.1 rel. TF32 rounds the inputs to 10-bit mantissas, so each
 * product is off by about 2^-11 of its size and a sum of k of them by about sqrt(k) 2^-11 |a||b|: for k = 1024 and
 * unit normal inputs a standard deviation of about 0.008 on outputs of size about 32, and the worst of 131072
 * outputs (about 4.5 deviations, 0.035 on an H200) sits well inside 0.1, while a wrong product is off by O(10). */
#include "cuda_check.h"

static void gemm_case(int64_t B, int64_t m, int64_t n, int64_t k, bool ta, bool tb, bool share_b, float alpha,
                      float beta, double tol, const char *name) {
  int64_t sa[3] = {B, ta ? k : m, ta ? m : k}, sb[3] = {share_b ? 1 : B, tb ? n : k, tb ? k : n}, sy[3] = {B, m, n};
  rn_tensor *a = test_randn(3, sa, 1, 1.0f), *b = test_randn(3, sb, 2, 1.0f), *yc = test_randn(3, sy, 3, 1.0f);
  rn_tensor *ga = to_gpu(a), *gb = to_gpu(b), *yg = to_gpu(yc);
  CHECK_OK(KC->gemm(yc, a, b, ta, tb, alpha, beta));
  CHECK_OK(KG->gemm(yg, ga, gb, ta, tb, alpha, beta));
  char what[160];
  snprintf(what, sizeof what, "gemm %s (B=%lld m=%lld n=%lld k=%lld ta=%d tb=%d)", name, (long long)B, (long long)m,
           (long long)n, (long long)k, ta, tb);
  agree(yg, yc, tol, tol, what);
  release_all(5, a, b, yc, ga, gb);
  rn_tensor_release(yg);
}

static void gemms(void) {
  for (int t = 0; t < 4; t++) gemm_case(3, 37, 29, 53, t & 1, t >> 1, false, 1.0f, 0.0f, 1e-4, "batched");
  gemm_case(4, 64, 96, 300, false, true, true, 1.0f, 0.0f, 1e-4, "shared b (linear layer)");
  gemm_case(2, 17, 19, 23, true, false, false, 0.5f, 2.0f, 1e-4, "alpha and beta");
  gemm_case(2, 5, 6, 0, false, false, false, 1.0f, 0.5f, 1e-6, "k = 0 (y = beta y)");
  gemm_case(2, 5, 6, 0, false, false, false, 1.0f, 0.0f, 1e-12, "k = 0, beta 0 (y = 0)");
  gemm_case(1, 256, 512, 1024, false, false, false, 1.0f, 0.0f, 1e-3, "large");
  rn_cuda_set_tf32(true);
  gemm_case(1, 256, 512, 1024, false, false, false, 1.0f, 0.0f, 0.1, "large, TF32");
  rn_cuda_set_tf32(false);
}

/* Operands with contiguous rows and other row / batch strides (the channel slices qkv attention passes). */
static void gemm_strided(void) {
  int64_t big[3] = {4, 96, 50};
  rn_tensor *x = test_randn(3, big, 21, 1.0f), *gx = to_gpu(x);
  rn_tensor *ca = NULL, *cb = NULL, *ga = NULL, *gb = NULL;
  CHECK_OK(rn_narrow(&ca, x, 1, 0, 32));
  CHECK_OK(rn_narrow(&cb, x, 1, 32, 32));
  CHECK_OK(rn_narrow(&ga, gx, 1, 0, 32));
  CHECK_OK(rn_narrow(&gb, gx, 1, 32, 32));
  for (int t = 0; t < 2; t++) { /* a^T b [4, 50, 50] and a b^T [4, 32, 32] */
    bool ta = t == 0, tb = t == 1;
    int64_t side = ta ? 50 : 32, sy[3] = {4, side, side};
    rn_tensor *yc = new_on(rn_cpu(), 3, sy, RN_F32, true), *yg = new_on(GPU, 3, sy, RN_F32, true);
    CHECK_OK(KC->gemm(yc, ca, cb, ta, tb, 0.5f, 0.0f));
    CHECK_OK(KG->gemm(yg, ga, gb, ta, tb, 0.5f, 0.0f));
    agree(yg, yc, 1e-4, 1e-4, ta ? "gemm of row-strided views, a^T b" : "gemm of row-strided views, a b^T");
    release_all(2, yc, yg);
  }
  release_all(6, x, gx, ca, cb, ga, gb);
  /* columns narrowed: rows longer than the matrix (leading dimension 12 > 5 or 9), all four transposes */
  int64_t wide[3] = {3, 9, 12};
  x = test_randn(3, wide, 22, 1.0f), gx = to_gpu(x);
  const int64_t rstart[4] = {7, 6, 6, 1}, rcols[4] = {5, 5, 5, 9}, rrows[4] = {5, 9, 9, 9};
  for (int t = 0; t < 4; t++) { /* the right operand whose inner size fits the left's, by ta + 2 tb */
    bool ta = t & 1, tb = t >> 1;
    rn_tensor *lc = NULL, *lg = NULL, *rc = NULL, *rg = NULL, *tc = NULL, *tg = NULL;
    CHECK_OK(rn_narrow(&lc, x, 2, 0, 5));
    CHECK_OK(rn_narrow(&lg, gx, 2, 0, 5));
    CHECK_OK(rn_narrow(&tc, x, 2, rstart[t], rcols[t]));
    CHECK_OK(rn_narrow(&tg, gx, 2, rstart[t], rcols[t]));
    CHECK_OK(rn_narrow(&rc, tc, 1, 0, rrows[t]));
    CHECK_OK(rn_narrow(&rg, tg, 1, 0, rrows[t]));
    int64_t sy[3] = {3, ta ? 5 : 9, tb ? rrows[t] : rcols[t]};
    rn_tensor *yc = new_on(rn_cpu(), 3, sy, RN_F32, true), *yg = new_on(GPU, 3, sy, RN_F32, true);
    CHECK_OK(KC->gemm(yc, lc, rc, ta, tb, 1.5f, 0.0f));
    CHECK_OK(KG->gemm(yg, lg, rg, ta, tb, 1.5f, 0.0f));
    char what[96];
    snprintf(what, sizeof what, "gemm of column-narrowed views (ld 12), ta=%d tb=%d", ta, tb);
    agree(yg, yc, 1e-4, 1e-4, what);
    release_all(8, lc, lg, rc, rg, tc, tg, yc, yg);
  }
  release_all(2, x, gx);
}

typedef struct { int64_t n, c, h, w, o, kh, kw; int stride, pad, dil, groups; int64_t crop; const char *name; } conv_spec;

static void conv_case(const conv_spec *s, double tol) {
  rn_conv_params p = rn_conv_params_default();
  p.stride[0] = p.stride[1] = s->stride;
  p.pad[0] = p.pad[1] = s->pad;
  p.dilation[0] = p.dilation[1] = s->dil;
  p.groups = s->groups;
  int64_t oh = (s->h + 2 * s->pad - s->dil * (s->kh - 1) - 1) / s->stride + 1 - s->crop;
  int64_t ow = (s->w + 2 * s->pad - s->dil * (s->kw - 1) - 1) / s->stride + 1 - s->crop;
  int64_t sx[4] = {s->n, s->c, s->h, s->w}, sw[4] = {s->o, s->c / s->groups, s->kh, s->kw}, sy[4] = {s->n, s->o, oh, ow};
  int64_t sbias[1] = {s->o};
  rn_tensor *x = test_randn(4, sx, 1, 1.0f), *w = test_randn(4, sw, 2, 0.2f), *bias = test_randn(1, sbias, 3, 1.0f);
  rn_tensor *gx = to_gpu(x), *gw = to_gpu(w), *gbias = to_gpu(bias);
  char what[160];
  /* forward with bias */
  rn_tensor *yc = new_on(rn_cpu(), 4, sy, RN_F32, false), *yg = new_on(GPU, 4, sy, RN_F32, false);
  CHECK_OK(KC->conv2d(yc, x, w, bias, &p));
  CHECK_OK(KG->conv2d(yg, gx, gw, gbias, &p));
  snprintf(what, sizeof what, "conv2d forward: %s", s->name);
  agree(yg, yc, tol, tol, what);
  /* backward data and weight from the same gy */
  rn_tensor *gyc = test_randn(4, sy, 4, 1.0f), *gyg = to_gpu(gyc);
  rn_tensor *dxc = new_on(rn_cpu(), 4, sx, RN_F32, false), *dxg = new_on(GPU, 4, sx, RN_F32, false);
  CHECK_OK(KC->conv2d_backward_data(dxc, gyc, w, &p));
  CHECK_OK(KG->conv2d_backward_data(dxg, gyg, gw, &p));
  snprintf(what, sizeof what, "conv2d backward data: %s", s->name);
  agree(dxg, dxc, tol, tol, what);
  rn_tensor *dwc = new_on(rn_cpu(), 4, sw, RN_F32, false), *dwg = new_on(GPU, 4, sw, RN_F32, false);
  CHECK_OK(KC->conv2d_backward_weight(dwc, gyc, x, &p));
  CHECK_OK(KG->conv2d_backward_weight(dwg, gyg, gx, &p));
  snprintf(what, sizeof what, "conv2d backward weight: %s", s->name);
  agree(dwg, dwc, tol * 10, tol, what); /* sums over N*H*W products: larger absolute values */
  release_all(14, x, w, bias, gx, gw, gbias, yc, yg, gyc, gyg, dxc, dxg, dwc, dwg);
}

static void convs(void) {
  conv_spec specs[] = {
    {2, 8, 17, 19, 12, 3, 3, 1, 1, 1, 1, 0, "3x3 pad 1"},
    {2, 16, 32, 32, 32, 1, 1, 2, 0, 1, 1, 0, "1x1 stride 2 (downsample)"},
    {3, 24, 10, 13, 20, 1, 1, 1, 0, 1, 1, 0, "1x1 stride 1 (forward as a cuBLAS product)"},
    {1, 3, 64, 64, 16, 7, 7, 2, 3, 1, 1, 0, "7x7 stride 2 (stem)"},
    {2, 8, 15, 15, 8, 3, 3, 1, 2, 2, 1, 0, "3x3 dilation 2"},
    {2, 8, 16, 16, 12, 3, 3, 2, 1, 1, 4, 0, "grouped (4 groups) stride 2"},
    {2, 8, 16, 16, 8, 3, 3, 1, 1, 1, 8, 0, "depthwise"},
    {1, 2, 9, 9, 3, 3, 3, 2, 1, 2, 1, 1, "output one smaller than the formula (conv-transpose crop)"},
  };
  for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) conv_case(&specs[i], 1e-4);
  /* again: now from the algorithm cache (cached descriptors and workspace size) */
  for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) conv_case(&specs[i], 1e-4);
  rn_cuda_set_tf32(true);
  conv_case(&specs[0], 2e-2);
  rn_cuda_set_tf32(false);
}

int main(void) {
  int skip = cuda_begin("linalg");
  if (skip) return skip;
  rn_cuda_set_tf32(false);
  gemms();
  gemm_strided();
  convs();
  return test_finish("cuda linalg");
}
