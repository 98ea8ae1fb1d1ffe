/* test_diffusion.c - SDAS diffusion process: schedules and respacing against numpy (gen_diffusion.py) and the
 * numbers quoted in spec 11.2, the Gaussian KL and decoder NLL by hand and against numpy, the VB term and its
 * gradient, the sampling steps (s = 0 is plain ancestral sampling) and bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "realnet/diffusion.h"
#include "testutil.h"

static rn_diffusion *make(const char *sched, int T, bool learn, const char *respace) {
  rn_diffusion_config c = {.steps = T, .schedule = sched, .learn_sigma = learn, .respace = respace};
  rn_diffusion *d = NULL;
  CHECK_OK(rn_diffusion_new(&d, &c));
  return d;
}

/* Table of d against a fixture (float64 stored, read as float32): relative 2e-7. */
static void check_table(const rn_diffusion *d, rn_diffusion_field f, const char *fixture) {
  rn_tensor *ref = test_fixture(fixture);
  if (!ref) return;
  CHECK(rn_tensor_numel(ref) == rn_diffusion_steps(d));
  const double *v = rn_diffusion_table(d, f);
  const float *r = rn_f32(ref);
  int bad = 0;
  for (int i = 0; i < rn_diffusion_steps(d) && i < rn_tensor_numel(ref); i++)
    if (fabs(v[i] - r[i]) > 2e-7 * fabs(r[i]) + 1e-30) bad++;
  if (bad) printf("  %s: %d entries differ\n", fixture, bad);
  CHECK(bad == 0);
  rn_tensor_release(ref);
}

static void check_map(const char *spec, const char *fixture) {
  int64_t *keep = NULL;
  int n = 0;
  CHECK_OK(rn_space_timesteps(1000, spec, &keep, &n));
  rn_tensor *ref = test_fixture(fixture);
  if (ref && keep) {
    CHECK(n == rn_tensor_numel(ref));
    const int64_t *r = (const int64_t *)rn_tensor_data(ref);
    int bad = 0;
    for (int i = 0; i < n && i < rn_tensor_numel(ref); i++) bad += keep[i] != r[i];
    CHECK(bad == 0);
  }
  rn_tensor_release(ref);
  free(keep);
}

static void test_schedules(void) {
  rn_diffusion *d = make("linear", 1000, true, NULL);
  const double *ac = rn_diffusion_table(d, RN_DF_ALPHAS_CUMPROD);
  CHECK_NEAR(ac[0], 0.9999, 1e-12);                    /* spec 11.2 check values */
  CHECK_NEAR(ac[499], 7.86e-2, 5e-5);
  CHECK_NEAR(ac[999], 4.04e-5, 5e-8);
  const char *names[] = {"betas", "alphas_cumprod", "alphas_cumprod_prev", "alphas_cumprod_next",
                         "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1",
                         "posterior_mean_coef2"};
  for (int f = 0; f < RN_DF_COUNT; f++) {
    char path[128];
    snprintf(path, sizeof path, "diffusion/linear1000_%s.npy", names[f]);
    CHECK(strcmp(rn_diffusion_field_name((rn_diffusion_field)f), names[f]) == 0);
    if (f != RN_DF_POSTERIOR_VARIANCE || 1) check_table(d, (rn_diffusion_field)f, path);
  }
  CHECK(rn_diffusion_timestep_map(d)[999] == 999);
  rn_diffusion_release(d);

  d = make("cosine", 1000, true, "");
  check_table(d, RN_DF_BETAS, "diffusion/cosine1000_betas.npy");
  rn_diffusion_release(d);

  d = make("linear", 1000, true, "ddim20");
  CHECK(rn_diffusion_steps(d) == 20 && rn_diffusion_base_steps(d) == 1000);
  const double *b = rn_diffusion_table(d, RN_DF_BETAS);
  CHECK_NEAR(b[0], 1e-4, 1e-12);                       /* spec 11.2: beta'_0, beta'_1, beta'_2, beta'_19 */
  CHECK_NEAR(b[1], 0.02995, 5e-6);
  CHECK_NEAR(b[2], 0.07713, 5e-6);
  CHECK_NEAR(b[19], 0.6076, 5e-5);
  for (int k = 0; k < 20; k++) CHECK(rn_diffusion_timestep_map(d)[k] == 50 * k);
  check_table(d, RN_DF_BETAS, "diffusion/ddim20_betas.npy");
  check_table(d, RN_DF_ALPHAS_CUMPROD, "diffusion/ddim20_alphas_cumprod.npy");
  check_table(d, RN_DF_POSTERIOR_LOG_VARIANCE_CLIPPED, "diffusion/ddim20_posterior_log_variance_clipped.npy");
  check_table(d, RN_DF_POSTERIOR_MEAN_COEF1, "diffusion/ddim20_posterior_mean_coef1.npy");
  check_table(d, RN_DF_POSTERIOR_MEAN_COEF2, "diffusion/ddim20_posterior_mean_coef2.npy");
  /* respacing keeps alpha_bar at the kept steps */
  rn_diffusion *full = make("linear", 1000, true, "ddim1000");
  CHECK(rn_diffusion_steps(full) == 1000);
  CHECK_NEAR(rn_diffusion_table(d, RN_DF_ALPHAS_CUMPROD)[7], rn_diffusion_table(full, RN_DF_ALPHAS_CUMPROD)[350],
             1e-14);
  rn_diffusion_release(full);
  rn_diffusion_release(d);

  check_map("ddim20", "diffusion/map_ddim20.npy");
  check_map("250", "diffusion/map_250.npy");
  check_map("10,15,20", "diffusion/map_10_15_20.npy");
  check_map("3,1,0,7", "diffusion/map_3_1_0_7.npy");
}

static void test_bad_config(void) {
  rn_diffusion *d = NULL;
  rn_diffusion_config c = {.steps = 1000, .schedule = "quadratic", .learn_sigma = true};
  CHECK_ERR(rn_diffusion_new(&d, &c), RN_ERR_ARG, "quadratic");
  c.schedule = "linear";
  c.respace = "ddim999";
  CHECK_ERR(rn_diffusion_new(&d, &c), RN_ERR_ARG, "stride");
  c.respace = "600,600";
  CHECK_ERR(rn_diffusion_new(&d, &c), RN_ERR_ARG, "section");
  c.respace = "ten";
  CHECK_ERR(rn_diffusion_new(&d, &c), RN_ERR_ARG, "comma");
  c.respace = "ddim1";
  CHECK_ERR(rn_diffusion_new(&d, &c), RN_ERR_ARG, "at least 2");
  c.respace = NULL;
  c.steps = 1;
  CHECK_ERR(rn_diffusion_new(&d, &c), RN_ERR_ARG, "steps");
  CHECK(d == NULL);
}

static void test_kl_nll(void) {
  /* by hand: KL(N(0,1) || N(1, e^2)) = 0.5 (-1 + 2 - 0 + e^-2 + e^-2) */
  float m1v = 0, lv1v = 0, m2v = 1, lv2v = 2;
  int64_t one = 1;
  rn_tensor *m1 = NULL, *lv1 = NULL, *m2 = NULL, *lv2 = NULL, *kl = NULL;
  CHECK_OK(rn_tensor_from_data(&m1, 1, &one, RN_F32, &m1v));
  CHECK_OK(rn_tensor_from_data(&lv1, 1, &one, RN_F32, &lv1v));
  CHECK_OK(rn_tensor_from_data(&m2, 1, &one, RN_F32, &m2v));
  CHECK_OK(rn_tensor_from_data(&lv2, 1, &one, RN_F32, &lv2v));
  CHECK_OK(rn_normal_kl(&kl, m1, lv1, m2, lv2));
  CHECK_NEAR(rn_f32(kl)[0], 0.5 * (1 + 2 * exp(-2.0)), 1e-6);
  rn_tensor_release(kl);
  CHECK_OK(rn_normal_kl(&kl, m1, lv1, m1, lv1));                  /* identical Gaussians: 0 */
  CHECK_NEAR(rn_f32(kl)[0], 0.0, 1e-7);
  rn_tensor_release(kl);
  /* decoder NLL by hand: x = 0, mean 0, scale 1/255 -> bin +-1 sigma: Phi(1) - Phi(-1) ~ 0.682689 (tanh approx) */
  float ls = (float)log(1.0 / 255.0);
  rn_tensor *lsv = NULL, *ll = NULL;
  CHECK_OK(rn_tensor_from_data(&lsv, 1, &one, RN_F32, &ls));
  CHECK_OK(rn_discretized_gaussian_log_likelihood(&ll, m1, m1, lsv));
  double k = sqrt(2 / M_PI), ap = 0.5 * (1 + tanh(k * (1 + 0.044715)));
  CHECK_NEAR(rn_f32(ll)[0], log(2 * ap - 1), 1e-6);
  CHECK_NEAR(rn_f32(ll)[0], log(0.682689), 2e-3);                 /* the approximation is close to exact Phi */
  rn_tensor_release(ll);
  /* x = 1 (upper tail): log(1 - Phi((1 - 1/255 - mean)/s)) with mean 1 -> log(1 - Phi(-1)) */
  float onev = 1;
  rn_tensor *xo = NULL;
  CHECK_OK(rn_tensor_from_data(&xo, 1, &one, RN_F32, &onev));
  CHECK_OK(rn_discretized_gaussian_log_likelihood(&ll, xo, xo, lsv));
  CHECK_NEAR(rn_f32(ll)[0], log(ap), 1e-6);
  rn_tensor_release(ll);
  rn_tensor *bad = test_randn(1, (int64_t[]){2}, 1, 1.f);
  CHECK_ERR(rn_normal_kl(&kl, m1, lv1, bad, lv2), RN_ERR_SHAPE, "mean2");
  rn_tensor_release(bad);
  rn_tensor *ts[] = {m1, lv1, m2, lv2, lsv, xo};
  for (int i = 0; i < 6; i++) rn_tensor_release(ts[i]);

  /* against numpy on random inputs */
  rn_tensor *a = test_fixture("diffusion/kl_m1.npy"), *b = test_fixture("diffusion/kl_lv1.npy"),
            *c = test_fixture("diffusion/kl_m2.npy"), *e = test_fixture("diffusion/kl_lv2.npy"),
            *r = test_fixture("diffusion/kl.npy");
  if (a && b && c && e && r) {
    CHECK_OK(rn_normal_kl(&kl, a, b, c, e));
    test_check_close(kl, r, 1e-6, 1e-5, "normal_kl vs numpy");
    rn_tensor_release(kl);
  }
  rn_tensor *xs[] = {a, b, c, e, r};
  for (int i = 0; i < 5; i++) rn_tensor_release(xs[i]);
  a = test_fixture("diffusion/nll_x.npy"); b = test_fixture("diffusion/nll_mean.npy");
  c = test_fixture("diffusion/nll_log_scale.npy"); r = test_fixture("diffusion/nll_loglik.npy");
  if (a && b && c && r) {
    CHECK_OK(rn_discretized_gaussian_log_likelihood(&ll, a, b, c));
    test_check_close(ll, r, 1e-5, 1e-5, "decoder log-likelihood vs numpy");
    rn_tensor_release(ll);
  }
  rn_tensor *ys[] = {a, b, c, r};
  for (int i = 0; i < 4; i++) rn_tensor_release(ys[i]);
}

typedef struct { rn_diffusion *d; rn_tensor *eps, *x0, *xt, *t; } vb_ctx;

/* vb as a function of v alone (the eps channels are held fixed: their gradient is stopped by design). */
static rn_status vb_fn(rn_tensor **out, rn_tensor **in, void *ud) {
  vb_ctx *c = ud;
  rn_tensor *parts[2] = {c->eps, in[0]}, *mo = NULL;
  RN_TRY(rn_concat(&mo, 2, parts, 1));
  rn_status st = rn_diffusion_vb(out, c->d, mo, c->x0, c->xt, c->t);
  rn_tensor_release(mo);
  return st;
}

static void test_vb(void) {
  rn_diffusion *d = make("linear", 1000, true, "ddim20");
  rn_tensor *x0 = test_fixture("diffusion/vb_x0.npy"), *xt = test_fixture("diffusion/vb_xt.npy"),
            *noise = test_fixture("diffusion/vb_noise.npy"), *mo = test_fixture("diffusion/vb_model_out.npy"),
            *t = test_fixture("diffusion/vb_t.npy"), *rvb = test_fixture("diffusion/vb_vb.npy"),
            *rmse = test_fixture("diffusion/vb_mse.npy"), *rmean = test_fixture("diffusion/pmv_mean.npy"),
            *rlv = test_fixture("diffusion/pmv_logvar.npy"), *rx0 = test_fixture("diffusion/pmv_x0.npy");
  if (x0 && xt && noise && mo && t && rvb && rmse && rmean && rlv && rx0) {
    rn_tensor *mean = NULL, *lv = NULL, *px = NULL, *vb = NULL, *mse = NULL, *loss = NULL;
    CHECK_OK(rn_diffusion_p_mean_variance(d, mo, xt, t, true, &mean, &lv, &px));
    test_check_close(mean, rmean, 1e-5, 1e-4, "p_mean_variance mean");
    test_check_close(lv, rlv, 1e-5, 1e-5, "p_mean_variance logvar");
    test_check_close(px, rx0, 1e-5, 1e-4, "p_mean_variance x0");
    rn_tensor *q = NULL;                          /* q_sample reproduces the fixture's x_t */
    CHECK_OK(rn_diffusion_q_sample(&q, d, x0, t, noise));
    test_check_close(q, xt, 1e-6, 1e-5, "q_sample");
    CHECK_OK(rn_diffusion_hybrid_loss(&loss, &mse, &vb, d, mo, x0, xt, t, noise));
    test_check_close(vb, rvb, 1e-5, 1e-4, "vb term (decoder NLL at t = 0, KL else)");
    test_check_close(mse, rmse, 1e-6, 1e-5, "mse term");
    const float *v = rn_f32(vb), *m = rn_f32(mse);
    CHECK_NEAR(rn_f32(loss)[0], (v[0] + v[1] + v[2] + m[0] + m[1] + m[2]) / 3, 1e-5);
    rn_tensor *ts[] = {mean, lv, px, vb, mse, loss, q};
    for (int i = 0; i < 7; i++) rn_tensor_release(ts[i]);

    /* gradient: finite differences on the v channels; eps channels get exactly 0 (stop-grad) */
    rn_tensor *mg = NULL, *ev = NULL, *vv = NULL, *vin = NULL;
    CHECK_OK(rn_narrow(&ev, mo, 1, 0, 2));
    CHECK_OK(rn_narrow(&vv, mo, 1, 2, 2));
    CHECK_OK(rn_clone(&vin, vv));
    rn_set_requires_grad(vin, true);
    vb_ctx ctx = {d, ev, x0, xt, t};
    test_gradcheck("diffusion_vb", vb_fn, 1, &vin, &ctx, 1e-3, 2e-3, 2e-2);
    rn_tensor_release(ev); rn_tensor_release(vv); rn_tensor_release(vin);
    CHECK_OK(rn_clone(&mg, mo));
    rn_set_requires_grad(mg, true);
    rn_tensor *o = NULL;
    CHECK_OK(rn_diffusion_hybrid_loss(&o, NULL, NULL, d, mg, x0, xt, t, noise));
    CHECK_OK(rn_backward(o, NULL));
    if (mg->grad) {  /* eps grad = mse grad only: -2 (noise - eps) / (n B) */
      const float *g = rn_f32(mg->grad), *mm = rn_f32(mo), *nz = rn_f32(noise);
      double worst = 0;
      for (int i = 0; i < 32; i++) worst = fmax(worst, fabs(g[i] + 2.0 * (nz[i] - mm[i]) / (32 * 3)));
      CHECK(worst < 1e-6);
    }
    CHECK(mg->grad != NULL);
    rn_tensor_release(o); rn_tensor_release(mg);

    /* bad input */
    rn_tensor *bt = NULL;
    int64_t three = 3;
    int64_t tv[3] = {0, 20, 1};
    CHECK_OK(rn_tensor_from_data(&bt, 1, &three, RN_I64, tv));
    CHECK_ERR(rn_diffusion_vb(&o, d, mo, x0, xt, bt), RN_ERR_ARG, "outside 0..19");
    rn_tensor_release(bt);
    CHECK_ERR(rn_diffusion_vb(&o, d, xt, x0, xt, t), RN_ERR_SHAPE, "eps and v");
    CHECK_ERR(rn_diffusion_q_sample(&o, d, x0, t, mo), RN_ERR_SHAPE, "noise");
  }
  rn_tensor *xs[] = {x0, xt, noise, mo, t, rvb, rmse, rmean, rlv, rx0};
  for (int i = 0; i < 10; i++) rn_tensor_release(xs[i]);
  rn_diffusion_release(d);
}

/* A tiny deterministic "model": eps = 0.5 x, v = tanh(x) (channels doubled), depending on tau a little. */
typedef struct { int calls; } toy_ctx;
static rn_status toy_model(void *ud, rn_tensor *x, rn_tensor *tau, rn_tensor **out) {
  ((toy_ctx *)ud)->calls++;
  int64_t shape[4] = {x->shape[0], 2 * x->shape[1], x->shape[2], x->shape[3]};
  RN_TRY(rn_tensor_empty(out, 4, shape, RN_F32, rn_cpu()));
  int64_t B = x->shape[0], n = rn_tensor_numel(x) / B;
  const float *xv = rn_f32(x), *tv = rn_f32(tau);
  float *o = rn_f32(*out);
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < n; i++) {
      o[b * 2 * n + i] = 0.5f * xv[b * n + i] + 1e-4f * tv[b];
      o[b * 2 * n + n + i] = tanhf(xv[b * n + i]);
    }
  return RN_OK;
}

/* Plain ancestral sampling written out with p_mean_variance, for the s = 0 comparison. */
static rn_tensor *plain_ancestral(rn_diffusion *d, const int64_t *shape, uint64_t seed) {
  rn_rng g;
  rn_rng_init(&g, seed, 0);
  rn_tensor *x = NULL;
  CHECK_OK(rn_tensor_empty(&x, 4, shape, RN_F32, rn_cpu()));
  CHECK_OK(rn_rng_normal_(&g, x, 0, 1));
  toy_ctx tc = {0};
  for (int k = rn_diffusion_steps(d) - 1; k >= 0; k--) {
    float tau[2] = {(float)rn_diffusion_timestep_map(d)[k], (float)rn_diffusion_timestep_map(d)[k]};
    int64_t B = shape[0], tk[2] = {k, k};
    rn_tensor *tt = NULL, *ti = NULL, *mo = NULL, *mean = NULL, *lv = NULL, *z = NULL;
    CHECK_OK(rn_tensor_from_data(&tt, 1, &B, RN_F32, tau));
    CHECK_OK(rn_tensor_from_data(&ti, 1, &B, RN_I64, tk));
    CHECK_OK(toy_model(&tc, x, tt, &mo));
    CHECK_OK(rn_diffusion_p_mean_variance(d, mo, x, ti, true, &mean, &lv, NULL));
    CHECK_OK(rn_tensor_empty(&z, 4, shape, RN_F32, rn_cpu()));
    CHECK_OK(rn_rng_normal_(&g, z, 0, 1));
    float *xv = rn_f32(x), *mv = rn_f32(mean), *lvv = rn_f32(lv), *zv = rn_f32(z);
    for (int64_t i = 0; i < rn_tensor_numel(x); i++)
      xv[i] = (float)(mv[i] + (k != 0 ? exp(0.5 * lvv[i]) * zv[i] : 0.0));
    rn_tensor *ts[] = {tt, ti, mo, mean, lv, z};
    for (int i = 0; i < 6; i++) rn_tensor_release(ts[i]);
  }
  return x;
}

static void test_sampling(void) {
  rn_diffusion *d = make("linear", 1000, true, "ddim20");
  int64_t shape[4] = {2, 3, 4, 4};
  rn_sampler_opts o = {.method = RN_SAMPLE_ANCESTRAL, .clip = true};
  rn_rng g, gs;
  rn_rng_init(&g, 7, 0); rn_rng_init(&gs, 7, 1);
  toy_ctx tc = {0};
  rn_tensor *x0 = NULL, *x1 = NULL, *x2 = NULL, *ref = plain_ancestral(d, shape, 7);
  double s[2] = {-1, -1};
  CHECK_OK(rn_diffusion_sample(&x0, s, d, toy_model, &tc, 4, shape, &o, &g, &gs));
  CHECK(tc.calls == 20);
  CHECK(s[0] == 0 && s[1] == 0);
  CHECK(x0 && ref && test_max_abs_diff(x0, ref) == 0.0);          /* s = 0: plain ancestral, bit for bit */
  /* s > 0 from the same noise differs and carries more noise; per-image draws lie in [a, b] */
  rn_rng_init(&g, 7, 0); rn_rng_init(&gs, 7, 1);
  o.s_lo = 0.1; o.s_hi = 0.2; o.s_per_image = true;
  CHECK_OK(rn_diffusion_sample(&x1, s, d, toy_model, &tc, 4, shape, &o, &g, &gs));
  CHECK(s[0] >= 0.1 && s[0] <= 0.2 && s[1] >= 0.1 && s[1] <= 0.2 && s[0] != s[1]);
  CHECK(x1 && test_max_abs_diff(x1, x0) > 0);
  /* DDIM with eta = 0 and s = 0 is deterministic given x_K: two runs with different step noise agree */
  o.method = RN_SAMPLE_DDIM; o.s_lo = o.s_hi = 0; o.sigma = RN_SIGMA_LEARNED;
  rn_rng_init(&g, 7, 0); rn_rng_init(&gs, 7, 1);
  CHECK_OK(rn_diffusion_sample(&x2, NULL, d, toy_model, &tc, 4, shape, &o, &g, &gs));
  rn_tensor *xa = NULL, *xk = NULL, *z1 = NULL, *z2 = NULL, *mo = NULL, *s1 = NULL, *s2 = NULL;
  xa = test_randn(4, shape, 3, 1.f); z1 = test_randn(4, shape, 4, 1.f); z2 = test_randn(4, shape, 5, 1.f);
  float tau[2] = {500, 500};
  CHECK_OK(rn_tensor_from_data(&xk, 1, &shape[0], RN_F32, tau));
  CHECK_OK(toy_model(&tc, xa, xk, &mo));
  CHECK_OK(rn_diffusion_ddim_step(&s1, d, mo, xa, 10, z1, NULL, 0.0, RN_SIGMA_BETA, true));
  CHECK_OK(rn_diffusion_ddim_step(&s2, d, mo, xa, 10, z2, NULL, 0.0, RN_SIGMA_BETA, true));
  CHECK(test_max_abs_diff(s1, s2) == 0.0);
  rn_tensor_release(s2);
  double sv[2] = {0.02, 0.02};                                     /* the strength term: sqrt(s beta_t) z */
  CHECK_OK(rn_diffusion_ddim_step(&s2, d, mo, xa, 10, z1, sv, 0.0, RN_SIGMA_BETA, true));
  double want = sqrt(0.02 * rn_diffusion_table(d, RN_DF_BETAS)[10]) * rn_f32(z1)[5];
  CHECK_NEAR(rn_f32(s2)[5] - rn_f32(s1)[5], want, 1e-5);
  rn_tensor_release(s2);
  /* ancestral step by hand at one element: mu + sqrt(1+s) sigma z; last step adds no noise */
  rn_tensor *a0 = NULL, *a1 = NULL, *mean = NULL, *lv = NULL, *ti = NULL;
  int64_t tk[2] = {10, 10};
  CHECK_OK(rn_tensor_from_data(&ti, 1, &shape[0], RN_I64, tk));
  CHECK_OK(rn_diffusion_p_mean_variance(d, mo, xa, ti, true, &mean, &lv, NULL));
  double s3[2] = {0.3, 0.0};
  CHECK_OK(rn_diffusion_ancestral_step(&a0, d, mo, xa, 10, z1, s3, true));
  CHECK_NEAR(rn_f32(a0)[3], rn_f32(mean)[3] + sqrt(1.3) * exp(0.5 * rn_f32(lv)[3]) * rn_f32(z1)[3], 1e-5);
  CHECK_OK(rn_diffusion_ancestral_step(&a1, d, mo, xa, 0, z1, s3, true));
  rn_tensor_release(mean); rn_tensor_release(lv); mean = lv = NULL;
  tk[0] = tk[1] = 0;
  rn_tensor_release(ti);
  CHECK_OK(rn_tensor_from_data(&ti, 1, &shape[0], RN_I64, tk));
  CHECK_OK(rn_diffusion_p_mean_variance(d, mo, xa, ti, true, &mean, NULL, NULL));
  CHECK(test_max_abs_diff(a1, mean) == 0.0);
  /* a negative strength is a clear error */
  double neg[2] = {-0.1, 0.1};
  rn_tensor *bad = NULL;
  CHECK_ERR(rn_diffusion_ancestral_step(&bad, d, mo, xa, 10, z1, neg, true), RN_ERR_ARG, "strength");
  CHECK_ERR(rn_diffusion_ddim_step(&bad, d, mo, xa, 10, z1, neg, 0, RN_SIGMA_BETA, true), RN_ERR_ARG, "strength");
  o.s_lo = -0.1; o.s_hi = 0.2;
  CHECK_ERR(rn_diffusion_sample(&bad, NULL, d, toy_model, &tc, 4, shape, &o, &g, &gs), RN_ERR_ARG, "negative");
  o.s_lo = 0.3; o.s_hi = 0.2;
  CHECK_ERR(rn_diffusion_sample(&bad, NULL, d, toy_model, &tc, 4, shape, &o, &g, &gs), RN_ERR_ARG, "strength");
  CHECK_ERR(rn_diffusion_ancestral_step(&bad, d, mo, xa, 20, z1, NULL, true), RN_ERR_ARG, "outside");
  CHECK_ERR(rn_diffusion_ancestral_step(&bad, d, xa, xa, 3, z1, NULL, true), RN_ERR_SHAPE, "model output");
  rn_tensor *ts[] = {x0, x1, x2, ref, xa, xk, z1, z2, mo, s1, a0, a1, mean, ti};
  for (int i = 0; i < 14; i++) rn_tensor_release(ts[i]);
  rn_diffusion_release(d);
}

int main(void) {
  test_schedules();
  test_bad_config();
  test_kl_nll();
  test_vb();
  test_sampling();
  return test_finish("diffusion");
}
