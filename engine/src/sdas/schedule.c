/* schedule.c - beta schedules, timestep respacing and the derived per-step tables of a diffusion (double). */
#include <ctype.h>

#include "internal.h"
#include "sdas_internal.h"

static const char *const field_names[RN_DF_COUNT] = {
  "betas", "alphas_cumprod", "alphas_cumprod_prev", "alphas_cumprod_next", "posterior_variance",
  "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2"};

const char *rn_diffusion_field_name(rn_diffusion_field f) {
  return (f >= 0 && f < RN_DF_COUNT) ? field_names[f] : "?";
}

rn_status rn_diffusion_field_from_name(const char *name, rn_diffusion_field *f) {
  for (int i = 0; i < RN_DF_COUNT; i++)
    if (name && strcmp(name, field_names[i]) == 0) { *f = (rn_diffusion_field)i; return RN_OK; }
  return rn_error(RN_ERR_ARG, "diffusion: unknown table '%s' (betas, alphas_cumprod, alphas_cumprod_prev, "
                  "alphas_cumprod_next, posterior_variance, posterior_log_variance_clipped, posterior_mean_coef1, "
                  "posterior_mean_coef2)", name ? name : "(null)");
}

/* "ddimN": the smallest stride i with len(range(0, T, i)) == N. Sections "a,b,c": T split into equal parts
 * (the first T % n one longer), each giving its count of evenly spaced steps rounded half-to-even, as Python's
 * round() in improved-DDPM does. */
rn_status rn_space_timesteps(int64_t T, const char *spec, int64_t **keep, int *n) {
  if (!keep || !n) return rn_error(RN_ERR_ARG, "space_timesteps: no output pointer");
  *keep = NULL; *n = 0;
  if (T < 1) return rn_error(RN_ERR_ARG, "space_timesteps: T must be positive, got %lld", (long long)T);
  if (!spec || !*spec) return rn_error(RN_ERR_ARG, "space_timesteps: empty respacing spec");
  char *mark = calloc((size_t)T, 1);
  if (!mark) return rn_error(RN_ERR_OOM, "space_timesteps: out of memory");
  rn_status st = RN_OK;
  if (strncmp(spec, "ddim", 4) == 0) {
    char *end = NULL;
    long want = strtol(spec + 4, &end, 10);
    if (end == spec + 4 || *end || want < 1) {
      st = rn_error(RN_ERR_ARG, "space_timesteps: '%s' is not ddimN with a positive N", spec);
    } else {
      int64_t stride = 0;
      for (int64_t i = 1; i <= T && !stride; i++)
        if ((T + i - 1) / i == want) stride = i;
      if (!stride)
        st = rn_error(RN_ERR_ARG, "space_timesteps: no integer stride gives exactly %ld of %lld steps ('%s')", want,
                      (long long)T, spec);
      else
        for (int64_t i = 0; i < T; i += stride) mark[i] = 1;
    }
  } else {
    int64_t counts[256];
    int ns = 0;
    const char *p = spec;
    while (st == RN_OK && *p) {
      char *end = NULL;
      while (isspace((unsigned char)*p)) p++;
      long long c = strtoll(p, &end, 10);
      if (end == p || c < 0 || ns == 256) {
        st = rn_error(RN_ERR_ARG, "space_timesteps: '%s' is neither ddimN nor comma-separated counts", spec);
        break;
      }
      counts[ns++] = c;
      p = end;
      while (isspace((unsigned char)*p)) p++;
      if (*p == ',') p++;
      else if (*p) st = rn_error(RN_ERR_ARG, "space_timesteps: '%s' is neither ddimN nor comma-separated counts", spec);
    }
    int64_t per = ns ? T / ns : 0, extra = ns ? T % ns : 0, start = 0;
    for (int i = 0; st == RN_OK && i < ns; i++) {
      int64_t size = per + (i < extra ? 1 : 0);
      if (size < counts[i]) {
        st = rn_error(RN_ERR_ARG, "space_timesteps: section %d has %lld steps, cannot take %lld ('%s')", i + 1,
                      (long long)size, (long long)counts[i], spec);
        break;
      }
      double frac = counts[i] <= 1 ? 1.0 : (double)(size - 1) / (double)(counts[i] - 1), cur = 0.0;
      for (int64_t j = 0; j < counts[i]; j++) {
        mark[start + (int64_t)nearbyint(cur)] = 1;
        cur += frac;
      }
      start += size;
    }
  }
  int cnt = 0;
  for (int64_t i = 0; i < T; i++) cnt += mark[i];
  if (st == RN_OK && cnt == 0) st = rn_error(RN_ERR_ARG, "space_timesteps: '%s' keeps no steps", spec);
  if (st == RN_OK) {
    *keep = malloc(sizeof(int64_t) * (size_t)cnt);
    if (!*keep) st = rn_error(RN_ERR_OOM, "space_timesteps: out of memory");
    else {
      int k = 0;
      for (int64_t i = 0; i < T; i++) if (mark[i]) (*keep)[k++] = i;
      *n = cnt;
    }
  }
  free(mark);
  return st;
}

static double cosine_alpha_bar(double t) {
  double c = cos((t + 0.008) / 1.008 * M_PI / 2);
  return c * c;
}

/* Fills d's tables from K betas (already respaced). */
static rn_status derive(rn_diffusion *d, const double *betas, int K) {
  if (K < 2) return rn_error(RN_ERR_ARG, "diffusion: the process needs at least 2 steps, got %d", K);
  for (int f = 0; f < RN_DF_COUNT; f++) {
    d->tab[f] = malloc(sizeof(double) * (size_t)K);
    if (!d->tab[f]) return rn_error(RN_ERR_OOM, "diffusion: out of memory");
  }
  d->fixed_log_var = malloc(sizeof(double) * (size_t)K);
  if (!d->fixed_log_var) return rn_error(RN_ERR_OOM, "diffusion: out of memory");
  d->K = K;
  double *b = d->tab[RN_DF_BETAS], *ac = d->tab[RN_DF_ALPHAS_CUMPROD], *acp = d->tab[RN_DF_ALPHAS_CUMPROD_PREV],
         *acn = d->tab[RN_DF_ALPHAS_CUMPROD_NEXT], *pv = d->tab[RN_DF_POSTERIOR_VARIANCE],
         *plv = d->tab[RN_DF_POSTERIOR_LOG_VARIANCE_CLIPPED], *c1 = d->tab[RN_DF_POSTERIOR_MEAN_COEF1],
         *c2 = d->tab[RN_DF_POSTERIOR_MEAN_COEF2];
  double prod = 1.0;
  for (int k = 0; k < K; k++) {
    if (!(betas[k] > 0 && betas[k] <= 1))
      return rn_error(RN_ERR_ARG, "diffusion: beta[%d] = %g is outside (0, 1]", k, betas[k]);
    b[k] = betas[k];
    acp[k] = prod;
    prod *= 1.0 - betas[k];
    ac[k] = prod;
  }
  for (int k = 0; k < K; k++) {
    acn[k] = k + 1 < K ? ac[k + 1] : 0.0;
    pv[k] = b[k] * (1.0 - acp[k]) / (1.0 - ac[k]);
    c1[k] = b[k] * sqrt(acp[k]) / (1.0 - ac[k]);
    c2[k] = (1.0 - acp[k]) * sqrt(1.0 - b[k]) / (1.0 - ac[k]);
  }
  for (int k = 0; k < K; k++) plv[k] = log(k == 0 ? pv[1] : pv[k]);   /* beta~_0 = 0 replaced by beta~_1 */
  for (int k = 0; k < K; k++) d->fixed_log_var[k] = log(k == 0 ? pv[1] : b[k]);
  return RN_OK;
}

rn_status rn_diffusion_new(rn_diffusion **out, const rn_diffusion_config *cfg) {
  if (!out) return rn_error(RN_ERR_ARG, "diffusion: no output pointer");
  *out = NULL;
  if (!cfg) return rn_error(RN_ERR_ARG, "diffusion: no configuration");
  int T = cfg->steps;
  if (T < 2 || T > 100000) return rn_error(RN_ERR_ARG, "diffusion: steps must be in 2..100000, got %d", T);
  const char *sched = cfg->schedule ? cfg->schedule : "linear";
  double *base = malloc(sizeof(double) * (size_t)T);
  if (!base) return rn_error(RN_ERR_OOM, "diffusion: out of memory");
  rn_status st = RN_OK;
  if (strcmp(sched, "linear") == 0) {
    double scale = 1000.0 / T, lo = scale * 1e-4, hi = scale * 0.02;
    double step = (hi - lo) / (T - 1);
    for (int i = 0; i < T; i++) base[i] = i * step + lo;   /* as numpy.linspace in float64 */
    base[T - 1] = hi;
  } else if (strcmp(sched, "cosine") == 0) {
    for (int i = 0; i < T; i++) {
      double v = 1.0 - cosine_alpha_bar((double)(i + 1) / T) / cosine_alpha_bar((double)i / T);
      base[i] = v < 0.999 ? v : 0.999;
    }
  } else {
    st = rn_error(RN_ERR_ARG, "diffusion: unknown schedule '%s' (linear or cosine)", sched);
  }
  int64_t *keep = NULL;
  int K = T;
  if (st == RN_OK && cfg->respace && *cfg->respace) st = rn_space_timesteps(T, cfg->respace, &keep, &K);
  rn_diffusion *d = NULL;
  double *betas = NULL;
  if (st == RN_OK) {
    d = calloc(1, sizeof *d);
    betas = malloc(sizeof(double) * (size_t)K);
    if (d) d->map = malloc(sizeof(int64_t) * (size_t)K);
    if (!d || !betas || !d->map) st = rn_error(RN_ERR_OOM, "diffusion: out of memory");
  }
  if (st == RN_OK) {
    d->refcount = 1;
    d->T = T;
    d->learn_sigma = cfg->learn_sigma;
    /* beta'_k = 1 - abar(tau_k) / abar(tau_{k-1}), abar before the first kept step = 1 */
    double prod = 1.0, last = 1.0;
    int k = 0;
    for (int i = 0; i < T; i++) {
      prod *= 1.0 - base[i];
      if (keep ? (k < K && keep[k] == i) : true) {
        betas[k] = 1.0 - prod / last;
        d->map[k] = i;
        last = prod;
        k++;
      }
    }
    st = derive(d, betas, K);
  }
  free(base); free(keep); free(betas);
  if (st != RN_OK) { if (d) { d->refcount = 1; rn_diffusion_release(d); } return st; }
  *out = d;
  return RN_OK;
}

rn_diffusion *rn_diffusion_retain(rn_diffusion *d) { if (d) d->refcount++; return d; }

void rn_diffusion_release(rn_diffusion *d) {
  if (!d || --d->refcount > 0) return;
  for (int f = 0; f < RN_DF_COUNT; f++) free(d->tab[f]);
  free(d->fixed_log_var);
  free(d->map);
  free(d);
}

int rn_diffusion_steps(const rn_diffusion *d) { return d ? d->K : 0; }
int rn_diffusion_base_steps(const rn_diffusion *d) { return d ? d->T : 0; }
bool rn_diffusion_learn_sigma(const rn_diffusion *d) { return d && d->learn_sigma; }
const int64_t *rn_diffusion_timestep_map(const rn_diffusion *d) { return d ? d->map : NULL; }
const double *rn_diffusion_table(const rn_diffusion *d, rn_diffusion_field f) {
  return (d && f >= 0 && f < RN_DF_COUNT) ? d->tab[f] : NULL;
}
