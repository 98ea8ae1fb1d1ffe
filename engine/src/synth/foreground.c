/* foreground.c - foreground masks (spec 3.3): cv2's gray conversion, Otsu and triangle thresholds, and
 * scipy/skimage grey closing and opening with square footprints. */
#include "synth_internal.h"

rn_status sy_check_img(const rn_tensor *t, const char *what, int allow2d, sy_img *v) {
  if (!t) return rn_error(RN_ERR_ARG, "%s is NULL", what);
  char buf[64];
  if (t->dtype != RN_U8 || rn_tensor_device(t).type != RN_CPU || !rn_tensor_is_contiguous(t) ||
      !(t->ndim == 3 || (allow2d && t->ndim == 2)))
    return rn_error(RN_ERR_SHAPE, "%s must be a contiguous CPU uint8 [H,W,C]%s image, got %s %s", what,
                    allow2d ? " or [H,W]" : "", rn_dtype_name(t->dtype), rn_shape_str(t, buf, sizeof buf));
  v->h = t->shape[0];
  v->w = t->shape[1];
  v->c = t->ndim == 3 ? t->shape[2] : 1;
  v->p = rn_tensor_data(t);
  if (v->h <= 0 || v->w <= 0 || v->c <= 0) return rn_error(RN_ERR_SHAPE, "%s is empty (%s)", what, rn_shape_str(t, buf, sizeof buf));
  return RN_OK;
}

rn_status sy_check_mask(const rn_tensor *t, const char *what, int64_t h, int64_t w, sy_img *v) {
  RN_TRY(sy_check_img(t, what, 1, v));
  char buf[64];
  if (v->c != 1) return rn_error(RN_ERR_SHAPE, "%s must have one channel, got %s", what, rn_shape_str(t, buf, sizeof buf));
  if ((h >= 0 && v->h != h) || (w >= 0 && v->w != w))
    return rn_error(RN_ERR_SHAPE, "%s %s does not fit the image size %lldx%lld", what, rn_shape_str(t, buf, sizeof buf),
                    (long long)h, (long long)w);
  return RN_OK;
}

/* cv2 COLOR_RGB2GRAY for 8-bit data: 14-bit fixed point 0.299/0.587/0.114 with rounding. */
void sy_gray(const sy_img *im, uint8_t *plane) {
  int64_t n = im->h * im->w;
  if (im->c < 3) {
    for (int64_t k = 0; k < n; k++) plane[k] = im->p[k * im->c];
    return;
  }
  for (int64_t k = 0; k < n; k++) {
    const uint8_t *q = im->p + k * im->c;
    plane[k] = (uint8_t)((q[0] * 4899 + q[1] * 9617 + q[2] * 1868 + 8192) >> 14);
  }
}

static void histogram(const uint8_t *p, int64_t n, int64_t h[256]) {
  memset(h, 0, 256 * sizeof *h);
  for (int64_t k = 0; k < n; k++) h[p[k]]++;
}

/* cv2's getThreshVal_Otsu_8u: maximise the between-class variance; ties keep the first maximum. */
static int otsu(const int64_t h[256], int64_t n) {
  double scale = 1.0 / (double)n, mu = 0, mu1 = 0, q1 = 0, best = 0;
  int t = 0;
  for (int i = 0; i < 256; i++) mu += i * (double)h[i];
  mu *= scale;
  for (int i = 0; i < 256; i++) {
    double p = (double)h[i] * scale;
    mu1 *= q1;
    q1 += p;
    double q2 = 1.0 - q1;
    if (fmin(q1, q2) < 1.1920928955078125e-07 || fmax(q1, q2) > 1.0 - 1.1920928955078125e-07) continue;
    mu1 = (mu1 + i * p) / q1;
    double mu2 = (mu - q1 * mu1) / q2, s = q1 * q2 * (mu1 - mu2) * (mu1 - mu2);
    if (s > best) { best = s; t = i; }
  }
  return t;
}

/* cv2's getThreshVal_Triangle_8u: the histogram bin farthest from the line joining the peak to the far
 * end of the longer tail (the histogram is flipped when the tail is on the right), minus one. */
static int triangle(const int64_t hist[256]) {
  int64_t h[256];
  memcpy(h, hist, sizeof h);
  int left = 0, right = 0, peak = 0, flipped = 0;
  int64_t top = 0;
  for (int i = 0; i < 256; i++) if (h[i] > 0) { left = i; break; }
  if (left > 0) left--;
  for (int i = 255; i > 0; i--) if (h[i] > 0) { right = i; break; }
  if (right < 255) right++;
  for (int i = 0; i < 256; i++) if (h[i] > top) { top = h[i]; peak = i; }
  if (peak - left < right - peak) {
    flipped = 1;
    for (int i = 0, j = 255; i < j; i++, j--) { int64_t s = h[i]; h[i] = h[j]; h[j] = s; }
    left = 255 - right;
    peak = 255 - peak;
  }
  double t = left, a = (double)top, b = left - peak, dist = 0;
  for (int i = left + 1; i <= peak; i++) {
    double d = a * i + b * (double)h[i];
    if (d > dist) { dist = d; t = i; }
  }
  t -= 1;
  if (flipped) t = 255 - t;
  return (int)t;
}

static rn_status plane_of(const rn_tensor *plane, const char *what, sy_img *v) {
  RN_TRY(sy_check_img(plane, what, 1, v));
  char buf[64];
  if (v->c != 1) return rn_error(RN_ERR_SHAPE, "%s: plane must be [H,W] or [H,W,1], got %s", what, rn_shape_str(plane, buf, sizeof buf));
  return RN_OK;
}

rn_status rn_threshold_otsu(const rn_tensor *plane, int *t) {
  sy_img v;
  RN_TRY(plane_of(plane, "threshold_otsu", &v));
  if (!t) return rn_error(RN_ERR_ARG, "threshold_otsu: t is NULL");
  int64_t h[256];
  histogram(v.p, v.h * v.w, h);
  *t = otsu(h, v.h * v.w);
  return RN_OK;
}

rn_status rn_threshold_triangle(const rn_tensor *plane, int *t) {
  sy_img v;
  RN_TRY(plane_of(plane, "threshold_triangle", &v));
  if (!t) return rn_error(RN_ERR_ARG, "threshold_triangle: t is NULL");
  int64_t h[256];
  histogram(v.p, v.h * v.w, h);
  *t = triangle(h);
  return RN_OK;
}

/* scipy's 'reflect' border: d c b a | a b c d | d c b a. */
static inline int64_t reflect(int64_t i, int64_t n) {
  if (n == 1) return 0;
  for (;;) {
    if (i < 0) i = -i - 1;
    else if (i >= n) i = 2 * n - 1 - i;
    else return i;
  }
}

/* One pass of a 1-D min or max filter along rows (step 1) or columns (step w) over window [i+lo, i+hi]. */
static void filter1d(uint8_t *dst, const uint8_t *src, int64_t h, int64_t w, int along_cols, int lo, int hi, int is_max) {
  int64_t n = along_cols ? h : w;
  for (int64_t r = 0; r < (along_cols ? w : h); r++)
    for (int64_t i = 0; i < n; i++) {
      int best = is_max ? 0 : 255;
      for (int k = lo; k <= hi; k++) {
        int64_t j = reflect(i + k, n);
        int v = along_cols ? src[j * w + r] : src[r * w + j];
        best = is_max ? (v > best ? v : best) : (v < best ? v : best);
      }
      if (along_cols) dst[i * w + r] = (uint8_t)best;
      else dst[r * w + i] = (uint8_t)best;
    }
}

/* Windows: scipy's grey_erosion with size n covers [i - n/2, i - n/2 + n - 1]; grey_dilation mirrors the
 * footprint and shifts the origin by one for even n, covering [i - (n-1)/2, i + n/2]. For odd n both are
 * centred. A square footprint is separable, so rows then columns. */
static rn_status dilate_or_erode(uint8_t *m, uint8_t *tmp, int64_t h, int64_t w, int n, int is_max) {
  int lo = is_max ? -((n - 1) / 2) : -(n / 2), hi = lo + n - 1;
  filter1d(tmp, m, h, w, 0, lo, hi, is_max);
  filter1d(m, tmp, h, w, 1, lo, hi, is_max);
  return RN_OK;
}

rn_status sy_morph(uint8_t *m, int64_t h, int64_t w, rn_morph_op op, int n) {
  uint8_t *tmp = malloc((size_t)(h * w));
  if (!tmp) return rn_error(RN_ERR_OOM, "morphology: out of memory for %lldx%lld", (long long)h, (long long)w);
  switch (op) {
  case RN_MORPH_DILATE: dilate_or_erode(m, tmp, h, w, n, 1); break;
  case RN_MORPH_ERODE: dilate_or_erode(m, tmp, h, w, n, 0); break;
  case RN_MORPH_CLOSE: dilate_or_erode(m, tmp, h, w, n, 1); dilate_or_erode(m, tmp, h, w, n, 0); break;
  case RN_MORPH_OPEN: dilate_or_erode(m, tmp, h, w, n, 0); dilate_or_erode(m, tmp, h, w, n, 1); break;
  }
  free(tmp);
  return RN_OK;
}

rn_status rn_morph(rn_tensor **out, const rn_tensor *mask, rn_morph_op op, int n) {
  if (!out) return rn_error(RN_ERR_ARG, "morphology: out is NULL");
  *out = NULL;
  sy_img v;
  RN_TRY(sy_check_mask(mask, "morphology: mask", -1, -1, &v));
  if (op < RN_MORPH_DILATE || op > RN_MORPH_OPEN) return rn_error(RN_ERR_ARG, "morphology: unknown operation %d", (int)op);
  if (n < 1 || n > 255) return rn_error(RN_ERR_ARG, "morphology: footprint size %d must be in 1..255", n);
  RN_TRY(rn_clone(out, mask));
  rn_status st = sy_morph(rn_tensor_data(*out), v.h, v.w, op, n);
  if (st != RN_OK) { rn_tensor_release(*out); *out = NULL; }
  return st;
}

static rn_status check_rule(const rn_fg_rule *r, int64_t c) {
  if (r->method < RN_FG_NONE || r->method > RN_FG_TRIANGLE)
    return rn_error(RN_ERR_ARG, "foreground: unknown method %d", (int)r->method);
  if (r->channel < -1 || r->channel > 2 || (r->channel >= c && c > 0 && r->method != RN_FG_NONE))
    return rn_error(RN_ERR_ARG, "foreground: channel %d is not gray (-1) or an image channel (0..%lld)", r->channel,
                    (long long)(c - 1));
  if (r->close < 0 || r->close > 255 || r->open < 0 || r->open > 255)
    return rn_error(RN_ERR_ARG, "foreground: close %d / open %d must be in 0..255", r->close, r->open);
  return RN_OK;
}

rn_status sy_foreground(uint8_t *m, const sy_img *im, const rn_fg_rule *r) {
  int64_t n = im->h * im->w;
  if (r->method == RN_FG_NONE) { memset(m, 1, (size_t)n); return RN_OK; }
  if (r->channel < 0) sy_gray(im, m);
  else for (int64_t k = 0; k < n; k++) m[k] = im->p[k * im->c + r->channel];
  int64_t h[256];
  histogram(m, n, h);
  int t = r->method == RN_FG_OTSU ? otsu(h, n) : triangle(h);
  for (int64_t k = 0; k < n; k++) m[k] = (m[k] > t) != (r->dark != 0);
  if (r->close > 0) RN_TRY(sy_morph(m, im->h, im->w, RN_MORPH_CLOSE, r->close));
  if (r->open > 0) RN_TRY(sy_morph(m, im->h, im->w, RN_MORPH_OPEN, r->open));
  return RN_OK;
}

rn_status rn_foreground_mask(rn_tensor **out, const rn_tensor *img, const rn_fg_rule *rule) {
  if (!out) return rn_error(RN_ERR_ARG, "foreground: out is NULL");
  *out = NULL;
  if (!rule) return rn_error(RN_ERR_ARG, "foreground: rule is NULL");
  sy_img v;
  RN_TRY(sy_check_img(img, "foreground: image", 1, &v));
  RN_TRY(check_rule(rule, v.c));
  int64_t shape[2] = {v.h, v.w};
  RN_TRY(rn_tensor_empty(out, 2, shape, RN_U8, rn_cpu()));
  rn_status st = sy_foreground(rn_tensor_data(*out), &v, rule);
  if (st != RN_OK) { rn_tensor_release(*out); *out = NULL; }
  return st;
}
