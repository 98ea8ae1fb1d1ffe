/* PENDING: placeholder until this family is implemented; every function reports "not implemented yet". */
#include "internal.h"

rn_status rn_max_pool2d(rn_tensor **out, rn_tensor *x, const rn_pool_params *p) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_max_pool2d: not implemented yet");
}

rn_status rn_avg_pool2d(rn_tensor **out, rn_tensor *x, const rn_pool_params *p) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_avg_pool2d: not implemented yet");
}

rn_status rn_adaptive_avg_pool2d(rn_tensor **out, rn_tensor *x, int out_h, int out_w) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_adaptive_avg_pool2d: not implemented yet");
}

rn_status rn_global_avg_pool(rn_tensor **out, rn_tensor *x) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_global_avg_pool: not implemented yet");
}

rn_status rn_global_max_pool(rn_tensor **out, rn_tensor *x) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_global_max_pool: not implemented yet");
}

rn_status rn_upsample(rn_tensor **out, rn_tensor *x, int out_h, int out_w, rn_upsample_mode mode, bool align_corners) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_upsample: not implemented yet");
}

