/* demo_internal.h - pieces of the demo-dataset generator (engine/src/demo/), not installed.
 *
 * Rendering works on float RGB planes in [0,1] (interleaved [S,S,3]). A "style" holds what all images of one
 * dataset share (a periodic value-noise table, colours, the grain direction); each image then draws its own
 * lighting, shift and rotation from its Philox stream and samples the surface through them.
 */
#ifndef REALNET_DEMO_INTERNAL_H
#define REALNET_DEMO_INTERNAL_H

#include <math.h>
#include <stdint.h>

#include "realnet/demo_data.h"
#include "realnet/rng.h"

#define DN_TABLE 512 /* value-noise lattice side (periodic) */

typedef struct {
  rn_demo_texture texture;
  uint64_t seed;
  int64_t size;
  float k;                  /* size / 256: geometric scale of every feature */
  float *table;             /* DN_TABLE^2 lattice values in [-1,1] */
  float base[3];            /* surface colour */
  float alt[3];             /* second colour (weft, grout) */
  float angle;              /* grain / weave direction in radians */
  float ca, sa;             /* its cosine and sine */
  float period;             /* weave period or tile side in pixels */
} dn_style;

/* Per-image placement and lighting. */
typedef struct {
  float cx, cy, cosr, sinr, tx, ty; /* surface point = R (p - c) + c + t */
  float gx, gy, vig, gain;          /* lighting: 1 + gx*x' + gy*y' - vig*r'^2, times gain */
  float ox, oy;                     /* noise-table offset: decorrelates images */
} dn_view;

/* Streams: one per image and purpose; the style uses DN_STREAM_STYLE. */
#define DN_STREAM_STYLE ((uint64_t)1 << 62)
uint64_t dn_image_stream(int test, rn_demo_kind kind, int64_t index, int purpose);
enum { DN_PURPOSE_VIEW = 0, DN_PURPOSE_DEFECT = 1, DN_PURPOSE_PIXEL = 2, DN_PURPOSE_BENIGN = 3 };

static inline float dn_rand(rn_rng *g, float lo, float hi) { return lo + (hi - lo) * (float)rn_rng_double(g); }
static inline float dn_clampf(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }
static inline float dn_smooth(float e0, float e1, float x) {
  float t = dn_clampf((x - e0) / (e1 - e0), 0.0f, 1.0f);
  return t * t * (3.0f - 2.0f * t);
}

/* Value noise in [-1,1] at lattice coordinates (u, v), quintic-faded bilinear over the periodic table. */
float dn_noise(const float *table, float u, float v);
/* Octaves of dn_noise (each doubles the frequency, halves the amplitude), normalised to about [-1,1]. */
float dn_fbm(const float *table, float u, float v, int octaves);

rn_status dn_style_init(dn_style *s, uint64_t seed, rn_demo_texture texture, int64_t size);
void dn_style_free(dn_style *s);
void dn_view_draw(dn_view *v, const dn_style *s, rn_rng *g);

/* The defect-free surface of one image into rgb [S,S,3]. */
void dn_render_surface(const dn_style *s, const dn_view *v, float *rgb);
/* Adds a few benign marks every image may carry (faint specks, grain streaks), drawn from g. */
void dn_render_benign(const dn_style *s, const dn_view *v, rn_rng *g, float *rgb);
/* Applies one defect of `kind` to rgb in place, drawn from g; cov (S*S floats, zeroed by the caller) is
 * scratch. Every change stays inside [margin, S-1-margin]. */
rn_status dn_apply_defect(const dn_style *s, const dn_view *v, rn_demo_kind kind, rn_rng *g, float *rgb, float *cov);

#endif
