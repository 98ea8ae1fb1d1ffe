/* cuda_graph.c - recording a device's stream into a CUDA graph and replaying it (see cuda_api.h).
 *
 * The capture runs in relaxed mode, so the caching allocator may still call cudaMalloc while recording; the
 * blocks the capture touches belong to the graph (cuda_alloc.c). Copies between host and device refuse to
 * run during a capture (cuda_backend.c) with a message saying so, rather than failing inside CUDA. */
#include <stdatomic.h>

#include "cuda_internal.h"

struct rn_cuda_graph {
  int device;
  cudaGraphExec_t exec;
  rn_cu_graph_pool *pool;
};

static atomic_int capture_device = -1;
static rn_cu_graph_pool *capture_pool;

bool rn_cuda_capturing(void) { return atomic_load(&capture_device) >= 0; }

rn_status rn_cuda_graph_begin(int device) {
  cudaStream_t s;
  RN_TRY(rn_cu_enter(device, &s));
  if (rn_cuda_capturing())
    return rn_error(RN_ERR_ARG, "cuda graph: a capture is already in progress on cuda:%d", atomic_load(&capture_device));
  if (rn_cuda_forked(device))
    return rn_error(RN_ERR_ARG, "cuda graph: cuda:%d is forked over lanes; join before a capture begins", device);
  /* earlier work finishes first: the free blocks the capture may take must be idle */
  RN_TRY(rn_cu_check(cudaStreamSynchronize(s), "cudaStreamSynchronize (before a graph capture)"));
  rn_cu_graph_pool *p = NULL;
  RN_TRY(rn_cu_graph_pool_begin(&p));
  rn_status st = rn_cu_check(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), "cudaStreamBeginCapture");
  if (st != RN_OK) {
    rn_cu_graph_pool_free(p);
    return st;
  }
  capture_pool = p;
  atomic_store(&capture_device, device);
  return RN_OK;
}

rn_status rn_cuda_graph_end(int device, rn_cuda_graph **out) {
  *out = NULL;
  if (atomic_load(&capture_device) != device)
    return rn_error(RN_ERR_ARG, "cuda graph: no capture is in progress on cuda:%d", device);
  rn_status joined = rn_cuda_forked(device) ? rn_cuda_join(device) : RN_OK; /* lanes must rejoin the capture */
  cudaStream_t s;
  RN_TRY(rn_cu_enter(device, &s));
  cudaGraph_t graph = NULL;
  cudaError_t e = cudaStreamEndCapture(s, &graph);
  rn_cu_graph_pool *p = capture_pool;
  capture_pool = NULL;
  atomic_store(&capture_device, -1);
  rn_cu_graph_pool_end_capture(p);
  rn_status st = rn_cu_check(e, "cudaStreamEndCapture (an op in the capture failed or had to wait for the device)");
  if (st == RN_OK && joined != RN_OK) st = rn_error(RN_ERR_DEVICE, "cuda graph: joining the lanes left open failed");
  cudaGraphExec_t exec = NULL;
  if (st == RN_OK) st = rn_cu_check(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
  if (graph) cudaGraphDestroy(graph);
  rn_cuda_graph *g = NULL;
  if (st == RN_OK && !(g = malloc(sizeof *g))) st = rn_error(RN_ERR_OOM, "cuda graph: out of host memory");
  if (st != RN_OK) {
    if (exec) cudaGraphExecDestroy(exec);
    rn_cu_graph_pool_free(p); /* nothing was replayed: its blocks are idle */
    return st;
  }
  *g = (rn_cuda_graph){device, exec, p};
  *out = g;
  return RN_OK;
}

rn_status rn_cuda_graph_replay(rn_cuda_graph *g) {
  if (!g) return rn_error(RN_ERR_ARG, "cuda graph: replay of a freed graph");
  if (rn_cuda_capturing()) return rn_error(RN_ERR_ARG, "cuda graph: cannot replay while a capture is in progress");
  if (rn_cuda_forked(g->device))
    return rn_error(RN_ERR_ARG, "cuda graph: cuda:%d is forked over lanes; join before a replay", g->device);
  cudaStream_t s;
  RN_TRY(rn_cu_enter(g->device, &s));
  return rn_cu_check(cudaGraphLaunch(g->exec, s), "cudaGraphLaunch");
}

void rn_cuda_graph_free(rn_cuda_graph *g) {
  if (!g) return;
  cudaStream_t s;
  /* replays in flight use its blocks. During a capture on its device (the garbage collector may free an old
   * graph then) a synchronisation would break the capture, and none is needed: graph_begin waited for the
   * device and replays are refused until the capture ends. */
  if (atomic_load(&capture_device) != g->device && rn_cu_enter(g->device, &s) == RN_OK)
    (void)rn_cu_synchronize_all(g->device);
  (void)cudaGetLastError();
  cudaGraphExecDestroy(g->exec);
  rn_cu_graph_pool_free(g->pool);
  free(g);
}
