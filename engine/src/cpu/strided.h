/* strided.h - walking up to three strided operands of one shape, row-major, in parallel.
 *
 * The outer dims (all but the last) are flattened and split across OpenMP threads; each thread decomposes its
 * outer index once per row and walks the last dim with the operands' strides. Used by the elementwise kernels,
 * which must accept views (transposes, broadcasts with stride 0).
 */
#ifndef REALNET_CPU_STRIDED_H
#define REALNET_CPU_STRIDED_H

#include "cpu_kernels.h"

typedef struct {
  int ndim;
  int64_t shape[RN_MAX_DIMS];
  int64_t stride[3][RN_MAX_DIMS];
  int64_t base[3]; /* element offsets */
  int n_ops;
} rn_strided;

static inline void rn_strided_init(rn_strided *s, const rn_tensor *shape_of, int n_ops, const rn_tensor *const *ops) {
  s->ndim = shape_of->ndim;
  s->n_ops = n_ops;
  for (int d = 0; d < s->ndim; d++) s->shape[d] = shape_of->shape[d];
  for (int k = 0; k < n_ops; k++) {
    s->base[k] = ops[k]->offset;
    for (int d = 0; d < s->ndim; d++) s->stride[k][d] = ops[k]->stride[d];
  }
}

/* Rows = product of all dims but the last; row length = last dim (1 for 0-d tensors). */
static inline int64_t rn_strided_rows(const rn_strided *s) {
  int64_t r = 1;
  for (int d = 0; d + 1 < s->ndim; d++) r *= s->shape[d];
  return r;
}
static inline int64_t rn_strided_cols(const rn_strided *s) { return s->ndim ? s->shape[s->ndim - 1] : 1; }
static inline int64_t rn_strided_inner(const rn_strided *s, int k) { return s->ndim ? s->stride[k][s->ndim - 1] : 0; }

/* Element offsets of the first element of `row` for each operand. */
static inline void rn_strided_row(const rn_strided *s, int64_t row, int64_t *off) {
  for (int k = 0; k < s->n_ops; k++) off[k] = s->base[k];
  for (int d = s->ndim - 2; d >= 0; d--) {
    int64_t i = row % s->shape[d];
    row /= s->shape[d];
    for (int k = 0; k < s->n_ops; k++) off[k] += i * s->stride[k][d];
  }
}

/* Any-dtype element access as double, for the rare non-float paths. */
static inline double rn_load(const void *base, rn_dtype dt, int64_t i) {
  switch (dt) {
    case RN_F32: return ((const float *)base)[i];
    case RN_U8: return ((const uint8_t *)base)[i];
    case RN_I32: return ((const int32_t *)base)[i];
    default: return (double)((const int64_t *)base)[i];
  }
}
static inline void rn_store(void *base, rn_dtype dt, int64_t i, double v) {
  switch (dt) {
    case RN_F32: ((float *)base)[i] = (float)v; break;
    case RN_U8: ((uint8_t *)base)[i] = (uint8_t)(v != v ? 0 : v < 0 ? 0 : v > 255 ? 255 : v); break;
    case RN_I32: ((int32_t *)base)[i] = (int32_t)v; break;
    default: ((int64_t *)base)[i] = (int64_t)v; break;
  }
}

#endif
