/* test_cuda_bf16.c - the bfloat16 autocast (rn_cuda_set_bf16) of cuBLAS products and cuDNN convolutions against
 * the CPU computing the same thing: inputs rounded to bfloat16 by the reference rounding (tests/c/
 * bf16_reference.h, itself checked in CI by test_bf16_reference), products summed in float32, and for cuDNN's
 * convolutions the output rounded to bfloat16 too.
 *   - conversion: a 1x1 convolution with padding (so cuDNN, not cuBLAS) and an identity weight returns each input
 *     rounded, ties and all: exact equality;
 *   - products: 1e-3 abs + 1e-3 rel, 3e-3 for k = 1024 (float32 sums in another order, the tensor cores' own
 *     accumulation; bfloat16 rounding itself is off by ~3e-2 and more on these sizes). cuBLAS's FAST_16BF
 *     compute type allows the rounding rather than promising it: on sizes whose rows are multiples of 8 (what
 *     the tensor cores need) each case also checks that the result is at least 1e-2 from the float32 product,
 *     i.e. the mode is on; on odd sizes a float32 kernel's result (1e-4 of the float32 product) passes too;
 *   - convolutions, all three directions: one bfloat16 step of the output, 8e-3 rel (2^-7), + 1e-3 abs
 *     (1e-2 for the weight gradient's larger sums): two float32 sums that differ in the last bits may round to
 *     neighbouring bfloat16 values. A direction cuDNN has no bfloat16 algorithm for runs in float32 (counted by
 *     rn_cuda_bf16_fallbacks, which the test reads around each call) and is held to the float32 result (1e-4,
 *     1e-3 for the weight gradient); the conversion case and the 64-channel 3x3 must not fall back. */
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

/* max over elements of |gpu - cpu| / (atol + rtol |cpu|): <= 1 when they agree; reports nothing */
static double worst(const rn_tensor *gpu, const rn_tensor *cpu, double atol, double rtol) {
  rn_tensor *h = NULL;
  CHECK_OK(rn_to_device(&h, (rn_tensor *)gpu, rn_cpu()));
  const float *g = rn_f32(h), *c = rn_f32((rn_tensor *)cpu);
  double w = 0;
  for (int64_t i = 0, n = rn_tensor_numel(cpu); i < n; i++) {
    double r = fabs((double)g[i] - c[i]) / (atol + rtol * fabs((double)c[i]));
    if (!(r <= w)) w = r; /* NaN counts as the worst */
  }
  rn_tensor_release(h);
  return w;
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
  uint64_t f0 = rn_cuda_bf16_fallbacks();
  CHECK_OK(KG->conv2d(yg, gx, gw, NULL, &c));
  if (!CHECK(rn_cuda_bf16_fallbacks() == f0))
    fprintf(stderr, "  the 8-channel 1x1 convolution ran in float32: cuDNN offered no bfloat16 algorithm\n");
  agree_exact(yg, yc, "1x1 identity convolution with padding: each input rounded to bfloat16 (ties to even)");
  release_all(7, x, w, xr, yc, yg, gx, gw);
}

/* aligned: every row a multiple of 8 elements, so cuBLAS can use its bfloat16 tensor-core kernels and must */
static void gemm_case(int64_t B, int64_t m, int64_t n, int64_t k, bool ta, bool tb, double tol, const char *name) {
  bool aligned = m % 8 == 0 && n % 8 == 0 && k % 8 == 0;
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
  if (aligned) {
    agree(yg, ref, tol, tol, what);
    differs_from_f32(yg, f32, 1e-2, what);
  } else if (worst(yg, f32, 1e-4, 1e-4) <= 1) {
    printf("  %s: cuBLAS ran a float32 kernel (allowed on unaligned sizes)\n", what);
  } else {
    agree(yg, ref, tol, tol, what);
  }
  release_all(10, a, b, ar, br, ga, gb, ref, f32, yg, NULL);
}

typedef struct { int64_t n, c, h, w, o, kh, kw; int stride, pad, dil, groups; const char *name; } conv_spec;

/* One direction's GPU result: held to the bfloat16 reference, or to the float32 one when the call ran in float32
 * (`fell_back`), which `must_bf16` forbids. */
static void conv_result(const rn_tensor *g, const rn_tensor *bf16_ref, const rn_tensor *f32_ref, double atol,
                        bool fell_back, bool must_bf16, const char *what) {
  if (!fell_back) {
    agree(g, bf16_ref, atol, 8e-3, what);
    return;
  }
  printf("  %s: ran in float32 (cuDNN has no bfloat16 algorithm for it)\n", what);
  if (!CHECK(!must_bf16)) fprintf(stderr, "  %s must run in bfloat16\n", what);
  agree(g, f32_ref, atol / 10, 1e-4, what);
}

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

  /* each direction: the bfloat16 reference (rounded inputs and output), the float32 one, the GPU result */
  rn_tensor *yc = new_on(rn_cpu(), 4, sy, RN_F32, false), *yf = new_on(rn_cpu(), 4, sy, RN_F32, false);
  rn_tensor *yg = new_on(GPU, 4, sy, RN_F32, false);
  CHECK_OK(KC->conv2d(yc, xr, wr, NULL, &p));
  CHECK_OK(KC->conv2d(yf, x, w, NULL, &p));
  uint64_t f0 = rn_cuda_bf16_fallbacks();
  CHECK_OK(KG->conv2d(yg, gx, gw, NULL, &p));
  bool fell = rn_cuda_bf16_fallbacks() != f0;
  bf16_round_(yc);
  snprintf(what, sizeof what, "bf16 conv2d forward: %s", s->name);
  conv_result(yg, yc, yf, 1e-3, fell, check_gap, what);
  if (check_gap && !fell) differs_from_f32(yg, yf, 1e-3, what);

  rn_tensor *dxc = new_on(rn_cpu(), 4, sx, RN_F32, false), *dxf = new_on(rn_cpu(), 4, sx, RN_F32, false);
  rn_tensor *dxg = new_on(GPU, 4, sx, RN_F32, false);
  CHECK_OK(KC->conv2d_backward_data(dxc, gyr, wr, &p));
  CHECK_OK(KC->conv2d_backward_data(dxf, gy, w, &p));
  f0 = rn_cuda_bf16_fallbacks();
  CHECK_OK(KG->conv2d_backward_data(dxg, ggy, gw, &p));
  fell = rn_cuda_bf16_fallbacks() != f0;
  bf16_round_(dxc);
  snprintf(what, sizeof what, "bf16 conv2d backward data: %s", s->name);
  conv_result(dxg, dxc, dxf, 1e-3, fell, check_gap, what);

  rn_tensor *dwc = new_on(rn_cpu(), 4, sw, RN_F32, false), *dwf = new_on(rn_cpu(), 4, sw, RN_F32, false);
  rn_tensor *dwg = new_on(GPU, 4, sw, RN_F32, false);
  CHECK_OK(KC->conv2d_backward_weight(dwc, gyr, xr, &p));
  CHECK_OK(KC->conv2d_backward_weight(dwf, gy, x, &p));
  f0 = rn_cuda_bf16_fallbacks();
  CHECK_OK(KG->conv2d_backward_weight(dwg, ggy, gx, &p));
  fell = rn_cuda_bf16_fallbacks() != f0;
  bf16_round_(dwc);
  snprintf(what, sizeof what, "bf16 conv2d backward weight: %s", s->name);
  conv_result(dwg, dwc, dwf, 1e-2, fell, check_gap, what);
  release_all(9, x, w, gy, xr, wr, gyr, gx, gw, ggy);
  release_all(9, yc, yf, yg, dxc, dxf, dxg, dwc, dwf, dwg);
}

int main(void) {
  int skip = cuda_begin("bf16");
  if (skip) return skip;
  rn_cuda_set_tf32(false);
  rn_cuda_set_bf16(true);
  conversion();
  for (int t = 0; t < 4; t++) gemm_case(3, 37, 29, 300, t & 1, t >> 1, 1e-3, "batched, odd sizes");
  for (int t = 0; t < 4; t++) gemm_case(3, 40, 24, 296, t & 1, t >> 1, 1e-3, "batched");
  gemm_case(1, 256, 512, 1024, false, false, 3e-3, "large");
  conv_spec specs[] = {
    {2, 8, 17, 19, 12, 3, 3, 1, 1, 1, 1, "3x3 pad 1"},
    {2, 64, 16, 16, 64, 3, 3, 1, 1, 1, 1, "3x3, 64 channels"},
    {2, 16, 32, 32, 32, 1, 1, 2, 0, 1, 1, "1x1 stride 2 (downsample)"},
    {3, 24, 8, 13, 24, 1, 1, 1, 0, 1, 1, "1x1 stride 1 (a cuBLAS product: float32 output)"},
    {1, 3, 64, 64, 16, 7, 7, 2, 3, 1, 1, "7x7 stride 2 (stem)"},
    {2, 8, 15, 15, 8, 3, 3, 1, 2, 2, 1, "3x3 dilation 2"},
    {2, 8, 16, 16, 12, 3, 3, 2, 1, 1, 4, "grouped (4 groups) stride 2"},
    {2, 8, 16, 16, 8, 3, 3, 1, 1, 1, 8, "depthwise"},
  };
  for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) conv_case(&specs[i], i == 1);
  for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) conv_case(&specs[i], false); /* from the cache */
  rn_cuda_set_tf32(true); /* bfloat16 takes precedence: the same checks hold */
  conv_case(&specs[1], true);
  gemm_case(1, 64, 64, 320, false, false, 1e-3, "with TF32 also on");
  rn_cuda_set_tf32(false);
  rn_cuda_set_bf16(false);
  return test_finish("cuda bf16");
}
