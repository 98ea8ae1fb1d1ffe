/* mx_curve.c - exact ROC / PR / PRO curves from one descending walk over sorted (score, payload) pairs:
 * AUROC, F1-max and the MVTec AU-PRO (realnet.md 10.2a), plus the public entry points. */
#include <math.h>
#include <stdlib.h>

#include "mx_internal.h"

/* Streaming form of MVTec's trapezoid(x, y, x_max) over a non-decreasing x: it sums the points with
 * x <= x_max and, when x_max is not itself a sample, adds the partial segment up to the interpolated y. */
typedef struct { double limit, px, py, area; int hit, done; } trap;

static void trap_point(trap *t, double x, double y) {
  if (t->done) return;
  if (x <= t->limit) {
    t->area += 0.5 * (y + t->py) * (x - t->px);
    if (x == t->limit) t->hit = 1;
    t->px = x;
    t->py = y;
    return;
  }
  if (!t->hit) {
    double yi = t->py + (y - t->py) * (t->limit - t->px) / (x - t->px);
    t->area += 0.5 * (yi + t->py) * (t->limit - t->px);
  }
  t->done = 1;
}

void mx_walk_sorted(const uint64_t *a, int64_t n, mx_walk *w) {
  uint64_t tp = 0, fp = 0, s2 = 0; /* s2: twice the Mann-Whitney count (ties count one half) */
  double best = -1.0, thr = 0.0;
  double pro = 0.0, comp = 0.0;    /* Neumaier-compensated running sum of 1/|region| */
  trap t = {w->limit, 0.0, 0.0, 0.0, 0, w->region_w == NULL};  /* starts at the (0, 0) anchor */
  for (int64_t i = n - 1; i >= 0;) {
    uint32_t key = (uint32_t)(a[i] >> 32);
    uint64_t gp = 0, gn = 0;
    int64_t j = i;
    for (; j >= 0 && (uint32_t)(a[j] >> 32) == key; j--) { /* one tie run = one curve point */
      uint32_t p = (uint32_t)a[j];
      if (!p) { gn++; continue; }
      gp++;
      if (w->region_w) {
        double v = w->region_w[p], s = pro + v;
        comp += fabs(pro) >= fabs(v) ? (pro - s) + v : (v - s) + pro;
        pro = s;
      }
    }
    i = j;
    s2 += gn * (2 * tp + gp);
    tp += gp;
    fp += gn;
    double f1 = 2.0 * (double)tp / (double)(tp + fp + w->pos); /* = 2PR/(P+R); exact ties compare equal */
    if (f1 >= best) { best = f1; thr = mx_unkey(key); }     /* >=: the lowest threshold among ties */
    if (!t.done) {
      double x = (double)fp / (double)w->neg, y = (pro + comp) / (double)w->n_regions;
      trap_point(&t, x < 1.0 ? x : 1.0, y < 1.0 ? y : 1.0);
    }
  }
  trap_point(&t, 1.0, 1.0); /* the (1, 1) anchor */
  w->auroc = (double)s2 / (2.0 * (double)w->pos * (double)w->neg);
  w->f1 = best;
  w->f1_threshold = thr;
  w->aupro = w->region_w ? t.area / w->limit : NAN;
}

/* Scores and labels of the same size into sorted pairs (payload 1 = positive); counts the classes. */
static rn_status image_pairs(uint64_t **out, int64_t *n, uint64_t *pos, uint64_t *neg, rn_tensor *scores,
                             rn_tensor *labels, const char *fn) {
  *out = NULL;
  if (!scores) return rn_error(RN_ERR_ARG, "%s: scores is NULL", fn);
  if (!labels) return rn_error(RN_ERR_ARG, "%s: labels is NULL", fn);
  char a[96], b[96];
  if (rn_tensor_numel(scores) != rn_tensor_numel(labels))
    return rn_error(RN_ERR_SHAPE, "%s: labels %s do not match scores %s (need the same number of elements)", fn,
                    rn_shape_str(labels, b, sizeof b), rn_shape_str(scores, a, sizeof a));
  if (rn_tensor_numel(scores) > (int64_t)UINT32_MAX)
    return rn_error(RN_ERR_ARG, "%s: more than 2^32 scores", fn);
  rn_tensor *s = NULL;
  uint8_t *y = NULL;
  RN_TRY(mx_scores(&s, scores, fn, "scores"));
  rn_status st = mx_binary(&y, labels, fn, "labels");
  if (st != RN_OK) { rn_tensor_release(s); return st; }
  *n = rn_tensor_numel(s);
  uint64_t *p = (uint64_t *)malloc((size_t)*n * sizeof *p);
  if (!p) st = rn_error(RN_ERR_OOM, "%s: no memory for %lld scores", fn, (long long)*n);
  *pos = *neg = 0;
  const float *sv = rn_f32(s);
  for (int64_t k = 0; p && k < *n; k++) {
    p[k] = mx_pair(sv[k], y[k]);
    if (y[k]) (*pos)++; else (*neg)++;
  }
  rn_tensor_release(s);
  free(y);
  if (st == RN_OK) st = mx_sort_pairs(p, *n);
  if (st != RN_OK) { free(p); return st; }
  *out = p;
  return RN_OK;
}

rn_status rn_metric_auroc(double *auroc, rn_tensor *scores, rn_tensor *labels) {
  if (!auroc) return rn_error(RN_ERR_ARG, "auroc: NULL result pointer");
  uint64_t *p = NULL, pos, neg;
  int64_t n;
  RN_TRY(image_pairs(&p, &n, &pos, &neg, scores, labels, "auroc"));
  if (!pos || !neg) {
    free(p);
    return rn_error(RN_ERR_ARG, "auroc: only one class present in labels (%llu positive, %llu negative); "
                    "AUROC is undefined", (unsigned long long)pos, (unsigned long long)neg);
  }
  mx_walk w = {pos, neg, NULL, 0, 1.0, 0, 0, 0, 0};
  mx_walk_sorted(p, n, &w);
  free(p);
  *auroc = w.auroc;
  return RN_OK;
}

rn_status rn_metric_f1_max(double *f1, double *threshold, rn_tensor *scores, rn_tensor *labels) {
  if (!f1 || !threshold) return rn_error(RN_ERR_ARG, "f1_max: NULL result pointer");
  uint64_t *p = NULL, pos, neg;
  int64_t n;
  RN_TRY(image_pairs(&p, &n, &pos, &neg, scores, labels, "f1_max"));
  if (!pos) {
    free(p);
    return rn_error(RN_ERR_ARG, "f1_max: labels have no positive (all %llu negative); F1 is undefined",
                    (unsigned long long)neg);
  }
  mx_walk w = {pos, neg ? neg : 1, NULL, 0, 1.0, 0, 0, 0, 0};
  mx_walk_sorted(p, n, &w);
  free(p);
  *f1 = w.f1;
  *threshold = w.f1_threshold;
  return RN_OK;
}

/* The shared pixel pass: label regions per image, pair every pixel with its global region id, sort, walk. */
static rn_status pixel_pass(rn_pixel_metrics *out, rn_tensor *maps, rn_tensor *masks, double limit, const char *fn) {
  int64_t N, H, W;
  RN_TRY(mx_geometry(&N, &H, &W, maps, masks, fn));
  if (!(limit > 0.0 && limit <= 1.0))
    return rn_error(RN_ERR_ARG, "%s: limit %g must be in (0, 1] (an FPR)", fn, limit);
  rn_tensor *s = NULL;
  uint8_t *m = NULL;
  RN_TRY(mx_scores(&s, maps, fn, "maps"));
  rn_status st = mx_binary(&m, masks, fn, "masks");
  if (st != RN_OK) { rn_tensor_release(s); return st; }
  int64_t hw = H * W, total = N * hw, R = 0, cap = 1024, defect_px = 0, defect_img = 0;
  uint64_t *pairs = (uint64_t *)malloc((size_t)total * sizeof *pairs);
  int32_t *lab = (int32_t *)malloc((size_t)hw * sizeof *lab);
  double *rw = (double *)malloc((size_t)(cap + 1) * sizeof *rw); /* sizes, then 1/size; index 0 unused */
  if (!pairs || !lab || !rw) st = rn_error(RN_ERR_OOM, "%s: no memory for %lld pixels", fn, (long long)total);
  const float *sv = rn_f32(s);
  for (int64_t i = 0; st == RN_OK && i < N; i++) {
    int64_t cnt = 0;
    st = rn_label_regions8(lab, m + i * hw, H, W, &cnt);
    if (st != RN_OK) break;
    if (R + cnt > (int64_t)UINT32_MAX - 1) { st = rn_error(RN_ERR_ARG, "%s: too many regions", fn); break; }
    if (R + cnt > cap) {
      while (R + cnt > cap) cap *= 2;
      double *g = (double *)realloc(rw, (size_t)(cap + 1) * sizeof *rw);
      if (!g) { st = rn_error(RN_ERR_OOM, "%s: no memory for %lld regions", fn, (long long)cap); break; }
      rw = g;
    }
    for (int64_t r = 1; r <= cnt; r++) rw[R + r] = 0.0;
    for (int64_t k = 0; k < hw; k++) {
      uint32_t id = lab[k] ? (uint32_t)(R + lab[k]) : 0u;
      if (id) rw[id] += 1.0;
      pairs[i * hw + k] = mx_pair(sv[i * hw + k], id);
    }
    if (cnt) defect_img++;
    R += cnt;
  }
  free(lab);
  free(m);
  rn_tensor_release(s);
  for (int64_t r = 1; st == RN_OK && r <= R; r++) { defect_px += (int64_t)rw[r]; rw[r] = 1.0 / rw[r]; }
  if (st == RN_OK && R == 0)
    st = rn_error(RN_ERR_ARG, "%s: the masks hold no defect pixel (%lld images); pixel AUROC and AU-PRO are "
                  "undefined", fn, (long long)N);
  if (st == RN_OK && defect_px == total)
    st = rn_error(RN_ERR_ARG, "%s: every pixel of the masks is a defect; pixel AUROC and AU-PRO need OK pixels", fn);
  if (st == RN_OK) st = mx_sort_pairs(pairs, total);
  if (st == RN_OK) {
    mx_walk w = {(uint64_t)defect_px, (uint64_t)(total - defect_px), rw, R, limit, 0, 0, 0, 0};
    mx_walk_sorted(pairs, total, &w);
    out->auroc = w.auroc;
    out->aupro = w.aupro;
    out->f1_max = w.f1;
    out->f1_threshold = w.f1_threshold;
    out->n_pixels = total;
    out->n_defect_pixels = defect_px;
    out->n_regions = R;
    out->n_defect_images = defect_img;
  }
  free(pairs);
  free(rw);
  return st;
}

rn_status rn_metric_pixel(rn_pixel_metrics *out, rn_tensor *maps, rn_tensor *masks, double limit) {
  if (!out) return rn_error(RN_ERR_ARG, "pixel metrics: NULL result pointer");
  return pixel_pass(out, maps, masks, limit, "pixel metrics");
}

rn_status rn_metric_aupro(double *aupro, rn_tensor *maps, rn_tensor *masks, double limit) {
  if (!aupro) return rn_error(RN_ERR_ARG, "aupro: NULL result pointer");
  rn_pixel_metrics pm;
  RN_TRY(pixel_pass(&pm, maps, masks, limit, "aupro"));
  *aupro = pm.aupro;
  return RN_OK;
}
