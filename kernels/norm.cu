// norm.cu - batch norm (statistics, apply, backward) and group norm (forward, backward), x viewed as
// [N, C, S]. One block reduces one channel (batch norm) or one (sample, group) (group norm); sums run in double
// and in two passes, as the CPU kernels of engine/src/cpu/norm.c do.
#include "common.cuh"

using namespace rnk;

namespace {

constexpr int kNormThreads = 512;

// ------------------------------------------------------------------ batch norm

__global__ void bn_stats(float *mean, float *var, const float *x, int64_t N, int64_t C, int64_t S) {
  __shared__ double sh[32];
  int64_t c = blockIdx.x, M = N * S;
  double sum = 0;
  for (int64_t e = threadIdx.x; e < M; e += blockDim.x) sum += x[((e / S) * C + c) * S + e % S];
  double tot = block_sum_all(sum, sh), mu = M > 0 ? tot / (double)M : 0.0;
  double sq = 0;
  for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
    double d = x[((e / S) * C + c) * S + e % S] - mu;
    sq += d * d;
  }
  sq = block_sum(sq, sh);
  if (threadIdx.x == 0) {
    mean[c] = (float)mu;
    var[c] = (float)(M > 0 ? sq / (double)M : 0);
  }
}

__global__ void bn_apply(float *y, const float *x, const float *mean, const float *invstd, const float *w,
                         const float *b, int64_t C, int64_t S, int64_t n) {
  RNK_LOOP(e, n) {
    int64_t c = (e / S) % C;
    float scale = invstd[c] * (w ? w[c] : 1.0f);
    float shift = (b ? b[c] : 0.0f) - mean[c] * scale;
    y[e] = x[e] * scale + shift;
  }
}

// Per channel: gb = sum gy, gw = sum gy * xhat; both kept in double in work[2c], work[2c+1] for bn_bw_data.
__global__ void bn_bw_sums(float *gw, float *gb, double *work, const float *gy, const float *x, const float *mean,
                           const float *invstd, int64_t N, int64_t C, int64_t S) {
  __shared__ double sh[32];
  int64_t c = blockIdx.x, M = N * S;
  double mu = mean[c], sg = 0, sgx = 0;
  for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
    int64_t k = ((e / S) * C + c) * S + e % S;
    sg += gy[k];
    sgx += gy[k] * (x[k] - mu);
  }
  sg = block_sum(sg, sh);
  sgx = block_sum(sgx, sh);
  if (threadIdx.x == 0) {
    sgx *= (double)invstd[c];
    if (gb) gb[c] = (float)sg;
    if (gw) gw[c] = (float)sgx;
    work[2 * c] = sg;
    work[2 * c + 1] = sgx;
  }
}

// gx = a * gy + bx * (x - mean) + c0 with the per-channel constants of the CPU kernel.
__global__ void bn_bw_data(float *gx, const float *gy, const float *x, const float *mean, const float *invstd,
                           const float *w, const double *work, bool training, int64_t C, int64_t S, double M,
                           int64_t n) {
  RNK_LOOP(e, n) {
    int64_t c = (e / S) % C;
    double is = invstd[c], k = is * (w ? w[c] : 1.0);
    double mg = training ? work[2 * c] / M : 0, mgx = training ? work[2 * c + 1] / M : 0;
    float a = (float)k, bx = (float)(-k * is * mgx), c0 = (float)(-k * mg);
    gx[e] = a * gy[e] + bx * (x[e] - mean[c]) + c0;
  }
}

// ------------------------------------------------------------------ group norm

// One block per (n, g): a group is cg whole channels, D contiguous elements.
__global__ void gn_forward(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                           int64_t C, int64_t S, int64_t G, float eps, bool silu) {
  __shared__ double sh[32];
  int64_t ng = blockIdx.x, g = ng % G, cg = C / G, D = cg * S;
  const float *xs = x + ng * D;
  float *ys = y + ng * D;
  double sum = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) sum += xs[i];
  double tot = block_sum_all(sum, sh), mu = D ? tot / (double)D : 0.0;
  double sq = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    double d = xs[i] - mu;
    sq += d * d;
  }
  sq = block_sum_all(sq, sh);
  double r = 1.0 / sqrt((D ? sq / (double)D : 0) + (double)eps);
  if (threadIdx.x == 0) {
    mean[ng] = (float)mu;
    rstd[ng] = (float)r;
  }
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    int64_t c = g * cg + i / S;
    float scale = (float)(r * (w ? w[c] : 1.0)), shift = (float)((b ? b[c] : 0.0) - mu * scale);
    float v = xs[i] * scale + shift;
    ys[i] = silu ? v / (1.0f + expf(-v)) : v; /* the SiLU unary kernel's formula */
  }
}

__global__ void gn_bw_data(float *gx, const float *gy, const float *x, const float *mean, const float *rstd,
                           const float *w, int64_t C, int64_t S, int64_t G) {
  __shared__ double sh[32];
  int64_t ng = blockIdx.x, g = ng % G, cg = C / G, D = cg * S;
  const float *xs = x + ng * D, *gs = gy + ng * D;
  float *out = gx + ng * D;
  double mu = mean[ng], r = rstd[ng], sd = 0, sdx = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    double d = gs[i] * (w ? (double)w[g * cg + i / S] : 1.0);
    sd += d;
    sdx += d * (xs[i] - mu) * r;
  }
  sd = block_sum_all(sd, sh);
  sdx = block_sum_all(sdx, sh);
  double md = D ? sd / (double)D : 0, mdx = D ? sdx / (double)D : 0;
  float muf = mean[ng];
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    double wc = w ? w[g * cg + i / S] : 1.0;
    float a = (float)(r * wc), bx = (float)(-r * r * mdx), c0 = (float)(-r * md);
    out[i] = a * gs[i] + bx * (xs[i] - muf) + c0;
  }
}

// One block per channel: gw = sum gy * xhat, gb = sum gy over samples and space.
__global__ void gn_bw_params(float *gw, float *gb, const float *gy, const float *x, const float *mean,
                             const float *rstd, int64_t N, int64_t C, int64_t S, int64_t G) {
  __shared__ double sh[32];
  int64_t c = blockIdx.x, g = c / (C / G), M = N * S;
  double sg = 0, sgx = 0;
  for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
    int64_t n = e / S, k = (n * C + c) * S + e % S;
    double mu = mean[n * G + g], r = rstd[n * G + g];
    sg += gy[k];
    sgx += gy[k] * (x[k] - mu) * r;
  }
  sg = block_sum(sg, sh);
  sgx = block_sum(sgx, sh);
  if (threadIdx.x == 0) {
    if (gw) gw[c] = (float)sgx;
    if (gb) gb[c] = (float)sg;
  }
}

// Grids of one block per item; more than 2^31-1 items cannot be launched this way.
bool grid_ok(int64_t blocks) { return blocks > 0 && blocks <= 0x7fffffffLL; }

} // namespace

extern "C" cudaError_t rnk_batch_norm_stats(float *mean, float *var, const float *x, int64_t N, int64_t C, int64_t S,
                                            cudaStream_t st) {
  if (C == 0) return cudaSuccess;
  if (!grid_ok(C)) return cudaErrorInvalidConfiguration;
  bn_stats<<<(unsigned)C, kNormThreads, 0, st>>>(mean, var, x, N, C, S);
  return launched();
}

extern "C" cudaError_t rnk_batch_norm_apply(float *y, const float *x, const float *mean, const float *invstd,
                                            const float *w, const float *b, int64_t N, int64_t C, int64_t S,
                                            cudaStream_t st) {
  int64_t n = N * C * S;
  if (n == 0) return cudaSuccess;
  bn_apply<<<grid_for(n), kThreads, 0, st>>>(y, x, mean, invstd, w, b, C, S, n);
  return launched();
}

extern "C" cudaError_t rnk_batch_norm_backward(float *gx, float *gw, float *gb, const float *gy, const float *x,
                                               const float *mean, const float *invstd, const float *w, bool training,
                                               int64_t N, int64_t C, int64_t S, double *work, cudaStream_t st) {
  if (C == 0) return cudaSuccess;
  if (!grid_ok(C)) return cudaErrorInvalidConfiguration;
  bn_bw_sums<<<(unsigned)C, kNormThreads, 0, st>>>(gw, gb, work, gy, x, mean, invstd, N, C, S);
  cudaError_t e = launched();
  int64_t n = N * C * S;
  if (e != cudaSuccess || !gx || n == 0) return e;
  bn_bw_data<<<grid_for(n), kThreads, 0, st>>>(gx, gy, x, mean, invstd, w, work, training, C, S, (double)(N * S), n);
  return launched();
}

extern "C" cudaError_t rnk_group_norm(float *y, float *mean, float *rstd, const float *x, const float *w,
                                      const float *b, int64_t N, int64_t C, int64_t S, int groups, float eps,
                                      bool silu, cudaStream_t st) {
  if (N * groups == 0) return cudaSuccess;
  if (!grid_ok(N * groups)) return cudaErrorInvalidConfiguration;
  gn_forward<<<(unsigned)(N * groups), kNormThreads, 0, st>>>(y, mean, rstd, x, w, b, C, S, groups, eps, silu);
  return launched();
}

extern "C" cudaError_t rnk_group_norm_backward(float *gx, float *gw, float *gb, const float *gy, const float *x,
                                               const float *mean, const float *rstd, const float *w, int64_t N,
                                               int64_t C, int64_t S, int groups, cudaStream_t st) {
  if (gx && N * groups > 0) {
    if (!grid_ok(N * groups)) return cudaErrorInvalidConfiguration;
    gn_bw_data<<<(unsigned)(N * groups), kNormThreads, 0, st>>>(gx, gy, x, mean, rstd, w, C, S, groups);
    cudaError_t e = launched();
    if (e != cudaSuccess) return e;
  }
  if ((gw || gb) && C > 0) {
    if (!grid_ok(C)) return cudaErrorInvalidConfiguration;
    gn_bw_params<<<(unsigned)C, kNormThreads, 0, st>>>(gw, gb, gy, x, mean, rstd, N, C, S, groups);
  }
  return launched();
}
