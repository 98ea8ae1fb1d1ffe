/* convert.c - uint8 HWC <-> float32 CHW for the model, and preview grids (A | M | I per row). */
#include "synth_internal.h"

static const double im_mean[3] = {0.485, 0.456, 0.406}, im_std[3] = {0.229, 0.224, 0.225};

rn_status rn_synth_to_chw(rn_tensor **out, const rn_tensor *u8, rn_synth_norm norm) {
  if (!out) return rn_error(RN_ERR_ARG, "synth_to_chw: out is NULL");
  *out = NULL;
  char buf[64];
  if (!u8 || u8->dtype != RN_U8 || !(u8->ndim == 3 || u8->ndim == 4) || !rn_tensor_is_contiguous(u8) ||
      rn_tensor_device(u8).type != RN_CPU)
    return rn_error(RN_ERR_SHAPE, "synth_to_chw: input must be a contiguous CPU uint8 [N,H,W,C] or [N,H,W] tensor%s%s",
                    u8 ? ", got " : "", u8 ? rn_shape_str(u8, buf, sizeof buf) : "");
  int64_t nb = u8->shape[0], h = u8->shape[1], w = u8->shape[2], c = u8->ndim == 4 ? u8->shape[3] : 1;
  if (norm == RN_SYNTH_IMAGENET && c != 3)
    return rn_error(RN_ERR_SHAPE, "synth_to_chw: ImageNet normalisation needs 3 channels, got %lld", (long long)c);
  if (norm != RN_SYNTH_UNIT && norm != RN_SYNTH_IMAGENET && norm != RN_SYNTH_RAW)
    return rn_error(RN_ERR_ARG, "synth_to_chw: unknown normalisation %d", (int)norm);
  int64_t shape[4] = {nb, c, h, w};
  RN_TRY(rn_tensor_empty(out, 4, shape, RN_F32, rn_cpu()));
  const uint8_t *p = rn_tensor_data(u8);
  float *o = rn_f32(*out);
  #pragma omp parallel for collapse(2) if (nb * h * w > 65536)
  for (int64_t i = 0; i < nb; i++)
    for (int64_t k = 0; k < c; k++)
      for (int64_t q = 0; q < h * w; q++) {
        float v = (float)p[(i * h * w + q) * c + k];
        if (norm != RN_SYNTH_RAW) v /= 255.0f;
        if (norm == RN_SYNTH_IMAGENET) v = (float)((v - im_mean[k]) / im_std[k]);
        o[(i * c + k) * h * w + q] = v;
      }
  return RN_OK;
}

rn_status rn_synth_from_chw(rn_tensor **out, const rn_tensor *x, rn_synth_norm norm) {
  if (!out) return rn_error(RN_ERR_ARG, "synth_from_chw: out is NULL");
  *out = NULL;
  char buf[64];
  if (!x || x->dtype != RN_F32 || !(x->ndim == 3 || x->ndim == 4) || x->shape[x->ndim - 3] != 3 ||
      rn_tensor_device(x).type != RN_CPU)
    return rn_error(RN_ERR_SHAPE, "synth_from_chw: input must be a CPU float32 [N,3,H,W] or [3,H,W] tensor%s%s",
                    x ? ", got " : "", x ? rn_shape_str(x, buf, sizeof buf) : "");
  if (norm != RN_SYNTH_UNIT && norm != RN_SYNTH_IMAGENET) return rn_error(RN_ERR_ARG, "synth_from_chw: unknown normalisation %d", (int)norm);
  rn_tensor *c = NULL;
  RN_TRY(rn_clone(&c, x)); /* contiguous */
  int b = x->ndim == 4;
  int64_t nb = b ? x->shape[0] : 1, h = x->shape[1 + b], w = x->shape[2 + b];
  int64_t shape[4] = {nb, h, w, 3};
  rn_status st = rn_tensor_empty(out, 4, shape, RN_U8, rn_cpu());
  if (st == RN_OK) {
    const float *p = rn_f32(c);
    uint8_t *o = rn_tensor_data(*out);
    for (int64_t i = 0; i < nb; i++)
      for (int64_t k = 0; k < 3; k++)
        for (int64_t q = 0; q < h * w; q++) {
          double v = p[(i * 3 + k) * h * w + q];
          if (norm == RN_SYNTH_IMAGENET) v = v * im_std[k] + im_mean[k];
          o[(i * h * w + q) * 3 + k] = sy_round_u8(v * 255.0);
        }
  }
  rn_tensor_release(c);
  return st;
}

rn_status rn_synth_grid(rn_tensor **out, const rn_tensor *A, const rn_tensor *M, const rn_tensor *I, int gap) {
  if (!out) return rn_error(RN_ERR_ARG, "synth_grid: out is NULL");
  *out = NULL;
  char a[64], m[64], i[64];
  if (!A || !M || !I) return rn_error(RN_ERR_ARG, "synth_grid: A, M and I are required");
  if (A->dtype != RN_U8 || I->dtype != RN_U8 || M->dtype != RN_U8 || A->ndim != 4 || A->shape[3] != 3 ||
      !rn_tensor_same_shape(A, I) || M->ndim != 3 || M->shape[0] != A->shape[0] || M->shape[1] != A->shape[1] ||
      M->shape[2] != A->shape[2] || !rn_tensor_is_contiguous(A) || !rn_tensor_is_contiguous(I) ||
      !rn_tensor_is_contiguous(M) || rn_tensor_device(A).type != RN_CPU || rn_tensor_device(M).type != RN_CPU ||
      rn_tensor_device(I).type != RN_CPU)
    return rn_error(RN_ERR_SHAPE, "synth_grid: need contiguous CPU uint8 A, I [N,H,W,3] and M [N,H,W]; got A %s, M %s, I %s",
                    rn_shape_str(A, a, sizeof a), rn_shape_str(M, m, sizeof m), rn_shape_str(I, i, sizeof i));
  if (gap < 0 || gap > 1000) return rn_error(RN_ERR_ARG, "synth_grid: gap %d must be in 0..1000", gap);
  int64_t nb = A->shape[0], h = A->shape[1], w = A->shape[2], gh = nb * h + (nb - 1) * gap, gw = 3 * w + 2 * gap;
  int64_t shape[3] = {gh, gw, 3};
  RN_TRY(rn_tensor_full(out, 3, shape, RN_U8, rn_cpu(), 255));
  uint8_t *o = rn_tensor_data(*out);
  const uint8_t *pa = rn_tensor_data(A), *pm = rn_tensor_data(M), *pi = rn_tensor_data(I);
  for (int64_t s = 0; s < nb; s++)
    for (int64_t y = 0; y < h; y++) {
      uint8_t *row = o + ((s * (h + gap) + y) * gw) * 3;
      memcpy(row, pa + ((s * h + y) * w) * 3, (size_t)(w * 3));
      for (int64_t x = 0; x < w; x++) memset(row + (w + gap + x) * 3, pm[(s * h + y) * w + x] ? 255 : 0, 3);
      memcpy(row + (2 * (w + gap)) * 3, pi + ((s * h + y) * w) * 3, (size_t)(w * 3));
    }
  return RN_OK;
}
