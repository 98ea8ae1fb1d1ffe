/* test_tensor.c - creation, views over shared storage, copies, broadcasting and argument errors. */
#include <math.h>

#include "testutil.h"

static double at(rn_tensor *t, int64_t i0, int64_t i1) {
  int64_t idx[2] = {i0, i1};
  double v = NAN;
  rn_tensor_get(t, idx, &v);
  return v;
}

int main(void) {
  rn_tensor *a = NULL, *v = NULL, *c = NULL, *e = NULL;
  int64_t s23[] = {2, 3};
  float data[] = {1, 2, 3, 4, 5, 6};
  CHECK_OK(rn_tensor_from_data(&a, 2, s23, RN_F32, data));
  CHECK(rn_tensor_numel(a) == 6 && rn_tensor_is_contiguous(a));

  /* transpose is a view: no copy, strides swapped, writes show through */
  CHECK_OK(rn_transpose(&v, a, 0, 1));
  CHECK(v->shape[0] == 3 && v->shape[1] == 2 && !rn_tensor_is_contiguous(v));
  CHECK(at(v, 2, 1) == 6 && at(v, 0, 1) == 4);
  int64_t i21[] = {2, 1};
  CHECK_OK(rn_tensor_set(v, i21, 60));
  CHECK(at(a, 1, 2) == 60);
  CHECK_OK(rn_contiguous(&c, v));
  CHECK(rn_tensor_is_contiguous(c) && at(c, 2, 1) == 60 && c->storage != a->storage);
  rn_tensor_release(c); c = NULL;

  /* narrow and select */
  CHECK_OK(rn_narrow(&c, a, 1, 1, 2));
  CHECK(c->shape[1] == 2 && at(c, 0, 0) == 2 && at(c, 1, 1) == 60);
  rn_tensor_release(c); c = NULL;
  CHECK_OK(rn_select(&c, a, 0, 1));
  int64_t i0[] = {0};
  double x;
  CHECK(c->ndim == 1 && rn_tensor_get(c, i0, &x) == RN_OK && x == 4);
  rn_tensor_release(c); c = NULL;

  /* reshape of a non-contiguous view copies; -1 is inferred */
  int64_t s61[] = {-1, 1};
  CHECK_OK(rn_reshape(&c, v, 2, s61));
  CHECK(c->shape[0] == 6 && at(c, 1, 0) == 4);
  rn_tensor_release(c); c = NULL;

  /* broadcasting add: [2,3] + [3] */
  int64_t s3[] = {3};
  float row[] = {10, 20, 30};
  rn_tensor *r = NULL;
  CHECK_OK(rn_tensor_from_data(&r, 1, s3, RN_F32, row));
  CHECK_OK(rn_add(&c, a, r));
  CHECK(at(c, 0, 0) == 11 && at(c, 1, 2) == 90);
  rn_tensor_release(c); c = NULL;
  CHECK_OK(rn_expand(&e, r, 2, s23));
  CHECK(e->stride[0] == 0 && at(e, 1, 1) == 20);

  /* dtype conversion */
  rn_tensor *l = NULL;
  CHECK_OK(rn_to_dtype(&l, a, RN_I64));
  CHECK(l->dtype == RN_I64 && at(l, 1, 2) == 60);
  rn_tensor_release(l);

  /* errors: never a crash, always a message naming the problem */
  int64_t bad[] = {2, -1};
  CHECK_ERR(rn_tensor_zeros(&c, 2, bad, RN_F32, rn_cpu()), RN_ERR_SHAPE, "negative size");
  int64_t s6[] = {6}, s4[] = {4};
  rn_tensor *six = NULL, *four = NULL;
  CHECK_OK(rn_tensor_zeros(&six, 1, s6, RN_F32, rn_cpu()));
  CHECK_OK(rn_tensor_zeros(&four, 1, s4, RN_F32, rn_cpu()));
  CHECK_ERR(rn_add(&c, six, four), RN_ERR_SHAPE, "[6] and [4]");
  CHECK_ERR(rn_narrow(&c, a, 1, 2, 5), RN_ERR_ARG, "does not fit");
  CHECK_ERR(rn_select(&c, a, 0, 7), RN_ERR_ARG, "out of range");
  CHECK_ERR(rn_transpose(&c, a, 0, 4), RN_ERR_ARG, "dim 5");
  int64_t s7[] = {7};
  CHECK_ERR(rn_reshape(&c, a, 1, s7), RN_ERR_SHAPE, "6 elements");
  int perm[] = {0, 0};
  CHECK_ERR(rn_permute(&c, a, perm), RN_ERR_ARG, "once");
  CHECK_ERR(rn_add(&c, a, l = NULL), RN_ERR_ARG, "expected a tensor");
  rn_tensor *ints = NULL;
  CHECK_OK(rn_tensor_zeros(&ints, 1, s6, RN_I64, rn_cpu()));
  CHECK_ERR(rn_add(&c, six, ints), RN_ERR_ARG, "dtypes differ");
  CHECK_ERR(rn_unary(&c, RN_UN_EXP, ints, 0, 0), RN_ERR_ARG, "float32");
  CHECK_ERR(rn_scale(&c, six, NAN, 0), RN_ERR_ARG, "not finite");
  rn_device d;
  CHECK_ERR(rn_device_parse("gpu", &d), RN_ERR_ARG, "unknown device");
  CHECK_OK(rn_device_parse("cuda:1", &d));
  CHECK(d.type == RN_CUDA && d.index == 1);
  CHECK(rn_backend_for(d) == NULL);
  CHECK(c == NULL);

  /* NaN propagates through arithmetic rather than failing */
  float nan_data[] = {NAN, 1, 2};
  rn_tensor *nt = NULL;
  CHECK_OK(rn_tensor_from_data(&nt, 1, s3, RN_F32, nan_data));
  CHECK_OK(rn_unary(&c, RN_UN_RELU, nt, 0, 0));
  CHECK_OK(rn_tensor_get(c, i0, &x));
  CHECK(isnan(x));
  rn_tensor_release(c);

  rn_tensor_release(nt); rn_tensor_release(ints); rn_tensor_release(six); rn_tensor_release(four);
  rn_tensor_release(e); rn_tensor_release(r); rn_tensor_release(v); rn_tensor_release(a);
  CHECK(rn_allocated_bytes(RN_CPU) == 0);
  return test_finish("tensor");
}
