/* rrs.c - Reconstruction Residual Selection (see realnet/rrs.h and spec 7).
 *
 * The batch-normalised residual Z is never materialised: the norm is an increasing affine map per channel, so
 * GMP(Z)[b,c] = (max_hw R[b,c] - mean_c) * invstd_c and GAP(Z)[b,c] = (mean_hw R[b,c] - mean_c) * invstd_c
 * exactly. That saves a B x C x H x W tensor (400 MB at the paper's size). The selection itself is one
 * index_select over R viewed as [B*C, H, W], so the backward (index_add) accumulates where the GMP and GAP sets
 * overlap, and no B x K x H x W index tensor is needed. */
#include "realnet/rrs.h"

#include "../internal.h"

struct rn_rrs {
  rn_rrs_config c;
  rn_device dev;
  rn_tensor *running_mean, *running_var; /* float32 [C], NULL until C is known */
  rn_tensor *row_base;                    /* int64 [B,1] = b*C on dev, for the batch size last seen */
  int64_t row_base_c;                     /* the C of row_base */
};

rn_rrs_config rn_rrs_config_default(void) {
  rn_rrs_config c;
  memset(&c, 0, sizeof c);
  c.mode = RN_RRS_MAXAVG;
  c.ratio = 1.0 / 3.0;
  c.enabled = true;
  c.momentum = 0.9f;
  c.eps = 1e-5f;
  return c;
}

static const char *const mode_names[RN_RRS_MODE_COUNT] = {"maxavg", "max", "avg"};

const char *rn_rrs_mode_name(rn_rrs_mode m) { return (m >= 0 && m < RN_RRS_MODE_COUNT) ? mode_names[m] : "?"; }

rn_status rn_rrs_mode_parse(const char *s, rn_rrs_mode *out) {
  if (!s || !out) return rn_error(RN_ERR_ARG, "rrs: no mode name");
  if (!strcmp(s, "maxavg") || !strcmp(s, "max&avg") || !strcmp(s, "max_avg")) *out = RN_RRS_MAXAVG;
  else if (!strcmp(s, "max")) *out = RN_RRS_MAX;
  else if (!strcmp(s, "avg") || !strcmp(s, "mean")) *out = RN_RRS_AVG;
  else return rn_error(RN_ERR_ARG, "rrs: unknown mode '%s' (maxavg, max or avg)", s);
  return RN_OK;
}

static rn_status check_config(const rn_rrs_config *c) {
  if (c->mode < 0 || c->mode >= RN_RRS_MODE_COUNT) return rn_error(RN_ERR_ARG, "rrs: unknown mode %d", (int)c->mode);
  if (c->channels < 0) return rn_error(RN_ERR_ARG, "rrs: channels must be >= 0, got %lld", (long long)c->channels);
  if (c->k_max < 0 || c->k_avg < 0)
    return rn_error(RN_ERR_ARG, "rrs: counts must be >= 0, got max %lld, avg %lld", (long long)c->k_max,
                    (long long)c->k_avg);
  bool counts = c->k_max > 0 || c->k_avg > 0;
  if (counts && c->mode == RN_RRS_MAX && c->k_max == 0)
    return rn_error(RN_ERR_ARG, "rrs: mode max needs a positive max count");
  if (counts && c->mode == RN_RRS_AVG && c->k_avg == 0)
    return rn_error(RN_ERR_ARG, "rrs: mode avg needs a positive avg count");
  if (!counts && !(c->ratio > 0 && c->ratio <= 1))
    return rn_error(RN_ERR_ARG, "rrs: ratio must be in (0, 1], got %g", c->ratio);
  if (!(c->momentum >= 0 && c->momentum <= 1))
    return rn_error(RN_ERR_ARG, "rrs: momentum must be in [0, 1], got %g", (double)c->momentum);
  if (!(c->eps > 0 && isfinite(c->eps))) return rn_error(RN_ERR_ARG, "rrs: eps must be > 0, got %g", (double)c->eps);
  return RN_OK;
}

rn_status rn_rrs_counts(const rn_rrs *r, int64_t C, int64_t *k_max, int64_t *k_avg) {
  if (!r) return rn_error(RN_ERR_ARG, "rrs: no selector");
  const rn_rrs_config *c = &r->c;
  if (C <= 0) C = c->channels;
  if (C <= 0) return rn_error(RN_ERR_ARG, "rrs: the channel count is not known yet (run a forward or set channels)");
  int64_t km, ka;
  if (c->k_max > 0 || c->k_avg > 0) {
    km = c->mode == RN_RRS_AVG ? 0 : c->k_max;
    ka = c->mode == RN_RRS_MAX ? 0 : c->k_avg;
  } else {
    int64_t total = (int64_t)llround(c->ratio * (double)C);
    if (total < 1) total = 1;
    if (total > C) total = C;
    km = c->mode == RN_RRS_AVG ? 0 : (c->mode == RN_RRS_MAX ? total : (total + 1) / 2);
    ka = total - km;
  }
  if (km > C || ka > C)
    return rn_error(RN_ERR_ARG, "rrs: counts (max %lld, avg %lld) exceed the %lld residual channels", (long long)km,
                    (long long)ka, (long long)C);
  if (k_max) *k_max = km;
  if (k_avg) *k_avg = ka;
  return RN_OK;
}

rn_status rn_rrs_out_channels(const rn_rrs *r, int64_t C, int64_t *out) {
  if (!r || !out) return rn_error(RN_ERR_ARG, "rrs: no selector or output pointer");
  if (!r->c.enabled) {
    *out = C > 0 ? C : r->c.channels;
    if (*out <= 0) return rn_error(RN_ERR_ARG, "rrs: the channel count is not known yet");
    return RN_OK;
  }
  int64_t km, ka;
  RN_TRY(rn_rrs_counts(r, C, &km, &ka));
  *out = km + ka;
  return RN_OK;
}

/* Allocates the running statistics for C channels (mean 0, variance 1, as PyTorch's BatchNorm). */
static rn_status alloc_stats(rn_rrs *r, int64_t C) {
  rn_tensor *m = NULL, *v = NULL;
  RN_TRY(rn_tensor_zeros(&m, 1, &C, RN_F32, r->dev));
  rn_status st = rn_tensor_full(&v, 1, &C, RN_F32, r->dev, 1.0);
  if (st != RN_OK) { rn_tensor_release(m); return st; }
  r->running_mean = m;
  r->running_var = v;
  r->c.channels = C;
  return RN_OK;
}

rn_status rn_rrs_new(rn_rrs **out, const rn_rrs_config *c, rn_device dev) {
  if (!out) return rn_error(RN_ERR_ARG, "rrs: no output pointer");
  *out = NULL;
  rn_rrs_config d = c ? *c : rn_rrs_config_default();
  RN_TRY(check_config(&d));
  rn_rrs *r = calloc(1, sizeof *r);
  if (!r) return rn_error(RN_ERR_OOM, "rrs: out of memory");
  r->c = d;
  r->c.channels = 0;
  r->dev = dev;
  rn_status st = RN_OK;
  if (d.channels > 0) {
    st = rn_rrs_counts(r, d.channels, NULL, NULL); /* explicit counts must fit */
    if (st == RN_OK) st = alloc_stats(r, d.channels);
  }
  if (st != RN_OK) { rn_rrs_free(r); return st; }
  *out = r;
  return RN_OK;
}

void rn_rrs_free(rn_rrs *r) {
  if (!r) return;
  rn_tensor_release(r->running_mean);
  rn_tensor_release(r->running_var);
  rn_tensor_release(r->row_base);
  free(r);
}

const rn_rrs_config *rn_rrs_get_config(const rn_rrs *r) { return r ? &r->c : NULL; }
rn_tensor *rn_rrs_get_running_mean(const rn_rrs *r) { return r ? r->running_mean : NULL; }
rn_tensor *rn_rrs_get_running_var(const rn_rrs *r) { return r ? r->running_var : NULL; }

static rn_status check_stat(const rn_tensor *t, int64_t C, const char *what) {
  char b[64];
  RN_TRY(rn_check_f32(t, what));
  if (t->ndim != 1 || (C > 0 && t->shape[0] != C))
    return rn_error(RN_ERR_SHAPE, "%s must be [%lld], got %s", what, (long long)C, rn_shape_str(t, b, 64));
  if (t->shape[0] < 1) return rn_error(RN_ERR_SHAPE, "%s is empty", what);
  return RN_OK;
}

rn_status rn_rrs_set_running_stats(rn_rrs *r, const rn_tensor *mean, const rn_tensor *var) {
  if (!r) return rn_error(RN_ERR_ARG, "rrs: no selector");
  int64_t C = r->c.channels;
  RN_TRY(check_stat(mean, C, "rrs: running_mean"));
  RN_TRY(check_stat(var, C > 0 ? C : mean->shape[0], "rrs: running_var"));
  if (C <= 0) {
    RN_TRY(rn_rrs_counts(r, mean->shape[0], NULL, NULL));
    RN_TRY(alloc_stats(r, mean->shape[0]));
  }
  RN_TRY(rn_copy_(r->running_mean, mean));
  return rn_copy_(r->running_var, var);
}

rn_status rn_rrs_to_device(rn_rrs *r, rn_device dev) {
  if (!r) return rn_error(RN_ERR_ARG, "rrs: no selector");
  if (r->running_mean) {
    rn_tensor *m = NULL, *v = NULL;
    RN_TRY(rn_to_device(&m, r->running_mean, dev));
    rn_status st = rn_to_device(&v, r->running_var, dev);
    if (st != RN_OK) { rn_tensor_release(m); return st; }
    rn_tensor_release(r->running_mean);
    rn_tensor_release(r->running_var);
    r->running_mean = m;
    r->running_var = v;
  }
  rn_tensor_release(r->row_base); /* remade on the new device when needed */
  r->row_base = NULL;
  r->dev = dev;
  return RN_OK;
}

/* dst <- (1 - m) dst + f stat, in place (grad mode is off in the caller). */
static rn_status running_update(rn_tensor *dst, rn_tensor *stat, float m, float f) {
  rn_tensor *a = NULL, *b = NULL, *s = NULL;
  rn_status st = rn_scale(&a, dst, 1.0f - m, 0.0f);
  if (st == RN_OK) st = rn_scale(&b, stat, f, 0.0f);
  if (st == RN_OK) st = rn_add(&s, a, b);
  if (st == RN_OK) st = rn_copy_(dst, s);
  rn_tensor_release(a);
  rn_tensor_release(b);
  rn_tensor_release(s);
  return st;
}

/* Per-channel mean and invstd for ranking, as [1,C] rows: batch statistics (and a running update) in training,
 * the running statistics otherwise. */
static rn_status rank_stats(rn_rrs *r, rn_tensor *xc, bool training, rn_tensor **mean_row, rn_tensor **invstd_row) {
  int64_t C = xc->shape[1], M = rn_tensor_numel(xc) / C, row[2] = {1, C};
  rn_tensor *mean = NULL, *var = NULL, *t = NULL, *inv = NULL;
  rn_status st = RN_OK;
  if (training) {
    char b[64];
    if (M < 2)
      return rn_error(RN_ERR_SHAPE, "rrs: training needs more than one value per channel, got residual %s",
                      rn_shape_str(xc, b, 64));
    st = rn_tensor_empty(&mean, 1, &C, RN_F32, rn_tensor_device(xc));
    if (st == RN_OK) st = rn_tensor_empty(&var, 1, &C, RN_F32, rn_tensor_device(xc));
    if (st == RN_OK) st = rn_kernels_of(xc)->batch_norm_stats(mean, var, xc); /* biased variance */
    if (st == RN_OK) st = running_update(r->running_mean, mean, r->c.momentum, r->c.momentum);
    if (st == RN_OK)
      st = running_update(r->running_var, var, r->c.momentum,
                          (float)((double)r->c.momentum * (double)M / (double)(M - 1)));
  } else {
    mean = rn_tensor_retain(r->running_mean);
    var = rn_tensor_retain(r->running_var);
  }
  if (st == RN_OK) st = rn_scale(&t, var, 1.0f, r->c.eps);
  if (st == RN_OK) st = rn_unary(&inv, RN_UN_RSQRT, t, 0, 0);
  if (st == RN_OK) st = rn_reshape(mean_row, mean, 2, row);
  if (st == RN_OK) st = rn_reshape(invstd_row, inv, 2, row);
  rn_tensor_release(mean);
  rn_tensor_release(var);
  rn_tensor_release(t);
  rn_tensor_release(inv);
  return st;
}

/* Top-k channel indices [B,k] of the normalised GMP (is_max) or GAP of x. */
static rn_status rank(rn_tensor **idx, rn_tensor *xc, rn_tensor *mean_row, rn_tensor *invstd_row, bool is_max,
                      int64_t k) {
  int dims[2] = {2, 3};
  rn_tensor *pooled = NULL, *centred = NULL, *score = NULL, *vals = NULL;
  rn_status st = rn_reduce(&pooled, is_max ? RN_RED_MAX : RN_RED_MEAN, xc, 2, dims, false);
  if (st == RN_OK) st = rn_sub(&centred, pooled, mean_row);
  if (st == RN_OK) st = rn_mul(&score, centred, invstd_row);
  if (st == RN_OK) st = rn_topk(&vals, idx, score, (int)k, 1, true);
  rn_tensor_release(pooled);
  rn_tensor_release(centred);
  rn_tensor_release(score);
  rn_tensor_release(vals);
  return st;
}

/* idx [B,K] (channel ids, on the residual's device) -> a 1-d int64 tensor of rows b*C + idx[b,j] of R viewed
 * as [B*C, H, W]. Computed on the device from a cached [B,1] column of b*C, so a forward waits for no copy
 * (and can be recorded in a CUDA graph once the batch size has been seen). */
static rn_status flat_rows(rn_rrs *r, rn_tensor **out, rn_tensor *idx, int64_t C, rn_device dev) {
  int64_t B = idx->shape[0], n = B * idx->shape[1];
  if (!r->row_base || r->row_base->shape[0] != B || r->row_base_c != C ||
      !rn_device_eq(rn_tensor_device(r->row_base), dev)) {
    rn_tensor *col = NULL, *base = NULL;
    int64_t shape[2] = {B, 1};
    RN_TRY(rn_arange(&col, 0, (double)(B * C), (double)C, RN_I64, dev));
    rn_status st = rn_reshape(&base, col, 2, shape);
    rn_tensor_release(col);
    RN_TRY(st);
    rn_tensor_release(r->row_base);
    r->row_base = base;
    r->row_base_c = C;
  }
  rn_tensor *sum = NULL;
  RN_TRY(rn_add(&sum, idx, r->row_base));
  rn_status st = rn_reshape(out, sum, 1, &n);
  rn_tensor_release(sum);
  return st;
}

/* The ranking half of the forward, with grad mode off: the source channels [B,K]. */
static rn_status select_channels(rn_rrs *r, rn_tensor *residual, bool training, int64_t km, int64_t ka,
                                 rn_tensor **idx) {
  rn_tensor *xc = NULL, *mrow = NULL, *irow = NULL, *imax = NULL, *iavg = NULL;
  rn_status st = rn_contig_nograd(&xc, residual);
  if (st == RN_OK) st = rank_stats(r, xc, training, &mrow, &irow);
  if (st == RN_OK && km > 0) st = rank(&imax, xc, mrow, irow, true, km);
  if (st == RN_OK && ka > 0) st = rank(&iavg, xc, mrow, irow, false, ka);
  if (st == RN_OK) {
    if (imax && iavg) {
      rn_tensor *parts[2] = {imax, iavg};
      st = rn_concat(idx, 2, parts, 1);
    } else {
      *idx = rn_tensor_retain(imax ? imax : iavg);
    }
  }
  rn_tensor_release(xc);
  rn_tensor_release(mrow);
  rn_tensor_release(irow);
  rn_tensor_release(imax);
  rn_tensor_release(iavg);
  return st;
}

rn_status rn_rrs_forward(rn_tensor **out, rn_tensor **indices, rn_rrs *r, rn_tensor *residual, bool training) {
  if (!out) return rn_error(RN_ERR_ARG, "rrs: no output pointer");
  *out = NULL;
  if (indices) *indices = NULL;
  if (!r) return rn_error(RN_ERR_ARG, "rrs: no selector");
  RN_TRY(rn_check_f32(residual, "rrs: residual"));
  char b[64];
  if (residual->ndim != 4)
    return rn_error(RN_ERR_SHAPE, "rrs: residual must be [B,C,H,W], got %s", rn_shape_str(residual, b, 64));
  for (int d = 0; d < 4; d++)
    if (residual->shape[d] < 1) return rn_error(RN_ERR_SHAPE, "rrs: residual %s has an empty dim",
                                                rn_shape_str(residual, b, 64));
  int64_t B = residual->shape[0], C = residual->shape[1], H = residual->shape[2], W = residual->shape[3];
  if (r->c.channels > 0 && C != r->c.channels)
    return rn_error(RN_ERR_SHAPE, "rrs: residual %s has %lld channels but the selector was built for %lld",
                    rn_shape_str(residual, b, 64), (long long)C, (long long)r->c.channels);
  if (!r->c.enabled) {
    *out = rn_tensor_retain(residual);
    return RN_OK;
  }
  int64_t km, ka;
  RN_TRY(rn_rrs_counts(r, C, &km, &ka));
  if (!r->running_mean) {
    r->dev = rn_tensor_device(residual);
    RN_TRY(alloc_stats(r, C));
  }
  RN_TRY(rn_check_same_device(residual, r->running_mean, "rrs: residual and running statistics"));

  rn_nograd_scope ng = rn_nograd_begin();
  rn_tensor *idx = NULL, *rows = NULL;
  rn_status st = select_channels(r, residual, training, km, ka, &idx);
  if (st == RN_OK) st = flat_rows(r, &rows, idx, C, rn_tensor_device(residual));
  rn_nograd_end(ng);

  rn_tensor *flat = NULL, *sel = NULL;
  int64_t fshape[3] = {B * C, H, W}, oshape[4] = {B, km + ka, H, W};
  if (st == RN_OK) st = rn_reshape(&flat, residual, 3, fshape);
  if (st == RN_OK) st = rn_index_select_trusted(&sel, flat, 0, rows); /* rows from top-k: in range */
  if (st == RN_OK) st = rn_reshape(out, sel, 4, oshape);
  rn_tensor_release(flat);
  rn_tensor_release(sel);
  rn_tensor_release(rows);
  if (st == RN_OK && indices) {
    *indices = idx;
    idx = NULL;
  }
  rn_tensor_release(idx);
  if (st != RN_OK) {
    rn_tensor_release(*out);
    *out = NULL;
  }
  return st;
}
