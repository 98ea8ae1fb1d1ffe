/* PENDING: placeholder until this family is implemented; every function reports "not implemented yet". */
#include "internal.h"

rn_status rn_concat(rn_tensor **out, int n, rn_tensor *const *xs, int dim) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_concat: not implemented yet");
}

rn_status rn_index_select(rn_tensor **out, rn_tensor *x, int dim, rn_tensor *index) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_index_select: not implemented yet");
}

rn_status rn_gather(rn_tensor **out, rn_tensor *x, int dim, rn_tensor *index) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_gather: not implemented yet");
}

rn_status rn_topk(rn_tensor **values, rn_tensor **indices, rn_tensor *x, int k, int dim, bool largest) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_topk: not implemented yet");
}

