/* pc_knn.c - exact k-nearest-neighbour search of query rows against a memory bank.
 *
 * Squared distances |q|^2 + |b|^2 - 2 q.b come from gemm over tiles of QB queries x KB bank rows, so the
 * bank streams through the cache once per query tile; each OpenMP thread owns whole query tiles (its own
 * gemm scratch and top-k lists, no locking). The expansion loses digits when q is close to b, so the k
 * rows found are re-measured directly before sorting: the distances returned are exact, and only a near
 * tie could swap which of two almost equidistant rows is reported.
 */
#include <float.h>
#include <omp.h>

#include "../cpu/conv_impl.h"
#include "pc_internal.h"

#define QB 128
#define KB 1024

static void row_norms(const float *x, int64_t n, int64_t d, float *out) {
#pragma omp parallel for schedule(static) if (n * d > 100000)
  for (int64_t i = 0; i < n; i++) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < d; j++) s += x[i * d + j] * x[i * d + j];
    out[i] = s;
  }
}

/* Inserts (v, i) into the ascending list of length k when it beats the last entry. */
static inline void topk_insert(float *vals, int64_t *idx, int k, float v, int64_t i) {
  if (v >= vals[k - 1]) return;
  int p = k - 1;
  while (p > 0 && vals[p - 1] > v) {
    vals[p] = vals[p - 1];
    idx[p] = idx[p - 1];
    p--;
  }
  vals[p] = v;
  idx[p] = i;
}

static inline double exact_dist(const float *a, const float *b, int64_t d) {
  double s = 0.0;
  for (int64_t j = 0; j < d; j++) {
    double t = (double)a[j] - (double)b[j];
    s += t * t;
  }
  return sqrt(s);
}

rn_status rn_pc_knn(rn_tensor **dist, rn_tensor **index, const rn_tensor *q, const rn_tensor *bank, int k) {
  if (!dist || !index) return rn_error(RN_ERR_ARG, "knn: NULL output");
  *dist = *index = NULL;
  RN_TRY(rn_pc_check_matrix(q, "knn: queries"));
  RN_TRY(rn_pc_check_matrix(bank, "knn: bank"));
  int64_t m = q->shape[0], d = q->shape[1], nb = bank->shape[0];
  if (bank->shape[1] != d)
    return rn_error(RN_ERR_SHAPE, "knn: queries have %lld dims but the bank has %lld", (long long)d,
                    (long long)bank->shape[1]);
  if (k < 1 || k > nb)
    return rn_error(RN_ERR_ARG, "knn: k = %d must be in 1..%lld (the bank size)", k, (long long)nb);
  rn_tensor *qc = NULL, *bc = NULL, *dv = NULL, *iv = NULL;
  float *qn = NULL, *bn = NULL, *scratch = NULL;
  int nt = omp_get_max_threads();
  int64_t shape[2] = {m, k};
  rn_status st = rn_contig_nograd(&qc, q);
  if (st == RN_OK) st = rn_contig_nograd(&bc, bank);
  if (st == RN_OK) st = rn_tensor_empty(&dv, 2, shape, RN_F32, rn_cpu());
  if (st == RN_OK) st = rn_tensor_empty(&iv, 2, shape, RN_I64, rn_cpu());
  if (st == RN_OK) {
    qn = (float *)malloc((size_t)m * sizeof *qn);
    bn = (float *)malloc((size_t)nb * sizeof *bn);
    scratch = (float *)malloc((size_t)nt * QB * KB * sizeof *scratch);
    if (!qn || !bn || !scratch) st = rn_error(RN_ERR_OOM, "knn: scratch for %lld queries x %lld bank rows",
                                              (long long)m, (long long)nb);
  }
  if (st == RN_OK) {
    rn_cpu_blas_init();
    const float *pq = rn_f32(qc), *pb = rn_f32(bc);
    float *pd = rn_f32(dv);
    int64_t *pi = (int64_t *)rn_tensor_data(iv);
    row_norms(pq, m, d, qn);
    row_norms(pb, nb, d, bn);
    int64_t tiles = (m + QB - 1) / QB;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t t = 0; t < tiles; t++) {
      float *g = scratch + (size_t)omp_get_thread_num() * QB * KB;
      int64_t r0 = t * QB, rq = m - r0 < QB ? m - r0 : QB;
      float *vals = pd + r0 * k;
      int64_t *ids = pi + r0 * k;
      for (int64_t i = 0; i < rq * k; i++) { vals[i] = FLT_MAX; ids[i] = 0; }
      for (int64_t c0 = 0; c0 < nb; c0 += KB) {
        int64_t cb = nb - c0 < KB ? nb - c0 : KB;
        rn_cpu_sgemm1(false, true, rq, cb, d, -2.0f, pq + r0 * d, d, pb + c0 * d, d, 0.0f, g, cb);
        for (int64_t i = 0; i < rq; i++) {
          const float *gr = g + i * cb;
          float qi = qn[r0 + i];
          for (int64_t j = 0; j < cb; j++) topk_insert(vals + i * k, ids + i * k, k, gr[j] + qi + bn[c0 + j], c0 + j);
        }
      }
      for (int64_t i = 0; i < rq; i++) { /* exact distances of the rows found, re-sorted */
        float *v = vals + i * k;
        int64_t *ix = ids + i * k;
        for (int j = 0; j < k; j++) v[j] = (float)exact_dist(pq + (r0 + i) * d, pb + ix[j] * d, d);
        for (int a = 1; a < k; a++) {
          float va = v[a];
          int64_t ia = ix[a];
          int b = a;
          while (b > 0 && (v[b - 1] > va || (v[b - 1] == va && ix[b - 1] > ia))) {
            v[b] = v[b - 1];
            ix[b] = ix[b - 1];
            b--;
          }
          v[b] = va;
          ix[b] = ia;
        }
      }
    }
  }
  free(qn);
  free(bn);
  free(scratch);
  rn_tensor_release(qc);
  rn_tensor_release(bc);
  if (st != RN_OK) {
    rn_tensor_release(dv);
    rn_tensor_release(iv);
    return st;
  }
  *dist = dv;
  *index = iv;
  return RN_OK;
}
