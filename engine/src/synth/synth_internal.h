/* synth_internal.h - helpers shared by the files of engine/src/synth (not installed). */
#ifndef REALNET_SYNTH_INTERNAL_H
#define REALNET_SYNTH_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "realnet/synth.h"

#define SY_PI 3.14159265358979323846

/* A borrowed uint8 image view: h x w x c contiguous bytes. */
typedef struct { int64_t h, w, c; uint8_t *p; } sy_img;

/* Checks t is a contiguous CPU uint8 [H,W,C] (or [H,W] when allow2d, c = 1) and fills *v. */
rn_status sy_check_img(const rn_tensor *t, const char *what, int allow2d, sy_img *v);
/* Checks t is a contiguous CPU uint8 mask [H,W] (or [H,W,1]) of the given size (h, w < 0: any). */
rn_status sy_check_mask(const rn_tensor *t, const char *what, int64_t h, int64_t w, sy_img *v);

static inline uint8_t sy_clip_u8(double v) { return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v; }      /* truncates */
static inline uint8_t sy_round_u8(double v) { return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)(v + 0.5); }
static inline double sy_uniform(rn_rng *g, double lo, double hi) { return lo + (hi - lo) * rn_rng_double(g); }

/* Bilinear rotation of h x w x c doubles about the centre, zero outside (see rn_synth_rotate). */
void sy_rotate(double *dst, const double *src, int64_t h, int64_t w, int64_t c, double degrees);
/* cv2 RGB2GRAY of an RGB (or copy of a 1-channel) image into plane (h*w bytes). */
void sy_gray(const sy_img *im, uint8_t *plane);
/* Perlin mask into m (h*w bytes) drawn from g. */
rn_status sy_perlin_mask(uint8_t *m, rn_rng *g, int64_t h, int64_t w, const rn_perlin_opts *o, rn_perlin_info *info);
/* Validates Perlin options (errors name the field). */
rn_status sy_check_perlin(const rn_perlin_opts *o);
/* Foreground into m (h*w bytes); scratch-free; returns RN_OK or an OOM error. */
rn_status sy_foreground(uint8_t *m, const sy_img *im, const rn_fg_rule *r);
/* Morphology in place on an h x w byte plane. */
rn_status sy_morph(uint8_t *m, int64_t h, int64_t w, rn_morph_op op, int n);
/* Conjugate-gradient Poisson blend of c-channel images in place in dst over mask. */
rn_status sy_poisson(uint8_t *dst, const uint8_t *src, const uint8_t *mask, int64_t h, int64_t w, int64_t c,
                     int max_iters, double tol);
/* cv2-like bilinear resize of h x w x c bytes into oh x ow x c bytes. */
void sy_resize(uint8_t *dst, int64_t oh, int64_t ow, const uint8_t *src, int64_t h, int64_t w, int64_t c);
/* Applies augmenter k to im in place. */
rn_status sy_augment(sy_img *im, int k, rn_rng *g);

#endif
