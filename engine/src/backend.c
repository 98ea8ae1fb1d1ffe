/* backend.c - which backend serves a device. Backends other than the CPU register here. */
#include "internal.h"

const rn_backend *rn_backend_for(rn_device dev) {
  switch (dev.type) {
    case RN_CPU: return rn_cpu_backend();
    case RN_CUDA:
      rn_error(RN_ERR_DEVICE, "this build has no CUDA backend (device cuda:%d requested)", dev.index);
      return NULL;
    default:
      rn_error(RN_ERR_DEVICE, "unknown device type %d", (int)dev.type);
      return NULL;
  }
}
