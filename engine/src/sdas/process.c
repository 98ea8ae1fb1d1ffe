/* process.c - q_sample, p_mean_variance, the Gaussian KL and the discretised-Gaussian decoder likelihood.
 *
 * The per-element math is done on the host in double (the schedules are double and the KL of nearly equal
 * Gaussians cancels badly in float), reading float32 inputs and writing float32 outputs. */
#include "internal.h"
#include "sdas_internal.h"

rn_status rn_sdas_host(rn_tensor **out, rn_tensor *t, const char *what) {
  *out = NULL;
  RN_TRY(rn_check_f32(t, what));
  rn_tensor *h = NULL;
  RN_TRY(rn_to_device(&h, t, rn_cpu()));
  rn_status st = rn_contig_nograd(out, h);
  rn_tensor_release(h);
  return st;
}

rn_status rn_sdas_to_device_of(rn_tensor **t, const rn_tensor *like) {
  rn_device dev = rn_tensor_device(like);
  if (dev.type == RN_CPU) return RN_OK;
  rn_tensor *m = NULL;
  rn_status st = rn_to_device(&m, *t, dev);
  rn_tensor_release(*t);
  *t = m;
  return st;
}

rn_status rn_sdas_steps(const rn_diffusion *d, rn_tensor *t, int64_t B, int64_t **steps, const char *op) {
  *steps = NULL;
  char a[64];
  if (!d) return rn_error(RN_ERR_ARG, "%s: no diffusion", op);
  RN_TRY(rn_check_tensor(t, op));
  if (t->dtype != RN_I64 || t->ndim != 1 || t->shape[0] != B)
    return rn_error(RN_ERR_SHAPE, "%s: t must be int64 [%lld] (one step per sample), got %s %s", op, (long long)B,
                    rn_dtype_name(t->dtype), rn_shape_str(t, a, 64));
  rn_tensor *h = NULL, *c = NULL;
  RN_TRY(rn_to_device(&h, t, rn_cpu()));
  rn_status st = rn_contig_nograd(&c, h);
  rn_tensor_release(h);
  if (st != RN_OK) return st;
  int64_t *s = malloc(sizeof(int64_t) * (size_t)(B > 0 ? B : 1));
  if (!s) st = rn_error(RN_ERR_OOM, "%s: out of memory", op);
  const int64_t *v = (const int64_t *)rn_tensor_data(c);
  for (int64_t b = 0; st == RN_OK && b < B; b++) {
    if (v[b] < 0 || v[b] >= d->K)
      st = rn_error(RN_ERR_ARG, "%s: step t[%lld] = %lld is outside 0..%d", op, (long long)b, (long long)v[b],
                    d->K - 1);
    else s[b] = v[b];
  }
  rn_tensor_release(c);
  if (st != RN_OK) { free(s); return st; }
  *steps = s;
  return RN_OK;
}

rn_status rn_sdas_check_model_out(const rn_diffusion *d, const rn_tensor *mo, const rn_tensor *x, int64_t *C,
                                  int64_t *n, const char *op) {
  char a[64], b[64];
  if (!d) return rn_error(RN_ERR_ARG, "%s: no diffusion", op);
  RN_TRY(rn_check_f32(mo, op));
  RN_TRY(rn_check_f32(x, op));
  if (x->ndim < 2) return rn_error(RN_ERR_SHAPE, "%s: x_t must be [B, C, ...], got %s", op, rn_shape_str(x, a, 64));
  int64_t want = d->learn_sigma ? 2 * x->shape[1] : x->shape[1];
  bool ok = mo->ndim == x->ndim && mo->shape[0] == x->shape[0] && mo->shape[1] == want;
  for (int i = 2; ok && i < x->ndim; i++) ok = mo->shape[i] == x->shape[i];
  if (!ok)
    return rn_error(RN_ERR_SHAPE, "%s: model output %s does not fit x_t %s (expected %lld channels%s)", op,
                    rn_shape_str(mo, a, 64), rn_shape_str(x, b, 64), (long long)want,
                    d->learn_sigma ? ": eps and v" : "");
  RN_TRY(rn_check_same_device(mo, x, op));
  *C = x->shape[1];
  *n = x->shape[0] ? rn_tensor_numel(x) / x->shape[0] : 0;
  return RN_OK;
}

static rn_status check_same(const rn_tensor *a, const rn_tensor *b, const char *op, const char *an,
                            const char *bn) {
  RN_TRY(rn_check_f32(a, op));
  RN_TRY(rn_check_f32(b, op));
  if (!rn_tensor_same_shape(a, b)) {
    char s1[64], s2[64];
    return rn_error(RN_ERR_SHAPE, "%s: %s %s and %s %s differ in shape", op, an, rn_shape_str(a, s1, 64), bn,
                    rn_shape_str(b, s2, 64));
  }
  return rn_check_same_device(a, b, op);
}

rn_status rn_diffusion_q_sample(rn_tensor **out, const rn_diffusion *d, rn_tensor *x0, rn_tensor *t,
                                rn_tensor *noise) {
  if (!out) return rn_error(RN_ERR_ARG, "q_sample: no output pointer");
  *out = NULL;
  if (!d) return rn_error(RN_ERR_ARG, "q_sample: no diffusion");
  RN_TRY(check_same(x0, noise, "q_sample", "x0", "noise"));
  if (x0->ndim < 1) return rn_error(RN_ERR_SHAPE, "q_sample: x0 needs a batch dim");
  int64_t B = x0->shape[0], n = B ? rn_tensor_numel(x0) / B : 0, *k = NULL;
  RN_TRY(rn_sdas_steps(d, t, B, &k, "q_sample"));
  rn_tensor *hx = NULL, *hn = NULL, *o = NULL;
  rn_status st = rn_sdas_host(&hx, x0, "q_sample: x0");
  if (st == RN_OK) st = rn_sdas_host(&hn, noise, "q_sample: noise");
  if (st == RN_OK) st = rn_tensor_empty(&o, x0->ndim, x0->shape, RN_F32, rn_cpu());
  if (st == RN_OK) {
    const float *x = rn_f32(hx), *z = rn_f32(hn);
    float *y = rn_f32(o);
    for (int64_t b = 0; b < B; b++) {
      double ac = d->tab[RN_DF_ALPHAS_CUMPROD][k[b]], p = sqrt(ac), q = sqrt(1.0 - ac);
      for (int64_t i = b * n; i < (b + 1) * n; i++) y[i] = (float)(p * x[i] + q * z[i]);
    }
    st = rn_sdas_to_device_of(&o, x0);
  }
  rn_tensor_release(hx); rn_tensor_release(hn); free(k);
  if (st != RN_OK) { rn_tensor_release(o); return st; }
  *out = o;
  return RN_OK;
}

rn_status rn_diffusion_p_mean_variance(const rn_diffusion *d, rn_tensor *model_out, rn_tensor *xt, rn_tensor *t,
                                       bool clip, rn_tensor **mean, rn_tensor **logvar, rn_tensor **pred_x0) {
  rn_tensor **outs[3] = {mean, logvar, pred_x0};
  for (int i = 0; i < 3; i++) if (outs[i]) *outs[i] = NULL;
  int64_t C, n, *k = NULL;
  RN_TRY(rn_sdas_check_model_out(d, model_out, xt, &C, &n, "p_mean_variance"));
  int64_t B = xt->shape[0], hw = C ? n / C : 0;
  RN_TRY(rn_sdas_steps(d, t, B, &k, "p_mean_variance"));
  rn_tensor *hm = NULL, *hx = NULL, *o[3] = {NULL, NULL, NULL};
  rn_status st = rn_sdas_host(&hm, model_out, "p_mean_variance: model output");
  if (st == RN_OK) st = rn_sdas_host(&hx, xt, "p_mean_variance: x_t");
  for (int i = 0; i < 3 && st == RN_OK; i++) st = rn_tensor_empty(&o[i], xt->ndim, xt->shape, RN_F32, rn_cpu());
  if (st == RN_OK) {
    const float *m = rn_f32(hm), *x = rn_f32(hx);
    float *mu = rn_f32(o[0]), *lv = rn_f32(o[1]), *x0 = rn_f32(o[2]);
    int64_t mc = d->learn_sigma ? 2 * C : C;
    for (int64_t b = 0; b < B; b++) {
      int64_t s = k[b];
      double ac = d->tab[RN_DF_ALPHAS_CUMPROD][s], r = sqrt(1.0 / ac), rm1 = sqrt(1.0 / ac - 1.0);
      double c1 = d->tab[RN_DF_POSTERIOR_MEAN_COEF1][s], c2 = d->tab[RN_DF_POSTERIOR_MEAN_COEF2][s];
      for (int64_t c = 0; c < C; c++)
        for (int64_t j = 0; j < hw; j++) {
          int64_t i = b * n + c * hw + j, ie = b * mc * hw + c * hw + j;
          double px = r * x[i] - rm1 * m[ie];
          if (clip) px = px < -1 ? -1 : (px > 1 ? 1 : px);
          x0[i] = (float)px;
          mu[i] = (float)(c1 * px + c2 * x[i]);
          lv[i] = (float)rn_sdas_model_logvar(d, s, d->learn_sigma ? m[ie + C * hw] : 0.0);
        }
    }
    for (int i = 0; i < 3 && st == RN_OK; i++) st = rn_sdas_to_device_of(&o[i], xt);
  }
  rn_tensor_release(hm); rn_tensor_release(hx); free(k);
  for (int i = 0; i < 3; i++) {
    if (st == RN_OK && outs[i]) *outs[i] = o[i];
    else rn_tensor_release(o[i]);
  }
  return st;
}

rn_status rn_normal_kl(rn_tensor **out, rn_tensor *m1, rn_tensor *lv1, rn_tensor *m2, rn_tensor *lv2) {
  if (!out) return rn_error(RN_ERR_ARG, "normal_kl: no output pointer");
  *out = NULL;
  RN_TRY(check_same(m1, lv1, "normal_kl", "mean1", "logvar1"));
  RN_TRY(check_same(m1, m2, "normal_kl", "mean1", "mean2"));
  RN_TRY(check_same(m1, lv2, "normal_kl", "mean1", "logvar2"));
  rn_tensor *h[4] = {NULL}, *o = NULL, *in[4] = {m1, lv1, m2, lv2};
  rn_status st = RN_OK;
  for (int i = 0; i < 4 && st == RN_OK; i++) st = rn_sdas_host(&h[i], in[i], "normal_kl");
  if (st == RN_OK) st = rn_tensor_empty(&o, m1->ndim, m1->shape, RN_F32, rn_cpu());
  if (st == RN_OK) {
    const float *a = rn_f32(h[0]), *la = rn_f32(h[1]), *b = rn_f32(h[2]), *lb = rn_f32(h[3]);
    float *y = rn_f32(o);
    for (int64_t i = 0, N = rn_tensor_numel(o); i < N; i++) {
      double dm = (double)a[i] - b[i];
      y[i] = (float)(0.5 * (-1.0 + lb[i] - la[i] + exp((double)la[i] - lb[i]) + dm * dm * exp(-(double)lb[i])));
    }
    st = rn_sdas_to_device_of(&o, m1);
  }
  for (int i = 0; i < 4; i++) rn_tensor_release(h[i]);
  if (st != RN_OK) { rn_tensor_release(o); return st; }
  *out = o;
  return RN_OK;
}

/* Phi(u) ~ 0.5 (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))) and its derivative. */
static double approx_cdf(double u, double *deriv) {
  const double k = 0.7978845608028654;
  double th = tanh(k * (u + 0.044715 * u * u * u));
  if (deriv) *deriv = 0.5 * (1.0 - th * th) * k * (1.0 + 3 * 0.044715 * u * u);
  return 0.5 * (1.0 + th);
}

double rn_sdas_decoder_loglik(double x, double mean, double log_scale, double *dls) {
  double c = x - mean, inv = exp(-log_scale);
  double pin = inv * (c + 1.0 / 255.0), min = inv * (c - 1.0 / 255.0), dp, dm;
  double cp = approx_cdf(pin, &dp), cm = approx_cdf(min, &dm);
  /* d pin / d log_scale = -pin, d min / d log_scale = -min */
  double lp, g;
  if (x < -0.999) {
    lp = log(cp > 1e-12 ? cp : 1e-12);
    g = cp > 1e-12 ? -dp * pin / cp : 0.0;
  } else if (x > 0.999) {
    double q = 1.0 - cm;
    lp = log(q > 1e-12 ? q : 1e-12);
    g = q > 1e-12 ? dm * min / q : 0.0;
  } else {
    double delta = cp - cm;
    lp = log(delta > 1e-12 ? delta : 1e-12);
    g = delta > 1e-12 ? (-dp * pin + dm * min) / delta : 0.0;
  }
  if (dls) *dls = g;
  return lp;
}

rn_status rn_discretized_gaussian_log_likelihood(rn_tensor **out, rn_tensor *x, rn_tensor *mean,
                                                 rn_tensor *log_scale) {
  if (!out) return rn_error(RN_ERR_ARG, "discretized_gaussian_log_likelihood: no output pointer");
  *out = NULL;
  RN_TRY(check_same(x, mean, "discretized_gaussian_log_likelihood", "x", "mean"));
  RN_TRY(check_same(x, log_scale, "discretized_gaussian_log_likelihood", "x", "log_scale"));
  rn_tensor *h[3] = {NULL}, *o = NULL, *in[3] = {x, mean, log_scale};
  rn_status st = RN_OK;
  for (int i = 0; i < 3 && st == RN_OK; i++) st = rn_sdas_host(&h[i], in[i], "discretized_gaussian_log_likelihood");
  if (st == RN_OK) st = rn_tensor_empty(&o, x->ndim, x->shape, RN_F32, rn_cpu());
  if (st == RN_OK) {
    const float *a = rn_f32(h[0]), *m = rn_f32(h[1]), *ls = rn_f32(h[2]);
    float *y = rn_f32(o);
    for (int64_t i = 0, N = rn_tensor_numel(o); i < N; i++) y[i] = (float)rn_sdas_decoder_loglik(a[i], m[i], ls[i], NULL);
    st = rn_sdas_to_device_of(&o, x);
  }
  for (int i = 0; i < 3; i++) rn_tensor_release(h[i]);
  if (st != RN_OK) { rn_tensor_release(o); return st; }
  *out = o;
  return RN_OK;
}
