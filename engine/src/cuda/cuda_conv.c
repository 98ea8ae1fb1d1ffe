/* cuda_conv.c - 2-d convolution forward, backward-data and backward-weight through cuDNN (NCHW float32).
 *
 * Algorithms come from cuDNN's heuristics (cudnnGet*_v7), or from timing every algorithm once per shape when
 * REALNET_CUDNN_BENCHMARK=1 (cudnnFind*Ex); the choice is cached per shape, direction, device and TF32 setting,
 * together with the descriptors and the workspace size: rebuilding those and asking cuDNN 9 for the workspace
 * on every call cost more host time than a small convolution takes on the GPU. 1x1 convolutions (stride 1, no
 * padding, one group) run as one batched cuBLAS product instead, which costs even less to launch.
 * Candidates needing more than 2 GiB of workspace are skipped, and an algorithm cuDNN then refuses
 * (NOT_SUPPORTED) falls through to the next. Without TF32 the math type is CUDNN_FMA_MATH (true float32).
 *
 * The engine allows an output smaller than the strided formula gives (conv-transpose with output_padding >=
 * stride); cuDNN does not, so such calls run on a full-size temporary (zero-padded gy for the backward passes,
 * a cropped copy of the full output for the forward).
 *
 * This uses cuDNN's legacy convolution API, deprecated in cuDNN 9 in favour of the graph API but present and
 * supported throughout 9.x; the deprecation warnings are silenced here only.
 *
 * bfloat16 autocast (rn_cuda_set_bf16): the call's two inputs are converted into bfloat16 temporaries, cuDNN runs
 * its bfloat16 configuration on them (float32 accumulation, bfloat16 output: the legacy API has no bfloat16-in,
 * float32-out configuration) and the output is converted back into the float32 destination. A shape for which
 * cuDNN has no bfloat16 algorithm, or whose bfloat16 descriptors or algorithm queries cuDNN refuses with any
 * status but an allocation failure, runs in float32 instead (remembered, so it is asked once; counted by
 * rn_cuda_bf16_fallbacks).
 */
#include <cudnn.h>
#include <pthread.h>
#include <stdatomic.h>

#include "cuda_internal.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

/* The tensor-core (TF32) algorithms for NCHW data transpose input and output through the workspace: at batch 32
 * RealNet's discriminator convolution (512 channels at 64x64) needs about 540 MB, so a 512 MiB cap left it on the
 * plain float32 kernels at a tenth of the speed. */
#define WS_LIMIT ((size_t)2 << 30)

static rn_status dnn_check(cudnnStatus_t s, const char *call) {
  if (s == CUDNN_STATUS_SUCCESS) return RN_OK;
  bool oom = s == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
             s == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
  return rn_error(oom ? RN_ERR_OOM : RN_ERR_DEVICE, "%s failed: %s (status %d)", call, cudnnGetErrorString(s), (int)s);
}

static bool not_supported(cudnnStatus_t s) { return s >= CUDNN_STATUS_NOT_SUPPORTED && s < CUDNN_STATUS_INTERNAL_ERROR; }

/* ------------------------------------------------------------------ handles and the algorithm cache */

static pthread_mutex_t dnn_lock = PTHREAD_MUTEX_INITIALIZER;
static cudnnHandle_t handles[RN_CUDA_MAX_DEVICES][RN_CUDA_MAX_LANES];

/* The handle of the device's current lane (one per lane, as cuBLAS's; see cuda_internal.h). */
static rn_status dnn_handle(int device, cudaStream_t stream, cudnnHandle_t *out) {
  int lane = rn_cu_current_lane(device);
  pthread_mutex_lock(&dnn_lock);
  rn_status st = RN_OK;
  if (!handles[device][lane]) st = dnn_check(cudnnCreate(&handles[device][lane]), "cudnnCreate");
  cudnnHandle_t h = handles[device][lane];
  pthread_mutex_unlock(&dnn_lock);
  RN_TRY(st);
  RN_TRY(dnn_check(cudnnSetStream(h, stream), "cudnnSetStream"));
  *out = h;
  return RN_OK;
}

rn_status rn_cu_dnn_prepare(int device, int lanes) {
  cudaStream_t s;
  RN_TRY(rn_cu_enter(device, &s));
  rn_status st = RN_OK;
  pthread_mutex_lock(&dnn_lock);
  for (int i = 0; st == RN_OK && i < lanes && i < RN_CUDA_MAX_LANES; i++)
    if (!handles[device][i]) st = dnn_check(cudnnCreate(&handles[device][i]), "cudnnCreate");
  pthread_mutex_unlock(&dnn_lock);
  return st;
}

typedef enum { DIR_FORWARD, DIR_BACKWARD_DATA, DIR_BACKWARD_WEIGHT } conv_dir;
static const char *dir_names[] = {"conv2d", "conv2d backward (data)", "conv2d backward (weight)"};

/* One convolution as cuDNN sees it: oh/ow are the full output sizes. The spare fields make the struct free of
 * padding bytes, so memcmp compares only values. */
typedef struct {
  int dir, device, tf32, bf16;
  int64_t n, c, h, w, o, kh, kw, oh, ow;
  int sh, sw, ph, pw, dh, dw, g, spare1;
} conv_key;
_Static_assert(sizeof(conv_key) == 4 * sizeof(int) + 9 * sizeof(int64_t) + 8 * sizeof(int), "conv_key has padding");

/* ------------------------------------------------------------------ descriptors */

typedef struct {
  cudnnTensorDescriptor_t x, y;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
} descs;

static void descs_free(descs *d) {
  if (d->x) cudnnDestroyTensorDescriptor(d->x);
  if (d->y) cudnnDestroyTensorDescriptor(d->y);
  if (d->w) cudnnDestroyFilterDescriptor(d->w);
  if (d->conv) cudnnDestroyConvolutionDescriptor(d->conv);
}

static rn_status descs_make(descs *d, const conv_key *k) {
  memset(d, 0, sizeof *d);
  cudnnDataType_t dt = k->bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  RN_TRY(dnn_check(cudnnCreateTensorDescriptor(&d->x), "cudnnCreateTensorDescriptor"));
  RN_TRY(dnn_check(cudnnCreateTensorDescriptor(&d->y), "cudnnCreateTensorDescriptor"));
  RN_TRY(dnn_check(cudnnCreateFilterDescriptor(&d->w), "cudnnCreateFilterDescriptor"));
  RN_TRY(dnn_check(cudnnCreateConvolutionDescriptor(&d->conv), "cudnnCreateConvolutionDescriptor"));
  RN_TRY(dnn_check(cudnnSetTensor4dDescriptor(d->x, CUDNN_TENSOR_NCHW, dt, (int)k->n, (int)k->c, (int)k->h,
                                              (int)k->w), "cudnnSetTensor4dDescriptor (input)"));
  RN_TRY(dnn_check(cudnnSetTensor4dDescriptor(d->y, CUDNN_TENSOR_NCHW, dt, (int)k->n, (int)k->o, (int)k->oh,
                                              (int)k->ow), "cudnnSetTensor4dDescriptor (output)"));
  RN_TRY(dnn_check(cudnnSetFilter4dDescriptor(d->w, dt, CUDNN_TENSOR_NCHW, (int)k->o, (int)(k->c / k->g),
                                              (int)k->kh, (int)k->kw), "cudnnSetFilter4dDescriptor"));
  RN_TRY(dnn_check(cudnnSetConvolution2dDescriptor(d->conv, k->ph, k->pw, k->sh, k->sw, k->dh, k->dw,
                                                   CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                   "cudnnSetConvolution2dDescriptor"));
  RN_TRY(dnn_check(cudnnSetConvolutionGroupCount(d->conv, k->g), "cudnnSetConvolutionGroupCount"));
  RN_TRY(dnn_check(cudnnSetConvolutionMathType(d->conv, k->tf32 || k->bf16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH),
                   "cudnnSetConvolutionMathType"));
  int n, c, h, w; /* cuDNN's own output size must be ours, or the descriptors disagree */
  RN_TRY(dnn_check(cudnnGetConvolution2dForwardOutputDim(d->conv, d->x, d->w, &n, &c, &h, &w),
                   "cudnnGetConvolution2dForwardOutputDim"));
  if (n != k->n || c != k->o || h != k->oh || w != k->ow)
    return rn_error(RN_ERR_SHAPE, "%s: cuDNN computes output %dx%dx%dx%d, expected %lldx%lldx%lldx%lld",
                    dir_names[k->dir], n, c, h, w, (long long)k->n, (long long)k->o, (long long)k->oh,
                    (long long)k->ow);
  return RN_OK;
}

/* A chosen algorithm with everything a call needs: descriptors (the math type set) and the workspace size;
 * algo -1 records that cuDNN has none for the key. */
typedef struct {
  conv_key key;
  uint64_t hash;
  int algo;
  size_t ws;
  descs d;
  bool used;
} cache_entry;

#define CACHE_SIZE 512
static cache_entry cache[CACHE_SIZE]; /* a ring: the oldest choice makes room; guarded by dnn_lock */
static int cache_next;

static uint64_t key_hash(const conv_key *k) {
  const unsigned char *p = (const unsigned char *)k;
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (size_t i = 0; i < sizeof *k; i++) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

/* The entry for k, or NULL; the caller holds dnn_lock. */
static cache_entry *cache_find_locked(const conv_key *k, uint64_t hash) {
  for (int i = 0; i < CACHE_SIZE; i++)
    if (cache[i].used && cache[i].hash == hash && memcmp(&cache[i].key, k, sizeof *k) == 0) return &cache[i];
  return NULL;
}

/* Keeps d (now owned by the cache) for k; the caller holds dnn_lock. */
static void cache_put_locked(const conv_key *k, uint64_t hash, int algo, size_t ws, descs d) {
  cache_entry *e = &cache[cache_next];
  if (e->used) descs_free(&e->d);
  *e = (cache_entry){*k, hash, algo, ws, d, true};
  cache_next = (cache_next + 1) % CACHE_SIZE;
}

/* ------------------------------------------------------------------ the three directions, one interface */

typedef struct { int algo; cudnnStatus_t status; size_t memory; cudnnMathType_t math; } candidate;

/* Device buffers of a call: x/w/y are input, weight and output for the forward, and the corresponding
 * gradients for the backward passes (dx or dw is the one written). */
typedef struct { void *x, *w, *y; } bufs;

#define MAX_ALGOS 16

static rn_status list_algos(conv_dir dir, cudnnHandle_t h, const descs *d, const bufs *b, bool bench, int device,
                            candidate *out, int *n) {
  *n = 0;
  void *ws = NULL;
  size_t wsb = 0;
  if (bench) { /* Find* times each algorithm with real buffers and a workspace we provide */
    wsb = WS_LIMIT;
    if (rn_cu_alloc(device, wsb, &ws) != RN_OK) { wsb = (size_t)64 << 20; RN_TRY(rn_cu_alloc(device, wsb, &ws)); }
  }
  cudnnStatus_t s;
  int got = 0;
  if (dir == DIR_FORWARD) {
    cudnnConvolutionFwdAlgoPerf_t p[MAX_ALGOS];
    int want = CUDNN_CONVOLUTION_FWD_ALGO_COUNT < MAX_ALGOS ? CUDNN_CONVOLUTION_FWD_ALGO_COUNT : MAX_ALGOS;
    s = bench ? cudnnFindConvolutionForwardAlgorithmEx(h, d->x, b->x, d->w, b->w, d->conv, d->y, b->y, want, &got, p, ws, wsb)
              : cudnnGetConvolutionForwardAlgorithm_v7(h, d->x, d->w, d->conv, d->y, want, &got, p);
    for (int i = 0; i < got; i++) out[i] = (candidate){(int)p[i].algo, p[i].status, p[i].memory, p[i].mathType};
  } else if (dir == DIR_BACKWARD_DATA) {
    cudnnConvolutionBwdDataAlgoPerf_t p[MAX_ALGOS];
    int want = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT < MAX_ALGOS ? CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT : MAX_ALGOS;
    s = bench ? cudnnFindConvolutionBackwardDataAlgorithmEx(h, d->w, b->w, d->y, b->y, d->conv, d->x, b->x, want, &got, p, ws, wsb)
              : cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d->w, d->y, d->conv, d->x, want, &got, p);
    for (int i = 0; i < got; i++) out[i] = (candidate){(int)p[i].algo, p[i].status, p[i].memory, p[i].mathType};
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t p[MAX_ALGOS];
    int want = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT < MAX_ALGOS ? CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT : MAX_ALGOS;
    s = bench ? cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d->x, b->x, d->y, b->y, d->conv, d->w, b->w, want, &got, p, ws, wsb)
              : cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d->x, d->y, d->conv, d->w, want, &got, p);
    for (int i = 0; i < got; i++) out[i] = (candidate){(int)p[i].algo, p[i].status, p[i].memory, p[i].mathType};
  }
  rn_cu_free(device, ws, wsb);
  RN_TRY(dnn_check(s, bench ? "cudnnFindConvolution*AlgorithmEx" : "cudnnGetConvolution*Algorithm_v7"));
  *n = got;
  return RN_OK;
}

static cudnnStatus_t ws_size(conv_dir dir, cudnnHandle_t h, const descs *d, int algo, size_t *bytes) {
  *bytes = 0;
  if (dir == DIR_FORWARD)
    return cudnnGetConvolutionForwardWorkspaceSize(h, d->x, d->w, d->conv, d->y, (cudnnConvolutionFwdAlgo_t)algo, bytes);
  if (dir == DIR_BACKWARD_DATA)
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, d->w, d->y, d->conv, d->x,
                                                        (cudnnConvolutionBwdDataAlgo_t)algo, bytes);
  return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d->x, d->y, d->conv, d->w,
                                                        (cudnnConvolutionBwdFilterAlgo_t)algo, bytes);
}

static cudnnStatus_t execute(conv_dir dir, cudnnHandle_t h, const descs *d, const bufs *b, int algo, void *ws,
                             size_t wsb) {
  const float one = 1.0f, zero = 0.0f;
  if (dir == DIR_FORWARD)
    return cudnnConvolutionForward(h, &one, d->x, b->x, d->w, b->w, d->conv, (cudnnConvolutionFwdAlgo_t)algo, ws, wsb,
                                   &zero, d->y, b->y);
  if (dir == DIR_BACKWARD_DATA)
    return cudnnConvolutionBackwardData(h, &one, d->w, b->w, d->y, b->y, d->conv, (cudnnConvolutionBwdDataAlgo_t)algo,
                                        ws, wsb, &zero, d->x, b->x);
  return cudnnConvolutionBackwardFilter(h, &one, d->x, b->x, d->y, b->y, d->conv,
                                        (cudnnConvolutionBwdFilterAlgo_t)algo, ws, wsb, &zero, d->w, b->w);
}

/* Runs one algorithm with a workspace from the caching allocator; *refused when cuDNN says NOT_SUPPORTED, or
 * (lenient: a bfloat16 candidate, which the float32 path can replace) fails in any way but running out of memory. */
static rn_status try_algo(conv_dir dir, cudnnHandle_t h, const descs *d, const bufs *b, int algo,
                          cudnnMathType_t math, int device, bool lenient, bool *refused, size_t *ws_bytes) {
  *refused = false;
  cudnnStatus_t s = cudnnSetConvolutionMathType(d->conv, math);
  if (s == CUDNN_STATUS_SUCCESS) {
    size_t wsb = 0;
    s = ws_size(dir, h, d, algo, &wsb);
    *ws_bytes = wsb;
    if (s == CUDNN_STATUS_SUCCESS) {
      void *ws = NULL;
      if (wsb) RN_TRY(rn_cu_alloc(device, wsb, &ws));
      s = execute(dir, h, d, b, algo, ws, wsb);
      rn_cu_free(device, ws, wsb); /* stream-ordered reuse is safe */
    }
  }
  bool oom = s == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
             s == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
  if (not_supported(s) || (lenient && s != CUDNN_STATUS_SUCCESS && !oom)) {
    *refused = true;
    return RN_OK;
  }
  return dnn_check(s, dir == DIR_FORWARD ? "cudnnConvolutionForward"
                      : dir == DIR_BACKWARD_DATA ? "cudnnConvolutionBackwardData" : "cudnnConvolutionBackwardFilter");
}

/* Timing the algorithms runs them and waits for the device, which a graph capture cannot record: a shape first
 * met during a capture takes the heuristics' choice. */
static bool bench_mode(void) {
  const char *e = getenv("REALNET_CUDNN_BENCHMARK");
  return e && strcmp(e, "1") == 0 && !rn_cuda_capturing();
}

static rn_status dir_check(cudnnStatus_t s, conv_dir dir) {
  return dnn_check(s, dir == DIR_FORWARD ? "cudnnConvolutionForward"
                      : dir == DIR_BACKWARD_DATA ? "cudnnConvolutionBackwardData" : "cudnnConvolutionBackwardFilter");
}

static rn_status no_algorithm(const conv_key *k) {
  return rn_error(RN_ERR_UNSUPPORTED, "%s: cuDNN has no %salgorithm for input %lldx%lldx%lldx%lld, weight "
                  "%lldx%lldx%lldx%lld (stride %dx%d, pad %dx%d, dilation %dx%d, groups %d)", dir_names[k->dir],
                  k->bf16 ? "bfloat16 " : "", (long long)k->n, (long long)k->c, (long long)k->h, (long long)k->w,
                  (long long)k->o, (long long)(k->c / k->g), (long long)k->kh, (long long)k->kw, k->sh, k->sw, k->ph,
                  k->pw, k->dh, k->dw, k->g);
}

/* Recalls the algorithm, descriptors and workspace size of the key (or chooses them once) and runs the
 * convolution on the buffers. The lock is held while a cached entry is used: launches are asynchronous, so
 * that is short, and no other thread can recycle the entry meanwhile. */
static rn_status run_conv(const conv_key *k, const bufs *b, cudaStream_t stream) {
  cudnnHandle_t h;
  RN_TRY(dnn_handle(k->device, stream, &h));
  conv_dir dir = (conv_dir)k->dir;
  uint64_t hash = key_hash(k);
  pthread_mutex_lock(&dnn_lock);
  cache_entry *e = cache_find_locked(k, hash);
  if (e && e->algo < 0) {
    pthread_mutex_unlock(&dnn_lock);
    return no_algorithm(k);
  }
  if (e) {
    void *ws = NULL;
    rn_status st = e->ws ? rn_cu_alloc(k->device, e->ws, &ws) : RN_OK;
    if (st == RN_OK) st = dir_check(execute(dir, h, &e->d, b, e->algo, ws, e->ws), dir);
    rn_cu_free(k->device, ws, e->ws); /* stream-ordered reuse is safe */
    pthread_mutex_unlock(&dnn_lock);
    return st;
  }
  pthread_mutex_unlock(&dnn_lock);
  descs d;
  candidate c[MAX_ALGOS];
  int n = 0;
  rn_status st = descs_make(&d, k);
  if (st == RN_OK) st = list_algos(dir, h, &d, b, bench_mode(), k->device, c, &n);
  /* under the autocast, cuDNN refusing the bfloat16 descriptors or queries means it has no bfloat16 algorithm */
  if (st != RN_OK && k->bf16 && st != RN_ERR_OOM) {
    st = RN_OK;
    n = 0;
  }
  bool refused = true;
  for (int i = 0; st == RN_OK && refused && i < n; i++) {
    if (c[i].status != CUDNN_STATUS_SUCCESS || c[i].memory > WS_LIMIT) continue;
    /* without TF32 or bfloat16 only FMA kernels; with them, the math type cuDNN reported for the algorithm */
    bool tensor_ops = k->tf32 || k->bf16;
    if (!tensor_ops && (c[i].math == CUDNN_TENSOR_OP_MATH || c[i].math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
      continue;
    cudnnMathType_t math = tensor_ops ? c[i].math : CUDNN_FMA_MATH;
    size_t wsb = 0;
    st = try_algo(dir, h, &d, b, c[i].algo, math, k->device, k->bf16, &refused, &wsb);
    if (st == RN_OK && !refused) {
      pthread_mutex_lock(&dnn_lock);
      if (!cache_find_locked(k, hash)) { /* another thread may have chosen meanwhile */
        cache_put_locked(k, hash, c[i].algo, wsb, d);
        d = (descs){0}; /* the cache owns them now */
      }
      pthread_mutex_unlock(&dnn_lock);
    }
  }
  if (st == RN_OK && refused) {
    pthread_mutex_lock(&dnn_lock);
    if (!cache_find_locked(k, hash)) {
      cache_put_locked(k, hash, -1, 0, d);
      d = (descs){0};
    }
    pthread_mutex_unlock(&dnn_lock);
    st = no_algorithm(k);
  }
  descs_free(&d);
  return st;
}

/* The bfloat16 autocast of run_conv: the direction's two inputs converted into bfloat16 temporaries, the
 * convolution run on them, its output converted back into the float32 buffer; the float32 convolution for a
 * shape cuDNN has no bfloat16 algorithm for. */
static atomic_ullong bf16_fallbacks;

uint64_t rn_cuda_bf16_fallbacks(void) { return atomic_load(&bf16_fallbacks); }

static rn_status run_conv_f32(const conv_key *k, const bufs *b, cudaStream_t s) {
  conv_key k32 = *k;
  k32.bf16 = 0;
  atomic_fetch_add(&bf16_fallbacks, 1);
  return run_conv(&k32, b, s);
}

static rn_status run_conv_bf16(const conv_key *k, const bufs *b, cudaStream_t s) {
  uint64_t hash = key_hash(k);
  pthread_mutex_lock(&dnn_lock);
  const cache_entry *e = cache_find_locked(k, hash);
  bool unsupported = e && e->algo < 0;
  pthread_mutex_unlock(&dnn_lock);
  if (unsupported) return run_conv_f32(k, b, s);
  size_t n[3] = {(size_t)(k->n * k->c * k->h * k->w), (size_t)(k->o * (k->c / k->g) * k->kh * k->kw),
                 (size_t)(k->n * k->o * k->oh * k->ow)};
  void *f32[3] = {b->x, b->w, b->y}, *b16[3] = {NULL, NULL, NULL};
  int out = k->dir == DIR_FORWARD ? 2 : k->dir == DIR_BACKWARD_DATA ? 0 : 1;
  rn_status st = RN_OK;
  for (int i = 0; i < 3 && st == RN_OK; i++) {
    st = rn_cu_alloc(k->device, 2 * n[i], &b16[i]);
    if (st == RN_OK && i != out)
      st = rn_cu_check(rnk_to_bf16(b16[i], f32[i], (int64_t)n[i], s), "rnk_to_bf16 (convolution input)");
  }
  bufs hb = {b16[0], b16[1], b16[2]};
  if (st == RN_OK) st = run_conv(k, &hb, s);
  if (st == RN_OK)
    st = rn_cu_check(rnk_from_bf16(f32[out], b16[out], (int64_t)n[out], s), "rnk_from_bf16 (convolution output)");
  for (int i = 0; i < 3; i++) rn_cu_free(k->device, b16[i], 2 * n[i]); /* stream-ordered reuse is safe */
  return st == RN_ERR_UNSUPPORTED ? run_conv_f32(k, b, s) : st;
}

static rn_status convolve(const conv_key *k, const bufs *b, cudaStream_t s) {
  return k->bf16 ? run_conv_bf16(k, b, s) : run_conv(k, b, s);
}

/* ------------------------------------------------------------------ geometry */

/* Key of a call from x [n,c,h,w], w [o,c/g,kh,kw] and the (possibly cropped) output dims. */
static rn_status make_key(conv_key *k, conv_dir dir, const rn_tensor *x, const rn_tensor *w, const rn_tensor *y,
                          const rn_conv_params *p) {
  const char *what = dir_names[dir];
  if (!p || x->ndim != 4 || w->ndim != 4 || y->ndim != 4) return rn_error(RN_ERR_SHAPE, "%s: expected 4-d tensors", what);
  *k = (conv_key){.dir = dir, .device = x->storage->device.index, .tf32 = rn_cuda_get_tf32(), .bf16 = rn_cuda_get_bf16(),
                  .n = x->shape[0], .c = x->shape[1], .h = x->shape[2], .w = x->shape[3],
                  .o = w->shape[0], .kh = w->shape[2], .kw = w->shape[3],
                  .sh = p->stride[0], .sw = p->stride[1], .ph = p->pad[0], .pw = p->pad[1],
                  .dh = p->dilation[0], .dw = p->dilation[1], .g = p->groups};
  if (k->g < 1 || k->sh < 1 || k->sw < 1 || k->dh < 1 || k->dw < 1 || k->ph < 0 || k->pw < 0 || k->c % k->g ||
      k->o % k->g || k->kh < 1 || k->kw < 1 || w->shape[1] * k->g != k->c)
    return rn_error(RN_ERR_ARG, "%s: bad convolution parameters", what);
  if (y->shape[0] != k->n || y->shape[1] != k->o)
    return rn_error(RN_ERR_SHAPE, "%s: input, weight and output channels do not fit", what);
  k->oh = (k->h + 2 * k->ph - k->dh * (k->kh - 1) - 1) / k->sh + 1;
  k->ow = (k->w + 2 * k->pw - k->dw * (k->kw - 1) - 1) / k->sw + 1;
  if (y->shape[2] < 1 || y->shape[3] < 1 || y->shape[2] > k->oh || y->shape[3] > k->ow)
    return rn_error(RN_ERR_SHAPE, "%s: output %lldx%lld does not fit input %lldx%lld", what, (long long)y->shape[2],
                    (long long)y->shape[3], (long long)k->h, (long long)k->w);
  int64_t big = 0x7fffffffLL;
  if (k->n > big || k->c > big || k->h > big || k->w > big || k->o > big || k->oh > big || k->ow > big)
    return rn_error(RN_ERR_SHAPE, "%s: sizes beyond cuDNN's 32-bit limits", what);
  return RN_OK;
}

static bool cropped(const conv_key *k, const rn_tensor *y) { return y->shape[2] != k->oh || y->shape[3] != k->ow; }

/* A full-size [n, o, oh, ow] device tensor (zeroed when asked) and the layout of its top-left crop of y's size. */
static rn_status full_tmp(rn_tensor **tmp, rnk_layout *crop, const conv_key *k, const rn_tensor *y, bool zero) {
  int64_t shape[4] = {k->n, k->o, k->oh, k->ow};
  rn_device dev = {RN_CUDA, k->device};
  RN_TRY(zero ? rn_tensor_zeros(tmp, 4, shape, RN_F32, dev) : rn_tensor_empty(tmp, 4, shape, RN_F32, dev));
  *crop = rn_cu_layout(*tmp);
  crop->shape[2] = y->shape[2];
  crop->shape[3] = y->shape[3];
  return RN_OK;
}

static rn_status need4(const rn_tensor *t, const char *what) { return rn_cu_need(t, true, true, what); }

/* ------------------------------------------------------------------ kernel-table entries */

/* A 1x1 convolution with stride 1, no padding and one group is y[n] = W x[n] over the pixels. */
static bool pointwise(const conv_key *k) {
  return k->kh == 1 && k->kw == 1 && k->sh == 1 && k->sw == 1 && k->ph == 0 && k->pw == 0 && k->g == 1 &&
         k->oh == k->h && k->ow == k->w;
}

/* t (contiguous) seen as [a, b, c] */
static rn_tensor view3(const rn_tensor *t, int64_t a, int64_t b, int64_t c) {
  rn_tensor v = *t;
  v.ndim = 3;
  v.shape[0] = a, v.shape[1] = b, v.shape[2] = c;
  v.stride[0] = b * c, v.stride[1] = c, v.stride[2] = 1;
  v.grad = NULL;
  v.grad_fn = NULL;
  return v;
}

/* The convolution (cuDNN, or cuBLAS for 1x1), then bias, residual and activation in one more kernel. */
rn_status rn_cu_conv2d_fused(rn_tensor *y, const rn_tensor *x, const rn_tensor *w, const rn_tensor *bias,
                             const rn_tensor *residual, rn_unary_op act, const rn_conv_params *p) {
  cudaStream_t s;
  conv_key k;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(need4(y, "conv2d: output"));
  RN_TRY(need4(x, "conv2d: input"));
  RN_TRY(need4(w, "conv2d: weight"));
  if (bias) RN_TRY(need4(bias, "conv2d: bias"));
  if (residual) RN_TRY(need4(residual, "conv2d: residual"));
  RN_TRY(make_key(&k, DIR_FORWARD, x, w, y, p));
  if (bias && rn_tensor_numel(bias) != k.o) return rn_error(RN_ERR_SHAPE, "conv2d: bias has the wrong size");
  if (residual && !rn_tensor_same_shape(residual, y))
    return rn_error(RN_ERR_SHAPE, "conv2d: residual has the wrong shape");
  if (rn_tensor_numel(y) == 0) return RN_OK;
  rn_tensor *tmp = NULL;
  rnk_layout crop, yl = rn_cu_layout(y);
  rn_status st;
  if (pointwise(&k) && !cropped(&k, y)) { /* W [1, O, C] shared by every x [N, C, HW] */
    int64_t hw = k.h * k.w;
    rn_tensor yv = view3(y, k.n, k.o, hw), wv = view3(w, 1, k.o, k.c), xv = view3(x, k.n, k.c, hw);
    st = rn_cu_gemm(&yv, &wv, &xv, false, false, 1.0f, 0.0f);
  } else {
    if (cropped(&k, y)) RN_TRY(full_tmp(&tmp, &crop, &k, y, false));
    bufs b = {rn_cu_ptr(x), rn_cu_ptr(w), tmp ? rn_cu_ptr(tmp) : rn_cu_ptr(y)};
    st = convolve(&k, &b, s);
  }
  if (st == RN_OK && tmp)
    st = rn_cu_check(rnk_copy(rn_cu_ptr(y), RN_F32, &yl, rn_cu_ptr(tmp), RN_F32, &crop, s), "rnk_copy (conv2d crop)");
  rn_tensor_release(tmp);
  if (st != RN_OK) return st;
  return rn_cu_check(rnk_conv_epilogue(rn_cu_ptr(y), bias ? rn_cu_ptr(bias) : NULL,
                                       residual ? rn_cu_ptr(residual) : NULL, act, y->shape[0], y->shape[1],
                                       y->shape[2] * y->shape[3], s),
                     "rnk_conv_epilogue (conv2d bias, residual, activation)");
}

rn_status rn_cu_conv2d(rn_tensor *y, const rn_tensor *x, const rn_tensor *w, const rn_tensor *bias,
                       const rn_conv_params *p) {
  return rn_cu_conv2d_fused(y, x, w, bias, NULL, RN_ACT_NONE, p);
}

/* gy of the full size: gy itself, or a zeroed temporary holding gy in its top-left corner. */
static rn_status full_gy(rn_tensor **tmp, const conv_key *k, const rn_tensor *gy, cudaStream_t s) {
  *tmp = NULL;
  if (!cropped(k, gy)) return RN_OK;
  rnk_layout crop, gl = rn_cu_layout(gy);
  RN_TRY(full_tmp(tmp, &crop, k, gy, true));
  rn_status st = rn_cu_check(rnk_copy(rn_cu_ptr(*tmp), RN_F32, &crop, rn_cu_ptr(gy), RN_F32, &gl, s),
                             "rnk_copy (conv2d gradient padding)");
  if (st != RN_OK) { rn_tensor_release(*tmp); *tmp = NULL; }
  return st;
}

rn_status rn_cu_conv2d_backward_data(rn_tensor *gx, const rn_tensor *gy, const rn_tensor *w, const rn_conv_params *p) {
  cudaStream_t s;
  conv_key k;
  RN_TRY(rn_cu_stream(gy, &s));
  RN_TRY(need4(gx, "conv2d backward (data): gx"));
  RN_TRY(need4(gy, "conv2d backward (data): gy"));
  RN_TRY(need4(w, "conv2d backward (data): weight"));
  RN_TRY(make_key(&k, DIR_BACKWARD_DATA, gx, w, gy, p));
  if (rn_tensor_numel(gx) == 0) return RN_OK;
  rn_tensor *tmp = NULL;
  RN_TRY(full_gy(&tmp, &k, gy, s));
  bufs b = {rn_cu_ptr(gx), rn_cu_ptr(w), tmp ? rn_cu_ptr(tmp) : rn_cu_ptr(gy)};
  rn_status st = convolve(&k, &b, s);
  rn_tensor_release(tmp);
  return st;
}

rn_status rn_cu_conv2d_backward_weight(rn_tensor *gw, const rn_tensor *gy, const rn_tensor *x,
                                       const rn_conv_params *p) {
  cudaStream_t s;
  conv_key k;
  RN_TRY(rn_cu_stream(x, &s));
  RN_TRY(need4(gw, "conv2d backward (weight): gw"));
  RN_TRY(need4(gy, "conv2d backward (weight): gy"));
  RN_TRY(need4(x, "conv2d backward (weight): input"));
  if (rn_tensor_numel(gw) == 0) return RN_OK;
  if (x->ndim == 4 && x->shape[0] == 0) return rn_cu_fill(gw, 0.0); /* no samples: no gradient */
  RN_TRY(make_key(&k, DIR_BACKWARD_WEIGHT, x, gw, gy, p));
  rn_tensor *tmp = NULL;
  RN_TRY(full_gy(&tmp, &k, gy, s));
  bufs b = {rn_cu_ptr(x), rn_cu_ptr(gw), tmp ? rn_cu_ptr(tmp) : rn_cu_ptr(gy)};
  rn_status st = convolve(&k, &b, s);
  rn_tensor_release(tmp);
  return st;
}
