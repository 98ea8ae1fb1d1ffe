/* ds_util.c - lists, paths, sorted directory listings and the image/mask decoding used by every reader. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ds_internal.h"
#include "realnet/image.h"

char *ds_strdup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static bool grow(void **v, int64_t *cap, int64_t need, size_t elem) {
  if (need <= *cap) return true;
  int64_t c = *cap ? *cap * 2 : 64;
  while (c < need) c *= 2;
  void *p = realloc(*v, (size_t)c * elem);
  if (!p) return false;
  *v = p;
  *cap = c;
  return true;
}

rn_status ds_add_entry(ds_entries *l, const char *path, const char *mask, const char *defect, const char *split,
                       int label) {
  if (!grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v)) return rn_error(RN_ERR_OOM, "dataset: out of memory");
  ds_entry *e = &l->v[l->n];
  e->path = ds_strdup(path);
  e->mask = ds_strdup(mask);
  e->defect = ds_strdup(defect);
  e->split = split;
  e->label = label;
  if (!e->path || !e->defect || (mask && !e->mask)) {
    free(e->path), free(e->mask), free(e->defect);
    return rn_error(RN_ERR_OOM, "dataset: out of memory");
  }
  l->n++;
  return RN_OK;
}

void ds_entries_free(ds_entries *l) {
  for (int64_t i = 0; i < l->n; i++) free(l->v[i].path), free(l->v[i].mask), free(l->v[i].defect);
  free(l->v);
  l->v = NULL;
  l->n = l->cap = 0;
}

rn_status ds_add_problem(ds_problems *l, rn_problem_kind k, const char *path, const char *fmt, ...) {
  if (!grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v)) return rn_error(RN_ERR_OOM, "dataset: out of memory");
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rn_dataset_problem *p = &l->v[l->n];
  p->kind = k;
  p->path = ds_strdup(path);
  p->message = ds_strdup(msg);
  if (!p->path || !p->message) {
    free(p->path), free(p->message);
    return rn_error(RN_ERR_OOM, "dataset: out of memory");
  }
  l->n++;
  return RN_OK;
}

void ds_problems_free(ds_problems *l) {
  for (int64_t i = 0; i < l->n; i++) free(l->v[i].path), free(l->v[i].message);
  free(l->v);
  l->v = NULL;
  l->n = l->cap = 0;
}

char *ds_join(const char *a, const char *b) {
  if (!a || !*a || b[0] == '/') return ds_strdup(b);
  size_t na = strlen(a), nb = strlen(b);
  while (na > 1 && a[na - 1] == '/') na--;
  char *s = malloc(na + nb + 2);
  if (!s) return NULL;
  memcpy(s, a, na);
  s[na] = '/';
  memcpy(s + na + 1, b, nb + 1);
  return s;
}

char *ds_join3(const char *a, const char *b, const char *c) {
  char *ab = ds_join(a, b);
  if (!ab) return NULL;
  char *abc = ds_join(ab, c);
  free(ab);
  return abc;
}

bool ds_is_dir(const char *p) {
  struct stat st;
  return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

bool ds_is_file(const char *p) {
  struct stat st;
  return p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

bool ds_is_image_name(const char *name) {
  static const char *const exts[] = {".png", ".jpg", ".jpeg", ".bmp"};
  size_t n = strlen(name);
  for (size_t i = 0; i < sizeof exts / sizeof *exts; i++) {
    size_t k = strlen(exts[i]);
    if (n > k && strcasecmp(name + n - k, exts[i]) == 0) return true;
  }
  return false;
}

char *ds_stem(const char *name) {
  const char *slash = strrchr(name, '/');
  if (slash) name = slash + 1;
  const char *dot = strrchr(name, '.');
  size_t n = dot && dot != name ? (size_t)(dot - name) : strlen(name);
  char *s = malloc(n + 1);
  if (!s) return NULL;
  memcpy(s, name, n);
  s[n] = '\0';
  return s;
}

char *ds_mask_stem(const char *name) {
  char *s = ds_stem(name);
  size_t n = s ? strlen(s) : 0;
  if (n > 5 && strcmp(s + n - 5, "_mask") == 0) s[n - 5] = '\0';
  return s;
}

char *ds_find_mask(const char *dir, const char *stem) {
  static const char *const pats[] = {"%s_mask.png", "%s.png", "%s_mask.bmp", "%s.bmp",
                                     "%s_mask.PNG", "%s.PNG", "%s_mask.BMP", "%s.BMP"};
  char name[1024];
  for (size_t i = 0; i < sizeof pats / sizeof *pats; i++) {
    snprintf(name, sizeof name, pats[i], stem);
    char *p = ds_join(dir, name);
    if (p && ds_is_file(p)) return p;
    free(p);
  }
  return NULL;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void ds_names_free(char **names, int64_t n) {
  for (int64_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

rn_status ds_list(const char *dir, bool dirs, bool images_only, char ***names, int64_t *n) {
  *names = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return rn_error(RN_ERR_IO, "dataset: cannot list directory %s: %s", dir, strerror(errno));
  char **v = NULL;
  int64_t cnt = 0, cap = 0;
  struct dirent *e;
  rn_status st = RN_OK;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char *full = ds_join(dir, e->d_name);
    bool keep = full && (dirs ? ds_is_dir(full) : ds_is_file(full) && (!images_only || ds_is_image_name(e->d_name)));
    free(full);
    if (!keep) continue;
    if (!grow((void **)&v, &cap, cnt + 1, sizeof *v) || !(v[cnt] = ds_strdup(e->d_name))) {
      st = rn_error(RN_ERR_OOM, "dataset: out of memory listing %s", dir);
      break;
    }
    cnt++;
  }
  closedir(d);
  if (st != RN_OK) { ds_names_free(v, cnt); return st; }
  if (cnt) qsort(v, (size_t)cnt, sizeof *v, cmp_name);
  *names = v;
  *n = cnt;
  return RN_OK;
}

/* int32 16-bit samples -> uint8 with rounding (as OpenCV's IMREAD_COLOR depth conversion). */
static rn_status to_u8(rn_tensor **img) {
  if ((*img)->dtype == RN_U8) return RN_OK;
  rn_tensor *u = NULL;
  RN_TRY(rn_tensor_empty(&u, (*img)->ndim, (*img)->shape, RN_U8, rn_cpu()));
  const int32_t *s = rn_tensor_data(*img);
  uint8_t *d = rn_tensor_data(u);
  for (int64_t i = 0, n = rn_tensor_numel(u); i < n; i++) {
    int32_t v = (s[i] + 128) >> 8;
    d[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
  }
  rn_tensor_release(*img);
  *img = u;
  return RN_OK;
}

static rn_status read_channels(rn_tensor **out, const char *path, int channels) {
  *out = NULL;
  rn_image_opts o = rn_image_opts_default();
  o.channels = channels;
  RN_TRY(rn_image_read(out, path, &o));
  rn_status st = to_u8(out);
  if (st != RN_OK) { rn_tensor_release(*out); *out = NULL; }
  return st;
}

rn_status ds_read_color(rn_tensor **out, const char *path) {
  RN_TRY(read_channels(out, path, 0));
  int64_t c = (*out)->ndim == 3 ? (*out)->shape[2] : 1;
  if (c == 1 || c == 3) return RN_OK;
  rn_tensor *t = NULL; /* gray+alpha -> gray, RGBA -> RGB: alpha dropped as OpenCV's IMREAD_COLOR does */
  rn_status st = c == 2 ? rn_image_to_gray(&t, *out) : rn_image_to_rgb(&t, *out);
  rn_tensor_release(*out);
  *out = t;
  return st;
}
rn_status ds_read_gray(rn_tensor **out, const char *path) { return read_channels(out, path, 1); }
