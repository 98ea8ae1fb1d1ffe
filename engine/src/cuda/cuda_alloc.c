/* cuda_alloc.c - the caching device allocator.
 *
 * cudaMalloc/cudaFree cost tens to hundreds of microseconds and cudaFree synchronises the device, far more than
 * the kernels of a typical op, so freed blocks are kept per device by rounded size and handed out again. Sizes
 * round to 512 bytes up to 1 MiB, above that to an eighth of their power of two (at most 12.5% slack), so
 * tensors of similar shapes share blocks. Reuse needs no events because a device's work runs on one stream (see
 * cuda_internal.h). While it is forked over several streams (lanes, rn_cuda_fork), each block carries a lane
 * tag saying who may take it again (lane_tags.h: the lane that made and freed it, or nobody until the join).
 * When cudaMalloc runs out, the cache is returned to the driver and the call retried.
 *
 * While a CUDA graph is being captured (cuda_graph.c), every block the capture allocates or frees belongs to
 * the graph: replays write to those addresses, so none may serve anything else while the graph exists. Such
 * blocks are recycled only within the capture, and freeing one afterwards (its tensor dropped) just marks it;
 * the graph hands its blocks back to the cache when it is destroyed (or, for a tensor that outlives it, when
 * that tensor is freed).
 */
#include <pthread.h>

#include "cuda_internal.h"
#include "lane_tags.h"

typedef struct { void *ptr; size_t bytes; int tag; } block; /* tag: RN_LANE_ANY, a lane or RN_LANE_DEFERRED */

/* A block owned by a captured graph: in_use while a tensor (or the capture) holds it; tag as a free block's. */
typedef struct { void *ptr; size_t bytes; int device; bool in_use; int tag; rn_cu_graph_pool *owner; } owned_block;

struct rn_cu_graph_pool {
  owned_block *b;
  int n, cap;
  bool capturing, orphaned; /* orphaned: the graph is gone, blocks in use go back to the cache when freed */
};

static struct {
  rn_cu_graph_pool *capture; /* the pool of the capture in progress, if any */
  rn_cu_graph_pool **pools;  /* every pool with blocks (for lookups on free) */
  int n, cap;
} graphs;

static struct {
  pthread_mutex_t lock;
  block *free[RN_CUDA_MAX_DEVICES];
  int n[RN_CUDA_MAX_DEVICES], cap[RN_CUDA_MAX_DEVICES];
  size_t cached;
  rn_lane_tags lanes[RN_CUDA_MAX_DEVICES]; /* the fork in progress on each device, if any */
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t round_size(size_t bytes) {
  if (bytes == 0) bytes = 1; /* the storage layer allocates 1 byte for empty tensors and frees "0" */
  if (bytes <= ((size_t)1 << 20)) return (bytes + 511) / 512 * 512;
  size_t p = (size_t)1 << 20;
  while (p <= bytes / 2) p <<= 1; /* p: largest power of two <= bytes */
  size_t g = p / 8;
  return (bytes + g - 1) / g * g;
}

/* Frees the cached blocks of one device; the caller holds the lock. */
static void release_locked(int d) {
  if (pool.n[d] == 0) return;
  int prev = -1;
  cudaGetDevice(&prev);
  if (cudaSetDevice(d) == cudaSuccess) {
    for (int i = 0; i < pool.n[d]; i++) {
      cudaFree(pool.free[d][i].ptr); /* errors here leave nothing to recover; the block is gone either way */
      pool.cached -= pool.free[d][i].bytes;
    }
    pool.n[d] = 0;
  }
  (void)cudaGetLastError();
  if (prev >= 0) cudaSetDevice(prev);
}

void rn_cu_release_cache(int device) {
  pthread_mutex_lock(&pool.lock);
  for (int d = 0; d < RN_CUDA_MAX_DEVICES; d++)
    if (device < 0 || d == device) release_locked(d);
  pthread_mutex_unlock(&pool.lock);
}

size_t rn_cu_cached_bytes(void) {
  pthread_mutex_lock(&pool.lock);
  size_t c = pool.cached;
  pthread_mutex_unlock(&pool.lock);
  return c;
}

/* ------------------------------------------------------------------ graph-owned blocks (lock held) */

static owned_block *find_owned(void *ptr) {
  for (int i = 0; i < graphs.n; i++) {
    rn_cu_graph_pool *p = graphs.pools[i];
    for (int j = 0; j < p->n; j++)
      if (p->b[j].ptr == ptr) return &p->b[j];
  }
  return NULL;
}

static bool add_owned(rn_cu_graph_pool *p, void *ptr, size_t bytes, int device) {
  if (p->n == p->cap) {
    int cap = p->cap ? 2 * p->cap : 256;
    owned_block *nb = realloc(p->b, (size_t)cap * sizeof *nb);
    if (!nb) return false;
    p->b = nb;
    p->cap = cap;
  }
  p->b[p->n++] = (owned_block){ptr, bytes, device, true, RN_LANE_ANY, p};
  return true;
}

/* A block the capture freed earlier, of this rounded size and device, that the current lane may take, or NULL. */
static void *reuse_owned(rn_cu_graph_pool *p, size_t rounded, int device) {
  for (int j = p->n - 1; j >= 0; j--)
    if (!p->b[j].in_use && p->b[j].bytes == rounded && p->b[j].device == device &&
        rn_lane_tags_may_take(&pool.lanes[device], p->b[j].tag)) {
      p->b[j].in_use = true;
      return p->b[j].ptr;
    }
  return NULL;
}

/* Puts a freed block in the device's free list (or hands it back to the driver when there is no room). */
static void cache_block_locked(int device, void *ptr, size_t rounded, int tag) {
  if (pool.n[device] == pool.cap[device]) {
    int cap = pool.cap[device] ? 2 * pool.cap[device] : 256;
    block *nb = realloc(pool.free[device], (size_t)cap * sizeof *nb);
    if (nb) {
      pool.free[device] = nb;
      pool.cap[device] = cap;
    }
  }
  if (pool.n[device] < pool.cap[device]) {
    pool.free[device][pool.n[device]++] = (block){ptr, rounded, tag};
    pool.cached += rounded;
    return;
  }
  int prev = -1;
  cudaGetDevice(&prev);
  cudaSetDevice(device);
  cudaFree(ptr); /* synchronises the device: safe whatever the block's tag */
  (void)cudaGetLastError();
  if (prev >= 0) cudaSetDevice(prev);
}

/* ------------------------------------------------------------------ allocation */

rn_status rn_cu_alloc(int device, size_t bytes, void **ptr) {
  *ptr = NULL;
  if (device < 0 || device >= RN_CUDA_MAX_DEVICES)
    return rn_error(RN_ERR_DEVICE, "cuda:%d: device index out of range", device);
  size_t rounded = round_size(bytes);
  pthread_mutex_lock(&pool.lock);
  rn_cu_graph_pool *cap = graphs.capture;
  rn_lane_tags *lanes = &pool.lanes[device];
  if (cap) *ptr = reuse_owned(cap, rounded, device);
  for (int i = pool.n[device] - 1; i >= 0 && !*ptr; i--) {
    block *b = &pool.free[device][i];
    if (b->bytes == rounded && rn_lane_tags_may_take(lanes, b->tag)) {
      int tag = b->tag;
      *ptr = b->ptr;
      *b = pool.free[device][--pool.n[device]];
      pool.cached -= rounded;
      if (cap && !find_owned(*ptr) && !add_owned(cap, *ptr, rounded, device)) { /* keep it out of the graph */
        cache_block_locked(device, *ptr, rounded, tag);
        *ptr = NULL;
        pthread_mutex_unlock(&pool.lock);
        return rn_error(RN_ERR_OOM, "graph capture: out of host memory");
      }
    }
  }
  if (*ptr && !rn_lane_tags_note_alloc(lanes, *ptr)) {
    pthread_mutex_unlock(&pool.lock);
    rn_cu_free(device, *ptr, bytes); /* handed out and given back at once: nothing used it */
    *ptr = NULL;
    return rn_error(RN_ERR_OOM, "cuda fork: out of host memory");
  }
  pthread_mutex_unlock(&pool.lock);
  if (*ptr) return RN_OK;
  RN_TRY(rn_cu_check(cudaSetDevice(device), "cudaSetDevice"));
  cudaError_t e = cudaMalloc(ptr, rounded);
  if (e == cudaErrorMemoryAllocation && !cap) { /* give the cache back to the driver and try once more */
    (void)cudaGetLastError();
    rn_cu_release_cache(device);
    e = cudaMalloc(ptr, rounded);
  }
  if (e != cudaSuccess) {
    *ptr = NULL;
    size_t free_b = 0, total_b = 0;
    (void)cudaGetLastError();
    cudaMemGetInfo(&free_b, &total_b);
    (void)cudaGetLastError();
    return rn_error(e == cudaErrorMemoryAllocation ? RN_ERR_OOM : RN_ERR_DEVICE,
                    "cudaMalloc of %zu bytes on cuda:%d failed: %s (%zu of %zu MiB free; tensors hold %zu MiB)",
                    rounded, device, cudaGetErrorString(e), free_b >> 20, total_b >> 20,
                    rn_allocated_bytes(RN_CUDA) >> 20);
  }
  pthread_mutex_lock(&pool.lock);
  bool ok = !cap || add_owned(cap, *ptr, rounded, device);
  if (ok && !rn_lane_tags_note_alloc(&pool.lanes[device], *ptr)) {
    ok = false;
    if (cap) cap->n--; /* the entry just added */
  }
  pthread_mutex_unlock(&pool.lock);
  if (!ok) {
    cudaFree(*ptr);
    *ptr = NULL;
    return rn_error(RN_ERR_OOM, "%s: out of host memory", cap ? "graph capture" : "cuda fork");
  }
  return RN_OK;
}

void rn_cu_free(int device, void *ptr, size_t bytes) {
  if (!ptr) return;
  size_t rounded = round_size(bytes);
  if (device < 0 || device >= RN_CUDA_MAX_DEVICES) return;
  pthread_mutex_lock(&pool.lock);
  int tag = rn_lane_tags_tag_for_free(&pool.lanes[device], ptr);
  owned_block *o = graphs.n ? find_owned(ptr) : NULL;
  if (o) {
    o->in_use = false; /* the graph keeps it (reused within a capture, else until the graph goes) */
    o->tag = tag;
    if (o->owner->orphaned) { /* the graph is gone: this was the last user */
      rn_cu_graph_pool *p = o->owner;
      *o = p->b[--p->n];
      cache_block_locked(device, ptr, rounded, tag);
    }
  } else if (graphs.capture) {
    /* freed during a capture: the graph may already have been handed work on it, so the graph owns it */
    if (!add_owned(graphs.capture, ptr, rounded, device)) {
      cache_block_locked(device, ptr, rounded, tag);
    } else {
      graphs.capture->b[graphs.capture->n - 1].in_use = false;
      graphs.capture->b[graphs.capture->n - 1].tag = tag;
    }
  } else {
    cache_block_locked(device, ptr, rounded, tag);
  }
  pthread_mutex_unlock(&pool.lock);
}

/* ------------------------------------------------------------------ capture pools */

rn_status rn_cu_graph_pool_begin(rn_cu_graph_pool **out) {
  *out = NULL;
  rn_cu_graph_pool *p = calloc(1, sizeof *p);
  if (!p) return rn_error(RN_ERR_OOM, "graph capture: out of host memory");
  pthread_mutex_lock(&pool.lock);
  rn_status st = RN_OK;
  if (graphs.capture) {
    st = rn_error(RN_ERR_ARG, "graph capture: another capture is in progress");
  } else if (graphs.n == graphs.cap) {
    int cap = graphs.cap ? 2 * graphs.cap : 8;
    rn_cu_graph_pool **np = realloc(graphs.pools, (size_t)cap * sizeof *np);
    if (np) { graphs.pools = np; graphs.cap = cap; } else st = rn_error(RN_ERR_OOM, "graph capture: out of host memory");
  }
  if (st == RN_OK) {
    graphs.pools[graphs.n++] = p;
    p->capturing = true;
    graphs.capture = p;
  }
  pthread_mutex_unlock(&pool.lock);
  if (st != RN_OK) free(p);
  else *out = p;
  return st;
}

void rn_cu_graph_pool_end_capture(rn_cu_graph_pool *p) {
  pthread_mutex_lock(&pool.lock);
  if (graphs.capture == p) graphs.capture = NULL;
  p->capturing = false;
  pthread_mutex_unlock(&pool.lock);
}

/* The graph is gone (its replays finished: the caller synchronised): idle blocks go back to the cache, blocks
 * still held by tensors follow when those are freed. */
void rn_cu_graph_pool_free(rn_cu_graph_pool *p) {
  if (!p) return;
  rn_cu_graph_pool_end_capture(p);
  pthread_mutex_lock(&pool.lock);
  for (int j = p->n - 1; j >= 0; j--)
    if (!p->b[j].in_use) {
      cache_block_locked(p->b[j].device, p->b[j].ptr, p->b[j].bytes, p->b[j].tag);
      p->b[j] = p->b[--p->n];
    }
  p->orphaned = true;
  bool empty = p->n == 0;
  if (empty) {
    for (int i = 0; i < graphs.n; i++)
      if (graphs.pools[i] == p) { graphs.pools[i] = graphs.pools[--graphs.n]; break; }
  }
  pthread_mutex_unlock(&pool.lock);
  if (empty) {
    free(p->b);
    free(p);
  }
}

/* ------------------------------------------------------------------ lanes (rn_cuda_fork) */

static rn_status bad_device(int device) {
  return rn_error(RN_ERR_DEVICE, "cuda:%d: device index out of range", device);
}

rn_status rn_cu_alloc_fork(int device, int lanes) {
  if (device < 0 || device >= RN_CUDA_MAX_DEVICES) return bad_device(device);
  pthread_mutex_lock(&pool.lock);
  rn_status st = rn_lane_tags_fork(&pool.lanes[device], lanes);
  pthread_mutex_unlock(&pool.lock);
  return st;
}

rn_status rn_cu_alloc_use_lane(int device, int lane) {
  if (device < 0 || device >= RN_CUDA_MAX_DEVICES) return bad_device(device);
  pthread_mutex_lock(&pool.lock);
  rn_status st = rn_lane_tags_use(&pool.lanes[device], lane);
  pthread_mutex_unlock(&pool.lock);
  return st;
}

/* The first stream now waits for every lane (the caller queued that before calling): every block is free for all. */
void rn_cu_alloc_join(int device) {
  if (device < 0 || device >= RN_CUDA_MAX_DEVICES) return;
  pthread_mutex_lock(&pool.lock);
  rn_lane_tags_join(&pool.lanes[device]);
  for (int i = 0; i < pool.n[device]; i++) pool.free[device][i].tag = RN_LANE_ANY;
  for (int i = 0; i < graphs.n; i++)
    for (int j = 0; j < graphs.pools[i]->n; j++)
      if (graphs.pools[i]->b[j].device == device) graphs.pools[i]->b[j].tag = RN_LANE_ANY;
  pthread_mutex_unlock(&pool.lock);
}
