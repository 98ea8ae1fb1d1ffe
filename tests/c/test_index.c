/* test_index.c - concat (both its paths), index_select, gather and top-k against PyTorch fixtures; ties, other
 * dtypes and bad arguments (out-of-range indices, wrong index dtypes, mismatched shapes). */
#include <math.h>

#include "testutil.h"

static double at(const rn_tensor *t, int64_t i) {
  double v = NAN;
  int64_t idx[RN_MAX_DIMS];
  for (int d = t->ndim - 1; d >= 0; d--) { idx[d] = i % t->shape[d]; i /= t->shape[d]; }
  rn_tensor_get(t, idx, &v);
  return v;
}

static rn_tensor *ivec(int n, const int64_t *v) {
  rn_tensor *t = NULL;
  int64_t s[1] = {n};
  rn_tensor_from_data(&t, 1, s, RN_I64, v);
  return t;
}

static void topk_vs_torch(rn_tensor *x) {
  struct { int dim, k; } cases[3] = {{1, 4}, {2, 2}, {0, 1}};
  for (int largest = 1; largest >= 0; largest--)
    for (int c = 0; c < 3; c++) {
      char vn[96], in[96];
      snprintf(vn, sizeof vn, "index/topk_%s_d%d_k%d_values.npy", largest ? "large" : "small", cases[c].dim,
               cases[c].k);
      snprintf(in, sizeof in, "index/topk_%s_d%d_k%d_indices.npy", largest ? "large" : "small", cases[c].dim,
               cases[c].k);
      rn_tensor *v = NULL, *i = NULL, *vr = test_fixture(vn), *ir = test_fixture(in);
      CHECK_OK(rn_topk(&v, &i, x, cases[c].k, cases[c].dim, largest));
      test_check_close(v, vr, 1e-12, 0, vn);
      test_check_close(i, ir, 1e-12, 0, in);
      rn_tensor_release(v); rn_tensor_release(i); rn_tensor_release(vr); rn_tensor_release(ir);
    }
}

static void against_torch(void) {
  rn_tensor *x = test_fixture("index/x.npy");
  if (!x) return;
  topk_vs_torch(x);

  rn_tensor *gi = test_fixture("index/gather_index_d1.npy"), *ref = test_fixture("index/gather_d1.npy"), *y = NULL;
  CHECK_OK(rn_gather(&y, x, 1, gi));
  test_check_close(y, ref, 1e-12, 0, "gather dim 1");
  rn_tensor_release(y); rn_tensor_release(ref);
  rn_tensor *gi2 = test_fixture("index/gather_index_d2.npy");
  ref = test_fixture("index/gather_d2.npy");
  CHECK_OK(rn_gather(&y, x, -1, gi2));
  test_check_close(y, ref, 1e-12, 0, "gather dim 2, smaller index");
  rn_tensor_release(y); rn_tensor_release(ref); rn_tensor_release(gi2);

  /* gather backward against PyTorch (scatter-add of repeated indices) */
  rn_tensor *xg = NULL, *r = test_fixture("index/gather_r.npy"), *yr = NULL, *L = NULL;
  rn_tensor *gref = test_fixture("index/gather_d1_grad.npy");
  CHECK_OK(rn_clone(&xg, x));
  CHECK_OK(rn_set_requires_grad(xg, true));
  CHECK_OK(rn_gather(&y, xg, 1, gi));
  CHECK_OK(rn_mul(&yr, y, r));
  CHECK_OK(rn_reduce(&L, RN_RED_SUM, yr, 0, NULL, false));
  CHECK_OK(rn_backward(L, NULL));
  test_check_close(xg->grad, gref, 1e-6, 1e-6, "gather backward");
  rn_tensor *ts[] = {xg, r, yr, L, gref, y, gi};
  for (int i = 0; i < 7; i++) rn_tensor_release(ts[i]);

  rn_tensor *si = test_fixture("index/select_index.npy");
  ref = test_fixture("index/index_select_d1.npy");
  y = NULL;
  CHECK_OK(rn_index_select(&y, x, 1, si));
  test_check_close(y, ref, 1e-12, 0, "index_select dim 1");
  rn_tensor_release(y); rn_tensor_release(ref); rn_tensor_release(si);
  int64_t s2[3] = {2, 2, 0};
  si = ivec(3, s2);
  ref = test_fixture("index/index_select_d2.npy");
  CHECK_OK(rn_index_select(&y, x, 2, si));
  test_check_close(y, ref, 1e-12, 0, "index_select dim 2");
  rn_tensor_release(y); rn_tensor_release(ref); rn_tensor_release(si);

  rn_tensor *a = test_fixture("index/cat_a.npy"), *b = test_fixture("index/cat_b.npy");
  ref = test_fixture("index/cat_d1.npy");
  rn_tensor *parts[3] = {a, b, a};
  CHECK_OK(rn_concat(&y, 3, parts, 1));
  test_check_close(y, ref, 1e-12, 0, "concat dim 1");
  rn_tensor_release(y); rn_tensor_release(ref); rn_tensor_release(a); rn_tensor_release(b);
  rn_tensor_release(x);
}

static void ties_and_dtypes(void) {
  float v[6] = {2, 5, 5, 1, 5, 2};
  rn_tensor *x = NULL, *vals = NULL, *ix = NULL;
  int64_t s[1] = {6};
  CHECK_OK(rn_tensor_from_data(&x, 1, s, RN_F32, v));
  CHECK_OK(rn_topk(&vals, &ix, x, 4, 0, true));
  if (ix) {
    CHECK(at(ix, 0) == 1 && at(ix, 1) == 2 && at(ix, 2) == 4 && at(ix, 3) == 0); /* ties: lower index first */
    CHECK(at(vals, 3) == 2);
  }
  rn_tensor_release(vals); rn_tensor_release(ix);
  CHECK_OK(rn_topk(&vals, &ix, x, 3, 0, false));
  if (ix) CHECK(at(ix, 0) == 3 && at(ix, 1) == 0 && at(ix, 2) == 5);
  rn_tensor_release(vals); rn_tensor_release(ix);
  CHECK_OK(rn_topk(&vals, &ix, x, 0, 0, true));
  if (vals) CHECK(vals->shape[0] == 0);
  rn_tensor_release(vals); rn_tensor_release(ix);
  rn_tensor_release(x);

  /* ties on the partial-selection path (k much smaller than the line) */
  float tv[40];
  for (int i = 0; i < 40; i++) tv[i] = (float)(i % 4);
  int64_t s40[1] = {40};
  CHECK_OK(rn_tensor_from_data(&x, 1, s40, RN_F32, tv));
  CHECK_OK(rn_topk(&vals, &ix, x, 3, 0, true));
  if (ix) CHECK(at(ix, 0) == 3 && at(ix, 1) == 7 && at(ix, 2) == 11 && at(vals, 2) == 3);
  rn_tensor_release(vals); rn_tensor_release(ix);
  CHECK_OK(rn_topk(&vals, &ix, x, 2, 0, false));
  if (ix) CHECK(at(ix, 0) == 0 && at(ix, 1) == 4 && at(vals, 1) == 0);
  rn_tensor_release(vals); rn_tensor_release(ix);
  /* NaN ranks above every number, as in PyTorch */
  tv[5] = NAN;
  rn_tensor_release(x);
  CHECK_OK(rn_tensor_from_data(&x, 1, s40, RN_F32, tv));
  CHECK_OK(rn_topk(&vals, &ix, x, 2, 0, true));
  if (ix) CHECK(at(ix, 0) == 5 && isnan(at(vals, 0)) && at(ix, 1) == 3);
  rn_tensor_release(vals); rn_tensor_release(ix);
  CHECK_OK(rn_topk(&vals, &ix, x, 1, 0, false));
  if (ix) CHECK(at(ix, 0) == 0);
  rn_tensor_release(vals); rn_tensor_release(ix);
  rn_tensor_release(x);

  /* topk over a long line, checked against a simple selection */
  int64_t ls[2] = {3, 1000};
  rn_tensor *big = test_randn(2, ls, 9, 1.0f);
  CHECK_OK(rn_topk(&vals, &ix, big, 10, 1, true));
  int ok = 1;
  for (int r = 0; r < 3 && vals; r++)
    for (int j = 0; j < 10; j++) {
      double vj = at(vals, r * 10 + j);
      int above = 0;
      for (int c = 0; c < 1000; c++) if (at(big, r * 1000 + c) > vj) above++;
      if (above != j || at(big, r * 1000 + (int64_t)at(ix, r * 10 + j)) != vj) ok = 0;
    }
  CHECK(ok);
  rn_tensor_release(vals); rn_tensor_release(ix); rn_tensor_release(big);

  /* concat and index_select move integer tensors too */
  int64_t iv[4] = {7, -8, 9, 10}, sel[2] = {3, 0};
  rn_tensor *a = ivec(4, iv), *b = ivec(2, sel), *y = NULL;
  rn_tensor *parts[2] = {a, b};
  CHECK_OK(rn_concat(&y, 2, parts, 0));
  if (y) { CHECK(y->dtype == RN_I64 && y->shape[0] == 6); CHECK(at(y, 1) == -8 && at(y, 5) == 0); }
  rn_tensor_release(y);
  CHECK_OK(rn_index_select(&y, a, 0, b));
  if (y) CHECK(at(y, 0) == 10 && at(y, 1) == 7);
  rn_tensor_release(y);
  rn_tensor_release(a); rn_tensor_release(b);

  /* non-contiguous inputs */
  int64_t xs[2] = {3, 4};
  rn_tensor *m = test_randn(2, xs, 3, 1.0f), *mt = NULL, *mc = NULL, *y2 = NULL;
  int64_t id[3] = {1, 1, 0};
  rn_tensor *idx = ivec(3, id);
  CHECK_OK(rn_transpose(&mt, m, 0, 1));
  CHECK_OK(rn_clone(&mc, mt));
  CHECK_OK(rn_index_select(&y, mt, 1, idx));
  CHECK_OK(rn_index_select(&y2, mc, 1, idx));
  if (y && y2) CHECK(test_max_abs_diff(y, y2) == 0);
  rn_tensor_release(y); rn_tensor_release(y2); rn_tensor_release(mt); rn_tensor_release(mc);
  rn_tensor_release(idx); rn_tensor_release(m);
}

static void bad_inputs(void) {
  int64_t s[3] = {2, 3, 4};
  rn_tensor *x = test_randn(3, s, 1, 1.0f), *y = NULL;
  int64_t bad[2] = {1, 3}, neg[1] = {-1};
  rn_tensor *ib = ivec(2, bad), *in = ivec(1, neg), *f = NULL, *i32 = NULL;
  int64_t fs[1] = {2};
  CHECK_OK(rn_tensor_zeros(&f, 1, fs, RN_F32, rn_cpu()));
  CHECK_OK(rn_tensor_zeros(&i32, 1, fs, RN_I32, rn_cpu()));
  CHECK_ERR(rn_index_select(&y, x, 1, ib), RN_ERR_ARG, "index 3 is out of range for dim 2 of size 3");
  CHECK_ERR(rn_index_select(&y, x, 0, in), RN_ERR_ARG, "index -1");
  CHECK_ERR(rn_index_select(&y, x, 1, f), RN_ERR_ARG, "int64");
  CHECK_ERR(rn_index_select(&y, x, 1, i32), RN_ERR_ARG, "int64");
  CHECK_ERR(rn_index_select(&y, x, 3, ib), RN_ERR_ARG, "out of range");
  CHECK_ERR(rn_index_select(&y, x, 1, NULL), RN_ERR_ARG, "index");
  CHECK_ERR(rn_index_select(&y, x, 1, x), RN_ERR_SHAPE, "1-d");

  int64_t gs[3] = {2, 2, 4};
  rn_tensor *gi = NULL;
  CHECK_OK(rn_tensor_full(&gi, 3, gs, RN_I64, rn_cpu(), 5));
  CHECK_ERR(rn_gather(&y, x, 1, gi), RN_ERR_ARG, "index 5 is out of range for dim 2 of size 3");
  CHECK_ERR(rn_gather(&y, x, 1, ib), RN_ERR_SHAPE, "does not fit");
  int64_t gs2[3] = {3, 2, 4};
  rn_tensor *gbig = NULL, *gf = NULL;
  CHECK_OK(rn_tensor_zeros(&gbig, 3, gs2, RN_I64, rn_cpu()));
  CHECK_ERR(rn_gather(&y, x, 1, gbig), RN_ERR_SHAPE, "does not fit");
  CHECK_OK(rn_tensor_zeros(&gf, 3, gs, RN_F32, rn_cpu()));
  CHECK_ERR(rn_gather(&y, x, 1, gf), RN_ERR_ARG, "int64");

  rn_tensor *ix = NULL;
  CHECK_ERR(rn_topk(&y, &ix, x, 4, 1, true), RN_ERR_ARG, "k = 4 is out of range for dim 2 of size 3");
  CHECK_ERR(rn_topk(&y, &ix, x, -1, 1, true), RN_ERR_ARG, "out of range");
  CHECK_ERR(rn_topk(&y, &ix, x, 1, 7, true), RN_ERR_ARG, "out of range");
  CHECK_ERR(rn_topk(&y, &ix, gi, 1, 0, true), RN_ERR_ARG, "float32");

  int64_t cs[3] = {2, 5, 5};
  rn_tensor *c = test_randn(3, cs, 2, 1.0f);
  rn_tensor *parts[2] = {x, c};
  CHECK_ERR(rn_concat(&y, 2, parts, 1), RN_ERR_SHAPE, "[2,5,5]");
  rn_tensor *mixed[2] = {x, gi};
  CHECK_ERR(rn_concat(&y, 2, mixed, 0), RN_ERR_ARG, "int64");
  rn_tensor *none[2] = {x, NULL};
  CHECK_ERR(rn_concat(&y, 2, none, 0), RN_ERR_ARG, "missing");
  CHECK_ERR(rn_concat(&y, 0, parts, 0), RN_ERR_ARG, "at least one");
  CHECK_ERR(rn_concat(&y, 2, parts, 3), RN_ERR_ARG, "out of range");
  CHECK(y == NULL && ix == NULL);

  rn_tensor *ts[] = {x, ib, in, f, i32, gi, gbig, gf, c};
  for (int i = 0; i < 9; i++) rn_tensor_release(ts[i]);
}

/* rn_concat's two paths: contiguous inputs (2 .. RN_CONCAT_MAX) in one kernel call, anything else one copy per
 * input into a view of the output; both give the same tensor, for every dim and for float32, int64 and uint8. */
static void concat_paths(void) {
  const rn_dtype dts[3] = {RN_F32, RN_I64, RN_U8};
  const int counts[3] = {2, 3, RN_CONCAT_MAX + 1};
  for (int t = 0; t < 3; t++)
    for (int dim = 0; dim < 3; dim++)
      for (int c = 0; c < 3; c++) {
        int n = counts[c];
        rn_tensor *views[RN_CONCAT_MAX + 1], *dense[RN_CONCAT_MAX + 1];
        for (int i = 0; i < n; i++) {
          int64_t shape[3] = {2, 3, 5 + 2};
          shape[dim] += i % 3; /* inputs of different lengths along dim */
          rn_tensor *f = test_randn(3, shape, 40 + i, 50.0f), *big = NULL;
          CHECK_OK(rn_to_dtype(&big, f, dts[t]));
          CHECK_OK(rn_narrow(&views[i], big, 2, 1, shape[2] - 2)); /* strided: the last dim cut */
          CHECK_OK(rn_clone(&dense[i], views[i]));
          rn_tensor_release(f);
          rn_tensor_release(big);
        }
        rn_tensor *a = NULL, *b = NULL;
        uint64_t k0 = rn_kernel_calls();
        CHECK_OK(rn_concat(&a, n, dense, dim));
        uint64_t k1 = rn_kernel_calls();
        CHECK_OK(rn_concat(&b, n, views, dim));
        uint64_t k2 = rn_kernel_calls();
        char what[96];
        snprintf(what, sizeof what, "concat of %d %s inputs along dim %d: one call = one copy per input", n,
                 rn_dtype_name(dts[t]), dim);
        test_check_close(a, b, 0, 0, what);
        if (!CHECK(k1 - k0 == (n <= RN_CONCAT_MAX ? 1u : (uint64_t)n) && k2 - k1 == (uint64_t)n))
          fprintf(stderr, "  %s: %llu and %llu kernel calls\n", what, (unsigned long long)(k1 - k0),
                  (unsigned long long)(k2 - k1));
        rn_tensor_release(a);
        rn_tensor_release(b);
        for (int i = 0; i < n; i++) { rn_tensor_release(views[i]); rn_tensor_release(dense[i]); }
      }
}

int main(void) {
  against_torch();
  concat_paths();
  ties_and_dtypes();
  bad_inputs();
  return test_finish("index");
}
