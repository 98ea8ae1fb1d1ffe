/* bench_cuda_backbone.c - GPU throughput of WideResNet-50-2 feature extraction (timm features_only, layer1..4,
 * batch norms folded into conv biases as rn.backbone does) with random weights, built from engine ops on a CUDA
 * device. Used by scripts/gpu-check.sh; prints one "result:" line per run.
 *
 *   bench_cuda_backbone [--batch 32] [--res 256] [--seconds 5] [--tf32] [--bf16] [--device 0]
 *
 * The weights are drawn on the device (the GPU Philox fill); values do not affect the speed. Timing covers whole
 * forwards after three warm-up forwards (the first ones choose cuDNN algorithms: REALNET_CUDNN_BENCHMARK=1 is
 * set unless the environment says otherwise) and ends with a device synchronisation.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda/cuda_api.h"
#include "realnet/realnet.h"

typedef struct { rn_tensor *w, *b; rn_conv_params p; } conv;

static rn_device dev;
static rn_rng rng;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
  fprintf(stderr, "bench_cuda_backbone: %s: %s\n", what, rn_last_error());
  exit(1);
}

#define TRY(call) do { if ((call) != RN_OK) die(#call); } while (0)

static conv make_conv(int64_t in, int64_t out, int k, int stride) {
  conv c = {NULL, NULL, rn_conv_params_default()};
  int64_t ws[4] = {out, in, k, k}, bs[1] = {out};
  TRY(rn_tensor_empty(&c.w, 4, ws, RN_F32, dev));
  TRY(rn_rng_normal_(&rng, c.w, 0.0f, 1.0f / sqrtf((float)(in * k * k))));
  TRY(rn_tensor_zeros(&c.b, 1, bs, RN_F32, dev));
  c.p.stride[0] = c.p.stride[1] = stride;
  c.p.pad[0] = c.p.pad[1] = k / 2;
  return c;
}

static rn_tensor *run_conv(const conv *c, rn_tensor *x, bool relu) {
  rn_tensor *y = NULL, *r = NULL;
  TRY(rn_conv2d(&y, x, c->w, c->b, &c->p));
  if (!relu) return y;
  TRY(rn_unary(&r, RN_UN_RELU, y, 0, 0));
  rn_tensor_release(y);
  return r;
}

/* torchvision Bottleneck (stride on the 3x3), width = 2 * planes for the wide variant */
typedef struct { conv c1, c2, c3, down; bool has_down; } block;

static block make_block(int64_t in, int64_t planes, int stride) {
  int64_t width = planes * 2, out = planes * 4;
  block b = {make_conv(in, width, 1, 1), make_conv(width, width, 3, stride), make_conv(width, out, 1, 1), {0}, false};
  if (stride != 1 || in != out) { b.down = make_conv(in, out, 1, stride); b.has_down = true; }
  return b;
}

static rn_tensor *run_block(const block *b, rn_tensor *x) {
  rn_tensor *h1 = run_conv(&b->c1, x, true), *h2 = run_conv(&b->c2, h1, true), *h3 = run_conv(&b->c3, h2, false);
  rn_tensor *id = b->has_down ? run_conv(&b->down, x, false) : rn_tensor_retain(x), *s = NULL, *y = NULL;
  TRY(rn_add(&s, h3, id));
  TRY(rn_unary(&y, RN_UN_RELU, s, 0, 0));
  rn_tensor_release(h1);
  rn_tensor_release(h2);
  rn_tensor_release(h3);
  rn_tensor_release(id);
  rn_tensor_release(s);
  return y;
}

static const int depth[4] = {3, 4, 6, 3};
static conv stem;
static block blocks[16];
static int n_blocks;

static void build(void) {
  stem = make_conv(3, 64, 7, 2);
  int64_t in = 64;
  for (int l = 0; l < 4; l++) {
    int64_t planes = 64 << l;
    for (int i = 0; i < depth[l]; i++) {
      blocks[n_blocks++] = make_block(in, planes, i == 0 && l > 0 ? 2 : 1);
      in = planes * 4;
    }
  }
}

/* One forward; the four stage outputs are released at once (as a feature consumer would after use). */
static void forward(rn_tensor *x) {
  rn_tensor *h = run_conv(&stem, x, true), *p = NULL;
  rn_pool_params mp = {{3, 3}, {2, 2}, {1, 1}, false, false};
  TRY(rn_max_pool2d(&p, h, &mp));
  rn_tensor_release(h);
  int b = 0;
  for (int l = 0; l < 4; l++)
    for (int i = 0; i < depth[l]; i++, b++) {
      rn_tensor *y = run_block(&blocks[b], p);
      rn_tensor_release(p);
      p = y;
    }
  rn_tensor_release(p);
}

int main(int argc, char **argv) {
  int batch = 32, res = 256, device = 0;
  double seconds = 5;
  bool tf32 = rn_cuda_get_tf32(), bf16 = rn_cuda_get_bf16();
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--res") && i + 1 < argc) res = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--device") && i + 1 < argc) device = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--tf32")) tf32 = true;
    else if (!strcmp(argv[i], "--bf16")) bf16 = true;
    else {
      fprintf(stderr, "usage: bench_cuda_backbone [--batch N] [--res N] [--seconds S] [--tf32] [--bf16] [--device K]\n");
      return 2;
    }
  }
  if (batch < 1 || res < 32 || seconds < 0) {
    fprintf(stderr, "bench_cuda_backbone: --batch must be >= 1, --res >= 32, --seconds >= 0\n");
    return 2;
  }
  if (!rn_cuda_available()) {
    fprintf(stderr, "bench_cuda_backbone: %s\n", rn_cuda_unavailable_reason());
    return 77;
  }
  setenv("REALNET_CUDNN_BENCHMARK", "1", 0);
  rn_cuda_set_tf32(tf32);
  rn_cuda_set_bf16(bf16);
  rn_set_grad_enabled(false);
  dev = (rn_device){RN_CUDA, device};
  rn_rng_init(&rng, 1, 0);
  char name[128] = "?";
  TRY(rn_cuda_device_name(device, name, sizeof name));
  build();
  int64_t xs[4] = {batch, 3, res, res};
  rn_tensor *x = NULL;
  TRY(rn_tensor_empty(&x, 4, xs, RN_F32, dev));
  TRY(rn_rng_normal_(&rng, x, 0.0f, 1.0f));
  double t_warm = now();
  for (int i = 0; i < 3; i++) forward(x);
  TRY(rn_cuda_synchronize(device));
  t_warm = now() - t_warm;
  int n = 0;
  double t0 = now(), dt;
  do {
    forward(x);
    n++;
    TRY(rn_cuda_synchronize(device));
    dt = now() - t0;
  } while (n < 5 || dt < seconds);
  printf("result: wide_resnet50_2 layer1-4 batch=%d res=%d tf32=%s bf16=%s device=\"%s\": %.1f img/s (%.2f ms per "
         "batch, %d batches; warm-up %.1f s; %zu MiB cached)\n", batch, res, tf32 ? "on" : "off", bf16 ? "on" : "off",
         name, batch * n / dt,
         1e3 * dt / n, n, t_warm, rn_cuda_cached_bytes() >> 20);
  rn_tensor_release(x);
  return 0;
}
