/* index.c - CPU indexing kernels: concat, index_select / index_add, gather / scatter_add, top-k.
 * Tensors are contiguous; index tensors are int64 and already range-checked by the op layer.
 * index_select and gather copy elements of any dtype; the *_add kernels are float32. */
#include <omp.h>

#include "cpu_kernels.h"

/* t viewed as [outer, D, inner] around `dim` */
static void split_at(const rn_tensor *t, int dim, int64_t *outer, int64_t *D, int64_t *inner) {
  *outer = *inner = 1;
  for (int d = 0; d < dim; d++) *outer *= t->shape[d];
  for (int d = dim + 1; d < t->ndim; d++) *inner *= t->shape[d];
  *D = t->ndim ? t->shape[dim] : 1;
}

/* ------------------------------------------------------------------ concat */

/* y [outer, sum of the inputs' D, inner]: each outer row is the inputs' rows one after another. */
rn_status rn_cpu_concat(rn_tensor *y, int n, const rn_tensor *const *xs, int dim) {
  int64_t outer, D, inner;
  split_at(y, dim, &outer, &D, &inner);
  size_t es = rn_dtype_size(y->dtype), out_row = (size_t)D * inner * es;
  char *yd = rn_tensor_data(y);
#pragma omp parallel for schedule(static) if (rn_tensor_numel(y) > 32768)
  for (int64_t o = 0; o < outer; o++) {
    size_t off = 0;
    for (int i = 0; i < n; i++) {
      size_t row = (size_t)xs[i]->shape[dim] * inner * es;
      memcpy(yd + (size_t)o * out_row + off, (const char *)rn_tensor_data(xs[i]) + (size_t)o * row, row);
      off += row;
    }
  }
  return RN_OK;
}

/* ------------------------------------------------------------------ index_select / index_add */

rn_status rn_cpu_index_select(rn_tensor *y, const rn_tensor *x, int dim, const rn_tensor *index) {
  int64_t outer, D, inner, K = rn_tensor_numel(index);
  split_at(x, dim, &outer, &D, &inner);
  const int64_t *ix = (const int64_t *)rn_tensor_data(index);
  size_t es = rn_dtype_size(x->dtype), row = (size_t)inner * es;
  const char *xd = rn_tensor_data(x);
  char *yd = rn_tensor_data(y);
#pragma omp parallel for schedule(static) if (outer * K * inner > 32768)
  for (int64_t l = 0; l < outer * K; l++) {
    int64_t o = l / K, k = l % K;
    memcpy(yd + (size_t)l * row, xd + ((size_t)o * D + (size_t)ix[k]) * row, row);
  }
  return RN_OK;
}

rn_status rn_cpu_index_add(rn_tensor *gx, int dim, const rn_tensor *index, const rn_tensor *gy) {
  int64_t outer, D, inner, K = rn_tensor_numel(index);
  split_at(gx, dim, &outer, &D, &inner);
  const int64_t *ix = (const int64_t *)rn_tensor_data(index);
  const float *g = rn_f32(gy);
  float *gd = rn_f32(gx);
  /* each outer slice is written by one thread, so repeated indices within it cannot race */
#pragma omp parallel for schedule(static) if (outer * K * inner > 32768 && outer > 1)
  for (int64_t o = 0; o < outer; o++)
    for (int64_t k = 0; k < K; k++) {
      float *dst = gd + (o * D + ix[k]) * inner;
      const float *src = g + (o * K + k) * inner;
      for (int64_t i = 0; i < inner; i++) dst[i] += src[i];
    }
  return RN_OK;
}

/* ------------------------------------------------------------------ gather / scatter_add */

/* The lines of `index` along dim: for line l (row-major over index's other dims), the offsets of its first
 * element in index and in the (differently shaped) data tensor, plus the data stride along dim. */
typedef struct {
  int ndim, dim;
  int64_t ishape[RN_MAX_DIMS], dstride[RN_MAX_DIMS];
  int64_t len, lines, istep, dstep;
} line_plan;

static void plan_lines(line_plan *p, const rn_tensor *index, const rn_tensor *data, int dim) {
  p->ndim = index->ndim;
  p->dim = dim;
  int64_t s = 1;
  for (int d = index->ndim - 1; d >= 0; d--) { p->dstride[d] = s; s *= data->shape[d]; }
  for (int d = 0; d < index->ndim; d++) p->ishape[d] = index->shape[d];
  p->len = index->ndim ? index->shape[dim] : 1;
  p->lines = p->len ? rn_tensor_numel(index) / p->len : 0;
  p->istep = 1;
  for (int d = dim + 1; d < index->ndim; d++) p->istep *= index->shape[d];
  p->dstep = index->ndim ? p->dstride[dim] : 1;
}

static void line_offsets(const line_plan *p, int64_t l, int64_t *ioff, int64_t *doff) {
  int64_t io = 0, dof = 0, mul = 1;
  for (int d = p->ndim - 1; d >= 0; d--) {
    if (d == p->dim) { mul *= p->ishape[d]; continue; }
    int64_t c = l % p->ishape[d];
    l /= p->ishape[d];
    io += c * mul;
    dof += c * p->dstride[d];
    mul *= p->ishape[d];
  }
  *ioff = io;
  *doff = dof;
}

rn_status rn_cpu_gather(rn_tensor *y, const rn_tensor *x, int dim, const rn_tensor *index) {
  line_plan p;
  plan_lines(&p, index, x, dim);
  const int64_t *ix = (const int64_t *)rn_tensor_data(index);
  size_t es = rn_dtype_size(x->dtype);
  const char *xd = rn_tensor_data(x);
  char *yd = rn_tensor_data(y);
#pragma omp parallel for schedule(static) if (p.lines * p.len > 32768)
  for (int64_t l = 0; l < p.lines; l++) {
    int64_t io, dof;
    line_offsets(&p, l, &io, &dof);
    for (int64_t j = 0; j < p.len; j++) {
      int64_t k = io + j * p.istep;
      memcpy(yd + (size_t)k * es, xd + (size_t)(dof + ix[k] * p.dstep) * es, es);
    }
  }
  return RN_OK;
}

/* Each line of gx along dim receives only from the same line of gy, so lines run in parallel safely. */
rn_status rn_cpu_scatter_add(rn_tensor *gx, int dim, const rn_tensor *index, const rn_tensor *gy) {
  line_plan p;
  plan_lines(&p, index, gx, dim);
  const int64_t *ix = (const int64_t *)rn_tensor_data(index);
  const float *g = rn_f32(gy);
  float *gd = rn_f32(gx);
#pragma omp parallel for schedule(static) if (p.lines * p.len > 32768)
  for (int64_t l = 0; l < p.lines; l++) {
    int64_t io, dof;
    line_offsets(&p, l, &io, &dof);
    for (int64_t j = 0; j < p.len; j++) {
      int64_t k = io + j * p.istep;
      gd[dof + ix[k] * p.dstep] += g[k];
    }
  }
  return RN_OK;
}

/* ------------------------------------------------------------------ top-k */

typedef struct { float v; int64_t i; } keyed;

/* NaN ranks above every number (as in PyTorch); equal values keep the lower index first. */
static int cmp_largest(const void *pa, const void *pb) {
  const keyed *a = pa, *b = pb;
  bool na = isnan(a->v), nb = isnan(b->v);
  if (na != nb) return na ? -1 : 1;
  if (!na && a->v != b->v) return a->v > b->v ? -1 : 1;
  return a->i < b->i ? -1 : a->i > b->i;
}

static int cmp_smallest(const void *pa, const void *pb) {
  const keyed *a = pa, *b = pb;
  bool na = isnan(a->v), nb = isnan(b->v);
  if (na != nb) return na ? 1 : -1;
  if (!na && a->v != b->v) return a->v < b->v ? -1 : 1;
  return a->i < b->i ? -1 : a->i > b->i;
}

/* For k much smaller than the line: keep the best k sorted in buf[0..k) and insert only elements that beat
 * the current k-th (scanning in index order, so an equal later value never displaces an earlier one). */
static void select_top(keyed *buf, const float *p, int64_t inner, int64_t D, int k, bool largest) {
  int (*cmp)(const void *, const void *) = largest ? cmp_largest : cmp_smallest;
  int n = 0;
  for (int64_t j = 0; j < D; j++) {
    keyed e = {p[j * inner], j};
    if (n == k && cmp(&e, &buf[k - 1]) >= 0) continue;
    int pos = n < k ? n++ : k - 1;
    while (pos > 0 && cmp(&e, &buf[pos - 1]) < 0) { buf[pos] = buf[pos - 1]; pos--; }
    buf[pos] = e;
  }
}

rn_status rn_cpu_topk(rn_tensor *values, rn_tensor *indices, const rn_tensor *x, int k, int dim, bool largest) {
  int64_t outer, D, inner;
  split_at(x, dim, &outer, &D, &inner);
  const float *xd = rn_f32(x);
  float *vd = rn_f32(values);
  int64_t *id = (int64_t *)rn_tensor_data(indices);
  int64_t lines = outer * inner;
  if (lines == 0 || k == 0) return RN_OK;
  int failed = 0;
#pragma omp parallel if (lines * D > 16384)
  {
    keyed *buf = malloc((size_t)(D ? D : 1) * sizeof *buf);
    if (!buf) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(static)
    for (int64_t l = 0; l < lines; l++) {
      if (!buf) continue;
      int64_t o = l / inner, i = l % inner;
      const float *p = xd + o * D * inner + i;
      if ((int64_t)k * 8 <= D) {
        select_top(buf, p, inner, D, k, largest);
      } else {
        for (int64_t j = 0; j < D; j++) { buf[j].v = p[j * inner]; buf[j].i = j; }
        qsort(buf, (size_t)D, sizeof *buf, largest ? cmp_largest : cmp_smallest);
      }
      for (int64_t j = 0; j < k; j++) {
        int64_t q = (o * k + j) * inner + i;
        vd[q] = buf[j].v;
        id[q] = buf[j].i;
      }
    }
    free(buf);
  }
  if (failed) return rn_error(RN_ERR_OOM, "topk: out of memory for a line of %lld values", (long long)D);
  return RN_OK;
}
