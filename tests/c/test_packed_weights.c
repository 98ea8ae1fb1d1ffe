/* test_packed_weights.c - convolution weights kept in oneDNN's blocked layout between calls.
 *   - rn_cpu_conv2d_packed: equal to rn_cpu_conv2d to the bit; with the same stamp it reuses its copy (shown by
 *     changing the weights in place without a new stamp: the old result comes back, which is the contract), a new
 *     stamp repacks, stamp 0 neither reuses nor keeps a copy; another batch size (another primitive) repacks;
 *   - the backbone's CPU forward packs its convolutions and still follows every change of its weights: in-place
 *     writes through rn_backbone_get_param, made while the tensor is held across forwards or between them, and
 *     loads of other weights. The reference is the same backbone run through the op layer (ops_path), which
 *     reads the weights as they are. */
#include <stdlib.h>

#include "backbone/bb_internal.h"
#include "cpu/cpu_kernels.h"
#include "testutil.h"

static rn_tensor *conv_ref(const rn_tensor *x, const rn_tensor *w, const rn_tensor *b, const rn_conv_params *p) {
  int64_t ys[4] = {x->shape[0], w->shape[0], x->shape[2], x->shape[3]};
  rn_tensor *y = NULL;
  CHECK_OK(rn_tensor_empty(&y, 4, ys, RN_F32, rn_cpu()));
  CHECK_OK(rn_cpu_conv2d(y, x, w, b, p));
  return y;
}

static rn_tensor *conv_packed(const rn_tensor *x, const rn_tensor *w, const rn_tensor *b, const rn_conv_params *p,
                              rn_conv_packed **slot, uint64_t stamp) {
  int64_t ys[4] = {x->shape[0], w->shape[0], x->shape[2], x->shape[3]};
  rn_tensor *y = NULL;
  CHECK_OK(rn_tensor_empty(&y, 4, ys, RN_F32, rn_cpu()));
  CHECK_OK(rn_cpu_conv2d_packed(y, x, w, b, p, slot, stamp));
  return y;
}

static void scale_(rn_tensor *t, float s) {
  for (int64_t i = 0; i < rn_tensor_numel(t); i++) rn_f32(t)[i] *= s;
}

static void kernel_contract(void) {
  int64_t xs[4] = {2, 16, 12, 12}, x5[4] = {5, 16, 12, 12}, ws[4] = {24, 16, 3, 3}, bs[1] = {24};
  rn_tensor *x = test_randn(4, xs, 1, 1.0f), *xb = test_randn(4, x5, 2, 1.0f);
  rn_tensor *w = test_randn(4, ws, 3, 0.3f), *b = test_randn(1, bs, 4, 1.0f);
  rn_conv_params p = rn_conv_params_default();
  p.pad[0] = p.pad[1] = 1;
  rn_conv_packed *slot = NULL;

  rn_tensor *ref = conv_ref(x, w, b, &p), *y1 = conv_packed(x, w, b, &p, &slot, 7);
  test_check_close(y1, ref, 0, 0, "packed convolution equals rn_cpu_conv2d (first call packs)");
  CHECK(slot != NULL); /* a 3x3 convolution runs on oneDNN's blocked layout: its weights were packed */
  rn_tensor *y2 = conv_packed(x, w, b, &p, &slot, 7);
  test_check_close(y2, ref, 0, 0, "packed convolution, reused copy");

  scale_(w, 2.0f); /* changed without a new stamp: the copy is reused, so the old result comes back */
  rn_tensor *stale = conv_packed(x, w, b, &p, &slot, 7), *ref2 = conv_ref(x, w, b, &p);
  test_check_close(stale, ref, 0, 0, "same stamp after an in-place change: the kept copy is used");
  CHECK(test_max_abs_diff(ref2, ref) > 1e-3); /* so the check above could tell */
  rn_tensor *y3 = conv_packed(x, w, b, &p, &slot, 8);
  test_check_close(y3, ref2, 0, 0, "a new stamp repacks");
  rn_tensor *y4 = conv_packed(xb, w, b, &p, &slot, 8), *ref4 = conv_ref(xb, w, b, &p);
  test_check_close(y4, ref4, 0, 0, "another batch size (another primitive) with the same stamp");
  rn_tensor *y5 = conv_packed(x, w, b, &p, &slot, 0);
  test_check_close(y5, ref2, 0, 0, "stamp 0: no reuse");
  CHECK(slot == NULL);
  rn_conv_packed_free(NULL);

  rn_tensor *all[] = {x, xb, w, b, ref, y1, y2, stale, ref2, y3, y4, ref4, y5};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) rn_tensor_release(all[i]);
}

/* The backbone's features by the fast path, checked against the op layer reading the current weights. */
static void forward_matches_ops(rn_backbone *bb, rn_tensor *x, const char *what) {
  rn_tensor *fast[1] = {0}, *ops[1] = {0};
  CHECK_OK(rn_backbone_forward(bb, x, fast));
  bb->ops_path = true;
  CHECK_OK(rn_backbone_forward(bb, x, ops));
  bb->ops_path = false;
  if (fast[0] && ops[0]) test_check_close(fast[0], ops[0], 1e-5, 1e-5, what);
  rn_tensor_release(fast[0]);
  rn_tensor_release(ops[0]);
}

static void backbone_follows_changes(void) {
  rn_backbone_opts o = rn_backbone_opts_default();
  o.stages = "layer2";
  rn_backbone *bb = NULL;
  if (!CHECK_OK(rn_backbone_new(&bb, "resnet18", &o))) return;
  int64_t xs[4] = {1, 3, 64, 64};
  rn_tensor *x = test_randn(4, xs, 9, 1.0f), *first[1] = {0};
  CHECK_OK(rn_backbone_forward(bb, x, first));
  CHECK(bb_packed_filled(bb) > 0); /* the 3x3 convolutions keep blocked copies */
  forward_matches_ops(bb, x, "resnet18 layer2, packed weights");

  /* a 3x3 weight handed out and changed in place, then released before the next forward */
  int w3 = -1;
  for (int i = 0; i < rn_backbone_param_count(bb) && w3 < 0; i++) {
    rn_tensor *t = rn_backbone_get_param(bb, i);
    if (t && t->ndim == 4 && t->shape[2] == 3 && t->shape[1] > 3) w3 = i;
  }
  if (!CHECK(w3 >= 0)) return;
  scale_(rn_backbone_get_param(bb, w3), 0.5f);
  rn_tensor *after[1] = {0};
  CHECK_OK(rn_backbone_forward(bb, x, after));
  if (first[0] && after[0]) CHECK(test_max_abs_diff(first[0], after[0]) > 1e-4); /* the change shows */
  forward_matches_ops(bb, x, "after an in-place change between forwards");

  /* held across forwards: changed after a forward that saw it shared, then released */
  rn_tensor *held = rn_tensor_retain(rn_backbone_get_param(bb, w3));
  forward_matches_ops(bb, x, "while a weight is held elsewhere");
  scale_(held, 3.0f);
  forward_matches_ops(bb, x, "after a held weight changed");
  rn_tensor_release(held);
  forward_matches_ops(bb, x, "after the held weight was released");
  CHECK(bb_packed_filled(bb) > 0);

  /* other weights loaded: the copies go, and the features are the new weights' */
  rn_backbone *src = NULL;
  o.seed = 77;
  if (CHECK_OK(rn_backbone_new(&src, "resnet18", &o))) {
    int n = rn_backbone_param_count(src);
    const char **names = calloc((size_t)n, sizeof *names);
    rn_tensor **ts = calloc((size_t)n, sizeof *ts);
    for (int i = 0; names && ts && i < n; i++) {
      names[i] = rn_backbone_param_name(src, i);
      ts[i] = rn_backbone_get_param(src, i);
    }
    rn_tensor *before[1] = {0}, *loaded[1] = {0};
    CHECK_OK(rn_backbone_forward(bb, x, before));
    CHECK_OK(rn_backbone_load(bb, n, names, ts, NULL, NULL));
    CHECK(bb_packed_filled(bb) == 0);
    CHECK_OK(rn_backbone_forward(bb, x, loaded));
    if (before[0] && loaded[0]) CHECK(test_max_abs_diff(before[0], loaded[0]) > 1e-4);
    forward_matches_ops(bb, x, "after a load");
    rn_tensor_release(before[0]);
    rn_tensor_release(loaded[0]);
    free(names);
    free(ts);
    rn_backbone_free(src);
  }

  rn_tensor_release(first[0]);
  rn_tensor_release(after[0]);
  rn_tensor_release(x);
  rn_backbone_free(bb);
}

int main(void) {
  kernel_contract();
  backbone_follows_changes();
  return test_finish("packed weights");
}
