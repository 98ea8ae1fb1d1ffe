/* h5_set.c - load sets (what a model expects vs what a file holds) and one-call atomic saves.
 *
 * A model load should fail once with the whole picture - every missing, extra and mis-shaped name - rather
 * than at the first problem, so the user sees at a glance whether the file is for another architecture.
 */
#include "h5_internal.h"

/* A bounded comma-separated list that ends in "and N more" when it overflows. */
typedef struct { char text[300]; int shown, total; } name_list;

static void list_add(name_list *l, const char *item) {
  l->total++;
  size_t k = strlen(l->text), n = strlen(item);
  if (k + n + 2 >= sizeof l->text - 1) return;
  if (l->shown) { memcpy(l->text + k, ", ", 2); k += 2; }
  memcpy(l->text + k, item, n + 1);
  l->shown++;
}

static int list_print(char *buf, size_t n, const name_list *l, const char *what) {
  if (!l->total) return 0;
  if (l->shown == l->total) return snprintf(buf, n, "; %d %s: %s", l->total, what, l->text);
  return snprintf(buf, n, "; %d %s: %s and %d more", l->total, what, l->text, l->total - l->shown);
}

/* "" for the root, else "/a/b". */
static rn_status norm_prefix(rn_h5file *f, const char *prefix, char *buf) {
  if (!prefix || !*prefix || strcmp(prefix, "/") == 0) { buf[0] = 0; return RN_OK; }
  RN_TRY(rn_h5__norm_name(f, prefix, buf, RN_H5_NAME_MAX, true));
  if (strcmp(buf, "/") == 0) buf[0] = 0;
  return RN_OK;
}

static rn_status join(rn_h5file *f, const char *prefix, const char *name, char *out) {
  char rel[RN_H5_NAME_MAX];
  RN_TRY(rn_h5__norm_name(f, name, rel, sizeof rel, false));
  size_t a = strlen(prefix), b = strlen(rel);
  if (a + b + 1 > RN_H5_NAME_MAX) return rn_error(RN_ERR_ARG, "h5 %s: name '%s' too long", f->path, name);
  memcpy(out, prefix, a);
  memcpy(out + a, rel, b + 1);
  return RN_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

rn_status rn_h5_check_set(rn_h5file *f, const char *prefix, int n, const rn_h5_expect *want, bool allow_extra) {
  RN_TRY(rn_h5__check_open(f, "check set", false));
  if (n < 0 || (n > 0 && !want)) return rn_error(RN_ERR_ARG, "h5 %s: check set: bad expectation list", f->path);
  char pre[RN_H5_NAME_MAX];
  RN_TRY(norm_prefix(f, prefix, pre));
  char **names = NULL;
  int count = 0;
  RN_TRY(rn_h5_list(f, &names, &count));
  /* datasets under the prefix, found by binary search on the sorted listing */
  size_t plen = strlen(pre);
  bool *used = calloc((size_t)count + 1, 1);
  if (!used) { rn_h5_names_free(names, count); return rn_error(RN_ERR_OOM, "h5 %s: out of memory", f->path); }
  name_list missing = {{0}, 0, 0}, extra = {{0}, 0, 0}, bad = {{0}, 0, 0};
  rn_status st = RN_OK;
  for (int i = 0; i < n && st == RN_OK; i++) {
    char full[RN_H5_NAME_MAX];
    st = join(f, pre, want[i].name, full);
    if (st != RN_OK) break;
    if (want[i].ndim < 0 || want[i].ndim > RN_MAX_DIMS) {
      st = rn_error(RN_ERR_ARG, "h5 %s: check set: '%s' expects rank %d", f->path, full, want[i].ndim);
      break;
    }
    const char *key = full;
    char **hit = count ? bsearch(&key, names, (size_t)count, sizeof *names, cmp_str) : NULL;
    if (!hit) { list_add(&missing, full + plen + 1); continue; }
    size_t at = (size_t)(hit - names);
    if (used[at]) { st = rn_error(RN_ERR_ARG, "h5 %s: check set: '%s' is expected twice", f->path, full); break; }
    used[at] = true;
    rn_dtype dt;
    int nd;
    int64_t sh[RN_MAX_DIMS];
    st = rn_h5_info(f, full, &dt, &nd, sh);
    if (st != RN_OK) break;
    bool fits = nd == want[i].ndim && dt == want[i].dtype;
    for (int d = 0; fits && d < nd; d++) fits = want[i].shape[d] < 0 || want[i].shape[d] == sh[d];
    if (!fits) {
      char a[80], b[80], item[240];
      snprintf(item, sizeof item, "%s (file %s, model %s)", full + plen + 1, rn_h5__shape_str(a, sizeof a, dt, nd, sh),
               rn_h5__shape_str(b, sizeof b, want[i].dtype, want[i].ndim, want[i].shape));
      list_add(&bad, item);
    }
  }
  if (st == RN_OK && !allow_extra)
    for (int i = 0; i < count; i++)
      if (!used[i] && strncmp(names[i], pre, plen) == 0 && names[i][plen] == '/') list_add(&extra, names[i] + plen + 1);
  free(used);
  rn_h5_names_free(names, count);
  if (st != RN_OK) return st;
  if (!missing.total && !extra.total && !bad.total) return RN_OK;
  char msg[1000];
  int k = snprintf(msg, sizeof msg, "h5 %s: tensors under '%s' do not match the model", f->path, plen ? pre : "/");
  k += list_print(msg + k, sizeof msg - (size_t)k, &missing, "missing");
  if (k < (int)sizeof msg) k += list_print(msg + k, sizeof msg - (size_t)k, &extra, "extra");
  if (k < (int)sizeof msg) list_print(msg + k, sizeof msg - (size_t)k, &bad, "mis-shaped");
  return rn_error(missing.total || extra.total ? RN_ERR_FORMAT : RN_ERR_SHAPE, "%s", msg);
}

rn_status rn_h5_load_set(rn_h5file *f, const char *prefix, int n, const rn_h5_expect *want, bool allow_extra,
                         rn_tensor **out) {
  if (n > 0 && !out) return rn_error(RN_ERR_ARG, "h5 load set: no output array");
  for (int i = 0; i < n; i++) out[i] = NULL;
  RN_TRY(rn_h5_check_set(f, prefix, n, want, allow_extra));
  char pre[RN_H5_NAME_MAX];
  RN_TRY(norm_prefix(f, prefix, pre));
  rn_status st = RN_OK;
  for (int i = 0; i < n && st == RN_OK; i++) {
    char full[RN_H5_NAME_MAX];
    st = join(f, pre, want[i].name, full);
    if (st == RN_OK) st = rn_h5_read_tensor(&out[i], f, full, want[i].ndim, want[i].shape);
  }
  if (st != RN_OK)
    for (int i = 0; i < n; i++) { rn_tensor_release(out[i]); out[i] = NULL; }
  return st;
}

rn_status rn_h5_save(const char *path, const char *prefix, int n, const char *const *names,
                     const rn_tensor *const *tensors) {
  if (n < 0 || (n > 0 && (!names || !tensors))) return rn_error(RN_ERR_ARG, "h5 save %s: bad tensor list", path ? path : "");
  rn_h5file *f = NULL;
  RN_TRY(rn_h5_create(&f, path));
  char pre[RN_H5_NAME_MAX];
  rn_status st = norm_prefix(f, prefix, pre);
  for (int i = 0; i < n && st == RN_OK; i++) {
    char full[RN_H5_NAME_MAX];
    st = join(f, pre, names[i], full);
    if (st == RN_OK) st = rn_h5_write_tensor(f, full, tensors[i], NULL);
  }
  if (st == RN_OK) st = rn_h5_commit(f);
  rn_h5_close(f);  /* discards the temporary file when anything failed */
  return st;
}
