/* cpu_backend.c - host memory, copies and the CPU kernel table. */
#include <omp.h>

#include "cpu_kernels.h"

/* A small cache of freed blocks. Fresh pages cost ~12 us per 4 KiB to fault in on these machines, more than
 * most kernels spend on them, so blocks are kept by exact rounded size and handed out again. */
#include <pthread.h>

#define CACHE_SLOTS 256
#define CACHE_MAX_BYTES ((size_t)2 << 30)

static struct { void *ptr; size_t bytes; } cache[CACHE_SLOTS];
static int cache_n;
static size_t cache_bytes;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t round_size(size_t bytes) {
  size_t g = bytes < 65536 ? 64 : 4096;
  return (bytes + g - 1) / g * g;
}

static rn_status cpu_alloc(const rn_backend *be, int idx, size_t bytes, void **ptr) {
  size_t rounded = round_size(bytes);
  *ptr = NULL;
  pthread_mutex_lock(&cache_lock);
  for (int i = cache_n - 1; i >= 0; i--) {
    if (cache[i].bytes == rounded) {
      *ptr = cache[i].ptr;
      cache_bytes -= rounded;
      cache[i] = cache[--cache_n];
      break;
    }
  }
  pthread_mutex_unlock(&cache_lock);
  if (!*ptr) *ptr = aligned_alloc(64, rounded);
  if (!*ptr) { /* give the cache back to the system and try once more */
    rn_cpu_release_cache();
    *ptr = aligned_alloc(64, rounded);
  }
  if (!*ptr) return rn_error(RN_ERR_OOM, "out of memory allocating %zu bytes on the CPU", bytes);
  return RN_OK;
}

static void cpu_free(const rn_backend *be, int idx, void *ptr, size_t bytes) {
  size_t rounded = round_size(bytes);
  pthread_mutex_lock(&cache_lock);
  if (rounded >= 4096 && rounded <= CACHE_MAX_BYTES / 4) {
    /* full: evict the oldest entries until it fits */
    while (cache_n > 0 && (cache_n == CACHE_SLOTS || cache_bytes + rounded > CACHE_MAX_BYTES)) {
      free(cache[0].ptr);
      cache_bytes -= cache[0].bytes;
      cache[0] = cache[--cache_n];
    }
    cache[cache_n].ptr = ptr;
    cache[cache_n].bytes = rounded;
    cache_n++;
    cache_bytes += rounded;
    ptr = NULL;
  }
  pthread_mutex_unlock(&cache_lock);
  free(ptr);
}

void rn_cpu_release_cache(void) {
  pthread_mutex_lock(&cache_lock);
  for (int i = 0; i < cache_n; i++) free(cache[i].ptr);
  cache_n = 0;
  cache_bytes = 0;
  pthread_mutex_unlock(&cache_lock);
}

__attribute__((destructor)) static void release_cache_at_exit(void) { rn_cpu_release_cache(); }

static rn_status cpu_memcpy(const rn_backend *be, void *dst, rn_device dd, const void *src, rn_device sd, size_t n) {
  if (dd.type != RN_CPU || sd.type != RN_CPU) return rn_error(RN_ERR_DEVICE, "the CPU backend copies host memory only");
  memmove(dst, src, n);
  return RN_OK;
}

static rn_status cpu_sync(const rn_backend *be, int idx) { return RN_OK; }
static int cpu_device_count(const rn_backend *be) { return 1; }

static const rn_kernels cpu_kernels = {
  .fill = rn_cpu_fill,
  .copy = rn_cpu_copy,
  .unary = rn_cpu_unary,
  .unary_backward = rn_cpu_unary_backward,
  .binary = rn_cpu_binary,
  .where = rn_cpu_where,
  .reduce = rn_cpu_reduce,
  .arg_reduce = rn_cpu_arg_reduce,
  .softmax = rn_cpu_softmax,
  .softmax_backward = rn_cpu_softmax_backward,
  .concat = rn_cpu_concat,
  .index_select = rn_cpu_index_select,
  .index_add = rn_cpu_index_add,
  .gather = rn_cpu_gather,
  .scatter_add = rn_cpu_scatter_add,
  .topk = rn_cpu_topk,
  .gemm = rn_cpu_gemm,
  .conv2d = rn_cpu_conv2d,
  .conv2d_fused = rn_cpu_conv2d_fused,
  .conv2d_backward_data = rn_cpu_conv2d_backward_data,
  .conv2d_backward_weight = rn_cpu_conv2d_backward_weight,
  .batch_norm_stats = rn_cpu_batch_norm_stats,
  .batch_norm_apply = rn_cpu_batch_norm_apply,
  .batch_norm_backward = rn_cpu_batch_norm_backward,
  .group_norm = rn_cpu_group_norm,
  .group_norm_backward = rn_cpu_group_norm_backward,
  .max_pool2d = rn_cpu_max_pool2d,
  .max_pool2d_backward = rn_cpu_max_pool2d_backward,
  .avg_pool2d = rn_cpu_avg_pool2d,
  .avg_pool2d_backward = rn_cpu_avg_pool2d_backward,
  .adaptive_avg_pool2d = rn_cpu_adaptive_avg_pool2d,
  .adaptive_avg_pool2d_backward = rn_cpu_adaptive_avg_pool2d_backward,
  .upsample = rn_cpu_upsample,
  .upsample_backward = rn_cpu_upsample_backward,
  .rng_uniform = rn_cpu_rng_uniform,
  .rng_normal = rn_cpu_rng_normal,
  .adam_step = rn_cpu_adam_step,
};

static const rn_backend cpu_backend = {
  .name = "cpu",
  .type = RN_CPU,
  .alloc = cpu_alloc,
  .free = cpu_free,
  .memcpy = cpu_memcpy,
  .sync = cpu_sync,
  .device_count = cpu_device_count,
  .k = &cpu_kernels,
};

const rn_backend *rn_cpu_backend(void) { return &cpu_backend; }

static int default_threads = -1;

void rn_set_num_threads(int n) {
  if (default_threads < 0) default_threads = omp_get_max_threads();
  omp_set_num_threads(n > 0 ? n : default_threads);
}

int rn_get_num_threads(void) { return omp_get_max_threads(); }
