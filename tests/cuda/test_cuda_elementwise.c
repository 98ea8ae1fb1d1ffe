/* test_cuda_elementwise.c - unary maps (every op, forward on a strided input and backward), binary maps (every
 * op, broadcast operands with stride 0, mixed dtypes), where, and the conv bias path's contiguous fast paths.
 * Tolerance: |gpu - cpu| <= 1e-6 + 1e-5 |cpu| (CUDA's expf/logf/erff/powf/tanhf are within 2 ulp of glibc's;
 * comparisons and integer results exact). */
#include "cuda_check.h"

#define ATOL 1e-6
#define RTOL 1e-5

static bool positive_domain(rn_unary_op op) {
  return op == RN_UN_LOG || op == RN_UN_SQRT || op == RN_UN_RSQRT || op == RN_UN_POWS;
}

static void unary_all(void) {
  int64_t shape[3] = {5, 17, 33};
  rn_tensor *xs = test_randn(3, shape, 1, 2.0f), *xp = uniform(3, shape, 2, 0.1f, 4.0f);
  for (int op = 0; op < RN_UN_COUNT; op++) {
    float a = op == RN_UN_POWS ? 1.7f : op == RN_UN_CLAMP ? -0.5f : 0.3f, b = op == RN_UN_CLAMP ? 0.8f : -0.2f;
    rn_tensor *x = positive_domain((rn_unary_op)op) ? xp : xs, *gxin = to_gpu(x);
    /* forward through a transposed view: the strided path */
    rn_tensor *xt = NULL, *gt = NULL;
    CHECK_OK(rn_transpose(&xt, x, 0, 2));
    CHECK_OK(rn_transpose(&gt, gxin, 0, 2));
    rn_tensor *yc = new_on(rn_cpu(), 3, xt->shape, RN_F32, false), *yg = new_on(GPU, 3, xt->shape, RN_F32, false);
    CHECK_OK(KC->unary((rn_unary_op)op, yc, xt, a, b));
    CHECK_OK(KG->unary((rn_unary_op)op, yg, gt, a, b));
    char what[64];
    snprintf(what, sizeof what, "unary op %d (strided input)", op);
    agree(yg, yc, ATOL, RTOL, what);
    /* contiguous forward */
    rn_tensor *yc2 = new_on(rn_cpu(), 3, shape, RN_F32, false), *yg2 = new_on(GPU, 3, shape, RN_F32, false);
    CHECK_OK(KC->unary((rn_unary_op)op, yc2, x, a, b));
    CHECK_OK(KG->unary((rn_unary_op)op, yg2, gxin, a, b));
    snprintf(what, sizeof what, "unary op %d (contiguous)", op);
    agree(yg2, yc2, ATOL, RTOL, what);
    /* backward */
    rn_tensor *gy = test_randn(3, shape, 3, 1.0f), *ggy = to_gpu(gy);
    rn_tensor *gxc = new_on(rn_cpu(), 3, shape, RN_F32, false), *gxg = new_on(GPU, 3, shape, RN_F32, false);
    CHECK_OK(KC->unary_backward((rn_unary_op)op, gxc, gy, x, a, b));
    CHECK_OK(KG->unary_backward((rn_unary_op)op, gxg, ggy, gxin, a, b));
    snprintf(what, sizeof what, "unary op %d backward", op);
    agree(gxg, gxc, ATOL, RTOL, what);
    release_all(11, gxin, xt, gt, yc, yg, yc2, yg2, gy, ggy, gxc, gxg);
  }
  release_all(2, xs, xp);
}

/* a [4,1,8] and b [1,6,8] expanded to [4,6,8]: stride-0 dims on both sides */
static void binary_all(void) {
  int64_t sa[3] = {4, 1, 8}, sb[3] = {1, 6, 8}, sy[3] = {4, 6, 8};
  rn_tensor *a = uniform(3, sa, 4, 0.5f, 2.0f), *b = uniform(3, sb, 5, -1.5f, 1.5f);
  float *pb = rn_f32(b);
  pb[3] = rn_f32(a)[3]; /* one exact tie for the comparisons */
  rn_tensor *ga = to_gpu(a), *gb = to_gpu(b), *ea = NULL, *eb = NULL, *gea = NULL, *geb = NULL;
  CHECK_OK(rn_expand(&ea, a, 3, sy));
  CHECK_OK(rn_expand(&eb, b, 3, sy));
  CHECK_OK(rn_expand(&gea, ga, 3, sy));
  CHECK_OK(rn_expand(&geb, gb, 3, sy));
  for (int op = 0; op < RN_BIN_COUNT; op++) {
    rn_tensor *yc = new_on(rn_cpu(), 3, sy, RN_F32, false), *yg = new_on(GPU, 3, sy, RN_F32, false);
    CHECK_OK(KC->binary((rn_binary_op)op, yc, ea, eb));
    CHECK_OK(KG->binary((rn_binary_op)op, yg, gea, geb));
    char what[64];
    snprintf(what, sizeof what, "binary op %d (broadcast)", op);
    agree(yg, yc, ATOL, RTOL, what);
    release_all(2, yc, yg);
  }
  /* integer operands: int64 y = int64 a op int32 b, through double as on the CPU */
  rn_tensor *ia = NULL, *ib = NULL, *gia = NULL, *gib = NULL;
  rn_tensor *ai = rand_levels(3, sy, 50, 6), *bi = rand_levels(3, sy, 7, 7);
  CHECK_OK(rn_to_dtype(&ia, ai, RN_I64));
  CHECK_OK(rn_to_dtype(&ib, bi, RN_I32));
  gia = to_gpu(ia);
  gib = to_gpu(ib);
  int ops[] = {RN_BIN_ADD, RN_BIN_SUB, RN_BIN_MUL, RN_BIN_MAX, RN_BIN_EQ, RN_BIN_LT, RN_BIN_GE};
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
    rn_tensor *yc = new_on(rn_cpu(), 3, sy, RN_I64, false), *yg = new_on(GPU, 3, sy, RN_I64, false);
    CHECK_OK(KC->binary((rn_binary_op)ops[i], yc, ia, ib));
    CHECK_OK(KG->binary((rn_binary_op)ops[i], yg, gia, gib));
    agree_exact(yg, yc, "binary on int64 and int32 operands");
    release_all(2, yc, yg);
  }
  /* in place with y == a (the conv bias path uses this) */
  rn_tensor *y = test_randn(3, sy, 8, 1.0f), *gy = to_gpu(y);
  CHECK_OK(KC->binary(RN_BIN_ADD, y, y, eb));
  CHECK_OK(KG->binary(RN_BIN_ADD, gy, gy, geb));
  agree(gy, y, ATOL, RTOL, "in-place binary add with a broadcast operand");
  release_all(16, a, b, ga, gb, ea, eb, gea, geb, ia, ib, gia, gib, ai, bi, y, gy);
}

static void where_all(void) {
  int64_t sy[2] = {9, 40}, sc[2] = {9, 1}, sa[2] = {1, 40};
  rn_tensor *cf = rand_levels(2, sy, 2, 9), *c8 = NULL;
  CHECK_OK(rn_to_dtype(&c8, cf, RN_U8));
  rn_tensor *a = test_randn(2, sa, 10, 1.0f), *b = test_randn(2, sy, 11, 1.0f);
  rn_tensor *ga = to_gpu(a), *gb = to_gpu(b), *gc = to_gpu(c8);
  rn_tensor *ea = NULL, *gea = NULL;
  CHECK_OK(rn_expand(&ea, a, 2, sy));
  CHECK_OK(rn_expand(&gea, ga, 2, sy));
  rn_tensor *yc = new_on(rn_cpu(), 2, sy, RN_F32, false), *yg = new_on(GPU, 2, sy, RN_F32, false);
  CHECK_OK(KC->where(yc, c8, ea, b));
  CHECK_OK(KG->where(yg, gc, gea, gb));
  agree_exact(yg, yc, "where (uint8 condition, broadcast a)");
  /* a broadcast float condition */
  rn_tensor *cc = rand_levels(2, sc, 2, 12), *gcc = to_gpu(cc), *ecc = NULL, *gecc = NULL;
  CHECK_OK(rn_expand(&ecc, cc, 2, sy));
  CHECK_OK(rn_expand(&gecc, gcc, 2, sy));
  CHECK_OK(KC->where(yc, ecc, ea, b));
  CHECK_OK(KG->where(yg, gecc, gea, gb));
  agree_exact(yg, yc, "where (broadcast float condition)");
  release_all(16, cf, c8, a, b, ga, gb, gc, ea, gea, yc, yg, cc, gcc, ecc, gecc, NULL);
}

int main(void) {
  int skip = cuda_begin("elementwise");
  if (skip) return skip;
  unary_all();
  binary_all();
  where_all();
  return test_finish("cuda elementwise");
}
