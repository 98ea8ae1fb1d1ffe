/* demo_make.c - rendering single demo items and writing the whole MVTec-layout category. */
#include <dirent.h>
#include <omp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "demo_internal.h"
#include "realnet/image.h"

static const char *const KIND_NAMES[RN_DEMO_NUM_KINDS] = {"good", "scratch", "spot", "crack", "missing_material",
                                                          "contamination"};
static const char *const TEXTURE_NAMES[RN_DEMO_NUM_TEXTURES] = {"metal", "fabric", "tile"};

const char *rn_demo_kind_name(rn_demo_kind k) {
  return (int)k >= 0 && k < RN_DEMO_NUM_KINDS ? KIND_NAMES[k] : NULL;
}

const char *rn_demo_texture_name(rn_demo_texture t) {
  return (int)t >= 0 && t < RN_DEMO_NUM_TEXTURES ? TEXTURE_NAMES[t] : NULL;
}

rn_status rn_demo_texture_parse(const char *name, rn_demo_texture *out) {
  for (int i = 0; name && i < RN_DEMO_NUM_TEXTURES; i++)
    if (strcmp(name, TEXTURE_NAMES[i]) == 0) { *out = (rn_demo_texture)i; return RN_OK; }
  return rn_error(RN_ERR_ARG, "make-demo-data: unknown texture '%s' (metal, fabric or tile)", name ? name : "(null)");
}

rn_demo_opts rn_demo_opts_default(void) {
  rn_demo_opts o = {0, 256, 80, 20, 8, RN_DEMO_METAL, NULL, 0, 0};
  return o;
}

int64_t rn_demo_margin(int64_t size) { return size / 16 > 3 ? size / 16 : 3; }

static rn_status check_opts(const rn_demo_opts *o) {
  if (!o) return rn_error(RN_ERR_ARG, "make-demo-data: opts is NULL");
  if (o->size < RN_DEMO_MIN_SIZE || o->size > RN_DEMO_MAX_SIZE)
    return rn_error(RN_ERR_ARG, "make-demo-data: size %lld is out of range (%d..%d pixels)", (long long)o->size,
                    RN_DEMO_MIN_SIZE, RN_DEMO_MAX_SIZE);
  const int64_t c[3] = {o->train, o->test_good, o->test_defect};
  const char *names[3] = {"train", "test_good", "test_defect"};
  for (int i = 0; i < 3; i++)
    if (c[i] < 0 || c[i] > 1000000)
      return rn_error(RN_ERR_ARG, "make-demo-data: %s count %lld must be in 0..1000000", names[i], (long long)c[i]);
  if (o->train + o->test_good + o->test_defect == 0) return rn_error(RN_ERR_ARG, "make-demo-data: every count is 0");
  if ((int)o->texture < 0 || o->texture >= RN_DEMO_NUM_TEXTURES)
    return rn_error(RN_ERR_ARG, "make-demo-data: texture %d is unknown", (int)o->texture);
  const char *cat = o->category ? o->category : "demo_surface";
  if (!*cat || strchr(cat, '/') || strcmp(cat, ".") == 0 || strcmp(cat, "..") == 0)
    return rn_error(RN_ERR_ARG, "make-demo-data: category '%s' must be a plain directory name", cat);
  return RN_OK;
}

static inline uint8_t q8(float v) { return (uint8_t)(dn_clampf(v, 0.0f, 1.0f) * 255.0f + 0.5f); }

/* Shared by render and make: buffers of one item and the tensors it fills. */
typedef struct { float *clean, *dirty, *cov; } work;

static rn_status work_init(work *w, int64_t S) {
  size_t n = (size_t)(S * S);
  w->clean = malloc(sizeof(float) * n * 3);
  w->dirty = malloc(sizeof(float) * n * 3);
  w->cov = malloc(sizeof(float) * n);
  if (!w->clean || !w->dirty || !w->cov) return rn_error(RN_ERR_OOM, "make-demo-data: out of memory");
  return RN_OK;
}

static void work_free(work *w) { free(w->clean); free(w->dirty); free(w->cov); }

/* The texture joins the image's streams: one seed gives unrelated defects on metal, fabric and tile. */
static uint64_t stream_of(const dn_style *s, int test, rn_demo_kind kind, int64_t index, int purpose) {
  return dn_image_stream(test, kind, index, purpose) | ((uint64_t)s->texture << 56);
}

/* Renders an item into uint8 buffers img/cln [S*S*3] and msk [S*S]; the mask is the byte difference. */
static rn_status render_into(const dn_style *s, work *w, int test, rn_demo_kind kind, int64_t index, uint8_t *img,
                             uint8_t *cln, uint8_t *msk) {
  int64_t S = s->size, n = S * S;
  rn_rng g;
  dn_view v;
  rn_rng_init(&g, s->seed, stream_of(s, test, kind, index, DN_PURPOSE_VIEW));
  dn_view_draw(&v, s, &g);
  dn_render_surface(s, &v, w->clean);
  rn_rng_init(&g, s->seed, stream_of(s, test, kind, index, DN_PURPOSE_BENIGN));
  dn_render_benign(s, &v, &g, w->clean);
  memcpy(w->dirty, w->clean, sizeof(float) * (size_t)n * 3);
  if (kind != RN_DEMO_GOOD) {
    memset(w->cov, 0, sizeof(float) * (size_t)n);
    rn_rng_init(&g, s->seed, stream_of(s, test, kind, index, DN_PURPOSE_DEFECT));
    RN_TRY(dn_apply_defect(s, &v, kind, &g, w->dirty, w->cov));
  }
  /* sensor noise, identical on both renders: luminance plus a little chroma */
  uint64_t stream = stream_of(s, test, kind, index, DN_PURPOSE_PIXEL);
  int64_t changed = 0;
  for (int64_t i = 0; i < n; i++) {
    uint32_t r[4];
    rn_philox(s->seed, (uint64_t)i, stream, r);
    float l = 0.011f * rn_normal_from(r[0], r[1]);
    float cr = 0.008f * (rn_u01(r[2]) - 0.5f), cb = 0.008f * (rn_u01(r[3]) - 0.5f);
    float d[3] = {l + cr, l, l + cb};
    int diff = 0;
    for (int c = 0; c < 3; c++) {
      uint8_t a = q8(w->dirty[i * 3 + c] + d[c]), b = q8(w->clean[i * 3 + c] + d[c]);
      img[i * 3 + c] = a;
      if (cln) cln[i * 3 + c] = b;
      diff |= a != b;
    }
    if (msk) msk[i] = diff ? 255 : 0;
    changed += diff;
  }
  if (kind != RN_DEMO_GOOD && changed == 0) /* by construction every defect changes pixels; guard anyway */
    return rn_error(RN_ERR_ARG, "make-demo-data: %s item %lld rendered without a visible change",
                    KIND_NAMES[kind], (long long)index);
  return RN_OK;
}

static rn_status check_item(int test, rn_demo_kind kind, int64_t index) {
  if ((int)kind < 0 || kind >= RN_DEMO_NUM_KINDS) return rn_error(RN_ERR_ARG, "demo render: kind %d is unknown", (int)kind);
  if (!test && kind != RN_DEMO_GOOD) return rn_error(RN_ERR_ARG, "demo render: the train split holds good images only");
  if (index < 0) return rn_error(RN_ERR_ARG, "demo render: index %lld is negative", (long long)index);
  return RN_OK;
}

rn_status rn_demo_render(rn_tensor **image, rn_tensor **clean, rn_tensor **mask, const rn_demo_opts *opts,
                         int test, rn_demo_kind kind, int64_t index) {
  if (!image) return rn_error(RN_ERR_ARG, "demo render: image output is NULL");
  *image = NULL;
  if (clean) *clean = NULL;
  if (mask) *mask = NULL;
  RN_TRY(check_opts(opts));
  RN_TRY(check_item(test, kind, index));
  int64_t S = opts->size, shp[3] = {S, S, 3};
  dn_style s;
  work w = {0};
  rn_tensor *ti = NULL, *tc = NULL, *tm = NULL;
  rn_status st = dn_style_init(&s, opts->seed, opts->texture, S);
  if (st != RN_OK) return st;
  if ((st = work_init(&w, S)) == RN_OK && (st = rn_tensor_empty(&ti, 3, shp, RN_U8, rn_cpu())) == RN_OK &&
      (!clean || (st = rn_tensor_empty(&tc, 3, shp, RN_U8, rn_cpu())) == RN_OK) &&
      (!mask || (st = rn_tensor_empty(&tm, 2, shp, RN_U8, rn_cpu())) == RN_OK))
    st = render_into(&s, &w, test, kind, index, rn_tensor_data(ti), tc ? rn_tensor_data(tc) : NULL,
                     tm ? rn_tensor_data(tm) : NULL);
  work_free(&w);
  dn_style_free(&s);
  if (st != RN_OK) {
    rn_tensor_release(ti); rn_tensor_release(tc); rn_tensor_release(tm);
    return st;
  }
  *image = ti;
  if (clean) *clean = tc;
  if (mask) *mask = tm;
  return RN_OK;
}

/* ---- files */

/* mkdir -p: every missing component is created; an existing non-directory is an error. */
static rn_status mkdirs(const char *path) {
  char buf[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf) return rn_error(RN_ERR_ARG, "make-demo-data: bad output path '%s'", path);
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    char keep = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
      return rn_error(RN_ERR_IO, "make-demo-data: cannot create directory %s: %s", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
      return rn_error(RN_ERR_IO, "make-demo-data: cannot create directory %s: %s", buf,
                      errno == 0 || errno == EEXIST ? "a file of that name exists" : strerror(errno));
    buf[i] = keep;
  }
  return RN_OK;
}

static int dir_is_empty(const char *path) {
  DIR *d = opendir(path);
  if (!d) return 1;
  struct dirent *e;
  int empty = 1;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) { empty = 0; break; }
  closedir(d);
  return empty;
}

/* Removes our own file names (digits, optional _mask, .png) from dir: a smaller re-run leaves no stale items. */
static void remove_stale(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char path[4200];
  while ((e = readdir(d)) != NULL) {
    const char *p = e->d_name;
    size_t digits = strspn(p, "0123456789");
    if (digits == 0 || (strcmp(p + digits, ".png") != 0 && strcmp(p + digits, "_mask.png") != 0)) continue;
    snprintf(path, sizeof path, "%s/%s", dir, p);
    remove(path);
  }
  closedir(d);
}

typedef struct { int test; rn_demo_kind kind; int64_t index; } job;

static int digits_for(int64_t n) {
  int d = 3;
  for (int64_t lim = 1000; n > lim; lim *= 10) d++;
  return d;
}

static rn_status write_item(const char *cat, const dn_style *s, work *w, const job *j, int width, uint8_t *img,
                            uint8_t *msk) {
  char path[4200];
  int64_t S = s->size, shp[3] = {S, S, 3};
  RN_TRY(render_into(s, w, j->test, j->kind, j->index, img, NULL, msk));
  const char *split = j->test ? "test" : "train";
  rn_tensor *t = NULL;
  snprintf(path, sizeof path, "%s/%s/%s/%0*lld.png", cat, split, KIND_NAMES[j->kind], width, (long long)j->index);
  RN_TRY(rn_tensor_from_data(&t, 3, shp, RN_U8, img));
  rn_status st = rn_image_write_png(path, t);
  rn_tensor_release(t);
  if (st != RN_OK || j->kind == RN_DEMO_GOOD) return st;
  snprintf(path, sizeof path, "%s/ground_truth/%s/%0*lld_mask.png", cat, KIND_NAMES[j->kind], width,
           (long long)j->index);
  RN_TRY(rn_tensor_from_data(&t, 2, shp, RN_U8, msk));
  st = rn_image_write_png(path, t);
  rn_tensor_release(t);
  return st;
}

/* The directories of the layout, created (and cleaned of stale items when overwriting). */
static rn_status make_dirs(const char *cat, const rn_demo_opts *o) {
  char path[4200];
  for (int k = 0; k < RN_DEMO_NUM_KINDS; k++) {
    for (int part = 0; part < 3; part++) {
      int64_t count = part == 0 ? (k == 0 ? o->train : 0) : (k == 0 ? (part == 1 ? o->test_good : 0)
                                                                     : o->test_defect);
      if (count == 0) continue;
      if (part == 0) snprintf(path, sizeof path, "%s/train/good", cat);
      else if (part == 1) snprintf(path, sizeof path, "%s/test/%s", cat, KIND_NAMES[k]);
      else snprintf(path, sizeof path, "%s/ground_truth/%s", cat, KIND_NAMES[k]);
      RN_TRY(mkdirs(path));
      if (o->overwrite) remove_stale(path);
    }
  }
  return RN_OK;
}

rn_status rn_demo_make(const char *out_dir, const rn_demo_opts *opts, rn_demo_counts *counts, char **category_dir) {
  if (category_dir) *category_dir = NULL;
  if (!out_dir || !*out_dir) return rn_error(RN_ERR_ARG, "make-demo-data: no output directory given");
  RN_TRY(check_opts(opts));
  const rn_demo_opts *o = opts;
  size_t n = strlen(out_dir);
  while (n > 1 && out_dir[n - 1] == '/') n--;
  char *cat = malloc(n + strlen(o->category ? o->category : "demo_surface") + 2);
  if (!cat) return rn_error(RN_ERR_OOM, "make-demo-data: out of memory");
  sprintf(cat, "%.*s/%s", (int)n, out_dir, o->category ? o->category : "demo_surface");
  rn_status st = RN_OK;
  if (!o->overwrite && !dir_is_empty(cat))
    st = rn_error(RN_ERR_IO, "make-demo-data: %s exists and is not empty (remove it, or overwrite it with --force)", cat);
  if (st == RN_OK) st = make_dirs(cat, o);
  int64_t nd = RN_DEMO_NUM_KINDS - 1, total = o->train + o->test_good + nd * o->test_defect;
  job *jobs = st == RN_OK ? malloc(sizeof(job) * (size_t)total) : NULL;
  if (st == RN_OK && !jobs) st = rn_error(RN_ERR_OOM, "make-demo-data: out of memory");
  dn_style s = {0};
  if (st == RN_OK) st = dn_style_init(&s, o->seed, o->texture, o->size);
  if (st == RN_OK) {
    int64_t j = 0;
    for (int64_t i = 0; i < o->train; i++) jobs[j++] = (job){0, RN_DEMO_GOOD, i};
    for (int64_t i = 0; i < o->test_good; i++) jobs[j++] = (job){1, RN_DEMO_GOOD, i};
    for (int k = 1; k < RN_DEMO_NUM_KINDS; k++)
      for (int64_t i = 0; i < o->test_defect; i++) jobs[j++] = (job){1, (rn_demo_kind)k, i};
    int width = digits_for(o->train > o->test_good ? (o->train > o->test_defect ? o->train : o->test_defect)
                                                    : (o->test_good > o->test_defect ? o->test_good : o->test_defect));
    int64_t first_bad = total;
    rn_status bad_st = RN_OK;
    char bad_msg[512] = "";
    int threads = o->threads;
#pragma omp parallel num_threads(threads > 0 ? threads : omp_get_max_threads())
    {
      work w = {0};
      uint8_t *img = malloc((size_t)(o->size * o->size * 3)), *msk = malloc((size_t)(o->size * o->size));
      rn_status ws = (img && msk) ? work_init(&w, o->size) : rn_error(RN_ERR_OOM, "make-demo-data: out of memory");
#pragma omp for schedule(dynamic)
      for (int64_t i = 0; i < total; i++) {
        rn_status r = ws != RN_OK ? ws : write_item(cat, &s, &w, &jobs[i], width, img, msk);
        if (r != RN_OK) {
#pragma omp critical(rn_demo_err)
          if (i < first_bad) { /* report the first failing item in job order, whatever the threads did */
            first_bad = i;
            bad_st = r;
            snprintf(bad_msg, sizeof bad_msg, "%s", rn_last_error());
          }
        }
      }
      work_free(&w);
      free(img);
      free(msk);
    }
    if (bad_st != RN_OK) st = rn_error(bad_st, "%s", bad_msg);
  }
  dn_style_free(&s);
  free(jobs);
  if (st != RN_OK) { free(cat); return st; }
  if (counts) {
    counts->train = o->train;
    counts->test_good = o->test_good;
    counts->test_defect = nd * o->test_defect;
    counts->masks = nd * o->test_defect;
    counts->defect_kinds = nd;
  }
  if (category_dir) *category_dir = cat;
  else free(cat);
  return RN_OK;
}
