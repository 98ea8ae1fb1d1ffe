/* demo_surface.c - the defect-free surfaces of the demo dataset: value noise, per-dataset style, per-image
 * view (shift, rotation, lighting) and the three textures (brushed metal, plain-weave fabric, glazed tile). */
#include <stdlib.h>

#include "demo_internal.h"

#define DN_PI 3.14159265358979f

uint64_t dn_image_stream(int test, rn_demo_kind kind, int64_t index, int purpose) {
  /* 1 split bit, 4 kind bits, 40 index bits, 4 purpose bits: disjoint from DN_STREAM_STYLE (bit 62) */
  uint64_t id = ((uint64_t)(test != 0) << 44) | ((uint64_t)kind << 40) | ((uint64_t)index & 0xFFFFFFFFFFull);
  return (id << 4) | (uint64_t)purpose;
}

static inline float lat(const float *t, int64_t i, int64_t j) {
  return t[((j & (DN_TABLE - 1)) * DN_TABLE) + (i & (DN_TABLE - 1))];
}

float dn_noise(const float *t, float u, float v) {
  float fu = floorf(u), fv = floorf(v);
  int64_t i = (int64_t)fu, j = (int64_t)fv;
  float a = u - fu, b = v - fv;
  a = a * a * a * (a * (a * 6.0f - 15.0f) + 10.0f); /* quintic fade: no grid creases */
  b = b * b * b * (b * (b * 6.0f - 15.0f) + 10.0f);
  float top = lat(t, i, j) + a * (lat(t, i + 1, j) - lat(t, i, j));
  float bot = lat(t, i, j + 1) + a * (lat(t, i + 1, j + 1) - lat(t, i, j + 1));
  return top + b * (bot - top);
}

float dn_fbm(const float *t, float u, float v, int octaves) {
  float sum = 0.0f, amp = 1.0f, norm = 0.0f;
  for (int o = 0; o < octaves; o++) {
    sum += amp * dn_noise(t, u + 37.1f * (float)o, v + 71.3f * (float)o);
    norm += amp;
    u *= 2.0f; v *= 2.0f; amp *= 0.5f;
  }
  return sum / norm * 1.6f; /* value noise rarely reaches its bounds: stretch back towards [-1,1] */
}

/* Colour choices per texture: a small palette so a seed changes the look, not the physics. */
static void pick(rn_rng *g, const float (*pal)[6], int n, float base[3], float alt[3]) {
  int c = (int)rn_rng_int(g, 0, n - 1);
  for (int k = 0; k < 3; k++) {
    float jit = dn_rand(g, -0.02f, 0.02f);
    base[k] = pal[c][k] + jit;
    alt[k] = pal[c][3 + k] + jit;
  }
}

rn_status dn_style_init(dn_style *s, uint64_t seed, rn_demo_texture texture, int64_t size) {
  static const float metal[][6] = {{0.52f, 0.54f, 0.57f, 0, 0, 0}, {0.58f, 0.57f, 0.55f, 0, 0, 0},
                                   {0.48f, 0.50f, 0.53f, 0, 0, 0}};
  static const float fabric[][6] = {{0.24f, 0.33f, 0.50f, 0.62f, 0.63f, 0.66f}, /* denim: blue warp, pale weft */
                                    {0.70f, 0.62f, 0.48f, 0.66f, 0.58f, 0.45f}, /* canvas */
                                    {0.42f, 0.47f, 0.40f, 0.38f, 0.42f, 0.36f}}; /* olive drab */
  static const float tile[][6] = {{0.80f, 0.77f, 0.70f, 0.42f, 0.41f, 0.39f},  /* cream glaze, grey grout */
                                  {0.56f, 0.64f, 0.68f, 0.36f, 0.37f, 0.38f},  /* blue-grey glaze */
                                  {0.70f, 0.45f, 0.36f, 0.50f, 0.48f, 0.44f}}; /* terracotta */
  s->texture = texture;
  s->seed = seed;
  s->size = size;
  s->k = (float)size / 256.0f;
  s->table = malloc(sizeof(float) * DN_TABLE * DN_TABLE);
  if (!s->table) return rn_error(RN_ERR_OOM, "make-demo-data: out of memory for the noise table");
  for (int64_t i = 0; i < (int64_t)DN_TABLE * DN_TABLE; i += 4) {
    uint32_t w[4];
    rn_philox(seed, (uint64_t)i / 4, DN_STREAM_STYLE + 1, w);
    for (int q = 0; q < 4; q++) s->table[i + q] = 2.0f * rn_u01(w[q]) - 1.0f;
  }
  rn_rng g;
  rn_rng_init(&g, seed, DN_STREAM_STYLE);
  switch (texture) {
  case RN_DEMO_METAL:
    pick(&g, metal, 3, s->base, s->alt);
    s->angle = dn_rand(&g, -0.15f, 0.15f) + (rn_rng_int(&g, 0, 1) ? DN_PI / 2 : 0.0f);
    s->period = 0.0f;
    break;
  case RN_DEMO_FABRIC:
    pick(&g, fabric, 3, s->base, s->alt);
    s->angle = dn_rand(&g, -0.08f, 0.08f);
    s->period = fmaxf(4.0f, dn_rand(&g, 7.0f, 10.0f) * s->k);
    break;
  default:
    pick(&g, tile, 3, s->base, s->alt);
    s->angle = dn_rand(&g, -0.05f, 0.05f);
    s->period = (float)size * dn_rand(&g, 0.34f, 0.44f);
    break;
  }
  s->ca = cosf(s->angle);
  s->sa = sinf(s->angle);
  return RN_OK;
}

void dn_style_free(dn_style *s) {
  free(s->table);
  s->table = NULL;
}

void dn_view_draw(dn_view *v, const dn_style *s, rn_rng *g) {
  float rot = dn_rand(g, -3.0f, 3.0f) * DN_PI / 180.0f;
  v->cx = v->cy = 0.5f * (float)(s->size - 1);
  v->cosr = cosf(rot);
  v->sinr = sinf(rot);
  v->tx = dn_rand(g, -6.0f, 6.0f) * s->k;
  v->ty = dn_rand(g, -6.0f, 6.0f) * s->k;
  v->gx = dn_rand(g, -0.16f, 0.16f);
  v->gy = dn_rand(g, -0.16f, 0.16f);
  v->vig = dn_rand(g, 0.0f, 0.25f);
  v->gain = dn_rand(g, 0.95f, 1.05f);
  v->ox = dn_rand(g, 0.0f, (float)DN_TABLE);
  v->oy = dn_rand(g, 0.0f, (float)DN_TABLE);
}

/* Brushed metal: long streaks along the grain (anisotropic noise), low-frequency mottling. */
static void metal_at(const dn_style *s, const dn_view *v, float sx, float sy, float out[3]) {
  const float *T = s->table;
  float k = s->k, ca = s->ca, sa = s->sa;
  float u = sx * ca + sy * sa, w = -sx * sa + sy * ca;
  float fine = fmaxf(0.9f * k, 0.8f);
  float g = 0.55f * dn_noise(T, u / (90.0f * k) + v->ox, w / fine + v->oy)
          + 0.30f * dn_noise(T, u / (220.0f * k) + v->ox + 131.0f, w / (3.5f * k) + v->oy + 57.0f)
          + 0.15f * dn_noise(T, u / (35.0f * k) + v->ox + 301.0f, w / fmaxf(0.6f * k, 0.7f) + v->oy + 211.0f);
  float m = dn_fbm(T, sx / (80.0f * k) + v->ox + 17.0f, sy / (80.0f * k) + v->oy + 401.0f, 3);
  float d = 0.07f * g + 0.035f * m;
  for (int c = 0; c < 3; c++) out[c] = s->base[c] + d;
}

/* Plain weave: warp threads run along w, weft along u, alternating over/under per cell; gaps are shadowed. */
static void fabric_at(const dn_style *s, const dn_view *v, float sx, float sy, float out[3]) {
  const float *T = s->table;
  float k = s->k, p = s->period, ca = s->ca, sa = s->sa;
  float u = sx * ca + sy * sa, w = -sx * sa + sy * ca;
  u += 0.12f * p * dn_noise(T, w / (40.0f * k) + v->ox, 3.1f + v->oy); /* threads are not perfectly straight */
  w += 0.12f * p * dn_noise(T, 7.7f + v->ox, u / (40.0f * k) + v->oy);
  float fu = u / p, fw = w / p, iu = floorf(fu), iw = floorf(fw), a = fu - iu, b = fw - iw;
  int warp_top = (((int64_t)iu + (int64_t)iw) & 1) == 0;
  float pa = dn_smooth(0.0f, 0.25f, a) * dn_smooth(0.0f, 0.25f, 1.0f - a);
  float pb = dn_smooth(0.0f, 0.25f, b) * dn_smooth(0.0f, 0.25f, 1.0f - b);
  float h, fibre, slub;
  const float *col;
  if (warp_top) {
    h = pa * (0.6f + 0.4f * sinf(DN_PI * b));
    fibre = dn_noise(T, u / fmaxf(0.7f * k, 0.6f) + v->ox, w / (3.0f * k) + v->oy + 90.0f);
    slub = dn_noise(T, iu * 0.37f + v->ox, 0.5f + v->oy + 0.02f * w / k);
    col = s->base;
  } else {
    h = pb * (0.6f + 0.4f * sinf(DN_PI * a));
    fibre = dn_noise(T, u / (3.0f * k) + v->ox + 190.0f, w / fmaxf(0.7f * k, 0.6f) + v->oy);
    slub = dn_noise(T, 0.5f + v->ox + 0.02f * u / k, iw * 0.37f + v->oy + 250.0f);
    col = s->alt;
  }
  float shade = (0.45f + 0.6f * h) * (1.0f + 0.06f * slub);
  for (int c = 0; c < 3; c++) out[c] = col[c] * shade + 0.035f * fibre;
}

/* Glazed tiles with grout: per-tile tone, speckles in the glaze, bevelled edges, rough grout. */
static void tile_at(const dn_style *s, const dn_view *v, float sx, float sy, float out[3]) {
  const float *T = s->table;
  float k = s->k, p = s->period, ca = s->ca, sa = s->sa;
  float u = sx * ca + sy * sa, w = -sx * sa + sy * ca;
  float iu = floorf(u / p), iw = floorf(w / p), a = u - iu * p, b = w - iw * p;
  float e = fminf(fminf(a, p - a), fminf(b, p - b));
  float gw = fmaxf(1.2f, 2.0f * k);
  float glaze = dn_smooth(gw - 0.5f, gw + 0.5f, e);
  float tone = 0.05f * dn_noise(T, iu * 0.61f + 5.0f, iw * 0.61f + 9.0f);
  float sp = dn_noise(T, sx / fmaxf(1.4f * k, 0.9f) + v->ox, sy / fmaxf(1.4f * k, 0.9f) + v->oy);
  float speck = -0.10f * dn_smooth(0.55f, 0.85f, sp) + 0.05f * dn_smooth(0.6f, 0.9f, -sp);
  float mott = 0.03f * dn_fbm(T, sx / (60.0f * k) + v->ox + 77.0f, sy / (60.0f * k) + v->oy + 33.0f, 3);
  float bevel = 0.82f + 0.18f * dn_smooth(gw, gw + 3.0f * k, e);
  float grout = 0.10f * dn_noise(T, sx / fmaxf(k, 0.7f) + v->ox + 500.0f, sy / fmaxf(k, 0.7f) + v->oy + 60.0f);
  for (int c = 0; c < 3; c++) {
    float t = (s->base[c] * (1.0f + tone) + speck + mott) * bevel;
    float gcol = s->alt[c] * (1.0f + grout);
    out[c] = gcol + glaze * (t - gcol);
  }
}

void dn_render_surface(const dn_style *s, const dn_view *v, float *rgb) {
  int64_t S = s->size;
  float inv = 1.0f / (float)S;
  for (int64_t y = 0; y < S; y++) {
    for (int64_t x = 0; x < S; x++) {
      float dx = (float)x - v->cx, dy = (float)y - v->cy;
      float sx = v->cosr * dx - v->sinr * dy + v->cx + v->tx;
      float sy = v->sinr * dx + v->cosr * dy + v->cy + v->ty;
      float c[3];
      if (s->texture == RN_DEMO_METAL) metal_at(s, v, sx, sy, c);
      else if (s->texture == RN_DEMO_FABRIC) fabric_at(s, v, sx, sy, c);
      else tile_at(s, v, sx, sy, c);
      float xn = (float)x * inv - 0.5f, yn = (float)y * inv - 0.5f;
      float light = v->gain * (1.0f + v->gx * xn + v->gy * yn - v->vig * (xn * xn + yn * yn));
      float *o = rgb + (y * S + x) * 3;
      for (int k = 0; k < 3; k++) o[k] = c[k] * light;
    }
  }
}

/* Dust specks and, on metal, faint full-length grain streaks: normal variation a detector must accept. */
void dn_render_benign(const dn_style *s, const dn_view *v, rn_rng *g, float *rgb) {
  int64_t S = s->size;
  int specks = (int)rn_rng_int(g, 0, 3);
  for (int i = 0; i < specks; i++) {
    float cx = dn_rand(g, 0.0f, (float)S), cy = dn_rand(g, 0.0f, (float)S);
    float r = fmaxf(0.7f, dn_rand(g, 0.6f, 1.4f) * s->k), amp = dn_rand(g, -0.05f, 0.03f);
    int64_t x0 = (int64_t)floorf(cx - 2 * r), x1 = (int64_t)ceilf(cx + 2 * r);
    int64_t y0 = (int64_t)floorf(cy - 2 * r), y1 = (int64_t)ceilf(cy + 2 * r);
    for (int64_t y = y0 < 0 ? 0 : y0; y <= y1 && y < S; y++)
      for (int64_t x = x0 < 0 ? 0 : x0; x <= x1 && x < S; x++) {
        float d2 = ((float)x - cx) * ((float)x - cx) + ((float)y - cy) * ((float)y - cy);
        float f = amp * expf(-d2 / (2 * r * r));
        for (int c = 0; c < 3; c++) rgb[(y * S + x) * 3 + c] += f;
      }
  }
  if (s->texture != RN_DEMO_METAL) return;
  int streaks = (int)rn_rng_int(g, 0, 2);
  float ang = s->angle + atan2f(v->sinr, v->cosr);
  float nx = -sinf(ang), ny = cosf(ang); /* normal of the grain direction */
  for (int i = 0; i < streaks; i++) {
    float off = dn_rand(g, -0.5f, 0.5f) * (float)S, w = fmaxf(0.6f, dn_rand(g, 0.5f, 1.2f) * s->k);
    float amp = dn_rand(g, -0.03f, 0.025f);
    for (int64_t y = 0; y < S; y++)
      for (int64_t x = 0; x < S; x++) {
        float d = ((float)x - v->cx) * nx + ((float)y - v->cy) * ny - off;
        if (fabsf(d) > 3 * w) continue;
        float f = amp * expf(-d * d / (2 * w * w));
        for (int c = 0; c < 3; c++) rgb[(y * S + x) * 3 + c] += f;
      }
  }
}
