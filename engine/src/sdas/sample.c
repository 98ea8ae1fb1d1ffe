/* sample.c - SDAS reverse steps with strength s (Algorithm 1: ancestral; Algorithm S1: DDIM) and the full
 * sampling loop over a model callback. */
#include "internal.h"
#include "sdas_internal.h"

/* Shared front of both steps: host copies of model_out, x_t and z, plus the output; checks s. */
typedef struct { rn_tensor *m, *x, *z, *o; int64_t B, C, n, hw; } step_io;

static void step_free(step_io *io) {
  rn_tensor_release(io->m); rn_tensor_release(io->x); rn_tensor_release(io->z); rn_tensor_release(io->o);
}

static rn_status step_begin(step_io *io, const rn_diffusion *d, rn_tensor *mo, rn_tensor *xt, int t, rn_tensor *z,
                            const double *s, const char *op) {
  memset(io, 0, sizeof *io);
  RN_TRY(rn_sdas_check_model_out(d, mo, xt, &io->C, &io->n, op));
  if (t < 0 || t >= d->K) return rn_error(RN_ERR_ARG, "%s: step %d is outside 0..%d", op, t, d->K - 1);
  RN_TRY(rn_check_f32(z, op));
  if (!rn_tensor_same_shape(z, xt)) {
    char a[64], b[64];
    return rn_error(RN_ERR_SHAPE, "%s: noise %s and x_t %s differ in shape", op, rn_shape_str(z, a, 64),
                    rn_shape_str(xt, b, 64));
  }
  io->B = xt->shape[0];
  io->hw = io->C ? io->n / io->C : 0;
  for (int64_t b = 0; s && b < io->B; b++)
    if (!(s[b] >= 0) || isinf(s[b]))
      return rn_error(RN_ERR_ARG, "%s: strength s = %g of sample %lld must be a finite number >= 0", op, s[b],
                      (long long)b);
  rn_status st = rn_sdas_host(&io->m, mo, op);
  if (st == RN_OK) st = rn_sdas_host(&io->x, xt, op);
  if (st == RN_OK) st = rn_sdas_host(&io->z, z, op);
  if (st == RN_OK) st = rn_tensor_empty(&io->o, xt->ndim, xt->shape, RN_F32, rn_cpu());
  if (st != RN_OK) step_free(io);
  return st;
}

static rn_status step_end(step_io *io, rn_tensor **out, rn_tensor *xt) {
  rn_status st = rn_sdas_to_device_of(&io->o, xt);
  if (st == RN_OK) { *out = io->o; io->o = NULL; }
  step_free(io);
  return st;
}

rn_status rn_diffusion_ancestral_step(rn_tensor **out, const rn_diffusion *d, rn_tensor *model_out, rn_tensor *xt,
                                      int t, rn_tensor *z, const double *s, bool clip) {
  if (!out) return rn_error(RN_ERR_ARG, "ancestral_step: no output pointer");
  *out = NULL;
  step_io io;
  RN_TRY(step_begin(&io, d, model_out, xt, t, z, s, "ancestral_step"));
  const float *m = rn_f32(io.m), *x = rn_f32(io.x), *zz = rn_f32(io.z);
  float *y = rn_f32(io.o);
  double ac = d->tab[RN_DF_ALPHAS_CUMPROD][t], r = sqrt(1.0 / ac), rm1 = sqrt(1.0 / ac - 1.0);
  double c1 = d->tab[RN_DF_POSTERIOR_MEAN_COEF1][t], c2 = d->tab[RN_DF_POSTERIOR_MEAN_COEF2][t];
  int64_t mc = d->learn_sigma ? 2 * io.C : io.C;
  for (int64_t b = 0; b < io.B; b++) {
    double amp = t != 0 ? sqrt(1.0 + (s ? s[b] : 0.0)) : 0.0;
    for (int64_t c = 0; c < io.C; c++)
      for (int64_t j = 0; j < io.hw; j++) {
        int64_t i = b * io.n + c * io.hw + j, ie = b * mc * io.hw + c * io.hw + j;
        double px = r * x[i] - rm1 * m[ie];
        if (clip) px = px < -1 ? -1 : (px > 1 ? 1 : px);
        /* mean and log-variance rounded to float as p_mean_variance returns them, so that s = 0 equals a
         * loop over p_mean_variance bit for bit */
        float mu = (float)(c1 * px + c2 * x[i]);
        float lv = (float)rn_sdas_model_logvar(d, t, d->learn_sigma ? m[ie + io.C * io.hw] : 0.0);
        y[i] = (float)(mu + amp * exp(0.5 * lv) * zz[i]);
      }
  }
  return step_end(&io, out, xt);
}

rn_status rn_diffusion_ddim_step(rn_tensor **out, const rn_diffusion *d, rn_tensor *model_out, rn_tensor *xt,
                                 int t, rn_tensor *z, const double *s, double eta, rn_sigma_kind sigma, bool clip) {
  if (!out) return rn_error(RN_ERR_ARG, "ddim_step: no output pointer");
  *out = NULL;
  if (!(eta >= 0) || isinf(eta)) return rn_error(RN_ERR_ARG, "ddim_step: eta = %g must be a finite number >= 0", eta);
  if (sigma < RN_SIGMA_BETA || sigma > RN_SIGMA_LEARNED)
    return rn_error(RN_ERR_ARG, "ddim_step: unknown perturbation variance %d", (int)sigma);
  step_io io;
  RN_TRY(step_begin(&io, d, model_out, xt, t, z, s, "ddim_step"));
  const float *m = rn_f32(io.m), *x = rn_f32(io.x), *zz = rn_f32(io.z);
  float *y = rn_f32(io.o);
  double ac = d->tab[RN_DF_ALPHAS_CUMPROD][t], acp = d->tab[RN_DF_ALPHAS_CUMPROD_PREV][t];
  double r = sqrt(1.0 / ac), rm1 = sqrt(1.0 / ac - 1.0);
  double sig = eta * sqrt((1.0 - acp) / (1.0 - ac)) * sqrt(1.0 - ac / acp);
  double ceps = sqrt(fmax(1.0 - acp - sig * sig, 0.0));
  int64_t mc = d->learn_sigma ? 2 * io.C : io.C;
  for (int64_t b = 0; b < io.B; b++) {
    double sb = s ? s[b] : 0.0, on = t != 0 ? 1.0 : 0.0;
    for (int64_t c = 0; c < io.C; c++)
      for (int64_t j = 0; j < io.hw; j++) {
        int64_t i = b * io.n + c * io.hw + j, ie = b * mc * io.hw + c * io.hw + j;
        double px = r * x[i] - rm1 * m[ie];
        if (clip) px = px < -1 ? -1 : (px > 1 ? 1 : px);
        double eps = (r * x[i] - px) / rm1;      /* eps consistent with the (clipped) x0 */
        double var = sigma == RN_SIGMA_BETA ? d->tab[RN_DF_BETAS][t]
                   : sigma == RN_SIGMA_BETA_TILDE ? d->tab[RN_DF_POSTERIOR_VARIANCE][t]
                   : exp(rn_sdas_model_logvar(d, t, d->learn_sigma ? m[ie + io.C * io.hw] : 0.0));
        y[i] = (float)(sqrt(acp) * px + ceps * eps + on * (sig + sqrt(sb * var)) * zz[i]);
      }
  }
  return step_end(&io, out, xt);
}

/* Strengths of one batch: fixed, one U[lo, hi] draw, or one draw per image. */
static void draw_strengths(double *s, int64_t B, const rn_sampler_opts *o, rn_rng *g) {
  if (o->s_lo == o->s_hi) { for (int64_t b = 0; b < B; b++) s[b] = o->s_lo; return; }
  double shared = o->s_lo + (o->s_hi - o->s_lo) * rn_rng_double(g);
  for (int64_t b = 0; b < B; b++)
    s[b] = o->s_per_image ? (b == 0 ? shared : o->s_lo + (o->s_hi - o->s_lo) * rn_rng_double(g)) : shared;
}

rn_status rn_diffusion_sample(rn_tensor **out, double *s_out, const rn_diffusion *d, rn_diffusion_model_fn f,
                              void *ud, int ndim, const int64_t *shape, const rn_sampler_opts *o, rn_rng *noise,
                              rn_rng *strength) {
  if (!out) return rn_error(RN_ERR_ARG, "sample: no output pointer");
  *out = NULL;
  if (!d || !f || !o || !noise || !strength || !shape)
    return rn_error(RN_ERR_ARG, "sample: missing diffusion, model, options, shape or generator");
  if (ndim < 2 || ndim > RN_MAX_DIMS) return rn_error(RN_ERR_SHAPE, "sample: shape needs 2..%d dims, got %d",
                                                      RN_MAX_DIMS, ndim);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 1) return rn_error(RN_ERR_SHAPE, "sample: shape entry %d is %lld, must be positive", i + 1,
                                      (long long)shape[i]);
  if (!(o->s_lo >= 0) || !(o->s_hi >= o->s_lo) || isinf(o->s_hi))
    return rn_error(RN_ERR_ARG, "sample: strength range [%g, %g] must satisfy 0 <= a <= b (finite); a negative "
                    "strength would shrink the injected noise", o->s_lo, o->s_hi);
  if (o->method != RN_SAMPLE_ANCESTRAL && o->method != RN_SAMPLE_DDIM)
    return rn_error(RN_ERR_ARG, "sample: unknown method %d", (int)o->method);
  int64_t B = shape[0];
  double *s = malloc(sizeof(double) * (size_t)B);
  float *tau = malloc(sizeof(float) * (size_t)B);
  if (!s || !tau) { free(s); free(tau); return rn_error(RN_ERR_OOM, "sample: out of memory"); }
  draw_strengths(s, B, o, strength);
  rn_tensor *x = NULL;
  rn_status st = rn_tensor_empty(&x, ndim, shape, RN_F32, rn_cpu());
  if (st == RN_OK) st = rn_rng_normal_(noise, x, 0.f, 1.f);
  if (st == RN_OK && o->device.type != RN_CPU) {
    rn_tensor *m = NULL;
    st = rn_to_device(&m, x, o->device);
    rn_tensor_release(x);
    x = m;
  }
  rn_nograd_scope ng = rn_nograd_begin();
  for (int t = d->K - 1; st == RN_OK && t >= 0; t--) {
    rn_tensor *tt = NULL, *mo = NULL, *z = NULL, *nx = NULL;
    for (int64_t b = 0; b < B; b++) tau[b] = (float)d->map[t];
    st = rn_tensor_from_data(&tt, 1, &B, RN_F32, tau);
    if (st == RN_OK) st = rn_sdas_to_device_of(&tt, x);
    if (st == RN_OK) st = f(ud, x, tt, &mo);
    if (st == RN_OK && !mo) st = rn_error(RN_ERR_ARG, "sample: the model returned no tensor");
    if (st == RN_OK) st = rn_tensor_empty(&z, ndim, shape, RN_F32, rn_cpu());
    if (st == RN_OK) st = rn_rng_normal_(noise, z, 0.f, 1.f);
    if (st == RN_OK) st = rn_sdas_to_device_of(&z, x);
    if (st == RN_OK)
      st = o->method == RN_SAMPLE_ANCESTRAL ? rn_diffusion_ancestral_step(&nx, d, mo, x, t, z, s, o->clip)
                                            : rn_diffusion_ddim_step(&nx, d, mo, x, t, z, s, o->eta, o->sigma, o->clip);
    rn_tensor_release(tt); rn_tensor_release(mo); rn_tensor_release(z);
    if (st == RN_OK) { rn_tensor_release(x); x = nx; }
  }
  rn_nograd_end(ng);
  if (st == RN_OK && s_out) memcpy(s_out, s, sizeof(double) * (size_t)B);
  free(s); free(tau);
  if (st != RN_OK) { rn_tensor_release(x); return st; }
  *out = x;
  return RN_OK;
}
