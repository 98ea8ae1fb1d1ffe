/* test_gradcheck_pool.c - finite-difference checks of max/avg/adaptive/global pooling and upsampling. */
#include "testutil.h"

typedef enum { MAX, AVG, ADAPTIVE, GLOBAL_AVG, GLOBAL_MAX, UPSAMPLE } kind;

typedef struct {
  kind k;
  rn_pool_params p;
  int oh, ow;
  rn_upsample_mode mode;
  bool align;
} pool_ctx;

static rn_status pool_fn(rn_tensor **out, rn_tensor **in, void *ctx) {
  pool_ctx *c = ctx;
  switch (c->k) {
    case MAX: return rn_max_pool2d(out, in[0], &c->p);
    case AVG: return rn_avg_pool2d(out, in[0], &c->p);
    case ADAPTIVE: return rn_adaptive_avg_pool2d(out, in[0], c->oh, c->ow);
    case GLOBAL_AVG: return rn_global_avg_pool(out, in[0]);
    case GLOBAL_MAX: return rn_global_max_pool(out, in[0]);
    default: return rn_upsample(out, in[0], c->oh, c->ow, c->mode, c->align);
  }
}

/* Distinct values 0.05 apart in shuffled order: max pooling is only differentiable away from ties, and
 * finite differences of step GC_EPS must not swap the winner of a window. */
static rn_tensor *spread_input(int64_t h, int64_t w, uint64_t seed) {
  int64_t shape[4] = {2, 2, h, w};
  int64_t n = 4 * h * w;
  rn_tensor *x = NULL;
  if (rn_tensor_empty(&x, 4, shape, RN_F32, rn_cpu()) != RN_OK) return NULL;
  float *v = rn_f32(x);
  for (int64_t i = 0; i < n; i++) v[i] = 0.05f * (float)(i - n / 2);
  uint64_t s = seed;
  for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates on a 64-bit LCG */
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    int64_t j = (int64_t)((s >> 33) % (uint64_t)(i + 1));
    float t = v[i]; v[i] = v[j]; v[j] = t;
  }
  return x;
}

static void run(const char *name, pool_ctx c, int64_t h, int64_t w) {
  rn_tensor *x = spread_input(h, w, (uint64_t)(h * 31 + w));
  if (!CHECK(x != NULL)) return;
  CHECK_OK(rn_set_requires_grad(x, true));
  test_gradcheck(name, pool_fn, 1, &x, &c, GC_EPS, GC_ATOL, GC_RTOL);
  rn_tensor_release(x);
}

static pool_ctx pool(kind k, int kh, int kw, int sh, int sw, int ph, int pw, bool ceil_mode, bool cip) {
  pool_ctx c = {k, {{kh, kw}, {sh, sw}, {ph, pw}, ceil_mode, cip}, 0, 0, RN_UPSAMPLE_NEAREST, false};
  return c;
}

static pool_ctx resize(kind k, int oh, int ow, rn_upsample_mode mode, bool align) {
  pool_ctx c = {k, {{1, 1}, {1, 1}, {0, 0}, false, false}, oh, ow, mode, align};
  return c;
}

int main(void) {
  run("max_pool2d ceil pad", pool(MAX, 3, 3, 2, 2, 1, 1, true, false), 5, 6);
  run("max_pool2d overlap", pool(MAX, 2, 3, 1, 2, 0, 1, false, false), 4, 5);
  run("avg_pool2d ceil count_pad", pool(AVG, 3, 3, 2, 2, 1, 1, true, true), 5, 6);
  run("avg_pool2d ceil no_count_pad", pool(AVG, 3, 2, 2, 1, 1, 1, true, false), 5, 4);
  run("adaptive_avg_pool2d 5x7->3x4", resize(ADAPTIVE, 3, 4, RN_UPSAMPLE_NEAREST, false), 5, 7);
  run("adaptive_avg_pool2d 3x3->4x5", resize(ADAPTIVE, 4, 5, RN_UPSAMPLE_NEAREST, false), 3, 3);
  run("global_avg_pool", resize(GLOBAL_AVG, 1, 1, RN_UPSAMPLE_NEAREST, false), 3, 4);
  run("global_max_pool", resize(GLOBAL_MAX, 1, 1, RN_UPSAMPLE_NEAREST, false), 3, 4);
  run("upsample nearest up", resize(UPSAMPLE, 7, 5, RN_UPSAMPLE_NEAREST, false), 3, 2);
  run("upsample nearest down", resize(UPSAMPLE, 2, 3, RN_UPSAMPLE_NEAREST, false), 5, 4);
  run("upsample bilinear up", resize(UPSAMPLE, 7, 5, RN_UPSAMPLE_BILINEAR, false), 3, 2);
  run("upsample bilinear down", resize(UPSAMPLE, 2, 3, RN_UPSAMPLE_BILINEAR, false), 5, 4);
  run("upsample bilinear align_corners up", resize(UPSAMPLE, 7, 5, RN_UPSAMPLE_BILINEAR, true), 3, 2);
  run("upsample bilinear align_corners down", resize(UPSAMPLE, 2, 3, RN_UPSAMPLE_BILINEAR, true), 5, 4);
  return test_finish("gradcheck_pool");
}
