/* gemm.c - batched matrix products on OpenBLAS, threaded by OpenMP.
 *
 * OpenBLAS here is the pthread build: left alone it starts its own threads, which then spin next to the
 * OpenMP pool that oneDNN and our kernels use and the 2 cores get oversubscribed. So OpenBLAS runs
 * single-threaded and we split the work ourselves: across the batch when it is large enough, else across
 * the columns (or rows) of one product. Measured on this machine the split product is as fast as
 * OpenBLAS's own threading.
 */
#include <cblas.h>
#include <omp.h>
#include <pthread.h>

#include "conv_impl.h"

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single(void) { openblas_set_num_threads(1); }
void rn_cpu_blas_init(void) { pthread_once(&blas_once, blas_single); }

void rn_cpu_sgemm1(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) { /* BLAS would leave C alone for beta == 1; match the math: C = beta C */
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
              alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void rn_cpu_sgemm_par(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                      const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  rn_cpu_blas_init();
  int nt = omp_get_max_threads();
  double flops = 2.0 * (double)m * (double)n * (double)k;
  if (nt <= 1 || flops < 2e6 || omp_in_parallel()) {
    rn_cpu_sgemm1(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  bool by_cols = n >= m; /* split the longer side; blocks stay multiples of 16 for the vector kernels */
  int64_t len = by_cols ? n : m;
  int64_t chunk = ((len + nt - 1) / nt + 15) / 16 * 16;
  int parts = (int)((len + chunk - 1) / chunk);
#pragma omp parallel for num_threads(parts < nt ? parts : nt) schedule(static, 1)
  for (int t = 0; t < parts; t++) {
    int64_t s = (int64_t)t * chunk, e = s + chunk < len ? s + chunk : len;
    if (by_cols)
      rn_cpu_sgemm1(ta, tb, m, e - s, k, alpha, a, lda, tb ? b + s * ldb : b + s, ldb, beta, c + s, ldc);
    else
      rn_cpu_sgemm1(ta, tb, e - s, n, k, alpha, ta ? a + s : a + s * lda, lda, b, ldb, beta, c + s * ldc, ldc);
  }
}

/* y[i] = alpha op(a[i]) op(b[i]) + beta y[i]; a or b may hold one matrix shared by the whole batch. */
rn_status rn_cpu_gemm(rn_tensor *y, const rn_tensor *a, const rn_tensor *b, bool trans_a, bool trans_b, float alpha,
                      float beta) {
  if (y->ndim < 2 || y->ndim > 3 || a->ndim != y->ndim || b->ndim != y->ndim)
    return rn_error(RN_ERR_SHAPE, "gemm: expected [B, rows, cols] operands of one rank");
  int r = y->ndim;
  int64_t batch = r == 3 ? y->shape[0] : 1;
  int64_t ba = r == 3 ? a->shape[0] : 1, bb = r == 3 ? b->shape[0] : 1;
  int64_t ar = a->shape[r - 2], ac = a->shape[r - 1], br = b->shape[r - 2], bc = b->shape[r - 1];
  int64_t m = trans_a ? ac : ar, k = trans_a ? ar : ac, kb = trans_b ? bc : br, n = trans_b ? br : bc;
  if (k != kb || m != y->shape[r - 2] || n != y->shape[r - 1] || (ba != batch && ba != 1) || (bb != batch && bb != 1))
    return rn_error(RN_ERR_SHAPE, "gemm: operand shapes do not fit (m=%lld n=%lld k=%lld/%lld)", (long long)m,
                    (long long)n, (long long)k, (long long)kb);
  int64_t lda, ldb, sa, sb, sy = m * n;
  if (!rn_tensor_is_contiguous(y) || !rn_gemm_operand(a, &lda, &sa) || !rn_gemm_operand(b, &ldb, &sb))
    return rn_error(RN_ERR_ARG, "gemm: the output must be contiguous and the operands' rows contiguous");
  rn_cpu_blas_init();
  float *py = rn_f32(y);
  const float *pa = rn_f32(a), *pb = rn_f32(b);
  int nt = omp_get_max_threads();
  if (batch >= nt && batch > 1) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < batch; i++)
      rn_cpu_sgemm1(trans_a, trans_b, m, n, k, alpha, pa + i * sa, lda, pb + i * sb, ldb, beta, py + i * sy, n);
  } else {
    for (int64_t i = 0; i < batch; i++)
      rn_cpu_sgemm_par(trans_a, trans_b, m, n, k, alpha, pa + i * sa, lda, pb + i * sb, ldb, beta, py + i * sy, n);
  }
  return RN_OK;
}
