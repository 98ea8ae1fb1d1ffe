/* fuzz_jpeg.c - libFuzzer target for the JPEG decoder: the in-memory decode entry point (sniffing, the pixel
 * limit, the decoder and the channel conversion), with the format pinned to JPEG. The input's length picks
 * the channel option so the conversions are fuzzed too. Built by tests/fuzz/CMakeLists.txt with clang. */
#include <stddef.h>
#include <stdint.h>

#include "io/image_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int channels[3] = {0, 1, 3};
  rn_image_opts o = rn_image_opts_default();
  o.format = RN_IMAGE_JPEG;
  o.max_pixels = (int64_t)1 << 22; /* keeps each run fast; the limit logic itself is the same */
  o.channels = channels[size % 3];
  rn_image_raw img;
  if (rn_image_decode_raw(&img, data, size, &o, "fuzz") == RN_OK) rn_image_raw_free(&img);
  return 0;
}
