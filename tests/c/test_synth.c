/* test_synth.c - anomaly sources (DTD, SIA, CutPaste, NSA): for every source the masks are non-empty, lie
 * inside the foreground, and A == I outside the mask; the same seed gives the same batch on any thread count
 * and batch split; empty masks are redrawn; eq. (3) blending, Poisson blending, augmenters, conversions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "realnet/image.h"
#include "realnet/synth.h"
#include "testutil.h"

enum { H = 64, W = 64, N = 6 };

/* A normal image: a textured bright disc (the object) on a dark textured background. */
static void make_image(uint8_t *p, int64_t h, int64_t w, int variant) {
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      double dy = (double)y - h / 2.0 + variant, dx = (double)x - w / 2.0 - variant;
      int in = dy * dy + dx * dx < (h / 3.0) * (h / 3.0);
      int tex = (int)((x * 7 + y * 13 + variant * 5) % 23);
      uint8_t *q = p + (y * w + x) * 3;
      q[0] = (uint8_t)(in ? 170 + tex : 30 + tex);
      q[1] = (uint8_t)(in ? 150 + tex : 40 + tex);
      q[2] = (uint8_t)(in ? 120 + tex : 50 + tex);
    }
}

static rn_tensor *make_batch(int n, int64_t h, int64_t w, int shift) {
  int64_t shape[4] = {n, h, w, 3};
  rn_tensor *t = NULL;
  if (rn_tensor_empty(&t, 4, shape, RN_U8, rn_cpu()) != RN_OK) return NULL;
  for (int i = 0; i < n; i++) make_image((uint8_t *)rn_tensor_data(t) + (int64_t)i * h * w * 3, h, w, i + shift);
  return t;
}

/* Texture files for the DTD and SIA sources, written with the engine's PNG writer into a temp dir. */
static char tmpdir[256];
static char files[4][300];

static int write_sources(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/realnet_test_synth_%d", (int)getpid());
  if (mkdir(tmpdir, 0700) != 0) return 0;
  for (int k = 0; k < 4; k++) {
    int64_t shape[3] = {40 + 10 * k, 50, 3};
    rn_tensor *t = NULL;
    if (rn_tensor_empty(&t, 3, shape, RN_U8, rn_cpu()) != RN_OK) return 0;
    uint8_t *p = rn_tensor_data(t);
    for (int64_t i = 0; i < rn_tensor_numel(t); i++) p[i] = (uint8_t)((i * (k + 3) * 37) % 251);
    snprintf(files[k], sizeof files[k], "%s/tex%d.png", tmpdir, k);
    rn_status st = rn_image_write_png(files[k], t);
    rn_tensor_release(t);
    if (st != RN_OK) return 0;
  }
  return 1;
}

static void remove_sources(void) {
  for (int k = 0; k < 4; k++) remove(files[k]);
  rmdir(tmpdir);
}

/* The three properties every source must have, over a batch. Returns samples where A differs inside M. */
static int check_properties(const char *what, const rn_tensor *imgs, const rn_tensor *A, const rn_tensor *M,
                            const rn_fg_rule *fg) {
  int64_t n = imgs->shape[0], h = imgs->shape[1], w = imgs->shape[2];
  int changed = 0;
  for (int64_t i = 0; i < n; i++) {
    rn_tensor *one = NULL, *img = NULL, *f = NULL;
    CHECK_OK(rn_select(&one, (rn_tensor *)imgs, 0, i));
    CHECK_OK(rn_clone(&img, one));
    CHECK_OK(rn_foreground_mask(&f, img, fg));
    const uint8_t *pi = rn_tensor_data(img), *pa = (const uint8_t *)rn_tensor_data(A) + i * h * w * 3;
    const uint8_t *pm = (const uint8_t *)rn_tensor_data(M) + i * h * w, *pf = rn_tensor_data(f);
    int64_t area = 0, outside_fg = 0, outside_diff = 0, inside_diff = 0, nonbinary = 0;
    for (int64_t p = 0; p < h * w; p++) {
      area += pm[p] != 0;
      nonbinary += pm[p] > 1;
      outside_fg += pm[p] && !pf[p];
      for (int c = 0; c < 3; c++) {
        int d = pa[p * 3 + c] != pi[p * 3 + c];
        if (pm[p]) inside_diff += d;
        else outside_diff += d;
      }
    }
    int ok = area > 0 && outside_fg == 0 && outside_diff == 0 && nonbinary == 0;
    if (!ok) printf("  %s sample %lld: area %lld, outside fg %lld, changed outside %lld\n", what, (long long)i,
                    (long long)area, (long long)outside_fg, (long long)outside_diff);
    CHECK(ok);
    changed += inside_diff > 0;
    rn_tensor_release(one); rn_tensor_release(img); rn_tensor_release(f);
  }
  return changed;
}

static int64_t diff_bytes(const rn_tensor *a, const rn_tensor *b) {
  if (!a || !b || rn_tensor_numel(a) != rn_tensor_numel(b)) return -1;
  const uint8_t *p = rn_tensor_data(a), *q = rn_tensor_data(b);
  int64_t d = 0;
  for (int64_t k = 0; k < rn_tensor_numel(a); k++) d += p[k] != q[k];
  return d;
}

static void check_sources(int have_files) {
  const rn_fg_rule fg = {RN_FG_OTSU, -1, 0, 3, 3}; /* the bright disc */
  rn_tensor *imgs = make_batch(N, H, W, 0), *others = make_batch(N, H, W, 3);
  const char *list[4] = {files[0], files[1], files[2], files[3]};
  for (int s = 0; s < 4; s++) {
    rn_synth_source src = (rn_synth_source)s;
    if ((src == RN_SYNTH_DTD || src == RN_SYNTH_SIA) && !have_files) continue;
    rn_synth_opts o = rn_synth_opts_default(src);
    o.seed = 1234;
    o.fg = fg;
    rn_synth *sy = NULL;
    int nf = (src == RN_SYNTH_DTD || src == RN_SYNTH_SIA) ? 4 : 0;
    CHECK_OK(rn_synth_new(&sy, &o, nf, list));
    rn_tensor *A = NULL, *M = NULL, *A2 = NULL, *M2 = NULL;
    const rn_tensor *oth = src == RN_SYNTH_NSA ? others : NULL;
    int fb = -1;
    rn_set_num_threads(2);
    CHECK_OK(rn_synth_batch(sy, 0, imgs, oth, &A, &M, &fb));
    CHECK(fb == 0);
    if (A && M) {
      CHECK(A->ndim == 4 && A->shape[0] == N && A->shape[3] == 3 && M->ndim == 3 && M->shape[1] == H);
      int changed = check_properties(rn_synth_source_name(src), imgs, A, M, &fg);
      CHECK(changed >= N - 1); /* the anomaly is visible (a texture could match by chance, rarely) */
    }
    /* one thread gives the same bytes */
    rn_set_num_threads(1);
    CHECK_OK(rn_synth_batch(sy, 0, imgs, oth, &A2, &M2, NULL));
    rn_set_num_threads(0);
    CHECK(diff_bytes(A, A2) == 0 && diff_bytes(M, M2) == 0);
    /* sample 3 alone equals row 3 of the batch */
    rn_tensor *one = NULL, *img = NULL, *o3 = NULL, *oimg = NULL, *a1 = NULL, *m1 = NULL, *rowA = NULL, *rowM = NULL;
    CHECK_OK(rn_select(&one, imgs, 0, 3));
    CHECK_OK(rn_clone(&img, one));
    if (src == RN_SYNTH_NSA) { CHECK_OK(rn_select(&o3, others, 0, 3)); CHECK_OK(rn_clone(&oimg, o3)); }
    rn_synth_info info;
    CHECK_OK(rn_synth_sample(sy, 3, img, oimg, &a1, &m1, &info));
    CHECK(info.draws >= 1 && info.fallback == 0 && info.delta >= o.opacity[0] && info.delta <= o.opacity[1]);
    CHECK(((src == RN_SYNTH_DTD || src == RN_SYNTH_SIA) ? info.file >= 0 && info.file < 4 : info.file == -1));
    CHECK_OK(rn_select(&rowA, A, 0, 3));
    CHECK_OK(rn_select(&rowM, M, 0, 3));
    rn_tensor *ca = NULL, *cm = NULL;
    CHECK_OK(rn_clone(&ca, rowA));
    CHECK_OK(rn_clone(&cm, rowM));
    CHECK(diff_bytes(a1, ca) == 0 && diff_bytes(m1, cm) == 0);
    /* another seed gives other anomalies */
    rn_synth *sy2 = NULL;
    o.seed = 99;
    CHECK_OK(rn_synth_new(&sy2, &o, nf, list));
    rn_tensor *A3 = NULL, *M3 = NULL;
    CHECK_OK(rn_synth_batch(sy2, 0, imgs, oth, &A3, &M3, NULL));
    CHECK(diff_bytes(M, M3) > 0);
    rn_synth_release(sy2);
    rn_tensor_release(A3); rn_tensor_release(M3);
    rn_tensor_release(ca); rn_tensor_release(cm); rn_tensor_release(rowA); rn_tensor_release(rowM);
    rn_tensor_release(one); rn_tensor_release(img); rn_tensor_release(o3); rn_tensor_release(oimg);
    rn_tensor_release(a1); rn_tensor_release(m1);
    rn_tensor_release(A); rn_tensor_release(M); rn_tensor_release(A2); rn_tensor_release(M2);
    rn_synth_release(sy);
  }
  rn_tensor_release(imgs); rn_tensor_release(others);
}

/* A foreground that is empty everywhere: masks are redrawn, then the restriction is dropped and counted. */
static void check_empty_foreground(void) {
  rn_tensor *imgs = make_batch(3, 32, 32, 0);
  rn_synth_opts o = rn_synth_opts_default(RN_SYNTH_CUTPASTE);
  o.seed = 5;
  o.retries = 3;
  o.fg = (rn_fg_rule){RN_FG_OTSU, 2, 0, 0, 0};
  memset(rn_tensor_data(imgs), 77, (size_t)rn_tensor_numel(imgs)); /* flat: Otsu 0, so dark = nothing */
  o.fg.dark = 1;
  rn_synth *sy = NULL;
  CHECK_OK(rn_synth_new(&sy, &o, 0, NULL));
  rn_tensor *A = NULL, *M = NULL, *img = NULL, *one = NULL, *a = NULL, *m = NULL;
  int fb = 0;
  CHECK_OK(rn_synth_batch(sy, 10, imgs, NULL, &A, &M, &fb));
  CHECK(fb == 3);
  const uint8_t *pm = rn_tensor_data(M);
  for (int i = 0; i < 3; i++) {
    int64_t area = 0;
    for (int p = 0; p < 32 * 32; p++) area += pm[i * 32 * 32 + p];
    CHECK(area > 0);
  }
  CHECK_OK(rn_select(&one, imgs, 0, 0));
  CHECK_OK(rn_clone(&img, one));
  rn_synth_info info;
  CHECK_OK(rn_synth_sample(sy, 10, img, NULL, &a, &m, &info));
  CHECK(info.fallback == 1 && info.draws == 5); /* 1 + 3 retries with the foreground, then one without */
  rn_tensor_release(a); rn_tensor_release(m); rn_tensor_release(img); rn_tensor_release(one);
  rn_tensor_release(A); rn_tensor_release(M);
  rn_synth_release(sy);
  rn_tensor_release(imgs);
}

static void check_blend_and_poisson(void) {
  int64_t s3[3] = {8, 8, 3}, s2[2] = {8, 8};
  rn_tensor *img = NULL, *src = NULL, *m = NULL, *out = NULL;
  CHECK_OK(rn_tensor_full(&img, 3, s3, RN_U8, rn_cpu(), 100));
  CHECK_OK(rn_tensor_full(&src, 3, s3, RN_U8, rn_cpu(), 201));
  CHECK_OK(rn_tensor_zeros(&m, 2, s2, RN_U8, rn_cpu()));
  uint8_t *pm = rn_tensor_data(m);
  for (int y = 2; y < 6; y++) for (int x = 3; x < 7; x++) pm[y * 8 + x] = 1;
  CHECK_OK(rn_synth_blend(&out, img, src, m, 0.5));
  const uint8_t *po = rn_tensor_data(out);
  CHECK(po[0] == 100 && po[(2 * 8 + 3) * 3] == 150); /* 0.5*201 + 0.5*100 = 150.5 truncates to 150 */
  rn_tensor_release(out);
  CHECK_OK(rn_synth_blend(&out, img, src, m, 1.0));
  CHECK(((uint8_t *)rn_tensor_data(out))[(3 * 8 + 4) * 3 + 1] == 201);
  rn_tensor_release(out);
  CHECK_ERR(rn_synth_blend(&out, img, src, m, 1.5), RN_ERR_ARG, "opacity");
  CHECK_ERR(rn_synth_blend(&out, img, m, m, 0.5), RN_ERR_SHAPE, "source");

  /* Poisson: a constant source keeps no gradient, so the blend equals the boundary (the destination) */
  CHECK_OK(rn_poisson_blend(&out, img, src, m, 500, 1e-8));
  CHECK(diff_bytes(out, img) == 0);
  rn_tensor_release(out);
  /* a source that is the destination plus a constant: the same again; a ramp keeps its slope inside */
  int64_t b3[3] = {24, 24, 1}, b2[2] = {24, 24};
  rn_tensor *dst = NULL, *ramp = NULL, *mk = NULL;
  CHECK_OK(rn_tensor_empty(&dst, 3, b3, RN_U8, rn_cpu()));
  CHECK_OK(rn_tensor_empty(&ramp, 3, b3, RN_U8, rn_cpu()));
  CHECK_OK(rn_tensor_zeros(&mk, 2, b2, RN_U8, rn_cpu()));
  uint8_t *pd = rn_tensor_data(dst), *pr = rn_tensor_data(ramp), *pk = rn_tensor_data(mk);
  for (int y = 0; y < 24; y++)
    for (int x = 0; x < 24; x++) {
      pd[y * 24 + x] = (uint8_t)(60 + x + 2 * y);
      pr[y * 24 + x] = (uint8_t)(pd[y * 24 + x] + 40);
      pk[y * 24 + x] = y >= 6 && y < 18 && x >= 5 && x < 20;
    }
  CHECK_OK(rn_poisson_blend(&out, dst, ramp, mk, 2000, 1e-10));
  CHECK(test_max_abs_diff(out, dst) <= 1.0); /* rounding only */
  rn_tensor_release(out);
  /* a bump in the source over a flat destination: the bump survives, the borders stay the destination's */
  for (int y = 0; y < 24; y++)
    for (int x = 0; x < 24; x++) {
      double r2 = (x - 12) * (x - 12) + (y - 12) * (y - 12);
      pd[y * 24 + x] = 100;
      pr[y * 24 + x] = (uint8_t)(30 + 60 * exp(-r2 / 8));
    }
  CHECK_OK(rn_poisson_blend(&out, dst, ramp, mk, 2000, 1e-10));
  const uint8_t *pb = rn_tensor_data(out);
  CHECK(pb[12 * 24 + 12] >= 150 && pb[12 * 24 + 12] <= 162); /* 100 + 60, less the bump's tail at the border */
  CHECK(pb[12 * 24 + 6] < 110 && pb[12 * 24 + 6] >= 95);
  CHECK(pb[0] == 100 && pb[23 * 24 + 23] == 100 && pb[12 * 24 + 4] == 100);
  rn_tensor_release(out);
  CHECK_ERR(rn_poisson_blend(&out, dst, img, mk, 10, 1e-5), RN_ERR_SHAPE, "src");
  CHECK_ERR(rn_poisson_blend(&out, dst, ramp, m, 10, 1e-5), RN_ERR_SHAPE, "mask");
  CHECK_ERR(rn_poisson_blend(&out, dst, ramp, mk, -1, 1e-5), RN_ERR_ARG, "iterations");
  rn_tensor_release(dst); rn_tensor_release(ramp); rn_tensor_release(mk);
  rn_tensor_release(img); rn_tensor_release(src); rn_tensor_release(m);
}

/* NSA is seamless: a patch of a flat bright image Poisson-blended into a flat dark one keeps no edge, so
 * A == I everywhere (a plain paste would leave a bright rectangle). */
static void check_nsa_seamless(void) {
  int64_t shape[4] = {2, 32, 32, 3};
  rn_tensor *imgs = NULL, *others = NULL, *A = NULL, *M = NULL;
  CHECK_OK(rn_tensor_full(&imgs, 4, shape, RN_U8, rn_cpu(), 60));
  CHECK_OK(rn_tensor_full(&others, 4, shape, RN_U8, rn_cpu(), 200));
  rn_synth_opts o = rn_synth_opts_default(RN_SYNTH_NSA);
  rn_synth *sy = NULL;
  CHECK_OK(rn_synth_new(&sy, &o, 0, NULL));
  CHECK_OK(rn_synth_batch(sy, 0, imgs, others, &A, &M, NULL));
  CHECK(diff_bytes(A, imgs) == 0);
  int64_t area = 0;
  for (int64_t k = 0; k < rn_tensor_numel(M); k++) area += ((uint8_t *)rn_tensor_data(M))[k];
  CHECK(area > 0);
  rn_tensor_release(A); rn_tensor_release(M);
  o = rn_synth_opts_default(RN_SYNTH_CUTPASTE); /* CutPaste of the same flat image changes nothing either */
  rn_synth_release(sy);
  CHECK_OK(rn_synth_new(&sy, &o, 0, NULL));
  CHECK_OK(rn_synth_batch(sy, 0, imgs, NULL, &A, &M, NULL));
  CHECK(diff_bytes(A, imgs) == 0);
  rn_tensor_release(A); rn_tensor_release(M);
  rn_synth_release(sy);
  rn_tensor_release(imgs); rn_tensor_release(others);
}

static void check_augmenters(void) {
  rn_tensor *b = make_batch(1, 32, 40, 0), *img = NULL, *one = NULL;
  CHECK_OK(rn_select(&one, b, 0, 0));
  CHECK_OK(rn_clone(&img, one));
  for (int k = 0; k < RN_SYNTH_AUGMENTERS; k++) {
    rn_tensor *x = NULL, *y = NULL;
    CHECK_OK(rn_clone(&x, img));
    CHECK_OK(rn_clone(&y, img));
    rn_rng g1, g2;
    rn_rng_init(&g1, 8, (uint64_t)k);
    rn_rng_init(&g2, 8, (uint64_t)k);
    CHECK_OK(rn_synth_augment_(x, k, &g1));
    CHECK_OK(rn_synth_augment_(y, k, &g2));
    CHECK(diff_bytes(x, y) == 0);                    /* deterministic */
    CHECK(x->shape[0] == 32 && x->shape[1] == 40);
    if (k != 4) CHECK(diff_bytes(x, img) > 0);       /* solarize applies with p = 0.5 only */
    rn_tensor_release(x); rn_tensor_release(y);
  }
  /* invert is exact and an involution; posterize clears low bits; equalize spreads the histogram */
  rn_rng g;
  rn_rng_init(&g, 1, 0);
  rn_tensor *x = NULL;
  CHECK_OK(rn_clone(&x, img));
  CHECK_OK(rn_synth_augment_(x, 6, &g));
  CHECK(((uint8_t *)rn_tensor_data(x))[0] == 255 - ((uint8_t *)rn_tensor_data(img))[0]);
  CHECK_OK(rn_synth_augment_(x, 6, &g));
  CHECK(diff_bytes(x, img) == 0);
  CHECK_OK(rn_synth_augment_(x, 8, &g));
  uint8_t mn = 255, mx = 0;
  for (int64_t i = 0; i < rn_tensor_numel(x); i++) {
    uint8_t v = ((uint8_t *)rn_tensor_data(x))[i];
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
  }
  CHECK(mn < 20 && mx > 235);
  rn_tensor_release(x);
  CHECK_ERR(rn_synth_augment_(img, 10, &g), RN_ERR_ARG, "augment");
  CHECK_ERR(rn_synth_augment_(img, 0, NULL), RN_ERR_ARG, "generator");
  /* resize: the same size is the identity, a constant stays constant */
  rn_tensor *r = NULL;
  CHECK_OK(rn_synth_resize(&r, img, 32, 40));
  CHECK(diff_bytes(r, img) == 0);
  rn_tensor_release(r);
  CHECK_OK(rn_synth_resize(&r, img, 64, 20));
  CHECK(r->shape[0] == 64 && r->shape[1] == 20 && r->shape[2] == 3);
  rn_tensor_release(r);
  CHECK_ERR(rn_synth_resize(&r, img, 0, 20), RN_ERR_ARG, "size");
  rn_tensor_release(img); rn_tensor_release(one); rn_tensor_release(b);
}

static void check_conversions(void) {
  rn_tensor *b = make_batch(2, 8, 10, 0), *f = NULL, *back = NULL, *u = NULL, *g = NULL, *m = NULL;
  CHECK_OK(rn_synth_to_chw(&f, b, RN_SYNTH_IMAGENET));
  CHECK(f->ndim == 4 && f->shape[1] == 3 && f->shape[2] == 8 && f->shape[3] == 10);
  const uint8_t *pb = rn_tensor_data(b);
  CHECK_NEAR(rn_f32(f)[0], (pb[0] / 255.0 - 0.485) / 0.229, 1e-5);
  CHECK_NEAR(rn_f32(f)[80], (pb[1] / 255.0 - 0.456) / 0.224, 1e-5); /* channel 1, pixel 0 */
  CHECK_OK(rn_synth_from_chw(&back, f, RN_SYNTH_IMAGENET));
  CHECK(diff_bytes(back, b) == 0);
  CHECK_OK(rn_synth_to_chw(&u, b, RN_SYNTH_UNIT));
  CHECK_NEAR(rn_f32(u)[0], pb[0] / 255.0, 1e-7);
  int64_t ms[3] = {2, 8, 10};
  CHECK_OK(rn_tensor_zeros(&m, 3, ms, RN_U8, rn_cpu()));
  ((uint8_t *)rn_tensor_data(m))[5] = 1;
  rn_tensor *mf = NULL;
  CHECK_OK(rn_synth_to_chw(&mf, m, RN_SYNTH_RAW));
  CHECK(mf->ndim == 4 && mf->shape[1] == 1 && rn_f32(mf)[5] == 1.0f);
  CHECK_ERR(rn_synth_to_chw(&g, m, RN_SYNTH_IMAGENET), RN_ERR_SHAPE, "3 channels");
  CHECK_OK(rn_synth_grid(&g, b, m, b, 2));
  CHECK(g->shape[0] == 2 * 8 + 2 && g->shape[1] == 3 * 10 + 4 && g->shape[2] == 3);
  const uint8_t *pg = rn_tensor_data(g);
  CHECK(pg[0] == pb[0] && pg[(0 * 34 + 12 + 5) * 3] == 255 && pg[(0 * 34 + 12 + 4) * 3] == 0);
  CHECK(pg[(8 * 34) * 3] == 255); /* the gap row is white */
  rn_tensor *bad = NULL;
  CHECK_ERR(rn_synth_grid(&bad, b, b, b, 2), RN_ERR_SHAPE, "M");
  rn_tensor_release(f); rn_tensor_release(back); rn_tensor_release(u); rn_tensor_release(g);
  rn_tensor_release(m); rn_tensor_release(mf); rn_tensor_release(b);
}

static void check_bad_inputs(void) {
  rn_synth *sy = NULL;
  rn_synth_opts o = rn_synth_opts_default(RN_SYNTH_DTD);
  CHECK_ERR(rn_synth_new(&sy, &o, 0, NULL), RN_ERR_ARG, "image file");
  o = rn_synth_opts_default(RN_SYNTH_CUTPASTE);
  o.opacity[0] = 0.9;
  o.opacity[1] = 0.2;
  CHECK_ERR(rn_synth_new(&sy, &o, 0, NULL), RN_ERR_ARG, "opacity");
  o = rn_synth_opts_default(RN_SYNTH_CUTPASTE);
  o.retries = -1;
  CHECK_ERR(rn_synth_new(&sy, &o, 0, NULL), RN_ERR_ARG, "retries");
  o = rn_synth_opts_default(RN_SYNTH_CUTPASTE);
  o.area[0] = 0;
  CHECK_ERR(rn_synth_new(&sy, &o, 0, NULL), RN_ERR_ARG, "area");
  rn_synth_source s;
  CHECK_ERR(rn_synth_source_parse("perlin", &s), RN_ERR_ARG, "unknown source");
  CHECK_OK(rn_synth_source_parse("sdas", &s));
  CHECK(s == RN_SYNTH_SIA);
  CHECK(sy == NULL);

  /* NSA needs partners; a missing file fails the batch naming the path */
  rn_tensor *imgs = make_batch(2, 16, 16, 0), *A = NULL, *M = NULL;
  o = rn_synth_opts_default(RN_SYNTH_NSA);
  CHECK_OK(rn_synth_new(&sy, &o, 0, NULL));
  CHECK_ERR(rn_synth_batch(sy, 0, imgs, NULL, &A, &M, NULL), RN_ERR_ARG, "others");
  rn_synth_release(sy);
  const char *missing[1] = {"/nonexistent/realnet/tex.png"};
  o = rn_synth_opts_default(RN_SYNTH_SIA);
  CHECK_OK(rn_synth_new(&sy, &o, 1, missing));
  CHECK_ERR(rn_synth_batch(sy, 0, imgs, NULL, &A, &M, NULL), RN_ERR_IO, "/nonexistent/realnet/tex.png");
  CHECK(A == NULL && M == NULL);
  int64_t bs[3] = {2, 16, 16};
  rn_tensor *gray = NULL;
  CHECK_OK(rn_tensor_zeros(&gray, 3, bs, RN_U8, rn_cpu()));
  CHECK_ERR(rn_synth_batch(sy, 0, gray, NULL, &A, &M, NULL), RN_ERR_SHAPE, "[N,H,W,3]");
  rn_synth_release(sy);
  rn_tensor_release(gray); rn_tensor_release(imgs);
}

/* Real data when ../shared is present: magnetic tile images with DTD textures. */
static void check_shared(void) {
  char dtd[512], tile[512], tile2[512];
  snprintf(dtd, sizeof dtd, "%s/data/dtd_subset/banded/banded_0002.jpg", SHARED_DIR);
  snprintf(tile, sizeof tile, "%s/data/magnetic_tile/train/good/000.png", SHARED_DIR);
  snprintf(tile2, sizeof tile2, "%s/data/magnetic_tile/train/good/001.png", SHARED_DIR);
  if (access(dtd, R_OK) != 0 || access(tile, R_OK) != 0 || access(tile2, R_OK) != 0) {
    printf("  ../shared/data not present: real-data checks skipped\n");
    return;
  }
  rn_image_opts io = rn_image_opts_default();
  io.channels = 3;
  rn_tensor *a = NULL, *b = NULL, *ra = NULL, *rb = NULL, *imgs = NULL, *others = NULL;
  CHECK_OK(rn_image_read(&a, tile, &io));
  CHECK_OK(rn_image_read(&b, tile2, &io));
  CHECK_OK(rn_image_resize(&ra, a, 128, 128, RN_RESIZE_BILINEAR));
  CHECK_OK(rn_image_resize(&rb, b, 128, 128, RN_RESIZE_BILINEAR));
  int64_t shape[4] = {2, 128, 128, 3};
  CHECK_OK(rn_tensor_empty(&imgs, 4, shape, RN_U8, rn_cpu()));
  CHECK_OK(rn_tensor_empty(&others, 4, shape, RN_U8, rn_cpu()));
  size_t one = 128 * 128 * 3;
  memcpy(rn_tensor_data(imgs), rn_tensor_data(ra), one);
  memcpy((uint8_t *)rn_tensor_data(imgs) + one, rn_tensor_data(rb), one);
  memcpy(rn_tensor_data(others), rn_tensor_data(rb), one);
  memcpy((uint8_t *)rn_tensor_data(others) + one, rn_tensor_data(ra), one);
  const char *list[1] = {dtd};
  const rn_fg_rule fg = {RN_FG_OTSU, -1, 0, 6, 6};
  for (int s = 0; s < 4; s++) {
    rn_synth_opts o = rn_synth_opts_default((rn_synth_source)s);
    o.seed = 3;
    o.fg = fg;
    rn_synth *sy = NULL;
    CHECK_OK(rn_synth_new(&sy, &o, s <= RN_SYNTH_SIA ? 1 : 0, list));
    rn_tensor *A = NULL, *M = NULL;
    CHECK_OK(rn_synth_batch(sy, 0, imgs, s == RN_SYNTH_NSA ? others : NULL, &A, &M, NULL));
    if (A) check_properties(rn_synth_source_name((rn_synth_source)s), imgs, A, M, &fg);
    rn_tensor_release(A); rn_tensor_release(M);
    rn_synth_release(sy);
  }
  rn_tensor_release(a); rn_tensor_release(b); rn_tensor_release(ra); rn_tensor_release(rb);
  rn_tensor_release(imgs); rn_tensor_release(others);
}

int main(void) {
  int have = write_sources();
  CHECK(have);
  check_sources(have);
  check_empty_foreground();
  check_blend_and_poisson();
  check_nsa_seamless();
  check_augmenters();
  check_conversions();
  check_bad_inputs();
  check_shared();
  if (have) remove_sources();
  return test_finish("synth");
}
