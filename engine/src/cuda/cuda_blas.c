/* cuda_blas.c - batched matrix products through cuBLAS (one handle per device and lane, bound to its stream: a
 * handle's default workspace must not serve two streams at once).
 *
 * The engine's matrices are row-major and cuBLAS's column-major, so y = op(a) op(b) is computed as
 * y^T = op(b)^T op(a)^T: the stored row-major arrays are read as the transposed column-major matrices with no
 * copies. A batch of one for a or b (stride 0) shares that matrix across the batch, as rn_cpu_gemm does.
 * bfloat16 autocast (rn_cuda_set_bf16) selects CUBLAS_COMPUTE_32F_FAST_16BF (cuBLAS rounds the float32 inputs to
 * bfloat16 itself and sums in float32: no conversion kernels), TF32 (rn_cuda_set_tf32) CUBLAS_COMPUTE_32F_FAST_TF32,
 * else plain float32 (CUBLAS_COMPUTE_32F).
 *
 * cuBLAS is opened with dlopen on first use instead of being linked: loading libcublasLt costs about 2 s and
 * 200 MB at every process start, which every realnet run and test would pay whether or not it uses a GPU.
 */
#include <cublas_v2.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>

#include "cuda_internal.h"

/* the four entry points used, typed from the header's declarations */
static struct {
  __typeof__(&cublasCreate_v2) create;
  __typeof__(&cublasSetStream_v2) set_stream;
  __typeof__(&cublasGemmStridedBatchedEx) gemm;
  __typeof__(&cublasGetStatusString) status_string;
  char error[512];
} lib;

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

#define STR2(x) #x
#define STR(x) STR2(x)

static void load_cublas(void) {
  const char *names[] = {"libcublas.so." STR(CUBLAS_VER_MAJOR), "libcublas.so"};
  void *h = NULL;
  for (int i = 0; i < 2 && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    snprintf(lib.error, sizeof lib.error, "cannot load cuBLAS (%s): %s", names[0], dlerror());
    return;
  }
  lib.create = (__typeof__(lib.create))dlsym(h, "cublasCreate_v2");
  lib.set_stream = (__typeof__(lib.set_stream))dlsym(h, "cublasSetStream_v2");
  lib.gemm = (__typeof__(lib.gemm))dlsym(h, "cublasGemmStridedBatchedEx");
  lib.status_string = (__typeof__(lib.status_string))dlsym(h, "cublasGetStatusString");
  if (!lib.create || !lib.set_stream || !lib.gemm || !lib.status_string) {
    snprintf(lib.error, sizeof lib.error, "%s lacks cublasCreate_v2, cublasSetStream_v2, "
             "cublasGemmStridedBatchedEx or cublasGetStatusString", names[0]);
    lib.create = NULL;
  }
}

static rn_status blas_check(cublasStatus_t s, const char *call) {
  if (s == CUBLAS_STATUS_SUCCESS) return RN_OK;
  return rn_error(s == CUBLAS_STATUS_ALLOC_FAILED ? RN_ERR_OOM : RN_ERR_DEVICE, "%s failed: %s", call,
                  lib.status_string(s));
}

static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
static cublasHandle_t handles[RN_CUDA_MAX_DEVICES][RN_CUDA_MAX_LANES];

/* The handle of the device's current lane, created on first use; bound to the stream on every call (cheap, and
 * robust should the stream ever be recreated). */
static rn_status blas_handle(int device, cudaStream_t stream, cublasHandle_t *out) {
  pthread_once(&lib_once, load_cublas);
  if (!lib.create) return rn_error(RN_ERR_DEVICE, "gemm: %s", lib.error);
  int lane = rn_cu_current_lane(device);
  pthread_mutex_lock(&blas_lock);
  rn_status st = RN_OK;
  if (!handles[device][lane]) st = blas_check(lib.create(&handles[device][lane]), "cublasCreate");
  cublasHandle_t h = handles[device][lane];
  pthread_mutex_unlock(&blas_lock);
  RN_TRY(st);
  RN_TRY(blas_check(lib.set_stream(h, stream), "cublasSetStream"));
  *out = h;
  return RN_OK;
}

rn_status rn_cu_blas_prepare(int device, int lanes) {
  cudaStream_t s;
  RN_TRY(rn_cu_enter(device, &s));
  pthread_once(&lib_once, load_cublas);
  if (!lib.create) return rn_error(RN_ERR_DEVICE, "gemm: %s", lib.error);
  rn_status st = RN_OK;
  pthread_mutex_lock(&blas_lock);
  for (int i = 0; st == RN_OK && i < lanes && i < RN_CUDA_MAX_LANES; i++)
    if (!handles[device][i]) st = blas_check(lib.create(&handles[device][i]), "cublasCreate");
  pthread_mutex_unlock(&blas_lock);
  return st;
}

rn_status rn_cu_gemm(rn_tensor *y, const rn_tensor *a, const rn_tensor *b, bool trans_a, bool trans_b, float alpha,
                     float beta) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(y, &s));
  RN_TRY(rn_cu_need(y, true, true, "gemm: output"));
  RN_TRY(rn_cu_need(a, false, true, "gemm: a"));
  RN_TRY(rn_cu_need(b, false, true, "gemm: b"));
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
  if (m == 0 || n == 0 || batch == 0) return RN_OK;
  if (k == 0) { /* y = beta * y, as the CPU path does (and without reading y when beta is 0) */
    if (beta == 0.0f) return rn_cu_fill(y, 0.0);
    return rn_cu_unary(RN_UN_SCALE, y, y, beta, 0.0f);
  }
  int64_t lda, ldb, sa, sb;
  if (!rn_gemm_operand(a, &lda, &sa) || !rn_gemm_operand(b, &ldb, &sb))
    return rn_error(RN_ERR_ARG, "gemm: the operands' rows must be contiguous");
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX || batch > INT_MAX || lda > INT_MAX || ldb > INT_MAX)
    return rn_error(RN_ERR_SHAPE, "gemm: sizes beyond cuBLAS's 32-bit limits (m=%lld n=%lld k=%lld batch=%lld)",
                    (long long)m, (long long)n, (long long)k, (long long)batch);
  cublasHandle_t h = NULL;
  RN_TRY(blas_handle(y->storage->device.index, s, &h));
  long long sy = m * n;
  cublasComputeType_t ct = rn_cuda_get_bf16()   ? CUBLAS_COMPUTE_32F_FAST_16BF
                          : rn_cuda_get_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32
                                               : CUBLAS_COMPUTE_32F;
  /* column-major: C'(n x m) = op(B')(n x k) op(A')(k x m), with B' = b as stored (ld ldb), A' = a (ld lda) */
  return blas_check(lib.gemm(h, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                             (int)n, (int)m, (int)k, &alpha, rn_cu_ptr(b), CUDA_R_32F, (int)ldb, (long long)sb,
                             rn_cu_ptr(a), CUDA_R_32F, (int)lda, (long long)sa, &beta, rn_cu_ptr(y), CUDA_R_32F,
                             (int)n, sy, (int)batch, ct, CUBLAS_GEMM_DEFAULT),
                    "cublasGemmStridedBatchedEx");
}
