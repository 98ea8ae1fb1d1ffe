/* synth.h - synthetic anomalies for RealNet training: Perlin masks, foreground masks, anomaly sources.
 *
 *   rn_synth_opts o = rn_synth_opts_default(RN_SYNTH_DTD);
 *   o.seed = 7; o.fg = (rn_fg_rule){RN_FG_OTSU, -1, 1, 6, 6};          // MVTec bottle: OTSU, dark, close/open 6
 *   rn_synth *s = NULL;
 *   rn_synth_new(&s, &o, nfiles, files);                                 // DTD image paths
 *   rn_tensor *A = NULL, *M = NULL;
 *   if (rn_synth_batch(s, 0, imgs, NULL, &A, &M, NULL) != RN_OK) puts(rn_last_error());
 *   rn_synth_release(s);
 *
 * Layout: images are contiguous CPU uint8 [H,W,3] RGB (a batch [N,H,W,3]), as spec 2.2 runs the synthesis on
 * the resized uint8 array; masks are uint8 [H,W] (a batch [N,H,W]) holding 0 or 1. Float conversions for
 * the model are rn_synth_to_chw / rn_synth_from_chw.
 *
 * Randomness: every draw comes from rn_rng (Philox). A sample with index k uses the generator
 * (seed, stream k) alone, so a batch gives the same result on any thread count and any batch split.
 * A Perlin mask draws, in order: a = rn_rng_int(min..max-1), b = rn_rng_int(min..max-1), then the
 * (2^a+1)(2^b+1) lattice angles 2*pi*rn_u01(word 0 of Philox(seed, offset + k, stream)) (offset advances
 * by their count), then the rotation lo + (hi-lo)*rn_rng_double.
 *
 * Eq. (3): A = (1-M) I + M (delta S + (1-delta) I), truncated toward zero to uint8, delta ~ U[lo, hi];
 * outside the mask A == I exactly. An empty mask is redrawn up to opts.retries times; if all draws are empty
 * (the foreground is empty or tiny) the foreground restriction is dropped for that sample and counted in
 * `fallbacks`, so no sample ever leaves with an empty mask.
 * Errors: RN_ERR_ARG / RN_ERR_SHAPE name the argument; a source image that cannot be read fails the batch
 * with its path. All functions are reentrant; rn_synth_batch runs samples in parallel (OpenMP).
 */
#ifndef REALNET_SYNTH_H
#define REALNET_SYNTH_H

#include <stdint.h>

#include "rng.h"
#include "status.h"
#include "tensor.h"

/* ---------------------------------------------------------------- Perlin masks (spec 3.2) */

typedef struct {
  int min_scale, max_scale; /* lattice resolution 2^a per axis, a uniform in [min_scale, max_scale): 0, 6 */
  double threshold;         /* mask = rotated noise > threshold: 0.5 */
  double rot_lo, rot_hi;    /* rotation in degrees, U(lo, hi): -90, 90 */
} rn_perlin_opts;

typedef struct { int rx, ry; double degrees; } rn_perlin_info; /* what a mask drew (for tests) */

rn_perlin_opts rn_perlin_opts_default(void);

/* Gradient noise on an H x W grid from lattice angles float32 [rx+1, ry+1] (radians): cell
 * (floor(i rx / H), floor(j ry / W)), fraction (i rx / H mod 1, j ry / W mod 1), quintic fade,
 * value sqrt(2) lerp(lerp(n00, n10, tx), lerp(n01, n11, tx), ty). -> float32 [H,W]. */
rn_status rn_perlin_noise(rn_tensor **out, int64_t h, int64_t w, const rn_tensor *angles);
/* A {0,1} uint8 [H,W] mask drawn from g (see "Randomness" above); info may be NULL. */
rn_status rn_perlin_mask(rn_tensor **out, rn_rng *g, int64_t h, int64_t w, const rn_perlin_opts *opts,
                         rn_perlin_info *info);

/* Rotation by `degrees` about the centre ((W-1)/2, (H-1)/2) as imgaug's Affine: output pixel p samples the
 * input at R(-degrees)(p - c) + c with bilinear weights, neighbours outside the image count as 0.
 * float32 [H,W] -> float32; uint8 [H,W] or [H,W,C] -> uint8 (rounded). */
rn_status rn_synth_rotate(rn_tensor **out, const rn_tensor *img, double degrees);

/* ---------------------------------------------------------------- foreground masks (spec 3.3) */

typedef enum { RN_FG_NONE = 0, RN_FG_OTSU, RN_FG_TRIANGLE } rn_fg_method;

typedef struct {
  rn_fg_method method; /* RN_FG_NONE: every pixel is foreground */
  int channel;         /* -1: gray (cv2 RGB2GRAY, (4899 R + 9617 G + 1868 B + 8192) >> 14); 0, 1, 2: R, G, B */
  int dark;            /* 1: foreground = pixels <= T; 0: pixels > T ("bright") */
  int close, open;     /* closing then opening with an n x n square; 0 skips */
} rn_fg_rule;

/* cv2's threshold selection on uint8 [H,W] (or [H,W,1]): the result is "bright" = value > *t. */
rn_status rn_threshold_otsu(const rn_tensor *plane, int *t);
rn_status rn_threshold_triangle(const rn_tensor *plane, int *t); /* may be -1 or 255 at the extremes */

typedef enum { RN_MORPH_DILATE = 0, RN_MORPH_ERODE, RN_MORPH_CLOSE, RN_MORPH_OPEN } rn_morph_op;

/* Grey morphology of uint8 [H,W] with an n x n square, as skimage/scipy.ndimage (border 'reflect'). Along
 * each axis dilation takes the max over [i - (n-1)/2, i + n/2] and erosion the min over [i - n/2,
 * i + (n-1)/2] (integer division): centred for odd n, mirrored off-centre windows for even n, so that
 * close = erode(dilate(x)) and open = dilate(erode(x)) are not shifted. 1 <= n <= 255. */
rn_status rn_morph(rn_tensor **out, const rn_tensor *mask, rn_morph_op op, int n);

/* {0,1} uint8 [H,W] foreground of an RGB uint8 [H,W,3] image (also [H,W,1] / [H,W] gray) under `rule`. */
rn_status rn_foreground_mask(rn_tensor **out, const rn_tensor *img, const rn_fg_rule *rule);

/* ---------------------------------------------------------------- DTD augmenters (spec 3.1) */

/* Augmenter k (0..9) applied in place to uint8 [H,W,3] with parameters drawn from g:
 * 0 gamma per channel U(0.5, 2); 1 Y of YCrCb times U(0.8, 1.2) plus U(-30, 30); 2 PIL sharpness
 * U(0, 2); 3 hue and saturation plus U(-50, 50) each (hue in imgaug units: 255 = 180 degrees);
 * 4 solarize with p = 0.5, threshold U{32..128}; 5 posterize to U{1..8} bits; 6 invert; 7 PIL
 * autocontrast per channel, cutoff U(0, 20)%; 8 PIL equalize per channel; 9 rotate U(-45, 45) degrees. */
rn_status rn_synth_augment_(rn_tensor *img, int k, rn_rng *g);
#define RN_SYNTH_AUGMENTERS 10

/* cv2.resize INTER_LINEAR semantics (half-pixel centres, no antialiasing, rounded): uint8 [H,W,C]. */
rn_status rn_synth_resize(rn_tensor **out, const rn_tensor *img, int64_t h, int64_t w);

/* ---------------------------------------------------------------- anomaly sources (spec 3.1, eq. 3) */

typedef enum { RN_SYNTH_DTD = 0, RN_SYNTH_SIA, RN_SYNTH_CUTPASTE, RN_SYNTH_NSA } rn_synth_source;

typedef struct {
  rn_synth_source source;
  uint64_t seed;
  double opacity[2];     /* delta ~ U[lo, hi]: DTD 0.2..1, SIA 0.5..1, CutPaste and NSA 1..1 */
  rn_perlin_opts perlin; /* DTD and SIA masks */
  rn_fg_rule fg;         /* default RN_FG_NONE */
  int retries;           /* redraws of an empty mask: 16 */
  int augmenters;        /* DTD: distinct augmenters per source image (0..10): 3 */
  double area[2];        /* CutPaste/NSA patch area as a fraction of the image: 0.02..0.15 */
  double aspect;         /* patch aspect ratio h/w log-uniform in [aspect, 1/aspect]: 0.3 */
  int poisson_iters;     /* NSA: conjugate-gradient iteration cap: 2000 */
  double poisson_tol;    /* NSA: stop when the residual norm falls below tol * the right side's norm: 1e-5 */
} rn_synth_opts;

rn_synth_opts rn_synth_opts_default(rn_synth_source source);
const char *rn_synth_source_name(rn_synth_source s); /* "dtd", "sia", "cutpaste", "nsa" */
rn_status rn_synth_source_parse(const char *name, rn_synth_source *out);

typedef struct rn_synth rn_synth;

/* A synthesiser. DTD and SIA need source image files (copied; read and resized per sample); CutPaste and NSA
 * take nfiles = 0. Errors name the bad option. */
rn_status rn_synth_new(rn_synth **out, const rn_synth_opts *opts, int nfiles, const char *const *files);
void rn_synth_release(rn_synth *s); /* accepts NULL */
const rn_synth_opts *rn_synth_get_opts(const rn_synth *s);

typedef struct { int draws; int fallback; double delta; int file; } rn_synth_info; /* per sample, for tests */

/* One sample with index `index` from the normal image img uint8 [H,W,3]; `other` (NSA only, else NULL) is
 * another normal image uint8 [H',W',3]. *A: uint8 [H,W,3], *M: uint8 [H,W]. info may be NULL. */
rn_status rn_synth_sample(rn_synth *s, uint64_t index, const rn_tensor *img, const rn_tensor *other,
                          rn_tensor **A, rn_tensor **M, rn_synth_info *info);
/* Samples first..first+N-1 from imgs uint8 [N,H,W,3] (others: NSA partners [N,H,W,3], else NULL), in
 * parallel. *A: [N,H,W,3], *M: [N,H,W]; *fallbacks (may be NULL) counts samples whose foreground was dropped. */
rn_status rn_synth_batch(rn_synth *s, uint64_t first, const rn_tensor *imgs, const rn_tensor *others,
                         rn_tensor **A, rn_tensor **M, int *fallbacks);

/* Eq. (3) on one image: img, src uint8 [H,W,3], mask uint8 [H,W] {0,1} -> uint8 [H,W,3]. */
rn_status rn_synth_blend(rn_tensor **out, const rn_tensor *img, const rn_tensor *src, const rn_tensor *mask,
                         double delta);

/* Poisson image editing: inside mask (uint8 [H,W], nonzero) solve lap(u) = lap(src) with u = dst on the
 * mask's outer boundary (4-neighbours; image borders are Neumann), per channel, by conjugate gradients.
 * dst, src uint8 [H,W,C] -> uint8 [H,W,C] (rounded, clipped), equal to dst outside the mask. */
rn_status rn_poisson_blend(rn_tensor **out, const rn_tensor *dst, const rn_tensor *src, const rn_tensor *mask,
                           int max_iters, double tol);

/* ---------------------------------------------------------------- conversions and previews */

/* UNIT: v/255; IMAGENET: (v/255 - mean) / std; RAW: v as is (masks {0,1} -> {0.,1.}). */
typedef enum { RN_SYNTH_UNIT = 0, RN_SYNTH_IMAGENET, RN_SYNTH_RAW } rn_synth_norm;

/* uint8 [N,H,W,C] ([N,H,W] is C = 1) -> float32 [N,C,H,W] (IMAGENET needs C = 3). */
rn_status rn_synth_to_chw(rn_tensor **out, const rn_tensor *u8, rn_synth_norm norm);
/* float32 [N,3,H,W] or [3,H,W] in the given normalisation (UNIT or IMAGENET) -> uint8 [N,H,W,3], rounded
 * and clipped. */
rn_status rn_synth_from_chw(rn_tensor **out, const rn_tensor *x, rn_synth_norm norm);
/* A preview grid: one row per sample, A | M (white on black) | I, `gap` white pixels between panels.
 * A, I uint8 [N,H,W,3], M uint8 [N,H,W] {0,1} -> uint8 [N H + (N-1) gap, 3 W + 2 gap, 3]. */
rn_status rn_synth_grid(rn_tensor **out, const rn_tensor *anomalous, const rn_tensor *mask, const rn_tensor *normal, int gap);

#endif
