/* cuda_backend.c - the CUDA backend: per-device streams, host<->device copies, synchronisation and the kernel
 * table (the kernels: cuda_maps.c and cuda_layers.c around the launchers of kernels/, cuda_blas.c, cuda_conv.c). */
#include <pthread.h>

#include "cuda_internal.h"

rn_status rn_cu_check(cudaError_t e, const char *call) {
  if (e == cudaSuccess) return RN_OK;
  (void)cudaGetLastError(); /* clear a non-sticky error so the next call does not report it again */
  return rn_error(e == cudaErrorMemoryAllocation ? RN_ERR_OOM : RN_ERR_DEVICE, "%s failed: %s (%s)", call,
                  cudaGetErrorString(e), cudaGetErrorName(e));
}

rn_status rn_cu_need(const rn_tensor *t, bool contiguous, bool f32, const char *what) {
  if (!t) return rn_error(RN_ERR_ARG, "%s: missing tensor", what);
  if (t->storage->device.type != RN_CUDA) return rn_error(RN_ERR_DEVICE, "%s: tensor is not on a CUDA device", what);
  if (f32 && t->dtype != RN_F32) return rn_error(RN_ERR_ARG, "%s: expected float32, got %s", what, rn_dtype_name(t->dtype));
  if (contiguous && !rn_tensor_is_contiguous(t)) return rn_error(RN_ERR_ARG, "%s: expected a contiguous tensor", what);
  return RN_OK;
}

/* ------------------------------------------------------------------ devices and streams */

/* stream[d][0] is the device's stream; stream[d][1..] the extra lanes of forks (rn_cuda_fork), made on first use.
 * event[d][0] marks a fork point on the device stream, event[d][i] the end of lane i's work at a join. */
static struct {
  pthread_mutex_t lock;
  cudaStream_t stream[RN_CUDA_MAX_DEVICES][RN_CUDA_MAX_LANES];
  cudaEvent_t event[RN_CUDA_MAX_DEVICES][RN_CUDA_MAX_LANES];
  bool ready[RN_CUDA_MAX_DEVICES];
  int lanes[RN_CUDA_MAX_DEVICES];   /* lanes of the fork in progress; 0 when none */
  int current[RN_CUDA_MAX_DEVICES]; /* the lane work goes to */
} devs = {.lock = PTHREAD_MUTEX_INITIALIZER};

rn_status rn_cu_enter(int device, cudaStream_t *stream) {
  if (device < 0 || device >= rn_cuda_device_count())
    return rn_error(RN_ERR_DEVICE, "cuda:%d: no such device (%d CUDA devices)", device, rn_cuda_device_count());
  RN_TRY(rn_cu_check(cudaSetDevice(device), "cudaSetDevice"));
  if (!__atomic_load_n(&devs.ready[device], __ATOMIC_ACQUIRE)) {
    pthread_mutex_lock(&devs.lock);
    rn_status st = RN_OK;
    if (!devs.ready[device]) {
      /* non-blocking: the legacy default stream (used by libraries we do not control) never waits on ours */
      st = rn_cu_check(cudaStreamCreateWithFlags(&devs.stream[device][0], cudaStreamNonBlocking),
                       "cudaStreamCreateWithFlags");
      if (st == RN_OK) __atomic_store_n(&devs.ready[device], true, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&devs.lock);
    RN_TRY(st);
  }
  *stream = devs.stream[device][devs.current[device]];
  return RN_OK;
}

int rn_cu_current_lane(int device) {
  return device >= 0 && device < RN_CUDA_MAX_DEVICES ? devs.current[device] : 0;
}

/* ------------------------------------------------------------------ lanes: fork, lane, join */

rn_status rn_cuda_fork(int device, int lanes) {
  cudaStream_t s;
  RN_TRY(rn_cu_enter(device, &s));
  if (devs.lanes[device])
    return rn_error(RN_ERR_ARG, "cuda fork: cuda:%d is already forked over %d lanes (join it first)", device,
                    devs.lanes[device]);
  if (lanes < 2 || lanes > RN_CUDA_MAX_LANES)
    return rn_error(RN_ERR_ARG, "cuda fork: %d lanes (2 .. %d)", lanes, RN_CUDA_MAX_LANES);
  for (int i = 0; i < lanes; i++) {
    if (i > 0 && !devs.stream[device][i])
      RN_TRY(rn_cu_check(cudaStreamCreateWithFlags(&devs.stream[device][i], cudaStreamNonBlocking),
                         "cudaStreamCreateWithFlags (a lane)"));
    if (!devs.event[device][i])
      RN_TRY(rn_cu_check(cudaEventCreateWithFlags(&devs.event[device][i], cudaEventDisableTiming),
                         "cudaEventCreateWithFlags"));
  }
  if (!rn_cuda_capturing()) { /* the lanes' library handles, made where making them is allowed */
    RN_TRY(rn_cu_blas_prepare(device, lanes));
    RN_TRY(rn_cu_dnn_prepare(device, lanes));
  }
  RN_TRY(rn_cu_alloc_fork(device, lanes));
  /* every lane starts after the work queued so far (in a capture these waits become the graph's edges) */
  rn_status st = rn_cu_check(cudaEventRecord(devs.event[device][0], s), "cudaEventRecord (fork)");
  int started = 1;
  for (; started < lanes && st == RN_OK; started++)
    st = rn_cu_check(cudaStreamWaitEvent(devs.stream[device][started], devs.event[device][0], 0),
                     "cudaStreamWaitEvent (fork)");
  if (st != RN_OK) {
    /* lanes that did start (in a capture: that joined it) must rejoin the device stream, or the capture cannot end */
    for (int i = 1; i < started - 1; i++)
      if (cudaEventRecord(devs.event[device][i], devs.stream[device][i]) == cudaSuccess)
        (void)cudaStreamWaitEvent(s, devs.event[device][i], 0);
    (void)cudaGetLastError();
    rn_cu_alloc_join(device);
    return st;
  }
  devs.lanes[device] = lanes;
  devs.current[device] = 0;
  return RN_OK;
}

rn_status rn_cuda_lane(int device, int lane) {
  cudaStream_t s;
  RN_TRY(rn_cu_enter(device, &s));
  if (!devs.lanes[device]) return rn_error(RN_ERR_ARG, "cuda lane: cuda:%d has no fork in progress", device);
  RN_TRY(rn_cu_alloc_use_lane(device, lane));
  devs.current[device] = lane;
  return RN_OK;
}

bool rn_cuda_forked(int device) {
  return device >= 0 && device < RN_CUDA_MAX_DEVICES && devs.lanes[device] > 0;
}

rn_status rn_cuda_join(int device) {
  if (device < 0 || device >= rn_cuda_device_count() || !devs.lanes[device])
    return rn_error(RN_ERR_ARG, "cuda join: cuda:%d has no fork in progress", device);
  rn_status st = rn_cu_check(cudaSetDevice(device), "cudaSetDevice");
  cudaStream_t main = devs.stream[device][0];
  for (int i = 1; i < devs.lanes[device]; i++) {
    rn_status e = rn_cu_check(cudaEventRecord(devs.event[device][i], devs.stream[device][i]), "cudaEventRecord (join)");
    if (e == RN_OK)
      e = rn_cu_check(cudaStreamWaitEvent(main, devs.event[device][i], 0), "cudaStreamWaitEvent (join)");
    if (e != RN_OK && !rn_cuda_capturing()) /* the device stream cannot wait for this lane: wait here instead */
      (void)cudaStreamSynchronize(devs.stream[device][i]);
    if (st == RN_OK) st = e;
  }
  (void)cudaGetLastError();
  devs.lanes[device] = 0;
  devs.current[device] = 0;
  rn_cu_alloc_join(device);
  return st;
}

/* Waits for every stream of the device (the lanes too). */
rn_status rn_cu_synchronize_all(int device) {
  cudaStream_t s;
  RN_TRY(rn_cu_enter(device, &s));
  for (int i = 0; i < RN_CUDA_MAX_LANES; i++)
    if (devs.stream[device][i])
      RN_TRY(rn_cu_check(cudaStreamSynchronize(devs.stream[device][i]), "cudaStreamSynchronize"));
  return RN_OK;
}

rn_status rn_cu_stream(const rn_tensor *t, cudaStream_t *stream) {
  if (t->storage->device.type != RN_CUDA)
    return rn_error(RN_ERR_DEVICE, "a CUDA kernel was given a tensor that is not on a CUDA device");
  return rn_cu_enter(t->storage->device.index, stream);
}

/* ------------------------------------------------------------------ the vtable */

static rn_status cu_alloc(const rn_backend *be, int device, size_t bytes, void **ptr) {
  cudaStream_t s;
  RN_TRY(rn_cu_enter(device, &s)); /* creates the device's stream before its first tensor */
  return rn_cu_alloc(device, bytes, ptr);
}

static void cu_free(const rn_backend *be, int device, void *ptr, size_t bytes) { rn_cu_free(device, ptr, bytes); }

/* Host copies wait for the stream: the host buffer may be pageable and is reused as soon as we return. */
static rn_status cu_memcpy(const rn_backend *be, void *dst, rn_device dd, const void *src, rn_device sd, size_t n) {
  if (n == 0) return RN_OK;
  cudaStream_t s, s2;
  if ((dd.type == RN_CPU || sd.type == RN_CPU) && rn_cuda_capturing())
    return rn_error(RN_ERR_ARG, "a copy between host and device cannot be recorded in a CUDA graph (it waits for the "
                    "device): make such tensors before the capture and read results after a replay");
  if (dd.type == RN_CUDA && sd.type == RN_CPU) {
    RN_TRY(rn_cu_enter(dd.index, &s));
    RN_TRY(rn_cu_check(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, s), "cudaMemcpyAsync (host to device)"));
    return rn_cu_check(cudaStreamSynchronize(s), "cudaStreamSynchronize (after a host-to-device copy)");
  }
  if (dd.type == RN_CPU && sd.type == RN_CUDA) {
    RN_TRY(rn_cu_enter(sd.index, &s));
    RN_TRY(rn_cu_check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, s), "cudaMemcpyAsync (device to host)"));
    return rn_cu_check(cudaStreamSynchronize(s), "cudaStreamSynchronize (after a device-to-host copy)");
  }
  if (dd.type == RN_CUDA && sd.type == RN_CUDA) {
    if (dd.index == sd.index) {
      RN_TRY(rn_cu_enter(dd.index, &s));
      return rn_cu_check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, s), "cudaMemcpyAsync (device to device)");
    }
    /* across devices: the source's pending writes first, then the copy on the destination's stream */
    RN_TRY(rn_cu_enter(sd.index, &s2));
    RN_TRY(rn_cu_check(cudaStreamSynchronize(s2), "cudaStreamSynchronize (before a peer copy)"));
    RN_TRY(rn_cu_enter(dd.index, &s));
    RN_TRY(rn_cu_check(cudaMemcpyPeerAsync(dst, dd.index, src, sd.index, n, s), "cudaMemcpyPeerAsync"));
    return rn_cu_check(cudaStreamSynchronize(s), "cudaStreamSynchronize (after a peer copy)");
  }
  memmove(dst, src, n);
  return RN_OK;
}

static rn_status cu_sync(const rn_backend *be, int device) { return rn_cuda_synchronize(device); }
static int cu_device_count(const rn_backend *be) { return rn_cuda_device_count(); }

static const rn_kernels cuda_kernels = {
  .fill = rn_cu_fill,
  .copy = rn_cu_copy,
  .unary = rn_cu_unary,
  .unary_backward = rn_cu_unary_backward,
  .binary = rn_cu_binary,
  .where = rn_cu_where,
  .reduce = rn_cu_reduce,
  .arg_reduce = rn_cu_arg_reduce,
  .softmax = rn_cu_softmax,
  .softmax_backward = rn_cu_softmax_backward,
  .concat = rn_cu_concat,
  .index_select = rn_cu_index_select,
  .index_add = rn_cu_index_add,
  .gather = rn_cu_gather,
  .scatter_add = rn_cu_scatter_add,
  .topk = rn_cu_topk,
  .gemm = rn_cu_gemm,
  .conv2d = rn_cu_conv2d,
  .conv2d_fused = rn_cu_conv2d_fused,
  .conv2d_backward_data = rn_cu_conv2d_backward_data,
  .conv2d_backward_weight = rn_cu_conv2d_backward_weight,
  .batch_norm_stats = rn_cu_batch_norm_stats,
  .batch_norm_apply = rn_cu_batch_norm_apply,
  .batch_norm_backward = rn_cu_batch_norm_backward,
  .group_norm = rn_cu_group_norm,
  .group_norm_backward = rn_cu_group_norm_backward,
  .max_pool2d = rn_cu_max_pool2d,
  .max_pool2d_backward = rn_cu_max_pool2d_backward,
  .avg_pool2d = rn_cu_avg_pool2d,
  .avg_pool2d_backward = rn_cu_avg_pool2d_backward,
  .adaptive_avg_pool2d = rn_cu_adaptive_avg_pool2d,
  .adaptive_avg_pool2d_backward = rn_cu_adaptive_avg_pool2d_backward,
  .upsample = rn_cu_upsample,
  .upsample_backward = rn_cu_upsample_backward,
  .rng_uniform = rn_cu_rng_uniform,
  .rng_normal = rn_cu_rng_normal,
  .adam_step = rn_cu_adam_step,
};

static const rn_backend cuda_backend = {
  .name = "cuda",
  .type = RN_CUDA,
  .alloc = cu_alloc,
  .free = cu_free,
  .memcpy = cu_memcpy,
  .sync = cu_sync,
  .device_count = cu_device_count,
  .k = &cuda_kernels,
};

const rn_backend *rn_cuda_backend(int index) {
  int n = rn_cuda_device_count();
  if (n == 0) {
    rn_error(RN_ERR_DEVICE, "cuda:%d requested but %s", index, rn_cuda_unavailable_reason());
    return NULL;
  }
  if (index < 0 || index >= n) {
    rn_error(RN_ERR_DEVICE, "cuda:%d requested but this machine has %d CUDA device%s (cuda:0..cuda:%d)", index, n,
             n == 1 ? "" : "s", n - 1);
    return NULL;
  }
  return &cuda_backend;
}
