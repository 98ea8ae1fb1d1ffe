/* mx_label.c - 8-connected component labelling (two-pass union-find), as scipy.ndimage.label with a 3x3
 * structure of ones and skimage.measure.label(connectivity=2) give it: the ground-truth regions of AU-PRO. */
#include <stdlib.h>

#include "mx_internal.h"

static int32_t find_root(int32_t *parent, int32_t x) {
  while (parent[x] != x) {
    parent[x] = parent[parent[x]]; /* path halving */
    x = parent[x];
  }
  return x;
}

rn_status rn_label_regions8(int32_t *labels, const uint8_t *mask, int64_t h, int64_t w, int64_t *count) {
  if (!labels || !mask || !count) return rn_error(RN_ERR_ARG, "label_regions8: NULL argument");
  if (h < 0 || w < 0) return rn_error(RN_ERR_ARG, "label_regions8: negative size %lldx%lld", (long long)h, (long long)w);
  if (h * w > INT32_MAX - 1)
    return rn_error(RN_ERR_ARG, "label_regions8: %lldx%lld mask is too large", (long long)h, (long long)w);
  *count = 0;
  int64_t n = h * w;
  if (n == 0) return RN_OK;
  /* provisional labels: at most one per pixel */
  int32_t *parent = (int32_t *)malloc((size_t)(n + 1) * sizeof *parent);
  if (!parent) return rn_error(RN_ERR_OOM, "label_regions8: no memory for a %lldx%lld mask", (long long)h, (long long)w);
  int32_t next = 0;
  for (int64_t y = 0; y < h; y++) {
    for (int64_t x = 0; x < w; x++) {
      int64_t i = y * w + x;
      if (!mask[i]) { labels[i] = 0; continue; }
      /* neighbours already visited: W, NW, N, NE */
      int32_t nb[4], k = 0, l = 0;
      if (x > 0) nb[k++] = labels[i - 1];
      if (y > 0) {
        if (x > 0) nb[k++] = labels[i - w - 1];
        nb[k++] = labels[i - w];
        if (x + 1 < w) nb[k++] = labels[i - w + 1];
      }
      for (int j = 0; j < k; j++) {
        if (!nb[j]) continue;
        int32_t r = find_root(parent, nb[j]);
        if (!l) l = r;
        else if (r != l) { /* merge: the smaller root survives */
          if (r < l) { parent[l] = r; l = r; } else parent[r] = l;
        }
      }
      if (!l) { l = ++next; parent[l] = l; }
      labels[i] = l;
    }
  }
  /* final ids in raster order of each region's first pixel */
  int32_t *remap = (int32_t *)calloc((size_t)next + 1, sizeof *remap);
  if (!remap) { free(parent); return rn_error(RN_ERR_OOM, "label_regions8: no memory"); }
  int32_t final = 0;
  for (int64_t i = 0; i < n; i++) {
    if (!labels[i]) continue;
    int32_t r = find_root(parent, labels[i]);
    if (!remap[r]) remap[r] = ++final;
    labels[i] = remap[r];
  }
  free(remap);
  free(parent);
  *count = final;
  return RN_OK;
}
