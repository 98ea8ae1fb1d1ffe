// pool.cu - max / average / adaptive average pooling and nearest / bilinear upsampling, forward and backward
// (NCHW float32, contiguous). Window, bin and tap rules are those of engine/src/cpu/pool.c (PyTorch's); one
// thread computes one output element, and the backward kernels scatter into gx with atomicAdd because windows
// and taps of neighbouring outputs overlap.
#include "common.cuh"

using namespace rnk;

namespace {

// ------------------------------------------------------------------ max pool

__global__ void max_pool_k(float *y, int64_t *arg, const float *x, rnk_pool p) {
  RNK_LOOP(e, p.planes * p.oh * p.ow) {
    int64_t ow = e % p.ow, oh = (e / p.ow) % p.oh, pl = e / (p.ow * p.oh);
    const float *xs = x + pl * p.h * p.w;
    int64_t h0 = oh * p.stride[0] - p.pad[0], h1 = h0 + p.kernel[0];
    int64_t w0 = ow * p.stride[1] - p.pad[1], w1 = w0 + p.kernel[1];
    if (h0 < 0) h0 = 0;
    if (h1 > p.h) h1 = p.h;
    if (w0 < 0) w0 = 0;
    if (w1 > p.w) w1 = p.w;
    // the first element wins ties and a NaN wins over everything (the last NaN), as on the CPU
    int64_t best = h0 * p.w + w0;
    float m = -CUDART_INF_F;
    for (int64_t ih = h0; ih < h1; ih++)
      for (int64_t iw = w0; iw < w1; iw++) {
        float v = xs[ih * p.w + iw];
        bool take = v > m || v != v;
        m = take ? v : m;
        best = take ? ih * p.w + iw : best;
      }
    y[e] = m;
    arg[e] = best;
  }
}

__global__ void max_pool_bw(float *gx, const float *gy, const int64_t *arg, rnk_pool p) {
  RNK_LOOP(e, p.planes * p.oh * p.ow) {
    int64_t pl = e / (p.oh * p.ow);
    atomicAdd(gx + pl * p.h * p.w + arg[e], gy[e]);
  }
}

// ------------------------------------------------------------------ avg pool

// The window of output (oh, ow) clipped to the input, and its divisor (0 when the window is empty).
__device__ inline float avg_window(const rnk_pool &p, int64_t oh, int64_t ow, int64_t &h0, int64_t &h1, int64_t &w0,
                                   int64_t &w1) {
  h0 = oh * p.stride[0] - p.pad[0];
  w0 = ow * p.stride[1] - p.pad[1];
  h1 = h0 + p.kernel[0];
  w1 = w0 + p.kernel[1];
  if (h1 > p.h + p.pad[0]) h1 = p.h + p.pad[0];
  if (w1 > p.w + p.pad[1]) w1 = p.w + p.pad[1];
  int64_t padded = (h1 - h0) * (w1 - w0);
  if (h0 < 0) h0 = 0;
  if (w0 < 0) w0 = 0;
  if (h1 > p.h) h1 = p.h;
  if (w1 > p.w) w1 = p.w;
  if (h0 >= h1 || w0 >= w1) return 0;
  return (float)(p.count_include_pad ? padded : (h1 - h0) * (w1 - w0));
}

__global__ void avg_pool_k(float *y, const float *x, rnk_pool p) {
  RNK_LOOP(e, p.planes * p.oh * p.ow) {
    int64_t ow = e % p.ow, oh = (e / p.ow) % p.oh, pl = e / (p.ow * p.oh);
    const float *xs = x + pl * p.h * p.w;
    int64_t h0, h1, w0, w1;
    float div = avg_window(p, oh, ow, h0, h1, w0, w1), sum = 0;
    for (int64_t ih = h0; ih < h1; ih++)
      for (int64_t iw = w0; iw < w1; iw++) sum += xs[ih * p.w + iw];
    y[e] = div > 0 ? sum / div : 0;
  }
}

__global__ void avg_pool_bw(float *gx, const float *gy, rnk_pool p) {
  RNK_LOOP(e, p.planes * p.oh * p.ow) {
    int64_t ow = e % p.ow, oh = (e / p.ow) % p.oh, pl = e / (p.ow * p.oh);
    float *gs = gx + pl * p.h * p.w;
    int64_t h0, h1, w0, w1;
    float div = avg_window(p, oh, ow, h0, h1, w0, w1);
    if (div <= 0) continue;
    float g = gy[e] / div;
    for (int64_t ih = h0; ih < h1; ih++)
      for (int64_t iw = w0; iw < w1; iw++) atomicAdd(gs + ih * p.w + iw, g);
  }
}

// ------------------------------------------------------------------ adaptive avg pool

// PyTorch's bins [floor(i*in/out), ceil((i+1)*in/out))
__device__ inline int64_t bin_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
__device__ inline int64_t bin_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

__global__ void adaptive_k(float *y, const float *x, rnk_pool p) {
  RNK_LOOP(e, p.planes * p.oh * p.ow) {
    int64_t ow = e % p.ow, oh = (e / p.ow) % p.oh, pl = e / (p.ow * p.oh);
    const float *xs = x + pl * p.h * p.w;
    int64_t h0 = bin_start(oh, p.h, p.oh), h1 = bin_end(oh, p.h, p.oh);
    int64_t w0 = bin_start(ow, p.w, p.ow), w1 = bin_end(ow, p.w, p.ow);
    double sum = 0;
    for (int64_t ih = h0; ih < h1; ih++)
      for (int64_t iw = w0; iw < w1; iw++) sum += xs[ih * p.w + iw];
    y[e] = (float)(sum / (double)((h1 - h0) * (w1 - w0)));
  }
}

// Global pooling (one bin a plane): a block per plane, so a large plane is summed by many threads.
__global__ void adaptive_global_k(float *y, const float *x, rnk_pool p) {
  __shared__ double sh[32];
  int64_t hw = p.h * p.w;
  for (int64_t pl = blockIdx.x; pl < p.planes; pl += gridDim.x) {
    const float *xs = x + pl * hw;
    double sum = 0;
    for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) sum += xs[i];
    sum = block_sum(sum, sh);
    if (threadIdx.x == 0) y[pl] = (float)(sum / (double)hw);
  }
}

__global__ void adaptive_bw(float *gx, const float *gy, rnk_pool p) {
  RNK_LOOP(e, p.planes * p.oh * p.ow) {
    int64_t ow = e % p.ow, oh = (e / p.ow) % p.oh, pl = e / (p.ow * p.oh);
    float *gs = gx + pl * p.h * p.w;
    int64_t h0 = bin_start(oh, p.h, p.oh), h1 = bin_end(oh, p.h, p.oh);
    int64_t w0 = bin_start(ow, p.w, p.ow), w1 = bin_end(ow, p.w, p.ow);
    float g = gy[e] / (float)((h1 - h0) * (w1 - w0));
    for (int64_t ih = h0; ih < h1; ih++)
      for (int64_t iw = w0; iw < w1; iw++) atomicAdd(gs + ih * p.w + iw, g);
  }
}

// Global pooling backward: every input element of a plane receives the same share; no atomics needed.
__global__ void adaptive_global_bw(float *gx, const float *gy, rnk_pool p) {
  int64_t hw = p.h * p.w;
  RNK_LOOP(e, p.planes * hw) gx[e] += gy[e / hw] / (float)hw;
}

// ------------------------------------------------------------------ upsample

__device__ inline int64_t nearest_src(int64_t dst, int64_t in, int64_t out) {
  if (out == in) return dst;
  if (out == 2 * in) return dst >> 1;
  float scale = (float)in / (float)out;
  int64_t s = (int64_t)floorf((float)dst * scale);
  return s < in - 1 ? s : in - 1;
}

struct Tap { int64_t i0, step; float l1; };

__device__ inline Tap linear_tap(int64_t dst, int64_t in, int64_t out, bool align_corners) {
  float src;
  if (align_corners) {
    float scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    src = scale * (float)dst;
  } else {
    float scale = (float)in / (float)out;
    src = scale * ((float)dst + 0.5f) - 0.5f;
    if (src < 0) src = 0;
  }
  Tap t;
  t.i0 = (int64_t)src;
  if (t.i0 > in - 1) t.i0 = in - 1;
  t.step = t.i0 < in - 1 ? 1 : 0;
  t.l1 = src - (float)t.i0;
  return t;
}

__device__ inline Tap tap_of(int64_t dst, int64_t in, int64_t out, rn_upsample_mode mode, bool align) {
  if (mode == RN_UPSAMPLE_NEAREST) {
    Tap t = {nearest_src(dst, in, out), 0, 0.0f};
    return t;
  }
  return linear_tap(dst, in, out, align);
}

__global__ void upsample_k(float *y, const float *x, rnk_pool p, rn_upsample_mode mode, bool align) {
  RNK_LOOP(e, p.planes * p.oh * p.ow) {
    int64_t ow = e % p.ow, oh = (e / p.ow) % p.oh, pl = e / (p.ow * p.oh);
    Tap th = tap_of(oh, p.h, p.oh, mode, align), tw = tap_of(ow, p.w, p.ow, mode, align);
    const float *r0 = x + pl * p.h * p.w + th.i0 * p.w, *r1 = r0 + th.step * p.w;
    if (mode == RN_UPSAMPLE_NEAREST) {
      y[e] = r0[tw.i0];
      continue;
    }
    float l1 = th.l1, l0 = 1 - l1, m1 = tw.l1, m0 = 1 - m1;
    int64_t a = tw.i0, b = a + tw.step;
    y[e] = l0 * (m0 * r0[a] + m1 * r0[b]) + l1 * (m0 * r1[a] + m1 * r1[b]);
  }
}

__global__ void upsample_bw(float *gx, const float *gy, rnk_pool p, rn_upsample_mode mode, bool align) {
  RNK_LOOP(e, p.planes * p.oh * p.ow) {
    int64_t ow = e % p.ow, oh = (e / p.ow) % p.oh, pl = e / (p.ow * p.oh);
    Tap th = tap_of(oh, p.h, p.oh, mode, align), tw = tap_of(ow, p.w, p.ow, mode, align);
    float *r0 = gx + pl * p.h * p.w + th.i0 * p.w, *r1 = r0 + th.step * p.w;
    float g = gy[e];
    if (mode == RN_UPSAMPLE_NEAREST) {
      atomicAdd(r0 + tw.i0, g);
      continue;
    }
    float l1 = th.l1, l0 = 1 - l1, m1 = tw.l1, m0 = 1 - m1, vt = l0 * g, vb = l1 * g;
    int64_t a = tw.i0, b = a + tw.step;
    atomicAdd(r0 + a, m0 * vt);
    atomicAdd(r0 + b, m1 * vt);
    atomicAdd(r1 + a, m0 * vb);
    atomicAdd(r1 + b, m1 * vb);
  }
}

int64_t outputs(const rnk_pool *p) { return p->planes * p->oh * p->ow; }

} // namespace

extern "C" cudaError_t rnk_max_pool2d(float *y, int64_t *argmax, const float *x, const rnk_pool *p, cudaStream_t st) {
  if (outputs(p) == 0) return cudaSuccess;
  max_pool_k<<<grid_for(outputs(p)), kThreads, 0, st>>>(y, argmax, x, *p);
  return launched();
}

extern "C" cudaError_t rnk_max_pool2d_backward(float *gx, const float *gy, const int64_t *argmax, const rnk_pool *p,
                                               cudaStream_t st) {
  if (outputs(p) == 0) return cudaSuccess;
  max_pool_bw<<<grid_for(outputs(p)), kThreads, 0, st>>>(gx, gy, argmax, *p);
  return launched();
}

extern "C" cudaError_t rnk_avg_pool2d(float *y, const float *x, const rnk_pool *p, cudaStream_t st) {
  if (outputs(p) == 0) return cudaSuccess;
  avg_pool_k<<<grid_for(outputs(p)), kThreads, 0, st>>>(y, x, *p);
  return launched();
}

extern "C" cudaError_t rnk_avg_pool2d_backward(float *gx, const float *gy, const rnk_pool *p, cudaStream_t st) {
  if (outputs(p) == 0) return cudaSuccess;
  avg_pool_bw<<<grid_for(outputs(p)), kThreads, 0, st>>>(gx, gy, *p);
  return launched();
}

extern "C" cudaError_t rnk_adaptive_avg_pool2d(float *y, const float *x, const rnk_pool *p, cudaStream_t st) {
  if (outputs(p) == 0) return cudaSuccess;
  if (p->oh == 1 && p->ow == 1 && p->h * p->w >= 256) {
    unsigned grid = (unsigned)(p->planes < 65535LL * 16 ? p->planes : 65535LL * 16);
    adaptive_global_k<<<grid, kThreads, 0, st>>>(y, x, *p);
  } else {
    adaptive_k<<<grid_for(outputs(p)), kThreads, 0, st>>>(y, x, *p);
  }
  return launched();
}

extern "C" cudaError_t rnk_adaptive_avg_pool2d_backward(float *gx, const float *gy, const rnk_pool *p,
                                                        cudaStream_t st) {
  if (outputs(p) == 0) return cudaSuccess;
  if (p->oh == 1 && p->ow == 1) adaptive_global_bw<<<grid_for(p->planes * p->h * p->w), kThreads, 0, st>>>(gx, gy, *p);
  else adaptive_bw<<<grid_for(outputs(p)), kThreads, 0, st>>>(gx, gy, *p);
  return launched();
}

extern "C" cudaError_t rnk_upsample(float *y, const float *x, const rnk_pool *p, rn_upsample_mode mode,
                                    bool align_corners, cudaStream_t st) {
  if (outputs(p) == 0) return cudaSuccess;
  upsample_k<<<grid_for(outputs(p)), kThreads, 0, st>>>(y, x, *p, mode, align_corners);
  return launched();
}

extern "C" cudaError_t rnk_upsample_backward(float *gx, const float *gy, const rnk_pool *p, rn_upsample_mode mode,
                                             bool align_corners, cudaStream_t st) {
  if (outputs(p) == 0) return cudaSuccess;
  upsample_bw<<<grid_for(outputs(p)), kThreads, 0, st>>>(gx, gy, *p, mode, align_corners);
  return launched();
}
