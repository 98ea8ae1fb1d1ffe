/* bb_squeeze.c - SqueezeNet 1.1 (torchvision layout) as a classifier for checks, and the translator from
 * the Gluon / ONNX names "squeezenet0_conv<i>_{weight,bias}" (conv0 the stem, three per fire module in the
 * order squeeze, expand1x1, expand3x3, conv25 the classifier). */
#include "bb_internal.h"

static const int FIRE_IDX[8] = {3, 4, 6, 7, 9, 10, 11, 12};
static const int FIRE_CFG[8][3] = {{16, 64, 64},   {16, 64, 64},   {32, 128, 128}, {32, 128, 128},
                                   {48, 192, 192}, {48, 192, 192}, {64, 256, 256}, {64, 256, 256}};
static const char *const FIRE_PART[3] = {"squeeze", "expand1x1", "expand3x3"};

static int fire(rn_backbone *bb, int x, int idx, int cin, const int *cfg) {
  char n[BB_NAME];
  int us = bb_decl_conv(bb, bb_fmt(n, "features.%d.squeeze", idx), cfg[0], cin, 1, NULL, true);
  int u1 = bb_decl_conv(bb, bb_fmt(n, "features.%d.expand1x1", idx), cfg[1], cfg[0], 1, NULL, true);
  int u3 = bb_decl_conv(bb, bb_fmt(n, "features.%d.expand3x3", idx), cfg[2], cfg[0], 3, NULL, true);
  int s = bb_conv(bb, x, us, 1, 0, 1, ACT_RELU, -1);
  int a = bb_conv(bb, s, u1, 1, 0, 1, ACT_RELU, -1);
  int b = bb_conv(bb, s, u3, 1, 1, 1, ACT_RELU, -1);
  return bb_concat(bb, a, b);
}

static rn_status translate_squeeze(const rn_backbone *bb, int n, const char *const *names, char **canon) {
  for (int i = 0; i < n; i++) {
    const char *s = names[i];
    if (strncmp(s, "squeezenet", 10)) {
      if (!(canon[i] = strdup(s))) return rn_error(RN_ERR_OOM, "backbone %s: out of memory", bb->arch);
      continue;
    }
    canon[i] = NULL;
    s += 10;
    while (*s >= '0' && *s <= '9') s++;
    int k, len = 0;
    char kind[8], out[BB_NAME];
    if (sscanf(s, "_conv%d_%7s%n", &k, kind, &len) != 2 || s[len] || (strcmp(kind, "weight") && strcmp(kind, "bias")))
      continue;
    if (k == 0) canon[i] = strdup(bb_fmt(out, "features.0.%s", kind));
    else if (k == 25) canon[i] = strdup(bb_fmt(out, "classifier.1.%s", kind));
    else if (k > 0 && k < 25)
      canon[i] = strdup(bb_fmt(out, "features.%d.%s.%s", FIRE_IDX[(k - 1) / 3], FIRE_PART[(k - 1) % 3], kind));
  }
  return RN_OK;
}

void bb_build_squeezenet(rn_backbone *bb) {
  bb->translate = translate_squeeze;
  int u = bb_decl_conv(bb, "features.0", 64, 3, 3, NULL, true);
  int x = bb_conv(bb, 0, u, 2, 0, 1, ACT_RELU, -1);
  int cin = 64;
  for (int f = 0; f < 8; f++) {
    if (f == 0 || f == 2 || f == 4) x = bb_maxpool(bb, x, 3, 2, 0, true);
    x = fire(bb, x, FIRE_IDX[f], cin, FIRE_CFG[f]);
    cin = FIRE_CFG[f][1] + FIRE_CFG[f][2];
    if (f == 1) bb_mark_stage(bb, "layer1", x, 4);
    if (f == 3) bb_mark_stage(bb, "layer2", x, 8);
    if (f == 7) bb_mark_stage(bb, "layer3", x, 16);
  }
  u = bb_decl_conv(bb, "classifier.1", 1000, 512, 1, NULL, true);
  x = bb_conv(bb, x, u, 1, 0, 1, ACT_RELU, -1);
  x = bb_flatten(bb, bb_gap(bb, x));
  bb_mark_stage(bb, "logits", x, 0);
}
