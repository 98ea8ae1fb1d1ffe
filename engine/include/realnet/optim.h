/* optim.h - optimisers, gradient clipping and parameter EMA over arrays of parameter tensors.
 *
 * Parameters are leaves with requires_grad; steps read p->grad (a parameter without a grad is skipped) and
 * update p in place without recording autograd. State tensors are owned by the optimiser.
 */
#ifndef REALNET_OPTIM_H
#define REALNET_OPTIM_H

#include "tensor.h"

typedef enum { RN_OPT_SGD, RN_OPT_ADAM, RN_OPT_ADAMW } rn_optim_kind;

typedef struct rn_optim_config {
  rn_optim_kind kind;
  float lr;
  float beta1, beta2, eps;   /* Adam(W) */
  float momentum;            /* SGD */
  bool nesterov;             /* SGD */
  float weight_decay;        /* L2 for SGD/Adam, decoupled for AdamW */
} rn_optim_config;

typedef struct rn_optim rn_optim;

rn_optim_config rn_optim_defaults(rn_optim_kind kind); /* PyTorch's defaults */
/* Retains each parameter. */
rn_status rn_optim_new(rn_optim **out, const rn_optim_config *cfg, int n_params, rn_tensor *const *params);
void rn_optim_free(rn_optim *o);
rn_status rn_optim_step(rn_optim *o);
void rn_optim_zero_grad(rn_optim *o);
void rn_optim_set_lr(rn_optim *o, float lr);
int64_t rn_optim_steps(const rn_optim *o);
/* State tensors by parameter index for saving (m/v for Adam, momentum buffer for SGD); may be NULL. */
rn_tensor *rn_optim_get_state(const rn_optim *o, int param, int slot);
/* Restoring a saved optimiser (training resume): the step count (bias correction), and state `slot` of
 * parameter `param` set to a copy of src (which must have the parameter's shape; created when absent). */
void rn_optim_set_steps(rn_optim *o, int64_t steps);
rn_status rn_optim_set_state(rn_optim *o, int param, int slot, const rn_tensor *src);

/* Scales all grads so their joint L2 norm is at most max_norm; *total_norm gets the norm before. */
rn_status rn_clip_grad_norm(int n, rn_tensor *const *params, float max_norm, float *total_norm);

/* ema <- decay * ema + (1 - decay) * p, elementwise over matching arrays. */
rn_status rn_ema_update(int n, rn_tensor *const *ema, rn_tensor *const *params, float decay);

#endif
