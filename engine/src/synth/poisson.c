/* poisson.c - Poisson image editing (Perez et al. 2003) for NSA: inside the mask the blended image keeps
 * the source's Laplacian, on the mask's outer boundary it equals the destination. The system is the
 * 5-point Laplacian restricted to the masked pixels (symmetric positive definite whenever some masked pixel
 * touches an unmasked one), solved per channel by conjugate gradients; pixels at the image border simply
 * have fewer neighbours (Neumann). */
#include "synth_internal.h"

typedef struct { int64_t n, *idx, *pix; int *deg; } sy_domain; /* idx: pixel -> unknown or -1 */

static void apply(const sy_domain *d, int64_t h, int64_t w, const double *x, double *y) {
  for (int64_t k = 0; k < d->n; k++) {
    int64_t p = d->pix[k], row = p / w, col = p % w, j;
    double s = d->deg[k] * x[k];
    if (row > 0 && (j = d->idx[p - w]) >= 0) s -= x[j];
    if (row < h - 1 && (j = d->idx[p + w]) >= 0) s -= x[j];
    if (col > 0 && (j = d->idx[p - 1]) >= 0) s -= x[j];
    if (col < w - 1 && (j = d->idx[p + 1]) >= 0) s -= x[j];
    y[k] = s;
  }
}

static double dot(const double *a, const double *b, int64_t n) {
  double s = 0;
  for (int64_t k = 0; k < n; k++) s += a[k] * b[k];
  return s;
}

rn_status sy_poisson(uint8_t *dst, const uint8_t *src, const uint8_t *mask, int64_t h, int64_t w, int64_t c,
                     int max_iters, double tol) {
  int64_t np = h * w, n = 0;
  for (int64_t p = 0; p < np; p++) n += mask[p] != 0;
  if (n == 0) return RN_OK;
  sy_domain d = {n, malloc(sizeof(int64_t) * (size_t)np), malloc(sizeof(int64_t) * (size_t)n), malloc(sizeof(int) * (size_t)n)};
  double *buf = malloc(sizeof(double) * (size_t)(5 * n));
  if (!d.idx || !d.pix || !d.deg || !buf) {
    free(d.idx); free(d.pix); free(d.deg); free(buf);
    return rn_error(RN_ERR_OOM, "poisson: out of memory for %lld unknowns", (long long)n);
  }
  for (int64_t p = 0, k = 0; p < np; p++) {
    d.idx[p] = mask[p] ? k : -1;
    if (mask[p]) d.pix[k++] = p;
  }
  double *x = buf, *b = buf + n, *r = buf + 2 * n, *pv = buf + 3 * n, *ap = buf + 4 * n;
  for (int64_t ch = 0; ch < c; ch++) {
    /* right side: the source's Laplacian plus the fixed destination values on the boundary */
    double off_num = 0, off_den = 0;
    for (int64_t k = 0; k < n; k++) {
      int64_t p = d.pix[k], row = p / w, col = p % w;
      int64_t nb[4] = {row > 0 ? p - w : -1, row < h - 1 ? p + w : -1, col > 0 ? p - 1 : -1, col < w - 1 ? p + 1 : -1};
      double sp = src[p * c + ch], rhs = 0;
      int deg = 0;
      for (int q = 0; q < 4; q++) {
        if (nb[q] < 0) continue;
        deg++;
        rhs += sp - src[nb[q] * c + ch];
        if (!mask[nb[q]]) {
          rhs += dst[nb[q] * c + ch];
          off_num += dst[nb[q] * c + ch] - src[nb[q] * c + ch];
          off_den += 1;
        }
      }
      d.deg[k] = deg;
      b[k] = rhs;
    }
    /* start from the source shifted to the boundary's mean level: few iterations remain */
    double off = off_den > 0 ? off_num / off_den : 0;
    for (int64_t k = 0; k < n; k++) x[k] = src[d.pix[k] * c + ch] + off;
    apply(&d, h, w, x, ap);
    for (int64_t k = 0; k < n; k++) { r[k] = b[k] - ap[k]; pv[k] = r[k]; }
    double rr = dot(r, r, n), bn = sqrt(dot(b, b, n)), stop = tol * (bn > 1 ? bn : 1);
    for (int it = 0; it < max_iters && sqrt(rr) > stop; it++) {
      apply(&d, h, w, pv, ap);
      double pap = dot(pv, ap, n);
      if (!(pap > 0)) break; /* singular direction (mask covers a whole component): keep the iterate */
      double alpha = rr / pap;
      for (int64_t k = 0; k < n; k++) { x[k] += alpha * pv[k]; r[k] -= alpha * ap[k]; }
      double rr2 = dot(r, r, n);
      for (int64_t k = 0; k < n; k++) pv[k] = r[k] + (rr2 / rr) * pv[k];
      rr = rr2;
    }
    for (int64_t k = 0; k < n; k++) dst[d.pix[k] * c + ch] = sy_round_u8(x[k]);
  }
  free(d.idx); free(d.pix); free(d.deg); free(buf);
  return RN_OK;
}

rn_status rn_poisson_blend(rn_tensor **out, const rn_tensor *dst, const rn_tensor *src, const rn_tensor *mask,
                           int max_iters, double tol) {
  if (!out) return rn_error(RN_ERR_ARG, "poisson_blend: out is NULL");
  *out = NULL;
  sy_img vd, vs, vm;
  RN_TRY(sy_check_img(dst, "poisson_blend: dst", 1, &vd));
  RN_TRY(sy_check_img(src, "poisson_blend: src", 1, &vs));
  if (vs.h != vd.h || vs.w != vd.w || vs.c != vd.c) {
    char a[64], b[64];
    return rn_error(RN_ERR_SHAPE, "poisson_blend: src %s does not match dst %s", rn_shape_str(src, a, sizeof a),
                    rn_shape_str(dst, b, sizeof b));
  }
  RN_TRY(sy_check_mask(mask, "poisson_blend: mask", vd.h, vd.w, &vm));
  if (max_iters < 0 || !(tol >= 0) || !isfinite(tol))
    return rn_error(RN_ERR_ARG, "poisson_blend: iterations %d and tolerance %g must be >= 0", max_iters, tol);
  RN_TRY(rn_clone(out, dst));
  rn_status st = sy_poisson(rn_tensor_data(*out), vs.p, vm.p, vd.h, vd.w, vd.c, max_iters, tol);
  if (st != RN_OK) { rn_tensor_release(*out); *out = NULL; }
  return st;
}
