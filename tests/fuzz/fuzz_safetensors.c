/* fuzz_safetensors.c - libFuzzer target for the safetensors header parser and tensor loading.
 * Any input must either parse (then every tensor loads or is refused with a status) or fail with a status;
 * never crash, hang or leak. */
#include <stddef.h>
#include <stdint.h>

#include "realnet/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rn_tensorset *s = NULL;
  if (rn_safetensors_parse(&s, data, size, "fuzz") != RN_OK) return 0;
  for (int i = 0; i < rn_tensorset_count(s); i++) {
    const char *name = rn_tensorset_name(s, i);
    rn_dtype dt;
    int ndim;
    int64_t shape[RN_MAX_DIMS];
    rn_tensorset_info(s, name, &dt, &ndim, shape);
    rn_tensor *t = NULL;
    if (rn_tensorset_load(&t, s, name) == RN_OK) rn_tensor_release(t);
  }
  for (int i = 0; i < rn_tensorset_metadata_count(s); i++)
    (void)rn_tensorset_metadata(s, rn_tensorset_metadata_key(s, i));
  rn_tensorset_close(s);
  return 0;
}
