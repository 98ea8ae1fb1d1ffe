// elementwise.cu - fill, copy (with dtype conversion), unary maps and their derivatives, binary maps and where,
// over operands of any strides. The math mirrors engine/src/cpu/elementwise.c line for line, so the two
// backends agree to float rounding (the GPU's expf/erff/powf differ from glibc's by an ulp or two).
#include "common.cuh"

using namespace rnk;

namespace {

__device__ inline float unary_f(rn_unary_op op, float x, float a, float b) {
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

__device__ inline float unary_df(rn_unary_op op, float x, float a, float b) {
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

__device__ inline double binary_d(rn_binary_op op, double x, double y) {
  switch (op) {
    case RN_BIN_ADD: return x + y;
    case RN_BIN_SUB: return x - y;
    case RN_BIN_MUL: return x * y;
    case RN_BIN_DIV: return x / y;
    case RN_BIN_POW: return pow(x, y);
    case RN_BIN_MAX: return x != x || y != y ? CUDART_NAN : x > y ? x : y;
    case RN_BIN_MIN: return x != x || y != y ? CUDART_NAN : x < y ? x : y;
    case RN_BIN_EQ: return x == y;
    case RN_BIN_LT: return x < y;
    case RN_BIN_LE: return x <= y;
    case RN_BIN_GT: return x > y;
    case RN_BIN_GE: return x >= y;
    default: return 0;
  }
}

__device__ inline float binary_f(rn_binary_op op, float x, float y) {
  switch (op) {
    case RN_BIN_ADD: return x + y;
    case RN_BIN_SUB: return x - y;
    case RN_BIN_MUL: return x * y;
    case RN_BIN_DIV: return x / y;
    case RN_BIN_POW: return powf(x, y);
    default: return (float)binary_d(op, x, y);
  }
}

// ------------------------------------------------------------------ kernels

__global__ void fill_f32_contig(float *p, int64_t n, float v) {
  RNK_LOOP(i, n) p[i] = v;
}

template <typename I>
__global__ void fill_any(void *p, rn_dtype dt, Strided3 s, int64_t n, double v) {
  RNK_LOOP(i, n) {
    int64_t o, u1, u2;
    offsets3<I>(s, i, o, u1, u2);
    store_from_double(p, dt, o, v);
  }
}

template <typename I>
__global__ void copy_f32(float *d, const float *src, Strided3 s, int64_t n) {
  RNK_LOOP(i, n) {
    int64_t od, os, u;
    offsets3<I>(s, i, od, os, u);
    d[od] = src[os];
  }
}

template <typename I>
__global__ void copy_any(void *d, rn_dtype ddt, const void *src, rn_dtype sdt, Strided3 s, int64_t n) {
  RNK_LOOP(i, n) {
    int64_t od, os, u;
    offsets3<I>(s, i, od, os, u);
    store_from_double(d, ddt, od, load_as_double(src, sdt, os));
  }
}

__global__ void unary_contig(rn_unary_op op, float *y, const float *x, int64_t n, float a, float b) {
  RNK_LOOP(i, n) y[i] = unary_f(op, x[i], a, b);
}

template <typename I>
__global__ void unary_strided(rn_unary_op op, float *y, const float *x, Strided3 s, int64_t n, float a, float b) {
  RNK_LOOP(i, n) {
    int64_t oy, ox, u;
    offsets3<I>(s, i, oy, ox, u);
    y[oy] = unary_f(op, x[ox], a, b);
  }
}

__global__ void unary_bw(rn_unary_op op, float *gx, const float *gy, const float *x, int64_t n, float a, float b) {
  RNK_LOOP(i, n) gx[i] = gy[i] * unary_df(op, x[i], a, b);
}

__global__ void binary_contig(rn_binary_op op, float *y, const float *a, const float *b, int64_t n) {
  RNK_LOOP(i, n) y[i] = binary_f(op, a[i], b[i]);
}

template <typename I>
__global__ void binary_f32(rn_binary_op op, float *y, const float *a, const float *b, Strided3 s, int64_t n) {
  RNK_LOOP(i, n) {
    int64_t oy, oa, ob;
    offsets3<I>(s, i, oy, oa, ob);
    y[oy] = binary_f(op, a[oa], b[ob]);
  }
}

template <typename I>
__global__ void binary_any(rn_binary_op op, void *y, rn_dtype ydt, const void *a, rn_dtype adt, const void *b,
                           rn_dtype bdt, Strided3 s, int64_t n) {
  RNK_LOOP(i, n) {
    int64_t oy, oa, ob;
    offsets3<I>(s, i, oy, oa, ob);
    store_from_double(y, ydt, oy, binary_d(op, load_as_double(a, adt, oa), load_as_double(b, bdt, ob)));
  }
}

// y contiguous: s holds the strides of cond, a and b
template <typename I>
__global__ void where_k(float *y, const void *c, rn_dtype cdt, const float *a, const float *b, Strided3 s,
                        int64_t n) {
  RNK_LOOP(i, n) {
    int64_t oc, oa, ob;
    offsets3<I>(s, i, oc, oa, ob);
    y[i] = load_as_double(c, cdt, oc) != 0 ? a[oa] : b[ob];
  }
}

// y = act((y + b[c]) + z), in the order the separate ops (bias add, binary add, unary) round in.
__global__ void conv_epilogue_k(float *y, const float *b, const float *z, rn_unary_op act, int64_t C, int64_t S,
                                int64_t planes) {
  for (int64_t pl = blockIdx.y; pl < planes; pl += gridDim.y) {
    float v = b ? b[pl % C] : 0.0f;
    float *yp = y + pl * S;
    const float *zp = z ? z + pl * S : nullptr;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < S; i += (int64_t)gridDim.x * blockDim.x) {
      float t = yp[i];
      if (b) t += v;
      if (zp) t += zp[i];
      yp[i] = act == RN_UN_COUNT ? t : unary_f(act, t, 0.0f, 0.0f);
    }
  }
}

} // namespace

// Launches the 32-bit-index instance of a strided kernel when n fits, else the 64-bit one.
#define LAUNCH_STRIDED(kernel, n, st, ...)                                          \
  do {                                                                              \
    if (fits32(n)) kernel<uint32_t><<<grid_for(n), kThreads, 0, st>>>(__VA_ARGS__); \
    else kernel<int64_t><<<grid_for(n), kThreads, 0, st>>>(__VA_ARGS__);           \
  } while (0)

extern "C" cudaError_t rnk_fill(void *p, rn_dtype dt, const rnk_layout *l, double v, cudaStream_t st) {
  int64_t n = numel(l);
  if (n == 0) return cudaSuccess;
  if (dt == RN_F32 && contiguous(l)) {
    fill_f32_contig<<<grid_for(n), kThreads, 0, st>>>((float *)p, n, (float)v);
  } else {
    const rnk_layout *ops[1] = {l};
    LAUNCH_STRIDED(fill_any, n, st, p, dt, strided3(l, 1, ops), n, v);
  }
  return launched();
}

extern "C" cudaError_t rnk_copy(void *dst, rn_dtype ddt, const rnk_layout *dl, const void *src, rn_dtype sdt,
                                const rnk_layout *sl, cudaStream_t st) {
  int64_t n = numel(dl);
  if (n == 0) return cudaSuccess;
  if (ddt == sdt && contiguous(dl) && contiguous(sl)) {
    size_t es = ddt == RN_F32 || ddt == RN_I32 ? 4 : ddt == RN_I64 ? 8 : 1;
    return cudaMemcpyAsync(dst, src, (size_t)n * es, cudaMemcpyDeviceToDevice, st);
  }
  const rnk_layout *ops[2] = {dl, sl};
  Strided3 s = strided3(dl, 2, ops);
  if (ddt == RN_F32 && sdt == RN_F32) LAUNCH_STRIDED(copy_f32, n, st, (float *)dst, (const float *)src, s, n);
  else LAUNCH_STRIDED(copy_any, n, st, dst, ddt, src, sdt, s, n);
  return launched();
}

extern "C" cudaError_t rnk_unary(rn_unary_op op, float *y, const rnk_layout *yl, const float *x, const rnk_layout *xl,
                                 float a, float b, cudaStream_t st) {
  int64_t n = numel(yl);
  if (n == 0) return cudaSuccess;
  if (contiguous(yl) && contiguous(xl)) {
    unary_contig<<<grid_for(n), kThreads, 0, st>>>(op, y, x, n, a, b);
  } else {
    const rnk_layout *ops[2] = {yl, xl};
    LAUNCH_STRIDED(unary_strided, n, st, op, y, x, strided3(yl, 2, ops), n, a, b);
  }
  return launched();
}

extern "C" cudaError_t rnk_unary_backward(rn_unary_op op, float *gx, const float *gy, const float *x, int64_t n,
                                          float a, float b, cudaStream_t st) {
  if (n == 0) return cudaSuccess;
  unary_bw<<<grid_for(n), kThreads, 0, st>>>(op, gx, gy, x, n, a, b);
  return launched();
}

extern "C" cudaError_t rnk_binary(rn_binary_op op, void *y, rn_dtype ydt, const rnk_layout *yl, const void *a,
                                  rn_dtype adt, const rnk_layout *al, const void *b, rn_dtype bdt,
                                  const rnk_layout *bl, cudaStream_t st) {
  int64_t n = numel(yl);
  if (n == 0) return cudaSuccess;
  bool f32 = ydt == RN_F32 && adt == RN_F32 && bdt == RN_F32;
  if (f32 && contiguous(yl) && contiguous(al) && contiguous(bl)) {
    binary_contig<<<grid_for(n), kThreads, 0, st>>>(op, (float *)y, (const float *)a, (const float *)b, n);
    return launched();
  }
  const rnk_layout *ops[3] = {yl, al, bl};
  Strided3 s = strided3(yl, 3, ops);
  if (f32) LAUNCH_STRIDED(binary_f32, n, st, op, (float *)y, (const float *)a, (const float *)b, s, n);
  else LAUNCH_STRIDED(binary_any, n, st, op, y, ydt, a, adt, b, bdt, s, n);
  return launched();
}

extern "C" cudaError_t rnk_where(float *y, const void *cond, rn_dtype cdt, const rnk_layout *cl, const float *a,
                                 const rnk_layout *al, const float *b, const rnk_layout *bl, cudaStream_t st) {
  int64_t n = numel(cl);
  if (n == 0) return cudaSuccess;
  const rnk_layout *ops[3] = {cl, al, bl};
  LAUNCH_STRIDED(where_k, n, st, y, cond, cdt, a, b, strided3(cl, 3, ops), n);
  return launched();
}

extern "C" cudaError_t rnk_conv_epilogue(float *y, const float *b, const float *z, rn_unary_op act, int64_t N,
                                         int64_t C, int64_t S, cudaStream_t st) {
  int64_t planes = N * C;
  if (planes == 0 || S == 0 || (!b && !z && act == RN_UN_COUNT)) return cudaSuccess;
  int64_t bx = (S + kThreads - 1) / kThreads;
  dim3 grid((unsigned)(bx < 64 ? bx : 64), (unsigned)(planes < 65535 ? planes : 65535));
  conv_epilogue_k<<<grid, kThreads, 0, st>>>(y, b, z, act, C, S, planes);
  return launched();
}
