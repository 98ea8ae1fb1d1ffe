// reduce.cu - sum/mean/max/min over any set of dims, arg-max/min along one dim, softmax and its backward.
// Sums accumulate in double, like the CPU kernels (engine/src/cpu/reduce.c), so results agree to a few float
// ulps whatever the summation order. Max/min propagate NaN; arg-max/min return the first extremum and treat NaN
// as the extremum (PyTorch's rule, as on the CPU).
#include "common.cuh"

using namespace rnk;

namespace {

// ------------------------------------------------------------------ combine rules

__device__ inline double combine(rn_reduce_op op, double acc, double v) {
  switch (op) {
    case RN_RED_MAX: return (v > acc || isnan(v)) && !isnan(acc) ? v : acc;
    case RN_RED_MIN: return (v < acc || isnan(v)) && !isnan(acc) ? v : acc;
    default: return acc + v;
  }
}

// The identity of combine: -inf for max, +inf for min (combine(-inf, NaN) is NaN), 0 for sums.
__device__ inline double identity(rn_reduce_op op) {
  return op == RN_RED_MAX ? -CUDART_INF : op == RN_RED_MIN ? CUDART_INF : 0.0;
}

__device__ inline double block_combine(rn_reduce_op op, double v, double *sh) {
  for (int o = 16; o > 0; o >>= 1) v = combine(op, v, __shfl_down_sync(0xffffffffu, v, o));
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  int nw = (blockDim.x + 31) >> 5;
  v = threadIdx.x < nw ? sh[threadIdx.x] : identity(op);
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v = combine(op, v, __shfl_down_sync(0xffffffffu, v, o));
  return v; // valid in thread 0
}

// ------------------------------------------------------------------ reduce

__device__ inline int64_t kept_offset(const rnk_reduce_plan &p, int64_t o) {
  int64_t off = 0;
  for (int i = p.nk - 1; i >= 0; i--) {
    off += (o % p.ksz[i]) * p.kst[i];
    o /= p.ksz[i];
  }
  return off;
}

__device__ inline int64_t red_offset(const rnk_reduce_plan &p, int64_t r) {
  int64_t off = 0;
  for (int i = p.nr - 1; i >= 0; i--) {
    off += (r % p.rsz[i]) * p.rst[i];
    r /= p.rsz[i];
  }
  return off;
}

// One thread per output, reduced elements in row-major order (the CPU's order) with an odometer.
__global__ void reduce_thread(rn_reduce_op op, float *y, const float *x, rnk_reduce_plan p, double scale) {
  RNK_LOOP(o, p.n_out) {
    int64_t base = kept_offset(p, o), idx[RN_MAX_DIMS] = {0, 0, 0, 0, 0}, off = base;
    double acc = identity(op);
    for (int64_t r = 0; r < p.n_red; r++) {
      acc = combine(op, acc, (double)x[off]);
      for (int i = p.nr - 1; i >= 0; i--) { // advance the odometer and the offset with it
        off += p.rst[i];
        if (++idx[i] < p.rsz[i]) break;
        off -= idx[i] * p.rst[i];
        idx[i] = 0;
      }
    }
    if (p.n_red == 0 && op != RN_RED_SUM && op != RN_RED_MEAN) acc = CUDART_NAN;
    y[o] = (float)(acc * scale);
  }
}

// One block per (output, split): the block reduces elements [lo, hi) of its output. With one split it writes
// y; otherwise partials go to work[o * splits + s] for reduce_finish.
__global__ void reduce_block(rn_reduce_op op, float *y, double *work, const float *x, rnk_reduce_plan p,
                             int64_t splits, double scale) {
  __shared__ double sh[32];
  int64_t total = p.n_out * splits, chunk = (p.n_red + splits - 1) / splits;
  for (int64_t blk = blockIdx.x; blk < total; blk += gridDim.x) {
    int64_t o = blk / splits, s = blk % splits;
    int64_t lo = s * chunk, hi = lo + chunk < p.n_red ? lo + chunk : p.n_red;
    int64_t base = kept_offset(p, o);
    double acc = identity(op);
    for (int64_t r = lo + threadIdx.x; r < hi; r += blockDim.x) acc = combine(op, acc, (double)x[base + red_offset(p, r)]);
    acc = block_combine(op, acc, sh);
    if (threadIdx.x == 0) {
      if (splits == 1) y[o] = (float)(acc * scale);
      else work[blk] = acc;
    }
  }
}

__global__ void reduce_finish(rn_reduce_op op, float *y, const double *work, int64_t n_out, int64_t splits,
                              double scale) {
  RNK_LOOP(o, n_out) {
    double acc = identity(op);
    for (int64_t s = 0; s < splits; s++) acc = combine(op, acc, work[o * splits + s]);
    y[o] = (float)(acc * scale);
  }
}

// How the work of a plan is split: 0 = a thread per output, else the number of blocks per output.
int64_t reduce_splits(const rnk_reduce_plan *p) {
  if (p->n_red <= 32 || (p->n_out >= 8192 && p->n_red <= 512)) return 0;
  if (p->n_red < 16384 || p->n_out >= 512) return 1;
  int64_t by_size = (p->n_red + 8191) / 8192, by_fill = 512 / p->n_out;
  int64_t s = by_size < by_fill ? by_size : by_fill;
  return s < 1 ? 1 : s;
}

// ------------------------------------------------------------------ arg-max / arg-min

// true when (v, j) should replace (b, bj): NaN wins (the first one), then the larger (smaller) value, then
// the lower index. bj < 0 marks "nothing yet".
__device__ inline bool better(bool is_max, float v, int64_t j, float b, int64_t bj) {
  if (j < 0) return false;
  if (bj < 0) return true;
  bool vn = isnan(v), bn = isnan(b);
  if (vn || bn) return vn && (!bn || j < bj);
  if (v != b) return is_max ? v > b : v < b;
  return j < bj;
}

__global__ void arg_thread(bool is_max, float *vals, int64_t *idx, const float *x, int64_t outer, int64_t D,
                           int64_t inner) {
  RNK_LOOP(l, outer * inner) {
    int64_t o = l / inner, i = l % inner;
    const float *p = x + o * D * inner + i;
    float best = p[0];
    int64_t bi = 0;
    for (int64_t j = 1; j < D && !isnan(best); j++) {
      float v = p[j * inner];
      if (isnan(v) || (is_max ? v > best : v < best)) { best = v; bi = j; }
    }
    vals[l] = best;
    idx[l] = bi;
  }
}

__global__ void arg_block(bool is_max, float *vals, int64_t *idx, const float *x, int64_t outer, int64_t D,
                          int64_t inner) {
  __shared__ float sv[1024];
  __shared__ int64_t si[1024];
  for (int64_t l = blockIdx.x; l < outer * inner; l += gridDim.x) {
    int64_t o = l / inner, i = l % inner;
    const float *p = x + o * D * inner + i;
    float b = 0;
    int64_t bj = -1;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
      float v = p[j * inner];
      if (better(is_max, v, j, b, bj)) { b = v; bj = j; }
    }
    __syncthreads();
    sv[threadIdx.x] = b;
    si[threadIdx.x] = bj;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
      if (threadIdx.x < w && better(is_max, sv[threadIdx.x + w], si[threadIdx.x + w], sv[threadIdx.x], si[threadIdx.x])) {
        sv[threadIdx.x] = sv[threadIdx.x + w];
        si[threadIdx.x] = si[threadIdx.x + w];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      vals[l] = sv[0];
      idx[l] = si[0];
    }
  }
}

// ------------------------------------------------------------------ softmax

__device__ inline float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ inline double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// inner == 1: one warp per row. fmaxf skips NaN as the CPU's `p > m ? p : m` does; a NaN still poisons the sum.
__global__ void softmax_rows(float *y, const float *x, int64_t rows, int64_t D, bool is_log) {
  int lane = threadIdx.x & 31;
  int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5, nwarps = ((int64_t)gridDim.x * blockDim.x) >> 5;
  for (int64_t r = warp; r < rows; r += nwarps) {
    const float *p = x + r * D;
    float *q = y + r * D;
    float m = -CUDART_INF_F;
    for (int64_t j = lane; j < D; j += 32) m = fmaxf(m, p[j]);
    m = warp_max(m);
    if (isinf(m) && m < 0) m = 0;
    double s = 0;
    for (int64_t j = lane; j < D; j += 32) s += expf(p[j] - m);
    s = warp_sum(s);
    if (is_log) {
      double ls = m + log(s);
      for (int64_t j = lane; j < D; j += 32) q[j] = (float)((double)p[j] - ls);
    } else {
      float inv = (float)(1.0 / s);
      for (int64_t j = lane; j < D; j += 32) q[j] = expf(p[j] - m) * inv;
    }
  }
}

// inner > 1: one thread per line; neighbouring threads read neighbouring addresses.
__global__ void softmax_lines(float *y, const float *x, int64_t outer, int64_t D, int64_t inner, bool is_log) {
  RNK_LOOP(l, outer * inner) {
    int64_t o = l / inner, i = l % inner;
    const float *p = x + o * D * inner + i;
    float *q = y + o * D * inner + i;
    float m = -CUDART_INF_F;
    for (int64_t j = 0; j < D; j++) m = p[j * inner] > m ? p[j * inner] : m;
    if (isinf(m) && m < 0) m = 0;
    double s = 0;
    for (int64_t j = 0; j < D; j++) s += expf(p[j * inner] - m);
    if (is_log) {
      double ls = m + log(s);
      for (int64_t j = 0; j < D; j++) q[j * inner] = (float)((double)p[j * inner] - ls);
    } else {
      double inv = 1.0 / s;
      for (int64_t j = 0; j < D; j++) q[j * inner] = (float)(expf(p[j * inner] - m) * inv);
    }
  }
}

// softmax: gx = y * (gy - sum(gy * y)); log-softmax: gx = gy - exp(y) * sum(gy)
__global__ void softmax_bw_rows(float *gx, const float *gy, const float *y, int64_t rows, int64_t D, bool is_log) {
  int lane = threadIdx.x & 31;
  int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5, nwarps = ((int64_t)gridDim.x * blockDim.x) >> 5;
  for (int64_t r = warp; r < rows; r += nwarps) {
    const float *g = gy + r * D, *yy = y + r * D;
    float *out = gx + r * D;
    double s = 0;
    for (int64_t j = lane; j < D; j += 32) s += is_log ? (double)g[j] : (double)g[j] * yy[j];
    s = warp_sum(s);
    for (int64_t j = lane; j < D; j += 32)
      out[j] = is_log ? (float)(g[j] - expf(yy[j]) * s) : (float)(yy[j] * (g[j] - s));
  }
}

__global__ void softmax_bw_lines(float *gx, const float *gy, const float *y, int64_t outer, int64_t D, int64_t inner,
                                 bool is_log) {
  RNK_LOOP(l, outer * inner) {
    int64_t o = l / inner, i = l % inner, base = o * D * inner + i;
    double s = 0;
    for (int64_t j = 0; j < D; j++) {
      int64_t k = base + j * inner;
      s += is_log ? (double)gy[k] : (double)gy[k] * y[k];
    }
    for (int64_t j = 0; j < D; j++) {
      int64_t k = base + j * inner;
      gx[k] = is_log ? (float)(gy[k] - expf(y[k]) * s) : (float)(y[k] * (gy[k] - s));
    }
  }
}

} // namespace

extern "C" size_t rnk_reduce_workspace(const rnk_reduce_plan *p) {
  int64_t s = reduce_splits(p);
  return s > 1 ? (size_t)(p->n_out * s) * sizeof(double) : 0;
}

extern "C" cudaError_t rnk_reduce(rn_reduce_op op, float *y, const float *x, const rnk_reduce_plan *p, void *work,
                                  cudaStream_t st) {
  if (p->n_out == 0) return cudaSuccess;
  double scale = op == RN_RED_MEAN ? 1.0 / (double)p->n_red : 1.0;
  int64_t splits = reduce_splits(p);
  if (splits == 0) {
    reduce_thread<<<grid_for(p->n_out), kThreads, 0, st>>>(op, y, x, *p, scale);
    return launched();
  }
  int64_t blocks = p->n_out * splits;
  unsigned grid = (unsigned)(blocks < 65535LL * 16 ? blocks : 65535LL * 16);
  int threads = p->n_red / splits >= 1024 ? 256 : 128;
  reduce_block<<<grid, threads, 0, st>>>(op, y, (double *)work, x, *p, splits, scale);
  if (splits > 1) {
    cudaError_t e = launched();
    if (e != cudaSuccess) return e;
    reduce_finish<<<grid_for(p->n_out), kThreads, 0, st>>>(op, y, (const double *)work, p->n_out, splits, scale);
  }
  return launched();
}

extern "C" cudaError_t rnk_arg_reduce(bool is_max, float *values, int64_t *indices, const float *x, int64_t outer,
                                      int64_t D, int64_t inner, cudaStream_t st) {
  int64_t lines = outer * inner;
  if (lines == 0 || D == 0) return cudaSuccess;
  if (D >= 2048 && lines < 4096) {
    unsigned grid = (unsigned)(lines < 65535LL * 16 ? lines : 65535LL * 16);
    arg_block<<<grid, 256, 0, st>>>(is_max, values, indices, x, outer, D, inner);
  } else {
    arg_thread<<<grid_for(lines), kThreads, 0, st>>>(is_max, values, indices, x, outer, D, inner);
  }
  return launched();
}

extern "C" cudaError_t rnk_softmax(float *y, const float *x, int64_t outer, int64_t D, int64_t inner, bool is_log,
                                   cudaStream_t st) {
  if (outer * D * inner == 0) return cudaSuccess;
  if (inner == 1) softmax_rows<<<grid_for(outer * 32), kThreads, 0, st>>>(y, x, outer, D, is_log);
  else softmax_lines<<<grid_for(outer * inner), kThreads, 0, st>>>(y, x, outer, D, inner, is_log);
  return launched();
}

extern "C" cudaError_t rnk_softmax_backward(float *gx, const float *gy, const float *y, int64_t outer, int64_t D,
                                            int64_t inner, bool is_log, cudaStream_t st) {
  if (outer * D * inner == 0) return cudaSuccess;
  if (inner == 1) softmax_bw_rows<<<grid_for(outer * 32), kThreads, 0, st>>>(gx, gy, y, outer, D, is_log);
  else softmax_bw_lines<<<grid_for(outer * inner), kThreads, 0, st>>>(gx, gy, y, outer, D, inner, is_log);
  return launched();
}
