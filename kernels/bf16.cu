// bf16.cu - float32 <-> bfloat16 conversion for the bfloat16 autocast of convolutions (engine/src/cuda/
// cuda_conv.c): cuDNN's bfloat16 convolutions read and write bfloat16 arrays, the engine keeps float32 tensors.
// Rounding is to nearest, ties to even (__float2bfloat16_rn), as PyTorch's .to(torch.bfloat16).
#include <cuda_bf16.h>

#include "common.cuh"

using namespace rnk;

namespace {

__global__ void to_bf16_k(uint16_t *dst, const float *src, int64_t n) {
  RNK_LOOP(i, n) dst[i] = __bfloat16_as_ushort(__float2bfloat16_rn(src[i]));
}

__global__ void from_bf16_k(float *dst, const uint16_t *src, int64_t n) {
  RNK_LOOP(i, n) dst[i] = __uint_as_float((unsigned)src[i] << 16);
}

}  // namespace

extern "C" cudaError_t rnk_to_bf16(uint16_t *dst, const float *src, int64_t n, cudaStream_t st) {
  if (n == 0) return cudaSuccess;
  to_bf16_k<<<grid_for(n), kThreads, 0, st>>>(dst, src, n);
  return launched();
}

extern "C" cudaError_t rnk_from_bf16(float *dst, const uint16_t *src, int64_t n, cudaStream_t st) {
  if (n == 0) return cudaSuccess;
  from_bf16_k<<<grid_for(n), kThreads, 0, st>>>(dst, src, n);
  return launched();
}
