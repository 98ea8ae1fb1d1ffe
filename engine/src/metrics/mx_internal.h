/* mx_internal.h - helpers shared by the metric files (engine/src/metrics/). */
#ifndef REALNET_MX_INTERNAL_H
#define REALNET_MX_INTERNAL_H

#include <stdint.h>

#include "realnet/metrics.h"

/* A contiguous CPU tensor with t's values: t retained when it already is one, else a copy. */
rn_status mx_host(rn_tensor **out, rn_tensor *t, const char *fn, const char *arg);
/* Element k of a contiguous CPU tensor as a double (any dtype). */
double mx_value(const rn_tensor *t, int64_t k);

/* Host float32 copy of scores/maps (converted from any dtype); refuses NaN and inf naming how many. */
rn_status mx_scores(rn_tensor **out, rn_tensor *t, const char *fn, const char *arg);
/* Binary 0/1 bytes of labels/masks (> 0 is positive); refuses NaN. *out is malloc'ed (caller frees). */
rn_status mx_binary(uint8_t **out, rn_tensor *t, const char *fn, const char *arg);

/* N, H, W of maps ([H,W], [N,H,W] or [N,1,H,W]); masks must give the same. */
rn_status mx_geometry(int64_t *n, int64_t *h, int64_t *w, rn_tensor *maps, rn_tensor *masks, const char *fn);

/* Sort key of a finite float: unsigned order equals float order, -0 and +0 share one key. */
static inline uint32_t mx_key(float f) {
  union { float f; uint32_t u; } v;
  v.f = f == 0.0f ? 0.0f : f;
  return (v.u & 0x80000000u) ? ~v.u : (v.u | 0x80000000u);
}
static inline float mx_unkey(uint32_t k) {
  union { float f; uint32_t u; } v;
  v.u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  return v.f;
}
static inline uint64_t mx_pair(float score, uint32_t payload) { return ((uint64_t)mx_key(score) << 32) | payload; }

/* Sorts pairs ascending by their key (the high 32 bits); the payload order within equal keys is unspecified. */
rn_status mx_sort_pairs(uint64_t *a, int64_t n);

/* One descending walk over sorted pairs: AUROC, F1-max and (when region_w is set) the MVTec PRO integral.
 * A pair is positive when its payload is non-zero; for PRO the payload is a 1-based global region id and
 * region_w[id] = 1 / |region|. */
typedef struct {
  uint64_t pos, neg;          /* class totals (both > 0) */
  const double *region_w;     /* NULL: no PRO */
  int64_t n_regions;
  double limit;               /* FPR integration limit in (0, 1] */
  double auroc, f1, f1_threshold, aupro;  /* results */
} mx_walk;

void mx_walk_sorted(const uint64_t *a, int64_t n, mx_walk *w);

#endif
