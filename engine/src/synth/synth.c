/* synth.c - anomaly sources (spec 3.1) producing (A, M) from a normal image I per eq. (3):
 * DTD textures with augmenters, SIA/SDAS images of the same class, CutPaste and NSA patches. */
#include <stdio.h>

#include "realnet/image.h"
#include "synth_internal.h"

struct rn_synth {
  rn_synth_opts o;
  int nfiles;
  char **files;
};

static const char *const source_names[] = {"dtd", "sia", "cutpaste", "nsa"};

const char *rn_synth_source_name(rn_synth_source s) {
  return s >= RN_SYNTH_DTD && s <= RN_SYNTH_NSA ? source_names[s] : "unknown";
}

rn_status rn_synth_source_parse(const char *name, rn_synth_source *out) {
  for (int k = 0; k < 4; k++)
    if (name && strcmp(name, source_names[k]) == 0) { *out = (rn_synth_source)k; return RN_OK; }
  if (name && strcmp(name, "sdas") == 0) { *out = RN_SYNTH_SIA; return RN_OK; }
  return rn_error(RN_ERR_ARG, "synth: unknown source '%s' (dtd, sia, sdas, cutpaste or nsa)", name ? name : "(null)");
}

rn_synth_opts rn_synth_opts_default(rn_synth_source source) {
  rn_synth_opts o;
  memset(&o, 0, sizeof o);
  o.source = source;
  o.opacity[0] = source == RN_SYNTH_DTD ? 0.2 : source == RN_SYNTH_SIA ? 0.5 : 1.0;
  o.opacity[1] = 1.0;
  o.perlin = rn_perlin_opts_default();
  o.fg.method = RN_FG_NONE;
  o.fg.channel = -1;
  o.retries = 16;
  o.augmenters = 3;
  o.area[0] = 0.02;
  o.area[1] = 0.15;
  o.aspect = 0.3;
  o.poisson_iters = 2000;
  o.poisson_tol = 1e-5;
  return o;
}

static rn_status check_opts(const rn_synth_opts *o, int nfiles) {
  if (o->source < RN_SYNTH_DTD || o->source > RN_SYNTH_NSA) return rn_error(RN_ERR_ARG, "synth: unknown source %d", (int)o->source);
  if (!(o->opacity[0] >= 0 && o->opacity[0] <= o->opacity[1] && o->opacity[1] <= 1))
    return rn_error(RN_ERR_ARG, "synth: opacity [%g, %g] must satisfy 0 <= lo <= hi <= 1", o->opacity[0], o->opacity[1]);
  RN_TRY(sy_check_perlin(&o->perlin));
  if (o->fg.method < RN_FG_NONE || o->fg.method > RN_FG_TRIANGLE || o->fg.channel < -1 || o->fg.channel > 2 ||
      o->fg.close < 0 || o->fg.close > 255 || o->fg.open < 0 || o->fg.open > 255)
    return rn_error(RN_ERR_ARG, "synth: bad foreground rule (method %d, channel %d, close %d, open %d)", (int)o->fg.method,
                    o->fg.channel, o->fg.close, o->fg.open);
  if (o->retries < 0 || o->retries > 100000) return rn_error(RN_ERR_ARG, "synth: retries %d must be in 0..100000", o->retries);
  if (o->augmenters < 0 || o->augmenters > RN_SYNTH_AUGMENTERS)
    return rn_error(RN_ERR_ARG, "synth: augmenters %d must be in 0..%d", o->augmenters, RN_SYNTH_AUGMENTERS);
  if (!(o->area[0] > 0 && o->area[0] <= o->area[1] && o->area[1] <= 1))
    return rn_error(RN_ERR_ARG, "synth: patch area [%g, %g] must satisfy 0 < lo <= hi <= 1", o->area[0], o->area[1]);
  if (!(o->aspect > 0 && o->aspect <= 1)) return rn_error(RN_ERR_ARG, "synth: aspect %g must be in (0, 1]", o->aspect);
  if (o->poisson_iters < 0 || !(o->poisson_tol >= 0) || !isfinite(o->poisson_tol))
    return rn_error(RN_ERR_ARG, "synth: poisson_iters %d / poisson_tol %g must be >= 0", o->poisson_iters, o->poisson_tol);
  int needs = o->source == RN_SYNTH_DTD || o->source == RN_SYNTH_SIA;
  if (needs && nfiles <= 0)
    return rn_error(RN_ERR_ARG, "synth: source '%s' needs at least one image file", rn_synth_source_name(o->source));
  return RN_OK;
}

rn_status rn_synth_new(rn_synth **out, const rn_synth_opts *opts, int nfiles, const char *const *files) {
  if (!out) return rn_error(RN_ERR_ARG, "synth: out is NULL");
  *out = NULL;
  if (!opts) return rn_error(RN_ERR_ARG, "synth: opts is NULL");
  if (nfiles < 0 || (nfiles > 0 && !files)) return rn_error(RN_ERR_ARG, "synth: bad file list (%d files)", nfiles);
  RN_TRY(check_opts(opts, nfiles));
  rn_synth *s = calloc(1, sizeof *s);
  if (!s) return rn_error(RN_ERR_OOM, "synth: out of memory");
  s->o = *opts;
  if (nfiles > 0) {
    s->files = calloc((size_t)nfiles, sizeof *s->files);
    if (!s->files) { free(s); return rn_error(RN_ERR_OOM, "synth: out of memory"); }
    for (int k = 0; k < nfiles; k++) {
      if (!files[k] || !(s->files[k] = strdup(files[k]))) {
        s->nfiles = k;
        rn_synth_release(s);
        return rn_error(files[k] ? RN_ERR_OOM : RN_ERR_ARG, "synth: file %d is %s", k, files[k] ? "too large" : "NULL");
      }
    }
    s->nfiles = nfiles;
  }
  *out = s;
  return RN_OK;
}

void rn_synth_release(rn_synth *s) {
  if (!s) return;
  for (int k = 0; k < s->nfiles; k++) free(s->files[k]);
  free(s->files);
  free(s);
}

const rn_synth_opts *rn_synth_get_opts(const rn_synth *s) { return s ? &s->o : NULL; }

/* ------------------------------------------------------------------ one sample */

static int64_t count(const uint8_t *m, int64_t n) {
  int64_t c = 0;
  for (int64_t k = 0; k < n; k++) c += m[k] != 0;
  return c;
}

static void blend(uint8_t *a, const uint8_t *img, const uint8_t *src, const uint8_t *m, int64_t n, int64_t c, double d) {
  for (int64_t p = 0; p < n; p++)
    for (int64_t k = 0; k < c; k++) {
      int64_t i = p * c + k;
      a[i] = m[p] ? sy_clip_u8(d * src[i] + (1 - d) * img[i]) : img[i]; /* eq. (3), truncated like astype(uint8) */
    }
}

/* Reads file f of the synthesiser as RGB and resizes it to h x w (cv2 INTER_LINEAR, as RealNet). */
static rn_status read_source(const rn_synth *s, int f, int64_t h, int64_t w, uint8_t *dst) {
  rn_image_opts io = rn_image_opts_default();
  io.channels = 3;
  rn_tensor *t = NULL;
  rn_status st = rn_image_read(&t, s->files[f], &io);
  if (st != RN_OK) return st;
  if (t->dtype != RN_U8) { /* 16-bit PNGs: keep the top byte */
    int64_t n = rn_tensor_numel(t);
    uint8_t *tmp = malloc((size_t)n);
    if (!tmp) { rn_tensor_release(t); return rn_error(RN_ERR_OOM, "synth: out of memory reading %s", s->files[f]); }
    const int32_t *q = rn_tensor_data(t);
    for (int64_t k = 0; k < n; k++) tmp[k] = (uint8_t)(q[k] >> 8);
    sy_resize(dst, h, w, tmp, t->shape[0], t->shape[1], 3);
    free(tmp);
  } else {
    sy_resize(dst, h, w, rn_tensor_data(t), t->shape[0], t->shape[1], 3);
  }
  rn_tensor_release(t);
  return RN_OK;
}

/* A patch size from the area and aspect ranges, clamped to the image. */
static void patch_size(const rn_synth_opts *o, rn_rng *g, int64_t h, int64_t w, int64_t *ph, int64_t *pw) {
  double area = sy_uniform(g, o->area[0], o->area[1]) * (double)h * (double)w;
  double r = exp(sy_uniform(g, log(o->aspect), -log(o->aspect)));
  *ph = (int64_t)llround(sqrt(area * r));
  *pw = (int64_t)llround(sqrt(area / r));
  if (*ph < 1) *ph = 1;
  if (*ph > h) *ph = h;
  if (*pw < 1) *pw = 1;
  if (*pw > w) *pw = w;
}

static void rect_mask(uint8_t *m, int64_t h, int64_t w, int64_t y0, int64_t x0, int64_t ph, int64_t pw, const uint8_t *fg) {
  memset(m, 0, (size_t)(h * w));
  for (int64_t y = y0; y < y0 + ph; y++)
    for (int64_t x = x0; x < x0 + pw; x++) m[y * w + x] = fg ? fg[y * w + x] : 1;
}

typedef struct { uint8_t *fg, *src, *tmp, *guide; } sy_work;

/* The mask: Perlin (DTD/SIA) or a patch rectangle at a random place (CutPaste/NSA) times the foreground,
 * redrawn while empty; then, if still empty, the same without the foreground (a fallback). */
static rn_status draw_mask(const rn_synth *s, rn_rng *g, int64_t h, int64_t w, const uint8_t *fg, int64_t ph, int64_t pw,
                           uint8_t *m, int64_t *y0, int64_t *x0, rn_synth_info *info) {
  int perlin = s->o.source == RN_SYNTH_DTD || s->o.source == RN_SYNTH_SIA;
  for (int phase = 0; phase < 2; phase++) {
    const uint8_t *use = phase == 0 ? fg : NULL;
    for (int a = 0; a <= s->o.retries; a++) {
      info->draws++;
      if (perlin) {
        RN_TRY(sy_perlin_mask(m, g, h, w, &s->o.perlin, NULL));
        if (use) for (int64_t k = 0; k < h * w; k++) m[k] &= use[k];
      } else {
        *y0 = rn_rng_int(g, 0, h - ph);
        *x0 = rn_rng_int(g, 0, w - pw);
        rect_mask(m, h, w, *y0, *x0, ph, pw, use);
      }
      if (count(m, h * w) > 0) return RN_OK;
    }
    info->fallback = 1;
  }
  return rn_error(RN_ERR_ARG, "synth: the mask stayed empty after %d draws", info->draws);
}

static rn_status sample(const rn_synth *s, uint64_t index, const sy_img *im, const sy_img *other, uint8_t *A, uint8_t *M,
                        sy_work *wk, rn_synth_info *info) {
  const rn_synth_opts *o = &s->o;
  int64_t h = im->h, w = im->w, n = h * w;
  rn_rng g;
  rn_rng_init(&g, o->seed, index);
  memset(info, 0, sizeof *info);
  info->file = -1;
  info->delta = sy_uniform(&g, o->opacity[0], o->opacity[1]);
  RN_TRY(sy_foreground(wk->fg, im, &o->fg));
  int64_t ph = 0, pw = 0, sy0 = 0, sx0 = 0, ty = 0, tx = 0;
  switch (o->source) {
  case RN_SYNTH_DTD:
  case RN_SYNTH_SIA: {
    info->file = (int)rn_rng_int(&g, 0, s->nfiles - 1);
    RN_TRY(read_source(s, info->file, h, w, wk->src));
    if (o->source == RN_SYNTH_DTD) {
      int order[RN_SYNTH_AUGMENTERS];
      for (int k = 0; k < RN_SYNTH_AUGMENTERS; k++) order[k] = k;
      for (int k = 0; k < o->augmenters; k++) { /* distinct augmenters: a partial Fisher-Yates shuffle */
        int j = (int)rn_rng_int(&g, k, RN_SYNTH_AUGMENTERS - 1), t = order[k];
        order[k] = order[j];
        order[j] = t;
      }
      sy_img sv = {h, w, 3, wk->src};
      for (int k = 0; k < o->augmenters; k++) RN_TRY(sy_augment(&sv, order[k], &g));
    }
    RN_TRY(draw_mask(s, &g, h, w, wk->fg, 0, 0, M, NULL, NULL, info));
    break;
  }
  case RN_SYNTH_CUTPASTE:
  case RN_SYNTH_NSA: {
    const uint8_t *from = im->p;
    if (o->source == RN_SYNTH_NSA) {
      if (other->h == h && other->w == w) from = other->p;
      else { sy_resize(wk->tmp, h, w, other->p, other->h, other->w, 3); from = wk->tmp; }
    }
    patch_size(o, &g, h, w, &ph, &pw);
    sy0 = rn_rng_int(&g, 0, h - ph);
    sx0 = rn_rng_int(&g, 0, w - pw);
    RN_TRY(draw_mask(s, &g, h, w, wk->fg, ph, pw, M, &ty, &tx, info));
    if (o->source == RN_SYNTH_CUTPASTE) { /* the image with the patch pasted at (ty, tx) */
      memcpy(wk->src, im->p, (size_t)(n * 3));
      for (int64_t y = 0; y < ph; y++)
        memcpy(wk->src + ((ty + y) * w + tx) * 3, from + ((sy0 + y) * w + sx0) * 3, (size_t)(pw * 3));
    } else {
      /* Seamless: the guidance is the other image shifted so its patch lands at (ty, tx), including the
       * patch's own surroundings (clamped at the edges), so no seam enters the gradients; I fixes the
       * values on the mask's boundary. */
      for (int64_t y = 0; y < h; y++) {
        int64_t oy = y - ty + sy0;
        oy = oy < 0 ? 0 : oy >= h ? h - 1 : oy;
        for (int64_t x = 0; x < w; x++) {
          int64_t ox = x - tx + sx0;
          ox = ox < 0 ? 0 : ox >= w ? w - 1 : ox;
          memcpy(wk->guide + (y * w + x) * 3, from + (oy * w + ox) * 3, 3);
        }
      }
      memcpy(wk->src, im->p, (size_t)(n * 3));
      RN_TRY(sy_poisson(wk->src, wk->guide, M, h, w, 3, o->poisson_iters, o->poisson_tol));
    }
    break;
  }
  }
  blend(A, im->p, wk->src, M, n, 3, info->delta);
  return RN_OK;
}

static rn_status work_new(sy_work *wk, int64_t n) {
  wk->fg = malloc((size_t)n);
  wk->src = malloc((size_t)(3 * n));
  wk->tmp = malloc((size_t)(3 * n));
  wk->guide = malloc((size_t)(3 * n));
  if (wk->fg && wk->src && wk->tmp && wk->guide) return RN_OK;
  free(wk->fg); free(wk->src); free(wk->tmp); free(wk->guide);
  return rn_error(RN_ERR_OOM, "synth: out of memory for a %lld-pixel image", (long long)n);
}

static void work_free(sy_work *wk) { free(wk->fg); free(wk->src); free(wk->tmp); free(wk->guide); }

static rn_status check_rgb(const rn_tensor *t, const char *what, int batched, sy_img *v, int64_t *nb) {
  char buf[64];
  if (!t) return rn_error(RN_ERR_ARG, "%s is NULL", what);
  if (t->dtype != RN_U8 || t->ndim != 3 + batched || t->shape[2 + batched] != 3 || !rn_tensor_is_contiguous(t) ||
      rn_tensor_device(t).type != RN_CPU)
    return rn_error(RN_ERR_SHAPE, "%s must be a contiguous CPU uint8 %s RGB image, got %s %s", what,
                    batched ? "[N,H,W,3]" : "[H,W,3]", rn_dtype_name(t->dtype), rn_shape_str(t, buf, sizeof buf));
  *nb = batched ? t->shape[0] : 1;
  v->h = t->shape[batched];
  v->w = t->shape[batched + 1];
  v->c = 3;
  v->p = rn_tensor_data(t);
  if (*nb <= 0 || v->h <= 0 || v->w <= 0) return rn_error(RN_ERR_SHAPE, "%s is empty (%s)", what, rn_shape_str(t, buf, sizeof buf));
  return RN_OK;
}

rn_status rn_synth_sample(rn_synth *s, uint64_t index, const rn_tensor *img, const rn_tensor *other,
                          rn_tensor **A, rn_tensor **M, rn_synth_info *info) {
  if (!A || !M) return rn_error(RN_ERR_ARG, "synth_sample: output pointer is NULL");
  *A = *M = NULL;
  if (!s) return rn_error(RN_ERR_ARG, "synth_sample: synthesiser is NULL");
  sy_img im, ot = {0, 0, 0, NULL};
  int64_t nb;
  RN_TRY(check_rgb(img, "synth_sample: image", 0, &im, &nb));
  if (s->o.source == RN_SYNTH_NSA) RN_TRY(check_rgb(other, "synth_sample: other (NSA needs a second normal image)", 0, &ot, &nb));
  rn_synth_info scratch;
  sy_work wk;
  RN_TRY(work_new(&wk, im.h * im.w));
  int64_t shape[3] = {im.h, im.w, 3};
  rn_status st = rn_tensor_empty(A, 3, shape, RN_U8, rn_cpu());
  if (st == RN_OK) st = rn_tensor_empty(M, 2, shape, RN_U8, rn_cpu());
  if (st == RN_OK) st = sample(s, index, &im, &ot, rn_tensor_data(*A), rn_tensor_data(*M), &wk, info ? info : &scratch);
  work_free(&wk);
  if (st != RN_OK) { rn_tensor_release(*A); rn_tensor_release(*M); *A = *M = NULL; }
  return st;
}

rn_status rn_synth_batch(rn_synth *s, uint64_t first, const rn_tensor *imgs, const rn_tensor *others,
                         rn_tensor **A, rn_tensor **M, int *fallbacks) {
  if (!A || !M) return rn_error(RN_ERR_ARG, "synth_batch: output pointer is NULL");
  *A = *M = NULL;
  if (fallbacks) *fallbacks = 0;
  if (!s) return rn_error(RN_ERR_ARG, "synth_batch: synthesiser is NULL");
  sy_img im, ot = {0, 0, 0, NULL};
  int64_t nb, no = 0;
  RN_TRY(check_rgb(imgs, "synth_batch: images", 1, &im, &nb));
  if (s->o.source == RN_SYNTH_NSA) {
    RN_TRY(check_rgb(others, "synth_batch: others (NSA needs partner images)", 1, &ot, &no));
    if (no != nb) return rn_error(RN_ERR_SHAPE, "synth_batch: %lld partner images for %lld images", (long long)no, (long long)nb);
  }
  int64_t shape[4] = {nb, im.h, im.w, 3};
  RN_TRY(rn_tensor_empty(A, 4, shape, RN_U8, rn_cpu()));
  rn_status st = rn_tensor_empty(M, 3, shape, RN_U8, rn_cpu());
  if (st != RN_OK) { rn_tensor_release(*A); *A = NULL; return st; }
  int64_t n = im.h * im.w, fails = 0, fb = 0;
  rn_status first_st = RN_OK;
  char msg[512] = "";
  uint8_t *pa = rn_tensor_data(*A), *pm = rn_tensor_data(*M);
  /* Each sample owns its generator stream, so the schedule does not change any result. Error text is
   * thread-local: copy the first failure out of the worker. */
  #pragma omp parallel
  {
    sy_work wk;
    rn_status wst = work_new(&wk, n);
    #pragma omp for schedule(dynamic) reduction(+ : fails, fb)
    for (int64_t i = 0; i < nb; i++) {
      rn_status r = wst;
      rn_synth_info info;
      if (r == RN_OK) {
        sy_img one = {im.h, im.w, 3, im.p + i * n * 3}, two = {ot.h, ot.w, 3, ot.p ? ot.p + i * ot.h * ot.w * 3 : NULL};
        r = sample(s, first + (uint64_t)i, &one, &two, pa + i * n * 3, pm + i * n, &wk, &info);
        if (r == RN_OK) fb += info.fallback;
      }
      if (r != RN_OK) {
        fails++;
        #pragma omp critical(rn_synth_err)
        if (first_st == RN_OK) { first_st = r; snprintf(msg, sizeof msg, "sample %lld: %s", (long long)(first + (uint64_t)i), rn_last_error()); }
      }
    }
    if (wst == RN_OK) work_free(&wk);
  }
  if (fails) {
    rn_tensor_release(*A); rn_tensor_release(*M);
    *A = *M = NULL;
    return rn_error(first_st, "synth_batch: %s", msg);
  }
  if (fallbacks) *fallbacks = (int)fb;
  return RN_OK;
}

rn_status rn_synth_blend(rn_tensor **out, const rn_tensor *img, const rn_tensor *src, const rn_tensor *mask, double delta) {
  if (!out) return rn_error(RN_ERR_ARG, "synth_blend: out is NULL");
  *out = NULL;
  sy_img vi, vs, vm;
  RN_TRY(sy_check_img(img, "synth_blend: image", 0, &vi));
  RN_TRY(sy_check_img(src, "synth_blend: source", 0, &vs));
  if (vs.h != vi.h || vs.w != vi.w || vs.c != vi.c) {
    char a[64], b[64];
    return rn_error(RN_ERR_SHAPE, "synth_blend: source %s does not match image %s", rn_shape_str(src, a, sizeof a),
                    rn_shape_str(img, b, sizeof b));
  }
  RN_TRY(sy_check_mask(mask, "synth_blend: mask", vi.h, vi.w, &vm));
  if (!(delta >= 0 && delta <= 1)) return rn_error(RN_ERR_ARG, "synth_blend: opacity %g is not in [0, 1]", delta);
  RN_TRY(rn_tensor_empty_like(out, img));
  blend(rn_tensor_data(*out), vi.p, vs.p, vm.p, vi.h * vi.w, vi.c, delta);
  return RN_OK;
}
