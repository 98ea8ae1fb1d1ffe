/* ds_check.c - `realnet doctor`: list both splits, decode every image and mask on a few threads, and report
 * missing/unpaired masks, size mismatches, unreadable files and empty splits by path. Also the category
 * listing and layout detection the doctor uses when given a bare directory. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds_internal.h"

const char *rn_problem_kind_name(rn_problem_kind k) {
  static const char *const names[] = {"missing mask", "unpaired mask", "mask size", "unreadable",
                                      "empty split",  "layout",        "empty mask"};
  return (unsigned)k < sizeof names / sizeof *names ? names[k] : "problem";
}

/* What decoding one entry found. */
typedef struct {
  int64_t h, w, mh, mw;
  int mask_empty;
  char *img_err, *mask_err; /* malloc'd messages, NULL when fine */
} probe;

typedef struct {
  const ds_entries *e;
  probe *res;
  int64_t next;
} probe_job;

static void probe_one(const ds_entry *e, probe *r) {
  rn_tensor *t = NULL;
  if (!ds_is_file(e->path)) return; /* already reported by the scanner */
  if (ds_read_color(&t, e->path) != RN_OK) r->img_err = ds_strdup(rn_last_error());
  else r->h = t->shape[0], r->w = t->shape[1];
  rn_tensor_release(t);
  t = NULL;
  if (!e->mask) return;
  if (ds_read_gray(&t, e->mask) != RN_OK) {
    r->mask_err = ds_strdup(rn_last_error());
  } else {
    r->mh = t->shape[0], r->mw = t->shape[1];
    const uint8_t *p = rn_tensor_data(t);
    int64_t n = rn_tensor_numel(t), i = 0;
    while (i < n && p[i] == 0) i++;
    r->mask_empty = i == n;
  }
  rn_tensor_release(t);
}

static void *probe_worker(void *arg) {
  probe_job *j = arg;
  for (;;) {
    int64_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
    if (i >= j->e->n) break;
    probe_one(&j->e->v[i], &j->res[i]);
  }
  return NULL;
}

static rn_status run_probes(const ds_entries *e, probe *res, int threads) {
  probe_job j = {e, res, 0};
  if (threads <= 0) threads = rn_data_default_workers();
  if (threads > 64) threads = 64;
  pthread_t th[64];
  int started = 0;
  for (int i = 1; i < threads; i++) /* the calling thread is worker 0 */
    if (pthread_create(&th[started], NULL, probe_worker, &j) == 0) started++;
  probe_worker(&j);
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  return RN_OK;
}

static int cmp_problem(const void *a, const void *b) {
  const rn_dataset_problem *x = a, *y = b;
  int c = strcmp(x->path, y->path);
  return c ? c : (int)x->kind - (int)y->kind;
}

static rn_status add_count(rn_dataset_report *r, int64_t *cap, const ds_entry *e) {
  for (int64_t i = 0; i < r->n_counts; i++)
    if (strcmp(r->counts[i].split, e->split) == 0 && strcmp(r->counts[i].defect, e->defect) == 0) {
      r->counts[i].images++;
      r->counts[i].masks += e->mask != NULL;
      return RN_OK;
    }
  if (r->n_counts == *cap) {
    int64_t c = *cap ? 2 * *cap : 16;
    rn_dataset_count *v = realloc(r->counts, (size_t)c * sizeof *v);
    if (!v) return rn_error(RN_ERR_OOM, "doctor: out of memory");
    r->counts = v;
    *cap = c;
  }
  rn_dataset_count *c = &r->counts[r->n_counts];
  c->split = ds_strdup(e->split);
  c->defect = ds_strdup(e->defect);
  c->images = 1;
  c->masks = e->mask != NULL;
  r->n_counts++;
  return c->split && c->defect ? RN_OK : rn_error(RN_ERR_OOM, "doctor: out of memory");
}

/* Moves layout notes and empty masks to warnings; everything else stays a problem. */
static void split_findings(ds_problems *all, ds_problems *probs, ds_problems *warns) {
  for (int64_t i = 0; i < all->n; i++) {
    ds_problems *dst = all->v[i].kind == RN_PROBLEM_LAYOUT || all->v[i].kind == RN_PROBLEM_EMPTY_MASK ? warns : probs;
    if (dst->n == dst->cap) {
      int64_t c = dst->cap ? 2 * dst->cap : 16;
      rn_dataset_problem *v = realloc(dst->v, (size_t)c * sizeof *v);
      if (!v) { free(all->v[i].path), free(all->v[i].message); continue; }
      dst->v = v;
      dst->cap = c;
    }
    dst->v[dst->n++] = all->v[i];
  }
  free(all->v);
  all->v = NULL;
  all->n = all->cap = 0;
}

static rn_status check(rn_dataset_report *r, rn_data_kind kind, const char *root, const char *category,
                       const rn_dataset_opts *o, int threads) {
  ds_entries e = {0};
  ds_problems all = {0}, probs = {0}, warns = {0};
  rn_status st = ds_scan(kind, root, category, o, RN_SPLIT_ALL, &e, &all);
  probe *res = st == RN_OK ? calloc((size_t)(e.n ? e.n : 1), sizeof *res) : NULL;
  if (st == RN_OK && !res) st = rn_error(RN_ERR_OOM, "doctor: out of memory");
  if (st == RN_OK) st = run_probes(&e, res, threads);
  int64_t cap = 0;
  for (int64_t i = 0; st == RN_OK && i < e.n; i++) {
    const ds_entry *x = &e.v[i];
    probe *p = &res[i];
    st = add_count(r, &cap, x);
    if (st == RN_OK && p->img_err) st = ds_add_problem(&all, RN_PROBLEM_UNREADABLE, x->path, "%s", p->img_err);
    if (st == RN_OK && p->mask_err) st = ds_add_problem(&all, RN_PROBLEM_UNREADABLE, x->mask, "%s", p->mask_err);
    if (st == RN_OK && !p->img_err && !p->mask_err && x->mask && (p->h != p->mh || p->w != p->mw))
      st = ds_add_problem(&all, RN_PROBLEM_MASK_SIZE, x->mask, "mask is %lldx%lld (WxH) but its image %s is %lldx%lld",
                          (long long)p->mw, (long long)p->mh, x->path, (long long)p->w, (long long)p->h);
    if (st == RN_OK && !p->mask_err && x->mask && p->mask_empty && x->label)
      st = ds_add_problem(&all, RN_PROBLEM_EMPTY_MASK, x->mask, "mask of an anomalous image has no foreground pixel");
    r->images += ds_is_file(x->path);
    r->masks += x->mask != NULL;
  }
  for (int64_t i = 0; res && i < e.n; i++) free(res[i].img_err), free(res[i].mask_err);
  free(res);
  ds_entries_free(&e);
  split_findings(&all, &probs, &warns);
  if (probs.n) qsort(probs.v, (size_t)probs.n, sizeof *probs.v, cmp_problem);
  if (warns.n) qsort(warns.v, (size_t)warns.n, sizeof *warns.v, cmp_problem);
  r->problems = probs.v;
  r->n_problems = probs.n;
  r->warnings = warns.v;
  r->n_warnings = warns.n;
  return st;
}

rn_status rn_dataset_check(rn_dataset_report **out, rn_data_kind kind, const char *root, const char *category,
                           const rn_dataset_opts *opts, int threads) {
  if (!out) return rn_error(RN_ERR_ARG, "doctor: NULL output pointer");
  *out = NULL;
  rn_dataset_opts def = rn_dataset_opts_default();
  rn_dataset_report *r = calloc(1, sizeof *r);
  if (!r) return rn_error(RN_ERR_OOM, "doctor: out of memory");
  rn_status st = check(r, kind, root, category, opts ? opts : &def, threads);
  if (st != RN_OK) { rn_dataset_report_free(r); return st; }
  *out = r;
  return RN_OK;
}

static void free_list(rn_dataset_problem *v, int64_t n) {
  for (int64_t i = 0; i < n; i++) free(v[i].path), free(v[i].message);
  free(v);
}

void rn_dataset_report_free(rn_dataset_report *r) {
  if (!r) return;
  for (int64_t i = 0; i < r->n_counts; i++) free(r->counts[i].split), free(r->counts[i].defect);
  free(r->counts);
  free_list(r->problems, r->n_problems);
  free_list(r->warnings, r->n_warnings);
  free(r);
}

/* ---- categories and layout detection */

static rn_status pack_names(char **v, int64_t n, char ***names, int64_t *count) {
  size_t bytes = (size_t)(n + 1) * sizeof(char *);
  for (int64_t i = 0; i < n; i++) bytes += strlen(v[i]) + 1;
  char **blk = malloc(bytes);
  if (!blk) return rn_error(RN_ERR_OOM, "dataset: out of memory");
  char *s = (char *)(blk + n + 1);
  for (int64_t i = 0; i < n; i++) {
    size_t k = strlen(v[i]) + 1;
    memcpy(s, v[i], k);
    blk[i] = s;
    s += k;
  }
  blk[n] = NULL;
  *names = blk;
  *count = n;
  return RN_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

rn_status rn_data_categories(rn_data_kind kind, const char *root, char ***names, int64_t *n) {
  if (!names || !n || !root) return rn_error(RN_ERR_ARG, "categories: NULL argument");
  *names = NULL;
  *n = 0;
  if (!ds_is_dir(root)) return rn_error(RN_ERR_IO, "%s: root directory %s does not exist", rn_data_kind_name(kind), root);
  char *csv = ds_join(root, "split_csv/1cls.csv");
  if (!csv) return rn_error(RN_ERR_OOM, "dataset: out of memory");
  rn_status st = RN_OK;
  if (kind == RN_DATA_VISA && ds_is_file(csv)) {
    ds_entries e = {0};
    ds_problems p = {0};
    st = ds_scan_visa(root, NULL, RN_SPLIT_ALL, &e, &p); /* objects are the first path component */
    char **v = st == RN_OK ? calloc((size_t)(e.n + 1), sizeof *v) : NULL;
    int64_t k = 0;
    for (int64_t i = 0; v && i < e.n; i++) {
      const char *rel = e.v[i].path + strlen(root) + (root[strlen(root) - 1] == '/' ? 0 : 1);
      const char *slash = strchr(rel, '/');
      if (!slash) continue;
      char *obj = strndup(rel, (size_t)(slash - rel));
      bool seen = false;
      for (int64_t j = 0; obj && j < k && !seen; j++) seen = strcmp(v[j], obj) == 0;
      if (obj && !seen) v[k++] = obj; else free(obj);
    }
    if (v) {
      qsort(v, (size_t)k, sizeof *v, cmp_str);
      st = pack_names(v, k, names, n);
      ds_names_free(v, k);
    } else if (st == RN_OK) {
      st = rn_error(RN_ERR_OOM, "dataset: out of memory");
    }
    ds_entries_free(&e);
    ds_problems_free(&p);
  } else {
    char **subs, **keep;
    int64_t ns, k = 0;
    st = ds_list(root, true, false, &subs, &ns);
    keep = st == RN_OK ? calloc((size_t)(ns + 1), sizeof *keep) : NULL;
    for (int64_t i = 0; keep && i < ns; i++) {
      char *tr = ds_join3(root, subs[i], "train"), *te = ds_join3(root, subs[i], "test");
      if (ds_is_dir(tr) || ds_is_dir(te)) keep[k++] = subs[i];
      free(tr);
      free(te);
    }
    if (keep) st = pack_names(keep, k, names, n);
    else if (st == RN_OK) st = rn_error(RN_ERR_OOM, "dataset: out of memory");
    free(keep);
    ds_names_free(subs, ns);
  }
  free(csv);
  return st;
}

rn_status rn_data_detect(const char *dir, rn_data_kind *out) {
  if (!dir || !out) return rn_error(RN_ERR_ARG, "detect: NULL argument");
  if (!ds_is_dir(dir)) return rn_error(RN_ERR_IO, "dataset: directory %s does not exist", dir);
  static const struct { const char *probe; rn_data_kind kind; } rules[] = {
    {"split_csv/1cls.csv", RN_DATA_VISA}, {"train/ok", RN_DATA_BTAD}, {"test/ko", RN_DATA_BTAD},
    {"train/good", RN_DATA_MVTEC},        {"test", RN_DATA_MVTEC},
  };
  for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) {
    char *p = ds_join(dir, rules[i].probe);
    bool hit = ds_is_dir(p) || ds_is_file(p);
    free(p);
    if (hit) { *out = rules[i].kind; return RN_OK; }
  }
  /* a dataset root: look at its first category */
  char **names;
  int64_t n;
  RN_TRY(rn_data_categories(RN_DATA_MVTEC, dir, &names, &n));
  rn_status st = rn_error(RN_ERR_FORMAT, "dataset: cannot tell the layout of %s (no train/, test/ or "
                                         "split_csv/1cls.csv); pass --dataset", dir);
  if (n > 0) {
    char *cat = ds_join(dir, names[0]);
    char *ok = ds_join(cat, "train/ok"), *ko = ds_join(cat, "test/ko");
    *out = ds_is_dir(ok) || ds_is_dir(ko) ? RN_DATA_BTAD : RN_DATA_MVTEC;
    st = RN_OK;
    free(ok), free(ko), free(cat);
  }
  free(names);
  return st;
}
