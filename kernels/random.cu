// random.cu - Philox4x32-10 fills and the fused Adam step. Element i of a fill uses Philox counter (offset + i)
// on `stream` under key `seed`, with the word-to-float maps of engine/src/rng.c, so a GPU fill gives the numbers
// a CPU fill of the same generator state gives (bit for bit for uniform; normal goes through double log/cos,
// whose last-ulp rounding may differ between libm and CUDA's, far below float precision).
#include "common.cuh"

using namespace rnk;

namespace {

__device__ inline void philox(uint64_t seed, uint64_t ctr, uint64_t stream, uint32_t out[4]) {
  uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32), c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c0 = n0; c1 = (uint32_t)p1; c2 = n2; c3 = (uint32_t)p0;
    k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

__device__ inline float u01(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

__device__ inline float normal_from(uint32_t w0, uint32_t w1) {
  double a = ((double)w0 + 1.0) / 4294967296.0; // (0, 1]: log stays finite
  double b = (double)w1 / 4294967296.0;
  return (float)(sqrt(-2.0 * log(a)) * cos(6.283185307179586 * b));
}

__global__ void uniform_k(float *p, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset, float lo, float hi) {
  RNK_LOOP(i, n) {
    uint32_t w[4];
    philox(seed, offset + (uint64_t)i, stream, w);
    p[i] = lo + (hi - lo) * u01(w[0]);
  }
}

__global__ void normal_k(float *p, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset, float mean, float sd) {
  RNK_LOOP(i, n) {
    uint32_t w[4];
    philox(seed, offset + (uint64_t)i, stream, w);
    p[i] = mean + sd * normal_from(w[0], w[1]);
  }
}

__global__ void adam_k(float *p, const float *g, float *m, float *v, int64_t n, float beta1, float beta2, float eps,
                       float step_size, float inv_sqrt_bc2, float decay, float l2) {
  RNK_LOOP(i, n) {
    float gi = g[i] + l2 * p[i];
    float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
  }
}

} // namespace

extern "C" cudaError_t rnk_rng_uniform(float *p, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset, float lo,
                                       float hi, cudaStream_t st) {
  if (n == 0) return cudaSuccess;
  uniform_k<<<grid_for(n), kThreads, 0, st>>>(p, n, seed, stream, offset, lo, hi);
  return launched();
}

extern "C" cudaError_t rnk_rng_normal(float *p, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset, float mean,
                                      float sd, cudaStream_t st) {
  if (n == 0) return cudaSuccess;
  normal_k<<<grid_for(n), kThreads, 0, st>>>(p, n, seed, stream, offset, mean, sd);
  return launched();
}

extern "C" cudaError_t rnk_adam_step(float *p, const float *g, float *m, float *v, int64_t n, float beta1, float beta2,
                                     float eps, float step_size, float inv_sqrt_bc2, float decay, float l2,
                                     cudaStream_t st) {
  if (n == 0) return cudaSuccess;
  adam_k<<<grid_for(n), kThreads, 0, st>>>(p, g, m, v, n, beta1, beta2, eps, step_size, inv_sqrt_bc2, decay, l2);
  return launched();
}
