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

/* The composite form (differentiable): per head, q, k and v rows adjacent in qkv, as guided-diffusion's
 * QKVAttentionLegacy reads them. */
static rn_status qkv_attention_composite(rn_tensor **out, rn_tensor *qkv, int heads) {
  int64_t B = qkv->shape[0], C = qkv->shape[1] / 3, H = qkv->shape[2], W = qkv->shape[3], hc = C / heads;
  int64_t split[4] = {B * heads, 3 * hc, H, W}, whole[4] = {B, C, H, W};
  enum { X, Q, K, V, Q4, K4, V4, NT };
  rn_tensor *t[NT] = {NULL};
  rn_status st = rn_reshape(&t[X], qkv, 4, split);
  for (int i = 0; i < 3 && st == RN_OK; i++) st = rn_narrow(&t[Q + i], t[X], 1, i * hc, hc);
  for (int i = 0; i < 3 && st == RN_OK; i++) st = rn_reshape(&t[Q4 + i], t[Q + i], 4, whole);
  if (st == RN_OK) st = rn_spatial_attention(out, t[Q4], t[K4], t[V4], heads);
  release_all(t, NT);
  return st;
}

/* Without a graph to record: two strided batched products and a softmax on views of qkv, no copies. With
 * [BH, hc, T] views q, k, v (T = H*W, rows of hc channels, batch stride 3 hc T):
 *   scores[t, s] = q[:, t] . k[:, s] / sqrt(hc)  (q^T k),   out[c, t] = sum_s v[c, s] attn[t, s]  (v attn^T),
 * and out [BH, hc, T] is already the [B, C, H, W] layout. */
rn_status rn_qkv_attention(rn_tensor **out, rn_tensor *qkv, int heads) {
  if (!out) return rn_error(RN_ERR_ARG, "qkv_attention: no output pointer");
  *out = NULL;
  RN_TRY(rn_check_f32(qkv, "qkv_attention: qkv"));
  RN_TRY(rn_check_ndim(qkv, 4, "qkv_attention: qkv"));
  if (heads < 1 || qkv->shape[1] == 0 || qkv->shape[1] % (3 * (int64_t)heads) != 0) {
    char a[64];
    return rn_error(RN_ERR_ARG, "qkv_attention: the %lld channels of %s are not 3 x %d heads x head channels",
                    (long long)qkv->shape[1], rn_shape_str(qkv, a, 64), heads);
  }
  if (rn_grad_enabled() && qkv->requires_grad) return qkv_attention_composite(out, qkv, heads);
  int64_t B = qkv->shape[0], C = qkv->shape[1] / 3, H = qkv->shape[2], W = qkv->shape[3];
  int64_t hc = C / heads, BH = B * heads, T = H * W;
  int64_t split[3] = {BH, 3 * hc, T}, sq[3] = {BH, T, T}, whole[4] = {B, C, H, W}, outv[3] = {BH, hc, T};
  enum { XC, X3, Q, K, V, SCORES, ATTN, O, O3, NT };
  rn_tensor *t[NT] = {NULL};
  rn_status st = rn_contig_nograd(&t[XC], qkv);
  if (st == RN_OK) st = rn_reshape(&t[X3], t[XC], 3, split);
  for (int i = 0; i < 3 && st == RN_OK; i++) st = rn_narrow(&t[Q + i], t[X3], 1, i * hc, hc);
  if (st == RN_OK) st = rn_new_like_shape(&t[SCORES], qkv, 3, sq);
  if (st == RN_OK) st = rn_new_like_shape(&t[ATTN], qkv, 3, sq);
  if (st == RN_OK) st = rn_new_like_shape(&t[O], qkv, 4, whole);
  if (st == RN_OK) st = rn_reshape(&t[O3], t[O], 3, outv);
  if (st == RN_OK && T > 0 && BH > 0) {
    st = rn_kernels_of(qkv)->gemm(t[SCORES], t[Q], t[K], true, false, (float)(1.0 / sqrt((double)hc)), 0.0f);
    if (st == RN_OK) st = rn_kernels_of(qkv)->softmax(t[ATTN], t[SCORES], 2, false);
    if (st == RN_OK) st = rn_kernels_of(qkv)->gemm(t[O3], t[V], t[ATTN], false, true, 1.0f, 0.0f);
  }
  if (st == RN_OK) { *out = t[O]; t[O] = NULL; }
  release_all(t, NT);
  return st;
}
