/* rng.h - counter-based random numbers (Philox4x32-10).
 *
 * A generator is (seed, stream, offset). Element i of a filled tensor uses counter (offset + i, stream), so
 * the numbers depend only on the seed, the stream and the order of calls, never on the thread count or the
 * device. Each fill advances offset by the number of elements.
 */
#ifndef REALNET_RNG_H
#define REALNET_RNG_H

#include "tensor.h"

typedef struct rn_rng { uint64_t seed, stream, offset; } rn_rng;

void rn_rng_init(rn_rng *g, uint64_t seed, uint64_t stream);
/* One Philox4x32-10 block: four 32-bit words for (counter, stream) under key `seed`. */
void rn_philox(uint64_t seed, uint64_t counter, uint64_t stream, uint32_t out[4]);
/* Uniform in [0,1) from one word; normal from two words (Box-Muller). */
float rn_u01(uint32_t w);
float rn_normal_from(uint32_t w0, uint32_t w1);

rn_status rn_rng_uniform_(rn_rng *g, rn_tensor *t, float lo, float hi);
rn_status rn_rng_normal_(rn_rng *g, rn_tensor *t, float mean, float std);
/* Scalar draws (host side): uniform double in [0,1), integer in [lo, hi] inclusive. */
double rn_rng_double(rn_rng *g);
int64_t rn_rng_int(rn_rng *g, int64_t lo, int64_t hi);
/* A random permutation of 0..n-1 as an int64 CPU tensor (Fisher-Yates on rn_rng_int draws). */
rn_status rn_rng_permutation(rn_rng *g, rn_tensor **out, int64_t n);

#endif
