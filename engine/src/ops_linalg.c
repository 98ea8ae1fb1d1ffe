/* PENDING: placeholder until this family is implemented; every function reports "not implemented yet". */
#include "internal.h"

rn_status rn_matmul(rn_tensor **out, rn_tensor *a, rn_tensor *b) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_matmul: not implemented yet");
}

rn_status rn_linear(rn_tensor **out, rn_tensor *x, rn_tensor *w, rn_tensor *bias) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_linear: not implemented yet");
}

