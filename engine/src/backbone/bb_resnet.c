/* bb_resnet.c - ResNet-18/34/50, Wide ResNet-50-2 (torchvision layout, stride on the 3x3 conv) and the
 * pre-activation ResNet-50 v2 of MXNet Gluon (the ONNX model zoo's resnet50-v2-7), with the translator from
 * Gluon's "resnetv24_stage<S>_conv<K>_weight" names to the engine's torchvision-style names. */
#include "bb_internal.h"

static const int BLOCKS_18[4] = {2, 2, 2, 2}, BLOCKS_34_50[4] = {3, 4, 6, 3};
static const char *const IGNORE_V1[] = {"fc.", NULL};
static const char *const IGNORE_V2[] = {"fc.", "post_bn.", NULL};

/* torchvision BasicBlock: conv3x3(stride)-bn-relu-conv3x3-bn, + identity or 1x1 downsample, relu. */
static int basic_block(rn_backbone *bb, int x, const char *pre, int cin, int planes, int stride) {
  char n1[BB_NAME], n2[BB_NAME], n3[BB_NAME], n4[BB_NAME];
  int u1 = bb_decl_conv(bb, bb_fmt(n1, "%s.conv1", pre), planes, cin, 3, bb_fmt(n2, "%s.bn1", pre), false);
  int u2 = bb_decl_conv(bb, bb_fmt(n1, "%s.conv2", pre), planes, planes, 3, bb_fmt(n2, "%s.bn2", pre), false);
  int ud = -1;
  if (stride != 1 || cin != planes)
    ud = bb_decl_conv(bb, bb_fmt(n3, "%s.downsample.0", pre), planes, cin, 1, bb_fmt(n4, "%s.downsample.1", pre), false);
  int c1 = bb_conv(bb, x, u1, stride, 1, 1, ACT_RELU, -1);
  int res = ud >= 0 ? bb_conv(bb, x, ud, stride, 0, 1, ACT_NONE, -1) : x;
  return bb_conv(bb, c1, u2, 1, 1, 1, ACT_RELU, res);
}

/* torchvision Bottleneck (v1.5): 1x1-bn-relu, 3x3(stride)-bn-relu, 1x1-bn, + shortcut, relu. */
static int bottleneck(rn_backbone *bb, int x, const char *pre, int cin, int width, int cout, int stride) {
  char n1[BB_NAME], n2[BB_NAME];
  int u1 = bb_decl_conv(bb, bb_fmt(n1, "%s.conv1", pre), width, cin, 1, bb_fmt(n2, "%s.bn1", pre), false);
  int u2 = bb_decl_conv(bb, bb_fmt(n1, "%s.conv2", pre), width, width, 3, bb_fmt(n2, "%s.bn2", pre), false);
  int u3 = bb_decl_conv(bb, bb_fmt(n1, "%s.conv3", pre), cout, width, 1, bb_fmt(n2, "%s.bn3", pre), false);
  int ud = -1;
  if (stride != 1 || cin != cout)
    ud = bb_decl_conv(bb, bb_fmt(n1, "%s.downsample.0", pre), cout, cin, 1, bb_fmt(n2, "%s.downsample.1", pre), false);
  int c1 = bb_conv(bb, x, u1, 1, 0, 1, ACT_RELU, -1);
  int c2 = bb_conv(bb, c1, u2, stride, 1, 1, ACT_RELU, -1);
  int res = ud >= 0 ? bb_conv(bb, x, ud, stride, 0, 1, ACT_NONE, -1) : x;
  return bb_conv(bb, c2, u3, 1, 0, 1, ACT_RELU, res);
}

void bb_build_resnet(rn_backbone *bb, int depth, int width_mult) {
  bb->ignore = IGNORE_V1;
  const int *blocks = depth == 18 ? BLOCKS_18 : BLOCKS_34_50;
  bool bottle = depth >= 50;
  int stem = bb_decl_conv(bb, "conv1", 64, 3, 7, "bn1", false);
  int x = bb_conv(bb, 0, stem, 2, 3, 1, ACT_RELU, -1);
  x = bb_maxpool(bb, x, 3, 2, 1, false);
  int cin = 64;
  for (int s = 0; s < 4; s++) {
    int planes = 64 << s, cout = bottle ? planes * 4 : planes;
    for (int b = 0; b < blocks[s]; b++) {
      char pre[BB_NAME];
      bb_fmt(pre, "layer%d.%d", s + 1, b);
      int stride = (b == 0 && s > 0) ? 2 : 1;
      x = bottle ? bottleneck(bb, x, pre, cin, planes * width_mult, cout, stride) : basic_block(bb, x, pre, cin, planes, stride);
      cin = cout;
    }
    char name[24];
    snprintf(name, sizeof name, "layer%d", s + 1);
    bb_mark_stage(bb, name, x, 4 << s);
  }
}

/* ------------------------------------------------------------------ ResNet-50 v2 (pre-activation) */

/* Gluon BottleneckV2: bn1-relu (pre-activation), [1x1 downsample(stride) of the pre-activated input],
 * 1x1-bn2-relu, 3x3(stride)-bn3-relu, 1x1; output = conv3 + shortcut (no activation). */
static int bottleneck_v2(rn_backbone *bb, int x, const char *pre, int cin, int cout, int stride, bool down) {
  char n1[BB_NAME], n2[BB_NAME];
  int width = cout / 4;
  int ua = bb_decl_affine(bb, bb_fmt(n1, "%s.bn1", pre), cin);
  int u1 = bb_decl_conv(bb, bb_fmt(n1, "%s.conv1", pre), width, cin, 1, bb_fmt(n2, "%s.bn2", pre), false);
  int u2 = bb_decl_conv(bb, bb_fmt(n1, "%s.conv2", pre), width, width, 3, bb_fmt(n2, "%s.bn3", pre), false);
  int u3 = bb_decl_conv(bb, bb_fmt(n1, "%s.conv3", pre), cout, width, 1, NULL, false);
  int ud = down ? bb_decl_conv(bb, bb_fmt(n1, "%s.downsample", pre), cout, cin, 1, NULL, false) : -1;
  int a = bb_affine(bb, x, ua, ACT_RELU);
  int res = down ? bb_conv(bb, a, ud, stride, 0, 1, ACT_NONE, -1) : x;
  int c1 = bb_conv(bb, a, u1, 1, 0, 1, ACT_RELU, -1);
  int c2 = bb_conv(bb, c1, u2, stride, 1, 1, ACT_RELU, -1);
  return bb_conv(bb, c2, u3, 1, 0, 1, ACT_NONE, res);
}

/* "resnetv24_stage2_conv5_weight" -> "layer2.1.conv2.weight" (unit 0 has convs 0-2 and the shortcut 3,
 * later units 3 each; batch norms 3 per unit); stem and head names likewise. */
static char *gluon_v2_name(const rn_backbone *bb, const char *src) {
  const char *p = src;
  if (strncmp(p, "resnetv2", 8)) return NULL;
  p += 8;
  while (*p >= '0' && *p <= '9') p++;
  if (*p++ != '_') return NULL;
  static const char *const bn_in[4] = {"gamma", "beta", "running_mean", "running_var"};
  static const char *const bn_out[4] = {"weight", "bias", "running_mean", "running_var"};
  char out[BB_NAME], kind[32];
  int s = -1, k = -1, len = 0;
  if (sscanf(p, "stage%d_conv%d_%31s%n", &s, &k, kind, &len) == 3 && !p[len] && !strcmp(kind, "weight")) {
    if (s < 1 || s > 4 || k < 0) return NULL;
    int unit = k < 4 ? 0 : 1 + (k - 4) / 3, role = k < 4 ? k : (k - 4) % 3;
    if (unit >= bb->aux[s - 1]) return NULL;
    if (role == 3) bb_fmt(out, "layer%d.0.downsample.weight", s);
    else bb_fmt(out, "layer%d.%d.conv%d.weight", s, unit, role + 1);
    return strdup(out);
  }
  if (sscanf(p, "stage%d_batchnorm%d_%31s%n", &s, &k, kind, &len) == 3 && !p[len]) {
    if (s < 1 || s > 4 || k < 0 || k / 3 >= bb->aux[s - 1]) return NULL;
    for (int i = 0; i < 4; i++)
      if (!strcmp(kind, bn_in[i])) return strdup(bb_fmt(out, "layer%d.%d.bn%d.%s", s, k / 3, k % 3 + 1, bn_out[i]));
    return NULL;
  }
  if (!strcmp(p, "conv0_weight")) return strdup("conv1.weight");
  if (sscanf(p, "batchnorm%d_%31s%n", &k, kind, &len) == 2 && !p[len] && k >= 0 && k <= 2) {
    static const char *const stem[3] = {"bn0", "bn1", "post_bn"};
    for (int i = 0; i < 4; i++)
      if (!strcmp(kind, bn_in[i])) return strdup(bb_fmt(out, "%s.%s", stem[k], bn_out[i]));
    return NULL;
  }
  if (!strcmp(p, "dense0_weight")) return strdup("fc.weight");
  if (!strcmp(p, "dense0_bias")) return strdup("fc.bias");
  return NULL;
}

static rn_status translate_v2(const rn_backbone *bb, int n, const char *const *names, char **canon) {
  for (int i = 0; i < n; i++) {
    if (!strncmp(names[i], "resnetv2", 8)) {
      canon[i] = gluon_v2_name(bb, names[i]); /* NULL: no rule */
    } else if (!(canon[i] = strdup(names[i]))) {
      return rn_error(RN_ERR_OOM, "backbone %s: out of memory", bb->arch);
    }
  }
  return RN_OK;
}

void bb_build_resnet_v2(rn_backbone *bb) {
  bb->ignore = IGNORE_V2;
  bb->translate = translate_v2;
  memcpy(bb->aux, BLOCKS_34_50, sizeof BLOCKS_34_50);
  int u0 = bb_decl_affine(bb, "bn0", 3); /* input norm, no activation (not foldable: conv0 pads with zeros) */
  int stem = bb_decl_conv(bb, "conv1", 64, 3, 7, "bn1", false);
  int x = bb_affine(bb, 0, u0, ACT_NONE);
  x = bb_conv(bb, x, stem, 2, 3, 1, ACT_RELU, -1);
  x = bb_maxpool(bb, x, 3, 2, 1, false);
  int cin = 64;
  for (int s = 0; s < 4; s++) {
    int cout = 256 << s;
    for (int b = 0; b < BLOCKS_34_50[s]; b++) {
      char pre[BB_NAME];
      bb_fmt(pre, "layer%d.%d", s + 1, b);
      x = bottleneck_v2(bb, x, pre, cin, cout, (b == 0 && s > 0) ? 2 : 1, b == 0);
      cin = cout;
    }
    char name[24];
    snprintf(name, sizeof name, "layer%d", s + 1);
    bb_mark_stage(bb, name, x, 4 << s);
  }
}
