/* elementwise.c - fill, copy, unary and binary maps and where, over strided views. */
#include "strided.h"

#define PAR_MIN 32768 /* below this many elements threads cost more than they save */

rn_status rn_cpu_fill(rn_tensor *t, double v) {
  rn_strided s;
  const rn_tensor *ops[1] = {t};
  rn_strided_init(&s, t, 1, ops);
  int64_t rows = rn_strided_rows(&s), cols = rn_strided_cols(&s), st = rn_strided_inner(&s, 0);
  void *base = t->storage->data;
  #pragma omp parallel for if (rows * cols > PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t off[3];
    rn_strided_row(&s, r, off);
    if (t->dtype == RN_F32) {
      float *p = (float *)base + off[0], fv = (float)v;
      for (int64_t c = 0; c < cols; c++) p[c * st] = fv;
    } else {
      for (int64_t c = 0; c < cols; c++) rn_store(base, t->dtype, off[0] + c * st, v);
    }
  }
  return RN_OK;
}

rn_status rn_cpu_copy(rn_tensor *dst, const rn_tensor *src) {
  if (dst->dtype == src->dtype && rn_tensor_is_contiguous(dst) && rn_tensor_is_contiguous(src)) {
    memmove(rn_tensor_data(dst), rn_tensor_data(src), (size_t)rn_tensor_numel(dst) * rn_dtype_size(dst->dtype));
    return RN_OK;
  }
  rn_strided s;
  const rn_tensor *ops[2] = {dst, src};
  rn_strided_init(&s, dst, 2, ops);
  int64_t rows = rn_strided_rows(&s), cols = rn_strided_cols(&s);
  int64_t sd = rn_strided_inner(&s, 0), ss = rn_strided_inner(&s, 1);
  void *db = dst->storage->data;
  const void *sb = src->storage->data;
  bool f32 = dst->dtype == RN_F32 && src->dtype == RN_F32;
  #pragma omp parallel for if (rows * cols > PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t off[3];
    rn_strided_row(&s, r, off);
    if (f32) {
      float *d = (float *)db + off[0];
      const float *p = (const float *)sb + off[1];
      for (int64_t c = 0; c < cols; c++) d[c * sd] = p[c * ss];
    } else {
      for (int64_t c = 0; c < cols; c++)
        rn_store(db, dst->dtype, off[0] + c * sd, rn_load(sb, src->dtype, off[1] + c * ss));
    }
  }
  return RN_OK;
}

static inline float unary_f(rn_unary_op op, float x, float a, float b) {
  switch (op) {
    case RN_UN_NEG: return -x;
    case RN_UN_EXP: return expf(x);
    case RN_UN_LOG: return logf(x);
    case RN_UN_SQRT: return sqrtf(x);
    case RN_UN_RSQRT: return 1.0f / sqrtf(x);
    case RN_UN_ABS: return fabsf(x);
    case RN_UN_SQUARE: return x * x;
    case RN_UN_SIN: return sinf(x);
    case RN_UN_COS: return cosf(x);
    case RN_UN_RELU: return x > 0 ? x : (x != x ? x : 0.0f);
    case RN_UN_RELU6: return x != x ? x : x < 0 ? 0.0f : x > 6 ? 6.0f : x;
    case RN_UN_SILU: return x / (1.0f + expf(-x));
    case RN_UN_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case RN_UN_TANH: return tanhf(x);
    case RN_UN_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678f));
    case RN_UN_LEAKY_RELU: return x >= 0 ? x : a * x;
    case RN_UN_SCALE: return a * x + b;
    case RN_UN_POWS: return powf(x, a);
    case RN_UN_CLAMP: {
      float y = x;
      if (a == a && y < a) y = a;
      if (b == b && y > b) y = b;
      return y;
    }
    default: return x;
  }
}

/* d op(x) / dx */
static inline float unary_df(rn_unary_op op, float x, float a, float b) {
  switch (op) {
    case RN_UN_NEG: return -1.0f;
    case RN_UN_EXP: return expf(x);
    case RN_UN_LOG: return 1.0f / x;
    case RN_UN_SQRT: return 0.5f / sqrtf(x);
    case RN_UN_RSQRT: return -0.5f / (x * sqrtf(x));
    case RN_UN_ABS: return x > 0 ? 1.0f : x < 0 ? -1.0f : 0.0f;
    case RN_UN_SQUARE: return 2.0f * x;
    case RN_UN_SIN: return cosf(x);
    case RN_UN_COS: return -sinf(x);
    case RN_UN_RELU: return x > 0 ? 1.0f : 0.0f;
    case RN_UN_RELU6: return x > 0 && x < 6 ? 1.0f : 0.0f;
    case RN_UN_SILU: { float s = 1.0f / (1.0f + expf(-x)); return s * (1.0f + x * (1.0f - s)); }
    case RN_UN_SIGMOID: { float s = 1.0f / (1.0f + expf(-x)); return s * (1.0f - s); }
    case RN_UN_TANH: { float t = tanhf(x); return 1.0f - t * t; }
    case RN_UN_GELU: return 0.5f * (1.0f + erff(x * 0.70710678f)) + x * 0.39894228f * expf(-0.5f * x * x);
    case RN_UN_LEAKY_RELU: return x >= 0 ? 1.0f : a;
    case RN_UN_SCALE: return a;
    case RN_UN_POWS: return a == 0 ? 0.0f : a * powf(x, a - 1.0f);
    case RN_UN_CLAMP: return (a == a && x < a) || (b == b && x > b) ? 0.0f : 1.0f;
    default: return 1.0f;
  }
}

rn_status rn_cpu_unary(rn_unary_op op, rn_tensor *y, const rn_tensor *x, float a, float b) {
  rn_strided s;
  const rn_tensor *ops[2] = {y, x};
  rn_strided_init(&s, y, 2, ops);
  int64_t rows = rn_strided_rows(&s), cols = rn_strided_cols(&s), sx = rn_strided_inner(&s, 1);
  float *yb = y->storage->data;
  const float *xb = x->storage->data;
  #pragma omp parallel for if (rows * cols > PAR_MIN / 4)
  for (int64_t r = 0; r < rows; r++) {
    int64_t off[3];
    rn_strided_row(&s, r, off);
    float *yr = yb + off[0];
    const float *xr = xb + off[1];
    if (op == RN_UN_RELU && sx == 1) {
      for (int64_t c = 0; c < cols; c++) yr[c] = xr[c] > 0 ? xr[c] : (xr[c] != xr[c] ? xr[c] : 0.0f);
    } else if (op == RN_UN_SCALE && sx == 1) {
      for (int64_t c = 0; c < cols; c++) yr[c] = a * xr[c] + b;
    } else {
      for (int64_t c = 0; c < cols; c++) yr[c] = unary_f(op, xr[c * sx], a, b);
    }
  }
  return RN_OK;
}

rn_status rn_cpu_unary_backward(rn_unary_op op, rn_tensor *gx, const rn_tensor *gy, const rn_tensor *x, float a, float b) {
  int64_t n = rn_tensor_numel(gx);
  float *g = rn_f32(gx);
  const float *gyp = rn_f32(gy), *xp = rn_f32(x);
  #pragma omp parallel for if (n > PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) g[i] = gyp[i] * unary_df(op, xp[i], a, b);
  return RN_OK;
}

static inline double binary_d(rn_binary_op op, double x, double y) {
  switch (op) {
    case RN_BIN_ADD: return x + y;
    case RN_BIN_SUB: return x - y;
    case RN_BIN_MUL: return x * y;
    case RN_BIN_DIV: return x / y;
    case RN_BIN_POW: return pow(x, y);
    case RN_BIN_MAX: return x != x || y != y ? NAN : x > y ? x : y;
    case RN_BIN_MIN: return x != x || y != y ? NAN : x < y ? x : y;
    case RN_BIN_EQ: return x == y;
    case RN_BIN_LT: return x < y;
    case RN_BIN_LE: return x <= y;
    case RN_BIN_GT: return x > y;
    case RN_BIN_GE: return x >= y;
    default: return 0;
  }
}

static inline float binary_f(rn_binary_op op, float x, float y) {
  switch (op) {
    case RN_BIN_ADD: return x + y;
    case RN_BIN_SUB: return x - y;
    case RN_BIN_MUL: return x * y;
    case RN_BIN_DIV: return x / y;
    case RN_BIN_POW: return powf(x, y);
    default: return (float)binary_d(op, x, y);
  }
}

rn_status rn_cpu_binary(rn_binary_op op, rn_tensor *y, const rn_tensor *a, const rn_tensor *b) {
  rn_strided s;
  const rn_tensor *ops[3] = {y, a, b};
  rn_strided_init(&s, y, 3, ops);
  int64_t rows = rn_strided_rows(&s), cols = rn_strided_cols(&s);
  int64_t sy = rn_strided_inner(&s, 0), sa = rn_strided_inner(&s, 1), sb = rn_strided_inner(&s, 2);
  bool f32 = y->dtype == RN_F32 && a->dtype == RN_F32 && b->dtype == RN_F32;
  void *yb = y->storage->data;
  const void *ab = a->storage->data, *bb = b->storage->data;
  #pragma omp parallel for if (rows * cols > PAR_MIN / 2)
  for (int64_t r = 0; r < rows; r++) {
    int64_t off[3];
    rn_strided_row(&s, r, off);
    if (f32) {
      float *yr = (float *)yb + off[0];
      const float *ar = (const float *)ab + off[1], *br = (const float *)bb + off[2];
      if (sy == 1 && sa == 1 && sb == 1 && op == RN_BIN_ADD) for (int64_t c = 0; c < cols; c++) yr[c] = ar[c] + br[c];
      else if (sy == 1 && sa == 1 && sb == 1 && op == RN_BIN_MUL) for (int64_t c = 0; c < cols; c++) yr[c] = ar[c] * br[c];
      else if (sy == 1 && sa == 1 && sb == 0 && op == RN_BIN_ADD) { float v = br[0]; for (int64_t c = 0; c < cols; c++) yr[c] = ar[c] + v; }
      else if (sy == 1 && sa == 1 && sb == 0 && op == RN_BIN_MUL) { float v = br[0]; for (int64_t c = 0; c < cols; c++) yr[c] = ar[c] * v; }
      else for (int64_t c = 0; c < cols; c++) yr[c * sy] = binary_f(op, ar[c * sa], br[c * sb]);
    } else {
      for (int64_t c = 0; c < cols; c++)
        rn_store(yb, y->dtype, off[0] + c * sy,
                 binary_d(op, rn_load(ab, a->dtype, off[1] + c * sa), rn_load(bb, b->dtype, off[2] + c * sb)));
    }
  }
  return RN_OK;
}

rn_status rn_cpu_where(rn_tensor *y, const rn_tensor *cond, const rn_tensor *a, const rn_tensor *b) {
  /* y is contiguous: walk cond/a/b with the strided helper three at a time, y by flat index */
  rn_strided s;
  const rn_tensor *ops[3] = {cond, a, b};
  rn_strided_init(&s, y, 3, ops);
  int64_t rows = rn_strided_rows(&s), cols = rn_strided_cols(&s);
  int64_t sc = rn_strided_inner(&s, 0), sa = rn_strided_inner(&s, 1), sb = rn_strided_inner(&s, 2);
  float *yp = rn_f32(y);
  const void *cb = cond->storage->data;
  const float *ab = a->storage->data, *bb = b->storage->data;
  #pragma omp parallel for if (rows * cols > PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t off[3];
    rn_strided_row(&s, r, off);
    for (int64_t c = 0; c < cols; c++)
      yp[r * cols + c] = rn_load(cb, cond->dtype, off[0] + c * sc) != 0 ? ab[off[1] + c * sa] : bb[off[2] + c * sb];
  }
  return RN_OK;
}
