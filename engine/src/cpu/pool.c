/* pool.c - CPU kernels for pooling and resampling (NCHW float32, contiguous).
 *
 * Every kernel works one [H, W] plane at a time, and planes are independent, so the OpenMP loops run over
 * N*C planes; backward kernels scatter into their own plane of gx and need no atomics. Window and index
 * rules follow PyTorch's CPU kernels so results agree with it to float rounding.
 */
#include "cpu_kernels.h"

typedef struct { int64_t planes, h, w, oh, ow; } dims;

/* Planes and sizes of an input-side tensor `in` and an output-side tensor `out`. */
static dims dims_of(const rn_tensor *in, const rn_tensor *out) {
  dims d = {in->shape[0] * in->shape[1], in->shape[2], in->shape[3], out->shape[2], out->shape[3]};
  return d;
}

/* ------------------------------------------------------------------ max pool */

rn_status rn_cpu_max_pool2d(rn_tensor *y, rn_tensor *argmax, const rn_tensor *x, const rn_pool_params *p) {
  dims d = dims_of(x, y);
  const float *xp = rn_f32(x);
  float *yp = rn_f32(y);
  int64_t *ap = (int64_t *)rn_tensor_data(argmax);
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < d.planes; pl++) {
    const float *xs = xp + pl * d.h * d.w;
    for (int64_t oh = 0; oh < d.oh; oh++) {
      int64_t h0 = oh * p->stride[0] - p->pad[0], h1 = h0 + p->kernel[0];
      if (h0 < 0) h0 = 0;
      if (h1 > d.h) h1 = d.h;
      for (int64_t ow = 0; ow < d.ow; ow++) {
        int64_t w0 = ow * p->stride[1] - p->pad[1], w1 = w0 + p->kernel[1];
        if (w0 < 0) w0 = 0;
        if (w1 > d.w) w1 = d.w;
        /* the first element wins ties and a NaN wins over everything (the last NaN), as in PyTorch */
        int64_t best = h0 * d.w + w0;
        float m = -INFINITY;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) {
            float v = xs[ih * d.w + iw];
            bool take = v > m || v != v;
            m = take ? v : m;
            best = take ? ih * d.w + iw : best;
          }
        yp[(pl * d.oh + oh) * d.ow + ow] = m;
        ap[(pl * d.oh + oh) * d.ow + ow] = best;
      }
    }
  }
  return RN_OK;
}

rn_status rn_cpu_max_pool2d_backward(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *argmax) {
  dims d = dims_of(gx, gy);
  const float *gyp = rn_f32(gy);
  const int64_t *ap = (const int64_t *)rn_tensor_data(argmax);
  float *gxp = rn_f32(gx);
  int64_t no = d.oh * d.ow;
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < d.planes; pl++) {
    float *gs = gxp + pl * d.h * d.w;
    for (int64_t o = 0; o < no; o++) gs[ap[pl * no + o]] += gyp[pl * no + o];
  }
  return RN_OK;
}

/* ------------------------------------------------------------------ avg pool */

/* Window [h0,h1) x [w0,w1) of output (oh, ow), clipped to the input, and its divisor: the window area
 * clipped to the padded input (count_include_pad) or to the input itself. 0 when the window is empty. */
static float avg_window(const rn_pool_params *p, const dims *d, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1,
                        int64_t *w0, int64_t *w1) {
  *h0 = oh * p->stride[0] - p->pad[0];
  *w0 = ow * p->stride[1] - p->pad[1];
  *h1 = *h0 + p->kernel[0];
  *w1 = *w0 + p->kernel[1];
  if (*h1 > d->h + p->pad[0]) *h1 = d->h + p->pad[0];
  if (*w1 > d->w + p->pad[1]) *w1 = d->w + p->pad[1];
  int64_t padded = (*h1 - *h0) * (*w1 - *w0);
  if (*h0 < 0) *h0 = 0;
  if (*w0 < 0) *w0 = 0;
  if (*h1 > d->h) *h1 = d->h;
  if (*w1 > d->w) *w1 = d->w;
  if (*h0 >= *h1 || *w0 >= *w1) return 0;
  return (float)(p->count_include_pad ? padded : (*h1 - *h0) * (*w1 - *w0));
}

rn_status rn_cpu_avg_pool2d(rn_tensor *y, const rn_tensor *x, const rn_pool_params *p) {
  dims d = dims_of(x, y);
  const float *xp = rn_f32(x);
  float *yp = rn_f32(y);
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < d.planes; pl++) {
    const float *xs = xp + pl * d.h * d.w;
    for (int64_t oh = 0; oh < d.oh; oh++)
      for (int64_t ow = 0; ow < d.ow; ow++) {
        int64_t h0, h1, w0, w1;
        float div = avg_window(p, &d, oh, ow, &h0, &h1, &w0, &w1);
        float sum = 0;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) sum += xs[ih * d.w + iw];
        yp[(pl * d.oh + oh) * d.ow + ow] = div > 0 ? sum / div : 0;
      }
  }
  return RN_OK;
}

rn_status rn_cpu_avg_pool2d_backward(rn_tensor *gx, const rn_tensor *gy, const rn_pool_params *p) {
  dims d = dims_of(gx, gy);
  const float *gyp = rn_f32(gy);
  float *gxp = rn_f32(gx);
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < d.planes; pl++) {
    float *gs = gxp + pl * d.h * d.w;
    for (int64_t oh = 0; oh < d.oh; oh++)
      for (int64_t ow = 0; ow < d.ow; ow++) {
        int64_t h0, h1, w0, w1;
        float div = avg_window(p, &d, oh, ow, &h0, &h1, &w0, &w1);
        if (div <= 0) continue;
        float g = gyp[(pl * d.oh + oh) * d.ow + ow] / div;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) gs[ih * d.w + iw] += g;
      }
  }
  return RN_OK;
}

/* ------------------------------------------------------------------ adaptive avg pool */

/* PyTorch's bins: [floor(i*in/out), ceil((i+1)*in/out)); they overlap when in is not a multiple of out. */
static int64_t bin_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
static int64_t bin_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

rn_status rn_cpu_adaptive_avg_pool2d(rn_tensor *y, const rn_tensor *x) {
  dims d = dims_of(x, y);
  const float *xp = rn_f32(x);
  float *yp = rn_f32(y);
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < d.planes; pl++) {
    const float *xs = xp + pl * d.h * d.w;
    for (int64_t oh = 0; oh < d.oh; oh++) {
      int64_t h0 = bin_start(oh, d.h, d.oh), h1 = bin_end(oh, d.h, d.oh);
      for (int64_t ow = 0; ow < d.ow; ow++) {
        int64_t w0 = bin_start(ow, d.w, d.ow), w1 = bin_end(ow, d.w, d.ow);
        double sum = 0; /* global pooling lands here with whole planes */
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) sum += xs[ih * d.w + iw];
        yp[(pl * d.oh + oh) * d.ow + ow] = (float)(sum / (double)((h1 - h0) * (w1 - w0)));
      }
    }
  }
  return RN_OK;
}

rn_status rn_cpu_adaptive_avg_pool2d_backward(rn_tensor *gx, const rn_tensor *gy) {
  dims d = dims_of(gx, gy);
  const float *gyp = rn_f32(gy);
  float *gxp = rn_f32(gx);
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < d.planes; pl++) {
    float *gs = gxp + pl * d.h * d.w;
    for (int64_t oh = 0; oh < d.oh; oh++) {
      int64_t h0 = bin_start(oh, d.h, d.oh), h1 = bin_end(oh, d.h, d.oh);
      for (int64_t ow = 0; ow < d.ow; ow++) {
        int64_t w0 = bin_start(ow, d.w, d.ow), w1 = bin_end(ow, d.w, d.ow);
        float g = gyp[(pl * d.oh + oh) * d.ow + ow] / (float)((h1 - h0) * (w1 - w0));
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) gs[ih * d.w + iw] += g;
      }
    }
  }
  return RN_OK;
}

/* ------------------------------------------------------------------ upsample */

/* PyTorch 'nearest': src = min(floor(dst * (in/out)), in-1), with the scale in float as PyTorch has it. */
static int64_t nearest_src(int64_t dst, int64_t in, int64_t out) {
  if (out == in) return dst;
  if (out == 2 * in) return dst >> 1;
  float scale = (float)in / (float)out;
  int64_t s = (int64_t)floorf((float)dst * scale);
  return s < in - 1 ? s : in - 1;
}

/* Bilinear taps along one axis: src index i0, neighbour offset (0 or 1) and weight l1 of the neighbour. */
typedef struct { int64_t i0, step; float l1; } tap;

static tap linear_tap(int64_t dst, int64_t in, int64_t out, bool align_corners) {
  float src;
  if (align_corners) {
    float scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    src = scale * (float)dst;
  } else {
    float scale = (float)in / (float)out;
    src = scale * ((float)dst + 0.5f) - 0.5f;
    if (src < 0) src = 0; /* PyTorch clamps here, so the first outputs copy the edge */
  }
  tap t;
  t.i0 = (int64_t)src;
  if (t.i0 > in - 1) t.i0 = in - 1;
  t.step = t.i0 < in - 1 ? 1 : 0;
  t.l1 = src - (float)t.i0;
  return t;
}

/* The taps of every output row and column, computed once per call instead of once per element. */
static rn_status taps_new(tap **rows, tap **cols, const dims *d, rn_upsample_mode mode, bool align_corners) {
  *rows = malloc((size_t)d->oh * sizeof **rows);
  *cols = malloc((size_t)d->ow * sizeof **cols);
  if (!*rows || !*cols) {
    free(*rows);
    free(*cols);
    return rn_error(RN_ERR_OOM, "upsample: out of memory for %lld x %lld index tables", (long long)d->oh,
                    (long long)d->ow);
  }
  for (int64_t i = 0; i < d->oh + d->ow; i++) {
    bool is_row = i < d->oh;
    int64_t o = is_row ? i : i - d->oh, in = is_row ? d->h : d->w, out = is_row ? d->oh : d->ow;
    tap t = {0, 0, 0.0f};
    if (mode == RN_UPSAMPLE_NEAREST) t.i0 = nearest_src(o, in, out);
    else t = linear_tap(o, in, out, align_corners);
    if (is_row) (*rows)[o] = t;
    else (*cols)[o] = t;
  }
  return RN_OK;
}

rn_status rn_cpu_upsample(rn_tensor *y, const rn_tensor *x, rn_upsample_mode mode, bool align_corners) {
  dims d = dims_of(x, y);
  tap *th, *tw;
  RN_TRY(taps_new(&th, &tw, &d, mode, align_corners));
  const float *xp = rn_f32(x);
  float *yp = rn_f32(y);
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < d.planes; pl++) {
    const float *xs = xp + pl * d.h * d.w;
    float *ys = yp + pl * d.oh * d.ow;
    for (int64_t oh = 0; oh < d.oh; oh++) {
      const float *r0 = xs + th[oh].i0 * d.w, *r1 = r0 + th[oh].step * d.w;
      float *yr = ys + oh * d.ow;
      if (mode == RN_UPSAMPLE_NEAREST) {
        for (int64_t ow = 0; ow < d.ow; ow++) yr[ow] = r0[tw[ow].i0];
        continue;
      }
      float l1 = th[oh].l1, l0 = 1 - l1;
      for (int64_t ow = 0; ow < d.ow; ow++) {
        int64_t a = tw[ow].i0, b = a + tw[ow].step;
        float m1 = tw[ow].l1, m0 = 1 - m1;
        yr[ow] = l0 * (m0 * r0[a] + m1 * r0[b]) + l1 * (m0 * r1[a] + m1 * r1[b]);
      }
    }
  }
  free(th);
  free(tw);
  return RN_OK;
}

rn_status rn_cpu_upsample_backward(rn_tensor *gx, const rn_tensor *gy, rn_upsample_mode mode, bool align_corners) {
  dims d = dims_of(gx, gy);
  tap *th, *tw;
  RN_TRY(taps_new(&th, &tw, &d, mode, align_corners));
  const float *gyp = rn_f32(gy);
  float *gxp = rn_f32(gx);
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < d.planes; pl++) {
    float *gs = gxp + pl * d.h * d.w;
    const float *g = gyp + pl * d.oh * d.ow;
    for (int64_t oh = 0; oh < d.oh; oh++) {
      float *r0 = gs + th[oh].i0 * d.w, *r1 = r0 + th[oh].step * d.w;
      const float *gr = g + oh * d.ow;
      if (mode == RN_UPSAMPLE_NEAREST) {
        for (int64_t ow = 0; ow < d.ow; ow++) r0[tw[ow].i0] += gr[ow];
        continue;
      }
      float l1 = th[oh].l1, l0 = 1 - l1;
      for (int64_t ow = 0; ow < d.ow; ow++) {
        int64_t a = tw[ow].i0, b = a + tw[ow].step;
        float m1 = tw[ow].l1, m0 = 1 - m1, vt = l0 * gr[ow], vb = l1 * gr[ow];
        r0[a] += m0 * vt;
        r0[b] += m1 * vt;
        r1[a] += m0 * vb;
        r1[b] += m1 * vb;
      }
    }
  }
  free(th);
  free(tw);
  return RN_OK;
}
