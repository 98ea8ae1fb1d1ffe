/* alloc_lanes_model.c - the caching device allocator (engine/src/cuda/cuda_alloc.c) under forks over stream lanes
 * and CUDA graph captures, without a GPU: the allocator is linked against a fake CUDA runtime (host malloc, and
 * no address is ever given back, so a reused address is always the cache's doing) and driven by random
 * schedules of forks, lane switches, joins, allocations, reads and frees (the Lua collector frees anything at any
 * time). A model of stream ordering checks every block the allocator hands out:
 *   - it is not held by anyone (no double hand-out);
 *   - every earlier use of it is ordered before the new one: in an earlier segment (a fork waits for the work
 *     before it, a join waits for every lane) or on the same lane of the same fork;
 *   - while a captured graph lives, nothing outside it gets one of its blocks (replays write them).
 * Built with the CUDA backend (it needs the CUDA headers) and run everywhere, GPU or not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_internal.h"

/* ------------------------------------------------------------------ the fake runtime and engine pieces
 * (rn_error is the engine's own status.c; the rest of the engine is not linked: it holds the real allocator) */

size_t rn_allocated_bytes(rn_device_type type) {
  (void)type;
  return 0;
}

rn_status rn_cu_check(cudaError_t e, const char *call) {
  return e == cudaSuccess ? RN_OK : rn_error(RN_ERR_DEVICE, "%s failed (%d)", call, (int)e);
}

static int fake_device;
static void **kept; /* "freed" device memory, released at exit so malloc never hands an address out twice */
static int n_kept, cap_kept;

cudaError_t cudaGetDevice(int *d) { *d = fake_device; return cudaSuccess; }
cudaError_t cudaSetDevice(int d) { fake_device = d; return cudaSuccess; }
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
const char *cudaGetErrorString(cudaError_t e) { (void)e; return "fake"; }
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) { *f = *t = 0; return cudaSuccess; }

cudaError_t cudaMalloc(void **p, size_t n) {
  *p = malloc(n);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaFree(void *p) {
  if (n_kept == cap_kept) {
    cap_kept = cap_kept ? 2 * cap_kept : 1024;
    kept = realloc(kept, (size_t)cap_kept * sizeof *kept);
  }
  kept[n_kept++] = p;
  return cudaSuccess;
}

/* ------------------------------------------------------------------ checks */

static int checks, failures;
#define CHECK(cond)                                                              \
  do {                                                                           \
    checks++;                                                                    \
    if (!(cond)) { failures++; printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
  } while (0)

/* ------------------------------------------------------------------ the model */

enum { MAXB = 4096, MAXUSES = 32, STEPS = 60000 };

typedef struct { int segment, lane; } use;
typedef struct {
  void *ptr;
  size_t bytes;
  bool live;
  int graph;  /* the capture that touched it (0: none), while that graph lives */
  use uses[MAXUSES];
  int n;
} sim_block;

static sim_block blocks[MAXB];
static int nblocks, segment, lanes, lane, capture, violations, reused;
static int twice, graph_leak, unordered; /* the kinds of violation, for the report */

static sim_block *find(void *p) {
  for (int i = 0; i < nblocks; i++)
    if (blocks[i].ptr == p) return &blocks[i];
  return NULL;
}

static void add_use(sim_block *b) {
  use u = {segment, lane};
  if (b->n < MAXUSES) b->uses[b->n++] = u;
  else b->uses[MAXUSES - 1] = u;
}

static void alloc_one(void) {
  static const size_t sizes[3] = {512, 1536, 4096};
  size_t bytes = sizes[rand() % 3];
  void *p = NULL;
  if (rn_cu_alloc(0, bytes, &p) != RN_OK || !p) { violations++; return; }
  sim_block *b = find(p);
  if (b) {
    reused++;
    if (b->live) twice++; /* handed out twice */
    if (b->graph && b->graph != capture) graph_leak++; /* a live graph's block given to someone else */
    for (int k = 0; k < b->n; k++)
      if (!(b->uses[k].segment < segment || b->uses[k].lane == lane)) { unordered++; break; }
  } else {
    if (nblocks == MAXB) { violations++; return; }
    b = &blocks[nblocks++];
    b->ptr = p;
  }
  b->bytes = bytes;
  b->live = true;
  b->n = 0;
  if (capture) b->graph = capture;
  add_use(b);
}

static sim_block *pick_live(void) {
  for (int tries = 0; tries < 16 && nblocks; tries++) {
    sim_block *b = &blocks[rand() % nblocks];
    if (b->live) return b;
  }
  return NULL;
}

static void fork_or_join(void) {
  if (lanes) {
    rn_cu_alloc_join(0);
    lanes = lane = 0;
  } else {
    int k = 2 + rand() % 4;
    if (rn_cu_alloc_fork(0, k) != RN_OK) violations++;
    lanes = k;
    lane = 0;
  }
  segment++;
}

/* A schedule of STEPS random operations; with_capture records about `captured` of them, from a third of the way,
 * into a graph that then lives to the end (short captures keep blocks taken from the cache live past the end). */
static void schedule(unsigned seed, bool with_capture, int captured) {
  srand(seed);
  rn_cu_graph_pool *pool = NULL;
  for (int step = 0; step < STEPS; step++) {
    /* a capture begins (never while forked; the stream is synchronised first) */
    if (with_capture && !pool && step >= STEPS / 3 && !lanes) {
      if (rn_cu_graph_pool_begin(&pool) != RN_OK) violations++;
      capture = (int)seed + 1;
      segment++;
    }
    if (with_capture && capture && step >= STEPS / 3 + captured && !lanes) { /* capture ends; the graph lives on */
      rn_cu_graph_pool_end_capture(pool);
      capture = 0;
      segment++;
    }
    int r = rand() % 100;
    if (r < 2) {
      fork_or_join();
    } else if (r < 10 && lanes) {
      lane = rand() % lanes;
      if (rn_cu_alloc_use_lane(0, lane) != RN_OK) violations++;
    } else if (r < 40) { /* fewer allocations than frees: the live set stays small, the cache busy */
      alloc_one();
    } else if (r < 60) {
      sim_block *b = pick_live();
      /* a lane reads what it made in this fork, or anything made before the fork */
      if (b && !(lanes && b->uses[0].segment == segment && b->uses[0].lane != lane)) add_use(b);
    } else {
      sim_block *b = pick_live();
      if (b) {
        b->live = false;
        if (capture) b->graph = capture; /* freed during a capture: the graph may have work on it */
        rn_cu_free(0, b->ptr, b->bytes);
      }
    }
  }
  if (lanes) fork_or_join();
  for (int i = 0; i < nblocks; i++)
    if (blocks[i].live) { blocks[i].live = false; rn_cu_free(0, blocks[i].ptr, blocks[i].bytes); }
  if (pool) { /* the graph is destroyed after its replays finished: its blocks are free for all */
    if (capture) rn_cu_graph_pool_end_capture(pool);
    rn_cu_graph_pool_free(pool);
    for (int i = 0; i < nblocks; i++) blocks[i].graph = 0;
    capture = 0;
    segment++;
  }
}

int main(void) {
  for (unsigned seed = 1; seed <= 6; seed++) schedule(seed, seed > 2, seed % 2 ? 300 : STEPS / 3);
  violations += twice + graph_leak + unordered;
  CHECK(violations == 0);
  CHECK(reused > 10000); /* the schedules exercised the cache */
  /* the API's refusals reach the caller */
  CHECK(rn_cu_alloc_use_lane(0, 1) == RN_ERR_ARG);
  CHECK(rn_cu_alloc_fork(0, 1) == RN_ERR_ARG);
  CHECK(rn_cu_alloc_fork(RN_CUDA_MAX_DEVICES, 2) == RN_ERR_DEVICE);
  printf("alloc lanes model: %d blocks, %d reuses; handed out twice %d, a live graph's block %d, unordered %d, "
         "other %d\n", nblocks, reused, twice, graph_leak, unordered, violations - twice - graph_leak - unordered);
  for (int i = 0; i < n_kept; i++) free(kept[i]);
  free(kept);
  printf("alloc_lanes_model: %d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
