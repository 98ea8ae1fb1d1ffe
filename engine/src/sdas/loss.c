/* loss.c - the hybrid training loss of improved DDPM: MSE on eps plus the variational bound term with a
 * stop-gradient on the mean.
 *
 * The VB term is one op with a hand-written backward: only v receives a gradient (the mean is built from
 * stop-grad eps), and d vb / d v is computed in double during the forward pass and saved, so backward is a
 * broadcast multiply by the incoming per-sample gradient. */
#include "internal.h"
#include "sdas_internal.h"

static const double LN2 = 0.69314718055994530942;

/* gin[0] = [0 for eps channels | gout[b] * dv for v channels], model_out's shape. */
static rn_status vb_backward(rn_node *node, rn_tensor *gout, rn_tensor **gin) {
  if (!rn_node_needs_grad(node, 0)) return RN_OK;
  rn_tensor *mo = node->in[0], *dv = node->saved[0], *hg = NULL, *hd = NULL, *g = NULL;
  int64_t B = mo->shape[0], C = mo->shape[1] / 2, hw = B && C ? rn_tensor_numel(mo) / (B * 2 * C) : 0;
  rn_status st = rn_sdas_host(&hg, gout, "diffusion_vb backward: gradient");
  if (st == RN_OK) st = rn_sdas_host(&hd, dv, "diffusion_vb backward");
  if (st == RN_OK) st = rn_tensor_zeros(&g, mo->ndim, mo->shape, RN_F32, rn_cpu());
  if (st == RN_OK) {
    const float *go = rn_f32(hg), *d = rn_f32(hd);
    float *y = rn_f32(g);
    for (int64_t b = 0; b < B; b++)
      for (int64_t i = 0; i < C * hw; i++) y[(b * 2 + 1) * C * hw + i] = go[b] * d[b * C * hw + i];
    st = rn_sdas_to_device_of(&g, mo);
  }
  rn_tensor_release(hg); rn_tensor_release(hd);
  if (st != RN_OK) { rn_tensor_release(g); return st; }
  gin[0] = g;
  return RN_OK;
}

rn_status rn_diffusion_vb(rn_tensor **out, const rn_diffusion *d, rn_tensor *model_out, rn_tensor *x0,
                          rn_tensor *xt, rn_tensor *t) {
  if (!out) return rn_error(RN_ERR_ARG, "diffusion_vb: no output pointer");
  *out = NULL;
  if (!d) return rn_error(RN_ERR_ARG, "diffusion_vb: no diffusion");
  if (!d->learn_sigma)
    return rn_error(RN_ERR_ARG, "diffusion_vb: the VB term trains a learned variance; this diffusion has "
                    "learn_sigma = false");
  int64_t C, n, *k = NULL;
  RN_TRY(rn_sdas_check_model_out(d, model_out, xt, &C, &n, "diffusion_vb"));
  RN_TRY(rn_check_f32(x0, "diffusion_vb: x0"));
  if (!rn_tensor_same_shape(x0, xt)) {
    char a[64], b[64];
    return rn_error(RN_ERR_SHAPE, "diffusion_vb: x0 %s and x_t %s differ in shape", rn_shape_str(x0, a, 64),
                    rn_shape_str(xt, b, 64));
  }
  RN_TRY(rn_check_same_device(x0, xt, "diffusion_vb"));
  int64_t B = xt->shape[0], hw = C ? n / C : 0;
  RN_TRY(rn_sdas_steps(d, t, B, &k, "diffusion_vb"));
  bool want_grad = rn_grad_enabled() && model_out->requires_grad;
  rn_tensor *hm = NULL, *hx0 = NULL, *hxt = NULL, *o = NULL, *dv = NULL;
  rn_status st = rn_sdas_host(&hm, model_out, "diffusion_vb: model output");
  if (st == RN_OK) st = rn_sdas_host(&hx0, x0, "diffusion_vb: x0");
  if (st == RN_OK) st = rn_sdas_host(&hxt, xt, "diffusion_vb: x_t");
  int64_t oshape[1] = {B};
  if (st == RN_OK) st = rn_tensor_empty(&o, 1, oshape, RN_F32, rn_cpu());
  if (st == RN_OK && want_grad) st = rn_tensor_empty(&dv, xt->ndim, xt->shape, RN_F32, rn_cpu());
  if (st == RN_OK) {
    const float *m = rn_f32(hm), *a = rn_f32(hx0), *x = rn_f32(hxt);
    float *y = rn_f32(o), *g = dv ? rn_f32(dv) : NULL;
    for (int64_t b = 0; b < B; b++) {
      int64_t s = k[b];
      double ac = d->tab[RN_DF_ALPHAS_CUMPROD][s], r = sqrt(1.0 / ac), rm1 = sqrt(1.0 / ac - 1.0);
      double c1 = d->tab[RN_DF_POSTERIOR_MEAN_COEF1][s], c2 = d->tab[RN_DF_POSTERIOR_MEAN_COEF2][s];
      double lvq = d->tab[RN_DF_POSTERIOR_LOG_VARIANCE_CLIPPED][s], maxl = log(d->tab[RN_DF_BETAS][s]);
      double dlv_dv = 0.5 * (maxl - lvq), scale = 1.0 / ((double)n * LN2), acc = 0.0;
      for (int64_t c = 0; c < C; c++)
        for (int64_t j = 0; j < hw; j++) {
          int64_t i = b * n + c * hw + j, ie = b * 2 * n + c * hw + j;
          double px = r * x[i] - rm1 * m[ie], mp = c1 * px + c2 * x[i];
          double lvp = rn_sdas_model_logvar(d, s, m[ie + n]), term, dterm;
          if (s == 0) {
            double dls;
            term = -rn_sdas_decoder_loglik(a[i], mp, 0.5 * lvp, &dls);
            dterm = -dls * 0.5;
          } else {
            double mq = c1 * a[i] + c2 * x[i], dm = mq - mp, e1 = exp(lvq - lvp), e2 = dm * dm * exp(-lvp);
            term = 0.5 * (-1.0 + lvp - lvq + e1 + e2);
            dterm = 0.5 * (1.0 - e1 - e2);
          }
          acc += term;
          if (g) g[i] = (float)(dterm * dlv_dv * scale);
        }
      y[b] = (float)(acc * scale);
    }
    st = rn_sdas_to_device_of(&o, xt);
  }
  rn_tensor_release(hm); rn_tensor_release(hx0); rn_tensor_release(hxt); free(k);
  if (st == RN_OK && want_grad) {
    rn_node *node = NULL;
    rn_tensor *ins[1] = {model_out};
    node = rn_record("diffusion_vb", vb_backward, o, 1, ins, &st);
    if (st == RN_OK && node) st = rn_node_save(node, 0, dv);
  }
  rn_tensor_release(dv);
  if (st != RN_OK) { rn_tensor_release(o); return st; }
  *out = o;
  return RN_OK;
}

static void release_all(rn_tensor **ts, int n) {
  for (int i = 0; i < n; i++) { rn_tensor_release(ts[i]); ts[i] = NULL; }
}

rn_status rn_diffusion_hybrid_loss(rn_tensor **loss, rn_tensor **mse, rn_tensor **vb, const rn_diffusion *d,
                                   rn_tensor *model_out, rn_tensor *x0, rn_tensor *xt, rn_tensor *t,
                                   rn_tensor *noise) {
  if (!loss) return rn_error(RN_ERR_ARG, "hybrid_loss: no output pointer");
  *loss = NULL;
  if (mse) *mse = NULL;
  if (vb) *vb = NULL;
  int64_t C, n;
  RN_TRY(rn_sdas_check_model_out(d, model_out, xt, &C, &n, "hybrid_loss"));
  RN_TRY(rn_check_f32(noise, "hybrid_loss: noise"));
  if (!rn_tensor_same_shape(noise, xt)) {
    char a[64], b[64];
    return rn_error(RN_ERR_SHAPE, "hybrid_loss: noise %s and x_t %s differ in shape", rn_shape_str(noise, a, 64),
                    rn_shape_str(xt, b, 64));
  }
  enum { EPS, DIFF, SQ, MSE, VB, SUM, NT };
  rn_tensor *tt[NT] = {NULL};
  int dims[RN_MAX_DIMS];
  for (int i = 1; i < xt->ndim; i++) dims[i - 1] = i;
  rn_status st = rn_narrow(&tt[EPS], model_out, 1, 0, C);
  if (st == RN_OK) st = rn_sub(&tt[DIFF], noise, tt[EPS]);
  if (st == RN_OK) st = rn_unary(&tt[SQ], RN_UN_SQUARE, tt[DIFF], 0, 0);
  if (st == RN_OK) st = rn_reduce(&tt[MSE], RN_RED_MEAN, tt[SQ], xt->ndim - 1, dims, false);
  if (st == RN_OK) st = rn_diffusion_vb(&tt[VB], d, model_out, x0, xt, t);
  if (st == RN_OK) st = rn_add(&tt[SUM], tt[MSE], tt[VB]);
  if (st == RN_OK) st = rn_reduce(loss, RN_RED_MEAN, tt[SUM], 0, NULL, false);
  if (st == RN_OK && mse) { *mse = tt[MSE]; tt[MSE] = NULL; }
  if (st == RN_OK && vb) { *vb = tt[VB]; tt[VB] = NULL; }
  release_all(tt, NT);
  return st;
}
