/* ResNet-18/34/50 and ResNet-50 v2 stage outputs vs PyTorch/torchvision on the same deterministic random
 * weights (criterion in test_backbone_common.h), and engine-named weights loading back unchanged. */
#include "test_backbone_common.h"

/* Engine names exported from one backbone load into another (what `realnet import` writes). */
static void engine_roundtrip(rn_tensor *x) {
  rn_backbone_opts o = rn_backbone_opts_default();
  o.seed = 7;
  rn_backbone *a = NULL, *b = NULL;
  CHECK_OK(rn_backbone_new(&a, "resnet50v2", &o));
  o.seed = 3;
  CHECK_OK(rn_backbone_new(&b, "resnet50v2", &o));
  int n = rn_backbone_param_count(a);
  const char **names = calloc((size_t)n, sizeof *names);
  rn_tensor **ts = calloc((size_t)n, sizeof *ts);
  for (int i = 0; i < n; i++) names[i] = rn_backbone_param_name(a, i), ts[i] = rn_backbone_get_param(a, i);
  rn_backbone_load_report rep;
  if (CHECK_OK(rn_backbone_load(b, n, names, ts, NULL, &rep))) {
    CHECK(rep.loaded == n && rep.ignored == 0 && rep.stages_ready == 4);
    CHECK(rn_backbone_get_param(b, 0) == ts[0]); /* nothing to fold: retained, not copied */
    rn_backbone_report_free(&rep);
    compare_stages(b, x, "engine-named");
  }
  free(names);
  free(ts);
  rn_backbone_free(a);
  rn_backbone_free(b);
}

int main(void) {
  rn_tensor *x = test_fixture("backbone/x.npy");
  if (!x) return test_finish("backbone_parity");
  const char *archs[] = {"resnet18", "resnet34", "resnet50", "resnet50v2"};
  for (int a = 0; a < 4; a++) check_arch(archs[a], x);
  engine_roundtrip(x);
  rn_tensor_release(x);
  return test_finish("backbone_parity");
}
