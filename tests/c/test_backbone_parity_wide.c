/* Wide ResNet-50-2 stage outputs vs torchvision on the same deterministic random weights (criterion in
 * test_backbone_common.h); its own test because drawing 69 M random weights takes a few seconds. */
#include "test_backbone_common.h"

int main(void) {
  rn_tensor *x = test_fixture("backbone/x.npy");
  if (!x) return test_finish("backbone_parity_wide");
  check_arch("wide_resnet50_2", x);
  rn_tensor_release(x);
  return test_finish("backbone_parity_wide");
}
