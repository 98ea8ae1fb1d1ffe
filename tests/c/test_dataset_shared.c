/* test_dataset_shared.c - the real magnetic_tile data (MVTec layout, gray images of varying size, masks
 * paired): listing counts, gray -> 3 equal channels at the original size, every anomalous image paired with
 * its mask, a threaded pass over the test split, and a clean rn_dataset_check. Skips when the shared data is
 * absent (REALNET_SHARED overrides the build's SHARED_DIR). */
#include "test_dataset_util.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(void) {
  const char *shared = getenv("REALNET_SHARED");
  char cat[1024];
  snprintf(cat, sizeof cat, "%s/data/magnetic_tile", shared && *shared ? shared : SHARED_DIR);
  struct stat st;
  if (stat(cat, &st) != 0) return test_skip("no shared magnetic_tile data");

  /* train split at original sizes: gray images become three equal channels */
  rn_dataset_opts o = rn_dataset_opts_default();
  o.height = o.width = 0;
  o.normalize = 0;
  rn_dataset *tr = NULL;
  if (CHECK_OK(rn_dataset_open(&tr, RN_DATA_MVTEC, cat, NULL, &o))) {
    CHECK(rn_dataset_size(tr) == 762);
    int64_t sizes[2][2];
    for (int k = 0; k < 2; k++) {
      rn_tensor *img = NULL, *m = NULL;
      int64_t i = k ? 500 : 0;
      if (!CHECK_OK(rn_dataset_load(tr, i, &img, &m))) continue;
      rn_tensor *raw = NULL;
      rn_dataset_entry e;
      CHECK_OK(rn_dataset_get_entry(tr, i, &e));
      if (CHECK_OK(rn_image_read(&raw, e.path, NULL))) {
        CHECK(raw->shape[2] == 1); /* stored gray */
        CHECK(img->shape[0] == 3 && img->shape[1] == raw->shape[0] && img->shape[2] == raw->shape[1]);
        int64_t hw = img->shape[1] * img->shape[2];
        const float *d = rn_f32(img);
        const uint8_t *r = rn_tensor_data(raw);
        int same = 1;
        for (int64_t p = 0; p < hw; p++) same &= d[p] == d[hw + p] && d[p] == d[2 * hw + p] && d[p] == r[p] / 255.0f;
        CHECK(same);
      }
      sizes[k][0] = img->shape[1], sizes[k][1] = img->shape[2];
      CHECK(m->shape[1] == img->shape[1] && rn_tensor_numel(m) == img->shape[1] * img->shape[2]);
      rn_tensor_release(raw);
      rn_tensor_release(img);
      rn_tensor_release(m);
    }
    CHECK(sizes[0][0] != sizes[1][0] || sizes[0][1] != sizes[1][1]); /* varying sizes */
  }
  rn_dataset_release(tr);

  /* test split at 64x64: masks paired, labels, a threaded pass */
  o = rn_dataset_opts_default();
  o.split = RN_SPLIT_TEST;
  o.height = o.width = 64;
  rn_dataset *te = NULL;
  if (CHECK_OK(rn_dataset_open(&te, RN_DATA_MVTEC, cat, NULL, &o))) {
    CHECK(rn_dataset_size(te) == 582);
    int64_t anomalous = 0, paired = 0;
    for (int64_t i = 0; i < rn_dataset_size(te); i++) {
      rn_dataset_entry e;
      rn_dataset_get_entry(te, i, &e);
      anomalous += e.label;
      paired += e.label && e.mask_path && strstr(e.mask_path, "/ground_truth/") && strstr(e.mask_path, e.defect);
    }
    CHECK(anomalous == 392 && paired == 392);
    rn_loader_opts lo = rn_loader_opts_default();
    lo.batch = 32, lo.workers = 2;
    rn_loader *ld = NULL;
    double t0 = now();
    int64_t n = 0, labels = 0, masked = 0;
    if (CHECK_OK(rn_loader_new(&ld, te, &lo))) {
      rn_batch b;
      while (CHECK_OK(rn_loader_next(ld, &b)) && b.images) {
        const int64_t *l = rn_tensor_data(b.labels);
        const float *m = rn_f32(b.masks);
        for (int64_t i = 0; i < b.size; i++) {
          labels += l[i];
          double s = 0;
          for (int64_t p = 0; p < 64 * 64; p++) s += m[i * 64 * 64 + p];
          masked += s > 0;
          if (!l[i]) CHECK(s == 0);
        }
        n += b.size;
        rn_batch_clear(&b);
      }
    }
    double dt = now() - t0;
    rn_loader_free(ld);
    CHECK(n == 582 && labels == 392);
    CHECK(masked >= 380 && masked <= 392); /* a few shipped masks are empty */
    printf("magnetic_tile test split: %lld images at 64x64 in %.2f s with 2 workers (%.0f img/s)\n", (long long)n, dt,
           n / dt);
  }
  rn_dataset_release(te);

  /* the doctor finds nothing wrong (the empty masks are warnings) */
  rn_dataset_report *r = NULL;
  double t0 = now();
  if (CHECK_OK(rn_dataset_check(&r, RN_DATA_MVTEC, cat, NULL, NULL, 0))) {
    CHECK(r->n_problems == 0);
    CHECK(r->images == 1344 && r->masks == 392 && r->n_counts == 7);
    for (int64_t i = 0; i < r->n_warnings; i++) CHECK(r->warnings[i].kind == RN_PROBLEM_EMPTY_MASK);
    printf("check: %lld images, %lld masks, %lld warnings in %.2f s\n", (long long)r->images, (long long)r->masks,
           (long long)r->n_warnings, now() - t0);
  }
  rn_dataset_report_free(r);
  return test_finish("dataset_shared");
}
