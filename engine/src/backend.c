/* backend.c - which backend serves a device. Backends other than the CPU register here. */
#include "internal.h"

/* The CUDA backend (engine/src/cuda, built with REALNET_CUDA). Weak, so a program that links the engine archive by
 * hand without the CUDA libraries (the fuzz targets) still links: CMake consumers of realnet_engine get
 * -Wl,--undefined=rn_cuda_backend, which pulls the backend in; elsewhere the address is NULL. */
extern const rn_backend *rn_cuda_backend(int index) __attribute__((weak));

const rn_backend *rn_backend_for(rn_device dev) {
  switch (dev.type) {
    case RN_CPU: return rn_cpu_backend();
    case RN_CUDA:
      if (rn_cuda_backend) return rn_cuda_backend(dev.index); /* an error naming the reason when no device */
      rn_error(RN_ERR_DEVICE, "this build has no CUDA backend (device cuda:%d requested)", dev.index);
      return NULL;
    default:
      rn_error(RN_ERR_DEVICE, "unknown device type %d", (int)dev.type);
      return NULL;
  }
}
