/* ops_attention.c - scaled dot-product attention and its spatial (NCHW) form.
 *
 * Composites of matmul, softmax and views, so gradients come from those ops. The full [B, L, S] score matrix
 * is materialised; callers keep L*S moderate (RealNet attends over feature maps of at most 64x64). */
#include "internal.h"

static void release_all(rn_tensor **ts, int n) {
  for (int i = 0; i < n; i++) { rn_tensor_release(ts[i]); ts[i] = NULL; }
}

rn_status rn_sdpa(rn_tensor **out, rn_tensor *q, rn_tensor *k, rn_tensor *v) {
  if (!out) return rn_error(RN_ERR_ARG, "sdpa: no output pointer");
  *out = NULL;
  RN_TRY(rn_check_f32(q, "sdpa: q"));
  RN_TRY(rn_check_f32(k, "sdpa: k"));
  RN_TRY(rn_check_f32(v, "sdpa: v"));
  RN_TRY(rn_check_ndim(q, 3, "sdpa: q"));
  RN_TRY(rn_check_ndim(k, 3, "sdpa: k"));
  RN_TRY(rn_check_ndim(v, 3, "sdpa: v"));
  RN_TRY(rn_check_same_device(q, k, "sdpa"));
  RN_TRY(rn_check_same_device(q, v, "sdpa"));
  if (k->shape[0] != q->shape[0] || v->shape[0] != q->shape[0] || k->shape[2] != q->shape[2] ||
      v->shape[1] != k->shape[1] || q->shape[2] < 1) {
    char a[64], b[64], c[64];
    return rn_error(RN_ERR_SHAPE, "sdpa: q %s, k %s, v %s do not fit (want [B,L,d], [B,S,d], [B,S,dv], d >= 1)",
                    rn_shape_str(q, a, 64), rn_shape_str(k, b, 64), rn_shape_str(v, c, 64));
  }
  enum { QS, KT, KTC, SCORES, ATTN, NT };
  rn_tensor *t[NT] = {NULL};
  /* scaling q (L*d values) is cheaper than scaling the scores (L*S) */
  rn_status st = rn_scale(&t[QS], q, (float)(1.0 / sqrt((double)q->shape[2])), 0.0f);
  if (st == RN_OK) st = rn_transpose(&t[KT], k, 1, 2);
  if (st == RN_OK) st = rn_contiguous(&t[KTC], t[KT]);
  if (st == RN_OK) st = rn_matmul(&t[SCORES], t[QS], t[KTC]);
  if (st == RN_OK) st = rn_softmax(&t[ATTN], t[SCORES], 2);
  if (st == RN_OK) st = rn_matmul(out, t[ATTN], v);
  release_all(t, NT);
  return st;
}

/* [N,C,H,W] -> [N*heads, H*W, C/heads] */
static rn_status to_sequence(rn_tensor **out, rn_tensor *x, int heads) {
  int64_t s[3] = {x->shape[0] * heads, x->shape[1] / heads, x->shape[2] * x->shape[3]};
  rn_tensor *t[2] = {NULL, NULL};
  rn_status st = rn_reshape(&t[0], x, 3, s);
  if (st == RN_OK) st = rn_transpose(&t[1], t[0], 1, 2);
  if (st == RN_OK) st = rn_contiguous(out, t[1]);
  release_all(t, 2);
  return st;
}

rn_status rn_spatial_attention(rn_tensor **out, rn_tensor *q, rn_tensor *k, rn_tensor *v, int heads) {
  if (!out) return rn_error(RN_ERR_ARG, "spatial_attention: no output pointer");
  *out = NULL;
  RN_TRY(rn_check_f32(q, "spatial_attention: q"));
  RN_TRY(rn_check_f32(k, "spatial_attention: k"));
  RN_TRY(rn_check_f32(v, "spatial_attention: v"));
  RN_TRY(rn_check_ndim(q, 4, "spatial_attention: q"));
  if (!rn_tensor_same_shape(q, k) || !rn_tensor_same_shape(q, v)) {
    char a[64], b[64], c[64];
    return rn_error(RN_ERR_SHAPE, "spatial_attention: q %s, k %s and v %s must share one [N,C,H,W] shape",
                    rn_shape_str(q, a, 64), rn_shape_str(k, b, 64), rn_shape_str(v, c, 64));
  }
  if (heads < 1 || q->shape[1] % heads != 0 || q->shape[1] == 0) {
    char a[64];
    return rn_error(RN_ERR_ARG, "spatial_attention: %d heads do not divide the %lld channels of %s", heads,
                    (long long)q->shape[1], rn_shape_str(q, a, 64));
  }
  RN_TRY(rn_check_same_device(q, k, "spatial_attention"));
  RN_TRY(rn_check_same_device(q, v, "spatial_attention"));
  enum { QS, KS, VS, OS, OT, OC, NT };
  rn_tensor *t[NT] = {NULL};
  rn_status st = to_sequence(&t[QS], q, heads);
  if (st == RN_OK) st = to_sequence(&t[KS], k, heads);
  if (st == RN_OK) st = to_sequence(&t[VS], v, heads);
  if (st == RN_OK) st = rn_sdpa(&t[OS], t[QS], t[KS], t[VS]);
  if (st == RN_OK) st = rn_transpose(&t[OT], t[OS], 1, 2);
  if (st == RN_OK) st = rn_contiguous(&t[OC], t[OT]);
  if (st == RN_OK) st = rn_reshape(out, t[OC], 4, q->shape);
  release_all(t, NT);
  return st;
}
