/* test_gradcheck_elementwise.c - finite-difference checks of the broadcasting binary ops, the unary maps,
 * where, and the differentiable views. Tolerances: GC_EPS/GC_ATOL/GC_RTOL of testutil.h. */
#include "testutil.h"

static rn_status f_binary(rn_tensor **out, rn_tensor **in, void *ctx) {
  return rn_binary(out, *(rn_binary_op *)ctx, in[0], in[1]);
}

static rn_status f_unary(rn_tensor **out, rn_tensor **in, void *ctx) {
  rn_unary_op op = *(rn_unary_op *)ctx;
  float a = op == RN_UN_LEAKY_RELU ? 0.1f : op == RN_UN_SCALE ? 2.5f : op == RN_UN_POWS ? 3.0f : op == RN_UN_CLAMP ? -0.5f : 0;
  float b = op == RN_UN_SCALE ? -1.0f : op == RN_UN_CLAMP ? 0.7f : 0;
  return rn_unary(out, op, in[0], a, b);
}

static rn_status f_where(rn_tensor **out, rn_tensor **in, void *ctx) { return rn_where(out, in[2], in[0], in[1]); }

/* a chain of views: transpose, narrow, select, permute, reshape, expand, unsqueeze, squeeze */
static rn_status f_views(rn_tensor **out, rn_tensor **in, void *ctx) {
  rn_tensor *t1 = NULL, *t2 = NULL, *t3 = NULL, *t4 = NULL, *t5 = NULL, *t6 = NULL;
  int perm[] = {1, 0};
  int64_t flat[] = {-1}, big[] = {2, 6};
  rn_status st = rn_transpose(&t1, in[0], 0, 2);                  /* [4,3,2] */
  if (st == RN_OK) st = rn_narrow(&t2, t1, 0, 1, 2);              /* [2,3,2] */
  if (st == RN_OK) st = rn_select(&t3, t2, 2, 1);                 /* [2,3] */
  if (st == RN_OK) st = rn_permute(&t4, t3, perm);                /* [3,2] */
  if (st == RN_OK) st = rn_reshape(&t5, t4, 1, flat);             /* [6] */
  if (st == RN_OK) st = rn_unsqueeze(&t6, t5, 0);                 /* [1,6] */
  if (st == RN_OK) st = rn_expand(out, t6, 2, big);               /* [2,6] */
  rn_tensor_release(t1); rn_tensor_release(t2); rn_tensor_release(t3);
  rn_tensor_release(t4); rn_tensor_release(t5); rn_tensor_release(t6);
  return st;
}

static rn_tensor *positive(rn_tensor *t) { /* |x| + 0.5 keeps log/sqrt/pow/div away from 0 */
  float *p = rn_f32(t);
  for (int64_t i = 0; i < rn_tensor_numel(t); i++) p[i] = (p[i] < 0 ? -p[i] : p[i]) + 0.5f;
  return t;
}

static rn_tensor *away_from_kinks(rn_tensor *t) { /* keep |x| > 0.1 and away from 6 and the clamp bounds */
  float *p = rn_f32(t);
  for (int64_t i = 0; i < rn_tensor_numel(t); i++) {
    float v = p[i];
    if (v > -0.1f && v < 0.1f) v = v < 0 ? v - 0.2f : v + 0.2f;
    if (v > -0.6f && v < -0.4f) v -= 0.2f;
    if (v > 0.6f && v < 0.8f) v += 0.2f;
    p[i] = v;
  }
  return t;
}

int main(void) {
  int64_t sa[] = {2, 3, 4}, sb[] = {3, 1};
  for (int op = RN_BIN_ADD; op <= RN_BIN_MIN; op++) {
    rn_tensor *in[2] = {test_randn(3, sa, 1, 1), test_randn(2, sb, 2, 1)};
    if (op == RN_BIN_DIV || op == RN_BIN_POW) { positive(in[0]); positive(in[1]); }
    rn_set_requires_grad(in[0], true);
    rn_set_requires_grad(in[1], true);
    char name[32];
    snprintf(name, sizeof name, "binary op %d (broadcast)", op);
    test_gradcheck(name, f_binary, 2, in, &op, GC_EPS, GC_ATOL, GC_RTOL);
    rn_tensor_release(in[0]); rn_tensor_release(in[1]);
  }
  for (int op = 0; op < RN_UN_COUNT; op++) {
    rn_tensor *in[1] = {test_randn(3, sa, 3, 1)};
    if (op == RN_UN_LOG || op == RN_UN_SQRT || op == RN_UN_RSQRT || op == RN_UN_POWS) positive(in[0]);
    else away_from_kinks(in[0]);
    if (op == RN_UN_RELU6) { float *p = rn_f32(in[0]); for (int i = 0; i < 24; i++) p[i] *= 4; away_from_kinks(in[0]); }
    rn_set_requires_grad(in[0], true);
    char name[32];
    snprintf(name, sizeof name, "unary op %d", op);
    test_gradcheck(name, f_unary, 1, in, &op, GC_EPS, GC_ATOL, GC_RTOL);
    rn_tensor_release(in[0]);
  }
  {
    rn_tensor *cond = NULL, *zero = NULL;
    rn_tensor *in[3] = {test_randn(3, sa, 4, 1), test_randn(2, sb, 5, 1), NULL};
    rn_tensor *c0 = test_randn(3, sa, 6, 1);
    rn_tensor_scalar(&zero, 0, RN_F32, rn_cpu());
    CHECK_OK(rn_binary(&cond, RN_BIN_GT, c0, zero));
    in[2] = cond;
    rn_set_requires_grad(in[0], true);
    rn_set_requires_grad(in[1], true);
    test_gradcheck("where", f_where, 3, in, NULL, GC_EPS, GC_ATOL, GC_RTOL);
    rn_tensor_release(in[0]); rn_tensor_release(in[1]); rn_tensor_release(cond);
    rn_tensor_release(zero); rn_tensor_release(c0);
  }
  {
    int64_t sv[] = {2, 3, 4};
    rn_tensor *in[1] = {test_randn(3, sv, 7, 1)};
    rn_set_requires_grad(in[0], true);
    test_gradcheck("views", f_views, 1, in, NULL, GC_EPS, GC_ATOL, GC_RTOL);
    rn_tensor_release(in[0]);
  }
  return test_finish("gradcheck_elementwise");
}
