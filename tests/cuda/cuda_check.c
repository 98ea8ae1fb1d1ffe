/* cuda_check.c - see cuda_check.h. */
#include "cuda_check.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

const rn_kernels *KC, *KG;
rn_device GPU = {RN_CUDA, 0};

int cuda_begin(const char *name) {
  if (!rn_cuda_available()) {
    char why[320];
    snprintf(why, sizeof why, "cuda %s: %s", name, rn_cuda_unavailable_reason());
    return test_skip(why);
  }
  const rn_backend *be = rn_backend_for(GPU);
  if (!be) {
    fprintf(stderr, "cuda %s: %s\n", name, rn_last_error());
    exit(1);
  }
  /* the tolerances are float32's: REALNET_TF32 / REALNET_BF16 in the environment must not loosen the math; the
   * tests that check those modes turn them on themselves */
  rn_cuda_set_tf32(false);
  rn_cuda_set_bf16(false);
  char dev[128] = "?";
  rn_cuda_device_name(0, dev, sizeof dev);
  printf("cuda %s: on %s (cuda:0)\n", name, dev);
  KC = rn_cpu_backend()->k;
  KG = be->k;
  return 0;
}

static void die(const char *what) {
  fprintf(stderr, "%s: %s\n", what, rn_last_error());
  exit(2);
}

rn_tensor *to_gpu(const rn_tensor *cpu) {
  rn_tensor *g = NULL;
  if (rn_to_device(&g, (rn_tensor *)cpu, GPU) != RN_OK) die("to_gpu");
  return g;
}

rn_tensor *new_on(rn_device dev, int ndim, const int64_t *shape, rn_dtype dt, bool zero) {
  rn_tensor *t = NULL;
  rn_status st = zero ? rn_tensor_zeros(&t, ndim, shape, dt, dev) : rn_tensor_empty(&t, ndim, shape, dt, dev);
  if (st != RN_OK) die("new_on");
  return t;
}

rn_tensor *uniform(int ndim, const int64_t *shape, uint64_t seed, float lo, float hi) {
  rn_tensor *t = new_on(rn_cpu(), ndim, shape, RN_F32, false);
  rn_rng g;
  rn_rng_init(&g, seed, 7);
  if (rn_rng_uniform_(&g, t, lo, hi) != RN_OK) die("uniform");
  return t;
}

rn_tensor *rand_index(int ndim, const int64_t *shape, int64_t range, uint64_t seed) {
  rn_tensor *t = new_on(rn_cpu(), ndim, shape, RN_I64, false);
  rn_rng g;
  rn_rng_init(&g, seed, 11);
  int64_t *p = rn_tensor_data(t);
  for (int64_t i = 0; i < rn_tensor_numel(t); i++) p[i] = rn_rng_int(&g, 0, range - 1);
  return t;
}

rn_tensor *rand_levels(int ndim, const int64_t *shape, int levels, uint64_t seed) {
  rn_tensor *t = new_on(rn_cpu(), ndim, shape, RN_F32, false);
  rn_rng g;
  rn_rng_init(&g, seed, 13);
  float *p = rn_f32(t);
  for (int64_t i = 0; i < rn_tensor_numel(t); i++) p[i] = (float)rn_rng_int(&g, 0, levels - 1);
  return t;
}

static rn_tensor *back(const rn_tensor *gpu) {
  rn_tensor *c = NULL;
  if (rn_to_device(&c, (rn_tensor *)gpu, rn_cpu()) != RN_OK) die("copy to the host");
  return c;
}

int agree(const rn_tensor *gpu, const rn_tensor *cpu, double atol, double rtol, const char *what) {
  rn_tensor *c = back(gpu);
  int ok = test_check_close(c, cpu, atol, rtol, what);
  rn_tensor_release(c);
  return ok;
}

static double flat(const rn_tensor *t, int64_t i) {
  int64_t idx[RN_MAX_DIMS];
  for (int d = t->ndim - 1; d >= 0; d--) { idx[d] = i % t->shape[d]; i /= t->shape[d]; }
  double v = 0;
  rn_tensor_get(t, idx, &v);
  return v;
}

/* equal values, or NaN on both sides */
int agree_exact(const rn_tensor *gpu, const rn_tensor *cpu, const char *what) {
  rn_tensor *c = back(gpu);
  int ok = test_check(c && rn_tensor_same_shape(c, cpu), what, __FILE__, __LINE__);
  int64_t n = ok ? rn_tensor_numel(cpu) : 0, bad = 0, first = -1;
  for (int64_t i = 0; i < n; i++) {
    double a = flat(c, i), b = flat(cpu, i);
    if (!(a == b || (isnan(a) && isnan(b)))) { bad++; if (first < 0) first = i; }
  }
  if (bad) {
    test_check(0, what, __FILE__, __LINE__);
    fprintf(stderr, "FAIL %s: %lld of %lld elements differ; first at %lld: %.9g vs %.9g\n", what, (long long)bad,
            (long long)n, (long long)first, flat(c, first), flat(cpu, first));
    ok = 0;
  }
  rn_tensor_release(c);
  return ok;
}

void release_all(int n, ...) {
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) rn_tensor_release(va_arg(ap, rn_tensor *));
  va_end(ap);
}
