// common.cuh - helpers shared by the kernels/*.cu files: launch sizes, strided offsets, block reductions.
#ifndef REALNET_KERNELS_COMMON_CUH
#define REALNET_KERNELS_COMMON_CUH

#include <cuda_runtime.h>
#include <math_constants.h>
#include <stdint.h>

#include "rn_cuda_kernels.h"

namespace rnk {

constexpr int kThreads = 256;

// Grid size for a grid-stride loop over n items: enough blocks to fill the GPU, capped so huge tensors loop.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > 65535LL * 8) b = 65535LL * 8;
  return (unsigned)b;
}

// Every launcher ends with this: the launch error, if any (never a sticky error of earlier work).
inline cudaError_t launched() { return cudaGetLastError(); }

#define RNK_LOOP(i, n) \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

// Element offsets of the row-major linear index i for up to three operands of one shape.
struct Strided3 {
  int ndim;
  int64_t shape[RN_MAX_DIMS];
  int64_t stride[3][RN_MAX_DIMS];
};

inline Strided3 strided3(const rnk_layout *shape_of, int n, const rnk_layout *const *ops) {
  Strided3 s;
  s.ndim = shape_of->ndim;
  for (int d = 0; d < RN_MAX_DIMS; d++) {
    s.shape[d] = d < s.ndim ? shape_of->shape[d] : 1;
    for (int k = 0; k < 3; k++) s.stride[k][d] = (k < n && d < s.ndim) ? ops[k]->stride[d] : 0;
  }
  return s;
}

// I is the index type of the decomposition: uint32_t when the element count fits (32-bit division is several
// times cheaper than 64-bit on GPUs), else int64_t.
template <typename I>
__device__ inline void offsets3(const Strided3 &s, int64_t i, int64_t &o0, int64_t &o1, int64_t &o2) {
  o0 = o1 = o2 = 0;
  I r = (I)i;
  for (int d = s.ndim - 1; d >= 0; d--) {
    I n = (I)s.shape[d], c = r % n;
    r /= n;
    o0 += (int64_t)c * s.stride[0][d];
    o1 += (int64_t)c * s.stride[1][d];
    o2 += (int64_t)c * s.stride[2][d];
  }
}

inline bool fits32(int64_t n) { return n <= 0x7fffffffLL; }

inline int64_t numel(const rnk_layout *l) {
  int64_t n = 1;
  for (int d = 0; d < l->ndim; d++) n *= l->shape[d];
  return n;
}

inline bool contiguous(const rnk_layout *l) {
  int64_t s = 1;
  for (int d = l->ndim - 1; d >= 0; d--) {
    if (l->shape[d] != 1 && l->stride[d] != s) return false;
    s *= l->shape[d];
  }
  return true;
}

// Any-dtype loads and stores through double, as the CPU's rn_load / rn_store.
__device__ inline double load_as_double(const void *p, rn_dtype dt, int64_t i) {
  switch (dt) {
    case RN_F32: return ((const float *)p)[i];
    case RN_U8: return ((const uint8_t *)p)[i];
    case RN_I32: return ((const int32_t *)p)[i];
    default: return (double)((const int64_t *)p)[i];
  }
}

__device__ inline void store_from_double(void *p, rn_dtype dt, int64_t i, double v) {
  switch (dt) {
    case RN_F32: ((float *)p)[i] = (float)v; break;
    case RN_U8: ((uint8_t *)p)[i] = (uint8_t)(v != v ? 0.0 : v < 0 ? 0.0 : v > 255 ? 255.0 : v); break;
    case RN_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    default: ((int64_t *)p)[i] = (int64_t)v; break;
  }
}

// Sum of one double per thread over the block; the result is valid in thread 0. blockDim.x <= 1024, and
// every thread of the block must call it. `sh` holds 32 doubles.
__device__ inline double block_sum(double v, double *sh) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads(); // sh may still be read by a previous call
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  int nw = (blockDim.x + 31) >> 5;
  v = threadIdx.x < nw ? sh[threadIdx.x] : 0.0;
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// block_sum, then broadcast to every thread.
__device__ inline double block_sum_all(double v, double *sh) {
  v = block_sum(v, sh);
  __syncthreads();
  if (threadIdx.x == 0) sh[0] = v;
  __syncthreads();
  v = sh[0];
  return v;
}

} // namespace rnk

#endif
