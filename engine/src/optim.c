/* optim.c - SGD (momentum, Nesterov), Adam, AdamW; gradient clipping by norm; parameter EMA. */
#include "internal.h"

struct rn_optim {
  rn_optim_config cfg;
  int n;
  rn_tensor **params;
  rn_tensor **state[2]; /* Adam: m, v; SGD: momentum buffer in state[0] */
  int64_t steps;
};

rn_optim_config rn_optim_defaults(rn_optim_kind kind) {
  rn_optim_config c = {kind, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, false, 0.0f};
  if (kind == RN_OPT_SGD) c.lr = 1e-2f;
  if (kind == RN_OPT_ADAMW) c.weight_decay = 1e-2f;
  return c;
}

static rn_status check_config(const rn_optim_config *c) {
  double v[6] = {c->lr, c->beta1, c->beta2, c->eps, c->momentum, c->weight_decay};
  RN_TRY(rn_check_finite_params("optimizer", 6, v));
  if (c->lr < 0) return rn_error(RN_ERR_ARG, "optimizer: learning rate %g is negative", c->lr);
  if (c->beta1 < 0 || c->beta1 >= 1 || c->beta2 < 0 || c->beta2 >= 1)
    return rn_error(RN_ERR_ARG, "optimizer: betas must lie in [0, 1), got %g and %g", c->beta1, c->beta2);
  if (c->eps < 0 || c->momentum < 0 || c->weight_decay < 0)
    return rn_error(RN_ERR_ARG, "optimizer: eps, momentum and weight_decay must not be negative");
  if ((unsigned)c->kind > RN_OPT_ADAMW) return rn_error(RN_ERR_ARG, "optimizer: unknown kind %d", (int)c->kind);
  return RN_OK;
}

rn_status rn_optim_new(rn_optim **out, const rn_optim_config *cfg, int n, rn_tensor *const *params) {
  *out = NULL;
  RN_TRY(check_config(cfg));
  if (n < 0) return rn_error(RN_ERR_ARG, "optimizer: negative parameter count");
  for (int i = 0; i < n; i++) {
    RN_TRY(rn_check_f32(params[i], "optimizer: parameter"));
    if (params[i]->grad_fn)
      return rn_error(RN_ERR_ARG, "optimizer: parameter %d is not a leaf (made by %s)", i + 1, params[i]->grad_fn->name);
  }
  rn_optim *o = calloc(1, sizeof *o);
  if (!o) return rn_error(RN_ERR_OOM, "out of memory creating an optimizer");
  o->cfg = *cfg;
  o->n = n;
  o->params = calloc((size_t)n + 1, sizeof *o->params);
  o->state[0] = calloc((size_t)n + 1, sizeof(rn_tensor *));
  o->state[1] = calloc((size_t)n + 1, sizeof(rn_tensor *));
  if (!o->params || !o->state[0] || !o->state[1]) { rn_optim_free(o); return rn_error(RN_ERR_OOM, "out of memory"); }
  for (int i = 0; i < n; i++) o->params[i] = rn_tensor_retain(params[i]);
  *out = o;
  return RN_OK;
}

void rn_optim_free(rn_optim *o) {
  if (!o) return;
  for (int i = 0; i < o->n; i++) {
    if (o->params) rn_tensor_release(o->params[i]);
    for (int k = 0; k < 2; k++) if (o->state[k]) rn_tensor_release(o->state[k][i]);
  }
  free(o->params);
  free(o->state[0]);
  free(o->state[1]);
  free(o);
}

void rn_optim_zero_grad(rn_optim *o) { for (int i = 0; i < o->n; i++) rn_zero_grad(o->params[i]); }
void rn_optim_set_lr(rn_optim *o, float lr) { if (lr >= 0 && isfinite(lr)) o->cfg.lr = lr; }
int64_t rn_optim_steps(const rn_optim *o) { return o->steps; }

rn_tensor *rn_optim_get_state(const rn_optim *o, int param, int slot) {
  if (param < 0 || param >= o->n || slot < 0 || slot > 1) return NULL;
  return o->state[slot][param];
}

void rn_optim_set_steps(rn_optim *o, int64_t steps) { if (steps >= 0) o->steps = steps; }

rn_status rn_optim_set_state(rn_optim *o, int param, int slot, const rn_tensor *src) {
  if (param < 0 || param >= o->n || slot < 0 || slot > 1)
    return rn_error(RN_ERR_ARG, "optimizer set_state: parameter %d slot %d out of range (%d parameters, 2 slots)",
                    param + 1, slot + 1, o->n);
  RN_TRY(rn_check_f32(src, "optimizer set_state: state"));
  rn_tensor *p = o->params[param];
  if (src->ndim != p->ndim)
    return rn_error(RN_ERR_SHAPE, "optimizer set_state: state of rank %d for parameter %d of rank %d", src->ndim,
                    param + 1, p->ndim);
  for (int d = 0; d < p->ndim; d++)
    if (src->shape[d] != p->shape[d])
      return rn_error(RN_ERR_SHAPE, "optimizer set_state: state shape differs from parameter %d's in dim %d",
                      param + 1, d + 1);
  rn_tensor **slotp = &o->state[slot][param];
  if (!*slotp) RN_TRY(rn_tensor_zeros_like(slotp, p));
  return rn_copy_(*slotp, src);
}

/* Writes the value of `src` into `dst` in place (both contiguous float32 of one shape). */
static rn_status assign(rn_tensor *dst, rn_tensor *src) { return rn_copy_(dst, src); }

static rn_status sgd_update(rn_optim *o, int i, rn_tensor *p, rn_tensor *g) {
  const rn_optim_config *c = &o->cfg;
  rn_tensor *d = rn_tensor_retain(g), *t = NULL;
  rn_status st = RN_OK;
  if (c->weight_decay > 0) { /* d = g + wd * p */
    rn_tensor *wp = NULL;
    st = rn_scale(&wp, p, c->weight_decay, 0);
    if (st == RN_OK) st = rn_add(&t, d, wp);
    rn_tensor_release(wp);
    rn_tensor_release(d);
    d = t; t = NULL;
  }
  if (st == RN_OK && c->momentum > 0) {
    rn_tensor **buf = &o->state[0][i];
    if (!*buf) {
      st = rn_clone(buf, d);
    } else {
      rn_tensor *mb = NULL;
      st = rn_scale(&mb, *buf, c->momentum, 0);
      if (st == RN_OK) st = rn_add(&t, mb, d);
      if (st == RN_OK) st = assign(*buf, t);
      rn_tensor_release(mb);
      rn_tensor_release(t); t = NULL;
    }
    if (st == RN_OK) {
      if (c->nesterov) {
        rn_tensor *mb = NULL;
        st = rn_scale(&mb, *buf, c->momentum, 0);
        if (st == RN_OK) st = rn_add(&t, d, mb);
        rn_tensor_release(mb);
      } else {
        t = rn_tensor_retain(*buf);
      }
      rn_tensor_release(d);
      d = t; t = NULL;
    }
  }
  if (st == RN_OK) { /* p -= lr * d */
    rn_tensor *step = NULL;
    st = rn_scale(&step, d, -c->lr, 0);
    if (st == RN_OK) st = rn_add(&t, p, step);
    if (st == RN_OK) st = assign(p, t);
    rn_tensor_release(step);
  }
  rn_tensor_release(t);
  rn_tensor_release(d);
  return st;
}

rn_status rn_optim_step(rn_optim *o) {
  rn_nograd_scope ng = rn_nograd_begin();
  rn_status st = RN_OK;
  o->steps++;
  for (int i = 0; i < o->n && st == RN_OK; i++) {
    rn_tensor *p = o->params[i], *g = p->grad;
    if (!g) continue;
    if (!rn_tensor_same_shape(p, g)) { st = rn_error(RN_ERR_SHAPE, "optimizer: gradient of parameter %d has the wrong shape", i + 1); break; }
    if (o->cfg.kind == RN_OPT_SGD) { st = sgd_update(o, i, p, g); continue; }
    if (!rn_tensor_is_contiguous(p)) { st = rn_error(RN_ERR_ARG, "optimizer: parameter %d is not contiguous", i + 1); break; }
    for (int k = 0; k < 2 && st == RN_OK; k++)
      if (!o->state[k][i]) st = rn_tensor_zeros_like(&o->state[k][i], p);
    rn_tensor *gc = NULL;
    if (st == RN_OK) st = rn_contig_nograd(&gc, g);
    if (st == RN_OK)
      st = rn_kernels_of(p)->adam_step(p, gc, o->state[0][i], o->state[1][i], o->cfg.lr, o->cfg.beta1, o->cfg.beta2,
                                       o->cfg.eps, o->cfg.weight_decay, o->steps, o->cfg.kind == RN_OPT_ADAMW);
    rn_tensor_release(gc);
  }
  rn_nograd_end(ng);
  return st;
}

static rn_status scalar_value(rn_tensor *t, double *v) {
  rn_tensor *c = NULL;
  RN_TRY(rn_to_device(&c, t, rn_cpu()));
  int64_t idx[RN_MAX_DIMS] = {0};
  rn_status st = rn_tensor_get(c, idx, v);
  rn_tensor_release(c);
  return st;
}

rn_status rn_clip_grad_norm(int n, rn_tensor *const *params, float max_norm, float *total_norm) {
  if (!(max_norm > 0)) return rn_error(RN_ERR_ARG, "clip_grad_norm: max_norm must be positive, got %g", max_norm);
  rn_nograd_scope ng = rn_nograd_begin();
  rn_status st = RN_OK;
  double sumsq = 0;
  for (int i = 0; i < n && st == RN_OK; i++) {
    if (!params[i] || !params[i]->grad) continue;
    rn_tensor *sq = NULL, *s = NULL;
    double v = 0;
    st = rn_unary(&sq, RN_UN_SQUARE, params[i]->grad, 0, 0);
    if (st == RN_OK) st = rn_reduce(&s, RN_RED_SUM, sq, 0, NULL, false);
    if (st == RN_OK) st = scalar_value(s, &v);
    sumsq += v;
    rn_tensor_release(sq);
    rn_tensor_release(s);
  }
  double norm = sqrt(sumsq);
  if (total_norm) *total_norm = (float)norm;
  if (st == RN_OK && norm > max_norm) {
    float f = (float)(max_norm / (norm + 1e-6));
    for (int i = 0; i < n && st == RN_OK; i++) {
      if (!params[i] || !params[i]->grad) continue;
      rn_tensor *sc = NULL;
      st = rn_scale(&sc, params[i]->grad, f, 0);
      if (st == RN_OK) st = rn_copy_(params[i]->grad, sc);
      rn_tensor_release(sc);
    }
  }
  rn_nograd_end(ng);
  return st;
}

rn_status rn_ema_update(int n, rn_tensor *const *ema, rn_tensor *const *params, float decay) {
  if (!(decay >= 0 && decay <= 1)) return rn_error(RN_ERR_ARG, "ema: decay must lie in [0, 1], got %g", decay);
  rn_nograd_scope ng = rn_nograd_begin();
  rn_status st = RN_OK;
  for (int i = 0; i < n && st == RN_OK; i++) {
    if (!ema[i] || !params[i] || !rn_tensor_same_shape(ema[i], params[i])) {
      st = rn_error(RN_ERR_SHAPE, "ema: entry %d does not match its parameter", i + 1);
      break;
    }
    rn_tensor *a = NULL, *b = NULL, *s = NULL;
    st = rn_scale(&a, ema[i], decay, 0);
    if (st == RN_OK) st = rn_scale(&b, params[i], 1 - decay, 0);
    if (st == RN_OK) st = rn_add(&s, a, b);
    if (st == RN_OK) st = rn_copy_(ema[i], s);
    rn_tensor_release(a); rn_tensor_release(b); rn_tensor_release(s);
  }
  rn_nograd_end(ng);
  return st;
}
