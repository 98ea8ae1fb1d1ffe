/* augment.c - the ten DTD augmenters of spec 3.1 (DRAEM's list, after imgaug / PIL semantics) and a
 * cv2-style bilinear resize for source images. */
#include "synth_internal.h"

void sy_resize(uint8_t *dst, int64_t oh, int64_t ow, const uint8_t *src, int64_t h, int64_t w, int64_t c) {
  double sy = (double)h / (double)oh, sx = (double)w / (double)ow;
  for (int64_t y = 0; y < oh; y++) {
    double fy = ((double)y + 0.5) * sy - 0.5; /* half-pixel centres, clamped at the borders as cv2 does */
    int64_t y0 = (int64_t)floor(fy);
    double ay = fy - (double)y0;
    if (y0 < 0) { y0 = 0; ay = 0; }
    if (y0 >= h - 1) { y0 = h - 1; ay = 0; }
    int64_t y1 = y0 + 1 < h ? y0 + 1 : y0;
    for (int64_t x = 0; x < ow; x++) {
      double fx = ((double)x + 0.5) * sx - 0.5;
      int64_t x0 = (int64_t)floor(fx);
      double ax = fx - (double)x0;
      if (x0 < 0) { x0 = 0; ax = 0; }
      if (x0 >= w - 1) { x0 = w - 1; ax = 0; }
      int64_t x1 = x0 + 1 < w ? x0 + 1 : x0;
      for (int64_t k = 0; k < c; k++) {
        double v = (1 - ay) * ((1 - ax) * src[(y0 * w + x0) * c + k] + ax * src[(y0 * w + x1) * c + k]) +
                   ay * ((1 - ax) * src[(y1 * w + x0) * c + k] + ax * src[(y1 * w + x1) * c + k]);
        dst[(y * ow + x) * c + k] = sy_round_u8(v);
      }
    }
  }
}

rn_status rn_synth_resize(rn_tensor **out, const rn_tensor *img, int64_t h, int64_t w) {
  if (!out) return rn_error(RN_ERR_ARG, "synth_resize: out is NULL");
  *out = NULL;
  sy_img v;
  RN_TRY(sy_check_img(img, "synth_resize: image", 0, &v));
  if (h <= 0 || w <= 0) return rn_error(RN_ERR_ARG, "synth_resize: size %lldx%lld must be positive", (long long)h, (long long)w);
  int64_t shape[3] = {h, w, v.c};
  RN_TRY(rn_tensor_empty(out, 3, shape, RN_U8, rn_cpu()));
  sy_resize(rn_tensor_data(*out), h, w, v.p, v.h, v.w, v.c);
  return RN_OK;
}

static void apply_lut(sy_img *im, int ch, const uint8_t lut[256]) { /* ch < 0: every channel */
  for (int64_t k = 0; k < im->h * im->w; k++)
    for (int64_t c = 0; c < im->c; c++)
      if (ch < 0 || c == ch) im->p[k * im->c + c] = lut[im->p[k * im->c + c]];
}

static void gamma_contrast(sy_img *im, rn_rng *g) { /* per channel: 255 (v/255)^gamma */
  for (int c = 0; c < im->c; c++) {
    double gam = sy_uniform(g, 0.5, 2.0);
    uint8_t lut[256];
    for (int v = 0; v < 256; v++) lut[v] = sy_round_u8(255.0 * pow(v / 255.0, gam));
    apply_lut(im, c, lut);
  }
}

/* Y of YCrCb (BT.601 full range, as cv2) scaled and shifted; Cr and Cb kept. */
static void brightness(sy_img *im, rn_rng *g) {
  double mul = sy_uniform(g, 0.8, 1.2), add = sy_uniform(g, -30, 30);
  for (int64_t k = 0; k < im->h * im->w; k++) {
    uint8_t *q = im->p + k * im->c;
    double r = q[0], gg = q[1], b = q[2];
    double y = sy_round_u8(0.299 * r + 0.587 * gg + 0.114 * b);
    double cr = sy_round_u8((r - y) * 0.713 + 128), cb = sy_round_u8((b - y) * 0.564 + 128);
    y = sy_round_u8(y * mul + add);
    q[0] = sy_round_u8(y + 1.403 * (cr - 128));
    q[1] = sy_round_u8(y - 0.714 * (cr - 128) - 0.344 * (cb - 128));
    q[2] = sy_round_u8(y + 1.773 * (cb - 128));
  }
}

/* PIL ImageEnhance.Sharpness: blend of the SMOOTH-filtered image (3x3 kernel 1,1,1/1,5,1/1,1,1 over 13,
 * borders unchanged) and the image with factor U(0, 2); PIL truncates the blend. */
static rn_status sharpness(sy_img *im, rn_rng *g) {
  double f = sy_uniform(g, 0.0, 2.0);
  int64_t n = im->h * im->w * im->c;
  uint8_t *deg = malloc((size_t)n);
  if (!deg) return rn_error(RN_ERR_OOM, "augment: out of memory");
  memcpy(deg, im->p, (size_t)n);
  for (int64_t y = 1; y + 1 < im->h; y++)
    for (int64_t x = 1; x + 1 < im->w; x++)
      for (int64_t c = 0; c < im->c; c++) {
        int s = 0;
        for (int dy = -1; dy <= 1; dy++)
          for (int dx = -1; dx <= 1; dx++) s += im->p[((y + dy) * im->w + x + dx) * im->c + c] * (dx == 0 && dy == 0 ? 5 : 1);
        deg[(y * im->w + x) * im->c + c] = sy_round_u8(s / 13.0);
      }
  for (int64_t k = 0; k < n; k++) im->p[k] = sy_clip_u8(deg[k] + f * ((int)im->p[k] - (int)deg[k]));
  free(deg);
  return RN_OK;
}

/* HSV in cv2's 8-bit convention (H in [0,180), S and V in [0,255]). */
static void rgb_to_hsv(const uint8_t *q, double *h, double *s, double *v) {
  double r = q[0], g = q[1], b = q[2], mx = fmax(r, fmax(g, b)), mn = fmin(r, fmin(g, b)), d = mx - mn;
  *v = mx;
  *s = mx > 0 ? 255.0 * d / mx : 0;
  double hd = 0;
  if (d > 0) {
    if (mx == r) hd = 60.0 * (g - b) / d;
    else if (mx == g) hd = 120.0 + 60.0 * (b - r) / d;
    else hd = 240.0 + 60.0 * (r - g) / d;
    if (hd < 0) hd += 360.0;
  }
  *h = hd / 2.0;
}

static void hsv_to_rgb(double h, double s, double v, uint8_t *q) {
  double hd = fmod(h * 2.0, 360.0), c = v * s / 255.0, hp = hd / 60.0, x = c * (1 - fabs(fmod(hp, 2.0) - 1)), m = v - c;
  double r = 0, g = 0, b = 0;
  if (hp < 1) { r = c; g = x; }
  else if (hp < 2) { r = x; g = c; }
  else if (hp < 3) { g = c; b = x; }
  else if (hp < 4) { g = x; b = c; }
  else if (hp < 5) { r = x; b = c; }
  else { r = c; b = x; }
  q[0] = sy_round_u8(r + m); q[1] = sy_round_u8(g + m); q[2] = sy_round_u8(b + m);
}

/* imgaug AddToHueAndSaturation((-50, 50), per_channel): separate draws for hue and saturation; a hue value
 * of 255 is a half turn (180 degrees, 90 cv2 units). */
static void hue_saturation(sy_img *im, rn_rng *g) {
  double dh = sy_uniform(g, -50, 50), ds = sy_uniform(g, -50, 50), shift = dh * 90.0 / 255.0;
  for (int64_t k = 0; k < im->h * im->w; k++) {
    uint8_t *q = im->p + k * im->c;
    double h, s, v;
    rgb_to_hsv(q, &h, &s, &v);
    h = fmod(h + shift + 180.0, 180.0);
    s = s + ds < 0 ? 0 : s + ds > 255 ? 255 : s + ds;
    hsv_to_rgb(h, s, v, q);
  }
}

static void solarize(sy_img *im, rn_rng *g) { /* p = 0.5: invert values >= t, t in 32..128 */
  int apply = rn_rng_double(g) < 0.5, t = (int)rn_rng_int(g, 32, 128);
  if (!apply) return;
  uint8_t lut[256];
  for (int v = 0; v < 256; v++) lut[v] = v >= t ? (uint8_t)(255 - v) : (uint8_t)v;
  apply_lut(im, -1, lut);
}

static void posterize(sy_img *im, rn_rng *g) { /* keep the top b bits, b in 1..8 */
  int b = (int)rn_rng_int(g, 1, 8);
  uint8_t lut[256];
  for (int v = 0; v < 256; v++) lut[v] = (uint8_t)(v & (0xFF << (8 - b)));
  apply_lut(im, -1, lut);
}

static void invert(sy_img *im) {
  for (int64_t k = 0; k < im->h * im->w * im->c; k++) im->p[k] = (uint8_t)(255 - im->p[k]);
}

static void channel_hist(const sy_img *im, int c, int64_t h[256]) {
  memset(h, 0, 256 * sizeof *h);
  for (int64_t k = 0; k < im->h * im->w; k++) h[im->p[k * im->c + c]]++;
}

/* PIL ImageOps.autocontrast per band: drop `cutoff` percent of the pixels at each end, stretch the rest. */
static void autocontrast(sy_img *im, rn_rng *g) {
  double cutoff = sy_uniform(g, 0, 20);
  for (int c = 0; c < im->c; c++) {
    int64_t h[256], n = 0;
    channel_hist(im, c, h);
    for (int v = 0; v < 256; v++) n += h[v];
    int64_t cut = (int64_t)((double)n * cutoff / 100.0);
    for (int lo = 0; lo < 256 && cut > 0; lo++) { /* remove from the low end */
      if (cut > h[lo]) { cut -= h[lo]; h[lo] = 0; } else { h[lo] -= cut; cut = 0; }
    }
    cut = (int64_t)((double)n * cutoff / 100.0);
    for (int hi = 255; hi >= 0 && cut > 0; hi--) {
      if (cut > h[hi]) { cut -= h[hi]; h[hi] = 0; } else { h[hi] -= cut; cut = 0; }
    }
    int lo = 0, hi = 255;
    while (lo < 256 && h[lo] == 0) lo++;
    while (hi >= 0 && h[hi] == 0) hi--;
    uint8_t lut[256];
    if (hi <= lo) { for (int v = 0; v < 256; v++) lut[v] = (uint8_t)v; }
    else {
      double scale = 255.0 / (hi - lo), off = -lo * scale;
      for (int v = 0; v < 256; v++) { int x = (int)(v * scale + off); lut[v] = (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : x); }
    }
    apply_lut(im, c, lut);
  }
}

/* PIL ImageOps.equalize per band. */
static void equalize(sy_img *im) {
  for (int c = 0; c < im->c; c++) {
    int64_t h[256], total = 0, last = 0;
    channel_hist(im, c, h);
    for (int v = 0; v < 256; v++) if (h[v]) { total += h[v]; last = h[v]; }
    int64_t step = (total - last) / 255;
    if (step == 0) continue;
    uint8_t lut[256];
    int64_t acc = step / 2;
    for (int v = 0; v < 256; v++) { int64_t x = acc / step; lut[v] = (uint8_t)(x > 255 ? 255 : x); acc += h[v]; }
    apply_lut(im, c, lut);
  }
}

static rn_status rotate(sy_img *im, rn_rng *g) {
  double deg = sy_uniform(g, -45, 45);
  int64_t n = im->h * im->w * im->c;
  double *buf = malloc(sizeof(double) * (size_t)(2 * n));
  if (!buf) return rn_error(RN_ERR_OOM, "augment: out of memory");
  for (int64_t k = 0; k < n; k++) buf[k] = im->p[k];
  sy_rotate(buf + n, buf, im->h, im->w, im->c, deg);
  for (int64_t k = 0; k < n; k++) im->p[k] = sy_round_u8(buf[n + k]);
  free(buf);
  return RN_OK;
}

rn_status sy_augment(sy_img *im, int k, rn_rng *g) {
  switch (k) {
  case 0: gamma_contrast(im, g); return RN_OK;
  case 1: brightness(im, g); return RN_OK;
  case 2: return sharpness(im, g);
  case 3: hue_saturation(im, g); return RN_OK;
  case 4: solarize(im, g); return RN_OK;
  case 5: posterize(im, g); return RN_OK;
  case 6: invert(im); return RN_OK;
  case 7: autocontrast(im, g); return RN_OK;
  case 8: equalize(im); return RN_OK;
  case 9: return rotate(im, g);
  default: return rn_error(RN_ERR_ARG, "augment: index %d is not in 0..%d", k, RN_SYNTH_AUGMENTERS - 1);
  }
}

rn_status rn_synth_augment_(rn_tensor *img, int k, rn_rng *g) {
  sy_img v;
  RN_TRY(sy_check_img(img, "augment: image", 0, &v));
  if (v.c != 3) return rn_error(RN_ERR_SHAPE, "augment: image must be RGB [H,W,3], has %lld channels", (long long)v.c);
  if (!g) return rn_error(RN_ERR_ARG, "augment: generator is NULL");
  return sy_augment(&v, k, g);
}
