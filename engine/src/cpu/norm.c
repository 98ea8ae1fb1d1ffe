/* PENDING: placeholder until this family is implemented; every function reports "not implemented yet". */
#include "cpu_kernels.h"

rn_status rn_cpu_batch_norm_stats(rn_tensor *mean, rn_tensor *var, const rn_tensor *x) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_batch_norm_stats: not implemented yet");
}

rn_status rn_cpu_batch_norm_apply(rn_tensor *y, const rn_tensor *x, const rn_tensor *mean, const rn_tensor *invstd, const rn_tensor *w, const rn_tensor *b) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_batch_norm_apply: not implemented yet");
}

rn_status rn_cpu_batch_norm_backward(rn_tensor *gx, rn_tensor *gw, rn_tensor *gb, const rn_tensor *gy, const rn_tensor *x, const rn_tensor *mean, const rn_tensor *invstd, const rn_tensor *w, bool training) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_batch_norm_backward: not implemented yet");
}

rn_status rn_cpu_group_norm(rn_tensor *y, rn_tensor *mean, rn_tensor *rstd, const rn_tensor *x, int groups, const rn_tensor *w, const rn_tensor *b, float eps) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_group_norm: not implemented yet");
}

rn_status rn_cpu_group_norm_backward(rn_tensor *gx, rn_tensor *gw, rn_tensor *gb, const rn_tensor *gy, const rn_tensor *x, const rn_tensor *mean, const rn_tensor *rstd, int groups, const rn_tensor *w) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_group_norm_backward: not implemented yet");
}

