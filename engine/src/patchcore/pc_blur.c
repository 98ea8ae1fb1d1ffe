/* pc_blur.c - Gaussian smoothing of anomaly maps as scipy.ndimage.gaussian_filter (the paper's code):
 * radius round(4 sigma) (truncate 4.0), weights normalised to sum 1, borders mirrored with the edge sample
 * repeated (scipy's "reflect": d c b a | a b c d | d c b a), applied along W then H. */
#include <omp.h>

#include "pc_internal.h"

/* scipy "reflect" index for any i (period 2n, so radii beyond the image still mirror correctly). */
static inline int64_t reflect(int64_t i, int64_t n) {
  int64_t p = 2 * n, m = i % p;
  if (m < 0) m += p;
  return m < n ? m : p - 1 - m;
}

rn_status rn_pc_gaussian_blur(rn_tensor **out, const rn_tensor *x, float sigma) {
  if (!out) return rn_error(RN_ERR_ARG, "gaussian_blur: NULL output");
  *out = NULL;
  char b[64];
  RN_TRY(rn_check_f32(x, "gaussian_blur: input"));
  if (rn_tensor_device(x).type != RN_CPU) return rn_error(RN_ERR_DEVICE, "gaussian_blur: input must be on the CPU");
  if (x->ndim != 4 || rn_tensor_numel(x) == 0)
    return rn_error(RN_ERR_SHAPE, "gaussian_blur: input must be a non-empty [N,C,H,W], got %s", rn_shape_str(x, b, 64));
  if (!(sigma > 0.0f) || !isfinite(sigma))
    return rn_error(RN_ERR_ARG, "gaussian_blur: sigma must be positive and finite, got %g", (double)sigma);
  int64_t planes = x->shape[0] * x->shape[1], h = x->shape[2], w = x->shape[3];
  int r = (int)(4.0 * (double)sigma + 0.5);
  float *wt = (float *)malloc((size_t)(2 * r + 1) * sizeof *wt);
  float *tmp = (float *)malloc((size_t)(planes * h * w) * sizeof *tmp);
  rn_tensor *xc = NULL, *y = NULL;
  rn_status st = wt && tmp ? RN_OK : rn_error(RN_ERR_OOM, "gaussian_blur: scratch for %s", rn_shape_str(x, b, 64));
  if (st == RN_OK) st = rn_contig_nograd(&xc, x);
  if (st == RN_OK) st = rn_tensor_empty_like(&y, xc);
  if (st == RN_OK) {
    double sum = 0.0;
    for (int i = -r; i <= r; i++) sum += exp(-0.5 * (double)i * i / ((double)sigma * sigma));
    for (int i = -r; i <= r; i++) wt[i + r] = (float)(exp(-0.5 * (double)i * i / ((double)sigma * sigma)) / sum);
    const float *px = rn_f32(xc);
    float *py = rn_f32(y);
#pragma omp parallel for schedule(static) if (planes * h * w * r > 200000)
    for (int64_t row = 0; row < planes * h; row++) { /* along W */
      const float *s = px + row * w;
      float *t = tmp + row * w;
      for (int64_t j = 0; j < w; j++) {
        double acc = 0.0;
        if (j - r >= 0 && j + r < w)
          for (int i = -r; i <= r; i++) acc += (double)wt[i + r] * s[j + i];
        else
          for (int i = -r; i <= r; i++) acc += (double)wt[i + r] * s[reflect(j + i, w)];
        t[j] = (float)acc;
      }
    }
#pragma omp parallel for schedule(static) if (planes * h * w * r > 200000)
    for (int64_t row = 0; row < planes * h; row++) { /* along H */
      int64_t p = row / h, yy = row % h;
      const float *s = tmp + p * h * w;
      float *t = py + row * w;
      for (int64_t j = 0; j < w; j++) t[j] = 0.0f;
      for (int i = -r; i <= r; i++) {
        const float *src = s + reflect(yy + i, h) * w;
        float c = wt[i + r];
        for (int64_t j = 0; j < w; j++) t[j] += c * src[j];
      }
    }
  }
  free(wt);
  free(tmp);
  rn_tensor_release(xc);
  if (st != RN_OK) {
    rn_tensor_release(y);
    return st;
  }
  *out = y;
  return RN_OK;
}
