/* ops_loss.c - MSE, pixel-wise cross entropy and multi-class focal loss.
 *
 * All three are composites of differentiable ops (sub/square/mean, log_softmax/gather/mean, ...), so their
 * gradients come from those ops' backward rules and they run on any backend that runs the parts. */
#include "internal.h"

/* Releases the temporaries of a composite; NULL entries are fine. */
static void release_all(rn_tensor **ts, int n) {
  for (int i = 0; i < n; i++) { rn_tensor_release(ts[i]); ts[i] = NULL; }
}

rn_status rn_mse_loss(rn_tensor **out, rn_tensor *x, rn_tensor *target) {
  if (!out) return rn_error(RN_ERR_ARG, "mse_loss: no output pointer");
  *out = NULL;
  RN_TRY(rn_check_f32(x, "mse_loss: input"));
  RN_TRY(rn_check_f32(target, "mse_loss: target"));
  RN_TRY(rn_check_same_device(x, target, "mse_loss"));
  if (!rn_tensor_same_shape(x, target)) {
    char a[64], b[64];
    return rn_error(RN_ERR_SHAPE, "mse_loss: input %s and target %s differ in shape", rn_shape_str(x, a, 64),
                    rn_shape_str(target, b, 64));
  }
  rn_tensor *t[2] = {NULL, NULL};
  rn_status st = rn_sub(&t[0], x, target);
  if (st == RN_OK) st = rn_unary(&t[1], RN_UN_SQUARE, t[0], 0, 0);
  if (st == RN_OK) st = rn_reduce(out, RN_RED_MEAN, t[1], 0, NULL, false);
  release_all(t, 2);
  return st;
}

/* logits [N,K,...] float32 and target int64 [N,...] with every class id in 0..K-1. */
static rn_status check_classification(const char *op, const rn_tensor *logits, const rn_tensor *target) {
  char a[64], b[64];
  RN_TRY(rn_check_f32(logits, op));
  RN_TRY(rn_check_tensor(target, op));
  if (logits->ndim < 2)
    return rn_error(RN_ERR_SHAPE, "%s: logits must be [N,K,...], got %s", op, rn_shape_str(logits, a, 64));
  if (target->dtype != RN_I64)
    return rn_error(RN_ERR_ARG, "%s: target must be int64 class ids, got %s", op, rn_dtype_name(target->dtype));
  bool fits = target->ndim == logits->ndim - 1 && target->shape[0] == logits->shape[0];
  for (int d = 2; d < logits->ndim && fits; d++) if (target->shape[d - 1] != logits->shape[d]) fits = false;
  if (!fits)
    return rn_error(RN_ERR_SHAPE, "%s: target %s does not fit logits %s (expected logits' shape without dim 2)", op,
                    rn_shape_str(target, a, 64), rn_shape_str(logits, b, 64));
  RN_TRY(rn_check_same_device(logits, target, op));
  int64_t K = logits->shape[1];
  if (K < 1) return rn_error(RN_ERR_SHAPE, "%s: logits %s have no classes", op, rn_shape_str(logits, a, 64));
  rn_tensor *h = NULL, *c = NULL;
  RN_TRY(rn_to_device(&h, (rn_tensor *)target, rn_cpu()));
  rn_status st = rn_contig_nograd(&c, h);
  rn_tensor_release(h);
  if (st != RN_OK) return st;
  const int64_t *v = (const int64_t *)rn_tensor_data(c);
  for (int64_t i = 0, n = rn_tensor_numel(c); i < n; i++)
    if (v[i] < 0 || v[i] >= K) {
      st = rn_error(RN_ERR_ARG, "%s: target class %lld is out of range for %lld classes (expected 0..%lld)", op,
                    (long long)v[i], (long long)K, (long long)(K - 1));
      break;
    }
  rn_tensor_release(c);
  return st;
}

/* log p_t = log_softmax(logits, 1) gathered at the target class, shape [N,1,...]. */
static rn_status log_pt(rn_tensor **out, rn_tensor *logits, rn_tensor *target) {
  rn_tensor *t[2] = {NULL, NULL};
  rn_status st = rn_log_softmax(&t[0], logits, 1);
  if (st == RN_OK) st = rn_unsqueeze(&t[1], target, 1);
  if (st == RN_OK) st = rn_gather(out, t[0], 1, t[1]);
  release_all(t, 2);
  return st;
}

rn_status rn_cross_entropy(rn_tensor **out, rn_tensor *logits, rn_tensor *target) {
  if (!out) return rn_error(RN_ERR_ARG, "cross_entropy: no output pointer");
  *out = NULL;
  RN_TRY(check_classification("cross_entropy", logits, target));
  rn_tensor *t[2] = {NULL, NULL};
  rn_status st = log_pt(&t[0], logits, target);
  if (st == RN_OK) st = rn_reduce(&t[1], RN_RED_MEAN, t[0], 0, NULL, false);
  if (st == RN_OK) st = rn_scale(out, t[1], -1.0f, 0.0f);
  release_all(t, 2);
  return st;
}

/* mean over positions of -alpha_t (1 - p_t)^gamma log p_t (gamma = 0 and no alpha is cross entropy). */
rn_status rn_focal_loss(rn_tensor **out, rn_tensor *logits, rn_tensor *target, float gamma, rn_tensor *alpha) {
  if (!out) return rn_error(RN_ERR_ARG, "focal_loss: no output pointer");
  *out = NULL;
  RN_TRY(check_classification("focal_loss", logits, target));
  if (!isfinite(gamma) || gamma < 0) return rn_error(RN_ERR_ARG, "focal_loss: gamma must be >= 0, got %g", gamma);
  if (alpha) {
    char a[64], b[64];
    RN_TRY(rn_check_f32(alpha, "focal_loss: alpha"));
    RN_TRY(rn_check_same_device(logits, alpha, "focal_loss"));
    if (alpha->ndim != 1 || alpha->shape[0] != logits->shape[1])
      return rn_error(RN_ERR_SHAPE, "focal_loss: alpha %s must hold one weight per class of logits %s",
                      rn_shape_str(alpha, a, 64), rn_shape_str(logits, b, 64));
  }
  enum { LOGPT, PT, OMP, W, TERM, FLAT, AT, AT_SHAPED, TERM_A, MEAN, NT };
  rn_tensor *t[NT] = {NULL};
  rn_status st = log_pt(&t[LOGPT], logits, target);
  rn_tensor *term = t[LOGPT];
  if (st == RN_OK && gamma != 0) {
    st = rn_unary(&t[PT], RN_UN_EXP, t[LOGPT], 0, 0);
    if (st == RN_OK) st = rn_scale(&t[OMP], t[PT], -1.0f, 1.0f);
    if (st == RN_OK) st = gamma == 1 ? (t[W] = rn_tensor_retain(t[OMP]), RN_OK)
                                     : rn_unary(&t[W], RN_UN_POWS, t[OMP], gamma, 0);
    if (st == RN_OK) st = rn_mul(&t[TERM], t[W], t[LOGPT]);
    term = t[TERM];
  }
  if (st == RN_OK && alpha) {
    int64_t all = -1;
    st = rn_reshape(&t[FLAT], target, 1, &all);
    if (st == RN_OK) st = rn_index_select(&t[AT], alpha, 0, t[FLAT]);
    if (st == RN_OK) st = rn_reshape(&t[AT_SHAPED], t[AT], t[LOGPT]->ndim, t[LOGPT]->shape);
    if (st == RN_OK) st = rn_mul(&t[TERM_A], term, t[AT_SHAPED]);
    term = t[TERM_A];
  }
  if (st == RN_OK) st = rn_reduce(&t[MEAN], RN_RED_MEAN, term, 0, NULL, false);
  if (st == RN_OK) st = rn_scale(out, t[MEAN], -1.0f, 0.0f);
  release_all(t, NT);
  return st;
}
