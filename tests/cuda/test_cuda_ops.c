/* test_cuda_ops.c - the op layer and autograd on device tensors: a small network (convolution, batch norm in
 * training mode, ReLU, max pool, conv-transpose with output padding, group norm, bilinear upsampling,
 * attention, global pooling, a linear layer, cross-entropy) runs forward and backward on the CPU and on the
 * GPU from the same parameters, then one AdamW step; loss, every gradient, the running statistics and the
 * updated parameters are compared. Tolerance: 1e-4 abs + 1e-3 rel (errors of ~15 float32 ops compound). */
#include "cuda_check.h"

enum { W1, BNW, BNB, WT, GNW, GNB, WL, BL, NP };

static rn_tensor *param(int ndim, const int64_t *shape, uint64_t seed, float scale) {
  return test_randn(ndim, shape, seed, scale);
}

#define T(call) do { if ((call) != RN_OK) { fprintf(stderr, "%s: %s\n", #call, rn_last_error()); return NULL; } } while (0)

/* Forward pass; returns the loss (new reference) or NULL. Intermediates are released as it goes. */
static rn_tensor *forward(rn_tensor **p, rn_tensor *x, rn_tensor *target, rn_tensor *rm, rn_tensor *rv) {
  rn_conv_params c = rn_conv_params_default();
  c.pad[0] = c.pad[1] = 1;
  rn_tensor *h1 = NULL, *h2 = NULL, *h3 = NULL, *h4 = NULL, *h5 = NULL, *h6 = NULL, *h7 = NULL, *q = NULL, *a = NULL;
  rn_tensor *h8 = NULL, *h9 = NULL, *h10 = NULL, *logits = NULL, *loss = NULL;
  T(rn_conv2d(&h1, x, p[W1], NULL, &c)); /* no bias: batch norm follows (its gradient would be ~0 noise) */                                   /* [4,8,16,16] */
  T(rn_batch_norm(&h2, h1, p[BNW], p[BNB], rm, rv, true, 0.1f, 1e-5f));
  T(rn_unary(&h3, RN_UN_RELU, h2, 0, 0));
  rn_pool_params mp = {{2, 2}, {2, 2}, {0, 0}, false, false};
  T(rn_max_pool2d(&h4, h3, &mp));                                           /* [4,8,8,8] */
  rn_conv_params t = rn_conv_params_default();
  t.stride[0] = t.stride[1] = 2;
  t.pad[0] = t.pad[1] = 1;
  t.out_pad[0] = t.out_pad[1] = 1;
  T(rn_conv_transpose2d(&h5, h4, p[WT], NULL, &t));                         /* [4,4,16,16] */
  T(rn_group_norm(&h6, h5, 2, p[GNW], p[GNB], 1e-5f));
  T(rn_upsample(&h7, h6, 24, 24, RN_UPSAMPLE_BILINEAR, false));             /* [4,4,24,24] */
  int64_t qs[3] = {4, 24, 96};
  T(rn_reshape(&q, h7, 3, qs));
  T(rn_sdpa(&a, q, q, q));                                                  /* [4,24,96] */
  int64_t back4[4] = {4, 4, 24, 24};
  T(rn_reshape(&h8, a, 4, back4));
  T(rn_global_avg_pool(&h9, h8));                                           /* [4,4,1,1] */
  int64_t s2[2] = {4, 4};
  T(rn_reshape(&h10, h9, 2, s2));
  T(rn_linear(&logits, h10, p[WL], p[BL]));                                  /* [4,5] */
  T(rn_cross_entropy(&loss, logits, target));
  release_all(14, h1, h2, h3, h4, h5, h6, h7, q, a, h8, h9, h10, logits, NULL);
  return loss;
}

int main(void) {
  int skip = cuda_begin("ops");
  if (skip) return skip;
  int64_t sw1[4] = {8, 3, 3, 3}, s8[1] = {8}, swt[4] = {8, 4, 3, 3}, s4[1] = {4}, swl[2] = {5, 4}, s5[1] = {5};
  rn_tensor *init[NP] = {param(4, sw1, 1, 0.3f), param(1, s8, 3, 1.0f), param(1, s8, 4, 0.1f),
                         param(4, swt, 5, 0.3f), param(1, s4, 6, 1.0f), param(1, s4, 7, 0.1f),
                         param(2, swl, 8, 0.5f), param(1, s5, 9, 0.1f)};
  int64_t sx[4] = {4, 3, 16, 16}, st[1] = {4};
  rn_tensor *x = test_randn(4, sx, 10, 1.0f), *target = rand_index(1, st, 5, 11);
  rn_tensor *pc[NP], *pg[NP];
  for (int i = 0; i < NP; i++) {
    CHECK_OK(rn_clone(&pc[i], init[i]));
    pg[i] = to_gpu(init[i]);
    CHECK_OK(rn_set_requires_grad(pc[i], true));
    CHECK_OK(rn_set_requires_grad(pg[i], true));
  }
  rn_tensor *rmc = new_on(rn_cpu(), 1, s8, RN_F32, true), *rvc = NULL, *gx = to_gpu(x), *gt = to_gpu(target);
  CHECK_OK(rn_tensor_full(&rvc, 1, s8, RN_F32, rn_cpu(), 1.0));
  rn_tensor *rmg = to_gpu(rmc), *rvg = to_gpu(rvc);
  rn_tensor *lc = forward(pc, x, target, rmc, rvc), *lg = forward(pg, gx, gt, rmg, rvg);
  CHECK(lc && lg);
  if (!lc || !lg) return test_finish("cuda ops");
  agree(lg, lc, 1e-4, 1e-3, "loss");
  agree(rmg, rmc, 1e-4, 1e-3, "batch norm running mean");
  agree(rvg, rvc, 1e-4, 1e-3, "batch norm running variance");
  CHECK_OK(rn_backward(lc, NULL));
  CHECK_OK(rn_backward(lg, NULL));
  const char *names[NP] = {"conv weight", "bn weight", "bn bias", "conv-transpose weight",
                           "gn weight", "gn bias", "linear weight", "linear bias"};
  for (int i = 0; i < NP; i++) {
    char what[64];
    snprintf(what, sizeof what, "gradient of %s", names[i]);
    CHECK(pc[i]->grad && pg[i]->grad);
    if (pc[i]->grad && pg[i]->grad) agree(pg[i]->grad, pc[i]->grad, 1e-4, 1e-3, what);
  }
  /* one AdamW step on each device */
  rn_optim_config cfg = rn_optim_defaults(RN_OPT_ADAMW);
  cfg.lr = 1e-2f;
  rn_optim *oc = NULL, *og = NULL;
  CHECK_OK(rn_optim_new(&oc, &cfg, NP, pc));
  CHECK_OK(rn_optim_new(&og, &cfg, NP, pg));
  CHECK_OK(rn_optim_step(oc));
  CHECK_OK(rn_optim_step(og));
  for (int i = 0; i < NP; i++) {
    char what[64];
    snprintf(what, sizeof what, "%s after AdamW", names[i]);
    agree(pg[i], pc[i], 1e-4, 1e-3, what);
  }
  rn_optim_free(oc);
  rn_optim_free(og);
  for (int i = 0; i < NP; i++) release_all(3, init[i], pc[i], pg[i]);
  release_all(10, x, target, rmc, rvc, gx, gt, rmg, rvg, lc, lg);
  return test_finish("cuda ops");
}
