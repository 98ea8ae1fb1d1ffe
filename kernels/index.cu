// index.cu - index_select / index_add, gather / scatter_add and sorted top-k (contiguous tensors, int64
// indices already range-checked by the op layer). The *_add kernels accumulate with atomicAdd, so repeated
// indices sum in an unspecified order (float rounding differs from the CPU's sequential order, nothing else).
#include "common.cuh"

using namespace rnk;

namespace {

// ------------------------------------------------------------------ index_select / index_add

template <typename T>
__global__ void index_select_k(T *y, const T *x, const int64_t *ix, int64_t outer, int64_t D, int64_t inner,
                               int64_t K) {
  RNK_LOOP(e, outer * K * inner) {
    int64_t i = e % inner, t = e / inner, k = t % K, o = t / K;
    y[e] = x[(o * D + ix[k]) * inner + i];
  }
}

__global__ void index_add_k(float *gx, const int64_t *ix, const float *gy, int64_t outer, int64_t D, int64_t inner,
                            int64_t K) {
  RNK_LOOP(e, outer * K * inner) {
    int64_t i = e % inner, t = e / inner, k = t % K, o = t / K;
    atomicAdd(gx + (o * D + ix[k]) * inner + i, gy[e]);
  }
}

// ------------------------------------------------------------------ gather / scatter_add

// Offset in the (contiguous) data tensor of index element e: its coordinates, with ix[e] along dim.
__device__ inline int64_t data_offset(const rnk_gather_plan &p, int64_t e, int64_t along) {
  int64_t off = 0, stride = 1;
  for (int d = p.ndim - 1; d >= 0; d--) {
    int64_t c = e % p.ishape[d];
    e /= p.ishape[d];
    off += (d == p.dim ? along : c) * stride;
    stride *= p.dshape[d];
  }
  return off;
}

template <typename T>
__global__ void gather_k(T *y, const T *x, const int64_t *ix, rnk_gather_plan p) {
  RNK_LOOP(e, p.n) y[e] = x[data_offset(p, e, ix[e])];
}

__global__ void scatter_add_k(float *gx, const int64_t *ix, const float *gy, rnk_gather_plan p) {
  RNK_LOOP(e, p.n) atomicAdd(gx + data_offset(p, e, ix[e]), gy[e]);
}

// ------------------------------------------------------------------ top-k

// The order of top-k: NaN ranks above every number for largest (below for smallest), as on the CPU; equal
// values keep the lower index first; idx < 0 marks padding, which comes after everything.
__device__ inline bool precedes(bool largest, float a, int64_t ai, float b, int64_t bi) {
  if (ai < 0) return false;
  if (bi < 0) return true;
  bool an = isnan(a), bn = isnan(b);
  if (an != bn) return largest ? an : bn;
  if (!an && a != b) return largest ? a > b : a < b;
  return ai < bi;
}

constexpr int kSortMax = 2048; // entries a block sorts in shared memory

// Bitonic sort of n (a power of two <= kSortMax) entries in shared memory, in `precedes` order.
__device__ void block_bitonic(float *v, int64_t *id, int n, bool largest) {
  for (int k = 2; k <= n; k <<= 1)
    for (int j = k >> 1; j > 0; j >>= 1) {
      __syncthreads();
      for (int i = threadIdx.x; i < n; i += blockDim.x) {
        int l = i ^ j;
        if (l <= i) continue;
        bool up = (i & k) == 0;
        bool swap = up ? precedes(largest, v[l], id[l], v[i], id[i]) : precedes(largest, v[i], id[i], v[l], id[l]);
        if (swap) {
          float tv = v[i]; v[i] = v[l]; v[l] = tv;
          int64_t ti = id[i]; id[i] = id[l]; id[l] = ti;
        }
      }
    }
  __syncthreads();
}

__device__ inline int pow2_at_least(int64_t n) {
  int p = 1;
  while (p < n) p <<= 1;
  return p;
}

// D <= kSortMax: one block sorts a whole line.
__global__ void topk_small(float *vals, int64_t *idx, const float *x, int64_t outer, int64_t D, int64_t inner, int k,
                           bool largest) {
  __shared__ float sv[kSortMax];
  __shared__ int64_t si[kSortMax];
  int P = pow2_at_least(D);
  for (int64_t l = blockIdx.x; l < outer * inner; l += gridDim.x) {
    int64_t o = l / inner, i = l % inner;
    __syncthreads();
    for (int j = threadIdx.x; j < P; j += blockDim.x) {
      sv[j] = j < D ? x[(o * D + j) * inner + i] : 0.0f;
      si[j] = j < D ? j : -1;
    }
    block_bitonic(sv, si, P, largest);
    for (int j = threadIdx.x; j < k; j += blockDim.x) {
      vals[(o * k + j) * inner + i] = sv[j];
      idx[(o * k + j) * inner + i] = si[j];
    }
  }
}

// Small k, long lines: each thread keeps its own best k (it sees every k-th... every blockDim-th element, and
// any element of the line's top k is in its thread's top k), then the block sorts the candidates.
constexpr int kSelectMaxK = 16, kSelectThreads = kSortMax / kSelectMaxK;

__global__ void topk_select(float *vals, int64_t *idx, const float *x, int64_t outer, int64_t D, int64_t inner,
                            int k, bool largest) {
  __shared__ float sv[kSortMax];
  __shared__ int64_t si[kSortMax];
  for (int64_t l = blockIdx.x; l < outer * inner; l += gridDim.x) {
    int64_t o = l / inner, i = l % inner;
    float bv[kSelectMaxK];
    int64_t bi[kSelectMaxK];
    for (int q = 0; q < k; q++) bi[q] = -1, bv[q] = 0.0f;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
      float v = x[(o * D + j) * inner + i];
      if (!precedes(largest, v, j, bv[k - 1], bi[k - 1])) continue;
      int pos = k - 1; // insertion: shift worse entries down
      while (pos > 0 && precedes(largest, v, j, bv[pos - 1], bi[pos - 1])) {
        bv[pos] = bv[pos - 1];
        bi[pos] = bi[pos - 1];
        pos--;
      }
      bv[pos] = v;
      bi[pos] = j;
    }
    __syncthreads();
    int n = blockDim.x * k, P = pow2_at_least(n);
    for (int q = 0; q < k; q++) {
      sv[threadIdx.x * k + q] = bv[q];
      si[threadIdx.x * k + q] = bi[q];
    }
    for (int j = n + threadIdx.x; j < P; j += blockDim.x) si[j] = -1, sv[j] = 0.0f;
    block_bitonic(sv, si, P, largest);
    for (int j = threadIdx.x; j < k; j += blockDim.x) {
      vals[(o * k + j) * inner + i] = sv[j];
      idx[(o * k + j) * inner + i] = si[j];
    }
  }
}

// Large k and long lines: a bitonic sort of every line in global memory (keys and indices in the workspace,
// padded to P entries a line), one kernel per merge step.
__global__ void topk_global_init(float *kv, int64_t *ki, const float *x, int64_t outer, int64_t D, int64_t inner,
                                 int64_t P) {
  RNK_LOOP(e, outer * inner * P) {
    int64_t j = e % P, l = e / P, o = l / inner, i = l % inner;
    kv[e] = j < D ? x[(o * D + j) * inner + i] : 0.0f;
    ki[e] = j < D ? j : -1;
  }
}

__global__ void topk_global_step(float *kv, int64_t *ki, int64_t lines, int64_t P, int64_t k, int64_t j,
                                 bool largest) {
  RNK_LOOP(e, lines * P) {
    int64_t i = e % P, base = e - i, l = i ^ j;
    if (l <= i) continue;
    bool up = (i & k) == 0;
    int64_t a = base + i, b = base + l;
    bool swap = up ? precedes(largest, kv[b], ki[b], kv[a], ki[a]) : precedes(largest, kv[a], ki[a], kv[b], ki[b]);
    if (swap) {
      float tv = kv[a]; kv[a] = kv[b]; kv[b] = tv;
      int64_t ti = ki[a]; ki[a] = ki[b]; ki[b] = ti;
    }
  }
}

__global__ void topk_global_out(float *vals, int64_t *idx, const float *kv, const int64_t *ki, int64_t outer,
                                int64_t inner, int64_t P, int k) {
  RNK_LOOP(e, outer * inner * k) {
    int64_t j = e % k, l = e / k, o = l / inner, i = l % inner;
    vals[(o * k + j) * inner + i] = kv[l * P + j];
    idx[(o * k + j) * inner + i] = ki[l * P + j];
  }
}

int64_t pow2_host(int64_t n) {
  int64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

unsigned block_grid(int64_t blocks) { return (unsigned)(blocks < 65535LL * 16 ? blocks : 65535LL * 16); }

// concat: output element (o, j) of [outer, row] comes from the input whose column range [start[i], start[i+1])
// holds j (at most 8 ranges: a linear scan)
struct ConcatArgs {
  int n;
  const void *x[8];
  int64_t start[9];
};

template <typename T>
__global__ void concat_k(T *y, ConcatArgs a, int64_t outer) {
  int64_t row = a.start[a.n];
  RNK_LOOP(e, outer * row) {
    int64_t o = e / row, j = e % row;
    int i = 0;
    while (j >= a.start[i + 1]) i++;
    int64_t chunk = a.start[i + 1] - a.start[i];
    y[e] = static_cast<const T *>(a.x[i])[o * chunk + (j - a.start[i])];
  }
}

} // namespace

extern "C" cudaError_t rnk_concat(void *y, size_t es, const rnk_concat_inputs *in, int64_t outer, cudaStream_t st) {
  if (in->n < 1 || in->n > 8) return cudaErrorInvalidValue;
  ConcatArgs a;
  a.n = in->n;
  a.start[0] = 0;
  for (int i = 0; i < in->n; i++) {
    a.x[i] = in->x[i];
    a.start[i + 1] = a.start[i] + in->chunk[i];
  }
  int64_t n = outer * a.start[in->n];
  if (n == 0) return cudaSuccess;
  unsigned g = grid_for(n);
  switch (es) {
    case 1: concat_k<<<g, kThreads, 0, st>>>((uint8_t *)y, a, outer); break;
    case 2: concat_k<<<g, kThreads, 0, st>>>((uint16_t *)y, a, outer); break;
    case 4: concat_k<<<g, kThreads, 0, st>>>((uint32_t *)y, a, outer); break;
    case 8: concat_k<<<g, kThreads, 0, st>>>((uint64_t *)y, a, outer); break;
    default: return cudaErrorInvalidValue;
  }
  return launched();
}

extern "C" cudaError_t rnk_index_select(void *y, const void *x, size_t es, const int64_t *ix, int64_t outer, int64_t D,
                                        int64_t inner, int64_t K, cudaStream_t st) {
  int64_t n = outer * K * inner;
  if (n == 0) return cudaSuccess;
  unsigned g = grid_for(n);
  switch (es) {
    case 1: index_select_k<<<g, kThreads, 0, st>>>((uint8_t *)y, (const uint8_t *)x, ix, outer, D, inner, K); break;
    case 2: index_select_k<<<g, kThreads, 0, st>>>((uint16_t *)y, (const uint16_t *)x, ix, outer, D, inner, K); break;
    case 4: index_select_k<<<g, kThreads, 0, st>>>((uint32_t *)y, (const uint32_t *)x, ix, outer, D, inner, K); break;
    case 8: index_select_k<<<g, kThreads, 0, st>>>((uint64_t *)y, (const uint64_t *)x, ix, outer, D, inner, K); break;
    default: return cudaErrorInvalidValue;
  }
  return launched();
}

extern "C" cudaError_t rnk_index_add(float *gx, const int64_t *ix, const float *gy, int64_t outer, int64_t D,
                                     int64_t inner, int64_t K, cudaStream_t st) {
  int64_t n = outer * K * inner;
  if (n == 0) return cudaSuccess;
  index_add_k<<<grid_for(n), kThreads, 0, st>>>(gx, ix, gy, outer, D, inner, K);
  return launched();
}

extern "C" cudaError_t rnk_gather(void *y, const void *x, size_t es, const int64_t *ix, const rnk_gather_plan *p,
                                  cudaStream_t st) {
  if (p->n == 0) return cudaSuccess;
  unsigned g = grid_for(p->n);
  switch (es) {
    case 1: gather_k<<<g, kThreads, 0, st>>>((uint8_t *)y, (const uint8_t *)x, ix, *p); break;
    case 2: gather_k<<<g, kThreads, 0, st>>>((uint16_t *)y, (const uint16_t *)x, ix, *p); break;
    case 4: gather_k<<<g, kThreads, 0, st>>>((uint32_t *)y, (const uint32_t *)x, ix, *p); break;
    case 8: gather_k<<<g, kThreads, 0, st>>>((uint64_t *)y, (const uint64_t *)x, ix, *p); break;
    default: return cudaErrorInvalidValue;
  }
  return launched();
}

extern "C" cudaError_t rnk_scatter_add(float *gx, const int64_t *ix, const float *gy, const rnk_gather_plan *p,
                                       cudaStream_t st) {
  if (p->n == 0) return cudaSuccess;
  scatter_add_k<<<grid_for(p->n), kThreads, 0, st>>>(gx, ix, gy, *p);
  return launched();
}

// Which top-k path a call takes: 0 shared sort, 1 per-thread selection, 2 global sort.
static int topk_path(int64_t D, int k) {
  if (D <= kSortMax) return 0;
  if (k <= kSelectMaxK) return 1;
  return 2;
}

extern "C" size_t rnk_topk_workspace(int64_t outer, int64_t D, int64_t inner, int k) {
  if (topk_path(D, k) != 2) return 0;
  return (size_t)(outer * inner * pow2_host(D)) * (sizeof(float) + sizeof(int64_t));
}

extern "C" cudaError_t rnk_topk(float *values, int64_t *indices, const float *x, int64_t outer, int64_t D,
                                int64_t inner, int k, bool largest, void *work, cudaStream_t st) {
  int64_t lines = outer * inner;
  if (lines == 0 || k <= 0) return cudaSuccess;
  if (k > D) return cudaErrorInvalidValue;
  switch (topk_path(D, k)) {
    case 0: topk_small<<<block_grid(lines), 256, 0, st>>>(values, indices, x, outer, D, inner, k, largest); break;
    case 1: topk_select<<<block_grid(lines), kSelectThreads, 0, st>>>(values, indices, x, outer, D, inner, k, largest); break;
    default: {
      int64_t P = pow2_host(D), n = lines * P;
      float *kv = (float *)work;
      int64_t *ki = (int64_t *)(kv + n + (n & 1)); // keep the int64 array 8-byte aligned
      topk_global_init<<<grid_for(n), kThreads, 0, st>>>(kv, ki, x, outer, D, inner, P);
      for (int64_t kk = 2; kk <= P; kk <<= 1)
        for (int64_t j = kk >> 1; j > 0; j >>= 1) {
          cudaError_t e = launched();
          if (e != cudaSuccess) return e;
          topk_global_step<<<grid_for(n), kThreads, 0, st>>>(kv, ki, lines, P, kk, j, largest);
        }
      topk_global_out<<<grid_for(lines * k), kThreads, 0, st>>>(values, indices, kv, ki, outer, inner, P, k);
    }
  }
  return launched();
}
