/* ds_mvtec.c - the MVTec AD layout and its relatives (MPDD: identical; BTAD: normal images in ok/, masks
 * named <id>.png or <id>.bmp). <cat>/train/<normal>, <cat>/test/<defect>, <cat>/ground_truth/<defect>/. */
#include <stdlib.h>
#include <string.h>

#include "ds_internal.h"

/* The normal directory's name under `dir`: good/ or ok/ (BTAD looks for ok/ first); NULL when neither. */
static const char *normal_name(rn_data_kind kind, const char *dir) {
  const char *order[2] = {"good", "ok"};
  if (kind == RN_DATA_BTAD) order[0] = "ok", order[1] = "good";
  for (int i = 0; i < 2; i++) {
    char *p = ds_join(dir, order[i]);
    bool ok = ds_is_dir(p);
    free(p);
    if (ok) return order[i];
  }
  return NULL;
}

static bool is_normal(const char *name) { return strcmp(name, "good") == 0 || strcmp(name, "ok") == 0; }

/* Appends dir's images as entries; returns the count in *n. */
static rn_status add_images(const char *dir, const char *defect, const char *split, int label, const char *gtdir,
                            ds_entries *out, ds_problems *probs, int64_t *n) {
  char **names;
  RN_TRY(ds_list(dir, false, true, &names, n));
  rn_status st = RN_OK;
  for (int64_t i = 0; i < *n && st == RN_OK; i++) {
    char *path = ds_join(dir, names[i]), *mask = NULL;
    if (!path) { st = rn_error(RN_ERR_OOM, "dataset: out of memory"); break; }
    if (label) {
      char *stem = ds_stem(names[i]);
      mask = stem && gtdir ? ds_find_mask(gtdir, stem) : NULL;
      if (!mask)
        st = ds_add_problem(probs, RN_PROBLEM_MISSING_MASK, path, "no mask for this %s image (looked for "
                            "%s/%s_mask.png, %s.png, .bmp)", defect, gtdir ? gtdir : "ground_truth", stem ? stem : "",
                            stem ? stem : "");
      free(stem);
    }
    if (st == RN_OK) st = ds_add_entry(out, path, mask, defect, split, label);
    free(path);
    free(mask);
  }
  ds_names_free(names, *n);
  return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Mask files in ground_truth/<defect>/ whose image is not in test/<defect>/. */
static rn_status unpaired_masks(const char *gtroot, const char *testroot, ds_problems *probs) {
  char **defects;
  int64_t nd;
  RN_TRY(ds_list(gtroot, true, false, &defects, &nd));
  rn_status st = RN_OK;
  for (int64_t d = 0; d < nd && st == RN_OK; d++) {
    char *gdir = ds_join(gtroot, defects[d]), *tdir = ds_join(testroot, defects[d]);
    char **masks = NULL, **imgs = NULL;
    int64_t nm = 0, ni = 0;
    st = gdir && tdir ? ds_list(gdir, false, true, &masks, &nm) : rn_error(RN_ERR_OOM, "dataset: out of memory");
    if (st == RN_OK && ds_is_dir(tdir)) st = ds_list(tdir, false, true, &imgs, &ni);
    for (int64_t i = 0; i < ni && st == RN_OK; i++) { /* image names -> stems, sorted for bsearch */
      char *s = ds_stem(imgs[i]);
      if (!s) { st = rn_error(RN_ERR_OOM, "dataset: out of memory"); break; }
      free(imgs[i]);
      imgs[i] = s;
    }
    if (st == RN_OK && ni) qsort(imgs, (size_t)ni, sizeof *imgs, cmp_str);
    for (int64_t i = 0; i < nm && st == RN_OK; i++) {
      char *stem = ds_mask_stem(masks[i]);
      bool paired = stem && ni && bsearch(&stem, imgs, (size_t)ni, sizeof *imgs, cmp_str);
      if (!paired) {
        char *mp = ds_join(gdir, masks[i]);
        st = ds_add_problem(probs, RN_PROBLEM_UNPAIRED_MASK, mp ? mp : masks[i], "no image %s/%s.* for this mask",
                            tdir, stem ? stem : "?");
        free(mp);
      }
      free(stem);
    }
    ds_names_free(masks, nm);
    ds_names_free(imgs, ni);
    free(gdir);
    free(tdir);
  }
  ds_names_free(defects, nd);
  return st;
}

static rn_status scan_train(rn_data_kind kind, const char *catdir, ds_entries *out, ds_problems *probs) {
  char *train = ds_join(catdir, "train");
  if (!train) return rn_error(RN_ERR_OOM, "dataset: out of memory");
  rn_status st = RN_OK;
  const char *normal = ds_is_dir(train) ? normal_name(kind, train) : NULL;
  if (!normal) {
    st = ds_add_problem(probs, RN_PROBLEM_EMPTY_SPLIT, train, "empty train split: no %s directory",
                        kind == RN_DATA_BTAD ? "train/ok" : "train/good");
    free(train);
    return st;
  }
  char **subs;
  int64_t ns, n = 0;
  st = ds_list(train, true, false, &subs, &ns);
  if (st != RN_OK) { free(train); return st; }
  for (int64_t i = 0; i < ns && st == RN_OK; i++)
    if (strcmp(subs[i], normal) != 0) {
      char *p = ds_join(train, subs[i]);
      st = ds_add_problem(probs, RN_PROBLEM_LAYOUT, p ? p : subs[i],
                          "unexpected directory in train/ (only train/%s is read)", normal);
      free(p);
    }
  ds_names_free(subs, ns);
  char *dir = ds_join(train, normal);
  if (st == RN_OK) st = dir ? add_images(dir, normal, "train", 0, NULL, out, probs, &n)
                            : rn_error(RN_ERR_OOM, "dataset: out of memory");
  if (st == RN_OK && n == 0)
    st = ds_add_problem(probs, RN_PROBLEM_EMPTY_SPLIT, dir, "empty train split: no images in this directory");
  free(dir);
  free(train);
  return st;
}

static rn_status scan_test(const char *catdir, ds_entries *out, ds_problems *probs) {
  char *test = ds_join(catdir, "test"), *gt = ds_join(catdir, "ground_truth");
  if (!test || !gt) { free(test); free(gt); return rn_error(RN_ERR_OOM, "dataset: out of memory"); }
  rn_status st = RN_OK;
  if (!ds_is_dir(test)) {
    st = ds_add_problem(probs, RN_PROBLEM_EMPTY_SPLIT, test, "empty test split: no test directory");
    free(test);
    free(gt);
    return st;
  }
  char **defects;
  int64_t nd, total = 0;
  st = ds_list(test, true, false, &defects, &nd);
  if (st != RN_OK) nd = 0, defects = NULL;
  for (int64_t d = 0; d < nd && st == RN_OK; d++) {
    int label = !is_normal(defects[d]);
    char *dir = ds_join(test, defects[d]), *gdir = ds_join(gt, defects[d]);
    int64_t n = 0;
    if (!dir || !gdir) st = rn_error(RN_ERR_OOM, "dataset: out of memory");
    if (st == RN_OK) st = add_images(dir, defects[d], "test", label, gdir, out, probs, &n);
    if (st == RN_OK && n == 0)
      st = ds_add_problem(probs, RN_PROBLEM_EMPTY_SPLIT, dir, "test defect directory without images");
    total += n;
    free(dir);
    free(gdir);
  }
  ds_names_free(defects, nd);
  if (st == RN_OK && total == 0)
    st = ds_add_problem(probs, RN_PROBLEM_EMPTY_SPLIT, test, "empty test split: no images under this directory");
  if (st == RN_OK && ds_is_dir(gt)) st = unpaired_masks(gt, test, probs);
  free(test);
  free(gt);
  return st;
}

rn_status ds_scan_mvtec(rn_data_kind kind, const char *catdir, rn_data_split split, ds_entries *out,
                        ds_problems *probs) {
  if (!ds_is_dir(catdir))
    return rn_error(RN_ERR_IO, "%s: category directory %s does not exist", rn_data_kind_name(kind), catdir);
  if (split != RN_SPLIT_TEST) RN_TRY(scan_train(kind, catdir, out, probs));
  if (split != RN_SPLIT_TRAIN) RN_TRY(scan_test(catdir, out, probs));
  return RN_OK;
}
