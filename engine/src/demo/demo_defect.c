/* demo_defect.c - the five defect kinds of the demo dataset.
 *
 * Each defect is built as geometry around the origin, measured (a conservative bounding box including line
 * widths, rims and anti-aliasing), shifted to a uniformly drawn place that keeps the box `margin` pixels off
 * the border, rasterised into a coverage map and only then applied to the image. Coverage below a floor is cut
 * to zero and every kind changes a covered pixel by at least ~1.5/255 in some channel, so the mask (the bytes
 * that differ from the clean render) is the coverage's support: crisp, without speckled edges.
 */
#include <stdlib.h>
#include <string.h>

#include "demo_internal.h"

#define DN_PI 3.14159265358979f
#define MAX_SEGS 4096

typedef struct { float x0, y0, x1, y1, w, inten; } seg;
typedef struct { float x0, y0, x1, y1; } box;

static float dn_normal(rn_rng *g) {
  double u1 = rn_rng_double(g), u2 = rn_rng_double(g);
  return (float)(sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2));
}

static void box_add(box *b, float x, float y, float pad) {
  if (x - pad < b->x0) b->x0 = x - pad;
  if (x + pad > b->x1) b->x1 = x + pad;
  if (y - pad < b->y0) b->y0 = y - pad;
  if (y + pad > b->y1) b->y1 = y + pad;
}

/* A shift (dx, dy) that puts box b inside [m, S-1-m]^2; 0 when the box does not fit. */
static int place(const box *b, int64_t S, int64_t m, rn_rng *g, float *dx, float *dy) {
  float lo = (float)m, hi = (float)(S - 1 - m);
  float wx = b->x1 - b->x0, wy = b->y1 - b->y0;
  if (wx > hi - lo || wy > hi - lo) return 0;
  *dx = lo - b->x0 + dn_rand(g, 0.0f, hi - lo - wx);
  *dy = lo - b->y0 + dn_rand(g, 0.0f, hi - lo - wy);
  return 1;
}

/* Anti-aliased thick segments: cov = max(cov, inten * clamp(w + 0.5 - dist, 0, 1)). */
static void raster_segs(const seg *sg, int n, float dx, float dy, int64_t S, float *cov) {
  for (int i = 0; i < n; i++) {
    float ax = sg[i].x0 + dx, ay = sg[i].y0 + dy, bx = sg[i].x1 + dx, by = sg[i].y1 + dy, w = sg[i].w;
    float vx = bx - ax, vy = by - ay, l2 = vx * vx + vy * vy;
    int64_t x0 = (int64_t)floorf(fminf(ax, bx) - w - 1), x1 = (int64_t)ceilf(fmaxf(ax, bx) + w + 1);
    int64_t y0 = (int64_t)floorf(fminf(ay, by) - w - 1), y1 = (int64_t)ceilf(fmaxf(ay, by) + w + 1);
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    for (int64_t y = y0; y <= y1 && y < S; y++)
      for (int64_t x = x0; x <= x1 && x < S; x++) {
        float px = (float)x - ax, py = (float)y - ay;
        float t = l2 > 0 ? dn_clampf((px * vx + py * vy) / l2, 0.0f, 1.0f) : 0.0f;
        float ex = px - t * vx, ey = py - t * vy;
        float c = sg[i].inten * dn_clampf(w + 0.5f - sqrtf(ex * ex + ey * ey), 0.0f, 1.0f);
        if (c > cov[y * S + x]) cov[y * S + x] = c;
      }
  }
}

static box segs_box(const seg *sg, int n) {
  box b = {1e30f, 1e30f, -1e30f, -1e30f};
  for (int i = 0; i < n; i++) {
    box_add(&b, sg[i].x0, sg[i].y0, sg[i].w + 1.5f);
    box_add(&b, sg[i].x1, sg[i].y1, sg[i].w + 1.5f);
  }
  return b;
}

/* A smooth curve of slowly varying curvature, tapered at both ends. */
static int make_scratch(const dn_style *s, rn_rng *g, float scale, seg *sg) {
  float k = s->k, len = dn_rand(g, 35.0f, 100.0f) * k * scale;
  float step = fmaxf(0.7f, 1.2f * k), w = fmaxf(0.3f, dn_rand(g, 0.45f, 1.0f) * fmaxf(k, 0.7f));
  int n = (int)fminf((float)MAX_SEGS, fmaxf(6.0f, len / step));
  float ang = dn_rand(g, 0.0f, 2 * DN_PI), bend = dn_rand(g, -1.3f, 1.3f), wob = dn_rand(g, 0.0f, 0.4f);
  float o = dn_rand(g, 0.0f, 400.0f), x = 0, y = 0;
  for (int i = 0; i < n; i++) {
    float t = ((float)i + 0.5f) / (float)n;
    float a = ang + bend * t + wob * dn_noise(s->table, t * 4.0f + o, o);
    sg[i].x0 = x; sg[i].y0 = y;
    x += step * cosf(a); y += step * sinf(a);
    sg[i].x1 = x; sg[i].y1 = y;
    sg[i].w = w * (0.8f + 0.4f * dn_smooth(0.0f, 0.3f, t) * dn_smooth(0.0f, 0.3f, 1.0f - t));
    float taper = dn_smooth(0.0f, 0.12f, t) * dn_smooth(0.0f, 0.12f, 1.0f - t);
    sg[i].inten = (0.35f + 0.65f * taper) * (0.8f + 0.2f * dn_noise(s->table, t * 9.0f + o, o + 50.0f));
  }
  return n;
}

/* A branching random walk: the main line tapers; side branches split off now and then. */
static int make_crack(const dn_style *s, rn_rng *g, float scale, seg *sg) {
  typedef struct { float x, y, a, len, total, w; int depth; } arm;
  arm stack[64];
  int top = 0, n = 0;
  float k = s->k, step = fmaxf(0.6f, 1.0f * k);
  stack[top++] = (arm){0, 0, dn_rand(g, 0.0f, 2 * DN_PI), 0, dn_rand(g, 30.0f, 75.0f) * k * scale,
                       fmaxf(0.35f, dn_rand(g, 0.45f, 0.85f) * fmaxf(k, 0.6f)), 0};
  while (top > 0 && n < MAX_SEGS) {
    arm r = stack[--top];
    while (r.len < r.total && n < MAX_SEGS) {
      r.a += 0.22f * dn_normal(g);
      float nx = r.x + step * cosf(r.a), ny = r.y + step * sinf(r.a), f = 1.0f - r.len / r.total;
      sg[n++] = (seg){r.x, r.y, nx, ny, r.w * (0.45f + 0.55f * f), 0.7f + 0.3f * f};
      r.x = nx; r.y = ny; r.len += step;
      if (r.depth < 2 && top < 63 && rn_rng_double(g) < 0.018 * (double)step / (r.depth + 1)) {
        float side = rn_rng_int(g, 0, 1) ? 1.0f : -1.0f;
        stack[top++] = (arm){r.x, r.y, r.a + side * dn_rand(g, 0.5f, 1.1f), 0,
                             (r.total - r.len) * dn_rand(g, 0.3f, 0.6f) + 2 * step, r.w * 0.75f, r.depth + 1};
      }
    }
  }
  return n;
}

/* Radius of an irregular blob at angle phi: noise sampled on a circle, so it closes smoothly. */
static float blob_r(const dn_style *s, float r, float amp, float o, float dx, float dy) {
  float d = sqrtf(dx * dx + dy * dy);
  float cx = d > 0 ? dx / d : 1.0f, cy = d > 0 ? dy / d : 0.0f;
  return r * (1.0f + amp * dn_noise(s->table, 1.6f * cx + o, 1.6f * cy + o * 0.7f));
}

static void apply_line(float *rgb, const float *cov, int64_t S, float delta, int mult) {
  for (int64_t i = 0; i < S * S; i++) {
    float c = cov[i];
    if (c <= 0) continue;
    for (int k = 0; k < 3; k++) rgb[i * 3 + k] = mult ? rgb[i * 3 + k] * (1.0f - delta * c) : rgb[i * 3 + k] + delta * c;
  }
}

/* Cuts faint coverage to zero (a covered pixel must change visibly) and reports whether anything is left. */
static int64_t floor_cov(float *cov, int64_t S, float lo) {
  int64_t n = 0;
  for (int64_t i = 0; i < S * S; i++) {
    if (cov[i] < lo) cov[i] = 0;
    else n++;
  }
  return n;
}

static rn_status lines(const dn_style *s, rn_demo_kind kind, rn_rng *g, int64_t m, float *rgb, float *cov) {
  int64_t S = s->size;
  seg *sg = malloc(sizeof(seg) * MAX_SEGS);
  if (!sg) return rn_error(RN_ERR_OOM, "make-demo-data: out of memory");
  float scale = 1.0f, dx = 0, dy = 0;
  int n = 0;
  for (int tries = 0;; tries++, scale *= 0.8f) {
    n = kind == RN_DEMO_SCRATCH ? make_scratch(s, g, scale, sg) : make_crack(s, g, scale, sg);
    box b = segs_box(sg, n);
    if (place(&b, S, m, g, &dx, &dy)) break;
  }
  raster_segs(sg, n, dx, dy, S, cov);
  free(sg);
  if (kind == RN_DEMO_SCRATCH) {
    floor_cov(cov, S, 0.2f);
    float delta = dn_rand(g, 0.07f, 0.16f) * (rn_rng_double(g) < 0.6 ? 1.0f : -1.0f);
    apply_line(rgb, cov, S, delta, 0);
  } else {
    floor_cov(cov, S, 0.25f);
    apply_line(rgb, cov, S, dn_rand(g, 0.35f, 0.6f), 1);
  }
  return RN_OK;
}

/* Soft blob, dark (a stain) or bright (a polished spot). */
static void spot(const dn_style *s, rn_rng *g, int64_t m, float *rgb, float *cov) {
  int64_t S = s->size;
  float r = fmaxf(2.5f, dn_rand(g, 4.0f, 11.0f) * s->k), o = dn_rand(g, 0.0f, 400.0f), dx = 0, dy = 0;
  for (;; r *= 0.8f) {
    box b = {-1.35f * r - 1, -1.35f * r - 1, 1.35f * r + 1, 1.35f * r + 1};
    if (place(&b, S, m, g, &dx, &dy)) break;
  }
  float dark = rn_rng_double(g) < 0.7 ? -1.0f : 1.0f, delta = dn_rand(g, 0.05f, 0.12f);
  float tint[3] = {1.0f, 1.0f, 1.0f};
  if (dark < 0) { tint[1] = 1.05f; tint[2] = 1.15f; } /* stains lean brown */
  int64_t x0 = (int64_t)floorf(dx - 1.35f * r - 1), x1 = (int64_t)ceilf(dx + 1.35f * r + 1);
  int64_t y0 = (int64_t)floorf(dy - 1.35f * r - 1), y1 = (int64_t)ceilf(dy + 1.35f * r + 1);
  for (int64_t y = y0; y <= y1; y++)
    for (int64_t x = x0; x <= x1; x++) {
      float px = (float)x - dx, py = (float)y - dy;
      float d = sqrtf(px * px + py * py) / blob_r(s, r, 0.25f, o, px, py);
      float c = 1.0f - dn_smooth(0.3f, 1.0f, d);
      if (c < 0.12f) continue;
      cov[y * S + x] = c;
      for (int k = 0; k < 3; k++) rgb[(y * S + x) * 3 + k] += dark * delta * tint[k] * c;
    }
}

/* A hole: the under-layer shows through (dark, rough, shadowed near the edge) with a raised bright rim. */
static void missing(const dn_style *s, rn_rng *g, int64_t m, float *rgb, float *cov) {
  int64_t S = s->size;
  float k = s->k, r = fmaxf(2.5f, dn_rand(g, 4.5f, 10.0f) * k), o = dn_rand(g, 0.0f, 400.0f);
  float wr = fmaxf(1.0f, dn_rand(g, 1.2f, 2.2f) * fmaxf(k, 0.6f)), dx = 0, dy = 0, ext = 0;
  for (;; r *= 0.8f) {
    ext = 1.25f * r + wr + 1.5f;
    box b = {-ext, -ext, ext, ext};
    if (place(&b, S, m, g, &dx, &dy)) break;
  }
  float depth = dn_rand(g, 0.45f, 0.68f), rim = dn_rand(g, 0.06f, 0.12f);
  int64_t x0 = (int64_t)floorf(dx - ext), x1 = (int64_t)ceilf(dx + ext);
  int64_t y0 = (int64_t)floorf(dy - ext), y1 = (int64_t)ceilf(dy + ext);
  for (int64_t y = y0; y <= y1; y++)
    for (int64_t x = x0; x <= x1; x++) {
      float px = (float)x - dx, py = (float)y - dy;
      float rb = blob_r(s, r, 0.3f, o, px, py), sd = sqrtf(px * px + py * py) - rb;
      float ci = dn_clampf(0.5f - sd, 0.0f, 1.0f);
      float rc = sd > -0.5f && sd < wr ? 1.0f - dn_clampf(sd, 0.0f, wr) / wr : 0.0f;
      if (rc < 0.15f) rc = 0.0f;
      if (ci <= 0.0f && rc <= 0.0f) continue;
      float rough = dn_fbm(s->table, (float)x / fmaxf(1.5f * k, 0.8f) + o, (float)y / fmaxf(1.5f * k, 0.8f), 2);
      float shadow = 0.7f + 0.3f * dn_smooth(0.0f, 0.6f * rb, -sd);
      float *p = rgb + (y * S + x) * 3;
      for (int c = 0; c < 3; c++) {
        float under = (s->base[c] * depth + 0.07f * rough) * shadow;
        p[c] = p[c] + ci * (under - p[c]) + (1.0f - ci) * rim * rc;
      }
      cov[y * S + x] = fmaxf(ci, rc);
    }
}

/* An irregular, semi-transparent coloured smudge (rust, oil, coolant, ink) made of a few Gaussian lobes. */
static void contamination(const dn_style *s, rn_rng *g, int64_t m, float *rgb, float *cov) {
  static const float pal[][3] = {{0.55f, 0.28f, 0.12f}, {0.33f, 0.28f, 0.10f}, {0.28f, 0.52f, 0.33f},
                                 {0.20f, 0.28f, 0.62f}};
  int64_t S = s->size;
  float k = s->k, R = fmaxf(3.0f, dn_rand(g, 10.0f, 20.0f) * k), dx = 0, dy = 0;
  float stretch = dn_rand(g, 1.0f, 1.8f), rot = dn_rand(g, 0.0f, DN_PI), cr = cosf(rot), sr = sinf(rot);
  int lobes = (int)rn_rng_int(g, 4, 8);
  float lx[8], ly[8], ls[8], lw[8], reach = 0;
  for (int i = 0; i < lobes; i++) {
    lx[i] = dn_rand(g, -0.7f, 0.7f) * R;
    ly[i] = dn_rand(g, -0.7f, 0.7f) * R;
    ls[i] = dn_rand(g, 0.2f, 0.45f) * R;
    lw[i] = dn_rand(g, 0.6f, 1.0f);
    /* beyond 3 sigma a lobe adds < 0.012: all lobes together stay under the cut-off */
    reach = fmaxf(reach, sqrtf(lx[i] * lx[i] + ly[i] * ly[i]) + 3.0f * ls[i]);
  }
  float f = 1.0f;
  for (;; f *= 0.8f) {
    float e = reach * stretch * f + 1;
    box b = {-e, -e, e, e};
    if (place(&b, S, m, g, &dx, &dy)) break;
  }
  /* a colour that differs from the surface by >= 0.2 in some channel, so thin parts still show */
  int c0 = (int)rn_rng_int(g, 0, 3), ci = c0;
  for (int t = 0; t < 4; t++, ci = (c0 + t) % 4) {
    float md = 0;
    for (int c = 0; c < 3; c++) md = fmaxf(md, fabsf(pal[ci][c] - s->base[c]));
    if (md >= 0.2f) break;
  }
  float op = dn_rand(g, 0.3f, 0.55f), o = dn_rand(g, 0.0f, 400.0f), e = reach * stretch * f + 1;
  int64_t x0 = (int64_t)floorf(dx - e), x1 = (int64_t)ceilf(dx + e);
  int64_t y0 = (int64_t)floorf(dy - e), y1 = (int64_t)ceilf(dy + e);
  for (int64_t y = y0; y <= y1; y++)
    for (int64_t x = x0; x <= x1; x++) {
      float qx0 = ((float)x - dx) / f, qy0 = ((float)y - dy) / f, fld = 0;
      float px = (cr * qx0 + sr * qy0) / stretch, py = -sr * qx0 + cr * qy0; /* smeared along rot */
      for (int i = 0; i < lobes; i++) {
        float qx = px - lx[i], qy = py - ly[i];
        fld += lw[i] * expf(-(qx * qx + qy * qy) / (2 * ls[i] * ls[i]));
      }
      fld *= 0.7f + 0.5f * dn_fbm(s->table, px / fmaxf(5.0f * k, 1.0f) + o, py / fmaxf(5.0f * k, 1.0f) + o, 3);
      float sh = dn_smooth(0.2f, 0.8f, fld);
      if (sh < 0.12f) continue;
      float a = op * powf(sh, 0.8f);
      float *p = rgb + (y * S + x) * 3;
      for (int c = 0; c < 3; c++) p[c] += a * (pal[ci][c] - p[c]);
      cov[y * S + x] = a;
    }
}

rn_status dn_apply_defect(const dn_style *s, const dn_view *v, rn_demo_kind kind, rn_rng *g, float *rgb, float *cov) {
  (void)v;
  int64_t m = rn_demo_margin(s->size);
  switch (kind) {
  case RN_DEMO_SCRATCH:
  case RN_DEMO_CRACK: return lines(s, kind, g, m, rgb, cov);
  case RN_DEMO_SPOT: spot(s, g, m, rgb, cov); return RN_OK;
  case RN_DEMO_MISSING: missing(s, g, m, rgb, cov); return RN_OK;
  case RN_DEMO_CONTAMINATION: contamination(s, g, m, rgb, cov); return RN_OK;
  default: return rn_error(RN_ERR_ARG, "make-demo-data: kind %d is not a defect", (int)kind);
  }
}
