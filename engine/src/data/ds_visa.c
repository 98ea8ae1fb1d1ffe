/* ds_visa.c - VisA through its split_csv/1cls.csv (columns object,split,label,image,mask; paths relative to
 * the root; label "normal" or "anomaly"). Rows keep the csv's order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds_internal.h"

#define MAX_FIELDS 16

/* Splits one csv line in place (double quotes group, "" is a quote); returns the field count. */
static int split_csv(char *line, char **f) {
  int n = 0;
  char *r = line;
  while (n < MAX_FIELDS) {
    char *w = r;
    f[n++] = w;
    bool q = false;
    for (;;) {
      char c = *r;
      if (c == '\0' || c == '\n' || c == '\r') { *w = '\0'; return n; }
      r++;
      if (q) {
        if (c == '"' && *r == '"') { *w++ = '"'; r++; }
        else if (c == '"') q = false;
        else *w++ = c;
      } else if (c == '"') {
        q = true;
      } else if (c == ',') {
        *w = '\0';
        break;
      } else {
        *w++ = c;
      }
    }
  }
  return n;
}

static int column(char **f, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(f[i], name) == 0) return i;
  return -1;
}

typedef struct { int64_t train, test, any; } counts;

/* One data row; appends its entry or a problem. */
static rn_status add_row(const char *root, const char *csv, int64_t lineno, char **f, const int *col,
                         rn_data_split split, ds_entries *out, ds_problems *probs, counts *c) {
  const char *sp = f[col[1]], *lab = f[col[2]], *img = f[col[3]], *mask = col[4] >= 0 ? f[col[4]] : "";
  bool train = strcmp(sp, "train") == 0;
  if (!train && strcmp(sp, "test") != 0)
    return rn_error(RN_ERR_FORMAT, "visa: %s line %lld: split must be train or test, got '%s'", csv, (long long)lineno, sp);
  int label = strcmp(lab, "anomaly") == 0 ? 1 : strcmp(lab, "normal") == 0 ? 0 : -1;
  if (label < 0)
    return rn_error(RN_ERR_FORMAT, "visa: %s line %lld: label must be normal or anomaly, got '%s'", csv,
                    (long long)lineno, lab);
  c->any++;
  if (train) c->train++; else c->test++;
  if ((split == RN_SPLIT_TRAIN && !train) || (split == RN_SPLIT_TEST && train)) return RN_OK;
  char *path = ds_join(root, img), *mpath = *mask ? ds_join(root, mask) : NULL;
  rn_status st = path && (!*mask || mpath) ? RN_OK : rn_error(RN_ERR_OOM, "dataset: out of memory");
  if (st == RN_OK && !ds_is_file(path))
    st = ds_add_problem(probs, RN_PROBLEM_UNREADABLE, path, "image listed in %s line %lld does not exist", csv,
                        (long long)lineno);
  if (st == RN_OK && label && !mpath)
    st = ds_add_problem(probs, RN_PROBLEM_MISSING_MASK, path, "anomalous image without a mask in %s line %lld", csv,
                        (long long)lineno);
  if (st == RN_OK && mpath && !ds_is_file(mpath)) {
    st = ds_add_problem(probs, RN_PROBLEM_MISSING_MASK, path, "its mask %s (%s line %lld) does not exist", mpath,
                        csv, (long long)lineno);
    free(mpath);
    mpath = NULL;
  }
  if (st == RN_OK) st = ds_add_entry(out, path, mpath, label ? "anomaly" : "good", train ? "train" : "test", label);
  free(path);
  free(mpath);
  return st;
}

rn_status ds_scan_visa(const char *root, const char *category, rn_data_split split, ds_entries *out,
                       ds_problems *probs) {
  if (!ds_is_dir(root)) return rn_error(RN_ERR_IO, "visa: root directory %s does not exist", root);
  char *csv = ds_join(root, "split_csv/1cls.csv");
  if (!csv) return rn_error(RN_ERR_OOM, "dataset: out of memory");
  FILE *fp = fopen(csv, "rb");
  if (!fp) {
    rn_status st = rn_error(RN_ERR_IO, "visa: cannot open %s (VisA's split file)", csv);
    free(csv);
    return st;
  }
  char *line = NULL;
  size_t cap = 0;
  int64_t lineno = 0;
  int col[5] = {-1, -1, -1, -1, -1};
  counts c = {0, 0, 0};
  rn_status st = RN_OK;
  static const char *const names[5] = {"object", "split", "label", "image", "mask"};
  while (st == RN_OK && getline(&line, &cap, fp) >= 0) {
    lineno++;
    char *f[MAX_FIELDS];
    int n = split_csv(line, f);
    if (n == 1 && f[0][0] == '\0') continue; /* blank line */
    if (col[0] < 0) {                         /* the header */
      for (int k = 0; k < 5; k++) col[k] = column(f, n, names[k]);
      if (col[0] < 0 || col[1] < 0 || col[2] < 0 || col[3] < 0)
        st = rn_error(RN_ERR_FORMAT, "visa: %s: the header must name the columns object,split,label,image,mask",
                      csv);
      continue;
    }
    int need = col[0] > col[1] ? col[0] : col[1];
    for (int k = 2; k < 5; k++) need = col[k] > need ? col[k] : need;
    if (n <= need) {
      if (col[4] >= 0 && n == col[4]) f[n++] = ""; /* a trailing empty mask field */
      if (n <= need) {
        st = rn_error(RN_ERR_FORMAT, "visa: %s line %lld: %d fields, expected %d", csv, (long long)lineno, n,
                      need + 1);
        break;
      }
    }
    if (category && strcmp(f[col[0]], category) != 0) continue;
    st = add_row(root, csv, lineno, f, col, split, out, probs, &c);
  }
  free(line);
  fclose(fp);
  if (st == RN_OK && col[0] < 0) st = rn_error(RN_ERR_FORMAT, "visa: %s is empty", csv);
  if (st == RN_OK && c.any == 0)
    st = rn_error(RN_ERR_ARG, "visa: category '%s' does not appear in %s", category ? category : "", csv);
  if (st == RN_OK && split != RN_SPLIT_TEST && c.train == 0)
    st = ds_add_problem(probs, RN_PROBLEM_EMPTY_SPLIT, csv, "empty train split for '%s'", category ? category : "all");
  if (st == RN_OK && split != RN_SPLIT_TRAIN && c.test == 0)
    st = ds_add_problem(probs, RN_PROBLEM_EMPTY_SPLIT, csv, "empty test split for '%s'", category ? category : "all");
  free(csv);
  return st;
}
