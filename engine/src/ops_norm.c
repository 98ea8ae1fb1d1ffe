/* PENDING: placeholder until this family is implemented; every function reports "not implemented yet". */
#include "internal.h"

rn_status rn_batch_norm(rn_tensor **out, rn_tensor *x, rn_tensor *weight, rn_tensor *bias, rn_tensor *running_mean, rn_tensor *running_var, bool training, float momentum, float eps) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_batch_norm: not implemented yet");
}

rn_status rn_group_norm(rn_tensor **out, rn_tensor *x, int groups, rn_tensor *weight, rn_tensor *bias, float eps) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_group_norm: not implemented yet");
}

