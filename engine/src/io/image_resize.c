/* image_resize.c - PIL-compatible resizing (Pillow's Resample.c and ImagingScaleAffine semantics).
 *
 * Bilinear: a separable triangle filter whose support widens with the scale when downscaling
 * (support = max(in/out, 1)), taps centred at (i + 0.5) * in/out, weights normalised per output pixel.
 * The horizontal pass runs first and is skipped when the width is unchanged (likewise the vertical one).
 * uint8 images use PIL's fixed point: weights rounded to 22 fractional bits, accumulation starting at
 * half a unit, result shifted and clamped, with the intermediate image in uint8 - so results equal PIL's
 * bit for bit. float32 uses double weights and a float32 intermediate, as PIL's "F" mode.
 * Nearest: PIL's affine scaling, source x = (int)(x0 + k * in/out) with x0 = in/out * 0.5, accumulated.
 */
#include "image_internal.h"
#include "internal.h"

#define PRECISION_BITS 22 /* 32 - 8 - 2, as Pillow */

typedef struct {
  int ksize;
  int64_t *bounds; /* per output index: first input index, number of taps */
  double *kk;      /* ksize weights per output index */
  int32_t *ik;     /* the same in fixed point (uint8 path) */
} coeffs;

static void coeffs_free(coeffs *c) { free(c->bounds); free(c->kk); free(c->ik); }

static double triangle(double x) {
  if (x < 0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

static rn_status coeffs_make(coeffs *c, int64_t in, int64_t out) {
  memset(c, 0, sizeof *c);
  double scale = (double)in / (double)out, fscale = scale < 1.0 ? 1.0 : scale;
  double support = 1.0 * fscale; /* the triangle filter's support is 1 */
  c->ksize = (int)ceil(support) * 2 + 1;
  c->bounds = malloc(sizeof(int64_t) * 2 * out);
  c->kk = malloc(sizeof(double) * c->ksize * out);
  c->ik = malloc(sizeof(int32_t) * c->ksize * out);
  if (!c->bounds || !c->kk || !c->ik) { coeffs_free(c); return rn_error(RN_ERR_OOM, "resize: out of memory"); }
  for (int64_t xx = 0; xx < out; xx++) {
    double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / fscale;
    int64_t xmin = (int64_t)(center - support + 0.5), xmax = (int64_t)(center + support + 0.5);
    if (xmin < 0) xmin = 0;
    if (xmax > in) xmax = in;
    xmax -= xmin;
    double *k = c->kk + xx * c->ksize;
    int x = 0;
    for (; x < xmax; x++) {
      k[x] = triangle((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (x = 0; x < xmax; x++)
      if (ww != 0.0) k[x] /= ww;
    for (; x < c->ksize; x++) k[x] = 0;
    for (x = 0; x < c->ksize; x++) {
      double v = k[x] * (1 << PRECISION_BITS);
      c->ik[xx * c->ksize + x] = (int32_t)(v < 0 ? v - 0.5 : v + 0.5);
    }
    c->bounds[2 * xx] = xmin;
    c->bounds[2 * xx + 1] = xmax;
  }
  return RN_OK;
}

static inline uint8_t clip8(int32_t v) {
  v >>= PRECISION_BITS;
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One pass along an axis of an interleaved image. The input has `lines` lines of `in_len` samples along
 * the axis; `step` is the element distance between neighbours along the axis and `line_step` between
 * lines; the output has the same layout with `out_len` along the axis (steps ostep, oline_step). */
typedef struct {
  int64_t lines, step, line_step, ostep, oline_step, chans;
} pass_geom;

static void pass_u8(const uint8_t *in, uint8_t *out, const coeffs *c, int64_t out_len, pass_geom g) {
#pragma omp parallel for if (g.lines * out_len > 65536)
  for (int64_t l = 0; l < g.lines; l++)
    for (int64_t o = 0; o < out_len; o++) {
      int64_t xmin = c->bounds[2 * o], n = c->bounds[2 * o + 1];
      const int32_t *k = c->ik + o * c->ksize;
      for (int64_t ch = 0; ch < g.chans; ch++) {
        const uint8_t *s = in + l * g.line_step + xmin * g.step + ch;
        int32_t ss = 1 << (PRECISION_BITS - 1);
        for (int64_t x = 0; x < n; x++) ss += (int32_t)s[x * g.step] * k[x];
        out[l * g.oline_step + o * g.ostep + ch] = clip8(ss);
      }
    }
}

static void pass_f32(const float *in, float *out, const coeffs *c, int64_t out_len, pass_geom g) {
#pragma omp parallel for if (g.lines * out_len > 65536)
  for (int64_t l = 0; l < g.lines; l++)
    for (int64_t o = 0; o < out_len; o++) {
      int64_t xmin = c->bounds[2 * o], n = c->bounds[2 * o + 1];
      const double *k = c->kk + o * c->ksize;
      for (int64_t ch = 0; ch < g.chans; ch++) {
        const float *s = in + l * g.line_step + xmin * g.step + ch;
        double ss = 0.0;
        for (int64_t x = 0; x < n; x++) ss += s[x * g.step] * k[x];
        out[l * g.oline_step + o * g.ostep + ch] = (float)ss;
      }
    }
}

/* PIL's nearest source indices (ImagingScaleAffine pretabulation, accumulated in double like Pillow). */
static void nearest_table(int64_t *tab, int64_t in, int64_t out) {
  double a = (double)in / (double)out, xo = a * 0.5;
  for (int64_t x = 0; x < out; x++, xo += a) {
    int64_t v = xo < 0 ? -1 : (int64_t)xo;
    tab[x] = v < 0 ? 0 : v >= in ? in - 1 : v;
  }
}

/* Resizes one interleaved image [H,W,C] of element size esz (1: uint8, 4: float32). */
static rn_status resize_hwc(const void *in, void *out, int64_t H, int64_t W, int64_t C, int64_t oh, int64_t ow,
                            int esz, rn_resize_filter f) {
  if (H == oh && W == ow) { memcpy(out, in, (size_t)(H * W * C * esz)); return RN_OK; }
  if (f == RN_RESIZE_NEAREST) {
    int64_t *tx = malloc(sizeof(int64_t) * ow), *ty = malloc(sizeof(int64_t) * oh);
    if (!tx || !ty) { free(tx); free(ty); return rn_error(RN_ERR_OOM, "resize: out of memory"); }
    nearest_table(tx, W, ow);
    nearest_table(ty, H, oh);
    for (int64_t y = 0; y < oh; y++)
      for (int64_t x = 0; x < ow; x++)
        memcpy((char *)out + ((y * ow + x) * C) * esz, (const char *)in + ((ty[y] * W + tx[x]) * C) * esz,
               (size_t)(C * esz));
    free(tx);
    free(ty);
    return RN_OK;
  }
  coeffs ch = {0}, cv = {0};
  rn_status st = RN_OK;
  void *tmp = NULL;
  const void *src = in;
  if (W != ow) {
    st = coeffs_make(&ch, W, ow);
    if (st == RN_OK && H != oh && !(tmp = malloc((size_t)(H * ow * C * esz))))
      st = rn_error(RN_ERR_OOM, "resize: out of memory");
    if (st == RN_OK) {
      void *dst = H != oh ? tmp : out;
      pass_geom g = {H, C, W * C, C, ow * C, C};
      if (esz == 1) pass_u8(in, dst, &ch, ow, g);
      else pass_f32(in, dst, &ch, ow, g);
      src = dst;
    }
  }
  if (st == RN_OK && H != oh) {
    st = coeffs_make(&cv, H, oh);
    if (st == RN_OK) {
      pass_geom g = {ow, ow * C, C, ow * C, C, C}; /* lines are columns */
      if (esz == 1) pass_u8(src, out, &cv, oh, g);
      else pass_f32(src, out, &cv, oh, g);
    }
  }
  coeffs_free(&ch);
  coeffs_free(&cv);
  free(tmp);
  return st;
}

static rn_status check_size(int64_t oh, int64_t ow, const char *what) {
  if (oh <= 0 || ow <= 0 || ow > RN_IMAGE_MAX_PIXELS / oh)
    return rn_error(RN_ERR_ARG, "%s: output size %lldx%lld must be positive and at most %lld pixels", what,
                    (long long)oh, (long long)ow, (long long)RN_IMAGE_MAX_PIXELS);
  return RN_OK;
}

static rn_status check_filter(rn_resize_filter f, const char *what) {
  if (f != RN_RESIZE_NEAREST && f != RN_RESIZE_BILINEAR) return rn_error(RN_ERR_ARG, "%s: unknown filter %d", what, (int)f);
  return RN_OK;
}

rn_status rn_image_resize(rn_tensor **out, const rn_tensor *img, int64_t oh, int64_t ow, rn_resize_filter f) {
  const char *what = "image_resize";
  if (!out) return rn_error(RN_ERR_ARG, "%s: NULL output pointer", what);
  *out = NULL;
  RN_TRY(rn_check_tensor(img, "image_resize: img"));
  RN_TRY(check_size(oh, ow, what));
  RN_TRY(check_filter(f, what));
  char b[64];
  if (img->dtype != RN_U8 && img->dtype != RN_F32)
    return rn_error(RN_ERR_SHAPE, "%s: img must be uint8 or float32, not %s", what, rn_dtype_name(img->dtype));
  if ((img->ndim != 2 && img->ndim != 3) || rn_tensor_numel(img) == 0)
    return rn_error(RN_ERR_SHAPE, "%s: img must be a non-empty [H,W] or [H,W,C], got %s", what,
                    rn_shape_str(img, b, sizeof b));
  if (img->storage->device.type != RN_CPU) return rn_error(RN_ERR_DEVICE, "%s: images live on the CPU", what);
  int64_t H = img->shape[0], W = img->shape[1], C = img->ndim == 3 ? img->shape[2] : 1;
  rn_tensor *src = NULL;
  RN_TRY(rn_contig_nograd(&src, img));
  int64_t shape[3] = {oh, ow, C};
  rn_status st = rn_tensor_empty(out, img->ndim, shape, img->dtype, rn_cpu());
  if (st == RN_OK)
    st = resize_hwc(rn_tensor_data(src), rn_tensor_data(*out), H, W, C, oh, ow, (int)rn_dtype_size(img->dtype), f);
  rn_tensor_release(src);
  if (st != RN_OK) { rn_tensor_release(*out); *out = NULL; }
  return st;
}

rn_status rn_image_resize_planes(rn_tensor **out, const rn_tensor *x, int64_t oh, int64_t ow, rn_resize_filter f) {
  const char *what = "image_resize_planes";
  if (!out) return rn_error(RN_ERR_ARG, "%s: NULL output pointer", what);
  *out = NULL;
  RN_TRY(rn_check_tensor(x, "image_resize_planes: x"));
  if (x->dtype != RN_F32)
    return rn_error(RN_ERR_SHAPE, "%s: x must be float32, not %s", what, rn_dtype_name(x->dtype));
  RN_TRY(check_size(oh, ow, what));
  RN_TRY(check_filter(f, what));
  char b[64];
  if (x->ndim < 2 || rn_tensor_numel(x) == 0)
    return rn_error(RN_ERR_SHAPE, "%s: x must be a non-empty [..., H, W], got %s", what, rn_shape_str(x, b, sizeof b));
  if (x->storage->device.type != RN_CPU) return rn_error(RN_ERR_DEVICE, "%s: x must live on the CPU", what);
  int64_t H = x->shape[x->ndim - 2], W = x->shape[x->ndim - 1], planes = rn_tensor_numel(x) / (H * W);
  rn_tensor *src = NULL;
  RN_TRY(rn_contig_nograd(&src, x));
  int64_t shape[RN_MAX_DIMS];
  memcpy(shape, x->shape, sizeof(int64_t) * x->ndim);
  shape[x->ndim - 2] = oh;
  shape[x->ndim - 1] = ow;
  rn_status st = rn_tensor_empty(out, x->ndim, shape, RN_F32, rn_cpu());
  for (int64_t p = 0; st == RN_OK && p < planes; p++)
    st = resize_hwc(rn_f32(src) + p * H * W, rn_f32(*out) + p * oh * ow, H, W, 1, oh, ow, 4, f);
  rn_tensor_release(src);
  if (st != RN_OK) { rn_tensor_release(*out); *out = NULL; }
  return st;
}
