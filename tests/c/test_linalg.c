/* test_linalg.c - matmul (2-d, batched, broadcast, folded, 1-d) and linear against PyTorch fixtures, forward
 * and gradients, the gemm kernel's flags, and bad-input errors. */
#include <math.h>
#include <string.h>

#include "testutil.h"

static rn_tensor *fixture(const char *name, const char *key) {
  char rel[128];
  snprintf(rel, sizeof rel, "conv/%s_%s.npy", name, key);
  return test_fixture(rel);
}

static void check_grads(const char *name, rn_tensor *out, rn_tensor *gy, rn_tensor **in, rn_tensor **want, int n) {
  char what[96];
  if (!CHECK_OK(rn_backward(out, gy))) return;
  for (int i = 0; i < n; i++) {
    if (!in[i]) continue;
    snprintf(what, sizeof what, "%s grad %d", name, i + 1);
    test_check_close(in[i]->grad, want[i], 1e-4, 1e-4, what);
  }
}

static void check_matmul(const char *name) {
  rn_tensor *a = fixture(name, "a"), *b = fixture(name, "b"), *y = fixture(name, "y"), *gy = fixture(name, "gy");
  rn_tensor *ga = fixture(name, "ga"), *gb = fixture(name, "gb"), *out = NULL;
  if (a && b && y && gy && ga && gb) {
    CHECK_OK(rn_set_requires_grad(a, true));
    CHECK_OK(rn_set_requires_grad(b, true));
    if (CHECK_OK(rn_matmul(&out, a, b))) {
      char what[96];
      snprintf(what, sizeof what, "%s output", name);
      test_check_close(out, y, 1e-4, 1e-4, what);
      rn_tensor *in[2] = {a, b}, *want[2] = {ga, gb};
      check_grads(name, out, gy, in, want, 2);
    }
  }
  rn_tensor *all[] = {a, b, y, gy, ga, gb, out};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) rn_tensor_release(all[i]);
}

static void check_linear(const char *name) {
  rn_tensor *p = fixture(name, "p");
  if (!p) return;
  bool has_bias = ((int64_t *)rn_tensor_data(p))[0] != 0;
  rn_tensor *x = fixture(name, "x"), *w = fixture(name, "w"), *b = has_bias ? fixture(name, "b") : NULL;
  rn_tensor *y = fixture(name, "y"), *gy = fixture(name, "gy"), *gx = fixture(name, "gx"), *gw = fixture(name, "gw");
  rn_tensor *gb = has_bias ? fixture(name, "gb") : NULL, *out = NULL;
  if (x && w && y && gy && gx && gw) {
    CHECK_OK(rn_set_requires_grad(x, true));
    CHECK_OK(rn_set_requires_grad(w, true));
    if (b) CHECK_OK(rn_set_requires_grad(b, true));
    if (CHECK_OK(rn_linear(&out, x, w, b))) {
      char what[96];
      snprintf(what, sizeof what, "%s output", name);
      test_check_close(out, y, 1e-4, 1e-4, what);
      rn_tensor *in[3] = {x, w, b}, *want[3] = {gx, gw, gb};
      check_grads(name, out, gy, in, want, 3);
    }
  }
  rn_tensor *all[] = {p, x, w, b, y, gy, gx, gw, gb, out};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) rn_tensor_release(all[i]);
}

/* The kernel's transpose flags, alpha/beta and a batch-1 operand reused across the batch. */
static void check_gemm_kernel(void) {
  int64_t as[3] = {3, 4, 5}, bs[3] = {1, 6, 5}, ys[3] = {3, 4, 6};
  rn_tensor *a = test_randn(3, as, 1, 1.0f), *b = test_randn(3, bs, 2, 1.0f), *y = test_randn(3, ys, 3, 1.0f);
  rn_tensor *y0 = NULL;
  CHECK_OK(rn_clone(&y0, y));
  CHECK_OK(rn_cpu_backend()->k->gemm(y, a, b, false, true, 2.0f, 0.5f));
  float *pa = rn_f32(a), *pb = rn_f32(b), *py = rn_f32(y), *p0 = rn_f32(y0);
  double worst = 0;
  for (int i = 0; i < 3; i++)
    for (int r = 0; r < 4; r++)
      for (int c = 0; c < 6; c++) {
        double s = 0;
        for (int k = 0; k < 5; k++) s += (double)pa[(i * 4 + r) * 5 + k] * pb[c * 5 + k];
        double want = 2 * s + 0.5 * p0[(i * 4 + r) * 6 + c], d = fabs(want - py[(i * 4 + r) * 6 + c]);
        if (d > worst) worst = d;
      }
  CHECK(worst < 1e-4);
  int64_t bad[3] = {3, 4, 7};
  rn_tensor *yb = test_randn(3, bad, 4, 1.0f);
  CHECK_ERR(rn_cpu_backend()->k->gemm(yb, a, b, false, true, 1.0f, 0.0f), RN_ERR_SHAPE, "gemm");
  rn_tensor_release(a); rn_tensor_release(b); rn_tensor_release(y); rn_tensor_release(y0); rn_tensor_release(yb);
}

/* Column-narrowed operands: rows longer than the matrix (leading dimension 12 > 5 or 9 columns), each of the four
 * transpose combinations, equal to the products of contiguous copies. */
static void check_gemm_long_rows(const rn_kernels *k) {
  int64_t big[3] = {3, 9, 12};
  rn_tensor *x = test_randn(3, big, 8, 1.0f), *l = NULL, *r = NULL, *r5 = NULL, *r9 = NULL;
  CHECK_OK(rn_narrow(&l, x, 2, 0, 5));  /* [3, 9, 5] */
  CHECK_OK(rn_narrow(&r, x, 2, 6, 5));  /* [3, 9, 5] */
  CHECK_OK(rn_narrow(&r9, x, 2, 1, 9)); /* [3, 9, 9] */
  rn_tensor *tmp = NULL;
  CHECK_OK(rn_narrow(&tmp, x, 2, 7, 5));
  CHECK_OK(rn_narrow(&r5, tmp, 1, 0, 5)); /* [3, 5, 5] */
  rn_tensor *rights[4] = {r5, r, r, r9};  /* by ta + 2 tb: the right operand whose inner size fits l's */
  for (int t = 0; t < 4; t++) {
    bool ta = t & 1, tb = t >> 1;
    rn_tensor *rt = rights[t], *lc = NULL, *rc = NULL, *y1 = NULL, *y2 = NULL;
    int64_t s[3] = {3, ta ? 5 : 9, tb ? rt->shape[1] : rt->shape[2]};
    CHECK_OK(rn_clone(&lc, l));
    CHECK_OK(rn_clone(&rc, rt));
    CHECK_OK(rn_tensor_zeros(&y1, 3, s, RN_F32, rn_cpu()));
    CHECK_OK(rn_tensor_zeros(&y2, 3, s, RN_F32, rn_cpu()));
    CHECK_OK(k->gemm(y1, l, rt, ta, tb, 1.5f, 0.0f));
    CHECK_OK(k->gemm(y2, lc, rc, ta, tb, 1.5f, 0.0f));
    if (y1 && y2) CHECK(test_max_abs_diff(y1, y2) == 0);
    rn_tensor *done[] = {lc, rc, y1, y2};
    for (int i = 0; i < 4; i++) rn_tensor_release(done[i]);
  }
  rn_tensor *all[] = {x, l, r, r5, r9, tmp};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) rn_tensor_release(all[i]);
}

/* Operands with contiguous rows but other strides (channel slices of a bigger map, as qkv attention passes) give
 * the products of their contiguous copies (a^T b and a b^T, the two that fit); strided columns are refused. */
static void check_gemm_strided(void) {
  int64_t big[3] = {3, 9, 7}, ys[3] = {3, 7, 7};
  rn_tensor *x = test_randn(3, big, 7, 1.0f), *a = NULL, *b = NULL, *ac = NULL, *bc = NULL;
  CHECK_OK(rn_narrow(&a, x, 1, 1, 3)); /* [3, 3, 7], row stride 7, batch stride 63 */
  CHECK_OK(rn_narrow(&b, x, 1, 5, 3));
  CHECK_OK(rn_clone(&ac, a));
  CHECK_OK(rn_clone(&bc, b));
  const rn_kernels *k = rn_cpu_backend()->k;
  for (int t = 0; t < 4; t++) {
    bool ta = t & 1, tb = t >> 1;
    int64_t m = ta ? 7 : 3, n = tb ? 3 : 7, kk = ta ? 3 : 7, kb = tb ? 7 : 3;
    if (kk != kb) continue; /* only the combinations whose inner sizes fit */
    int64_t s[3] = {3, m, n};
    rn_tensor *y1 = NULL, *y2 = NULL;
    CHECK_OK(rn_tensor_zeros(&y1, 3, s, RN_F32, rn_cpu()));
    CHECK_OK(rn_tensor_zeros(&y2, 3, s, RN_F32, rn_cpu()));
    CHECK_OK(k->gemm(y1, a, b, ta, tb, 1.5f, 0.0f));
    CHECK_OK(k->gemm(y2, ac, bc, ta, tb, 1.5f, 0.0f));
    if (y1 && y2) CHECK(test_max_abs_diff(y1, y2) == 0);
    rn_tensor_release(y1); rn_tensor_release(y2);
  }
  check_gemm_long_rows(k);
  rn_tensor *at = NULL, *y = NULL;
  CHECK_OK(rn_transpose(&at, ac, 1, 2));
  CHECK_OK(rn_tensor_zeros(&y, 3, ys, RN_F32, rn_cpu()));
  CHECK_ERR(k->gemm(y, at, bc, false, false, 1.0f, 0.0f), RN_ERR_ARG, "rows contiguous");
  rn_tensor *all[] = {x, a, b, ac, bc, at, y};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) rn_tensor_release(all[i]);
}

/* A product large enough to be split across threads must match a double-precision reference. */
static void check_large(void) {
  int64_t as[2] = {67, 300}, bs[2] = {300, 129};
  rn_tensor *a = test_randn(2, as, 5, 1.0f), *b = test_randn(2, bs, 6, 1.0f), *y = NULL;
  if (CHECK_OK(rn_matmul(&y, a, b))) {
    float *pa = rn_f32(a), *pb = rn_f32(b), *py = rn_f32(y);
    double worst = 0;
    for (int r = 0; r < 67; r++)
      for (int c = 0; c < 129; c++) {
        double s = 0;
        for (int k = 0; k < 300; k++) s += (double)pa[r * 300 + k] * pb[k * 129 + c];
        if (fabs(s - py[r * 129 + c]) > worst) worst = fabs(s - py[r * 129 + c]);
      }
    CHECK(worst < 1e-3);
  }
  rn_tensor_release(a); rn_tensor_release(b); rn_tensor_release(y);
}

static void check_bad_input(void) {
  int64_t s23[2] = {2, 3}, s43[2] = {4, 3}, s234[3] = {2, 3, 4}, s345[3] = {3, 4, 5}, s5[1] = {5};
  rn_tensor *a = test_randn(2, s23, 1, 1.0f), *b = test_randn(2, s43, 2, 1.0f), *c = test_randn(3, s234, 3, 1.0f);
  rn_tensor *d = test_randn(3, s345, 4, 1.0f), *v5 = test_randn(1, s5, 5, 1.0f), *ai = NULL, *out = NULL, *sc = NULL;
  CHECK_ERR(rn_matmul(&out, a, b), RN_ERR_SHAPE, "inner sizes");
  CHECK_ERR(rn_matmul(&out, c, d), RN_ERR_SHAPE, "broadcast");               /* batch 2 vs 3 */
  CHECK_ERR(rn_matmul(&out, NULL, b), RN_ERR_ARG, "matmul");
  CHECK_ERR(rn_matmul(&out, a, v5), RN_ERR_SHAPE, "inner sizes");
  CHECK_OK(rn_tensor_scalar(&sc, 1.0, RN_F32, rn_cpu()));
  CHECK_ERR(rn_matmul(&out, sc, a), RN_ERR_SHAPE, "scalar");
  CHECK_OK(rn_to_dtype(&ai, a, RN_I64));
  CHECK_ERR(rn_matmul(&out, ai, a), RN_ERR_ARG, "float32");
  CHECK_OK(rn_linear(&out, a, b, NULL));
  if (out) CHECK(out->shape[0] == 2 && out->shape[1] == 4);
  rn_tensor_release(out); out = NULL;
  int64_t s25[2] = {2, 5};
  rn_tensor *w25 = test_randn(2, s25, 6, 1.0f);
  CHECK_ERR(rn_linear(&out, a, w25, NULL), RN_ERR_SHAPE, "does not fit");
  rn_tensor_release(w25);
  CHECK_ERR(rn_linear(&out, a, b, v5), RN_ERR_SHAPE, "bias");
  CHECK_ERR(rn_linear(&out, a, c, NULL), RN_ERR_SHAPE, "2 dims");
  rn_tensor *all[] = {a, b, c, d, v5, ai, sc};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) rn_tensor_release(all[i]);
}

int main(void) {
  const char *mm[] = {"matmul_2d", "matmul_batched", "matmul_broadcast", "matmul_fold", "matmul_left2d",
                      "matmul_vec", "matmul_matvec"};
  for (size_t i = 0; i < sizeof mm / sizeof *mm; i++) check_matmul(mm[i]);
  const char *lin[] = {"linear_3d", "linear_2d_nobias", "linear_1d"};
  for (size_t i = 0; i < sizeof lin / sizeof *lin; i++) check_linear(lin[i]);
  check_gemm_kernel();
  check_gemm_strided();
  check_large();
  check_bad_input();
  return test_finish("linalg");
}
