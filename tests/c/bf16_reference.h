/* bf16_reference.h - the bfloat16 rounding of the CUDA backend's autocast, on the CPU: the reference the GPU
 * agreement tests (tests/cuda/test_cuda_bf16.c) compute their expected results with, and which
 * tests/c/test_bf16_reference.c checks against hand-worked bit patterns.
 *
 * bfloat16 is the top half of a float32: sign, the 8 exponent bits, 7 mantissa bits. Rounding a float32 to it
 * is to nearest, ties to even (as CUDA's __float2bfloat16_rn and PyTorch's .to(torch.bfloat16)); NaN stays a
 * (quiet) NaN, and a value above the largest bfloat16 rounds to infinity. */
#ifndef REALNET_TEST_BF16_REFERENCE_H
#define REALNET_TEST_BF16_REFERENCE_H

#include <stdint.h>
#include <string.h>

#include "realnet/realnet.h"

static inline uint16_t bf16_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN: keep it quiet */
  uint32_t lsb = (u >> 16) & 1u;                                            /* ties go to the even one */
  return (uint16_t)((u + 0x7fffu + lsb) >> 16);
}

static inline float bf16_value(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static inline float bf16_round(float f) { return bf16_value(bf16_bits(f)); }

/* Rounds every element of a contiguous float32 CPU tensor in place. */
static inline void bf16_round_(rn_tensor *t) {
  float *p = rn_f32(t);
  for (int64_t i = 0; i < rn_tensor_numel(t); i++) p[i] = bf16_round(p[i]);
}

#endif
