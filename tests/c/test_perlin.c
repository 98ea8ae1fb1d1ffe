/* test_perlin.c - Perlin masks (spec 3.2) against the numpy reference of tests/fixtures/gen_synth.py (which
 * reimplements Philox, DRAEM's rand_perlin_2d_np and the rotation), plus statistics and bad inputs. */
#include <math.h>

#include "realnet/synth.h"
#include "testutil.h"

/* Mismatching pixels of two uint8 masks (threshold ties can differ by an ulp of the rotated noise). */
static int64_t mismatches(const rn_tensor *a, const rn_tensor *b) {
  if (!a || !b || rn_tensor_numel(a) != rn_tensor_numel(b)) return -1;
  const uint8_t *p = rn_tensor_data(a), *q = rn_tensor_data(b);
  int64_t n = 0;
  for (int64_t k = 0; k < rn_tensor_numel(a); k++) n += p[k] != q[k];
  return n;
}

static double mean_u8(const rn_tensor *t) {
  const uint8_t *p = rn_tensor_data(t);
  double s = 0;
  for (int64_t k = 0; k < rn_tensor_numel(t); k++) s += p[k];
  return s / (double)rn_tensor_numel(t);
}

static void check_fixture_masks(void) {
  rn_tensor *info = test_fixture("synth/perlin_info.npy");
  if (!info) return;
  const float *row = rn_f32(info);
  for (int64_t c = 0; c < info->shape[0]; c++, row += info->shape[1]) {
    uint64_t seed = (uint64_t)row[0], stream = (uint64_t)row[1];
    int64_t h = (int64_t)row[2], w = (int64_t)row[3];
    char name[128];
    snprintf(name, sizeof name, "synth/perlin_mask_s%llu_t%llu_%lldx%lld.npy", (unsigned long long)seed,
             (unsigned long long)stream, (long long)h, (long long)w);
    rn_tensor *want = test_fixture(name), *m = NULL;
    rn_rng g;
    rn_rng_init(&g, seed, stream);
    rn_perlin_info pi;
    CHECK_OK(rn_perlin_mask(&m, &g, h, w, NULL, &pi));
    CHECK(pi.rx == (int)row[4] && pi.ry == (int)row[5]); /* the same scale draws */
    CHECK_NEAR(pi.degrees, row[6], 1e-4);
    int64_t bad = mismatches(m, want);
    CHECK(bad >= 0 && bad <= h * w / 2000); /* exact up to threshold ties */
    if (bad != 0) printf("  %s: %lld of %lld pixels differ\n", name, (long long)bad, (long long)(h * w));
    CHECK_NEAR(mean_u8(m), row[7], 1e-3);
    /* and the same again from the same seed */
    rn_tensor *m2 = NULL;
    rn_rng_init(&g, seed, stream);
    CHECK_OK(rn_perlin_mask(&m2, &g, h, w, NULL, NULL));
    CHECK(mismatches(m, m2) == 0);
    rn_tensor_release(m2);
    rn_tensor_release(m);
    rn_tensor_release(want);
  }
  rn_tensor_release(info);
}

static void check_noise_and_rotation(void) {
  rn_tensor *ang = test_fixture("synth/perlin_angles_4x8.npy"), *want = test_fixture("synth/perlin_noise_4x8_64x64.npy");
  rn_tensor *rot = test_fixture("synth/perlin_rot_33deg_64x64.npy"), *n = NULL, *r = NULL;
  if (!ang || !want || !rot) return;
  CHECK_OK(rn_perlin_noise(&n, 64, 64, ang));
  test_check_close(n, want, 1e-5, 1e-5, "perlin noise vs DRAEM reference");
  CHECK_OK(rn_synth_rotate(&r, want, 33.0));
  test_check_close(r, rot, 1e-5, 1e-5, "rotation vs reference");
  /* noise is zero on lattice points and bounded by sqrt(2)/2 * sqrt(2) = 1 */
  const float *p = rn_f32(n);
  CHECK_NEAR(p[0], 0, 1e-7);
  CHECK_NEAR(p[16 * 64 + 8], 0, 1e-6); /* (i, j) = (16, 8): a lattice corner for rx = 4, ry = 8 */
  float mx = 0;
  for (int k = 0; k < 64 * 64; k++) mx = fmaxf(mx, fabsf(p[k]));
  CHECK(mx <= 1.0f + 1e-5f);
  /* rotation by 0 is the identity; by 180 about the centre reverses the pixels */
  rn_tensor *r0 = NULL, *r180 = NULL;
  CHECK_OK(rn_synth_rotate(&r0, want, 0.0));
  test_check_close(r0, want, 1e-6, 0, "rotate 0");
  CHECK_OK(rn_synth_rotate(&r180, want, 180.0));
  const float *a = rn_f32(want), *b = rn_f32(r180);
  double err = 0;
  for (int k = 0; k < 64 * 64; k++) err = fmax(err, fabs(b[k] - a[64 * 64 - 1 - k]));
  CHECK(err < 1e-5);
  rn_tensor_release(r0); rn_tensor_release(r180);
  rn_tensor_release(n); rn_tensor_release(r);
  rn_tensor_release(ang); rn_tensor_release(want); rn_tensor_release(rot);
}

/* Coverage of 200 masks against the reference, every scale pair drawn about equally often, binary values. */
static void check_statistics(void) {
  rn_tensor *cov = test_fixture("synth/perlin_coverage_200.npy");
  if (!cov) return;
  int pairs[6][6] = {{0}};
  double sum = 0, ref = 0;
  int empty = 0, nonbinary = 0;
  for (int s = 0; s < 200; s++) {
    rn_rng g;
    rn_rng_init(&g, (uint64_t)s, 0);
    rn_tensor *m = NULL;
    rn_perlin_info pi;
    CHECK_OK(rn_perlin_mask(&m, &g, 64, 64, NULL, &pi));
    double c = mean_u8(m);
    CHECK_NEAR(c, rn_f32(cov)[s], 2e-3);
    sum += c;
    ref += rn_f32(cov)[s];
    empty += c == 0;
    const uint8_t *p = rn_tensor_data(m);
    for (int k = 0; k < 64 * 64; k++) nonbinary += p[k] > 1;
    pairs[(int)log2(pi.rx)][(int)log2(pi.ry)]++;
    CHECK(pi.degrees >= -90 && pi.degrees < 90);
    rn_tensor_release(m);
  }
  CHECK(nonbinary == 0);
  CHECK_NEAR(sum / 200, ref / 200, 1e-4);
  CHECK(sum / 200 > 0.02 && sum / 200 < 0.1); /* threshold 0.5 keeps the blobs' peaks */
  CHECK(empty < 40);                          /* empty masks happen (and get redrawn by the sources) */
  int minc = 1000, maxc = 0;
  for (int a = 0; a < 6; a++)
    for (int b = 0; b < 6; b++) { minc = pairs[a][b] < minc ? pairs[a][b] : minc; maxc = pairs[a][b] > maxc ? pairs[a][b] : maxc; }
  CHECK(minc >= 1 && maxc <= 16); /* 200 draws over 36 pairs: about 5.6 each */
  rn_tensor_release(cov);

  /* a lower threshold covers more; a fixed scale range is respected */
  rn_perlin_opts o = rn_perlin_opts_default();
  o.threshold = -2;
  rn_rng g;
  rn_rng_init(&g, 3, 0);
  rn_tensor *m = NULL;
  CHECK_OK(rn_perlin_mask(&m, &g, 32, 32, &o, NULL));
  const uint8_t *p = rn_tensor_data(m);
  CHECK(p[16 * 32 + 16] == 1); /* everything inside the rotated image exceeds -2 */
  rn_tensor_release(m);
  o = rn_perlin_opts_default();
  o.min_scale = 2;
  o.max_scale = 3;
  rn_perlin_info pi;
  CHECK_OK(rn_perlin_mask(&m, &g, 32, 48, &o, &pi));
  CHECK(pi.rx == 4 && pi.ry == 4);
  CHECK(m->shape[0] == 32 && m->shape[1] == 48);
  rn_tensor_release(m);
}

/* The generator advances: two masks in a row differ; offset moves by the documented number of draws. */
static void check_draw_accounting(void) {
  rn_rng g;
  rn_rng_init(&g, 11, 4);
  rn_tensor *a = NULL, *b = NULL;
  rn_perlin_info pi;
  uint64_t before = g.offset;
  CHECK_OK(rn_perlin_mask(&a, &g, 64, 64, NULL, &pi));
  /* two scale draws (one word pair each unless rejected: never for 6 values), the lattice, one rotation */
  CHECK(g.offset - before == 2 + (uint64_t)(pi.rx + 1) * (pi.ry + 1) + 1);
  CHECK_OK(rn_perlin_mask(&b, &g, 64, 64, NULL, NULL));
  CHECK(mismatches(a, b) != 0);
  rn_tensor_release(a); rn_tensor_release(b);
}

static void check_bad_inputs(void) {
  rn_rng g;
  rn_rng_init(&g, 1, 0);
  rn_tensor *m = NULL;
  rn_perlin_opts o = rn_perlin_opts_default();
  CHECK_ERR(rn_perlin_mask(&m, &g, 0, 16, NULL, NULL), RN_ERR_ARG, "size");
  CHECK_ERR(rn_perlin_mask(&m, &g, 16, -3, NULL, NULL), RN_ERR_ARG, "size");
  CHECK_ERR(rn_perlin_mask(&m, NULL, 16, 16, NULL, NULL), RN_ERR_ARG, "generator");
  o.max_scale = 0;
  CHECK_ERR(rn_perlin_mask(&m, &g, 16, 16, &o, NULL), RN_ERR_ARG, "scales");
  o = rn_perlin_opts_default();
  o.threshold = NAN;
  CHECK_ERR(rn_perlin_mask(&m, &g, 16, 16, &o, NULL), RN_ERR_ARG, "threshold");
  o = rn_perlin_opts_default();
  o.rot_lo = 10;
  o.rot_hi = -10;
  CHECK_ERR(rn_perlin_mask(&m, &g, 16, 16, &o, NULL), RN_ERR_ARG, "rotation");
  CHECK(m == NULL);
  int64_t s1[1] = {4}, s2[2] = {3, 3};
  rn_tensor *bad = NULL, *i32 = NULL, *n = NULL;
  CHECK_OK(rn_tensor_zeros(&bad, 1, s1, RN_F32, rn_cpu()));
  CHECK_OK(rn_tensor_zeros(&i32, 2, s2, RN_I32, rn_cpu()));
  CHECK_ERR(rn_perlin_noise(&n, 8, 8, bad), RN_ERR_SHAPE, "angles");
  CHECK_ERR(rn_perlin_noise(&n, 8, 8, i32), RN_ERR_SHAPE, "float32");
  CHECK_ERR(rn_perlin_noise(&n, 0, 8, i32), RN_ERR_ARG, "size");
  CHECK_ERR(rn_synth_rotate(&n, i32, 10), RN_ERR_SHAPE, "rotate");
  CHECK_ERR(rn_synth_rotate(&n, bad, NAN), RN_ERR_ARG, "finite");
  rn_tensor_release(bad); rn_tensor_release(i32);
}

int main(void) {
  check_fixture_masks();
  check_noise_and_rotation();
  check_statistics();
  check_draw_accounting();
  check_bad_inputs();
  return test_finish("perlin");
}
