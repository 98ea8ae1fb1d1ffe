/* PENDING: placeholder until this family is implemented; every function reports "not implemented yet". */
#include "internal.h"

rn_status rn_sdpa(rn_tensor **out, rn_tensor *q, rn_tensor *k, rn_tensor *v) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_sdpa: not implemented yet");
}

rn_status rn_spatial_attention(rn_tensor **out, rn_tensor *q, rn_tensor *k, rn_tensor *v, int heads) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_spatial_attention: not implemented yet");
}

