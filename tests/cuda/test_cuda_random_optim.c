/* test_cuda_random_optim.c - the counter-based RNG gives the CPU's numbers on the GPU for the same seed, stream
 * and offset (contiguous tensors, a strided view, offsets past 2^32, successive fills advancing the offset),
 * and the fused Adam / AdamW step matches over several steps.
 * Tolerances: uniform exact up to one float rounding of lo + (hi - lo) u (1e-7 abs + 1e-7 rel); normal 1e-6 abs
 * + 1e-6 rel (double log/cos of CUDA and glibc may differ in the last double ulp); Adam 1e-6 abs + 1e-5 rel
 * after 5 steps (sqrtf and division, then accumulation). */
#include "cuda_check.h"

static void fills(uint64_t seed, uint64_t stream, uint64_t offset, const char *name) {
  int64_t shape[3] = {3, 77, 129};
  rn_tensor *c = new_on(rn_cpu(), 3, shape, RN_F32, false), *g = new_on(GPU, 3, shape, RN_F32, false);
  rn_rng rc, rg;
  rn_rng_init(&rc, seed, stream);
  rn_rng_init(&rg, seed, stream);
  rc.offset = rg.offset = offset;
  char what[128];
  for (int round = 0; round < 2; round++) { /* the second fill continues from the advanced offset */
    CHECK_OK(rn_rng_uniform_(&rc, c, -2.0f, 3.0f));
    CHECK_OK(rn_rng_uniform_(&rg, g, -2.0f, 3.0f));
    snprintf(what, sizeof what, "uniform %s, fill %d", name, round);
    agree(g, c, 1e-7, 1e-7, what);
    CHECK_OK(rn_rng_normal_(&rc, c, 0.5f, 2.0f));
    CHECK_OK(rn_rng_normal_(&rg, g, 0.5f, 2.0f));
    snprintf(what, sizeof what, "normal %s, fill %d", name, round);
    agree(g, c, 1e-6, 1e-6, what);
  }
  CHECK(rc.offset == rg.offset);
  /* a transposed view: element i of the view (row-major) gets counter offset + i on both devices */
  rn_tensor *cv = NULL, *gv = NULL;
  CHECK_OK(rn_transpose(&cv, c, 0, 2));
  CHECK_OK(rn_transpose(&gv, g, 0, 2));
  CHECK_OK(rn_rng_normal_(&rc, cv, 0.0f, 1.0f));
  CHECK_OK(rn_rng_normal_(&rg, gv, 0.0f, 1.0f));
  snprintf(what, sizeof what, "normal into a transposed view %s", name);
  agree(g, c, 1e-6, 1e-6, what);
  release_all(4, c, g, cv, gv);
}

static void adam(bool decoupled) {
  int64_t shape[2] = {37, 101};
  rn_tensor *pc = test_randn(2, shape, 1, 1.0f), *mc = new_on(rn_cpu(), 2, shape, RN_F32, true);
  rn_tensor *vc = new_on(rn_cpu(), 2, shape, RN_F32, true);
  rn_tensor *pg = to_gpu(pc), *mg = to_gpu(mc), *vg = to_gpu(vc);
  for (int step = 1; step <= 5; step++) {
    rn_tensor *g = test_randn(2, shape, 10 + step, 0.1f), *gg = to_gpu(g);
    CHECK_OK(KC->adam_step(pc, g, mc, vc, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f, step, decoupled));
    CHECK_OK(KG->adam_step(pg, gg, mg, vg, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f, step, decoupled));
    release_all(2, g, gg);
  }
  agree(pg, pc, 1e-6, 1e-5, decoupled ? "AdamW parameters after 5 steps" : "Adam parameters after 5 steps");
  agree(mg, mc, 1e-6, 1e-5, "Adam first moments");
  agree(vg, vc, 1e-9, 1e-5, "Adam second moments");
  release_all(6, pc, mc, vc, pg, mg, vg);
}

int main(void) {
  int skip = cuda_begin("random and optim");
  if (skip) return skip;
  fills(1, 0, 0, "(seed 1, stream 0)");
  fills(0xDEADBEEFCAFEULL, 12345, (1ULL << 32) - 1000, "(64-bit seed, offset crossing 2^32)");
  adam(false);
  adam(true);
  return test_finish("cuda random and optim");
}
