/* mx_pro_realnet.c - RealNet's PRO variant (realnet.md 10.1), kept only to compare with the paper's numbers.
 *
 * The reference loops over `steps` thresholds and re-labels every image at each one. The same numbers come
 * from one pass: thresholds fall with s, so each pixel turns positive from its first step s* on (a binary
 * search), and FPR_s / PRO_s are cumulative histograms over s*. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mx_internal.h"

/* The smallest s with v > thr[s] (thr non-increasing), or steps when v never exceeds a threshold. */
static int first_step(const float *thr, int steps, float v) {
  if (!(v > thr[steps - 1])) return steps;
  int lo = 0, hi = steps - 1;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (v > thr[mid]) hi = mid; else lo = mid + 1;
  }
  return lo;
}

typedef struct { int64_t y0, y1, x0, x1, area; } bbox;

/* Adds each region's hole-filled pixels (skimage's filled_image: background inside the bounding box that is
 * not 8-connected to the box border) to pro_inc[s*] with weight 1/area. */
static void region_overlaps(const int32_t *lab, const float *sv, int64_t W, const bbox *bb, int64_t cnt,
                            const float *thr, int steps, uint8_t *loc, int32_t *stack, int64_t *hist,
                            double *pro_inc) {
  for (int64_t r = 0; r < cnt; r++) {
    const bbox *b = &bb[r];
    int64_t bh = b->y1 - b->y0 + 1, bw = b->x1 - b->x0 + 1, top = 0;
    for (int64_t y = 0; y < bh; y++)   /* 1 = region, 0 = background, 2 = background reached from the border */
      for (int64_t x = 0; x < bw; x++) loc[y * bw + x] = lab[(b->y0 + y) * W + b->x0 + x] == r + 1;
    for (int64_t y = 0; y < bh; y++)
      for (int64_t x = 0; x < bw; x++)
        if ((y == 0 || x == 0 || y == bh - 1 || x == bw - 1) && loc[y * bw + x] == 0) {
          loc[y * bw + x] = 2;
          stack[top++] = (int32_t)(y * bw + x);
        }
    while (top > 0) {
      int32_t i = stack[--top];
      int64_t y = i / bw, x = i % bw;
      for (int64_t dy = -1; dy <= 1; dy++)
        for (int64_t dx = -1; dx <= 1; dx++) {
          int64_t yy = y + dy, xx = x + dx;
          if (yy < 0 || xx < 0 || yy >= bh || xx >= bw || loc[yy * bw + xx] != 0) continue;
          loc[yy * bw + xx] = 2;
          stack[top++] = (int32_t)(yy * bw + xx);
        }
    }
    memset(hist, 0, (size_t)(steps + 1) * sizeof *hist);
    for (int64_t y = 0; y < bh; y++)
      for (int64_t x = 0; x < bw; x++)
        if (loc[y * bw + x] != 2) hist[first_step(thr, steps, sv[(b->y0 + y) * W + b->x0 + x])]++;
    for (int s = 0; s < steps; s++)
      if (hist[s]) pro_inc[s] += (double)hist[s] / (double)b->area;
  }
}

rn_status rn_metric_pro_realnet(double *pro, rn_tensor *maps, rn_tensor *masks, int steps, double limit) {
  const char *fn = "pro_realnet";
  if (!pro) return rn_error(RN_ERR_ARG, "%s: NULL result pointer", fn);
  if (steps < 2 || steps > 1000000) return rn_error(RN_ERR_ARG, "%s: steps %d must be in [2, 1000000]", fn, steps);
  if (!(limit > 0.0 && limit <= 1.0)) return rn_error(RN_ERR_ARG, "%s: limit %g must be in (0, 1] (an FPR)", fn, limit);
  int64_t N, H, W;
  RN_TRY(mx_geometry(&N, &H, &W, maps, masks, fn));
  rn_tensor *s = NULL;
  uint8_t *m = NULL;
  RN_TRY(mx_scores(&s, maps, fn, "maps"));
  rn_status st = mx_binary(&m, masks, fn, "masks");
  if (st != RN_OK) { rn_tensor_release(s); return st; }
  const float *sv = rn_f32(s);
  int64_t hw = H * W, total = N * hw, R = 0, neg = 0;
  /* Thresholds as numpy 1.x evaluates RealNet's float32 code: (max - min) in float32, then `/ max_step` and
   * `max - step * delta` in float64, and `preds > thred` compares in float32 (the scalar is rounded to float32). */
  float mx = sv[0], mn = sv[0];
  for (int64_t k = 1; k < total; k++) { mx = sv[k] > mx ? sv[k] : mx; mn = sv[k] < mn ? sv[k] : mn; }
  float range = mx - mn;
  double delta = (double)range / (double)steps;
  float *thr = (float *)malloc((size_t)steps * sizeof *thr);
  int64_t *fp_hist = (int64_t *)calloc((size_t)steps + 1, sizeof *fp_hist);
  int64_t *hist = (int64_t *)malloc(((size_t)steps + 1) * sizeof *hist);
  double *pro_inc = (double *)calloc((size_t)steps + 1, sizeof *pro_inc);
  int32_t *lab = (int32_t *)malloc((size_t)hw * sizeof *lab);
  int32_t *stack = (int32_t *)malloc((size_t)hw * sizeof *stack);
  uint8_t *loc = (uint8_t *)malloc((size_t)hw);
  bbox *bb = NULL;
  if (!thr || !fp_hist || !hist || !pro_inc || !lab || !stack || !loc)
    st = rn_error(RN_ERR_OOM, "%s: no memory for %lld pixels", fn, (long long)total);
  for (int k = 0; st == RN_OK && k < steps; k++) {
    volatile double sd = (double)k * delta; /* rounded on its own, as numpy does: no FMA contraction */
    thr[k] = (float)((double)mx - sd);
  }
  for (int64_t i = 0; st == RN_OK && i < N; i++) {
    const uint8_t *mi = m + i * hw;
    const float *si = sv + i * hw;
    for (int64_t k = 0; k < hw; k++)
      if (!mi[k]) { neg++; fp_hist[first_step(thr, steps, si[k])]++; }
    int64_t cnt = 0;
    st = rn_label_regions8(lab, mi, H, W, &cnt);
    if (st != RN_OK || cnt == 0) continue;
    bbox *g = (bbox *)realloc(bb, (size_t)cnt * sizeof *bb);
    if (!g) { st = rn_error(RN_ERR_OOM, "%s: no memory for %lld regions", fn, (long long)cnt); break; }
    bb = g;
    for (int64_t r = 0; r < cnt; r++) bb[r] = (bbox){H, -1, W, -1, 0};
    for (int64_t y = 0; y < H; y++)
      for (int64_t x = 0; x < W; x++) {
        int32_t l = lab[y * W + x];
        if (!l) continue;
        bbox *b = &bb[l - 1];
        if (y < b->y0) b->y0 = y;
        if (y > b->y1) b->y1 = y;
        if (x < b->x0) b->x0 = x;
        if (x > b->x1) b->x1 = x;
        b->area++;
      }
    region_overlaps(lab, si, W, bb, cnt, thr, steps, loc, stack, hist, pro_inc);
    R += cnt;
  }
  if (st == RN_OK && R == 0)
    st = rn_error(RN_ERR_ARG, "%s: the masks hold no defect region (%lld images); PRO is undefined", fn, (long long)N);
  if (st == RN_OK && neg == 0)
    st = rn_error(RN_ERR_ARG, "%s: every pixel of the masks is a defect; the FPR is undefined", fn);
  if (st == RN_OK) {
    /* FPR_s and PRO_s; keep s with FPR_s <= limit, min-max rescale those FPRs, trapezoid (sklearn.metrics.auc) */
    int64_t fp = 0;
    double acc = 0.0, fmin = INFINITY, fmax = -INFINITY;
    double *fx = (double *)malloc((size_t)steps * sizeof *fx), *py = (double *)malloc((size_t)steps * sizeof *py);
    int kept = 0;
    if (!fx || !py) st = rn_error(RN_ERR_OOM, "%s: no memory", fn);
    for (int k = 0; st == RN_OK && k < steps; k++) {
      fp += fp_hist[k];
      acc += pro_inc[k];
      double f = (double)fp / (double)neg;
      if (!(f <= limit)) continue;
      fx[kept] = f;
      py[kept] = acc / (double)R;
      fmin = f < fmin ? f : fmin;
      fmax = f > fmax ? f : fmax;
      kept++;
    }
    if (st == RN_OK) {
      double area = 0.0;
      for (int k = 0; k + 1 < kept; k++)
        area += ((fx[k + 1] - fmin) / (fmax - fmin) - (fx[k] - fmin) / (fmax - fmin)) * (py[k + 1] + py[k]) / 2.0;
      *pro = (kept < 2 || fmax == fmin) ? NAN : area;
    }
    free(fx);
    free(py);
  }
  free(thr); free(fp_hist); free(hist); free(pro_inc); free(lab); free(stack); free(loc); free(bb);
  free(m);
  rn_tensor_release(s);
  return st;
}
