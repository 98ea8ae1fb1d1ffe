/* norm.c - CPU kernels for batch norm and group norm (float32, contiguous, x viewed as [N, C, S]).
 *
 * Sums run in double: a channel of a large batch holds millions of elements, and float accumulation
 * would drift from the reference statistics well before the 1e-4 we test against.
 */
#include "cpu_kernels.h"

/* N, C and S (the product of the dims after the channel dim; 1 for [N, C]) of x. */
static void ncs(const rn_tensor *x, int64_t *n, int64_t *c, int64_t *s) {
  *n = x->shape[0];
  *c = x->shape[1];
  *s = 1;
  for (int d = 2; d < x->ndim; d++) *s *= x->shape[d];
}

static const float *opt_f32(const rn_tensor *t) { return t ? rn_f32(t) : NULL; }

/* ------------------------------------------------------------------ batch norm */

rn_status rn_cpu_batch_norm_stats(rn_tensor *mean, rn_tensor *var, const rn_tensor *x) {
  int64_t N, C, S;
  ncs(x, &N, &C, &S);
  const float *xp = rn_f32(x);
  float *mp = rn_f32(mean), *vp = rn_f32(var);
  double m = (double)(N * S);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; c++) {
    /* two passes: the shifted second pass keeps the variance accurate when |mean| >> std */
    double sum = 0;
    for (int64_t n = 0; n < N; n++) {
      const float *p = xp + (n * C + c) * S;
#pragma omp simd reduction(+ : sum)
      for (int64_t s = 0; s < S; s++) sum += p[s];
    }
    double mu = m > 0 ? sum / m : 0, sq = 0;
    for (int64_t n = 0; n < N; n++) {
      const float *p = xp + (n * C + c) * S;
#pragma omp simd reduction(+ : sq)
      for (int64_t s = 0; s < S; s++) { double d = p[s] - mu; sq += d * d; }
    }
    mp[c] = (float)mu;
    vp[c] = (float)(m > 0 ? sq / m : 0);
  }
  return RN_OK;
}

rn_status rn_cpu_batch_norm_apply(rn_tensor *y, const rn_tensor *x, const rn_tensor *mean, const rn_tensor *invstd,
                                  const rn_tensor *w, const rn_tensor *b) {
  int64_t N, C, S;
  ncs(x, &N, &C, &S);
  const float *xp = rn_f32(x), *mp = rn_f32(mean), *ip = rn_f32(invstd), *wp = opt_f32(w), *bp = opt_f32(b);
  float *yp = rn_f32(y);
#pragma omp parallel for schedule(static)
  for (int64_t nc = 0; nc < N * C; nc++) {
    int64_t c = nc % C;
    /* fold everything into one multiply-add per element */
    float scale = ip[c] * (wp ? wp[c] : 1.0f);
    float shift = (bp ? bp[c] : 0.0f) - mp[c] * scale;
    const float *xs = xp + nc * S;
    float *ys = yp + nc * S;
    for (int64_t s = 0; s < S; s++) ys[s] = xs[s] * scale + shift;
  }
  return RN_OK;
}

/* With xhat = (x - mean) * invstd and y = w * xhat + b:
 *   gb = sum gy, gw = sum gy * xhat (over N and S);
 *   eval (fixed statistics):  gx = gy * w * invstd;
 *   training (statistics of this batch, M = N*S elements a channel):
 *     gx = w * invstd * (gy - gb / M - xhat * gw / M). */
rn_status rn_cpu_batch_norm_backward(rn_tensor *gx, rn_tensor *gw, rn_tensor *gb, const rn_tensor *gy,
                                     const rn_tensor *x, const rn_tensor *mean, const rn_tensor *invstd,
                                     const rn_tensor *w, bool training) {
  int64_t N, C, S;
  ncs(x, &N, &C, &S);
  const float *xp = rn_f32(x), *gyp = rn_f32(gy), *mp = rn_f32(mean), *ip = rn_f32(invstd), *wp = opt_f32(w);
  float *gxp = gx ? rn_f32(gx) : NULL, *gwp = gw ? rn_f32(gw) : NULL, *gbp = gb ? rn_f32(gb) : NULL;
  double m = (double)(N * S);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; c++) {
    double mu = mp[c], is = ip[c], sg = 0, sgx = 0;
    for (int64_t n = 0; n < N; n++) {
      const float *xs = xp + (n * C + c) * S, *gs = gyp + (n * C + c) * S;
#pragma omp simd reduction(+ : sg, sgx)
      for (int64_t s = 0; s < S; s++) { sg += gs[s]; sgx += gs[s] * (xs[s] - mu); }
    }
    sgx *= is; /* sum gy * xhat */
    if (gbp) gbp[c] = (float)sg;
    if (gwp) gwp[c] = (float)sgx;
    if (!gxp) continue;
    /* gx = a * gy + bx * (x - mean) + c0, folded per channel into a float loop that vectorises */
    double k = is * (wp ? wp[c] : 1.0);
    double mg = training ? sg / m : 0, mgx = training ? sgx / m : 0;
    float a = (float)k, bx = (float)(-k * is * mgx), c0 = (float)(-k * mg), muf = mp[c];
    for (int64_t n = 0; n < N; n++) {
      const float *xs = xp + (n * C + c) * S, *gs = gyp + (n * C + c) * S;
      float *out = gxp + (n * C + c) * S;
      for (int64_t s = 0; s < S; s++) out[s] = a * gs[s] + bx * (xs[s] - muf) + c0;
    }
  }
  return RN_OK;
}

/* ------------------------------------------------------------------ group norm */

rn_status rn_cpu_group_norm(rn_tensor *y, rn_tensor *mean, rn_tensor *rstd, const rn_tensor *x, int groups,
                            const rn_tensor *w, const rn_tensor *b, float eps, bool silu) {
  int64_t N, C, S;
  ncs(x, &N, &C, &S);
  int64_t G = groups, cg = C / G, D = cg * S; /* a group is cg whole channels: D contiguous elements */
  const float *xp = rn_f32(x), *wp = opt_f32(w), *bp = opt_f32(b);
  float *yp = rn_f32(y), *mp = rn_f32(mean), *rp = rn_f32(rstd);
#pragma omp parallel for schedule(static)
  for (int64_t ng = 0; ng < N * G; ng++) {
    const float *xs = xp + ng * D;
    double sum = 0, sq = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < D; i++) sum += xs[i];
    double mu = D ? sum / (double)D : 0;
#pragma omp simd reduction(+ : sq)
    for (int64_t i = 0; i < D; i++) { double d = xs[i] - mu; sq += d * d; }
    double r = 1.0 / sqrt((D ? sq / (double)D : 0) + (double)eps);
    mp[ng] = (float)mu;
    rp[ng] = (float)r;
    int64_t g = ng % G;
    float *ys = yp + ng * D;
    for (int64_t j = 0; j < cg; j++) {
      int64_t c = g * cg + j;
      float scale = (float)(r * (wp ? wp[c] : 1.0)), shift = (float)((bp ? bp[c] : 0.0) - mu * scale);
      if (silu) { /* the formula of the SiLU unary kernel, so fused and unfused agree to the bit */
        for (int64_t s = 0; s < S; s++) {
          float v = xs[j * S + s] * scale + shift;
          ys[j * S + s] = v / (1.0f + expf(-v));
        }
      } else {
        for (int64_t s = 0; s < S; s++) ys[j * S + s] = xs[j * S + s] * scale + shift;
      }
    }
  }
  return RN_OK;
}

/* With xhat = (x - mean) * rstd over a group of D elements and dxhat = gy * w[c]:
 *   gx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),
 *   gw[c] = sum over n, s of gy * xhat, gb[c] = sum of gy. */
rn_status rn_cpu_group_norm_backward(rn_tensor *gx, rn_tensor *gw, rn_tensor *gb, const rn_tensor *gy,
                                     const rn_tensor *x, const rn_tensor *mean, const rn_tensor *rstd, int groups,
                                     const rn_tensor *w) {
  int64_t N, C, S;
  ncs(x, &N, &C, &S);
  int64_t G = groups, cg = C / G, D = cg * S;
  const float *xp = rn_f32(x), *gyp = rn_f32(gy), *mp = rn_f32(mean), *rp = rn_f32(rstd), *wp = opt_f32(w);
  if (gx) {
    float *gxp = rn_f32(gx);
#pragma omp parallel for schedule(static)
    for (int64_t ng = 0; ng < N * G; ng++) {
      const float *xs = xp + ng * D, *gs = gyp + ng * D;
      float *out = gxp + ng * D;
      int64_t g = ng % G;
      double mu = mp[ng], r = rp[ng], sd = 0, sdx = 0;
      for (int64_t j = 0; j < cg; j++) {
        double wc = wp ? wp[g * cg + j] : 1.0;
#pragma omp simd reduction(+ : sd, sdx)
        for (int64_t s = 0; s < S; s++) {
          double d = gs[j * S + s] * wc;
          sd += d;
          sdx += d * (xs[j * S + s] - mu) * r;
        }
      }
      double md = D ? sd / (double)D : 0, mdx = D ? sdx / (double)D : 0;
      for (int64_t j = 0; j < cg; j++) {
        /* gx = a * gy + bx * (x - mean) + c0 per channel */
        double wc = wp ? wp[g * cg + j] : 1.0;
        float a = (float)(r * wc), bx = (float)(-r * r * mdx), c0 = (float)(-r * md), muf = mp[ng];
        for (int64_t s = 0; s < S; s++) out[j * S + s] = a * gs[j * S + s] + bx * (xs[j * S + s] - muf) + c0;
      }
    }
  }
  if (gw || gb) {
    float *gwp = gw ? rn_f32(gw) : NULL, *gbp = gb ? rn_f32(gb) : NULL;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < C; c++) {
      int64_t g = c / cg;
      double sg = 0, sgx = 0;
      for (int64_t n = 0; n < N; n++) {
        double mu = mp[n * G + g], r = rp[n * G + g];
        const float *xs = xp + (n * C + c) * S, *gs = gyp + (n * C + c) * S;
#pragma omp simd reduction(+ : sg, sgx)
        for (int64_t s = 0; s < S; s++) { sg += gs[s]; sgx += gs[s] * (xs[s] - mu) * r; }
      }
      if (gwp) gwp[c] = (float)sgx;
      if (gbp) gbp[c] = (float)sg;
    }
  }
  return RN_OK;
}
