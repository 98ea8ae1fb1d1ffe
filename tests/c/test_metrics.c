/* test_metrics.c - AUROC, F1-max, MVTec AU-PRO and RealNet's PRO variant against the references of
 * tests/fixtures/gen_metrics.py (sklearn, the MVTec evaluation code, RealNet's EvalPixelPro) to 1e-6; the
 * 8-connected labelling; the radix-sort path; input layouts and dtypes; bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics/mx_internal.h"
#include "realnet/metrics.h"
#include "testutil.h"

#define TOL 1e-6

/* A value of fixtures/metrics/expected.txt ("key value" lines). */
static double expect(const char *key) {
  char path[1024], k[128];
  double v;
  snprintf(path, sizeof path, "%s/metrics/expected.txt", FIXTURES_DIR);
  FILE *f = fopen(path, "r");
  if (!f) { CHECK(!"expected.txt missing"); return NAN; }
  char line[256];
  while (fgets(line, sizeof line, f)) {
    char num[64];
    if (sscanf(line, "%127s %63s", k, num) == 2 && strcmp(k, key) == 0) {
      fclose(f);
      v = strtod(num, NULL);
      return v;
    }
  }
  fclose(f);
  fprintf(stderr, "no expected value %s\n", key);
  CHECK(!"expected key missing");
  return NAN;
}

static rn_tensor *fx(const char *name, const char *suffix) {
  char rel[256];
  snprintf(rel, sizeof rel, "metrics/%s_%s.npy", name, suffix);
  return test_fixture(rel);
}

static void image_case(const char *name) {
  rn_tensor *s = fx(name, "s"), *y = fx(name, "y");
  if (!s || !y) return;
  char key[128];
  double auc = -1, f1 = -1, thr = -1;
  CHECK_OK(rn_metric_auroc(&auc, s, y));
  snprintf(key, sizeof key, "%s.auroc", name);
  CHECK_NEAR(auc, expect(key), TOL);
  CHECK_OK(rn_metric_f1_max(&f1, &thr, s, y));
  snprintf(key, sizeof key, "%s.f1", name);
  CHECK_NEAR(f1, expect(key), TOL);
  snprintf(key, sizeof key, "%s.f1_thr", name);
  CHECK(thr == expect(key)); /* a float32 score, exact */
  rn_tensor_release(s);
  rn_tensor_release(y);
}

static void pixel_case(const char *name) {
  rn_tensor *m = fx(name, "maps"), *g = fx(name, "masks");
  if (!m || !g) return;
  char key[128];
  rn_pixel_metrics pm;
  CHECK_OK(rn_metric_pixel(&pm, m, g, 0.3));
  snprintf(key, sizeof key, "%s.pixel_auroc", name);
  CHECK_NEAR(pm.auroc, expect(key), TOL);
  snprintf(key, sizeof key, "%s.aupro_0.3", name);
  CHECK_NEAR(pm.aupro, expect(key), TOL);
  snprintf(key, sizeof key, "%s.f1", name);
  CHECK_NEAR(pm.f1_max, expect(key), TOL);
  snprintf(key, sizeof key, "%s.f1_thr", name);
  CHECK(pm.f1_threshold == expect(key));
  snprintf(key, sizeof key, "%s.regions", name);
  CHECK(pm.n_regions == (int64_t)expect(key));
  static const double limits[] = {0.1, 0.05, 1.0};
  for (int k = 0; k < 3; k++) {
    double v = -1;
    CHECK_OK(rn_metric_aupro(&v, m, g, limits[k]));
    snprintf(key, sizeof key, "%s.aupro_%g", name, limits[k]);
    CHECK_NEAR(v, expect(key), TOL);
  }
  double pr = -1;
  CHECK_OK(rn_metric_pro_realnet(&pr, m, g, 1000, 0.3));
  snprintf(key, sizeof key, "%s.pro_realnet", name);
  CHECK_NEAR(pr, expect(key), TOL);
  rn_tensor_release(m);
  rn_tensor_release(g);
}

/* The labelling: 8-connectivity through diagonals, merges of branches (union-find), raster-order ids. */
static void test_labels(void) {
  /* a V: two branches that meet only at the bottom; a diagonal chain; an isolated pixel */
  const char *pic[] = {
    "1...1..1.",
    ".1.1....1",
    "..1......",
    ".......1.",
    "1.......1",
  };
  uint8_t m[45];
  int32_t lab[45];
  for (int y = 0; y < 5; y++)
    for (int x = 0; x < 9; x++) m[y * 9 + x] = pic[y][x] == '1';
  int64_t n = -1;
  CHECK_OK(rn_label_regions8(lab, m, 5, 9, &n));
  CHECK(n == 4);
  CHECK(lab[0] == 1 && lab[4] == 1 && lab[2 * 9 + 2] == 1);  /* the V is one region, first in raster order */
  CHECK(lab[7] == 2 && lab[9 + 8] == 2);                /* diagonal pairs */
  CHECK(lab[3 * 9 + 7] == 3 && lab[4 * 9 + 8] == 3);
  CHECK(lab[4 * 9] == 4);
  CHECK(lab[1] == 0);
  /* a checkerboard is one region with 8-connectivity */
  uint8_t cb[36];
  int32_t cl[36];
  for (int k = 0; k < 36; k++) cb[k] = ((k / 6) + (k % 6)) % 2 == 0;
  CHECK_OK(rn_label_regions8(cl, cb, 6, 6, &n));
  CHECK(n == 1);
  CHECK_OK(rn_label_regions8(cl, cb, 0, 6, &n));
  CHECK(n == 0);
  CHECK_ERR(rn_label_regions8(NULL, cb, 6, 6, &n), RN_ERR_ARG, "NULL");
}

/* The radix path (>= 65536 pairs) sorts like qsort. */
static int cmp64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a >> 32, y = *(const uint64_t *)b >> 32;
  return (x > y) - (x < y);
}

static void test_sort(void) {
  int64_t n = 100000;
  uint64_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
  uint64_t st = 88172645463325252ull, sa = 0, sb = 0;
  for (int64_t k = 0; k < n; k++) {
    st ^= st << 13; st ^= st >> 7; st ^= st << 17;
    float f = (float)((int64_t)(st % 2001) - 1000) / 7.0f;  /* negative, zero and positive, many ties */
    if (k % 97 == 0) f = -0.0f;
    a[k] = b[k] = mx_pair(f, (uint32_t)k);
    sa += (uint32_t)k;
  }
  CHECK_OK(mx_sort_pairs(a, n));
  qsort(b, n, sizeof *b, cmp64);
  int ok = 1;
  for (int64_t k = 0; k < n; k++) {
    ok &= (a[k] >> 32) == (b[k] >> 32);
    if (k) ok &= mx_unkey((uint32_t)(a[k] >> 32)) >= mx_unkey((uint32_t)(a[k - 1] >> 32));
    sb += (uint32_t)a[k];
  }
  CHECK(ok);
  CHECK(sa == sb);
  CHECK(mx_key(-0.0f) == mx_key(0.0f));
  CHECK(mx_unkey(mx_key(-3.5f)) == -3.5f);
  free(a);
  free(b);
}

/* px_ties repeated 12 times (73,728 pixels: the radix path) gives the same metrics. */
static void test_replicated(void) {
  rn_tensor *m = fx("px_ties", "maps"), *g = fx("px_ties", "masks");
  if (!m || !g) return;
  int64_t n = m->shape[0], h = m->shape[1], w = m->shape[2], rep = 12, shape[3] = {n * rep, h, w};
  rn_tensor *M = NULL, *G = NULL;
  CHECK_OK(rn_tensor_empty(&M, 3, shape, RN_F32, rn_cpu()));
  CHECK_OK(rn_tensor_empty(&G, 3, shape, RN_U8, rn_cpu()));
  for (int64_t r = 0; r < rep; r++) {
    memcpy(rn_f32(M) + r * n * h * w, rn_f32(m), n * h * w * sizeof(float));
    memcpy((uint8_t *)rn_tensor_data(G) + r * n * h * w, rn_tensor_data(g), n * h * w);
  }
  rn_pixel_metrics pm;
  double pr = -1;
  CHECK_OK(rn_metric_pixel(&pm, M, G, 0.3));
  CHECK_NEAR(pm.auroc, expect("px_ties.pixel_auroc"), 1e-9);
  CHECK_NEAR(pm.aupro, expect("px_ties.aupro_0.3"), 1e-9);
  CHECK_NEAR(pm.f1_max, expect("px_ties.f1"), 1e-9);
  CHECK(pm.n_regions == 12 * (int64_t)expect("px_ties.regions"));
  CHECK(pm.n_defect_images == 12 * 4);
  CHECK_OK(rn_metric_pro_realnet(&pr, M, G, 1000, 0.3));
  CHECK_NEAR(pr, expect("px_ties.pro_realnet"), 1e-9);
  rn_tensor_release(M);
  rn_tensor_release(G);
  rn_tensor_release(m);
  rn_tensor_release(g);
}

/* Other layouts and dtypes: [N,1,H,W] float masks, int64 labels, transposed (non-contiguous) views. */
static void test_layouts(void) {
  rn_tensor *m = fx("px_smooth", "maps"), *g = fx("px_smooth", "masks");
  rn_tensor *s = fx("random", "s"), *y = fx("random", "y");
  if (!m || !g || !s || !y) return;
  rn_tensor *gf = NULL, *g4 = NULL, *m4 = NULL, *y64 = NULL, *s2 = NULL, *y2 = NULL, *st = NULL, *yt = NULL;
  int64_t sh4[4] = {m->shape[0], 1, m->shape[1], m->shape[2]}, sh2[2] = {10, 20};
  CHECK_OK(rn_to_dtype(&gf, g, RN_F32));
  CHECK_OK(rn_reshape(&g4, gf, 4, sh4));
  CHECK_OK(rn_reshape(&m4, m, 4, sh4));
  double v = -1;
  CHECK_OK(rn_metric_aupro(&v, m4, g4, 0.3));
  CHECK_NEAR(v, expect("px_smooth.aupro_0.3"), TOL);
  CHECK_OK(rn_metric_aupro(&v, m, g4, 0.3)); /* [N,H,W] maps with [N,1,H,W] masks */
  CHECK_NEAR(v, expect("px_smooth.aupro_0.3"), TOL);
  CHECK_OK(rn_to_dtype(&y64, y, RN_I64));
  CHECK_OK(rn_reshape(&s2, s, 2, sh2));
  CHECK_OK(rn_reshape(&y2, y64, 2, sh2));
  CHECK_OK(rn_transpose(&st, s2, 0, 1));
  CHECK_OK(rn_transpose(&yt, y2, 0, 1));
  CHECK(!rn_tensor_is_contiguous(st));
  CHECK_OK(rn_metric_auroc(&v, st, yt));
  CHECK_NEAR(v, expect("random.auroc"), TOL);
  rn_tensor *all[] = {m, g, s, y, gf, g4, m4, y64, s2, y2, st, yt};
  for (int k = 0; k < 12; k++) rn_tensor_release(all[k]);
}

static rn_tensor *f32(int ndim, const int64_t *shape, const float *v) {
  rn_tensor *t = NULL;
  CHECK_OK(rn_tensor_from_data(&t, ndim, shape, RN_F32, v));
  return t;
}

static void test_bad_input(void) {
  float sv[4] = {0.1f, 0.4f, 0.35f, 0.8f}, yv[4] = {0, 0, 1, 1}, y1[4] = {1, 1, 1, 1};
  float nanv[4] = {NAN, 0.2f, NAN, 0.1f}, infv[4] = {INFINITY, 0.2f, 0.3f, 0.1f};
  int64_t n4[1] = {4}, n3[1] = {3}, n0[1] = {0};
  rn_tensor *s = f32(1, n4, sv), *y = f32(1, n4, yv), *yone = f32(1, n4, y1), *s3 = f32(1, n3, sv);
  rn_tensor *sn = f32(1, n4, nanv), *si = f32(1, n4, infv), *e = NULL, *yn = f32(1, n4, nanv);
  CHECK_OK(rn_tensor_empty(&e, 1, n0, RN_F32, rn_cpu()));
  double v, t;
  CHECK_OK(rn_metric_auroc(&v, s, y));
  CHECK_NEAR(v, 0.75, 1e-12);
  CHECK_ERR(rn_metric_auroc(&v, s, yone), RN_ERR_ARG, "only one class");
  CHECK_ERR(rn_metric_auroc(&v, s3, y), RN_ERR_SHAPE, "do not match");
  CHECK_ERR(rn_metric_auroc(&v, e, e), RN_ERR_ARG, "empty");
  CHECK_ERR(rn_metric_auroc(&v, sn, y), RN_ERR_ARG, "2 NaN");
  CHECK_ERR(rn_metric_auroc(&v, si, y), RN_ERR_ARG, "1 infinite");
  CHECK_ERR(rn_metric_auroc(&v, s, yn), RN_ERR_ARG, "NaN");
  CHECK_ERR(rn_metric_auroc(&v, NULL, y), RN_ERR_ARG, "scores");
  CHECK_ERR(rn_metric_auroc(NULL, s, y), RN_ERR_ARG, "NULL");
  CHECK_ERR(rn_metric_f1_max(&v, &t, s, e), RN_ERR_SHAPE, "do not match");
  float y0[4] = {0, 0, 0, 0};
  rn_tensor *yzero = f32(1, n4, y0);
  CHECK_ERR(rn_metric_f1_max(&v, &t, s, yzero), RN_ERR_ARG, "no positive");
  CHECK_OK(rn_metric_f1_max(&v, &t, s, yone)); /* only positives: F1 is defined (threshold = the minimum) */
  CHECK_NEAR(v, 1.0, 1e-12);
  CHECK(t == 0.1f);

  /* maps and masks */
  int64_t s3d[3] = {2, 4, 4}, s3e[3] = {2, 4, 5}, s4c[4] = {2, 3, 4, 4}, s3z[3] = {0, 4, 4};
  float mv[32], gv[32] = {0}, gall[32];
  for (int k = 0; k < 32; k++) { mv[k] = (float)((k * 7) % 11) / 10.0f; gall[k] = 1; }
  gv[5] = gv[6] = 1;
  float zeros[32] = {0};
  rn_tensor *M = f32(3, s3d, mv), *G = f32(3, s3d, gv), *Gz = f32(3, s3d, zeros);
  rn_tensor *Gall = f32(3, s3d, gall), *Me = NULL, *M4 = NULL, *Mz = NULL;
  CHECK_OK(rn_tensor_zeros(&Me, 3, s3e, RN_F32, rn_cpu()));
  CHECK_OK(rn_tensor_zeros(&M4, 4, s4c, RN_F32, rn_cpu()));
  CHECK_OK(rn_tensor_zeros(&Mz, 3, s3z, RN_F32, rn_cpu()));
  rn_pixel_metrics pm;
  CHECK_OK(rn_metric_pixel(&pm, M, G, 0.3));
  CHECK(pm.n_regions == 1 && pm.n_defect_pixels == 2 && pm.n_defect_images == 1 && pm.n_pixels == 32);
  CHECK_ERR(rn_metric_aupro(&v, M, Me, 0.3), RN_ERR_SHAPE, "do not match");
  CHECK_ERR(rn_metric_aupro(&v, Me, G, 0.3), RN_ERR_SHAPE, "[2,4,5]");
  CHECK_ERR(rn_metric_aupro(&v, M4, G, 0.3), RN_ERR_SHAPE, "must be");
  CHECK_ERR(rn_metric_aupro(&v, Mz, Mz, 0.3), RN_ERR_ARG, "empty");
  CHECK_ERR(rn_metric_aupro(&v, M, Gz, 0.3), RN_ERR_ARG, "no defect");
  CHECK_ERR(rn_metric_pixel(&pm, M, Gz, 0.3), RN_ERR_ARG, "no defect");
  CHECK_ERR(rn_metric_aupro(&v, M, Gall, 0.3), RN_ERR_ARG, "OK pixels");
  CHECK_ERR(rn_metric_aupro(&v, M, G, 0.0), RN_ERR_ARG, "limit");
  CHECK_ERR(rn_metric_aupro(&v, M, G, 1.5), RN_ERR_ARG, "limit");
  CHECK_ERR(rn_metric_aupro(&v, M, G, NAN), RN_ERR_ARG, "limit");
  CHECK_ERR(rn_metric_aupro(&v, NULL, G, 0.3), RN_ERR_ARG, "maps");
  float mnan[32];
  memcpy(mnan, mv, sizeof mnan);
  mnan[3] = NAN;
  rn_tensor *Mn = f32(3, s3d, mnan);
  CHECK_ERR(rn_metric_aupro(&v, Mn, G, 0.3), RN_ERR_ARG, "1 NaN");
  CHECK_ERR(rn_metric_pro_realnet(&v, Mn, G, 1000, 0.3), RN_ERR_ARG, "1 NaN");
  CHECK_ERR(rn_metric_pro_realnet(&v, M, Gz, 1000, 0.3), RN_ERR_ARG, "no defect");
  CHECK_ERR(rn_metric_pro_realnet(&v, M, G, 1, 0.3), RN_ERR_ARG, "steps");
  CHECK_ERR(rn_metric_pro_realnet(&v, M, Me, 1000, 0.3), RN_ERR_SHAPE, "do not match");
  /* constant maps: RealNet's variant divides 0 by 0 (NaN, as the reference); AU-PRO is defined */
  rn_tensor *Mc = NULL;
  CHECK_OK(rn_tensor_full(&Mc, 3, s3d, RN_F32, rn_cpu(), 0.5));
  CHECK_OK(rn_metric_pro_realnet(&v, Mc, G, 1000, 0.3));
  CHECK(isnan(v));
  CHECK_OK(rn_metric_aupro(&v, Mc, G, 0.3)); /* one point (1, 1) after the anchor: the line y = x */
  CHECK_NEAR(v, 0.15, 1e-12);
  rn_tensor *all[] = {s, y, yone, s3, sn, si, e, yn, yzero, M, G, Gz, Gall, Me, M4, Mz, Mn, Mc};
  for (size_t k = 0; k < sizeof all / sizeof *all; k++) rn_tensor_release(all[k]);
}

/* Cost at the scale of an MVTec category (N x 256 x 256), printed. */
static void test_timing(int n) {
  int64_t shape[3] = {n, 256, 256}, hw = 256 * 256;
  rn_tensor *M = NULL, *G = NULL;
  CHECK_OK(rn_tensor_empty(&M, 3, shape, RN_F32, rn_cpu()));
  CHECK_OK(rn_tensor_zeros(&G, 3, shape, RN_U8, rn_cpu()));
  uint64_t st = 12345;
  float *m = rn_f32(M);
  uint8_t *g = (uint8_t *)rn_tensor_data(G);
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < hw; k++) {
      st ^= st << 13; st ^= st >> 7; st ^= st << 17;
      int64_t y = k / 256, x = k % 256, cy = 40 + (i * 37) % 170, cx = 60 + (i * 53) % 150;
      int in = i % 3 != 0 && (y - cy) * (y - cy) + (x - cx) * (x - cx) < 400;
      g[i * hw + k] = (uint8_t)in;
      m[i * hw + k] = (float)(st >> 40) / (float)(1 << 24) * 0.7f + (in ? 0.3f : 0.0f);
    }
  rn_pixel_metrics pm;
  double pr;
  struct timespec t0, t1, t2;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK_OK(rn_metric_pixel(&pm, M, G, 0.3));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  CHECK_OK(rn_metric_pro_realnet(&pr, M, G, 1000, 0.3));
  clock_gettime(CLOCK_MONOTONIC, &t2);
  printf("timing: %d x 256 x 256 (%lld px): pixel AUROC+AU-PRO+F1 %.3f s, RealNet PRO %.3f s "
         "(auroc %.4f aupro %.4f realnet %.4f)\n", n, (long long)pm.n_pixels,
         (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec),
         (t2.tv_sec - t1.tv_sec) + 1e-9 * (t2.tv_nsec - t1.tv_nsec), pm.auroc, pm.aupro, pr);
  CHECK(pm.auroc > 0.75 && pm.aupro > 0.3);
  rn_tensor_release(M);
  rn_tensor_release(G);
}

int main(void) {
  static const char *images[] = {"random", "ties", "equal", "perfect", "inverted", "mvtec_doc"};
  for (int k = 0; k < 6; k++) image_case(images[k]);
  static const char *pixels[] = {"px_smooth", "px_ties", "px_coarse", "px_diag", "px_exact"};
  for (int k = 0; k < 5; k++) pixel_case(pixels[k]);
  /* the diagonal chain is one region: 4-connected labelling would give another AU-PRO */
  rn_tensor *m = fx("px_diag", "maps"), *g = fx("px_diag", "masks");
  double v = -1;
  CHECK_OK(rn_metric_aupro(&v, m, g, 0.3));
  CHECK(fabs(v - expect("px_diag.aupro4_0.3")) > 0.1);
  rn_tensor_release(m);
  rn_tensor_release(g);
  test_labels();
  test_sort();
  test_replicated();
  test_layouts();
  test_bad_input();
  const char *big = getenv("RN_METRICS_TIMING_N");
  test_timing(big ? atoi(big) : 10);
  return test_finish("metrics");
}
