/* test_image_resize.c - rn_image_resize against PIL 9.4's Image.resize (bilinear with antialiasing when
 * downscaling, nearest) on uint8 RGB and gray and on float32 "F" images, for down, up, mixed and
 * non-integer factors; plane-wise resizing of [C,H,W]; bad arguments. Agreement: within 1 grey level
 * (the fixed-point arithmetic is PIL's, so the measured difference is 0); float within 1e-5. */
#include <math.h>
#include <string.h>

#include "realnet/image.h"
#include "testutil.h"

static const int sizes[][2] = {{7, 5}, {5, 9}, {29, 23}, {20, 6}, {13, 11}}; /* (W, H) as the generator */
static double worst_u8, worst_f32;

static void against_pil(const char *src, const char *filter, rn_resize_filter f, int w, int h, int is_float) {
  char rel[128];
  snprintf(rel, sizeof rel, "image/rs_%s.npy", src);
  rn_tensor *x = test_fixture(rel), *y = NULL;
  snprintf(rel, sizeof rel, "image/rs_%s_%s_%dx%d.npy", src, filter, w, h);
  rn_tensor *want = test_fixture(rel);
  if (x && want && CHECK_OK(rn_image_resize(&y, x, h, w, f))) {
    double d = test_max_abs_diff(y, want);
    if (is_float) {
      worst_f32 = fmax(worst_f32, d);
      test_check_close(y, want, 1e-5, 1e-5, rel);
    } else {
      worst_u8 = fmax(worst_u8, d);
      test_check_close(y, want, 1.0, 0, rel);
    }
    CHECK(y->dtype == x->dtype && y->ndim == x->ndim);
  }
  rn_tensor_release(y);
  rn_tensor_release(x);
  rn_tensor_release(want);
}

static void pil_cases(void) {
  static const char *srcs[] = {"rgb", "gray", "f"};
  for (int s = 0; s < 3; s++)
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
      against_pil(srcs[s], "bilinear", RN_RESIZE_BILINEAR, sizes[k][0], sizes[k][1], s == 2);
      against_pil(srcs[s], "nearest", RN_RESIZE_NEAREST, sizes[k][0], sizes[k][1], s == 2);
    }
  against_pil("big", "bilinear", RN_RESIZE_BILINEAR, 10, 7, 0);
  against_pil("big", "nearest", RN_RESIZE_NEAREST, 10, 7, 0);
  printf("max difference to PIL: uint8 %g grey levels, float32 %g\n", worst_u8, worst_f32);
}

/* rn_image_resize_planes on [2,H,W] equals resizing each plane as [H,W]. */
static void planes(void) {
  rn_tensor *f = test_fixture("image/rs_f.npy");
  if (!f) return;
  int64_t shape[3] = {2, 11, 13};
  rn_tensor *x = NULL, *y = NULL, *p0 = NULL, *r0 = NULL, *p1 = NULL, *r1 = NULL;
  CHECK_OK(rn_tensor_empty(&x, 3, shape, RN_F32, rn_cpu()));
  memcpy(rn_f32(x), rn_f32(f), sizeof(float) * 143);
  for (int i = 0; i < 143; i++) rn_f32(x)[143 + i] = -2.0f * rn_f32(f)[i] + 1.0f;
  if (CHECK_OK(rn_image_resize_planes(&y, x, 6, 17, RN_RESIZE_BILINEAR))) {
    CHECK(y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 6 && y->shape[2] == 17);
    CHECK_OK(rn_select(&p0, x, 0, 1));
    CHECK_OK(rn_image_resize(&r0, p0, 6, 17, RN_RESIZE_BILINEAR));
    CHECK_OK(rn_select(&p1, y, 0, 1));
    if (r0 && p1) CHECK(test_max_abs_diff(r0, p1) == 0);
  }
  rn_tensor_release(p0);
  rn_tensor_release(p1);
  rn_tensor_release(r0);
  rn_tensor_release(r1);
  rn_tensor_release(y);
  rn_tensor_release(x);
  rn_tensor_release(f);
}

/* A constant image stays constant at any size (weights are normalised; no drift from rounding). */
static void constant(void) {
  int64_t shape[3] = {9, 14, 3};
  rn_tensor *x = NULL, *y = NULL;
  CHECK_OK(rn_tensor_full(&x, 3, shape, RN_U8, rn_cpu(), 200));
  if (CHECK_OK(rn_image_resize(&y, x, 31, 5, RN_RESIZE_BILINEAR))) {
    const uint8_t *d = rn_tensor_data(y);
    int ok = 1;
    for (int i = 0; i < 31 * 5 * 3; i++) ok &= d[i] == 200;
    CHECK(ok);
  }
  rn_tensor_release(y);
  rn_tensor_release(x);
}

static void bad_arguments(void) {
  rn_tensor *x = test_fixture("image/rs_rgb.npy"), *y = NULL;
  if (!x) return;
  CHECK_ERR(rn_image_resize(&y, x, 0, 5, RN_RESIZE_BILINEAR), RN_ERR_ARG, "output size");
  CHECK_ERR(rn_image_resize(&y, x, 5, -3, RN_RESIZE_NEAREST), RN_ERR_ARG, "output size");
  CHECK_ERR(rn_image_resize(&y, x, 1 << 20, 1 << 20, RN_RESIZE_NEAREST), RN_ERR_ARG, "at most");
  CHECK_ERR(rn_image_resize(&y, x, 5, 5, (rn_resize_filter)7), RN_ERR_ARG, "filter");
  CHECK_ERR(rn_image_resize(&y, NULL, 5, 5, RN_RESIZE_BILINEAR), RN_ERR_ARG, NULL);
  int64_t s4[4] = {1, 2, 3, 4};
  rn_tensor *f4 = test_randn(4, s4, 3, 1.0f), *i32 = NULL;
  CHECK_ERR(rn_image_resize(&y, f4, 5, 5, RN_RESIZE_BILINEAR), RN_ERR_SHAPE, "[H,W,C]");
  CHECK_ERR(rn_image_resize_planes(&y, x, 5, 5, RN_RESIZE_BILINEAR), RN_ERR_SHAPE, "float32");
  CHECK_OK(rn_to_dtype(&i32, x, RN_I32));
  CHECK_ERR(rn_image_resize(&y, i32, 5, 5, RN_RESIZE_BILINEAR), RN_ERR_SHAPE, "uint8 or float32");
  CHECK(y == NULL);
  rn_tensor_release(i32);
  rn_tensor_release(f4);
  rn_tensor_release(x);
}

int main(void) {
  pil_cases();
  planes();
  constant();
  bad_arguments();
  return test_finish("image_resize");
}
