/* test_cuda_lanes.c - work forked over stream lanes (rn_cuda_fork / rn_cuda_lane / rn_cuda_join) gives the
 * results of the same work on one stream, eagerly and inside a CUDA graph, and the fork API refuses misuse.
 *
 * Four independent chains of res-block-like steps (group norm, SiLU, 3x3 convolution through cuDNN, a product
 * through cuBLAS, a residual add) advance in turn, one step per lane, and every intermediate is released at
 * once, so the caching allocator recycles blocks while other lanes still run: the schedule that would hand
 * a lane a block another lane is using if the lane tags (engine/src/cuda/lane_tags.h) were wrong. Tolerance:
 * 1e-4 abs + 1e-4 rel (the same kernels and algorithms, so normally equal to the bit, but a library may sum in
 * another order on another handle; a race is off by O(1)). Repeated 20 times. Also: a capture is not broken by a
 * refused synchronize or by freeing an older graph meanwhile, and a replay is refused while forked. */
#include "cuda_check.h"

enum { CHAINS = 4, DEPTH = 12 };

typedef struct { rn_tensor *w, *b, *m; } weights;

/* x <- x + matmul(conv3x3(silu(gn(x))), m) along the width; every intermediate released. */
static void step(rn_tensor **x, const weights *wt) {
  rn_conv_params p = rn_conv_params_default();
  p.pad[0] = p.pad[1] = 1;
  rn_tensor *g = NULL, *s = NULL, *c = NULL, *mm = NULL, *y = NULL;
  CHECK_OK(rn_group_norm(&g, *x, 4, NULL, NULL, 1e-5f));
  CHECK_OK(rn_unary(&s, RN_UN_SILU, g, 0, 0));
  CHECK_OK(rn_conv2d(&c, s, wt->w, wt->b, &p));
  CHECK_OK(rn_matmul(&mm, c, wt->m));
  CHECK_OK(rn_add(&y, *x, mm));
  release_all(5, g, s, c, mm, *x);
  *x = y;
}

/* Advances the chains DEPTH steps, chain i on lane i when forked (round robin: one step each in turn). */
static void run_chains(rn_tensor **x, const weights *wt, bool forked) {
  for (int k = 0; k < DEPTH; k++)
    for (int i = 0; i < CHAINS; i++) {
      if (forked) CHECK_OK(rn_cuda_lane(0, i));
      step(&x[i], wt);
    }
}

static rn_tensor *clone(rn_tensor *t) {
  rn_tensor *c = NULL;
  CHECK_OK(rn_clone(&c, t));
  return c;
}

int main(void) {
  int skip = cuda_begin("lanes");
  if (skip) return skip;
  rn_cuda_set_tf32(false);

  int64_t sx[4] = {1, 16, 32, 32}, sw[4] = {16, 16, 3, 3}, sb[1] = {16}, sm[2] = {32, 32};
  rn_tensor *wc = test_randn(4, sw, 11, 0.1f), *bc = test_randn(1, sb, 12, 0.1f), *mc = test_randn(2, sm, 13, 0.2f);
  weights wt = {to_gpu(wc), to_gpu(bc), to_gpu(mc)};
  rn_tensor *in[CHAINS], *ref[CHAINS], *x[CHAINS];
  for (int i = 0; i < CHAINS; i++) {
    rn_tensor *h = test_randn(4, sx, 100 + (uint64_t)i, 1.0f);
    in[i] = to_gpu(h);
    rn_tensor_release(h);
  }

  /* the reference: one stream */
  for (int i = 0; i < CHAINS; i++) x[i] = clone(in[i]);
  run_chains(x, &wt, false);
  for (int i = 0; i < CHAINS; i++) {
    ref[i] = NULL;
    CHECK_OK(rn_to_device(&ref[i], x[i], rn_cpu()));
  }
  release_all(CHAINS, x[0], x[1], x[2], x[3]);

  /* eager forks */
  for (int rep = 0; rep < 20; rep++) {
    for (int i = 0; i < CHAINS; i++) x[i] = clone(in[i]);
    CHECK_OK(rn_cuda_fork(0, CHAINS));
    CHECK(rn_cuda_forked(0));
    run_chains(x, &wt, true);
    CHECK_OK(rn_cuda_join(0));
    CHECK(!rn_cuda_forked(0));
    for (int i = 0; i < CHAINS; i++) {
      char what[64];
      snprintf(what, sizeof what, "eager fork %d, chain %d", rep, i);
      agree(x[i], ref[i], 1e-4, 1e-4, what);
    }
    release_all(CHAINS, x[0], x[1], x[2], x[3]);
  }

  /* the same inside a graph capture: the lanes become parallel branches; replays give the same results */
  for (int i = 0; i < CHAINS; i++) x[i] = clone(in[i]);
  rn_tensor *start[CHAINS];
  for (int i = 0; i < CHAINS; i++) start[i] = x[i]; /* the captured inputs (the chain releases x[i] itself) */
  for (int i = 0; i < CHAINS; i++) rn_tensor_retain(start[i]);
  rn_cuda_graph *g = NULL;
  CHECK_OK(rn_cuda_graph_begin(0));
  CHECK_OK(rn_cuda_fork(0, CHAINS));
  run_chains(x, &wt, true);
  CHECK_OK(rn_cuda_join(0));
  CHECK_OK(rn_cuda_graph_end(0, &g));
  for (int rep = 0; rep < 5 && g; rep++) {
    for (int i = 0; i < CHAINS; i++) CHECK_OK(rn_copy_(start[i], in[i]));
    CHECK_OK(rn_cuda_graph_replay(g));
    for (int i = 0; i < CHAINS; i++) {
      char what[64];
      snprintf(what, sizeof what, "graph replay %d, chain %d", rep, i);
      agree(x[i], ref[i], 1e-4, 1e-4, what);
    }
  }
  rn_cuda_graph_free(g);

  /* a fork left open at graph_end is joined there */
  CHECK_OK(rn_cuda_graph_begin(0));
  CHECK_OK(rn_cuda_fork(0, 2));
  CHECK_OK(rn_cuda_lane(0, 1));
  rn_tensor *t = NULL;
  CHECK_OK(rn_add(&t, in[0], in[1]));
  CHECK_OK(rn_cuda_graph_end(0, &g));
  CHECK(!rn_cuda_forked(0));
  if (g) CHECK_OK(rn_cuda_graph_replay(g));
  rn_cuda_graph_free(g);
  rn_tensor_release(t);

  /* a capture survives a refused synchronize and the freeing of an older graph (what the garbage collector does
   * to a dropped runner), and gives the eager result; a replay is refused while forked */
  rn_cuda_graph *old = NULL;
  rn_tensor *u = NULL, *v = NULL, *w = NULL, *wh = NULL;
  CHECK_OK(rn_cuda_graph_begin(0));
  CHECK_OK(rn_add(&u, in[0], in[1]));
  CHECK_OK(rn_cuda_graph_end(0, &old));
  CHECK_OK(rn_cuda_graph_begin(0));
  CHECK_OK(rn_add(&v, in[2], in[3]));
  CHECK_ERR(rn_cuda_synchronize(0), RN_ERR_ARG, "capture is in progress");
  rn_cuda_graph_free(old);
  CHECK_OK(rn_cuda_graph_end(0, &g));
  CHECK_OK(rn_add(&w, in[2], in[3]));
  CHECK_OK(rn_to_device(&wh, w, rn_cpu()));
  if (g) {
    CHECK_OK(rn_cuda_graph_replay(g));
    agree_exact(v, wh, "graph captured while an older graph was freed");
    CHECK_OK(rn_cuda_fork(0, 2));
    CHECK_ERR(rn_cuda_graph_replay(g), RN_ERR_ARG, "join before a replay");
    CHECK_OK(rn_cuda_join(0));
  }
  rn_cuda_graph_free(g);
  release_all(4, u, v, w, wh);

  /* misuse is refused with the reason */
  CHECK_ERR(rn_cuda_lane(0, 1), RN_ERR_ARG, "no fork");
  CHECK_ERR(rn_cuda_join(0), RN_ERR_ARG, "no fork");
  CHECK_ERR(rn_cuda_fork(0, 9), RN_ERR_ARG, "2 .. 8");
  CHECK_OK(rn_cuda_fork(0, 3));
  CHECK_ERR(rn_cuda_fork(0, 2), RN_ERR_ARG, "already forked");
  CHECK_ERR(rn_cuda_lane(0, 3), RN_ERR_ARG, "lane 3 of a fork of 3");
  CHECK_ERR(rn_cuda_graph_begin(0), RN_ERR_ARG, "join before a capture");
  CHECK_OK(rn_cuda_join(0));
  CHECK_OK(rn_cuda_synchronize(0));

  for (int i = 0; i < CHAINS; i++) release_all(4, in[i], ref[i], x[i], start[i]);
  release_all(6, wc, bc, mc, wt.w, wt.b, wt.m);
  return test_finish("cuda lanes");
}
