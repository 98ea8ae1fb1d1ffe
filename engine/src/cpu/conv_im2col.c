/* conv_im2col.c - convolution as im2col/col2im around OpenBLAS sgemm.
 *
 * Work is cut into items (image, group, block of output positions); each OpenMP thread unfolds its block
 * into a private column buffer small enough to stay in cache and multiplies it on the calling thread
 * (OpenBLAS is single-threaded, see gemm.c). 1x1 stride-1 convolutions need no unfolding at all.
 */
#include <omp.h>

#include "conv_impl.h"

/* Output positions per block: the column buffer [K, len] aims at ~1 MiB (L2); at least 128 columns keep
 * the gemm efficient, and blocks are multiples of 16. */
static int64_t block_len(int64_t K, int64_t ohw) {
  int64_t len = ((int64_t)1 << 18) / (K > 0 ? K : 1);
  if (len < 128) len = 128;
  len = (len + 15) / 16 * 16;
  return len < ohw ? len : ohw;
}

static bool is_pointwise(const rn_conv_geom *g) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0 && g->oh == g->h &&
         g->ow == g->w;
}

/* For kernel column offset `off` (= j*dw - pw) the output columns ox in [*lo, *hi) read inside [0, w). */
static void valid_cols(int64_t off, int64_t s, int64_t w, int64_t ow, int64_t *lo, int64_t *hi) {
  int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;            /* first ox with ox*s + off >= 0 */
  int64_t b = w - off <= 0 ? 0 : (w - off - 1) / s + 1;      /* first ox with ox*s + off >= w */
  *lo = a < ow ? a : ow;
  *hi = b < ow ? (b > *lo ? b : *lo) : ow;
}

/* col[r, p - p0] = x[ci, iy, ix] (zero outside) for rows r = (ci, i, j) and output positions p in [p0, p1). */
static void im2col(const rn_conv_geom *g, const float *x, int64_t cg, int64_t p0, int64_t p1, float *col) {
  int64_t len = p1 - p0;
  for (int64_t ci = 0; ci < cg; ci++)
    for (int64_t i = 0; i < g->kh; i++)
      for (int64_t j = 0; j < g->kw; j++) {
        float *dst = col + ((ci * g->kh + i) * g->kw + j) * len;
        const float *plane = x + ci * g->h * g->w;
        int64_t off = j * g->dw - g->pw, lo, hi;
        valid_cols(off, g->sw, g->w, g->ow, &lo, &hi);
        for (int64_t p = p0; p < p1;) {
          int64_t oy = p / g->ow, ox = p % g->ow, run = g->ow - ox < p1 - p ? g->ow - ox : p1 - p;
          int64_t iy = oy * g->sh - g->ph + i * g->dh;
          if (iy < 0 || iy >= g->h) {
            memset(dst, 0, (size_t)run * sizeof *dst);
          } else {
            const float *row = plane + iy * g->w;
            for (int64_t q = 0; q < run; q++) {
              int64_t c = ox + q;
              dst[q] = c >= lo && c < hi ? row[c * g->sw + off] : 0.0f;
            }
          }
          dst += run;
          p += run;
        }
      }
}

/* The adjoint of im2col: gx[ci, iy, ix] += col[r, p - p0]. Rows of one channel touch only that channel. */
static void col2im(const rn_conv_geom *g, float *gx, int64_t ci0, int64_t ci1, int64_t p0, int64_t p1,
                   const float *col) {
  int64_t len = p1 - p0;
  for (int64_t ci = ci0; ci < ci1; ci++)
    for (int64_t i = 0; i < g->kh; i++)
      for (int64_t j = 0; j < g->kw; j++) {
        const float *src = col + ((ci * g->kh + i) * g->kw + j) * len;
        float *plane = gx + ci * g->h * g->w;
        int64_t off = j * g->dw - g->pw, lo, hi;
        valid_cols(off, g->sw, g->w, g->ow, &lo, &hi);
        for (int64_t p = p0; p < p1;) {
          int64_t oy = p / g->ow, ox = p % g->ow, run = g->ow - ox < p1 - p ? g->ow - ox : p1 - p;
          int64_t iy = oy * g->sh - g->ph + i * g->dh;
          if (iy >= 0 && iy < g->h) {
            float *row = plane + iy * g->w;
            int64_t a = lo > ox ? lo : ox, b = hi < ox + run ? hi : ox + run;
            for (int64_t c = a; c < b; c++) row[c * g->sw + off] += src[c - ox];
          }
          src += run;
          p += run;
        }
      }
}

rn_status rn_conv_im2col_forward(const rn_conv_geom *g, float *y, const float *x, const float *w, const float *bias) {
  rn_cpu_blas_init();
  int64_t cg = g->c / g->g, M = g->o / g->g, K = cg * g->kh * g->kw, ohw = g->oh * g->ow, hw = g->h * g->w;
  bool direct = is_pointwise(g);
  int64_t len = block_len(K, ohw), nb = (ohw + len - 1) / len, items = g->n * g->g * nb;
  int nt = omp_get_max_threads();
  float *buf = direct ? NULL : rn_cpu_scratch(0, (size_t)nt * K * len * sizeof(float));
  if (!direct && !buf) return rn_error(RN_ERR_OOM, "conv2d: out of memory for the im2col buffer");
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t it = 0; it < items; it++) {
    int64_t b = it % nb, gi = it / nb % g->g, n = it / nb / g->g;
    int64_t p0 = b * len, p1 = p0 + len < ohw ? p0 + len : ohw;
    const float *xg = x + (n * g->c + gi * cg) * hw;
    float *yg = y + (n * g->o + gi * M) * ohw;
    const float *wg = w + gi * M * K;
    if (direct) {
      rn_cpu_sgemm1(false, false, M, p1 - p0, K, 1.0f, wg, K, xg + p0, hw, 0.0f, yg + p0, ohw);
    } else {
      float *col = buf + (size_t)omp_get_thread_num() * K * len;
      im2col(g, xg, cg, p0, p1, col);
      rn_cpu_sgemm1(false, false, M, p1 - p0, K, 1.0f, wg, K, col, p1 - p0, 0.0f, yg + p0, ohw);
    }
    if (bias)
      for (int64_t r = 0; r < M; r++) {
        float bv = bias[gi * M + r], *row = yg + r * ohw;
        for (int64_t p = p0; p < p1; p++) row[p] += bv;
      }
  }
  return RN_OK;
}

rn_status rn_conv_im2col_backward_data(const rn_conv_geom *g, float *gx, const float *gy, const float *w) {
  rn_cpu_blas_init();
  int64_t cg = g->c / g->g, M = g->o / g->g, K = cg * g->kh * g->kw, ohw = g->oh * g->ow, hw = g->h * g->w;
  bool direct = is_pointwise(g);
  int64_t len = block_len(K, ohw), nb = (ohw + len - 1) / len, items = g->n * g->g;
  int nt = omp_get_max_threads();
  if (direct) { /* gx[n, g] = W_g^T gy[n, g]: one product per item, split inside when items are few */
    for (int64_t it = 0; it < items; it++) {
      int64_t gi = it % g->g, n = it / g->g;
      rn_cpu_sgemm_par(true, false, K, hw, M, 1.0f, w + gi * M * K, K, gy + (n * g->o + gi * M) * ohw, ohw, 0.0f,
                       gx + (n * g->c + gi * cg) * hw, hw);
    }
    return RN_OK;
  }
  float *buf = rn_cpu_scratch(0, (size_t)nt * K * len * sizeof(float));
  if (!buf) return rn_error(RN_ERR_OOM, "conv2d backward: out of memory for the col2im buffer");
  memset(gx, 0, (size_t)(g->n * g->c * hw) * sizeof *gx);
  if (items >= nt) {
    /* one item per thread: blocks of one item accumulate into the same gx, so they stay on one thread */
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; it++) {
      int64_t gi = it % g->g, n = it / g->g;
      float *col = buf + (size_t)omp_get_thread_num() * K * len;
      for (int64_t b = 0; b < nb; b++) {
        int64_t p0 = b * len, p1 = p0 + len < ohw ? p0 + len : ohw;
        rn_cpu_sgemm1(true, false, K, p1 - p0, M, 1.0f, w + gi * M * K, K, gy + (n * g->o + gi * M) * ohw + p0, ohw,
                      0.0f, col, p1 - p0);
        col2im(g, gx + (n * g->c + gi * cg) * hw, 0, cg, p0, p1, col);
      }
    }
  } else {
    /* few items (a single image): split the product, then the channels of the scatter */
    for (int64_t it = 0; it < items; it++) {
      int64_t gi = it % g->g, n = it / g->g;
      for (int64_t b = 0; b < nb; b++) {
        int64_t p0 = b * len, p1 = p0 + len < ohw ? p0 + len : ohw;
        rn_cpu_sgemm_par(true, false, K, p1 - p0, M, 1.0f, w + gi * M * K, K, gy + (n * g->o + gi * M) * ohw + p0,
                         ohw, 0.0f, buf, p1 - p0);
        float *gxg = gx + (n * g->c + gi * cg) * hw;
#pragma omp parallel for schedule(static)
        for (int64_t ci = 0; ci < cg; ci++) col2im(g, gxg, ci, ci + 1, p0, p1, buf);
      }
    }
  }
  return RN_OK;
}

rn_status rn_conv_im2col_backward_weight(const rn_conv_geom *g, float *gw, const float *gy, const float *x) {
  rn_cpu_blas_init();
  int64_t cg = g->c / g->g, M = g->o / g->g, K = cg * g->kh * g->kw, ohw = g->oh * g->ow, hw = g->h * g->w;
  bool direct = is_pointwise(g);
  int64_t len = block_len(K, ohw), nb = (ohw + len - 1) / len, items = g->n * g->g * nb;
  int nt = omp_get_max_threads();
  int64_t wn = g->o * K; /* weight elements */
  /* each thread sums its items into a private copy of gw; the copies are added at the end */
  float *acc = rn_cpu_scratch(1, (size_t)nt * wn * sizeof(float));
  float *buf = direct ? NULL : rn_cpu_scratch(0, (size_t)nt * K * len * sizeof(float));
  if (!acc || (!direct && !buf)) return rn_error(RN_ERR_OOM, "conv2d backward: out of memory for weight buffers");
  memset(acc, 0, (size_t)nt * wn * sizeof *acc);
#pragma omp parallel for schedule(static) /* static: the same split, hence the same sums, every run */
  for (int64_t it = 0; it < items; it++) {
    int t = omp_get_thread_num();
    int64_t b = it % nb, gi = it / nb % g->g, n = it / nb / g->g;
    int64_t p0 = b * len, p1 = p0 + len < ohw ? p0 + len : ohw;
    const float *xg = x + (n * g->c + gi * cg) * hw, *gyg = gy + (n * g->o + gi * M) * ohw + p0;
    float *dst = acc + (size_t)t * wn + gi * M * K;
    if (direct) {
      rn_cpu_sgemm1(false, true, M, K, p1 - p0, 1.0f, gyg, ohw, xg + p0, hw, 1.0f, dst, K);
    } else {
      float *col = buf + (size_t)t * K * len;
      im2col(g, xg, cg, p0, p1, col);
      rn_cpu_sgemm1(false, true, M, K, p1 - p0, 1.0f, gyg, ohw, col, p1 - p0, 1.0f, dst, K);
    }
  }
#pragma omp parallel for schedule(static)
  for (int64_t e = 0; e < wn; e++) {
    float s = 0.0f;
    for (int t = 0; t < nt; t++) s += acc[(size_t)t * wn + e];
    gw[e] = s;
  }
  return RN_OK;
}
