/* reduce.c - CPU reductions (any strides), arg-extrema and softmax (contiguous float32). Sums accumulate in
 * double. */
#include <omp.h>

#include "cpu_kernels.h"

/* Splits x's dims into kept (outer) and reduced (inner) groups, each a list of sizes and x strides. */
typedef struct {
  int nk, nr;
  int64_t ksz[RN_MAX_DIMS], kst[RN_MAX_DIMS]; /* kept dims */
  int64_t rsz[RN_MAX_DIMS], rst[RN_MAX_DIMS]; /* reduced dims */
  int64_t n_out, n_red;
} reduce_plan;

static void plan_of(reduce_plan *p, const rn_tensor *x, const bool *reduce) {
  p->nk = p->nr = 0;
  p->n_out = p->n_red = 1;
  for (int d = 0; d < x->ndim; d++) {
    if (reduce[d]) { p->rsz[p->nr] = x->shape[d]; p->rst[p->nr++] = x->stride[d]; p->n_red *= x->shape[d]; }
    else { p->ksz[p->nk] = x->shape[d]; p->kst[p->nk++] = x->stride[d]; p->n_out *= x->shape[d]; }
  }
}

/* x offset of the o-th kept position (row-major over kept dims) */
static int64_t kept_offset(const reduce_plan *p, int64_t o) {
  int64_t off = 0;
  for (int i = p->nk - 1; i >= 0; i--) { off += (o % p->ksz[i]) * p->kst[i]; o /= p->ksz[i]; }
  return off;
}

static inline double combine(rn_reduce_op op, double acc, double v) {
  switch (op) {
    case RN_RED_MAX: return (v > acc || isnan(v)) && !isnan(acc) ? v : acc;
    case RN_RED_MIN: return (v < acc || isnan(v)) && !isnan(acc) ? v : acc;
    default: return acc + v;
  }
}

/* Reduces the n_red elements of one output position; the innermost reduced dim runs as a strided loop. */
static double reduce_one(rn_reduce_op op, const float *x, const reduce_plan *p, int64_t base) {
  bool extremum = op == RN_RED_MAX || op == RN_RED_MIN;
  double acc = extremum ? (p->n_red ? x[base] : NAN) : 0.0;
  if (p->nr == 0) return extremum ? acc : (double)x[base];
  int last = p->nr - 1;
  int64_t inner = p->rsz[last], istride = p->rst[last], outer = p->n_red / (inner ? inner : 1);
  if (!inner) return acc;
  int64_t idx[RN_MAX_DIMS] = {0};
  for (int64_t r = 0; r < outer; r++) {
    int64_t off = base;
    for (int i = 0; i < last; i++) off += idx[i] * p->rst[i];
    const float *row = x + off;
    if (extremum) {
      for (int64_t j = 0; j < inner; j++) acc = combine(op, acc, row[j * istride]);
    } else {
      double s = 0;
      for (int64_t j = 0; j < inner; j++) s += row[j * istride];
      acc += s;
    }
    for (int i = last - 1; i >= 0; i--) { if (++idx[i] < p->rsz[i]) break; idx[i] = 0; }
  }
  return acc;
}

/* When the reduced dims are one run of dims followed by kept dims, x is [O, R, I] with I > 1: accumulate
 * whole contiguous rows of I (vectorisable, cache-friendly) instead of striding through x per output.
 * Returns false when the layout does not fit (x strided, or the dims interleaved). */
static bool reduce_rows(rn_reduce_op op, float *yd, const float *xd, const rn_tensor *x, const bool *reduce,
                        double scale) {
  if (!rn_tensor_is_contiguous(x)) return false; /* the row arithmetic below assumes x's dense layout */
  int first = -1, last = -1;
  for (int d = 0; d < x->ndim; d++)
    if (reduce[d]) { if (first < 0) first = d; else if (last != d - 1) return false; last = d; }
  if (first < 0 || last == x->ndim - 1) return false;
  int64_t O = 1, R = 1, I = 1;
  for (int d = 0; d < first; d++) O *= x->shape[d];
  for (int d = first; d <= last; d++) R *= x->shape[d];
  for (int d = last + 1; d < x->ndim; d++) I *= x->shape[d];
  if (I < 8 || R == 0) return false;
  enum { BLOCK = 512 };
  int64_t nb = (I + BLOCK - 1) / BLOCK;
  bool extremum = op == RN_RED_MAX || op == RN_RED_MIN;
#pragma omp parallel for schedule(static) if (O * R * I > 32768)
  for (int64_t t = 0; t < O * nb; t++) {
    int64_t o = t / nb, i0 = (t % nb) * BLOCK, len = I - i0 < BLOCK ? I - i0 : BLOCK;
    double acc[BLOCK];
    const float *base = xd + o * R * I + i0;
    for (int64_t i = 0; i < len; i++) acc[i] = extremum ? base[i] : 0.0;
    for (int64_t r = extremum ? 1 : 0; r < R; r++) {
      const float *row = base + r * I;
      if (extremum) for (int64_t i = 0; i < len; i++) acc[i] = combine(op, acc[i], row[i]);
      else for (int64_t i = 0; i < len; i++) acc[i] += row[i];
    }
    float *out = yd + o * I + i0;
    for (int64_t i = 0; i < len; i++) out[i] = (float)(acc[i] * scale);
  }
  return true;
}

rn_status rn_cpu_reduce(rn_reduce_op op, rn_tensor *y, const rn_tensor *x, const bool *reduce) {
  reduce_plan p;
  plan_of(&p, x, reduce);
  const float *xd = rn_f32(x);
  float *yd = rn_f32(y);
  double scale = op == RN_RED_MEAN ? 1.0 / (double)p.n_red : 1.0;
  if (p.n_out == 1 && (op == RN_RED_SUM || op == RN_RED_MEAN) && rn_tensor_is_contiguous(x)) {
    /* full reduction of a contiguous tensor: partial sums over fixed-size chunks, added in chunk order, so
     * the result does not depend on the thread count */
    enum { CHUNK = 32768, MAX_CHUNKS = 1024 };
    int64_t n = p.n_red, chunk = CHUNK;
    while ((n + chunk - 1) / chunk > MAX_CHUNKS) chunk *= 2;
    int64_t nc = (n + chunk - 1) / chunk;
    double part[MAX_CHUNKS];
#pragma omp parallel for schedule(static) if (nc > 1)
    for (int64_t c = 0; c < nc; c++) {
      int64_t lo = c * chunk, hi = lo + chunk < n ? lo + chunk : n;
      double s = 0;
      for (int64_t i = lo; i < hi; i++) s += xd[i];
      part[c] = s;
    }
    double s = 0;
    for (int64_t c = 0; c < nc; c++) s += part[c];
    yd[0] = (float)(s * scale);
    return RN_OK;
  }
  if (reduce_rows(op, yd, xd, x, reduce, scale)) return RN_OK;
#pragma omp parallel for schedule(static) if (p.n_out * p.n_red > 32768 && p.n_out > 1)
  for (int64_t o = 0; o < p.n_out; o++) yd[o] = (float)(reduce_one(op, xd, &p, kept_offset(&p, o)) * scale);
  return RN_OK;
}

/* x viewed as [outer, D, inner] around `dim` */
static void split_at(const rn_tensor *x, int dim, int64_t *outer, int64_t *D, int64_t *inner) {
  *outer = *inner = 1;
  for (int d = 0; d < dim; d++) *outer *= x->shape[d];
  for (int d = dim + 1; d < x->ndim; d++) *inner *= x->shape[d];
  *D = x->ndim ? x->shape[dim] : 1;
}

rn_status rn_cpu_arg_reduce(bool is_max, rn_tensor *values, rn_tensor *indices, const rn_tensor *x, int dim) {
  int64_t outer, D, inner;
  split_at(x, dim, &outer, &D, &inner);
  const float *xd = rn_f32(x);
  float *vd = rn_f32(values);
  int64_t *id = (int64_t *)rn_tensor_data(indices);
  int64_t lines = outer * inner;
#pragma omp parallel for schedule(static) if (lines * D > 32768)
  for (int64_t l = 0; l < lines; l++) {
    int64_t o = l / inner, i = l % inner;
    const float *p = xd + o * D * inner + i;
    float best = p[0];
    int64_t bi = 0;
    /* first extremum wins; a NaN counts as the extremum (as in PyTorch) and stops the search */
    for (int64_t j = 1; j < D && !isnan(best); j++) {
      float v = p[j * inner];
      if (isnan(v) || (is_max ? v > best : v < best)) { best = v; bi = j; }
    }
    vd[l] = best;
    id[l] = bi;
  }
  return RN_OK;
}

/* One line (inner == 1): max, exp and normalise in three contiguous passes. */
static void softmax_line(float *q, const float *p, int64_t D, bool is_log) {
  float m = -INFINITY;
  for (int64_t j = 0; j < D; j++) m = p[j] > m ? p[j] : m; /* a NaN still poisons the sum below */
  if (isinf(m) && m < 0) m = 0; /* all -inf: avoid inf - inf */
  for (int64_t j = 0; j < D; j++) q[j] = expf(p[j] - m);
  double s = 0;
  for (int64_t j = 0; j < D; j++) s += q[j];                     /* in order, in double */
  if (is_log) {
    double ls = m + log(s);
    for (int64_t j = 0; j < D; j++) q[j] = (float)((double)p[j] - ls);
  } else {
    float inv = (float)(1.0 / s);
    for (int64_t j = 0; j < D; j++) q[j] *= inv;
  }
}

enum { SM_BLOCK = 256 };

/* `len` neighbouring lines (inner > 1) at once, walking rows of the block so memory is read contiguously. */
static void softmax_block(float *q, const float *p, int64_t D, int64_t inner, int64_t len, bool is_log) {
  float m[SM_BLOCK];
  double s[SM_BLOCK];
  for (int64_t i = 0; i < len; i++) { m[i] = -INFINITY; s[i] = 0; }
  for (int64_t j = 0; j < D; j++) {
    const float *row = p + j * inner;
    for (int64_t i = 0; i < len; i++) m[i] = row[i] > m[i] ? row[i] : m[i];
  }
  for (int64_t i = 0; i < len; i++) if (isinf(m[i]) && m[i] < 0) m[i] = 0;
  for (int64_t j = 0; j < D; j++) {
    const float *row = p + j * inner;
    float *out = q + j * inner;
    for (int64_t i = 0; i < len; i++) {
      float e = expf(row[i] - m[i]);
      s[i] += e;
      if (!is_log) out[i] = e;
    }
  }
  for (int64_t i = 0; i < len; i++) s[i] = is_log ? m[i] + log(s[i]) : 1.0 / s[i];
  for (int64_t j = 0; j < D; j++) {
    const float *row = p + j * inner;
    float *out = q + j * inner;
    if (is_log) for (int64_t i = 0; i < len; i++) out[i] = (float)((double)row[i] - s[i]);
    else for (int64_t i = 0; i < len; i++) out[i] = (float)(out[i] * s[i]);
  }
}

rn_status rn_cpu_softmax(rn_tensor *y, const rn_tensor *x, int dim, bool is_log) {
  int64_t outer, D, inner;
  split_at(x, dim, &outer, &D, &inner);
  const float *xd = rn_f32(x);
  float *yd = rn_f32(y);
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (outer * D > 16384)
    for (int64_t o = 0; o < outer; o++) softmax_line(yd + o * D, xd + o * D, D, is_log);
    return RN_OK;
  }
  int64_t nb = (inner + SM_BLOCK - 1) / SM_BLOCK;
#pragma omp parallel for schedule(static) if (outer * D * inner > 16384)
  for (int64_t t = 0; t < outer * nb; t++) {
    int64_t o = t / nb, i0 = (t % nb) * SM_BLOCK, len = inner - i0 < SM_BLOCK ? inner - i0 : SM_BLOCK;
    softmax_block(yd + o * D * inner + i0, xd + o * D * inner + i0, D, inner, len, is_log);
  }
  return RN_OK;
}

/* softmax: gx = y * (gy - sum(gy * y)); log-softmax: gx = gy - exp(y) * sum(gy) */
rn_status rn_cpu_softmax_backward(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *y, int dim, bool is_log) {
  int64_t outer, D, inner;
  split_at(y, dim, &outer, &D, &inner);
  const float *gyd = rn_f32(gy), *yd = rn_f32(y);
  float *gxd = rn_f32(gx);
  int64_t nb = (inner + SM_BLOCK - 1) / SM_BLOCK;
#pragma omp parallel for schedule(static) if (outer * D * inner > 16384)
  for (int64_t t = 0; t < outer * nb; t++) {
    int64_t o = t / nb, i0 = (t % nb) * SM_BLOCK, len = inner - i0 < SM_BLOCK ? inner - i0 : SM_BLOCK;
    int64_t base = o * D * inner + i0;
    double s[SM_BLOCK];
    for (int64_t i = 0; i < len; i++) s[i] = 0;
    for (int64_t j = 0; j < D; j++) {
      const float *g = gyd + base + j * inner, *yy = yd + base + j * inner;
      if (is_log) for (int64_t i = 0; i < len; i++) s[i] += g[i];
      else for (int64_t i = 0; i < len; i++) s[i] += (double)g[i] * yy[i];
    }
    for (int64_t j = 0; j < D; j++) {
      const float *g = gyd + base + j * inner, *yy = yd + base + j * inner;
      float *out = gxd + base + j * inner;
      if (is_log) for (int64_t i = 0; i < len; i++) out[i] = (float)(g[i] - expf(yy[i]) * s[i]);
      else for (int64_t i = 0; i < len; i++) out[i] = (float)(yy[i] * (g[i] - s[i]));
    }
  }
  return RN_OK;
}
