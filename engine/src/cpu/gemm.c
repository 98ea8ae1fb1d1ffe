/* PENDING: placeholder until this family is implemented; every function reports "not implemented yet". */
#include "cpu_kernels.h"

rn_status rn_cpu_gemm(rn_tensor *y, const rn_tensor *a, const rn_tensor *b, bool trans_a, bool trans_b, float alpha, float beta) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_cpu_gemm: not implemented yet");
}

