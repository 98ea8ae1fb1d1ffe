/* rng.c - Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11). */
#include "internal.h"

void rn_philox(uint64_t seed, uint64_t ctr, uint64_t stream, uint32_t out[4]) {
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

float rn_u01(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

float rn_normal_from(uint32_t w0, uint32_t w1) {
  double u1 = ((double)w0 + 1.0) / 4294967296.0; /* (0, 1]: log stays finite */
  double u2 = (double)w1 / 4294967296.0;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void rn_rng_init(rn_rng *g, uint64_t seed, uint64_t stream) {
  g->seed = seed;
  g->stream = stream;
  g->offset = 0;
}

static rn_status fill_checks(const rn_tensor *t, const char *what, double a, double b) {
  RN_TRY(rn_check_f32(t, what));
  double v[2] = {a, b};
  return rn_check_finite_params(what, 2, v);
}

rn_status rn_rng_uniform_(rn_rng *g, rn_tensor *t, float lo, float hi) {
  RN_TRY(fill_checks(t, "rand", lo, hi));
  if (hi < lo) return rn_error(RN_ERR_ARG, "rand: upper bound %g is below lower bound %g", hi, lo);
  RN_TRY(rn_kernels_of(t)->rng_uniform(t, g->seed, g->stream, g->offset, lo, hi));
  g->offset += (uint64_t)rn_tensor_numel(t);
  return RN_OK;
}

rn_status rn_rng_normal_(rn_rng *g, rn_tensor *t, float mean, float std) {
  RN_TRY(fill_checks(t, "randn", mean, std));
  if (std < 0) return rn_error(RN_ERR_ARG, "randn: std %g is negative", std);
  RN_TRY(rn_kernels_of(t)->rng_normal(t, g->seed, g->stream, g->offset, mean, std));
  g->offset += (uint64_t)rn_tensor_numel(t);
  return RN_OK;
}

double rn_rng_double(rn_rng *g) {
  uint32_t w[4];
  rn_philox(g->seed, g->offset++, g->stream, w);
  return (double)(((uint64_t)w[0] << 21) ^ (w[1] >> 11)) / 9007199254740992.0; /* 53 bits */
}

int64_t rn_rng_int(rn_rng *g, int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  uint64_t range = (uint64_t)(hi - lo) + 1;
  for (;;) { /* rejection keeps every value equally likely */
    uint32_t w[4];
    rn_philox(g->seed, g->offset++, g->stream, w);
    uint64_t x = ((uint64_t)w[0] << 32) | w[1];
    uint64_t limit = range ? UINT64_MAX - UINT64_MAX % range : UINT64_MAX;
    if (range == 0) return lo + (int64_t)x;
    if (x < limit) return lo + (int64_t)(x % range);
  }
}

rn_status rn_rng_permutation(rn_rng *g, rn_tensor **out, int64_t n) {
  *out = NULL;
  if (n < 0) return rn_error(RN_ERR_ARG, "randperm: negative size %lld", (long long)n);
  RN_TRY(rn_tensor_empty(out, 1, &n, RN_I64, rn_cpu()));
  int64_t *p = rn_tensor_data(*out);
  for (int64_t i = 0; i < n; i++) p[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = rn_rng_int(g, 0, i), t = p[i];
    p[i] = p[j]; p[j] = t;
  }
  return RN_OK;
}
