/* test_image.c - decoding every fixture kind (PNG 1/8/16-bit gray, gray+alpha, RGB, RGBA, palette with and
 * without tRNS, interlaced; JPEG 4:2:0, 4:4:4, gray, progressive; BMP 1/4/8-bit, 16-bit 555/565, 24-bit
 * bottom-up/top-down/core header, 32-bit BI_RGB and V4 bitfields with alpha) against the arrays PIL decodes,
 * sniffing regardless of the name, forced channels, PIL's gray conversion, to_float and ImageNet normalisation. */
#include <math.h>
#include <string.h>

#include "realnet/image.h"
#include "testutil.h"

static void fixture_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/image/%s", FIXTURES_DIR, name); }

/* Decodes image/<file> and compares it with image/<npy> (max difference tol). */
static void check_decode(const char *file, const char *npy, double tol) {
  char p[1024], rel[256];
  fixture_path(p, sizeof p, file);
  snprintf(rel, sizeof rel, "image/%s", npy);
  rn_tensor *img = NULL, *want = test_fixture(rel);
  if (CHECK_OK(rn_image_read(&img, p, NULL)) && want) {
    CHECK(img->dtype == want->dtype);
    if (!test_check_close(img, want, tol + 0.5, 0, file)) fprintf(stderr, "  (%s)\n", file); /* integers */
    if (tol > 0) printf("%s: max difference to PIL %g\n", file, test_max_abs_diff(img, want));
  }
  rn_tensor_release(img);
  rn_tensor_release(want);
}

static void decodes(void) {
  static const char *png[] = {"png_gray8", "png_gray1", "png_gray16", "png_la8", "png_rgb8", "png_rgba8",
                              "png_rgb16", "png_pal", "png_pal_trns", "png_rgb8_interlaced"};
  static const char *bmp[] = {"bmp_1bit", "bmp_gray8", "bmp_pal8", "bmp_rgb24", "bmp_4bit", "bmp_rgb24_topdown",
                              "bmp_core24", "bmp_rgb32", "bmp_rgba32_v4", "bmp_565", "bmp_555"};
  static const char *jpg[] = {"jpg_rgb420", "jpg_rgb444", "jpg_gray", "jpg_progressive"};
  char f[128], n[128];
  for (size_t i = 0; i < sizeof png / sizeof *png; i++) {
    snprintf(f, sizeof f, "%s.png", png[i]);
    snprintf(n, sizeof n, "%s.npy", png[i]);
    check_decode(f, n, 0);
  }
  for (size_t i = 0; i < sizeof bmp / sizeof *bmp; i++) {
    snprintf(f, sizeof f, "%s.bmp", bmp[i]);
    snprintf(n, sizeof n, "%s.npy", bmp[i]);
    check_decode(f, n, 0);
  }
  /* same libjpeg-turbo and settings as PIL: equal, 1 level allowed */
  for (size_t i = 0; i < sizeof jpg / sizeof *jpg; i++) {
    snprintf(f, sizeof f, "%s.jpg", jpg[i]);
    snprintf(n, sizeof n, "%s.npy", jpg[i]);
    check_decode(f, n, 1);
  }
  /* the content decides, not the name */
  check_decode("jpeg_as_png.png", "jpg_rgb420.npy", 1);
  check_decode("bmp_as_png.png", "bmp_rgb24.npy", 0);
}

static void in_memory_and_sniffing(void) {
  char p[1024];
  fixture_path(p, sizeof p, "png_rgb8.png");
  FILE *f = fopen(p, "rb");
  unsigned char buf[4096];
  size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
  if (f) fclose(f);
  CHECK(n > 8);
  CHECK(rn_image_sniff(buf, n) == RN_IMAGE_PNG);
  CHECK(rn_image_sniff("\xff\xd8\xff\xe0", 4) == RN_IMAGE_JPEG);
  CHECK(rn_image_sniff("BM", 2) == RN_IMAGE_BMP);
  CHECK(rn_image_sniff("II*\0", 4) == RN_IMAGE_TIFF);
  CHECK(rn_image_sniff("GIF89a", 6) == RN_IMAGE_UNKNOWN);
  CHECK(strcmp(rn_image_format_name(RN_IMAGE_JPEG), "jpeg") == 0);
  rn_tensor *img = NULL, *want = test_fixture("image/png_rgb8.npy");
  if (CHECK_OK(rn_image_decode(&img, buf, n, NULL, "mem.png")) && want) CHECK(test_max_abs_diff(img, want) == 0);
  rn_tensor_release(img);
  img = NULL;
  /* a required format that the bytes do not announce */
  rn_image_opts o = rn_image_opts_default();
  o.format = RN_IMAGE_JPEG;
  CHECK_ERR(rn_image_decode(&img, buf, n, &o, "mem.png"), RN_ERR_FORMAT, "not a jpeg");
  CHECK(img == NULL);
  o.format = RN_IMAGE_PNG;
  CHECK_OK(rn_image_decode(&img, buf, n, &o, "mem.png"));
  rn_tensor_release(img);
  img = NULL;
  o = rn_image_opts_default();
  o.channels = 2;
  CHECK_ERR(rn_image_decode(&img, buf, n, &o, "mem.png"), RN_ERR_ARG, "channels");
  rn_tensor_release(want);
}

/* Forced channels equal PIL's convert("L") / convert("RGB") of the stored data. */
static void forced_channels(void) {
  char p[1024];
  rn_image_opts o = rn_image_opts_default();
  rn_tensor *img = NULL, *rgb = test_fixture("image/cv_rgb.npy"), *gray = test_fixture("image/cv_gray.npy");
  rn_tensor *g = NULL, *back = NULL;
  if (rgb && gray && CHECK_OK(rn_image_to_gray(&g, rgb))) {
    CHECK(g->shape[2] == 1);
    CHECK(test_max_abs_diff(g, gray) == 0);
    if (CHECK_OK(rn_image_to_rgb(&back, g))) {
      int64_t idx[3] = {2, 3, 1}, idx0[3] = {2, 3, 0};
      double a, b;
      rn_tensor_get(back, idx, &a);
      rn_tensor_get(g, idx0, &b);
      CHECK(back->shape[2] == 3 && a == b);
    }
  }
  rn_tensor_release(g);
  rn_tensor_release(back);

  /* RGBA PNG forced to gray: PIL's L of the RGB part */
  fixture_path(p, sizeof p, "png_rgba8.png");
  o.channels = 1;
  rn_tensor *rgba = test_fixture("image/png_rgba8.npy");
  if (CHECK_OK(rn_image_read(&img, p, &o)) && rgba) {
    CHECK(img->ndim == 3 && img->shape[2] == 1);
    int64_t i0[3] = {1, 2, 0}, ir[3] = {1, 2, 0}, ig[3] = {1, 2, 1}, ib[3] = {1, 2, 2};
    double v, r, gg, b;
    rn_tensor_get(img, i0, &v);
    rn_tensor_get(rgba, ir, &r);
    rn_tensor_get(rgba, ig, &gg);
    rn_tensor_get(rgba, ib, &b);
    CHECK(v == (double)(((long)r * 19595 + (long)gg * 38470 + (long)b * 7471 + 0x8000) >> 16));
  }
  rn_tensor_release(img);
  img = NULL;
  /* gray forced to RGB; 16-bit gray forced to RGB stays int32 */
  o.channels = 3;
  fixture_path(p, sizeof p, "png_gray16.png");
  if (CHECK_OK(rn_image_read(&img, p, &o))) CHECK(img->dtype == RN_I32 && img->shape[2] == 3);
  rn_tensor_release(img);
  img = NULL;
  fixture_path(p, sizeof p, "jpg_gray.jpg");
  if (CHECK_OK(rn_image_read(&img, p, &o))) CHECK(img->dtype == RN_U8 && img->shape[2] == 3);
  rn_tensor_release(img);
  rn_tensor_release(rgba);
  rn_tensor_release(rgb);
  rn_tensor_release(gray);
}

static void to_float_and_normalize(void) {
  rn_tensor *rgb = test_fixture("image/cv_rgb.npy"), *f = NULL, *x = NULL;
  if (!rgb) return;
  if (CHECK_OK(rn_image_to_float(&f, rgb))) {
    CHECK(f->dtype == RN_F32 && f->ndim == 3 && f->shape[0] == 3 && f->shape[1] == 6 && f->shape[2] == 8);
    int64_t a[3] = {4, 5, 2}, b[3] = {2, 4, 5};
    double u, v;
    rn_tensor_get(rgb, a, &u);
    rn_tensor_get(f, b, &v);
    CHECK_NEAR(v, u / 255.0, 1e-7);
  }
  static const double mean[3] = {0.485, 0.456, 0.406}, sd[3] = {0.229, 0.224, 0.225};
  if (CHECK_OK(rn_image_normalize_imagenet(&x, rgb))) {
    double worst = 0;
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < 6; y++)
        for (int xx = 0; xx < 8; xx++) {
          int64_t a[3] = {y, xx, c}, b[3] = {c, y, xx};
          double u, v;
          rn_tensor_get(rgb, a, &u);
          rn_tensor_get(x, b, &v);
          worst = fmax(worst, fabs(v - (u / 255.0 - mean[c]) / sd[c]));
        }
    CHECK(worst < 1e-5);
  }
  rn_tensor_release(x);
  x = NULL;
  /* float [3,H,W] input gives the same */
  rn_tensor *x2 = NULL;
  if (f && CHECK_OK(rn_image_normalize_imagenet(&x2, f)) && CHECK_OK(rn_image_normalize_imagenet(&x, rgb)))
    CHECK(test_max_abs_diff(x, x2) == 0);
  rn_tensor_release(x2);
  rn_tensor_release(x);
  x = NULL;
  /* gray replicated */
  rn_tensor *g = test_fixture("image/cv_gray.npy");
  if (g && CHECK_OK(rn_image_normalize_imagenet(&x, g))) CHECK(x->shape[0] == 3);
  rn_tensor_release(x);
  x = NULL;
  /* 16-bit to float divides by 65535 */
  rn_tensor *g16 = test_fixture("image/png_gray16.npy"), *f16 = NULL;
  if (g16 && CHECK_OK(rn_image_to_float(&f16, g16))) {
    int64_t a[3] = {3, 4, 0}, b[3] = {0, 3, 4};
    double u, v;
    rn_tensor_get(g16, a, &u);
    rn_tensor_get(f16, b, &v);
    CHECK_NEAR(v, u / 65535.0, 1e-7);
  }
  /* bad arguments */
  CHECK_ERR(rn_image_to_float(&x, NULL), RN_ERR_ARG, NULL);
  CHECK_ERR(rn_image_normalize_imagenet(&x, f16), RN_ERR_SHAPE, "[3,H,W]");
  int64_t s4[4] = {1, 2, 3, 3};
  rn_tensor *bad = test_randn(4, s4, 1, 1.0f);
  CHECK_ERR(rn_image_to_float(&x, bad), RN_ERR_SHAPE, "image_to_float");
  CHECK_ERR(rn_image_to_gray(&x, bad), RN_ERR_SHAPE, "image_to_gray");
  rn_tensor_release(bad);
  rn_tensor_release(f16);
  rn_tensor_release(g16);
  rn_tensor_release(g);
  rn_tensor_release(f);
  rn_tensor_release(rgb);
}

int main(void) {
  decodes();
  in_memory_and_sniffing();
  forced_channels();
  to_float_and_normalize();
  return test_finish("image");
}
