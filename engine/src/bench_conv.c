/* bench_conv.c - WideResNet-50-2 convolution throughput next to the machine's sgemm rate (see bench.h).
 *
 * The conv shapes are derived by walking the architecture (torchvision's Bottleneck: 1x1, 3x3 with the
 * stride, 1x1, and a strided 1x1 downsample in each stage's first block), so counts come out right for
 * any resolution. Kernels are called directly on preallocated tensors: the numbers are the convolution
 * itself, not allocation (fresh pages are slow to fault in on some VMs).
 */
#include <cblas.h>
#include <dnnl.h>
#include <omp.h>
#include <time.h>

#include "cpu/conv_impl.h"
#include "internal.h"
#include "realnet/bench.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct { rn_bench_row *v; int n, cap; } row_list;

/* Adds a layer; returns its output size. Repeated shapes only bump the count. */
static int add_layer(row_list *l, int batch, int c, int o, int k, int s, int h) {
  int p = k / 2, oh = (h + 2 * p - k) / s + 1;
  for (int i = 0; i < l->n; i++) {
    rn_bench_row *r = &l->v[i];
    if (r->in_ch == c && r->out_ch == o && r->kernel == k && r->stride == s && r->in_h == h) { r->count++; return oh; }
  }
  if (l->n == l->cap) return oh; /* cannot happen: cap covers every layer */
  rn_bench_row *r = &l->v[l->n++];
  memset(r, 0, sizeof *r);
  r->in_ch = c; r->out_ch = o; r->kernel = k; r->stride = s; r->pad = p;
  r->in_h = r->in_w = h; r->out_h = r->out_w = oh; r->count = 1;
  r->gflop = 2.0 * batch * (double)o * oh * oh * (double)c * k * k * 1e-9;
  return oh;
}

static void wide_resnet50_2(row_list *l, int batch, int res) {
  int h = add_layer(l, batch, 3, 64, 7, 2, res);
  h = (h + 2 - 3) / 2 + 1; /* max pool 3x3 stride 2 pad 1 */
  int in = 64, planes[4] = {64, 128, 256, 512}, blocks[4] = {3, 4, 6, 3};
  for (int st = 0; st < 4; st++) {
    int width = planes[st] * 2, out = planes[st] * 4;
    for (int b = 0; b < blocks[st]; b++) {
      int s = b == 0 && st > 0 ? 2 : 1;
      add_layer(l, batch, in, width, 1, 1, h);
      int h2 = add_layer(l, batch, width, width, 3, s, h);
      add_layer(l, batch, width, out, 1, 1, h2);
      if (b == 0) add_layer(l, batch, in, out, 1, s, h);
      in = out;
      h = h2;
    }
  }
}

/* Repeats f until `budget` seconds have passed (at least `min_reps` calls); *per_call is the fastest call,
 * the estimate least disturbed by other work on a shared machine. */
typedef rn_status (*bench_fn)(void *ctx);
static rn_status time_it(bench_fn f, void *ctx, int warmup, int min_reps, double budget, double *per_call) {
  for (int i = 0; i < warmup; i++) RN_TRY(f(ctx));
  int reps = 0;
  double t0 = now_s(), best = INFINITY;
  do {
    double t1 = now_s();
    RN_TRY(f(ctx));
    double dt = now_s() - t1;
    if (dt < best) best = dt;
    reps++;
  } while (reps < min_reps || now_s() - t0 < budget);
  *per_call = best;
  return RN_OK;
}

typedef struct { int n; float *a, *b, *c; int mode; } gemm_ctx;

static rn_status gemm_call(void *p) {
  gemm_ctx *g = p;
  if (g->mode == 0)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->n, g->n, g->n, 1.0f, g->a, g->n, g->b, g->n, 0.0f, g->c,
                g->n);
  else if (g->mode == 1)
    rn_cpu_sgemm_par(false, false, g->n, g->n, g->n, 1.0f, g->a, g->n, g->b, g->n, 0.0f, g->c, g->n);
  else if (dnnl_sgemm('N', 'N', g->n, g->n, g->n, 1.0f, g->a, g->n, g->b, g->n, 0.0f, g->c, g->n) != dnnl_success)
    return rn_error(RN_ERR_UNSUPPORTED, "bench: dnnl_sgemm failed");
  return RN_OK;
}

/* The sgemm reference: OpenBLAS with its own threads and with our OpenMP split (the better counts), and
 * oneDNN's sgemm, on a 2048^3 product. */
static rn_status bench_sgemm(bool quick, rn_bench_summary *s) {
  gemm_ctx g = {2048, NULL, NULL, NULL, 0};
  size_t bytes = (size_t)g.n * g.n * sizeof(float);
  g.a = malloc(bytes); g.b = malloc(bytes); g.c = malloc(bytes);
  if (!g.a || !g.b || !g.c) { free(g.a); free(g.b); free(g.c); return rn_error(RN_ERR_OOM, "bench: out of memory"); }
  for (size_t i = 0; i < (size_t)g.n * g.n; i++) { g.a[i] = (float)(i % 7) * 0.1f; g.b[i] = (float)(i % 5) * 0.1f; }
  memset(g.c, 0, bytes);
  double flop = 2.0 * g.n * (double)g.n * g.n * 1e-9, t, best = 0;
  rn_status st = RN_OK;
  rn_cpu_blas_init();
  openblas_set_num_threads(omp_get_max_threads()); /* OpenBLAS's own threading, for this measurement only */
  g.mode = 0;
  st = time_it(gemm_call, &g, 1, quick ? 1 : 3, quick ? 0.0 : 0.5, &t);
  openblas_set_num_threads(1);
  if (st == RN_OK) { best = flop / t; g.mode = 1; st = time_it(gemm_call, &g, 1, quick ? 1 : 3, quick ? 0.0 : 0.5, &t); }
  if (st == RN_OK) {
    s->openblas_gflops = flop / t > best ? flop / t : best;
    g.mode = 2;
    st = time_it(gemm_call, &g, 1, quick ? 1 : 3, quick ? 0.0 : 0.5, &t);
  }
  if (st == RN_OK) s->onednn_sgemm_gflops = flop / t;
  s->sgemm_gflops = s->openblas_gflops > s->onednn_sgemm_gflops ? s->openblas_gflops : s->onednn_sgemm_gflops;
  free(g.a); free(g.b); free(g.c);
  return st;
}

typedef struct { rn_tensor *x, *w, *y; rn_conv_params p; } conv_ctx;

static rn_status conv_call(void *p) {
  conv_ctx *c = p;
  return rn_kernels_of(c->x)->conv2d(c->y, c->x, c->w, NULL, &c->p);
}

static rn_status bench_row(rn_bench_row *r, int batch, bool quick) {
  conv_ctx c = {NULL, NULL, NULL, rn_conv_params_default()};
  c.p.stride[0] = c.p.stride[1] = r->stride;
  c.p.pad[0] = c.p.pad[1] = r->pad;
  int64_t xs[4] = {batch, r->in_ch, r->in_h, r->in_w}, ws[4] = {r->out_ch, r->in_ch, r->kernel, r->kernel};
  int64_t ys[4] = {batch, r->out_ch, r->out_h, r->out_w};
  rn_status st = rn_tensor_full(&c.x, 4, xs, RN_F32, rn_cpu(), 0.5);
  if (st == RN_OK) st = rn_tensor_full(&c.w, 4, ws, RN_F32, rn_cpu(), 0.01);
  if (st == RN_OK) st = rn_tensor_zeros(&c.y, 4, ys, RN_F32, rn_cpu());
  if (st == RN_OK) st = time_it(conv_call, &c, quick ? 1 : 2, quick ? 2 : 3, quick ? 0.0 : 0.3, &r->seconds);
  if (st == RN_OK) r->gflops = r->gflop / r->seconds;
  rn_tensor_release(c.x);
  rn_tensor_release(c.w);
  rn_tensor_release(c.y);
  return st;
}

rn_status rn_bench_conv(int batch, int res, bool quick, rn_bench_row **rows, int *n, rn_bench_summary *summary) {
  *rows = NULL;
  *n = 0;
  if (batch < 1 || res < 32)
    return rn_error(RN_ERR_ARG, "bench conv: batch must be >= 1 and resolution >= 32 (got %d and %d)", batch, res);
  rn_bench_summary s;
  memset(&s, 0, sizeof s);
  const char *impl = getenv("REALNET_CONV");
  s.conv_impl = impl && strcmp(impl, "im2col") == 0 ? "im2col" : "onednn";
  s.threads = omp_get_max_threads();
  row_list l = {calloc(64, sizeof(rn_bench_row)), 0, 64};
  if (!l.v) return rn_error(RN_ERR_OOM, "bench conv: out of memory");
  wide_resnet50_2(&l, batch, res);
  rn_status st = bench_sgemm(quick, &s);
  double flop = 0, secs = 0;
  for (int i = 0; i < l.n && st == RN_OK; i++) {
    st = bench_row(&l.v[i], batch, quick);
    flop += l.v[i].count * l.v[i].gflop;
    secs += l.v[i].count * l.v[i].seconds;
  }
  if (st != RN_OK) { free(l.v); return st; }
  s.conv_gflops = flop / secs;
  s.total_seconds = secs;
  *rows = l.v;
  *n = l.n;
  if (summary) *summary = s;
  return RN_OK;
}
