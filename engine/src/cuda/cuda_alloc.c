/* cuda_alloc.c - the caching device allocator.
 *
 * cudaMalloc/cudaFree cost tens to hundreds of microseconds and cudaFree synchronises the device, far more than
 * the kernels of a typical op, so freed blocks are kept per device by rounded size and handed out again. Sizes
 * round to 512 bytes up to 1 MiB, above that to an eighth of their power of two (at most 12.5% slack), so
 * tensors of similar shapes share blocks. Reuse needs no events because each device has one stream (see
 * cuda_internal.h). When cudaMalloc runs out, the cache is returned to the driver and the call retried.
 */
#include <pthread.h>

#include "cuda_internal.h"

typedef struct { void *ptr; size_t bytes; } block;

static struct {
  pthread_mutex_t lock;
  block *free[RN_CUDA_MAX_DEVICES];
  int n[RN_CUDA_MAX_DEVICES], cap[RN_CUDA_MAX_DEVICES];
  size_t cached;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t round_size(size_t bytes) {
  if (bytes == 0) bytes = 1; /* the storage layer allocates 1 byte for empty tensors and frees "0" */
  if (bytes <= ((size_t)1 << 20)) return (bytes + 511) / 512 * 512;
  size_t p = (size_t)1 << 20;
  while (p <= bytes / 2) p <<= 1; /* p: largest power of two <= bytes */
  size_t g = p / 8;
  return (bytes + g - 1) / g * g;
}

/* Frees the cached blocks of one device; the caller holds the lock. */
static void release_locked(int d) {
  if (pool.n[d] == 0) return;
  int prev = -1;
  cudaGetDevice(&prev);
  if (cudaSetDevice(d) == cudaSuccess) {
    for (int i = 0; i < pool.n[d]; i++) {
      cudaFree(pool.free[d][i].ptr); /* errors here leave nothing to recover; the block is gone either way */
      pool.cached -= pool.free[d][i].bytes;
    }
    pool.n[d] = 0;
  }
  (void)cudaGetLastError();
  if (prev >= 0) cudaSetDevice(prev);
}

void rn_cu_release_cache(int device) {
  pthread_mutex_lock(&pool.lock);
  for (int d = 0; d < RN_CUDA_MAX_DEVICES; d++)
    if (device < 0 || d == device) release_locked(d);
  pthread_mutex_unlock(&pool.lock);
}

size_t rn_cu_cached_bytes(void) {
  pthread_mutex_lock(&pool.lock);
  size_t c = pool.cached;
  pthread_mutex_unlock(&pool.lock);
  return c;
}

rn_status rn_cu_alloc(int device, size_t bytes, void **ptr) {
  *ptr = NULL;
  if (device < 0 || device >= RN_CUDA_MAX_DEVICES)
    return rn_error(RN_ERR_DEVICE, "cuda:%d: device index out of range", device);
  size_t rounded = round_size(bytes);
  pthread_mutex_lock(&pool.lock);
  for (int i = pool.n[device] - 1; i >= 0; i--) {
    if (pool.free[device][i].bytes == rounded) {
      *ptr = pool.free[device][i].ptr;
      pool.free[device][i] = pool.free[device][--pool.n[device]];
      pool.cached -= rounded;
      break;
    }
  }
  pthread_mutex_unlock(&pool.lock);
  if (*ptr) return RN_OK;
  RN_TRY(rn_cu_check(cudaSetDevice(device), "cudaSetDevice"));
  cudaError_t e = cudaMalloc(ptr, rounded);
  if (e == cudaErrorMemoryAllocation) { /* give the cache back to the driver and try once more */
    (void)cudaGetLastError();
    rn_cu_release_cache(device);
    e = cudaMalloc(ptr, rounded);
  }
  if (e != cudaSuccess) {
    *ptr = NULL;
    size_t free_b = 0, total_b = 0;
    (void)cudaGetLastError();
    cudaMemGetInfo(&free_b, &total_b);
    (void)cudaGetLastError();
    return rn_error(e == cudaErrorMemoryAllocation ? RN_ERR_OOM : RN_ERR_DEVICE,
                    "cudaMalloc of %zu bytes on cuda:%d failed: %s (%zu of %zu MiB free; tensors hold %zu MiB)",
                    rounded, device, cudaGetErrorString(e), free_b >> 20, total_b >> 20,
                    rn_allocated_bytes(RN_CUDA) >> 20);
  }
  return RN_OK;
}

void rn_cu_free(int device, void *ptr, size_t bytes) {
  if (!ptr) return;
  size_t rounded = round_size(bytes);
  pthread_mutex_lock(&pool.lock);
  if (device >= 0 && device < RN_CUDA_MAX_DEVICES) {
    if (pool.n[device] == pool.cap[device]) {
      int cap = pool.cap[device] ? 2 * pool.cap[device] : 256;
      block *nb = realloc(pool.free[device], (size_t)cap * sizeof *nb);
      if (nb) {
        pool.free[device] = nb;
        pool.cap[device] = cap;
      }
    }
    if (pool.n[device] < pool.cap[device]) {
      pool.free[device][pool.n[device]++] = (block){ptr, rounded};
      pool.cached += rounded;
      ptr = NULL;
    }
  }
  pthread_mutex_unlock(&pool.lock);
  if (ptr) { /* no room to remember it: hand it back now */
    int prev = -1;
    cudaGetDevice(&prev);
    cudaSetDevice(device);
    cudaFree(ptr);
    (void)cudaGetLastError();
    if (prev >= 0) cudaSetDevice(prev);
  }
}
