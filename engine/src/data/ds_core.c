/* ds_core.c - opening a dataset (listing through the layout scanners), its getters, and decoding one item
 * as spec 2.2 prescribes (PIL bilinear for images, nearest for masks, masks binarised > 0). */
#include <stdlib.h>
#include <string.h>

#include "ds_internal.h"
#include "realnet/image.h"

static const char *const kind_names[] = {"mvtec", "visa", "mpdd", "btad", "jsonl", "folder"};
static const char *const split_names[] = {"train", "test", "all"};

const char *rn_data_kind_name(rn_data_kind k) {
  return (unsigned)k < sizeof kind_names / sizeof *kind_names ? kind_names[k] : "unknown";
}

rn_status rn_data_kind_parse(const char *name, rn_data_kind *out) {
  for (int i = 0; name && i < (int)(sizeof kind_names / sizeof *kind_names); i++)
    if (strcmp(name, kind_names[i]) == 0) { *out = (rn_data_kind)i; return RN_OK; }
  return rn_error(RN_ERR_ARG, "unknown dataset kind '%s' (expected mvtec, visa, mpdd, btad, jsonl or folder)",
                  name ? name : "(null)");
}

const char *rn_data_split_name(rn_data_split s) { return (unsigned)s < 3 ? split_names[s] : "unknown"; }

rn_status rn_data_split_parse(const char *name, rn_data_split *out) {
  for (int i = 0; name && i < 3; i++)
    if (strcmp(name, split_names[i]) == 0) { *out = (rn_data_split)i; return RN_OK; }
  return rn_error(RN_ERR_ARG, "unknown split '%s' (expected train, test or all)", name ? name : "(null)");
}

rn_dataset_opts rn_dataset_opts_default(void) {
  rn_dataset_opts o;
  memset(&o, 0, sizeof o);
  o.split = RN_SPLIT_TRAIN;
  o.height = o.width = 256;
  o.normalize = 1;
  return o;
}

rn_status ds_scan(rn_data_kind kind, const char *root, const char *category, const rn_dataset_opts *o,
                  rn_data_split split, ds_entries *out, ds_problems *probs) {
  if (!root || !*root) return rn_error(RN_ERR_ARG, "%s: no root directory given", rn_data_kind_name(kind));
  if ((unsigned)kind > RN_DATA_FOLDER) return rn_error(RN_ERR_ARG, "unknown dataset kind %d", (int)kind);
  if (kind == RN_DATA_JSONL) return ds_scan_jsonl(root, o->protocol, category, out, probs);
  if (!ds_is_dir(root)) return rn_error(RN_ERR_IO, "%s: root directory %s does not exist", rn_data_kind_name(kind), root);
  char *catdir = category && *category ? ds_join(root, category) : ds_strdup(root);
  if (!catdir) return rn_error(RN_ERR_OOM, "dataset: out of memory");
  rn_status st;
  if (kind == RN_DATA_VISA) {
    char *csv = ds_join(root, "split_csv/1cls.csv"), *train = ds_join(catdir, "train");
    bool mvtec_like = !ds_is_file(csv) && ds_is_dir(train); /* the authors' re-formatted copy */
    free(csv);
    free(train);
    st = mvtec_like ? ds_scan_mvtec(kind, catdir, split, out, probs) : ds_scan_visa(root, category, split, out, probs);
  } else if (kind == RN_DATA_FOLDER) {
    st = ds_scan_folder(catdir, o, split, out, probs);
  } else {
    st = ds_scan_mvtec(kind, catdir, split, out, probs);
  }
  free(catdir);
  return st;
}

/* Copies the option strings into ds->owned so the caller's may go away. */
static rn_status copy_opts(rn_dataset *ds, const rn_dataset_opts *o) {
  ds->opts = *o;
  int n = 4 + (o->abnormal_dirs ? o->n_abnormal : 0);
  ds->owned = calloc((size_t)n + 1, sizeof *ds->owned);
  const char **abn = o->abnormal_dirs ? calloc((size_t)o->n_abnormal + 1, sizeof *abn) : NULL;
  if (!ds->owned || (o->abnormal_dirs && !abn)) { free(abn); return rn_error(RN_ERR_OOM, "dataset: out of memory"); }
  const char **slots[4] = {&ds->opts.protocol, &ds->opts.normal_dir, &ds->opts.mask_dir, &ds->opts.normal_test_dir};
  for (int i = 0; i < 4; i++)
    if (*slots[i] && !(*slots[i] = ds->owned[ds->n_owned++] = ds_strdup(*slots[i]))) {
      free(abn);
      return rn_error(RN_ERR_OOM, "dataset: out of memory");
    }
  for (int i = 0; abn && i < o->n_abnormal; i++) {
    if (!o->abnormal_dirs[i] || !*o->abnormal_dirs[i]) {
      free(abn);
      return rn_error(RN_ERR_ARG, "folder: abnormal directory %d is empty", i + 1);
    }
    if (!(abn[i] = ds->owned[ds->n_owned++] = ds_strdup(o->abnormal_dirs[i]))) {
      free(abn);
      return rn_error(RN_ERR_OOM, "dataset: out of memory");
    }
  }
  ds->opts.abnormal_dirs = abn;
  return RN_OK;
}

/* Problems that make a split unusable: the first becomes the error of rn_dataset_open. */
static bool fatal_problem(rn_problem_kind k) {
  return k == RN_PROBLEM_MISSING_MASK || k == RN_PROBLEM_EMPTY_SPLIT || k == RN_PROBLEM_UNREADABLE;
}

static rn_status open_ds(rn_dataset *ds, rn_data_kind kind, const char *root, const char *category,
                         const rn_dataset_opts *o) {
  if ((unsigned)o->split > RN_SPLIT_ALL) return rn_error(RN_ERR_ARG, "dataset: unknown split %d", (int)o->split);
  if (o->height < 0 || o->width < 0 || (o->height == 0) != (o->width == 0))
    return rn_error(RN_ERR_ARG, "dataset: size %lldx%lld must be two positive numbers (or 0x0 to keep sizes)",
                    (long long)o->height, (long long)o->width);
  if (o->abnormal_dirs && o->n_abnormal < 0) return rn_error(RN_ERR_ARG, "folder: negative abnormal dir count");
  ds->kind = kind;
  ds->root = ds_strdup(root);
  ds->category = category && *category ? ds_strdup(category) : NULL;
  if (!ds->root || (category && *category && !ds->category)) return rn_error(RN_ERR_OOM, "dataset: out of memory");
  RN_TRY(copy_opts(ds, o));
  ds_problems probs = {0};
  rn_status st = ds_scan(kind, root, category, &ds->opts, o->split, &ds->e, &probs);
  for (int64_t i = 0; st == RN_OK && i < probs.n; i++)
    if (fatal_problem(probs.v[i].kind))
      st = rn_error(RN_ERR_FORMAT, "%s: %s: %s: %s (`realnet doctor` lists every problem)", rn_data_kind_name(kind),
                    rn_problem_kind_name(probs.v[i].kind), probs.v[i].path, probs.v[i].message);
  ds_problems_free(&probs);
  if (st == RN_OK && ds->e.n == 0)
    st = rn_error(RN_ERR_FORMAT, "%s: empty %s split under %s", rn_data_kind_name(kind), rn_data_split_name(o->split),
                  root);
  return st;
}

rn_status rn_dataset_open(rn_dataset **out, rn_data_kind kind, const char *root, const char *category,
                          const rn_dataset_opts *opts) {
  if (!out) return rn_error(RN_ERR_ARG, "dataset: NULL output pointer");
  *out = NULL;
  rn_dataset_opts def = rn_dataset_opts_default();
  rn_dataset *ds = calloc(1, sizeof *ds);
  if (!ds) return rn_error(RN_ERR_OOM, "dataset: out of memory");
  ds->refcount = 1;
  rn_status st = open_ds(ds, kind, root, category, opts ? opts : &def);
  if (st != RN_OK) { rn_dataset_release(ds); return st; }
  *out = ds;
  return RN_OK;
}

rn_dataset *rn_dataset_retain(rn_dataset *ds) {
  if (ds) ds->refcount++;
  return ds;
}

void rn_dataset_release(rn_dataset *ds) {
  if (!ds || --ds->refcount > 0) return;
  ds_entries_free(&ds->e);
  for (int i = 0; i < ds->n_owned; i++) free(ds->owned[i]);
  free(ds->owned);
  free((void *)ds->opts.abnormal_dirs);
  free(ds->root);
  free(ds->category);
  free(ds);
}

int64_t rn_dataset_size(const rn_dataset *ds) { return ds ? ds->e.n : 0; }
rn_dataset_opts rn_dataset_get_opts(const rn_dataset *ds) { return ds->opts; }
rn_data_kind rn_dataset_kind(const rn_dataset *ds) { return ds->kind; }
const char *rn_dataset_get_root(const rn_dataset *ds) { return ds->root; }
const char *rn_dataset_get_category(const rn_dataset *ds) { return ds->category; }

rn_status rn_dataset_get_entry(const rn_dataset *ds, int64_t i, rn_dataset_entry *e) {
  if (!ds || !e) return rn_error(RN_ERR_ARG, "dataset entry: NULL argument");
  if (i < 0 || i >= ds->e.n)
    return rn_error(RN_ERR_ARG, "dataset entry: index %lld out of range for %lld items", (long long)i,
                    (long long)ds->e.n);
  const ds_entry *s = &ds->e.v[i];
  e->path = s->path;
  e->mask_path = s->mask;
  e->defect = s->defect;
  e->split = s->split;
  e->label = s->label;
  return RN_OK;
}

/* uint8 [h,w,1] mask -> float32 [1,H,W] of {0,1}: PIL nearest to (H,W), then > 0. */
static rn_status mask_tensor(rn_tensor **out, const char *path, int64_t H, int64_t W) {
  rn_tensor *m = NULL, *r = NULL;
  RN_TRY(ds_read_gray(&m, path));
  rn_status st = RN_OK;
  if (m->shape[0] != H || m->shape[1] != W) st = rn_image_resize(&r, m, H, W, RN_RESIZE_NEAREST);
  else r = rn_tensor_retain(m);
  rn_tensor_release(m);
  RN_TRY(st);
  int64_t shape[3] = {1, H, W};
  st = rn_tensor_empty(out, 3, shape, RN_F32, rn_cpu());
  if (st == RN_OK) {
    const uint8_t *s = rn_tensor_data(r);
    float *d = rn_f32(*out);
    for (int64_t i = 0; i < H * W; i++) d[i] = s[i] > 0 ? 1.0f : 0.0f;
  }
  rn_tensor_release(r);
  return st;
}

/* The resized uint8 RGB image of entry e and the target size. */
static rn_status load_rgb_u8(const rn_dataset *ds, const rn_dataset_entry *e, rn_tensor **rgb, int64_t *H, int64_t *W) {
  rn_tensor *img = NULL, *small = NULL;
  RN_TRY(ds_read_color(&img, e->path));
  *H = ds->opts.height > 0 ? ds->opts.height : img->shape[0];
  *W = ds->opts.width > 0 ? ds->opts.width : img->shape[1];
  rn_status st = RN_OK;
  if (rgb) {
    if (img->shape[0] != *H || img->shape[1] != *W) st = rn_image_resize(&small, img, *H, *W, RN_RESIZE_BILINEAR);
    else small = rn_tensor_retain(img);
    /* gray is resized as one plane, then replicated (as cv2's IMREAD_COLOR gives three equal planes) */
    if (st == RN_OK) st = small->shape[2] == 3 ? (*rgb = rn_tensor_retain(small), RN_OK) : rn_image_to_rgb(rgb, small);
  }
  rn_tensor_release(small);
  rn_tensor_release(img);
  return st;
}

rn_status rn_dataset_load_u8(const rn_dataset *ds, int64_t i, rn_tensor **image) {
  if (!image) return rn_error(RN_ERR_ARG, "dataset load: NULL output pointer");
  *image = NULL;
  rn_dataset_entry e;
  RN_TRY(rn_dataset_get_entry(ds, i, &e));
  int64_t H, W;
  return load_rgb_u8(ds, &e, image, &H, &W);
}

rn_status rn_dataset_load(const rn_dataset *ds, int64_t i, rn_tensor **image, rn_tensor **mask) {
  if (image) *image = NULL;
  if (mask) *mask = NULL;
  rn_dataset_entry e;
  RN_TRY(rn_dataset_get_entry(ds, i, &e));
  rn_tensor *rgb = NULL;
  int64_t H, W;
  rn_status st = load_rgb_u8(ds, &e, image ? &rgb : NULL, &H, &W);
  if (st == RN_OK && image)
    st = ds->opts.normalize ? rn_image_normalize_imagenet(image, rgb) : rn_image_to_float(image, rgb);
  rn_tensor_release(rgb);
  if (st == RN_OK && mask) {
    int64_t shape[3] = {1, H, W};
    if (e.mask_path) {
      st = mask_tensor(mask, e.mask_path, H, W);
    } else if ((st = rn_tensor_empty(mask, 3, shape, RN_F32, rn_cpu())) == RN_OK) {
      /* a plain loop, not rn_fill_: workers must not start OpenMP teams of their own */
      float *d = rn_f32(*mask), v = e.label ? 1.0f : 0.0f;
      for (int64_t k = 0; k < H * W; k++) d[k] = v;
    }
  }
  if (st != RN_OK) {
    if (image) { rn_tensor_release(*image); *image = NULL; }
    if (mask) { rn_tensor_release(*mask); *mask = NULL; }
  }
  return st;
}
