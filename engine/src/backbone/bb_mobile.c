/* bb_mobile.c - MobileNetV2 (torchvision layout, ReLU6) and EfficientNet-B4 (timm layout, SiLU, squeeze-and-
 * excitation), with translators from the other namings: the ONNX model zoo's BN-folded "conv_<id>_*"
 * (convs in network order) and timm's MobileNetV2 names; torchvision's EfficientNet names. */
#include "bb_internal.h"

static rn_status translate_mnv2(const rn_backbone *bb, int n, const char *const *names, char **canon);
static rn_status translate_eff(const rn_backbone *bb, int n, const char *const *names, char **canon);

/* ------------------------------------------------------------------ MobileNetV2 */

static const int MNV2_CFG[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                   {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
static const char *const IGNORE_MNV2[] = {"features.18.", "classifier.", NULL};

void bb_build_mobilenetv2(rn_backbone *bb) {
  bb->ignore = IGNORE_MNV2;
  bb->translate = translate_mnv2;
  char n1[BB_NAME], n2[BB_NAME];
  int u = bb_decl_conv(bb, "features.0.0", 32, 3, 3, "features.0.1", false);
  int x = bb_conv(bb, 0, u, 2, 1, 1, ACT_RELU6, -1);
  int cin = 32, idx = 1, red = 2, stage_after[4] = {3, 6, 13, 17}, ns = 0;
  for (int g = 0; g < 7; g++) {
    int t = MNV2_CFG[g][0], c = MNV2_CFG[g][1];
    for (int i = 0; i < MNV2_CFG[g][2]; i++, idx++) {
      int s = i == 0 ? MNV2_CFG[g][3] : 1, hid = cin * t, in = x;
      red *= s;
      if (t != 1) {
        u = bb_decl_conv(bb, bb_fmt(n1, "features.%d.conv.0.0", idx), hid, cin, 1, bb_fmt(n2, "features.%d.conv.0.1", idx), false);
        x = bb_conv(bb, x, u, 1, 0, 1, ACT_RELU6, -1);
      }
      int d = t != 1;
      u = bb_decl_conv(bb, bb_fmt(n1, d ? "features.%d.conv.1.0" : "features.%d.conv.0.0", idx), hid, 1, 3,
                       bb_fmt(n2, d ? "features.%d.conv.1.1" : "features.%d.conv.0.1", idx), false);
      x = bb_conv(bb, x, u, s, 1, hid, ACT_RELU6, -1);
      u = bb_decl_conv(bb, bb_fmt(n1, "features.%d.conv.%d", idx, 1 + d), c, hid, 1,
                       bb_fmt(n2, "features.%d.conv.%d", idx, 2 + d), false);
      x = bb_conv(bb, x, u, 1, 0, 1, ACT_NONE, (s == 1 && cin == c) ? in : -1);
      cin = c;
      if (ns < 4 && idx == stage_after[ns]) {
        char name[24];
        snprintf(name, sizeof name, "layer%d", ns + 1);
        bb_mark_stage(bb, name, x, red);
        ns++;
      }
    }
  }
}

/* The ONNX export numbers its convs in network order with gaps ("conv_0", "conv_2", "conv_4", "conv_5"...):
 * the k-th smallest id is the k-th conv, and one more (the 1280-channel last conv) may follow. */
static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

static bool onnx_conv_id(const char *s, long *id, bool *is_bias) {
  int len = 0;
  char kind[8];
  if (sscanf(s, "conv_%ld_%7s%n", id, kind, &len) != 2 || s[len]) return false;
  *is_bias = !strcmp(kind, "bias");
  return *is_bias || !strcmp(kind, "weight");
}

/* timm "blocks.<s>.<j>.<part>" -> torchvision "features.<idx>.conv..." for MobileNetV2. */
static char *timm_mnv2_name(const char *src) {
  char out[BB_NAME], part[48];
  int s, j, len = 0;
  if (!strncmp(src, "conv_stem.", 10)) return strdup(bb_fmt(out, "features.0.0.%s", src + 10));
  if (!strncmp(src, "bn1.", 4)) return strdup(bb_fmt(out, "features.0.1.%s", src + 4));
  if (!strncmp(src, "conv_head.", 10)) return strdup(bb_fmt(out, "features.18.0.%s", src + 10));
  if (!strncmp(src, "bn2.", 4)) return strdup(bb_fmt(out, "features.18.1.%s", src + 4));
  if (!strncmp(src, "classifier.", 11)) return strdup(bb_fmt(out, "classifier.1.%s", src + 11));
  if (sscanf(src, "blocks.%d.%d.%47s%n", &s, &j, part, &len) != 3 || src[len] || s < 0 || s > 6 || j < 0 ||
      j >= MNV2_CFG[s][2])
    return NULL;
  int idx = 1 + j;
  for (int g = 0; g < s; g++) idx += MNV2_CFG[g][2];
  static const char *const ds[][2] = {{"conv_dw.", "conv.0.0."}, {"bn1.", "conv.0.1."}, {"conv_pw.", "conv.1."},
                                      {"bn2.", "conv.2."}};
  static const char *const ir[][2] = {{"conv_pw.", "conv.0.0."}, {"bn1.", "conv.0.1."}, {"conv_dw.", "conv.1.0."},
                                      {"bn2.", "conv.1.1."},     {"conv_pwl.", "conv.2."}, {"bn3.", "conv.3."}};
  const char *const (*map)[2] = s == 0 ? ds : ir;
  int nmap = s == 0 ? 4 : 6;
  for (int i = 0; i < nmap; i++) {
    size_t l = strlen(map[i][0]);
    if (!strncmp(part, map[i][0], l)) return strdup(bb_fmt(out, "features.%d.%s%s", idx, map[i][1], part + l));
  }
  return NULL;
}

static rn_status translate_mnv2(const rn_backbone *bb, int n, const char *const *names, char **canon) {
  long *ids = malloc(sizeof *ids * (size_t)(n + 1));
  if (!ids) return rn_error(RN_ERR_OOM, "backbone %s: out of memory", bb->arch);
  int nid = 0;
  for (int i = 0; i < n; i++) {
    long id;
    bool b;
    if (onnx_conv_id(names[i], &id, &b) && !b) ids[nid++] = id;
  }
  qsort(ids, (size_t)nid, sizeof *ids, cmp_long);
  rn_status st = RN_OK;
  for (int i = 0; i < n && st == RN_OK; i++) {
    const char *s = names[i];
    long id;
    bool is_bias;
    char out[BB_NAME];
    if (onnx_conv_id(s, &id, &is_bias)) {
      long *hit = bsearch(&id, ids, (size_t)nid, sizeof *ids, cmp_long);
      int k = hit ? (int)(hit - ids) : -1;
      const char *prefix = k >= 0 && k < bb->n_unit ? bb->unit[k].prefix : k == bb->n_unit ? "features.18.0" : NULL;
      canon[i] = prefix ? strdup(bb_fmt(out, "%s.%s", prefix, is_bias ? "bias" : "weight")) : NULL;
    } else if (!strncmp(s, "gemm_", 5)) {
      const char *kind = strrchr(s, '_');
      canon[i] = strdup(bb_fmt(out, "classifier.1.%s", kind + 1));
    } else if (!strncmp(s, "blocks.", 7) || !strncmp(s, "conv_stem.", 10) || !strncmp(s, "conv_head.", 10) ||
               !strncmp(s, "bn1.", 4) || !strncmp(s, "bn2.", 4) || (!strncmp(s, "classifier.", 11) && strncmp(s, "classifier.1.", 13))) {
      canon[i] = timm_mnv2_name(s);
    } else if (!(canon[i] = strdup(s))) {
      st = rn_error(RN_ERR_OOM, "backbone %s: out of memory", bb->arch);
    }
  }
  free(ids);
  return st;
}

/* ------------------------------------------------------------------ EfficientNet-B4 */

/* Base EfficientNet stages (expand, kernel, stride, channels, repeats) scaled by width 1.4 (channels
 * rounded to multiples of 8) and depth 1.8 (repeats rounded up), as both timm and torchvision do. */
static const int EFF_CFG[7][5] = {{1, 3, 1, 24, 2}, {6, 3, 2, 32, 4}, {6, 5, 2, 56, 4}, {6, 3, 2, 112, 6},
                                  {6, 5, 1, 160, 6}, {6, 5, 2, 272, 8}, {6, 3, 1, 448, 2}};
static const char *const IGNORE_EFF[] = {"conv_head.", "bn2.", "classifier.", NULL};

/* Squeeze-and-excitation on x (c channels) with rd = block input channels / 4. */
static int squeeze_excite(rn_backbone *bb, int x, const char *pre, int c, int rd) {
  char n1[BB_NAME];
  int ur = bb_decl_conv(bb, bb_fmt(n1, "%s.se.conv_reduce", pre), rd, c, 1, NULL, true);
  int ue = bb_decl_conv(bb, bb_fmt(n1, "%s.se.conv_expand", pre), c, rd, 1, NULL, true);
  int g = bb_gap(bb, x);
  g = bb_conv(bb, g, ur, 1, 0, 1, ACT_SILU, -1);
  g = bb_conv(bb, g, ue, 1, 0, 1, ACT_SIGMOID, -1);
  return bb_mul(bb, x, g);
}

void bb_build_efficientnet_b4(rn_backbone *bb) {
  bb->ignore = IGNORE_EFF;
  bb->translate = translate_eff;
  char n1[BB_NAME], n2[BB_NAME];
  int u = bb_decl_conv(bb, "conv_stem", 48, 3, 3, "bn1", false);
  int x = bb_conv(bb, 0, u, 2, 1, 1, ACT_SILU, -1);
  int cin = 48, red = 2, ns = 0;
  for (int s = 0; s < 7; s++) {
    int e = EFF_CFG[s][0], k = EFF_CFG[s][1], c = EFF_CFG[s][3];
    for (int j = 0; j < EFF_CFG[s][4]; j++) {
      int st = j == 0 ? EFF_CFG[s][2] : 1, in = x, mid = cin * e;
      red *= st;
      char pre[BB_NAME];
      bb_fmt(pre, "blocks.%d.%d", s, j);
      if (e == 1) { /* depthwise-separable: dw-bn1-silu, se, pw-bn2 */
        u = bb_decl_conv(bb, bb_fmt(n1, "%s.conv_dw", pre), cin, 1, k, bb_fmt(n2, "%s.bn1", pre), false);
        x = bb_conv(bb, x, u, st, k / 2, cin, ACT_SILU, -1);
        x = squeeze_excite(bb, x, pre, cin, cin / 4);
        u = bb_decl_conv(bb, bb_fmt(n1, "%s.conv_pw", pre), c, cin, 1, bb_fmt(n2, "%s.bn2", pre), false);
      } else { /* inverted residual: pw-bn1-silu, dw-bn2-silu, se, pwl-bn3 */
        u = bb_decl_conv(bb, bb_fmt(n1, "%s.conv_pw", pre), mid, cin, 1, bb_fmt(n2, "%s.bn1", pre), false);
        x = bb_conv(bb, x, u, 1, 0, 1, ACT_SILU, -1);
        u = bb_decl_conv(bb, bb_fmt(n1, "%s.conv_dw", pre), mid, 1, k, bb_fmt(n2, "%s.bn2", pre), false);
        x = bb_conv(bb, x, u, st, k / 2, mid, ACT_SILU, -1);
        x = squeeze_excite(bb, x, pre, mid, cin / 4);
        u = bb_decl_conv(bb, bb_fmt(n1, "%s.conv_pwl", pre), c, mid, 1, bb_fmt(n2, "%s.bn3", pre), false);
      }
      x = bb_conv(bb, x, u, 1, 0, 1, ACT_NONE, (st == 1 && cin == c) ? in : -1);
      cin = c;
    }
    if (s == 1 || s == 2 || s == 4 || s == 6) {
      char name[24];
      snprintf(name, sizeof name, "layer%d", ++ns);
      bb_mark_stage(bb, name, x, red);
    }
  }
}

/* torchvision "features.<s>.<j>.block.<b>.<...>" -> timm "blocks.<s-1>.<j>.<part>". */
static char *tv_eff_name(const char *src) {
  char out[BB_NAME], rest[48];
  int s, j, b, len = 0;
  if (!strncmp(src, "features.0.0.", 13)) return strdup(bb_fmt(out, "conv_stem.%s", src + 13));
  if (!strncmp(src, "features.0.1.", 13)) return strdup(bb_fmt(out, "bn1.%s", src + 13));
  if (!strncmp(src, "features.8.0.", 13)) return strdup(bb_fmt(out, "conv_head.%s", src + 13));
  if (!strncmp(src, "features.8.1.", 13)) return strdup(bb_fmt(out, "bn2.%s", src + 13));
  if (!strncmp(src, "classifier.1.", 13)) return strdup(bb_fmt(out, "classifier.%s", src + 13));
  if (sscanf(src, "features.%d.%d.block.%d.%47s%n", &s, &j, &b, rest, &len) != 4 || src[len] || s < 1 || s > 7 ||
      j < 0 || j >= EFF_CFG[s - 1][4])
    return NULL;
  /* per block position: conv-bn pairs and the SE module, for depthwise-separable (stage 1) and IR blocks */
  static const char *const ds[3][2] = {{"conv_dw", "bn1"}, {NULL, NULL}, {"conv_pw", "bn2"}};
  static const char *const ir[4][2] = {{"conv_pw", "bn1"}, {"conv_dw", "bn2"}, {NULL, NULL}, {"conv_pwl", "bn3"}};
  const char *const (*map)[2] = s == 1 ? ds : ir;
  int nb = s == 1 ? 3 : 4;
  if (b < 0 || b >= nb) return NULL;
  char pre[BB_NAME];
  bb_fmt(pre, "blocks.%d.%d", s - 1, j);
  if (!map[b][0]) { /* SE: fc1 / fc2 */
    if (!strncmp(rest, "fc1.", 4)) return strdup(bb_fmt(out, "%s.se.conv_reduce.%s", pre, rest + 4));
    if (!strncmp(rest, "fc2.", 4)) return strdup(bb_fmt(out, "%s.se.conv_expand.%s", pre, rest + 4));
    return NULL;
  }
  if (!strncmp(rest, "0.", 2)) return strdup(bb_fmt(out, "%s.%s.%s", pre, map[b][0], rest + 2));
  if (!strncmp(rest, "1.", 2)) return strdup(bb_fmt(out, "%s.%s.%s", pre, map[b][1], rest + 2));
  return NULL;
}

static rn_status translate_eff(const rn_backbone *bb, int n, const char *const *names, char **canon) {
  for (int i = 0; i < n; i++) {
    if (!strncmp(names[i], "features.", 9) || !strncmp(names[i], "classifier.1.", 13)) {
      canon[i] = tv_eff_name(names[i]); /* NULL: no rule */
    } else if (!(canon[i] = strdup(names[i]))) {
      return rn_error(RN_ERR_OOM, "backbone %s: out of memory", bb->arch);
    }
  }
  return RN_OK;
}
