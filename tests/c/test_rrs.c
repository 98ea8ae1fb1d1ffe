/* test_rrs.c - Reconstruction Residual Selection against a plain-loop reference: counts, ranking in training
 * (batch statistics) and eval (running statistics), running-statistics update, gather, overlap gradients,
 * the disabled switch and bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "realnet/rrs.h"
#include "testutil.h"

/* The reference top-k: channels sorted by descending score, ties to the lower index. */
static void ref_topk(const double *score, int64_t C, int64_t k, int64_t *out) {
  bool *used = calloc((size_t)C, sizeof *used);
  for (int64_t j = 0; j < k; j++) {
    int64_t best = -1;
    for (int64_t c = 0; c < C; c++)
      if (!used[c] && (best < 0 || score[c] > score[best])) best = c;
    used[best] = true;
    out[j] = best;
  }
  free(used);
}

/* Reference selection of R [B,C,H,W] with the given mean/var per channel: source channels [B, km+ka]. */
static void ref_select(const float *r, int64_t B, int64_t C, int64_t HW, const double *mean, const double *var,
                       double eps, int64_t km, int64_t ka, int64_t *idx) {
  double *smax = malloc((size_t)C * sizeof *smax), *savg = malloc((size_t)C * sizeof *savg);
  for (int64_t b = 0; b < B; b++) {
    for (int64_t c = 0; c < C; c++) {
      const float *p = r + (b * C + c) * HW;
      double mx = -INFINITY, s = 0;
      for (int64_t i = 0; i < HW; i++) {
        double z = (p[i] - mean[c]) / sqrt(var[c] + eps); /* the normalised residual Z, materialised */
        if (z > mx) mx = z;
        s += z;
      }
      smax[c] = mx;
      savg[c] = s / (double)HW;
    }
    ref_topk(smax, C, km, idx + b * (km + ka));
    ref_topk(savg, C, ka, idx + b * (km + ka) + km);
  }
  free(smax);
  free(savg);
}

static void batch_stats(const float *r, int64_t B, int64_t C, int64_t HW, double *mean, double *var) {
  for (int64_t c = 0; c < C; c++) {
    double s = 0, q = 0;
    for (int64_t b = 0; b < B; b++)
      for (int64_t i = 0; i < HW; i++) s += r[(b * C + c) * HW + i];
    mean[c] = s / (double)(B * HW);
    for (int64_t b = 0; b < B; b++)
      for (int64_t i = 0; i < HW; i++) {
        double d = r[(b * C + c) * HW + i] - mean[c];
        q += d * d;
      }
    var[c] = q / (double)(B * HW); /* biased, as BN normalises in training */
  }
}

/* A residual whose channels have different scales, so batch-normalised ranking differs from raw ranking. */
static rn_tensor *residual(int64_t B, int64_t C, int64_t H, int64_t W, uint64_t seed) {
  int64_t shape[4] = {B, C, H, W};
  rn_tensor *x = test_randn(4, shape, seed, 1.0f);
  float *p = rn_f32(x);
  for (int64_t b = 0; b < B; b++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t i = 0; i < H * W; i++) {
        float *v = &p[(b * C + c) * H * W + i];
        *v = (*v) * (*v) * (1.0f + 0.5f * (float)c) + 0.1f * (float)((c * 7) % 5);
      }
  return x;
}

/* Checks output and indices of one forward against the reference for the given statistics. */
static void check_forward(rn_tensor *x, rn_tensor *out, rn_tensor *idx, const double *mean, const double *var,
                          int64_t km, int64_t ka) {
  int64_t B = x->shape[0], C = x->shape[1], HW = x->shape[2] * x->shape[3], K = km + ka;
  int64_t *want = malloc((size_t)(B * K) * sizeof *want);
  ref_select(rn_f32(x), B, C, HW, mean, var, 1e-5, km, ka, want);
  CHECK(out->ndim == 4 && out->shape[0] == B && out->shape[1] == K);
  CHECK(idx && idx->dtype == RN_I64 && idx->shape[0] == B && idx->shape[1] == K);
  const int64_t *got = (const int64_t *)rn_tensor_data(idx);
  int bad_idx = 0, bad_val = 0;
  for (int64_t n = 0; n < B * K; n++) bad_idx += got[n] != want[n];
  for (int64_t b = 0; b < B; b++)
    for (int64_t j = 0; j < K; j++) {
      const float *src = rn_f32(x) + (b * C + want[b * K + j]) * HW, *dst = rn_f32(out) + (b * K + j) * HW;
      bad_val += memcmp(src, dst, (size_t)HW * sizeof(float)) != 0;
    }
  CHECK(bad_idx == 0);
  CHECK(bad_val == 0);
  free(want);
}

static void test_counts(void) {
  rn_rrs_config c = rn_rrs_config_default();
  c.channels = 1536;
  rn_rrs *r = NULL;
  int64_t km, ka, k;
  CHECK_OK(rn_rrs_new(&r, &c, rn_cpu()));
  CHECK_OK(rn_rrs_counts(r, 0, &km, &ka));
  CHECK(km == 256 && ka == 256); /* the paper's 256 + 256 of 1536 */
  CHECK_OK(rn_rrs_out_channels(r, 0, &k));
  CHECK(k == 512);
  rn_rrs_free(r);
  c.mode = RN_RRS_MAX;
  c.channels = 10;
  CHECK_OK(rn_rrs_new(&r, &c, rn_cpu()));
  CHECK_OK(rn_rrs_counts(r, 0, &km, &ka));
  CHECK(km == 3 && ka == 0);
  rn_rrs_free(r);
  c.mode = RN_RRS_MAXAVG;
  c.k_max = 4;
  c.k_avg = 2;
  CHECK_OK(rn_rrs_new(&r, &c, rn_cpu()));
  CHECK_OK(rn_rrs_counts(r, 0, &km, &ka));
  CHECK(km == 4 && ka == 2);
  rn_rrs_free(r);
  rn_rrs_mode m;
  CHECK_OK(rn_rrs_mode_parse("mean", &m));
  CHECK(m == RN_RRS_AVG);
}

static void test_train_eval(void) {
  int64_t B = 3, C = 9, H = 5, W = 4, HW = H * W;
  rn_tensor *x = residual(B, C, H, W, 11);
  rn_rrs_config c = rn_rrs_config_default(); /* 3 of 9: max 2, avg 1 */
  rn_rrs *r = NULL;
  CHECK_OK(rn_rrs_new(&r, &c, rn_cpu()));
  rn_tensor *out = NULL, *idx = NULL;
  CHECK_OK(rn_rrs_forward(&out, &idx, r, x, true));
  double mean[9], var[9];
  batch_stats(rn_f32(x), B, C, HW, mean, var);
  check_forward(x, out, idx, mean, var, 2, 1);
  /* running = 0.1 * (0 | 1) + 0.9 * batch (unbiased variance) */
  const float *rm = rn_f32(rn_rrs_get_running_mean(r)), *rv = rn_f32(rn_rrs_get_running_var(r));
  double n = (double)(B * HW), err = 0;
  for (int64_t k = 0; k < C; k++) {
    err = fmax(err, fabs(rm[k] - 0.9 * mean[k]));
    err = fmax(err, fabs(rv[k] - (0.1 + 0.9 * var[k] * n / (n - 1))));
  }
  CHECK(err < 1e-4);
  rn_tensor_release(out);
  rn_tensor_release(idx);

  /* eval ranks with the running statistics: make them favour the last channels strongly */
  int64_t cs = C;
  rn_tensor *m2 = NULL, *v2 = NULL;
  CHECK_OK(rn_tensor_zeros(&m2, 1, &cs, RN_F32, rn_cpu()));
  CHECK_OK(rn_tensor_full(&v2, 1, &cs, RN_F32, rn_cpu(), 1.0));
  for (int64_t k = 0; k < C; k++) {
    rn_f32(m2)[k] = (float)(-2.0 * (double)k);
    rn_f32(v2)[k] = (float)(1.0 / (1.0 + (double)k));
  }
  CHECK_OK(rn_rrs_set_running_stats(r, m2, v2));
  double me[9], ve[9];
  for (int64_t k = 0; k < C; k++) { me[k] = rn_f32(m2)[k]; ve[k] = rn_f32(v2)[k]; }
  CHECK_OK(rn_rrs_forward(&out, &idx, r, x, false));
  check_forward(x, out, idx, me, ve, 2, 1);
  CHECK(((int64_t *)rn_tensor_data(idx))[0] == C - 1);
  /* eval leaves the statistics alone */
  CHECK(rn_f32(rn_rrs_get_running_mean(r))[3] == rn_f32(m2)[3]);
  rn_tensor_release(out);
  rn_tensor_release(idx);
  rn_tensor_release(m2);
  rn_tensor_release(v2);
  rn_rrs_free(r);
  rn_tensor_release(x);
}

/* The GMP and GAP sets overlap: the gradient of a channel picked twice is the sum of both. */
static void test_overlap_grad(void) {
  int64_t shape[4] = {1, 4, 2, 2};
  rn_tensor *x = NULL;
  CHECK_OK(rn_tensor_zeros(&x, 4, shape, RN_F32, rn_cpu()));
  for (int i = 0; i < 4; i++) rn_f32(x)[4 + i] = 5.0f + (float)i; /* channel 1 dominates max and mean */
  rn_f32(x)[0] = 1.0f;
  CHECK_OK(rn_set_requires_grad(x, true));
  rn_rrs_config c = rn_rrs_config_default();
  c.k_max = 1;
  c.k_avg = 1;
  rn_rrs *r = NULL;
  CHECK_OK(rn_rrs_new(&r, &c, rn_cpu()));
  rn_tensor *out = NULL, *idx = NULL, *loss = NULL;
  CHECK_OK(rn_rrs_forward(&out, &idx, r, x, false)); /* running stats 0/1: raw ranking */
  const int64_t *ix = (const int64_t *)rn_tensor_data(idx);
  CHECK(ix[0] == 1 && ix[1] == 1);
  CHECK_OK(rn_reduce(&loss, RN_RED_SUM, out, 0, NULL, false));
  CHECK_OK(rn_backward(loss, NULL));
  CHECK(x->grad && rn_f32(x->grad)[4] == 2.0f && rn_f32(x->grad)[0] == 0.0f);
  rn_tensor_release(loss);
  rn_tensor_release(out);
  rn_tensor_release(idx);
  rn_rrs_free(r);
  rn_tensor_release(x);
}

static void test_disabled_and_lazy(void) {
  rn_tensor *x = residual(2, 6, 3, 3, 5);
  rn_rrs_config c = rn_rrs_config_default();
  c.enabled = false;
  rn_rrs *r = NULL;
  rn_tensor *out = NULL, *idx = NULL;
  CHECK_OK(rn_rrs_new(&r, &c, rn_cpu()));
  CHECK_OK(rn_rrs_forward(&out, &idx, r, x, true));
  CHECK(out == x && idx == NULL);
  rn_tensor_release(out);
  rn_rrs_free(r);
  /* channels from the first forward, then fixed */
  c = rn_rrs_config_default();
  CHECK_OK(rn_rrs_new(&r, &c, rn_cpu()));
  CHECK(rn_rrs_get_running_mean(r) == NULL);
  CHECK_OK(rn_rrs_forward(&out, NULL, r, x, true));
  CHECK(rn_rrs_get_config(r)->channels == 6 && out->shape[1] == 2);
  rn_tensor_release(out);
  rn_tensor *y = residual(2, 5, 3, 3, 6);
  CHECK_ERR(rn_rrs_forward(&out, NULL, r, y, true), RN_ERR_SHAPE, "built for 6");
  rn_tensor_release(y);
  rn_rrs_free(r);
  rn_tensor_release(x);
}

static void test_bad_input(void) {
  rn_rrs *r = NULL;
  rn_rrs_config c = rn_rrs_config_default();
  c.ratio = 0;
  CHECK_ERR(rn_rrs_new(&r, &c, rn_cpu()), RN_ERR_ARG, "ratio");
  c = rn_rrs_config_default();
  c.ratio = NAN;
  CHECK_ERR(rn_rrs_new(&r, &c, rn_cpu()), RN_ERR_ARG, "ratio");
  c = rn_rrs_config_default();
  c.k_max = -1;
  CHECK_ERR(rn_rrs_new(&r, &c, rn_cpu()), RN_ERR_ARG, "counts");
  c = rn_rrs_config_default();
  c.channels = 4;
  c.k_max = 5;
  CHECK_ERR(rn_rrs_new(&r, &c, rn_cpu()), RN_ERR_ARG, "exceed");
  c = rn_rrs_config_default();
  c.mode = RN_RRS_MAX;
  c.k_avg = 3;
  CHECK_ERR(rn_rrs_new(&r, &c, rn_cpu()), RN_ERR_ARG, "max count");
  c = rn_rrs_config_default();
  c.momentum = 1.5f;
  CHECK_ERR(rn_rrs_new(&r, &c, rn_cpu()), RN_ERR_ARG, "momentum");
  rn_rrs_mode m;
  CHECK_ERR(rn_rrs_mode_parse("median", &m), RN_ERR_ARG, "unknown mode");

  c = rn_rrs_config_default();
  CHECK_OK(rn_rrs_new(&r, &c, rn_cpu()));
  rn_tensor *out = NULL;
  CHECK_ERR(rn_rrs_forward(&out, NULL, r, NULL, true), RN_ERR_ARG, "residual");
  int64_t s3[3] = {2, 3, 4};
  rn_tensor *x3 = test_randn(3, s3, 1, 1.0f);
  CHECK_ERR(rn_rrs_forward(&out, NULL, r, x3, true), RN_ERR_SHAPE, "[B,C,H,W]");
  rn_tensor *xi = NULL;
  int64_t s4[4] = {2, 3, 2, 2};
  CHECK_OK(rn_tensor_zeros(&xi, 4, s4, RN_I64, rn_cpu()));
  CHECK_ERR(rn_rrs_forward(&out, NULL, r, xi, true), RN_ERR_ARG, "float32");
  int64_t s1[4] = {1, 3, 1, 1};
  rn_tensor *x1 = test_randn(4, s1, 2, 1.0f);
  CHECK_ERR(rn_rrs_forward(&out, NULL, r, x1, true), RN_ERR_SHAPE, "more than one value");
  rn_tensor *m3 = NULL;
  int64_t c3 = 3, c4 = 4;
  CHECK_OK(rn_tensor_zeros(&m3, 1, &c3, RN_F32, rn_cpu()));
  rn_tensor *m4 = NULL;
  CHECK_OK(rn_tensor_zeros(&m4, 1, &c4, RN_F32, rn_cpu()));
  CHECK_ERR(rn_rrs_set_running_stats(r, m3, m4), RN_ERR_SHAPE, "running_var");
  CHECK(out == NULL);
  rn_tensor_release(x3);
  rn_tensor_release(xi);
  rn_tensor_release(x1);
  rn_tensor_release(m3);
  rn_tensor_release(m4);
  rn_rrs_free(r);
  rn_rrs_free(NULL);
}

int main(void) {
  test_counts();
  test_train_eval();
  test_overlap_grad();
  test_disabled_and_lazy();
  test_bad_input();
  return test_finish("rrs");
}
