/* image_overlay.c - the four-panel anomaly figure: image | ground truth | heat map | predicted contour. */
#include "image_internal.h"
#include "internal.h"

rn_overlay_opts rn_overlay_opts_default(void) {
  rn_overlay_opts o = {0.0, 0.0, NAN, 0.5, 4};
  return o;
}

/* A boolean mask [H,W] from a uint8 (>= 128) or float32 (>= 0.5) mask, nearest-resized to h x w. */
static rn_status gt_mask(const rn_tensor *gt, int64_t h, int64_t w, uint8_t *mask) {
  char b[64];
  if (gt->dtype != RN_U8 && gt->dtype != RN_F32)
    return rn_error(RN_ERR_SHAPE, "overlay: gt must be uint8 or float32, not %s", rn_dtype_name(gt->dtype));
  if (!(gt->ndim == 2 || (gt->ndim == 3 && gt->shape[2] == 1)) || rn_tensor_numel(gt) == 0)
    return rn_error(RN_ERR_SHAPE, "overlay: gt must be a mask [H,W] or [H,W,1], got %s", rn_shape_str(gt, b, sizeof b));
  rn_tensor *r = NULL;
  if (gt->shape[0] != h || gt->shape[1] != w) RN_TRY(rn_image_resize(&r, gt, h, w, RN_RESIZE_NEAREST));
  else RN_TRY(rn_contig_nograd(&r, gt));
  if (r->dtype == RN_U8) {
    const uint8_t *s = rn_tensor_data(r);
    for (int64_t i = 0; i < h * w; i++) mask[i] = s[i] >= 128;
  } else {
    const float *s = rn_f32(r);
    for (int64_t i = 0; i < h * w; i++) mask[i] = s[i] >= 0.5f;
  }
  rn_tensor_release(r);
  return RN_OK;
}

/* A mask pixel on the border of its region (a 4-neighbour outside the mask or the image). */
static int on_contour(const uint8_t *m, int64_t h, int64_t w, int64_t y, int64_t x) {
  if (!m[y * w + x]) return 0;
  return y == 0 || x == 0 || y == h - 1 || x == w - 1 || !m[(y - 1) * w + x] || !m[(y + 1) * w + x] ||
         !m[y * w + x - 1] || !m[y * w + x + 1];
}

rn_status rn_image_overlay(rn_tensor **out, const rn_tensor *img, const rn_tensor *gt, const rn_tensor *heat,
                           const rn_overlay_opts *opts) {
  if (!out) return rn_error(RN_ERR_ARG, "overlay: NULL output pointer");
  *out = NULL;
  rn_overlay_opts o = opts ? *opts : rn_overlay_opts_default();
  if (o.gap < 0 || o.gap > 1000) return rn_error(RN_ERR_ARG, "overlay: gap %d must be in 0..1000", o.gap);
  if (!(o.heat_alpha >= 0 && o.heat_alpha <= 1))
    return rn_error(RN_ERR_ARG, "overlay: heat_alpha %g must be in [0,1]", o.heat_alpha);
  if (isnan(o.lo) || isnan(o.hi)) return rn_error(RN_ERR_ARG, "overlay: lo/hi must not be NaN");
  int64_t h, w;
  int c;
  RN_TRY(rn_image_geometry(img, "overlay: img", &h, &w, &c));
  RN_TRY(rn_check_f32(heat, "overlay: heat"));
  char b[64];
  if (!(heat->ndim == 2 || (heat->ndim == 3 && heat->shape[0] == 1)) || rn_tensor_numel(heat) == 0)
    return rn_error(RN_ERR_SHAPE, "overlay: heat must be a map [H,W] or [1,H,W], got %s",
                    rn_shape_str(heat, b, sizeof b));
  if (gt) RN_TRY(rn_check_tensor(gt, "overlay: gt"));

  rn_tensor *rgb = NULL, *hm = NULL;
  uint8_t *gm = NULL, *pm = NULL;
  rn_status st = RN_OK;
  /* the image as 8-bit RGB */
  if (img->dtype == RN_I32) {
    rn_tensor *t = NULL;
    st = rn_image_to_rgb(&t, img);
    if (st == RN_OK) st = rn_tensor_empty(&rgb, 3, t->shape, RN_U8, rn_cpu());
    if (st == RN_OK) {
      const int32_t *s = rn_tensor_data(t);
      uint8_t *d = rn_tensor_data(rgb);
      for (int64_t i = 0; i < h * w * 3; i++) d[i] = (uint8_t)(s[i] >> 8);
    }
    rn_tensor_release(t);
  } else if (img->dtype == RN_U8) {
    st = rn_image_to_rgb(&rgb, img);
  } else {
    st = rn_error(RN_ERR_SHAPE, "overlay: img must be uint8 or int32, not %s", rn_dtype_name(img->dtype));
  }
  /* the heat map at the image's size */
  int64_t hh = heat->shape[heat->ndim - 2], hw = heat->shape[heat->ndim - 1];
  if (st == RN_OK) {
    int64_t s2[2] = {hh, hw};
    rn_tensor *det = NULL, *flat = NULL; /* a plain view: no autograd node for a heat map */
    st = rn_detach(&det, (rn_tensor *)heat);
    if (st == RN_OK) st = rn_reshape(&flat, det, 2, s2);
    rn_tensor_release(det);
    if (st == RN_OK)
      st = hh == h && hw == w ? rn_contig_nograd(&hm, flat) : rn_image_resize(&hm, flat, h, w, RN_RESIZE_BILINEAR);
    rn_tensor_release(flat);
  }
  if (st == RN_OK && (!(gm = calloc((size_t)(h * w), 1)) || !(pm = calloc((size_t)(h * w), 1))))
    st = rn_error(RN_ERR_OOM, "overlay: out of memory");
  if (st == RN_OK && gt) st = gt_mask(gt, h, w, gm);
  int64_t gap = o.gap, ow = 4 * w + 3 * gap, shape[3] = {h, ow, 3};
  if (st == RN_OK) st = rn_tensor_empty(out, 3, shape, RN_U8, rn_cpu());
  if (st == RN_OK) {
    const float *hv = rn_f32(hm);
    double lo = o.lo, hi = o.hi;
    if (lo >= hi) rn_float_range(hv, h * w, &lo, &hi);
    if (!(hi > lo)) hi = lo + 1;
    double thr = isnan(o.threshold) ? 0.5 * (lo + hi) : o.threshold;
    for (int64_t i = 0; i < h * w; i++) pm[i] = hv[i] >= thr;
    uint8_t lut[256][3];
    rn_viridis_table(lut);
    const uint8_t *im = rn_tensor_data(rgb);
    uint8_t *d = rn_tensor_data(*out);
    memset(d, 255, (size_t)(h * ow * 3));
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++) {
        const uint8_t *p = im + 3 * (y * w + x);
        uint8_t *row = d + 3 * (y * ow);
        uint8_t *p0 = row + 3 * x, *p1 = row + 3 * (w + gap + x), *p2 = row + 3 * (2 * (w + gap) + x),
                *p3 = row + 3 * (3 * (w + gap) + x);
        const uint8_t *cm = lut[rn_colormap_index(hv[y * w + x], lo, hi)];
        uint8_t g = gm[y * w + x] ? 255 : 0;
        for (int k = 0; k < 3; k++) {
          p0[k] = p[k];
          p1[k] = g;
          p2[k] = (uint8_t)lround((1.0 - o.heat_alpha) * p[k] + o.heat_alpha * cm[k]);
          p3[k] = p[k];
        }
        if (gt && on_contour(gm, h, w, y, x)) { p3[0] = 0; p3[1] = 255; p3[2] = 0; }
        if (on_contour(pm, h, w, y, x)) { p3[0] = 255; p3[1] = 0; p3[2] = 0; }
      }
  }
  rn_tensor_release(rgb);
  rn_tensor_release(hm);
  free(gm);
  free(pm);
  if (st != RN_OK) { rn_tensor_release(*out); *out = NULL; }
  return st;
}

rn_status rn_image_write_overlay(const char *path, const rn_tensor *img, const rn_tensor *gt, const rn_tensor *heat,
                                 const rn_overlay_opts *opts) {
  rn_tensor *fig = NULL;
  RN_TRY(rn_image_overlay(&fig, img, gt, heat, opts));
  rn_status st = rn_image_write_png(path, fig);
  rn_tensor_release(fig);
  return st;
}
