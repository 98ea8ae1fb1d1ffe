/* test_cuda_reduce.c - sum/mean/max/min over dim sets that take each GPU path (thread per output, block per
 * output, split blocks for a full reduction, a strided input), arg-max/min (thread and block paths, ties,
 * NaN), softmax / log-softmax over the last and a middle dim, and their backward.
 * Tolerances: sums and means 1e-5 abs + 1e-5 rel (both accumulate in double; only the order differs); max/min
 * and arg indices exact; softmax 1e-6 + 1e-5 rel. */
#include "cuda_check.h"

/* y has x's rank with reduced dims of size 1 */
static void reduce_case(const rn_tensor *x, const bool *red, const char *name) {
  int64_t ys[RN_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) ys[d] = red[d] ? 1 : x->shape[d];
  rn_tensor *gx = NULL;
  CHECK_OK(rn_to_device(&gx, (rn_tensor *)x, GPU)); /* x is contiguous here */
  for (int op = RN_RED_SUM; op <= RN_RED_MIN; op++) {
    rn_tensor *yc = new_on(rn_cpu(), x->ndim, ys, RN_F32, false), *yg = new_on(GPU, x->ndim, ys, RN_F32, false);
    CHECK_OK(KC->reduce((rn_reduce_op)op, yc, x, red));
    CHECK_OK(KG->reduce((rn_reduce_op)op, yg, gx, red));
    char what[96];
    snprintf(what, sizeof what, "reduce op %d over %s", op, name);
    if (op == RN_RED_MAX || op == RN_RED_MIN) agree_exact(yg, yc, what);
    else agree(yg, yc, 1e-5, 1e-5, what);
    release_all(2, yc, yg);
  }
  rn_tensor_release(gx);
}

static void reductions(void) {
  int64_t s4[4] = {8, 16, 32, 32};
  rn_tensor *x = test_randn(4, s4, 1, 1.0f);
  bool bias[4] = {true, false, true, true}, last[4] = {false, false, false, true}, all[4] = {true, true, true, true};
  bool first[4] = {true, false, false, false}, mid[4] = {false, true, true, false};
  reduce_case(x, bias, "N,H,W (block per output)");
  reduce_case(x, last, "the last dim (thread per output)");
  reduce_case(x, all, "everything (split blocks)");
  reduce_case(x, first, "the first dim (thread per output, coalesced)");
  reduce_case(x, mid, "C,H (middle dims)");
  int64_t s2[2] = {3, 70000};
  rn_tensor *w = test_randn(2, s2, 2, 1.0f);
  bool row[2] = {false, true}, col[2] = {true, false};
  reduce_case(w, row, "long rows (split blocks, few outputs)");
  reduce_case(w, col, "3 rows into 70000 outputs");
  /* a strided (permuted) input, reduced directly as the kernel contract allows */
  int perm[4] = {0, 2, 3, 1};
  rn_tensor *xp = NULL, *gx = to_gpu(x), *gp = NULL;
  CHECK_OK(rn_permute(&xp, x, perm));
  CHECK_OK(rn_permute(&gp, gx, perm));
  bool red[4] = {true, true, true, false};
  int64_t ys[4] = {1, 1, 1, 16};
  rn_tensor *yc = new_on(rn_cpu(), 4, ys, RN_F32, false), *yg = new_on(GPU, 4, ys, RN_F32, false);
  CHECK_OK(KC->reduce(RN_RED_SUM, yc, xp, red));
  CHECK_OK(KG->reduce(RN_RED_SUM, yg, gp, red));
  agree(yg, yc, 1e-5, 1e-5, "sum over a permuted view");
  release_all(7, x, w, xp, gx, gp, yc, yg);
}

static void arg_case(const rn_tensor *x, int dim, const char *name) {
  int64_t vs[RN_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) vs[d] = d == dim ? 1 : x->shape[d];
  rn_tensor *gx = to_gpu(x);
  for (int is_max = 0; is_max < 2; is_max++) {
    rn_tensor *vc = new_on(rn_cpu(), x->ndim, vs, RN_F32, false), *vg = new_on(GPU, x->ndim, vs, RN_F32, false);
    rn_tensor *ic = new_on(rn_cpu(), x->ndim, vs, RN_I64, false), *ig = new_on(GPU, x->ndim, vs, RN_I64, false);
    CHECK_OK(KC->arg_reduce(is_max, vc, ic, x, dim));
    CHECK_OK(KG->arg_reduce(is_max, vg, ig, gx, dim));
    char what[96];
    snprintf(what, sizeof what, "arg%s over %s: indices", is_max ? "max" : "min", name);
    agree_exact(ig, ic, what);
    rn_tensor *vb = NULL; /* values: equal, with NaN where the CPU has NaN */
    CHECK_OK(rn_to_device(&vb, vg, rn_cpu()));
    bool same = true;
    for (int64_t i = 0; i < rn_tensor_numel(vc); i++) {
      float a = rn_f32(vb)[i], b = rn_f32(vc)[i];
      if (!(a == b || (isnan(a) && isnan(b)))) same = false;
    }
    CHECK(same);
    release_all(5, vc, vg, ic, ig, vb);
  }
  rn_tensor_release(gx);
}

static void arg_reductions(void) {
  int64_t s3[3] = {6, 40, 9};
  rn_tensor *x = rand_levels(3, s3, 5, 3); /* many ties: the first extremum must win on both */
  arg_case(x, 1, "a middle dim with ties (thread per line)");
  arg_case(x, 2, "the last dim with ties");
  int64_t s2[2] = {3, 5000};
  rn_tensor *w = rand_levels(2, s2, 1000, 4);
  arg_case(w, 1, "long lines with ties (block per line)");
  rn_f32(w)[5000 + 77] = NAN; /* a NaN is the extremum of its line, first NaN wins */
  rn_f32(w)[5000 + 4000] = NAN;
  rn_f32(x)[3 * 9 + 4] = NAN;
  arg_case(w, 1, "long lines with NaN");
  arg_case(x, 1, "a middle dim with NaN");
  release_all(2, x, w);
}

static void softmax_case(const rn_tensor *x, int dim, const char *name) {
  rn_tensor *gx = to_gpu(x);
  rn_tensor *gyc = test_randn(x->ndim, x->shape, 5, 1.0f), *gyg = to_gpu(gyc);
  for (int log = 0; log < 2; log++) {
    rn_tensor *yc = new_on(rn_cpu(), x->ndim, x->shape, RN_F32, false), *yg = new_on(GPU, x->ndim, x->shape, RN_F32, false);
    CHECK_OK(KC->softmax(yc, x, dim, log));
    CHECK_OK(KG->softmax(yg, gx, dim, log));
    char what[96];
    snprintf(what, sizeof what, "%s over %s", log ? "log-softmax" : "softmax", name);
    agree(yg, yc, 1e-6, 1e-5, what);
    /* backward from the CPU's y on both, so only the backward kernels are compared */
    rn_tensor *ycg = to_gpu(yc);
    rn_tensor *gc = new_on(rn_cpu(), x->ndim, x->shape, RN_F32, false), *gg = new_on(GPU, x->ndim, x->shape, RN_F32, false);
    CHECK_OK(KC->softmax_backward(gc, gyc, yc, dim, log));
    CHECK_OK(KG->softmax_backward(gg, gyg, ycg, dim, log));
    snprintf(what, sizeof what, "%s backward over %s", log ? "log-softmax" : "softmax", name);
    agree(gg, gc, 1e-6, 1e-5, what);
    release_all(5, yc, yg, ycg, gc, gg);
  }
  release_all(3, gx, gyc, gyg);
}

static void softmaxes(void) {
  int64_t s3[3] = {4, 300, 7};
  rn_tensor *x = test_randn(3, s3, 6, 3.0f);
  softmax_case(x, 2, "the last dim (warp per row)");
  softmax_case(x, 1, "a middle dim (thread per line)");
  int64_t s2[2] = {5, 3000};
  rn_tensor *w = test_randn(2, s2, 7, 3.0f);
  rn_f32(w)[3000 + 5] = -1e30f; /* exp underflows to 0 on both backends */
  rn_f32(w)[2 * 3000 + 9] = -1e30f;
  softmax_case(w, 1, "long rows with -1e30 entries");
  release_all(2, x, w);
}

int main(void) {
  int skip = cuda_begin("reduce");
  if (skip) return skip;
  reductions();
  arg_reductions();
  softmaxes();
  return test_finish("cuda reduce");
}
