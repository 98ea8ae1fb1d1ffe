/* ds_folder.c - a generic folder: <root>/<normal_dir> (train), abnormal dirs (test; default every other
 * sub-directory), optional <root>/<normal_test_dir> (test normals), optional masks under a mask dir, in
 * <mask_dir>/<defect>/ or <mask_dir>/ itself. Without a mask dir anomalous images get all-ones masks. */
#include <stdlib.h>
#include <string.h>

#include "ds_internal.h"

static const char *auto_mask_dir(const char *root) {
  static const char *const names[] = {"ground_truth", "masks"};
  for (int i = 0; i < 2; i++) {
    char *p = ds_join(root, names[i]);
    bool ok = ds_is_dir(p);
    free(p);
    if (ok) return names[i];
  }
  return NULL;
}

static const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s && s[1] ? s + 1 : p;
}

static bool same_dir(const char *a, const char *b) { return a && b && strcmp(base_name(a), base_name(b)) == 0; }

/* Images of root/dir as entries; abnormal ones look for masks when mroot is set. */
static rn_status add_dir(const char *root, const char *dir, const char *split, int label, const char *mroot,
                         ds_entries *out, ds_problems *probs, int64_t *count) {
  char *full = ds_join(root, dir);
  if (!full) return rn_error(RN_ERR_OOM, "dataset: out of memory");
  if (!ds_is_dir(full)) {
    rn_status st = rn_error(RN_ERR_IO, "folder: directory %s does not exist", full);
    free(full);
    return st;
  }
  const char *defect = base_name(dir);
  char **names;
  int64_t n;
  rn_status st = ds_list(full, false, true, &names, &n);
  if (st != RN_OK) { free(full); return st; }
  char *mdefect = mroot ? ds_join(mroot, defect) : NULL;
  for (int64_t i = 0; i < n && st == RN_OK; i++) {
    char *path = ds_join(full, names[i]), *mask = NULL;
    if (label && mroot) {
      char *stem = ds_stem(names[i]);
      if (stem) mask = ds_find_mask(mdefect, stem);
      if (stem && !mask) mask = ds_find_mask(mroot, stem);
      if (!mask)
        st = ds_add_problem(probs, RN_PROBLEM_MISSING_MASK, path ? path : names[i],
                            "no mask %s_mask.png or %s.png in %s or %s", stem ? stem : "", stem ? stem : "", mdefect,
                            mroot);
      free(stem);
    }
    if (st == RN_OK) st = ds_add_entry(out, path, mask, defect, split, label);
    free(path);
    free(mask);
  }
  if (st == RN_OK && n == 0)
    st = ds_add_problem(probs, RN_PROBLEM_EMPTY_SPLIT, full, "no images in this %s directory",
                        label ? "abnormal" : "normal");
  *count += n;
  ds_names_free(names, n);
  free(mdefect);
  free(full);
  return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Mask files under mroot (and one level of sub-directories) that no entry uses. */
static rn_status unpaired(const char *mroot, const ds_entries *e, int64_t first, ds_problems *probs) {
  int64_t nused = 0;
  char **used = malloc((size_t)(e->n - first + 1) * sizeof *used);
  if (!used) return rn_error(RN_ERR_OOM, "dataset: out of memory");
  for (int64_t i = first; i < e->n; i++)
    if (e->v[i].mask) used[nused++] = e->v[i].mask;
  qsort(used, (size_t)nused, sizeof *used, cmp_str);
  char **subs;
  int64_t ns;
  rn_status st = ds_list(mroot, true, false, &subs, &ns);
  if (st != RN_OK) { free(used); return st; }
  for (int64_t s = -1; s < ns && st == RN_OK; s++) {
    char *dir = s < 0 ? ds_strdup(mroot) : ds_join(mroot, subs[s]);
    char **files = NULL;
    int64_t nf = 0;
    st = dir ? ds_list(dir, false, true, &files, &nf) : rn_error(RN_ERR_OOM, "dataset: out of memory");
    for (int64_t i = 0; st == RN_OK && i < nf; i++) {
      char *p = ds_join(dir, files[i]);
      if (p && !bsearch(&p, used, (size_t)nused, sizeof *used, cmp_str))
        st = ds_add_problem(probs, RN_PROBLEM_UNPAIRED_MASK, p, "no abnormal image uses this mask");
      free(p);
    }
    ds_names_free(files, nf);
    free(dir);
  }
  ds_names_free(subs, ns);
  free(used);
  return st;
}

rn_status ds_scan_folder(const char *root, const rn_dataset_opts *o, rn_data_split split, ds_entries *out,
                         ds_problems *probs) {
  if (!ds_is_dir(root)) return rn_error(RN_ERR_IO, "folder: root directory %s does not exist", root);
  const char *normal = o->normal_dir ? o->normal_dir : "good";
  const char *mdir = o->mask_dir ? o->mask_dir : auto_mask_dir(root);
  char *mroot = mdir ? ds_join(root, mdir) : NULL;
  if (mdir && !ds_is_dir(mroot)) {
    rn_status st = rn_error(RN_ERR_IO, "folder: mask directory %s does not exist", mroot);
    free(mroot);
    return st;
  }
  rn_status st = RN_OK;
  int64_t first = out->n, ntrain = 0, ntest = 0;
  if (split != RN_SPLIT_TEST) {
    st = add_dir(root, normal, "train", 0, NULL, out, probs, &ntrain); /* reports an empty normal dir */
  }
  if (st == RN_OK && split != RN_SPLIT_TRAIN) {
    int64_t nprob = probs->n;
    if (o->normal_test_dir) st = add_dir(root, o->normal_test_dir, "test", 0, NULL, out, probs, &ntest);
    if (o->abnormal_dirs) {
      for (int i = 0; i < o->n_abnormal && st == RN_OK; i++)
        st = add_dir(root, o->abnormal_dirs[i], "test", 1, mroot, out, probs, &ntest);
    } else if (st == RN_OK) { /* every other sub-directory */
      char **subs;
      int64_t ns;
      if ((st = ds_list(root, true, false, &subs, &ns)) == RN_OK) {
        for (int64_t i = 0; st == RN_OK && i < ns; i++)
          if (!same_dir(subs[i], normal) && !same_dir(subs[i], o->normal_test_dir) && !same_dir(subs[i], mdir))
            st = add_dir(root, subs[i], "test", 1, mroot, out, probs, &ntest);
        ds_names_free(subs, ns);
      }
    }
    if (st == RN_OK && ntest == 0 && probs->n == nprob)
      st = ds_add_problem(probs, RN_PROBLEM_EMPTY_SPLIT, root, "empty test split: no abnormal images");
    if (st == RN_OK && mroot) st = unpaired(mroot, out, first, probs);
  }
  free(mroot);
  return st;
}
