/* test_bf16_reference.c - the CPU bfloat16 rounding that the GPU autocast tests take as their reference
 * (bf16_reference.h): hand-worked bit patterns (ties to even both ways, overflow to infinity, NaN, signed
 * zero, subnormals), and a million random float32 bit patterns against a second, independent rounding that picks
 * the nearer of the two neighbouring bfloat16 values in double arithmetic. */
#include <math.h>

#include "bf16_reference.h"
#include "testutil.h"

static float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* The bfloat16 nearest to f by comparing distances (ties to the even mantissa); f finite. */
static uint16_t nearest_by_distance(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1); /* the magnitudes just below and above */
  double dlo = fabs((double)f - (double)bf16_value(lo));
  double vhi = (lo & 0x7fff) == 0x7f7f ? ldexp(1.0, 128) * (lo & 0x8000 ? -1 : 1) : (double)bf16_value(hi);
  double dhi = fabs((double)f - vhi); /* above the largest finite bfloat16: 2^128, which rounds to infinity */
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1) ? hi : lo;
}

static void check_bits(uint32_t in, uint16_t want) {
  uint16_t got = bf16_bits(from_bits(in));
  if (!CHECK(got == want)) fprintf(stderr, "  0x%08x -> 0x%04x, want 0x%04x\n", (unsigned)in, got, want);
}

int main(void) {
  check_bits(0x3f800000u, 0x3f80); /* 1 */
  check_bits(0x3f808000u, 0x3f80); /* 1 + 2^-8: a tie, to the even 0x3f80 */
  check_bits(0x3f818000u, 0x3f82); /* 1 + 3 2^-8: a tie, to the even 0x3f82 (up) */
  check_bits(0x3f808001u, 0x3f81); /* just above the tie */
  check_bits(0x3f807fffu, 0x3f80); /* just below */
  check_bits(0xc0200000u, 0xc020); /* -2.5, exact */
  check_bits(0x40490fdbu, 0x4049); /* pi -> 3.140625 */
  check_bits(0x3dcccccdu, 0x3dcd); /* 0.1 -> 0.10009765625 */
  check_bits(0x7f7fffffu, 0x7f80); /* FLT_MAX rounds to infinity */
  check_bits(0x7f7f7fffu, 0x7f7f); /* the largest finite bfloat16 */
  check_bits(0x7f800000u, 0x7f80); /* +inf */
  check_bits(0xff800000u, 0xff80); /* -inf */
  check_bits(0x80000000u, 0x8000); /* -0 */
  check_bits(0x00000001u, 0x0000); /* the smallest subnormal rounds to +0 */
  check_bits(0x00018000u, 0x0002); /* a subnormal tie, to even (up) */
  check_bits(0x00008000u, 0x0000); /* a subnormal tie, to even (down) */
  CHECK(isnan(bf16_round(from_bits(0x7fc00000u))));
  CHECK(isnan(bf16_round(from_bits(0x7f800001u)))); /* a NaN whose payload is all in the low half stays NaN */
  CHECK(isnan(bf16_round(from_bits(0xff800001u))));
  CHECK(bf16_round(0.1f) == 0.10009765625f);

  uint64_t s = 0x9e3779b97f4a7c15ull; /* xorshift64* */
  int mismatches = 0;
  for (int i = 0; i < 1000000; i++) {
    s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
    uint32_t u = (uint32_t)((s * 0x2545f4914f6cdd1dull) >> 32);
    float f = from_bits(u);
    if (!isfinite(f)) continue;
    if (bf16_bits(f) != nearest_by_distance(f) && mismatches++ < 5)
      fprintf(stderr, "  0x%08x: 0x%04x vs 0x%04x\n", (unsigned)u, bf16_bits(f), nearest_by_distance(f));
  }
  CHECK(mismatches == 0);

  int64_t shape[2] = {3, 5};
  rn_tensor *t = test_randn(2, shape, 1, 3.0f);
  float before = rn_f32(t)[7];
  bf16_round_(t);
  CHECK(rn_f32(t)[7] == bf16_round(before));
  CHECK(fabsf(rn_f32(t)[7] - before) <= fabsf(before) * 0x1p-8f);
  rn_tensor_release(t);
  return test_finish("bf16 reference rounding");
}
