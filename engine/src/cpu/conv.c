/* PENDING: placeholder until this family is implemented; every function reports "not implemented yet". */
#include "cpu_kernels.h"

rn_status rn_cpu_conv2d(rn_tensor *y, const rn_tensor *x, const rn_tensor *w, const rn_tensor *bias, const rn_conv_params *p) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_conv2d: not implemented yet");
}

rn_status rn_cpu_conv2d_backward_data(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *w, const rn_conv_params *p) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_conv2d_backward_data: not implemented yet");
}

rn_status rn_cpu_conv2d_backward_weight(rn_tensor *gw, const rn_tensor *gy, const rn_tensor *x, const rn_conv_params *p) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_conv2d_backward_weight: not implemented yet");
}

