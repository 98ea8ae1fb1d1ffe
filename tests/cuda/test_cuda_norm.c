/* test_cuda_norm.c - batch norm statistics, apply (with and without affine), backward (training and eval,
 * with and without each gradient) on [N,C,H,W] and [N,C]; group norm forward (also fused with SiLU) and backward.
 * Tolerances: statistics 1e-5 abs + 1e-5 rel (double sums on both sides, another order); outputs and input
 * gradients 1e-5 abs + 1e-4 rel; weight/bias gradients (sums over N*S) 1e-4 abs + 1e-4 rel. */
#include "cuda_check.h"

static void batch_norm_case(int ndim, const int64_t *shape, const char *name) {
  int64_t C = shape[1], sc[1] = {C};
  rn_tensor *x = test_randn(ndim, shape, 1, 2.0f), *gx = to_gpu(x);
  /* a large common offset: the two-pass variance must stay accurate */
  CHECK_OK(KC->unary(RN_UN_SCALE, x, x, 1.0f, 50.0f));
  CHECK_OK(KG->unary(RN_UN_SCALE, gx, gx, 1.0f, 50.0f));
  rn_tensor *mc = new_on(rn_cpu(), 1, sc, RN_F32, false), *vc = new_on(rn_cpu(), 1, sc, RN_F32, false);
  rn_tensor *mg = new_on(GPU, 1, sc, RN_F32, false), *vg = new_on(GPU, 1, sc, RN_F32, false);
  CHECK_OK(KC->batch_norm_stats(mc, vc, x));
  CHECK_OK(KG->batch_norm_stats(mg, vg, gx));
  char what[128];
  snprintf(what, sizeof what, "batch_norm mean: %s", name);
  agree(mg, mc, 1e-5, 1e-5, what);
  snprintf(what, sizeof what, "batch_norm variance: %s", name);
  agree(vg, vc, 1e-5, 1e-5, what);
  /* the rest from the CPU's statistics, so each kernel is compared alone */
  rn_tensor *inv = uniform(1, sc, 2, 0.3f, 1.5f), *w = test_randn(1, sc, 3, 1.0f), *b = test_randn(1, sc, 4, 1.0f);
  rn_tensor *mcg = to_gpu(mc), *ginv = to_gpu(inv), *gw = to_gpu(w), *gb = to_gpu(b);
  for (int affine = 0; affine < 2; affine++) {
    rn_tensor *yc = new_on(rn_cpu(), ndim, shape, RN_F32, false), *yg = new_on(GPU, ndim, shape, RN_F32, false);
    CHECK_OK(KC->batch_norm_apply(yc, x, mc, inv, affine ? w : NULL, affine ? b : NULL));
    CHECK_OK(KG->batch_norm_apply(yg, gx, mcg, ginv, affine ? gw : NULL, affine ? gb : NULL));
    snprintf(what, sizeof what, "batch_norm apply (affine %d): %s", affine, name);
    agree(yg, yc, 1e-5, 1e-4, what);
    release_all(2, yc, yg);
  }
  rn_tensor *gy = test_randn(ndim, shape, 5, 1.0f), *ggy = to_gpu(gy);
  for (int mode = 0; mode < 4; mode++) { /* bit 0: training, bit 1: affine (weight and its gradients) */
    bool training = mode & 1, affine = mode & 2;
    rn_tensor *dxc = new_on(rn_cpu(), ndim, shape, RN_F32, false), *dxg = new_on(GPU, ndim, shape, RN_F32, false);
    rn_tensor *dwc = new_on(rn_cpu(), 1, sc, RN_F32, false), *dwg = new_on(GPU, 1, sc, RN_F32, false);
    rn_tensor *dbc = new_on(rn_cpu(), 1, sc, RN_F32, false), *dbg = new_on(GPU, 1, sc, RN_F32, false);
    CHECK_OK(KC->batch_norm_backward(dxc, affine ? dwc : NULL, affine ? dbc : NULL, gy, x, mc, inv, affine ? w : NULL, training));
    CHECK_OK(KG->batch_norm_backward(dxg, affine ? dwg : NULL, affine ? dbg : NULL, ggy, gx, mcg, ginv, affine ? gw : NULL, training));
    snprintf(what, sizeof what, "batch_norm backward gx (training %d, affine %d): %s", training, affine, name);
    agree(dxg, dxc, 1e-5, 1e-4, what);
    if (affine) {
      snprintf(what, sizeof what, "batch_norm backward gw (training %d): %s", training, name);
      agree(dwg, dwc, 1e-4, 1e-4, what);
      snprintf(what, sizeof what, "batch_norm backward gb (training %d): %s", training, name);
      agree(dbg, dbc, 1e-4, 1e-4, what);
    }
    release_all(6, dxc, dxg, dwc, dwg, dbc, dbg);
  }
  /* parameter gradients only (gx NULL) */
  rn_tensor *dwc = new_on(rn_cpu(), 1, sc, RN_F32, false), *dwg = new_on(GPU, 1, sc, RN_F32, false);
  CHECK_OK(KC->batch_norm_backward(NULL, dwc, NULL, gy, x, mc, inv, w, true));
  CHECK_OK(KG->batch_norm_backward(NULL, dwg, NULL, ggy, gx, mcg, ginv, gw, true));
  agree(dwg, dwc, 1e-4, 1e-4, "batch_norm backward, weight gradient only");
  release_all(16, x, gx, mc, vc, mg, vg, inv, w, b, mcg, ginv, gw, gb, gy, ggy, dwc);
  rn_tensor_release(dwg);
}

/* silu: the forward fused with SiLU (the CPU's formula; the statistics and the backward are group norm's) */
static void group_norm_case(const int64_t *shape, int groups, bool affine, bool silu, const char *name) {
  int64_t N = shape[0], C = shape[1], sc[1] = {C}, sg[2] = {N, groups};
  rn_tensor *x = test_randn(4, shape, 6, 1.5f), *gx = to_gpu(x);
  rn_tensor *w = affine ? test_randn(1, sc, 7, 1.0f) : NULL, *b = affine ? test_randn(1, sc, 8, 1.0f) : NULL;
  rn_tensor *gw = affine ? to_gpu(w) : NULL, *gb = affine ? to_gpu(b) : NULL;
  rn_tensor *yc = new_on(rn_cpu(), 4, shape, RN_F32, false), *yg = new_on(GPU, 4, shape, RN_F32, false);
  rn_tensor *mc = new_on(rn_cpu(), 2, sg, RN_F32, false), *mg = new_on(GPU, 2, sg, RN_F32, false);
  rn_tensor *rc = new_on(rn_cpu(), 2, sg, RN_F32, false), *rg = new_on(GPU, 2, sg, RN_F32, false);
  CHECK_OK(KC->group_norm(yc, mc, rc, x, groups, w, b, 1e-5f, silu));
  CHECK_OK(KG->group_norm(yg, mg, rg, gx, groups, gw, gb, 1e-5f, silu));
  char what[128];
  snprintf(what, sizeof what, "group_norm%s output: %s", silu ? " + SiLU" : "", name);
  agree(yg, yc, 1e-5, 1e-4, what);
  snprintf(what, sizeof what, "group_norm mean: %s", name);
  agree(mg, mc, 1e-5, 1e-5, what);
  snprintf(what, sizeof what, "group_norm rstd: %s", name);
  agree(rg, rc, 1e-5, 1e-5, what);
  if (silu) { /* the fused kernel against the GPU's own group norm, then SiLU (the same formulas: ~1 ulp at most) */
    rn_tensor *y2 = new_on(GPU, 4, shape, RN_F32, false), *m2 = new_on(GPU, 2, sg, RN_F32, false);
    rn_tensor *r2 = new_on(GPU, 2, sg, RN_F32, false);
    CHECK_OK(KG->group_norm(y2, m2, r2, gx, groups, gw, gb, 1e-5f, false));
    CHECK_OK(KG->unary(RN_UN_SILU, y2, y2, 0.0f, 0.0f));
    rn_tensor *y2c = NULL;
    CHECK_OK(rn_to_device(&y2c, y2, rn_cpu()));
    snprintf(what, sizeof what, "group_norm + SiLU in one kernel vs the two GPU kernels: %s", name);
    agree(yg, y2c, 1e-6, 1e-6, what);
    release_all(4, y2, m2, r2, y2c);
  }
  rn_tensor *gy = test_randn(4, shape, 9, 1.0f), *ggy = to_gpu(gy), *mcg = to_gpu(mc), *rcg = to_gpu(rc);
  rn_tensor *dxc = new_on(rn_cpu(), 4, shape, RN_F32, false), *dxg = new_on(GPU, 4, shape, RN_F32, false);
  rn_tensor *dwc = new_on(rn_cpu(), 1, sc, RN_F32, false), *dwg = new_on(GPU, 1, sc, RN_F32, false);
  rn_tensor *dbc = new_on(rn_cpu(), 1, sc, RN_F32, false), *dbg = new_on(GPU, 1, sc, RN_F32, false);
  CHECK_OK(KC->group_norm_backward(dxc, dwc, dbc, gy, x, mc, rc, groups, w));
  CHECK_OK(KG->group_norm_backward(dxg, dwg, dbg, ggy, gx, mcg, rcg, groups, gw));
  snprintf(what, sizeof what, "group_norm backward gx: %s", name);
  agree(dxg, dxc, 1e-5, 1e-4, what);
  snprintf(what, sizeof what, "group_norm backward gw: %s", name);
  agree(dwg, dwc, 1e-4, 1e-4, what);
  snprintf(what, sizeof what, "group_norm backward gb: %s", name);
  agree(dbg, dbc, 1e-4, 1e-4, what);
  release_all(16, x, gx, w, b, gw, gb, yc, yg, mc, mg, rc, rg, gy, ggy, mcg, rcg);
  release_all(6, dxc, dxg, dwc, dwg, dbc, dbg);
}

int main(void) {
  int skip = cuda_begin("norm");
  if (skip) return skip;
  int64_t s4[4] = {4, 24, 13, 11}, s2[2] = {300, 16}, big[4] = {2, 8, 96, 96};
  batch_norm_case(4, s4, "[4,24,13,11]");
  batch_norm_case(2, s2, "[300,16] (S = 1)");
  batch_norm_case(4, big, "[2,8,96,96] (long channels)");
  int64_t g4[4] = {3, 32, 9, 10};
  for (int silu = 0; silu <= 1; silu++) {
    group_norm_case(g4, 8, true, silu, "[3,32,9,10], 8 groups, affine");
    group_norm_case(g4, 32, false, silu, "[3,32,9,10], 32 groups, no affine");
  }
  group_norm_case(g4, 1, true, false, "[3,32,9,10], 1 group (layer norm over C,H,W)");
  return test_finish("cuda norm");
}
