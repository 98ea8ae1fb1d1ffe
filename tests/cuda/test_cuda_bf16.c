/* test_cuda_bf16.c - the bfloat16 autocast (rn_cuda_set_bf16) of cuBLAS products and cuDNN convolutions against
 * the CPU computing the same thing: inputs rounded to bfloat16 by the reference rounding (tests/c/
 * bf16_reference.h, itself checked in CI by test_bf16_reference), products summed in float32, and for cuDNN's
 * convolutions the output rounded to bfloat16 too.
 *   - conversion: a 1x1 convolution with padding (so cuDNN, not cuBLAS) and an identity weight returns each input
 *     rounded, ties and all: exact equality;
 *   - products: 1e-3 abs + 1e-3 rel, 3e-3 for k = 1024 (float32 sums in another order, the tensor cores' own
 *     accumulation; bfloat16 rounding itself is off by ~3e-2 and more on these sizes, and each case also checks
 *     that the result is at least 1e-2 from the float32 product, i.e. the mode is on);
 *   - convolutions, all three directions: one bfloat16 step of the output, 8e-3 rel (2^-7), + 1e-3 abs
 *     (1e-2 for the weight gradient's larger sums): two float32 sums that differ in the last bits may round to
 *     neighbouring bfloat16 values. */
#include "../c/bf16_reference.h"
#include "cuda_check.h"

static rn_tensor *rounded(const rn_tensor *t) {
  rn_tensor *c = NULL;
  CHECK_OK(rn_clone(&c, (rn_tensor *)t));
  bf16_round_(c);
  return c;
}

static double max_diff_to(const rn_tensor *gpu, const rn_tensor *cpu) {
  rn_tensor *h = NULL;
  CHECK_OK(rn_to_device(&h, (rn_tensor *)gpu, rn_cpu()));
  double d = test_max_abs_diff(h, cpu);
  rn_tensor_release(h);
  return d;
}

/* The GPU result is further from the float32 result than bfloat16 rounding makes it, at least `min_gap`. */
static void differs_from_f32(const rn_tensor *gpu, const rn_tensor *f32, double min_gap, const char *what) {
  double d = max_diff_to(gpu, f32);
  if (!CHECK(d >= min_gap))
    fprintf(stderr, "  %s: max |bf16 - float32| = %.3g < %.3g: is the autocast on?\n", what, d, min_gap);
}

static void conversion(void) {
  /* 8 channels (what tensor-core kernels want) and an identity weight: output channel o is input channel o */
  int64_t sx[4] = {1, 8, 8, 8}, sw[4] = {8, 8, 1, 1}, sy[4] = {1, 8, 10, 10};
  rn_tensor *x = test_randn(4, sx, 5, 1.0f), *w = new_on(rn_cpu(), 4, sw, RN_F32, true);
  float *p = rn_f32(x);
  for (int i = 0; i < 512; i++) p[i] *= powf(10.0f, (float)(i % 9) - 4.0f); /* 1e-4 .. 1e4 */
  const uint32_t ties[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0xbf818000u, 0x42c78000u, 0x42c68000u,
                           0x3f808001u, 0x3f807fffu};
  for (int i = 0; i < 8; i++) memcpy(&p[100 + i], &ties[i], 4);
  for (int o = 0; o < 8; o++) rn_f32(w)[o * 8 + o] = 1.0f;
  rn_conv_params c = rn_conv_params_default();
  c.pad[0] = c.pad[1] = 1;
  rn_tensor *xr = rounded(x), *yc = new_on(rn_cpu(), 4, sy, RN_F32, false), *yg = new_on(GPU, 4, sy, RN_F32, false);
  rn_tensor *gx = to_gpu(x), *gw = to_gpu(w);
  CHECK_OK(KC->conv2d(yc, xr, w, NULL, &c));
  CHECK_OK(KG->conv2d(yg, gx, gw, NULL, &c));
  agree_exact(yg, yc, "1x1 identity convolution with padding: each input rounded to bfloat16 (ties to even)");
  release_all(7, x, w, xr, yc, yg, gx, gw);
}

static void gemm_case(int64_t B, int64_t m, int64_t n, int64_t k, bool ta, bool tb, double tol, const char *name) {
  int64_t sa[3] = {B, ta ? k : m, ta ? m : k}, sb[3] = {B, tb ? n : k, tb ? k : n}, sy[3] = {B, m, n};
  rn_tensor *a = test_randn(3, sa, 1, 1.0f), *b = test_randn(3, sb, 2, 1.0f);
  rn_tensor *ar = rounded(a), *br = rounded(b), *ga = to_gpu(a), *gb = to_gpu(b);
  rn_tensor *ref = new_on(rn_cpu(), 3, sy, RN_F32, false), *f32 = new_on(rn_cpu(), 3, sy, RN_F32, false);
  rn_tensor *yg = new_on(GPU, 3, sy, RN_F32, false);
  CHECK_OK(KC->gemm(ref, ar, br, ta, tb, 1.0f, 0.0f));
  CHECK_OK(KC->gemm(f32, a, b, ta, tb, 1.0f, 0.0f));
  CHECK_OK(KG->gemm(yg, ga, gb, ta, tb, 1.0f, 0.0f));
  char what[160];
  snprintf(what, sizeof what, "bf16 gemm %s (B=%lld m=%lld n=%lld k=%lld ta=%d tb=%d)", name, (long long)B,
           (long long)m, (long long)n, (long long)k, ta, tb);
  agree(yg, ref, tol, tol, what);
  differs_from_f32(yg, f32, 1e-2, what);
  release_all(10, a, b, ar, br, ga, gb, ref, f32, yg, NULL);
}

typedef struct { int64_t n, c, h, w, o, kh, kw; int stride, pad, dil, groups; const char *name; } conv_spec;

static void conv_case(const conv_spec *s, bool check_gap) {
  rn_conv_params p = rn_conv_params_default();
  p.stride[0] = p.stride[1] = s->stride;
  p.pad[0] = p.pad[1] = s->pad;
  p.dilation[0] = p.dilation[1] = s->dil;
  p.groups = s->groups;
  int64_t oh = (s->h + 2 * s->pad - s->dil * (s->kh - 1) - 1) / s->stride + 1;
  int64_t ow = (s->w + 2 * s->pad - s->dil * (s->kw - 1) - 1) / s->stride + 1;
  int64_t sx[4] = {s->n, s->c, s->h, s->w}, sw[4] = {s->o, s->c / s->groups, s->kh, s->kw}, sy[4] = {s->n, s->o, oh, ow};
  rn_tensor *x = test_randn(4, sx, 1, 1.0f), *w = test_randn(4, sw, 2, 0.2f), *gy = test_randn(4, sy, 4, 1.0f);
  rn_tensor *xr = rounded(x), *wr = rounded(w), *gyr = rounded(gy);
  rn_tensor *gx = to_gpu(x), *gw = to_gpu(w), *ggy = to_gpu(gy);
  char what[160];

  rn_tensor *yc = new_on(rn_cpu(), 4, sy, RN_F32, false), *yg = new_on(GPU, 4, sy, RN_F32, false);
  CHECK_OK(KC->conv2d(yc, xr, wr, NULL, &p));
  CHECK_OK(KG->conv2d(yg, gx, gw, NULL, &p));
  bf16_round_(yc);
  snprintf(what, sizeof what, "bf16 conv2d forward: %s", s->name);
  agree(yg, yc, 1e-3, 8e-3, what);
  if (check_gap) {
    rn_tensor *f32 = new_on(rn_cpu(), 4, sy, RN_F32, false);
    CHECK_OK(KC->conv2d(f32, x, w, NULL, &p));
    differs_from_f32(yg, f32, 1e-3, what);
    rn_tensor_release(f32);
  }

  rn_tensor *dxc = new_on(rn_cpu(), 4, sx, RN_F32, false), *dxg = new_on(GPU, 4, sx, RN_F32, false);
  CHECK_OK(KC->conv2d_backward_data(dxc, gyr, wr, &p));
  CHECK_OK(KG->conv2d_backward_data(dxg, ggy, gw, &p));
  bf16_round_(dxc);
  snprintf(what, sizeof what, "bf16 conv2d backward data: %s", s->name);
  agree(dxg, dxc, 1e-3, 8e-3, what);

  rn_tensor *dwc = new_on(rn_cpu(), 4, sw, RN_F32, false), *dwg = new_on(GPU, 4, sw, RN_F32, false);
  CHECK_OK(KC->conv2d_backward_weight(dwc, gyr, xr, &p));
  CHECK_OK(KG->conv2d_backward_weight(dwg, ggy, gx, &p));
  bf16_round_(dwc);
  snprintf(what, sizeof what, "bf16 conv2d backward weight: %s", s->name);
  agree(dwg, dwc, 1e-2, 8e-3, what);
  release_all(15, x, w, gy, xr, wr, gyr, gx, gw, ggy, yc, yg, dxc, dxg, dwc, dwg);
}

int main(void) {
  int skip = cuda_begin("bf16");
  if (skip) return skip;
  rn_cuda_set_tf32(false);
  rn_cuda_set_bf16(true);
  conversion();
  for (int t = 0; t < 4; t++) gemm_case(3, 37, 29, 300, t & 1, t >> 1, 1e-3, "batched");
  gemm_case(1, 256, 512, 1024, false, false, 3e-3, "large");
  conv_spec specs[] = {
    {2, 8, 17, 19, 12, 3, 3, 1, 1, 1, 1, "3x3 pad 1"},
    {2, 64, 16, 16, 64, 3, 3, 1, 1, 1, 1, "3x3, 64 channels"},
    {2, 16, 32, 32, 32, 1, 1, 2, 0, 1, 1, "1x1 stride 2 (downsample)"},
    {3, 24, 10, 13, 20, 1, 1, 1, 0, 1, 1, "1x1 stride 1 (a cuBLAS product: float32 output)"},
    {1, 3, 64, 64, 16, 7, 7, 2, 3, 1, 1, "7x7 stride 2 (stem)"},
    {2, 8, 15, 15, 8, 3, 3, 1, 2, 2, 1, "3x3 dilation 2"},
    {2, 8, 16, 16, 12, 3, 3, 2, 1, 1, 4, "grouped (4 groups) stride 2"},
    {2, 8, 16, 16, 8, 3, 3, 1, 1, 1, 8, "depthwise"},
  };
  for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) conv_case(&specs[i], i < 2);
  for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) conv_case(&specs[i], false); /* from the cache */
  rn_cuda_set_tf32(true); /* bfloat16 takes precedence: the same checks hold */
  conv_case(&specs[0], true);
  gemm_case(1, 64, 64, 300, false, false, 1e-3, "with TF32 also on");
  rn_cuda_set_tf32(false);
  rn_cuda_set_bf16(false);
  return test_finish("cuda bf16");
}
