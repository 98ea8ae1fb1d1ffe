/* cuda_layers.c - kernel-table entries for normalisation, pooling, upsampling, random fills and Adam: argument
 * checks, then the launchers of kernels/norm.cu, pool.cu and random.cu on the tensor's device stream. */
#include "cuda_internal.h"

#define LAUNCH(name, ...) rn_cu_check(name(__VA_ARGS__), #name)

static const float *opt_ptr(const rn_tensor *t) { return t ? (const float *)rn_cu_ptr(t) : NULL; }

/* N, C and S (product of the dims after the channel dim) of x */
static rn_status ncs(const rn_tensor *x, int64_t *n, int64_t *c, int64_t *s, const char *what) {
  if (x->ndim < 2) return rn_error(RN_ERR_SHAPE, "%s: expected at least 2 dims", what);
  *n = x->shape[0];
  *c = x->shape[1];
  *s = 1;
  for (int d = 2; d < x->ndim; d++) *s *= x->shape[d];
  return RN_OK;
}

/* Optional per-channel float32 tensors (weight, bias, gradients) must be contiguous on the device. */
static rn_status need_opt(const rn_tensor *t, const char *what) { return t ? rn_cu_need(t, true, true, what) : RN_OK; }

/* ------------------------------------------------------------------ batch norm */

rn_status rn_cu_batch_norm_stats(rn_tensor *mean, rn_tensor *var, const rn_tensor *x) {
  cudaStream_t s;
  int64_t N = 0, C = 0, S = 0;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(rn_cu_need(x, true, true, "batch_norm stats: input"));
  RN_TRY(rn_cu_need(mean, true, true, "batch_norm stats: mean"));
  RN_TRY(rn_cu_need(var, true, true, "batch_norm stats: var"));
  RN_TRY(ncs(x, &N, &C, &S, "batch_norm stats"));
  return LAUNCH(rnk_batch_norm_stats, rn_cu_ptr(mean), rn_cu_ptr(var), rn_cu_ptr(x), N, C, S, s);
}

rn_status rn_cu_batch_norm_apply(rn_tensor *y, const rn_tensor *x, const rn_tensor *mean, const rn_tensor *invstd,
                                 const rn_tensor *w, const rn_tensor *b) {
  cudaStream_t s;
  int64_t N = 0, C = 0, S = 0;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(rn_cu_need(x, true, true, "batch_norm: input"));
  RN_TRY(rn_cu_need(y, true, true, "batch_norm: output"));
  RN_TRY(rn_cu_need(mean, true, true, "batch_norm: mean"));
  RN_TRY(rn_cu_need(invstd, true, true, "batch_norm: invstd"));
  RN_TRY(need_opt(w, "batch_norm: weight"));
  RN_TRY(need_opt(b, "batch_norm: bias"));
  RN_TRY(ncs(x, &N, &C, &S, "batch_norm"));
  return LAUNCH(rnk_batch_norm_apply, rn_cu_ptr(y), rn_cu_ptr(x), rn_cu_ptr(mean), rn_cu_ptr(invstd), opt_ptr(w),
                opt_ptr(b), N, C, S, s);
}

rn_status rn_cu_batch_norm_backward(rn_tensor *gx, rn_tensor *gw, rn_tensor *gb, const rn_tensor *gy,
                                    const rn_tensor *x, const rn_tensor *mean, const rn_tensor *invstd,
                                    const rn_tensor *w, bool training) {
  cudaStream_t s;
  int64_t N = 0, C = 0, S = 0;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(rn_cu_need(x, true, true, "batch_norm backward: input"));
  RN_TRY(rn_cu_need(gy, true, true, "batch_norm backward: gy"));
  RN_TRY(rn_cu_need(mean, true, true, "batch_norm backward: mean"));
  RN_TRY(rn_cu_need(invstd, true, true, "batch_norm backward: invstd"));
  RN_TRY(need_opt(gx, "batch_norm backward: gx"));
  RN_TRY(need_opt(gw, "batch_norm backward: gw"));
  RN_TRY(need_opt(gb, "batch_norm backward: gb"));
  RN_TRY(need_opt(w, "batch_norm backward: weight"));
  RN_TRY(ncs(x, &N, &C, &S, "batch_norm backward"));
  int dev = x->storage->device.index;
  size_t wb = (size_t)(C ? C : 1) * 2 * sizeof(double);
  void *work = NULL;
  RN_TRY(rn_cu_alloc(dev, wb, &work));
  rn_status st = LAUNCH(rnk_batch_norm_backward, gx ? rn_cu_ptr(gx) : NULL, gw ? rn_cu_ptr(gw) : NULL,
                        gb ? rn_cu_ptr(gb) : NULL, rn_cu_ptr(gy), rn_cu_ptr(x), rn_cu_ptr(mean), rn_cu_ptr(invstd),
                        opt_ptr(w), training, N, C, S, (double *)work, s);
  rn_cu_free(dev, work, wb);
  return st;
}

/* ------------------------------------------------------------------ group norm */

static rn_status check_groups(int64_t C, int groups, const char *what) {
  if (groups < 1 || C % groups)
    return rn_error(RN_ERR_ARG, "%s: %lld channels do not split into %d groups", what, (long long)C, groups);
  return RN_OK;
}

rn_status rn_cu_group_norm(rn_tensor *y, rn_tensor *mean, rn_tensor *rstd, const rn_tensor *x, int groups,
                           const rn_tensor *w, const rn_tensor *b, float eps, bool silu) {
  cudaStream_t s;
  int64_t N = 0, C = 0, S = 0;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(rn_cu_need(x, true, true, "group_norm: input"));
  RN_TRY(rn_cu_need(y, true, true, "group_norm: output"));
  RN_TRY(rn_cu_need(mean, true, true, "group_norm: mean"));
  RN_TRY(rn_cu_need(rstd, true, true, "group_norm: rstd"));
  RN_TRY(need_opt(w, "group_norm: weight"));
  RN_TRY(need_opt(b, "group_norm: bias"));
  RN_TRY(ncs(x, &N, &C, &S, "group_norm"));
  RN_TRY(check_groups(C, groups, "group_norm"));
  return LAUNCH(rnk_group_norm, rn_cu_ptr(y), rn_cu_ptr(mean), rn_cu_ptr(rstd), rn_cu_ptr(x), opt_ptr(w), opt_ptr(b),
                N, C, S, groups, eps, silu, s);
}

rn_status rn_cu_group_norm_backward(rn_tensor *gx, rn_tensor *gw, rn_tensor *gb, const rn_tensor *gy,
                                    const rn_tensor *x, const rn_tensor *mean, const rn_tensor *rstd, int groups,
                                    const rn_tensor *w) {
  cudaStream_t s;
  int64_t N = 0, C = 0, S = 0;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(rn_cu_need(x, true, true, "group_norm backward: input"));
  RN_TRY(rn_cu_need(gy, true, true, "group_norm backward: gy"));
  RN_TRY(rn_cu_need(mean, true, true, "group_norm backward: mean"));
  RN_TRY(rn_cu_need(rstd, true, true, "group_norm backward: rstd"));
  RN_TRY(need_opt(gx, "group_norm backward: gx"));
  RN_TRY(need_opt(gw, "group_norm backward: gw"));
  RN_TRY(need_opt(gb, "group_norm backward: gb"));
  RN_TRY(need_opt(w, "group_norm backward: weight"));
  RN_TRY(ncs(x, &N, &C, &S, "group_norm backward"));
  RN_TRY(check_groups(C, groups, "group_norm backward"));
  return LAUNCH(rnk_group_norm_backward, gx ? rn_cu_ptr(gx) : NULL, gw ? rn_cu_ptr(gw) : NULL,
                gb ? rn_cu_ptr(gb) : NULL, rn_cu_ptr(gy), rn_cu_ptr(x), rn_cu_ptr(mean), rn_cu_ptr(rstd), opt_ptr(w),
                N, C, S, groups, s);
}

/* ------------------------------------------------------------------ pooling and resampling */

/* Plane count and sizes from an input-side tensor `in` and an output-side tensor `out` (both NCHW). */
static rn_status pool_dims(rnk_pool *d, const rn_tensor *in, const rn_tensor *out, const rn_pool_params *p,
                           const char *what) {
  RN_TRY(rn_cu_need(in, true, true, what));
  RN_TRY(rn_cu_need(out, true, true, what));
  if (in->ndim != 4 || out->ndim != 4 || in->shape[0] != out->shape[0] || in->shape[1] != out->shape[1])
    return rn_error(RN_ERR_SHAPE, "%s: expected NCHW tensors with the same N and C", what);
  memset(d, 0, sizeof *d);
  d->planes = in->shape[0] * in->shape[1];
  d->h = in->shape[2];
  d->w = in->shape[3];
  d->oh = out->shape[2];
  d->ow = out->shape[3];
  if (p) {
    for (int i = 0; i < 2; i++) {
      if (p->kernel[i] < 1 || p->stride[i] < 1 || p->pad[i] < 0)
        return rn_error(RN_ERR_ARG, "%s: bad pooling parameters", what);
      d->kernel[i] = p->kernel[i];
      d->stride[i] = p->stride[i];
      d->pad[i] = p->pad[i];
    }
    d->count_include_pad = p->count_include_pad;
  }
  return RN_OK;
}

rn_status rn_cu_max_pool2d(rn_tensor *y, rn_tensor *argmax, const rn_tensor *x, const rn_pool_params *p) {
  cudaStream_t s;
  rnk_pool d;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(pool_dims(&d, x, y, p, "max_pool2d"));
  RN_TRY(rn_cu_need(argmax, true, false, "max_pool2d: argmax"));
  if (argmax->dtype != RN_I64 || rn_tensor_numel(argmax) != rn_tensor_numel(y))
    return rn_error(RN_ERR_ARG, "max_pool2d: argmax must be int64 of the output's shape");
  return LAUNCH(rnk_max_pool2d, rn_cu_ptr(y), rn_cu_ptr(argmax), rn_cu_ptr(x), &d, s);
}

rn_status rn_cu_max_pool2d_backward(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *argmax) {
  cudaStream_t s;
  rnk_pool d;
  RN_TRY(rn_cu_stream(gx, &s));
  RN_TRY(pool_dims(&d, gx, gy, NULL, "max_pool2d backward"));
  RN_TRY(rn_cu_need(argmax, true, false, "max_pool2d backward: argmax"));
  if (argmax->dtype != RN_I64 || rn_tensor_numel(argmax) != rn_tensor_numel(gy))
    return rn_error(RN_ERR_ARG, "max_pool2d backward: argmax must be int64 of gy's shape");
  return LAUNCH(rnk_max_pool2d_backward, rn_cu_ptr(gx), rn_cu_ptr(gy), rn_cu_ptr(argmax), &d, s);
}

rn_status rn_cu_avg_pool2d(rn_tensor *y, const rn_tensor *x, const rn_pool_params *p) {
  cudaStream_t s;
  rnk_pool d;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(pool_dims(&d, x, y, p, "avg_pool2d"));
  return LAUNCH(rnk_avg_pool2d, rn_cu_ptr(y), rn_cu_ptr(x), &d, s);
}

rn_status rn_cu_avg_pool2d_backward(rn_tensor *gx, const rn_tensor *gy, const rn_pool_params *p) {
  cudaStream_t s;
  rnk_pool d;
  RN_TRY(rn_cu_stream(gx, &s));
  RN_TRY(pool_dims(&d, gx, gy, p, "avg_pool2d backward"));
  return LAUNCH(rnk_avg_pool2d_backward, rn_cu_ptr(gx), rn_cu_ptr(gy), &d, s);
}

rn_status rn_cu_adaptive_avg_pool2d(rn_tensor *y, const rn_tensor *x) {
  cudaStream_t s;
  rnk_pool d;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(pool_dims(&d, x, y, NULL, "adaptive_avg_pool2d"));
  if (d.planes > 0 && d.oh > 0 && d.ow > 0 && (d.h == 0 || d.w == 0))
    return rn_error(RN_ERR_SHAPE, "adaptive_avg_pool2d: empty input plane");
  return LAUNCH(rnk_adaptive_avg_pool2d, rn_cu_ptr(y), rn_cu_ptr(x), &d, s);
}

rn_status rn_cu_adaptive_avg_pool2d_backward(rn_tensor *gx, const rn_tensor *gy) {
  cudaStream_t s;
  rnk_pool d;
  RN_TRY(rn_cu_stream(gx, &s));
  RN_TRY(pool_dims(&d, gx, gy, NULL, "adaptive_avg_pool2d backward"));
  return LAUNCH(rnk_adaptive_avg_pool2d_backward, rn_cu_ptr(gx), rn_cu_ptr(gy), &d, s);
}

rn_status rn_cu_upsample(rn_tensor *y, const rn_tensor *x, rn_upsample_mode mode, bool align_corners) {
  cudaStream_t s;
  rnk_pool d;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(pool_dims(&d, x, y, NULL, "upsample"));
  return LAUNCH(rnk_upsample, rn_cu_ptr(y), rn_cu_ptr(x), &d, mode, align_corners, s);
}

rn_status rn_cu_upsample_backward(rn_tensor *gx, const rn_tensor *gy, rn_upsample_mode mode, bool align_corners) {
  cudaStream_t s;
  rnk_pool d;
  RN_TRY(rn_cu_stream(gx, &s));
  RN_TRY(pool_dims(&d, gx, gy, NULL, "upsample backward"));
  return LAUNCH(rnk_upsample_backward, rn_cu_ptr(gx), rn_cu_ptr(gy), &d, mode, align_corners, s);
}

/* ------------------------------------------------------------------ random fills */

/* Fills a contiguous tensor directly; a strided view is filled through a contiguous temporary, as on the CPU,
 * so element i (row-major over the view) always gets counter offset + i. */
typedef enum { FILL_UNIFORM, FILL_NORMAL } fill_kind;

static rn_status rng_fill(fill_kind kind, rn_tensor *t, uint64_t seed, uint64_t stream, uint64_t offset, float a,
                          float b) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(t, &s));
  RN_TRY(rn_cu_need(t, false, true, kind == FILL_UNIFORM ? "rand" : "randn"));
  rn_tensor *c = NULL;
  RN_TRY(rn_contig_nograd(&c, t));
  int64_t n = rn_tensor_numel(c);
  rn_status st = kind == FILL_UNIFORM ? LAUNCH(rnk_rng_uniform, rn_cu_ptr(c), n, seed, stream, offset, a, b, s)
                                      : LAUNCH(rnk_rng_normal, rn_cu_ptr(c), n, seed, stream, offset, a, b, s);
  if (st == RN_OK && c != t) st = rn_cu_copy(t, c);
  rn_tensor_release(c);
  return st;
}

rn_status rn_cu_rng_uniform(rn_tensor *t, uint64_t seed, uint64_t stream, uint64_t offset, float lo, float hi) {
  return rng_fill(FILL_UNIFORM, t, seed, stream, offset, lo, hi);
}

rn_status rn_cu_rng_normal(rn_tensor *t, uint64_t seed, uint64_t stream, uint64_t offset, float mean, float std) {
  return rng_fill(FILL_NORMAL, t, seed, stream, offset, mean, std);
}

/* ------------------------------------------------------------------ Adam */

rn_status rn_cu_adam_step(rn_tensor *p, const rn_tensor *g, rn_tensor *m, rn_tensor *v, float lr, float beta1,
                          float beta2, float eps, float weight_decay, int64_t step, bool decoupled) {
  cudaStream_t s;
  RN_TRY(rn_cu_stream(p, &s));
  RN_TRY(rn_cu_need(p, true, true, "adam: parameter"));
  RN_TRY(rn_cu_need(g, true, true, "adam: gradient"));
  RN_TRY(rn_cu_need(m, true, true, "adam: first moment"));
  RN_TRY(rn_cu_need(v, true, true, "adam: second moment"));
  int64_t n = rn_tensor_numel(p);
  if (rn_tensor_numel(g) != n || rn_tensor_numel(m) != n || rn_tensor_numel(v) != n)
    return rn_error(RN_ERR_SHAPE, "adam: parameter, gradient and moments differ in size");
  /* the scalar factors exactly as the CPU kernel computes them */
  double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);
  float step_size = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
  float decay = decoupled ? 1.0f - lr * weight_decay : 1.0f, l2 = decoupled ? 0.0f : weight_decay;
  return LAUNCH(rnk_adam_step, rn_cu_ptr(p), rn_cu_ptr(g), rn_cu_ptr(m), rn_cu_ptr(v), n, beta1, beta2, eps,
                step_size, inv_sqrt_bc2, decay, l2, s);
}
