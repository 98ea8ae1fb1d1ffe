/* PENDING: placeholder until this family is implemented; every function reports "not implemented yet". */
#include "internal.h"

rn_status rn_npy_read(rn_tensor **out, const char *path) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_npy_read: not implemented yet");
}

rn_status rn_npy_parse(rn_tensor **out, const void *bytes, size_t n, const char *what) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_npy_parse: not implemented yet");
}

rn_status rn_npy_write(const char *path, const rn_tensor *t) {
  return rn_error(RN_ERR_UNSUPPORTED, "rn_npy_write: not implemented yet");
}

