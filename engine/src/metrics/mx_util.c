/* mx_util.c - input handling of the metrics (host copies, NaN checks, map/mask geometry) and the pair sort. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mx_internal.h"

rn_status mx_host(rn_tensor **out, rn_tensor *t, const char *fn, const char *arg) {
  *out = NULL;
  if (!t) return rn_error(RN_ERR_ARG, "%s: %s is NULL", fn, arg);
  if (rn_tensor_device(t).type == RN_CPU && rn_tensor_is_contiguous(t)) {
    *out = rn_tensor_retain(t);
    return RN_OK;
  }
  RN_TRY(rn_tensor_empty(out, t->ndim, t->shape, t->dtype, rn_cpu()));
  rn_status st = rn_copy_(*out, t);
  if (st != RN_OK) { rn_tensor_release(*out); *out = NULL; }
  return st;
}

double mx_value(const rn_tensor *t, int64_t k) {
  const void *p = rn_tensor_data(t);
  switch (t->dtype) {
  case RN_F32: return ((const float *)p)[k];
  case RN_U8: return ((const uint8_t *)p)[k];
  case RN_I32: return ((const int32_t *)p)[k];
  case RN_I64: return (double)((const int64_t *)p)[k];
  default: return NAN;
  }
}

rn_status mx_scores(rn_tensor **out, rn_tensor *t, const char *fn, const char *arg) {
  *out = NULL;
  rn_tensor *h = NULL;
  RN_TRY(mx_host(&h, t, fn, arg));
  if (rn_tensor_numel(h) == 0) { rn_tensor_release(h); return rn_error(RN_ERR_ARG, "%s: %s is empty", fn, arg); }
  if (h->dtype != RN_F32) { /* integer scores: exact in float32 up to 2^24 */
    rn_tensor *f = NULL;
    rn_status st = rn_to_dtype(&f, h, RN_F32);
    rn_tensor_release(h);
    RN_TRY(st);
    h = f;
  }
  const float *s = rn_f32(h);
  int64_t n = rn_tensor_numel(h), nans = 0, infs = 0;
  for (int64_t k = 0; k < n; k++) {
    if (isnan(s[k])) nans++;
    else if (isinf(s[k])) infs++;
  }
  if (nans || infs) {
    rn_tensor_release(h);
    return rn_error(RN_ERR_ARG, "%s: %s contain %lld NaN and %lld infinite values (of %lld); scores must be finite",
                    fn, arg, (long long)nans, (long long)infs, (long long)n);
  }
  *out = h;
  return RN_OK;
}

rn_status mx_binary(uint8_t **out, rn_tensor *t, const char *fn, const char *arg) {
  *out = NULL;
  rn_tensor *h = NULL;
  RN_TRY(mx_host(&h, t, fn, arg));
  int64_t n = rn_tensor_numel(h), nans = 0;
  if (n == 0) { rn_tensor_release(h); return rn_error(RN_ERR_ARG, "%s: %s is empty", fn, arg); }
  uint8_t *b = (uint8_t *)malloc((size_t)n);
  if (!b) { rn_tensor_release(h); return rn_error(RN_ERR_OOM, "%s: no memory for %lld %s", fn, (long long)n, arg); }
  if (h->dtype == RN_U8) {
    const uint8_t *p = (const uint8_t *)rn_tensor_data(h);
    for (int64_t k = 0; k < n; k++) b[k] = p[k] > 0;
  } else {
    for (int64_t k = 0; k < n; k++) {
      double v = mx_value(h, k);
      if (isnan(v)) nans++;
      b[k] = v > 0;
    }
  }
  rn_tensor_release(h);
  if (nans) {
    free(b);
    return rn_error(RN_ERR_ARG, "%s: %s contain %lld NaN values", fn, arg, (long long)nans);
  }
  *out = b;
  return RN_OK;
}

/* N, H, W of a map or mask tensor; 0 when the rank does not fit. */
static int nhw(const rn_tensor *t, int64_t *n, int64_t *h, int64_t *w) {
  if (t->ndim == 2) { *n = 1; *h = t->shape[0]; *w = t->shape[1]; return 1; }
  if (t->ndim == 3) { *n = t->shape[0]; *h = t->shape[1]; *w = t->shape[2]; return 1; }
  if (t->ndim == 4 && t->shape[1] == 1) { *n = t->shape[0]; *h = t->shape[2]; *w = t->shape[3]; return 1; }
  return 0;
}

rn_status mx_geometry(int64_t *n, int64_t *h, int64_t *w, rn_tensor *maps, rn_tensor *masks, const char *fn) {
  if (!maps) return rn_error(RN_ERR_ARG, "%s: maps is NULL", fn);
  if (!masks) return rn_error(RN_ERR_ARG, "%s: masks is NULL", fn);
  char a[96], b[96];
  int64_t n2, h2, w2;
  if (!nhw(maps, n, h, w))
    return rn_error(RN_ERR_SHAPE, "%s: maps %s must be [H,W], [N,H,W] or [N,1,H,W]", fn, rn_shape_str(maps, a, sizeof a));
  if (!nhw(masks, &n2, &h2, &w2))
    return rn_error(RN_ERR_SHAPE, "%s: masks %s must be [H,W], [N,H,W] or [N,1,H,W]", fn,
                    rn_shape_str(masks, b, sizeof b));
  if (n2 != *n || h2 != *h || w2 != *w)
    return rn_error(RN_ERR_SHAPE, "%s: masks %s do not match maps %s (need the same N, H, W)", fn,
                    rn_shape_str(masks, b, sizeof b), rn_shape_str(maps, a, sizeof a));
  if (*n * *h * *w == 0) return rn_error(RN_ERR_ARG, "%s: maps %s are empty", fn, rn_shape_str(maps, a, sizeof a));
  if (*n * *h * *w > (int64_t)UINT32_MAX)
    return rn_error(RN_ERR_ARG, "%s: %lld pixels exceed the 2^32 limit", fn, (long long)(*n * *h * *w));
  return RN_OK;
}

static int cmp_u64(const void *x, const void *y) {
  uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
  return (a > b) - (a < b);
}

/* Small inputs use qsort; large ones an LSD radix sort over the key's two 16-bit digits (O(n), stable). */
rn_status mx_sort_pairs(uint64_t *a, int64_t n) {
  if (n < 65536) { qsort(a, (size_t)n, sizeof *a, cmp_u64); return RN_OK; }
  uint64_t *tmp = (uint64_t *)malloc((size_t)n * sizeof *tmp);
  size_t *cnt = (size_t *)malloc(65536 * sizeof *cnt);
  if (!tmp || !cnt) {
    free(tmp); free(cnt);
    return rn_error(RN_ERR_OOM, "metrics: no memory to sort %lld scores", (long long)n);
  }
  uint64_t *src = a, *dst = tmp;
  for (int shift = 32; shift < 64; shift += 16) {
    memset(cnt, 0, 65536 * sizeof *cnt);
    for (int64_t i = 0; i < n; i++) cnt[(src[i] >> shift) & 0xffff]++;
    size_t sum = 0;
    for (int d = 0; d < 65536; d++) { size_t c = cnt[d]; cnt[d] = sum; sum += c; }
    for (int64_t i = 0; i < n; i++) dst[cnt[(src[i] >> shift) & 0xffff]++] = src[i];
    uint64_t *t = src; src = dst; dst = t;
  }
  /* two passes: the sorted data is back in `a` */
  free(tmp);
  free(cnt);
  return RN_OK;
}

rn_status rn_metric_image_labels(rn_tensor **out, rn_tensor *masks) {
  if (!out) return rn_error(RN_ERR_ARG, "image_labels: NULL result pointer");
  *out = NULL;
  int64_t n, h, w;
  RN_TRY(mx_geometry(&n, &h, &w, masks, masks, "image_labels"));
  uint8_t *m = NULL;
  RN_TRY(mx_binary(&m, masks, "image_labels", "masks"));
  rn_status st = rn_tensor_zeros(out, 1, &n, RN_U8, rn_cpu());
  if (st == RN_OK) {
    uint8_t *y = (uint8_t *)rn_tensor_data(*out);
    for (int64_t i = 0; i < n; i++)
      for (int64_t k = 0; k < h * w && !y[i]; k++) y[i] = m[i * h * w + k];
  }
  free(m);
  return st;
}
