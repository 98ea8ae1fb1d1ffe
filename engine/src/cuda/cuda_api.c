/* cuda_api.c - device queries, TF32 and bfloat16 switches and cache control (see cuda_api.h). Built in every configuration;
 * the CUDA runtime is only touched when REALNET_CUDA is defined. */
#include <pthread.h>
#include <stdatomic.h>

#include "../internal.h"
#include "cuda_api.h"

/* A switch: -1 until first read, then 0/1; the environment variable set to 1, on or true turns it on at start. */
static bool switch_get(atomic_int *state, const char *env) {
  int s = atomic_load(state);
  if (s < 0) {
    const char *e = getenv(env);
    s = e && (strcmp(e, "1") == 0 || strcmp(e, "on") == 0 || strcmp(e, "true") == 0) ? 1 : 0;
    atomic_store(state, s);
  }
  return s == 1;
}

static atomic_int tf32_state = -1, bf16_state = -1;

void rn_cuda_set_tf32(bool on) { atomic_store(&tf32_state, on ? 1 : 0); }
bool rn_cuda_get_tf32(void) { return switch_get(&tf32_state, "REALNET_TF32"); }
void rn_cuda_set_bf16(bool on) { atomic_store(&bf16_state, on ? 1 : 0); }
bool rn_cuda_get_bf16(void) { return switch_get(&bf16_state, "REALNET_BF16"); }

/* Lanes for parallel sections: 0 until first read, then 1 .. 8; REALNET_CUDA_LANES=N sets it at start. */
static atomic_int lanes_state = 0;

static int clamp_lanes(long n) { return n < 1 ? 1 : n > 8 ? 8 : (int)n; }

void rn_cuda_set_lanes(int lanes) { atomic_store(&lanes_state, clamp_lanes(lanes)); }

int rn_cuda_get_lanes(void) {
  int s = atomic_load(&lanes_state);
  if (s == 0) {
    const char *e = getenv("REALNET_CUDA_LANES");
    s = clamp_lanes(e && *e ? strtol(e, NULL, 10) : 1);
    atomic_store(&lanes_state, s);
  }
  return s;
}

#ifdef REALNET_CUDA

#include "cuda_internal.h"

static pthread_once_t count_once = PTHREAD_ONCE_INIT;
static int device_count;
static char reason[256];

/* Asked once: the driver's answer does not change while the process runs (CUDA_VISIBLE_DEVICES is read at
 * initialisation). A failure here is not an error for the caller, just zero devices and a reason. */
static void count_devices(void) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError(); /* do not leave the error sticky for later calls */
    snprintf(reason, sizeof reason, "no usable CUDA device (%s: %s)", cudaGetErrorName(e), cudaGetErrorString(e));
    n = 0;
  } else if (n == 0) {
    snprintf(reason, sizeof reason, "no CUDA device is present");
  }
  device_count = n > RN_CUDA_MAX_DEVICES ? RN_CUDA_MAX_DEVICES : n;
}

bool rn_cuda_built(void) { return true; }

int rn_cuda_device_count(void) {
  pthread_once(&count_once, count_devices);
  return device_count;
}

const char *rn_cuda_unavailable_reason(void) {
  rn_cuda_device_count();
  return device_count > 0 ? "" : reason;
}

rn_status rn_cuda_device_name(int device, char *buf, size_t n) {
  if (device < 0 || device >= rn_cuda_device_count())
    return rn_error(RN_ERR_DEVICE, "cuda:%d: no such device (%d CUDA devices)", device, rn_cuda_device_count());
  struct cudaDeviceProp prop;
  RN_TRY(rn_cu_check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties"));
  snprintf(buf, n, "%s", prop.name);
  return RN_OK;
}

rn_status rn_cuda_synchronize(int device) {
  if (device < 0 || device >= rn_cuda_device_count())
    return rn_error(RN_ERR_DEVICE, "cuda:%d: no such device (%d CUDA devices)", device, rn_cuda_device_count());
  if (rn_cuda_capturing())
    return rn_error(RN_ERR_ARG, "cuda synchronize: a CUDA graph capture is in progress (waiting for the device "
                    "cannot be recorded; synchronize after graph_end)");
  return rn_cu_synchronize_all(device);
}

void rn_cuda_empty_cache(void) { rn_cu_release_cache(-1); }
size_t rn_cuda_cached_bytes(void) { return rn_cu_cached_bytes(); }

#else /* no CUDA backend in this build */

bool rn_cuda_built(void) { return false; }
int rn_cuda_device_count(void) { return 0; }
const char *rn_cuda_unavailable_reason(void) { return "this build has no CUDA backend"; }

rn_status rn_cuda_device_name(int device, char *buf, size_t n) {
  if (n) buf[0] = 0;
  return rn_error(RN_ERR_DEVICE, "this build has no CUDA backend (device cuda:%d requested)", device);
}

rn_status rn_cuda_synchronize(int device) {
  return rn_error(RN_ERR_DEVICE, "this build has no CUDA backend (device cuda:%d requested)", device);
}

void rn_cuda_empty_cache(void) {}
size_t rn_cuda_cached_bytes(void) { return 0; }
uint64_t rn_cuda_bf16_fallbacks(void) { return 0; }

rn_status rn_cuda_graph_begin(int device) {
  return rn_error(RN_ERR_DEVICE, "this build has no CUDA backend (device cuda:%d requested)", device);
}
rn_status rn_cuda_graph_end(int device, rn_cuda_graph **out) {
  *out = NULL;
  return rn_error(RN_ERR_DEVICE, "this build has no CUDA backend (device cuda:%d requested)", device);
}
rn_status rn_cuda_graph_replay(rn_cuda_graph *g) {
  (void)g;
  return rn_error(RN_ERR_DEVICE, "this build has no CUDA backend");
}
void rn_cuda_graph_free(rn_cuda_graph *g) { (void)g; }
bool rn_cuda_capturing(void) { return false; }

rn_status rn_cuda_fork(int device, int lanes) {
  (void)lanes;
  return rn_error(RN_ERR_DEVICE, "this build has no CUDA backend (device cuda:%d requested)", device);
}
rn_status rn_cuda_lane(int device, int lane) {
  (void)lane;
  return rn_error(RN_ERR_DEVICE, "this build has no CUDA backend (device cuda:%d requested)", device);
}
rn_status rn_cuda_join(int device) {
  return rn_error(RN_ERR_DEVICE, "this build has no CUDA backend (device cuda:%d requested)", device);
}
bool rn_cuda_forked(int device) {
  (void)device;
  return false;
}

const rn_backend *rn_cuda_backend(int index) {
  rn_error(RN_ERR_DEVICE, "this build has no CUDA backend (device cuda:%d requested)", index);
  return NULL;
}

#endif
