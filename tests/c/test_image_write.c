/* test_image_write.c - PNG writing (8-bit gray/gray+alpha/RGB/RGBA, 16-bit gray) and float32 TIFF round
 * trips, reading a TIFF written by PIL, atomic replacement (no temporary left behind, a failed write keeps
 * the old file), the viridis table against published anchor values, and the four-panel overlay. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "realnet/image.h"
#include "testutil.h"

static char dir[] = "/tmp/rn_image_write_XXXXXX";

static const char *in_dir(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", dir, name);
  return buf;
}

static int files_in_dir(void) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  if (d) closedir(d);
  return n;
}

static void png_round_trips(void) {
  static const char *srcs[] = {"png_gray8", "png_la8", "png_rgb8", "png_rgba8", "png_gray16"};
  char p[512], rel[128];
  for (size_t i = 0; i < sizeof srcs / sizeof *srcs; i++) {
    snprintf(rel, sizeof rel, "image/%s.npy", srcs[i]);
    rn_tensor *x = test_fixture(rel), *back = NULL;
    if (!x) continue;
    snprintf(rel, sizeof rel, "%s_out.png", srcs[i]);
    if (CHECK_OK(rn_image_write_png(in_dir(p, sizeof p, rel), x)) && CHECK_OK(rn_image_read(&back, p, NULL))) {
      CHECK(back->dtype == x->dtype);
      test_check_close(back, x, 0.5, 0, rel);
    }
    rn_tensor_release(back);
    rn_tensor_release(x);
  }
  /* [H,W] uint8 is gray; through rn_image_write by extension */
  int64_t s2[2] = {3, 5};
  rn_tensor *g = NULL, *back = NULL;
  CHECK_OK(rn_tensor_full(&g, 2, s2, RN_U8, rn_cpu(), 77));
  if (CHECK_OK(rn_image_write(in_dir(p, sizeof p, "flat.PNG"), g)) && CHECK_OK(rn_image_read(&back, p, NULL)))
    CHECK(back->ndim == 3 && back->shape[2] == 1 && ((uint8_t *)rn_tensor_data(back))[14] == 77);
  rn_tensor_release(back);
  /* errors */
  int64_t s3[3] = {3, 5, 2};
  rn_tensor *i2 = NULL, *f = test_randn(2, s2, 1, 1.0f);
  CHECK_OK(rn_tensor_zeros(&i2, 3, s3, RN_I32, rn_cpu()));
  CHECK_ERR(rn_image_write_png(in_dir(p, sizeof p, "x.png"), i2), RN_ERR_SHAPE, "1 channel");
  CHECK_ERR(rn_image_write_png(in_dir(p, sizeof p, "x.png"), f), RN_ERR_SHAPE, "float32");
  CHECK_ERR(rn_image_write(in_dir(p, sizeof p, "x.jpg"), g), RN_ERR_ARG, "extension");
  CHECK_ERR(rn_image_write_png("/nonexistent_dir_rn/x.png", g), RN_ERR_IO, "/nonexistent_dir_rn/x.png");
  rn_tensor_release(i2);
  rn_tensor_release(f);
  rn_tensor_release(g);
}

static void atomic(void) {
  char p[512];
  int64_t s2[2] = {4, 4};
  rn_tensor *ok16 = NULL, *bad16 = NULL, *back = NULL;
  CHECK_OK(rn_tensor_full(&ok16, 2, s2, RN_I32, rn_cpu(), 40000));
  CHECK_OK(rn_tensor_full(&bad16, 2, s2, RN_I32, rn_cpu(), 70000));
  in_dir(p, sizeof p, "keep.png");
  int before = files_in_dir();
  CHECK_OK(rn_image_write_png(p, ok16));
  CHECK_ERR(rn_image_write_png(p, bad16), RN_ERR_ARG, "outside 0..65535");
  if (CHECK_OK(rn_image_read(&back, p, NULL))) CHECK(test_max_abs_diff(back, ok16) == 0); /* old file intact */
  CHECK(files_in_dir() == before + 1); /* no temporary left behind */
  rn_tensor_release(back);
  rn_tensor_release(bad16);
  rn_tensor_release(ok16);
}

static void tiff(void) {
  char p[512];
  int64_t s2[2] = {7, 9};
  rn_tensor *m = test_randn(2, s2, 5, 3.0f), *back = NULL;
  rn_f32(m)[3] = INFINITY;
  if (CHECK_OK(rn_image_write_tiff(in_dir(p, sizeof p, "map.tif"), m)) && CHECK_OK(rn_image_read_tiff(&back, p))) {
    CHECK(back->ndim == 2 && back->shape[0] == 7 && back->shape[1] == 9);
    CHECK(memcmp(rn_f32(back), rn_f32(m), sizeof(float) * 63) == 0); /* bit exact, inf included */
  }
  rn_tensor_release(back);
  back = NULL;
  /* [1,H,W] through rn_image_write */
  int64_t s3[3] = {1, 7, 9};
  rn_tensor *m3 = NULL;
  CHECK_OK(rn_reshape(&m3, m, 3, s3));
  CHECK_OK(rn_image_write(in_dir(p, sizeof p, "map3.tiff"), m3));
  /* a TIFF written by PIL */
  char fp[1024];
  snprintf(fp, sizeof fp, "%s/image/tiff_f32.tif", FIXTURES_DIR);
  rn_tensor *want = test_fixture("image/tiff_f32.npy");
  if (CHECK_OK(rn_image_read_tiff(&back, fp)) && want) CHECK(test_max_abs_diff(back, want) == 0);
  rn_tensor_release(back);
  back = NULL;
  CHECK_ERR(rn_image_read_tiff(&back, in_dir(p, sizeof p, "missing.tif")), RN_ERR_IO, "missing.tif");
  snprintf(fp, sizeof fp, "%s/image/png_rgb8.png", FIXTURES_DIR);
  CHECK_ERR(rn_image_read_tiff(&back, fp), RN_ERR_FORMAT, "png_rgb8.png");
  rn_tensor *u = NULL;
  CHECK_OK(rn_tensor_zeros(&u, 2, s2, RN_U8, rn_cpu()));
  CHECK_ERR(rn_image_write_tiff(in_dir(p, sizeof p, "u.tif"), u), RN_ERR_ARG, "float32");
  int64_t s32[3] = {7, 9, 2};
  rn_tensor *two = test_randn(3, s32, 2, 1.0f);
  CHECK_ERR(rn_image_write_tiff(in_dir(p, sizeof p, "two.tif"), two), RN_ERR_SHAPE, "single-channel");
  rn_tensor_release(two);
  rn_tensor_release(u);
  rn_tensor_release(want);
  rn_tensor_release(m3);
  rn_tensor_release(m);
}

/* matplotlib's viridis at 0, 0.5 and 1 (published table entries 0, 128, 255). */
static void colormap(void) {
  int64_t s2[2] = {1, 3};
  rn_tensor *m = NULL, *c = NULL;
  float v[3] = {0.0f, 0.5f, 1.0f};
  CHECK_OK(rn_tensor_from_data(&m, 2, s2, RN_F32, v));
  static const double want[3][3] = {{0.267004, 0.004874, 0.329415}, {0.127568, 0.566949, 0.550556},
                                    {0.993248, 0.906157, 0.143936}};
  if (CHECK_OK(rn_image_colormap(&c, m, 0, 1))) {
    const uint8_t *d = rn_tensor_data(c);
    double worst = 0;
    for (int i = 0; i < 3; i++)
      for (int k = 0; k < 3; k++) worst = fmax(worst, fabs(d[3 * i + k] - want[i][k] * 255));
    printf("viridis fit: max %.1f levels from the published anchors\n", worst);
    CHECK(worst <= 6);
  }
  rn_tensor_release(c);
  c = NULL;
  /* auto range (lo >= hi) equals the explicit min/max; NaN maps to the lowest colour */
  float w[3] = {-2.0f, NAN, 6.0f};
  rn_tensor *m2 = NULL, *c2 = NULL;
  CHECK_OK(rn_tensor_from_data(&m2, 2, s2, RN_F32, w));
  if (CHECK_OK(rn_image_colormap(&c, m2, 0, 0)) && CHECK_OK(rn_image_colormap(&c2, m2, -2, 6))) {
    CHECK(test_max_abs_diff(c, c2) == 0);
    const uint8_t *d = rn_tensor_data(c);
    CHECK(d[3] == d[0] && d[4] == d[1] && d[5] == d[2]);
  }
  rn_tensor_release(c);
  c = NULL;
  CHECK_ERR(rn_image_colormap(&c, m2, NAN, 1), RN_ERR_ARG, "NaN");
  rn_tensor_release(c2);
  rn_tensor_release(c);
  rn_tensor_release(m2);
  rn_tensor_release(m);
}

static void overlay(void) {
  char p[512];
  rn_tensor *img = test_fixture("image/png_rgb8.npy"), *fig = NULL, *back = NULL;
  if (!img) return;
  int64_t hs[2] = {6, 8}, gs[2] = {3, 4};
  rn_tensor *heat = NULL, *gt = NULL;
  CHECK_OK(rn_tensor_zeros(&heat, 2, hs, RN_F32, rn_cpu()));
  for (int y = 2; y < 5; y++)
    for (int x = 3; x < 7; x++) rn_f32(heat)[y * 8 + x] = 1.0f; /* predicted region rows 2..4, cols 3..6 */
  CHECK_OK(rn_tensor_zeros(&gt, 2, gs, RN_U8, rn_cpu()));     /* half-size mask, nearest-resized */
  ((uint8_t *)rn_tensor_data(gt))[1 * 4 + 1] = 255;
  rn_overlay_opts o = rn_overlay_opts_default();
  if (CHECK_OK(rn_image_overlay(&fig, img, gt, heat, &o))) {
    CHECK(fig->dtype == RN_U8 && fig->shape[0] == 6 && fig->shape[1] == 4 * 8 + 3 * 4 && fig->shape[2] == 3);
    const uint8_t *d = rn_tensor_data(fig), *im = rn_tensor_data(img);
    int64_t W = fig->shape[1];
#define PX(y, x) (d + 3 * ((y) * W + (x)))
    CHECK(memcmp(PX(1, 5), im + 3 * (1 * 8 + 5), 3) == 0);             /* panel 1: the image */
    CHECK(PX(2, 12 + 2)[0] == 255 && PX(0, 12 + 0)[0] == 0);          /* panel 2: gt at rows 2-3, cols 2-3 */
    CHECK(PX(3, 8)[0] == 255 && PX(3, 8)[1] == 255 && PX(3, 8)[2] == 255); /* gap is white */
    const uint8_t *red = PX(2, 36 + 3), *inside = PX(3, 36 + 5);
    CHECK(red[0] == 255 && red[1] == 0 && red[2] == 0);               /* panel 4: predicted contour */
    CHECK(memcmp(inside, im + 3 * (3 * 8 + 5), 3) == 0);               /* the region's inside is the image */
    const uint8_t *green = PX(2, 36 + 2);
    CHECK(green[0] == 0 && green[1] == 255 && green[2] == 0);         /* gt contour */
#undef PX
  }
  if (CHECK_OK(rn_image_write_overlay(in_dir(p, sizeof p, "overlay.png"), img, NULL, heat, NULL)) &&
      CHECK_OK(rn_image_read(&back, p, NULL)))
    CHECK(back->shape[1] == 44 && back->shape[2] == 3);
  /* a heat map at another size is resized to the image */
  int64_t small[3] = {1, 3, 4};
  rn_tensor *h3 = test_randn(3, small, 9, 1.0f), *fig2 = NULL;
  if (CHECK_OK(rn_image_overlay(&fig2, img, NULL, h3, NULL))) CHECK(fig2->shape[0] == 6 && fig2->shape[1] == 44);
  rn_tensor_release(fig2);
  fig2 = NULL;
  CHECK_ERR(rn_image_overlay(&fig2, img, gt, img, NULL), RN_ERR_ARG, "heat");
  o.heat_alpha = 2;
  CHECK_ERR(rn_image_overlay(&fig2, img, gt, heat, &o), RN_ERR_ARG, "heat_alpha");
  rn_tensor_release(fig2);
  rn_tensor_release(h3);
  rn_tensor_release(back);
  rn_tensor_release(fig);
  rn_tensor_release(gt);
  rn_tensor_release(heat);
  rn_tensor_release(img);
}

static void cleanup(void) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[512];
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.') unlink(in_dir(p, sizeof p, e->d_name));
  if (d) closedir(d);
  rmdir(dir);
}

int main(void) {
  if (!mkdtemp(dir)) return test_skip("cannot create a temporary directory");
  png_round_trips();
  atomic();
  tiff();
  colormap();
  overlay();
  cleanup();
  return test_finish("image_write");
}
