/* test_foreground.c - foreground masks (spec 3.3): gray conversion, Otsu and triangle thresholds, each rule
 * on small images with known answers, and grey morphology (odd and even squares) against the scipy/skimage
 * reference of tests/fixtures/gen_synth.py. */
#include <string.h>

#include "realnet/synth.h"
#include "testutil.h"

static rn_tensor *u8(int ndim, const int64_t *shape, const uint8_t *data) {
  rn_tensor *t = NULL;
  if (rn_tensor_empty(&t, ndim, shape, RN_U8, rn_cpu()) != RN_OK) return NULL;
  int64_t n = rn_tensor_numel(t);
  memcpy(rn_tensor_data(t), data, (size_t)n);
  return t;
}

static int same_u8(const rn_tensor *a, const uint8_t *b, int64_t n) {
  return a && rn_tensor_numel(a) == n && memcmp(rn_tensor_data(a), b, (size_t)n) == 0;
}

static int64_t count_diff(const rn_tensor *a, const rn_tensor *b) {
  const uint8_t *p = rn_tensor_data(a), *q = rn_tensor_data(b);
  int64_t n = 0;
  for (int64_t k = 0; k < rn_tensor_numel(a); k++) n += p[k] != q[k];
  return n;
}

/* Known answers on a two-level image: 60 at the left, 200 at the right; the object is the right half. */
static void check_rules_known(void) {
  enum { H = 10, W = 12 };
  uint8_t rgb[H * W * 3];
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      uint8_t *q = rgb + (y * W + x) * 3;
      int right = x >= W / 2;
      q[0] = right ? 200 : 60;  /* red: bright on the right */
      q[1] = right ? 30 : 220;  /* green: bright on the left */
      q[2] = 100;               /* blue: flat */
    }
  int64_t shape[3] = {H, W, 3};
  rn_tensor *img = u8(3, shape, rgb), *m = NULL;
  uint8_t right[H * W], left[H * W];
  for (int k = 0; k < H * W; k++) { right[k] = (k % W) >= W / 2; left[k] = !right[k]; }

  rn_fg_rule r = {RN_FG_OTSU, 0, 0, 0, 0}; /* red, bright */
  CHECK_OK(rn_foreground_mask(&m, img, &r));
  CHECK(same_u8(m, right, H * W));
  rn_tensor_release(m);
  r.dark = 1; /* red, dark */
  CHECK_OK(rn_foreground_mask(&m, img, &r));
  CHECK(same_u8(m, left, H * W));
  rn_tensor_release(m);
  r = (rn_fg_rule){RN_FG_OTSU, 1, 0, 0, 0}; /* green, bright: the other half */
  CHECK_OK(rn_foreground_mask(&m, img, &r));
  CHECK(same_u8(m, left, H * W));
  rn_tensor_release(m);
  r = (rn_fg_rule){RN_FG_TRIANGLE, 0, 0, 0, 0};
  CHECK_OK(rn_foreground_mask(&m, img, &r));
  CHECK(same_u8(m, right, H * W));
  rn_tensor_release(m);
  /* gray: (4899*60 + 9617*220 + 1868*100 + 8192) >> 14 = 158 on the left, 89 on the right */
  r = (rn_fg_rule){RN_FG_OTSU, -1, 0, 0, 0};
  CHECK_OK(rn_foreground_mask(&m, img, &r));
  CHECK(same_u8(m, left, H * W));
  rn_tensor_release(m);
  /* flat blue: cv2's Otsu finds no split and returns 0, so every pixel (100 > 0) is bright, none dark */
  r = (rn_fg_rule){RN_FG_OTSU, 2, 0, 0, 0};
  int t0 = -1;
  rn_tensor *blue = NULL, *bplane = NULL;
  CHECK_OK(rn_select(&blue, img, 2, 2));
  CHECK_OK(rn_clone(&bplane, blue));
  CHECK_OK(rn_threshold_otsu(bplane, &t0));
  CHECK(t0 == 0);
  rn_tensor_release(blue); rn_tensor_release(bplane);
  CHECK_OK(rn_foreground_mask(&m, img, &r));
  uint8_t zeros[H * W] = {0}, ones[H * W];
  memset(ones, 1, sizeof ones);
  CHECK(same_u8(m, ones, H * W));
  rn_tensor_release(m);
  r.dark = 1;
  CHECK_OK(rn_foreground_mask(&m, img, &r));
  CHECK(same_u8(m, zeros, H * W));
  rn_tensor_release(m);
  r = (rn_fg_rule){RN_FG_NONE, -1, 0, 0, 0}; /* all ones */
  CHECK_OK(rn_foreground_mask(&m, img, &r));
  CHECK(same_u8(m, ones, H * W));
  rn_tensor_release(m);
  /* a closing of size 3 fills a one-pixel hole in the object; an opening of 3 removes a lone pixel */
  rgb[(4 * W + 9) * 3] = 60;  /* hole at (4, 9) */
  rgb[(5 * W + 2) * 3] = 200; /* speck at (5, 2) */
  rn_tensor *img2 = u8(3, shape, rgb);
  r = (rn_fg_rule){RN_FG_OTSU, 0, 0, 0, 0};
  CHECK_OK(rn_foreground_mask(&m, img2, &r));
  CHECK(!same_u8(m, right, H * W));
  rn_tensor_release(m);
  r.close = 3;
  r.open = 3;
  CHECK_OK(rn_foreground_mask(&m, img2, &r));
  CHECK(same_u8(m, right, H * W));
  rn_tensor_release(m);
  rn_tensor_release(img2);
  rn_tensor_release(img);

  /* gray images ([H,W] and [H,W,1]) work with channel -1 */
  int64_t gs[2] = {2, 4};
  uint8_t gv[8] = {10, 10, 240, 240, 10, 10, 240, 240};
  rn_tensor *g = u8(2, gs, gv);
  r = (rn_fg_rule){RN_FG_OTSU, -1, 0, 0, 0};
  CHECK_OK(rn_foreground_mask(&m, g, &r));
  uint8_t want[8] = {0, 0, 1, 1, 0, 0, 1, 1};
  CHECK(same_u8(m, want, 8));
  rn_tensor_release(m);
  rn_tensor_release(g);
}

static void check_thresholds(void) {
  /* Otsu on two equal clusters picks the last value of the lower one; triangle on a peak with a tail to the
   * right is flipped and returns a value inside the tail's side. */
  int64_t s[2] = {1, 10};
  uint8_t v[10] = {20, 20, 20, 20, 20, 180, 180, 180, 180, 180};
  rn_tensor *p = u8(2, s, v);
  int t = -5;
  CHECK_OK(rn_threshold_otsu(p, &t));
  CHECK(t >= 20 && t < 180);
  CHECK(t == 20); /* cv2: the first maximum of the between-class variance */
  rn_tensor_release(p);
  /* a peak at 50 (count 8), a tail 51..60 of single pixels: the line from the peak to 61 */
  int64_t s2[2] = {1, 18};
  uint8_t v2[18] = {50, 50, 50, 50, 50, 50, 50, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60};
  p = u8(2, s2, v2);
  CHECK_OK(rn_threshold_triangle(p, &t));
  CHECK(t > 50 && t <= 60);
  rn_tensor_release(p);

  rn_tensor *planes = test_fixture("synth/thresh_planes.npy"), *vals = test_fixture("synth/thresh_values.npy");
  if (!planes || !vals) return;
  for (int64_t k = 0; k < planes->shape[0]; k++) {
    rn_tensor *pl = NULL;
    CHECK_OK(rn_select(&pl, planes, 0, k));
    int to = 0, tt = 0, ro = ((int32_t *)rn_tensor_data(vals))[2 * k], rt = ((int32_t *)rn_tensor_data(vals))[2 * k + 1];
    CHECK_OK(rn_threshold_otsu(pl, &to));
    CHECK_OK(rn_threshold_triangle(pl, &tt));
    /* thresholds inside the same empty gap of the histogram split the pixels identically */
    const uint8_t *q = rn_tensor_data(pl);
    int64_t d_o = 0, d_t = 0;
    for (int64_t i = 0; i < rn_tensor_numel(pl); i++) { d_o += (q[i] > to) != (q[i] > ro); d_t += (q[i] > tt) != (q[i] > rt); }
    CHECK(d_o == 0);
    CHECK(d_t == 0);
    CHECK(tt == rt);
    rn_tensor_release(pl);
  }
  rn_tensor_release(planes); rn_tensor_release(vals);
}

static void check_morphology(void) {
  rn_tensor *in = test_fixture("synth/morph_input.npy"), *sizes = test_fixture("synth/morph_sizes.npy");
  rn_tensor *outs = test_fixture("synth/morph_out.npy");
  if (!in || !sizes || !outs) return;
  const rn_morph_op ops[4] = {RN_MORPH_DILATE, RN_MORPH_ERODE, RN_MORPH_CLOSE, RN_MORPH_OPEN};
  for (int64_t s = 0; s < sizes->shape[0]; s++) {
    int n = ((int32_t *)rn_tensor_data(sizes))[s];
    for (int o = 0; o < 4; o++) {
      rn_tensor *a = NULL, *b = NULL, *want = NULL, *m = NULL;
      CHECK_OK(rn_select(&a, outs, 0, s));
      CHECK_OK(rn_select(&b, a, 0, o));
      CHECK_OK(rn_clone(&want, b));
      CHECK_OK(rn_morph(&m, in, ops[o], n));
      int64_t d = m ? count_diff(m, want) : -1;
      CHECK(d == 0);
      if (d != 0) printf("  morphology op %d size %d: %lld pixels differ\n", o, n, (long long)d);
      rn_tensor_release(a); rn_tensor_release(b); rn_tensor_release(want); rn_tensor_release(m);
    }
  }
  /* even sizes: dilation by 2 takes the max over [i, i+1], so a single pixel spreads to the previous row
   * and column; erosion takes the min over [i-1, i] and brings it back (closing does not shift) */
  int64_t sh[2] = {5, 5};
  uint8_t dot[25] = {0};
  dot[12] = 1;
  rn_tensor *d = u8(2, sh, dot), *m = NULL, *c = NULL;
  CHECK_OK(rn_morph(&m, d, RN_MORPH_DILATE, 2));
  uint8_t want[25] = {0};
  want[6] = want[7] = want[11] = want[12] = 1;
  CHECK(same_u8(m, want, 25));
  CHECK_OK(rn_morph(&c, d, RN_MORPH_CLOSE, 2));
  CHECK(same_u8(c, dot, 25));
  rn_tensor_release(m); rn_tensor_release(c); rn_tensor_release(d);
  rn_tensor_release(in); rn_tensor_release(sizes); rn_tensor_release(outs);
}

/* Every rule of the fixture (OTSU/TRIANGLE, gray/green/blue, dark/bright, closes 3..15, opens 0..6) as numpy. */
static void check_rules_fixture(void) {
  rn_tensor *img = test_fixture("synth/fg_image.npy"), *rules = test_fixture("synth/fg_rules.npy");
  rn_tensor *masks = test_fixture("synth/fg_masks.npy"), *gray = test_fixture("synth/fg_gray.npy");
  if (!img || !rules || !masks || !gray) return;
  rn_tensor *m = NULL;
  for (int64_t k = 0; k < rules->shape[0]; k++) {
    const int32_t *q = (const int32_t *)rn_tensor_data(rules) + 5 * k;
    rn_fg_rule r = {q[0] == 0 ? RN_FG_OTSU : RN_FG_TRIANGLE, q[1], q[2], q[3], q[4]};
    rn_tensor *a = NULL, *want = NULL;
    CHECK_OK(rn_select(&a, masks, 0, k));
    CHECK_OK(rn_clone(&want, a));
    CHECK_OK(rn_foreground_mask(&m, img, &r));
    int64_t d = m ? count_diff(m, want) : -1;
    CHECK(d == 0);
    if (d != 0) printf("  rule %lld: %lld pixels differ\n", (long long)k, (long long)d);
    rn_tensor_release(m); rn_tensor_release(a); rn_tensor_release(want);
  }
  /* cv2 gray: a plane made of the reference gray values gives the same Otsu split as the RGB image */
  int tg = 0;
  CHECK_OK(rn_threshold_otsu(gray, &tg));
  rn_fg_rule rg = {RN_FG_OTSU, -1, 0, 0, 0};
  rn_tensor *m1 = NULL, *m2 = NULL;
  CHECK_OK(rn_foreground_mask(&m1, img, &rg));
  CHECK_OK(rn_foreground_mask(&m2, gray, &rg));
  CHECK(m1 && m2 && count_diff(m1, m2) == 0);
  rn_tensor_release(m1); rn_tensor_release(m2);
  rn_tensor_release(img); rn_tensor_release(rules); rn_tensor_release(masks); rn_tensor_release(gray);
}

static void check_bad_inputs(void) {
  int64_t s3[3] = {4, 4, 3}, s2[2] = {4, 4};
  rn_tensor *img = NULL, *f = NULL, *m = NULL;
  CHECK_OK(rn_tensor_zeros(&img, 3, s3, RN_U8, rn_cpu()));
  CHECK_OK(rn_tensor_zeros(&f, 2, s2, RN_F32, rn_cpu()));
  rn_fg_rule r = {RN_FG_OTSU, 5, 0, 0, 0};
  CHECK_ERR(rn_foreground_mask(&m, img, &r), RN_ERR_ARG, "channel");
  r = (rn_fg_rule){RN_FG_OTSU, -1, 0, -2, 0};
  CHECK_ERR(rn_foreground_mask(&m, img, &r), RN_ERR_ARG, "close");
  r = (rn_fg_rule){(rn_fg_method)7, -1, 0, 0, 0};
  CHECK_ERR(rn_foreground_mask(&m, img, &r), RN_ERR_ARG, "method");
  CHECK_ERR(rn_foreground_mask(&m, f, &r), RN_ERR_SHAPE, "uint8");
  CHECK_ERR(rn_foreground_mask(&m, img, NULL), RN_ERR_ARG, "rule");
  int t;
  CHECK_ERR(rn_threshold_otsu(img, &t), RN_ERR_SHAPE, "plane");
  CHECK_ERR(rn_threshold_triangle(f, &t), RN_ERR_SHAPE, "uint8");
  rn_tensor *p = NULL;
  CHECK_OK(rn_tensor_zeros(&p, 2, s2, RN_U8, rn_cpu()));
  CHECK_ERR(rn_morph(&m, p, RN_MORPH_CLOSE, 0), RN_ERR_ARG, "footprint");
  CHECK_ERR(rn_morph(&m, p, (rn_morph_op)9, 3), RN_ERR_ARG, "operation");
  CHECK_ERR(rn_morph(&m, img, RN_MORPH_OPEN, 3), RN_ERR_SHAPE, "one channel");
  CHECK(m == NULL);
  rn_tensor_release(p); rn_tensor_release(img); rn_tensor_release(f);
}

int main(void) {
  check_rules_known();
  check_thresholds();
  check_morphology();
  check_rules_fixture();
  check_bad_inputs();
  return test_finish("foreground");
}
