/* PENDING: placeholder until this family is implemented; every function reports "not implemented yet". */
#include "cpu_kernels.h"

rn_status rn_cpu_max_pool2d(rn_tensor *y, rn_tensor *argmax, const rn_tensor *x, const rn_pool_params *p) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_max_pool2d: not implemented yet");
}

rn_status rn_cpu_max_pool2d_backward(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *argmax) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_max_pool2d_backward: not implemented yet");
}

rn_status rn_cpu_avg_pool2d(rn_tensor *y, const rn_tensor *x, const rn_pool_params *p) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_avg_pool2d: not implemented yet");
}

rn_status rn_cpu_avg_pool2d_backward(rn_tensor *gx, const rn_tensor *gy, const rn_pool_params *p) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_avg_pool2d_backward: not implemented yet");
}

rn_status rn_cpu_adaptive_avg_pool2d(rn_tensor *y, const rn_tensor *x) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_adaptive_avg_pool2d: not implemented yet");
}

rn_status rn_cpu_adaptive_avg_pool2d_backward(rn_tensor *gx, const rn_tensor *gy) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_adaptive_avg_pool2d_backward: not implemented yet");
}

rn_status rn_cpu_upsample(rn_tensor *y, const rn_tensor *x, rn_upsample_mode mode, bool align_corners) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_upsample: not implemented yet");
}

rn_status rn_cpu_upsample_backward(rn_tensor *gx, const rn_tensor *gy, rn_upsample_mode mode, bool align_corners) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_upsample_backward: not implemented yet");
}

