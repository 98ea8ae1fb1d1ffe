/* PENDING: placeholder until this family is implemented; every function reports "not implemented yet". */
#include "internal.h"

rn_status rn_conv2d(rn_tensor **out, rn_tensor *x, rn_tensor *w, rn_tensor *bias, const rn_conv_params *p) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_conv2d: not implemented yet");
}

rn_status rn_conv_transpose2d(rn_tensor **out, rn_tensor *x, rn_tensor *w, rn_tensor *bias, const rn_conv_params *p) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_conv_transpose2d: not implemented yet");
}

rn_conv_params rn_conv_params_default(void) {
  rn_conv_params p = {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}};
  return p;
}
