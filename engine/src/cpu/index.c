/* PENDING: placeholder until this family is implemented; every function reports "not implemented yet". */
#include "cpu_kernels.h"

rn_status rn_cpu_index_select(rn_tensor *y, const rn_tensor *x, int dim, const rn_tensor *index) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_index_select: not implemented yet");
}

rn_status rn_cpu_index_add(rn_tensor *gx, int dim, const rn_tensor *index, const rn_tensor *gy) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_index_add: not implemented yet");
}

rn_status rn_cpu_gather(rn_tensor *y, const rn_tensor *x, int dim, const rn_tensor *index) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_gather: not implemented yet");
}

rn_status rn_cpu_scatter_add(rn_tensor *gx, int dim, const rn_tensor *index, const rn_tensor *gy) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_scatter_add: not implemented yet");
}

rn_status rn_cpu_topk(rn_tensor *values, rn_tensor *indices, const rn_tensor *x, int k, int dim, bool largest) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_topk: not implemented yet");
}

