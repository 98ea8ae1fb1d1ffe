/* test_patchcore.c - the PatchCore baseline: greedy coreset on a constructed set and against a naive
 * reference, k-NN against brute force, Gaussian smoothing, the embedding, the fit/predict pipeline on synthetic
 * images (a bright square must score above normal images), save/load round trip and bad input. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "realnet/patchcore.h"
#include "testutil.h"

static rn_tensor *matrix(int64_t rows, int64_t cols, const float *v) {
  rn_tensor *t = NULL;
  int64_t shape[2] = {rows, cols};
  CHECK_OK(rn_tensor_from_data(&t, 2, shape, RN_F32, v));
  return t;
}

static void test_kcenter_constructed(void) {
  /* from row 0 the farthest is (10,0); then (5,5) at 50 beats (0,-7) at 49; then (0,-7), (-3,0), and the tie
   * of (1,0) and (0,1) at distance 1 goes to the lower row */
  const float pts[] = {0, 0, 1, 0, 0, 1, 10, 0, 0, -7, 5, 5, -3, 0};
  rn_tensor *x = matrix(7, 2, pts), *idx = NULL;
  CHECK_OK(rn_pc_kcenter_greedy(&idx, x, 7, 0));
  const int64_t want[] = {0, 3, 5, 4, 6, 1, 2};
  const int64_t *got = (const int64_t *)rn_tensor_data(idx);
  for (int i = 0; i < 7; i++) CHECK(got[i] == want[i]);
  rn_tensor_release(idx);
  CHECK_OK(rn_pc_kcenter_greedy(&idx, x, 3, 4)); /* from (0,-7): (5,5) at 169, then (-3,0) at 58 */
  got = (const int64_t *)rn_tensor_data(idx);
  CHECK(got[0] == 4 && got[1] == 5 && got[2] == 6);
  rn_tensor_release(idx);
  CHECK_ERR(rn_pc_kcenter_greedy(&idx, x, 8, 0), RN_ERR_ARG, "number of points");
  CHECK_ERR(rn_pc_kcenter_greedy(&idx, x, 0, 0), RN_ERR_ARG, "k = 0");
  CHECK_ERR(rn_pc_kcenter_greedy(&idx, x, 2, 7), RN_ERR_ARG, "start");
  rn_tensor_release(x);
  /* duplicates: every pick is still a distinct row */
  float zeros[12] = {0};
  x = matrix(6, 2, zeros);
  CHECK_OK(rn_pc_kcenter_greedy(&idx, x, 6, 2));
  got = (const int64_t *)rn_tensor_data(idx);
  int seen[6] = {0};
  for (int i = 0; i < 6; i++) seen[got[i]]++;
  for (int i = 0; i < 6; i++) CHECK(seen[i] == 1);
  rn_tensor_release(idx);
  rn_tensor_release(x);
}

/* Naive greedy k-center in double precision, the reference for the threaded kernel. */
static void kcenter_ref(const float *x, int64_t n, int64_t d, int64_t k, int64_t start, int64_t *sel) {
  double *mind = malloc((size_t)n * sizeof *mind);
  for (int64_t i = 0; i < n; i++) mind[i] = DBL_MAX;
  sel[0] = start;
  for (int64_t t = 1; t < k; t++) {
    mind[sel[t - 1]] = -1;
    int64_t bi = -1;
    for (int64_t i = 0; i < n; i++) {
      if (mind[i] < 0) continue;
      double s = 0;
      for (int64_t j = 0; j < d; j++) {
        double u = (double)x[i * d + j] - x[sel[t - 1] * d + j];
        s += u * u;
      }
      if (s < mind[i]) mind[i] = s;
      if (bi < 0 || mind[i] > mind[bi]) bi = i;
    }
    sel[t] = bi;
  }
  free(mind);
}

static void test_kcenter_reference(void) {
  /* Gaussian points, and the same squeezed into 40 tight blobs (where cluster skipping does most), with enough
   * centres that the radii shrink well below the spread */
  int64_t shape[2] = {6000, 24}, k = 700;
  rn_tensor *x = test_randn(2, shape, 11, 1.0f), *idx = NULL;
  int64_t *ref = malloc((size_t)k * sizeof *ref);
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) {
      float *p = rn_f32(x);
      for (int64_t i = 0; i < shape[0]; i++)
        for (int j = 0; j < 24; j++) p[i * 24 + j] = 0.05f * p[i * 24 + j] + (float)((i % 40) * (j % 5 + 1));
    }
    CHECK_OK(rn_pc_kcenter_greedy(&idx, x, k, 17));
    kcenter_ref(rn_f32(x), shape[0], shape[1], k, 17, ref);
    const int64_t *got = (const int64_t *)rn_tensor_data(idx);
    int64_t first_diff = -1;
    for (int64_t i = 0; i < k && first_diff < 0; i++)
      if (got[i] != ref[i]) first_diff = i;
    if (first_diff >= 0) printf("kcenter pass %d: first difference at pick %lld\n", pass, (long long)first_diff);
    CHECK(first_diff < 0);
    rn_tensor_release(idx);
  }
  free(ref);
  rn_tensor_release(x);
  x = test_randn(2, shape, 11, 1.0f);
  /* the projection keeps pairwise distances roughly (JL): check one pair's ratio */
  rn_tensor *p = NULL;
  CHECK_OK(rn_pc_project(&p, x, 128, 3));
  CHECK(p->shape[0] == 6000 && p->shape[1] == 128);
  double a = 0, b = 0;
  for (int j = 0; j < 24; j++) a += pow(rn_f32(x)[j] - rn_f32(x)[24 + j], 2);
  for (int j = 0; j < 128; j++) b += pow(rn_f32(p)[j] - rn_f32(p)[128 + j], 2);
  CHECK(b / a > 0.5 && b / a < 1.5);
  rn_tensor_release(p);
  CHECK_ERR(rn_pc_project(&p, x, 0, 3), RN_ERR_ARG, "dims");
  rn_tensor_release(x);
}

static void test_knn(void) {
  int64_t qs[2] = {300, 40}, bs[2] = {2100, 40};
  rn_tensor *q = test_randn(2, qs, 5, 1.0f), *bank = test_randn(2, bs, 6, 1.0f), *dist = NULL, *idx = NULL;
  memcpy(rn_f32(q), rn_f32(bank) + 7 * 40, 40 * sizeof(float)); /* an exact hit: distance 0 to row 7 */
  const int k = 3;
  CHECK_OK(rn_pc_knn(&dist, &idx, q, bank, k));
  CHECK(dist->shape[0] == 300 && dist->shape[1] == k);
  const float *pq = rn_f32(q), *pb = rn_f32(bank), *pd = rn_f32(dist);
  const int64_t *pi = (const int64_t *)rn_tensor_data(idx);
  int idx_ok = 1;
  double err = 0;
  for (int64_t i = 0; i < 300; i++) {
    double best[3] = {DBL_MAX, DBL_MAX, DBL_MAX};
    int64_t bi[3] = {-1, -1, -1};
    for (int64_t r = 0; r < 2100; r++) {
      double s = 0;
      for (int j = 0; j < 40; j++) s += pow((double)pq[i * 40 + j] - pb[r * 40 + j], 2);
      s = sqrt(s);
      for (int p = 0; p < 3; p++)
        if (s < best[p]) {
          for (int u = 2; u > p; u--) { best[u] = best[u - 1]; bi[u] = bi[u - 1]; }
          best[p] = s;
          bi[p] = r;
          break;
        }
    }
    for (int p = 0; p < k; p++) {
      idx_ok &= pi[i * k + p] == bi[p];
      err = fmax(err, fabs(pd[i * k + p] - best[p]));
    }
  }
  CHECK(idx_ok);
  CHECK(err < 1e-5);
  CHECK(pi[0] == 7 && pd[0] == 0.0f);
  rn_tensor_release(dist);
  rn_tensor_release(idx);
  CHECK_ERR(rn_pc_knn(&dist, &idx, q, bank, 2101), RN_ERR_ARG, "bank size");
  rn_tensor *narrow = NULL;
  CHECK_OK(rn_narrow(&narrow, bank, 1, 0, 39));
  CHECK_ERR(rn_pc_knn(&dist, &idx, q, narrow, 1), RN_ERR_SHAPE, "dims");
  rn_tensor_release(narrow);
  rn_tensor_release(q);
  rn_tensor_release(bank);
}

static void test_blur(void) {
  int64_t shape[4] = {1, 1, 41, 45};
  rn_tensor *x = NULL, *y = NULL;
  CHECK_OK(rn_tensor_full(&x, 4, shape, RN_F32, rn_cpu(), 2.5));
  CHECK_OK(rn_pc_gaussian_blur(&y, x, 4.0f)); /* constant in, constant out (reflect borders) */
  double e = 0;
  for (int64_t i = 0; i < 41 * 45; i++) e = fmax(e, fabs(rn_f32(y)[i] - 2.5));
  CHECK(e < 1e-5);
  rn_tensor_release(y);
  CHECK_OK(rn_fill_(x, 0));
  rn_f32(x)[20 * 45 + 22] = 1.0f; /* a centred impulse gives the normalised 2-d kernel */
  CHECK_OK(rn_pc_gaussian_blur(&y, x, 2.0f));
  double z = 0;
  for (int i = -8; i <= 8; i++) z += exp(-i * i / 8.0);
  double err = 0;
  for (int i = -8; i <= 8; i++)
    for (int j = -8; j <= 8; j++)
      err = fmax(err, fabs(rn_f32(y)[(20 + i) * 45 + 22 + j] - exp(-(i * i + j * j) / 8.0) / (z * z)));
  CHECK(err < 1e-6);
  CHECK(rn_f32(y)[20 * 45 + 22 + 9] == 0.0f); /* radius round(4 sigma) = 8 */
  rn_tensor_release(y);
  CHECK_ERR(rn_pc_gaussian_blur(&y, x, 0.0f), RN_ERR_ARG, "sigma");
  rn_tensor_release(x);
}

static void test_embed(void) {
  rn_patchcore_opts o = rn_patchcore_opts_default();
  o.neighbourhood = 1;
  rn_patchcore *pc = NULL;
  CHECK_OK(rn_patchcore_new(&pc, NULL, &o));
  int64_t sa[4] = {2, 3, 4, 4}, sb[4] = {2, 5, 4, 4};
  rn_tensor *f[2] = {test_randn(4, sa, 1, 1.0f), test_randn(4, sb, 2, 1.0f)}, *e = NULL;
  CHECK_OK(rn_patchcore_embed(pc, f, &e)); /* no averaging, same grid: the channel concatenation */
  CHECK(e->ndim == 4 && e->shape[0] == 2 && e->shape[1] == 4 && e->shape[2] == 4 && e->shape[3] == 8);
  int ok = 1;
  for (int n = 0; n < 2; n++)
    for (int p = 0; p < 16; p++)
      for (int c = 0; c < 8; c++) {
        float want = c < 3 ? rn_f32(f[0])[(n * 3 + c) * 16 + p] : rn_f32(f[1])[(n * 5 + c - 3) * 16 + p];
        ok &= rn_f32(e)[(n * 16 + p) * 8 + c] == want;
      }
  CHECK(ok);
  rn_tensor_release(e);
  rn_patchcore_free(pc);
  /* 3x3 averaging counts the zero padding (corner = 4/9 of a constant), dim 4 averages channel pairs */
  o.neighbourhood = 3;
  o.dim = 4;
  CHECK_OK(rn_patchcore_new(&pc, NULL, &o));
  CHECK_OK(rn_fill_(f[0], 9.0));
  CHECK_OK(rn_fill_(f[1], 9.0));
  rn_f32(f[1])[0] = 9.0f; /* unchanged: keeps it constant */
  CHECK_OK(rn_patchcore_embed(pc, f, &e));
  CHECK(e->shape[3] == 4);
  CHECK_NEAR(rn_f32(e)[0], 4.0, 1e-5);            /* corner patch (0,0) */
  CHECK_NEAR(rn_f32(e)[(1 * 4 + 1) * 4], 9.0, 1e-5); /* interior patch (1,1) */
  rn_tensor_release(e);
  /* stages with different batch sizes */
  int64_t sc[4] = {1, 5, 2, 2};
  rn_tensor *g[2] = {f[0], test_randn(4, sc, 3, 1.0f)};
  CHECK_ERR(rn_patchcore_embed(pc, g, &e), RN_ERR_SHAPE, "batch size");
  rn_tensor_release(g[1]);
  rn_patchcore_free(pc);
  rn_tensor_release(f[0]);
  rn_tensor_release(f[1]);
}

/* Synthetic inspection images [n,3,64,64]: diagonal stripes plus noise; `square` paints a bright 12x12 block. */
static rn_tensor *images(int n, uint64_t seed, int square) {
  int64_t shape[4] = {n, 3, 64, 64};
  rn_tensor *x = test_randn(4, shape, seed, 0.1f);
  float *p = rn_f32(x);
  for (int i = 0; i < n; i++)
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < 64; y++)
        for (int xx = 0; xx < 64; xx++) {
          float v = 0.6f * sinf((float)(xx + y) * 0.7f);
          if (square && y >= 30 && y < 42 && xx >= 20 && xx < 32) v = 2.2f;
          p[((i * 3 + c) * 64 + y) * 64 + xx] += v;
        }
  return x;
}

static void test_pipeline(void) {
  rn_backbone *bb = NULL, *other = NULL;
  rn_backbone_opts bo = rn_backbone_opts_default();
  bo.seed = 3;
  CHECK_OK(rn_backbone_new(&bb, "resnet18", &bo));
  rn_patchcore_opts o = rn_patchcore_opts_default();
  o.coreset = 0.25;
  o.proj_dim = 32;
  o.seed = 5;
  rn_patchcore *pc = NULL;
  CHECK_OK(rn_patchcore_new(&pc, bb, &o));
  rn_tensor *bad = NULL, *m = NULL, *s = NULL;
  CHECK_ERR(rn_patchcore_build(pc), RN_ERR_ARG, "empty training set");
  rn_tensor *train = images(8, 100, 0), *normal = images(3, 200, 0), *anom = images(3, 300, 1);
  CHECK_ERR(rn_patchcore_predict(pc, normal, &m, &s), RN_ERR_ARG, "memory bank");
  CHECK_OK(rn_patchcore_add(pc, train));
  CHECK(rn_patchcore_train_patches(pc) == 8 * 8 * 8);
  CHECK(rn_patchcore_dim(pc) == 128 + 256);
  CHECK_OK(rn_patchcore_build(pc));
  CHECK(rn_patchcore_bank_size(pc) == 128);
  CHECK(rn_patchcore_train_patches(pc) == 0);
  rn_tensor *mn = NULL, *sn = NULL, *ma = NULL, *sa = NULL;
  CHECK_OK(rn_patchcore_predict(pc, normal, &mn, &sn));
  CHECK_OK(rn_patchcore_predict(pc, anom, &ma, &sa));
  CHECK(mn->ndim == 4 && mn->shape[0] == 3 && mn->shape[1] == 1 && mn->shape[2] == 64 && mn->shape[3] == 64);
  CHECK(sn->ndim == 1 && sn->shape[0] == 3);
  float max_normal = -1, min_anom = FLT_MAX;
  for (int i = 0; i < 3; i++) {
    max_normal = fmaxf(max_normal, rn_f32(sn)[i]);
    min_anom = fminf(min_anom, rn_f32(sa)[i]);
  }
  printf("patchcore pipeline: normal scores <= %.4f, anomalous >= %.4f\n", max_normal, min_anom);
  CHECK(min_anom > max_normal);
  int in_square = 1; /* each anomalous map peaks near the square */
  for (int i = 0; i < 3; i++) {
    int64_t arg = 0;
    for (int64_t p = 1; p < 64 * 64; p++)
      if (rn_f32(ma)[i * 4096 + p] > rn_f32(ma)[i * 4096 + arg]) arg = p;
    int y = (int)(arg / 64), x = (int)(arg % 64);
    in_square &= y >= 22 && y < 50 && x >= 12 && x < 40;
  }
  CHECK(in_square);

  /* the other image scores: map maximum, reweighting (bounded by the patch maximum) */
  CHECK_OK(rn_patchcore_set_score(pc, RN_PC_SCORE_REWEIGHT, 9));
  rn_tensor *mr = NULL, *sr = NULL;
  CHECK_OK(rn_patchcore_predict(pc, anom, &mr, &sr));
  for (int i = 0; i < 3; i++) CHECK(rn_f32(sr)[i] > 0 && rn_f32(sr)[i] < rn_f32(sa)[i]);
  rn_tensor_release(mr);
  rn_tensor_release(sr);
  CHECK_OK(rn_patchcore_set_score(pc, RN_PC_SCORE_REWEIGHT, 1000));
  CHECK_ERR(rn_patchcore_predict(pc, anom, &mr, &sr), RN_ERR_ARG, "bank size");
  CHECK_OK(rn_patchcore_set_score(pc, RN_PC_SCORE_MAP_MAX, 9));
  CHECK_OK(rn_patchcore_predict(pc, anom, &mr, &sr));
  for (int i = 0; i < 3; i++) {
    float mx = -1;
    for (int p = 0; p < 4096; p++) mx = fmaxf(mx, rn_f32(ma)[i * 4096 + p]);
    CHECK(rn_f32(sr)[i] == mx);
  }
  rn_tensor_release(mr);
  rn_tensor_release(sr);
  CHECK_OK(rn_patchcore_set_score(pc, RN_PC_SCORE_PATCH_MAX, 9));
  CHECK_ERR(rn_patchcore_set_score(pc, RN_PC_SCORE_REWEIGHT, 0), RN_ERR_ARG, "neighbour");

  /* save / load: the same bank, options and outputs, bit for bit */
  char path[] = "/tmp/rn_patchcore_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  CHECK_OK(rn_patchcore_save(pc, path));
  rn_patchcore *pl = NULL;
  CHECK_OK(rn_patchcore_load(&pl, path, bb));
  CHECK(rn_patchcore_bank_size(pl) == 128 && rn_patchcore_dim(pl) == 384);
  CHECK(test_max_abs_diff(rn_patchcore_get_bank(pl), rn_patchcore_get_bank(pc)) == 0.0);
  rn_patchcore_opts lo = rn_patchcore_get_opts(pl);
  CHECK(lo.n_layers == 2 && lo.layers[0] == 1 && lo.layers[1] == 2 && lo.coreset == 0.25 && lo.proj_dim == 32 &&
        lo.seed == 5 && lo.sigma == 4.0f && lo.neighbourhood == 3 && lo.score == RN_PC_SCORE_PATCH_MAX);
  CHECK(strcmp(rn_patchcore_arch(pl), "resnet18") == 0);
  rn_tensor *m2 = NULL, *s2 = NULL;
  CHECK_OK(rn_patchcore_predict(pl, anom, &m2, &s2));
  CHECK(test_max_abs_diff(m2, ma) == 0.0 && test_max_abs_diff(s2, sa) == 0.0);
  rn_tensor_release(m2);
  rn_tensor_release(s2);
  rn_patchcore_free(pl);
  /* another architecture's backbone, then a file that is no PatchCore model */
  CHECK_OK(rn_backbone_new(&other, "mobilenetv2", NULL));
  CHECK_ERR(rn_patchcore_load(&pl, path, other), RN_ERR_FORMAT, "resnet18");
  CHECK_ERR(rn_patchcore_set_backbone(pc, other), RN_ERR_ARG, "made for resnet18");
  const char *names[1] = {"weights/w"};
  const rn_tensor *ts[1] = {train};
  CHECK_OK(rn_h5_save(path, NULL, 1, names, ts));
  CHECK_ERR(rn_patchcore_load(&pl, path, bb), RN_ERR_FORMAT, "not a PatchCore model");
  unlink(path);

  /* bad input: mismatched feature dims, wrong channel count */
  int64_t fs[2] = {10, 100};
  bad = test_randn(2, fs, 1, 1.0f);
  CHECK_ERR(rn_patchcore_add_features(pc, bad), RN_ERR_SHAPE, "384");
  rn_tensor_release(bad);
  int64_t gs[4] = {1, 1, 64, 64};
  bad = test_randn(4, gs, 1, 1.0f);
  CHECK_ERR(rn_patchcore_predict(pc, bad, &m, &s), RN_ERR_SHAPE, "[N,3,H,W]");
  rn_tensor_release(bad);
  int64_t es[4] = {1, 2, 2, 100};
  bad = test_randn(4, es, 1, 1.0f);
  CHECK_ERR(rn_patchcore_score_features(pc, bad, 16, 16, &m, &s), RN_ERR_SHAPE, "dims");
  rn_tensor_release(bad);

  rn_tensor_release(mn);
  rn_tensor_release(sn);
  rn_tensor_release(ma);
  rn_tensor_release(sa);
  rn_tensor_release(train);
  rn_tensor_release(normal);
  rn_tensor_release(anom);
  rn_patchcore_free(pc);
  rn_backbone_free(bb);
  rn_backbone_free(other);
}

static void test_bad_opts(void) {
  rn_backbone *bb = NULL;
  CHECK_OK(rn_backbone_new(&bb, "resnet18", NULL));
  rn_patchcore *pc = NULL;
  rn_patchcore_opts o = rn_patchcore_opts_default();
  o.coreset = 0;
  CHECK_ERR(rn_patchcore_new(&pc, bb, &o), RN_ERR_ARG, "coreset");
  o = rn_patchcore_opts_default();
  o.neighbourhood = 4;
  CHECK_ERR(rn_patchcore_new(&pc, bb, &o), RN_ERR_ARG, "odd");
  o = rn_patchcore_opts_default();
  o.layers[1] = 7;
  CHECK_ERR(rn_patchcore_new(&pc, bb, &o), RN_ERR_ARG, "out of range");
  o.layers[1] = 1;
  CHECK_ERR(rn_patchcore_new(&pc, bb, &o), RN_ERR_ARG, "twice");
  rn_pc_score sc;
  CHECK_ERR(rn_pc_score_parse("mean", &sc), RN_ERR_ARG, "patch_max");
  CHECK(pc == NULL);
  rn_backbone_free(bb);
}

int main(void) {
  test_kcenter_constructed();
  test_kcenter_reference();
  test_knn();
  test_blur();
  test_embed();
  test_pipeline();
  test_bad_opts();
  return test_finish("patchcore");
}
