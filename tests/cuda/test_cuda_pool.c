/* test_cuda_pool.c - max pool (argmax included, ties and NaN), average pool (count_include_pad both ways, ceil
 * mode windows), adaptive average pool (non-dividing bins and global), nearest and bilinear upsampling (both
 * align_corners settings, integer and fractional scales, down-sampling), each forward and backward.
 * Tolerances: max pool values and argmax exact; averages and upsampling 1e-6 abs + 1e-5 rel; backward kernels
 * 1e-5 abs + 1e-5 rel (atomic adds of overlapping windows sum in another order). */
#include "cuda_check.h"

static rn_pool_params pool(int k, int s, int p, bool ceil_mode, bool include_pad) {
  rn_pool_params q = {{k, k}, {s, s}, {p, p}, ceil_mode, include_pad};
  return q;
}

/* output size per PyTorch (ceil mode: the last window must start inside the input or left padding) */
static int64_t pool_out(int64_t in, int k, int s, int p, bool ceil_mode) {
  int64_t num = in + 2 * p - k;
  int64_t o = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
  if (ceil_mode && (o - 1) * s >= in + p) o--;
  return o;
}

static void max_pools(void) {
  int64_t sx[4] = {2, 3, 13, 12};
  rn_tensor *x = rand_levels(4, sx, 4, 1); /* ties inside windows */
  rn_f32(x)[5] = NAN;
  rn_tensor *gx = to_gpu(x);
  rn_pool_params ps[] = {pool(3, 2, 1, false, false), pool(2, 2, 0, true, false), pool(3, 1, 1, false, false)};
  for (size_t i = 0; i < sizeof ps / sizeof *ps; i++) {
    rn_pool_params *p = &ps[i];
    int64_t sy[4] = {2, 3, pool_out(13, p->kernel[0], p->stride[0], p->pad[0], p->ceil_mode),
                     pool_out(12, p->kernel[1], p->stride[1], p->pad[1], p->ceil_mode)};
    rn_tensor *yc = new_on(rn_cpu(), 4, sy, RN_F32, false), *yg = new_on(GPU, 4, sy, RN_F32, false);
    rn_tensor *ac = new_on(rn_cpu(), 4, sy, RN_I64, false), *ag = new_on(GPU, 4, sy, RN_I64, false);
    CHECK_OK(KC->max_pool2d(yc, ac, x, p));
    CHECK_OK(KG->max_pool2d(yg, ag, gx, p));
    agree_exact(yg, yc, "max_pool2d values");
    agree_exact(ag, ac, "max_pool2d argmax");
    rn_tensor *gy = test_randn(4, sy, 2, 1.0f), *ggy = to_gpu(gy), *acg = to_gpu(ac);
    rn_tensor *dc = new_on(rn_cpu(), 4, sx, RN_F32, true), *dg = new_on(GPU, 4, sx, RN_F32, true);
    CHECK_OK(KC->max_pool2d_backward(dc, gy, ac));
    CHECK_OK(KG->max_pool2d_backward(dg, ggy, acg));
    agree(dg, dc, 1e-5, 1e-5, "max_pool2d backward");
    release_all(9, yc, yg, ac, ag, gy, ggy, acg, dc, dg);
  }
  release_all(2, x, gx);
}

static void avg_pools(void) {
  int64_t sx[4] = {2, 3, 13, 12};
  rn_tensor *x = test_randn(4, sx, 3, 1.0f), *gx = to_gpu(x);
  rn_pool_params ps[] = {pool(3, 2, 1, false, true), pool(3, 2, 1, false, false), pool(2, 2, 0, true, true),
                         pool(3, 3, 1, true, false)};
  for (size_t i = 0; i < sizeof ps / sizeof *ps; i++) {
    rn_pool_params *p = &ps[i];
    int64_t sy[4] = {2, 3, pool_out(13, p->kernel[0], p->stride[0], p->pad[0], p->ceil_mode),
                     pool_out(12, p->kernel[1], p->stride[1], p->pad[1], p->ceil_mode)};
    rn_tensor *yc = new_on(rn_cpu(), 4, sy, RN_F32, false), *yg = new_on(GPU, 4, sy, RN_F32, false);
    CHECK_OK(KC->avg_pool2d(yc, x, p));
    CHECK_OK(KG->avg_pool2d(yg, gx, p));
    char what[96];
    snprintf(what, sizeof what, "avg_pool2d (case %zu)", i);
    agree(yg, yc, 1e-6, 1e-5, what);
    rn_tensor *gy = test_randn(4, sy, 4, 1.0f), *ggy = to_gpu(gy);
    rn_tensor *dc = new_on(rn_cpu(), 4, sx, RN_F32, true), *dg = new_on(GPU, 4, sx, RN_F32, true);
    CHECK_OK(KC->avg_pool2d_backward(dc, gy, p));
    CHECK_OK(KG->avg_pool2d_backward(dg, ggy, p));
    snprintf(what, sizeof what, "avg_pool2d backward (case %zu)", i);
    agree(dg, dc, 1e-5, 1e-5, what);
    release_all(6, yc, yg, gy, ggy, dc, dg);
  }
  release_all(2, x, gx);
}

static void adaptive_case(const int64_t *sx, int64_t oh, int64_t ow, const char *name) {
  rn_tensor *x = test_randn(4, sx, 5, 1.0f), *gx = to_gpu(x);
  int64_t sy[4] = {sx[0], sx[1], oh, ow};
  rn_tensor *yc = new_on(rn_cpu(), 4, sy, RN_F32, false), *yg = new_on(GPU, 4, sy, RN_F32, false);
  CHECK_OK(KC->adaptive_avg_pool2d(yc, x));
  CHECK_OK(KG->adaptive_avg_pool2d(yg, gx));
  char what[96];
  snprintf(what, sizeof what, "adaptive_avg_pool2d %s", name);
  agree(yg, yc, 1e-6, 1e-5, what);
  rn_tensor *gy = test_randn(4, sy, 6, 1.0f), *ggy = to_gpu(gy);
  rn_tensor *dc = new_on(rn_cpu(), 4, sx, RN_F32, true), *dg = new_on(GPU, 4, sx, RN_F32, true);
  CHECK_OK(KC->adaptive_avg_pool2d_backward(dc, gy));
  CHECK_OK(KG->adaptive_avg_pool2d_backward(dg, ggy));
  snprintf(what, sizeof what, "adaptive_avg_pool2d backward %s", name);
  agree(dg, dc, 1e-6, 1e-5, what);
  release_all(8, x, gx, yc, yg, gy, ggy, dc, dg);
}

static void upsample_case(const int64_t *sx, int64_t oh, int64_t ow, rn_upsample_mode mode, bool align,
                          const char *name) {
  rn_tensor *x = test_randn(4, sx, 7, 1.0f), *gx = to_gpu(x);
  int64_t sy[4] = {sx[0], sx[1], oh, ow};
  rn_tensor *yc = new_on(rn_cpu(), 4, sy, RN_F32, false), *yg = new_on(GPU, 4, sy, RN_F32, false);
  CHECK_OK(KC->upsample(yc, x, mode, align));
  CHECK_OK(KG->upsample(yg, gx, mode, align));
  char what[128];
  snprintf(what, sizeof what, "upsample %s (%s, align_corners %d)", name, mode ? "bilinear" : "nearest", align);
  agree(yg, yc, 1e-6, 1e-5, what);
  rn_tensor *gy = test_randn(4, sy, 8, 1.0f), *ggy = to_gpu(gy);
  rn_tensor *dc = new_on(rn_cpu(), 4, sx, RN_F32, true), *dg = new_on(GPU, 4, sx, RN_F32, true);
  CHECK_OK(KC->upsample_backward(dc, gy, mode, align));
  CHECK_OK(KG->upsample_backward(dg, ggy, mode, align));
  snprintf(what, sizeof what, "upsample backward %s (%s, align_corners %d)", name, mode ? "bilinear" : "nearest", align);
  agree(dg, dc, 1e-5, 1e-5, what);
  release_all(8, x, gx, yc, yg, gy, ggy, dc, dg);
}

int main(void) {
  int skip = cuda_begin("pool");
  if (skip) return skip;
  max_pools();
  avg_pools();
  int64_t s1[4] = {2, 4, 7, 10}, s2[4] = {3, 5, 32, 32};
  adaptive_case(s1, 3, 4, "7x10 -> 3x4 (overlapping bins)");
  adaptive_case(s2, 1, 1, "32x32 -> 1x1 (global, block per plane)");
  adaptive_case(s1, 7, 10, "identity");
  int64_t u[4] = {2, 3, 8, 11};
  for (int mode = 0; mode < 2; mode++)
    for (int align = 0; align < (mode ? 2 : 1); align++) {
      upsample_case(u, 16, 22, (rn_upsample_mode)mode, align, "x2");
      upsample_case(u, 13, 29, (rn_upsample_mode)mode, align, "fractional up");
      upsample_case(u, 5, 4, (rn_upsample_mode)mode, align, "down");
    }
  return test_finish("cuda pool");
}
