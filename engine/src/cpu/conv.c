/* conv.c - the CPU convolution kernels: pick an implementation and hand it the sizes.
 *
 * Two implementations pass the same tests: oneDNN (conv_onednn.c) and im2col/col2im + OpenBLAS
 * (conv_im2col.c). oneDNN is the default because it measured faster on this machine's WideResNet-50-2
 * shapes (see `realnet bench conv`); REALNET_CONV=im2col selects the other. When oneDNN has no primitive
 * for a case (it rejects some padding combinations of conv-transpose) the call falls back to im2col.
 */
#include <pthread.h>

#include "conv_impl.h"

typedef enum { IMPL_ONEDNN, IMPL_IM2COL } conv_impl;

/* Read per call (cheap) so tests can switch implementations inside one process. */
static conv_impl current_impl(void) {
  const char *s = getenv("REALNET_CONV");
  return s && strcmp(s, "im2col") == 0 ? IMPL_IM2COL : IMPL_ONEDNN;
}

/* Scratch buffers and the oneDNN cache are shared state; one convolution runs at a time (each is
 * internally parallel, so nothing is lost). */
static pthread_mutex_t conv_lock = PTHREAD_MUTEX_INITIALIZER;

rn_conv_geom rn_conv_geom_make(const rn_tensor *x, const rn_tensor *w, const rn_tensor *y, const rn_conv_params *p) {
  rn_conv_geom g = {
    .n = x->shape[0], .c = x->shape[1], .h = x->shape[2], .w = x->shape[3],
    .o = w->shape[0], .kh = w->shape[2], .kw = w->shape[3], .oh = y->shape[2], .ow = y->shape[3],
    .sh = p->stride[0], .sw = p->stride[1], .ph = p->pad[0], .pw = p->pad[1],
    .dh = p->dilation[0], .dw = p->dilation[1], .g = p->groups,
  };
  return g;
}

/* Kernel-level sanity: the op layer validates user input; this guards direct callers (bench, other ops). */
static rn_status check_geom(const rn_conv_geom *g, const char *what) {
  if (g->g < 1 || g->sh < 1 || g->sw < 1 || g->dh < 1 || g->dw < 1 || g->ph < 0 || g->pw < 0 || g->c % g->g ||
      g->o % g->g || g->kh < 1 || g->kw < 1)
    return rn_error(RN_ERR_ARG, "%s: bad convolution parameters", what);
  int64_t full_h = (g->h + 2 * g->ph - g->dh * (g->kh - 1) - 1) / g->sh + 1;
  int64_t full_w = (g->w + 2 * g->pw - g->dw * (g->kw - 1) - 1) / g->sw + 1;
  if (g->oh < 1 || g->ow < 1 || g->oh > full_h || g->ow > full_w)
    return rn_error(RN_ERR_SHAPE, "%s: output %lldx%lld does not fit input %lldx%lld", what, (long long)g->oh,
                    (long long)g->ow, (long long)g->h, (long long)g->w);
  return RN_OK;
}

static rn_status check_tensors(const rn_tensor *x, const rn_tensor *w, const rn_tensor *y, const rn_conv_params *p,
                               const char *what) {
  if (x->ndim != 4 || w->ndim != 4 || y->ndim != 4 || !p)
    return rn_error(RN_ERR_SHAPE, "%s: expected 4-d tensors", what);
  if (!rn_tensor_is_contiguous(x) || !rn_tensor_is_contiguous(w) || !rn_tensor_is_contiguous(y))
    return rn_error(RN_ERR_ARG, "%s: expected contiguous tensors", what);
  if (x->shape[0] != y->shape[0] || w->shape[0] != y->shape[1] || w->shape[1] * p->groups != x->shape[1])
    return rn_error(RN_ERR_SHAPE, "%s: input, weight and output channels do not fit", what);
  return RN_OK;
}

rn_status rn_cpu_conv2d(rn_tensor *y, const rn_tensor *x, const rn_tensor *w, const rn_tensor *bias,
                        const rn_conv_params *p) {
  return rn_cpu_conv2d_packed(y, x, w, bias, p, NULL, 0);
}

rn_status rn_cpu_conv2d_packed(rn_tensor *y, const rn_tensor *x, const rn_tensor *w, const rn_tensor *bias,
                               const rn_conv_params *p, rn_conv_packed **slot, uint64_t stamp) {
  RN_TRY(check_tensors(x, w, y, p, "conv2d"));
  rn_conv_geom g = rn_conv_geom_make(x, w, y, p);
  RN_TRY(check_geom(&g, "conv2d"));
  if (bias && rn_tensor_numel(bias) != g.o) return rn_error(RN_ERR_SHAPE, "conv2d: bias has the wrong size");
  if (rn_tensor_numel(y) == 0) return RN_OK;
  const float *pb = bias ? rn_f32(bias) : NULL;
  pthread_mutex_lock(&conv_lock);
  if (slot && !stamp && *slot) { /* the weights may be shared and changed: drop the copy */
    rn_conv_packed_free(*slot);
    *slot = NULL;
  }
  rn_status st = RN_ERR_UNSUPPORTED;
  if (current_impl() == IMPL_ONEDNN) st = rn_conv_onednn_forward(&g, rn_f32(y), rn_f32(x), rn_f32(w), pb, slot, stamp);
  if (st == RN_ERR_UNSUPPORTED) st = rn_conv_im2col_forward(&g, rn_f32(y), rn_f32(x), rn_f32(w), pb);
  pthread_mutex_unlock(&conv_lock);
  return st;
}

/* The epilogue through the elementwise kernels, in place: the values of the separate ops by construction (the
 * saving on the CPU is the intermediate tensors, not the passes). */
rn_status rn_cpu_conv2d_fused(rn_tensor *y, const rn_tensor *x, const rn_tensor *w, const rn_tensor *bias,
                              const rn_tensor *residual, rn_unary_op act, const rn_conv_params *p) {
  RN_TRY(rn_cpu_conv2d(y, x, w, bias, p));
  if (residual) {
    if (!rn_tensor_same_shape(residual, y)) return rn_error(RN_ERR_SHAPE, "conv2d_fused: residual has the wrong shape");
    RN_TRY(rn_cpu_binary(RN_BIN_ADD, y, y, residual));
  }
  return act == RN_ACT_NONE ? RN_OK : rn_cpu_unary(act, y, y, 0.0f, 0.0f);
}

rn_status rn_cpu_conv2d_backward_data(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *w,
                                      const rn_conv_params *p) {
  RN_TRY(check_tensors(gx, w, gy, p, "conv2d backward (data)"));
  rn_conv_geom g = rn_conv_geom_make(gx, w, gy, p);
  RN_TRY(check_geom(&g, "conv2d backward (data)"));
  if (rn_tensor_numel(gx) == 0) return RN_OK;
  pthread_mutex_lock(&conv_lock);
  rn_status st = RN_ERR_UNSUPPORTED;
  if (current_impl() == IMPL_ONEDNN) st = rn_conv_onednn_backward_data(&g, rn_f32(gx), rn_f32(gy), rn_f32(w));
  if (st == RN_ERR_UNSUPPORTED) st = rn_conv_im2col_backward_data(&g, rn_f32(gx), rn_f32(gy), rn_f32(w));
  pthread_mutex_unlock(&conv_lock);
  return st;
}

rn_status rn_cpu_conv2d_backward_weight(rn_tensor *gw, const rn_tensor *gy, const rn_tensor *x,
                                        const rn_conv_params *p) {
  RN_TRY(check_tensors(x, gw, gy, p, "conv2d backward (weight)"));
  rn_conv_geom g = rn_conv_geom_make(x, gw, gy, p);
  RN_TRY(check_geom(&g, "conv2d backward (weight)"));
  if (rn_tensor_numel(gw) == 0) return RN_OK;
  pthread_mutex_lock(&conv_lock);
  rn_status st = RN_ERR_UNSUPPORTED;
  if (current_impl() == IMPL_ONEDNN) st = rn_conv_onednn_backward_weight(&g, rn_f32(gw), rn_f32(gy), rn_f32(x));
  if (st == RN_ERR_UNSUPPORTED) st = rn_conv_im2col_backward_weight(&g, rn_f32(gw), rn_f32(gy), rn_f32(x));
  pthread_mutex_unlock(&conv_lock);
  return st;
}

/* ------------------------------------------------------------------ scratch */

static struct { float *p; size_t bytes; } scratch[RN_SCRATCH_SLOTS];

static void scratch_free(void) {
  for (int i = 0; i < RN_SCRATCH_SLOTS; i++) { free(scratch[i].p); scratch[i].p = NULL; scratch[i].bytes = 0; }
}

float *rn_cpu_scratch(int slot, size_t bytes) {
  static bool registered;
  if (slot < 0 || slot >= RN_SCRATCH_SLOTS) return NULL;
  if (!registered) { atexit(scratch_free); registered = true; }
  if (scratch[slot].bytes >= bytes && scratch[slot].p) return scratch[slot].p;
  free(scratch[slot].p);
  size_t rounded = ((bytes ? bytes : 1) + 63) & ~(size_t)63;
  scratch[slot].p = aligned_alloc(64, rounded);
  scratch[slot].bytes = scratch[slot].p ? rounded : 0;
  return scratch[slot].p;
}
