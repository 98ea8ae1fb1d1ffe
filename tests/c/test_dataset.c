/* test_dataset.c - the readers on small datasets written here: MVTec (sorted listing, labels, masks, gray
 * images made RGB), MPDD, BTAD with .bmp masks, VisA's csv and its MVTec-like copy, RealNet JSON lines, a plain
 * folder; items against the PIL pipeline (fixtures from gen_dataset.py); and bad input with clear errors. */
#include <math.h>

#include "test_dataset_util.h"

static char *root;

static rn_dataset *open_ds(rn_data_kind k, const char *r, const char *cat, rn_data_split split, int64_t size) {
  rn_dataset_opts o = rn_dataset_opts_default();
  o.split = split;
  o.height = o.width = size;
  rn_dataset *ds = NULL;
  if (!CHECK_OK(rn_dataset_open(&ds, k, r, cat, &o))) return NULL;
  return ds;
}

static const char *ends(const char *path, const char *tail) {
  size_t n = strlen(path), k = strlen(tail);
  return n >= k && strcmp(path + n - k, tail) == 0 ? path : NULL;
}

static void mvtec(void) {
  tmake_mvtec(root, "widget", 3);
  twrite_text(tpath(root, "widget/train/good/notes.txt"), "not an image"); /* skipped by name */
  rn_dataset *tr = open_ds(RN_DATA_MVTEC, root, "widget", RN_SPLIT_TRAIN, 8);
  rn_dataset *te = open_ds(RN_DATA_MVTEC, root, "widget", RN_SPLIT_TEST, 8);
  rn_dataset *all = open_ds(RN_DATA_MVTEC, root, "widget", RN_SPLIT_ALL, 8);
  if (!tr || !te || !all) goto done;
  CHECK(rn_dataset_size(tr) == 3 && rn_dataset_size(te) == 5 && rn_dataset_size(all) == 8);
  rn_dataset_entry e;
  CHECK_OK(rn_dataset_get_entry(tr, 2, &e));
  CHECK(ends(e.path, "widget/train/good/002.png") && !e.mask_path && e.label == 0 && !strcmp(e.defect, "good"));
  /* test order: defect dirs sorted (crack, good, scratch), files sorted */
  static const char *want[5] = {"crack/000.png", "crack/001.png", "good/000.png", "good/001.png", "scratch/000.png"};
  static const int labels[5] = {1, 1, 0, 0, 1};
  for (int i = 0; i < 5; i++) {
    CHECK_OK(rn_dataset_get_entry(te, i, &e));
    CHECK(ends(e.path, want[i]) && e.label == labels[i] && !strcmp(e.split, "test"));
    CHECK((e.mask_path != NULL) == (labels[i] == 1));
  }
  CHECK_OK(rn_dataset_get_entry(te, 4, &e));
  CHECK(ends(e.mask_path, "ground_truth/scratch/000_mask.png") && !strcmp(e.defect, "scratch"));
  /* a crack item: [3,8,8] image, mask = top-left quarter after nearest 16 -> 8 */
  rn_tensor *img = NULL, *m = NULL;
  if (CHECK_OK(rn_dataset_load(te, 0, &img, &m))) {
    CHECK(img->ndim == 3 && img->shape[0] == 3 && img->shape[1] == 8 && img->shape[2] == 8 && img->dtype == RN_F32);
    CHECK(m->ndim == 3 && m->shape[0] == 1 && m->shape[1] == 8 && m->shape[2] == 8);
    const float *md = rn_f32(m);
    double s = 0;
    for (int i = 0; i < 64; i++) s += md[i];
    CHECK(s == 16 && md[0] == 1 && md[63] == 0);
  }
  rn_tensor_release(img);
  rn_tensor_release(m);
  /* a good item has a zero mask; a gray image becomes three equal channels */
  if (CHECK_OK(rn_dataset_load(te, 3, &img, &m))) {
    const float *d = rn_f32(img), *md = rn_f32(m);
    double s = 0;
    for (int i = 0; i < 64; i++) s += md[i];
    CHECK(s == 0);
    /* ImageNet normalisation differs per channel: undo it to compare */
    int same = 1;
    for (int i = 0; i < 64; i++) {
      double r = d[i] * 0.229 + 0.485, g = d[64 + i] * 0.224 + 0.456, b = d[128 + i] * 0.225 + 0.406;
      same &= fabs(r - g) < 1e-5 && fabs(r - b) < 1e-5;
    }
    CHECK(same);
  }
  rn_tensor_release(img);
  rn_tensor_release(m);
  /* the category may be the root itself */
  rn_dataset *cat = open_ds(RN_DATA_MVTEC, tpath(root, "widget"), NULL, RN_SPLIT_TEST, 8);
  CHECK(cat && rn_dataset_size(cat) == 5 && rn_dataset_get_category(cat) == NULL);
  rn_dataset_release(cat);
  /* MPDD reads the same layout */
  rn_dataset *mpdd = open_ds(RN_DATA_MPDD, root, "widget", RN_SPLIT_TEST, 8);
  CHECK(mpdd && rn_dataset_size(mpdd) == 5);
  rn_dataset_release(mpdd);
done:
  rn_dataset_release(tr);
  rn_dataset_release(te);
  rn_dataset_release(all);
}

/* Items against PIL: gray image normalised at 16x16, RGB in [0,1] at 12x20, mask nearest + binarised. */
static void pil_parity(void) {
  char src[1024];
  static const char *files[3][2] = {{"gray.png", "pil/train/good/000.png"},
                                    {"rgb.png", "pil/train/good/001.png"},
                                    {"gray.png", "pil/test/bad/000.png"}};
  for (int i = 0; i < 3; i++) {
    snprintf(src, sizeof src, "%s/dataset/%s", FIXTURES_DIR, files[i][0]);
    rn_tensor *t = NULL;
    if (!CHECK_OK(rn_image_read(&t, src, NULL))) return;
    tmkdirs(tpath(root, "%s", files[i][1]), 0);
    CHECK_OK(rn_image_write_png(tpath(root, "%s", files[i][1]), t));
    rn_tensor_release(t);
  }
  snprintf(src, sizeof src, "%s/dataset/mask.png", FIXTURES_DIR);
  rn_tensor *mk = NULL;
  if (CHECK_OK(rn_image_read(&mk, src, NULL))) {
    tmkdirs(tpath(root, "pil/ground_truth/bad/000_mask.png"), 0);
    CHECK_OK(rn_image_write_png(tpath(root, "pil/ground_truth/bad/000_mask.png"), mk));
  }
  rn_tensor_release(mk);
  rn_tensor *want_g = test_fixture("dataset/gray_norm_16.npy"), *want_rgb = test_fixture("dataset/rgb_unit_12x20.npy");
  rn_tensor *want_m = test_fixture("dataset/mask_16.npy"), *img = NULL, *m = NULL;
  rn_dataset *ds = open_ds(RN_DATA_MVTEC, root, "pil", RN_SPLIT_ALL, 16);
  if (ds && want_g && CHECK_OK(rn_dataset_load(ds, 0, &img, NULL))) test_check_close(img, want_g, 1e-6, 0, "gray");
  rn_tensor_release(img);
  img = NULL;
  if (ds && want_m && CHECK_OK(rn_dataset_load(ds, 2, NULL, &m))) CHECK(test_max_abs_diff(m, want_m) == 0);
  rn_tensor *u8 = NULL; /* the uint8 stage: [16,16,3], equal planes for the gray source */
  if (ds && CHECK_OK(rn_dataset_load_u8(ds, 0, &u8)) && want_g) {
    CHECK(u8->dtype == RN_U8 && u8->shape[0] == 16 && u8->shape[1] == 16 && u8->shape[2] == 3);
    const uint8_t *d = rn_tensor_data(u8);
    const float *w = rn_f32(want_g);
    int ok = 1;
    for (int p = 0; p < 256; p++)
      ok &= d[3 * p] == d[3 * p + 2] && fabs(d[3 * p] / 255.0 - (w[p] * 0.229 + 0.485)) < 1e-5;
    CHECK(ok);
  }
  rn_tensor_release(u8);
  rn_dataset_release(ds);
  rn_dataset_opts o = rn_dataset_opts_default();
  o.height = 12, o.width = 20, o.normalize = 0;
  ds = NULL;
  if (CHECK_OK(rn_dataset_open(&ds, RN_DATA_MVTEC, root, "pil", &o)) && want_rgb &&
      CHECK_OK(rn_dataset_load(ds, 1, &img, NULL)))
    test_check_close(img, want_rgb, 1e-6, 0, "rgb");
  rn_dataset_release(ds);
  /* size 0x0 keeps each image's own size */
  o.height = o.width = 0;
  ds = NULL;
  rn_tensor *img2 = NULL;
  if (CHECK_OK(rn_dataset_open(&ds, RN_DATA_MVTEC, root, "pil", &o)) && CHECK_OK(rn_dataset_load(ds, 0, &img2, NULL)))
    CHECK(img2->shape[1] == 29 && img2->shape[2] == 37);
  rn_tensor_release(img2);
  rn_dataset_release(ds);
  rn_tensor_release(img);
  rn_tensor_release(m);
  rn_tensor_release(want_g);
  rn_tensor_release(want_rgb);
  rn_tensor_release(want_m);
}

static void btad(void) {
  for (int i = 0; i < 2; i++) twrite_image(tpath(root, "bt/01/train/ok/%04d.png", i), 12, 12, 3, i);
  twrite_image(tpath(root, "bt/01/test/ok/0000.png"), 12, 12, 3, 5);
  twrite_image(tpath(root, "bt/01/test/ko/0000.png"), 12, 12, 3, 6);
  twrite_image(tpath(root, "bt/01/test/ko/0001.png"), 12, 12, 3, 7);
  twrite_bmp_mask(tpath(root, "bt/01/ground_truth/ko/0000.bmp"), 12, 12, 0, 6, 0, 12); /* BTAD 03 style */
  twrite_mask(tpath(root, "bt/01/ground_truth/ko/0001.png"), 12, 12, 6, 12, 0, 12);     /* BTAD 01 style */
  rn_dataset *tr = open_ds(RN_DATA_BTAD, tpath(root, "bt"), "01", RN_SPLIT_TRAIN, 12);
  rn_dataset *te = open_ds(RN_DATA_BTAD, tpath(root, "bt"), "01", RN_SPLIT_TEST, 12);
  if (tr) CHECK(rn_dataset_size(tr) == 2);
  if (te && CHECK(rn_dataset_size(te) == 3)) {
    rn_dataset_entry e;
    CHECK_OK(rn_dataset_get_entry(te, 0, &e));
    CHECK(!strcmp(e.defect, "ko") && e.label == 1 && ends(e.mask_path, "ko/0000.bmp"));
    rn_tensor *m = NULL;
    if (CHECK_OK(rn_dataset_load(te, 0, NULL, &m))) { /* top half set */
      const float *d = rn_f32(m);
      CHECK(d[0] == 1 && d[5 * 12 + 11] == 1 && d[6 * 12] == 0 && d[143] == 0);
    }
    rn_tensor_release(m);
    m = NULL;
    if (CHECK_OK(rn_dataset_load(te, 1, NULL, &m))) CHECK(rn_f32(m)[0] == 0 && rn_f32(m)[143] == 1);
    rn_tensor_release(m);
    CHECK_OK(rn_dataset_get_entry(te, 2, &e));
    CHECK(!strcmp(e.defect, "ok") && e.label == 0);
  }
  rn_dataset_release(tr);
  rn_dataset_release(te);
}

static void visa(void) {
  char vr[512];
  snprintf(vr, sizeof vr, "%s", tpath(root, "visa"));
  twrite_image(tpath(vr, "candle/Data/Images/Normal/0000.JPG"), 10, 14, 3, 1); /* PNG bytes under .JPG */
  twrite_image(tpath(vr, "candle/Data/Images/Normal/0001.JPG"), 10, 14, 3, 2);
  twrite_image(tpath(vr, "candle/Data/Images/Normal/0002.JPG"), 10, 14, 3, 3);
  twrite_image(tpath(vr, "candle/Data/Images/Anomaly/000.JPG"), 10, 14, 3, 4);
  twrite_image(tpath(vr, "fryum/Data/Images/Normal/0000.JPG"), 10, 14, 3, 5);
  twrite_image(tpath(vr, "fryum/Data/Images/Anomaly/000.JPG"), 10, 14, 3, 6);
  twrite_mask(tpath(vr, "candle/Data/Masks/Anomaly/000.png"), 10, 14, 0, 5, 0, 14);
  twrite_mask(tpath(vr, "fryum/Data/Masks/Anomaly/000.png"), 10, 14, 0, 5, 0, 14);
  twrite_text(tpath(vr, "split_csv/1cls.csv"),
              "object,split,label,image,mask\r\n"
              "candle,train,normal,candle/Data/Images/Normal/0001.JPG,\r\n"
              "candle,train,normal,candle/Data/Images/Normal/0000.JPG,\r\n"
              "candle,test,normal,candle/Data/Images/Normal/0002.JPG,\r\n"
              "candle,test,anomaly,candle/Data/Images/Anomaly/000.JPG,candle/Data/Masks/Anomaly/000.png\r\n"
              "fryum,train,normal,fryum/Data/Images/Normal/0000.JPG,\r\n"
              "fryum,test,anomaly,fryum/Data/Images/Anomaly/000.JPG,fryum/Data/Masks/Anomaly/000.png\r\n");
  rn_dataset *tr = open_ds(RN_DATA_VISA, vr, "candle", RN_SPLIT_TRAIN, 8);
  rn_dataset *te = open_ds(RN_DATA_VISA, vr, "candle", RN_SPLIT_TEST, 8);
  rn_dataset_entry e;
  if (tr && CHECK(rn_dataset_size(tr) == 2)) { /* csv order kept */
    CHECK_OK(rn_dataset_get_entry(tr, 0, &e));
    CHECK(ends(e.path, "Normal/0001.JPG") && e.label == 0);
  }
  if (te && CHECK(rn_dataset_size(te) == 2)) {
    CHECK_OK(rn_dataset_get_entry(te, 1, &e));
    CHECK(e.label == 1 && !strcmp(e.defect, "anomaly") && ends(e.mask_path, "Masks/Anomaly/000.png"));
    rn_tensor *img = NULL, *m = NULL;
    CHECK_OK(rn_dataset_load(te, 1, &img, &m));
    rn_tensor_release(img);
    rn_tensor_release(m);
  }
  rn_dataset_release(tr);
  rn_dataset_release(te);
  char **names = NULL;
  int64_t n = 0;
  if (CHECK_OK(rn_data_categories(RN_DATA_VISA, vr, &names, &n)))
    CHECK(n == 2 && !strcmp(names[0], "candle") && !strcmp(names[1], "fryum"));
  free(names);
  rn_data_kind k;
  CHECK_OK(rn_data_detect(vr, &k));
  CHECK(k == RN_DATA_VISA);
  rn_dataset *bad = NULL;
  CHECK_ERR(rn_dataset_open(&bad, RN_DATA_VISA, vr, "pcb9", NULL), RN_ERR_ARG, "pcb9");
  twrite_text(tpath(root, "visa_bad/split_csv/1cls.csv"), "object,split,label,image,mask\ncandle,val,normal,x.png,\n");
  CHECK_ERR(rn_dataset_open(&bad, RN_DATA_VISA, tpath(root, "visa_bad"), "candle", NULL), RN_ERR_FORMAT, "line 2");
  /* the authors' re-formatted copy (no csv, MVTec layout) */
  tmake_mvtec(tpath(root, "visa_pytorch"), "pcb1", 2);
  rn_dataset *v2 = open_ds(RN_DATA_VISA, tpath(root, "visa_pytorch"), "pcb1", RN_SPLIT_TRAIN, 8);
  CHECK(v2 && rn_dataset_size(v2) == 2);
  rn_dataset_release(v2);
}

static void jsonl(void) {
  char ir[512];
  snprintf(ir, sizeof ir, "%s", tpath(root, "jdata"));
  tmake_mvtec(ir, "bottle", 2);
  twrite_text(tpath(root, "samples/test_bottle.json"),
              "{\"filename\": \"bottle/test/good/000.png\", \"label\": 0, \"label_name\": \"good\", \"clsname\": \"bottle\"}\n"
              "\n"
              "{\"filename\": \"bottle/test/crack/000.png\", \"label\": 1, \"label_name\": \"defective\", "
              "\"maskname\": \"bottle/ground_truth/crack/000_mask.png\", \"extra\": {\"a\": [1, \"}\"]}}\n"
              "{\"label\": 1, \"filename\": \"bottle/test/scratch/000.png\", \"label_name\": \"d\\u00e9fect\"}\n");
  rn_dataset_opts o = rn_dataset_opts_default();
  o.protocol = tpath(root, "samples/test_bottle.json");
  o.height = o.width = 16;
  rn_dataset *ds = NULL;
  if (CHECK_OK(rn_dataset_open(&ds, RN_DATA_JSONL, ir, NULL, &o)) && CHECK(rn_dataset_size(ds) == 3)) {
    rn_dataset_entry e;
    CHECK_OK(rn_dataset_get_entry(ds, 1, &e));
    CHECK(e.label == 1 && !strcmp(e.defect, "crack") && ends(e.mask_path, "crack/000_mask.png") &&
          !strcmp(e.split, "test"));
    CHECK_OK(rn_dataset_get_entry(ds, 2, &e)); /* no maskname: the mask is all ones (spec 2.2) */
    CHECK(e.label == 1 && !e.mask_path);
    rn_tensor *m = NULL;
    if (CHECK_OK(rn_dataset_load(ds, 2, NULL, &m))) CHECK(rn_f32(m)[0] == 1 && rn_f32(m)[255] == 1);
    rn_tensor_release(m);
  }
  rn_dataset_release(ds);
  ds = NULL;
  CHECK_ERR(rn_dataset_open(&ds, RN_DATA_JSONL, ir, "cable", &o), RN_ERR_FORMAT, "no entries for category cable");
  twrite_text(tpath(root, "samples/bad.json"), "{\"filename\": \"bottle/test/good/000.png\", \"label\": 0}\n{\"filename\": 3\n");
  o.protocol = tpath(root, "samples/bad.json");
  CHECK_ERR(rn_dataset_open(&ds, RN_DATA_JSONL, ir, NULL, &o), RN_ERR_FORMAT, "line 2");
  o.protocol = NULL;
  CHECK_ERR(rn_dataset_open(&ds, RN_DATA_JSONL, ir, NULL, &o), RN_ERR_ARG, "protocol");
}

static void folder(void) {
  char fr[512];
  snprintf(fr, sizeof fr, "%s", tpath(root, "fold"));
  for (int i = 0; i < 3; i++) twrite_image(tpath(fr, "normal/n%d.png", i), 9, 9, 3, i);
  twrite_image(tpath(fr, "dent/a.png"), 9, 9, 3, 10);
  twrite_image(tpath(fr, "dent/b.png"), 9, 9, 3, 11);
  twrite_image(tpath(fr, "stain/c.png"), 9, 9, 1, 12);
  twrite_mask(tpath(fr, "masks/dent/a_mask.png"), 9, 9, 0, 3, 0, 3);
  twrite_mask(tpath(fr, "masks/b.png"), 9, 9, 0, 9, 0, 1);
  twrite_mask(tpath(fr, "masks/stain/c.png"), 9, 9, 0, 1, 0, 1);
  rn_dataset_opts o = rn_dataset_opts_default();
  o.normal_dir = "normal";
  o.height = o.width = 9;
  rn_dataset *ds = NULL;
  if (CHECK_OK(rn_dataset_open(&ds, RN_DATA_FOLDER, fr, NULL, &o))) CHECK(rn_dataset_size(ds) == 3);
  rn_dataset_release(ds);
  ds = NULL;
  o.split = RN_SPLIT_TEST; /* abnormal dirs default to every other sub-directory; masks/ found by itself */
  if (CHECK_OK(rn_dataset_open(&ds, RN_DATA_FOLDER, fr, NULL, &o)) && CHECK(rn_dataset_size(ds) == 3)) {
    rn_dataset_entry e;
    CHECK_OK(rn_dataset_get_entry(ds, 0, &e));
    CHECK(!strcmp(e.defect, "dent") && ends(e.mask_path, "masks/dent/a_mask.png"));
    CHECK_OK(rn_dataset_get_entry(ds, 1, &e));
    CHECK(ends(e.mask_path, "masks/b.png") != NULL);
    CHECK_OK(rn_dataset_get_entry(ds, 2, &e));
    CHECK(!strcmp(e.defect, "stain") && ends(e.mask_path, "masks/stain/c.png"));
  }
  rn_dataset_release(ds);
  ds = NULL;
  const char *abn[1] = {"stain"};
  o.abnormal_dirs = abn;
  o.n_abnormal = 1;
  o.split = RN_SPLIT_ALL;
  if (CHECK_OK(rn_dataset_open(&ds, RN_DATA_FOLDER, fr, NULL, &o))) CHECK(rn_dataset_size(ds) == 4);
  rn_dataset_release(ds);
  ds = NULL;
  abn[0] = "nope";
  CHECK_ERR(rn_dataset_open(&ds, RN_DATA_FOLDER, fr, NULL, &o), RN_ERR_IO, "nope");
}

static void bad_input(void) {
  rn_dataset *ds = NULL;
  rn_data_kind k;
  CHECK_ERR(rn_data_kind_parse("imagenet", &k), RN_ERR_ARG, "unknown dataset kind 'imagenet'");
  CHECK_ERR(rn_dataset_open(&ds, (rn_data_kind)42, root, "widget", NULL), RN_ERR_ARG, "unknown dataset kind");
  CHECK_ERR(rn_dataset_open(&ds, RN_DATA_MVTEC, "/nonexistent_rn_root", "bottle", NULL), RN_ERR_IO,
            "/nonexistent_rn_root");
  CHECK_ERR(rn_dataset_open(&ds, RN_DATA_MVTEC, root, "no_such_cat", NULL), RN_ERR_IO, "no_such_cat");
  rn_data_split sp;
  CHECK_ERR(rn_data_split_parse("val", &sp), RN_ERR_ARG, "unknown split 'val'");
  /* empty train split */
  tmkdirs(tpath(root, "empty/train/good"), 1);
  twrite_image(tpath(root, "empty/test/good/000.png"), 8, 8, 3, 1);
  CHECK_ERR(rn_dataset_open(&ds, RN_DATA_MVTEC, root, "empty", NULL), RN_ERR_FORMAT, "empty train split");
  tmkdirs(tpath(root, "notrain/test/good"), 1);
  CHECK_ERR(rn_dataset_open(&ds, RN_DATA_MVTEC, root, "notrain", NULL), RN_ERR_FORMAT, "train/good");
  /* a missing mask names the image */
  tmake_mvtec(root, "nomask", 1);
  remove(tpath(root, "nomask/ground_truth/crack/001_mask.png"));
  rn_dataset_opts o = rn_dataset_opts_default();
  o.split = RN_SPLIT_TEST;
  CHECK_ERR(rn_dataset_open(&ds, RN_DATA_MVTEC, root, "nomask", &o), RN_ERR_FORMAT, "nomask/test/crack/001.png");
  o.split = RN_SPLIT_TRAIN; /* the train split does not need masks */
  CHECK_OK(rn_dataset_open(&ds, RN_DATA_MVTEC, root, "nomask", &o));
  rn_dataset_entry e;
  CHECK_ERR(rn_dataset_get_entry(ds, 1, &e), RN_ERR_ARG, "out of range");
  CHECK_ERR(rn_dataset_load(ds, -1, NULL, NULL), RN_ERR_ARG, "out of range");
  rn_dataset_release(ds);
  ds = NULL;
  o.height = 0;
  CHECK_ERR(rn_dataset_open(&ds, RN_DATA_MVTEC, root, "nomask", &o), RN_ERR_ARG, "size");
  /* a corrupt image fails on load, naming the file */
  twrite_text(tpath(root, "corrupt/train/good/000.png"), "\x89PNG\r\n\x1a\n garbage");
  o = rn_dataset_opts_default();
  if (CHECK_OK(rn_dataset_open(&ds, RN_DATA_MVTEC, root, "corrupt", &o))) {
    rn_tensor *img = NULL;
    CHECK_ERR(rn_dataset_load(ds, 0, &img, NULL), RN_ERR_FORMAT, "corrupt/train/good/000.png");
    CHECK(img == NULL);
  }
  rn_dataset_release(ds);
  rn_dataset_release(NULL);
}

int main(void) {
  root = tmake_tmp("dataset");
  if (!CHECK(root != NULL)) return test_finish("dataset");
  mvtec();
  pil_parity();
  btad();
  visa();
  jsonl();
  folder();
  bad_input();
  trm_rf(root);
  return test_finish("dataset");
}
