/* MobileNetV2, EfficientNet-B4 and SqueezeNet 1.1 stage outputs vs torchvision on the same deterministic
 * random weights (criterion in test_backbone_common.h), and torchvision's EfficientNet names loading through
 * the name mapping (to timm's, the engine's) to the same outputs. */
#include "test_backbone_common.h"

/* torchvision's EfficientNet-B4 names, in state_dict order, with the rule's tensors: same outputs. */
static void efficientnet_torchvision_names(rn_tensor *x) {
  char path[1024];
  snprintf(path, sizeof path, "%s/backbone/efficientnet_b4_tv_names.txt", FIXTURES_DIR);
  FILE *f = fopen(path, "r");
  if (!CHECK(f != NULL)) return;
  rn_backbone_opts o = rn_backbone_opts_default();
  o.seed = 99; /* different random weights: the load must replace all of them */
  rn_backbone *bb = NULL;
  CHECK_OK(rn_backbone_new(&bb, "efficientnet_b4", &o));
  rn_backbone *ref = NULL;
  o.seed = 7;
  CHECK_OK(rn_backbone_new(&ref, "efficientnet_b4", &o));
  char *names[1024];
  rn_tensor *ts[1024];
  int n = 0;
  char line[256];
  while (n < 1024 && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    if (!line[0]) continue;
    names[n] = strdup(line);
    /* the tail (head conv, classifier) lies beyond the backbone's canonical list: any tensor will do */
    ts[n] = n < ref->n_src ? canonical_param(ref, n) : NULL;
    if (!ts[n]) {
      int64_t one = 1;
      rn_tensor_zeros(&ts[n], 1, &one, RN_F32, rn_cpu());
    }
    n++;
  }
  fclose(f);
  CHECK(n == 610);
  rn_backbone_load_report rep;
  if (CHECK_OK(rn_backbone_load(bb, n, (const char *const *)names, ts, NULL, &rep))) {
    CHECK(rep.loaded == rn_backbone_param_count(bb));
    CHECK(rep.unmapped == 0);
    CHECK(rep.ignored == 1 + 4 + 2); /* features.8.0 (head conv), features.8.1 (its BN), classifier.1 */
    rn_backbone_report_free(&rep);
    compare_stages(bb, x, "torchvision-named");
  }
  for (int i = 0; i < n; i++) {
    free(names[i]);
    rn_tensor_release(ts[i]);
  }
  rn_backbone_free(bb);
  rn_backbone_free(ref);
}

int main(void) {
  rn_tensor *x = test_fixture("backbone/x.npy");
  if (!x) return test_finish("backbone_parity_mobile");
  const char *archs[] = {"mobilenetv2", "efficientnet_b4", "squeezenet1_1"};
  for (int a = 0; a < 3; a++) check_arch(archs[a], x);
  efficientnet_torchvision_names(x);
  rn_tensor_release(x);
  return test_finish("backbone_parity_mobile");
}
