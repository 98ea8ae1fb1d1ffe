/* rrs.h - Reconstruction Residual Selection, RealNet's channel selector (spec 7).
 *
 *   rn_rrs_config c = rn_rrs_config_default();       // max&avg, P = 1/3, momentum 0.9, eps 1e-5
 *   c.channels = 1536;
 *   rn_rrs *r = NULL;
 *   if (rn_rrs_new(&r, &c, rn_cpu()) != RN_OK) puts(rn_last_error());
 *   rn_tensor *s = NULL;
 *   rn_rrs_forward(&s, NULL, r, residual, true);      // residual [B,1536,H,W] -> s [B,512,H,W]
 *   rn_rrs_free(r);
 *
 * The concatenated residual R is ranked per sample after a batch norm without affine parameters (training:
 * batch statistics, and the running statistics move towards them with `momentum` as running = (1-m) old +
 * m batch, unbiased variance; eval: the running statistics). Channel scores are the global max (GMP) and/or
 * global average (GAP) of the normalised residual; the top k_max GMP channels then the top k_avg GAP channels
 * (each sorted by descending score, so output position encodes rank; the two sets may overlap) are gathered
 * from the UN-normalised R. The gather is differentiable; ranking and statistics are not.
 * Counts: explicit k_max / k_avg, or round(ratio * C) split between the modes (max&avg: half each, the GMP half
 * rounded up). Disabled (enabled = false) passes R through unchanged.
 * Threading: one rn_rrs per thread (forward in training mode updates the running statistics in place).
 */
#ifndef REALNET_RRS_H
#define REALNET_RRS_H

#include "tensor.h"

typedef enum { RN_RRS_MAXAVG = 0, RN_RRS_MAX, RN_RRS_AVG, RN_RRS_MODE_COUNT } rn_rrs_mode;

typedef struct {
  rn_rrs_mode mode;
  int64_t channels;   /* C of the residual; 0 = taken from the first forward (or rn_rrs_set_running_stats) */
  double ratio;       /* retention P in (0, 1]; used when k_max and k_avg are both 0 */
  int64_t k_max;      /* explicit counts (0 = from ratio); max mode ignores k_avg, avg mode ignores k_max */
  int64_t k_avg;
  bool enabled;       /* false: forward returns the residual itself */
  float momentum;     /* running-statistics momentum, PyTorch convention (0.9 in RealNet) */
  float eps;          /* batch-norm epsilon (1e-5) */
} rn_rrs_config;

typedef struct rn_rrs rn_rrs;

rn_rrs_config rn_rrs_config_default(void);
const char *rn_rrs_mode_name(rn_rrs_mode m);                 /* "maxavg", "max", "avg" */
rn_status rn_rrs_mode_parse(const char *s, rn_rrs_mode *out); /* also accepts "max&avg", "mean" */

/* A new selector on `dev` (running mean 0, variance 1 once the channel count is known); free with rn_rrs_free. */
rn_status rn_rrs_new(rn_rrs **out, const rn_rrs_config *c, rn_device dev);
void rn_rrs_free(rn_rrs *r); /* accepts NULL */

/* The configuration in use (channels filled in once known). Borrowed. */
const rn_rrs_config *rn_rrs_get_config(const rn_rrs *r);
/* Resolved counts for C channels (C = the configured channels when c <= 0); errors when C is unknown. */
rn_status rn_rrs_counts(const rn_rrs *r, int64_t c, int64_t *k_max, int64_t *k_avg);
/* Output channels for C input channels: k_max + k_avg, or C when disabled. */
rn_status rn_rrs_out_channels(const rn_rrs *r, int64_t c, int64_t *out);

/* Running statistics, float32 [C] (borrowed; NULL before the channel count is known). Writing into them
 * (rn_copy_) changes the selector's state. */
rn_tensor *rn_rrs_get_running_mean(const rn_rrs *r);
rn_tensor *rn_rrs_get_running_var(const rn_rrs *r);
/* Copies mean/var (float32 [C], C matching the configured channels, or fixing them when unknown). */
rn_status rn_rrs_set_running_stats(rn_rrs *r, const rn_tensor *mean, const rn_tensor *var);
/* Moves the running statistics to `dev`. */
rn_status rn_rrs_to_device(rn_rrs *r, rn_device dev);

/* residual float32 [B,C,H,W] -> *out [B,K,H,W] (a new reference; K = k_max + k_avg, or C when disabled).
 * indices (may be NULL): a new int64 [B,K] tensor of the 0-based source channel of each output channel
 * (NULL when disabled). training: batch statistics for ranking and a running-statistics update. */
rn_status rn_rrs_forward(rn_tensor **out, rn_tensor **indices, rn_rrs *r, rn_tensor *residual, bool training);

#endif
