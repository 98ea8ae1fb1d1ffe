/* fuzz_npy.c - libFuzzer target for the .npy parser (rn_npy_parse over an in-memory image). */
#include <stddef.h>
#include <stdint.h>

#include "realnet/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rn_tensor *t = NULL;
  if (rn_npy_parse(&t, data, size, "fuzz") == RN_OK) rn_tensor_release(t);
  return 0;
}
