/* test_demo_data.c - the embedded demo dataset: exact masks (the bytes a defect changed), margins, determinism
 * (byte-identical files for a seed, on any thread count), the MVTec layout the reader and doctor accept, and
 * bad options. Small sizes keep it fast. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "realnet/dataset.h"
#include "realnet/demo_data.h"
#include "realnet/image.h"
#include "testutil.h"

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb; (void)flag; (void)ftw;
  return remove(p);
}
static void rm_rf(const char *p) { nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, f);
  fclose(f);
  return b;
}

/* 1 when both files exist and hold the same bytes. */
static int same_file(const char *a, const char *b) {
  size_t na = 0, nb = 0;
  char *x = slurp(a, &na), *y = slurp(b, &nb);
  int same = x && y && na == nb && memcmp(x, y, na) == 0;
  free(x); free(y);
  return same;
}

static int same_bytes(const rn_tensor *a, const rn_tensor *b) {
  return rn_tensor_numel(a) == rn_tensor_numel(b) &&
         memcmp(rn_tensor_data(a), rn_tensor_data(b), (size_t)rn_tensor_numel(a)) == 0;
}

/* Each kind on each texture: the mask is exactly where image and clean differ, is 0/255, non-empty for
 * defects (empty for good), keeps the margin and is not huge. */
static void test_masks(void) {
  rn_demo_opts o = rn_demo_opts_default();
  o.size = 64;
  o.seed = 5;
  int64_t S = o.size, m = rn_demo_margin(S);
  for (int t = 0; t < RN_DEMO_NUM_TEXTURES; t++) {
    o.texture = (rn_demo_texture)t;
    for (int k = 0; k < RN_DEMO_NUM_KINDS; k++) {
      for (int64_t idx = 0; idx < 3; idx++) {
        rn_tensor *img = NULL, *cln = NULL, *msk = NULL;
        if (!CHECK_OK(rn_demo_render(&img, &cln, &msk, &o, 1, (rn_demo_kind)k, idx))) continue;
        const uint8_t *a = rn_tensor_data(img), *b = rn_tensor_data(cln), *mk = rn_tensor_data(msk);
        int64_t on = 0, exact = 1, binary = 1, inside = 1;
        for (int64_t y = 0; y < S; y++)
          for (int64_t x = 0; x < S; x++) {
            int64_t i = y * S + x;
            int diff = a[i * 3] != b[i * 3] || a[i * 3 + 1] != b[i * 3 + 1] || a[i * 3 + 2] != b[i * 3 + 2];
            binary &= mk[i] == 0 || mk[i] == 255;
            exact &= (mk[i] == 255) == diff;
            if (mk[i]) {
              on++;
              inside &= x >= m && y >= m && x < S - m && y < S - m;
            }
          }
        CHECK(binary);
        CHECK(exact);
        CHECK(inside);
        if (k == RN_DEMO_GOOD) CHECK(on == 0);
        else CHECK(on >= 4 && on < S * S / 4);
        rn_tensor_release(img); rn_tensor_release(cln); rn_tensor_release(msk);
      }
    }
  }
}

static void test_render_determinism(void) {
  rn_demo_opts o = rn_demo_opts_default();
  o.size = 48;
  rn_tensor *a = NULL, *b = NULL, *c = NULL, *d = NULL;
  CHECK_OK(rn_demo_render(&a, NULL, NULL, &o, 1, RN_DEMO_CRACK, 2));
  CHECK_OK(rn_demo_render(&b, NULL, NULL, &o, 1, RN_DEMO_CRACK, 2));
  o.seed = 1;
  CHECK_OK(rn_demo_render(&c, NULL, NULL, &o, 1, RN_DEMO_CRACK, 2));
  o.seed = 0;
  CHECK_OK(rn_demo_render(&d, NULL, NULL, &o, 1, RN_DEMO_CRACK, 3)); /* another index: another image */
  CHECK(a && b && same_bytes(a, b));
  CHECK(a && c && !same_bytes(a, c));
  CHECK(a && d && !same_bytes(a, d));
  rn_tensor_release(a); rn_tensor_release(b); rn_tensor_release(c); rn_tensor_release(d);
  /* train and test good images with the same index differ */
  CHECK_OK(rn_demo_render(&a, NULL, NULL, &o, 0, RN_DEMO_GOOD, 0));
  CHECK_OK(rn_demo_render(&b, NULL, NULL, &o, 1, RN_DEMO_GOOD, 0));
  CHECK(a && b && !same_bytes(a, b));
  rn_tensor_release(a); rn_tensor_release(b);
}

/* Writes the set twice (1 and 2 threads) and with another seed; checks layout, files, reader and doctor. */
static void test_make(const char *tmp) {
  char d1[512], d2[512], d3[512], p[1024], q[1024];
  snprintf(d1, sizeof d1, "%s/a", tmp);
  snprintf(d2, sizeof d2, "%s/b/nested", tmp);
  snprintf(d3, sizeof d3, "%s/c", tmp);
  rn_demo_opts o = rn_demo_opts_default();
  o.size = 64; o.train = 4; o.test_good = 2; o.test_defect = 2; o.seed = 3; o.threads = 1;
  rn_demo_counts c;
  char *cat = NULL;
  CHECK_OK(rn_demo_make(d1, &o, &c, &cat));
  CHECK(c.train == 4 && c.test_good == 2 && c.test_defect == 10 && c.masks == 10 && c.defect_kinds == 5);
  snprintf(p, sizeof p, "%s/demo_surface", d1);
  CHECK(cat && strcmp(cat, p) == 0);
  free(cat);
  o.threads = 2;
  CHECK_OK(rn_demo_make(d2, &o, NULL, NULL));
  o.seed = 4;
  CHECK_OK(rn_demo_make(d3, &o, NULL, NULL));
  o.seed = 3;
  const char *files[] = {"train/good/000.png", "train/good/003.png", "test/good/001.png", "test/scratch/000.png",
                         "test/spot/001.png", "test/crack/000.png", "test/missing_material/001.png",
                         "test/contamination/000.png", "ground_truth/crack/000_mask.png",
                         "ground_truth/contamination/001_mask.png"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    snprintf(p, sizeof p, "%s/demo_surface/%s", d1, files[i]);
    snprintf(q, sizeof q, "%s/demo_surface/%s", d2, files[i]);
    CHECK(access(p, R_OK) == 0);
    CHECK(same_file(p, q));
    snprintf(q, sizeof q, "%s/demo_surface/%s", d3, files[i]);
    CHECK(!same_file(p, q));
  }
  /* what was written is what render gives */
  rn_tensor *img = NULL, *msk = NULL, *rimg = NULL, *rmsk = NULL;
  snprintf(p, sizeof p, "%s/demo_surface/test/spot/001.png", d1);
  CHECK_OK(rn_image_read(&rimg, p, NULL));
  snprintf(p, sizeof p, "%s/demo_surface/ground_truth/spot/001_mask.png", d1);
  CHECK_OK(rn_image_read(&rmsk, p, NULL));
  CHECK_OK(rn_demo_render(&img, NULL, &msk, &o, 1, RN_DEMO_SPOT, 1));
  CHECK(rimg && img && same_bytes(rimg, img));
  CHECK(rmsk && msk && rn_tensor_numel(rmsk) == 64 * 64 && same_bytes(rmsk, msk));
  rn_tensor_release(img); rn_tensor_release(msk); rn_tensor_release(rimg); rn_tensor_release(rmsk);

  /* the MVTec reader lists it, the checker finds nothing wrong */
  rn_dataset_opts dopt = rn_dataset_opts_default();
  rn_dataset *ds = NULL;
  CHECK_OK(rn_dataset_open(&ds, RN_DATA_MVTEC, d1, "demo_surface", &dopt));
  if (ds) CHECK(rn_dataset_size(ds) == 4);
  rn_dataset_release(ds);
  ds = NULL;
  dopt.split = RN_SPLIT_TEST;
  CHECK_OK(rn_dataset_open(&ds, RN_DATA_MVTEC, d1, "demo_surface", &dopt));
  if (ds) {
    CHECK(rn_dataset_size(ds) == 12);
    int64_t anomalous = 0;
    for (int64_t i = 0; i < rn_dataset_size(ds); i++) {
      rn_dataset_entry e;
      CHECK_OK(rn_dataset_get_entry(ds, i, &e));
      anomalous += e.label == 1 && e.mask_path != NULL;
    }
    CHECK(anomalous == 10);
    rn_tensor *im = NULL, *mk = NULL;
    CHECK_OK(rn_dataset_load(ds, 0, &im, &mk));
    rn_tensor_release(im); rn_tensor_release(mk);
  }
  rn_dataset_release(ds);
  rn_dataset_report *r = NULL;
  CHECK_OK(rn_dataset_check(&r, RN_DATA_MVTEC, d1, "demo_surface", NULL, 2));
  if (r) {
    CHECK(r->n_problems == 0);
    CHECK(r->n_warnings == 0);
    CHECK(r->images == 16 && r->masks == 10);
    for (int64_t i = 0; i < r->n_problems; i++) fprintf(stderr, "problem: %s %s\n", r->problems[i].path, r->problems[i].message);
  }
  rn_dataset_report_free(r);

  /* an existing non-empty category is refused; overwrite writes over it and drops stale items */
  CHECK_ERR(rn_demo_make(d1, &o, NULL, NULL), RN_ERR_IO, "not empty");
  o.overwrite = 1;
  o.train = 2;
  CHECK_OK(rn_demo_make(d1, &o, NULL, NULL));
  snprintf(p, sizeof p, "%s/demo_surface/train/good/003.png", d1);
  CHECK(access(p, F_OK) != 0);
  snprintf(p, sizeof p, "%s/demo_surface/train/good/001.png", d1);
  snprintf(q, sizeof q, "%s/demo_surface/train/good/001.png", d2);
  CHECK(same_file(p, q));
}

static void test_bad(const char *tmp) {
  char p[512];
  rn_demo_opts o = rn_demo_opts_default();
  o.size = 64; o.train = 1; o.test_good = 0; o.test_defect = 0;
  rn_demo_opts b = o;
  b.size = 16;
  CHECK_ERR(rn_demo_make(tmp, &b, NULL, NULL), RN_ERR_ARG, "size 16");
  b = o; b.train = -1;
  CHECK_ERR(rn_demo_make(tmp, &b, NULL, NULL), RN_ERR_ARG, "train count -1");
  b = o; b.test_defect = -3;
  CHECK_ERR(rn_demo_make(tmp, &b, NULL, NULL), RN_ERR_ARG, "test_defect");
  b = o; b.train = 0;
  CHECK_ERR(rn_demo_make(tmp, &b, NULL, NULL), RN_ERR_ARG, "every count");
  b = o; b.category = "a/b";
  CHECK_ERR(rn_demo_make(tmp, &b, NULL, NULL), RN_ERR_ARG, "plain directory");
  b = o; b.texture = (rn_demo_texture)9;
  CHECK_ERR(rn_demo_make(tmp, &b, NULL, NULL), RN_ERR_ARG, "texture");
  CHECK_ERR(rn_demo_make("", &o, NULL, NULL), RN_ERR_ARG, "output");
  /* a path below a regular file cannot be created (also as root) */
  snprintf(p, sizeof p, "%s/plainfile", tmp);
  FILE *f = fopen(p, "w");
  if (f) fclose(f);
  snprintf(p, sizeof p, "%s/plainfile/out", tmp);
  CHECK_ERR(rn_demo_make(p, &o, NULL, NULL), RN_ERR_IO, "plainfile");
  rn_demo_texture t;
  CHECK_ERR(rn_demo_texture_parse("wood", &t), RN_ERR_ARG, "metal, fabric or tile");
  CHECK_OK(rn_demo_texture_parse("tile", &t));
  CHECK(t == RN_DEMO_TILE);
  rn_tensor *img = NULL;
  CHECK_ERR(rn_demo_render(&img, NULL, NULL, &o, 0, RN_DEMO_SCRATCH, 0), RN_ERR_ARG, "train split");
  CHECK_ERR(rn_demo_render(&img, NULL, NULL, &o, 1, RN_DEMO_SCRATCH, -1), RN_ERR_ARG, "negative");
  CHECK_ERR(rn_demo_render(&img, NULL, NULL, &o, 1, (rn_demo_kind)17, 0), RN_ERR_ARG, "kind");
  CHECK(img == NULL);
  CHECK(strcmp(rn_demo_kind_name(RN_DEMO_MISSING), "missing_material") == 0);
  CHECK(rn_demo_kind_name((rn_demo_kind)99) == NULL);
}

int main(void) {
  char tmp[] = "/tmp/rn_demo_XXXXXX";
  if (!mkdtemp(tmp)) return test_skip("cannot make a temporary directory");
  test_masks();
  test_render_determinism();
  test_make(tmp);
  test_bad(tmp);
  rm_rf(tmp);
  return test_finish("test_demo_data");
}
