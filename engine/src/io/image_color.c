/* image_color.c - gray <-> RGB conversions of tensors and the viridis colour map.
 *
 * The viridis table is evaluated from a degree-6 polynomial fit per channel of matplotlib's published
 * viridis (the widely used public fit by Matt Zucconi); tests check it against anchor values of the
 * published table to within a few 8-bit steps. Perceptually uniform and readable in gray print.
 */
#include "image_internal.h"
#include "internal.h"

static rn_status convert_tensor(rn_tensor **out, const rn_tensor *img, int cout, const char *what) {
  int64_t h, w;
  int c;
  if (!out) return rn_error(RN_ERR_ARG, "%s: NULL output pointer", what);
  *out = NULL;
  RN_TRY(rn_image_geometry(img, what, &h, &w, &c));
  if (img->dtype != RN_U8 && img->dtype != RN_I32)
    return rn_error(RN_ERR_SHAPE, "%s: img must be uint8 or int32 (16-bit), not %s", what, rn_dtype_name(img->dtype));
  rn_tensor *src = NULL;
  RN_TRY(rn_contig_nograd(&src, img));
  int64_t shape[3] = {h, w, cout};
  rn_status st = rn_tensor_empty(out, 3, shape, img->dtype, rn_cpu());
  if (st == RN_OK && img->dtype == RN_U8) {
    rn_pixels_convert(rn_tensor_data(src), rn_tensor_data(*out), h * w, c, cout, 8);
  } else if (st == RN_OK) { /* int32 holding 16-bit samples: go through uint16 */
    int64_t n = h * w;
    uint16_t *a = malloc(sizeof(uint16_t) * n * c), *b = malloc(sizeof(uint16_t) * n * cout);
    if (!a || !b) st = rn_error(RN_ERR_OOM, "%s: out of memory", what);
    const int32_t *s = rn_tensor_data(src);
    for (int64_t i = 0; st == RN_OK && i < n * c; i++) a[i] = (uint16_t)(s[i] < 0 ? 0 : s[i] > 65535 ? 65535 : s[i]);
    if (st == RN_OK) {
      rn_pixels_convert(a, b, n, c, cout, 16);
      int32_t *d = rn_tensor_data(*out);
      for (int64_t i = 0; i < n * cout; i++) d[i] = b[i];
    }
    free(a);
    free(b);
  }
  rn_tensor_release(src);
  if (st != RN_OK) { rn_tensor_release(*out); *out = NULL; }
  return st;
}

rn_status rn_image_to_gray(rn_tensor **out, const rn_tensor *img) { return convert_tensor(out, img, 1, "image_to_gray"); }
rn_status rn_image_to_rgb(rn_tensor **out, const rn_tensor *img) { return convert_tensor(out, img, 3, "image_to_rgb"); }

/* viridis(t) for t in [0,1], Horner form of c0 + c1 t + ... + c6 t^6 per channel. */
static void viridis(double t, double rgb[3]) {
  static const double c[7][3] = {
      {0.2777273272234177, 0.005407344544966578, 0.3340998053353061},
      {0.1050930431085774, 1.404613529898575, 1.384590162594685},
      {-0.3308618287255563, 0.214847559468213, 0.09509516302823659},
      {-4.634230498983486, -5.799100973351585, -19.33244095627987},
      {6.228269936347081, 14.17993336680509, 56.69055260068105},
      {4.776384997670288, -13.74514537774601, -65.35303263337234},
      {-5.435455855934631, 4.645852612178535, 26.3124352495832},
  };
  for (int k = 0; k < 3; k++) {
    double v = c[6][k];
    for (int i = 5; i >= 0; i--) v = v * t + c[i][k];
    rgb[k] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
}

void rn_viridis_table(uint8_t lut[256][3]) {
  for (int i = 0; i < 256; i++) {
    double rgb[3];
    viridis(i / 255.0, rgb);
    for (int k = 0; k < 3; k++) lut[i][k] = (uint8_t)lround(rgb[k] * 255.0);
  }
}

/* Finite min and max of n floats (0,0 when none is finite). */
void rn_float_range(const float *v, int64_t n, double *lo, double *hi) {
  double a = INFINITY, b = -INFINITY;
  for (int64_t i = 0; i < n; i++)
    if (isfinite(v[i])) { if (v[i] < a) a = v[i]; if (v[i] > b) b = v[i]; }
  if (a > b) a = b = 0;
  *lo = a;
  *hi = b;
}

/* Table index of v within [lo,hi] (hi > lo), clamped; NaN -> 0. */
int rn_colormap_index(float v, double lo, double hi) {
  if (isnan(v)) return 0;
  double t = (v - lo) / (hi - lo);
  if (!(t > 0)) return 0;
  if (t >= 1) return 255;
  return (int)lround(t * 255.0);
}

rn_status rn_image_colormap(rn_tensor **out, const rn_tensor *map, double lo, double hi) {
  if (!out) return rn_error(RN_ERR_ARG, "colormap: NULL output pointer");
  *out = NULL;
  RN_TRY(rn_check_f32(map, "colormap: map"));
  char b[64];
  int64_t h, w;
  if (map->ndim == 2) { h = map->shape[0]; w = map->shape[1]; }
  else if (map->ndim == 3 && map->shape[0] == 1) { h = map->shape[1]; w = map->shape[2]; }
  else if (map->ndim == 3 && map->shape[2] == 1) { h = map->shape[0]; w = map->shape[1]; }
  else return rn_error(RN_ERR_SHAPE, "colormap: map must be [H,W], got %s", rn_shape_str(map, b, sizeof b));
  if (h <= 0 || w <= 0) return rn_error(RN_ERR_SHAPE, "colormap: map %s is empty", rn_shape_str(map, b, sizeof b));
  if (map->storage->device.type != RN_CPU) return rn_error(RN_ERR_DEVICE, "colormap: map must live on the CPU");
  if (isnan(lo) || isnan(hi)) return rn_error(RN_ERR_ARG, "colormap: lo/hi must not be NaN");
  rn_tensor *src = NULL;
  RN_TRY(rn_contig_nograd(&src, map));
  const float *s = rn_f32(src);
  if (lo >= hi) rn_float_range(s, h * w, &lo, &hi);
  if (!(hi > lo)) hi = lo + 1; /* constant map: lowest colour */
  int64_t shape[3] = {h, w, 3};
  rn_status st = rn_tensor_empty(out, 3, shape, RN_U8, rn_cpu());
  if (st == RN_OK) {
    uint8_t lut[256][3];
    rn_viridis_table(lut);
    uint8_t *d = rn_tensor_data(*out);
    for (int64_t i = 0; i < h * w; i++) memcpy(d + 3 * i, lut[rn_colormap_index(s[i], lo, hi)], 3);
  }
  rn_tensor_release(src);
  return st;
}
