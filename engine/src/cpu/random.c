/* random.c - counter-based fills: element i depends on (seed, offset + i, stream) only, so any thread split
 * gives the same numbers. */
#include "cpu_kernels.h"

rn_status rn_cpu_rng_uniform(rn_tensor *t, uint64_t seed, uint64_t stream, uint64_t offset, float lo, float hi) {
  rn_tensor *c = NULL;
  RN_TRY(rn_contig_nograd(&c, t));
  float *p = rn_f32(c);
  int64_t n = rn_tensor_numel(c);
  #pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; i++) {
    uint32_t w[4];
    rn_philox(seed, offset + (uint64_t)i, stream, w);
    p[i] = lo + (hi - lo) * rn_u01(w[0]);
  }
  rn_status st = c == t ? RN_OK : rn_cpu_copy(t, c);
  rn_tensor_release(c);
  return st;
}

rn_status rn_cpu_rng_normal(rn_tensor *t, uint64_t seed, uint64_t stream, uint64_t offset, float mean, float std) {
  rn_tensor *c = NULL;
  RN_TRY(rn_contig_nograd(&c, t));
  float *p = rn_f32(c);
  int64_t n = rn_tensor_numel(c);
  #pragma omp parallel for if (n > 16384)
  for (int64_t i = 0; i < n; i++) {
    uint32_t w[4];
    rn_philox(seed, offset + (uint64_t)i, stream, w);
    p[i] = mean + std * rn_normal_from(w[0], w[1]);
  }
  rn_status st = c == t ? RN_OK : rn_cpu_copy(t, c);
  rn_tensor_release(c);
  return st;
}
