/* pc_coreset.c - the tensor-level coreset entry points (checks, then pc_kcenter.c) and the seeded
 * Johnson-Lindenstrauss projection (one gemm, split over the OpenMP threads) the selection runs on. */
#include "../cpu/conv_impl.h"
#include "pc_internal.h"

rn_status rn_pc_matrix(rn_tensor **out, int64_t rows, int64_t cols) {
  int64_t shape[2] = {rows, cols};
  return rn_tensor_empty(out, 2, shape, RN_F32, rn_cpu());
}

rn_status rn_pc_check_matrix(const rn_tensor *t, const char *what) {
  char b[64];
  RN_TRY(rn_check_f32(t, what));
  if (rn_tensor_device(t).type != RN_CPU) return rn_error(RN_ERR_DEVICE, "%s must be a CPU tensor", what);
  if (t->ndim != 2 || t->shape[0] <= 0 || t->shape[1] <= 0)
    return rn_error(RN_ERR_SHAPE, "%s must be a non-empty matrix [N, D], got %s", what, rn_shape_str(t, b, 64));
  return RN_OK;
}

rn_status rn_pc_kcenter_greedy(rn_tensor **index, const rn_tensor *x, int64_t k, int64_t start) {
  if (!index) return rn_error(RN_ERR_ARG, "kcenter_greedy: NULL output");
  *index = NULL;
  RN_TRY(rn_pc_check_matrix(x, "kcenter_greedy: points"));
  int64_t n = x->shape[0], d = x->shape[1];
  if (k < 1 || k > n)
    return rn_error(RN_ERR_ARG, "kcenter_greedy: k = %lld must be in 1..%lld (the number of points)", (long long)k,
                    (long long)n);
  if (start < 0 || start >= n)
    return rn_error(RN_ERR_ARG, "kcenter_greedy: start row %lld is out of range 0..%lld", (long long)start,
                    (long long)(n - 1));
  rn_tensor *xc = NULL, *idx = NULL;
  int64_t shape[1] = {k};
  rn_status st = rn_contig_nograd(&xc, x);
  if (st == RN_OK) st = rn_tensor_empty(&idx, 1, shape, RN_I64, rn_cpu());
  if (st == RN_OK) st = rn_pc_kcenter_raw(rn_f32(xc), n, d, k, start, (int64_t *)rn_tensor_data(idx));
  rn_tensor_release(xc);
  if (st != RN_OK) {
    rn_tensor_release(idx);
    return st;
  }
  *index = idx;
  return RN_OK;
}

rn_status rn_pc_project_raw(const float *x, int64_t n, int64_t d, int dims, uint64_t seed, float *y) {
  rn_tensor *r = NULL;
  rn_rng g;
  rn_rng_init(&g, seed, 0x9c0e5e7); /* a stream of its own: other draws from the seed stay independent */
  rn_status st = rn_pc_matrix(&r, d, dims);
  if (st == RN_OK) st = rn_rng_normal_(&g, r, 0.0f, 1.0f / sqrtf((float)dims));
  if (st == RN_OK) rn_cpu_sgemm_par(false, false, n, dims, d, 1.0f, x, d, rn_f32(r), dims, 0.0f, y, dims);
  rn_tensor_release(r);
  return st;
}

rn_status rn_pc_project(rn_tensor **out, const rn_tensor *x, int dims, uint64_t seed) {
  if (!out) return rn_error(RN_ERR_ARG, "project: NULL output");
  *out = NULL;
  RN_TRY(rn_pc_check_matrix(x, "project: input"));
  if (dims <= 0) return rn_error(RN_ERR_ARG, "project: dims must be positive, got %d", dims);
  rn_tensor *xc = NULL, *y = NULL;
  rn_status st = rn_contig_nograd(&xc, x);
  if (st == RN_OK) st = rn_pc_matrix(&y, x->shape[0], dims);
  if (st == RN_OK) st = rn_pc_project_raw(rn_f32(xc), x->shape[0], x->shape[1], dims, seed, rn_f32(y));
  rn_tensor_release(xc);
  if (st != RN_OK) {
    rn_tensor_release(y);
    return st;
  }
  *out = y;
  return RN_OK;
}
