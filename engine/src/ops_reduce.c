/* PENDING: placeholder until this family is implemented; every function reports "not implemented yet". */
#include "internal.h"

rn_status rn_reduce(rn_tensor **out, rn_reduce_op op, rn_tensor *x, int n_dims, const int *dims, bool keepdim) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_reduce: not implemented yet");
}

rn_status rn_max_dim(rn_tensor **values, rn_tensor **indices, rn_tensor *x, int dim, bool keepdim) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_max_dim: not implemented yet");
}

