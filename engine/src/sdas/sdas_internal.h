/* sdas_internal.h - the diffusion struct and host helpers shared by engine/src/sdas (not installed). */
#ifndef REALNET_SDAS_INTERNAL_H
#define REALNET_SDAS_INTERNAL_H

#include "realnet/diffusion.h"

struct rn_diffusion {
  int refcount;
  int T, K;                    /* base and respaced step counts */
  bool learn_sigma;
  int64_t *map;                /* K original timesteps */
  double *tab[RN_DF_COUNT];    /* K entries each */
  double *fixed_log_var;       /* log of [beta~_1, beta_1, ..., beta_{K-1}] (fixed-large variance) */
};

/* A contiguous float32 CPU copy-or-alias of t (released by the caller), with a message naming `what`. */
rn_status rn_sdas_host(rn_tensor **out, rn_tensor *t, const char *what);
/* Checks t (int64 [B], each in 0..K-1) and copies it into a malloc'd array *steps (caller frees). */
rn_status rn_sdas_steps(const rn_diffusion *d, rn_tensor *t, int64_t B, int64_t **steps, const char *op);
/* Checks that model_out is [B, C or 2C, ...] for x of [B, C, ...]; sets *C and the per-sample size *n. */
rn_status rn_sdas_check_model_out(const rn_diffusion *d, const rn_tensor *model_out, const rn_tensor *x,
                                  int64_t *C, int64_t *n, const char *op);
/* Moves a fresh CPU tensor to `like`'s device (consumes *t). */
rn_status rn_sdas_to_device_of(rn_tensor **t, const rn_tensor *like);

/* log p(x) of one element under the discretised Gaussian decoder; *dls (may be NULL) gets d/d log_scale. */
double rn_sdas_decoder_loglik(double x, double mean, double log_scale, double *dls);

/* Model log-variance of one element: learned-range interpolation of v, or the fixed-large value. */
static inline double rn_sdas_model_logvar(const rn_diffusion *d, int64_t k, double v) {
  if (!d->learn_sigma) return d->fixed_log_var[k];
  double frac = (v + 1.0) / 2.0;
  return frac * log(d->tab[RN_DF_BETAS][k]) + (1.0 - frac) * d->tab[RN_DF_POSTERIOR_LOG_VARIANCE_CLIPPED][k];
}

#endif
