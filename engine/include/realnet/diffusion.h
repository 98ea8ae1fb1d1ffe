/* diffusion.h - the Gaussian diffusion process of SDAS (improved DDPM with learned-range variance) and its
 * strength-controllable samplers (spec 11.2).
 *
 *   rn_diffusion_config c = {.steps = 1000, .schedule = "linear", .learn_sigma = true, .respace = "ddim20"};
 *   rn_diffusion *d = NULL;
 *   if (rn_diffusion_new(&d, &c) != RN_OK) puts(rn_last_error());
 *   const double *betas = rn_diffusion_table(d, RN_DF_BETAS);       // 20 respaced betas
 *   rn_diffusion_release(d);
 *
 * Schedules are computed in double precision; tensors are float32 [B, C, ...]. A timestep argument `t` is an
 * int64 tensor [B] of steps 0..K-1 of the (respaced) process, where K = rn_diffusion_steps(d) and t = 0 is the
 * last denoising step; the model itself receives the original timestep rn_diffusion_timestep_map(d)[t].
 * Model outputs are [B, 2C, ...] (eps, then v in [-1, 1]) when learn_sigma, else [B, C, ...] (eps; the variance
 * is then the fixed-large one: beta_t, with beta~_1 at t = 0).
 * The math runs on the host in double; inputs on a device are copied and results go back to x_t's device.
 * Ownership and errors follow tensor.h / status.h. A diffusion is immutable after creation and may be shared.
 */
#ifndef REALNET_DIFFUSION_H
#define REALNET_DIFFUSION_H

#include "rng.h"
#include "tensor.h"

typedef struct rn_diffusion rn_diffusion;

typedef struct {
  int steps;              /* T of the base schedule (1000 in the paper) */
  const char *schedule;   /* "linear" (beta 1e-4 .. 0.02 scaled by 1000/T) or "cosine"; NULL = linear */
  bool learn_sigma;       /* model output carries v (learned-range variance) */
  const char *respace;    /* NULL or "" = no respacing; "ddimN"; or comma-separated section counts "10,5,5" */
} rn_diffusion_config;

rn_status rn_diffusion_new(rn_diffusion **out, const rn_diffusion_config *cfg);
rn_diffusion *rn_diffusion_retain(rn_diffusion *d);
void rn_diffusion_release(rn_diffusion *d);

int rn_diffusion_steps(const rn_diffusion *d);          /* K, the number of (respaced) steps */
int rn_diffusion_base_steps(const rn_diffusion *d);     /* T of the base schedule */
bool rn_diffusion_learn_sigma(const rn_diffusion *d);
/* K original timesteps tau_k (borrowed, ascending): the model sees tau_t for process step t. */
const int64_t *rn_diffusion_timestep_map(const rn_diffusion *d);

/* Per-step tables (K doubles each, borrowed). */
typedef enum {
  RN_DF_BETAS, RN_DF_ALPHAS_CUMPROD, RN_DF_ALPHAS_CUMPROD_PREV, RN_DF_ALPHAS_CUMPROD_NEXT,
  RN_DF_POSTERIOR_VARIANCE, RN_DF_POSTERIOR_LOG_VARIANCE_CLIPPED, RN_DF_POSTERIOR_MEAN_COEF1,
  RN_DF_POSTERIOR_MEAN_COEF2, RN_DF_COUNT
} rn_diffusion_field;
const double *rn_diffusion_table(const rn_diffusion *d, rn_diffusion_field f);
const char *rn_diffusion_field_name(rn_diffusion_field f);   /* "betas", "alphas_cumprod", ... */
rn_status rn_diffusion_field_from_name(const char *name, rn_diffusion_field *f);

/* improved-DDPM's space_timesteps: the kept timesteps of 0..T-1 for `spec` ("ddimN" or section counts),
 * ascending, into a malloc'd array (*keep, caller frees) of *n entries. */
rn_status rn_space_timesteps(int64_t T, const char *spec, int64_t **keep, int *n);

/* ---------- process (no autograd unless stated) ---------- */
/* x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise. */
rn_status rn_diffusion_q_sample(rn_tensor **out, const rn_diffusion *d, rn_tensor *x0, rn_tensor *t,
                                rn_tensor *noise);
/* Mean, log-variance and predicted x0 of p(x_{t-1} | x_t) (each [B, C, ...]; pass NULL to skip one).
 * x0 = sqrt(1/abar) x_t - sqrt(1/abar - 1) eps, clamped to [-1, 1] when clip. */
rn_status rn_diffusion_p_mean_variance(const rn_diffusion *d, rn_tensor *model_out, rn_tensor *xt,
                                       rn_tensor *t, bool clip, rn_tensor **mean, rn_tensor **logvar,
                                       rn_tensor **pred_x0);
/* Elementwise KL(N(m1, e^lv1) || N(m2, e^lv2)) in nats (broadcasting of equal shapes only). */
rn_status rn_normal_kl(rn_tensor **out, rn_tensor *m1, rn_tensor *lv1, rn_tensor *m2, rn_tensor *lv2);
/* Elementwise log-likelihood of images x in [-1, 1] under a Gaussian discretised to 256 bins (tanh
 * approximation of Phi, tails beyond +-0.999). */
rn_status rn_discretized_gaussian_log_likelihood(rn_tensor **out, rn_tensor *x, rn_tensor *mean,
                                                 rn_tensor *log_scale);

/* ---------- training loss ---------- */
/* The variational bound term per sample [B], in bits: KL(q(x_{t-1}|x_t,x0) || p) for t > 0, the decoder NLL
 * at t = 0, with p's mean from stop-grad(eps) (clip off). Differentiable with respect to the v channels of
 * model_out only (the eps channels get a zero gradient). Needs learn_sigma. */
rn_status rn_diffusion_vb(rn_tensor **out, const rn_diffusion *d, rn_tensor *model_out, rn_tensor *x0,
                          rn_tensor *xt, rn_tensor *t);
/* The hybrid loss: mse[b] = mean over C,H,W of (noise - eps)^2, vb as above, loss = mean_b(mse + vb) (equal to
 * L_simple + 0.001 L_vlb at T = 1000). Differentiable; mse / vb outputs may be NULL. */
rn_status rn_diffusion_hybrid_loss(rn_tensor **loss, rn_tensor **mse, rn_tensor **vb, const rn_diffusion *d,
                                   rn_tensor *model_out, rn_tensor *x0, rn_tensor *xt, rn_tensor *t,
                                   rn_tensor *noise);

/* ---------- sampling ---------- */
typedef enum { RN_SAMPLE_ANCESTRAL, RN_SAMPLE_DDIM } rn_sample_method;
typedef enum { RN_SIGMA_BETA, RN_SIGMA_BETA_TILDE, RN_SIGMA_LEARNED } rn_sigma_kind;

/* One ancestral step (Algorithm 1): x_{t-1} = mu + 1[t != 0] exp(0.5 logvar) sqrt(1 + s_b) z, for every
 * sample of the batch at process step t (s: B strengths >= 0, NULL = all 0). */
rn_status rn_diffusion_ancestral_step(rn_tensor **out, const rn_diffusion *d, rn_tensor *model_out,
                                      rn_tensor *xt, int t, rn_tensor *z, const double *s, bool clip);
/* One DDIM step (Algorithm S1): x_{t-1} = sqrt(abar') x0 + sqrt(1 - abar' - sig^2) eps' +
 * 1[t != 0] (sig + sqrt(s_b Sigma)) z, with sig = eta sqrt((1-abar')/(1-abar)) sqrt(1 - abar/abar'),
 * eps' re-derived from the (clipped) x0, and Sigma the chosen perturbation variance. */
rn_status rn_diffusion_ddim_step(rn_tensor **out, const rn_diffusion *d, rn_tensor *model_out, rn_tensor *xt,
                                 int t, rn_tensor *z, const double *s, double eta, rn_sigma_kind sigma,
                                 bool clip);

/* The model as a callback: *out = model(x, tau) with tau a float32 [B] tensor of original timesteps. */
typedef rn_status (*rn_diffusion_model_fn)(void *ud, rn_tensor *x, rn_tensor *tau, rn_tensor **out);

typedef struct {
  rn_sample_method method;
  rn_sigma_kind sigma;    /* DDIM perturbation variance */
  double eta;             /* DDIM eta (0 = deterministic apart from the strength term) */
  double s_lo, s_hi;      /* strength s, fixed when s_lo == s_hi, else U[s_lo, s_hi] */
  bool s_per_image;       /* one draw per image rather than per batch */
  bool clip;              /* clamp predicted x0 to [-1, 1] (true when sampling images) */
  rn_device device;       /* where x lives (noise is drawn on the host, so it is device-independent) */
} rn_sampler_opts;

/* Runs the full reverse process from x_K ~ N(0, I) of `shape` (shape[0] = batch). Noise comes from
 * `noise` (x_K first, then one z per step), strengths from `strength` (a separate generator, so changing
 * the strength never changes the noise). s_out (may be NULL) receives the batch's strengths. */
rn_status rn_diffusion_sample(rn_tensor **out, double *s_out, const rn_diffusion *d, rn_diffusion_model_fn f,
                              void *ud, int ndim, const int64_t *shape, const rn_sampler_opts *o, rn_rng *noise,
                              rn_rng *strength);

#endif
