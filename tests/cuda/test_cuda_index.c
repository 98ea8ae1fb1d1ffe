/* test_cuda_index.c - concat in one launch (1 to 8 inputs of float32, int64 and uint8 along each dim),
 * index_select (float32 and int64 data), index_add with repeated indices, gather and
 * scatter_add along each dim of a 3-d tensor, and top-k on each GPU path (a line sorted in shared memory,
 * per-thread selection for small k over long lines, a global-memory sort for large k), largest and smallest,
 * with ties and NaN. Tolerances: copies and top-k exact (values and indices: both backends break ties by the
 * lower index); the *_add kernels 1e-5 abs + 1e-5 rel (atomic adds sum repeated indices in another order). */
#include "cuda_check.h"

static void concats(void) {
  const rn_dtype dts[3] = {RN_F32, RN_I64, RN_U8};
  const int counts[3] = {1, 3, RN_CONCAT_MAX};
  for (int t = 0; t < 3; t++)
    for (int dim = 0; dim < 3; dim++)
      for (int c = 0; c < 3; c++) {
        int n = counts[c];
        rn_tensor *xc[RN_CONCAT_MAX], *xg[RN_CONCAT_MAX];
        int64_t sy[3] = {3, 4, 5};
        sy[dim] = 0;
        for (int i = 0; i < n; i++) {
          int64_t shape[3] = {3, 4, 5};
          shape[dim] = 1 + i % 4;
          sy[dim] += shape[dim];
          rn_tensor *f = test_randn(3, shape, 60 + i, 50.0f);
          CHECK_OK(rn_to_dtype(&xc[i], f, dts[t]));
          xg[i] = to_gpu(xc[i]);
          rn_tensor_release(f);
        }
        rn_tensor *yc = new_on(rn_cpu(), 3, sy, dts[t], false), *yg = new_on(GPU, 3, sy, dts[t], false);
        CHECK_OK(KC->concat(yc, n, (const rn_tensor *const *)xc, dim));
        CHECK_OK(KG->concat(yg, n, (const rn_tensor *const *)xg, dim));
        char what[96];
        snprintf(what, sizeof what, "concat of %d %s inputs along dim %d", n, rn_dtype_name(dts[t]), dim);
        agree_exact(yg, yc, what);
        release_all(2, yc, yg);
        for (int i = 0; i < n; i++) release_all(2, xc[i], xg[i]);
      }
}

static void select_and_add(void) {
  int64_t sx[3] = {4, 30, 6}, sk[1] = {45};
  rn_tensor *x = test_randn(3, sx, 1, 1.0f), *ix = rand_index(1, sk, 30, 2); /* 45 picks of 30: repeats */
  rn_tensor *gx = to_gpu(x), *gix = to_gpu(ix);
  int64_t sy[3] = {4, 45, 6};
  rn_tensor *yc = new_on(rn_cpu(), 3, sy, RN_F32, false), *yg = new_on(GPU, 3, sy, RN_F32, false);
  CHECK_OK(KC->index_select(yc, x, 1, ix));
  CHECK_OK(KG->index_select(yg, gx, 1, gix));
  agree_exact(yg, yc, "index_select float32 along dim 1");
  rn_tensor *xi = NULL, *gxi = NULL; /* int64 data: 8-byte elements */
  CHECK_OK(rn_to_dtype(&xi, x, RN_I64));
  gxi = to_gpu(xi);
  rn_tensor *yic = new_on(rn_cpu(), 3, sy, RN_I64, false), *yig = new_on(GPU, 3, sy, RN_I64, false);
  CHECK_OK(KC->index_select(yic, xi, 1, ix));
  CHECK_OK(KG->index_select(yig, gxi, 1, gix));
  agree_exact(yig, yic, "index_select int64 along dim 1");
  rn_tensor *gy = test_randn(3, sy, 3, 1.0f), *ggy = to_gpu(gy);
  rn_tensor *ac = new_on(rn_cpu(), 3, sx, RN_F32, true), *ag = new_on(GPU, 3, sx, RN_F32, true);
  CHECK_OK(KC->index_add(ac, 1, ix, gy));
  CHECK_OK(KG->index_add(ag, 1, gix, ggy));
  agree(ag, ac, 1e-5, 1e-5, "index_add with repeated indices");
  release_all(14, x, ix, gx, gix, yc, yg, xi, gxi, yic, yig, gy, ggy, ac, ag);
}

static void gather_and_scatter(void) {
  int64_t sx[3] = {5, 7, 9};
  rn_tensor *x = test_randn(3, sx, 4, 1.0f), *gx = to_gpu(x);
  for (int dim = 0; dim < 3; dim++) {
    int64_t si[3] = {4, 6, 8};
    si[dim] = 11; /* longer than x along dim: repeated targets in scatter_add */
    rn_tensor *ix = rand_index(3, si, sx[dim], 5 + dim), *gix = to_gpu(ix);
    rn_tensor *yc = new_on(rn_cpu(), 3, si, RN_F32, false), *yg = new_on(GPU, 3, si, RN_F32, false);
    CHECK_OK(KC->gather(yc, x, dim, ix));
    CHECK_OK(KG->gather(yg, gx, dim, gix));
    char what[64];
    snprintf(what, sizeof what, "gather along dim %d", dim);
    agree_exact(yg, yc, what);
    rn_tensor *g = test_randn(3, si, 6, 1.0f), *gg = to_gpu(g);
    rn_tensor *sc = new_on(rn_cpu(), 3, sx, RN_F32, true), *sg = new_on(GPU, 3, sx, RN_F32, true);
    CHECK_OK(KC->scatter_add(sc, dim, ix, g));
    CHECK_OK(KG->scatter_add(sg, dim, gix, gg));
    snprintf(what, sizeof what, "scatter_add along dim %d", dim);
    agree(sg, sc, 1e-5, 1e-5, what);
    release_all(8, ix, gix, yc, yg, g, gg, sc, sg);
  }
  release_all(2, x, gx);
}

static void topk_case(const rn_tensor *x, int k, int dim, const char *name) {
  rn_tensor *gx = to_gpu(x);
  int64_t so[RN_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) so[d] = d == dim ? k : x->shape[d];
  for (int largest = 0; largest < 2; largest++) {
    rn_tensor *vc = new_on(rn_cpu(), x->ndim, so, RN_F32, false), *vg = new_on(GPU, x->ndim, so, RN_F32, false);
    rn_tensor *ic = new_on(rn_cpu(), x->ndim, so, RN_I64, false), *ig = new_on(GPU, x->ndim, so, RN_I64, false);
    CHECK_OK(KC->topk(vc, ic, x, k, dim, largest));
    CHECK_OK(KG->topk(vg, ig, gx, k, dim, largest));
    char what[128];
    snprintf(what, sizeof what, "topk k=%d %s over %s: indices", k, largest ? "largest" : "smallest", name);
    agree_exact(ig, ic, what);
    rn_tensor *vb = NULL;
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

static void topks(void) {
  int64_t s3[3] = {3, 100, 5};
  rn_tensor *x = rand_levels(3, s3, 20, 7); /* ties everywhere */
  rn_f32(x)[2 * 5 + 1] = NAN;
  topk_case(x, 7, 1, "a middle dim of 100 with ties and a NaN (shared-memory sort)");
  topk_case(x, 100, 1, "a whole middle dim (k = D)");
  int64_t s2[2] = {4, 5000};
  rn_tensor *w = rand_levels(2, s2, 3000, 8);
  rn_f32(w)[5000 + 123] = NAN;
  topk_case(w, 5, 1, "rows of 5000 (per-thread selection)");
  topk_case(w, 16, 1, "rows of 5000, k = 16 (selection limit)");
  topk_case(w, 100, 1, "rows of 5000, k = 100 (global sort)");
  int64_t s1[2] = {2, 2048};
  rn_tensor *u = test_randn(2, s1, 9, 1.0f);
  topk_case(u, 2048, 1, "rows of exactly 2048 (largest shared sort)");
  release_all(3, x, w, u);
}

int main(void) {
  int skip = cuda_begin("index");
  if (skip) return skip;
  concats();
  select_and_add();
  gather_and_scatter();
  topks();
  return test_finish("cuda index");
}
