/* PENDING: placeholder until this family is implemented; every function reports "not implemented yet". */
#include "internal.h"

rn_status rn_softmax(rn_tensor **out, rn_tensor *x, int dim) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_softmax: not implemented yet");
}

rn_status rn_log_softmax(rn_tensor **out, rn_tensor *x, int dim) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_log_softmax: not implemented yet");
}

rn_status rn_mse_loss(rn_tensor **out, rn_tensor *x, rn_tensor *target) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_mse_loss: not implemented yet");
}

rn_status rn_cross_entropy(rn_tensor **out, rn_tensor *logits, rn_tensor *target) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cross_entropy: not implemented yet");
}

rn_status rn_focal_loss(rn_tensor **out, rn_tensor *logits, rn_tensor *target, float gamma, rn_tensor *alpha) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_focal_loss: not implemented yet");
}

