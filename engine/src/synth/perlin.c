/* perlin.c - Perlin masks (spec 3.2): gradient noise on a random lattice, rotated, thresholded. */
#include "synth_internal.h"

rn_perlin_opts rn_perlin_opts_default(void) {
  rn_perlin_opts o = {0, 6, 0.5, -90.0, 90.0};
  return o;
}

static inline double fade(double t) { return t * t * t * (t * (t * 6 - 15) + 10); }

/* Noise from lattice gradients (cos, sin) given as gx, gy [(rx+1)(ry+1)], row-major over (ci, cj).
 * Integer arithmetic for the cell and fraction keeps sizes that rx does not divide well defined. */
static void noise(double *v, int64_t h, int64_t w, int rx, int ry, const double *gx, const double *gy) {
  int64_t ld = ry + 1;
  for (int64_t i = 0; i < h; i++) {
    int64_t ci = (i * rx) / h;
    double fx = (double)((i * rx) % h) / (double)h, tx = fade(fx);
    for (int64_t j = 0; j < w; j++) {
      int64_t cj = (j * ry) / w;
      double fy = (double)((j * ry) % w) / (double)w, ty = fade(fy);
      int64_t k00 = ci * ld + cj, k10 = k00 + ld, k01 = k00 + 1, k11 = k10 + 1;
      double n00 = gx[k00] * fx + gy[k00] * fy;
      double n10 = gx[k10] * (fx - 1) + gy[k10] * fy;
      double n01 = gx[k01] * fx + gy[k01] * (fy - 1);
      double n11 = gx[k11] * (fx - 1) + gy[k11] * (fy - 1);
      double a = n00 + tx * (n10 - n00), b = n01 + tx * (n11 - n01);
      v[i * w + j] = 1.4142135623730951 * (a + ty * (b - a));
    }
  }
}

rn_status rn_perlin_noise(rn_tensor **out, int64_t h, int64_t w, const rn_tensor *angles) {
  if (!out) return rn_error(RN_ERR_ARG, "perlin_noise: out is NULL");
  *out = NULL;
  if (h <= 0 || w <= 0) return rn_error(RN_ERR_ARG, "perlin_noise: size %lldx%lld must be positive", (long long)h, (long long)w);
  if (!angles || angles->dtype != RN_F32 || angles->ndim != 2 || !rn_tensor_is_contiguous(angles) ||
      rn_tensor_device(angles).type != RN_CPU)
    return rn_error(RN_ERR_SHAPE, "perlin_noise: angles must be a contiguous CPU float32 [rx+1, ry+1] tensor");
  int64_t rx = angles->shape[0] - 1, ry = angles->shape[1] - 1;
  if (rx < 1 || ry < 1 || rx > h || ry > w)
    return rn_error(RN_ERR_SHAPE, "perlin_noise: angles [%lld,%lld] need 1 <= rx <= %lld and 1 <= ry <= %lld",
                    (long long)angles->shape[0], (long long)angles->shape[1], (long long)h, (long long)w);
  int64_t n = (rx + 1) * (ry + 1);
  double *g = malloc(sizeof(double) * (size_t)(2 * n + h * w));
  if (!g) return rn_error(RN_ERR_OOM, "perlin_noise: out of memory");
  const float *a = rn_f32(angles);
  for (int64_t k = 0; k < n; k++) { g[k] = cos((double)a[k]); g[n + k] = sin((double)a[k]); }
  double *v = g + 2 * n;
  noise(v, h, w, (int)rx, (int)ry, g, g + n);
  int64_t shape[2] = {h, w};
  rn_status st = rn_tensor_empty(out, 2, shape, RN_F32, rn_cpu());
  if (st == RN_OK) {
    float *o = rn_f32(*out);
    for (int64_t k = 0; k < h * w; k++) o[k] = (float)v[k];
  }
  free(g);
  return st;
}

void sy_rotate(double *dst, const double *src, int64_t h, int64_t w, int64_t c, double degrees) {
  double th = degrees * SY_PI / 180.0, cs = cos(th), sn = sin(th);
  double cx = (double)(w - 1) / 2, cy = (double)(h - 1) / 2;
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      double dx = (double)x - cx, dy = (double)y - cy;
      double sx = cs * dx + sn * dy + cx, sy = -sn * dx + cs * dy + cy; /* inverse of the forward rotation */
      double fx = floor(sx), fy = floor(sy), ax = sx - fx, ay = sy - fy;
      int64_t x0 = (int64_t)fx, y0 = (int64_t)fy;
      double wt[4] = {(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay};
      int64_t xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
      double *o = dst + (y * w + x) * c;
      for (int64_t k = 0; k < c; k++) o[k] = 0;
      for (int q = 0; q < 4; q++) {
        if (xs[q] < 0 || xs[q] >= w || ys[q] < 0 || ys[q] >= h || wt[q] == 0) continue; /* constant 0 fill */
        const double *s = src + (ys[q] * w + xs[q]) * c;
        for (int64_t k = 0; k < c; k++) o[k] += wt[q] * s[k];
      }
    }
}

rn_status rn_synth_rotate(rn_tensor **out, const rn_tensor *img, double degrees) {
  if (!out) return rn_error(RN_ERR_ARG, "synth_rotate: out is NULL");
  *out = NULL;
  if (!isfinite(degrees)) return rn_error(RN_ERR_ARG, "synth_rotate: angle %g is not finite", degrees);
  if (!img || rn_tensor_device(img).type != RN_CPU || !rn_tensor_is_contiguous(img) ||
      !((img->dtype == RN_F32 && img->ndim == 2) || (img->dtype == RN_U8 && (img->ndim == 2 || img->ndim == 3))))
    return rn_error(RN_ERR_SHAPE, "synth_rotate: image must be a contiguous CPU float32 [H,W] or uint8 [H,W(,C)]");
  int64_t h = img->shape[0], w = img->shape[1], c = img->ndim == 3 ? img->shape[2] : 1, n = h * w * c;
  double *buf = malloc(sizeof(double) * (size_t)(2 * n + 1));
  if (!buf) return rn_error(RN_ERR_OOM, "synth_rotate: out of memory");
  const void *p = rn_tensor_data(img);
  for (int64_t k = 0; k < n; k++) buf[k] = img->dtype == RN_F32 ? ((const float *)p)[k] : ((const uint8_t *)p)[k];
  sy_rotate(buf + n, buf, h, w, c, degrees);
  rn_status st = rn_tensor_empty(out, img->ndim, img->shape, img->dtype, rn_cpu());
  if (st == RN_OK) {
    void *o = rn_tensor_data(*out);
    for (int64_t k = 0; k < n; k++) {
      if (img->dtype == RN_F32) ((float *)o)[k] = (float)buf[n + k];
      else ((uint8_t *)o)[k] = sy_round_u8(buf[n + k]);
    }
  }
  free(buf);
  return st;
}

/* Draw order is part of the contract (synth.h): scales, lattice angles (counter-indexed, so they could be
 * drawn in parallel), rotation. */
rn_status sy_perlin_mask(uint8_t *m, rn_rng *g, int64_t h, int64_t w, const rn_perlin_opts *o, rn_perlin_info *info) {
  int a = (int)rn_rng_int(g, o->min_scale, o->max_scale - 1), b = (int)rn_rng_int(g, o->min_scale, o->max_scale - 1);
  int rx = 1 << a, ry = 1 << b;
  int64_t n = (int64_t)(rx + 1) * (ry + 1);
  double *buf = malloc(sizeof(double) * (size_t)(2 * n + 2 * h * w));
  if (!buf) return rn_error(RN_ERR_OOM, "perlin_mask: out of memory for %lldx%lld", (long long)h, (long long)w);
  for (int64_t k = 0; k < n; k++) {
    uint32_t wd[4];
    rn_philox(g->seed, g->offset + (uint64_t)k, g->stream, wd);
    double ang = 2 * SY_PI * (double)rn_u01(wd[0]);
    buf[k] = cos(ang);
    buf[n + k] = sin(ang);
  }
  g->offset += (uint64_t)n;
  double deg = sy_uniform(g, o->rot_lo, o->rot_hi);
  double *v = buf + 2 * n, *r = v + h * w;
  noise(v, h, w, rx, ry, buf, buf + n);
  sy_rotate(r, v, h, w, 1, deg);
  for (int64_t k = 0; k < h * w; k++) m[k] = r[k] > o->threshold;
  free(buf);
  if (info) { info->rx = rx; info->ry = ry; info->degrees = deg; }
  return RN_OK;
}

rn_status sy_check_perlin(const rn_perlin_opts *o) {
  if (o->min_scale < 0 || o->max_scale <= o->min_scale || o->max_scale > 12)
    return rn_error(RN_ERR_ARG, "perlin: scales [%d, %d) must satisfy 0 <= min < max <= 12", o->min_scale, o->max_scale);
  if (!isfinite(o->threshold) || !isfinite(o->rot_lo) || !isfinite(o->rot_hi) || o->rot_hi < o->rot_lo)
    return rn_error(RN_ERR_ARG, "perlin: threshold %g and rotation range [%g, %g] must be finite with lo <= hi",
                    o->threshold, o->rot_lo, o->rot_hi);
  return RN_OK;
}

rn_status rn_perlin_mask(rn_tensor **out, rn_rng *g, int64_t h, int64_t w, const rn_perlin_opts *opts,
                         rn_perlin_info *info) {
  if (!out) return rn_error(RN_ERR_ARG, "perlin_mask: out is NULL");
  *out = NULL;
  if (!g) return rn_error(RN_ERR_ARG, "perlin_mask: generator is NULL");
  rn_perlin_opts o = opts ? *opts : rn_perlin_opts_default();
  RN_TRY(sy_check_perlin(&o));
  if (h <= 0 || w <= 0 || h > 65536 || w > 65536)
    return rn_error(RN_ERR_ARG, "perlin_mask: size %lldx%lld must be in 1..65536", (long long)h, (long long)w);
  int64_t shape[2] = {h, w};
  RN_TRY(rn_tensor_empty(out, 2, shape, RN_U8, rn_cpu()));
  rn_status st = sy_perlin_mask(rn_tensor_data(*out), g, h, w, &o, info);
  if (st != RN_OK) { rn_tensor_release(*out); *out = NULL; }
  return st;
}
