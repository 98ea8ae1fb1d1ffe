/* PENDING: placeholder until this family is implemented; every function reports "not implemented yet". */
#include "cpu_kernels.h"

rn_status rn_cpu_reduce(rn_reduce_op op, rn_tensor *y, const rn_tensor *x, const bool *reduce) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_reduce: not implemented yet");
}

rn_status rn_cpu_arg_reduce(bool is_max, rn_tensor *values, rn_tensor *indices, const rn_tensor *x, int dim) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_arg_reduce: not implemented yet");
}

rn_status rn_cpu_softmax(rn_tensor *y, const rn_tensor *x, int dim, bool log) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_softmax: not implemented yet");
}

rn_status rn_cpu_softmax_backward(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *y, int dim, bool log) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_softmax_backward: not implemented yet");
}

